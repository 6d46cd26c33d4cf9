/* SPDX-License-Identifier: MIT */
/*
 * Reading a pipe's state: an end's options and counters (the seed's stats),
 * and a named pipe seen from outside (shmpipe_stat, shmpipe_inspect) by an
 * observer that takes no end and never maps the object: it reads copies of
 * the header, whose owner may be hostile.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "os.h"

/*
 * A snapshot in which read_index <= write_index <= read_index + capacity,
 * and every write and read counted has its bytes in the positions:
 * read_index is read before and after write_index, and if it did not move,
 * both values held together at the moment write_index was read. A hostile
 * peer cannot make this loop forever: it gives up and clamps.
 */
static void snapshot(const struct shmpipe__hdr *h, uint64_t capacity, shmpipe_stats *out)
{
	uint64_t r1, w, r2;

	memset(out, 0, sizeof(*out));
	/*
	 * The op counters first: each is published after the position it
	 * counts (pairs with the store_release in writer_publish and
	 * reader_release), so the positions read below cover them.
	 */
	out->produced = shmpipe__load_sc(&h->produced);
	out->consumed = shmpipe__load_sc(&h->consumed);
	for (int i = 0;; i++) {
		r1 = shmpipe__load_sc(&h->read_index);
		w = shmpipe__load_sc(&h->write_index);
		r2 = shmpipe__load_sc(&h->read_index);
		if (r1 == r2 && r1 <= w && w - r1 <= capacity)
			break;
		if (i == 1000) {
			r1 = r2 < w ? r2 : w;
			if (w - r1 > capacity)
				r1 = w - capacity;
			break;
		}
	}
	out->capacity = capacity;
	out->write_index = w;
	out->read_index = r1;
	out->producer_waits = shmpipe__load_sc(&h->producer_waits);
	out->consumer_waits = shmpipe__load_sc(&h->consumer_waits);
}

static int end_options(const struct shmpipe__end *e, shmpipe_options *out)
{
	int mode = shmpipe__os_mode(e->fd);

	memset(out, 0, sizeof(*out));
	out->capacity = (size_t)e->f.capacity;
	out->flags = e->records ? SHMPIPE_RECORDS : 0;
	out->mode = mode > 0 ? (unsigned)mode : 0;
	return 0;
}

int shmpipe_writer_options(const shmpipe_writer *w, shmpipe_options *out)
{
	if (!w || !out)
		return -EINVAL;
	return end_options(&w->e, out);
}

int shmpipe_reader_options(const shmpipe_reader *r, shmpipe_options *out)
{
	if (!r || !out)
		return -EINVAL;
	return end_options(&r->e, out);
}

int shmpipe_writer_stats(const shmpipe_writer *w, shmpipe_stats *out)
{
	if (!w || !out)
		return -EINVAL;
	snapshot(w->e.hdr, w->e.f.capacity, out);
	return 0;
}

int shmpipe_reader_stats(const shmpipe_reader *r, shmpipe_stats *out)
{
	if (!r || !out)
		return -EINVAL;
	snapshot(r->e.hdr, r->e.f.capacity, out);
	return 0;
}

/*
 * Opens a named pipe as an observer: read-only, its header checked (waiting
 * up to wait_ms for a creator still writing it), no end taken. Never mapped:
 * the object may belong to anyone, who could shrink it under a mapping and
 * kill us with SIGBUS. On success the caller closes *fd.
 */
static int observe(const char *name, int wait_ms, int *fd, struct shmpipe__geometry *g)
{
	struct shmpipe__hdr h;
	int err;

	if (shmpipe__check_name(name) < 0)
		return -EINVAL;
	*fd = shmpipe__os_shm_open(name, 1);
	if (*fd < 0)
		return *fd;
	err = shmpipe__object_check(*fd, g, wait_ms, &h);
	if (err < 0)
		shmpipe__os_close(*fd);
	return err;
}

/*
 * snapshot() for an observer, on copies of the header read one after the
 * other: the counters and read_index from one, write_index and read_index
 * again from the next (a copy reads in ascending offsets, so each value is
 * read after those that snapshot() reads before it). The last copy is left
 * in *h for the rest of what the observer reports.
 */
static int observe_snapshot(int fd, uint64_t capacity, shmpipe_stats *out, struct shmpipe__hdr *h)
{
	struct shmpipe__hdr a;
	uint64_t r1 = 0, w = 0;
	int err;

	memset(out, 0, sizeof(*out));
	for (int i = 0;; i++) {
		err = shmpipe__os_read_at(fd, &a, sizeof(a), 0);
		if (err == 0)
			err = shmpipe__os_read_at(fd, h, sizeof(*h), 0);
		if (err < 0)
			return err;
		r1 = a.read_index;
		w = h->write_index;
		if (r1 == h->read_index && r1 <= w && w - r1 <= capacity)
			break;
		if (i == 1000) {
			r1 = h->read_index < w ? h->read_index : w;
			if (w - r1 > capacity)
				r1 = w - capacity;
			break;
		}
	}
	out->produced = a.produced;
	out->consumed = a.consumed;
	out->capacity = capacity;
	out->write_index = w;
	out->read_index = r1;
	out->producer_waits = h->producer_waits;
	out->consumer_waits = h->consumer_waits;
	return 0;
}

int shmpipe_stat(const char *name, shmpipe_stats *out)
{
	struct shmpipe__hdr h;
	struct shmpipe__geometry g;
	int fd, err;

	if (!out)
		return -EINVAL;
	err = observe(name, SHMPIPE__INIT_WAIT_MS, &fd, &g);
	if (err < 0)
		return err;
	err = observe_snapshot(fd, g.capacity, out, &h);
	shmpipe__os_close(fd);
	return err;
}

/*
 * One end as an observer sees it, from a copy of the header. The state and
 * pid are only reported; the liveness comes from the kernel's lock table,
 * not from the peer, and the waiter bit of the event the end sleeps on
 * counts only while it is alive (a process killed in its sleep leaves the
 * bit set).
 */
static int end_info(shmpipe_end_info *out, int fd, uint32_t state, uint32_t pid, uint32_t event,
		    unsigned lock)
{
	int held;

	if (state > SHMPIPE__END_ABORTED)
		return -EPROTO;
	held = shmpipe__os_lock_held(fd, lock);
	if (held < 0)
		return held;
	out->state = (int)state;
	out->pid = pid;
	out->alive = held;
	out->asleep = held && (event & SHMPIPE__WAITER) != 0;
	return 0;
}

int shmpipe_inspect(const char *name, shmpipe_info *out)
{
	struct shmpipe__hdr h;
	struct shmpipe__geometry g;
	int fd, err;

	if (!out)
		return -EINVAL;
	/* No wait: an observer scanning many objects must not stall on each. */
	err = observe(name, 0, &fd, &g);
	if (err < 0)
		return err;
	memset(out, 0, sizeof(*out));
	err = observe_snapshot(fd, g.capacity, &out->stats, &h);
	out->flags = g.flags;
	/* The writer sleeps on space_event, the reader on data_event. */
	if (err == 0)
		err = end_info(&out->writer, fd, h.writer_state, h.writer_pid, h.space_event,
			       SHMPIPE__WRITER_LOCK);
	if (err == 0)
		err = end_info(&out->reader, fd, h.reader_state, h.reader_pid, h.data_event,
			       SHMPIPE__READER_LOCK);
	shmpipe__os_close(fd);
	return err;
}
