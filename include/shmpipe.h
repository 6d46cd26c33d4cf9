/* SPDX-License-Identifier: MIT */
/*
 * shmpipe: a pipe in shared memory, with hard backpressure.
 *
 * The model
 * ---------
 * A shmpipe is pipe(2) without the kernel in the data path. A producer writes
 * a stream of bytes into a bounded ring buffer that lives in shared memory;
 * one consumer, in another thread or another process, reads it.
 *
 * Memory is strictly bounded. The ring never holds more than `capacity`
 * bytes, exactly as asked. When it is full the writer sleeps in the kernel
 * until the reader frees space; when it is empty the reader sleeps until
 * data arrives. Each side wakes the other only when the other actually
 * waits, so a transfer in which both sides keep up makes no system call at
 * all. A waiting side sleeps on a doorbell (a pipe) that only its peer can
 * ring, so it learns at once when the peer's process dies, and an event loop
 * can wait for it with poll(2) or epoll alongside its sockets (see
 * shmpipe_reader_pollfd).
 *
 * The semantics are pipe(2)'s: a write blocks while the ring is full and
 * returns only once every byte is in the ring; closing the write end is end
 * of stream (the reader drains what is left, then read returns 0); closing
 * the read end makes a blocked or later write fail with -EPIPE.
 *
 * Conventions
 * -----------
 * Every function returns a value >= 0 on success and a negative errno value
 * on failure (-EINVAL, -EPIPE, ...); shmpipe_strerror() names them. No
 * function aborts, prints, or raises a signal on bad input; in particular a
 * write to a closed pipe returns -EPIPE and never raises SIGPIPE.
 *
 * Threads: a writer handle is used by one thread at a time, and so is a
 * reader handle; the writer and the reader may (and usually do) run in
 * different threads at the same time. A handle must not be closed while
 * another thread is inside a call on it. The *_stats functions only read
 * shared counters and may be called from any thread while the handle is open.
 *
 * Signals: a blocking call interrupted by a signal handler returns what it
 * had already transferred, or -EINTR if that was nothing, as read(2) and
 * write(2) do on a pipe; calling it again continues. As on a pipe, a handler
 * installed with SA_RESTART lets an untimed call (timeout -1) go on instead:
 * it waits in one read(2) of its doorbell (or, for the end that created a
 * named or passed pipe while the other end has not yet come, one accept(2)
 * on their rendezvous), which the kernel restarts. A call with a positive
 * timeout waits in poll(2), which is never restarted, so it returns the
 * count or -EINTR whatever the handler's flags; so does an untimed call in
 * the rare states where it must poll (design.md, "Signals").
 */
#ifndef SHMPIPE_H
#define SHMPIPE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SHMPIPE_API __attribute__((visibility("default")))
#else
#define SHMPIPE_API
#endif

#define SHMPIPE_VERSION_MAJOR 0
#define SHMPIPE_VERSION_MINOR 1
#define SHMPIPE_VERSION_PATCH 0

/* Ring capacity used when shmpipe_options.capacity is 0: 1 MiB. */
#define SHMPIPE_DEFAULT_CAPACITY ((size_t)1 << 20)
/* Largest capacity accepted: 1 TiB. Larger values give -EINVAL. */
#define SHMPIPE_MAX_CAPACITY ((uint64_t)1 << 40)

/*
 * shmpipe_options.flags
 *
 * SHMPIPE_RECORDS: each write (or commit) is one record and each read (or
 * peek) returns one whole record. A record occupies 8 bytes of framing plus
 * its payload rounded up to a multiple of 8 in the ring, so payloads stay
 * 8-byte aligned: SHMPIPE_RECORD_SPACE(len) bytes, an overhead of 8 to 15
 * bytes. The largest record is SHMPIPE_RECORD_MAX(capacity) bytes; a ring
 * too small for a record of 1 byte (capacity < 16) is refused.
 */
#define SHMPIPE_RECORDS		     0x1u
#define SHMPIPE_RECORD_SPACE(len)    (8 + (((uint64_t)(len) + 7) & ~(uint64_t)7))
#define SHMPIPE_RECORD_MAX(capacity) ((((uint64_t)(capacity)) & ~(uint64_t)7) - 8)

/*
 * SHMPIPE_SHARE (with SHMPIPE_RECORDS and readers > 1): work-sharing. Each
 * record goes to exactly one reader, the first to ask for it: a pool of
 * workers, each taking the next record when it is free. A record's frame
 * also carries its sequence number (shmpipe_reader_seq), so that results
 * can be put back in order: SHMPIPE_SHARE_RECORD_SPACE(len) bytes of the
 * ring, at most SHMPIPE_SHARE_RECORD_MAX(capacity) of payload, a ring of at
 * least 24 bytes. A record is taken by the read that returns it, or by the
 * peek that shows it (and stays held until consumed); a reader that
 * closes, or whose process dies, while it holds a record loses that record
 * (at most once: it never goes to another reader), and the others go on.
 */
#define SHMPIPE_SHARE			   0x2u
#define SHMPIPE_SHARE_RECORD_SPACE(len)	   (SHMPIPE_RECORD_SPACE(len) + 8)
#define SHMPIPE_SHARE_RECORD_MAX(capacity) (SHMPIPE_RECORD_MAX(capacity) - 8)

/*
 * SHMPIPE_REOPEN (one reader only): an end whose process dies without
 * closing may be taken again, by shmpipe_*_open (or *_open_fd) in another
 * process, which goes on from where the dead one stopped: a new reader from
 * the first byte not consumed, a new writer after the last byte committed.
 * Meanwhile the other end does not fail: a writer waits for room and a
 * reader for data, as if the dead end were only slow (within their
 * timeouts). A clean close is still the end of the stream (reader's: the
 * writer's -EPIPE), and shmpipe_writer_abort still an error. After a death,
 * the surviving end cannot be rung by the new one: both wait in slices of
 * 10 ms, looking again after each; an event loop's pollfd on the surviving
 * end stays readable (call it with timeout 0, it returns -EAGAIN until
 * there is progress), so such an end suits blocking calls best. For a
 * forwarder that must survive a restart (shmpipe forward).
 */
