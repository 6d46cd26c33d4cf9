/* SPDX-License-Identifier: MIT */
/*
 * Description: shmpipe_writev. In stream mode the buffers are concatenated
 * (many small ones, zero-length ones among them, with NULL or real bases)
 * and the call counts as one write (produced + 1); a writev that does not
 * fit returns the bytes that did (timeout 0) and the next call reports
 * -EAGAIN; 1000 items of 4 bytes written while the reader sleeps are one
 * publication: the reader wakes to all 4000 bytes at once, a third thread
 * watching write_index never sees it between 0 and 4000, and produced
 * grows by 1; a writev many times larger than the ring, from a producer
 * thread with a consumer thread, arrives intact (produced + 1 per call).
 * In record mode each buffer is one record and zero-length buffers are
 * skipped. Bad arguments are -EINVAL (negative count, count above IOV_MAX,
 * NULL iov with a count, NULL base with a length, a total above SSIZE_MAX,
 * NULL handle), iovcnt 0 writes nothing, and -EPIPE once the reader closed.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "test.h"

static void test_concatenation(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	uint8_t src[4096], out[4096];
	struct iovec iov[64];
	int n = 0;
	size_t total = 0, k = 0;

	test_pair(&w, &r, 4096);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	test_pattern_fill(src, sizeof(src), 1, 0);

	/* 1, 0, 2, 0, 3, ... : zero-length buffers everywhere. */
	iov[n++] = (struct iovec){src, 0};
	for (size_t len = 1; n < 62; len++) {
		iov[n++] = (struct iovec){src + total, len};
		total += len;
		if (len % 3 == 0)
			iov[n++] = (struct iovec){src + total, 0};
		else if (len % 3 == 1)
			iov[n++] = (struct iovec){src, 0};
	}
	iov[n++] = (struct iovec){src + 4095, 0};
	ASSERT_EQ(shmpipe_writev(w, iov, n), total);
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, total);
	ASSERT_EQ(s.produced, 1);
	ASSERT_EQ(shmpipe_read(r, out, sizeof(out)), total);
	ASSERT_PATTERN(out, total, 1, 0);

	/* Again, many times, so that the concatenation crosses the wrap. */
	for (int round = 0; round < 50; round++) {
		ASSERT_EQ(shmpipe_writev(w, iov, n), total);
		s = test_wstats(w);
		ASSERT_EQ(s.produced, 2 + (uint64_t)round);
		ASSERT_EQ(shmpipe_read(r, out, sizeof(out)), total);
		ASSERT_PATTERN(out, total, 1, 0);
	}

	/* Only zero-length buffers, or none: nothing happens. */
	ASSERT_EQ(shmpipe_writev(w, iov, 1), 0);
	ASSERT_EQ(shmpipe_writev(w, NULL, 0), 0);
	ASSERT_EQ(shmpipe_writev(w, iov, 0), 0);
	s = test_wstats(w);
	ASSERT_EQ(s.produced, 51);
	ASSERT_EQ(s.write_index, 51 * total);

	/*
	 * More than fits: 4096 bytes in 8 buffers of 512 with 1000 bytes in
	 * the ring: the first 3096 go in, the next call is -EAGAIN.
	 */
	test_pattern_fill(src, 1000, 2, 0);
	ASSERT_EQ(shmpipe_write(w, src, 1000), 1000);
	test_pattern_fill(src, sizeof(src), 3, 0);
	for (int i = 0; i < 8; i++)
		iov[i] = (struct iovec){src + 512 * i, 512};
	ASSERT_EQ(shmpipe_writev(w, iov, 8), 3096);
	ASSERT_ERR(shmpipe_writev(w, iov, 8), -EAGAIN);
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, 51 * total + 4096);
	ASSERT_EQ(shmpipe_read(r, out, 1000), 1000);
	ASSERT_PATTERN(out, 1000, 2, 0);
	ASSERT_EQ(shmpipe_read(r, out, sizeof(out)), 3096);
	ASSERT_PATTERN(out, 3096, 3, 0);
	/* The caller carries on from where it stopped. */
	k = 3096;
	iov[0] = (struct iovec){src + k, 4096 - k};
	ASSERT_EQ(shmpipe_writev(w, iov, 1), 1000);
	ASSERT_EQ(shmpipe_read(r, out, sizeof(out)), 1000);
	ASSERT_PATTERN(out, 1000, 3, 3096);

	/* The reader closes: -EPIPE. */
	ASSERT_OK(shmpipe_reader_close(r));
	iov[0] = (struct iovec){src, 10};
	ASSERT_ERR(shmpipe_writev(w, iov, 1), -EPIPE);
	ASSERT_OK(shmpipe_writer_close(w));
}

