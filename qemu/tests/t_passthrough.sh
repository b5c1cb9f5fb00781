#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest entry point: the passthrough ioctl of disk 0 of iov_extract (rust/uapi/iovx.h), with
# the Rust and the kernel's mapping. BDEV overrides the device.
here=$(cd "$(dirname "$0")" && pwd)
BDEV=${BDEV:-/dev/iovx0}
if [ ! -e "$BDEV" ]; then
	echo "ok 1 passthrough # SKIP $BDEV does not exist"
	exit 0
fi
exec "$here/passthrough" "$BDEV"
