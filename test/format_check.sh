#!/bin/sh
# SPDX-License-Identifier: MIT
# Description: the C sources are formatted as .clang-format says. Runs
# clang-format --dry-run -Werror over every .c, .h and .cpp file of the
# source tree (not build directories or node_modules); any difference fails
# and is printed. Skips (77) where clang-format is not installed; .ci/run
# installs it. Usage: format_check.sh SOURCE_DIR
set -u
src=${1:?usage: format_check.sh SOURCE_DIR}
cf=$(command -v clang-format-14 || command -v clang-format) || {
	echo "clang-format is not installed: skipped"
	exit 77
}
cd "$src" || exit 1
files=$(find src include common cli test bench fuzz examples bindings/node/src \
	\( -name node_modules -prune \) -o \
	\( -name '*.c' -o -name '*.h' -o -name '*.cpp' \) -type f -print | sort)
[ -n "$files" ] || { echo "no sources found under $src"; exit 1; }
# shellcheck disable=SC2086
if ! "$cf" --dry-run -Werror $files; then
	echo "format_check: run clang-format -i on the files above"
	exit 1
fi
echo "$(echo "$files" | wc -l) files formatted as .clang-format says ($($cf --version | head -1))"
