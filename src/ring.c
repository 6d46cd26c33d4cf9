/* SPDX-License-Identifier: MIT */
/*
 * The hot path. A byte goes from the caller's buffer into the ring with one
 * memcpy in shmpipe_write (or is put there directly by the caller between
 * shmpipe_reserve and shmpipe_commit), is published by a store of
 * write_index, and leaves the ring with one memcpy in shmpipe_read (or is
 * used in place between shmpipe_peek and shmpipe_consume), which publishes
 * read_index in turn. Because the data region is mapped twice back to back,
 * a span that crosses the end of the region is still contiguous: each copy
 * is a single memcpy and every span handed out is one pointer.
 *
 * Each end keeps its own position in private memory and caches the peer's;
 * it reads the peer's shared position only when the ring looks full (writer)
 * or empty (reader), and checks it before using it. Record lengths read from
 * the ring are checked against what was published before they are used.
 *
 * The common case of shmpipe_write and shmpipe_read also runs in the
 * caller's code: shmpipe.h's inline calls take these same steps on the
 * first fields of the handle, inside a window (f.avail) that the functions
 * here open (writer_arm, reader_arm), shrink as they move a position
 * (advance) and shut while anything but a plain stream call could follow.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include "internal.h"

static inline uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/*
 * The block size of copy()'s split copies (see there), which only x86-64
 * needs: the slow case is glibc's rep movsb there.
 */
#define SHMPIPE__SPLIT_COPY 1024
#if defined(__x86_64__)
#define SHMPIPE__SPLIT_ALIASED 1
#else
#define SHMPIPE__SPLIT_ALIASED 0
#endif

/*
 * Copies n bytes into or out of the ring. Small copies, one int or one small
 * struct per call, are done inline as the inline calls of shmpipe.h do them
 * (two overlapping loads and stores), which costs less than the call into
 * the C library's memcpy and its size dispatch; everything else goes to
 * memcpy.
 */
static inline void copy(void *restrict dst, const void *restrict src, size_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;

	if (n <= 16) {
		shmpipe__fast_copy(d, s, n);
	} else if (SHMPIPE__SPLIT_ALIASED && n >= SHMPIPE__SPLIT_COPY &&
		   (((uintptr_t)d - (uintptr_t)s) & 4095) - 1 < 63) {
		/*
		 * The destination lies 1 to 63 bytes past the source, modulo
		 * a page. x86-64 glibc copies large blocks with rep movsb,
		 * which on some processors then runs 20 to 30 times slower
		 * (measured here for 1 to 31 bytes: 2 GB/s instead of 40-90; a
		 * reader's malloc'd buffer at 16 mod 64 reading from the ring
		 * at 0 hits it; docs/benchmarks.md). Blocks of 1 KiB stay below
		 * rep movsb's threshold and take glibc's vector loop, which
		 * does not care.
		 */
		for (size_t i = 0; i < n; i += SHMPIPE__SPLIT_COPY)
			memcpy(d + i, s + i,
			       n - i < SHMPIPE__SPLIT_COPY ? n - i : SHMPIPE__SPLIT_COPY);
	} else {
		memcpy(d, s, n);
	}
}

/*
 * Advances a position and its offset in the data region by n <= data_size.
 * The inline calls' window (f.avail, shmpipe.h) shrinks by as much, which
 * keeps what it promises: the writer's room and distance to the end of the
 * first copy, and the reader's data, each shrink by n (a window that
 * reached past the end is at most n, so it closes before the offset wraps).
 */
static inline void advance(struct shmpipe__end *e, uint64_t n)
{
	e->f.avail = e->f.avail > n ? e->f.avail - n : 0;
	e->f.pos += n;
	e->f.off += n;
	if (e->f.off >= e->f.data_size)
		e->f.off -= e->f.data_size;
}

/* The largest record payload this ring can ever hold. */
static inline uint64_t record_max(const struct shmpipe__end *e)
{
	return SHMPIPE_RECORD_MAX(e->f.capacity) - (e->frame - sizeof(struct shmpipe__record));
}

/* The bytes of the ring a record of len bytes takes: its frame, its padded payload. */
static inline uint64_t record_space(const struct shmpipe__end *e, uint64_t len)
{
	return shmpipe__record_space(len) + (e->frame - sizeof(struct shmpipe__record));
}

/* ---- the write end --------------------------------------------------- */

static int writer_refresh(struct shmpipe__end *e);

/*
 * Opens the inline write's window (f.avail, shmpipe.h) after a library call,
 * if it is shut:
 * the room known to be free, looked up again when less than half the ring
 * is, but short of the end of the data region's first copy, so that an
 * inline write never wraps its offset, and at most a slice. Shut in
 * record mode, while a reservation is out (only the library ends it), and
 * while the reader has not promised its barrier: the inline calls publish
 * on the fenceless path only. A blocking end promises its own here, so
 * that its peer's inline calls may open too.
 */
