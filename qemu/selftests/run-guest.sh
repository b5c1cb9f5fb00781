#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Run the upstream mm selftests that use the gup_test ioctl ABI (gup_test, gup_longterm, cow,
# hugetlb_dio) inside the guest, first against the kernel's own /sys/kernel/debug/gup_test and
# then with /dev/iovx_gup bind-mounted over that path. The programs sit next to this script.
#
#   sh run-guest.sh [both|stock|iovx [PROG...]]
#
# The default is both parts and all four programs (iovx alone has no skip counts to compare
# with). IOVX=PATH names another character device to bind over the stock one.
#
# CWD=DIR runs the programs in DIR instead of a tmpfs (gup_longterm makes its "local tmpfile"
# there: on ext4, the refusal of writable long-term pins of shared file mappings is then
# exercised); TAG=SUFFIX is appended to the result names. CASES=same asks, with both parts,
# that the iovx device gives every case of a program the same result (pass, fail or skip) as
# the stock one, and that no "local tmpfile" case was skipped. STOCK_SKIP=PROGS leaves those
# programs out of the stock part (the iovx part then has no skip count to compare with).
#
# Prints KTAP-style result lines at column 0 ("ok N name" / "not ok N name # reason"); the
# programs' own output is shown indented behind "# ". Exits non-zero if any result is not ok.

parts=${1:-both}
[ $# -gt 0 ] && shift
here=$(cd "$(dirname "$0")" && pwd)
GUP=/sys/kernel/debug/gup_test
IOVX=${IOVX:-/dev/iovx_gup}
work=/tmp/iovx-selftests
CWD=${CWD:-$work}
TAG=${TAG:-}
CASES=${CASES:-}
STOCK_SKIP=${STOCK_SKIP:-}
HUGEPAGES=16			# 2 MiB each: cow and gup_test -H need 2 at a time
SWAP_KB=262144			# brd ramdisk used as swap, for cow's MADV_PAGEOUT cases
PROGS=${*:-gup_test gup_longterm hugetlb_dio cow}
KERNEL_BAD='BUG:|WARNING:|KASAN|Oops|general protection|circular locking|inconsistent lock|UBSAN|Bad page|refcount_t:|corruption|stall'

# KTAP_FIRST in the environment numbers the first result line (default 1).
n=$((${KTAP_FIRST:-1} - 1))
failed=0
ok() { n=$((n + 1)); echo "ok $n $*"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n $1 # $2"; }
note() { echo "# $*"; }
# say CMD...: run CMD with its output shown as comments; its exit status.
say() {
	out=$("$@" 2>&1)
	rc=$?
	[ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/# /'
	return $rc
}
kmsg() { echo "iovx-selftests: $*" >/dev/kmsg 2>/dev/null; }

vmstat() { awk -v k="$1" '$1 == k { print $2 }' /proc/vmstat; }
meminfo() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }

# uptime_s: whole seconds since boot in $up (no fork: forks are slow under TCG with KASAN).
uptime_s() {
	read -r up _ </proc/uptime
	up=${up%.*}
}

# run_one LIMIT PROG ARGS...: run one invocation with its output streamed (indented) and
# saved, then add its kselftest totals to the tally t_pass/t_fail/t_skip of the current
# program. An invocation without totals counts as one failure, or one skip if it said so.
run_one() {
	limit=$1 prog=$2
	shift 2
	what="$prog${*:+ $*}"
	note "\$ $what"
	last=$work/last.log
	uptime_s
	t1=$up
	{ timeout -s KILL "$limit" "$here/$prog" "$@" 2>&1; echo $? >"$last.rc"; } |
		awk -v last="$last" -v all="$work/$prog$TAG-$dev.log" \
			'{ print > last; print >> all; print "#   " $0; fflush() }'
	read -r rc <"$last.rc"
	uptime_s
	note "-> exit $rc after $((up - t1))s"
	# One pass over the output: the last totals line (xfail and xpass count as passes, errors
	# as failures), a missed plan, a whole-program skip, and each failing case named by the
	# last "[RUN]" line before its "not ok".
	awk -v cnt="$last.cnt" '
		/^# \[RUN\]/ { run = substr($0, 3) }
		/^not ok/ { print "# FAILED: " (run != "" ? run " -> " : "") $0 }
		/^# Totals:/ {
			tot = 1
			for (i = 3; i <= NF; i++) { split($i, kv, ":"); v[kv[1]] = kv[2] }
		}
		/^# Planned tests != run tests/ { plan = 1 }
		/^1\.\.0 # SKIP/ { skipall = 1 }
		END {
			printf "%d %d %d %d %d %d\n", tot, v["pass"] + v["xfail"] + v["xpass"],
				v["fail"] + v["error"], v["skip"], plan, skipall > cnt
		}' "$last"
	read -r tot p f s plan skipall <"$last.cnt"
	if [ "$tot" = 1 ]; then
		if [ "$plan" = 1 ]; then
			f=$((f + 1))
			t_why="$t_why; $what: planned != run"
		fi
	elif [ "$skipall" = 1 ] || [ "$rc" = 4 ]; then
		p=0 f=0 s=1
	else
		p=0 f=1 s=0
		t_why="$t_why; $what: no totals, exit $rc"
	fi
	case "$rc" in
	0 | 4) ;;
	137) t_why="$t_why; $what: killed (time limit ${limit}s, or OOM)"; [ "$f" -gt 0 ] || f=1 ;;
	*) if [ "$f" -eq 0 ]; then f=1; t_why="$t_why; $what: exit $rc"; fi ;;
	esac
	[ "$f" -gt 0 ] && t_bad="$t_bad
