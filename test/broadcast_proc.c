/* SPDX-License-Identifier: MIT */
/*
 * Description: broadcast (options.readers = N > 1) across processes, each
 * reader checking every byte it gets against the stream pattern.
 *
 *   limit          a named broadcast pipe refuses shmpipe_reader_create;
 *                  the N+1th reader by name gets -EBUSY; the place of a
 *                  reader killed with SIGKILL is free again, and the reader
 *                  that takes it is woken with the data from its join point.
 *   reader_killed  a reader that never reads is killed while the writer
 *                  waits on it (a small ring): the writer goes on with the
 *                  other reader within 1 s, which still gets every byte;
 *                  the same for a reader killed before the writer waits.
 *   writer_killed  readers (some asleep, one behind) get every committed
 *                  byte, then -ECONNRESET.
 *   hostile_index  a process maps the object and writes an impossible
 *                  read_index (beyond write_index) into a live reader's
 *                  place while the writer waits on that reader: the writer
 *                  neither faults nor hangs, drops that reader, and goes on
 *                  with the other, which gets every byte.
 *   hostile_garbage  garbage in the unused places (random bytes; OPEN
 *                  states with stale, plausible or impossible positions and
 *                  waiter bits) does not stop or break the stream, a reader
 *                  that comes later takes such a place, and the writer gets
 *                  -EPIPE once the real readers are gone, not before.
 *   inspect        shmpipe_inspect and shmpipe_inspect_readers: the places,
 *                  their states, pids, liveness, sleep and counts, through
 *                  a reader that sleeps, one that is killed, one that closes.
 *   stress         (argument "stress [MiB]") SHMPIPE_STRESS_MB MiB (1024
 *                  unless said otherwise) from a named writer to 4 reader
 *                  processes that opened it by name, each checking every byte
 *                  and the total.
 *
 * The places table is read and written at the offsets of src/layout.h: it
 * tests the shared ABI, on purpose.
 *
 * usage: broadcast_proc [TEST...] | broadcast_proc stress [MiB]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "xproc.h"
#include "layout.h"

/* ---- helpers ------------------------------------------------------------ */

static shmpipe_options bc_opts(size_t capacity, unsigned readers, unsigned flags)
{
	shmpipe_options o = test_opts(capacity);

	o.readers = readers;
	o.flags = flags;
	return o;
}

/* Opens a reader by name; a creator still writing its header is waited for. */
static shmpipe_reader *open_reader(const char *name)
{
	shmpipe_reader *r = NULL;
	int err;

	for (int i = 0;; i++) {
		err = shmpipe_reader_open(&r, name);
		if (err != -ENOENT && err != -EAGAIN)
			break;
		ASSERT_LT(i, 5000 * TEST_WATCHDOG_SCALE);
		test_sleep_ms(1);
	}
	ASSERT_OK(err);
	return r;
}

/*
 * Reads from stream offset start until the read returns 0 or an error,
 * checking every byte. Returns the offset reached; *last gets what the
 * last read returned. Stops after `max` bytes if max is not 0.
 */
static uint64_t drain(shmpipe_reader *r, uint64_t seed, uint64_t start, uint64_t max, ssize_t *last)
{
	uint8_t buf[5003];
	uint64_t off = start;
	ssize_t ret = 0;

	while (max == 0 || off - start < max) {
		size_t n = sizeof(buf);

		if (max != 0 && n > max - (off - start))
			n = (size_t)(max - (off - start));
		ret = shmpipe_read(r, buf, n);
		if (ret <= 0)
			break;
		ASSERT_PATTERN(buf, (size_t)ret, seed, off);
		off += (uint64_t)ret;
	}
	*last = ret;
	return off;
}

/* What a reader process reports to the test. */
struct report {
	uint64_t start; /* its read_index right after it came */
	uint64_t end;	/* stream offset after its last byte */
	int64_t last;	/* what its last read returned */
	int place;	/* for the hostile tests: which place it took */
};

/*
 * A reader process: opens name, says 'o' on ch, then reads the stream from
 * where it came to the end (0), or `max` bytes if max is not 0, and closes.
 * Exits 0 if it got what `want_end` (0: anything) and want_last say.
 */
static pid_t reader_proc(const char *name, uint64_t seed, struct xp_chan *ch, struct report *rep,
			 uint64_t max, uint64_t want_end, ssize_t want_last)
{
	pid_t pid = xp_fork();

	if (pid == 0) {
		shmpipe_reader *r = open_reader(name);
		ssize_t last;

		rep->start = test_rstats(r).read_index;
		xp_send(ch, 'o');
		rep->end = drain(r, seed, rep->start, max, &last);
		rep->last = last;
		if (want_end != 0 && rep->end != want_end)
			TEST_FAIL("reader %ld: stream ends at %" PRIu64 ", want %" PRIu64,
				  (long)getpid(), rep->end, want_end);
		if (max == 0)
			ASSERT_ERR(last, want_last);
		ASSERT_OK(shmpipe_reader_close(r));
		_exit(T_PASS);
	}
	return pid;
}

/* A reader process that opens name, says 'o' on ch, and never reads. */
static pid_t idle_reader_proc(const char *name, struct xp_chan *ch)
{
	pid_t pid = xp_fork();

	if (pid == 0) {
		shmpipe_reader *r = open_reader(name);

		(void)r;
		xp_send(ch, 'o');
		for (;;)
			pause();
	}
	return pid;
}

