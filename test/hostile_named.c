/* SPDX-License-Identifier: MIT */
/*
 * Description: a named pipe's shared object is untrusted. Objects with a
 * corrupt header (made here with shm_open from a real pipe's header, then
 * altered) are refused: random bytes over the whole header page (hundreds of
 * seeds) and plausible but wrong values (magic, version, header_size,
 * capacity 0 or beyond data_size, data_size not matching the object, flags,
 * an object truncated or grown) give -EPROTO from open and from
 * shmpipe_stat. Inconsistent positions (write_index behind read_index or
 * more than capacity ahead) and record lengths beyond what was published
 * give -EPROTO from open or from read/peek/write, never an out-of-bounds
 * access (ASan watches) and never a hang. Random positions, states, events
 * and ring contents, and random junk written over the header of attached
 * ends, give only documented results. Finally a hostile peer process
 * corrupts the positions of a live pipe while we sleep on it: -EPROTO at
 * once when it wakes us, within the liveness period when it does not. The
 * header offsets come from src/layout.h: this tests the shared ABI.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <sys/syscall.h>

#include "xproc.h"
#include "internal.h"

#define SEED 0xbad

static size_t page;
static uint8_t tmpl[65536];	/* a valid header page, both ends absent */
static uint8_t tmpl_rec[65536]; /* the same in record mode */
static uint64_t tmpl_data_size; /* data_size of both templates */
#define CAP 5000

static int name_k;

static void put64(uint8_t *hdr, size_t off, uint64_t v)
{
	memcpy(hdr + off, &v, 8);
}

static void put32(uint8_t *hdr, size_t off, uint32_t v)
{
	memcpy(hdr + off, &v, 4);
}

static uint64_t get64(const uint8_t *hdr, size_t off)
{
	uint64_t v;

	memcpy(&v, hdr + off, 8);
	return v;
}

static uint32_t get32(const uint8_t *hdr, size_t off)
{
	uint32_t v;

	memcpy(&v, hdr + off, 4);
	return v;
}

/* Fields of a header held in a byte buffer (not aligned as the struct is). */
#define GET64(hdr, field)    get64((hdr), offsetof(struct shmpipe__hdr, field))
#define GET32(hdr, field)    get32((hdr), offsetof(struct shmpipe__hdr, field))
#define SET64(hdr, field, v) put64((hdr), offsetof(struct shmpipe__hdr, field), (v))
#define SET32(hdr, field, v) put32((hdr), offsetof(struct shmpipe__hdr, field), (v))

/* Copies the header page of a real pipe made with these options. */
static void make_template(uint8_t *out, unsigned flags)
{
	char name[XP_NAME_MAX];
	shmpipe_options o = test_opts(CAP);
	shmpipe_reader *r;
	int fd;

	o.flags = flags;
	xp_name(name, sizeof(name), ++name_k);
	ASSERT_OK(shmpipe_reader_create(&r, name, &o));
	fd = shm_open(name, O_RDONLY, 0);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(pread(fd, out, page, 0), (ssize_t)page);
	close(fd);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_unlink(name));
	ASSERT_EQ(GET64(out, magic), SHMPIPE__MAGIC);
	ASSERT_EQ(GET32(out, header_size), page);
	ASSERT_EQ(GET64(out, capacity), CAP);
	tmpl_data_size = GET64(out, data_size);
	/*
	 * As if nobody had attached yet, and made without a creating end: no
	 * rendezvous to meet at (the ends then open without doorbells).
	 */
	memset(out + offsetof(struct shmpipe__hdr, token), 0, SHMPIPE__TOKEN_LEN);
	SET32(out, reader_state, SHMPIPE__END_ABSENT);
	SET32(out, writer_state, SHMPIPE__END_ABSENT);
	SET32(out, reader_pid, 0);
	SET32(out, writer_pid, 0);
}

/*
 * A shared object made by hand: the header page `hdr`, then `data` (or
 * zeros) for the data region, the whole `size` bytes long.
 */
static void make_object(char *name, size_t n, const uint8_t *hdr, const uint8_t *data,
			size_t data_len, uint64_t size)
{
	int fd;

	xp_name(name, n, ++name_k);
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(ftruncate(fd, (off_t)size), 0);
	if (size > 0)
		ASSERT_EQ(pwrite(fd, hdr, size < page ? (size_t)size : page, 0),
			  (ssize_t)(size < page ? size : page));
	if (data != NULL && size > page)
		ASSERT_EQ(pwrite(fd, data, data_len, (off_t)page), (ssize_t)data_len);
	close(fd);
}

static uint64_t full_size(void)
{
	return page + tmpl_data_size;
}

