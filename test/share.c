/* SPDX-License-Identifier: MIT */
/*
 * Work-sharing (SHMPIPE_SHARE): each record to exactly one reader.
 *
 *   share [RECORDS]   (default 10,000,000; the sanitized suites pass fewer)
 *
 * A writer thread writes RECORDS numbered records of 1 to 64 bytes to four
 * reader threads, two reading, two peeking and consuming: every record must
 * arrive exactly once, whole, with the sequence number the writer gave it,
 * and the results put back in order by that number must be the stream.
 * Then, across processes: a worker killed while it holds a record loses
 * that record and no other, and the writer and the other workers go on.
 * And the edges: options, a buffer too small, a read after a peek, the end
 * of the stream and an abort to every worker, a claim a hostile process
 * moved out of reach.
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "layout.h"
#include "test.h"
#include "xproc.h"

#define WORKERS 4
#define MAXLEN	64

static uint64_t n_records = 10000000;
static _Atomic uint8_t *seen;	/* how many times each record arrived */
static _Atomic uint64_t *order; /* results in order: a digest of each record */

struct worker {
	pthread_t t;
	shmpipe_reader *r;
	int peek;
	uint64_t taken;
};

static uint64_t record_len(uint64_t seq)
{
	return 1 + test_mix64(seq) % MAXLEN;
}

/* The record's bytes: its number, then the pattern. */
static void fill(uint8_t *p, uint64_t seq)
{
	uint64_t len = record_len(seq);

	test_pattern_fill(p, len, seq, 0);
	memcpy(p, &seq, len < 8 ? len : 8);
}

static uint64_t digest(const uint8_t *p, uint64_t len)
{
	uint64_t h = len;

	for (uint64_t i = 0; i < len; i++)
		h = test_mix64(h ^ p[i]);
	return h;
}

/* Checks one record a worker took and files its result under its number. */
static void take(shmpipe_reader *r, const uint8_t *p, ssize_t n)
{
	uint8_t want[MAXLEN];
	uint64_t seq;

	ASSERT_OK(shmpipe_reader_seq(r, &seq));
	ASSERT_LT(seq, n_records);
	ASSERT_EQ((uint64_t)n, record_len(seq));
	fill(want, seq);
	ASSERT_MEM_EQ(p, want, (size_t)n);
	if (atomic_fetch_add(&seen[seq], 1) != 0)
		TEST_FAIL("record %" PRIu64 " arrived twice", seq);
	atomic_store(&order[seq], digest(p, (uint64_t)n));
}

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	uint8_t buf[MAXLEN];

	for (;;) {
		const void *p;
		ssize_t n;

		if (wk->peek) {
			n = shmpipe_peek(wk->r, &p);
			if (n > 0) {
				take(wk->r, p, n);
				ASSERT_OK(shmpipe_consume(wk->r, (size_t)n));
			}
		} else {
			n = shmpipe_read(wk->r, buf, sizeof(buf));
			if (n > 0)
				take(wk->r, buf, n);
		}
		if (n == 0)
			return NULL;
		ASSERT_GT(n, 0);
		wk->taken++;
	}
}

static shmpipe_options share_opts(size_t capacity, unsigned readers)
{
	shmpipe_options o = test_opts(capacity);

	o.flags = SHMPIPE_RECORDS | SHMPIPE_SHARE;
	o.readers = readers;
	return o;
}