$what"
	t_pass=$((t_pass + p)) t_fail=$((t_fail + f)) t_skip=$((t_skip + s))
}

# The gup_test invocations: every ioctl on private anonymous memory with THP off and on, on
# hugetlb and on a shmem file; writable and read-only, private and shared; 1, 512 (a PMD's
# worth) and 123 (a partial huge page) pages per call; page dumps with get and pin; two
# threads at once. Sizes are small: under TCG with KASAN, faulting the pages in costs most.
# (-z is left out: in 6.12 it passes FOLL_TOUCH, an internal flag, and only trips a WARN.)
gup_test_cases() {
	L=180
	for mem in "-T -m 4" "-t -m 4" "-H -m 4"; do
		for cmd in -u -U -a -b -L; do
			run_one $L gup_test $mem $cmd -w -n 1
			run_one $L gup_test $mem $cmd -W -n 123
			run_one $L gup_test $mem $cmd -w -S -n 512
		done
	done
	file=$work/shmem-file
	dd if=/dev/zero of="$file" bs=1M count=4 2>/dev/null
	for cmd in -u -U -a -b -L; do
		run_one $L gup_test -f "$file" -S -m 4 $cmd -w -n 123
		run_one $L gup_test -f "$file" -m 4 $cmd -W -n 64
	done
	# DUMP_USER_PAGES_TEST, with get (default) and pin (-p); page indices follow the options.
	run_one $L gup_test -ct -F 0x1 -m 8 0 19 0x7ff
	run_one $L gup_test -cT -m 8 -p 0 19 0x7ff
	run_one $L gup_test -c -H -m 4 -p 0 1 511 512 1023
	run_one $L gup_test -c -S -W -m 4 0 100
	run_one $L gup_test -c -f "$file" -S -m 4 -p 0 5
	# Concurrent callers on one mapping, repeated.
	run_one $L gup_test -t -m 8 -a -j 2 -r 2 -n 512
	run_one $L gup_test -T -m 8 -L -j 2 -r 2 -n 123
	run_one $L gup_test -H -m 4 -b -j 2 -n 1
	rm -f "$file"
}

