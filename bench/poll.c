/* SPDX-License-Identifier: MIT */
/*
 * poll: shmpipe under an event loop. One thread with epoll serves N pipes
 * through their descriptors (shmpipe_reader_pollfd, shmpipe_writer_pollfd),
 * against the same over pipe(2)s and over AF_UNIX socket pairs with epoll;
 * the round trip through epoll on both sides; and how soon a descriptor
 * tells that the peer process was killed.
 *
 *   poll --test bulk|records --impl shmpipe|shmpipe_fenced|pipe|socketpair
 *        [--side read|write] [--pipes N] [--producers P] [--ring BYTES]
 *        [--write BYTES] [--bytes BYTES] [--count N] [--et]
 *   poll --test rtt --impl shmpipe|shmpipe_fenced|pipe [--loop first|lt] [--trips N]
 *   poll --test deadpeer --impl shmpipe|pipe [--reps N]
 *
 * shmpipe_fenced is shmpipe with SHMPIPE_NO_BARRIER=1: both ends publish
 * with a full fence instead of leaving it to the waiter's membarrier(2),
 * which every call that returns -EAGAIN (so every event-loop wake-up)
 * otherwise pays.
 *
 * bulk, records: the epoll thread holds one end of each of N pipes and P
 * other threads (default 1) hold the other ends, pipe i in thread i % P, and
 * serve them with blocking calls, round robin: a chunk of WRITE bytes (or one
 * 64-byte record) to or from each of their pipes in turn. --side read (the
 * default): the epoll thread reads, the others write; --side write: the
 * reverse. One producer thread is the fair default on a small machine: every
 * transport then gets the same two threads, where a thread per pipe (64 on
 * two cores) would mostly measure the scheduler. Every pipe has RING bytes of
 * buffer (default 64 KiB, a pipe's default): shmpipe's capacity, pipe(2)'s
 * F_SETPIPE_SZ, the socket's SO_SNDBUF and SO_RCVBUF (the note says what the
 * kernel granted). Records are one call each on every transport: a
 * SHMPIPE_RECORDS pipe, 64-byte write(2)s and read(2)s on a pipe (atomic, so
 * boundaries hold), and a SOCK_SEQPACKET socket pair. The epoll thread's
 * descriptors are level-triggered; on each event it calls until -EAGAIN or
 * until it has moved 64 KiB, so that one busy pipe cannot starve the others
 * (--et: edge-triggered, until -EAGAIN). Every byte's chunk stamp and every
 * record's pipe and sequence number are checked.
 *
 * rtt: one byte each way between two threads, each waiting in its own epoll
 * on the descriptor of the pipe it reads. --loop first: call first and wait
 * only on -EAGAIN, the descriptor registered edge-triggered (the usage the
 * header describes); --loop lt: wait first, then one call per event,
 * level-triggered, as many libuv programs do.
 *
 * deadpeer: a forked child takes the other end of a pipe, the parent makes
 * its own end wait (a call that returned -EAGAIN, or a blocked call in a
 * thread), then kills the child with SIGKILL and times how long until the
 * descriptor polls readable (or the blocked call returns), in both
 * directions, REPS times; the errors that follow are checked (-ECONNRESET
 * to a reader, -EPIPE to a writer). --impl pipe is the kernel's own floor:
 * a pipe(2) whose other end's process is killed.
 *
 * Prints bench.h lines:
 *   poll IMPL "bulk side=S pipes=N" GB/s, poll IMPL "records side=S pipes=N" Mrec/s
 *   pollrtt IMPL "LOOP p50" us, pollrtt IMPL "LOOP p99" us
 *   deadpeer IMPL "reader poll" ms, ... "writer poll", "reader blocked",
 *   "writer blocked": the median of REPS; and "reader poll max" ...: the
 *   slowest of them
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <shmpipe.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

enum impl { SHMPIPE, PIPE, SOCKETPAIR };
enum test { BULK, RECORDS, RTT, DEADPEER };

#define RECORD 64
/* What the epoll thread moves on one descriptor per event, level-triggered. */
#define BUDGET (64 << 10)
/* No event for this long is a stall (a lost wake-up): the run fails. */
#define STALL_MS 10000

static enum impl impl;
static const char *iname; /* as given: shmpipe_fenced is SHMPIPE, fenced */
static enum test test;
static int side_write; /* the epoll thread writes */
static int npipes = 1;
static int nproducers = 1;
static size_t ring = 64 << 10;
static size_t wsize = 16 << 10;
static uint64_t total = 256ull << 20;
static uint64_t count = 1000000;
static int et;
static int loop_lt;
static long trips = 20000;
static int reps = 9;

