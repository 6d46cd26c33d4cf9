// SPDX-License-Identifier: MIT
'use strict';
// shmpipe for Node.js: stream classes over the native ends (build/shmpipe.node).
//
// The rule of the design: a write calls back only once its data is in the
// ring, but nothing ever blocks the event loop. Every copy into or out of
// the ring is made on the JavaScript thread with a non-blocking call; when
// the ring is full (writer) or empty (reader), the end's descriptor is
// watched by the event loop (a libuv uv_poll_t in the addon), as a socket's
// would be, and the copy goes on when it polls readable. No thread is
// started. A write hands the caller's Buffers to the addon by reference and
// returns at once; the ring is fed from them in slices, one per turn of the
// loop. The option { blocking: true } and the *Sync classes wait in the
// calling thread instead, as the seed does, for workers that want exactly
// that.

const { Writable, Readable } = require('node:stream');
const util = require('node:util');
const path = require('node:path');
const native = require(path.join(__dirname, '..', 'build', 'shmpipe.node'));

const WRITER = 0;
const READER = 1;
const EAGAIN = -11;
const ETIMEDOUT = -110;
const EINTR = -4;
const EBADF = -9;
const EBUSY = -16;

const ELEMENT_TYPES = {
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  float32: Float32Array,
  float64: Float64Array,
};

// What the callback of a write that a destroy() cut short gets, as with
// Node's own streams.
function destroyedError(what = 'write') {
  const err = new Error(`Cannot call ${what} after a stream was destroyed`);
  err.code = 'ERR_STREAM_DESTROYED';
  return err;
}

function pipeError(rc, syscall) {
  const code = util.getSystemErrorName(rc);
  const err = new Error(`${syscall}: ${native.strerror(rc)}`);
  err.code = code;
  err.errno = rc;
  err.syscall = syscall;
  return err;
}

function checkOptions(opts, allowed) {
  if (opts === undefined) return {};
  if (opts === null || typeof opts !== 'object') {
    throw new TypeError('options must be an object');
  }
  for (const key of Object.keys(opts)) {
    if (!allowed.includes(key)) throw new TypeError(`unknown option: ${key}`);
  }
  return opts;
}

function elementTypeOf(opts) {
  const t = opts.elementType;
  if (t === undefined || t === null) return null;
  if (typeof t !== 'string') throw new TypeError('elementType must be a string');
  if (!Object.prototype.hasOwnProperty.call(ELEMENT_TYPES, t)) {
    throw new RangeError(`elementType must be one of ${Object.keys(ELEMENT_TYPES).join(', ')}`);
  }
  return t;
}

function bool(opts, key) {
  const v = opts[key];
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw new TypeError(`${key} must be a boolean`);
  return v;
}

function timeoutOf(opts) {
  const t = opts.timeout;
  if (t === undefined) return -1;
  if (typeof t !== 'number') throw new TypeError('timeout must be a number');
  if (!Number.isInteger(t) || t < -1 || t > 0x7fffffff) {
    throw new RangeError('timeout must be -1 or an integer of milliseconds');
  }
  return t;
}

// readers: how many readers a new pipe takes at once, each of which gets
// every byte (broadcast); 0 or absent is one, a plain pipe.
function readersOf(opts) {
  const n = opts.readers;
  if (n === undefined) return 1;
  if (typeof n !== 'number') throw new TypeError('readers must be a number');
  if (!Number.isInteger(n) || n < 0 || n > native.READERS_MAX) {
    throw new RangeError(`readers must be an integer from 1 to ${native.READERS_MAX} (0 = 1)`);
  }
  return n === 0 ? 1 : n;
}

// Names are POSIX shared memory names: '/' then 1 to 200 characters but '/'.
function checkName(name) {
  if (typeof name !== 'string') throw new TypeError('name must be a string');
  if (!/^\/[^/\0]{1,200}$/.test(name) || Buffer.byteLength(name) > 201) {
    throw new RangeError("name must be '/' followed by 1 to 200 characters other than '/'");
  }
  return name;
}

// What describes a pipe: options given at creation, or an endpoint.
function shapeOf(opts) {
  const elementType = elementTypeOf(opts);
  const records = bool(opts, 'records');
  if (records && elementType) throw new TypeError('records and elementType exclude each other');
  const share = bool(opts, 'share');
  if (share && !records) {
    throw invalid('share: a work-sharing pipe deals whole records, one to each reader: it needs records: true' +
      (elementType ? `, not elementType '${elementType}'` : ''));
  }
  const capacity = opts.capacity;
  if (capacity !== undefined) {
    if (typeof capacity !== 'number') throw new TypeError('capacity must be a number');
    if (!Number.isInteger(capacity) || capacity < 0 || capacity > 2 ** 40) {
      throw new RangeError('capacity must be an integer from 0 to 2^40');
    }
  }
  if (records && capacity !== undefined && capacity !== 0 && capacity < 16) {
    throw new RangeError('a record-mode ring needs a capacity of at least 16 bytes');
  }
  if (share && capacity !== undefined && capacity !== 0 && capacity < 24) {
    throw new RangeError('a work-sharing ring needs a capacity of at least 24 bytes');
  }
  const name = opts.name;
  if (name !== undefined && name !== null) checkName(name);
  return { elementType, records, share, capacity, name: name ?? null };
}

// The largest record a ring of capacity bytes takes: a record's frame is 8
// bytes (16 on a work-sharing pipe, which also numbers it), and its payload
// is padded to 8.
function recordMaxOf(capacity, share) {
  return Math.floor(capacity / 8) * 8 - (share ? 16 : 8);
}

// An endpoint: a plain, cloneable object that lets another thread or
// process open the other end. Named pipes are found by name; anonymous ones
// by a descriptor duplicated for that purpose, valid in this process (so
// for worker_threads), which the endpoint owns until it is opened or
// discarded. Its id is what the addon checks before it touches the
// descriptor: an endpoint opens once, and a descriptor number reused by
// something else since is never taken for the endpoint's.
function makeEndpoint(handle, shape, otherEnd) {
  const ep = {
    end: otherEnd,
    name: shape.name,
    records: shape.records,
    // A work-sharing pipe: each record goes to one of its readers.
    share: !!shape.share,
    elementType: shape.elementType,
  };
  // A broadcast writer's endpoints: each opens one of its readers.
  if (shape.readers > 1) ep.readers = shape.readers;
  if (!shape.name) {
    const d = native.endpointFd(handle);
    ep.fd = d.fd;
    ep.id = d.id;
  }
  return ep;
}

