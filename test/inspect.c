/* SPDX-License-Identifier: MIT */
/*
 * Description: shmpipe_inspect, the outside observer. Each field against the
 * truth: the counters and flags; each end's state (absent, open, closed), pid,
 * liveness and sleep, through a pipe's life: a writer asleep on a full ring
 * before any reader came, a reader that takes the end, a reader asleep on an
 * empty ring, a writer closed cleanly, and a writer killed with SIGKILL (open
 * but not alive, and not asleep even though it died in its sleep). Errors:
 * -EINVAL, -ENOENT, -EPROTO for an object that is not a shmpipe (at once,
 * without waiting for a header), and nothing is left mapped or open.
 */
#include <pthread.h>

#include "xproc.h"

#define CAP 8192

static shmpipe_info inspect(const char *name)
{
	shmpipe_info in;

	memset(&in, 0xa5, sizeof(in));
	ASSERT_OK(shmpipe_inspect(name, &in));
	return in;
}

/* Polls until end `which` of pipe `name` is (or is not) asleep. */
static shmpipe_info wait_asleep(const char *name, int writer, int want)
{
	int64_t end = test_now_ms() + 5000 * TEST_WATCHDOG_SCALE;

	for (;;) {
		shmpipe_info in = inspect(name);
		const shmpipe_end_info *e = writer ? &in.writer : &in.reader;

		if (e->asleep == want)
			return in;
		if (test_now_ms() > end)
			TEST_FAIL("%s never became %s", writer ? "writer" : "reader",
				  want ? "asleep" : "awake");
		test_sleep_ms(5);
	}
}

struct drain {
	shmpipe_reader *r;
	ssize_t ret;
};

/* Reads one byte: sleeps on an empty ring until the writer sends it. */
static void *read_one(void *arg)
{
	struct drain *d = arg;
	char c;

	d->ret = shmpipe_read(d->r, &c, 1);
	return NULL;
}

static void test_life(void)
{
	char name[XP_NAME_MAX], buf[CAP + 1];
	struct xp_chan ch;
	shmpipe_reader *r;
	shmpipe_info in;
	struct drain d;
	pthread_t t;
	pid_t child;
	int status;

	xp_name(name, sizeof(name), 1);
	xp_chan_open(&ch);
	child = xp_fork();
	if (child == 0) {
		shmpipe_options o = test_opts(CAP);
		shmpipe_writer *w;

		memset(buf, 'x', sizeof(buf));
		ASSERT_OK(shmpipe_writer_create(&w, name, &o));
		xp_send(&ch, 'c');
		/* A full ring and one byte more: sleeps until a reader frees space. */
		ASSERT_EQ(shmpipe_write(w, buf, CAP), CAP);
		ASSERT_EQ(shmpipe_write(w, buf, 1), 1);
		xp_recv(&ch, 30000); /* stays until told to write the last byte */
		ASSERT_EQ(shmpipe_write(w, buf, 1), 1);
		xp_recv(&ch, 30000); /* then waits to be killed */
		_exit(T_FAIL);
	}
	ASSERT_EQ(xp_recv(&ch, 10000), 'c');

	/* Before any reader: the writer holds its end and sleeps for space. */
	in = wait_asleep(name, 1, 1);
	ASSERT_EQ(in.stats.capacity, CAP);
	ASSERT_EQ(in.stats.write_index, CAP);
	ASSERT_EQ(in.stats.read_index, 0);
	ASSERT_EQ(in.stats.produced, 1);
	ASSERT_EQ(in.flags, 0);
	ASSERT_EQ(in.writer.state, SHMPIPE_END_OPEN);
	ASSERT_EQ(in.writer.pid, (uint32_t)child);
	ASSERT_EQ(in.writer.alive, 1);
	ASSERT_EQ(in.reader.state, SHMPIPE_END_ABSENT);
	ASSERT_EQ(in.reader.pid, 0);
	ASSERT_EQ(in.reader.alive, 0);
	ASSERT_EQ(in.reader.asleep, 0);

	/* A reader takes its end and drains: the writer wakes and finishes. */
	ASSERT_OK(shmpipe_reader_open(&r, name));
	in = inspect(name);
	ASSERT_EQ(in.reader.state, SHMPIPE_END_OPEN);
	ASSERT_EQ(in.reader.pid, (uint32_t)getpid());
	ASSERT_EQ(in.reader.alive, 1);
	test_read_exact(r, buf, CAP + 1);
	in = wait_asleep(name, 1, 0);
	ASSERT_EQ(in.writer.alive, 1);
	ASSERT_EQ(in.stats.read_index, CAP + 1);
	ASSERT_EQ(in.stats.write_index, CAP + 1);
	ASSERT_EQ(in.stats.producer_waits, 1);

	/* The reader sleeps on an empty ring, until the last byte comes. */
	d.r = r;
	ASSERT_EQ(pthread_create(&t, NULL, read_one, &d), 0);
	in = wait_asleep(name, 0, 1);
	ASSERT_EQ(in.writer.asleep, 0);
	xp_send(&ch, 'w');
	ASSERT_EQ(pthread_join(t, NULL), 0);
	ASSERT_EQ(d.ret, 1);
	in = inspect(name);
	ASSERT_EQ(in.reader.asleep, 0);
	ASSERT_EQ(in.stats.consumed, in.stats.produced);

	/* The reader sleeps again, and the writer dies: open, not alive. */
	ASSERT_EQ(pthread_create(&t, NULL, read_one, &d), 0);
	wait_asleep(name, 0, 1);
	kill(child, SIGKILL);
	status = xp_wait(child, 10000);
	XP_ASSERT_KILLED(status, SIGKILL);
	ASSERT_EQ(pthread_join(t, NULL), 0);
	ASSERT_ERR(d.ret, -ECONNRESET);
	in = inspect(name);
	ASSERT_EQ(in.writer.state, SHMPIPE_END_OPEN);
	ASSERT_EQ(in.writer.pid, (uint32_t)child);
	ASSERT_EQ(in.writer.alive, 0);
	ASSERT_EQ(in.writer.asleep, 0);
	ASSERT_EQ(in.reader.alive, 1);

	/* Closed cleanly: the state says so and nobody holds the end. */
	ASSERT_OK(shmpipe_reader_close(r));
	in = inspect(name);
	ASSERT_EQ(in.reader.state, SHMPIPE_END_CLOSED);
	ASSERT_EQ(in.reader.alive, 0);
	ASSERT_EQ(in.reader.asleep, 0);
	ASSERT_OK(shmpipe_unlink(name));
	xp_chan_close(&ch);
}

