#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of scripts/bench. Runs from /extra (staged by the host) after the guest runner
# has loaded iov_extract.ko, and prints one machine-readable line per sample on the runner's
# console (ttyS1), so that a partial run still leaves its figures in guest.log:
#
#   BENCH-META key=value...                  the guest and the device setup
#   BENCH-FIO rep=R dev=D;<fio terse v3>     one fio job (numjobs aggregated)
#   BENCH-GUP rep=R dev=D cmd=C n=N mib=M buf=B calls=K get_us=G put_us=P [thp_faults=F/E]
#                                            get_us and put_us: the mean over K benchmark calls;
#                                            B base (-T) or thp (-t); F of the E huge pages
#                                            expected were faulted in as THP (thp_fault_alloc)
#   BENCH-ABSENT dev=D reason                a device that could not be measured
#   BENCH-MEMCPY rep=R ...                   see memcpy_bw.c
#   BENCH-BUF ..., BENCH-BACKING ...         see bufbench.c
#   BENCH-INFO / BENCH-ERROR text            progress and problems
#   BENCH-INFO t=S rtc=R what                a phase starts: uptime S, RTC seconds R
#
# Settings come from /extra/bench.conf (REPS RUNTIME RAMP SIZE_MB GUP_MIB GUP_CALLS
# MEMCPY_SECS ONLY). ONLY, an extended regular expression, keeps the fio jobs whose names match
# it, the gup_test configurations named gup-a-1, gup-a-512, gup-L-1, gup-L-512 (base pages) and
# gup-a-1-thp, gup-a-512-thp, gup-L-1-thp, gup-L-512-thp (transparent huge pages) that match it,
# the buffer-kind, passthrough and virtio cases (buf-dio-KIND-SIZE-OP, buf-blk-KIND-SIZE-OP,
# pt-SIZE-OP, pt-KIND-SIZE-OP, vda-KIND-SIZE-OP) that match it, and the memcpy baseline if
# "memcpy" matches; empty keeps everything.

E=/extra
[ -w /dev/ttyS1 ] && exec >/dev/ttyS1 2>&1
REPS=5 RUNTIME=2s RAMP=250ms SIZE_MB=64 GUP_MIB=256 GUP_CALLS=10 MEMCPY_SECS=0.5 ONLY=
[ -f $E/bench.conf ] && . $E/bench.conf

info() { echo "BENCH-INFO $*"; }
# The RTC follows the host's clock; the uptime follows the guest's clocksource, which in an
# emulated guest may be the jiffies and lose ticks when the host is busy. Both are stamped so
# that the report can tell how far the guest's clock, which fio and gup_test use, fell behind.
stamp() {
	echo "BENCH-INFO t=$(cut -d' ' -f1 /proc/uptime) rtc=$(cat /sys/class/rtc/rtc0/since_epoch 2>/dev/null || echo 0) $*"
}
err() { echo "BENCH-ERROR $*"; }
# fio staged in /extra with its libraries (x86-64), else the guest root's (arm64: qemu/build-tests
# installs it with its libraries at their paths).
if [ -x "$E/lib/ld-linux-x86-64.so.2" ]; then
	fio() { "$E/lib/ld-linux-x86-64.so.2" --library-path "$E/lib" "$E/bin/fio" "$@"; }
else
	fio() { /usr/bin/fio "$@"; }
fi

echo "BENCH-BEGIN"
stamp begin
thp=$(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)
echo "BENCH-META kernel=$(uname -r) arch=$(uname -m) page_kib=$(awk '/^KernelPageSize/ { print $2; exit }' /proc/self/smaps) cpus=$(nproc) mem_kib=$(awk '/^MemTotal/ { print $2 }' /proc/meminfo)" \
	"reps=$REPS runtime=$RUNTIME ramp=$RAMP size_mb=$SIZE_MB gup_mib=$GUP_MIB gup_calls=$GUP_CALLS" \
	"fio=$(fio --version 2>&1)"
echo "BENCH-META cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo | tr ' ' '_') thp=$(echo "$thp" | tr ' ' '_')" \
	"clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null)" \
	"copy_flags=$(grep -m 1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -x -E 'erms|fsrm|avx2|avx512f' | tr '\n' ',')"

