// SPDX-License-Identifier: MIT
// The seed's main.js over shmpipe: Int32 values 1, 2, 3 ... from an
// idiomatic Readable piped into a ring of 8 Int32 slots in shared memory,
// consumed by a worker. Unlike the seed, the main thread is not blocked
// while the ring is full: the line of counters below keeps printing.
//   node examples/main.js [COUNT]     (the seed runs forever; so does this without COUNT)
const { Worker } = require("worker_threads");
const { Readable } = require("stream");
const shmpipe = require(".."); // require("shmpipe") once installed

const CAPACITY = 8;
const COUNT = process.argv[2] ? Number(process.argv[2]) : Infinity;

main();

function main() {
  const writable = shmpipe.createWriter({ elementType: "int32", capacity: CAPACITY });

  // Start consumer
  const worker = new Worker(__dirname + "/worker.js", { workerData: writable.endpoint() });

  // Normal Node readable stream
  const readable = Readable.from(generateNumbers(), { objectMode: true });

  readable.pipe(writable);

  // The event loop stays free: print the seed's counters every second.
  const timer = setInterval(() => console.log(writable.stats()), 1000);
  worker.on("exit", () => clearInterval(timer));
}

function* generateNumbers() {
  let i = 1;
  while (i <= COUNT) {
    yield i++;
  }
}
