# SPDX-License-Identifier: MIT
# Description: shmpipe forward, the bridge between a pipe and NATS
# JetStream, against real nats-server processes on 127.0.0.1 (skipped
# without nats-server or python3, or in a shmpipe built without NATS
# support). Each transfer is `shmpipe write NAME1` -> `forward NAME1 URL`
# -> JetStream -> `forward URL NAME2` -> `shmpipe read NAME2`, every byte
# compared:
#   a. 20 MiB through one server: both forwards exit 0, the reader gets a
#      clean end, the stream has its default name and its durable consumer
#      (if still there) nothing unacknowledged, no name is left in /dev/shm;
#   b. record mode: records of 1 byte to 64 KiB (one datagram each over
#      SOCK_SEQPACKET sockets into `write --records` and out of `read`)
#      come out one by one with the same boundaries and bytes;
#   c. the near writer killed mid-stream: near forward exits 1, the far one
#      exits 1 and aborts its writer, so the far reader fails (output
#      truncated) after every byte that was sent, instead of a clean end;
#   k. 6 MiB in messages of 512 B through a window of 16, the far side
#      keeping up: the far forward reports how far it took after each
#      fetch, and the near forward, which listens, asks the servers for the
#      far side's backlog at most 20 times (without the reports, about
#      every 10 ms: 330 times here);
#   l. a server that requires TLS (a self-signed certificate made with
#      openssl): a forward that does not trust it exits 3 at once, saying
#      why; a missing or FIFO --tls-ca exits 2; with --tls-ca, by tls:// or
#      --tls, the transfer goes through;
#   q. a server in decentralised mode (an operator, an account, JWTs
#      signed with openssl): with --creds of a user of the account the
#      transfer goes through; a stranger, a forged seed, no credentials,
#      a user kept from the JetStream API or from the subject exit 5; a
#      missing, junk or FIFO --creds exits 2; a far forward stopped by TERM
#      leaves neither its pipe nor its state; a user kept from the far
#      side's reports still moves the data;
#   p. lines written 40 ms apart: each reaches the far reader within
#      100 ms (median), not in bursts as pull requests expire;
#   e. backpressure: a far reader stalled, then slow: the near writer is
#      held back (it waits in its ring, waits that rise while the reader is
#      slow), the data in flight stays bounded by the window and the rings,
#      and then all of it arrives;
#   g. usage errors exit 2 and create nothing, a missing stream without
#      --create exits 4, a consumer it cannot pull from (a push consumer,
#      one of another subject) 1, an unreachable server with --timeout 1s
#      exits 3, a refused password 5 at once;
#   f. no server at the start: the forwards wait without burning CPU (under
#      5% of a core) until it comes, then the transfer completes; the
#      server killed for 5 s mid-transfer and restarted on its store: the
#      same, and no byte is lost or repeated;
#   h. each forwarder killed (kill -9) at random moments and started again
#      (FORWARD_KILLS times, default 8): nothing lost, nothing twice;
#   i. the near forward killed and started again while the far reader is
#      stalled: the new one finds the far side's backlog full and adds
#      nothing to it (at most four windows unacknowledged), then all
#      of it arrives;
#   j. a message lost from the stream (a gap published by hand): the far
#      forward writes what comes before it, holds what comes after, and
#      says after 30 s, once, which position it waits for;
#   m. a message delivered to a far forward that then dies, unseen by the
#      next one (published by hand): the next one's cumulative
#      acknowledgement of a later message does not cover it, and it is
#      written once it comes again;
#   o. the first messages delivered to a far forward that dies having
#      taken none (published by hand): the next one does not take a later
#      message for the pipe's start, and writes all of it in order;
#   n. each pull request of the far forward sent three times more (as a
#      connection that comes back sends the requests it held): it takes
#      every delivery, asked for or not, in order, nothing lost or twice;
#   d. a 3-node cluster with --replicas 3: FORWARD_BYTES of records (up to
#      64 KiB each; default 200M, 1G is the full test) with the stream's
#      leader killed a third of the way through: the transfer completes,
#      every byte right.
# FORWARD_CASES="a d" runs some of the cases only. Figures (MB/s, CPU,
# waits) go to standard error.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/nats_lib.sh"
# The NATS protocol by hand: publishing, requests, listening (nats_proto.py).
NATS_PY=$(cd "$(dirname "$0")" && pwd)/nats_proto.py
# An operator, an account and users' credentials, made by hand (nats_creds.py).
NATS_CREDS_PY=$(cd "$(dirname "$0")" && pwd)/nats_creds.py
nats_need

CASES=${FORWARD_CASES:-a b c k l q p h e i j m o n g f d}
FORWARD_BYTES=${FORWARD_BYTES:-200M}
[[ $FORWARD_BYTES =~ ^([1-9][0-9]{0,5})([MG])$ ]] ||
	fail "FORWARD_BYTES=$FORWARD_BYTES: want a size in MiB or GiB, such as 200M or 1G"
D_MIB=${BASH_REMATCH[1]}
[ "${BASH_REMATCH[2]}" = G ] && D_MIB=$((D_MIB * 1024))
# A bound on each wait: a forward that hangs makes the test fail, not hang.
T=$((30 * SLOW))
HZ=$(getconf CLK_TCK)
MIB=1048576

# ugen MIB: MIB MiB of seeded random bytes (about 100 MiB/s), the same in
# each call, where any 512 bytes are found once: a piece lost, repeated or
# out of place in a copy shows where it came from.
cat >"$TMP/ugen.py" <<'EOF'
import random, sys
r = random.Random(1)
out = sys.stdout.buffer
for i in range(int(sys.argv[1])):
    out.write(r.randbytes(1 << 20))
EOF
ugen() {
	python3 "$TMP/ugen.py" "$1"
}

# ---- helpers ---------------------------------------------------------------

now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

figure() {
	echo "$TEST: $*" >&2
}

# mbps BYTES MS: MB/s (10^6 bytes).
mbps() {
	awk -v b="$1" -v ms="$2" 'BEGIN { printf "%.1f", (ms > 0 ? b / ms / 1000 : 0) }'
}

# fwd TAG ARGS...: shmpipe forward ARGS in the background. $! is a subshell
# whose one child is the forward and whose status is its status; the
# forward's stderr goes to $TMP/TAG.err and, when it ends, the CPU seconds
# it used (user + system) to $TMP/TAG.cpu.
fwd() {
	local tag=$1
	shift
	(
		"$SHMPIPE" forward "$@" 2>"$TMP/$tag.err"
		st=$?
		# Not in a pipeline: a forked times would count no children.
		times >"$TMP/$tag.times"
		awk 'NR == 2 {
			n = 0
			for (i = 1; i <= NF; i++) {
				split($i, p, "m")
				sub("s", "", p[2])
				n += p[1] * 60 + p[2]
			}
			print n
		}' "$TMP/$tag.times" >"$TMP/$tag.cpu"
		exit $st
	) &
}

# cpu_pct TAG MS: the CPU the forward TAG used, in % of MS of wall time.
cpu_pct() {
	awk -v ms="$2" '{ printf "%.0f", (ms > 0 ? $1 * 100000 / ms : 0) }' "$TMP/$1.cpu" 2>/dev/null || echo "?"
}

# forward_pid SUB: the forward that fwd started in the subshell SUB.
forward_pid() {
	local p i
	for ((i = 0; i < 50; i++)); do
		read -r p _ < <(cat /proc/"$1"/task/*/children 2>/dev/null)
		[ -n "$p" ] && echo "$p" && return 0
		sleep 0.1
	done
	return 1
}

# ticks PID: the CPU time PID used so far, in clock ticks.
ticks() {
	# After "pid (comm) " the 12th and 13th fields are utime and stime.
	sed -E 's/^.*\) //' /proc/"$1"/stat 2>/dev/null | awk '{ print $12 + $13 }'
}

gone() {
	! kill -0 "$1" 2>/dev/null
}

# await SECONDS PID: waits (at most SECONDS, stretched by SLOW) for the
# background process PID to end; its status is then in ST, or 124 if it
# still runs.
await() {
	if wait_for "$1" gone "$2"; then
		wait "$2"
		ST=$?
	else
		ST=124
	fi
}

# diag: what the case shows now, for a failure message: what its processes
# said, its pipes, its stream.
diag() {
	local f n
	for f in "$TMP/$CASE".*.err "$TMP/$CASE".*.out; do
		[ -s "$f" ] && printf '\n  %s: %s' "${f##*/}" "$(tail -n 5 "$f" | tr '\n' '|')"
	done
	for n in ${N1:-} ${N2:-}; do
		exists "$n" && printf '\n  stat %s: %s' "$n" "$("$SHMPIPE" stat "$n" 2>&1 | tr '\n' '|')"
	done
	[ -n "${STREAM:-}" ] &&
		printf '\n  stream %s (messages pending ack_pending): %s' "$STREAM" "$(nats_stream_info "$STREAM" 2>&1)"
	printf '\n  servers: %s' "$(for n in "${!NATS_PIDS[@]}"; do _nats_alive "$n" && echo -n "n$n up " || echo -n "n$n down "; done)"
}

# expect_exit WHAT WANT: checks ST, the status await left.
expect_exit() {
	[ "$ST" = "$2" ] || fail "$CASE: $1 exited $ST, want $2$( [ "$ST" = 124 ] && echo " (still running after ${T}s)")$(diag)"
}

# expect_forwards_done: the near forward and the far one ($NEAR, $FAR) exit 0.
expect_forwards_done() {
	await $T $NEAR
	expect_exit "the near forward" 0
	await $T $FAR
	expect_exit "the far forward" 0
}

# expect_done TAG: the near forward, the far one and the writer ($NEAR, $FAR,
# $W) exit 0, $TMP/TAG.dst is $TMP/TAG.src, and no name is left.
expect_done() {
	expect_forwards_done
	await $T $W
	expect_exit "write" 0
	same "$TMP/$1.src" "$TMP/$1.dst" || fail "$1: the copy differs: $(cat "$TMP/cmp")"
	expect_clean
}

