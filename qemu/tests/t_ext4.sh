#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest entry point: direct I/O from and into MAP_SHARED mappings of files on ext4 (fs_dio).
# The module is reloaded with two disks and a completion delay on disk 0 only (DELAY_US,
# default 500000; delay_mask=1) so that the direct I/O is in flight while the file is synced,
# truncated or unmapped, and the filesystem's own I/O is not delayed; ext4 is made on disk 1
# and mounted; fs_dio runs its scenarios through the Rust path (/dev/iovx_dio0) and the
# C O_DIRECT path (/dev/iovx0) and checks the files after a remount. Then the filesystem is
# unmounted and the module reloaded with its former parameters.
#
# DEV, BDEV and FSDEV override the devices, MODULE the module file, MNT the mount point.
here=$(cd "$(dirname "$0")" && pwd)
DEV=${DEV:-/dev/iovx_dio0}
BDEV=${BDEV:-/dev/iovx0}
FSDEV=${FSDEV:-/dev/iovx1}
MODULE=${MODULE:-/iovx/modules/iov_extract.ko}
MNT=${MNT:-/mnt/iovx-ext4}
DELAY_US=${DELAY_US:-500000}
if [ ! -e "$DEV" ] || [ ! -e "$BDEV" ]; then
	echo "ok 1 ext4 # SKIP $DEV or $BDEV does not exist"
	exit 0
fi
. "$here/reload.sh"
. "$here/ext4.sh"
if [ ! -e "$MKFS" ]; then
	echo "ok 1 ext4 # SKIP no $MKFS"
	exit 0
fi
echo "# iov_extract parameters:$params"

if reload ext4_reload_two_disks_with_delay disks=2 "delay_us=$DELAY_US" delay_mask=1 &&
	ext4_up ext4_mkfs_mount "$FSDEV" "$MNT"; then
	out=$(KTAP_FIRST=$((n + 1)) "$here/fs_dio" "$MNT" "$FSDEV" "$DEV" "$BDEV")
	rc=$?
	printf '%s\n' "$out"
	n=$((n + $(printf '%s\n' "$out" | grep -cE '^(not )?ok [0-9]+')))
	[ $rc -ne 0 ] && failed=$((failed + 1))
	ext4_down ext4_umount "$MNT"
fi
reload ext4_reload_back
[ $failed -eq 0 ]
