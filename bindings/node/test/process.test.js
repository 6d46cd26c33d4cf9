// SPDX-License-Identifier: MIT
'use strict';
// Between processes: a named pipe opened by a child by name; and the
// examples, run as a user would.
const { test } = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { fork, execFileSync } = require('node:child_process');
const shm = require('..');

test('64 MiB to a child process through a named pipe', async () => {
  const name = `/shmpipe-node-test-${process.pid}-xproc`;
  const w = shm.createWriter({ name, capacity: 256 * 1024 });
  const child = fork(path.join(__dirname, 'fixtures', 'child-hash.js'), [name]);
  const result = new Promise((resolve) => child.once('message', resolve));
  const hash = crypto.createHash('sha1');
  const block = crypto.randomBytes(1 << 20);
  let i = 0;
  await new Promise((resolve, reject) => {
    w.on('error', reject);
    const pump = () => {
      while (i < 64) {
        const c = block.subarray(i * 997 % 4096);
        hash.update(c);
        i++;
        if (!w.write(c)) return w.once('drain', pump);
      }
      w.end(resolve);
    };
    pump();
  });
  shm.unlink(name);
  const got = await result;
  assert.strictEqual(got.hash, hash.digest('hex'));
  assert.strictEqual(got.bytes, w.stats().writeIndex);
  assert.throws(() => shm.stat(name), { code: 'ENOENT' });
});

test('stat() observes a named pipe without taking an end', () => {
  const name = `/shmpipe-node-test-${process.pid}-stat`;
  const w = shm.createSyncWriter({ name, capacity: 100 });
  w.write(Buffer.alloc(30));
  const s = shm.stat(name);
  assert.strictEqual(s.capacity, 100);
  assert.strictEqual(s.writeIndex, 30);
  assert.strictEqual(s.queueDepth, 30);
  assert.strictEqual(s.producedCount, 1);
  shm.unlink(name);
  w.close();
});

const examples = path.join(__dirname, '..', 'examples');

test('examples/pipeline.js: the worker hashes what the transform produced', () => {
  const file = path.join(os.tmpdir(), `shmpipe-node-example-${process.pid}.txt`);
  fs.writeFileSync(file, 'hello shared memory\n'.repeat(200000));
  try {
    const out = execFileSync(process.execPath, [path.join(examples, 'pipeline.js'), file], { encoding: 'utf8' });
    assert.match(out, /4000000 bytes, 200000 lines/);
    assert.match(out, /matches the transform's output/);
  } finally {
    fs.unlinkSync(file);
  }
});

test("examples/main.js and worker.js: the seed's pair, ending after a count", () => {
  const out = execFileSync(process.execPath, [path.join(examples, 'main.js'), '60'], { encoding: 'utf8' });
  // 60 items at 20 ms each: counters printed every second while the ring is full.
  assert.match(out, /producerWaits: [1-9]/);
  assert.match(out, /capacity: 32/);
});

test("an anonymous pipe's descriptor passed to a child in spawn's stdio", async () => {
  const { spawn } = require('node:child_process');
  const w = shm.createSyncWriter({ capacity: 4096 });
  const ep = w.endpoint();
  const child = spawn(process.execPath, ['-e', `
    const r = require(${JSON.stringify(path.join(__dirname, '..'))}).openSyncReader({ fd: 3 });
    let n = 0;
    for (let b; (b = r.read()) !== null;) n += b.length;
    process.stdout.write(String(n));
  `], { stdio: ['ignore', 'pipe', 'inherit', ep.fd] });
  shm.discardEndpoint(ep);
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  for (let i = 0; i < 100; i++) w.write(Buffer.alloc(1000, i));
  w.close();
  await new Promise((resolve) => child.on('close', resolve));
  assert.strictEqual(out, '100000');
});
