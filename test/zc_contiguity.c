/* SPDX-License-Identifier: MIT */
/*
 * Description: zero-copy spans. shmpipe_reserve/shmpipe_commit and
 * shmpipe_peek/shmpipe_consume hand out one contiguous span at every offset
 * of the data region (capacity rounded up to a page, mapped twice), across
 * the wrap: for capacities 4096 (data region 4096), 5000 (data region
 * 8192) and 100 (a ring much smaller than its page) the positions step by
 * exactly one byte per round over a whole lap of the data region,
 * and at each offset the full capacity is reserved, filled in place,
 * committed, peeked and checked in place, and consumed in partial steps;
 * the copy paths (shmpipe_write, shmpipe_read) cross-check the same memory.
 * Then every documented return of reserve/commit/peek/consume: reserve
 * returns at least min_len and never more than is free, -EMSGSIZE above
 * capacity, min_len 0 counts as 1; commit of more than was reserved, or
 * after a write ended the reservation, is -EINVAL and publishes nothing;
 * consume of more than was peeked is -EINVAL and releases nothing; peek at
 * end of stream returns 0 with *buf NULL; timeouts (0: -EAGAIN, 100 ms:
 * -ETIMEDOUT); -EPIPE after the reader closed (also for a reserve asleep
 * on a full ring); NULL arguments. Last, two threads move 64 MiB (capacity
 * 5000) and 32 MiB (capacity 65536) through reserve/commit (random sizes,
 * random partial commits) and peek/consume (random partial consumes),
 * every byte checked in place.
 */
#include <pthread.h>

#include "test.h"

#define LOW_MS(t)  ((t)-2)
#define HIGH_MS(t) ((t) + 2000 * TEST_SLOW)

static size_t page_round(size_t n)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	return (n + pg - 1) / pg * pg;
}

/* Writes len pattern bytes with shmpipe_write and reads them back, checked. */
static void shift(shmpipe_writer *w, shmpipe_reader *r, uint8_t *tmp, size_t cap, uint64_t seed,
		  uint64_t *pos, size_t len)
{
	while (len) {
		size_t n = len < cap ? len : cap;

		test_pattern_fill(tmp, n, seed, *pos);
		ASSERT_EQ(shmpipe_write(w, tmp, n), n);
		memset(tmp, 0, n);
		ASSERT_EQ(shmpipe_read(r, tmp, n), n);
		ASSERT_PATTERN(tmp, n, seed, *pos);
		*pos += n;
		len -= n;
	}
}

/*
 * One round at every offset of the data region. The ring is empty at the
 * start of each round; after it, a shift of data_size - cap + 1 bytes (mod
 * data_size) makes the next round start exactly one byte further on.
 */
