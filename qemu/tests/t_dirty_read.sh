#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest entry point: dirty_read (the pages of an asynchronous read are dirty after it, also when
# writeback cleaned them while it was in flight). The module is reloaded with two disks and a
# completion delay on disk 0 only (delay_us, DELAY_US in the environment, default 300000, on
# arm64 2000000; delay_mask=1), so that msync() runs while a read from disk 0 is in flight; disk
# 1 gets the ext4 file system (dirty_read.ext4, made by qemu/build-tests) whose pages the read
# fills, its own I/O not delayed. The program runs with the pages pinned and in the legacy mode
# (extract_legacy=Y), and the module is reloaded as it was (a fresh disk).
here=$(cd "$(dirname "$0")" && pwd)
DEV=${DEV:-/dev/iovx_dio0}
BDEV=${BDEV:-/dev/iovx0}
FSDEV=${FSDEV:-/dev/iovx1}
MODULE=${MODULE:-/iovx/modules/iov_extract.ko}
# arm64 guests run under TCG only, where msync() of the in-flight pages can outlast 300 ms, and
# a host shared with other guests once held one for a second between the submission and msync():
# 2 s there.
case $(uname -m) in aarch64) delay=2000000 ;; *) delay=300000 ;; esac
DELAY_US=${DELAY_US:-$delay}
delay=$DELAY_US
PARAM=/sys/module/iov_extract/parameters/extract_legacy
if [ ! -e "$DEV" ] || [ ! -e "$BDEV" ]; then
	echo "ok 1 dirty_read # SKIP $DEV or $BDEV does not exist"
	exit 0
fi
. "$here/reload.sh"
params=$(printf '%s\n' $params | grep -v '^extract_legacy=' | tr '\n' ' ')
# For the runs: two disks, the delay on the first only.
params_was=$params
params="$(printf '%s\n' $params | grep -Ev '^(disks|delay_mask)=' | tr '\n' ' ')disks=2 delay_mask=1"

# dirty_read_in MODE: runs the program with extract_legacy set for MODE (pin: N, legacy: Y),
# again with a longer delay if the host was too slow for it (run_mode).
dirty_read_in() {
	run_mode dirty_read "$1" "$here/dirty_read" "$DEV" "$BDEV" "$FSDEV" "$here/dirty_read.ext4" "$1"
	# A run killed by its alarm leaves its file system mounted on FSDEV, which would keep the
	# module from being reloaded for the tests after this one.
	if grep -q ' /tmp/dirty_read_mnt ' /proc/mounts; then
		echo "# dirty_read $1 left /tmp/dirty_read_mnt mounted: unmounted"
		umount /tmp/dirty_read_mnt
	fi
}

echo "# iov_extract parameters:$params"
# No periodic writeback while the reads are in flight: only the program's msync() may clean
# their pages (with a long delay the flusher did, and the case without msync found its pages
# cleaned and dirtied again).
wb=/proc/sys/vm/dirty_writeback_centisecs
wb_was=$(cat $wb)
echo 0 >$wb
reload dirty_read_reload_with_delay "delay_us=$DELAY_US" || { echo "$wb_was" >$wb; exit 1; }
dirty_read_in pin
dirty_read_in legacy
echo "$wb_was" >$wb
params=$params_was
reload dirty_read_reload_without_delay
[ $failed -eq 0 ]
