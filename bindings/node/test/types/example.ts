// SPDX-License-Identifier: MIT
// A typed program over shmpipe, written as a user would, in CommonJS (a .ts
// file of a package without "type": "module"). It is compiled by
// test/types.test.js with tsc, never run: every call and class the package
// exports is used here, so that index.d.ts cannot drift from lib/index.js
// without the compiler saying so.
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Worker, isMainThread, workerData } from 'node:worker_threads';
import shmpipe = require('shmpipe');
import {
  createWriter,
  createReader,
  createSyncWriter,
  createSyncReader,
  openWriter,
  openReader,
  openSyncWriter,
  openSyncReader,
  views,
  unlink,
  stat,
  discardEndpoint,
  PipeWriter,
  PipeReader,
  SyncReader,
  SyncWriter,
  ELEMENT_TYPES,
} from 'shmpipe';
import type {
  ElementType,
  Endpoint,
  EndOptions,
  PipeOptions,
  ReaderStreamOptions,
  SeqRecord,
  Stats,
  WriterPipeOptions,
} from 'shmpipe';

function report(s: Stats): string {
  return `${s.writeIndex - s.readIndex} of ${s.capacity} bytes queued (${s.queueDepth}), ` +
    `${s.producedCount} writes, ${s.consumedCount} reads, ` +
    `${s.producerWaits} + ${s.consumerWaits} waits`;
}

// The seed: numbers through an int32 pipe to a worker that reads them one
// at a time, waiting in its own thread.
async function seed(): Promise<void> {
  const writable: PipeWriter = shmpipe.createWriter({ elementType: 'int32', capacity: 8 });
  const ep: Endpoint = writable.endpoint();
  const worker = new Worker(__filename, { workerData: ep });
  async function* numbers(): AsyncGenerator<number> {
    for (let i = 0; i < 100; i++) yield i;
  }
  await pipeline(Readable.from(numbers(), { objectMode: true }), writable);
  // The fast way: many elements per chunk, and room lent in place.
  const ints: PipeWriter = shmpipe.createWriter({ elementType: 'int32', capacity: 1024 });
  ints.write(Int32Array.of(1, 2, 3));
  const place: Buffer = await ints.reserve(8);
  place.writeInt32LE(4, 0);
  ints.commit(4);
  ints.destroy();
  console.log(report(writable.stats()), writable.capacity, writable.elementType, writable.records);
  await new Promise((resolve) => worker.once('exit', resolve));
}

function seedWorker(ep: Endpoint): void {
  const reader: SyncReader = openSyncReader(ep, { timeout: -1, spin: 0 });
  let sum = 0;
  for (;;) {
    const value: number | null = reader.readValue();
    if (value === null) break;
    sum += value;
  }
  console.log(sum, reader.elementType, reader.records);
  reader.close();
}

// A named byte stream, its other end opened by name, as another process would.
async function named(name: string): Promise<void> {
  const opts: PipeOptions & EndOptions = { name, capacity: 1 << 16, mode: 0o600, highWaterMark: 16384 };
  const reader: PipeReader = createReader(opts);
  const writer: Writable = openWriter(name, { blocking: false });
  writer.end(Buffer.from('hello'));
  const chunks: Buffer[] = [];
  for await (const chunk of reader) chunks.push(chunk as Buffer);
  const counters: Stats = stat(name);
  console.log(Buffer.concat(chunks).toString(), report(counters), reader.name, reader.records);
  unlink(name);
}

// Records, written by a stream and read whole in a worker-like loop.
async function records(): Promise<void> {
  const writer = createWriter({ records: true, capacity: 4096 });
  const reader = openSyncReader(writer.endpoint(), { records: true, timeout: 1000 });
  writer.write(Buffer.from('one record'));
  writer.end();
  for (const record of reader) console.log(record);
  reader.close();
}

// Broadcast: one writer, a reader per worker, each with every byte.
async function broadcast(): Promise<void> {
  const opts: WriterPipeOptions & EndOptions = { readers: 3, capacity: 1 << 20 };
  const writer: PipeWriter = createWriter(opts);
  const endpoints: Endpoint[] = [0, 1, 2].map(() => writer.endpoint());
  const places: number | undefined = endpoints[0]?.readers;
  for (const ep of endpoints) new Worker(__filename, { workerData: ep });
  const attached: number = await writer.waitReaders(writer.readers);
  writer.end(Buffer.from('to every reader'));
  const sync: SyncWriter = createSyncWriter({ readers: 2, timeout: 1000 });
  const now: number = sync.waitReaders(0) + sync.readers;
  console.log(attached, places, now);
  sync.close();
}

