/* SPDX-License-Identifier: MIT */
/*
 * Taking an end: a new pipe with both ends (shmpipe_pair), a new pipe with
 * one (create), or the other end of one that exists (open by name, or by a
 * descriptor passed from another process), and the descriptors that pass it.
 *
 * Each end has its own open file description of the object, on which it
 * holds its liveness lock (os.h) for as long as it is attached, and its own
 * view of the geometry, read and checked once when it attaches (object.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "os.h"

static void end_init(struct shmpipe__end *e, struct shmpipe__map *m,
		     const struct shmpipe__geometry *g, int fd, bool writer)
{
	memset(e, 0, sizeof(*e));
	e->map = m;
	e->hdr = m->hdr;
	e->f.data = m->data;
	e->f.capacity = g->capacity;
	e->f.data_size = g->data_size;
	e->records = (g->flags & SHMPIPE_RECORDS) != 0;
	e->readers = g->readers;
	e->share = (g->flags & SHMPIPE_SHARE) != 0;
	e->reopen = (g->flags & SHMPIPE_REOPEN) != 0;
	e->frame = e->share ? sizeof(struct shmpipe__share_record) : sizeof(struct shmpipe__record);
	e->timeout_ms = -1;
	e->spin_ns = SHMPIPE__SPIN_NS;
	/*
	 * A copy as large as the ring would keep the peer waiting until it
	 * is over, and then wait for the peer in turn: publishing (and
	 * releasing) in quarters of the ring lets the two copies overlap.
	 * Small rings keep one piece: a quarter would be all overhead.
	 */
	e->slice = g->capacity >= SHMPIPE__SLICE_MIN * 4 ? g->capacity / 4 : g->capacity;
	e->fd = fd;
	e->peer_lock = writer ? SHMPIPE__READER_LOCK : SHMPIPE__WRITER_LOCK;
	e->peer_state = writer ? &m->hdr->reader_state : &m->hdr->writer_state;
	e->state = writer ? &m->hdr->writer_state : &m->hdr->reader_state;
	e->peer_flags = writer ? &m->hdr->reader_flags : &m->hdr->writer_flags;
	e->flags = writer ? &m->hdr->writer_flags : &m->hdr->reader_flags;
	e->event = writer ? &m->hdr->space_event : &m->hdr->data_event;
	e->peer_event = writer ? &m->hdr->data_event : &m->hdr->space_event;
	if (!writer) {
		e->index = &m->hdr->read_index;
		e->ops = &m->hdr->consumed;
		e->waits = &m->hdr->consumer_waits;
	}
	e->f.shared = (unsigned char *)m->hdr; /* for the inline calls of shmpipe.h */
	atomic_init(&e->interrupt, 0);
	e->bell = e->note = e->peer_bell = e->peer_guard = e->own_ring = e->life = -1;
	e->pollfd = e->listener = e->conn = -1;
	for (int i = 0; i < SHMPIPE__PENDING; i++)
		e->pending[i] = -1;
	atomic_init(&e->listening, 0);
}

/*
 * Takes one end of a mapped pipe through descriptor fd (which the end then
 * owns): the liveness lock, then the state, ABSENT -> OPEN, so that of two
 * racing openers exactly one wins. Then our position, from the header and
 * checked against the peer's: from here on it is kept privately.
 */
static int end_take(struct shmpipe__end *e, struct shmpipe__map *m,
		    const struct shmpipe__geometry *g, int fd, bool writer)
{
	struct shmpipe__hdr *h = m->hdr;
	shmpipe__u32 *state = writer ? &h->writer_state : &h->reader_state;
	uint32_t absent = SHMPIPE__END_ABSENT;
	uint64_t w, r;
	int err;

	/* A reader of a broadcast pipe takes a place of its own (broadcast.c). */
	if (!writer && g->readers > 1) {
		err = shmpipe__place_take(e, g, fd);
		if (err == 0)
			e->registered = shmpipe__os_barrier_register() == 0;
		return err;
	}
	err = shmpipe__os_lock(fd, writer ? SHMPIPE__WRITER_LOCK : SHMPIPE__READER_LOCK);
	if (err < 0)
		return err;
	r = shmpipe__load_acquire(&h->read_index);
	w = shmpipe__load_acquire(&h->write_index);
	if (r > w || w - r > g->capacity)
		return -EPROTO;
	e->f.pos = writer ? w : r;
	e->f.peer = writer ? r : w;
	/* A broadcast writer has no room until a reader comes (broadcast.c). */
	if (e->fan)
		e->f.peer = e->f.pos - g->capacity;
	e->f.off = e->f.pos % g->data_size;
	/*
	 * Pairs with the peer's load of our state in its ready() and checks.
	 * SHMPIPE_REOPEN: an end that says OPEN while we hold its lock was
	 * left by a process that died; it is ours now, from the positions in
	 * the header (what the dead one published is all that counts). Its
	 * promise of barriers was the dead process's, not ours.
	 */
	if (!shmpipe__cas32_sc(state, &absent, SHMPIPE__END_OPEN)) {
		if (!e->reopen || absent != SHMPIPE__END_OPEN)
			return -EBUSY;
		shmpipe__store32_sc(writer ? &h->writer_flags : &h->reader_flags, 0);
	}
	/* Only the winner says who holds the end. */
	atomic_store_explicit(writer ? &h->writer_pid : &h->reader_pid, shmpipe__os_pid(),
			      memory_order_relaxed);
	/*
	 * And only the winner may promise barriers for the end, which it does
	 * before its first sleep (wait.c): a refused opener never speaks for
	 * the holder.
	 */
	e->registered = shmpipe__os_barrier_register() == 0;
	return 0;
}

