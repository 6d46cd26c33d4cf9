#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the whole comparison suite in one go and writes a Markdown table, the
# raw measurements and PNG plots.
#
#   bench/run.sh [--build DIR] [--no-build] [--rounds N] [--quick] [--out DIR]
#                [--only GROUPS]
#
# Every case runs once per round and the rounds are interleaved (round 1:
# A B C ..., round 2: A B C ...), so that a burst of noise on a shared
# machine hits every implementation alike rather than all runs of one.
# Ratios are taken within a round, then summarised: on a noisy machine the
# ratios mean more than the absolute figures.
#
#   --build DIR  build directory (default build-bench), configured in Release
#                unless it already has a CMake cache
#   --no-build   use the programs already in DIR/bench
#   --rounds N   rounds (default 5)
#   --quick      one round of tiny volumes: checks that everything runs and
#                parses (the ctest smoke test), not a measurement
#   --out DIR    where results go (default DIR/bench-results)
#   --only GROUPS  a comma-separated subset of bulk, items, records, latency,
#                backpressure, big (system calls and memory), node, poll (one
#                thread with epoll over 1, 8, 64 pipes, the round trip
#                through epoll, the notice of a killed peer), fanout (one
#                writer, 1, 2, 4 readers each getting the whole stream:
#                a broadcast pipe, pipe(2)s written N times, tee(1); and
#                work-sharing to 1, 2, 4 workers): for
#                iterating on one part of the library
#
# Output in --out: results.md (the tables, with a description of the
# machine), raw.tsv (every measurement, one line each: round, bench, impl,
# case, value, unit, note), machine.txt, and bulk.png, items.png,
# latency.png, poll.png when gnuplot is installed. Peers whose headers were
# missing at build time (ck_ring, boost, ZeroMQ, nng), perf, node and
# gnuplot are skipped with a note.
set -uo pipefail
cd "$(dirname "$0")/.."

build=build-bench
rounds=5
quick=0
dobuild=1
out=
all_groups=bulk,items,records,latency,backpressure,big,node,poll,fanout
only=$all_groups
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--quick) quick=1; rounds=1; shift ;;
	--no-build) dobuild=0; shift ;;
	--out) out=$2; shift 2 ;;
	--only) only=$2; shift 2 ;;
	*) sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
done
out=${out:-$build/bench-results}
bin=$build/bench

if [ "$dobuild" = 1 ]; then
	if [ ! -f "$build/CMakeCache.txt" ]; then
		# Warnings are the CI's business; a measurement should not fail on a
		# new compiler's opinion of the library's code.
		cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSHMPIPE_WERROR=OFF \
			-DSHMPIPE_BUILD_TESTS=OFF -DSHMPIPE_BUILD_EXAMPLES=OFF >/dev/null ||
			{ echo "run.sh: cmake configure failed" >&2; exit 1; }
	fi
	cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null ||
		{ echo "run.sh: build failed" >&2; exit 1; }
fi
for p in bulk items messages latency backpressure poll fanout; do
	[ -x "$bin/$p" ] || { echo "run.sh: $bin/$p is missing" >&2; exit 1; }
done
mkdir -p "$out"
# Nothing from an earlier run may pass for this one's.
rm -f "$out"/bulk.png "$out"/items.png "$out"/latency.png "$out"/poll.png "$out"/bulk-*.dat \
	"$out"/items.dat "$out"/latency.dat "$out"/poll-*.dat "$out"/plots.gp "$out"/results.md
raw=$out/raw.tsv
: >"$raw"
errors=$out/errors.txt
: >"$errors"

# The machine, as the results should describe it.
{
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "cpus: $(nproc) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'))"
	echo "kernel: $(uname -sr)"
	echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
	echo "compiler: $(grep -m1 CMAKE_C_COMPILER: "$build/CMakeCache.txt" 2>/dev/null | cut -d= -f2) $(grep -m1 CMAKE_BUILD_TYPE: "$build/CMakeCache.txt" 2>/dev/null | cut -d= -f2)"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "pipe-max-size: $(cat /proc/sys/fs/pipe-max-size 2>/dev/null || echo ?)"
	echo "mqueue msg_max: $(cat /proc/sys/fs/mqueue/msg_max 2>/dev/null || echo ?)"
	echo "rounds: $rounds$([ "$quick" = 1 ] && echo ' (quick: tiny volumes, not a measurement)')"
} >"$out/machine.txt"

