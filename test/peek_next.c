/* SPDX-License-Identifier: MIT */
/*
 * Description: shmpipe_peek_next, several records held in the ring at once.
 * After a peek, each peek_next shows the next record in place and never
 * waits (-EAGAIN when nothing follows those shown, also after the end of
 * the stream); consume releases the first record shown, with its length
 * only, and the next one shown becomes the first; peek and read start again
 * from the first record; a stream-mode or shared pipe refuses it. Then two
 * threads: the reader holds a window of up to 64 records of random lengths
 * (across the wrap of a small ring), checks each when shown and again just
 * before it releases it, and releases them in random batches, as a
 * forwarder does when acknowledgements come: nothing split, lost, reordered
 * or overwritten while held.
 */
#include "test.h"

static void record_pair(shmpipe_writer **w, shmpipe_reader **r, size_t cap, unsigned flags,
			unsigned readers)
{
	shmpipe_options o = test_opts(cap);

	o.flags = flags;
	o.readers = readers;
	ASSERT_OK(shmpipe_pair(w, r, &o));
}

static void put(shmpipe_writer *w, uint64_t seq, uint64_t len)
{
	uint8_t buf[512];

	ASSERT_LE(len, sizeof(buf));
	test_record_fill(buf, seq, len);
	ASSERT_EQ(shmpipe_write(w, buf, len), len);
}

static uint64_t len_of(uint64_t seq)
{
	return 8 + seq * 13 % 200;
}

static void test_basic(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	const void *p[8];
	uint8_t buf[512];

	record_pair(&w, &r, 4096 + 100, SHMPIPE_RECORDS, 0);
	/* Nothing shown, nothing there: it is a peek, which waits (timeout 0 here). */
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	ASSERT_ERR(shmpipe_peek_next(r, &p[0]), -EAGAIN);
	for (uint64_t i = 0; i < 5; i++)
		put(w, i, len_of(i));
	ASSERT_EQ(shmpipe_peek(r, &p[0]), len_of(0));
	for (uint64_t i = 1; i < 5; i++) {
		ASSERT_EQ(shmpipe_peek_next(r, &p[i]), len_of(i));
		test_record_check(p[i], i, len_of(i));
	}
	ASSERT_ERR(shmpipe_peek_next(r, &p[5]), -EAGAIN);
	ASSERT_ERR(shmpipe_peek_next(r, &p[5]), -EAGAIN);
	/* Only the first record's length releases anything. */
	ASSERT_ERR(shmpipe_consume(r, len_of(1)), -EINVAL);
	ASSERT_OK(shmpipe_consume(r, len_of(0)));
	ASSERT_EQ(test_rstats(r).consumed, 1);
	ASSERT_ERR(shmpipe_consume(r, len_of(0)), -EINVAL);
	/* The others stay shown, in place. */
	test_record_check(p[4], 4, len_of(4));
	ASSERT_ERR(shmpipe_peek_next(r, &p[5]), -EAGAIN);
	put(w, 5, len_of(5));
	ASSERT_EQ(shmpipe_peek_next(r, &p[5]), len_of(5));
	test_record_check(p[5], 5, len_of(5));
	ASSERT_OK(shmpipe_consume(r, len_of(1)));
	ASSERT_OK(shmpipe_consume(r, len_of(2)));
	/* A peek starts again from the first: 3, then 4 next. */
	ASSERT_EQ(shmpipe_peek(r, &p[0]), len_of(3));
	test_record_check(p[0], 3, len_of(3));
	ASSERT_EQ(shmpipe_peek_next(r, &p[1]), len_of(4));
	test_record_check(p[1], 4, len_of(4));
	/* So does a read: it takes 3; then peek_next is a peek, of 4. */
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), len_of(3));
	test_record_check(buf, 3, len_of(3));
	ASSERT_EQ(shmpipe_peek_next(r, &p[0]), len_of(4));
	test_record_check(p[0], 4, len_of(4));
	ASSERT_EQ(shmpipe_peek_next(r, &p[1]), len_of(5));
	/* The end comes after the records shown: -EAGAIN until they are gone. */
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_ERR(shmpipe_peek_next(r, &p[2]), -EAGAIN);
	ASSERT_OK(shmpipe_consume(r, len_of(4)));
	ASSERT_OK(shmpipe_consume(r, len_of(5)));
	ASSERT_EQ(shmpipe_peek_next(r, &p[0]), 0);
	ASSERT_EQ(shmpipe_peek(r, &p[0]), 0);
	ASSERT_EQ(test_rstats(r).consumed, 6);
	ASSERT_OK(shmpipe_reader_close(r));

	/* Not for a byte stream (peek shows all of it) nor a shared pipe. */
	record_pair(&w, &r, 4096, 0, 0);
	ASSERT_EQ(shmpipe_write(w, "ab", 2), 2);
	ASSERT_ERR(shmpipe_peek_next(r, &p[0]), -EINVAL);
	ASSERT_ERR(shmpipe_peek_next(NULL, &p[0]), -EINVAL);
	ASSERT_ERR(shmpipe_peek_next(r, NULL), -EINVAL);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_writer_close(w));
	record_pair(&w, &r, 4096, SHMPIPE_RECORDS | SHMPIPE_SHARE, 2);
	put(w, 0, 8);
	ASSERT_ERR(shmpipe_peek_next(r, &p[0]), -EINVAL);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_writer_close(w));
}

