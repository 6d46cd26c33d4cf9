/* SPDX-License-Identifier: MIT */
/*
 * Description: signals as pipe(2) has them, the part that signals.c leaves
 * out: a handler installed with SA_RESTART.
 *
 * (a) With SA_RESTART, an untimed (timeout -1) shmpipe_read asleep on an
 *     empty ring goes on through signal after signal, each one handled, and
 *     returns the data written afterwards; so does an untimed shmpipe_write
 *     asleep on a full ring, and one asleep after part of its bytes went in:
 *     both return their whole count once the reader makes room.
 * (b) The same across processes: a reader of a named pipe waiting for a
 *     writer that has not attached yet (an exec'd process that comes later),
 *     a reader waiting for data and a writer waiting for room from a forked
 *     peer.
 * (c) With SA_RESTART, a call with a timeout returns -EINTR at the first
 *     signal, as poll(2) does, and shmpipe_*_interrupt still ends an untimed
 *     call with -EINTR.
 * (d) Without SA_RESTART, the first signal ends an untimed sleeping call with
 *     -EINTR (signals.c checks the partial counts and the retries).
 */
#include <pthread.h>
#include <stdatomic.h>

#include "xproc.h"

#define SEED 0x5157ull

static atomic_int handled;

static void on_usr1(int sig)
{
	(void)sig;
	atomic_fetch_add(&handled, 1);
}

static void install(int restart)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
}

/* A call made in a thread of its own. */
enum op { OP_READ, OP_WRITE, OP_READ_STREAM };

struct call {
	enum op op;
	shmpipe_reader *r;
	shmpipe_writer *w;
	const uint8_t *wbuf;
	size_t len;
	uint64_t total; /* OP_READ_STREAM: the stream xproc.h's writer sends */
	uint8_t rbuf[256];
	atomic_int started;
	atomic_int done;
	ssize_t ret;
	pthread_t t;
};

static void *call_main(void *arg)
{
	struct call *c = arg;

	atomic_store(&c->started, 1);
	if (c->op == OP_READ) {
		c->ret = shmpipe_read(c->r, c->rbuf, sizeof(c->rbuf));
	} else if (c->op == OP_WRITE) {
		c->ret = shmpipe_write(c->w, c->wbuf, c->len);
	} else {
		/* Fails the test on -EINTR or any other error. */
		xp_read_stream(c->r, c->total, SEED);
		c->ret = 0;
	}
	atomic_store(&c->done, 1);
	return NULL;
}

static void call_start(struct call *c)
{
	ASSERT_EQ(pthread_create(&c->t, NULL, call_main, c), 0);
	while (!atomic_load(&c->started))
		test_sleep_ms(1);
	/* Asleep by now. */
	test_sleep_ms(50);
	if (atomic_load(&c->done))
		TEST_FAIL("the call returned %zd (%s) instead of sleeping", c->ret,
			  shmpipe_strerror((int)c->ret));
}

static ssize_t call_join(struct call *c)
{
	int64_t deadline = test_now_ms() + 10000 * TEST_WATCHDOG_SCALE;

	while (!atomic_load(&c->done)) {
		if (test_now_ms() > deadline)
			TEST_FAIL("the call has not returned in 10 s");
		test_sleep_ms(1);
	}
	ASSERT_EQ(pthread_join(c->t, NULL), 0);
	return c->ret;
}

/* Sends one SIGUSR1 to the call's thread and waits until it was handled. */
static void signal_once(struct call *c)
{
	int before = atomic_load(&handled);
	int64_t deadline = test_now_ms() + 5000 * TEST_SLOW;

	ASSERT_EQ(pthread_kill(c->t, SIGUSR1), 0);
	while (atomic_load(&handled) == before) {
		if (test_now_ms() > deadline)
			TEST_FAIL("SIGUSR1 was never handled");
		test_sleep_ms(1);
	}
}

