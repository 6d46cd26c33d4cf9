// SPDX-License-Identifier: MIT
'use strict';
// Zero-copy writes on the event loop: the Writable's reserve() resolves to
// a Buffer over the ring itself, in order with the stream's writes, and
// commit() publishes part of it. And the fast way for elementType pipes:
// typed arrays of the pipe's type as chunks.
const { test } = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const { once } = require('node:events');
const { Worker } = require('node:worker_threads');
const shm = require('..');

const fixtures = path.join(__dirname, 'fixtures');
const detached = (buf) => buf.length === 0 && buf.buffer.byteLength === 0;

function collect(readable) {
  const got = [];
  readable.on('data', (d) => got.push(d));
  return once(readable, 'end').then(() => got);
}

test('reserve() keeps its place among writes; commit() publishes and detaches', async () => {
  const w = shm.createWriter({ capacity: 4096 });
  const got = collect(shm.openReader(w.endpoint()));
  w.write('one,');
  const p = w.reserve(5);
  w.write('three,'); // made while the reserve is pending: goes after the commit
  const buf = await p;
  assert.ok(buf.length >= 5);
  buf.write('two,!');
  w.commit(4);
  assert.ok(detached(buf), 'commit detaches the Buffer');
  const empty = await w.reserve(0);
  w.commit(0); // publishes nothing
  assert.ok(detached(empty));
  w.end('four');
  assert.strictEqual(Buffer.concat(await got).toString(), 'one,two,three,four');
});

test('a reserve taken at once (nothing queued) still holds back the writes made after it', async () => {
  const w = shm.createWriter({ capacity: 4096 });
  const got = collect(shm.openReader(w.endpoint()));
  const buf = await w.reserve(6);
  let wrote = false;
  w.write('second', () => { wrote = true; });
  await new Promise((res) => setTimeout(res, 10));
  assert.strictEqual(wrote, false, 'the write waits for the commit');
  buf.write('first,');
  w.commit(6);
  w.end();
  assert.strictEqual(Buffer.concat(await got).toString(), 'first,second');
  assert.strictEqual(wrote, true);

  const w2 = shm.createWriter({ capacity: 4096 });
  const errs = [];
  w2.on('error', (e) => errs.push(e));
  await w2.reserve(6);
  const cbErr = new Promise((res) => w2.write('held', res));
  w2.destroy();
  assert.strictEqual((await cbErr).code, 'ERR_STREAM_DESTROYED', 'a held write is called back by destroy()');
});

test('1 MiB through reserve/commit of many sizes, across the wrap, in a worker', async () => {
  const block = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz!');
  const w = shm.createWriter({ capacity: 4096 });
  const worker = new Worker(path.join(fixtures, 'pattern-reader.js'), {
    workerData: { endpoint: w.endpoint(), block },
  });
  const result = new Promise((resolve, reject) => {
    worker.on('message', (m) => { if (m !== 'ready') resolve(m); });
    worker.once('error', reject);
  });
  const total = 1 << 20;
  let pos = 0;
  let step = 1;
  let waited = 0;
  while (pos < total) {
    const want = Math.min(step, total - pos);
    const p = w.reserve(want);
    const t = performance.now();
    const room = await p;
    if (performance.now() - t > 1) waited++;
    assert.ok(room.length >= want);
    for (let i = 0; i < want; i++) room[i] = block[(pos + i) % block.length];
    w.commit(want);
    pos += want;
    step = step * 7 % 1021 + 1;
  }
  w.end();
  await once(w, 'finish');
  assert.deepStrictEqual(await result, { bytes: total, firstBad: -1 });
});

test('a full ring makes reserve() wait without blocking the event loop', async () => {
  const w = shm.createWriter({ capacity: 4096 });
  const filler = await w.reserve(4096);
  w.commit(4096); // the ring is full
  let settled = false;
  const p = w.reserve(100).then((b) => { settled = true; return b; });
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  await new Promise((res) => setTimeout(res, 30));
  clearInterval(timer);
  assert.strictEqual(settled, false, 'no room: the reserve waits');
  assert.ok(ticks > 5, `timers ran meanwhile (${ticks})`);
  const reader = shm.openReader(w.endpoint());
  const first = await once(reader, 'data');
  assert.strictEqual(first[0].length > 0, true);
  const buf = await p; // room came back
  assert.ok(buf.length >= 100);
  w.commit(0);
  w.end();
  void filler;
});

test('bad arguments throw; a second reserve before commit throws', async () => {
  const w = shm.createWriter({ capacity: 4096 });
  assert.throws(() => w.reserve(-1), RangeError);
  assert.throws(() => w.reserve(1.5), RangeError);
  assert.throws(() => w.reserve(8192), RangeError);
  const wr = shm.createWriter({ records: true, capacity: 64 });
  assert.throws(() => wr.reserve(57), /largest record \(56 bytes\)/);
  const rb = await wr.reserve(56); // the largest record fits, and the stream lives
  assert.ok(rb.length >= 56);
  wr.commit(0);
  assert.ok(!wr.destroyed);
  wr.destroy();
  assert.throws(() => w.commit(1), /nothing was reserved/);
  await w.reserve(4096);
  w.commit(4096); // full: the next reserve has to wait
  const p = w.reserve(10);
  assert.throws(() => w.reserve(10), /already pending/);
  assert.throws(() => w.commit(1), /has not resolved/);
  const reader = shm.openSyncReader(w.endpoint());
  assert.strictEqual(reader.read(100).length, 100);
  const buf = await p;
  assert.throws(() => w.commit(buf.length + 1), RangeError);
  assert.ok(!detached(buf), 'a refused commit keeps the reservation');
  w.commit(0);
  reader.close();
  const wi = shm.createWriter({ elementType: 'int32', capacity: 64 });
  assert.throws(() => wi.reserve(6), /whole int32 elements/);
  const bi = await wi.reserve(8);
  assert.throws(() => wi.commit(2), /whole int32 elements/);
  wi.commit(8);
  wi.destroy();
  w.destroy();
});