/* Polls shmpipe_inspect until the writer waits with write_index == wi. */
static void await_writer_blocked(const char *name, uint64_t wi)
{
	int64_t end = test_now_ms() + 10000 * TEST_WATCHDOG_SCALE;
	shmpipe_info in;

	for (;;) {
		ASSERT_OK(shmpipe_inspect(name, &in));
		if (in.writer.asleep && in.stats.write_index == wi)
			return;
		if (test_now_ms() > end)
			TEST_FAIL("the writer is not waiting at %" PRIu64
				  " (asleep %d, write_index %" PRIu64 ")",
				  wi, in.writer.asleep, in.stats.write_index);
		test_sleep_ms(2);
	}
}

/* The place that process pid holds, from shmpipe_inspect_readers. */
static int place_of(const char *name, pid_t pid)
{
	shmpipe_reader_info ri[SHMPIPE_READERS_MAX];
	int n = shmpipe_inspect_readers(name, ri, SHMPIPE_READERS_MAX);

	ASSERT_GT(n, 0);
	for (int i = 0; i < n; i++) {
		if (ri[i].end.state == SHMPIPE_END_OPEN && ri[i].end.pid == (uint32_t)pid)
			return i;
	}
	TEST_FAIL("no place held by %ld", (long)pid);
}

/* A writer thread: len bytes of the pattern from offset 0, in writes of chunk. */
struct feed {
	pthread_t t;
	shmpipe_writer *w;
	uint64_t seed, len;
	size_t chunk;
	atomic_uint_fast64_t written;
	atomic_int done;
	ssize_t last;
};

static void *feed_main(void *arg)
{
	struct feed *f = arg;
	uint8_t *buf = malloc(f->chunk);
	uint64_t off = 0;

	ASSERT_NOT_NULL(buf);
	while (off < f->len) {
		size_t n = f->chunk;
		ssize_t ret;

		if (n > f->len - off)
			n = (size_t)(f->len - off);
		test_pattern_fill(buf, n, f->seed, off);
		ret = shmpipe_write(f->w, buf, n);
		if (ret != (ssize_t)n) {
			f->last = ret;
			break;
		}
		off += n;
		atomic_store(&f->written, off);
	}
	free(buf);
	atomic_store(&f->done, 1);
	return NULL;
}

static void feed_start(struct feed *f, shmpipe_writer *w, uint64_t seed, uint64_t len, size_t chunk)
{
	memset(f, 0, sizeof(*f));
	f->w = w;
	f->seed = seed;
	f->len = len;
	f->chunk = chunk;
	atomic_init(&f->written, 0);
	atomic_init(&f->done, 0);
	ASSERT_EQ(pthread_create(&f->t, NULL, feed_main, f), 0);
}

/* Waits for the writer thread to finish, at most ms: it must have written it all. */
static void feed_finish(struct feed *f, int64_t ms)
{
	int64_t end = test_now_ms() + ms * TEST_WATCHDOG_SCALE;

	while (!atomic_load(&f->done)) {
		if (test_now_ms() > end)
			TEST_FAIL("the writer is stuck at %" PRIu64 " of %" PRIu64 " bytes",
				  (uint64_t)atomic_load(&f->written), f->len);
		test_sleep_ms(1);
	}
	ASSERT_EQ(pthread_join(f->t, NULL), 0);
	ASSERT_ERR(f->last, 0);
	ASSERT_EQ(atomic_load(&f->written), f->len);
}

/*
 * How long, from now, until the writer's position passes wi (the writer
 * went on), at most limit_ms; fails past it.
 */
static int64_t time_to_pass(shmpipe_writer *w, uint64_t wi, int64_t limit_ms)
{
	int64_t t0 = test_now_ns();

	while (test_wstats(w).write_index <= wi) {
		if (test_now_ns() - t0 > limit_ms * 1000000)
			TEST_FAIL("the writer did not go on past %" PRIu64 " within %" PRId64 " ms",
				  wi, limit_ms);
		usleep(200);
	}
	return (test_now_ns() - t0) / 1000;
}

/* The header page of a pipe, mapped read-write, as a hostile process would. */
static uint8_t *map_object(const char *name, size_t *len)
{
	int fd = shm_open(name, O_RDWR, 0);
	struct stat st;
	uint8_t *p;

	ASSERT_GE(fd, 0);
	ASSERT_EQ(fstat(fd, &st), 0);
	*len = (size_t)sysconf(_SC_PAGESIZE);
	ASSERT_GE((uint64_t)st.st_size, (uint64_t)*len);
	p = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		TEST_FAIL("mmap: %s", strerror(errno));
	close(fd);
	return p;
}

static struct shmpipe__place *place_at(uint8_t *hdr, int i)
{
	return (struct shmpipe__place *)(void *)(hdr + SHMPIPE__PLACES +
						 (size_t)i * sizeof(struct shmpipe__place));
}

/* The place that process pid holds, read from the table itself. */
static int place_in_table(const char *name, int n, pid_t pid)
{
	size_t len;
	uint8_t *h = map_object(name, &len);
	int found = -1;

	for (int i = 0; i < n && found < 0; i++) {
		struct shmpipe__place *p = place_at(h, i);

		if (SHMPIPE__PLACE_STATE(atomic_load(&p->state)) == SHMPIPE__END_OPEN &&
		    atomic_load(&p->pid) == (uint32_t)pid)
			found = i;
	}
	munmap(h, len);
	if (found < 0)
		TEST_FAIL("no place held by %ld", (long)pid);
	return found;
}

/* ---- limit, and the place of a killed reader ---------------------------------- */

struct sleeper {
	shmpipe_reader *r;
	uint64_t seed, start;
	size_t len;
	atomic_int done;
};

