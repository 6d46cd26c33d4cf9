// SPDX-License-Identifier: MIT
// One pass over a file, several digests at once: the file is read once,
// straight into a broadcast pipe (reserve, fs.readSync, commit), and each
// of N workers reads every byte of it in place (peek / consume) to compute
// its own digest. The ring is shared, not copied per worker: the main
// thread goes at the pace of the slowest worker and never blocks (reserve()
// waits for room in the event loop). Prints one line per digest, as
// `sha256sum --tag` (and sha1sum, md5sum, ...) would:
//   node examples/multihash.js FILE [ALGORITHM...]   (default: sha256 sha1 md5)
const fs = require("fs");
const crypto = require("crypto");
const { Worker, isMainThread, workerData, parentPort } = require("worker_threads");
const shmpipe = require(".."); // require("shmpipe") once installed

if (isMainThread) {
  main().catch((err) => {
    console.error(`multihash: ${err.message}`);
    process.exitCode = 1;
  });
} else {
  // A worker: one reader of the pipe, one digest.
  const reader = shmpipe.openSyncReader(workerData.endpoint);
  const hash = crypto.createHash(workerData.algorithm);
  for (let view; (view = reader.peek()) !== null; ) {
    hash.update(view); // the bytes in the ring itself
    reader.consume(); // done with them: the writer may reuse their room once every worker is
  }
  reader.close();
  parentPort.postMessage(hash.digest("hex"));
}

async function main() {
  const [file, ...asked] = process.argv.slice(2);
  if (!file) throw new Error("usage: node examples/multihash.js FILE [ALGORITHM...]");
  const algorithms = asked.length ? asked : ["sha256", "sha1", "md5"];
  for (const a of algorithms) {
    if (!crypto.getHashes().includes(a)) throw new Error(`unknown digest: ${a}`);
  }
  const fd = fs.openSync(file, "r");

  // One reader per worker; each endpoint opens one of them.
  const writer = shmpipe.createWriter({ readers: algorithms.length, capacity: 1 << 20 });
  let failed;
  const failure = new Promise((_, reject) => { failed = reject; });
  const digests = algorithms.map((algorithm) => {
    const worker = new Worker(__filename, { workerData: { endpoint: writer.endpoint(), algorithm } });
    return new Promise((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", (err) => { reject(err); failed(err); });
    });
  });

  try {
    // Every worker attached: each gets the file from its first byte.
    await Promise.race([writer.waitReaders(), failure]);
    for (;;) {
      const room = await writer.reserve(64 * 1024);
      const n = fs.readSync(fd, room, 0, room.length, null);
      writer.commit(n);
      if (n === 0) break;
    }
    writer.end();
    const hex = await Promise.race([Promise.all(digests), failure]);
    algorithms.forEach((a, i) => console.log(`${a.toUpperCase()} (${file}) = ${hex[i]}`));
  } catch (err) {
    writer.destroy(err); // the workers see ECONNRESET, not a clean end
    throw err;
  } finally {
    fs.closeSync(fd);
  }
}
