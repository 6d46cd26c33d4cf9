/* SPDX-License-Identifier: MIT */
/*
 * Description: named pipes between processes. Round trips through a pair of
 * named pipes with a forked child and with an unrelated program (fork+exec
 * of test/peer); -EEXIST, -ENOENT, -EBUSY (a second writer or reader, from
 * this process or another one, and an end that was given up: an end is taken
 * once); -EINVAL for every bad name in every function that takes one, and
 * nothing created on failure; the permission bits of the object; unlink with
 * ends attached; shmpipe_stat, which observes without taking an end; either
 * side creating; a writer that fills the ring (and even closes) before any
 * reader comes; and a live peer that is slow for several liveness periods is
 * not taken for a dead one.
 */
#include "xproc.h"

#define SEED 0x4e414d45

static shmpipe_options opts_cap(size_t capacity, unsigned flags)
{
	shmpipe_options o = test_opts(capacity);

	o.flags = flags;
	return o;
}

/* ---- names --------------------------------------------------------------- */

static void check_bad_name(const char *name)
{
	shmpipe_writer *w = NULL;
	shmpipe_reader *r = NULL;
	shmpipe_stats s;

	if (name != NULL) {
		/* NULL is valid for create: an anonymous pipe. */
		ASSERT_ERR(shmpipe_writer_create(&w, name, NULL), -EINVAL);
		ASSERT_ERR(shmpipe_reader_create(&r, name, NULL), -EINVAL);
	}
	ASSERT_ERR(shmpipe_writer_open(&w, name), -EINVAL);
	ASSERT_ERR(shmpipe_reader_open(&r, name), -EINVAL);
	ASSERT_ERR(shmpipe_unlink(name), -EINVAL);
	ASSERT_ERR(shmpipe_stat(name, &s), -EINVAL);
	ASSERT_PTR_EQ(w, NULL);
	ASSERT_PTR_EQ(r, NULL);
}

static void test_bad_names(void)
{
	char name[XP_NAME_MAX], longest[XP_NAME_MAX], toolong[XP_NAME_MAX];
	char slash_mid[XP_NAME_MAX + 8], slash_end[XP_NAME_MAX + 8], no_slash[XP_NAME_MAX];
	shmpipe_writer *w = NULL;
	shmpipe_reader *r = NULL;
	shmpipe_options o;
	shmpipe_stats s;
	size_t len;

	check_bad_name(NULL);
	check_bad_name("");
	check_bad_name("x");
	check_bad_name("/");
	check_bad_name("//");
	check_bad_name("/a/b");

	/* Our own prefix, so that anything wrongly created is found and removed. */
	xp_name(name, sizeof(name), 1);
	snprintf(no_slash, sizeof(no_slash), "%s", name + 1);
	check_bad_name(no_slash);
	snprintf(slash_mid, sizeof(slash_mid), "%s/x", name);
	check_bad_name(slash_mid);
	snprintf(slash_end, sizeof(slash_end), "%s/", name);
	check_bad_name(slash_end);
	snprintf(slash_end, sizeof(slash_end), "/%s", name);
	check_bad_name(slash_end);

	/* 200 characters after the '/' is the longest name; 201 is too long. */
	len = strlen(name);
	ASSERT_LT(len, 200);
	memset(longest, 'L', 201);
	memcpy(longest, name, len);
	longest[201] = '\0';
	ASSERT_EQ(strlen(longest) - 1, 200);
	memcpy(toolong, longest, 201);
	toolong[201] = 'L';
	toolong[202] = '\0';
	check_bad_name(toolong);
	ASSERT_TRUE(!xp_name_exists(toolong));

	ASSERT_OK(shmpipe_writer_create(&w, longest, NULL));
	ASSERT_OK(shmpipe_stat(longest, &s));
	ASSERT_OK(shmpipe_reader_open(&r, longest));
	ASSERT_EQ(shmpipe_write(w, "longest", 7), 7);
	{
		char buf[8];
		test_read_exact(r, buf, 7);
		ASSERT_MEM_EQ(buf, "longest", 7);
	}
	ASSERT_OK(shmpipe_unlink(longest));
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));

	/* Other bad arguments: nothing may be created either. */
	w = NULL;
	r = NULL;
	ASSERT_ERR(shmpipe_writer_create(NULL, name, NULL), -EINVAL);
	ASSERT_ERR(shmpipe_reader_create(NULL, name, NULL), -EINVAL);
	ASSERT_ERR(shmpipe_writer_open(NULL, name), -EINVAL);
	ASSERT_ERR(shmpipe_reader_open(NULL, name), -EINVAL);
	o = opts_cap(0, 0x80);
	ASSERT_ERR(shmpipe_writer_create(&w, name, &o), -EINVAL);
	o = opts_cap((size_t)SHMPIPE_MAX_CAPACITY + 1, 0);
	ASSERT_ERR(shmpipe_reader_create(&r, name, &o), -EINVAL);
	o = opts_cap(15, SHMPIPE_RECORDS);
	ASSERT_ERR(shmpipe_writer_create(&w, name, &o), -EINVAL);
	ASSERT_PTR_EQ(w, NULL);
	ASSERT_PTR_EQ(r, NULL);
	ASSERT_TRUE(!xp_name_exists(name));
	ASSERT_OK(shmpipe_writer_create(&w, name, NULL));
	ASSERT_ERR(shmpipe_stat(name, NULL), -EINVAL);
	ASSERT_OK(shmpipe_unlink(name));
	ASSERT_OK(shmpipe_writer_close(w));
	printf("bad names: -EINVAL everywhere, nothing created\n");
}

