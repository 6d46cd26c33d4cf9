# SPDX-License-Identifier: MIT
# Description: the progress line, on a real terminal (a tmux pane) and off
# one. On the terminal, buffer, write and read show one line rewritten in
# place with the bytes, the rate, the ring's fill and both sides' waits,
# which ends as a final line with the average rate; --quiet shows none; and
# stat --watch redraws its block in place.
# Off a terminal nothing is shown unless --progress asks, and then as whole
# lines with no carriage return or escape sequence.
source "$(dirname "$0")/lib.sh"

command -v tmux >/dev/null || skip "tmux is not installed"

# A private tmux server, gone with the test.
TMUX_SOCK="$TMP/tmux"
tm() {
	tmux -S "$TMUX_SOCK" "$@"
}
trap 'tm kill-server 2>/dev/null; cleanup' EXIT
tm -f /dev/null new-session -d -x 150 -y 20 -s t "env PS1='$ ' bash --norc --noprofile" ||
	skip "tmux cannot start a session here"
tm set-option -g history-limit 100 >/dev/null

# screen: the pane's visible text, trailing blanks dropped.
screen() {
	tm capture-pane -p -t t | sed -e 's/[[:space:]]*$//' -e '/^$/d'
}
# run CMD: types CMD into the pane, then a marker once it has finished:
# ENDn-STATUS, n counting the runs, so that the marker of the run before,
# still on the screen until the pane has cleared it, is not taken for this
# one's.
RUNS=0
run() {
	RUNS=$((RUNS + 1))
	tm send-keys -t t "clear; $1; echo END$RUNS-\$?" Enter
}
finished() {
	screen | grep -q "^END$RUNS-"
}

LINE='^ *[0-9.]+ (B|KiB|MiB|GiB) +[0-9.]+ (B|KiB|MiB|GiB)/s +ring +[0-9]+% of [0-9.]+ (KiB|MiB|GiB) +waits w [0-9]+ r [0-9]+ +0:[0-9]{2}:[0-9]{2}$'
FINAL='^ *[0-9.]+ (B|KiB|MiB|GiB) +[0-9.]+ (B|KiB|MiB|GiB)/s avg ring +[0-9]+% of [0-9.]+ (KiB|MiB|GiB) +waits w [0-9]+ r [0-9]+ +0:[0-9]{2}:[0-9]{2}$'

# buffer with a consumer that pauses: the line shows the ring full and the
# producer waiting, and it is one line, rewritten (no second line appears).
run "head -c 64M /dev/zero | $SHMPIPE buffer --size 8M | { sleep $((3 * SLOW)); cat >/dev/null; }"
sleep $((1 * SLOW)).5
screen >"$TMP/mid"
grep -Eq "$LINE" "$TMP/mid" || fail "no progress line on the terminal: $(cat "$TMP/mid")"
grep -Eq 'ring +100% of 8\.00 MiB +waits w [1-9]' "$TMP/mid" ||
	fail "the line does not show a full ring and a waiting producer: $(cat "$TMP/mid")"
[ "$(grep -Ec 'ring +[0-9]+%' "$TMP/mid")" = 1 ] || fail "more than one line: $(cat "$TMP/mid")"
sleep 1
screen >"$TMP/mid2"
[ "$(grep -Ec 'ring +[0-9]+%' "$TMP/mid2")" = 1 ] || fail "the line was not rewritten in place: $(cat "$TMP/mid2")"
grep -Eq "0:00:0[2-9]" "$TMP/mid2" || fail "the elapsed time does not advance: $(cat "$TMP/mid2")"
wait_for 20 finished || fail "buffer did not finish: $(screen)"
screen >"$TMP/end"
grep -q "^END$RUNS-0\$" "$TMP/end" || fail "buffer failed: $(cat "$TMP/end")"
grep -Eq "$FINAL" "$TMP/end" || fail "no final line: $(cat "$TMP/end")"
grep -Eq '^ *64\.0 MiB ' "$TMP/end" || fail "the final line does not count 64 MiB: $(cat "$TMP/end")"
echo "captured: $(grep -E "$LINE" "$TMP/mid")"

