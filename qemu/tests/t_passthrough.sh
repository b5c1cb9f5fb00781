#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest entry point: the passthrough ioctl of disk 0 of iov_extract and its io_uring command on
# /dev/iovx_ng0 (rust/uapi/iovx.h), with the Rust and the kernel's mapping; then, with the
# module reloaded so that disk 0 completes requests DELAY_US (default 200000) late, io_uring
# commands in flight keep the module from unloading; then, reloaded so that disk 0 has one
# hardware queue of RETRY_TAGS (default 4) requests completed RETRY_DELAY_US (default 50000)
# late, io_uring commands that find no free tag when issued without blocking are issued again
# by io_uring's worker; then, reloaded with max_segments=SEG_LIMIT (default 16), the segment
# limit holds for segments that span several pages; and the module is reloaded without the delay
# and the limit. BDEV and NGDEV override
# the devices, MODULE the module file.
here=$(cd "$(dirname "$0")" && pwd)
BDEV=${BDEV:-/dev/iovx0}
NGDEV=${NGDEV:-/dev/iovx_ng0}
DEV=$BDEV
MODULE=${MODULE:-/iovx/modules/iov_extract.ko}
DELAY_US=${DELAY_US:-200000}
RETRY_TAGS=${RETRY_TAGS:-4}
RETRY_DELAY_US=${RETRY_DELAY_US:-50000}
SEG_LIMIT=${SEG_LIMIT:-16}
if [ ! -e "$BDEV" ] || [ ! -e "$NGDEV" ]; then
	echo "ok 1 passthrough # SKIP $BDEV or $NGDEV does not exist"
	exit 0
fi
. "$here/reload.sh"

# run_pt ARGS...: the program's result lines, numbered after ours and counted in.
run_pt() {
	out=$(KTAP_FIRST=$((n + 1)) "$here/passthrough" "$@")
	rc=$?
	printf '%s\n' "$out"
	n=$((n + $(printf '%s\n' "$out" | grep -cE '^(not )?ok [0-9]+')))
	[ $rc -ne 0 ] && failed=$((failed + 1))
}

run_pt "$BDEV" "$NGDEV"
echo "# iov_extract parameters:$params"
params=$(printf '%s\n' $params | grep -v '^delay_mask=' | tr '\n' ' ')
reload passthrough_reload_with_delay "delay_us=$DELAY_US" "delay_mask=1" || exit 1
run_pt --busy "$BDEV" "$NGDEV" iov_extract
# Few tags: one hardware queue of RETRY_TAGS requests, completed RETRY_DELAY_US late.
saved=$params
params=$(printf '%s\n' $params | grep -vE '^(hw_queues|queue_depth)=' | tr '\n' ' ')
reload passthrough_reload_with_few_tags "hw_queues=1" "queue_depth=$RETRY_TAGS" \
	"delay_us=$RETRY_DELAY_US" "delay_mask=1" || exit 1
run_pt --retry "$BDEV" "$NGDEV"
params=$saved
# Few segments: max_segments=SEG_LIMIT, which merged segments must meet.
params=$(printf '%s\n' $params | grep -v '^max_segments=' | tr '\n' ' ')
reload passthrough_reload_with_few_segments "max_segments=$SEG_LIMIT" || exit 1
run_pt --seglimit "$SEG_LIMIT" "$BDEV" "$NGDEV"
params=$saved
reload passthrough_reload_without_delay
[ $failed -eq 0 ]
