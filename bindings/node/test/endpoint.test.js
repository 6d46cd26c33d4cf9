// SPDX-License-Identifier: MIT
'use strict';
// An endpoint opens once: a second open, an open after discardEndpoint(),
// or one whose descriptor number now names something else is refused, and
// never attaches to another pipe or closes a descriptor that is not the
// package's.
const { test } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const shm = require('..');

const fds = () => fs.readdirSync('/proc/self/fd').length;
const used = { code: 'ERR_SHMPIPE_ENDPOINT' };

// A file of the user's that takes the lowest free number: the one an
// endpoint's descriptor had, once the package has closed it.
function userFile() {
  const p = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'shmpipe-')), 'f');
  fs.writeFileSync(p, 'mine');
  return { p, fd: fs.openSync(p, 'r') };
}

test('a second open of an endpoint throws and leaves a reused number alone', () => {
  const w = shm.createSyncWriter({ capacity: 64 });
  const ep = w.endpoint();
  const r = shm.openSyncReader(ep);
  const f = userFile();
  assert.strictEqual(f.fd, ep.fd, 'the user file took the endpoint number');
  const other = shm.createSyncWriter({ capacity: 64 }); // a pipe of its own, elsewhere
  assert.throws(() => shm.openSyncReader(ep), used);
  assert.throws(() => shm.openReader(ep), used);
  shm.discardEndpoint(ep); // does nothing now
  assert.strictEqual(fs.readFileSync(f.fd, 'utf8'), 'mine');
  fs.closeSync(f.fd);
  w.write('x');
  assert.strictEqual(r.read().toString(), 'x');
  w.close();
  r.close();
  other.close();
});

test('an endpoint discarded, or whose open failed, is refused', () => {
  const w = shm.createSyncWriter({ capacity: 64 });
  const a = w.endpoint();
  shm.discardEndpoint(a);
  const f = userFile();
  assert.throws(() => shm.openSyncReader(a), used);
  assert.strictEqual(fs.readFileSync(f.fd, 'utf8'), 'mine');
  fs.closeSync(f.fd);

  const before = fds();
  const b = w.endpoint();
  const c = w.endpoint();
  const r = shm.openSyncReader(b);
  assert.throws(() => shm.openSyncReader(c), { code: 'EBUSY' }); // the read end is taken
  assert.throws(() => shm.openSyncReader(c), used); // and c is used up, not leaked
  r.close();
  w.close();
  assert.ok(fds() <= before, `${fds()} descriptors, ${before} before`);
});

test('an endpoint whose number was closed and reused by someone else is refused', () => {
  const w = shm.createSyncWriter({ capacity: 64 });
  const ep = w.endpoint();
  fs.closeSync(ep.fd); // not ours to close, but a user may
  const f = userFile();
  assert.strictEqual(f.fd, ep.fd);
  assert.throws(() => shm.openSyncReader(ep), used);
  shm.discardEndpoint(ep);
  assert.strictEqual(fs.readFileSync(f.fd, 'utf8'), 'mine');
  fs.closeSync(f.fd);
  w.close();
});

test('two workers given the same endpoint: one opens it, the other gets an error', async () => {
  const w = shm.createWriter({ capacity: 64 });
  const ep = w.endpoint();
  const src = `
    const { parentPort, workerData } = require('node:worker_threads');
    const shm = require(${JSON.stringify(path.join(__dirname, '..'))});
    try {
      const r = shm.openSyncReader(workerData);
      let s = '';
      for (let b; (b = r.read()) !== null;) s += b;
      parentPort.postMessage('read ' + s);
    } catch (err) {
      parentPort.postMessage(err.code);
    }
  `;
  const run = () => new Promise((resolve, reject) => {
    const wk = new Worker(src, { eval: true, workerData: ep });
    wk.once('message', resolve);
    wk.once('error', reject);
  });
  const got = Promise.all([run(), run()]);
  w.end('hello');
  assert.deepStrictEqual((await got).sort(), ['ERR_SHMPIPE_ENDPOINT', 'read hello']);
});

test('bad endpoints are refused before anything is touched', () => {
  const w = shm.createSyncWriter({ capacity: 64 });
  const ep = w.endpoint();
  assert.throws(() => shm.openSyncWriter(ep), TypeError); // the wrong end: ep stays usable
  assert.throws(() => shm.openSyncReader({ ...ep, id: 'x' }), TypeError);
  assert.throws(() => shm.openSyncReader({ ...ep, id: 1.5 }), TypeError);
  assert.throws(() => shm.openSyncReader({ ...ep, id: ep.id + 1e6 }), used);
  assert.throws(() => shm.openSyncReader({ ...ep, fd: ep.fd + 1 }), used); // a forged number uses up nothing
  assert.throws(() => shm.discardEndpoint(null), TypeError);
  shm.discardEndpoint({});
  const r = shm.openSyncReader(ep);
  r.close();
  w.close();
});