/*
 * One pipe: the epoll thread's end and the other thread's. For pipe(2) and
 * sockets, fd is the epoll side's descriptor (non-blocking) and peer_fd the
 * other side's (blocking); for shmpipe, the epoll side's end has timeout 0.
 */
struct chan {
	int idx;
	shmpipe_writer *w;
	shmpipe_reader *r;
	int fd, peer_fd;
	int pollfd;	   /* what the epoll thread waits on */
	uint64_t total;	   /* bytes (bulk) or records (records) for this pipe */
	uint64_t pos;	   /* moved so far by the epoll side */
	uint64_t peer_pos; /* moved so far by the other side */
	int done, peer_done;
};

static struct chan *chans;

static int fail(const char *what, long e)
{
	BENCH_DIE("poll: %s: %s", what, e < 0 ? strerror((int)-e) : "unexpected result");
	return 0;
}

/* Normalises write(2) / read(2) to the library's convention. */
static ssize_t sys_ret(ssize_t k)
{
	return k < 0 ? -errno : k;
}

/* --- the data and its check --------------------------------------------- */

/* A stream's byte at offset off of a WRITE-byte chunk (bytes 0-7: the stamp). */
static unsigned char pattern(size_t off)
{
	return (unsigned char)(off * 131u + 7u);
}

static uint64_t stamp_of(const struct chan *c, uint64_t chunk)
{
	return chunk ^ ((uint64_t)c->idx << 40);
}

/* Checks n bytes of pipe c received at stream position pos. */
static void check_bytes(const struct chan *c, const unsigned char *p, size_t n, uint64_t pos)
{
	uint64_t k = (pos + wsize - 1) / wsize; /* first chunk starting at or after pos */

	for (; k * wsize + 8 <= pos + n; k++) {
		uint64_t got;

		memcpy(&got, p + (k * wsize - pos), sizeof(got));
		if (got != stamp_of(c, k))
			BENCH_DIE("poll: pipe %d chunk %llu has stamp %llx", c->idx,
				  (unsigned long long)k, (unsigned long long)got);
	}
	size_t last = (size_t)((pos + n - 1) % wsize);
	if (last >= 8 && p[n - 1] != pattern(last))
		BENCH_DIE("poll: pipe %d: wrong byte at offset %llu", c->idx,
			  (unsigned long long)(pos + n - 1));
}

static void fill_record(const struct chan *c, unsigned char *rec, uint64_t seq)
{
	uint32_t idx = (uint32_t)c->idx;

	memcpy(rec, &seq, 8);
	memcpy(rec + 8, &idx, 4);
}

static void check_record(const struct chan *c, const unsigned char *rec, ssize_t len, uint64_t seq)
{
	uint64_t got;
	uint32_t idx;

	memcpy(&got, rec, 8);
	memcpy(&idx, rec + 8, 4);
	if (len != RECORD || got != seq || idx != (uint32_t)c->idx)
		BENCH_DIE("poll: pipe %d record %llu: %zd bytes, pipe %u, seq %llu", c->idx,
			  (unsigned long long)seq, len, idx, (unsigned long long)got);
}

/*
 * What a writer sends next on pipe c from stream position pos: a pointer
 * into src (restamped for this chunk) and a length that stays within the
 * chunk; records: one record.
 */
static size_t next_piece(const struct chan *c, unsigned char *src, uint64_t pos,
			 const unsigned char **out)
{
	if (test == RECORDS) {
		fill_record(c, src, pos);
		*out = src;
		return RECORD;
	}
	uint64_t chunk = pos / wsize, stamp = stamp_of(c, chunk);
	size_t off = (size_t)(pos % wsize), n = wsize - off;

	if (n > c->total - pos)
		n = (size_t)(c->total - pos);
	memcpy(src, &stamp, sizeof(stamp));
	*out = src + off;
	return n;
}

/* Checks what a reader got; returns the amount to advance the position by. */
static uint64_t got_piece(const struct chan *c, const unsigned char *buf, ssize_t k, uint64_t pos)
{
	if (test == RECORDS) {
		check_record(c, buf, k, pos);
		return 1;
	}
	check_bytes(c, buf, (size_t)k, pos);
	return (uint64_t)k;
}

