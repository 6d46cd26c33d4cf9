/* SPDX-License-Identifier: MIT */
/*
 * Description: writes the seed corpus of fuzz_reader, one small file per
 * case, in the input format of fuzz_input.h. The generated files are
 * committed in fuzz/corpus/, so neither CI nor the fuzzer needs this
 * program; run it after changing the input format or to add a seed:
 *
 *     cc -std=c11 -Wall -Wextra -o /tmp/make_corpus fuzz/make_corpus.c
 *     /tmp/make_corpus fuzz/corpus
 *
 * Each seed is a pipe the fuzzer would take long to find on its own: valid
 * streams and record rings (empty, full, wrapped around the data region,
 * with the writer closed, dead or absent), the largest record, and every
 * check of the header, each failed on its own. The comment on each case
 * says what a correct reader does with it; fuzz_replay checks that it does.
 * The page size is assumed to be 4096 only where a comment says so; the
 * harness itself works with any page size.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_input.h"

struct seed {
	uint8_t b[1024];
	size_t n;
};

static const char *outdir;
static int failed;

static void put(struct seed *s, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes && s->n < sizeof(s->b); i++)
		s->b[s->n++] = (uint8_t)(v >> (8 * i));
}

static void u8(struct seed *s, uint64_t v)
{
	put(s, v, 1);
}

static void u16(struct seed *s, uint64_t v)
{
	put(s, v, 2);
}

static void u32(struct seed *s, uint64_t v)
{
	put(s, v, 4);
}

static void u64(struct seed *s, uint64_t v)
{
	put(s, v, 8);
}

static unsigned geo(int records, unsigned pages, unsigned cap_mode, int unsealed, int corrupt)
{
	return (records ? FZ_G_RECORDS : 0) | ((pages - 1) << FZ_G_PAGES_SHIFT) |
	       (cap_mode << FZ_G_CAP_SHIFT) | (unsealed ? FZ_G_UNSEALED : 0) |
	       (corrupt ? FZ_G_CORRUPT : 0);
}

static unsigned state(unsigned ws, unsigned rs, unsigned base, unsigned fill)
{
	return ws | (rs << FZ_S_READER_SHIFT) | (base << FZ_S_BASE_SHIFT) |
	       (fill << FZ_S_FILL_SHIFT);
}

/* The four fixed bytes: geometry, state, corrupt mask, payload seed. */
static void start(struct seed *s, unsigned g, unsigned st, unsigned mask)
{
	s->n = 0;
	u8(s, g);
	u8(s, st);
	u8(s, mask);
	u8(s, (g ^ st ^ mask ^ 0x5a) & 0xff); /* any seed will do */
}

/* Read size indexes of fuzz_reader.c's read_size(). */
enum {
	SZ_0,
	SZ_1,
	SZ_7,
	SZ_8,
	SZ_9_OR_RECMAX,
	SZ_15,
	SZ_16,
	SZ_17_OR_RECMAX_1,
	SZ_63,
	SZ_100,
	SZ_1000,
	SZ_PAGE_1,
	SZ_CAP_1,
	SZ_CAP,
	SZ_CAP1,
	SZ_64K
};

static void op_read(struct seed *s, unsigned size)
{
	u8(s, FZ_OP_READ);
	u8(s, size);
}

static void op_peek(struct seed *s, unsigned action, unsigned part)
{
	u8(s, FZ_OP_PEEK);
	u8(s, action);
	u8(s, part);
}

static void op_consume(struct seed *s, unsigned len)
{
	u8(s, FZ_OP_CONSUME);
	u8(s, len);
}

static void op_stats(struct seed *s)
{
	u8(s, FZ_OP_STATS);
}

static void op_commit(struct seed *s, unsigned flags, unsigned len)
{
	u8(s, FZ_OP_COMMIT);
	if (len > 255)
		flags |= FZ_WC_LONG;
	u8(s, flags);
	if (flags & FZ_WC_LONG)
		u16(s, len);
	else
		u8(s, len);
}