#define SHMPIPE_REOPEN 0x4u

typedef struct shmpipe_writer shmpipe_writer; /* the write end */
typedef struct shmpipe_reader shmpipe_reader; /* the read end  */

/*
 * The structures below end in reserved space, so that a later 1.x release
 * can add fields without changing their size. Zero an options structure
 * before filling it (= {0}, a designated initializer, or memset): a
 * nonzero reserved word is refused with -EINVAL, so that a field added
 * later is never read from a caller that did not set it. The library
 * zeroes the reserved words of everything it fills in.
 */
typedef struct shmpipe_options {
	size_t capacity;  /* most bytes in the ring at once, exact; 0 = 1 MiB (mapped in pages) */
	unsigned flags;	  /* SHMPIPE_RECORDS: each write is one record, read back whole */
	unsigned mode;	  /* permission bits of a named pipe; 0 = 0600 */
	uint32_t readers; /* readers attached at once; 0 or 1 = one (see below), at most
			     SHMPIPE_READERS_MAX: every reader gets every byte */
	uint32_t reserved32;  /* zero */
	uint64_t reserved[5]; /* zero */
} shmpipe_options;

/*
 * Broadcast: a pipe created with options.readers = N > 1 takes up to N
 * readers at once, each attached with shmpipe_reader_open (named) or
 * shmpipe_reader_open_fd (from the writer's descriptor); one more gets
 * -EBUSY, and the place of a reader that closed or died is free again.
 * Every reader gets every byte (or record) written after it attached, in
 * order, at its own pace, with no copy per reader in the ring: the writer
 * waits while the slowest live reader would be overrun, so the bytes in the
 * ring never exceed the capacity. A reader that closes, or whose process
 * dies, stops holding the writer back (a death within SHMPIPE_READERS_REAP_MS
 * of the writer waiting on it); the writer gets -EPIPE only while no reader
 * is attached after one has been, as pipe(2) with several readers. Until
 * the first reader attaches the writer waits (shmpipe_writer_wait_readers
 * waits for more). End of stream, or an abort, reaches every reader. A
 * broadcast pipe must be created by its writer (shmpipe_writer_create or
 * shmpipe_pair, whose reader is the first); shmpipe_reader_create refuses
 * readers > 1 with -EINVAL.
 */
#define SHMPIPE_READERS_MAX	64
#define SHMPIPE_READERS_REAP_MS 10

typedef struct shmpipe_stats {
	uint64_t capacity;	 /* most bytes in the ring at once, as asked */
	uint64_t write_index;	 /* bytes committed since creation (seed: writeIndex) */
	uint64_t read_index;	 /* bytes consumed since creation (seed: readIndex) */
	uint64_t produced;	 /* writes / records committed   (seed: producedCount) */
	uint64_t consumed;	 /* reads / records consumed     (seed: consumedCount) */
	uint64_t producer_waits; /* times the writer had to wait: slept, or, with timeout 0,
				    armed its descriptor (seed: producerWaits) */
	uint64_t consumer_waits; /* times the reader had to wait, likewise (seed: consumerWaits) */
	uint64_t reserved[9];	 /* zero */
} shmpipe_stats;

/*
 * shmpipe_pair - create an anonymous pipe and take both of its ends.
 *
 * Like pipe(2): on success *w is the write end and *r the read end, to be
 * used by two threads of this process. The ring lives in a memfd, so the same
 * pipe also survives fork(2). opts may be NULL (a 1 MiB byte stream).
 * Without /proc (which the second end needs to open the memfd again), the
 * ring lives in a shared memory object whose name is removed at once.
 *
 * Returns 0, or -EINVAL (NULL handle pointers, capacity above
 * SHMPIPE_MAX_CAPACITY, unknown flags, a record-mode capacity below 16),
 * -ENOMEM or -EMFILE when the system cannot provide the memory or the
 * descriptor. On failure *w and *r are left untouched and nothing leaks.
 * The ring's memory is released when both ends are closed.
 *
 * Unlike pipe(2)'s descriptors, a handle copied by fork(2) is the same end
 * in both processes: closing it in either closes that end for both. After
 * a fork, each process drops (shmpipe_*_drop) the end it will not use, as
 * it would close a pipe's unused descriptor. Or create one end with
 * shmpipe_writer_create(&w, NULL, opts) (or the reader) and let the child
 * take the other with shmpipe_reader_open_fd(&r, shmpipe_writer_fd(w)),
 * dropping its copy of the first.
 */
SHMPIPE_API int shmpipe_pair(shmpipe_writer **w, shmpipe_reader **r, const shmpipe_options *opts);

