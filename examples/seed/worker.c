/* SPDX-License-Identifier: MIT */
/*
 * worker.c - the seed's worker.js in C: a slow consumer thread.
 *
 * It reads the generator's Int32 values one at a time, checks that each is
 * the next one expected, and then "works" on it for 20 ms by spinning on the
 * clock, exactly like the seed's `while (Date.now() < end);`. The work is
 * deliberately slower than the producer, so that the ring fills up and the
 * producer has to sleep: that is the backpressure the demo exists to show.
 *
 * One difference from the seed: the seed works on the value while it is
 * still in the ring and frees the slot afterwards; shmpipe_read copies the
 * value out and frees its 4 bytes at once. So here up to 8 items wait in the
 * ring and a ninth is in the worker's hands, where the seed (which also
 * wastes one slot to tell full from empty) had at most 7 in its ring of 8.
 *
 * This file is half of the seed_demo program; see generator.c for the build
 * line (cc -O2 -o seed_demo generator.c worker.c ...).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "seed.h"

/*
 * Read exactly one item. A shmpipe is a byte stream, like pipe(2): a read
 * may in principle return fewer bytes than asked, so collect the 4 bytes of
 * an item before using it. Returns 1 for an item, 0 at a clean end of
 * stream, or a negative error (-EBADMSG if the stream ends inside an item).
 */
static int read_item(struct seed_worker *wk, seed_item *out)
{
	unsigned char buf[sizeof(seed_item)];
	size_t got = 0;

	while (got < sizeof(buf)) {
		ssize_t n = shmpipe_read(wk->reader, buf + got, sizeof(buf) - got);

		if (n < 0)
			return (int)n;
		if (n == 0)
			return got == 0 ? 0 : -EBADMSG;
		got += (size_t)n;
		wk->reads++;
	}
	memcpy(out, buf, sizeof(*out));
	return 1;
}

/* The seed's busyWork(): burn CPU, on purpose, for ms milliseconds. */
static void busy_work(int ms)
{
	double end = seed_now(CLOCK_MONOTONIC) + ms / 1000.0;

	while (seed_now(CLOCK_MONOTONIC) < end)
		;
}

void *seed_worker_main(void *arg)
{
	struct seed_worker *wk = arg;
	int ret, cret;

	ret = shmpipe_reader_set_timeout(wk->reader, SEED_TIMEOUT_MS(wk->busy_ms));
	while (ret >= 0) {
		seed_item v = 0, want = seed_value(wk->items + 1);

		ret = read_item(wk, &v);
		if (ret <= 0)
			break;
		if (v != want) {
			fprintf(stderr, "worker: item %llu is %ld, expected %ld\n",
				(unsigned long long)wk->items + 1, (long)v, (long)want);
			ret = -EBADMSG;
			break;
		}
		wk->items++;
		busy_work(wk->busy_ms);
	}

	/*
	 * At a clean end of stream the writer has closed and we have read
	 * everything, so these are the pipe's final counters.
	 */
	if (ret == 0)
		ret = shmpipe_reader_stats(wk->reader, &wk->final);
	if (ret < 0 && ret != -EBADMSG)
		fprintf(stderr, "worker: %s\n", shmpipe_strerror(ret));
	wk->err = ret < 0 ? ret : 0;
	wk->cpu_s = seed_now(CLOCK_THREAD_CPUTIME_ID);

	/* On an error this is what makes the generator's next write -EPIPE. */
	cret = shmpipe_reader_close(wk->reader);
	if (cret < 0 && wk->err == 0)
		wk->err = cret;
	return NULL;
}
