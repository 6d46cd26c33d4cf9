/* SPDX-License-Identifier: MIT */
/*
 * The process-local side of a pipe: the handles. Nothing here is shared with
 * the peer; in particular each end's own position lives here, in private
 * memory, and the copy in the shared header is only ever published to.
 */
#ifndef SHMPIPE_INTERNAL_H
#define SHMPIPE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "shmpipe.h"
#include "atomics.h"
#include "layout.h"

#define SHMPIPE__INTERNAL __attribute__((visibility("hidden")))

/*
 * How long a wait keeps looking before it sleeps, unless set_spin says
 * otherwise. A peer running on another core usually answers within
 * microseconds (it is copying a chunk); spinning that long saves a sleep on
 * the doorbell and the peer's ring, a system call on each side. The bound is
 * time, not iterations, because the cost of the pause hint varies tenfold
 * between processors. A slow peer costs at most this much CPU per sleep.
 */
#ifndef SHMPIPE__SPIN_NS
#define SHMPIPE__SPIN_NS 30000
#endif

/*
 * How many accepted connections whose hello has not come yet a creating end
 * keeps: strangers must crowd all of them out between the peer's connect
 * and its hello (microseconds) to keep it from meeting us.
 */
#define SHMPIPE__PENDING 4

/* Rings of at least four times this publish big copies in quarters (e->slice). */
#define SHMPIPE__SLICE_MIN 4096u

/*
 * One mapping of a pipe's shared object, shared by the ends of this process
 * that use it (both ends after shmpipe_pair) and released with the last.
 */
struct shmpipe__map {
	_Atomic unsigned refs;
	void *base;	/* start of the mapping: the header */
	size_t map_len; /* header + two copies of the data region */
	struct shmpipe__hdr *hdr;
	uint8_t *data; /* first copy of the data region; the second follows */
};

/*
 * What both ends have. It starts with the fields that the inline calls of
 * shmpipe.h read and write (struct shmpipe__fast, first so that a handle
 * pointer is a pointer to them): the geometry, read once and checked at
 * attach, this end's position, the truth, kept privately, and its offset,
 * the peer's position as last read and checked, the count of operations as
 * last published, and avail, which ring.c keeps (see fast_arm there).
 */
