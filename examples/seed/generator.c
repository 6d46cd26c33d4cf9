/* SPDX-License-Identifier: MIT */
/*
 * generator.c - the seed's main.js in C: a fast producer, a slow consumer,
 * and a ring of 8 Int32 between them.
 *
 * The seed piped an endless generator of numbers 1, 2, 3, ... into a
 * Writable ("SABWritable") whose _write blocked while the shared ring was
 * full, and started a worker (worker.js, here worker.c) that consumed one
 * value every 20 ms. Here the main thread is the generator and the writer:
 * each value is one 4-byte shmpipe_write into a pipe of capacity 32 bytes,
 * and shmpipe_write, like the seed's _write, returns only once the value is
 * in the ring. While the ring is full the producer sleeps in the kernel, so
 * it should use almost no CPU; the summary measures that.
 *
 * Once a second a monitor thread prints the pipe's counters, the seed's six
 * (writeIndex, readIndex, producedCount, consumedCount, producerWaits,
 * consumerWaits), with the indexes in bytes. The depth in items,
 * (write_index - read_index) / 4, must never exceed 8; the producer checks
 * it after every write and the monitor at every line. Unlike the seed the
 * demo ends: after --count items or --seconds seconds (default 10) the
 * writer closes its end and the worker drains the ring to end of stream.
 * It exits 0 if every item arrived in order and all counters agree.
 *
 * Build: cc -O2 -o seed_demo generator.c worker.c $(pkg-config --cflags --libs shmpipe) -lpthread
 * Usage: seed_demo [--count N] [--seconds S] [--busy-ms MS]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seed.h"

struct monitor {
	shmpipe_writer *writer;
	double t0;
	atomic_bool stop;
	atomic_int err;
	atomic_uint_fast64_t max_depth; /* in items, as seen by anyone */
};

static void print_stats(const char *label, const shmpipe_stats *st)
{
	printf("%-8s write_index=%-7" PRIu64 " read_index=%-7" PRIu64 " produced=%-6" PRIu64
	       " consumed=%-6" PRIu64 " producer_waits=%-6" PRIu64 " consumer_waits=%-4" PRIu64
	       " depth=%" PRIu64 "/%d\n",
	       label, st->write_index, st->read_index, st->produced, st->consumed,
	       st->producer_waits, st->consumer_waits,
	       (st->write_index - st->read_index) / SEED_ITEM_SIZE, SEED_CAPACITY_ITEMS);
	fflush(stdout);
}

/*
 * Take a snapshot of the counters and check the one promise the demo is
 * about: the ring never holds more than 8 items. Returns 0 or -ERANGE.
 */
static int check_depth(struct monitor *m, shmpipe_stats *st)
{
	uint64_t depth, seen;
	int ret = shmpipe_writer_stats(m->writer, st);

	if (ret < 0)
		return ret;
	depth = (st->write_index - st->read_index) / SEED_ITEM_SIZE;
	seen = atomic_load(&m->max_depth);
	while (depth > seen && !atomic_compare_exchange_weak(&m->max_depth, &seen, depth))
		;
	if (st->read_index > st->write_index || depth > SEED_CAPACITY_ITEMS) {
		fprintf(stderr,
			"depth %" PRIu64 " items exceeds capacity %d "
			"(write_index=%" PRIu64 " read_index=%" PRIu64 ")\n",
			depth, SEED_CAPACITY_ITEMS, st->write_index, st->read_index);
		return -ERANGE;
	}
	return 0;
}

/* The once-a-second status line. It wakes often so that stopping is quick. */
static void *monitor_main(void *arg)
{
	struct monitor *m = arg;
	struct timespec tick = {0, 50 * 1000 * 1000};
	double next = m->t0 + 1.0;

	while (!atomic_load(&m->stop)) {
		shmpipe_stats st;
		char label[32];
		int ret;

		nanosleep(&tick, NULL);
		if (seed_now(CLOCK_MONOTONIC) < next)
			continue;
		ret = check_depth(m, &st);
		if (ret < 0) {
			atomic_store(&m->err, ret);
			break;
		}
		snprintf(label, sizeof(label), "%5.1f s", next - m->t0);
		print_stats(label, &st);
		next += 1.0;
	}
	return NULL;
}

