/* SPDX-License-Identifier: MIT */
/*
 * Linux: the doorbell between two ends (a pipe), the descriptor an event loop
 * waits on (an epoll instance), and the rendezvous through which the ends of
 * a named or passed pipe exchange their doorbells (an abstract AF_UNIX
 * socket and SCM_RIGHTS). System calls are wrapped here and only here,
 * turning -1/errno into -errno.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "os.h"

int shmpipe__os_doorbell(int fds[2])
{
	int p[2];

	/*
	 * The write side is non-blocking, so a ring never blocks (a full
	 * doorbell is rung already); the read side blocks, so that an untimed
	 * wait is one read(2), which the kernel restarts under SA_RESTART.
	 * They are separate open file descriptions, so the flags are apart.
	 */
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	p[0] = shmpipe__os_high(p[0]);
	p[1] = shmpipe__os_high(p[1]);
	if (p[0] < 0 || p[1] < 0) {
		int err = p[0] < 0 ? p[0] : p[1];

		if (p[0] >= 0)
			close(p[0]);
		if (p[1] >= 0)
			close(p[1]);
		return err;
	}
	if (fcntl(p[1], F_SETFL, O_NONBLOCK) < 0) {
		int err = -errno;

		close(p[0]);
		close(p[1]);
		return err;
	}
	fds[0] = p[0];
	fds[1] = p[1];
	return 0;
}

void shmpipe__os_ring(int fd)
{
	char b = 0;
	struct iovec v = {.iov_base = &b, .iov_len = 1};
	ssize_t n;

	/*
	 * EAGAIN: the doorbell is full, so rung already. The caller holds a
	 * read side of this pipe too, so there is always a reader and a write
	 * never raises SIGPIPE. RWF_NOWAIT: the write side came from the peer,
	 * which could make its description blocking again to hang us in a
	 * full pipe; kernels that refuse the flag for pipes get a plain write
	 * on the description made non-blocking when it came.
	 */
	do
		n = pwritev2(fd, &v, 1, -1, RWF_NOWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS)) {
		while (write(fd, &b, 1) < 0 && errno == EINTR)
			;
	}
}

void shmpipe__os_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0 && !(fl & O_NONBLOCK))
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int shmpipe__os_drain(int fd)
{
	char buf[256];
	struct pollfd p = {.fd = fd, .events = POLLIN};

	/*
	 * At most a few reads: a peer that keeps ringing cannot hold us here
	 * (what is left only makes the next wait return early).
	 */
	for (int i = 0; i < 4; i++) {
		int n = poll(&p, 1, 0);

		if (n < 0)
			return errno == EINTR ? 0 : -errno;
		if (n == 0)
			return 0;
		if (!(p.revents & POLLIN))
			return (p.revents & POLLHUP) ? 1 : -EIO;
		/* Only this end reads its doorbell: poll said it will not block. */
		ssize_t r = read(fd, buf, sizeof(buf));

		if (r == 0)
			return 1;
		if (r < 0)
			return errno == EINTR ? 0 : -errno;
		/* Emptied: hung up too if poll said so (the bytes came first). */
		if ((size_t)r < sizeof(buf))
			return (p.revents & POLLHUP) ? 1 : 0;
	}
	return 0;
}

int shmpipe__os_doorbell_wait(int fd, int poll_fd, const struct timespec *deadline)
{
	char buf[64];

	if (!deadline && poll_fd < 0 && fd >= 0) {
		/* Restarted by the kernel under SA_RESTART, -EINTR otherwise. */
		ssize_t r = read(fd, buf, sizeof(buf));

		if (r > 0)
			return 0;
		if (r == 0)
			return 1;
		if (errno != EAGAIN)
			return -errno;
		/* Non-blocking after all (it should not be): poll instead. */
	}
	struct pollfd p = {.fd = poll_fd >= 0 ? poll_fd : fd, .events = POLLIN};
	nfds_t nfds = p.fd >= 0 ? 1 : 0; /* none: only sleep until the deadline */
	int ms = -1;

	if (deadline) {
		struct timespec now;
		int64_t left;

		clock_gettime(CLOCK_MONOTONIC, &now);
		left = (int64_t)(deadline->tv_sec - now.tv_sec) * 1000 +
		       (deadline->tv_nsec - now.tv_nsec + 999999) / 1000000;
		if (left <= 0)
			return -ETIMEDOUT;
		ms = left > 1000000 ? 1000000 : (int)left;
	}
	int n = poll(nfds ? &p : NULL, nfds, ms);

	if (n < 0)
		return -errno;
	if (n == 0)
		return -ETIMEDOUT;
	return 0; /* the caller drains, or learns of a hang-up, on its next look */
}