# through TAG NEAR_URL FAR_URL: $TMP/TAG.src, written into N1, goes through
# a near forward (--create and the array NEAR_OPTS) to NEAR_URL and a far one
# (--create and FAR_OPTS) from FAR_URL into N2, and is read and compared
# whole (expect_done); W, NEAR, FAR and R are the caller's.
through() {
	local tag=$1
	"$SHMPIPE" write --quiet "$N1" "$TMP/$tag.src" 2>"$TMP/$tag.write.err" &
	W=$!
	wait_for 10 exists "$N1" || fail "$tag: write did not create $N1"
	fwd "$tag.near" --create "${NEAR_OPTS[@]}" "$N1" "$2"
	NEAR=$!
	fwd "$tag.far" --create "${FAR_OPTS[@]}" "$3" "$N2"
	FAR=$!
	wait_for $T exists "$N2" || fail "$tag: the far forward did not create $N2$(diag)"
	"$SHMPIPE" read --quiet "$N2" "$TMP/$tag.dst" 2>"$TMP/$tag.read.err" &
	R=$!
	await $T $R
	expect_exit "read $N2" 0
	expect_done "$tag"
}

# stat_field NAME KEY...: the values of stat --json's top-level KEYs.
stat_field() {
	local name=$1
	shift
	"$SHMPIPE" stat --json "$name" 2>/dev/null | python3 -c '
import json, sys
j = json.load(sys.stdin)
print(*(j[k] for k in sys.argv[1:]))' "$@" 2>/dev/null
}

# same SRC DST: cmp, and when they differ, where the copy's bytes at the
# first difference come from in SRC (a repeat, a skip), in $TMP/cmp.
same() {
	cmp "$1" "$2" >"$TMP/cmp" 2>&1 && return 0
	python3 - "$1" "$2" >>"$TMP/cmp" 2>&1 <<'EOF'
import sys
src, dst = (open(f, "rb").read() for f in sys.argv[1:3])

def common(p, k):  # the length of dst[p:] and src[k:] in common
    n = 0
    for step in (1 << 16, 1 << 12, 1):
        while dst[p + n:p + n + step] == src[k + n:k + n + step] and p + n + step <= len(dst) and k + n + step <= len(src):
            n += step
    return n

print("the copy has %d bytes, the input %d; the copy, piece by piece:" % (len(dst), len(src)))
p, shown = 0, 0
while p < len(dst) and shown < 12:
    k = p if dst[p:p + 512] == src[p:p + 512] else src.find(dst[p:p + 512])
    if k < 0:
        print("  from %d: bytes that are not in the input" % p)
        break
    n = common(p, k)
    if n == 0:
        print("  from %d: bytes that are not in the input" % p)
        break
    print("  %d to %d: the input's %d to %d%s" % (p, p + n, k, k + n, "" if k == p else " (out of place by %+d)" % (k - p)))
    shown += 1
    p += n
EOF
	return 1
}

# A single server up (cases a, b, c, e, g run on it).
need_single() {
	[ "$NATS_KIND" = single ] && _nats_alive 1 || nats_start_single
}

# rec.py feed|check SHMPIPE NAME SEED COUNT: feeds `write --records NAME`
# COUNT records of 1 byte to 64 KiB made from SEED, one datagram each over
# a SOCK_SEQPACKET socket (one read(2) each: one record each), or takes
# `read NAME`'s output the same way and checks that each datagram (each
# write(2) of a record) is the next record, whole, then the end.
cat >"$TMP/rec.py" <<'EOF'
import random, socket, subprocess, sys
mode, shmpipe, name, seed, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])

def records():
    rnd = random.Random(seed)
    for i in range(count):
        k = rnd.random()
        size = (rnd.randint(1, 64) if k < 0.3 else rnd.randint(65, 4096) if k < 0.6
                else rnd.randint(4097, 65535) if k < 0.9 else 65536)
        head = b"%08d:" % i
        yield (head + rnd.randbytes(max(0, size - len(head))))[:size]

mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
for s in (mine, theirs):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 21)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
total = 0
if mode == "feed":
    p = subprocess.Popen([shmpipe, "write", "--records", "--quiet", name], stdin=theirs)
    theirs.close()
    for r in records():
        if mine.send(r) != len(r):
            sys.exit("a short send")
        total += len(r)
    mine.shutdown(socket.SHUT_WR)
    st = p.wait()
    if st != 0:
        sys.exit("write --records exited %d" % st)
else:
    p = subprocess.Popen([shmpipe, "read", "--quiet", name], stdout=theirs)
    theirs.close()
    for i, want in enumerate(records()):
        got = mine.recv(1 << 20)
        if got != want:
            p.kill()
            where = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]), None)
            sys.exit("record %d: got %d bytes (%r...), want %d (%r...)%s" % (
                i, len(got), got[:12], len(want), want[:12],
                "" if where is None else "; first difference at byte %d" % where))
        total += len(got)
    extra = mine.recv(1 << 20)
    if extra:
        p.kill()
        sys.exit("after the %d records, one more of %d bytes: %r..." % (count, len(extra), extra[:12]))
    st = p.wait()
    if st != 0:
        sys.exit("read exited %d" % st)
print(count, total)
EOF

# slow.py SECONDS:RATE...: copies standard input to standard output at RATE
# bytes/s for SECONDS (RATE 0: reads nothing), phase after phase, then at
# full speed.
cat >"$TMP/slow.py" <<'EOF'
import os, sys, time
def put(b):
    while b:
        b = b[os.write(1, b):]
for phase in sys.argv[1:]:
    dur, rate = (float(x) for x in phase.split(":"))
    t0 = time.monotonic()
    if rate == 0:
        time.sleep(dur)
        continue
    sent = 0
    while time.monotonic() - t0 < dur:
        allow = int((time.monotonic() - t0) * rate) - sent
        if allow <= 0:
            time.sleep(0.005)
            continue
        b = os.read(0, min(allow, 65536))
        if not b:
            sys.exit(0)
        put(b)
        sent += len(b)
while True:
    b = os.read(0, 1 << 20)
    if not b:
        break
    put(b)
EOF

# ---- a. a byte stream through one server -------------------------------------
case_a() {
	local url W NEAR FAR R t0 ms msgs pending ackp consumer
	CASE=a N1=$(name a1) N2=$(name a2) STREAM=SHMPIPE_fwd_a
	need_single
	url=$(nats_url fwd.a)
	ugen 20 >"$TMP/a.src"
	t0=$(now_ms)
	"$SHMPIPE" write --quiet "$N1" "$TMP/a.src" 2>"$TMP/a.write.err" &
	W=$!
	wait_for 10 exists "$N1" || fail "a: write did not create $N1"
	# Options after the operands, GNU style, as the other commands take them.
	fwd a.near "$N1" "$url" --create
	NEAR=$!
	fwd a.far --create "$url" "$N2"
	FAR=$!
	wait_for $T exists "$N2" || fail "a: the far forward did not create $N2$(diag)"
	"$SHMPIPE" read --quiet "$N2" "$TMP/a.dst" 2>"$TMP/a.read.err" &
	R=$!
	await $T $R
	expect_exit "read $N2" 0
	ms=$(($(now_ms) - t0))
	[ ! -s "$TMP/a.read.err" ] || fail "a: read said: $(cat "$TMP/a.read.err")"
	expect_done a
	# The default names. The durable consumer may be gone with the far
	# forward; if not, it has taken and acknowledged everything.
	nats_stream_info "$STREAM" >"$TMP/info" || fail "a: no stream $STREAM (the default name)$(diag)"
	read -r msgs pending ackp <"$TMP/info"
	if nats_stream_info "$STREAM" "${STREAM}_FWD" >"$TMP/info"; then
		read -r msgs pending ackp <"$TMP/info"
		[ "$pending" = 0 ] && [ "$ackp" = 0 ] ||
			fail "a: the far forward ended with messages it did not take or acknowledge: $pending pending, $ackp unacknowledged"
		consumer="consumer ${STREAM}_FWD all acknowledged"
	else
		consumer="consumer ${STREAM}_FWD gone after the far forward ended"
	fi
	figure "a: 20 MiB in $ms ms, $(mbps $((20 * MIB)) $ms) MB/s; CPU near forward $(cpu_pct a.near $ms)%, far $(cpu_pct a.far $ms)%; stream: $msgs messages, $consumer"
}

# ---- b. records ---------------------------------------------------------------
case_b() {
	local url F NEAR FAR C t0 ms count=3000 got bytes
	CASE=b N1=$(name b1) N2=$(name b2) STREAM=SHMPIPE_fwd_b
	need_single
	url=$(nats_url fwd.b)
	t0=$(now_ms)
	python3 "$TMP/rec.py" feed "$SHMPIPE" "$N1" 7 $count >"$TMP/b.feed.out" 2>"$TMP/b.feed.err" &
	F=$!
	wait_for 10 exists "$N1" || fail "b: write --records did not create $N1$(diag)"
	fwd b.near --create "$N1" "$url"
	NEAR=$!
	fwd b.far --create --records "$url" "$N2"
	FAR=$!
	wait_for $T exists "$N2" || fail "b: the far forward did not create $N2$(diag)"
	python3 "$TMP/rec.py" check "$SHMPIPE" "$N2" 7 $count >"$TMP/b.check.out" 2>"$TMP/b.check.err" &
	C=$!
	await $T $C
	[ "$ST" = 0 ] || fail "b: the records out of the bridge are not those that went in: $(cat "$TMP/b.check.err")$(diag)"
	ms=$(($(now_ms) - t0))
	await $T $F
	expect_exit "the feed into write --records" 0
	expect_forwards_done
	read -r got bytes <"$TMP/b.check.out"
	[ "$got" = $count ] || fail "b: $got records checked, want $count"
	expect_clean
	figure "b: $count records of 1 B to 64 KiB ($bytes bytes), each whole, in $ms ms, $(mbps "$bytes" $ms) MB/s; CPU near forward $(cpu_pct b.near $ms)%, far $(cpu_pct b.far $ms)%"
}

