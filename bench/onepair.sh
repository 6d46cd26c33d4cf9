#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Instructions per 4-byte write+read pair, one thread, under callgrind:
# shmpipe (shmpipe_write + shmpipe_read, the inline calls), the library's
# functions called as such, and the cached-index ring of bench/spsc_ring.h
# (spsc_push + spsc_pop). Each runs with N and 2N pairs;
# the difference of the totals over N is the cost of one pair, loop
# included, free of start-up. callgrind counts are the same run to run, so
# this is the figure to compare where a small difference matters.
#   bench/onepair.sh [BUILD_DIR] [N]     (default build-bench, 100000)
# Needs valgrind; builds BUILD_DIR (Release) if it has no onepair yet.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-bench}
n=${2:-100000}
command -v valgrind >/dev/null || { echo "onepair.sh: valgrind is not installed" >&2; exit 2; }
if [ ! -x "$build/bench/onepair" ]; then
	[ -f "$build/CMakeCache.txt" ] || cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build "$build" -j "$(nproc)" --target onepair >/dev/null
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
count() { # IMPL N -> instructions
	valgrind --tool=callgrind --callgrind-out-file="$tmp/cg" "$build/bench/onepair" "$1" "$2" 2>&1 >/dev/null |
		sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
declare -A per
for impl in shmpipe library ring; do
	a=$(count "$impl" "$n")
	b=$(count "$impl" $((2 * n)))
	per[$impl]=$(awk -v a="$a" -v b="$b" -v n="$n" 'BEGIN { printf "%.1f", (b - a) / n }')
	printf '%-8s %s instructions per write+read pair (%s pairs: %s, %s pairs: %s)\n' \
		"$impl" "${per[$impl]}" "$n" "$a" $((2 * n)) "$b"
done
awk -v s="${per[shmpipe]}" -v r="${per[ring]}" \
	'BEGIN { printf "shmpipe / ring: %.2fx the instructions\n", s / r }'
