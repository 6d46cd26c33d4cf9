#!/bin/sh
# SPDX-License-Identifier: MIT
# Counts futex system calls per GiB moved between two threads in a transfer
# where both sides keep up (64 KiB writes and reads through a 1 MiB ring),
# with perf's syscall tracepoint. Runs it ROUNDS times (default 5) and prints
# each count and the median.
# Usage: bench/futex_per_gib.sh BUILD_DIR [ROUNDS] [transfer options...]
set -eu
build=${1:-build}
rounds=${2:-5}
[ $# -ge 2 ] && shift 2 || shift $#
counts=""
for i in $(seq "$rounds"); do
	out=$(perf stat -x, -e syscalls:sys_enter_futex "$build/bench/transfer" --mib 1024 "$@" 2>&1)
	echo "$out" | grep '^moved'
	n=$(echo "$out" | grep 'sys_enter_futex' | cut -d, -f1)
	echo "round $i: $n futex calls for 1 GiB"
	counts="$counts $n"
done
median=$(echo $counts | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "median: $median futex calls per GiB (rounds:$counts)"