/* Both ends and the observer refuse the object: -EPROTO. */
static void expect_refused(const uint8_t *hdr, uint64_t size, const char *what)
{
	char name[XP_NAME_MAX];
	shmpipe_writer *w = NULL;
	shmpipe_reader *r = NULL;
	shmpipe_stats s;
	int ret;

	make_object(name, sizeof(name), hdr, NULL, 0, size);
	ret = shmpipe_reader_open(&r, name);
	if (ret != -EPROTO)
		TEST_FAIL("%s: shmpipe_reader_open = %d (%s), want -EPROTO", what, ret,
			  shmpipe_strerror(ret));
	ret = shmpipe_writer_open(&w, name);
	if (ret != -EPROTO)
		TEST_FAIL("%s: shmpipe_writer_open = %d (%s), want -EPROTO", what, ret,
			  shmpipe_strerror(ret));
	ret = shmpipe_stat(name, &s);
	if (ret != -EPROTO)
		TEST_FAIL("%s: shmpipe_stat = %d (%s), want -EPROTO", what, ret,
			  shmpipe_strerror(ret));
	ASSERT_PTR_EQ(w, NULL);
	ASSERT_PTR_EQ(r, NULL);
	ASSERT_OK(shmpipe_unlink(name));
}

/*
 * A result of a non-blocking call on a hostile pipe that the contract
 * allows. -EBADF: our own state word says the end was closed, as another
 * holder of a forked copy would say it, and the peer may write it.
 */
static int allowed(ssize_t ret)
{
	return ret >= 0 || ret == -EAGAIN || ret == -EPROTO || ret == -EBADMSG || ret == -EPIPE ||
	       ret == -ECONNRESET || ret == -EMSGSIZE || ret == -EBADF;
}

#define ASSERT_ALLOWED(expr)                                                                       \
	do {                                                                                       \
		ssize_t a_ = (expr);                                                               \
		if (!allowed(a_))                                                                  \
			TEST_FAIL("%s = %zd (%s): not a result the contract allows", #expr, a_,    \
				  shmpipe_strerror((int)a_));                                      \
	} while (0)

/* A snapshot must be consistent, or refused. */
static void check_stat_result(int ret, const shmpipe_stats *s, const char *what)
{
	if (ret == -EPROTO)
		return;
	if (ret != 0)
		TEST_FAIL("%s: stats = %d (%s), want 0 or -EPROTO", what, ret,
			  shmpipe_strerror(ret));
	if (!(s->read_index <= s->write_index && s->write_index - s->read_index <= s->capacity))
		TEST_FAIL("%s: stats returned an inconsistent snapshot: read_index %" PRIu64
			  " write_index %" PRIu64 " capacity %" PRIu64,
			  what, s->read_index, s->write_index, s->capacity);
}

/* ---- the control: the template itself is fine ------------------------------ */

static void test_control(void)
{
	char name[XP_NAME_MAX];
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	char buf[16];

	make_object(name, sizeof(name), tmpl, NULL, 0, full_size());
	ASSERT_OK(shmpipe_stat(name, &s));
	ASSERT_EQ(s.capacity, CAP);
	ASSERT_OK(shmpipe_writer_open(&w, name));
	ASSERT_OK(shmpipe_reader_open(&r, name));
	ASSERT_EQ(shmpipe_write(w, "control", 7), 7);
	test_read_exact(r, buf, 7);
	ASSERT_MEM_EQ(buf, "control", 7);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), 0);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_unlink(name));
}

/* ---- plausible but wrong geometry ------------------------------------------ */

static void test_bad_geometry(void)
{
	uint8_t h[65536];
	uint64_t ds = tmpl_data_size;

#define CASE(what, stmt, size)                                                                     \
	do {                                                                                       \
		memcpy(h, tmpl, page);                                                             \
		stmt;                                                                              \
		expect_refused(h, (size), what);                                                   \
	} while (0)

	CASE("magic off by one bit", SET64(h, magic, SHMPIPE__MAGIC ^ 1), full_size());
	CASE("magic byte-swapped", SET64(h, magic, __builtin_bswap64(SHMPIPE__MAGIC)), full_size());
	CASE("magic not written yet", SET64(h, magic, 0), full_size());
	CASE("version 0", SET32(h, version, 0), full_size());
	CASE("version + 1", SET32(h, version, SHMPIPE__LAYOUT_VERSION + 1), full_size());
	CASE("version ~0", SET32(h, version, 0xffffffffu), full_size());
	CASE("header_size 0", SET32(h, header_size, 0), full_size());
	CASE("header_size 128", SET32(h, header_size, 128), full_size());
	CASE("header_size page + 1", SET32(h, header_size, (uint32_t)page + 1), full_size());
	CASE("header_size 2 pages", SET32(h, header_size, 2 * (uint32_t)page), full_size());
	CASE("header_size 2 pages, object grown to match",
	     SET32(h, header_size, 2 * (uint32_t)page), full_size() + page);
	CASE("capacity 0", SET64(h, capacity, 0), full_size());
	CASE("capacity data_size + 1", SET64(h, capacity, ds + 1), full_size());
	CASE("capacity 2^63", SET64(h, capacity, (uint64_t)1 << 63), full_size());
	CASE("capacity ~0", SET64(h, capacity, UINT64_MAX), full_size());
	CASE("data_size a page more than the object", SET64(h, data_size, ds + page), full_size());
	CASE("data_size 0", SET64(h, data_size, 0), full_size());
	CASE("data_size not a page multiple", SET64(h, data_size, ds - 1), full_size());
	CASE("data_size 2^62", SET64(h, data_size, (uint64_t)1 << 62), full_size());
	CASE("data_size ~0", SET64(h, data_size, UINT64_MAX), full_size());
	CASE(
	    "data_size a page less, capacity fitting it",
	    {
		    SET64(h, data_size, ds - page);
		    SET64(h, capacity, ds - page);
	    },
	    full_size());
	CASE("data_size and object both a page more, capacity unchanged",
	     SET64(h, data_size, ds + page), full_size() + page);
	CASE("unknown flag 0x2", SET32(h, flags, 0x2), full_size());
	CASE("unknown flag 0x80000000", SET32(h, flags, 0x80000000u), full_size());
	CASE(
	    "records with capacity 8",
	    {
		    SET32(h, flags, SHMPIPE_RECORDS);
		    SET64(h, capacity, 8);
	    },
	    full_size());
	CASE("object a page short", (void)0, full_size() - page);
	CASE("object only the header", (void)0, page);
	CASE("object half a header", (void)0, page / 2);
	CASE("object 100 bytes", (void)0, 100);
	CASE("object empty", (void)0, 0);
	CASE("object a page too long", (void)0, full_size() + page);
	CASE("object a byte too long", (void)0, full_size() + 1);
#undef CASE
	printf("plausible but wrong geometry: -EPROTO from open and stat\n");
}

