// SPDX-License-Identifier: MIT
'use strict';
// Zero-copy writes: SyncWriter.reserve() lends a Buffer over the ring
// itself, commit() publishes part of it and detaches the Buffer.
const { test } = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const shm = require('..');

const fixtures = path.join(__dirname, 'fixtures');
const detached = (buf) => buf.length === 0 && buf.buffer.byteLength === 0;

function patternReader(w, block) {
  const worker = new Worker(path.join(fixtures, 'pattern-reader.js'), {
    workerData: { endpoint: w.endpoint(), block },
  });
  const done = new Promise((resolve, reject) => {
    worker.on('message', (m) => { if (m !== 'ready') resolve(m); });
    worker.once('error', reject);
  });
  return done;
}

test('bytes written through reserve and commit arrive exactly, in a worker', async () => {
  const block = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz!'); // 37 bytes: wraps unevenly
  const w = shm.createSyncWriter({ capacity: 4096 });
  const result = patternReader(w, block);
  const total = 1 << 20;
  let pos = 0;
  let step = 1;
  while (pos < total) {
    const room = w.reserve(Math.min(step, total - pos));
    const n = Math.min(room.length, total - pos, step);
    for (let i = 0; i < n; i++) room[i] = block[(pos + i) % block.length];
    w.commit(n);
    pos += n;
    step = step * 7 % 1021 + 1; // commits of many sizes, across the wrap
  }
  w.close();
  assert.deepStrictEqual(await result, { bytes: total, firstBad: -1 });
});

test('the Buffer is detached by commit, by a write, by another reserve and by close', () => {
  const w = shm.createSyncWriter({ capacity: 256 });
  const r = shm.openSyncReader(w.endpoint(), { timeout: 0 });
  const a = w.reserve(4);
  assert.ok(a.length >= 4);
  a.write('abcd');
  w.commit(4);
  assert.ok(detached(a));
  assert.strictEqual(a.write('x'), 0); // nothing reaches the ring any more

  // Another reserve drops the first reservation, unpublished: same start.
  const b = w.reserve(2);
  b.write('xy');
  const c = w.reserve(2);
  assert.ok(detached(b));
  assert.strictEqual(c.toString('latin1', 0, 2), 'xy');
  c.write('ef');
  w.commit(2);

  const d = w.reserve(1);
  w.write('gh'); // a write ends the reservation
  assert.ok(detached(d));
  assert.throws(() => w.commit(1), { name: 'RangeError', message: /nothing was reserved/ });

  const e = w.reserve(8);
  e.write('never published');
  w.close(); // drops the reservation
  assert.ok(detached(e));
  assert.strictEqual(r.read().toString(), 'abcdefgh');
  assert.strictEqual(r.read(), null);
  r.close();
});

test('commit without a reserve, and beyond it, are RangeErrors that keep the reservation', () => {
  const w = shm.createSyncWriter({ capacity: 64 });
  const r = shm.openSyncReader(w.endpoint(), { timeout: 0 });
  w.commit(0); // nothing to publish, and nothing asked
  assert.throws(() => w.commit(1), { name: 'RangeError', message: /nothing was reserved/ });
  assert.throws(() => w.commit(-1), RangeError);
  assert.throws(() => w.commit(1.5), RangeError);
  assert.throws(() => w.commit(), RangeError);
  assert.throws(() => w.reserve(-1), RangeError);
  const room = w.reserve(1);
  assert.strictEqual(room.length, 64);
  assert.throws(() => w.commit(65), { name: 'RangeError', message: /beyond what was reserved/ });
  room.write('ok');
  w.commit(2); // the reservation was kept
  assert.strictEqual(r.read().toString(), 'ok');
  assert.throws(() => w.reserve(65), { code: 'EMSGSIZE' });
  w.close();
  r.close();
});

