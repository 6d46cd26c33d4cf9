/* SPDX-License-Identifier: MIT */
/*
 * Description: end of stream. After shmpipe_writer_close the reader gets
 * every byte written, then 0, and 0 again (also with timeout 0, where 0
 * must win over -EAGAIN); a reader asleep on an empty ring is woken by the
 * close and returns 0 promptly; data written just before the close is not
 * lost; reads at end of stream do not count as consumed.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "test.h"

static void test_drain_then_eof(int reader_timeout)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	uint8_t out[100], in[7];
	uint64_t off = 0;
	int reads = 0;

	test_pair(&w, &r, 256);
	ASSERT_OK(shmpipe_reader_set_timeout(r, reader_timeout));
	test_pattern_fill(out, sizeof(out), 3, 0);
	ASSERT_EQ(shmpipe_write(w, out, 40), 40);
	ASSERT_EQ(shmpipe_write(w, out + 40, 35), 35);
	ASSERT_EQ(shmpipe_write(w, out + 75, 25), 25);
	ASSERT_OK(shmpipe_writer_close(w));

	for (;;) {
		ssize_t n = shmpipe_read(r, in, sizeof(in));
		ASSERT_GE(n, 0);
		if (n == 0)
			break;
		ASSERT_LE(n, sizeof(in));
		ASSERT_PATTERN(in, (size_t)n, 3, off);
		off += (uint64_t)n;
		reads++;
	}
	ASSERT_EQ(off, 100);
	/* End of stream is sticky. */
	ASSERT_EQ(shmpipe_read(r, in, sizeof(in)), 0);
	ASSERT_EQ(shmpipe_read(r, in, 1), 0);

	s = test_rstats(r);
	ASSERT_EQ(s.write_index, 100);
	ASSERT_EQ(s.read_index, 100);
	ASSERT_EQ(s.produced, 3);
	ASSERT_EQ(s.consumed, reads);
	ASSERT_EQ(s.consumer_waits, 0);
	ASSERT_OK(shmpipe_reader_close(r));
}

/* Writer closes without writing anything: the first read is 0. */
static void test_empty_stream(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	char c;

	test_pair(&w, &r, 64);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_EQ(shmpipe_read(r, &c, 1), 0);
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	ASSERT_EQ(shmpipe_read(r, &c, 1), 0);
	ASSERT_OK(shmpipe_reader_set_timeout(r, 100));
	ASSERT_EQ(shmpipe_read(r, &c, 1), 0);
	ASSERT_OK(shmpipe_reader_close(r));
}

struct blocked_reader {
	shmpipe_reader *r;
	atomic_int started;
	atomic_int done;
	size_t total;	   /* bytes read before the end */
	ssize_t last;	   /* the read that ended the loop: 0 or an error */
	ssize_t again;	   /* one more read after that */
	int64_t return_ns; /* when `last` returned */
	uint8_t buf[64];
};

/* Reads until end of stream (or an error), then once more. */
static void *reader_main(void *arg)
{
	struct blocked_reader *b = arg;

	atomic_store(&b->started, 1);
	for (;;) {
		ssize_t n = shmpipe_read(b->r, b->buf + b->total, sizeof(b->buf) - b->total);
		if (n <= 0) {
			b->last = n;
			break;
		}
		b->total += (size_t)n;
		ASSERT_LT(b->total, sizeof(b->buf));
	}
	b->return_ns = test_now_ns();
	b->again = shmpipe_read(b->r, b->buf, sizeof(b->buf));
	atomic_store(&b->done, 1);
	return NULL;
}

/*
 * A reader asleep on an empty ring (infinite timeout) is woken by
 * writer_close and returns 0, promptly.
 */
static void test_close_wakes_reader(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	struct blocked_reader b;
	pthread_t t;
	int64_t closed_ns, ms;

	memset(&b, 0, sizeof(b));
	test_pair(&w, &r, 64);
	b.r = r;
	ASSERT_EQ(pthread_create(&t, NULL, reader_main, &b), 0);
	while (!atomic_load(&b.started))
		test_sleep_ms(1);
	/* Long enough for the reader to get past any spin and go to sleep. */
	test_sleep_ms(200);
	ASSERT_EQ(atomic_load(&b.done), 0);
	s = test_wstats(w);
	ASSERT_GE(s.consumer_waits, 1);

	closed_ns = test_now_ns();
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_EQ(pthread_join(t, NULL), 0);
	ms = (b.return_ns - closed_ns) / 1000000;
	printf("reader woke %" PRId64 " ms after writer_close\n", ms);
	ASSERT_EQ(b.total, 0);
	ASSERT_EQ(b.last, 0);
	ASSERT_EQ(b.again, 0);
	ASSERT_LT(ms, 1000 * TEST_SLOW);

	s = test_rstats(r);
	ASSERT_EQ(s.consumed, 0);
	ASSERT_EQ(s.read_index, 0);
	ASSERT_OK(shmpipe_reader_close(r));
}

/*
 * The writer writes while the reader sleeps and closes right after: the
 * reader gets the data first, then 0. Repeated, to shake out an ordering in
 * which the close overtakes the data.
 */
static void test_data_then_close_while_asleep(void)
{
	for (int i = 0; i < 200; i++) {
		shmpipe_writer *w;
		shmpipe_reader *r;
		struct blocked_reader b;
		pthread_t t;
		uint8_t out[20];
		size_t n = (size_t)(i % 20) + 1;

		memset(&b, 0, sizeof(b));
		test_pair(&w, &r, 64);
		b.r = r;
		ASSERT_EQ(pthread_create(&t, NULL, reader_main, &b), 0);
		while (!atomic_load(&b.started))
			sched_yield();
		/* Sometimes let the reader fall asleep, sometimes race it. */
		if (i % 4 == 0)
			test_sleep_ms(2);
		test_pattern_fill(out, n, 5, (uint64_t)i);
		ASSERT_EQ(shmpipe_write(w, out, n), n);
		ASSERT_OK(shmpipe_writer_close(w));
		ASSERT_EQ(pthread_join(t, NULL), 0);
		ASSERT_EQ(b.last, 0);
		ASSERT_EQ(b.total, n);
		ASSERT_PATTERN(b.buf, n, 5, (uint64_t)i);
		ASSERT_EQ(b.again, 0);
		ASSERT_OK(shmpipe_reader_close(r));
	}
}

int main(void)
{
	test_watchdog(30);
	test_drain_then_eof(-1);
	test_drain_then_eof(0);
	test_drain_then_eof(100);
	test_empty_stream();
	test_close_wakes_reader();
	test_data_then_close_while_asleep();
	return T_PASS;
}
