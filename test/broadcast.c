/* SPDX-License-Identifier: MIT */
/*
 * Description: broadcast (options.readers = N > 1), one writer and several
 * readers in threads of one process, each reader checking every byte it
 * gets against the stream pattern at its absolute offset.
 *
 *   options     readers above SHMPIPE_READERS_MAX, shmpipe_reader_create of a
 *               broadcast pipe, shmpipe_writer_wait_readers' -EINVAL; a
 *               pipe with one reader stays one.
 *   limit       the N+1th reader gets -EBUSY; a place left by a reader
 *               that closed takes the next, which starts where the writer
 *               is, many times over; 64 readers at once.
 *   join        a reader that comes mid-stream gets the stream from its
 *               stats' read_index right after it came, contiguous, and
 *               that position lies between what was written before it came
 *               and what was being written after; also in record mode,
 *               where it starts at a whole record.
 *   first_reader  the writer waits until the first reader comes.
 *   epipe       one reader of two
 *               closing (also while the writer waits on it) lets the writer
 *               go on; the last one closing gets it -EPIPE.
 *   eof/abort   end of stream, or an abort, after the data reaches every
 *               reader, also the ones asleep on an empty ring.
 *   records     records broadcast whole, each reader with its own
 *               read/peek/consume and its own -EMSGSIZE.
 *   stats       each reader's own position and counts; the writer's
 *               produced, slowest position and sums over attached readers.
 *   stress      (argument "stress CAPACITY [MiB]") SHMPIPE_STRESS_MB MiB
 *               (1024 unless said otherwise) to 4 readers, one from
 *               shmpipe_pair and three from shmpipe_reader_open_fd, after
 *               shmpipe_writer_wait_readers(4); writes of mixed sizes
 *               (write, writev, reserve/commit), reads of mixed sizes (read,
 *               peek/consume); every reader checks every byte, the total, and
 *               its stats; the writer's stats add up.
 *
 * usage: broadcast [TEST...]             the unit tests named (all without)
 *        broadcast stress CAPACITY [MiB]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/uio.h>

#include "test.h"

/* ---- helpers ------------------------------------------------------------ */

static shmpipe_options bc_opts(size_t capacity, unsigned readers, unsigned flags)
{
	shmpipe_options o = test_opts(capacity);

	o.readers = readers;
	o.flags = flags;
	return o;
}

static void bc_pair(shmpipe_writer **w, shmpipe_reader **r, size_t capacity, unsigned readers,
		    unsigned flags)
{
	shmpipe_options o = bc_opts(capacity, readers, flags);

	ASSERT_OK(shmpipe_pair(w, r, &o));
}

/*
 * One more reader of w's pipe, through the writer's descriptor. -EAGAIN (the
 * writer's socket not answered for half a second: a writer thread busy on a
 * loaded machine) is documented as worth another try; ten in a row fail.
 */
static shmpipe_reader *bc_join(shmpipe_writer *w)
{
	shmpipe_reader *r = NULL;
	int err, tries = 0;

	while ((err = shmpipe_reader_open_fd(&r, shmpipe_writer_fd(w))) == -EAGAIN && ++tries < 10)
		;
	ASSERT_OK(err);
	ASSERT_NOT_NULL(r);
	return r;
}

/* Polls cond (an atomic int) until it is nonzero, for at most ms. */
static void bc_await(atomic_int *cond, int64_t ms, const char *what)
{
	int64_t end = test_now_ms() + ms * TEST_WATCHDOG_SCALE;

	while (!atomic_load(cond)) {
		if (test_now_ms() > end)
			TEST_FAIL("%s: not after %" PRId64 " ms", what, ms * TEST_WATCHDOG_SCALE);
		test_sleep_ms(1);
	}
}

/*
 * A reader thread that reads from stream offset start to the end of the
 * stream (or an error), checking every byte, by read or by peek/consume.
 */
struct drain {
	pthread_t t;
	shmpipe_reader *r;
	uint64_t seed, start;
	int peek;
	uint64_t end; /* stream offset after the last byte read */
	ssize_t last; /* what the call that stopped it returned */
};

static void *drain_main(void *arg)
{
	struct drain *d = arg;
	uint8_t buf[3001];
	uint64_t off = d->start;
	ssize_t ret;

	for (;;) {
		if (d->peek) {
			const void *p;

			ret = shmpipe_peek(d->r, &p);
			if (ret <= 0)
				break;
			ASSERT_PATTERN(p, (size_t)ret, d->seed, off);
			ASSERT_OK(shmpipe_consume(d->r, (size_t)ret));
		} else {
			ret = shmpipe_read(d->r, buf, sizeof(buf));
			if (ret <= 0)
				break;
			ASSERT_PATTERN(buf, (size_t)ret, d->seed, off);
		}
		off += (uint64_t)ret;
	}
	d->end = off;
	d->last = ret;
	return NULL;
}

static void drain_start(struct drain *d, shmpipe_reader *r, uint64_t seed, uint64_t start, int peek)
{
	memset(d, 0, sizeof(*d));
	d->r = r;
	d->seed = seed;
	d->start = start;
	d->peek = peek;
	ASSERT_EQ(pthread_create(&d->t, NULL, drain_main, d), 0);
}

/* Joins the thread: it must have read up to end, then got last. */
static void drain_join(struct drain *d, uint64_t end, ssize_t last)
{
	ASSERT_EQ(pthread_join(d->t, NULL), 0);
	ASSERT_EQ(d->end, end);
	ASSERT_ERR(d->last, last);
}

/* A writer thread: len bytes of the pattern from off, in writes of chunk. */
struct feed {
	pthread_t t;
	shmpipe_writer *w;
	uint64_t seed, off, len;
	size_t chunk;
	uint64_t written; /* bytes the calls returned */
	ssize_t last;	  /* the call that stopped it, or 0 */
	atomic_int done;
};

static void *feed_main(void *arg)
{
	struct feed *f = arg;
	uint8_t *buf = malloc(f->chunk);

	ASSERT_NOT_NULL(buf);
	f->last = 0;
	while (f->written < f->len) {
		size_t n = f->chunk;
		ssize_t ret;

		if (n > f->len - f->written)
			n = (size_t)(f->len - f->written);
		test_pattern_fill(buf, n, f->seed, f->off + f->written);
		ret = shmpipe_write(f->w, buf, n);
		if (ret <= 0) {
			f->last = ret;
			break;
		}
		f->written += (uint64_t)ret;
		if ((size_t)ret < n) {
			f->last = shmpipe_write(f->w, buf, 1); /* the next call says why */
			break;
		}
	}
	free(buf);
	atomic_store(&f->done, 1);
	return NULL;
}

static void feed_start(struct feed *f, shmpipe_writer *w, uint64_t seed, uint64_t off, uint64_t len,
		       size_t chunk)
{
	memset(f, 0, sizeof(*f));
	f->w = w;
	f->seed = seed;
	f->off = off;
	f->len = len;
	f->chunk = chunk;
	atomic_init(&f->done, 0);
	ASSERT_EQ(pthread_create(&f->t, NULL, feed_main, f), 0);
}