/*
 * Allocates a handle with its doorbell and attaches it as one end; closes fd
 * on failure. The doorbell comes first: once the end is taken, nothing may
 * fail that would leave it taken by nobody.
 */
static int attach(struct shmpipe__end **out, size_t handle_size, struct shmpipe__map *m,
		  const struct shmpipe__geometry *g, int fd, bool writer)
{
	struct shmpipe__end *e = malloc(handle_size);
	int err;

	if (!e) {
		shmpipe__os_close(fd);
		return -ENOMEM;
	}
	end_init(e, m, g, fd, writer);
	err = writer && g->readers > 1 ? shmpipe__fan_new(e, g) : 0;
	if (err == 0)
		err = shmpipe__doorbell_init(e);
	if (err == 0)
		err = end_take(e, m, g, fd, writer);
	if (err < 0) {
		shmpipe__doorbell_close(e);
		shmpipe__os_close(fd);
		free(e);
		return err;
	}
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	*out = e;
	return 0;
}

int shmpipe_pair(shmpipe_writer **w, shmpipe_reader **r, const shmpipe_options *opts)
{
	struct shmpipe__end *we = NULL, *re = NULL;
	struct shmpipe__map *m;
	struct shmpipe__geometry g;
	uint8_t token[SHMPIPE__TOKEN_LEN];
	int fd, rfd, mfd, err, listener = -1;

	if (!w || !r)
		return -EINVAL;
	err = shmpipe__parse_options(opts, &g);
	if (err < 0)
		return err;
	fd = shmpipe__os_shm_anon("shmpipe", g.header_size + g.data_size);
	if (fd < 0)
		return fd;
	/*
	 * Each end its own open file description, for its own lock, and a
	 * third one for the mapping both ends share: a mapping keeps its
	 * description, and so any lock on it, alive, and a process that
	 * keeps only one end (after a fork, the other dropped) must not keep
	 * the other's. One mapping, not one per end: each shared word at one
	 * address, as ThreadSanitizer needs to see the ends synchronize.
	 */
	rfd = shmpipe__os_reopen(fd);
	mfd = rfd < 0 ? rfd : shmpipe__os_reopen(fd);
	if (rfd == -EOPNOTSUPP) {
		/* No /proc to open the memfd again: a name, for a moment. */
		shmpipe__os_close(fd);
		fd = shmpipe__os_shm_pair(g.header_size + g.data_size, &rfd, &mfd);
		if (fd < 0)
			return fd;
	}
	if (rfd < 0 || mfd < 0) {
		err = rfd < 0 ? rfd : mfd;
		shmpipe__os_close(fd);
		if (rfd >= 0)
			shmpipe__os_close(rfd);
		return err;
	}
	err = shmpipe__map_new(&m, mfd, &g);
	shmpipe__os_close(mfd);
	if (err < 0) {
		shmpipe__os_close(fd);
		shmpipe__os_close(rfd);
		return err;
	}
	/* More readers meet the writer through a rendezvous, as a named pipe's. */
	if (g.readers > 1) {
		listener = shmpipe__listen(token, g.readers);
		if (listener < 0) {
			shmpipe__os_close(fd);
			shmpipe__os_close(rfd);
			shmpipe__map_put(m);
			return listener;
		}
	}
	shmpipe__header_init(m->hdr, &g, listener >= 0 ? token : NULL);
	err = attach(&we, sizeof(shmpipe_writer), m, &g, fd, true);
	if (err < 0) {
		shmpipe__os_close(rfd);
		shmpipe__map_put(m);
		if (listener >= 0)
			shmpipe__os_close(listener);
		return err;
	}
	err = attach(&re, sizeof(shmpipe_reader), m, &g, rfd, false);
	shmpipe__map_put(m); /* the ends hold their references */
	if (err == 0) {
		err = shmpipe__pair_meet(we, re);
		if (err < 0)
			shmpipe_reader_close((shmpipe_reader *)re);
	}
	if (listener >= 0 && err < 0) {
		shmpipe__os_close(listener);
	} else if (listener >= 0) {
		err = shmpipe__listen_attach(we, listener, token); /* closes it on failure */
		if (err < 0)
			shmpipe_reader_close((shmpipe_reader *)re);
	}
	if (err < 0) {
		shmpipe_writer_close((shmpipe_writer *)we);
		return err;
	}
	*w = (shmpipe_writer *)we;
	*r = (shmpipe_reader *)re;
	return 0;
}