static void op_windex(struct seed *s, unsigned mode, uint64_t v)
{
	u8(s, FZ_OP_WINDEX);
	u8(s, mode);
	u64(s, v);
}

static void op_wstate(struct seed *s, unsigned b)
{
	u8(s, FZ_OP_WSTATE);
	u8(s, b);
}

static void op_reclen(struct seed *s, unsigned mode, uint64_t v)
{
	u8(s, FZ_OP_RECLEN);
	u8(s, mode);
	u64(s, v);
}

static void op_scribble(struct seed *s, unsigned off, unsigned len)
{
	u8(s, FZ_OP_SCRIBBLE);
	u16(s, off);
	u8(s, len);
}

static void op_header(struct seed *s, unsigned field, uint64_t v)
{
	u8(s, FZ_OP_HEADER);
	u8(s, field);
	u64(s, v);
}

static void op_timeout(struct seed *s, unsigned ms)
{
	u8(s, FZ_OP_TIMEOUT);
	u8(s, ms);
}

static void op_args(struct seed *s)
{
	u8(s, FZ_OP_ARGS);
}

static void emit(const char *name, const struct seed *s)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(s->b, 1, s->n, f) != s->n || fclose(f) != 0) {
		fprintf(stderr, "make_corpus: %s: %s\n", path, strerror(errno));
		failed = 1;
	}
}

/* Drains with reads of every size class, then asks once more. */
static void drain(struct seed *s)
{
	op_read(s, SZ_1);
	op_read(s, SZ_7);
	op_read(s, SZ_63);
	op_read(s, SZ_1000);
	op_read(s, SZ_64K);
	op_read(s, SZ_64K);
	op_stats(s);
}

