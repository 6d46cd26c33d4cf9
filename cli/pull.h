/* SPDX-License-Identifier: MIT */
/*
 * The far forward's pull consumer, read by hand rather than through
 * libnats 3.4's pull subscription, two of whose faults a far forward met:
 * - natsSubscription_Fetch writes past its array when more messages come
 *   than one request asked for while earlier ones wait in the subscription
 *   (requests published while the connection was down all go out when it
 *   comes back, and each is answered);
 * - a subscription destroyed while a message for it is being received is
 *   used after it is freed (the connection's reader does not hold it), and
 *   the far forward destroyed its pull subscription to bind a new one after
 *   a few empty fetches, such as a server's restart brings.
 *
 * So: one plain subscription to an inbox for the whole run, destroyed only
 * once the connection is closed (its reader joined); pull requests
 * published to the consumer's $JS.API.CONSUMER.MSG.NEXT subject with that
 * inbox to answer to, none while the connection is down; and every message
 * that comes to the inbox taken, whichever request it answers, into a list
 * that grows. A request goes to the consumer's leader wherever it is, so a
 * change of leader needs nothing here.
 */
#ifndef SHMPIPE_CLI_PULL_H
#define SHMPIPE_CLI_PULL_H

#include <nats/nats.h>

struct pull {
	natsConnection *nc;
	natsSubscription *sub;
	natsInbox *inbox;
	char *next;	    /* $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer> */
	int owed;	    /* what the request out may still bring (0: none out) */
	int64_t owed_until; /* ... until then at most */
};

struct pulled {
	natsMsg **v; /* deliveries, in the order they came */
	int n, cap;
};

/* Subscribes to a new inbox: NATS_OK, or why not (the connection's error). */
natsStatus pull_open(struct pull *p, natsConnection *nc, const char *stream, const char *consumer);

/*
 * Up to batch messages into *out (which must be empty): those that came
 * already; then, unless a request is out still, those an immediate request
 * brings; if that brings none, a request that waits on the servers for up
 * to wait_ms. Once some came, it returns as soon as no more come within a
 * moment (LINGER_MS), the request left out: a request that waits for a
 * whole batch would hold a trickle of messages back until it expired. One
 * request at a time is out, so what they bring stays within what was asked.
 * NATS_OK: some came. Else none: NATS_TIMEOUT, none within the wait;
 * another status, the connection is down or the servers refused or did not
 * answer (the caller waits a little before it pulls again).
 */
natsStatus pull_fetch(struct pull *p, struct pulled *out, int batch, int wait_ms);

/* Destroys the messages of *l and empties it. */
void pull_free(struct pulled *l);

/* After natsConnection_Close(): nothing can come to the subscription then. */
void pull_close(struct pull *p);

/*
 * A delivery's acknowledgement (sync: waited for, up to 5 s), or a refusal
 * to be delivered again after delay_ms: to its reply subject.
 */
void pull_ack(natsConnection *nc, natsMsg *m, int sync);
void pull_nak(natsConnection *nc, natsMsg *m, int delay_ms);

#endif
