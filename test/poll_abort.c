/* SPDX-License-Identifier: MIT */
/*
 * Description: shmpipe_writer_abort, the write end closed as failed: the
 * reader gets every byte committed before the abort, then -ECONNRESET,
 * never the 0 of a clean end of stream.
 *
 * (a) A blocking reader (timeout -1): reading while the writer writes and
 *     aborts; asleep on an empty ring when the abort comes (it wakes); not
 *     reading yet while the writer fills the ring and aborts. Then
 *     -ECONNRESET from read and peek, every time. A reservation that was
 *     not committed is not delivered.
 * (b) A polled reader (timeout 0): quiet after -EAGAIN, readable at once
 *     after the abort (from this thread, and from another while we wait in
 *     epoll), every committed byte, then -ECONNRESET, and it stays readable.
 * (c) Records: every whole record, then -ECONNRESET.
 * (d) Across processes: a writer process (anonymous pipe across fork, or
 *     named) aborts and exits normally: -ECONNRESET after its bytes; one
 *     that closes cleanly and exits: 0. An observer sees the end aborted.
 * (e) A clean close in the same places gives 0; an abort after the reader
 *     closed returns 0.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "pollfd.h"
#include "xproc.h"

#define SEED 0xab027ull

/* Reads (blocking) until an error or 0, checking the pattern; returns it, *off the bytes. */
static ssize_t read_to_end(shmpipe_reader *r, uint64_t seed, uint64_t *off)
{
	uint8_t buf[3000];
	uint64_t rng = seed;

	for (;;) {
		ssize_t got = shmpipe_read(r, buf, (size_t)test_rand_range(&rng, 1, sizeof(buf)));

		if (got <= 0)
			return got;
		ASSERT_PATTERN(buf, (size_t)got, seed, *off);
		*off += (uint64_t)got;
	}
}

static void expect_reset(shmpipe_reader *r, uint64_t off, ssize_t got)
{
	const void *p;
	uint8_t b;

	if (got == 0)
		TEST_FAIL("0 (a clean end of stream) after %" PRIu64 " bytes from an aborted "
			  "writer; want -ECONNRESET",
			  off);
	ASSERT_ERR(got, -ECONNRESET);
	ASSERT_ERR(shmpipe_read(r, &b, 1), -ECONNRESET);
	ASSERT_ERR(shmpipe_peek(r, &p), -ECONNRESET);
	ASSERT_ERR(shmpipe_read(r, &b, 1), -ECONNRESET);
}

/* ---- (a) a blocking reader ------------------------------------------------------------ */

struct reader_thread {
	shmpipe_reader *r;
	uint64_t off;
	ssize_t ret;
	atomic_int started, done;
};

static void *reader_main(void *arg)
{
	struct reader_thread *t = arg;

	atomic_store(&t->started, 1);
	t->ret = read_to_end(t->r, SEED, &t->off);
	atomic_store(&t->done, 1);
	return NULL;
}

static void write_pattern(shmpipe_writer *w, uint64_t from, uint64_t len)
{
	uint8_t buf[4096];

	while (len > 0) {
		size_t n = len < sizeof(buf) ? (size_t)len : sizeof(buf);

		test_pattern_fill(buf, n, SEED, from);
		ASSERT_EQ(shmpipe_write(w, buf, n), n);
		from += n;
		len -= n;
	}
}

static void test_blocking(void)
{
	struct reader_thread t;
	shmpipe_writer *w;
	shmpipe_reader *r;
	pthread_t th;
	uint64_t off = 0;
	int64_t t0;
	void *q;

	/* Reading while the writer writes 100000 bytes through 4096, then aborts. */
	memset(&t, 0, sizeof(t));
	test_pair(&w, &r, 4096);
	t.r = r;
	ASSERT_EQ(pthread_create(&th, NULL, reader_main, &t), 0);
	write_pattern(w, 0, 100000);
	ASSERT_OK(shmpipe_writer_abort(w));
	ASSERT_EQ(pthread_join(th, NULL), 0);
	ASSERT_EQ(t.off, 100000);
	expect_reset(r, t.off, t.ret);
	ASSERT_OK(shmpipe_reader_close(r));

	/* Asleep on an empty ring: the abort wakes it. */
	memset(&t, 0, sizeof(t));
	test_pair(&w, &r, 4096);
	t.r = r;
	write_pattern(w, 0, 10);
	ASSERT_EQ(pthread_create(&th, NULL, reader_main, &t), 0);
	while (!atomic_load(&t.started))
		test_sleep_ms(1);
	test_sleep_ms(50);
	ASSERT_EQ(atomic_load(&t.done), 0);
	t0 = test_now_ns();
	ASSERT_OK(shmpipe_writer_abort(w));
	ASSERT_EQ(pthread_join(th, NULL), 0);
	printf("(a) a reader asleep on an empty ring: -ECONNRESET %.3f ms after the abort\n",
	       tp_ms(test_now_ns() - t0));
	ASSERT_EQ(t.off, 10);
	expect_reset(r, t.off, t.ret);
	ASSERT_OK(shmpipe_reader_close(r));

	/* A full ring, nobody reading yet; a reservation never committed. */
	test_pair(&w, &r, 4096);
	write_pattern(w, 0, 4000);
	ASSERT_GE(shmpipe_reserve(w, &q, 96), 96);
	memset(q, 0xff, 96);
	ASSERT_OK(shmpipe_writer_abort(w));
	expect_reset(r, 4000, read_to_end(r, SEED, &off));
	ASSERT_EQ(off, 4000);
	ASSERT_OK(shmpipe_reader_close(r));
	printf("(a) blocking readers: every committed byte, then -ECONNRESET\n");
}

