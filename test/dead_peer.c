/* SPDX-License-Identifier: MIT */
/*
 * Description: a peer process that dies (SIGKILL: no close, no goodbye) is
 * noticed, in well under a second, by an end that waits for it.
 *
 * (a) The reader dies while the writer sleeps on a full ring: the write
 *     returns -EPIPE (the detection time, kill to return, is printed and must
 *     be under 1 s). Killed at a random moment while the writer streams:
 *     writes go on while there is room, possibly one partial count, then
 *     -EPIPE, within 1 s of the kill.
 * (b) The writer dies while the reader sleeps on an empty ring: the read
 *     returns -ECONNRESET, under 1 s after the kill, and keeps doing so.
 * (c) The writer dies mid-stream (the ring filling, full, or being read):
 *     the reader gets every committed byte, in order and intact, and then
 *     -ECONNRESET, never the 0 of a clean end of stream.
 * (d) In record mode (write, writev and reserve/commit), a writer killed at
 *     random moments never leaves a torn record: each one read is whole and
 *     self-consistent (sequence number, length, pattern), then -ECONNRESET.
 * (e) Kills at random moments, many times, each side, under a watchdog.
 * (f) A peer that died before the other end attached: the reader still gets
 *     what was committed, then -ECONNRESET; the writer gets -EPIPE.
 * (g) Non-blocking calls (timeout 0) report a dead peer too, once there is
 *     nothing left to move, and a death once reported stays reported.
 * An end whose holder died stays taken (-EBUSY).
 *
 *   dead_peer [iterations]   (for (e), default 50 per side)
 */
#include <stdatomic.h>

#include "xproc.h"

#define SEED  0xdead
#define RSEED 0xdeadbeefull

/* Where a child writes down when it killed or was killed. */
struct shared {
	_Atomic int64_t kill_ns;
};

static struct shared *sh;
static int name_k;

/* Bounds that replace "forever", so that a death not noticed fails cleanly. */
#define NOTICE_MS	(3000 * TEST_SLOW)
#define DETECT_LIMIT_NS ((int64_t)1000000000)

static void next_name(char *buf, size_t n)
{
	xp_name(buf, n, ++name_k);
}

