#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of scripts/bench --trace: runs each workload long enough for the host to log, for a
# while, every translated block the guest executes (QEMU's -d exec,nochain, switched on through
# the QEMU monitor), and tells the host when each starts through the kernel log, which QEMU
# writes to console.log as it comes:
#
#   TRACE-SECT NAME ADDRESS      where a section of iov_extract.ko is (its functions' addresses)
#   TRACE-KMOD MODULE ADDRESS    where the .text of brd or null_blk is, when loaded
#   TRACE-GO CASE / TRACE-DONE CASE
#
# Cases:
# - dio-WORKLOAD on /dev/iovx_dio0 and blk-WORKLOAD (O_DIRECT on /dev/iovx0), WORKLOAD one of
#   randread-4k-psync-1, randwrite-4k-psync-1, randread-4k-io_uring-32,
#   randwrite-4k-io_uring-32, read-1m-psync-1 (fio);
# - by name only: the same workloads with O_DIRECT on brd (brd-WORKLOAD, /dev/ram0), null_blk
#   (nullb-WORKLOAD, /dev/nullb0, memory-backed), loaded for them, and a bio-based RAM disk
#   (bio-WORKLOAD, /dev/iovx1 of iov_extract reloaded with disks=2 bio_mask=2);
# - a buffer-kind workload KIND-SIZE-OP (bufbench: one buffer of KIND base, thp, hugetlb or
#   uring (THP registered with io_uring, read and written with IORING_OP_READ_FIXED and
#   WRITE_FIXED), SIZE 64k, 256k, 1024k or 2048k, OP read or write; sequential I/Os through the
#   first 32 MiB; fio cannot place its buffers in huge pages);
# - ptr-OP-SIZE (the IOVX_IOC_PT ioctl on /dev/iovx0, the Rust mapping) and ptk-OP-SIZE (the
#   same with IOVX_PT_F_KERNEL_MAP, the kernel's blk_rq_map_user_iov()), OP read or write, SIZE
#   4k or 1m, run by bufbench; by name only, ptr-KIND-OP-1m and ptk-KIND-OP-1m from 1 MiB of a
#   THP or hugetlb page (KIND thp or hugetlb).
# "all" is the dio- and blk- fio cases, the ptr- and ptk- cases of base pages, and the
# buffer-kind cases thp-64k-read, thp-64k-write, thp-1024k-read, thp-1024k-write,
# base-64k-read and base-64k-write. Settings from
# /extra/trace.conf: RUNTIME (guest seconds per case), SIZE_MB, CASES (names, or "all").

E=/extra
[ -w /dev/ttyS1 ] && exec >/dev/ttyS1 2>&1
RUNTIME=40 SIZE_MB=64 CASES=all
[ -f $E/trace.conf ] && . $E/trace.conf

# fio: the host's, with its libraries staged, on x86-64; the guest root's on arm64.
if [ -x "$E/lib/ld-linux-x86-64.so.2" ]; then
	fio() { "$E/lib/ld-linux-x86-64.so.2" --library-path "$E/lib" "$E/bin/fio" "$@"; }
else
	fio() { /usr/bin/fio "$@"; }
fi
kmsg() {
	echo "$*" >/dev/kmsg
	echo "$*"
}

echo TRACE-BEGIN
# The bio-based RAM disk: iov_extract reloaded before its addresses are given.
case " $CASES " in *" bio-"*)
	rmmod iov_extract && insmod /iovx/modules/iov_extract.ko disks=2 bio_mask=2 ||
		echo "TRACE-ERROR reloading iov_extract with a bio-based disk failed"
	mdev -s 2>/dev/null
	;;
esac
for s in /sys/module/iov_extract/sections/.text*; do
	[ -f "$s" ] && kmsg "TRACE-SECT $(basename "$s") $(cat "$s")"
done
peers=
case " $CASES " in *" brd-"*)
	insmod /iovx/kmods/brd.ko rd_nr=1 rd_size=$((SIZE_MB * 1024)) max_part=0 &&
		peers="$peers ram0" || echo "TRACE-ERROR insmod brd failed"
	;;
esac
case " $CASES " in *" nullb-"*)
	[ -f $E/kmods/configfs.ko ] && insmod $E/kmods/configfs.ko
	insmod /iovx/kmods/null_blk.ko nr_devices=1 queue_mode=2 memory_backed=1 \
		gb=$(((SIZE_MB + 1023) / 1024)) bs=512 submit_queues=2 hw_queue_depth=128 irqmode=0 &&
		peers="$peers nullb0" || echo "TRACE-ERROR insmod null_blk failed"
	;;
esac
mdev -s 2>/dev/null
# The settings of the benchmark (guest.sh): no I/O scheduler, no I/O statistics.
# Where the peers' code is, for the host to count it (tbprof.py).
for m in brd null_blk; do
	[ -f /sys/module/$m/sections/.text ] && kmsg "TRACE-KMOD $m $(cat /sys/module/$m/sections/.text)"
done
[ -b /dev/iovx1 ] && peers="$peers iovx1"
for b in iovx0 $peers; do
	q=/sys/block/$b/queue
	echo none >$q/scheduler 2>/dev/null
	echo 0 >$q/iostats 2>/dev/null