/* A writer that fills a ring, sleeps, and is killed in its sleep. */
static void test_killed_asleep(void)
{
	char name[XP_NAME_MAX];
	shmpipe_options o = test_opts(64);
	shmpipe_writer *w;
	shmpipe_info in;
	pid_t child;

	xp_name(name, sizeof(name), 2);
	o.flags = SHMPIPE_RECORDS;
	child = xp_fork();
	if (child == 0) {
		char rec[40] = {0};

		ASSERT_OK(shmpipe_writer_create(&w, name, &o));
		for (;;)
			ASSERT_EQ(shmpipe_write(w, rec, sizeof(rec)), (ssize_t)sizeof(rec));
	}
	/*
	 * Until the child's header is out, inspect says -EPROTO at once (it
	 * does not wait, by design): wait for a header, as stat does.
	 */
	for (int i = 0; !xp_name_exists(name) || shmpipe_stat(name, &in.stats) < 0; i++) {
		ASSERT_LT(i, 5000 * TEST_WATCHDOG_SCALE);
		test_sleep_ms(1);
	}
	in = wait_asleep(name, 1, 1);
	ASSERT_EQ(in.flags, SHMPIPE_RECORDS);
	ASSERT_EQ(in.stats.produced, 1);
	ASSERT_EQ(in.stats.write_index, SHMPIPE_RECORD_SPACE(40));
	kill(child, SIGKILL);
	XP_ASSERT_KILLED(xp_wait(child, 10000), SIGKILL);
	/* The waiter bit outlives its sleeper: it must not count. */
	in = inspect(name);
	ASSERT_EQ(in.writer.state, SHMPIPE_END_OPEN);
	ASSERT_EQ(in.writer.alive, 0);
	ASSERT_EQ(in.writer.asleep, 0);
	ASSERT_OK(shmpipe_unlink(name));
}

static void test_errors(void)
{
	char name[XP_NAME_MAX];
	shmpipe_info in;
	int64_t t0;
	int fd;

	ASSERT_ERR(shmpipe_inspect(NULL, &in), -EINVAL);
	ASSERT_ERR(shmpipe_inspect("noslash", &in), -EINVAL);
	ASSERT_ERR(shmpipe_inspect("/a/b", &in), -EINVAL);
	ASSERT_ERR(shmpipe_inspect("/", &in), -EINVAL);
	xp_name(name, sizeof(name), 3);
	ASSERT_ERR(shmpipe_inspect(name, NULL), -EINVAL);
	ASSERT_ERR(shmpipe_inspect(name, &in), -ENOENT);

	/* Somebody else's object, blank like a header not yet written. */
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	ASSERT_GE(fd, 0);
	ASSERT_OK(ftruncate(fd, 3 * 4096));
	t0 = test_now_ms();
	ASSERT_ERR(shmpipe_inspect(name, &in), -EPROTO);
	ASSERT_LT(test_now_ms() - t0, 100 * TEST_SLOW);
	/* Too small to hold a header at all. */
	ASSERT_OK(ftruncate(fd, 100));
	ASSERT_ERR(shmpipe_inspect(name, &in), -EPROTO);
	close(fd);
	ASSERT_OK(shm_unlink(name));
}

static int body(int argc, char **argv)
{
	int fds, maps;

	(void)argc;
	(void)argv;
	test_watchdog(60);
	fds = test_count_fds();
	maps = test_count_maps("shmpipe-test-inspect");
	test_errors();
	test_killed_asleep();
	test_life();
	ASSERT_EQ(test_count_fds(), fds);
	ASSERT_EQ(test_count_maps("shmpipe-test-inspect"), maps);
	return T_PASS;
}

int main(int argc, char **argv)
{
	return xp_main("inspect", body, argc, argv);
}
