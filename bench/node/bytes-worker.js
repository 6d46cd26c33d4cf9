// SPDX-License-Identifier: MIT
'use strict';
// Consumer for bytes.js: counts bytes and checks each chunk's stamps.
// Posts 'ready' first (once its end is open).
const { workerData, parentPort } = require('node:worker_threads');

const CHUNK = 64 * 1024;
let bytes = 0;
let bad = 0;
let expect = 0;

// A chunk is whole when read from postMessage; from a stream it may arrive
// in pieces, so stamps are checked where a 64 KiB boundary falls.
function check(buf, base) {
  for (let off = (CHUNK - (base % CHUNK)) % CHUNK; off + 4 <= buf.length; off += CHUNK) {
    if (buf.readUInt32LE(off) !== expect) bad++;
    expect++;
  }
}

if (workerData.impl === 'addon') {
  const shm = require('../../bindings/node');
  const r = shm.openSyncReader(workerData.endpoint);
  parentPort.postMessage('ready');
  for (;;) {
    const v = r.peek();
    if (v === null) break;
    check(v, bytes);
    bytes += v.length;
    r.consume();
  }
  r.close();
  parentPort.postMessage({ bytes, bad });
} else {
  parentPort.postMessage('ready');
  let n = 0;
  parentPort.on('message', (ab) => {
    const b = Buffer.from(ab);
    check(b, bytes);
    bytes += b.length;
    n++;
    if (n % workerData.ackEvery === 0) parentPort.postMessage({ ack: n });
    if (n === workerData.chunks) parentPort.postMessage({ bytes, bad });
  });
}