/* Ten million records to four workers, each exactly once, put back in order. */
static void test_pool(void)
{
	shmpipe_options o = share_opts(64 << 10, WORKERS);
	struct worker wk[WORKERS] = {0};
	shmpipe_writer *w;
	uint8_t buf[MAXLEN];
	shmpipe_stats s;
	uint64_t total = 0;
	int64_t t0 = test_now_ns();

	seen = calloc(n_records, sizeof(*seen));
	order = calloc(n_records, sizeof(*order));
	ASSERT_NOT_NULL(seen);
	ASSERT_NOT_NULL(order);
	ASSERT_OK(shmpipe_pair(&w, &wk[0].r, &o));
	for (int i = 1; i < WORKERS; i++)
		ASSERT_OK(shmpipe_reader_open_fd(&wk[i].r, shmpipe_writer_fd(w)));
	for (int i = 0; i < WORKERS; i++) {
		wk[i].peek = i & 1;
		ASSERT_EQ(pthread_create(&wk[i].t, NULL, worker_main, &wk[i]), 0);
	}
	for (uint64_t seq = 0; seq < n_records; seq++) {
		fill(buf, seq);
		ASSERT_EQ(shmpipe_write(w, buf, record_len(seq)), (ssize_t)record_len(seq));
	}
	ASSERT_OK(shmpipe_writer_stats(w, &s));
	ASSERT_EQ(s.produced, n_records);
	ASSERT_OK(shmpipe_writer_close(w));
	for (int i = 0; i < WORKERS; i++) {
		ASSERT_EQ(pthread_join(wk[i].t, NULL), 0);
		total += wk[i].taken;
		ASSERT_OK(shmpipe_reader_close(wk[i].r));
	}
	ASSERT_EQ(total, n_records);
	/* Every record once; in the order of the numbers, the stream itself. */
	for (uint64_t seq = 0; seq < n_records; seq++) {
		ASSERT_EQ(atomic_load(&seen[seq]), 1);
		fill(buf, seq);
		ASSERT_EQ(atomic_load(&order[seq]), digest(buf, record_len(seq)));
	}
	fprintf(stderr,
		"pool: %" PRIu64 " records to %d workers (%" PRIu64 " %" PRIu64 " %" PRIu64
		" %" PRIu64 ") in %.2f s\n",
		n_records, WORKERS, wk[0].taken, wk[1].taken, wk[2].taken, wk[3].taken,
		(double)(test_now_ns() - t0) / 1e9);
	free(seen);
	free((void *)order);
}

/*
 * A worker process takes a record with a peek and is killed holding it:
 * that record is lost, no other; the writer, which keeps that record until
 * it sees the worker dead, goes on, and so do the other workers.
 */
static void test_death(void)
{
	const uint64_t n = 20000 / TEST_SLOW + 1000;
	shmpipe_options o = share_opts(4096, 3);
	char name[256];
	shmpipe_writer *w;
	shmpipe_reader *a, *b;
	uint8_t buf[MAXLEN];
	int report[2];
	uint64_t held = UINT64_MAX, got = 0;
	uint8_t *count;
	pid_t pid;
	int st;

	xp_name(name, sizeof(name), 1);
	shmpipe_unlink(name);
	ASSERT_OK(shmpipe_writer_create(&w, name, &o));
	ASSERT_EQ(pipe(report), 0);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		shmpipe_reader *r;
		const void *p;
		uint64_t seq;

		if (shmpipe_reader_open(&r, name) < 0 || shmpipe_peek(r, &p) <= 0 ||
		    shmpipe_reader_seq(r, &seq) < 0)
			_exit(1);
		if (write(report[1], &seq, sizeof(seq)) != sizeof(seq))
			_exit(1);
		pause(); /* holding it */
		_exit(1);
	}
	ASSERT_EQ(shmpipe_writer_wait_readers(w, 1), 1);
	/* The first record goes to the worker that is waiting for one. */
	fill(buf, 0);
	ASSERT_EQ(shmpipe_write(w, buf, record_len(0)), (ssize_t)record_len(0));
	ASSERT_EQ(read(report[0], &held, sizeof(held)), (ssize_t)sizeof(held));
	ASSERT_EQ(held, 0);
	ASSERT_OK(shmpipe_reader_open(&a, name));
	ASSERT_OK(shmpipe_reader_open(&b, name));
	count = calloc(n, 1);
	ASSERT_NOT_NULL(count);
	/* The held record keeps the writer: it must block until the kill. */
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	for (uint64_t seq = 1; seq < n; seq++) {
		ssize_t k;

		fill(buf, seq);
		while ((k = shmpipe_write(w, buf, record_len(seq))) == -EAGAIN) {
			/* Full behind the held record: now the worker dies. */
			if (pid > 0) {
				ASSERT_EQ(kill(pid, SIGKILL), 0);
				ASSERT_EQ(waitpid(pid, &st, 0), pid);
				pid = -1;
			}
			/* Drain what the two others can take, then wait for room. */
			for (shmpipe_reader *r = a;; r = r == a ? b : NULL) {
				if (!r)
					break;
				ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
				for (ssize_t m; (m = shmpipe_read(r, buf, sizeof(buf))) > 0;) {
					uint64_t s;

					ASSERT_OK(shmpipe_reader_seq(r, &s));
					ASSERT_LT(s, n);
					ASSERT_EQ(count[s]++, 0);
					got++;
				}
			}
			fill(buf, seq);
			struct pollfd pf = {.fd = shmpipe_writer_pollfd(w), .events = POLLIN};

			ASSERT_GE(poll(&pf, 1, 2000 * TEST_SLOW), 1);
		}
		ASSERT_EQ(k, (ssize_t)record_len(seq));
	}
	ASSERT_EQ(pid, -1); /* the ring did fill behind the held record */
	ASSERT_OK(shmpipe_writer_close(w));
	for (shmpipe_reader *r = a;; r = r == a ? b : NULL) {
		ssize_t m;

		if (!r)
			break;
		ASSERT_OK(shmpipe_reader_set_timeout(r, -1));
		while ((m = shmpipe_read(r, buf, sizeof(buf))) > 0) {
			uint64_t s;

			ASSERT_OK(shmpipe_reader_seq(r, &s));
			ASSERT_LT(s, n);
			ASSERT_EQ(count[s]++, 0);
			got++;
		}
		ASSERT_EQ(m, 0);
	}
	/* All but the one the dead worker held, each once. */
	ASSERT_EQ(got, n - 1);
	ASSERT_EQ(count[held], 0);
	ASSERT_OK(shmpipe_reader_close(a));
	ASSERT_OK(shmpipe_reader_close(b));
	shmpipe_unlink(name);
	free(count);
	close(report[0]);
	close(report[1]);
}

