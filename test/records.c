/* SPDX-License-Identifier: MIT */
/*
 * Description: record mode (SHMPIPE_RECORDS). Every length from 1 to
 * SHMPIPE_RECORD_MAX(capacity) round-trips whole in a ring of 4196 bytes
 * (not a multiple of 8) and in one of 64, written in turn by shmpipe_write, reserve/commit
 * and writev, and taken in turn by read, peek/consume and read with a
 * buffer of exactly the record's length; peek returns exactly one record,
 * its length, and an 8-byte-aligned payload; write_index and read_index
 * advance by SHMPIPE_RECORD_SPACE(len) per record; produced and consumed
 * count records. A ring fills to the byte: records whose framed sizes add
 * up to the capacity fit, one more does not, and a full ring of small
 * records reads back one record per read however big the buffer. Reserve
 * lends the largest record that fits now; commit(0) publishes nothing;
 * consume takes the record's length or 0 and nothing else; once the reader
 * closes, commit, reserve, write and writev say -EPIPE. Big records in a
 * 1 MiB ring, up to the largest, across the wrap. Last, two threads move
 * records of random lengths (written by write, reserve/commit and writev
 * batches; read by read and peek/consume), each self-describing and
 * checked whole: records are never split, merged, lost or reordered.
 */
#include "test.h"

static void record_pair(shmpipe_writer **w, shmpipe_reader **r, size_t cap)
{
	shmpipe_options o = test_opts(cap);

	o.flags = SHMPIPE_RECORDS;
	ASSERT_OK(shmpipe_pair(w, r, &o));
}

static int aligned8(const void *p)
{
	return ((uintptr_t)p & 7) == 0;
}

static void test_macros(void)
{
	ASSERT_EQ(SHMPIPE_RECORD_SPACE(1), 16);
	ASSERT_EQ(SHMPIPE_RECORD_SPACE(8), 16);
	ASSERT_EQ(SHMPIPE_RECORD_SPACE(9), 24);
	ASSERT_EQ(SHMPIPE_RECORD_SPACE(0), 8);
	ASSERT_EQ(SHMPIPE_RECORD_MAX(16), 8);
	ASSERT_EQ(SHMPIPE_RECORD_MAX(23), 8);
	ASSERT_EQ(SHMPIPE_RECORD_MAX(24), 16);
	ASSERT_EQ(SHMPIPE_RECORD_MAX(4196), 4184);
	ASSERT_EQ(SHMPIPE_RECORD_MAX(1 << 20), (1 << 20) - 8);
}

/* Each length in turn, through each way in and each way out. */
static void test_every_length(size_t cap)
{
	const uint64_t max = SHMPIPE_RECORD_MAX(cap);
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	uint8_t *buf = malloc(max + 64);
	uint64_t space = 0;

	ASSERT_NOT_NULL(buf);
	record_pair(&w, &r, cap);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));

	for (uint64_t len = 1; len <= max; len++) {
		const void *rb;
		void *wb;
		ssize_t n;

		/* In. */
		switch (len % 3) {
		case 0:
			test_pattern_fill(buf, len, len, 0);
			ASSERT_EQ(shmpipe_write(w, buf, len), len);
			break;
		case 1:
			n = shmpipe_reserve(w, &wb, len);
			ASSERT_GE(n, len);
			ASSERT_LE(n, max);
			ASSERT_TRUE(aligned8(wb));
			test_pattern_fill(wb, len, len, 0);
			ASSERT_OK(shmpipe_commit(w, len));
			break;
		default: {
			struct iovec iov[3] = {{buf, 0}, {buf, len}, {NULL, 0}};

			test_pattern_fill(buf, len, len, 0);
			ASSERT_EQ(shmpipe_writev(w, iov, 3), len);
		}
		}
		space += SHMPIPE_RECORD_SPACE(len);
		s = test_wstats(w);
		ASSERT_EQ(s.write_index, space);
		ASSERT_EQ(s.produced, len);
		ASSERT_EQ(s.read_index, space - SHMPIPE_RECORD_SPACE(len));
		ASSERT_EQ(s.consumed, len - 1);

		/* One record, its length, aligned, in place. */
		ASSERT_EQ(shmpipe_peek(r, &rb), len);
		ASSERT_TRUE(aligned8(rb));
		ASSERT_PATTERN(rb, len, len, 0);

		/* Out. */
		switch (len % 4) {
		case 0:
			ASSERT_OK(shmpipe_consume(r, len));
			break;
		case 1:
			memset(buf, 0, len);
			ASSERT_EQ(shmpipe_read(r, buf, len), len);
			ASSERT_PATTERN(buf, len, len, 0);
			break;
		case 2:
			memset(buf, 0, len);
			ASSERT_EQ(shmpipe_read(r, buf, max + 64), len);
			ASSERT_PATTERN(buf, len, len, 0);
			break;
		default:
			/* Peeking again shows the same record. */
			ASSERT_EQ(shmpipe_peek(r, &rb), len);
			ASSERT_PATTERN(rb, len, len, 0);
			ASSERT_OK(shmpipe_consume(r, len));
		}
		s = test_rstats(r);
		ASSERT_EQ(s.read_index, space);
		ASSERT_EQ(s.consumed, len);
		ASSERT_ERR(shmpipe_peek(r, &rb), -EAGAIN);
	}
	s = test_rstats(r);
	/*
	 * The writer never had to wait; the reader's last peek of each round
	 * armed its descriptor and the next record rang it: one wait a length.
	 */
	ASSERT_EQ(s.producer_waits, 0);
	ASSERT_EQ(s.consumer_waits, max);
	printf("capacity %zu: every length 1..%" PRIu64 ", %" PRIu64 " ring bytes\n", cap, max,
	       space);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
	free(buf);
}

