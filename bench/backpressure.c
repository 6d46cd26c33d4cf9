/* SPDX-License-Identifier: MIT */
/*
 * backpressure: what a blocked producer costs, in the seed's scenario. A
 * ring of 8 Int32 (capacity 32 bytes), a producer writing one Int32 per
 * shmpipe_write as fast as it can, and a consumer that takes one item and
 * then sleeps 20 ms. The ring is full almost all the time, so the producer
 * spends its life waiting; this measures the share of one CPU it uses while
 * doing so (its thread CPU time over wall time), after a warm-up.
 *
 *   backpressure [--seconds S] [--work-ms MS] [--spin US]
 *
 * Prints bench.h lines: "backpressure shmpipe cpu % NOTE" and
 * "backpressure shmpipe sleeps_per_item ...".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <shmpipe.h>
#include <stdatomic.h>
#include <time.h>

#include "bench.h"

static shmpipe_writer *w;
static shmpipe_reader *r;
static long work_ms = 20;
static atomic_int stop;
static _Atomic uint64_t consumed;

static void *producer(void *arg)
{
	(void)arg;
	for (uint32_t n = 1;; n++) {
		int32_t x = (int32_t)n;
		ssize_t k = shmpipe_write(w, &x, sizeof(x));

		if (k == -EPIPE)
			break;
		if (k != (ssize_t)sizeof(x))
			BENCH_DIE("backpressure: write: %s", shmpipe_strerror((int)k));
	}
	shmpipe_writer_close(w);
	return NULL;
}

static void *consumer(void *arg)
{
	struct timespec nap = {work_ms / 1000, (work_ms % 1000) * 1000000L};
	uint32_t expect = 1;

	(void)arg;
	while (!atomic_load(&stop)) {
		int32_t x;
		ssize_t k = shmpipe_read(r, &x, sizeof(x));

		if (k != (ssize_t)sizeof(x) || x != (int32_t)expect++)
			BENCH_DIE("backpressure: read %zd bytes, item %d", k, (int)x);
		atomic_fetch_add(&consumed, 1);
		nanosleep(&nap, NULL);
	}
	/* The producer, asleep on the full ring, wakes with -EPIPE. */
	shmpipe_reader_close(r);
	return NULL;
}

static double cpu_seconds(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	shmpipe_options o = {.capacity = 8 * sizeof(int32_t)};
	double seconds = 1.0, c0, c1, t0, t1;
	int spin = -1;
	shmpipe_stats s0, s1;
	uint64_t n0, n1;
	pthread_t tp, tc;
	clockid_t pclock;
	char note[64];

	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && !strcmp(argv[i], "--seconds"))
			seconds = atof(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--work-ms"))
			work_ms = atol(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--spin"))
			spin = atoi(argv[++i]);
		else {
			fprintf(stderr,
				"usage: backpressure [--seconds S] [--work-ms MS] [--spin US]\n");
			return 2;
		}
	}
	if (shmpipe_pair(&w, &r, &o) < 0 || shmpipe_writer_set_spin(w, spin) < 0)
		BENCH_DIE("backpressure: cannot set up the pipe (spin %d)", spin);
	if (pthread_create(&tp, NULL, producer, NULL) != 0 ||
	    pthread_create(&tc, NULL, consumer, NULL) != 0)
		BENCH_DIE("backpressure: pthread_create failed");
	if (pthread_getcpuclockid(tp, &pclock) != 0)
		BENCH_DIE("backpressure: no thread CPU clock");

	/* Let the producer fill the ring first: from then on it only waits. */
	struct timespec warm = {0, 100 * 1000000L}, run;
	nanosleep(&warm, NULL);
	shmpipe_reader_stats(r, &s0);
	n0 = atomic_load(&consumed);
	c0 = cpu_seconds(pclock);
	t0 = bench_now();
	run.tv_sec = (time_t)seconds;
	run.tv_nsec = (long)((seconds - (double)run.tv_sec) * 1e9);
	nanosleep(&run, NULL);
	c1 = cpu_seconds(pclock);
	t1 = bench_now();
	n1 = atomic_load(&consumed);
	shmpipe_reader_stats(r, &s1);
	atomic_store(&stop, 1);
	pthread_join(tc, NULL);
	pthread_join(tp, NULL);

	snprintf(note, sizeof(note), "%llu items, %llu producer sleeps",
		 (unsigned long long)(n1 - n0),
		 (unsigned long long)(s1.producer_waits - s0.producer_waits));
	bench_emit("backpressure", "shmpipe", 100.0 * (c1 - c0) / (t1 - t0), "%",
		   "producer CPU while blocked");
	bench_note(note);
	return 0;
}
