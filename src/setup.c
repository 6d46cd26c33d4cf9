/*
 * The cold path: creating a pipe, closing its ends, timeouts and stats.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "os.h"

static uint64_t round_up(uint64_t v, uint64_t unit)
{
	return (v + unit - 1) / unit * unit;
}

/* Checks options and fills in the defaults. */
static int parse_options(const shmpipe_options *opts, uint64_t *capacity, unsigned *flags)
{
	*capacity = SHMPIPE_DEFAULT_CAPACITY;
	*flags = 0;
	if (!opts)
		return 0;
	if (opts->capacity > SHMPIPE_MAX_CAPACITY)
		return -EINVAL;
	if (opts->capacity)
		*capacity = opts->capacity;
	if (opts->flags & ~SHMPIPE_RECORDS)
		return -EINVAL;
	/* A record ring must hold at least a frame and 8 bytes of payload. */
	if ((opts->flags & SHMPIPE_RECORDS) && *capacity < 16)
		return -EINVAL;
	*flags = opts->flags;
	return 0;
}

/*
 * Creates a shared object holding a fresh header and a data region for
 * capacity bytes, and maps it. On success the mapping has one reference.
 */
static int map_create(struct shmpipe__map **out, uint64_t capacity, unsigned flags)
{
	uint64_t page = shmpipe__os_page_size();
	uint64_t hdr_size = round_up(sizeof(struct shmpipe__hdr), page);
	uint64_t data_size = round_up(capacity, page);
	struct shmpipe__map *m;
	void *base;
	int fd, err;

	_Static_assert(sizeof(struct shmpipe__hdr) <= 4096, "the header fits in one page");

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	fd = shmpipe__os_shm_anon("shmpipe", hdr_size + data_size);
	if (fd < 0) {
		free(m);
		return fd;
	}
	err = shmpipe__os_map_ring(fd, hdr_size, data_size, &base);
	if (err < 0) {
		shmpipe__os_close(fd);
		free(m);
		return err;
	}

	m->fd = fd;
	m->base = base;
	m->map_len = hdr_size + 2 * data_size;
	m->hdr = base;
	m->data = (uint8_t *)base + hdr_size;
	atomic_init(&m->refs, 1);

	/* The object is new and zero-filled; nobody else can see it yet. */
	m->hdr->version = SHMPIPE__LAYOUT_VERSION;
	m->hdr->header_size = (uint32_t)hdr_size;
	m->hdr->capacity = capacity;
	m->hdr->data_size = data_size;
	m->hdr->flags = flags;
	m->hdr->magic = SHMPIPE__MAGIC;
	*out = m;
	return 0;
}

void shmpipe__map_put(struct shmpipe__map *m)
{
	/* The last user unmaps; acq_rel orders every use before the unmap. */
	if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
		return;
	shmpipe__os_unmap(m->base, m->map_len);
	shmpipe__os_close(m->fd);
	free(m);
}

static void end_init(struct shmpipe__end *e, struct shmpipe__map *m)
{
	memset(e, 0, sizeof(*e));
	e->map = m;
	e->hdr = m->hdr;
	e->data = m->data;
	e->capacity = m->hdr->capacity;
	e->data_size = m->hdr->data_size;
	e->records = (m->hdr->flags & SHMPIPE_RECORDS) != 0;
	e->timeout_ms = -1;
}

int shmpipe_pair(shmpipe_writer **w, shmpipe_reader **r, const shmpipe_options *opts)
{
	struct shmpipe__map *m;
	shmpipe_writer *wr;
	shmpipe_reader *rd;
	uint64_t capacity;
	unsigned flags;
	int err;

	if (!w || !r)
		return -EINVAL;
	err = parse_options(opts, &capacity, &flags);
	if (err < 0)
		return err;

	wr = malloc(sizeof(*wr));
	rd = malloc(sizeof(*rd));
	if (!wr || !rd) {
		err = -ENOMEM;
		goto fail;
	}
	err = map_create(&m, capacity, flags);
	if (err < 0)
		goto fail;
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed); /* one per end */

	end_init(&wr->e, m);
	end_init(&rd->e, m);
	shmpipe__store32_sc(&m->hdr->writer_state, SHMPIPE__END_OPEN);
	shmpipe__store32_sc(&m->hdr->reader_state, SHMPIPE__END_OPEN);
	*w = wr;
	*r = rd;
	return 0;
fail:
	free(wr);
	free(rd);
	return err;
}

int shmpipe_writer_close(shmpipe_writer *w)
{
	if (!w)
		return -EINVAL;
	/*
	 * End of stream. Ordered after our last publish of write_index, so a
	 * reader that sees CLOSED finds every byte (pairs with its
	 * load_acquire); then wake the reader if it sleeps on an empty ring.
	 */
	shmpipe__store32_sc(&w->e.hdr->writer_state, SHMPIPE__END_CLOSED);
	shmpipe__signal(&w->e.hdr->data_event);
	shmpipe__map_put(w->e.map);
	free(w);
	return 0;
}

int shmpipe_reader_close(shmpipe_reader *r)
{
	if (!r)
		return -EINVAL;
	/* A writer asleep on a full ring must learn now that nobody reads. */
	shmpipe__store32_sc(&r->e.hdr->reader_state, SHMPIPE__END_CLOSED);
	shmpipe__signal(&r->e.hdr->space_event);
	shmpipe__map_put(r->e.map);
	free(r);
	return 0;
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

/*
 * A snapshot in which read_index <= write_index <= read_index + capacity:
 * read_index is read before and after write_index, and if it did not move,
 * both values held together at the moment write_index was read.
 */
static int stats(const struct shmpipe__end *e, shmpipe_stats *out)
{
	const struct shmpipe__hdr *h;
	uint64_t r1, w, r2;

	if (!out)
		return -EINVAL;
	h = e->hdr;
	for (int i = 0;; i++) {
		r1 = shmpipe__load_sc(&h->read_index);
		w = shmpipe__load_sc(&h->write_index);
		r2 = shmpipe__load_sc(&h->read_index);
		if (r1 == r2 && r1 <= w && w - r1 <= e->capacity)
			break;
		if (i == 1000) {
			/* A peer racing us this long is wrong: report it sanely. */
			r1 = r2 < w ? r2 : w;
			if (w - r1 > e->capacity)
				r1 = w - e->capacity;
			break;
		}
	}
	out->capacity = e->capacity;
	out->write_index = w;
	out->read_index = r1;
	out->produced = shmpipe__load_sc(&h->produced);
	out->consumed = shmpipe__load_sc(&h->consumed);
	out->producer_waits = shmpipe__load_sc(&h->producer_waits);
	out->consumer_waits = shmpipe__load_sc(&h->consumer_waits);
	return 0;
}

int shmpipe_writer_stats(const shmpipe_writer *w, shmpipe_stats *out)
{
	return w ? stats(&w->e, out) : -EINVAL;
}

int shmpipe_reader_stats(const shmpipe_reader *r, shmpipe_stats *out)
{
	return r ? stats(&r->e, out) : -EINVAL;
}
