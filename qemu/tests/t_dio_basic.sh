#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest entry point: dio_basic on disk 0 of iov_extract, through its character device checked
# against its block device, then thp_dio's checks (buffers of base pages, transparent huge
# pages and hugetlb pages). DEV and BDEV override the devices.
here=$(cd "$(dirname "$0")" && pwd)
DEV=${DEV:-/dev/iovx_dio0}
BDEV=${BDEV:-/dev/iovx0}
if [ ! -e "$DEV" ] || [ ! -e "$BDEV" ]; then
	echo "ok 1 dio_basic # SKIP $DEV or $BDEV does not exist"
	exit 0
fi
out=$("$here/dio_basic" "$DEV" "$BDEV")
rc=$?
printf '%s\n' "$out"
n=$(printf '%s\n' "$out" | grep -cE '^(not )?ok [0-9]+')
KTAP_FIRST=$((n + 1)) "$here/thp_dio" check "$DEV" "$BDEV" || rc=1
exit $rc