# Volumes: large enough that each case runs for a few tenths of a second at
# full size, scaled by the write size (a 64-byte write to a pipe costs about
# a microsecond), tiny in --quick mode.
if [ "$quick" = 1 ]; then
	bulk_bytes() { echo 2M; }
	items1=100K itemsb=1M recs=20K nng_recs=1K trips=2000 bp_seconds=0.2 big=64M node_items=20000
	poll_bytes=4M poll_recs=20K dead_reps=3 fanout_bytes=4M share_records=2K
else
	bulk_bytes() {
		case $1 in
		64) echo 16M ;; 1K) echo 128M ;; 16K) echo 512M ;; *) echo 1G ;;
		esac
	}
	# nng hands each message to its own threads (several context switches
	# per message): a twentieth of the records keeps its cells near 2 s.
	items1=5M itemsb=50M recs=500K nng_recs=25K trips=20000 bp_seconds=1 big=10G node_items=500000
	poll_bytes=512M poll_recs=500K dead_reps=9 fanout_bytes=1G share_records=200K
fi
have_boost=0
[ -x "$bin/items_boost" ] && have_boost=1
have_ck=1
"$bin/items" --impl ck --items 1 >/dev/null 2>&1
[ $? = 77 ] && have_ck=0
have_zmq=0
[ -x "$bin/zmq" ] && have_zmq=1
have_nng=0
[ -x "$bin/nng" ] && have_nng=1
have_perf=0
# The system calls a wait or a wake-up can make: futex, the doorbell's
# write (pwritev2), read and poll, and the waiter's membarrier.
wake_events=syscalls:sys_enter_futex,syscalls:sys_enter_pwritev2,syscalls:sys_enter_write
wake_events=$wake_events,syscalls:sys_enter_read,syscalls:sys_enter_poll,syscalls:sys_enter_membarrier
command -v perf >/dev/null &&
	perf stat -x, -e raw_syscalls:sys_enter,syscalls:sys_enter_sched_yield,$wake_events true \
		>/dev/null 2>&1 && have_perf=1
node_script=bench/node/int32.js
have_node=0
command -v node >/dev/null && [ -f "$node_script" ] && have_node=1
{
	[ "$have_ck" = 1 ] || echo "ck_ring: not built (no ck_ring.h; Debian: libck-dev)"
	[ "$have_boost" = 1 ] || echo "boost spsc_queue: not built (no C++ compiler or boost/lockfree; Debian: g++ libboost-dev)"
	[ "$have_zmq" = 1 ] || echo "ZeroMQ PUSH/PULL: not built (no zmq.h or libzmq; Debian: libzmq3-dev)"
	[ "$have_nng" = 1 ] || echo "nng push0/pull0: not built (no nng headers or libnng; Debian: libnng-dev)"
	[ "$have_perf" = 1 ] || echo "system calls per GiB: n/a (perf with the raw_syscalls and syscalls tracepoints is not available)"
	[ "$have_node" = 1 ] || echo "Node.js rows: skipped (node or $node_script not found)"
} >"$out/skipped.txt"

# Runs one case: appends its bench.h lines, prefixed with the round, to raw.
run() {
	local lines rc
	lines=$("$@" 2>"$out/stderr.tmp")
	rc=$?
	if [ $rc != 0 ]; then
		echo "round $round: $* exited $rc: $(tail -3 "$out/stderr.tmp" | tr '\n' ' ')" >>"$errors"
		return
	fi
	printf '%s\n' "$lines" | grep -E '^(bulk|memory|sleeps|items|records|latency|backpressure|poll|pollrtt|deadpeer|fanout|share)	' |
		sed "s/^/$round	/" >>"$raw"
}

