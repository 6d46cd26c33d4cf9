// SPDX-License-Identifier: MIT
// The package as its users load it: by name, through package.json's
// "exports", from an ES module and from CommonJS. Run in place (the name
// resolves to this folder) and again in a copy installed from the packed
// tarball, where SHMPIPE_TEST_INSTALLED=1 also checks that the copy in use
// is the installed one, built from the sources the tarball carries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pipeline } from 'node:stream/promises';
import * as esm from 'shmpipe';
import shmpipe, { createWriter, openReader, createSyncWriter, openSyncReader } from 'shmpipe';

const require = createRequire(import.meta.url);
const cjs = require('shmpipe');
const pkgRoot = path.dirname(require.resolve('shmpipe/package.json'));

test('import gives every name require gives, the same values', () => {
  assert.equal(shmpipe, cjs);
  const names = Object.keys(cjs).sort();
  assert.deepEqual(Object.keys(esm).filter((n) => n !== 'default').sort(), names);
  for (const n of names) assert.equal(esm[n], cjs[n], n);
});

test('import: a few bytes through a stream pair', async () => {
  const w = createWriter({ capacity: 4096 });
  const r = openReader(w.endpoint());
  const got = [];
  await Promise.all([
    (async () => { for await (const c of r) got.push(c); })(),
    pipeline(async function* () { yield Buffer.from('hello, '); yield Buffer.from('shmpipe'); }, w),
  ]);
  assert.equal(Buffer.concat(got).toString(), 'hello, shmpipe');
});

test('import: a few bytes through a synchronous pair', () => {
  const w = createSyncWriter({ capacity: 4096 });
  const r = openSyncReader(w.endpoint());
  assert.equal(w.write('abc'), 3);
  w.close();
  assert.equal(r.read().toString(), 'abc');
  assert.equal(r.read(), null);
  r.close();
});

test('a missing C compiler stops the build with one clear line', () => {
  const r = spawnSync(process.execPath, [path.join(pkgRoot, 'scripts', 'build.js')], {
    env: { ...process.env, CC: '/nonexistent/shmpipe-test-cc' },
    encoding: 'utf8',
  });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^shmpipe: no C compiler found \(\/nonexistent\/shmpipe-test-cc\): install gcc or clang .*, or set CC\n$/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

test('the installed copy is the one in use', { skip: process.env.SHMPIPE_TEST_INSTALLED !== '1' }, () => {
  assert.equal(path.basename(path.dirname(pkgRoot)), 'node_modules', pkgRoot);
  assert.ok(fs.existsSync(path.join(pkgRoot, 'vendor', 'src', 'sources.txt')), 'vendor/src/sources.txt');
  assert.ok(fs.existsSync(path.join(pkgRoot, 'build', 'shmpipe.node')), 'build/shmpipe.node');
  // The other tests' require('..') reaches the same module.
  assert.equal(require(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')), cjs);
});
