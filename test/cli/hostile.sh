# SPDX-License-Identifier: MIT
# Description: the program against what a hostile caller or a hostile local
# user can set up. Started with standard input, output or error closed, it
# never puts its own objects under those numbers: a command that needs the
# closed one refuses (exit 2) and creates nothing, and a transfer that does
# not need it moves the data intact. Pipes named to fool a terminal (a
# newline, an escape sequence, a direction override, bytes that are not
# UTF-8) are printed escaped by ls and stat, and their JSON is valid. A
# symbolic link, a directory, a FIFO or a socket in /dev/shm is refused as
# not a shmpipe (exit 2), whatever the command, and left alone. Another
# user's pipe: stat, rm, read and write --open all exit 2, and rm removes
# no name at all.
source "$(dirname "$0")/lib.sh"

# bounded CMD...: CMD, killed if it outlives a generous bound (a program
# that reads from its own ring could wait forever).
bounded() {
	timeout -s KILL $((20 * SLOW)) "$@"
}

# refused WHAT CMD... (with the redirection closing a descriptor done by the
# caller): exit 2, "WHAT is closed" on stderr, nothing on stdout, no name.
refused() {
	local what=$1 got
	shift
	bounded "$SHMPIPE" "$@" >"$TMP/out" 2>"$TMP/err"
	got=$?
	[ "$got" = 2 ] || fail "shmpipe $* with $what closed exited $got, want 2: $(cat "$TMP/err")"
	expect_err ": $what is closed$"
	[ ! -s "$TMP/out" ] || fail "shmpipe $* with $what closed wrote: $(od -c "$TMP/out" | head -3)"
}

gen 4 >"$TMP/src"
N=$(name closed)

# ---- standard input closed ----
exec 3<&0
exec 0<&-
refused "standard input" buffer
refused "standard input" write "$N"
refused "standard input" write "$N" -
expect_clean
exec 0<&3 3<&-

# buffer with standard output closed: stdout of refused() is a file, so
# close it inside.
closed_out() {
	bounded "$SHMPIPE" "$@" </dev/null 2>"$TMP/err" >&-
}
for cmd in buffer ls "stat $N"; do
	closed_out $cmd
	got=$?
	[ "$got" = 2 ] || fail "shmpipe $cmd with standard output closed exited $got: $(cat "$TMP/err")"
	expect_err ": standard output is closed$"
done
expect_clean

# A reader waits; a writer with its standard input closed is refused and
# leaves the write end free, for a writer that reads a FILE with standard
# input closed: the reader gets every byte.
"$SHMPIPE" read --quiet --create "$N" "$TMP/dst" &
R=$!
wait_for 10 exists "$N" || fail "no pipe"
refused "standard input" write --open "$N" <&-
bounded "$SHMPIPE" write --quiet --open "$N" "$TMP/src" <&- 2>"$TMP/err" ||
	fail "write --open FILE with standard input closed: $(cat "$TMP/err")"
wait $R || fail "the reader exited $?"
cmp "$TMP/src" "$TMP/dst" || fail "the copy differs"
expect_clean

# ---- standard output closed ----
"$SHMPIPE" write --quiet "$N" "$TMP/src" &
W=$!
wait_for 10 exists "$N" || fail "no pipe"
bounded "$SHMPIPE" read "$N" 2>"$TMP/err" >&-
got=$?
[ "$got" = 2 ] || fail "read with standard output closed exited $got: $(cat "$TMP/err")"
expect_err "read: standard output is closed$"
exists "$N" || fail "a refused read removed the name"
# The refused read took nothing: a read into a FILE, standard output closed,
# gets every byte.
bounded "$SHMPIPE" read --quiet "$N" "$TMP/dst" 2>"$TMP/err" >&- ||
	fail "read FILE with standard output closed: $(cat "$TMP/err")"
wait $W || fail "the writer exited $?"
cmp "$TMP/src" "$TMP/dst" || fail "the copy differs"
bounded "$SHMPIPE" read --create "$N" 2>"$TMP/err" >&-
[ $? = 2 ] || fail "read --create with standard output closed: $(cat "$TMP/err")"
expect_clean

