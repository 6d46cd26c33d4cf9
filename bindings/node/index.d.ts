// SPDX-License-Identifier: MIT
// Type declarations for shmpipe: a pipe in shared memory with hard
// backpressure, as Node.js streams between worker threads and processes.
//
// One file for require() and import alike. It declares the CommonJS module
// (lib/index.js); lib/index.mjs exports the same names, and as its default
// export the whole module, which is what TypeScript gives an ES module's
// default import of a CommonJS one: no `export default` here, which would
// promise require('shmpipe').default.

import { Readable, Writable } from 'node:stream';

/** Element types of an object-mode pipe: each chunk is one number. */
export type ElementType =
  | 'int8' | 'uint8' | 'int16' | 'uint16'
  | 'int32' | 'uint32' | 'float32' | 'float64';

/**
 * The seed's six counters, plus the capacity and the queue depth. On a
 * broadcast pipe a reader's are its own (its position, its reads); the
 * writer's readIndex is the slowest attached reader's position, and its
 * consumedCount the sum over the readers attached.
 */
export interface Stats {
  /** Bytes committed since creation (record mode: ring bytes with framing). */
  writeIndex: number;
  /** Bytes consumed since creation (broadcast writer: the slowest reader, as last seen). */
  readIndex: number;
  /** Writes (or records) committed. */
  producedCount: number;
  /** Reads (or records) consumed (broadcast writer: summed over the readers attached). */
  consumedCount: number;
  /** Times the writer had to sleep. */
  producerWaits: number;
  /** Times the reader had to sleep. */
  consumerWaits: number;
  /** Most bytes in the ring at once. */
  capacity: number;
  /** writeIndex - readIndex. */
  queueDepth: number;
}

/**
 * A plain, cloneable object that opens the other end of a pipe: pass it in
 * workerData (anonymous pipes, same process) or, for a named pipe, use the
 * name in another process. An anonymous endpoint owns a descriptor (fd) and
 * opens once: the open uses it up, succeeded or failed, and a second open
 * throws (code ERR_SHMPIPE_ENDPOINT); discardEndpoint() closes one that will
 * not be opened. A target { fd } without id is a descriptor of the caller's,
 * left open.
 */
export interface Endpoint {
  end: 'reader' | 'writer';
  name: string | null;
  records: boolean;
  /** A work-sharing pipe's (each record to one of its readers). */
  share: boolean;
  elementType: ElementType | null;
  /** Anonymous pipes: the endpoint's own duplicate of the pipe's descriptor. */
  fd?: number;
  /** Anonymous pipes: what the open checks, so that a used endpoint is refused. */
  id?: number;
  /**
   * A broadcast writer's endpoint: the readers its pipe takes at once. Each
   * endpoint opens one of them (one endpoint() per reader).
   */
  readers?: number;
}

export interface PipeOptions {
  /** Ring capacity: bytes, or elements for an elementType pipe. 0 or absent = 1 MiB. */
  capacity?: number;
  /** Each chunk is one record, read back whole. */
  records?: boolean;
  /** Object mode: each chunk is one number of this type. */
  elementType?: ElementType | null;
  /** A POSIX shm name ("/name") for a pipe between processes; absent or null = anonymous. */
  name?: string | null;
  /** Permission bits of a named pipe (default 0o600). */
  mode?: number;
}

/** Options of a new pipe made by its write end (createWriter, createSyncWriter). */
export interface WriterPipeOptions extends PipeOptions {
  /**
   * Broadcast: how many readers the pipe takes at once, 1 to 64 (0 or
   * absent = 1, a plain pipe). Each reader opens its own endpoint() and
   * gets every byte written after it attached; the writer goes at the pace
   * of the slowest reader still attached, and gets EPIPE once none is left.
   * Only a writer makes a broadcast pipe: createReader({ readers: 2 })
   * throws a TypeError. Wait for the readers (waitReaders()) before writing,
   * so that each gets the stream from its first byte.
   */
  readers?: number;
  /**
   * Work-sharing: each record goes to exactly one of the readers, the
   * first to ask (a pool of workers), instead of to every reader. Needs
   * records: true and readers of 2 or more (a TypeError without records or
   * readers, a RangeError for readers 0 or 1), and a capacity of at least
   * 24 bytes. The writer numbers the records 0, 1, 2, ... as written: a
   * SyncReader gives the number of the record it took as reader.seq, a
   * stream reader opened with { withSeq: true } emits { seq, data }. A
   * record's frame is 16 bytes (8 more than a plain record's).
   */
  share?: boolean;
}

