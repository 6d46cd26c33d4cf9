/* SPDX-License-Identifier: MIT */
/* The far forward's pull consumer: see pull.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pull.h"

/* After its last delivery, how long a fetch waits for more that come with it. */
#define LINGER_MS 5
/* A request not answered this long after it should be over is taken as lost. */
#define OWED_MS 2000

natsStatus pull_open(struct pull *p, natsConnection *nc, const char *stream, const char *consumer)
{
	natsStatus s;
	size_t n = strlen(stream) + strlen(consumer) + 64;

	memset(p, 0, sizeof(*p));
	p->nc = nc;
	p->next = malloc(n);
	if (!p->next)
		return NATS_NO_MEMORY;
	snprintf(p->next, n, "$JS.API.CONSUMER.MSG.NEXT.%s.%s", stream, consumer);
	s = natsInbox_Create(&p->inbox);
	if (s == NATS_OK)
		s = natsConnection_SubscribeSync(&p->sub, nc, p->inbox);
	if (s != NATS_OK)
		pull_close(p);
	return s;
}

void pull_close(struct pull *p)
{
	natsSubscription_Destroy(p->sub);
	natsInbox_Destroy(p->inbox);
	free(p->next);
	memset(p, 0, sizeof(*p));
}

void pull_free(struct pulled *l)
{
	for (int i = 0; i < l->n; i++)
		natsMsg_Destroy(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* A request for batch messages; wait_ms 0: those there now, at once. */
static natsStatus ask(struct pull *p, int batch, int64_t wait_ms)
{
	char body[96];
	int n;

	if (wait_ms > 0)
		n = snprintf(body, sizeof(body), "{\"batch\":%d,\"expires\":%lld}", batch,
			     (long long)wait_ms * 1000000);
	else
		n = snprintf(body, sizeof(body), "{\"batch\":%d,\"no_wait\":true}", batch);
	return natsConnection_PublishRequest(p->nc, p->next, natsSubscription_GetSubject(p->sub),
					     body, n);
}

/*
 * What came: a delivery (a reply subject to acknowledge to, in JetStream's
 * name space) goes into *l, anything else is destroyed. A delivery is one
 * fewer that the request out may bring; a status that ends a request (404
 * none, 408 expired, 409 and others) ends it. Returns that status, else 0
 * (a delivery, an idle heartbeat, nothing known).
 */
static int took(struct pull *p, struct pulled *l, natsMsg *m)
{
	const char *r = natsMsg_GetReply(m), *st = NULL;
	int code = 0;

	if (r && strncmp(r, "$JS.ACK.", 8) == 0) {
		if (p->owed > 0)
			p->owed--;
		if (l->n == l->cap) {
			int cap = l->cap ? 2 * l->cap : 64;
			natsMsg **v = realloc(l->v, (size_t)cap * sizeof(*v));

			if (!v) {
				/* Not kept: delivered again after AckWait. */
				natsMsg_Destroy(m);
				return 0;
			}
			l->v = v;
			l->cap = cap;
		}
		l->v[l->n++] = m;
		return 0;
	}
	if (natsMsgHeader_Get(m, "Status", &st) == NATS_OK && st)
		code = atoi(st);
	natsMsg_Destroy(m);
	if (code == 100)
		return 0;
	if (code)
		p->owed = 0;
	return code;
}

natsStatus pull_fetch(struct pull *p, struct pulled *out, int batch, int wait_ms)
{
	int64_t deadline = nats_Now() + wait_ms, now, wait;
	int waiting = 0, code = 0;
	natsStatus s = NATS_TIMEOUT;
	natsMsg *m;

	for (;;) {
		/* What came already, earlier requests' too. */
		while (!code && out->n < batch &&
		       natsSubscription_NextMsg(&m, p->sub, 0) == NATS_OK)
			code = took(p, out, m);
		if (out->n >= batch)
			break;
		now = nats_Now();
		if (p->owed && now >= p->owed_until)
			p->owed = 0; /* lost on the way, or with a connection */
		if (code == 404 && out->n == 0 && !waiting) {
			waiting = 1; /* none there now: a request that waits for them */
		} else if (code) {
			/* Expired: the wait is over. Else refused (409: too many pending). */
			s = out->n ? NATS_OK : code == 408 ? NATS_TIMEOUT : NATS_ERR;
			break;
		}
		code = 0;
		if (!p->owed) {
			/* Not while down: held back, it would go out with the others. */
			if (natsConnection_Status(p->nc) != NATS_CONN_STATUS_CONNECTED) {
				s = NATS_CONNECTION_DISCONNECTED;
				break;
			}
			/* Some came, and the request they answer is over: back with them. */
			if (out->n)
				break;
			/* A little shorter than this wait: no late deliveries. */
			if (waiting && deadline - now < 20)
				break;
			s = ask(p, batch - out->n, waiting ? deadline - now - 10 : 0);
			if (s != NATS_OK)
				break;
			p->owed = batch - out->n;
			p->owed_until = now + (waiting ? deadline - now : 0) + OWED_MS;
		}
		/*
		 * For the first, up to the end of this wait; then only a moment
		 * for the next (those that come together): a request that
		 * waits for a whole batch does not hold back what came.
		 */
		wait = out->n ? LINGER_MS : deadline - now;
		if (wait <= 0) {
			s = NATS_TIMEOUT;
			break;
		}
		m = NULL;
		s = natsSubscription_NextMsg(&m, p->sub, wait);
		if (s != NATS_OK)
			break; /* NATS_TIMEOUT: none came; NATS_NO_RESPONDERS: no consumer */
		code = took(p, out, m);
	}
	return out->n ? NATS_OK : s;
}

void pull_ack(natsConnection *nc, natsMsg *m, int sync)
{
	const char *r = natsMsg_GetReply(m);
	natsMsg *resp = NULL;

	if (!r || !*r)
		return;
	if (!sync)
		natsConnection_PublishString(nc, r, "+ACK");
	else if (natsConnection_RequestString(&resp, nc, r, "+ACK", 5000) == NATS_OK)
		natsMsg_Destroy(resp);
}

void pull_nak(natsConnection *nc, natsMsg *m, int delay_ms)
{
	const char *r = natsMsg_GetReply(m);
	char body[64];
	int n;

	if (!r || !*r)
		return;
	n = snprintf(body, sizeof(body), "-NAK {\"delay\":%lld}", (long long)delay_ms * 1000000);
	natsConnection_Publish(nc, r, body, n);
}
