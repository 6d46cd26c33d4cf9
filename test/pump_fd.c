/* SPDX-License-Identifier: MIT */
/*
 * Description: pumping between a pipe and file descriptors.
 * shmpipe_write_from_fd in a producer thread moves a 64 MiB temp file into
 * the ring and shmpipe_read_to_fd in a consumer thread drains it into
 * another temp file, which then holds exactly the same bytes (also through
 * an odd 4099-byte ring); each side first pumps with a max that is larger
 * than the ring and a multiple of nothing, and moves exactly that. Limits
 * are exact: max bytes are moved and no more is taken from the file (its
 * offset says so) or released from the ring (read_index says so); a full
 * ring with timeout 0 stops the fill pump with what fit; end of file and
 * end of stream end the pumps. A negative fd is -EINVAL; a closed fd, or
 * one open the wrong way, gives read(2)'s or write(2)'s -EBADF with nothing
 * committed or consumed. Draining into a pipe whose reader is gone gives
 * -EPIPE (SIGPIPE ignored) with nothing consumed; when the pipe's reader
 * leaves mid-way, what write(2) accepted is consumed and nothing beyond it;
 * with non-blocking pipes, exactly what write(2) accepted is consumed and
 * exactly what read(2) returned is committed, and -EAGAIN ends the pump.
 * Record mode over SOCK_SEQPACKET sockets: datagrams of many sizes (1 byte
 * to 64 KiB, or the ring's largest record) each become one record, and
 * read_to_fd sends each record as one datagram; the far side sees the same
 * boundaries and bytes; a max that falls inside a record stops the drain
 * before it, and the fill pump never cuts a datagram to fit a max.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "test.h"

#define CHUNK ((size_t)1 << 20)

static int temp_fd(void)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int fd;

	if (dir == NULL || *dir == '\0')
		dir = "/tmp";
	snprintf(path, sizeof(path), "%s/shmpipe-pump-XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0)
		TEST_SKIP("mkstemp in %s: %s", dir, strerror(errno));
	ASSERT_OK(unlink(path));
	return fd;
}

/* A temp file holding size bytes of pattern seed, its offset at 0. */
static int pattern_file(uint64_t size, uint64_t seed)
{
	int fd = temp_fd();
	uint8_t *buf = malloc(CHUNK);
	uint64_t off = 0;

	ASSERT_NOT_NULL(buf);
	while (off < size) {
		size_t n = size - off < CHUNK ? (size_t)(size - off) : CHUNK;

		test_pattern_fill(buf, n, seed, off);
		ASSERT_EQ(write(fd, buf, n), n);
		off += n;
	}
	ASSERT_EQ(lseek(fd, 0, SEEK_SET), 0);
	free(buf);
	return fd;
}

/* The file holds exactly size bytes of pattern seed. */
static void check_file(int fd, uint64_t size, uint64_t seed)
{
	struct stat st;
	uint8_t *buf = malloc(CHUNK);
	uint64_t off = 0;

	ASSERT_NOT_NULL(buf);
	ASSERT_OK(fstat(fd, &st));
	ASSERT_EQ(st.st_size, size);
	while (off < size) {
		size_t n = size - off < CHUNK ? (size_t)(size - off) : CHUNK;

		ASSERT_EQ(pread(fd, buf, n, (off_t)off), n);
		ASSERT_PATTERN(buf, n, seed, off);
		off += n;
	}
	free(buf);
}

static uint64_t fd_offset(int fd)
{
	off_t o = lseek(fd, 0, SEEK_CUR);

	ASSERT_GE(o, 0);
	return (uint64_t)o;
}

/* ---- a big file through the ring ------------------------------------ */

struct pump {
	shmpipe_writer *w;
	shmpipe_reader *r;
	int in, out;
	size_t max_in, max_out; /* a first pump with a limit, then the rest */
	ssize_t moved_in, moved_out;
};

