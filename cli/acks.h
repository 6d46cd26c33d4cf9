/* SPDX-License-Identifier: MIT */
/*
 * The far forward's cumulative acknowledgements, on a consumer that
 * acknowledges all up to one (JetStream's AckAll, as `forward --create`
 * makes it): one per fetch rather than one per message, which spares the
 * servers most of their work on acknowledgements.
 *
 * An acknowledgement at stream position S covers every message before S
 * still pending too. So it goes only up to the highest position below which
 * every message delivered to this side is taken (written, or in already),
 * and only while no delivery this side has not seen may be pending: one to a
 * forwarder that died (at the start: the consumer's pending count), or to
 * anyone else (a gap in the consumer's delivery sequence). Then nothing is
 * acknowledged until the servers count as pending exactly the messages this
 * side has seen (cumul_reconcile()): what went elsewhere comes again after
 * AckWait, and is seen. A race with this side (its acknowledgements or
 * deliveries to it on their way) makes the servers' count the higher, which
 * only waits longer; a dead forwarder's acknowledgement still on its way
 * makes it the lower, harmless (model/acks.pml).
 *
 * No NATS here: the caller sends the acknowledgement (to the reply subject of
 * the last message due) and asks the servers.
 */
#ifndef SHMPIPE_CLI_ACKS_H
#define SHMPIPE_CLI_ACKS_H

#include <stddef.h>
#include <stdint.h>

struct seen {
	uint64_t sseq; /* its stream position */
	int taken;     /* written, or in already */
	char *reply;   /* where its acknowledgement goes (its last delivery's) */
};

struct cumul {
	int on;		/* the consumer is AckAll: acknowledgements are cumulative */
	int unknown;	/* a delivery this side has not seen may be pending */
	uint64_t dmax;	/* the last delivery sequence seen, or counted by the servers */
	uint64_t floor; /* acknowledged up to this stream position */
	struct seen *v; /* delivered, above floor, not acknowledged: by position */
	size_t n, cap;
	double next_check; /* when to ask the servers again, while unknown */
};

/*
 * The consumer at the start: on (AckAll), its pending count, its last
 * delivery sequence and its acknowledgement floor (stream position).
 */
void cumul_start(struct cumul *c, int on, int64_t pending, uint64_t delivered, uint64_t floor);

/*
 * A delivery to this side, in the order delivered: stream position sseq,
 * delivery sequence dseq, acknowledged at reply. 1 when it is at or below
 * the floor (covered already: acknowledging it is harmless, and ends its
 * redeliveries), else 0; -1 when it could not be recorded (no memory),
 * which counts as a delivery not seen.
 */
int cumul_note(struct cumul *c, uint64_t sseq, uint64_t dseq, const char *reply);

/* The message at stream position sseq is taken: written, or in already. */
void cumul_taken(struct cumul *c, uint64_t sseq);

/*
 * How many of c->v to acknowledge now (the last of them: the one whose reply
 * takes the acknowledgement); 0: none.
 */
size_t cumul_due(const struct cumul *c);

/* Those k are acknowledged: the floor moves up to the last of them. */
void cumul_drop(struct cumul *c, size_t k);

/*
 * The servers' count of pending messages and their last delivery sequence:
 * as many pending as this side has seen and not acknowledged, and it has
 * acknowledged none since it had a doubt, so those are all.
 */
void cumul_reconcile(struct cumul *c, int64_t pending, uint64_t delivered);

/*
 * The stream's end marker is taken: every message of the pipe before it is
 * in (it is taken only at its place, after all of them), so a delivery not
 * seen can only be one of those, in already, and the last acknowledgement
 * may cover it. Without this, a far side still in doubt at the end would
 * leave its messages pending on the consumer, to be delivered to the next
 * transfer's far side as another pipe's.
 */
void cumul_end(struct cumul *c);

void cumul_free(struct cumul *c);

#endif
