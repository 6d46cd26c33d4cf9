// SPDX-License-Identifier: MIT
'use strict';
// Work-sharing: createWriter({ records: true, share: true, readers: n })
// deals each record to exactly one of up to n readers, the first to ask (a
// pool of workers), and numbers them 0, 1, 2, ... in the order written: a
// SyncReader gives the number of the record it last took as reader.seq, a
// stream reader opened with { withSeq: true } emits { seq, data }. A reader
// that is terminated (or dies) while it holds a record loses that record,
// and no other; the others get the rest, and every reader gets the end.
const { test } = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const { Worker } = require('node:worker_threads');
const shm = require('..');
const { record, lengthOf, wrongWith } = require('./fixtures/share-records');

const workerScript = path.join(__dirname, 'fixtures', 'share-worker.js');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A worker taking records from one endpoint (fixtures/share-worker.js):
// `ready` once its end is open, `held` with the record a holding worker
// peeked, `result` with what it took.
function shareWorker(endpoint, how, extra = {}) {
  const wk = new Worker(workerScript, { workerData: { endpoint, how, ...extra } });
  let ready, held;
  const readyP = new Promise((resolve) => { ready = resolve; });
  const heldP = new Promise((resolve) => { held = resolve; });
  const result = new Promise((resolve, reject) => {
    wk.on('message', (m) => {
      if (m === 'ready') ready();
      else if (m.held) held(m.held);
      else resolve(m);
    });
    wk.once('error', reject);
    wk.once('exit', (code) => reject(new Error(`${how} worker exited (${code}) before its result`)));
  });
  result.catch(() => {}); // a holding worker never gives one
  return { worker: wk, ready: readyP, held: heldP, result };
}

// Writes records from..to-1 (fixtures/share-records) in order, honouring
// backpressure; resolves once end() has called back (or, with end false,
// once the last record is in the ring).
function writeRecords(w, from, to, end = true) {
  return new Promise((resolve, reject) => {
    w.once('error', reject);
    let i = from;
    const pump = () => {
      while (i < to) {
        const last = i === to - 1;
        const ok = w.write(record(i++), last && !end ? () => resolve() : undefined);
        if (!ok && !last) return w.once('drain', pump);
      }
      if (end) w.end(() => resolve());
    };
    pump();
  });
}

// Checks that the seqs the readers took are 0..n-1 but the `lost` ones,
// each once, none twice; returns how many each took.
function assertEachOnce(results, n, lost = []) {
  const seen = new Uint8Array(n);
  for (const x of lost) seen[x] = 2;
  for (const [k, r] of results.entries()) {
    for (const s of r.seqs) {
      assert.ok(s < n, `reader ${k} took record ${s}, beyond the ${n} written`);
      assert.notStrictEqual(seen[s], 2, `reader ${k} took record ${s}, which was lost`);
      assert.strictEqual(seen[s], 0, `record ${s} arrived twice (the second time at reader ${k})`);
      seen[s] = 1;
    }
  }
  const missing = [];
  for (let s = 0; s < n && missing.length < 10; s++) if (seen[s] === 0) missing.push(s);
  assert.deepStrictEqual(missing, [], `records that arrived nowhere (the first 10): ${missing}`);
  return results.map((r) => r.seqs.length);
}