/* ---- inconsistent positions ------------------------------------------------- */

/*
 * Positions (w, r) in an otherwise valid header: the reader must refuse at
 * open or at the first read/peek; the writer at open or at the first write
 * or reserve; an observer gets -EPROTO or a consistent snapshot.
 */
static void expect_bad_positions(uint64_t w_idx, uint64_t r_idx, const char *what)
{
	char name[XP_NAME_MAX];
	uint8_t h[65536];
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	uint8_t buf[8192];
	const void *p;
	void *wp;
	int ret;

	memcpy(h, tmpl, page);
	SET64(h, write_index, w_idx);
	SET64(h, read_index, r_idx);
	make_object(name, sizeof(name), h, NULL, 0, full_size());

	ret = shmpipe_stat(name, &s);
	check_stat_result(ret, &s, what);

	ret = shmpipe_reader_open(&r, name);
	if (ret == 0) {
		ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
		ret = (int)shmpipe_read(r, buf, sizeof(buf));
		if (ret != -EPROTO)
			TEST_FAIL("%s: opened, then shmpipe_read = %d (%s), want -EPROTO", what,
				  ret, shmpipe_strerror(ret));
		ret = (int)shmpipe_peek(r, &p);
		if (ret != -EPROTO)
			TEST_FAIL("%s: shmpipe_peek = %d (%s), want -EPROTO", what, ret,
				  shmpipe_strerror(ret));
		ret = shmpipe_reader_stats(r, &s);
		check_stat_result(ret, &s, what);
		ASSERT_OK(shmpipe_reader_close(r));
	} else if (ret != -EPROTO) {
		TEST_FAIL("%s: shmpipe_reader_open = %d (%s), want -EPROTO (or 0)", what, ret,
			  shmpipe_strerror(ret));
	}
	ASSERT_OK(shmpipe_unlink(name));

	/* The writer, on a fresh copy (the reader above may have taken its end). */
	make_object(name, sizeof(name), h, NULL, 0, full_size());
	ret = shmpipe_writer_open(&w, name);
	if (ret == 0) {
		ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
		memset(buf, 0, sizeof(buf));
		ret = (int)shmpipe_write(w, buf, CAP);
		if (ret != -EPROTO && ret != -EBADMSG)
			TEST_FAIL("%s: opened, then shmpipe_write = %d (%s), want -EPROTO", what,
				  ret, shmpipe_strerror(ret));
		ret = (int)shmpipe_reserve(w, &wp, CAP);
		if (ret != -EPROTO && ret != -EBADMSG)
			TEST_FAIL("%s: shmpipe_reserve = %d (%s), want -EPROTO", what, ret,
				  shmpipe_strerror(ret));
		ASSERT_OK(shmpipe_writer_close(w));
	} else if (ret != -EPROTO) {
		TEST_FAIL("%s: shmpipe_writer_open = %d (%s), want -EPROTO (or 0)", what, ret,
			  shmpipe_strerror(ret));
	}
	ASSERT_OK(shmpipe_unlink(name));
}

static void test_bad_positions(void)
{
	expect_bad_positions(10, 20, "write_index behind read_index");
	expect_bad_positions(0, 1, "write_index 0, read_index 1");
	expect_bad_positions(CAP + 1, 0, "write_index capacity + 1 ahead");
	expect_bad_positions(1000 + CAP + 1, 1000, "write_index capacity + 1 ahead of 1000");
	expect_bad_positions(tmpl_data_size + 1, 0, "write_index a data region ahead");
	expect_bad_positions(UINT64_MAX, 0, "write_index ~0");
	expect_bad_positions((uint64_t)1 << 63, 0, "write_index 2^63");
	expect_bad_positions(UINT64_MAX - 10, UINT64_MAX - 5, "both near 2^64, write behind");
	expect_bad_positions(5, UINT64_MAX, "read_index ~0");
	printf("inconsistent positions: -EPROTO from open or from the first call\n");
}

