/*
 * shmpipe: a pipe in shared memory, with hard backpressure.
 *
 * The model
 * ---------
 * A shmpipe is pipe(2) without the kernel in the data path. A producer writes
 * a stream of bytes into a bounded ring buffer that lives in shared memory;
 * one consumer, in another thread (or, later, another process), reads it.
 *
 * Memory is strictly bounded. The ring never holds more than `capacity`
 * bytes, exactly as asked. When it is full the writer sleeps in the kernel
 * (a futex) until the reader frees space; when it is empty the reader sleeps
 * until data arrives. Each side wakes the other only when the other is
 * actually asleep, so a transfer in which both sides keep up makes no system
 * call at all.
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
 * installed with SA_RESTART lets an untimed call (timeout -1) go on instead.
 * A call with a positive timeout is never restarted (nor is poll(2)), so it
 * returns the count or -EINTR whatever the handler's flags.
 */
#ifndef SHMPIPE_H
#define SHMPIPE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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

/* shmpipe_options.flags */
#define SHMPIPE_RECORDS 0x1u /* each write is one record, read back whole */

typedef struct shmpipe_writer shmpipe_writer; /* the write end */
typedef struct shmpipe_reader shmpipe_reader; /* the read end  */

typedef struct shmpipe_options {
	size_t capacity; /* most bytes in the ring at once, exact; 0 = 1 MiB (memory is mapped in pages) */
	unsigned flags;  /* SHMPIPE_RECORDS: each write is one record, read back whole */
	unsigned mode;   /* permission bits of a named pipe; 0 = 0600 */
} shmpipe_options;

typedef struct shmpipe_stats {
	uint64_t capacity;       /* most bytes in the ring at once, as asked */
	uint64_t write_index;    /* bytes committed since creation (seed: writeIndex) */
	uint64_t read_index;     /* bytes consumed since creation (seed: readIndex) */
	uint64_t produced;       /* writes / records committed   (seed: producedCount) */
	uint64_t consumed;       /* reads / records consumed     (seed: consumedCount) */
	uint64_t producer_waits; /* times the writer had to sleep (seed: producerWaits) */
	uint64_t consumer_waits; /* times the reader had to sleep (seed: consumerWaits) */
} shmpipe_stats;

/*
 * shmpipe_pair - create an anonymous pipe and take both of its ends.
 *
 * Like pipe(2): on success *w is the write end and *r the read end, to be
 * used by two threads of this process. The ring lives in a memfd, so the same
 * pipe also survives fork(2). opts may be NULL (a 1 MiB byte stream).
 *
 * Returns 0, or -EINVAL (NULL handle pointers, capacity above
 * SHMPIPE_MAX_CAPACITY, unknown flags, record mode before it is supported),
 * -ENOMEM or -EMFILE when the system cannot provide the memory or the
 * descriptor. On failure *w and *r are left untouched and nothing leaks.
 * The ring's memory is released when both ends are closed.
 */
SHMPIPE_API int shmpipe_pair(shmpipe_writer **w, shmpipe_reader **r, const shmpipe_options *opts);

/*
 * shmpipe_write - write len bytes into the pipe (write end, blocking).
 *
 * Copies buf into the ring and returns only once all len bytes are in it,
 * sleeping while the ring is full. Returns len on success. If the reader goes
 * away, the end's timeout expires, or a signal arrives after part of the data
 * is in the ring, returns the count already written; the next call reports
 * the condition. Returns -EPIPE once the reader has closed (even if it closed
 * while we slept), -EAGAIN (timeout 0) or -ETIMEDOUT (timeout > 0) if no byte
 * could be written in time, -EINTR if a signal arrived before any byte was
 * written, -EINVAL for a NULL handle or a NULL buf with len > 0. A write of 0
 * bytes returns 0 and does nothing. Never raises SIGPIPE.
 */
SHMPIPE_API ssize_t shmpipe_write(shmpipe_writer *w, const void *buf, size_t len);

/*
 * shmpipe_writer_close - end of stream; frees the handle.
 *
 * Everything already written stays readable; once the reader has drained it,
 * its reads return 0. A reader asleep on an empty ring is woken. After the
 * call w is no longer valid. Returns 0, or -EINVAL for a NULL handle.
 */
SHMPIPE_API int shmpipe_writer_close(shmpipe_writer *w);

/*
 * shmpipe_read - read up to len bytes from the pipe (read end, blocking).
 *
 * Sleeps while the ring is empty, then copies whatever is there, up to len
 * bytes, and returns the count (like read(2) on a pipe, it does not wait to
 * fill buf). Returns 0 at end of stream: the writer closed and every byte it
 * wrote has been read. Returns -EAGAIN (timeout 0) or -ETIMEDOUT (timeout > 0)
 * if no data came in time, -EINTR if a signal arrived while it slept,
 * -EPROTO if the shared positions are inconsistent, -EINVAL for a NULL handle
 * or a NULL buf with len > 0. A read of 0 bytes returns 0 at once.
 */
SHMPIPE_API ssize_t shmpipe_read(shmpipe_reader *r, void *buf, size_t len);

/*
 * shmpipe_reader_close - close the read end; frees the handle.
 *
 * A writer asleep on a full ring is woken and gets -EPIPE (or the count it
 * had written), as does every later write. Unread data is discarded. After
 * the call r is no longer valid. Returns 0, or -EINVAL for a NULL handle.
 */
SHMPIPE_API int shmpipe_reader_close(shmpipe_reader *r);

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
 * Stats: a consistent snapshot of the pipe's counters (see shmpipe_stats),
 * readable from either end at any time, from any thread: read_index <=
 * write_index <= read_index + capacity always holds in the snapshot.
 * Queue depth is write_index - read_index. Returns 0, or -EINVAL for NULL.
 */
SHMPIPE_API int shmpipe_writer_stats(const shmpipe_writer *w, shmpipe_stats *out);
SHMPIPE_API int shmpipe_reader_stats(const shmpipe_reader *r, shmpipe_stats *out);

/*
 * shmpipe_strerror - a static description of a return value: "Success" for
 * values >= 0, the errno text (strerror) for -errno values, never NULL.
 * Thread-safe.
 */
SHMPIPE_API const char *shmpipe_strerror(int err);

/* shmpipe_version - the library's version as "MAJOR.MINOR.PATCH". */
SHMPIPE_API const char *shmpipe_version(void);

#ifdef __cplusplus
}
#endif

#endif /* SHMPIPE_H */