static unsigned char *new_src(void)
{
	size_t n = test == RECORDS ? RECORD : wsize;
	unsigned char *src = calloc(1, n);

	if (!src)
		BENCH_DIE("poll: out of memory");
	for (size_t i = 8; i < n; i++)
		src[i] = pattern(i);
	return src;
}

/* --- the calls, on either side ------------------------------------------- */

static ssize_t do_read(struct chan *c, int epoll_side, void *buf, size_t len)
{
	if (impl == SHMPIPE)
		return shmpipe_read(c->r, buf, len);
	return sys_ret(read(epoll_side ? c->fd : c->peer_fd, buf, len));
}

static ssize_t do_write(struct chan *c, int epoll_side, const void *buf, size_t len)
{
	if (impl == SHMPIPE)
		return shmpipe_write(c->w, buf, len);
	/* MSG_NOSIGNAL where it applies: a dead reader is an error, not a signal. */
	if (impl == SOCKETPAIR)
		return sys_ret(send(epoll_side ? c->fd : c->peer_fd, buf, len, MSG_NOSIGNAL));
	return sys_ret(write(epoll_side ? c->fd : c->peer_fd, buf, len));
}

/* Closes the writing side of pipe c (end of stream for its reader). */
static void close_writer(struct chan *c, int epoll_side)
{
	if (impl == SHMPIPE) {
		shmpipe_writer_close(c->w);
		c->w = NULL;
	} else {
		close(epoll_side ? c->fd : c->peer_fd);
	}
}

static void close_reader(struct chan *c, int epoll_side)
{
	if (impl == SHMPIPE) {
		shmpipe_reader_close(c->r);
		c->r = NULL;
	} else {
		close(epoll_side ? c->fd : c->peer_fd);
	}
}

/* --- setup ----------------------------------------------------------------- */

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		BENCH_DIE("poll: fcntl: %s", strerror(errno));
}

/* Sets up pipe c; note gets what the kernel granted (the first pipe's). */
static void open_chan(struct chan *c, char *note, size_t notelen)
{
	char a[24], b[24];

	if (impl == SHMPIPE) {
		shmpipe_options o = {.capacity = ring,
				     .flags = test == RECORDS ? SHMPIPE_RECORDS : 0};
		int e = shmpipe_pair(&c->w, &c->r, &o);

		if (e < 0)
			fail("shmpipe_pair", e);
		/* The epoll side never blocks; the other side blocks forever. */
		if (side_write) {
			shmpipe_writer_set_timeout(c->w, 0);
			c->pollfd = shmpipe_writer_pollfd(c->w);
		} else {
			shmpipe_reader_set_timeout(c->r, 0);
			c->pollfd = shmpipe_reader_pollfd(c->r);
		}
		if (c->pollfd < 0)
			fail("shmpipe_*_pollfd", c->pollfd);
		return;
	}
	int fds[2]; /* [0] reads, [1] writes */
	if (impl == PIPE) {
		if (pipe2(fds, O_CLOEXEC) < 0)
			fail("pipe2", -errno);
		if (fcntl(fds[1], F_SETPIPE_SZ, (int)ring) < 0)
			fail("F_SETPIPE_SZ", -errno);
		snprintf(note, notelen, "pipe_sz=%s",
			 bench_human((uint64_t)fcntl(fds[1], F_GETPIPE_SZ), a, sizeof(a)));
	} else {
		int type = test == RECORDS ? SOCK_SEQPACKET : SOCK_STREAM, v = (int)ring, snd = 0,
		    rcv = 0;
		socklen_t len = sizeof(int);

		if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) < 0)
			fail("socketpair", -errno);
		setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
		setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
		getsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &snd, &len);
		len = sizeof(int);
		getsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &rcv, &len);
		snprintf(note, notelen, "%s sndbuf=%s rcvbuf=%s",
			 test == RECORDS ? "seqpacket" : "stream",
			 bench_human((uint64_t)snd, a, sizeof(a)),
			 bench_human((uint64_t)rcv, b, sizeof(b)));
	}
	c->fd = side_write ? fds[1] : fds[0];
	c->peer_fd = side_write ? fds[0] : fds[1];
	c->pollfd = c->fd;
	set_nonblock(c->fd);
}

/* --- the other side: blocking calls, round robin --------------------------- */

