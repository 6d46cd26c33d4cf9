/* SPDX-License-Identifier: MIT */
/*
 * xproc.h - what the cross-process tests share, on top of test.h.
 *
 * Every such test runs its body in a worker process of its own, in a process
 * group of its own, under a small supervisor (xp_main). The worker may fail
 * anywhere (an ASSERT_* ends it with _exit(1), the watchdog with SIGALRM's
 * _exit, a sanitizer with abort): whatever happens, the supervisor then
 * kills what is left of the group (peers blocked forever on a pipe whose
 * other end died with the worker) and removes every shared memory name the
 * run made. Names are "/shmpipe-test-<test>-<supervisor pid>-<n>", so the
 * supervisor also removes names left over by an earlier run that was killed
 * before it could clean up (its pid is no longer alive). A run that passed
 * but left a name behind fails: a test must unlink what it creates, and a
 * library call that fails must not leave an object behind either.
 */
#ifndef SHMPIPE_XPROC_H
#define SHMPIPE_XPROC_H

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "test.h"

#define XP_NAME_MAX 256

static char xp_prefix_[128]; /* "/shmpipe-test-<test>-<pid>-" */
static char xp_argv0_[4096]; /* the test program, for finding the peer */

/* The k-th shared memory name of this run. */
static inline void xp_name(char *buf, size_t n, int k)
{
	snprintf(buf, n, "%s%d", xp_prefix_, k);
}

/* The /dev/shm path of a name, for stat(2). */
static inline void xp_shm_path(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "/dev/shm%s", name);
}

