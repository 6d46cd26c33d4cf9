/* SPDX-License-Identifier: MIT */
/*
 * Description: the seed's scenario. A ring of 8 int32 (capacity 32 bytes);
 * a producer thread writes 1, 2, 3, ... one int32 per shmpipe_write; a slow
 * consumer thread reads 4 bytes at a time and burns 5-20 ms of CPU per
 * item, checking that the values are consecutive. For about 1.5 s: the
 * depth, sampled all along, never exceeds 32 bytes; producer_waits is
 * positive and keeps rising; and the producer's own CPU time is at most 10%
 * of its wall time, which proves it sleeps while the ring is full instead
 * of spinning. Then the producer closes and the consumer drains to the end.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "test.h"

#define CAPACITY 32
#define RUN_MS	 1500

struct ctx {
	shmpipe_writer *w;
	shmpipe_reader *r;
	atomic_int stop;
	/* Producer results. */
	int32_t produced_items;
	int64_t prod_wall_ns;
	int64_t prod_cpu_ns;
	/* Consumer results. */
	int32_t consumed_items;
	uint64_t consumer_reads; /* reads that returned data */
	atomic_uint_fast64_t max_depth_seen;
};

static void *producer_main(void *arg)
{
	struct ctx *c = arg;
	int64_t wall0 = test_now_ns(), cpu0 = test_thread_cpu_ns();
	int32_t v = 0;

	while (!atomic_load(&c->stop)) {
		v++;
		ASSERT_EQ(shmpipe_write(c->w, &v, sizeof(v)), sizeof(v));
	}
	c->prod_cpu_ns = test_thread_cpu_ns() - cpu0;
	c->prod_wall_ns = test_now_ns() - wall0;
	c->produced_items = v;
	ASSERT_OK(shmpipe_writer_close(c->w));
	return NULL;
}

static void note_depth(struct ctx *c, const shmpipe_stats *s)
{
	uint64_t d = s->write_index - s->read_index;

	ASSERT_LE(s->read_index, s->write_index);
	ASSERT_LE(d, CAPACITY);
	if (d > atomic_load(&c->max_depth_seen))
		atomic_store(&c->max_depth_seen, d);
}

static void *consumer_main(void *arg)
{
	struct ctx *c = arg;
	uint64_t rng = 42;
	int32_t want = 1;

	for (;;) {
		unsigned char item[4];
		size_t have = 0;
		int32_t v;
		shmpipe_stats s;

		while (have < sizeof(item)) {
			ssize_t n = shmpipe_read(c->r, item + have, sizeof(item) - have);
			if (n == 0) {
				ASSERT_EQ(have, 0); /* no torn item at the end */
				c->consumed_items = want - 1;
				return NULL;
			}
			ASSERT_GT(n, 0);
			have += (size_t)n;
			c->consumer_reads++;
		}
		memcpy(&v, item, sizeof(v));
		ASSERT_EQ(v, want);
		want++;
		s = test_rstats(c->r);
		note_depth(c, &s);
		/* The slow consumer: busy, not asleep, like real work. */
		test_busy_ms((int64_t)test_rand_range(&rng, 5, 20));
	}
}

int main(void)
{
	struct ctx c;
	pthread_t tp, tc;
	shmpipe_stats s;
	uint64_t waits_early = 0, samples = 0;
	int early_taken = 0;
	int64_t t0;
	double cpu_pct;

	test_watchdog(40);
	memset(&c, 0, sizeof(c));
	test_pair(&c.w, &c.r, CAPACITY);
	s = test_rstats(c.r);
	ASSERT_EQ(s.capacity, CAPACITY);

	t0 = test_now_ms();
	ASSERT_EQ(pthread_create(&tp, NULL, producer_main, &c), 0);
	ASSERT_EQ(pthread_create(&tc, NULL, consumer_main, &c), 0);

	/* Sample the depth every millisecond or so, from a third thread. */
	while (test_now_ms() - t0 < RUN_MS) {
		s = test_rstats(c.r);
		note_depth(&c, &s);
		samples++;
		if (!early_taken && test_now_ms() - t0 >= RUN_MS / 3) {
			waits_early = s.producer_waits;
			early_taken = 1;
		}
		test_sleep_ms(1);
	}
	s = test_rstats(c.r);
	note_depth(&c, &s);
	atomic_store(&c.stop, 1);

	ASSERT_EQ(pthread_join(tp, NULL), 0);
	ASSERT_EQ(pthread_join(tc, NULL), 0);

	cpu_pct = 100.0 * (double)c.prod_cpu_ns / (double)c.prod_wall_ns;
	printf("items %d, depth max %" PRIu64 " bytes (%" PRIu64 " samples), "
	       "producer_waits %" PRIu64 " at %d ms, %" PRIu64 " at %d ms, "
	       "producer CPU %.1f ms of %.1f ms wall (%.2f%%)\n",
	       (int)c.produced_items, (uint64_t)atomic_load(&c.max_depth_seen), samples,
	       waits_early, RUN_MS / 3, s.producer_waits, RUN_MS, (double)c.prod_cpu_ns / 1e6,
	       (double)c.prod_wall_ns / 1e6, cpu_pct);

	/* Every item written was read, in order (checked by the consumer). */
	ASSERT_EQ(c.consumed_items, c.produced_items);
	/* The ring filled up: the producer was held back, it did not run away. */
	ASSERT_GE(c.produced_items, 8);
	ASSERT_LE(c.produced_items, 8 + RUN_MS * 2 / 5 + 50);
	ASSERT_EQ(atomic_load(&c.max_depth_seen), CAPACITY);
	/* It slept, and kept sleeping. */
	ASSERT_GT(waits_early, 0);
	ASSERT_GT(s.producer_waits, waits_early);
	/* Sleeping, not spinning: at most 10% of one CPU. */
	ASSERT_LE(c.prod_cpu_ns * 10, c.prod_wall_ns);

	s = test_rstats(c.r);
	ASSERT_EQ(s.write_index, (uint64_t)c.produced_items * 4);
	ASSERT_EQ(s.read_index, s.write_index);
	ASSERT_EQ(s.produced, c.produced_items);
	ASSERT_EQ(s.consumed, c.consumer_reads);
	ASSERT_GE(s.consumed, c.consumed_items);
	ASSERT_OK(shmpipe_reader_close(c.r));
	return T_PASS;
}
