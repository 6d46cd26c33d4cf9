// SPDX-License-Identifier: MIT
// The seed's worker ("File 3 — worker.js"), made to terminate: it consumes
// workerData.items values (the seed loops forever), with the seed's busy
// work only if workerData.workMs > 0, and posts back the count and sum.
const { workerData, parentPort } = require("worker_threads");

const CAPACITY = workerData.capacity;
const HEADER_FIELDS = 6;
const I32 = Int32Array.BYTES_PER_ELEMENT;

const header = new Int32Array(workerData.sab, 0, HEADER_FIELDS);
const data = new Int32Array(workerData.sab, HEADER_FIELDS * I32, CAPACITY);

let count = 0;
let sum = 0;

main();

function main() {
  while (count < workerData.items) {
    consume();
  }
  parentPort.postMessage({ count, sum });
}

function consume() {
  while (true) {
    const write = Atomics.load(header, 0);
    const read = Atomics.load(header, 1);

    if (write === read) {
      Atomics.add(header, 5, 1); // consumerWaits
      Atomics.wait(header, 0, write);
      continue;
    }

    const value = data[read];
    const next = (read + 1) % CAPACITY;

    // Simulate work
    if (workerData.workMs > 0) busyWork();
    count++;
    sum = (sum + value) | 0;

    Atomics.store(header, 1, next);
    Atomics.add(header, 3, 1); // consumedCount
    Atomics.notify(header, 1);

    break;
  }
}

function busyWork() {
  const end = Date.now() + workerData.workMs;
  while (Date.now() < end);
}