static void feed_join(struct feed *f)
{
	ASSERT_EQ(pthread_join(f->t, NULL), 0);
}

/*
 * A stall detector, for tests where a lost wake-up would hang: fails, saying
 * what stopped, if *progress does not move for `seconds` (scaled in
 * sanitized builds), rather than waiting for the watchdog.
 */
struct stall {
	pthread_t t;
	atomic_uint_fast64_t *progress;
	const char *what;
	int seconds;
	atomic_int stop;
};

static void *stall_main(void *arg)
{
	struct stall *st = arg;
	uint64_t last = atomic_load(st->progress);
	int64_t since = test_now_ms();

	while (!atomic_load(&st->stop)) {
		uint64_t now = atomic_load(st->progress);

		if (now != last) {
			last = now;
			since = test_now_ms();
		} else if (test_now_ms() - since >
			   (int64_t)st->seconds * 1000 * TEST_WATCHDOG_SCALE) {
			TEST_FAIL("%s: stuck at %" PRIu64 " for %d s (a lost wake-up?)", st->what,
				  now, st->seconds * TEST_WATCHDOG_SCALE);
		}
		test_sleep_ms(10);
	}
	return NULL;
}

static void stall_start(struct stall *st, atomic_uint_fast64_t *progress, const char *what)
{
	st->progress = progress;
	st->what = what;
	st->seconds = 5;
	atomic_init(&st->stop, 0);
	ASSERT_EQ(pthread_create(&st->t, NULL, stall_main, st), 0);
}

static void stall_stop(struct stall *st)
{
	atomic_store(&st->stop, 1);
	ASSERT_EQ(pthread_join(st->t, NULL), 0);
}

/* ---- options -------------------------------------------------------------- */

static void test_options(void)
{
	shmpipe_options o = bc_opts(4096, SHMPIPE_READERS_MAX + 1, 0);
	shmpipe_writer *w = NULL;
	shmpipe_reader *r = NULL, *r2 = NULL;

	/* More places than the table takes. */
	ASSERT_ERR(shmpipe_pair(&w, &r, &o), -EINVAL);
	ASSERT_ERR(shmpipe_writer_create(&w, NULL, &o), -EINVAL);
	o.readers = UINT32_MAX;
	ASSERT_ERR(shmpipe_pair(&w, &r, &o), -EINVAL);
	/* The reserved word next to readers must be zero. */
	o = bc_opts(4096, 2, 0);
	o.reserved32 = 1;
	ASSERT_ERR(shmpipe_pair(&w, &r, &o), -EINVAL);
	ASSERT_PTR_EQ(w, NULL);
	ASSERT_PTR_EQ(r, NULL);

	/* Readers come to the writer: a reader may not create a broadcast pipe. */
	for (unsigned n = 2; n <= SHMPIPE_READERS_MAX; n += 62) {
		o = bc_opts(4096, n, 0);
		ASSERT_ERR(shmpipe_reader_create(&r, NULL, &o), -EINVAL);
		ASSERT_PTR_EQ(r, NULL);
		o.flags = SHMPIPE_RECORDS;
		ASSERT_ERR(shmpipe_reader_create(&r, NULL, &o), -EINVAL);
	}
	/* ...while 0 and 1 are the classic single reader, which it may. */
	for (unsigned n = 0; n <= 1; n++) {
		o = bc_opts(4096, n, 0);
		ASSERT_OK(shmpipe_reader_create(&r, NULL, &o));
		ASSERT_OK(shmpipe_reader_close(r));
		r = NULL;
	}

	/* One reader (0 or 1): one reader only; wait_readers takes 0 or 1. */
	for (unsigned n = 0; n <= 1; n++) {
		bc_pair(&w, &r, 4096, n, 0);
		ASSERT_ERR(shmpipe_reader_open_fd(&r2, shmpipe_writer_fd(w)), -EBUSY);
		ASSERT_ERR(shmpipe_writer_wait_readers(w, 2), -EINVAL);
		ASSERT_ERR(shmpipe_writer_wait_readers(w, SHMPIPE_READERS_MAX), -EINVAL);
		ASSERT_EQ(shmpipe_writer_wait_readers(w, 1), 1);
		ASSERT_EQ(shmpipe_writer_wait_readers(w, 0), 1);
		ASSERT_OK(shmpipe_writer_options(w, &o));
		ASSERT_LE(o.readers, 1);
		ASSERT_OK(shmpipe_reader_close(r));
		ASSERT_OK(shmpipe_writer_close(w));
	}

	/* wait_readers: n above the places is -EINVAL; NULL too. */
	bc_pair(&w, &r, 4096, 3, 0);
	/* Both ends say what the pipe takes. */
	memset(&o, 0xa5, sizeof(o));
	ASSERT_OK(shmpipe_writer_options(w, &o));
	ASSERT_EQ(o.readers, 3);
	ASSERT_EQ(o.capacity, 4096);
	ASSERT_EQ(o.reserved32, 0);
	memset(&o, 0xa5, sizeof(o));
	ASSERT_OK(shmpipe_reader_options(r, &o));
	ASSERT_EQ(o.readers, 3);
	ASSERT_ERR(shmpipe_writer_wait_readers(w, 4), -EINVAL);
	ASSERT_ERR(shmpipe_writer_wait_readers(w, SHMPIPE_READERS_MAX + 1), -EINVAL);
	ASSERT_ERR(shmpipe_writer_wait_readers(NULL, 1), -EINVAL);
	ASSERT_EQ(shmpipe_writer_wait_readers(w, 0), 1);
	ASSERT_EQ(shmpipe_writer_wait_readers(w, 1), 1);
	/* Not enough readers: the writer's timeout applies. */
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_ERR(shmpipe_writer_wait_readers(w, 2), -EAGAIN);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 30));
	{
		int64_t t0 = test_now_ms();

		ASSERT_ERR(shmpipe_writer_wait_readers(w, 3), -ETIMEDOUT);
		ASSERT_GE(test_now_ms() - t0, 25);
	}
	r2 = bc_join(w);
	ASSERT_EQ(shmpipe_writer_wait_readers(w, 2), 2);
	ASSERT_OK(shmpipe_reader_close(r2));
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_writer_close(w));
}

/* ---- wait_readers blocks until readers come -------------------------------- */

struct late {
	int fd;
	int delay_ms;
	shmpipe_reader *r;
};

static void *late_join(void *arg)
{
	struct late *l = arg;

	test_sleep_ms(l->delay_ms);
	ASSERT_OK(shmpipe_reader_open_fd(&l->r, l->fd));
	return NULL;
}