static void sleep_us(int64_t us)
{
	struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* The child stamps the time and dies, as abruptly as a process can. */
static void die_now(void)
{
	atomic_store(&sh->kill_ns, test_now_ns());
	kill(getpid(), SIGKILL);
	for (;;)
		pause();
}

/*
 * A killer process: after `us` microseconds, stamps the time and kills
 * `victim` (our child, not reaped until the killer is done).
 */
static pid_t spawn_killer(pid_t victim, int64_t us)
{
	pid_t pid = xp_fork();

	if (pid == 0) {
		sleep_us(us);
		atomic_store(&sh->kill_ns, test_now_ns());
		kill(victim, SIGKILL);
		_exit(T_PASS);
	}
	return pid;
}

static double ms_of(int64_t ns)
{
	return (double)ns / 1e6;
}

/* ---- one case: a named pipe with a peer process at its other end ------------ */

/*
 * This process holds one end of the pipe and a forked peer the other: w
 * and r are the two ends, each set in the process that holds it. The peer
 * says 'r' on up once it holds its end; down carries a go-ahead to a peer
 * that waits for one.
 */
struct xcase {
	char name[XP_NAME_MAX];
	struct xp_chan up, down;
	shmpipe_writer *w;
	shmpipe_reader *r;
	pid_t pid;
	uint64_t arg; /* for peer(): a seed, or a byte count */
};

enum peer_end {
	PEER_OPENS_READER,   /* this process creates the pipe as its writer */
	PEER_OPENS_WRITER,   /* this process creates the pipe as its reader */
	PEER_CREATES_READER, /* this process takes no end until the case says so */
	PEER_CREATES_WRITER,
};

/*
 * Starts a case: a pipe of a new name with options o, and the peer, which
 * takes its end as `end` says, says 'r', runs peer(c) (a stream that never
 * returns, or steps that end in its death) and, if peer returns or is NULL,
 * waits to be killed. Returns once the peer has said 'r'. kill_ns is reset.
 */
static void xcase_start(struct xcase *c, enum peer_end end, const shmpipe_options *o,
			void (*peer)(struct xcase *c), uint64_t arg)
{
	memset(c, 0, sizeof(*c));
	c->arg = arg;
	next_name(c->name, sizeof(c->name));
	xp_chan_open(&c->up);
	xp_chan_open(&c->down);
	atomic_store(&sh->kill_ns, 0);
	if (end == PEER_OPENS_READER)
		ASSERT_OK(shmpipe_writer_create(&c->w, c->name, o));
	else if (end == PEER_OPENS_WRITER)
		ASSERT_OK(shmpipe_reader_create(&c->r, c->name, o));
	c->pid = xp_fork();
	if (c->pid == 0) {
		if (end == PEER_OPENS_READER)
			ASSERT_OK(shmpipe_reader_open(&c->r, c->name));
		else if (end == PEER_OPENS_WRITER)
			ASSERT_OK(shmpipe_writer_open(&c->w, c->name));
		else if (end == PEER_CREATES_READER)
			ASSERT_OK(shmpipe_reader_create(&c->r, c->name, o));
		else
			ASSERT_OK(shmpipe_writer_create(&c->w, c->name, o));
		xp_send(&c->up, 'r');
		if (peer != NULL)
			peer(c);
		for (;;)
			pause();
	}
	ASSERT_EQ(xp_recv(&c->up, 10000), 'r');
}

/* Kills the peer and reaps it: it must have died of that SIGKILL. */
static void xcase_kill(struct xcase *c)
{
	ASSERT_EQ(kill(c->pid, SIGKILL), 0);
	XP_ASSERT_KILLED(xp_wait(c->pid, 10000), SIGKILL);
}

/* Ends a case whose peer is reaped: unlinks the name, closes this end. */
static void xcase_end(struct xcase *c)
{
	ASSERT_OK(shmpipe_unlink(c->name));
	if (c->w != NULL)
		ASSERT_OK(shmpipe_writer_close(c->w));
	if (c->r != NULL)
		ASSERT_OK(shmpipe_reader_close(c->r));
	xp_chan_close(&c->up);
	xp_chan_close(&c->down);
}

/* ---- stream writers and readers that run until the peer dies --------------- */

/* Writes the pattern in random sizes, some through reserve/commit, forever. */
static void stream_writer_forever(shmpipe_writer *w, uint64_t seed, uint64_t rng)
{
	shmpipe_stats s = test_wstats(w);
	size_t maxlen = (size_t)(s.capacity + s.capacity / 2 + 1);
	uint8_t *buf;
	uint64_t off = 0;

	/* Pieces small enough that the ring fills at once, not after one big fill. */
	if (maxlen > (256 << 10))
		maxlen = 256 << 10;
	buf = malloc(maxlen);
	ASSERT_NOT_NULL(buf);
	for (;;) {
		size_t n = (size_t)test_rand_range(&rng, 1, maxlen);
		if ((test_rand(&rng) & 3) == 0) {
			void *p;
			ssize_t got = shmpipe_reserve(w, &p, 1);
			ASSERT_GT(got, 0);
			if ((size_t)got < n)
				n = (size_t)got;
			test_pattern_fill(p, n, seed, off);
			ASSERT_OK(shmpipe_commit(w, n));
		} else {
			test_pattern_fill(buf, n, seed, off);
			ASSERT_EQ(shmpipe_write(w, buf, n), n);
		}
		off += n;
	}
}

/* Reads and checks the pattern, forever (until killed). */
static void stream_reader_forever(shmpipe_reader *r, uint64_t seed, uint64_t rng)
{
	uint8_t *buf = malloc(1 << 20);
	uint64_t off = 0;

	ASSERT_NOT_NULL(buf);
	for (;;) {
		size_t n = (size_t)test_rand_range(&rng, 1, 1 << 20);
		ssize_t got = shmpipe_read(r, buf, n);
		ASSERT_GT(got, 0);
		ASSERT_PATTERN(buf, (size_t)got, seed, off);
		off += (uint64_t)got;
	}
}

/*
 * Reads the rest of a stream from a writer that died: everything must be
 * the pattern, and the end -ECONNRESET, not 0. Returns the final offset.
 */
static uint64_t drain_after_death(shmpipe_reader *r, uint64_t off, uint64_t seed, uint64_t *rng)
{
	static uint8_t buf[1 << 20];

	ASSERT_OK(shmpipe_reader_set_timeout(r, NOTICE_MS));
	for (;;) {
		size_t n = (size_t)test_rand_range(rng, 1, sizeof(buf));
		ssize_t got = shmpipe_read(r, buf, n);
		if (got > 0) {
			ASSERT_PATTERN(buf, (size_t)got, seed, off);
			off += (uint64_t)got;
			continue;
		}
		if (got == 0)
			TEST_FAIL("read returned 0, a clean end of stream, after %" PRIu64
				  " bytes from a writer that was killed; want -ECONNRESET",
				  off);
		ASSERT_ERR(got, -ECONNRESET);
		return off;
	}
}

/*
 * Writes the pattern until the reader's death shows: full writes, then at
 * most one partial count, then -EPIPE. Returns the bytes written.
 */
static uint64_t write_until_epipe(shmpipe_writer *w, uint64_t seed, uint64_t *rng)
{
	static uint8_t buf[1 << 18];
	uint64_t off = 0;

	ASSERT_OK(shmpipe_writer_set_timeout(w, NOTICE_MS));
	for (;;) {
		size_t n = (size_t)test_rand_range(rng, 1, sizeof(buf));
		ssize_t got;

		test_pattern_fill(buf, n, seed, off);
		got = shmpipe_write(w, buf, n);
		if (got == (ssize_t)n) {
			off += n;
			continue;
		}
		if (got >= 0) {
			/* A partial count: the very next call reports why. */
			ASSERT_ERR(shmpipe_write(w, buf + got, 1), -EPIPE);
			off += (uint64_t)got;
			return off;
		}
		ASSERT_ERR(got, -EPIPE);
		return off;
	}
}

/* ---- (a) the reader dies ----------------------------------------------------- */

/* Reads 1000 bytes, says 'r' again, and dies 130 ms after the go-ahead. */
static void peer_read_1000_then_die(struct xcase *c)
{
	uint8_t cbuf[1000];

	test_read_exact(c->r, cbuf, sizeof(cbuf));
	ASSERT_PATTERN(cbuf, sizeof(cbuf), SEED, 0);
	xp_send(&c->up, 'r');
	xp_recv(&c->down, 10000);
	test_sleep_ms(130); /* the writer is asleep by now */
	die_now();
}

static int64_t test_reader_dies_writer_asleep(void)
{
	shmpipe_options o = test_opts(65536);
	struct xcase c;
	shmpipe_writer *w;
	shmpipe_reader *r2 = NULL;
	shmpipe_stats s;
	uint8_t buf[4096];
	int64_t t0, t1, detect;
	uint64_t filled = 1000;
	ssize_t ret;

	xcase_start(&c, PEER_OPENS_READER, &o, peer_read_1000_then_die, 0);
	w = c.w;
	test_pattern_fill(buf, 1000, SEED, 0);
	ASSERT_EQ(shmpipe_write(w, buf, 1000), 1000);
	ASSERT_EQ(xp_recv(&c.up, 10000), 'r');
	/* Fill the ring to the brim without sleeping. */
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	for (;;) {
		ret = shmpipe_write(w, buf, sizeof(buf));
		if (ret == -EAGAIN)
			break;
		ASSERT_GT(ret, 0);
		filled += (uint64_t)ret;
	}
	ASSERT_EQ(filled, 1000 + 65536);
	ASSERT_OK(shmpipe_writer_set_timeout(w, NOTICE_MS));
	xp_send(&c.down, 'g');
	t0 = test_now_ns();
	ret = shmpipe_write(w, buf, sizeof(buf));
	t1 = test_now_ns();
	ASSERT_ERR(ret, -EPIPE);
	XP_ASSERT_KILLED(xp_wait(c.pid, 10000), SIGKILL);
	ASSERT_GT(atomic_load(&sh->kill_ns), 0);
	detect = t1 - atomic_load(&sh->kill_ns);
	printf("(a) reader killed while the writer slept on a full ring: -EPIPE %.1f ms "
	       "after the kill (the write slept %.1f ms)\n",
	       ms_of(detect), ms_of(t1 - t0));
	ASSERT_LT(detect, DETECT_LIMIT_NS);

	/* It stays that way (timeout 0: see test_nonblocking). */
	ASSERT_ERR(shmpipe_write(w, buf, 1), -EPIPE);
	/* The dead reader's end stays taken; the counters are still there. */
	ASSERT_ERR(shmpipe_reader_open(&r2, c.name), -EBUSY);
	ASSERT_PTR_EQ(r2, NULL);
	ASSERT_OK(shmpipe_stat(c.name, &s));
	ASSERT_EQ(s.read_index, 1000);
	ASSERT_EQ(s.write_index, filled);
	xcase_end(&c);
	return detect;
}

static void peer_stream_reader(struct xcase *c)
{
	stream_reader_forever(c->r, c->arg, c->arg + 1);
}

/* Killed from outside at a random moment, while both sides stream. */
static int64_t reader_dies_midstream(size_t capacity, int64_t delay_us, uint64_t seed, int verbose)
{
	shmpipe_options o = test_opts(capacity);
	struct xcase c;
	uint64_t rng = seed, written;
	int64_t t1, detect;
	pid_t killer;

	xcase_start(&c, PEER_OPENS_READER, &o, peer_stream_reader, seed);
	killer = spawn_killer(c.pid, delay_us);
	written = write_until_epipe(c.w, seed, &rng);
	t1 = test_now_ns();
	XP_ASSERT_EXIT(xp_wait(killer, 10000), T_PASS);
	XP_ASSERT_KILLED(xp_wait(c.pid, 10000), SIGKILL);
	detect = t1 - atomic_load(&sh->kill_ns);
	if (verbose)
		printf("(a) reader killed mid-stream after %.1f ms, %" PRIu64
		       " bytes written: -EPIPE %.1f ms after the kill\n",
		       (double)delay_us / 1000, written, ms_of(detect));
	if (detect >= DETECT_LIMIT_NS)
		TEST_FAIL("-EPIPE came %.1f ms after the reader was killed, want < 1000 ms",
			  ms_of(detect));
	xcase_end(&c);
	return detect;
}

/* ---- (b), (c) the writer dies ------------------------------------------------- */

/* Writes 5000 bytes, says 'r' again, and dies 130 ms after the go-ahead. */
static void peer_write_5000_then_die(struct xcase *c)
{
	uint8_t cbuf[5000];

	test_pattern_fill(cbuf, sizeof(cbuf), SEED, 0);
	ASSERT_EQ(shmpipe_write(c->w, cbuf, sizeof(cbuf)), sizeof(cbuf));
	xp_send(&c->up, 'r');
	xp_recv(&c->down, 10000);
	test_sleep_ms(130); /* the reader is asleep by now */
	die_now();
}

static int64_t test_writer_dies_reader_asleep(void)
{
	shmpipe_options o = test_opts(65536);
	struct xcase c;
	shmpipe_reader *r;
	shmpipe_writer *w2 = NULL;
	shmpipe_stats s;
	uint8_t buf[5000];
	const void *p;
	int64_t t0, t1, detect;
	ssize_t ret;

	xcase_start(&c, PEER_OPENS_WRITER, &o, peer_write_5000_then_die, 0);
	r = c.r;
	ASSERT_EQ(xp_recv(&c.up, 10000), 'r');
	test_read_exact(r, buf, sizeof(buf));
	ASSERT_PATTERN(buf, sizeof(buf), SEED, 0);
	ASSERT_OK(shmpipe_reader_set_timeout(r, NOTICE_MS));
	xp_send(&c.down, 'g');
	t0 = test_now_ns();
	ret = shmpipe_read(r, buf, sizeof(buf));
	t1 = test_now_ns();
	ASSERT_ERR(ret, -ECONNRESET);
	XP_ASSERT_KILLED(xp_wait(c.pid, 10000), SIGKILL);
	ASSERT_GT(atomic_load(&sh->kill_ns), 0);
	detect = t1 - atomic_load(&sh->kill_ns);
	printf("(b) writer killed while the reader slept on an empty ring: -ECONNRESET "
	       "%.1f ms after the kill (the read slept %.1f ms)\n",
	       ms_of(detect), ms_of(t1 - t0));
	ASSERT_LT(detect, DETECT_LIMIT_NS);

	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), -ECONNRESET);
	ASSERT_ERR(shmpipe_peek(r, &p), -ECONNRESET);
	ASSERT_ERR(shmpipe_writer_open(&w2, c.name), -EBUSY);
	ASSERT_PTR_EQ(w2, NULL);
	ASSERT_OK(shmpipe_stat(c.name, &s));
	ASSERT_EQ(s.write_index, 5000);
	ASSERT_EQ(s.read_index, 5000);
	xcase_end(&c);
	return detect;
}

