#!/bin/sh
# SPDX-License-Identifier: MIT
# Description: checks the wait/wake protocol model (model/wakeup.pml), the
# broadcast model (model/fanout.pml), the work-sharing model
# (model/share.pml) and the far forward's acknowledgements
# (model/acks.pml), below, with spin. The correct
# protocol must pass an exhaustive safety search (no lost wake-up, no
# needless ring, ring contents, closing) for each way of waiting: the
# sleeper (a blocking call), the poller (timeout-0 calls from an event
# loop), a level-triggered loop that makes one call per readiness event, an
# edge-triggered one, and ends that mix sleeping and polling calls.
# Each end's barrier flag starts clear and is set before its first sleep, and
# each signaller publishes fenced until it has read the flag, then fenceless
# (store buffers and the waiter's process-wide barrier), so the sleeper and
# the mixed ends switch mode mid-run; pure event loops never promise and
# stay fenced, and the level-triggered run also starts with flags already
# set (-DPROMISED); -DFENCED (processes not registered) is the sleeper that
# never promises. The ends of a named pipe meeting (-DMEET: the opening
# end's rings go nowhere until the creating end has greeted it) are checked
# for the sleeper, the poller and both loops, with either end creating. A
# non-progress-cycle search (no busy waiting) runs for the sleeper
# (-DFENCED: the promise is made once and the barrier is one step, so
# neither can close a cycle), the poller and the two loops. Each mutant, a
# deliberately broken protocol, must be caught, which shows that the checks
# are not vacuous.
#
# The broadcast (fan-out) model (model/fanout.pml: one writer, two reader
# places, readers that join mid-stream, leave, die and are reaped, a third
# that takes a place over) runs in a third lane: an exhaustive safety
# search for each of four configurations (no overrun of a live reader, no
# lost wake-up, every reader gets the whole suffix of the stream from its
# join, EPIPE only with no reader left, no needless ring), and its mutants.
# The work-sharing model (model/share.pml: one writer, two readers taking
# items through a claim and holds, one of which may die at any step) runs
# in a fourth: each item taken once and whole, none lost but the one a dead
# reader held, no lost wake-up, for two sizes, and its mutants. The
# acknowledgements model (model/acks.pml: a far forward taking a JetStream
# AckAll consumer's messages, dying at any step, and the next one taking
# over) runs after it in the same lane: nothing acknowledged unwritten, the
# pipe's start right, and its mutants.
#
# By hand only (tens of seconds each, or more): the mixed ends with N=4,
# the edge-triggered loop and the level-triggered loop with a third party
# with -DPROMISED, and the non-progress searches of the switching sleeper
# (the default build) and of the mixed ends, e.g.
#   spin -DWAIT_MIX -a wakeup.pml && cc -O2 -DSAFETY -o pan pan.c && ./pan -w26
#   spin -DWAIT_ET -DPROMISED -a wakeup.pml && cc -O2 -DSAFETY -o pan pan.c && ./pan -w24
#   spin -DWAIT_MIX -DN=3 -a wakeup.pml && cc -O2 -DNP -o pan pan.c && ./pan -l -w24
# and, for fan-out, a third reader with a ring of 2 and 3 items, a reader
# that may leave or die before a third takes its place, spurious liveness
# slices of the writer, or the wake-up count kept in the event words:
#   spin -DLATE -DLEAVE1=false -a fanout.pml && cc -O2 -DSAFETY -o pan pan.c && ./pan -w25
#   spin -DLATE -DC=1 -DK=2 -a fanout.pml && cc -O2 -DSAFETY -o pan pan.c && ./pan -w25
#   spin -DTIMER=1 -a fanout.pml && cc -O2 -DSAFETY -o pan pan.c && ./pan -w24
#   spin -DEVMOD=8 -a fanout.pml && cc -O2 -DSAFETY -o pan pan.c && ./pan -w25
#
# Usage: sh test/model_check.sh [model-dir]    (default: ../model from here)
# Exit status: 0 pass, 1 fail, 77 skip (spin or cc missing).
# Environment: MODEL_CFLAGS overrides the flags pan.c is compiled with
# (default -O0), MODEL_DEPTH the search depth bound (default 100000).

