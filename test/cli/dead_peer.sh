# SPDX-License-Identifier: MIT
# Description: the ends of a transfer die or fail. kill -9 of the writer
# mid-stream: read copies every byte that was committed (a prefix of the
# input), says the output is truncated on one line, exits 1 within a
# second, and removes the name. kill -9 of the reader: write says so and
# exits 1, and removes the name. SIGINT and SIGTERM of a writer with no
# reader yet remove its name; SIGTERM of a writer in mid-stream makes its
# reader report truncation (an interrupted stream is not a complete one).
# --timeout: a reader with no writer, a writer with no reader, exit 1.
source "$(dirname "$0")/lib.sh"

gen 16 >"$TMP/src"

# kill -9 of the writer mid-stream: it has put 16 MiB in and waits for more
# input that does not come.
N=$(name wdie)
mkfifo "$TMP/in"
exec 3<>"$TMP/in" # held open: the writer's input never ends
"$SHMPIPE" write --quiet "$N" <"$TMP/in" &
W=$!
cat "$TMP/src" >"$TMP/in" &
wait_for 10 exists "$N" || fail "no pipe"
"$SHMPIPE" read --quiet "$N" >"$TMP/dst" 2>"$TMP/err" &
R=$!
copied() {
	[ "$(stat -c %s "$TMP/dst")" = "$(stat -c %s "$TMP/src")" ]
}
wait_for 10 copied ||
	fail "the transfer does not run: $(stat -c %s "$TMP/dst") of $(stat -c %s "$TMP/src") bytes; read: $(cat "$TMP/err"); $("$SHMPIPE" stat "$N" 2>&1 | tr '\n' ' ')"
W_PID=$("$SHMPIPE" stat --json "$N" | sed -nE 's/.*"writer":\{"state":"open","pid":([0-9]+).*/\1/p')
[ -n "$W_PID" ] || fail "no writer pid"
t0=$(date +%s%N)
kill -9 "$W_PID"
wait $R
rs=$?
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$rs" = 1 ] || fail "read exited $rs after the writer was killed, want 1: $(cat "$TMP/err")"
[ "$(wc -l <"$TMP/err")" = 1 ] || fail "not one line: $(cat "$TMP/err")"
grep -qx "shmpipe: read $N: writer died without closing; output truncated" "$TMP/err" ||
	fail "message: $(cat "$TMP/err")"
[ "$ms" -lt $((1000 * SLOW)) ] || fail "the reader took $ms ms to notice"
# Every byte the writer committed came out, and nothing else.
cmp "$TMP/src" "$TMP/dst" || fail "the output is not what the writer had written"
expect_clean
wait $W 2>/dev/null
exec 3>&-

# kill -9 of the reader: the writer (asleep on a full ring) fails with EPIPE.
N=$(name rdie)
"$SHMPIPE" write --quiet "$N" </dev/zero 2>"$TMP/err" &
W=$!
wait_for 10 exists "$N" || fail "no pipe"
mkfifo "$TMP/out"
exec 4<>"$TMP/out" # nobody reads: the reader blocks writing its output
"$SHMPIPE" read --quiet "$N" >"$TMP/out" &
wait_for 10 eval '"$SHMPIPE" stat --json "$N" | grep -q "\"reader\":{\"state\":\"open\""' ||
	fail "no reader"
R_PID=$("$SHMPIPE" stat --json "$N" | sed -nE 's/.*"reader":\{"state":"open","pid":([0-9]+).*/\1/p')
kill -9 "$R_PID"
wait $W
ws=$?
[ "$ws" = 1 ] || fail "write exited $ws after the reader was killed, want 1"
grep -qx "shmpipe: write $N: the reader closed the pipe or died" "$TMP/err" ||
	fail "message: $(cat "$TMP/err")"
expect_clean
exec 4>&-

# SIGINT and SIGTERM of a writer before any reader came: the name goes, and
# the writer dies of the signal as an interrupted program should.
for sig in INT TERM; do
	N=$(name sig$sig)
	# A full ring: the writer sleeps in the library, not in read(2).
	"$SHMPIPE" write --quiet --size 64K "$N" </dev/zero &
	W=$!
	wait_for 10 exists "$N" || fail "no pipe"
	sleep 0.2
	kill -s $sig $W
	wait $W
	ws=$?
	want=$((128 + $(kill -l $sig)))
	[ "$ws" = "$want" ] || fail "write exited $ws on SIG$sig, want $want"
	expect_clean
done

# SIGTERM of a writer in mid-stream: the reader must not take it for a
# complete stream.
N=$(name term)
"$SHMPIPE" write --quiet "$N" </dev/zero &
W=$!
wait_for 10 exists "$N" || fail "no pipe"
"$SHMPIPE" read --quiet "$N" 2>"$TMP/err" >/dev/null &
R=$!
sleep 0.3
kill -TERM $W
wait $R
rs=$?
[ "$rs" = 1 ] || fail "read exited $rs after its writer was interrupted, want 1"
grep -q "output truncated" "$TMP/err" || fail "message: $(cat "$TMP/err")"
wait $W 2>/dev/null
expect_clean

# Timeouts: a reader that waits for a writer, a writer that waits for room.
N=$(name tmo)
expect_status 1 "$SHMPIPE" read --create --timeout 300ms "$N"
expect_err "^shmpipe: read $N: timed out waiting for data$"
expect_clean
expect_status 1 "$SHMPIPE" write --size 64K --timeout 300ms "$N" </dev/zero
expect_err "^shmpipe: write $N: timed out: the ring stayed full$"
expect_clean
exit 0
