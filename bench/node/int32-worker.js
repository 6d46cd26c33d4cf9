// SPDX-License-Identifier: MIT
'use strict';
// Consumer for int32.js --impl addon: the seed's worker loop over the
// synchronous reader, summing what it reads. --reader value (the documented
// way, README's worker.js) calls readValue() once per item; --reader batch
// reads 4096 at a time with readInto(). Posts 'ready' once its end is open.
const { workerData, parentPort } = require('node:worker_threads');
const shm = require('../../bindings/node');

const reader = shm.openSyncReader(workerData.endpoint, workerData.spin);
parentPort.postMessage('ready');
let count = 0;
let sum = 0;
if (workerData.reader === 'value') {
  for (;;) {
    const value = reader.readValue();
    if (value === null) break;
    sum = (sum + value) | 0;
    count++;
  }
} else {
  const batch = new Int32Array(4096);
  for (;;) {
    const n = reader.readInto(batch);
    if (n === 0) break;
    for (let i = 0; i < n; i++) sum = (sum + batch[i]) | 0;
    count += n;
  }
}
reader.close();
parentPort.postMessage({ count, sum });
