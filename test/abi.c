/* SPDX-License-Identifier: MIT */
/*
 * Description: the public structures keep their layout, and their reserved
 * space works as shmpipe.h promises. The size and offset of every field
 * are pinned (on LP64 targets), so that a change to them cannot pass
 * unnoticed; an options structure with any reserved word set is refused
 * (-EINVAL) by every call that takes one, leaving no name behind; every
 * structure the library fills in comes back with its reserved words zero,
 * over a caller's buffer full of 0xa5; shmpipe_version() is the header's
 * SHMPIPE_VERSION_* macros.
 */
#include <stddef.h>

#include "xproc.h"

#if UINTPTR_MAX == 0xffffffffffffffffu
_Static_assert(sizeof(shmpipe_options) == 64, "shmpipe_options is 64 bytes");
_Static_assert(offsetof(shmpipe_options, capacity) == 0, "options.capacity");
_Static_assert(offsetof(shmpipe_options, flags) == 8, "options.flags");
_Static_assert(offsetof(shmpipe_options, mode) == 12, "options.mode");
_Static_assert(offsetof(shmpipe_options, readers) == 16, "options.readers");
_Static_assert(offsetof(shmpipe_options, reserved32) == 20, "options.reserved32");
_Static_assert(offsetof(shmpipe_options, reserved) == 24, "options.reserved");

_Static_assert(sizeof(shmpipe_stats) == 128, "shmpipe_stats is 128 bytes");
_Static_assert(offsetof(shmpipe_stats, capacity) == 0, "stats.capacity");
_Static_assert(offsetof(shmpipe_stats, write_index) == 8, "stats.write_index");
_Static_assert(offsetof(shmpipe_stats, read_index) == 16, "stats.read_index");
_Static_assert(offsetof(shmpipe_stats, produced) == 24, "stats.produced");
_Static_assert(offsetof(shmpipe_stats, consumed) == 32, "stats.consumed");
_Static_assert(offsetof(shmpipe_stats, producer_waits) == 40, "stats.producer_waits");
_Static_assert(offsetof(shmpipe_stats, consumer_waits) == 48, "stats.consumer_waits");
_Static_assert(offsetof(shmpipe_stats, reserved) == 56, "stats.reserved");

_Static_assert(sizeof(shmpipe_end_info) == 32, "shmpipe_end_info is 32 bytes");
_Static_assert(offsetof(shmpipe_end_info, state) == 0, "end_info.state");
_Static_assert(offsetof(shmpipe_end_info, pid) == 4, "end_info.pid");
_Static_assert(offsetof(shmpipe_end_info, alive) == 8, "end_info.alive");
_Static_assert(offsetof(shmpipe_end_info, asleep) == 12, "end_info.asleep");
_Static_assert(offsetof(shmpipe_end_info, reserved) == 16, "end_info.reserved");

_Static_assert(sizeof(shmpipe_info) == 256, "shmpipe_info is 256 bytes");
_Static_assert(offsetof(shmpipe_info, stats) == 0, "info.stats");
_Static_assert(offsetof(shmpipe_info, flags) == 128, "info.flags");
_Static_assert(offsetof(shmpipe_info, writer) == 132, "info.writer");
_Static_assert(offsetof(shmpipe_info, reader) == 164, "info.reader");
_Static_assert(offsetof(shmpipe_info, readers) == 196, "info.readers");
_Static_assert(offsetof(shmpipe_info, reserved) == 200, "info.reserved");

_Static_assert(sizeof(shmpipe_reader_info) == 96, "shmpipe_reader_info is 96 bytes");
_Static_assert(offsetof(shmpipe_reader_info, end) == 0, "reader_info.end");
_Static_assert(offsetof(shmpipe_reader_info, read_index) == 32, "reader_info.read_index");
_Static_assert(offsetof(shmpipe_reader_info, consumed) == 40, "reader_info.consumed");
_Static_assert(offsetof(shmpipe_reader_info, consumer_waits) == 48, "reader_info.consumer_waits");
_Static_assert(offsetof(shmpipe_reader_info, reserved) == 56, "reader_info.reserved");

/* The handle prefix that the inline calls of shmpipe.h compile in. */
_Static_assert(sizeof(struct shmpipe__fast) == 72, "shmpipe__fast is 72 bytes");
_Static_assert(offsetof(struct shmpipe__fast, avail) == 0, "fast.avail, the gate");
_Static_assert(offsetof(struct shmpipe__fast, data) == 8, "fast.data");
_Static_assert(offsetof(struct shmpipe__fast, off) == 16, "fast.off");
_Static_assert(offsetof(struct shmpipe__fast, capacity) == 24, "fast.capacity");
_Static_assert(offsetof(struct shmpipe__fast, pos) == 32, "fast.pos");
_Static_assert(offsetof(struct shmpipe__fast, data_size) == 40, "fast.data_size");
_Static_assert(offsetof(struct shmpipe__fast, peer) == 48, "fast.peer");
_Static_assert(offsetof(struct shmpipe__fast, shared) == 56, "fast.shared");
_Static_assert(offsetof(struct shmpipe__fast, limit) == 64, "fast.limit");
_Static_assert(SHMPIPE__FAST_WRITE_INDEX == 128 && SHMPIPE__FAST_PRODUCED == 136 &&
		   SHMPIPE__FAST_READ_INDEX == 256 && SHMPIPE__FAST_CONSUMED == 264 &&
		   SHMPIPE__FAST_WRITER_STATE == 384 && SHMPIPE__FAST_READER_STATE == 388 &&
		   SHMPIPE__FAST_DATA_EVENT == 512 && SHMPIPE__FAST_SPACE_EVENT == 640,
	       "the shared words the inline calls use (layout version 2)");