/*
 * Named pipes, between unrelated processes.
 *
 * A name is a POSIX shared memory name: a leading '/', then 1 to 200
 * characters other than '/' (anything else is -EINVAL). One side creates the
 * pipe and takes its end; the other side opens the other end by name.
 *
 * shmpipe_writer_create / shmpipe_reader_create create the shared object
 * (O_CREAT | O_EXCL, with exactly the permission bits opts->mode, or 0600;
 * the umask does not apply, -EINVAL for bits outside 0777) and take the
 * write or read end. The ring's memory is reserved at once (fallocate):
 * -ENOSPC if /dev/shm cannot hold it (no name is left), -ENOMEM if the
 * memory cannot. Returns 0, -EEXIST if the name is taken, -EINVAL, -EACCES,
 * -ENOSPC, -ENOMEM. A NULL name creates an anonymous pipe (a memfd), whose other end
 * is reached through its descriptor (shmpipe_*_fd below), e.g. after fork(2)
 * or over a UNIX socket.
 *
 * shmpipe_writer_open / shmpipe_reader_open take the other end of an
 * existing pipe. Returns 0, -ENOENT if there is no such pipe, -EBUSY if that
 * end is taken (held by a live process, or held before and given up: an end
 * is taken once), -EPROTO if the shared object is not a shmpipe this version
 * understands (bad magic, version, geometry or size), -EACCES (also when a
 * process that may only read the object keeps the free end from us with a
 * read lock: a pipe whose mode lets others read it), -EPERM if the object
 * belongs to a user other than us and root (anyone may create a name
 * first: to share a pipe with another user on purpose, open the object
 * yourself and use shmpipe_*_open_fd, which checks no owner). The two ends
 * meet to exchange their doorbells (see the model above) through an
 * abstract UNIX socket of the creating end: -ECONNREFUSED, and nothing
 * taken, if it cannot be reached though it lives (another network
 * namespace); -EAGAIN, and nothing taken, if others crowd it for half a
 * second (try again later). The same holds for shmpipe_*_open_fd.
 *
 * Either side may attach first: a writer may fill the ring before a reader
 * comes, and a reader waits for a writer (both subject to their timeout).
 * The peer is not trusted: every value read from the shared object is
 * checked before use, and a corrupt one gives -EPROTO, never a wild access.
 * A named object cannot be sealed against shrinking, so a peer could cut
 * it under our mapping: the first end of such an object installs a SIGBUS
 * handler for the process, which turns a fault in a pipe's mapping into
 * -EPROTO for that end and passes every other SIGBUS to the handler it
 * replaced (or the default action). A program that installs its own SIGBUS
 * handler afterwards should pass on the faults that are not its own.
 * A peer that dies is noticed at once (well under 10 ms) by an end that
 * waits for it: the writer gets -EPIPE, the reader gets every byte that was
 * committed, then -ECONNRESET (not the 0 of a clean close).
 */
SHMPIPE_API int shmpipe_writer_create(shmpipe_writer **w, const char *name,
				      const shmpipe_options *opts);
SHMPIPE_API int shmpipe_reader_create(shmpipe_reader **r, const char *name,
				      const shmpipe_options *opts);
SHMPIPE_API int shmpipe_writer_open(shmpipe_writer **w, const char *name);
SHMPIPE_API int shmpipe_reader_open(shmpipe_reader **r, const char *name);

/*
 * shmpipe_unlink - remove a pipe's name, as unlink(2) does: ends already
 * attached keep working; the memory goes when the last one closes.
 * Returns 0, -ENOENT, -EINVAL (bad name), -EACCES.
 */
SHMPIPE_API int shmpipe_unlink(const char *name);

/*
 * shmpipe_stat - the counters of a named pipe, read without taking an end
 * (copied with pread, never mapped: whoever owns the object may resize it
 * meanwhile). Returns 0, -ENOENT, -EINVAL, -EPROTO (also for anything that
 * is not a regular shared memory object, such as a FIFO).
 */
SHMPIPE_API int shmpipe_stat(const char *name, shmpipe_stats *out);

/* shmpipe_end_info.state: how far an end has come. */
#define SHMPIPE_END_ABSENT  0 /* never taken */
#define SHMPIPE_END_OPEN    1 /* taken and not closed: held, or its holder died */
#define SHMPIPE_END_CLOSED  2 /* closed cleanly */
#define SHMPIPE_END_ABORTED 3 /* the write end, closed as failed (shmpipe_writer_abort) */

typedef struct shmpipe_end_info {
	int state;    /* SHMPIPE_END_ABSENT, _OPEN, _CLOSED or _ABORTED */
	uint32_t pid; /* the process that took the end (as it recorded it), 0 if none */
	int alive;    /* 1 while a process holds the end (the kernel's lock says so) */
	int asleep; /* 1 while the holder waits (asleep or polling): writer for space, reader for data */
	uint32_t reserved[4]; /* zero */
} shmpipe_end_info;

typedef struct shmpipe_info {
	shmpipe_stats stats; /* as shmpipe_stat gives them */
	unsigned flags;	     /* SHMPIPE_RECORDS, as the pipe was created */
	shmpipe_end_info writer;
	shmpipe_end_info
	    reader;	  /* broadcast: OPEN once a reader attached (shmpipe_inspect_readers) */
	uint32_t readers; /* readers the pipe takes at once (1, or options.readers) */
	uint32_t reserved[14]; /* zero */
} shmpipe_info;

/* One reader of a broadcast pipe, as shmpipe_inspect_readers sees it. */
typedef struct shmpipe_reader_info {
	shmpipe_end_info end; /* state (ABSENT: never taken), pid, alive, asleep */
	uint64_t read_index;  /* this reader's position: bytes it consumed since creation */
	uint64_t consumed; /* reads / records this reader (the last to take the place) consumed */
	uint64_t consumer_waits; /* times it waited for data */
	uint64_t reserved[5];	 /* zero */
} shmpipe_reader_info;

/*
 * shmpipe_inspect - everything an outside observer can know of a named pipe,
 * without taking an end: the counters, the flags, and for each end its state,
 * who took it, whether a process still holds it and whether that process is
 * asleep waiting. An end whose state is OPEN but that is not alive was held
 * by a process that died without closing it.
 *
 * The object is never mapped, only read by copy (pread(2)), so that its
 * owner cannot fault us by shrinking it; the values come from a
 * process that may be hostile, so they are checked (the geometry as at
 * attach) and only reported, never used to reach memory. pid is what the
 * holder wrote: trust alive, which the kernel keeps, over it. The answer is
 * a snapshot: by the time it returns, a sleeper may have woken. A header
 * still being written by its creator is not waited for (-EPROTO), so that a
 * scan of many objects stays quick.
 *
 * Any thread, any process with read access. Does not block. Returns 0,
 * -ENOENT, -EINVAL (bad name or NULL out), -EACCES, -EPROTO (not a shmpipe
 * this version understands).
 */
SHMPIPE_API int shmpipe_inspect(const char *name, shmpipe_info *out);

/*
 * shmpipe_inspect_readers - each reader's place of a named pipe, as
 * shmpipe_inspect sees the ends: out[i] for place i < n, in the order of
 * the places (a place whose state is ABSENT was never taken; CLOSED, or
 * OPEN and not alive, was left). Returns the number of places (1 for a
 * pipe with one reader, whose place is the reader), however many were
 * filled, or shmpipe_inspect's errors. n may be 0 (out then may be NULL).
 */