struct shmpipe__end {
	struct shmpipe__fast f;
	struct shmpipe__map *map;
	struct shmpipe__hdr *hdr;
	/*
	 * A reader's: where it publishes its position (read_index), counts
	 * its reads (consumed) and its waits: in the header, or for a
	 * broadcast reader in its place. (The writer's are always the
	 * header's own.)
	 */
	shmpipe__u64 *index;
	shmpipe__u64 *ops;
	shmpipe__u64 *waits;
	struct shmpipe__place *place; /* a broadcast reader's place, NULL otherwise */
	unsigned place_index;	      /* its index in the table */
	uint32_t place_word;	      /* the state word it took the place with */
	struct shmpipe__fan *fan;     /* a broadcast writer's readers, NULL otherwise */
	uint64_t want;		      /* room (writer) or data (reader) a wait is for */
	uint64_t lent;		      /* bytes handed out by reserve or peek, 0 if none */
	uint64_t shown;	     /* record mode: ring bytes of the records peek and peek_next showed */
	uint64_t slice;	     /* most bytes one copy publishes or releases at once */
	bool records;	     /* SHMPIPE_RECORDS */
	unsigned readers;    /* readers the pipe takes at once: 1, or its places */
	bool share;	     /* SHMPIPE_SHARE: each record to one reader */
	bool reopen;	     /* SHMPIPE_REOPEN: a dead peer's end may be taken again */
	bool held;	     /* a shared pipe's reader: its place holds a record */
	uint64_t frame;	     /* bytes of a record's frame: 8, 16 if share */
	uint64_t seq;	     /* share: the writer's next record, the reader's last */
	bool seq_valid;	     /* share: the reader has taken a record */
	bool ended;	     /* a read returned end of stream: every later one does */
	int timeout_ms;	     /* -1 forever, 0 never, > 0 milliseconds */
	uint32_t spin_ns;    /* how long a wait looks before it sleeps */
	bool registered;     /* our process takes part in process-wide barriers */
	bool barrier;	     /* this end promised, and issues, a barrier before each wait */
	bool peer_barrier;   /* the peer does: publish without a fence (wait.c) */
	shmpipe__u32 *flags; /* this end's flags word, where it promises */
	int fd;		     /* this end's own open file description of the object */
	unsigned peer_lock;  /* the byte whose lock says the peer is alive */
	/*
	 * The doorbells (doorbell.c). bell: the read side of ours, which only
	 * the peer can ring. note: what this end rings for its own event
	 * loop, when a call that took a ring away made progress after all
	 * (wait.c). peer_bell: the write side of the peer's, -1 until
	 * the ends have met; peer_guard: a read side of it, held so that a
	 * ring never raises SIGPIPE. own_ring: the write side of ours, held
	 * only until it is handed to the peer (while we hold it, the peer's
	 * death cannot show on bell). pollfd: what event loops wait on.
	 * listener: the creating end's rendezvous socket until the other end
	 * has met it; conn: the opening end's connection until the reply with
	 * the creator's doorbell is picked up.
	 */
	int bell;
	int life;    /* a broadcast reader: the write side of its life line (broadcast.c) */
	bool hung;   /* bell reported end of file: no write side is left */
	bool graced; /* the peer's lock was given its grace after the hang-up (wait.c) */
	int note;    /* readable while note_set: "call again" (doorbell.c) */
	bool note_set;
	int peer_bell;
	int peer_guard;
	int own_ring;
	int pollfd;
	int listener;
	/* Accepted connections whose hello has not come yet, oldest first. */
	int pending[SHMPIPE__PENDING];
	int conn;
	uint8_t token[SHMPIPE__TOKEN_LEN]; /* the listener's name, to knock on it */
	shmpipe__u32 listening;		   /* 1 while listener is open: read by interrupts */
	shmpipe__u32 *peer_state;
	shmpipe__u32 *state; /* this end's state word: OPEN while we hold it */
	shmpipe__u32 *peer_flags;
	shmpipe__u32 *event;	  /* the word this end sleeps on */
	shmpipe__u32 *peer_event; /* the word the peer sleeps on */
	/* Set by shmpipe_*_interrupt from any thread, taken by the next sleep. */
	shmpipe__u32 interrupt;
};

struct shmpipe_writer {
	struct shmpipe__end e;
};

struct shmpipe_reader {
	struct shmpipe__end e;
};

/*
 * A broadcast writer's side of its readers (broadcast.c): the table of
 * places in the header, and for each place the doorbell of the reader the
 * writer met there (the write side and a read side, as peer_bell and
 * peer_guard), with the state word that reader took the place with: a
 * place taken again by a reader not met yet has a word that differs.
 */
struct shmpipe__met {
	int bell;
	int guard;
	int life; /* the read side of the reader's life line, in lives */
	uint32_t word;
};

struct shmpipe__fan {
	unsigned n; /* places: the geometry's readers, checked at attach */
	struct shmpipe__place *places;
	shmpipe__u64 *claim; /* a shared pipe's: the first record not taken, else NULL */
	/*
	 * The life lines: a pipe per reader met, whose only write side the
	 * reader holds, so that its death (or close) shows here as a hang-up
	 * even though all readers share our doorbell. lives is a poller of
	 * their read sides, itself in pollfd.
	 */
	int lives;
	uint64_t reaped_ns; /* when the writer last looked for dead readers */
	bool joining;	    /* in shmpipe_writer_wait_readers: nobody left is no death */
	struct shmpipe__met met[];
};

/* A handle pointer is a pointer to its prefix: the inline calls rely on it. */
_Static_assert(offsetof(struct shmpipe__end, f) == 0 && offsetof(struct shmpipe_writer, e) == 0 &&
		   offsetof(struct shmpipe_reader, e) == 0,
	       "a handle starts with struct shmpipe__fast");

/*
 * The wait/wake protocol (wait.c). A waiter announces itself on its end's
 * event word (e->event) and waits on its doorbell until ready(e) holds; a
 * signaller calls shmpipe__signal after publishing the change that makes it
 * hold. docs/design.md has the argument. shmpipe__wait returns 0 once
 * ready(e) holds, -EAGAIN (timeout 0), -ETIMEDOUT, -EINTR, or -ECONNRESET if
 * the peer died without closing and ready(e) is false.
 */
typedef bool (*shmpipe__ready_fn)(const struct shmpipe__end *e);

