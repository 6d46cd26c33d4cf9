/* SPDX-License-Identifier: MIT */
/*
 * Description: shmpipe_writer_interrupt / shmpipe_reader_interrupt. A read
 * asleep on an empty ring and a write asleep on a full one return -EINTR
 * when another thread interrupts them, and a write that had put part of its
 * bytes in returns that count; a read still in a long spin returns as
 * promptly; an interrupt with no call waiting is taken
 * by the next call that would sleep, not by calls that have data; 2000
 * interrupts sent at random moments against a reader going to sleep are
 * never lost (each read returns, well before the watchdog); the end works
 * normally afterwards.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "test.h"

struct blocked {
	shmpipe_writer *w;
	shmpipe_reader *r;
	size_t len;
	ssize_t ret;
	atomic_int started;
};

static void *blocked_read(void *arg)
{
	struct blocked *b = arg;
	uint8_t buf[64];

	atomic_store(&b->started, 1);
	b->ret = shmpipe_read(b->r, buf, sizeof(buf));
	return NULL;
}

static void *blocked_write(void *arg)
{
	struct blocked *b = arg;
	uint8_t buf[64] = {0};

	atomic_store(&b->started, 1);
	b->ret = shmpipe_write(b->w, buf, b->len);
	return NULL;
}

/* Starts fn, lets it fall asleep, interrupts it, and checks how it ended. */
static void interrupt_sleeper(shmpipe_writer *w, shmpipe_reader *r, bool writer, size_t len,
			      ssize_t want)
{
	struct blocked b = {.w = w, .r = r, .len = len};
	pthread_t t;
	int64_t t0;

	ASSERT_EQ(pthread_create(&t, NULL, writer ? blocked_write : blocked_read, &b), 0);
	while (!atomic_load(&b.started))
		test_sleep_ms(1);
	test_sleep_ms(50); /* well past the spin: asleep in the kernel */
	t0 = test_now_ms();
	ASSERT_OK(writer ? shmpipe_writer_interrupt(w) : shmpipe_reader_interrupt(r));
	ASSERT_EQ(pthread_join(t, NULL), 0);
	ASSERT_LT(test_now_ms() - t0, 1000 * TEST_SLOW);
	ASSERT_EQ(b.ret, want);
}

int main(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	uint8_t buf[64];
	uint64_t rng = 42;

	test_watchdog(120);
	ASSERT_ERR(shmpipe_writer_interrupt(NULL), -EINVAL);
	ASSERT_ERR(shmpipe_reader_interrupt(NULL), -EINVAL);

	test_pair(&w, &r, 64);

	/* A read asleep on an empty ring. */
	interrupt_sleeper(w, r, false, 0, -EINTR);
	ASSERT_GE(test_rstats(r).consumer_waits, 1);

	/* A write asleep on a full ring, and one that got part of it in. */
	memset(buf, 'x', sizeof(buf));
	ASSERT_EQ(shmpipe_write(w, buf, 64), 64);
	interrupt_sleeper(w, r, true, 16, -EINTR);
	ASSERT_EQ(shmpipe_read(r, buf, 14), 14);
	interrupt_sleeper(w, r, true, 30, 14);
	ASSERT_EQ(test_wstats(w).write_index, 78);
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 64);

	/* A read still spinning (for up to 1 s) is interrupted as promptly. */
	ASSERT_OK(shmpipe_reader_set_spin(r, SHMPIPE_SPIN_MAX_US));
	{
		int64_t t0 = test_now_ms();

		interrupt_sleeper(w, r, false, 0, -EINTR);
		ASSERT_LT(test_now_ms() - t0, 500);
	}
	ASSERT_OK(shmpipe_reader_set_spin(r, -1));

	/* No call waiting: a call with data is not affected, the next sleep is. */
	ASSERT_OK(shmpipe_reader_interrupt(r));
	ASSERT_EQ(shmpipe_write(w, "ab", 2), 2);
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 2);
	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), -EINTR);

	/* Interrupts at random moments, against a reader on its way to sleep. */
	ASSERT_OK(shmpipe_reader_set_spin(r, 0));
	for (int i = 0; i < 2000 / TEST_SLOW; i++) {
		struct blocked b = {.w = w, .r = r};
		pthread_t t;

		ASSERT_EQ(pthread_create(&t, NULL, blocked_read, &b), 0);
		while (!atomic_load(&b.started))
			sched_yield();
		for (uint64_t n = test_rand_range(&rng, 0, 2000); n; n--)
			__asm__ __volatile__("" ::: "memory");
		ASSERT_OK(shmpipe_reader_interrupt(r));
		ASSERT_EQ(pthread_join(t, NULL), 0);
		ASSERT_EQ(b.ret, -EINTR);
	}

	/* And the end still works. */
	ASSERT_EQ(shmpipe_write(w, "done", 4), 4);
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 4);
	ASSERT_MEM_EQ(buf, "done", 4);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 0);
	ASSERT_OK(shmpipe_reader_close(r));
	return T_PASS;
}