enum kill_how {
	KILL_WHILE_READING, /* we keep reading until the kill */
	KILL_RING_FULL,	    /* we stop reading: the writer fills the ring and sleeps */
	KILL_RING_FILLING,  /* a big ring, killed while the writer is still filling it */
};

static void peer_stream_writer(struct xcase *c)
{
	stream_writer_forever(c->w, c->arg, c->arg + 5);
}

/*
 * The writer streams; we kill it as `how` says, after delay_us, then read
 * what is left: every committed byte, then -ECONNRESET. Returns the time
 * from the kill to -ECONNRESET.
 */
static int64_t writer_dies_midstream(size_t capacity, enum kill_how how, int64_t delay_us,
				     int reap_first, uint64_t seed, int verbose)
{
	static uint8_t buf[1 << 20];
	static const char *how_name[] = {"while being read", "on a full ring",
					 "while filling the ring"};
	shmpipe_options o = test_opts(capacity);
	struct xcase c;
	shmpipe_reader *r;
	shmpipe_stats s;
	uint64_t rng = seed, off = 0;
	int64_t t_kill, t1, end;

	xcase_start(&c, PEER_OPENS_WRITER, &o, peer_stream_writer, seed);
	r = c.r;
	if (how == KILL_WHILE_READING) {
		end = test_now_ns() + delay_us * 1000;
		while (test_now_ns() < end) {
			size_t n = (size_t)test_rand_range(&rng, 1, sizeof(buf));
			ssize_t got = shmpipe_read(r, buf, n);
			ASSERT_GT(got, 0);
			ASSERT_PATTERN(buf, (size_t)got, seed, off);
			off += (uint64_t)got;
		}
	} else {
		sleep_us(delay_us);
	}
	t_kill = test_now_ns();
	ASSERT_EQ(kill(c.pid, SIGKILL), 0);
	if (reap_first)
		XP_ASSERT_KILLED(xp_wait(c.pid, 10000), SIGKILL);
	off = drain_after_death(r, off, seed, &rng);
	t1 = test_now_ns();
	if (!reap_first)
		XP_ASSERT_KILLED(xp_wait(c.pid, 10000), SIGKILL);
	/* Every committed byte was read, and nothing more. */
	s = test_rstats(r);
	ASSERT_EQ(s.write_index, off);
	ASSERT_EQ(s.read_index, off);
	if (how != KILL_WHILE_READING)
		ASSERT_LE(off, capacity);
	if (verbose)
		printf("(c) writer killed %s after %.1f ms: %" PRIu64 " bytes, all intact, "
		       "then -ECONNRESET %.1f ms after the kill\n",
		       how_name[how], (double)delay_us / 1000, off, ms_of(t1 - t_kill));
	if (!reap_first && t1 - t_kill >= DETECT_LIMIT_NS)
		TEST_FAIL("-ECONNRESET came %.1f ms after the writer was killed, want < 1000 ms",
			  ms_of(t1 - t_kill));
	xcase_end(&c);
	return t1 - t_kill;
}