/* ---- -EEXIST, -ENOENT, -EBUSY --------------------------------------------- */

static void test_exist_noent(void)
{
	char name[XP_NAME_MAX], missing[XP_NAME_MAX];
	shmpipe_writer *w, *w2 = NULL;
	shmpipe_reader *r, *r2 = NULL;
	shmpipe_stats s;

	xp_name(name, sizeof(name), 2);
	xp_name(missing, sizeof(missing), 3);

	ASSERT_OK(shmpipe_writer_create(&w, name, NULL));
	ASSERT_ERR(shmpipe_writer_create(&w2, name, NULL), -EEXIST);
	ASSERT_ERR(shmpipe_reader_create(&r2, name, NULL), -EEXIST);
	ASSERT_PTR_EQ(w2, NULL);
	ASSERT_PTR_EQ(r2, NULL);
	/* The failed creates did not harm the pipe. */
	ASSERT_OK(shmpipe_reader_open(&r, name));
	ASSERT_EQ(shmpipe_write(w, "abc", 3), 3);
	{
		char buf[3];
		test_read_exact(r, buf, 3);
		ASSERT_MEM_EQ(buf, "abc", 3);
	}
	ASSERT_OK(shmpipe_unlink(name));
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));

	/* A name that exists but is no shmpipe's is taken as well. */
	{
		int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
		ASSERT_GE(fd, 0);
		close(fd);
		ASSERT_ERR(shmpipe_reader_create(&r2, name, NULL), -EEXIST);
		ASSERT_OK(shmpipe_unlink(name));
	}

	ASSERT_ERR(shmpipe_writer_open(&w2, missing), -ENOENT);
	ASSERT_ERR(shmpipe_reader_open(&r2, missing), -ENOENT);
	ASSERT_ERR(shmpipe_stat(missing, &s), -ENOENT);
	ASSERT_ERR(shmpipe_unlink(missing), -ENOENT);
	ASSERT_PTR_EQ(w2, NULL);
	ASSERT_PTR_EQ(r2, NULL);
	ASSERT_TRUE(!xp_name_exists(missing));
	printf("-EEXIST and -ENOENT: ok\n");
}