static void stream_seeds(void)
{
	struct seed s;

	/* Empty, live writer: -EAGAIN; then the writer publishes and we read. */
	start(&s, geo(0, 1, FZ_CAP_FULL, 0, 0), state(FZ_WS_OPEN, 0, FZ_BASE_ZERO, 0), 0);
	u16(&s, 0);
	op_read(&s, SZ_9_OR_RECMAX);
	op_peek(&s, FZ_PC_ALL, 0);
	op_stats(&s);
	op_commit(&s, 0, 10);
	op_read(&s, SZ_8);
	op_read(&s, SZ_15);
	op_peek(&s, FZ_PC_ALL, 0);
	op_stats(&s);
	emit("stream-empty", &s);

	/* 500 bytes in a ring of 1001, mixed reads, peeks and writes. */
	start(&s, geo(0, 1, FZ_CAP_LAST_PAGE, 0, 0), state(FZ_WS_OPEN, 0, FZ_BASE_U16, 0), 0);
	u16(&s, 1000); /* capacity 1001 with 4096-byte pages */
	u16(&s, 100);  /* read_index */
	u16(&s, 500);
	op_read(&s, SZ_7);
	op_read(&s, SZ_63);
	op_peek(&s, FZ_PC_PARTIAL, 10);
	op_peek(&s, FZ_PC_NONE, 0);
	op_peek(&s, FZ_PC_ALL, 0);
	op_read(&s, SZ_1000);
	op_stats(&s);
	op_commit(&s, 0, 700);
	op_peek(&s, FZ_PC_TWICE, 0);
	op_args(&s);
	op_commit(&s, 0, 200);
	op_consume(&s, 5);
	op_peek(&s, FZ_PC_MORE, 0);
	op_peek(&s, FZ_PC_ZERO, 0);
	drain(&s);
	emit("stream-data", &s);

	/* A full ring of two pages: the writer finds no room, the reader all. */
	start(&s, geo(0, 2, FZ_CAP_FULL, 0, 0), state(FZ_WS_OPEN, 0, FZ_BASE_ZERO, FZ_FILL_FULL),
	      0);
	u16(&s, 0);
	op_commit(&s, 0, 1);
	op_stats(&s);
	op_read(&s, SZ_CAP_1);
	op_peek(&s, FZ_PC_TWICE, 0);
	op_commit(&s, 0, 8000);
	op_read(&s, SZ_CAP1);
	op_read(&s, SZ_CAP);
	emit("stream-full", &s);

	/* Data that wraps around the end of the region: one span for peek. */
	start(&s, geo(0, 1, FZ_CAP_FULL, 0, 0), state(FZ_WS_OPEN, 0, FZ_BASE_U16, 0), 0);
	u16(&s, 4000);
	u16(&s, 300);
	op_peek(&s, FZ_PC_PARTIAL, 150);
	op_peek(&s, FZ_PC_ALL, 0);
	op_commit(&s, 0, 3000);
	op_commit(&s, 0, 2000);
	op_read(&s, SZ_PAGE_1);
	op_read(&s, SZ_64K);
	emit("stream-wrapped", &s);

	/* The writer closed after 100 bytes: the data, then 0, and 0 again. */
	start(&s, geo(0, 1, FZ_CAP_FULL, 0, 0), state(FZ_WS_CLOSED, 0, FZ_BASE_ZERO, 0), 0);
	u16(&s, 100);
	op_read(&s, SZ_63);
	op_peek(&s, FZ_PC_ALL, 0);
	op_read(&s, SZ_64K);
	op_peek(&s, FZ_PC_ALL, 0);
	op_consume(&s, 0);
	emit("stream-closed", &s);

	/* Three pages, capacity one short, positions far into the stream. */
	start(&s, geo(0, 3, FZ_CAP_MINUS_1, 0, 0), state(FZ_WS_OPEN, 0, FZ_BASE_U16, 0), 0);
	u16(&s, 60000);
	u16(&s, 9000);
	op_read(&s, SZ_PAGE_1);
	op_commit(&s, 0, 5000);
	op_peek(&s, FZ_PC_PARTIAL, 99);
	op_read(&s, SZ_CAP);
	op_commit(&s, 0, 12000);
	op_commit(&s, 0, 100);
	drain(&s);
	emit("stream-odd-capacity", &s);

	/*
	 * Counters near 2^64: the writer crosses it. No writer gets there
	 * (it is 16 EiB), so -EPROTO is allowed; a fault is not.
	 */
	start(&s, geo(0, 1, FZ_CAP_FULL, 0, 0), state(FZ_WS_OPEN, 0, FZ_BASE_WRAP, 0), 0);
	u16(&s, 1000);
	u16(&s, 100);
	op_read(&s, SZ_63);
	op_commit(&s, 0, 2000);
	op_read(&s, SZ_64K);
	op_read(&s, SZ_64K);
	op_stats(&s);
	emit("stream-near-2-64", &s);

	/* A writer that died: its data, then -EAGAIN, then -ECONNRESET. */
	start(&s, geo(0, 1, FZ_CAP_FULL, 0, 0), state(FZ_WS_DEAD, 0, FZ_BASE_ZERO, 0), 0);
	u16(&s, 64);
	op_read(&s, SZ_64K);
	op_read(&s, SZ_64K);
	op_timeout(&s, 1);
	op_read(&s, SZ_64K);
	op_peek(&s, FZ_PC_ALL, 0);
	emit("stream-writer-dead", &s);

	/* No writer yet: -EAGAIN, -ETIMEDOUT; it comes, writes, dies. */
	start(&s, geo(0, 1, FZ_CAP_HALF, 0, 0), state(FZ_WS_ABSENT, 0, FZ_BASE_ZERO, 0), 0);
	u16(&s, 0);
	op_read(&s, SZ_8);
	op_timeout(&s, 1);
	op_peek(&s, FZ_PC_ALL, 0);
	op_wstate(&s, 0 | 4); /* open, and takes its lock */
	op_commit(&s, 0, 20);
	op_read(&s, SZ_16);
	op_read(&s, SZ_16);
	op_wstate(&s, 0 | 4); /* still open, but the lock is gone: dead */
	op_read(&s, SZ_16);
	emit("stream-writer-late", &s);

	/* A hostile writer moves write_index everywhere between reads. */
	start(&s, geo(0, 2, FZ_CAP_FULL, 0, 0), state(FZ_WS_OPEN, 0, FZ_BASE_U16, 0), 0);
	u16(&s, 7000);
	u16(&s, 2000);
	op_read(&s, SZ_1000);
	op_windex(&s, FZ_WI_BACK, 5);
	op_read(&s, SZ_64K);
	op_windex(&s, FZ_WI_EMPTY, 0);
	op_windex(&s, FZ_WI_FULL, 0);
	op_peek(&s, FZ_PC_PARTIAL, 200);
	op_windex(&s, FZ_WI_OVER, 0);
	op_read(&s, SZ_64K);
	op_windex(&s, FZ_WI_BEHIND, 0);
	op_read(&s, SZ_1);
	op_windex(&s, FZ_WI_MAX, 0);
	op_peek(&s, FZ_PC_ALL, 0);
	op_windex(&s, FZ_WI_RAW, 0x8000000000000000ull);
	op_read(&s, SZ_1);
	op_windex(&s, FZ_WI_DELTA, 0x7f);
	op_stats(&s);
	emit("stream-hostile-index", &s);

	/*
	 * After attach the header's identity and the reader's own fields are
	 * scribbled on: the reader read them once and must go on unaffected
	 * (no -EPROTO: this seed is not "hostile" to the harness).
	 */
	start(&s, geo(0, 4, FZ_CAP_HALF, 0, 0), state(FZ_WS_OPEN, 0, FZ_BASE_U16, 0), 0);
	u16(&s, 16000);
	u16(&s, 10000);
	for (unsigned field = 0; field < FZ_HF_COUNT; field++) {
		op_header(&s, field, 0x0123456789abcdefull * (field + 1));
		op_read(&s, SZ_1000);
		op_commit(&s, 0, 900);
	}
	op_scribble(&s, 100, 200);
	op_timeout(&s, 1);
	drain(&s);
	emit("stream-header-scribbled", &s);
}

