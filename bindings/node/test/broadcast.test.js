// SPDX-License-Identifier: MIT
'use strict';
// Broadcast: a pipe made with createWriter({ readers: n }) takes up to n
// readers at once, each opened from an endpoint() of its own, and each gets
// every byte written after it attached. The writer goes at the pace of the
// slowest reader still there; a reader that closes or dies stops holding it
// back; EPIPE once none is left. waitReaders() waits, without blocking the
// event loop, until enough have attached.
const { test } = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { fork, spawn, spawnSync, execFileSync } = require('node:child_process');
const { Worker } = require('node:worker_threads');
const shm = require('..');
const { chunk } = require('./fixtures/pattern');

const MiB = 1 << 20;
const readerScript = path.join(__dirname, 'fixtures', 'broadcast-reader.js');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A worker reading one endpoint (fixtures/broadcast-reader.js): resolves
// `ready` once its end is open, `result` with what it read.
function readerWorker(endpoint, extra = {}) {
  const wk = new Worker(readerScript, { workerData: { endpoint, ...extra } });
  let ready;
  const readyP = new Promise((resolve) => { ready = resolve; });
  const result = new Promise((resolve, reject) => {
    wk.on('message', (m) => (m === 'ready' ? ready() : resolve(m)));
    wk.once('error', reject);
    wk.once('exit', (code) => reject(new Error(`reader worker exited (${code}) before its result`)));
  });
  return { worker: wk, ready: readyP, result };
}

// Writes `total` bytes of the pattern in chunks of `size`, honouring
// backpressure; resolves with their sha1 once end() has called back.
function writePattern(w, total, size = MiB) {
  const hash = crypto.createHash('sha1');
  return new Promise((resolve, reject) => {
    w.once('error', reject);
    let pos = 0;
    const pump = () => {
      while (pos < total) {
        const c = chunk(pos, Math.min(size, total - pos));
        hash.update(c);
        pos += c.length;
        if (!w.write(c)) return w.once('drain', pump);
      }
      w.end(() => resolve(hash.digest('hex')));
    };
    pump();
  });
}

test('64 MiB broadcast to 3 workers: each checks every byte and reports the same checksum', { timeout: 120000 }, async () => {
  const total = 64 * MiB;
  const w = shm.createWriter({ readers: 3, capacity: MiB });
  assert.strictEqual(w.readers, 3);
  const eps = [w.endpoint(), w.endpoint(), w.endpoint()];
  assert.strictEqual(new Set(eps.map((e) => e.fd)).size, 3, 'each endpoint has its own descriptor');
  assert.ok(eps.every((e) => e.readers === 3));
  const readers = eps.map((ep) => readerWorker(ep));
  assert.strictEqual(await w.waitReaders(3), 3);
  const sha1 = await writePattern(w, total);
  const got = await Promise.all(readers.map((r) => r.result));
  for (const [i, g] of got.entries()) {
    assert.strictEqual(g.firstBad, -1, `reader ${i}: first wrong byte at ${g.firstBad}`);
    assert.strictEqual(g.bytes, total, `reader ${i}`);
    assert.ok(g.ended, `reader ${i} saw the end of the stream`);
    assert.strictEqual(g.sha1, sha1, `reader ${i}`);
    assert.strictEqual(g.readIndex, total, `reader ${i}: its own position`);
  }
  const s = w.stats();
  assert.strictEqual(s.writeIndex, total);
  assert.ok(s.consumedCount > 0);
});

test('a 4th endpoint of a 3-reader pipe is refused when opened, and a closed reader\'s place is free again', () => {
  const w = shm.createSyncWriter({ readers: 3, capacity: 4096, timeout: 0 });
  const r = [0, 1, 2].map(() => shm.openSyncReader(w.endpoint(), { timeout: 1000 }));
  assert.strictEqual(w.waitReaders(0), 3);
  const fourth = w.endpoint();
  assert.throws(() => shm.openSyncReader(fourth), (err) => {
    assert.strictEqual(err.code, 'EBUSY');
    assert.strictEqual(err.errno, -16);
    assert.match(err.message, /takes 3 readers at once and 3 are attached/);
    return true;
  });
  assert.throws(() => shm.openReader(fourth), { code: 'ERR_SHMPIPE_ENDPOINT' }); // used up
  r[1].close();
  assert.strictEqual(w.waitReaders(0), 2);
  // The writer goes on with the two left; the place is free at once.
  const again = shm.openSyncReader(w.endpoint(), { timeout: 1000 });
  assert.strictEqual(w.waitReaders(3), 3);
  w.write('all');
  for (const x of [r[0], r[2], again]) assert.strictEqual(String(x.read()), 'all');
  w.close();
  for (const x of [r[0], r[2], again]) {
    assert.strictEqual(x.read(), null);
    x.close();
  }
});

