/* SPDX-License-Identifier: MIT */
/*
 * pollfd.h - what the tests of the pollable descriptors share, on top of
 * test.h: asking whether a descriptor polls readable, through poll(2),
 * select(2) or epoll, always with a bound so that a lost event fails the
 * test instead of hanging it; and counting this process's threads (the
 * library must create none).
 *
 * "Readable" means POLLIN (EPOLLIN), as the contract says: a descriptor that
 * reports only POLLHUP or POLLERR would be missed by an event loop that
 * waits for input, so it fails here.
 */
#ifndef SHMPIPE_TEST_POLLFD_H
#define SHMPIPE_TEST_POLLFD_H

#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>

#include "test.h"

/* poll(2) on one descriptor: its revents, or 0 on timeout. */
static inline short tp_poll(int fd, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int n;

	do
		n = poll(&p, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		TEST_FAIL("poll(%d): %s", fd, strerror(errno));
	if (n == 0)
		return 0;
	if (p.revents & POLLNVAL)
		TEST_FAIL("poll(%d): not an open descriptor (POLLNVAL)", fd);
	return p.revents;
}

/* 1 if fd polls readable within timeout_ms (0: right now, -1: forever). */
static inline int tp_readable(int fd, int timeout_ms)
{
	short rev = tp_poll(fd, timeout_ms);

	if (rev != 0 && !(rev & POLLIN))
		TEST_FAIL("poll(%d) = revents 0x%x without POLLIN", fd, (unsigned)rev);
	return rev != 0;
}

/* The same question through select(2). */
static inline int tp_select_readable(int fd, int timeout_ms)
{
	fd_set set;
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	int n;

	if (fd >= FD_SETSIZE)
		TEST_FAIL("descriptor %d is beyond select's FD_SETSIZE", fd);
	do {
		FD_ZERO(&set);
		FD_SET(fd, &set);
		n = select(fd + 1, &set, NULL, NULL, timeout_ms < 0 ? NULL : &tv);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		TEST_FAIL("select(%d): %s", fd, strerror(errno));
	return n == 1 && FD_ISSET(fd, &set);
}

static inline int tp_epoll_create(void)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep < 0)
		TEST_FAIL("epoll_create1: %s", strerror(errno));
	return ep;
}

static inline void tp_epoll_add(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.u64 = data;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
		TEST_FAIL("epoll_ctl(ADD %d): %s", fd, strerror(errno));
}

static inline void tp_epoll_del(int ep, int fd)
{
	if (epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL) != 0)
		TEST_FAIL("epoll_ctl(DEL %d): %s", fd, strerror(errno));
}

/* epoll_wait, going on after a signal handler. */
static inline int tp_epoll_wait(int ep, struct epoll_event *evs, int max, int timeout_ms)
{
	int n;

	do
		n = epoll_wait(ep, evs, max, timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		TEST_FAIL("epoll_wait: %s", strerror(errno));
	return n;
}

/* Threads of this process (entries of /proc/self/task), or -1 without /proc. */
static inline int tp_count_threads(void)
{
	return test_count_entries("/proc/self/task");
}

static inline double tp_ms(int64_t ns)
{
	return (double)ns / 1e6;
}

#endif /* SHMPIPE_TEST_POLLFD_H */
