#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of scripts/profile: samples the kernel with perf (cpu-clock, all CPUs, call
# graphs) while one workload runs on the Rust path and then on its C peer, and prints the
# hottest symbols of each. Runs from /extra after the guest runner has loaded iov_extract.ko.
#
#   PROFILE-BEGIN / PROFILE-END          the whole run
#   PROFILE-CASE name what               one workload begins; perf's report follows

E=/extra
[ -w /dev/ttyS1 ] && exec >/dev/ttyS1 2>&1
RUNTIME=5s SIZE_MB=64 CASES=all TOP=70
[ -f $E/profile.conf ] && . $E/profile.conf

run() { "$E/lib/ld-linux-x86-64.so.2" --library-path "$E/lib" "$E/bin/$@"; }
echo 0 >/proc/sys/kernel/kptr_restrict
echo -1 >/proc/sys/kernel/perf_event_paranoid
mount -t debugfs none /sys/kernel/debug 2>/dev/null
for b in iovx0; do
	echo none >/sys/block/$b/queue/scheduler 2>/dev/null
	echo 0 >/sys/block/$b/queue/iostats 2>/dev/null
done

# CASE NAME WHAT CMD...: profile CMD, report the kernel's hottest symbols.
case_() {
	name=$1 what=$2
	shift 2
	case " $CASES " in *" $name "*|" all ") ;; *) return ;; esac
	echo "PROFILE-CASE $name $what"
	run perf record -q -e cpu-clock -F 2000 -a -g -o /tmp/perf.data -- "$@" >/tmp/case.out 2>&1 ||
		{ echo "PROFILE-ERROR $name: $(tail -n 3 /tmp/case.out | tr '\n' ' ')"; return; }
	grep -E 'IOPS=|issued rwts|Time:|cpu  *:' /tmp/case.out | head -n 4
	# Samples per object and per symbol (-n), kernel and user: divide by the I/O count of the
	# run to compare the Rust path with its peer per operation. In an emulated guest the timer
	# interrupt that takes a sample is only taken where interrupts are enabled again, so time
	# spent with them off is charged to the code that enables them: trust the totals per object
	# more than single symbols.
	echo "-- per object --"
	run perf report -i /tmp/perf.data --stdio --no-children -n --sort dso -g none \
		--percent-limit 0.3 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 12
	echo "-- per symbol --"
	run perf report -i /tmp/perf.data --stdio --no-children -n --sort dso,sym -g none \
		--percent-limit 0.3 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n "$TOP"
}

fio_job() { # DEV RW BS ENGINE DEPTH
	echo "--name=p --filename=$1 --rw=$2 --bs=$3 --ioengine=$4 --iodepth=$5 --direct=1
		--size=${SIZE_MB}m --time_based --runtime=$RUNTIME --norandommap --randrepeat=0
		--invalidate=0 --thread"
}

echo "PROFILE-BEGIN"
run fio --name=pre --filename=/dev/iovx0 --rw=write --bs=1m --direct=1 --size=${SIZE_MB}m >/dev/null 2>&1
for w in "randread 4k psync 1" "randwrite 4k psync 1" "randread 4k io_uring 32" "read 1m psync 1"; do
	set -- $w
	tag=$1-$2-$3
	case_ "dio-$tag" "/dev/iovx_dio0 $w" fio $(fio_job /dev/iovx_dio0 "$@")
	case_ "blk-$tag" "/dev/iovx0 $w" fio $(fio_job /dev/iovx0 "$@")
done
gt=/sys/kernel/debug/gup_test
case_ gup-stock "gup_test -a -n 1" gup_test -a -n 1 -m 256 -r 10 -T
if mount --bind /dev/iovx_gup $gt; then
	case_ gup-iovx "iovx_gup -a -n 1" gup_test -a -n 1 -m 256 -r 10 -T
	umount $gt
fi
echo "PROFILE-END"
