/* SPDX-License-Identifier: MIT */
/*
 * Description: the far forward's cumulative acknowledgements (cli/acks.c)
 * never cover a message not taken. An acknowledgement at stream position S
 * covers everything pending below S, so: a message refused (after a gap)
 * holds back those taken after it; a forwarder that died with deliveries
 * pending, or a gap in the delivery sequence, holds back all until the
 * servers' pending count matches what this side has seen, or the end
 * marker is taken; what is covered already is said so; a redelivery keeps
 * one entry, with its new reply.
 */
#include "test.h"

#include "../cli/acks.h"

static void note(struct cumul *c, uint64_t sseq, uint64_t dseq, int want)
{
	char reply[64];

	snprintf(reply, sizeof(reply), "ack.%llu.%llu", (unsigned long long)sseq,
		 (unsigned long long)dseq);
	ASSERT_EQ(cumul_note(c, sseq, dseq, reply), want);
}

/* Acknowledges what is due: want of them, the last one's reply want_reply. */
static void ack(struct cumul *c, size_t want, const char *want_reply)
{
	size_t k = cumul_due(c);

	ASSERT_EQ(k, want);
	if (!k)
		return;
	ASSERT_STR_EQ(c->v[k - 1].reply, want_reply);
	cumul_drop(c, k);
}

static void in_order(void)
{
	struct cumul c = {0};

	cumul_start(&c, 1, 0, 0, 0);
	for (uint64_t s = 1; s <= 5; s++)
		note(&c, s, s, 0);
	ack(&c, 0, NULL); /* delivered, none taken yet */
	for (uint64_t s = 1; s <= 5; s++)
		cumul_taken(&c, s);
	ack(&c, 5, "ack.5.5");
	ASSERT_EQ(c.floor, 5);
	ASSERT_EQ(c.n, 0);
	/* Delivered again after a lost acknowledgement: covered already. */
	note(&c, 3, 6, 1);
	ASSERT_EQ(c.n, 0);
	ASSERT_EQ(c.unknown, 0);
	cumul_free(&c);
}

static void refused_holds_back(void)
{
	struct cumul c = {0};

	cumul_start(&c, 1, 0, 0, 0);
	note(&c, 1, 1, 0); /* refused: after a gap */
	note(&c, 2, 2, 0); /* taken: fills the gap */
	cumul_taken(&c, 2);
	ack(&c, 0, NULL); /* at 2 it would cover 1, not taken */
	note(&c, 3, 3, 0);
	cumul_taken(&c, 3);
	ack(&c, 0, NULL);
	note(&c, 1, 4, 0); /* delivered again, now taken */
	ASSERT_EQ(c.n, 3); /* one entry for it still */
	ASSERT_STR_EQ(c.v[0].reply, "ack.1.4");
	cumul_taken(&c, 1);
	ack(&c, 3, "ack.3.3");
	ASSERT_EQ(c.floor, 3);
	/* Refused in the middle: up to it only. */
	note(&c, 4, 5, 0);
	note(&c, 5, 6, 0);
	note(&c, 6, 7, 0);
	cumul_taken(&c, 4);
	cumul_taken(&c, 6);
	ack(&c, 1, "ack.4.5");
	ASSERT_EQ(c.floor, 4);
	cumul_taken(&c, 5);
	ack(&c, 2, "ack.6.7");
	cumul_free(&c);
}

static void dead_predecessor(void)
{
	struct cumul c = {0};

	/* Two delivered to a forwarder that died (9 and 10), not acknowledged. */
	cumul_start(&c, 1, 2, 10, 8);
	ASSERT_EQ(c.unknown, 1);
	note(&c, 11, 11, 0);
	cumul_taken(&c, 11);
	ack(&c, 0, NULL);	    /* at 11 it would cover 9 and 10, never seen here */
	cumul_reconcile(&c, 3, 11); /* three pending, one seen: not yet */
	ASSERT_EQ(c.unknown, 1);
	note(&c, 9, 12, 0); /* they come again after AckWait */
	note(&c, 10, 13, 0);
	cumul_taken(&c, 9);
	cumul_taken(&c, 10);
	ack(&c, 0, NULL);
	cumul_reconcile(&c, 3, 13);
	ASSERT_EQ(c.unknown, 0);
	ack(&c, 3, "ack.11.11");
	ASSERT_EQ(c.floor, 11);
	/* Below the floor the servers had at the start: covered already. */
	note(&c, 7, 14, 1);
	cumul_free(&c);
}

static void delivery_gap(void)
{
	struct cumul c = {0};

	cumul_start(&c, 1, 0, 0, 0);
	note(&c, 1, 1, 0);
	cumul_taken(&c, 1);
	ack(&c, 1, "ack.1.1");
	/* Delivery 2 went elsewhere (a forwarder that died): 3 comes here. */
	note(&c, 3, 3, 0);
	cumul_taken(&c, 3);
	ASSERT_EQ(c.unknown, 1);
	ack(&c, 0, NULL); /* 2, unseen, may lie below 3 */
	cumul_reconcile(&c, 2, 3);
	ack(&c, 0, NULL);
	note(&c, 2, 4, 0); /* it comes again */
	cumul_taken(&c, 2);
	cumul_reconcile(&c, 2, 4);
	ack(&c, 2, "ack.3.3");
	/* The delivery count starting again (a new leader): a doubt too. */
	note(&c, 4, 2, 0);
	ASSERT_EQ(c.unknown, 1);
	cumul_free(&c);
}

static void end_clears_doubt(void)
{
	struct cumul c = {0};

	cumul_start(&c, 1, 1, 4, 2); /* one delivered elsewhere, not seen */
	note(&c, 3, 5, 0);
	note(&c, 4, 6, 0); /* the end marker */
	cumul_taken(&c, 3);
	cumul_taken(&c, 4);
	ack(&c, 0, NULL);
	cumul_end(&c);
	ack(&c, 2, "ack.4.6");
	ASSERT_EQ(c.floor, 4);
	/* Still never past one not taken. */
	note(&c, 5, 7, 0);
	note(&c, 6, 8, 0);
	cumul_taken(&c, 6);
	cumul_end(&c);
	ack(&c, 0, NULL);
	cumul_free(&c);
}

static void out_of_order_kept_sorted(void)
{
	struct cumul c = {0};

	cumul_start(&c, 1, 0, 0, 0);
	for (uint64_t i = 0; i < 200; i++) /* past the first allocation */
		note(&c, 400 - 2 * i, i + 1, 0);
	note(&c, 201, 201, 0);
	ASSERT_EQ(c.n, 201);
	for (size_t i = 1; i < c.n; i++)
		ASSERT_LT(c.v[i - 1].sseq, c.v[i].sseq);
	for (uint64_t s = 201; s <= 400; s++)
		cumul_taken(&c, s); /* 202 to 400: only the even ones are there */
	ack(&c, 0, NULL);	    /* 2, the lowest, is not taken */
	ASSERT_EQ(c.v[0].sseq, 2);
	for (uint64_t s = 2; s <= 200; s += 2)
		cumul_taken(&c, s);
	ack(&c, 201, "ack.400.1");
	cumul_free(&c);
}

int main(void)
{
	in_order();
	refused_holds_back();
	dead_predecessor();
	delivery_gap();
	end_clears_doubt();
	out_of_order_kept_sorted();
	return T_PASS;
}
