/* SPDX-License-Identifier: MIT */
/*
 * Description: per-end timeouts, as poll(2) counts them. Timeout 0 gives
 * -EAGAIN at once on a full ring (writer) or an empty one (reader) and never
 * sleeps (the wait counters stay 0); a timeout of 100 ms gives -ETIMEDOUT
 * after at least 100 ms and well under a few seconds, and counts a sleep; a
 * stream write larger than the free space returns the bytes that fit and the
 * next write reports the timeout; a timed call returns as soon as the peer
 * makes progress instead of sleeping out its timeout. The spin setting
 * decides whether a short wait sleeps.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "test.h"

/* The lower bound is the contract; 2 ms of slack covers clock rounding. */
#define LOW_MS(t) ((t)-2)
/* The upper bound only catches a call that ignores its timeout. */
#define HIGH_MS(t) ((t) + 2000 * TEST_SLOW)

static void test_writer_nonblocking(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	uint8_t data[64] = {0};
	int64_t t0;

	test_pair(&w, &r, 64);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_EQ(shmpipe_write(w, data, 64), 64);
	t0 = test_now_ms();
	for (int i = 0; i < 1000; i++)
		ASSERT_ERR(shmpipe_write(w, data, 1), -EAGAIN);
	/*
	 * 1000 refusals in well under a second: none of them slept. The first
	 * armed the descriptor (one wait counted), the others found it armed.
	 */
	ASSERT_LT(test_now_ms() - t0, 1000 * TEST_SLOW);
	s = test_wstats(w);
	ASSERT_EQ(s.producer_waits, 1);
	ASSERT_EQ(s.write_index, 64);
	ASSERT_EQ(s.produced, 1);

	/* Partial: 24 bytes free, a write of 50 puts 24 in, the next -EAGAIN. */
	ASSERT_EQ(shmpipe_read(r, data, 24), 24);
	test_pattern_fill(data, 50, 9, 0);
	ASSERT_EQ(shmpipe_write(w, data, 50), 24);
	ASSERT_ERR(shmpipe_write(w, data + 24, 26), -EAGAIN);
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, 88);
	ASSERT_EQ(s.producer_waits, 2); /* the reads rang it: armed once more */
	/* The 24 that went in are the first 24 of the write. */
	ASSERT_EQ(shmpipe_read(r, data, 40), 40);
	ASSERT_EQ(shmpipe_read(r, data, 64), 24);
	ASSERT_PATTERN(data, 24, 9, 0);

	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

static void test_writer_timed(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	uint8_t data[64];
	int64_t t0, ms;

	test_pair(&w, &r, 64);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 100));
	test_pattern_fill(data, 64, 10, 0);
	ASSERT_EQ(shmpipe_write(w, data, 64), 64);

	t0 = test_now_ms();
	ASSERT_ERR(shmpipe_write(w, data, 1), -ETIMEDOUT);
	ms = test_now_ms() - t0;
	printf("writer timeout 100 ms: -ETIMEDOUT after %" PRId64 " ms\n", ms);
	ASSERT_GE(ms, LOW_MS(100));
	ASSERT_LE(ms, HIGH_MS(100));
	s = test_wstats(w);
	ASSERT_GE(s.producer_waits, 1);
	ASSERT_EQ(s.write_index, 64);

	/* Partial: 40 in the ring, a write of 50 puts 24 in after the timeout. */
	ASSERT_EQ(shmpipe_read(r, data, 24), 24);
	test_pattern_fill(data, 50, 11, 0);
	t0 = test_now_ms();
	ASSERT_EQ(shmpipe_write(w, data, 50), 24);
	ms = test_now_ms() - t0;
	printf("writer timeout 100 ms: partial 24 of 50 after %" PRId64 " ms\n", ms);
	ASSERT_GE(ms, LOW_MS(100));
	ASSERT_LE(ms, HIGH_MS(100));
	/* The next call reports the condition (the ring is still full). */
	t0 = test_now_ms();
	ASSERT_ERR(shmpipe_write(w, data + 24, 26), -ETIMEDOUT);
	ms = test_now_ms() - t0;
	ASSERT_GE(ms, LOW_MS(100));
	ASSERT_LE(ms, HIGH_MS(100));
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, 88);
	ASSERT_GE(s.producer_waits, 3);

	/* A longer timeout: 300 ms. */
	ASSERT_OK(shmpipe_writer_set_timeout(w, 300));
	t0 = test_now_ms();
	ASSERT_ERR(shmpipe_write(w, data, 1), -ETIMEDOUT);
	ms = test_now_ms() - t0;
	ASSERT_GE(ms, LOW_MS(300));
	ASSERT_LE(ms, HIGH_MS(300));

	/* Space freed: the same end writes again. */
	test_read_exact(r, data, 64);
	ASSERT_EQ(shmpipe_write(w, data, 10), 10);

	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