static void *sleeper_main(void *arg)
{
	struct sleeper *s = arg;

	test_read_pattern(s->r, s->seed, s->start, s->len);
	atomic_store(&s->done, 1);
	return NULL;
}

static void test_limit(void)
{
	char name[XP_NAME_MAX];
	shmpipe_options o = bc_opts(4096, 2, 0);
	shmpipe_writer *w;
	shmpipe_reader *r2, *r3 = NULL;
	struct xp_chan ch;
	struct sleeper s;
	pthread_t t;
	pid_t victim;
	int64_t t0;
	const uint64_t seed = 101;

	xp_name(name, sizeof(name), 1);
	/* Readers come to a broadcast pipe; they do not make it. */
	ASSERT_ERR(shmpipe_reader_create(&r3, name, &o), -EINVAL);
	ASSERT_PTR_EQ(r3, NULL);
	ASSERT_EQ(xp_name_exists(name), 0);

	ASSERT_OK(shmpipe_writer_create(&w, name, &o));
	xp_chan_open(&ch);
	victim = idle_reader_proc(name, &ch);
	ASSERT_EQ(xp_recv(&ch, 10000), 'o');
	r2 = open_reader(name);
	ASSERT_EQ(shmpipe_writer_wait_readers(w, 2), 2);
	ASSERT_ERR(shmpipe_reader_open(&r3, name), -EBUSY);
	ASSERT_ERR(shmpipe_reader_open_fd(&r3, shmpipe_writer_fd(w)), -EBUSY);
	ASSERT_PTR_EQ(r3, NULL);
	test_write_pattern(w, seed, 0, 100);

	/* Killed: its place is free again, for the next reader by name. */
	kill(victim, SIGKILL);
	XP_ASSERT_KILLED(xp_wait(victim, 10000), SIGKILL);
	r3 = open_reader(name);
	ASSERT_EQ(test_rstats(r3).read_index, 100);
	ASSERT_EQ(test_rstats(r3).consumed, 0);
	ASSERT_ERR(shmpipe_reader_open(&s.r, name), -EBUSY);

	/* It sleeps for data, and the writer wakes it. */
	s.r = r3;
	s.seed = seed;
	s.start = 100;
	s.len = 50;
	atomic_init(&s.done, 0);
	ASSERT_EQ(pthread_create(&t, NULL, sleeper_main, &s), 0);
	test_sleep_ms(50);
	ASSERT_EQ(atomic_load(&s.done), 0);
	t0 = test_now_ms();
	test_write_pattern(w, seed, 100, 50);
	while (!atomic_load(&s.done)) {
		if (test_now_ms() - t0 > 1000 * TEST_WATCHDOG_SCALE)
			TEST_FAIL("the reader in the place of a dead one was not woken");
		test_sleep_ms(1);
	}
	ASSERT_EQ(pthread_join(t, NULL), 0);
	test_read_pattern(r2, seed, 0, 150);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r2));
	ASSERT_OK(shmpipe_reader_close(r3));
	ASSERT_OK(shmpipe_unlink(name));
	xp_chan_close(&ch);
}

/* ---- a reader killed while the writer waits on it ------------------------------ */

static struct report *reps; /* shared with the reader processes */

static void reader_killed(int k, int kill_first)
{
	const size_t cap = 4096;
	const uint64_t seed = 200 + (uint64_t)k, total = (uint64_t)8 << 20;
	char name[XP_NAME_MAX];
	shmpipe_options o = bc_opts(cap, 2, 0);
	shmpipe_writer *w;
	struct xp_chan ch;
	struct feed f;
	pid_t victim, live;
	int64_t us;

	xp_name(name, sizeof(name), 10 + k);
	ASSERT_OK(shmpipe_writer_create(&w, name, &o));
	xp_chan_open(&ch);
	memset(reps, 0, sizeof(*reps));
	victim = idle_reader_proc(name, &ch);
	ASSERT_EQ(xp_recv(&ch, 10000), 'o');
	live = reader_proc(name, seed, &ch, &reps[0], 0, total, 0);
	ASSERT_EQ(xp_recv(&ch, 10000), 'o');
	ASSERT_EQ(shmpipe_writer_wait_readers(w, 2), 2);
	ASSERT_EQ(reps[0].start, 0);

	if (kill_first) {
		/* Dead before the writer ever waits on it: found when it does. */
		kill(victim, SIGKILL);
		XP_ASSERT_KILLED(xp_wait(victim, 10000), SIGKILL);
		feed_start(&f, w, seed, total, 3000);
		us = time_to_pass(w, cap, 1000 * TEST_WATCHDOG_SCALE);
	} else {
		feed_start(&f, w, seed, total, 3000);
		/* The victim holds the writer at a full ring; the live reader is there too. */
		await_writer_blocked(name, cap);
		test_sleep_ms(20);
		ASSERT_EQ(test_wstats(w).write_index, cap);
		kill(victim, SIGKILL);
		us = time_to_pass(w, cap, 1000 * TEST_WATCHDOG_SCALE);
		XP_ASSERT_KILLED(xp_wait(victim, 10000), SIGKILL);
	}
	printf("reader killed %s the writer waited: it went on after %.1f ms\n",
	       kill_first ? "before" : "while", (double)us / 1000);
	feed_finish(&f, 60000);
	ASSERT_OK(shmpipe_writer_close(w));
	XP_ASSERT_EXIT(xp_wait(live, 60000), T_PASS);
	ASSERT_EQ(reps[0].end, total);
	ASSERT_OK(shmpipe_unlink(name));
	xp_chan_close(&ch);
}

static void test_reader_killed(void)
{
	reader_killed(0, 0);
	reader_killed(1, 1);
}

/* ---- the writer killed -------------------------------------------------------- */

