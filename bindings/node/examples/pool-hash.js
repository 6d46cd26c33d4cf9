// SPDX-License-Identifier: MIT
// A pool of workers hashing a file in chunks, the results put back in order.
// The main thread reads the file in fixed-size chunks (1 MiB by default, the
// last one shorter) straight into a work-sharing pipe (reserve, fs.readSync,
// commit): each chunk is one record, and goes to exactly one worker, the
// first free one. A worker hashes the chunk in the ring itself (peek), gives
// it back (consume), and posts { seq, hex } to the main thread: seq is the
// chunk's number, which the pipe gave it. The workers finish in any order;
// the main thread prints each chunk's digest in the file's order, as soon as
// the next one in order is in, then the sha256 of all the chunk digests (32
// bytes each, one after the other):
//   node examples/pool-hash.js FILE [WORKERS [CHUNK_BYTES]]
// prints, for chunk i of n:
//   i OFFSET LENGTH SHA256-HEX
//   ...
//   sha256 of n chunk digests: SHA256-HEX
const fs = require("fs");
const os = require("os");
const crypto = require("crypto");
const { Worker, isMainThread, workerData, parentPort } = require("worker_threads");
const shmpipe = require(".."); // require("shmpipe") once installed

if (isMainThread) {
  main().catch((err) => {
    console.error(`pool-hash: ${err.message}`);
    process.exitCode = 1;
  });
} else {
  // A worker: takes the next chunk nobody took, until the end of the file.
  const reader = shmpipe.openSyncReader(workerData);
  for (let chunk; (chunk = reader.peek()) !== null; ) {
    const hex = crypto.createHash("sha256").update(chunk).digest("hex"); // the bytes in the ring
    const seq = reader.seq; // which chunk this was: 0 for the first
    reader.consume(); // its room is the writer's again
    parentPort.postMessage({ seq, hex });
  }
  reader.close();
}

function positiveInteger(arg, what, min) {
  const n = Number(arg);
  if (!Number.isInteger(n) || n < min) throw new Error(`${what} must be an integer of at least ${min}, not ${arg}`);
  return n;
}

async function main() {
  const [file, workersArg, chunkArg] = process.argv.slice(2);
  if (!file) throw new Error("usage: node examples/pool-hash.js FILE [WORKERS [CHUNK_BYTES]]");
  const cores = os.availableParallelism ? os.availableParallelism() : os.cpus().length;
  // A pool is of 2 to 64 workers (the readers a pipe takes).
  const workers = workersArg ? positiveInteger(workersArg, "WORKERS", 2) : Math.min(64, Math.max(2, cores));
  if (workers > 64) throw new Error("WORKERS must be at most 64");
  const chunkSize = chunkArg ? positiveInteger(chunkArg, "CHUNK_BYTES", 1) : 1 << 20;
  const fd = fs.openSync(file, "r");

  // Room for a chunk in the hands of each worker and two more waiting: a
  // record of a work-sharing pipe takes 16 bytes of frame and its payload
  // padded to 8.
  const recordSpace = 16 + Math.ceil(chunkSize / 8) * 8;
  const writer = shmpipe.createWriter({ records: true, share: true, readers: workers, capacity: (workers + 2) * recordSpace });

  // The digests in by number, printed in order as soon as the next is in.
  const sizes = [];
  const pending = new Map();
  const all = crypto.createHash("sha256");
  let next = 0;
  let chunks = -1; // known at the end of the file
  let failed, finished;
  const failure = new Promise((_, reject) => { failed = reject; });
  const done = new Promise((resolve) => { finished = resolve; });
  const onResult = ({ seq, hex }) => {
    pending.set(seq, hex);
    while (pending.has(next)) {
      const digest = pending.get(next);
      pending.delete(next);
      all.update(Buffer.from(digest, "hex"));
      console.log(`${next} ${next * chunkSize} ${sizes[next]} ${digest}`);
      next++;
    }
    if (next === chunks) finished();
  };
  const pool = [];
  for (let i = 0; i < workers; i++) {
    const worker = new Worker(__filename, { workerData: writer.endpoint() });
    worker.on("message", onResult);
    worker.once("error", failed);
    worker.once("exit", (code) => { if (code !== 0) failed(new Error(`a worker exited with ${code}`)); });
    pool.push(worker);
  }

  try {
    // Every worker attached: the chunks go to the whole pool from the first.
    await Promise.race([writer.waitReaders(), failure]);
    for (let i = 0; ; i++) {
      const room = await Promise.race([writer.reserve(chunkSize), failure]); // a record's room, in the ring
      let n = 0;
      while (n < chunkSize) {
        const k = fs.readSync(fd, room, n, chunkSize - n, null);
        if (k === 0) break;
        n += k;
      }
      sizes[i] = n;
      writer.commit(n); // chunk i, for the first free worker (n 0: nothing, the end)
      if (n < chunkSize) {
        chunks = n === 0 ? i : i + 1;
        break;
      }
    }
    writer.end();
    if (next === chunks) finished();
    await Promise.race([done, failure]);
    console.log(`sha256 of ${chunks} chunk digests: ${all.digest("hex")}`);
  } catch (err) {
    writer.destroy(err); // the workers see ECONNRESET, not a clean end
    for (const worker of pool) worker.terminate();
    throw err;
  } finally {
    fs.closeSync(fd);
  }
}