static void test_busy_same_process(void)
{
	char a[XP_NAME_MAX], b[XP_NAME_MAX];
	shmpipe_writer *w, *w2 = NULL;
	shmpipe_reader *r, *r2 = NULL;

	xp_name(a, sizeof(a), 4);
	xp_name(b, sizeof(b), 5);

	/* The writer created it: a second writer is refused, one reader is not. */
	ASSERT_OK(shmpipe_writer_create(&w, a, NULL));
	ASSERT_ERR(shmpipe_writer_open(&w2, a), -EBUSY);
	ASSERT_OK(shmpipe_reader_open(&r, a));
	ASSERT_ERR(shmpipe_reader_open(&r2, a), -EBUSY);
	ASSERT_ERR(shmpipe_writer_open(&w2, a), -EBUSY);
	ASSERT_PTR_EQ(w2, NULL);
	ASSERT_PTR_EQ(r2, NULL);
	/* Given up, an end stays taken. */
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_ERR(shmpipe_reader_open(&r2, a), -EBUSY);
	ASSERT_ERR(shmpipe_write(w, "x", 1), -EPIPE);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_ERR(shmpipe_writer_open(&w2, a), -EBUSY);
	ASSERT_ERR(shmpipe_reader_open(&r2, a), -EBUSY);
	ASSERT_OK(shmpipe_unlink(a));

	/* The same with the reader as the creator. */
	ASSERT_OK(shmpipe_reader_create(&r, b, NULL));
	ASSERT_ERR(shmpipe_reader_open(&r2, b), -EBUSY);
	ASSERT_OK(shmpipe_writer_open(&w, b));
	ASSERT_ERR(shmpipe_writer_open(&w2, b), -EBUSY);
	ASSERT_ERR(shmpipe_reader_open(&r2, b), -EBUSY);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_ERR(shmpipe_writer_open(&w2, b), -EBUSY);
	ASSERT_ERR(shmpipe_read(r, (char[1]){0}, 1), 0);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_ERR(shmpipe_reader_open(&r2, b), -EBUSY);
	ASSERT_PTR_EQ(w2, NULL);
	ASSERT_PTR_EQ(r2, NULL);
	ASSERT_OK(shmpipe_unlink(b));
	printf("-EBUSY in one process: ok\n");
}

/*
 * Another process holds the end: the child opens the reader of a pipe whose
 * writer we hold; while it lives, neither a second reader nor a second
 * writer can attach, from here or from the child.
 */
static void test_busy_other_process(void)
{
	char name[XP_NAME_MAX];
	struct xp_chan up, down;
	shmpipe_writer *w, *w2 = NULL;
	shmpipe_reader *r2 = NULL;
	pid_t pid;

	xp_name(name, sizeof(name), 6);
	xp_chan_open(&up);
	xp_chan_open(&down);
	ASSERT_OK(shmpipe_writer_create(&w, name, NULL));
	pid = xp_fork();
	if (pid == 0) {
		shmpipe_reader *r, *rr = NULL;
		shmpipe_writer *ww = NULL;
		char buf[5];

		/* The writer end is ours (the parent's): taken. */
		ASSERT_ERR(shmpipe_writer_open(&ww, name), -EBUSY);
		ASSERT_OK(shmpipe_reader_open(&r, name));
		ASSERT_ERR(shmpipe_reader_open(&rr, name), -EBUSY);
		xp_send(&up, 'o');
		test_read_exact(r, buf, 5);
		ASSERT_MEM_EQ(buf, "hello", 5);
		xp_recv(&down, 10000);
		ASSERT_OK(shmpipe_reader_close(r));
		/* Not the parent's handle w: it is the parent's to close. */
		_exit(T_PASS);
	}
	ASSERT_EQ(xp_recv(&up, 10000), 'o');
	ASSERT_ERR(shmpipe_reader_open(&r2, name), -EBUSY);
	ASSERT_ERR(shmpipe_writer_open(&w2, name), -EBUSY);
	ASSERT_EQ(shmpipe_write(w, "hello", 5), 5);
	xp_send(&down, 'q');
	XP_ASSERT_EXIT(xp_wait(pid, 10000), T_PASS);
	/* The child closed its reader: still taken. */
	ASSERT_ERR(shmpipe_reader_open(&r2, name), -EBUSY);
	ASSERT_ERR(shmpipe_write(w, "x", 1), -EPIPE);
	ASSERT_PTR_EQ(w2, NULL);
	ASSERT_PTR_EQ(r2, NULL);
	ASSERT_OK(shmpipe_unlink(name));
	ASSERT_OK(shmpipe_writer_close(w));
	xp_chan_close(&up);
	xp_chan_close(&down);
	printf("-EBUSY across processes: ok\n");
}

/* ---- round trips ---------------------------------------------------------- */

/*
 * Messages of random sizes go out on `out` and must come back whole on `in`,
 * echoed by the other process; then end of stream both ways.
 */
static void echo_rounds(shmpipe_writer *out, shmpipe_reader *in, int rounds, size_t maxlen)
{
	uint8_t *buf = malloc(maxlen), *back = malloc(maxlen);
	uint64_t rng = 4242, off = 0;

	ASSERT_NOT_NULL(buf);
	ASSERT_NOT_NULL(back);
	for (int i = 0; i < rounds; i++) {
		size_t n = (size_t)test_rand_range(&rng, 1, maxlen);
		test_pattern_fill(buf, n, SEED, off);
		ASSERT_EQ(shmpipe_write(out, buf, n), n);
		test_read_exact(in, back, n);
		ASSERT_PATTERN(back, n, SEED, off);
		off += n;
	}
	ASSERT_OK(shmpipe_writer_close(out));
	ASSERT_ERR(shmpipe_read(in, back, maxlen), 0);
	ASSERT_OK(shmpipe_reader_close(in));
	free(buf);
	free(back);
}