static void test_wait_readers(void)
{
	struct late l[3];
	pthread_t t[3];
	shmpipe_writer *w;
	shmpipe_reader *r;
	int64_t t0;

	bc_pair(&w, &r, 4096, 4, 0);
	for (int i = 0; i < 3; i++) {
		l[i].fd = shmpipe_writer_fd(w);
		l[i].delay_ms = 20 * (i + 1);
		l[i].r = NULL;
		ASSERT_EQ(pthread_create(&t[i], NULL, late_join, &l[i]), 0);
	}
	t0 = test_now_ms();
	ASSERT_EQ(shmpipe_writer_wait_readers(w, 4), 4);
	ASSERT_GE(test_now_ms() - t0, 50); /* the last came after 60 ms */
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(pthread_join(t[i], NULL), 0);
	/* Every one came before the first byte: every one gets it. */
	test_write_pattern(w, 11, 0, 3000);
	test_read_pattern(r, 11, 0, 3000);
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(test_rstats(l[i].r).read_index, 0);
		test_read_pattern(l[i].r, 11, 0, 3000);
		ASSERT_OK(shmpipe_reader_close(l[i].r));
	}
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_writer_close(w));
}

/* ---- limit and place reuse --------------------------------------------------- */

static void test_limit(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r[3], *extra = NULL;
	uint64_t pos = 0, since[3] = {0, 0, 0};
	const uint64_t seed = 21;

	bc_pair(&w, &r[0], 4096, 3, 0);
	r[1] = bc_join(w);
	r[2] = bc_join(w);
	ASSERT_EQ(shmpipe_writer_wait_readers(w, 3), 3);
	ASSERT_ERR(shmpipe_reader_open_fd(&extra, shmpipe_writer_fd(w)), -EBUSY);
	ASSERT_PTR_EQ(extra, NULL);
	ASSERT_ERR(shmpipe_reader_open_fd(&extra, shmpipe_writer_fd(w)), -EBUSY);

	test_write_pattern(w, seed, pos, 100);
	pos += 100;

	/*
	 * Many times: one reader closes; the place is free again, and the
	 * next reader starts where the writer is. The others keep up.
	 */
	for (int round = 0; round < 300; round++) {
		int k = round % 3;
		size_t n = 1 + (size_t)(test_mix64((uint64_t)round) % 4000);
		shmpipe_stats s;

		/* Everyone reads up to pos; then k leaves and comes back. */
		for (int i = 0; i < 3; i++) {
			test_read_pattern(r[i], seed, since[i], (size_t)(pos - since[i]));
			since[i] = pos;
		}
		ASSERT_OK(shmpipe_reader_close(r[k]));
		if (round & 1) {
			/* The writer goes on with the two left, and the place waits. */
			ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
			ASSERT_ERR(shmpipe_writer_wait_readers(w, 3), -EAGAIN);
			ASSERT_OK(shmpipe_writer_set_timeout(w, -1));
			test_write_pattern(w, seed, pos, n);
			pos += n;
		}
		/* Free at once: the writer need not have done anything since. */
		r[k] = bc_join(w);
		ASSERT_EQ(shmpipe_writer_wait_readers(w, 3), 3);
		ASSERT_ERR(shmpipe_reader_open_fd(&extra, shmpipe_writer_fd(w)), -EBUSY);
		s = test_rstats(r[k]);
		ASSERT_EQ(s.read_index, pos);
		ASSERT_EQ(s.write_index, pos);
		ASSERT_EQ(s.consumed, 0); /* the place's counts are the new reader's */
		ASSERT_EQ(s.consumer_waits, 0);
		since[k] = pos;
		/* What is written now reaches every one, the newcomer too. */
		test_write_pattern(w, seed, pos, 10);
		pos += 10;
	}
	/*
	 * A reader that comes and goes at once frees its place at once too,
	 * whatever the writer does meanwhile (here: nothing).
	 */
	for (int round = 0; round < 10; round++) {
		ASSERT_OK(shmpipe_reader_close(r[2]));
		r[2] = bc_join(w);
		since[2] = pos;
		ASSERT_EQ(test_rstats(r[2]).read_index, pos);
	}
	test_write_pattern(w, seed, pos, 1000);
	pos += 1000;
	for (int i = 0; i < 3; i++) {
		test_read_pattern(r[i], seed, since[i], (size_t)(pos - since[i]));
		ASSERT_OK(shmpipe_reader_close(r[i]));
	}
	ASSERT_ERR(shmpipe_write(w, "x", 1), -EPIPE);
	ASSERT_OK(shmpipe_writer_close(w));
}

/* As many readers as the table takes, all at once. */
static void test_max_readers(void)
{
	shmpipe_reader *r[SHMPIPE_READERS_MAX], *extra = NULL;
	struct late l[SHMPIPE_READERS_MAX];
	pthread_t t[SHMPIPE_READERS_MAX];
	shmpipe_writer *w;
	const uint64_t seed = 64;

	bc_pair(&w, &r[0], 8192, SHMPIPE_READERS_MAX, 0);
	/*
	 * They come at once, from threads, while the writer waits for them
	 * (and meets them: a writer that makes no call leaves them queued at
	 * its rendezvous, which takes only so many).
	 */
	for (int i = 1; i < SHMPIPE_READERS_MAX; i++) {
		l[i].fd = shmpipe_writer_fd(w);
		l[i].delay_ms = i % 3;
		l[i].r = NULL;
		ASSERT_EQ(pthread_create(&t[i], NULL, late_join, &l[i]), 0);
	}
	ASSERT_EQ(shmpipe_writer_wait_readers(w, SHMPIPE_READERS_MAX), SHMPIPE_READERS_MAX);
	for (int i = 1; i < SHMPIPE_READERS_MAX; i++) {
		ASSERT_EQ(pthread_join(t[i], NULL), 0);
		r[i] = l[i].r;
	}
	ASSERT_ERR(shmpipe_reader_open_fd(&extra, shmpipe_writer_fd(w)), -EBUSY);
	/* Each 8 KiB, a full ring, is read by every reader before the next. */
	for (uint64_t off = 0; off < 4 * 8192; off += 8192) {
		test_write_pattern(w, seed, off, 8192);
		for (int i = 0; i < SHMPIPE_READERS_MAX; i++)
			test_read_pattern(r[i], seed, off, 8192);
	}
	ASSERT_OK(shmpipe_writer_close(w));
	for (int i = 0; i < SHMPIPE_READERS_MAX; i++) {
		char c;

		ASSERT_EQ(shmpipe_read(r[i], &c, 1), 0);
		ASSERT_OK(shmpipe_reader_close(r[i]));
	}
}

/* ---- joining mid-stream ----------------------------------------------------- */

/* A reader that comes with nothing moving: it starts exactly where the writer is. */
static void test_join_still(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r0, *r1;
	struct drain d0, d1;
	shmpipe_stats s;
	const uint64_t seed = 31;
	char c;

	bc_pair(&w, &r0, 4096, 2, 0);
	test_write_pattern(w, seed, 0, 1000);
	r1 = bc_join(w);
	s = test_rstats(r1);
	ASSERT_EQ(s.read_index, 1000);
	ASSERT_EQ(s.write_index, 1000);
	ASSERT_EQ(s.consumed, 0);
	/* Nothing to read for the newcomer: the 1000 bytes came before it. */
	ASSERT_OK(shmpipe_reader_set_timeout(r1, 0));
	ASSERT_ERR(shmpipe_read(r1, &c, 1), -EAGAIN);
	ASSERT_OK(shmpipe_reader_set_timeout(r1, -1));
	ASSERT_EQ(test_rstats(r0).read_index, 0);

	/* The ring wraps several times; each gets its part, in order. */
	drain_start(&d0, r0, seed, 0, 0);
	drain_start(&d1, r1, seed, 1000, 1);
	for (uint64_t off = 1000; off < 1000 + 50000; off += 5000)
		test_write_pattern(w, seed, off, 5000);
	ASSERT_OK(shmpipe_writer_close(w));
	drain_join(&d0, 51000, 0);
	drain_join(&d1, 51000, 0);
	s = test_rstats(r1);
	ASSERT_EQ(s.read_index, 51000);
	ASSERT_OK(shmpipe_reader_close(r0));
	ASSERT_OK(shmpipe_reader_close(r1));
}