/* ---- (d) records ------------------------------------------------------------ */

static void record_fill(uint8_t *p, uint64_t seq, size_t len)
{
	uint64_t l = len;

	memcpy(p, &seq, 8);
	memcpy(p + 8, &l, 8);
	test_pattern_fill(p + 16, len - 16, RSEED ^ (seq * 0x9e3779b97f4a7c15ull), 16);
}

static void record_check(const uint8_t *p, ssize_t n, uint64_t want_seq)
{
	uint64_t seq, l;

	ASSERT_GE(n, 16);
	memcpy(&seq, p, 8);
	memcpy(&l, p + 8, 8);
	ASSERT_EQ(seq, want_seq);
	ASSERT_EQ(l, (uint64_t)n);
	ASSERT_PATTERN(p + 16, (size_t)n - 16, RSEED ^ (seq * 0x9e3779b97f4a7c15ull), 16);
}

/* Records through write, writev (three at once) and reserve/commit, forever. */
static void record_writer_forever(shmpipe_writer *w, uint64_t rng)
{
	shmpipe_stats s = test_wstats(w);
	size_t maxlen = xp_record_max(s.capacity) / 3;
	uint8_t *b[3];
	uint64_t seq = 0;

	ASSERT_GE(maxlen, 16);
	for (int i = 0; i < 3; i++) {
		b[i] = malloc(maxlen);
		ASSERT_NOT_NULL(b[i]);
	}
	for (;;) {
		unsigned how = (unsigned)(test_rand(&rng) % 3);
		if (how == 0) {
			size_t len = (size_t)test_rand_range(&rng, 16, maxlen);
			record_fill(b[0], seq, len);
			ASSERT_EQ(shmpipe_write(w, b[0], len), len);
			seq++;
		} else if (how == 1) {
			struct iovec iov[3];
			size_t sum = 0;
			for (int i = 0; i < 3; i++) {
				size_t len = (size_t)test_rand_range(&rng, 16, maxlen);
				record_fill(b[i], seq + (uint64_t)i, len);
				iov[i].iov_base = b[i];
				iov[i].iov_len = len;
				sum += len;
			}
			ASSERT_EQ(shmpipe_writev(w, iov, 3), sum);
			seq += 3;
		} else {
			size_t len = (size_t)test_rand_range(&rng, 16, maxlen);
			void *p;
			ssize_t got = shmpipe_reserve(w, &p, len);
			ASSERT_GE(got, (ssize_t)len);
			record_fill(p, seq, len);
			ASSERT_OK(shmpipe_commit(w, len));
			seq++;
		}
	}
}

