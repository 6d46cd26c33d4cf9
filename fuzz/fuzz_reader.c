/* SPDX-License-Identifier: MIT */
/*
 * Description: libFuzzer harness for the read end of a pipe whose shared
 * object was made by someone we do not trust.
 *
 * The spec says the peer is untrusted: a corrupt header gives an error, never
 * an out-of-bounds access. This harness is that peer. From each input it
 * builds a shared object (a memfd) described by fuzz_input.h: a header that
 * is valid unless the input corrupts a field, a data region holding stream
 * bytes or framed records, and the writer's liveness lock when the writer is
 * meant to be alive. It attaches with shmpipe_reader_open_fd and then runs a
 * bounded program of reads, peeks, consumes and stats on the read end,
 * interleaved with what a writer does through its own mapping: publishing
 * more data honestly, or moving write_index, the writer's state and record
 * lengths where no honest writer would.
 *
 * Everything the library returns is checked against a model of the pipe
 * kept here, not only for crashes: a call returns a value >= 0 or an error
 * its contract names; bytes read or peeked are the bytes at the reader's
 * position, never more than were published; -EAGAIN, -ECONNRESET, 0 (end of
 * stream) and -EMSGSIZE only when the header says so; -EPROTO only when this
 * harness broke something; consume accepts exactly what the last peek
 * showed. A violation prints what happened and calls abort(), which
 * libFuzzer (and replay.c) report as a crash. ASan and UBSan watch the
 * copies; peeked spans are read in full so that a span reaching outside the
 * ring faults here rather than somewhere later.
 *
 * Built two ways (see CMakeLists.txt): with -fsanitize=fuzzer for fuzzing,
 * and with replay.c for replaying the corpus under any compiler.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shmpipe.h"
#include "layout.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the harness knows about the pipe, and what it believes the reader did. */
struct fz {
	uint64_t page;
	int fd;	      /* our memfd, closed as soon as the reader holds its own */
	int wlock_fd; /* our description holding the writer's liveness lock, or -1 */
	int rlock_fd; /* one holding the reader's lock (a live rival reader), or -1 */
	bool hostile; /* the input broke the protocol: -EPROTO is allowed */
	struct fz_rng rng;

	/* After a successful open. */
	shmpipe_reader *r;
	uint8_t *view; /* our own mapping of the whole object */
	size_t view_len;
	struct shmpipe__hdr *h;
	uint8_t *data; /* the data region in our mapping (mapped once, not mirrored) */
	uint64_t dsize;
	uint64_t cap;
	bool records;
	uint64_t rpos;	   /* where the reader must be: bytes it has released */
	uint64_t maxavail; /* most bytes it may still release, from what was published */
	uint64_t lent;	   /* what the last peek showed and consume may release */
	bool lent_known;   /* false after calls whose effect on it is unspecified */
	uint64_t consumed; /* reads and consumes that released something */
	bool ended;	   /* a read or peek returned end of stream: every later one must */
	int timeout_ms;
	uint8_t *scratch; /* dsize bytes: the expected contents of a span */
};

static int verbose = -1;