/*
 * A writer thread moves the stream while readers come and go: each one's
 * start lies between the bytes whose writes had returned before it came
 * and the bytes whose writes had begun after, and it reads the stream from
 * there on.
 */
struct moving {
	shmpipe_writer *w;
	uint64_t seed, total;
	size_t cap;
	atomic_uint_fast64_t started, completed;
	atomic_int may_close; /* no more joins through w: the writer may close it */
};

static void *moving_writer(void *arg)
{
	struct moving *m = arg;
	uint8_t *buf = malloc(2 * m->cap + 16);
	uint64_t off = 0, rng = m->seed | 1;

	ASSERT_NOT_NULL(buf);
	while (off < m->total) {
		size_t n = (test_rand(&rng) & 3) == 0
			       ? (size_t)test_rand_range(&rng, 1, 16)
			       : (size_t)test_rand_range(&rng, 1, 2 * (uint64_t)m->cap);

		if (n > m->total - off)
			n = (size_t)(m->total - off);
		test_pattern_fill(buf, n, m->seed, off);
		atomic_store(&m->started, off + n);
		ASSERT_EQ(shmpipe_write(m->w, buf, n), (ssize_t)n);
		off += n;
		atomic_store(&m->completed, off);
	}
	free(buf);
	/* Joins go through w (its descriptor): it stays until they are over. */
	while (!atomic_load(&m->may_close))
		test_sleep_ms(1);
	ASSERT_OK(shmpipe_writer_close(m->w));
	return NULL;
}

static void test_join_moving(void)
{
	struct moving m;
	shmpipe_reader *r0;
	struct drain d0, dl;
	struct stall st;
	pthread_t t;
	uint64_t rng = 77;
	int joins = 0;

	memset(&m, 0, sizeof(m));
	m.seed = 41;
	m.cap = 4099;
	m.total = (uint64_t)48 << 20;
	atomic_init(&m.started, 0);
	atomic_init(&m.completed, 0);
	atomic_init(&m.may_close, 0);
	bc_pair(&m.w, &r0, m.cap, 3, 0);
	drain_start(&d0, r0, m.seed, 0, 0);
	stall_start(&st, &m.completed, "the writer");
	ASSERT_EQ(pthread_create(&t, NULL, moving_writer, &m), 0);

	while (joins < 400 && atomic_load(&m.completed) < m.total / 2) {
		uint64_t lo, hi, p, len;
		shmpipe_reader *r;
		shmpipe_stats s;

		if (test_rand(&rng) & 1)
			usleep((useconds_t)test_rand_range(&rng, 0, 500));
		lo = atomic_load(&m.completed);
		r = bc_join(m.w);
		s = test_rstats(r);
		hi = atomic_load(&m.started);
		p = s.read_index;
		if (p < lo || p > hi)
			TEST_FAIL("join %d: reader starts at %" PRIu64 ", outside [%" PRIu64
				  ", %" PRIu64 "] (written before it came, begun after)",
				  joins, p, lo, hi);
		ASSERT_EQ(s.consumed, 0);
		ASSERT_LE(s.read_index, s.write_index);
		/* Some of the stream from there, every byte; then leave. */
		len = test_rand_range(&rng, 1, 3 * (uint64_t)m.cap);
		if (len > m.total - p)
			len = m.total - p;
		test_read_pattern(r, m.seed, p, (size_t)len);
		ASSERT_EQ(test_rstats(r).read_index, p + len);
		ASSERT_OK(shmpipe_reader_close(r));
		joins++;
	}
	/* The last one stays to the end of the stream. */
	{
		shmpipe_reader *r = bc_join(m.w);
		uint64_t p = test_rstats(r).read_index;

		ASSERT_LE(p, atomic_load(&m.started));
		atomic_store(&m.may_close, 1);
		drain_start(&dl, r, m.seed, p, 1);
		ASSERT_EQ(pthread_join(t, NULL), 0);
		drain_join(&dl, m.total, 0);
		ASSERT_OK(shmpipe_reader_close(r));
	}
	stall_stop(&st);
	drain_join(&d0, m.total, 0);
	ASSERT_OK(shmpipe_reader_close(r0));
	ASSERT_GE(joins, 10);
}

/* ---- records ------------------------------------------------------------------ */

/* The length of record seq: 16 bytes (its seq and length) and more. */
static size_t rec_len(uint64_t seq, size_t max)
{
	return 16 + (size_t)(test_mix64(seq ^ 0x5eed) % (max - 15));
}

struct rec_reader {
	pthread_t t;
	shmpipe_reader *r;
	int how;	       /* 0: read, 1: peek/consume, 2: both, and too small buffers */
	uint64_t first, count; /* the seq it expects first; how many it got */
	size_t max;
	int end; /* what stopped it */
};

static void *rec_reader_main(void *arg)
{
	struct rec_reader *q = arg;
	uint8_t *buf = malloc(q->max);
	uint64_t seq = q->first, rng = 5 + (uint64_t)q->how;
	ssize_t ret;

	ASSERT_NOT_NULL(buf);
	for (;;) {
		int how = q->how == 2 ? (int)(test_rand(&rng) % 3) : q->how;
		size_t want = rec_len(seq, q->max);

		if (how == 1) {
			const void *p, *p2;

			ret = shmpipe_peek(q->r, &p);
			if (ret <= 0)
				break;
			if (ret != (ssize_t)want)
				TEST_FAIL("record %" PRIu64 ": peek = %zd (%s), want %zu", seq, ret,
					  shmpipe_strerror((int)ret), want);
			test_record_check(p, seq, want);
			/* Peeking again shows the same record; a part is no release. */
			ASSERT_EQ(shmpipe_peek(q->r, &p2), ret);
			ASSERT_PTR_EQ(p2, p);
			ASSERT_ERR(shmpipe_consume(q->r, (size_t)ret - 1), -EINVAL);
			ASSERT_OK(shmpipe_consume(q->r, (size_t)ret));
		} else {
			if (how == 2) {
				/* Too small: the record stays for this reader. */
				ret = shmpipe_read(q->r, buf, want - 1);
				if (ret == 0)
					break;
				ASSERT_ERR(ret, -EMSGSIZE);
			}
			ret = shmpipe_read(q->r, buf, q->max);
			if (ret <= 0)
				break;
			if (ret != (ssize_t)want)
				TEST_FAIL("record %" PRIu64 ": read = %zd (%s), want %zu", seq, ret,
					  shmpipe_strerror((int)ret), want);
			test_record_check(buf, seq, want);
		}
		seq++;
		q->count++;
	}
	q->end = (int)ret;
	free(buf);
	return NULL;
}

