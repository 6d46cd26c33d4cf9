/* SPDX-License-Identifier: MIT */
/*
 * messages: records between two threads, shmpipe's record mode against the
 * kernel's message transports, which also keep message boundaries.
 *
 *   messages --impl shmpipe|mq|seqpacket [--size BYTES] [--count N] [--capacity BYTES]
 *
 *   shmpipe    a SHMPIPE_RECORDS pipe of CAPACITY bytes, one shmpipe_write
 *              and one shmpipe_read per record
 *   mq         a POSIX message queue (mq_send / mq_receive) of SIZE-byte
 *              messages, as many as the system grants up to CAPACITY / SIZE
 *              (/proc/sys/fs/mqueue/msg_max and RLIMIT_MSGQUEUE cap it; the
 *              note says how many it got)
 *   seqpacket  socketpair(AF_UNIX, SOCK_SEQPACKET) with SO_SNDBUF set to
 *              CAPACITY (the note says what the kernel granted)
 *
 * Every record carries its sequence number, checked by the reader along
 * with its length.
 *
 * Prints bench.h lines: "records IMPL size=S Mrec/s NOTE".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <shmpipe.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

enum impl { SHMPIPE, MQ, SEQPACKET };

static enum impl impl;
static size_t size = 64;
static uint64_t count = 1000000;
static size_t capacity = 1 << 20;

static shmpipe_writer *w;
static shmpipe_reader *r;
static mqd_t mq_tx, mq_rx;
static int fds[2];

static void *producer(void *arg)
{
	unsigned char *buf = calloc(1, size);

	(void)arg;
	if (!buf)
		BENCH_DIE("messages: out of memory");
	for (uint64_t seq = 0; seq < count; seq++) {
		ssize_t k;

		memcpy(buf, &seq, sizeof(seq));
		if (impl == SHMPIPE) {
			k = shmpipe_write(w, buf, size);
		} else if (impl == MQ) {
			k = mq_send(mq_tx, (const char *)buf, size, 0) < 0 ? -errno : (ssize_t)size;
		} else {
			k = send(fds[1], buf, size, 0);
			if (k < 0)
				k = -errno;
		}
		if (k == -EINTR) {
			seq--;
			continue;
		}
		if (k != (ssize_t)size)
			BENCH_DIE("messages: send: %s", k < 0 ? strerror((int)-k) : "short");
	}
	if (impl == SHMPIPE)
		shmpipe_writer_close(w);
	free(buf);
	return NULL;
}

/* /proc/sys/fs/mqueue/msg_max: the queue length allowed without privilege. */
static long msg_max(void)
{
	FILE *f = fopen("/proc/sys/fs/mqueue/msg_max", "r");
	long v = 10;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = 10;
		fclose(f);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const char *names[] = {"shmpipe", "mq", "seqpacket"};
	const char *name = NULL;
	char note[160] = "-";
	unsigned char *buf;
	size_t bufsize;
	pthread_t t;
	double t0, t1;
	uint64_t got = 0;

	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && !strcmp(argv[i], "--impl"))
			name = argv[++i];
		else if (i + 1 < argc && !strcmp(argv[i], "--size"))
			size = (size_t)bench_size("messages", argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--count"))
			count = bench_size("messages", argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--capacity"))
			capacity = (size_t)bench_size("messages", argv[++i]);
		else
			name = NULL, i = argc;
	}
	for (impl = SHMPIPE; name && impl <= SEQPACKET; impl++)
		if (!strcmp(name, names[impl]))
			break;
	if (!name || impl > SEQPACKET || size < 8 || size > capacity / 2) {
		fprintf(stderr, "usage: messages --impl shmpipe|mq|seqpacket [--size BYTES (>= 8)] "
				"[--count N] [--capacity BYTES]\n");
		return 2;
	}

	if (impl == SHMPIPE) {
		shmpipe_options o = {.capacity = capacity, .flags = SHMPIPE_RECORDS};
		int e = shmpipe_pair(&w, &r, &o);

		if (e < 0)
			BENCH_DIE("messages: shmpipe_pair: %s", shmpipe_strerror(e));
	} else if (impl == MQ) {
		char qname[64];
		struct mq_attr a = {.mq_msgsize = (long)size};
		long want = (long)(capacity / size);

		snprintf(qname, sizeof(qname), "/shmpipe-bench-%d", (int)getpid());
		/* Ask for the ring's worth of messages and halve until the kernel
		 * agrees: without CAP_SYS_RESOURCE msg_max (10 by default) caps it,
		 * and RLIMIT_MSGQUEUE caps the bytes for everyone. */
		for (a.mq_maxmsg = want > 65536 ? 65536 : want; a.mq_maxmsg >= 1;) {
			long cap = msg_max();

			mq_rx = mq_open(qname, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &a);
			if (mq_rx != (mqd_t)-1)
				break;
			if (errno != EINVAL && errno != EMFILE && errno != ENOMEM && errno != EPERM)
				BENCH_DIE("messages: mq_open: %s", strerror(errno));
			a.mq_maxmsg = a.mq_maxmsg > cap ? cap : a.mq_maxmsg / 2;
		}
		if (a.mq_maxmsg < 1)
			BENCH_DIE("messages: mq_open refused every queue length");
		mq_tx = mq_open(qname, O_WRONLY | O_CLOEXEC);
		if (mq_tx == (mqd_t)-1)
			BENCH_DIE("messages: mq_open: %s", strerror(errno));
		mq_unlink(qname);
		mq_getattr(mq_rx, &a);
		snprintf(note, sizeof(note), "maxmsg=%ld of %ld asked", a.mq_maxmsg, want);
	} else {
		int v = (int)capacity, snd = 0;
		socklen_t len = sizeof(snd);

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
			BENCH_DIE("messages: socketpair: %s", strerror(errno));
		setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
		getsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &snd, &len);
		snprintf(note, sizeof(note), "sndbuf=%d", snd);
	}

	/* A receive buffer one byte larger, so that an overlong record shows. */
	bufsize = size + 1;
	buf = malloc(bufsize);
	if (!buf)
		BENCH_DIE("messages: out of memory");
	t0 = bench_now();
	if (pthread_create(&t, NULL, producer, NULL) != 0)
		BENCH_DIE("messages: pthread_create failed");
	while (got < count) {
		ssize_t k;
		uint64_t seq;

		if (impl == SHMPIPE) {
			k = shmpipe_read(r, buf, bufsize);
		} else if (impl == MQ) {
			/* mq_receive wants a buffer of at least mq_msgsize. */
			k = mq_receive(mq_rx, (char *)buf, size, NULL);
			if (k < 0)
				k = -errno;
		} else {
			k = recv(fds[0], buf, bufsize, 0);
			if (k < 0)
				k = -errno;
		}
		if (k == -EINTR)
			continue;
		if (k <= 0)
			BENCH_DIE("messages: receive: %s",
				  k < 0 ? strerror((int)-k) : "end of stream");
		memcpy(&seq, buf, sizeof(seq));
		if ((size_t)k != size || seq != got)
			BENCH_DIE("messages: record %llu: %zd bytes, sequence number %llu",
				  (unsigned long long)got, k, (unsigned long long)seq);
		got++;
	}
	pthread_join(t, NULL);
	t1 = bench_now();
	bench_emit("records", names[impl], (double)count / (t1 - t0) / 1e6, "Mrec/s", "size=%zu",
		   size);
	bench_note(note);
	if (impl == SHMPIPE)
		shmpipe_reader_close(r);
	else if (impl == MQ)
		mq_close(mq_tx), mq_close(mq_rx);
	else
		close(fds[0]), close(fds[1]);
	free(buf);
	return 0;
}
