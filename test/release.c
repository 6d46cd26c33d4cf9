/* SPDX-License-Identifier: MIT */
/*
 * Description: the ring's memory and descriptor are released when both
 * ends are closed, in either order, and not before the second close (the
 * open end keeps working). Counted from /proc/self/maps (the library's memfd
 * is named "shmpipe", so its mappings show as "/memfd:shmpipe...") and
 * /proc/self/fd; 1000 pair/close cycles leak neither.
 */
#include "test.h"

#define MEMFD "memfd:shmpipe"

static void check_one(int writer_first, size_t cap)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	int fds0 = test_count_fds(), maps0 = test_count_maps(MEMFD);
	uint8_t buf[100];

	test_pair(&w, &r, cap);
	/* The double-mapped ring is visible while the pipe exists. */
	ASSERT_GE(test_count_maps(MEMFD), maps0 + 1);

	ASSERT_EQ(shmpipe_write(w, "0123456789", 10), 10);
	if (writer_first) {
		ASSERT_OK(shmpipe_writer_close(w));
		/* Half closed: the reader still sees the data and the ring. */
		ASSERT_GE(test_count_maps(MEMFD), maps0 + 1);
		ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 10);
		ASSERT_MEM_EQ(buf, "0123456789", 10);
		ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 0);
		ASSERT_OK(shmpipe_reader_close(r));
	} else {
		ASSERT_OK(shmpipe_reader_close(r));
		/* Half closed: the writer still has its handle and stats. */
		ASSERT_GE(test_count_maps(MEMFD), maps0 + 1);
		ASSERT_ERR(shmpipe_write(w, buf, 1), -EPIPE);
		ASSERT_EQ(test_wstats(w).write_index, 10);
		ASSERT_OK(shmpipe_writer_close(w));
	}
	ASSERT_EQ(test_count_maps(MEMFD), maps0);
	ASSERT_EQ(test_count_fds(), fds0);
}

static void test_many_cycles(void)
{
	int fds0 = test_count_fds(), maps0 = test_count_maps(MEMFD);
	int maps_all0 = test_count_maps("");

	for (int i = 0; i < 1000; i++) {
		shmpipe_writer *w;
		shmpipe_reader *r;
		uint8_t b[8];

		test_pair(&w, &r, (size_t)(i % 3 == 0 ? 4096 : 1000 + i));
		if (i % 2) {
			ASSERT_EQ(shmpipe_write(w, "abcdefgh", 8), 8);
			ASSERT_EQ(shmpipe_read(r, b, 8), 8);
			ASSERT_OK(shmpipe_writer_close(w));
			ASSERT_OK(shmpipe_reader_close(r));
		} else {
			ASSERT_OK(shmpipe_reader_close(r));
			ASSERT_OK(shmpipe_writer_close(w));
		}
	}
	ASSERT_EQ(test_count_maps(MEMFD), maps0);
	ASSERT_EQ(test_count_fds(), fds0);
	/*
	 * No anonymous leftovers either (a reservation not unmapped): allow a
	 * little slack for allocator growth, far below one mapping per cycle.
	 */
	ASSERT_LE(test_count_maps(""), maps_all0 + 200);
}

/* Several pipes open at once each hold their own mapping. */
static void test_many_open(void)
{
	enum { N = 16 };
	shmpipe_writer *w[N];
	shmpipe_reader *r[N];
	int fds0 = test_count_fds(), maps0 = test_count_maps(MEMFD);

	for (int i = 0; i < N; i++)
		test_pair(&w[i], &r[i], 4096);
	ASSERT_GE(test_count_maps(MEMFD), maps0 + N);
	for (int i = 0; i < N; i++) {
		uint8_t b = (uint8_t)i, c = 0xff;
		ASSERT_EQ(shmpipe_write(w[i], &b, 1), 1);
		ASSERT_EQ(shmpipe_read(r[i], &c, 1), 1);
		ASSERT_EQ(c, i);
	}
	for (int i = 0; i < N; i++) {
		ASSERT_OK(shmpipe_writer_close(w[i]));
		ASSERT_OK(shmpipe_reader_close(r[i]));
	}
	ASSERT_EQ(test_count_maps(MEMFD), maps0);
	ASSERT_EQ(test_count_fds(), fds0);
}

int main(void)
{
	if (test_count_fds() < 0 || test_count_maps("") < 0)
		TEST_SKIP("no /proc/self");
	test_watchdog(40);
	ASSERT_EQ(test_count_maps(MEMFD), 0);
	check_one(1, 4096);
	check_one(0, 4096);
	check_one(1, 1000);
	check_one(0, (1 << 20) + 5);
	test_many_open();
	test_many_cycles();
	return T_PASS;
}
