/* SPDX-License-Identifier: MIT */
/*
 * latency: wake-up latency as a ping-pong round trip between two threads.
 * Thread A sends one byte to B, B sends one back; A times each round trip.
 *
 *   latency --impl IMPL [--trips N] [--spin US]
 *
 *   shmpipe_sleep  two shmpipes, every end with shmpipe_*_set_spin(0): each
 *                  side is asleep in the kernel when the byte arrives
 *   shmpipe_spin   the same with the default spin (or --spin US): a side
 *                  that waits less than the spin never enters the kernel
 *   futex          the kernel's floor for waking a sleeper: two words, each
 *                  side FUTEX_WAKEs after every store and FUTEX_WAITs
 *                  without spinning
 *   pipe           two pipe(2)s, one byte each way
 *
 * Prints bench.h lines: "latency IMPL p50 us" and "latency IMPL p99 us".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <shmpipe.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"

enum impl { SHMPIPE_SLEEP, SHMPIPE_SPIN, FUTEX, PIPE };

static enum impl impl;
static long trips = 20000;
static int spin = -1;

static shmpipe_writer *w1, *w2; /* A -> B, B -> A */
static shmpipe_reader *r1, *r2;
static int p1[2], p2[2];
static _Atomic uint32_t ping, pong; /* the futex words: the trip number */

static void futex_wait(_Atomic uint32_t *word, uint32_t seen)
{
	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Sends the byte or the trip number i over channel ch (0: A->B, 1: B->A). */
static void send_one(int ch, uint32_t i)
{
	char c = (char)i;
	ssize_t k;

	if (impl == FUTEX) {
		_Atomic uint32_t *word = ch ? &pong : &ping;

		/* Release pairs with the acquire in recv_one. */
		atomic_store_explicit(word, i, memory_order_release);
		futex_wake(word);
		return;
	}
	k = impl == PIPE ? write(ch ? p2[1] : p1[1], &c, 1) : shmpipe_write(ch ? w2 : w1, &c, 1);
	if (k != 1)
		BENCH_DIE("latency: send: %zd", k);
}

static void recv_one(int ch, uint32_t i)
{
	char c;
	ssize_t k;

	if (impl == FUTEX) {
		_Atomic uint32_t *word = ch ? &pong : &ping;
		uint32_t v;

		while ((v = atomic_load_explicit(word, memory_order_acquire)) != i)
			futex_wait(word, v);
		return;
	}
	k = impl == PIPE ? read(ch ? p2[0] : p1[0], &c, 1) : shmpipe_read(ch ? r2 : r1, &c, 1);
	if (k != 1 || c != (char)i)
		BENCH_DIE("latency: receive: %zd", k);
}

static void *echo(void *arg)
{
	(void)arg;
	for (long i = 1; i <= trips; i++) {
		recv_one(0, (uint32_t)i);
		send_one(1, (uint32_t)i);
	}
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	static const char *names[] = {"shmpipe_sleep", "shmpipe_spin", "futex", "pipe"};
	const char *name = NULL;
	char note[64] = "-";
	double *rtt;
	pthread_t t;

	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && !strcmp(argv[i], "--impl"))
			name = argv[++i];
		else if (i + 1 < argc && !strcmp(argv[i], "--trips"))
			trips = (long)bench_size("latency", argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--spin"))
			spin = atoi(argv[++i]);
		else
			name = NULL, i = argc;
	}
	for (impl = SHMPIPE_SLEEP; name && impl <= PIPE; impl++)
		if (!strcmp(name, names[impl]))
			break;
	if (!name || impl > PIPE) {
		fprintf(stderr, "usage: latency --impl shmpipe_sleep|shmpipe_spin|futex|pipe "
				"[--trips N] [--spin US]\n");
		return 2;
	}
	if (impl == SHMPIPE_SLEEP || impl == SHMPIPE_SPIN) {
		int s = impl == SHMPIPE_SLEEP ? 0 : spin;

		if (shmpipe_pair(&w1, &r1, NULL) < 0 || shmpipe_pair(&w2, &r2, NULL) < 0)
			BENCH_DIE("latency: shmpipe_pair failed");
		if (shmpipe_writer_set_spin(w1, s) < 0 || shmpipe_writer_set_spin(w2, s) < 0 ||
		    shmpipe_reader_set_spin(r1, s) < 0 || shmpipe_reader_set_spin(r2, s) < 0)
			BENCH_DIE("latency: bad --spin %d", s);
		if (s < 0)
			snprintf(note, sizeof(note), "spin=default");
		else
			snprintf(note, sizeof(note), "spin=%dus", s);
	} else if (impl == PIPE) {
		if (pipe(p1) < 0 || pipe(p2) < 0)
			BENCH_DIE("latency: pipe: %s", strerror(errno));
	}
	rtt = malloc((size_t)trips * sizeof(*rtt));
	if (!rtt)
		BENCH_DIE("latency: out of memory");
	if (pthread_create(&t, NULL, echo, NULL) != 0)
		BENCH_DIE("latency: pthread_create failed");
	for (long i = 1; i <= trips; i++) {
		double t0 = bench_now();

		send_one(0, (uint32_t)i);
		recv_one(1, (uint32_t)i);
		rtt[i - 1] = bench_now() - t0;
	}
	pthread_join(t, NULL);
	qsort(rtt, (size_t)trips, sizeof(*rtt), cmp);
	bench_emit("latency", names[impl], rtt[trips / 2] * 1e6, "us", "p50");
	bench_note(note);
	bench_emit("latency", names[impl], rtt[trips * 99 / 100] * 1e6, "us", "p99");
	bench_note(note);
	free(rtt);
	return 0;
}