struct shmpipe__deadline {
	bool set;
	struct timespec ts;
};

SHMPIPE__INTERNAL int shmpipe__wait(struct shmpipe__end *e, shmpipe__ready_fn ready,
				    shmpipe__u64 *waits, struct shmpipe__deadline *dl);

/*
 * What a wait asks of the operating system (wait.c), as os.h says of the
 * functions of the same names; shmpipe__wait_ops points to them, and only
 * tests point it elsewhere, before any end is made.
 */
struct shmpipe__wait_ops {
	uint64_t (*now_ns)(void);
	void (*yield)(void);
	void (*deadline)(struct timespec *out, int timeout_ms);
	int (*barrier)(void);
	int (*doorbell_wait)(int fd, int poll_fd, const struct timespec *deadline);
	int (*lock_held)(int fd, unsigned byte);
};

/*
 * Waits, in 1 ms steps for at most a short grace (wait.c), for the lock on
 * byte of fd to be let go; whether it was. For a peer whose descriptor that
 * says it died (a doorbell, a life line) hung up while its lock is held.
 */
SHMPIPE__INTERNAL bool shmpipe__lock_let_go(int fd, unsigned byte);

SHMPIPE__INTERNAL extern const struct shmpipe__wait_ops *shmpipe__wait_ops;

/*
 * Promises the peer a barrier before each of our waits from now on, so that
 * it may publish without a fence. Made before the first sleep, or when a
 * blocking call opens the inline window (ring.c, wait.c), not when the end is
 * taken: an end that only an event loop drives (timeout 0) waits after
 * every burst, and a barrier each time costs it more (an interrupt to every
 * other processor) than its peer's fences cost the peer. A peer that has
 * not seen the flag fences, and our waits pay the barrier from this one on,
 * so it may see it at any moment.
 */
static inline void shmpipe__promise_barrier(struct shmpipe__end *e)
{
	if (!e->barrier && e->registered && e->timeout_ms != 0) {
		e->barrier = true;
		shmpipe__store32_relaxed(e->flags, SHMPIPE__END_BARRIER);
	}
}

/*
 * Wakes the peer waiting on event, whose word was last seen as w (WAITER
 * set): takes the bit, then rings the peer's doorbell.
 */
SHMPIPE__INTERNAL void shmpipe__wake(struct shmpipe__end *e, shmpipe__u32 *event, uint32_t w);

/*
 * The fenced signal: the caller has just published a state with a store_sc;
 * this load_sc pairs with the waiter's fetch_or. In the steady state nobody
 * waits, the bit is clear, and this load is all the signal costs.
 */
static inline void shmpipe__signal(struct shmpipe__end *e, shmpipe__u32 *event)
{
	uint32_t w = shmpipe__load32_sc(event);

	if (w & SHMPIPE__WAITER)
		shmpipe__wake(e, event, w);
}

/*
 * The doorbells and the rendezvous (doorbell.c). doorbell_init gives a new
 * end its doorbell and its pollfd; pair_meet connects the two ends of a
 * pair. A creating end: listen draws a token and returns the listening
 * socket, with a backlog for its readers (before the header is published), listen_attach hands it to the
 * end. An opening end: dial connects to the header's token before the end
 * is taken (the socket, -1 if nobody listens, or -errno), hello sends our
 * doorbell once it is. meet makes what progress the rendezvous can without
 * blocking; meet_wait (a creating end still listening) waits for one
 * connection and takes it: 0, or -EINTR. meet_never gives up meeting a
 * peer that is gone (our doorbell then hangs up for good); pending says
 * whether connections wait for their hello. ring rings the
 * peer's doorbell; note sets or clears the end's note to its event loop;
 * doorbell_close closes all of it.
 */
SHMPIPE__INTERNAL int shmpipe__doorbell_init(struct shmpipe__end *e);
SHMPIPE__INTERNAL int shmpipe__pair_meet(struct shmpipe__end *w, struct shmpipe__end *r);
SHMPIPE__INTERNAL int shmpipe__listen(uint8_t *token, unsigned readers);
SHMPIPE__INTERNAL int shmpipe__listen_attach(struct shmpipe__end *e, int listener,
					     const uint8_t *token);
