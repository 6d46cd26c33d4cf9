# SPDX-License-Identifier: MIT
# What the tests of `shmpipe forward` (a bridge between a pipe and NATS
# JetStream) share: real nats-server processes on 127.0.0.1, one or a
# cluster of three, each with a monitoring port whose JSON tells when
# JetStream is ready and how full a stream is. Sourced after lib.sh, and
# called from the test's main shell (not from a subshell or a pipeline):
# the servers are its children.
#
#   nats_need                skip (77) without nats-server, python3, or a
#                            shmpipe built with NATS support
#   nats_start_single [PORT] one server; sets NATS_SERVERS, NATS_URL
#   nats_start_cluster       three servers in one JetStream cluster, ready
#                            when they agree on a meta leader
#   nats_url SUBJECT         nats://$NATS_SERVERS/SUBJECT, forward's form
#   nats_kill N              kill -9 server N (1 to 3)
#   nats_restart N           start server N again: same ports, same store
#   nats_stop_all            kill -9 every server
#   nats_stream_info STREAM [CONSUMER]
#                            "MESSAGES PENDING ACK_PENDING" of the stream
#                            and of the consumer (or its first one)
#   nats_stream_leader STREAM  the number N of the server leading it
#   nats_stream_replicas STREAM  its configured replicas
#
# Every server gets SIGKILL when this shell ends, however it ends (setpriv
# --pdeathsig where there is one, and the EXIT trap), and its store is
# under $TMP.

NATS_KIND=
NATS_SERVERS=
NATS_URL=
NATS_READY_MS= # how long the last start took
NATS_ROUTES=
NATS_PIDS=()  # server N's pid, N from 1
NATS_PORT=()  # its client port
NATS_CPORT=() # its cluster port
NATS_MPORT=() # its monitoring (HTTP) port
NATS_EXTRA=() # more options for the servers started next (TLS, for one)
# A cluster was ready in 1.4 to 2.9 s here; sanitizers do not slow the
# servers, but a loaded machine does.
NATS_READY_S=${NATS_READY_S:-30}

nats_need() {
	local st
	command -v nats-server >/dev/null || skip "no nats-server"
	command -v python3 >/dev/null || skip "no python3 (to read the servers' monitoring JSON)"
	"$SHMPIPE" forward --help >"$TMP/nats_need" 2>&1
	st=$?
	grep -q "built without NATS support" "$TMP/nats_need" &&
		skip "this shmpipe was built without NATS support"
	[ "$st" = 0 ] || skip "'shmpipe forward --help' exited $st: $(head -3 "$TMP/nats_need")"
}

_nats_port_free() {
	python3 - "$1" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
EOF
}

# nats_free_port: a loopback TCP port nobody listens on. Random in 20000 to
# 32767 (below Linux's ephemeral ports, where outgoing connections take
# theirs), so that tests running at once rarely pick the same; never one
# this test handed out before. A server that still loses the race fails to
# start, and the start functions then try other ports.
nats_free_port() {
	local port i
	for ((i = 0; i < 500; i++)); do
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 12768))
		grep -qx "$port" "$TMP/nats_ports" 2>/dev/null && continue
		_nats_port_free "$port" || continue
		echo "$port" >>"$TMP/nats_ports"
		echo "$port"
		return 0
	done
	echo "nats_free_port: found no free port" >&2
	return 1
}

# _nats_http PORT PATH: the body of http://127.0.0.1:PORT/PATH.
_nats_http() {
	python3 - "$1" "$2" <<'EOF' 2>/dev/null
import sys, urllib.request, urllib.error
url = "http://127.0.0.1:%s/%s" % (sys.argv[1], sys.argv[2].lstrip("/"))
try:
    with urllib.request.urlopen(url, timeout=2) as r:
        sys.stdout.write(r.read().decode())
except urllib.error.HTTPError as e:  # /healthz says 503 while not ready
    sys.stdout.write(e.read().decode())
    sys.exit(1)
EOF
}

# _nats_launch N: starts server N in the background, its log appended to
# $TMP/natsN.log.
_nats_launch() {
	local n=$1 wrap=() args
	args=(-js -a 127.0.0.1 -p "${NATS_PORT[n]}" -m "${NATS_MPORT[n]}"
		--server_name "n$n" -sd "$TMP/js$n" "${NATS_EXTRA[@]}")
	[ "$NATS_KIND" = cluster ] &&
		args+=(--cluster_name c1 --cluster "nats://127.0.0.1:${NATS_CPORT[n]}"
			--routes "$NATS_ROUTES")
	# Killed with this shell even if it gets SIGKILL (a ctest timeout).
	setpriv --pdeathsig KILL true 2>/dev/null && wrap=(setpriv --pdeathsig KILL)
	echo "=== $(date +%T.%N) start: nats-server ${args[*]}" >>"$TMP/nats$n.log"
	"${wrap[@]}" nats-server "${args[@]}" >>"$TMP/nats$n.log" 2>&1 &
	NATS_PIDS[n]=$!
}