function resolveTarget(target, expectEnd) {
  if (typeof target === 'string') return { name: checkName(target), records: false, share: false, elementType: null };
  if (target === null || typeof target !== 'object') {
    throw new TypeError('target must be a pipe name or an endpoint object');
  }
  if (target.end !== undefined && target.end !== expectEnd) {
    throw new TypeError(`this endpoint opens the ${target.end} end`);
  }
  if (typeof target.name === 'string') {
    checkName(target.name);
    return target;
  }
  if (!Number.isInteger(target.fd) || target.fd < 0) {
    throw new TypeError('endpoint needs a name or a descriptor');
  }
  if (target.id !== undefined && (!Number.isInteger(target.id) || target.id < 1)) {
    throw new TypeError('endpoint id must be a positive integer');
  }
  return target;
}

// Opens an end by name, by endpoint (whose descriptor the open uses up,
// whether it succeeds or not), or by a plain { fd }: a descriptor of the
// caller's (inherited in stdio, say), which stays open.
//
// The end takes its mode and capacity from the pipe itself. An option that
// contradicts the pipe (records: true on a byte stream; records: false or
// an elementType on a record pipe) is a TypeError, found before the end is
// taken when the pipe can tell (an endpoint says what its pipe is; a named
// pipe is inspected), so the pipe's end stays free for a right open. Else
// it is found once the end is open, which then closes it (a write end as
// failed, so its reader never takes it for an end of stream).
function openHandle(kind, target, opts) {
  const t = resolveTarget(target, kind === WRITER ? 'writer' : 'reader');
  const elementType = elementTypeOf({ elementType: opts.elementType ?? t.elementType });
  const asked = opts.records === undefined ? undefined : bool(opts, 'records');
  const want = asked ?? (elementType ? false : undefined);
  const askedShare = opts.share === undefined ? undefined : bool(opts, 'share');
  // withSeq (a stream reader's): the records of a work-sharing pipe only.
  const withSeq = bool(opts, 'withSeq');
  if (withSeq && askedShare === false) throw invalid('withSeq: true numbers the records of a work-sharing pipe, and share: false says it is not one');
  const wantShare = askedShare ?? (withSeq ? true : undefined);
  const name = typeof t.name === 'string' ? t.name : null;
  const check = (records, share) => {
    if (records !== null && records !== undefined && want !== undefined && want !== records) {
      if (asked === undefined) throw mismatch(`elementType '${elementType}', but the pipe is a record pipe`);
      throw mismatch(`records: ${asked}, but the pipe is ${records ? 'a record pipe' : 'a byte stream'}`);
    }
    if (share !== null && share !== undefined && wantShare !== undefined && wantShare !== share) {
      const what = share ? 'a work-sharing pipe (each record to one reader)' : 'not a work-sharing pipe';
      if (askedShare === undefined) throw mismatch(`withSeq: true, but the pipe is ${what}: it numbers no records`);
      throw mismatch(`share: ${askedShare}, but the pipe is ${what}`);
    }
  };
  if (name) {
    const pipe = native.pipeInfo(name);
    if (pipe !== null) check((pipe.flags & native.RECORDS) !== 0, (pipe.flags & native.SHARE) !== 0);
  } else if (typeof t.records === 'boolean' && t.id !== undefined) {
    check(t.records, typeof t.share === 'boolean' ? t.share : undefined);
  }
  let handle;
  try {
    handle = native.open(kind, name ?? t.fd, name ? undefined : t.id);
  } catch (err) {
    throw kind === READER && err.code === 'EBUSY' ? readersBusy(err, name, t) : err;
  }
  try {
    const pipe = native.options(handle);
    check(pipe.records, pipe.share);
    applySpin(handle, opts);
    const shape = { elementType, records: pipe.records, share: pipe.share, capacity: pipe.capacity, name };
    return { handle, shape };
  } catch (err) {
    if (kind === WRITER) native.abort(handle);
    else native.close(handle);
    throw err;
  }
}

// A reader refused with EBUSY: on a broadcast pipe, every place is taken.
// Says so, keeping the code and errno.
function readersBusy(err, name, t) {
  let n = Number.isInteger(t.readers) ? t.readers : null;
  if (n === null && name) n = native.pipeInfo(name)?.readers ?? null;
  if (n > 1) {
    err.message = `shmpipe_reader_open: the broadcast pipe takes ${n} readers at once and ${n} are attached ` +
      '(EBUSY; a place frees when one of them closes)';
  } else if (n === 1) {
    err.message = 'shmpipe_reader_open: the pipe already has its reader (EBUSY; a pipe made with ' +
      'createWriter({ readers: n }) takes n)';
  }
  return err;
}

function mismatch(msg) {
  const err = new TypeError(msg);
  err.code = 'ERR_INVALID_ARG_VALUE';
  return err;
}

// An option that cannot be: a TypeError with Node's code for it.
function invalid(msg, Type = TypeError) {
  const err = new Type(msg);
  err.code = Type === RangeError ? 'ERR_OUT_OF_RANGE' : 'ERR_INVALID_ARG_VALUE';
  return err;
}

function statsOf(self) {
  if (self._handle) return native.stats(self._handle);
  if (self._lastStats) return self._lastStats;
  throw pipeError(EBADF, 'stats');
}

// Closes an end; abort closes a write end as failed (its reader then gets
// ECONNRESET after the committed bytes instead of the end of the stream).
// Returns the library's error, if its close failed (the end is closed all
// the same), else null.
function closeHandle(self, abort = false) {
  if (!self._handle) return null;
  self._lastStats = native.stats(self._handle);
  const rc = abort ? native.abort(self._handle) : native.close(self._handle);
  self._handle = null;
  return rc < 0 ? pipeError(rc, abort ? 'abort' : 'close') : null;
}

// Runs a synchronous call that may wait (timeout: -1 forever, 0 never,
// else ms). The addon returns EINTR whenever the thread should pass through
// JavaScript: a signal, or news on this thread's event loop, which is how
// worker.terminate() reaches a worker that waits (V8 stops it here). The
// call is then made again with what is left of the timeout.
function waiting(timeout, call) {
  if (timeout <= 0) {
    for (;;) {
      const rc = call(timeout);
      if (rc !== EINTR || timeout === 0) return rc;
    }
  }
  const deadline = Date.now() + timeout;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) {
      const rc = call(0);
      return rc === EAGAIN ? ETIMEDOUT : rc;
    }
    const rc = call(left);
    if (rc !== EINTR) return rc;
  }
}

// Runs fn soon: on the next tick, or, once every YIELD_MS, through
// setImmediate so that timers and I/O get their turn. Without this a
// transfer that never has to wait (ticks) could keep the event loop from
// its other work.
const YIELD_MS = 2;
function yieldSometimes(self, fn) {
  const now = performance.now();
  if (now - self._lastYield > YIELD_MS) {
    self._lastYield = now;
    setImmediate(fn);
  } else {
    process.nextTick(fn);
  }
}

// ---- the write end ---------------------------------------------------------

// The entry reserve() puts in the stream: a Buffer of no bytes, which
// object mode and byte mode both carry as it is.
const RESERVE = Buffer.alloc(0);