static __attribute__((noinline)) void writer_open(struct shmpipe__end *e)
{
	uint64_t room;

	if (e->records || e->lent || !shmpipe__update_fenceless(e))
		return;
	room = e->f.capacity - (e->f.pos - e->f.peer);
	if (room < e->f.capacity / 2) {
		if (writer_refresh(e) < 0)
			return;
		room = e->f.capacity - (e->f.pos - e->f.peer);
	}
	/* Short of the end, so that an inline write leaves off below data_size. */
	e->f.avail = min_u64(min_u64(room, e->f.data_size - 1 - e->f.off), e->slice);
}

static inline void writer_arm(struct shmpipe__end *e)
{
	shmpipe__promise_barrier(e);
	if (!e->f.avail)
		writer_open(e);
}

/*
 * Reads the reader's position and checks it: never behind what we already
 * know of it, never ahead of our own position. Pairs with the store_sc of
 * read_index in reader_release: once we see the new position, the reader is
 * done with the bytes before it and we may overwrite them.
 */
static int writer_refresh(struct shmpipe__end *e)
{
	if (e->fan)
		return shmpipe__fan_refresh(e);
	uint64_t r = shmpipe__load_acquire(&e->hdr->read_index);

	if (r < e->f.peer || r > e->f.pos)
		return -EPROTO;
	e->f.peer = r;
	return 0;
}

/* The writer may go on: there is the room it wants, or the reader is gone. */
static bool space_or_gone(const struct shmpipe__end *e)
{
	if (e->fan)
		return shmpipe__fan_space(e);
	/* seq_cst loads: the waiter's side of the store-buffering pair. */
	return e->f.capacity - (e->f.pos - shmpipe__load_sc(&e->hdr->read_index)) >= e->want ||
	       shmpipe__load32_sc(&e->hdr->reader_state) == SHMPIPE__END_CLOSED;
}

static bool reader_gone(const struct shmpipe__end *e)
{
	if (e->fan)
		return shmpipe__fan_gone(e);
	/* Pairs with the store_sc of reader_state in shmpipe_reader_close. */
	return shmpipe__load32_acquire(&e->hdr->reader_state) == SHMPIPE__END_CLOSED;
}

/*
 * Whether a write may begin: -EPIPE once the reader has closed, and -EBADF
 * once our own end is closed by another process that holds a copy of this
 * handle (a fork): no byte may follow the end of stream it made. The two
 * states share a cache line, which the first load brings.
 */
/*
 * Broadcast: no reader left, after one came. The count costs one load; the
 * places confirm it (a count is only a word anyone with the object may
 * write). Out of line: one reader's pipe never calls it.
 */
static __attribute__((noinline)) bool fan_refused(const struct shmpipe__end *e)
{
	return shmpipe__fan_left(e) && shmpipe__fan_gone(e);
}

static inline __attribute__((always_inline)) int write_refused(const struct shmpipe__end *e)
{
	uint32_t own;

	if (shmpipe__load32_acquire(&e->hdr->reader_state) == SHMPIPE__END_CLOSED)
		return -EPIPE;
	if (e->fan && fan_refused(e))
		return -EPIPE;
	own = shmpipe__load32_relaxed(e->state);
	if (own != SHMPIPE__END_OPEN)
		return own == SHMPIPE__END_CLOSED || own == SHMPIPE__END_ABORTED ? -EBADF : -EPROTO;
	return 0;
}

/*
 * Waits until at least want bytes of the ring are free and returns how many
 * are, or -EPIPE, -EAGAIN, -ETIMEDOUT, -EINTR, -EPROTO. want <= capacity.
 */
static int64_t writer_room(struct shmpipe__end *e, uint64_t want, struct shmpipe__deadline *dl)
{
	for (;;) {
		uint64_t room = e->f.capacity - (e->f.pos - e->f.peer);
		int err;

		if (room >= want)
			return (int64_t)room;
		err = writer_refresh(e);
		if (err < 0)
			return err;
		room = e->f.capacity - (e->f.pos - e->f.peer);
		if (room >= want)
			return (int64_t)room;
		e->want = want;
		err = shmpipe__wait(e, space_or_gone, &e->hdr->producer_waits, dl);
		/* A reader that closed, or died: nobody will ever read. */
		if ((err == 0 && reader_gone(e)) || err == -ECONNRESET)
			err = -EPIPE;
		if (err < 0)
			return err;
	}
}

/*
 * Publishes n more bytes of the ring, which the caller has filled at the
 * writer's offset, as ops more writes or records.
 */