int shmpipe__os_kick(int fd)
{
	char b = 0;
	int w, err = 0;

	/*
	 * A new write side of our own doorbell, just for this byte: holding
	 * one for good would hide the peer's death (the read side reports
	 * end of file only once every write side is closed).
	 */
	w = shmpipe__os_proc_open(fd, O_WRONLY | O_NONBLOCK);
	if (w < 0)
		return w;
	if (write(w, &b, 1) < 0 && errno != EAGAIN)
		err = -errno;
	close(w);
	return err;
}

int shmpipe__os_note(void)
{
	return shmpipe__os_high(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
}

void shmpipe__os_note_set(int fd)
{
	uint64_t one = 1;

	while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

void shmpipe__os_note_clear(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
}

int shmpipe__os_poller_new(void)
{
	return shmpipe__os_high(epoll_create1(EPOLL_CLOEXEC));
}

int shmpipe__os_poller_ready(int ep, int *fds, int n)
{
	struct epoll_event ev[16];
	int got;

	if (n > 16)
		n = 16;
	got = epoll_wait(ep, ev, n, 0);
	if (got < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < got; i++)
		fds[i] = ev[i].data.fd;
	return got;
}

int shmpipe__os_poller(int fd)
{
	int ep = shmpipe__os_poller_new();

	if (ep < 0)
		return ep;
	if (shmpipe__os_poller_add(ep, fd) < 0) {
		int err = -errno;

		close(ep);
		return err;
	}
	return ep;
}

int shmpipe__os_poller_add(int ep, int fd)
{
	/* Level-triggered inside: the instance is ready while fd is. */
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

void shmpipe__os_poller_del(int ep, int fd)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
}

int shmpipe__os_random(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The abstract address "\0shmpipe.<token in hex>": no file, gone with its socket. */
static socklen_t rendezvous_addr(struct sockaddr_un *a, const uint8_t *token, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	n = 1; /* sun_path[0] = '\0': the abstract namespace */
	memcpy(a->sun_path + n, "shmpipe.", 8);
	n += 8;
	for (size_t i = 0; i < len; i++) {
		a->sun_path[n++] = hex[token[i] >> 4];
		a->sun_path[n++] = hex[token[i] & 15];
	}
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
}

int shmpipe__os_listen(const uint8_t *token, size_t len, int backlog)
{
	struct sockaddr_un a;
	socklen_t alen = rendezvous_addr(&a, token, len);
	/* Blocking: an untimed wait for the peer is one accept(2) (restartable). */
	int s = shmpipe__os_high(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));

	if (s < 0)
		return s;
	if (bind(s, (struct sockaddr *)&a, alen) < 0 || listen(s, backlog) < 0) {
		int err = -errno;

		close(s);
		return err;
	}
	return s;
}

int shmpipe__os_connect(const uint8_t *token, size_t len)
{
	struct sockaddr_un a;
	socklen_t alen = rendezvous_addr(&a, token, len);
	int s = shmpipe__os_high(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));

	if (s < 0)
		return s;
	/*
	 * A full backlog answers EAGAIN at once: the listener's end has not
	 * accepted yet, or others crowd it. Try for a while, then give up.
	 */
	for (int i = 0;; i++) {
		if (connect(s, (struct sockaddr *)&a, alen) == 0)
			return s;
		if ((errno != EAGAIN && errno != EINTR) || i == 500) {
			int err = -errno;

			close(s);
			return err;
		}
		shmpipe__os_sleep_ms(1);
	}
}

int shmpipe__os_accept(int listener, int wait)
{
	int s;

	if (!wait) {
		struct pollfd p = {.fd = listener, .events = POLLIN};
		int n = poll(&p, 1, 0);

		if (n <= 0)
			return n < 0 && errno != EINTR ? -errno : -EAGAIN;
		/* Only this end accepts: poll said accept will not block. */
	}
	s = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return shmpipe__os_high(s);
}

void shmpipe__os_knock(const uint8_t *token, size_t len)
{
	struct sockaddr_un a;
	socklen_t alen = rendezvous_addr(&a, token, len);
	int s = shmpipe__os_high(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));

	/* A connection that says nothing: the accept it ends reads end of file. */
	if (s < 0)
		return;
	(void)connect(s, (struct sockaddr *)&a, alen);
	close(s);
}

/*
 * Sends len bytes of data with n descriptors (SCM_RIGHTS): 0, or -errno
 * (-EIO if the bytes did not all go).
 */