class PipeWriter extends Writable {
  constructor(handle, shape, opts) {
    const Type = shape.elementType ? ELEMENT_TYPES[shape.elementType] : null;
    const objectMode = !!Type || shape.records;
    const capacity = native.stats(handle).capacity;
    // Batches: up to 1024 elements, 16 records, or for bytes half the ring
    // (16 KiB to 1 MiB) are taken into one _writev while a write is in flight.
    const hwm = Type ? 1024 : shape.records ? 16 : Math.min(1 << 20, Math.max(16384, Math.floor(capacity / 2)));
    super({
      objectMode,
      highWaterMark: opts.highWaterMark ?? hwm,
      decodeStrings: true,
      emitClose: true,
    });
    this._handle = handle;
    this._shape = shape;
    this._Type = Type;
    this._unit = Type ? Type.BYTES_PER_ELEMENT : 1;
    this._blocking = bool(opts, 'blocking');
    this._lastStats = null;
    this._capacity = capacity;
    this._lastYield = performance.now();
    this._inFlight = null; // the callback of a write the addon is feeding into the ring
    // Bytes of typed-array chunks written and not yet in the ring (see write()).
    this._chunkBytes = 0;
    this._chunkDrain = false;
    this._reservation = null; // reserve(): the one pending or out
    this._held = null; // a write or end() waiting for a commit
    this._heldCb = null;
    // waitReaders(): the promises pending, and how they wait (see there).
    this._readerWaits = [];
    this._readersArmed = 0; // the n a native wait() is armed for, or 0
    this._readersTimer = null;
  }

  // An elementType stream counts its buffer in objects: a typed array of a
  // million elements is one. So that a producer of large chunks cannot run
  // on for 1024 of them without a pause (blocking the event loop while it
  // makes them), write() also says false once the typed-array chunks not
  // yet in the ring pass the ring's capacity, and 'drain' follows when they
  // are down to half of it.
  write(chunk, encoding, cb) {
    if (!this._Type || !ArrayBuffer.isView(chunk) || chunk === RESERVE) return super.write(chunk, encoding, cb);
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    const len = chunk.byteLength;
    this._chunkBytes += len;
    const ok = super.write(chunk, encoding, (err) => {
      this._chunkBytes -= len;
      if (this._chunkDrain && this._chunkBytes <= this._capacity / 2) {
        this._chunkDrain = false;
        if (!this.writableNeedDrain && !this.destroyed) this.emit('drain');
      }
      if (cb) cb(err);
    });
    if (ok && this._chunkBytes > this._capacity) {
      this._chunkDrain = true;
      return false;
    }
    return ok;
  }

  get elementType() { return this._shape.elementType; }
  get records() { return this._shape.records; }
  get name() { return this._shape.name; }
  get capacity() { return this._capacity; }
  get readers() { return this._shape.readers ?? 1; }
  get share() { return !!this._shape.share; }

  // A cloneable object for openReader() in a worker or another process.
  // On a broadcast pipe, one per reader: each endpoint opens once.
  endpoint() {
    if (!this._handle) throw pipeError(EBADF, 'endpoint');
    return makeEndpoint(this._handle, this._shape, 'reader');
  }

