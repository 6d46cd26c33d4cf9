// SPDX-License-Identifier: MIT
'use strict';
// The seed's workload: Int32 values 1, 2, 3 ... from Readable.from(generator)
// piped into a Writable over a ring, consumed by a worker that sums them.
//   node bench/node/int32.js --impl seed|addon [--writer value|batch]
//        [--reader value|batch] [--items N] [--capacity SLOTS] [--spin US]
// Prints one JSON line. The ring holds --capacity Int32 values (default 8,
// the seed's); --spin sets how long the addon's waits spin (default: the
// package's). --writer: the generator yields one number per item (the
// seed's way, the default) or Int32Array chunks of 4096 items, which the
// addon's Writable takes as they are. --reader: the addon's worker calls
// readValue() per item (the documented way, the default) or readInto()
// 4096 at a time. The clock starts when the worker has said it is ready
// (its start is not timed, for either implementation). The main thread
// runs a 10 ms timer; max_timer_lag_ms is how late it fired at worst.
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { Readable } = require('node:stream');
const { args, lagMonitor } = require('./common');

const opt = args({ impl: 'addon', writer: 'value', reader: 'value', items: 2000000, capacity: 8, spin: -1 });
const CHUNK = 4096;

function* generateNumbers(n) {
  for (let i = 1; i <= n; i++) yield i;
}

function* generateChunks(n) {
  for (let i = 1; i <= n; i += CHUNK) {
    const a = new Int32Array(Math.min(CHUNK, n - i + 1));
    for (let k = 0; k < a.length; k++) a[k] = i + k;
    yield a;
  }
}

function expectedSum(n) {
  let s = 0;
  for (let i = 1; i <= n; i++) s = (s + i) | 0;
  return s;
}

function seed(items, capacity, onWorker) {
  const { SABWritable } = require('./seed/sab-writable');
  const HEADER_FIELDS = 6;
  const I32 = Int32Array.BYTES_PER_ELEMENT;
  // The seed wastes one slot: a ring of capacity + 1 holds capacity values.
  const slots = capacity + 1;
  const sab = new SharedArrayBuffer((HEADER_FIELDS + slots) * I32);
  const header = new Int32Array(sab, 0, HEADER_FIELDS);
  const data = new Int32Array(sab, HEADER_FIELDS * I32, slots);
  onWorker(new Worker(path.join(__dirname, 'seed-worker-ready.js'), {
    workerData: { sab, capacity: slots, items, workMs: 0 },
  }));
  return new SABWritable({ header, data, capacity: slots });
}

function addon(items, capacity, onWorker) {
  const shm = require('../../bindings/node');
  const spin = opt.spin >= 0 ? { spin: opt.spin } : {};
  const writable = shm.createWriter({ elementType: 'int32', capacity, ...spin });
  onWorker(new Worker(path.join(__dirname, 'int32-worker.js'), {
    workerData: { endpoint: writable.endpoint(), spin, reader: opt.reader },
  }));
  return writable;
}

if (opt.impl === 'seed' && opt.writer !== 'value') throw new Error('the seed takes one number per write');
let worker;
const writable = (opt.impl === 'seed' ? seed : addon)(opt.items, opt.capacity, (w) => {
  worker = w;
});
const ready = new Promise((resolve) => worker.once('message', resolve));
let lag;
let t0;
const done = ready.then(() => new Promise((resolve, reject) => {
  worker.once('message', resolve);
  worker.once('error', reject);
  lag = lagMonitor(10);
  t0 = performance.now();
  const source = opt.writer === 'batch' ? generateChunks(opt.items) : generateNumbers(opt.items);
  Readable.from(source, { objectMode: true }).pipe(writable);
}));
worker.once('error', (e) => { throw e; });
done.then((got) => {
  const seconds = (performance.now() - t0) / 1000;
  const maxLag = lag.stop();
  if (got.count !== opt.items || got.sum !== expectedSum(opt.items)) {
    throw new Error(`worker saw ${got.count} items, sum ${got.sum}`);
  }
  console.log(JSON.stringify({
    bench: 'int32',
    impl: opt.impl,
    ...(opt.impl === 'addon' ? { writer: opt.writer, reader: opt.reader } : {}),
    items: opt.items,
    capacity: opt.capacity,
    seconds: +seconds.toFixed(4),
    mitems_per_s: +(opt.items / seconds / 1e6).toFixed(3),
    max_timer_lag_ms: +maxLag.max.toFixed(2),
    max_timer_lag_less_cpu_wait_ms: +maxLag.own.toFixed(2),
  }));
  worker.terminate();
});
