'use strict';
// Compiles the addon with the machine's C compiler (warnings are errors):
// src/*.c here plus the library's sources (those src/sources.txt lists, from
// vendor/ in a packed package, else from the repository: see sources.js),
// against the Node-API headers of
// the node-api-headers package (or, failing that, the headers installed
// with Node). libuv needs no header: src/uv_min.h declares the few calls
// made, and is checked against a uv.h when Node's headers have one. Nothing
// is downloaded. Environment: CC (default cc), CFLAGS (appended).
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { root, sourceDir, listSources } = require('./sources');

const lib = sourceDir();
const out = path.join(root, 'build', 'shmpipe.node');

function napiInclude() {
  try {
    const dir = require('node-api-headers').include_dir;
    if (fs.existsSync(path.join(dir, 'node_api.h'))) return dir;
  } catch { /* fall through to Node's own headers */ }
  for (const dir of [
    path.resolve(path.dirname(process.execPath), '..', 'include', 'node'),
    '/usr/include/node',
    '/usr/local/include/node',
  ]) {
    if (fs.existsSync(path.join(dir, 'node_api.h'))) return dir;
  }
  throw new Error('node_api.h not found: install node-api-headers (npm install)');
}

// The directory of Node's own uv.h, if installed with it; null otherwise.
function uvInclude() {
  for (const dir of [
    path.resolve(path.dirname(process.execPath), '..', 'include', 'node'),
    '/usr/include/node',
    '/usr/local/include/node',
  ]) {
    if (fs.existsSync(path.join(dir, 'uv.h'))) return dir;
  }
  return null;
}

const libSources = listSources(lib);
if (libSources === null || !fs.existsSync(path.join(lib, 'include', 'shmpipe.h'))) {
  console.error(`shmpipe: the library's sources (src/sources.txt, include/shmpipe.h) are not in ${lib}: ` +
    'set SHMPIPE_SOURCE_DIR to a shmpipe checkout');
  process.exit(1);
}
const sources = [
  ...fs.readdirSync(path.join(root, 'src')).filter((f) => f.endsWith('.c')).map((f) => path.join(root, 'src', f)),
  ...libSources.map((f) => path.join(lib, f)),
];

const args = [
  '-std=c11', '-O2', '-g', '-Wall', '-Wextra', '-Werror', '-fPIC', '-shared', '-pthread',
  '-D_GNU_SOURCE', '-fvisibility=hidden',
  '-I', path.join(lib, 'include'), '-I', napiInclude(),
  ...sources,
  '-o', out,
  ...(process.env.CFLAGS ? process.env.CFLAGS.split(/\s+/).filter(Boolean) : []),
];
fs.mkdirSync(path.dirname(out), { recursive: true });
const cc = process.env.CC || 'cc';
console.log(`${cc} ... -o ${path.relative(root, out)}`);
execFileSync(cc, args, { stdio: 'inherit' });

// The libuv declarations, once more after libuv's own: a prototype or a
// constant that differs is a compile error.
const uv = uvInclude();
if (uv) {
  execFileSync(cc, [
    '-std=c11', '-fsyntax-only', '-Werror', '-D_GNU_SOURCE', '-DSHMPIPE_UV_CHECK',
    '-I', uv, '-include', 'uv.h', '-x', 'c', path.join(root, 'src', 'uv_min.h'),
  ], { stdio: 'inherit' });
}