/* ---- records longer than what was published -------------------------------- */

/*
 * A record pipe whose writer is gone (state OPEN, lock free) and whose
 * ring holds, from position r_idx, a frame claiming `len` bytes, with
 * write_index = r_idx + published. Returns what the first read (or peek)
 * returns, or the error of open, leaving a second read's result in *next.
 */
static ssize_t read_crafted_record(uint64_t r_idx, uint64_t len, uint64_t published, ssize_t *next,
				   int use_peek)
{
	char name[XP_NAME_MAX];
	uint8_t h[65536], *data;
	uint64_t ds = tmpl_data_size, at = r_idx % ds;
	shmpipe_reader *r;
	uint8_t buf[8192];
	ssize_t ret;

	data = calloc(1, ds);
	ASSERT_NOT_NULL(data);
	memcpy(h, tmpl_rec, page);
	SET64(h, read_index, r_idx);
	SET64(h, write_index, r_idx + published);
	SET32(h, writer_state, SHMPIPE__END_OPEN);
	/* The frame, then a payload of the pattern, wrapping as the ring does. */
	for (size_t i = 0; i < 8; i++)
		data[(at + i) % ds] = (uint8_t)(len >> (8 * i));
	for (uint64_t i = 8; i < published && i < ds; i++)
		data[(at + i) % ds] = test_pattern_byte(SEED, i - 8);
	make_object(name, sizeof(name), h, data, ds, full_size());
	free(data);

	ret = shmpipe_reader_open(&r, name);
	if (ret < 0) {
		/* Refused at open: that counts for both calls. */
		*next = ret;
		ASSERT_OK(shmpipe_unlink(name));
		return ret;
	}
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	if (use_peek) {
		const void *p;
		ret = shmpipe_peek(r, &p);
		if (ret > 0) {
			ASSERT_LE((size_t)ret, sizeof(buf));
			memcpy(buf, p, (size_t)ret); /* ASan: p..p+ret must be mapped */
			ASSERT_OK(shmpipe_consume(r, (size_t)ret));
		}
	} else {
		ret = shmpipe_read(r, buf, sizeof(buf));
	}
	if (ret > 0)
		ASSERT_PATTERN(buf, (size_t)ret, SEED, 0);
	/* Allowed to wait: the dead writer is seen by a waiting end. */
	ASSERT_OK(shmpipe_reader_set_timeout(r, 2000 * TEST_SLOW));
	*next = shmpipe_read(r, buf, sizeof(buf));
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_unlink(name));
	return ret;
}

/*
 * The first call must return want and the next want_next; or, where
 * refusing at open is as good, the open may fail with want_next.
 */
static void expect_record(uint64_t r_idx, uint64_t len, uint64_t published, ssize_t want,
			  ssize_t want_next, int open_may_refuse, const char *what)
{
	for (int peek = 0; peek < 2; peek++) {
		ssize_t next, got = read_crafted_record(r_idx, len, published, &next, peek);
		if (got == want && next == want_next)
			continue;
		if (open_may_refuse && got == want_next && next == want_next)
			continue;
		TEST_FAIL("%s (%s): got %zd (%s) then %zd (%s), want %zd (%s) then %zd (%s)", what,
			  peek ? "peek" : "read", got, shmpipe_strerror((int)got), next,
			  shmpipe_strerror((int)next), want, shmpipe_strerror((int)want), want_next,
			  shmpipe_strerror((int)want_next));
	}
}

static void test_bad_records(void)
{
	uint64_t ds = tmpl_data_size, max = SHMPIPE_RECORD_MAX(CAP);

	/* Controls: whole records, including one that wraps around the ring. */
	expect_record(0, 16, 24, 16, -ECONNRESET, 0, "a whole record");
	expect_record(ds - 8, 16, 24, 16, -ECONNRESET, 0, "a whole record, payload wrapping");
	expect_record(ds * 3 - 16, 40, 48, 40, -ECONNRESET, 0,
		      "a whole record at the wrap, third lap");
	expect_record(0, max, SHMPIPE_RECORD_SPACE(max), (ssize_t)max, -ECONNRESET, 0,
		      "the largest record");
	/* A whole record, then a piece too small to be a frame (or refused at open). */
	expect_record(0, 8, 20, 8, -EPROTO, 1, "a record, then 4 stray bytes");

	expect_record(0, 17, 24, -EPROTO, -EPROTO, 1, "length 17, 24 bytes published");
	expect_record(ds - 8, 17, 24, -EPROTO, -EPROTO, 1, "length 17 at the wrap");
	expect_record(0, 0, 24, -EPROTO, -EPROTO, 1, "length 0");
	expect_record(0, max + 1, CAP, -EPROTO, -EPROTO, 1, "length beyond the largest record");
	expect_record(0, (uint64_t)1 << 40, CAP, -EPROTO, -EPROTO, 1, "length 2^40");
	expect_record(0, UINT64_MAX, CAP, -EPROTO, -EPROTO, 1, "length ~0");
	expect_record(0, UINT64_MAX - 6, CAP, -EPROTO, -EPROTO, 1,
		      "length ~0 - 6 (its space wraps to 8)");
	expect_record(0, 16, 4, -EPROTO, -EPROTO, 1, "4 bytes published: not even a frame");
	printf("record lengths beyond what was published: -EPROTO, nothing read out of bounds\n");
}

