/* SPDX-License-Identifier: MIT */
/*
 * The cold path: creating and attaching to pipes, closing their ends,
 * timeouts and stats.
 *
 * Every pipe is one shared object (a memfd, or a named POSIX shared memory
 * object) with the layout of layout.h. Each end has its own open file
 * description of it, on which it holds its liveness lock (os.h) for as long
 * as it is attached, and its own view of the geometry, read and checked once
 * when it attaches: nothing read from the object later can change where the
 * end reads or writes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "os.h"

/* How long an opener waits for a creator that has not finished its header. */
#define SHMPIPE__INIT_WAIT_MS 200

/* The longest name after the leading '/'. */
#define SHMPIPE__NAME_MAX 200

static uint64_t round_up(uint64_t v, uint64_t unit)
{
	return (v + unit - 1) / unit * unit;
}

/* The geometry of a pipe, as created or as read and checked at attach. */
struct geometry {
	uint64_t header_size;
	uint64_t capacity;
	uint64_t data_size;
	unsigned flags;
};

/* Checks options and derives the geometry of a new pipe. */
static int parse_options(const shmpipe_options *opts, struct geometry *g)
{
	uint64_t page = shmpipe__os_page_size();

	g->capacity = SHMPIPE_DEFAULT_CAPACITY;
	g->flags = 0;
	if (opts) {
		if (opts->capacity > SHMPIPE_MAX_CAPACITY)
			return -EINVAL;
		if (opts->capacity)
			g->capacity = opts->capacity;
		if (opts->flags & ~SHMPIPE_RECORDS)
			return -EINVAL;
		/* A record ring must hold a frame and 8 bytes of payload. */
		if ((opts->flags & SHMPIPE_RECORDS) && g->capacity < 16)
			return -EINVAL;
		if (opts->mode & ~0777u)
			return -EINVAL;
		/* Room for later fields: refused unless zero (shmpipe.h). */
		for (size_t i = 0; i < sizeof(opts->reserved) / sizeof(opts->reserved[0]); i++)
			if (opts->reserved[i])
				return -EINVAL;
		g->flags = opts->flags;
	}
	_Static_assert(sizeof(struct shmpipe__hdr) <= 4096, "the header fits in one page");
	g->header_size = round_up(sizeof(struct shmpipe__hdr), page);
	g->data_size = round_up(g->capacity, page);
	return 0;
}

/* POSIX shm names: '/', then 1 to SHMPIPE__NAME_MAX characters, no '/'. */
static int check_name(const char *name)
{
	size_t n;

	if (!name || name[0] != '/')
		return -EINVAL;
	n = strnlen(name + 1, SHMPIPE__NAME_MAX + 1);
	if (n == 0 || n > SHMPIPE__NAME_MAX || memchr(name + 1, '/', n))
		return -EINVAL;
	return 0;
}

/* Maps the object behind fd with geometry g; one reference. */
static int map_new(struct shmpipe__map **out, int fd, const struct geometry *g)
{
	struct shmpipe__map *m = calloc(1, sizeof(*m));
	void *base;
	int err;

	if (!m)
		return -ENOMEM;
	err = shmpipe__os_map_ring(fd, g->header_size, g->data_size, &base);
	if (err < 0) {
		free(m);
		return err;
	}
	m->base = base;
	m->map_len = g->header_size + 2 * g->data_size;
	m->hdr = base;
	m->data = (uint8_t *)base + g->header_size;
	atomic_init(&m->refs, 1);
	*out = m;
	return 0;
}

void shmpipe__map_put(struct shmpipe__map *m)
{
	/* The last user unmaps; acq_rel orders every use before the unmap. */
	if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
		return;
	shmpipe__os_unmap(m->base, m->map_len);
	free(m);
}

/*
 * Writes a fresh header into a new, zero-filled object nobody attached to;
 * token names the creating end's rendezvous (NULL for a pair: none).
 */
static void header_init(struct shmpipe__hdr *h, const struct geometry *g, const uint8_t *token)
{
	h->version = SHMPIPE__LAYOUT_VERSION;
	h->header_size = (uint32_t)g->header_size;
	h->capacity = g->capacity;
	h->data_size = g->data_size;
	h->flags = g->flags;
	if (token)
		memcpy(h->token, token, sizeof(h->token));
	/*
	 * The magic goes last, with release: an opener that sees it (with
	 * acquire) sees the rest of the header too.
	 */
	atomic_store_explicit((_Atomic uint64_t *)&h->magic, SHMPIPE__MAGIC, memory_order_release);
}