static void record_seeds(void)
{
	struct seed s;

	/* Six records: small buffers get -EMSGSIZE and the record stays. */
	start(&s, geo(1, 2, FZ_CAP_FULL, 0, 0), state(FZ_WS_OPEN, 0, FZ_BASE_ZERO, 0), 0);
	u8(&s, 6);
	u8(&s, 1);
	u8(&s, 7);
	u8(&s, 8);
	u8(&s, 9);
	u8(&s, 100);
	u8(&s, 0x80);
	u16(&s, 3000);
	op_read(&s, SZ_1);
	op_read(&s, SZ_1);
	op_read(&s, SZ_7);
	op_peek(&s, FZ_PC_MORE, 0);
	op_peek(&s, FZ_PC_PARTIAL, 3);
	op_peek(&s, FZ_PC_ALL, 0);
	op_read(&s, SZ_8);
	op_read(&s, SZ_100);
	op_read(&s, SZ_63);
	op_stats(&s);
	op_read(&s, SZ_64K);
	op_read(&s, SZ_64K);
	op_commit(&s, 0, 33);
	op_peek(&s, FZ_PC_TWICE, 0);
	op_stats(&s);
	emit("records-several", &s);

	/* Records whose frame or payload straddles the end of the region. */
	start(&s, geo(1, 1, FZ_CAP_FULL, 0, 0), state(FZ_WS_OPEN, 0, FZ_BASE_U16, 0), 0);
	u16(&s, 4000);
	u8(&s, 3);
	u8(&s, 50);
	u8(&s, 60);
	u8(&s, 70);
	op_peek(&s, FZ_PC_ALL, 0);
	op_peek(&s, FZ_PC_ALL, 0);
	op_peek(&s, FZ_PC_NONE, 0);
	op_read(&s, SZ_100);
	op_commit(&s, 0, 4000);
	op_commit(&s, 0, 10);
	op_read(&s, SZ_64K);
	op_read(&s, SZ_64K);
	emit("records-wrapped", &s);

	/* The largest record of a one-page ring (4088 with 4096-byte pages). */
	start(&s, geo(1, 1, FZ_CAP_FULL, 0, 0), state(FZ_WS_OPEN, 0, FZ_BASE_ZERO, 0), 0);
	u8(&s, 1);
	u8(&s, 0x80);
	u16(&s, 4088);
	op_read(&s, SZ_17_OR_RECMAX_1);
	op_read(&s, SZ_9_OR_RECMAX);
	op_commit(&s, 0, 4088);
	op_commit(&s, 0, 1);
	op_peek(&s, FZ_PC_ALL, 0);
	op_commit(&s, FZ_WC_IGNORE_ROOM, 100); /* past the capacity */
	op_read(&s, SZ_64K);
	emit("records-max", &s);

	/* The smallest record ring: capacity 16, one 8-byte record at a time. */
	start(&s, geo(1, 1, FZ_CAP_16, 0, 0), state(FZ_WS_OPEN, 0, FZ_BASE_ZERO, 0), 0);
	u8(&s, 1);
	u8(&s, 8);
	op_read(&s, SZ_7);
	op_commit(&s, 0, 1);
	op_read(&s, SZ_8);
	op_commit(&s, 0, 8);
	op_commit(&s, 0, 1);
	op_peek(&s, FZ_PC_ALL, 0);
	op_read(&s, SZ_CAP);
	emit("records-capacity-16", &s);

	/* A full ring of 13- and 200-byte records, closed: all, then 0. */
	start(&s, geo(1, 1, FZ_CAP_ALIGNED, 0, 0),
	      state(FZ_WS_CLOSED, 0, FZ_BASE_U16, FZ_FILL_FULL), 0);
	u8(&s, 10);   /* capacity 4096 - 80 */
	u16(&s, 777); /* read_index, aligned down to 776 */
	u8(&s, 2);
	u8(&s, 13);
	u8(&s, 200);
	for (int i = 0; i < 40; i++)
		op_read(&s, i % 3 ? SZ_1000 : SZ_63);
	op_peek(&s, FZ_PC_ALL, 0);
	emit("records-full-closed", &s);

	/* An empty record (the library never writes one) and one too long. */
	start(&s, geo(1, 1, FZ_CAP_FULL, 0, 0), state(FZ_WS_OPEN, 0, FZ_BASE_ZERO, 0), 0);
	u8(&s, 3);
	u8(&s, 5);
	u8(&s, 0);
	u8(&s, 0xff);
	u64(&s, 0xffffffffffffff00ull);
	op_read(&s, SZ_8);
	op_read(&s, SZ_8);
	op_peek(&s, FZ_PC_ALL, 0);
	op_read(&s, SZ_64K);
	emit("records-bad-length", &s);

	/* Valid records, then every hostile length in front of the reader. */
	start(&s, geo(1, 2, FZ_CAP_LAST_PAGE, 0, 0), state(FZ_WS_OPEN, 0, FZ_BASE_ZERO, 0), 0);
	u16(&s, 3333);
	u8(&s, 15);
	for (int i = 0; i < 15; i++)
		u8(&s, 17 * i + 1);
	for (unsigned mode = 0; mode < FZ_RL_COUNT; mode++) {
		op_read(&s, SZ_63);
		op_reclen(&s, mode, 0x1234567);
		op_read(&s, SZ_64K);
		op_peek(&s, FZ_PC_ALL, 0);
		op_commit(&s, 0, 300);
	}
	op_scribble(&s, 0, 255);
	op_read(&s, SZ_64K);
	emit("records-hostile-length", &s);

	/* A dead writer's records: all delivered, then -ECONNRESET. */
	start(&s, geo(1, 1, FZ_CAP_FULL, 0, 0), state(FZ_WS_DEAD, 0, FZ_BASE_ZERO, 0), 0);
	u8(&s, 2);
	u8(&s, 40);
	u8(&s, 41);
	op_timeout(&s, 1);
	op_read(&s, SZ_64K);
	op_read(&s, SZ_64K);
	op_read(&s, SZ_64K);
	op_wstate(&s, 1); /* a clean close after all: end of stream */
	op_read(&s, SZ_64K);
	emit("records-writer-dead", &s);
}