/*
 * Write all of buf. shmpipe_write returns len, or a short count when the
 * reader went away or the timeout expired part-way; the next call then
 * reports why, which is what we return.
 */
static int write_all(shmpipe_writer *w, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = shmpipe_write(w, p, len);

		if (n < 0)
			return (int)n;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--count N] [--seconds S] [--busy-ms MS]\n"
		"  --count N     write N items, then close\n"
		"  --seconds S   write for S seconds, then close (default 10 without --count;\n"
		"                with both, whichever comes first)\n"
		"  --busy-ms MS  the worker's busy wait per item (default 20)\n",
		prog);
}

/* Parse a non-negative decimal option value; -1 if it is not one. */
static long long parse_num(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < 0)
		return -1;
	return v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"count", required_argument, NULL, 'n'},
	    {"seconds", required_argument, NULL, 's'},
	    {"busy-ms", required_argument, NULL, 'b'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	long long count = 0, seconds = 0, busy_ms = 20; /* 0 = no limit */
	shmpipe_options opts = {.capacity = SEED_CAPACITY};
	struct seed_worker wk = {0};
	struct monitor mon = {0};
	shmpipe_writer *w;
	shmpipe_reader *r;
	pthread_t worker_tid, monitor_tid;
	shmpipe_stats st;
	double deadline, wall0, cpu0, wall_s, cpu_s, total_s;
	uint64_t produced = 0;
	int c, ret, failed = 0;

	while ((c = getopt_long(argc, argv, "n:s:b:h", longopts, NULL)) != -1) {
		long long v = c == 'h' || c == '?' ? 0 : parse_num(optarg);

		if (v < 0 || (v == 0 && c != 'b') || (c == 'b' && v > 60000)) {
			fprintf(stderr, "%s: bad value: %s\n", argv[0], optarg);
			return 2;
		}
		switch (c) {
		case 'n':
			count = v;
			break;
		case 's':
			seconds = v;
			break;
		case 'b':
			busy_ms = v;
			break;
		case 'h':
			usage(argv[0]);
			return 0;
		default:
			usage(argv[0]);
			return 2;
		}
	}
	if (optind < argc) {
		usage(argv[0]);
		return 2;
	}
	/* Without --count the demo runs for a while; with it, until done. */
	if (count == 0 && seconds == 0)
		seconds = 10;

	ret = shmpipe_pair(&w, &r, &opts);
	if (ret < 0) {
		fprintf(stderr, "shmpipe_pair: %s\n", shmpipe_strerror(ret));
		return 1;
	}
	ret = shmpipe_writer_set_timeout(w, SEED_TIMEOUT_MS((int)busy_ms));
	if (ret < 0) {
		fprintf(stderr, "shmpipe_writer_set_timeout: %s\n", shmpipe_strerror(ret));
		return 1;
	}
	printf("shmpipe %s: seed demo, capacity %zu bytes = %d items of %d bytes, "
	       "worker busy %lld ms per item, ",
	       shmpipe_version(), SEED_CAPACITY, SEED_CAPACITY_ITEMS, (int)SEED_ITEM_SIZE, busy_ms);
	if (count)
		printf("%lld items%s", count, seconds ? " or " : "\n");
	if (seconds)
		printf("%lld s\n", seconds);

	/* The worker owns r from here on and closes it, whatever happens. */
	wk.reader = r;
	wk.busy_ms = (int)busy_ms;
	ret = pthread_create(&worker_tid, NULL, seed_worker_main, &wk);
	if (ret) {
		fprintf(stderr, "pthread_create: %s\n", strerror(ret));
		return 1;
	}
	mon.writer = w;
	mon.t0 = wall0 = seed_now(CLOCK_MONOTONIC);
	deadline = wall0 + (double)seconds;
	ret = pthread_create(&monitor_tid, NULL, monitor_main, &mon);
	if (ret) {
		fprintf(stderr, "pthread_create: %s\n", strerror(ret));
		return 1;
	}

	/*
	 * The generator and the Writable in one loop. The seed's generator
	 * never ends; ours stops at --count or at the deadline. On any error
	 * we stop writing and still close, so the worker sees end of stream.
	 */
	cpu0 = seed_now(CLOCK_THREAD_CPUTIME_ID);
	while (count == 0 || produced < (uint64_t)count) {
		seed_item v = seed_value(produced + 1);

		if (seconds && seed_now(CLOCK_MONOTONIC) >= deadline)
			break;
		ret = write_all(w, &v, sizeof(v));
		if (ret < 0) {
			fprintf(stderr, "shmpipe_write: %s\n", shmpipe_strerror(ret));
			failed = 1;
			break;
		}
		produced++;
		ret = check_depth(&mon, &st);
		if (ret < 0) {
			failed = 1;
			break;
		}
	}
	cpu_s = seed_now(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	wall_s = seed_now(CLOCK_MONOTONIC) - wall0;

	/* The monitor reads through w, so it must be gone before w is closed. */
	atomic_store(&mon.stop, true);
	pthread_join(monitor_tid, NULL);
	if (atomic_load(&mon.err) < 0)
		failed = 1;
	ret = shmpipe_writer_close(w);
	if (ret < 0) {
		fprintf(stderr, "shmpipe_writer_close: %s\n", shmpipe_strerror(ret));
		failed = 1;
	}
	pthread_join(worker_tid, NULL);
	total_s = seed_now(CLOCK_MONOTONIC) - wall0;
	if (wk.err < 0) {
		fprintf(stderr, "worker failed: %s\n", shmpipe_strerror(wk.err));
		failed = 1;
	} else {
		print_stats("final", &wk.final);
	}

	/* Everything the writer wrote must have arrived, and been counted. */
	if (wk.items != produced) {
		fprintf(stderr, "mismatch: produced %" PRIu64 " items, worker got %" PRIu64 "\n",
			produced, wk.items);
		failed = 1;
	}
	if (wk.err == 0 &&
	    (wk.final.capacity != SEED_CAPACITY || wk.final.produced != produced ||
	     wk.final.consumed != wk.reads || wk.final.write_index != produced * SEED_ITEM_SIZE ||
	     wk.final.read_index != produced * SEED_ITEM_SIZE)) {
		fprintf(stderr,
			"mismatch: final counters disagree with %" PRIu64
			" items written in %" PRIu64 " writes and read in %" PRIu64
			" reads (capacity %" PRIu64 ")\n",
			produced, produced, wk.reads, wk.final.capacity);
		failed = 1;
	}

	printf("\nsummary\n");
	printf("  items       : %" PRIu64 " produced, %" PRIu64 " consumed in order\n", produced,
	       wk.items);
	printf("  max depth   : %" PRIu64 " of %d items (checked after every write)\n",
	       (uint64_t)atomic_load(&mon.max_depth), SEED_CAPACITY_ITEMS);
	printf("  producer    : %.3f s CPU in %.3f s wall until it closed (%.2f%%)\n", cpu_s,
	       wall_s, wall_s > 0 ? 100.0 * cpu_s / wall_s : 0.0);
	printf("  worker      : %.3f s CPU in %.3f s wall, draining included "
	       "(it busy-waits %lld ms per item; the seed: 20)\n",
	       wk.cpu_s, total_s, busy_ms);

	/*
	 * The point of the demo: a producer held back by a full ring sleeps.
	 * If it burnt more than half of its wall time, it spun instead.
	 */
	if (busy_ms > 0 && wall_s > 0 && cpu_s > 0.5 * wall_s) {
		printf("  => the producer spun instead of sleeping\n");
		failed = 1;
	} else if (busy_ms > 0) {
		printf("  => the producer slept while the ring was full\n");
	}
	printf("result: %s\n", failed ? "FAILED" : "OK");
	return failed;
}
