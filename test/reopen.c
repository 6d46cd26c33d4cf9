/* SPDX-License-Identifier: MIT */
/*
 * Description: SHMPIPE_REOPEN, an end taken again after its process died.
 *
 * (a) Readers killed (SIGKILL) at random moments, one after another, while
 *     this process writes: the writer never fails, and each new reader
 *     (shmpipe_reader_open) starts at the first byte not consumed, so that
 *     the readers together see every byte of the stream once, in order,
 *     checked, and the last one sees the end after exactly all of it. In
 *     record mode too: each record whole, none lost or repeated.
 * (b) Writers killed at random moments while this process reads: each new
 *     writer (shmpipe_writer_open) goes on after the last byte committed,
 *     and the reader, which never fails, gets the whole stream once, then
 *     the end.
 * (c) Only a dead end is taken: while its holder lives, -EBUSY; an end
 *     closed cleanly is not taken either (-EBUSY), and a pipe without the
 *     flag keeps a dead end's -EBUSY (and its peer's -EPIPE). A broadcast
 *     pipe refuses the flag (-EINVAL).
 *
 *   reopen [kills]   (default 12 per side)
 */
#include <pthread.h>

#include "xproc.h"

#define SEED 0x5eedull
#define CAP  (64 * 1024)

static int name_k;

static void next_name(char *buf, size_t n)
{
	xp_name(buf, n, ++name_k);
}

static shmpipe_options reopen_opts(unsigned flags)
{
	shmpipe_options o = test_opts(CAP);

	o.flags = SHMPIPE_REOPEN | flags;
	return o;
}

/* The ends go at about 64 MB/s at most, so that a kill finds them busy. */
static void pace(uint64_t *since, uint64_t n)
{
	*since += n;
	if (*since >= 64 * 1024) {
		*since = 0;
		test_sleep_ms(1);
	}
}

/*
 * A child to be killed moves at most its budget (bytes or records), then
 * waits for the kill: however fast the machine, it can never reach the end
 * and exit before it is killed.
 */
#define NO_BUDGET UINT64_MAX

static void spend(uint64_t *budget, uint64_t n)
{
	if (*budget == NO_BUDGET)
		return;
	if (n >= *budget)
		for (;;)
			pause();
	*budget -= n;
}

/* Byte streams: the pattern from the end's own position on. */
static void read_from_here(shmpipe_reader *r, uint64_t total, uint64_t budget)
{
	uint64_t off = test_rstats(r).read_index, since = 0;
	uint8_t buf[8192];
	ssize_t n;

	while ((n = shmpipe_read(r, buf, sizeof(buf))) > 0) {
		ASSERT_LE(off + (uint64_t)n, total);
		ASSERT_PATTERN(buf, (size_t)n, SEED, off);
		off += (uint64_t)n;
		pace(&since, (uint64_t)n);
		spend(&budget, (uint64_t)n);
	}
	if (n < 0)
		TEST_FAIL("read at %" PRIu64 ": %s", off, shmpipe_strerror((int)n));
	ASSERT_EQ(off, total);
}

static void write_from_here(shmpipe_writer *w, uint64_t total, uint64_t budget)
{
	uint64_t off = test_wstats(w).write_index, rng = off + 1, since = 0;
	uint8_t buf[8192];

	while (off < total) {
		size_t n = (size_t)test_rand_range(&rng, 1, sizeof(buf));
		ssize_t put;

		if (n > total - off)
			n = (size_t)(total - off);
		test_pattern_fill(buf, n, SEED, off);
		put = shmpipe_write(w, buf, n);
		if (put < 0)
			TEST_FAIL("write at %" PRIu64 ": %s", off, shmpipe_strerror((int)put));
		off += (uint64_t)put; /* a short write goes on from where it stopped */
		pace(&since, (uint64_t)put);
		spend(&budget, (uint64_t)put);
	}
}

/* Records: numbered by the writer; the reader checks each whole. */
static uint64_t rec_len(uint64_t seq)
{
	return 1 + (test_mix64(seq) % 3000);
}