static inline __attribute__((always_inline)) void writer_publish(struct shmpipe__end *e, uint64_t n,
								 uint64_t ops)
{
	advance(e, n);
	/*
	 * Counted after the bytes are published (shmpipe__publish stores
	 * write_index with release, and this store comes after it), so that a
	 * stats snapshot that acquires produced first never counts a write
	 * whose bytes it cannot see (pairs with the load in snapshot()). The
	 * count goes out before the wake-up: a woken reader sees it.
	 */
	shmpipe__publish(e, &e->hdr->write_index);
	if (ops) {
		/* Only this end writes it; so do the inline calls (shmpipe.h). */
		shmpipe__store_release(&e->hdr->produced,
				       shmpipe__load_relaxed(&e->hdr->produced) + ops);
	}
	shmpipe__signal_peer(e, &e->hdr->data_event);
}

/*
 * Writes a record's frame at offset off of the ring; the payload follows it.
 * A shared pipe's frame also numbers the record: every frame written is
 * published (a record copied in goes out before any wait or error).
 */
static void record_frame(struct shmpipe__end *e, uint64_t off, uint64_t len)
{
	struct shmpipe__share_record rec = {.len = len, .seq = e->seq};

	if (e->share)
		e->seq++;
	memcpy(e->f.data + off, &rec, e->frame);
}

/* Copies one record in at offset off. The caller has checked the room. */
static void record_put(struct shmpipe__end *e, uint64_t off, const void *buf, uint64_t len)
{
	record_frame(e, off, len);
	copy(e->f.data + off + e->frame, buf, len);
}

static __attribute__((noinline)) ssize_t write_record(struct shmpipe__end *e, const void *buf,
						      size_t len)
{
	struct shmpipe__deadline dl = {0};
	uint64_t need = record_space(e, len);
	int64_t room;

	if (len > record_max(e))
		return -EMSGSIZE;
	room = writer_room(e, need, &dl);
	if (room < 0)
		return room;
	record_put(e, e->f.off, buf, len);
	writer_publish(e, need, 1);
	return (ssize_t)len;
}

/*
 * A stream write that does not fit in the room already known: waits for
 * room, slice by slice. Out of line, so that the common case in
 * shmpipe_write needs no stack frame and saves no registers.
 */
static __attribute__((noinline)) ssize_t write_waiting(struct shmpipe__end *e, const void *buf,
						       size_t len)
{
	struct shmpipe__deadline dl = {0};
	size_t done = 0;

	while (done < len) {
		int64_t room = writer_room(e, 1, &dl);
		uint64_t n;

		if (room < 0)
			return done ? (ssize_t)done : room;
		n = min_u64(min_u64((uint64_t)room, len - done), e->slice);
		copy(e->f.data + e->f.off, (const uint8_t *)buf + done, n);
		/* Counted once per call that puts bytes in the ring. */
		writer_publish(e, n, done == 0);
		done += n;
	}
	return (ssize_t)done;
}

ssize_t(shmpipe_write)(shmpipe_writer *w, const void *buf, size_t len)
{
	struct shmpipe__end *e;

	if (!w || (!buf && len))
		return -EINVAL;
	if (len == 0)
		return 0;
	if (len > SSIZE_MAX)
		return -EINVAL; /* the count could not be returned */
	e = &w->e;
	int refused = write_refused(e);

	if (refused < 0)
		return refused;
	e->lent = 0; /* a write ends any reservation */
	if (e->records)
		return write_record(e, buf, len);

	/* The common case: all of it fits in the room already known. */
	if (len <= e->f.capacity - (e->f.pos - e->f.peer) && len <= e->slice) {
		copy(e->f.data + e->f.off, buf, len);
		writer_publish(e, len, 1);
		writer_arm(e);
		return (ssize_t)len;
	}
	ssize_t done = write_waiting(e, buf, len);

	if (done > 0)
		writer_arm(e);
	return done;
}

/* Checks an iovec array and sums it; -EINVAL if it is not usable. */
static int64_t iov_total(const struct iovec *iov, int iovcnt)
{
	uint64_t total = 0;

	if (iovcnt < 0 || iovcnt > IOV_MAX || (!iov && iovcnt))
		return -EINVAL;
	for (int i = 0; i < iovcnt; i++) {
		if (!iov[i].iov_base && iov[i].iov_len)
			return -EINVAL;
		/* Checked before adding: the sum must not wrap. */
		if (iov[i].iov_len > SSIZE_MAX - total)
			return -EINVAL;
		total += iov[i].iov_len;
	}
	return (int64_t)total;
}

/*
 * Record mode: as many whole records as fit are copied in and published
 * together; the writer waits only when the next record does not fit.
 */