  // Resolves to how many readers are attached once at least n are (n 0:
  // at once), without blocking the event loop, so that every one of them
  // gets the stream from its first byte. The end's descriptor polls
  // readable when a reader attaches; while a write or reserve() has it
  // (they go on meanwhile: this wait never holds them), the count is
  // looked at every few milliseconds instead. Rejects if the end closes
  // first (EBADF at end(), ERR_STREAM_DESTROYED at destroy() and after),
  // and with EPIPE if the one reader of a plain pipe is gone.
  waitReaders(n = this.readers) {
    if (!Number.isInteger(n) || n < 0 || n > this.readers) {
      throw new RangeError(`n must be an integer from 0 to ${this.readers}, the readers the pipe takes`);
    }
    if (this.destroyed) return Promise.reject(destroyedError('waitReaders'));
    if (!this._handle) return Promise.reject(pipeError(EBADF, 'waitReaders'));
    const now = native.waitReaders(this._handle, n, 0);
    if (now >= 0 && now >= n) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      this._readerWaits.push({ n, resolve, reject });
      // A wait armed for more readers than these need: arm it again.
      if (this._readersArmed > n) this._readersUnarm();
      this._readersLook();
    });
  }

  // Lets go of the end's descriptor if a wait for readers holds it, for a
  // write or a reserve that needs it now; the readers are then looked for
  // on a timer until the descriptor is free again.
  _readersYield() {
    if (!this._readersArmed) return;
    this._readersUnarm();
    this._readersLater();
  }

  _readersUnarm() {
    if (this._handle) native.unwait(this._handle);
    this._readersArmed = 0;
  }

  _readersLater() {
    if (this._readersTimer === null) {
      this._readersTimer = setTimeout(() => {
        this._readersTimer = null;
        this._readersLook();
      }, READERS_POLL_MS);
    }
  }

  // Settles the waits for readers that can be, and arms a wait for the
  // rest: the descriptor if it is free, else a timer.
  _readersLook() {
    const waits = this._readerWaits;
    if (waits.length === 0 || this._readersArmed) return;
    if (!this._handle) return this._readersFail(this.destroyed ? destroyedError('waitReaders') : pipeError(EBADF, 'waitReaders'));
    const n = Math.min(...waits.map((x) => x.n));
    const rc = native.waitReaders(this._handle, n, 0);
    if (rc >= 0) {
      this._readerWaits = waits.filter((x) => x.n > rc);
      for (const x of waits) if (x.n <= rc) x.resolve(rc);
      return this._readersLook();
    }
    if (rc === EBUSY) return this._readersLater(); // a write or reserve has the descriptor
    if (rc !== EAGAIN) return this._readersFail(pipeError(rc, 'waitReaders'));
    const w = native.wait(this._handle, (x) => {
      this._readersArmed = 0;
      if (x < 0) this._readersFail(pipeError(x, 'waitReaders'));
      else this._readersLook();
    });
    if (w === EBUSY) return this._readersLater();
    if (w < 0) return this._readersFail(pipeError(w, 'waitReaders'));
    this._readersArmed = n;
  }

  _readersFail(err) {
    const waits = this._readerWaits;
    this._readerWaits = [];
    if (this._readersTimer !== null) clearTimeout(this._readersTimer);
    this._readersTimer = null;
    if (this._readersArmed) this._readersUnarm();
    for (const x of waits) x.reject(err);
  }

  stats() { return statsOf(this); }

  _write(chunk, encoding, cb) {
    this._writev([{ chunk, encoding }], cb);
  }

  _writev(entries, cb) {
    const r = this._reservation;
    if (r && r.direct) {
      this._held = () => this._run(entries, 0, cb);
      this._heldCb = cb;
      return;
    }
    this._run(entries, 0, cb);
  }

  // Writes entries[from..]: each run of data goes into the ring, and each
  // RESERVE entry (put in the stream by reserve(), so that it keeps its
  // place among the writes) hands out room in the ring and waits for its
  // commit() before the entries after it go on.
  _run(entries, from, cb) {
    let to = from;
    while (to < entries.length && entries[to].chunk !== RESERVE) to++;
    const bufs = this._chunks(entries, from, to);
    if (bufs instanceof Error) return cb(bufs);
    if (to === entries.length) return this._push(bufs, 0, cb);
    const reserveNext = (err) => {
      if (err) return cb(err);
      this._reserveNow(cb, () => this._run(entries, to + 1, cb));
    };
    if (bufs.length === 0) return reserveNext();
    this._push(bufs, 0, reserveNext);
  }

  // The chunks of entries[from..to) as Buffers or typed arrays, or a
  // TypeError. An elementType stream takes numbers, and typed arrays of
  // its own type (many elements in one chunk, the fast way).
  _chunks(entries, from, to) {
    const Type = this._Type;
    const bufs = [];
    if (Type) {
      let i = from;
      while (i < to) {
        const v = entries[i].chunk;
        if (v instanceof Type) {
          bufs.push(v);
          i++;
          continue;
        }
        let j = i;
        while (j < to && typeof entries[j].chunk === 'number') j++;
        if (j === i) {
          const what = ArrayBuffer.isView(v) ? v.constructor.name : typeof v;
          return new TypeError(`a ${this._shape.elementType} stream takes numbers or ${Type.name}s, not ${what}`);
        }
        const a = new Type(j - i);
        for (let k = i; k < j; k++) a[k - i] = entries[k].chunk;
        bufs.push(a);
        i = j;
      }
      return bufs;
    }
    for (let i = from; i < to; i++) {
      const c = entries[i].chunk;
      // A record stream is in object mode, where Node passes strings as
      // they are: one string is one record of its UTF-8 bytes.
      if (typeof c === 'string') bufs.push(Buffer.from(c, Buffer.isEncoding(entries[i].encoding) ? entries[i].encoding : 'utf8'));
      else if (!ArrayBuffer.isView(c)) return new TypeError('chunks must be Buffers, typed arrays or strings');
      else bufs.push(c);
    }
    return bufs;
  }

  // Zero-copy, without blocking the event loop: resolves to a Buffer over
  // at least n free bytes of the ring itself (n 0 counts as 1; for
  // elementType pipes n is bytes, whole elements), once every write made
  // before it is in the ring and the room is there. Fill any part of it
  // (fs.readSync(fd, buf), a socket's data) and publish the first k bytes
  // with commit(k), which detaches the Buffer. Writes made meanwhile, and
  // end(), go after the commit. destroy() rejects a pending reserve and
  // detaches the Buffer of one resolved.
  reserve(n = 0) {
    if (!Number.isInteger(n) || n < 0) throw new RangeError('n must be a non-negative integer');
    if (n % this._unit !== 0) throw new RangeError(`n must be whole ${this._shape.elementType} elements (a multiple of ${this._unit} bytes)`);
    if (n > this._capacity) throw new RangeError(`n must be at most the ring's capacity (${this._capacity} bytes)`);
    const recordMax = recordMaxOf(this._capacity, this._shape.share);
    if (this._shape.records && n > recordMax) throw new RangeError(`n must be at most the largest record (${recordMax} bytes)`);
    if (this._reservation) throw new Error('a reservation is already pending or out: commit() it first');
    if (this.destroyed) return Promise.reject(destroyedError());
    if (this.writableEnded) return Promise.reject(Object.assign(new Error('reserve after end'), { code: 'ERR_STREAM_WRITE_AFTER_END' }));
    const direct = this.writableLength === 0 && !this._inFlight && !this.writableCorked;
    if (direct && this._handle) {
      // The common case, room at once with nothing queued, makes no closure
      // and resolves in a microtask (now and then through setImmediate, so
      // that a loop that never waits for room lets timers and I/O run).
      this._readersYield();
      const min = this._shape.records ? n : Math.max(n, this._unit);
      const v = native.reserve(this._handle, min, this._unit, 0);
      if (typeof v !== 'number') {
        this._reservation = { n, direct, resolve: null, reject: null, buf: v, fail: null, go: null, fast: true };
        const now = performance.now();
        if (now - this._lastYield <= YIELD_MS) return Promise.resolve(v);
        this._lastYield = now;
        return new Promise((resolve) => setImmediate(resolve, v));
      }
    }
    return new Promise((resolve, reject) => {
      const r = { n, direct, resolve, reject, buf: null, fail: null, go: null, fast: false };
      this._reservation = r;
      if (direct) {
        // Nothing queued or being written: the room is taken now, outside
        // the stream's queue; a write or end() made meanwhile waits in
        // _writev or _final for the commit. A failure is the stream's.
        this._reserveNow((err) => { if (err) this.destroy(err); }, () => this._release());
      } else {
        super.write(RESERVE); // waits its turn among the writes
      }
    });
  }

  // Publishes the first k bytes of the Buffer reserve() gave (one record in
  // record mode; 0 publishes nothing), detaches it, and lets the writes
  // after it go on. A RangeError, and the reservation stays, for k beyond
  // it or not whole elements; an Error with nothing reserved. A failure of
  // the pipe (the reader gone) is the stream's 'error', as for a write.
  commit(k) {
    const r = this._reservation;
    if (!r || !(r.go || r.fast)) throw new Error('nothing was reserved (or the reserve has not resolved yet)');
    if (!Number.isInteger(k) || k < 0) throw new RangeError('k must be a non-negative integer');
    if (k % this._unit !== 0) throw new RangeError(`k must be whole ${this._shape.elementType} elements (a multiple of ${this._unit} bytes)`);
    this._readersYield();
    const rc = this._handle ? native.commit(this._handle, k, this._unit) : EBADF;
    this._reservation = null;
    if (r.fast) {
      if (rc < 0) this.destroy(pipeError(rc, 'commit'));
      else if (this._held) this._release();
      return;
    }
    this._inFlight = null;
    if (rc < 0) return r.fail(pipeError(rc, 'commit'));
    if (r.direct) r.go();
    else yieldSometimes(this, r.go);
  }

  // Takes the room for the pending reservation, waiting for it in the
  // event loop; then go() once it is committed, or cb(err).
  _reserveNow(cb, go) {
    const r = this._reservation;
    let called = false;
    const fail = (err) => {
      if (called) return;
      called = true;
      this._inFlight = null;
      if (this._reservation === r) this._reservation = null;
      if (!r.buf) r.reject(err);
      cb(err);
    };
    this._inFlight = fail;
    r.fail = fail;
    const attempt = () => {
      if (!this._handle) return fail(this.destroyed ? destroyedError() : pipeError(EBADF, 'reserve'));
      this._readersYield();
      const min = this._shape.records ? r.n : Math.max(r.n, this._unit);
      const v = native.reserve(this._handle, min, this._unit, 0);
      if (v === EAGAIN) {
        const rc = native.wait(this._handle, (x) => (x < 0 ? fail(pipeError(x, 'reserve')) : attempt()));
        if (rc < 0) fail(pipeError(rc, 'reserve'));
        return;
      }
      if (typeof v === 'number') return fail(pipeError(v, 'reserve'));
      r.go = () => {
        if (called) return;
        called = true;
        go();
      };
      // Resolved on a later tick, and now and then through setImmediate: a
      // loop of await reserve() / commit() that never waits for room would
      // otherwise run in microtasks and keep timers and I/O from their turn.
      yieldSometimes(this, () => {
        if (this._reservation !== r) return r.reject(this.destroyed ? destroyedError() : pipeError(EBADF, 'reserve'));
        r.buf = v;
        r.resolve(v);
      });
    };
    attempt();
  }

  // Runs the write or end() that came while a reservation taken outside
  // the queue was out.
  _release() {
    const held = this._held;
    this._held = null;
    this._heldCb = null;
    if (held) held();
  }

  // Writes bufs[from..], in groups of at most 1024 buffers per native call.
  _push(bufs, from, cb) {
    while (from < bufs.length) {
      if (!this._handle) return cb(this.destroyed ? destroyedError() : pipeError(EBADF, 'write'));
      const group = from === 0 && bufs.length <= 1024 ? bufs : bufs.slice(from, from + 1024);
      from += group.length;
      this._readersYield();
      if (this._blocking) {
        const rc = this._writeBlocking(group);
        if (rc < 0) return cb(pipeError(rc, 'write'));
        continue;
      }
      // What fits goes into the ring now (up to a slice); the addon keeps a
      // reference to the rest and feeds it in as room appears, in the event
      // loop, then calls back.
      const next = from;
      const rc = native.writeAsync(this._handle, group, this._unit, (r) => {
        this._inFlight = null;
        if (r < 0) cb(pipeError(r, 'write'));
        else yieldSometimes(this, () => this._push(bufs, next, cb));
      });
      if (rc === 0) {
        this._inFlight = cb;
        return;
      }
      if (rc < 0) return cb(pipeError(rc, 'write'));
    }
    // All in the ring. Call back asynchronously so that writes made
    // meanwhile are batched into one _writev.
    yieldSometimes(this, cb);
  }

  // { blocking: true }: waits in this thread until the group is in the ring.
  _writeBlocking(group) {
    let total = 0;
    for (let i = 0; i < group.length; i++) total += group[i].byteLength;
    let done = 0;
    while (done < total) {
      const rc = native.write(this._handle, group, done, this._unit, -1);
      if (rc >= 0) done = rc;
      else if (rc !== EINTR) return rc;
    }
    return done;
  }

  _final(cb) {
    const r = this._reservation;
    if (r && r.direct) {
      this._held = () => this._final(cb);
      return;
    }
    const err = closeHandle(this);
    this._readersFail(pipeError(EBADF, 'waitReaders'));
    cb(err ?? undefined);
  }

  // destroy(err) aborts the write end: the reader gets ECONNRESET after the
  // bytes already in the ring, never a clean end. destroy() closes it as
  // end() would, as socket.destroy() does. A write still being fed into the
  // ring is called back with the error (its buffered successors are called
  // back by Node).
  _destroy(err, cb) {
    const inFlight = this._inFlight;
    this._inFlight = null;
    // A reserve() still waiting behind other writes is rejected here.
    const r = this._reservation;
    this._reservation = null;
    if (r && !r.buf) r.reject(err ?? destroyedError());
    const held = this._heldCb;
    this._held = this._heldCb = null;
    if (held) process.nextTick(held, err ?? destroyedError());
    const closeErr = closeHandle(this, !!err);
    this._readersFail(destroyedError('waitReaders'));
    if (inFlight) process.nextTick(inFlight, err ?? destroyedError());
    cb(err ?? closeErr);
  }
}