test('200k records of varying sizes to 4 workers: each arrives once, at one worker, under its own number', { timeout: 180000 }, async () => {
  const n = 200000;
  const w = shm.createWriter({ records: true, share: true, readers: 4, capacity: 64 * 1024 });
  assert.strictEqual(w.share, true);
  assert.strictEqual(w.readers, 4);
  const eps = [0, 1, 2, 3].map(() => w.endpoint());
  assert.ok(eps.every((e) => e.share === true && e.records === true && e.readers === 4));
  // The four ways to take a record: read(), peek()/consume(), readInto(),
  // and a stream reader's 'data' events with { seq, data }.
  const hows = ['read', 'peek', 'readInto', 'stream'];
  const workers = eps.map((ep, i) => shareWorker(ep, hows[i]));
  assert.strictEqual(await w.waitReaders(4), 4);
  await writeRecords(w, 0, n);
  const results = await Promise.all(workers.map((x) => x.result));
  for (const [i, r] of results.entries()) {
    assert.strictEqual(r.wrong, null, `${hows[i]} worker: ${r.wrong}`);
    assert.strictEqual(r.code, null, `${hows[i]} worker failed with ${r.code}`);
    assert.ok(r.ended, `${hows[i]} worker saw the end of the stream`);
    // A reader takes the records in the order written (its share of them).
    for (let k = 1; k < r.seqs.length; k++) {
      if (r.seqs[k] <= r.seqs[k - 1]) assert.fail(`${hows[i]} worker took ${r.seqs[k]} after ${r.seqs[k - 1]}`);
    }
  }
  const counts = assertEachOnce(results, n);
  assert.strictEqual(counts.reduce((a, b) => a + b, 0), n);
  // Shared, not broadcast: more than one worker took records.
  assert.ok(counts.filter((c) => c > 0).length >= 2, `records per worker: ${counts}`);
  const s = w.stats();
  assert.strictEqual(s.producedCount, n);
});

test('a worker terminated while it holds a peeked record loses that one record; the others get the rest', { timeout: 60000 }, async () => {
  const n = 5000;
  const capacity = 64 * 1024; // records of up to 17 KiB
  const w = shm.createWriter({ records: true, share: true, readers: 3, capacity });
  const gate = new Int32Array(new SharedArrayBuffer(4));
  const victim = shareWorker(w.endpoint(), 'read', { hold: true });
  const others = [shareWorker(w.endpoint(), 'read', { gate }), shareWorker(w.endpoint(), 'peek', { gate })];
  await Promise.all([victim.ready, ...others.map((x) => x.ready)]);
  assert.strictEqual(await w.waitReaders(3), 3);
  let allIn = false;
  const written = writeRecords(w, 0, n, false).then(() => { allIn = true; });
  // The others wait at their gate: the victim takes the first record, and
  // peeks nothing more while it holds it.
  const held = await victim.held;
  assert.deepStrictEqual(held, { seq: 0, wrong: null });
  Atomics.store(gate, 0, 1);
  Atomics.notify(gate, 0);
  // The others take every record but the held one, and the writer is held
  // back by it: the ring cannot pass it while its reader lives.
  await sleep(300);
  const before = w.stats();
  assert.strictEqual(allIn, false, 'the writer went past a record a live reader holds');
  assert.ok(before.writeIndex <= capacity, `the writer is ${before.writeIndex} bytes on, past the held record at 0`);
  await victim.worker.terminate();
  await written;
  await new Promise((resolve) => w.end(resolve));
  const results = await Promise.all(others.map((x) => x.result));
  for (const r of results) {
    assert.strictEqual(r.wrong, null, r.wrong);
    assert.strictEqual(r.code, null);
    assert.ok(r.ended);
  }
  // Record 0 went with the victim: never given again, and nothing else lost.
  const counts = assertEachOnce(results, n, [0]);
  assert.strictEqual(counts[0] + counts[1], n - 1);
});

test('a worker terminated while it waits for a record holds none: nothing is lost', { timeout: 30000 }, async () => {
  const w = shm.createWriter({ records: true, share: true, readers: 2, capacity: 64 * 1024 });
  const sleeper = shareWorker(w.endpoint(), 'read');
  await sleeper.ready;
  await sleep(50); // in its read, waiting: the ring is empty
  const n = 2000;
  const gate = new Int32Array(new SharedArrayBuffer(4));
  const live = shareWorker(w.endpoint(), 'peek', { gate });
  await live.ready;
  assert.strictEqual(await w.waitReaders(2), 2);
  await sleeper.worker.terminate();
  Atomics.store(gate, 0, 1);
  Atomics.notify(gate, 0);
  await writeRecords(w, 0, n);
  const r = await live.result;
  assert.strictEqual(r.wrong, null, r.wrong);
  assert.ok(r.ended);
  assertEachOnce([r], n);
});