static void *peer_thread(void *arg)
{
	int id = (int)(intptr_t)arg, left = 0;
	unsigned char *src = new_src();
	size_t buflen = test == RECORDS ? RECORD : ring;
	unsigned char *buf = malloc(buflen);

	if (!buf)
		BENCH_DIE("poll: out of memory");
	for (int i = id; i < npipes; i += nproducers)
		left++;
	while (left > 0) {
		for (int i = id; i < npipes; i += nproducers) {
			struct chan *c = &chans[i];
			ssize_t k;

			if (c->peer_done)
				continue;
			if (!side_write) {
				/* The epoll thread reads: write the next piece, all of it. */
				const unsigned char *p;
				size_t n = 0;

				if (c->peer_pos < c->total)
					n = next_piece(c, src, c->peer_pos, &p);
				while (n > 0) {
					k = do_write(c, 0, p, n);
					if (k <= 0)
						fail("blocking write", k);
					p += k;
					n -= (size_t)k;
					c->peer_pos += test == RECORDS ? 1 : (uint64_t)k;
				}
				if (c->peer_pos == c->total) {
					close_writer(c, 0);
					c->peer_done = 1;
					left--;
				}
			} else {
				k = do_read(c, 0, buf, buflen);
				if (k < 0)
					fail("blocking read", k);
				if (k == 0) {
					if (c->peer_pos != c->total)
						BENCH_DIE("poll: pipe %d ended early", i);
					close_reader(c, 0);
					c->peer_done = 1;
					left--;
					continue;
				}
				c->peer_pos += got_piece(c, buf, k, c->peer_pos);
			}
		}
	}
	free(buf);
	free(src);
	return NULL;
}

/* --- the epoll thread ------------------------------------------------------ */

/* Serves pipe c after an event; returns 1 when it has finished with it. */
static int serve(struct chan *c, unsigned char *src, unsigned char *buf, size_t buflen)
{
	uint64_t moved = 0;

	while (et || moved < BUDGET) {
		ssize_t k;

		if (side_write) {
			const unsigned char *p;

			if (c->pos == c->total)
				return 1;
			size_t n = next_piece(c, src, c->pos, &p);

			k = do_write(c, 1, p, n);
			if (k == -EAGAIN)
				return 0;
			if (k <= 0)
				fail("non-blocking write", k);
			c->pos += test == RECORDS ? 1 : (uint64_t)k;
		} else {
			k = do_read(c, 1, buf, buflen);
			if (k == -EAGAIN)
				return 0;
			if (k < 0)
				fail("non-blocking read", k);
			if (k == 0) {
				if (c->pos != c->total)
					BENCH_DIE("poll: pipe %d ended early", c->idx);
				return 1;
			}
			c->pos += got_piece(c, buf, k, c->pos);
		}
		moved += (uint64_t)k;
	}
	return 0;
}

static void run_throughput(void)
{
	char note[128] = "-";
	unsigned char *src = new_src();
	size_t buflen = test == RECORDS ? RECORD : ring;
	unsigned char *buf = malloc(buflen);
	struct epoll_event *evs = calloc((size_t)npipes, sizeof(*evs));
	pthread_t *peers = calloc((size_t)nproducers, sizeof(*peers));
	uint64_t all = test == RECORDS ? count : total;
	int ep = epoll_create1(EPOLL_CLOEXEC), left = npipes;
	double t0, t1;

	chans = calloc((size_t)npipes, sizeof(*chans));
	if (!buf || !evs || !peers || !chans || ep < 0)
		BENCH_DIE("poll: out of memory");
	for (int i = 0; i < npipes; i++) {
		struct chan *c = &chans[i];
		/* Whole chunks (or records) per pipe, shared out evenly. */
		uint64_t unit = test == RECORDS ? 1 : wsize, units = all / unit;

		c->idx = i;
		c->total =
		    (units / (uint64_t)npipes + ((uint64_t)i < units % (uint64_t)npipes)) * unit;
		open_chan(c, note, sizeof(note));
		struct epoll_event ev = {.events =
					     (impl == SHMPIPE || !side_write ? EPOLLIN : EPOLLOUT) |
					     (et ? EPOLLET : 0),
					 .data.ptr = c};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, c->pollfd, &ev) < 0)
			fail("epoll_ctl", -errno);
	}
	t0 = bench_now();
	for (int i = 0; i < nproducers; i++)
		if (pthread_create(&peers[i], NULL, peer_thread, (void *)(intptr_t)i) != 0)
			BENCH_DIE("poll: pthread_create failed");
	while (left > 0) {
		int n = epoll_wait(ep, evs, npipes, STALL_MS);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail("epoll_wait", -errno);
		if (n == 0)
			BENCH_DIE("poll: stalled: no event for %d s with %d pipes still open",
				  STALL_MS / 1000, left);
		for (int i = 0; i < n; i++) {
			struct chan *c = evs[i].data.ptr;

			if (c->done || !serve(c, src, buf, buflen))
				continue;
			/* Out of the set before the descriptor goes with its end. */
			epoll_ctl(ep, EPOLL_CTL_DEL, c->pollfd, NULL);
			if (side_write)
				close_writer(c, 1);
			else
				close_reader(c, 1);
			c->done = 1;
			left--;
		}
	}
	for (int i = 0; i < nproducers; i++)
		pthread_join(peers[i], NULL);
	t1 = bench_now();
	uint64_t moved = 0;
	for (int i = 0; i < npipes; i++) {
		if (chans[i].pos != chans[i].total || chans[i].peer_pos != chans[i].total)
			BENCH_DIE("poll: pipe %d moved %llu and %llu of %llu", i,
				  (unsigned long long)chans[i].pos,
				  (unsigned long long)chans[i].peer_pos,
				  (unsigned long long)chans[i].total);
		moved += chans[i].total;
	}
	if (test == RECORDS)
		bench_emit("poll", iname, (double)moved / (t1 - t0) / 1e6, "Mrec/s",
			   "records side=%s pipes=%d", side_write ? "write" : "read", npipes);
	else
		bench_emit("poll", iname, (double)moved / (t1 - t0) / 1e9, "GB/s",
			   "bulk side=%s pipes=%d", side_write ? "write" : "read", npipes);
	bench_note(note);
	close(ep);
	free(chans);
	free(peers);
	free(evs);
	free(buf);
	free(src);
}