# cow_run: cow, with THP hidden from it when a PMD huge page is larger than COW_THP_MAX_KB
# (2048): cow copies, forks and pages out every THP size the kernel offers, from the PMD size
# down; with 64 KiB pages those are 12 sizes up to 512 MiB, and under TCG the first 134 of
# its 1131 cases took 45 minutes. A file saying 0 bind-mounted over hpage_pmd_size makes cow
# report THP as unsupported and plan its base-page, hugetlb and non-anonymous cases only.
cow_run() {
	thp=/sys/kernel/mm/transparent_hugepage/hpage_pmd_size
	pmd_kb=$(($(cat "$thp" 2>/dev/null || echo 0) / 1024))
	hidden=
	if [ "$pmd_kb" -gt "${COW_THP_MAX_KB:-2048}" ]; then
		echo 0 >"$work/no-thp"
		if ! mount -o bind "$work/no-thp" "$thp"; then
			t_fail=$((t_fail + 1)) t_why="$t_why; cow: bind mount over $thp failed"
			return
		fi
		hidden=1
		note "cow without THP: a PMD huge page is $pmd_kb KiB (more than ${COW_THP_MAX_KB:-2048})"
	fi
	run_one 1500 cow
	if [ -n "$hidden" ]; then
		umount "$thp"
	fi
}

# pins_balanced TAG: the kernel's own FOLL_PIN counters agree once the per-CPU deltas are
# folded. io_uring drops its buffer pins from a workqueue after the ring closes, so wait a bit.
pins_balanced() {
	i=0
	while :; do
		echo 1 >/proc/sys/vm/stat_refresh 2>/dev/null
		acq=$(vmstat nr_foll_pin_acquired) rel=$(vmstat nr_foll_pin_released)
		[ "$acq" = "$rel" ] && break
		i=$((i + 1))
		[ $i -ge 10 ] && break
		sleep 1
	done
	note "nr_foll_pin_acquired $acq nr_foll_pin_released $rel"
	if [ "$acq" = "$rel" ]; then
		ok "pins_balanced_after_$1"
	else
		not_ok "pins_balanced_after_$1" "acquired $acq != released $rel"
	fi
}

# kernel_log_clean TAG MARK: no warning, KASAN report or lockdep splat since MARK.
kernel_log_clean() {
	dmesg >"$work/dmesg"
	if ! grep -q "iovx-selftests: $2\$" "$work/dmesg"; then
		not_ok "kernel_log_clean_after_$1" "start marker lost (log overflowed)"
		return
	fi
	bad=$(sed -n "/iovx-selftests: $2\$/,\$p" "$work/dmesg" | grep -E "$KERNEL_BAD")
	if [ -z "$bad" ]; then
		ok "kernel_log_clean_after_$1"
	else
		printf '%s\n' "$bad" | head -n 20 | sed 's/^/# kernel: /'
		not_ok "kernel_log_clean_after_$1" "$(printf '%s\n' "$bad" | wc -l) suspicious kernel log lines"
	fi
}

# run_cases PROG: every invocation of one program against the device now at $GUP.
run_cases() {
	case "$1" in
	gup_test) gup_test_cases ;;
	cow) cow_run ;;
	*) run_one 600 "$1" ;;
	esac
}

# hugepages_settle: wait (up to 30 s) until every page of the hugetlb pool is free.
hugepages_settle() {
	i=0
	while [ "$(meminfo HugePages_Free)" != "$(meminfo HugePages_Total)" ] && [ $i -lt 30 ]; do
		sleep 1
		i=$((i + 1))
	done
	note "hugetlb pages free $(meminfo HugePages_Free) of $(meminfo HugePages_Total) after ${i}s"
}