static void check_every_offset(size_t cap)
{
	const size_t ds = page_round(cap);
	const size_t step = (ds - cap % ds + 1) % ds; /* (1 - cap) mod ds */
	const uint64_t seed = 1000 + cap;
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	uint8_t *tmp = malloc(cap);
	uint64_t pos = 0;

	ASSERT_NOT_NULL(tmp);
	test_pair(&w, &r, cap);
	/* Nothing here should ever have to wait: a bug shows as -EAGAIN. */
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));

	for (size_t round = 0; round < ds; round++) {
		void *wb, *wb2;
		const void *rb;
		size_t a;

		ASSERT_EQ(pos % ds, round);
		/* The whole capacity in one span, filled in place. */
		ASSERT_EQ(shmpipe_reserve(w, &wb, cap), cap);
		test_pattern_fill(wb, cap, seed, pos);
		if (round % 61 == 0) {
			/* Reserving again hands out the same start. */
			ASSERT_EQ(shmpipe_reserve(w, &wb2, 1), cap);
			ASSERT_PTR_EQ(wb2, wb);
		}
		ASSERT_OK(shmpipe_commit(w, cap));
		if (round % 61 == 0)
			ASSERT_ERR(shmpipe_reserve(w, &wb2, 0), -EAGAIN);

		/* The whole capacity in one span, checked in place. */
		ASSERT_EQ(shmpipe_peek(r, &rb), cap);
		ASSERT_PATTERN(rb, cap, seed, pos);

		/* Released in partial steps, the rest re-peeked each time. */
		a = (round * 7919) % cap;
		ASSERT_OK(shmpipe_consume(r, a));
		pos += a;
		if (a) {
			size_t b = (cap - a) / 2;

			ASSERT_EQ(shmpipe_peek(r, &rb), cap - a);
			ASSERT_PATTERN(rb, cap - a, seed, pos);
			ASSERT_OK(shmpipe_consume(r, b));
			pos += b;
			a += b;
		}
		ASSERT_EQ(shmpipe_peek(r, &rb), cap - a);
		ASSERT_PATTERN(rb, cap - a, seed, pos);
		ASSERT_OK(shmpipe_consume(r, cap - a));
		pos += cap - a;
		ASSERT_ERR(shmpipe_peek(r, &rb), -EAGAIN);

		/* Now and then the copy paths over the same offsets. */
		if (round % 16 == 5) {
			/* Written in place, read by copy. */
			ASSERT_EQ(shmpipe_reserve(w, &wb, cap), cap);
			test_pattern_fill(wb, cap, seed, pos);
			ASSERT_OK(shmpipe_commit(w, cap));
			memset(tmp, 0, cap);
			ASSERT_EQ(shmpipe_read(r, tmp, cap), cap);
			ASSERT_PATTERN(tmp, cap, seed, pos);
			pos += cap;
			/* Written by copy, read in place. */
			test_pattern_fill(tmp, cap, seed, pos);
			ASSERT_EQ(shmpipe_write(w, tmp, cap), cap);
			ASSERT_EQ(shmpipe_peek(r, &rb), cap);
			ASSERT_PATTERN(rb, cap, seed, pos);
			ASSERT_OK(shmpipe_consume(r, cap));
			pos += cap;
			/* Back to where the round started: -2 * cap mod ds. */
			shift(w, r, tmp, cap, seed, &pos, (ds - (2 * cap) % ds) % ds);
		}
		shift(w, r, tmp, cap, seed, &pos, step);
	}
	ASSERT_EQ(pos % ds, 0);
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, pos);
	ASSERT_EQ(s.read_index, pos);
	/*
	 * Never slept: every call had timeout 0. Each refusal that armed a
	 * descriptor counts one wait, which the next ring disarmed: at most
	 * one a call, and the counters stay within the calls made.
	 */
	ASSERT_LE(s.producer_waits, s.produced);
	ASSERT_LE(s.consumer_waits, s.consumed);
	printf("capacity %zu (data region %zu): full spans at all %zu offsets, "
	       "%" PRIu64 " bytes\n",
	       cap, ds, ds, pos);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
	free(tmp);
}