static void test_roundtrip_fork(void)
{
	char a[XP_NAME_MAX], b[XP_NAME_MAX];
	shmpipe_options oa = opts_cap(4099, 0), ob = opts_cap(8191, 0);
	shmpipe_writer *w;
	shmpipe_reader *r;
	int64_t t0;
	pid_t pid;

	xp_name(a, sizeof(a), 7);
	xp_name(b, sizeof(b), 8);
	ASSERT_OK(shmpipe_writer_create(&w, a, &oa));
	ASSERT_OK(shmpipe_reader_create(&r, b, &ob));
	pid = xp_fork();
	if (pid == 0) {
		shmpipe_reader *cr;
		shmpipe_writer *cw;
		uint8_t buf[3000];

		ASSERT_OK(shmpipe_reader_open(&cr, a));
		ASSERT_OK(shmpipe_writer_open(&cw, b));
		for (;;) {
			ssize_t n = shmpipe_read(cr, buf, sizeof(buf));
			if (n == 0)
				break;
			ASSERT_GT(n, 0);
			ASSERT_EQ(shmpipe_write(cw, buf, (size_t)n), n);
		}
		ASSERT_OK(shmpipe_writer_close(cw));
		ASSERT_OK(shmpipe_reader_close(cr));
		_exit(T_PASS);
	}
	t0 = test_now_ns();
	echo_rounds(w, r, 3000, 4099);
	XP_ASSERT_EXIT(xp_wait(pid, 30000), T_PASS);
	printf("round trip with a forked child: 3000 messages in %.1f ms\n",
	       (double)(test_now_ns() - t0) / 1e6);
	ASSERT_OK(shmpipe_unlink(a));
	ASSERT_OK(shmpipe_unlink(b));
}

static void test_roundtrip_exec(void)
{
	char a[XP_NAME_MAX], b[XP_NAME_MAX];
	shmpipe_options oa = opts_cap(10000, 0), ob = opts_cap(65536, 0);
	shmpipe_writer *w;
	shmpipe_reader *r;
	const char *args[4];
	int64_t t0;
	pid_t pid;

	xp_name(a, sizeof(a), 9);
	xp_name(b, sizeof(b), 10);
	/* This time the reader's pipe first: either may be created first. */
	ASSERT_OK(shmpipe_reader_create(&r, b, &ob));
	ASSERT_OK(shmpipe_writer_create(&w, a, &oa));
	args[0] = "echo";
	args[1] = a;
	args[2] = b;
	args[3] = NULL;
	pid = xp_spawn_peer(args);
	t0 = test_now_ns();
	echo_rounds(w, r, 2000, 10000);
	XP_ASSERT_EXIT(xp_wait(pid, 30000), T_PASS);
	printf("round trip with an exec'd peer: 2000 messages in %.1f ms\n",
	       (double)(test_now_ns() - t0) / 1e6);
	ASSERT_OK(shmpipe_unlink(a));
	ASSERT_OK(shmpipe_unlink(b));
}

/* ---- permissions ---------------------------------------------------------- */

static unsigned mode_of(const char *name)
{
	char path[XP_NAME_MAX + 16];
	struct stat st;

	xp_shm_path(path, sizeof(path), name);
	ASSERT_EQ(stat(path, &st), 0);
	ASSERT_EQ(st.st_uid, geteuid());
	return (unsigned)(st.st_mode & 07777);
}

static unsigned create_mode(const char *name, unsigned mode, int as_reader)
{
	shmpipe_options o = test_opts(0);
	shmpipe_writer *w;
	shmpipe_reader *r;
	unsigned got;

	o.mode = mode;
	if (as_reader)
		ASSERT_OK(shmpipe_reader_create(&r, name, &o));
	else
		ASSERT_OK(shmpipe_writer_create(&w, name, &o));
	got = mode_of(name);
	ASSERT_OK(shmpipe_unlink(name));
	if (as_reader)
		ASSERT_OK(shmpipe_reader_close(r));
	else
		ASSERT_OK(shmpipe_writer_close(w));
	return got;
}