/* ---- (b) a polled reader ---------------------------------------------------------------- */

struct aborter {
	shmpipe_writer *w;
	int64_t t_abort;
};

static void *aborter_main(void *arg)
{
	struct aborter *a = arg;

	test_sleep_ms(50);
	a->t_abort = test_now_ns();
	ASSERT_OK(shmpipe_writer_abort(a->w));
	return NULL;
}

static void test_polled(void)
{
	struct epoll_event ev;
	struct aborter a;
	shmpipe_writer *w;
	shmpipe_reader *r;
	uint8_t buf[1000];
	pthread_t th;
	int fd, ep, n;
	int64_t t1;

	/* The abort alone turns the descriptor readable. */
	test_pair(&w, &r, 4096);
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	fd = shmpipe_reader_pollfd(r);
	ASSERT_ERR(shmpipe_read(r, buf, 1), -EAGAIN);
	if (tp_readable(fd, 0))
		ASSERT_ERR(shmpipe_read(r, buf, 1), -EAGAIN);
	ASSERT_EQ(tp_readable(fd, 0), 0);
	ASSERT_OK(shmpipe_writer_abort(w));
	ASSERT_TRUE(tp_readable(fd, 0));
	expect_reset(r, 0, shmpipe_read(r, buf, sizeof(buf)));
	ASSERT_TRUE(tp_readable(fd, 0));
	ASSERT_OK(shmpipe_reader_close(r));

	/* Data, then the abort: every byte, then -ECONNRESET; readable throughout. */
	test_pair(&w, &r, 4096);
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	fd = shmpipe_reader_pollfd(r);
	ASSERT_ERR(shmpipe_read(r, buf, 1), -EAGAIN);
	write_pattern(w, 0, 2500);
	ASSERT_OK(shmpipe_writer_abort(w));
	for (uint64_t off = 0;;) {
		ssize_t got;

		ASSERT_TRUE(tp_readable(fd, 0));
		got = shmpipe_read(r, buf, 700);
		if (got <= 0) {
			ASSERT_EQ(off, 2500);
			expect_reset(r, off, got);
			break;
		}
		ASSERT_PATTERN(buf, (size_t)got, SEED, off);
		off += (uint64_t)got;
	}
	ASSERT_TRUE(tp_readable(fd, 0));
	ASSERT_OK(shmpipe_reader_close(r));

	/* Waiting in epoll while another thread aborts. */
	test_pair(&w, &r, 4096);
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	fd = shmpipe_reader_pollfd(r);
	ep = tp_epoll_create();
	tp_epoll_add(ep, fd, EPOLLIN | EPOLLET, 1);
	ASSERT_EQ(tp_epoll_wait(ep, &ev, 1, 0), 1); /* a new end: "call me" */
	ASSERT_ERR(shmpipe_read(r, buf, 1), -EAGAIN);
	a.w = w;
	ASSERT_EQ(pthread_create(&th, NULL, aborter_main, &a), 0);
	n = tp_epoll_wait(ep, &ev, 1, 5000 * TEST_WATCHDOG_SCALE);
	t1 = test_now_ns();
	if (n == 0)
		TEST_FAIL("no readiness in 5 s after the writer aborted");
	ASSERT_EQ(pthread_join(th, NULL), 0);
	printf("(b) a polled reader: readable %.3f ms after another thread aborted\n",
	       tp_ms(t1 - a.t_abort));
	expect_reset(r, 0, shmpipe_read(r, buf, sizeof(buf)));
	close(ep);
	ASSERT_OK(shmpipe_reader_close(r));
	printf("(b) polled readers: readable on abort, every committed byte, then -ECONNRESET\n");
}

/* ---- (c) records ------------------------------------------------------------------------ */

