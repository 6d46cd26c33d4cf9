/* SPDX-License-Identifier: MIT */
/*
 * Bridges to the C world's streams: a stdio FILE on either end (through
 * fopencookie), and pumps between the ring and a file descriptor that call
 * read(2) and write(2) straight on the ring's memory, so no byte is copied
 * through an intermediate buffer.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include "internal.h"

/*
 * stdio's cookie write: all or nothing is not required, a short count is an
 * error for stdio, so report what went in and let errno say why not.
 */
static ssize_t cookie_write(void *cookie, const char *buf, size_t len)
{
	size_t done = 0;

	/*
	 * stdio takes a short count as an error and asks no more, so go on
	 * until all is in or a call fails, and then say why in errno.
	 */
	while (done < len) {
		ssize_t n = shmpipe_write(cookie, buf + done, len - done);

		if (n < 0) {
			errno = (int)-n;
			return done ? (ssize_t)done : -1;
		}
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static ssize_t cookie_read(void *cookie, char *buf, size_t len)
{
	ssize_t n = shmpipe_read(cookie, buf, len);

	if (n < 0) {
		errno = (int)-n;
		return -1;
	}
	return n;
}

static int cookie_close_writer(void *cookie)
{
	return shmpipe_writer_close(cookie) < 0 ? -1 : 0;
}

static int cookie_close_reader(void *cookie)
{
	return shmpipe_reader_close(cookie) < 0 ? -1 : 0;
}

int shmpipe_writer_fopen(shmpipe_writer *w, FILE **fp)
{
	cookie_io_functions_t io = {.write = cookie_write, .close = cookie_close_writer};
	FILE *f;

	/* stdio would cut records wherever its buffer fills. */
	if (!w || !fp || w->e.records)
		return -EINVAL;
	f = fopencookie(w, "w", io);
	if (!f)
		return -ENOMEM;
	*fp = f;
	return 0;
}

int shmpipe_reader_fopen(shmpipe_reader *r, FILE **fp)
{
	cookie_io_functions_t io = {.read = cookie_read, .close = cookie_close_reader};
	FILE *f;

	if (!r || !fp || r->e.records)
		return -EINVAL;
	f = fopencookie(r, "r", io);
	if (!f)
		return -ENOMEM;
	*fp = f;
	return 0;
}

ssize_t shmpipe_write_from_fd(shmpipe_writer *w, int fd, size_t max)
{
	uint64_t done = 0;
	size_t want = 1;

	if (!w || fd < 0)
		return -EINVAL;
	if (max == 0 || max > SSIZE_MAX)
		max = SSIZE_MAX;
	/*
	 * A record comes from one read(2), which truncates a datagram larger
	 * than the buffer: wait for room for a whole one (64 KiB, the largest
	 * UDP datagram, or the ring's largest record if smaller).
	 */
	if (w->e.records)
		want = (size_t)(SHMPIPE_RECORD_MAX(w->e.f.capacity) < 65536
				    ? SHMPIPE_RECORD_MAX(w->e.f.capacity)
				    : 65536);
	while (done < max) {
		void *buf;
		ssize_t room = shmpipe_reserve(w, &buf, want);
		ssize_t n;
		int err;

		if (room < 0)
			return done ? (ssize_t)done : room;
		/* A record is never cut: in record mode max may be passed. */
		if (!w->e.records && (uint64_t)room > max - done)
			room = (ssize_t)(max - done);
		/* The kernel copies from the file straight into the ring. */
		do
			n = read(fd, buf, (size_t)room);
		while (n < 0 && errno == EINTR);
		if (n < 0) {
			err = -errno;
			shmpipe_commit(w, 0);
			return done ? (ssize_t)done : err;
		}
		if (n == 0) {
			shmpipe_commit(w, 0);
			break;
		}
		err = shmpipe_commit(w, (size_t)n);
		if (err < 0)
			return done ? (ssize_t)done : err;
		done += (uint64_t)n;
	}
	return (ssize_t)done;
}

ssize_t shmpipe_read_to_fd(shmpipe_reader *r, int fd, size_t max)
{
	uint64_t done = 0;

	if (!r || fd < 0)
		return -EINVAL;
	if (max == 0 || max > SSIZE_MAX)
		max = SSIZE_MAX;
	while (done < max) {
		const void *buf;
		ssize_t avail = shmpipe_peek(r, &buf);
		size_t n, put = 0;
		int err;

		if (avail <= 0)
			return done ? (ssize_t)done : avail;
		n = (size_t)avail;
		/* A record is written whole or not at all: never beyond max. */
		if (n > max - done) {
			if (r->e.records)
				return done ? (ssize_t)done : -EMSGSIZE;
			n = (size_t)(max - done);
		}
		/* The kernel copies from the ring straight to the file. */
		while (put < n) {
			ssize_t k = write(fd, (const char *)buf + put, n - put);

			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0) {
				err = -errno;
				/* Release what did go out; the rest stays. */
				if (put && !r->e.records)
					shmpipe_consume(r, put);
				done += r->e.records ? 0 : put;
				return done ? (ssize_t)done : err;
			}
			put += (size_t)k;
		}
		err = shmpipe_consume(r, n);
		if (err < 0)
			return done ? (ssize_t)done : err;
		done += n;
	}
	return (ssize_t)done;
}