/* --- round trip -------------------------------------------------------------- */

struct hop {
	shmpipe_writer *w; /* this thread's sending end */
	shmpipe_reader *r; /* and receiving end */
	int wfd, rfd;
	int ep;
};

static struct hop hop_a, hop_b;

static void hop_send(struct hop *h, char byte)
{
	ssize_t k =
	    impl == SHMPIPE ? shmpipe_write(h->w, &byte, 1) : sys_ret(write(h->wfd, &byte, 1));

	if (k != 1)
		fail("round-trip write", k);
}

static void hop_wait(struct hop *h)
{
	struct epoll_event ev;
	int n = epoll_wait(h->ep, &ev, 1, STALL_MS);

	if (n < 0 && errno != EINTR)
		fail("epoll_wait", -errno);
	if (n == 0)
		BENCH_DIE("poll: round trip stalled: no event for %d s", STALL_MS / 1000);
}

static char hop_recv(struct hop *h)
{
	char byte;
	ssize_t k;

	for (;;) {
		if (loop_lt)
			hop_wait(h);
		k = impl == SHMPIPE ? shmpipe_read(h->r, &byte, 1)
				    : sys_ret(read(h->rfd, &byte, 1));
		if (k == 1)
			return byte;
		if (k != -EAGAIN)
			fail("round-trip read", k);
		if (!loop_lt)
			hop_wait(h);
	}
}