/*
 * Reads the geometry from a mapped header and checks all of it against
 * itself and the object's size. The values are copied out once: the peer may
 * change the header afterwards, but not what we map or index.
 */
static int header_check(const struct shmpipe__hdr *h, uint64_t size, struct geometry *g)
{
	uint64_t page = shmpipe__os_page_size();

	if (atomic_load_explicit((_Atomic uint64_t *)&h->magic, memory_order_acquire) !=
		SHMPIPE__MAGIC ||
	    h->version != SHMPIPE__LAYOUT_VERSION)
		return -EPROTO;
	g->header_size = h->header_size;
	g->capacity = h->capacity;
	g->data_size = h->data_size;
	g->flags = h->flags;
	if (g->header_size != round_up(sizeof(struct shmpipe__hdr), page) || g->capacity == 0 ||
	    g->capacity > SHMPIPE_MAX_CAPACITY || g->data_size != round_up(g->capacity, page) ||
	    (g->flags & ~SHMPIPE_RECORDS) || ((g->flags & SHMPIPE_RECORDS) && g->capacity < 16) ||
	    size != g->header_size + g->data_size)
		return -EPROTO;
	return 0;
}

/*
 * Reads the geometry of the object behind fd, waiting up to about wait_ms
 * for a creator that has made the object but not yet its header. The header
 * is read with a copy (into h, for the caller), never through a mapping:
 * whoever owns the object may shrink it at any moment, and a mapping would
 * turn our next look into SIGBUS.
 */
static int object_check(int fd, struct geometry *g, int wait_ms, struct shmpipe__hdr *h)
{
	uint64_t page = shmpipe__os_page_size();

	for (int waited = 0;; waited++) {
		int64_t size = shmpipe__os_size(fd);
		int err;

		if (size < 0)
			return (int)size;
		if ((uint64_t)size >= page) {
			/*
			 * The creator writes the magic last, with release. One
			 * copy need not read its bytes in order; a second one,
			 * made after the first saw the magic, sees all that came
			 * before it.
			 */
			err = shmpipe__os_read_at(fd, h, sizeof(*h), 0);
			if (err == 0 && h->magic != 0)
				err = shmpipe__os_read_at(fd, h, sizeof(*h), 0);
			if (err < 0)
				return err;
			err = header_check(h, (uint64_t)size, g);
			if (err == 0 || h->magic != 0)
				return err;
		}
		if (waited >= wait_ms)
			return -EPROTO;
		shmpipe__os_sleep_ms(1);
	}
}

