/* SPDX-License-Identifier: MIT */
/*
 * Description: every public function given bad arguments returns -EINVAL
 * (NULL handles, NULL out-pointers, NULL buffers with a length, capacities
 * beyond SHMPIPE_MAX_CAPACITY, unknown flags, record mode, bad timeouts),
 * leaves its out-pointers untouched and leaks nothing (also when it runs
 * out of descriptors: -EMFILE); zero-length writes and reads return 0 at
 * once, even on a full or empty ring with no timeout, and change no
 * counter; shmpipe_strerror never returns NULL and agrees with strerror;
 * shmpipe_version agrees with the SHMPIPE_VERSION_* macros.
 */
#include <pthread.h>
#include <sys/resource.h>

#include "test.h"

/* Sentinels: a failed shmpipe_pair must leave the out-pointers as they were. */
static char w_sentinel, r_sentinel;
#define W_SENTINEL ((shmpipe_writer *)(void *)&w_sentinel)
#define R_SENTINEL ((shmpipe_reader *)(void *)&r_sentinel)

static void pair_must_fail(const shmpipe_options *o, const char *what)
{
	shmpipe_writer *w = W_SENTINEL;
	shmpipe_reader *r = R_SENTINEL;
	int ret = shmpipe_pair(&w, &r, o);

	if (ret != -EINVAL) {
		fprintf(stderr, "FAIL: shmpipe_pair(%s) = %d (%s), want %d (%s)\n", what, ret,
			shmpipe_strerror(ret), -EINVAL, shmpipe_strerror(-EINVAL));
		test_die();
	}
	ASSERT_PTR_EQ(w, W_SENTINEL);
	ASSERT_PTR_EQ(r, R_SENTINEL);
}

static void test_pair_args(void)
{
	shmpipe_writer *w = W_SENTINEL;
	shmpipe_reader *r = R_SENTINEL;
	shmpipe_options o;

	ASSERT_ERR(shmpipe_pair(NULL, &r, NULL), -EINVAL);
	ASSERT_PTR_EQ(r, R_SENTINEL);
	ASSERT_ERR(shmpipe_pair(&w, NULL, NULL), -EINVAL);
	ASSERT_PTR_EQ(w, W_SENTINEL);
	ASSERT_ERR(shmpipe_pair(NULL, NULL, NULL), -EINVAL);

#if SIZE_MAX > 0xffffffffu /* capacities above 1 TiB need a 64-bit size_t */
	o = test_opts((size_t)1 << 62);
	pair_must_fail(&o, "capacity 2^62");
	o = test_opts((size_t)SHMPIPE_MAX_CAPACITY + 1);
	pair_must_fail(&o, "capacity SHMPIPE_MAX_CAPACITY + 1");
	o = test_opts((size_t)SHMPIPE_MAX_CAPACITY * 2);
	pair_must_fail(&o, "capacity 2 * SHMPIPE_MAX_CAPACITY");
	o = test_opts(SIZE_MAX);
	pair_must_fail(&o, "capacity SIZE_MAX");
#endif

	o = test_opts(4096);
	o.flags = 0x2;
	pair_must_fail(&o, "flags 0x2");
	o.flags = 0x80000000u;
	pair_must_fail(&o, "flags 0x80000000");
	o.flags = ~0u;
	pair_must_fail(&o, "flags ~0");
	o.flags = SHMPIPE_RECORDS | 0x100;
	pair_must_fail(&o, "flags SHMPIPE_RECORDS | 0x100");
	/* Record mode needs room for a frame and 8 bytes of payload. */
	o = test_opts(15);
	o.flags = SHMPIPE_RECORDS;
	pair_must_fail(&o, "flags SHMPIPE_RECORDS with capacity 15");
}

