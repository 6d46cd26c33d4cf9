/* SPDX-License-Identifier: MIT */
/*
 * Description: a process started with descriptors 0, 1 and 2 closed. Every
 * descriptor the library makes (shared memory, memfd, doorbell pipes,
 * eventfd, epoll, rendezvous sockets, reopened and received descriptors)
 * would take the lowest free number, and the process's standard input,
 * output or error would then be our object. None of them may be 0, 1 or 2:
 * after each step below all three are still closed, and the data still
 * goes through, every byte checked.
 *
 * Steps: shmpipe_pair; a named pipe created by one end and opened by name
 * by the other, which then meet (accept, hello and reply, with descriptors
 * received on both sides); shmpipe_writer_fd and shmpipe_reader_open_fd
 * (reopened through /proc); shmpipe_send_fd and shmpipe_recv_fd; the
 * descriptors of both ends; an interrupt; shmpipe_stat and shmpipe_inspect.
 */
#include <fcntl.h>
#include <sys/socket.h>

#include "xproc.h"

#define CAP  4096
#define SEED 0x57d0

static int saved_err = -1;

/* Fails with a message on the stderr we kept, after putting it back. */
static void check_closed(const char *after)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF) {
			dup2(saved_err, 2);
			TEST_FAIL("after %s: descriptor %d is open", after, fd);
		}
	}
}

static void check_fd(int fd, const char *what)
{
	if (fd < 3) {
		dup2(saved_err, 2);
		TEST_FAIL("%s = %d", what, fd);
	}
}

/* Moves [0, 3 * CAP) through the pipe, checked, with calls of timeout 0. */
static void move(shmpipe_writer *w, shmpipe_reader *r, const char *what)
{
	uint8_t buf[1000];
	uint64_t woff = 0, roff = 0, total = 3 * CAP;

	while (roff < total) {
		if (woff < total) {
			size_t k = (size_t)(total - woff);
			ssize_t n;

			if (k > sizeof(buf))
				k = sizeof(buf);

			test_pattern_fill(buf, k, SEED, woff);
			n = shmpipe_write(w, buf, k);
			if (n > 0)
				woff += (uint64_t)n;
			else if (n != -EAGAIN) {
				dup2(saved_err, 2);
				TEST_FAIL("%s: write = %zd", what, n);
			}
		}
		ssize_t n = shmpipe_read(r, buf, sizeof(buf));

		if (n > 0) {
			ASSERT_PATTERN(buf, (size_t)n, SEED, roff);
			roff += (uint64_t)n;
		} else if (n != -EAGAIN) {
			dup2(saved_err, 2);
			TEST_FAIL("%s: read = %zd", what, n);
		}
	}
	check_closed(what);
}

static void set_nonblocking(shmpipe_writer *w, shmpipe_reader *r)
{
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	check_fd(shmpipe_writer_pollfd(w), "shmpipe_writer_pollfd");
	check_fd(shmpipe_reader_pollfd(r), "shmpipe_reader_pollfd");
}

static int body(int argc, char **argv)
{
	char name[XP_NAME_MAX];
	shmpipe_options o = test_opts(CAP);
	shmpipe_writer *w, *w2;
	shmpipe_reader *r, *r2;
	shmpipe_stats st;
	shmpipe_info info;
	int sv[2], fd;

	(void)argc;
	(void)argv;
	test_watchdog(60);
	saved_err = fcntl(2, F_DUPFD_CLOEXEC, 10);
	ASSERT_GE(saved_err, 10);
	/* The test's own socket, made while the numbers are taken. */
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	close(0);
	close(1);
	close(2);
	check_closed("closing them");

	ASSERT_OK(shmpipe_pair(&w, &r, &o));
	check_closed("shmpipe_pair");
	set_nonblocking(w, r);
	move(w, r, "a pair");

	/* A named pipe: created, opened by name, met through the rendezvous. */
	xp_name(name, sizeof(name), 1);
	ASSERT_OK(shmpipe_writer_create(&w2, name, &o));
	check_closed("shmpipe_writer_create");
	ASSERT_OK(shmpipe_reader_open(&r2, name));
	check_closed("shmpipe_reader_open");
	set_nonblocking(w2, r2);
	move(w2, r2, "a named pipe");
	ASSERT_OK(shmpipe_stat(name, &st));
	check_closed("shmpipe_stat");
	ASSERT_OK(shmpipe_inspect(name, &info));
	check_closed("shmpipe_inspect");
	ASSERT_OK(shmpipe_writer_interrupt(w2));
	check_closed("shmpipe_writer_interrupt");
	ASSERT_OK(shmpipe_unlink(name));
	ASSERT_OK(shmpipe_writer_close(w2));
	ASSERT_OK(shmpipe_reader_close(r2));

	/* An anonymous pipe's descriptor, sent over a socket and opened. */
	ASSERT_OK(shmpipe_writer_create(&w2, NULL, &o));
	check_closed("shmpipe_writer_create(NULL)");
	ASSERT_OK(shmpipe_send_fd(sv[0], shmpipe_writer_fd(w2)));
	fd = shmpipe_recv_fd(sv[1]);
	check_fd(fd, "shmpipe_recv_fd");
	check_closed("shmpipe_recv_fd");
	ASSERT_OK(shmpipe_reader_open_fd(&r2, fd));
	check_closed("shmpipe_reader_open_fd");
	close(fd);
	set_nonblocking(w2, r2);
	move(w2, r2, "a passed pipe");
	ASSERT_OK(shmpipe_writer_close(w2));
	ASSERT_OK(shmpipe_reader_close(r2));
	close(sv[0]);
	close(sv[1]);

	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
	check_closed("closing every end");
	dup2(saved_err, 1);
	dup2(saved_err, 2);
	printf("ok - no descriptor of the library's is 0, 1 or 2\n");
	return T_PASS;
}

int main(int argc, char **argv)
{
	return xp_main("stdio_closed", body, argc, argv);
}
