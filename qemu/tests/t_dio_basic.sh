#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest entry point: dio_basic on disk 0 of iov_extract, through its character device checked
# against its block device. DEV and BDEV override the devices.
here=$(cd "$(dirname "$0")" && pwd)
DEV=${DEV:-/dev/iovx_dio0}
BDEV=${BDEV:-/dev/iovx0}
if [ ! -e "$DEV" ] || [ ! -e "$BDEV" ]; then
	echo "ok 1 dio_basic # SKIP $DEV or $BDEV does not exist"
	exit 0
fi
exec "$here/dio_basic" "$DEV" "$BDEV"