# ---- c. the near writer dies: an error, not an end, at the far end ------------
case_c() {
	local url W NEAR FAR R t0 ms size
	CASE=c N1=$(name c1) N2=$(name c2) STREAM=SHMPIPE_fwd_c
	need_single
	url=$(nats_url fwd.c)
	ugen 8 >"$TMP/c.src"
	size=$((8 * MIB))
	mkfifo "$TMP/c.in"
	exec 3<>"$TMP/c.in" # held open: the writer's input never ends
	"$SHMPIPE" write --quiet "$N1" <"$TMP/c.in" 2>"$TMP/c.write.err" &
	W=$!
	cat "$TMP/c.src" >"$TMP/c.in" &
	wait_for 10 exists "$N1" || fail "c: write did not create $N1"
	fwd c.near --create "$N1" "$url"
	NEAR=$!
	fwd c.far --create "$url" "$N2"
	FAR=$!
	wait_for $T exists "$N2" || fail "c: the far forward did not create $N2$(diag)"
	"$SHMPIPE" read --quiet "$N2" >"$TMP/c.dst" 2>"$TMP/c.read.err" &
	R=$!
	copied() {
		[ "$(stat -c %s "$TMP/c.dst")" = "$size" ]
	}
	wait_for $T copied || fail "c: the transfer does not run: $(stat -c %s "$TMP/c.dst") of $size bytes$(diag)"
	t0=$(now_ms)
	kill -9 $W
	wait $W 2>/dev/null
	await $T $NEAR
	expect_exit "the near forward, its writer killed," 1
	await $T $FAR
	expect_exit "the far forward, the near writer killed," 1
	await $T $R
	ms=$(($(now_ms) - t0))
	[ "$ST" = 1 ] || fail "c: the far reader exited $ST, want 1 (not a clean end)$(diag)"
	[ -s "$TMP/c.read.err" ] || fail "c: the far reader failed without a word"
	grep -q "truncated" "$TMP/c.read.err" || fail "c: the far reader did not say its output is truncated: $(cat "$TMP/c.read.err")"
	[ -s "$TMP/c.near.err" ] || fail "c: the near forward exited 1 without a word"
	[ -s "$TMP/c.far.err" ] || fail "c: the far forward exited 1 without a word"
	same "$TMP/c.src" "$TMP/c.dst" || fail "c: what came before the kill differs: $(cat "$TMP/cmp")"
	exec 3>&-
	expect_clean
	figure "c: the near writer killed: the far reader failed $ms ms later, saying: $(head -1 "$TMP/c.read.err"); near forward: $(head -1 "$TMP/c.near.err"); far forward: $(head -1 "$TMP/c.far.err")"
}