static void end_init(struct shmpipe__end *e, struct shmpipe__map *m, const struct geometry *g,
		     int fd, bool writer)
{
	memset(e, 0, sizeof(*e));
	e->map = m;
	e->hdr = m->hdr;
	e->data = m->data;
	e->capacity = g->capacity;
	e->data_size = g->data_size;
	e->records = (g->flags & SHMPIPE_RECORDS) != 0;
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
	atomic_init(&e->interrupt, 0);
	e->bell = e->note = e->peer_bell = e->peer_guard = e->own_ring = -1;
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
static int end_take(struct shmpipe__end *e, struct shmpipe__map *m, const struct geometry *g,
		    int fd, bool writer)
{
	struct shmpipe__hdr *h = m->hdr;
	shmpipe__u32 *state = writer ? &h->writer_state : &h->reader_state;
	uint32_t absent = SHMPIPE__END_ABSENT;
	uint64_t w, r;
	int err;

	err = shmpipe__os_lock(fd, writer ? SHMPIPE__WRITER_LOCK : SHMPIPE__READER_LOCK);
	if (err < 0)
		return err;
	r = shmpipe__load_acquire(&h->read_index);
	w = shmpipe__load_acquire(&h->write_index);
	if (r > w || w - r > g->capacity)
		return -EPROTO;
	e->pos = writer ? w : r;
	e->peer = writer ? r : w;
	e->off = e->pos % g->data_size;
	e->ops = shmpipe__load_relaxed(writer ? &h->produced : &h->consumed);
	/* Pairs with the peer's load of our state in its ready() and checks. */
	if (!shmpipe__cas32_sc(state, &absent, SHMPIPE__END_OPEN))
		return -EBUSY;
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
		  const struct geometry *g, int fd, bool writer)
{
	struct shmpipe__end *e = malloc(handle_size);
	int err;

	if (!e) {
		shmpipe__os_close(fd);
		return -ENOMEM;
	}
	end_init(e, m, g, fd, writer);
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
	struct geometry g;
	int fd, rfd, mfd, err;

	if (!w || !r)
		return -EINVAL;
	err = parse_options(opts, &g);
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
	err = map_new(&m, mfd, &g);
	shmpipe__os_close(mfd);
	if (err < 0) {
		shmpipe__os_close(fd);
		shmpipe__os_close(rfd);
		return err;
	}
	header_init(m->hdr, &g, NULL);
	err = attach(&we, sizeof(shmpipe_writer), m, &g, fd, true);
	if (err < 0) {
		shmpipe__os_close(rfd);
		shmpipe__map_put(m);
		return err;
	}
	err = attach(&re, sizeof(shmpipe_reader), m, &g, rfd, false);
	shmpipe__map_put(m); /* the ends hold their references */
	if (err == 0) {
		err = shmpipe__pair_meet(we, re);
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
	struct geometry g;
	uint8_t token[SHMPIPE__TOKEN_LEN];
	int fd, err, listener;

	if (!out || (name && check_name(name) < 0))
		return -EINVAL;
	err = parse_options(opts, &g);
	if (err < 0)
		return err;
	/* Listening before the header is out: an opener may connect at once. */
	listener = shmpipe__listen(token);
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
	err = map_new(&m, fd, &g);
	if (err == 0) {
		header_init(m->hdr, &g, token);
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
	struct geometry g;
	struct shmpipe__hdr h;
	uint8_t token[SHMPIPE__TOKEN_LEN];
	int err = object_check(fd, &g, SHMPIPE__INIT_WAIT_MS, &h);
	int s = -1;

	if (err == 0)
		err = map_new(&m, fd, &g);
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

	if (!out || check_name(name) < 0)
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

int shmpipe_unlink(const char *name)
{
	if (check_name(name) < 0)
		return -EINVAL;
	return shmpipe__os_shm_unlink(name);
}

bool shmpipe__peer_died(const struct shmpipe__end *e)
{
	/* Pairs with the peer's CAS to OPEN, made after taking its lock. */
	if (shmpipe__load32_acquire(e->peer_state) != SHMPIPE__END_OPEN)
		return false;
	return shmpipe__os_lock_held(e->fd, e->peer_lock) == 0;
}

/*
 * Lets go of this process's copy of an end and leaves the end as it is: its
 * doorbells, its description (whose last reference keeps its lock), its
 * mapping.
 */
static int end_drop(struct shmpipe__end *e)
{
	shmpipe__doorbell_close(e);
	shmpipe__os_close(e->fd);
	shmpipe__map_put(e->map);
	free(e);
	return 0;
}

/*
 * Ends an end: its state (CLOSED, or ABORTED), a wake-up for the peer, its
 * doorbells, its lock and mapping.
 */
static int end_close(struct shmpipe__end *e, shmpipe__u32 *state, uint32_t how,
		     shmpipe__u32 *peer_event)
{
	/*
	 * For the writer, ordered after its last publish of write_index, so a
	 * reader that sees CLOSED finds every byte; then wake the peer if it
	 * waits (on an empty ring, or a full one).
	 */
	shmpipe__store32_sc(state, how);
	shmpipe__signal(e, peer_event);
	return end_drop(e); /* the last reference releases the liveness lock */
}

int shmpipe_writer_drop(shmpipe_writer *w)
{
	if (!w)
		return -EINVAL;
	return end_drop(&w->e);
}

int shmpipe_reader_drop(shmpipe_reader *r)
{
	if (!r)
		return -EINVAL;
	return end_drop(&r->e);
}

int shmpipe_writer_close(shmpipe_writer *w)
{
	if (!w)
		return -EINVAL;
	return end_close(&w->e, &w->e.hdr->writer_state, SHMPIPE__END_CLOSED,
			 &w->e.hdr->data_event);
}

int shmpipe_writer_abort(shmpipe_writer *w)
{
	if (!w)
		return -EINVAL;
	return end_close(&w->e, &w->e.hdr->writer_state, SHMPIPE__END_ABORTED,
			 &w->e.hdr->data_event);
}

int shmpipe_reader_close(shmpipe_reader *r)
{
	if (!r)
		return -EINVAL;
	/* A writer asleep on a full ring must learn now that nobody reads. */
	return end_close(&r->e, &r->e.hdr->reader_state, SHMPIPE__END_CLOSED,
			 &r->e.hdr->space_event);
}

static int set_timeout(struct shmpipe__end *e, int timeout_ms)
{
	if (timeout_ms < -1)
		return -EINVAL;
	e->timeout_ms = timeout_ms;
	return 0;
}

int shmpipe_writer_set_timeout(shmpipe_writer *w, int timeout_ms)
{
	return w ? set_timeout(&w->e, timeout_ms) : -EINVAL;
}

int shmpipe_reader_set_timeout(shmpipe_reader *r, int timeout_ms)
{
	return r ? set_timeout(&r->e, timeout_ms) : -EINVAL;
}

static int set_spin(struct shmpipe__end *e, int spin_us)
{
	if (spin_us < -1 || spin_us > SHMPIPE_SPIN_MAX_US)
		return -EINVAL;
	e->spin_ns = spin_us < 0 ? SHMPIPE__SPIN_NS : (uint32_t)spin_us * 1000u;
	return 0;
}

/*
 * Raises the flag, then kicks the end's own doorbell: a waiter that looked
 * at the flag before it was raised is in (or about to enter) its wait on the
 * doorbell, which the byte ends; one that looks after sees the flag.
 */
static int interrupt_end(struct shmpipe__end *e)
{
	shmpipe__store32_sc(&e->interrupt, 1);
	/*
	 * A creating end that still waits for its peer waits in accept(2):
	 * knock on the rendezvous too. (The flag may be stale by the time we
	 * knock, and a knock on a closed name is harmless; the token does not
	 * change while the flag is set.)
	 */
	if (shmpipe__load32_relaxed(&e->listening))
		shmpipe__os_knock(e->token, sizeof(e->token));
	return shmpipe__os_kick(e->bell);
}

int shmpipe_writer_pollfd(shmpipe_writer *w)
{
	return w ? w->e.pollfd : -EINVAL;
}

int shmpipe_reader_pollfd(shmpipe_reader *r)
{
	return r ? r->e.pollfd : -EINVAL;
}

int shmpipe_writer_interrupt(shmpipe_writer *w)
{
	return w ? interrupt_end(&w->e) : -EINVAL;
}

int shmpipe_reader_interrupt(shmpipe_reader *r)
{
	return r ? interrupt_end(&r->e) : -EINVAL;
}

int shmpipe_writer_set_spin(shmpipe_writer *w, int spin_us)
{
	return w ? set_spin(&w->e, spin_us) : -EINVAL;
}

int shmpipe_reader_set_spin(shmpipe_reader *r, int spin_us)
{
	return r ? set_spin(&r->e, spin_us) : -EINVAL;
}

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
	out->capacity = (size_t)e->capacity;
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
	snapshot(w->e.hdr, w->e.capacity, out);
	return 0;
}

int shmpipe_reader_stats(const shmpipe_reader *r, shmpipe_stats *out)
{
	if (!r || !out)
		return -EINVAL;
	snapshot(r->e.hdr, r->e.capacity, out);
	return 0;
}

/*
 * Opens a named pipe as an observer: read-only, its header checked (waiting
 * up to wait_ms for a creator still writing it), no end taken. Never mapped:
 * the object may belong to anyone, who could shrink it under a mapping and
 * kill us with SIGBUS. On success the caller closes *fd.
 */
static int observe(const char *name, int wait_ms, int *fd, struct geometry *g)
{
	struct shmpipe__hdr h;
	int err;

	if (check_name(name) < 0)
		return -EINVAL;
	*fd = shmpipe__os_shm_open(name, 1);
	if (*fd < 0)
		return *fd;
	err = object_check(*fd, g, wait_ms, &h);
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
	struct geometry g;
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

_Static_assert(SHMPIPE_END_ABSENT == SHMPIPE__END_ABSENT && SHMPIPE_END_OPEN == SHMPIPE__END_OPEN &&
		   SHMPIPE_END_CLOSED == SHMPIPE__END_CLOSED,
	       "the public end states are the shared header's");

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
	struct geometry g;
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