__attribute__((format(printf, 3, 4))) static _Noreturn void fz_fail(int line, const char *cond,
								    const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz_reader.c:%d: %s%s", line, cond ? cond : "", cond ? ": " : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* SHMPIPE_FUZZ_VERBOSE: what each call returned, for reading a seed or a crash. */
__attribute__((format(printf, 1, 2))) static void trace(const char *fmt, ...)
{
	va_list ap;

	if (verbose <= 0)
		return;
	va_start(ap, fmt);
	fputs("  ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

#define FZ_CHECK(cond, ...)                                                                        \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fz_fail(__LINE__, "check failed: " #cond, __VA_ARGS__);                    \
	} while (0)

/* ---- the data region, addressed by free-running positions -------------- */

static void ring_put(uint8_t *data, uint64_t dsize, uint64_t pos, const void *src, uint64_t n)
{
	uint64_t off = pos % dsize;
	uint64_t first = n < dsize - off ? n : dsize - off;

	memcpy(data + off, src, first);
	memcpy(data, (const uint8_t *)src + first, n - first);
}

static void ring_get(const uint8_t *data, uint64_t dsize, uint64_t pos, void *dst, uint64_t n)
{
	uint64_t off = pos % dsize;
	uint64_t first = n < dsize - off ? n : dsize - off;

	memcpy(dst, data + off, first);
	memcpy((uint8_t *)dst + first, data, n - first);
}

/* Fills n bytes at pos with generated junk; n <= dsize. */
static void ring_junk(struct fz_rng *g, uint8_t *data, uint64_t dsize, uint64_t pos, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		data[(pos + i) % dsize] = fz_rng_byte(g);
}

static void ring_put_u64(uint8_t *data, uint64_t dsize, uint64_t pos, uint64_t v)
{
	/* Native order, as the library frames records. */
	ring_put(data, dsize, pos, &v, sizeof(v));
}

static uint64_t ring_get_u64(const uint8_t *data, uint64_t dsize, uint64_t pos)
{
	uint64_t v;

	ring_get(data, dsize, pos, &v, sizeof(v));
	return v;
}

static uint64_t record_space(uint64_t len)
{
	return SHMPIPE_RECORD_SPACE(len);
}

/* ---- building the object ---------------------------------------------- */

/* The capacity the input asks for, given a data region of dsize bytes. */
static uint64_t choose_capacity(struct fz_in *in, unsigned mode, uint64_t dsize, uint64_t page)
{
	switch (mode) {
	case FZ_CAP_LAST_PAGE:
		return dsize - page + 1 + fz_u16(in) % page;
	case FZ_CAP_PAGE_PLUS:
		return dsize - page + 1;
	case FZ_CAP_16:
		return 16;
	case FZ_CAP_TINY:
		return 1 + (uint64_t)fz_u8(in);
	case FZ_CAP_ALIGNED:
		return dsize - 8 * (fz_u8(in) % (page / 8));
	case FZ_CAP_MINUS_1:
		return dsize - 1;
	case FZ_CAP_HALF:
		return dsize - page / 2;
	default:
		return dsize;
	}
}

/*
 * Lays out what the writer published from pos on, and returns how many ring
 * bytes it takes. Stream mode: generated bytes. Record mode: frames and
 * payloads, as the library's writer lays them out.
 */
static uint64_t lay_content(struct fz *f, struct fz_in *in, uint8_t *data, uint64_t dsize,
			    uint64_t cap, bool records, uint64_t pos, bool full)
{
	uint64_t lens[16], fill = 0;
	unsigned count;
	bool raw_last = false;

	if (!records) {
		uint64_t n = fz_u16(in) % (cap + 1);

		n = full ? cap : n;
		ring_junk(&f->rng, data, dsize, pos, n);
		return n;
	}
	count = fz_u8(in) % 16;
	for (unsigned i = 0; i < count; i++) {
		uint8_t sel = fz_u8(in);

		if (sel < 0x80) {
			lens[i] = sel;
		} else if (sel < 0xff) {
			lens[i] = fz_u16(in);
		} else {
			lens[i] = fz_u64(in);
			raw_last = true;
			count = i + 1;
			break;
		}
	}
	if (count == 0 && full) {
		lens[0] = 1;
		count = 1;
	}
	for (unsigned i = 0; count > 0;) {
		uint64_t len = lens[i];

		if (raw_last && i == count - 1) {
			/* A frame whose length nobody checked: published alone. */
			if (fill + 8 <= cap) {
				ring_put_u64(data, dsize, pos + fill, len);
				fill += 8;
			}
			f->hostile = true;
			break;
		}
		if (fill + record_space(len) > cap)
			break;
		if (len == 0)
			f->hostile = true; /* the library never writes an empty record */
		ring_put_u64(data, dsize, pos + fill, len);
		ring_junk(&f->rng, data, dsize, pos + fill + 8, record_space(len) - 8);
		fill += record_space(len);
		if (++i == count) {
			if (!full)
				break;
			i = 0;
		}
	}
	return fill;
}

static int64_t sext8(uint8_t v)
{
	return (int8_t)v;
}

/*
 * Applies the corruptions the input asks for. Each field gets a raw value or
 * its valid value nudged, which is what makes the checks at attach reachable
 * one by one.
 */
static void corrupt(struct fz *f, struct fz_in *in, struct shmpipe__hdr *h, uint8_t mask,
		    uint64_t *fsize)
{
	if (mask)
		f->hostile = true;
	if (mask & FZ_C_MAGIC) {
		uint8_t m = fz_u8(in);

		h->magic = (m & 1) ? h->magic ^ ((uint64_t)1 << (fz_u8(in) % 64)) : fz_u64(in);
	}
	if (mask & FZ_C_VERSION) {
		uint8_t m = fz_u8(in);

		h->version = (m & 1) ? (uint32_t)(h->version + sext8(fz_u8(in))) : fz_u32(in);
	}
	if (mask & FZ_C_HEADER_SIZE) {
		uint8_t m = fz_u8(in);

		h->header_size =
		    (m & 1) ? (uint32_t)(h->header_size + sext8(fz_u8(in))) : fz_u32(in);
	}
	if (mask & FZ_C_CAPACITY) {
		uint8_t m = fz_u8(in);

		h->capacity = (m & 1) ? h->capacity + (uint64_t)sext8(fz_u8(in)) : fz_u64(in);
	}
	if (mask & FZ_C_DATA_SIZE) {
		uint8_t m = fz_u8(in);

		h->data_size = (m & 1) ? h->data_size + (uint64_t)sext8(fz_u8(in)) : fz_u64(in);
	}
	if (mask & FZ_C_FLAGS) {
		uint8_t m = fz_u8(in);

		h->flags = (m & 1) ? (uint32_t)(h->flags + sext8(fz_u8(in))) : fz_u32(in);
	}
	if (mask & FZ_C_FILE_SIZE) {
		uint8_t m = fz_u8(in);

		if (m & 1)
			*fsize += (uint64_t)(int64_t)(int16_t)fz_u16(in);
		else
			*fsize = fz_u32(in) % FZ_MAX_FILE;
		if (*fsize >= FZ_MAX_FILE) /* a negative nudge of a small size */
			*fsize = 0;
	}
	if (mask & FZ_C_STATES) {
		atomic_store_explicit(&h->writer_state, fz_u32(in), memory_order_relaxed);
		atomic_store_explicit(&h->reader_state, fz_u32(in), memory_order_relaxed);
	}
}

/* Whether a header and object size must be refused at attach. */
static bool must_refuse(const struct shmpipe__hdr *h, uint64_t fsize, uint64_t page)
{
	uint64_t hs = h->header_size, ds = h->data_size, cap = h->capacity;

	uint32_t rs = atomic_load_explicit(&h->reader_state, memory_order_relaxed);

	/*
	 * A reader end that says OPEN is taken again, on a SHMPIPE_REOPEN
	 * pipe, when its lock is free (a dead reader's); held, it is -EBUSY.
	 */
	return h->magic != SHMPIPE__MAGIC || h->version != SHMPIPE__LAYOUT_VERSION ||
	       hs < sizeof(struct shmpipe__hdr) || hs % page != 0 || cap == 0 ||
	       cap > SHMPIPE_MAX_CAPACITY || ds == 0 || ds % page != 0 || cap > ds ||
	       (h->flags & ~(SHMPIPE_RECORDS | SHMPIPE_REOPEN)) != 0 ||
	       ((h->flags & SHMPIPE_RECORDS) && cap < 16) || ds > fsize || hs != fsize - ds ||
	       (rs != SHMPIPE__END_ABSENT &&
		!((h->flags & SHMPIPE_REOPEN) && rs == SHMPIPE__END_OPEN));
}

/*
 * Takes an exclusive OFD lock on one byte of the object through a new open
 * file description, as a live end does (layout.h); returns the descriptor
 * that holds it. Closing it is that end's death.
 */
static int take_lock(int fd, unsigned byte)
{
	char path[64];
	struct flock fl;
	int lfd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	lfd = open(path, O_RDWR | O_CLOEXEC);
	FZ_CHECK(lfd >= 0, "open %s: %s", path, strerror(errno));
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = byte;
	fl.l_len = 1;
	FZ_CHECK(fcntl(lfd, F_OFD_SETLK, &fl) == 0, "lock byte %u: %s", byte, strerror(errno));
	return lfd;
}

static void drop_lock(int *lfd)
{
	if (*lfd >= 0)
		close(*lfd);
	*lfd = -1;
}

/* ---- the model's checks ------------------------------------------------- */

static uint64_t hdr_windex(const struct fz *f)
{
	return atomic_load(&f->h->write_index);
}

static uint32_t hdr_wstate(const struct fz *f)
{
	return atomic_load(&f->h->writer_state);
}

static uint64_t record_max(const struct fz *f)
{
	return SHMPIPE_RECORD_MAX(f->cap);
}

/* The writer publishes v; the reader may later take up to v - rpos bytes. */
static void set_windex(struct fz *f, uint64_t v)
{
	uint64_t ahead = v - f->rpos;

	atomic_store(&f->h->write_index, v);
	/* A position behind the reader gives it nothing, ever. */
	if (ahead < ((uint64_t)1 << 63) && ahead > f->maxavail)
		f->maxavail = ahead;
}

/* The reader released k ring bytes: never more than any writer published. */
static void take(struct fz *f, uint64_t k)
{
	FZ_CHECK(k <= f->maxavail,
		 "released %" PRIu64 " bytes at %" PRIu64 ", at most %" PRIu64
		 " were ever published",
		 k, f->rpos, f->maxavail);
	f->maxavail -= k;
	f->rpos += k;
	f->consumed++;
}

/* The n bytes at got are those at position pos of the ring. */
static void expect_span(struct fz *f, uint64_t pos, const uint8_t *got, uint64_t n,
			const char *call)
{
	FZ_CHECK(n <= f->dsize, "%s: %" PRIu64 " bytes from a ring of %" PRIu64, call, n, f->dsize);
	ring_get(f->data, f->dsize, pos, f->scratch, n);
	for (uint64_t i = 0; i < n; i++)
		FZ_CHECK(got[i] == f->scratch[i],
			 "%s: byte %" PRIu64 " of %" PRIu64 " at position %" PRIu64
			 " is %#x, the ring has %#x",
			 call, i, n, pos + i, got[i], f->scratch[i]);
}

/*
 * What a read or peek that returned n > 0 must have seen: a record (frame
 * length n, payload after it) or stream bytes, at the reader's position.
 */
static void check_data(struct fz *f, const uint8_t *got, uint64_t n, const char *call)
{
	FZ_CHECK(n <= f->cap, "%s returned %" PRIu64 ", capacity %" PRIu64, call, n, f->cap);
	if (f->records) {
		uint64_t flen = ring_get_u64(f->data, f->dsize, f->rpos);

		FZ_CHECK(flen == n, "%s returned %" PRIu64 " for a frame of %" PRIu64, call, n,
			 flen);
		FZ_CHECK(n <= record_max(f), "%s: record of %" PRIu64 ", largest %" PRIu64, call, n,
			 record_max(f));
		FZ_CHECK(record_space(n) <= f->maxavail,
			 "%s: record of %" PRIu64 " with %" PRIu64 " bytes published", call, n,
			 f->maxavail);
		expect_span(f, f->rpos + 8, got, n, call);
	} else {
		FZ_CHECK(n <= f->maxavail, "%s: %" PRIu64 " bytes with %" PRIu64 " published", call,
			 n, f->maxavail);
		expect_span(f, f->rpos, got, n, call);
	}
}

/*
 * A read or peek that returned 0 or an error: each has one cause the header
 * must show. Shared by both; emsgsize_len is the read's buffer size, or 0
 * for peek (which never returns -EMSGSIZE).
 */
static void check_status(struct fz *f, ssize_t ret, size_t emsgsize_len, const char *call)
{
	uint64_t w = hdr_windex(f);
	uint32_t ws = hdr_wstate(f);

	switch (ret) {
	case 0:
		/*
		 * End of stream: the writer closed and everything was read. It
		 * is for good: what is published after it is never read.
		 */
		FZ_CHECK(f->ended || (ws == SHMPIPE__END_CLOSED && w == f->rpos),
			 "%s: end of stream with writer_state %" PRIu32 ", write_index %" PRIu64
			 ", reader at %" PRIu64,
			 call, ws, w, f->rpos);
		f->ended = true;
		break;
	case -EAGAIN:
	case -ETIMEDOUT:
		/* No data, and a writer that may still send some. */
		FZ_CHECK((ret == -EAGAIN) == (f->timeout_ms == 0), "%s: %zd with timeout %d", call,
			 ret, f->timeout_ms);
		FZ_CHECK(w == f->rpos && ws != SHMPIPE__END_CLOSED && ws != SHMPIPE__END_ABORTED,
			 "%s: %s with writer_state %" PRIu32 ", write_index %" PRIu64
			 ", reader at %" PRIu64,
			 call, shmpipe_strerror((int)ret), ws, w, f->rpos);
		break;
	case -EINTR:
		/* libFuzzer's timer signal may cut a timed wait (poll(2)) short. */
		FZ_CHECK(f->timeout_ms > 0, "%s: -EINTR with timeout %d", call, f->timeout_ms);
		break;
	case -ECONNRESET:
		/*
		 * The writer died (its state says open, nobody holds its lock)
		 * or aborted, and everything was read.
		 */
		FZ_CHECK(
		    ((ws == SHMPIPE__END_OPEN && f->wlock_fd < 0) || ws == SHMPIPE__END_ABORTED) &&
			w == f->rpos,
		    "%s: -ECONNRESET with writer_state %" PRIu32 ", lock %s, write_index %" PRIu64
		    ", reader at %" PRIu64,
		    call, ws, f->wlock_fd < 0 ? "free" : "held", w, f->rpos);
		break;
	case -EMSGSIZE: {
		uint64_t flen = ring_get_u64(f->data, f->dsize, f->rpos);

		FZ_CHECK(f->records && emsgsize_len > 0, "%s: -EMSGSIZE in stream mode", call);
		FZ_CHECK(flen > emsgsize_len && flen <= record_max(f) &&
			     record_space(flen) <= f->maxavail,
			 "%s: -EMSGSIZE for a frame of %" PRIu64 " and a buffer of %zu", call, flen,
			 emsgsize_len);
		break;
	}
	case -EPROTO:
	case -EBADMSG:
		FZ_CHECK(f->hostile,
			 "%s: %s from a pipe nobody corrupted (reader at %" PRIu64
			 ", write_index %" PRIu64 ")",
			 call, shmpipe_strerror((int)ret), f->rpos, w);
		break;
	default:
		fz_fail(__LINE__, NULL, "%s returned %zd (%s), not in its contract", call, ret,
			shmpipe_strerror((int)ret));
	}
}

/* ---- operations on the read end ---------------------------------------- */

static size_t read_size(const struct fz *f, uint8_t s)
{
	const size_t sizes[16] = {
	    0,
	    1,
	    7,
	    8,
	    f->records ? (size_t)record_max(f) : 9,
	    15,
	    16,
	    f->records ? (size_t)record_max(f) - 1 : 17,
	    63,
	    100,
	    1000,
	    (size_t)f->page - 1,
	    (size_t)f->cap - 1,
	    (size_t)f->cap,
	    (size_t)f->cap + 1,
	    65536,
	};

	return sizes[s % 16];
}

static void op_read(struct fz *f, struct fz_in *in)
{
	size_t len = read_size(f, fz_u8(in));
	uint8_t *buf = malloc(len ? len : 1);
	ssize_t ret;

	FZ_CHECK(buf != NULL, "malloc(%zu)", len);
	/* A canary: what the read does not return it must not touch. */
	memset(buf, 0xa5, len);
	ret = shmpipe_read(f->r, buf, len);
	trace("read(%zu) at %" PRIu64 ": %zd (%s)", len, f->rpos, ret, shmpipe_strerror((int)ret));
	FZ_CHECK(!f->ended || ret == 0, "read after end of stream returned %zd", ret);
	if (ret > 0) {
		FZ_CHECK((size_t)ret <= len, "read of %zu returned %zd", len, ret);
		check_data(f, buf, (uint64_t)ret, "read");
		take(f, f->records ? record_space((uint64_t)ret) : (uint64_t)ret);
		for (size_t i = (size_t)ret; i < len; i++)
			FZ_CHECK(buf[i] == 0xa5, "read of %zd wrote byte %zu", ret, i);
	} else {
		if (ret < 0 || len > 0)
			check_status(f, ret, len, "read");
		for (size_t i = 0; i < len; i++)
			FZ_CHECK(buf[i] == 0xa5, "read returning %zd wrote byte %zu", ret, i);
	}
	/* A read ends what a peek showed; one of 0 bytes does nothing at all. */
	f->lent = 0;
	f->lent_known = len > 0;
	free(buf);
}

static void do_consume(struct fz *f, uint64_t len)
{
	int ret = shmpipe_consume(f->r, len);

	trace("consume(%" PRIu64 ") at %" PRIu64 ": %d", len, f->rpos, ret);

	if (f->lent_known) {
		bool ok = len <= f->lent && (!f->records || len == 0 || len == f->lent);

		FZ_CHECK(ret == (ok ? 0 : -EINVAL),
			 "consume(%" PRIu64 ") after a peek of %" PRIu64 " returned %d", len,
			 f->lent, ret);
	} else {
		FZ_CHECK(ret == 0 || ret == -EINVAL, "consume(%" PRIu64 ") returned %d", len, ret);
	}
	if (ret < 0 || len == 0)
		return;
	take(f, f->records ? record_space(len) : len);
	if (f->records)
		f->lent = 0;
	else if (f->lent_known)
		f->lent -= len;
}

static void op_peek(struct fz *f, struct fz_in *in)
{
	uint8_t action = fz_u8(in) % FZ_PC_COUNT, part = fz_u8(in);
	const void *p = &p; /* not NULL: peek must set it */
	volatile uint64_t sum = 0;
	ssize_t ret;

	ret = shmpipe_peek(f->r, &p);
	trace("peek at %" PRIu64 ": %zd (%s)", f->rpos, ret, shmpipe_strerror((int)ret));
	FZ_CHECK(!f->ended || ret == 0, "peek after end of stream returned %zd", ret);
	f->lent = 0;
	f->lent_known = true;
	if (ret <= 0) {
		FZ_CHECK(ret < 0 || p == NULL, "peek returned 0 and a pointer");
		check_status(f, ret, 0, "peek");
		return;
	}
	FZ_CHECK(p != NULL, "peek returned %zd and NULL", ret);
	/* Every byte of the span, so that one reaching outside the ring faults. */
	for (ssize_t i = 0; i < ret; i++)
		sum += ((const uint8_t *)p)[i];
	(void)sum;
	check_data(f, p, (uint64_t)ret, "peek");
	f->lent = (uint64_t)ret;
	switch (action) {
	case FZ_PC_ALL:
		do_consume(f, (uint64_t)ret);
		break;
	case FZ_PC_PARTIAL:
		do_consume(f, part % ((uint64_t)ret + 1));
		break;
	case FZ_PC_MORE:
		do_consume(f, (uint64_t)ret + 1);
		break;
	case FZ_PC_ZERO:
		do_consume(f, 0);
		break;
	case FZ_PC_TWICE:
		do_consume(f, (uint64_t)ret);
		do_consume(f, 1);
		break;
	default: /* FZ_PC_NONE: the next peek shows the same bytes */
		break;
	}
}

static void op_stats(struct fz *f)
{
	shmpipe_stats st;

	FZ_CHECK(shmpipe_reader_stats(f->r, &st) == 0, "stats failed");
	FZ_CHECK(st.capacity == f->cap, "stats capacity %" PRIu64 ", attached with %" PRIu64,
		 st.capacity, f->cap);
	FZ_CHECK(st.read_index <= st.write_index && st.write_index - st.read_index <= st.capacity,
		 "stats read_index %" PRIu64 " write_index %" PRIu64 " capacity %" PRIu64,
		 st.read_index, st.write_index, st.capacity);
	FZ_CHECK(st.consumed == f->consumed, "stats consumed %" PRIu64 ", %" PRIu64 " done",
		 st.consumed, f->consumed);
}

/* ---- what the writer does ----------------------------------------------- */

/*
 * An honest writer publishes one more write or record where there is room
 * after the reader's position (which an honest reader publishes); a hostile
 * one publishes regardless.
 */
static void op_commit(struct fz *f, struct fz_in *in)
{
	uint8_t flags = fz_u8(in);
	uint64_t len = (flags & FZ_WC_LONG) ? fz_u16(in) : fz_u8(in);
	uint64_t w = hdr_windex(f), used = w - f->rpos;
	uint64_t space = f->records ? record_space(len) : len;

	if (space == 0 || space > f->dsize)
		return;
	if (flags & FZ_WC_IGNORE_ROOM)
		f->hostile = true;
	else if (used > f->cap || space > f->cap - used)
		return;
	if (f->records) {
		if (len == 0)
			f->hostile = true;
		ring_put_u64(f->data, f->dsize, w, len);
		ring_junk(&f->rng, f->data, f->dsize, w + 8, space - 8);
	} else {
		ring_junk(&f->rng, f->data, f->dsize, w, space);
	}
	set_windex(f, w + space);
	trace("writer commits %" PRIu64 " at %" PRIu64, len, w);
}

static void op_windex(struct fz *f, struct fz_in *in)
{
	uint8_t mode = fz_u8(in) % FZ_WI_COUNT;
	uint64_t v = fz_u64(in), w = hdr_windex(f);

	switch (mode) {
	case FZ_WI_DELTA:
		v = w + (uint64_t)sext8((uint8_t)v);
		break;
	case FZ_WI_BACK:
		v = w - (uint8_t)v;
		break;
	case FZ_WI_OVER:
		v = f->rpos + f->cap + 1;
		break;
	case FZ_WI_FULL:
		v = f->rpos + f->cap;
		break;
	case FZ_WI_EMPTY:
		v = f->rpos;
		break;
	case FZ_WI_BEHIND:
		v = f->rpos - 1;
		break;
	case FZ_WI_MAX:
		v = UINT64_MAX;
		break;
	default: /* FZ_WI_RAW */
		break;
	}
	f->hostile = true;
	set_windex(f, v);
	trace("write_index = %" PRIu64, v);
}

/*
 * The writer's state, and its life: closing the descriptor that holds its
 * liveness lock is what its death looks like to the reader (this writer
 * never meets the reader, so there is no doorbell to hang up: the reader
 * asks the lock).
 */
static void op_wstate(struct fz *f, struct fz_in *in)
{
	uint8_t b = fz_u8(in);
	uint32_t s;

	switch (b & 3) {
	case 0:
		s = SHMPIPE__END_OPEN;
		break;
	case 1:
		s = SHMPIPE__END_CLOSED;
		break;
	case 2:
		s = SHMPIPE__END_ABSENT;
		break;
	default:
		s = fz_u32(in);
		break;
	}
	atomic_store(&f->h->writer_state, s);
	trace("writer_state = %" PRIu32 "%s", s, b & 4 ? ", liveness lock toggled" : "");
	if (b & 4) {
		if (f->wlock_fd >= 0)
			drop_lock(&f->wlock_fd);
		else
			f->wlock_fd = take_lock(shmpipe_reader_fd(f->r), SHMPIPE__WRITER_LOCK);
	}
}

static void op_reclen(struct fz *f, struct fz_in *in)
{
	uint8_t mode = fz_u8(in) % FZ_RL_COUNT;
	uint64_t v = fz_u64(in), avail = hdr_windex(f) - f->rpos;

	switch (mode) {
	case FZ_RL_ZERO:
		v = 0;
		break;
	case FZ_RL_MAX:
		v = record_max(f);
		break;
	case FZ_RL_MAX1:
		v = record_max(f) + 1;
		break;
	case FZ_RL_FIT:
		v = avail >= 8 ? avail - 8 : 0;
		break;
	case FZ_RL_FIT1:
		v = avail >= 8 ? avail - 7 : 1;
		break;
	case FZ_RL_SMALL:
		v &= 0xff;
		break;
	case FZ_RL_HUGE:
		v = (uint64_t)1 << 63;
		break;
	default: /* FZ_RL_RAW */
		break;
	}
	f->hostile = true;
	ring_put_u64(f->data, f->dsize, f->rpos, v);
	trace("record length at %" PRIu64 " = %" PRIu64, f->rpos, v);
}

static void op_scribble(struct fz *f, struct fz_in *in)
{
	uint64_t off = fz_u16(in) % f->dsize, n = fz_u8(in);

	/* Stream bytes may be anything; record frames may not. */
	if (f->records)
		f->hostile = true;
	ring_junk(&f->rng, f->data, f->dsize, off, n < f->dsize ? n : f->dsize);
}

/*
 * Fields the reader must have read once at attach (identity, geometry) or
 * never reads (its own published position and state, the event words):
 * changing them must change nothing it does, so this is not "hostile".
 */
static void op_header(struct fz *f, struct fz_in *in)
{
	uint8_t field = fz_u8(in) % FZ_HF_COUNT;
	uint64_t v = fz_u64(in);
	struct shmpipe__hdr *h = f->h;

	switch (field) {
	case FZ_HF_MAGIC:
		h->magic = v;
		break;
	case FZ_HF_VERSION:
		h->version = (uint32_t)v;
		break;
	case FZ_HF_HEADER_SIZE:
		h->header_size = (uint32_t)v;
		break;
	case FZ_HF_CAPACITY:
		h->capacity = v;
		break;
	case FZ_HF_DATA_SIZE:
		h->data_size = v;
		break;
	case FZ_HF_FLAGS:
		h->flags = (uint32_t)v;
		break;
	case FZ_HF_READ_INDEX:
		atomic_store(&h->read_index, v);
		break;
	case FZ_HF_EVENTS:
		atomic_store(&h->data_event, (uint32_t)v);
		atomic_store(&h->space_event, (uint32_t)(v >> 32));
		break;
	default: /* FZ_HF_READER_STATE */
		atomic_store(&h->reader_state, (uint32_t)v);
		break;
	}
}

static void op_timeout(struct fz *f, struct fz_in *in)
{
	/*
	 * 1 ms takes the timed wait (poll(2) of the doorbell) and the check of
	 * the writer's lock; every blocking call then costs a millisecond, so
	 * only one value in eight asks it.
	 */
	int t = fz_u8(in) % 8 == 1;

	FZ_CHECK(shmpipe_reader_set_timeout(f->r, t) == 0, "set_timeout(%d)", t);
	trace("timeout %d ms", t);
	f->timeout_ms = t;
}

static void op_args(struct fz *f)
{
	const void *p;

	FZ_CHECK(shmpipe_read(f->r, NULL, 0) == 0, "read(NULL, 0)");
	FZ_CHECK(shmpipe_read(f->r, NULL, 1) == -EINVAL, "read(NULL, 1)");
	FZ_CHECK(shmpipe_peek(f->r, NULL) == -EINVAL, "peek(NULL)");
	FZ_CHECK(shmpipe_peek(NULL, &p) == -EINVAL, "peek of no reader");
	FZ_CHECK(shmpipe_consume(NULL, 0) == -EINVAL, "consume of no reader");
	FZ_CHECK(shmpipe_reader_stats(f->r, NULL) == -EINVAL, "stats(NULL)");
	FZ_CHECK(shmpipe_reader_set_timeout(f->r, -2) == -EINVAL, "set_timeout(-2)");
	FZ_CHECK(shmpipe_reader_fd(f->r) >= 0, "reader_fd");
	/* Whether refused calls end what a peek showed is not specified. */
	f->lent_known = false;
}

static void run_ops(struct fz *f, struct fz_in *in)
{
	for (int i = 0; i < FZ_MAX_OPS && in->n > 0; i++) {
		switch (fz_u8(in) % FZ_OP_COUNT) {
		case FZ_OP_READ:
			op_read(f, in);
			break;
		case FZ_OP_PEEK:
			op_peek(f, in);
			break;
		case FZ_OP_CONSUME:
			do_consume(f, fz_u8(in));
			break;
		case FZ_OP_STATS:
			op_stats(f);
			break;
		case FZ_OP_COMMIT:
			op_commit(f, in);
			break;
		case FZ_OP_WINDEX:
			op_windex(f, in);
			break;
		case FZ_OP_WSTATE:
			op_wstate(f, in);
			break;
		case FZ_OP_RECLEN:
			op_reclen(f, in);
			break;
		case FZ_OP_SCRIBBLE:
			op_scribble(f, in);
			break;
		case FZ_OP_HEADER:
			op_header(f, in);
			break;
		case FZ_OP_TIMEOUT:
			op_timeout(f, in);
			break;
		default:
			op_args(f);
			break;
		}
	}
}

/* ---- one input ------------------------------------------------------------ */

/*
 * A descriptor leak shows as memfds numbered ever higher: the lowest free
 * number is reused when everything is closed.
 */
static void check_fd_leak(int fd)
{
	static int floor_fd = -1;

	if (floor_fd < 0 || fd < floor_fd)
		floor_fd = fd;
	FZ_CHECK(fd < floor_fd + 64, "descriptor %d, the first was %d: descriptors leak", fd,
		 floor_fd);
}

/* Attached: map our own view, then play the program against the model. */
static void run_attached(struct fz *f, struct fz_in *in, const struct shmpipe__hdr *img)
{
	uint64_t hs = img->header_size;

	f->dsize = img->data_size;
	f->cap = img->capacity;
	f->records = (img->flags & SHMPIPE_RECORDS) != 0;
	f->rpos = atomic_load_explicit(&img->read_index, memory_order_relaxed);
	f->maxavail = 0;
	f->lent_known = true;
	f->view_len = hs + f->dsize;
	f->view = mmap(NULL, f->view_len, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
	FZ_CHECK(f->view != MAP_FAILED, "mmap: %s", strerror(errno));
	f->h = (struct shmpipe__hdr *)f->view;
	f->data = f->view + hs;
	f->scratch = malloc(f->dsize);
	FZ_CHECK(f->scratch != NULL, "malloc");
	set_windex(f, atomic_load_explicit(&img->write_index, memory_order_relaxed));
	FZ_CHECK(atomic_load(&f->h->reader_state) == SHMPIPE__END_OPEN,
		 "attached, but reader_state is %" PRIu32, atomic_load(&f->h->reader_state));
	/*
	 * The caller keeps fd and may close it at once: the reader has its own
	 * (a writer that comes back to life locks through that one).
	 */
	close(f->fd);
	f->fd = -1;
	FZ_CHECK(shmpipe_reader_set_timeout(f->r, 0) == 0, "set_timeout(0)");
	f->timeout_ms = 0;

	run_ops(f, in);

	FZ_CHECK(shmpipe_reader_close(f->r) == 0, "reader_close");
	FZ_CHECK(atomic_load(&f->h->reader_state) == SHMPIPE__END_CLOSED,
		 "closed, but reader_state is %" PRIu32, atomic_load(&f->h->reader_state));
	munmap(f->view, f->view_len);
	free(f->scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = {data, size};
	struct fz f = {.fd = -1, .wlock_fd = -1, .rlock_fd = -1};
	struct shmpipe__hdr *h, before;
	uint8_t geo, state, mask, *image;
	uint64_t dsize, cap, base, fill, fsize, w;
	unsigned ws, rs;
	bool records, refuse;
	int ret;

	if (verbose < 0)
		verbose = getenv("SHMPIPE_FUZZ_VERBOSE") != NULL;
	f.page = (uint64_t)sysconf(_SC_PAGESIZE);
	geo = fz_u8(&in);
	state = fz_u8(&in);
	mask = fz_u8(&in);
	if (!(geo & FZ_G_CORRUPT))
		mask = 0;
	fz_rng_seed(&f.rng, fz_u8(&in));
	records = (geo & FZ_G_RECORDS) != 0;

	/* The geometry, as the library would create it for this capacity. */
	dsize = (uint64_t)(((geo & FZ_G_PAGES_MASK) >> FZ_G_PAGES_SHIFT) + 1) * f.page;
	cap = choose_capacity(&in, (geo & FZ_G_CAP_MASK) >> FZ_G_CAP_SHIFT, dsize, f.page);
	dsize = (cap + f.page - 1) / f.page * f.page;

	switch ((state & FZ_S_BASE_MASK) >> FZ_S_BASE_SHIFT) {
	case FZ_BASE_U16:
		base = fz_u16(&in);
		break;
	case FZ_BASE_RAW:
		base = fz_u64(&in);
		f.hostile = true;
		break;
	case FZ_BASE_WRAP:
		/* No writer reaches 2^64 bytes; the library may refuse, never fault. */
		base = UINT64_MAX - fz_u16(&in);
		f.hostile = true;
		break;
	default:
		base = 0;
		break;
	}
	if (records && ((state & FZ_S_BASE_MASK) >> FZ_S_BASE_SHIFT) != FZ_BASE_RAW)
		base &= ~(uint64_t)7;

	image = aligned_alloc(f.page, f.page + dsize);
	FZ_CHECK(image != NULL, "aligned_alloc");
	memset(image, 0, f.page + dsize);
	h = (struct shmpipe__hdr *)image;
	/* Stale bytes everywhere: a reader must not return what was not published. */
	ring_junk(&f.rng, image + f.page, dsize, 0, dsize);
	fill = lay_content(&f, &in, image + f.page, dsize, cap, records, base,
			   ((state & FZ_S_FILL_MASK) >> FZ_S_FILL_SHIFT) == FZ_FILL_FULL);
	switch ((state & FZ_S_FILL_MASK) >> FZ_S_FILL_SHIFT) {
	case FZ_FILL_U16:
		w = base + fz_u16(&in);
		f.hostile = true;
		break;
	case FZ_FILL_RAW:
		w = fz_u64(&in);
		f.hostile = true;
		break;
	default:
		w = base + fill;
		break;
	}

	h->magic = SHMPIPE__MAGIC;
	h->version = SHMPIPE__LAYOUT_VERSION;
	h->header_size = (uint32_t)f.page;
	h->capacity = cap;
	h->data_size = dsize;
	h->flags = records ? SHMPIPE_RECORDS : 0;
	atomic_store_explicit(&h->read_index, base, memory_order_relaxed);
	atomic_store_explicit(&h->write_index, w, memory_order_relaxed);
	ws = state & FZ_S_WRITER_MASK;
	rs = (state & FZ_S_READER_MASK) >> FZ_S_READER_SHIFT;
	atomic_store_explicit(&h->writer_state,
			      ws == FZ_WS_CLOSED   ? SHMPIPE__END_CLOSED
			      : ws == FZ_WS_ABSENT ? SHMPIPE__END_ABSENT
						   : SHMPIPE__END_OPEN,
			      memory_order_relaxed);
	atomic_store_explicit(&h->reader_state,
			      rs == FZ_RS_OPEN	   ? SHMPIPE__END_OPEN
			      : rs == FZ_RS_CLOSED ? SHMPIPE__END_CLOSED
						   : SHMPIPE__END_ABSENT,
			      memory_order_relaxed);
	fsize = f.page + dsize;
	corrupt(&f, &in, h, mask, &fsize);
	/* A memfd its sender could shrink under us is refused (SIGBUS). */
	refuse = must_refuse(h, fsize, f.page) || (geo & FZ_G_UNSEALED);

#ifdef SHMPIPE_FUZZ_SKIP_BLANK
	/*
	 * An object smaller than a page or with a zero magic looks like one
	 * whose creator has not finished its header: the open waits 200 ms for
	 * it. That path is simple and the corpus replay covers it; fuzzing it
	 * would spend most of the time asleep.
	 */
	if (fsize < f.page || h->magic == 0) {
		free(image);
		return 0;
	}
#endif

	f.fd = memfd_create("shmpipe-fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	FZ_CHECK(f.fd >= 0, "memfd_create: %s", strerror(errno));
	check_fd_leak(f.fd);
	FZ_CHECK(ftruncate(f.fd, (off_t)fsize) == 0, "ftruncate(%" PRIu64 "): %s", fsize,
		 strerror(errno));
	{
		size_t n = fsize < f.page + dsize ? (size_t)fsize : (size_t)(f.page + dsize);

		FZ_CHECK(pwrite(f.fd, image, n, 0) == (ssize_t)n, "pwrite: %s", strerror(errno));
	}
	if (!(geo & FZ_G_UNSEALED))
		FZ_CHECK(fcntl(f.fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0, "seal: %s",
			 strerror(errno));
	if (ws == FZ_WS_OPEN)
		f.wlock_fd = take_lock(f.fd, SHMPIPE__WRITER_LOCK);
	if (rs == FZ_RS_OPEN)
		f.rlock_fd = take_lock(f.fd, SHMPIPE__READER_LOCK);
	memcpy(&before, h, sizeof(before));

	ret = shmpipe_reader_open_fd(&f.r, f.fd);
	if (verbose)
		fprintf(stderr,
			"open: %d (%s), %s, capacity %" PRIu64 ", read_index %" PRIu64
			", write_index %" PRIu64 ", %s%s\n",
			ret, shmpipe_strerror(ret), records ? "records" : "stream", cap, base, w,
			refuse ? "must refuse" : "valid", f.hostile ? ", hostile" : "");
	FZ_CHECK(ret == 0 || ret == -EPROTO || ret == -EBADMSG || ret == -EBUSY || ret == -ENOMEM,
		 "reader_open_fd returned %d (%s)", ret, shmpipe_strerror(ret));
	FZ_CHECK(ret != 0 || !refuse, "reader_open_fd accepted a header it must refuse");
	FZ_CHECK(ret != -EBUSY || f.rlock_fd >= 0 ||
		     atomic_load_explicit(&h->reader_state, memory_order_relaxed) !=
			 SHMPIPE__END_ABSENT,
		 "reader_open_fd said -EBUSY with the read end free");
	FZ_CHECK(ret == 0 || refuse || f.hostile || f.rlock_fd >= 0,
		 "reader_open_fd refused a valid pipe: %d (%s)", ret, shmpipe_strerror(ret));
	if (ret < 0 && fsize >= sizeof(before)) {
		/*
		 * A refused open leaves the object as it was (the pids are for
		 * observers only, and not checked here).
		 */
		struct shmpipe__hdr after;

		FZ_CHECK(pread(f.fd, &after, sizeof(after), 0) == (ssize_t)sizeof(after), "pread");
		after.reader_pid = before.reader_pid;
		after.writer_pid = before.writer_pid;
		FZ_CHECK(memcmp(&before, &after, sizeof(after)) == 0,
			 "a refused open changed the header");
	}
	if (ret == 0)
		run_attached(&f, &in, h);
	if (f.fd >= 0)
		close(f.fd);
	drop_lock(&f.wlock_fd);
	drop_lock(&f.rlock_fd);
	free(image);
	return 0;
}
