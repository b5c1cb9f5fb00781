#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest entry point: fork_cow (direct I/O in flight across fork) on disk 0 of iov_extract, once
# with the pages of the I/O pinned (extract_legacy=N: the parent keeps the I/O, the child's copy
# is untouched) and once taken with references (extract_legacy=Y, the behaviour before the
# iov_iter_extract_pages() series: the corruption fork() then causes must be seen). The module
# is reloaded with a completion delay (delay_us, DELAY_US in the environment, default 400000,
# on arm64 1500000) so that the I/O is in flight at the fork, and reloaded without it
# afterwards; its other parameters are kept. DEV and BDEV override the devices, MODULE the module file.
here=$(cd "$(dirname "$0")" && pwd)
DEV=${DEV:-/dev/iovx_dio0}
BDEV=${BDEV:-/dev/iovx0}
MODULE=${MODULE:-/iovx/modules/iov_extract.ko}
# arm64 guests run under TCG only, where fork() of a process with a pinned 2 MiB huge page
# (split and copied for the child) takes longer than 400 ms: 1.5 s there.
case $(uname -m) in aarch64) delay=1500000 ;; *) delay=400000 ;; esac
DELAY_US=${DELAY_US:-$delay}
delay=$DELAY_US
PARAM=/sys/module/iov_extract/parameters/extract_legacy
if [ ! -e "$DEV" ] || [ ! -e "$BDEV" ]; then
	echo "ok 1 fork_cow # SKIP $DEV or $BDEV does not exist"
	exit 0
fi
. "$here/reload.sh"
# The legacy mode is switched at run time, not carried over reloads.
params=$(printf '%s\n' $params | grep -v '^extract_legacy=' | tr '\n' ' ')

# fork_cow_in MODE: runs the program with extract_legacy set for MODE (pin: N, legacy: Y).
fork_cow_in() {
	if [ "$1" = legacy ]; then v=Y; else v=N; fi
	if ! echo "$v" > "$PARAM"; then
		not_ok "fork_cow_set_$1" "cannot write $PARAM"
		return 1
	fi
	out=$(KTAP_FIRST=$((n + 1)) "$here/fork_cow" "$DEV" "$BDEV" "$1")
	rc=$?
	# Failures that all say the delay was too short (the host was slow: a fork took longer
	# than the delay) are not the property tested: the mode runs again with twice the delay,
	# up to three times, and the last run's results are the ones counted. Any other failure
	# counts at once.
	tries=0
	while [ $rc -ne 0 ] && [ $tries -lt 3 ] && printf '%s\n' "$out" | grep -q '^not ok' &&
		! printf '%s\n' "$out" | grep '^not ok' | grep -qv 'delay_us too short'; do
		tries=$((tries + 1))
		printf '%s\n' "$out" | sed 's/^/# too slow for the delay: /'
		delay=$((delay * 2))
		echo "# fork_cow $1: again with delay_us=$delay"
		reload "fork_cow_${1}_reload_with_delay_$delay" "delay_us=$delay" || return 1
		if ! echo "$v" > "$PARAM"; then
			not_ok "fork_cow_set_$1" "cannot write $PARAM"
			return 1
		fi
		out=$(KTAP_FIRST=$((n + 1)) "$here/fork_cow" "$DEV" "$BDEV" "$1")
		rc=$?
	done
	printf '%s\n' "$out"
	n=$((n + $(printf '%s\n' "$out" | grep -cE '^(not )?ok [0-9]+')))
	[ $rc -ne 0 ] && failed=$((failed + 1))
	echo N > "$PARAM"
}

echo "# iov_extract parameters:$params"
reload fork_cow_reload_with_delay "delay_us=$DELAY_US" || exit 1
fork_cow_in pin
fork_cow_in legacy
reload fork_cow_reload_without_delay
[ $failed -eq 0 ]
