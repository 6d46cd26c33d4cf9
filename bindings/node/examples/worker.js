// SPDX-License-Identifier: MIT
// The seed's worker.js over shmpipe: read one Int32, work 20 ms, repeat. The
// read sleeps while the ring is empty; it returns null at end of stream.
const { workerData } = require("worker_threads");
const shmpipe = require(".."); // require("shmpipe") once installed

const reader = shmpipe.openSyncReader(workerData);

main();

function main() {
  while (true) {
    if (!consume()) break;
  }
  reader.close();
}

function consume() {
  const value = reader.readValue();
  if (value === null) return false; // end of stream

  // Simulate work
  busyWork();

  return true;
}

function busyWork() {
  const end = Date.now() + 20;
  while (Date.now() < end);
}
