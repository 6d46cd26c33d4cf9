/* SPDX-License-Identifier: MIT */
/*
 * Description: one thread with epoll serves 64 pipes and a TCP connection at
 * once, as an event loop does. It reads 32 pipes whose writers are two other
 * threads and writes 32 pipes whose readers are two other threads (each of
 * these four threads handles 16 ends with blocking calls, in turn), and it
 * moves bytes through a TCP connection on 127.0.0.1 whose both ends it holds.
 * Rings of several sizes, calls of random sizes (one in four through
 * reserve/commit or peek/consume), every byte checked against a pattern that
 * depends on the pipe and the position, and each pipe's end of stream exactly
 * where it should be.
 *
 * Level-triggered (lt), the loop makes one call per readiness event and
 * relies on the descriptor staying readable; edge-triggered (et, EPOLLET),
 * it calls until -EAGAIN before waiting again and relies on that -EAGAIN
 * re-arming the descriptor. A stall (no event for 5 s while work remains)
 * fails the test with the state of every unfinished pipe; so does the
 * watchdog.
 *
 *   poll_epoll lt|et [MiB in all]   (default: SHMPIPE_STRESS_MB, else 1024;
 *                                    a sixteenth goes through TCP)
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "pollfd.h"

#define NPIPES	 64
#define NIN	 32 /* pipes 0..31: the loop reads, peer threads write */
#define PER_PEER 16 /* ends per peer thread */
#define NPEERS	 (NPIPES / PER_PEER)
#define TAG_TX	 NPIPES	      /* epoll data of the TCP end the loop writes */
#define TAG_RX	 (NPIPES + 1) /* and of the one it reads */
#define STALL_MS (5000 * TEST_WATCHDOG_SCALE)
#define BUF_MAX	 ((size_t)256 << 10)
#define TCP_SEED 0x7c9ull

/*
 * Ring sizes, and the share of the bytes each one carries: a small ring
 * makes its pipe wait, and the loop serve it, every few KiB, so it needs
 * few bytes to see many events, and would take long with many.
 */
static const struct {
	size_t cap;
	unsigned weight;
} rings[] = {{4099, 1}, {16384, 2}, {65536 + 8, 4}, {(size_t)1 << 20, 8}, {8191, 1}, {262144, 8}};
#define NRINGS (sizeof(rings) / sizeof(rings[0]))

struct slot {
	int idx;
	int in; /* the loop reads it */
	shmpipe_writer *w;
	shmpipe_reader *r;
	int fd; /* the loop's end's descriptor */
	size_t cap;
	uint64_t seed, total;
	uint64_t off;		   /* the loop's position */
	_Atomic uint64_t peer_off; /* the peer thread's, for the report of a stall */
	int done;
	uint64_t rng;
};

/*
 * The bytes: word number k of stream `seed` (bytes 8k..8k+7, as memcpy lays
 * out a uint64_t) is a multiply-xorshift of k + seed. Every position has its
 * own value, so a byte lost, doubled, moved or changed is caught at the
 * position where it shows; it costs a fifth of test.h's pattern, so that the
 * time measured goes to the loop, not to making and checking bytes.
 */
static inline uint64_t fp_word(uint64_t seed, uint64_t k)
{
	uint64_t x = (k + seed) * 0x9e3779b97f4a7c15ull;

	return x ^ (x >> 29);
}

static inline uint8_t fp_byte(uint64_t seed, uint64_t off)
{
	uint64_t w = fp_word(seed, off >> 3);
	uint8_t b[8];

	memcpy(b, &w, 8);
	return b[off & 7];
}

static void fp_fill(void *dst, size_t len, uint64_t seed, uint64_t off)
{
	uint8_t *p = dst;
	size_t i = 0;

	for (; i < len && ((off + i) & 7) != 0; i++)
		p[i] = fp_byte(seed, off + i);
	for (; i + 8 <= len; i += 8) {
		uint64_t w = fp_word(seed, (off + i) >> 3);

		memcpy(p + i, &w, 8);
	}
	for (; i < len; i++)
		p[i] = fp_byte(seed, off + i);
}

