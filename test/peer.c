/* SPDX-License-Identifier: MIT */
/*
 * Description: not a test by itself: the other process of the cross-process
 * tests, started with fork+exec so that it shares nothing with the test but
 * the pipe's name. It opens the end it is told to, moves the data both sides
 * agree on (xproc.h), checks every byte, and exits 0, or 1 on any failure.
 *
 *   peer read  <name> <bytes> <seed> [records]   open the read end, check
 *                                                 the stream, then end of stream
 *   peer write <name> <bytes> <seed> [records]   open the write end, write, close
 *   peer echo  <in> <out>                        read <in>, write it all back
 *                                                 to <out>, until end of stream
 */
#include "xproc.h"

#include "../common/units.h"

static uint64_t parse_u64(const char *s)
{
	uint64_t v;

	if (units_parse_size(s, &v) < 0)
		TEST_FAIL("peer: not a number: %s", s);
	return v;
}

static void report(const char *what, uint64_t bytes, int64_t ns)
{
	double s = (double)ns / 1e9;

	printf("peer: %s %" PRIu64 " bytes in %.3f s, %.0f MiB/s\n", what, bytes, s,
	       s > 0 ? (double)bytes / (1 << 20) / s : 0.0);
}

static int do_read(const char *name, uint64_t total, uint64_t seed, int records)
{
	shmpipe_reader *r;
	int64_t t0;
	int ret = shmpipe_reader_open(&r, name);

	if (ret != 0)
		TEST_FAIL("peer: shmpipe_reader_open(%s) = %d (%s)", name, ret,
			  shmpipe_strerror(ret));
	t0 = test_now_ns();
	if (records)
		xp_read_records(r, total, seed);
	else
		xp_read_stream(r, total, seed);
	report(records ? "read (records)" : "read", total, test_now_ns() - t0);
	ASSERT_OK(shmpipe_reader_close(r));
	return T_PASS;
}

static int do_write(const char *name, uint64_t total, uint64_t seed, int records)
{
	shmpipe_writer *w;
	int64_t t0;
	int ret = shmpipe_writer_open(&w, name);

	if (ret != 0)
		TEST_FAIL("peer: shmpipe_writer_open(%s) = %d (%s)", name, ret,
			  shmpipe_strerror(ret));
	t0 = test_now_ns();
	if (records)
		xp_write_records(w, total, seed);
	else
		xp_write_stream(w, total, seed);
	report(records ? "wrote (records)" : "wrote", total, test_now_ns() - t0);
	ASSERT_OK(shmpipe_writer_close(w));
	return T_PASS;
}

static int do_echo(const char *in, const char *out)
{
	shmpipe_reader *r;
	shmpipe_writer *w;
	uint8_t buf[65536];
	int ret;

	ret = shmpipe_reader_open(&r, in);
	if (ret != 0)
		TEST_FAIL("peer: shmpipe_reader_open(%s) = %d (%s)", in, ret,
			  shmpipe_strerror(ret));
	ret = shmpipe_writer_open(&w, out);
	if (ret != 0)
		TEST_FAIL("peer: shmpipe_writer_open(%s) = %d (%s)", out, ret,
			  shmpipe_strerror(ret));
	for (;;) {
		ssize_t n = shmpipe_read(r, buf, sizeof(buf));
		if (n == 0)
			break;
		ASSERT_GT(n, 0);
		ASSERT_EQ(shmpipe_write(w, buf, (size_t)n), n);
	}
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
	return T_PASS;
}

int main(int argc, char **argv)
{
	test_watchdog(100);
	if (argc >= 5 && argc <= 6 &&
	    (strcmp(argv[1], "read") == 0 || strcmp(argv[1], "write") == 0)) {
		int records = argc == 6 && strcmp(argv[5], "records") == 0;

		if (argc == 6 && !records)
			TEST_FAIL("peer: unknown mode %s", argv[5]);
		if (argv[1][0] == 'r')
			return do_read(argv[2], parse_u64(argv[3]), parse_u64(argv[4]), records);
		return do_write(argv[2], parse_u64(argv[3]), parse_u64(argv[4]), records);
	}
	if (argc == 4 && strcmp(argv[1], "echo") == 0)
		return do_echo(argv[2], argv[3]);
	fprintf(stderr, "usage: peer read|write <name> <bytes> <seed> [records]\n"
			"       peer echo <in> <out>\n");
	return T_FAIL;
}
