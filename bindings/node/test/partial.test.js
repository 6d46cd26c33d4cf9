// SPDX-License-Identifier: MIT
'use strict';
// Elements wider than a byte: a write of part of one is refused, and a
// stream that ends inside one is an error, found without spinning.
const { test } = require('node:test');
const assert = require('node:assert');
const shm = require('..');

const partial = { code: 'ERR_SHMPIPE_PARTIAL_ELEMENT', message: /2 of its 4 bytes/ };

test('an int32 write of a Buffer that is not whole elements is a RangeError', () => {
  const w = shm.createSyncWriter({ elementType: 'int32', capacity: 8 });
  const r = shm.openSyncReader(w.endpoint());
  assert.throws(() => w.write(Buffer.alloc(3)), RangeError);
  assert.throws(() => w.write(new Uint8Array(9)), RangeError);
  assert.strictEqual(w.write(Buffer.alloc(0)), 0);
  assert.strictEqual(w.write(Int32Array.of(7, 8)), 8);
  assert.strictEqual(r.readValue(), 7);
  assert.strictEqual(r.readValue(), 8);
  w.close();
  assert.strictEqual(r.readValue(), null);
  r.close();
});

test('an int32 Readable whose stream ends inside an element: an error, no spinning', async () => {
  const w = shm.createWriter({ capacity: 64 }); // bytes, opened as int32 below
  const r = shm.openReader(w.endpoint(), { elementType: 'int32' });
  const got = [];
  r.on('data', (v) => got.push(v));
  const cpu0 = process.cpuUsage();
  const t0 = Date.now();
  w.end(Buffer.from([1, 0, 0, 0, 2, 0, 0, 0, 9, 9]));
  const err = await new Promise((resolve, reject) => {
    r.on('error', resolve);
    r.on('end', () => reject(new Error("'end' on a stream cut inside an element")));
  });
  assert.match(err.message, /2 of its 4 bytes/);
  assert.strictEqual(err.code, 'ERR_SHMPIPE_PARTIAL_ELEMENT');
  assert.deepStrictEqual(got, [1, 2]);
  const cpu = process.cpuUsage(cpu0);
  assert.ok(Date.now() - t0 < 1000);
  assert.ok(cpu.user + cpu.system < 500000, `${cpu.user + cpu.system} us of CPU`);
});

test('an element that arrives in parts is read whole, in order', async () => {
  const w = shm.createSyncWriter({ capacity: 64 });
  const r = shm.openReader(w.endpoint(), { elementType: 'int32' });
  const got = [];
  r.on('data', (v) => got.push(v));
  const done = new Promise((resolve, reject) => { r.on('end', resolve); r.on('error', reject); });
  const bytes = Buffer.alloc(12);
  bytes.writeInt32LE(-5, 0);
  bytes.writeInt32LE(70000, 4);
  bytes.writeInt32LE(3, 8);
  for (const [a, b] of [[0, 1], [1, 3], [3, 6], [6, 12]]) {
    w.write(bytes.subarray(a, b));
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  w.close();
  await done;
  assert.deepStrictEqual(got, [-5, 70000, 3]);
});

test('a sync int32 reader of a stream cut inside an element throws that, not EAGAIN', () => {
  const w = shm.createSyncWriter({ capacity: 64 });
  const r = shm.openSyncReader(w.endpoint(), { elementType: 'int32', timeout: 2000 });
  w.write(Buffer.from([5, 0, 0, 0, 1, 2]));
  w.close();
  assert.strictEqual(r.readValue(), 5);
  assert.throws(() => r.readValue(), partial);
  assert.throws(() => r.read(), partial);
  assert.throws(() => r.readInto(new Int32Array(4)), partial);
  assert.throws(() => r.read(2), RangeError); // less than one element
  r.close();
});

test('an int32 reader with a partial element and a live writer times out, then reads it whole', () => {
  const w = shm.createSyncWriter({ capacity: 64 });
  const r = shm.openSyncReader(w.endpoint(), { elementType: 'int32', timeout: 20 });
  w.write(Buffer.from([0x10, 0x20]));
  assert.throws(() => r.readValue(), { code: 'ETIMEDOUT' });
  w.write(Buffer.from([0, 0]));
  assert.strictEqual(r.readValue(), 0x2010);
  w.close();
  assert.strictEqual(r.readValue(), null);
  r.close();
});
