/* SPDX-License-Identifier: MIT */
/* The far forward's cumulative acknowledgements: see acks.h. */
#include <stdlib.h>
#include <string.h>

#include "acks.h"

void cumul_start(struct cumul *c, int on, int64_t pending, uint64_t delivered, uint64_t floor)
{
	c->on = on;
	/* Delivered to a forwarder that died, and not acknowledged: not seen. */
	c->unknown = pending != 0;
	c->dmax = delivered;
	c->floor = floor;
}

/* Where sseq is in c->v, or where it would go. */
static size_t cumul_find(const struct cumul *c, uint64_t sseq)
{
	size_t lo = 0, hi = c->n;

	if (c->n && c->v[c->n - 1].sseq < sseq)
		return c->n; /* the usual case: a new one, after all */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->v[mid].sseq < sseq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int cumul_note(struct cumul *c, uint64_t sseq, uint64_t dseq, const char *reply)
{
	size_t i;
	char *r;

	/* Not the next delivery: some went elsewhere, or the count began again. */
	if (dseq != c->dmax + 1)
		c->unknown = 1;
	c->dmax = dseq;
	if (sseq <= c->floor)
		return 1;
	i = cumul_find(c, sseq);
	r = strdup(reply ? reply : "");
	if (!r) {
		c->unknown = 1;
		return -1;
	}
	if (i < c->n && c->v[i].sseq == sseq) {
		free(c->v[i].reply);
		c->v[i].reply = r;
		return 0;
	}
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 64;
		struct seen *v = realloc(c->v, cap * sizeof(*v));

		if (!v) {
			free(r);
			c->unknown = 1;
			return -1;
		}
		c->v = v;
		c->cap = cap;
	}
	memmove(c->v + i + 1, c->v + i, (c->n - i) * sizeof(*c->v));
	c->v[i] = (struct seen){.sseq = sseq, .reply = r};
	c->n++;
	return 0;
}

void cumul_taken(struct cumul *c, uint64_t sseq)
{
	size_t i = cumul_find(c, sseq);

	if (i < c->n && c->v[i].sseq == sseq)
		c->v[i].taken = 1;
}

size_t cumul_due(const struct cumul *c)
{
	size_t k = 0;

	if (c->unknown)
		return 0;
	while (k < c->n && c->v[k].taken)
		k++;
	return k;
}

void cumul_drop(struct cumul *c, size_t k)
{
	if (k == 0 || k > c->n)
		return;
	c->floor = c->v[k - 1].sseq;
	for (size_t i = 0; i < k; i++)
		free(c->v[i].reply);
	memmove(c->v, c->v + k, (c->n - k) * sizeof(*c->v));
	c->n -= k;
}

void cumul_reconcile(struct cumul *c, int64_t pending, uint64_t delivered)
{
	if (pending >= 0 && (uint64_t)pending == c->n) {
		c->unknown = 0;
		c->dmax = delivered;
	}
}

void cumul_end(struct cumul *c)
{
	c->unknown = 0;
}

void cumul_free(struct cumul *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].reply);
	free(c->v);
	c->v = NULL;
	c->n = c->cap = 0;
}
