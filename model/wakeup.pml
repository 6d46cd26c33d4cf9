/*
 * wakeup.pml - a Promela model of shmpipe's wait/wake protocol.
 *
 * One producer and one consumer share a ring of CAP slots and move N items
 * through it. A side that cannot go on sleeps on a 32-bit event word (bit 0
 * = WAITER, bits 1..31 = wake count); the other side wakes it only if the
 * WAITER bit is set. The model follows src/wait.c (shmpipe__wait,
 * shmpipe__signal), src/ring.c (shmpipe_write, shmpipe_read) and the close
 * functions of src/setup.c step by step; docs/design.md explains the mapping.
 *
 * What spin checks, exhaustively, for every interleaving:
 *   - no lost wake-up: no state in which a process is blocked in futex_wait
 *     and nobody is left to wake it (spin: "invalid end state");
 *   - the ring: every item read is the one written at that position, the
 *     producer never overwrites an unread slot, the depth never exceeds CAP,
 *     and at end of stream the consumer has read all N items;
 *   - closing: a consumer whose writer closed drains the ring and then sees
 *     end of stream; a producer whose reader closed (at any moment) gets
 *     EPIPE instead of sleeping forever;
 *   - no needless wake: futex_wake is called only while the waiter is inside
 *     its wait (it has set WAITER and has not yet withdrawn or returned);
 *     every way out of the wait withdraws the bit;
 *   - no busy waiting (the -DNP build, pan -l): the model has no cycle, so
 *     no process can wait by going round a loop on its own.
 *
 * Memory model: spin interleaves whole steps, i.e. sequential consistency,
 * except where the code relies on less. Two modes, as in the code:
 *   - fenceless (the default here; the code's mode when both ends take part
 *     in process-wide barriers): the producer's store of write_index and the
 *     consumer's store of read_index go into a store buffer of their own
 *     (x86-TSO: a later load may pass them), which drains at any moment, and
 *     at once when that side executes a locked instruction (fetch_or, cas,
 *     store_sc). A waiter, between announcing and its last look, issues the
 *     process-wide barrier, which drains both buffers in one step;
 *   - -DFENCED: the hot-path stores are store_sc and the signaller's look a
 *     load_sc, so every access modelled here is sequentially consistent.
 * The ring data and the cached peer positions are ordered by release/acquire
 * in the code; here they are simply part of the interleaving (the data is
 * written before the position is buffered, so no reader can see a position
 * before its data).
 *
 * Mutants: spin -DMUTANT_x -a wakeup.pml builds a broken protocol, and
 * test/model_check.sh requires that spin finds the error in each:
 *   MUTANT_NO_RECHECK             the waiter sleeps without looking at the
 *                                 condition again after setting WAITER
 *   MUTANT_SIGNAL_BEFORE_PUBLISH  the signaller loads the event word before
 *                                 it stores the new index or state (what a
 *                                 release store instead of store_sc allows)
 *   MUTANT_NO_WAKE_ON_CLOSE       closing an end does not signal the peer
 *   MUTANT_NO_FUTEX_CHECK         the sleep does not compare the word with
 *                                 the announced value (a sleep without the
 *                                 futex's atomic check)
 *   MUTANT_EOF_NO_REREAD          the reader decides end of stream from the
 *                                 write_index it read before it saw
 *                                 writer_state CLOSED
 *   MUTANT_ALWAYS_WAKE            the signaller calls futex_wake after every
 *                                 publication, as the seed notifies
 *   MUTANT_NO_WITHDRAW            a waiter that finds the condition true
 *                                 after announcing leaves WAITER set
 *   MUTANT_BUSY_WAIT              the waiter polls instead of sleeping
 *                                 (found by the -DNP run)
 *   MUTANT_NO_BARRIER             fenceless publishing, but the waiter
 *                                 does not issue the process-wide barrier
 *
 * Sizes can be changed with -DCAP=, -DN=, -DSPURIOUS= (N < 120).
 */

#ifndef CAP
#define CAP 2 /* ring capacity, in items */
#endif
#ifndef N
#define N 4 /* items the producer writes */
#endif
#ifndef SPURIOUS
#define SPURIOUS 1 /* early returns from futex_wait in one run */
#endif