/* Records pack to the byte, and each read returns exactly one of them. */
static void test_packing(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	uint8_t buf[4200];
	const void *rb;
	uint64_t n, space;

	/* 4096 = SPACE(1) + SPACE(4072): exactly full. */
	record_pair(&w, &r, 4096);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	test_pattern_fill(buf, 4088, 5, 0);
	ASSERT_EQ(shmpipe_write(w, buf, 4088), 4088); /* RECORD_MAX(4096) */
	ASSERT_ERR(shmpipe_write(w, buf, 1), -EAGAIN);
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 4088);
	ASSERT_PATTERN(buf, 4088, 5, 0);
	ASSERT_EQ(shmpipe_write(w, buf, 1), 1);
	ASSERT_ERR(shmpipe_write(w, buf, 4073), -EAGAIN);
	ASSERT_EQ(shmpipe_write(w, buf, 4072), 4072);
	ASSERT_ERR(shmpipe_write(w, buf, 1), -EAGAIN);
	s = test_wstats(w);
	ASSERT_EQ(s.write_index - s.read_index, 4096);
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 1);
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 4072);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));

	/*
	 * 4196: records of 1..8 bytes take 16 each, so 262 fit (4192) and the
	 * last 4 bytes stay empty; every read returns one record.
	 */
	record_pair(&w, &r, 4196);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	for (n = 0;; n++) {
		uint8_t len = (uint8_t)(n % 8 + 1);
		ssize_t ret;

		test_pattern_fill(buf, len, 100 + n, 0);
		ret = shmpipe_write(w, buf, len);
		if (ret == -EAGAIN)
			break;
		ASSERT_EQ(ret, len);
	}
	ASSERT_EQ(n, 262);
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, 4192);
	ASSERT_EQ(s.produced, 262);
	for (uint64_t i = 0; i < n; i++) {
		uint8_t len = (uint8_t)(i % 8 + 1);

		if (i % 2) {
			ASSERT_EQ(shmpipe_peek(r, &rb), len);
			ASSERT_PATTERN(rb, len, 100 + i, 0);
			ASSERT_OK(shmpipe_consume(r, len));
		} else {
			ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), len);
			ASSERT_PATTERN(buf, len, 100 + i, 0);
		}
	}
	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), -EAGAIN);
	s = test_rstats(r);
	ASSERT_EQ(s.read_index, 4192);
	ASSERT_EQ(s.consumed, 262);

	/* Mixed sizes up to exactly full: 4192 = 24 + 4168 (16 + 4152). */
	space = s.write_index;
	test_pattern_fill(buf, 4184, 6, 0);
	ASSERT_EQ(shmpipe_write(w, buf, 9), 9);	       /* 24 */
	ASSERT_EQ(shmpipe_write(w, buf, 4152), 4152);  /* 4160 */
	ASSERT_ERR(shmpipe_write(w, buf, 1), -EAGAIN); /* 4 free */
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, space + 4184);
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 9);
	ASSERT_PATTERN(buf, 9, 6, 0);
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 4152);
	ASSERT_PATTERN(buf, 4152, 6, 0);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 0);
	rb = buf;
	ASSERT_EQ(shmpipe_peek(r, &rb), 0);
	ASSERT_PTR_EQ(rb, NULL);
	ASSERT_OK(shmpipe_reader_close(r));
}