/* ---- random headers ------------------------------------------------------------ */

static void random_fill(uint8_t *p, size_t n, uint64_t *rng)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = test_rand(rng);
		memcpy(p + i, &v, n - i < 8 ? n - i : 8);
	}
}

/* Exercises an attached reader without sleeping; any documented result. */
static void poke_reader(shmpipe_reader *r, uint64_t *rng)
{
	static uint8_t buf[65536];
	shmpipe_stats s;

	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	for (int i = 0; i < 4; i++) {
		const void *p;
		ssize_t n = shmpipe_peek(r, &p);
		ASSERT_ALLOWED(n);
		if (n > 0) {
			/* Every byte peek shows must be readable (ASan). */
			size_t k = (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf);
			memcpy(buf, p, k);
			memcpy(buf, (const uint8_t *)p + (size_t)n - k, k);
			ASSERT_ALLOWED(shmpipe_consume(r, (size_t)n));
		}
		n = shmpipe_read(r, buf, (size_t)test_rand_range(rng, 1, sizeof(buf)));
		ASSERT_ALLOWED(n);
	}
	check_stat_result(shmpipe_reader_stats(r, &s), &s, "reader_stats");
}

static void poke_writer(shmpipe_writer *w, uint64_t *rng)
{
	static uint8_t buf[65536];
	shmpipe_stats s;

	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	for (int i = 0; i < 4; i++) {
		void *p;
		ssize_t n = shmpipe_reserve(w, &p, 1);
		ASSERT_ALLOWED(n);
		if (n > 0) {
			size_t k = (size_t)test_rand_range(rng, 1, (uint64_t)n);
			memset(p, 0xa5, k); /* ASan: the span must be ours */
			ASSERT_ALLOWED(shmpipe_commit(w, k));
		}
		n = shmpipe_write(w, buf, (size_t)test_rand_range(rng, 1, CAP));
		ASSERT_ALLOWED(n);
	}
	check_stat_result(shmpipe_writer_stats(w, &s), &s, "writer_stats");
}

static void test_random_headers(int seeds)
{
	uint8_t h[65536];
	uint8_t *data = malloc(tmpl_data_size);
	int opened_r = 0, opened_w = 0;
	char name[XP_NAME_MAX], what[64];

	ASSERT_NOT_NULL(data);
	for (int i = 0; i < seeds; i++) {
		uint64_t rng = 0x1234567ull + (uint64_t)i * 7919;

		/* Level 0: all random. Level 1: a right magic and version. */
		random_fill(h, page, &rng);
		if (GET64(h, magic) == SHMPIPE__MAGIC)
			SET64(h, magic, 0x1);
		snprintf(what, sizeof(what), "random header, seed %d", i);
		expect_refused(h, full_size(), what);
		SET64(h, magic, SHMPIPE__MAGIC);
		SET32(h, version, SHMPIPE__LAYOUT_VERSION);
		snprintf(what, sizeof(what), "random header with magic and version, seed %d", i);
		expect_refused(h, full_size(), what);

		/*
		 * Level 2: the geometry right, the rest random: positions
		 * (half the time consistent), counters, states, events, pids,
		 * reserved space, and the ring's bytes.
		 */
		memcpy(h, (i & 1) ? tmpl_rec : tmpl, page);
		{
			uint8_t save[sizeof(struct shmpipe__hdr)];
			size_t geo_end = offsetof(struct shmpipe__hdr, write_index);
			memcpy(save, h, geo_end);
			random_fill(h + geo_end, page - geo_end, &rng);
			memcpy(h, save, geo_end);
		}
		if (i & 2) {
			uint64_t r_idx = test_rand(&rng) >> (test_rand(&rng) % 64);
			uint64_t w_idx = r_idx + test_rand_range(&rng, 0, CAP);
			if (w_idx < r_idx)
				w_idx = r_idx;
			SET64(h, read_index, r_idx);
			SET64(h, write_index, w_idx);
		}
		random_fill(data, tmpl_data_size, &rng);
		/* The end we open must be absent, or it is simply -EBUSY. */
		for (int end = 0; end < 2; end++) {
			uint32_t peer = (uint32_t)(test_rand(&rng) % 4);
			int ret;

			if (end == 0) {
				shmpipe_reader *r;
				SET32(h, reader_state, SHMPIPE__END_ABSENT);
				SET32(h, writer_state,
				      peer == 3 ? (uint32_t)test_rand(&rng) : peer);
				make_object(name, sizeof(name), h, data, tmpl_data_size,
					    full_size());
				ret = shmpipe_reader_open(&r, name);
				if (ret == 0) {
					opened_r++;
					poke_reader(r, &rng);
					ASSERT_OK(shmpipe_reader_close(r));
				} else if (ret != -EPROTO) {
					TEST_FAIL("level 2, seed %d: shmpipe_reader_open = %d (%s)",
						  i, ret, shmpipe_strerror(ret));
				}
			} else {
				shmpipe_writer *w;
				SET32(h, writer_state, SHMPIPE__END_ABSENT);
				SET32(h, reader_state,
				      peer == 3 ? (uint32_t)test_rand(&rng) : peer);
				make_object(name, sizeof(name), h, data, tmpl_data_size,
					    full_size());
				ret = shmpipe_writer_open(&w, name);
				if (ret == 0) {
					opened_w++;
					poke_writer(w, &rng);
					ASSERT_OK(shmpipe_writer_close(w));
				} else if (ret != -EPROTO) {
					TEST_FAIL("level 2, seed %d: shmpipe_writer_open = %d (%s)",
						  i, ret, shmpipe_strerror(ret));
				}
			}
			{
				shmpipe_stats s;
				check_stat_result(shmpipe_stat(name, &s), &s, "shmpipe_stat");
			}
			ASSERT_OK(shmpipe_unlink(name));
		}
	}
	free(data);
	printf("random headers, %d seeds: refused at levels 0 and 1; at level 2 "
	       "%d readers and %d writers attached and got only documented results\n",
	       seeds, opened_r, opened_w);
	/* The consistent half must have opened, or level 2 tested nothing. */
	ASSERT_GT(opened_r, 0);
	ASSERT_GT(opened_w, 0);
}

