/* SPDX-License-Identifier: MIT */
/*
 * The shared segment: everything that the other end, in another thread or
 * another process, sees, and the only place it is defined. This is an ABI:
 * fixed-width fields only, a magic and a version up front, reserved space,
 * and the fields each side writes on cache lines of their own. docs/design.md
 * draws it; the _Static_asserts at the end pin every offset of that drawing.
 * docs/abi.md says when the layout version changes.
 *
 *   file offset 0            header page (struct shmpipe__hdr, one page)
 *   file offset page         data region, data_size bytes (capacity rounded up
 *                            to whole pages)
 *
 * In memory the data region is mapped twice, back to back, right after the
 * header, so that any span of up to data_size bytes starting inside the
 * first copy is contiguous: a write or read is always one memcpy.
 */
#ifndef SHMPIPE_LAYOUT_H
#define SHMPIPE_LAYOUT_H

#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>

#include "atomics.h"
#include "shmpipe.h"

#define SHMPIPE__MAGIC		0x45504950504d4853ull /* "SHMPPIPE" read little-endian */
#define SHMPIPE__LAYOUT_VERSION 2u
/*
 * A broadcast pipe (options.readers > 1): the same header with a table of
 * reader places after it (struct shmpipe__place). Another version, so that
 * a library that knows only one reader refuses it instead of reading it as
 * its own.
 */
#define SHMPIPE__LAYOUT_BROADCAST 3u

/*
 * Two lines of 64 bytes apart: adjacent-line prefetchers pull cache lines in
 * pairs, so 128 bytes keeps the producer's and the consumer's fields from
 * ever sharing a transfer.
 */
#define SHMPIPE__LINE 128

/*
 * Liveness locks: the writer holds an exclusive OFD lock on byte 0 of the
 * shared object, the reader on byte 1, for as long as its end is attached
 * (see os.h). The data region is not affected: locks are advisory.
 */
#define SHMPIPE__WRITER_LOCK 0u
#define SHMPIPE__READER_LOCK 1u /* a broadcast pipe: the reader in place i, byte 1 + i */

/* writer_state / reader_state */
enum {
	SHMPIPE__END_ABSENT = 0, /* not attached yet */
	SHMPIPE__END_OPEN = 1,
	SHMPIPE__END_CLOSED = 2,  /* closed cleanly */
	SHMPIPE__END_ABORTED = 3, /* the writer, closed as failed: no end of stream */
};

/* Bytes of the rendezvous token (doorbell.c). */
#define SHMPIPE__TOKEN_LEN 16

/*
 * writer_flags / reader_flags. SHMPIPE__END_BARRIER: this end's process takes
 * part in process-wide barriers and the end issues one before every sleep
 * (the asymmetric fence of wait.c), so its peer may publish without a fence
 * of its own. Set once, after the end is taken, never cleared. Zero in a
 * header written by an end that does not know of it, which keeps both sides
 * on the fenced path: the field used to be padding.
 */
#define SHMPIPE__END_BARRIER 1u

/*
 * An event count (after ck_ec): bit 0 says "a waiter waits (asleep, or
 * polling its descriptor), ring its doorbell"; bits 1..31 count rings. The
 * waiter sets bit 0 before its last look; the signaller, only if it sees bit
 * 0, replaces the word by (count + 1) << 1 and rings. See wait.c for the
 * protocol.
 */
#define SHMPIPE__WAITER 1u

struct shmpipe__hdr {
	/* Identity: written once by the creator before any other end attaches. */
	alignas(SHMPIPE__LINE) shmpipe__u64 magic; /* stored last, with release */
	uint32_t version;
	uint32_t header_size; /* bytes before the data region (a page multiple) */
	uint64_t capacity;    /* most bytes in the ring at once, as asked */
	uint64_t data_size;   /* bytes of the data region, >= capacity, page multiple */
	uint32_t flags;	      /* SHMPIPE_RECORDS, ... */
	uint32_t readers;     /* version 3: places in the reader table; 0 in version 2 */
	/*
	 * Where the creating end waits for the other end to meet it and
	 * exchange doorbells: the name of an abstract socket (doorbell.c).
	 */
	uint8_t token[SHMPIPE__TOKEN_LEN];

