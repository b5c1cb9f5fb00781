#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest entry point: the seeded random workload (random_io) for a bounded number of operations,
# checked against its model, every kind of operation mixed; the seed is printed (SEED overrides
# it, OPS the number of operations, default 1500 at full size, IOVX_FULL=1 as in `make soak`,
# and 600 otherwise). Then the same with faults off but the module completing every request
# after a delay (delay_us), so that more I/O is in flight at once.
here=$(cd "$(dirname "$0")" && pwd)
DEV=${DEV:-/dev/iovx_dio0}
BDEV=${BDEV:-/dev/iovx0}
MODULE=${MODULE:-/iovx/modules/iov_extract.ko}
if [ -n "${IOVX_FULL:-}" ]; then OPS=${OPS:-1500}; else OPS=${OPS:-600}; fi
SEED=${SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}

if [ ! -e "$DEV" ] || [ ! -e "$BDEV" ]; then
	echo "ok 1 random # SKIP $DEV or $BDEV does not exist"
	exit 0
fi
. "$here/reload.sh"

# run NAME ARGS...: random_io's result lines, numbered after ours and counted in.
run() {
	name=$1
	shift
	out=$(KTAP_FIRST=$((n + 1)) "$here/random_io" --name "$name" --dev "$DEV" --bdev "$BDEV" "$@")
	rc=$?
	printf '%s\n' "$out"
	n=$((n + $(printf '%s\n' "$out" | grep -cE '^(not )?ok [0-9]+')))
	[ $rc -ne 0 ] && failed=$((failed + 1))
}

run random_io --seed "$SEED" --ops "$OPS"
echo "# iov_extract parameters:$params"
if reload random_reload_with_delay delay_us=2000; then
	run random_io_delayed --seed $((SEED + 1)) --ops $((OPS / 3))
	reload random_reload_without_delay
fi
[ "$failed" -eq 0 ]