static ssize_t writev_records(struct shmpipe__end *e, const struct iovec *iov, int iovcnt)
{
	struct shmpipe__deadline dl = {0};
	uint64_t done = 0, pending = 0, records = 0;

	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > record_max(e))
			return -EMSGSIZE;
	}
	for (int i = 0; i < iovcnt; i++) {
		uint64_t len = iov[i].iov_len;
		uint64_t need = record_space(e, len);

		if (len == 0)
			continue;
		if (e->f.capacity - (e->f.pos + pending - e->f.peer) < need) {
			int64_t err = writer_refresh(e);

			/*
			 * Still no room, or a bad position: publish what is
			 * copied before any wait or error, since the count
			 * returned must be of records the reader can get.
			 */
			if (err < 0 || e->f.capacity - (e->f.pos + pending - e->f.peer) < need) {
				if (pending) {
					writer_publish(e, pending, records);
					pending = records = 0;
				}
				if (err == 0)
					err = writer_room(e, need, &dl);
				if (err < 0)
					return done ? (ssize_t)done : err;
			}
		}
		/* The record goes after the ones copied but not yet published. */
		uint64_t off = e->f.off + pending;

		if (off >= e->f.data_size)
			off -= e->f.data_size;
		record_put(e, off, iov[i].iov_base, len);
		pending += need;
		records++;
		done += len;
	}
	if (pending)
		writer_publish(e, pending, records);
	return (ssize_t)done;
}

ssize_t shmpipe_writev(shmpipe_writer *w, const struct iovec *iov, int iovcnt)
{
	struct shmpipe__deadline dl = {0};
	struct shmpipe__end *e;
	int64_t total = iov_total(iov, iovcnt);
	uint64_t done = 0;
	int i = 0;
	size_t in = 0; /* bytes of iov[i] already copied */

	if (!w || total < 0)
		return -EINVAL;
	if (total == 0)
		return 0;
	e = &w->e;
	int refused = write_refused(e);

	if (refused < 0)
		return refused;
	e->lent = 0;
	if (e->records)
		return writev_records(e, iov, iovcnt);

	while (done < (uint64_t)total) {
		int64_t room = writer_room(e, 1, &dl);
		uint64_t n = 0;

		if (room < 0)
			return done ? (ssize_t)done : room;
		room = (int64_t)min_u64((uint64_t)room, e->slice);
		/* Gather into the room there is (a slice at most), then publish. */
		while (n < (uint64_t)room && i < iovcnt) {
			uint64_t k = min_u64(iov[i].iov_len - in, (uint64_t)room - n);

			if (k) /* an empty buffer may have a NULL base */
				memcpy(e->f.data + e->f.off + n,
				       (const uint8_t *)iov[i].iov_base + in, k);
			n += k;
			in += k;
			if (in == iov[i].iov_len) {
				i++;
				in = 0;
			}
		}
		writer_publish(e, n, done == 0);
		done += n;
	}
	return (ssize_t)done;
}

ssize_t shmpipe_reserve(shmpipe_writer *w, void **buf, size_t min_len)
{
	struct shmpipe__deadline dl = {0};
	struct shmpipe__end *e;
	uint64_t want, limit;
	int64_t room;

	if (!w || !buf)
		return -EINVAL;
	e = &w->e;
	limit = e->records ? record_max(e) : e->f.capacity;
	if (min_len > limit)
		return -EMSGSIZE;
	if (min_len == 0)
		min_len = 1;
	int refused = write_refused(e);

	if (refused < 0)
		return refused;
	e->lent = 0;
	want = e->records ? record_space(e, min_len) : min_len;
	/*
	 * Offer the room there is (a caller that reads into the ring fills
	 * what it is offered): look at read_index again when less than half
	 * of the ring is known to be free. Looking on every call would cost
	 * a transfer of the reader's cache line per reserve.
	 */
	if (e->f.capacity - (e->f.pos - e->f.peer) < e->f.capacity / 2) {
		int err = writer_refresh(e);

		if (err < 0)
			return err;
	}
	room = writer_room(e, want, &dl);
	if (room < 0)
		return room;
	if (e->records) {
		/* The largest payload whose framed size fits in the room. */
		room = (int64_t)min_u64(((uint64_t)room & ~(uint64_t)7) - e->frame, record_max(e));
		*buf = e->f.data + e->f.off + e->frame;
	} else {
		*buf = e->f.data + e->f.off;
	}
	room = (int64_t)min_u64((uint64_t)room, SSIZE_MAX);
	e->lent = (uint64_t)room;
	e->f.avail = 0; /* no inline write while the room is lent */
	return (ssize_t)room;
}