# write on the terminal, its reader elsewhere and late: the line shows the
# writer stalled on a full ring, then the whole 32 MiB.
N=$(name tty)
run "head -c 32M /dev/zero | $SHMPIPE write --size 8M $N"
wait_for 10 exists "$N" || fail "no pipe"
sleep 1
screen >"$TMP/mid"
grep -Eq '^ *8\.00 MiB .* ring +100% of 8\.00 MiB +waits w 1 r 0 ' "$TMP/mid" ||
	fail "write: no line of a stalled writer: $(cat "$TMP/mid")"
"$SHMPIPE" read "$N" >/dev/null 2>"$TMP/err" || fail "read: $(cat "$TMP/err")"
[ ! -s "$TMP/err" ] || fail "read showed progress off a terminal: $(cat "$TMP/err")"
wait_for 10 finished || fail "write did not finish: $(screen)"
screen >"$TMP/end"
grep -Eq '^ *32\.0 MiB .* avg ring .* 0:00:0[0-9]$' "$TMP/end" || fail "write: final line: $(cat "$TMP/end")"
grep -q "^END$RUNS-0\$" "$TMP/end" || fail "write failed: $(cat "$TMP/end")"

# read on the terminal, of a stream that waited in the ring.
head -c 100000 /dev/zero | "$SHMPIPE" write "$N" 2>"$TMP/err" || fail "write: $(cat "$TMP/err")"
run "$SHMPIPE read $N >/dev/null"
wait_for 10 finished || fail "read did not finish: $(screen)"
screen >"$TMP/end"
grep -Eq '^ *97\.7 KiB .* avg ring +0% of 1\.00 MiB ' "$TMP/end" || fail "read: final line: $(cat "$TMP/end")"

# --quiet on the terminal: nothing but the command's own output.
run "head -c 1M /dev/zero | $SHMPIPE buffer --quiet | wc -c"
wait_for 10 finished || fail "buffer --quiet did not finish: $(screen)"
# The pane may still be drawing the prompt when the marker shows: let it settle.
quiet_ok() {
	[ "$(screen | grep -v '^\$$')" = "$(printf '1048576\nEND%d-0' $RUNS)" ]
}
wait_for 2 quiet_ok || fail "buffer --quiet showed: $(screen)"

# Typed input: one ^D at the start of a line ends it, as for cat.
run "$SHMPIPE write --quiet $N"
wait_for 10 exists "$N" || fail "no pipe"
tm send-keys -t t "hello pipe" Enter
sleep 0.3
tm send-keys -t t C-d
wait_for 10 finished || fail "write from a terminal did not end at ^D: $(screen)"
[ "$("$SHMPIPE" read "$N")" = "hello pipe" ] || fail "typed input did not come through"

# stat --watch on the terminal redraws in place, like top: one block on the
# screen however many refreshes, and it ends when the pipe goes away.
head -c 1000 /dev/zero | "$SHMPIPE" write "$N" 2>"$TMP/err" || fail "write: $(cat "$TMP/err")"
run "$SHMPIPE stat --watch --interval 200ms $N"
sleep $((1 * SLOW)).2
screen >"$TMP/watch"
[ "$(grep -c '^pipe ' "$TMP/watch")" = 1 ] || fail "stat --watch did not redraw in place: $(cat "$TMP/watch")"
grep -Eq "^written +1000 B \(1000 bytes\) in 1 writes$" "$TMP/watch" || fail "stat --watch: $(cat "$TMP/watch")"
"$SHMPIPE" rm "$N" || fail "rm"
wait_for 10 finished || fail "stat --watch did not end with its pipe: $(screen)"
screen | grep -q "^$N: gone$" || fail "stat --watch: no last word: $(screen)"

# Off a terminal: nothing by default; whole clean lines with --progress.
head -c 1M /dev/zero | "$SHMPIPE" buffer 2>"$TMP/err" >/dev/null || fail "buffer"
[ ! -s "$TMP/err" ] || fail "progress off a terminal without --progress: $(cat "$TMP/err")"
head -c 64M /dev/zero | "$SHMPIPE" buffer --progress --size 8M 2>"$TMP/err" |
	{ sleep 1.5; cat >/dev/null; } || fail "buffer --progress"
! grep -q $'[\r\e]' "$TMP/err" || fail "control characters off a terminal: $(od -c "$TMP/err" | head)"
grep -Eq "$LINE" "$TMP/err" || fail "no progress line with --progress: $(cat "$TMP/err")"
[ "$(tail -n 1 "$TMP/err" | grep -Ec "$FINAL")" = 1 ] || fail "no final line: $(cat "$TMP/err")"
expect_clean
exit 0
