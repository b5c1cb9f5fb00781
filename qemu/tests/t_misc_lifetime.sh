#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest entry point: the misc devices of iov_extract and the module that owns their file
# operations. While /dev/iovx_dio0 and /dev/iovx_gup are open the module cannot be unloaded
# and both devices keep working (misc_lifetime); once they are closed it unloads, loads again
# with the same parameters, and the same holds for the new devices. Under KASAN a table or data
# freed while the VFS still uses it would be reported here. DEV, GUP, BDEV override the
# devices, MODULE the module file.
here=$(cd "$(dirname "$0")" && pwd)
DEV=${DEV:-/dev/iovx_dio0}
GUP=${GUP:-/dev/iovx_gup}
BDEV=${BDEV:-/dev/iovx0}
MODULE=${MODULE:-/iovx/modules/iov_extract.ko}
if [ ! -e "$DEV" ] || [ ! -e "$GUP" ] || [ ! -e "$BDEV" ]; then
	echo "ok 1 misc_lifetime # SKIP $DEV, $GUP or $BDEV does not exist"
	exit 0
fi
. "$here/reload.sh"

# held ROUND: misc_lifetime's own result lines, numbered after ours and counted in.
held() {
	out=$(KTAP_FIRST=$((n + 1)) "$here/misc_lifetime" "$DEV" "$GUP" iov_extract)
	rc=$?
	printf '%s\n' "$out" | sed "s/^\(\(not \)\{0,1\}ok [0-9]* misc_lifetime_\)/\1$1_/"
	n=$((n + $(printf '%s\n' "$out" | grep -cE '^(not )?ok [0-9]+')))
	[ $rc -ne 0 ] && failed=$((failed + 1))
}

held first
# Every file is closed now: the module unloads and loads again.
echo "# iov_extract parameters:$params"
if out=$(rmmod iov_extract 2>&1); then
	ok misc_lifetime_unload_after_close
else
	printf '%s\n' "$out" | sed 's/^/# /'
	not_ok misc_lifetime_unload_after_close "rmmod failed with every file closed"
	exit 1
fi
# shellcheck disable=SC2086
if out=$(insmod "$MODULE" $params 2>&1) && wait_devices && [ -e "$GUP" ]; then
	ok misc_lifetime_load_again
else
	[ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/# /'
	not_ok misc_lifetime_load_again "insmod failed or the devices did not come back"
	exit 1
fi
held again
[ "$failed" -eq 0 ]