/* Junk over the whole header of a pipe whose ends are attached. */
static void test_junk_under_attached_ends(int seeds)
{
	for (int i = 0; i < seeds; i++) {
		char name[XP_NAME_MAX];
		shmpipe_options o = test_opts(CAP);
		shmpipe_writer *w;
		shmpipe_reader *r;
		uint64_t rng = 0xabcdefull + (uint64_t)i;
		uint8_t junk[65536], buf[100];
		int fd;

		o.flags = (i & 1) ? SHMPIPE_RECORDS : 0;
		xp_name(name, sizeof(name), ++name_k);
		ASSERT_OK(shmpipe_writer_create(&w, name, &o));
		ASSERT_OK(shmpipe_reader_open(&r, name));
		test_pattern_fill(buf, sizeof(buf), SEED, 0);
		ASSERT_EQ(shmpipe_write(w, buf, sizeof(buf)), sizeof(buf));
		fd = shm_open(name, O_RDWR, 0);
		ASSERT_GE(fd, 0);
		random_fill(junk, page, &rng);
		if (i & 2) {
			/* Sometimes only the positions and what follows. */
			size_t from = offsetof(struct shmpipe__hdr, write_index);
			ASSERT_EQ(pwrite(fd, junk + from, page - from, (off_t)from),
				  (ssize_t)(page - from));
		} else {
			ASSERT_EQ(pwrite(fd, junk, page, 0), (ssize_t)page);
		}
		close(fd);
		poke_reader(r, &rng);
		poke_writer(w, &rng);
		poke_reader(r, &rng);
		ASSERT_OK(shmpipe_writer_close(w));
		ASSERT_OK(shmpipe_reader_close(r));
		ASSERT_OK(shmpipe_unlink(name));
	}
	printf("junk over the header of attached ends, %d seeds: only documented results\n", seeds);
}

/* ---- a hostile peer process ------------------------------------------------------ */

static struct shmpipe__hdr *map_header(const char *name)
{
	int fd = shm_open(name, O_RDWR, 0);
	void *p;

	ASSERT_GE(fd, 0);
	p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		TEST_FAIL("mmap: %s", strerror(errno));
	return p;
}

/* Signals an event count as a (hostile) peer would after publishing. */
/*
 * Wakes the peer as a hostile end could: takes the waiter bit and rings the
 * peer's doorbell (which end e holds), whatever the positions say.
 */
static void wake_event(struct shmpipe__end *e, shmpipe__u32 *ev)
{
	uint32_t v = atomic_load(ev);

	atomic_store(ev, ((v >> 1) + 1) << 1);
	shmpipe__ring(e);
}

/*
 * A live writer in another process sets write_index far ahead while we
 * sleep on an empty ring: with a wake-up (how 1) or without (how 0: as with
 * a pipe whose writer writes nothing, we sleep until our timeout, and see it
 * then or in the next call); or before we read (how 2).
 */
