/* SPDX-License-Identifier: MIT */
/*
 * peer.h - what the message-library peers (zmq.c, nng.c) share: their
 * command line, the messages (a sequence number, then a pattern), the check
 * of each message received, and the report. The command line:
 *
 *   PROG --transport ipc|inproc --test records [--size BYTES (>= 16)]
 *        [--count N] [--capacity BYTES]
 *   PROG --transport ipc|inproc --test bulk [--write BYTES (>= 16)]
 *        [--bytes BYTES (a multiple of WRITE)] [--ring BYTES]
 *
 * A bulk test is records of WRITE bytes, BYTES / WRITE of them. The bound
 * (--capacity or --ring, default 1 MiB) is in bytes, as shmpipe's ring is.
 */
#ifndef SHMPIPE_BENCH_PEER_H
#define SHMPIPE_BENCH_PEER_H

#include "bench.h"

struct peer_args {
	const char *transport; /* "ipc" or "inproc" */
	const char *test;      /* "records" or "bulk" */
	size_t size;	       /* bytes per message */
	uint64_t count;	       /* messages */
	size_t bound;	       /* bytes the transport may hold, as shmpipe's ring */
};

/* Fills *a from argv; prints the usage and returns -1 on a bad command line. */
static inline int peer_args_parse(const char *prog, int argc, char **argv, struct peer_args *a)
{
	uint64_t bytes = 1ull << 30;
	size_t wsize = 64 << 10;

	a->transport = NULL;
	a->test = NULL;
	a->size = 64;
	a->count = 1000000;
	a->bound = 0;
	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && !strcmp(argv[i], "--transport"))
			a->transport = argv[++i];
		else if (i + 1 < argc && !strcmp(argv[i], "--test"))
			a->test = argv[++i];
		else if (i + 1 < argc && !strcmp(argv[i], "--size"))
			a->size = (size_t)bench_size(prog, argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--count"))
			a->count = bench_size(prog, argv[++i]);
		else if (i + 1 < argc &&
			 (!strcmp(argv[i], "--capacity") || !strcmp(argv[i], "--ring")))
			a->bound = (size_t)bench_size(prog, argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--write"))
			wsize = (size_t)bench_size(prog, argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--bytes"))
			bytes = bench_size(prog, argv[++i]);
		else
			a->test = NULL, i = argc;
	}
	if (a->test && !strcmp(a->test, "bulk")) {
		a->size = wsize;
		a->count = bytes / wsize;
	}
	if (!a->bound)
		a->bound = 1 << 20;
	if (!a->transport || (strcmp(a->transport, "ipc") && strcmp(a->transport, "inproc")) ||
	    !a->test || (strcmp(a->test, "records") && strcmp(a->test, "bulk")) || a->size < 16 ||
	    a->count == 0 || (!strcmp(a->test, "bulk") && bytes % wsize)) {
		fprintf(stderr,
			"usage: %s --transport ipc|inproc --test records [--size BYTES (>= 16)] "
			"[--count N] [--capacity BYTES]\n"
			"       %s --transport ipc|inproc --test bulk [--write BYTES (>= 16)] "
			"[--bytes BYTES (a multiple of WRITE)] [--ring BYTES]\n",
			prog, prog);
		return -1;
	}
	return 0;
}

/* The pattern byte at offset off of a message (the first 8 are its number). */
static inline unsigned char peer_pattern(size_t off)
{
	return (unsigned char)(off * 131u + 7u);
}

/* A message buffer of size bytes, filled with the pattern; exits without memory. */
static inline unsigned char *peer_message(const char *prog, size_t size)
{
	unsigned char *buf = malloc(size + 1); /* + 1: a receiver sees an overlong one */

	if (!buf)
		BENCH_DIE("%s: out of memory", prog);
	for (size_t i = 0; i < size; i++)
		buf[i] = peer_pattern(i);
	return buf;
}

/* Exits unless buf (len bytes) is message number got of size bytes. */
static inline void peer_check(const char *prog, const unsigned char *buf, size_t len, size_t size,
			      uint64_t got)
{
	uint64_t seq;

	memcpy(&seq, buf, sizeof(seq));
	if (len != size || seq != got || buf[size - 1] != peer_pattern(size - 1))
		BENCH_DIE("%s: message %llu: %zu bytes, sequence number %llu", prog,
			  (unsigned long long)got, len, (unsigned long long)seq);
}

/* Checks the count, then prints the bench.h line of the run and its note. */
static inline void peer_report(const char *prog, const struct peer_args *a, const char *impl,
			       uint64_t got, double seconds, const char *note)
{
	char rs[24], ws[24];

	if (got != a->count)
		BENCH_DIE("%s: received %llu of %llu messages", prog, (unsigned long long)got,
			  (unsigned long long)a->count);
	if (!strcmp(a->test, "records"))
		bench_emit("records", impl, (double)a->count / seconds / 1e6, "Mrec/s", "size=%zu",
			   a->size);
	else
		bench_emit("bulk", impl, (double)(a->count * a->size) / seconds / 1e9, "GB/s",
			   "ring=%s write=%s", bench_human(a->bound, rs, sizeof(rs)),
			   bench_human(a->size, ws, sizeof(ws)));
	bench_note(note);
}

#endif /* SHMPIPE_BENCH_PEER_H */
