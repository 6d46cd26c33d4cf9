# SPDX-License-Identifier: MIT
# Description: write --readers N, a pipe that N readers read at once. Three
# `shmpipe read` of one `write --readers 3` each get the whole stream (the
# writer waits for all of them first, saying so with --progress); stat and
# ls show each reader's place, in words and in JSON, while a slow reader
# holds the writer back; a fourth reader is refused with exit 2; a reader
# killed while the writer waits shows as dead and its place is taken again;
# the writer fails with one line when every reader is gone, or when the
# readers do not come within --timeout, and leaves no name. Bad --readers
# values are usage errors, and --readers 1 is the pipe of old. With --share
# each record goes to one of the readers: together they get every line once.
source "$(dirname "$0")/lib.sh"

gen 4 >"$TMP/src"
# A bound on every wait of the writers below: a reader refused or lost
# makes the test fail, not hang.
T=$((30 * SLOW))s

# json_check FILE PYTHON-EXPRESSIONS...: each expression, on the parsed JSON
# as j, must be true. Without python3, only that the file looks like one
# JSON object (the greps elsewhere check the fields that matter most).
json_check() {
	local file=$1
	shift
	if command -v python3 >/dev/null; then
		python3 - "$file" "$@" <<'EOF' || fail "JSON check failed on $(cat "$file")"
import json, sys
with open(sys.argv[1]) as f:
    text = f.read()
j = json.loads(text)
for e in sys.argv[2:]:
    if not eval(e):
        sys.exit("false: " + e)
EOF
	else
		grep -q '^{.*}$' "$file" || fail "not a JSON object: $(cat "$file")"
	fi
}

# places_taken N K: stat --json says the pipe has K readers in a place.
places_taken() {
	"$SHMPIPE" stat --json --interval 50ms "$1" >"$TMP/pj" &&
		[ "$(grep -o '"status":"\(running\|asleep\)","read_index"' "$TMP/pj" | wc -l)" = "$2" ]
}

# ---- three readers, each gets every byte -------------------------------
N=$(name three)
"$SHMPIPE" write --readers 3 --timeout $T --progress "$N" "$TMP/src" 2>"$TMP/werr" &
W=$!
wait_for 10 exists "$N" || fail "write --readers 3 did not create $N"
"$SHMPIPE" read --quiet "$N" "$TMP/dst1" 2>"$TMP/rerr1" &
R1=$!
wait_for 10 places_taken "$N" 1 ||
	fail "the first reader does not show: $(cat "$TMP/pj"); reader: $(kill -0 $R1 2>&1 && cat /proc/$R1/wchan) $(cat "$TMP/rerr1")"
# Nothing is written before all three came: a later reader would miss it.
json_check "$TMP/pj" 'j["readers"] == 3' 'j["write_index"] == 0'
grep -q '"write_index":0,' "$TMP/pj" || fail "the writer did not wait for its readers"
"$SHMPIPE" read --quiet "$N" "$TMP/dst2" 2>"$TMP/rerr2" &
R2=$!
"$SHMPIPE" read --quiet "$N" "$TMP/dst3" 2>"$TMP/rerr3" &
R3=$!
for i in 1 2 3; do
	eval "r=\$R$i"
	wait "$r" || fail "reader $i exited $?: $(cat "$TMP/rerr$i")"
	cmp "$TMP/src" "$TMP/dst$i" || fail "reader $i did not get the whole stream"
	[ ! -s "$TMP/rerr$i" ] || fail "reader $i said: $(cat "$TMP/rerr$i")"
done
wait $W || fail "write --readers 3 exited $?: $(cat "$TMP/werr")"
# --progress, not on a terminal: whole lines, the wait first.
grep -qx "waiting for readers: 0 of 3" "$TMP/werr" || fail "no wait message: $(cat "$TMP/werr")"
grep -qx "waiting for readers: 1 of 3" "$TMP/werr" || fail "no count: $(cat "$TMP/werr")"
! grep -q "3 of 3" "$TMP/werr" || fail "said it waited for readers that came"
grep -q ' avg ' "$TMP/werr" || fail "no final progress line: $(cat "$TMP/werr")"
! grep -q $'\e' "$TMP/werr" || fail "escapes in a progress log"
expect_clean