# --- The devices: the same SIZE_MB on each. iov_extract with two RAM disks: iovx0 blk-mq (and
# its direct-I/O device iovx_dio0), iovx1 bio-based, each compared with the C disk of its kind.
want=$((SIZE_MB * 2048))
if [ ! -b /dev/iovx1 ] || [ "$(cat /sys/block/iovx0/size)" != "$want" ]; then
	info "reloading iov_extract with size_mb=$SIZE_MB disks=2 bio_mask=2"
	rmmod iov_extract 2>/dev/null
	insmod /iovx/modules/iov_extract.ko size_mb="$SIZE_MB" disks=2 bio_mask=2 ||
		err "insmod iov_extract size_mb=$SIZE_MB disks=2 bio_mask=2 failed"
fi
insmod /iovx/kmods/brd.ko rd_nr=1 rd_size=$((SIZE_MB * 1024)) max_part=0 || err "insmod brd failed"
# null_blk needs configfs, a module in some kernel configurations (staged in /extra/kmods).
if [ ! -d /sys/module/configfs ] && [ -f $E/kmods/configfs.ko ]; then
	insmod $E/kmods/configfs.ko || err "insmod configfs failed"
fi
# Memory backed, blk-mq, completions inline (irqmode=0), queues as iov_extract's defaults.
if ! insmod /iovx/kmods/null_blk.ko nr_devices=1 queue_mode=2 memory_backed=1 \
	gb=$(((SIZE_MB + 1023) / 1024)) bs=512 submit_queues=2 hw_queue_depth=128 irqmode=0; then
	err "insmod null_blk failed: $(dmesg | grep null_blk | tail -n 1)"
fi
mdev -s 2>/dev/null
sleep 1

for b in iovx0 iovx1 ram0 nullb0; do
	q=/sys/block/$b/queue
	if [ ! -b /dev/$b ]; then
		echo "BENCH-ABSENT dev=$b /dev/$b missing"
		continue
	fi
	# The same block-layer settings on all: no I/O scheduler (brd is bio-based and has none)
	# and no I/O statistics (brd keeps none by default).
	[ -w $q/scheduler ] && echo none >$q/scheduler 2>/dev/null
	[ -w $q/iostats ] && echo 0 >$q/iostats 2>/dev/null
	echo "BENCH-META dev=$b sectors=$(cat /sys/block/$b/size) lbs=$(cat $q/logical_block_size)" \
		"max_sectors_kb=$(cat $q/max_sectors_kb) nr_requests=$(cat $q/nr_requests 2>/dev/null)" \
		"scheduler=$(cat $q/scheduler 2>/dev/null | tr ' ' '_') iostats=$(cat $q/iostats 2>/dev/null)" \
		"nomerges=$(cat $q/nomerges 2>/dev/null)" \
		"hw_queues=$(ls -d /sys/block/$b/mq/* 2>/dev/null | wc -l)"
done
[ -c /dev/iovx_dio0 ] || echo "BENCH-ABSENT dev=iovx_dio0 /dev/iovx_dio0 missing"

# --- Precondition: write each disk once (iovx_dio0 is iovx0's disk).
for b in iovx0 iovx1 ram0 nullb0; do
	[ -b /dev/$b ] || continue
	if out=$(DEV=/dev/$b SIZE=${SIZE_MB}m fio --output-format=terse --eta=never \
		$E/precondition.fio 2>&1); then
		info "preconditioned /dev/$b: $(echo "$out" | cut -d';' -f47) KiB written"
	else
		err "precondition /dev/$b failed: $out"
	fi
done

# --- fio: every workload on every device, REPS times. The devices of one workload run one
# right after the other, in an order that rotates with the workload and the repetition, so
# that a change in the host's load hits the pairs being compared alike.
devs=
for d in iovx0 iovx1 ram0 nullb0 iovx_dio0; do
	[ -e /dev/$d ] && devs="$devs $d"
done

