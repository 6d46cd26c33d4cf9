/* SPDX-License-Identifier: MIT */
/*
 * Description: a pipe's handles copied by fork(2). A copy is the same end,
 * held by both processes.
 *
 * (a) A child closes its copy of the writer: that is the end of stream for
 *     the reader, and the parent's copy must stop there. Its writes return
 *     -EBADF; the reader gets what was written, then 0; and a reader that
 *     has returned 0 returns 0 for ever, even if bytes are published after
 *     the close (played here by writing them into the shared header, as a
 *     write racing the close could).
 * (b) shmpipe_*_drop: the parent keeps the writer and drops the reader, the
 *     child keeps the reader and drops the writer, as with a pipe(2). When
 *     the child is killed the parent's next write that must wait learns it
 *     at once: -EPIPE, well within its timeout.
 * (c) The other way round: the parent keeps the reader; the child writes
 *     and is killed. The parent reads everything, then -ECONNRESET at once:
 *     the reader must not keep the writer's open file description (and so
 *     its lock) alive through a mapping of its own.
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include "xproc.h"
#include "layout.h"

#define CAP 4096

static void test_closed_copy(void)
{
	shmpipe_options o = test_opts(CAP);
	shmpipe_writer *w;
	shmpipe_reader *r;
	struct shmpipe__hdr *h;
	char buf[64];
	pid_t pid;

	ASSERT_OK(shmpipe_pair(&w, &r, &o));
	ASSERT_EQ(shmpipe_write(w, "before the close", 16), 16);
	pid = xp_fork();
	if (pid == 0) {
		ASSERT_OK(shmpipe_reader_drop(r));
		ASSERT_OK(shmpipe_writer_close(w));
		_exit(T_PASS);
	}
	XP_ASSERT_EXIT(xp_wait(pid, 10000), T_PASS);
	ASSERT_ERR(shmpipe_write(w, "more", 4), -EBADF);
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 16);
	ASSERT_MEM_EQ(buf, "before the close", 16);
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 0);

	/* Four bytes published after the end, as a racing write would. */
	h = mmap(NULL, sizeof(*h), PROT_READ | PROT_WRITE, MAP_SHARED, shmpipe_writer_fd(w), 0);
	ASSERT_TRUE(h != MAP_FAILED);
	atomic_store(&h->write_index, atomic_load(&h->write_index) + 4);
	munmap(h, sizeof(*h));
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 0);
	ASSERT_EQ(shmpipe_read(r, buf, 1), 0);
	ASSERT_OK(shmpipe_writer_drop(w)); /* closed already, by the child */
	ASSERT_OK(shmpipe_reader_close(r));
}

static void test_reader_child_dies(void)
{
	shmpipe_options o = test_opts(CAP);
	shmpipe_writer *w;
	shmpipe_reader *r;
	struct xp_chan ch;
	static char buf[CAP];
	int64_t t0;
	ssize_t n;
	pid_t pid;

	xp_chan_open(&ch);
	ASSERT_OK(shmpipe_pair(&w, &r, &o));
	pid = xp_fork();
	if (pid == 0) {
		ASSERT_OK(shmpipe_writer_drop(w));
		ASSERT_EQ(shmpipe_read(r, buf, 100), 100);
		xp_send(&ch, 'r');
		for (;;)
			pause();
	}
	ASSERT_OK(shmpipe_reader_drop(r));
	memset(buf, 'x', sizeof(buf));
	ASSERT_EQ(shmpipe_write(w, buf, 100), 100);
	ASSERT_EQ(xp_recv(&ch, 10000), 'r');
	kill(pid, SIGKILL);
	XP_ASSERT_KILLED(xp_wait(pid, 10000), SIGKILL);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 5000 * TEST_WATCHDOG_SCALE));
	t0 = test_now_ms();
	do
		n = shmpipe_write(w, buf, sizeof(buf));
	while (n > 0);
	if (n != -EPIPE)
		TEST_FAIL("writing to a reader whose process was killed: %zd (%s) after %lld ms", n,
			  shmpipe_strerror((int)n), (long long)(test_now_ms() - t0));
	ASSERT_LT(test_now_ms() - t0, 1000 * TEST_WATCHDOG_SCALE);
	ASSERT_OK(shmpipe_writer_close(w));
	xp_chan_close(&ch);
}

static void test_writer_child_dies(void)
{
	shmpipe_options o = test_opts(CAP);
	shmpipe_writer *w;
	shmpipe_reader *r;
	struct xp_chan ch;
	char buf[256];
	int64_t t0;
	ssize_t n;
	pid_t pid;

	xp_chan_open(&ch);
	ASSERT_OK(shmpipe_pair(&w, &r, &o));
	pid = xp_fork();
	if (pid == 0) {
		ASSERT_OK(shmpipe_reader_drop(r));
		ASSERT_EQ(shmpipe_write(w, "from the child", 14), 14);
		xp_send(&ch, 'w');
		for (;;)
			pause();
	}
	ASSERT_OK(shmpipe_writer_drop(w));
	ASSERT_EQ(xp_recv(&ch, 10000), 'w');
	kill(pid, SIGKILL);
	XP_ASSERT_KILLED(xp_wait(pid, 10000), SIGKILL);
	ASSERT_OK(shmpipe_reader_set_timeout(r, 5000 * TEST_WATCHDOG_SCALE));
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 14);
	ASSERT_MEM_EQ(buf, "from the child", 14);
	t0 = test_now_ms();
	n = shmpipe_read(r, buf, sizeof(buf));
	if (n != -ECONNRESET)
		TEST_FAIL("reading from a writer whose process was killed: %zd (%s) after %lld ms",
			  n, shmpipe_strerror((int)n), (long long)(test_now_ms() - t0));
	ASSERT_LT(test_now_ms() - t0, 1000 * TEST_WATCHDOG_SCALE);
	ASSERT_OK(shmpipe_reader_close(r));
	xp_chan_close(&ch);
}

static int body(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : "abc";

	test_watchdog(60);
	if (strchr(only, 'a')) {
		test_closed_copy();
		printf("ok - a copy closed in a child ends the stream for good\n");
	}
	if (strchr(only, 'b')) {
		test_reader_child_dies();
		printf("ok - dropped copies: the death of the reader's process is noticed\n");
	}
	if (strchr(only, 'c')) {
		test_writer_child_dies();
		printf("ok - dropped copies: the death of the writer's process is noticed\n");
	}
	return T_PASS;
}

int main(int argc, char **argv)
{
	return xp_main("fork_drop", body, argc, argv);
}
