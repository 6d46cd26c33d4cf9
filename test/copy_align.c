/* SPDX-License-Identifier: MIT */
/*
 * Description: every byte arrives whatever the alignment of the caller's
 * buffers. Writes from and reads into buffers at offsets 0 to 64 (and
 * 4095) from a page boundary, of sizes around the 1 KiB blocks in which
 * the library splits a copy whose destination lies just past its source
 * (ring.c, copy()) and well beyond, through a 64 KiB ring and a 1 MiB
 * ring, checking every byte read against the pattern written.
 */
#include "test.h"

static const size_t sizes[] = {1, 7, 1023, 1024, 1025, 2047, 2048, 2112, 4095, 4096, 5000, 16384};
static const size_t offsets[] = {0, 1, 8, 15, 16, 31, 32, 33, 48, 63, 64, 4095};

#define NSIZES	 (sizeof(sizes) / sizeof(sizes[0]))
#define NOFFSETS (sizeof(offsets) / sizeof(offsets[0]))

static void one_ring(size_t capacity)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	uint8_t *src = aligned_alloc(4096, 16384 + 8192);
	uint8_t *dst = aligned_alloc(4096, 16384 + 8192);
	uint64_t pos = 0;

	ASSERT_NOT_NULL(src);
	ASSERT_NOT_NULL(dst);
	test_pair(&w, &r, capacity);
	for (size_t i = 0; i < NSIZES; i++) {
		for (size_t a = 0; a < NOFFSETS; a++) {
			for (size_t b = 0; b < NOFFSETS; b++) {
				size_t n = sizes[i];
				uint8_t *s = src + offsets[a], *d = dst + offsets[b];

				test_pattern_fill(s, n, 0xa11, pos);
				ASSERT_EQ(shmpipe_write(w, s, n), (ssize_t)n);
				memset(d, 0, n);
				test_read_exact(r, d, n);
				ASSERT_PATTERN(d, n, 0xa11, pos);
				pos += n;
			}
		}
	}
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
	free(src);
	free(dst);
}

int main(void)
{
	test_watchdog(60);
	one_ring(64 << 10);
	one_ring(1 << 20);
	return T_PASS;
}