model_dir=${1:-$(dirname "$0")/../model}
model="$model_dir/wakeup.pml"
fanout="$model_dir/fanout.pml"
share="$model_dir/share.pml"
acks="$model_dir/acks.pml"

for tool in spin cc; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "skip: $tool not found"
		exit 77
	fi
done
for f in "$model" "$fanout" "$share"; do
	if [ ! -r "$f" ]; then
		echo "FAIL: cannot read $f"
		exit 1
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/shmpipe-model.XXXXXX") || exit 1
pids=
trap 'rm -rf "$tmp"' EXIT
# shellcheck disable=SC2086 # $pids is a list
trap '[ -n "$pids" ] && kill $pids 2>/dev/null; exit 1' HUP INT PIPE TERM
cp "$model" "$tmp/wakeup.pml" && cp "$fanout" "$tmp/fanout.pml" && cp "$share" "$tmp/share.pml" &&
	cp "$acks" "$tmp/acks.pml" ||
	exit 1

# The searches are small (a few million states at most, a few seconds
# each): compiling pan.c with optimisation costs more time than it saves,
# so -O0. The depth bound must never be reached: a truncated search of the
# correct model is a failure, not a pass. A hash table of 2^23 slots keeps
# the chains short for the largest searches.
cflags=${MODEL_CFLAGS:--O0}
depth=${MODEL_DEPTH:-100000}
hash=23
start=$(date +%s)
failed=0
# The model the checks below build: wakeup.pml, or fanout.pml in lane3.
pml=wakeup.pml