/* Does a shared memory object of that name exist? */
static inline int xp_name_exists(const char *name)
{
	int fd = shm_open(name, O_RDONLY, 0);

	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

/*
 * Removes the names of test `test` made by process `pid`, or, with pid 0,
 * those of every such process that is no longer alive. Returns how many.
 */
static inline int xp_clean(const char *test, long pid, int verbose)
{
	char want[128], name[XP_NAME_MAX + 2];
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	size_t wl;
	int n = 0;

	if (d == NULL)
		return 0;
	snprintf(want, sizeof(want), "shmpipe-test-%s-", test);
	wl = strlen(want);
	while ((e = readdir(d)) != NULL) {
		char *end;
		long owner;

		if (strncmp(e->d_name, want, wl) != 0)
			continue;
		owner = strtol(e->d_name + wl, &end, 10);
		if (end == e->d_name + wl || *end != '-')
			continue;
		if (pid != 0 ? owner != pid
			     : !(owner > 0 && kill((pid_t)owner, 0) < 0 && errno == ESRCH))
			continue;
		snprintf(name, sizeof(name), "/%s", e->d_name);
		if (shm_unlink(name) == 0) {
			n++;
			if (verbose)
				fprintf(stderr, "left behind: %s\n", name);
		}
	}
	closedir(d);
	return n;
}

/*
 * Runs body(argc, argv) in a worker process and cleans up after it, as the
 * top of this file says. Returns the exit status for main.
 */
static inline int xp_main(const char *test, int (*body)(int, char **), int argc, char **argv)
{
	siginfo_t si;
	int status, left;
	pid_t pid;

	snprintf(xp_prefix_, sizeof(xp_prefix_), "/shmpipe-test-%s-%ld-", test, (long)getpid());
	snprintf(xp_argv0_, sizeof(xp_argv0_), "%s", argc > 0 ? argv[0] : "");
	xp_clean(test, 0, 0);
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return T_FAIL;
	}
	if (pid == 0) {
		setpgid(0, 0);
		/* If the supervisor is killed (a timeout), the worker goes too. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		exit(body(argc, argv));
	}
	setpgid(pid, pid); /* whichever of the two runs first */

	/* Wait without reaping: while the worker is a zombie its pid, the
	 * group's id, cannot be reused, so the kill below hits only ours. */
	memset(&si, 0, sizeof(si));
	while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
		;
	kill(-pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	left = xp_clean(test, (long)getpid(), 1);

	if (WIFSIGNALED(status)) {
		fprintf(stderr, "FAIL: the test's worker died of signal %d (%s)\n",
			WTERMSIG(status), strsignal(WTERMSIG(status)));
		return T_FAIL;
	}
	if (!WIFEXITED(status))
		return T_FAIL;
	if (WEXITSTATUS(status) == T_PASS && left > 0) {
		fprintf(stderr, "FAIL: %d shared memory name(s) left behind\n", left);
		return T_FAIL;
	}
	return WEXITSTATUS(status);
}

/*
 * The helper program test/peer.c: $SHMPIPE_TEST_PEER, else the path the
 * build compiled in, else "peer" beside this program.
 */
static inline const char *xp_peer_path(void)
{
	static char path[4096 + 8];
	const char *env = getenv("SHMPIPE_TEST_PEER");
	char *slash;

	if (env != NULL && *env != '\0')
		return env;
#ifdef SHMPIPE_TEST_PEER
	if (access(SHMPIPE_TEST_PEER, X_OK) == 0)
		return SHMPIPE_TEST_PEER;
#endif
	snprintf(path, sizeof(path), "%s", xp_argv0_);
	slash = strrchr(path, '/');
	if (slash != NULL)
		strcpy(slash + 1, "peer");
	else
		strcpy(path, "./peer");
	if (access(path, X_OK) != 0)
		TEST_FAIL("cannot find the helper program peer (tried %s); set "
			  "SHMPIPE_TEST_PEER",
			  path);
	return path;
}

/* A child that dies with its parent, so that no peer outlives a failure. */
static inline pid_t xp_fork(void)
{
	pid_t parent = getpid(), pid;

	fflush(NULL);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(T_FAIL);
	}
	return pid;
}

/* Runs the peer helper with the given arguments (NULL-terminated). */
static inline pid_t xp_spawn_peer(const char *const *args)
{
	char *argv[16];
	int n = 0;
	pid_t pid;

	argv[n++] = (char *)xp_peer_path();
	while (*args != NULL && n < 15)
		argv[n++] = (char *)*args++;
	argv[n] = NULL;
	pid = xp_fork();
	if (pid == 0) {
		execv(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

/* Waits at most timeout_ms for a child; kills it and fails on timeout. */
static inline int xp_wait(pid_t pid, int timeout_ms)
{
	int64_t end = test_now_ms() + (int64_t)timeout_ms * TEST_WATCHDOG_SCALE;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		if (r < 0 && errno != EINTR)
			TEST_FAIL("waitpid(%ld): %s", (long)pid, strerror(errno));
		if (test_now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			TEST_FAIL("child %ld still running after %d ms", (long)pid,
				  timeout_ms * TEST_WATCHDOG_SCALE);
		}
		test_sleep_ms(1);
	}
}

/* A child must have exited normally with status `want`. */
#define XP_ASSERT_EXIT(status, want)                                                               \
	do {                                                                                       \
		int st_ = (status);                                                                \
		if (WIFSIGNALED(st_))                                                              \
			TEST_FAIL("the child died of signal %d (%s), want exit %d", WTERMSIG(st_), \
				  strsignal(WTERMSIG(st_)), (int)(want));                          \
		ASSERT_TRUE(WIFEXITED(st_));                                                       \
		ASSERT_EQ(WEXITSTATUS(st_), (want));                                               \
	} while (0)

/* A child must have died of signal `sig`. */
#define XP_ASSERT_KILLED(status, sig)                                                              \
	do {                                                                                       \
		int st_ = (status);                                                                \
		if (WIFEXITED(st_))                                                                \
			TEST_FAIL("the child exited with %d, want death by signal %d",             \
				  WEXITSTATUS(st_), (int)(sig));                                   \
		ASSERT_EQ(WTERMSIG(st_), (sig));                                                   \
	} while (0)

/* Zeroed memory shared with the children forked afterwards. */
static inline void *xp_shared(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		TEST_FAIL("mmap: %s", strerror(errno));
	return p;
}

/* One-byte messages between processes over a pipe(2), for sequencing. */
struct xp_chan {
	int rd, wr;
};

static inline void xp_chan_open(struct xp_chan *c)
{
	int fds[2];

	ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
	c->rd = fds[0];
	c->wr = fds[1];
}

static inline void xp_chan_close(struct xp_chan *c)
{
	close(c->rd);
	close(c->wr);
}

static inline void xp_send(struct xp_chan *c, char msg)
{
	ASSERT_EQ(write(c->wr, &msg, 1), 1);
}

/* Waits at most timeout_ms for a message; fails on timeout or EOF. */
static inline char xp_recv(struct xp_chan *c, int timeout_ms)
{
	struct pollfd p = {.fd = c->rd, .events = POLLIN};
	char msg;
	int n;

	do
		n = poll(&p, 1, timeout_ms * TEST_WATCHDOG_SCALE);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		TEST_FAIL("no message from the other process in %d ms",
			  timeout_ms * TEST_WATCHDOG_SCALE);
	ASSERT_EQ(n, 1);
	if (read(c->rd, &msg, 1) != 1)
		TEST_FAIL("the other process is gone (no message)");
	return msg;
}

/* ---- data both sides agree on ------------------------------------------- */

static inline void xp_fail_ret(const char *what, uint64_t off, size_t len, ssize_t ret)
{
	fprintf(stderr, "FAIL: %s of %zu at stream offset %" PRIu64 " = %zd (%s)\n", what, len, off,
		ret, shmpipe_strerror((int)ret));
	test_die();
}

/*
 * Writes `total` bytes of the pattern keyed by `seed` in pieces of random
 * sizes (1 to twice the capacity), one in four through reserve/commit.
 */
static inline void xp_write_stream(shmpipe_writer *w, uint64_t total, uint64_t seed)
{
	shmpipe_stats s = test_wstats(w);
	size_t maxlen = (size_t)(2 * s.capacity + 1);
	uint8_t *buf = malloc(maxlen);
	uint64_t off = 0, rng = seed * 2 + 1;

	ASSERT_NOT_NULL(buf);
	while (off < total) {
		size_t n = (size_t)test_rand_range(&rng, 1, maxlen);
		ssize_t ret;

		if (n > total - off)
			n = (size_t)(total - off);
		if ((test_rand(&rng) & 3) == 0) {
			void *p;

			ret = shmpipe_reserve(w, &p, 1);
			if (ret <= 0)
				xp_fail_ret("shmpipe_reserve", off, 1, ret);
			if ((size_t)ret < n)
				n = (size_t)ret;
			test_pattern_fill(p, n, seed, off);
			ret = shmpipe_commit(w, n);
			if (ret != 0)
				xp_fail_ret("shmpipe_commit", off, n, ret);
		} else {
			test_pattern_fill(buf, n, seed, off);
			ret = shmpipe_write(w, buf, n);
			if (ret != (ssize_t)n)
				xp_fail_ret("shmpipe_write", off, n, ret);
		}
		off += n;
	}
	free(buf);
}

/*
 * Reads the stream xp_write_stream wrote, in reads of random sizes (one in
 * four through peek/consume), checking every byte and that end of stream
 * comes exactly after `total` bytes.
 */
static inline void xp_read_stream(shmpipe_reader *r, uint64_t total, uint64_t seed)
{
	shmpipe_stats s = test_rstats(r);
	size_t maxlen = (size_t)(2 * s.capacity + 1);
	uint8_t *buf = malloc(maxlen);
	uint64_t off = 0, rng = seed * 3 + 7;

	ASSERT_NOT_NULL(buf);
	for (;;) {
		size_t n = (size_t)test_rand_range(&rng, 1, maxlen);
		ssize_t ret;

		if ((test_rand(&rng) & 3) == 0) {
			const void *p;

			ret = shmpipe_peek(r, &p);
			if (ret < 0)
				xp_fail_ret("shmpipe_peek", off, 0, ret);
			if (ret == 0)
				break;
			if ((size_t)ret < n)
				n = (size_t)ret;
			ASSERT_LE(off + n, total);
			ASSERT_PATTERN(p, n, seed, off);
			ret = shmpipe_consume(r, n);
			if (ret != 0)
				xp_fail_ret("shmpipe_consume", off, n, ret);
		} else {
			ret = shmpipe_read(r, buf, n);
			if (ret < 0)
				xp_fail_ret("shmpipe_read", off, n, ret);
			if (ret == 0)
				break;
			ASSERT_LE((size_t)ret, n);
			n = (size_t)ret;
			ASSERT_LE(off + n, total);
			ASSERT_PATTERN(buf, n, seed, off);
		}
		off += n;
	}
	ASSERT_EQ(off, total);
	free(buf);
}

/* Record lengths: random in 1 .. min(largest record, 8 KiB), both sides alike. */
static inline size_t xp_record_max(uint64_t capacity)
{
	uint64_t m = SHMPIPE_RECORD_MAX(capacity);

	return m < 8192 ? (size_t)m : 8192;
}

/* Records of random lengths, `total` payload bytes of the pattern in all. */
static inline void xp_write_records(shmpipe_writer *w, uint64_t total, uint64_t seed)
{
	shmpipe_stats s = test_wstats(w);
	size_t maxlen = xp_record_max(s.capacity);
	uint8_t *buf = malloc(maxlen);
	uint64_t off = 0, rng = seed * 5 + 3;

	ASSERT_NOT_NULL(buf);
	while (off < total) {
		size_t n = (size_t)test_rand_range(&rng, 1, maxlen);
		ssize_t ret;

		if (n > total - off)
			n = (size_t)(total - off);
		test_pattern_fill(buf, n, seed, off);
		ret = shmpipe_write(w, buf, n);
		if (ret != (ssize_t)n)
			xp_fail_ret("shmpipe_write (record)", off, n, ret);
		off += n;
	}
	free(buf);
}

/* Reads back what xp_write_records wrote: every length and every byte. */
static inline void xp_read_records(shmpipe_reader *r, uint64_t total, uint64_t seed)
{
	shmpipe_stats s = test_rstats(r);
	size_t maxlen = xp_record_max(s.capacity);
	uint8_t *buf = malloc(maxlen);
	uint64_t off = 0, rng = seed * 5 + 3;
	ssize_t ret;

	ASSERT_NOT_NULL(buf);
	while (off < total) {
		size_t n = (size_t)test_rand_range(&rng, 1, maxlen);

		if (n > total - off)
			n = (size_t)(total - off);
		ret = shmpipe_read(r, buf, maxlen);
		if (ret != (ssize_t)n) {
			fprintf(stderr,
				"FAIL: record at payload offset %" PRIu64
				": shmpipe_read = %zd (%s), want %zu\n",
				off, ret, shmpipe_strerror((int)ret), n);
			test_die();
		}
		ASSERT_PATTERN(buf, n, seed, off);
		off += n;
	}
	ret = shmpipe_read(r, buf, maxlen);
	ASSERT_ERR(ret, 0);
	free(buf);
}

#endif /* SHMPIPE_XPROC_H */
