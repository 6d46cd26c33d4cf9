/* SPDX-License-Identifier: MIT */
/*
 * Description: strangers at the rendezvous of a named pipe. The end that
 * creates a named pipe listens on an abstract UNIX socket whose name anyone
 * on the machine can read (/proc/net/unix) and connect to. Whatever they
 * send, they must not meet the end in the peer's place, stall its calls,
 * leak its descriptors, or keep the real peer from meeting it; when they
 * fill the socket's backlog, an opener fails cleanly, takes nothing, and
 * can open later.
 */
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/wait.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "xproc.h"
#include "layout.h"

#define CAP  4096
#define SEED 0x5e1d

static int name_k;

/* The creating end's rendezvous address, read from the header as anyone can. */
static socklen_t rendezvous_addr(const char *name, struct sockaddr_un *a)
{
	static const char hex[] = "0123456789abcdef";
	int fd = shm_open(name, O_RDONLY, 0);
	const struct shmpipe__hdr *h;
	size_t n = 1;

	ASSERT_GE(fd, 0);
	h = mmap(NULL, sizeof(*h), PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_TRUE(h != MAP_FAILED);
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	memcpy(a->sun_path + n, "shmpipe.", 8);
	n += 8;
	for (size_t i = 0; i < sizeof(h->token); i++) {
		a->sun_path[n++] = hex[h->token[i] >> 4];
		a->sun_path[n++] = hex[h->token[i] & 15];
	}
	munmap((void *)h, sizeof(*h));
	close(fd);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
}

/* A stranger's connection (non-blocking), or -1 if the backlog is full. */
static int stranger(const struct sockaddr_un *a, socklen_t alen)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	ASSERT_GE(s, 0);
	if (connect(s, (const struct sockaddr *)a, alen) == 0)
		return s;
	ASSERT_EQ(errno, EAGAIN);
	close(s);
	return -1;
}

/* Sends the rendezvous tag with n descriptors, as a peer's hello would. */
static void send_with_fds(int s, const int *fds, int n)
{
	char tag[8] = "shmpipe1";
	struct iovec iov = {.iov_base = tag, .iov_len = sizeof(tag)};
	char cbuf[CMSG_SPACE(sizeof(int) * 250)];
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n)};
	struct cmsghdr *c;

	ASSERT_LE(n, 250);
	memset(cbuf, 0, sizeof(cbuf));
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)n);
	ASSERT_EQ(sendmsg(s, &msg, MSG_NOSIGNAL), (ssize_t)sizeof(tag));
}

static int readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, ms) == 1;
}

/* One non-blocking read; it must come back at once, whatever waits at the door. */
static ssize_t quick_read(shmpipe_reader *r, void *buf, size_t len)
{
	int64_t t0 = test_now_ns();
	ssize_t n = shmpipe_read(r, buf, len);
	int64_t us = (test_now_ns() - t0) / 1000;

	if (us > 20000 * TEST_SLOW)
		TEST_FAIL("a non-blocking read took %" PRId64 " us with strangers at the door", us);
	return n;
}

/*
 * The real peer meets the creating end after all: bytes go both ways with
 * each side's descriptor turning readable when it should (so each has the
 * other's doorbell).
 */
static void check_met(shmpipe_reader *r, shmpipe_writer *w)
{
	uint8_t buf[CAP];
	int64_t deadline = test_now_ms() + 5000 * TEST_SLOW;
	uint64_t off = 0;

	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	/* The reader arms its descriptor; the writer's bytes must ring it. */
	while (quick_read(r, buf, sizeof(buf)) != -EAGAIN)
		ASSERT_LT(test_now_ms(), deadline);
	test_pattern_fill(buf, CAP, SEED, 0);
	ASSERT_EQ(shmpipe_write(w, buf, CAP), CAP); /* full */
	ASSERT_TRUE(readable(shmpipe_reader_pollfd(r), 2000 * TEST_SLOW));
	/* The writer arms its descriptor on the full ring; reading must ring it. */
	ASSERT_ERR(shmpipe_write(w, buf, 1), -EAGAIN);
	test_sleep_ms(5);
	ASSERT_EQ(quick_read(r, buf, 100), 100);
	ASSERT_PATTERN(buf, 100, SEED, off);
	off += 100;
	ASSERT_TRUE(readable(shmpipe_writer_pollfd(w), 2000 * TEST_SLOW));
	while (off < CAP) {
		ssize_t n = quick_read(r, buf, sizeof(buf));

		ASSERT_GT(n, 0);
		ASSERT_PATTERN(buf, (size_t)n, SEED, off);
		off += (uint64_t)n;
	}
}