static void test_reserve_sizes(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	uint8_t buf[4096];
	void *wb;
	ssize_t n;

	test_pair(&w, &r, 4096);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));

	/* More than the ring could ever hold, whatever is in it. */
	ASSERT_ERR(shmpipe_reserve(w, &wb, 4097), -EMSGSIZE);
	ASSERT_ERR(shmpipe_reserve(w, &wb, SIZE_MAX), -EMSGSIZE);
	ASSERT_EQ(shmpipe_reserve(w, &wb, 4096), 4096);
	ASSERT_EQ(shmpipe_reserve(w, &wb, 0), 4096);
	ASSERT_OK(shmpipe_commit(w, 0));

	/* 100 bytes in: 3996 free, and a reserve never claims more. */
	test_pattern_fill(buf, 100, 1, 0);
	ASSERT_EQ(shmpipe_write(w, buf, 100), 100);
	ASSERT_ERR(shmpipe_reserve(w, &wb, 3997), -EAGAIN);
	ASSERT_ERR(shmpipe_reserve(w, &wb, 4096), -EAGAIN);
	ASSERT_EQ(shmpipe_reserve(w, &wb, 3996), 3996);
	ASSERT_EQ(shmpipe_reserve(w, &wb, 1), 3996);
	ASSERT_EQ(shmpipe_reserve(w, &wb, 0), 3996);
	ASSERT_ERR(shmpipe_reserve(w, &wb, 4097), -EMSGSIZE);

	/* After the reader frees 50: at least min_len, at most what is free. */
	ASSERT_EQ(shmpipe_read(r, buf, 50), 50);
	n = shmpipe_reserve(w, &wb, 1);
	ASSERT_GE(n, 3996);
	ASSERT_LE(n, 4046);
	ASSERT_ERR(shmpipe_reserve(w, &wb, 4047), -EAGAIN);
	ASSERT_EQ(shmpipe_reserve(w, &wb, 4046), 4046);

	/* Full: min_len 0 counts as 1, so there is nothing to lend. */
	test_pattern_fill(wb, 4046, 1, 100);
	ASSERT_OK(shmpipe_commit(w, 4046));
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, 4146);
	ASSERT_EQ(s.produced, 2);
	ASSERT_ERR(shmpipe_reserve(w, &wb, 0), -EAGAIN);
	ASSERT_ERR(shmpipe_reserve(w, &wb, 1), -EAGAIN);
	ASSERT_EQ(shmpipe_read(r, buf, 1), 1);
	ASSERT_EQ(shmpipe_reserve(w, &wb, 0), 1);
	ASSERT_OK(shmpipe_commit(w, 0));
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, 4146);
	/*
	 * Two waits: a refusal arms the descriptor, and the reads that ring
	 * it disarm it, twice; the refusals in between find it armed.
	 */
	ASSERT_EQ(s.producer_waits, 2);

	/* What was committed is what was put there, in order. */
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 4095);
	ASSERT_PATTERN(buf, 4095, 1, 51);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

static void test_commit_errors(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s0, s;
	const void *rb;
	void *wb;
	uint8_t buf[64];

	test_pair(&w, &r, 4096);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));

	/* No reservation yet: only 0 may be committed. */
	ASSERT_ERR(shmpipe_commit(w, 1), -EINVAL);
	ASSERT_OK(shmpipe_commit(w, 0));

	/* Committing more than was lent publishes nothing. */
	test_pattern_fill(buf, 64, 2, 0);
	ASSERT_EQ(shmpipe_write(w, buf, 64), 64);
	ASSERT_EQ(shmpipe_read(r, buf, 64), 64);
	s0 = test_wstats(w);
	ASSERT_EQ(shmpipe_reserve(w, &wb, 4096), 4096);
	memset(wb, 0xab, 4096);
	ASSERT_ERR(shmpipe_commit(w, 4097), -EINVAL);
	ASSERT_ERR(shmpipe_commit(w, SIZE_MAX), -EINVAL);
	s = test_wstats(w);
	ASSERT_STATS_EQ(&s, &s0);
	ASSERT_ERR(shmpipe_peek(r, &rb), -EAGAIN);
	ASSERT_ERR(shmpipe_read(r, buf, 1), -EAGAIN);

	/* A partial commit publishes exactly that and ends the reservation. */
	ASSERT_EQ(shmpipe_reserve(w, &wb, 10), 4096);
	test_pattern_fill(wb, 10, 2, 64);
	ASSERT_OK(shmpipe_commit(w, 10));
	ASSERT_ERR(shmpipe_commit(w, 1), -EINVAL);
	ASSERT_OK(shmpipe_commit(w, 0));
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, 74);
	ASSERT_EQ(s.produced, 2);

	/* A write ends the reservation too: commit then fails unless 0. */
	ASSERT_EQ(shmpipe_reserve(w, &wb, 10), 4086);
	test_pattern_fill(buf, 5, 2, 74);
	ASSERT_EQ(shmpipe_write(w, buf, 5), 5);
	ASSERT_ERR(shmpipe_commit(w, 1), -EINVAL);
	ASSERT_ERR(shmpipe_commit(w, 10), -EINVAL);
	ASSERT_OK(shmpipe_commit(w, 0));
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, 79);
	ASSERT_EQ(s.produced, 3);
	ASSERT_EQ(shmpipe_peek(r, &rb), 15);
	ASSERT_PATTERN(rb, 15, 2, 64);

	/* And a writev. */
	{
		struct iovec iov = {buf, 3};

		test_pattern_fill(buf, 3, 2, 79);
		ASSERT_EQ(shmpipe_reserve(w, &wb, 1), 4081);
		ASSERT_EQ(shmpipe_writev(w, &iov, 1), 3);
		ASSERT_ERR(shmpipe_commit(w, 1), -EINVAL);
		ASSERT_OK(shmpipe_commit(w, 0));
	}
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, 82);
	ASSERT_EQ(s.produced, 4);
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 18);
	ASSERT_PATTERN(buf, 18, 2, 64);

	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