/* Reserve and commit: the largest record that fits, one record per commit. */
static void test_reserve_commit(void)
{
	const size_t cap = 4196;
	const uint64_t max = SHMPIPE_RECORD_MAX(cap);
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s0, s;
	const void *rb;
	void *wb, *wb2;
	uint8_t buf[64];
	ssize_t n;

	record_pair(&w, &r, cap);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));

	ASSERT_EQ(shmpipe_reserve(w, &wb, 1), max);
	ASSERT_TRUE(aligned8(wb));
	ASSERT_EQ(shmpipe_reserve(w, &wb2, 0), max);
	ASSERT_PTR_EQ(wb2, wb);
	ASSERT_EQ(shmpipe_reserve(w, &wb2, max), max);
	ASSERT_PTR_EQ(wb2, wb);

	/* commit(0) publishes nothing; more than lent is refused. */
	s0 = test_wstats(w);
	ASSERT_ERR(shmpipe_commit(w, max + 1), -EINVAL);
	ASSERT_OK(shmpipe_commit(w, 0));
	s = test_wstats(w);
	ASSERT_STATS_EQ(&s, &s0);
	ASSERT_ERR(shmpipe_peek(r, &rb), -EAGAIN);
	ASSERT_ERR(shmpipe_commit(w, 1), -EINVAL);

	/* A record of 13 takes 24 bytes of the ring. */
	ASSERT_EQ(shmpipe_reserve(w, &wb, 13), max);
	test_pattern_fill(wb, 13, 7, 0);
	ASSERT_OK(shmpipe_commit(w, 13));
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, 24);
	ASSERT_EQ(s.produced, 1);
	/* 4196 - 24 = 4172 free: the frame (8) and 4160 bytes rounded to 8. */
	ASSERT_EQ(shmpipe_reserve(w, &wb, 1), 4160);
	ASSERT_TRUE(aligned8(wb));
	ASSERT_ERR(shmpipe_reserve(w, &wb, 4161), -EAGAIN);
	ASSERT_EQ(shmpipe_reserve(w, &wb, 4160), 4160);
	test_pattern_fill(wb, 4160, 8, 0);
	/* Commit less than lent: the record is as long as the commit says. */
	ASSERT_OK(shmpipe_commit(w, 100));
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, 24 + SHMPIPE_RECORD_SPACE(100));
	ASSERT_EQ(s.produced, 2);

	ASSERT_EQ(shmpipe_peek(r, &rb), 13);
	ASSERT_PATTERN(rb, 13, 7, 0);
	/* consume takes the record's length or 0, nothing else. */
	ASSERT_ERR(shmpipe_consume(r, 12), -EINVAL);
	ASSERT_ERR(shmpipe_consume(r, 1), -EINVAL);
	ASSERT_ERR(shmpipe_consume(r, 14), -EINVAL);
	ASSERT_OK(shmpipe_consume(r, 0));
	s = test_rstats(r);
	ASSERT_EQ(s.read_index, 0);
	ASSERT_EQ(s.consumed, 0);
	ASSERT_EQ(shmpipe_peek(r, &rb), 13);
	ASSERT_OK(shmpipe_consume(r, 13));
	s = test_rstats(r);
	ASSERT_EQ(s.read_index, 24);
	ASSERT_EQ(s.consumed, 1);
	/* The pointer from that peek is spent: a second consume is refused. */
	ASSERT_ERR(shmpipe_consume(r, 13), -EINVAL);
	ASSERT_EQ(shmpipe_peek(r, &rb), 100);
	ASSERT_TRUE(aligned8(rb));
	ASSERT_PATTERN(rb, 100, 8, 0);
	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), -EMSGSIZE);
	ASSERT_EQ(shmpipe_peek(r, &rb), 100);
	ASSERT_OK(shmpipe_consume(r, 100));
	s = test_rstats(r);
	ASSERT_EQ(s.read_index, s.write_index);
	ASSERT_EQ(s.consumed, 2);

	/* A reserve after data was consumed lends at least min_len, at most what fits. */
	n = shmpipe_reserve(w, &wb, 8);
	ASSERT_GE(n, 8);
	ASSERT_LE(n, max);
	ASSERT_EQ(shmpipe_reserve(w, &wb, max), max);
	ASSERT_OK(shmpipe_commit(w, max));
	ASSERT_ERR(shmpipe_reserve(w, &wb, 1), -EAGAIN);
	ASSERT_EQ(shmpipe_peek(r, &rb), max);
	ASSERT_OK(shmpipe_consume(r, max));

	/* The reader goes away: every way in says -EPIPE. */
	ASSERT_EQ(shmpipe_reserve(w, &wb, 1), max);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_ERR(shmpipe_commit(w, 10), -EPIPE);
	ASSERT_ERR(shmpipe_reserve(w, &wb, 1), -EPIPE);
	ASSERT_ERR(shmpipe_write(w, buf, 10), -EPIPE);
	{
		struct iovec iov = {buf, 10};

		ASSERT_ERR(shmpipe_writev(w, &iov, 1), -EPIPE);
	}
	ASSERT_OK(shmpipe_writer_close(w));
}

