// SPDX-License-Identifier: MIT
'use strict';
// Before `npm pack` (prepack): copies the library's sources listed in
// src/sources.txt, the headers they include (src/*.h, include/shmpipe.h)
// and the list itself into vendor/, so that the tarball builds with no
// checkout around it. After it (postpack, with --clean): removes vendor/
// again, so that a build in the repository compiles the sources being
// edited, not an old copy.
const fs = require('node:fs');
const path = require('node:path');
const { vendorDir, repoDir, listSources } = require('./sources');

const sources = listSources(repoDir);
if (sources === null) {
  // Not in the repository (a package unpacked elsewhere): keep what it has.
  if (listSources(vendorDir) !== null) process.exit(0);
  console.error(`shmpipe: src/sources.txt not found in ${repoDir} nor in ${vendorDir}: pack from a shmpipe checkout`);
  process.exit(1);
}
fs.rmSync(vendorDir, { recursive: true, force: true });
if (process.argv[2] === '--clean') process.exit(0);

const headers = fs.readdirSync(path.join(repoDir, 'src')).filter((f) => f.endsWith('.h')).map((f) => path.join('src', f));
for (const rel of ['src/sources.txt', path.join('include', 'shmpipe.h'), ...headers, ...sources]) {
  const to = path.join(vendorDir, rel);
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.copyFileSync(path.join(repoDir, rel), to);
}
console.log(`shmpipe: ${sources.length} sources and ${headers.length + 1} headers copied to vendor/`);