static void test_bad_args(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	uint8_t b[16] = {0};
	struct iovec iov[3] = {{b, 4}, {b, 4}, {b, 4}};
	struct iovec *many = calloc(IOV_MAX + 1, sizeof(*many));

	ASSERT_NOT_NULL(many);
	for (int i = 0; i <= IOV_MAX; i++)
		many[i] = (struct iovec){b, 1};
	test_pair(&w, &r, 1 << 16);

	ASSERT_ERR(shmpipe_writev(NULL, iov, 1), -EINVAL);
	ASSERT_ERR(shmpipe_writev(w, iov, -1), -EINVAL);
	ASSERT_ERR(shmpipe_writev(w, iov, INT_MIN), -EINVAL);
	ASSERT_ERR(shmpipe_writev(w, NULL, 1), -EINVAL);
	ASSERT_ERR(shmpipe_writev(w, many, IOV_MAX + 1), -EINVAL);
	ASSERT_ERR(shmpipe_writev(w, many, INT_MAX), -EINVAL);
	iov[1].iov_base = NULL;
	ASSERT_ERR(shmpipe_writev(w, iov, 3), -EINVAL);
	iov[1].iov_base = b;
	/* Lengths that add up past SSIZE_MAX (never touched: refused first). */
	iov[1].iov_len = (size_t)SSIZE_MAX;
	ASSERT_ERR(shmpipe_writev(w, iov, 3), -EINVAL);
	iov[0].iov_len = (size_t)SSIZE_MAX;
	ASSERT_ERR(shmpipe_writev(w, iov, 2), -EINVAL);
	iov[0].iov_len = 4;
	iov[1].iov_len = 4;
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, 0);
	ASSERT_EQ(s.produced, 0);

	/* IOV_MAX itself is fine. */
	ASSERT_EQ(shmpipe_writev(w, many, IOV_MAX), IOV_MAX);
	ASSERT_EQ(shmpipe_writev(w, iov, 3), 12);
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, IOV_MAX + 12);
	ASSERT_EQ(s.produced, 2);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
	free(many);
}

/*
 * A zero-length buffer may have a NULL base (only a NULL base with a length
 * is -EINVAL): first, last, in between, and alone.
 */
static void test_null_base_zero_len(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	uint8_t src[64], out[64];
	struct iovec iov[7] = {{NULL, 0},     {src, 5},	 {NULL, 0},    {NULL, 0},
			       {src + 5, 20}, {NULL, 0}, {src + 25, 1}};
	struct iovec tail[2] = {{src + 26, 3}, {NULL, 0}};

	test_pair(&w, &r, 4096);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	test_pattern_fill(src, sizeof(src), 4, 0);
	ASSERT_EQ(shmpipe_writev(w, iov, 7), 26);
	ASSERT_EQ(shmpipe_writev(w, tail, 2), 3);
	ASSERT_EQ(shmpipe_writev(w, iov, 1), 0);
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, 29);
	ASSERT_EQ(s.produced, 2);
	ASSERT_EQ(shmpipe_read(r, out, sizeof(out)), 29);
	ASSERT_PATTERN(out, 29, 4, 0);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

/*
 * A total above SSIZE_MAX must be refused however it is reached, also when
 * adding a length wraps the sum around 2^64 (4 + SIZE_MAX "is" 3). The
 * buffer is big enough that a writev which wrongly goes ahead copies from
 * valid memory and the test says what it returned instead of crashing.
 */
