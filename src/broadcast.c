/* SPDX-License-Identifier: MIT */
/*
 * Broadcast: one writer, several readers, each of which gets every byte
 * written after it came. The ring is the same; what changes is who holds
 * the writer back. Each reader has a place in a table after the header
 * (layout.h), where it publishes its position and sleeps, and the writer
 * may overwrite a byte only once every live reader is past it: its room is
 * counted from the slowest one, found by reading every place whenever the
 * room it knows runs short (fan_refresh). Readers wake the writer through
 * the one space_event word, as a single reader does; the writer wakes each
 * sleeping reader through its place's data_event and the doorbell it met
 * that reader with.
 *
 * Joining. A reader takes the first place whose lock (byte 1 + i of the
 * object) it can take: holding it, nobody else is in the place, though the
 * state may still say OPEN for a reader that died there. It then:
 *
 *   r1 = write_index; place.read_index = r1      (a position behind us)
 *   place.state = OPEN, a new generation          (seq_cst)
 *   r2 = write_index                              (seq_cst)
 *   starts at r2; place.read_index = r2; signals the writer
 *
 * The writer publishes write_index with seq_cst and reads the states with
 * seq_cst loads when it looks for room: either its look sees the place
 * OPEN, with a position of r1 or later (never ahead of r2), or the reader's
 * second look sees everything the writer had published by then. Either way
 * the writer never overwrites a byte at or after r2 without seeing this
 * reader past it. A position further behind than the capacity (r1, while
 * the writer raced ahead) only means no room until the reader publishes
 * r2. model/fanout.pml checks this, with leaving, dying and waking.
 *
 * Leaving. A reader that closes marks its place CLOSED; a reader whose
 * process died is dropped by the writer, which asks the lock table about
 * each OPEN place at most every SHMPIPE_READERS_REAP_MS while it waits
 * (fan_reap); a reader that publishes a position the writer never reached
 * is dropped at once. Both are compare-and-swaps of the exact state word,
 * whose generation makes sure that it is the same reader. readers_live
 * counts the OPEN places, at least (a reader counts itself before it is
 * OPEN and uncounts after it is not), so that the writer learns that
 * nobody is left, -EPIPE, with one load per write.
 *
 * Everything in a place is written by a process we do not trust: the
 * positions are checked before they are used, the place index is ours.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"
#include "os.h"

/* Looks at the rendezvous that take a backlog of readers' hellos (os.h). */
#define SHMPIPE__MEET_LOOKS (SHMPIPE__OS_BACKLOG_MANY / 8 + 1)

static struct shmpipe__place *places_of(struct shmpipe__hdr *h)
{
	return (struct shmpipe__place *)(void *)((uint8_t *)h + SHMPIPE__PLACES);
}

/*
 * One reader fewer in readers_live, never below zero: a place that someone
 * set OPEN without taking it was never counted, and dropping it must not
 * make the count wrap (and -EPIPE never come). The count is only a hint
 * that the places confirm (ring.c).
 */
static void uncount(struct shmpipe__hdr *h)
{
	uint32_t n = shmpipe__load32_relaxed(&h->readers_live);

	while (n && !shmpipe__cas32_sc(&h->readers_live, &n, n - 1))
		;
}

/* ---- the readers ---------------------------------------------------- */

