/* SPDX-License-Identifier: MIT */
/*
 * Description: a named pipe created by this process, whose other end is
 * opened by an unrelated process (test/peer, started with fork+exec: it
 * shares nothing with us but the name and uses blocking calls), served by an
 * event loop here: calls with timeout 0 and a wait on the end's descriptor
 * after each -EAGAIN, the first of them before the peer even exists.
 *
 * (a) We read a stream, edge-triggered epoll (call until -EAGAIN).
 * (b) We write a stream, level-triggered epoll (one call per event).
 * (c) We read records, poll(2).
 * (d) We write records, select(2).
 * Every byte and every record length is checked on both sides, end of
 * stream comes exactly after the last byte, the peer exits 0, and this
 * process has no thread but its own throughout.
 *
 *   poll_exec [MiB per stream direction]   (default: SHMPIPE_STRESS_MB / 8,
 *                                           else 128; records get a quarter)
 */
#include "pollfd.h"
#include "xproc.h"

#define STALL_MS (10000 * TEST_WATCHDOG_SCALE)

enum how { H_EPOLL_ET, H_EPOLL_LT, H_POLL, H_SELECT };
static const char *const how_name[] = {"epoll, edge-triggered", "epoll, level-triggered", "poll",
				       "select"};

struct loop {
	enum how how;
	int fd;
	int ep;
	uint64_t waits, calls, eagain;
	int64_t t0;
};

static void loop_init(struct loop *l, enum how how, int fd)
{
	memset(l, 0, sizeof(*l));
	l->how = how;
	l->fd = fd;
	l->ep = -1;
	ASSERT_GE(fd, 0);
	if (how == H_EPOLL_ET || how == H_EPOLL_LT) {
		l->ep = tp_epoll_create();
		tp_epoll_add(l->ep, fd, EPOLLIN | (how == H_EPOLL_ET ? EPOLLET : 0), 0);
	}
	l->t0 = test_now_ns();
}

static void loop_wait(struct loop *l, uint64_t off, const char *what)
{
	struct epoll_event ev;
	int n;

	l->waits++;
	if (l->ep >= 0)
		n = tp_epoll_wait(l->ep, &ev, 1, STALL_MS);
	else if (l->how == H_POLL)
		n = tp_readable(l->fd, STALL_MS);
	else
		n = tp_select_readable(l->fd, STALL_MS);
	if (n == 0)
		TEST_FAIL("%s (%s): no readiness for %d ms at offset %" PRIu64, what,
			  how_name[l->how], STALL_MS, off);
}

/*
 * Whether to call again at once (1) or wait first (0) after a call that
 * made progress: edge-triggered loops call until -EAGAIN; the others make
 * one call per readiness, as libuv programs do.
 */
static int loop_again(const struct loop *l)
{
	return l->how == H_EPOLL_ET;
}

/* The threads of this process before any pipe: the library adds none. */
static int threads0 = 1;

static void loop_fini(struct loop *l, const char *what, uint64_t bytes)
{
	int64_t dt = test_now_ns() - l->t0;

	/* No thread of the library's, here or anywhere in between. */
	ASSERT_EQ(tp_count_threads(), threads0);
	if (l->ep >= 0)
		close(l->ep);
	printf("%s (%s): %" PRIu64 " bytes in %.0f ms, %.0f MiB/s; %" PRIu64 " waits, %" PRIu64
	       " calls, %" PRIu64 " -EAGAIN\n",
	       what, how_name[l->how], bytes, tp_ms(dt), (double)bytes / (1 << 20) / (dt / 1e9),
	       l->waits, l->calls, l->eagain);
}

static pid_t spawn(const char *mode, const char *name, uint64_t total, uint64_t seed, int records)
{
	char tot[32], sd[32];
	const char *args[6] = {mode, name, tot, sd, records ? "records" : NULL, NULL};

	snprintf(tot, sizeof(tot), "%" PRIu64, total);
	snprintf(sd, sizeof(sd), "%" PRIu64, seed);
	return xp_spawn_peer(args);
}

/* ---- we read --------------------------------------------------------------------- */