test('end() waits for the commit; destroy() rejects a pending reserve and detaches one out', async () => {
  const w = shm.createWriter({ capacity: 4096 });
  const got = collect(shm.openReader(w.endpoint()));
  const buf = await w.reserve(3);
  let finished = false;
  w.end(() => { finished = true; });
  await new Promise((res) => setTimeout(res, 20));
  assert.strictEqual(finished, false, 'end() waits for the reservation');
  buf.write('end');
  w.commit(3);
  await once(w, 'finish');
  assert.strictEqual(Buffer.concat(await got).toString(), 'end');

  const w2 = shm.createWriter({ capacity: 4096 });
  w2.on('error', () => {});
  const out = await w2.reserve(10);
  w2.destroy();
  assert.ok(detached(out), 'destroy() detaches a reservation out');
  await assert.rejects(w2.reserve(1), { code: 'ERR_STREAM_DESTROYED' });

  const w3 = shm.createWriter({ capacity: 4096 });
  w3.on('error', () => {});
  await w3.reserve(4096);
  w3.commit(4096); // full: the next reserve waits
  const pending = w3.reserve(1);
  w3.destroy();
  await assert.rejects(pending, { code: 'ERR_STREAM_DESTROYED' });

  const w4 = shm.createWriter({ capacity: 4096 });
  w4.end();
  await assert.rejects(w4.reserve(1), { code: 'ERR_STREAM_WRITE_AFTER_END' });
});

test('the reader gone: a pending reserve rejects with EPIPE and the stream errors', async () => {
  const w = shm.createWriter({ capacity: 4096 });
  const errored = once(w, 'error');
  await w.reserve(4096);
  w.commit(4096);
  const pending = w.reserve(1);
  const r = shm.openSyncReader(w.endpoint());
  r.close();
  await assert.rejects(pending, { code: 'EPIPE' });
  const [err] = await errored;
  assert.strictEqual(err.code, 'EPIPE');
});

test('an int32 Writable takes Int32Arrays as chunks, mixed with numbers', async () => {
  const w = shm.createWriter({ elementType: 'int32', capacity: 64 });
  const got = collect(shm.openReader(w.endpoint()));
  const want = [];
  let next = 0;
  for (let i = 0; i < 200; i++) {
    if (i % 3 === 0) {
      w.write(next);
      want.push(next++);
    } else {
      const a = Int32Array.from({ length: i % 97 }, () => next++);
      w.write(a);
      want.push(...a);
    }
  }
  w.end();
  assert.deepStrictEqual(await got, want);
});

test('an int32 Writable refuses other typed arrays and Buffers, with a TypeError', async () => {
  for (const bad of [Float32Array.of(1), Buffer.from([1, 2, 3, 4]), new Uint32Array(2), 'x']) {
    const w = shm.createWriter({ elementType: 'int32', capacity: 64 });
    const err = once(w, 'error');
    w.write(bad);
    const [e] = await err;
    assert.ok(e instanceof TypeError, String(e));
    assert.match(e.message, /takes numbers or Int32Arrays/);
  }
});

test('typed-array chunks beyond the ring\'s capacity make write() say false, and drain follows', async () => {
  const w = shm.createWriter({ elementType: 'int32', capacity: 1024 }); // 4 KiB
  const got = collect(shm.openReader(w.endpoint()));
  let next = 0;
  let falses = 0;
  let drains = 0;
  w.on('drain', () => drains++);
  for (let round = 0; round < 20; round++) {
    let writes = 0;
    for (;;) {
      const a = Int32Array.from({ length: 700 }, () => next++);
      writes++;
      if (!w.write(a)) break;
    }
    // 700 elements are 2800 bytes: the second chunk passes 4 KiB queued.
    assert.ok(writes <= 2, `write() said true ${writes - 1} times past the capacity`);
    falses++;
    await once(w, 'drain');
  }
  w.end();
  const vals = await got;
  assert.strictEqual(vals.length, next);
  assert.ok(vals.every((v, i) => v === i), 'every value in order');
  assert.strictEqual(falses, 20);
  assert.ok(drains >= 20);
});

test('the reader gone before a commit: the stream errors with EPIPE', async () => {
  const w = shm.createWriter({ capacity: 4096 });
  const errored = once(w, 'error');
  const r = shm.openSyncReader(w.endpoint());
  const buf = await w.reserve(10); // room at once
  r.close();
  w.commit(10);
  const [err] = await errored;
  assert.strictEqual(err.code, 'EPIPE');
  assert.ok(detached(buf));
  await assert.rejects(w.reserve(1), { code: 'ERR_STREAM_DESTROYED' });
});
