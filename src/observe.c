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
	out->flags = (e->records ? SHMPIPE_RECORDS : 0) | (e->share ? SHMPIPE_SHARE : 0);
	out->readers = e->readers > 1 ? e->readers : 0;
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

/*
 * A broadcast pipe's read side, from its places (copies or the table
 * itself): the consumed counts and waits of the readers in them, summed.
 * The slowest reader's position is in the header (broadcast.c keeps it).
 */
static void places_sum(const struct shmpipe__place *p, unsigned n, shmpipe_stats *out)
{
	out->consumed = out->consumer_waits = 0;
	for (unsigned i = 0; i < n; i++) {
		if (SHMPIPE__PLACE_STATE(shmpipe__load32_relaxed(&p[i].state)) != SHMPIPE__END_OPEN)
			continue;
		out->consumed += shmpipe__load_relaxed(&p[i].consumed);
		out->consumer_waits += shmpipe__load_relaxed(&p[i].consumer_waits);
	}
}

int shmpipe_writer_stats(const shmpipe_writer *w, shmpipe_stats *out)
{
	if (!w || !out)
		return -EINVAL;
	snapshot(w->e.hdr, w->e.f.capacity, out);
	if (w->e.fan) {
		/* The slowest reader now, not as the writer last looked for room. */
		out->read_index = shmpipe__fan_slowest(&w->e, out->write_index);
		if (out->write_index - out->read_index > out->capacity)
			out->read_index = out->write_index - out->capacity;
		places_sum(w->e.fan->places, w->e.fan->n, out);
	}
	return 0;
}

int shmpipe_reader_stats(const shmpipe_reader *r, shmpipe_stats *out)
{
	const struct shmpipe__place *p = r ? r->e.place : NULL;

	if (!r || !out)
		return -EINVAL;
	snapshot(r->e.hdr, r->e.f.capacity, out);
	if (p) {
		/* A broadcast reader: its own position and counts. */
		out->consumed = shmpipe__load_sc(&p->consumed);
		out->read_index = shmpipe__load_sc(&p->read_index);
		out->consumer_waits = shmpipe__load_relaxed(&p->consumer_waits);
		/* A shared pipe's reader: where the records nobody took begin. */
		if (r->e.share)
			out->read_index = shmpipe__load_sc(
			    (shmpipe__u64 *)(void *)((uint8_t *)r->e.hdr + SHMPIPE__CLAIM));
		/* Published after the bytes it counts: the index read after it covers them. */
		out->write_index = shmpipe__load_sc(&r->e.hdr->write_index);
		if (out->read_index > out->write_index)
			out->read_index = out->write_index;
	}
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

static int end_info(shmpipe_end_info *out, int fd, uint32_t state, uint32_t pid, uint32_t event,
		    unsigned lock);

/*
 * A broadcast pipe's places, by copy: the read side of *stats summed over
 * them (if stats), and each of the first n places in out[] (if out).
 */
static int observe_places(int fd, const struct shmpipe__geometry *g, shmpipe_stats *stats,
			  shmpipe_reader_info *out, unsigned n)
{
	struct shmpipe__place *p;
	size_t len = (size_t)g->readers * sizeof(*p);
	int err;

	p = malloc(len);
	if (!p)
		return -ENOMEM;
	uint64_t claim = 0;

	err = shmpipe__os_read_at(fd, p, len, SHMPIPE__PLACES);
	/* A shared pipe: a reader that holds no record is where the claim is. */
	if (err == 0 && (g->flags & SHMPIPE_SHARE))
		err = shmpipe__os_read_at(fd, &claim, sizeof(claim), SHMPIPE__CLAIM);
	if (err == 0 && stats)
		places_sum(p, g->readers, stats);
	for (unsigned i = 0; err == 0 && out && i < n && i < g->readers; i++) {
		uint32_t word = p[i].state, state = SHMPIPE__PLACE_STATE(word);

		memset(&out[i], 0, sizeof(out[i]));
		/*
		 * A reader dropped by the writer died without closing: OPEN,
		 * not alive. A state no reader writes is someone's scribble:
		 * shown as never taken, so that the other places still show.
		 */
		if (state == SHMPIPE__PLACE_DROPPED)
			state = SHMPIPE__END_OPEN;
		else if (state > SHMPIPE__END_CLOSED)
			state = SHMPIPE__END_ABSENT;
		err = end_info(&out[i].end, fd, state, p[i].pid, p[i].data_event,
			       SHMPIPE__READER_LOCK + i);
		if (SHMPIPE__PLACE_STATE(word) == SHMPIPE__PLACE_DROPPED)
			out[i].end.alive = out[i].end.asleep = 0;
		out[i].read_index = p[i].read_index;
		if ((g->flags & SHMPIPE_SHARE) && p[i].read_index == SHMPIPE__HOLD_NONE)
			out[i].read_index = claim;
		out[i].consumed = p[i].consumed;
		out[i].consumer_waits = p[i].consumer_waits;
	}
	free(p);
	return err;
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
	if (err == 0 && g.readers > 1)
		err = observe_places(fd, &g, out, NULL, 0);
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
	/*
	 * Broadcast: the reader side is OPEN once a reader came; each reader
	 * is in its place (shmpipe_inspect_readers).
	 */
	if (err == 0 && g.readers > 1) {
		out->reader.state = (int)(h.reader_state <= SHMPIPE__END_OPEN ? h.reader_state : 0);
		out->reader.alive = shmpipe__load32_relaxed(&h.readers_live) > 0;
		err = observe_places(fd, &g, &out->stats, NULL, 0);
	} else if (err == 0) {
		err = end_info(&out->reader, fd, h.reader_state, h.reader_pid, h.data_event,
			       SHMPIPE__READER_LOCK);
	}
	out->readers = g.readers;
	shmpipe__os_close(fd);
	return err;
}

int shmpipe_inspect_readers(const char *name, shmpipe_reader_info *out, unsigned n)
{
	struct shmpipe__hdr h;
	struct shmpipe__geometry g;
	shmpipe_stats stats;
	int fd, err;

	if (!out && n)
		return -EINVAL;
	err = observe(name, 0, &fd, &g);
	if (err < 0)
		return err;
	if (g.readers > 1) {
		err = observe_places(fd, &g, NULL, out, n);
	} else if (n) {
		/* One reader: its place is the header's reader line. */
		err = observe_snapshot(fd, g.capacity, &stats, &h);
		memset(&out[0], 0, sizeof(out[0]));
		if (err == 0)
			err = end_info(&out[0].end, fd, h.reader_state, h.reader_pid, h.data_event,
				       SHMPIPE__READER_LOCK);
		out[0].read_index = stats.read_index;
		out[0].consumed = stats.consumed;
		out[0].consumer_waits = stats.consumer_waits;
	}
	shmpipe__os_close(fd);
	return err < 0 ? err : (int)g.readers;
}