struct drainer {
	pthread_t t;
	shmpipe_reader *r;
	uint64_t seed, end;
	ssize_t last;
};

static void *drainer_main(void *arg)
{
	struct drainer *d = arg;

	d->end = drain(d->r, d->seed, 0, 0, &d->last);
	return NULL;
}

static void test_writer_killed(void)
{
	const uint64_t seed = 301, first = 50000, tail = 5000;
	char name[XP_NAME_MAX];
	struct drainer d[2];
	shmpipe_reader *r[3];
	struct xp_chan ch;
	ssize_t last;
	pid_t writer;
	char c;

	xp_name(name, sizeof(name), 20);
	xp_chan_open(&ch);
	writer = xp_fork();
	if (writer == 0) {
		shmpipe_options o = bc_opts(8192, 3, 0);
		shmpipe_writer *w;

		ASSERT_OK(shmpipe_writer_create(&w, name, &o));
		xp_send(&ch, 'c');
		ASSERT_EQ(shmpipe_writer_wait_readers(w, 3), 3);
		test_write_pattern(w, seed, 0, (size_t)first);
		test_write_pattern(w, seed, first, (size_t)tail); /* fits: reader 2 is at first */
		xp_send(&ch, 'd');
		for (;;)
			pause();
	}
	ASSERT_EQ(xp_recv(&ch, 10000), 'c');
	for (int i = 0; i < 3; i++)
		r[i] = open_reader(name);
	for (int i = 0; i < 2; i++) {
		d[i].r = r[i];
		d[i].seed = seed;
		ASSERT_EQ(pthread_create(&d[i].t, NULL, drainer_main, &d[i]), 0);
	}
	/* Reader 2 keeps up to `first`, and leaves the tail for after the death. */
	test_read_pattern(r[2], seed, 0, (size_t)first);
	ASSERT_EQ(xp_recv(&ch, 10000), 'd');
	test_sleep_ms(20); /* the two others fall asleep on an empty ring */
	kill(writer, SIGKILL);
	XP_ASSERT_KILLED(xp_wait(writer, 10000), SIGKILL);
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(pthread_join(d[i].t, NULL), 0);
		ASSERT_EQ(d[i].end, first + tail);
		ASSERT_ERR(d[i].last, -ECONNRESET);
	}
	ASSERT_EQ(drain(r[2], seed, first, 0, &last), first + tail);
	ASSERT_ERR(last, -ECONNRESET);
	for (int i = 0; i < 3; i++) {
		ASSERT_ERR(shmpipe_read(r[i], &c, 1), -ECONNRESET);
		ASSERT_OK(shmpipe_reader_close(r[i]));
	}
	ASSERT_OK(shmpipe_unlink(name));
	xp_chan_close(&ch);
}

/* ---- a hostile process at a live reader's place -------------------------------- */

/* What the victim saw when it read after it was dropped (for the log). */
struct victim_report {
	int64_t ret;
	int done;
};

static void hostile_index(int k, uint64_t (*bad)(uint64_t write_index), const char *what)
{
	const size_t cap = 4096;
	const uint64_t seed = 400 + (uint64_t)k, total = (uint64_t)2 << 20;
	char name[XP_NAME_MAX];
	shmpipe_options o = bc_opts(cap, 3, 0);
	struct victim_report *vr = xp_shared(sizeof(*vr));
	struct xp_chan ch, vch;
	shmpipe_writer *w;
	struct feed f;
	pid_t victim, live, hostile;
	int place;
	int64_t us;

	xp_name(name, sizeof(name), 30 + k);
	ASSERT_OK(shmpipe_writer_create(&w, name, &o));
	xp_chan_open(&ch);
	xp_chan_open(&vch);
	memset(reps, 0, sizeof(*reps));
	victim = xp_fork();
	if (victim == 0) {
		shmpipe_reader *r = open_reader(name);
		char buf[64];

		xp_send(&ch, 'o');
		xp_recv(&vch, 60000);
		/* Dropped: whatever a read says now, it must not crash. */
		ASSERT_OK(shmpipe_reader_set_timeout(r, 100));
		vr->ret = shmpipe_read(r, buf, sizeof(buf));
		vr->done = 1;
		xp_send(&ch, 'v');
		for (;;)
			pause();
	}
	ASSERT_EQ(xp_recv(&ch, 10000), 'o');
	live = reader_proc(name, seed, &ch, &reps[0], 0, total, 0);
	ASSERT_EQ(xp_recv(&ch, 10000), 'o');
	ASSERT_EQ(shmpipe_writer_wait_readers(w, 2), 2);
	place = place_of(name, victim);

	feed_start(&f, w, seed, total, 1000);
	await_writer_blocked(name, cap);
	hostile = xp_fork();
	if (hostile == 0) {
		size_t len;
		uint8_t *h = map_object(name, &len);
		struct shmpipe__hdr *hdr = (struct shmpipe__hdr *)(void *)h;
		struct shmpipe__place *p = place_at(h, place);

		atomic_store(&p->read_index, bad(atomic_load(&hdr->write_index)));
		munmap(h, len);
		_exit(T_PASS);
	}
	XP_ASSERT_EXIT(xp_wait(hostile, 10000), T_PASS);
	us = time_to_pass(w, cap, 1000 * TEST_WATCHDOG_SCALE);
	printf("hostile read_index (%s) in a live reader's place: the writer went on after %.1f "
	       "ms\n",
	       what, (double)us / 1000);
	feed_finish(&f, 60000);
	/* The victim no longer counts as attached. */
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_ERR(shmpipe_writer_wait_readers(w, 2), -EAGAIN);
	ASSERT_OK(shmpipe_writer_set_timeout(w, -1));
	ASSERT_OK(shmpipe_writer_close(w));
	XP_ASSERT_EXIT(xp_wait(live, 60000), T_PASS);
	ASSERT_EQ(reps[0].end, total);
	xp_send(&vch, 'r');
	ASSERT_EQ(xp_recv(&ch, 10000), 'v');
	printf("  the dropped reader's next read returned %" PRId64 " (%s)\n", vr->ret,
	       vr->ret < 0 ? shmpipe_strerror((int)vr->ret) : "bytes");
	kill(victim, SIGKILL);
	XP_ASSERT_KILLED(xp_wait(victim, 10000), SIGKILL);
	ASSERT_OK(shmpipe_unlink(name));
	xp_chan_close(&ch);
	xp_chan_close(&vch);
	munmap(vr, sizeof(*vr));
}

