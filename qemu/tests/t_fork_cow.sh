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

# fork_cow_in MODE: runs the program with extract_legacy set for MODE (pin: N, legacy: Y),
# again with a longer delay if the host was too slow for it (run_mode).
fork_cow_in() {
	run_mode fork_cow "$1" "$here/fork_cow" "$DEV" "$BDEV" "$1"
}

echo "# iov_extract parameters:$params"
reload fork_cow_reload_with_delay "delay_us=$DELAY_US" || exit 1
fork_cow_in pin
fork_cow_in legacy
reload fork_cow_reload_without_delay
[ $failed -eq 0 ]