static void *pump_in(void *arg)
{
	struct pump *p = arg;
	ssize_t n = shmpipe_write_from_fd(p->w, p->in, p->max_in);

	ASSERT_EQ(n, p->max_in);
	ASSERT_EQ(fd_offset(p->in), p->max_in);
	p->moved_in = shmpipe_write_from_fd(p->w, p->in, 0);
	if (p->moved_in >= 0)
		p->moved_in += n;
	ASSERT_OK(shmpipe_writer_close(p->w));
	return NULL;
}

static void *pump_out(void *arg)
{
	struct pump *p = arg;
	ssize_t n = shmpipe_read_to_fd(p->r, p->out, p->max_out);

	ASSERT_EQ(n, p->max_out);
	ASSERT_EQ(fd_offset(p->out), p->max_out);
	p->moved_out = shmpipe_read_to_fd(p->r, p->out, 0);
	if (p->moved_out >= 0)
		p->moved_out += n;
	return NULL;
}

static void test_file_to_file(size_t cap, uint64_t size)
{
	struct pump p;
	shmpipe_stats s;
	int64_t t0;

	memset(&p, 0, sizeof(p));
	p.in = pattern_file(size, 11 + cap);
	p.out = temp_fd();
	/* Limits that are not multiples of anything, larger than the ring. */
	p.max_in = (size_t)(size / 3 + 7);
	p.max_out = (size_t)(size / 2 + 13);
	test_pair(&p.w, &p.r, cap);
	t0 = test_now_ms();
	test_two_threads(pump_in, &p, pump_out, &p);
	ASSERT_EQ(p.moved_in, size);
	ASSERT_EQ(p.moved_out, size);
	ASSERT_EQ(fd_offset(p.in), size);
	s = test_rstats(p.r);
	ASSERT_EQ(s.write_index, size);
	ASSERT_EQ(s.read_index, size);
	printf("capacity %zu: %" PRIu64 " MiB file to file in %" PRId64 " ms, %" PRIu64
	       " commits, %" PRIu64 " consumes\n",
	       cap, size >> 20, test_now_ms() - t0, s.produced, s.consumed);
	check_file(p.out, size, 11 + cap);
	/* The pumps stay at the end: nothing more either way. */
	ASSERT_EQ(shmpipe_read_to_fd(p.r, p.out, 0), 0);
	ASSERT_OK(shmpipe_reader_close(p.r));
	close(p.in);
	close(p.out);
}

/* ---- exact limits and ends ------------------------------------------ */

static void test_limits(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	int in = pattern_file(10000, 21);
	int out = temp_fd();

	test_pair(&w, &r, 65536);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));

	/* Nothing there yet: the drain has nothing to move. */
	ASSERT_ERR(shmpipe_read_to_fd(r, out, 0), -EAGAIN);

	ASSERT_EQ(shmpipe_write_from_fd(w, in, 1000), 1000);
	ASSERT_EQ(fd_offset(in), 1000);
	ASSERT_EQ(shmpipe_write_from_fd(w, in, 1), 1);
	ASSERT_EQ(fd_offset(in), 1001);
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, 1001);

	ASSERT_EQ(shmpipe_read_to_fd(r, out, 300), 300);
	ASSERT_EQ(fd_offset(out), 300);
	ASSERT_EQ(shmpipe_read_to_fd(r, out, 1), 1);
	s = test_rstats(r);
	ASSERT_EQ(s.read_index, 301);
	/* All that is there, then -EAGAIN from the peek ends the pump. */
	ASSERT_EQ(shmpipe_read_to_fd(r, out, 0), 700);
	ASSERT_EQ(fd_offset(out), 1001);

	/* The rest of the file: up to end of file, then 0 at end of file. */
	ASSERT_EQ(shmpipe_write_from_fd(w, in, 1 << 30), 8999);
	ASSERT_EQ(fd_offset(in), 10000);
	ASSERT_EQ(shmpipe_write_from_fd(w, in, 0), 0);
	ASSERT_EQ(shmpipe_write_from_fd(w, in, 5), 0);
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, 10000);

	/* The writer closes: the drain goes to end of stream, then 0. */
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_EQ(shmpipe_read_to_fd(r, out, 8000), 8000);
	ASSERT_EQ(shmpipe_read_to_fd(r, out, 0), 999);
	ASSERT_EQ(shmpipe_read_to_fd(r, out, 0), 0);
	ASSERT_EQ(shmpipe_read_to_fd(r, out, 10), 0);
	check_file(out, 10000, 21);
	ASSERT_OK(shmpipe_reader_close(r));
	close(in);
	close(out);

	/* A full ring stops the pump with what fit, and no more is read. */
	in = pattern_file(10000, 22);
	test_pair(&w, &r, 4099);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_EQ(shmpipe_write_from_fd(w, in, 0), 4099);
	ASSERT_EQ(fd_offset(in), 4099);
	ASSERT_ERR(shmpipe_write_from_fd(w, in, 0), -EAGAIN);
	ASSERT_EQ(fd_offset(in), 4099);
	{
		uint8_t buf[4099];

		ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 4099);
		ASSERT_PATTERN(buf, 4099, 22, 0);
		ASSERT_EQ(shmpipe_write_from_fd(w, in, 0), 4099);
		ASSERT_EQ(shmpipe_read(r, buf, 1000), 1000);
		ASSERT_PATTERN(buf, 1000, 22, 4099);
		ASSERT_EQ(shmpipe_write_from_fd(w, in, 0), 1000);
		ASSERT_EQ(fd_offset(in), 9198);
		ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 4099);
		ASSERT_PATTERN(buf, 4099, 22, 5099);
		ASSERT_EQ(shmpipe_write_from_fd(w, in, 0), 802);
		ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 802);
		ASSERT_PATTERN(buf, 802, 22, 9198);
	}
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
	close(in);
}

