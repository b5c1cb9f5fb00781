#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest entry point: hostile (memory pulled from under direct I/O in flight, a fatal signal,
# user sizes no page array can hold given to /dev/iovx_gup) on disk 0 of iov_extract.
# The module is reloaded with a completion delay (delay_us, DELAY_US in the environment,
# default 100000) so that the I/O is still in flight, and reloaded without it
# afterwards; its other parameters are kept. DEV and BDEV override the devices, MODULE the
# module file.
here=$(cd "$(dirname "$0")" && pwd)
DEV=${DEV:-/dev/iovx_dio0}
BDEV=${BDEV:-/dev/iovx0}
MODULE=${MODULE:-/iovx/modules/iov_extract.ko}
DELAY_US=${DELAY_US:-100000}
if [ ! -e "$DEV" ] || [ ! -e "$BDEV" ]; then
	echo "ok 1 hostile # SKIP $DEV or $BDEV does not exist"
	exit 0
fi
. "$here/reload.sh"

run_delayed hostile "$DELAY_US" || exit 1

# Unloading the module is refused while one of its devices is open, and works after close.
for d in "$DEV" /dev/iovx_gup "$BDEV"; do
	exec 3<"$d"
	if rmmod iov_extract 2>/dev/null; then
		not_ok "hostile_unload_refused_while_$(basename "$d")_open" "rmmod succeeded"
		exec 3<&-
		insmod "$MODULE" $params
		wait_devices
	else
		exec 3<&-
		ok "hostile_unload_refused_while_$(basename "$d")_open"
	fi
done
reload hostile_unload_and_reload_after_close || exit 1
[ $failed -eq 0 ]
