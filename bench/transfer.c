/* SPDX-License-Identifier: MIT */
/*
 * transfer: moves a volume of bytes between two threads through one shmpipe
 * and reports the rate and how often each side had to sleep. Used to count
 * the system calls of a steady-state transfer (bench/futex_per_gib.sh runs
 * it under perf stat); the comparison with other transports is elsewhere.
 *
 *   transfer [--mib N] [--write BYTES] [--read BYTES] [--capacity BYTES]
 *
 * Build: cc -O2 -o transfer transfer.c $(pkg-config --cflags --libs shmpipe) -lpthread
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <shmpipe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

static shmpipe_writer *w;
static shmpipe_reader *r;
static uint64_t total = 1ull << 30;
static size_t wsize = 64 * 1024;
static size_t rsize = 64 * 1024;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *producer(void *arg)
{
	unsigned char *buf = malloc(wsize);
	uint64_t sent = 0;

	(void)arg;
	if (!buf)
		return (void *)1;
	memset(buf, 0x5a, wsize);
	while (sent < total) {
		size_t n = total - sent < wsize ? (size_t)(total - sent) : wsize;
		ssize_t k = shmpipe_write(w, buf, n);

		if (k < 0) {
			fprintf(stderr, "transfer: write: %s\n", shmpipe_strerror((int)k));
			free(buf);
			return (void *)1;
		}
		sent += (uint64_t)k;
	}
	shmpipe_writer_close(w);
	free(buf);
	return NULL;
}

static size_t parse_size(const char *s)
{
	return (size_t)bench_size("transfer", s);
}

int main(int argc, char **argv)
{
	shmpipe_options opts = {0};
	shmpipe_stats st;
	unsigned char *buf;
	uint64_t got = 0;
	pthread_t t;
	void *tret;
	double t0, t1;
	ssize_t k;
	int err;

	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && !strcmp(argv[i], "--mib"))
			total = (uint64_t)parse_size(argv[++i]) << 20;
		else if (i + 1 < argc && !strcmp(argv[i], "--write"))
			wsize = parse_size(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--read"))
			rsize = parse_size(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--capacity"))
			opts.capacity = parse_size(argv[++i]);
		else {
			fprintf(stderr, "usage: transfer [--mib N] [--write BYTES] [--read BYTES] "
					"[--capacity BYTES]\n");
			return 2;
		}
	}
	err = shmpipe_pair(&w, &r, &opts);
	if (err < 0) {
		fprintf(stderr, "transfer: shmpipe_pair: %s\n", shmpipe_strerror(err));
		return 1;
	}
	buf = malloc(rsize);
	if (!buf)
		return 1;
	t0 = now();
	if (pthread_create(&t, NULL, producer, NULL) != 0)
		return 1;
	while ((k = shmpipe_read(r, buf, rsize)) > 0)
		got += (uint64_t)k;
	t1 = now();
	pthread_join(t, &tret);
	if (k < 0 || tret || got != total) {
		fprintf(stderr, "transfer: read %s after %llu bytes\n",
			k < 0 ? shmpipe_strerror((int)k) : "ended", (unsigned long long)got);
		return 1;
	}
	shmpipe_reader_stats(r, &st);
	printf("moved %.0f MiB in %.3f s: %.2f GB/s; writes %llu reads %llu; "
	       "producer_waits %llu consumer_waits %llu\n",
	       (double)got / (1 << 20), t1 - t0, (double)got / (t1 - t0) / 1e9,
	       (unsigned long long)st.produced, (unsigned long long)st.consumed,
	       (unsigned long long)st.producer_waits, (unsigned long long)st.consumer_waits);
	shmpipe_reader_close(r);
	free(buf);
	return 0;
}
