/* SPDX-License-Identifier: MIT */
/*
 * Description: 1000 ends (500 pipes) with their descriptors open at once,
 * all in one epoll set, served by one thread, and no thread created by the
 * library.
 *
 * The soft RLIMIT_NOFILE is raised to the hard one first; if that is still
 * too few descriptors for 500 pipes the test is skipped (77), saying how
 * many one pipe takes. Then: the 1000 descriptors are distinct and all poll
 * readable at first (new ends); every reader returns -EAGAIN and goes quiet;
 * a byte written into every other pipe makes exactly those readers readable
 * (a reader reported without data must return -EAGAIN), each reads its own
 * byte; then the same for the rest. /proc/self/task counts one thread
 * before, during and after, and every descriptor is gone after the close.
 */
#include <sys/resource.h>

#include "pollfd.h"

#define PAIRS 500
#define ENDS  (2 * PAIRS)

static shmpipe_writer *ws[PAIRS];
static shmpipe_reader *rs[PAIRS];
static int rfd[PAIRS], wfd[PAIRS];

static uint8_t byte_of(int i)
{
	return (uint8_t)(i * 37 + 11);
}

static int nr_open(void)
{
	FILE *f = fopen("/proc/sys/fs/nr_open", "re");
	int n = 1 << 20;

	if (f != NULL) {
		if (fscanf(f, "%d", &n) != 1)
			n = 1 << 20;
		fclose(f);
	}
	return n;
}

static void raise_nofile(void)
{
	struct rlimit rl;

	ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (rlim_t)nr_open())
		rl.rlim_max = (rlim_t)nr_open();
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			fprintf(stderr, "setrlimit(NOFILE, %lu): %s\n", (unsigned long)rl.rlim_cur,
				strerror(errno));
	}
}

static void create_all(int fds_before)
{
	struct rlimit rl;

	for (int i = 0; i < PAIRS; i++) {
		shmpipe_options o = test_opts(4096);
		int ret = shmpipe_pair(&ws[i], &rs[i], &o);

		if (ret == -EMFILE || ret == -ENFILE) {
			int per = i > 0 ? (test_count_fds() - fds_before + i - 1) / i : 0;

			ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
			TEST_SKIP("pipe %d: %s; a pipe takes %d descriptors, the limit is %lu "
				  "(hard %lu): not enough for %d pipes",
				  i, shmpipe_strerror(ret), per, (unsigned long)rl.rlim_cur,
				  (unsigned long)rl.rlim_max, PAIRS);
		}
		if (ret != 0)
			TEST_FAIL("shmpipe_pair #%d = %d (%s)", i, ret, shmpipe_strerror(ret));
		ASSERT_OK(shmpipe_reader_set_timeout(rs[i], 0));
		ASSERT_OK(shmpipe_writer_set_timeout(ws[i], 0));
		rfd[i] = shmpipe_reader_pollfd(rs[i]);
		wfd[i] = shmpipe_writer_pollfd(ws[i]);
		ASSERT_GE(rfd[i], 0);
		ASSERT_GE(wfd[i], 0);
	}
}

/* Every descriptor once: no two ends share one. */
static void check_distinct(void)
{
	static uint8_t seen[1 << 20];
	int all[ENDS];

	for (int i = 0; i < PAIRS; i++) {
		all[2 * i] = rfd[i];
		all[2 * i + 1] = wfd[i];
	}
	for (int i = 0; i < ENDS; i++) {
		ASSERT_LT(all[i], (int)sizeof(seen));
		if (seen[all[i]])
			TEST_FAIL("descriptor %d belongs to two ends", all[i]);
		seen[all[i]] = 1;
	}
}

/* Collects what the epoll set reports now: got[end] = 1 (end = 2i reader, 2i+1 writer). */
static int collect(int ep, uint8_t *got)
{
	struct epoll_event evs[256];
	int total = 0, n;

	memset(got, 0, ENDS);
	/*
	 * Each call reports up to 256; level-triggered ones already reported
	 * go to the back of the ready list and come again after the others.
	 */
	for (int round = 0; round < 64; round++) {
		int fresh = 0;

		n = tp_epoll_wait(ep, evs, 256, 0);
		for (int i = 0; i < n; i++) {
			uint64_t end = evs[i].data.u64;

			ASSERT_LT(end, ENDS);
			if (!(evs[i].events & EPOLLIN))
				TEST_FAIL("end %" PRIu64 ": events 0x%x without EPOLLIN", end,
					  evs[i].events);
			if (!got[end]) {
				got[end] = 1;
				fresh++;
				total++;
			}
		}
		/* Fewer than asked: that was all of them. No news: all seen. */
		if (n < 256 || (fresh == 0 && round > 0))
			break;
	}
	return total;
}

