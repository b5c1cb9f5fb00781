#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest entry point: unloading iov_extract right after asynchronous I/O on its delayed disk.
# Each round loads the module with delay_us (every request is completed, and its data copied,
# by a worker DELAY_US after it was queued), starts I/O with many requests in flight (aio_flood:
# 32 reads and writes with io_uring or libaio, on the block device or the direct-I/O device),
# kills it while its I/O is in flight, and unloads the module at once (retrying while the
# device is still open).
# The completions still running when the last file is closed must all be over before the
# module's code goes: a worker running in freed module text oopses, which fails the run (the
# host fails any kernel report). Then, with the delay, writes succeed and read back while
# storage allocations fail (the request is retried, not failed). The module ends loaded with
# the parameters it had, without the delay.
#
# ROUNDS (default 16) and DELAY_US (default 2000) override the defaults; DEV, BDEV and MODULE
# the devices and the module.
here=$(cd "$(dirname "$0")" && pwd)
DEV=${DEV:-/dev/iovx_dio0}
BDEV=${BDEV:-/dev/iovx0}
MODULE=${MODULE:-/iovx/modules/iov_extract.ko}
ROUNDS=${ROUNDS:-16}
DELAY_US=${DELAY_US:-2000}
knobs=/sys/kernel/debug/iov_extract

if [ ! -e "$DEV" ] || [ ! -e "$BDEV" ]; then
	echo "ok 1 unload_stress # SKIP $DEV or $BDEV does not exist"
	exit 0
fi
. "$here/reload.sh"

echo "# iov_extract parameters:$params; $ROUNDS rounds with delay_us=$DELAY_US"

# unload: rmmod, retrying while the module is in use (the device is closed by then or soon).
unload() {
	i=0
	until rmmod iov_extract 2>/dev/null; do
		i=$((i + 1))
		tries=$((tries + 1))
		if [ $i -gt 3000 ]; then
			rmmod iov_extract
			return 1
		fi
		[ $((i % 100)) -eq 0 ] && sleep 0.01 2>/dev/null
	done
	return 0
}

# io ROUND: asynchronous I/O in the background, its pid in $io_pid.
io() {
	case $(($1 % 4)) in
	0) eng=io_uring dev=$BDEV ;;
	1) eng=libaio dev=$BDEV ;;
	2) eng=io_uring dev=$DEV ;;
	*) eng=libaio dev=$DEV ;;
	esac
	"$here/aio_flood" "$dev" $eng 32 >/dev/null 2>&1 &
	io_pid=$!
}

# ios: $done_ios, the reads and writes the disk has completed (no fork: cheap to poll).
ios() {
	done_ios=0
	# shellcheck disable=SC2034
	read -r r_ios r_merges r_sectors r_ticks w_ios rest <"$queue/stat" 2>/dev/null &&
		done_ios=$((r_ios + w_ios))
}
queue=/sys/block/${BDEV##*/}

start=$(date +%s)
busy_rounds=0
tries=0
round=0
failed_round=
t0=/tmp/unload-out.$$
if ! unload >$t0 2>&1; then
	failed_round="0 (unload: $(cat $t0))"
	ROUNDS=0
fi
while [ $round -lt "$ROUNDS" ]; do
	round=$((round + 1))
	# shellcheck disable=SC2086
	if ! out=$(insmod "$MODULE" $params "delay_us=$DELAY_US" 2>&1 && wait_devices); then
		failed_round="$round (load: $out)"
		break
	fi
	io $round
	# Once I/O is under way (requests are then in flight, waiting out the delay), kill it and
	# unload at once: the last requests are still completing.
	ios
	base=$done_ios
	w=0
	while [ $w -lt 5000 ] && kill -0 $io_pid 2>/dev/null; do
		ios
		[ "$done_ios" -gt "$base" ] && break
		w=$((w + 1))
	done
	[ "$done_ios" -gt "$base" ] && busy_rounds=$((busy_rounds + 1))
	kill -9 $io_pid 2>/dev/null
	if ! unload >$t0 2>&1; then
		failed_round="$round (unload: $(cat $t0))"
		break
	fi
	wait $io_pid 2>/dev/null
	[ -n "$VERBOSE" ] && echo "# round $round: $eng on $dev, $tries busy rmmod so far, $(($(date +%s) - start)) s"
done
secs=$(($(date +%s) - start))
rm -f $t0
echo "# $round round(s) in $secs s; I/O under way at the kill in $busy_rounds; rmmod found the module busy $tries time(s)"
if [ -z "$failed_round" ] && [ $busy_rounds -eq 0 ]; then
	not_ok unload_stress_rounds "no round had I/O under way when it was killed"
elif [ -z "$failed_round" ]; then
	ok unload_stress_rounds
else
	not_ok unload_stress_rounds "round $failed_round"
fi

# With the delay, storage allocations failing: a write is retried by the worker, not failed.
lsmod | grep -q '^iov_extract ' || insmod "$MODULE" $params "delay_us=$DELAY_US"
wait_devices
t=/tmp/unload.$$
mkdir -p $t
dd if=/dev/urandom of=$t/d bs=64k count=16 2>/dev/null
busy0=$(cat $knobs/ramdisk_busy)
echo 8 >$knobs/ramdisk_fail_allocs
if dd if=$t/d of="$BDEV" bs=64k seek=100 oflag=direct 2>$t/err &&
	dd if="$BDEV" of=$t/b bs=64k skip=100 count=16 iflag=direct 2>>$t/err &&
	cmp -s $t/d $t/b; then
	left=$(cat $knobs/ramdisk_fail_allocs)
	busy=$(($(cat $knobs/ramdisk_busy) - busy0))
	echo "# 1 MiB written with 8 allocations failing: $busy request(s) retried, $left failure(s) left"
	if [ "$left" -eq 0 ] && [ "$busy" -gt 0 ]; then
		ok delayed_write_retried_under_allocation_failure
	else
		not_ok delayed_write_retried_under_allocation_failure "$busy retried, $left failures left"
	fi
else
	sed 's/^/# /' $t/err
	not_ok delayed_write_retried_under_allocation_failure "the write failed or read back other bytes"
fi
echo 0 >$knobs/ramdisk_fail_allocs
rm -rf $t

reload unload_stress_reload_without_delay
[ "$failed" -eq 0 ]