static void test_permissions(void)
{
	char name[XP_NAME_MAX], path[XP_NAME_MAX + 16];
	struct stat st;
	mode_t old;
	unsigned got;

	xp_name(name, sizeof(name), 11);
	if (stat("/dev/shm", &st) != 0) {
		printf("permissions: no /dev/shm, not checked\n");
		return;
	}
	old = umask(0);
	ASSERT_EQ(create_mode(name, 0, 0), 0600);
	ASSERT_EQ(create_mode(name, 0, 1), 0600);
	ASSERT_EQ(create_mode(name, 0640, 0), 0640);
	ASSERT_EQ(create_mode(name, 0640, 1), 0640);
	ASSERT_EQ(create_mode(name, 0604, 0), 0604);

	/* With the usual umask, the default and 0640 are unaffected. */
	umask(022);
	ASSERT_EQ(create_mode(name, 0, 0), 0600);
	ASSERT_EQ(create_mode(name, 0640, 1), 0640);
	/* A umask that would strip asked-for bits: report what happens. */
	umask(077);
	got = create_mode(name, 0640, 0);
	ASSERT_TRUE(got == 0640 || got == 0600);
	umask(old);
	printf("permissions: default 0600, mode 0640 honoured (umask 0 and 022); "
	       "mode 0640 under umask 077 gives %04o (%s); the test ran with umask %04o\n",
	       got, got == 0640 ? "exact, umask ignored" : "umask applied", (unsigned)old);
	xp_shm_path(path, sizeof(path), name);
	ASSERT_TRUE(stat(path, &st) != 0);
}

/* ---- unlink and stat ------------------------------------------------------- */

static void test_unlink_attached(void)
{
	char name[XP_NAME_MAX];
	shmpipe_writer *w, *w2 = NULL;
	shmpipe_reader *r, *r2 = NULL;
	shmpipe_stats s;
	char buf[100];

	xp_name(name, sizeof(name), 12);
	ASSERT_OK(shmpipe_writer_create(&w, name, NULL));
	ASSERT_OK(shmpipe_reader_open(&r, name));
	ASSERT_OK(shmpipe_unlink(name));
	ASSERT_ERR(shmpipe_reader_open(&r2, name), -ENOENT);
	ASSERT_ERR(shmpipe_writer_open(&w2, name), -ENOENT);
	ASSERT_ERR(shmpipe_stat(name, &s), -ENOENT);
	ASSERT_ERR(shmpipe_unlink(name), -ENOENT);
	ASSERT_TRUE(!xp_name_exists(name));

	/* The attached ends work on. */
	test_pattern_fill(buf, sizeof(buf), SEED, 0);
	ASSERT_EQ(shmpipe_write(w, buf, sizeof(buf)), sizeof(buf));
	memset(buf, 0, sizeof(buf));
	test_read_exact(r, buf, sizeof(buf));
	ASSERT_PATTERN(buf, sizeof(buf), SEED, 0);

	/* The name is free again: a new, separate pipe. */
	ASSERT_OK(shmpipe_reader_create(&r2, name, NULL));
	ASSERT_OK(shmpipe_stat(name, &s));
	ASSERT_EQ(s.write_index, 0);
	ASSERT_OK(shmpipe_writer_open(&w2, name));
	ASSERT_EQ(shmpipe_write(w, "old", 3), 3);
	ASSERT_EQ(shmpipe_write(w2, "new", 3), 3);
	test_read_exact(r2, buf, 3);
	ASSERT_MEM_EQ(buf, "new", 3);
	test_read_exact(r, buf, 3);
	ASSERT_MEM_EQ(buf, "old", 3);
	ASSERT_OK(shmpipe_unlink(name));
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), 0);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_writer_close(w2));
	ASSERT_OK(shmpipe_reader_close(r2));
	printf("unlink with ends attached: ok\n");
}

