/* SPDX-License-Identifier: MIT */
/*
 * Description: every -EMSGSIZE of record mode, and nothing lost after it. A
 * write of SHMPIPE_RECORD_MAX + 1 (and more) is -EMSGSIZE and leaves the
 * counters as they were, while RECORD_MAX itself goes through; a read with
 * a buffer one byte too small is -EMSGSIZE and the record stays (the
 * counters do not move, a big enough read then gets it intact, and the
 * records after it follow in order); reserve with min_len above RECORD_MAX
 * is -EMSGSIZE; a writev with one oversized record among good ones is
 * -EMSGSIZE and writes none of them. A record-mode capacity below 16 is
 * refused by shmpipe_pair with -EINVAL (16 is the smallest, with records
 * of 8 bytes). A record that does not fit now is all or nothing under
 * timeouts: -EAGAIN (timeout 0) or -ETIMEDOUT (100 ms) and no byte of it
 * written, and it goes through once there is room; a writev stops before
 * the first record that does not fit and returns the payload of those that
 * did.
 */
#include "test.h"

static void record_pair(shmpipe_writer **w, shmpipe_reader **r, size_t cap)
{
	shmpipe_options o = test_opts(cap);

	o.flags = SHMPIPE_RECORDS;
	ASSERT_OK(shmpipe_pair(w, r, &o));
}

static void test_write_too_big(size_t cap)
{
	const uint64_t max = SHMPIPE_RECORD_MAX(cap);
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s0, s;
	uint8_t *buf = malloc(max + 64);
	struct iovec iov = {buf, max + 1};
	void *wb;

	ASSERT_NOT_NULL(buf);
	record_pair(&w, &r, cap);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));

	/* Something in the ring first, so that "unchanged" means something. */
	test_pattern_fill(buf, 5, 1, 0);
	ASSERT_EQ(shmpipe_write(w, buf, 5), 5);
	s0 = test_wstats(w);
	ASSERT_ERR(shmpipe_write(w, buf, max + 1), -EMSGSIZE);
	ASSERT_ERR(shmpipe_write(w, buf, max + 8), -EMSGSIZE);
	ASSERT_ERR(shmpipe_write(w, buf, max + 64), -EMSGSIZE);
	ASSERT_ERR(shmpipe_writev(w, &iov, 1), -EMSGSIZE);
	ASSERT_ERR(shmpipe_reserve(w, &wb, max + 1), -EMSGSIZE);
	ASSERT_ERR(shmpipe_reserve(w, &wb, SIZE_MAX), -EMSGSIZE);
	s = test_wstats(w);
	ASSERT_STATS_EQ(&s, &s0);

	/* The reader sees only the 5-byte record. */
	ASSERT_EQ(shmpipe_read(r, buf, max + 64), 5);
	ASSERT_PATTERN(buf, 5, 1, 0);
	ASSERT_ERR(shmpipe_read(r, buf, max + 64), -EAGAIN);

	/* The largest record itself goes through, by write and by reserve. */
	test_pattern_fill(buf, max, 2, 0);
	ASSERT_EQ(shmpipe_write(w, buf, max), max);
	ASSERT_ERR(shmpipe_write(w, buf, 1), -EAGAIN);
	memset(buf, 0, max);
	ASSERT_EQ(shmpipe_read(r, buf, max), max);
	ASSERT_PATTERN(buf, max, 2, 0);
	ASSERT_EQ(shmpipe_reserve(w, &wb, max), max);
	test_pattern_fill(wb, max, 3, 0);
	ASSERT_OK(shmpipe_commit(w, max));
	memset(buf, 0, max);
	ASSERT_EQ(shmpipe_read(r, buf, max), max);
	ASSERT_PATTERN(buf, max, 3, 0);

	s = test_wstats(w);
	ASSERT_EQ(s.produced, 3);
	ASSERT_EQ(s.consumed, 3);
	ASSERT_EQ(s.write_index, SHMPIPE_RECORD_SPACE(5) + 2 * SHMPIPE_RECORD_SPACE(max));
	ASSERT_EQ(s.read_index, s.write_index);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
	free(buf);
}

