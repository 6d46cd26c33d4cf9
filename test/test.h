/* SPDX-License-Identifier: MIT */
/*
 * test.h - what every shmpipe test shares: typed asserts that say what they
 * got and what they wanted, clocks, a deterministic byte pattern, and probes
 * of /proc for leaked descriptors and mappings.
 *
 * Conventions (liburing's): a test is one small program about one feature.
 * It exits 0 when it passes, 1 when it fails (T_FAIL) and 77 when it cannot
 * run here (T_SKIP); ctest maps 77 to "skipped". An assert that fails prints
 *
 *     basic.c:42: ASSERT_EQ(ret, 5) failed: got 3, want == 5
 *
 * and ends the whole process at once with _exit(1), from whatever thread it
 * runs in: a failing test must not hang waiting for a peer thread.
 *
 * The helpers are compiled once, in test.c, into a library every test
 * program links; what remains inline here is the asserts (macros, which
 * must see the caller's file and line) and the few helpers used once per
 * item or byte (random numbers, the pattern's words).
 */
#ifndef SHMPIPE_TEST_H
#define SHMPIPE_TEST_H

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shmpipe.h"

#define T_PASS 0
#define T_FAIL 1
#define T_SKIP 77

/*
 * Sanitized builds run 5 to 15 times slower; tests scale their upper time
 * bounds (never their lower ones) by TEST_SLOW.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TEST_SANITIZED 1
#endif
#endif
#ifdef TEST_SANITIZED
#define TEST_SLOW	    10
#define TEST_WATCHDOG_SCALE 3 /* ctest's timeouts are 3x longer there too */
#else
#define TEST_SLOW	    1
#define TEST_WATCHDOG_SCALE 1
#endif

/* ---- failing ----------------------------------------------------------- */

__attribute__((noreturn)) void test_die(void);

#define TEST_FAIL(...)                                                                             \
	do {                                                                                       \
		fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);                              \
		fprintf(stderr, __VA_ARGS__);                                                      \
		fputc('\n', stderr);                                                               \
		test_die();                                                                        \
	} while (0)

#define TEST_SKIP(...)                                                                             \
	do {                                                                                       \
		fprintf(stderr, "SKIP: ");                                                         \
		fprintf(stderr, __VA_ARGS__);                                                      \
		fputc('\n', stderr);                                                               \
		exit(T_SKIP);                                                                      \
	} while (0)

/* ---- typed integer asserts ---------------------------------------------- */

/*
 * A value keeps its signedness so that it prints as it is (a ssize_t -11 is
 * not 18446744073709551605) and compares right against the other operand
 * whatever its type. _Generic picks the constructor without evaluating the
 * expression, and the chosen function evaluates it exactly once.
 */
struct test_val {
	int is_unsigned;
	intmax_t s;
	uintmax_t u;
};

static inline struct test_val test_val_s(intmax_t v)
{
	struct test_val t = {0, v, (uintmax_t)v};
	return t;
}

static inline struct test_val test_val_u(uintmax_t v)
{
	struct test_val t = {1, (intmax_t)v, v};
	return t;
}

#define TEST_VAL(x)                                                                                \
	_Generic((x) + 0, unsigned int                                                             \
		 : test_val_u, unsigned long                                                       \
		 : test_val_u, unsigned long long                                                  \
		 : test_val_u, default                                                             \
		 : test_val_s)(x)

/* -1, 0 or 1 as a <, == or > b, mathematically. */
static inline int test_cmp(struct test_val a, struct test_val b)
{
	if (!a.is_unsigned && a.s < 0) {
		if (!b.is_unsigned && b.s < 0)
			return a.s < b.s ? -1 : a.s > b.s;
		return -1;
	}
	if (!b.is_unsigned && b.s < 0)
		return 1;
	return a.u < b.u ? -1 : a.u > b.u;
}

void test_fmt(char *buf, size_t n, struct test_val v);

__attribute__((noreturn)) void test_fail_cmp(const char *file, int line, const char *name,
					     const char *op, const char *ea, const char *eb,
					     struct test_val a, struct test_val b);

#define TEST_CMP_(name, a, op, b)                                                                  \
	do {                                                                                       \
		struct test_val ta_ = TEST_VAL(a);                                                 \
		struct test_val tb_ = TEST_VAL(b);                                                 \
		if (!(test_cmp(ta_, tb_) op 0))                                                    \
			test_fail_cmp(__FILE__, __LINE__, name, #op, #a, #b, ta_, tb_);            \
	} while (0)

#define ASSERT_EQ(a, b) TEST_CMP_("ASSERT_EQ", a, ==, b)
#define ASSERT_NE(a, b) TEST_CMP_("ASSERT_NE", a, !=, b)
#define ASSERT_GE(a, b) TEST_CMP_("ASSERT_GE", a, >=, b)
#define ASSERT_LE(a, b) TEST_CMP_("ASSERT_LE", a, <=, b)
#define ASSERT_GT(a, b) TEST_CMP_("ASSERT_GT", a, >, b)
#define ASSERT_LT(a, b) TEST_CMP_("ASSERT_LT", a, <, b)

#define ASSERT_TRUE(x)                                                                             \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr,                                                            \
				"%s:%d: ASSERT_TRUE(%s) failed: got false, "                       \
				"want true\n",                                                     \
				__FILE__, __LINE__, #x);                                           \
			test_die();                                                                \
		}                                                                                  \
	} while (0)

