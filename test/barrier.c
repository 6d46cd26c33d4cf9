/* SPDX-License-Identifier: MIT */
/*
 * Description: the asymmetric fence. Where the system offers process-wide
 * barriers (membarrier), an end announces in the shared header, before its
 * first sleep or once a blocking read or write has gone through, that it
 * issues one before every wait from then on, and its peer then publishes
 * without a fence of its own (and may take the inline calls of shmpipe.h);
 * an end that only an event loop drives (timeout 0) never announces, and
 * its peer fences; all of this with SHMPIPE_BARRIER=1, which asks for the
 * barriers (src/os_linux.c says why they are not the default). Without it,
 * or with SHMPIPE_NO_BARRIER set, no end announces and all fence. In either mode, a
 * ping-pong in which every read sleeps (spin 0) never loses a wake-up: a
 * lost one would stall it for good, which the watchdog turns into a
 * failure; round trips of 90 ms or more are counted and one is allowed (a
 * stall of the machine). This catches a protocol that loses wake-ups
 * often; the model (model/wakeup.pml) is the proof that it never does.
 *
 *   barrier [rounds]    SHMPIPE_BARRIER=1 barrier [rounds]
 */
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "layout.h"
#include "test.h"

/* The header as an outside observer sees it, through the end's descriptor. */
static void header_flags(int fd, uint32_t *wflags, uint32_t *rflags)
{
	const struct shmpipe__hdr *h;
	void *p = mmap(NULL, sizeof(*h), PROT_READ, MAP_SHARED, fd, 0);

	ASSERT_TRUE(p != MAP_FAILED);
	h = p;
	*wflags = atomic_load(&h->writer_flags);
	*rflags = atomic_load(&h->reader_flags);
	munmap(p, sizeof(*h));
}

static bool expect_barrier(void)
{
	const char *on = getenv("SHMPIPE_BARRIER");

	return on && strcmp(on, "1") == 0 && getenv("SHMPIPE_NO_BARRIER") == NULL;
}

struct pong {
	shmpipe_reader *in;
	shmpipe_writer *out;
};

static void *ponger(void *arg)
{
	struct pong *p = arg;
	uint8_t b;
	ssize_t n;

	while ((n = shmpipe_read(p->in, &b, 1)) == 1)
		ASSERT_EQ(shmpipe_write(p->out, &b, 1), 1);
	ASSERT_EQ(n, 0);
	ASSERT_OK(shmpipe_writer_close(p->out));
	ASSERT_OK(shmpipe_reader_close(p->in));
	return NULL;
}

/* A blocking read of one byte (7), in a thread. */
static void *read_one(void *arg)
{
	uint8_t b = 0;

	ASSERT_EQ(shmpipe_read(arg, &b, 1), 1);
	ASSERT_EQ(b, 7);
	return NULL;
}

/* Every read sleeps: a lost wake-up stalls a round trip for good. */
static void pingpong(long rounds)
{
	shmpipe_writer *w1, *w2;
	shmpipe_reader *r1, *r2;
	struct pong p;
	pthread_t t;
	int64_t worst = 0;
	long slow = 0;

	test_pair(&w1, &r1, 64);
	test_pair(&w2, &r2, 64);
	ASSERT_OK(shmpipe_reader_set_spin(r1, 0));
	ASSERT_OK(shmpipe_reader_set_spin(r2, 0));
	p.in = r1;
	p.out = w2;
	ASSERT_EQ(pthread_create(&t, NULL, ponger, &p), 0);
	for (long i = 0; i < rounds; i++) {
		uint8_t b = (uint8_t)i, back;
		int64_t t0 = test_now_ns(), dt;

		ASSERT_EQ(shmpipe_write(w1, &b, 1), 1);
		ASSERT_EQ(shmpipe_read(r2, &back, 1), 1);
		ASSERT_EQ(back, b);
		dt = test_now_ns() - t0;
		if (dt > worst)
			worst = dt;
		if (dt >= 90 * 1000000LL)
			slow++;
	}
	ASSERT_OK(shmpipe_writer_close(w1));
	ASSERT_EQ(pthread_join(t, NULL), 0);
	printf("%ld sleeping round trips (%s): worst %.3f ms, %ld of 90 ms or more, "
	       "consumer waits %" PRIu64 "\n",
	       rounds, expect_barrier() ? "fenceless" : "fenced", worst / 1e6, slow,
	       test_rstats(r2).consumer_waits);
	ASSERT_LE(slow, 1);
	ASSERT_OK(shmpipe_reader_close(r2));
}