SHMPIPE__INTERNAL int shmpipe__dial(const uint8_t *token);
SHMPIPE__INTERNAL void shmpipe__hello(struct shmpipe__end *e, int s);
SHMPIPE__INTERNAL void shmpipe__meet(struct shmpipe__end *e);
SHMPIPE__INTERNAL int shmpipe__meet_wait(struct shmpipe__end *e);
SHMPIPE__INTERNAL void shmpipe__meet_never(struct shmpipe__end *e);
SHMPIPE__INTERNAL bool shmpipe__pending(const struct shmpipe__end *e);
SHMPIPE__INTERNAL void shmpipe__ring(struct shmpipe__end *e);
SHMPIPE__INTERNAL void shmpipe__note(struct shmpipe__end *e, bool set);
SHMPIPE__INTERNAL void shmpipe__doorbell_close(struct shmpipe__end *e);

/*
 * The hot path's signalling, in two halves: shmpipe__publish stores this
 * end's new position (write_index or read_index) with release, so that the
 * bytes before it are visible to a peer that acquires it; then, once any
 * counters are out, shmpipe__signal_peer looks whether the peer sleeps on
 * event and wakes it. The look must not be ordered before the store (the
 * store-buffering pair with the waiter's announcement, wait.c). Two ways:
 *
 *  - fenced: the store and the load are seq_cst (an xchg on x86-64, which
 *    stalls until the store buffer drains and the line is ours);
 *  - fenceless, when both ends take part in process-wide barriers: only the
 *    compiler is kept from reordering, and a waiter that is about to sleep
 *    issues a barrier that orders this side's processor for it (wait.c).
 *
 * Fenceless needs our process registered (e->registered) and the peer's
 * promise to issue the barrier before it waits (its flag, set once, before
 * its first sleep, and never cleared, so it is read until seen and then
 * cached). A peer that lies about it can only lose its own wake-ups.
 */
/*
 * Reads the peer's promise until it is seen and keeps it in e->peer_barrier
 * (an update, not only a query); returns whether publishing may be
 * fenceless.
 */
static inline bool shmpipe__update_fenceless(struct shmpipe__end *e)
{
	/* A broadcast writer has no one peer whose promise it could take. */
	if (!e->peer_barrier && e->registered && e->peer_flags)
		e->peer_barrier =
		    (shmpipe__load32_relaxed(e->peer_flags) & SHMPIPE__END_BARRIER) != 0;
	return e->peer_barrier;
}

static inline void shmpipe__publish(struct shmpipe__end *e, shmpipe__u64 *index)
{
	if (shmpipe__update_fenceless(e))
		shmpipe__store_release(index, e->f.pos);
	else
		shmpipe__store_sc(index, e->f.pos);
}

SHMPIPE__INTERNAL void shmpipe__fan_signal(struct shmpipe__end *e);

/*
 * A broadcast writer has no one peer and publishes fenced (broadcast.c): it
 * signals every reader that waits, on the fenced branch, so that the
 * fenceless one of a pipe with one reader pays nothing for it.
 */
static inline void shmpipe__signal_peer(struct shmpipe__end *e, shmpipe__u32 *event)
{
	uint32_t w;

	if (!e->peer_barrier) {
		/* After our store_sc. */
		if (e->fan)
			shmpipe__fan_signal(e);
		else
			shmpipe__signal(e, event);
		return;
	}
	/* Program order only; the peer's barrier does the rest. */
	shmpipe__compiler_barrier();
	w = shmpipe__load32_relaxed(event);
	/* In the steady state nobody sleeps: this load is all it costs. */
	if (w & SHMPIPE__WAITER)
		shmpipe__wake(e, event, w);
}

/*
 * Whether the peer attached and then went away without closing: its state
 * still says OPEN but nobody holds its liveness lock. One system call (none
 * unless the state says OPEN).
 */
SHMPIPE__INTERNAL bool shmpipe__peer_died(struct shmpipe__end *e);

struct shmpipe__geometry;