#define WAITER 1

#define OPEN 1
#define CLOSED 2

#define DATA 0  /* data_event: the consumer sleeps here, the producer signals */
#define SPACE 1 /* space_event: the producer sleeps here, the consumer signals */

/* The shared header (struct shmpipe__hdr). Positions count items. */
byte widx;          /* write_index: stored by the producer only */
byte ridx;          /* read_index: stored by the consumer only */
byte wstate = OPEN; /* writer_state */
byte rstate = OPEN; /* reader_state */
byte buf[CAP];      /* the data region */
byte need = 1;      /* room the writer waits for: e->want (1, or a whole record) */
byte ev[2];         /* data_event, space_event */

/*
 * Store buffers (fenceless mode): a position stored by its owner but not yet
 * visible to the other side. A newer store replaces a pending one, which
 * only hides the older value's visit to memory: the other side reads
 * positions only to compare them, and the newer value allows all it did.
 */
byte wbuf;          /* write_index waiting in the producer's buffer */
bool wpend;
byte rbuf;          /* read_index waiting in the consumer's buffer */
bool rpend;

/* A locked instruction (or the process-wide barrier) drains a buffer. */
inline drain_w()
{
	if
	:: wpend -> widx = wbuf; wpend = false
	:: else
	fi
}

inline drain_r()
{
	if
	:: rpend -> ridx = rbuf; rpend = false
	:: else
	fi
}

/* The buffer owned by the side that waits on ev[e] (and signals the other). */
inline drain_waiter(e)
{
	if
	:: e == DATA -> drain_r()
	:: else -> drain_w()
	fi
}

inline drain_signaller(e)
{
	if
	:: e == DATA -> drain_w()
	:: else -> drain_r()
	fi
}

/* Buffers drain on their own, at any moment. */
active proctype memory()
{
end:
	do
	:: atomic { wpend -> widx = wbuf; wpend = false }
	:: atomic { rpend -> ridx = rbuf; rpend = false }
	od
}

/* The kernel's futex queue: is the one waiter of ev[e] blocked in it? */
bool sleeping[2];

/* Spurious wake-ups, EINTR and timeouts left in this run. */
byte early = SPURIOUS;

/*
 * Ghost state for the "no needless wake" check, read by assertions only.
 * announced[e]: the waiter on ev[e] has set WAITER and has neither withdrawn
 * it nor returned.
 */
bool announced[2];

/*
 * futex(FUTEX_WAIT_BITSET) in shmpipe__os_wait: the kernel compares the word
 * with w and queues the caller in one atomic step, or returns at once
 * (EAGAIN, which os_wait reports as 0) if they differ. A queued caller stays
 * blocked until futex_wake, except that up to SPURIOUS times per run it may
 * return early: spuriously (fail = false) or with EINTR/ETIMEDOUT
 * (fail = true). Timeouts are never a way out of a lost wake-up: the budget
 * is small and spin explores the runs in which it is spent elsewhere.
 */
inline futex_wait(e, w)
{
	atomic {
#ifdef MUTANT_NO_FUTEX_CHECK
		sleeping[e] = true
#else
		if
		:: ev[e] == w -> sleeping[e] = true
		:: else -> skip
		fi
#endif
	}
	if
	:: !sleeping[e] -> fail = false /* woken, or never slept */
	:: atomic { early > 0 && sleeping[e] -> early--; sleeping[e] = false; fail = false }
	:: atomic { early > 0 && sleeping[e] -> early--; sleeping[e] = false; fail = true }
	fi
}

/* futex(FUTEX_WAKE, 1) in shmpipe__os_wake: unblock the waiter if queued. */
inline futex_wake(e)
{
	sleeping[e] = false
}

/*
 * The ready() callbacks of ring.c, two seq_cst loads each:
 *   data_or_eof:   load_sc(write_index) != pos || load_sc(writer_state) == CLOSED
 *   space_or_gone: capacity - (pos - load_sc(read_index)) >= want
 *                  || load_sc(reader_state) == CLOSED
 */
