#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest entry point: forced splits. The module is reloaded with queue limits lowered by its
# parameters (max_sectors, max_segments, max_segment_size), so that the block layer has to
# split the bios of both direct-I/O paths (the Rust one through DEV, the kernel's C O_DIRECT
# one through BDEV), and reloaded with its former parameters at the end.
#
#   splits      counts the requests and the split-off bio pieces of each call (none with the
#               default limits first, as a control) and compares every byte read back;
#   dio_basic   the round trips (512 B to 1 MiB, unaligned memory), vectored I/O, psync,
#               libaio and io_uring (registered buffers too) of dio_basic, every byte compared.
#
# DEV and BDEV override the devices, MODULE the module file.
here=$(cd "$(dirname "$0")" && pwd)
DEV=${DEV:-/dev/iovx_dio0}
BDEV=${BDEV:-/dev/iovx0}
MODULE=${MODULE:-/iovx/modules/iov_extract.ko}
if [ ! -e "$DEV" ] || [ ! -e "$BDEV" ]; then
	echo "ok 1 splits # SKIP $DEV or $BDEV does not exist"
	exit 0
fi
. "$here/reload.sh"

bdname=${BDEV##*/}
limits() {
	q=/sys/block/$bdname/queue
	echo "# $bdname: max_sectors_kb $(cat $q/max_sectors_kb) max_hw_sectors_kb $(cat $q/max_hw_sectors_kb) max_segments $(cat $q/max_segments) max_segment_size $(cat $q/max_segment_size)"
}
echo "# iov_extract parameters:$params"

# The control: with the limits the module runs with now (the defaults), no call is split.
limits
SPLITS_CAP=1048576 SPLITS_EXPECT=none sub splits_default "$here/splits" "$DEV" "$BDEV"

# The page size the kernel runs with (4 KiB, or 64 KiB on arm64 with PAGE=64k): the smallest
# request and segment limits the block layer accepts.
page=$(awk '/^KernelPageSize:/ { print $2 * 1024; exit }' /proc/self/smaps)
echo "# page size $page"

# Requests of at most a page (8 sectors of a 4 KiB page): every call is split into pages.
if reload splits_reload_max_sectors max_sectors=$((page / 512)); then
	limits
	SPLITS_CAP=$page sub splits_max_sectors "$here/splits" "$DEV" "$BDEV"
	sub dio_basic_max_sectors "$here/dio_basic" "$DEV" "$BDEV"
fi

# Two segments of at most a page each: every call is split every two pages.
if reload splits_reload_max_segments max_segments=2 max_segment_size=$page; then
	limits
	SPLITS_CAP=$((2 * page)) sub splits_max_segments "$here/splits" "$DEV" "$BDEV"
	sub dio_basic_max_segments "$here/dio_basic" "$DEV" "$BDEV"
fi

reload splits_reload_defaults
limits
[ $failed -eq 0 ]
