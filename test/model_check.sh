#!/bin/sh
# Description: checks the wait/wake protocol model (model/wakeup.pml) with
# spin. The correct protocol must pass an exhaustive safety search (no lost
# wake-up, no needless wake, ring contents, closing) and a non-progress-cycle
# search (no busy waiting), in the fenceless mode (store buffers and the
# waiter's process-wide barrier) and the safety search also fenced; each mutant, a deliberately broken protocol, must
# be caught, which shows that the checks are not vacuous.
#
# Usage: sh test/model_check.sh [model-dir]    (default: ../model from here)
# Exit status: 0 pass, 1 fail, 77 skip (spin or cc missing).
# Environment: MODEL_CFLAGS overrides the flags pan.c is compiled with
# (default -O0), MODEL_DEPTH the search depth bound (default 100000).

model_dir=${1:-$(dirname "$0")/../model}
model="$model_dir/wakeup.pml"

for tool in spin cc; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "skip: $tool not found"
		exit 77
	fi
done
if [ ! -r "$model" ]; then
	echo "FAIL: cannot read $model"
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/shmpipe-model.XXXXXX") || exit 1
pids=
trap 'rm -rf "$tmp"' EXIT
# shellcheck disable=SC2086 # $pids is a list
trap '[ -n "$pids" ] && kill $pids 2>/dev/null; exit 1' HUP INT PIPE TERM
cp "$model" "$tmp/wakeup.pml" || exit 1

# The searches are small (about a million states at most): compiling pan.c
# with optimisation costs more time than it saves, so -O0. The depth bound
# must never be reached: a truncated search of the correct model is a
# failure, not a pass.
cflags=${MODEL_CFLAGS:--O0}
depth=${MODEL_DEPTH:-100000}
hash=21
start=$(date +%s)
failed=0

# build NAME MODE SPIN_DEFINES: generate and compile pan for one check, in
# its own directory. MODE is safety (-DSAFETY) or np (-DNP).
build() {
	dir="$tmp/$1"
	mkdir "$dir" && cp "$tmp/wakeup.pml" "$dir/" || return 1
	case $2 in
	safety) mode=-DSAFETY ;;
	np) mode=-DNP ;;
	esac
	# shellcheck disable=SC2086 # $3 is a list of -D flags
	(cd "$dir" && spin $3 -a wakeup.pml >spin.out 2>&1 &&
		cc $cflags -w $mode -o pan pan.c >cc.out 2>&1) || {
		echo "FAIL: $1: spin -a or cc failed"
		cat "$dir/spin.out" "$dir/cc.out" 2>/dev/null | head -20
		return 1
	}
}

# search NAME MODE: run pan, which stops at the first error; its report is
# left in pan.out.
search() {
	opts="-m$depth -w$hash"
	[ "$2" = np ] && opts="$opts -l"
	# shellcheck disable=SC2086
	(cd "$tmp/$1" && ./pan $opts >pan.out 2>&1)
	return 0
}

# search_complete NAME: the search explored every state (no depth or memory limit).
search_complete() {
	out="$tmp/$1/pan.out"
	if grep -qi -e 'search not completed' -e 'max search depth too small' \
		-e 'out of memory' "$out" || ! grep -q 'Full statespace search' "$out"; then
		echo "FAIL: $1: the search was not complete"
		grep -i -e 'error' -e 'warning' -e 'depth reached' "$out" | head -10
		return 1
	fi
}

states() {
	sed -n 's/^ *\([0-9][0-9e.+]*\) states, stored.*/\1/p' "$tmp/$1/pan.out"
}

# check_ok NAME MODE WHAT: the correct model must pass a complete search.
# check_ok NAME MODE DESCRIPTION [SPIN-FLAGS]
check_ok() {
	build "$1" "$2" "${4:-}" && search "$1" "$2" || return 1
	if grep -q 'errors: 0$' "$tmp/$1/pan.out"; then
		search_complete "$1" || return 1
		echo "ok: correct protocol, $3, $(states "$1") states, 0 errors"
	else
		echo "FAIL: correct protocol, $3: spin found an error"
		grep -e '^pan' -e 'errors:' "$tmp/$1/pan.out" | head -10
		if [ "$2" = np ]; then m=-DNP l=' -l'; else m=-DSAFETY l=; fi
		echo "  replay in a scratch copy of the model: spin -a wakeup.pml &&" \
			"cc $m -o pan pan.c && ./pan$l && spin -t -p -g -l wakeup.pml"
		return 1
	fi
}