SHMPIPE_API int shmpipe_inspect_readers(const char *name, shmpipe_reader_info *out, unsigned n);

/*
 * shmpipe_writer_wait_readers - wait until at least n readers are attached
 * to a broadcast pipe, as the end's timeout allows, so that all of them get
 * the stream from its first byte. Returns how many are attached (n = 0:
 * at once), or -EINVAL (NULL, n above the pipe's readers), -EAGAIN,
 * -ETIMEDOUT, -EINTR. On a pipe with one reader, n may be 0 or 1.
 */
SHMPIPE_API int shmpipe_writer_wait_readers(shmpipe_writer *w, unsigned n);

/*
 * shmpipe_reader_seq - the sequence number of the record that the last
 * successful read or peek of a SHMPIPE_SHARE pipe returned: 0 for the
 * first record written, 1 for the next, and so on. Returns 0 with *seq
 * set, or -EINVAL (NULL, not a shared pipe, no record read yet). The
 * number comes from the writer, which may be hostile: it is only reported.
 */
SHMPIPE_API int shmpipe_reader_seq(const shmpipe_reader *r, uint64_t *seq);

/*
 * Passing an end to another process by descriptor.
 *
 * shmpipe_writer_fd / shmpipe_reader_fd return the descriptor of the pipe's
 * shared object, owned by the handle (do not close it), to hand to another
 * process: inherited across fork(2), or sent with shmpipe_send_fd. The
 * receiver takes the other end with shmpipe_writer_open_fd or
 * shmpipe_reader_open_fd, which attach to the pipe behind fd (the caller
 * keeps fd and may close it afterwards) with the errors of the *_open
 * functions, and -EBADF if fd is not open, -EOPNOTSUPP if /proc is not
 * mounted (the end opens its own description of the object through it).
 *
 * shmpipe_send_fd sends a descriptor over a connected UNIX socket
 * (SCM_RIGHTS); shmpipe_recv_fd receives one and returns it (close-on-exec)
 * or -errno (-EBADMSG if the message carried none, or the peer closed the
 * socket).
 */
SHMPIPE_API int shmpipe_writer_fd(const shmpipe_writer *w);
SHMPIPE_API int shmpipe_reader_fd(const shmpipe_reader *r);
SHMPIPE_API int shmpipe_writer_open_fd(shmpipe_writer **w, int fd);
SHMPIPE_API int shmpipe_reader_open_fd(shmpipe_reader **r, int fd);
SHMPIPE_API int shmpipe_send_fd(int sock, int fd);
SHMPIPE_API int shmpipe_recv_fd(int sock);

/*
 * shmpipe_write - write len bytes into the pipe (write end, blocking).
 *
 * Copies buf into the ring and returns only once all len bytes are in it,
 * sleeping while the ring is full. Returns len on success. If the reader goes
 * away, the end's timeout expires, or a signal arrives after part of the data
 * is in the ring, returns the count already written; the next call reports
 * the condition. Returns -EPIPE once the reader has closed (even if it closed
 * while we slept) or, noticed while waiting for space, died, -EAGAIN (timeout 0) or -ETIMEDOUT (timeout > 0) if no byte
 * could be written in time, -EINTR if a signal arrived before any byte was
 * written, -EINVAL for a NULL handle or a NULL buf with len > 0. A write of 0
 * bytes returns 0 and does nothing. Never raises SIGPIPE.
 *
 * In record mode the write is one record, all or nothing: it returns len
 * once the whole record is in the ring, or an error and nothing is written;
 * -EMSGSIZE if len exceeds SHMPIPE_RECORD_MAX(capacity).
 */
SHMPIPE_API ssize_t shmpipe_write(shmpipe_writer *w, const void *buf, size_t len);

/*
 * shmpipe_writev - write the bytes of iovcnt buffers as if by one call (write
 * end, blocking).
 *
 * In stream mode the buffers are concatenated and the call behaves as
 * shmpipe_write of the whole, returning the byte count or a partial count as
 * shmpipe_write does; the bytes are published once per slice (the ring's
 * capacity, or a quarter of it for rings of 16 KiB and more), so many small
 * items cost one publication and at most one wake-up. In record mode
 * each buffer is one record (buffers of 0 bytes are skipped); the records
 * that fit are published together, and the call returns the payload bytes
 * of the whole records written: all of them, or, if it had to stop (timeout,
 * signal, reader gone), those before the first one that could not be
 * written. Returns -EINVAL for a NULL handle, iov == NULL with iovcnt > 0,
 * iovcnt < 0 or above IOV_MAX, or a total above SSIZE_MAX; -EMSGSIZE (and
 * nothing written) if a record could never fit in the ring; otherwise the
 * errors of shmpipe_write.
 */
SHMPIPE_API ssize_t shmpipe_writev(shmpipe_writer *w, const struct iovec *iov, int iovcnt);

/*
 * shmpipe_reserve - lend out free space of the ring (write end, blocking).
 *
 * Waits until at least min_len bytes are free (min_len 0 counts as 1), sets
 * *buf to the first of them, and returns how many are free: the caller may
 * fill any part of that span (for example with read(2)) and publish it with
 * shmpipe_commit. The span is contiguous even where it wraps around the end
 * of the ring. In record mode the span is the payload of one record, and the
 * count is the largest record that fits now. Reserving again before
 * committing hands out the same start again. Returns -EMSGSIZE if min_len
 * exceeds what the ring could ever hold (capacity, or the largest record),
 * and otherwise the errors of shmpipe_write (-EPIPE, -EAGAIN, -ETIMEDOUT,
 * -EINTR, -EINVAL for NULL arguments).
 */
SHMPIPE_API ssize_t shmpipe_reserve(shmpipe_writer *w, void **buf, size_t min_len);

/*
 * shmpipe_commit - publish the first len bytes of the last reservation.
 *
 * The reader can read them at once; in record mode they become one record
 * (len 0 publishes nothing). The reservation ends: reserve again to write
 * more. Returns 0, -EINVAL if len exceeds what the last shmpipe_reserve
 * returned (nothing is published) or for a NULL handle, -EPIPE if the reader
 * has closed (the bytes are dropped).
 */
