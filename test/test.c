/* SPDX-License-Identifier: MIT */
/*
 * test.c - the helpers of test.h, compiled once for every test program.
 */
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "test.h"

void test_die(void)
{
	fflush(stdout);
	fflush(stderr);
	_exit(T_FAIL);
}

void test_fmt(char *buf, size_t n, struct test_val v)
{
	if (v.is_unsigned)
		snprintf(buf, n, "%ju", v.u);
	else if (v.s < 0 && v.s >= -4095)
		snprintf(buf, n, "%jd (%s)", v.s, shmpipe_strerror((int)v.s));
	else
		snprintf(buf, n, "%jd", v.s);
}

void test_fail_cmp(const char *file, int line, const char *name, const char *op, const char *ea,
		   const char *eb, struct test_val a, struct test_val b)
{
	char ga[128], wb[128];

	test_fmt(ga, sizeof(ga), a);
	test_fmt(wb, sizeof(wb), b);
	fprintf(stderr, "%s:%d: %s(%s, %s) failed: got %s, want %s %s\n", file, line, name, ea, eb,
		ga, op, wb);
	test_die();
}

const char *test_errtext(long long v)
{
	if (v > INT_MAX || v < INT_MIN)
		return "out of int range";
	return shmpipe_strerror((int)v);
}

void test_print_stats(const char *what, const shmpipe_stats *s)
{
	printf("%s: capacity %" PRIu64 " write_index %" PRIu64 " read_index %" PRIu64
	       " produced %" PRIu64 " consumed %" PRIu64 " producer_waits %" PRIu64
	       " consumer_waits %" PRIu64 "\n",
	       what, s->capacity, s->write_index, s->read_index, s->produced, s->consumed,
	       s->producer_waits, s->consumer_waits);
}

int64_t test_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t test_now_ms(void)
{
	return test_now_ns() / 1000000;
}

int64_t test_thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void test_sleep_ms(int64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

void test_busy_ms(int64_t ms)
{
	int64_t end = test_now_ns() + ms * 1000000;

	while (test_now_ns() < end)
		;
}

/*
 * Where each thread of the hung test is, printed by gdb (if there is one)
 * on standard error: a rare hang says where it hung. The file actions are
 * made when the watchdog is set, since making them allocates; the handler
 * only spawns (glibc's posix_spawn runs no fork handlers and takes no lock
 * that a thread stopped inside malloc could hold), polls with waitpid and
 * nanosleep, and kills gdb after 30 s.
 */
static posix_spawn_file_actions_t test_watchdog_fa_;
static int test_watchdog_fa_made_;

static void test_watchdog_stacks_(void)
{
	static const char gdb[] = "/usr/bin/gdb";
	char pid[24], *p = pid + sizeof(pid) - 1;
	unsigned long v = (unsigned long)getpid();
	char *argv[] = {(char *)"gdb",
			(char *)"-batch",
			(char *)"-nx",
			(char *)"-p",
			NULL,
			(char *)"-ex",
			(char *)"thread apply all bt",
			NULL};
	char *envp[] = {NULL};
	pid_t child;

	if (!test_watchdog_fa_made_ || access(gdb, X_OK) != 0)
		return;
	*p = '\0';
	do
		*--p = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	argv[4] = p;
	if (posix_spawn(&child, gdb, &test_watchdog_fa_, NULL, argv, envp) != 0)
		return;
	for (int i = 0; i < 300; i++) {
		struct timespec ts = {0, 100 * 1000 * 1000};

		if (waitpid(child, NULL, WNOHANG) == child)
			return;
		nanosleep(&ts, NULL);
	}
	kill(child, SIGKILL);
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
}

static void test_watchdog_fire_(int sig)
{
	static const char msg[] = "FAIL: watchdog: the test hung (lost wake-up? "
				  "a call that should have returned?); where its threads are:\n";
	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* Nothing more to say. */
	}
	test_watchdog_stacks_();
	_exit(T_FAIL);
}

void test_watchdog(unsigned seconds)
{
	if (!test_watchdog_fa_made_ && posix_spawn_file_actions_init(&test_watchdog_fa_) == 0)
		test_watchdog_fa_made_ =
		    posix_spawn_file_actions_adddup2(&test_watchdog_fa_, 2, 1) == 0;
	signal(SIGALRM, test_watchdog_fire_);
	alarm(seconds * TEST_WATCHDOG_SCALE);
}

void test_pattern_fill(void *dst, size_t len, uint64_t seed, uint64_t off)
{
	uint8_t *p = dst;
	size_t i = 0;

	while (i < len && ((off + i) & 7) != 0) {
		p[i] = test_pattern_byte(seed, off + i);
		i++;
	}
	for (; i + 8 <= len; i += 8) {
		uint64_t w = test_pattern_word(seed, (off + i) >> 3);
		for (int k = 0; k < 8; k++)
			p[i + k] = (uint8_t)(w >> (k * 8));
	}
	for (; i < len; i++)
		p[i] = test_pattern_byte(seed, off + i);
}

