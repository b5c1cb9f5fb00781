#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest entry point: the direct-I/O path on the virtio-blk disk that qemu/run gives the guest
# (/dev/vda, a sparse file on the host), attached as /dev/iovx_dio_vda.
#
# - attach refused (EBUSY) while /dev/vda is mounted; attach/detach cycles, each ending with
#   the claim released (an exclusive open, mount, works again after the last);
# - dio_basic, dio_errno, a bounded random_io and, with VIRTIO_FIO=1, fio with verification
#   (t_fio.sh) through /dev/iovx_dio_vda, checked against O_DIRECT on /dev/vda;
# - dio_attach check: detach refused while the device is open or has reads in flight, a second
#   attach refused, large transfers (split by the block layer) through both paths, misaligned
#   memory refused;
# - attach at load (dio_attach=/dev/vda), and a load with a path that cannot be attached
#   failing with its errno and leaving nothing registered;
# - detach refused with writes in flight, on the module's own RAM disk (/dev/iovx0) attached
#   as a block device, its completions delayed by 0.5 s so that they are in flight for sure;
# - the disk removed (PCI remove) while /dev/iovx_dio_vda is open: ENODEV, detach works, the
#   disk comes back on a PCI rescan.
#
# Pins are checked after each part, and the kernel log for warnings at the end.
# VBDEV (default /dev/vda) overrides the disk, OPS random_io's operations (default 400).
here=$(cd "$(dirname "$0")" && pwd)
DEV=${DEV:-/dev/iovx_dio0}
BDEV=${BDEV:-/dev/iovx0}
MODULE=${MODULE:-/iovx/modules/iov_extract.ko}
VBDEV=${VBDEV:-/dev/vda}
VNAME=${VBDEV##*/}
VDEV=/dev/iovx_dio_$VNAME
OPS=${OPS:-400}
SEED=${SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
MNT=/mnt/iovx-$VNAME

if [ ! -b "$VBDEV" ]; then
	echo "ok 1 virtio # SKIP no $VBDEV (a kernel without virtio-blk?)"
	exit 0
fi
. "$here/reload.sh"
. "$here/ext4.sh"

warnings() { dmesg | grep -cE 'WARNING:|BUG:|KASAN|Oops|general protection|list_del corruption'; }
warn0=$(warnings)

pins() {
	echo 1 >/proc/sys/vm/stat_refresh 2>/dev/null
	acq=$(awk '$1 == "nr_foll_pin_acquired" { print $2 }' /proc/vmstat)
	rel=$(awk '$1 == "nr_foll_pin_released" { print $2 }' /proc/vmstat)
	if [ "$acq" = "$rel" ]; then
		ok "virtio_pins_balanced_after_$1"
	else
		not_ok "virtio_pins_balanced_after_$1" "nr_foll_pin_acquired $acq != nr_foll_pin_released $rel"
	fi
}

# read_vdev: reads the first 16 KiB of $VDEV (into an aligned buffer: dd's is malloc()ed, which
# direct I/O refuses when it is not aligned to the disk's DMA alignment); on failure, says why.
read_vdev() {
	[ -c "$VDEV" ] || { echo "no $VDEV"; return 1; }
	out=$("$here/dio_attach" read "$VDEV" 2>&1) || { echo "reading $VDEV: $out"; return 1; }
}

# attach NAME WANT: one result line; WANT is the errno expected (0: success).
ctl() {
	name=$1 op=$2 want=$3
	out=$("$here/dio_attach" "$op" "$VBDEV" 2>&1)
	got=$(printf '%s\n' "$out" | awk '/^errno/ { print $2 }')
	if [ "$got" = "$want" ]; then
		ok "$name # $op $VBDEV: $out"
	else
		not_ok "$name" "$op $VBDEV: $out, want errno $want"
	fi
}

# prog NAME CMD...: a program's result lines, numbered after ours and counted in.
prog() {
	shift
	out=$(KTAP_FIRST=$((n + 1)) "$@")
	rc=$?
	printf '%s\n' "$out"
	n=$((n + $(printf '%s\n' "$out" | grep -cE '^(not )?ok [0-9]+')))
	[ $rc -ne 0 ] && failed=$((failed + 1))
}

# --- attach refused while mounted, then cycles
if ext4_up virtio_mkfs_mount "$VBDEV" "$MNT"; then
	ctl virtio_attach_refused_mounted attach 16
	ext4_down virtio_umount "$MNT"
fi
i=0
cycles_ok=1
while [ $i -lt 5 ]; do
	i=$((i + 1))
	a=$("$here/dio_attach" attach "$VBDEV" 2>&1) || { cycles_ok=0; echo "# cycle $i: attach: $a"; break; }
	if ! why=$(read_vdev); then
		cycles_ok=0; echo "# cycle $i: $why"; break
	fi
	d=$("$here/dio_attach" detach "$VBDEV" 2>&1) || { cycles_ok=0; echo "# cycle $i: detach: $d"; break; }
	[ -e "$VDEV" ] && { cycles_ok=0; echo "# cycle $i: $VDEV still there after detach"; break; }
done
if [ $cycles_ok = 1 ] && out=$(mount -t ext4 "$VBDEV" "$MNT" 2>&1) && umount "$MNT"; then
	ok "virtio_attach_detach_cycles # 5 cycles, then mounted and unmounted"
else
	not_ok virtio_attach_detach_cycles "cycle $i failed or $VBDEV cannot be mounted after them: $out"
	"$here/dio_attach" detach "$VBDEV" >/dev/null 2>&1
fi
pins cycles

# --- the direct-I/O tests against O_DIRECT on the disk
ctl virtio_attach attach 0
if [ -c "$VDEV" ]; then
	prog dio_basic "$here/dio_basic" "$VDEV" "$VBDEV"
	pins dio_basic
	prog dio_errno "$here/dio_errno" "$VDEV" "$VBDEV"
	pins dio_errno
	echo "# random_io seed $SEED, $OPS operations"
	# No discard: a discarded range need not read back as zeroes (QEMU ignores discards by
	# default; brd frees whole pages only), which the model assumes.
	prog random_io "$here/random_io" --name random_io_virtio --dev "$VDEV" --bdev "$VBDEV" \
		--seed "$SEED" --ops "$OPS" \
		--paths psync,bdev,libaio,uring,fixed,zeroout,fsync,gup,fork,unmap,threads
	pins random_io
	prog dio_attach "$here/dio_attach" check "$VBDEV" "$VDEV"
	pins dio_attach
	# With VIRTIO_FIO=1: fio with crc32c verification through both paths and across them
	# (t_fio.sh), its result lines renumbered after ours and named virtio_fio_*. Off by
	# default: its ten fio runs take minutes under TCG.
	if [ "${VIRTIO_FIO:-0}" = 1 ]; then
		start=$(date +%s)
		out=$(DEV="$VDEV" BDEV="$VBDEV" "$here/t_fio.sh")
		rc=$?
		printf '%s\n' "$out" | awk -v n="$n" '
			/^(not )?ok [0-9]+ / {
				neg = ($1 == "not"); i = neg ? 3 : 2; n++; $i = n
				$(i + 1) = "virtio_" $(i + 1)
			}
			{ print }'
		n=$((n + $(printf '%s\n' "$out" | grep -cE '^(not )?ok [0-9]+')))
		[ $rc -ne 0 ] && failed=$((failed + 1))
		echo "# fio on $VDEV and $VBDEV: $(($(date +%s) - start)) s"
		pins fio
	fi
	ctl virtio_detach detach 0
fi

# --- attach at load, and a load that fails
if reload virtio_reload_attach_at_load "dio_attach=$VBDEV"; then
	if why=$(read_vdev); then
		ok "virtio_attached_at_load # $(dmesg | grep "/dev/iovx_dio_$VNAME on" | tail -n 1 | sed 's/.*iov_extract: //')"
	else
		not_ok virtio_attached_at_load "$why"
	fi
	rmmod iov_extract
	out=$(insmod "$MODULE" $params "dio_attach=$VBDEV,/dev/iovx_no_such_disk" 2>&1)
	rc=$?
	echo "# insmod dio_attach=$VBDEV,/dev/iovx_no_such_disk: exit $rc: $out"
	left=$(ls /dev/iovx_dio* /dev/iovx_gup /dev/iovx[0-9]* 2>/dev/null | tr '\n' ' ')
	if [ $rc -ne 0 ] && ! grep -q '^iov_extract ' /proc/modules && [ -z "$left" ] &&
		dmesg | tail -n 20 | grep -q 'cannot attach /dev/iovx_no_such_disk: error -2'; then
		ok "virtio_load_fails_cleanly # ENOENT, nothing left registered"
	else
		not_ok virtio_load_fails_cleanly "insmod exit $rc, left: $left $(grep '^iov_extract ' /proc/modules)"
	fi
	# The module is loaded again as it was; /dev/vda was released by the failed load.
	if out=$(insmod "$MODULE" $params 2>&1) && wait_devices &&
		"$here/dio_attach" attach "$VBDEV" >/dev/null; then
		ok virtio_reload_after_failed_load
	else
		not_ok virtio_reload_after_failed_load "$out"
	fi
	pins load
fi

# --- detach refused with I/O in flight, made certain: the module's RAM disk, completing each
# request 0.5 s after it is queued, attached as a block device like any other
if reload virtio_reload_delayed_ramdisk delay_us=500000; then
	if "$here/dio_attach" attach "$BDEV" >/dev/null; then
		prog inflight "$here/dio_attach" inflight "$BDEV" "/dev/iovx_dio_${BDEV##*/}"
		"$here/dio_attach" detach "$BDEV" >/dev/null
	else
		not_ok virtio_attach_delayed_ramdisk "attaching $BDEV failed"
	fi
	if reload virtio_reload_without_delay && "$here/dio_attach" attach "$VBDEV" >/dev/null; then
		ok virtio_attach_again
	else
		not_ok virtio_attach_again "reloading or attaching $VBDEV failed"
	fi
	pins inflight
fi

# --- the disk removed under an open device
if [ -c "$VDEV" ]; then
	prog gone "$here/dio_attach" gone "$VBDEV" "$VDEV"
	echo 1 >/sys/bus/pci/rescan
	i=0
	while [ ! -b "$VBDEV" ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
	why="$VBDEV did not come back, or attaching it failed"
	if [ -b "$VBDEV" ] && "$here/dio_attach" attach "$VBDEV" >/dev/null &&
		why=$(read_vdev) && "$here/dio_attach" detach "$VBDEV" >/dev/null; then
		ok "virtio_back_after_rescan"
	else
		not_ok virtio_back_after_rescan "$why"
	fi
	pins gone
fi

w=$(($(warnings) - warn0))
if [ "$w" -eq 0 ]; then
	ok virtio_no_kernel_warning
else
	dmesg | grep -E -A5 'WARNING:|BUG:|KASAN|Oops|general protection' | tail -n 40 | sed 's/^/# /'
	not_ok virtio_no_kernel_warning "$w new warning line(s) in the kernel log"
fi
[ "$failed" -eq 0 ]