/* Strangers connect and say nothing, before and after the peer opens. */
static void test_silent(void)
{
	shmpipe_options o = test_opts(CAP);
	char name[XP_NAME_MAX];
	struct sockaddr_un a;
	socklen_t alen;
	shmpipe_reader *r;
	shmpipe_writer *w;
	uint8_t buf[64];
	int s[12];

	xp_name(name, sizeof(name), ++name_k);
	ASSERT_OK(shmpipe_reader_create(&r, name, &o));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	alen = rendezvous_addr(name, &a);
	for (int i = 0; i < 6; i++)
		s[i] = stranger(&a, alen);
	for (int i = 0; i < 3; i++)
		ASSERT_ERR(quick_read(r, buf, sizeof(buf)), -EAGAIN);
	ASSERT_OK(shmpipe_writer_open(&w, name));
	for (int i = 6; i < 12; i++)
		s[i] = stranger(&a, alen);
	check_met(r, w);
	for (int i = 0; i < 12; i++)
		if (s[i] >= 0)
			close(s[i]);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_unlink(name));
	printf("strangers who say nothing: the peer meets the end; reads stay non-blocking\n");
}

/*
 * A stranger sends a hello in the peer's place: its own descriptor of the
 * object (read-only: all it can get) as proof, and a pipe of its own as the
 * doorbell. Before the peer holds its end, and while it does.
 */
static void test_forged(void)
{
	shmpipe_options o = test_opts(CAP);
	char name[XP_NAME_MAX];
	struct sockaddr_un a;
	socklen_t alen;
	shmpipe_writer *w;
	shmpipe_reader *r;
	uint8_t buf[64];
	int p[2], fds[3], s1, s2, before;

	xp_name(name, sizeof(name), ++name_k);
	ASSERT_OK(shmpipe_reader_create(&r, name, &o));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	alen = rendezvous_addr(name, &a);
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	fds[0] = shm_open(name, O_RDONLY | O_CLOEXEC, 0);
	ASSERT_GE(fds[0], 0);
	fds[1] = p[1];
	fds[2] = p[0];
	s1 = stranger(&a, alen);
	ASSERT_GE(s1, 0);
	send_with_fds(s1, fds, 3);
	before = test_count_fds();
	ASSERT_ERR(quick_read(r, buf, sizeof(buf)), -EAGAIN);
	ASSERT_EQ(test_count_fds(), before); /* what came was closed */
	/* The stranger's doorbell was not taken for the peer's: nobody rings it. */
	ASSERT_TRUE(!readable(p[0], 0));

	/* Now a stranger speaks while the real peer holds its end. */
	s2 = stranger(&a, alen);
	ASSERT_GE(s2, 0);
	ASSERT_OK(shmpipe_writer_open(&w, name));
	send_with_fds(s2, fds, 3);
	check_met(r, w);
	ASSERT_TRUE(!readable(p[0], 0));
	close(s1);
	close(s2);
	close(p[0]);
	close(p[1]);
	close(fds[0]);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_unlink(name));
	printf("a forged hello (read-only descriptor as proof), before and after the "
	       "peer opens: refused, the peer meets the end\n");
}

/* A stranger sends 200 descriptors at once: none of them stays with us. */
static void test_fd_flood(void)
{
	shmpipe_options o = test_opts(CAP);
	char name[XP_NAME_MAX];
	struct sockaddr_un a;
	socklen_t alen;
	shmpipe_reader *r;
	uint8_t buf[64];
	int fds[200], s, before;

	xp_name(name, sizeof(name), ++name_k);
	ASSERT_OK(shmpipe_reader_create(&r, name, &o));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	alen = rendezvous_addr(name, &a);
	for (int i = 0; i < 200; i++) {
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		ASSERT_GE(fds[i], 0);
	}
	s = stranger(&a, alen);
	ASSERT_GE(s, 0);
	send_with_fds(s, fds, 200);
	for (int i = 0; i < 200; i++)
		close(fds[i]);
	before = test_count_fds();
	ASSERT_ERR(quick_read(r, buf, sizeof(buf)), -EAGAIN);
	ASSERT_ERR(quick_read(r, buf, sizeof(buf)), -EAGAIN);
	ASSERT_EQ(test_count_fds(), before);
	close(s);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_unlink(name));
	printf("a hello with 200 descriptors: none kept\n");
}

