// SPDX-License-Identifier: MIT
'use strict';
// End of stream, EPIPE, dead peers (a terminated worker, a killed process),
// and bad arguments.
const { test } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { fork } = require('node:child_process');
const { Worker } = require('node:worker_threads');
const shm = require('..');

const fixtures = path.join(__dirname, 'fixtures');
const once = (emitter, event) => new Promise((resolve) => emitter.once(event, resolve));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const fds = () => fs.readdirSync('/proc/self/fd').length;
const threads = () => fs.readdirSync('/proc/self/task').length;

async function settle(baseline, count) {
  // Descriptors go once the loop has closed an end's handles, and a
  // terminated worker's thread soon after.
  for (let i = 0; i < 50 && count() > baseline; i++) await sleep(20);
  return count();
}

// A count that has stopped moving: the ends of earlier tests may still be
// on their way out (finalizers, workers), and must not be taken for this
// test's baseline.
async function quiet(count) {
  let last = count();
  for (let i = 0; i < 25; i++) {
    await sleep(20);
    const now = count();
    if (now === last) return now;
    last = now;
  }
  return last;
}

// No leak: back to the baseline or below (something of an earlier test's
// may have gone meanwhile), never above.
async function assertNoLeak(baseline, count, what) {
  const now = await settle(baseline, count);
  assert.ok(now <= baseline, `${what}: ${now} now, ${baseline} before`);
}

test("end() gives the reader's 'end' after all the data", async () => {
  const w = shm.createWriter();
  const r = shm.openReader(w.endpoint());
  const chunks = [];
  r.on('data', (c) => chunks.push(c));
  w.write('one ');
  w.end('two');
  await once(r, 'end');
  assert.strictEqual(Buffer.concat(chunks).toString(), 'one two');
});

test("a destroyed reader gives the writer an 'error' with code EPIPE", async () => {
  const w = shm.createWriter({ capacity: 1024 });
  const r = shm.openReader(w.endpoint());
  r.destroy();
  w.write(Buffer.alloc(10));
  const err = await once(w, 'error');
  assert.strictEqual(err.code, 'EPIPE');
  assert.strictEqual(err.errno, -32);
});

test('a writer waiting on a full ring gets EPIPE when the reader goes', async () => {
  const w = shm.createWriter({ capacity: 1024 });
  const r = shm.openSyncReader(w.endpoint());
  w.on('error', () => {});
  const failed = new Promise((resolve) => w.write(Buffer.alloc(4096), resolve));
  await sleep(30);
  assert.strictEqual(w.stats().queueDepth, 1024);
  r.close();
  const err = await failed;
  assert.strictEqual(err.code, 'EPIPE');
});

for (const role of ['reader', 'sync-reader']) {
  test(`worker.terminate() of a ${role} mid-stream: EPIPE here, no crash, no leak`, async () => {
    const fd0 = await quiet(fds);
    const th0 = await quiet(threads);
    const w = shm.createWriter({ capacity: 4096 });
    const worker = new Worker(path.join(fixtures, 'terminated.js'), {
      workerData: { endpoint: w.endpoint(), role },
    });
    const err = new Promise((resolve) => w.once('error', resolve));
    const chunk = Buffer.alloc(1000, 3);
    const pump = () => {
      while (w.writable && w.write(chunk));
      if (w.writable) w.once('drain', pump);
    };
    pump();
    await once(worker, 'message');
    await sleep(50);
    await worker.terminate();
    assert.strictEqual((await err).code, 'EPIPE');
    await assertNoLeak(fd0, fds, 'descriptors');
    await assertNoLeak(th0, threads, 'threads');
  });
}

test('worker.terminate() of a writer waiting for room: the reader gets the data, then ECONNRESET, no leak', async () => {
  const fd0 = await quiet(fds);
  const th0 = await quiet(threads);
  const r = shm.createSyncReader({ capacity: 4096 });
  const worker = new Worker(path.join(fixtures, 'terminated.js'), {
    workerData: { endpoint: r.endpoint(), role: 'writer' },
  });
  await once(worker, 'message');
  await sleep(50);
  await worker.terminate();
  // The terminated writer is aborted, not closed: the truncated stream
  // does not read as complete.
  let bytes = 0;
  assert.throws(() => {
    for (;;) {
      const b = r.read();
      if (b === null) break;
      bytes += b.length;
    }
  }, { code: 'ECONNRESET' });
  assert.strictEqual(bytes, 4096);
  r.close();
  await assertNoLeak(fd0, fds, 'descriptors');
  await assertNoLeak(th0, threads, 'threads');
});