static void test_consume_errors(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	const void *rb, *rb2;
	uint8_t buf[64];

	test_pair(&w, &r, 4096);
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));

	/* Nothing peeked: only 0 may be consumed. */
	ASSERT_ERR(shmpipe_consume(r, 1), -EINVAL);
	ASSERT_OK(shmpipe_consume(r, 0));

	test_pattern_fill(buf, 10, 3, 0);
	ASSERT_EQ(shmpipe_write(w, buf, 10), 10);
	ASSERT_EQ(shmpipe_peek(r, &rb), 10);
	ASSERT_ERR(shmpipe_consume(r, 11), -EINVAL);
	ASSERT_ERR(shmpipe_consume(r, SIZE_MAX), -EINVAL);
	s = test_rstats(r);
	ASSERT_EQ(s.read_index, 0);
	ASSERT_EQ(s.consumed, 0);
	/* Peeking again shows the same bytes. */
	ASSERT_EQ(shmpipe_peek(r, &rb2), 10);
	ASSERT_PATTERN(rb2, 10, 3, 0);

	/* More data after a peek is not covered by that peek. */
	test_pattern_fill(buf, 6, 3, 10);
	ASSERT_EQ(shmpipe_write(w, buf, 6), 6);
	ASSERT_ERR(shmpipe_consume(r, 16), -EINVAL);
	ASSERT_ERR(shmpipe_consume(r, 11), -EINVAL);
	s = test_rstats(r);
	ASSERT_EQ(s.read_index, 0);
	ASSERT_OK(shmpipe_consume(r, 4));
	s = test_rstats(r);
	ASSERT_EQ(s.read_index, 4);
	ASSERT_EQ(s.consumed, 1);
	ASSERT_EQ(shmpipe_peek(r, &rb), 12);
	ASSERT_PATTERN(rb, 12, 3, 4);

	/* A read ends what the peek showed. */
	ASSERT_EQ(shmpipe_read(r, buf, 2), 2);
	ASSERT_PATTERN(buf, 2, 3, 4);
	ASSERT_ERR(shmpipe_consume(r, 1), -EINVAL);
	ASSERT_OK(shmpipe_consume(r, 0));
	s = test_rstats(r);
	ASSERT_EQ(s.read_index, 6);
	ASSERT_EQ(s.consumed, 2);
	ASSERT_EQ(shmpipe_peek(r, &rb), 10);
	ASSERT_PATTERN(rb, 10, 3, 6);
	ASSERT_OK(shmpipe_consume(r, 10));
	ASSERT_ERR(shmpipe_peek(r, &rb), -EAGAIN);

	/* End of stream: 0 and a NULL pointer, after the data and again. */
	test_pattern_fill(buf, 7, 3, 16);
	ASSERT_EQ(shmpipe_write(w, buf, 7), 7);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_EQ(shmpipe_peek(r, &rb), 7);
	ASSERT_PATTERN(rb, 7, 3, 16);
	ASSERT_OK(shmpipe_consume(r, 7));
	rb = buf;
	ASSERT_EQ(shmpipe_peek(r, &rb), 0);
	ASSERT_PTR_EQ(rb, NULL);
	ASSERT_ERR(shmpipe_consume(r, 1), -EINVAL);
	rb = buf;
	ASSERT_OK(shmpipe_reader_set_timeout(r, -1));
	ASSERT_EQ(shmpipe_peek(r, &rb), 0);
	ASSERT_PTR_EQ(rb, NULL);
	s = test_rstats(r);
	ASSERT_EQ(s.read_index, 23);
	ASSERT_EQ(s.consumed, 4);
	ASSERT_OK(shmpipe_reader_close(r));

	/* End of stream on a pipe that never carried a byte. */
	test_pair(&w, &r, 4096);
	ASSERT_OK(shmpipe_writer_close(w));
	rb = buf;
	ASSERT_EQ(shmpipe_peek(r, &rb), 0);
	ASSERT_PTR_EQ(rb, NULL);
	ASSERT_OK(shmpipe_reader_close(r));
}