struct tctx {
	shmpipe_writer *w;
	shmpipe_reader *r;
	uint64_t count, seed;
	size_t cap;
};

static uint64_t rec_len(uint64_t seed, uint64_t seq, uint64_t max)
{
	uint64_t x = (seq + 1) * 0x9e3779b97f4a7c15ull ^ seed;

	x ^= x >> 29;
	return 1 + (x * 0xbf58476d1ce4e5b9ull >> 40) % (x & 1 ? 64 : max);
}

static void *producer(void *arg)
{
	struct tctx *c = arg;
	const uint64_t max = SHMPIPE_RECORD_MAX(c->cap) / 4;
	uint8_t *buf = malloc(max);

	ASSERT_NOT_NULL(buf);
	for (uint64_t seq = 0; seq < c->count; seq++) {
		uint64_t len = rec_len(c->seed, seq, max);

		test_record_fill(buf, seq, len);
		ASSERT_EQ(shmpipe_write(c->w, buf, len), len);
	}
	free(buf);
	ASSERT_OK(shmpipe_writer_close(c->w));
	return NULL;
}

#define WINDOW 64

static void *holder(void *arg)
{
	struct tctx *c = arg;
	const uint64_t max = SHMPIPE_RECORD_MAX(c->cap) / 4;
	const void *held[WINDOW];
	uint64_t rng = c->seed + 7, first = 0, n = 0; /* held: seq first .. first + n - 1 */
	uint64_t eagain = 0;

	for (;;) {
		ssize_t got = 0;

		/* Show more, up to the window. */
		while (n < WINDOW) {
			got = shmpipe_peek_next(c->r, &held[(first + n) % WINDOW]);
			if (got <= 0)
				break;
			ASSERT_LT(first + n, c->count);
			ASSERT_EQ(got, rec_len(c->seed, first + n, max));
			test_record_check(held[(first + n) % WINDOW], first + n, (uint64_t)got);
			n++;
		}
		if (got == 0)
			break;
		if (got < 0) {
			ASSERT_EQ(got, -EAGAIN);
			eagain++;
		}
		/* Acknowledged: a batch from the front, checked once more. */
		for (uint64_t k = test_rand_range(&rng, 1, n); k > 0; k--, first++, n--) {
			uint64_t len = rec_len(c->seed, first, max);

			test_record_check(held[first % WINDOW], first, len);
			ASSERT_OK(shmpipe_consume(c->r, len));
		}
	}
	ASSERT_EQ(n, 0);
	ASSERT_EQ(first, c->count);
	printf("held up to %d records: %" PRIu64 " records, %" PRIu64 " times nothing more\n",
	       WINDOW, first, eagain);
	return NULL;
}

static void threaded(size_t cap, uint64_t count, uint64_t seed)
{
	struct tctx c = {.count = count, .seed = seed, .cap = cap};

	record_pair(&c.w, &c.r, cap, SHMPIPE_RECORDS, 0);
	test_two_threads(producer, &c, holder, &c);
	ASSERT_EQ(test_rstats(c.r).consumed, count);
	ASSERT_OK(shmpipe_reader_close(c.r));
}

int main(void)
{
	test_watchdog(60);
	test_basic();
	threaded(4096 + 100, 200000, 1);
	threaded(65536, 100000, 2);
	return T_PASS;
}