size_t test_pattern_check(const void *src, size_t len, uint64_t seed, uint64_t off)
{
	const uint8_t *p = src;
	size_t i = 0;

	while (i < len && ((off + i) & 7) != 0) {
		if (p[i] != test_pattern_byte(seed, off + i))
			return i;
		i++;
	}
	for (; i + 8 <= len; i += 8) {
		uint64_t w = test_pattern_word(seed, (off + i) >> 3);
		uint64_t got = 0;
		for (int k = 0; k < 8; k++)
			got |= (uint64_t)p[i + k] << (k * 8);
		if (got != w)
			break;
	}
	for (; i < len; i++) {
		if (p[i] != test_pattern_byte(seed, off + i))
			return i;
	}
	return len;
}

int test_count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n;
}

int test_count_fds(void)
{
	int n = test_count_entries("/proc/self/fd");

	return n < 0 ? n : n - 1; /* the directory's own descriptor */
}

int test_count_maps(const char *needle)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[4096];
	int n = 0;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strstr(line, needle) != NULL)
			n++;
	}
	fclose(f);
	return n;
}

shmpipe_options test_opts(size_t capacity)
{
	shmpipe_options o;

	memset(&o, 0, sizeof(o));
	o.capacity = capacity;
	return o;
}

void test_pair(shmpipe_writer **w, shmpipe_reader **r, size_t capacity)
{
	shmpipe_options o = test_opts(capacity);
	int ret = shmpipe_pair(w, r, &o);

	if (ret != 0) {
		fprintf(stderr, "FAIL: shmpipe_pair(capacity %zu) = %d (%s)\n", capacity, ret,
			shmpipe_strerror(ret));
		test_die();
	}
}

shmpipe_stats test_wstats(const shmpipe_writer *w)
{
	shmpipe_stats s;
	int ret = shmpipe_writer_stats(w, &s);

	if (ret != 0) {
		fprintf(stderr, "FAIL: shmpipe_writer_stats = %d (%s)\n", ret,
			shmpipe_strerror(ret));
		test_die();
	}
	return s;
}

shmpipe_stats test_rstats(const shmpipe_reader *r)
{
	shmpipe_stats s;
	int ret = shmpipe_reader_stats(r, &s);

	if (ret != 0) {
		fprintf(stderr, "FAIL: shmpipe_reader_stats = %d (%s)\n", ret,
			shmpipe_strerror(ret));
		test_die();
	}
	return s;
}

void test_read_exact(shmpipe_reader *r, void *buf, size_t len)
{
	size_t have = 0;

	while (have < len) {
		ssize_t n = shmpipe_read(r, (uint8_t *)buf + have, len - have);
		if (n <= 0) {
			fprintf(stderr, "FAIL: shmpipe_read after %zu of %zu bytes = %zd (%s)\n",
				have, len, n, shmpipe_strerror((int)n));
			test_die();
		}
		have += (size_t)n;
	}
}

void test_write_pattern(shmpipe_writer *w, uint64_t seed, uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len ? len : 1);

	ASSERT_NOT_NULL(buf);
	test_pattern_fill(buf, len, seed, off);
	ASSERT_EQ(shmpipe_write(w, buf, len), (ssize_t)len);
	free(buf);
}

void test_read_pattern(shmpipe_reader *r, uint64_t seed, uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len ? len : 1);

	ASSERT_NOT_NULL(buf);
	test_read_exact(r, buf, len);
	ASSERT_PATTERN(buf, len, seed, off);
	free(buf);
}

void test_two_threads(void *(*writer)(void *), void *warg, void *(*reader)(void *), void *rarg)
{
	pthread_t tw, tr;

	ASSERT_OK(pthread_create(&tr, NULL, reader, rarg));
	ASSERT_OK(pthread_create(&tw, NULL, writer, warg));
	ASSERT_OK(pthread_join(tw, NULL));
	ASSERT_OK(pthread_join(tr, NULL));
}

long test_env_long(const char *name, long def)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (v == NULL || *v == '\0')
		return def;
	n = strtol(v, &end, 10);
	if (*end != '\0' || n <= 0) {
		fprintf(stderr, "FAIL: %s=%s is not a positive integer\n", name, v);
		test_die();
	}
	return n;
}

void test_record_fill(uint8_t *p, uint64_t seq, uint64_t len)
{
	test_pattern_fill(p, len, seq, 0);
	if (len >= 16) {
		memcpy(p, &seq, 8);
		memcpy(p + 8, &len, 8);
	}
}

void test_record_check(const uint8_t *p, uint64_t seq, uint64_t len)
{
	if (len >= 16) {
		uint64_t gs, gl;

		memcpy(&gs, p, 8);
		memcpy(&gl, p + 8, 8);
		ASSERT_EQ(gs, seq);
		ASSERT_EQ(gl, len);
		ASSERT_PATTERN(p + 16, len - 16, seq, 16);
	} else {
		ASSERT_PATTERN(p, len, seq, 0);
	}
}
