/* SPDX-License-Identifier: MIT */
/*
 * peer_args.h - the command line of the message-library peers (zmq.c,
 * nng.c), parsed once for both:
 *
 *   PROG --transport ipc|inproc --test records [--size BYTES (>= 16)]
 *        [--count N] [--capacity BYTES]
 *   PROG --transport ipc|inproc --test bulk [--write BYTES (>= 16)]
 *        [--bytes BYTES (a multiple of WRITE)] [--ring BYTES]
 *
 * A bulk test is records of WRITE bytes, BYTES / WRITE of them. The bound
 * (--capacity or --ring, default 1 MiB) is in bytes, as shmpipe's ring is.
 */
#ifndef SHMPIPE_BENCH_PEER_ARGS_H
#define SHMPIPE_BENCH_PEER_ARGS_H

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

#endif /* SHMPIPE_BENCH_PEER_ARGS_H */