/* Creates a pipe (named, or anonymous for a NULL name) and takes one end. */
static int create_end(struct shmpipe__end **out, size_t handle_size, const char *name,
		      const shmpipe_options *opts, bool writer)
{
	struct shmpipe__map *m;
	struct shmpipe__geometry g;
	uint8_t token[SHMPIPE__TOKEN_LEN];
	int fd, err, listener;

	if (!out || (name && shmpipe__check_name(name) < 0))
		return -EINVAL;
	err = shmpipe__parse_options(opts, &g);
	if (err < 0)
		return err;
	/* Readers of a broadcast pipe come to its writer: it must make it. */
	if (!writer && g.readers > 1)
		return -EINVAL;
	/* Listening before the header is out: an opener may connect at once. */
	listener = shmpipe__listen(token, g.readers);
	if (listener < 0)
		return listener;
	if (name)
		fd = shmpipe__os_shm_create(name, g.header_size + g.data_size,
					    opts && opts->mode ? opts->mode : 0600);
	else
		fd = shmpipe__os_shm_anon("shmpipe", g.header_size + g.data_size);
	if (fd < 0) {
		shmpipe__os_close(listener);
		return fd;
	}
	err = shmpipe__map_new(&m, fd, &g);
	if (err == 0) {
		shmpipe__header_init(m->hdr, &g, token);
		err = attach(out, handle_size, m, &g, fd, writer);
		shmpipe__map_put(m);
	} else {
		shmpipe__os_close(fd);
	}
	if (err == 0) {
		err = shmpipe__listen_attach(*out, listener, token);
		if (err < 0) {
			if (writer)
				shmpipe_writer_close((shmpipe_writer *)*out);
			else
				shmpipe_reader_close((shmpipe_reader *)*out);
		}
	} else {
		shmpipe__os_close(listener);
	}
	if (err < 0 && name)
		shmpipe__os_shm_unlink(name); /* leave nothing half-made behind */
	return err;
}

/*
 * Whether the end we would take is still free while the other one is held
 * by a live process, on a pipe with a rendezvous (a token: the library's
 * creating ends always draw one): then that end listens for us (doorbell.c).
 */
static bool peer_unreachable(const struct shmpipe__hdr *h, const uint8_t *token, int fd,
			     bool writer)
{
	static const uint8_t none[SHMPIPE__TOKEN_LEN];
	const shmpipe__u32 *mine = writer ? &h->writer_state : &h->reader_state;
	const shmpipe__u32 *other = writer ? &h->reader_state : &h->writer_state;

	return memcmp(token, none, sizeof(none)) != 0 &&
	       shmpipe__load32_acquire(mine) == SHMPIPE__END_ABSENT &&
	       shmpipe__load32_acquire(other) == SHMPIPE__END_OPEN &&
	       shmpipe__os_lock_held(fd, writer ? SHMPIPE__READER_LOCK : SHMPIPE__WRITER_LOCK) == 1;
}

