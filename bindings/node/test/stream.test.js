// SPDX-License-Identifier: MIT
'use strict';
// Byte streams end to end: 1 GiB from the main thread to a worker, every
// byte checked by hash; record boundaries; element-typed object mode.
const { test } = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { Readable } = require('node:stream');
const { pipeline } = require('node:stream/promises');
const shm = require('..');

const GIB = 1 << 30;

test('1 GiB Buffer stream to a worker, hashed on both sides', async () => {
  const w = shm.createWriter({ capacity: 1 << 20 });
  const worker = new Worker(path.join(__dirname, 'fixtures', 'hash-reader.js'), {
    workerData: { endpoint: w.endpoint(), mode: 'stream' },
  });
  const done = new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  // Chunks of varied sizes and offsets cut from one random block.
  const block = crypto.randomBytes(1 << 20);
  const hash = crypto.createHash('sha1');
  let seed = 12345;
  const rnd = (n) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  function* chunks() {
    let left = GIB;
    while (left > 0) {
      const len = Math.min(left, 1 + rnd(256 * 1024));
      const off = rnd(block.length - len + 1);
      const c = block.subarray(off, off + len);
      hash.update(c);
      left -= len;
      yield c;
    }
  }
  await pipeline(Readable.from(chunks(), { objectMode: false }), w);
  const got = await done;
  assert.strictEqual(got.bytes, GIB);
  assert.strictEqual(got.hash, hash.digest('hex'));
  assert.strictEqual(w.stats().writeIndex, GIB);
  assert.strictEqual(got.stats.readIndex, GIB);
  assert.strictEqual(got.stats.queueDepth, 0);
});

test('record mode keeps each chunk whole, in order', async () => {
  const w = shm.createWriter({ capacity: 4096, records: true });
  const r = shm.openReader(w.endpoint());
  assert.strictEqual(r.records, true);
  const sent = [];
  for (let i = 0; i < 2000; i++) sent.push(Buffer.alloc(1 + ((i * 37) % 1500), i & 0xff));
  const got = [];
  r.on('data', (rec) => got.push(rec));
  const ended = new Promise((resolve) => r.on('end', resolve));
  await pipeline(Readable.from(sent), w);
  await ended;
  assert.strictEqual(got.length, sent.length);
  for (let i = 0; i < sent.length; i++) assert.ok(got[i].equals(sent[i]), `record ${i}`);
  assert.strictEqual(r.stats().consumedCount, sent.length);
});

test('a record larger than the ring is an EMSGSIZE error', async () => {
  const w = shm.createWriter({ capacity: 64, records: true });
  const err = await new Promise((resolve) => {
    w.on('error', resolve);
    w.write(Buffer.alloc(100));
  });
  assert.strictEqual(err.code, 'EMSGSIZE');
});

test('Int32 object mode: numbers in, numbers out, batched through _writev', async () => {
  const N = 100000;
  const w = shm.createWriter({ elementType: 'int32', capacity: 256 });
  const r = shm.openReader(w.endpoint());
  assert.strictEqual(r.elementType, 'int32');
  let next = 1;
  let bad = 0;
  r.on('data', (v) => {
    if (v !== next) bad++;
    next++;
  });
  const ended = new Promise((resolve) => r.on('end', resolve));
  function* numbers() {
    for (let i = 1; i <= N; i++) yield i;
  }
  await pipeline(Readable.from(numbers()), w);
  await ended;
  assert.strictEqual(bad, 0);
  assert.strictEqual(next, N + 1);
  const s = r.stats();
  assert.strictEqual(s.writeIndex, N * 4);
  assert.strictEqual(s.capacity, 256 * 4);
  // One ring write per batch, not per item.
  assert.ok(s.producedCount < N / 4, `producedCount ${s.producedCount}`);
});

test('Float64 elements and a typed array through the sync reader', () => {
  const w = shm.createSyncWriter({ elementType: 'float64', capacity: 16 });
  const r = shm.openSyncReader(w.endpoint());
  w.write([0.5, -1.25, 1e300]);
  w.write(7);
  const a = new Float64Array(8);
  assert.strictEqual(r.readInto(a), 4);
  assert.deepStrictEqual(Array.from(a.subarray(0, 4)), [0.5, -1.25, 1e300, 7]);
  w.close();
  assert.strictEqual(r.readValue(), null);
  r.close();
});

test('zero-copy: peek views the ring until consume detaches it', async () => {
  const w = shm.createSyncWriter({ capacity: 64 });
  const r = shm.openSyncReader(w.endpoint());
  w.write('hello');
  const v = r.peek();
  assert.ok(Buffer.isBuffer(v));
  assert.strictEqual(v.toString(), 'hello');
  assert.strictEqual(r.stats().queueDepth, 5);
  r.consume();
  assert.strictEqual(v.length, 0, 'the view is detached after consume');
  assert.strictEqual(r.stats().queueDepth, 0);
  assert.throws(() => r.consume(1), RangeError);

  // The async iterator: each view is released when the loop moves on.
  const seen = [];
  const it = (async () => {
    for await (const view of shm.views(r)) {
      seen.push(view.toString());
      seen.push(r.stats().queueDepth);
    }
  })();
  // Each write once the loop has taken the one before: a busy machine
  // must not make two writes show as one view.
  for (const s of ['a', 'bb', 'ccc']) {
    const before = seen.length;
    w.write(s);
    for (let k = 0; seen.length === before; k++) {
      assert.ok(k < 400, `no view of '${s}' within 2 s`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
  w.close();
  await it;
  assert.deepStrictEqual(seen, ['a', 1, 'bb', 2, 'ccc', 3]);
  r.close();
});

test('the writer waits without blocking the loop and resumes when read', async () => {
  const w = shm.createWriter({ capacity: 16 });
  const r = shm.openSyncReader(w.endpoint());
  let called = false;
  w.write(Buffer.alloc(40, 1), () => { called = true; });
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.strictEqual(called, false, 'callback only once all of the data is in the ring');
  assert.strictEqual(w.stats().queueDepth, 16);
  let total = 0;
  while (total < 40) {
    total += r.read().length;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.strictEqual(called, true);
  w.end();
  await new Promise((resolve) => w.on('finish', resolve));
  assert.strictEqual(r.read(), null);
  r.close();
});

test('a paused Readable stops taking from the ring, and the writer is held back', async () => {
  const w = shm.createWriter({ capacity: 64 * 1024 });
  const r = shm.openReader(w.endpoint(), { highWaterMark: 16 * 1024 });
  let written = 0;
  const chunk = Buffer.alloc(8192, 5);
  // 512 KiB into a 64 KiB ring: the writes beyond it wait.
  for (let i = 0; i < 64; i++) {
    w.write(chunk, () => { written += chunk.length; });
  }
  r.on('readable', () => {}); // paused mode: reads only up to highWaterMark
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.ok(written < 64 * chunk.length, 'the writer is held back');
  assert.strictEqual(w.stats().queueDepth, 64 * 1024, 'the ring is full');
  assert.ok(r.readableLength < 2 * 16 * 1024, `buffered in the Readable: ${r.readableLength}`);
  // Reading drains it all.
  r.removeAllListeners('readable');
  let got = 0;
  r.on('data', (b) => { got += b.length; });
  w.end();
  await new Promise((resolve) => r.on('end', resolve));
  assert.strictEqual(got, 64 * chunk.length);
  assert.strictEqual(written, 64 * chunk.length);
});
