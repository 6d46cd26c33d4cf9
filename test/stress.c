/* SPDX-License-Identifier: MIT */
/*
 * Description: two threads move SHMPIPE_STRESS_MB MiB (default 1024)
 * through one pipe of the capacity given as argv[1], with random write
 * sizes (1 byte to twice the capacity), random read sizes and random short
 * pauses on both sides, so that each side keeps finding the ring full or
 * empty and sleeping. The data is a pseudo-random stream keyed by absolute
 * offset and the reader checks every byte. At the end: write_index ==
 * read_index == volume, produced == write calls, consumed == reads that
 * returned data. With argv[2] == "stats", a third thread samples the stats
 * all along and checks read_index <= write_index <= read_index + capacity
 * and that no counter ever goes back. A lost wake-up shows as no progress
 * and fails the test with the counters printed.
 *
 * usage: stress CAPACITY [stats]
 * env:   SHMPIPE_STRESS_MB (MiB to move), SHMPIPE_STRESS_SEED
 */
#include <pthread.h>
#include <stdatomic.h>

#include "test.h"

struct ctx {
	shmpipe_writer *w;
	shmpipe_reader *r;
	size_t cap;
	uint64_t total;
	uint64_t seed;
	/* Results, each written by its thread before it ends. */
	uint64_t writes;
	uint64_t reads;
	uint64_t samples;
	atomic_uint_fast64_t read_progress; /* bytes checked so far */
	atomic_int reader_done;
	atomic_int stop_sampler;
};

/* Now and then, let the other side catch up or fall behind. */
static void random_pause(uint64_t *rng)
{
	uint64_t x = test_rand(rng) % 1024;

	if (x < 3)
		usleep((useconds_t)test_rand_range(rng, 1, 300));
	else if (x < 16)
		sched_yield();
}

/* Mostly anything up to twice the capacity, sometimes tiny. */
static size_t random_size(uint64_t *rng, size_t cap)
{
	if (test_rand(rng) % 4 == 0)
		return (size_t)test_rand_range(rng, 1, 16);
	return (size_t)test_rand_range(rng, 1, 2 * (uint64_t)cap);
}

static void *writer_main(void *arg)
{
	struct ctx *c = arg;
	uint8_t *buf = malloc(2 * c->cap);
	uint64_t rng = c->seed * 2 + 1, off = 0;

	ASSERT_NOT_NULL(buf);
	while (off < c->total) {
		size_t n = random_size(&rng, c->cap);
		ssize_t ret;

		if (n > c->total - off)
			n = (size_t)(c->total - off);
		test_pattern_fill(buf, n, c->seed, off);
		ret = shmpipe_write(c->w, buf, n);
		ASSERT_EQ(ret, n);
		off += n;
		c->writes++;
		random_pause(&rng);
	}
	free(buf);
	ASSERT_OK(shmpipe_writer_close(c->w));
	return NULL;
}

static void *reader_main(void *arg)
{
	struct ctx *c = arg;
	uint8_t *buf = malloc(2 * c->cap);
	uint64_t rng = c->seed * 2 + 2, off = 0;

	ASSERT_NOT_NULL(buf);
	for (;;) {
		size_t n = random_size(&rng, c->cap);
		ssize_t ret = shmpipe_read(c->r, buf, n);

		if (ret == 0)
			break;
		ASSERT_GT(ret, 0);
		ASSERT_LE(ret, n);
		ASSERT_LE(off + (uint64_t)ret, c->total);
		ASSERT_PATTERN(buf, (size_t)ret, c->seed, off);
		off += (uint64_t)ret;
		c->reads++;
		atomic_store(&c->read_progress, off);
		random_pause(&rng);
	}
	ASSERT_EQ(off, c->total);
	/* End of stream is sticky. */
	ASSERT_EQ(shmpipe_read(c->r, buf, 1), 0);
	free(buf);
	atomic_store(&c->reader_done, 1);
	return NULL;
}