int shmpipe__place_take(struct shmpipe__end *e, const struct shmpipe__geometry *g, int fd)
{
	struct shmpipe__hdr *h = e->hdr;
	struct shmpipe__place *p = NULL;
	uint32_t word, next, absent = SHMPIPE__END_ABSENT;
	uint64_t r1, r2;
	unsigned i;
	int blocked = -EBUSY;

	for (i = 0; i < g->readers; i++) {
		int err = shmpipe__os_lock(fd, SHMPIPE__READER_LOCK + i);

		if (err == 0) {
			p = &places_of(h)[i];
			break;
		}
		/* Held by a reader (or blocked by someone's read lock): the next. */
		if (err != -EBUSY && err != -EACCES)
			return err;
		if (err == -EACCES)
			blocked = err;
	}
	/* No place: all held by readers, or some kept from us by read locks. */
	if (!p)
		return blocked;
	/* Counted before OPEN, so that the count is never below the OPEN places. */
	atomic_fetch_add_explicit(&h->readers_live, 1, memory_order_seq_cst);
	r1 = shmpipe__load_acquire(&h->write_index);
	shmpipe__store_relaxed(&p->consumed, 0);
	shmpipe__store_relaxed(&p->consumer_waits, 0);
	shmpipe__store32_relaxed(&p->flags, 0);
	shmpipe__store32_sc(&p->data_event, 0);
	/* A shared pipe's reader holds no record yet: nothing to keep. */
	shmpipe__store_release(&p->read_index, e->share ? SHMPIPE__HOLD_NONE : r1);
	word = shmpipe__load32_acquire(&p->state);
	do {
		next = ((SHMPIPE__PLACE_GEN(word) + 1) << 8) | SHMPIPE__END_OPEN;
	} while (!shmpipe__cas32_sc(&p->state, &word, next));
	/* A reader that died here was still counted: it is gone now. */
	if (SHMPIPE__PLACE_STATE(word) == SHMPIPE__END_OPEN)
		uncount(h);
	/* The first reader: the writer now gets -EPIPE once none is left. */
	shmpipe__cas32_sc(&h->reader_state, &absent, SHMPIPE__END_OPEN);
	e->place = p;
	e->place_index = i;
	e->place_word = next;
	r2 = shmpipe__load_sc(&h->write_index);
	if (r2 < r1) {
		shmpipe__place_leave(e, SHMPIPE__END_CLOSED);
		return -EPROTO;
	}
	e->f.pos = e->f.peer = r2;
	e->f.off = r2 % g->data_size;
	if (!e->share)
		shmpipe__store_sc(&p->read_index, r2);
	atomic_store_explicit(&p->pid, shmpipe__os_pid(), memory_order_relaxed);
	e->index = &p->read_index;
	e->ops = &p->consumed;
	e->waits = &p->consumer_waits;
	e->flags = &p->flags;
	e->event = &p->data_event;
	e->state = &p->state;
	return 0;
}

void shmpipe__place_leave(struct shmpipe__end *e, uint32_t how)
{
	uint32_t word = e->place_word;

	/* Unless the writer dropped us already, and uncounted us with it. */
	if (shmpipe__cas32_sc(&e->place->state, &word, (word & ~0xffu) | how))
		uncount(e->hdr);
	/*
	 * The place is free now, for the next reader: our description may
	 * outlive us for a moment (the proof in our hello waits for the
	 * writer to take it, doorbell.c), and its lock with it.
	 */
	shmpipe__os_unlock(e->fd, SHMPIPE__READER_LOCK + e->place_index);
}

/* ---- the writer ----------------------------------------------------- */

/* Closes what we kept of the reader we met in place i. */
static void forget(struct shmpipe__fan *fan, unsigned i)
{
	struct shmpipe__met *m = &fan->met[i];

	if (m->life >= 0)
		shmpipe__os_poller_del(fan->lives, m->life);
	if (m->bell >= 0)
		shmpipe__os_close(m->bell);
	if (m->guard >= 0)
		shmpipe__os_close(m->guard);
	if (m->life >= 0)
		shmpipe__os_close(m->life);
	m->bell = m->guard = m->life = -1;
}

int shmpipe__fan_new(struct shmpipe__end *e, const struct shmpipe__geometry *g)
{
	struct shmpipe__fan *fan = calloc(1, sizeof(*fan) + g->readers * sizeof(fan->met[0]));

	if (!fan)
		return -ENOMEM;
	fan->n = g->readers;
	fan->places = places_of(e->hdr);
	if (g->flags & SHMPIPE_SHARE)
		fan->claim = (shmpipe__u64 *)(void *)((uint8_t *)e->hdr + SHMPIPE__CLAIM);
	for (unsigned i = 0; i < fan->n; i++)
		fan->met[i].bell = fan->met[i].guard = fan->met[i].life = -1;
	fan->lives = shmpipe__os_poller_new();
	if (fan->lives < 0) {
		int err = fan->lives;

		free(fan);
		return err;
	}
	e->fan = fan;
	e->peer_flags = NULL; /* publish fenced: readers come and go */
	return 0;
}