/* ---- bad descriptors ------------------------------------------------ */

static void test_bad_fds(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	uint8_t buf[100];
	const void *rb;
	int rdonly = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int wronly = open("/dev/null", O_WRONLY | O_CLOEXEC);
	int closed;

	ASSERT_GE(rdonly, 0);
	ASSERT_GE(wronly, 0);
	test_pair(&w, &r, 4096);
	/* A number well above the others, so nothing here reuses it. */
	closed = fcntl(rdonly, F_DUPFD_CLOEXEC, 1000);
	ASSERT_GE(closed, 1000);
	ASSERT_OK(close(closed));
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));

	ASSERT_ERR(shmpipe_write_from_fd(NULL, rdonly, 0), -EINVAL);
	ASSERT_ERR(shmpipe_read_to_fd(NULL, wronly, 0), -EINVAL);
	ASSERT_ERR(shmpipe_write_from_fd(w, -1, 0), -EINVAL);
	ASSERT_ERR(shmpipe_write_from_fd(w, INT_MIN, 10), -EINVAL);
	ASSERT_ERR(shmpipe_read_to_fd(r, -1, 0), -EINVAL);
	ASSERT_ERR(shmpipe_read_to_fd(r, INT_MIN, 10), -EINVAL);

	/* read(2) fails: nothing is committed. */
	ASSERT_ERR(shmpipe_write_from_fd(w, closed, 0), -EBADF);
	ASSERT_ERR(shmpipe_write_from_fd(w, wronly, 0), -EBADF);
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, 0);
	ASSERT_EQ(s.produced, 0);
	ASSERT_ERR(shmpipe_peek(r, &rb), -EAGAIN);

	/* write(2) fails: nothing is consumed, the data stays readable. */
	test_pattern_fill(buf, sizeof(buf), 31, 0);
	ASSERT_EQ(shmpipe_write(w, buf, sizeof(buf)), sizeof(buf));
	ASSERT_ERR(shmpipe_read_to_fd(r, closed, 0), -EBADF);
	ASSERT_ERR(shmpipe_read_to_fd(r, rdonly, 0), -EBADF);
	s = test_rstats(r);
	ASSERT_EQ(s.read_index, 0);
	ASSERT_EQ(s.consumed, 0);
	memset(buf, 0, sizeof(buf));
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), sizeof(buf));
	ASSERT_PATTERN(buf, sizeof(buf), 31, 0);

	/* /dev/null: end of file at once, and a sink for everything. */
	ASSERT_EQ(shmpipe_write_from_fd(w, rdonly, 0), 0);
	ASSERT_EQ(shmpipe_write(w, buf, 50), 50);
	ASSERT_EQ(shmpipe_read_to_fd(r, wronly, 0), 50);

	/* The reader gone: the fill pump says -EPIPE and reads nothing. */
	{
		int in = pattern_file(100, 32);

		ASSERT_OK(shmpipe_reader_close(r));
		ASSERT_ERR(shmpipe_write_from_fd(w, in, 0), -EPIPE);
		ASSERT_EQ(fd_offset(in), 0);
		close(in);
	}
	ASSERT_OK(shmpipe_writer_close(w));
	close(rdonly);
	close(wronly);
}