static void test_timeouts(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	const void *rb;
	void *wb;
	int64_t t0, ms;

	test_pair(&w, &r, 4096);

	/* Reader, empty ring. */
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	ASSERT_ERR(shmpipe_peek(r, &rb), -EAGAIN);
	s = test_rstats(r);
	ASSERT_EQ(s.consumer_waits, 1); /* not asleep: its descriptor armed */
	ASSERT_OK(shmpipe_reader_set_timeout(r, 100));
	t0 = test_now_ms();
	ASSERT_ERR(shmpipe_peek(r, &rb), -ETIMEDOUT);
	ms = test_now_ms() - t0;
	ASSERT_GE(ms, LOW_MS(100));
	ASSERT_LE(ms, HIGH_MS(100));
	s = test_rstats(r);
	ASSERT_GE(s.consumer_waits, 1);

	/* Writer, full ring (and a ring with too little room for min_len). */
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_EQ(shmpipe_reserve(w, &wb, 4096), 4096);
	memset(wb, 1, 4000);
	ASSERT_OK(shmpipe_commit(w, 4000));
	ASSERT_ERR(shmpipe_reserve(w, &wb, 97), -EAGAIN);
	ASSERT_EQ(shmpipe_reserve(w, &wb, 96), 96);
	ASSERT_OK(shmpipe_commit(w, 96));
	ASSERT_ERR(shmpipe_reserve(w, &wb, 0), -EAGAIN);
	ASSERT_ERR(shmpipe_reserve(w, &wb, 1), -EAGAIN);
	s = test_wstats(w);
	ASSERT_EQ(s.producer_waits, 1); /* armed by the first refusal only */
	ASSERT_OK(shmpipe_writer_set_timeout(w, 100));
	t0 = test_now_ms();
	ASSERT_ERR(shmpipe_reserve(w, &wb, 1), -ETIMEDOUT);
	ms = test_now_ms() - t0;
	ASSERT_GE(ms, LOW_MS(100));
	ASSERT_LE(ms, HIGH_MS(100));
	s = test_wstats(w);
	ASSERT_GE(s.producer_waits, 1);
	ASSERT_EQ(s.write_index, 4096);
	/* Nothing was lent: a commit now is refused. */
	ASSERT_ERR(shmpipe_commit(w, 1), -EINVAL);

	/* With data there, a timed peek returns it without sleeping. */
	s = test_rstats(r);
	ASSERT_EQ(shmpipe_peek(r, &rb), 4096);
	ASSERT_EQ(test_rstats(r).consumer_waits, s.consumer_waits);

	/* The reader goes away: reserve and commit say -EPIPE. */
	ASSERT_OK(shmpipe_consume(r, 96));
	ASSERT_EQ(shmpipe_reserve(w, &wb, 96), 96);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_ERR(shmpipe_commit(w, 96), -EPIPE);
	ASSERT_ERR(shmpipe_reserve(w, &wb, 1), -EPIPE);
	ASSERT_ERR(shmpipe_reserve(w, &wb, 0), -EPIPE);
	ASSERT_OK(shmpipe_writer_set_timeout(w, -1));
	ASSERT_ERR(shmpipe_reserve(w, &wb, 1), -EPIPE);
	/* min_len above capacity is still a size error. */
	ASSERT_ERR(shmpipe_reserve(w, &wb, 4097), -EMSGSIZE);
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, 4096);
	ASSERT_OK(shmpipe_writer_close(w));
}