static void test_hostile_writer(int how)
{
	static const char *how_name[] = {"without a wake-up", "and wakes us", "before we read"};
	char name[XP_NAME_MAX];
	struct xp_chan up, down;
	shmpipe_reader *r;
	uint8_t buf[4096];
	int64_t t0, ms;
	ssize_t ret;
	pid_t pid;

	xp_name(name, sizeof(name), ++name_k);
	xp_chan_open(&up);
	xp_chan_open(&down);
	ASSERT_OK(shmpipe_reader_create(&r, name, NULL));
	pid = xp_fork();
	if (pid == 0) {
		shmpipe_writer *w;
		struct shmpipe__hdr *h;
		uint8_t cbuf[100];

		ASSERT_OK(shmpipe_writer_open(&w, name));
		h = map_header(name);
		test_pattern_fill(cbuf, sizeof(cbuf), SEED, 0);
		ASSERT_EQ(shmpipe_write(w, cbuf, sizeof(cbuf)), sizeof(cbuf));
		xp_send(&up, 'r');
		xp_recv(&down, 10000);
		if (how != 2)
			test_sleep_ms(50); /* the reader sleeps by now */
		atomic_store(&h->write_index, (uint64_t)1 << 40);
		if (how == 1)
			wake_event(&((struct shmpipe_writer *)w)->e, &h->data_event);
		xp_send(&up, 'd');
		for (;;)
			pause(); /* alive: not a dead writer */
	}
	ASSERT_EQ(xp_recv(&up, 10000), 'r');
	test_read_exact(r, buf, 100);
	ASSERT_PATTERN(buf, 100, SEED, 0);
	xp_send(&down, 'g');
	if (how == 2)
		ASSERT_EQ(xp_recv(&up, 10000), 'd');
	/* A bound instead of a hang. */
	ASSERT_OK(shmpipe_reader_set_timeout(r, how == 0 ? 300 : 5000 * TEST_SLOW));
	t0 = test_now_ns();
	ret = shmpipe_read(r, buf, sizeof(buf));
	ms = (test_now_ns() - t0) / 1000000;
	if (how == 0) {
		/* Seen when the timeout ends and we look once more, or not. */
		if (ret != -ETIMEDOUT && ret != -EPROTO)
			TEST_FAIL("shmpipe_read = %zd (%s), want -ETIMEDOUT or -EPROTO", ret,
				  shmpipe_strerror((int)ret));
	} else {
		ASSERT_ERR(ret, -EPROTO);
		ASSERT_LT(ms, 1000 * TEST_SLOW);
	}
	/* The index is set by now, however late the writer came to it. */
	if (how != 2)
		ASSERT_EQ(xp_recv(&up, 10000), 'd');
	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), -EPROTO);
	ASSERT_EQ(kill(pid, SIGKILL), 0);
	XP_ASSERT_KILLED(xp_wait(pid, 10000), SIGKILL);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_unlink(name));
	xp_chan_close(&up);
	xp_chan_close(&down);
	printf("a live writer process sets write_index far ahead %s: -EPROTO after %" PRId64
	       " ms\n",
	       how_name[how], ms);
}

/*
 * A live reader in another process moves read_index beyond what was
 * written (ahead = 1) or backwards (ahead = 0) while we sleep on a full
 * ring, and wakes us.
 */
static void test_hostile_reader(int ahead)
{
	char name[XP_NAME_MAX];
	shmpipe_options o = test_opts(4096);
	struct xp_chan up, down;
	shmpipe_writer *w;
	uint8_t buf[4096];
	ssize_t ret;
	pid_t pid;

	xp_name(name, sizeof(name), ++name_k);
	xp_chan_open(&up);
	xp_chan_open(&down);
	ASSERT_OK(shmpipe_writer_create(&w, name, &o));
	pid = xp_fork();
	if (pid == 0) {
		shmpipe_reader *r;
		struct shmpipe__hdr *h;
		uint8_t cbuf[100];

		ASSERT_OK(shmpipe_reader_open(&r, name));
		h = map_header(name);
		test_read_exact(r, cbuf, sizeof(cbuf));
		xp_send(&up, 'r');
		xp_recv(&down, 10000);
		test_sleep_ms(50);
		atomic_store(&h->read_index, ahead ? (uint64_t)100 + 4096 + 4096 : 10);
		wake_event(&((struct shmpipe_reader *)r)->e, &h->space_event);
		for (;;)
			pause();
	}
	memset(buf, 0, sizeof(buf));
	ASSERT_EQ(shmpipe_write(w, buf, 100), 100);
	ASSERT_EQ(xp_recv(&up, 10000), 'r');
	ASSERT_EQ(shmpipe_write(w, buf, 4096), 4096); /* full */
	ASSERT_OK(shmpipe_writer_set_timeout(w, 5000 * TEST_SLOW));
	xp_send(&down, 'g');
	ret = shmpipe_write(w, buf, 100);
	if (ret != -EPROTO && ret != -EBADMSG)
		TEST_FAIL("a hostile reader moved read_index %s: shmpipe_write = %zd (%s), "
			  "want -EPROTO",
			  ahead ? "beyond write_index" : "backwards", ret,
			  shmpipe_strerror((int)ret));
	ASSERT_EQ(kill(pid, SIGKILL), 0);
	XP_ASSERT_KILLED(xp_wait(pid, 10000), SIGKILL);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_unlink(name));
	xp_chan_close(&up);
	xp_chan_close(&down);
	printf("a live reader process moves read_index %s: -EPROTO\n",
	       ahead ? "beyond write_index" : "backwards");
}

