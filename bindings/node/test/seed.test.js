// SPDX-License-Identifier: MIT
'use strict';
// The seed's scenario: a ring of 8 Int32 slots, a worker that spends 20 ms
// per item, a producer far faster. The producer is held back by the full
// ring while the main thread's event loop keeps running.
const { test } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { Readable } = require('node:stream');
const { pipeline } = require('node:stream/promises');
const shm = require('..');

test('seed: 8 Int32 slots, slow worker, the main thread stays responsive', async (t) => {
  const N = 50;
  const writable = shm.createWriter({ elementType: 'int32', capacity: 8 });
  const worker = new Worker(path.join(__dirname, 'fixtures', 'seed-worker.js'), {
    workerData: { endpoint: writable.endpoint(), workMs: 20 },
  });
  const report = new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });

  // A 10 ms timer on the main thread: how late does it fire while the
  // producer is held back (the ring was full at the tick before)? Lateness
  // while the thread waited for a CPU (other processes on busy cores) is not
  // the event loop being blocked: /proc tells that time apart. The start-up
  // (the worker's creation, the first writes) is reported, not judged.
  const schedstat = `/proc/self/task/${process.pid}/schedstat`;
  const runQueueMs = () => Number(fs.readFileSync(schedstat, 'utf8').split(' ')[1]) / 1e6;
  let maxLag = 0;
  let maxOwnLag = 0;
  let maxLagAll = 0;
  let heldBack = false;
  let ticks = 0;
  let fullSeen = 0;
  let maxDepth = 0;
  let last = performance.now();
  let lastRq = runQueueMs();
  const timer = setInterval(() => {
    const now = performance.now();
    const rq = runQueueMs();
    maxLagAll = Math.max(maxLagAll, now - last - 10);
    if (heldBack) {
      maxLag = Math.max(maxLag, now - last - 10);
      maxOwnLag = Math.max(maxOwnLag, now - last - 10 - (rq - lastRq));
    }
    last = now;
    lastRq = rq;
    ticks++;
    const s = writable.stats();
    maxDepth = Math.max(maxDepth, s.queueDepth);
    heldBack = s.queueDepth === 8 * 4;
    if (heldBack) fullSeen++;
  }, 10);

  function* generateNumbers() {
    for (let i = 1; i <= N; i++) yield i;
  }
  const t0 = performance.now();
  await pipeline(Readable.from(generateNumbers(), { objectMode: true }), writable);
  const got = await report;
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(timer);

  t.diagnostic(`${seconds.toFixed(2)} s, max timer lag while held back ${maxLag.toFixed(2)} ms ` +
    `(${maxOwnLag.toFixed(2)} ms less waits for a CPU; ${maxLagAll.toFixed(2)} ms over the ` +
    `whole run), ring seen full ${fullSeen} times`);
  assert.strictEqual(got.count, N);
  assert.ok(got.inOrder, 'values arrive 1, 2, 3 ... in order');
  assert.ok(seconds >= (N - 8) * 0.02 * 0.9, `the producer was held back (${seconds}s)`);
  assert.ok(fullSeen > 10, `the ring was seen full ${fullSeen} times`);
  assert.ok(maxDepth <= 32, `never more than 8 items in the ring (${maxDepth} bytes)`);
  assert.ok(got.stats.producerWaits > 0, 'the producer had to wait');
  assert.strictEqual(got.stats.consumedCount, N);
  assert.ok(ticks >= seconds * 1000 / 10 * 0.5, `the timer kept firing (${ticks} ticks)`);
  assert.ok(maxOwnLag < 50, `timer lag ${maxLag.toFixed(1)} ms, ${maxOwnLag.toFixed(1)} ms less waits for a CPU`);
});

test('blocking: true sleeps in the write, as the seed does (inside a worker)', async () => {
  const r = shm.createReader({ elementType: 'int32', capacity: 8 });
  const worker = new Worker(path.join(__dirname, 'fixtures', 'blocking-writer.js'), {
    workerData: { endpoint: r.endpoint(), n: 200 },
  });
  const message = new Promise((resolve) => worker.once('message', resolve));
  const values = [];
  r.on('data', (v) => values.push(v));
  await new Promise((resolve) => r.on('end', resolve));
  const msg = await message;
  assert.strictEqual(values.length, 200);
  assert.deepStrictEqual(values.slice(0, 3), [1, 2, 3]);
  assert.strictEqual(msg.syncCallbacks, true, 'each write called back with its data in the ring');
});