/*
 * Broadcast (broadcast.c): one writer, up to geometry.readers readers, each
 * in a place of the header's table. place_take attaches a reader to a free
 * place (holding its lock, 1 + i) and place_leave lets it go (CLOSED).
 * The writer: fan_new gives it its view of the places; fan_free lets it
 * go with the doorbells it met; fan_life makes the life line of the
 * reader in place i and returns its write side, for the reader; fan_unmet
 * says whether a reader holds a place that we have not met, or whose life
 * line hung up (only the lock table can tell of its death); fan_refresh reads every reader's position
 * into f.peer, the slowest (checked: a position past the writer's drops
 * the reader), and fan_slowest says where the slowest is now, given the
 * writer's position pos, for stats (from any thread); fan_space is the writer's wait condition (room or nobody
 * left) and fan_gone says whether nobody is left after someone came;
 * fan_signal wakes every reader that waits for data; fan_reap drops the
 * readers whose life line hung up, and, at most every
 * SHMPIPE_READERS_REAP_MS, those not met yet whose process died, and says
 * whether nobody is left; fan_greet meets a reader that brought its proof
 * and doorbell and said which place it holds with which word (said[0],
 * said[1]; doorbell.c): the write side of its life line, or -1.
 */
SHMPIPE__INTERNAL int shmpipe__place_take(struct shmpipe__end *e, const struct shmpipe__geometry *g,
					  int fd);
SHMPIPE__INTERNAL void shmpipe__place_leave(struct shmpipe__end *e, uint32_t how);
SHMPIPE__INTERNAL int shmpipe__fan_new(struct shmpipe__end *e, const struct shmpipe__geometry *g);
SHMPIPE__INTERNAL void shmpipe__fan_free(struct shmpipe__end *e);
SHMPIPE__INTERNAL int shmpipe__fan_refresh(struct shmpipe__end *e);
SHMPIPE__INTERNAL uint64_t shmpipe__fan_slowest(const struct shmpipe__end *e, uint64_t pos);
SHMPIPE__INTERNAL bool shmpipe__fan_space(const struct shmpipe__end *e);
SHMPIPE__INTERNAL bool shmpipe__fan_gone(const struct shmpipe__end *e);
SHMPIPE__INTERNAL bool shmpipe__fan_reap(struct shmpipe__end *e);
SHMPIPE__INTERNAL int shmpipe__fan_greet(struct shmpipe__end *e, const int *in,
					 const uint32_t *said);
SHMPIPE__INTERNAL int shmpipe__fan_life(struct shmpipe__end *e, unsigned i);
SHMPIPE__INTERNAL bool shmpipe__fan_unmet(const struct shmpipe__end *e);

/* Whether a broadcast writer has no reader left after one came: -EPIPE. */
static inline bool shmpipe__fan_left(const struct shmpipe__end *e)
{
	return shmpipe__load32_acquire(&e->hdr->readers_live) == 0 &&
	       shmpipe__load32_acquire(&e->hdr->reader_state) == SHMPIPE__END_OPEN;
}

/*
 * The shared object (object.c). The geometry of a pipe, as created or as
 * read and checked at attach. parse_options checks options and derives a
 * new pipe's geometry; check_name checks a POSIX shm name ('/', then 1 to
 * 200 characters, no '/'); map_new maps the object behind fd with one
 * reference, map_put drops one, unmapping with the last; header_init
 * writes a fresh header into a new, zero-filled object nobody attached to
 * (token: the creating end's rendezvous, NULL for a pair); object_check
 * reads the header behind fd by copy (into *h) and checks it, waiting up to
 * about wait_ms for a creator that has not finished it.
 */
struct shmpipe__geometry {
	uint64_t header_size;
	uint64_t capacity;
	uint64_t data_size;
	unsigned flags;
	unsigned readers; /* 1, or the places of a broadcast pipe */
};

/* How long an opener waits for a creator that has not finished its header. */
#define SHMPIPE__INIT_WAIT_MS 200

SHMPIPE__INTERNAL int shmpipe__parse_options(const shmpipe_options *opts,
					     struct shmpipe__geometry *g);
SHMPIPE__INTERNAL int shmpipe__check_name(const char *name);
SHMPIPE__INTERNAL int shmpipe__map_new(struct shmpipe__map **out, int fd,
				       const struct shmpipe__geometry *g);
SHMPIPE__INTERNAL void shmpipe__map_put(struct shmpipe__map *m);
SHMPIPE__INTERNAL void shmpipe__header_init(struct shmpipe__hdr *h,
					    const struct shmpipe__geometry *g,
					    const uint8_t *token);
SHMPIPE__INTERNAL int shmpipe__object_check(int fd, struct shmpipe__geometry *g, int wait_ms,
					    struct shmpipe__hdr *h);

#endif /* SHMPIPE_INTERNAL_H */