// Work-sharing: each record to one reader of a pool, numbered as written.
async function pool(): Promise<void> {
  const opts: WriterPipeOptions = { records: true, share: true, readers: 2, capacity: 4096 };
  const writer: PipeWriter = createWriter(opts);
  const ep: Endpoint = writer.endpoint();
  const shared: boolean = writer.share && ep.share;
  const streamOpts: ReaderStreamOptions = { withSeq: true, highWaterMark: 1 };
  const stream: PipeReader = openReader(ep, streamOpts);
  stream.on('data', (r: SeqRecord) => console.log(r.seq, r.data.length, stream.withSeq, stream.share));
  const sync: SyncReader = openSyncReader(writer.endpoint(), { share: true, timeout: 1000 });
  await writer.waitReaders();
  writer.end(Buffer.from('work'));
  const rec: Buffer | null = sync.read();
  const seq: number | null = sync.seq;
  console.log(shared, rec, seq, sync.share);
  sync.close();
  const sw: SyncWriter = createSyncWriter({ records: true, share: true, readers: 2 });
  console.log(sw.share, sw.records);
  sw.close();
}

// Synchronous ends both ways, zero-copy reads and writes, and an abort.
function sync(): void {
  const reader = createSyncReader({ capacity: 4096 });
  const writer: SyncWriter = openSyncWriter(reader.endpoint(), { timeout: 0 });
  const n: number = writer.write('abc') + writer.write(new Uint8Array([1, 2, 3]));
  const view: Buffer | null = reader.peek();
  if (view !== null) reader.consume(view.length);
  const copy: Buffer | null = reader.read(1024);
  const into = new Uint8Array(16);
  const got: number = reader.readInto(into) + reader.readInto(Buffer.alloc(16));
  console.log(n, copy, got, report(reader.stats()), report(writer.stats()));
  writer.abort();
  reader.close();

  const room: Buffer = writer.reserve(3);
  const filled: number = room.write('xyz');
  writer.commit(filled);
  writer.reserve().fill(0);
  writer.commit(0);

  const ints = createSyncWriter({ elementType: 'float64', capacity: 64 });
  const slots = ints.reserve(2 * Float64Array.BYTES_PER_ELEMENT);
  new Float64Array(slots.buffer, slots.byteOffset, 2).set([0.5, 1]);
  ints.commit(slots.length >= 16 ? 16 : 0);
  ints.write(1.5);
  ints.write([2.5, 3.5]);
  ints.write(new Float64Array([4.5]));
  ints.close();
}

// Zero-copy asynchronous iteration over a sync reader, from a stream writer.
async function zeroCopy(): Promise<void> {
  const reader = createSyncReader();
  const writer = openWriter(reader.endpoint());
  writer.end('bytes');
  let total = 0;
  for await (const view of views(reader)) total += view.length;
  console.log(total);
  reader.close();
}

// An endpoint that will not be opened is discarded; an end opened from a
// descriptor of the caller's; a reader stream opened from an endpoint.
function endpoints(): void {
  const writer = createSyncWriter();
  discardEndpoint(writer.endpoint());
  const reader: PipeReader = openReader(writer.endpoint(), { highWaterMark: 1024 });
  reader.destroy();
  writer.close();
  const inherited: SyncReader = openSyncReader({ fd: 3 });
  inherited.close();
}

function instances(end: unknown): string {
  if (end instanceof PipeWriter || end instanceof PipeReader) return end.name ?? 'anonymous';
  if (end instanceof SyncReader) return 'sync reader';
  if (end instanceof SyncWriter) return 'sync writer';
  return 'not an end';
}

const types: ElementType[] = ELEMENT_TYPES;
const first: ElementType | undefined = types[0];

if (isMainThread) {
  seed()
    .then(() => named('/shmpipe-example'))
    .then(records)
    .then(sync)
    .then(zeroCopy)
    .then(endpoints)
    .then(broadcast)
    .then(pool)
    .then(() => console.log(instances(createReader()), first, types.length))
    .catch((err: NodeJS.ErrnoException) => console.error(err.code, err.errno, err.message));
} else {
  seedWorker(workerData as Endpoint);
}
