/* SPDX-License-Identifier: MIT */
/*
 * The wait/wake protocol: how one side waits until the other has published
 * something, without a lost wake-up and without any system call while
 * nobody waits. It is an event count after Concurrency Kit's ck_ec: one
 * 32-bit word per direction, bit 0 "someone waits here, ring me", bits 1..31
 * a count of rings. The ring is a byte written into the waiter's doorbell, a
 * pipe only the peer can write to (doorbell.c); the byte stays there until
 * the waiter drains it.
 *
 * Waiter (this end, one thread):        Signaller (the peer):
 *   drain(bell)                           store_sc(index or state, new)
 *   w = fetch_or(event, WAITER)           w = load_sc(event)
 *   if ready(): withdraw, return          if w & WAITER:
 *   timeout 0: return -EAGAIN               if cas(event, w, w + 1):
 *   else read(bell), and look again           write(peer's bell, 1 byte)
 *
 * The waiter announces itself before its last look at the condition; the
 * signaller publishes before it looks for a waiter. With both pairs
 * sequentially consistent, at least one of them sees the other's write (the
 * store-buffering litmus test cannot end with both reading old values): the
 * waiter sees the news and does not wait, or the signaller sees the bit and
 * rings. A ring is never lost to the gap between the last look and the
 * wait: it is a byte in a pipe, and the waiter drained the pipe before it
 * announced, so a byte there now answers this announcement. The same byte is
 * what an event loop waits for on pollfd: a call with timeout 0 does
 * everything but the wait and returns -EAGAIN with the bit set, so the next
 * publication rings, and the descriptor stays readable until a later call
 * finds nothing to do and drains it (level-triggered); each drain makes the
 * next ring a new edge (edge-triggered). model/wakeup.pml checks the
 * sleeping and the polling waiter exhaustively, and docs/design.md spells it
 * out.
 *
 * The peer's death needs no ring: the kernel closes its write side of our
 * doorbell, the read reports end of file, and the waiter asks the lock
 * table whether the peer is gone (it may only have closed the descriptor).
 * An untimed wait is a single blocking read(2), so a signal handler
 * installed with SA_RESTART lets it go on, as it does a read of a pipe.
 *
 * The fence on the signaller's side is what a one-item-per-call producer
 * pays most for (the xchg waits for the store buffer to drain on every
 * write), while the waiter's side runs only before a wait. So when both
 * ends take part in process-wide barriers (membarrier(2)), the cost moves to
 * the waiter: the signaller publishes with a plain release store and looks
 * at the word with a plain load, and the waiter, between its announcement
 * and its last look, issues a barrier that makes the signaller's processor
 * pass a full fence (asymmetric Dekker, as liburcu does it). Either the
 * signaller's store was issued before that fence, and the waiter's last look
 * sees it, or the signaller's look comes after the fence, which also orders
 * the waiter's announcement before it, and it sees the bit. Closing and the
 * other rare state changes keep the seq_cst pair.
 */
#include <errno.h>

#include "internal.h"
#include "os.h"

/*
 * The calls into the operating system that a wait makes, behind one table
 * (as ck_ec_ops in Concurrency Kit): the clock, the yield, the barrier, the
 * doorbell's wait and the peer's lock. Nothing replaces it in the library;
 * tests linked with the static library point shmpipe__wait_ops elsewhere
 * (test/wait_ops.c) to drive the timeout, liveness and barrier-failure
 * branches without waiting in real time.
 */
static const struct shmpipe__wait_ops os_wait_ops = {
    .now_ns = shmpipe__os_now_ns,
    .yield = shmpipe__os_yield,
    .deadline = shmpipe__os_deadline,
    .barrier = shmpipe__os_barrier,
    .doorbell_wait = shmpipe__os_doorbell_wait,
    .lock_held = shmpipe__os_lock_held,
};

const struct shmpipe__wait_ops *shmpipe__wait_ops = &os_wait_ops;

/*
 * A waiter whose doorbell cannot tell it of its peer's death (the peer has
 * not met it yet, or closed its write side while alive) looks at the peer's
 * lock at least this often instead.
 */
#define SHMPIPE__LIVENESS_MS 10

/*
 * A dying process's descriptors are let go one by one after it has stopped
 * running (the kernel puts each last reference in a list and releases them
 * in turn), so our doorbell may hang up a moment before the object whose
 * lock says the peer lives is let go. The first time the doorbell hangs up
 * while the lock is still held, the waiter looks at the lock again in steps
 * of one millisecond for at most this long, so that the call that an event
 * loop makes when pollfd turns readable reports the death. A peer that only
 * closed its write side, alive, costs this once.
 */