export interface EndOptions {
  /** Writable only: sleep in the write (in the calling thread), as the seed does. */
  blocking?: boolean;
  highWaterMark?: number;
  /** Sync ends: most milliseconds a call may wait (-1 = forever, 0 = never). */
  timeout?: number;
  /**
   * Microseconds a wait in the calling thread (sync ends, blocking) spins
   * before it sleeps (default 30; 0 on machines with two cores or fewer).
   */
  spin?: number;
  /**
   * When opening: checked against the pipe, whose own mode the end takes;
   * a contradiction throws a TypeError (code ERR_INVALID_ARG_VALUE).
   */
  records?: boolean;
  /** When opening: a record pipe refuses one (TypeError); a byte stream takes it. */
  elementType?: ElementType | null;
  /**
   * When opening: whether the pipe is a work-sharing one, checked as
   * records is (a contradiction throws a TypeError, ERR_INVALID_ARG_VALUE).
   */
  share?: boolean;
}

/** Options of openReader(): a stream reader's. */
export interface ReaderStreamOptions extends EndOptions {
  /**
   * A work-sharing pipe's stream reader: each record comes as a SeqRecord,
   * { seq, data }, its number with it (the stream takes records ahead of
   * its 'data' events, so the number travels with the record). A
   * TypeError (ERR_INVALID_ARG_VALUE) on any other pipe.
   */
  withSeq?: boolean;
}

/** A record of a work-sharing pipe with its number: a withSeq reader's chunk. */
export interface SeqRecord {
  /** The number the writer gave the record: 0 for its first, then 1, 2, ... (exact below 2^53). */
  seq: number;
  data: Buffer;
}

/**
 * The write end as a Writable: a write calls back once its data is in the
 * ring. write() returns at once and keeps a reference to the chunk (no
 * copy) until it calls back: do not change the chunk meanwhile. destroy(err)
 * aborts the end (the reader gets ECONNRESET after the data); destroy()
 * closes it as end() does; either calls back the pending writes with an error.
 * An elementType writer takes numbers, and typed arrays of its own type
 * (an Int32Array for 'int32'): many elements in one chunk, the fast way.
 */
export class PipeWriter extends Writable {
  /** Ends come from createWriter() and openWriter(); the class is for instanceof. */
  private constructor();
  readonly elementType: ElementType | null;
  readonly records: boolean;
  readonly name: string | null;
  readonly capacity: number;
  /** The readers the pipe takes at once: 1, or a broadcast pipe's N. */
  readonly readers: number;
  /** A work-sharing pipe: each record goes to one of its readers. */
  readonly share: boolean;
  /** Opens the read end; on a broadcast pipe, one of its readers (one endpoint per reader). */
  endpoint(): Endpoint;
  stats(): Stats;
  /**
   * Resolves to how many readers are attached once at least n are (default:
   * all the pipe takes; 0: at once), without blocking the event loop: the
   * end's descriptor is watched, and polls readable when a reader attaches.
   * Writes made meanwhile go on (they do not wait for it). Throws a
   * RangeError for n not an integer from 0 to readers; rejects if the end
   * closes first (EBADF at end(), ERR_STREAM_DESTROYED at destroy() and
   * after), and with EPIPE if the one reader of a plain pipe is gone.
   */
  waitReaders(n?: number): Promise<number>;
  /**
   * Zero-copy, without blocking the event loop: a Buffer over at least n
   * free bytes of the ring itself (n 0 counts as 1; for elementType pipes,
   * bytes of whole elements), once the writes before it are in the ring and
   * the room is there. Writes made meanwhile, and end(), wait for commit().
   * Throws (RangeError) for a bad n or one beyond the capacity (in record
   * mode, beyond the largest record), and if a
   * reservation is already pending or out; rejects after end() or
   * destroy(), and with the pipe's error (EPIPE: the reader is gone).
   */
  reserve(n?: number): Promise<Buffer>;
  /**
   * Publishes the first k bytes of the reservation (one record in record
   * mode; 0 publishes nothing) and detaches its Buffer. Throws, and the
   * reservation stays, for k beyond it or not whole elements; throws with
   * nothing reserved.
   */
  commit(k: number): void;
}

/**
 * The read end as a Readable; 'end' at end of stream, 'error' (ECONNRESET) on
 * a writer that failed, or (ERR_SHMPIPE_PARTIAL_ELEMENT) on a stream that
 * ended inside an element. Its chunks are Buffers (a record each in record
 * mode), numbers for an elementType pipe, and SeqRecords with withSeq. On a
 * work-sharing pipe it takes one record ahead by default (highWaterMark 1):
 * a record it has taken is no other reader's, and is lost if it is
 * destroyed before emitting it.
 */
export class PipeReader extends Readable {
  /** Ends come from createReader() and openReader(); the class is for instanceof. */
  private constructor();
  readonly elementType: ElementType | null;
  readonly records: boolean;
  /** A work-sharing pipe: this reader gets the records it takes, and the others the rest. */
  readonly share: boolean;
  /** Opened with withSeq: its chunks are SeqRecords. */
  readonly withSeq: boolean;
  readonly name: string | null;
  endpoint(): Endpoint;
  stats(): Stats;
}