	/* Written by the producer only. */
	alignas(SHMPIPE__LINE) shmpipe__u64 write_index; /* bytes committed, free-running */
	shmpipe__u64 produced;				 /* writes committed */
	shmpipe__u64 producer_waits;			 /* times the writer slept */

	/* Written by the consumer only. */
	alignas(SHMPIPE__LINE) shmpipe__u64 read_index; /* bytes consumed, free-running */
	shmpipe__u64 consumed;				/* reads committed */
	shmpipe__u64 consumer_waits;			/* times the reader slept */

	/*
	 * Each end's state, on a line that changes only when an end attaches or
	 * closes, so that checking it on every call costs a load from a clean,
	 * shared cache line rather than a transfer of the peer's busy one.
	 */
	alignas(SHMPIPE__LINE)
	    shmpipe__u32 writer_state; /* SHMPIPE__END_*, written by the writer */
	shmpipe__u32 reader_state;     /* SHMPIPE__END_*, written by the reader */
	shmpipe__u32 writer_pid;       /* who holds the write end, for observers only */
	shmpipe__u32 reader_pid;       /* who holds the read end, for observers only */
	shmpipe__u32 writer_flags;     /* SHMPIPE__END_BARRIER, written by the writer */
	shmpipe__u32 reader_flags;     /* SHMPIPE__END_BARRIER, written by the reader */

	/* The reader sleeps here waiting for data; the writer signals. */
	alignas(SHMPIPE__LINE) shmpipe__u32 data_event;

	/* The writer sleeps here waiting for space; the reader signals. */
	alignas(SHMPIPE__LINE) shmpipe__u32 space_event;

	/*
	 * Version 3: how many readers hold a place, at least (ring.c's
	 * broadcast part keeps it), and whether one ever did: on a line that
	 * changes only when a reader comes or goes, as the states do.
	 */
	alignas(SHMPIPE__LINE) shmpipe__u32 readers_live;
	uint8_t reserved[SHMPIPE__LINE - 4]; /* the rest of the header page is reserved and zero */
};

/*
 * A broadcast pipe's reader place: what the reader in it publishes, and
 * the word it sleeps on, each on its own lines. The table starts at
 * SHMPIPE__PLACES and the data region at the next page after it.
 */
struct shmpipe__place {
	/* Written by the reader in this place only. */
	alignas(SHMPIPE__LINE) shmpipe__u64 read_index; /* its position */
	shmpipe__u64 consumed;				/* reads committed */
	shmpipe__u64 consumer_waits;			/* times it slept */
	/*
	 * Who holds the place and how: SHMPIPE__END_* in the low byte, and
	 * above it a count of the readers who took it, so that a writer that
	 * drops the reader it saw (its process died) never drops the next.
	 */
	shmpipe__u32 state;
	shmpipe__u32 pid;   /* for observers only */
	shmpipe__u32 flags; /* SHMPIPE__END_BARRIER, as reader_flags */
	/* The reader sleeps here waiting for data; the writer signals. */
	alignas(SHMPIPE__LINE) shmpipe__u32 data_event;
};

/* A place's state word: dropped by the writer, which saw its reader dead. */
#define SHMPIPE__PLACE_DROPPED	   4u
#define SHMPIPE__PLACE_STATE(word) ((word)&0xffu)
#define SHMPIPE__PLACE_GEN(word)   ((word) >> 8)

#define SHMPIPE__PLACES 1024u

/*
 * A shared pipe: the position of the first record no reader has taken, on
 * the line before the places (readers take records with a compare-and-swap
 * of it); and a place's read_index while its reader holds no record.
 */
#define SHMPIPE__CLAIM	   896u
#define SHMPIPE__HOLD_NONE UINT64_MAX

