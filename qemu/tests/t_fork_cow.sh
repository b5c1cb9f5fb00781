#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest entry point: fork_cow (direct I/O in flight across fork) on disk 0 of iov_extract.
# The module is reloaded with a completion delay (delay_us, DELAY_US in the environment,
# default 200000) so that the I/O is still in flight at the fork, and reloaded without it
# afterwards; its other parameters are kept. DEV and BDEV override the devices, MODULE the
# module file.
here=$(cd "$(dirname "$0")" && pwd)
DEV=${DEV:-/dev/iovx_dio0}
BDEV=${BDEV:-/dev/iovx0}
MODULE=${MODULE:-/iovx/modules/iov_extract.ko}
DELAY_US=${DELAY_US:-200000}
if [ ! -e "$DEV" ] || [ ! -e "$BDEV" ]; then
	echo "ok 1 fork_cow # SKIP $DEV or $BDEV does not exist"
	exit 0
fi
. "$here/reload.sh"

echo "# iov_extract parameters:$params"
if ! reload fork_cow_reload_with_delay "delay_us=$DELAY_US"; then
	exit 1
fi
out=$(KTAP_FIRST=$((n + 1)) "$here/fork_cow" "$DEV" "$BDEV")
rc=$?
printf '%s\n' "$out"
n=$((n + $(printf '%s\n' "$out" | grep -cE '^(not )?ok [0-9]+')))
[ $rc -ne 0 ] && failed=$((failed + 1))
reload fork_cow_reload_without_delay || exit 1
[ $failed -eq 0 ]