static void test_handle_args(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	char buf[16] = "0123456789abcdef";

	test_pair(&w, &r, 64);

	ASSERT_ERR(shmpipe_write(NULL, buf, 1), -EINVAL);
	ASSERT_ERR(shmpipe_write(NULL, buf, 0), -EINVAL);
	ASSERT_ERR(shmpipe_write(NULL, NULL, 0), -EINVAL);
	ASSERT_ERR(shmpipe_write(w, NULL, 1), -EINVAL);
	ASSERT_ERR(shmpipe_write(w, NULL, 100), -EINVAL);

	ASSERT_ERR(shmpipe_read(NULL, buf, 1), -EINVAL);
	ASSERT_ERR(shmpipe_read(NULL, buf, 0), -EINVAL);
	ASSERT_ERR(shmpipe_read(NULL, NULL, 0), -EINVAL);
	ASSERT_ERR(shmpipe_read(r, NULL, 1), -EINVAL);
	ASSERT_ERR(shmpipe_read(r, NULL, 100), -EINVAL);

	/* A NULL buf with len > 0 is bad even when there is data to copy. */
	ASSERT_EQ(shmpipe_write(w, buf, 8), 8);
	ASSERT_ERR(shmpipe_read(r, NULL, 4), -EINVAL);

	ASSERT_ERR(shmpipe_writer_set_timeout(NULL, 0), -EINVAL);
	ASSERT_ERR(shmpipe_writer_set_timeout(NULL, -1), -EINVAL);
	ASSERT_ERR(shmpipe_reader_set_timeout(NULL, 0), -EINVAL);
	ASSERT_ERR(shmpipe_reader_set_timeout(NULL, -1), -EINVAL);
	ASSERT_ERR(shmpipe_writer_set_timeout(w, -2), -EINVAL);
	ASSERT_ERR(shmpipe_writer_set_timeout(w, -1000), -EINVAL);
	ASSERT_ERR(shmpipe_writer_set_timeout(w, INT_MIN), -EINVAL);
	ASSERT_ERR(shmpipe_reader_set_timeout(r, -2), -EINVAL);
	ASSERT_ERR(shmpipe_reader_set_timeout(r, -1000), -EINVAL);
	ASSERT_ERR(shmpipe_reader_set_timeout(r, INT_MIN), -EINVAL);
	/* Valid values are accepted. */
	ASSERT_OK(shmpipe_writer_set_timeout(w, -1));
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_writer_set_timeout(w, 1));
	ASSERT_OK(shmpipe_writer_set_timeout(w, INT_MAX));
	ASSERT_OK(shmpipe_reader_set_timeout(r, -1));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 1));
	ASSERT_OK(shmpipe_reader_set_timeout(r, INT_MAX));

	ASSERT_ERR(shmpipe_writer_stats(NULL, &s), -EINVAL);
	ASSERT_ERR(shmpipe_writer_stats(w, NULL), -EINVAL);
	ASSERT_ERR(shmpipe_writer_stats(NULL, NULL), -EINVAL);
	ASSERT_ERR(shmpipe_reader_stats(NULL, &s), -EINVAL);
	ASSERT_ERR(shmpipe_reader_stats(r, NULL), -EINVAL);
	ASSERT_ERR(shmpipe_reader_stats(NULL, NULL), -EINVAL);
	{
		shmpipe_options po;

		ASSERT_ERR(shmpipe_writer_options(NULL, &po), -EINVAL);
		ASSERT_ERR(shmpipe_writer_options(w, NULL), -EINVAL);
		ASSERT_ERR(shmpipe_reader_options(NULL, &po), -EINVAL);
		ASSERT_ERR(shmpipe_reader_options(r, NULL), -EINVAL);
	}

	ASSERT_ERR(shmpipe_writer_close(NULL), -EINVAL);
	ASSERT_ERR(shmpipe_reader_close(NULL), -EINVAL);

	/* The rejected calls changed nothing: 8 bytes in, one write. */
	s = test_rstats(r);
	ASSERT_EQ(s.write_index, 8);
	ASSERT_EQ(s.read_index, 0);
	ASSERT_EQ(s.produced, 1);
	ASSERT_EQ(s.consumed, 0);

	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