const pipeName = (tag) => `/shmpipe-node-test-${process.pid}-${tag}`;

test('a killed writer process gives the reader ECONNRESET', async (t) => {
  const name = pipeName('w');
  const r = shm.createReader({ name, capacity: 65536 });
  const child = fork(path.join(fixtures, 'child-end.js'), [name, 'writer']);
  await once(child, 'message');
  shm.unlink(name); // both ends are attached: the name is no longer needed
  let bytes = 0;
  r.on('data', (b) => {
    bytes += b.length;
  });
  await sleep(100);
  const t0 = performance.now();
  child.kill('SIGKILL');
  const err = await once(r, 'error');
  const ms = performance.now() - t0;
  t.diagnostic(`noticed ${ms.toFixed(1)} ms after kill()`);
  assert.strictEqual(err.code, 'ECONNRESET');
  assert.ok(bytes > 0);
  assert.ok(bytes === r.stats().writeIndex, 'every committed byte came first');
  // The kernel closes the dead writer's doorbell: no polling slices.
  assert.ok(ms < 100, `noticed ${ms.toFixed(1)} ms after kill()`);
});

test('a killed reader process gives the writer EPIPE', async (t) => {
  const name = pipeName('r');
  const w = shm.createWriter({ name, capacity: 65536 });
  const child = fork(path.join(fixtures, 'child-end.js'), [name, 'reader']);
  await once(child, 'message');
  shm.unlink(name);
  const chunk = Buffer.alloc(65536, 9);
  const pump = () => {
    while (w.writable && w.write(chunk));
    if (w.writable) w.once('drain', pump);
  };
  pump();
  await sleep(100);
  const t0 = performance.now();
  child.kill('SIGKILL');
  const err = await once(w, 'error');
  const ms = performance.now() - t0;
  t.diagnostic(`noticed ${ms.toFixed(1)} ms after kill()`);
  assert.strictEqual(err.code, 'EPIPE');
  assert.ok(ms < 100, `noticed ${ms.toFixed(1)} ms after kill()`);
});