// ---- the read end ------------------------------------------------------------

const READ_CHUNK = 256 * 1024;
// How often waitReaders() looks at the count while a write has the end's descriptor.
const READERS_POLL_MS = 5;
// Most a Readable takes from the ring in one turn of the event loop: bytes,
// and milliseconds since its first read of the turn. A ring that never runs
// dry would otherwise keep Node's flowing mode (read(), _read(), 'data', and
// again) going for as long as the writer keeps ahead.
const READ_BUDGET = 1 << 20;
const READ_BUDGET_MS = 2;

class PipeReader extends Readable {
  constructor(handle, shape, opts) {
    const Type = shape.elementType ? ELEMENT_TYPES[shape.elementType] : null;
    // A work-sharing pipe's reader takes a record from the pool only when
    // the stream wants one: what it takes ahead is kept from the other
    // readers (and lost with it if it is destroyed).
    const hwm = Type ? 1024 : shape.share ? 1 : shape.records ? 16 : 64 * 1024;
    super({
      objectMode: !!Type || shape.records,
      highWaterMark: opts.highWaterMark ?? hwm,
      emitClose: true,
    });
    this._handle = handle;
    this._shape = shape;
    // withSeq: each record comes as { seq, data }, its number with it (the
    // stream reads ahead of its 'data' events, so no getter could say it).
    this._withSeq = bool(opts, 'withSeq');
    this._Type = Type;
    this._unit = Type ? Type.BYTES_PER_ELEMENT : 1;
    this._waiting = false; // for the descriptor, or for the next turn
    this._turnBytes = 0; // taken in this turn of the loop
    this._turnStart = 0;
    this._lastStats = null;
  }

  get elementType() { return this._shape.elementType; }
  get records() { return this._shape.records; }
  get name() { return this._shape.name; }
  get share() { return !!this._shape.share; }
  get withSeq() { return this._withSeq; }

  endpoint() {
    if (!this._handle) throw pipeError(EBADF, 'endpoint');
    return makeEndpoint(this._handle, this._shape, 'writer');
  }

  // Goes on with fn on a later turn of the loop, the budget renewed.
  _later(fn) {
    this._waiting = true;
    this._turnBytes = 0;
    return () => {
      this._waiting = false;
      this._turnBytes = 0;
      fn();
    };
  }

  stats() { return statsOf(this); }

