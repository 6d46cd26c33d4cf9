/* SPDX-License-Identifier: MIT */
/*
 * Description: the two ends of a named pipe meeting while calls go on. Until
 * the creating end has accepted the opening end's hello, the opening end's
 * rings go nowhere (it has no doorbell to ring yet), and the creating end
 * learns of its peer from the rendezvous socket instead.
 *
 * (a) The creating end is an event loop (timeout 0), the writer, and filled
 *     the ring before anyone opened it. The opening reader drains the ring
 *     (its ring of the writer is lost: not met yet) and waits for more. The
 *     writer's descriptor is readable (the peer came); its next call writes
 *     and meets the reader as it rings it. After that call the descriptor
 *     must still be readable, since the lost ring said there is room: a
 *     level-triggered loop that makes one call per readiness would stall
 *     otherwise. The reader is rung, and both go on to the end.
 * (b) The same with the roles turned: the creating reader, the opening
 *     writer that fills the ring.
 * (c) The opening end is slow between its connect and its hello (its
 *     sendmsg is held back here), while the creating end waits in a
 *     blocking read. It must still meet it and get every byte: a creator
 *     that gave up on the silent connection would sleep for ever, and the
 *     opener's rings would go nowhere.
 * (d) The same, but a call with timeout 0 took the opening end's connection
 *     before its hello came; then the blocking read begins. It must watch
 *     that connection, not wait in accept(2) for another one.
 *
 *   poll_meet [letters of the cases to run]   (default: abcd)
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "pollfd.h"
#include "xproc.h"

#define CAP	 4096
#define SEED	 0x3ee7
#define STALL_MS (5000 * TEST_WATCHDOG_SCALE)

/*
 * The hello is the opening end's only sendmsg(2): a thread that asks for it
 * has its sends held back this long. Defined here, it takes the library's
 * calls (linked statically) in place of the C library's.
 */
static _Thread_local int hold_sendmsg_ms;

typedef ssize_t sendmsg_fn(int, const struct msghdr *, int);

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	static sendmsg_fn *real;

	if (!real)
		real = (sendmsg_fn *)dlsym(RTLD_NEXT, "sendmsg");
	if (!real)
		TEST_FAIL("sendmsg: %s", dlerror());
	if (hold_sendmsg_ms > 0)
		test_sleep_ms(hold_sendmsg_ms);
	return real(fd, msg, flags);
}

static int readable(int fd)
{
	return tp_readable(fd, 0);
}

/* Writes [off, off + n) of the pattern, through calls with timeout 0. */
static uint64_t fill(shmpipe_writer *w, uint64_t off)
{
	uint8_t buf[512];

	for (;;) {
		ssize_t n;

		test_pattern_fill(buf, sizeof(buf), SEED, off);
		n = shmpipe_write(w, buf, sizeof(buf));
		if (n == -EAGAIN)
			return off;
		ASSERT_GT(n, 0);
		off += (uint64_t)n;
	}
}

/* Reads and checks everything there is, through calls with timeout 0. */
static uint64_t drain(shmpipe_reader *r, uint64_t off)
{
	uint8_t buf[700];

	for (;;) {
		ssize_t n = shmpipe_read(r, buf, sizeof(buf));

		if (n == -EAGAIN)
			return off;
		ASSERT_GT(n, 0);
		ASSERT_PATTERN(buf, (size_t)n, SEED, off);
		off += (uint64_t)n;
	}
}

/* (a) the creating writer an event loop, the opening reader too. */
static void test_creator_writes(void)
{
	char name[XP_NAME_MAX];
	shmpipe_options o = test_opts(CAP);
	shmpipe_writer *w;
	shmpipe_reader *r;
	uint64_t woff, roff;
	ssize_t n;
	uint8_t b;

	xp_name(name, sizeof(name), 1);
	ASSERT_OK(shmpipe_writer_create(&w, name, &o));
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	woff = fill(w, 0);
	ASSERT_EQ(woff, (uint64_t)CAP);
	ASSERT_EQ(readable(shmpipe_writer_pollfd(w)), 0);

	ASSERT_OK(shmpipe_reader_open(&r, name));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	/* Frees the whole ring: rings the writer, which has not met us. */
	roff = drain(r, 0);
	ASSERT_EQ(roff, woff);
	/* Someone came: the writer's loop is told to call. */
	ASSERT_EQ(readable(shmpipe_writer_pollfd(w)), 1);

	/* One call that writes, and meets the reader as it rings it. */
	test_pattern_fill(&b, 1, SEED, woff);
	n = shmpipe_write(w, &b, 1);
	ASSERT_EQ(n, 1);
	woff++;
	ASSERT_EQ(readable(shmpipe_reader_pollfd(r)), 1);
	/* The room the lost ring told of is still to be used: call again. */
	ASSERT_EQ(readable(shmpipe_writer_pollfd(w)), 1);
	woff = fill(w, woff);
	ASSERT_EQ(woff, (uint64_t)CAP + 1 + CAP - 1);
	ASSERT_EQ(readable(shmpipe_writer_pollfd(w)), 0);

	/* From here on both have met: a read rings the writer at once. */
	roff = drain(r, roff);
	ASSERT_EQ(roff, woff);
	ASSERT_EQ(tp_readable(shmpipe_writer_pollfd(w), STALL_MS), 1);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_EQ(tp_readable(shmpipe_reader_pollfd(r), STALL_MS), 1);
	ASSERT_EQ(shmpipe_read(r, &b, 1), 0);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_unlink(name));
}