/* A buffer one byte short: -EMSGSIZE, and the record is still first in line. */
static void test_read_too_small(void)
{
	const size_t cap = 4096 + 100;
	const uint64_t lens[] = {1, 7, 8, 9, 100, 3000, 1000, 2, 15, 16, 17};
	const size_t n = sizeof(lens) / sizeof(lens[0]);
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s0, s;
	uint8_t buf[4200];
	uint64_t space = 0;

	record_pair(&w, &r, cap);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));

	for (size_t i = 0; i < n; i++) {
		/* Keep the ring busy: this record and the next one are in it. */
		if (i == 0) {
			test_pattern_fill(buf, lens[0], 10, 0);
			ASSERT_EQ(shmpipe_write(w, buf, lens[0]), lens[0]);
		}
		if (i + 1 < n) {
			test_pattern_fill(buf, lens[i + 1], 10 + i + 1, 0);
			ASSERT_EQ(shmpipe_write(w, buf, lens[i + 1]), lens[i + 1]);
		}
		s0 = test_rstats(r);
		if (lens[i] > 1) {
			ASSERT_ERR(shmpipe_read(r, buf, lens[i] - 1), -EMSGSIZE);
			ASSERT_ERR(shmpipe_read(r, buf, 1), -EMSGSIZE);
		}
		/* A read of 0 bytes returns 0 at once, in record mode too. */
		ASSERT_EQ(shmpipe_read(r, buf, 0), 0);
		s = test_rstats(r);
		ASSERT_STATS_EQ(&s, &s0);
		memset(buf, 0, sizeof(buf));
		ASSERT_EQ(shmpipe_read(r, buf, lens[i]), lens[i]);
		ASSERT_PATTERN(buf, lens[i], 10 + i, 0);
		space += SHMPIPE_RECORD_SPACE(lens[i]);
		s = test_rstats(r);
		ASSERT_EQ(s.read_index, space);
		ASSERT_EQ(s.consumed, i + 1);
	}
	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), -EAGAIN);

	/* The largest record, with a buffer one byte short. */
	test_pattern_fill(buf, 4184, 49, 0);
	ASSERT_EQ(shmpipe_write(w, buf, 4184), 4184);
	ASSERT_ERR(shmpipe_read(r, buf, 4183), -EMSGSIZE);
	memset(buf, 0, sizeof(buf));
	ASSERT_EQ(shmpipe_read(r, buf, 4184), 4184);
	ASSERT_PATTERN(buf, 4184, 49, 0);

	/* After a refused read, peek still shows the record and its length. */
	{
		const void *rb;

		test_pattern_fill(buf, 300, 50, 0);
		ASSERT_EQ(shmpipe_write(w, buf, 300), 300);
		ASSERT_ERR(shmpipe_read(r, buf, 299), -EMSGSIZE);
		ASSERT_EQ(shmpipe_peek(r, &rb), 300);
		ASSERT_PATTERN(rb, 300, 50, 0);
		ASSERT_ERR(shmpipe_read(r, buf, 299), -EMSGSIZE);
		ASSERT_ERR(shmpipe_consume(r, 300), -EINVAL); /* the read ended the peek */
		ASSERT_EQ(shmpipe_read(r, buf, 300), 300);
		ASSERT_PATTERN(buf, 300, 50, 0);
	}

	/* A writer that closes does not change that; end of stream comes after. */
	test_pattern_fill(buf, 64, 60, 0);
	ASSERT_EQ(shmpipe_write(w, buf, 64), 64);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_ERR(shmpipe_read(r, buf, 63), -EMSGSIZE);
	ASSERT_EQ(shmpipe_read(r, buf, 64), 64);
	ASSERT_PATTERN(buf, 64, 60, 0);
	ASSERT_EQ(shmpipe_read(r, buf, 63), 0);
	ASSERT_OK(shmpipe_reader_close(r));
}