/* Five signals, each handled: the call goes on through all of them. */
static void signals_go_on(struct call *c, const char *what)
{
	for (int i = 1; i <= 5; i++) {
		signal_once(c);
		test_sleep_ms(20);
		if (atomic_load(&c->done))
			TEST_FAIL("%s: returned %zd (%s) after signal %d, handled with SA_RESTART; "
				  "want it to go on",
				  what, c->ret, shmpipe_strerror((int)c->ret), i);
	}
}

/* One signal ends the call: it must return within a second. */
static ssize_t signal_ends(struct call *c)
{
	int64_t t0 = test_now_ms();

	signal_once(c);
	while (!atomic_load(&c->done)) {
		if (test_now_ms() - t0 > 1000 * TEST_SLOW)
			TEST_FAIL("the call still sleeps 1 s after a signal that should end it");
		test_sleep_ms(1);
	}
	return call_join(c);
}

/* ---- (a) -------------------------------------------------------------------------- */

static void restart_read(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	struct call c;

	memset(&c, 0, sizeof(c));
	test_pair(&w, &r, 64);
	c.op = OP_READ;
	c.r = r;
	call_start(&c);
	signals_go_on(&c, "untimed read on an empty ring");
	ASSERT_EQ(shmpipe_write(w, "after", 5), 5);
	ASSERT_EQ(call_join(&c), 5);
	ASSERT_MEM_EQ(c.rbuf, "after", 5);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

/* A write of 200 into a ring of 64 holding `prefill` bytes. */
static void restart_write(size_t prefill)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	struct call c;
	uint8_t data[200], pre[64], in[256];
	size_t got = 0;
	int64_t deadline = test_now_ms() + 5000;

	memset(&c, 0, sizeof(c));
	test_pattern_fill(data, sizeof(data), SEED, 0);
	memset(pre, 0xee, sizeof(pre));
	test_pair(&w, &r, 64);
	if (prefill > 0)
		ASSERT_EQ(shmpipe_write(w, pre, prefill), prefill);
	c.op = OP_WRITE;
	c.w = w;
	c.wbuf = data;
	c.len = sizeof(data);
	call_start(&c);
	while (test_rstats(r).write_index < 64) {
		if (test_now_ms() > deadline)
			TEST_FAIL("the writer did not fill the ring");
		test_sleep_ms(1);
	}
	signals_go_on(&c, prefill == 64 ? "untimed write on a full ring"
					: "untimed write asleep part way");
	ASSERT_EQ(test_rstats(r).write_index, 64);
	if (prefill > 0) {
		test_read_exact(r, in, prefill);
		ASSERT_MEM_EQ(in, pre, prefill);
	}
	while (got < sizeof(data)) {
		ssize_t k = shmpipe_read(r, in, sizeof(in));

		ASSERT_GT(k, 0);
		ASSERT_LE(got + (size_t)k, sizeof(data));
		ASSERT_PATTERN(in, (size_t)k, SEED, got);
		got += (size_t)k;
	}
	/* The whole count: it went on, it did not stop part way. */
	ASSERT_EQ(call_join(&c), 200);
	ASSERT_EQ(test_rstats(r).write_index, prefill + 200);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

/* ---- (b) across processes --------------------------------------------------------- */

static void restart_named_attach(void)
{
	char name[XP_NAME_MAX], tot[32], sd[32];
	const char *args[] = {"write", name, tot, sd, NULL};
	shmpipe_options o = test_opts(4096);
	struct call c;
	pid_t pid;

	memset(&c, 0, sizeof(c));
	xp_name(name, sizeof(name), 1);
	snprintf(tot, sizeof(tot), "%d", 100000);
	snprintf(sd, sizeof(sd), "%" PRIu64, (uint64_t)SEED);
	ASSERT_OK(shmpipe_reader_create(&c.r, name, &o));
	c.op = OP_READ_STREAM;
	c.total = 100000;
	call_start(&c);
	signals_go_on(&c, "untimed read waiting for a writer to attach");
	pid = xp_spawn_peer(args);
	ASSERT_EQ(call_join(&c), 0);
	XP_ASSERT_EXIT(xp_wait(pid, 30000), T_PASS);
	ASSERT_OK(shmpipe_unlink(name));
	ASSERT_OK(shmpipe_reader_close(c.r));
}

static void restart_named_peer(void)
{
	char name[XP_NAME_MAX];
	shmpipe_options o = test_opts(4096);
	struct xp_chan go;
	struct call c;
	uint8_t data[4096 + 200];
	pid_t pid;

	test_pattern_fill(data, sizeof(data), SEED, 0);
	xp_chan_open(&go);

	/* Our reader waits for data from a writer process. */
	memset(&c, 0, sizeof(c));
	xp_name(name, sizeof(name), 2);
	ASSERT_OK(shmpipe_reader_create(&c.r, name, &o));
	pid = xp_fork();
	if (pid == 0) {
		shmpipe_writer *w;

		ASSERT_OK(shmpipe_writer_open(&w, name));
		xp_recv(&go, 30000);
		ASSERT_EQ(shmpipe_write(w, data, 100), 100);
		ASSERT_OK(shmpipe_writer_close(w));
		_exit(T_PASS);
	}
	c.op = OP_READ;
	call_start(&c);
	signals_go_on(&c, "untimed read of a named pipe");
	xp_send(&go, 'g');
	ASSERT_EQ(call_join(&c), 100);
	ASSERT_PATTERN(c.rbuf, 100, SEED, 0);
	ASSERT_EQ(shmpipe_read(c.r, c.rbuf, sizeof(c.rbuf)), 0);
	XP_ASSERT_EXIT(xp_wait(pid, 30000), T_PASS);
	ASSERT_OK(shmpipe_unlink(name));
	ASSERT_OK(shmpipe_reader_close(c.r));

	/* Our writer waits for room from a reader process. */
	memset(&c, 0, sizeof(c));
	xp_name(name, sizeof(name), 3);
	ASSERT_OK(shmpipe_writer_create(&c.w, name, &o));
	pid = xp_fork();
	if (pid == 0) {
		shmpipe_reader *r;
		uint8_t in[sizeof(data)];

		ASSERT_OK(shmpipe_reader_open(&r, name));
		xp_recv(&go, 30000);
		test_read_exact(r, in, sizeof(in));
		ASSERT_PATTERN(in, sizeof(in), SEED, 0);
		ASSERT_EQ(shmpipe_read(r, in, 1), 0);
		ASSERT_OK(shmpipe_reader_close(r));
		_exit(T_PASS);
	}
	ASSERT_EQ(shmpipe_write(c.w, data, 4096), 4096);
	c.op = OP_WRITE;
	c.wbuf = data + 4096;
	c.len = 200;
	call_start(&c);
	signals_go_on(&c, "untimed write to a named pipe");
	xp_send(&go, 'g');
	ASSERT_EQ(call_join(&c), 200);
	ASSERT_OK(shmpipe_writer_close(c.w));
	XP_ASSERT_EXIT(xp_wait(pid, 30000), T_PASS);
	ASSERT_OK(shmpipe_unlink(name));
	xp_chan_close(&go);
}

/* ---- (c) what SA_RESTART does not restart ------------------------------------------ */

static void restart_exceptions(void)
{
	static uint8_t full[64];
	shmpipe_writer *w;
	shmpipe_reader *r;
	struct call c;
	int64_t t0;

	/* Timed calls: -EINTR at the first signal, long before the timeout. */
	test_pair(&w, &r, 64);
	ASSERT_OK(shmpipe_reader_set_timeout(r, 20000));
	memset(&c, 0, sizeof(c));
	c.op = OP_READ;
	c.r = r;
	call_start(&c);
	t0 = test_now_ms();
	ASSERT_ERR(signal_ends(&c), -EINTR);
	ASSERT_LT(test_now_ms() - t0, 5000);

	ASSERT_EQ(shmpipe_write(w, full, 64), 64);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 20000));
	memset(&c, 0, sizeof(c));
	c.op = OP_WRITE;
	c.w = w;
	c.wbuf = full;
	c.len = 10;
	call_start(&c);
	ASSERT_ERR(signal_ends(&c), -EINTR);
	ASSERT_EQ(test_rstats(r).write_index, 64);

	/* Untimed calls that signals do not stop: an interrupt does. */
	ASSERT_OK(shmpipe_writer_set_timeout(w, -1));
	memset(&c, 0, sizeof(c));
	c.op = OP_WRITE;
	c.w = w;
	c.wbuf = full;
	c.len = 10;
	call_start(&c);
	signals_go_on(&c, "untimed write on a full ring");
	ASSERT_OK(shmpipe_writer_interrupt(w));
	ASSERT_ERR(call_join(&c), -EINTR);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));

	test_pair(&w, &r, 64);
	memset(&c, 0, sizeof(c));
	c.op = OP_READ;
	c.r = r;
	call_start(&c);
	signals_go_on(&c, "untimed read on an empty ring");
	ASSERT_OK(shmpipe_reader_interrupt(r));
	ASSERT_ERR(call_join(&c), -EINTR);
	/* And it works again. */
	ASSERT_EQ(shmpipe_write(w, "x", 1), 1);
	ASSERT_EQ(shmpipe_read(r, c.rbuf, sizeof(c.rbuf)), 1);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