/* Attaches to the pipe behind fd (which this takes over) as one end. */
static int open_end_owned(struct shmpipe__end **out, size_t handle_size, int fd, bool writer)
{
	struct shmpipe__map *m = NULL; /* set by map_new; gcc 12 -O2 cannot tell */
	struct shmpipe__geometry g;
	struct shmpipe__hdr h;
	uint8_t token[SHMPIPE__TOKEN_LEN];
	int err = shmpipe__object_check(fd, &g, SHMPIPE__INIT_WAIT_MS, &h);
	int s = -1;

	if (err == 0)
		err = shmpipe__map_new(&m, fd, &g);
	if (err < 0) {
		shmpipe__os_close(fd);
		return err;
	}
	/*
	 * Connect before taking the end: if the creating end cannot be
	 * reached (a crowd at its door), we fail with nothing taken, and a
	 * later try may do better.
	 */
	memcpy(token, m->hdr->token, sizeof(token));
	s = shmpipe__dial(token);
	/*
	 * Nobody listens, yet the other end is held and ours is free: the
	 * creating end listens until it has met ours, so its socket is out of
	 * our reach (another network namespace shares /dev/shm with us, or the
	 * token was tampered with). Without doorbells nothing could ring it:
	 * refuse, with nothing taken, rather than leave it waiting for ever.
	 */
	if (s == -1 && peer_unreachable(m->hdr, token, fd, writer))
		s = -ECONNREFUSED;
	if (s < -1) {
		shmpipe__os_close(fd);
		shmpipe__map_put(m);
		return s;
	}
	err = attach(out, handle_size, m, &g, fd, writer);
	shmpipe__map_put(m);
	if (err == 0)
		shmpipe__hello(*out, s);
	else if (s >= 0)
		shmpipe__os_close(s);
	return err;
}

static int open_end(struct shmpipe__end **out, size_t handle_size, const char *name, bool writer)
{
	int fd;

	if (!out || shmpipe__check_name(name) < 0)
		return -EINVAL;
	fd = shmpipe__os_shm_open(name, 0);
	if (fd < 0)
		return fd;
	/*
	 * A name is only a name: any local user may have created the object
	 * first, with a mode that lets us in, to read what we write or feed
	 * us what we read. Take an end only of our own pipes or root's, as
	 * ssh trusts only its own files; a program that means to share with
	 * another user opens the object itself and uses *_open_fd.
	 */
	if (!shmpipe__os_owner_trusted(fd)) {
		shmpipe__os_close(fd);
		return -EPERM;
	}
	return open_end_owned(out, handle_size, fd, writer);
}

static int open_end_fd(struct shmpipe__end **out, size_t handle_size, int fd, bool writer)
{
	if (!out || fd < 0)
		return -EINVAL;
	/*
	 * A memfd that the sender could still shrink would let it turn our
	 * accesses into SIGBUS: only a size-sealed one is accepted. (Named
	 * objects cannot be sealed; docs/design.md says what that leaves.)
	 */
	if (shmpipe__os_shrinkable(fd))
		return -EPROTO;
	/* Our own description: a dup would share the sender's lock. */
	fd = shmpipe__os_reopen(fd);
	if (fd < 0)
		return fd == -ENOENT ? -EBADF : fd; /* -EOPNOTSUPP: no /proc */
	return open_end_owned(out, handle_size, fd, writer);
}

int shmpipe_writer_create(shmpipe_writer **w, const char *name, const shmpipe_options *opts)
{
	return create_end((struct shmpipe__end **)w, sizeof(shmpipe_writer), name, opts, true);
}

int shmpipe_reader_create(shmpipe_reader **r, const char *name, const shmpipe_options *opts)
{
	return create_end((struct shmpipe__end **)r, sizeof(shmpipe_reader), name, opts, false);
}

int shmpipe_writer_open(shmpipe_writer **w, const char *name)
{
	return open_end((struct shmpipe__end **)w, sizeof(shmpipe_writer), name, true);
}

int shmpipe_reader_open(shmpipe_reader **r, const char *name)
{
	return open_end((struct shmpipe__end **)r, sizeof(shmpipe_reader), name, false);
}

int shmpipe_writer_open_fd(shmpipe_writer **w, int fd)
{
	return open_end_fd((struct shmpipe__end **)w, sizeof(shmpipe_writer), fd, true);
}

int shmpipe_reader_open_fd(shmpipe_reader **r, int fd)
{
	return open_end_fd((struct shmpipe__end **)r, sizeof(shmpipe_reader), fd, false);
}

int shmpipe_writer_fd(const shmpipe_writer *w)
{
	return w ? w->e.fd : -EINVAL;
}

int shmpipe_reader_fd(const shmpipe_reader *r)
{
	return r ? r->e.fd : -EINVAL;
}

int shmpipe_send_fd(int sock, int fd)
{
	if (sock < 0 || fd < 0)
		return -EINVAL;
	return shmpipe__os_send_fd(sock, fd);
}

int shmpipe_recv_fd(int sock)
{
	if (sock < 0)
		return -EINVAL;
	return shmpipe__os_recv_fd(sock);
}