int shmpipe_commit(shmpipe_writer *w, size_t len)
{
	struct shmpipe__end *e;

	if (!w)
		return -EINVAL;
	e = &w->e;
	if (len > e->lent)
		return -EINVAL;
	e->lent = 0;
	if (len == 0)
		return 0;
	int refused = write_refused(e);

	if (refused < 0)
		return refused;
	if (e->records) {
		record_frame(e, e->f.off, len);
		writer_publish(e, record_space(e, len), 1);
	} else {
		writer_publish(e, len, 1);
	}
	return 0;
}

/* ---- the read end ---------------------------------------------------- */

/*
 * Opens the inline read's window after a library read, if it is shut: avail, the data
 * known to be there, may be read inline, and reads of up to a slice may
 * look at write_index for more (limit). Shut in record mode, after the end
 * of the stream, while a peek's data is lent, and while the writer has not
 * promised its barrier (see writer_arm).
 */
static __attribute__((noinline)) void reader_open(struct shmpipe__end *e)
{
	if (!e->records && !e->ended && !e->lent && !e->place && shmpipe__update_fenceless(e)) {
		e->f.avail = e->f.peer - e->f.pos;
		e->f.limit = e->slice;
	}
}

static inline void reader_arm(struct shmpipe__end *e)
{
	shmpipe__promise_barrier(e);
	if (!e->f.limit)
		reader_open(e);
}

/* Shuts the inline read's window: every read goes to the library. */
static void reader_shut(struct shmpipe__end *e)
{
	e->f.avail = 0;
	e->f.limit = 0;
}

/* Reads the writer's position and checks it (at most capacity ahead of us). */
static int reader_refresh(struct shmpipe__end *e)
{
	/* Pairs with the store_sc of write_index: the bytes before it are in. */
	uint64_t w = shmpipe__load_acquire(&e->hdr->write_index);

	if (w < e->f.peer || w - e->f.pos > e->f.capacity)
		return -EPROTO;
	e->f.peer = w;
	return 0;
}

/* The reader may go on: there is data, or the writer has closed. */
static bool data_or_eof(const struct shmpipe__end *e)
{
	uint32_t ws;

	if (shmpipe__load_sc(&e->hdr->write_index) != e->f.pos)
		return true;
	ws = shmpipe__load32_sc(&e->hdr->writer_state);
	return ws == SHMPIPE__END_CLOSED || ws == SHMPIPE__END_ABORTED;
}

/*
 * Waits until data is there and returns how many bytes are (> 0), 0 at end
 * of stream, or -EAGAIN, -ETIMEDOUT, -EINTR, -EPROTO. Like read(2) on a
 * pipe, a caller who asks for len bytes gets all that is there up to len:
 * if what we know of is less, look at write_index once more.
 */
static int64_t reader_avail(struct shmpipe__end *e, uint64_t len)
{
	struct shmpipe__deadline dl = {0};
	int err;

	/*
	 * End of stream is for good: a writer that a forked copy of its
	 * handle kept alive may publish after the close, and those bytes
	 * must not follow the end.
	 */
	if (e->ended)
		return 0;

	if (e->f.peer != e->f.pos && e->f.peer - e->f.pos < len) {
		err = reader_refresh(e);
		if (err < 0)
			return err;
	}
	while (e->f.peer == e->f.pos) {
		err = reader_refresh(e);
		if (err < 0)
			return err;
		if (e->f.peer != e->f.pos)
			break;
		/*
		 * End of stream: the writer closed after its last publish
		 * (store_sc of writer_state after that of write_index), so
		 * once we see it closed, one more look at write_index finds
		 * everything it ever wrote. A writer that aborted gets no end
		 * of stream: its reader learns of the failure once it has
		 * every committed byte. (A state no writer writes is no end:
		 * the reader waits, as for a writer that writes nothing.)
		 */
		uint32_t ws = shmpipe__load32_acquire(&e->hdr->writer_state);

		if (ws == SHMPIPE__END_CLOSED || ws == SHMPIPE__END_ABORTED) {
			err = reader_refresh(e);
			if (err < 0)
				return err;
			if (e->f.peer == e->f.pos && ws == SHMPIPE__END_CLOSED) {
				/*
				 * No slice: the fast path of shmpipe_read, which
				 * looks at no state, never runs again, and every
				 * read comes here to see ended.
				 */
				e->ended = true;
				e->slice = 0;
				reader_shut(e);
				return 0;
			}
			if (e->f.peer == e->f.pos)
				return -ECONNRESET;
			break;
		}
		err = shmpipe__wait(e, data_or_eof, e->waits, &dl);
		if (err == -ECONNRESET) {
			/*
			 * The writer died without closing. What it committed
			 * before is delivered first; the error comes after.
			 */
			int err2 = reader_refresh(e);

			if (err2 < 0)
				return err2;
			if (e->f.peer != e->f.pos)
				break;
		}
		if (err < 0)
			return err;
	}
	return (int64_t)(e->f.peer - e->f.pos);
}

