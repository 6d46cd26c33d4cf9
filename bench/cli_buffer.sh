#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# shmpipe buffer against mbuffer, pv and a plain shell pipe, on the same
# stream, between the same producer and consumer:
#
#   dd if=/dev/zero bs=1M count=N | <buffer> | dd of=/dev/null bs=1M
#
# with a ring (buffer) of the same size for the three buffers. The rounds
# are interleaved (each round runs every contender once, in turn), so that
# a change in the machine's load touches them all alike; the script reports
# the median and the range of the wall times, and the median's throughput.
#
#   bench/cli_buffer.sh BUILD_DIR [MIB [ROUNDS [RING]]]
#   bench/cli_buffer.sh build 4096 5 64M          # the defaults
#
# Needs mbuffer and pv (apt-get install mbuffer pv); a missing one is left
# out. The stream is zeros: what is measured is the cost of moving bytes,
# which is all a buffer does.
set -euo pipefail

build=${1:?usage: $0 BUILD_DIR [MIB [ROUNDS [RING]]]}
mib=${2:-4096}
rounds=${3:-5}
ring=${4:-64M}
shmpipe=$build/cli/shmpipe
[ -x "$shmpipe" ] || { echo "no $shmpipe: build first" >&2; exit 1; }

producer() { dd if=/dev/zero bs=1M count="$mib" status=none; }
consumer() { dd of=/dev/null bs=1M status=none; }

run_pipe() { producer | consumer; }
run_shmpipe() { producer | "$shmpipe" buffer --quiet --size "$ring" | consumer; }
run_mbuffer() { producer | mbuffer -q -m "$ring" | consumer; }
run_pv() { producer | pv -q -B "$ring" | consumer; }

contenders=(pipe shmpipe)
command -v mbuffer >/dev/null && contenders+=(mbuffer) || echo "mbuffer not installed: left out" >&2
command -v pv >/dev/null && contenders+=(pv) || echo "pv not installed: left out" >&2

declare -A times
echo "stream: $mib MiB of zeros, ring $ring, $rounds interleaved rounds, $(nproc) CPUs"
for ((r = 1; r <= rounds; r++)); do
	line="round $r:"
	for c in "${contenders[@]}"; do
		t0=$(date +%s%N)
		"run_$c"
		t1=$(date +%s%N)
		ms=$(((t1 - t0) / 1000000))
		times[$c]+="$ms "
		line+=" $c ${ms}ms"
	done
	echo "$line"
done

echo
printf '%-10s %10s %18s %10s %10s\n' contender "median ms" "min-max ms" "GB/s" "GiB/s"
for c in "${contenders[@]}"; do
	sorted=($(tr ' ' '\n' <<<"${times[$c]}" | sed '/^$/d' | sort -n))
	n=${#sorted[@]}
	med=${sorted[$((n / 2))]}
	if ((n % 2 == 0)); then
		med=$(((sorted[n / 2 - 1] + sorted[n / 2]) / 2))
	fi
	gbs=$(awk -v b="$mib" -v ms="$med" 'BEGIN { printf "%.2f", b * 1048576 / (ms / 1000) / 1e9 }')
	gibs=$(awk -v b="$mib" -v ms="$med" 'BEGIN { printf "%.2f", b / 1024 / (ms / 1000) }')
	printf '%-10s %10s %18s %10s %10s\n' "$c" "$med" "${sorted[0]}-${sorted[$((n - 1))]}" "$gbs" "$gibs"
done
