/* SPDX-License-Identifier: MIT */
/* The far forward's pull consumer: see pull.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pull.h"

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
 * name space) goes into *l, anything else is destroyed. Returns the status that ends a request (404
 * none, 408 expired, 409 and others), else 0 (a delivery, an idle
 * heartbeat, nothing known).
 */
static int took(struct pulled *l, natsMsg *m)
{
	const char *r = natsMsg_GetReply(m), *st = NULL;
	int code = 0;

	if (r && strncmp(r, "$JS.ACK.", 8) == 0) {
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
	return code == 100 ? 0 : code;
}

natsStatus pull_fetch(struct pull *p, struct pulled *out, int batch, int wait_ms)
{
	int64_t deadline = nats_Now() + wait_ms, left;
	int asked = 0, waiting = 0, code;
	natsStatus s = NATS_TIMEOUT;
	natsMsg *m;

	/* What earlier requests brought and was not taken. */
	while (out->n < batch && natsSubscription_NextMsg(&m, p->sub, 0) == NATS_OK)
		took(out, m);
	while (out->n < batch) {
		left = deadline - nats_Now();
		if (!asked) {
			/* Not while down: held back, it would go out with the others. */
			if (natsConnection_Status(p->nc) != NATS_CONN_STATUS_CONNECTED) {
				s = NATS_CONNECTION_DISCONNECTED;
				break;
			}
			/* A little shorter than this wait: no late deliveries. */
			if (waiting && left < 20)
				break;
			s = ask(p, batch - out->n, waiting ? left - 10 : 0);
			if (s != NATS_OK)
				break;
			asked = 1;
		}
		if (left <= 0) {
			s = NATS_TIMEOUT;
			break;
		}
		m = NULL;
		s = natsSubscription_NextMsg(&m, p->sub, left);
		if (s != NATS_OK)
			break; /* NATS_TIMEOUT: none came; NATS_NO_RESPONDERS: no consumer */
		code = took(out, m);
		if (!code)
			continue;
		/* A request ended (this one, or one before it). */
		if (code == 404 && out->n == 0 && !waiting) {
			/* None there now: one that waits for them. */
			waiting = 1;
			asked = 0;
			continue;
		}
		/* Expired: the wait is over. Else refused (409: too many pending). */
		s = code == 408 ? NATS_TIMEOUT : NATS_ERR;
		break;
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