static void test_records(void)
{
	const size_t cap = 4096, max = 700;
	const uint64_t n = 20000;
	struct rec_reader q[3];
	shmpipe_writer *w;
	shmpipe_reader *r[3];
	uint8_t buf[700];
	const void *p;

	bc_pair(&w, &r[0], cap, 3, SHMPIPE_RECORDS);
	r[1] = bc_join(w);
	r[2] = bc_join(w);
	ASSERT_EQ(shmpipe_writer_wait_readers(w, 3), 3);
	for (int i = 0; i < 3; i++) {
		memset(&q[i], 0, sizeof(q[i]));
		q[i].r = r[i];
		q[i].how = i;
		q[i].max = max;
		ASSERT_EQ(pthread_create(&q[i].t, NULL, rec_reader_main, &q[i]), 0);
	}
	for (uint64_t seq = 0; seq < n; seq++) {
		size_t len = rec_len(seq, max);

		test_record_fill(buf, seq, len);
		if (seq % 5 == 0) {
			void *span;
			ssize_t room = shmpipe_reserve(w, &span, len);

			ASSERT_GE(room, (ssize_t)len);
			memcpy(span, buf, len);
			ASSERT_OK(shmpipe_commit(w, len));
		} else {
			ASSERT_EQ(shmpipe_write(w, buf, len), (ssize_t)len);
		}
	}
	ASSERT_EQ(test_wstats(w).produced, n);
	ASSERT_OK(shmpipe_writer_close(w));
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(pthread_join(q[i].t, NULL), 0);
		ASSERT_EQ(q[i].end, 0);
		ASSERT_EQ(q[i].count, n);
		ASSERT_EQ(shmpipe_read(r[i], buf, sizeof(buf)), 0);
		p = buf;
		ASSERT_EQ(shmpipe_peek(r[i], &p), 0);
		ASSERT_PTR_EQ(p, NULL);
		ASSERT_OK(shmpipe_reader_close(r[i]));
	}
}

/* A reader that comes mid-stream in record mode starts at a whole record. */
struct rec_moving {
	shmpipe_writer *w;
	uint64_t n;
	size_t max;
	atomic_uint_fast64_t started, completed; /* records */
	pthread_mutex_t close_lock;		 /* a join through w, or its close */
	int closed;
};

static void *rec_moving_writer(void *arg)
{
	struct rec_moving *m = arg;
	uint8_t buf[700];

	for (uint64_t seq = 0; seq < m->n; seq++) {
		size_t len = rec_len(seq, m->max);

		test_record_fill(buf, seq, len);
		atomic_store(&m->started, seq + 1);
		ASSERT_EQ(shmpipe_write(m->w, buf, len), (ssize_t)len);
		atomic_store(&m->completed, seq + 1);
	}
	/* Not while a join goes through w (its descriptor). */
	ASSERT_EQ(pthread_mutex_lock(&m->close_lock), 0);
	ASSERT_OK(shmpipe_writer_close(m->w));
	m->closed = 1;
	ASSERT_EQ(pthread_mutex_unlock(&m->close_lock), 0);
	return NULL;
}

static void test_records_join(void)
{
	struct rec_moving m;
	struct rec_reader q0;
	struct stall st;
	shmpipe_reader *r0;
	uint8_t buf[700];
	pthread_t t;
	uint64_t rng = 99, seq;
	int joins = 0;

	memset(&m, 0, sizeof(m));
	m.n = 50000;
	m.max = sizeof(buf);
	atomic_init(&m.started, 0);
	atomic_init(&m.completed, 0);
	ASSERT_EQ(pthread_mutex_init(&m.close_lock, NULL), 0);
	bc_pair(&m.w, &r0, 4096, 2, SHMPIPE_RECORDS);
	memset(&q0, 0, sizeof(q0));
	q0.r = r0;
	q0.max = m.max;
	ASSERT_EQ(pthread_create(&q0.t, NULL, rec_reader_main, &q0), 0);
	stall_start(&st, &m.completed, "the writer");
	ASSERT_EQ(pthread_create(&t, NULL, rec_moving_writer, &m), 0);

	while (joins < 300 && atomic_load(&m.completed) < m.n / 2) {
		uint64_t lo, hi, k;
		shmpipe_reader *r;
		ssize_t ret;

		if (test_rand(&rng) & 1)
			usleep((useconds_t)test_rand_range(&rng, 0, 300));
		lo = atomic_load(&m.completed);
		/* Held off the processor until the writer closed: no more joins. */
		ASSERT_EQ(pthread_mutex_lock(&m.close_lock), 0);
		r = m.closed ? NULL : bc_join(m.w);
		ASSERT_EQ(pthread_mutex_unlock(&m.close_lock), 0);
		if (!r)
			break;
		hi = atomic_load(&m.started);
		/* Its first record is whole, one not done before it came. */
		ret = shmpipe_read(r, buf, sizeof(buf));
		/*
		 * Or the end of the stream, if this thread was held off the
		 * processor until the writer had written everything and
		 * closed: a reader that comes after the end gets only it.
		 */
		if (ret == 0 && atomic_load(&m.completed) == m.n) {
			ASSERT_OK(shmpipe_reader_close(r));
			break;
		}
		ASSERT_GE(ret, 16);
		memcpy(&seq, buf, 8);
		if (seq < lo || seq > hi)
			TEST_FAIL("join %d: first record %" PRIu64 ", outside [%" PRIu64
				  ", %" PRIu64 "]",
				  joins, seq, lo, hi);
		ASSERT_EQ(ret, (ssize_t)rec_len(seq, m.max));
		test_record_check(buf, seq, (uint64_t)ret);
		/* ...and the next ones follow it. */
		k = test_rand_range(&rng, 1, 40);
		for (uint64_t i = 1; i <= k && seq + i < m.n; i++) {
			ret = shmpipe_read(r, buf, sizeof(buf));
			ASSERT_EQ(ret, (ssize_t)rec_len(seq + i, m.max));
			test_record_check(buf, seq + i, (uint64_t)ret);
		}
		ASSERT_OK(shmpipe_reader_close(r));
		joins++;
	}
	ASSERT_EQ(pthread_join(t, NULL), 0);
	stall_stop(&st);
	ASSERT_EQ(pthread_join(q0.t, NULL), 0);
	ASSERT_EQ(q0.end, 0);
	ASSERT_EQ(q0.count, m.n);
	ASSERT_OK(shmpipe_reader_close(r0));
	ASSERT_EQ(pthread_mutex_destroy(&m.close_lock), 0);
	ASSERT_GE(joins, 10);
}

/* ---- EPIPE ---------------------------------------------------------------- */

/*
 * Until the first reader comes the writer waits, as for room (no reader
 * could ever read what it wrote), and goes on once one comes.
 */