void shmpipe__fan_free(struct shmpipe__end *e)
{
	struct shmpipe__fan *fan = e->fan;

	if (!fan)
		return;
	for (unsigned i = 0; i < fan->n; i++)
		forget(fan, i);
	shmpipe__os_close(fan->lives);
	free(fan);
	e->fan = NULL;
}

/* Drops the reader that holds place p with word (dead, or impossible). */
static void drop(struct shmpipe__end *e, struct shmpipe__place *p, uint32_t word)
{
	if (shmpipe__cas32_sc(&p->state, &word, (word & ~0xffu) | SHMPIPE__PLACE_DROPPED))
		uncount(e->hdr);
}

/*
 * The slowest live reader's position, given ours (pos): OPEN places only,
 * and only positions we have reached; *any says whether there was one.
 * seq_cst loads: the writer's side of the join (see the top) and of the
 * wait's store-buffering pair.
 */
static uint64_t slowest(const struct shmpipe__fan *fan, uint64_t pos, bool *any)
{
	uint64_t min = pos;

	*any = false;
	/*
	 * A shared pipe: the first record nobody took, then the records
	 * readers hold (in this order: a reader holds a record before it
	 * moves the claim past it). A claim ahead of us is impossible: no
	 * record nobody took is there to keep.
	 */
	if (fan->claim) {
		uint64_t c = shmpipe__load_sc(fan->claim);

		min = c < pos ? c : pos;
	}
	for (unsigned i = 0; i < fan->n; i++) {
		struct shmpipe__place *p = &fan->places[i];
		uint64_t r;

		if (SHMPIPE__PLACE_STATE(shmpipe__load32_sc(&p->state)) != SHMPIPE__END_OPEN)
			continue;
		r = shmpipe__load_sc(&p->read_index);
		if (fan->claim && r == SHMPIPE__HOLD_NONE) {
			*any = true;
			continue;
		}
		if (r > pos)
			continue;
		*any = true;
		if (r < min)
			min = r;
	}
	return min;
}

/* The room the slowest reader leaves: none if nobody reads, or one lags. */
static uint64_t room_from(const struct shmpipe__end *e, uint64_t min, bool any)
{
	uint64_t used = e->f.pos - min;

	return any && used <= e->f.capacity ? e->f.capacity - used : 0;
}

uint64_t shmpipe__fan_slowest(const struct shmpipe__end *e, uint64_t pos)
{
	bool any;
	uint64_t min = slowest(e->fan, pos, &any);

	return any ? min : pos;
}

int shmpipe__fan_refresh(struct shmpipe__end *e)
{
	struct shmpipe__fan *fan = e->fan;
	uint64_t min;
	bool any;

	/* First drop whoever claims to be where we never wrote. */
	for (unsigned i = 0; i < fan->n; i++) {
		struct shmpipe__place *p = &fan->places[i];
		uint32_t word = shmpipe__load32_sc(&p->state);

		uint64_t r = shmpipe__load_sc(&p->read_index);

		if (SHMPIPE__PLACE_STATE(word) == SHMPIPE__END_OPEN && r > e->f.pos &&
		    !(fan->claim && r == SHMPIPE__HOLD_NONE))
			drop(e, p, word);
	}
	min = slowest(fan, e->f.pos, &any);
	/* f.peer is what the room is counted from: pos - capacity is none. */
	e->f.peer = e->f.pos - (e->f.capacity - room_from(e, min, any));
	/* For observers (shmpipe_stat): the slowest reader, as of now. */
	if (any)
		shmpipe__store_relaxed(&e->hdr->read_index, e->f.peer);
	return 0;
}

bool shmpipe__fan_gone(const struct shmpipe__end *e)
{
	bool any;

	slowest(e->fan, e->f.pos, &any);
	return !any && shmpipe__load32_sc(&e->hdr->reader_state) == SHMPIPE__END_OPEN;
}

bool shmpipe__fan_space(const struct shmpipe__end *e)
{
	bool any;
	uint64_t min = slowest(e->fan, e->f.pos, &any);

	if (any)
		return room_from(e, min, any) >= e->want;
	return shmpipe__load32_sc(&e->hdr->reader_state) == SHMPIPE__END_OPEN;
}