# ---- stat, ls and a fourth reader while a slow reader holds the writer --
N=$(name slow)
mkfifo "$TMP/fifo"
exec 4<>"$TMP/fifo" # nobody reads it yet: reader 0 blocks writing its output
"$SHMPIPE" write --readers 3 --size 64K --timeout $T --quiet "$N" "$TMP/src" 2>"$TMP/werr" &
W=$!
wait_for 10 exists "$N" || fail "no pipe"
"$SHMPIPE" read --quiet "$N" >"$TMP/fifo" &
R0=$!
wait_for 10 places_taken "$N" 1 || fail "the slow reader does not show"
"$SHMPIPE" read --quiet "$N" "$TMP/dst1" &
R1=$!
"$SHMPIPE" read --quiet "$N" "$TMP/dst2" &
R2=$!
# The writer asleep on a ring the slow reader keeps full; the two others
# asleep, caught up with it; the slow one not asleep (blocked in write(2)).
held() {
	"$SHMPIPE" stat "$N" >"$TMP/plain" &&
		grep -Eq "^writer +pid $W, asleep$" "$TMP/plain" &&
		grep -Eq "^reader [0-2] +pid $R0, running, " "$TMP/plain" &&
		grep -Eq "^reader [0-2] +pid $R1, asleep, " "$TMP/plain" &&
		grep -Eq "^reader [0-2] +pid $R2, asleep, " "$TMP/plain"
}
wait_for 10 held || fail "stat does not show the slow reader holding the writer: $(cat "$TMP/plain")"
grep -Eq "^readers +3 places, 3 taken$" "$TMP/plain" || fail "plain: readers: $(cat "$TMP/plain")"
[ "$(grep -c '^reader [0-9]' "$TMP/plain")" = 3 ] || fail "plain: not 3 places: $(cat "$TMP/plain")"
grep -Eq "^reader [0-2] +pid [0-9]+, (running|asleep), at [0-9.]+ [KMG]?i?B \([0-9]+ bytes\) in [0-9]+ reads, waits [0-9]+$" \
	"$TMP/plain" || fail "plain: a place's line: $(cat "$TMP/plain")"
grep -Eq "^read +.* by the slowest reader in [0-9]+ reads$" "$TMP/plain" ||
	fail "plain: read: $(cat "$TMP/plain")"
grep -Eq "^queue +64.0 KiB \(65536 bytes\), 100% full$" "$TMP/plain" ||
	fail "plain: queue: $(cat "$TMP/plain")"
! grep -Eq "^reader +(pid|not)" "$TMP/plain" || fail "plain: a one-reader line: $(cat "$TMP/plain")"
# The slow reader is the one the ring is counted from.
slow_at=$(sed -nE "s/^reader [0-2] +pid $R0, running, at .* \(([0-9]+) bytes\).*/\1/p" "$TMP/plain")
[ -n "$slow_at" ] && grep -Eq "^read +.* \($slow_at bytes\) by the slowest reader" "$TMP/plain" ||
	fail "plain: the slowest reader is not the slow one: $(cat "$TMP/plain")"