/* Writes into the pipes of parity `odd`, then checks exactly those readers wake. */
static int wake_half(int ep, int odd)
{
	static uint8_t got[ENDS];
	int extra = 0;
	uint8_t b;

	for (int i = odd; i < PAIRS; i += 2) {
		b = byte_of(i);
		ASSERT_EQ(shmpipe_write(ws[i], &b, 1), 1);
	}
	collect(ep, got);
	for (int i = 0; i < PAIRS; i++) {
		int want = (i & 1) == odd;

		if (want && !got[2 * i])
			TEST_FAIL("reader %d (descriptor %d) holds a byte but is not readable", i,
				  rfd[i]);
		if (want) {
			b = 0;
			ASSERT_EQ(shmpipe_read(rs[i], &b, 1), 1);
			ASSERT_EQ(b, byte_of(i));
			ASSERT_ERR(shmpipe_read(rs[i], &b, 1), -EAGAIN);
		} else if (got[2 * i]) {
			extra++;
			ASSERT_ERR(shmpipe_read(rs[i], &b, 1), -EAGAIN);
		}
	}
	return extra;
}

int main(void)
{
	static uint8_t got[ENDS];
	int threads0, fds0, fds1, ep, n, extra = 0;
	int64_t t0;

	test_watchdog(100);
	threads0 = tp_count_threads();
	if (threads0 < 0)
		TEST_SKIP("no /proc/self/task");
	/* A sanitizer's runtime may have a thread of its own: count from here. */
	ASSERT_GE(threads0, 1);
	raise_nofile();
	ep = tp_epoll_create();
	fds0 = test_count_fds();

	t0 = test_now_ns();
	create_all(fds0);
	fds1 = test_count_fds();
	check_distinct();
	for (int i = 0; i < PAIRS; i++) {
		tp_epoll_add(ep, rfd[i], EPOLLIN, (uint64_t)(2 * i));
		tp_epoll_add(ep, wfd[i], EPOLLIN, (uint64_t)(2 * i + 1));
	}
	printf("%d pipes, %d ends: %d descriptors (%.1f a pipe), created in %.1f ms\n", PAIRS, ENDS,
	       fds1 - fds0, (double)(fds1 - fds0) / PAIRS, tp_ms(test_now_ns() - t0));
	ASSERT_EQ(tp_count_threads(), threads0);

	/* New ends: all readable. */
	n = collect(ep, got);
	ASSERT_EQ(n, ENDS);

	/* Readers with nothing to read: -EAGAIN, then quiet. */
	for (int i = 0; i < PAIRS; i++) {
		uint8_t b;

		ASSERT_ERR(shmpipe_read(rs[i], &b, 1), -EAGAIN);
	}
	collect(ep, got);
	for (int i = 0; i < PAIRS; i++) {
		uint8_t b;

		if (got[2 * i]) {
			/* Spurious: allowed once, then quiet. */
			extra++;
			ASSERT_ERR(shmpipe_read(rs[i], &b, 1), -EAGAIN);
		}
	}
	collect(ep, got);
	for (int i = 0; i < PAIRS; i++) {
		if (got[2 * i])
			TEST_FAIL("reader %d stays readable with nothing to read after -EAGAIN", i);
		/* Writers with room stay readable: they never got -EAGAIN. */
		if (!got[2 * i + 1])
			TEST_FAIL("writer %d, with room, is not readable", i);
	}

	extra += wake_half(ep, 0);
	extra += wake_half(ep, 1);
	ASSERT_EQ(tp_count_threads(), threads0);
	printf("one byte through each of %d pipes, each reader woken by its descriptor "
	       "(%d spurious readiness(es)); 1 thread throughout\n",
	       PAIRS, extra);

	for (int i = 0; i < PAIRS; i++) {
		tp_epoll_del(ep, rfd[i]);
		tp_epoll_del(ep, wfd[i]);
		ASSERT_OK(shmpipe_writer_close(ws[i]));
		ASSERT_OK(shmpipe_reader_close(rs[i]));
	}
	ASSERT_EQ(test_count_fds(), fds0);
	ASSERT_EQ(tp_count_threads(), threads0);
	close(ep);
	return T_PASS;
}
