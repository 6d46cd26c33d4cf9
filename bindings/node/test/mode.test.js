// SPDX-License-Identifier: MIT
'use strict';
// An opened end takes its mode and capacity from the pipe, not from what
// the opener assumed; an option that contradicts the pipe is an error.
const { test } = require('node:test');
const assert = require('node:assert');
const shm = require('..');

const name = (tag) => `/shmpipe-node-mode-${process.pid}-${tag}`;

test('a record pipe opened by name without { records: true } reads records, and ends', async () => {
  const n = name('rec');
  const w = shm.createSyncWriter({ name: n, records: true, capacity: 4096 });
  try {
    const r = shm.openReader(n);
    assert.strictEqual(r.records, true);
    const got = [];
    r.on('data', (c) => got.push(c.toString()));
    w.write('one');
    w.write('two!');
    w.write('three');
    w.close();
    await new Promise((resolve, reject) => { r.on('end', resolve); r.on('error', reject); });
    assert.deepStrictEqual(got, ['one', 'two!', 'three']);

    const s = shm.openSyncReader(shm.createSyncWriter({ records: true, capacity: 64 }).endpoint());
    assert.strictEqual(s.records, true);
    s.close();
  } finally {
    shm.unlink(n);
  }
});

test('a byte pipe opened by name is a byte stream, whatever the opener assumed', () => {
  const n = name('bytes');
  const w = shm.createSyncWriter({ name: n, capacity: 4096 });
  try {
    assert.throws(() => shm.openSyncReader(n, { records: true }), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
    // The refused open let go of the end: a right one takes it.
    const r = shm.openSyncReader(n, { records: false });
    assert.strictEqual(r.records, false);
    w.write('abc');
    w.write('def');
    assert.strictEqual(r.read().toString(), 'abcdef');
    r.close();
    w.close();
  } finally {
    shm.unlink(n);
  }
});

test('records: false or an elementType on a record pipe is refused, the end left free', () => {
  const n = name('refuse');
  const r = shm.createSyncReader({ name: n, records: true, capacity: 4096, timeout: 2000 });
  try {
    assert.throws(() => shm.openSyncWriter(n, { records: false }), TypeError);
    assert.throws(() => shm.openSyncWriter(n, { elementType: 'int32' }), TypeError);
    const ep = r.endpoint();
    assert.throws(() => shm.openSyncWriter(ep, { elementType: 'int32' }), TypeError);
    const w = shm.openSyncWriter(ep); // the endpoint was not used up
    w.write('rec');
    w.close();
    assert.strictEqual(r.read().toString(), 'rec');
    assert.strictEqual(r.read(), null);
  } finally {
    r.close();
    shm.unlink(n);
  }
});

test('an endpoint that lies about its pipe: the end is taken, then refused; a writer aborts', () => {
  const r = shm.createSyncReader({ records: true, capacity: 4096, timeout: 2000 });
  const ep = r.endpoint();
  assert.throws(() => shm.openSyncWriter({ ...ep, records: false }, { records: false }), TypeError);
  assert.throws(() => r.read(), { code: 'ECONNRESET' });
  r.close();
});

test("an opened writer reports the pipe's capacity", () => {
  const r = shm.createSyncReader({ capacity: 3000 });
  const w = shm.openWriter(r.endpoint());
  assert.strictEqual(w.capacity, 3000);
  w.destroy();
  r.close();
});

test('a record stream writer takes strings: each is one record of its bytes', async () => {
  const w = shm.createWriter({ records: true, capacity: 4096 });
  const r = shm.openSyncReader(w.endpoint(), { timeout: 2000 });
  w.write('one');
  w.write('dHdv', 'base64');
  await new Promise((resolve) => w.end('three', resolve));
  assert.deepStrictEqual([...r].map(String), ['one', 'two', 'three']);
  r.close();
});
