# SPDX-License-Identifier: GPL-2.0
#
# Sourced by the guest entry points that put ext4 on an iovx disk (t_ext4.sh,
# t_mm_selftests.sh), after reload.sh: ext4_up NAME FSDEV MNT makes a filesystem on FSDEV with
# mkfs.ext4 and mounts it at MNT, ext4_down NAME MNT unmounts it; one result line each.
MKFS=${MKFS:-/usr/sbin/mkfs.ext4}
# mkfs.ext4 is dynamic: its libraries are installed at their host paths.
ext4_env() {
	LD_LIBRARY_PATH=/lib/$(uname -m)-linux-gnu:/usr/lib/$(uname -m)-linux-gnu "$@"
}

ext4_up() {
	mkdir -p "$3"
	# 4 KiB blocks (a block per page), no lazy initialisation left to a kernel thread.
	if out=$(ext4_env "$MKFS" -q -F -b 4096 -E lazy_itable_init=0,lazy_journal_init=0 "$2" 2>&1) &&
		out=$(mount -t ext4 "$2" "$3" 2>&1); then
		ok "$1 # $(grep " $3 " /proc/mounts)"
	else
		[ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/# /'
		not_ok "$1" "mkfs.ext4 or mount of $2 failed"
		return 1
	fi
}

ext4_down() {
	if out=$(umount "$2" 2>&1); then
		ok "$1"
	else
		printf '%s\n' "$out" | sed 's/^/# /'
		not_ok "$1" "umount $2 failed"
		return 1
	fi
}