inline ready(e, pos, r)
{
	if
	:: e == DATA ->
		r = (widx != pos);
		if
		:: !r -> r = (wstate == CLOSED)
		:: else
		fi
	:: else ->
		r = (CAP - (pos - ridx) >= need);
		if
		:: !r -> r = (rstate == CLOSED)
		:: else
		fi
	fi
}

/* cas_sc(&ev, w, w & ~WAITER): take the announcement back, if still there. */
inline withdraw(e, w)
{
	atomic {
		drain_waiter(e);
#ifndef MUTANT_NO_WITHDRAW
		if
		:: ev[e] == w -> ev[e] = w & ~WAITER
		:: else /* the signaller bumped the word first: nothing to withdraw */
		fi;
#endif
		announced[e] = false
	}
}

/*
 * shmpipe__wait: returns with err = false once ready() holds, or with
 * err = true after EINTR/ETIMEDOUT while it still does not (the caller then
 * returns -EINTR or the partial count, and the application calls again).
 */
inline wait_for(e, pos)
{
	err = false;
	ready(e, pos, r); /* spin_until_ready: a bounded spin only repeats ready() */
	do
	:: r -> break
	:: else ->
#ifdef MUTANT_BUSY_WAIT
		ready(e, pos, r)
#else
		atomic { /* w = fetch_or_sc(&ev, WAITER) | WAITER */
			drain_waiter(e);
			w = ev[e] | WAITER;
			ev[e] = w;
			announced[e] = true
		}
#if !defined(FENCED) && !defined(MUTANT_NO_BARRIER)
		atomic { /* shmpipe__os_barrier(): every running thread fences */
			drain_w();
			drain_r()
		}
#endif
#ifndef MUTANT_NO_RECHECK
		ready(e, pos, r); /* the last look, after announcing */
#endif
		if
		:: r -> withdraw(e, w)
		:: else ->
			futex_wait(e, w);
			ready(e, pos, r);
			if
			:: r -> withdraw(e, w)
			:: else ->
				if
				:: fail ->
					withdraw(e, w);
					ready(e, pos, r);
					err = !r;
					r = true
				:: else
				fi
			fi
		fi;
		w = 0;
		fail = false
#endif
	od;
	r = false
}

/*
 * shmpipe__signal, after the caller's store_sc of an index or a state:
 * sw = load_sc(&ev); while WAITER is set, cas_sc(&ev, &sw, sw + 1) clears it
 * and counts one wake-up, and only a successful CAS calls futex_wake.
 */
inline signal_rest(e)
{
#ifdef MUTANT_ALWAYS_WAKE
	atomic {
		assert(announced[e]); /* a futex_wake nobody needs */
		futex_wake(e)
	}
#else
	do
	:: (sw & WAITER) ->
		atomic {
			drain_signaller(e);
			if
			:: ev[e] == sw ->
				assert(announced[e]); /* a futex_wake nobody needs */
				ev[e] = sw + 1;
				cas_ok = true
			:: else ->
				sw = ev[e]; /* a failed CAS reloads: the waiter withdrew */
				cas_ok = false
			fi
		}
		if
		:: cas_ok -> futex_wake(e); break
		:: else
		fi
	:: else -> break
	od;
	cas_ok = false
#endif
	sw = 0
}

/*
 * store_sc(var, val), then shmpipe__signal(&ev[e]): the rare state changes
 * (closing), in either mode. The xchg drains the buffer first.
 */
inline publish(var, val, e)
{
#ifdef MUTANT_SIGNAL_BEFORE_PUBLISH
	sw = ev[e];
	atomic { drain_signaller(e); var = val };
#else
	atomic { drain_signaller(e); var = val };
	sw = ev[e];
#endif
	signal_rest(e)
}

/*
 * shmpipe__publish + shmpipe__signal_peer: a new position. Fenced, it is
 * publish() above; fenceless, the store goes into the owner's buffer and the
 * look at the word is a plain load, which may see memory before the store
 * leaves the buffer.
 */
inline publish_pos(sbuf, spend, var, val, e)
{
#ifdef FENCED
	publish(var, val, e)
#else
#ifdef MUTANT_SIGNAL_BEFORE_PUBLISH
	sw = ev[e];
	atomic { sbuf = val; spend = true };
#else
	atomic { sbuf = val; spend = true };
	sw = ev[e];
#endif
	signal_rest(e)
#endif
}