test('element-typed writers reserve and commit whole elements only', () => {
  const w = shm.createSyncWriter({ elementType: 'int32', capacity: 8 });
  const r = shm.openSyncReader(w.endpoint(), { timeout: 0 });
  assert.throws(() => w.reserve(3), RangeError);
  const room = w.reserve(8);
  assert.strictEqual(room.length % 4, 0);
  assert.throws(() => w.commit(6), RangeError);
  room.writeInt32LE(-5, 0);
  room.writeInt32LE(9, 4);
  w.commit(8);
  assert.ok(detached(room));
  assert.strictEqual(w.reserve().length % 4, 0); // one element at least
  w.commit(0);
  w.close();
  assert.deepStrictEqual([...r], [-5, 9]);
  r.close();
});

test('record mode: each commit is one record', () => {
  const w = shm.createSyncWriter({ records: true, capacity: 256 });
  const r = shm.openSyncReader(w.endpoint(), { timeout: 0 });
  for (const s of ['one', 'three', '']) {
    const room = w.reserve(s.length);
    assert.ok(room.length >= s.length);
    room.write(s);
    w.commit(s.length); // 0 publishes nothing
  }
  assert.throws(() => w.reserve(249), { code: 'EMSGSIZE' }); // the largest record is 248
  w.close();
  assert.deepStrictEqual([...r].map(String), ['one', 'three']);
  r.close();
});

test('EAGAIN with timeout 0, ETIMEDOUT with a timeout, when the ring is full', () => {
  const w = shm.createSyncWriter({ capacity: 16, timeout: 0 });
  const r = shm.openSyncReader(w.endpoint());
  w.write(Buffer.alloc(12));
  assert.throws(() => w.reserve(8), { code: 'EAGAIN', syscall: 'reserve' });
  assert.strictEqual(w.reserve(4).length, 4);
  w.commit(0);
  const w2 = shm.createSyncWriter({ capacity: 16, timeout: 50 });
  const r2 = shm.openSyncReader(w2.endpoint());
  w2.write(Buffer.alloc(16));
  const t0 = Date.now();
  assert.throws(() => w2.reserve(1), { code: 'ETIMEDOUT' });
  assert.ok(Date.now() - t0 >= 40);
  for (const end of [w, r, w2, r2]) end.close();
});

test('EPIPE once the reader is gone: at reserve, and at commit (the bytes are dropped)', () => {
  const w = shm.createSyncWriter({ capacity: 64, timeout: 0 });
  const r = shm.openSyncReader(w.endpoint());
  const room = w.reserve(4);
  r.close();
  assert.throws(() => w.commit(4), { code: 'EPIPE', syscall: 'commit' });
  assert.ok(detached(room));
  assert.throws(() => w.reserve(4), { code: 'EPIPE', syscall: 'reserve' });
  w.close();
  assert.throws(() => w.reserve(1), { code: 'EBADF' });
  assert.throws(() => w.commit(0), { code: 'EBADF' });
});

test('reserve waits for room until the reader makes it', async () => {
  const w = shm.createSyncWriter({ capacity: 64 });
  w.write(Buffer.alloc(64, 1));
  // The worker frees the ring after a pause, while this thread is in reserve().
  const worker = new Worker(`
    const { workerData, parentPort } = require('node:worker_threads');
    const r = require(workerData.lib).openSyncReader(workerData.ep);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    const first = r.read(64);
    let rest = 0;
    for (let b = r.read(); b !== null; b = r.read()) rest += b.length;
    r.close();
    parentPort.postMessage({ first: first.length, rest });
  `, { eval: true, workerData: { lib: path.join(__dirname, '..'), ep: w.endpoint() } });
  const done = new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const t0 = Date.now();
  const room = w.reserve(32);
  const waited = Date.now() - t0;
  assert.ok(room.length >= 32);
  assert.ok(waited >= 100, `reserve returned after ${waited} ms`);
  assert.ok(w.stats().producerWaits >= 1);
  room.fill(2, 0, 32);
  w.commit(32);
  w.close();
  assert.deepStrictEqual(await done, { first: 64, rest: 32 });
});
