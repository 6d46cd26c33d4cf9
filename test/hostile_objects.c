/* SPDX-License-Identifier: MIT */
/*
 * Description: what another local user can put in /dev/shm under a name an
 * observer or an opener is given.
 *
 * (a) A FIFO. Opening it to read would wait for a writer for ever:
 *     shmpipe_stat, shmpipe_inspect, shmpipe_reader_open and
 *     shmpipe_writer_open return -EPROTO at once (it is not a shared memory
 *     object), with and without a process holding its other side.
 * (b) A pipe whose owner keeps shrinking and regrowing it (and writing its
 *     header back), as anyone may do to their own object. An observer that
 *     mapped it would die of SIGBUS on its next look; shmpipe_stat and
 *     shmpipe_inspect, thousands of times while it changes, return 0 or
 *     -EPROTO and never fault.
 * (c) A pipe that another user created first under the name (squatting):
 *     taking an end by name refuses it with -EPERM, taking nothing, unless
 *     the owner is us or root; a program that means to share with that
 *     user opens the object itself and takes the end with *_open_fd. The
 *     other user is played by giving our pipe away with fchown (as root;
 *     skipped otherwise).
 *
 *   hostile_objects [letters of the cases to run]   (default: abc)
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "xproc.h"

#define CAP (1 << 20)

static void shm_path(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "/dev/shm%s", name);
}

static void expect_not_shm(const char *name, const char *what)
{
	shmpipe_info info;
	shmpipe_stats st;
	shmpipe_reader *r;
	shmpipe_writer *w;
	int64_t t0 = test_now_ms();

	ASSERT_ERR(shmpipe_stat(name, &st), -EPROTO);
	ASSERT_ERR(shmpipe_inspect(name, &info), -EPROTO);
	ASSERT_ERR(shmpipe_reader_open(&r, name), -EPROTO);
	ASSERT_ERR(shmpipe_writer_open(&w, name), -EPROTO);
	if (test_now_ms() - t0 > 1000 * TEST_WATCHDOG_SCALE)
		TEST_FAIL("%s: refusing it took %lld ms", what, (long long)(test_now_ms() - t0));
}

static void test_fifo(void)
{
	char name[XP_NAME_MAX], path[XP_NAME_MAX + 16];
	int other;

	xp_name(name, sizeof(name), 1);
	shm_path(path, sizeof(path), name);
	ASSERT_EQ(mkfifo(path, 0666), 0);
	expect_not_shm(name, "a FIFO nobody holds");
	/* Someone holds it open for reading: opening to write would not block either. */
	other = open(path, O_RDONLY | O_NONBLOCK);
	ASSERT_GE(other, 0);
	expect_not_shm(name, "a FIFO with a reader");
	close(other);
	ASSERT_EQ(unlink(path), 0);
}

/* The owner of name, shrinking and regrowing it until killed. */
static void resizer(const char *name, const void *hdr, size_t hdr_len, off_t size)
{
	char path[XP_NAME_MAX + 16];
	int fd;

	shm_path(path, sizeof(path), name);
	fd = open(path, O_RDWR);
	ASSERT_GE(fd, 0);
	for (uint64_t i = 0;; i++) {
		ASSERT_EQ(ftruncate(fd, (i & 1) ? 4096 : 0), 0);
		ASSERT_EQ(ftruncate(fd, size), 0);
		ASSERT_EQ(pwrite(fd, hdr, hdr_len, 0), (ssize_t)hdr_len);
	}
}

static void test_resized(void)
{
	char name[XP_NAME_MAX], path[XP_NAME_MAX + 16];
	shmpipe_options o = test_opts(CAP);
	shmpipe_writer *w;
	static uint8_t hdr[4096];
	struct stat sb;
	uint64_t ok = 0, proto = 0;
	int fd;
	pid_t pid;

	xp_name(name, sizeof(name), 2);
	ASSERT_OK(shmpipe_writer_create(&w, name, &o));
	ASSERT_OK(shmpipe_writer_close(w));
	shm_path(path, sizeof(path), name);
	fd = open(path, O_RDONLY);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(fstat(fd, &sb), 0);
	ASSERT_EQ(pread(fd, hdr, sizeof(hdr), 0), (ssize_t)sizeof(hdr));
	close(fd);

	pid = xp_fork();
	if (pid == 0)
		resizer(name, hdr, sizeof(hdr), sb.st_size);
	for (int i = 0; i < 4000; i++) {
		shmpipe_info info;
		shmpipe_stats st;
		int err = (i & 1) ? shmpipe_inspect(name, &info) : shmpipe_stat(name, &st);

		if (err == 0)
			ok++;
		else if (err == -EPROTO)
			proto++;
		else
			TEST_FAIL("an observer of a resized pipe: %d (%s)", err,
				  shmpipe_strerror(err));
	}
	kill(pid, SIGKILL);
	XP_ASSERT_KILLED(xp_wait(pid, 10000), SIGKILL);
	ASSERT_OK(shmpipe_unlink(name));
	printf("an observer of a pipe resized under it: %" PRIu64 " answers, %" PRIu64
	       " -EPROTO, no fault\n",
	       ok, proto);
}

static void test_squatter(void)
{
	char name[XP_NAME_MAX], path[XP_NAME_MAX + 16];
	shmpipe_options o = test_opts(4096);
	shmpipe_writer *w, *w2;
	shmpipe_reader *r;
	shmpipe_info info;
	char c;
	int fd;

	xp_name(name, sizeof(name), 3);
	o.mode = 0666;
	ASSERT_OK(shmpipe_reader_create(&r, name, &o));
	shm_path(path, sizeof(path), name);
	fd = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(fchown(fd, 4242, 4242), 0);
	/* Root's pipes and our own are trusted; this one is nobody's we know. */
	ASSERT_ERR(shmpipe_writer_open(&w, name), -EPERM);
	ASSERT_OK(shmpipe_inspect(name, &info));
	ASSERT_EQ(info.writer.state, SHMPIPE_END_ABSENT);
	ASSERT_EQ(info.writer.alive, 0);
	/* Opened on purpose: the end is taken through the descriptor. */
	ASSERT_OK(shmpipe_writer_open_fd(&w2, fd));
	close(fd);
	ASSERT_EQ(shmpipe_write(w2, "y", 1), 1);
	ASSERT_OK(shmpipe_writer_close(w2));
	ASSERT_EQ(shmpipe_read(r, &c, 1), 1);
	ASSERT_EQ(c, 'y');
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_unlink(name));
}

static int body(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : "abc";

	test_watchdog(60);
	if (strchr(only, 'a')) {
		test_fifo();
		printf("ok - a FIFO in /dev/shm is refused at once by observers and openers\n");
	}
	if (strchr(only, 'b')) {
		test_resized();
		printf("ok - observers never fault on an object resized under them\n");
	}
	if (strchr(only, 'c')) {
		if (geteuid() != 0)
			TEST_SKIP("giving a pipe to another user needs root");
		test_squatter();
		printf("ok - another user's pipe is refused by name, taken by descriptor\n");
	}
	return T_PASS;
}

int main(int argc, char **argv)
{
	return xp_main("hostile_objects", body, argc, argv);
}