  _read(size) {
    if (this._waiting) return;
    // At most what the stream asked for (its highWaterMark): what sits in
    // the Readable's buffer stays under twice the mark.
    const max = Math.max(size, 1) * this._unit;
    for (;;) {
      if (!this._handle) return;
      let got;
      try {
        got = native.read(this._handle, max, this._unit, 0);
      } catch (err) {
        // The stream ended inside an element: no 'end' for a cut stream.
        this.destroy(err);
        return;
      }
      if (got === null) {
        this.push(null);
        return;
      }
      if (typeof got === 'number') {
        if (got !== EAGAIN) {
          this.destroy(pipeError(got, 'read'));
          return;
        }
        // Empty: the event loop watches the end's descriptor.
        let r = 0;
        const go = this._later(() => {
          if (r < 0) this.destroy(pipeError(r, 'read'));
          else this._read(size);
        });
        const w = native.wait(this._handle, (rc) => {
          r = rc;
          go();
        });
        if (w < 0) {
          this._waiting = false;
          this.destroy(pipeError(w, 'read'));
        }
        return;
      }
      let more;
      if (this._Type) {
        const a = new this._Type(got.buffer, got.byteOffset, got.byteLength / this._unit);
        more = true;
        for (let i = 0; i < a.length; i++) more = this.push(a[i]);
      } else if (this._withSeq) {
        more = this.push({ seq: native.seq(this._handle), data: got });
      } else {
        more = this.push(got);
      }
      if (this._turnBytes === 0) {
        // The first read of this turn: the next turn starts afresh.
        this._turnStart = performance.now();
        setImmediate(() => { this._turnBytes = 0; });
      }
      this._turnBytes += got.byteLength;
      if (this._turnBytes >= READ_BUDGET || performance.now() - this._turnStart > READ_BUDGET_MS) {
        setImmediate(this._later(() => this._read(size)));
        return;
      }
      if (!more) return;
    }
  }

  _destroy(err, cb) {
    const closeErr = closeHandle(this);
    cb(err ?? closeErr);
  }
}

// ---- synchronous ends, for workers -----------------------------------------

// readValue() takes its values from a view over the ring (peek), not with a
// native call each: one peek serves up to BATCH_MAX values, and one consume
// gives them back to the writer when the next batch is taken, or before any
// other call on the end (_h) and before stats(). The values stay in the ring
// until then, so the writer is never further ahead than the ring's capacity,
// as with a read per value. A batch is also at most a quarter of the ring,
// so that the writer gets room back while the reader works.
const BATCH_MAX = 4096;

class SyncReader {
  constructor(handle, shape, opts) {
    this._handle = handle;
    this._shape = shape;
    this._Type = shape.elementType ? ELEMENT_TYPES[shape.elementType] : null;
    this._unit = this._Type ? this._Type.BYTES_PER_ELEMENT : 1;
    this._timeout = timeoutOf(opts);
    this._one = this._Type ? new this._Type(1) : null;
    this._view = null;
    // readValue()'s batch: values over the ring, served from _pos to _end.
    this._vals = null;
    this._pos = 0;
    this._end = 0;
    this._batchMax = this._Type
      ? Math.max(1, Math.min(BATCH_MAX, Math.floor(native.stats(handle).capacity / this._unit / 4)))
      : 0;
    // Set while a read may have left the bytes of an element in part aside
    // in the addon (it returned no data, or threw); a peek would then pass
    // them over, so readValue() reads through readInto() until one succeeds.
    this._maybeCarry = false;
    // Values readValue() served beyond one per consume: the library counts
    // a consume as one read, and stats() counts each value as one, as a
    // read per value did.
    this._extraReads = 0;
    this._lastStats = null;
    this._wakeOnClose = null; // views(): resolves the promise of a pending wait
    this._seq = null; // a work-sharing pipe: the number of the last record taken
  }

  get elementType() { return this._shape.elementType; }
  get records() { return this._shape.records; }
  get share() { return !!this._shape.share; }

  // A work-sharing pipe: the number the writer gave the record that the
  // last read(), readInto() or peek() returned (0 for its first record),
  // which stays until the next one; null before any, and once one found
  // the end of the stream. A TypeError on any other pipe.
  get seq() {
    if (!this._shape.share) throw new TypeError('seq: not a work-sharing pipe (createWriter({ records: true, share: true, readers }))');
    return this._seq;
  }

  // After a call that took a record (got: the record, or null at the end).
  _took(got) {
    if (this._shape.share) this._seq = got === null || typeof got === 'number' ? null : native.seq(this._handle);
  }

  endpoint() {
    return makeEndpoint(this._h(), this._shape, 'writer');
  }

  _h() {
    if (!this._handle) throw pipeError(EBADF, 'read');
    if (this._vals !== null) this._check(this._settle(), 'read');
    return this._handle;
  }

  // Gives the values readValue() returned from its batch back to the
  // writer, and lets the batch go (its view is detached). Returns 0 or
  // -errno.
  _settle() {
    const n = this._pos * this._unit;
    if (this._pos > 1) this._extraReads += this._pos - 1;
    this._vals = null;
    this._pos = this._end = 0;
    return native.consume(this._handle, n);
  }

  // Takes the next batch for readValue(): the value it returns, or null at
  // end of stream.
  _nextValue() {
    const h = this._h();
    if (!this._maybeCarry && this._view === null) {
      const v = this._check(waiting(this._timeout, (t) => native.peek(h, t)), 'read');
      if (v === null) return null;
      const n = Math.floor(v.length / this._unit);
      if (n > 0) {
        this._vals = new this._Type(v.buffer, v.byteOffset, n);
        this._end = Math.min(n, this._batchMax);
        this._pos = 1;
        return this._vals[0];
      }
      // Only part of an element is there: readInto() sets it aside and
      // waits for the rest, or finds the stream cut inside it.
      this._check(native.consume(h, 0), 'read');
    }
    return this.readInto(this._one) === 0 ? null : this._one[0];
  }

  _check(rc, syscall) {
    if (typeof rc === 'number' && rc < 0) throw pipeError(rc, syscall);
    return rc;
  }