static void we_read(const char *name, size_t cap, int records, enum how how, uint64_t total,
		    uint64_t seed)
{
	shmpipe_options o = test_opts(cap);
	shmpipe_reader *r;
	struct loop l;
	size_t maxlen = records ? xp_record_max(cap) : 2 * cap + 1;
	uint8_t *buf = malloc(maxlen);
	uint64_t off = 0, rng = records ? seed * 5 + 3 : seed, want = 0;
	pid_t pid;

	ASSERT_NOT_NULL(buf);
	o.flags = records ? SHMPIPE_RECORDS : 0;
	ASSERT_OK(shmpipe_reader_create(&r, name, &o));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	loop_init(&l, how, shmpipe_reader_pollfd(r));
	/* Nobody there yet: -EAGAIN, and the descriptor will say when to come back. */
	ASSERT_ERR(shmpipe_read(r, buf, 1), -EAGAIN);
	pid = spawn("write", name, total, seed, records);
	for (;;) {
		size_t n;
		ssize_t got;

		loop_wait(&l, off, "we read");
		do {
			if (records) {
				/* The peer's record lengths, in the peer's order (xproc.h). */
				if (want == 0 && off < total) {
					want = test_rand_range(&rng, 1, maxlen);
					if (want > total - off)
						want = total - off;
				}
				n = maxlen;
			} else {
				n = (size_t)test_rand_range(&rng, 1, maxlen);
			}
			l.calls++;
			got = shmpipe_read(r, buf, n);
			if (got == -EAGAIN) {
				l.eagain++;
				break;
			}
			if (got == 0)
				goto eof;
			if (got < 0)
				TEST_FAIL("shmpipe_read at %" PRIu64 " = %zd (%s)", off, got,
					  shmpipe_strerror((int)got));
			if (records) {
				if ((uint64_t)got != want)
					TEST_FAIL("record at %" PRIu64 ": %zd bytes, want %" PRIu64,
						  off, got, want);
				want = 0;
			}
			ASSERT_LE(off + (uint64_t)got, total);
			ASSERT_PATTERN(buf, (size_t)got, seed, off);
			off += (uint64_t)got;
		} while (loop_again(&l));
	}
eof:
	ASSERT_EQ(off, total);
	ASSERT_EQ(shmpipe_read(r, buf, 1), 0);
	XP_ASSERT_EXIT(xp_wait(pid, 60000), T_PASS);
	loop_fini(&l, records ? "we read records" : "we read a stream", total);
	ASSERT_OK(shmpipe_unlink(name));
	ASSERT_OK(shmpipe_reader_close(r));
	free(buf);
}

/* ---- we write --------------------------------------------------------------------- */

static void we_write(const char *name, size_t cap, int records, enum how how, uint64_t total,
		     uint64_t seed)
{
	shmpipe_options o = test_opts(cap);
	shmpipe_writer *w;
	struct loop l;
	size_t maxlen = records ? xp_record_max(cap) : 2 * cap + 1;
	uint8_t *buf = malloc(maxlen);
	uint64_t off = 0, rng = records ? seed * 5 + 3 : seed, next = 0;
	pid_t pid;

	ASSERT_NOT_NULL(buf);
	o.flags = records ? SHMPIPE_RECORDS : 0;
	ASSERT_OK(shmpipe_writer_create(&w, name, &o));
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	loop_init(&l, how, shmpipe_writer_pollfd(w));
	pid = spawn("read", name, total, seed, records);
	while (off < total) {
		loop_wait(&l, off, "we write");
		do {
			ssize_t put;
			size_t n;

			if (records) {
				/* The same record until it goes in whole. */
				if (next == 0) {
					next = test_rand_range(&rng, 1, maxlen);
					if (next > total - off)
						next = total - off;
				}
				n = (size_t)next;
			} else {
				n = (size_t)test_rand_range(&rng, 1, maxlen);
				if (n > total - off)
					n = (size_t)(total - off);
			}
			test_pattern_fill(buf, n, seed, off);
			l.calls++;
			put = shmpipe_write(w, buf, n);
			if (put == -EAGAIN) {
				l.eagain++;
				break;
			}
			if (put <= 0 || (size_t)put > n || (records && (size_t)put != n))
				TEST_FAIL("shmpipe_write of %zu at %" PRIu64 " = %zd (%s)", n, off,
					  put, shmpipe_strerror((int)put));
			off += (uint64_t)put;
			next = 0;
		} while (loop_again(&l) && off < total);
	}
	ASSERT_OK(shmpipe_writer_close(w));
	/* The peer checked every byte and the end of stream. */
	XP_ASSERT_EXIT(xp_wait(pid, 60000), T_PASS);
	loop_fini(&l, records ? "we write records" : "we write a stream", total);
	ASSERT_OK(shmpipe_unlink(name));
	free(buf);
}

static int body(int argc, char **argv)
{
	long mb = test_env_long("SHMPIPE_STRESS_MB", 1024) / 8;
	char name[XP_NAME_MAX];
	uint64_t bytes;

	if (argc > 1)
		mb = atol(argv[1]);
	if (mb < 1)
		mb = 1;
	bytes = (uint64_t)mb << 20;
	test_watchdog((unsigned)(100 + mb / 4));
	/* A sanitizer's runtime may have a thread of its own: count from here. */
	threads0 = tp_count_threads();
	ASSERT_GE(threads0, 1);

	xp_name(name, sizeof(name), 1);
	we_read(name, 65536, 0, H_EPOLL_ET, bytes, 11);
	xp_name(name, sizeof(name), 2);
	we_write(name, 10007, 0, H_EPOLL_LT, bytes, 12);
	xp_name(name, sizeof(name), 3);
	we_read(name, 65536, 1, H_POLL, bytes / 4, 13);
	xp_name(name, sizeof(name), 4);
	we_write(name, 32768, 1, H_SELECT, bytes / 4, 14);
	return T_PASS;
}

int main(int argc, char **argv)
{
	return xp_main("poll_exec", body, argc, argv);
}