#define SHMPIPE__HANGUP_GRACE_MS 20

/* How often a broadcast writer that waits looks at its readers' places anyway. */
#define SHMPIPE__FAN_RECHECK_MS 100

/* Looks at the clock only every so many turns: it costs a few pauses. */
#define SHMPIPE__SPIN_BATCH 16

/*
 * How long the spin only looks, before it starts to yield the processor
 * between looks. A peer on another core answers a hand-off within about a
 * microsecond; one that shares this core (two busy threads on one CPU, a
 * loaded machine) cannot run at all while we spin, so spinning on would
 * cost the whole spin and then a sleep for every hand-off. Yielding lets it
 * run at once, at the price of a system call per batch of looks.
 */
#define SHMPIPE__SPIN_PURE_NS 2000

static bool peer_died_late(struct shmpipe__end *e);

static bool timespec_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static bool spin_until_ready(const struct shmpipe__end *e, shmpipe__ready_fn ready)
{
	uint64_t start = 0;

	for (;;) {
		for (int i = 0; i < SHMPIPE__SPIN_BATCH; i++) {
			if (ready(e))
				return true;
			shmpipe__cpu_relax();
		}
		uint64_t now = shmpipe__wait_ops->now_ns();

		/* An interrupt is taken after the spin: stop spinning for it. */
		if (shmpipe__load32_relaxed(&e->interrupt))
			return false;
		if (!start) {
			start = now;
		} else if (now - start >= e->spin_ns) {
			return false;
		} else if (now - start >= SHMPIPE__SPIN_PURE_NS) {
			shmpipe__wait_ops->yield();
		}
	}
}

/* Takes the WAITER bit back, unless the peer already took it to ring us. */
static void withdraw(shmpipe__u32 *event, uint32_t w)
{
	shmpipe__cas32_sc(event, &w, w & ~SHMPIPE__WAITER);
}

int shmpipe__wait(struct shmpipe__end *e, shmpipe__ready_fn ready, shmpipe__u64 *waits,
		  struct shmpipe__deadline *dl)
{
	shmpipe__u32 *event = e->event; /* this end's word: space or data */
	bool counted = false;

	if (e->timeout_ms != 0 && e->spin_ns && spin_until_ready(e, ready))
		return 0;

	shmpipe__promise_barrier(e);
	if (e->timeout_ms > 0 && !dl->set) {
		shmpipe__wait_ops->deadline(&dl->ts, e->timeout_ms);
		dl->set = true;
	}