/* ---- draining into a pipe whose reader leaves ----------------------- */

struct drain {
	shmpipe_reader *r;
	int fd;
	ssize_t ret;
};

static void *drain_main(void *arg)
{
	struct drain *d = arg;

	d->ret = shmpipe_read_to_fd(d->r, d->fd, 0);
	return NULL;
}

static void test_epipe(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	struct drain d;
	pthread_t t;
	uint8_t *buf = malloc(20000);
	const void *rb;
	int p[2];
	size_t got = 0;
	int pipe_size;

	ASSERT_NOT_NULL(buf);
	signal(SIGPIPE, SIG_IGN);

	/* The pipe's reader is already gone: -EPIPE, nothing consumed. */
	test_pair(&w, &r, 65536);
	test_pattern_fill(buf, 20000, 41, 0);
	ASSERT_EQ(shmpipe_write(w, buf, 20000), 20000);
	ASSERT_OK(pipe(p));
	ASSERT_OK(close(p[0]));
	ASSERT_ERR(shmpipe_read_to_fd(r, p[1], 0), -EPIPE);
	s = test_rstats(r);
	ASSERT_EQ(s.read_index, 0);
	ASSERT_EQ(shmpipe_peek(r, &rb), 20000);
	ASSERT_PATTERN(rb, 20000, 41, 0);
	ASSERT_OK(close(p[1]));

	/*
	 * The pipe's reader takes 10000 bytes and leaves while the drain is
	 * blocked on the full pipe: the drain returns what write(2) accepted
	 * (10000, and at most a pipe buffer more), exactly that much is
	 * consumed, and the rest is still in the ring.
	 */
	ASSERT_OK(pipe(p));
	pipe_size = fcntl(p[1], F_SETPIPE_SZ, 4096);
	if (pipe_size < 0)
		pipe_size = fcntl(p[1], F_GETPIPE_SZ);
	ASSERT_GT(pipe_size, 0);
	ASSERT_LT(pipe_size, 10000);
	d.r = r;
	d.fd = p[1];
	d.ret = 0;
	ASSERT_OK(pthread_create(&t, NULL, drain_main, &d));
	while (got < 10000) {
		ssize_t n = read(p[0], buf + got, 10000 - got);

		ASSERT_GT(n, 0);
		got += (size_t)n;
	}
	ASSERT_PATTERN(buf, 10000, 41, 0);
	/* Let the drain fill the pipe and block, then leave. */
	test_sleep_ms(20);
	ASSERT_OK(close(p[0]));
	ASSERT_OK(pthread_join(t, NULL));
	printf("pipe of %d bytes, reader left after 10000: drain returned %zd\n", pipe_size, d.ret);
	ASSERT_GE(d.ret, 10000);
	ASSERT_LE(d.ret, 10000 + pipe_size);
	s = test_rstats(r);
	ASSERT_EQ(s.read_index, d.ret);
	ASSERT_EQ(shmpipe_peek(r, &rb), 20000 - d.ret);
	ASSERT_PATTERN(rb, (size_t)(20000 - d.ret), 41, (uint64_t)d.ret);
	/* And once more: -EPIPE, nothing consumed. */
	ASSERT_ERR(shmpipe_read_to_fd(r, p[1], 0), -EPIPE);
	s = test_rstats(r);
	ASSERT_EQ(s.read_index, d.ret);
	ASSERT_OK(close(p[1]));
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
	free(buf);
}