/* shmpipe_writer_close / shmpipe_reader_close. */
inline close_end(state, e)
{
#ifdef MUTANT_NO_WAKE_ON_CLOSE
	atomic { drain_signaller(e); state = CLOSED }
#else
	publish(state, CLOSED, e)
#endif
}

/* The application: write items 1..N in calls of any length, then close. */
active proctype producer()
{
	byte wpos = 0;   /* e->pos: the writer's own position, private */
	byte rcache = 0; /* e->peer: read_index as last read */
	byte want, sent, n, i, w, sw;
	bool r, err, fail, cas_ok;

	do
	:: wpos == N -> break
	:: else ->
		/* shmpipe_write of "want" items; "sent" is its "done" */
		if
		:: rstate == CLOSED -> goto epipe /* reader_gone() */
		:: else
		fi;
		want = 1;
		do
		:: want < N - wpos -> want++
		:: break
		od;
		/*
		 * A stream write waits for room for one item at a time; a record
		 * (or a reserve of want items) waits for room for all of it and
		 * goes in at once: e->want in the code.
		 */
		if
		:: need = 1
		:: want <= CAP -> need = want
		fi;
		sent = 0;
		do
		:: sent == want -> break
		:: else ->
			if
			:: CAP - (wpos - rcache) < need -> rcache = ridx /* writer_refresh */
			:: else
			fi;
			if
			:: CAP - (wpos - rcache) < need ->
				wait_for(SPACE, wpos);
				if
				:: err -> break /* -EINTR or the partial count */
				:: else
				fi;
				if
				:: rstate == CLOSED -> goto epipe
				:: else
				fi
			:: else ->
				/* memcpy: as many items as fit, then publish once */
				atomic {
					n = CAP - (wpos - rcache);
					if
					:: n > want - sent -> n = want - sent
					:: else
					fi;
					i = 0;
					do
					:: i < n ->
						assert(wpos + i - ridx < CAP); /* slot is free */
						buf[(wpos + i) % CAP] = wpos + i + 1;
						i++
					:: else -> break
					od;
					wpos = wpos + n;
					sent = sent + n;
					n = 0;
					i = 0
				}
				publish_pos(wbuf, wpend, widx, wpos, DATA)
			fi
		od;
		want = 0;
		sent = 0;
		err = false
	od;
epipe:
	close_end(wstate, DATA)
}

/* The application: read until end of stream, or close the read end early. */
active proctype consumer()
{
	byte rpos = 0;   /* e->pos: the reader's own position, private */
	byte wcache = 0; /* e->peer: write_index as last read */
	byte k, i, w, sw;
	bool r, err, fail, cas_ok;

read_call:
	if
	:: goto close_early /* the reader may close at any time */
	:: skip
	fi;
	/* shmpipe_read */
	do
	:: wcache != rpos -> break
	:: else ->
		wcache = widx; /* reader_refresh */
		if
		:: wcache != rpos -> break
		:: else
		fi;
		if
		:: wstate == CLOSED ->
#ifndef MUTANT_EOF_NO_REREAD
			wcache = widx; /* one more look finds all it wrote */
#endif
			if
			:: wcache == rpos -> goto eof
			:: else -> break
			fi
		:: else
		fi;
		wait_for(DATA, rpos);
		if
		:: err -> err = false; goto read_call /* -EINTR: called again */
		:: else
		fi
	od;
	assert(wcache - rpos <= CAP);
	/* memcpy out: 1..available items (a read may ask for less) */
	k = 1;
	do
	:: k < wcache - rpos -> k++
	:: break
	od;
	atomic {
		i = 0;
		do
		:: i < k ->
			assert(buf[(rpos + i) % CAP] == rpos + i + 1);
			i++
		:: else -> break
		od;
		rpos = rpos + k;
		k = 0;
		i = 0
	}
	publish_pos(rbuf, rpend, ridx, rpos, SPACE);
	goto read_call;
eof:
	assert(rpos == N);
close_early:
	close_end(rstate, SPACE)
}