"$SHMPIPE" stat --json "$N" >"$TMP/json" || fail "stat --json"
[ "$(wc -l <"$TMP/json")" = 1 ] || fail "stat --json is not one line: $(cat "$TMP/json")"
json_check "$TMP/json" \
	'j["readers"] == 3 and len(j["reader_places"]) == 3' \
	'all(k in j for k in ("name", "records", "capacity", "write_index", "read_index", "produced", "consumed", "producer_waits", "consumer_waits", "queue_bytes", "queue_percent", "rate_bytes_per_s", "writer", "reader"))' \
	'j["writer"]["pid"] == '"$W"' and j["writer"]["status"] == "asleep"' \
	'j["reader"]["state"] == "open"' \
	'[p["place"] for p in j["reader_places"]] == [0, 1, 2]' \
	'all(set(p) == {"place", "state", "pid", "alive", "asleep", "status", "read_index", "consumed", "consumer_waits"} for p in j["reader_places"])' \
	'sorted(p["pid"] for p in j["reader_places"]) == sorted(['"$R0, $R1, $R2"'])' \
	'all(p["state"] == "open" and p["alive"] for p in j["reader_places"])' \
	'[p["status"] for p in j["reader_places"] if p["pid"] == '"$R0"'] == ["running"]' \
	'[p["read_index"] for p in j["reader_places"] if p["pid"] == '"$R0"'] == [j["read_index"]]' \
	'all(p["read_index"] == j["write_index"] for p in j["reader_places"] if p["pid"] != '"$R0"')' \
	'j["write_index"] - j["read_index"] == 65536 == j["queue_bytes"]' \
	'all(p["consumed"] >= 1 for p in j["reader_places"])'
"$SHMPIPE" ls >"$TMP/ls" || fail "ls"
grep -Eq "^$N +64.0 KiB +64.0 KiB +100%  $W asleep +3 of 3 readers$" "$TMP/ls" ||
	fail "ls: $(cat "$TMP/ls")"
"$SHMPIPE" ls --json >"$TMP/lsjson" || fail "ls --json"
json_check "$TMP/lsjson" \
	'[len(p["reader_places"]) for p in j if p["name"] == "'"$N"'"] == [3]' \
	'[p["readers"] for p in j if p["name"] == "'"$N"'"] == [3]'

# A fourth reader: refused, exit 2, no output file, nothing disturbed.
"$SHMPIPE" read "$N" "$TMP/dst4" >"$TMP/out" 2>"$TMP/err"
st=$?
[ "$st" = 2 ] || fail "a fourth reader exited $st, want 2: $(cat "$TMP/err")"
expect_err "^shmpipe: read: $N: every reader's place is taken \(3 readers\)$"
expect_err '^usage: shmpipe read '
[ ! -e "$TMP/dst4" ] && [ ! -s "$TMP/out" ] || fail "a refused reader made output"
held || fail "a refused reader disturbed the pipe: $(cat "$TMP/plain")"

# The slow reader's consumer comes: everyone gets everything.
cat "$TMP/fifo" >"$TMP/dst0" 4>&- &
C=$!
exec 4>&- # now only reader 0 holds the write side: cat ends with it
for r in $R0 $R1 $R2; do
	wait $r || fail "reader $r exited $?"
done
wait $C
wait $W || fail "write exited $?: $(cat "$TMP/werr")"
for i in 0 1 2; do
	cmp "$TMP/src" "$TMP/dst$i" || fail "slow run: reader $i did not get the whole stream"
done
expect_clean

# ---- a reader killed while the writer waits; its place is taken again ---
N=$(name dead)
"$SHMPIPE" write --readers 2 --timeout $T --quiet "$N" "$TMP/src" 2>"$TMP/werr" &
W=$!
wait_for 10 exists "$N" || fail "no pipe"
"$SHMPIPE" read --quiet "$N" >/dev/null &
D=$!
wait_for 10 places_taken "$N" 1 || fail "the reader does not show"
kill -9 $D
wait $D 2>/dev/null
dead() {
	"$SHMPIPE" stat "$N" >"$TMP/plain" &&
		grep -Eq "^reader 0 +pid $D, dead: it exited without closing, at 0 B \(0 bytes\)" "$TMP/plain"
}
wait_for 10 dead || fail "stat does not show the killed reader dead: $(cat "$TMP/plain")"
grep -Eq "^readers +2 places, none taken$" "$TMP/plain" || fail "plain: $(cat "$TMP/plain")"
"$SHMPIPE" stat --json "$N" >"$TMP/json"
json_check "$TMP/json" 'j["reader_places"][0]["status"] == "dead"' \
	'j["reader_places"][0]["pid"] == '"$D" 'j["reader_places"][1]["state"] == "absent"' \
	'j["write_index"] == 0'