static void *echo(void *arg)
{
	(void)arg;
	for (long i = 1; i <= trips; i++) {
		char c = hop_recv(&hop_b);

		if (c != (char)i)
			BENCH_DIE("poll: echo got %d, wanted %d", c, (char)i);
		hop_send(&hop_b, c);
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void run_rtt(void)
{
	shmpipe_writer *w[2];
	shmpipe_reader *r[2];
	int fds[2][2];
	double *rtt = malloc((size_t)trips * sizeof(*rtt));
	pthread_t t;

	if (!rtt)
		BENCH_DIE("poll: out of memory");
	/* Pipe 0 goes from A to B, pipe 1 from B to A. */
	for (int i = 0; i < 2; i++) {
		if (impl == SHMPIPE) {
			int e = shmpipe_pair(&w[i], &r[i], NULL);

			if (e < 0)
				fail("shmpipe_pair", e);
			shmpipe_writer_set_timeout(w[i], 0);
			shmpipe_reader_set_timeout(r[i], 0);
		} else {
			if (pipe2(fds[i], O_CLOEXEC | O_NONBLOCK) < 0)
				fail("pipe2", -errno);
		}
	}
	hop_a = (struct hop){.w = w[0], .r = r[1], .wfd = fds[0][1], .rfd = fds[1][0]};
	hop_b = (struct hop){.w = w[1], .r = r[0], .wfd = fds[1][1], .rfd = fds[0][0]};
	if (impl != SHMPIPE)
		hop_a.w = hop_b.w = NULL, hop_a.r = hop_b.r = NULL;
	for (int i = 0; i < 2; i++) {
		struct hop *h = i ? &hop_b : &hop_a;
		struct epoll_event ev = {.events = EPOLLIN | (loop_lt ? 0 : EPOLLET)};
		int fd = impl == SHMPIPE ? shmpipe_reader_pollfd(h->r) : h->rfd;

		h->ep = epoll_create1(EPOLL_CLOEXEC);
		if (fd < 0 || h->ep < 0 || epoll_ctl(h->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
			fail("epoll setup", fd < 0 ? fd : -errno);
	}
	if (pthread_create(&t, NULL, echo, NULL) != 0)
		BENCH_DIE("poll: pthread_create failed");
	for (long i = 1; i <= trips; i++) {
		double t0 = bench_now();

		hop_send(&hop_a, (char)i);
		if (hop_recv(&hop_a) != (char)i)
			BENCH_DIE("poll: round trip %ld came back wrong", i);
		rtt[i - 1] = bench_now() - t0;
	}
	pthread_join(t, NULL);
	qsort(rtt, (size_t)trips, sizeof(*rtt), cmp_double);
	const char *loop = loop_lt ? "lt" : "first";
	bench_emit("pollrtt", iname, rtt[trips / 2] * 1e6, "us", "%s p50", loop);
	bench_note(loop_lt ? "wait, then one call per event (level-triggered)"
			   : "call first, wait on EAGAIN (edge-triggered)");
	bench_emit("pollrtt", iname, rtt[trips * 99 / 100] * 1e6, "us", "%s p99", loop);
	bench_note("-");
	for (int i = 0; i < 2; i++) {
		if (impl == SHMPIPE) {
			shmpipe_writer_close(w[i]);
			shmpipe_reader_close(r[i]);
		} else {
			close(fds[i][0]);
			close(fds[i][1]);
		}
	}
	close(hop_a.ep);
	close(hop_b.ep);
	free(rtt);
}

/* --- dead peer --------------------------------------------------------------- */

/*
 * The parent's end, in one of the four scenarios: reader or writer, waiting
 * through its descriptor or in a blocked call.
 */
struct deadpeer {
	int writer; /* the parent holds the write end */
	shmpipe_writer *w;
	shmpipe_reader *r;
	int fd;		 /* pipe(2): the parent's end */
	double returned; /* blocked: when the call returned */
	ssize_t ret;	 /* blocked: what it returned */
};

static void *blocked_call(void *arg)
{
	struct deadpeer *d = arg;
	char buf[4096] = {0};

	if (d->writer) {
		/* The ring is full: this sleeps until the reader goes. */
		d->ret = shmpipe_write(d->w, buf, sizeof(buf));
	} else {
		d->ret = shmpipe_read(d->r, buf, sizeof(buf));
	}
	d->returned = bench_now();
	return NULL;
}

/* The parent's call, timeout 0: 1 progress, 0 -EAGAIN; anything else is returned < 0. */
static ssize_t parent_call(struct deadpeer *d)
{
	char buf[4096] = {0};
	ssize_t k;

	if (impl == PIPE) {
		k = d->writer ? sys_ret(write(d->fd, buf, sizeof(buf)))
			      : sys_ret(read(d->fd, buf, sizeof(buf)));
		if (k == 0 && !d->writer)
			return -EPIPE; /* end of file: the writer is gone */
	} else {
		k = d->writer ? shmpipe_write(d->w, buf, sizeof(buf))
			      : shmpipe_read(d->r, buf, sizeof(buf));
	}
	if (k == -EAGAIN)
		return 0;
	if (k > 0)
		return 1;
	return k < 0 ? k : -EPIPE;
}

static int parent_pollfd(struct deadpeer *d)
{
	if (impl == PIPE)
		return d->fd;
	return d->writer ? shmpipe_writer_pollfd(d->w) : shmpipe_reader_pollfd(d->r);
}

/* How the parent's descriptor shows readiness: a pipe's write end POLLOUT. */
static short parent_events(struct deadpeer *d)
{
	return impl == PIPE && d->writer ? POLLOUT : POLLIN;
}

/* One trial: returns the milliseconds from SIGKILL to the notice. */
static double deadpeer_once(int writer, int blocked)
{
	struct deadpeer d = {.writer = writer, .fd = -1};
	int ready[2], pfd[2] = {-1, -1};
	pthread_t t;
	pid_t pid;
	double t0, t1;
	char c;

	if (pipe2(ready, O_CLOEXEC) < 0)
		fail("pipe2", -errno);
	if (impl == SHMPIPE) {
		shmpipe_options o = {.capacity = 4096};
		int e = writer ? shmpipe_writer_create(&d.w, NULL, &o)
			       : shmpipe_reader_create(&d.r, NULL, &o);

		if (e < 0)
			fail("shmpipe_*_create", e);
	} else if (pipe2(pfd, O_CLOEXEC) < 0) {
		fail("pipe2", -errno);
	}
	pid = fork();
	if (pid < 0)
		fail("fork", -errno);
	if (pid == 0) {
		/* The child takes the other end, commits a byte if it writes, says
		 * so and waits to be killed. */
		shmpipe_writer *cw = NULL;
		shmpipe_reader *cr = NULL;
		int e = 0;

		if (impl == SHMPIPE) {
			e = writer ? shmpipe_reader_open_fd(&cr, shmpipe_writer_fd(d.w))
				   : shmpipe_writer_open_fd(&cw, shmpipe_reader_fd(d.r));
			if (e == 0 && cw)
				e = shmpipe_write(cw, "x", 1) == 1 ? 0 : -EIO;
		} else {
			close(writer ? pfd[1] : pfd[0]);
			if (!writer)
				e = write(pfd[1], "x", 1) == 1 ? 0 : -EIO;
		}
		c = e == 0 ? 'k' : 'e';
		if (write(ready[1], &c, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	if (read(ready[0], &c, 1) != 1 || c != 'k')
		BENCH_DIE("poll: deadpeer child failed to take its end");
	if (impl == PIPE) {
		d.fd = writer ? pfd[1] : pfd[0];
		close(writer ? pfd[0] : pfd[1]);
		set_nonblock(d.fd);
	} else if (writer) {
		shmpipe_writer_set_timeout(d.w, 0);
	} else {
		shmpipe_reader_set_timeout(d.r, 0);
	}
	/*
	 * Make the end wait: call until -EAGAIN (a writer fills the ring, a
	 * reader takes the child's byte), and again while the descriptor polls
	 * readable (a spurious or lazy event, e.g. the child's connection).
	 */
	struct pollfd p = {.fd = parent_pollfd(&d), .events = parent_events(&d)};
	int quiet = 0;
	for (int tries = 0; tries < 1000 && !quiet; tries++) {
		ssize_t k;

		while ((k = parent_call(&d)) == 1)
			;
		if (k < 0)
			fail("deadpeer: call before the kill", k);
		quiet = poll(&p, 1, 0) == 0;
	}
	if (!quiet)
		BENCH_DIE("poll: deadpeer: the descriptor stays ready after -EAGAIN");
	if (blocked) {
		if (writer)
			shmpipe_writer_set_timeout(d.w, -1);
		else
			shmpipe_reader_set_timeout(d.r, -1);
		if (pthread_create(&t, NULL, blocked_call, &d) != 0)
			BENCH_DIE("poll: pthread_create failed");
		usleep(30000); /* long enough to be asleep in the kernel */
	}
	t0 = bench_now();
	kill(pid, SIGKILL);
	if (blocked) {
		pthread_join(t, NULL);
		t1 = d.returned;
		if (d.ret != (writer ? -EPIPE : -ECONNRESET))
			BENCH_DIE("poll: deadpeer: the blocked %s returned %zd (%s)",
				  writer ? "write" : "read", d.ret, strerror((int)-d.ret));
	} else {
		int n = poll(&p, 1, 5000);

		t1 = bench_now();
		if (n != 1)
			BENCH_DIE("poll: deadpeer: no notice within 5 s");
		ssize_t k = parent_call(&d);
		int want = impl == PIPE ? -EPIPE : writer ? -EPIPE : -ECONNRESET;

		if (k != want)
			BENCH_DIE("poll: deadpeer: the call after the notice returned %zd (%s)", k,
				  k < 0 ? strerror((int)-k) : "progress");
	}
	waitpid(pid, NULL, 0);
	if (impl == SHMPIPE) {
		if (writer)
			shmpipe_writer_close(d.w);
		else
			shmpipe_reader_close(d.r);
	} else {
		close(d.fd);
	}
	close(ready[0]);
	close(ready[1]);
	return (t1 - t0) * 1e3;
}

static void run_deadpeer(void)
{
	double *ms = malloc((size_t)reps * sizeof(*ms));
	char note[96];

	if (!ms)
		BENCH_DIE("poll: out of memory");
	/* A write to a pipe whose reader is gone raises SIGPIPE: see EPIPE. */
	signal(SIGPIPE, SIG_IGN);
	for (int blocked = 0; blocked <= (impl == SHMPIPE); blocked++) {
		for (int writer = 0; writer <= 1; writer++) {
			for (int i = 0; i < reps; i++) {
				alarm(30); /* a notice that never comes ends the run */
				ms[i] = deadpeer_once(writer, blocked);
			}
			alarm(0);
			qsort(ms, (size_t)reps, sizeof(*ms), cmp_double);
			const char *who = writer ? "writer" : "reader",
				   *how = blocked ? "blocked" : "poll";

			snprintf(note, sizeof(note), "median of %d, min %.3f", reps, ms[0]);
			bench_emit("deadpeer", iname, ms[reps / 2], "ms", "%s %s", who, how);
			bench_note(note);
			bench_emit("deadpeer", iname, ms[reps - 1], "ms", "%s %s max", who, how);
			bench_note("-");
		}
	}
	free(ms);
}

int main(int argc, char **argv)
{
	static const char *impls[] = {"shmpipe", "pipe", "socketpair"};
	static const char *tests[] = {"bulk", "records", "rtt", "deadpeer"};
	const char *tname = NULL;
	int bad = 0;

	for (int i = 1; i < argc && !bad; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--et")) {
			et = 1;
			continue;
		}
		if (!v) {
			bad = 1;
			break;
		}
		i++;
		if (!strcmp(a, "--impl"))
			iname = v;
		else if (!strcmp(a, "--test"))
			tname = v;
		else if (!strcmp(a, "--side") && (!strcmp(v, "read") || !strcmp(v, "write")))
			side_write = !strcmp(v, "write");
		else if (!strcmp(a, "--loop") && (!strcmp(v, "first") || !strcmp(v, "lt")))
			loop_lt = !strcmp(v, "lt");
		else if (!strcmp(a, "--pipes"))
			npipes = (int)bench_size("poll", v);
		else if (!strcmp(a, "--producers"))
			nproducers = (int)bench_size("poll", v);
		else if (!strcmp(a, "--ring"))
			ring = (size_t)bench_size("poll", v);
		else if (!strcmp(a, "--write"))
			wsize = (size_t)bench_size("poll", v);
		else if (!strcmp(a, "--bytes"))
			total = bench_size("poll", v);
		else if (!strcmp(a, "--count"))
			count = bench_size("poll", v);
		else if (!strcmp(a, "--trips"))
			trips = (long)bench_size("poll", v);
		else if (!strcmp(a, "--reps"))
			reps = (int)bench_size("poll", v);
		else
			bad = 1;
	}
	for (impl = SHMPIPE; iname && impl <= SOCKETPAIR; impl++)
		if (!strcmp(iname, impls[impl]))
			break;
	if (iname && !strcmp(iname, "shmpipe_fenced")) {
		/* Before the library's first call, which reads it once. */
		setenv("SHMPIPE_NO_BARRIER", "1", 1);
		impl = SHMPIPE;
	}
	for (test = BULK; tname && test <= DEADPEER; test++)
		if (!strcmp(tname, tests[test]))
			break;
	if (bad || !iname || !tname || impl > SOCKETPAIR || test > DEADPEER ||
	    (test >= RTT && impl == SOCKETPAIR) || wsize < 16 || wsize > ring ||
	    nproducers > npipes) {
		fprintf(
		    stderr,
		    "usage: poll --test bulk|records --impl "
		    "shmpipe|shmpipe_fenced|pipe|socketpair\n"
		    "            [--side read|write] [--pipes N] [--producers P] [--ring BYTES]\n"
		    "            [--write BYTES (16..RING)] [--bytes BYTES] [--count N] [--et]\n"
		    "       poll --test rtt --impl shmpipe|shmpipe_fenced|pipe [--loop first|lt]\n"
		    "            [--trips N]\n"
		    "       poll --test deadpeer --impl shmpipe|pipe [--reps N]\n");
		return 2;
	}
	if (test == BULK || test == RECORDS)
		run_throughput();
	else if (test == RTT)
		run_rtt();
	else
		run_deadpeer();
	return 0;
}