SHMPIPE_API int shmpipe_commit(shmpipe_writer *w, size_t len);

/*
 * shmpipe_writer_close - end of stream; frees the handle.
 *
 * Everything already written stays readable; once the reader has drained it,
 * its reads return 0. A reader asleep on an empty ring is woken. After the
 * call w is no longer valid. Returns 0, or -EINVAL for a NULL handle.
 */
SHMPIPE_API int shmpipe_writer_close(shmpipe_writer *w);

/*
 * shmpipe_writer_drop / shmpipe_reader_drop - let go of this process's copy
 * of an end without closing it; frees the handle.
 *
 * A handle copied by fork(2) is the same end in both processes, held by
 * both: closing it in either closes it for both, and a process that keeps
 * a copy it does not use keeps the end alive for the peer (which then
 * notices no death). After a fork, each process drops the copies it will
 * not use, as each closes the pipe(2) descriptors it will not use: the end
 * stays open for the other, and lives exactly as long as the process that
 * uses it. Dropping an end that no other process holds leaves it as if
 * its holder had died (the peer gets -EPIPE or -ECONNRESET). After the
 * call the handle is no longer valid. Returns 0, or -EINVAL for NULL.
 *
 * A writer whose end another process has closed refuses to go on: its
 * writes return -EBADF (no byte may follow the end of stream). A reader
 * that has returned end of stream returns it for ever, whatever a writer
 * kept alive elsewhere publishes after the close.
 */
SHMPIPE_API int shmpipe_writer_drop(shmpipe_writer *w);
SHMPIPE_API int shmpipe_reader_drop(shmpipe_reader *r);

/*
 * shmpipe_read - read up to len bytes from the pipe (read end, blocking).
 *
 * Sleeps while the ring is empty, then copies whatever is there, up to len
 * bytes, and returns the count (like read(2) on a pipe, it does not wait to
 * fill buf). Returns 0 at end of stream: the writer closed and every byte it
 * wrote has been read. Returns -ECONNRESET if the writer's process died
 * without closing, once every byte it had committed has been read. Returns -EAGAIN (timeout 0) or -ETIMEDOUT (timeout > 0)
 * if no data came in time, -EINTR if a signal arrived while it slept,
 * -EPROTO if the shared positions are inconsistent, -EINVAL for a NULL handle
 * or a NULL buf with len > 0. A read of 0 bytes returns 0 at once.
 *
 * In record mode a read returns exactly one whole record; if it is longer
 * than len, the read returns -EMSGSIZE and the record stays for the next
 * read (shmpipe_peek tells its length).
 */
SHMPIPE_API ssize_t shmpipe_read(shmpipe_reader *r, void *buf, size_t len);

/*
 * shmpipe_peek - look at readable data in place (read end, blocking).
 *
 * Waits like shmpipe_read until data is there, sets *buf to it and returns
 * how many bytes are readable, all in one contiguous span even where they
 * wrap around the end of the ring; in record mode, the payload of the next
 * whole record and its length. The bytes stay in the ring until
 * shmpipe_consume releases them; peeking again shows them again. Returns 0
 * at end of stream (*buf is then NULL), and otherwise the errors of
 * shmpipe_read (-EAGAIN, -ETIMEDOUT, -EINTR, -EPROTO, -EINVAL for NULL
 * arguments).
 */
SHMPIPE_API ssize_t shmpipe_peek(shmpipe_reader *r, const void **buf);

/*
 * shmpipe_consume - release the first len bytes that shmpipe_peek showed.
 *
 * The writer may reuse their space at once; the pointer from peek is then no
 * longer valid. In record mode len must be the record's length (the whole
 * record is released) or 0 (nothing is). Returns 0, or -EINVAL if len
 * exceeds what the last peek returned (nothing is released) or for a NULL
 * handle.
 */
SHMPIPE_API int shmpipe_consume(shmpipe_reader *r, size_t len);

/*
 * shmpipe_peek_next - look at the record after those already shown (record
 * mode), without releasing any.
 *
 * After shmpipe_peek showed the first record, each call shows the next one
 * in place: *buf is its payload, the return its length. So a reader may
 * hold several records in the ring at once (a forwarder that releases each
 * only once its copy elsewhere is acknowledged). shmpipe_consume still
 * releases the first record shown, which then moves on to the next; the
 * others stay shown, and their pointers stay valid until they are consumed.
 * With nothing shown it is shmpipe_peek. It never waits: -EAGAIN if no
 * record after those shown has been written yet, which is also what it
 * returns when the stream has ended after them (consume them, and
 * shmpipe_peek tells the end). shmpipe_peek and shmpipe_read start again
 * from the first record. Returns the length, or -EAGAIN, -EPROTO, or
 * -EINVAL for NULL arguments, a stream-mode or SHMPIPE_SHARE pipe.
 */
SHMPIPE_API ssize_t shmpipe_peek_next(shmpipe_reader *r, const void **buf);

/*
 * shmpipe_reader_close - close the read end; frees the handle.
 *
 * A writer asleep on a full ring is woken and gets -EPIPE (or the count it
 * had written), as does every later write. Unread data is discarded. After
 * the call r is no longer valid. Returns 0, or -EINVAL for a NULL handle.
 */
SHMPIPE_API int shmpipe_reader_close(shmpipe_reader *r);

/*
 * C streams and file descriptors.
 *
 * shmpipe_writer_fopen - a stdio stream on the write end (stream mode only).
 * Everything written with fprintf, fwrite, fputs ... goes into the pipe,
 * buffered by stdio as usual (fflush pushes it in); fclose ends the stream
 * and closes the writer. On success *fp owns w: close the pipe with fclose,
 * not shmpipe_writer_close. Returns 0, -EINVAL (NULL arguments, record mode)
 * or -ENOMEM. A write error (e.g. EPIPE) shows as ferror and errno.
 *
 * shmpipe_reader_fopen - the same on the read end, for fread, fgets, getline;
 * fclose closes the reader.
 */