/*
 * Rings the reader in place i, which waits on word w: the doorbell met
 * with the reader who holds the place now, meeting it first if we have
 * not (its hello is in the rendezvous before it can wait).
 */
static void wake(struct shmpipe__end *e, unsigned i, uint32_t w)
{
	struct shmpipe__fan *fan = e->fan;
	struct shmpipe__place *p = &fan->places[i];
	uint32_t word = shmpipe__load32_acquire(&p->state);

	/*
	 * Its hello may wait behind others' (readers that came and went while
	 * we did not look): a look takes a few connections at a time, so look
	 * until the backlog is through. A reader we still have not met keeps
	 * its bit, so that the ring waits for the meeting (fan_greet).
	 */
	for (int k = 0; fan->met[i].word != word && k < SHMPIPE__MEET_LOOKS; k++)
		shmpipe__meet(e);
	if (fan->met[i].word != word || fan->met[i].bell < 0)
		return;
	while (w & SHMPIPE__WAITER) {
		if (shmpipe__cas32_sc(&p->data_event, &w, w + 1)) {
			shmpipe__os_ring(fan->met[i].bell);
			return;
		}
	}
}

void shmpipe__fan_signal(struct shmpipe__end *e)
{
	struct shmpipe__fan *fan = e->fan;

	/* After the store_sc of write_index or writer_state: the look of the pair. */
	for (unsigned i = 0; i < fan->n; i++) {
		uint32_t w = shmpipe__load32_sc(&fan->places[i].data_event);

		if (w & SHMPIPE__WAITER)
			wake(e, i, w);
	}
}

bool shmpipe__fan_unmet(const struct shmpipe__end *e)
{
	const struct shmpipe__fan *fan = e->fan;

	for (unsigned i = 0; i < fan->n; i++) {
		uint32_t word = shmpipe__load32_relaxed(&fan->places[i].state);

		/*
		 * Not met yet, or met and its life line hung up while the place
		 * still says OPEN: a process's descriptors close one by one as
		 * it dies, and its lock may outlast its life line for a moment.
		 */
		if (SHMPIPE__PLACE_STATE(word) == SHMPIPE__END_OPEN &&
		    (fan->met[i].word != word || fan->met[i].life < 0))
			return true;
	}
	return false;
}

/*
 * Life lines that hung up: their readers closed or died. Each is let go (a
 * hang-up stays readable for good); returns the places whose lines ended.
 */
static uint64_t lives_ended(struct shmpipe__fan *fan)
{
	int fds[16];
	int n = shmpipe__os_poller_ready(fan->lives, fds, 16);
	uint64_t ended = 0;

	for (int k = 0; k < n; k++) {
		for (unsigned i = 0; i < fan->n; i++) {
			if (fan->met[i].life != fds[k])
				continue;
			shmpipe__os_poller_del(fan->lives, fan->met[i].life);
			shmpipe__os_close(fan->met[i].life);
			fan->met[i].life = -1;
			ended |= (uint64_t)1 << i;
		}
	}
	return ended;
}

bool shmpipe__fan_reap(struct shmpipe__end *e)
{
	struct shmpipe__fan *fan = e->fan;
	uint64_t now = shmpipe__wait_ops->now_ns();
	uint64_t ended = lives_ended(fan);
	bool due = ended != 0;

	/*
	 * A reader we have not met has no life line yet, and one whose life
	 * line hung up may still hold its lock for a moment: their deaths
	 * show only in the lock table, looked at every so often while they
	 * hold a place.
	 */
	if (!due && shmpipe__fan_unmet(e))
		due = now - fan->reaped_ns >= (uint64_t)SHMPIPE_READERS_REAP_MS * 1000000u;
	if (due) {
		fan->reaped_ns = now;
		for (unsigned i = 0; i < fan->n; i++) {
			struct shmpipe__place *p = &fan->places[i];
			uint32_t word = shmpipe__load32_sc(&p->state);
			unsigned lock = SHMPIPE__READER_LOCK + i;

			if (SHMPIPE__PLACE_STATE(word) != SHMPIPE__END_OPEN)
				continue;
			/*
			 * A line that hung up just now, its lock still held:
			 * the reader is likely dying (its descriptors go one
			 * by one), and a polling writer would not be woken
			 * again for it, so its lock gets a short grace.
			 */
			if (shmpipe__wait_ops->lock_held(e->fd, lock) == 0 ||
			    ((ended >> i & 1) && shmpipe__lock_let_go(e->fd, lock)))
				drop(e, p, word);
		}
	}
	/* Nobody left is no death while the writer waits for readers to come. */
	return !fan->joining && shmpipe__fan_gone(e);
}