# ---- standard error closed ----
# The progress line and the messages are lost, never written into the
# pipe or into the reader's FILE.
rm -f "$TMP/dst"
"$SHMPIPE" read --quiet --create "$N" "$TMP/dst" 2>/dev/null &
R=$!
wait_for 10 exists "$N" || fail "no pipe"
bounded "$SHMPIPE" write --progress --open "$N" <"$TMP/src" 2>&- || fail "write --progress 2>&- exited $?"
wait $R || fail "the reader exited $?"
cmp "$TMP/src" "$TMP/dst" || fail "the copy differs (write --progress, stderr closed)"
"$SHMPIPE" write --quiet "$N" "$TMP/src" &
W=$!
wait_for 10 exists "$N" || fail "no pipe"
bounded "$SHMPIPE" read --progress "$N" "$TMP/dst" 2>&- || fail "read --progress 2>&- exited $?"
wait $W || fail "the writer exited $?"
cmp "$TMP/src" "$TMP/dst" || fail "the copy differs (read --progress, stderr closed)"
bounded "$SHMPIPE" buffer --progress <"$TMP/src" 2>&- >"$TMP/dst" || fail "buffer 2>&- exited $?"
cmp "$TMP/src" "$TMP/dst" || fail "the copy differs (buffer --progress, stderr closed)"
# A refusal with standard error closed still exits 2 and creates nothing.
bounded "$SHMPIPE" write "$N" <&- 2>&-
[ $? = 2 ] || fail "write with standard input and error closed exited $?"
expect_clean

# ---- sizes and names at the edge ----
# A record ring too small for a record says how big it must be.
for size in 1 8 15; do
	expect_status 2 "$SHMPIPE" write --records --size "$size" "$N" </dev/null
	expect_err "write: --records needs a ring of at least 16 bytes"
	expect_status 2 "$SHMPIPE" read --create --records --size "$size" "$N"
	expect_err "read: --records needs a ring of at least 16 bytes"
	expect_clean
done
# The smallest one takes records (a full ring waits for the reader).
"$SHMPIPE" read --quiet --create --records --size 16 "$N" >"$TMP/out" &
R=$!
wait_for 10 exists "$N" || fail "no pipe"
printf abc | bounded "$SHMPIPE" write --quiet --open "$N" || fail "write into a 16-byte record ring"
wait $R || fail "read of a 16-byte record ring exited $?"
[ "$(cat "$TMP/out")" = abc ] || fail "a 16-byte record ring lost its record: $(cat "$TMP/out")"
expect_clean

# Names that are a path of /dev/shm rather than a name in it are refused
# before the library sees them.
for n in /. /.. . .. // //x /./ /../x /x/ x/.. /x/y; do
	for cmd in "write" "write --open" "read" "read --create" "stat" "rm" "rm --force"; do
		expect_status 2 "$SHMPIPE" $cmd "$n" </dev/null
		expect_err "^shmpipe: ${cmd%% *}: bad pipe name '"
	done
done
expect_clean

# ---- names made to fool a terminal ----
# Each name, and how ls and stat must print it (in a UTF-8 locale).
names=(
	$'nl\nforged  1.00 MiB   0 B  0%  1 running  2 running'
	$'esc\e[31mred\e[2J'
	$'ff\xffx'
	$'bs\\x41'
	$'rlo\u202eevil'
	$'csi\u009b2J'
	$'del\x7f'
	$'caf\xc3\xa9'
)
shown=(
	'nl\nforged  1.00 MiB   0 B  0%  1 running  2 running'
	'esc\x1b[31mred\x1b[2J'
	'ff\xffx'
	'bs\\x41'
	'rlo\xe2\x80\xaeevil'
	'csi\xc2\x9b2J'
	'del\x7f'
	$'caf\xc3\xa9'
)
for n in "${names[@]}"; do
	echo data | "$SHMPIPE" write "$(name "$n")" 2>"$TMP/err" || fail "write $n: $(cat "$TMP/err")"
done
# no_controls FILE: no byte of a control character, nor one that is not
# UTF-8, in FILE.
no_controls() {
	! LC_ALL=C grep -q $'[\x01-\x09\x0b-\x1f\x7f\xff]' "$1" &&
		! grep -qF $'\u202e' "$1" && ! grep -qF $'\u009b' "$1"
}
if locale -a 2>/dev/null | grep -Eqx 'C\.(UTF-8|utf8)'; then
	utf8=C.UTF-8
else
	utf8=
