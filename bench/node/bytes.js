// SPDX-License-Identifier: MIT
'use strict';
// 64 KiB Buffers from the main thread to a worker.
//   node bench/node/bytes.js --impl addon|reserve|postmessage [--mib N]
// addon: each chunk is a new Buffer (as fs.createReadStream gives) stamped
// with its number, written to a Writable over a 2 MiB ring, which copies it
// in. reserve: the same stamps made in the ring itself, 64 KiB at a time
// (await writer.reserve(), commit(): the zero-copy way, no Buffer made).
// postmessage: a new Buffer per chunk, stamped, sent with worker.postMessage
// and its ArrayBuffer transferred, at most 32 chunks (2 MiB) in flight,
// acknowledged by the worker every 8 chunks, so memory is bounded as with
// the ring. In every case the worker checks the stamps and counts the
// bytes, reading the ring in place (peek / consume). The clock starts when
// the worker has said it is ready. Prints one JSON line; max_timer_lag_ms
// is the worst lateness of a 10 ms timer on the main thread.
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { args, lagMonitor } = require('./common');

const opt = args({ impl: 'addon', mib: 1024 });
const CHUNK = 64 * 1024;
const chunks = opt.mib * 16;
const WINDOW = 32;
const ACK_EVERY = 8;

function makeChunk(i) {
  const b = Buffer.allocUnsafeSlow(CHUNK);
  b.writeUInt32LE(i, 0);
  b.writeUInt32LE(i, CHUNK - 4);
  return b;
}

// Starts the worker; start() runs once it is ready, done(worker, result)
// when it has counted everything.
function launch(workerData, start, done) {
  const worker = new Worker(path.join(__dirname, 'bytes-worker.js'), { workerData });
  worker.once('error', (e) => { throw e; });
  worker.once('message', () => {
    worker.on('message', (m) => {
      if (m.ack === undefined) done(worker, m);
    });
    start(worker);
  });
}

function runAddon(start, done) {
  const shm = require('../../bindings/node');
  const w = shm.createWriter({ capacity: WINDOW * CHUNK });
  launch({ impl: 'addon', endpoint: w.endpoint(), chunks }, () => {
    start();
    let i = 0;
    const pump = () => {
      while (i < chunks) {
        if (!w.write(makeChunk(i++))) return w.once('drain', pump);
      }
      w.end();
    };
    pump();
  }, done);
}

function runReserve(start, done) {
  const shm = require('../../bindings/node');
  const w = shm.createWriter({ capacity: WINDOW * CHUNK });
  launch({ impl: 'addon', endpoint: w.endpoint(), chunks }, async () => {
    start();
    for (let i = 0; i < chunks; i++) {
      const b = await w.reserve(CHUNK);
      b.writeUInt32LE(i, 0);
      b.writeUInt32LE(i, CHUNK - 4);
      w.commit(CHUNK);
    }
    w.end();
  }, done);
}

function runPostMessage(start, done) {
  let i = 0;
  let acked = 0;
  const pump = () => {
    while (i < chunks && i - acked < WINDOW) {
      const b = makeChunk(i++);
      worker.postMessage(b.buffer, [b.buffer]);
    }
  };
  let worker;
  launch({ impl: 'postmessage', chunks, ackEvery: ACK_EVERY }, (w) => {
    worker = w;
    worker.on('message', (m) => {
      if (m.ack !== undefined) {
        acked = m.ack;
        pump();
      }
    });
    start();
    pump();
  }, (w, m) => done(w, m));
}

let lag;
let t0;
const start = () => {
  lag = lagMonitor(10);
  t0 = performance.now();
};
const run = { addon: runAddon, reserve: runReserve, postmessage: runPostMessage }[opt.impl];
if (!run) throw new Error(`unknown --impl ${opt.impl}`);
run(start, (worker, got) => {
  const seconds = (performance.now() - t0) / 1000;
  const maxLag = lag.stop();
  if (got.bytes !== chunks * CHUNK || got.bad !== 0) {
    throw new Error(`worker saw ${got.bytes} bytes, ${got.bad} bad stamps`);
  }
  console.log(JSON.stringify({
    bench: 'bytes64k',
    impl: opt.impl,
    mib: opt.mib,
    seconds: +seconds.toFixed(4),
    gbytes_per_s: +(got.bytes / seconds / 1e9).toFixed(3),
    max_timer_lag_ms: +maxLag.max.toFixed(2),
    max_timer_lag_less_cpu_wait_ms: +maxLag.own.toFixed(2),
  }));
  worker.terminate();
});
