# SPDX-License-Identifier: MIT
# What the black-box tests of the shmpipe program share. Each test is a bash
# script run by ctest as: bash <test>.sh <path of the shmpipe program>.
# It exits 0 (pass), 1 (fail) or 77 (skip). It runs real processes, and
# checks that no pipe name is left in /dev/shm after it.

set -u

SHMPIPE=${1:?usage: $0 PATH-TO-shmpipe}
TEST=$(basename "$0" .sh)
# Names of this run: /shmpipe-clitest-<test>-<pid>-<n>.
PREFIX=shmpipe-clitest-$TEST-$$
TMP=$(mktemp -d "${TMPDIR:-/tmp}/$PREFIX.XXXXXX")
# Sanitized builds run slower: bounds on time stretch by this much.
SLOW=${SHMPIPE_TEST_SLOW:-1}
# The system's Python, started in about 50 ms, where there is one: a version
# manager's python3 on PATH (pyenv's shim) may take 300 ms, and a test that
# samples the servers several times a second with it gets few samples.
# A link on PATH, not a function: a function run in the background gets a
# subshell's pid in $!, and a signal to it would not reach Python.
if [ -x /usr/bin/python3 ]; then
	mkdir -p "$TMP/bin" && ln -sf /usr/bin/python3 "$TMP/bin/python3" && PATH=$TMP/bin:$PATH
fi

cleanup() {
	local pids
	# Every process this script started: jobs -p names only one process of
	# each pipeline, so take this shell's children too.
	pids="$(jobs -p) $(cat /proc/$$/task/*/children 2>/dev/null)"
	[ -n "${pids// /}" ] && kill -9 $pids 2>/dev/null
	wait 2>/dev/null
	rm -rf /dev/shm/"$PREFIX"-* 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
	echo "$TEST: FAIL: $*" >&2
	exit 1
}

skip() {
	echo "SKIP: $*" >&2
	exit 77
}

name() {
	echo "/$PREFIX-$1"
}

# expect_status WANT CMD...: runs CMD, its stderr into $TMP/err, and checks
# its exit status.
expect_status() {
	local want=$1 got
	shift
	"$@" 2>"$TMP/err"
	got=$?
	[ "$got" = "$want" ] || fail "'$*' exited $got, want $want; stderr: $(cat "$TMP/err")"
}

# expect_err PATTERN: the last command's stderr matches the extended regex.
expect_err() {
	grep -Eq -- "$1" "$TMP/err" || fail "stderr does not match '$1': $(cat "$TMP/err")"
}

# No name of this run may be left in /dev/shm.
expect_clean() {
	local left
	left=$(ls /dev/shm | grep -F "$PREFIX-")
	[ -z "$left" ] || fail "left in /dev/shm: $left"
}

# wait_for SECONDS CMD...: polls CMD until it succeeds.
wait_for() {
	local tenths=$(($1 * 10 * SLOW))
	shift
	while ! "$@" 2>/dev/null; do
		tenths=$((tenths - 1))
		[ "$tenths" -gt 0 ] || return 1
		sleep 0.1
	done
}

exists() {
	[ -e "/dev/shm${1}" ]
}

# gen MIB: a deterministic stream of MIB MiB that is different in each
# 1 MiB block (a block number, then random bytes), so that a lost, repeated
# or reordered block changes the checksum.
gen() {
	local i
	[ -f "$TMP/block" ] || head -c $((1048576 - 9)) /dev/urandom >"$TMP/block"
	for ((i = 0; i < $1; i++)); do
		printf '%08d\n' "$i"
		cat "$TMP/block"
	done
}
