/* SPDX-License-Identifier: MIT */
/*
 * The shared object behind a pipe: the options a new one is made with, its
 * header (written once by its creator, read and checked by copy by everyone
 * else), its mapping, and its name.
 *
 * Every pipe is one shared object (a memfd, or a named POSIX shared memory
 * object) with the layout of layout.h. Whatever another process can write
 * there is read once, checked, and copied into the end's own geometry:
 * nothing read from the object later can change where an end reads or
 * writes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "os.h"

/* The longest name after the leading '/'. */
#define SHMPIPE__NAME_MAX 200

static uint64_t round_up(uint64_t v, uint64_t unit)
{
	return (v + unit - 1) / unit * unit;
}

/* Checks options and derives the geometry of a new pipe. */
int shmpipe__parse_options(const shmpipe_options *opts, struct shmpipe__geometry *g)
{
	uint64_t page = shmpipe__os_page_size();

	g->capacity = SHMPIPE_DEFAULT_CAPACITY;
	g->flags = 0;
	g->readers = 1;
	if (opts) {
		if (opts->capacity > SHMPIPE_MAX_CAPACITY)
			return -EINVAL;
		if (opts->capacity)
			g->capacity = opts->capacity;
		if (opts->flags & ~(SHMPIPE_RECORDS | SHMPIPE_SHARE | SHMPIPE_REOPEN))
			return -EINVAL;
		/* A record ring must hold a frame and 8 bytes of payload. */
		if ((opts->flags & SHMPIPE_RECORDS) && g->capacity < SHMPIPE__RECORD_MIN_CAPACITY)
			return -EINVAL;
		if (opts->mode & ~0777u)
			return -EINVAL;
		if (opts->readers > SHMPIPE_READERS_MAX)
			return -EINVAL;
		if (opts->readers > 1)
			g->readers = opts->readers;
		/* Sharing deals records out among several readers. */
		if ((opts->flags & SHMPIPE_SHARE) &&
		    (!(opts->flags & SHMPIPE_RECORDS) || g->readers < 2 ||
		     g->capacity < SHMPIPE__SHARE_MIN_CAPACITY))
			return -EINVAL;
		/* A broadcast reader's place is its own to take again already. */
		if ((opts->flags & SHMPIPE_REOPEN) && g->readers > 1)
			return -EINVAL;
		/* Room for later fields: refused unless zero (shmpipe.h). */
		if (opts->reserved32)
			return -EINVAL;
		for (size_t i = 0; i < sizeof(opts->reserved) / sizeof(opts->reserved[0]); i++)
			if (opts->reserved[i])
				return -EINVAL;
		g->flags = opts->flags;
	}
	_Static_assert(sizeof(struct shmpipe__hdr) <= 4096, "the header fits in one page");
	g->header_size = shmpipe__header_size(g->readers, page);
	g->data_size = round_up(g->capacity, page);
	return 0;
}

/* POSIX shm names: '/', then 1 to SHMPIPE__NAME_MAX characters, no '/'. */
int shmpipe__check_name(const char *name)
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
int shmpipe__map_new(struct shmpipe__map **out, int fd, const struct shmpipe__geometry *g)
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
void shmpipe__header_init(struct shmpipe__hdr *h, const struct shmpipe__geometry *g,
			  const uint8_t *token)
{
	h->version = g->readers > 1 ? SHMPIPE__LAYOUT_BROADCAST : SHMPIPE__LAYOUT_VERSION;
	h->readers = g->readers > 1 ? g->readers : 0;
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
	shmpipe__store_release(&h->magic, SHMPIPE__MAGIC);
}

/*
 * Reads the geometry from a mapped header and checks all of it against
 * itself and the object's size. The values are copied out once: the peer may
 * change the header afterwards, but not what we map or index.
 */
static int header_check(const struct shmpipe__hdr *h, uint64_t size, struct shmpipe__geometry *g)
{
	uint64_t page = shmpipe__os_page_size();

	if (shmpipe__load_acquire(&h->magic) != SHMPIPE__MAGIC)
		return -EPROTO;
	/* One reader and no table, or a table of 2 to SHMPIPE_READERS_MAX places. */
	if (h->version == SHMPIPE__LAYOUT_VERSION && h->readers == 0)
		g->readers = 1;
	else if (h->version == SHMPIPE__LAYOUT_BROADCAST && h->readers > 1 &&
		 h->readers <= SHMPIPE_READERS_MAX)
		g->readers = h->readers;
	else
		return -EPROTO;
	g->header_size = h->header_size;
	g->capacity = h->capacity;
	g->data_size = h->data_size;
	g->flags = h->flags;
	if (g->header_size != shmpipe__header_size(g->readers, page) || g->capacity == 0 ||
	    g->capacity > SHMPIPE_MAX_CAPACITY || g->data_size != round_up(g->capacity, page) ||
	    (g->flags & ~(SHMPIPE_RECORDS | SHMPIPE_SHARE | SHMPIPE_REOPEN)) ||
	    ((g->flags & SHMPIPE_REOPEN) && g->readers > 1) ||
	    ((g->flags & SHMPIPE_RECORDS) && g->capacity < SHMPIPE__RECORD_MIN_CAPACITY) ||
	    ((g->flags & SHMPIPE_SHARE) && (!(g->flags & SHMPIPE_RECORDS) || g->readers < 2 ||
					    g->capacity < SHMPIPE__SHARE_MIN_CAPACITY)) ||
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
int shmpipe__object_check(int fd, struct shmpipe__geometry *g, int wait_ms, struct shmpipe__hdr *h)
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
			if (err == 0 && shmpipe__load_relaxed(&h->magic) != 0)
				err = shmpipe__os_read_at(fd, h, sizeof(*h), 0);
			if (err < 0)
				return err;
			err = header_check(h, (uint64_t)size, g);
			if (err == 0 || shmpipe__load_relaxed(&h->magic) != 0)
				return err;
		}
		if (waited >= wait_ms)
			return -EPROTO;
		shmpipe__os_sleep_ms(1);
	}
}

int shmpipe_unlink(const char *name)
{
	if (shmpipe__check_name(name) < 0)
		return -EINVAL;
	return shmpipe__os_shm_unlink(name);
}
