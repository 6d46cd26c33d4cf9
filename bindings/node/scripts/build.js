// SPDX-License-Identifier: MIT
'use strict';
// Compiles the addon with the machine's C compiler, with the library's own
// warnings, as errors: src/*.c here plus the library's sources (those
// src/sources.txt lists, from vendor/ in a packed package, else from the
// repository: see sources.js), against the Node-API headers of the
// node-api-headers package (or, failing that, the headers installed with
// Node). libuv needs no header: src/uv_min.h declares the few calls made,
// and is checked against a uv.h when Node's headers have one. Nothing is
// downloaded. Environment: CC (default cc; may carry arguments, as in
// "ccache gcc"), CFLAGS (appended). A failure prints one line saying what
// is missing, not a stack trace.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { root, sourceDir, listSources } = require('./sources');

// Stops the build with one line on stderr.
function fail(message) {
  console.error(`shmpipe: ${message}`);
  process.exit(1);
}

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
  return fail('node_api.h not found: install node-api-headers (npm install)');
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
  fail(`the library's sources (src/sources.txt, include/shmpipe.h) are not in ${lib}: ` +
    'set SHMPIPE_SOURCE_DIR to a shmpipe checkout');
}
const sources = [
  ...fs.readdirSync(path.join(root, 'src')).filter((f) => f.endsWith('.c')).map((f) => path.join(root, 'src', f)),
  ...libSources.map((f) => path.join(lib, f)),
];

// The library's warnings (CMakeLists.txt), so that the addon is held to
// the same standard as the code it links.
const warnings = ['-Wall', '-Wextra', '-Wshadow', '-Wstrict-prototypes', '-Wmissing-prototypes', '-Werror'];
const args = [
  '-std=c11', '-O2', '-g', ...warnings, '-fPIC', '-shared', '-pthread',
  '-D_GNU_SOURCE', '-fvisibility=hidden',
  '-I', path.join(lib, 'include'), '-I', napiInclude(),
  ...sources,
  '-o', out,
  ...(process.env.CFLAGS ? process.env.CFLAGS.split(/\s+/).filter(Boolean) : []),
];

const cc = (process.env.CC || 'cc').trim();
const [ccProgram, ...ccArgs] = cc.split(/\s+/);

// Runs the compiler; a compiler that is not there, or that fails, ends the
// build with one line (the compiler's own messages come before it).
function compile(compilerArgs) {
  try {
    execFileSync(ccProgram, [...ccArgs, ...compilerArgs], { stdio: 'inherit' });
  } catch (err) {
    if (err.code === 'ENOENT' || err.code === 'EACCES') {
      fail(`no C compiler found (${ccProgram}): install gcc or clang ` +
        '(Debian: apt-get install build-essential), or set CC');
    }
    fail(`${cc} failed${err.status ? ` with status ${err.status}` : ''}: the addon was not built`);
  }
}

fs.mkdirSync(path.dirname(out), { recursive: true });
console.log(`${cc} ... -o ${path.relative(root, out)}`);
compile(args);

// The libuv declarations, once more after libuv's own: a prototype or a
// constant that differs is a compile error.
const uv = uvInclude();
if (uv) {
  compile([
    '-std=c11', '-fsyntax-only', '-Werror', '-D_GNU_SOURCE', '-DSHMPIPE_UV_CHECK',
    '-I', uv, '-include', 'uv.h', '-x', 'c', path.join(root, 'src', 'uv_min.h'),
  ]);
}
