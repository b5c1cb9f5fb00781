#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest entry point: fio with crc32c verification of every block on disk 0 of iov_extract,
# through its character device and its block device, with psync, libaio and io_uring
# (registered buffers), then across the two paths (one writes, the other verifies). One
# result line per fio run: it passes when fio exits 0, no job reports an error, something was
# read back and, but for a verify-only run, as much was read back as was written.
#
# DEV (default /dev/iovx_dio0), BDEV (default /dev/iovx0) and FIO (default /usr/bin/fio)
# override the devices and fio.
here=$(cd "$(dirname "$0")" && pwd)
DEV=${DEV:-/dev/iovx_dio0}
BDEV=${BDEV:-/dev/iovx0}
FIO=${FIO:-/usr/bin/fio}
jobs=$here/fio
n=0
failed=0

ok() { n=$((n + 1)); echo "ok $n $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n $1 # $2"; }

if [ ! -e "$DEV" ] || [ ! -e "$BDEV" ]; then
	echo "ok 1 fio # SKIP $DEV or $BDEV does not exist"
	exit 0
fi
if [ ! -x "$FIO" ]; then
	echo "ok 1 fio # SKIP no fio at $FIO"
	exit 0
fi
# fio is dynamic: its libraries are installed at their host paths.
lib=/usr/lib/$(uname -m)-linux-gnu
export LD_LIBRARY_PATH=/lib/$(uname -m)-linux-gnu:$lib:$lib/ceph
if ! info=$("$here/devinfo" "$BDEV" "$DEV" 2>&1); then
	printf '%s\n' "$info" | sed 's/^/# /'
	not_ok fio_setup "no geometry for $BDEV"
	exit 1
fi
eval "$info"
# The job files read these.
export SIZE="$size" BSMIN="$lbs" IOMEM_ALIGN="$dma" FIXED_ALIGN=$((dma > lbs ? dma : lbs))
echo "# $BDEV: $size bytes, blocks of $lbs, memory alignment $dma; O_DIRECT on $DEV: $odirect"
work=$(mktemp -d /tmp/iovx-fio.XXXXXX) || exit 1
cd "$work" || exit 1

# fio_run NAME JOB FILE DIRECT MODE: MODE verify (write and read back), write (write only) or
# verify_only (read back what the same job wrote through the other path).
fio_run() {
	name=$1
	case "$5" in
	verify) dv=1 vo=0 ;;
	write) dv=0 vo=0 ;;
	*) dv=1 vo=1 ;;
	esac
	export FILENAME="$3" DIRECT="$4" DO_VERIFY="$dv" VERIFY_ONLY="$vo"
	start=$(date +%s)
	"$FIO" --output-format=terse --terse-version=3 "$jobs/$2.fio" >out 2>&1
	rc=$?
	# Terse v3: field 3 job, 5 error, 6 KiB read, 9 read ms, 47 KiB written, 50 write ms.
	awk -F';' '/^3;/ {
		printf "#   %s: error %s, read %s KiB in %s ms, wrote %s KiB in %s ms\n",
			$3, $5, $6, $9, $47, $50 }' out
	verdict=$(awk -F';' -v mode="$5" '
		/^3;/ { jobs++; if ($5 != 0) err++; r += $6; w += $47; next }
		END {
			if (!jobs) print "no job result";
			else if (err) print err " job(s) failed";
			else if (mode == "write" && w == 0) print "nothing was written";
			else if (mode != "write" && r == 0) print "nothing was read back";
			else if (mode == "verify" && r != w) print "read back " r " KiB of the " w " KiB written";
			else if (mode == "write") print "ok " jobs " jobs, " w " KiB written";
			else print "ok " jobs " jobs, " r " KiB verified";
		}' out)
	echo "# fio $2 on $3 (direct=$4, $5): exit $rc, $verdict, $(($(date +%s) - start)) s"
	case "$verdict" in
	ok*)
		if [ $rc -eq 0 ]; then
			ok "$name"
			return 0
		fi ;;
	esac
	grep -v '^3;' out | tail -n 40 | sed 's/^/# /'
	not_ok "$name" "fio exit $rc, $verdict"
}

for job in psync libaio io_uring; do
	fio_run "fio_${job}_dio" "$job" "$DEV" "$odirect" verify
	fio_run "fio_${job}_bdev" "$job" "$BDEV" 1 verify
done
fio_run fio_cross_write_dio cross "$DEV" "$odirect" write
fio_run fio_cross_verify_bdev cross "$BDEV" 1 verify_only
fio_run fio_cross_write_bdev cross "$BDEV" 1 write
fio_run fio_cross_verify_dio cross "$DEV" "$odirect" verify_only

cd / && rm -rf "$work"
[ $failed -eq 0 ]