static void test_stat(void)
{
	char name[XP_NAME_MAX], rec[XP_NAME_MAX];
	shmpipe_options o = opts_cap(5000, 0);
	shmpipe_writer *w, *w2 = NULL;
	shmpipe_reader *r;
	shmpipe_stats s, ws;
	char buf[1000];
	pid_t pid;

	xp_name(name, sizeof(name), 13);
	xp_name(rec, sizeof(rec), 14);
	test_pattern_fill(buf, sizeof(buf), SEED, 0);

	ASSERT_OK(shmpipe_writer_create(&w, name, &o));
	ASSERT_OK(shmpipe_stat(name, &s));
	ASSERT_EQ(s.capacity, 5000);
	ASSERT_EQ(s.write_index, 0);
	ASSERT_EQ(s.read_index, 0);
	ASSERT_EQ(s.produced, 0);
	ASSERT_EQ(s.consumed, 0);
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(shmpipe_write(w, buf, sizeof(buf)), sizeof(buf));
	ASSERT_OK(shmpipe_stat(name, &s));
	ASSERT_EQ(s.write_index, 3000);
	ASSERT_EQ(s.read_index, 0);
	ASSERT_EQ(s.produced, 3);
	ASSERT_EQ(s.consumed, 0);

	/* The stats took no end: the reader end is still free. */
	ASSERT_OK(shmpipe_reader_open(&r, name));
	ASSERT_EQ(shmpipe_read(r, buf, 1000), 1000);
	ASSERT_OK(shmpipe_stat(name, &s));
	ASSERT_EQ(s.write_index, 3000);
	ASSERT_EQ(s.read_index, 1000);
	ASSERT_EQ(s.produced, 3);
	ASSERT_EQ(s.consumed, 1);
	ws = test_wstats(w);
	ASSERT_STATS_EQ(&s, &ws);

	/* An observer in another process sees the same. */
	pid = xp_fork();
	if (pid == 0) {
		shmpipe_stats cs;
		ASSERT_OK(shmpipe_stat(name, &cs));
		ASSERT_EQ(cs.capacity, 5000);
		ASSERT_EQ(cs.write_index, 3000);
		ASSERT_EQ(cs.read_index, 1000);
		ASSERT_EQ(cs.produced, 3);
		ASSERT_EQ(cs.consumed, 1);
		_exit(T_PASS);
	}
	XP_ASSERT_EXIT(xp_wait(pid, 10000), T_PASS);
	ASSERT_OK(shmpipe_unlink(name));
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));

	/* Record mode: indices count the framing, produced counts records. */
	o = opts_cap(4096, SHMPIPE_RECORDS);
	ASSERT_OK(shmpipe_reader_create(&r, rec, &o));
	ASSERT_OK(shmpipe_stat(rec, &s));
	ASSERT_EQ(s.capacity, 4096);
	ASSERT_EQ(s.write_index, 0);
	/* Observed before the writer came: the writer end is still free too. */
	ASSERT_OK(shmpipe_writer_open(&w, rec));
	ASSERT_ERR(shmpipe_writer_open(&w2, rec), -EBUSY);
	ASSERT_EQ(shmpipe_write(w, buf, 5), 5);
	ASSERT_EQ(shmpipe_write(w, buf, 17), 17);
	ASSERT_OK(shmpipe_stat(rec, &s));
	ASSERT_EQ(s.write_index, SHMPIPE_RECORD_SPACE(5) + SHMPIPE_RECORD_SPACE(17));
	ASSERT_EQ(s.produced, 2);
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 5);
	ASSERT_OK(shmpipe_stat(rec, &s));
	ASSERT_EQ(s.read_index, SHMPIPE_RECORD_SPACE(5));
	ASSERT_EQ(s.consumed, 1);
	ASSERT_OK(shmpipe_unlink(rec));
	ASSERT_ERR(shmpipe_stat(rec, &s), -ENOENT);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
	printf("shmpipe_stat: ok\n");
}

/* ---- either side first; a writer with no reader yet ------------------------- */