static void test_reader_nonblocking(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	uint8_t buf[16];
	int64_t t0;

	test_pair(&w, &r, 64);
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	t0 = test_now_ms();
	for (int i = 0; i < 1000; i++)
		ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), -EAGAIN);
	ASSERT_LT(test_now_ms() - t0, 1000 * TEST_SLOW);
	s = test_rstats(r);
	ASSERT_EQ(s.consumer_waits, 1); /* the first armed the descriptor */
	ASSERT_EQ(s.consumed, 0);
	ASSERT_EQ(s.read_index, 0);

	ASSERT_EQ(shmpipe_write(w, "xy", 2), 2);
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 2);
	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), -EAGAIN);
	s = test_rstats(r);
	ASSERT_EQ(s.consumer_waits, 2); /* the write rang it; this armed it again */
	ASSERT_EQ(s.consumed, 1);

	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

static void test_reader_timed(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	uint8_t buf[16];
	int64_t t0, ms;

	test_pair(&w, &r, 64);
	ASSERT_OK(shmpipe_reader_set_timeout(r, 100));
	t0 = test_now_ms();
	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), -ETIMEDOUT);
	ms = test_now_ms() - t0;
	printf("reader timeout 100 ms: -ETIMEDOUT after %" PRId64 " ms\n", ms);
	ASSERT_GE(ms, LOW_MS(100));
	ASSERT_LE(ms, HIGH_MS(100));
	s = test_rstats(r);
	ASSERT_GE(s.consumer_waits, 1);
	ASSERT_EQ(s.consumed, 0);

	/* Again, same answer: the timeout is per call. */
	t0 = test_now_ms();
	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), -ETIMEDOUT);
	ms = test_now_ms() - t0;
	ASSERT_GE(ms, LOW_MS(100));
	ASSERT_LE(ms, HIGH_MS(100));
	s = test_rstats(r);
	ASSERT_GE(s.consumer_waits, 2);

	/*
	 * A sleep longer than the 100 ms liveness slices is still one wait:
	 * the counter says how often the reader slept, not how often it woke
	 * to look at its peer.
	 */
	ASSERT_OK(shmpipe_reader_set_timeout(r, 450));
	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), -ETIMEDOUT);
	ASSERT_EQ(test_rstats(r).consumer_waits, s.consumer_waits + 1);

	/* Data there: a timed read returns it without waiting. */
	ASSERT_EQ(shmpipe_write(w, "abc", 3), 3);
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 3);
	ASSERT_MEM_EQ(buf, "abc", 3);

	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

/* A thread that acts on the other end after a delay. */
struct late_peer {
	shmpipe_writer *w;
	shmpipe_reader *r;
	int delay_ms;
	ssize_t ret;
};

static void *late_writer(void *arg)
{
	struct late_peer *p = arg;

	test_sleep_ms(p->delay_ms);
	p->ret = shmpipe_write(p->w, "late", 4);
	return NULL;
}

static void *late_reader(void *arg)
{
	struct late_peer *p = arg;
	uint8_t buf[16];

	test_sleep_ms(p->delay_ms);
	p->ret = shmpipe_read(p->r, buf, sizeof(buf));
	return NULL;
}