static uint64_t bad_next(uint64_t wi)
{
	return wi + 1;
}

static uint64_t bad_far(uint64_t wi)
{
	return wi + ((uint64_t)1 << 40);
}

static uint64_t bad_max(uint64_t wi)
{
	(void)wi;
	return UINT64_MAX;
}

static void test_hostile_index(void)
{
	hostile_index(0, bad_next, "write_index + 1");
	hostile_index(1, bad_far, "write_index + 2^40");
	hostile_index(2, bad_max, "UINT64_MAX");
}

/* ---- garbage in the unused places ---------------------------------------------- */

/* Fills the unused places first..n-1 with garbage of kind `kind`. */
static void garbage(const char *name, int first, int n, int kind, uint64_t seed)
{
	pid_t pid = xp_fork();

	if (pid == 0) {
		size_t len;
		uint8_t *h = map_object(name, &len);
		struct shmpipe__hdr *hdr = (struct shmpipe__hdr *)(void *)h;
		uint64_t wi = atomic_load(&hdr->write_index), rng = seed | 1;

		for (int i = first; i < n; i++) {
			struct shmpipe__place *p = place_at(h, i);
			uint32_t gen = (uint32_t)test_rand_range(&rng, 1, 1000) << 8;

			switch ((kind + i) % 4) {
			case 0: /* random bytes, all of it */
				for (size_t b = 0; b < sizeof(*p); b += 8) {
					uint64_t x = test_rand(&rng);

					memcpy((uint8_t *)p + b, &x, 8);
				}
				break;
			case 1: /* OPEN, stale: holds the writer back until it looks at the lock */
				atomic_store(&p->read_index, wi > 100 ? wi - 100 : 0);
				atomic_store(&p->state, gen | SHMPIPE__END_OPEN);
				atomic_store(&p->pid, 1);
				atomic_store(&p->data_event, SHMPIPE__WAITER);
				break;
			case 2: /* OPEN, impossible: ahead of the writer */
				atomic_store(&p->read_index, wi + 999);
				atomic_store(&p->state, gen | SHMPIPE__END_OPEN);
				atomic_store(&p->data_event, 0xffffffffu);
				break;
			default: /* OPEN at the writer's position, asleep */
				atomic_store(&p->read_index, wi);
				atomic_store(&p->state, gen | SHMPIPE__END_OPEN);
				atomic_store(&p->consumed, UINT64_MAX);
				atomic_store(&p->consumer_waits, UINT64_MAX);
				atomic_store(&p->data_event, SHMPIPE__WAITER | 6);
				break;
			}
		}
		munmap(h, len);
		_exit(T_PASS);
	}
	XP_ASSERT_EXIT(xp_wait(pid, 10000), T_PASS);
}

/*
 * Someone who may only read the object takes read locks on the places'
 * lock bytes: a reader kept out of every place is told -EACCES (not
 * -EBUSY, which says readers hold them), and takes a place once one is
 * let go; the writer and the reader already in are not disturbed.
 */
static void test_hostile_rdlock(void)
{
	char name[XP_NAME_MAX];
	shmpipe_options o = bc_opts(4096, 3, 0);
	shmpipe_writer *w;
	shmpipe_reader *r0, *r1 = NULL;
	struct flock fl;
	int fd;

	xp_name(name, sizeof(name), 40);
	ASSERT_OK(shmpipe_writer_create(&w, name, &o));
	r0 = open_reader(name); /* place 0, lock byte 1 */
	fd = shm_open(name, O_RDONLY, 0);
	ASSERT_GE(fd, 0);
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_RDLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = SHMPIPE__READER_LOCK + 1; /* places 1 and 2 */
	fl.l_len = 2;
	ASSERT_EQ(fcntl(fd, F_OFD_SETLK, &fl), 0);
	ASSERT_ERR(shmpipe_reader_open(&r1, name), -EACCES);
	ASSERT_PTR_EQ(r1, NULL);
	/* Place 2 let go: the reader takes it. */
	fl.l_type = F_UNLCK;
	fl.l_start = SHMPIPE__READER_LOCK + 2;
	fl.l_len = 1;
	ASSERT_EQ(fcntl(fd, F_OFD_SETLK, &fl), 0);
	ASSERT_OK(shmpipe_reader_open(&r1, name));
	ASSERT_EQ(shmpipe_writer_wait_readers(w, 2), 2);
	test_write_pattern(w, 7, 0, 1000);
	test_read_pattern(r0, 7, 0, 1000);
	test_read_pattern(r1, 7, 0, 1000);
	close(fd);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r0));
	ASSERT_OK(shmpipe_reader_close(r1));
	ASSERT_OK(shmpipe_unlink(name));
}