static void test_reader_first(void)
{
	char name[XP_NAME_MAX];
	shmpipe_options o = opts_cap(4099, 0);
	shmpipe_reader *r;
	shmpipe_writer *w;
	char buf[16];
	int64_t t0, ms;
	pid_t pid;

	xp_name(name, sizeof(name), 15);
	ASSERT_OK(shmpipe_reader_create(&r, name, &o));
	/* No writer yet: that is waiting, not an error. */
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), -EAGAIN);
	ASSERT_OK(shmpipe_reader_set_timeout(r, 150));
	t0 = test_now_ns();
	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), -ETIMEDOUT);
	ms = (test_now_ns() - t0) / 1000000;
	ASSERT_GE(ms, 140);
	ASSERT_OK(shmpipe_reader_set_timeout(r, -1));

	pid = xp_fork();
	if (pid == 0) {
		shmpipe_writer *cw;
		test_sleep_ms(50); /* the parent is asleep in read by now */
		ASSERT_OK(shmpipe_writer_open(&cw, name));
		xp_write_stream(cw, 1 << 20, SEED);
		ASSERT_OK(shmpipe_writer_close(cw));
		_exit(T_PASS);
	}
	xp_read_stream(r, 1 << 20, SEED);
	XP_ASSERT_EXIT(xp_wait(pid, 20000), T_PASS);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_unlink(name));

	/* A reader that came and went before the writer: -EPIPE, at once. */
	ASSERT_OK(shmpipe_reader_create(&r, name, &o));
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_writer_open(&w, name));
	ASSERT_ERR(shmpipe_write(w, "x", 1), -EPIPE);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_unlink(name));
	printf("reader first: ok\n");
}

static void test_writer_first(void)
{
	char name[XP_NAME_MAX];
	shmpipe_options o = opts_cap(4099, 0);
	shmpipe_writer *w;
	pid_t pid;

	xp_name(name, sizeof(name), 16);
	ASSERT_OK(shmpipe_writer_create(&w, name, &o));
	pid = xp_fork();
	if (pid == 0) {
		shmpipe_reader *cr;
		ASSERT_OK(shmpipe_reader_open(&cr, name));
		xp_read_stream(cr, 1 << 20, SEED + 1);
		ASSERT_OK(shmpipe_reader_close(cr));
		_exit(T_PASS);
	}
	/* Writes before the reader attaches, and waits for it on a full ring. */
	xp_write_stream(w, 1 << 20, SEED + 1);
	ASSERT_OK(shmpipe_writer_close(w));
	XP_ASSERT_EXIT(xp_wait(pid, 20000), T_PASS);
	ASSERT_OK(shmpipe_unlink(name));
	printf("writer first: ok\n");
}

/*
 * The writer fills the ring with no reader: timeout 0 gives the partial
 * count then -EAGAIN, a timeout -ETIMEDOUT (not -EPIPE: nobody closed). It
 * then closes; a reader that comes afterwards, in another program, still
 * gets every byte and then end of stream.
 */
static void test_prefill(void)
{
	char name[XP_NAME_MAX], total[32], seed[32];
	shmpipe_options o = opts_cap(10000, 0);
	shmpipe_writer *w;
	shmpipe_stats s;
	uint8_t buf[3000];
	const char *args[5];
	uint64_t off = 0;
	pid_t pid;

	xp_name(name, sizeof(name), 17);
	ASSERT_OK(shmpipe_writer_create(&w, name, &o));
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	for (int i = 0; i < 3; i++) {
		test_pattern_fill(buf, sizeof(buf), SEED + 2, off);
		ASSERT_EQ(shmpipe_write(w, buf, sizeof(buf)), 3000);
		off += 3000;
	}
	test_pattern_fill(buf, sizeof(buf), SEED + 2, off);
	ASSERT_EQ(shmpipe_write(w, buf, sizeof(buf)), 1000);
	off += 1000;
	test_pattern_fill(buf, sizeof(buf), SEED + 2, off);
	ASSERT_ERR(shmpipe_write(w, buf, sizeof(buf)), -EAGAIN);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 100));
	ASSERT_ERR(shmpipe_write(w, buf, sizeof(buf)), -ETIMEDOUT);
	ASSERT_OK(shmpipe_stat(name, &s));
	ASSERT_EQ(s.write_index, 10000);
	ASSERT_EQ(s.read_index, 0);
	ASSERT_EQ(s.produced, 4);
	ASSERT_OK(shmpipe_writer_close(w));

	snprintf(total, sizeof(total), "%" PRIu64, off);
	snprintf(seed, sizeof(seed), "%d", SEED + 2);
	args[0] = "read";
	args[1] = name;
	args[2] = total;
	args[3] = seed;
	args[4] = NULL;
	pid = xp_spawn_peer(args);
	XP_ASSERT_EXIT(xp_wait(pid, 20000), T_PASS);
	ASSERT_OK(shmpipe_stat(name, &s));
	ASSERT_EQ(s.read_index, 10000);
	ASSERT_OK(shmpipe_unlink(name));
	printf("a full ring before the reader, read by a later program: ok\n");
}

/*
 * Live but slow peers: each side waits several liveness periods (~100 ms)
 * for the other, which is alive; neither may take it for dead.
 */
