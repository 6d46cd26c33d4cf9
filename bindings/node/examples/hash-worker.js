// SPDX-License-Identifier: MIT
// Reads the pipe in place (peek / consume: no copy out of the ring), hashing
// and counting lines, and posts the result at end of stream.
const crypto = require("crypto");
const { workerData, parentPort } = require("worker_threads");
const shmpipe = require(".."); // require("shmpipe") once installed

const reader = shmpipe.openSyncReader(workerData);
const hash = crypto.createHash("sha256");
let bytes = 0;
let lines = 0;
for (;;) {
  const view = reader.peek(); // a Buffer over the ring itself
  if (view === null) break; // end of stream
  hash.update(view);
  for (let i = view.indexOf(10); i !== -1; i = view.indexOf(10, i + 1)) lines++;
  bytes += view.length;
  reader.consume(); // gives the bytes back to the writer; view is now empty
}
reader.close();
parentPort.postMessage({ bytes, lines, hash: hash.digest("hex") });