/*
 * Non-blocking descriptors: exactly what write(2) accepted is consumed (it
 * is all in the pipe, and nothing else), exactly what read(2) returned is
 * committed, and -EAGAIN from the descriptor ends the pump.
 */
static void test_nonblocking(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	uint8_t *buf = malloc(20000);
	const void *rb;
	int p[2];
	ssize_t moved, in_pipe = 0, n;

	ASSERT_NOT_NULL(buf);
	test_pair(&w, &r, 65536);
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(pipe2(p, O_NONBLOCK | O_CLOEXEC));
	fcntl(p[1], F_SETPIPE_SZ, 4096);

	/* Ring -> pipe: the pipe takes what it has room for. */
	test_pattern_fill(buf, 20000, 71, 0);
	ASSERT_EQ(shmpipe_write(w, buf, 20000), 20000);
	moved = shmpipe_read_to_fd(r, p[1], 0);
	ASSERT_GT(moved, 0);
	ASSERT_LT(moved, 20000);
	while ((n = read(p[0], buf + in_pipe, 20000 - (size_t)in_pipe)) > 0)
		in_pipe += n;
	ASSERT_EQ(n, -1);
	ASSERT_EQ(errno, EAGAIN);
	ASSERT_EQ(in_pipe, moved);
	ASSERT_PATTERN(buf, (size_t)in_pipe, 71, 0);
	s = test_rstats(r);
	ASSERT_EQ(s.read_index, moved);
	ASSERT_EQ(shmpipe_peek(r, &rb), 20000 - moved);
	ASSERT_PATTERN(rb, (size_t)(20000 - moved), 71, (uint64_t)moved);
	/* The pipe full again: -EAGAIN from write(2), nothing consumed. */
	while (write(p[1], buf, 4096) > 0)
		;
	ASSERT_ERR(shmpipe_read_to_fd(r, p[1], 0), -EAGAIN);
	s = test_rstats(r);
	ASSERT_EQ(s.read_index, moved);
	while (read(p[0], buf, 20000) > 0)
		;
	ASSERT_EQ(shmpipe_read(r, buf, 20000), 20000 - moved);
	ASSERT_PATTERN(buf, (size_t)(20000 - moved), 71, (uint64_t)moved);

	/* Pipe -> ring: an empty pipe is -EAGAIN with nothing committed. */
	s = test_wstats(w);
	ASSERT_ERR(shmpipe_write_from_fd(w, p[0], 0), -EAGAIN);
	ASSERT_EQ(test_wstats(w).write_index, s.write_index);
	ASSERT_EQ(test_wstats(w).produced, s.produced);
	/* 3000 bytes in it: exactly those, then -EAGAIN ends the pump. */
	test_pattern_fill(buf, 3000, 72, 0);
	ASSERT_EQ(write(p[1], buf, 3000), 3000);
	ASSERT_EQ(shmpipe_write_from_fd(w, p[0], 0), 3000);
	ASSERT_EQ(test_wstats(w).write_index, s.write_index + 3000);
	memset(buf, 0, 3000);
	ASSERT_EQ(shmpipe_read(r, buf, 20000), 3000);
	ASSERT_PATTERN(buf, 3000, 72, 0);

	ASSERT_OK(close(p[0]));
	ASSERT_OK(close(p[1]));
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
	free(buf);
}

/* ---- record mode over SOCK_SEQPACKET -------------------------------- */

struct dgram {
	shmpipe_writer *w;
	shmpipe_reader *r;
	int src[2];  /* sender -> pump_in */
	int sink[2]; /* pump_out -> checker */
	uint64_t count;
	uint64_t maxlen;
	uint64_t seed;
	ssize_t moved_in, moved_out;
};

