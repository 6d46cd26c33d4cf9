// SPDX-License-Identifier: MIT
// A file read straight into a shmpipe, with no copy on the way: each
// fs.readSync fills room the writer reserved in the ring itself, an ASCII
// upper-casing transform runs over those bytes in place, and commit()
// hands them to a worker, which hashes what it reads (in place too). The
// writer also hashes what it commits, so the two can be compared. The
// main thread never blocks: reserve() waits for room in the event loop.
//   node examples/pipeline.js [FILE]    (default: the node binary itself)
const fs = require("fs");
const crypto = require("crypto");
const { Worker } = require("worker_threads");
const shmpipe = require(".."); // require("shmpipe") once installed

const file = process.argv[2] || process.execPath;
const writer = shmpipe.createWriter({ capacity: 1 << 20 });
const worker = new Worker(__dirname + "/hash-worker.js", { workerData: writer.endpoint() });

// The transform: ASCII lower case to upper case, over the ring's bytes.
function upper(buf) {
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] >= 0x61 && buf[i] <= 0x7a) buf[i] -= 0x20;
  }
}

const t0 = performance.now();
const expected = crypto.createHash("sha256");

async function copy() {
  const fd = fs.openSync(file, "r");
  try {
    for (;;) {
      // At least 64 KiB of room, once the worker has made it; often more,
      // which the read may fill.
      const room = await writer.reserve(64 * 1024);
      const n = fs.readSync(fd, room, 0, room.length, null);
      const data = room.subarray(0, n);
      upper(data);
      expected.update(data);
      writer.commit(n); // the worker may read them now; room is detached
      if (n === 0) break; // end of file (the empty commit published nothing)
    }
    writer.end(); // end of stream
  } catch (err) {
    writer.destroy(err); // the worker sees ECONNRESET, not a clean end
    throw err;
  } finally {
    fs.closeSync(fd);
  }
}
copy();

worker.once("message", ({ bytes, lines, hash }) => {
  const seconds = (performance.now() - t0) / 1000;
  const want = expected.digest("hex");
  console.log(`${file}: ${bytes} bytes, ${lines} lines in ${seconds.toFixed(3)} s`);
  console.log(`worker sha256 ${hash}`);
  console.log(hash === want ? "matches the transform's output" : `MISMATCH: expected ${want}`);
  process.exitCode = hash === want ? 0 : 1;
});
