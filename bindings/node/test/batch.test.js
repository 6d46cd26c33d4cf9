// SPDX-License-Identifier: MIT
'use strict';
// readValue() serves values from a batch over the ring: order, the end of
// the stream, errors and timeouts must be what a read per value gave.
const { test } = require('node:test');
const assert = require('node:assert');
const { Worker } = require('node:worker_threads');
const shm = require('..');

const ints = (a, b) => Int32Array.from({ length: b - a + 1 }, (_, i) => a + i);

test('values keep their order across batches, mixed with the other reads', () => {
  // 64 slots: batches of 16. The writer refills as the reader gives room.
  const w = shm.createSyncWriter({ elementType: 'int32', capacity: 64, timeout: 0 });
  const r = shm.openSyncReader(w.endpoint(), { timeout: 0 });
  let next = 1;
  let sent = 0;
  const fill = () => {
    const room = 64 - w.stats().queueDepth / 4;
    if (room > 0) w.write(ints(sent + 1, sent + room));
    sent += Math.max(room, 0);
  };
  fill();
  for (let round = 0; round < 200; round++) {
    for (let i = 0; i < 37; i++) assert.strictEqual(r.readValue(), next++);
    // Other reads start where readValue() stopped, never inside its batch.
    const two = new Int32Array(2);
    assert.strictEqual(r.readInto(two), 2);
    assert.deepStrictEqual([...two], [next, next + 1]);
    next += 2;
    const v = r.peek();
    assert.strictEqual(v.readInt32LE(0), next++);
    r.consume(4);
    // The values served are counted read, and their room is the writer's.
    assert.strictEqual(r.stats().consumedCount, next - 1 - (round + 1)); // readInto took 2 values in one read
    assert.strictEqual(w.stats().queueDepth, (sent - next + 1) * 4);
    fill();
  }
});

test('the end of the stream after the last value of a batch, also mid-batch', () => {
  for (const n of [1, 5, 16, 17, 40]) {
    const w = shm.createSyncWriter({ elementType: 'int32', capacity: 64 });
    const r = shm.openSyncReader(w.endpoint(), { timeout: 1000 });
    w.write(ints(1, n));
    w.close();
    for (let i = 1; i <= n; i++) assert.strictEqual(r.readValue(), i);
    assert.strictEqual(r.readValue(), null);
    assert.strictEqual(r.readValue(), null);
    assert.strictEqual(r.stats().consumedCount, n);
    r.close();
  }
});

test('an aborted writer or a cut element: the values first, then the error', () => {
  const w = shm.createSyncWriter({ elementType: 'int32', capacity: 64 });
  const r = shm.openSyncReader(w.endpoint(), { timeout: 1000 });
  w.write(ints(1, 10));
  w.abort();
  for (let i = 1; i <= 10; i++) assert.strictEqual(r.readValue(), i);
  assert.throws(() => r.readValue(), { code: 'ECONNRESET' });
  r.close();

  const b = shm.createSyncWriter({ capacity: 64 });
  const e = shm.openSyncReader(b.endpoint(), { elementType: 'int32', timeout: 1000 });
  const bytes = Buffer.alloc(14);
  for (let i = 0; i < 3; i++) bytes.writeInt32LE(i + 7, i * 4);
  b.write(bytes);
  b.close();
  assert.deepStrictEqual([e.readValue(), e.readValue(), e.readValue()], [7, 8, 9]);
  assert.throws(() => e.readValue(), { code: 'ERR_SHMPIPE_PARTIAL_ELEMENT', message: /2 of its 4 bytes/ });
  assert.throws(() => e.readValue(), { code: 'ERR_SHMPIPE_PARTIAL_ELEMENT' });
  e.close();
});

test('EAGAIN and ETIMEDOUT come only once the values taken are served', () => {
  const w = shm.createSyncWriter({ elementType: 'int32', capacity: 64 });
  const r = shm.openSyncReader(w.endpoint(), { timeout: 0 });
  w.write(ints(1, 5));
  assert.strictEqual(r.readValue(), 1);
  for (let i = 2; i <= 5; i++) assert.strictEqual(r.readValue(), i);
  assert.throws(() => r.readValue(), { code: 'EAGAIN' });
  w.write(ints(6, 30));
  for (let i = 6; i <= 30; i++) assert.strictEqual(r.readValue(), i);
  assert.throws(() => r.readValue(), { code: 'EAGAIN' });
});

test('a timed reader: values, then ETIMEDOUT, then the rest in order', () => {
  const w = shm.createSyncWriter({ elementType: 'int32', capacity: 64 });
  const r = shm.openSyncReader(w.endpoint(), { timeout: 20 });
  w.write(ints(1, 3));
  assert.deepStrictEqual([r.readValue(), r.readValue(), r.readValue()], [1, 2, 3]);
  const t0 = Date.now();
  assert.throws(() => r.readValue(), { code: 'ETIMEDOUT' });
  assert.ok(Date.now() - t0 >= 15);
  w.write(ints(4, 4));
  w.close();
  assert.strictEqual(r.readValue(), 4);
  assert.strictEqual(r.readValue(), null);
});

test("a Writable's buffered values all reach a readValue() worker when it ends", async () => {
  const N = 5000;
  const w = shm.createWriter({ elementType: 'int32', capacity: 8 });
  const worker = new Worker(`
    const { workerData, parentPort } = require('node:worker_threads');
    const r = require(workerData.pkg).openSyncReader(workerData.ep);
    let n = 0, inOrder = true;
    for (let v; (v = r.readValue()) !== null;) if (v !== ++n) inOrder = false;
    parentPort.postMessage({ n, inOrder, consumed: r.stats().consumedCount });
    r.close();
  `, { eval: true, workerData: { ep: w.endpoint(), pkg: require.resolve('..') } });
  const got = new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  // Written at once: all but a few sit in the Writable's buffer at end().
  for (let i = 1; i <= N; i++) w.write(i);
  const ended = new Promise((resolve) => w.end(resolve));
  assert.ok(w.writableLength > N - 100, `${w.writableLength} values buffered`);
  await ended;
  assert.deepStrictEqual(await got, { n: N, inOrder: true, consumed: N });
});

test('the writer is never further ahead than the ring holds', () => {
  const w = shm.createSyncWriter({ elementType: 'int32', capacity: 8, timeout: 0 });
  const r = shm.openSyncReader(w.endpoint(), { timeout: 0 });
  w.write(ints(1, 8));
  assert.strictEqual(r.readValue(), 1);
  // Value 1 was served; its slot is the writer's at the reader's next call.
  assert.throws(() => w.write(9), { code: 'EAGAIN' });
  assert.strictEqual(r.readValue(), 2);
  assert.strictEqual(r.readValue(), 3);
  assert.strictEqual(w.write(Int32Array.of(9, 10)), 8);
  assert.throws(() => w.write(11), { code: 'EAGAIN' });
  for (let i = 4; i <= 10; i++) assert.strictEqual(r.readValue(), i);
});
