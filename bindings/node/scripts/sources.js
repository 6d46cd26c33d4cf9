// SPDX-License-Identifier: MIT
'use strict';
// Where the library's C sources are, and which they are. The list is the
// one CMake reads, src/sources.txt: one path a line from the top of the
// tree, '#' starting a comment line.
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
// The copy `npm pack` puts in the package (scripts/vendor.js), laid out as
// the repository is: src/sources.txt, src/*.c, src/*.h, include/shmpipe.h.
const vendorDir = path.join(root, 'vendor');
// The repository around this folder, when the package is built in place.
const repoDir = path.resolve(root, '..', '..');

// SHMPIPE_SOURCE_DIR if set, else the vendored copy when present (all an
// installed package has), else the repository's sources.
function sourceDir() {
  if (process.env.SHMPIPE_SOURCE_DIR) return path.resolve(process.env.SHMPIPE_SOURCE_DIR);
  if (fs.existsSync(path.join(vendorDir, 'src', 'sources.txt'))) return vendorDir;
  return repoDir;
}

// The sources listed in dir/src/sources.txt, as paths relative to dir;
// null when dir has no such list.
function listSources(dir) {
  let text;
  try {
    text = fs.readFileSync(path.join(dir, 'src', 'sources.txt'), 'utf8');
  } catch (err) {
    if (err.code === 'ENOENT') return null;
    throw err;
  }
  return text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
}

module.exports = { root, vendorDir, repoDir, sourceDir, listSources };
