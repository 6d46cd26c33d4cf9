#!/bin/sh
# SPDX-License-Identifier: MIT
# Description: a short, bounded fuzzing run for ctest (fuzz_reader_corpus).
#
#   run_fuzz.sh <fuzz_reader> <corpus dir> <work dir> <seconds>
#
# Fuzzes from a fresh copy of the corpus in <work dir>/corpus, so that the
# inputs libFuzzer adds never touch the committed corpus, and keeps any crash
# (crash-*, leak-*, timeout-*) in <work dir> to be replayed with fuzz_replay.
# Exits 0 if the fuzzer found nothing, 1 otherwise.
set -eu

if [ $# -ne 4 ]; then
	echo "usage: $0 <fuzz_reader> <corpus dir> <work dir> <seconds>" >&2
	exit 2
fi
fuzzer=$1
corpus=$2
work=$3
seconds=$4

rm -rf "$work"
mkdir -p "$work/corpus"
cp "$corpus"/* "$work/corpus/"

# The run is bounded in time and in executions, whichever comes first; every
# kind of finding exits 1 (libFuzzer's default of 77 would read as a ctest
# skip to anyone who adds SKIP_RETURN_CODE).
status=0
"$fuzzer" -max_total_time="$seconds" -runs=20000000 -timeout=5 -max_len=4096 \
	-error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 \
	-artifact_prefix="$work/" "$work/corpus" || status=$?

if [ "$status" -ne 0 ]; then
	echo "fuzz_reader found a problem; reproducer(s) in $work:" >&2
	ls "$work" >&2
	exit 1
fi
