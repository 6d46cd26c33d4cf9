// SPDX-License-Identifier: MIT
'use strict';
// index.d.ts against the package as its users call it, checked by the
// TypeScript compiler (a devDependency). test/types/example.ts (CommonJS)
// and example.mts (ES module) use every export under strict settings and
// must compile without a word from tsc. test/types/wrong.ts misuses the
// package on lines marked "// error TSnnnn" and must give exactly those
// errors, so that a check that sees no types at all cannot pass. Skipped
// where typescript is not installed: in the copy installed from the packed
// tarball (test/pack.sh), which has no devDependencies.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const dir = path.join(__dirname, 'types');
const tsc = path.join(__dirname, '..', 'node_modules', 'typescript', 'bin', 'tsc');
const skip = fs.existsSync(tsc) ? false : 'typescript is not installed (a devDependency: npm ci)';

// Runs tsc on a project of test/types; its diagnostics name files relative
// to that folder.
function tscRun(project) {
  const r = spawnSync(process.execPath, [tsc, '-p', project, '--pretty', 'false'], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 120000,
  });
  if (r.error) throw r.error;
  return { status: r.status, out: (r.stdout + r.stderr).trim() };
}

test('the typed examples compile under strict settings, without a diagnostic', { skip }, () => {
  const r = tscRun('tsconfig.json');
  assert.equal(r.out, '', `tsc -p test/types:\n${r.out}`);
  assert.equal(r.status, 0, `tsc -p test/types exited with ${r.status}`);
});

test('each misuse in wrong.ts is the error it is marked with, and nothing else', { skip }, () => {
  const want = [];
  fs.readFileSync(path.join(dir, 'wrong.ts'), 'utf8').split('\n').forEach((line, i) => {
    const m = /\/\/ error (TS\d+)$/.exec(line);
    if (m) want.push(`wrong.ts:${i + 1} ${m[1]}`);
  });
  assert.ok(want.length >= 10, `wrong.ts marks ${want.length} errors`);
  const r = tscRun('tsconfig.wrong.json');
  const got = [...r.out.matchAll(/^(.+?)\((\d+),\d+\): error (TS\d+):/gm)].map((m) => `${m[1]}:${m[2]} ${m[3]}`);
  assert.deepEqual(got, want, `tsc -p test/types/tsconfig.wrong.json:\n${r.out}`);
  assert.notEqual(r.status, 0);
});