static void test_total_wraps(void)
{
	static uint8_t b[1 << 17];
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	struct iovec iov[3] = {{b, 4}, {b, SIZE_MAX}, {b, 4}};

	test_pair(&w, &r, 1 << 16);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_ERR(shmpipe_writev(w, iov, 2), -EINVAL);
	ASSERT_ERR(shmpipe_writev(w, iov, 3), -EINVAL);
	iov[0].iov_len = (size_t)SSIZE_MAX + 2;
	iov[1].iov_len = (size_t)SSIZE_MAX + 2; /* the two add up to 2 */
	ASSERT_ERR(shmpipe_writev(w, iov, 2), -EINVAL);
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, 0);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

/* ---- one publication for many items --------------------------------- */

struct onepub {
	shmpipe_reader *r;
	ssize_t first; /* what the sleeping reader's peek returned */
	uint32_t items[1000];
};

static void *sleepy_reader(void *arg)
{
	struct onepub *c = arg;
	const void *rb;

	c->first = shmpipe_peek(c->r, &rb);
	if (c->first > 0)
		memcpy(c->items, rb,
		       (size_t)c->first < sizeof(c->items) ? (size_t)c->first : sizeof(c->items));
	return NULL;
}

/* Watches write_index from a third thread: it goes from 0 to `final` in one step. */
struct spy {
	shmpipe_writer *w;
	uint64_t final;
	atomic_int running;
	atomic_int stop;
	uint64_t samples;
	uint64_t between; /* samples strictly between 0 and final */
};

static void *spy_main(void *arg)
{
	struct spy *sp = arg;
	shmpipe_stats s;

	atomic_store(&sp->running, 1);
	while (!atomic_load(&sp->stop)) {
		ASSERT_OK(shmpipe_writer_stats(sp->w, &s));
		sp->between += s.write_index != 0 && s.write_index != sp->final;
		sp->samples++;
	}
	return NULL;
}

/*
 * 1000 items of 4 bytes in one writev while the reader sleeps: one
 * publication. In stream mode they are one write of 4000 bytes; in record
 * mode 1000 records (16000 ring bytes), published together all the same.
 */
static void test_one_publication(int records)
{
	static struct onepub c;
	static struct spy sp;
	shmpipe_options o = test_opts(1 << 16);
	shmpipe_writer *w;
	shmpipe_stats s;
	uint32_t items[1000];
	struct iovec iov[1000];
	const uint64_t final = records ? 1000 * SHMPIPE_RECORD_SPACE(4) : 4000;
	pthread_t t, ts;
	int64_t t0;

	o.flags = records ? SHMPIPE_RECORDS : 0;
	for (int round = 0; round < 5; round++) {
		memset(&c, 0, sizeof(c));
		ASSERT_OK(shmpipe_pair(&w, &c.r, &o));
		for (uint32_t i = 0; i < 1000; i++) {
			items[i] = i * 2654435761u + (uint32_t)round;
			iov[i] = (struct iovec){&items[i], 4};
		}
		ASSERT_OK(pthread_create(&t, NULL, sleepy_reader, &c));
		/* Wait until the reader is asleep in the kernel. */
		t0 = test_now_ms();
		while (test_wstats(w).consumer_waits == 0) {
			ASSERT_LT(test_now_ms() - t0, 5000 * TEST_SLOW);
			usleep(100);
		}
		usleep(1000);
		memset(&sp, 0, sizeof(sp));
		sp.w = w;
		sp.final = final;
		ASSERT_OK(pthread_create(&ts, NULL, spy_main, &sp));
		while (!atomic_load(&sp.running))
			sched_yield();
		ASSERT_EQ(shmpipe_writev(w, iov, 1000), 4000);
		ASSERT_OK(pthread_join(t, NULL));
		atomic_store(&sp.stop, 1);
		ASSERT_OK(pthread_join(ts, NULL));
		ASSERT_GT(sp.samples, 0);
		ASSERT_EQ(sp.between, 0);
		s = test_wstats(w);
		ASSERT_EQ(s.write_index, final);
		ASSERT_GE(s.consumer_waits, 1);
		if (records) {
			/* One record per item; the reader woke to the first. */
			ASSERT_EQ(s.produced, 1000);
			ASSERT_EQ(c.first, 4);
			ASSERT_MEM_EQ(c.items, items, 4);
			ASSERT_OK(shmpipe_consume(c.r, 4));
			for (int i = 1; i < 1000; i++) {
				uint32_t v;

				ASSERT_EQ(shmpipe_read(c.r, &v, sizeof(v)), 4);
				ASSERT_EQ(v, items[i]);
			}
		} else {
			/* It woke to everything at once. */
			ASSERT_EQ(s.produced, 1);
			ASSERT_EQ(c.first, 4000);
			ASSERT_MEM_EQ(c.items, items, sizeof(items));
		}
		ASSERT_OK(shmpipe_writer_close(w));
		ASSERT_OK(shmpipe_reader_close(c.r));
	}
}