/*
 * A timed call is woken by the peer's progress: with a 10 s timeout and the
 * peer acting after 100 ms, the call succeeds long before its timeout.
 */
static void test_timed_call_woken_early(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	struct late_peer p;
	pthread_t t;
	uint8_t buf[16];
	int64_t t0, ms;

	/* Reader with a timeout, data comes late. */
	test_pair(&w, &r, 64);
	ASSERT_OK(shmpipe_reader_set_timeout(r, 10000));
	memset(&p, 0, sizeof(p));
	p.w = w;
	p.delay_ms = 100;
	t0 = test_now_ms();
	ASSERT_EQ(pthread_create(&t, NULL, late_writer, &p), 0);
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 4);
	ms = test_now_ms() - t0;
	ASSERT_EQ(pthread_join(t, NULL), 0);
	ASSERT_EQ(p.ret, 4);
	ASSERT_MEM_EQ(buf, "late", 4);
	printf("timed read woken by data after %" PRId64 " ms\n", ms);
	ASSERT_GE(ms, 50);
	ASSERT_LT(ms, 5000);
	s = test_rstats(r);
	ASSERT_GE(s.consumer_waits, 1);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));

	/* Writer with a timeout on a full ring, space comes late. */
	test_pair(&w, &r, 64);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 10000));
	memset(buf, 'q', sizeof(buf));
	for (int i = 0; i < 4; i++)
		ASSERT_EQ(shmpipe_write(w, buf, 16), 16);
	memset(&p, 0, sizeof(p));
	p.r = r;
	p.delay_ms = 100;
	t0 = test_now_ms();
	ASSERT_EQ(pthread_create(&t, NULL, late_reader, &p), 0);
	ASSERT_EQ(shmpipe_write(w, buf, 16), 16);
	ms = test_now_ms() - t0;
	ASSERT_EQ(pthread_join(t, NULL), 0);
	ASSERT_EQ(p.ret, 16);
	printf("timed write woken by space after %" PRId64 " ms\n", ms);
	ASSERT_GE(ms, 50);
	ASSERT_LT(ms, 5000);
	s = test_wstats(w);
	ASSERT_GE(s.producer_waits, 1);
	ASSERT_EQ(s.write_index, 80);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

/*
 * The spin setting: a reader told to spin for up to 1 s picks up data that
 * arrives after 20 ms without sleeping (no wait counted), one told not to
 * spin sleeps even when the wait is short; out-of-range values are refused.
 */
static void test_spin_setting(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	struct late_peer p;
	pthread_t t;
	uint8_t buf[16];

	test_pair(&w, &r, 64);
	ASSERT_ERR(shmpipe_reader_set_spin(NULL, 0), -EINVAL);
	ASSERT_ERR(shmpipe_writer_set_spin(NULL, 0), -EINVAL);
	ASSERT_ERR(shmpipe_reader_set_spin(r, -2), -EINVAL);
	ASSERT_ERR(shmpipe_writer_set_spin(w, SHMPIPE_SPIN_MAX_US + 1), -EINVAL);
	ASSERT_OK(shmpipe_writer_set_spin(w, -1));

	for (int round = 0; round < 2; round++) {
		int spin_us = round == 0 ? SHMPIPE_SPIN_MAX_US : 0;

		ASSERT_OK(shmpipe_reader_set_spin(r, spin_us));
		memset(&p, 0, sizeof(p));
		p.w = w;
		p.delay_ms = 20;
		ASSERT_EQ(pthread_create(&t, NULL, late_writer, &p), 0);
		ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 4);
		ASSERT_EQ(pthread_join(t, NULL), 0);
		ASSERT_EQ(p.ret, 4);
		/* Round 0 spun through the 20 ms; round 1 slept once. */
		ASSERT_EQ(test_rstats(r).consumer_waits, (uint64_t)round);
	}
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

int main(void)
{
	test_watchdog(40);
	test_writer_nonblocking();
	test_writer_timed();
	test_reader_nonblocking();
	test_reader_timed();
	test_timed_call_woken_early();
	test_spin_setting();
	return T_PASS;
}
