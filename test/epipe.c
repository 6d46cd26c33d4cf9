/* SPDX-License-Identifier: MIT */
/*
 * Description: a closed read end. A writer asleep on a full ring is woken
 * by shmpipe_reader_close and returns -EPIPE promptly, or the count it had
 * already written when part of its write went in; every later write is
 * -EPIPE, whatever the timeout, even on a full ring with timeout 0; and no
 * SIGPIPE is raised (this test keeps SIGPIPE's default action, which would
 * kill it).
 */
#include <pthread.h>
#include <stdatomic.h>

#include "test.h"

struct blocked_writer {
	shmpipe_writer *w;
	const uint8_t *buf;
	size_t len;
	atomic_int started;
	ssize_t ret;
	ssize_t next; /* the write after that */
	int64_t return_ns;
};

static void *writer_main(void *arg)
{
	struct blocked_writer *b = arg;

	atomic_store(&b->started, 1);
	b->ret = shmpipe_write(b->w, b->buf, b->len);
	b->return_ns = test_now_ns();
	b->next = shmpipe_write(b->w, b->buf, 1);
	return NULL;
}

/*
 * The ring holds `prefill` of 64 bytes; a thread writes `len` more with an
 * infinite timeout and sleeps; the reader closes. The write must return
 * `want` (the part that fitted, or -EPIPE if none did) and the next -EPIPE.
 */
static void check_close_wakes_writer(size_t prefill, size_t len, ssize_t want)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	struct blocked_writer b;
	uint8_t data[256];
	pthread_t t;
	int64_t closed_ns, ms;

	memset(&b, 0, sizeof(b));
	test_pattern_fill(data, sizeof(data), 1, 0);
	test_pair(&w, &r, 64);
	if (prefill > 0)
		ASSERT_EQ(shmpipe_write(w, data, prefill), prefill);
	b.w = w;
	b.buf = data;
	b.len = len;
	ASSERT_EQ(pthread_create(&t, NULL, writer_main, &b), 0);
	while (!atomic_load(&b.started))
		test_sleep_ms(1);
	test_sleep_ms(200);

	/* The writer is asleep on a full ring. */
	s = test_rstats(r);
	ASSERT_EQ(s.write_index, 64);
	ASSERT_EQ(s.read_index, 0);
	ASSERT_GE(s.producer_waits, 1);

	closed_ns = test_now_ns();
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_EQ(pthread_join(t, NULL), 0);
	ms = (b.return_ns - closed_ns) / 1000000;
	printf("prefill %zu, write %zu: returned %zd after %" PRId64 " ms\n", prefill, len, b.ret,
	       ms);
	ASSERT_EQ(b.ret, want);
	ASSERT_ERR(b.next, -EPIPE);
	ASSERT_LT(ms, 1000 * TEST_SLOW);

	/* The writer's own handle still works, and the error sticks. */
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, 64);
	ASSERT_ERR(shmpipe_write(w, data, 10), -EPIPE);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_ERR(shmpipe_write(w, data, 10), -EPIPE);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 50));
	ASSERT_ERR(shmpipe_write(w, data, 10), -EPIPE);
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, 64);
	ASSERT_OK(shmpipe_writer_close(w));
}

/* No thread: the reader closes first, then writes fail at once. */
static void test_write_after_close(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	uint8_t data[64] = {0};

	/* Empty ring. */
	test_pair(&w, &r, 64);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_ERR(shmpipe_write(w, data, 1), -EPIPE);
	ASSERT_ERR(shmpipe_write(w, data, 64), -EPIPE);
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, 0);
	ASSERT_EQ(s.produced, 0);
	ASSERT_OK(shmpipe_writer_close(w));

	/* Full ring, timeout 0: -EPIPE wins over -EAGAIN. */
	test_pair(&w, &r, 64);
	ASSERT_EQ(shmpipe_write(w, data, 64), 64);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_ERR(shmpipe_write(w, data, 1), -EAGAIN);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_ERR(shmpipe_write(w, data, 1), -EPIPE);
	/* Full ring, timeout > 0: -EPIPE at once, not -ETIMEDOUT later. */
	ASSERT_OK(shmpipe_writer_set_timeout(w, 5000));
	{
		int64_t t0 = test_now_ms();
		ASSERT_ERR(shmpipe_write(w, data, 1), -EPIPE);
		ASSERT_LT(test_now_ms() - t0, 1000 * TEST_SLOW);
	}
	/* Full ring, infinite timeout: -EPIPE, not a hang. */
	ASSERT_OK(shmpipe_writer_set_timeout(w, -1));
	ASSERT_ERR(shmpipe_write(w, data, 1), -EPIPE);
	ASSERT_OK(shmpipe_writer_close(w));

	/* Half-full ring: nothing more goes in, not even what would fit. */
	test_pair(&w, &r, 64);
	ASSERT_EQ(shmpipe_write(w, data, 32), 32);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_ERR(shmpipe_write(w, data, 8), -EPIPE);
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, 32);
	ASSERT_EQ(s.produced, 1);
	ASSERT_OK(shmpipe_writer_close(w));
}

int main(void)
{
	struct sigaction sa;

	/* SIGPIPE must stay fatal here: a library that raised it kills us. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigaction(SIGPIPE, &sa, NULL);
	{
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGPIPE);
		pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	}
	test_watchdog(30);

	test_write_after_close();
	/* Full ring, the whole write blocked: -EPIPE. */
	check_close_wakes_writer(64, 1, -EPIPE);
	check_close_wakes_writer(64, 100, -EPIPE);
	/* Part of the write went in before the ring filled: that count. */
	check_close_wakes_writer(32, 100, 32);
	check_close_wakes_writer(0, 200, 64);
	return T_PASS;
}