/*
 * Zero-length transfers return 0 at once and touch nothing: on a full ring
 * with an infinite timeout (write), on an empty one (read), and after the
 * peer is gone. A hang here is a failure (the watchdog reports it).
 */
static void test_zero_length(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats before, after;
	char buf[32];

	test_pair(&w, &r, 32);
	before = test_wstats(w);

	/* Empty ring, default (infinite) timeouts. */
	ASSERT_EQ(shmpipe_write(w, buf, 0), 0);
	ASSERT_EQ(shmpipe_write(w, NULL, 0), 0);
	ASSERT_EQ(shmpipe_read(r, buf, 0), 0);
	ASSERT_EQ(shmpipe_read(r, NULL, 0), 0);
	after = test_wstats(w);
	ASSERT_STATS_EQ(&after, &before);
	ASSERT_EQ(after.produced, 0);
	ASSERT_EQ(after.consumed, 0);
	ASSERT_EQ(after.write_index, 0);

	/* Full ring: a write of 0 bytes must not wait for space. */
	memset(buf, 'x', sizeof(buf));
	ASSERT_EQ(shmpipe_write(w, buf, 32), 32);
	before = test_wstats(w);
	ASSERT_EQ(shmpipe_write(w, buf, 0), 0);
	ASSERT_EQ(shmpipe_read(r, buf, 0), 0);
	after = test_rstats(r);
	ASSERT_STATS_EQ(&after, &before);
	ASSERT_EQ(after.write_index, 32);
	ASSERT_EQ(after.produced, 1);
	ASSERT_EQ(after.read_index, 0);
	ASSERT_EQ(after.consumed, 0);
	ASSERT_EQ(after.producer_waits, 0);
	ASSERT_EQ(after.consumer_waits, 0);

	/* Drain; the 0-byte read did not eat anything. */
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 32);

	/* After the reader closed, a 0-byte write still returns 0 ... */
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_EQ(shmpipe_write(w, buf, 0), 0);
	/* ... and a real one -EPIPE. */
	ASSERT_ERR(shmpipe_write(w, buf, 1), -EPIPE);
	ASSERT_OK(shmpipe_writer_close(w));

	/* After the writer closed, a 0-byte read returns 0 too. */
	test_pair(&w, &r, 32);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_EQ(shmpipe_read(r, buf, 0), 0);
	after = test_rstats(r);
	ASSERT_EQ(after.consumed, 0);
	ASSERT_OK(shmpipe_reader_close(r));
}

/* A failed shmpipe_pair leaks no descriptor. */
static void test_no_leak_on_failure(void)
{
	int fds = test_count_fds();
	shmpipe_options o = test_opts(4096);

	o.flags = 0x2; /* refused after the capacity is parsed */

	if (fds < 0)
		return;
	for (int i = 0; i < 100; i++) {
		shmpipe_writer *w = W_SENTINEL;
		shmpipe_reader *r = R_SENTINEL;
		ASSERT_ERR(shmpipe_pair(&w, &r, &o), -EINVAL);
	}
	ASSERT_EQ(test_count_fds(), fds);
}

/*
 * Out of descriptors: shmpipe_pair fails with -EMFILE (after it may have
 * allocated its handles), leaves the out-pointers alone and leaks nothing
 * (ASan's leak check would see a lost handle).
 */
static void test_emfile(void)
{
	struct rlimit old, low;
	shmpipe_writer *w = W_SENTINEL;
	shmpipe_reader *r = R_SENTINEL;
	int lowest = dup(0), ret;

	if (lowest < 0 || getrlimit(RLIMIT_NOFILE, &old) != 0)
		return;
	close(lowest);
	/* The next descriptor would be `lowest`: make that one too many. */
	low = old;
	low.rlim_cur = (rlim_t)lowest;
	ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
	ret = shmpipe_pair(&w, &r, NULL);
	ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);

	ASSERT_ERR(ret, -EMFILE);
	ASSERT_PTR_EQ(w, W_SENTINEL);
	ASSERT_PTR_EQ(r, R_SENTINEL);
	/* And it works again once descriptors are available. */
	ASSERT_OK(shmpipe_pair(&w, &r, NULL));
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

