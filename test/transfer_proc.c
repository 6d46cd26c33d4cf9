/* SPDX-License-Identifier: MIT */
/*
 * Description: bulk transfer between two unrelated processes (the other one
 * is test/peer, started with fork+exec, sharing only the pipe's name): at
 * least 256 MiB each way through a named pipe, in writes and reads of random
 * sizes (some through reserve/commit and peek/consume), every byte checked
 * against a pattern keyed by its stream offset, end of stream exactly at the
 * end; then records of random lengths, each checked whole. Prints MiB/s.
 *
 *   transfer_proc [MiB]    (default 256, or $SHMPIPE_TRANSFER_MB)
 */
#include "xproc.h"

static double mib_s(uint64_t bytes, int64_t ns)
{
	return ns > 0 ? (double)bytes / (1 << 20) / ((double)ns / 1e9) : 0.0;
}

static void u64_arg(char *buf, size_t n, uint64_t v)
{
	snprintf(buf, n, "%" PRIu64, v);
}

/* We write, the peer reads. */
static void to_peer(int k, size_t capacity, unsigned flags, uint64_t total, uint64_t seed)
{
	char name[XP_NAME_MAX], tot[32], sd[32];
	shmpipe_options o = test_opts(capacity);
	const char *args[6];
	shmpipe_writer *w;
	shmpipe_stats s;
	int64_t t0, ns;
	pid_t pid;

	o.flags = flags;
	xp_name(name, sizeof(name), k);
	ASSERT_OK(shmpipe_writer_create(&w, name, &o));
	u64_arg(tot, sizeof(tot), total);
	u64_arg(sd, sizeof(sd), seed);
	args[0] = "read";
	args[1] = name;
	args[2] = tot;
	args[3] = sd;
	args[4] = (flags & SHMPIPE_RECORDS) ? "records" : NULL;
	args[5] = NULL;
	pid = xp_spawn_peer(args);
	t0 = test_now_ns();
	if (flags & SHMPIPE_RECORDS)
		xp_write_records(w, total, seed);
	else
		xp_write_stream(w, total, seed);
	ASSERT_OK(shmpipe_writer_close(w));
	XP_ASSERT_EXIT(xp_wait(pid, 200000), T_PASS);
	ns = test_now_ns() - t0;
	ASSERT_OK(shmpipe_stat(name, &s));
	ASSERT_EQ(s.read_index, s.write_index);
	if (!(flags & SHMPIPE_RECORDS))
		ASSERT_EQ(s.write_index, total);
	test_print_stats("  stats", &s);
	ASSERT_OK(shmpipe_unlink(name));
	printf("to an exec'd reader%s, capacity %zu: %" PRIu64 " MiB in %.2f s, %.0f MiB/s\n",
	       (flags & SHMPIPE_RECORDS) ? " (records)" : "", capacity, total >> 20,
	       (double)ns / 1e9, mib_s(total, ns));
}

/* The peer writes, we read. */
static void from_peer(int k, size_t capacity, uint64_t total, uint64_t seed)
{
	char name[XP_NAME_MAX], tot[32], sd[32];
	shmpipe_options o = test_opts(capacity);
	const char *args[5];
	shmpipe_reader *r;
	shmpipe_stats s;
	int64_t t0, ns;
	pid_t pid;

	xp_name(name, sizeof(name), k);
	ASSERT_OK(shmpipe_reader_create(&r, name, &o));
	u64_arg(tot, sizeof(tot), total);
	u64_arg(sd, sizeof(sd), seed);
	args[0] = "write";
	args[1] = name;
	args[2] = tot;
	args[3] = sd;
	args[4] = NULL;
	pid = xp_spawn_peer(args);
	t0 = test_now_ns();
	xp_read_stream(r, total, seed);
	ns = test_now_ns() - t0;
	XP_ASSERT_EXIT(xp_wait(pid, 200000), T_PASS);
	s = test_rstats(r);
	ASSERT_EQ(s.write_index, total);
	ASSERT_EQ(s.read_index, total);
	test_print_stats("  stats", &s);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_unlink(name));
	printf("from an exec'd writer, capacity %zu: %" PRIu64 " MiB in %.2f s, %.0f MiB/s\n",
	       capacity, total >> 20, (double)ns / 1e9, mib_s(total, ns));
}

static int body(int argc, char **argv)
{
	long mb = test_env_long("SHMPIPE_TRANSFER_MB", 256);
	uint64_t total;

	if (argc > 1)
		mb = strtol(argv[1], NULL, 10);
	if (mb < 1)
		TEST_FAIL("bad size %s", argv[1]);
	total = (uint64_t)mb << 20;
	test_watchdog(110);
	/* An odd capacity: the ends meet at every offset of the ring. */
	to_peer(1, 262147, 0, total, 0x7a11);
	from_peer(2, 1 << 20, total, 0x7a12);
	to_peer(3, 65536, SHMPIPE_RECORDS, total / 8, 0x7a13);
	return T_PASS;
}

int main(int argc, char **argv)
{
	return xp_main("transfer_proc", body, argc, argv);
}
