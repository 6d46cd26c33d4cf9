/* SPDX-License-Identifier: MIT */
/*
 * Description: a writer and a reader that share one CPU hand over without
 * sleeping. Both threads are pinned to the same processor, so while one
 * spins waiting the other cannot run; a wait that only spun would burn its
 * whole spin and then sleep on every hand-off (about one sleep per 32 KiB
 * moved here before the spin learned to yield). With the yielding spin, the
 * peer runs at once and almost no call sleeps. Every byte is checked.
 */
#include <pthread.h>

#include "test.h"

#define RING  (64 * 1024)
#define CHUNK (16 * 1024)

struct side {
	shmpipe_writer *w;
	shmpipe_reader *r;
	uint64_t bytes;
	int cpu;
};

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	ASSERT_EQ(pthread_setaffinity_np(pthread_self(), sizeof(set), &set), 0);
}

static void *writer(void *arg)
{
	struct side *s = arg;
	static uint8_t buf[CHUNK];

	pin(s->cpu);
	for (uint64_t off = 0; off < s->bytes; off += CHUNK) {
		test_pattern_fill(buf, CHUNK, 5, off);
		ASSERT_EQ(shmpipe_write(s->w, buf, CHUNK), CHUNK);
	}
	ASSERT_OK(shmpipe_writer_close(s->w));
	return NULL;
}

int main(void)
{
	static uint8_t buf[CHUNK];
	struct side s;
	shmpipe_stats st;
	pthread_t t;
	cpu_set_t set;
	uint64_t off = 0;
	ssize_t n;

	test_watchdog(120);
	ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
	s.cpu = 0;
	while (s.cpu < CPU_SETSIZE && !CPU_ISSET(s.cpu, &set))
		s.cpu++;
	ASSERT_LT(s.cpu, CPU_SETSIZE);
	s.bytes = (uint64_t)(TEST_SLOW > 1 ? 32 : 256) << 20;
	test_pair(&s.w, &s.r, RING);
	pin(s.cpu);
	ASSERT_EQ(pthread_create(&t, NULL, writer, &s), 0);
	while ((n = shmpipe_read(s.r, buf, sizeof(buf))) > 0) {
		ASSERT_PATTERN(buf, (size_t)n, 5, off);
		off += (uint64_t)n;
	}
	ASSERT_EQ(n, 0);
	ASSERT_EQ(off, s.bytes);
	ASSERT_EQ(pthread_join(t, NULL), 0);
	st = test_rstats(s.r);
	printf("%" PRIu64 " MiB on one CPU: producer_waits %" PRIu64 " consumer_waits %" PRIu64
	       " (hand-offs of a %d KiB ring: about %" PRIu64 ")\n",
	       s.bytes >> 20, st.producer_waits, st.consumer_waits, RING / 1024,
	       s.bytes / (RING / 2));
	/* Without yielding: a sleep per hand-off, some 8000 for 256 MiB. */
	ASSERT_LT(st.producer_waits + st.consumer_waits, s.bytes / (RING / 2) / 10);
	ASSERT_OK(shmpipe_reader_close(s.r));
	return T_PASS;
}
