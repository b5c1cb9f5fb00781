#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest entry point: the kernel's own mm selftests (gup_test, cow, gup_longterm, hugetlb_dio)
# against the kernel's gup_test device and then against /dev/iovx_gup bind-mounted over it
# (qemu/selftests/run-guest.sh). Built by scripts/check into /iovx/tests/mm.
#
# Then gup_longterm once more from a directory on ext4: the module is reloaded with two disks,
# ext4 is made on the second one (FSDEV) and mounted, and gup_longterm runs there against both
# devices, which must give every case the same result; its "local tmpfile" is then an ext4
# file, whose MAP_SHARED mapping refuses writable long-term pins. The module is reloaded with
# its former parameters afterwards.
#
# MM_PROGS (a list of program names) limits the first part to those programs. cow, the longest
# (7 minutes a device on x86-64 under TCG with KASAN), runs against the stock device only at
# full size (IOVX_FULL=1, `make soak`): the check runs it against /dev/iovx_gup alone.
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -x "$here/mm/run-guest.sh" ] && [ ! -f "$here/mm/run-guest.sh" ]; then
	echo "ok 1 mm_selftests # SKIP not built"
	exit 0
fi
DEV=${DEV:-/dev/iovx_dio0}
BDEV=${BDEV:-/dev/iovx0}
FSDEV=${FSDEV:-/dev/iovx1}
MODULE=${MODULE:-/iovx/modules/iov_extract.ko}
MNT=${MNT:-/mnt/iovx-mm-ext4}
mm_log=/tmp/iovx-mm-selftests.out

# run_guest ARGS...: run-guest.sh streamed, its result lines numbered after ours and counted.
run_guest() {
	KTAP_FIRST=$((n + 1)) sh "$here/mm/run-guest.sh" "$@" | tee "$mm_log"
	k=$(grep -cE '^(not )?ok [0-9]+' "$mm_log")
	n=$((n + k))
	failed=$((failed + $(grep -cE '^not ok [0-9]+' "$mm_log")))
}

. "$here/reload.sh"
. "$here/ext4.sh"
[ -n "${IOVX_FULL:-}" ] || export STOCK_SKIP=${STOCK_SKIP-cow}
# shellcheck disable=SC2086
run_guest both ${MM_PROGS:-}

if [ ! -e "$MKFS" ]; then
	ok "mm_selftests_ext4 # SKIP no $MKFS"
elif [ ! -e "$DEV" ] || [ ! -e "$BDEV" ]; then
	ok "mm_selftests_ext4 # SKIP $DEV or $BDEV does not exist"
else
	echo "# iov_extract parameters:$params"
	if reload mm_ext4_reload_two_disks disks=2 && ext4_up mm_ext4_mkfs_mount "$FSDEV" "$MNT"; then
		mkdir -p "$MNT/work"
		CWD=$MNT/work TAG=_ext4 CASES=same run_guest both gup_longterm
		cd / && ext4_down mm_ext4_umount "$MNT"
	fi
	reload mm_ext4_reload_back
fi
rm -f "$mm_log"
[ $failed -eq 0 ]