_nats_alive() {
	[ -n "${NATS_PIDS[$1]:-}" ] && kill -0 "${NATS_PIDS[$1]}" 2>/dev/null
}

# _nats_healthy N: server N answers, with JetStream ready (/healthz is
# {"status":"ok"} only then). NATS_HEALTHZ_QUERY=?js-server-only=true
# leaves out its streams and consumers: 2.9's /healthz can find an idle
# consumer on a restarted server "not current" for minutes.
_nats_healthy() {
	_nats_http "${NATS_MPORT[$1]}" "healthz${NATS_HEALTHZ_QUERY:-}" | grep -q '"status": *"ok"'
}

# _nats_meta_leader N: the meta leader server N knows of, if any.
_nats_meta_leader() {
	_nats_http "${NATS_MPORT[$1]}" jsz | python3 -c '
import json, sys
j = json.load(sys.stdin)
print((j.get("meta_cluster") or {}).get("leader", ""))' 2>/dev/null
}

# _nats_ready N...: each server is up and healthy and, in a cluster, they
# all name the same meta leader.
_nats_ready() {
	local n leader='' l
	for n in "$@"; do
		_nats_alive "$n" || return 2
		_nats_healthy "$n" || return 1
		[ "$NATS_KIND" = cluster ] || continue
		l=$(_nats_meta_leader "$n")
		[ -n "$l" ] || return 1
		[ -z "$leader" ] || [ "$l" = "$leader" ] || return 1
		leader=$l
	done
}

# _nats_wait_ready N...: waits until _nats_ready; 0, or 1 if a server died
# (its port taken, most likely: see its log), or 2 on timeout.
_nats_wait_ready() {
	local tenths=$((NATS_READY_S * 10 * SLOW)) st
	while :; do
		_nats_ready "$@"
		st=$?
		[ "$st" = 0 ] && return 0
		[ "$st" = 2 ] && return 1
		tenths=$((tenths - 1))
		[ "$tenths" -gt 0 ] || return 2
		sleep 0.1
	done
}

_nats_log_tail() {
	local n
	for n in "$@"; do
		echo "--- server $n:"
		tail -n 15 "$TMP/nats$n.log" 2>/dev/null
	done
}

# _nats_start COUNT [PORT]: starts COUNT servers on fresh ports (the first
# try of a single one on PORT if given) until they come up (three tries:
# another test may have taken a port first).
_nats_start() {
	local count=$1 try n nodes st t0
	nodes=$(seq 1 "$count")
	for try in 1 2 3; do
		NATS_SERVERS='' NATS_ROUTES=''
		for n in $nodes; do
			if [ -n "${2:-}" ] && [ "$try" = 1 ]; then
				NATS_PORT[n]=$2
			else
				NATS_PORT[n]=$(nats_free_port) || fail "no free port"
			fi
			NATS_MPORT[n]=$(nats_free_port) || fail "no free port"
			NATS_SERVERS+=${NATS_SERVERS:+,}127.0.0.1:${NATS_PORT[n]}
			if [ "$NATS_KIND" = cluster ]; then
				NATS_CPORT[n]=$(nats_free_port) || fail "no free port"
				NATS_ROUTES+=${NATS_ROUTES:+,}nats://127.0.0.1:${NATS_CPORT[n]}
			fi
		done
		t0=$(date +%s%N)
		for n in $nodes; do
			rm -rf "$TMP/js$n"
			_nats_launch "$n"
		done
		_nats_wait_ready $nodes
		st=$?
		if [ "$st" = 0 ]; then
			NATS_READY_MS=$((($(date +%s%N) - t0) / 1000000))
			NATS_URL=nats://$NATS_SERVERS
			export NATS_SERVERS NATS_URL
			return 0
		fi
		[ "$st" = 2 ] && fail "nats-server not ready after ${NATS_READY_S}s: $(_nats_log_tail $nodes)"
		nats_stop_all
		grep -q "address already in use" "$TMP"/nats[1-3].log ||
			fail "nats-server died while starting: $(_nats_log_tail $nodes)"
		echo "$TEST: a port was taken: nats-server starts again on others" >&2
	done
	fail "nats-server could not start: $(_nats_log_tail $nodes)"
}

# nats_start_single [PORT]: one JetStream server, on PORT if given (from
# nats_free_port: a client may already be trying it); sets
# NATS_URL=nats://127.0.0.1:PORT.
nats_start_single() {
	nats_stop_all
	NATS_KIND=single
	_nats_start 1 "${1:-}"
}

# nats_start_cluster: the JetStream cluster c1 of n1, n2 and n3, ready
# when all three agree on a meta leader (in NATS_READY_MS milliseconds);
# NATS_SERVERS=127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3.
nats_start_cluster() {
	nats_stop_all
	NATS_KIND=cluster
	_nats_start 3
}

# nats_url SUBJECT: the URL forward takes for SUBJECT on these servers.
nats_url() {
	echo "nats://$NATS_SERVERS/$1"
}

