# SPDX-License-Identifier: MIT
# Description: every kind of bad input exits 2 with a message naming the
# problem and a usage line on standard error, prints nothing on standard
# output, and leaves nothing behind: no pipe, no output file. --help and
# --version exit 0 on standard output.
source "$(dirname "$0")/lib.sh"

N=$(name a)
bad() {
	local pattern=$1 before=0
	shift
	exists "$N" && before=1
	"$SHMPIPE" "$@" >"$TMP/out" 2>"$TMP/err"
	local got=$?
	[ "$got" = 2 ] || fail "shmpipe $* exited $got, want 2; stderr: $(cat "$TMP/err")"
	expect_err "$pattern"
	expect_err '^usage: shmpipe '
	[ ! -s "$TMP/out" ] || fail "shmpipe $* wrote to standard output"
	[ $before = 1 ] || ! exists "$N" || fail "shmpipe $* left $N behind"
}

bad 'no command given'
bad "unknown command 'frobnicate'" frobnicate
bad "unknown option '--frob'" write --frob "$N"
bad "unknown option '--watch'" write --watch "$N"
bad "unknown option '-x'" read -x "$N"
bad "option '--size' needs a value" write "$N" --size
bad 'no pipe NAME given' write
bad 'no pipe NAME given' read
bad 'no pipe NAME given' stat
bad 'no pipe NAME given' rm
bad "too many operands" write "$N" a b
bad "too many operands" stat "$N" b
bad "no operands expected" buffer x
bad "no operands expected" ls x
for size in 0 12X 1.5G -4K 2T 99999999999999999999 K 16MM ''; do
	bad "bad size '$size'" write --size "$size" "$N"
	bad "bad size '$size'" buffer --size "$size"
done
bad "bad size '3Q'" read --create --size 3Q "$N"
bad "--reopen is for a pipe of one reader" write --reopen --readers 2 "$N"
bad "unknown option '--reopen'" read --reopen "$N"
bad "--open takes the pipe as it was created" write --open --reopen "$N"
for t in 0 abc 10x -1 ms 99999999h; do
	bad "bad time '$t'" write --timeout "$t" "$N"
	bad "bad time '$t'" stat --interval "$t" "$N"
done
bad "bad mode '800'" write --mode 800 "$N"
bad "bad mode '0'" write --mode 0 "$N"
long=$(printf 'x%.0s' $(seq 201))
for n in '' / // /a/b a/b . .. "/$long"; do
	bad "bad pipe name" write "$n"
	bad "bad pipe name" read "$n"
	bad "bad pipe name" stat "$n"
	bad "bad pipe name" rm "$n"
done
bad 'contradict' write --quiet --progress "$N"
bad '--open takes the pipe as it was created' write --open --size 1M "$N"
bad 'go with --create' read --size 1M "$N"

# Missing pipes: nothing is created, not even read's output file.
bad "$N: no such pipe" read "$N"
bad "$N: no such pipe" read "$N" "$TMP/out.txt"
[ ! -e "$TMP/out.txt" ] || fail "read of a missing pipe created its output file"
bad "$N: no such pipe" write --open "$N"
bad "$N: no such pipe" stat "$N"
bad "$N: no such pipe" rm "$N"
expect_status 0 "$SHMPIPE" rm --force "$N"
bad "cannot open '$TMP/nofile'" write "$N" "$TMP/nofile"
bad "cannot open '$TMP/nodir/x'" read --create "$N" "$TMP/nodir/x"

# Names taken: the pipe exists, or its end does.
echo data | "$SHMPIPE" write "$N" || fail "write $N"
bad "$N: exists already" write "$N"
bad "$N: exists already" read --create "$N"
bad "$N: its write end is taken" write --open "$N"
[ "$(cat /dev/shm"$N" | wc -c)" -gt 0 ] || fail "the pipe went away"
echo x >"$TMP/keep"
# Neither the pipe nor an existing file is touched by a refused command.
bad "$N: exists already" read --create "$N" "$TMP/keep"
[ "$(cat "$TMP/keep")" = x ] || fail "a refused read truncated its output file"
[ "$("$SHMPIPE" read "$N")" = data ] || fail "the pipe lost its data"
expect_clean

# Shared memory that is not a shmpipe: refused, and left alone.
O=$(name other)
head -c 8192 /dev/zero >"/dev/shm$O"
bad "$O: not a shmpipe" read "$O"
bad "$O: not a shmpipe" stat "$O"
bad "$O: not a shmpipe" rm "$O"
[ -e "/dev/shm$O" ] || fail "rm removed an object that is not a shmpipe"
"$SHMPIPE" ls | grep -qF "$O" && fail "ls lists an object that is not a shmpipe"
rm -f "/dev/shm$O"

# rm checks every name before removing any.
echo data | "$SHMPIPE" write "$N" || fail "write $N"
bad "no such pipe" rm "$N" "$(name missing)"
exists "$N" || fail "rm removed a name although another was bad"
expect_status 0 "$SHMPIPE" rm "$N" "$(name missing)" --force
expect_clean

# Help and version: standard output, status 0.
for args in --help help "help write" "write --help" "read -h" "buffer --help" "stat --help" \
	"ls --help" "rm --help"; do
	"$SHMPIPE" $args >"$TMP/out" 2>"$TMP/err" || fail "shmpipe $args exited $?"
	grep -q '^usage: shmpipe' "$TMP/out" || fail "shmpipe $args: no usage on stdout"
	grep -q 'Exit status' "$TMP/out" || fail "shmpipe $args: exit statuses not documented"
	[ ! -s "$TMP/err" ] || fail "shmpipe $args wrote to stderr"
done
"$SHMPIPE" --version | grep -Eq '^shmpipe [0-9]+\.[0-9]+\.[0-9]+$' || fail "--version"
expect_clean
exit 0
