// fs.createReadStream(f).pipe(transform).pipe(sink), where the sink is a
// shmpipe and a worker hashes what it reads from it (in place, zero-copy).
// The transform also hashes what it passes on, so the two can be compared.
//   node examples/pipeline.js [FILE]    (default: the node binary itself)
const fs = require("fs");
const crypto = require("crypto");
const { Transform } = require("stream");
const { Worker } = require("worker_threads");
const shmpipe = require(".."); // require("shmpipe") once installed

const file = process.argv[2] || process.execPath;
const sink = shmpipe.createWriter({ capacity: 1 << 20 });
const worker = new Worker(__dirname + "/hash-worker.js", { workerData: sink.endpoint() });

// A transform: ASCII lower case to upper case.
const expected = crypto.createHash("sha256");
const upper = new Transform({
  transform(chunk, _enc, callback) {
    const out = Buffer.from(chunk);
    for (let i = 0; i < out.length; i++) {
      if (out[i] >= 0x61 && out[i] <= 0x7a) out[i] -= 0x20;
    }
    expected.update(out);
    callback(null, out);
  },
});

const t0 = performance.now();
fs.createReadStream(file).pipe(upper).pipe(sink);
worker.once("message", ({ bytes, lines, hash }) => {
  const seconds = (performance.now() - t0) / 1000;
  const want = expected.digest("hex");
  console.log(`${file}: ${bytes} bytes, ${lines} lines in ${seconds.toFixed(3)} s`);
  console.log(`worker sha256 ${hash}`);
  console.log(hash === want ? "matches the transform's output" : `MISMATCH: expected ${want}`);
  process.exitCode = hash === want ? 0 : 1;
});
