/* SPDX-License-Identifier: MIT */
/*
 * Description: the readiness contract of shmpipe_reader_pollfd and
 * shmpipe_writer_pollfd, level-triggered, asked through poll(2), select(2)
 * and epoll alike.
 *
 * (a) A handle's descriptor is the same on every call and is closed by the
 *     end's close; NULL gives -EINVAL; a new end's descriptor polls readable
 *     ("call me"), so a loop may wait before its first call.
 * (b) A reader: after -EAGAIN its descriptor is quiet (one spurious
 *     readiness is tolerated, whose call must return -EAGAIN); a write, a
 *     commit or a writev makes it readable at once; it stays readable while
 *     data remains, so reading one byte per readiness reads everything; the
 *     -EAGAIN that follows quiets it. End of stream makes it readable, and
 *     it stays so.
 * (c) A writer on a full ring: after -EAGAIN quiet; readable once there is
 *     room for what it last asked for: one byte for a stream write, min_len
 *     for a reserve, the framed size of a record. A reader that closes makes
 *     it readable, and the call returns -EPIPE.
 * (d) Two threads, level-triggered, one small call per readiness: a reader
 *     reading a few bytes per event from a blocking writer, a writer writing
 *     a few bytes per event to a blocking reader. Nothing stalls (a bound on
 *     every wait fails the test), every byte is checked, and the descriptor
 *     is still readable after every read that returned data and every write
 *     that wrote all it was asked to: it goes quiet only on -EAGAIN or, as a
 *     non-blocking pipe's does, on a write's short count (the ring filled;
 *     the bound on the next wait checks that it comes back).
 *
 *   poll_level [MiB for (d) through epoll; a quarter through poll and select]
 *   (default: SHMPIPE_POLL_LEVEL_MB, else 32)
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>

#include "pollfd.h"

#define SEED	 0x1e7e1ull
#define STALL_MS (5000 * TEST_WATCHDOG_SCALE)

enum kind { K_POLL, K_SELECT, K_EPOLL };
static const char *const kind_name[] = {"poll", "select", "epoll"};

/* One way of asking whether one descriptor is readable. */
struct waiter {
	enum kind kind;
	int fd;
	int ep; /* K_EPOLL: an instance holding fd, level-triggered */
};

static void waiter_init(struct waiter *wt, enum kind k, int fd)
{
	wt->kind = k;
	wt->fd = fd;
	wt->ep = -1;
	ASSERT_GE(fd, 0);
	if (k == K_EPOLL) {
		wt->ep = tp_epoll_create();
		tp_epoll_add(wt->ep, fd, EPOLLIN, (uint64_t)fd);
	}
}

/* Before the end is closed: its descriptor leaves the epoll set. */
static void waiter_fini(struct waiter *wt)
{
	if (wt->ep >= 0)
		close(wt->ep);
	wt->ep = -1;
}

static int ready(struct waiter *wt, int timeout_ms)
{
	struct epoll_event ev;
	int n;

	switch (wt->kind) {
	case K_POLL:
		return tp_readable(wt->fd, timeout_ms);
	case K_SELECT:
		return tp_select_readable(wt->fd, timeout_ms);
	default:
		n = tp_epoll_wait(wt->ep, &ev, 1, timeout_ms);
		if (n == 1 && !(ev.events & EPOLLIN))
			TEST_FAIL("epoll reported events 0x%x without EPOLLIN", ev.events);
		return n;
	}
}

#define ASSERT_READY(wt)                                                                           \
	do {                                                                                       \
		if (!ready((wt), 0))                                                               \
			TEST_FAIL("%s: descriptor %d is not readable, want readable",              \
				  kind_name[(wt)->kind], (wt)->fd);                                \
	} while (0)

/* ---- quiet after -EAGAIN ---------------------------------------------------- */

typedef ssize_t (*call_fn)(void *arg);

static int spurious;

/*
 * After a call returned -EAGAIN and nobody acts, the descriptor must be
 * quiet: an event loop would otherwise spin. Spurious readiness is allowed
 * by the contract, once: its call must return -EAGAIN, and then it is quiet.
 */
