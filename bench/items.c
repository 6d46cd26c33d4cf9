/* SPDX-License-Identifier: MIT */
/*
 * items: small items (4-byte ints, the seed's Int32 values) between two
 * threads, shmpipe against lock-free SPSC rings that cannot sleep.
 *
 *   items --impl IMPL [--batch 1|N] [--items N] [--slots N]
 *
 * IMPL is one of
 *   shmpipe        shmpipe_write(w, &x, 4) / shmpipe_read(r, &x, 4) per item;
 *                  with --batch N, N ints per write and a read buffer of N
 *   shmpipe_rbuf   one shmpipe_write per item, but the reader takes whatever
 *                  is there into a buffer of 1024 ints (batch 1 only)
 *   rigtorp        the cached-index ring of spsc_ring.h; batches through its
 *                  push_n / pop_n
 *   ck             Concurrency Kit's ck_ring (SPSC); it has no batch call,
 *                  so a batch is a loop of single enqueues and dequeues
 *
 * shmpipe keeps its normal blocking behaviour (spin briefly, then sleep);
 * the rings busy-spin when full or empty. Every ring holds SLOTS ints
 * (shmpipe: a capacity of 4 * SLOTS bytes). The consumer checks that the
 * values arrive as 1, 2, 3 ... so a broken ring cannot report a rate.
 *
 * Prints bench.h lines: "items IMPL batch=B Mitems/s NOTE".
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <shmpipe.h>

#include "bench.h"
#include "spsc_ring.h"

#ifdef HAVE_CK
#include <ck_ring.h>
struct bench_item {
	int32_t v;
};
CK_RING_PROTOTYPE(item, bench_item)
static ck_ring_t ckq;
static struct bench_item *ckbuf;
#endif

enum impl { SHMPIPE, SHMPIPE_RBUF, RIGTORP, CK };

static enum impl impl;
static size_t batch = 1;
static uint64_t count = 20000000;
static size_t slots = 16384;

static shmpipe_writer *w;
static shmpipe_reader *r;
static struct spsc_ring q;

static void *producer(void *arg)
{
	int32_t *buf = malloc(batch * sizeof(int32_t));
	uint32_t next = 1;

	(void)arg;
	if (!buf)
		BENCH_DIE("items: out of memory");
	for (uint64_t sent = 0; sent < count;) {
		size_t n = count - sent < batch ? (size_t)(count - sent) : batch;

		if (batch == 1) {
			int32_t x = (int32_t)next++;

			if (impl == SHMPIPE || impl == SHMPIPE_RBUF) {
				ssize_t k = shmpipe_write(w, &x, sizeof(x));
				if (k != (ssize_t)sizeof(x))
					BENCH_DIE("items: write: %s", shmpipe_strerror((int)k));
			} else if (impl == RIGTORP) {
				while (!spsc_push(&q, x))
					;
			} else {
#ifdef HAVE_CK
				struct bench_item it = {x};
				while (!ck_ring_enqueue_spsc_item(&ckq, ckbuf, &it))
					;
#endif
			}
		} else {
			for (size_t i = 0; i < n; i++)
				buf[i] = (int32_t)next++;
			if (impl == SHMPIPE) {
				ssize_t k = shmpipe_write(w, buf, n * sizeof(int32_t));
				if (k != (ssize_t)(n * sizeof(int32_t)))
					BENCH_DIE("items: write: %s", shmpipe_strerror((int)k));
			} else if (impl == RIGTORP) {
				for (size_t done = 0; done < n;)
					done += spsc_push_n(&q, buf + done, n - done);
			} else {
#ifdef HAVE_CK
				for (size_t i = 0; i < n; i++) {
					struct bench_item it = {buf[i]};
					while (!ck_ring_enqueue_spsc_item(&ckq, ckbuf, &it))
						;
				}
#endif
			}
		}
		sent += n;
	}
	if (impl == SHMPIPE || impl == SHMPIPE_RBUF)
		shmpipe_writer_close(w);
	free(buf);
	return NULL;
}

/* The consumer; returns the number of items received in order. */
static uint64_t consume(void)
{
	size_t rb = impl == SHMPIPE_RBUF ? 1024 : batch;
	int32_t *buf = malloc(rb * sizeof(int32_t) + sizeof(int32_t));
	uint32_t expect = 1;
	uint64_t got = 0;

	if (!buf)
		BENCH_DIE("items: out of memory");
	if (impl == SHMPIPE || impl == SHMPIPE_RBUF) {
		/* A shmpipe is a byte stream: keep a partial int for the next read. */
		size_t carry = 0;

		for (;;) {
			ssize_t k =
			    shmpipe_read(r, (char *)buf + carry, rb * sizeof(int32_t) - carry);

			if (k == 0)
				break;
			if (k < 0)
				BENCH_DIE("items: read: %s", shmpipe_strerror((int)k));
			size_t bytes = carry + (size_t)k, n = bytes / sizeof(int32_t);

			for (size_t i = 0; i < n; i++)
				if (buf[i] != (int32_t)expect++)
					BENCH_DIE("items: item %llu is %d",
						  (unsigned long long)got + i, buf[i]);
			got += n;
			carry = bytes - n * sizeof(int32_t);
			if (carry) /* rare: a call into the C library per item is not */
				memmove(buf, buf + n, carry);
		}
	} else {
		while (got < count) {
			size_t want = count - got < batch ? (size_t)(count - got) : batch, n = 0;

			if (impl == RIGTORP && batch == 1) {
				while (!spsc_pop(&q, buf))
					;
				n = 1;
			} else if (impl == RIGTORP) {
				while (!(n = spsc_pop_n(&q, buf, want)))
					;
			} else {
#ifdef HAVE_CK
				for (; n < want; n++) {
					struct bench_item it;
					while (!ck_ring_dequeue_spsc_item(&ckq, ckbuf, &it))
						;
					buf[n] = it.v;
				}
#endif
			}
			for (size_t i = 0; i < n; i++)
				if (buf[i] != (int32_t)expect++)
					BENCH_DIE("items: item %llu is %d",
						  (unsigned long long)got + i, buf[i]);
			got += n;
		}
	}
	free(buf);
	return got;
}

