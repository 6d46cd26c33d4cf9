'use strict';
// Consumer for int32.js --impl addon: reads Int32 values in batches with the
// synchronous reader (the seed's worker loop, a batch at a time).
const { workerData, parentPort } = require('node:worker_threads');
const shm = require('../../bindings/node');

const reader = shm.openSyncReader(workerData.endpoint, workerData.spin);
const batch = new Int32Array(4096);
let count = 0;
let sum = 0;
for (;;) {
  const n = reader.readInto(batch);
  if (n === 0) break;
  for (let i = 0; i < n; i++) sum = (sum + batch[i]) | 0;
  count += n;
}
reader.close();
parentPort.postMessage({ count, sum });