static void test_slow_peer_not_dead(void)
{
	char name[XP_NAME_MAX];
	shmpipe_options o = opts_cap(4096, 0);
	shmpipe_writer *w;
	uint8_t buf[3 * 4096];
	int64_t t0, ms;
	pid_t pid;

	xp_name(name, sizeof(name), 18);
	ASSERT_OK(shmpipe_writer_create(&w, name, &o));
	pid = xp_fork();
	if (pid == 0) {
		shmpipe_reader *cr;
		uint8_t cbuf[3 * 4096 + 1];
		ASSERT_OK(shmpipe_reader_open(&cr, name));
		test_sleep_ms(500); /* the writer waits on a full ring */
		test_read_exact(cr, cbuf, 3 * 4096);
		ASSERT_PATTERN(cbuf, 3 * 4096, SEED + 3, 0);
		/* Now we wait on an empty ring while the writer dawdles. */
		test_read_exact(cr, cbuf, 10);
		ASSERT_PATTERN(cbuf, 10, SEED + 3, 3 * 4096);
		ASSERT_ERR(shmpipe_read(cr, cbuf, sizeof(cbuf)), 0);
		ASSERT_OK(shmpipe_reader_close(cr));
		_exit(T_PASS);
	}
	test_pattern_fill(buf, sizeof(buf), SEED + 3, 0);
	t0 = test_now_ns();
	ASSERT_EQ(shmpipe_write(w, buf, sizeof(buf)), sizeof(buf));
	ms = (test_now_ns() - t0) / 1000000;
	ASSERT_GE(ms, 300);
	test_sleep_ms(500);
	test_pattern_fill(buf, 10, SEED + 3, 3 * 4096);
	ASSERT_EQ(shmpipe_write(w, buf, 10), 10);
	ASSERT_OK(shmpipe_writer_close(w));
	XP_ASSERT_EXIT(xp_wait(pid, 20000), T_PASS);
	ASSERT_OK(shmpipe_unlink(name));
	printf("slow live peers are not taken for dead: ok\n");
}

/*
 * An opener learns what the pipe is from the pipe (shmpipe_*_options), not
 * from what it assumed: capacity, record mode, and the mode bits while it
 * has a name; and a pair, which has none, says 0.
 */
static void test_options(void)
{
	char name[XP_NAME_MAX];
	shmpipe_options o = opts_cap(10007, SHMPIPE_RECORDS), got;
	shmpipe_writer *w;
	shmpipe_reader *r;

	o.mode = 0640;
	xp_name(name, sizeof(name), 40);
	ASSERT_OK(shmpipe_writer_create(&w, name, &o));
	ASSERT_OK(shmpipe_reader_open(&r, name));
	memset(&got, 0xa5, sizeof(got));
	ASSERT_OK(shmpipe_reader_options(r, &got));
	ASSERT_EQ(got.capacity, 10007);
	ASSERT_EQ(got.flags, SHMPIPE_RECORDS);
	ASSERT_EQ(got.mode, 0640);
	ASSERT_OK(shmpipe_writer_options(w, &got));
	ASSERT_EQ(got.capacity, 10007);
	ASSERT_EQ(got.flags, SHMPIPE_RECORDS);
	ASSERT_EQ(got.mode, 0640);
	ASSERT_OK(shmpipe_unlink(name));
	ASSERT_OK(shmpipe_reader_options(r, &got));
	ASSERT_EQ(got.mode, 0); /* no name left to guard */
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));

	o = opts_cap(4096, 0);
	ASSERT_OK(shmpipe_pair(&w, &r, &o));
	ASSERT_OK(shmpipe_writer_options(w, &got));
	ASSERT_EQ(got.capacity, 4096);
	ASSERT_EQ(got.flags, 0);
	ASSERT_EQ(got.mode, 0);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
	printf("options: an opened end reports the pipe's capacity, flags and mode\n");
}

static int body(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	test_watchdog(50);
	test_bad_names();
	test_exist_noent();
	test_busy_same_process();
	test_busy_other_process();
	test_roundtrip_fork();
	test_roundtrip_exec();
	test_permissions();
	test_unlink_attached();
	test_stat();
	test_reader_first();
	test_writer_first();
	test_prefill();
	test_slow_peer_not_dead();
	test_options();
	return T_PASS;
}

int main(int argc, char **argv)
{
	return xp_main("named", body, argc, argv);
}