/* Datagram seq's length: a few edge sizes first, then a mix of small and big. */
static uint64_t dgram_len(const struct dgram *c, uint64_t seq)
{
	const uint64_t edge[] = {1, c->maxlen, c->maxlen - 1, 8, 9, 16, 17, 4096, 4097};
	uint64_t x = test_mix64(c->seed ^ (seq * 0x9e3779b97f4a7c15ull));

	if (seq < sizeof(edge) / sizeof(edge[0]) && edge[seq] <= c->maxlen)
		return edge[seq];
	switch (x % 3) {
	case 0:
		return 1 + (x >> 8) % 64;
	case 1:
		return 1 + (x >> 8) % 2048;
	default:
		return 1 + (x >> 8) % c->maxlen;
	}
}

static void *dgram_sender(void *arg)
{
	struct dgram *c = arg;
	uint8_t *buf = malloc(c->maxlen);

	ASSERT_NOT_NULL(buf);
	for (uint64_t seq = 0; seq < c->count; seq++) {
		uint64_t len = dgram_len(c, seq);

		test_record_fill(buf, seq, len);
		ASSERT_EQ(send(c->src[0], buf, len, 0), len);
	}
	ASSERT_OK(shutdown(c->src[0], SHUT_WR));
	free(buf);
	return NULL;
}

static void *dgram_pump_in(void *arg)
{
	struct dgram *c = arg;

	c->moved_in = shmpipe_write_from_fd(c->w, c->src[1], 0);
	ASSERT_OK(shmpipe_writer_close(c->w));
	return NULL;
}

static void *dgram_pump_out(void *arg)
{
	struct dgram *c = arg;

	c->moved_out = shmpipe_read_to_fd(c->r, c->sink[0], 0);
	ASSERT_OK(shutdown(c->sink[0], SHUT_WR));
	return NULL;
}

static void seqpair(int sv[2], size_t maxlen)
{
	int sz = (int)(4 * maxlen + 65536);

	ASSERT_OK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
	/* Room for a few of the biggest datagrams; best effort. */
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
}

static void test_seqpacket(size_t cap, uint64_t count)
{
	shmpipe_options o = test_opts(cap);
	struct dgram c;
	pthread_t ts, ti, to;
	shmpipe_stats s;
	uint8_t *buf;
	uint64_t seq, total = 0;

	memset(&c, 0, sizeof(c));
	c.count = count;
	c.seed = cap;
	c.maxlen = SHMPIPE_RECORD_MAX(cap) < 65536 ? SHMPIPE_RECORD_MAX(cap) : 65536;
	o.flags = SHMPIPE_RECORDS;
	ASSERT_OK(shmpipe_pair(&c.w, &c.r, &o));
	seqpair(c.src, c.maxlen);
	seqpair(c.sink, c.maxlen);
	buf = malloc(c.maxlen + 4096);
	ASSERT_NOT_NULL(buf);

	ASSERT_OK(pthread_create(&to, NULL, dgram_pump_out, &c));
	ASSERT_OK(pthread_create(&ti, NULL, dgram_pump_in, &c));
	ASSERT_OK(pthread_create(&ts, NULL, dgram_sender, &c));
	for (seq = 0;; seq++) {
		/* A bigger buffer than any datagram: a merged one would show. */
		ssize_t n = recv(c.sink[1], buf, c.maxlen + 4096, 0);
		uint64_t len;

		ASSERT_GE(n, 0);
		if (n == 0)
			break;
		ASSERT_LT(seq, count);
		len = dgram_len(&c, seq);
		ASSERT_EQ(n, len);
		test_record_check(buf, seq, len);
		total += len;
	}
	ASSERT_EQ(seq, count);
	ASSERT_OK(pthread_join(ts, NULL));
	ASSERT_OK(pthread_join(ti, NULL));
	ASSERT_OK(pthread_join(to, NULL));
	ASSERT_EQ(c.moved_in, total);
	ASSERT_EQ(c.moved_out, total);
	s = test_rstats(c.r);
	ASSERT_EQ(s.produced, count);
	ASSERT_EQ(s.consumed, count);
	printf("records, capacity %zu: %" PRIu64 " datagrams of 1..%" PRIu64 " bytes, %" PRIu64
	       " bytes\n",
	       cap, count, c.maxlen, total);
	ASSERT_OK(shmpipe_reader_close(c.r));
	close(c.src[0]);
	close(c.src[1]);
	close(c.sink[0]);
	close(c.sink[1]);
	free(buf);
}