static void test_edges(void)
{
	shmpipe_options o = share_opts(4096, 2);
	shmpipe_writer *w;
	shmpipe_reader *r, *r2;
	uint8_t big[128], small[4];
	const void *p, *q;
	uint64_t seq;

	/* Sharing needs records, several readers and a ring of 24 bytes. */
	o.flags = SHMPIPE_SHARE;
	ASSERT_ERR(shmpipe_pair(&w, &r, &o), -EINVAL);
	o = share_opts(4096, 1);
	ASSERT_ERR(shmpipe_pair(&w, &r, &o), -EINVAL);
	o = share_opts(16, 2);
	ASSERT_ERR(shmpipe_pair(&w, &r, &o), -EINVAL);
	o = share_opts(24, 2);
	ASSERT_OK(shmpipe_pair(&w, &r, &o));
	/* Both ends say what the pipe is. */
	{
		shmpipe_options got;

		ASSERT_OK(shmpipe_writer_options(w, &got));
		ASSERT_EQ(got.flags, SHMPIPE_RECORDS | SHMPIPE_SHARE);
		ASSERT_EQ(got.readers, 2);
		ASSERT_OK(shmpipe_reader_options(r, &got));
		ASSERT_EQ(got.flags, SHMPIPE_RECORDS | SHMPIPE_SHARE);
		ASSERT_EQ(got.readers, 2);
	}
	ASSERT_ERR(shmpipe_write(w, big, SHMPIPE_SHARE_RECORD_MAX(24) + 1), -EMSGSIZE);
	ASSERT_EQ(shmpipe_write(w, big, SHMPIPE_SHARE_RECORD_MAX(24)), 8);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_EQ(shmpipe_read(r, big, sizeof(big)), 8);
	ASSERT_EQ(shmpipe_read(r, big, sizeof(big)), 0);
	ASSERT_OK(shmpipe_reader_close(r));

	o = share_opts(4096, 2);
	ASSERT_OK(shmpipe_pair(&w, &r, &o));
	ASSERT_OK(shmpipe_reader_open_fd(&r2, shmpipe_writer_fd(w)));
	ASSERT_ERR(shmpipe_reader_seq(r, &seq), -EINVAL); /* nothing taken yet */
	for (uint64_t i = 0; i < 4; i++) {
		fill(big, i);
		ASSERT_EQ(shmpipe_write(w, big, record_len(i)), (ssize_t)record_len(i));
	}
	/* Too small a buffer: the record stays, for this reader or another. */
	if (record_len(0) > sizeof(small))
		ASSERT_ERR(shmpipe_read(r, small, sizeof(small)), -EMSGSIZE);
	ASSERT_EQ(shmpipe_read(r2, big, sizeof(big)), (ssize_t)record_len(0));
	ASSERT_OK(shmpipe_reader_seq(r2, &seq));
	ASSERT_EQ(seq, 0);
	/* A peek holds its record: a second peek and a read get the same one. */
	ASSERT_EQ(shmpipe_peek(r, &p), (ssize_t)record_len(1));
	ASSERT_EQ(shmpipe_peek(r, &q), (ssize_t)record_len(1));
	ASSERT_PTR_EQ(p, q);
	ASSERT_EQ(shmpipe_read(r2, big, sizeof(big)), (ssize_t)record_len(2));
	ASSERT_OK(shmpipe_reader_seq(r2, &seq));
	ASSERT_EQ(seq, 2);
	ASSERT_EQ(shmpipe_read(r, big, sizeof(big)), (ssize_t)record_len(1));
	ASSERT_OK(shmpipe_reader_seq(r, &seq));
	ASSERT_EQ(seq, 1);
	/* A consume must be the whole record. */
	ASSERT_EQ(shmpipe_peek(r, &p), (ssize_t)record_len(3));
	ASSERT_ERR(shmpipe_consume(r, 1), record_len(3) == 1 ? 0 : -EINVAL);
	if (record_len(3) != 1)
		ASSERT_OK(shmpipe_consume(r, record_len(3)));
	/* The end of the stream reaches both; an abort too, as an error. */
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_EQ(shmpipe_read(r, big, sizeof(big)), 0);
	ASSERT_EQ(shmpipe_read(r2, big, sizeof(big)), 0);
	ASSERT_EQ(shmpipe_peek(r2, &p), 0);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_reader_close(r2));

	ASSERT_OK(shmpipe_pair(&w, &r, &o));
	ASSERT_OK(shmpipe_reader_open_fd(&r2, shmpipe_writer_fd(w)));
	ASSERT_EQ(shmpipe_write(w, big, 10), 10);
	ASSERT_OK(shmpipe_writer_abort(w));
	ASSERT_EQ(shmpipe_read(r, big, sizeof(big)), 10);
	ASSERT_ERR(shmpipe_read(r, big, sizeof(big)), -ECONNRESET);
	ASSERT_ERR(shmpipe_read(r2, big, sizeof(big)), -ECONNRESET);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_reader_close(r2));

	/* Not a shared pipe: no sequence numbers. */
	o = test_opts(4096);
	o.flags = SHMPIPE_RECORDS;
	ASSERT_OK(shmpipe_pair(&w, &r, &o));
	ASSERT_EQ(shmpipe_write(w, big, 10), 10);
	ASSERT_EQ(shmpipe_read(r, big, sizeof(big)), 10);
	ASSERT_ERR(shmpipe_reader_seq(r, &seq), -EINVAL);
	ASSERT_ERR(shmpipe_reader_seq(NULL, &seq), -EINVAL);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

