/* SPDX-License-Identifier: MIT */
/*
 * Description: ping-pong over two pipes between two threads, 100000 round
 * trips (argv[1] to change). Each side sleeps on an empty ring between
 * messages, so every message needs a wake-up: a single lost wake-up hangs
 * the test, which a watchdog thread reports after 10 s without progress. The
 * return pipe's capacity (17) is smaller than most replies, so replies are
 * written in several pieces with the writer sleeping in between. Every
 * byte is checked, and the counters of both pipes must be exact.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "test.h"

#define MAX_MSG 64

struct ctx {
	shmpipe_writer *ping_w; /* main -> echo thread */
	shmpipe_reader *ping_r;
	shmpipe_writer *pong_w; /* echo thread -> main */
	shmpipe_reader *pong_r;
	long rounds;
	uint64_t echo_reads;
	atomic_long progress; /* round trips done */
	atomic_int finished;
};

/* Fails the test if no round trip completes for 10 s: a lost wake-up. */
static void *watch_main(void *arg)
{
	struct ctx *c = arg;
	long last = -1;
	int64_t since = test_now_ms();

	while (!atomic_load(&c->finished)) {
		long p = atomic_load(&c->progress);
		if (p != last) {
			last = p;
			since = test_now_ms();
		} else if (test_now_ms() - since > 10000) {
			TEST_FAIL("no round trip for 10 s after %ld of %ld: lost wake-up?", p,
				  c->rounds);
		}
		test_sleep_ms(20);
	}
	return NULL;
}

/* Reads exactly len bytes; returns the number of read calls it took. */
static uint64_t read_full(shmpipe_reader *r, uint8_t *buf, size_t len)
{
	uint64_t calls = 0;
	size_t have = 0;

	while (have < len) {
		ssize_t n = shmpipe_read(r, buf + have, len - have);
		ASSERT_GT(n, 0);
		have += (size_t)n;
		calls++;
	}
	return calls;
}

static size_t msg_len(long i)
{
	return (size_t)(test_mix64((uint64_t)i) % MAX_MSG) + 1;
}

static void *echo_main(void *arg)
{
	struct ctx *c = arg;
	uint8_t buf[MAX_MSG];

	for (long i = 0; i < c->rounds; i++) {
		size_t n = msg_len(i);

		c->echo_reads += read_full(c->ping_r, buf, n);
		ASSERT_PATTERN(buf, n, 1, (uint64_t)i * MAX_MSG);
		/* Reply with the next stretch of the other stream. */
		test_pattern_fill(buf, n, 2, (uint64_t)i * MAX_MSG);
		ASSERT_EQ(shmpipe_write(c->pong_w, buf, n), n);
	}
	/* The main thread closes ping: end of stream. */
	ASSERT_EQ(shmpipe_read(c->ping_r, buf, 1), 0);
	ASSERT_OK(shmpipe_writer_close(c->pong_w));
	return NULL;
}

int main(int argc, char **argv)
{
	struct ctx c;
	pthread_t t, tw;
	shmpipe_stats s;
	uint64_t bytes = 0, main_reads = 0;
	uint8_t buf[MAX_MSG];
	int64_t t0, ns;

	memset(&c, 0, sizeof(c));
	c.rounds = argc > 1 ? atol(argv[1]) : 100000;
	if (c.rounds <= 0)
		c.rounds = 100000;
	test_pair(&c.ping_w, &c.ping_r, 4096);
	test_pair(&c.pong_w, &c.pong_r, 17);

	t0 = test_now_ns();
	ASSERT_EQ(pthread_create(&tw, NULL, watch_main, &c), 0);
	ASSERT_EQ(pthread_create(&t, NULL, echo_main, &c), 0);
	for (long i = 0; i < c.rounds; i++) {
		size_t n = msg_len(i);

		test_pattern_fill(buf, n, 1, (uint64_t)i * MAX_MSG);
		ASSERT_EQ(shmpipe_write(c.ping_w, buf, n), n);
		main_reads += read_full(c.pong_r, buf, n);
		ASSERT_PATTERN(buf, n, 2, (uint64_t)i * MAX_MSG);
		bytes += n;
		atomic_store(&c.progress, i + 1);
	}
	ASSERT_OK(shmpipe_writer_close(c.ping_w));
	ASSERT_EQ(pthread_join(t, NULL), 0);
	ASSERT_EQ(shmpipe_read(c.pong_r, buf, sizeof(buf)), 0);
	ns = test_now_ns() - t0;
	atomic_store(&c.finished, 1);
	ASSERT_EQ(pthread_join(tw, NULL), 0);

	s = test_rstats(c.ping_r);
	test_print_stats("ping", &s);
	ASSERT_EQ(s.write_index, bytes);
	ASSERT_EQ(s.read_index, bytes);
	ASSERT_EQ(s.produced, c.rounds);
	ASSERT_EQ(s.consumed, c.echo_reads);
	s = test_rstats(c.pong_r);
	test_print_stats("pong", &s);
	ASSERT_EQ(s.write_index, bytes);
	ASSERT_EQ(s.read_index, bytes);
	ASSERT_EQ(s.produced, c.rounds);
	ASSERT_EQ(s.consumed, main_reads);
	printf("%ld round trips in %.2f s: %.1f us each\n", c.rounds, (double)ns / 1e9,
	       (double)ns / 1e3 / (double)c.rounds);

	ASSERT_OK(shmpipe_reader_close(c.ping_r));
	ASSERT_OK(shmpipe_reader_close(c.pong_r));
	return T_PASS;
}