static void test_first_reader(void)
{
	shmpipe_options o = bc_opts(4096, 2, 0);
	const uint64_t seed = 50;
	shmpipe_writer *w;
	shmpipe_reader *r0;
	struct feed f;
	int64_t t0;

	ASSERT_OK(shmpipe_writer_create(&w, NULL, &o));
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_ERR(shmpipe_write(w, "x", 1), -EAGAIN);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 40));
	t0 = test_now_ms();
	ASSERT_ERR(shmpipe_write(w, "x", 1), -ETIMEDOUT);
	ASSERT_GE(test_now_ms() - t0, 35);
	ASSERT_ERR(shmpipe_writer_wait_readers(w, 1), -ETIMEDOUT);
	ASSERT_EQ(test_wstats(w).write_index, 0);
	/* A blocked write goes on once the first reader comes. */
	ASSERT_OK(shmpipe_writer_set_timeout(w, -1));
	feed_start(&f, w, seed, 0, 100, 100);
	test_sleep_ms(20);
	ASSERT_EQ(atomic_load(&f.done), 0);
	ASSERT_OK(shmpipe_reader_open_fd(&r0, shmpipe_writer_fd(w)));
	feed_join(&f);
	ASSERT_EQ(f.written, 100);
	ASSERT_EQ(test_rstats(r0).read_index, 0);
	test_read_pattern(r0, seed, 0, 100);
	ASSERT_OK(shmpipe_reader_close(r0));
	ASSERT_ERR(shmpipe_write(w, "x", 1), -EPIPE);
	ASSERT_OK(shmpipe_writer_close(w));
}

static void test_epipe(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r0, *r1;
	struct drain d;
	struct iovec iov = {.iov_base = "abc", .iov_len = 3};
	void *span;
	const uint64_t seed = 51;

	/* One of two closes: the writer goes on with the other. */
	bc_pair(&w, &r0, 4096, 2, 0);
	r1 = bc_join(w);
	test_write_pattern(w, seed, 0, 10);
	test_read_pattern(r1, seed, 0, 5);
	ASSERT_OK(shmpipe_reader_close(r1));
	drain_start(&d, r0, seed, 0, 0);
	test_write_pattern(w, seed, 10, 10000 - 10); /* more than the ring: r0 reads meanwhile */
	ASSERT_OK(shmpipe_writer_close(w));
	drain_join(&d, 10000, 0);
	ASSERT_OK(shmpipe_reader_close(r0));

	/* The last one closes: -EPIPE, for every way to write, every time. */
	bc_pair(&w, &r0, 4096, 3, 0);
	r1 = bc_join(w);
	test_write_pattern(w, seed, 0, 10);
	ASSERT_OK(shmpipe_reader_close(r0));
	test_write_pattern(w, seed, 10, 10);
	test_read_pattern(r1, seed, 0, 20);
	ASSERT_OK(shmpipe_reader_close(r1));
	ASSERT_ERR(shmpipe_write(w, "x", 1), -EPIPE);
	ASSERT_ERR(shmpipe_writev(w, &iov, 1), -EPIPE);
	ASSERT_ERR(shmpipe_reserve(w, &span, 1), -EPIPE);
	ASSERT_ERR(shmpipe_write(w, "x", 1), -EPIPE);
	ASSERT_EQ(test_wstats(w).write_index, 20);
	ASSERT_OK(shmpipe_writer_close(w));
}

/*
 * The reader holding the writer back closes while the writer waits on it:
 * the writer goes on at once with the other; the last reader closing
 * while the writer waits ends the write with -EPIPE (or the count done).
 */
static void test_epipe_blocked(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r0, *r1;
	struct feed f;
	struct drain d;
	const uint64_t seed = 52;
	const size_t cap = 4096;
	int64_t t0;

	bc_pair(&w, &r0, cap, 2, 0);
	r1 = bc_join(w);
	drain_start(&d, r1, seed, 0, 0); /* r1 keeps up; r0 never reads */
	feed_start(&f, w, seed, 0, (uint64_t)4 << 20, 3000);
	/* The writer fills the ring and waits on r0. */
	test_sleep_ms(50);
	ASSERT_EQ(atomic_load(&f.done), 0);
	ASSERT_EQ(test_wstats(w).write_index, cap);
	t0 = test_now_ms();
	ASSERT_OK(shmpipe_reader_close(r0));
	feed_join(&f);
	ASSERT_LT(test_now_ms() - t0, 1000 * TEST_SLOW);
	ASSERT_EQ(f.written, (uint64_t)4 << 20);
	ASSERT_ERR(f.last, 0);

	/* Now r1 stops reading, the writer fills the ring, r1 closes. */
	ASSERT_OK(shmpipe_writer_close(w));
	drain_join(&d, (uint64_t)4 << 20, 0);
	ASSERT_OK(shmpipe_reader_close(r1));

	bc_pair(&w, &r0, cap, 2, 0);
	r1 = bc_join(w);
	ASSERT_OK(shmpipe_reader_close(r1));
	feed_start(&f, w, seed, 0, (uint64_t)1 << 20, 1000);
	test_sleep_ms(50);
	ASSERT_EQ(atomic_load(&f.done), 0);
	ASSERT_EQ(test_wstats(w).write_index, cap); /* the ring is full */
	t0 = test_now_ms();
	ASSERT_OK(shmpipe_reader_close(r0));
	feed_join(&f);
	ASSERT_LT(test_now_ms() - t0, 1000 * TEST_SLOW);
	ASSERT_ERR(f.last, -EPIPE);
	ASSERT_GE(f.written, cap - 1000);
	ASSERT_LE(f.written, cap);
	ASSERT_ERR(shmpipe_write(w, "x", 1), -EPIPE);
	ASSERT_OK(shmpipe_writer_close(w));
}

/* ---- end of stream, abort --------------------------------------------------- */

static void test_end(int abort_it)
{
	const uint64_t seed = 61 + (uint64_t)abort_it, total = 100000, tail = 4000;
	shmpipe_writer *w;
	shmpipe_reader *r[4];
	struct drain d[4];
	int want = abort_it ? -ECONNRESET : 0;
	char c;

	bc_pair(&w, &r[0], 4096, 4, 0);
	for (int i = 1; i < 4; i++)
		r[i] = bc_join(w);
	ASSERT_EQ(shmpipe_writer_wait_readers(w, 4), 4);
	/*
	 * Three readers follow in threads; the fourth keeps up here, but
	 * leaves the last `tail` bytes in the ring until after the end.
	 */
	for (int i = 0; i < 3; i++)
		drain_start(&d[i], r[i], seed, 0, i & 1);
	for (uint64_t off = 0; off < total - tail; off += 1000) {
		test_write_pattern(w, seed, off, 1000);
		test_read_pattern(r[3], seed, off, 1000);
	}
	test_write_pattern(w, seed, total - tail, tail);
	/* Let the three fall asleep on an empty ring. */
	test_sleep_ms(20);
	if (abort_it)
		ASSERT_OK(shmpipe_writer_abort(w));
	else
		ASSERT_OK(shmpipe_writer_close(w));
	for (int i = 0; i < 3; i++)
		drain_join(&d[i], total, want);
	/* The fourth still finds every byte, then the end. */
	drain_start(&d[3], r[3], seed, total - tail, 0);
	drain_join(&d[3], total, want);
	for (int i = 0; i < 4; i++) {
		/* And says so again. */
		ASSERT_ERR(shmpipe_read(r[i], &c, 1), want);
		ASSERT_OK(shmpipe_reader_close(r[i]));
	}
}

