/* SPDX-License-Identifier: MIT */
/*
 * Description: a pipe survives fork(2), as its header promises (the ring is
 * a memfd mapped MAP_SHARED). The parent writes 64 MiB through a 4099-byte
 * ring and closes its write end; the child, a real separate process, reads
 * and checks every byte up to end of stream. Both sides keep meeting a full
 * or an empty ring, so each wakes a sleeper in the other process, by ringing
 * its doorbell (a pipe, inherited across fork): a wake-up that reached only
 * the threads of its own process would be lost, and the test would hang.
 */
#include <sys/wait.h>

#include "test.h"

#define SEED 0xf0c4
#define CAP  4099

static int child(shmpipe_reader *r, uint64_t total)
{
	uint8_t *buf = malloc(2 * CAP);
	uint64_t off = 0;
	shmpipe_stats s;

	ASSERT_NOT_NULL(buf);
	for (;;) {
		ssize_t n = shmpipe_read(r, buf, 2 * CAP);
		if (n == 0)
			break;
		ASSERT_GT(n, 0);
		ASSERT_LE(off + (uint64_t)n, total);
		ASSERT_PATTERN(buf, (size_t)n, SEED, off);
		off += (uint64_t)n;
	}
	ASSERT_EQ(off, total);
	s = test_rstats(r);
	ASSERT_EQ(s.read_index, total);
	/*
	 * The child leaves without closing its handles: a close here would
	 * end the parent's pipe for it (the ends are not reference-counted
	 * across fork), and _exit releases everything anyway.
	 */
	free(buf);
	return T_PASS;
}

int main(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	uint64_t total = (uint64_t)64 << 20, off = 0, rng = 99;
	uint8_t *buf = malloc(2 * CAP);
	int status;
	pid_t pid;

	ASSERT_NOT_NULL(buf);
	test_watchdog(40);
	test_pair(&w, &r, CAP);
	fflush(NULL);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		test_watchdog(40); /* alarms are not inherited */
		free(buf);
		_exit(child(r, total));
	}

	while (off < total) {
		size_t n = (size_t)test_rand_range(&rng, 1, 2 * CAP);
		if (n > total - off)
			n = (size_t)(total - off);
		test_pattern_fill(buf, n, SEED, off);
		ASSERT_EQ(shmpipe_write(w, buf, n), n);
		off += n;
	}
	s = test_wstats(w);
	test_print_stats("parent", &s);
	ASSERT_OK(shmpipe_writer_close(w));

	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status))
		TEST_FAIL("the child died of signal %d", WTERMSIG(status));
	ASSERT_EQ(WEXITSTATUS(status), T_PASS);

	/* The child's reads are visible here: the counters are shared. */
	s = test_rstats(r);
	ASSERT_EQ(s.write_index, total);
	ASSERT_EQ(s.read_index, total);
	ASSERT_OK(shmpipe_reader_close(r));
	free(buf);
	return T_PASS;
}