# jobs REP: workloads.fio with each job once per device (filename=), named JOB@DEVICE.
jobs() {
	awk -v rep="$1" -v devs="$devs" -v only="$ONLY" '
	BEGIN { nd = split(devs, d, " ") }
	function flush(   k, dv) {
		if (name == "" || (only != "" && name !~ only))
			return
		for (k = 0; k < nd; k++) {
			dv = d[(rep - 1 + nj + k) % nd + 1]
			printf "[%s@%s]\n%sfilename=/dev/%s\n", name, dv, body, dv
		}
		nj++
	}
	/^\[/ {
		flush()
		name = substr($0, 2, length($0) - 2)
		body = ""
		if (name == "global") {
			print
			name = ""
		}
		next
	}
	# The global filename would be opened by every job as well.
	name == "" && /^filename=/ { next }
	{ if (name == "") print; else body = body $0 "\n" }
	END { flush() }' $E/workloads.fio
}

stamp fio
r=1
while [ "$r" -le "$REPS" ]; do
	stamp "fio rep $r/$REPS on$devs"
	jobs "$r" >/tmp/jobs.fio
	# --only may have left no fio job.
	grep -q '^\[.*@' /tmp/jobs.fio || break
	SIZE=${SIZE_MB}m RUNTIME=$RUNTIME RAMP=$RAMP \
		fio --output-format=terse --eta=never /tmp/jobs.fio >/tmp/fio.out 2>/tmp/fio.err
	rc=$?
	awk -F';' -v OFS=';' -v r="$r" '$1 == 3 && $2 ~ /^fio-/ {
		split($3, a, "@")
		$3 = a[1]
		print "BENCH-FIO rep=" r " dev=" a[2] ";" $0
	}' /tmp/fio.out
	[ -s /tmp/fio.err ] && sed 's/^/BENCH-INFO fio: /' /tmp/fio.err
	[ $rc -eq 0 ] || err "fio rep $r exited with $rc"
	r=$((r + 1))
done

# --- Pin + unpin cost: gup_test against the kernel's debugfs file and against /dev/iovx_gup
# mounted over it, on base pages (-T: MADV_NOHUGEPAGE, every page a PTE mapping) and on
# transparent huge pages (-t: MADV_HUGEPAGE; gup_test touches every page, so each PMD-aligned
# huge page of the mapping is faulted in as one THP). That THP backed the buffer is checked from
# /proc/vmstat: thp_fault_alloc grows by one per huge page faulted in, and a run of GUP_MIB MiB
# expects GUP_MIB MiB / hpage_pmd_size of them, less one when the mapping is not PMD-aligned;
# the line carries thp_faults=GREW/EXPECTED and the report marks a row where it fell short.
# One sample is the mean of GUP_CALLS benchmark calls (-r) in one process: the guest clock may
# be as coarse as a jiffy, and the mean of many calls is finer than one reading.
stamp gup
gt=/sys/kernel/debug/gup_test
pmd_bytes=$(cat /sys/kernel/mm/transparent_hugepage/hpage_pmd_size 2>/dev/null || echo 0)
thp_faults() { awk '$1 == "thp_fault_alloc" { print $2 }' /proc/vmstat; }
gup_line() { # DEV CMD N REP BUF: run gup_test once, print the mean of its timing lines
	if [ "$5" = thp ]; then
		tflag=-t
		f0=$(thp_faults)
	else
		tflag=-T
	fi
	out=$($E/bin/gup_test -"$2" -n "$3" -m "$GUP_MIB" -r "$GUP_CALLS" $tflag 2>&1)
	t=$(echo "$out" | sed -n 's/.*Time: get:\([0-9]*\) put:\([0-9]*\) us.*/\1 \2/p' |
		awk '{ g += $1; p += $2; k++ } END { if (k) printf "calls=%d get_us=%.1f put_us=%.1f", k, g / k, p / k }')
	if [ "$5" = thp ]; then
		f1=$(thp_faults)
		exp=0
		[ "${pmd_bytes:-0}" -gt 0 ] && exp=$((GUP_MIB * 1048576 / pmd_bytes))
		t="$t thp_faults=$((${f1:-0} - ${f0:-0}))/$exp"
	fi
	if [ -n "$t" ] && echo "$out" | grep -q 'Time: get:'; then
		echo "BENCH-GUP rep=$4 dev=$1 cmd=$2 n=$3 mib=$GUP_MIB buf=$5 $t"
	else
		err "gup_test -$2 -n $3 $tflag on $1: $(echo "$out" | tr '\n' ' ')"
	fi
}
iovx_gup=yes
if [ ! -c /dev/iovx_gup ]; then
	iovx_gup=no
	echo "BENCH-ABSENT dev=iovx_gup device absent"
