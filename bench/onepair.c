/* SPDX-License-Identifier: MIT */
/*
 * onepair: the instructions of one item per call, counted under callgrind.
 * One thread alternates a 4-byte write and a 4-byte read, N times, through
 * shmpipe (shmpipe_write, shmpipe_read: the inline calls of shmpipe.h),
 * through the library's functions themselves ((shmpipe_write) and
 * (shmpipe_read), as a program built with SHMPIPE_NO_INLINE calls them), or
 * through the cached-index ring of spsc_ring.h (spsc_push, spsc_pop). Run it twice with
 * different N under valgrind --tool=callgrind: the difference of the totals
 * over the difference of N is the cost of one pair, free of the start-up.
 * bench/onepair.sh does that for both and prints the table.
 *
 *   onepair shmpipe|library|ring N
 */
#include <inttypes.h>
#include <shmpipe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spsc_ring.h"

/*
 * The same loop for the inline calls and for the library's functions, as
 * two functions, so that neither shapes the other's code.
 */
#define ONEPAIR_LOOP(name, WRITE, READ)                                                            \
	static int name(shmpipe_writer *w, shmpipe_reader *r, uint64_t n, uint64_t *sum)           \
	{                                                                                          \
		for (uint64_t i = 0; i < n; i++) {                                                 \
			int32_t v = (int32_t)i, x;                                                 \
                                                                                                   \
			if (WRITE(w, &v, sizeof(v)) != sizeof(v) ||                                \
			    READ(r, &x, sizeof(x)) != sizeof(x) || x != v) {                       \
				fprintf(stderr, "onepair: item %" PRIu64 " lost\n", i);            \
				return 1;                                                          \
			}                                                                          \
			*sum += (uint32_t)x;                                                       \
		}                                                                                  \
		return 0;                                                                          \
	}

ONEPAIR_LOOP(loop_inline, shmpipe_write, shmpipe_read)
ONEPAIR_LOOP(loop_library, (shmpipe_write), (shmpipe_read))

int main(int argc, char **argv)
{
	uint64_t n, sum = 0;

	if (argc != 3 ||
	    (strcmp(argv[1], "shmpipe") && strcmp(argv[1], "library") && strcmp(argv[1], "ring"))) {
		fprintf(stderr, "usage: onepair shmpipe|library|ring N\n");
		return 2;
	}
	n = strtoull(argv[2], NULL, 10);
	if (strcmp(argv[1], "ring")) {
		shmpipe_options o = {.capacity = 4096};
		shmpipe_writer *w;
		shmpipe_reader *r;
		int err = shmpipe_pair(&w, &r, &o);

		if (err < 0) {
			fprintf(stderr, "onepair: %s\n", shmpipe_strerror(err));
			return 1;
		}
		err = strcmp(argv[1], "library") ? loop_inline(w, r, n, &sum)
						 : loop_library(w, r, n, &sum);
		if (err)
			return 1;
		shmpipe_writer_close(w);
		shmpipe_reader_close(r);
	} else {
		struct spsc_ring q;

		if (spsc_init(&q, 1024) < 0)
			return 1;
		for (uint64_t i = 0; i < n; i++) {
			int32_t v = (int32_t)i, x;

			if (!spsc_push(&q, v) || !spsc_pop(&q, &x) || x != v) {
				fprintf(stderr, "onepair: item %" PRIu64 " lost\n", i);
				return 1;
			}
			sum += (uint32_t)x;
		}
		spsc_free(&q);
	}
	printf("%s %" PRIu64 " pairs, sum %" PRIu64 "\n", argv[1], n, sum);
	return 0;
}