#endif

#define NRES(s) (sizeof(s.reserved) / sizeof(s.reserved[0]))

static void assert_zero(const void *p, size_t n, const char *what)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			TEST_FAIL("%s: reserved byte %zu is 0x%02x, not 0", what, i, b[i]);
}

/* Every call that takes options refuses each reserved word set. */
static void reserved_options_refused(void)
{
	char name[XP_NAME_MAX];
	shmpipe_writer *w = NULL;
	shmpipe_reader *r = NULL;
	shmpipe_options o;

	xp_name(name, sizeof(name), 0);
	for (size_t i = 0; i < NRES(o); i++) {
		memset(&o, 0, sizeof(o));
		o.capacity = 4096;
		o.reserved[i] = 1;
		ASSERT_ERR(shmpipe_pair(&w, &r, &o), -EINVAL);
		ASSERT_PTR_EQ(w, NULL);
		ASSERT_PTR_EQ(r, NULL);
		ASSERT_ERR(shmpipe_writer_create(&w, name, &o), -EINVAL);
		ASSERT_ERR(shmpipe_reader_create(&r, name, &o), -EINVAL);
		ASSERT_EQ(xp_name_exists(name), 0);
	}
	memset(&o, 0, sizeof(o));
	o.capacity = 4096;
	o.reserved32 = 1;
	ASSERT_ERR(shmpipe_pair(&w, &r, &o), -EINVAL);
	ASSERT_ERR(shmpipe_writer_create(&w, name, &o), -EINVAL);
	ASSERT_EQ(xp_name_exists(name), 0);
	o.reserved32 = 0;
	/* The same options with the word cleared are taken. */
	o.reserved[NRES(o) - 1] = 0;
	ASSERT_OK(shmpipe_pair(&w, &r, &o));
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

/* What the library fills in has its reserved words zero. */
static void reserved_filled_zero(void)
{
	char name[XP_NAME_MAX];
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_options o = {.capacity = 4096, .flags = SHMPIPE_RECORDS};
	shmpipe_options got;
	shmpipe_stats s;
	shmpipe_info in;

	xp_name(name, sizeof(name), 1);
	ASSERT_OK(shmpipe_writer_create(&w, name, &o));
	ASSERT_OK(shmpipe_reader_open(&r, name));
	ASSERT_EQ(shmpipe_write(w, "abc", 3), 3);

	memset(&got, 0xa5, sizeof(got));
	ASSERT_OK(shmpipe_writer_options(w, &got));
	assert_zero(got.reserved, sizeof(got.reserved), "shmpipe_writer_options");
	ASSERT_EQ(got.capacity, 4096);
	ASSERT_EQ(got.flags, SHMPIPE_RECORDS);
	memset(&got, 0xa5, sizeof(got));
	ASSERT_OK(shmpipe_reader_options(r, &got));
	assert_zero(got.reserved, sizeof(got.reserved), "shmpipe_reader_options");

	memset(&s, 0xa5, sizeof(s));
	ASSERT_OK(shmpipe_writer_stats(w, &s));
	assert_zero(s.reserved, sizeof(s.reserved), "shmpipe_writer_stats");
	ASSERT_EQ(s.produced, 1);
	memset(&s, 0xa5, sizeof(s));
	ASSERT_OK(shmpipe_reader_stats(r, &s));
	assert_zero(s.reserved, sizeof(s.reserved), "shmpipe_reader_stats");
	memset(&s, 0xa5, sizeof(s));
	ASSERT_OK(shmpipe_stat(name, &s));
	assert_zero(s.reserved, sizeof(s.reserved), "shmpipe_stat");
	ASSERT_EQ(s.write_index, SHMPIPE_RECORD_SPACE(3));

	memset(&in, 0xa5, sizeof(in));
	ASSERT_OK(shmpipe_inspect(name, &in));
	assert_zero(in.reserved, sizeof(in.reserved), "shmpipe_inspect");
	assert_zero(in.stats.reserved, sizeof(in.stats.reserved), "shmpipe_inspect stats");
	assert_zero(in.writer.reserved, sizeof(in.writer.reserved), "shmpipe_inspect writer");
	assert_zero(in.reader.reserved, sizeof(in.reader.reserved), "shmpipe_inspect reader");
	ASSERT_EQ(in.writer.alive, 1);

	ASSERT_OK(shmpipe_unlink(name));
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

static void version_is_the_header(void)
{
	char want[64];

	snprintf(want, sizeof(want), "%d.%d.%d", SHMPIPE_VERSION_MAJOR, SHMPIPE_VERSION_MINOR,
		 SHMPIPE_VERSION_PATCH);
	ASSERT_STR_EQ(shmpipe_version(), want);
}

static int body(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	reserved_options_refused();
	reserved_filled_zero();
	version_is_the_header();
	return 0;
}

int main(int argc, char **argv)
{
	return xp_main("abi", body, argc, argv);
}