/*
 * The record skip ring bytes on, given avail published bytes: its payload
 * length, checked against what the writer published (the length comes from
 * shared memory and is trusted no further than that), or -EPROTO.
 */
static int64_t record_at(const struct shmpipe__end *e, uint64_t skip, uint64_t avail,
			 const uint8_t **payload)
{
	struct shmpipe__record rec;
	uint64_t off = e->f.off + skip;

	if (avail < skip || avail - skip < sizeof(rec))
		return -EPROTO;
	if (off >= e->f.data_size)
		off -= e->f.data_size;
	memcpy(&rec, e->f.data + off, sizeof(rec));
	if (rec.len == 0 || rec.len > record_max(e) ||
	    shmpipe__record_space(rec.len) > avail - skip)
		return -EPROTO;
	*payload = e->f.data + off + sizeof(rec);
	return rec.len;
}

static int64_t record_next(const struct shmpipe__end *e, uint64_t avail, const uint8_t **payload)
{
	return record_at(e, 0, avail, payload);
}

/* Frees n bytes of the ring as ops more reads, and wakes a sleeping writer. */
static inline __attribute__((always_inline)) void reader_release(struct shmpipe__end *e, uint64_t n,
								 uint64_t ops)
{
	advance(e, n);
	/*
	 * The copy out of these bytes is complete before the writer may reuse
	 * them: the store is a release (pairs with the writer's load_acquire).
	 */
	shmpipe__publish(e, e->index);
	/* After the release of the bytes, as produced is (see writer_publish). */
	shmpipe__store_release(e->ops, shmpipe__load_relaxed(e->ops) + ops);
	shmpipe__signal_peer(e, &e->hdr->space_event);
}

/*
 * A read that the common case in shmpipe_read does not cover: a record, or
 * data not yet there (waiting for it), or more than a slice. Out of line,
 * so that the common case needs no stack frame and saves no registers.
 */
static __attribute__((noinline)) ssize_t read_waiting(struct shmpipe__end *e, void *buf, size_t len)
{
	const uint8_t *payload;
	int64_t avail, rlen;
	uint64_t n;

	/* In record mode any published byte belongs to a whole record. */
	avail = reader_avail(e, e->records ? 1 : len);
	if (avail <= 0)
		return avail;

	if (e->records) {
		rlen = record_next(e, (uint64_t)avail, &payload);
		if (rlen < 0)
			return rlen;
		if ((uint64_t)rlen > len)
			return -EMSGSIZE; /* the record stays for a bigger buffer */
		copy(buf, payload, (size_t)rlen);
		reader_release(e, record_space(e, (uint64_t)rlen), 1);
		return rlen;
	}
	n = min_u64((uint64_t)avail, len);
	/* Released in slices, so that the writer can refill behind us. */
	for (uint64_t done = 0; done < n;) {
		uint64_t k = min_u64(n - done, e->slice);

		copy((uint8_t *)buf + done, e->f.data + e->f.off, k);
		reader_release(e, k, done == 0);
		done += k;
	}
	return (ssize_t)n;
}

/* ---- work-sharing: each record to one reader ------------------------ */

/* How many times a reader looks again at a claim that moved under it. */
#define SHMPIPE__SHARE_TRIES 100000u

static shmpipe__u64 *claim_word(const struct shmpipe__end *e)
{
	return (shmpipe__u64 *)(void *)((uint8_t *)e->hdr + SHMPIPE__CLAIM);
}

/* A shared pipe's reader may go on: a record nobody took, or the writer closed. */
static bool share_ready(const struct shmpipe__end *e)
{
	uint32_t ws;

	/* seq_cst: the waiter's side of the pair with the writer's publish. */
	if (shmpipe__load_sc(claim_word(e)) != shmpipe__load_sc(&e->hdr->write_index))
		return true;
	ws = shmpipe__load32_sc(&e->hdr->writer_state);
	return ws == SHMPIPE__END_CLOSED || ws == SHMPIPE__END_ABORTED;
}

/*
 * Lets go of the record our place holds (hold, a position, or NONE), then
 * wakes the writer if it waits: it may overwrite the record now. Published
 * as a position is (shmpipe__publish), after the copy out of it.
 */
static void share_hold(struct shmpipe__end *e, uint64_t hold)
{
	if (shmpipe__update_fenceless(e))
		shmpipe__store_release(e->index, hold);
	else
		shmpipe__store_sc(e->index, hold);
}

static void share_release(struct shmpipe__end *e, uint64_t ops)
{
	share_hold(e, SHMPIPE__HOLD_NONE);
	e->held = false;
	if (ops)
		shmpipe__store_release(e->ops, shmpipe__load_relaxed(e->ops) + ops);
	shmpipe__signal_peer(e, &e->hdr->space_event);
}

