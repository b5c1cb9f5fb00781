#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest entry point: the module under injected faults (failslab, fail_page_alloc,
# fail_make_request; Documentation/fault-injection/fault-injection.rst in the kernel tree).
#
# For each path (psync: pread/pwrite and vectored on the direct-I/O device; bdev: the same with
# O_DIRECT on the block device; libaio; uring; fixed: io_uring with registered buffers; gup: the
# gup_test ioctls of /dev/iovx_gup), random_io runs a short random sequence with make-it-fail
# set in its own threads only (task-filter), under each fault setting below; so does
# passthrough --faults for the passthrough ioctl and io_uring command (allowed outcomes: its
# own, in qemu/tests/passthrough.c). Allowed outcomes:
# an I/O ends in full, short, or with ENOMEM, EIO or EAGAIN (random_io --faults); a gup_test
# ioctl ends with 0, ENOMEM, EIO or EAGAIN; a failed or short write leaves each sector it covered
# with its old or its new content, and every other sector as it was (the model checks every
# read and the whole region at the end); pins and the module's counters balance after every
# run. Faults must actually be injected (the attributes' `times` count down).
#
# Then: the RAM disk with only non-sleeping allocations failing (GFP_NOWAIT, as under memory
# pressure), every one of them in the writing task: no write may fail (random_io --strict), the
# writes are retried (ramdisk_busy grows); the module's own allocations failing (the stack
# trace filter on its text); faults together with delayed completions (delay_us); and a
# verification pass with no fault at all. OPS overrides the operations per run (default 40 at
# full size, IOVX_FULL=1 as in `make soak`, 24 otherwise), SETTINGS the fault settings (at full
# size all seven; otherwise the 50 percent ones are left out, the 5 percent and the
# fail-every-one-three-times settings staying).
here=$(cd "$(dirname "$0")" && pwd)
DEV=${DEV:-/dev/iovx_dio0}
BDEV=${BDEV:-/dev/iovx0}
MODULE=${MODULE:-/iovx/modules/iov_extract.ko}
if [ -n "${IOVX_FULL:-}" ]; then OPS=${OPS:-40}; else OPS=${OPS:-24}; fi
SEED=${SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
dbg=/sys/kernel/debug
knobs=$dbg/iov_extract
disk=/sys/block/${BDEV##*/}

if [ ! -e "$DEV" ] || [ ! -e "$BDEV" ]; then
	echo "ok 1 faults # SKIP $DEV or $BDEV does not exist"
	exit 0
fi
if [ ! -d $dbg/failslab ] || [ ! -d $dbg/fail_page_alloc ] || [ ! -d $dbg/fail_make_request ]; then
	echo "ok 1 faults # SKIP the kernel has no fault injection (failslab, fail_page_alloc, fail_make_request)"
	exit 0
fi
. "$here/reload.sh"
echo "# seed $SEED, $OPS operations per run"

attrs="failslab fail_page_alloc fail_make_request"
BIG=1000000

# off: no fault anywhere.
off() {
	for a in $attrs; do
		echo 0 >$dbg/$a/probability
		echo 0 >$dbg/$a/times
		echo 0 >$dbg/$a/require-start 2>/dev/null
		echo 0xffffffffffffffff >$dbg/$a/require-end 2>/dev/null
	done
	echo 0 >$disk/make-it-fail 2>/dev/null
}

# arm ATTR PROBABILITY TIMES [VERBOSE]: faults of ATTR in tasks with make-it-fail, sleeping
# allocations included, any order. VERBOSE 2 logs each fault with a stack trace (the log
# must still pass: "FAULT_INJECTION: forcing a failure" and its trace are no kernel report).
arm() {
	d=$dbg/$1
	echo Y >$d/task-filter
	echo 1 >$d/interval
	echo 0 >$d/space
	echo "${4:-0}" >$d/verbose
	[ -e $d/ignore-gfp-wait ] && echo N >$d/ignore-gfp-wait
	[ -e $d/ignore-gfp-highmem ] && echo N >$d/ignore-gfp-highmem
	[ -e $d/min-order ] && echo 0 >$d/min-order
	[ "$1" = fail_make_request ] && echo 1 >$disk/make-it-fail
	echo "$3" >$d/times
	echo "$2" >$d/probability
}

# injected: faults injected since the last arm (the times counted down).
injected() {
	sum=0
	for a in $attrs; do
		t=$(cat $dbg/$a/times)
		[ "$t" -ge 0 ] 2>/dev/null || continue
		start=$(cat /tmp/faults.times.$a 2>/dev/null || echo "$t")
		sum=$((sum + start - t))
	done
	echo $sum
}
mark_times() {
	for a in $attrs; do cat $dbg/$a/times >/tmp/faults.times.$a; done
}

total_injected=0
# run NAME ARGS...: random_io with faults as armed; its result lines numbered after ours.
run() {
	name=$1
	shift
	mark_times
	out=$(KTAP_FIRST=$((n + 1)) "$here/random_io" --name "$name" --dev "$DEV" --bdev "$BDEV" \
		--region 4 --phase 1000 "$@")
	rc=$?
	inj=$(injected)
	off
	total_injected=$((total_injected + inj))
	printf '%s\n' "$out"
	echo "# $name: $inj fault(s) injected"
	n=$((n + $(printf '%s\n' "$out" | grep -cE '^(not )?ok [0-9]+')))
	[ $rc -ne 0 ] && failed=$((failed + 1))
}

# setting NAME: arms the fault setting NAME.
if [ -n "${IOVX_FULL:-}" ]; then
	settings=${SETTINGS:-slab5 slab50 slab100x3 page5 page50 page100x3 request20}
else
	settings=${SETTINGS:-slab5 slab100x3 page5 page100x3 request20}
fi
setting() {
	case $1 in
	slab5) arm failslab 5 $BIG ;;
	slab50) arm failslab 50 $BIG ;;
	slab100x3) arm failslab 100 3 2 ;;
	page5) arm fail_page_alloc 5 $BIG ;;
	page50) arm fail_page_alloc 50 $BIG ;;
	page100x3) arm fail_page_alloc 100 3 2 ;;
	request20) arm fail_make_request 20 $BIG ;;
	esac
}