fi
for loc in C $utf8; do
	LC_ALL=$loc "$SHMPIPE" ls >"$TMP/ls" 2>"$TMP/err" || fail "ls: $(cat "$TMP/err")"
	no_controls "$TMP/ls" || fail "ls ($loc) printed controls: $(od -c "$TMP/ls")"
	# One row per pipe, no forged one.
	[ "$(grep -c "^/$PREFIX-" "$TMP/ls")" = ${#names[@]} ] || fail "ls ($loc) rows: $(cat "$TMP/ls")"
	[ "$(grep -c -- "$PREFIX" "$TMP/ls")" = ${#names[@]} ] || fail "ls ($loc) rows: $(cat "$TMP/ls")"
	for i in "${!names[@]}"; do
		want=${shown[$i]}
		# Where the locale is not UTF-8, no byte from 0x80 up goes out as is.
		[ "$loc" = C ] && want=${want//$'\xc3\xa9'/'\xc3\xa9'}
		grep -qF "/$PREFIX-$want " "$TMP/ls" || fail "ls ($loc): no row for '$want': $(cat "$TMP/ls")"
		LC_ALL=$loc "$SHMPIPE" stat --interval 10ms "$(name "${names[$i]}")" >"$TMP/stat" 2>"$TMP/err" ||
			fail "stat ${names[$i]}: $(cat "$TMP/err")"
		no_controls "$TMP/stat" || fail "stat ($loc) printed controls: $(od -c "$TMP/stat")"
		[ "$(head -1 "$TMP/stat")" = "pipe      /$PREFIX-$want (stream)" ] ||
			fail "stat ($loc): $(head -1 "$TMP/stat"), want /$PREFIX-$want"
	done
done
# JSON: valid, in UTF-8, with each name as it is, but for a byte that is
# not UTF-8: U+FFFD.
if command -v python3 >/dev/null; then
	json_names() {
		python3 - "$1" "/$PREFIX-" "${names[@]}" <<'EOF'
import json, re, sys
path, prefix, *names = sys.argv[1:]
with open(path, encoding="utf-8") as f:
    text = f.read()
got = []
for line in text.splitlines():
    v = json.loads(line)
    got += [p["name"] for p in (v if isinstance(v, list) else [v])]
got = sorted(n for n in got if n.startswith(prefix))
want = sorted(re.sub("[\udc80-\udcff]", "\ufffd", prefix + n) for n in names)
if got != want:
    sys.exit("got %r\nwant %r" % (got, want))
EOF
	}
	"$SHMPIPE" ls --json >"$TMP/json" 2>"$TMP/err" || fail "ls --json: $(cat "$TMP/err")"
	no_controls "$TMP/json" || fail "ls --json printed controls: $(od -c "$TMP/json")"
	json_names "$TMP/json" 2>"$TMP/err" || fail "ls --json: $(cat "$TMP/err"): $(cat "$TMP/json")"
	: >"$TMP/json"
	for n in "${names[@]}"; do
		"$SHMPIPE" stat --json --interval 10ms "$(name "$n")" >>"$TMP/json" || fail "stat $n"
	done
	no_controls "$TMP/json" || fail "stat --json printed controls: $(od -c "$TMP/json")"
	json_names "$TMP/json" 2>"$TMP/err" || fail "stat --json: $(cat "$TMP/err"): $(cat "$TMP/json")"
else
	echo "$TEST: no python3: the JSON is not checked" >&2
fi

# Messages too: a missing name and a bad one are escaped.
expect_status 2 "$SHMPIPE" stat $'/missing\e[2J\n'
expect_err "stat: /missing.x1b\[2J.n: no such pipe"
no_controls "$TMP/err" || fail "stat's message printed controls: $(od -c "$TMP/err")"
expect_status 2 "$SHMPIPE" rm $'/bad\e[2J/\n'
expect_err "bad pipe name '/bad.x1b\[2J/.n'"
no_controls "$TMP/err" || fail "rm's message printed controls: $(od -c "$TMP/err")"
for n in "${names[@]}"; do
	"$SHMPIPE" rm "$(name "$n")" || fail "rm $n"
done
expect_clean

# ---- what is in /dev/shm and is not a pipe ----
# refused_kind KIND NAME: every command that takes NAME exits 2, says it is
# not a shmpipe but KIND, prints nothing on stdout, and leaves it there.
refused_kind() {
	local kind=$1 n=$2 got
	for cmd in "stat" "read" "read --create" "write" "write --open" "rm" "rm --force"; do
		bounded "$SHMPIPE" $cmd "$n" </dev/null >"$TMP/out" 2>"$TMP/err"
		got=$?
		[ "$got" = 2 ] || fail "shmpipe $cmd on $kind exited $got, want 2: $(cat "$TMP/err")"
		expect_err "^shmpipe: ${cmd%% *}: $n: not a shmpipe: $kind$"
		expect_err '^usage: shmpipe '
		[ ! -s "$TMP/out" ] || fail "shmpipe $cmd on $kind wrote to standard output"
		[ -e "/dev/shm$n" ] || [ -L "/dev/shm$n" ] || fail "shmpipe $cmd removed $kind"
	done
}
# A symbolic link, to a file and to a live pipe.
L=$(name link)
echo keep >"$TMP/target"
ln -s "$TMP/target" "/dev/shm$L"
refused_kind "a symbolic link" "$L"
[ "$(cat "$TMP/target")" = keep ] || fail "the link's target changed"
P=$(name linked)
echo data | "$SHMPIPE" write "$P" || fail "write $P"
rm "/dev/shm$L"
ln -s "/dev/shm$P" "/dev/shm$L"
refused_kind "a symbolic link" "$L"
[ "$("$SHMPIPE" read "$P")" = data ] || fail "the linked pipe lost its data"
rm "/dev/shm$L"
# A directory, a FIFO (opening it would wait for a writer) and a socket.
D=$(name dir)
mkdir "/dev/shm$D"
refused_kind "a directory" "$D"
rmdir "/dev/shm$D"
F=$(name fifo)
mkfifo "/dev/shm$F"
refused_kind "a FIFO" "$F"
rm "/dev/shm$F"
if command -v python3 >/dev/null; then
	S=$(name sock)
	python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "/dev/shm$S"
	refused_kind "a socket" "$S"
	rm "/dev/shm$S"
fi
# ls shows none of them.
mkdir "/dev/shm$D"
mkfifo "/dev/shm$F"
ln -s "$TMP/target" "/dev/shm$L"
bounded "$SHMPIPE" ls >"$TMP/ls" || fail "ls exited $?"
! grep -qF "$PREFIX" "$TMP/ls" || fail "ls lists what is not a pipe: $(cat "$TMP/ls")"
rmdir "/dev/shm$D"
rm "/dev/shm$F" "/dev/shm$L"
expect_clean

# ---- another user's pipes ----
# A user who may not open a pipe, or may not remove its name from the
# sticky /dev/shm, gets status 2 from stat and rm alike, and rm removes
# nothing, not even the names that are the user's own. No end is taken of
# another user's pipe (status 2).
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null; then
	# A copy of the program that nobody may run, wherever the build is.
	BIN=$(mktemp -d "${TMPDIR:-/tmp}/$PREFIX-bin.XXXXXX")
	trap 'cleanup; rm -rf "$BIN"' EXIT
	cp "$SHMPIPE" "$BIN/shmpipe"
	chmod 755 "$BIN" "$BIN/shmpipe"
	as_nobody() {
		setpriv --reuid="$(id -u nobody)" --regid="$(id -g nobody)" --clear-groups \
			"$BIN/shmpipe" "$@"
	}
	open_p=$(name readable) closed_p=$(name private) own=$(name own)
	echo data | "$SHMPIPE" write --mode 644 "$open_p" || fail "write $open_p"
	echo data | "$SHMPIPE" write "$closed_p" || fail "write $closed_p"
	echo data | as_nobody write "$own" || fail "nobody's write"
	expect_status 2 as_nobody stat "$closed_p"
	expect_err "^shmpipe: stat: $closed_p: permission denied$"
	expect_err '^usage: shmpipe stat'
	for args in "$closed_p" "$open_p" "--force $open_p" "$own $open_p" "$own $closed_p"; do
		expect_status 2 as_nobody rm $args
		expect_err "^shmpipe: rm: /[^:]*: permission denied: not removed$"
		expect_err '^usage: shmpipe rm'
	done
	exists "$open_p" && exists "$closed_p" && exists "$own" || fail "a refused rm removed a name"
	# Nor does anyone take an end of another user's pipe, open to all as it
	# may be: the name could have been made to catch what we write.
	expect_status 2 "$SHMPIPE" read "$own" "$TMP/theirs"
	expect_err "^shmpipe: read: $own: owned by another user"
	[ ! -e "$TMP/theirs" ] || fail "a refused read made its FILE"
	setpriv --reuid="$(id -u nobody)" --regid="$(id -g nobody)" --clear-groups \
		"$BIN/shmpipe" read --quiet --create --mode 666 "$(name trap)" >/dev/null 2>&1 &
	wait_for 10 exists "$(name trap)" || fail "no pipe"
	expect_status 2 "$SHMPIPE" write --open "$(name trap)" </dev/null
	expect_err "^shmpipe: write: $(name trap): owned by another user"
	kill $!
	wait $! 2>/dev/null
	expect_status 0 as_nobody rm "$own"
	"$SHMPIPE" rm "$open_p" "$closed_p" || fail "rm"
fi
expect_clean
exit 0