static void read_records(shmpipe_reader *r, uint64_t count, uint64_t *seq, uint64_t budget)
{
	uint8_t buf[4096];
	uint64_t since = 0;
	ssize_t n;

	while ((n = shmpipe_read(r, buf, sizeof(buf))) > 0) {
		uint64_t got;

		ASSERT_GE(n, 16);
		memcpy(&got, buf, 8);
		/* The first record this reader sees is the first not consumed. */
		if (*seq == UINT64_MAX)
			*seq = got;
		ASSERT_EQ(got, *seq);
		ASSERT_EQ((uint64_t)n, rec_len(got) + 16);
		ASSERT_PATTERN(buf + 16, (size_t)n - 16, SEED ^ got, 0);
		(*seq)++;
		pace(&since, (uint64_t)n);
		spend(&budget, 1);
	}
	if (n < 0)
		TEST_FAIL("read of record %" PRIu64 ": %s", *seq, shmpipe_strerror((int)n));
	ASSERT_EQ(*seq, count);
}

static void write_records(shmpipe_writer *w, uint64_t count)
{
	uint8_t buf[4096];

	for (uint64_t seq = 0; seq < count; seq++) {
		uint64_t len = rec_len(seq) + 16;

		memcpy(buf, &seq, 8);
		memcpy(buf + 8, &len, 8);
		test_pattern_fill(buf + 16, len - 16, SEED ^ seq, 0);
		ASSERT_EQ(shmpipe_write(w, buf, len), (ssize_t)len);
	}
}

/* A child that reads (or writes) until it is killed, or to the end. */
static pid_t reader_child(const char *name, uint64_t total, int records, uint64_t budget)
{
	pid_t pid = xp_fork();

	if (pid == 0) {
		shmpipe_reader *r;
		int err;

		/* The last reader may have to wait for the dead one's lock to go. */
		while ((err = shmpipe_reader_open(&r, name)) == -EBUSY)
			test_sleep_ms(1);
		ASSERT_OK(err);
		if (records) {
			uint64_t seq = UINT64_MAX;

			read_records(r, total, &seq, budget);
		} else {
			read_from_here(r, total, budget);
		}
		_exit(shmpipe_reader_close(r) == 0 ? 0 : 1);
	}
	return pid;
}

static pid_t writer_child(const char *name, uint64_t total, uint64_t budget)
{
	pid_t pid = xp_fork();

	if (pid == 0) {
		shmpipe_writer *w;
		int err;

		while ((err = shmpipe_writer_open(&w, name)) == -EBUSY)
			test_sleep_ms(1);
		ASSERT_OK(err);
		write_from_here(w, total, budget);
		_exit(shmpipe_writer_close(w) == 0 ? 0 : 1);
	}
	return pid;
}

struct feed {
	shmpipe_writer *w;
	uint64_t total;
	int records;
};

static void *feed_main(void *arg)
{
	struct feed *f = arg;

	if (f->records)
		write_records(f->w, f->total);
	else
		write_from_here(f->w, f->total, NO_BUDGET);
	ASSERT_OK(shmpipe_writer_close(f->w));
	return NULL;
}

/* (a): this process writes; readers come, die, and the last reads to the end. */
static void readers_die(int kills, int records)
{
	char name[XP_NAME_MAX];
	uint64_t total = records ? 15000 : (uint64_t)16 << 20, rng = 99 + (uint64_t)records;
	shmpipe_options o = reopen_opts(records ? SHMPIPE_RECORDS : 0);
	struct feed f = {.total = total, .records = records};
	pthread_t t;
	int64_t t0 = test_now_ms();

	next_name(name, sizeof(name));
	ASSERT_OK(shmpipe_writer_create(&f.w, name, &o));
	ASSERT_OK(pthread_create(&t, NULL, feed_main, &f));
	for (int k = 0; k < kills; k++) {
		pid_t pid = reader_child(name, total, records, total / ((uint64_t)kills + 2));

		test_sleep_ms((int)test_rand_range(&rng, 3, 30));
		kill(pid, SIGKILL);
		XP_ASSERT_KILLED(xp_wait(pid, 10000), SIGKILL);
	}
	XP_ASSERT_EXIT(xp_wait(reader_child(name, total, records, NO_BUDGET), 60000), 0);
	ASSERT_OK(pthread_join(t, NULL));
	printf("(a) %s: %d readers killed, the writer went on; the last read to the end "
	       "(%" PRIu64 " %s), %" PRId64 " ms\n",
	       records ? "records" : "bytes", kills, total, records ? "records" : "bytes",
	       test_now_ms() - t0);
	ASSERT_OK(shmpipe_unlink(name));
}

