#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The JetStream bridge against plain libnats, on one server, in one run:
# records/s and MB/s of
#
#   bridge: jspair --gen -> ring -> shmpipe forward -> JetStream
#           -> shmpipe forward -> ring -> jspair --drain
#   ids:    jspair's libnats publisher -> JetStream -> its pull consumer,
#           each message with a Nats-Msg-Id
#   no ids: the same pair, without the ids
#
# for records of 64 B and 4 KiB, each with the same window W of
# unacknowledged messages (the publisher's in-flight publishes, the
# consumer's MaxAckPending and fetch batch) and the same kind of stream (file
# storage, one replica). The target is a bridge at 0.8 times the plain pair
# or better, the pair doing the JetStream work the bridge must do: a message
# id on every message, which a publisher that may send a message again
# needs for JetStream to store it once (the bridge's contract asks for it;
# JetStream charges for it, about a seventh at 64 B here). The pair without
# ids is JetStream's bare speed, and the table gives the ratio to it too.
#
#   bench/nats.sh [--rounds N] [--count N] [--window W] [--quick]
#                 [--shmpipe PATH] [--bin DIR] [--work-queue] [--hold N]
#                 [--out FILE]
#
#   --rounds N     interleaved rounds (default 5): each round runs the pair
#                  with ids, the pair without, then the bridge, for each
#                  size, so that a change in the machine's load touches all
#                  alike
#   --count N      records per run, for both sizes (default 100000 of 64 B
#                  and 40000 of 4 KiB: about 1 to 3 s each here)
#   --window W     messages in flight (default 256)
#   --quick        one round of tiny counts: checks that everything runs,
#                  not a measurement
#   --shmpipe PATH the CLI (default build-bench/cli/shmpipe, else
#                  build/cli/shmpipe)
#   --bin DIR      where jspair is (default the bench/ next to the CLI)
#   --work-queue   the pair with ids on a work queue (the server deletes
#                  each message once it is acknowledged): the kind of
#                  stream the bridge used to make
#   --hold N       the plain publishers wait while N messages they published
#                  are not yet taken by their consumer, as the bridge's near
#                  side does (its bound is four windows: 1024 by default)
#   --out FILE     also write every run's line (bench.h's format, the round
#                  first), whose note gives the longest wait between two
#                  arrivals: a stall such as a pull request sitting until it
#                  expires shows there
#
# It starts its own nats-server -js on a free loopback port, its store in a
# temporary directory, and stops it on exit. Each bridge run gets a stream
# of its own (deleted afterwards), so each starts empty; the plain pairs
# recreate their stream every run, and delete it afterwards too. Every
# record's length and number are checked at the far end. The table gives
# the median of the rounds for each, and the ratios of the medians. Exit
# status: 0, 1 if a run failed, 77 if nats-server or jspair is missing. A
# shmpipe built without `forward` leaves the bridge's column as n/a.
set -uo pipefail
here=$PWD
cd "$(dirname "$0")/.." || exit 1

rounds=5
count=
window=256
quick=0
shmpipe=
bin=
queue=
hold=
out=
ring=8M
limit=300
sizes=(64 4096)
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) rounds=$2; shift 2 ;;
	--count) count=$2; shift 2 ;;
	--window) window=$2; shift 2 ;;
	--quick) quick=1; rounds=1; shift ;;
	--shmpipe) shmpipe=$2; shift 2 ;;
	--bin) bin=$2; shift 2 ;;
	--work-queue) queue=--work-queue; shift ;;
	--hold) hold="--hold $2"; shift 2 ;;
	--out) out=$2; shift 2 ;;
	*) sed -n '2,56p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
