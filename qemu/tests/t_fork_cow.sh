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

run_delayed fork_cow "$DELAY_US" || exit 1
[ $failed -eq 0 ]