static void peer_record_writer(struct xcase *c)
{
	record_writer_forever(c->w, c->arg);
}

static uint64_t record_writer_dies(size_t capacity, int64_t delay_us, int read_meanwhile,
				   uint64_t seed)
{
	shmpipe_options o = test_opts(capacity);
	struct xcase c;
	shmpipe_reader *r;
	shmpipe_stats s;
	uint8_t *buf;
	size_t buflen = 65536;
	uint64_t seq = 0;
	int64_t end;
	ssize_t got;

	o.flags = SHMPIPE_RECORDS;
	buf = malloc(buflen);
	ASSERT_NOT_NULL(buf);
	xcase_start(&c, PEER_OPENS_WRITER, &o, peer_record_writer, seed);
	r = c.r;
	if (read_meanwhile) {
		end = test_now_ns() + delay_us * 1000;
		while (test_now_ns() < end) {
			got = shmpipe_read(r, buf, buflen);
			record_check(buf, got, seq++);
		}
	} else {
		sleep_us(delay_us);
	}
	ASSERT_EQ(kill(c.pid, SIGKILL), 0);
	ASSERT_OK(shmpipe_reader_set_timeout(r, NOTICE_MS));
	for (;;) {
		/* Half the time in place. */
		if (seq & 1) {
			const void *p;
			got = shmpipe_peek(r, &p);
			if (got <= 0)
				break;
			record_check(p, got, seq++);
			ASSERT_OK(shmpipe_consume(r, (size_t)got));
		} else {
			got = shmpipe_read(r, buf, buflen);
			if (got <= 0)
				break;
			record_check(buf, got, seq++);
		}
	}
	if (got == 0)
		TEST_FAIL("0, a clean end of stream, after %" PRIu64
			  " records from a killed writer; want -ECONNRESET",
			  seq);
	ASSERT_ERR(got, -ECONNRESET);
	XP_ASSERT_KILLED(xp_wait(c.pid, 10000), SIGKILL);
	s = test_rstats(r);
	ASSERT_EQ(s.consumed, seq);
	/*
	 * The writer counts a publication just after publishing it: killed in
	 * between, its count lags by that publication (at most the 3 records
	 * of one writev), but never counts a record that is not there.
	 */
	ASSERT_LE(s.produced, seq);
	ASSERT_GE(s.produced + 3, seq);
	ASSERT_EQ(s.read_index, s.write_index);
	xcase_end(&c);
	free(buf);
	return seq;
}