/*
 * A process with the object moves the claim where no record is: readers
 * get -EPROTO, in bounded time, and nobody faults or hangs.
 */
static void test_hostile_claim(void)
{
	shmpipe_options o = share_opts(4096, 2);
	shmpipe_writer *w;
	shmpipe_reader *r;
	uint8_t buf[MAXLEN];
	shmpipe_stats s;
	void *base;
	_Atomic uint64_t *claim;

	ASSERT_OK(shmpipe_pair(&w, &r, &o));
	base = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, shmpipe_writer_fd(w), 0);
	ASSERT_TRUE(base != MAP_FAILED);
	claim = (_Atomic uint64_t *)((uint8_t *)base + SHMPIPE__CLAIM);
	ASSERT_EQ(shmpipe_write(w, buf, 8), 8);
	ASSERT_OK(shmpipe_reader_set_timeout(r, 1000));
	atomic_store(claim, 1u << 20); /* ahead of the writer */
	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), -EPROTO);
	atomic_store(claim, 0);
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 8);
	/*
	 * Ahead again: to the writer, no record waits (it may overwrite them,
	 * a loss the hostile process could cause anyway), and it goes on.
	 */
	atomic_store(claim, 1u << 20);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 1000));
	for (int i = 0; i < 1000; i++)
		ASSERT_EQ(shmpipe_write(w, buf, 8), 8);
	ASSERT_OK(shmpipe_writer_stats(w, &s));
	ASSERT_EQ(s.produced, 1001);
	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), -EPROTO);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
	munmap(base, 4096);
}

static int body(int argc, char **argv)
{
	if (argc > 1)
		n_records = strtoull(argv[1], NULL, 10);
	test_watchdog(240);
	test_edges();
	test_hostile_claim();
	test_death();
	test_pool();
	return T_PASS;
}

int main(int argc, char **argv)
{
	return xp_main("share", body, argc, argv);
}