static void test_hostile_garbage(void)
{
	const size_t cap = 4096;
	const uint64_t seed = 501, total = (uint64_t)8 << 20, more = 20000;
	char name[XP_NAME_MAX];
	shmpipe_options o = bc_opts(cap, 6, 0);
	shmpipe_writer *w;
	shmpipe_reader *r;
	struct xp_chan ch;
	struct feed f;
	pid_t a, b;
	uint64_t p;
	shmpipe_stats ws;

	xp_name(name, sizeof(name), 40);
	ASSERT_OK(shmpipe_writer_create(&w, name, &o));
	xp_chan_open(&ch);
	memset(reps, 0, 2 * sizeof(*reps));
	/* Two real readers, each reading total + more bytes, then leaving. */
	a = reader_proc(name, seed, &ch, &reps[0], total + more, 0, 0);
	ASSERT_EQ(xp_recv(&ch, 10000), 'o');
	b = reader_proc(name, seed, &ch, &reps[1], total + more, 0, 0);
	ASSERT_EQ(xp_recv(&ch, 10000), 'o');
	ASSERT_EQ(shmpipe_writer_wait_readers(w, 2), 2);
	ASSERT_EQ(place_of(name, a) + place_of(name, b), 0 + 1);

	/* Garbage before the first byte, and again half way. */
	garbage(name, 2, 6, 0, seed);
	feed_start(&f, w, seed, total, 3001);
	while (atomic_load(&f.written) < total / 2 && !atomic_load(&f.done))
		test_sleep_ms(1);
	garbage(name, 2, 6, 1, seed + 1);
	test_sleep_ms(5);
	garbage(name, 2, 6, 2, seed + 2);
	feed_finish(&f, 60000);

	/* A reader that comes now takes one of those places. */
	garbage(name, 2, 6, 3, seed + 3);
	r = open_reader(name);
	p = test_rstats(r).read_index;
	ASSERT_EQ(p, total);
	ASSERT_EQ(test_rstats(r).consumed, 0);
	ASSERT_GE(place_in_table(name, 6, getpid()), 2);
	printf("shmpipe_inspect_readers with garbage in places: %d\n",
	       shmpipe_inspect_readers(name, NULL, 0));
	{
		struct sleeper s = {.r = r, .seed = seed, .start = total, .len = (size_t)more};
		pthread_t t;

		atomic_init(&s.done, 0);
		ASSERT_EQ(pthread_create(&t, NULL, sleeper_main, &s), 0);
		test_write_pattern(w, seed, total, (size_t)more);
		ASSERT_EQ(pthread_join(t, NULL), 0);
	}
	XP_ASSERT_EXIT(xp_wait(a, 60000), T_PASS);
	XP_ASSERT_EXIT(xp_wait(b, 60000), T_PASS);
	ASSERT_EQ(reps[0].end, total + more);
	ASSERT_EQ(reps[1].end, total + more);
	ws = test_wstats(w);
	ASSERT_EQ(ws.write_index, total + more);
	/* The last real reader leaves: -EPIPE, garbage or not. */
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_ERR(shmpipe_write(w, "x", 1), -EPIPE);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_unlink(name));
	xp_chan_close(&ch);
}

/* ---- inspect -------------------------------------------------------------------- */

static const shmpipe_reader_info *info_of(const shmpipe_reader_info *ri, int n, pid_t pid)
{
	for (int i = 0; i < n; i++) {
		if (ri[i].end.pid == (uint32_t)pid)
			return &ri[i];
	}
	TEST_FAIL("no place of pid %ld", (long)pid);
}