static void test_records(int iterations)
{
	uint64_t rng = 0x5eed, total = 0;

	for (int i = 0; i < iterations; i++) {
		size_t cap = (i & 1) ? 4096 : 65536 + 8;
		int64_t delay = (int64_t)test_rand_range(&rng, 0, 20000);
		total += record_writer_dies(cap, delay, (i % 3) != 0, test_rand(&rng));
	}
	printf("(d) records: %d writers killed at random moments, %" PRIu64
	       " records read, none torn\n",
	       iterations, total);
}

/* ---- (f) dead before the other end came ---------------------------------------- */

/* Writes `arg` bytes of the pattern and says 'r' again. */
static void peer_write_n(struct xcase *c)
{
	uint8_t cbuf[4096];

	ASSERT_LE(c->arg, sizeof(cbuf));
	test_pattern_fill(cbuf, (size_t)c->arg, SEED, 0);
	ASSERT_EQ(shmpipe_write(c->w, cbuf, (size_t)c->arg), c->arg);
	xp_send(&c->up, 'r');
}

static void test_dead_before_attach(void)
{
	shmpipe_options o = test_opts(8192);
	struct xcase c;
	uint8_t buf[4096];
	uint64_t rng = 77, written;

	/* The writer created the pipe, wrote, and died: no reader yet. */
	xcase_start(&c, PEER_CREATES_WRITER, &o, peer_write_n, 3000);
	ASSERT_EQ(xp_recv(&c.up, 10000), 'r');
	xcase_kill(&c);
	ASSERT_OK(shmpipe_reader_open(&c.r, c.name));
	ASSERT_OK(shmpipe_reader_set_timeout(c.r, NOTICE_MS));
	test_read_exact(c.r, buf, 3000);
	ASSERT_PATTERN(buf, 3000, SEED, 0);
	ASSERT_ERR(shmpipe_read(c.r, buf, sizeof(buf)), -ECONNRESET);
	xcase_end(&c);

	/* The reader created the pipe and died: the writer comes, -EPIPE. */
	xcase_start(&c, PEER_CREATES_READER, &o, NULL, 0);
	xcase_kill(&c);
	ASSERT_OK(shmpipe_writer_open(&c.w, c.name));
	written = write_until_epipe(c.w, SEED, &rng);
	ASSERT_LE(written, 8192);
	xcase_end(&c);
	printf("(f) peers dead before the other end attached: data then -ECONNRESET; "
	       "-EPIPE after %" PRIu64 " bytes\n",
	       written);
}