/*
 * Strangers fill the backlog while the creating end does not run: an
 * opener fails with -EAGAIN in about half a second and takes nothing. Once
 * the creating end has run (and turned them away) the peer opens and meets.
 */
static void test_backlog(void)
{
	shmpipe_options o = test_opts(CAP);
	char name[XP_NAME_MAX];
	struct sockaddr_un a;
	socklen_t alen;
	shmpipe_reader *r;
	shmpipe_writer *w;
	shmpipe_info in;
	uint8_t buf[64];
	int s[128], n = 0;
	int64_t t0, ms;

	xp_name(name, sizeof(name), ++name_k);
	ASSERT_OK(shmpipe_reader_create(&r, name, &o));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	alen = rendezvous_addr(name, &a);
	while (n < 128 && (s[n] = stranger(&a, alen)) >= 0)
		n++;
	ASSERT_LT(n, 128);
	t0 = test_now_ns();
	ASSERT_ERR(shmpipe_writer_open(&w, name), -EAGAIN);
	ms = (test_now_ns() - t0) / 1000000;
	ASSERT_LT(ms, 3000 * TEST_SLOW);
	ASSERT_OK(shmpipe_inspect(name, &in));
	ASSERT_EQ(in.writer.state, SHMPIPE_END_ABSENT);
	/* The strangers go away; the creating end's calls clear the backlog. */
	for (int i = 0; i < n; i++)
		close(s[i]);
	for (int i = 0; i < 8; i++)
		ASSERT_ERR(quick_read(r, buf, sizeof(buf)), -EAGAIN);
	ASSERT_OK(shmpipe_writer_open(&w, name));
	check_met(r, w);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_unlink(name));
	printf("a full backlog (%d strangers): the opener fails with -EAGAIN after %" PRId64
	       " ms and takes nothing; it opens once the creating end has run\n",
	       n, ms);
}

/*
 * An opener in another network namespace (a container that shares
 * /dev/shm but not the network) cannot reach the abstract socket: it must
 * fail cleanly, taking nothing, rather than take an end that nothing can
 * ring. Skipped where a namespace cannot be made (not root).
 */
static void test_other_netns(void)
{
	shmpipe_options o = test_opts(CAP);
	char name[XP_NAME_MAX];
	shmpipe_reader *r;
	shmpipe_writer *w;
	shmpipe_info in;
	int status;
	pid_t pid;

	xp_name(name, sizeof(name), ++name_k);
	ASSERT_OK(shmpipe_reader_create(&r, name, &o));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		shmpipe_writer *cw;

		if (unshare(CLONE_NEWNET) < 0)
			_exit(77);
		_exit(shmpipe_writer_open(&cw, name) == -ECONNREFUSED ? 0 : 1);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77) {
		printf("another network namespace: skipped (unshare: not permitted)\n");
	} else {
		ASSERT_EQ(WEXITSTATUS(status), 0);
		ASSERT_OK(shmpipe_inspect(name, &in));
		ASSERT_EQ(in.writer.state, SHMPIPE_END_ABSENT);
		printf("an opener in another network namespace: -ECONNREFUSED, nothing taken\n");
	}
	ASSERT_OK(shmpipe_writer_open(&w, name));
	check_met(r, w);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_unlink(name));
}

static int body(int argc, char **argv)
{
	int fds0;

	(void)argc;
	(void)argv;
	test_watchdog(60);
	fds0 = test_count_fds();
	test_silent();
	test_forged();
	test_fd_flood();
	test_backlog();
	test_other_netns();
	ASSERT_EQ(test_count_fds(), fds0);
	return T_PASS;
}

int main(int argc, char **argv)
{
	return xp_main("rendezvous", body, argc, argv);
}
