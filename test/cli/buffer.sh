# SPDX-License-Identifier: MIT
# Description: shmpipe buffer in shell pipelines: a stream through it
# unchanged (checksum and length), with a fast and with a slow consumer; a
# ring that really fills (the producer runs ahead by the ring's size and no
# more); an empty input; and a consumer that stops reading early.
source "$(dirname "$0")/lib.sh"

MB=$(( ${SHMPIPE_STRESS_MB:-1024} / 4 ))

gen "$MB" | tee >(cksum >"$TMP/in.sum") | "$SHMPIPE" buffer --size 4M 2>"$TMP/err" | cksum >"$TMP/out.sum"
st=("${PIPESTATUS[@]}")
[ "${st[2]}" = 0 ] || fail "buffer exited ${st[2]}: $(cat "$TMP/err")"
[ ! -s "$TMP/err" ] || fail "buffer printed: $(cat "$TMP/err")"
wait_for 5 test -s "$TMP/in.sum" # the tee's checksum may finish last
[ "$(cat "$TMP/in.sum")" = "$(cat "$TMP/out.sum")" ] ||
	fail "checksums differ: in $(cat "$TMP/in.sum"), out $(cat "$TMP/out.sum")"
[ "$(cut -d' ' -f2 "$TMP/out.sum")" = $((MB << 20)) ] || fail "length: $(cat "$TMP/out.sum")"

# A consumer that sleeps first: the producer gets the ring's 8 MiB ahead
# (plus what the two kernel pipes hold), and then waits.
gen 64 >"$TMP/src"
{ cat "$TMP/src"; echo done >"$TMP/fed"; } | "$SHMPIPE" buffer --size 8M |
	{ sleep $((2 * SLOW)); cat; } >"$TMP/dst" &
P=$!
sleep 1
[ ! -e "$TMP/fed" ] || fail "the producer finished: the ring did not hold it back"
wait $P || fail "the slow pipeline failed"
cmp "$TMP/src" "$TMP/dst" || fail "slow consumer: the copy differs"

# Empty input: empty output, status 0.
[ -z "$("$SHMPIPE" buffer </dev/null)" ] || fail "empty input gave bytes"

# A consumer that stops early: buffer dies of SIGPIPE like any filter,
# and the producer is not left hanging.
gen 64 | "$SHMPIPE" buffer --size 1M | head -c 1000 >/dev/null
st=("${PIPESTATUS[@]}")
[ "${st[1]}" = 141 ] || [ "${st[1]}" = 1 ] || fail "buffer exited ${st[1]} after its reader left"
exit 0