static void test_inspect(void)
{
	const uint64_t seed = 601;
	char name[XP_NAME_MAX];
	shmpipe_options o = bc_opts(8192, 3, 0);
	shmpipe_reader_info ri[4];
	const shmpipe_reader_info *x;
	shmpipe_writer *w;
	shmpipe_info in;
	struct xp_chan c1, c2, back;
	pid_t p1, p2;
	int absent = -1;

	xp_name(name, sizeof(name), 50);
	ASSERT_OK(shmpipe_writer_create(&w, name, &o));
	memset(&in, 0xa5, sizeof(in));
	ASSERT_OK(shmpipe_inspect(name, &in));
	ASSERT_EQ(in.readers, 3);
	ASSERT_EQ(in.reader.state, SHMPIPE_END_ABSENT);
	ASSERT_EQ(in.writer.state, SHMPIPE_END_OPEN);
	ASSERT_EQ(in.writer.alive, 1);
	memset(ri, 0xa5, sizeof(ri));
	ASSERT_EQ(shmpipe_inspect_readers(name, ri, 4), 3);
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(ri[i].end.state, SHMPIPE_END_ABSENT);
		ASSERT_EQ(ri[i].end.pid, 0);
		ASSERT_EQ(ri[i].end.alive, 0);
		ASSERT_EQ(ri[i].end.asleep, 0);
	}

	xp_chan_open(&c1);
	xp_chan_open(&c2);
	xp_chan_open(&back);
	/* p1 reads when told; p2 reads 1000 bytes, then sleeps for more. */
	p1 = xp_fork();
	if (p1 == 0) {
		shmpipe_reader *r = open_reader(name);
		uint64_t off = 0;

		xp_send(&back, 'o');
		for (;;) {
			char m = xp_recv(&c1, 60000);

			if (m == 'r') {
				test_read_pattern(r, seed, off, 1000);
				off += 1000;
				xp_send(&back, 'r');
			} else if (m == 'c') {
				ASSERT_OK(shmpipe_reader_close(r));
				xp_send(&back, 'c');
			}
		}
	}
	ASSERT_EQ(xp_recv(&back, 10000), 'o');
	p2 = xp_fork();
	if (p2 == 0) {
		shmpipe_reader *r = open_reader(name);
		char c;

		xp_send(&back, 'o');
		ASSERT_EQ(xp_recv(&c2, 10000), 'g');
		test_read_pattern(r, seed, 0, 1000);
		xp_send(&back, 'r');
		shmpipe_read(r, &c, 1); /* sleeps until it is killed */
		_exit(T_FAIL);
	}
	ASSERT_EQ(xp_recv(&back, 10000), 'o');
	ASSERT_EQ(shmpipe_writer_wait_readers(w, 2), 2);
	/* The data is there before they read: neither waits for it. */
	test_write_pattern(w, seed, 0, 1000);
	xp_send(&c1, 'r');
	xp_send(&c2, 'g');
	ASSERT_EQ(xp_recv(&back, 10000), 'r');
	ASSERT_EQ(xp_recv(&back, 10000), 'r');

	/* p2 asleep, p1 awake, the third place never taken. */
	for (int i = 0;; i++) {
		ASSERT_EQ(shmpipe_inspect_readers(name, ri, 3), 3);
		/* Its sleep shows (the waiter bit) just before it is counted. */
		if (info_of(ri, 3, p2)->end.asleep && info_of(ri, 3, p2)->consumer_waits >= 1)
			break;
		ASSERT_LT(i, 5000 * TEST_WATCHDOG_SCALE);
		test_sleep_ms(1);
	}
	x = info_of(ri, 3, p1);
	ASSERT_EQ(x->end.state, SHMPIPE_END_OPEN);
	ASSERT_EQ(x->end.alive, 1);
	ASSERT_EQ(x->end.asleep, 0);
	ASSERT_EQ(x->read_index, 1000);
	ASSERT_EQ(x->consumed, 1);
	x = info_of(ri, 3, p2);
	ASSERT_EQ(x->end.state, SHMPIPE_END_OPEN);
	ASSERT_EQ(x->end.alive, 1);
	ASSERT_EQ(x->end.asleep, 1);
	ASSERT_EQ(x->read_index, 1000);
	ASSERT_EQ(x->consumed, 1);
	ASSERT_GE(x->consumer_waits, 1);
	for (int i = 0; i < 3; i++) {
		if (ri[i].end.pid == 0)
			absent = i;
	}
	ASSERT_GE(absent, 0);
	ASSERT_EQ(ri[absent].end.state, SHMPIPE_END_ABSENT);
	ASSERT_EQ(ri[absent].end.alive, 0);
	ASSERT_EQ(ri[absent].read_index, 0);
	ASSERT_EQ(ri[absent].consumed, 0);

	/* The whole: the counts summed over the readers. */
	memset(&in, 0xa5, sizeof(in));
	ASSERT_OK(shmpipe_inspect(name, &in));
	ASSERT_EQ(in.readers, 3);
	ASSERT_EQ(in.reader.state, SHMPIPE_END_OPEN);
	ASSERT_EQ(in.stats.write_index, 1000);
	ASSERT_EQ(in.stats.produced, 1);
	ASSERT_EQ(in.stats.consumed, 2);
	ASSERT_EQ(in.flags, 0);

	/* Fewer entries than places: those only, and the count of places. */
	memset(ri, 0xa5, sizeof(ri));
	ASSERT_EQ(shmpipe_inspect_readers(name, ri, 1), 3);
	ASSERT_EQ(ri[1].end.state, (int)0xa5a5a5a5);
	ASSERT_EQ(shmpipe_inspect_readers(name, NULL, 0), 3);
	ASSERT_ERR(shmpipe_inspect_readers(name, NULL, 1), -EINVAL);
	ASSERT_ERR(shmpipe_inspect_readers("/shmpipe-test-broadcast_proc-no-such", ri, 3), -ENOENT);

	/* p2 dies in its sleep: open, not alive, not asleep. */
	kill(p2, SIGKILL);
	XP_ASSERT_KILLED(xp_wait(p2, 10000), SIGKILL);
	ASSERT_EQ(shmpipe_inspect_readers(name, ri, 3), 3);
	x = info_of(ri, 3, p2);
	ASSERT_EQ(x->end.state, SHMPIPE_END_OPEN);
	ASSERT_EQ(x->end.alive, 0);
	ASSERT_EQ(x->end.asleep, 0);
	ASSERT_EQ(info_of(ri, 3, p1)->end.alive, 1);
	/*
	 * A full ring, then p1 reads 1000 bytes: the writer's next 1000 wait
	 * on p2, which it finds dead and drops: still open, not alive.
	 */
	test_write_pattern(w, seed, 1000, 8192);
	xp_send(&c1, 'r');
	ASSERT_EQ(xp_recv(&back, 10000), 'r');
	test_write_pattern(w, seed, 9192, 1000);
	ASSERT_EQ(shmpipe_inspect_readers(name, ri, 3), 3);
	x = info_of(ri, 3, p2);
	ASSERT_EQ(x->end.state, SHMPIPE_END_OPEN);
	ASSERT_EQ(x->end.alive, 0);
	ASSERT_EQ(x->end.asleep, 0);
	x = info_of(ri, 3, p1);
	ASSERT_EQ(x->read_index, 2000);
	ASSERT_EQ(x->end.alive, 1);

	/* p1 closes: closed, not alive. */
	xp_send(&c1, 'c');
	ASSERT_EQ(xp_recv(&back, 10000), 'c');
	ASSERT_EQ(shmpipe_inspect_readers(name, ri, 3), 3);
	x = info_of(ri, 3, p1);
	ASSERT_EQ(x->end.state, SHMPIPE_END_CLOSED);
	ASSERT_EQ(x->end.alive, 0);
	kill(p1, SIGKILL);
	XP_ASSERT_KILLED(xp_wait(p1, 10000), SIGKILL);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_inspect(name, &in));
	ASSERT_EQ(in.writer.state, SHMPIPE_END_CLOSED);
	ASSERT_OK(shmpipe_unlink(name));

	/* A pipe with one reader has one place, the reader. */
	{
		shmpipe_options o1 = bc_opts(8192, 0, 0);
		shmpipe_reader *r;

		xp_name(name, sizeof(name), 51);
		ASSERT_OK(shmpipe_writer_create(&w, name, &o1));
		r = open_reader(name);
		ASSERT_OK(shmpipe_inspect(name, &in));
		ASSERT_EQ(in.readers, 1);
		memset(ri, 0xa5, sizeof(ri));
		ASSERT_EQ(shmpipe_inspect_readers(name, ri, 4), 1);
		ASSERT_EQ(ri[0].end.state, SHMPIPE_END_OPEN);
		ASSERT_EQ(ri[0].end.pid, (uint32_t)getpid());
		ASSERT_EQ(ri[0].end.alive, 1);
		ASSERT_EQ(ri[1].end.state, (int)0xa5a5a5a5);
		ASSERT_OK(shmpipe_reader_close(r));
		ASSERT_OK(shmpipe_writer_close(w));
		ASSERT_OK(shmpipe_unlink(name));
	}
	xp_chan_close(&c1);
	xp_chan_close(&c2);
	xp_chan_close(&back);
}