/* ---- return codes ------------------------------------------------------- */

const char *test_errtext(long long v);

/* ASSERT_ERR(shmpipe_read(r, b, 1), -EAGAIN): exactly that return value. */
#define ASSERT_ERR(expr, want)                                                                     \
	do {                                                                                       \
		long long g_ = (long long)(expr);                                                  \
		long long w_ = (long long)(want);                                                  \
		if (g_ != w_) {                                                                    \
			fprintf(stderr,                                                            \
				"%s:%d: ASSERT_ERR(%s, %s) failed: got %lld "                      \
				"(%s), want %lld (%s)\n",                                          \
				__FILE__, __LINE__, #expr, #want, g_, test_errtext(g_), w_,        \
				test_errtext(w_));                                                 \
			test_die();                                                                \
		}                                                                                  \
	} while (0)

/* A call that must return 0. */
#define ASSERT_OK(expr) ASSERT_ERR(expr, 0)

/* ---- pointers and memory ------------------------------------------------ */

#define ASSERT_PTR_EQ(a, b)                                                                        \
	do {                                                                                       \
		const void *pa_ = (const void *)(a);                                               \
		const void *pb_ = (const void *)(b);                                               \
		if (pa_ != pb_) {                                                                  \
			fprintf(stderr,                                                            \
				"%s:%d: ASSERT_PTR_EQ(%s, %s) failed: got %p, "                    \
				"want %p\n",                                                       \
				__FILE__, __LINE__, #a, #b, pa_, pb_);                             \
			test_die();                                                                \
		}                                                                                  \
	} while (0)

#define ASSERT_NOT_NULL(a)                                                                         \
	do {                                                                                       \
		if ((a) == NULL) {                                                                 \
			fprintf(stderr, "%s:%d: ASSERT_NOT_NULL(%s) failed: got NULL\n", __FILE__, \
				__LINE__, #a);                                                     \
			test_die();                                                                \
		}                                                                                  \
	} while (0)

#define ASSERT_MEM_EQ(a, b, n)                                                                     \
	do {                                                                                       \
		const unsigned char *ma_ = (const unsigned char *)(a);                             \
		const unsigned char *mb_ = (const unsigned char *)(b);                             \
		size_t n_ = (n);                                                                   \
		for (size_t i_ = 0; i_ < n_; i_++) {                                               \
			if (ma_[i_] != mb_[i_]) {                                                  \
				fprintf(stderr,                                                    \
					"%s:%d: ASSERT_MEM_EQ(%s, %s, %s) "                        \
					"failed: byte %zu of %zu: got 0x%02x, "                    \
					"want 0x%02x\n",                                           \
					__FILE__, __LINE__, #a, #b, #n, i_, n_, ma_[i_], mb_[i_]); \
				test_die();                                                        \
			}                                                                          \
		}                                                                                  \
	} while (0)

#define ASSERT_STR_EQ(a, b)                                                                        \
	do {                                                                                       \
		const char *sa_ = (a);                                                             \
		const char *sb_ = (b);                                                             \
		if (sa_ == NULL || sb_ == NULL || strcmp(sa_, sb_) != 0) {                         \
			fprintf(stderr,                                                            \
				"%s:%d: ASSERT_STR_EQ(%s, %s) failed: got "                        \
				"\"%s\", want \"%s\"\n",                                           \
				__FILE__, __LINE__, #a, #b, sa_ ? sa_ : "(null)",                  \
				sb_ ? sb_ : "(null)");                                             \
			test_die();                                                                \
		}                                                                                  \
	} while (0)

/* ---- stats -------------------------------------------------------------- */

/* Both ends of one pipe must report the same counters. */
#define ASSERT_STATS_EQ(a, b)                                                                      \
	do {                                                                                       \
		const shmpipe_stats *sa_ = (a), *sb_ = (b);                                        \
		ASSERT_EQ(sa_->capacity, sb_->capacity);                                           \
		ASSERT_EQ(sa_->write_index, sb_->write_index);                                     \
		ASSERT_EQ(sa_->read_index, sb_->read_index);                                       \
		ASSERT_EQ(sa_->produced, sb_->produced);                                           \
		ASSERT_EQ(sa_->consumed, sb_->consumed);                                           \
		ASSERT_EQ(sa_->producer_waits, sb_->producer_waits);                               \
		ASSERT_EQ(sa_->consumer_waits, sb_->consumer_waits);                               \
	} while (0)

void test_print_stats(const char *what, const shmpipe_stats *s);

/* ---- clocks ------------------------------------------------------------- */

int64_t test_now_ns(void);

int64_t test_now_ms(void);

/* CPU time of the calling thread. */
int64_t test_thread_cpu_ns(void);

/* Sleeps the whole time even if signal handlers run meanwhile. */
void test_sleep_ms(int64_t ms);

/* Burns the CPU for ms milliseconds (a consumer that is slow, not asleep). */
void test_busy_ms(int64_t ms);

/*
 * A watchdog for tests whose failure mode is a hang (a lost wake-up, a
 * missing timeout): fail with a message instead of waiting for ctest's
 * timeout, and with each thread's stack (gdb, when there is one), so that
 * a rare hang says where. Keep `seconds` below the test's ctest TIMEOUT;
 * both are scaled by 3 in sanitized builds.
 */

void test_watchdog(unsigned seconds);

/* ---- deterministic data ------------------------------------------------- */

/* splitmix64's finalizer: a good 64-bit mix, cheap. */
static inline uint64_t test_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* xorshift64*: the tests' random source; never returns with *s == 0. */
static inline uint64_t test_rand(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x2545f4914f6cdd1dull;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* Uniform enough in [lo, hi]. */
static inline uint64_t test_rand_range(uint64_t *s, uint64_t lo, uint64_t hi)
{
	return lo + test_rand(s) % (hi - lo + 1);
}

/*
 * The byte stream every data test sends: byte number `off` of the stream
 * keyed by `seed` is byte (off % 8) of mix(seed, off / 8). Any lost,
 * duplicated, reordered or corrupted byte is caught by the reader, which
 * knows the absolute offset it is at.
 */
static inline uint64_t test_pattern_word(uint64_t seed, uint64_t word)
{
	return test_mix64(seed ^ (word * 0xd6e8feb86659fd93ull));
}

static inline uint8_t test_pattern_byte(uint64_t seed, uint64_t off)
{
	return (uint8_t)(test_pattern_word(seed, off >> 3) >> ((off & 7) * 8));
}

void test_pattern_fill(void *dst, size_t len, uint64_t seed, uint64_t off);

/* Returns len if buf holds the pattern at off, else the first bad index. */
size_t test_pattern_check(const void *src, size_t len, uint64_t seed, uint64_t off);

/* Fails the test, saying where, if buf is not the pattern at stream offset off. */
#define ASSERT_PATTERN(buf, len, seed, off)                                                        \
	do {                                                                                       \
		size_t len_ = (len);                                                               \
		uint64_t off_ = (off);                                                             \
		size_t bad_ = test_pattern_check((buf), len_, (seed), off_);                       \
		if (bad_ != len_) {                                                                \
			fprintf(stderr,                                                            \
				"%s:%d: ASSERT_PATTERN(%s, %s) failed: stream "                    \
				"byte %" PRIu64 " (byte %zu of a read of %zu): "                   \
				"got 0x%02x, want 0x%02x\n",                                       \
				__FILE__, __LINE__, #buf, #len, off_ + bad_, bad_, len_,           \
				((const uint8_t *)(buf))[bad_],                                    \
				test_pattern_byte((seed), off_ + bad_));                           \
			test_die();                                                                \
		}                                                                                  \
	} while (0)

/* ---- resources ---------------------------------------------------------- */

/* Entries of a directory, less "." and "..", or -1 if it cannot be read. */
int test_count_entries(const char *dir);

/* Open descriptors of this process, or -1 if /proc is not there. */
int test_count_fds(void);

/* Lines of /proc/self/maps containing needle, or -1 without /proc. */
int test_count_maps(const char *needle);

/* ---- small conveniences --------------------------------------------------- */

shmpipe_options test_opts(size_t capacity);

void test_pair(shmpipe_writer **w, shmpipe_reader **r, size_t capacity);

shmpipe_stats test_wstats(const shmpipe_writer *w);

shmpipe_stats test_rstats(const shmpipe_reader *r);

/*
 * Reads exactly len bytes, in as many calls as it takes (for tests whose
 * point is elsewhere than in how much one read returns).
 */
void test_read_exact(shmpipe_reader *r, void *buf, size_t len);

/*
 * Writes len bytes of the pattern of seed at stream offset off, in one call;
 * reads exactly len bytes and checks that they are that.
 */
void test_write_pattern(shmpipe_writer *w, uint64_t seed, uint64_t off, size_t len);
void test_read_pattern(shmpipe_reader *r, uint64_t seed, uint64_t off, size_t len);

/*
 * Runs reader(rarg) and writer(warg) in two threads and returns when both
 * have returned. The reader starts first, so that it may be waiting before
 * the first byte is written; the writer is joined first, then the reader.
 * Their return values are ignored: they report failures with the asserts,
 * which end the process.
 */
void test_two_threads(void *(*writer)(void *), void *warg, void *(*reader)(void *), void *rarg);

/* An environment knob: a positive integer, or def. */
long test_env_long(const char *name, long def);

/*
 * A record (or datagram) of len bytes numbered seq: the pattern of seed seq,
 * with seq and len in its first 16 bytes when it has room for them, so that
 * a check tells a lost, repeated or torn record from a corrupted one.
 */
void test_record_fill(uint8_t *p, uint64_t seq, uint64_t len);

void test_record_check(const uint8_t *p, uint64_t seq, uint64_t len);

#endif /* SHMPIPE_TEST_H */