/* One bad record in a writev: nothing of it is written. */
static void test_writev_one_too_big(void)
{
	const size_t cap = 4096;
	const uint64_t max = SHMPIPE_RECORD_MAX(cap);
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s0, s;
	uint8_t *buf = malloc(max + 1);
	struct iovec iov[4];

	ASSERT_NOT_NULL(buf);
	record_pair(&w, &r, cap);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	test_pattern_fill(buf, max + 1, 20, 0);

	iov[0] = (struct iovec){buf, 10};
	iov[1] = (struct iovec){buf, 20};
	iov[2] = (struct iovec){buf, max + 1};
	iov[3] = (struct iovec){buf, 30};
	s0 = test_wstats(w);
	ASSERT_ERR(shmpipe_writev(w, iov, 4), -EMSGSIZE);
	/* First or last, the same. */
	ASSERT_ERR(shmpipe_writev(w, iov + 2, 2), -EMSGSIZE);
	ASSERT_ERR(shmpipe_writev(w, iov, 3), -EMSGSIZE);
	s = test_wstats(w);
	ASSERT_STATS_EQ(&s, &s0);
	ASSERT_ERR(shmpipe_read(r, buf, max), -EAGAIN);

	/* The good ones alone go through, one record each. */
	iov[2].iov_len = 3992; /* 4000 of the ring; 10, 20 and 30 take 96: full */
	ASSERT_EQ(SHMPIPE_RECORD_SPACE(10) + SHMPIPE_RECORD_SPACE(20) +
		      SHMPIPE_RECORD_SPACE(iov[2].iov_len) + SHMPIPE_RECORD_SPACE(30),
		  cap);
	ASSERT_EQ(shmpipe_writev(w, iov, 4), 60 + iov[2].iov_len);
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, cap);
	ASSERT_EQ(s.produced, 4);
	for (int i = 0; i < 4; i++) {
		memset(buf, 0, max);
		ASSERT_EQ(shmpipe_read(r, buf, max), iov[i].iov_len);
		ASSERT_PATTERN(buf, iov[i].iov_len, 20, 0);
	}
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
	free(buf);
}

static void test_small_capacities(void)
{
	shmpipe_writer *w = NULL;
	shmpipe_reader *r = NULL;
	shmpipe_options o;
	uint8_t buf[32];

	for (size_t cap = 1; cap < 16; cap++) {
		o = test_opts(cap);
		o.flags = SHMPIPE_RECORDS;
		ASSERT_ERR(shmpipe_pair(&w, &r, &o), -EINVAL);
		ASSERT_PTR_EQ(w, NULL);
		ASSERT_PTR_EQ(r, NULL);
		/* The same capacity is fine for a byte stream. */
		o.flags = 0;
		ASSERT_OK(shmpipe_pair(&w, &r, &o));
		ASSERT_OK(shmpipe_writer_close(w));
		ASSERT_OK(shmpipe_reader_close(r));
		w = NULL;
		r = NULL;
	}

	/* 16: records of up to 8 bytes, one at a time. */
	record_pair(&w, &r, 16);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	test_pattern_fill(buf, 9, 30, 0);
	ASSERT_ERR(shmpipe_write(w, buf, 9), -EMSGSIZE);
	ASSERT_EQ(shmpipe_write(w, buf, 8), 8);
	ASSERT_ERR(shmpipe_write(w, buf, 1), -EAGAIN);
	ASSERT_ERR(shmpipe_read(r, buf + 16, 7), -EMSGSIZE);
	ASSERT_EQ(shmpipe_read(r, buf + 16, 16), 8);
	ASSERT_MEM_EQ(buf + 16, buf, 8);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));

	/* 23: still 8 (the capacity rounds down to 8); 24: 16. */
	record_pair(&w, &r, 23);
	ASSERT_ERR(shmpipe_write(w, buf, 9), -EMSGSIZE);
	ASSERT_EQ(shmpipe_write(w, buf, 8), 8);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
	record_pair(&w, &r, 24);
	ASSERT_ERR(shmpipe_write(w, buf, 17), -EMSGSIZE);
	ASSERT_EQ(shmpipe_write(w, buf, 16), 16);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

