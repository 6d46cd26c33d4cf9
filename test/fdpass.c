/* SPDX-License-Identifier: MIT */
/*
 * Description: anonymous pipes (name NULL) handed to another process by
 * descriptor. A forked child takes the other end with *_open_fd on the
 * inherited descriptor; an unrelated process receives it over a UNIX socket
 * (shmpipe_send_fd / shmpipe_recv_fd, close-on-exec) and may close its copy
 * at once. Data is checked byte for byte, both directions. Both sides wait
 * on a live peer for several liveness periods without taking it for dead
 * (the inherited or received descriptor is the peer's open file description,
 * so the receiving end needs one of its own), and a peer killed after
 * handing over its descriptor is noticed (-ECONNRESET, -EPIPE). An end is
 * taken once here too (-EBUSY). shmpipe_recv_fd on a message without a
 * descriptor is -EBADMSG; bad arguments give -EINVAL, -EBADF, -ENOTSOCK,
 * and a descriptor of something that is not a shmpipe -EPROTO, without
 * leaking a descriptor; sending to a closed socket is -EPIPE, not SIGPIPE
 * (SIGPIPE keeps its default action here, which would kill the test).
 */
#include <sys/socket.h>

#include "xproc.h"

#define SEED 0xfd5

static void socket_pair(int sv[2])
{
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void assert_cloexec(int fd)
{
	int flags = fcntl(fd, F_GETFD);

	ASSERT_GE(flags, 0);
	ASSERT_TRUE(flags & FD_CLOEXEC);
}

/*
 * fork: the parent creates the write end, the child takes the read end on
 * the inherited descriptor. The child first waits ~400 ms on an empty ring,
 * then the parent ~400 ms on a full one: live peers both times.
 */
static void test_fork_writer_first(void)
{
	shmpipe_options o = test_opts(4099);
	uint64_t total = 8 << 20;
	shmpipe_writer *w;
	uint8_t pre[100];
	int64_t t0, ms;
	pid_t pid;
	int fd;

	ASSERT_OK(shmpipe_writer_create(&w, NULL, &o));
	fd = shmpipe_writer_fd(w);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(shmpipe_writer_fd(w), fd);
	pid = xp_fork();
	if (pid == 0) {
		shmpipe_reader *r, *r2 = NULL;
		shmpipe_writer *w2 = NULL;
		uint8_t buf[100];

		ASSERT_OK(shmpipe_reader_open_fd(&r, fd));
		ASSERT_ERR(shmpipe_reader_open_fd(&r2, fd), -EBUSY);
		ASSERT_ERR(shmpipe_writer_open_fd(&w2, fd), -EBUSY);
		ASSERT_PTR_EQ(r2, NULL);
		ASSERT_PTR_EQ(w2, NULL);
		test_read_exact(r, buf, sizeof(buf)); /* waits ~400 ms */
		ASSERT_PATTERN(buf, sizeof(buf), SEED, 0);
		test_sleep_ms(400); /* the writer waits on a full ring */
		xp_read_stream(r, total, SEED + 1);
		ASSERT_OK(shmpipe_reader_close(r));
		_exit(T_PASS);
	}
	test_sleep_ms(400);
	test_pattern_fill(pre, sizeof(pre), SEED, 0);
	ASSERT_EQ(shmpipe_write(w, pre, sizeof(pre)), sizeof(pre));
	t0 = test_now_ns();
	xp_write_stream(w, total, SEED + 1);
	ms = (test_now_ns() - t0) / 1000000;
	ASSERT_GE(ms, 250); /* it did wait for the sleeping reader */
	ASSERT_OK(shmpipe_writer_close(w));
	XP_ASSERT_EXIT(xp_wait(pid, 30000), T_PASS);
	printf("fork, reader on the inherited descriptor: ok\n");
}

/* The same the other way: the parent creates the read end. */
static void test_fork_reader_first(void)
{
	shmpipe_options o = test_opts(65536);
	uint64_t total = 8 << 20;
	shmpipe_reader *r;
	pid_t pid;
	int fd;

	ASSERT_OK(shmpipe_reader_create(&r, NULL, &o));
	fd = shmpipe_reader_fd(r);
	ASSERT_GE(fd, 0);
	pid = xp_fork();
	if (pid == 0) {
		shmpipe_writer *w, *w2 = NULL;

		ASSERT_OK(shmpipe_writer_open_fd(&w, fd));
		ASSERT_ERR(shmpipe_writer_open_fd(&w2, fd), -EBUSY);
		test_sleep_ms(400); /* the reader waits on an empty ring */
		xp_write_stream(w, total, SEED + 2);
		ASSERT_OK(shmpipe_writer_close(w));
		_exit(T_PASS);
	}
	xp_read_stream(r, total, SEED + 2);
	ASSERT_OK(shmpipe_reader_close(r));
	XP_ASSERT_EXIT(xp_wait(pid, 30000), T_PASS);
	printf("fork, writer on the inherited descriptor: ok\n");
}

/*
 * Over a UNIX socket, between processes that share nothing else: process A
 * (a child forked before any pipe exists) creates one end and sends its
 * descriptor; we receive it, take the other end and close the descriptor.
 */
static void test_socket(int a_writes)
{
	shmpipe_options o = test_opts(65536);
	uint64_t total = 8 << 20, seed = SEED + 3 + (uint64_t)a_writes;
	int sv[2], fd, nfd;
	pid_t pid;

	socket_pair(sv);
	pid = xp_fork();
	if (pid == 0) {
		close(sv[1]);
		if (a_writes) {
			shmpipe_writer *w;
			ASSERT_OK(shmpipe_writer_create(&w, NULL, &o));
			ASSERT_OK(shmpipe_send_fd(sv[0], shmpipe_writer_fd(w)));
			xp_write_stream(w, total, seed);
			ASSERT_OK(shmpipe_writer_close(w));
		} else {
			shmpipe_reader *r;
			ASSERT_OK(shmpipe_reader_create(&r, NULL, &o));
			ASSERT_OK(shmpipe_send_fd(sv[0], shmpipe_reader_fd(r)));
			xp_read_stream(r, total, seed);
			ASSERT_OK(shmpipe_reader_close(r));
		}
		_exit(T_PASS);
	}
	close(sv[0]);
	nfd = test_count_fds();
	fd = shmpipe_recv_fd(sv[1]);
	ASSERT_GE(fd, 0);
	assert_cloexec(fd);
	if (a_writes) {
		shmpipe_reader *r;
		ASSERT_OK(shmpipe_reader_open_fd(&r, fd));
		ASSERT_EQ(close(fd), 0);
		xp_read_stream(r, total, seed);
		ASSERT_OK(shmpipe_reader_close(r));
	} else {
		shmpipe_writer *w;
		ASSERT_OK(shmpipe_writer_open_fd(&w, fd));
		ASSERT_EQ(close(fd), 0);
		xp_write_stream(w, total, seed);
		ASSERT_OK(shmpipe_writer_close(w));
	}
	XP_ASSERT_EXIT(xp_wait(pid, 30000), T_PASS);
	close(sv[1]);
	ASSERT_EQ(test_count_fds(), nfd - 1);
	printf("over a UNIX socket, the sender %s: ok\n", a_writes ? "writes" : "reads");
}

/*
 * The sender dies after handing over its end: the receiver, having closed
 * its copy of the descriptor, notices (its end does not keep the dead
 * peer's open file description, and so its lock, alive).
 */
static void test_socket_peer_dies(int a_writes)
{
	shmpipe_options o = test_opts(4096);
	struct xp_chan up;
	int sv[2], fd, status;
	uint8_t buf[4096];
	int64_t t_kill, ms;
	ssize_t ret;
	pid_t pid;

	socket_pair(sv);
	xp_chan_open(&up);
	pid = xp_fork();
	if (pid == 0) {
		close(sv[1]);
		if (a_writes) {
			shmpipe_writer *w;
			ASSERT_OK(shmpipe_writer_create(&w, NULL, &o));
			ASSERT_OK(shmpipe_send_fd(sv[0], shmpipe_writer_fd(w)));
			test_pattern_fill(buf, 1000, SEED, 0);
			ASSERT_EQ(shmpipe_write(w, buf, 1000), 1000);
		} else {
			shmpipe_reader *r;
			ASSERT_OK(shmpipe_reader_create(&r, NULL, &o));
			ASSERT_OK(shmpipe_send_fd(sv[0], shmpipe_reader_fd(r)));
		}
		xp_send(&up, 'k');
		for (;;)
			pause();
	}
	close(sv[0]);
	fd = shmpipe_recv_fd(sv[1]);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(xp_recv(&up, 10000), 'k');
	if (a_writes) {
		shmpipe_reader *r;
		ASSERT_OK(shmpipe_reader_open_fd(&r, fd));
		ASSERT_EQ(close(fd), 0);
		test_read_exact(r, buf, 1000);
		ASSERT_PATTERN(buf, 1000, SEED, 0);
		/* A bound instead of a hang if the death goes unnoticed. */
		ASSERT_OK(shmpipe_reader_set_timeout(r, 3000 * TEST_SLOW));
		t_kill = test_now_ns();
		ASSERT_EQ(kill(pid, SIGKILL), 0);
		ret = shmpipe_read(r, buf, sizeof(buf));
		ms = (test_now_ns() - t_kill) / 1000000;
		ASSERT_ERR(ret, -ECONNRESET);
		ASSERT_OK(shmpipe_reader_close(r));
	} else {
		shmpipe_writer *w;
		ASSERT_OK(shmpipe_writer_open_fd(&w, fd));
		ASSERT_EQ(close(fd), 0);
		ASSERT_EQ(shmpipe_write(w, buf, sizeof(buf)), sizeof(buf));
		ASSERT_OK(shmpipe_writer_set_timeout(w, 3000 * TEST_SLOW));
		t_kill = test_now_ns();
		ASSERT_EQ(kill(pid, SIGKILL), 0);
		ret = shmpipe_write(w, buf, 1);
		ms = (test_now_ns() - t_kill) / 1000000;
		ASSERT_ERR(ret, -EPIPE);
		ASSERT_OK(shmpipe_writer_close(w));
	}
	status = xp_wait(pid, 10000);
	XP_ASSERT_KILLED(status, SIGKILL);
	printf("the sender (%s) killed after handing over its end: %s after %" PRId64 " ms\n",
	       a_writes ? "writer" : "reader", a_writes ? "-ECONNRESET" : "-EPIPE", ms);
	ASSERT_LT(ms, 1000);
	close(sv[1]);
	xp_chan_close(&up);
}

/* Both ends in this process, through the descriptor: a pipe(2) by hand. */
static void test_same_process(void)
{
	char name[XP_NAME_MAX];
	shmpipe_reader *r, *r2 = NULL;
	shmpipe_writer *w, *w2 = NULL;
	char buf[8];

	ASSERT_OK(shmpipe_reader_create(&r, NULL, NULL));
	ASSERT_OK(shmpipe_writer_open_fd(&w, shmpipe_reader_fd(r)));
	ASSERT_ERR(shmpipe_writer_open_fd(&w2, shmpipe_reader_fd(r)), -EBUSY);
	ASSERT_ERR(shmpipe_reader_open_fd(&r2, shmpipe_writer_fd(w)), -EBUSY);
	ASSERT_EQ(shmpipe_write(w, "fdpass", 6), 6);
	test_read_exact(r, buf, 6);
	ASSERT_MEM_EQ(buf, "fdpass", 6);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), 0);
	ASSERT_OK(shmpipe_reader_close(r));

	/* A named pipe's descriptor serves as well. */
	xp_name(name, sizeof(name), 1);
	ASSERT_OK(shmpipe_writer_create(&w, name, NULL));
	ASSERT_OK(shmpipe_unlink(name));
	ASSERT_OK(shmpipe_reader_open_fd(&r, shmpipe_writer_fd(w)));
	ASSERT_EQ(shmpipe_write(w, "named", 5), 5);
	test_read_exact(r, buf, 5);
	ASSERT_MEM_EQ(buf, "named", 5);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_ERR(shmpipe_write(w, "x", 1), -EPIPE);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_PTR_EQ(w2, NULL);
	ASSERT_PTR_EQ(r2, NULL);
	printf("both ends in one process by descriptor: ok\n");
}