  // The next chunk as a new Buffer (one record in record mode), waiting for
  // data; null at end of stream.
  read(max = READ_CHUNK) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError('max must be a positive integer');
    const h = this._h();
    this._maybeCarry = true;
    const got = this._check(waiting(this._timeout, (t) => native.read(h, max, this._unit, t)), 'read');
    this._maybeCarry = false; // data or the end: nothing is set aside
    this._took(got);
    return got;
  }

  // Fills as much of target (a typed array or Buffer) as there is data
  // for, waiting for some; returns the number of elements (bytes for a
  // Buffer) read, 0 at end of stream.
  readInto(target) {
    if (!ArrayBuffer.isView(target) || target instanceof DataView) {
      throw new TypeError('target must be a Buffer or typed array');
    }
    const h = this._h();
    const unit = Math.max(this._unit, target.BYTES_PER_ELEMENT || 1);
    this._maybeCarry = true;
    const n = this._check(waiting(this._timeout, (t) => native.readInto(h, target, unit, t)), 'read');
    this._maybeCarry = false; // data or the end: nothing is set aside
    this._took(n === 0 ? null : target);
    return n / (target.BYTES_PER_ELEMENT || 1);
  }

  // One element (elementType pipes), or null at end of stream. Served from
  // a batch over the ring while it lasts (see BATCH_MAX), so a loop of
  // readValue() costs one native call per batch, not per value.
  readValue() {
    if (this._pos < this._end) return this._vals[this._pos++];
    if (!this._one) throw new TypeError('readValue needs a pipe with an elementType');
    return this._nextValue();
  }

  // Zero-copy: a Buffer viewing the readable bytes in the ring (one record
  // in record mode), or null at end of stream. It stays valid until
  // consume(), which gives the bytes back to the writer and detaches the
  // Buffer (its length becomes 0), so it can never show reused memory.
  peek() {
    const h = this._h();
    this._view = this._check(waiting(this._timeout, (t) => native.peek(h, t)), 'peek');
    this._took(this._view);
    return this._view;
  }

  consume(n) {
    const h = this._h();
    const len = this._view ? this._view.length : 0;
    if (n === undefined) n = len;
    if (!Number.isInteger(n) || n < 0) throw new RangeError('n must be a non-negative integer');
    this._view = null;
    this._check(native.consume(h, n), 'consume');
  }

  *[Symbol.iterator]() {
    for (;;) {
      const v = this._one ? this.readValue() : this.read();
      if (v === null) return;
      yield v;
    }
  }

  stats() {
    if (this._vals !== null && this._handle) this._check(this._settle(), 'stats');
    const s = statsOf(this);
    return this._extraReads ? { ...s, consumedCount: s.consumedCount + this._extraReads } : s;
  }

  close() {
    this._view = null;
    // The values served are counted as read; the close reports any error.
    if (this._vals !== null && this._handle) this._settle();
    const wake = this._wakeOnClose;
    this._wakeOnClose = null;
    const err = closeHandle(this);
    if (wake) wake(EBADF);
    if (err) throw err;
  }
}

class SyncWriter {
  constructor(handle, shape, opts) {
    this._handle = handle;
    this._shape = shape;
    this._Type = shape.elementType ? ELEMENT_TYPES[shape.elementType] : null;
    this._unit = this._Type ? this._Type.BYTES_PER_ELEMENT : 1;
    this._timeout = timeoutOf(opts);
    this._lastStats = null;
  }

  // Writes data (a Buffer, typed array, string, or for elementType pipes a
  // number or array of numbers) and returns once all of it is in the ring.
  write(data) {
    if (!this._handle) throw pipeError(EBADF, 'write');
    if (typeof data === 'string') data = Buffer.from(data);
    else if (typeof data === 'number' && this._Type) data = this._Type.of(data);
    else if (Array.isArray(data) && this._Type) data = this._Type.from(data);
    if (!ArrayBuffer.isView(data)) throw new TypeError('data must be a Buffer, typed array or string');
    const bufs = [data];
    let done = 0;
    const h = this._handle;
    const rc = waiting(this._timeout, (t) => {
      const r = native.write(h, bufs, done, this._unit, t);
      if (r >= 0) done = r;
      // Part of it is in: go on, within what is left of the timeout.
      if (r >= 0 && done < data.byteLength) return t === 0 ? EAGAIN : EINTR;
      return r;
    });
    if (rc < 0 && done < data.byteLength) throw pipeError(rc, 'write');
    return data.byteLength;
  }

  // Zero-copy: a Buffer over at least n bytes of free room in the ring
  // itself (n 0 counts as 1; for elementType pipes n is bytes, whole
  // elements), waiting for room as write() does. In record mode it is the
  // payload of one record, as large as the largest record that fits now.
  // Fill any part of it (fs.readSync(fd, buf), say) and publish the first
  // k bytes with commit(k). commit(), a write(), close() or another
  // reserve() detach the Buffer (its length becomes 0), so it can never
  // reach memory the reader has been given; another reserve() drops the
  // reservation, unpublished, and hands out the same room again.
  reserve(n = 0) {
    if (!Number.isInteger(n) || n < 0) throw new RangeError('n must be a non-negative integer');
    if (n % this._unit !== 0) throw new RangeError(`n must be whole ${this._shape.elementType} elements (a multiple of ${this._unit} bytes)`);
    if (!this._handle) throw pipeError(EBADF, 'reserve');
    const h = this._handle;
    const min = this._shape.records ? n : Math.max(n, this._unit);
    const buf = waiting(this._timeout, (t) => native.reserve(h, min, this._unit, t));
    if (typeof buf === 'number') throw pipeError(buf, 'reserve');
    return buf;
  }

  // Publishes the first k bytes of the reservation (one record in record
  // mode; 0 publishes nothing) and detaches its Buffer. A RangeError, and
  // the reservation stays, for k beyond it, k not whole elements, or k > 0
  // with nothing reserved.
  commit(k) {
    if (!Number.isInteger(k) || k < 0) throw new RangeError('k must be a non-negative integer');
    if (k % this._unit !== 0) throw new RangeError(`k must be whole ${this._shape.elementType} elements (a multiple of ${this._unit} bytes)`);
    if (!this._handle) throw pipeError(EBADF, 'commit');
    const rc = native.commit(this._handle, k, this._unit);
    if (rc < 0) throw pipeError(rc, 'commit');
  }

  endpoint() {
    if (!this._handle) throw pipeError(EBADF, 'endpoint');
    return makeEndpoint(this._handle, this._shape, 'reader');
  }

  get readers() { return this._shape.readers ?? 1; }
  get records() { return this._shape.records; }
  get share() { return !!this._shape.share; }

  // Waits in the calling thread, as write() does (its timeout), until at
  // least n readers are attached (n 0: at once); returns how many are.
  waitReaders(n = this.readers) {
    if (!Number.isInteger(n) || n < 0 || n > this.readers) {
      throw new RangeError(`n must be an integer from 0 to ${this.readers}, the readers the pipe takes`);
    }
    if (!this._handle) throw pipeError(EBADF, 'waitReaders');
    const h = this._handle;
    const rc = waiting(this._timeout, (t) => native.waitReaders(h, n, t));
    if (rc < 0) throw pipeError(rc, 'waitReaders');
    return rc;
  }

  stats() { return statsOf(this); }

  // End of stream. A reservation still out is dropped, unpublished, and
  // its Buffer detached.
  close() {
    const err = closeHandle(this);
    if (err) throw err;
  }

  // Closes as failed: the reader gets ECONNRESET after the bytes already
  // in the ring, never the end of the stream.
  abort() {
    const err = closeHandle(this, true);
    if (err) throw err;
  }
}

// ---- entry points ------------------------------------------------------------

const CREATE_OPTS = ['name', 'capacity', 'records', 'elementType', 'share', 'mode', 'readers', 'blocking', 'highWaterMark', 'timeout', 'spin'];
const OPEN_OPTS = ['records', 'elementType', 'share', 'blocking', 'highWaterMark', 'timeout', 'spin'];
// A stream reader may also take each record's number with it.
const OPEN_READER_OPTS = [...OPEN_OPTS, 'withSeq'];