# run_prog PROG: run one program (all its invocations) against the device now at $GUP and
# print its tally and result line. Uses $dev (stock or iovx).
run_prog() {
	prog=$1
	t_pass=0 t_fail=0 t_skip=0 t_why= t_bad=
	rm -f "$work/$prog$TAG-$dev.log"
	if [ ! -x "$here/$prog" ]; then
		not_ok "${prog}${TAG}_$dev" "$here/$prog missing"
		return
	fi
	uptime_s
	mark="$prog $dev $up"
	kmsg "$mark"
	note "--- $prog on the $dev device"
	uptime_s
	t0=$up
	run_cases "$prog"
	# io_uring releases a ring's fixed buffers from a workqueue once the ring is gone, so on a
	# loaded host a case may find the huge pages of the case before it not yet free, and skip
	# ("need more free huge pages"). A run on the iovx device that failed nothing but skipped
	# more than the stock one is run once more, from a free hugetlb pool, and that run counts
	# (a device that makes cases skip does so again).
	eval "ref=\${skip_${prog}_stock:-}"
	if [ "$dev" = iovx ] && [ "$t_fail" -eq 0 ] && [ -n "$ref" ] && [ "$t_skip" -gt "$ref" ]; then
		note "$prog iovx: skip $t_skip > stock's $ref; run again"
		hugepages_settle
		mv "$work/$prog$TAG-$dev.log" "$work/$prog$TAG-$dev.first.log" 2>/dev/null
		t_pass=0 t_fail=0 t_skip=0 t_why= t_bad=
		run_cases "$prog"
	fi
	uptime_s
	secs=$((up - t0))
	kmsg "$prog $dev done"
	note "$prog $dev: pass $t_pass fail $t_fail skip $t_skip (${secs}s)"
	[ -n "$t_bad" ] && printf '%s\n' "$t_bad" | sed '/^$/d; s/^/# failing: /'
	eval "skip_${prog}_$dev=$t_skip"
	why=
	[ "$t_fail" -gt 0 ] && why="fail $t_fail${t_why}"
	if [ "$dev" = iovx ]; then
		eval "ref=\${skip_${prog}_stock:-}"
		if [ -n "$ref" ] && [ "$t_skip" -gt "$ref" ]; then
			why="${why:+$why; }skip $t_skip > stock's $ref"
		fi
	fi
	if [ -z "$why" ]; then
		ok "${prog}${TAG}_$dev"
	else
		not_ok "${prog}${TAG}_$dev" "$why"
	fi
	[ "$CASES" = same ] && same_cases "$prog"
	pins_balanced "${prog}${TAG}_$dev"
	kernel_log_clean "${prog}${TAG}_$dev" "$mark"
	hp_free=$(meminfo HugePages_Free) hp_total=$(meminfo HugePages_Total)
	[ "$hp_free" = "$hp_total" ] || note "hugetlb pages free $hp_free of $hp_total after $prog"
}

# cases LOG: one line per case of a kselftest log, "DESCRIPTION: pass|fail|skip", the
# description being that of the last "[RUN]" line before the case's result.
cases() {
	awk '/^# \[RUN\]/ { run = substr($0, 9); next }
		/^ok [0-9]+ .*# [Ss][Kk][Ii][Pp]/ { print run ": skip"; next }
		/^ok [0-9]+/ { print run ": pass"; next }
		/^not ok [0-9]+/ { print run ": fail" }' "$1"
}

# same_cases PROG: with CASES=same, after the stock and the iovx runs of PROG: the same result
# for every case, and no "local tmpfile" case skipped (on either device).
same_cases() {
	cases "$work/$1$TAG-$dev.log" >"$work/$1$TAG-$dev.cases"
	[ "$dev" = iovx ] || return 0
	if [ ! -s "$work/$1$TAG-stock.cases" ] || [ ! -s "$work/$1$TAG-iovx.cases" ]; then
		not_ok "${1}${TAG}_same_cases" "no cases to compare"
		return
	fi
	total=$(wc -l <"$work/$1$TAG-iovx.cases")
	diffs=$(diff "$work/$1$TAG-stock.cases" "$work/$1$TAG-iovx.cases")
	local_cases=$(grep -c 'with local tmpfile:' "$work/$1$TAG-iovx.cases")
	local_skip=$(cat "$work/$1$TAG-stock.cases" "$work/$1$TAG-iovx.cases" |
		grep -c 'with local tmpfile: skip')
	grep 'with local tmpfile:' "$work/$1$TAG-iovx.cases" | sed 's/^/# local tmpfile, both devices: /'
	if [ -n "$diffs" ]; then
		printf '%s\n' "$diffs" | sed 's/^/# stock<>iovx: /'
		not_ok "${1}${TAG}_same_cases" "the devices disagree on $(printf '%s\n' "$diffs" | grep -c '^+[^+]') of $total cases"
	elif [ "$local_skip" -gt 0 ]; then
		not_ok "${1}${TAG}_same_cases" "$local_skip local tmpfile case(s) skipped"
	else
		ok "${1}${TAG}_same_cases # $total cases alike, $local_cases on the local tmpfile"
	fi
}