/*
 * A live writer in another process closes its copy of our doorbell's write
 * side: the doorbell hangs up for good, though the writer lives (it holds
 * its lock). We must neither take that for its death nor spin: a timed read
 * on the empty ring waits its time in slices, using little CPU, and returns
 * -ETIMEDOUT; bytes the writer commits after are still read.
 */
static void test_writer_drops_doorbell(void)
{
	char name[XP_NAME_MAX];
	struct xp_chan up, down;
	shmpipe_reader *r;
	uint8_t buf[64];
	int64_t cpu0, t0, cpu_ms, ms;
	pid_t pid;

	xp_name(name, sizeof(name), ++name_k);
	xp_chan_open(&up);
	xp_chan_open(&down);
	ASSERT_OK(shmpipe_reader_create(&r, name, NULL));
	pid = xp_fork();
	if (pid == 0) {
		shmpipe_writer *w;
		struct shmpipe__end *e;
		uint8_t one = 7;

		/*
		 * Our copy, from fork, of the reader's own write side: held, it
		 * would keep the doorbell from hanging up at all.
		 */
		close(((struct shmpipe_reader *)r)->e.own_ring);
		ASSERT_OK(shmpipe_writer_open(&w, name));
		e = &((struct shmpipe_writer *)w)->e;
		ASSERT_EQ(shmpipe_write(w, &one, 1), 1);
		xp_send(&up, 'w');
		xp_recv(&down, 10000);
		/* The reader has met us: pick up its reply, then drop the doorbell. */
		for (int i = 0; i < 1000 && e->peer_bell < 0; i++) {
			shmpipe__meet(e);
			test_sleep_ms(1);
		}
		ASSERT_GE(e->peer_bell, 0);
		close(e->peer_bell);
		close(e->peer_guard);
		e->peer_bell = e->peer_guard = -1;
		xp_send(&up, 'c');
		xp_recv(&down, 10000);
		ASSERT_EQ(shmpipe_write(w, &one, 1), 1);
		for (;;)
			pause();
	}
	ASSERT_EQ(xp_recv(&up, 10000), 'w');
	test_read_exact(r, buf, 1);
	/* A call that finds nothing meets the writer (accepts its hello). */
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), -EAGAIN);
	xp_send(&down, 'g');
	ASSERT_EQ(xp_recv(&up, 10000), 'c');
	ASSERT_OK(shmpipe_reader_set_timeout(r, 300));
	cpu0 = test_thread_cpu_ns();
	t0 = test_now_ns();
	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), -ETIMEDOUT);
	cpu_ms = (test_thread_cpu_ns() - cpu0) / 1000000;
	ms = (test_now_ns() - t0) / 1000000;
	ASSERT_GE(ms, 250);
	ASSERT_LT(cpu_ms, 100 * TEST_SLOW);
	/* Still alive, and still read: its next byte comes in a slice. */
	xp_send(&down, 'g');
	ASSERT_OK(shmpipe_reader_set_timeout(r, 5000 * TEST_SLOW));
	test_read_exact(r, buf, 1);
	ASSERT_EQ(kill(pid, SIGKILL), 0);
	XP_ASSERT_KILLED(xp_wait(pid, 10000), SIGKILL);
	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), -ECONNRESET);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_unlink(name));
	xp_chan_close(&up);
	xp_chan_close(&down);
	printf("a live writer closes our doorbell: a 300 ms read waits %" PRId64 " ms on %" PRId64
	       " ms of CPU, -ETIMEDOUT; its next byte is read\n",
	       ms, cpu_ms);
}

static int body(int argc, char **argv)
{
	int seeds = (int)test_env_long("SHMPIPE_HOSTILE_SEEDS", 300);

	if (argc > 1)
		seeds = atoi(argv[1]);
	test_watchdog(50);
	page = (size_t)sysconf(_SC_PAGESIZE);
	ASSERT_LE(page, sizeof(tmpl));
	ASSERT_LE(sizeof(struct shmpipe__hdr), page);
	make_template(tmpl, 0);
	make_template(tmpl_rec, SHMPIPE_RECORDS);

	test_control();
	test_bad_geometry();
	test_bad_positions();
	test_bad_records();
	test_random_headers(seeds);
	test_junk_under_attached_ends(seeds / 3);
	test_hostile_writer(2);
	test_hostile_writer(1);
	test_hostile_writer(0);
	test_hostile_reader(1);
	test_hostile_reader(0);
	test_writer_drops_doorbell();
	return T_PASS;
}

int main(int argc, char **argv)
{
	return xp_main("hostile_named", body, argc, argv);
}
