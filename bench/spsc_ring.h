/* SPDX-License-Identifier: MIT */
/*
 * spsc_ring.h - a cached-index single-producer single-consumer ring of ints,
 * the design Erik Rigtorp's SPSCQueue made well known, written here in C11
 * atomics as the yardstick for shmpipe's small items.
 *
 * Each index lives on its own cache line, and each side keeps, on yet
 * another line of its own, a private copy of the other side's index. A side
 * re-reads the shared index of the other only when its cached copy says the
 * ring is full (producer) or empty (consumer), so in the steady state each
 * operation touches the other core's cache line once per lap rather than
 * once per item. Indices run free and are masked by a power-of-two capacity,
 * so no slot is wasted to tell full from empty.
 *
 * It cannot sleep: a side that finds the ring full or empty returns 0 and the
 * caller spins. That is the price shmpipe does not pay.
 */
#ifndef SHMPIPE_BENCH_SPSC_RING_H
#define SHMPIPE_BENCH_SPSC_RING_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SPSC_LINE 64

struct spsc_ring {
	alignas(SPSC_LINE) _Atomic size_t write; /* next slot to fill; the producer's */
	alignas(SPSC_LINE) size_t read_cache;	 /* the producer's copy of read */
	alignas(SPSC_LINE) _Atomic size_t read;	 /* next slot to empty; the consumer's */
	alignas(SPSC_LINE) size_t write_cache;	 /* the consumer's copy of write */
	alignas(SPSC_LINE) size_t mask;		 /* capacity - 1, read-only after init */
	int32_t *slots;
	char pad[SPSC_LINE - sizeof(size_t) - sizeof(int32_t *)];
};

/* capacity must be a power of two. Returns 0, or -1 without memory. */
static inline int spsc_init(struct spsc_ring *q, size_t capacity)
{
	memset(q, 0, sizeof(*q));
	q->mask = capacity - 1;
	/* Whole cache lines, so that no neighbour shares the slots' lines. */
	q->slots = aligned_alloc(SPSC_LINE, (capacity * sizeof(int32_t) + SPSC_LINE - 1) &
						~(size_t)(SPSC_LINE - 1));
	return q->slots ? 0 : -1;
}

static inline void spsc_free(struct spsc_ring *q)
{
	free(q->slots);
}

/* Producer only. Copies up to n items in; returns how many (0 if full). */
static inline size_t spsc_push_n(struct spsc_ring *q, const int32_t *items, size_t n)
{
	size_t w = atomic_load_explicit(&q->write, memory_order_relaxed); /* our own index */
	size_t cap = q->mask + 1;
	size_t room = cap - (w - q->read_cache);

	if (room < n) {
		/* Acquire pairs with the consumer's release of read: the slots it
		 * freed are no longer being read when we overwrite them. */
		q->read_cache = atomic_load_explicit(&q->read, memory_order_acquire);
		room = cap - (w - q->read_cache);
		if (room == 0)
			return 0;
		if (n > room)
			n = room;
	}
	size_t at = w & q->mask;
	size_t first = n < cap - at ? n : cap - at;

	memcpy(q->slots + at, items, first * sizeof(int32_t));
	memcpy(q->slots, items + first, (n - first) * sizeof(int32_t));
	/* Release pairs with the consumer's acquire of write: the items are
	 * visible before the index that publishes them. */
	atomic_store_explicit(&q->write, w + n, memory_order_release);
	return n;
}

/* Consumer only. Copies up to n items out; returns how many (0 if empty). */
static inline size_t spsc_pop_n(struct spsc_ring *q, int32_t *items, size_t n)
{
	size_t r = atomic_load_explicit(&q->read, memory_order_relaxed); /* our own index */
	size_t cap = q->mask + 1;
	size_t avail = q->write_cache - r;

	if (avail < n) {
		/* Acquire pairs with the producer's release of write. */
		q->write_cache = atomic_load_explicit(&q->write, memory_order_acquire);
		avail = q->write_cache - r;
		if (avail == 0)
			return 0;
		if (n > avail)
			n = avail;
	}
	size_t at = r & q->mask;
	size_t first = n < cap - at ? n : cap - at;

	memcpy(items, q->slots + at, first * sizeof(int32_t));
	memcpy(items + first, q->slots, (n - first) * sizeof(int32_t));
	/* Release pairs with the producer's acquire of read: we are done with
	 * the slots before it may reuse them. */
	atomic_store_explicit(&q->read, r + n, memory_order_release);
	return n;
}

/* The one-item forms, without the memcpy: what rigtorp's push/pop do. */
static inline int spsc_push(struct spsc_ring *q, int32_t v)
{
	size_t w = atomic_load_explicit(&q->write, memory_order_relaxed);

	if (w - q->read_cache == q->mask + 1) {
		q->read_cache =
		    atomic_load_explicit(&q->read, memory_order_acquire); /* as push_n */
		if (w - q->read_cache == q->mask + 1)
			return 0;
	}
	q->slots[w & q->mask] = v;
	atomic_store_explicit(&q->write, w + 1, memory_order_release); /* as push_n */
	return 1;
}

static inline int spsc_pop(struct spsc_ring *q, int32_t *v)
{
	size_t r = atomic_load_explicit(&q->read, memory_order_relaxed);

	if (r == q->write_cache) {
		q->write_cache =
		    atomic_load_explicit(&q->write, memory_order_acquire); /* as pop_n */
		if (r == q->write_cache)
			return 0;
	}
	*v = q->slots[r & q->mask];
	atomic_store_explicit(&q->read, r + 1, memory_order_release); /* as pop_n */
	return 1;
}

#endif /* SHMPIPE_BENCH_SPSC_RING_H */