/* (b): this process reads; writers come, die, and the last writes to the end. */
static void writers_die(int kills)
{
	char name[XP_NAME_MAX];
	uint64_t total = (uint64_t)16 << 20, rng = 7;
	shmpipe_options o = reopen_opts(0);
	shmpipe_reader *r;
	int64_t t0 = test_now_ms();
	pid_t last;

	next_name(name, sizeof(name));
	ASSERT_OK(shmpipe_reader_create(&r, name, &o));
	for (int k = 0; k < kills; k++) {
		pid_t pid = writer_child(name, total, total / ((uint64_t)kills + 2));
		uint8_t buf[4096];
		uint64_t off = test_rstats(r).read_index;
		int64_t until = test_now_ms() + (int64_t)test_rand_range(&rng, 3, 30);

		/* Read for a while, then kill the writer. */
		while (test_now_ms() < until) {
			ssize_t n;

			ASSERT_OK(shmpipe_reader_set_timeout(r, 5));
			n = shmpipe_read(r, buf, sizeof(buf));
			if (n == -ETIMEDOUT)
				continue;
			ASSERT_GT(n, 0);
			ASSERT_PATTERN(buf, (size_t)n, SEED, off);
			off += (uint64_t)n;
		}
		kill(pid, SIGKILL);
		XP_ASSERT_KILLED(xp_wait(pid, 10000), SIGKILL);
	}
	ASSERT_OK(shmpipe_reader_set_timeout(r, -1));
	last = writer_child(name, total, NO_BUDGET);
	read_from_here(r, total, NO_BUDGET);
	XP_ASSERT_EXIT(xp_wait(last, 60000), 0);
	printf("(b) %d writers killed, the reader went on and got the whole stream "
	       "(%" PRIu64 " bytes) once, %" PRId64 " ms\n",
	       kills, total, test_now_ms() - t0);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_unlink(name));
}

/* (c): only the end of a dead process, only on a pipe that says so. */
static void only_dead(void)
{
	char name[XP_NAME_MAX];
	shmpipe_options o = reopen_opts(0);
	shmpipe_writer *w;
	shmpipe_reader *r, *r2;
	pid_t pid;
	uint8_t b = 1;

	next_name(name, sizeof(name));
	ASSERT_OK(shmpipe_writer_create(&w, name, &o));
	ASSERT_OK(shmpipe_reader_open(&r, name));
	ASSERT_ERR(shmpipe_reader_open(&r2, name), -EBUSY); /* alive: ours */
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_ERR(shmpipe_reader_open(&r2, name), -EBUSY); /* closed: the end is over */
	ASSERT_ERR(shmpipe_write(w, &b, 1), -EPIPE);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_unlink(name));

	/* Without the flag a dead reader's end stays taken, and the writer fails. */
	o.flags = 0;
	next_name(name, sizeof(name));
	ASSERT_OK(shmpipe_writer_create(&w, name, &o));
	pid = xp_fork();
	if (pid == 0) {
		ASSERT_OK(shmpipe_reader_open(&r, name));
		pause();
		_exit(1);
	}
	for (shmpipe_info info = {0}; info.reader.state != SHMPIPE_END_OPEN; test_sleep_ms(1))
		ASSERT_OK(shmpipe_inspect(name, &info));
	kill(pid, SIGKILL);
	XP_ASSERT_KILLED(xp_wait(pid, 10000), SIGKILL);
	ASSERT_ERR(shmpipe_reader_open(&r2, name), -EBUSY);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 5000));
	for (;;) {
		ssize_t n = shmpipe_write(w, &b, 1);

		if (n == -EPIPE)
			break;
		ASSERT_EQ(n, 1);
	}
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_unlink(name));

	o = reopen_opts(0);
	o.readers = 2;
	ASSERT_ERR(shmpipe_writer_create(&w, "/shmpipe-never", &o), -EINVAL);
	printf("(c) only a dead end is taken again, only with SHMPIPE_REOPEN\n");
}

static int body(int argc, char **argv)
{
	int kills = argc > 1 ? atoi(argv[1]) : 12;

	test_watchdog(240);
	only_dead();
	readers_die(kills, 0);
	readers_die(kills, 1);
	writers_die(kills);
	return T_PASS;
}

int main(int argc, char **argv)
{
	return xp_main("reopen", body, argc, argv);
}