fi
[ -e $gt ] || err "$gt missing"
picked() { [ -z "$ONLY" ] || echo "$1" | grep -q -E -e "$ONLY"; }
echo "BENCH-META thp_pmd_bytes=$pmd_bytes thp_defrag_gup=$(sed -n 's/.*\[\(.*\)\].*/\1/p' /sys/kernel/mm/transparent_hugepage/defrag 2>/dev/null)"
for cfg in "a 1 base" "a 512 base" "L 1 base" "L 512 base" \
	"a 1 thp" "a 512 thp" "L 1 thp" "L 512 thp"; do
	set -- $cfg
	name=gup-$1-$2
	[ $3 = thp ] && name=$name-thp
	picked "$name" || continue
	r=1
	while [ "$r" -le "$REPS" ]; do
		gup_line stock "$1" "$2" "$r" "$3"
		if [ $iovx_gup = yes ]; then
			if mount --bind /dev/iovx_gup $gt; then
				gup_line iovx_gup "$1" "$2" "$r" "$3"
				umount $gt || err "umount $gt failed"
			else
				err "mount --bind /dev/iovx_gup $gt failed"
				echo "BENCH-ABSENT dev=iovx_gup bind mount over $gt failed"
				iovx_gup=no
			fi
		fi
		r=$((r + 1))
	done
done

# --- Buffer kinds (bufbench.c): one buffer of base pages, transparent huge pages or hugetlb
# pages (or THP registered with io_uring), the same buffer for the two sides of a comparison,
# its backing checked from /proc/self/smaps before and after. Cases buf-dio-* compare the Rust
# direct-I/O path with the C O_DIRECT path on the same disk, buf-blk-* the Rust bio-based RAM
# disk with brd (both O_DIRECT); the KIND of a case name is base, thp, hugetlb or uring (THP, io_uring
# IORING_OP_READ_FIXED/WRITE_FIXED from a registered buffer).
# bufcase CASE KIND SIZE_KIB OP TARGET...
bufcase() {
	c=$1 k=$2 kib=$3 op=$4
	shift 4
	picked "$c" || return 0
	n=$((16384 / kib))
	[ $n -ge 100 ] || n=100
	[ $n -le 1000 ] || n=1000
	$E/bin/bufbench -c "$c" -k "$k" -o "$op" -s $((kib * 1024)) -n $n -r "$REPS" \
		-w $((n / 10)) "$@" || err "bufbench $c failed"
}
# Reserve 2 MiB hugetlb pages for the hugetlb buffers (one buffer at a time, 2 MiB at most).
echo 4 >/proc/sys/vm/nr_hugepages 2>/dev/null
# Where a PMD is larger than 2 MiB (512 MiB with 64 KiB pages), the THP buffers are made of
# 2 MiB transparent huge pages mapped by page table entries (hugepages-2048kB), for the memory
# that asks for them (madvise); bufbench checks them in /proc/kpageflags.
thp2m=/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/enabled
if [ "${pmd_bytes:-0}" -gt 2097152 ]; then
	echo madvise >$thp2m 2>/dev/null || err "cannot enable 2 MiB THP ($thp2m)"
fi
echo "BENCH-META hugetlb_pages=$(awk '/^HugePages_Total/ { print $2 }' /proc/meminfo)" \
	"thp_defrag=$(sed -n 's/.*\[\(.*\)\].*/\1/p' /sys/kernel/mm/transparent_hugepage/defrag 2>/dev/null)" \
	"thp_map=$([ "${pmd_bytes:-0}" -gt 2097152 ] && echo pte || echo pmd)"