/* A reserve asleep on a full ring is woken by the reader's close. */
static void *close_reader_later(void *arg)
{
	test_sleep_ms(50);
	ASSERT_OK(shmpipe_reader_close(arg));
	return NULL;
}

static void test_reserve_epipe_while_asleep(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	pthread_t t;
	void *wb;

	test_pair(&w, &r, 4096);
	ASSERT_EQ(shmpipe_reserve(w, &wb, 4096), 4096);
	ASSERT_OK(shmpipe_commit(w, 4096));
	ASSERT_OK(pthread_create(&t, NULL, close_reader_later, r));
	ASSERT_ERR(shmpipe_reserve(w, &wb, 1), -EPIPE);
	ASSERT_OK(pthread_join(t, NULL));
	ASSERT_OK(shmpipe_writer_close(w));
}

static void test_null_args(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	const void *rb;
	void *wb;

	test_pair(&w, &r, 4096);
	ASSERT_ERR(shmpipe_reserve(NULL, &wb, 1), -EINVAL);
	ASSERT_ERR(shmpipe_reserve(w, NULL, 1), -EINVAL);
	ASSERT_ERR(shmpipe_reserve(NULL, NULL, 0), -EINVAL);
	ASSERT_ERR(shmpipe_commit(NULL, 0), -EINVAL);
	ASSERT_ERR(shmpipe_commit(NULL, 1), -EINVAL);
	ASSERT_ERR(shmpipe_peek(NULL, &rb), -EINVAL);
	ASSERT_ERR(shmpipe_peek(r, NULL), -EINVAL);
	ASSERT_ERR(shmpipe_peek(NULL, NULL), -EINVAL);
	ASSERT_ERR(shmpipe_consume(NULL, 0), -EINVAL);
	ASSERT_ERR(shmpipe_consume(NULL, 1), -EINVAL);
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, 0);
	ASSERT_EQ(s.produced, 0);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

/* ---- two threads ---------------------------------------------------- */

struct tctx {
	shmpipe_writer *w;
	shmpipe_reader *r;
	size_t cap;
	uint64_t total;
	uint64_t seed;
	uint64_t commits;  /* commits of more than 0 bytes */
	uint64_t consumes; /* consumes of more than 0 bytes */
};

static void random_pause(uint64_t *rng)
{
	uint64_t x = test_rand(rng) % 1024;

	if (x < 2)
		usleep((useconds_t)test_rand_range(rng, 1, 200));
	else if (x < 12)
		sched_yield();
}