/* ---- (g) non-blocking calls -------------------------------------------------- */

static int soft_failures;

/* Like ASSERT_ERR, but goes on, so that every case below gets reported. */
#define SOFT_ERR(expr, want)                                                                       \
	do {                                                                                       \
		long long g_ = (long long)(expr);                                                  \
		if (g_ != (long long)(want)) {                                                     \
			fprintf(stderr, "%s:%d: %s = %lld (%s), want %lld (%s)\n", __FILE__,       \
				__LINE__, #expr, g_, test_errtext(g_), (long long)(want),          \
				test_errtext(want));                                               \
			soft_failures++;                                                           \
		}                                                                                  \
	} while (0)

/*
 * (g) Non-blocking calls (timeout 0) learn of a dead peer as blocking ones
 * do, once nothing is left to move: otherwise an event loop that polls with
 * timeout 0 would get -EAGAIN forever from a pipe whose peer is gone (a
 * non-blocking read(2) of a pipe without writers gives 0 at once, a write
 * EPIPE). And a death once reported stays reported: the next call with
 * timeout 0 does not turn it back into -EAGAIN.
 */
static void test_nonblocking(void)
{
	shmpipe_options o = test_opts(4096);
	struct xcase c;
	shmpipe_reader *r;
	shmpipe_writer *w;
	uint8_t buf[4096];
	const void *p;
	ssize_t ret;

	/* The writer is dead and reaped; we read with timeout 0. */
	xcase_start(&c, PEER_OPENS_WRITER, &o, peer_write_n, 1000);
	r = c.r;
	ASSERT_EQ(xp_recv(&c.up, 10000), 'r');
	xcase_kill(&c);
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 1000); /* what was committed, first */
	ASSERT_PATTERN(buf, 1000, SEED, 0);
	SOFT_ERR(shmpipe_read(r, buf, sizeof(buf)), -ECONNRESET);
	SOFT_ERR(shmpipe_peek(r, &p), -ECONNRESET);
	/* Once a waiting read has reported it, timeout 0 must not forget it. */
	ASSERT_OK(shmpipe_reader_set_timeout(r, NOTICE_MS));
	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), -ECONNRESET);
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	SOFT_ERR(shmpipe_read(r, buf, sizeof(buf)), -ECONNRESET);
	SOFT_ERR(shmpipe_peek(r, &p), -ECONNRESET);
	xcase_end(&c);

	/* The reader is dead and reaped; we write with timeout 0. */
	xcase_start(&c, PEER_OPENS_READER, &o, NULL, 0);
	w = c.w;
	xcase_kill(&c);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	memset(buf, 0, sizeof(buf));
	/* Room in the ring: the write may go in, or see the death already. */
	ret = shmpipe_write(w, buf, sizeof(buf));
	if (ret != (ssize_t)sizeof(buf) && ret != -EPIPE)
		TEST_FAIL(
		    "a write with room, timeout 0, dead reader = %zd (%s), want %zu or -EPIPE", ret,
		    shmpipe_strerror((int)ret), sizeof(buf));
	/* The ring is full now: nothing to do but report the death. */
	SOFT_ERR(shmpipe_write(w, buf, 1), -EPIPE);
	SOFT_ERR(shmpipe_reserve(w, (void **)&p, 1), -EPIPE);
	ASSERT_OK(shmpipe_writer_set_timeout(w, NOTICE_MS));
	ASSERT_ERR(shmpipe_write(w, buf, 1), -EPIPE);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	SOFT_ERR(shmpipe_write(w, buf, 1), -EPIPE);
	xcase_end(&c);
	if (soft_failures)
		TEST_FAIL("(g) %d non-blocking call(s) did not report the dead peer",
			  soft_failures);
	printf("(g) non-blocking calls report a dead peer: ok\n");
}

