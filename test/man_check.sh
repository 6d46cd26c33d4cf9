#!/bin/sh
# SPDX-License-Identifier: MIT
# Description: every symbol the shared library exports (nm -D, the shmpipe_
# ones; not shmpipe__wake_peer, which only the inline calls of shmpipe.h
# call, and shmpipe_write(3) describes) has a section-3 man page
# man/man3/SYMBOL.3, a page of its own or a .so link to the page of its
# family; every .so link points to a page that
# is there; the page a symbol resolves to shows its prototype in the
# SYNOPSIS exactly as include/shmpipe.h declares it; every page starts with
# its SPDX line; every page that is not a link renders without warnings
# (groff -man -ww, or mandoc -T lint; that part is skipped, and says so,
# when neither is installed).
# Usage: man_check.sh BUILD_DIR SOURCE_DIR
set -u
build=${1:?usage: man_check.sh BUILD_DIR SOURCE_DIR}
src=${2:?usage: man_check.sh BUILD_DIR SOURCE_DIR}
src=$(cd "$src" && pwd) || exit 1
man=$src/man/man3
header=$src/include/shmpipe.h
fail=0
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

lib=$(find "$build" -maxdepth 2 -name 'libshmpipe.so' | head -n 1)
if [ -z "$lib" ]; then
	echo "man_check: no libshmpipe.so under $build"
	exit 1
fi
nm -D --defined-only "$lib" | awk '$3 ~ /^shmpipe_/ && $3 !~ /^shmpipe__/ { sub(/@.*/, "", $3); print $3 }' |
	sort -u >"$tmp/symbols"
nsym=$(wc -l <"$tmp/symbols")
if [ "$nsym" -eq 0 ]; then
	echo "man_check: $lib exports no shmpipe_ symbol"
	exit 1
fi

# The header's prototypes, one a line, whitespace squeezed: NAME<TAB>PROTO.
awk '
	/^SHMPIPE_API / { p = ""; on = 1 }
	on { p = p " " $0; if ($0 ~ /;/) { on = 0; print p } }
' "$header" | sed -e 's/SHMPIPE_API //' -e 's/[[:space:]][[:space:]]*/ /g' \
	-e 's/^ //' -e 's/( /(/g' |
	awk '{ n = $0; sub(/\(.*/, "", n); sub(/.*[ *]/, "", n); print n "\t" $0 }' >"$tmp/protos"

# The text of a page's SYNOPSIS, font macros and escapes undone, on one line.
synopsis() {
	awk '
		/^\.SH/ { on = ($2 == "SYNOPSIS"); next }
		!on || /^\.\\"/ { next }
		/^\.(B|I|BI|IB|BR|RB|IR|RI) / || /^\.(B|I)$/ {
			m = $1; line = substr($0, length(m) + 2); out = ""; n = 0
			while (length(line) > 0) {
				sub(/^[ \t]+/, "", line)
				if (line == "") break
				if (substr(line, 1, 1) == "\"") {
					line = substr(line, 2); i = index(line, "\"")
					if (i == 0) { a = line; line = "" } else { a = substr(line, 1, i - 1); line = substr(line, i + 1) }
				} else {
					i = match(line, /[ \t]/)
					if (i == 0) { a = line; line = "" } else { a = substr(line, 1, i - 1); line = substr(line, i) }
				}
				n++
				if (m == ".B" || m == ".I")
					out = out (n > 1 ? " " : "") a
				else
					out = out a
			}
			print out
			next
		}
		/^\./ { next }
		{ print }
	' "$1" | sed -e 's/\\f[BIRP]//g' -e 's/\\-/-/g' -e 's/\\e/\\/g' -e 's/\\&//g' |
		tr '\n' ' ' | sed -e 's/[[:space:]][[:space:]]*/ /g' -e 's/( /(/g'
}

# The page that man/man3/NAME.3 resolves to (following one .so), or nothing.
resolve() {
	f=$man/$1.3
	[ -f "$f" ] || return 0
	so=$(awk 'NR <= 3 && /^\.so / { print $2; exit }' "$f")
	if [ -n "$so" ]; then
		[ -f "$src/man/$so" ] && echo "$src/man/$so"
	else
		echo "$f"
	fi
}

while read -r sym; do
	if [ ! -f "$man/$sym.3" ]; then
		echo "man_check: $sym is exported but man/man3/$sym.3 is missing"
		fail=1
		continue
	fi
	page=$(resolve "$sym")
	[ -n "$page" ] || continue # reported with the links below
	proto=$(awk -F '\t' -v s="$sym" '$1 == s { print $2 }' "$tmp/protos")
	if [ -z "$proto" ]; then
		echo "man_check: $sym is exported but not declared in include/shmpipe.h"
		fail=1
		continue
	fi
	synopsis "$page" >"$tmp/syn"
	if ! grep -qF -- "$proto" "$tmp/syn"; then
		echo "man_check: ${page#"$src"/}: SYNOPSIS lacks, as the header has it: $proto"
		fail=1
	fi
done <"$tmp/symbols"

pages=0
links=0
for f in "$man"/*.3; do
	[ -f "$f" ] || continue
	pages=$((pages + 1))
	head -n 1 "$f" | grep -q 'SPDX-License-Identifier: MIT' || {
		echo "man_check: ${f#"$src"/}: first line is not the SPDX line"
		fail=1
	}
	so=$(awk 'NR <= 3 && /^\.so / { print $2; exit }' "$f")
	if [ -n "$so" ]; then
		links=$((links + 1))
		if [ ! -f "$src/man/$so" ]; then
			echo "man_check: ${f#"$src"/}: .so $so: no such page"
			fail=1
		elif grep -q '^\.so ' "$src/man/$so"; then
			echo "man_check: ${f#"$src"/}: .so $so: that page is a link too"
			fail=1
		fi
	fi
done
families=$((pages - links))
overview=
if [ -f "$man/shmpipe.3" ]; then
	families=$((families - 1))
	overview="shmpipe.3, "
fi

if command -v groff >/dev/null 2>&1; then
	renderer="groff -man -ww -z"
	for f in "$man"/*.3; do
		grep -q '^\.so ' "$f" && continue
		out=$(cd "$src/man" && groff -man -ww -z "$f" 2>&1)
		if [ -n "$out" ]; then
			echo "man_check: ${f#"$src"/}: groff:"
			echo "$out"
			fail=1
		fi
	done
elif command -v mandoc >/dev/null 2>&1; then
	renderer="mandoc -T lint"
	for f in "$man"/*.3; do
		grep -q '^\.so ' "$f" && continue
		out=$(cd "$src/man" && mandoc -T lint -W warning "$f" 2>&1)
		if [ -n "$out" ]; then
			echo "man_check: ${f#"$src"/}: mandoc:"
			echo "$out"
			fail=1
		fi
	done
else
	renderer=""
	echo "man_check: neither groff nor mandoc is installed: pages not rendered"
fi

[ "$fail" = 0 ] || exit 1
echo "$nsym exported symbols, $pages man pages (${overview}$families family pages, $links links)${renderer:+, rendered with $renderer}"