static void expect_quiet_(struct waiter *wt, call_fn again, void *arg, const char *what, int line)
{
	for (int round = 0; ready(wt, 0); round++) {
		ssize_t ret;

		if (round == 1)
			TEST_FAIL("line %d: %s: %s: the descriptor stays readable after "
				  "-EAGAIN with nothing to do (an event loop would spin)",
				  line, kind_name[wt->kind], what);
		ret = again(arg);
		if (ret != -EAGAIN)
			TEST_FAIL("line %d: %s: %s after a spurious readiness = %zd (%s), "
				  "want -EAGAIN",
				  line, kind_name[wt->kind], what, ret, shmpipe_strerror((int)ret));
		spurious++;
	}
}
#define expect_quiet(wt, again, arg) expect_quiet_((wt), (again), (arg), #again, __LINE__)

static ssize_t read1(void *arg)
{
	uint8_t b;

	return shmpipe_read(arg, &b, 1);
}

static ssize_t peek0(void *arg)
{
	const void *p;

	return shmpipe_peek(arg, &p);
}

static ssize_t write1000(void *arg)
{
	static uint8_t junk[1000];

	return shmpipe_write(arg, junk, sizeof(junk));
}

static ssize_t reserve100(void *arg)
{
	void *p;

	return shmpipe_reserve(arg, &p, 100);
}

static ssize_t write_record100(void *arg)
{
	static uint8_t rec[100];

	return shmpipe_write(arg, rec, sizeof(rec));
}

/* ---- (a) ---------------------------------------------------------------------- */

static void test_basics(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	int rfd, wfd;

	ASSERT_ERR(shmpipe_reader_pollfd(NULL), -EINVAL);
	ASSERT_ERR(shmpipe_writer_pollfd(NULL), -EINVAL);
	ASSERT_ERR(shmpipe_writer_abort(NULL), -EINVAL);

	test_pair(&w, &r, 4096);
	rfd = shmpipe_reader_pollfd(r);
	wfd = shmpipe_writer_pollfd(w);
	ASSERT_GE(rfd, 0);
	ASSERT_GE(wfd, 0);
	ASSERT_NE(rfd, wfd);
	ASSERT_EQ(shmpipe_reader_pollfd(r), rfd);
	ASSERT_EQ(shmpipe_writer_pollfd(w), wfd);

	/* New ends: "call me", through each way of asking. */
	for (int k = K_POLL; k <= K_EPOLL; k++) {
		struct waiter a, b;

		waiter_init(&a, (enum kind)k, rfd);
		waiter_init(&b, (enum kind)k, wfd);
		ASSERT_READY(&a);
		ASSERT_READY(&b);
		waiter_fini(&a);
		waiter_fini(&b);
	}
	/* Calls that need not wait leave the descriptor as it was. */
	ASSERT_EQ(shmpipe_reader_pollfd(r), rfd);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_writer_close(w));
	/* Closed with their ends (no other thread opens anything meanwhile). */
	ASSERT_EQ(fcntl(rfd, F_GETFD), -1);
	ASSERT_EQ(errno, EBADF);
	ASSERT_EQ(fcntl(wfd, F_GETFD), -1);
	ASSERT_EQ(errno, EBADF);
}

/* ---- (b) a reader ------------------------------------------------------------ */

