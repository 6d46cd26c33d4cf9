#!/bin/sh
# SPDX-License-Identifier: MIT
# Description: the exported symbols, three ways, agree. The functions that
# include/shmpipe.h declares with SHMPIPE_API, the names in the version
# script src/shmpipe.map, and what the built shared library exports
# (nm -D) must be the same set; every export must carry a version node of
# the map; the map's newest node must be SHMPIPE_<MAJOR>.<MINOR> of the
# header's version macros; and CHANGELOG.md's newest section must be that
# version. Usage: abi_symbols.sh SOURCE_DIR SHARED_LIBRARY
set -u
src=${1:?usage: abi_symbols.sh SOURCE_DIR SHARED_LIBRARY}
lib=${2:?usage: abi_symbols.sh SOURCE_DIR SHARED_LIBRARY}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

ver() { sed -n "s/^#define SHMPIPE_VERSION_$1 \([0-9][0-9]*\)$/\1/p" "$src/include/shmpipe.h"; }
major=$(ver MAJOR)
minor=$(ver MINOR)
patch=$(ver PATCH)
[ -n "$major" ] && [ -n "$minor" ] && [ -n "$patch" ] || { echo "no version macros in shmpipe.h"; exit 1; }

# Each declaration starts a line with SHMPIPE_API and may span lines up
# to its ";": the name is the word before the first "(".
awk '/^SHMPIPE_API / { d = "" } d != "-" { d = d " " $0 } /^SHMPIPE_API / || d != "-" {
	if (index(d, ";")) { print d; d = "-" } } BEGIN { d = "-" }' "$src/include/shmpipe.h" |
	grep -o 'SHMPIPE_API [^(;]*(' |
	sed -E 's/.*[ *]([A-Za-z_][A-Za-z_0-9]*)[ ]*\($/\1/' | sort -u >"$tmp/header"
# The map: names ending in ";" inside global: sections.
sed 's#/\*.*\*/##' "$src/src/shmpipe.map" | awk '
	/global:/ { g = 1; next }
	/local:/ { g = 0; next }
	g && /^[ \t]*[A-Za-z_][A-Za-z_0-9]*;/ { gsub(/[ \t;]/, ""); print }' | sort -u >"$tmp/map"
nm -D --defined-only "$lib" | awk '$2 ~ /^[TtWwDdBbRr]$/ { print $3 }' >"$tmp/exports.v"
sed 's/@.*//' "$tmp/exports.v" | sort -u >"$tmp/exports"

for pair in "header map" "header exports" "map exports"; do
	set -- $pair
	if ! diff -u "$tmp/$1" "$tmp/$2" >"$tmp/diff"; then
		echo "$1 and $2 differ:"
		cat "$tmp/diff"
		fail=1
	fi
done
[ -s "$tmp/header" ] || { echo "no SHMPIPE_API declaration found"; fail=1; }

nodes=$(sed 's#/\*.*\*/##' "$src/src/shmpipe.map" | sed -n 's/^\([A-Z][A-Z0-9_.]*\)[ ]*{.*/\1/p')
newest=$(echo "$nodes" | tail -1)
if [ "$newest" != "SHMPIPE_$major.$minor" ]; then
	echo "the map's newest node is $newest, the header's version is $major.$minor.$patch"
	fail=1
fi
while read -r s; do
	node=${s#*@}
	node=${node#@}
	if [ "$node" = "$s" ] || ! echo "$nodes" | grep -qx "$node"; then
		echo "export $s carries no version node of the map"
		fail=1
	fi
done <"$tmp/exports.v"

top=$(sed -n 's/^## \([0-9][0-9.]*\).*/\1/p' "$src/CHANGELOG.md" | head -1)
if [ "$top" != "$major.$minor.$patch" ]; then
	echo "CHANGELOG.md's newest section is '$top', the header says $major.$minor.$patch"
	fail=1
fi
[ "$fail" = 0 ] || exit 1
echo "$(wc -l <"$tmp/header") functions: header, map and exports agree; node $newest; CHANGELOG $top"