/** A read end for CPU-bound workers: every call waits in the calling thread. */
export class SyncReader implements Iterable<Buffer | number> {
  /** Ends come from createSyncReader() and openSyncReader(); the class is for instanceof. */
  private constructor();
  readonly elementType: ElementType | null;
  readonly records: boolean;
  /** A work-sharing pipe: this reader gets the records it takes, and the others the rest. */
  readonly share: boolean;
  /**
   * A work-sharing pipe: the number the writer gave the record that the
   * last read(), readInto() or peek() returned (0 for its first record, then
   * 1, 2, ...; exact below 2^53), until the next one. null before any, and
   * once a call found the end of the stream. A peek takes its record: it is
   * this reader's until consumed (a close, or the worker's end, loses it).
   * Throws a TypeError on a pipe that is not work-sharing.
   */
  readonly seq: number | null;
  /**
   * The next chunk (one record in record mode) as a new Buffer, whole
   * elements only; null at end of stream. Throws ERR_SHMPIPE_PARTIAL_ELEMENT
   * if the stream ended inside an element, as readInto and readValue do.
   */
  read(max?: number): Buffer | null;
  /**
   * Fills target (a Buffer or typed array, not a DataView) with what is
   * there; returns the elements of target filled (bytes for a Buffer), 0 at
   * end of stream.
   */
  readInto(target: NodeJS.TypedArray): number;
  /** One element of an elementType pipe; null at end of stream. */
  readValue(): number | null;
  /**
   * Zero-copy: a Buffer over the ring itself, valid until consume(), which
   * detaches it (its length becomes 0). null at end of stream.
   */
  peek(): Buffer | null;
  /** Releases n bytes (default: all) of the last peek. */
  consume(n?: number): void;
  endpoint(): Endpoint;
  stats(): Stats;
  close(): void;
  [Symbol.iterator](): Iterator<Buffer | number>;
}

/** A write end whose write() returns once the data is in the ring. */
export class SyncWriter {
  /** Ends come from createSyncWriter() and openSyncWriter(); the class is for instanceof. */
  private constructor();
  /** Returns the bytes written; a RangeError if they are not whole elements. */
  write(data: ArrayBufferView | string | number | number[]): number;
  /**
   * Zero-copy: a Buffer over at least n bytes (default 1; whole elements
   * for elementType pipes) of free room in the ring itself, waiting for
   * room as write() does; in record mode the payload of one record. Fill
   * it, then publish with commit(). commit(), write(), close() or another
   * reserve() detach it (its length becomes 0); another reserve() drops
   * the reservation unpublished.
   */
  reserve(n?: number): Buffer;
  /**
   * Publishes the first k bytes of the reservation (one record in record
   * mode; 0 publishes nothing) and detaches its Buffer. A RangeError for k
   * beyond the reservation, not whole elements, or with nothing reserved.
   */
  commit(k: number): void;
  /** The readers the pipe takes at once: 1, or a broadcast pipe's N. */
  readonly readers: number;
  readonly records: boolean;
  /** A work-sharing pipe: each record goes to one of its readers. */
  readonly share: boolean;
  /** Opens the read end; on a broadcast pipe, one of its readers (one endpoint per reader). */
  endpoint(): Endpoint;
  /**
   * Waits in the calling thread, within the end's timeout (ETIMEDOUT;
   * EAGAIN with timeout 0), until at least n readers are attached (default:
   * all the pipe takes; 0: at once); returns how many are. A RangeError for
   * n not an integer from 0 to readers.
   */
  waitReaders(n?: number): number;
  stats(): Stats;
  /** End of stream. A reservation still out is dropped, unpublished. */
  close(): void;
  /** Closes as failed: the reader gets ECONNRESET after the data, never the end of the stream. */
  abort(): void;
}

export function createWriter(opts?: WriterPipeOptions & EndOptions): PipeWriter;
export function createReader(opts?: PipeOptions & EndOptions): PipeReader;
export function createSyncWriter(opts?: WriterPipeOptions & EndOptions): SyncWriter;
export function createSyncReader(opts?: PipeOptions & EndOptions): SyncReader;
/**
 * Open the other end of a pipe: by name, by endpoint (used up by the open),
 * or by a descriptor of the caller's ({ fd }, left open). The end takes its
 * mode and capacity from the pipe.
 */
export function openWriter(target: string | Endpoint | { fd: number }, opts?: EndOptions): PipeWriter;
export function openReader(target: string | Endpoint | { fd: number }, opts?: ReaderStreamOptions): PipeReader;
export function openSyncWriter(target: string | Endpoint | { fd: number }, opts?: EndOptions): SyncWriter;
export function openSyncReader(target: string | Endpoint | { fd: number }, opts?: EndOptions): SyncReader;
/** Zero-copy async iteration: each Buffer views the ring until the loop moves on. */
export function views(reader: SyncReader): AsyncGenerator<Buffer, void, undefined>;
export function unlink(name: string): void;
export function stat(name: string): Stats;
/** Closes the descriptor of an endpoint that will not be opened; nothing for one already opened or discarded. */
export function discardEndpoint(ep: Endpoint): void;
export const ELEMENT_TYPES: ElementType[];
