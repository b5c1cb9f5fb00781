#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest entry point: the kernel's own mm selftests (gup_test, cow, gup_longterm, hugetlb_dio)
# against the kernel's gup_test device and then against /dev/iovx_gup bind-mounted over it
# (qemu/selftests/run-guest.sh). Built by scripts/check into /iovx/tests/mm.
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -x "$here/mm/run-guest.sh" ] && [ ! -f "$here/mm/run-guest.sh" ]; then
	echo "ok 1 mm_selftests # SKIP not built"
	exit 0
fi
exec sh "$here/mm/run-guest.sh" both