# The futex count of a long steady-state transfer, with its peak RSS: 64 KiB
# writes and reads through a 1 MiB ring, both sides keeping up.
run_big() {
	local perfout=$out/perf.tmp lines
	if [ "$have_perf" = 1 ]; then
		lines=$(perf stat -x, -o "$perfout" \
			-e raw_syscalls:sys_enter,syscalls:sys_enter_sched_yield,$wake_events \
			"$bin/bulk" --impl shmpipe --ring 1M --write 64K --bytes "$big" --rss 2>"$out/stderr.tmp") ||
			{ echo "round $round: big transfer failed: $(tail -3 "$out/stderr.tmp")" >>"$errors"; return; }
		# futex calls (the wake-ups of old), every wait or wake-up system
		# call, and every system call at all (mostly the spin's yields).
		awk -F, -v r="$round" -v b="$(numfmt --from=iec "$big")" '
			$3 ~ /^(raw_)?syscalls:/ && $1 ~ /^[0-9]+$/ {
				n[$3] = $1
				if ($3 != "raw_syscalls:sys_enter" && $3 != "syscalls:sys_enter_sched_yield")
					wake += $1
			}
			END {
				if (!("raw_syscalls:sys_enter" in n)) exit
				gib = b / 1073741824; mib = b / 1048576
				printf "%s\tfutex\tshmpipe\tring=1M write=64K\t%.6g\tcalls/GiB\t%d calls in %.0f MiB\n",
					r, n["syscalls:sys_enter_futex"] / gib, n["syscalls:sys_enter_futex"], mib
				printf "%s\tsyscalls\tshmpipe\twake-ups ring=1M write=64K\t%.6g\tcalls/GiB\t" \
					"futex %d, doorbell writes %d, reads %d, polls %d, membarrier %d in %.0f MiB\n",
					r, wake / gib, n["syscalls:sys_enter_futex"],
					n["syscalls:sys_enter_pwritev2"] + n["syscalls:sys_enter_write"],
					n["syscalls:sys_enter_read"], n["syscalls:sys_enter_poll"],
					n["syscalls:sys_enter_membarrier"], mib
				printf "%s\tsyscalls\tshmpipe\tall ring=1M write=64K\t%.6g\tcalls/GiB\t%d in %.0f MiB\n",
					r, n["raw_syscalls:sys_enter"] / gib, n["raw_syscalls:sys_enter"], mib
				printf "%s\tsyscalls\tshmpipe\tsched_yield ring=1M write=64K\t%.6g\tcalls/GiB\t%d in %.0f MiB\n",
					r, n["syscalls:sys_enter_sched_yield"] / gib, n["syscalls:sys_enter_sched_yield"], mib
			}' "$perfout" >>"$raw"
	else
		lines=$("$bin/bulk" --impl shmpipe --ring 1M --write 64K --bytes "$big" --rss 2>"$out/stderr.tmp") ||
			{ echo "round $round: big transfer failed" >>"$errors"; return; }
	fi
	# Its rate is not a cell of the bulk table (a different volume).
	printf '%s\n' "$lines" | grep -E '^(memory|sleeps)	' | sed "s/^/$round	/" >>"$raw"
}

# The seed's own design in Node.js, on the same Int32 workload: one JSON line.
run_node() {
	local impl=$1 json
	json=$(timeout 120 node "$node_script" --impl "$impl" --items "$node_items" 2>"$out/stderr.tmp" | tail -1)
	# The Node.js rows are optional (the addon may not be built): a failure
	# is noted once among the skipped rows, not counted as an error.
	if [ -z "$json" ]; then
		grep -q "^Node.js --impl $impl:" "$out/skipped.txt" ||
			echo "Node.js --impl $impl: no result ($(tail -1 "$out/stderr.tmp"))" >>"$out/skipped.txt"
		return
	fi
	printf '%s\n' "$json" | python3 -c '
import json, sys
d = json.loads(sys.stdin.readline())
note = "max timer lag %s ms" % d.get("max_timer_lag_ms", "?")
print("%s\titems\tnode_%s\tbatch=1\t%.6g\tMitems/s\t%s" % (sys.argv[1], d["impl"], float(d["mitems_per_s"]), note))
' "$round" >>"$raw" 2>/dev/null ||
		echo "round $round: node --impl $impl: unreadable output: $json" >>"$errors"
}

# Whether group $1 is to run.
want() {
	case ",$only," in *",$1,"*) return 0 ;; *) return 1 ;; esac
}