/* (b) the creating reader an event loop, the opening writer too. */
static void test_creator_reads(void)
{
	char name[XP_NAME_MAX];
	shmpipe_options o = test_opts(CAP);
	shmpipe_writer *w;
	shmpipe_reader *r;
	uint64_t woff, roff;
	uint8_t buf[100];
	ssize_t n;

	xp_name(name, sizeof(name), 2);
	ASSERT_OK(shmpipe_reader_create(&r, name, &o));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	ASSERT_ERR(shmpipe_read(r, buf, 1), -EAGAIN);
	ASSERT_EQ(readable(shmpipe_reader_pollfd(r)), 0);

	ASSERT_OK(shmpipe_writer_open(&w, name));
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	/* Rings the reader, which has not met us, and fills the ring. */
	woff = fill(w, 0);
	ASSERT_EQ(woff, (uint64_t)CAP);
	ASSERT_EQ(readable(shmpipe_reader_pollfd(r)), 1);

	/* One call that reads a little, and meets the writer as it rings it. */
	n = shmpipe_read(r, buf, sizeof(buf));
	ASSERT_EQ(n, (ssize_t)sizeof(buf));
	ASSERT_PATTERN(buf, sizeof(buf), SEED, 0);
	roff = sizeof(buf);
	ASSERT_EQ(readable(shmpipe_writer_pollfd(w)), 1);
	/* The data the lost ring told of is still there: call again. */
	ASSERT_EQ(readable(shmpipe_reader_pollfd(r)), 1);
	roff = drain(r, roff);
	ASSERT_EQ(roff, woff);
	ASSERT_EQ(readable(shmpipe_reader_pollfd(r)), 0);

	woff = fill(w, woff);
	ASSERT_EQ(woff, (uint64_t)2 * CAP);
	ASSERT_EQ(tp_readable(shmpipe_reader_pollfd(r), STALL_MS), 1);
	roff = drain(r, roff);
	ASSERT_EQ(roff, woff);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_EQ(tp_readable(shmpipe_reader_pollfd(r), STALL_MS), 1);
	ASSERT_EQ(shmpipe_read(r, buf, 1), 0);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_unlink(name));
}

/* (c) a slow hello, met by a creating end in a blocking read. */
struct slow_opener {
	char name[XP_NAME_MAX];
	uint64_t total;
	atomic_int done;
};

static void *slow_opener(void *arg)
{
	struct slow_opener *s = arg;
	shmpipe_writer *w;
	uint8_t buf[1000];
	int64_t t0;

	/* Far longer than the creating end waits for a hello in one go. */
	hold_sendmsg_ms = 300;
	ASSERT_OK(shmpipe_writer_open(&w, s->name));
	hold_sendmsg_ms = 0;
	for (uint64_t off = 0; off < s->total;) {
		size_t k = sizeof(buf);
		ssize_t n;

		if (k > s->total - off)
			k = (size_t)(s->total - off);
		test_pattern_fill(buf, k, SEED, off);
		n = shmpipe_write(w, buf, k);
		ASSERT_GT(n, 0);
		off += (uint64_t)n;
	}
	ASSERT_OK(shmpipe_writer_close(w));
	/* The reader must get it all: a bound here rather than a hang. */
	t0 = test_now_ms();
	while (!atomic_load(&s->done)) {
		if (test_now_ms() - t0 > STALL_MS)
			TEST_FAIL("the creating end never got the data of a slow opener");
		test_sleep_ms(5);
	}
	return NULL;
}

static void test_slow_hello(bool taken)
{
	struct slow_opener s = {.total = 10 * CAP};
	shmpipe_options o = test_opts(CAP);
	shmpipe_reader *r;
	pthread_t t;
	uint8_t buf[333];
	uint64_t off = 0;

	xp_name(s.name, sizeof(s.name), taken ? 4 : 3);
	ASSERT_OK(shmpipe_reader_create(&r, s.name, &o));
	if (taken) {
		/* Quiet the new end's descriptor, so that it tells of the connect. */
		ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
		ASSERT_ERR(shmpipe_read(r, buf, 1), -EAGAIN);
	}
	ASSERT_EQ(pthread_create(&t, NULL, slow_opener, &s), 0);
	if (taken) {
		/* A call with timeout 0 takes the connection, whose hello is held back. */
		ASSERT_EQ(tp_readable(shmpipe_reader_pollfd(r), STALL_MS), 1);
		ASSERT_ERR(shmpipe_read(r, buf, 1), -EAGAIN);
		ASSERT_OK(shmpipe_reader_set_timeout(r, -1));
	}
	for (;;) {
		ssize_t n = shmpipe_read(r, buf, sizeof(buf));

		ASSERT_GE(n, 0);
		if (n == 0)
			break;
		ASSERT_PATTERN(buf, (size_t)n, SEED, off);
		off += (uint64_t)n;
	}
	ASSERT_EQ(off, s.total);
	atomic_store(&s.done, 1);
	ASSERT_EQ(pthread_join(t, NULL), 0);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_unlink(s.name));
}

static int body(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : "abcd";

	test_watchdog(20);
	if (strchr(only, 'a')) {
		test_creator_writes();
		printf("ok - a creating writer whose lost ring is made up for when it meets\n");
	}
	if (strchr(only, 'b')) {
		test_creator_reads();
		printf("ok - a creating reader whose lost ring is made up for when it meets\n");
	}
	if (strchr(only, 'c')) {
		test_slow_hello(false);
		printf("ok - a creating end in a blocking read meets a slow opener\n");
	}
	if (strchr(only, 'd')) {
		test_slow_hello(true);
		printf("ok - a blocking read meets a slow opener whose connection was taken\n");
	}
	return T_PASS;
}

int main(int argc, char **argv)
{
	return xp_main("poll_meet", body, argc, argv);
}