SHMPIPE_API int shmpipe_writer_fopen(shmpipe_writer *w, FILE **fp);
SHMPIPE_API int shmpipe_reader_fopen(shmpipe_reader *r, FILE **fp);

/*
 * shmpipe_write_from_fd - fill the pipe from a file descriptor (write end).
 *
 * Calls read(2) on fd straight into reserved space of the ring, with no
 * buffer in between, and commits what each read returned, until end of file
 * or max bytes (0: no limit; in record mode the last record may go past
 * max, since a record is never cut). In record mode each read becomes one record,
 * which suits datagram and SOCK_SEQPACKET sockets: each read is offered room
 * for 64 KiB (or the ring's largest record, if smaller), so datagrams up to
 * that size arrive whole. Returns the bytes moved;
 * if it stops early on an error it returns the bytes moved so far, or the
 * error if none: -errno of read(2), or the errors of shmpipe_reserve. It
 * does not close either end.
 */
SHMPIPE_API ssize_t shmpipe_write_from_fd(shmpipe_writer *w, int fd, size_t max);

/*
 * shmpipe_read_to_fd - drain the pipe into a file descriptor (read end).
 *
 * Calls write(2) on fd straight from the ring (peek, write, consume), until
 * end of stream or max bytes (0: no limit). Only what write(2) accepted is
 * consumed, so nothing is lost on an error. In record mode each record is
 * written with one write(2) where fd accepts it whole (a stream fd that takes
 * part of a record and then fails leaves the whole record in the ring, so a
 * retry writes that part again), and a record that
 * would take it past max stays in the ring (-EMSGSIZE if it is the first).
 * Returns the bytes moved, or -errno of write(2) or the errors of
 * shmpipe_peek if none were.
 */
SHMPIPE_API ssize_t shmpipe_read_to_fd(shmpipe_reader *r, int fd, size_t max);

/*
 * How long blocking calls on this end may wait, in milliseconds, as poll(2)
 * counts: -1 = forever (the default), 0 = never (the call returns -EAGAIN
 * instead of sleeping), > 0 = at most that long (-ETIMEDOUT). The limit is
 * for each call, counted from the moment it first has to wait (before that
 * it only copies). Any other negative value gives -EINVAL. Returns 0.
 */
SHMPIPE_API int shmpipe_writer_set_timeout(shmpipe_writer *w, int timeout_ms);
SHMPIPE_API int shmpipe_reader_set_timeout(shmpipe_reader *r, int timeout_ms);

/*
 * How long a call on this end that has to wait keeps looking (spinning on
 * the shared positions) before it sleeps in the kernel, in microseconds:
 * -1 = the default (30), 0 = sleep at once, up to SHMPIPE_SPIN_MAX_US. A
 * longer spin answers a peer that is about to act faster and without system
 * calls, at the price of CPU while the peer is slow; 0 is for cores that are
 * scarce. Other values give -EINVAL. Returns 0.
 */
#define SHMPIPE_SPIN_MAX_US 1000000
SHMPIPE_API int shmpipe_writer_set_spin(shmpipe_writer *w, int spin_us);
SHMPIPE_API int shmpipe_reader_set_spin(shmpipe_reader *r, int spin_us);

/*
 * shmpipe_writer_interrupt / shmpipe_reader_interrupt - wake the call that
 * sleeps on this end, from another thread, as a signal would.
 *
 * The one call of this end's that is asleep (or spinning before it sleeps)
 * returns as if interrupted by a signal without SA_RESTART: the count it
 * had transferred, or -EINTR. If no call is waiting, the next call that
 * would sleep returns so instead (one interrupt, one return); calls that do
 * not have to wait are not affected. This is how an event loop's thread
 * gets a worker thread out of a blocking call on an end it is about to
 * close: interrupt, wait for the call to return, then close.
 *
 * The only function that may be called on an end while another thread is
 * inside a call on it. It must not race with closing the end. It writes a
 * byte into the end's doorbell through a descriptor it opens for the
 * purpose from /proc/self/fd (three system calls). Returns 0, -EINVAL for
 * NULL, -EOPNOTSUPP if /proc is not mounted, or -errno if the doorbell
 * could not be written: a waiting call then takes the interrupt only when
 * it next wakes.
 */
SHMPIPE_API int shmpipe_writer_interrupt(shmpipe_writer *w);
SHMPIPE_API int shmpipe_reader_interrupt(shmpipe_reader *r);

/*
 * shmpipe_reader_pollfd / shmpipe_writer_pollfd - a descriptor for an event
 * loop (poll, select, epoll, libuv's uv_poll_t, io_uring's poll).
 *
 * The usage is the non-blocking one of any socket: set the end's timeout to
 * 0, call; on -EAGAIN wait until this descriptor polls readable (POLLIN,
 * EPOLLIN), then call again. It turns readable when a call that returned
 * -EAGAIN may now make progress: for a reader, data, end of stream, or the
 * writer gone (closed, aborted or died); for a writer, room for what it last
 * asked for (one byte for a stream write, the framed size of a record), or
 * the reader gone. A peer process that dies makes it readable at once.
 * Level-triggered, it stays readable while a call could make progress: it
 * goes quiet only when a call finds it cannot, which that call reports with
 * -EAGAIN, or, as a non-blocking write(2) to a full pipe does, with a short
 * count (the ring filled). So one call per event never stalls. Edge-
 * triggered (EPOLLET), each such call re-arms it, so calling until -EAGAIN
 * (or a write's short count) never misses an event; a read's short count
 * is no such call. A new end's
 * descriptor starts readable, so a loop may wait before its first call.
 * Spurious readiness is possible (a call then returns -EAGAIN); no event is
 * ever lost. The descriptor serves calls made with timeout 0; a blocking
 * call on the same end may take a readiness meant for the loop.
 *
 * The descriptor belongs to the handle: do not read, write or close it. It
 * stays the same for the handle's life and is closed by the end's close or
 * abort (remove it from an epoll set first). Costs nothing while nobody
 * waits. Returns the descriptor, or -EINVAL for NULL.
 */
SHMPIPE_API int shmpipe_reader_pollfd(shmpipe_reader *r);
SHMPIPE_API int shmpipe_writer_pollfd(shmpipe_writer *w);