int shmpipe__fan_life(struct shmpipe__end *e, unsigned i)
{
	struct shmpipe__fan *fan = e->fan;
	int fds[2];
	int err = shmpipe__os_doorbell(fds);

	if (err < 0)
		return err;
	err = shmpipe__os_poller_add(fan->lives, fds[0]);
	if (err < 0) {
		shmpipe__os_close(fds[0]);
		shmpipe__os_close(fds[1]);
		return err;
	}
	fan->met[i].life = fds[0];
	return fds[1];
}

int shmpipe__fan_greet(struct shmpipe__end *e, const int *in, const uint32_t *said)
{
	struct shmpipe__fan *fan = e->fan;
	unsigned i = said[0];
	uint32_t word;
	int life;

	/*
	 * The reader said which place it holds, with which state word. The
	 * place must say the same and be held (its lock, seen through our
	 * own description), and the proof must be a description of this
	 * object open for writing, which a process that may only read it
	 * cannot make. The proof is not the reader's own description: in
	 * flight in our rendezvous until we take it, that one would keep the
	 * reader's lock, and its place taken, after the reader's death. A
	 * hello whose reader has left, or whose place another reader has
	 * taken since, says a word the place no longer has.
	 */
	if (i >= fan->n)
		return -1;
	word = shmpipe__load32_acquire(&fan->places[i].state);
	if (word != said[1] || SHMPIPE__PLACE_STATE(word) != SHMPIPE__END_OPEN ||
	    fan->met[i].word == word || shmpipe__os_same_file(in[0], e->fd) != 1 ||
	    shmpipe__os_writable(in[0]) != 1 ||
	    shmpipe__os_lock_held(e->fd, SHMPIPE__READER_LOCK + i) != 1)
		return -1;
	forget(fan, i);
	life = shmpipe__fan_life(e, i);
	if (life < 0)
		return -1;
	fan->met[i].bell = in[1];
	fan->met[i].guard = in[2];
	fan->met[i].word = word;
	/* A ring kept for the meeting (wake): a stray one is harmless. */
	wake(e, i, shmpipe__load32_sc(&fan->places[i].data_event));
	return life;
}

/* ---- waiting for readers -------------------------------------------- */

/* OPEN places (dead readers count until they are dropped). */
static unsigned readers_in(const struct shmpipe__end *e)
{
	unsigned n = 0;

	if (!e->fan)
		return shmpipe__load32_sc(&e->hdr->reader_state) == SHMPIPE__END_OPEN;
	for (unsigned i = 0; i < e->fan->n; i++)
		n += SHMPIPE__PLACE_STATE(shmpipe__load32_sc(&e->fan->places[i].state)) ==
		     SHMPIPE__END_OPEN;
	return n;
}

static bool enough_readers(const struct shmpipe__end *e)
{
	return readers_in(e) >= e->want;
}

int shmpipe_writer_wait_readers(shmpipe_writer *w, unsigned n)
{
	struct shmpipe__deadline dl = {0};
	struct shmpipe__end *e;

	if (!w)
		return -EINVAL;
	e = &w->e;
	if (n > (e->fan ? e->fan->n : 1))
		return -EINVAL;
	while (readers_in(e) < n) {
		int err;

		e->want = n;
		if (e->fan)
			e->fan->joining = true;
		err = shmpipe__wait(e, enough_readers, &e->hdr->producer_waits, &dl);
		if (e->fan)
			e->fan->joining = false;
		/* The one reader died: it will not come back. */
		if (err == -ECONNRESET)
			return -EPIPE;
		if (err < 0)
			return err;
	}
	return (int)readers_in(e);
}