static void test_records(void)
{
	shmpipe_options o = test_opts(4096);
	shmpipe_writer *w;
	shmpipe_reader *r;
	uint8_t rec[300];
	ssize_t got;

	o.flags = SHMPIPE_RECORDS;
	ASSERT_OK(shmpipe_pair(&w, &r, &o));
	for (uint64_t i = 0; i < 10; i++) {
		test_record_fill(rec, i, 20 + i * 25);
		ASSERT_EQ(shmpipe_write(w, rec, 20 + i * 25), 20 + i * 25);
	}
	ASSERT_OK(shmpipe_writer_abort(w));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	for (uint64_t i = 0; i < 10; i++) {
		got = shmpipe_read(r, rec, sizeof(rec));
		ASSERT_EQ(got, 20 + i * 25);
		test_record_check(rec, i, (uint64_t)got);
	}
	expect_reset(r, 10, shmpipe_read(r, rec, sizeof(rec)));
	ASSERT_OK(shmpipe_reader_close(r));
	printf("(c) records: 10 whole records, then -ECONNRESET\n");
}

/* ---- (d) across processes ------------------------------------------------------------------ */

/*
 * A child writes 50000 bytes and then aborts (or closes) and exits 0; we
 * read with an event loop's calls. Returns the final call's result.
 */
static ssize_t child_ends(int named, int aborts)
{
	char name[XP_NAME_MAX];
	static int k;
	shmpipe_options o = test_opts(8192);
	shmpipe_reader *r;
	uint8_t buf[4096];
	uint64_t off = 0;
	ssize_t got;
	pid_t pid;
	int fd;

	xp_name(name, sizeof(name), ++k);
	ASSERT_OK(shmpipe_reader_create(&r, named ? name : NULL, &o));
	pid = xp_fork();
	if (pid == 0) {
		shmpipe_writer *w;

		if (named)
			ASSERT_OK(shmpipe_writer_open(&w, name));
		else
			ASSERT_OK(shmpipe_writer_open_fd(&w, shmpipe_reader_fd(r)));
		write_pattern(w, 0, 50000);
		if (aborts)
			ASSERT_OK(shmpipe_writer_abort(w));
		else
			ASSERT_OK(shmpipe_writer_close(w));
		_exit(T_PASS);
	}
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	fd = shmpipe_reader_pollfd(r);
	/* Calls until -EAGAIN, then waits: right whether the loop is edge- or level-triggered. */
	for (;;) {
		got = shmpipe_read(r, buf, sizeof(buf));
		if (got == -EAGAIN) {
			if (!tp_readable(fd, 5000 * TEST_WATCHDOG_SCALE))
				TEST_FAIL("%s: no readiness in 5 s at offset %" PRIu64,
					  named ? "named" : "anonymous", off);
			continue;
		}
		if (got <= 0)
			break;
		ASSERT_PATTERN(buf, (size_t)got, SEED, off);
		off += (uint64_t)got;
	}
	ASSERT_EQ(off, 50000);
	XP_ASSERT_EXIT(xp_wait(pid, 10000), T_PASS);
	/* After the exit, too, the answer stays what it was. */
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), got);
	if (named) {
#ifdef SHMPIPE_END_ABORTED
		shmpipe_info info;

		ASSERT_OK(shmpipe_inspect(name, &info));
		ASSERT_EQ(info.writer.state, aborts ? SHMPIPE_END_ABORTED : SHMPIPE_END_CLOSED);
#endif
		ASSERT_OK(shmpipe_unlink(name));
	}
	ASSERT_OK(shmpipe_reader_close(r));
	return got;
}

static void test_processes(void)
{
	for (int named = 0; named <= 1; named++) {
		const char *how = named ? "named" : "anonymous across fork";
		ssize_t got = child_ends(named, 1);

		if (got == 0)
			TEST_FAIL("%s: 0 after a writer process aborted; want -ECONNRESET", how);
		ASSERT_ERR(got, -ECONNRESET);
		got = child_ends(named, 0);
		if (got == -ECONNRESET)
			TEST_FAIL("%s: -ECONNRESET after a writer process closed cleanly and "
				  "exited; want 0",
				  how);
		ASSERT_ERR(got, 0);
	}
	printf("(d) writer processes: abort then exit gives -ECONNRESET, close then exit 0\n");
}

/* ---- (e) the contrast ------------------------------------------------------------------------ */

static void test_contrast(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	uint64_t off = 0;
	uint8_t b;

	test_pair(&w, &r, 4096);
	write_pattern(w, 0, 3000);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_EQ(read_to_end(r, SEED, &off), 0);
	ASSERT_EQ(off, 3000);
	ASSERT_EQ(shmpipe_read(r, &b, 1), 0);
	ASSERT_OK(shmpipe_reader_close(r));

	/* Nobody left to tell: the abort just frees the handle. */
	test_pair(&w, &r, 4096);
	write_pattern(w, 0, 10);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_writer_abort(w));
	printf("(e) a clean close still gives 0; abort after the reader closed returns 0\n");
}

static int body(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	test_watchdog(60);
	test_blocking();
	test_polled();
	test_records();
	test_processes();
	test_contrast();
	return T_PASS;
}

int main(int argc, char **argv)
{
	return xp_main("poll_abort", body, argc, argv);
}