kill -0 $W 2>/dev/null || fail "the writer gave up when a reader died before the others came"
"$SHMPIPE" read --quiet "$N" "$TMP/dst1" &
R1=$!
"$SHMPIPE" read --quiet "$N" "$TMP/dst2" &
R2=$!
wait $R1 || fail "reader 1 exited $?"
wait $R2 || fail "reader 2 exited $?"
wait $W || fail "write exited $?: $(cat "$TMP/werr")"
cmp "$TMP/src" "$TMP/dst1" && cmp "$TMP/src" "$TMP/dst2" || fail "after a death: a copy differs"
expect_clean

# ---- every reader gone: the writer fails with one line -----------------
N=$(name gone)
exec 4<>"$TMP/fifo"
"$SHMPIPE" write --readers 2 --timeout $T --quiet "$N" </dev/zero 2>"$TMP/werr" &
W=$!
wait_for 10 exists "$N" || fail "no pipe"
"$SHMPIPE" read --quiet "$N" >"$TMP/fifo" &
A=$!
"$SHMPIPE" read --quiet "$N" >"$TMP/fifo" &
B=$!
wait_for 10 places_taken "$N" 2 || fail "the readers do not show"
kill -9 $A
wait $A 2>/dev/null
sleep 0.3
kill -0 $W 2>/dev/null || fail "the writer stopped while a reader was left: $(cat "$TMP/werr")"
kill -9 $B
wait $B 2>/dev/null
wait $W
ws=$?
[ "$ws" = 1 ] || fail "write exited $ws when every reader was gone, want 1"
# One message (a sanitizer may add its report of the handle left open).
[ "$(grep -c '^shmpipe: ' "$TMP/werr")" = 1 ] &&
	grep -qx "shmpipe: write $N: every reader closed the pipe or died" "$TMP/werr" ||
	fail "message: $(cat "$TMP/werr")"
exec 4>&-
expect_clean

# ---- readers that do not come in time ----------------------------------
N=$(name tmo)
expect_status 1 "$SHMPIPE" write --readers 2 --timeout 300ms "$N" "$TMP/src"
expect_err "^shmpipe: write $N: timed out waiting for readers: 0 of 2 came$"
[ "$(grep -c '^shmpipe: ' "$TMP/err")" = 1 ] || fail "not one message: $(cat "$TMP/err")"
expect_clean # the writer removed its name: no reader did
# One of two comes: it gets a truncated stream, not an empty one.
t0=$(date +%s%N)
"$SHMPIPE" write --readers 2 --timeout $((1000 * SLOW))ms --quiet "$N" "$TMP/src" 2>"$TMP/werr" &
W=$!
wait_for 10 exists "$N" || fail "no pipe"
"$SHMPIPE" read "$N" >"$TMP/dst1" 2>"$TMP/rerr"
rs=$?
wait $W
ws=$?
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ws" = 1 ] || fail "write with 1 of 2 readers exited $ws, want 1"
grep -qx "shmpipe: write $N: timed out waiting for readers: 1 of 2 came" "$TMP/werr" ||
	fail "message: $(cat "$TMP/werr")"
[ "$ms" -ge 900 ] || fail "gave up after $ms ms, before its timeout"
[ "$rs" = 1 ] && grep -q "output truncated" "$TMP/rerr" ||
	fail "the reader that came exited $rs: $(cat "$TMP/rerr")"
[ ! -s "$TMP/dst1" ] || fail "the reader got data the writer never meant to send"
expect_clean
# The most readers a pipe takes is a valid number.
expect_status 1 "$SHMPIPE" write --readers 64 --timeout 100ms "$N" "$TMP/src"
expect_err "0 of 64 came"
expect_clean