static const int errnos[] = {
    EPIPE, EINVAL, EAGAIN, ETIMEDOUT, EINTR,  EPROTO, EBADMSG, ECONNRESET, EMSGSIZE,
    EBUSY, EEXIST, ENOENT, ENOMEM,    EMFILE, ENOSPC, EPERM,   EACCES,
};
#define NERRNOS (sizeof(errnos) / sizeof(errnos[0]))
static char errtext[NERRNOS][256];

static void test_strerror_values(void)
{
	static const int odd[] = {
	    INT_MIN, INT_MIN + 1, -1000000, -65536, -4096, -4095, -1000, -134,	  -133,
	    -200,    -1,	  0,	    1,	    2,	   4096,  65536, INT_MAX,
	};

	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		const char *s = shmpipe_strerror(odd[i]);
		if (s == NULL)
			TEST_FAIL("shmpipe_strerror(%d) returned NULL", odd[i]);
		/* Readable: a terminated string of printable text. */
		ASSERT_LT(strlen(s), 1024);
	}
	for (int e = -300; e <= 300; e++)
		ASSERT_NOT_NULL(shmpipe_strerror(e));

	/* Values >= 0 are successes (counts). */
	ASSERT_STR_EQ(shmpipe_strerror(0), "Success");
	ASSERT_STR_EQ(shmpipe_strerror(1), "Success");
	ASSERT_STR_EQ(shmpipe_strerror(4096), "Success");
	ASSERT_STR_EQ(shmpipe_strerror(INT_MAX), "Success");

	/* -errno is strerror(errno). */
	for (size_t i = 0; i < NERRNOS; i++) {
		snprintf(errtext[i], sizeof(errtext[i]), "%s", strerror(errnos[i]));
		ASSERT_STR_EQ(shmpipe_strerror(-errnos[i]), errtext[i]);
	}
	ASSERT_STR_EQ(shmpipe_strerror(-EPIPE), "Broken pipe");
}

/* shmpipe_strerror is thread-safe: two threads, same answers. */
static void *strerror_thread(void *arg)
{
	(void)arg;
	for (int round = 0; round < 2000; round++) {
		for (size_t i = 0; i < NERRNOS; i++) {
			const char *s = shmpipe_strerror(-errnos[i]);
			if (s == NULL || strcmp(s, errtext[i]) != 0)
				TEST_FAIL("shmpipe_strerror(-%d) = \"%s\" in a thread, want \"%s\"",
					  errnos[i], s ? s : "(null)", errtext[i]);
		}
		ASSERT_NOT_NULL(shmpipe_strerror(INT_MIN + round));
		ASSERT_NOT_NULL(shmpipe_strerror(-10000 - round));
	}
	return NULL;
}

static void test_strerror_threads(void)
{
	pthread_t t[2];

	for (int i = 0; i < 2; i++)
		ASSERT_EQ(pthread_create(&t[i], NULL, strerror_thread, NULL), 0);
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(pthread_join(t[i], NULL), 0);
}

static void test_version(void)
{
	char want[64];
	const char *v = shmpipe_version();

	snprintf(want, sizeof(want), "%d.%d.%d", SHMPIPE_VERSION_MAJOR, SHMPIPE_VERSION_MINOR,
		 SHMPIPE_VERSION_PATCH);
	ASSERT_STR_EQ(v, want);
	ASSERT_STR_EQ(shmpipe_version(), want);
}

int main(void)
{
	test_watchdog(20);
	test_pair_args();
	test_handle_args();
	test_zero_length();
	test_no_leak_on_failure();
	test_emfile();
	test_strerror_values();
	test_strerror_threads();
	test_version();
	return T_PASS;
}
