/* SPDX-License-Identifier: MIT */
/*
 * nng: messages between two threads of one process through nng's pipeline
 * protocol (a push0 socket in one thread, a pull0 socket in the other), the
 * way a program choosing a message transport on one host would use it:
 * nng_send and nng_recv with the program's own buffers, one message per
 * record.
 *
 *   nng --transport ipc|inproc --test records [--size BYTES] [--count N] [--capacity BYTES]
 *   nng --transport ipc|inproc --test bulk [--write BYTES] [--bytes BYTES] [--ring BYTES]
 *
 *   ipc      ipc://$TMPDIR/shmpipe-bench-nng-PID (a Unix domain socket,
 *            served by nng's own threads)
 *   inproc   inproc://shmpipe-bench
 *
 * Backpressure is nng's socket buffers, in messages: NNG_OPT_SENDBUF on the
 * push socket and NNG_OPT_RECVBUF on the pull socket are each set to half
 * of CAPACITY (records) or RING (bulk) divided by the message size, at
 * least 1 and at most nng's limit of 8192, so that both queues together
 * hold what shmpipe's ring holds in the other programs. With ipc the
 * kernel's socket buffers come on top (the note says what the buffers
 * were).
 *
 * Every message carries its 64-bit sequence number in its first bytes and
 * a fixed pattern in the rest; the receiver checks each message's length,
 * its sequence number and its last byte, and the count at the end. Before
 * the clock starts, one empty message goes through, so that the connection
 * is up.
 *
 * Prints bench.h lines: "records nng_TRANSPORT size=S Mrec/s NOTE" or
 * "bulk nng_TRANSPORT ring=R write=W GB/s NOTE".
 */
#define _GNU_SOURCE
#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <pthread.h>
#include <unistd.h>

#include "bench.h"
#include "peer.h"

static size_t size;
static uint64_t count;
static nng_socket push, pull;

static void *producer(void *arg)
{
	unsigned char *buf = peer_message("nng", size);

	(void)arg;
	for (uint64_t seq = 0; seq < count; seq++) {
		int e;

		memcpy(buf, &seq, sizeof(seq));
		while ((e = nng_send(push, buf, size, 0)) != 0)
			if (e != NNG_EINTR)
				BENCH_DIE("nng: nng_send: %s", nng_strerror(e));
	}
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	const char *transport, *tmp = getenv("TMPDIR");
	struct peer_args a;
	size_t bound, len;
	char url[256], path[200] = "", note[128], impl[32];
	unsigned char *buf;
	pthread_t t;
	double t0, t1;
	uint64_t got = 0;
	int qlen, e;

	if (peer_args_parse("nng", argc, argv, &a) < 0)
		return 2;
	transport = a.transport;
	size = a.size;
	count = a.count;
	bound = a.bound;
	qlen = (int)(bound / size / 2);
	if (qlen < 1)
		qlen = 1;
	if (qlen > 8192)
		qlen = 8192;
	snprintf(impl, sizeof(impl), "nng_%s", transport);
	snprintf(note, sizeof(note), "sendbuf=%d recvbuf=%d nng %s", qlen, qlen, nng_version());

	if ((e = nng_push0_open(&push)) != 0 || (e = nng_pull0_open(&pull)) != 0)
		BENCH_DIE("nng: opening the sockets: %s", nng_strerror(e));
	if ((e = nng_socket_set_int(push, NNG_OPT_SENDBUF, qlen)) != 0)
		BENCH_DIE("nng: NNG_OPT_SENDBUF: %s", nng_strerror(e));
	if ((e = nng_socket_set_int(pull, NNG_OPT_RECVBUF, qlen)) != 0)
		BENCH_DIE("nng: NNG_OPT_RECVBUF: %s", nng_strerror(e));
	if (!strcmp(transport, "ipc")) {
		snprintf(path, sizeof(path), "%s/shmpipe-bench-nng-%d", tmp && *tmp ? tmp : "/tmp",
			 (int)getpid());
		snprintf(url, sizeof(url), "ipc://%s", path);
	} else {
		snprintf(url, sizeof(url), "inproc://shmpipe-bench");
	}
	if ((e = nng_listen(pull, url, NULL, 0)) != 0)
		BENCH_DIE("nng: nng_listen %s: %s", url, nng_strerror(e));
	if ((e = nng_dial(push, url, NULL, 0)) != 0)
		BENCH_DIE("nng: nng_dial %s: %s", url, nng_strerror(e));

	/* A receive buffer one byte larger, so that an overlong message shows
	 * (nng_recv truncates to the buffer). */
	buf = peer_message("nng", size);
	/* The connection is up once an empty message has gone through. */
	len = size + 1;
	if ((e = nng_send(push, "", 0, 0)) != 0 || (e = nng_recv(pull, buf, &len, 0)) != 0 ||
	    len != 0)
		BENCH_DIE("nng: first message: %s", e ? nng_strerror(e) : "not empty");

	t0 = bench_now();
	if (pthread_create(&t, NULL, producer, NULL) != 0)
		BENCH_DIE("nng: pthread_create failed");
	while (got < count) {
		len = size + 1;
		e = nng_recv(pull, buf, &len, 0);
		if (e == NNG_EINTR)
			continue;
		if (e != 0)
			BENCH_DIE("nng: nng_recv: %s", nng_strerror(e));
		peer_check("nng", buf, len, size, got);
		got++;
	}
	pthread_join(t, NULL);
	t1 = bench_now();
	peer_report("nng", &a, impl, got, t1 - t0, note);
	nng_close(push);
	nng_close(pull);
	if (*path)
		unlink(path);
	free(buf);
	return 0;
}
