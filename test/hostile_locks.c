/* SPDX-License-Identifier: MIT */
/*
 * Description: liveness locks against a process that may only read the
 * object (a pipe created with mode 0644 lets every local user open it
 * read-only, and so take read locks on it). An end is alive while its
 * holder's open file description holds a write lock on the end's byte; a
 * read lock must never count.
 *
 * (a) A read lock on the reader's byte: the read end cannot be taken while
 *     it is there (the lock keeps ours from the byte), but the open says so
 *     with -EACCES, not -EBUSY ("taken"), and shmpipe_inspect shows no
 *     reader. Once the lock goes, the end can be taken.
 * (b) A read lock queued (F_OFD_SETLKW) on the writer's byte, which the
 *     kernel grants the moment the writer dies: the reader must still
 *     learn of the death at once (-ECONNRESET after the data, well within
 *     its timeout), and shmpipe_inspect must show the writer dead.
 *
 * The read-only user is played by read-only descriptors of this process:
 * the kernel's locks do not care whose they are.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sys/wait.h>

#include "xproc.h"
#include "layout.h"

#define CAP 4096

static int ro_open(const char *name)
{
	char path[XP_NAME_MAX + 16];
	int fd;

	snprintf(path, sizeof(path), "/dev/shm%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	return fd;
}

static int read_lock(int fd, unsigned byte, int cmd)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_RDLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = byte;
	fl.l_len = 1;
	return fcntl(fd, cmd, &fl);
}

static void test_blocked_end(void)
{
	char name[XP_NAME_MAX];
	shmpipe_options o = test_opts(CAP);
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_info info;
	int fd;

	o.mode = 0644;
	xp_name(name, sizeof(name), 1);
	ASSERT_OK(shmpipe_writer_create(&w, name, &o));
	fd = ro_open(name);
	ASSERT_EQ(read_lock(fd, SHMPIPE__READER_LOCK, F_OFD_SETLK), 0);
	ASSERT_ERR(shmpipe_reader_open(&r, name), -EACCES);
	ASSERT_OK(shmpipe_inspect(name, &info));
	ASSERT_EQ(info.reader.alive, 0);
	ASSERT_EQ(info.reader.state, SHMPIPE_END_ABSENT);
	/* The writer still sees nobody there, and its rendezvous still listens. */
	close(fd);
	ASSERT_OK(shmpipe_reader_open(&r, name));
	ASSERT_EQ(shmpipe_write(w, "x", 1), 1);
	ASSERT_OK(shmpipe_writer_close(w));
	{
		char c;

		ASSERT_EQ(shmpipe_read(r, &c, 1), 1);
		ASSERT_EQ(c, 'x');
		ASSERT_EQ(shmpipe_read(r, &c, 1), 0);
	}
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_unlink(name));
}

struct queued {
	int fd;
	int rc;
};

static void *queue_lock(void *arg)
{
	struct queued *q = arg;

	/* Waits until the writer's lock goes, then holds a read lock. */
	q->rc = read_lock(q->fd, SHMPIPE__WRITER_LOCK, F_OFD_SETLKW);
	return NULL;
}

static void test_queued_lock(void)
{
	char name[XP_NAME_MAX];
	struct xp_chan ch;
	struct queued q = {.fd = -1, .rc = -2};
	shmpipe_reader *r;
	shmpipe_info info;
	pthread_t t;
	char buf[200];
	int64_t t0;
	ssize_t n;
	pid_t pid;

	xp_name(name, sizeof(name), 2);
	xp_chan_open(&ch);
	pid = xp_fork();
	if (pid == 0) {
		shmpipe_options o = test_opts(CAP);
		shmpipe_writer *w;

		o.mode = 0644;
		ASSERT_OK(shmpipe_writer_create(&w, name, &o));
		ASSERT_EQ(shmpipe_write(w, "0123456789", 10), 10);
		xp_send(&ch, 'w');
		for (;;)
			pause();
	}
	ASSERT_EQ(xp_recv(&ch, 10000), 'w');
	q.fd = ro_open(name);
	ASSERT_EQ(pthread_create(&t, NULL, queue_lock, &q), 0);
	test_sleep_ms(100); /* the lock is queued behind the writer's */
	ASSERT_OK(shmpipe_reader_open(&r, name));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 5000 * TEST_WATCHDOG_SCALE));
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 10);
	ASSERT_MEM_EQ(buf, "0123456789", 10);

	kill(pid, SIGKILL);
	XP_ASSERT_KILLED(xp_wait(pid, 10000), SIGKILL);
	ASSERT_EQ(pthread_join(t, NULL), 0);
	ASSERT_EQ(q.rc, 0); /* the read lock was granted at the death */
	t0 = test_now_ms();
	n = shmpipe_read(r, buf, sizeof(buf));
	if (n != -ECONNRESET)
		TEST_FAIL("a read after the writer's death, a read lock queued on its byte: %zd "
			  "(%s) after %lld ms",
			  n, shmpipe_strerror((int)n), (long long)(test_now_ms() - t0));
	ASSERT_LT(test_now_ms() - t0, 1000 * TEST_WATCHDOG_SCALE);
	ASSERT_OK(shmpipe_inspect(name, &info));
	ASSERT_EQ(info.writer.alive, 0);
	close(q.fd);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_unlink(name));
	xp_chan_close(&ch);
}

static int body(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : "ab";

	test_watchdog(60);
	if (strchr(only, 'a')) {
		test_blocked_end();
		printf("ok - a reader's read lock blocks an end (-EACCES), showing no holder\n");
	}
	if (strchr(only, 'b')) {
		test_queued_lock();
		printf("ok - a read lock queued on a dead writer's byte does not hide its death\n");
	}
	return T_PASS;
}

int main(int argc, char **argv)
{
	return xp_main("hostile_locks", body, argc, argv);
}
