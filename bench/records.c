/* SPDX-License-Identifier: MIT */
/*
 * records: record-mode throughput between two threads. The writer sends
 * COUNT records of SIZE bytes (each stamped with its sequence number), one
 * shmpipe_write per record or BATCH records per shmpipe_writev; the reader
 * takes them with shmpipe_read (a copy out) or shmpipe_peek/consume (in
 * place), checks every sequence number, and prints records/s and GB/s of
 * payload.
 *
 *   records [--size BYTES] [--count N] [--capacity BYTES] [--batch N] [--peek]
 *
 * Build: cc -O2 -o records records.c $(pkg-config --cflags --libs shmpipe) -lpthread
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <shmpipe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "bench.h"

static shmpipe_writer *w;
static shmpipe_reader *r;
static size_t size = 64;
static uint64_t count = 10000000;
static int batch = 1;
static int peek;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *producer(void *arg)
{
	unsigned char *buf = calloc((size_t)batch, size);
	struct iovec *iov = calloc((size_t)batch, sizeof(*iov));

	(void)arg;
	if (!buf || !iov)
		return (void *)1;
	for (uint64_t seq = 0; seq < count;) {
		int n = 0;

		for (; n < batch && seq < count; n++, seq++) {
			iov[n].iov_base = buf + (size_t)n * size;
			iov[n].iov_len = size;
			memcpy(iov[n].iov_base, &seq, sizeof(seq));
		}
		ssize_t k = batch == 1 ? shmpipe_write(w, iov[0].iov_base, size)
				       : shmpipe_writev(w, iov, n);

		if (k != (ssize_t)((size_t)n * size)) {
			fprintf(stderr, "records: write: %s\n",
				k < 0 ? shmpipe_strerror((int)k) : "short");
			return (void *)1;
		}
	}
	shmpipe_writer_close(w);
	free(buf);
	free(iov);
	return NULL;
}

static size_t parse(const char *s)
{
	return (size_t)bench_size("records", s);
}

int main(int argc, char **argv)
{
	shmpipe_options opts = {.flags = SHMPIPE_RECORDS};
	unsigned char *buf;
	uint64_t got = 0;
	pthread_t t;
	void *tret;
	double t0, t1;
	ssize_t k;

	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && !strcmp(argv[i], "--size"))
			size = parse(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--count"))
			count = parse(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--capacity"))
			opts.capacity = parse(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--batch"))
			batch = (int)parse(argv[++i]);
		else if (!strcmp(argv[i], "--peek"))
			peek = 1;
		else {
			fprintf(stderr, "usage: records [--size BYTES] [--count N] "
					"[--capacity BYTES] [--batch N] [--peek]\n");
			return 2;
		}
	}
	if (size < sizeof(uint64_t) || batch > 1024) {
		fprintf(stderr, "records: --size must be >= 8 and --batch <= 1024\n");
		return 2;
	}
	k = shmpipe_pair(&w, &r, &opts);
	buf = malloc(size);
	if (k < 0 || !buf) {
		fprintf(stderr, "records: %s\n", shmpipe_strerror(k < 0 ? (int)k : -12));
		return 1;
	}
	t0 = now();
	if (pthread_create(&t, NULL, producer, NULL) != 0)
		return 1;
	for (;;) {
		const void *p = buf;
		uint64_t seq;

		k = peek ? shmpipe_peek(r, &p) : shmpipe_read(r, buf, size);
		if (k <= 0)
			break;
		memcpy(&seq, p, sizeof(seq));
		if ((size_t)k != size || seq != got) {
			fprintf(stderr, "records: record %llu: got seq %llu, %zd bytes\n",
				(unsigned long long)got, (unsigned long long)seq, k);
			return 1;
		}
		if (peek && shmpipe_consume(r, (size_t)k) < 0)
			return 1;
		got++;
	}
	t1 = now();
	pthread_join(t, &tret);
	if (k < 0 || tret || got != count) {
		fprintf(stderr, "records: stopped after %llu records: %s\n",
			(unsigned long long)got, k < 0 ? shmpipe_strerror((int)k) : "early end");
		return 1;
	}
	printf("%zu-byte records, %s, %s: %.2f M records/s, %.2f GB/s payload (%llu in %.3f s)\n",
	       size, batch == 1 ? "one write each" : "writev batches", peek ? "peek" : "read",
	       (double)got / (t1 - t0) / 1e6, (double)got * (double)size / (t1 - t0) / 1e9,
	       (unsigned long long)got, t1 - t0);
	shmpipe_reader_close(r);
	free(buf);
	return 0;
}