start=$(date +%s)
for round in $(seq "$rounds"); do
	echo "round $round of $rounds ($(($(date +%s) - start)) s so far)" >&2
	# Other work on the machine is the main source of noise: keep a trace.
	echo "load average before round $round: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
	want bulk && for ring in 64K 1M 16M; do
		for w in 64 1K 16K 64K 1M; do
			bytes=$(bulk_bytes $w)
			for impl in shmpipe shmpipe_zc pipe socketpair memcpy; do
				run "$bin/bulk" --impl $impl --ring $ring --write $w --bytes "$bytes"
			done
			# The message transports: 64 KiB messages, their queues holding
			# a ring's worth (ZeroMQ's high-water marks, nng's buffers).
			[ $w = 64K ] && [ $ring != 64K ] || continue
			if [ "$have_zmq" = 1 ]; then
				for tr in ipc inproc; do
					run "$bin/zmq" --transport $tr --test bulk --ring $ring --write $w --bytes "$bytes"
				done
			fi
			[ "$have_nng" = 1 ] &&
				run "$bin/nng" --transport ipc --test bulk --ring $ring --write $w --bytes "$bytes"
		done
	done
	want items && for b in 1 1024; do
		n=$items1
		[ $b = 1 ] || n=$itemsb
		run "$bin/items" --impl shmpipe --batch $b --items $n
		run "$bin/items" --impl rigtorp --batch $b --items $n
		[ "$have_ck" = 1 ] && run "$bin/items" --impl ck --batch $b --items $n
		[ "$have_boost" = 1 ] && run "$bin/items_boost" --batch $b --items $n
	done
	want items && run "$bin/items" --impl shmpipe_rbuf --batch 1 --items $items1
	if want node && [ "$have_node" = 1 ]; then
		run_node seed
		run_node addon
	fi
	want records && for size in 64 4096; do
		for impl in shmpipe mq seqpacket; do
			run "$bin/messages" --impl $impl --size $size --count $recs
		done
		if [ "$have_zmq" = 1 ]; then
			for tr in ipc inproc; do
				run "$bin/zmq" --transport $tr --test records --size $size --count $recs
			done
		fi
		[ "$have_nng" = 1 ] &&
			run "$bin/nng" --transport ipc --test records --size $size --count $nng_recs
	done
	want latency && for impl in shmpipe_sleep shmpipe_spin futex pipe; do
		run "$bin/latency" --impl $impl --trips $trips
	done
	want backpressure && run "$bin/backpressure" --seconds $bp_seconds
	want big && run_big
	# One thread with epoll over N pipes (64 KiB each), calling until EAGAIN
	# on every event; one thread with blocking calls on the other ends.
	# shmpipe_fenced: the same with SHMPIPE_NO_BARRIER=1 (no membarrier).
	want poll && for t in bulk records; do
		for side in read write; do
			for n in 1 8 64; do
				for impl in shmpipe shmpipe_fenced pipe socketpair; do
					run "$bin/poll" --test $t --impl $impl --side $side --pipes $n \
						--et --bytes "$poll_bytes" --count "$poll_recs"
				done
			done
		done
	done
	want poll && for loop in first lt; do
		for impl in shmpipe shmpipe_fenced pipe; do
			run "$bin/poll" --test rtt --impl $impl --loop $loop --trips $trips
		done
	done
	want poll && for impl in shmpipe pipe; do
		run "$bin/poll" --test deadpeer --impl $impl --reps $dead_reps
	done
	# One writer, N reader threads, each reader gets every byte (64 KiB
	# writes, 1 MiB rings or pipes).
	want fanout && for n in 1 2 4; do
		for impl in shmpipe pipes tee; do
			run "$bin/fanout" --impl $impl --readers $n --bytes "$fanout_bytes"
		done
	done
	# Work-sharing: 64-byte records, each taken by one of N workers that
	# works 5 us on it; and with no work, the dealing itself.
	want fanout && for us in 5 0; do
		for n in 1 2 4; do
			run "$bin/fanout" --impl share --readers $n --work $us --records "$share_records"
		done
	done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
echo "duration: $(($(date +%s) - start)) s" >>"$out/machine.txt"
rm -f "$out/stderr.tmp" "$out/perf.tmp"

if ! command -v python3 >/dev/null; then
	# 77: the ctest smoke test reports a skip rather than a failure.
	echo "run.sh: python3 is needed to summarise $raw" >&2
	exit 77
fi
# The smoke test also checks that every part produced a measurement.
python3 bench/report.py "$out" $([ "$quick" = 1 ] && [ "$only" = "$all_groups" ] && echo --require-all) || exit 1
if command -v gnuplot >/dev/null; then
	gnuplot "$out/plots.gp" 2>"$out/gnuplot.err" || { echo "run.sh: gnuplot failed:" >&2; cat "$out/gnuplot.err" >&2; exit 1; }
else
	echo "plots: skipped (no gnuplot; Debian: gnuplot-nox)" >>"$out/skipped.txt"
fi
cat "$out/results.md"
echo
echo "results in $out: results.md, raw.tsv$(cd "$out" && for f in *.png; do [ -f "$f" ] && printf ', %s' "$f"; done)"
if [ -s "$errors" ]; then
	echo "run.sh: some cases failed:" >&2
	cat "$errors" >&2
	exit 1
fi