/* read_to_fd with a max inside a record stops before that record. */
static void test_seqpacket_max(void)
{
	shmpipe_options o = test_opts(4096);
	shmpipe_writer *w;
	shmpipe_reader *r;
	uint8_t buf[256];
	int sv[2];

	o.flags = SHMPIPE_RECORDS;
	ASSERT_OK(shmpipe_pair(&w, &r, &o));
	ASSERT_OK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
	test_pattern_fill(buf, sizeof(buf), 51, 0);
	ASSERT_EQ(shmpipe_write(w, buf, 10), 10);
	ASSERT_EQ(shmpipe_write(w, buf + 10, 20), 20);
	ASSERT_EQ(shmpipe_write(w, buf + 30, 30), 30);
	ASSERT_OK(shmpipe_writer_close(w));

	ASSERT_EQ(shmpipe_read_to_fd(r, sv[0], 35), 30);
	ASSERT_EQ(shmpipe_read_to_fd(r, sv[0], 0), 30);
	ASSERT_EQ(shmpipe_read_to_fd(r, sv[0], 0), 0);
	ASSERT_OK(shutdown(sv[0], SHUT_WR));
	{
		const size_t want[] = {10, 20, 30};
		uint8_t got[256];
		size_t off = 0;

		for (int i = 0; i < 3; i++) {
			ASSERT_EQ(recv(sv[1], got, sizeof(got), 0), want[i]);
			ASSERT_PATTERN(got, want[i], 51, off);
			off += want[i];
		}
		ASSERT_EQ(recv(sv[1], got, sizeof(got), 0), 0);
	}
	ASSERT_OK(shmpipe_reader_close(r));
	close(sv[0]);
	close(sv[1]);
}

/*
 * Record mode with a max below the next datagram's size: the header
 * promises that datagrams of up to 64 KiB (or the largest record) arrive
 * whole, and a record is all or nothing. So the pump may stop before the
 * datagram (it stays in the socket) or take it whole, but it must not cut
 * it to max bytes and drop the rest.
 */
static void test_seqpacket_max_in(void)
{
	shmpipe_options o = test_opts(65536);
	shmpipe_writer *w;
	shmpipe_reader *r;
	uint8_t buf[2000];
	ssize_t n;
	int sv[2];

	o.flags = SHMPIPE_RECORDS;
	ASSERT_OK(shmpipe_pair(&w, &r, &o));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	ASSERT_OK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
	test_pattern_fill(buf, 1000, 61, 0);
	ASSERT_EQ(send(sv[0], buf, 1000, 0), 1000);
	ASSERT_OK(shutdown(sv[0], SHUT_WR));

	n = shmpipe_write_from_fd(w, sv[1], 100);
	if (n > 0) {
		/* Taken: then whole. */
		ASSERT_EQ(n, 1000);
		memset(buf, 0, sizeof(buf));
		ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 1000);
		ASSERT_PATTERN(buf, 1000, 61, 0);
	} else {
		/* Left: then still in the socket, whole. */
		ASSERT_EQ(n, 0);
		ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), -EAGAIN);
		memset(buf, 0, sizeof(buf));
		ASSERT_EQ(recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT), 1000);
		ASSERT_PATTERN(buf, 1000, 61, 0);
	}
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	test_watchdog(90);
	test_bad_fds();
	test_limits();
	test_epipe();
	test_nonblocking();
	test_seqpacket_max();
	test_file_to_file((size_t)1 << 20, (uint64_t)64 << 20);
	test_file_to_file(4099, (uint64_t)8 << 20);
	test_seqpacket((size_t)1 << 20, 3000);
	test_seqpacket(4096 + 100, 20000);
	test_seqpacket_max_in();
	return T_PASS;
}
