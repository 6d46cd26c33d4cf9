/* SPDX-License-Identifier: MIT */
/*
 * Description: signals, as read(2)/write(2) on a pipe without SA_RESTART.
 * A reader asleep on an empty ring that gets a signal (handler installed
 * without SA_RESTART) returns -EINTR; a writer asleep on a full ring
 * returns -EINTR, or the count already written when part of its write went
 * in; afterwards the same calls work again and no byte is lost or doubled.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "test.h"

static atomic_int handled;

static void on_usr1(int sig)
{
	(void)sig;
	atomic_fetch_add(&handled, 1);
}

/*
 * Interrupts thread t until *done is set. One signal at a time, each one
 * handled before the next is sent, so that none is merged with another and
 * none is still in flight when this returns (a late one would interrupt the
 * thread's next call).
 */
static void interrupt_until(pthread_t t, atomic_int *done)
{
	for (int tries = 0; !atomic_load(done); tries++) {
		int before = atomic_load(&handled);
		int64_t deadline = test_now_ms() + 5000 * TEST_SLOW;

		if (tries > 200)
			TEST_FAIL("the call was not interrupted by %d signals", tries);
		ASSERT_EQ(pthread_kill(t, SIGUSR1), 0);
		while (atomic_load(&handled) == before) {
			if (test_now_ms() > deadline)
				TEST_FAIL("SIGUSR1 was never handled");
			test_sleep_ms(1);
		}
		/* Give the interrupted call time to return. */
		for (int i = 0; i < 50 && !atomic_load(done); i++)
			test_sleep_ms(1);
	}
}

struct sleeper {
	shmpipe_writer *w;
	shmpipe_reader *r;
	const uint8_t *wbuf;
	size_t len;
	atomic_int started;
	atomic_int done;
	atomic_int go_again;
	ssize_t ret;
	ssize_t ret2;
	uint8_t rbuf[256];
};

static void *reader_main(void *arg)
{
	struct sleeper *s = arg;

	atomic_store(&s->started, 1);
	s->ret = shmpipe_read(s->r, s->rbuf, sizeof(s->rbuf));
	atomic_store(&s->done, 1);
	while (!atomic_load(&s->go_again))
		test_sleep_ms(1);
	/* Blocks again until main writes; no signal is sent any more. */
	s->ret2 = shmpipe_read(s->r, s->rbuf, sizeof(s->rbuf));
	return NULL;
}

static void test_reader_eintr(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats st;
	struct sleeper s;
	pthread_t t;

	memset(&s, 0, sizeof(s));
	test_pair(&w, &r, 64);
	s.r = r;
	ASSERT_EQ(pthread_create(&t, NULL, reader_main, &s), 0);
	while (!atomic_load(&s.started))
		test_sleep_ms(1);
	test_sleep_ms(100);
	ASSERT_EQ(atomic_load(&s.done), 0);

	interrupt_until(t, &s.done);
	ASSERT_ERR(s.ret, -EINTR);
	st = test_rstats(r);
	ASSERT_EQ(st.consumed, 0);
	ASSERT_GE(st.consumer_waits, 1);

	/* The call works again: it sleeps, then gets what is written. */
	atomic_store(&s.go_again, 1);
	test_sleep_ms(50);
	ASSERT_EQ(shmpipe_write(w, "after", 5), 5);
	ASSERT_EQ(pthread_join(t, NULL), 0);
	ASSERT_EQ(s.ret2, 5);
	ASSERT_MEM_EQ(s.rbuf, "after", 5);

	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

static void *writer_main(void *arg)
{
	struct sleeper *s = arg;

	atomic_store(&s->started, 1);
	s->ret = shmpipe_write(s->w, s->wbuf, s->len);
	atomic_store(&s->done, 1);
	while (!atomic_load(&s->go_again))
		test_sleep_ms(1);
	/* The rest of the data, if the first call was cut short. */
	if (s->ret >= 0 && (size_t)s->ret < s->len)
		s->ret2 = shmpipe_write(s->w, s->wbuf + s->ret, s->len - (size_t)s->ret);
	else if (s->ret == -EINTR)
		s->ret2 = shmpipe_write(s->w, s->wbuf, s->len);
	return NULL;
}

/*
 * A writer asleep on a 64-byte ring holding `prefill` bytes, writing 200:
 * interrupted, it returns what went in (or -EINTR if nothing did); the
 * retried rest arrives intact behind it.
 */
static void check_writer_eintr(size_t prefill)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats st;
	struct sleeper s;
	uint8_t data[200], pre[64], in[256];
	size_t want_first = 64 - prefill, got = 0;
	pthread_t t;

	memset(&s, 0, sizeof(s));
	test_pattern_fill(data, sizeof(data), 21, 0);
	memset(pre, 0xee, sizeof(pre));
	test_pair(&w, &r, 64);
	if (prefill > 0)
		ASSERT_EQ(shmpipe_write(w, pre, prefill), prefill);
	s.w = w;
	s.wbuf = data;
	s.len = sizeof(data);
	ASSERT_EQ(pthread_create(&t, NULL, writer_main, &s), 0);
	while (!atomic_load(&s.started))
		test_sleep_ms(1);
	test_sleep_ms(100);
	ASSERT_EQ(atomic_load(&s.done), 0);
	st = test_rstats(r);
	ASSERT_EQ(st.write_index, 64);

	interrupt_until(t, &s.done);
	if (want_first == 0)
		ASSERT_ERR(s.ret, -EINTR);
	else
		ASSERT_EQ(s.ret, want_first);
	st = test_rstats(r);
	ASSERT_EQ(st.write_index, 64);
	ASSERT_GE(st.producer_waits, 1);

	/* Retry the rest while draining: every byte once, in order. */
	atomic_store(&s.go_again, 1);
	if (prefill > 0) {
		size_t n = 0;
		while (n < prefill) {
			ssize_t k = shmpipe_read(r, in, prefill - n);
			ASSERT_GT(k, 0);
			ASSERT_MEM_EQ(in, pre, (size_t)k);
			n += (size_t)k;
		}
	}
	while (got < sizeof(data)) {
		ssize_t k = shmpipe_read(r, in, sizeof(in));
		ASSERT_GT(k, 0);
		ASSERT_LE(got + (size_t)k, sizeof(data));
		ASSERT_PATTERN(in, (size_t)k, 21, got);
		got += (size_t)k;
	}
	ASSERT_EQ(pthread_join(t, NULL), 0);
	ASSERT_EQ(s.ret2, want_first == 0 ? 200 : 200 - want_first);
	st = test_rstats(r);
	ASSERT_EQ(st.write_index, prefill + 200);
	ASSERT_EQ(st.read_index, prefill + 200);

	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

int main(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = 0; /* no SA_RESTART: interrupted calls must return */
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
	test_watchdog(40);

	test_reader_eintr();
	check_writer_eintr(64); /* full ring: nothing goes in, -EINTR */
	check_writer_eintr(0);	/* 64 of 200 go in, then the signal */
	check_writer_eintr(40); /* 24 of 200 go in */
	return T_PASS;
}