/* Large records in a 1 MiB ring, crossing the wrap. */
static void test_big(void)
{
	const size_t cap = (size_t)1 << 20;
	const uint64_t max = SHMPIPE_RECORD_MAX(cap);
	const uint64_t lens[] = {max, max - 1, max - 7, max - 8, 524288, 524281,
				 3,   700001,  1048000, 65536,	 65537,	 max};
	const size_t nlens = sizeof(lens) / sizeof(lens[0]);
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	const void *rb;
	uint8_t *buf = malloc(max);
	uint64_t space = 0;

	ASSERT_NOT_NULL(buf);
	record_pair(&w, &r, cap);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	ASSERT_EQ(max, cap - 8);

	for (size_t i = 0; i < nlens; i++) {
		uint64_t len = lens[i];

		test_pattern_fill(buf, len, 200 + i, 0);
		ASSERT_EQ(shmpipe_write(w, buf, len), len);
		space += SHMPIPE_RECORD_SPACE(len);
		ASSERT_EQ(shmpipe_peek(r, &rb), len);
		ASSERT_TRUE(aligned8(rb));
		ASSERT_PATTERN(rb, len, 200 + i, 0);
		if (i % 2) {
			ASSERT_OK(shmpipe_consume(r, len));
		} else {
			memset(buf, 0, len);
			ASSERT_EQ(shmpipe_read(r, buf, max), len);
			ASSERT_PATTERN(buf, len, 200 + i, 0);
		}
	}

	/* Two records of half the ring fill it to the byte. */
	test_pattern_fill(buf, 524280, 300, 0);
	ASSERT_EQ(shmpipe_write(w, buf, 524280), 524280);
	test_pattern_fill(buf, 524280, 301, 0);
	ASSERT_EQ(shmpipe_write(w, buf, 524280), 524280);
	ASSERT_ERR(shmpipe_write(w, buf, 1), -EAGAIN);
	space += 2 * SHMPIPE_RECORD_SPACE(524280);
	ASSERT_EQ(shmpipe_peek(r, &rb), 524280);
	ASSERT_PATTERN(rb, 524280, 300, 0);
	ASSERT_OK(shmpipe_consume(r, 524280));
	ASSERT_EQ(shmpipe_read(r, buf, max), 524280);
	ASSERT_PATTERN(buf, 524280, 301, 0);

	s = test_rstats(r);
	ASSERT_EQ(s.write_index, space);
	ASSERT_EQ(s.read_index, space);
	ASSERT_EQ(s.produced, nlens + 2);
	ASSERT_EQ(s.consumed, nlens + 2);
	printf("1 MiB ring: %zu big records, %" PRIu64 " ring bytes\n", nlens + 2, space);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
	free(buf);
}

/* ---- two threads ---------------------------------------------------- */

struct tctx {
	shmpipe_writer *w;
	shmpipe_reader *r;
	size_t cap;
	uint64_t count; /* records */
	uint64_t seed;
	uint64_t space; /* ring bytes of all records, from the writer */
};

/* The length of record seq, the same on both sides. */
static uint64_t rec_len(uint64_t seed, uint64_t seq, uint64_t max)
{
	uint64_t x = test_mix64(seed ^ (seq * 0x9e3779b97f4a7c15ull));

	switch (x % 4) {
	case 0:
		return 1 + (x >> 8) % 16;
	case 1:
		return 1 + (x >> 8) % 256;
	default:
		return 1 + (x >> 8) % max;
	}
}