/* A record that does not fit now: all or nothing, whatever the timeout. */
static void test_no_room_now(void)
{
	const size_t cap = 4096;
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s0, s;
	uint8_t buf[4096];
	struct iovec iov[3];
	void *wb;
	int64_t t0, ms;

	record_pair(&w, &r, cap);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));

	/* 3000 + 8 taken, 1088 free: 1080 fits, 1081 does not. */
	test_pattern_fill(buf, 3000, 40, 0);
	ASSERT_EQ(shmpipe_write(w, buf, 3000), 3000);
	s0 = test_wstats(w);
	test_pattern_fill(buf, 2000, 41, 0);
	ASSERT_ERR(shmpipe_write(w, buf, 1081), -EAGAIN);
	ASSERT_ERR(shmpipe_write(w, buf, 2000), -EAGAIN);
	ASSERT_ERR(shmpipe_reserve(w, &wb, 1081), -EAGAIN);
	iov[0] = (struct iovec){buf, 1081};
	ASSERT_ERR(shmpipe_writev(w, iov, 1), -EAGAIN);
	/* Nothing written; one wait, the first refusal's, which armed the descriptor. */
	s = test_wstats(w);
	s0.producer_waits++;
	ASSERT_STATS_EQ(&s, &s0);

	ASSERT_OK(shmpipe_writer_set_timeout(w, 100));
	t0 = test_now_ms();
	ASSERT_ERR(shmpipe_write(w, buf, 2000), -ETIMEDOUT);
	ms = test_now_ms() - t0;
	ASSERT_GE(ms, 98);
	ASSERT_LE(ms, 100 + 2000 * TEST_SLOW);
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, s0.write_index);
	ASSERT_EQ(s.produced, s0.produced);
	ASSERT_GE(s.producer_waits, 1);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));

	/* Nothing partial: the next record read is the first one, whole, then nothing. */
	memset(buf, 0, sizeof(buf));
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 3000);
	ASSERT_PATTERN(buf, 3000, 40, 0);
	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), -EAGAIN);

	/* With room, the same record goes in. */
	test_pattern_fill(buf, 2000, 41, 0);
	ASSERT_EQ(shmpipe_write(w, buf, 2000), 2000);
	memset(buf, 0, sizeof(buf));
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 2000);
	ASSERT_PATTERN(buf, 2000, 41, 0);

	/*
	 * writev stops before the first record that does not fit: 1000 (1008)
	 * and 1000 (1008) fit in the 4096 left, 2100 (2112) does not.
	 */
	test_pattern_fill(buf, 2100, 42, 0);
	iov[0] = (struct iovec){buf, 1000};
	iov[1] = (struct iovec){buf, 1000};
	iov[2] = (struct iovec){buf, 2100};
	s0 = test_wstats(w);
	ASSERT_EQ(shmpipe_writev(w, iov, 3), 2000);
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, s0.write_index + 2016);
	ASSERT_EQ(s.produced, s0.produced + 2);
	ASSERT_ERR(shmpipe_writev(w, iov + 2, 1), -EAGAIN);
	for (int i = 0; i < 2; i++) {
		memset(buf + 2100, 0, 1000);
		ASSERT_EQ(shmpipe_read(r, buf + 2100, 1996), 1000);
		ASSERT_PATTERN(buf + 2100, 1000, 42, 0);
	}
	ASSERT_ERR(shmpipe_read(r, buf + 2100, 1996), -EAGAIN);
	s = test_rstats(r);
	ASSERT_EQ(s.read_index, s.write_index);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

int main(void)
{
	test_watchdog(30);
	test_write_too_big(4096 + 100);
	test_write_too_big(16);
	test_write_too_big((size_t)1 << 20);
	test_read_too_small();
	test_writev_one_too_big();
	test_small_capacities();
	test_no_room_now();
	return T_PASS;
}