static void test_reader(enum kind k)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	struct waiter wt;
	uint8_t buf[1000], got[1000];
	struct iovec iov[2];
	const void *p;
	void *q;

	test_pair(&w, &r, 4096);
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	waiter_init(&wt, k, shmpipe_reader_pollfd(r));
	ASSERT_READY(&wt);

	ASSERT_ERR(read1(r), -EAGAIN);
	expect_quiet(&wt, read1, r);
	test_pattern_fill(buf, sizeof(buf), SEED, 0);
	ASSERT_EQ(shmpipe_write(w, buf, sizeof(buf)), sizeof(buf));
	/* At once: the write rang before it returned. */
	ASSERT_READY(&wt);
	/* One byte per readiness: readable as long as data remains. */
	for (size_t i = 0; i < sizeof(buf); i++) {
		ASSERT_READY(&wt);
		ASSERT_EQ(shmpipe_read(r, got, 1), 1);
		ASSERT_PATTERN(got, 1, SEED, i);
	}
	/* No -EAGAIN yet: still readable. */
	ASSERT_READY(&wt);
	ASSERT_ERR(read1(r), -EAGAIN);
	expect_quiet(&wt, read1, r);

	/* peek waits too; a commit rings. */
	ASSERT_ERR(peek0(r), -EAGAIN);
	expect_quiet(&wt, peek0, r);
	ASSERT_GE(shmpipe_reserve(w, &q, 10), 10);
	test_pattern_fill(q, 10, SEED, 1000);
	ASSERT_OK(shmpipe_commit(w, 10));
	ASSERT_READY(&wt);
	ASSERT_EQ(shmpipe_peek(r, &p), 10);
	ASSERT_PATTERN(p, 10, SEED, 1000);
	ASSERT_OK(shmpipe_consume(r, 10));
	ASSERT_READY(&wt);
	ASSERT_ERR(peek0(r), -EAGAIN);
	expect_quiet(&wt, peek0, r);

	/* A writev rings. */
	test_pattern_fill(buf, 300, SEED, 1010);
	iov[0].iov_base = buf;
	iov[0].iov_len = 100;
	iov[1].iov_base = buf + 100;
	iov[1].iov_len = 200;
	ASSERT_EQ(shmpipe_writev(w, iov, 2), 300);
	ASSERT_READY(&wt);
	test_read_exact(r, got, 300);
	ASSERT_PATTERN(got, 300, SEED, 1010);
	ASSERT_ERR(read1(r), -EAGAIN);
	expect_quiet(&wt, read1, r);

	/* End of stream: readable at once, and for good. */
	ASSERT_EQ(shmpipe_write(w, "tail", 4), 4);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_READY(&wt);
	ASSERT_EQ(shmpipe_read(r, got, sizeof(got)), 4);
	ASSERT_MEM_EQ(got, "tail", 4);
	ASSERT_READY(&wt);
	ASSERT_EQ(shmpipe_read(r, got, sizeof(got)), 0);
	ASSERT_READY(&wt);
	ASSERT_EQ(shmpipe_read(r, got, sizeof(got)), 0);
	ASSERT_EQ(peek0(r), 0);
	ASSERT_READY(&wt);
	waiter_fini(&wt);
	ASSERT_OK(shmpipe_reader_close(r));

	/* A reader waiting on an empty ring sees a clean close at once. */
	test_pair(&w, &r, 4096);
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	waiter_init(&wt, k, shmpipe_reader_pollfd(r));
	ASSERT_ERR(read1(r), -EAGAIN);
	expect_quiet(&wt, read1, r);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_READY(&wt);
	ASSERT_EQ(read1(r), 0);
	ASSERT_READY(&wt);
	waiter_fini(&wt);
	ASSERT_OK(shmpipe_reader_close(r));
}

/* ---- (c) a writer ------------------------------------------------------------ */

static void check_read(shmpipe_reader *r, size_t n, uint64_t *roff)
{
	uint8_t got[4096];

	ASSERT_LE(n, sizeof(got));
	test_read_exact(r, got, n);
	ASSERT_PATTERN(got, n, SEED, *roff);
	*roff += n;
}