int main(int argc, char **argv)
{
	long rounds = argc > 1 ? atol(argv[1]) : 20000 / TEST_SLOW;
	shmpipe_writer *w;
	shmpipe_reader *r;
	uint32_t wf, rf;
	pthread_t t;
	uint8_t b;
	pid_t pid;
	int status;

	test_watchdog(120);

	/*
	 * One process: no end promises before it is used; an event loop's
	 * refusals (timeout 0) promise nothing; a sleep does, and so does a
	 * blocking write that went through, as the mode says.
	 */
	test_pair(&w, &r, 64);
	header_flags(shmpipe_writer_fd(w), &wf, &rf);
	ASSERT_EQ(wf, 0);
	ASSERT_EQ(rf, 0);
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	ASSERT_ERR(shmpipe_read(r, &b, 1), -EAGAIN);
	header_flags(shmpipe_writer_fd(w), &wf, &rf);
	ASSERT_EQ(rf, 0);
	ASSERT_OK(shmpipe_reader_set_timeout(r, -1));
	ASSERT_OK(shmpipe_reader_set_spin(r, 0));
	ASSERT_EQ(pthread_create(&t, NULL, read_one, r), 0);
	test_sleep_ms(50); /* asleep by now */
	ASSERT_EQ(shmpipe_write(w, "\x07", 1), 1);
	ASSERT_EQ(pthread_join(t, NULL), 0);
	header_flags(shmpipe_writer_fd(w), &wf, &rf);
	printf("pair, the reader slept: writer_flags %u reader_flags %u\n", wf, rf);
	if (expect_barrier() && rf == 0)
		TEST_SKIP("no process-wide barrier here (membarrier)");
	ASSERT_EQ(wf, expect_barrier() ? SHMPIPE__END_BARRIER : 0);
	ASSERT_EQ(rf, expect_barrier() ? SHMPIPE__END_BARRIER : 0);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_writer_close(w));

	/* Across fork: the child takes the read end of an anonymous pipe. */
	ASSERT_OK(shmpipe_writer_create(&w, NULL, NULL));
	pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		if (shmpipe_reader_open_fd(&r, dup(shmpipe_writer_fd(w))) < 0)
			_exit(1);
		_exit(shmpipe_read(r, &b, 1) == 1 && b == 7 ? 0 : 1);
	}
	/* The byte goes in once the child has gone to sleep and said so. */
	for (int i = 0; i < 5000; i++) {
		header_flags(shmpipe_writer_fd(w), &wf, &rf);
		if (rf || !expect_barrier())
			break;
		test_sleep_ms(1);
	}
	ASSERT_EQ(shmpipe_write(w, "\x07", 1), 1);
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	header_flags(shmpipe_writer_fd(w), &wf, &rf);
	printf("fork: writer_flags %u reader_flags %u\n", wf, rf);
	/* The writer never slept; its blocking write went through. */
	ASSERT_EQ(wf, expect_barrier() ? SHMPIPE__END_BARRIER : 0);
	ASSERT_EQ(rf, expect_barrier() ? SHMPIPE__END_BARRIER : 0);
	ASSERT_OK(shmpipe_writer_close(w));

	pingpong(rounds);
	return T_PASS;
}