/* Fails the test at the first byte of src that is not the stream's at off. */
static void fp_check(const void *src, size_t len, uint64_t seed, uint64_t off, const char *what)
{
	const uint8_t *p = src;
	uint64_t diff = 0;
	size_t i = 0;

	for (; i < len && ((off + i) & 7) != 0; i++)
		diff |= p[i] ^ fp_byte(seed, off + i);
	for (; i + 8 <= len; i += 8) {
		uint64_t w = fp_word(seed, (off + i) >> 3), got;

		memcpy(&got, p + i, 8);
		diff |= got ^ w;
	}
	for (; i < len; i++)
		diff |= p[i] ^ fp_byte(seed, off + i);
	if (diff == 0)
		return;
	for (i = 0; i < len; i++) {
		if (p[i] != fp_byte(seed, off + i))
			TEST_FAIL("%s: stream byte %" PRIu64 " (byte %zu of %zu): got 0x%02x, "
				  "want 0x%02x",
				  what, off + i, i, len, p[i], fp_byte(seed, off + i));
	}
}

static struct slot slots[NPIPES];
static int et;
static uint8_t *lbuf; /* the loop's buffer */

/* Counters of the loop. */
static uint64_t n_waits, n_events, n_calls, n_eagain;

static size_t piece(uint64_t *rng, size_t cap)
{
	size_t max = 2 * cap + 1;

	if (max > BUF_MAX)
		max = BUF_MAX;
	return (size_t)test_rand_range(rng, 1, max);
}

/* ---- the peer threads: 16 ends each, blocking calls, in turn ------------------ */

static void *peer_writer(void *arg)
{
	struct slot *s0 = arg;
	uint8_t *buf = malloc(BUF_MAX);
	int left = PER_PEER;

	ASSERT_NOT_NULL(buf);
	while (left > 0) {
		for (struct slot *s = s0; s < s0 + PER_PEER; s++) {
			uint64_t off = atomic_load(&s->peer_off);
			uint64_t rng = s->seed ^ off;
			size_t n;

			if (off == s->total)
				continue;
			n = piece(&rng, s->cap);
			if (n > s->total - off)
				n = (size_t)(s->total - off);
			fp_fill(buf, n, s->seed, off);
			ASSERT_EQ(shmpipe_write(s->w, buf, n), n);
			atomic_store(&s->peer_off, off + n);
			if (off + n == s->total) {
				ASSERT_OK(shmpipe_writer_close(s->w));
				left--;
			}
		}
	}
	free(buf);
	return NULL;
}

static void *peer_reader(void *arg)
{
	struct slot *s0 = arg;
	uint8_t *buf = malloc(BUF_MAX);
	int left = PER_PEER;
	int eof[PER_PEER] = {0};

	ASSERT_NOT_NULL(buf);
	while (left > 0) {
		for (int i = 0; i < PER_PEER; i++) {
			struct slot *s = s0 + i;
			uint64_t off = atomic_load(&s->peer_off);
			uint64_t rng = s->seed ^ off ^ 0x55;
			size_t n = piece(&rng, s->cap);
			ssize_t got;

			if (eof[i])
				continue;
			got = shmpipe_read(s->r, buf, n);
			if (got == 0) {
				if (off != s->total)
					TEST_FAIL("pipe %d: end of stream after %" PRIu64
						  " bytes, want %" PRIu64,
						  s->idx, off, s->total);
				ASSERT_OK(shmpipe_reader_close(s->r));
				eof[i] = 1;
				left--;
				continue;
			}
			if (got < 0)
				TEST_FAIL("pipe %d: blocking read at %" PRIu64 " = %zd (%s)",
					  s->idx, off, got, shmpipe_strerror((int)got));
			ASSERT_LE(off + (uint64_t)got, s->total);
			fp_check(buf, (size_t)got, s->seed, off, "peer reader");
			atomic_store(&s->peer_off, off + (uint64_t)got);
		}
	}
	free(buf);
	return NULL;
}