	for (;;) {
		struct timespec slice;
		const struct timespec *until = e->timeout_ms > 0 ? &dl->ts : NULL;
		int err;
		bool blind;

		/*
		 * A peer that has come to meet us brings its doorbell; one
		 * that is gone without meeting us never will.
		 */
		shmpipe__meet(e);
		if (e->own_ring >= 0)
			shmpipe__meet_never(e);

		/*
		 * Drain before announcing: a ring that lands after this stays
		 * in the doorbell for the wait below (or for the event loop),
		 * so none is lost; one drained after the announcement could be
		 * the answer to it. Level-triggered pollers rely on this too:
		 * the doorbell empties only here, when nothing can be done.
		 * A wait that will be a blocking read takes the bytes itself:
		 * a stale one only makes it look once more, so it saves the
		 * system call.
		 */
		if (e->timeout_ms >= 0 || e->listener >= 0 || e->own_ring >= 0 || e->hung) {
			if (shmpipe__os_drain(e->bell) > 0)
				e->hung = true;
			shmpipe__note(e, false);
		}

		/* Announce; pairs with the signaller's load of the word. */
		uint32_t was = shmpipe__fetch_or32_sc(event, SHMPIPE__WAITER);
		uint32_t w = was | SHMPIPE__WAITER;

		/*
		 * The slow side of the asymmetric fence: a peer that publishes
		 * without a fence may still hold its last position in its store
		 * buffer, and may have looked at the word before our
		 * announcement reached it. The barrier makes every running
		 * thread of the taking-part processes pass a full fence, so
		 * after it either the peer's store is visible to the look below
		 * or its next look at the word sees our announcement. If it
		 * fails (it should not), wait in short slices instead.
		 */
		blind = e->barrier && shmpipe__wait_ops->barrier() < 0;

		/*
		 * An interrupt from another thread of ours, taken after the
		 * announcement: pairs with the store_sc of the flag and the
		 * kick of our doorbell in interrupt_end (below).
		 */
		if (e->timeout_ms != 0 && shmpipe__load32_sc(&e->interrupt)) {
			withdraw(event, w);
			if (ready(e))
				return 0; /* no sleep after all: the flag waits for one */
			shmpipe__exchange32_sc(&e->interrupt, 0);
			return -EINTR;
		}

		/* The last look, after announcing: pairs with the peer's store_sc. */
		if (ready(e)) {
			/* Withdraw so that the peer does not ring for nothing. */
			withdraw(event, w);
			/*
			 * The drain above may have taken the ring that made an
			 * event loop call us, or the news came before our
			 * announcement and rang nothing; either way this call
			 * makes progress and may leave more to do, so the
			 * descriptor must stay readable until a call returns
			 * -EAGAIN (level-triggered): say so with the note.
			 */
			if (e->timeout_ms == 0)
				shmpipe__note(e, true);
			return 0;
		}

		/*
		 * A peer that died without closing will never ring. Its death
		 * shows as a hung-up doorbell, unless it cannot: we still hold
		 * our doorbell's write side (not met yet), or it closed its
		 * write side while alive. Then the lock is the truth.
		 */
		if (e->fan)
			blind = blind || shmpipe__fan_unmet(e);
		else
			blind = blind || e->hung || e->own_ring >= 0;
		if ((blind || e->fan) && (shmpipe__peer_died(e) || peer_died_late(e))) {
			withdraw(event, w);
			return ready(e) ? 0 : -ECONNRESET;
		}
		/*
		 * A broadcast writer's readers share its doorbell: their deaths
		 * show on their life lines, or, for a reader not met yet, only
		 * in the lock table (blind). The look for them may have dropped
		 * the reader it waited on.
		 */
		if (e->fan && ready(e)) {
			withdraw(event, w);
			return 0;
		}

		/*
		 * Non-blocking: the word keeps WAITER, so the peer rings the
		 * doorbell, and pollfd turns readable, once we may go on.
		 */
		if (e->timeout_ms == 0) {
			/*
			 * An event loop's wait: counted once per announcement,
			 * not once per call that finds the bit still set.
			 */
			if (!(was & SHMPIPE__WAITER))
				shmpipe__store_relaxed(waits, shmpipe__load_relaxed(waits) + 1);
			return -EAGAIN;
		}

		/*
		 * One wait counted per call that sleeps, however many times it
		 * wakes. Only this side writes its counter.
		 */
		if (!counted) {
			shmpipe__store_relaxed(waits, shmpipe__load_relaxed(waits) + 1);
			counted = true;
		}

		/*
		 * A broadcast writer also looks at its readers' places now and
		 * then while it waits: a position that someone made impossible
		 * without ringing drops its reader (broadcast.c) only when the
		 * writer looks.
		 */
		if ((blind && (e->listener < 0 || e->fan)) || e->fan) {
			shmpipe__wait_ops->deadline(&slice, blind ? SHMPIPE__LIVENESS_MS
								  : SHMPIPE__FAN_RECHECK_MS);
			if (!until || timespec_before(&slice, until))
				until = &slice;
		}
		/*
		 * Untimed and seeing: one blocking system call, which the
		 * kernel restarts under SA_RESTART as it does a pipe's read:
		 * read(2) of the doorbell, or, while the peer has not come to
		 * meet us (nothing else can happen before it does), accept(2)
		 * on the rendezvous (not a broadcast writer's, which listens
		 * for good: its readers ring it through pollfd). Otherwise poll(2), on pollfd while a
		 * peer may still come (a connection we took may still bring
		 * its hello: accept would not see it), and on nothing at all
		 * in slices once the doorbell has hung up (it would answer at
		 * once, for ever).
		 */
		if (!until && e->listener >= 0 && !shmpipe__pending(e) && !e->fan)
			err = shmpipe__meet_wait(e);
		else
			err = shmpipe__wait_ops->doorbell_wait(
			    e->hung ? -1 : e->bell, e->listener >= 0 ? e->pollfd : -1, until);
		if (err == 1)
			e->hung = true; /* the peer's write side is gone: look at the lock */
		if (err == -ETIMEDOUT && until == &slice)
			err = 0; /* only the slice ended: look again */
		if (ready(e)) {
			withdraw(event, w);
			return 0;
		}
		if (err < 0) {
			withdraw(event, w);
			/* The condition may have come true while we withdrew. */
			return ready(e) ? 0 : err;
		}
	}
}