setup() {
	# The working directory is a tmpfs (or CWD): gup_longterm creates a file in it.
	mkdir -p "$work" "$CWD"
	cd "$CWD" || exit 1
	[ -e "$GUP" ] || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null

	echo "$HUGEPAGES" >/proc/sys/vm/nr_hugepages 2>/dev/null
	got=$(cat /proc/sys/vm/nr_hugepages)
	if [ "$got" -ge "$HUGEPAGES" ]; then
		ok "setup_hugetlb # $got pages of $(meminfo Hugepagesize) kB"
	else
		not_ok setup_hugetlb "asked for $HUGEPAGES huge pages, got $got"
	fi

	if grep -q '^/dev/ram0 ' /proc/swaps; then
		ok "setup_swap # already on"
	else
		[ -d /sys/module/brd ] || say insmod /iovx/kmods/brd.ko rd_nr=1 rd_size=$SWAP_KB
		if [ -b /dev/ram0 ] && say mkswap /dev/ram0 && say swapon /dev/ram0 &&
			grep -q '^/dev/ram0 ' /proc/swaps; then
			ok "setup_swap # /dev/ram0, $SWAP_KB kB"
		else
			not_ok setup_swap "no swap on /dev/ram0 (brd.ko missing?)"
		fi
	fi
	for f in enabled defrag; do
		note "transparent_hugepage/$f: $(cat /sys/kernel/mm/transparent_hugepage/$f 2>/dev/null)"
	done
	note "hugetlb sizes: $(ls /sys/kernel/mm/hugepages 2>/dev/null | tr '\n' ' ')"
}

# devnum PATH: major:minor of a device node, in decimal.
devnum() {
	set -- $(stat -L -c '%t %T' "$1" 2>/dev/null)
	[ $# -eq 2 ] && printf '%d:%d\n' "0x$1" "0x$2"
}

part_stock() {
	dev=stock
	if [ -e "$GUP" ]; then
		ok "stock_gup_test_device # $GUP"
	else
		not_ok stock_gup_test_device "$GUP absent (CONFIG_GUP_TEST, debugfs)"
	fi
	for p in $PROGS; do
		case " $STOCK_SKIP " in
		*" $p "*) note "$p not run on the stock device (STOCK_SKIP)" ;;
		*) run_prog "$p" ;;
		esac
	done
}

part_iovx() {
	dev=iovx
	if [ ! -c "$IOVX" ]; then
		if [ -e "$IOVX" ]; then
			not_ok iovx_gup_selftests "$IOVX is not a character device"
		else
			ok "iovx_gup_selftests # SKIP $IOVX absent"
		fi
		return
	fi
	num=$(devnum "$IOVX")
	note "$IOVX is a character device, $num"
	if [ ! -e "$GUP" ]; then
		not_ok iovx_gup_bind "$GUP absent: nothing to bind over"
		return
	fi
	if ! say mount -o bind "$IOVX" "$GUP" || [ "$(devnum "$GUP")" != "$num" ]; then
		not_ok iovx_gup_bind "bind mount of $IOVX over $GUP failed"
		return
	fi
	ok "iovx_gup_bind # $GUP is now $num"
	for p in $PROGS; do run_prog "$p"; done
	umount "$GUP" || not_ok iovx_gup_unbind "umount $GUP failed"
}

uptime_s
start=$up
note "mm selftests against the gup_test ABI, kernel $(uname -r)"
setup
case "$parts" in
both) part_stock; part_iovx ;;
stock) part_stock ;;
iovx) part_iovx ;;
*) echo "usage: $0 [both|stock|iovx [PROG...]]" >&2; exit 2 ;;
esac
uptime_s
note "selftests: $n results, $failed not ok, $((up - start))s"
[ "$failed" -eq 0 ]