/* ---- the loop ------------------------------------------------------------------ */

static int ep;
static int active;

static void finish(struct slot *s)
{
	tp_epoll_del(ep, s->fd);
	if (s->in)
		ASSERT_OK(shmpipe_reader_close(s->r));
	else
		ASSERT_OK(shmpipe_writer_close(s->w));
	s->done = 1;
	active--;
}

static void call_failed(struct slot *s, const char *what, ssize_t ret)
{
	TEST_FAIL("pipe %d (capacity %zu): %s at offset %" PRIu64 " of %" PRIu64 " = %zd (%s)",
		  s->idx, s->cap, what, s->off, s->total, ret, shmpipe_strerror((int)ret));
}

/* One call on a pipe the loop reads: 1 progress, 0 finished, -1 -EAGAIN. */
static int loop_read(struct slot *s)
{
	size_t n = piece(&s->rng, s->cap);
	const void *p;
	ssize_t ret;

	n_calls++;
	if ((test_rand(&s->rng) & 3) == 0) {
		ret = shmpipe_peek(s->r, &p);
		if (ret > 0) {
			if ((size_t)ret < n)
				n = (size_t)ret;
			ASSERT_LE(s->off + n, s->total);
			fp_check(p, n, s->seed, s->off, "loop peek");
			ASSERT_OK(shmpipe_consume(s->r, n));
			ret = (ssize_t)n;
		}
	} else {
		ret = shmpipe_read(s->r, lbuf, n);
		if (ret > 0) {
			ASSERT_LE(s->off + (uint64_t)ret, s->total);
			fp_check(lbuf, (size_t)ret, s->seed, s->off, "loop read");
		}
	}
	if (ret > 0) {
		s->off += (uint64_t)ret;
		return 1;
	}
	if (ret == -EAGAIN) {
		n_eagain++;
		return -1;
	}
	if (ret != 0)
		call_failed(s, "read", ret);
	if (s->off != s->total)
		TEST_FAIL("pipe %d: end of stream after %" PRIu64 " bytes, want %" PRIu64, s->idx,
			  s->off, s->total);
	finish(s);
	return 0;
}

/* One call on a pipe the loop writes: 1 progress, 0 finished, -1 -EAGAIN. */
static int loop_write(struct slot *s)
{
	size_t n = piece(&s->rng, s->cap);
	ssize_t ret;
	void *p;

	if (n > s->total - s->off)
		n = (size_t)(s->total - s->off);
	n_calls++;
	if ((test_rand(&s->rng) & 3) == 0) {
		ret = shmpipe_reserve(s->w, &p, 1);
		if (ret > 0) {
			if ((size_t)ret < n)
				n = (size_t)ret;
			fp_fill(p, n, s->seed, s->off);
			ASSERT_OK(shmpipe_commit(s->w, n));
			ret = (ssize_t)n;
		}
	} else {
		fp_fill(lbuf, n, s->seed, s->off);
		ret = shmpipe_write(s->w, lbuf, n);
		if (ret > (ssize_t)n)
			call_failed(s, "write (more than asked)", ret);
	}
	if (ret == -EAGAIN) {
		n_eagain++;
		return -1;
	}
	if (ret <= 0)
		call_failed(s, "write", ret);
	s->off += (uint64_t)ret;
	if (s->off < s->total)
		return 1;
	finish(s);
	return 0;
}

static void serve_pipe(struct slot *s)
{
	int ret;

	do {
		ret = s->in ? loop_read(s) : loop_write(s);
	} while (et && ret > 0);
}

/* ---- TCP: the loop holds both ends ------------------------------------------- */

static int tx = -1, rx = -1;
static uint64_t tcp_total, tx_off, rx_off;

