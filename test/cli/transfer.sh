# SPDX-License-Identifier: MIT
# Description: write and read in two processes. SHMPIPE_STRESS_MB MiB
# (1 GiB by default) through a 1 MiB ring, every byte checked by checksum and
# length; then a reader that comes first (read --create, write --open), a
# writer that finishes before any reader comes (the data waits), FILE
# operands, record mode, and an empty stream. No name is left afterwards.
source "$(dirname "$0")/lib.sh"

MB=${SHMPIPE_STRESS_MB:-1024}

# The big one: writer and reader started together, checksums on both sides.
N=$(name big)
{ gen "$MB" | tee >(cksum >"$TMP/in.sum") | "$SHMPIPE" write --quiet "$N"; } 2>"$TMP/werr" &
W=$!
wait_for 10 exists "$N" || fail "the writer did not create $N"
"$SHMPIPE" read --quiet "$N" 2>"$TMP/rerr" | cksum >"$TMP/out.sum"
rs=${PIPESTATUS[0]}
wait $W
ws=$?
[ "$ws" = 0 ] || fail "write exited $ws: $(cat "$TMP/werr")"
[ "$rs" = 0 ] || fail "read exited $rs: $(cat "$TMP/rerr")"
wait_for 5 test -s "$TMP/in.sum" # the tee's checksum may finish last
[ "$(cat "$TMP/in.sum")" = "$(cat "$TMP/out.sum")" ] ||
	fail "checksums differ: in $(cat "$TMP/in.sum"), out $(cat "$TMP/out.sum")"
[ "$(cut -d' ' -f2 "$TMP/out.sum")" = $((MB << 20)) ] || fail "length: $(cat "$TMP/out.sum")"
[ ! -s "$TMP/werr" ] && [ ! -s "$TMP/rerr" ] || fail "messages: $(cat "$TMP/werr" "$TMP/rerr")"
expect_clean

# The reader first, with a small odd ring; FILE operands on both sides.
gen 8 >"$TMP/src"
N=$(name create)
"$SHMPIPE" read --create --size 12345 "$N" "$TMP/dst" 2>"$TMP/rerr" &
R=$!
wait_for 10 exists "$N" || fail "read --create did not create $N"
expect_status 0 "$SHMPIPE" write --open "$N" "$TMP/src"
wait $R || fail "read --create exited $?: $(cat "$TMP/rerr")"
cmp "$TMP/src" "$TMP/dst" || fail "read --create: the copy differs"
expect_clean

# A writer that is done before any reader comes: the data waits in the ring.
N=$(name early)
head -c 100000 "$TMP/src" >"$TMP/small"
expect_status 0 "$SHMPIPE" write "$N" <"$TMP/small"
exists "$N" || fail "a finished writer removed the name before a reader came"
"$SHMPIPE" read "$N" >"$TMP/dst" || fail "read of a finished writer's pipe"
cmp "$TMP/small" "$TMP/dst" || fail "the waiting data differs"
expect_clean

# An empty stream, and "-" for standard input and output.
N=$(name empty)
expect_status 0 "$SHMPIPE" write "$N" - </dev/null
"$SHMPIPE" read "$N" - >"$TMP/dst" || fail "read of an empty stream"
[ ! -s "$TMP/dst" ] || fail "an empty stream gave bytes"
expect_clean

# Record mode: each read(2) of the input (here a pipe fed in 1000-byte
# writes by dd) is one record; the output is the same bytes.
N=$(name rec)
"$SHMPIPE" read --create --records --size 64K "$N" "$TMP/dst" 2>"$TMP/rerr" &
R=$!
wait_for 10 exists "$N" || fail "read --create --records did not create $N"
"$SHMPIPE" stat --json "$N" | grep -q '"records":true' || fail "stat does not show record mode"
dd if="$TMP/src" bs=1000 status=none | "$SHMPIPE" write --open "$N" || fail "write --open (records)"
wait $R || fail "read --records exited $?: $(cat "$TMP/rerr")"
cmp "$TMP/src" "$TMP/dst" || fail "record mode: the copy differs"
expect_clean
exit 0