/* ---- stress: 4 reader processes ------------------------------------------------ */

#define PROC_READERS 4

static void test_stress(uint64_t total)
{
	const uint64_t seed = (uint64_t)test_env_long("SHMPIPE_STRESS_SEED", 77);
	char name[XP_NAME_MAX];
	shmpipe_options o = bc_opts((size_t)1 << 20, PROC_READERS, 0);
	struct xp_chan go[PROC_READERS];
	pid_t pid[PROC_READERS];
	shmpipe_writer *w;
	shmpipe_stats ws;
	int64_t t0 = test_now_ms();

	xp_name(name, sizeof(name), 60);
	/* The readers are separate processes that know only the name. */
	for (int i = 0; i < PROC_READERS; i++) {
		xp_chan_open(&go[i]);
		pid[i] = xp_fork();
		if (pid[i] == 0) {
			shmpipe_reader *r;
			shmpipe_stats s;

			ASSERT_EQ(xp_recv(&go[i], 10000), 'c');
			r = open_reader(name);
			s = test_rstats(r);
			ASSERT_EQ(s.read_index, 0); /* the writer waits for all four */
			xp_read_stream(r, total, seed);
			s = test_rstats(r);
			ASSERT_EQ(s.read_index, total);
			ASSERT_EQ(s.write_index, total);
			ASSERT_OK(shmpipe_reader_close(r));
			_exit(T_PASS);
		}
	}
	ASSERT_OK(shmpipe_writer_create(&w, name, &o));
	for (int i = 0; i < PROC_READERS; i++)
		xp_send(&go[i], 'c');
	ASSERT_EQ(shmpipe_writer_wait_readers(w, PROC_READERS), PROC_READERS);
	xp_write_stream(w, total, seed);
	ws = test_wstats(w);
	ASSERT_EQ(ws.write_index, total);
	ASSERT_LE(ws.read_index, total);
	ASSERT_LE(total - ws.read_index, (uint64_t)1 << 20);
	test_print_stats("writer", &ws);
	ASSERT_OK(shmpipe_writer_close(w));
	for (int i = 0; i < PROC_READERS; i++) {
		XP_ASSERT_EXIT(xp_wait(pid[i], 250000), T_PASS);
		xp_chan_close(&go[i]);
	}
	ASSERT_OK(shmpipe_unlink(name));
	printf("%" PRIu64 " MiB to %d reader processes: %" PRId64 " ms\n", total >> 20,
	       PROC_READERS, test_now_ms() - t0);
}

/* ---- main ----------------------------------------------------------------------- */

static const struct {
	const char *name;
	void (*fn)(void);
} tests[] = {
    {"limit", test_limit},
    {"reader_killed", test_reader_killed},
    {"writer_killed", test_writer_killed},
    {"hostile_index", test_hostile_index},
    {"hostile_garbage", test_hostile_garbage},
    {"hostile_rdlock", test_hostile_rdlock},
    {"inspect", test_inspect},
};

static int body(int argc, char **argv)
{
	int ran = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	reps = xp_shared(4 * sizeof(*reps));
	if (argc > 1 && strcmp(argv[1], "stress") == 0) {
		long mb = argc > 2 ? atol(argv[2]) : test_env_long("SHMPIPE_STRESS_MB", 1024);

		if (mb < 1)
			TEST_FAIL("usage: broadcast_proc stress [MiB]");
		test_watchdog(280);
		test_stress((uint64_t)mb << 20);
		return T_PASS;
	}
	test_watchdog(110);
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		int run = argc == 1;

		for (int k = 1; k < argc; k++)
			run |= strcmp(argv[k], tests[i].name) == 0;
		if (run) {
			printf("%s\n", tests[i].name);
			tests[i].fn();
			ran++;
		}
	}
	if (ran == 0)
		TEST_FAIL("usage: broadcast_proc [TEST...] | broadcast_proc stress [MiB]");
	return T_PASS;
}

int main(int argc, char **argv)
{
	return xp_main("broadcast_proc", body, argc, argv);
}