/* ---- (e) many kills ---------------------------------------------------------- */

static void test_many_kills(int iterations)
{
	uint64_t rng = 0xe0e0;
	int64_t worst_r = 0, sum_r = 0, worst_w = 0, sum_w = 0;
	int n_w = 0;

	for (int i = 0; i < iterations; i++) {
		size_t cap = (i & 1) ? 4099 : (size_t)1 << 20;
		int64_t delay = (int64_t)test_rand_range(&rng, 0, 10000);
		int64_t d = reader_dies_midstream(cap, delay, test_rand(&rng), 0);
		sum_r += d;
		if (d > worst_r)
			worst_r = d;
	}
	for (int i = 0; i < iterations; i++) {
		size_t cap = (i & 1) ? 4099 : (size_t)1 << 20;
		int64_t delay = (int64_t)test_rand_range(&rng, 0, 10000);
		enum kill_how how = (enum kill_how)(i % 3);
		int reap_first = (i % 4) == 3;
		int64_t d = writer_dies_midstream(how == KILL_RING_FILLING ? (size_t)16 << 20 : cap,
						  how, delay, reap_first, test_rand(&rng), 0);
		if (!reap_first) {
			sum_w += d;
			n_w++;
			if (d > worst_w)
				worst_w = d;
		}
	}
	printf("(e) %d readers killed at random moments: -EPIPE after %.1f ms on average, "
	       "%.1f ms at worst\n",
	       iterations, ms_of(sum_r / iterations), ms_of(worst_r));
	printf("(e) %d writers killed at random moments: every byte, then -ECONNRESET "
	       "after %.1f ms on average, %.1f ms at worst\n",
	       iterations, ms_of(n_w ? sum_w / n_w : 0), ms_of(worst_w));
}

static int body(int argc, char **argv)
{
	int iterations = (int)test_env_long("SHMPIPE_DEAD_PEER_ITERATIONS", 50);

	if (argc > 1)
		iterations = atoi(argv[1]);
	if (iterations < 1)
		TEST_FAIL("bad iteration count");
	test_watchdog(100);
	sh = xp_shared(sizeof(*sh));

	test_reader_dies_writer_asleep();
	reader_dies_midstream(1 << 20, 5000, 1, 1);
	reader_dies_midstream(4099, 2000, 2, 1);
	test_writer_dies_reader_asleep();
	writer_dies_midstream(65536, KILL_WHILE_READING, 5000, 0, 3, 1);
	writer_dies_midstream(65536, KILL_RING_FULL, 20000, 0, 4, 1);
	writer_dies_midstream((size_t)16 << 20, KILL_RING_FILLING, 2000, 0, 5, 1);
	test_dead_before_attach();
	test_records(20);
	test_many_kills(iterations);
	test_nonblocking();
	return T_PASS;
}

int main(int argc, char **argv)
{
	return xp_main("dead_peer", body, argc, argv);
}