/*
 * Takes the next record nobody took. The place first holds it, so that
 * the writer keeps it once the claim has moved past it, then the claim moves
 * past it with a compare-and-swap: of readers racing for one record, one
 * wins, and the others look again. Returns its payload length (with
 * *payload, e->f.off and e->seq set; the place holds it until
 * share_release), 0 at the end of the stream, -EMSGSIZE if it is longer
 * than max (it stays, for another read), or -EAGAIN, -ETIMEDOUT, -EINTR,
 * -ECONNRESET, -EPROTO. A reader that waits holds nothing: a stale hold
 * would keep the writer from the room behind it.
 */
static int64_t share_take(struct shmpipe__end *e, uint64_t max, const uint8_t **payload)
{
	struct shmpipe__deadline dl = {0};
	shmpipe__u64 *claim = claim_word(e);

	if (e->ended)
		return 0;
	for (unsigned tries = 0;; tries++) {
		struct shmpipe__share_record rec;
		uint64_t c = shmpipe__load_sc(claim);
		/* Pairs with the writer's publish: the frames before w are in. */
		uint64_t w = shmpipe__load_acquire(&e->hdr->write_index);
		uint64_t off;
		int err;

		/*
		 * Checked as a peer's positions are: never back, within a ring.
		 * Except that the claim was read first, and other readers and
		 * the writer may have gone a ring further since: look again. A
		 * claim that stays impossible is an error, not a hang.
		 */
		if (w < e->f.peer || c > w || w - c > e->f.capacity) {
			if (w >= e->f.peer && tries < SHMPIPE__SHARE_TRIES)
				continue;
			if (e->held)
				share_release(e, 0);
			return -EPROTO;
		}
		e->f.peer = w;
		if (c == w) {
			uint32_t ws;

			if (e->held)
				share_release(e, 0);
			ws = shmpipe__load32_acquire(&e->hdr->writer_state);
			if (ws == SHMPIPE__END_CLOSED || ws == SHMPIPE__END_ABORTED) {
				/* Closed after its last publish: one more look finds all. */
				if (shmpipe__load_sc(claim) !=
				    shmpipe__load_acquire(&e->hdr->write_index))
					continue;
				if (ws == SHMPIPE__END_ABORTED)
					return -ECONNRESET;
				e->ended = true;
				return 0;
			}
			err = shmpipe__wait(e, share_ready, e->waits, &dl);
			/* The writer died: what it committed is still taken first. */
			if (err == -ECONNRESET &&
			    shmpipe__load_sc(claim) != shmpipe__load_acquire(&e->hdr->write_index))
				continue;
			if (err < 0)
				return err;
			continue;
		}
		/* Hold it, then make sure that nobody took it meanwhile. */
		share_hold(e, c);
		e->held = true;
		if (shmpipe__load_sc(claim) != c)
			continue;
		off = c % e->f.data_size;
		memcpy(&rec, e->f.data + off, sizeof(rec));
		if (rec.len == 0 || rec.len > record_max(e) || record_space(e, rec.len) > w - c) {
			share_release(e, 0);
			return -EPROTO;
		}
		if (rec.len > max) {
			share_release(e, 0);
			return -EMSGSIZE; /* the record stays for a bigger buffer */
		}
		if (!shmpipe__cas64_sc(claim, &c, c + record_space(e, rec.len)))
			continue;
		e->f.off = off;
		e->seq = rec.seq;
		e->seq_valid = true;
		*payload = e->f.data + off + sizeof(rec);
		return (int64_t)rec.len;
	}
}

/* A shared pipe's read: the record a peek holds, or the next one. */
static ssize_t share_read(struct shmpipe__end *e, void *buf, size_t len)
{
	const uint8_t *payload = e->f.data + e->f.off + e->frame;
	int64_t n = (int64_t)e->lent;

	if (n && (uint64_t)n > len)
		return -EMSGSIZE;
	if (!n) {
		n = share_take(e, len, &payload);
		if (n <= 0)
			return n;
	}
	copy(buf, payload, (size_t)n);
	e->lent = 0;
	share_release(e, 1);
	return n;
}