/*
 * The data region of a record pipe: every record starts with this frame,
 * 8-byte aligned, and its payload follows, padded to a multiple of 8, so
 * that a record of len bytes takes SHMPIPE_RECORD_SPACE(len) bytes of the
 * ring (shmpipe.h gives callers the formula; the assertions below hold it
 * to the frame). A record ring must hold a frame and 8 bytes of payload.
 */
struct shmpipe__record {
	uint64_t len; /* payload bytes */
};

#define SHMPIPE__RECORD_MIN_CAPACITY 16u

/*
 * A shared pipe's frame (SHMPIPE_SHARE): the length, then the record's
 * sequence number, given by the writer. SHMPIPE_SHARE_RECORD_SPACE.
 */
struct shmpipe__share_record {
	uint64_t len;
	uint64_t seq;
};

#define SHMPIPE__SHARE_MIN_CAPACITY 24u

static inline uint64_t shmpipe__record_space(uint64_t len)
{
	return SHMPIPE_RECORD_SPACE(len);
}

_Static_assert(sizeof(struct shmpipe__record) == 8, "a record frame is 8 bytes");
_Static_assert(SHMPIPE_RECORD_SPACE(0) == sizeof(struct shmpipe__record) &&
		   SHMPIPE_RECORD_SPACE(1) == sizeof(struct shmpipe__record) + 8 &&
		   SHMPIPE_RECORD_SPACE(8) == sizeof(struct shmpipe__record) + 8 &&
		   SHMPIPE_RECORD_SPACE(9) == sizeof(struct shmpipe__record) + 16,
	       "SHMPIPE_RECORD_SPACE is the frame plus the payload padded to 8");
_Static_assert(sizeof(struct shmpipe__share_record) == 16 &&
		   SHMPIPE_SHARE_RECORD_SPACE(1) == sizeof(struct shmpipe__share_record) + 8 &&
		   SHMPIPE_SHARE_RECORD_MAX(SHMPIPE__SHARE_MIN_CAPACITY) == 8,
	       "a shared record's frame is 16 bytes, the smallest shared ring holds 8 bytes");
_Static_assert(SHMPIPE_RECORD_MAX(SHMPIPE__RECORD_MIN_CAPACITY) == 8 &&
		   SHMPIPE_RECORD_SPACE(SHMPIPE_RECORD_MAX(SHMPIPE__RECORD_MIN_CAPACITY)) ==
		       SHMPIPE__RECORD_MIN_CAPACITY,
	       "the smallest record ring holds one frame and 8 bytes");

/* The offsets docs/design.md draws, the same on every platform. */
_Static_assert(sizeof(shmpipe__u64) == 8 && alignof(shmpipe__u64) == 8 &&
		   sizeof(shmpipe__u32) == 4 && alignof(shmpipe__u32) == 4,
	       "the shared words are plain 4- and 8-byte words");
_Static_assert(offsetof(struct shmpipe__hdr, magic) == 0 &&
		   offsetof(struct shmpipe__hdr, version) == 8 &&
		   offsetof(struct shmpipe__hdr, header_size) == 12 &&
		   offsetof(struct shmpipe__hdr, capacity) == 16 &&
		   offsetof(struct shmpipe__hdr, data_size) == 24 &&
		   offsetof(struct shmpipe__hdr, flags) == 32 &&
		   offsetof(struct shmpipe__hdr, readers) == 36 &&
		   offsetof(struct shmpipe__hdr, token) == 40,
	       "identity at +0, token at +40");
_Static_assert(offsetof(struct shmpipe__hdr, write_index) == 128 &&
		   offsetof(struct shmpipe__hdr, produced) == 136 &&
		   offsetof(struct shmpipe__hdr, producer_waits) == 144,
	       "the producer's line at +128");