/* ---- stats ----------------------------------------------------------------- */

/* A reader that sleeps once for its data. */
static void *read_100(void *arg)
{
	test_read_pattern(arg, 71, 300, 100);
	return NULL;
}

static void test_stats(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r[3];
	shmpipe_stats ws, rs[3];
	const uint64_t seed = 71;
	pthread_t t;

	bc_pair(&w, &r[0], 4096, 3, 0);
	r[1] = bc_join(w);
	r[2] = bc_join(w);
	for (int i = 0; i < 3; i++)
		test_write_pattern(w, seed, 100 * (uint64_t)i, 100);
	test_read_pattern(r[0], seed, 0, 300); /* one read */
	for (int i = 0; i < 3; i++)
		test_read_pattern(r[1], seed, 100 * (uint64_t)i, 100); /* three reads */
	for (int i = 0; i < 3; i++)
		rs[i] = test_rstats(r[i]);
	ASSERT_EQ(rs[0].read_index, 300);
	ASSERT_EQ(rs[0].consumed, 1);
	ASSERT_EQ(rs[1].read_index, 300);
	ASSERT_EQ(rs[1].consumed, 3);
	ASSERT_EQ(rs[2].read_index, 0);
	ASSERT_EQ(rs[2].consumed, 0);
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(rs[i].write_index, 300);
		ASSERT_EQ(rs[i].capacity, 4096);
		ASSERT_EQ(rs[i].consumer_waits, 0);
	}
	ws = test_wstats(w);
	ASSERT_EQ(ws.capacity, 4096);
	ASSERT_EQ(ws.write_index, 300);
	ASSERT_EQ(ws.produced, 3);
	ASSERT_EQ(ws.read_index, 0); /* r2 has read nothing: the slowest */
	ASSERT_EQ(ws.consumed, 4);
	ASSERT_EQ(ws.consumer_waits, 0);

	/* r2 catches up; r1 sleeps for data once. */
	test_read_pattern(r[2], seed, 0, 300);
	ASSERT_EQ(pthread_create(&t, NULL, read_100, r[1]), 0);
	test_sleep_ms(30);
	test_write_pattern(w, seed, 300, 100);
	ASSERT_EQ(pthread_join(t, NULL), 0);
	rs[1] = test_rstats(r[1]);
	ASSERT_EQ(rs[1].read_index, 400);
	ASSERT_EQ(rs[1].consumed, 4);
	ASSERT_GE(rs[1].consumer_waits, 1);
	rs[2] = test_rstats(r[2]);
	ASSERT_EQ(rs[2].consumed, 1);
	ws = test_wstats(w);
	ASSERT_EQ(ws.consumed, 1 + 4 + 1);
	ASSERT_EQ(ws.consumer_waits, rs[1].consumer_waits);
	ASSERT_EQ(ws.produced, 4);
	ASSERT_EQ(ws.write_index, 400);
	ASSERT_EQ(ws.read_index, 300); /* the slowest now: r0 and r2 */

	/*
	 * A write that needs the whole ring makes the writer look at every
	 * reader: r0 and r2 at 300, r1 at 400: the slowest is 300.
	 */
	test_write_pattern(w, seed, 400, 4096 - 100);
	ws = test_wstats(w);
	ASSERT_EQ(ws.read_index, 300);
	ASSERT_EQ(ws.write_index, 4396);

	/* A reader that leaves leaves the sums. */
	rs[0] = test_rstats(r[0]);
	rs[2] = test_rstats(r[2]);
	ASSERT_OK(shmpipe_reader_close(r[1]));
	ws = test_wstats(w);
	ASSERT_EQ(ws.consumed, rs[0].consumed + rs[2].consumed);
	ASSERT_EQ(ws.consumer_waits, rs[0].consumer_waits + rs[2].consumer_waits);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r[0]));
	ASSERT_OK(shmpipe_reader_close(r[2]));
}

/* ---- stress ----------------------------------------------------------------- */

#define ST_READERS 4

struct st;

struct st_reader {
	pthread_t t;
	struct st *s;
	int idx;
	shmpipe_reader *r;
	uint64_t ops; /* reads and consumes that moved data */
	shmpipe_stats stats;
};

struct st {
	shmpipe_writer *w;
	int fd;
	size_t cap;
	uint64_t total, seed;
	atomic_int done, closed;
	struct st_reader rd[ST_READERS];
};

static size_t st_size(uint64_t *rng, size_t cap)
{
	if (test_rand(rng) % 4 == 0)
		return (size_t)test_rand_range(rng, 1, 16);
	return (size_t)test_rand_range(rng, 1, 2 * (uint64_t)cap);
}

/* Now and then let the others catch up; reader 3 does so more often. */
static void st_pause(uint64_t *rng, int slow)
{
	uint64_t x = test_rand(rng) % 1024;

	if (x < (slow ? 12u : 2u))
		usleep((useconds_t)test_rand_range(rng, 1, 200));
	else if (x < 16)
		sched_yield();
}

static void *st_reader_main(void *arg)
{
	struct st_reader *me = arg;
	struct st *s = me->s;
	size_t maxlen = 2 * s->cap + 1;
	uint8_t *buf = malloc(maxlen);
	uint64_t off = 0, rng = s->seed * 7 + (uint64_t)me->idx + 1;
	shmpipe_stats st;

	ASSERT_NOT_NULL(buf);
	if (me->idx > 0)
		ASSERT_OK(shmpipe_reader_open_fd(&me->r, s->fd));
	st = test_rstats(me->r);
	/* The writer waits for all four before its first byte. */
	ASSERT_EQ(st.read_index, 0);
	ASSERT_EQ(st.consumed, 0);
	while (off < s->total) {
		size_t n = st_size(&rng, s->cap);
		ssize_t ret;

		if ((test_rand(&rng) & 3) == 0) {
			const void *p;

			ret = shmpipe_peek(me->r, &p);
			if (ret <= 0)
				TEST_FAIL("reader %d: peek at %" PRIu64 " = %zd (%s)", me->idx, off,
					  ret, shmpipe_strerror((int)ret));
			ASSERT_LE(off + (uint64_t)ret, s->total);
			if ((size_t)ret < n)
				n = (size_t)ret;
			ASSERT_PATTERN(p, n, s->seed, off);
			ASSERT_OK(shmpipe_consume(me->r, n));
		} else {
			if (n > s->total - off)
				n = (size_t)(s->total - off);
			ret = shmpipe_read(me->r, buf, n);
			if (ret <= 0)
				TEST_FAIL("reader %d: read at %" PRIu64 " = %zd (%s)", me->idx, off,
					  ret, shmpipe_strerror((int)ret));
			ASSERT_LE((size_t)ret, n);
			n = (size_t)ret;
			ASSERT_PATTERN(buf, n, s->seed, off);
		}
		off += n;
		me->ops++;
		st_pause(&rng, me->idx == ST_READERS - 1);
	}
	me->stats = test_rstats(me->r);
	atomic_fetch_add(&s->done, 1);
	/* Until the writer has closed: then the end of stream, right after. */
	bc_await(&s->closed, 200000, "the writer's close");
	ASSERT_EQ(shmpipe_read(me->r, buf, maxlen), 0);
	ASSERT_OK(shmpipe_reader_close(me->r));
	free(buf);
	return NULL;
}