# check_caught NAME MODE PATTERN WHAT: the mutant (built with -DMUTANT_NAME)
# must fail, with the error that pan reports as "pan:1: PATTERN...".
check_caught() {
	macro=MUTANT_$(echo "$1" | tr '[:lower:]' '[:upper:]')
	build "$1" "$2" "-D$macro" && search "$1" "$2" || return 1
	if grep -qF "pan:1: $3" "$tmp/$1/pan.out"; then
		echo "ok: mutant $1 caught: $4"
	else
		echo "FAIL: mutant $1 not caught (wanted: $4)"
		grep -e '^pan' -e 'errors:' "$tmp/$1/pan.out" | head -10
		return 1
	fi
}

lost="invalid end state (a lost wake-up)"
needless="assertion violated (a futex_wake with no sleeper)"

# Two lanes of checks run side by side (two cores; and under load, two
# processes get twice the share of one). Each check writes its lines to
# NAME.res; they are printed in a fixed order at the end.
lane1() {
	rc=0
	check_ok correct safety "fenceless, no lost wake-up, no needless wake, ring and close checks" \
		>"$tmp/correct.res" 2>&1 || rc=1
	check_ok correct_fenced safety "fenced, no lost wake-up, no needless wake, ring and close checks" \
		-DFENCED >"$tmp/correct_fenced.res" 2>&1 || rc=1
	check_caught no_recheck safety "invalid end state" "$lost" \
		>"$tmp/no_recheck.res" 2>&1 || rc=1
	check_caught signal_before_publish safety "invalid end state" "$lost" \
		>"$tmp/signal_before_publish.res" 2>&1 || rc=1
	check_caught no_wake_on_close safety "invalid end state" "$lost" \
		>"$tmp/no_wake_on_close.res" 2>&1 || rc=1
	check_caught no_futex_check safety "invalid end state" "$lost" \
		>"$tmp/no_futex_check.res" 2>&1 || rc=1
	check_caught no_barrier safety "invalid end state" "$lost" \
		>"$tmp/no_barrier.res" 2>&1 || rc=1
	return $rc
}

lane2() {
	rc=0
	check_ok correct_np np "no non-progress cycle" \
		>"$tmp/correct_np.res" 2>&1 || rc=1
	check_caught eof_no_reread safety "assertion violated (rpos==" \
		"assertion violated (end of stream before all items were read)" \
		>"$tmp/eof_no_reread.res" 2>&1 || rc=1
	check_caught always_wake safety "assertion violated announced" "$needless" \
		>"$tmp/always_wake.res" 2>&1 || rc=1
	check_caught no_withdraw safety "assertion violated announced" "$needless" \
		>"$tmp/no_withdraw.res" 2>&1 || rc=1
	check_caught busy_wait np "non-progress cycle" "non-progress cycle (busy waiting)" \
		>"$tmp/busy_wait.res" 2>&1 || rc=1
	return $rc
}

lane1 &
pid1=$!
lane2 &
pid2=$!
pids="$pid1 $pid2"
wait "$pid1" || failed=1
wait "$pid2" || failed=1
pids=

for name in correct correct_fenced correct_np no_recheck signal_before_publish \
	no_wake_on_close no_futex_check no_barrier eof_no_reread always_wake no_withdraw busy_wait; do
	if [ -s "$tmp/$name.res" ]; then
		cat "$tmp/$name.res"
	else
		echo "FAIL: $name: no result"
		failed=1
	fi
done

end=$(date +%s)
if [ "$failed" -ne 0 ]; then
	echo "FAIL: model check ($((end - start)) s)"
	exit 1
fi
echo "ok: model check passed ($((end - start)) s)"
exit 0