static int send_with_fds(int sock, const void *data, size_t len, const int *fds, int n, int flags)
{
	struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * SHMPIPE__OS_FDS_MAX)];
	} u;
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = u.buf,
			     .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n)};
	struct cmsghdr *c;
	ssize_t r;

	if (n < 1 || n > SHMPIPE__OS_FDS_MAX)
		return -EINVAL;
	memset(&u, 0, sizeof(u));
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)n);
	do
		r = sendmsg(sock, &msg, MSG_NOSIGNAL | flags);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r == (ssize_t)len ? 0 : -EIO;
}

/*
 * Receives one message of at most len bytes into data, and up to n of the
 * descriptors it carries into fds (*got of them; any beyond are closed: a
 * sender cannot make us leak them). Returns the bytes received (0 at end of
 * file), or -errno (-EAGAIN for MSG_DONTWAIT with nothing there); a
 * truncated message sets *truncated.
 */
static ssize_t recv_with_fds(int sock, void *data, size_t len, int *fds, int n, int flags, int *got,
			     bool *truncated)
{
	struct iovec iov = {.iov_base = data, .iov_len = len};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * SHMPIPE__OS_FDS_MAX)];
	} u;
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c;
	ssize_t r;

	*got = 0;
	do
		r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | flags);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*got >= n)
				close(fd);
			else if ((fd = shmpipe__os_high(fd)) >= 0)
				fds[(*got)++] = fd;
		}
	}
	*truncated = (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) != 0;
	return r;
}

int shmpipe__os_send_fd(int sock, int fd)
{
	return send_with_fds(sock, "F", 1, &fd, 1, 0);
}

int shmpipe__os_recv_fd(int sock)
{
	char byte;
	bool truncated;
	int fd, got;
	ssize_t r = recv_with_fds(sock, &byte, 1, &fd, 1, 0, &got, &truncated);

	if (r < 0)
		return (int)r;
	if (r == 0 || got != 1) {
		if (got)
			close(fd);
		return -EBADMSG;
	}
	return fd;
}

/* Every rendezvous message: this tag, then the descriptors. */
static const char rendezvous_tag[8] = "shmpipe1";

int shmpipe__os_send_fds(int sock, const int *fds, int n)
{
	return shmpipe__os_send_fds_with(sock, fds, n, NULL, 0);
}

int shmpipe__os_send_fds_with(int sock, const int *fds, int n, const void *extra, size_t len)
{
	char msg[sizeof(rendezvous_tag) + SHMPIPE__OS_EXTRA_MAX];

	if (len > SHMPIPE__OS_EXTRA_MAX)
		return -EINVAL;
	memcpy(msg, rendezvous_tag, sizeof(rendezvous_tag));
	if (len)
		memcpy(msg + sizeof(rendezvous_tag), extra, len);
	return send_with_fds(sock, msg, sizeof(rendezvous_tag) + len, fds, n, MSG_DONTWAIT);
}

int shmpipe__os_recv_fds(int sock, int *fds, int n, int wait_ms)
{
	return shmpipe__os_recv_fds_with(sock, fds, n, wait_ms, NULL, 0);
}

int shmpipe__os_recv_fds_with(int sock, int *fds, int n, int wait_ms, void *extra, size_t len)
{
	char tag[sizeof(rendezvous_tag) + SHMPIPE__OS_EXTRA_MAX + 1];
	bool truncated;
	ssize_t r;
	int got;

	if (n < 1 || n > SHMPIPE__OS_FDS_MAX || len > SHMPIPE__OS_EXTRA_MAX)
		return -EINVAL;
	if (wait_ms > 0) {
		struct pollfd p = {.fd = sock, .events = POLLIN};

		if (poll(&p, 1, wait_ms) == 0)
			return -EAGAIN;
	}
	/* One byte more than expected: a longer message is not ours. */
	r = recv_with_fds(sock, tag, sizeof(rendezvous_tag) + len + 1, fds, n, MSG_DONTWAIT, &got,
			  &truncated);
	if (r < 0)
		return (int)r;
	if (r != (ssize_t)(sizeof(rendezvous_tag) + len) ||
	    memcmp(tag, rendezvous_tag, sizeof(rendezvous_tag)) != 0 || truncated || got != n) {
		for (int i = 0; i < got; i++)
			close(fds[i]);
		return -EBADMSG;
	}
	if (len)
		memcpy(extra, tag + sizeof(rendezvous_tag), len);
	return 0;
}

int shmpipe__os_writable(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	return (fl & O_ACCMODE) == O_RDWR;
}

int shmpipe__os_same_file(int a, int b)
{
	struct stat sa, sb;

	if (fstat(a, &sa) < 0 || fstat(b, &sb) < 0)
		return -errno;
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int shmpipe__os_is_pipe(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	return S_ISFIFO(st.st_mode);
}

int shmpipe__os_dup(int fd)
{
	int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);

	return nfd < 0 ? -errno : nfd;
}