stamp buffers
for kind in base thp hugetlb uring; do
	bk=$kind eng=psync
	[ $kind = uring ] && bk=thp eng=fixed
	for kib in 64 256 1024 2048; do
		for op in read write; do
			bufcase "buf-dio-$kind-${kib}k-$op" $bk $kib $op \
				dio:$eng:/dev/iovx_dio0 odirect:$eng:/dev/iovx0
			bufcase "buf-blk-$kind-${kib}k-$op" $bk $kib $op \
				iovxb:$eng:/dev/iovx1 brd:$eng:/dev/ram0
		done
	done
done

# --- Passthrough (rust/uapi/iovx.h): IOVX_IOC_PT on /dev/iovx0 with the Rust mapping against
# the kernel's blk_rq_map_user_iov() (IOVX_PT_F_KERNEL_MAP): base pages (pt-SIZE-OP), and
# 1 MiB from a transparent huge page or a hugetlb page (pt-KIND-1024k-OP).
stamp passthrough
for kib in 4 1024; do
	for op in read write; do
		bufcase "pt-${kib}k-$op" base $kib $op rust:pt:/dev/iovx0 kernel:ptk:/dev/iovx0
	done
done
for kind in thp hugetlb; do
	for op in read write; do
		bufcase "pt-$kind-1024k-$op" $kind 1024 $op rust:pt:/dev/iovx0 kernel:ptk:/dev/iovx0
	done
done

# --- Memory-copy baseline.
if picked memcpy; then
	stamp memcpy
	$E/bin/memcpy_bw 64 1024 "$MEMCPY_SECS" "$REPS" || err "memcpy_bw failed"
fi

# --- virtio-blk: the Rust direct-I/O path attached to /dev/vda (iov_extract's dio_attach
# parameter, /dev/iovx_dio_vda) against O_DIRECT on /dev/vda, and O_DIRECT on brd for reference.
# Skipped, with the reason, without the disk or the parameter.
vcases=
for kind in base thp; do
	for kib in 4 64 1024; do
		for op in read write; do
			picked "vda-$kind-${kib}k-$op" && vcases="$vcases $kind:$kib:$op"
		done
	done
done
if [ -n "$vcases" ]; then
	stamp virtio
	if [ ! -b /dev/vda ]; then
		echo "BENCH-ABSENT dev=iovx_dio_vda not measured: no /dev/vda"
	else
		rmmod iov_extract 2>/dev/null
		if ! insmod /iovx/modules/iov_extract.ko size_mb="$SIZE_MB" dio_attach=/dev/vda 2>/tmp/insmod.err; then
			echo "BENCH-ABSENT dev=iovx_dio_vda not measured: insmod iov_extract dio_attach=/dev/vda failed: $(tr '\n' ' ' </tmp/insmod.err) $(dmesg | grep -i iov | tail -n 1)"
		fi
		mdev -s 2>/dev/null
		if [ -c /dev/iovx_dio_vda ]; then
			q=/sys/block/vda/queue
			echo "BENCH-META dev=vda sectors=$(cat /sys/block/vda/size) lbs=$(cat $q/logical_block_size)" \
				"max_sectors_kb=$(cat $q/max_sectors_kb) max_segments=$(cat $q/max_segments)" \
				"scheduler=$(cat $q/scheduler 2>/dev/null | tr ' ' '_')"
			for v in $vcases; do
				kind=${v%%:*} op=${v##*:} kib=${v#*:}
				kib=${kib%:*}
				bufcase "vda-$kind-${kib}k-$op" $kind $kib $op dio:psync:/dev/iovx_dio_vda \
					vda:psync:/dev/vda brd:psync:/dev/ram0
			done
		elif [ -d /sys/module/iov_extract ]; then
			echo "BENCH-ABSENT dev=iovx_dio_vda not measured: no /dev/iovx_dio_vda after loading with dio_attach=/dev/vda"
		fi
	fi
fi

# --- Leave things as the runner expects them: iov_extract loaded (without dio_attach).
rmmod null_blk 2>/dev/null
if [ -c /dev/iovx_dio_vda ] || [ ! -d /sys/module/iov_extract ]; then
	rmmod iov_extract 2>/dev/null
	insmod /iovx/modules/iov_extract.ko
fi
rmmod brd 2>/dev/null
stamp end
echo "BENCH-END"