ssize_t(shmpipe_read)(shmpipe_reader *r, void *buf, size_t len)
{
	struct shmpipe__end *e;
	uint64_t n;

	if (!r || (!buf && len))
		return -EINVAL;
	if (len == 0)
		return 0;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX; /* reads may always be shorter than asked */
	e = &r->e;
	/*
	 * The common case: data is there, and as much as asked is known to be
	 * or is found with one more look at write_index (as reader_avail
	 * would look), so no wait is needed. (Never a shared pipe's: records.)
	 */
	if (!e->records && len <= e->slice &&
	    (e->f.peer - e->f.pos >= len || (reader_refresh(e) == 0 && e->f.peer != e->f.pos))) {
		e->lent = 0; /* a read ends what a peek showed */
		n = min_u64(e->f.peer - e->f.pos, len);
		copy(buf, e->f.data + e->f.off, n);
		reader_release(e, n, 1);
		reader_arm(e);
		return (ssize_t)n;
	}
	/* A shared pipe's read may be of the record a peek holds. */
	if (e->share)
		return share_read(e, buf, len);
	e->lent = 0;
	e->shown = 0;
	ssize_t got = read_waiting(e, buf, len);

	if (got > 0)
		reader_arm(e);
	return got;
}

ssize_t shmpipe_peek(shmpipe_reader *r, const void **buf)
{
	struct shmpipe__end *e;
	const uint8_t *payload;
	int64_t avail;

	if (!r || !buf)
		return -EINVAL;
	e = &r->e;
	/* A shared pipe: the record a peek took stays held until consumed. */
	if (e->share) {
		avail = e->lent ? (int64_t)e->lent : share_take(e, SSIZE_MAX, &payload);
		if (avail == 0)
			*buf = NULL;
		if (avail <= 0)
			return avail;
		*buf = e->f.data + e->f.off + e->frame;
		e->lent = (uint64_t)avail;
		return avail;
	}
	e->lent = 0;
	e->shown = 0;
	avail = reader_avail(e, e->records ? 1 : SSIZE_MAX);
	if (avail <= 0) {
		if (avail == 0)
			*buf = NULL;
		return avail;
	}
	if (e->records) {
		avail = record_next(e, (uint64_t)avail, &payload);
		if (avail < 0)
			return avail;
		*buf = payload;
		e->shown = record_space(e, (uint64_t)avail);
	} else {
		avail = (int64_t)min_u64((uint64_t)avail, SSIZE_MAX);
		*buf = e->f.data + e->f.off;
	}
	e->lent = (uint64_t)avail;
	reader_shut(e); /* no inline read while the data is lent */
	return avail;
}

int shmpipe_consume(shmpipe_reader *r, size_t len)
{
	struct shmpipe__end *e;

	if (!r)
		return -EINVAL;
	e = &r->e;
	if (len > e->lent || (e->records && len != 0 && len != e->lent))
		return -EINVAL;
	if (len == 0)
		return 0;
	if (e->share) {
		e->lent = 0;
		share_release(e, 1);
	} else if (e->records) {
		uint64_t space = record_space(e, len);
		const uint8_t *payload;
		int64_t next = 0;

		reader_release(e, space, 1);
		/*
		 * Records peek_next showed after it stay shown: the next one
		 * is the first now (its frame was checked when it was shown,
		 * and is checked again: it is in shared memory).
		 */
		e->shown = e->shown > space ? e->shown - space : 0;
		if (e->shown)
			next = record_next(e, e->shown, &payload);
		if (next <= 0)
			e->shown = 0;
		e->lent = next > 0 ? (uint64_t)next : 0;
	} else {
		reader_release(e, len, 1);
		e->lent -= len;
	}
	return 0;
}

ssize_t shmpipe_peek_next(shmpipe_reader *r, const void **buf)
{
	struct shmpipe__end *e;
	const uint8_t *payload;
	int64_t len;
	int err;

	if (!r || !buf)
		return -EINVAL;
	e = &r->e;
	if (!e->records || e->share)
		return -EINVAL;
	if (!e->shown)
		return shmpipe_peek(r, buf);
	/* Never waits: what is shown is the caller's to consume first. */
	if (e->f.peer - e->f.pos <= e->shown) {
		err = reader_refresh(e);
		if (err < 0)
			return err;
		if (e->f.peer - e->f.pos <= e->shown)
			return -EAGAIN;
	}
	len = record_at(e, e->shown, e->f.peer - e->f.pos, &payload);
	if (len < 0)
		return len;
	e->shown += record_space(e, (uint64_t)len);
	*buf = payload;
	return len;
}

/*
 * The inline calls' wake-up (shmpipe.h): they published their position and
 * saw the peer's waiter bit in word.
 */
void shmpipe__wake_peer(struct shmpipe__fast *f, uint32_t word)
{
	struct shmpipe__end *e = (struct shmpipe__end *)(void *)f;

	shmpipe__wake(e, e->peer_event, word);
}

int shmpipe_reader_seq(const shmpipe_reader *r, uint64_t *seq)
{
	if (!r || !seq || !r->e.share || !r->e.seq_valid)
		return -EINVAL;
	*seq = r->e.seq;
	return 0;
}