void shmpipe__wake(struct shmpipe__end *e, shmpipe__u32 *event, uint32_t w)
{
	while (w & SHMPIPE__WAITER) {
		/* w + 1 clears the waiter bit and counts one more ring. */
		if (shmpipe__cas32_sc(event, &w, w + 1)) {
			shmpipe__ring(e);
			return;
		}
		/* The waiter withdrew (or changed the word): look again. */
	}
}

/* ---- how an end waits: liveness, timeouts, spinning, interrupts ---- */

bool shmpipe__lock_let_go(int fd, unsigned byte)
{
	for (int i = 0; i < SHMPIPE__HANGUP_GRACE_MS; i++) {
		struct timespec step;

		shmpipe__wait_ops->deadline(&step, 1);
		(void)shmpipe__wait_ops->doorbell_wait(-1, -1, &step);
		if (shmpipe__wait_ops->lock_held(fd, byte) == 0)
			return true;
	}
	return false;
}

/*
 * The doorbell has hung up but the peer's lock is still held: the peer may
 * be between the two in its death (above). Gives the lock its grace, once.
 */
static bool peer_died_late(struct shmpipe__end *e)
{
	if (!e->hung || e->graced || e->fan || e->reopen)
		return false;
	e->graced = true;
	return shmpipe__load32_acquire(e->peer_state) == SHMPIPE__END_OPEN &&
	       shmpipe__lock_let_go(e->fd, e->peer_lock);
}

bool shmpipe__peer_died(struct shmpipe__end *e)
{
	/* Broadcast: drops the dead readers; no reader left is the death. */
	if (e->fan)
		return shmpipe__fan_reap(e);
	/* Pairs with the peer's CAS to OPEN, made after taking its lock. */
	if (shmpipe__load32_acquire(e->peer_state) != SHMPIPE__END_OPEN)
		return false;
	/* SHMPIPE_REOPEN: a dead peer's end waits for its next holder. */
	if (e->reopen)
		return false;
	return shmpipe__wait_ops->lock_held(e->fd, e->peer_lock) == 0;
}

static int set_timeout(struct shmpipe__end *e, int timeout_ms)
{
	if (timeout_ms < -1)
		return -EINVAL;
	e->timeout_ms = timeout_ms;
	return 0;
}

int shmpipe_writer_set_timeout(shmpipe_writer *w, int timeout_ms)
{
	return w ? set_timeout(&w->e, timeout_ms) : -EINVAL;
}

int shmpipe_reader_set_timeout(shmpipe_reader *r, int timeout_ms)
{
	return r ? set_timeout(&r->e, timeout_ms) : -EINVAL;
}

static int set_spin(struct shmpipe__end *e, int spin_us)
{
	if (spin_us < -1 || spin_us > SHMPIPE_SPIN_MAX_US)
		return -EINVAL;
	e->spin_ns = spin_us < 0 ? SHMPIPE__SPIN_NS : (uint32_t)spin_us * 1000u;
	return 0;
}

/*
 * Raises the flag, then kicks the end's own doorbell: a waiter that looked
 * at the flag before it was raised is in (or about to enter) its wait on the
 * doorbell, which the byte ends; one that looks after sees the flag.
 */
static int interrupt_end(struct shmpipe__end *e)
{
	shmpipe__store32_sc(&e->interrupt, 1);
	/*
	 * A creating end that still waits for its peer waits in accept(2):
	 * knock on the rendezvous too. (The flag may be stale by the time we
	 * knock, and a knock on a closed name is harmless; the token does not
	 * change while the flag is set.)
	 */
	if (shmpipe__load32_relaxed(&e->listening))
		shmpipe__os_knock(e->token, sizeof(e->token));
	return shmpipe__os_kick(e->bell);
}

int shmpipe_writer_pollfd(shmpipe_writer *w)
{
	return w ? w->e.pollfd : -EINVAL;
}

int shmpipe_reader_pollfd(shmpipe_reader *r)
{
	return r ? r->e.pollfd : -EINVAL;
}

int shmpipe_writer_interrupt(shmpipe_writer *w)
{
	return w ? interrupt_end(&w->e) : -EINVAL;
}

int shmpipe_reader_interrupt(shmpipe_reader *r)
{
	return r ? interrupt_end(&r->e) : -EINVAL;
}

int shmpipe_writer_set_spin(shmpipe_writer *w, int spin_us)
{
	return w ? set_spin(&w->e, spin_us) : -EINVAL;
}

int shmpipe_reader_set_spin(shmpipe_reader *r, int spin_us)
{
	return r ? set_spin(&r->e, spin_us) : -EINVAL;
}