done
# Paths given are the caller's, from where it called; the defaults the tree's.
for v in shmpipe bin out; do
	case ${!v} in
	"" | /*) ;;
	*) printf -v "$v" '%s/%s' "$here" "${!v}" ;;
	esac
done
if [ -z "$shmpipe" ]; then
	shmpipe=build-bench/cli/shmpipe
	[ -x "$shmpipe" ] || shmpipe=build/cli/shmpipe
fi
bin=${bin:-$(dirname "$(dirname "$shmpipe")")/bench}
jspair=$bin/jspair

count_for() {
	if [ -n "$count" ]; then
		echo "$count"
	elif [ "$quick" = 1 ]; then
		[ "$1" -le 64 ] && echo 2000 || echo 500
	else
		[ "$1" -le 64 ] && echo 100000 || echo 40000
	fi
}

command -v nats-server >/dev/null || { echo "nats.sh: no nats-server (apt-get install nats-server)" >&2; exit 77; }
[ -x "$jspair" ] || { echo "nats.sh: no $jspair (libnats-dev, then build the jspair target)" >&2; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/shmpipe-nats.XXXXXX")
server=
pids=()
# shellcheck disable=SC2317 # called by the trap
cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	if [ -n "$server" ]; then
		kill "$server" 2>/dev/null
		wait "$server" 2>/dev/null
	fi
	rm -f /dev/shm/jsb-$$-*
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Port -1: the server picks a free one, and says which in its log.
nats-server -js -a 127.0.0.1 -p -1 -sd "$tmp/store" -l "$tmp/server.log" &
server=$!
port=
for _ in $(seq 100); do
	port=$(sed -n 's/.*Listening for client connections on 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
		"$tmp/server.log" 2>/dev/null)
	[ -n "$port" ] && grep -q "Server is ready" "$tmp/server.log" && break
	kill -0 "$server" 2>/dev/null || break
	port=
	sleep 0.1
done
if [ -z "$port" ]; then
	echo "nats.sh: nats-server did not start:" >&2
	tail -5 "$tmp/server.log" >&2
	exit 1
fi
url=nats://127.0.0.1:$port

# Whether this shmpipe has `forward`, with NATS: an older one calls the
# command unknown, one built without libnats says so.
bridge=1
why=
if [ ! -x "$shmpipe" ]; then
	bridge=0 why="no $shmpipe"
elif ! probe=$("$shmpipe" forward --help 2>&1) || grep -qi "unknown command\|without NATS" <<<"$probe"; then
	bridge=0 why="shmpipe built without forward"
fi

# Runs a command in the background, remembered for the cleanup.
spawn() {
	"$@" &
	pids+=($!)
}

# Waits for /dev/shm/NAME to appear while the process PID lives (10 s).
wait_name() {
	for _ in $(seq 1000); do
		[ -e "/dev/shm$1" ] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.01
	done
	return 1
}

# The value (Krecords/s) of the jspair line in the file $1; the line to --out.
value_of() {
	[ -z "$out" ] || awk -v r="$r" '$1 == "jetstream" { print r "\t" $0 }' "$1" >>"$out"
	awk -F'\t' '$1 == "jetstream" { print $4 }' "$1"
}

# run_plain SIZE COUNT [OPTIONS]: sets val to the Krecords/s (empty on
# failure); OPTIONS, jspair's (--msg-id, --work-queue), in one word.
run_plain() {
	local ok=1

	val=
	# In the background, so that a signal to this script stops it at once.
	# shellcheck disable=SC2086 # options and hold: split on purpose
	spawn "$jspair" --url "$url" --stream JSB_PLAIN --subject jsb.plain --count "$2" \
		--size "$1" --window "$window" --create ${3:-} $hold >"$tmp/plain.out" 2>"$tmp/plain.err"
	wait "$!" || ok=0
	pids=()
	# Gone before the next run, as the bridge's stream is after each of its
	# runs: each side starts on a server holding nothing (the plain pair's
	# stream of 160 MB after 4 KiB records used to stay through the bridge's
	# next run).
	"$jspair" --url "$url" --stream JSB_PLAIN --delete 2>/dev/null
	if [ "$ok" = 0 ]; then
		sed 's/^/  plain: /' "$tmp/plain.err" >&2
		return 1
	fi
	val=$(value_of "$tmp/plain.out")
}

# run_bridge SIZE COUNT ROUND: sets val to the Krecords/s (empty on failure).
# The forwards run under timeout(1): nothing else would stop a hung one.
run_bridge() {
	local size=$1 n=$2 tag=r$3s$1
	local subj=jsb.$tag stream=JSB_$tag src=/jsb-$$-$tag-in dst=/jsb-$$-$tag-out
	local far="" gen="" drain="" near="" ok=1 p

	val=
	rm -f "$tmp"/bridge.*
	# The far end first: it creates the stream, its consumer and the pipe.
	spawn timeout -k 5 "$limit" "$shmpipe" forward --quiet --create --records --size "$ring" \
		--window "$window" --stream "$stream" "$url/$subj" "$dst" 2>"$tmp/bridge.far.err"
	far=$!
	if wait_name "$dst" "$far"; then
		spawn "$jspair" --drain "$dst" --count "$n" --size "$size" --window "$window" \
			>"$tmp/bridge.out" 2>"$tmp/bridge.drain.err"
		drain=$!
		spawn "$jspair" --gen "$src" --count "$n" --size "$size" --ring "$ring" \
			2>"$tmp/bridge.gen.err"
		gen=$!
		if wait_name "$src" "$gen"; then
			spawn timeout -k 5 "$limit" "$shmpipe" forward --quiet --create \
				--window "$window" --stream "$stream" "$src" "$url/$subj" \
				2>"$tmp/bridge.near.err"
			near=$!
			wait "$near" || ok=0
		else
			ok=0
		fi
		# After a failure the others would wait for a peer in vain: stop them.
		[ "$ok" = 1 ] || kill "$gen" "$drain" "$far" 2>/dev/null
		wait "$gen" || ok=0
		[ "$ok" = 1 ] || kill "$drain" "$far" 2>/dev/null
		wait "$drain" || ok=0
	else
		ok=0
	fi
	[ "$ok" = 1 ] || kill "$far" 2>/dev/null
	wait "$far" || ok=0
	pids=()
	rm -f "/dev/shm$src" "/dev/shm$dst"
	"$jspair" --url "$url" --stream "$stream" --delete 2>/dev/null
	if [ "$ok" = 0 ]; then
		for p in far near gen drain; do
			[ -s "$tmp/bridge.$p.err" ] && sed "s/^/  bridge $p: /" "$tmp/bridge.$p.err" >&2
		done
		return 1
	fi
	val=$(value_of "$tmp/bridge.out")
}

median() {
	tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g |
		awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2];
			else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

declare -A res
failed=0
[ -z "$out" ] || : >"$out" || exit 1
echo "nats-server $(nats-server --version | sed 's/.*v//') at $url, window $window," \
	"$rounds interleaved rounds, $(nproc) CPUs${queue:+, the pair with ids on a work queue}${hold:+, plain held at ${hold#--hold }}"
[ "$bridge" = 1 ] || echo "bridge: n/a ($why)"
for ((r = 1; r <= rounds; r++)); do
	line="round $r:"
	for s in "${sizes[@]}"; do
		n=$(count_for "$s")
		for k in ids noids; do
			opts=
			[ "$k" = noids ] || opts="--msg-id $queue"
			if run_plain "$s" "$n" "$opts" && [ -n "$val" ]; then
				res[$k.$s]+="$val "
				line+=" $k/$s $val"
			else
				failed=1
				line+=" $k/$s FAILED"
			fi
		done
		[ "$bridge" = 1 ] || continue
		if run_bridge "$s" "$n" "$r" && [ -n "$val" ]; then
			res[bridge.$s]+="$val "
			line+=" bridge/$s $val"
		else
			failed=1
			line+=" bridge/$s FAILED"
		fi
	done
	echo "$line Krecords/s"
done
"$jspair" --url "$url" --stream JSB_PLAIN --delete 2>/dev/null

echo
echo "K records/s (medians); the target: the bridge at 0.8x the pair with ids"
printf '%-6s %8s %10s %10s %10s %9s %9s %12s  %s\n' size records "with ids" "no ids" bridge \
	"b/ids" "b/no ids" "bridge MB/s" "target 0.8x"
for s in "${sizes[@]}"; do
	i=$(median "${res[ids.$s]:-}")
	p=$(median "${res[noids.$s]:-}")
	b=$(median "${res[bridge.$s]:-}")
	awk -v s="$s" -v n="$(count_for "$s")" -v i="$i" -v p="$p" -v b="$b" '
	function f(v) { return v == "" ? "n/a" : sprintf("%.1f", v) }
	function q(x, y) { return (x == "" || y == "") ? "n/a" : sprintf("%.2f", x / y) }
	BEGIN {
		met = (i == "" || b == "") ? "-" : (b / i >= 0.8 ? "met" : "missed")
		printf "%-6s %8s %10s %10s %10s %9s %9s %12s  %s\n", s, n, f(i), f(p), f(b),
			q(b, i), q(b, p), b == "" ? "n/a" : sprintf("%.1f", b * s / 1000), met
	}'
done
[ "$bridge" = 1 ] || echo "bridge: n/a ($why)"
exit "$failed"
