/*
 * The hot path: shmpipe_write and shmpipe_read. A byte goes from the
 * caller's buffer into the ring with one memcpy in shmpipe_write, is
 * published by a store of write_index, and leaves the ring with one memcpy in
 * shmpipe_read, which publishes read_index in turn. Because the data region
 * is mapped twice back to back, a span that crosses the end of the region is
 * still contiguous and each copy is a single memcpy.
 *
 * Each end keeps its own position in private memory and caches the peer's;
 * it reads the peer's shared position only when the ring looks full (writer)
 * or empty (reader), and checks it before using it.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "internal.h"

static inline uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Advances a position and its offset in the data region by n <= data_size. */
static inline void advance(struct shmpipe__end *e, uint64_t n)
{
	e->pos += n;
	e->off += n;
	if (e->off >= e->data_size)
		e->off -= e->data_size;
}

/*
 * Reads the reader's position and checks it: never behind what we already
 * know of it, never ahead of our own position. Pairs with the store_sc of
 * read_index in shmpipe_read: once we see the new position, the reader is
 * done reading the bytes before it and we may overwrite them.
 */
static int writer_refresh(struct shmpipe__end *e)
{
	uint64_t r = shmpipe__load_acquire(&e->hdr->read_index);

	if (r < e->peer || r > e->pos)
		return -EPROTO;
	e->peer = r;
	return 0;
}

/* Reads the writer's position and checks it (at most capacity ahead of us). */
static int reader_refresh(struct shmpipe__end *e)
{
	/* Pairs with the store_sc of write_index: the bytes before it are in. */
	uint64_t w = shmpipe__load_acquire(&e->hdr->write_index);

	if (w < e->peer || w - e->pos > e->capacity)
		return -EPROTO;
	e->peer = w;
	return 0;
}

/* The writer may go on: there is space, or the reader is gone. */
static bool space_or_gone(const struct shmpipe__end *e)
{
	/* seq_cst loads: the waiter's side of the store-buffering pair. */
	return e->pos - shmpipe__load_sc(&e->hdr->read_index) < e->capacity ||
	       shmpipe__load32_sc(&e->hdr->reader_state) == SHMPIPE__END_CLOSED;
}

/* The reader may go on: there is data, or the writer has closed. */
static bool data_or_eof(const struct shmpipe__end *e)
{
	return shmpipe__load_sc(&e->hdr->write_index) != e->pos ||
	       shmpipe__load32_sc(&e->hdr->writer_state) == SHMPIPE__END_CLOSED;
}

static bool reader_gone(const struct shmpipe__end *e)
{
	/* Pairs with the store_sc of reader_state in shmpipe_reader_close. */
	return shmpipe__load32_acquire(&e->hdr->reader_state) == SHMPIPE__END_CLOSED;
}

ssize_t shmpipe_write(shmpipe_writer *w, const void *buf, size_t len)
{
	struct shmpipe__deadline dl = {0};
	struct shmpipe__end *e;
	size_t done = 0;
	int err;

	if (!w || (!buf && len))
		return -EINVAL;
	if (len == 0)
		return 0;
	if ((ssize_t)len < 0)
		return -EINVAL; /* the count could not be returned */
	e = &w->e;
	if (reader_gone(e))
		return -EPIPE;

	while (done < len) {
		uint64_t room = e->capacity - (e->pos - e->peer);
		uint64_t n;

		if (room == 0) {
			err = writer_refresh(e);
			if (err < 0)
				return done ? (ssize_t)done : err;
			room = e->capacity - (e->pos - e->peer);
		}
		if (room == 0) {
			err = shmpipe__wait(e, &e->hdr->space_event, space_or_gone,
					    &e->hdr->producer_waits, &dl);
			if (err == 0 && reader_gone(e))
				err = -EPIPE;
			if (err < 0)
				return done ? (ssize_t)done : err;
			continue;
		}

		n = min_u64(room, len - done);
		memcpy(e->data + e->off, (const uint8_t *)buf + done, n);
		advance(e, n);
		if (done == 0) {
			/* Counted once per call that puts bytes in the ring. */
			shmpipe__store_relaxed(&e->hdr->produced, ++e->ops);
		}
		done += n;
		/*
		 * Publish: release for the bytes just copied (pairs with the
		 * reader's load_acquire), and sequentially consistent so that
		 * the look for a sleeping reader below cannot be ordered before
		 * it (pairs with the reader's fetch_or in shmpipe__wait).
		 */
		shmpipe__store_sc(&e->hdr->write_index, e->pos);
		shmpipe__signal(&e->hdr->data_event);
	}
	return (ssize_t)done;
}

ssize_t shmpipe_read(shmpipe_reader *r, void *buf, size_t len)
{
	struct shmpipe__deadline dl = {0};
	struct shmpipe__end *e;
	uint64_t n;
	int err;

	if (!r || (!buf && len))
		return -EINVAL;
	if (len == 0)
		return 0;
	if ((ssize_t)len < 0)
		len = SSIZE_MAX; /* reads may always be shorter than asked */
	e = &r->e;

	/*
	 * Like read(2) on a pipe, return all that is there up to len: if what
	 * we know of is less than asked, look at write_index once more.
	 */
	if (e->peer - e->pos < len && e->peer != e->pos) {
		err = reader_refresh(e);
		if (err < 0)
			return err;
	}
	while (e->peer == e->pos) {
		err = reader_refresh(e);
		if (err < 0)
			return err;
		if (e->peer != e->pos)
			break;
		/*
		 * End of stream: the writer closed after its last publish
		 * (store_sc of writer_state after that of write_index), so
		 * once we see it closed, one more look at write_index finds
		 * everything it ever wrote.
		 */
		if (shmpipe__load32_acquire(&e->hdr->writer_state) == SHMPIPE__END_CLOSED) {
			err = reader_refresh(e);
			if (err < 0)
				return err;
			if (e->peer == e->pos)
				return 0;
			break;
		}
		err = shmpipe__wait(e, &e->hdr->data_event, data_or_eof, &e->hdr->consumer_waits,
				    &dl);
		if (err < 0)
			return err;
	}

	n = min_u64(e->peer - e->pos, len);
	memcpy(buf, e->data + e->off, n);
	advance(e, n);
	shmpipe__store_relaxed(&e->hdr->consumed, ++e->ops);
	/*
	 * Release the space: the copy above must be complete before the
	 * writer may reuse these bytes (pairs with its load_acquire), and the
	 * look for a sleeping writer must not be ordered before this store
	 * (pairs with the writer's fetch_or in shmpipe__wait).
	 */
	shmpipe__store_sc(&e->hdr->read_index, e->pos);
	shmpipe__signal(&e->hdr->space_event);
	return (ssize_t)n;
}