test('bad arguments throw TypeError or RangeError, never crash', () => {
  assert.throws(() => shm.createWriter(5), TypeError);
  assert.throws(() => shm.createWriter({ capacity: 'big' }), TypeError);
  assert.throws(() => shm.createWriter({ capacity: -1 }), RangeError);
  assert.throws(() => shm.createWriter({ capacity: 1.5 }), RangeError);
  assert.throws(() => shm.createWriter({ capacity: 2 ** 41 }), RangeError);
  assert.throws(() => shm.createWriter({ elementType: 'int33' }), RangeError);
  assert.throws(() => shm.createWriter({ elementType: 32 }), TypeError);
  assert.throws(() => shm.createWriter({ records: 'yes' }), TypeError);
  assert.throws(() => shm.createWriter({ records: true, capacity: 8 }), RangeError);
  assert.throws(() => shm.createWriter({ bogus: 1 }), TypeError);
  assert.throws(() => shm.createWriter({ spin: -2 }), RangeError);
  assert.throws(() => shm.createWriter({ spin: '1' }), TypeError);
  assert.throws(() => shm.createWriter({ name: 'no-slash' }), RangeError);
  assert.throws(() => shm.createWriter({ name: '/' + 'x'.repeat(300) }), RangeError);
  assert.throws(() => shm.createWriter({ name: 42 }), TypeError);
  assert.throws(() => shm.openReader(42), TypeError);
  assert.throws(() => shm.openReader({ fd: -1 }), TypeError);
  assert.throws(() => shm.openReader(null), TypeError);
  assert.throws(() => shm.unlink(undefined), TypeError);
  assert.throws(() => shm.openSyncReader('/shmpipe-node-test-missing'), { code: 'ENOENT' });

  const w = shm.createSyncWriter({ capacity: 64 });
  const r = shm.openSyncReader(w.endpoint());
  assert.throws(() => w.write({}), TypeError);
  assert.throws(() => r.read(0), RangeError);
  assert.throws(() => r.readInto('x'), TypeError);
  assert.throws(() => r.readValue(), TypeError);
  assert.throws(() => r.consume(-1), RangeError);
  w.close();
  r.close();
  assert.throws(() => r.read(), { code: 'EBADF' });

  // The native layer checks its own arguments too.
  const native = require('../build/shmpipe.node');
  assert.throws(() => native.write({}, [], 0, 1, 0), TypeError);
  assert.throws(() => native.read(5, 1, 1, 0), TypeError);
  assert.throws(() => native.create(7, null), RangeError);
  assert.throws(() => native.create(0, null, -5), RangeError);
  const h = native.create(0, null, 64);
  assert.throws(() => native.write(h, 'x', 0, 1, 0), TypeError);
  assert.throws(() => native.write(h, [1, 2], 0, 1, 0), TypeError);
  assert.throws(() => native.write(h, [Buffer.alloc(1)], 5, 1, 0), RangeError);
  assert.throws(() => native.wait(h, 'not a function'), TypeError);
  assert.throws(() => native.writeAsync(h, [Buffer.alloc(1)], 1, 'not a function'), TypeError);
  assert.throws(() => native.writeAsync(h, 'x', 1, () => {}), TypeError);
  assert.throws(() => native.writeAsync(h, [Buffer.alloc(3)], 2, () => {}), RangeError);
  assert.throws(() => native.read(h, 1, 1, 0), TypeError);
  native.close(h);
  native.close(h);
  assert.strictEqual(native.write(h, [Buffer.alloc(1)], 0, 1, 0), -9);
});

test('an element-typed stream rejects non-numbers with a TypeError', async () => {
  const w = shm.createWriter({ elementType: 'int32' });
  w.write('seven');
  const err = await once(w, 'error');
  assert.ok(err instanceof TypeError);
});

test('destroy() while a write waits for room: closed at once, the write called back, no leak', async () => {
  const fd0 = await quiet(fds);
  const th0 = await quiet(threads);
  const w = shm.createWriter({ capacity: 4096 });
  const r = shm.openSyncReader(w.endpoint());
  const called = new Promise((resolve) => w.write(Buffer.alloc(10000), resolve));
  await sleep(30);
  w.destroy();
  // destroy() without an error closes the end as end() does: the reader
  // drains what is there, then sees the end of the stream.
  let bytes = 0;
  for (;;) {
    const b = r.read();
    if (b === null) break;
    bytes += b.length;
  }
  assert.strictEqual(bytes, 4096);
  r.close();
  assert.strictEqual((await called).code, 'ERR_STREAM_DESTROYED');
  await assertNoLeak(fd0, fds, 'descriptors');
  await assertNoLeak(th0, threads, 'threads');
});

test('a reader destroyed while waiting for data closes cleanly, at once', async () => {
  const th0 = await quiet(threads);
  let worst = 0;
  for (let round = 0; round < 5; round++) {
    const w = shm.createSyncWriter();
    const r = shm.openReader(w.endpoint());
    r.on('data', () => {});
    await sleep(30);
    const t0 = process.hrtime.bigint();
    r.destroy();
    // Its descriptor was watched by the event loop: the close stops that
    // and closes the end at once, and the writer's next write gets EPIPE.
    for (;;) {
      try {
        w.write('x');
      } catch (err) {
        assert.strictEqual(err.code, 'EPIPE');
        break;
      }
      await sleep(1);
    }
    worst = Math.max(worst, Number(process.hrtime.bigint() - t0) / 1e6);
    w.close();
  }
  // A close noticed only at the end of a 100 ms sleep would be past this
  // in almost every one of five rounds.
  assert.ok(worst < 40, `EPIPE seen ${worst.toFixed(1)} ms after destroy()`);
  await assertNoLeak(th0, threads, 'threads');
});
