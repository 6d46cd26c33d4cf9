'use strict';
// 64 KiB Buffers from the main thread to a worker.
//   node bench/node/bytes.js --impl addon|postmessage [--mib N]
// addon: a Writable over a 2 MiB ring, read in the worker in place (peek /
// consume). postmessage: worker.postMessage with the ArrayBuffer
// transferred, at most 32 chunks (2 MiB) in flight, acknowledged by the
// worker every 8 chunks, so memory is bounded as with the ring. Each chunk
// is a new Buffer (as fs.createReadStream gives) stamped with its number;
// the worker checks the stamps and counts the bytes. Prints one JSON line;
// max_timer_lag_ms is the worst lateness of a 10 ms timer on the main thread.
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

function runAddon(done) {
  const shm = require('../../bindings/node');
  const w = shm.createWriter({ capacity: WINDOW * CHUNK });
  const worker = new Worker(path.join(__dirname, 'bytes-worker.js'), {
    workerData: { impl: 'addon', endpoint: w.endpoint(), chunks },
  });
  worker.once('message', (m) => done(worker, m));
  worker.once('error', (e) => { throw e; });
  let i = 0;
  const pump = () => {
    while (i < chunks) {
      if (!w.write(makeChunk(i++))) return w.once('drain', pump);
    }
    w.end();
  };
  pump();
}

function runPostMessage(done) {
  const worker = new Worker(path.join(__dirname, 'bytes-worker.js'), {
    workerData: { impl: 'postmessage', chunks, ackEvery: ACK_EVERY },
  });
  let i = 0;
  let acked = 0;
  const pump = () => {
    while (i < chunks && i - acked < WINDOW) {
      const b = makeChunk(i++);
      worker.postMessage(b.buffer, [b.buffer]);
    }
  };
  worker.on('message', (m) => {
    if (m.ack !== undefined) {
      acked = m.ack;
      pump();
    } else {
      done(worker, m);
    }
  });
  worker.once('error', (e) => { throw e; });
  pump();
}

const lag = lagMonitor(10);
const t0 = performance.now();
(opt.impl === 'addon' ? runAddon : runPostMessage)((worker, got) => {
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