static void *producer(void *arg)
{
	struct tctx *c = arg;
	uint64_t rng = c->seed * 2 + 1, off = 0;

	while (off < c->total) {
		size_t min = test_rand(&rng) % 4 == 0 ? (size_t)test_rand_range(&rng, 0, 16)
						      : (size_t)test_rand_range(&rng, 0, c->cap);
		void *wb;
		ssize_t n = shmpipe_reserve(c->w, &wb, min);
		size_t k;

		ASSERT_GE(n, min ? min : 1);
		ASSERT_LE(n, c->cap);
		/* Commit all, some, or (rarely) none of it. */
		switch (test_rand(&rng) % 8) {
		case 0:
			k = (size_t)n;
			break;
		case 1:
			k = 0;
			break;
		default:
			k = (size_t)test_rand_range(&rng, 1, (uint64_t)n);
		}
		if (k > c->total - off)
			k = (size_t)(c->total - off);
		test_pattern_fill(wb, k, c->seed, off);
		ASSERT_OK(shmpipe_commit(c->w, k));
		off += k;
		c->commits += k != 0;
		random_pause(&rng);
	}
	ASSERT_OK(shmpipe_writer_close(c->w));
	return NULL;
}

static void *consumer(void *arg)
{
	struct tctx *c = arg;
	uint64_t rng = c->seed * 2 + 2, off = 0, checked = 0;
	const void *rb;

	for (;;) {
		ssize_t n = shmpipe_peek(c->r, &rb);
		size_t k;

		if (n == 0)
			break;
		ASSERT_GT(n, 0);
		ASSERT_LE(n, c->cap);
		ASSERT_LE(off + (uint64_t)n, c->total);
		/* Check, in place, what has not been checked yet. */
		if (off + (uint64_t)n > checked) {
			uint64_t from = checked > off ? checked : off;

			ASSERT_PATTERN((const uint8_t *)rb + (from - off),
				       (size_t)(off + (uint64_t)n - from), c->seed, from);
			checked = off + (uint64_t)n;
		}
		switch (test_rand(&rng) % 8) {
		case 0:
			k = (size_t)n;
			break;
		case 1:
			k = 0;
			break;
		default:
			k = (size_t)test_rand_range(&rng, 1, (uint64_t)n);
		}
		/* More than shown is refused, and releases nothing. */
		if (test_rand(&rng) % 64 == 0)
			ASSERT_ERR(shmpipe_consume(c->r, (size_t)n + 1), -EINVAL);
		ASSERT_OK(shmpipe_consume(c->r, k));
		off += k;
		c->consumes += k != 0;
		random_pause(&rng);
	}
	ASSERT_EQ(off, c->total);
	rb = &rng;
	ASSERT_EQ(shmpipe_peek(c->r, &rb), 0);
	ASSERT_PTR_EQ(rb, NULL);
	return NULL;
}

static void threaded(size_t cap, uint64_t total, uint64_t seed)
{
	struct tctx c;
	shmpipe_stats s;
	int64_t t0 = test_now_ms();

	memset(&c, 0, sizeof(c));
	c.cap = cap;
	c.total = total;
	c.seed = seed;
	test_pair(&c.w, &c.r, cap);
	test_two_threads(producer, &c, consumer, &c);
	s = test_rstats(c.r);
	ASSERT_EQ(s.write_index, total);
	ASSERT_EQ(s.read_index, total);
	ASSERT_EQ(s.produced, c.commits);
	ASSERT_EQ(s.consumed, c.consumes);
	printf("threads, capacity %zu: %" PRIu64 " MiB in %" PRIu64 " commits, %" PRIu64
	       " consumes, %" PRIu64 " producer waits, %" PRIu64 " consumer waits, %" PRId64
	       " ms\n",
	       cap, total >> 20, c.commits, c.consumes, s.producer_waits, s.consumer_waits,
	       test_now_ms() - t0);
	ASSERT_OK(shmpipe_reader_close(c.r));
}

int main(void)
{
	test_watchdog(60);
	test_null_args();
	test_reserve_sizes();
	test_commit_errors();
	test_consume_errors();
	test_timeouts();
	test_reserve_epipe_while_asleep();
	check_every_offset(4096);
	check_every_offset(5000);
	check_every_offset(100);
	threaded(5000, (uint64_t)64 << 20, 1);
	threaded(65536, (uint64_t)32 << 20, 2);
	return T_PASS;
}
