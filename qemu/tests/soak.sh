#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of `make soak` (the runner's soak mode): random_io with fault injection for SECS
# seconds (default 1800), in rounds of ROUND seconds (default 120), each with a seed of its own
# (SEED + round) and one fault setting in turn: failslab, fail_page_alloc (5 or 20 percent,
# sleeping allocations included), fail_make_request (5 percent), all three at once, and every
# fourth round with the module completing requests after a delay (delay_us=2000). Faults hit
# only random_io's own threads (task-filter, make-it-fail). At the end: the figures (operations,
# I/Os, faults injected, errors by type, retried requests, pin balance) and a result line per
# round; the runner adds the kmemleak scan and the pin check.
here=$(cd "$(dirname "$0")" && pwd)
DEV=${DEV:-/dev/iovx_dio0}
BDEV=${BDEV:-/dev/iovx0}
MODULE=${MODULE:-/iovx/modules/iov_extract.ko}
SECS=${1:-${SECS:-1800}}
ROUND=${ROUND:-120}
SEED=${SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
dbg=/sys/kernel/debug
disk=/sys/block/${BDEV##*/}
attrs="failslab fail_page_alloc fail_make_request"
. "$here/reload.sh"

off() {
	for a in $attrs; do
		echo 0 >$dbg/$a/probability
		echo 0 >$dbg/$a/times
	done
	echo 0 >$disk/make-it-fail
}
arm() {
	d=$dbg/$1
	echo Y >$d/task-filter
	echo 1 >$d/interval
	echo 0 >$d/space
	echo 0 >$d/verbose
	[ -e $d/ignore-gfp-wait ] && echo N >$d/ignore-gfp-wait
	[ -e $d/ignore-gfp-highmem ] && echo N >$d/ignore-gfp-highmem
	[ -e $d/min-order ] && echo 0 >$d/min-order
	[ "$1" = fail_make_request ] && echo 1 >$disk/make-it-fail
	echo 1000000 >$d/times
	echo "$2" >$d/probability
}

echo "# soak: $SECS s in rounds of $ROUND s, seed $SEED; iov_extract parameters:$params"
start=$(date +%s)
round=0
injected=0
sum=/tmp/soak.sum
: >$sum
busy0=$(cat $dbg/iov_extract/ramdisk_busy)
while [ $(($(date +%s) - start)) -lt "$SECS" ]; do
	left=$((SECS - ($(date +%s) - start)))
	secs=$ROUND
	[ $left -lt $secs ] && secs=$left
	[ $secs -lt 10 ] && secs=10
	round=$((round + 1))
	delayed=
	if [ $((round % 4)) -eq 0 ]; then
		reload "soak_r${round}_reload_with_delay" delay_us=2000 && delayed=" (delay_us=2000)"
	fi
	off
	case $((round % 6)) in
	1) set="failslab 5"; arm failslab 5 ;;
	2) set="fail_page_alloc 5"; arm fail_page_alloc 5 ;;
	3) set="fail_make_request 5"; arm fail_make_request 5 ;;
	4) set="failslab 20"; arm failslab 20 ;;
	5) set="fail_page_alloc 20"; arm fail_page_alloc 20 ;;
	*) set="all three at 5"; arm failslab 5; arm fail_page_alloc 5; arm fail_make_request 5 ;;
	esac
	for a in $attrs; do cat $dbg/$a/times >/tmp/soak.times.$a; done
	echo "# round $round: $secs s, $set percent$delayed"
	out=$(KTAP_FIRST=$((n + 1)) "$here/random_io" --name "soak_r$round" --dev "$DEV" --bdev "$BDEV" \
		--faults --seed $((SEED + round)) --secs $secs --phase 200)
	rc=$?
	# The faults injected: how far each attribute's `times` counted down.
	k=0
	for a in $attrs; do
		k=$((k + $(cat /tmp/soak.times.$a) - $(cat $dbg/$a/times)))
	done
	injected=$((injected + k))
	off
	printf '%s\n' "$out"
	echo "# round $round: $k fault(s) injected"
	printf '%s\n' "$out" | grep -E '^# soak_r[0-9]+: seed [0-9]+: [0-9]+ operations' >>$sum
	n=$((n + $(printf '%s\n' "$out" | grep -cE '^(not )?ok [0-9]+')))
	[ $rc -ne 0 ] && failed=$((failed + 1))
	[ -n "$delayed" ] && reload "soak_r${round}_reload_without_delay"
done
secs=$(($(date +%s) - start))
busy=$(($(cat $dbg/iov_extract/ramdisk_busy) - busy0))
echo 1 >/proc/sys/vm/stat_refresh 2>/dev/null
acq=$(awk '$1 == "nr_foll_pin_acquired" { print $2 }' /proc/vmstat)
rel=$(awk '$1 == "nr_foll_pin_released" { print $2 }' /proc/vmstat)
# The totals of the rounds' summary lines:
# "# NAME: seed S: N operations, N I/Os (N full, N short), N MiB; errors: E N E N ..."
awk -v secs="$secs" -v rounds="$round" -v inj="$injected" -v busy="$busy" -v acq="$acq" \
	-v rel="$rel" -v failed="$failed" '
{
	for (i = 1; i <= NF; i++) {
		if ($i == "operations,") ops += $(i - 1)
		if ($i == "I/Os") ios += $(i - 1)
		if ($i == "full,") full += substr($(i - 1), 2)
		if ($i == "short),") short += $(i - 1)
		if ($i == "MiB;") mib += $(i - 1)
		if ($i == "errors:") for (j = i + 1; j < NF; j += 2) err[$j] += $(j + 1)
	}
}
END {
	e = ""
	for (k in err) e = e " " k " " err[k]
	if (e == "") e = " none"
	printf "# soak figures: %d s, %d rounds, %d operations, %d I/Os (%d full, %d short), %d MiB\n", secs, rounds, ops, ios, full, short, mib
	printf "# soak figures: %d faults injected; errors by type:%s; %d requests retried by the RAM disk\n", inj, e, busy
	printf "# soak figures: nr_foll_pin_acquired %d nr_foll_pin_released %d (%s); %d round(s) failed\n", acq, rel, acq == rel ? "balanced" : "NOT balanced", failed
}' $sum
rm -f $sum /tmp/soak.times.*
if [ "$acq" = "$rel" ]; then ok soak_pins_balanced; else not_ok soak_pins_balanced "acquired $acq released $rel"; fi
[ "$failed" -eq 0 ]
