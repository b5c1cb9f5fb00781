#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest entry point: the iovx RAM disk itself, through the kernel's block device paths:
# never-written sectors read as zeroes, memory is allocated on first write and stays close to
# the data written, discard and write-zeroes free or zero the pages, flush is accepted, a write
# is retried rather than failed when storage cannot be allocated, and the module cannot be
# unloaded while the disk is open. BDEV overrides the device.
BDEV=${BDEV:-/dev/iovx0}
n=$((${KTAP_FIRST:-1} - 1))
failed=0
ok() { n=$((n + 1)); echo "ok $n ramdisk_$1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n ramdisk_$1 # $2"; }
if [ ! -b "$BDEV" ]; then
	echo "ok 1 ramdisk # SKIP $BDEV does not exist"
	exit 0
fi
free_kb() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; awk '/^MemFree:/ { print $2 }' /proc/meminfo; }
# free_kb after emptying the slab caches, and with them KASAN's quarantine (kmem_cache_shrink()
# frees a cache's quarantined objects), so that what other code freed earlier is not returned
# while a measurement runs.
free_kb_settled() {
	for f in /sys/kernel/slab/*/shrink; do echo 1 >"$f"; done 2>/dev/null
	free_kb
}
MiB=1048576
t=/tmp/ramdisk.$$
mkdir -p $t

pages() { cat /sys/kernel/debug/iov_extract/ramdisk_pages; }

# A never-written region (48 MiB in) reads as zeroes.
dd if="$BDEV" of=$t/r bs=64k skip=768 count=16 iflag=direct 2>/dev/null
dd if=/dev/zero of=$t/z bs=64k count=16 2>/dev/null
if cmp -s $t/r $t/z; then ok never_written_reads_zero; else not_ok never_written_reads_zero "non-zero bytes"; fi

# The RAM disk stores data in pages of the size the kernel runs with (4 KiB, or 64 KiB on
# arm64 with PAGE=64k).
page=$(awk '/^KernelPageSize:/ { print $2 * 1024; exit }' /proc/self/smaps)
p16=$((16 * MiB / page))

# Memory follows the data written: 16 MiB written costs 16 MiB of pages of storage (and about
# 16 MiB of free memory). MemFree also moves with whatever else the kernel frees meanwhile
# (KASAN's quarantine is drained in batches of megabytes): the slab caches are emptied before
# the first reading, and a reading out of range is taken again after discarding the region;
# the page count must be exact every time.
dd if=/dev/urandom of=$t/d bs=64k count=256 2>/dev/null
try=1
while :; do
	p0=$(pages)
	before=$(free_kb_settled)
	dd if=$t/d of="$BDEV" bs=64k seek=512 oflag=direct 2>/dev/null
	after=$(free_kb)
	p1=$(pages)
	used=$(( (before - after) / 1024 ))
	echo "# 16 MiB written (try $try): $((p1 - p0)) storage pages, MemFree fell by $used MiB"
	if [ $((p1 - p0)) -ne $p16 ] || { [ "$used" -ge 12 ] && [ "$used" -le 32 ]; } || [ $try -eq 3 ]; then
		break
	fi
	blkdiscard -o $((32 * MiB)) -l $((16 * MiB)) "$BDEV"
	try=$((try + 1))
done
if [ $((p1 - p0)) -eq $p16 ] && [ "$used" -ge 12 ] && [ "$used" -le 32 ]; then
	ok memory_follows_data
else
	not_ok memory_follows_data "$((p1 - p0)) pages, MemFree fell by $used MiB"
fi
dd if="$BDEV" of=$t/b bs=64k skip=512 count=256 iflag=direct 2>/dev/null
if cmp -s $t/d $t/b; then ok data_reads_back; else not_ok data_reads_back "bytes differ"; fi

# Discard of the first 8 MiB of that data frees the pages and reads back as zeroes.
p0=$(pages)
if blkdiscard -o $((32 * MiB)) -l $((8 * MiB)) "$BDEV"; then ok discard_accepted; else not_ok discard_accepted "blkdiscard failed"; fi
p1=$(pages)
echo "# 8 MiB discarded: $((p0 - p1)) storage pages freed"
if [ $((p0 - p1)) -eq $((p16 / 2)) ]; then ok discard_frees_pages; else not_ok discard_frees_pages "$((p0 - p1)) pages freed"; fi
dd if="$BDEV" of=$t/r bs=64k skip=512 count=128 iflag=direct 2>/dev/null
dd if=/dev/zero of=$t/z bs=64k count=128 2>/dev/null
if cmp -s $t/r $t/z; then ok discarded_reads_zero; else not_ok discarded_reads_zero "non-zero bytes"; fi
dd if="$BDEV" of=$t/b bs=64k skip=640 count=128 iflag=direct 2>/dev/null
dd if=$t/d of=$t/d2 bs=64k skip=128 count=128 2>/dev/null
if cmp -s $t/d2 $t/b; then ok data_past_discard_intact; else not_ok data_past_discard_intact "bytes differ"; fi

# A partial-page discard (512 bytes in the middle of a page) zeroes just those bytes.
blkdiscard -o $((40 * MiB + 1024)) -l 512 "$BDEV" 2>/dev/null
dd if="$BDEV" of=$t/p bs=512 skip=$((40 * 2048 + 2)) count=1 iflag=direct 2>/dev/null
dd if="$BDEV" of=$t/q bs=512 skip=$((40 * 2048 + 3)) count=1 iflag=direct 2>/dev/null
dd if=$t/d of=$t/q2 bs=512 skip=$((8 * 2048 + 3)) count=1 2>/dev/null
dd if=/dev/zero of=$t/z bs=512 count=1 2>/dev/null
if cmp -s $t/p $t/z && cmp -s $t/q $t/q2; then ok partial_discard; else not_ok partial_discard "wrong bytes around a 512-byte discard"; fi

# Flush (fsync on the block device) is accepted.
if sync "$BDEV" 2>/dev/null || sync; then ok flush_accepted; else not_ok flush_accepted "sync failed"; fi

# Storage allocations failing (as under memory pressure: the RAM disk allocates with
# GFP_NOWAIT): the write is handed back to blk-mq and retried, it does not fail, and no data is
# lost. The knob makes the next N allocations of storage fail.
knobs=/sys/kernel/debug/iov_extract
if [ -w $knobs/ramdisk_fail_allocs ]; then
	dd if=/dev/urandom of=$t/f bs=64k count=32 2>/dev/null
	busy0=$(cat $knobs/ramdisk_busy)
	echo 16 >$knobs/ramdisk_fail_allocs
	if dd if=$t/f of="$BDEV" bs=64k seek=896 oflag=direct 2>$t/err &&
		dd if="$BDEV" of=$t/g bs=64k skip=896 count=32 iflag=direct 2>>$t/err &&
		cmp -s $t/f $t/g; then
		left=$(cat $knobs/ramdisk_fail_allocs)
		busy=$(($(cat $knobs/ramdisk_busy) - busy0))
		echo "# 2 MiB written with 16 allocations failing: $busy request(s) retried, $left failure(s) left"
		if [ "$left" -eq 0 ] && [ "$busy" -gt 0 ]; then
			ok write_retried_under_allocation_failure
		else
			not_ok write_retried_under_allocation_failure "$busy retried, $left failures left"
		fi
	else
		sed 's/^/# /' $t/err
		not_ok write_retried_under_allocation_failure "the write failed or read back other bytes"
	fi
	echo 0 >$knobs/ramdisk_fail_allocs
else
	not_ok write_retried_under_allocation_failure "no $knobs/ramdisk_fail_allocs"
fi

# The module stays while the disk is open.
exec 3<"$BDEV"
if rmmod iov_extract 2>/dev/null; then
	not_ok unload_refused_while_open "rmmod succeeded with $BDEV open"
	insmod /iovx/modules/iov_extract.ko
else
	ok unload_refused_while_open
fi
exec 3<&-
rm -rf $t
[ "$failed" -eq 0 ]