test('a reader process killed (SIGKILL) while it holds a record loses that one; the other reader gets the rest', { timeout: 60000 }, async () => {
  const name = `/shmpipe-node-test-${process.pid}-share-kill`;
  const capacity = 64 * 1024;
  const w = shm.createWriter({ name, records: true, share: true, readers: 2, capacity });
  try {
    // A named work-sharing pipe, opened by name: the end knows its mode.
    const child = spawn(process.execPath, ['-e', `
      const shm = require(${JSON.stringify(path.join(__dirname, '..'))});
      const r = shm.openSyncReader(${JSON.stringify(name)}, { records: true, share: true });
      const v = r.peek();
      process.send({ seq: r.seq, share: r.share, first: v.readUInt32LE(0) });
      setInterval(() => {}, 1000);
    `], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await w.waitReaders(1);
    const n = 3000;
    let allIn = false;
    const written = writeRecords(w, 0, n, false).then(() => { allIn = true; });
    const held = await new Promise((resolve) => child.once('message', resolve));
    assert.deepStrictEqual(held, { seq: 0, share: true, first: 0 });
    const gate = new Int32Array(new SharedArrayBuffer(4));
    const live = shareWorker(w.endpoint(), 'read', { gate });
    await live.ready;
    Atomics.store(gate, 0, 1);
    Atomics.notify(gate, 0);
    await sleep(300);
    assert.strictEqual(allIn, false, 'the writer went past a record a live process holds');
    child.kill('SIGKILL');
    await exited;
    await written;
    await new Promise((resolve) => w.end(resolve));
    const r = await live.result;
    assert.strictEqual(r.wrong, null, r.wrong);
    assert.ok(r.ended);
    assertEachOnce([r], n, [0]);
  } finally {
    shm.unlink(name);
  }
});

test('SyncReader.seq: null before a record and after the end; a peek holds its record; a TypeError off a shared pipe', () => {
  const w = shm.createSyncWriter({ records: true, share: true, readers: 2, capacity: 4096, timeout: 1000 });
  const a = shm.openSyncReader(w.endpoint(), { timeout: 0 });
  const b = shm.openSyncReader(w.endpoint(), { timeout: 0 });
  assert.strictEqual(a.share, true);
  assert.strictEqual(a.records, true);
  assert.strictEqual(a.seq, null);
  for (let i = 0; i < 6; i++) w.write(record(i));
  // A peek takes the record: b does not see it, and a peeks it again until consumed.
  const v = a.peek();
  assert.strictEqual(a.seq, 0);
  assert.strictEqual(wrongWith(v, 0), null);
  assert.strictEqual(wrongWith(b.read(), b.seq), null);
  assert.strictEqual(b.seq, 1);
  a.consume(0); // nothing consumed: still held
  assert.strictEqual(a.peek().readUInt32LE(0), 0);
  a.consume();
  assert.strictEqual(a.seq, 0, 'the number stays until the next record');
  const into = Buffer.alloc(64 * 1024);
  const got = a.readInto(into);
  assert.strictEqual(got, lengthOf(2));
  assert.strictEqual(wrongWith(into.subarray(0, got), a.seq), null);
  assert.strictEqual(a.seq, 2);
  // Iterating: seq is the number of the record the loop holds.
  const seen = [];
  for (const x of b) {
    seen.push(b.seq);
    assert.strictEqual(wrongWith(x, b.seq), null);
    if (seen.length === 3) break;
  }
  assert.deepStrictEqual(seen, [3, 4, 5]);
  w.close();
  assert.strictEqual(a.read(), null);
  assert.strictEqual(a.seq, null, 'no record at the end of the stream');
  assert.strictEqual(b.peek(), null);
  assert.strictEqual(b.seq, null);
  a.close();
  b.close();

  const plain = shm.createSyncWriter({ records: true, readers: 2 });
  const p = shm.openSyncReader(plain.endpoint());
  assert.strictEqual(p.share, false);
  assert.throws(() => p.seq, { name: 'TypeError', message: /not a work-sharing pipe/ });
  p.close();
  plain.close();
});

test('the end of the stream, and an abort, reach every reader after the records', async () => {
  for (const abort of [false, true]) {
    const w = shm.createSyncWriter({ records: true, share: true, readers: 3, capacity: 4096, timeout: 1000 });
    const sync = [shm.openSyncReader(w.endpoint(), { timeout: 1000 }), shm.openSyncReader(w.endpoint(), { timeout: 1000 })];
    const stream = shm.openReader(w.endpoint(), { withSeq: true });
    for (let i = 0; i < 4; i++) w.write(record(i));
    assert.strictEqual(sync[0].read().readUInt32LE(0), 0);
    assert.strictEqual(sync[1].peek().readUInt32LE(0), 1); // held across the close
    if (abort) w.abort();
    else w.close();
    sync[1].consume();
    const streamGot = [];
    const streamEnd = new Promise((resolve) => {
      stream.on('data', (c) => streamGot.push(c.seq));
      stream.on('end', () => resolve('end'));
      stream.on('error', (err) => resolve(err.code));
    });
    const syncGot = [];
    let syncEnd;
    try {
      for (let v; (v = sync[0].read()) !== null; ) syncGot.push(sync[0].seq);
      syncEnd = 'end';
    } catch (err) {
      syncEnd = err.code;
    }
    const want = abort ? 'ECONNRESET' : 'end';
    assert.strictEqual(syncEnd, want);
    assert.strictEqual(await streamEnd, want);
    assert.throws(() => { if (sync[1].read() === null) throw Object.assign(new Error('end'), { code: 'end' }); }, { code: want });
    assert.deepStrictEqual([...syncGot, ...streamGot].sort(), [2, 3], 'the records left went to the readers left');
    for (const x of sync) x.close();
  }
});

test('readInto() of a record too large for the target: EMSGSIZE, and the record stays this reader\'s', () => {
  const w = shm.createSyncWriter({ records: true, share: true, readers: 2, capacity: 4096, timeout: 0 });
  const a = shm.openSyncReader(w.endpoint(), { timeout: 0 });
  const b = shm.openSyncReader(w.endpoint(), { timeout: 0 });
  w.write(record(0));
  w.write(record(1));
  assert.throws(() => a.readInto(Buffer.alloc(3)), { code: 'EMSGSIZE' });
  assert.strictEqual(a.seq, null);
  assert.strictEqual(wrongWith(b.read(), b.seq), null);
  assert.strictEqual(b.seq, 1);
  assert.throws(() => b.read(), { code: 'EAGAIN' });
  assert.strictEqual(wrongWith(a.read(), a.seq), null);
  assert.strictEqual(a.seq, 0);
  for (const x of [a, b, w]) x.close();
});

test('views() of a shared pipe: seq is the viewed record\'s', async () => {
  const w = shm.createSyncWriter({ records: true, share: true, readers: 2, capacity: 4096 });
  const r = shm.openSyncReader(w.endpoint());
  for (let i = 0; i < 5; i++) w.write(record(i));
  w.close();
  const seqs = [];
  for await (const v of shm.views(r)) {
    assert.strictEqual(wrongWith(v, r.seq), null);
    seqs.push(r.seq);
  }
  assert.deepStrictEqual(seqs, [0, 1, 2, 3, 4]);
  assert.strictEqual(r.seq, null);
  r.close();
});

test('a stream reader: { seq, data } with withSeq, Buffers without; one record taken ahead by default', async () => {
  const w = shm.createWriter({ records: true, share: true, readers: 3, capacity: 4096 });
  const withSeq = shm.openReader(w.endpoint(), { withSeq: true });
  const plain = shm.openReader(w.endpoint());
  assert.strictEqual(withSeq.share, true);
  assert.strictEqual(withSeq.withSeq, true);
  assert.strictEqual(plain.withSeq, false);
  assert.strictEqual(withSeq.readableHighWaterMark, 1);
  assert.strictEqual(shm.openReader(w.endpoint(), { highWaterMark: 8 }).destroy().readableHighWaterMark, 8);
  const got = [];
  const collect = (x) => new Promise((resolve, reject) => {
    x.on('data', (c) => got.push(c));
    x.on('end', resolve);
    x.on('error', reject);
  });
  const ends = [collect(withSeq), collect(plain)];
  await w.waitReaders(2);
  const n = 300;
  await writeRecords(w, 0, n);
  await Promise.all(ends);
  assert.strictEqual(got.length, n);
  const seqs = [];
  let buffers = 0;
  for (const c of got) {
    if (Buffer.isBuffer(c)) {
      buffers++;
      continue;
    }
    assert.deepStrictEqual(Object.keys(c), ['seq', 'data']);
    assert.strictEqual(wrongWith(c.data, c.seq), null);
    seqs.push(c.seq);
  }
  assert.strictEqual(buffers + seqs.length, n);
  // The plain reader's records are the ones whose numbers the other lacks.
  const plainIdx = got.filter((c) => Buffer.isBuffer(c)).map((c) => c.readUInt32LE(0));
  assert.strictEqual(new Set([...seqs, ...plainIdx]).size, n);
});

test('share: validated when creating', () => {
  for (const create of [shm.createWriter, shm.createSyncWriter]) {
    // Records, and a pool of at least two readers.
    assert.throws(() => create({ share: true, readers: 2 }), { name: 'TypeError', message: /needs records: true/ });
    assert.throws(() => create({ share: true, elementType: 'int32', readers: 2 }), { name: 'TypeError', message: /needs records: true/ });
    assert.throws(() => create({ share: true, records: true }), { name: 'TypeError', message: /needs readers: n/ });
    for (const readers of [0, 1]) {
      assert.throws(() => create({ share: true, records: true, readers }), { name: 'RangeError', message: /readers: n of 2 to 64, not/ });
    }
    for (const bad of [1, 'yes', null, {}]) {
      assert.throws(() => create({ share: bad, records: true, readers: 2 }), { name: 'TypeError', message: /share must be a boolean/ });
    }
    assert.throws(() => create({ share: true, records: true, readers: 2, capacity: 23 }), RangeError);
    // The smallest ring, and share: false, which is a broadcast pipe.
    const small = create({ share: true, records: true, readers: 2, capacity: 24 });
    assert.strictEqual(small.share, true);
    const broadcast = create({ share: false, records: true, readers: 2 });
    assert.strictEqual(broadcast.share, false);
    assert.strictEqual(broadcast.endpoint().share, false);
    for (const x of [small, broadcast]) (x.close ?? x.destroy).call(x);
  }
  for (const create of [shm.createReader, shm.createSyncReader]) {
    assert.throws(() => create({ share: true, records: true, readers: 2 }), TypeError);
    assert.throws(() => create({ share: true, records: true }), { name: 'TypeError', message: /created by its writer/ });
  }
});

test('opening: the end takes share from the pipe; share or withSeq that contradict it are refused, the end left free', () => {
  const w = shm.createSyncWriter({ records: true, share: true, readers: 2, capacity: 4096, timeout: 1000 });
  const ep = w.endpoint();
  assert.throws(() => shm.openSyncReader(ep, { share: false }), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => shm.openSyncReader(ep, { withSeq: true }), { name: 'TypeError', message: /unknown option: withSeq.*reader\.seq/ });
  const r = shm.openSyncReader(ep, { share: true }); // not used up by the refusals
  assert.strictEqual(r.share, true);
  r.close();

  const plain = shm.createSyncWriter({ records: true });
  const pep = plain.endpoint();
  assert.throws(() => shm.openReader(pep, { withSeq: true }), { name: 'TypeError', message: /withSeq: true, but the pipe is not a work-sharing pipe/ });
  assert.throws(() => shm.openSyncReader(pep, { share: true }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => shm.openReader(pep, { withSeq: 'yes' }), { name: 'TypeError', message: /withSeq must be a boolean/ });
  assert.throws(() => shm.openReader(pep, { withSeq: true, share: false }), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
  const pr = shm.openReader(pep);
  assert.strictEqual(pr.share, false);
  pr.destroy();
  plain.close();
  w.close();

  // By name: inspected before the end is taken.
  const name = `/shmpipe-node-test-${process.pid}-share-name`;
  const nw = shm.createWriter({ name, records: true, share: true, readers: 2, capacity: 4096 });
  try {
    assert.throws(() => shm.openSyncReader(name, { share: false }), { code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => shm.openSyncReader(name, { records: false }), { code: 'ERR_INVALID_ARG_VALUE' });
    const a = shm.openReader(name, { withSeq: true });
    const b = shm.openSyncReader(name);
    assert.strictEqual(b.share, true);
    assert.throws(() => shm.openSyncReader(name), { code: 'EBUSY' });
    a.destroy();
    b.close();
  } finally {
    nw.destroy();
    shm.unlink(name);
  }
});

test('a record as large as a shared ring takes, and no larger', async () => {
  const capacity = 4096;
  const max = Math.floor(capacity / 8) * 8 - 16; // SHMPIPE_SHARE_RECORD_MAX
  const w = shm.createWriter({ records: true, share: true, readers: 2, capacity });
  const r = shm.openSyncReader(w.endpoint(), { timeout: 5000 });
  assert.throws(() => w.reserve(max + 1), { name: 'RangeError', message: new RegExp(`largest record \\(${max} bytes\\)`) });
  const buf = await w.reserve(max);
  buf.fill(7);
  w.commit(max);
  const got = r.read();
  assert.strictEqual(got.length, max);
  assert.strictEqual(r.seq, 0);
  const err = await new Promise((resolve) => {
    w.once('error', resolve);
    w.write(Buffer.alloc(max + 1));
  });
  assert.strictEqual(err.code, 'EMSGSIZE');
  r.close();
});

test('examples/pool-hash.js: chunk digests in order and their digest, as one thread computes them', { timeout: 120000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shmpipe-pool-hash-'));
  const file = path.join(dir, 'data.bin');
  const script = path.join(__dirname, '..', 'examples', 'pool-hash.js');
  // What the example prints, computed here in one thread: each chunk's
  // sha256 in order, then the sha256 of those digests (32 bytes each) one
  // after the other.
  const expected = (chunkSize) => {
    const data = fs.readFileSync(file);
    const lines = [];
    const all = crypto.createHash('sha256');
    let i = 0;
    for (let off = 0; off < data.length; off += chunkSize, i++) {
      const d = crypto.createHash('sha256').update(data.subarray(off, off + chunkSize)).digest();
      all.update(d);
      lines.push(`${i} ${off} ${Math.min(chunkSize, data.length - off)} ${d.toString('hex')}`);
    }
    lines.push(`sha256 of ${i} chunk digests: ${all.digest('hex')}`);
    return lines.join('\n') + '\n';
  };
  const run = (...args) => execFileSync(process.execPath, [script, file, ...args], { encoding: 'utf8' });
  try {
    // 5.5 MiB and a bit: six 1 MiB chunks, the last one shorter.
    fs.writeFileSync(file, crypto.randomBytes(5.5 * 1024 * 1024 + 12345));
    assert.strictEqual(run(), expected(1 << 20));
    // Many small chunks, more than the ring holds at once, to 3 workers.
    assert.strictEqual(run('3', '20000'), expected(20000));
    // A file of exactly two chunks; an empty file: no chunk.
    fs.writeFileSync(file, crypto.randomBytes(2 * 65536));
    assert.strictEqual(run('2', '65536'), expected(65536));
    fs.writeFileSync(file, '');
    assert.strictEqual(run('2'), expected(1 << 20));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