static void test_writer(enum kind k)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	struct waiter wt;
	uint8_t buf[4096];
	uint64_t woff = 0, roff = 0;
	void *q;

	test_pair(&w, &r, 4096);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	waiter_init(&wt, k, shmpipe_writer_pollfd(w));
	ASSERT_READY(&wt);

	test_pattern_fill(buf, 4096, SEED, woff);
	ASSERT_EQ(shmpipe_write(w, buf, 4096), 4096);
	woff += 4096;
	ASSERT_ERR(write1000(w), -EAGAIN);
	expect_quiet(&wt, write1000, w);

	/* A stream write asks for one byte: one byte of room is enough. */
	check_read(r, 1, &roff);
	ASSERT_READY(&wt);
	test_pattern_fill(buf, 1000, SEED, woff);
	ASSERT_EQ(shmpipe_write(w, buf, 1000), 1);
	woff += 1;
	ASSERT_ERR(write1000(w), -EAGAIN);
	expect_quiet(&wt, write1000, w);
	check_read(r, 50, &roff);
	ASSERT_READY(&wt);

	/* A reserve asks for min_len: 50 bytes of room are not 100. */
	ASSERT_ERR(reserve100(w), -EAGAIN);
	expect_quiet(&wt, reserve100, w);
	check_read(r, 49, &roff);
	check_read(r, 1, &roff);
	ASSERT_READY(&wt);
	ASSERT_GE(shmpipe_reserve(w, &q, 100), 100);
	test_pattern_fill(q, 100, SEED, woff);
	ASSERT_OK(shmpipe_commit(w, 100));
	woff += 100;
	ASSERT_EQ(test_wstats(w).write_index - test_wstats(w).read_index, 4096);

	/* The reader closes while the writer waits: readable, then -EPIPE. */
	ASSERT_ERR(write1000(w), -EAGAIN);
	expect_quiet(&wt, write1000, w);
	check_read(r, 4096, &roff);
	ASSERT_EQ(roff, woff);
	ASSERT_READY(&wt);
	ASSERT_EQ(write1000(w), 1000);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_READY(&wt);
	ASSERT_ERR(write1000(w), -EPIPE);
	ASSERT_READY(&wt);
	ASSERT_ERR(write1000(w), -EPIPE);
	ASSERT_READY(&wt);
	waiter_fini(&wt);
	ASSERT_OK(shmpipe_writer_close(w));

	/* A writer waiting on a full ring sees the reader close at once. */
	test_pair(&w, &r, 4096);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	waiter_init(&wt, k, shmpipe_writer_pollfd(w));
	ASSERT_EQ(shmpipe_write(w, buf, 4096), 4096);
	ASSERT_ERR(write1000(w), -EAGAIN);
	expect_quiet(&wt, write1000, w);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_READY(&wt);
	ASSERT_ERR(write1000(w), -EPIPE);
	waiter_fini(&wt);
	ASSERT_OK(shmpipe_writer_close(w));
}

/* A record write asks for its framed size. */
static int test_records(enum kind k)
{
	shmpipe_options o = test_opts(1024);
	shmpipe_writer *w;
	shmpipe_reader *r;
	struct waiter wt;
	uint8_t rec[100];
	int early = 0;

	o.flags = SHMPIPE_RECORDS;
	ASSERT_OK(shmpipe_pair(&w, &r, &o));
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	waiter_init(&wt, k, shmpipe_writer_pollfd(w));
	ASSERT_EQ(SHMPIPE_RECORD_SPACE(8), 16);
	ASSERT_EQ(SHMPIPE_RECORD_SPACE(100), 112);
	/* 64 records of 8 bytes fill the 1024 bytes exactly. */
	for (uint64_t i = 0; i < 64; i++) {
		test_record_fill(rec, i, 8);
		ASSERT_EQ(shmpipe_write(w, rec, 8), 8);
	}
	ASSERT_ERR(shmpipe_write(w, rec, 8), -EAGAIN);
	ASSERT_ERR(write_record100(w), -EAGAIN);
	expect_quiet(&wt, write_record100, w);
	/* Room for 6 small records is 96 bytes, not the 112 asked for. */
	for (uint64_t i = 0; i < 7; i++) {
		ASSERT_EQ(shmpipe_read(r, rec, sizeof(rec)), 8);
		test_record_check(rec, i, 8);
		if (i < 6 && ready(&wt, 0)) {
			early++;
			ASSERT_ERR(write_record100(w), -EAGAIN);
		}
	}
	ASSERT_READY(&wt);
	test_record_fill(rec, 64, 100);
	ASSERT_EQ(shmpipe_write(w, rec, 100), 100);
	for (uint64_t i = 7; i < 64; i++) {
		ASSERT_EQ(shmpipe_read(r, rec, sizeof(rec)), 8);
		test_record_check(rec, i, 8);
	}
	ASSERT_EQ(shmpipe_read(r, rec, sizeof(rec)), 100);
	test_record_check(rec, 64, 100);
	waiter_fini(&wt);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
	return early;
}