/*
 * shmpipe_writer_abort - close the write end as failed.
 *
 * As shmpipe_writer_close, except that the reader, after reading every byte
 * committed before the abort, gets -ECONNRESET instead of end of stream
 * (never 0), as if the writer had died. For a producer that fails half way
 * (an error, an exception, a thread or worker torn down). Frees the handle;
 * returns 0, or -EINVAL for NULL.
 */
SHMPIPE_API int shmpipe_writer_abort(shmpipe_writer *w);

/*
 * shmpipe_writer_options / shmpipe_reader_options - what the pipe is, as its
 * creator made it: *out gets its capacity, its flags (SHMPIPE_RECORDS,
 * SHMPIPE_SHARE), its readers (0 for a pipe of one reader) and, for a
 * named pipe, its permission bits (0 for an anonymous one, or one whose
 * name was removed). An end
 * that opened a pipe takes its mode from here, not from what the opener
 * assumed. Values checked at attach, never read again from shared memory.
 * Returns 0, or -EINVAL for NULL.
 */
SHMPIPE_API int shmpipe_writer_options(const shmpipe_writer *w, shmpipe_options *out);
SHMPIPE_API int shmpipe_reader_options(const shmpipe_reader *r, shmpipe_options *out);

/*
 * Stats: a consistent snapshot of the pipe's counters (see shmpipe_stats),
 * readable from either end at any time, from any thread: read_index <=
 * write_index <= read_index + capacity always holds in the snapshot.
 * Queue depth is write_index - read_index. Returns 0, or -EINVAL for NULL.
 */
SHMPIPE_API int shmpipe_writer_stats(const shmpipe_writer *w, shmpipe_stats *out);
SHMPIPE_API int shmpipe_reader_stats(const shmpipe_reader *r, shmpipe_stats *out);

/*
 * shmpipe_strerror - a static description of a return value: "Success" for
 * values >= 0, the errno text (strerror) for -errno values, "Unknown error"
 * for a value that is no errno, never NULL.
 * Thread-safe.
 */
SHMPIPE_API const char *shmpipe_strerror(int err);

/* shmpipe_version - the library's version as "MAJOR.MINOR.PATCH". */
SHMPIPE_API const char *shmpipe_version(void);

/*
 * The inline calls
 * ----------------
 * shmpipe_write and shmpipe_read are also function-like macros. Their common
 * case, a stream write that fits in the room this end already knows of and
 * a stream read of data already published, runs in the caller's code with
 * the protocol steps of the library's own calls, in the same order
 * (src/ring.c); every other case calls the library. What a call returns and
 * does is the same either way. &shmpipe_write and (shmpipe_write)(...) name
 * the library's function. Define SHMPIPE_NO_INLINE before including this
 * header to call the library always (the inline calls also need GCC or
 * Clang).
 *
 * They work on the first bytes of a handle, struct shmpipe__fast, and on
 * the words of the shared header at the offsets below (shared layout
 * version 2), which the library keeps: both are part of the ABI
 * (docs/abi.md), pinned by test/abi.c and src/layout.h, and not for callers
 * to read or write. avail, at offset 0, is the gate: while it is 0 every
 * call goes to the library. A release whose handle or shared layout no
 * longer matches these keeps offset 0 at zero, so that code inlined against
 * them still runs, through the library.
 */
struct shmpipe__fast {
	/*
	 * The gate. Writer: the bytes an inline write may put in the ring
	 * without asking the library (room known to be free, short of the
	 * end of the data region's first copy, at most a slice). Reader:
	 * the bytes known to be readable (peer - pos), which an inline read
	 * may take at once. 0 sends every call to the library, or for the
	 * reader to the look at the writer's position that limit allows.
	 */
	uint64_t avail;
	unsigned char *data;   /* the data region; a second copy follows it */
	uint64_t off;	       /* pos modulo data_size: where this end is in data */
	uint64_t capacity;     /* most bytes in the ring at once */
	uint64_t pos;	       /* this end's position: bytes written, or read */
	uint64_t data_size;    /* bytes of the data region */
	uint64_t peer;	       /* the peer's position as last read and checked */
	unsigned char *shared; /* the shared header */
	/* Reader: the longest inline read that may look at the writer's position; 0: none. */
	uint64_t limit;
	/*
	 * The order keeps the words a call updates apart, so that compilers
	 * do not pair them into one vector store.
	 */
};

#define SHMPIPE__FAST_WRITE_INDEX  128 /* uint64_t: the writer's position */
#define SHMPIPE__FAST_PRODUCED	   136 /* uint64_t: its count of writes */
#define SHMPIPE__FAST_READ_INDEX   256 /* uint64_t: the reader's position */
#define SHMPIPE__FAST_CONSUMED	   264 /* uint64_t: its count of reads */
#define SHMPIPE__FAST_WRITER_STATE 384 /* uint32_t: SHMPIPE__FAST_OPEN while held */
#define SHMPIPE__FAST_READER_STATE 388 /* uint32_t: likewise */
#define SHMPIPE__FAST_DATA_EVENT   512 /* uint32_t: the reader waits on it */
#define SHMPIPE__FAST_SPACE_EVENT  640 /* uint32_t: the writer waits on it */
#define SHMPIPE__FAST_OPEN	   1u
#define SHMPIPE__FAST_WAITER	   1u /* in an event word: its end waits */

/* For the inline calls only: wakes the peer, which waits on word. */
SHMPIPE_API void shmpipe__wake_peer(struct shmpipe__fast *f, uint32_t word);

#if defined(__GNUC__)
static inline uint64_t *shmpipe__fast_u64(unsigned char *shared, unsigned at)
{
	return (uint64_t *)(void *)(shared + at);
}

static inline uint32_t *shmpipe__fast_u32(unsigned char *shared, unsigned at)
{
	return (uint32_t *)(void *)(shared + at);
}

/*
 * Copies n bytes, inline when n is small (one int, one small struct) but not
 * known when compiling: a call into the C library's memcpy for 4 bytes
 * costs more than the rest of the call. ring.c's copy() uses it too.
 */