# ---- bad usage -----------------------------------------------------------
N=$(name bad)
bad() {
	local pattern=$1
	shift
	"$SHMPIPE" "$@" >"$TMP/out" 2>"$TMP/err"
	local got=$?
	[ "$got" = 2 ] || fail "shmpipe $* exited $got, want 2; stderr: $(cat "$TMP/err")"
	expect_err "$pattern"
	expect_err '^usage: shmpipe '
	[ ! -s "$TMP/out" ] || fail "shmpipe $* wrote to standard output"
	! exists "$N" || fail "shmpipe $* left $N behind"
}
for n in 0 65 100 -1 +2 abc 2x '' ' 3'; do
	bad "bad number of readers" write --readers "$n" "$N" "$TMP/src"
	grep -qF -- "bad number of readers '$n' (want 1 to 64)" "$TMP/err" || fail "$(cat "$TMP/err")"
	bad "bad number of readers" write -n "$n" "$N" "$TMP/src"
	grep -qF -- "bad number of readers '$n'" "$TMP/err" || fail "$(cat "$TMP/err")"
done
bad "option '--readers' needs a value" write "$N" --readers
bad "--open takes the pipe as it was created: .*--readers" write --readers 2 --open "$N"
bad "--open takes the pipe as it was created: .*--readers" write --open -n 3 "$N"
bad "unknown option '--readers'" read --readers 2 "$N"
bad "unknown option '--readers'" stat --readers 2 "$N"
"$SHMPIPE" write --help | grep -q -- '--readers N' || fail "write --help does not mention --readers"
expect_clean

# ---- --share: each record to one of the readers ---------------------------
N=$(name share)
# One line per write(2), slowly enough that each read(2) of the writer's
# input takes whole lines: then every line is in one record, and the lines
# the three readers got together are the input's, each once.
python3 -c '
import os, sys, time
for i in range(3000):
    os.write(1, b"line %06d\n" % i)
    if i % 100 == 0:
        time.sleep(0.002)
' | "$SHMPIPE" write --readers 3 --share --timeout $T --quiet "$N" 2>"$TMP/werr" &
W=$!
wait_for 10 exists "$N" || fail "write --share did not create $N"
for k in 1 2 3; do
	"$SHMPIPE" read --quiet "$N" "$TMP/share$k" 2>"$TMP/rerr$k" &
	eval "S$k=\$!"
done
wait $W || fail "write --share: $(cat "$TMP/werr")"
for k in 1 2 3; do
	eval "wait \$S$k" || fail "read $k of a --share pipe: $(cat "$TMP/rerr$k")"
done
sort "$TMP/share1" "$TMP/share2" "$TMP/share3" >"$TMP/shared"
python3 -c 'print("".join("line %06d\n" % i for i in range(3000)), end="")' >"$TMP/lines"
cmp "$TMP/lines" "$TMP/shared" || fail "--share: the readers' lines together are not the input's, once each"
[ "$(cat "$TMP/share1" "$TMP/share2" "$TMP/share3" | wc -l)" = 3000 ] || fail "--share: a line went to two readers"
bad "--share deals records out among readers: it needs --readers 2" write --share "$N"
bad "--share deals records out among readers: it needs --readers 2" write -n 1 --share "$N"
bad "--share needs a ring of at least 24 bytes" write -n 2 --share --size 16 "$N"
expect_clean

# ---- --readers 1: the pipe of old ----------------------------------------
N=$(name one)
head -c 100000 "$TMP/src" >"$TMP/small"
# The data waits in the ring for a reader that has not come.
expect_status 0 "$SHMPIPE" write --readers 1 "$N" "$TMP/small"
"$SHMPIPE" stat "$N" >"$TMP/plain" || fail "stat"
grep -Eq "^reader +not taken yet$" "$TMP/plain" && ! grep -q '^readers' "$TMP/plain" ||
	fail "--readers 1: stat: $(cat "$TMP/plain")"
"$SHMPIPE" stat --json "$N" >"$TMP/json" || fail "stat --json"
json_check "$TMP/json" 'j["readers"] == 1' '"reader_places" not in j' \
	'j["reader"]["status"] == "absent"'
"$SHMPIPE" read "$N" >"$TMP/dst1" || fail "read of a --readers 1 pipe"
cmp "$TMP/small" "$TMP/dst1" || fail "--readers 1: the copy differs"
expect_clean
exit 0
