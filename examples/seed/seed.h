/* SPDX-License-Identifier: MIT */
/*
 * seed.h - what the two halves of the seed demo share.
 *
 * The seed (a Node.js design) had three files: sab-writable.js (the ring),
 * main.js (a generator piped into the ring) and worker.js (a slow consumer).
 * In C the ring is the library, so two files remain: generator.c plays
 * main.js and worker.c plays worker.js. This header is the "same ring buffer
 * layout as before" that both seed files repeated at their top: the item type
 * and the capacity, plus the little the two threads hand each other.
 */
#ifndef SEED_H
#define SEED_H

#include <stdint.h>
#include <time.h>

#include <shmpipe.h>

/* The seed's items are Int32 values and its ring holds 8 of them. */
typedef int32_t seed_item;
#define SEED_ITEM_SIZE	    ((uint64_t)sizeof(seed_item))
#define SEED_CAPACITY_ITEMS 8
#define SEED_CAPACITY	    (SEED_CAPACITY_ITEMS * sizeof(seed_item)) /* 32 bytes */

/*
 * What the generator gives the worker thread, and what the worker reports
 * back once it has joined. The worker owns the reader: it closes it on every
 * path, so that a failing worker turns the generator's next write into
 * -EPIPE instead of leaving it asleep on a full ring.
 */
struct seed_worker {
	/* In: set by the generator before the thread starts. */
	shmpipe_reader *reader;
	int busy_ms; /* the seed's busyWork(): 20 ms per item */

	/* Out: valid after pthread_join. */
	uint64_t items;	     /* items received and checked */
	uint64_t reads;	     /* shmpipe_read calls that returned data */
	int err;	     /* 0, a -errno from the library, or -EBADMSG */
	shmpipe_stats final; /* counters seen at end of stream */
	double cpu_s;	     /* CPU time of the worker thread */
};

/*
 * The n-th value of the seed's generator (1, 2, 3, ...). The seed stores it
 * in an Int32Array, which wraps it modulo 2^32; so do we, through unsigned
 * arithmetic, instead of overflowing a signed int after 2^31 items.
 */
static inline seed_item seed_value(uint64_t n)
{
	return (seed_item)(uint32_t)n;
}

/*
 * A healthy demo never makes either side wait more than one item's work.
 * Both ends use this generous limit so that a hang (a lost wake-up, say)
 * becomes an error message instead of a frozen terminal.
 */
#define SEED_TIMEOUT_MS(busy_ms) ((busy_ms) + 10000)

/* worker.c: the consumer thread's body; arg is a struct seed_worker. */
void *seed_worker_main(void *arg);

/* Seconds on the given clock, as a double: plenty for a demo. */
static inline double seed_now(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif /* SEED_H */