# build NAME MODE SPIN_DEFINES: generate and compile pan for one check of
# $pml, in its own directory. MODE is safety (-DSAFETY) or np (-DNP).
build() {
	dir="$tmp/$1"
	mkdir "$dir" && cp "$tmp/$pml" "$dir/" || return 1
	case $2 in
	safety) mode=-DSAFETY ;;
	np) mode=-DNP ;;
	esac
	# shellcheck disable=SC2086 # $3 is a list of -D flags
	(cd "$dir" && spin $3 -a "$pml" >spin.out 2>&1 &&
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

# check_ok NAME MODE DESCRIPTION [SPIN-FLAGS]: the correct model must pass
# a complete search.
check_ok() {
	build "$1" "$2" "${4:-}" && search "$1" "$2" || return 1
	if grep -q 'errors: 0$' "$tmp/$1/pan.out"; then
		search_complete "$1" || return 1
		echo "ok: correct protocol, $3, $(states "$1") states, 0 errors"
	else
		echo "FAIL: correct protocol, $3: spin found an error"
		grep -e '^pan' -e 'errors:' "$tmp/$1/pan.out" | head -10
		if [ "$2" = np ]; then m=-DNP l=' -l'; else m=-DSAFETY l=; fi
		f=${4:+ $4}
		echo "  replay in a scratch copy of the model: spin$f -a $pml &&" \
			"cc $m -o pan pan.c && ./pan$l && spin$f -t -p -g -l $pml"
		return 1
	fi
}

# check_caught NAME MUTANT MODE PATTERN WHAT [SPIN-FLAGS]: the model built
# with -DMUTANT_<MUTANT> (and the flags, which choose the way of waiting)
# must fail, with the error that pan reports as "pan:1: PATTERN...".
check_caught() {
	build "$1" "$3" "-DMUTANT_$2 ${6:-}" && search "$1" "$3" || return 1
	if grep -qF "pan:1: $4" "$tmp/$1/pan.out"; then
		echo "ok: mutant $1 caught: $5"
	else
		echo "FAIL: mutant $1 not caught (wanted: $5)"
		grep -e '^pan' -e 'errors:' "$tmp/$1/pan.out" | head -10
		return 1
	fi
}

lost="invalid end state (a lost wake-up)"
needless="assertion violated (a ring with no waiter)"
stuck="invalid end state"
unasked="assertion violated announced"

# Two lanes of checks of wakeup.pml run side by side (two cores; and under
# load, two processes get twice the share of one), of about equal cost, and
# a third of fanout.pml (lane3, below). Each check writes its lines to
# NAME.res; they are printed in a fixed order at the end.
lane1() {
	rc=0
	check_ok sleep safety "sleeper, the flags set before the first sleep, no lost wake-up, no needless ring, ring and close checks" \
		>"$tmp/sleep.res" 2>&1 || rc=1
	check_ok sleep_fenced safety "sleeper, processes not registered (fenced), the same checks" \
		-DFENCED >"$tmp/sleep_fenced.res" 2>&1 || rc=1
	check_ok poll safety "poller, never promises (fenced), the same checks" \
		-DWAIT_POLL >"$tmp/poll.res" 2>&1 || rc=1
	check_ok lt safety "level-triggered loop, one call per event, flags set or not from the start, the same checks" \
		"-DWAIT_LT -DPROMISED" >"$tmp/lt.res" 2>&1 || rc=1
	check_ok lt_stray safety "level-triggered loop, fenced, a third party rings a doorbell" \
		"-DWAIT_LT -DSTRAY=1" >"$tmp/lt_stray.res" 2>&1 || rc=1
	check_ok et safety "edge-triggered loop, never promises (fenced), the same checks" \
		-DWAIT_ET >"$tmp/et.res" 2>&1 || rc=1
	check_ok mix safety "ends that sleep or poll on each call, N=3, switching mid-run, the same checks" \
		"-DWAIT_MIX -DN=3" >"$tmp/mix.res" 2>&1 || rc=1
	check_caught no_recheck NO_RECHECK safety "$stuck" "$lost" \
		>"$tmp/no_recheck.res" 2>&1 || rc=1
	check_caught no_recheck_poll NO_RECHECK safety "$stuck" "$lost" \
		-DWAIT_POLL >"$tmp/no_recheck_poll.res" 2>&1 || rc=1
	check_caught signal_before_publish SIGNAL_BEFORE_PUBLISH safety "$stuck" "$lost" \
		>"$tmp/signal_before_publish.res" 2>&1 || rc=1
	check_caught ring_before_publish_poll RING_BEFORE_PUBLISH safety "$stuck" "$lost" \
		-DWAIT_POLL >"$tmp/ring_before_publish_poll.res" 2>&1 || rc=1
	check_caught drain_late_poll DRAIN_LATE safety "$stuck" "$lost" \
		-DWAIT_POLL >"$tmp/drain_late_poll.res" 2>&1 || rc=1
	check_caught no_wake_on_close NO_WAKE_ON_CLOSE safety "$stuck" "$lost" \
		>"$tmp/no_wake_on_close.res" 2>&1 || rc=1
	check_caught ring_not_kept RING_NOT_KEPT safety "$stuck" "$lost" \
		>"$tmp/ring_not_kept.res" 2>&1 || rc=1
	check_caught eof_no_reread EOF_NO_REREAD safety "assertion violated (rpos==" \
		"assertion violated (end of stream before all items were read)" \
		>"$tmp/eof_no_reread.res" 2>&1 || rc=1
	check_caught always_wake ALWAYS_WAKE safety "$unasked" "$needless" \
		>"$tmp/always_wake.res" 2>&1 || rc=1
	check_caught no_withdraw NO_WITHDRAW safety "$unasked" "$needless" \
		>"$tmp/no_withdraw.res" 2>&1 || rc=1
	check_ok meet_sleep safety "sleeper, a named pipe's ends meeting (the consumer created it), the same checks" \
		-DMEET=DATA >"$tmp/meet_sleep.res" 2>&1 || rc=1
	check_ok meet_lt safety "level-triggered loop, ends meeting (the producer created it), flags set or not, the same checks" \
		"-DWAIT_LT -DMEET=SPACE -DPROMISED" >"$tmp/meet_lt.res" 2>&1 || rc=1
	check_ok meet_et safety "edge-triggered loop, ends meeting (the producer created it), the same checks" \
		"-DWAIT_ET -DMEET=SPACE" >"$tmp/meet_et.res" 2>&1 || rc=1
	return $rc
}

lane2() {
	rc=0
	check_ok sleep_np np "sleeper, processes not registered, no non-progress cycle" \
		-DFENCED >"$tmp/sleep_np.res" 2>&1 || rc=1
	check_ok poll_np np "poller, no non-progress cycle" \
		-DWAIT_POLL >"$tmp/poll_np.res" 2>&1 || rc=1
	check_ok lt_np np "level-triggered loop, no non-progress cycle" \
		-DWAIT_LT >"$tmp/lt_np.res" 2>&1 || rc=1
	check_ok et_np np "edge-triggered loop, no non-progress cycle" \
		-DWAIT_ET >"$tmp/et_np.res" 2>&1 || rc=1
	check_caught no_barrier NO_BARRIER safety "$stuck" "$lost" \
		>"$tmp/no_barrier.res" 2>&1 || rc=1
	check_caught no_barrier_poll NO_BARRIER safety "$stuck" "$lost" \
		"-DWAIT_POLL -DPROMISED" >"$tmp/no_barrier_poll.res" 2>&1 || rc=1
	check_caught barrier_late BARRIER_LATE safety "$stuck" "$lost" \
		>"$tmp/barrier_late.res" 2>&1 || rc=1
	check_caught poll_no_barrier_mix POLL_NO_BARRIER safety "$stuck" "$lost" \
		"-DWAIT_MIX -DN=3" >"$tmp/poll_no_barrier_mix.res" 2>&1 || rc=1
	check_caught eager_fenceless_poll EAGER_FENCELESS safety "$stuck" "$lost" \
		-DWAIT_POLL >"$tmp/eager_fenceless_poll.res" 2>&1 || rc=1
	check_caught no_restore_lt NO_RESTORE safety "$stuck" \
		"invalid end state (a level-triggered loop waits on an empty doorbell with work to do)" \
		-DWAIT_LT >"$tmp/no_restore_lt.res" 2>&1 || rc=1
	check_caught no_drain_et NO_DRAIN safety "$stuck" \
		"invalid end state (an edge-triggered loop waits for an edge that never comes)" \
		-DWAIT_ET >"$tmp/no_drain_et.res" 2>&1 || rc=1
	check_caught busy_wait BUSY_WAIT np "non-progress cycle" "non-progress cycle (busy waiting)" \
		>"$tmp/busy_wait.res" 2>&1 || rc=1
	check_ok meet_poll safety "poller, ends meeting (the consumer created it), the same checks" \
		"-DWAIT_POLL -DMEET=DATA" >"$tmp/meet_poll.res" 2>&1 || rc=1
	check_ok meet_lt_np np "level-triggered loop, ends meeting, no non-progress cycle" \
		"-DWAIT_LT -DMEET=DATA" >"$tmp/meet_lt_np.res" 2>&1 || rc=1
	check_caught meet_no_note_lt MEET_NO_NOTE safety "$stuck" \
		"invalid end state (a loop waits for a ring lost before the ends met)" \
		"-DWAIT_LT -DMEET=DATA" >"$tmp/meet_no_note_lt.res" 2>&1 || rc=1
	check_caught hello_give_up HELLO_GIVE_UP safety "$stuck" \
		"invalid end state (the creating end gave up on a slow hello and never meets its peer)" \
		-DMEET=DATA >"$tmp/hello_give_up.res" 2>&1 || rc=1
	return $rc
}

# The fan-out model (model/fanout.pml), in a lane of its own. fan: reader 0
# reads from the start, reader 1 joins at any moment and may leave or die;
# fan_k4: 4 items through a ring of 2, reader 1 joins and stays;
# fan_epipe: a ring of 1, both readers join (the writer waits for the
# first), reader 0 may leave and reader 1 die, so the writer gets EPIPE
# after a leave or a reap; fan_late: a ring of 1, reader 1 may die, and a
# third reader takes its place once the writer dropped it. The fan-out
# searches store 2 to 7 million states each.
fanslot="assertion violated slot_free"
fanlost="invalid end state (a lost wake-up)"
lane3() {
	rc=0
	pml=fanout.pml
	check_ok fan safety "fan-out, 3 items, ring of 2, a reader joins mid-stream and may leave or die: no overrun, no lost wake-up, whole suffix from the join, EPIPE only with no reader left, no needless ring" \
		>"$tmp/fan.res" 2>&1 || rc=1
	check_ok fan_k4 safety "fan-out, 4 items, ring of 2, a reader joins mid-stream, the same checks" \
		"-DK=4 -DLEAVE1=false -DKILL1=0" >"$tmp/fan_k4.res" 2>&1 || rc=1
	check_ok fan_epipe safety "fan-out, 2 items, ring of 1, both readers join, one may leave and one die, the same checks" \
		"-DC=1 -DK=2 -DJOIN0 -DLEAVE0=true -DLEAVE1=false" >"$tmp/fan_epipe.res" 2>&1 || rc=1
	check_ok fan_late safety "fan-out, 2 items, ring of 1, a reader may die and a third take its place, the same checks" \
		"-DC=1 -DK=2 -DLATE -DLEAVE1=false" >"$tmp/fan_late.res" 2>&1 || rc=1
	check_caught fan_join_no_reread JOIN_NO_REREAD safety "$fanslot" \
		"assertion violated (the writer overwrote the item a joiner starts at)" \
		"-DK=4 -DLEAVE1=false -DKILL1=0" >"$tmp/fan_join_no_reread.res" 2>&1 || rc=1
	check_caught fan_no_stale_check NO_STALE_CHECK safety "$fanslot" \
		"assertion violated (a joiner's stale position wrapped the room: overrun)" \
		"-DK=4 -DLEAVE1=false -DKILL1=0" >"$tmp/fan_no_stale_check.res" 2>&1 || rc=1
	check_caught fan_min_skips_slot MIN_SKIPS_SLOT safety "$fanslot" \
		"assertion violated (the reader left out of the minimum is overrun)" \
		>"$tmp/fan_min_skips_slot.res" 2>&1 || rc=1
	check_caught fan_read_no_signal READ_NO_SIGNAL safety "$stuck" "$fanlost" \
		>"$tmp/fan_read_no_signal.res" 2>&1 || rc=1
	check_caught fan_signal_one SIGNAL_ONE safety "$stuck" "$fanlost" \
		"-DK=4 -DLEAVE1=false -DKILL1=0" >"$tmp/fan_signal_one.res" 2>&1 || rc=1
	check_caught fan_reap_alive REAP_ALIVE safety "assertion violated no_reader_left" \
		"assertion violated (EPIPE while a live reader had items to read)" \
		>"$tmp/fan_reap_alive.res" 2>&1 || rc=1
	check_caught fan_leave_no_signal LEAVE_NO_SIGNAL safety "$stuck" "$fanlost" \
		>"$tmp/fan_leave_no_signal.res" 2>&1 || rc=1
	return $rc
}

# The work-sharing model (model/share.pml): share: a ring of 1, 2 items, two
# readers, one of which may die at any step (holding an item or not);
# share_k3: a ring of 2, 3 items, nobody dies. Each stores 4 to 7 million
# states.
sharewrong="assertion violated right_item"
lane4() {
	rc=0
	pml=share.pml
	check_ok share safety "work-sharing, 2 items, ring of 1, a reader may die at any step: each item to one reader, whole, none lost but the one a dead reader held, no lost wake-up" \
		"-DC=1 -DK=2" >"$tmp/share.res" 2>&1 || rc=1
	check_ok share_k3 safety "work-sharing, 3 items, ring of 2, the same checks" \
		"-DC=2 -DK=3 -DNODEATH" >"$tmp/share_k3.res" 2>&1 || rc=1
	check_caught share_hold_after HOLD_AFTER safety "$sharewrong" \
		"assertion violated (the item is overwritten while a reader copies it out)" \
		"-DC=1 -DK=2" >"$tmp/share_hold_after.res" 2>&1 || rc=1
	check_caught share_no_holds NO_HOLDS safety "$sharewrong" \
		"assertion violated (the writer overwrites a held item)" \
		"-DC=1 -DK=2" >"$tmp/share_no_holds.res" 2>&1 || rc=1
	check_caught share_no_claim NO_CLAIM safety "$sharewrong" \
		"assertion violated (the writer overwrites an item nobody took)" \
		"-DC=1 -DK=2" >"$tmp/share_no_claim.res" 2>&1 || rc=1
	check_caught share_stale_hold STALE_HOLD safety "$stuck" \
		"invalid end state (a waiting reader's old hold keeps the writer)" \
		"-DC=1 -DK=2" >"$tmp/share_stale_hold.res" 2>&1 || rc=1
	check_caught share_no_release NO_RELEASE safety "$stuck" "$fanlost" \
		"-DC=1 -DK=2" >"$tmp/share_no_release.res" 2>&1 || rc=1
	check_caught share_signal_one SIGNAL_ONE safety "$stuck" "$fanlost" \
		"-DC=1 -DK=2" >"$tmp/share_signal_one.res" 2>&1 || rc=1
	check_caught share_reap_live REAP_LIVE safety "assertion violated none_lost" \
		"assertion violated (an item lost that no dead reader held)" \
		"-DC=1 -DK=2" >"$tmp/share_reap_live.res" 2>&1 || rc=1
	acks_lane || rc=1
	return $rc
}

# The far forward's acknowledgements (model/acks.pml): acks: 3 messages,
# the forwarder may die at any step and the next one take over, up to 2
# deliveries again and 1 to the dead one's open request (about 130,000
# states); acks_r3: 3 deliveries again (about 540,000).
unwritten="assertion violated written"
badstart="assertion violated (next==1)"
acks_lane() {
	rc=0
	pml=acks.pml
	check_ok acks safety "acknowledgements, 3 messages, a forwarder that dies and the next: nothing acknowledged unwritten, the pipe's start right, in order" \
		>"$tmp/acks.res" 2>&1 || rc=1
	check_ok acks_r3 safety "acknowledgements, up to 3 deliveries again, the same checks" \
		-DR=3 >"$tmp/acks_r3.res" 2>&1 || rc=1
	check_caught acks_no_start_doubt NO_START_DOUBT safety "$badstart" \
		"assertion violated (a later message taken for the start: deliveries to a dead forwarder ignored)" \
		>"$tmp/acks_no_start_doubt.res" 2>&1 || rc=1
	check_caught acks_no_gap_doubt NO_GAP_DOUBT safety "$badstart" \
		"assertion violated (a later message taken for the start: a gap in the deliveries ignored)" \
		>"$tmp/acks_no_gap_doubt.res" 2>&1 || rc=1
	check_caught acks_any_look ANY_LOOK safety "$badstart" \
		"assertion violated (a later message taken for the start: the servers' count not compared)" \
		>"$tmp/acks_any_look.res" 2>&1 || rc=1
	check_caught acks_ack_untaken ACK_UNTAKEN safety "$unwritten" \
		"assertion violated (a refused message acknowledged)" \
		>"$tmp/acks_ack_untaken.res" 2>&1 || rc=1
	check_caught acks_first_seen FIRST_SEEN_START safety "$badstart" \
		"assertion violated (the first message seen taken for the start, the old rule)" \
		>"$tmp/acks_first_seen.res" 2>&1 || rc=1
	return $rc
}

lane1 &
pid1=$!
lane2 &
pid2=$!
lane3 &
pid3=$!
lane4 &
pid4=$!
pids="$pid1 $pid2 $pid3 $pid4"
wait "$pid1" || failed=1
wait "$pid2" || failed=1
wait "$pid3" || failed=1
wait "$pid4" || failed=1
pids=

for name in sleep sleep_fenced poll lt lt_stray et mix \
	meet_sleep meet_poll meet_lt meet_et \
	sleep_np poll_np lt_np et_np meet_lt_np \
	no_recheck no_recheck_poll signal_before_publish ring_before_publish_poll \
	drain_late_poll no_wake_on_close ring_not_kept no_barrier no_barrier_poll \
	barrier_late poll_no_barrier_mix eager_fenceless_poll \
	eof_no_reread always_wake no_withdraw no_restore_lt no_drain_et busy_wait \
	meet_no_note_lt hello_give_up \
	fan fan_k4 fan_epipe fan_late \
	fan_join_no_reread fan_no_stale_check fan_min_skips_slot fan_read_no_signal \
	fan_signal_one fan_reap_alive fan_leave_no_signal \
	share share_k3 share_hold_after share_no_holds share_no_claim share_stale_hold \
	share_no_release share_signal_one share_reap_live \
	acks acks_r3 acks_no_start_doubt acks_no_gap_doubt acks_any_look acks_ack_untaken \
	acks_first_seen; do
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
