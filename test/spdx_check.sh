#!/bin/sh
# SPDX-License-Identifier: MIT
# Description: every source file of the tree says its license in an SPDX
# line among its first three lines (C, C++, JavaScript, TypeScript, shell,
# Python, the spin model, the linker map, CMake files and templates, the
# man page), and the LICENSE files are there. Build directories,
# node_modules and vendor/ (a copy made at pack time) are left out.
# Usage: spdx_check.sh SOURCE_DIR
set -u
src=${1:?usage: spdx_check.sh SOURCE_DIR}
cd "$src" || exit 1
missing=0
for f in LICENSE bindings/node/LICENSE; do
	grep -q '^MIT License' "$f" 2>/dev/null || { echo "$f: missing or not the MIT license"; missing=1; }
done
list=$(find . -type d \( -name 'build*' -o -name node_modules -o -name vendor -o -name .git \
	-o -name corpus -o -name 'Testing' \) -prune -o -type f \
	\( -name '*.c' -o -name '*.h' -o -name '*.cpp' -o -name '*.js' -o -name '*.mjs' \
	-o -name '*.ts' -o -name '*.mts' -o -name '*.sh' -o -name '*.py' -o -name '*.pml' \
	-o -name '*.map' -o -name '*.in' -o -name CMakeLists.txt -o -name '*.1' -o -name '*.3' \) -print |
	sort)
n=0
for f in $list .ci/run; do
	n=$((n + 1))
	head -n 3 "$f" | grep -q 'SPDX-License-Identifier: MIT' || {
		echo "$f: no SPDX-License-Identifier line in its first three lines"
		missing=1
	}
done
[ "$missing" = 0 ] || exit 1
echo "$n files carry SPDX-License-Identifier: MIT"