/* ---- (d) two threads, one small call per readiness ----------------------------- */

struct peer {
	shmpipe_writer *w;
	shmpipe_reader *r;
	uint64_t total;
	uint64_t seed;
};

static void *blocking_writer(void *arg)
{
	struct peer *pe = arg;
	uint8_t *buf = malloc(8192);
	uint64_t off = 0, rng = pe->seed + 1;

	ASSERT_NOT_NULL(buf);
	while (off < pe->total) {
		size_t n = (size_t)test_rand_range(&rng, 1, 8192);

		if (n > pe->total - off)
			n = (size_t)(pe->total - off);
		test_pattern_fill(buf, n, pe->seed, off);
		ASSERT_EQ(shmpipe_write(pe->w, buf, n), n);
		off += n;
	}
	ASSERT_OK(shmpipe_writer_close(pe->w));
	free(buf);
	return NULL;
}

static void *blocking_reader(void *arg)
{
	struct peer *pe = arg;
	uint8_t *buf = malloc(8192);
	uint64_t off = 0, rng = pe->seed + 2;

	ASSERT_NOT_NULL(buf);
	for (;;) {
		size_t n = (size_t)test_rand_range(&rng, 1, 8192);
		ssize_t got = shmpipe_read(pe->r, buf, n);

		if (got == 0)
			break;
		ASSERT_GT(got, 0);
		ASSERT_LE(off + (uint64_t)got, pe->total);
		ASSERT_PATTERN(buf, (size_t)got, pe->seed, off);
		off += (uint64_t)got;
	}
	ASSERT_EQ(off, pe->total);
	ASSERT_OK(shmpipe_reader_close(pe->r));
	free(buf);
	return NULL;
}

/* Mostly a few bytes, sometimes a few KiB. */
static size_t small_piece(uint64_t *rng)
{
	if ((test_rand(rng) & 3) != 0)
		return (size_t)test_rand_range(rng, 1, 64);
	return (size_t)test_rand_range(rng, 1, 4096);
}

static void stall(struct waiter *wt, const shmpipe_stats *s, uint64_t off, const char *who)
{
	test_print_stats("stats", s);
	TEST_FAIL("%s: %s: no readiness for %d ms at offset %" PRIu64
		  " with a peer that is blocked (a lost or dropped event)",
		  kind_name[wt->kind], who, STALL_MS, off);
}

static void threads_reader(enum kind k, uint64_t total, uint64_t seed)
{
	struct peer pe = {0};
	struct waiter wt;
	pthread_t t;
	uint8_t buf[4096];
	uint64_t off = 0, rng = seed, events = 0, eagain = 0;
	int64_t t0 = test_now_ns();

	test_pair(&pe.w, &pe.r, 4099);
	pe.total = total;
	pe.seed = seed;
	ASSERT_OK(shmpipe_reader_set_timeout(pe.r, 0));
	waiter_init(&wt, k, shmpipe_reader_pollfd(pe.r));
	ASSERT_EQ(pthread_create(&t, NULL, blocking_writer, &pe), 0);
	for (;;) {
		size_t n = small_piece(&rng);
		ssize_t got;

		if (!ready(&wt, STALL_MS)) {
			shmpipe_stats s = test_rstats(pe.r);
			stall(&wt, &s, off, "reader");
		}
		events++;
		got = shmpipe_read(pe.r, buf, n);
		if (got == -EAGAIN) {
			eagain++;
			continue;
		}
		if (got == 0)
			break;
		ASSERT_GT(got, 0);
		ASSERT_LE(off + (uint64_t)got, total);
		ASSERT_PATTERN(buf, (size_t)got, seed, off);
		off += (uint64_t)got;
		if (!ready(&wt, 0))
			TEST_FAIL("%s: the reader's descriptor went quiet after a read of %zd "
				  "bytes (of %zu asked) at offset %" PRIu64 " (level-triggered, it "
				  "must stay readable until a call returns -EAGAIN)",
				  kind_name[k], got, n, off);
	}
	ASSERT_EQ(off, total);
	ASSERT_EQ(pthread_join(t, NULL), 0);
	waiter_fini(&wt);
	ASSERT_OK(shmpipe_reader_close(pe.r));
	printf("(d) %s, reader one small read per event: %" PRIu64 " bytes in %.0f ms, %" PRIu64
	       " events, %" PRIu64 " of them -EAGAIN\n",
	       kind_name[k], total, tp_ms(test_now_ns() - t0), events, eagain);
}