off
s=$SEED
for path in psync bdev libaio uring fixed gup; do
	path_injected=$total_injected
	for set in $settings; do
		# No bio is made by the gup_test ioctls.
		[ $path = gup ] && [ $set = request20 ] && continue
		s=$((s + 1))
		setting $set
		run "faults_${path}_$set" --faults --seed $s --ops "$OPS" --paths $path
	done
	if [ $((total_injected - path_injected)) -gt 0 ]; then
		ok "faults_${path}_injected"
	else
		not_ok "faults_${path}_injected" "no fault was injected on this path"
	fi
done

# Passthrough (passthrough --faults): the ioctl of disk 0 and the io_uring command of its
# /dev/iovx_ngN, with the Rust mapping (pinned or bounced) and the kernel's, issued with
# make-it-fail set. Passthrough requests do not go through submit_bio(), so fail_make_request
# never fires on them.
NGDEV=${NGDEV:-/dev/iovx_ng${BDEV##*/iovx}}
if [ -e "$NGDEV" ]; then
	path_injected=$total_injected
	for set in $settings; do
		[ $set = request20 ] && continue
		s=$((s + 1))
		setting $set
		mark_times
		out=$(PT_FAULTS_NAME="faults_$set" KTAP_FIRST=$((n + 1)) \
			"$here/passthrough" --faults "$OPS" $s "$BDEV" "$NGDEV")
		rc=$?
		inj=$(injected)
		off
		total_injected=$((total_injected + inj))
		printf '%s\n' "$out"
		echo "# faults_passthrough_$set: $inj fault(s) injected"
		n=$((n + $(printf '%s\n' "$out" | grep -cE '^(not )?ok [0-9]+')))
		[ $rc -ne 0 ] && failed=$((failed + 1))
	done
	if [ $((total_injected - path_injected)) -gt 0 ]; then
		ok faults_passthrough_injected
	else
		not_ok faults_passthrough_injected "no fault was injected on this path"
	fi
fi

# The RAM disk: only allocations that cannot sleep fail (GFP_NOWAIT ones, as under memory
# pressure), all of them, in the writing task. No write may fail: the request is handed back
# to blk-mq and retried.
busy0=$(cat $knobs/ramdisk_busy)
for a in failslab fail_page_alloc; do
	arm $a 100 -1
	echo Y >$dbg/$a/ignore-gfp-wait
done
mark_times
s=$((s + 1))
out=$(KTAP_FIRST=$((n + 1)) "$here/random_io" --name faults_ramdisk_nowait --dev "$DEV" \
	--bdev "$BDEV" --region 4 --phase 1000 --faults --strict --seed $s --ops $((OPS * 2)) \
	--paths psync,bdev,zeroout)
rc=$?
off
printf '%s\n' "$out"
n=$((n + $(printf '%s\n' "$out" | grep -cE '^(not )?ok [0-9]+')))
[ $rc -ne 0 ] && failed=$((failed + 1))
busy=$(($(cat $knobs/ramdisk_busy) - busy0))
echo "# writes with every non-sleeping allocation failing: $busy request(s) handed back and retried"
if [ "$busy" -gt 0 ]; then
	ok faults_ramdisk_nowait_retried
else
	not_ok faults_ramdisk_nowait_retried "no request was retried: no storage allocation failed"
fi

# The module's own allocations: every allocation made with the module's code on the stack may
# fail, whoever makes it (no task filter).
text=$(cat /sys/module/iov_extract/sections/.text 2>/dev/null)
data=$(cat /sys/module/iov_extract/sections/.data 2>/dev/null)
if [ -n "$text" ] && [ -n "$data" ] && [ -e $dbg/failslab/require-start ]; then
	for a in failslab fail_page_alloc; do
		arm $a 30 $BIG
		echo $((text)) >$dbg/$a/require-start
		echo $((data)) >$dbg/$a/require-end
		echo 32 >$dbg/$a/stacktrace-depth
	done
	s=$((s + 1))
	run faults_module_allocs --faults --seed $s --ops $((OPS * 2))
	if [ "$inj" -gt 0 ]; then ok faults_module_allocs_injected; else not_ok faults_module_allocs_injected "no fault was injected"; fi
else
	not_ok faults_module_allocs_injected "no stack trace filter or no module sections"
fi

# Faults with delayed completions: the transfer runs later, in the module's worker.
echo "# iov_extract parameters:$params"
if reload faults_reload_with_delay delay_us=2000; then
	arm failslab 10 $BIG
	arm fail_page_alloc 10 $BIG
	arm fail_make_request 10 $BIG
	s=$((s + 1))
	run faults_delayed_mixed --faults --seed $s --ops $((OPS * 3))
	if [ "$inj" -gt 0 ]; then ok faults_delayed_injected; else not_ok faults_delayed_injected "no fault was injected"; fi
	reload faults_reload_without_delay
fi

# Afterwards, with no fault: everything works and the data is what was written.
off
s=$((s + 1))
run faults_verify_after --seed $s --ops $((OPS * 3))
echo "# $total_injected fault(s) injected in all"
rm -f /tmp/faults.times.*
[ "$failed" -eq 0 ]