// withSeq given to an end that has no use for it: say where the number is.
function checkOpenOptions(opts, allowed) {
  if (opts && typeof opts === 'object' && 'withSeq' in opts && !allowed.includes('withSeq')) {
    throw new TypeError('unknown option: withSeq (a stream reader\'s, openReader(); a SyncReader gives reader.seq)');
  }
  return checkOptions(opts, allowed);
}

// opts.spin: microseconds a synchronous wait (Sync* ends, blocking: true)
// spins before it sleeps. The library's default (30) answers a busy peer
// without a system call; on a machine with two cores or fewer the spinning
// thread takes the core its peer needs (the peer's JavaScript thread, and
// Node's own threads for garbage collection and compilation), so there the
// default is 0: sleep at once.
const DEFAULT_SPIN = require('node:os').availableParallelism() <= 2 ? 0 : undefined;
function applySpin(handle, opts) {
  let spin = opts.spin;
  if (spin === undefined) {
    if (DEFAULT_SPIN === undefined) return;
    spin = DEFAULT_SPIN;
  } else if (typeof spin !== 'number') {
    throw new TypeError('spin must be a number');
  } else if (!Number.isInteger(spin) || spin < 0 || spin > 1e6) {
    throw new RangeError('spin must be an integer from 0 to 1000000 (microseconds)');
  }
  const rc = native.setSpin(handle, spin);
  if (rc < 0) throw pipeError(rc, 'setSpin');
}

function create(kind, opts) {
  opts = checkOptions(opts, CREATE_OPTS);
  const shape = shapeOf(opts);
  shape.readers = readersOf(opts);
  if (kind === READER && shape.readers > 1) {
    const err = new TypeError('readers: a broadcast pipe is created by its writer: createWriter({ readers: ' +
      `${shape.readers} }), then openReader(writer.endpoint()) in each reader`);
    err.code = 'ERR_INVALID_ARG_VALUE';
    throw err;
  }
  if (shape.share) {
    if (kind === READER) {
      throw invalid('share: a work-sharing pipe is created by its writer: createWriter({ records: true, share: true, ' +
        'readers: n }), then openReader(writer.endpoint()) in each of the n readers');
    }
    if (opts.readers === undefined) {
      throw invalid('share: a work-sharing pipe needs readers: n, the most readers (2 to ' +
        `${native.READERS_MAX}) that take records from it at once`);
    }
    if (shape.readers < 2) {
      throw invalid(`share: a work-sharing pipe needs readers: n of 2 to ${native.READERS_MAX}, not ${opts.readers}`, RangeError);
    }
  }
  let cap = shape.capacity;
  if (cap !== undefined && shape.elementType) cap *= ELEMENT_TYPES[shape.elementType].BYTES_PER_ELEMENT;
  if (opts.mode !== undefined && typeof opts.mode !== 'number') throw new TypeError('mode must be a number');
  if (opts.spin !== undefined && (typeof opts.spin !== 'number' || !Number.isInteger(opts.spin) || opts.spin < 0 || opts.spin > 1e6)) {
    applySpin(null, opts); // throws the TypeError or RangeError
  }
  const flags = (shape.records ? native.RECORDS : 0) | (shape.share ? native.SHARE : 0);
  const handle = native.create(kind, shape.name, cap, flags, opts.mode, shape.readers);
  applySpin(handle, opts);
  return { handle, shape, opts };
}

module.exports = {
  // Creates a pipe (named if opts.name, else anonymous) and returns its
  // write end as a Writable. capacity counts elements for elementType pipes.
  createWriter(opts) {
    const c = create(WRITER, opts);
    return new PipeWriter(c.handle, c.shape, c.opts);
  },
  createReader(opts) {
    const c = create(READER, opts);
    return new PipeReader(c.handle, c.shape, c.opts);
  },
  createSyncWriter(opts) {
    const c = create(WRITER, opts);
    return new SyncWriter(c.handle, c.shape, c.opts);
  },
  createSyncReader(opts) {
    const c = create(READER, opts);
    return new SyncReader(c.handle, c.shape, c.opts);
  },
  // Open the other end: target is a pipe name or an endpoint().
  openWriter(target, opts) {
    opts = checkOpenOptions(opts, OPEN_OPTS);
    const o = openHandle(WRITER, target, opts);
    return new PipeWriter(o.handle, o.shape, opts);
  },
  openReader(target, opts) {
    opts = checkOpenOptions(opts, OPEN_READER_OPTS);
    const o = openHandle(READER, target, opts);
    return new PipeReader(o.handle, o.shape, opts);
  },
  openSyncWriter(target, opts) {
    opts = checkOpenOptions(opts, OPEN_OPTS);
    const o = openHandle(WRITER, target, opts);
    return new SyncWriter(o.handle, o.shape, opts);
  },
  openSyncReader(target, opts) {
    opts = checkOpenOptions(opts, OPEN_OPTS);
    const o = openHandle(READER, target, opts);
    return new SyncReader(o.handle, o.shape, opts);
  },
  // Zero-copy asynchronous reading: yields Buffers viewing the ring; each
  // is released (and detached) when the loop asks for the next one.
  async *views(reader) {
    if (!(reader instanceof SyncReader)) throw new TypeError('views() takes a SyncReader');
    for (;;) {
      const h = reader._h();
      const v = native.peek(h, 0);
      if (v === null) {
        reader._took(null);
        return;
      }
      if (typeof v === 'number') {
        if (v !== EAGAIN) throw pipeError(v, 'peek');
        // Empty: the event loop watches the descriptor; close() ends the wait.
        const r = await new Promise((resolve) => {
          const w = native.wait(h, resolve);
          if (w < 0) resolve(w);
          else reader._wakeOnClose = resolve;
        });
        reader._wakeOnClose = null;
        if (r < 0) throw pipeError(r, 'peek');
        continue;
      }
      reader._view = v;
      reader._took(v);
      try {
        yield v;
      } finally {
        if (reader._handle && reader._view === v) reader.consume(v.length);
      }
    }
  },
  unlink(name) {
    checkName(name);
    const rc = native.unlink(name);
    if (rc < 0) throw pipeError(rc, 'unlink');
  },
  stat(name) {
    checkName(name);
    return native.statName(name);
  },
  // Closes the descriptor of an endpoint() that will never be opened; does
  // nothing for one already opened or discarded, or a named pipe's.
  discardEndpoint(ep) {
    if (ep === null || typeof ep !== 'object') throw new TypeError('discardEndpoint takes an endpoint object');
    if (Number.isInteger(ep.fd) && ep.fd >= 0 && Number.isInteger(ep.id) && ep.id >= 1) {
      native.discardEndpoint(ep.fd, ep.id);
    }
  },
  PipeWriter,
  PipeReader,
  SyncReader,
  SyncWriter,
  ELEMENT_TYPES: Object.keys(ELEMENT_TYPES),
};