static void threads_writer(enum kind k, uint64_t total, uint64_t seed)
{
	struct peer pe = {0};
	struct waiter wt;
	pthread_t t;
	uint8_t buf[4096];
	uint64_t off = 0, rng = seed, events = 0, eagain = 0;
	int64_t t0 = test_now_ns();

	test_pair(&pe.w, &pe.r, 4099);
	pe.total = total;
	pe.seed = seed;
	ASSERT_OK(shmpipe_writer_set_timeout(pe.w, 0));
	waiter_init(&wt, k, shmpipe_writer_pollfd(pe.w));
	ASSERT_EQ(pthread_create(&t, NULL, blocking_reader, &pe), 0);
	while (off < total) {
		size_t n = small_piece(&rng);
		ssize_t put;

		if (n > total - off)
			n = (size_t)(total - off);
		if (!ready(&wt, STALL_MS)) {
			shmpipe_stats s = test_wstats(pe.w);
			stall(&wt, &s, off, "writer");
		}
		events++;
		test_pattern_fill(buf, n, seed, off);
		put = shmpipe_write(pe.w, buf, n);
		if (put == -EAGAIN) {
			eagain++;
			continue;
		}
		ASSERT_GT(put, 0);
		ASSERT_LE(put, n);
		off += (uint64_t)put;
		if ((size_t)put == n && !ready(&wt, 0))
			TEST_FAIL("%s: the writer's descriptor went quiet after a write of all "
				  "%zd bytes asked, at offset %" PRIu64 " (level-triggered, it "
				  "must stay readable until a call returns -EAGAIN)",
				  kind_name[k], put, off);
	}
	waiter_fini(&wt);
	ASSERT_OK(shmpipe_writer_close(pe.w));
	ASSERT_EQ(pthread_join(t, NULL), 0);
	printf("(d) %s, writer one small write per event: %" PRIu64 " bytes in %.0f ms, %" PRIu64
	       " events, %" PRIu64 " of them -EAGAIN\n",
	       kind_name[k], total, tp_ms(test_now_ns() - t0), events, eagain);
}

int main(int argc, char **argv)
{
	long mb = test_env_long("SHMPIPE_POLL_LEVEL_MB", 32);
	int early = 0;

	if (argc > 1)
		mb = atol(argv[1]);
	if (mb < 1)
		TEST_FAIL("bad size %s", argv[1]);
	test_watchdog((unsigned)(100 + mb));

	test_basics();
	for (int k = K_POLL; k <= K_EPOLL; k++) {
		test_reader((enum kind)k);
		test_writer((enum kind)k);
		early += test_records((enum kind)k);
	}
	printf("(a)-(c) poll, select, epoll: ok (%d spurious readiness(es) after -EAGAIN, "
	       "%d before room for a whole record)\n",
	       spurious, early);
	for (int k = K_POLL; k <= K_EPOLL; k++) {
		uint64_t bytes = (uint64_t)mb << (k == K_EPOLL ? 20 : 18);

		threads_reader((enum kind)k, bytes, SEED + (uint64_t)k);
		threads_writer((enum kind)k, bytes, SEED + 10 + (uint64_t)k);
	}
	return T_PASS;
}