int main(int argc, char **argv)
{
	static const char *names[] = {"shmpipe", "shmpipe_rbuf", "rigtorp", "ck"};
	const char *name = NULL;
	char note[128] = "-";
	pthread_t t;
	double t0, t1;
	uint64_t got;

	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && !strcmp(argv[i], "--impl"))
			name = argv[++i];
		else if (i + 1 < argc && !strcmp(argv[i], "--batch"))
			batch = (size_t)bench_size("items", argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--items"))
			count = bench_size("items", argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--slots"))
			slots = (size_t)bench_size("items", argv[++i]);
		else
			name = NULL, i = argc;
	}
	for (impl = SHMPIPE; name && impl <= CK; impl++)
		if (!strcmp(name, names[impl]))
			break;
	if (!name || impl > CK || (slots & (slots - 1)) || batch > slots ||
	    (impl == SHMPIPE_RBUF && batch != 1)) {
		fprintf(stderr, "usage: items --impl shmpipe|shmpipe_rbuf|rigtorp|ck [--batch N] "
				"[--items N] [--slots POWER_OF_TWO >= N]\n");
		return 2;
	}
	if (impl == SHMPIPE || impl == SHMPIPE_RBUF) {
		shmpipe_options o = {.capacity = slots * sizeof(int32_t)};
		int e = shmpipe_pair(&w, &r, &o);

		if (e < 0)
			BENCH_DIE("items: shmpipe_pair: %s", shmpipe_strerror(e));
	} else if (impl == RIGTORP) {
		if (spsc_init(&q, slots) < 0)
			BENCH_DIE("items: out of memory");
	} else {
#ifdef HAVE_CK
		/* ck_ring holds one item less than its size. */
		ckbuf = calloc(slots, sizeof(*ckbuf));
		if (!ckbuf)
			BENCH_DIE("items: out of memory");
		ck_ring_init(&ckq, (unsigned int)slots);
		if (batch > 1)
			snprintf(note, sizeof(note), "no batch call: a loop of single calls");
#else
		fprintf(stderr, "items: built without ck_ring.h\n");
		return 77;
#endif
	}
	t0 = bench_now();
	if (pthread_create(&t, NULL, producer, NULL) != 0)
		BENCH_DIE("items: pthread_create failed");
	got = consume();
	pthread_join(t, NULL);
	t1 = bench_now();
	if (got != count)
		BENCH_DIE("items: received %llu of %llu items", (unsigned long long)got,
			  (unsigned long long)count);
	bench_emit("items", names[impl], (double)count / (t1 - t0) / 1e6, "Mitems/s", "batch=%zu",
		   batch);
	bench_note(note);
	if (impl == SHMPIPE || impl == SHMPIPE_RBUF)
		shmpipe_reader_close(r);
	else if (impl == RIGTORP)
		spsc_free(&q);
	return 0;
}
