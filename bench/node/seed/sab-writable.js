// SPDX-License-Identifier: MIT
// The seed's SABWritable, as the seed gives it ("File 1 — sab-writable.js").
const { Writable } = require("stream");

class SABWritable extends Writable {
  constructor({ header, data, capacity }) {
    super({ objectMode: true });

    this.header = header;
    this.data = data;
    this.capacity = capacity;
  }

  _write(chunk, _enc, callback) {
    // chunk is a value (Int32 in our case)
    while (true) {
      const write = Atomics.load(this.header, 0);
      const read = Atomics.load(this.header, 1);
      const next = (write + 1) % this.capacity;

      if (next === read) {
        // Ring buffer full → hard backpressure
        Atomics.add(this.header, 4, 1); // producerWaits
        Atomics.wait(this.header, 1, read);
        continue;
      }

      // Write into shared memory
      this.data[write] = chunk;

      Atomics.store(this.header, 0, next);
      Atomics.add(this.header, 2, 1); // producedCount
      Atomics.notify(this.header, 0);

      // Signal stream that write completed
      callback();
      return;
    }
  }
}

module.exports = { SABWritable };
