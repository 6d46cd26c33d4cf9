#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The package as users install it: packs it (npm pack), installs the tarball
# into a new project outside the checkout, and runs the package's tests
# against that installed copy. test/ and examples/ (which the tests run) are
# copied into node_modules/shmpipe/, where the tests' require('..') is the
# installed package and test/pack.test.mjs imports it by name; there
# SHMPIPE_TEST_INSTALLED=1 checks that the copy in use is the installed one.
# Fails before any test if the install fetched anything but node-api-headers.
# Prints the node:test TAP stream of `npm test` (about as long as in place).
# Usage: bash test/pack.sh
set -euo pipefail
pkg=$(cd "$(dirname "$0")/.." && pwd)
project=$(mktemp -d "${TMPDIR:-/tmp}/shmpipe-pack.XXXXXX")
trap 'rm -rf "$project"' EXIT

echo "# npm pack, npm install in $project"
(cd "$pkg" && npm pack --pack-destination "$project") >&2
tarball=$(cd "$project" && ls shmpipe-*.tgz)
cd "$project"
printf '{ "name": "shmpipe-install-check", "private": true }\n' >package.json
npm install --no-audit --no-fund --foreground-scripts "./$tarball" >&2

installed=$(node -e '
const lock = require("./package-lock.json");
console.log(Object.keys(lock.packages).filter((p) => p !== "").sort().join(" "));')
if [ "$installed" != "node_modules/node-api-headers node_modules/shmpipe" ]; then
	echo "pack.sh: the install brought more than node-api-headers: $installed" >&2
	exit 1
fi

cp -R "$pkg/test" "$pkg/examples" node_modules/shmpipe/
cd node_modules/shmpipe
SHMPIPE_TEST_INSTALLED=1 timeout 300 npm test