#define ASSERT_BADF_OR_INVAL(expr)                                                                 \
	do {                                                                                       \
		int b_ = (expr);                                                                   \
		if (b_ != -EBADF && b_ != -EINVAL)                                                 \
			TEST_FAIL("%s = %d (%s), want -EBADF or -EINVAL", #expr, b_,               \
				  shmpipe_strerror(b_));                                           \
	} while (0)

static void test_bad_args(void)
{
	shmpipe_reader *r = NULL;
	shmpipe_writer *w = NULL, *wo;
	int sv[2], p[2], fd, closed_fd, nfd;
	char byte = 'x';

	socket_pair(sv);
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	ASSERT_OK(shmpipe_writer_create(&wo, NULL, NULL));
	fd = shmpipe_writer_fd(wo);
	closed_fd = dup(p[0]);
	ASSERT_GE(closed_fd, 0);
	ASSERT_EQ(close(closed_fd), 0);
	nfd = test_count_fds();

	/* A message without a descriptor. */
	ASSERT_EQ(write(sv[0], &byte, 1), 1);
	ASSERT_ERR(shmpipe_recv_fd(sv[1]), -EBADMSG);
	ASSERT_EQ(test_count_fds(), nfd);

	ASSERT_ERR(shmpipe_writer_fd(NULL), -EINVAL);
	ASSERT_ERR(shmpipe_reader_fd(NULL), -EINVAL);
	ASSERT_ERR(shmpipe_reader_open_fd(NULL, fd), -EINVAL);
	ASSERT_ERR(shmpipe_writer_open_fd(NULL, fd), -EINVAL);
	ASSERT_BADF_OR_INVAL(shmpipe_reader_open_fd(&r, -1));
	ASSERT_BADF_OR_INVAL(shmpipe_writer_open_fd(&w, -1));
	ASSERT_ERR(shmpipe_reader_open_fd(&r, closed_fd), -EBADF);
	ASSERT_ERR(shmpipe_writer_open_fd(&w, closed_fd), -EBADF);

	/* A negative number is a bad argument (-EINVAL) or a bad descriptor. */
	ASSERT_BADF_OR_INVAL(shmpipe_send_fd(-1, fd));
	ASSERT_BADF_OR_INVAL(shmpipe_send_fd(sv[0], -1));
	ASSERT_BADF_OR_INVAL(shmpipe_recv_fd(-1));
	/* A descriptor number that is not open is -EBADF. */
	ASSERT_ERR(shmpipe_send_fd(closed_fd, fd), -EBADF);
	ASSERT_ERR(shmpipe_send_fd(sv[0], closed_fd), -EBADF);
	ASSERT_ERR(shmpipe_send_fd(p[1], fd), -ENOTSOCK);
	ASSERT_ERR(shmpipe_recv_fd(closed_fd), -EBADF);
	ASSERT_ERR(shmpipe_recv_fd(p[0]), -ENOTSOCK);
	ASSERT_EQ(test_count_fds(), nfd);

	/* Descriptors of things that are not shmpipes. */
	{
		int m = memfd_create("not-a-shmpipe", MFD_CLOEXEC);
		uint8_t junk[8192];

		ASSERT_GE(m, 0);
		nfd = test_count_fds();
		ASSERT_ERR(shmpipe_reader_open_fd(&r, m), -EPROTO); /* empty */
		ASSERT_ERR(shmpipe_writer_open_fd(&w, m), -EPROTO);
		ASSERT_EQ(ftruncate(m, 8192), 0); /* zeros */
		ASSERT_ERR(shmpipe_reader_open_fd(&r, m), -EPROTO);
		ASSERT_ERR(shmpipe_writer_open_fd(&w, m), -EPROTO);
		test_pattern_fill(junk, sizeof(junk), SEED, 0);
		ASSERT_EQ(pwrite(m, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
		ASSERT_ERR(shmpipe_reader_open_fd(&r, m), -EPROTO);
		ASSERT_ERR(shmpipe_writer_open_fd(&w, m), -EPROTO);
		ASSERT_EQ(test_count_fds(), nfd);
		close(m);
	}
	{
		/* A pipe(2): some clean error, nothing else. */
		int ret = shmpipe_reader_open_fd(&r, p[0]);
		ASSERT_LT(ret, 0);
		printf("shmpipe_reader_open_fd(a pipe(2)) = %d (%s)\n", ret, shmpipe_strerror(ret));
	}
	ASSERT_PTR_EQ(r, NULL);
	ASSERT_PTR_EQ(w, NULL);

	/* The peer has gone: -EPIPE, and no SIGPIPE. */
	close(sv[1]);
	ASSERT_ERR(shmpipe_send_fd(sv[0], fd), -EPIPE);
	/* And receiving from a socket whose peer has gone is an error too. */
	{
		int sv2[2], ret;
		socket_pair(sv2);
		close(sv2[0]);
		ret = shmpipe_recv_fd(sv2[1]);
		ASSERT_LT(ret, 0);
		printf("shmpipe_recv_fd at end of stream = %d (%s)\n", ret, shmpipe_strerror(ret));
		close(sv2[1]);
	}
	close(sv[0]);
	close(p[0]);
	close(p[1]);
	ASSERT_OK(shmpipe_writer_close(wo));
	printf("bad arguments: ok\n");
}

static int body(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	test_watchdog(50);
	test_bad_args();
	test_same_process();
	test_fork_writer_first();
	test_fork_reader_first();
	test_socket(1);
	test_socket(0);
	test_socket_peer_dies(1);
	test_socket_peer_dies(0);
	return T_PASS;
}

int main(int argc, char **argv)
{
	return xp_main("fdpass", body, argc, argv);
}