test('a reader that closes early does not stop the others', { timeout: 60000 }, async () => {
  const total = 16 * MiB;
  const w = shm.createWriter({ readers: 3, capacity: 256 * 1024 });
  const quitter = readerWorker(w.endpoint(), { stopAfter: MiB });
  const stayers = [readerWorker(w.endpoint()), readerWorker(w.endpoint())];
  await w.waitReaders(3);
  const written = writePattern(w, total);
  const q = await quitter.result;
  assert.ok(q.bytes >= MiB && q.bytes < total, `the quitter read ${q.bytes} bytes`);
  assert.strictEqual(q.firstBad, -1);
  assert.strictEqual(q.ended, false);
  const sha1 = await written;
  for (const g of await Promise.all(stayers.map((r) => r.result))) {
    assert.strictEqual(g.firstBad, -1);
    assert.strictEqual(g.bytes, total);
    assert.strictEqual(g.sha1, sha1);
  }
});

test('a reader process that dies (SIGKILL) stops holding the writer back', { timeout: 60000 }, async () => {
  const name = `/shmpipe-node-test-${process.pid}-bcast-kill`;
  const total = 8 * MiB;
  const w = shm.createWriter({ name, readers: 2, capacity: 64 * 1024 });
  try {
    // A reader in a child process that attaches, then never reads.
    const child = spawn(process.execPath, ['-e', `
      const r = require(${JSON.stringify(path.join(__dirname, '..'))}).openSyncReader(${JSON.stringify(name)});
      process.send('ready');
      setInterval(() => {}, 1000);
    `], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await new Promise((resolve) => child.once('message', resolve));
    const live = readerWorker(w.endpoint());
    assert.strictEqual(await w.waitReaders(2), 2);
    const written = writePattern(w, total);
    await sleep(100);
    // The ring is full, held back by the child, which read nothing.
    assert.ok(w.stats().writeIndex <= 64 * 1024, `${w.stats().writeIndex} bytes written past a reader that reads nothing`);
    child.kill('SIGKILL');
    const sha1 = await written;
    const g = await live.result;
    assert.strictEqual(g.firstBad, -1);
    assert.strictEqual(g.bytes, total);
    assert.strictEqual(g.sha1, sha1);
  } finally {
    shm.unlink(name);
  }
});

test('the writer gets EPIPE once every reader has closed, not before any came', async () => {
  const w = shm.createSyncWriter({ readers: 2, capacity: 4096, timeout: 0 });
  // No reader yet: a wait for one is no EPIPE.
  assert.throws(() => w.waitReaders(1), { code: 'EAGAIN' });
  const a = shm.openSyncReader(w.endpoint(), { timeout: 0 });
  const b = shm.openSyncReader(w.endpoint(), { timeout: 0 });
  w.write('one');
  a.close();
  w.write('two'); // b is still there
  assert.strictEqual(String(b.read()), 'onetwo');
  b.close();
  assert.throws(() => w.write('three'), { code: 'EPIPE' });
  w.close();

  // The stream writer: an 'error' with EPIPE.
  const sw = shm.createWriter({ readers: 2, capacity: 4096 });
  const c = shm.openSyncReader(sw.endpoint());
  const d = shm.openSyncReader(sw.endpoint());
  c.close();
  d.close();
  const err = await new Promise((resolve) => {
    sw.on('error', resolve);
    sw.write('x');
  });
  assert.strictEqual(err.code, 'EPIPE');
});

test('readers: validated when creating; 0 or absent is one reader', () => {
  for (const create of [shm.createWriter, shm.createSyncWriter]) {
    for (const bad of [-1, 65, 1.5, NaN, Infinity]) {
      assert.throws(() => create({ readers: bad }), RangeError, `readers: ${bad}`);
    }
    for (const bad of ['x', '3', null, true, {}]) {
      assert.throws(() => create({ readers: bad }), TypeError, `readers: ${String(bad)}`);
    }
    assert.throws(() => create({ readers: 65 }), /readers must be an integer from 1 to 64/);
    for (const [n, want] of [[undefined, 1], [0, 1], [1, 1], [2, 2], [64, 64]]) {
      const w = create(n === undefined ? {} : { readers: n });
      assert.strictEqual(w.readers, want, `readers: ${n}`);
      // The pipe takes that many (as many as its writer's rendezvous
      // holds while the writer makes no call), and no more.
      const r = [];
      for (let i = 0; i < Math.min(want, 3); i++) r.push(shm.openSyncReader(w.endpoint()));
      if (want < 3) assert.throws(() => shm.openSyncReader(w.endpoint()), { code: 'EBUSY' }, `readers: ${n}`);
      for (const x of r) x.close();
      if (w.close) w.close();
      else w.destroy();
    }
  }
  assert.throws(() => shm.openReader(shm.createSyncWriter().endpoint(), { readers: 2 }), /unknown option: readers/);
});

test('a broadcast pipe is created by its writer: createReader({ readers: 2 }) throws', () => {
  for (const create of [shm.createReader, shm.createSyncReader]) {
    assert.throws(() => create({ readers: 2 }), (err) => {
      assert.ok(err instanceof TypeError);
      assert.match(err.message, /a broadcast pipe is created by its writer/);
      return true;
    });
    assert.throws(() => create({ readers: 64, name: `/shmpipe-node-test-${process.pid}-bcast-r` }), TypeError);
    assert.throws(() => shm.stat(`/shmpipe-node-test-${process.pid}-bcast-r`), { code: 'ENOENT' }); // nothing made
    assert.throws(() => create({ readers: 'x' }), TypeError);
    const one = create({ readers: 1 });
    if (one.close) one.close();
    else one.destroy();
  }
});

test('64 readers at once, each with every byte; a 65th is refused', { timeout: 30000 }, async () => {
  // The readers come while the writer waits for them (and meets them, as
  // its descriptor polls readable: a writer that makes no call leaves them
  // queued at its rendezvous, which takes 16, and the rest get EAGAIN).
  const w = shm.createWriter({ readers: 64, capacity: 4096 });
  const all = w.waitReaders();
  const r = [];
  for (let i = 0; i < 64; i++) {
    r.push(shm.openSyncReader(w.endpoint(), { timeout: 1000 }));
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.strictEqual(await all, 64);
  assert.throws(() => shm.openSyncReader(w.endpoint()), { code: 'EBUSY' });
  await new Promise((resolve) => w.end('to all', resolve));
  for (const x of r) {
    assert.strictEqual(String(x.read()), 'to all');
    assert.strictEqual(x.read(), null);
    x.close();
  }
});

test('records and elementType pipes broadcast whole records and elements', async () => {
  const w = shm.createSyncWriter({ records: true, readers: 2, capacity: 4096 });
  const r = [shm.openSyncReader(w.endpoint()), shm.openSyncReader(w.endpoint())];
  for (const s of ['a', 'bb', 'ccc']) w.write(s);
  w.close();
  for (const x of r) {
    assert.deepStrictEqual([...x].map(String), ['a', 'bb', 'ccc']);
    x.close();
  }

  const ints = shm.createWriter({ elementType: 'int32', readers: 2, capacity: 64 });
  const ir = [shm.openReader(ints.endpoint()), shm.openReader(ints.endpoint())];
  assert.ok(ir.every((x) => x.elementType === 'int32'));
  const collect = (x) => new Promise((resolve, reject) => {
    const got = [];
    x.on('data', (v) => got.push(v));
    x.on('end', () => resolve(got));
    x.on('error', reject);
  });
  const all = Promise.all(ir.map(collect));
  const want = Array.from({ length: 1000 }, (_, i) => i * 3 - 500);
  ints.end(Int32Array.from(want));
  for (const got of await all) assert.deepStrictEqual(got, want);
});

test('waitReaders() resolves once n readers are attached, without blocking the event loop', { timeout: 30000 }, async () => {
  const w = shm.createWriter({ readers: 3, capacity: 4096 });
  assert.strictEqual(await w.waitReaders(0), 0);
  let resolvedWith = null;
  const t0 = performance.now();
  let resolvedAt = 0;
  const p = w.waitReaders(3).then((n) => {
    resolvedWith = n;
    resolvedAt = performance.now() - t0;
  });
  const two = w.waitReaders(2);
  // The event loop runs while it waits: a 5 ms timer fires on time.
  let worst = 0;
  for (let i = 0; i < 10; i++) {
    const t = performance.now();
    await sleep(5);
    worst = Math.max(worst, performance.now() - t - 5);
  }
  assert.ok(worst < 50, `a 5 ms timer was ${worst.toFixed(1)} ms late while waitReaders() waited`);
  assert.strictEqual(resolvedWith, null);
  const r = [shm.openSyncReader(w.endpoint()), shm.openSyncReader(w.endpoint())];
  assert.strictEqual(await two, 2);
  await sleep(30);
  assert.strictEqual(resolvedWith, null, 'resolved with 2 readers of 3');
  const attachedAt = performance.now() - t0;
  r.push(shm.openSyncReader(w.endpoint()));
  await p;
  assert.strictEqual(resolvedWith, 3);
  assert.ok(resolvedAt - attachedAt < 200, `resolved ${(resolvedAt - attachedAt).toFixed(1)} ms after the 3rd reader attached`);
  assert.strictEqual(await w.waitReaders(), 3);
  assert.throws(() => w.waitReaders(4), RangeError);
  assert.throws(() => w.waitReaders(-1), RangeError);
  assert.throws(() => w.waitReaders(1.5), RangeError);
  await new Promise((resolve) => w.end('bye', resolve));
  for (const x of r) {
    assert.strictEqual(String(x.read()), 'bye');
    x.close();
  }
  await assert.rejects(w.waitReaders(1), { code: 'ERR_STREAM_DESTROYED' });
});

test('waitReaders() gives way to writes made meanwhile, and still resolves', { timeout: 30000 }, async () => {
  const w = shm.createWriter({ readers: 2, capacity: 4096 });
  let resolved = null;
  const p = w.waitReaders(2).then((n) => { resolved = n; });
  const first = shm.openReader(w.endpoint());
  const got = [];
  first.on('data', (b) => got.push(b));
  const firstEnd = new Promise((resolve) => first.on('end', resolve));
  // A write while the wait is pending goes ahead (one reader is there),
  // including one that has to wait for room.
  await new Promise((resolve, reject) => w.write('abc', (err) => (err ? reject(err) : resolve())));
  await new Promise((resolve, reject) => w.write(Buffer.alloc(20000, 1), (err) => (err ? reject(err) : resolve())));
  assert.strictEqual(resolved, null);
  const second = shm.openSyncReader(w.endpoint(), { timeout: 5000 });
  await p;
  assert.strictEqual(resolved, 2);
  await new Promise((resolve) => w.end('tail', resolve));
  await firstEnd;
  assert.strictEqual(Buffer.concat(got).length, 3 + 20000 + 4);
  assert.strictEqual(String(second.read()), 'tail'); // only what came after it attached
  second.close();
});

test('waitReaders() rejects when the writer is ended or destroyed first', async () => {
  const w = shm.createWriter({ readers: 2 });
  const p = w.waitReaders();
  w.destroy();
  await assert.rejects(p, { code: 'ERR_STREAM_DESTROYED' });
  await assert.rejects(w.waitReaders(), { code: 'ERR_STREAM_DESTROYED' });

  const e = shm.createWriter({ readers: 2 });
  const q = e.waitReaders();
  e.end();
  await assert.rejects(q, { code: 'EBADF', syscall: 'waitReaders' });
  const s = shm.createSyncWriter({ readers: 2 });
  s.close();
  assert.throws(() => s.waitReaders(), { code: 'EBADF' });
});

test('a plain pipe: waitReaders() waits for its one reader', async () => {
  const w = shm.createWriter();
  assert.strictEqual(w.readers, 1);
  const ep = w.endpoint();
  assert.strictEqual(ep.readers, undefined);
  shm.discardEndpoint(ep);
  const p = w.waitReaders();
  await sleep(10);
  const r = shm.openSyncReader(w.endpoint());
  assert.strictEqual(await p, 1);
  assert.throws(() => shm.openSyncReader(w.endpoint()), { code: 'EBUSY' });
  r.close();
  w.destroy();
});

test('SyncWriter.waitReaders(): its timeout, and a wait in a worker ended by readers attaching', { timeout: 30000 }, async () => {
  const w = shm.createSyncWriter({ readers: 2, timeout: 0 });
  assert.throws(() => w.waitReaders(), { code: 'EAGAIN' });
  const timed = shm.createSyncWriter({ readers: 2, timeout: 30 });
  const t = performance.now();
  assert.throws(() => timed.waitReaders(1), { code: 'ETIMEDOUT' });
  assert.ok(performance.now() - t >= 25);
  timed.close();
  w.close();

  // A worker makes the pipe and waits in its own thread; the main thread
  // opens the readers.
  const wk = new Worker(`
    const { parentPort } = require('node:worker_threads');
    const shm = require(${JSON.stringify(path.join(__dirname, '..'))});
    const w = shm.createSyncWriter({ readers: 2 });
    parentPort.postMessage([w.endpoint(), w.endpoint()]);
    const n = w.waitReaders();
    w.write('n=' + n);
    w.close();
  `, { eval: true });
  const eps = await new Promise((resolve) => wk.once('message', resolve));
  await sleep(20);
  const r = eps.map((ep) => shm.openSyncReader(ep, { timeout: 5000 }));
  for (const x of r) {
    assert.strictEqual(String(x.read()), 'n=2');
    x.close();
  }
  await new Promise((resolve) => wk.once('exit', resolve));
});

test('a named broadcast pipe: readers in child processes open it by name', { timeout: 60000 }, async () => {
  const name = `/shmpipe-node-test-${process.pid}-bcast-named`;
  const w = shm.createWriter({ name, readers: 2, capacity: 256 * 1024 });
  try {
    const children = [0, 1].map(() => fork(path.join(__dirname, 'fixtures', 'child-hash.js'), [name]));
    const results = children.map((c) => new Promise((resolve) => c.once('message', resolve)));
    await w.waitReaders(2);
    assert.throws(() => shm.openSyncReader(name), (err) => err.code === 'EBUSY' && /takes 2 readers/.test(err.message));
    const total = 4 * MiB;
    const block = crypto.randomBytes(MiB);
    const hash = crypto.createHash('sha1');
    await new Promise((resolve, reject) => {
      w.on('error', reject);
      let i = 0;
      const pump = () => {
        while (i < total / MiB) {
          hash.update(block);
          i++;
          if (!w.write(block)) return w.once('drain', pump);
        }
        w.end(resolve);
      };
      pump();
    });
    const want = hash.digest('hex');
    for (const got of await Promise.all(results)) assert.deepStrictEqual(got, { bytes: total, hash: want });
  } finally {
    shm.unlink(name);
  }
});

const tools = ['sha256sum', 'sha1sum', 'md5sum'];
const missing = tools.filter((t) => spawnSync(t, ['--version']).error);
test('examples/multihash.js: one pass, a digest per worker, as sha256sum, sha1sum and md5sum give them', {
  timeout: 60000,
  skip: missing.length ? `${missing.join(', ')} not installed` : false,
}, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shmpipe-multihash-'));
  const file = path.join(dir, 'data.bin');
  // More than the example's 1 MiB ring, and an odd size.
  fs.writeFileSync(file, crypto.randomBytes(2.5 * MiB + 12345));
  try {
    const run = (...args) => execFileSync(process.execPath, [path.join(__dirname, '..', 'examples', 'multihash.js'), file, ...args], { encoding: 'utf8' });
    const want = tools.map((t) => execFileSync(t, ['--tag', file], { encoding: 'utf8' })).join('');
    assert.strictEqual(run(), want);
    assert.strictEqual(run('md5', 'sha256'), [2, 0].map((i) => execFileSync(tools[i], ['--tag', file], { encoding: 'utf8' })).join(''));
    // An empty file: every digest of nothing.
    fs.writeFileSync(file, '');
    assert.strictEqual(run(), tools.map((t) => execFileSync(t, ['--tag', file], { encoding: 'utf8' })).join(''));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// Two promises of shmpipe.h: nothing is written before the first reader
// comes (it would go to nobody), and a reader that closes frees its place
// at once, with the writer doing nothing in between.
test('the writer waits for the first reader; a closed reader\'s place is free at once', () => {
  const w = shm.createSyncWriter({ readers: 2, capacity: 4096, timeout: 0 });
  try {
    assert.throws(() => w.write('early'), { code: 'EAGAIN' });
    const a = shm.openSyncReader(w.endpoint(), { timeout: 0 });
    const b = shm.openSyncReader(w.endpoint(), { timeout: 0 });
    b.close();
    shm.openSyncReader(w.endpoint(), { timeout: 0 }).close(); // the writer has done nothing since
    a.close();
  } finally {
    w.close();
  }
});