static inline void shmpipe__fast_copy(void *dst, const void *src, size_t n)
{
	unsigned char *d = (unsigned char *)dst;
	const unsigned char *s = (const unsigned char *)src;

	if (__builtin_constant_p(n) || n > 16) {
		__builtin_memcpy(d, s, n);
	} else if (n >= 8) {
		uint64_t a, b;

		__builtin_memcpy(&a, s, 8);
		__builtin_memcpy(&b, s + n - 8, 8);
		__builtin_memcpy(d, &a, 8);
		__builtin_memcpy(d + n - 8, &b, 8);
	} else if (n >= 4) {
		uint32_t a, b;

		__builtin_memcpy(&a, s, 4);
		__builtin_memcpy(&b, s + n - 4, 4);
		__builtin_memcpy(d, &a, 4);
		__builtin_memcpy(d + n - 4, &b, 4);
	} else {
		for (size_t i = 0; i < n; i++)
			d[i] = s[i];
	}
}

#endif /* __GNUC__ */

#if !defined(SHMPIPE_NO_INLINE) && defined(__GNUC__)
/*
 * Publishes this end's new position pos (at index) and one more operation
 * (at count), then wakes the peer if it waits on event: what writer_publish
 * and reader_release of ring.c do on the fenceless path, the only one the
 * inline calls take (the gate stays shut while the peer has not promised
 * its barrier). The position goes out with release, so that the bytes
 * before it are in (or out) first; the count after it; the look at the
 * peer's word after both, kept there by the compiler (the peer's barrier
 * orders the processor: docs/design.md).
 */
static inline void shmpipe__fast_publish(struct shmpipe__fast *f, unsigned char *shared,
					 unsigned index, unsigned count, unsigned event,
					 uint64_t pos)
{
	uint64_t *ops = shmpipe__fast_u64(shared, count);
	uint32_t word;

	f->pos = pos;
	__atomic_store_n(shmpipe__fast_u64(shared, index), pos, __ATOMIC_RELEASE);
	/* Only this end writes its count. */
	__atomic_store_n(ops, __atomic_load_n(ops, __ATOMIC_RELAXED) + 1, __ATOMIC_RELEASE);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	word = __atomic_load_n(shmpipe__fast_u32(shared, event), __ATOMIC_RELAXED);
	if (__builtin_expect(word & SHMPIPE__FAST_WAITER, 0))
		shmpipe__wake_peer(f, word);
}

/*
 * Whether a write may go on, as write_refused in ring.c says: the reader has
 * not closed (acquire: pairs with its store of the state), and our own end
 * was not closed by a copy of the handle in another process.
 */
static inline int shmpipe__fast_writable(unsigned char *shared)
{
	return __atomic_load_n(shmpipe__fast_u32(shared, SHMPIPE__FAST_READER_STATE),
			       __ATOMIC_ACQUIRE) == SHMPIPE__FAST_OPEN &&
	       __atomic_load_n(shmpipe__fast_u32(shared, SHMPIPE__FAST_WRITER_STATE),
			       __ATOMIC_RELAXED) == SHMPIPE__FAST_OPEN;
}

static inline ssize_t shmpipe__write_inline(shmpipe_writer *w, const void *buf, size_t len)
{
	struct shmpipe__fast *f = (struct shmpipe__fast *)(void *)w;
	unsigned char *shared;
	uint64_t off, pos;

	if (__builtin_expect(!w || !buf || !len || len > f->avail, 0))
		return (shmpipe_write)(w, buf, len);
	shared = f->shared;
	off = f->off;
	pos = f->pos;
	if (__builtin_expect(!shmpipe__fast_writable(shared), 0))
		return (shmpipe_write)(w, buf, len);
	shmpipe__fast_copy(f->data + off, buf, len);
	f->off = off + len; /* avail stops short of the end of the first copy: no wrap */
	f->avail -= len;
	shmpipe__fast_publish(f, shared, SHMPIPE__FAST_WRITE_INDEX, SHMPIPE__FAST_PRODUCED,
			      SHMPIPE__FAST_DATA_EVENT, pos + len);
	return (ssize_t)len;
}

static inline ssize_t shmpipe__read_inline(shmpipe_reader *r, void *buf, size_t len)
{
	struct shmpipe__fast *f = (struct shmpipe__fast *)(void *)r;
	uint64_t avail, off, pos;

	if (__builtin_expect(!r || !buf, 0))
		return (shmpipe_read)(r, buf, len);
	avail = f->avail;
	pos = f->pos;
	if (!len || len > avail) {
		uint64_t w;

		if (__builtin_expect(!len || len > f->limit, 0))
			return (shmpipe_read)(r, buf, len);
		/* Pairs with the writer's release of its position. */
		w = __atomic_load_n(shmpipe__fast_u64(f->shared, SHMPIPE__FAST_WRITE_INDEX),
				    __ATOMIC_ACQUIRE);
		/* From shared memory: checked before use, as reader_refresh does. */
		avail = w - pos;
		if (avail < len || avail > f->capacity)
			return (shmpipe_read)(r, buf, len);
		f->peer = w;
	}
	off = f->off;
	/* A read that reaches the end of the first copy wraps: the library's. */
	if (__builtin_expect(off + len >= f->data_size, 0))
		return (shmpipe_read)(r, buf, len);
	shmpipe__fast_copy(buf, f->data + off, len);
	f->off = off + len;
	f->avail = avail - len;
	shmpipe__fast_publish(f, f->shared, SHMPIPE__FAST_READ_INDEX, SHMPIPE__FAST_CONSUMED,
			      SHMPIPE__FAST_SPACE_EVENT, pos + len);
	return (ssize_t)len;
}

#define shmpipe_write(w, buf, len) shmpipe__write_inline((w), (buf), (len))
#define shmpipe_read(r, buf, len)  shmpipe__read_inline((r), (buf), (len))
#endif /* !SHMPIPE_NO_INLINE && __GNUC__ */

#ifdef __cplusplus
}
#endif

#endif /* SHMPIPE_H */