/* ---- (d) without SA_RESTART ---------------------------------------------------------- */

static void no_restart(void)
{
	static uint8_t full[64];
	shmpipe_writer *w;
	shmpipe_reader *r;
	struct call c;

	test_pair(&w, &r, 64);
	memset(&c, 0, sizeof(c));
	c.op = OP_READ;
	c.r = r;
	call_start(&c);
	ASSERT_ERR(signal_ends(&c), -EINTR);

	ASSERT_EQ(shmpipe_write(w, full, 64), 64);
	memset(&c, 0, sizeof(c));
	c.op = OP_WRITE;
	c.w = w;
	c.wbuf = full;
	c.len = 10;
	call_start(&c);
	ASSERT_ERR(signal_ends(&c), -EINTR);
	ASSERT_EQ(test_rstats(r).write_index, 64);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

/*
 * ThreadSanitizer runs a handler only when the interrupted call returns to
 * its interceptor, and a call the kernel restarts does not: the handler
 * waits for the call to end, which this test waits for the handler to do.
 */
#if defined(__SANITIZE_THREAD__)
#define SIGNALS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SIGNALS_TSAN 1
#endif
#endif

static int body(int argc, char **argv)
{
	(void)argc;
	(void)argv;
#ifdef SIGNALS_TSAN
	TEST_SKIP("ThreadSanitizer defers handlers until a restarted call ends");
#endif
	test_watchdog(60);

	install(1);
	restart_read();
	restart_write(64); /* nothing goes in before it sleeps */
	restart_write(0);  /* 64 of 200 go in, then it sleeps */
	restart_write(40); /* 24 of 200 go in */
	printf("(a) SA_RESTART: untimed read and write go on through 5 signals each\n");
	restart_named_attach();
	restart_named_peer();
	printf("(b) SA_RESTART: the same across processes, and waiting for a writer to attach\n");
	restart_exceptions();
	printf("(c) SA_RESTART: timed calls return -EINTR; interrupts still work\n");
	install(0);
	no_restart();
	printf("(d) without SA_RESTART: the first signal returns -EINTR\n");
	return T_PASS;
}

int main(int argc, char **argv)
{
	return xp_main("signals_restart", body, argc, argv);
}
