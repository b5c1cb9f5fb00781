#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest entry point: a bio-based RAM disk. The module is reloaded with a second disk served
# from submit_bio (disks=2 bio_mask=2: /dev/iovx1, its direct-I/O device /dev/iovx_dio1), and
# the tests of the blk-mq disk run on it:
#
#   bio_disk    what sets it apart from the blk-mq disk 0: RWF_NOWAIT with the driver busy
#               (EAGAIN), a busy driver waited for, passthrough refused (EOPNOTSUPP);
#   dio_basic   the round trips of the Rust direct-I/O path against the kernel's O_DIRECT on
#               the bio-based disk, every byte compared;
#   dio_errno   bad input and its errno;
#   splits      with max_sectors of a page, the bios split to the queue's limits
#               (bio_split_to_limits()) and every byte compared;
#   ramdisk     the RAM disk's own behaviour (t_ramdisk.sh) through its block device.
#
# The module is reloaded with its former parameters at the end. MODULE overrides the module
# file.
here=$(cd "$(dirname "$0")" && pwd)
MODULE=${MODULE:-/iovx/modules/iov_extract.ko}
DEV=/dev/iovx_dio1
BDEV=/dev/iovx1
. "$here/reload.sh"

page=$(awk '/^KernelPageSize:/ { print $2 * 1024; exit }' /proc/self/smaps)
if reload bio_disk_reload disks=2 bio_mask=2; then
	# Bio-based: no blk-mq directory in sysfs; disk 0 has one.
	if [ ! -e /sys/block/iovx1/mq ] && [ -d /sys/block/iovx0/mq ]; then
		ok bio_disk_no_mq
	else
		not_ok bio_disk_no_mq "/sys/block/iovx1/mq present or /sys/block/iovx0/mq missing"
	fi
	sub bio_disk "$here/bio_disk" /dev/iovx1 /dev/iovx0
	sub dio_basic_bio "$here/dio_basic" "$DEV" "$BDEV"
	sub dio_errno_bio "$here/dio_errno" "$DEV" "$BDEV"
	SPLITS_CAP=1048576 SPLITS_EXPECT=none sub splits_bio_default "$here/splits" "$DEV" "$BDEV"
	sub ramdisk_bio env BDEV="$BDEV" sh "$here/t_ramdisk.sh"
fi
# Requests of at most a page: every call is split into pages.
if reload bio_disk_reload_max_sectors disks=2 bio_mask=2 max_sectors=$((page / 512)); then
	SPLITS_CAP=$page sub splits_bio_max_sectors "$here/splits" "$DEV" "$BDEV"
fi
DEV=/dev/iovx_dio0
BDEV=/dev/iovx0
reload bio_disk_reload_defaults
[ $failed -eq 0 ]
