# SPDX-License-Identifier: GPL-2.0
#
# Sourced by the guest entry points that reload iov_extract with other parameters
# (t_fork_cow.sh, t_dirty_read.sh, t_hostile.sh): result lines, the parameters the module runs
# with now (but delay_us), sub NAME CMD..., reload NAME [PARAM...], run_delayed NAME DELAY_US
# and run_mode NAME MODE PROGRAM [ARG...]. Expects here, DEV, BDEV and MODULE to be set.
n=0
failed=0

ok() { n=$((n + 1)); echo "ok $n $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n $1 # $2"; }

# The parameters the module runs with now, but delay_us.
params=
for p in /sys/module/iov_extract/parameters/*; do
	[ -r "$p" ] || continue
	name=${p##*/}
	[ "$name" = delay_us ] && continue
	params="$params $name=$(cat "$p")"
done

wait_devices() {
	i=0
	while [ ! -e "$DEV" ] || [ ! -e "$BDEV" ]; do
		i=$((i + 1))
		[ $i -gt 50 ] && return 1
		sleep 0.1 2>/dev/null || sleep 1
	done
}

# sub NAME CMD...: run a program that prints its own result lines, numbered after ours.
sub() {
	name=$1
	shift
	out=$(KTAP_FIRST=$((n + 1)) "$@" 2>&1)
	rc=$?
	printf '%s\n' "$out" | grep -E '^(not )?ok [0-9]+|^#' || true
	k=$(printf '%s\n' "$out" | grep -cE '^(not )?ok [0-9]+')
	n=$((n + k))
	if [ "$rc" -ne 0 ]; then
		failed=$((failed + 1))
		[ "$k" -eq 0 ] && not_ok "$name" "exit $rc"
	fi
}

# reload NAME [PARAM...]: one result line.
reload() {
	name=$1
	shift
	# shellcheck disable=SC2086
	if out=$(rmmod iov_extract 2>&1 && insmod "$MODULE" $params "$@" 2>&1 && wait_devices); then
		ok "$name"
	else
		[ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/# /'
		not_ok "$name" "reloading iov_extract failed"
		return 1
	fi
}

# run_delayed NAME DELAY_US: reload with delay_us=DELAY_US, run the program $here/NAME on DEV and
# BDEV (its results numbered after ours, counted in), reload without the delay. Fails if a
# reload does.
run_delayed() {
	echo "# iov_extract parameters:$params"
	reload "$1_reload_with_delay" "delay_us=$2" || return 1
	out=$(KTAP_FIRST=$((n + 1)) "$here/$1" "$DEV" "$BDEV")
	rc=$?
	printf '%s\n' "$out"
	n=$((n + $(printf '%s\n' "$out" | grep -cE '^(not )?ok [0-9]+')))
	[ $rc -ne 0 ] && failed=$((failed + 1))
	reload "$1_reload_without_delay"
}

# run_mode NAME MODE PROGRAM [ARG...]: runs PROGRAM (its results numbered after ours, counted in)
# with extract_legacy set for MODE (pin: N, legacy: Y; PARAM is its file), the module loaded
# with delay_us=$delay. Failures that all say the delay was too short (the host was slow: the
# step the I/O had to outlast took longer than the delay) are not the property tested: the
# module is reloaded with twice the delay ($delay is updated) and the program runs again, up to
# three times; the last run's results count, the earlier runs' lines stay as comments. Any
# other failure counts at once.
run_mode() {
	rm_name=$1 rm_mode=$2
	shift 2
	if [ "$rm_mode" = legacy ]; then rm_v=Y; else rm_v=N; fi
	if ! echo "$rm_v" > "$PARAM"; then
		not_ok "${rm_name}_set_$rm_mode" "cannot write $PARAM"
		return 1
	fi
	out=$(KTAP_FIRST=$((n + 1)) "$@")
	rc=$?
	tries=0
	while [ $rc -ne 0 ] && [ $tries -lt 3 ] && printf '%s\n' "$out" | grep -q '^not ok' &&
		! printf '%s\n' "$out" | grep '^not ok' | grep -qv 'delay_us too short'; do
		tries=$((tries + 1))
		printf '%s\n' "$out" | sed 's/^/# too slow for the delay: /'
		delay=$((delay * 2))
		echo "# $rm_name $rm_mode: again with delay_us=$delay"
		reload "${rm_name}_${rm_mode}_reload_with_delay_$delay" "delay_us=$delay" || return 1
		if ! echo "$rm_v" > "$PARAM"; then
			not_ok "${rm_name}_set_$rm_mode" "cannot write $PARAM"
			return 1
		fi
		out=$(KTAP_FIRST=$((n + 1)) "$@")
		rc=$?
	done
	printf '%s\n' "$out"
	n=$((n + $(printf '%s\n' "$out" | grep -cE '^(not )?ok [0-9]+')))
	[ $rc -ne 0 ] && failed=$((failed + 1))
	echo N > "$PARAM"
}