/* Counters only grow; the ring never holds more than its capacity. */
static void check_sample(const struct ctx *c, const shmpipe_stats *s, const shmpipe_stats *prev)
{
	ASSERT_EQ(s->capacity, c->cap);
	ASSERT_LE(s->read_index, s->write_index);
	ASSERT_LE(s->write_index, s->read_index + c->cap);
	ASSERT_LE(s->write_index, c->total);
	ASSERT_LE(s->produced, s->write_index);
	ASSERT_LE(s->consumed, s->read_index);
	ASSERT_GE(s->write_index, prev->write_index);
	ASSERT_GE(s->read_index, prev->read_index);
	ASSERT_GE(s->produced, prev->produced);
	ASSERT_GE(s->consumed, prev->consumed);
	ASSERT_GE(s->producer_waits, prev->producer_waits);
	ASSERT_GE(s->consumer_waits, prev->consumer_waits);
}

static void *sampler_main(void *arg)
{
	struct ctx *c = arg;
	shmpipe_stats prev, s;

	memset(&prev, 0, sizeof(prev));
	while (!atomic_load(&c->stop_sampler)) {
		for (int i = 0; i < 100; i++) {
			s = test_rstats(c->r);
			check_sample(c, &s, &prev);
			prev = s;
			c->samples++;
		}
		usleep(100);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct ctx c;
	pthread_t tw, tr, ts;
	shmpipe_stats s;
	int sampling = argc > 2 && strcmp(argv[2], "stats") == 0;
	long mb = test_env_long("SHMPIPE_STRESS_MB", 1024);
	int64_t t0, secs, last_change;
	uint64_t last_progress = 0;

	if (argc < 2 || atol(argv[1]) <= 0) {
		fprintf(stderr, "usage: %s CAPACITY [stats]\n", argv[0]);
		return T_FAIL;
	}
	memset(&c, 0, sizeof(c));
	c.cap = (size_t)atol(argv[1]);
	c.total = (uint64_t)mb << 20;
	c.seed = (uint64_t)test_env_long("SHMPIPE_STRESS_SEED", 0x5173);
	printf("capacity %zu, %ld MiB, seed %" PRIu64 "%s\n", c.cap, mb, c.seed,
	       sampling ? ", stats sampled concurrently" : "");
	fflush(stdout);
	test_pair(&c.w, &c.r, c.cap);

	t0 = test_now_ns();
	ASSERT_EQ(pthread_create(&tr, NULL, reader_main, &c), 0);
	ASSERT_EQ(pthread_create(&tw, NULL, writer_main, &c), 0);
	if (sampling)
		ASSERT_EQ(pthread_create(&ts, NULL, sampler_main, &c), 0);

	/* Watch for progress: no byte moved for 20 s means a lost wake-up. */
	last_change = test_now_ms();
	while (!atomic_load(&c.reader_done)) {
		uint64_t p = atomic_load(&c.read_progress);
		test_sleep_ms(50);
		if (p != last_progress) {
			last_progress = p;
			last_change = test_now_ms();
		} else if (test_now_ms() - last_change > 20000) {
			s = test_rstats(c.r);
			test_print_stats("stuck", &s);
			TEST_FAIL("no progress for 20 s at byte %" PRIu64 " of %" PRIu64
				  ": lost wake-up?",
				  p, c.total);
		}
	}
	ASSERT_EQ(pthread_join(tr, NULL), 0);
	ASSERT_EQ(pthread_join(tw, NULL), 0);
	secs = test_now_ns() - t0;
	if (sampling) {
		atomic_store(&c.stop_sampler, 1);
		ASSERT_EQ(pthread_join(ts, NULL), 0);
	}

	s = test_rstats(c.r);
	test_print_stats("final", &s);
	printf("checked %" PRIu64 " bytes in %.2f s: %.0f MiB/s; %" PRIu64 " writes, %" PRIu64
	       " reads",
	       c.total, (double)secs / 1e9, (double)c.total / 1048576.0 / ((double)secs / 1e9),
	       c.writes, c.reads);
	if (sampling)
		printf(", %" PRIu64 " stats samples", c.samples);
	printf("\n");

	ASSERT_EQ(s.capacity, c.cap);
	ASSERT_EQ(s.write_index, c.total);
	ASSERT_EQ(s.read_index, c.total);
	ASSERT_EQ(s.produced, c.writes);
	ASSERT_EQ(s.consumed, c.reads);
	ASSERT_OK(shmpipe_reader_close(c.r));
	return T_PASS;
}