done
for b in $peers; do
	fio --name=pre --filename=/dev/$b --rw=write --bs=1m --direct=1 --size=${SIZE_MB}m \
		>/dev/null 2>&1 || echo "TRACE-ERROR precondition of $b failed"
done
fio --name=pre --filename=/dev/iovx0 --rw=write --bs=1m --direct=1 --size=${SIZE_MB}m \
	>/dev/null 2>&1 || echo "TRACE-ERROR precondition failed"

# case_ NAME DEVICE RW BS ENGINE DEPTH
case_() {
	case " $CASES " in *" $1 "*|" all ") ;; *) return ;; esac
	[ -b "$2" ] || [ -c "$2" ] || return
	kmsg "TRACE-GO $1"
	fio --name=t --filename="$2" --rw="$3" --bs="$4" --ioengine="$5" --iodepth="$6" \
		--direct=1 --size=${SIZE_MB}m --time_based --runtime="$RUNTIME" --norandommap \
		--randrepeat=0 --invalidate=0 --thread 2>&1 | grep -E 'IOPS=|issued rwts|error'
	kmsg "TRACE-DONE $1"
}

# bufcase_ NAME DEVICE KIND SIZE OP: bufbench for RUNTIME seconds on one target.
bufcase_() {
	k=$3 eng=psync
	[ "$k" = uring ] && k=thp eng=fixed
	kmsg "TRACE-GO $1"
	$E/bin/bufbench -c "$1" -k $k -o "$5" -s $(($4 * 1024)) -r 1 -w 20 -t "$RUNTIME" \
		"${1%%-*}:$eng:$2" | grep -E '^BENCH-(BUF|ERROR)|ok=0' ||
		echo "TRACE-ERROR bufbench $1 failed"
	kmsg "TRACE-DONE $1"
}

for w in "randread 4k psync 1" "randwrite 4k psync 1" "randread 4k io_uring 32" \
	"randwrite 4k io_uring 32" "read 1m psync 1"; do
	set -- $w
	tag=$1-$2-$3-$4
	case_ "dio-$tag" /dev/iovx_dio0 "$@"
	case_ "blk-$tag" /dev/iovx0 "$@"
	case_ "brd-$tag" /dev/ram0 "$@"
	case_ "bio-$tag" /dev/iovx1 "$@"
	case_ "nullb-$tag" /dev/nullb0 "$@"
done

# Buffer kinds: the cases asked for by name, or the default set.
echo 4 >/proc/sys/vm/nr_hugepages 2>/dev/null
# 2 MiB THP mapped by PTEs where a PMD is larger (64 KiB pages), as in guest.sh.
[ "$(cat /sys/kernel/mm/transparent_hugepage/hpage_pmd_size 2>/dev/null || echo 0)" -gt 2097152 ] &&
	echo madvise >/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/enabled 2>/dev/null
bufs=
for c in $CASES; do
	case $c in
	dio-*-*k-read|dio-*-*k-write|blk-*-*k-read|blk-*-*k-write)
		w=${c#*-}
		case " $bufs " in *" $w "*) ;; *) bufs="$bufs $w" ;; esac
		;;
	all) bufs="thp-64k-read thp-64k-write thp-1024k-read thp-1024k-write base-64k-read base-64k-write" ;;
	esac
done
for w in $bufs; do
	kind=${w%%-*} op=${w##*-} kib=${w#*-}
	kib=${kib%%k-*}
	case $kind in base|thp|hugetlb|uring) ;; *) echo "TRACE-ERROR bad case $w"; continue ;; esac
	for side in dio blk; do
		case " $CASES " in *" $side-$w "*|" all ") ;; *) continue ;; esac
		dev=/dev/iovx_dio0
		[ $side = blk ] && dev=/dev/iovx0
		bufcase_ "$side-$w" $dev $kind $kib $op
	done
done

# ptcase NAME ENGINE OP KIB [KIND]: bufbench's IOVX_IOC_PT, one command after the other for
# RUNTIME s, from a buffer of KIND (base pages unless given).
ptcase() {
	case " $CASES " in *" $1 "*|" all ") ;; *) return ;; esac
	kmsg "TRACE-GO $1"
	$E/bin/bufbench -c "$1" -k "${5:-base}" -o "$3" -s $(($4 * 1024)) -n 100000000 -r 1 \
		"$2:$2:/dev/iovx0" >/dev/null 2>&1 &
	sleep "$RUNTIME"
	kill $! 2>/dev/null
	wait $! 2>/dev/null
	kmsg "TRACE-DONE $1"
}

for op in read write; do
	for kib in 4 1024; do
		sz=${kib}k
		[ $kib = 1024 ] && sz=1m
		ptcase "ptr-$op-$sz" pt $op $kib
		ptcase "ptk-$op-$sz" ptk $op $kib
	done
	# 1 MiB of a transparent huge page or of a hugetlb page, by name only.
	for kind in thp hugetlb; do
		case " $CASES " in *" ptr-$kind-"*|*" ptk-$kind-"*) ;; *) continue ;; esac
		ptcase "ptr-$kind-$op-1m" pt $op 1024 $kind
		ptcase "ptk-$kind-$op-1m" ptk $op 1024 $kind
	done
done
echo TRACE-END