static void test_stress(size_t cap, uint64_t total)
{
	struct st s;
	uint8_t *buf = malloc(2 * cap + 1);
	uint64_t off = 0, rng, ops = 0, sum_ops = 0, sum_waits = 0;
	int64_t t0 = test_now_ms();
	shmpipe_stats ws;

	ASSERT_NOT_NULL(buf);
	memset(&s, 0, sizeof(s));
	s.cap = cap;
	s.total = total;
	s.seed = (uint64_t)test_env_long("SHMPIPE_STRESS_SEED", 4242);
	rng = s.seed * 2 + 1;
	atomic_init(&s.done, 0);
	atomic_init(&s.closed, 0);
	bc_pair(&s.w, &s.rd[0].r, cap, ST_READERS, 0);
	s.fd = shmpipe_writer_fd(s.w);
	for (int i = 0; i < ST_READERS; i++) {
		s.rd[i].s = &s;
		s.rd[i].idx = i;
		ASSERT_EQ(pthread_create(&s.rd[i].t, NULL, st_reader_main, &s.rd[i]), 0);
	}
	ASSERT_EQ(shmpipe_writer_wait_readers(s.w, ST_READERS), ST_READERS);

	while (off < total) {
		size_t n = st_size(&rng, cap);
		uint64_t kind = test_rand(&rng) % 8;
		ssize_t ret;

		if (n > total - off)
			n = (size_t)(total - off);
		if (kind < 2) {
			void *p;

			ret = shmpipe_reserve(s.w, &p, 1);
			if (ret <= 0)
				TEST_FAIL("reserve at %" PRIu64 " = %zd (%s)", off, ret,
					  shmpipe_strerror((int)ret));
			if ((size_t)ret < n)
				n = (size_t)ret;
			test_pattern_fill(p, n, s.seed, off);
			ASSERT_OK(shmpipe_commit(s.w, n));
		} else if (kind == 2 && n >= 3) {
			struct iovec iov[3];
			size_t a = n / 3, b = n / 2;

			test_pattern_fill(buf, n, s.seed, off);
			iov[0].iov_base = buf;
			iov[0].iov_len = a;
			iov[1].iov_base = buf + a;
			iov[1].iov_len = b - a;
			iov[2].iov_base = buf + b;
			iov[2].iov_len = n - b;
			ret = shmpipe_writev(s.w, iov, 3);
			if (ret != (ssize_t)n)
				TEST_FAIL("writev of %zu at %" PRIu64 " = %zd (%s)", n, off, ret,
					  shmpipe_strerror((int)ret));
		} else {
			test_pattern_fill(buf, n, s.seed, off);
			ret = shmpipe_write(s.w, buf, n);
			if (ret != (ssize_t)n)
				TEST_FAIL("write of %zu at %" PRIu64 " = %zd (%s)", n, off, ret,
					  shmpipe_strerror((int)ret));
		}
		off += n;
		ops++;
		st_pause(&rng, 0);
	}

	ws = test_wstats(s.w);
	ASSERT_EQ(ws.capacity, cap);
	ASSERT_EQ(ws.write_index, total);
	ASSERT_EQ(ws.produced, ops);
	ASSERT_LE(ws.read_index, ws.write_index);
	ASSERT_LE(ws.write_index - ws.read_index, cap);

	/* Every reader got every byte: the sums are theirs. */
	while (atomic_load(&s.done) < ST_READERS)
		test_sleep_ms(1);
	for (int i = 0; i < ST_READERS; i++) {
		shmpipe_stats *rs = &s.rd[i].stats;

		ASSERT_EQ(rs->read_index, total);
		ASSERT_EQ(rs->write_index, total);
		ASSERT_EQ(rs->consumed, s.rd[i].ops);
		sum_ops += rs->consumed;
		sum_waits += rs->consumer_waits;
	}
	ws = test_wstats(s.w);
	ASSERT_EQ(ws.write_index, total);
	ASSERT_EQ(ws.produced, ops);
	ASSERT_EQ(ws.consumed, sum_ops);
	ASSERT_EQ(ws.consumer_waits, sum_waits);
	ASSERT_GE(ws.read_index, total - cap);
	ASSERT_LE(ws.read_index, total);
	test_print_stats("writer", &ws);
	ASSERT_OK(shmpipe_writer_close(s.w));
	atomic_store(&s.closed, 1);
	for (int i = 0; i < ST_READERS; i++)
		ASSERT_EQ(pthread_join(s.rd[i].t, NULL), 0);
	free(buf);
	printf("%" PRIu64 " MiB to %d readers through %zu bytes: %" PRId64 " ms\n", total >> 20,
	       ST_READERS, cap, test_now_ms() - t0);
}

static void test_eof(void)
{
	test_end(0);
}

static void test_abort(void)
{
	test_end(1);
}

static const struct {
	const char *name;
	void (*fn)(void);
} tests[] = {
    {"options", test_options},
    {"wait_readers", test_wait_readers},
    {"limit", test_limit},
    {"max_readers", test_max_readers},
    {"join_still", test_join_still},
    {"join_moving", test_join_moving},
    {"records", test_records},
    {"records_join", test_records_join},
    {"first_reader", test_first_reader},
    {"epipe", test_epipe},
    {"epipe_blocked", test_epipe_blocked},
    {"eof", test_eof},
    {"abort", test_abort},
    {"stats", test_stats},
};

int main(int argc, char **argv)
{
	int ran = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && strcmp(argv[1], "stress") == 0) {
		long cap = argc > 2 ? atol(argv[2]) : 1 << 20;
		long mb = argc > 3 ? atol(argv[3]) : test_env_long("SHMPIPE_STRESS_MB", 1024);

		if (cap < 1 || mb < 1)
			TEST_FAIL("usage: broadcast stress CAPACITY [MiB]");
		test_watchdog(280);
		test_stress((size_t)cap, (uint64_t)mb << 20);
		return T_PASS;
	}
	test_watchdog(110);
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		int run = argc == 1;

		for (int k = 1; k < argc; k++)
			run |= strcmp(argv[k], tests[i].name) == 0;
		if (run) {
			printf("%s\n", tests[i].name);
			tests[i].fn();
			ran++;
		}
	}
	if (ran == 0)
		TEST_FAIL("usage: broadcast [TEST...] | broadcast stress CAPACITY [MiB]");
	return T_PASS;
}