static void refused_seeds(void)
{
	struct seed s;

	/* Each header check, failed on its own; the pipe is otherwise valid. */
#define REFUSED(name, mask, ...)                                                                   \
	do {                                                                                       \
		start(&s, geo(0, 1, FZ_CAP_FULL, 0, 1), state(FZ_WS_OPEN, 0, 0, 0), mask);         \
		u16(&s, 10);                                                                       \
		__VA_ARGS__;                                                                       \
		op_read(&s, SZ_64K);                                                               \
		emit(name, &s);                                                                    \
	} while (0)

	REFUSED("bad-magic", FZ_C_MAGIC, u8(&s, 1), u8(&s, 17));
	REFUSED("bad-version", FZ_C_VERSION, u8(&s, 1), u8(&s, 1));
	REFUSED("bad-header-size", FZ_C_HEADER_SIZE, u8(&s, 0), u32(&s, 8192));
	REFUSED("bad-capacity", FZ_C_CAPACITY, u8(&s, 1), u8(&s, 8));
	REFUSED("bad-data-size", FZ_C_DATA_SIZE, u8(&s, 1), u8(&s, 0xff));
	REFUSED("bad-flags", FZ_C_FLAGS, u8(&s, 0), u32(&s, 2));
	REFUSED("file-short", FZ_C_FILE_SIZE, u8(&s, 1), u16(&s, 0xffff));
	REFUSED("file-long", FZ_C_FILE_SIZE, u8(&s, 1), u16(&s, 4096));
	/* Smaller than a page: an object whose creator is not done (200 ms). */
	REFUSED("file-tiny", FZ_C_FILE_SIZE, u8(&s, 0), u32(&s, 100));
	REFUSED("bad-states", FZ_C_STATES, u32(&s, 7), u32(&s, 9));
#undef REFUSED

	/* The read end is held by a live reader, or was given up: -EBUSY. */
	start(&s, geo(0, 1, FZ_CAP_FULL, 0, 0), state(FZ_WS_OPEN, FZ_RS_OPEN, 0, 0), 0);
	u16(&s, 10);
	op_read(&s, SZ_64K);
	emit("reader-taken", &s);
	start(&s, geo(1, 1, FZ_CAP_FULL, 0, 0), state(FZ_WS_CLOSED, FZ_RS_CLOSED, 0, 0), 0);
	u8(&s, 0);
	op_read(&s, SZ_64K);
	emit("reader-given-up", &s);

	/* A record ring too small for a record, and indices that cannot be. */
	start(&s, geo(1, 1, FZ_CAP_TINY, 0, 0), state(FZ_WS_OPEN, 0, 0, 0), 0);
	u8(&s, 10);
	u8(&s, 0);
	emit("records-capacity-11", &s);
	start(&s, geo(0, 1, FZ_CAP_FULL, 0, 0), state(FZ_WS_OPEN, 0, FZ_BASE_U16, FZ_FILL_RAW), 0);
	u16(&s, 5000);
	u16(&s, 0);
	u64(&s, 100); /* write_index behind read_index */
	op_read(&s, SZ_64K);
	emit("index-behind", &s);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s <corpus directory>\n", argv[0]);
		return 1;
	}
	outdir = argv[1];
	stream_seeds();
	record_seeds();
	refused_seeds();
	return failed;
}
