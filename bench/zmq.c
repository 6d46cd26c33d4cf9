/* SPDX-License-Identifier: MIT */
/*
 * zmq: messages between two threads of one process through ZeroMQ's
 * pipeline pattern (a PUSH socket in one thread, a PULL socket in the
 * other), the way a program choosing a message transport on one host would
 * use it: zmq_send and zmq_recv with the program's own buffers, one message
 * per record.
 *
 *   zmq --transport ipc|inproc --test records [--size BYTES] [--count N] [--capacity BYTES]
 *   zmq --transport ipc|inproc --test bulk [--write BYTES] [--bytes BYTES] [--ring BYTES]
 *
 *   ipc      ipc://$TMPDIR/shmpipe-bench-zmq-PID (a Unix domain socket; the
 *            bytes go through the context's I/O thread and the kernel)
 *   inproc   inproc://shmpipe-bench (ZeroMQ's lock-free pipes in memory)
 *
 * Backpressure is ZeroMQ's high-water mark, in messages: ZMQ_SNDHWM on the
 * PUSH socket and ZMQ_RCVHWM on the PULL socket are each set to half of
 * CAPACITY (records) or RING (bulk) divided by the message size, at least
 * 1, so that both queues together hold what shmpipe's ring holds in the
 * other programs. With ipc the kernel's socket buffers come on top (the
 * note says what the high-water marks were).
 *
 * Every message carries its 64-bit sequence number in its first bytes and
 * a fixed pattern in the rest; the receiver checks each message's length,
 * its sequence number and its last byte, and the count at the end. Before
 * the clock starts, one empty message goes through, so that the connection
 * is up.
 *
 * Prints bench.h lines: "records zmq_TRANSPORT size=S Mrec/s NOTE" or
 * "bulk zmq_TRANSPORT ring=R write=W GB/s NOTE".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <unistd.h>
#include <zmq.h>

#include "bench.h"
#include "peer.h"

static size_t size;
static uint64_t count;
static void *push, *pull;

static void *producer(void *arg)
{
	unsigned char *buf = peer_message("zmq", size);

	(void)arg;
	for (uint64_t seq = 0; seq < count; seq++) {
		memcpy(buf, &seq, sizeof(seq));
		while (zmq_send(push, buf, size, 0) < 0)
			if (errno != EINTR)
				BENCH_DIE("zmq: zmq_send: %s", zmq_strerror(errno));
	}
	free(buf);
	return NULL;
}

static void set_int(void *s, int opt, int v, const char *what)
{
	if (zmq_setsockopt(s, opt, &v, sizeof(v)) < 0)
		BENCH_DIE("zmq: zmq_setsockopt %s: %s", what, zmq_strerror(errno));
}

int main(int argc, char **argv)
{
	const char *transport, *tmp = getenv("TMPDIR");
	struct peer_args a;
	size_t bound;
	char endpoint[256], path[200] = "", note[128], impl[32];
	unsigned char *buf;
	pthread_t t;
	double t0, t1;
	uint64_t got = 0;
	int hwm, major, minor, patch;

	if (peer_args_parse("zmq", argc, argv, &a) < 0)
		return 2;
	transport = a.transport;
	size = a.size;
	count = a.count;
	bound = a.bound;
	hwm = (int)(bound / size / 2);
	if (hwm < 1)
		hwm = 1;
	snprintf(impl, sizeof(impl), "zmq_%s", transport);
	zmq_version(&major, &minor, &patch);
	snprintf(note, sizeof(note), "sndhwm=%d rcvhwm=%d libzmq %d.%d.%d", hwm, hwm, major, minor,
		 patch);

	void *ctx = zmq_ctx_new();
	if (!ctx)
		BENCH_DIE("zmq: zmq_ctx_new: %s", zmq_strerror(errno));
	push = zmq_socket(ctx, ZMQ_PUSH);
	pull = zmq_socket(ctx, ZMQ_PULL);
	if (!push || !pull)
		BENCH_DIE("zmq: zmq_socket: %s", zmq_strerror(errno));
	set_int(push, ZMQ_SNDHWM, hwm, "ZMQ_SNDHWM");
	set_int(pull, ZMQ_RCVHWM, hwm, "ZMQ_RCVHWM");
	set_int(push, ZMQ_LINGER, 0, "ZMQ_LINGER");
	set_int(pull, ZMQ_LINGER, 0, "ZMQ_LINGER");
	if (!strcmp(transport, "ipc")) {
		snprintf(path, sizeof(path), "%s/shmpipe-bench-zmq-%d", tmp && *tmp ? tmp : "/tmp",
			 (int)getpid());
		snprintf(endpoint, sizeof(endpoint), "ipc://%s", path);
	} else {
		snprintf(endpoint, sizeof(endpoint), "inproc://shmpipe-bench");
	}
	if (zmq_bind(pull, endpoint) < 0)
		BENCH_DIE("zmq: zmq_bind %s: %s", endpoint, zmq_strerror(errno));
	if (zmq_connect(push, endpoint) < 0)
		BENCH_DIE("zmq: zmq_connect %s: %s", endpoint, zmq_strerror(errno));

	/* A receive buffer one byte larger, so that an overlong message shows
	 * (zmq_recv returns the whole message's length, truncated or not). */
	buf = peer_message("zmq", size);
	/* The connection is up once an empty message has gone through. The
	 * sockets then move to the producer thread (pthread_create is a full
	 * barrier, which is what ZeroMQ asks of a socket changing threads). */
	if (zmq_send(push, "", 0, 0) != 0 || zmq_recv(pull, buf, size + 1, 0) != 0)
		BENCH_DIE("zmq: first message: %s", zmq_strerror(errno));

	t0 = bench_now();
	if (pthread_create(&t, NULL, producer, NULL) != 0)
		BENCH_DIE("zmq: pthread_create failed");
	while (got < count) {
		int k = zmq_recv(pull, buf, size + 1, 0);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			BENCH_DIE("zmq: zmq_recv: %s", zmq_strerror(errno));
		peer_check("zmq", buf, (size_t)k, size, got);
		got++;
	}
	pthread_join(t, NULL);
	t1 = bench_now();
	peer_report("zmq", &a, impl, got, t1 - t0, note);
	zmq_close(push);
	zmq_close(pull);
	zmq_ctx_term(ctx);
	if (*path)
		unlink(path);
	free(buf);
	return 0;
}