/* ---- larger than the ring, two threads ------------------------------ */

struct big {
	shmpipe_writer *w;
	shmpipe_reader *r;
	size_t cap;
	uint64_t total;
	uint64_t calls;
};

static void *big_producer(void *arg)
{
	struct big *c = arg;
	const size_t chunk = 40 * c->cap; /* each writev moves 40 rings' worth */
	uint8_t *src = malloc(chunk);
	struct iovec iov[200];
	uint64_t rng = 77, off = 0;

	ASSERT_NOT_NULL(src);
	while (off < c->total) {
		size_t len = chunk, used = 0;
		int n = 0;

		if (len > c->total - off)
			len = (size_t)(c->total - off);
		test_pattern_fill(src, len, 5, off);
		/* Cut into random pieces, zero-length ones included. */
		while (used < len && n < 199) {
			size_t k = (size_t)test_rand_range(&rng, 0, 2 * c->cap);

			if (k > len - used)
				k = len - used;
			iov[n++] = (struct iovec){src + used, k};
			used += k;
		}
		if (used < len)
			iov[n++] = (struct iovec){src + used, len - used};
		ASSERT_EQ(shmpipe_writev(c->w, iov, n), len);
		off += len;
		c->calls++;
	}
	free(src);
	ASSERT_OK(shmpipe_writer_close(c->w));
	return NULL;
}

static void *big_consumer(void *arg)
{
	struct big *c = arg;
	uint8_t *buf = malloc(c->cap);
	uint64_t rng = 78, off = 0;

	ASSERT_NOT_NULL(buf);
	for (;;) {
		size_t want = (size_t)test_rand_range(&rng, 1, c->cap);
		ssize_t n = shmpipe_read(c->r, buf, want);

		if (n == 0)
			break;
		ASSERT_GT(n, 0);
		ASSERT_PATTERN(buf, (size_t)n, 5, off);
		off += (uint64_t)n;
	}
	ASSERT_EQ(off, c->total);
	free(buf);
	return NULL;
}

static void test_bigger_than_ring(size_t cap, uint64_t total)
{
	struct big c;
	shmpipe_stats s;

	memset(&c, 0, sizeof(c));
	c.cap = cap;
	c.total = total;
	test_pair(&c.w, &c.r, cap);
	test_two_threads(big_producer, &c, big_consumer, &c);
	s = test_rstats(c.r);
	ASSERT_EQ(s.write_index, total);
	ASSERT_EQ(s.read_index, total);
	ASSERT_EQ(s.produced, c.calls);
	printf("capacity %zu: %" PRIu64 " bytes in %" PRIu64 " writev calls, %" PRIu64
	       " producer waits\n",
	       cap, total, c.calls, s.producer_waits);
	ASSERT_OK(shmpipe_reader_close(c.r));
}

/* ---- record mode ---------------------------------------------------- */