# ---- e. backpressure across the bridge ---------------------------------------
case_e() {
	local url W NEAR FAR R t0 ms mib=48 window=16 ring=$MIB chunk=65536 bound bound_bytes
	local el msgs pending ackp E_DIAG='' max_msgs=0 max_unacked=0 written far_read stall_written='' waits w0='' w1='' rst
	CASE=e N1=$(name e1) N2=$(name e2) STREAM=SHMPIPE_fwd_e
	need_single
	url=$(nats_url fwd.e)
	ugen $mib >"$TMP/e.src"
	# Unacknowledged by the far side at most: four windows, where the near
	# forward holds back (a window in flight from each side, and two more
	# that keep the far side's next fetches from waiting); in bytes, what
	# the far ring holds (the far forward fetches no more than it has room
	# for), the near ring and the reader's pipe besides.
	bound=$((4 * window))
	bound_bytes=$((bound * chunk + 2 * ring + 2 * MIB))
	t0=$(now_ms)
	"$SHMPIPE" write --quiet --size $ring "$N1" "$TMP/e.src" 2>"$TMP/e.write.err" &
	W=$!
	wait_for 10 exists "$N1" || fail "e: write did not create $N1"
	fwd e.near --create --window $window --chunk $chunk "$N1" "$url"
	NEAR=$!
	fwd e.far --create --window $window --size $ring "$url" "$N2"
	FAR=$!
	wait_for $T exists "$N2" || fail "e: the far forward did not create $N2$(diag)"
	# The far reader's output: nothing read for 3 s, then 3 s at 1 MB/s
	# (about 15 messages a second), then all of it.
	(
		"$SHMPIPE" read --quiet "$N2" 2>"$TMP/e.read.err" |
			python3 "$TMP/slow.py" 3:0 3:1000000 >"$TMP/e.dst"
		echo "${PIPESTATUS[*]}" >"$TMP/e.rst"
	) &
	R=$!
	t0=$(now_ms)
	wait_for 10 nats_stream_info "$STREAM" "${STREAM}_FWD" >/dev/null ||
		fail "e: no stream $STREAM with a consumer ${STREAM}_FWD$(diag)"
	while el=$(($(now_ms) - t0)) && [ $el -lt 6000 ]; do
		if read -r msgs pending ackp < <(nats_stream_info "$STREAM" "${STREAM}_FWD"); then
			[ "$msgs" -gt $max_msgs ] && max_msgs=$msgs
			[ $((pending + ackp)) -gt $max_unacked ] && max_unacked=$((pending + ackp))
		fi
		if ! read -r written waits < <(stat_field "$N1" write_index producer_waits); then
			# No pipe: the writer wrote all, and the near forward sent all.
			exists "$N1" && sleep 0.1 && continue
			written=$((mib * MIB)) waits=
		fi
		if [ -z "$stall_written" ] && [ $el -ge 2500 ]; then
			# The end of the stall: the writer held back, asleep on its
			# ring, at most the bound ahead of what the far reader took
			# (none of it, unless this comes late on a slow machine).
			far_read=$(stat_field "$N2" read_index) || far_read=0
			stall_written=$((written - far_read))
			w0=$waits
			E_DIAG=$(diag)
			"$SHMPIPE" stat "$N1" >"$TMP/e.stat" 2>&1
			[ "$stall_written" -gt $bound_bytes ] || grep -Eq "^writer +pid $W, asleep$" "$TMP/e.stat" ||
				fail "e: the far reader stalled, the near writer is not asleep on its ring: $(cat "$TMP/e.stat")$(diag)"
		fi
		w1=$waits
		sleep 0.25
	done
	# Each bound that does not hold is noted; the transfer is still checked.
	E_BAD=()
	[ -n "$stall_written" ] && [ "$stall_written" -le $bound_bytes ] ||
		E_BAD+=("the far reader stalled, the near writer went on: it wrote ${stall_written:-?} bytes more than the far reader took (of $((mib * MIB))), more than $bound_bytes (window $window, rings of $ring bytes)")
	[ "$max_unacked" -le $bound ] ||
		E_BAD+=("the far reader stalled, yet up to $max_unacked messages were in the stream not yet acknowledged by the far forward, more than $bound (four times the window $window); the stream held up to $max_msgs")
	# Besides those, what the far side took and the stream keeps until the
	# far forward's next purge: one every 32 windows (or 32 MiB) taken, and
	# two more windows while a purge is on its way.
	[ "$max_msgs" -le $((bound + 34 * window)) ] ||
		E_BAD+=("the stream held up to $max_msgs messages, more than $((bound + 34 * window)): four windows unacknowledged, 32 taken between two purges and two more while one is on its way")
	[ -n "$w0" ] && [ -n "$w1" ] && [ "$w1" -gt $((w0 + 2)) ] ||
		E_BAD+=("the far reader slow, the near writer's producer_waits did not rise: ${w0:-?} then ${w1:-?}")
	await $T $R
	rst=$(cat "$TMP/e.rst" 2>/dev/null)
	[ "$rst" = "0 0" ] || fail "e: read | slow.py exited '$rst'$(diag)"
	ms=$(($(now_ms) - t0))
	expect_done e
	if [ ${#E_BAD[@]} -gt 0 ]; then
		fail "e: the transfer completed, whole, but without backpressure across the bridge:
$(printf '  %s\n' "${E_BAD[@]}")
  at the stall's end:$E_DIAG"
	fi
	figure "e: far reader stalled 3 s: near writer held $((stall_written / 1024)) KiB ahead of the far reader (of $((mib * 1024)) KiB); at most $max_unacked messages unacknowledged (bound $bound), stream held at most $max_msgs; slow 3 s at 1 MB/s: near writer's waits $w0 -> $w1; all $mib MiB in $ms ms"
}

# ---- g. usage, missing stream, unreachable server --------------------------
# Each check that fails is noted, and the case fails at its end with them all.
case_g() {
	local url port nostream t0 ms u st
	CASE=g N1=$(name g1) N2=$(name g2) STREAM=
	G_BAD=()
	need_single
	url=$(nats_url fwd.g)
	port=$(nats_free_port) || fail "no free port"
	# A pipe to forward from: its data waits in the ring.
	ugen 1 >"$TMP/g.1m"
	head -c 1000 "$TMP/g.1m" >"$TMP/g.src"
	"$SHMPIPE" write "$N1" "$TMP/g.src" || fail "g: write $N1"
	# g_run WANT ARGS...: forward ARGS exits WANT with a word on stderr,
	# nothing on stdout, creates no N2; the time it took in ms; 1 if not.
	g_run() {
		local want=$1 st
		shift
		t0=$(now_ms)
		# A forward that does not give up is stopped (TERM: it removes
		# what it made) and noted, and the checks go on.
		timeout -k 2 $((15 * SLOW)) "$SHMPIPE" forward "$@" >"$TMP/out" 2>"$TMP/err"
		st=$?
		ms=$(($(now_ms) - t0))
		N1_LEFT=
		exists "$N1" && N1_LEFT=1
		if [ "$st" != "$want" ]; then
			if [ "$st" = 124 ]; then
				G_BAD+=("forward $* still ran after $((15 * SLOW)) s, want exit $want; stderr: $(tr '\n' '|' <"$TMP/err")")
			elif [ "$st" = 137 ]; then
				G_BAD+=("forward $* still ran after $((15 * SLOW)) s, want exit $want, and SIGTERM did not stop it (SIGKILL did); stderr: $(tr '\n' '|' <"$TMP/err")")
			else
				G_BAD+=("forward $* exited $st, want $want; stderr: $(tr '\n' '|' <"$TMP/err")")
			fi
			g_again
			return 1
		fi
		[ -s "$TMP/err" ] || G_BAD+=("forward $* exited $st without a word")
		[ ! -s "$TMP/out" ] || G_BAD+=("forward $* wrote to standard output: $(cat "$TMP/out")")
		exists "$N2" && G_BAD+=("forward $* (exit $st) left $N2 behind")
		g_again
		return 0
	}
	# g_again: N1 as it was, N2 not there, for the next check.
	g_again() {
		"$SHMPIPE" rm --force "$N2" 2>/dev/null
		# A forward killed may hold N1's read end, dead: a new N1.
		[ "$st" = 137 ] && "$SHMPIPE" rm --force "$N1" 2>/dev/null
		exists "$N1" || "$SHMPIPE" write "$N1" "$TMP/g.src" || fail "g: write $N1"
	}
	# usage ARGS...: a usage error, with the usage line, that leaves N1 be.
	usage() {
		local had_n1=
		exists "$N1" && had_n1=1
		g_run 2 "$@" || return
		grep -q '^shmpipe: forward' "$TMP/err" && grep -q '^usage: shmpipe forward ' "$TMP/err" ||
			G_BAD+=("forward $*: not the usage error's lines: $(tr '\n' '|' <"$TMP/err")")
		[ -z "$had_n1" ] || [ -n "$N1_LEFT" ] ||
			G_BAD+=("forward $* (exit 2) removed $N1 (and its data)")
	}
	for u in "nats://127.0.0.1:notaport/fwd.g" "nats://127.0.0.1:70000/fwd.g" "nats:///fwd.g" \
		"nats://127.0.0.1:${NATS_PORT[1]}" "nats://127.0.0.1:${NATS_PORT[1]}/"; do
		usage "$N1" "$u"
		usage "$u" "$N2"
	done
	usage "$N1" "$N2"         # two pipes
	usage "$url" "$url"       # two URLs
	usage "$N1"               # one operand
	usage "$url"
	usage "$url" "$N2" extra # three
	usage --bogus "$url" "$N2"
	usage --window 0 "$N1" "$url"
	usage --window "" "$N1" "$url"
	usage --chunk 0 "$N1" "$url"
	usage "$N2" "$url" # no such pipe to forward from
	"$SHMPIPE" forward --help >"$TMP/out" 2>&1 && grep -q "nats://" "$TMP/out" ||
		G_BAD+=("forward --help: $(cat "$TMP/out")")

	# A stream that is not there, without --create: 4, and the far side
	# leaves no pipe.
	nostream=$(nats_url fwd.nostream)
	g_run 4 "$nostream" "$N2"
	g_run 4 --stream SHMPIPE_nosuch "$url" "$N2"
	g_run 4 "$N1" "$nostream" && [ -z "$N1_LEFT" ] &&
		figure "g: note: forward NAME URL of a missing stream (exit 4) removed NAME and its data"

	# Consumers a forward cannot pull from, made by hand on a stream of
	# several subjects: a push consumer, and one of another subject. 1,
	# saying why, and the far side leaves no pipe.
	local gs=SHMPIPE_fwd_gw api='$JS.API'
	{
		python3 "$NATS_PY" jsapi "${NATS_SERVERS%%,*}" "$api.STREAM.CREATE.$gs" \
			"{\"name\":\"$gs\",\"subjects\":[\"fwd.gw.>\"]}" &&
			python3 "$NATS_PY" jsapi "${NATS_SERVERS%%,*}" "$api.CONSUMER.DURABLE.CREATE.$gs.PUSH" \
				"{\"stream_name\":\"$gs\",\"config\":{\"durable_name\":\"PUSH\",\"deliver_subject\":\"gw.push\",\"ack_policy\":\"explicit\",\"filter_subject\":\"fwd.gw.a\"}}" &&
			python3 "$NATS_PY" jsapi "${NATS_SERVERS%%,*}" "$api.CONSUMER.DURABLE.CREATE.$gs.OTHER" \
				"{\"stream_name\":\"$gs\",\"config\":{\"durable_name\":\"OTHER\",\"ack_policy\":\"all\",\"filter_subject\":\"fwd.gw.b\"}}"
	} 2>"$TMP/jsapi.err" ||
		G_BAD+=("making the stream $gs and its consumers by hand failed: $(cat "$TMP/jsapi.err")")
	# And a consumer that is not there, without --create: 4, and no state
	# beside the pipe either (expect_clean, below).
	g_run 4 --stream $gs --durable NOSUCH "$(nats_url fwd.gw.a)" "$N2"
	g_run 1 --stream $gs --durable PUSH "$(nats_url fwd.gw.a)" "$N2" &&
		{ grep -q "push consumer" "$TMP/err" || G_BAD+=("a push consumer, and it did not say so: $(cat "$TMP/err")"); }
	g_run 1 --stream $gs --durable OTHER "$(nats_url fwd.gw.a)" "$N2" &&
		{ grep -q "takes fwd.gw.b, not fwd.gw.a" "$TMP/err" || G_BAD+=("a consumer of another subject, and it did not say so: $(cat "$TMP/err")"); }

	# Nobody listening, --timeout 1s: 3, after about a second.
	for u in "nats://127.0.0.1:$port/fwd.g" "nats://127.0.0.1:$port,127.0.0.1:$((port + 1))/fwd.g"; do
		g_run 3 --timeout 1s "$u" "$N2" &&
			{ [ $ms -ge 900 ] && [ $ms -le $((5000 * SLOW)) ] || G_BAD+=("forward --timeout 1s $u $N2 gave up after $ms ms"); }
	done
	if g_run 3 --timeout 1s "$N1" "nats://127.0.0.1:$port/fwd.g"; then
		[ $ms -ge 900 ] && [ $ms -le $((5000 * SLOW)) ] || G_BAD+=("forward --timeout 1s $N1 ... gave up after $ms ms")
		[ -n "$N1_LEFT" ] || figure "g: note: forward NAME URL, server unreachable (exit 3), removed NAME and its data"
	fi
	auth_up() { ! _nats_port_free "$1"; }
	# A server that wants a user and a password: without them, 5, at once
	# and for good (not retried as an unreachable server is); with them in
	# the address, it takes us.
	local aport apid
	aport=$(nats_free_port)
	nats-server -a 127.0.0.1 -p "$aport" --user fwd --pass s3cret >"$TMP/auth.log" 2>&1 &
	apid=$!
	wait_for 10 auth_up "$aport" || G_BAD+=("the server with a password did not start: $(tail -3 "$TMP/auth.log")")
	if g_run 5 --timeout 20s "nats://127.0.0.1:$aport/fwd.g" "$N2"; then
		[ $ms -le $((5000 * SLOW)) ] || G_BAD+=("an authorization refused took $ms ms to say so")
		grep -q "uthoriz" "$TMP/err" || G_BAD+=("exit 5 without a word of authorization: $(cat "$TMP/err")")
	fi
	# With them it is let in, and finds no JetStream there: 3 after --timeout.
	g_run 3 --timeout 1s "nats://fwd:s3cret@127.0.0.1:$aport/fwd.g" "$N2" &&
		{ grep -q "JetStream" "$TMP/err" || G_BAD+=("no JetStream, and it did not say so: $(cat "$TMP/err")"); }
	kill "$apid" 2>/dev/null
	wait "$apid" 2>/dev/null
	"$SHMPIPE" rm --force "$N1" 2>/dev/null
	expect_clean
	if [ ${#G_BAD[@]} -gt 0 ]; then
		printf '%s\n' "${G_BAD[@]}" | sed 's/^/  /' >"$TMP/g.bad"
		fail "g: ${#G_BAD[@]} checks failed:
$(cat "$TMP/g.bad")"
	fi
	figure "g: usage errors exit 2, a missing stream 4, a push consumer or one of another subject 1, no server with --timeout 1s 3, a password refused 5"
}

# ---- f. the server down at the start, then down for 5 s mid-transfer ---------
case_f() {
	local port url W NEAR FAR R NP FP t0 t1 ms k pct el tk0n tk0f size
	CASE=f N1=$(name f1) N2=$(name f2) STREAM=SHMPIPE_fwd_f
	nats_stop_all
	port=$(nats_free_port) || fail "no free port"
	NATS_SERVERS=127.0.0.1:$port
	url=$(nats_url fwd.f)
	ugen 16 >"$TMP/f.src"
	t0=$(now_ms)
	"$SHMPIPE" write --quiet "$N1" "$TMP/f.src" 2>"$TMP/f.write.err" &
	W=$!
	wait_for 10 exists "$N1" || fail "f: write did not create $N1"
	fwd f.near --create "$N1" "$url"
	NEAR=$!
	fwd f.far --create "$url" "$N2"
	FAR=$!
	NP=$(forward_pid $NEAR) && FP=$(forward_pid $FAR) || fail "f: no forward process$(diag)"
	sleep 3
	el=$(($(now_ms) - t0))
	for k in near:$NP far:$FP; do
		kill -0 ${k#*:} 2>/dev/null || fail "f: the ${k%:*} forward gave up while the server was not there yet$(diag)"
		pct=$(($(ticks ${k#*:}) * 100000 / HZ / el))
		[ $pct -lt 5 ] || fail "f: the ${k%:*} forward used $pct% of a CPU in the $el ms without a server, want under 5%"
		figure "f: no server for $el ms: the ${k%:*} forward used $pct% CPU"
	done
	nats_start_single $port
	t1=$(now_ms)
	wait_for $T exists "$N2" || fail "f: the far forward did not create $N2$(diag)"
	"$SHMPIPE" read --quiet "$N2" "$TMP/f.dst" 2>"$TMP/f.read.err" &
	R=$!
	await $T $R
	expect_exit "read $N2" 0
	ms=$(($(now_ms) - t1))
	expect_done f
	figure "f: the server came: 16 MiB through in $ms ms"

	# The server killed mid-transfer for 5 s, restarted on its store. The
	# input comes at 8 MB/s: the transfer takes 4 s without the outage.
	CASE=f2 N1=$(name f3) N2=$(name f4) STREAM=SHMPIPE_fwd_f2
	url=$(nats_url fwd.f2)
	ugen 32 >"$TMP/f2.src"
	size=$((32 * MIB))
	t0=$(now_ms)
	(
		python3 "$TMP/slow.py" 60:8000000 <"$TMP/f2.src" |
			"$SHMPIPE" write --quiet "$N1" 2>"$TMP/f2.write.err"
		echo "${PIPESTATUS[*]}" >"$TMP/f2.wst"
	) &
	W=$!
	wait_for 10 exists "$N1" || fail "f2: write did not create $N1"
	fwd f2.near --create "$N1" "$url"
	NEAR=$!
	fwd f2.far --create "$url" "$N2"
	FAR=$!
	NP=$(forward_pid $NEAR) && FP=$(forward_pid $FAR) || fail "f2: no forward process$(diag)"
	wait_for $T exists "$N2" || fail "f2: the far forward did not create $N2$(diag)"
	"$SHMPIPE" read --quiet "$N2" "$TMP/f2.dst" 2>"$TMP/f2.read.err" &
	R=$!
	started() {
		[ "$(stat -c %s "$TMP/f2.dst")" -ge $((8 * MIB)) ]
	}
	wait_for $T started || fail "f2: the transfer does not run: $(stat -c %s "$TMP/f2.dst") bytes came$(diag)"
	nats_kill 1
	t1=$(now_ms)
	tk0n=$(ticks $NP) tk0f=$(ticks $FP)
	sleep 5
	el=$(($(now_ms) - t1))
	for k in near:$NP:$tk0n far:$FP:$tk0f; do
		IFS=: read -r what pid tk <<<"$k"
		kill -0 $pid 2>/dev/null || fail "f2: the $what forward gave up while the server was down$(diag)"
		pct=$((($(ticks $pid) - tk) * 100000 / HZ / el))
		[ $pct -lt 5 ] || fail "f2: the $what forward used $pct% of a CPU in the $el ms the server was down, want under 5%"
		figure "f2: server down for $el ms: the $what forward used $pct% CPU"
	done
	k=$(stat -c %s "$TMP/f2.dst")
	nats_restart 1
	t1=$(now_ms)
	await $T $R
	expect_exit "read $N2" 0
	ms=$(($(now_ms) - t1))
	expect_forwards_done
	await $T $W
	[ "$(cat "$TMP/f2.wst" 2>/dev/null)" = "0 0" ] || fail "f2: slow.py | write exited '$(cat "$TMP/f2.wst" 2>/dev/null)'$(diag)"
	same "$TMP/f2.src" "$TMP/f2.dst" ||
		fail "f2: the server killed at $((k / MIB)) MiB: the copy differs: $(cat "$TMP/cmp")$(diag)"
	expect_clean
	figure "f2: killed the server at $((k / MIB)) MiB of 32; after its restart the rest came in $ms ms, whole"
}

# ---- d. a 3-node cluster, R3, its stream leader killed mid-transfer ----------
case_d() {
	local url W NEAR FAR R t0 ms total r0 read_at leader left rst t1 resumed=
	CASE=d N1=$(name d1) N2=$(name d2) STREAM=SHMPIPE_fwd_d
	nats_start_cluster
	figure "d: a 3-node JetStream cluster ready in $NATS_READY_MS ms"
	url=$(nats_url fwd.d)
	total=$((D_MIB * MIB))
	t0=$(now_ms)
	(
		ugen $D_MIB | "$SHMPIPE" write --quiet --records "$N1" 2>"$TMP/d.write.err"
		echo "${PIPESTATUS[*]}" >"$TMP/d.wst"
	) &
	W=$!
	wait_for 10 exists "$N1" || fail "d: write did not create $N1"
	fwd d.near --create --replicas 3 "$N1" "$url"
	NEAR=$!
	fwd d.far --create --replicas 3 --records "$url" "$N2"
	FAR=$!
	wait_for $T exists "$N2" || fail "d: the far forward did not create $N2$(diag)"
	(
		"$SHMPIPE" read --quiet "$N2" 2>"$TMP/d.read.err" | cmp - <(ugen $D_MIB) >"$TMP/d.cmp.out" 2>&1
		echo "${PIPESTATUS[*]}" >"$TMP/d.rst"
	) &
	R=$!
	read_index() {
		read_at=$(stat_field "$N2" read_index)
		[ -n "$read_at" ]
	}
	third() {
		read_index && [ "$read_at" -ge $((total / 3)) ]
	}
	wait_for $((T + D_MIB / 2)) third || fail "d: a third of the data did not come$(diag)"
	[ "$(nats_stream_replicas "$STREAM")" = 3 ] ||
		fail "d: --replicas 3 made a stream of $(nats_stream_replicas "$STREAM") replicas"
	leader=$(nats_stream_leader "$STREAM") || fail "d: no leader of $STREAM$(diag)"
	r0=$read_at
	nats_kill "$leader"
	t1=$(now_ms)
	# How long the transfer stalls: until 1 MiB more came (or it ended).
	while ! gone $R; do
		if read_index && [ "$read_at" -gt $((r0 + MIB)) ]; then
			resumed=$(($(now_ms) - t1))
			break
		fi
		[ $(($(now_ms) - t1)) -lt $((T * 1000)) ] || fail "d: the transfer stopped when server n$leader was killed$(diag)"
		sleep 0.1
	done
	await $((T + D_MIB / 2)) $R
	[ "$ST" != 124 ] || fail "d: the transfer does not end$(diag)"
	rst=$(cat "$TMP/d.rst" 2>/dev/null)
	[ "$rst" = "0 0" ] || fail "d: read | cmp exited '$rst': $(cat "$TMP/d.cmp.out")$(diag)"
	ms=$(($(now_ms) - t0))
	expect_forwards_done
	await $T $W
	[ "$(cat "$TMP/d.wst" 2>/dev/null)" = "0 0" ] || fail "d: gen | write exited '$(cat "$TMP/d.wst" 2>/dev/null)'$(diag)"
	expect_clean
	figure "d: $D_MIB MiB of records through 3 replicas in $ms ms, $(mbps $total $ms) MB/s; CPU near forward $(cpu_pct d.near $ms)%, far $(cpu_pct d.far $ms)%; stream leader n$leader killed at $((r0 / MIB)) MiB, flowing again after ${resumed:-?} ms"
}

# ---- h. forwarders killed and started again ---------------------------------------
# kill -9 of each forwarder at random moments, KILLS times each side, a new
# one started after each (the near one takes the read end again, the far
# one the write end with --open): nothing lost, nothing written twice.
case_h() {
	local url W R t0 ms i
	CASE=h N1=$(name h1) N2=$(name h2)
	need_single
	url=$(nats_url fwd.h)
	ugen 40 >"$TMP/h.src"
	t0=$(now_ms)
	# A writer paced to about 12 MB/s, so that the kills fall mid-stream.
	python3 -c '
import sys, time
src = open(sys.argv[1], "rb").read()
out = sys.stdout.buffer
for i in range(0, len(src), 1 << 18):
    out.write(src[i:i + (1 << 18)]); out.flush(); time.sleep(0.02)
' "$TMP/h.src" | "$SHMPIPE" write --quiet --reopen "$N1" 2>"$TMP/h.write.err" &
	W=$!
	wait_for 10 exists "$N1" || fail "h: write did not create $N1"
	"$SHMPIPE" forward --quiet --create "$N1" "$url" 2>>"$TMP/h.near.err" &
	echo $! >"$TMP/h.near.pid"
	"$SHMPIPE" forward --quiet --create "$url" "$N2" 2>>"$TMP/h.far.err" &
	echo $! >"$TMP/h.far.pid"
	wait_for $T exists "$N2" || fail "h: the far forward did not create $N2$(cat "$TMP/h.far.err")"
	"$SHMPIPE" read --quiet "$N2" "$TMP/h.dst" 2>"$TMP/h.read.err" &
	R=$!
	for ((i = 0; i < KILLS; i++)); do
		sleep 0.$((RANDOM % 3 + 1))
		kill -9 "$(cat "$TMP/h.near.pid")" 2>/dev/null
		wait "$(cat "$TMP/h.near.pid")" 2>/dev/null
		gone "$R" && break
		"$SHMPIPE" forward --quiet "$N1" "$url" 2>>"$TMP/h.near.err" &
		echo $! >"$TMP/h.near.pid"
		sleep 0.$((RANDOM % 3 + 1))
		kill -9 "$(cat "$TMP/h.far.pid")" 2>/dev/null
		wait "$(cat "$TMP/h.far.pid")" 2>/dev/null
		gone "$R" && break
		"$SHMPIPE" forward --quiet --open "$url" "$N2" 2>>"$TMP/h.far.err" &
		echo $! >"$TMP/h.far.pid"
	done
	await $((3 * T)) $R
	expect_exit "read $N2" 0
	ms=$(($(now_ms) - t0))
	await $T "$(cat "$TMP/h.near.pid")"
	await $T "$(cat "$TMP/h.far.pid")"
	await $T $W
	same "$TMP/h.src" "$TMP/h.dst" || fail "h: the copy differs after $i kills of each forwarder: $(cat "$TMP/cmp")"
	expect_clean
	figure "h: 40 MiB with each forwarder killed (kill -9) and started again $i times, in $ms ms: every byte once, in order"
}

# ---- i. the near forward started again against a stalled far side -----------
# The far reader stalled, so the far side's backlog is at its bound; the near
# forward is killed and started again: the new one must ask how full the
# backlog is before it publishes, not take it for empty.
case_i() {
	local url W NEAR FAR R window=16 bound pending ackp max=0 t1 rst
	CASE=i N1=$(name i1) N2=$(name i2) STREAM=SHMPIPE_fwd_i
	need_single
	url=$(nats_url fwd.i)
	bound=$((4 * window))
	ugen 24 >"$TMP/i.src"
	"$SHMPIPE" write --quiet --reopen --size 1M "$N1" "$TMP/i.src" 2>"$TMP/i.write.err" &
	W=$!
	wait_for 10 exists "$N1" || fail "i: write did not create $N1"
	"$SHMPIPE" forward --quiet --create --window $window --chunk 64K "$N1" "$url" 2>>"$TMP/i.near.err" &
	NEAR=$!
	fwd i.far --create --window $window --size 1M "$url" "$N2"
	FAR=$!
	wait_for $T exists "$N2" || fail "i: the far forward did not create $N2$(diag)"
	# No reader yet: the far ring fills, then the far side's backlog.
	full() {
		read -r _ pending ackp < <(nats_stream_info "$STREAM" "${STREAM}_FWD") &&
			[ $((pending + ackp)) -ge $((bound - window)) ]
	}
	wait_for $T full || fail "i: the far side's backlog did not fill$(diag)"
	sleep 0.5
	kill -9 $NEAR
	wait $NEAR 2>/dev/null
	"$SHMPIPE" forward --quiet --window $window --chunk 64K "$N1" "$url" 2>>"$TMP/i.near.err" &
	NEAR=$!
	t1=$(now_ms)
	while [ $(($(now_ms) - t1)) -lt 2000 ]; do
		if read -r _ pending ackp < <(nats_stream_info "$STREAM" "${STREAM}_FWD"); then
			[ $((pending + ackp)) -gt $max ] && max=$((pending + ackp))
		fi
		sleep 0.1
	done
	[ $max -le $bound ] ||
		fail "i: the near forward started again against a full backlog took it for empty: up to $max messages unacknowledged, more than $bound (four times the window)$(diag)"
	(
		"$SHMPIPE" read --quiet "$N2" "$TMP/i.dst" 2>"$TMP/i.read.err"
		echo $? >"$TMP/i.rst"
	) &
	R=$!
	await $T $R
	rst=$(cat "$TMP/i.rst" 2>/dev/null)
	[ "$rst" = 0 ] || fail "i: read exited '$rst': $(cat "$TMP/i.read.err")$(diag)"
	expect_done i
	figure "i: the near forward killed and started again against a stalled far side: at most $max messages unacknowledged (bound $bound); all 24 MiB whole"
}

# ---- j. a message the servers lost -------------------------------------------
# The stream holds a message after the far side's next position but not the
# one there (published here by hand, in the NATS protocol, with a forward's
# ids): the far forward writes what comes before the gap, then waits, and
# after 30 s says, once, which position it waits for.
# far_alone: starts a far forward into $N2 on $url, not through fwd: $FAR
# is the forward itself, which the case stops, kills or stops with
# far_alone_stop (a forward left running would keep ctest's output open).
far_alone() {
	"$SHMPIPE" forward --create "$url" "$N2" 2>"$TMP/$CASE.far.err" &
	FAR=$!
	wait_for $T exists "$N2" || fail "$CASE: the far forward did not create $N2$(diag)"
}

# far_alone_stop: stops it (SIGTERM), and removes the pipe and its state.
far_alone_stop() {
	kill $FAR
	await $T $FAR
	[ "$ST" != 124 ] || fail "$CASE: the far forward did not stop on SIGTERM"
	"$SHMPIPE" rm "$N2" 2>/dev/null
	rm -f "/dev/shm$N2.forward"
	expect_clean
}

case_j() {
	local url FAR t0 ms written said
	CASE=j N1='' N2=$(name j2) STREAM=SHMPIPE_fwd_j
	need_single
	url=$(nats_url fwd.j)
	far_alone
	# Positions 0 to 100 of a pipe "gap", then 4096 to 4196: 100 to 4096 lost.
	python3 "$NATS_PY" hpub "${NATS_SERVERS%%,*}" fwd.j gap:0=100 gap:4096=100 ||
		fail "j: publishing by hand failed"
	t0=$(now_ms)
	has_100() {
		written=$(stat_field "$N2" write_index) && [ "$written" = 100 ]
	}
	wait_for 10 has_100 || fail "j: the far ring has ${written:-?} bytes, want the 100 before the gap$(diag)"
	wait_for 45 grep -q "but not the one there" "$TMP/j.far.err" ||
		fail "j: the far forward waited 45 s for the message at position 100 without a word$(diag)"
	ms=$(($(now_ms) - t0))
	[ $ms -ge 29000 ] || fail "j: the gap was reported after $ms ms: before 30 s, when a message may still come again"
	grep -q "near position 100 " "$TMP/j.far.err" || fail "j: the report does not name position 100: $(cat "$TMP/j.far.err")"
	sleep 2
	said=$(grep -c "but not the one there" "$TMP/j.far.err")
	[ "$said" = 1 ] || fail "j: the gap was reported $said times, want once"
	written=$(stat_field "$N2" write_index)
	[ "$written" = 100 ] || fail "j: the far ring has $written bytes, want 100: the message after the gap went in"
	far_alone_stop
	figure "j: a message lost from the stream: the far forward wrote the 100 bytes before it, held the one after, and said so after $ms ms: $(head -1 "$TMP/j.far.err")"
}

# ---- m. a delivery the next far forward never saw ----------------------------
# The far forward acknowledges once per fetch, all up to one message
# (AckAll). A message delivered to a far forward that then dies (stopped
# first, so that it cannot even refuse it) stays pending until AckWait, and
# the next far forward never saw it: its acknowledgement of a later message
# must not cover it. By hand, with a forward's ids: 0-100 in; 200-300 (after
# a gap) delivered to the stopped forward, which is killed; then 100-200 for
# the next one, which must write all 300 bytes, the last 100 once they come
# again.
case_m() {
	local url FAR t0 ms written='' ackp='' d0 d1='' i
	CASE=m N1='' N2=$(name m2) STREAM=SHMPIPE_fwd_m
	need_single
	url=$(nats_url fwd.m)
	far_alone
	python3 "$NATS_PY" hpub "${NATS_SERVERS%%,*}" fwd.m gap:0=100 ||
		fail "m: publishing by hand failed"
	has() {
		written=$(stat_field "$N2" write_index) && [ "$written" = "$1" ]
	}
	all_acked() {
		read -r _ _ ackp < <(nats_stream_info "$STREAM" "${STREAM}_FWD") && [ "$ackp" = 0 ]
	}
	wait_for 10 has 100 || fail "m: the far ring has ${written:-?} bytes, want 100$(diag)"
	wait_for 10 all_acked || fail "m: the first message is not acknowledged (${ackp:-?} pending)$(diag)"
	# Stopped while its pull request waits on the server (nearly all the
	# time: it is idle), the next message goes to it. Else, continued, it
	# refuses it (after the gap) and it comes again in 100 ms: stopped
	# again, it goes to the stopped forward then.
	d0=$(nats_consumer_delivered "$STREAM" "${STREAM}_FWD") || fail "m: no consumer ${STREAM}_FWD$(diag)"
	to_stopped() {
		d1=$(nats_consumer_delivered "$STREAM" "${STREAM}_FWD") && [ "$d1" -gt "$d0" ]
	}
	kill -STOP $FAR
	python3 "$NATS_PY" hpub "${NATS_SERVERS%%,*}" fwd.m gap:200=100 ||
		fail "m: publishing by hand failed"
	for ((i = 0; i < 5; i++)); do
		wait_for 1 to_stopped && break
		kill -CONT $FAR
		sleep 0.05
		d0=$(nats_consumer_delivered "$STREAM" "${STREAM}_FWD")
		kill -STOP $FAR
	done
	[ "$i" -lt 5 ] || fail "m: the message after the gap never went to the stopped far forward (deliveries ${d0:-?}, then ${d1:-?})$(diag)"
	kill -9 $FAR
	wait $FAR 2>/dev/null
	t0=$(now_ms)
	"$SHMPIPE" forward --open "$url" "$N2" 2>>"$TMP/m.far.err" &
	FAR=$!
	python3 "$NATS_PY" hpub "${NATS_SERVERS%%,*}" fwd.m gap:100=100 ||
		fail "m: publishing by hand failed"
	wait_for 10 has 200 || fail "m: the far ring has ${written:-?} bytes, want 200 (the message that fills the gap)$(diag)"
	wait_for 20 has 300 ||
		fail "m: the far ring has ${written:-?} bytes after 20 s, want 300: the message delivered to the forward that died never came again (covered by the next one's acknowledgement?)$(diag)"
	ms=$(($(now_ms) - t0))
	wait_for 10 all_acked || fail "m: all written, but ${ackp:-?} messages not acknowledged$(diag)"
	far_alone_stop
	figure "m: a message delivered to a far forward that died, unseen by the next: written $ms ms after the next one started (after the consumer's AckWait of 5 s), then all acknowledged"
}

# ---- n. deliveries the far forward did not ask for ---------------------------
# Each pull request of the far forward sent three times more to the servers,
# answering to the same inbox, as a connection that comes back sends all the
# requests it held while it was down: the far forward gets up to four times
# the messages it asked for, at any moment, and takes each in order, nothing
# lost or twice (libnats 3.4's Fetch wrote past its array on such deliveries).
case_n() {
	local url W NEAR FAR R MED t0 ms seen
	CASE=n N1=$(name n1) N2=$(name n2) STREAM=SHMPIPE_fwd_n
	need_single
	url=$(nats_url fwd.n)
	rm -f "$TMP/n.ready"
	python3 "$NATS_PY" meddle "${NATS_SERVERS%%,*}" "$TMP/n.ready" \
		"\$JS.API.CONSUMER.MSG.NEXT.$STREAM.${STREAM}_FWD" 3 >"$TMP/n.med" 2>"$TMP/n.med.err" &
	MED=$!
	wait_for 10 test -e "$TMP/n.ready" || fail "n: the meddler did not subscribe: $(cat "$TMP/n.med.err")"
	ugen 16 >"$TMP/n.src"
	t0=$(now_ms)
	"$SHMPIPE" write --quiet "$N1" "$TMP/n.src" 2>"$TMP/n.write.err" &
	W=$!
	wait_for 10 exists "$N1" || fail "n: write did not create $N1"
	fwd n.near --create --chunk 4096 "$N1" "$url"
	NEAR=$!
	fwd n.far --create --size 262144 "$url" "$N2"
	FAR=$!
	wait_for $T exists "$N2" || fail "n: the far forward did not create $N2$(diag)"
	"$SHMPIPE" read --quiet "$N2" "$TMP/n.dst" 2>"$TMP/n.read.err" &
	R=$!
	await $T $R
	expect_exit "read $N2" 0
	ms=$(($(now_ms) - t0))
	expect_done n
	kill $MED
	wait $MED
	seen=$(cat "$TMP/n.med")
	[ "${seen:-0}" -gt 0 ] || fail "n: the meddler saw no pull request: $(cat "$TMP/n.med.err")"
	figure "n: $seen pull requests of the far forward sent three times more: all 16 MiB through in $ms ms, whole"
}

# ---- o. the first messages delivered to a far forward that died -----------
# Stopped while its pull request waits on the server, a far forward that
# has taken nothing gets the pipe's first messages, and is killed. The next
# one must not take a later message for the start of the pipe: it waits
# for the first (after AckWait) and writes all 300 bytes. Tried again on a
# stream of its own if the request had expired before the messages came.
case_o() {
	local url FAR t0 ms written='' d1='' try
	CASE=o N1=''
	need_single
	delivered() {
		d1=$(nats_consumer_delivered "$STREAM" "${STREAM}_FWD") && [ "$d1" -ge 2 ]
	}
	has() {
		written=$(stat_field "$N2" write_index) && [ "$written" = "$1" ]
	}
	for ((try = 1; try <= 5; try++)); do
		N2=$(name o$try) STREAM=SHMPIPE_fwd_o$try
		url=$(nats_url fwd.o$try)
		far_alone
		wait_for 10 nats_stream_info "$STREAM" "${STREAM}_FWD" >/dev/null ||
			fail "o: no consumer ${STREAM}_FWD$(diag)"
		sleep 0.3
		kill -STOP $FAR
		python3 "$NATS_PY" hpub "${NATS_SERVERS%%,*}" fwd.o$try gap:0=100 gap:100=100 ||
			fail "o: publishing by hand failed"
		wait_for 2 delivered && break
		# The request had expired: the messages wait in the stream.
		kill -9 $FAR
		wait $FAR 2>/dev/null
		"$SHMPIPE" rm "$N2" 2>/dev/null
		rm -f "/dev/shm$N2.forward"
	done
	[ "$try" -le 5 ] || fail "o: in 5 tries, the first messages never went to the stopped far forward$(diag)"
	kill -9 $FAR
	wait $FAR 2>/dev/null
	has 0 || fail "o: the stopped far forward wrote ${written:-?} bytes, want none$(diag)"
	t0=$(now_ms)
	# With its progress lines (one a second, not a terminal): they say why it waits.
	"$SHMPIPE" forward --open --progress "$url" "$N2" 2>"$TMP/o.next.err" &
	FAR=$!
	python3 "$NATS_PY" hpub "${NATS_SERVERS%%,*}" fwd.o$try gap:200=100 ||
		fail "o: publishing by hand failed"
	wait_for 20 has 300 ||
		fail "o: the far ring has ${written:-?} bytes after 20 s, want 300: the next far forward took a later message for the start$(diag)"
	ms=$(($(now_ms) - t0))
	sleep 0.5
	has 300 || fail "o: the far ring has $written bytes, want 300$(diag)"
	grep -q " ring .*waiting for the pipe's first message" "$TMP/o.next.err" ||
		fail "o: the next far forward's progress lines never said it waited for the pipe's first message: $(tail -n 3 "$TMP/o.next.err" | tr '\n' '|')"
	said_done() {
		tail -n 1 "$TMP/o.next.err" | grep -q " ring " &&
			! tail -n 1 "$TMP/o.next.err" | grep -q "first message"
	}
	wait_for 5 said_done ||
		fail "o: the next far forward's progress line still says it waits for the first message, after it came: $(tail -n 1 "$TMP/o.next.err")"
	far_alone_stop
	figure "o: the first messages delivered to a far forward that died: the next one wrote all 300 bytes, in $ms ms (after AckWait, 5 s; try $try)"
}

# ---- k. the far side's reports spare the near side's questions ---------------
# A transfer of many small messages through a small window, the far side
# keeping up: the near forward knows the far side's backlog from its
# reports, and asks the servers (consumer info) seldom; without them it
# would ask about every 10 ms.
case_k() {
	local url W NEAR FAR R SPY t0 ms info asks reports msgs
	CASE=k N1=$(name k1) N2=$(name k2) STREAM=SHMPIPE_fwd_k
	need_single
	url=$(nats_url fwd.k)
	rm -f "$TMP/k.ready"
	python3 "$NATS_PY" spy "${NATS_SERVERS%%,*}" "$TMP/k.ready" \
		"\$JS.API.CONSUMER.INFO.$STREAM.${STREAM}_FWD" "\$JS.API.STREAM.PURGE.$STREAM" \
		"_SHMPIPE.taken.$STREAM.${STREAM}_FWD" >"$TMP/k.spy" 2>"$TMP/k.spy.err" &
	SPY=$!
	wait_for 10 test -e "$TMP/k.ready" || fail "k: the spy did not subscribe: $(cat "$TMP/k.spy.err")"
	ugen 6 >"$TMP/k.src"
	msgs=$((6 * MIB / 512))
	t0=$(now_ms)
	"$SHMPIPE" write --quiet "$N1" "$TMP/k.src" 2>"$TMP/k.write.err" &
	W=$!
	wait_for 10 exists "$N1" || fail "k: write did not create $N1"
	fwd k.far --create --window 16 "$url" "$N2"
	FAR=$!
	wait_for $T exists "$N2" || fail "k: the far forward did not create $N2$(diag)"
	"$SHMPIPE" read --quiet "$N2" "$TMP/k.dst" 2>"$TMP/k.read.err" &
	R=$!
	fwd k.near --create --window 16 --chunk 512 "$N1" "$url"
	NEAR=$!
	await $T $R
	expect_exit "read $N2" 0
	ms=$(($(now_ms) - t0))
	expect_done k
	kill $SPY
	wait $SPY
	# Line 1: consumer info requests; 2: purges (the far side's); 3: reports.
	info=$(tr '\n' ';' <"$TMP/k.spy")
	# The near side's questions: those not from the purger's connection.
	asks=$(python3 -c '
import sys
lines = [l.split() for l in open(sys.argv[1])]
purger = {kv.rsplit("=", 1)[0] for kv in lines[1][1:]}
print(sum(int(kv.rsplit("=", 1)[1]) for kv in lines[0][1:] if kv.rsplit("=", 1)[0] not in purger))' "$TMP/k.spy")
	reports=$(sed -n 3p "$TMP/k.spy" | cut -d' ' -f1)
	[ "${reports:-0}" -ge $((msgs / 16 / 4)) ] ||
		fail "k: the far forward reported ${reports:-0} times for $msgs messages in batches of at most 16, want about one a batch: $info"
	# One at the start; a few more if a loaded machine delays the reports.
	[ "$asks" -le 20 ] ||
		fail "k: the near forward asked the servers $asks times in $ms ms, want at most 20 while the far side's reports come (without them, one about every 10 ms): $info"
	figure "k: $msgs messages of 512 B, window 16, in $ms ms: the far forward reported $reports times, the near forward asked the servers $asks times"
}

# ---- p. a trickle -----------------------------------------------------------------
# Lines written one at a time, 40 ms apart: each reaches the far reader
# within moments, not when a pull request for a whole batch expires (half
# a second later, which is how the far forward used to deliver them).
cat >"$TMP/trickle.py" <<'EOF'
import os, sys, time
while not os.path.exists(sys.argv[2]):  # until the forwards are up
    time.sleep(0.01)
for i in range(int(sys.argv[1])):
    print(i, repr(time.time()), flush=True)
    time.sleep(0.04)
EOF
cat >"$TMP/delays.py" <<'EOF'
import subprocess, sys, time
# Each line's delay in ms, from its writing to its reading here.
p = subprocess.Popen([sys.argv[1], "read", "--quiet", sys.argv[2]], stdout=subprocess.PIPE)
for line in p.stdout:
    i, t = line.split()
    print(int(i), round((time.time() - float(t)) * 1000, 1), flush=True)
sys.exit(p.wait())
EOF
case_p() {
	local url W NEAR FAR R lines=30 got median worst
	CASE=p N1=$(name p1) N2=$(name p2) STREAM=SHMPIPE_fwd_p
	need_single
	url=$(nats_url fwd.p)
	fwd p.far --create "$url" "$N2"
	FAR=$!
	wait_for $T exists "$N2" || fail "p: the far forward did not create $N2$(diag)"
	python3 "$TMP/delays.py" "$SHMPIPE" "$N2" >"$TMP/p.delays" 2>"$TMP/p.read.err" &
	R=$!
	rm -f "$TMP/p.go"
	"$SHMPIPE" write --quiet "$N1" < <(python3 "$TMP/trickle.py" $lines "$TMP/p.go") \
		2>"$TMP/p.write.err" &
	W=$!
	wait_for 10 exists "$N1" || fail "p: write did not create $N1"
	fwd p.near --create "$N1" "$url"
	NEAR=$!
	sleep 1
	touch "$TMP/p.go"
	await $T $R
	expect_exit "read $N2" 0
	expect_forwards_done
	await $T $W
	expect_exit "write" 0
	expect_clean
	got=$(cut -d' ' -f1 "$TMP/p.delays" | tr '\n' ' ')
	[ "$got" = "$(seq -s ' ' 0 $((lines - 1))) " ] || fail "p: the far reader got lines '$got', want 0 to $((lines - 1))"
	median=$(cut -d' ' -f2 "$TMP/p.delays" | sort -n | sed -n "$((lines / 2))p")
	worst=$(cut -d' ' -f2 "$TMP/p.delays" | sort -n | tail -n 1)
	awk -v m="$median" 'BEGIN { exit !(m < 100) }' ||
		fail "p: a line written every 40 ms reached the far reader $median ms after it was written (median; worst $worst ms), want under 100: $(tr '\n' ' ' <"$TMP/p.delays")"
	figure "p: $lines lines written 40 ms apart: each at the far reader $median ms after it was written (median), $worst ms at worst"
}

# ---- l. TLS ----------------------------------------------------------------------
# A server that requires TLS, with a self-signed certificate (openssl): a
# forward that does not trust it fails at once (exit 3) and says why,
# leaving no pipe; a --tls-ca that is not there or is a FIFO is a usage
# error (exit 2); with --tls-ca naming the certificate, the transfer goes
# through, by a tls:// address one way and by --tls the other.
case_l() {
	local url W NEAR FAR R st t0 ms NEAR_OPTS FAR_OPTS
	CASE=l N1=$(name l1) N2=$(name l2) STREAM=SHMPIPE_fwd_l
	if ! command -v openssl >/dev/null; then
		echo "$TEST: l: skipped, no openssl to make a certificate" >&2
		return 0
	fi
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 \
		-keyout "$TMP/l.key" -out "$TMP/l.crt" >"$TMP/l.openssl.err" 2>&1 ||
		fail "l: openssl could not make a certificate: $(cat "$TMP/l.openssl.err")"
	NATS_EXTRA=(--tls --tlscert "$TMP/l.crt" --tlskey "$TMP/l.key")
	nats_start_single
	NATS_EXTRA=()
	url=tls://${NATS_SERVERS%%,*}/fwd.l
	t0=$(now_ms)
	"$SHMPIPE" forward --create --timeout 10s "$url" "$N2" 2>"$TMP/l.untrusted.err"
	st=$?
	ms=$(($(now_ms) - t0))
	[ "$st" = 3 ] || fail "l: a forward that does not trust the server's certificate exited $st, want 3: $(cat "$TMP/l.untrusted.err")"
	[ $ms -lt 5000 ] || fail "l: the untrusted certificate was refused after $ms ms, not at once"
	grep -qi "certificate\|handshake" "$TMP/l.untrusted.err" ||
		fail "l: the refusal does not say why: $(cat "$TMP/l.untrusted.err")"
	expect_clean
	# A --tls-ca that is not there, or a FIFO (OpenSSL would wait on it for
	# ever): usage errors, named, before any pipe.
	mkfifo "$TMP/l.fifo"
	for c in "$TMP/l.missing" "$TMP/l.fifo"; do
		timeout -k 2 $((15 * SLOW)) "$SHMPIPE" forward --create --timeout 10s --tls-ca "$c" \
			"$url" "$N2" 2>"$TMP/l.bad.err"
		st=$?
		[ "$st" = 2 ] || fail "l: --tls-ca $c: exit $st, want 2: $(cat "$TMP/l.bad.err")"
		grep -q -- "--tls-ca $c" "$TMP/l.bad.err" ||
			fail "l: --tls-ca $c: the error does not name it: $(cat "$TMP/l.bad.err")"
		expect_clean
	done
	ugen 4 >"$TMP/l.src"
	NEAR_OPTS=(--tls-ca "$TMP/l.crt") FAR_OPTS=(--tls --tls-ca "$TMP/l.crt")
	through l "$url" "nats://${NATS_SERVERS%%,*}/fwd.l"
	# The cases after this one want a server without TLS.
	nats_stop_all
	NATS_KIND=
	figure "l: TLS: an untrusted certificate refused in $ms ms (exit 3: $(head -c 120 "$TMP/l.untrusted.err")); with --tls-ca, 4 MiB through, whole"
}

# ---- q. credentials --------------------------------------------------------------
# A server in decentralised mode: an operator, its account with JetStream
# (nats_creds.py makes the keys and the JWTs, signed by openssl). With
# --creds of a user of that account, the transfer goes through; a user of
# an account the operator never signed, the right JWT with another user's
# seed, and no credentials at all are refused at once (exit 5, saying so)
# and leave no pipe; so are a user who may not use the JetStream API (at
# its first request) and one who may not publish to the subject (at its
# first message); a path that is not there, a file that holds no
# credentials and a FIFO are usage errors (exit 2), said before any pipe or
# connection. A far forward stopped by TERM leaves neither its pipe nor
# the state beside it. A user kept from the far side's reports (a help
# only) moves the data as a user of the account does.
case_q() {
	local url W NEAR FAR R c st t0 ms lim refused= NEAR_OPTS FAR_OPTS
	CASE=q N1=$(name q1) N2=$(name q2) STREAM=SHMPIPE_fwd_q
	if ! command -v openssl >/dev/null; then
		echo "$TEST: q: skipped, no openssl to sign the JWTs" >&2
		return 0
	fi
	mkdir -p "$TMP/q"
	python3 "$NATS_CREDS_PY" "$TMP/q" 2>"$TMP/q.make.err" ||
		fail "q: could not make the credentials: $(cat "$TMP/q.make.err")"
	NATS_EXTRA=(-c "$TMP/q/server.conf")
	nats_start_single
	NATS_EXTRA=()
	url=$(nats_url fwd.q)
	for c in stranger forger none narrow; do
		t0=$(now_ms)
		if [ $c = none ]; then
			"$SHMPIPE" forward --create --timeout 10s "$url" "$N2" 2>"$TMP/q.$c.err"
		else
			"$SHMPIPE" forward --create --timeout 10s --creds "$TMP/q/$c.creds" "$url" "$N2" \
				2>"$TMP/q.$c.err"
		fi
		st=$?
		ms=$(($(now_ms) - t0))
		[ "$st" = 5 ] || fail "q: credentials '$c': exit $st, want 5: $(cat "$TMP/q.$c.err")"
		# narrow: refused at its first request, which libnats waits out (5 s).
		lim=5000
		[ $c = narrow ] && lim=8000
		[ $ms -lt $((lim * SLOW)) ] ||
			fail "q: credentials '$c' refused after $ms ms, not at once"
		grep -qi "uthoriz\|Permissions Violation" "$TMP/q.$c.err" ||
			fail "q: credentials '$c' refused without a word of authorization: $(cat "$TMP/q.$c.err")"
		expect_clean
		refused+=" $c $ms ms,"
	done
	# A user who may not publish to the subject: the near side is told at
	# its first message, and stops (it used to wait for acknowledgements).
	"$SHMPIPE" write --quiet "$N1" <<<"refused" 2>"$TMP/q.write.err" &
	W=$!
	wait_for 10 exists "$N1" || fail "q: write did not create $N1"
	t0=$(now_ms)
	timeout -k 2 $((20 * SLOW)) "$SHMPIPE" forward --create --creds "$TMP/q/api.creds" "$N1" "$url" \
		2>"$TMP/q.api.err"
	st=$?
	ms=$(($(now_ms) - t0))
	[ "$st" = 5 ] || fail "q: a near forward that may not publish to the subject: exit $st, want 5: $(cat "$TMP/q.api.err")"
	grep -q "Permissions Violation for Publish to \"fwd.q\"" "$TMP/q.api.err" ||
		fail "q: the near forward's refusal does not say what was refused: $(cat "$TMP/q.api.err")"
	await $T $W
	refused+=" a publication to the subject $ms ms,"
	expect_clean
	# Stopped (TERM) once it made its pipe and its state: neither is left.
	fwd q.term --create --creds "$TMP/q/good.creds" "$url" "$N2"
	FAR=$!
	wait_for $T exists "$N2.forward" || fail "q: the far forward did not make its state$(diag)"
	kill -TERM "$(forward_pid $FAR)"
	await $T $FAR
	expect_clean
	echo "user = me" >"$TMP/q/junk.creds"
	mkfifo "$TMP/q/fifo.creds"
	for c in missing junk fifo; do
		timeout -k 2 $((15 * SLOW)) "$SHMPIPE" forward --create --timeout 10s \
			--creds "$TMP/q/$c.creds" "$url" "$N2" 2>"$TMP/q.$c.err"
		st=$?
		[ "$st" = 2 ] || fail "q: --creds of a $c file: exit $st, want 2: $(cat "$TMP/q.$c.err")"
		grep -q -- "--creds $TMP/q/$c.creds" "$TMP/q.$c.err" ||
			fail "q: --creds of a $c file: the error does not name it: $(cat "$TMP/q.$c.err")"
		expect_clean
	done
	# A user of the account moves the data; so does one kept from the far
	# side's reports (a help only: the near side asks the servers instead),
	# whose refusals the server logs.
	for c in good noreports; do
		ugen 2 >"$TMP/q.$c.src"
		NEAR_OPTS=(--creds "$TMP/q/$c.creds") FAR_OPTS=(--creds "$TMP/q/$c.creds")
		through "q.$c" "$url" "$url"
	done
	grep -q "Violation.*_SHMPIPE" "$TMP/nats1.log" ||
		fail "q: the server never refused the reports of the user kept from them: $(grep -i violation "$TMP/nats1.log" | tail -3)"
	# The cases after this one want a server of their own kind.
	nats_stop_all
	NATS_KIND=
	figure "q: credentials: refused (exit 5):${refused%,}; a missing, a junk and a FIFO --creds: exit 2; stopped by TERM, nothing left; a user of the account, and one kept from the reports: 2 MiB through, whole"
}

KILLS=${FORWARD_KILLS:-8}

for c in $CASES; do
	declare -F "case_$c" >/dev/null || fail "FORWARD_CASES: no case '$c' (a to q)"
	"case_$c"
done
nats_stop_all
exit 0