_Static_assert(offsetof(struct shmpipe__hdr, read_index) == 256 &&
		   offsetof(struct shmpipe__hdr, consumed) == 264 &&
		   offsetof(struct shmpipe__hdr, consumer_waits) == 272,
	       "the consumer's line at +256");
_Static_assert(offsetof(struct shmpipe__hdr, writer_state) == 384 &&
		   offsetof(struct shmpipe__hdr, reader_state) == 388 &&
		   offsetof(struct shmpipe__hdr, writer_pid) == 392 &&
		   offsetof(struct shmpipe__hdr, reader_pid) == 396 &&
		   offsetof(struct shmpipe__hdr, writer_flags) == 400 &&
		   offsetof(struct shmpipe__hdr, reader_flags) == 404,
	       "the end states at +384");
_Static_assert(offsetof(struct shmpipe__hdr, data_event) == 512 &&
		   offsetof(struct shmpipe__hdr, space_event) == 640 &&
		   offsetof(struct shmpipe__hdr, readers_live) == 768 &&
		   sizeof(struct shmpipe__hdr) == 896,
	       "the events at +512 and +640, the readers' count at +768");
_Static_assert(offsetof(struct shmpipe__place, read_index) == 0 &&
		   offsetof(struct shmpipe__place, consumed) == 8 &&
		   offsetof(struct shmpipe__place, consumer_waits) == 16 &&
		   offsetof(struct shmpipe__place, state) == 24 &&
		   offsetof(struct shmpipe__place, pid) == 28 &&
		   offsetof(struct shmpipe__place, flags) == 32 &&
		   offsetof(struct shmpipe__place, data_event) == 128 &&
		   sizeof(struct shmpipe__place) == 256 &&
		   SHMPIPE__PLACES >= sizeof(struct shmpipe__hdr) && SHMPIPE__PLACES % 256 == 0 &&
		   SHMPIPE__CLAIM >= sizeof(struct shmpipe__hdr) &&
		   SHMPIPE__CLAIM + SHMPIPE__LINE <= SHMPIPE__PLACES,
	       "a reader place is two lines, the table starts at +1024");

/* Bytes before the data region: the header, the places, up to a page. */
static inline uint64_t shmpipe__header_size(uint32_t readers, uint64_t page)
{
	uint64_t n = readers > 1
			 ? SHMPIPE__PLACES + (uint64_t)readers * sizeof(struct shmpipe__place)
			 : sizeof(struct shmpipe__hdr);

	return (n + page - 1) / page * page;
}

/*
 * What the inline calls of shmpipe.h compile into programs: the offsets of
 * the words they use, the open state and the waiter bit. A layout that moves
 * any of them must keep the handle's gate shut for those programs
 * (shmpipe.h, docs/abi.md).
 */
_Static_assert(SHMPIPE__FAST_OPEN == SHMPIPE__END_OPEN && SHMPIPE__FAST_WAITER == SHMPIPE__WAITER,
	       "shmpipe.h's inline calls know the open state and the waiter bit");
_Static_assert(offsetof(struct shmpipe__hdr, write_index) == SHMPIPE__FAST_WRITE_INDEX &&
		   offsetof(struct shmpipe__hdr, produced) == SHMPIPE__FAST_PRODUCED &&
		   offsetof(struct shmpipe__hdr, read_index) == SHMPIPE__FAST_READ_INDEX &&
		   offsetof(struct shmpipe__hdr, consumed) == SHMPIPE__FAST_CONSUMED &&
		   offsetof(struct shmpipe__hdr, writer_state) == SHMPIPE__FAST_WRITER_STATE &&
		   offsetof(struct shmpipe__hdr, reader_state) == SHMPIPE__FAST_READER_STATE &&
		   offsetof(struct shmpipe__hdr, data_event) == SHMPIPE__FAST_DATA_EVENT &&
		   offsetof(struct shmpipe__hdr, space_event) == SHMPIPE__FAST_SPACE_EVENT,
	       "shmpipe.h's inline calls find the shared words where they are");

#endif /* SHMPIPE_LAYOUT_H */