static void test_records(void)
{
	shmpipe_options o = test_opts(4096);
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	uint8_t src[512], out[512];
	struct iovec iov[8];
	const void *rb;
	const size_t lens[] = {10, 0, 20, 0, 1, 0, 0, 30};

	o.flags = SHMPIPE_RECORDS;
	ASSERT_OK(shmpipe_pair(&w, &r, &o));
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	test_pattern_fill(src, sizeof(src), 9, 0);

	for (int i = 0, off = 0; i < 8; i++) {
		iov[i] = (struct iovec){lens[i] ? src + off : (i == 3 ? NULL : src), lens[i]};
		off += (int)lens[i];
	}
	ASSERT_EQ(shmpipe_writev(w, iov, 8), 61);
	s = test_wstats(w);
	ASSERT_EQ(s.produced, 4);
	ASSERT_EQ(s.write_index, SHMPIPE_RECORD_SPACE(10) + SHMPIPE_RECORD_SPACE(20) +
				     SHMPIPE_RECORD_SPACE(1) + SHMPIPE_RECORD_SPACE(30));
	/* One record per buffer, in order, each whole. */
	ASSERT_EQ(shmpipe_peek(r, &rb), 10);
	ASSERT_PATTERN(rb, 10, 9, 0);
	ASSERT_OK(shmpipe_consume(r, 10));
	ASSERT_EQ(shmpipe_read(r, out, sizeof(out)), 20);
	ASSERT_PATTERN(out, 20, 9, 10);
	ASSERT_EQ(shmpipe_read(r, out, sizeof(out)), 1);
	ASSERT_PATTERN(out, 1, 9, 30);
	ASSERT_EQ(shmpipe_peek(r, &rb), 30);
	ASSERT_PATTERN(rb, 30, 9, 31);
	ASSERT_OK(shmpipe_consume(r, 30));
	ASSERT_ERR(shmpipe_peek(r, &rb), -EAGAIN);

	/* Only empty buffers: no record at all. */
	ASSERT_EQ(shmpipe_writev(w, iov + 5, 2), 0);
	ASSERT_EQ(shmpipe_writev(w, NULL, 0), 0);
	s = test_wstats(w);
	ASSERT_EQ(s.produced, 4);
	ASSERT_ERR(shmpipe_peek(r, &rb), -EAGAIN);

	/* 100 small records in one call, each read back alone. */
	{
		struct iovec many[100];
		size_t sum = 0;

		for (int i = 0; i < 100; i++) {
			many[i] = (struct iovec){src + i, (size_t)(i % 5 + 1)};
			sum += (size_t)(i % 5 + 1);
		}
		ASSERT_EQ(shmpipe_writev(w, many, 100), sum);
		s = test_wstats(w);
		ASSERT_EQ(s.produced, 104);
		for (int i = 0; i < 100; i++) {
			ASSERT_EQ(shmpipe_read(r, out, sizeof(out)), i % 5 + 1);
			ASSERT_PATTERN(out, (size_t)(i % 5 + 1), 9, (uint64_t)i);
		}
		ASSERT_ERR(shmpipe_read(r, out, sizeof(out)), -EAGAIN);
	}

	/* Bad arguments in record mode too. */
	iov[0].iov_base = NULL;
	ASSERT_ERR(shmpipe_writev(w, iov, 1), -EINVAL);
	ASSERT_ERR(shmpipe_writev(w, iov, -1), -EINVAL);
	ASSERT_ERR(shmpipe_writev(w, NULL, 2), -EINVAL);

	ASSERT_OK(shmpipe_reader_close(r));
	iov[0].iov_base = src;
	ASSERT_ERR(shmpipe_writev(w, iov, 1), -EPIPE);
	ASSERT_OK(shmpipe_writer_close(w));
}

int main(void)
{
	test_watchdog(60);
	test_concatenation();
	test_bad_args();
	test_records();
	test_one_publication(0);
	test_one_publication(1);
	test_bigger_than_ring(4099, (uint64_t)64 << 20);
	test_bigger_than_ring(65536, (uint64_t)64 << 20);
	test_null_base_zero_len();
	test_total_wraps();
	return T_PASS;
}