# nats_kill N: kill -9 of server N.
nats_kill() {
	local pid=${NATS_PIDS[$1]:-}
	[ -n "$pid" ] || return 0
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	NATS_PIDS[$1]=
	return 0
}

# nats_restart N: starts server N again with its ports and its store, and
# waits until it runs JetStream again (in a cluster: until it agrees with
# the others on the meta leader; its streams may still be catching up).
# Its port may have been taken while it was down: then it fails.
nats_restart() {
	local n=$1 others=() k NATS_HEALTHZ_QUERY='?js-server-only=true'
	nats_kill "$n"
	_nats_launch "$n"
	_nats_wait_ready "$n" || fail "server $n did not come back: $(_nats_log_tail "$n")"
	# In a cluster, ready again when all that run agree on a leader.
	for k in "${!NATS_PIDS[@]}"; do
		_nats_alive "$k" && others+=("$k")
	done
	_nats_wait_ready "${others[@]}" || fail "the cluster did not take server $n back: $(_nats_log_tail "${others[@]}")"
}

nats_stop_all() {
	local n
	for n in "${!NATS_PIDS[@]}"; do
		nats_kill "$n"
	done
	return 0
}

# _nats_jsz: stream and consumer details from every running server, one
# JSON document a line, prefixed with the server's number.
_nats_jsz() {
	local n
	for n in "${!NATS_PIDS[@]}"; do
		_nats_alive "$n" || continue
		echo "$n $(_nats_http "${NATS_MPORT[n]}" 'jsz?accounts=true&streams=true&consumers=true&config=true' | tr -d '\n')"
	done
}

# _nats_stream_py FIELDS STREAM [CONSUMER]: what the server leading STREAM
# (or any that knows it) says of it.
_nats_stream_py() {
	_nats_jsz | python3 -c '
import json, sys
what, stream, consumer = sys.argv[1], sys.argv[2], (sys.argv[3:] or [None])[0]
best = None
for line in sys.stdin:
    n, _, doc = line.partition(" ")
    try:
        j = json.loads(doc)
    except ValueError:
        continue
    for acc in j.get("account_details") or []:
        for s in acc.get("stream_detail") or []:
            if s.get("name") != stream:
                continue
            leads = (s.get("cluster") or {}).get("leader") in (None, j.get("server_name"))
            if best is None or (leads and not best[0]):
                best = (leads, int(n), s)
if best is None:
    sys.exit(1)
_, n, s = best
if what == "leader":
    print(n)
    sys.exit(0)
if what == "replicas":
    print((s.get("config") or {}).get("num_replicas", ""))
    sys.exit(0)
if what == "delivered":
    for c in s.get("consumer_detail") or []:
        if c.get("name") == consumer:
            print((c.get("delivered") or {}).get("consumer_seq", 0))
            sys.exit(0)
    sys.exit(1)
found = None
for c in s.get("consumer_detail") or []:
    if consumer is None or c.get("name") == consumer:
        found = c
        break
if found is None and consumer is not None:
    sys.exit(1)
found = found or {}
print(s["state"]["messages"], found.get("num_pending", 0), found.get("num_ack_pending", 0))
' "$@"
}

# nats_consumer_delivered STREAM CONSUMER: the consumer's last delivery
# sequence (deliveries so far, to anyone).
nats_consumer_delivered() {
	_nats_stream_py delivered "$1" "$2"
}

# nats_stream_info STREAM [CONSUMER]: "MESSAGES PENDING ACK_PENDING": the
# messages the stream holds, and of them those the consumer (named, or the
# stream's first; 0 0 if it has none) has not had yet and has had but not
# acknowledged. Fails when no running server knows the stream, or the
# named consumer.
nats_stream_info() {
	_nats_stream_py info "$@"
}

# nats_stream_leader STREAM: the number of the server leading the stream.
nats_stream_leader() {
	_nats_stream_py leader "$1"
}

# nats_stream_replicas STREAM: its configured number of replicas.
nats_stream_replicas() {
	_nats_stream_py replicas "$1"
}

# Every process this script started, children of children too (a server
# or a forward started from a subshell): lib.sh's cleanup only kills the
# shell's own children.
_nats_descendants() {
	local p
	for p in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		echo "$p"
		_nats_descendants "$p"
	done
}

nats_cleanup() {
	local pids
	{
		nats_stop_all
		pids=$(_nats_descendants $$)
		[ -n "$pids" ] && kill -9 $pids
		# Quietly: no "Killed" line for each job.
		wait
	} 2>/dev/null
	# A forward that outlived its subshell is no descendant any more, and
	# would hold ctest's output open until the test's timeout.
	pids=$(pgrep -f -- "forward.* /$PREFIX-")
	if [ -n "$pids" ]; then
		echo "$TEST: killed forwards left running: $pids" >&2
		kill -9 $pids 2>/dev/null
	fi
	cleanup
}
trap nats_cleanup EXIT
