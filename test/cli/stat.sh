# SPDX-License-Identifier: MIT
# Description: stat, ls and rm on a transfer that runs. The writer fills the
# ring and sleeps while the reader's consumer is paused: stat --json must
# show both pids, the writer asleep, the queue full, the six counters
# consistent; the plain form the same in words; ls lists the pipe. Then the
# consumer goes on and a second stat sees a rate; stat --watch on a file
# prints whole blocks and ends when the reader removes the name. A writer
# killed before its reader came shows as dead in ls, and rm removes it.
source "$(dirname "$0")/lib.sh"

N=$(name run)
mkfifo "$TMP/go"
# The writer: 64 MiB into a 1 MiB ring.
gen 64 >"$TMP/src"
"$SHMPIPE" write --quiet "$N" "$TMP/src" &
W=$!
wait_for 10 exists "$N" || fail "no pipe"
# The reader's consumer waits for a word on the fifo before reading.
{ echo $BASHPID >"$TMP/rpid"; exec "$SHMPIPE" read --quiet "$N"; } |
	{ read -r _ <"$TMP/go"; cat >"$TMP/dst"; } &
C=$!
wait_for 10 test -s "$TMP/rpid" || fail "no reader pid"
R=$(cat "$TMP/rpid")

# Both ends taken, the writer asleep on a full ring (the reader is blocked
# writing into its paused consumer, so it is not asleep in the ring).
asleep() {
	"$SHMPIPE" stat --json --interval 100ms "$N" >"$TMP/json" &&
		grep -q '"writer":{"state":"open","pid":'"$W"',"alive":true,"asleep":true' "$TMP/json" &&
		grep -q '"reader":{"state":"open","pid":'"$R"',"alive":true,"asleep":false' "$TMP/json"
}
wait_for 10 asleep || fail "stat --json does not show the writer asleep: $(cat "$TMP/json")"
j=$(cat "$TMP/json")
field() {
	echo "$j" | sed -nE 's/.*"'"$1"'":([0-9]+).*/\1/p'
}
[ "$(echo "$j" | wc -l)" = 1 ] || fail "stat --json is not one line: $j"
[ "$(field capacity)" = 1048576 ] || fail "capacity: $j"
[ "$(field queue_percent)" -ge 90 ] || fail "the ring is not full: $j"
wi=$(field write_index) ri=$(field read_index)
[ $((wi - ri)) = "$(field queue_bytes)" ] || fail "queue_bytes: $j"
[ $((wi - ri)) -le 1048576 ] || fail "more than the capacity queued: $j"
[ "$(field producer_waits)" -ge 1 ] || fail "producer_waits: $j"
[ "$(field produced)" -ge 1 ] && [ -n "$(field consumed)" ] || fail "op counters: $j"
[ -n "$(field consumer_waits)" ] && [ -n "$(field rate_bytes_per_s)" ] || fail "fields: $j"
echo "$j" | grep -q '"name":"'"$N"'","records":false,"reopen":false' || fail "name, records: $j"

"$SHMPIPE" stat "$N" >"$TMP/plain" || fail "stat"
grep -Eq "^pipe +$N \(stream\)$" "$TMP/plain" || fail "plain: pipe: $(cat "$TMP/plain")"
grep -Eq "^capacity +1.00 MiB \(1048576 bytes\)$" "$TMP/plain" || fail "plain: capacity"
grep -Eq "^queue +.*, (9[0-9]|100)% full$" "$TMP/plain" || fail "plain: queue: $(cat "$TMP/plain")"
grep -Eq "^writer +pid $W, asleep$" "$TMP/plain" || fail "plain: writer: $(cat "$TMP/plain")"
grep -Eq "^reader +pid $R, running$" "$TMP/plain" || fail "plain: reader: $(cat "$TMP/plain")"
for k in written read rate waits; do
	grep -Eq "^$k " "$TMP/plain" || fail "plain: no $k line: $(cat "$TMP/plain")"
done
"$SHMPIPE" ls >"$TMP/ls" || fail "ls"
grep -Eq "^$N +1.00 MiB .* $W asleep +$R running" "$TMP/ls" || fail "ls: $(cat "$TMP/ls")"
"$SHMPIPE" ls --json | grep -qF '"name":"'"$N"'"' || fail "ls --json"

# A pipe of write --reopen says so, in words and in JSON.
NR=$(name reopen)
echo x | "$SHMPIPE" write --quiet --reopen "$NR" || fail "write --reopen"
"$SHMPIPE" stat "$NR" | grep -Eq "^pipe +$NR \(stream, an end left by a death is taken again\)$" ||
	fail "stat of a --reopen pipe: $("$SHMPIPE" stat "$NR")"
"$SHMPIPE" stat --json "$NR" | grep -q '"records":false,"reopen":true' ||
	fail "stat --json of a --reopen pipe: $("$SHMPIPE" stat --json "$NR")"
"$SHMPIPE" rm "$NR" || fail "rm $NR"

# stat --watch on a file: blocks of lines, no control characters, and it
# ends by itself once the reader is done and removes the name.
"$SHMPIPE" stat --watch --interval 200ms "$N" >"$TMP/watch" 2>&1 &
S=$!
sleep 0.5
echo go >"$TMP/go"
# While the data flows, a stat sees a rate (the consumer cats at full speed,
# but the sample may fall after the end: then the name is gone).
wait $C || fail "the reader's pipeline failed"
wait $W || fail "write exited $?"
cmp "$TMP/src" "$TMP/dst" || fail "the copy differs"
wait $S || fail "stat --watch exited $?: $(cat "$TMP/watch")"
grep -q "$N: gone" "$TMP/watch" || fail "stat --watch did not see the end: $(cat "$TMP/watch")"
[ "$(grep -c '^pipe ' "$TMP/watch")" -ge 2 ] || fail "stat --watch: fewer than 2 blocks"
! grep -q $'\e' "$TMP/watch" || fail "stat --watch wrote escapes into a file"
expect_clean

# A rate while data flows: a consumer that takes 64 KiB every 10 ms.
N=$(name rate)
"$SHMPIPE" write --quiet "$N" </dev/zero 2>/dev/null &
W=$!
wait_for 10 exists "$N" || fail "no pipe"
"$SHMPIPE" read --quiet "$N" 2>/dev/null | while [ "$(head -c 65536 | wc -c)" -gt 0 ]; do
	sleep 0.01
done &
C=$!
reading() {
	"$SHMPIPE" stat --json --interval 100ms "$N" | grep -q '"read_index":[1-9]'
}
wait_for 10 reading || fail "the reader does not read"
"$SHMPIPE" stat --json --interval 1s "$N" >"$TMP/json" 2>&1
j=$(cat "$TMP/json")
[ "$(field rate_bytes_per_s)" -gt 0 ] 2>/dev/null || fail "no rate while data flows: $j"
kill $W $C 2>/dev/null
wait
"$SHMPIPE" rm --force "$N"

# A writer killed before any reader: ls shows it dead; rm removes it.
N=$(name dead)
"$SHMPIPE" write --quiet "$N" </dev/zero &
W=$!
wait_for 10 exists "$N" || fail "no pipe"
sleep 0.2
kill -9 $W
wait $W 2>/dev/null
"$SHMPIPE" ls | grep -Eq "^$N .* $W dead +absent" || fail "ls: not dead: $("$SHMPIPE" ls)"
"$SHMPIPE" stat "$N" | grep -q "dead: it exited without closing" || fail "stat: not dead"
expect_status 0 "$SHMPIPE" rm "$N"
expect_clean
exit 0