static void *producer(void *arg)
{
	struct tctx *c = arg;
	const uint64_t max = SHMPIPE_RECORD_MAX(c->cap);
	uint64_t rng = c->seed * 2 + 1, seq = 0;
	uint8_t *buf = malloc(8 * max);
	struct iovec iov[8];

	ASSERT_NOT_NULL(buf);
	while (seq < c->count) {
		uint64_t len = rec_len(c->seed, seq, max);
		uint64_t how = test_rand(&rng) % 3;
		void *wb;
		ssize_t n;

		if (how == 0) {
			test_record_fill(buf, seq, len);
			ASSERT_EQ(shmpipe_write(c->w, buf, len), len);
			c->space += SHMPIPE_RECORD_SPACE(len);
			seq++;
		} else if (how == 1) {
			n = shmpipe_reserve(c->w, &wb, len);
			ASSERT_GE(n, len);
			ASSERT_LE(n, max);
			test_record_fill(wb, seq, len);
			ASSERT_OK(shmpipe_commit(c->w, len));
			c->space += SHMPIPE_RECORD_SPACE(len);
			seq++;
		} else {
			int k = (int)test_rand_range(&rng, 1, 8);
			uint64_t sum = 0;
			int i;

			for (i = 0; i < k && seq < c->count; i++, seq++) {
				len = rec_len(c->seed, seq, max);
				iov[i].iov_base = buf + i * max;
				iov[i].iov_len = len;
				test_record_fill(iov[i].iov_base, seq, len);
				sum += len;
				c->space += SHMPIPE_RECORD_SPACE(len);
			}
			ASSERT_EQ(shmpipe_writev(c->w, iov, i), sum);
		}
		if (test_rand(&rng) % 512 == 0)
			usleep(50);
	}
	free(buf);
	ASSERT_OK(shmpipe_writer_close(c->w));
	return NULL;
}

static void *consumer(void *arg)
{
	struct tctx *c = arg;
	const uint64_t max = SHMPIPE_RECORD_MAX(c->cap);
	uint64_t rng = c->seed * 2 + 2, seq = 0;
	uint8_t *buf = malloc(max + 8);

	ASSERT_NOT_NULL(buf);
	for (;; seq++) {
		uint64_t len = seq < c->count ? rec_len(c->seed, seq, max) : 0;
		const void *rb;
		ssize_t n;

		if (test_rand(&rng) % 2) {
			n = shmpipe_peek(c->r, &rb);
			if (n == 0)
				break;
			ASSERT_EQ(n, len);
			ASSERT_TRUE(aligned8(rb));
			test_record_check(rb, seq, len);
			ASSERT_OK(shmpipe_consume(c->r, len));
		} else {
			n = shmpipe_read(c->r, buf, max + 8);
			if (n == 0)
				break;
			ASSERT_EQ(n, len);
			test_record_check(buf, seq, len);
		}
		if (test_rand(&rng) % 512 == 0)
			usleep(50);
	}
	ASSERT_EQ(seq, c->count);
	free(buf);
	return NULL;
}

static void threaded(size_t cap, uint64_t count, uint64_t seed)
{
	struct tctx c;
	shmpipe_stats s;
	int64_t t0 = test_now_ms();

	memset(&c, 0, sizeof(c));
	c.cap = cap;
	c.count = count;
	c.seed = seed;
	record_pair(&c.w, &c.r, cap);
	test_two_threads(producer, &c, consumer, &c);
	s = test_rstats(c.r);
	ASSERT_EQ(s.produced, count);
	ASSERT_EQ(s.consumed, count);
	ASSERT_EQ(s.write_index, c.space);
	ASSERT_EQ(s.read_index, c.space);
	printf("threads, capacity %zu: %" PRIu64 " records, %" PRIu64 " MiB, %" PRIu64
	       " producer waits, %" PRIu64 " consumer waits, %" PRId64 " ms\n",
	       cap, count, c.space >> 20, s.producer_waits, s.consumer_waits, test_now_ms() - t0);
	ASSERT_OK(shmpipe_reader_close(c.r));
}

int main(void)
{
	test_watchdog(60);
	test_macros();
	test_every_length(4096 + 100);
	test_every_length(64);
	test_packing();
	test_reserve_commit();
	test_big();
	threaded(4096 + 100, 80000, 1);
	threaded(65536 + 4, 6000, 2);
	return T_PASS;
}