static void tcp_open(void)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ASSERT_GE(ls, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(ls, 1) != 0 ||
	    getsockname(ls, (struct sockaddr *)&a, &alen) != 0)
		TEST_SKIP("no TCP on 127.0.0.1: %s", strerror(errno));
	tx = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_GE(tx, 0);
	if (connect(tx, (struct sockaddr *)&a, sizeof(a)) != 0)
		TEST_FAIL("connect 127.0.0.1:%d: %s", ntohs(a.sin_port), strerror(errno));
	rx = accept4(ls, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	ASSERT_GE(rx, 0);
	close(ls);
	ASSERT_EQ(fcntl(tx, F_SETFL, O_NONBLOCK), 0);
}

static void serve_tx(void)
{
	do {
		size_t n = 65536;
		ssize_t ret;

		if (n > tcp_total - tx_off)
			n = (size_t)(tcp_total - tx_off);
		fp_fill(lbuf, n, TCP_SEED, tx_off);
		ret = write(tx, lbuf, n);
		if (ret < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (ret <= 0)
			TEST_FAIL("TCP write at %" PRIu64 ": %s", tx_off, strerror(errno));
		tx_off += (uint64_t)ret;
	} while (et && tx_off < tcp_total);
	if (tx_off == tcp_total) {
		tp_epoll_del(ep, tx);
		ASSERT_EQ(shutdown(tx, SHUT_WR), 0);
		active--;
	}
}

static void serve_rx(void)
{
	for (;;) {
		ssize_t ret = read(rx, lbuf, 65536);

		if (ret < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (ret < 0)
			TEST_FAIL("TCP read at %" PRIu64 ": %s", rx_off, strerror(errno));
		if (ret == 0) {
			ASSERT_EQ(rx_off, tcp_total);
			tp_epoll_del(ep, rx);
			active--;
			return;
		}
		ASSERT_LE(rx_off + (uint64_t)ret, tcp_total);
		fp_check(lbuf, (size_t)ret, TCP_SEED, rx_off, "TCP");
		rx_off += (uint64_t)ret;
		if (!et)
			return;
	}
}

/* ---- a stall: say where everything stands ------------------------------------ */

static void report_stall(void)
{
	fprintf(stderr, "FAIL: %s: no event for %d ms with %d of %d sources unfinished:\n",
		et ? "et" : "lt", STALL_MS, active, NPIPES + 2);
	for (int i = 0; i < NPIPES; i++) {
		struct slot *s = &slots[i];
		shmpipe_stats st;

		if (s->done)
			continue;
		if (s->in)
			st = test_rstats(s->r);
		else
			st = test_wstats(s->w);
		fprintf(stderr,
			"  pipe %2d %s cap %7zu: loop at %" PRIu64 ", peer at %" PRIu64
			" of %" PRIu64 "; ring %" PRIu64 "..%" PRIu64 " waits w %" PRIu64
			" r %" PRIu64 "; descriptor %s\n",
			i, s->in ? "loop reads " : "loop writes", s->cap, s->off,
			atomic_load(&s->peer_off), s->total, st.read_index, st.write_index,
			st.producer_waits, st.consumer_waits,
			tp_readable(s->fd, 0) ? "readable" : "quiet");
	}
	fprintf(stderr, "  TCP: sent %" PRIu64 ", received %" PRIu64 " of %" PRIu64 "\n", tx_off,
		rx_off, tcp_total);
	test_die();
}

int main(int argc, char **argv)
{
	long mb = test_env_long("SHMPIPE_STRESS_MB", 1024);
	struct epoll_event evs[128];
	pthread_t peers[NPEERS];
	uint64_t pipes_total, moved = 0;
	double weights = 0;
	uint32_t trig;
	int64_t t0, dt;
	double gib;

	if (argc < 2 || (strcmp(argv[1], "lt") != 0 && strcmp(argv[1], "et") != 0)) {
		fprintf(stderr, "usage: poll_epoll lt|et [MiB]\n");
		return T_FAIL;
	}
	et = strcmp(argv[1], "et") == 0;
	if (argc > 2)
		mb = atol(argv[2]);
	if (mb < 1)
		TEST_FAIL("bad size");
	test_watchdog((unsigned)(240 * (mb > 1024 ? mb / 1024 + 1 : 1)));
	lbuf = malloc(BUF_MAX);
	ASSERT_NOT_NULL(lbuf);
	trig = et ? EPOLLET : 0;

	tcp_total = ((uint64_t)mb << 20) / 16;
	pipes_total = ((uint64_t)mb << 20) - tcp_total;
	/* The weight of the ring, times 1 to 2 along the pipes: they end at different times. */
	for (int i = 0; i < NPIPES; i++)
		weights += (double)(rings[i % NRINGS].weight * (uint64_t)(NPIPES + i));
	ep = tp_epoll_create();
	for (int i = 0; i < NPIPES; i++) {
		struct slot *s = &slots[i];
		double share =
		    (double)(rings[i % NRINGS].weight * (uint64_t)(NPIPES + i)) / weights;

		s->idx = i;
		s->in = i < NIN;
		s->cap = rings[i % NRINGS].cap;
		s->seed = 0x5eed0000ull + (uint64_t)i;
		s->total = (uint64_t)((double)pipes_total * share) + 1;
		s->rng = s->seed * 7 + 1;
		test_pair(&s->w, &s->r, s->cap);
		if (s->in) {
			ASSERT_OK(shmpipe_reader_set_timeout(s->r, 0));
			s->fd = shmpipe_reader_pollfd(s->r);
		} else {
			ASSERT_OK(shmpipe_writer_set_timeout(s->w, 0));
			s->fd = shmpipe_writer_pollfd(s->w);
		}
		ASSERT_GE(s->fd, 0);
		tp_epoll_add(ep, s->fd, EPOLLIN | trig, (uint64_t)i);
		moved += s->total;
	}
	tcp_open();
	tp_epoll_add(ep, tx, EPOLLOUT | trig, TAG_TX);
	tp_epoll_add(ep, rx, EPOLLIN | trig, TAG_RX);
	moved += tcp_total;
	active = NPIPES + 2;

	t0 = test_now_ns();
	for (int p = 0; p < NPEERS; p++) {
		struct slot *s0 = &slots[p * PER_PEER];

		ASSERT_EQ(pthread_create(&peers[p], NULL, s0->in ? peer_writer : peer_reader, s0),
			  0);
	}
	while (active > 0) {
		int n = tp_epoll_wait(ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), STALL_MS);

		n_waits++;
		if (n == 0)
			report_stall();
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;

			n_events++;
			if (tag == TAG_TX)
				serve_tx();
			else if (tag == TAG_RX)
				serve_rx();
			else if (!slots[tag].done)
				serve_pipe(&slots[tag]);
		}
	}
	for (int p = 0; p < NPEERS; p++)
		ASSERT_EQ(pthread_join(peers[p], NULL), 0);
	dt = test_now_ns() - t0;

	for (int i = 0; i < NPIPES; i++) {
		ASSERT_TRUE(slots[i].done);
		ASSERT_EQ(slots[i].off, slots[i].total);
		ASSERT_EQ(atomic_load(&slots[i].peer_off), slots[i].total);
	}
	ASSERT_EQ(tx_off, tcp_total);
	ASSERT_EQ(rx_off, tcp_total);
	close(tx);
	close(rx);
	close(ep);
	gib = (double)moved / (double)(1ull << 30);
	printf("%s: %.3f GiB checked (64 pipes: %.3f GiB, TCP: %.0f MiB) in %.2f s, "
	       "%.2f GiB/s; %" PRIu64 " epoll_wait, %" PRIu64 " events, %" PRIu64 " calls, %" PRIu64
	       " of them -EAGAIN\n",
	       et ? "edge-triggered" : "level-triggered", gib,
	       (double)(moved - tcp_total) / (double)(1ull << 30), (double)tcp_total / (1 << 20),
	       (double)dt / 1e9, gib / ((double)dt / 1e9), n_waits, n_events, n_calls, n_eagain);
	free(lbuf);
	return T_PASS;
}
