/* SPDX-License-Identifier: MIT */
/*
 * wakeup.pml - a Promela model of shmpipe's wait/wake protocol.
 *
 * One producer and one consumer share a ring of CAP slots and move N items
 * through it. A side that cannot go on announces itself on a 32-bit event
 * word (bit 0 = WAITER, bits 1..31 = wake count) and waits on its doorbell,
 * a pipe that only the other side rings, by writing one byte, and only if
 * the WAITER bit is set. The model follows src/wait.c (shmpipe__wait,
 * shmpipe__signal, shmpipe__wake), src/ring.c (shmpipe_write, shmpipe_read)
 * and the close functions of src/close.c step by step; docs/design.md
 * explains the mapping.
 *
 * How a side waits (one kind per run, the same for both sides; -D to pick):
 *   default   the sleeper, a blocking call: drain the doorbell without
 *             blocking, announce (fetch_or WAITER), re-check, and if still
 *             not ready block in a read of the doorbell, which consumes the
 *             byte(s); then look again, and loop;
 *   WAIT_POLL the poller, a call with timeout 0 in an event loop: drain,
 *             announce, re-check; if not ready return EAGAIN leaving WAITER
 *             set. The loop calls until EAGAIN, then waits until the
 *             doorbell holds a byte (poll, epoll: level-triggered), without
 *             consuming it, and calls again;
 *   WAIT_LT   the same calls, but the loop makes one call per readiness
 *             event and each call moves at most one item: between any two
 *             calls it waits until the doorbell is readable, whatever the
 *             previous call returned (a libuv-style callback);
 *   WAIT_ET   the same calls, with the loop waiting edge-triggered
 *             (EPOLLET): it is told only of a doorbell that went from empty
 *             to non-empty since it was last told, and calls until EAGAIN.
 *             Linux reports an edge for every write to a pipe (some
 *             kernels only for the transition from empty); the model
 *             reports only the transition, which covers both, since an
 *             extra edge only adds a call, as a spurious wake-up of the
 *             loop does (SPURIOUS);
 *   WAIT_MIX  each call of either side chooses its timeout: 0, as the
 *             poller's (the loop waits on the doorbell only after an
 *             EAGAIN), or a sleep, as the sleeper's (after an early return
 *             the application calls again at once).
 * A poll call that finds the condition true after draining and withdraws
 * its announcement before any signaller took it puts one byte back into its
 * own doorbell (through the write side an interrupt uses): the drain may
 * have taken the byte that a level-triggered loop still needs, and with the
 * bit withdrawn no signaller would ring again (MUTANT_NO_RESTORE).
 *
 * What spin checks, exhaustively, for every interleaving:
 *   - no lost wake-up: no state in which a side waits on an empty doorbell
 *     (in a blocking read, or in its event loop) and nobody is left to ring
 *     it (spin: "invalid end state"). For WAIT_LT this is the level-
 *     triggered promise: the loop never waits on an empty doorbell while an
 *     item, room or the end of stream is there for its next call;
 *   - the ring: every item read is the one written at that position, the
 *     producer never overwrites an unread slot, the depth never exceeds CAP,
 *     and at end of stream the consumer has read all N items;
 *   - closing: a consumer whose writer closed drains the ring and then sees
 *     end of stream; a producer whose reader closed (at any moment) gets
 *     EPIPE instead of waiting forever;
 *   - no needless ring: a signaller rings only a waiter that has announced
 *     itself and has neither withdrawn nor been rung since;
 *   - no busy waiting (the -DNP build, pan -l): the model has no cycle, so
 *     no process can wait by going round a loop on its own.
 * Stray bytes: a new end's doorbell starts with one byte in it ("call
 * me"), and with -DSTRAY=1 another thread's interrupt, or a hostile process
 * holding a write side, may ring either doorbell once, at any moment.
 * Neither may do more than cause a spurious wake-up.
 *
 * Memory model: spin interleaves whole steps, i.e. sequential consistency,
 * except where the code relies on less. Each direction has two modes, as in
 * the code, and may switch from the first to the second at any moment:
 *   - fenced: the hot-path store is store_sc and the signaller's look a
 *     load_sc, so every access modelled here is sequentially consistent;
 *   - fenceless: the producer's store of write_index and the consumer's
 *     store of read_index go into a store buffer of their own (x86-TSO: a
 *     later load may pass them), which drains at any moment, and at once
 *     when that side executes a locked instruction (fetch_or, cas,
 *     store_sc); the look at the word is a plain load. A waiter, between
 *     announcing and its last look, issues the process-wide barrier, which
 *     drains both buffers in one step.
 * The switch (shmpipe__update_fenceless, and the promise in shmpipe__wait): each
 * end's flag (promised[]) starts clear. A sleeping call whose spin failed
 * sets it, once, before its announcement (a relaxed store, visible to the
 * peer at once), or a sleeping call may set it at its start (early_promise:
 * a blocking call that went through promises to open the inline calls'
 * gate); from that call on the end issues the barrier in every
 * wait, sleeping or polling, and before it never does. A signaller
 * publishes fenced until a publication reads the waiter's flag set, then
 * fenceless for good (fl caches it). The read of the flag is part of the
 * step that stores the position: a read made earlier could only have seen
 * it clear where this one sees it set, and a fenceless publication can do
 * all that a fenced one does (its buffer may drain at once), so no
 * behaviour is lost. Pure event loops (WAIT_POLL, WAIT_LT, WAIT_ET) never
 * promise, so their runs are fenced; with -DPROMISED init sets either flag
 * or not before the run (an end that slept before), which gives the loops
 * fenceless runs, polling calls with the barrier. -DFENCED: the processes
 * are not registered, no end ever promises, and all is fenced.
 * The ring data and the cached peer positions are ordered by release/acquire
 * in the code; here they are simply part of the interleaving (the data is
 * written before the position is buffered, so no reader can see a position
 * before its data). A doorbell is a pipe: a ring and a drain are each one
 * step, and its bytes stay until a read takes them.
 *
 * Mutants: spin -DMUTANT_x -a wakeup.pml builds a broken protocol, and
 * test/model_check.sh requires that spin finds the error in each:
 *   MUTANT_NO_RECHECK             the waiter waits without looking at the
 *                                 condition again after setting WAITER
 *   MUTANT_SIGNAL_BEFORE_PUBLISH  the signaller loads the event word before
 *                                 it stores the new index or state (what a
 *                                 release store instead of store_sc allows)
 *   MUTANT_RING_BEFORE_PUBLISH    the signaller does all of its part (look,
 *                                 take the bit, ring) before it stores
 *   MUTANT_DRAIN_LATE             the waiter drains its doorbell after
 *                                 announcing and re-checking, where it can
 *                                 eat the ring that answers the announcement
 *   MUTANT_RING_NOT_KEPT          a ring reaches only a side already blocked
 *                                 on the doorbell (as a futex wake without
 *                                 the futex's compare, or a condition
 *                                 variable without its predicate, would)
 *   MUTANT_NO_WAKE_ON_CLOSE       closing an end does not signal the peer
 *   MUTANT_EOF_NO_REREAD          the reader decides end of stream from the
 *                                 write_index it read before it saw
 *                                 writer_state CLOSED
 *   MUTANT_ALWAYS_WAKE            the signaller rings after every
 *                                 publication, as the seed notifies
 *   MUTANT_NO_WITHDRAW            a waiter that finds the condition true
 *                                 after announcing leaves WAITER set
 *   MUTANT_NO_RESTORE             a poll call that drained and withdrew
 *                                 does not put a byte back (WAIT_LT)
 *   MUTANT_NO_DRAIN               a poll call never drains, so no later
 *                                 ring is an edge (WAIT_ET)
 *   MUTANT_BUSY_WAIT              the waiter polls instead of sleeping
 *                                 (found by the -DNP run)
 *   MUTANT_NO_BARRIER             fenceless publishing, but the waiter
 *                                 does not issue the process-wide barrier
 *   MUTANT_BARRIER_LATE           the waiter sets its flag but issues the
 *                                 barrier only from the next call on, not
 *                                 in the call that set it
 *   MUTANT_POLL_NO_BARRIER        a poll call on an end whose flag is set
 *                                 skips the barrier (WAIT_MIX, PROMISED)
 *   MUTANT_EAGER_FENCELESS        the signaller publishes fenceless from
 *                                 the start (its process is registered),
 *                                 ignoring the peer's flag
 *   MUTANT_MEET_NO_NOTE           a creating end that meets its peer in
 *                                 its own ring does not tell its loop to
 *                                 call again (-DMEET, WAIT_LT)
 *   MUTANT_HELLO_GIVE_UP          a creating end woken in accept(2) before
 *                                 the hello closes the connection (-DMEET)
 *
 * -DMEET=DATA or -DMEET=SPACE: the ends of a named pipe meet during the run
 * (see "The meeting" below), the consumer or the producer having created it.
 *
 * Sizes can be changed with -DCAP=, -DN=, -DSPURIOUS= (N < 120); -DSTRAY=1
 * adds the third party, which multiplies the states by about five. WAIT_MIX
 * with N=4 has several times the states of N=3.
 */

#ifndef CAP
#define CAP 2 /* ring capacity, in items */
#endif
#ifndef N
#define N 4 /* items the producer writes */
#endif
#ifndef SPURIOUS
#define SPURIOUS 1 /* early returns from a wait in one run */
#endif
#ifndef STRAY
#define STRAY 0 /* 1: a third party may ring a doorbell once */
#endif

#if defined(WAIT_POLL) || defined(WAIT_LT) || defined(WAIT_ET) || \
	defined(WAIT_MIX)
#define POLLER 1 /* calls with timeout 0 from an event loop (some, WAIT_MIX) */
#endif

#define WAITER 1

/*
 * The locals of a side, as waiter and as signaller. slp: this call sleeps
 * (a timeout other than 0), else it returns EAGAIN. bar: the waiter's
 * e->barrier, its own flag as it set it. fl: the signaller's
 * e->peer_barrier, which MUTANT_EAGER_FENCELESS sets from the start (the
 * process is registered, and the peer's flag is ignored). fresh: the
 * current wait promised the barrier (MUTANT_BARRIER_LATE only).
 */
#ifdef POLLER
#define SLP_INIT false
#else
#define SLP_INIT true
#endif
#ifdef MUTANT_EAGER_FENCELESS
#define FL_INIT true
#else
#define FL_INIT false
#endif
#if defined(MUTANT_BARRIER_LATE)
#define BARRIER_DUE (bar && !fresh) /* not in the wait that promised */
#elif defined(MUTANT_POLL_NO_BARRIER)
#define BARRIER_DUE (bar && slp) /* not in a poll call */
#else
#define BARRIER_DUE bar
#endif
#ifdef MUTANT_BARRIER_LATE
#define WAITER_LOCALS(e) \
	bool slp = SLP_INIT, fl = FL_INIT, bar = promised[e], fresh;
#else
#define WAITER_LOCALS(e) bool slp = SLP_INIT, fl = FL_INIT, bar = promised[e];
#endif

#define OPEN 1
#define CLOSED 2

#define DATA 0  /* data_event: the consumer waits here, the producer signals */
#define SPACE 1 /* space_event: the producer waits here, the consumer signals */

/* The shared header (struct shmpipe__hdr). Positions count items. */
byte widx;          /* write_index: stored by the producer only */
byte ridx;          /* read_index: stored by the consumer only */
byte wstate = OPEN; /* writer_state */
byte rstate = OPEN; /* reader_state */
byte buf[CAP];      /* the data region */
byte need = 1;      /* room the writer waits for: e->want (1, or a whole record) */
byte ev[2];         /* data_event, space_event */

/*
 * The doorbells, private to the two processes and the kernel: bell[e] says
 * whether the pipe of the side that waits on ev[e] (the consumer's for DATA,
 * the producer's for SPACE) holds a byte. How many does not matter: a drain
 * takes them all, and a wait that takes only some is followed by a drain
 * before the next announcement.
 *
 * A new end's doorbell holds one byte, so that an event loop may wait
 * before its first call. A sleeper drains its doorbell before it first
 * looks at it, and nothing rings it before its first announcement, so
 * there the byte would change nothing but the number of states and is left
 * out.
 *
 * edge[e]: an edge-triggered event that epoll has queued and not yet
 * reported.
 */
#ifdef POLLER
bool bell[2] = true;
#else
bool bell[2];
#endif
#ifdef WAIT_ET
bool edge[2] = true;
#endif

/*
 * The meeting: the ends of a named pipe (-DMEET=DATA: the consumer created the
 * pipe, the producer opens it; -DMEET=SPACE: the other way round). The
 * opening end connects to the creating end's rendezvous, then sends its
 * hello (with its doorbell), before any call of its own. Until the creating
 * end has greeted it (met), the opening end has no doorbell to ring: its
 * rings go nowhere, and the creating end's descriptor is readable through
 * the rendezvous instead (RDV). The creating end meets its peer at the top
 * of every round of a wait, and in a ring of its own (shmpipe__ring), which
 * then also sets the note, so that the loop calls once more.
 * MUTANT_HELLO_GIVE_UP: a creating end that wakes in accept(2) before the
 * hello closes the connection, and can never meet its peer.
 */
#ifdef MEET
bool conn;   /* the opening end has connected */
bool hello;  /* ... and sent its hello */
bool met;    /* the creating end has greeted it */
bool gaveup; /* MUTANT_HELLO_GIVE_UP: the connection was closed unmet */
#define RDV(e) (e == MEET && !met && hello)
#else
#define RDV(e) false
#endif

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
proctype memory()
{
end:
	do
	:: atomic { wpend -> widx = wbuf; wpend = false }
	:: atomic { rpend -> ridx = rbuf; rpend = false }
	od
}

/*
 * The ends' flags words (writer_flags, reader_flags): promised[e] says that
 * the side waiting on ev[e] (the consumer for DATA, the producer for SPACE)
 * has set SHMPIPE__END_BARRIER, "I issue the process-wide barrier before
 * every wait from now on". Only that side stores it; its private copy,
 * e->barrier, is its local bar. It starts clear, or with -DPROMISED either
 * clear or set, chosen by init for each end (an end that slept before this
 * run, now driven by an event loop).
 */
bool promised[2];

/*
 * Early returns left in this run: EINTR or a timeout that ends a blocking
 * wait, or an event loop that calls without being told to (a timer, another
 * descriptor). Each is chosen before the wait blocks, never while it is
 * blocked: a blocked process must have no way out but a ring, or spin would
 * not see a lost wake-up as an invalid end state.
 */
byte early = SPURIOUS;

/*
 * Ghost state for the "no needless ring" check, read by assertions only.
 * announced[e]: the waiter on ev[e] has set WAITER and has neither withdrawn
 * it nor been answered by a signaller's CAS.
 */
bool announced[2];

#ifdef MUTANT_RING_NOT_KEPT
bool blocked[2]; /* the side is blocked in a read of its doorbell */
#endif

/* write(2) of one byte to the doorbell of the side waiting on ev[e]. */
inline ring(e)
{
	atomic {
#ifdef MUTANT_RING_NOT_KEPT
		if
		:: blocked[e] -> bell[e] = true /* lost unless read at once */
		:: else
		fi
#else
#ifdef WAIT_ET
		if
		:: !bell[e] -> edge[e] = true /* empty to non-empty */
		:: else
		fi;
#endif
		bell[e] = true
#endif
	}
}

/* shmpipe__meet on the creating end: greets the peer once its hello is there. */
#ifdef MEET
inline meet()
{
	atomic {
		if
		:: !met && hello && !gaveup -> met = true
		:: else
		fi
	}
}
#endif

/*
 * The ring of a signaller that took the waiter's bit (shmpipe__ring). The
 * opening end's ring reaches the creating end only once they have met; the
 * creating end meets the opening end first if it has not yet, and then
 * sets its own note: its descriptor was readable through the rendezvous,
 * which the meeting ends, while a ring it will never get may have told of
 * work to do, and this call, which makes progress, does not look again.
 */
inline signal_ring(e)
{
#ifdef MEET
	atomic {
		if
		:: e != MEET && !met ->
			meet();
#ifndef MUTANT_MEET_NO_NOTE
			if
			:: met -> ring(MEET)
			:: else
			fi
#endif
		:: else
		fi;
		if
		:: met -> ring(e)
		:: else /* the opening end's ring, before the meeting: nowhere */
		fi
	}
#else
	ring(e)
#endif
}

/*
 * The opening end's first steps, before any call: it connects, then says
 * hello (an edge on the creating end's descriptor, edge-triggered).
 */
inline open_end(own)
{
#ifdef MEET
	if
	:: own != MEET ->
		conn = true;
		atomic {
			hello = true;
#ifdef WAIT_ET
			edge[MEET] = true
#endif
		}
	:: else
	fi
#else
	skip
#endif
}

/* A non-blocking read of everything in the doorbell (shmpipe__os_drain). */
inline drain_bell(e)
{
#ifdef MUTANT_NO_DRAIN
	skip
#else
	bell[e] = false
#endif
}

/*
 * The blocking wait of a sleeper (shmpipe__os_doorbell_wait): a read of the
 * doorbell that returns with the byte(s) in it, or (fail = true) an early
 * return with EINTR or ETIMEDOUT.
 */
inline sleep_on_bell(e)
{
	if
	:: atomic { early > 0 -> early--; fail = true }
	:: true ->
#if defined(MUTANT_RING_NOT_KEPT)
		blocked[e] = true;
		atomic { bell[e] -> bell[e] = false; blocked[e] = false }
#elif defined(MUTANT_HELLO_GIVE_UP)
		atomic {
			bell[e] || (e == MEET && !met && conn && !gaveup) ->
			bell[e] = false;
			if
			:: e == MEET && !met && !hello -> gaveup = true
			:: else
			fi
		}
#else
		atomic { bell[e] || RDV(e) -> bell[e] = false }
#endif
	fi
}

/*
 * The event loop's wait between calls (poll or epoll_wait on pollfd): it
 * returns once the doorbell is readable and leaves the byte(s) in it. Edge-
 * triggered, it returns for an edge that epoll has queued, and takes it,
 * but only while the doorbell is readable: epoll looks at the descriptor
 * again before it reports an edge, so one queued before a drain emptied the
 * doorbell is reported only once a new byte comes.
 */
inline loop_wait(e)
{
	if
	:: atomic { early > 0 -> early-- }
	:: true ->
#if defined(WAIT_ET)
		atomic { edge[e] && (bell[e] || RDV(e)) -> edge[e] = false }
#else
		bell[e] || RDV(e)
#endif
	fi
}

/*
 * A third party (an interrupt from another thread, which writes into the
 * end's own doorbell, or a hostile process holding a write side) rings
 * doorbell e once, at any moment. init starts it, for either doorbell, or
 * does not: a process that might still ring would let a side blocked by a
 * lost wake-up out, so runs without it are needed to see that as an error.
 */
proctype stray(byte e)
{
	ring(e)
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

/*
 * cas_sc(&ev, w, w & ~WAITER): take the announcement back, if still there.
 * withdrew: the CAS succeeded, so no signaller took the bit, and none will
 * ring for this announcement.
 */
inline withdraw(e, w)
{
	atomic {
		drain_waiter(e);
#ifndef MUTANT_NO_WITHDRAW
		if
		:: ev[e] == w -> ev[e] = w & ~WAITER; withdrew = true
		:: else /* the signaller bumped the word first: it rings */
		fi;
#endif
		announced[e] = false
	}
}

/*
 * A blocking call that went through may promise too, without having
 * waited: writer_arm and reader_arm (ring.c) do, to open the inline calls'
 * gate for the peer. So a sleeping end may set its flag at the start of
 * any call, as well as before its first sleep (wait_for).
 */
inline early_promise(e)
{
#if !defined(FENCED) && !defined(MUTANT_BUSY_WAIT)
	if
	:: slp && !bar ->
		bar = true;
		promised[e] = true
	:: skip
	fi
#else
	skip
#endif
}

/*
 * shmpipe__wait: returns with err = false once ready() holds, or with
 * err = true when it still does not: for a sleeper after EINTR/ETIMEDOUT
 * (the caller then returns -EINTR or the partial count, and the
 * application calls again), for a poll call at once (EAGAIN, or the partial
 * count), leaving WAITER set so that the signaller rings the doorbell.
 */
inline wait_for(e, pos)
{
	err = false;
	/* The sleeper's bounded spin, or the poll call's own look: ready() only. */
	ready(e, pos, r);
#if !defined(FENCED) && !defined(MUTANT_BUSY_WAIT)
	/*
	 * About to sleep for the first time: promise the barrier (a relaxed
	 * store of the flag, which the peer may see at once or later).
	 */
	if
	:: !r && slp && !bar ->
		bar = true;
		promised[e] = true
#ifdef MUTANT_BARRIER_LATE
		;
		fresh = true /* only the mutant needs to remember it */
#endif
	:: else
	fi;
#endif
	do
	:: r -> break
	:: else ->
#ifdef MUTANT_BUSY_WAIT
		ready(e, pos, r)
#else
#ifdef MEET
		/* The creating end meets a peer that has said hello. */
		if
		:: e == MEET -> meet()
		:: else
		fi;
#endif
		/*
		 * Drain first: a ring that lands after the drain answers this
		 * announcement or a later one, and stays for the wait.
		 */
#ifndef MUTANT_DRAIN_LATE
		drain_bell(e);
#endif
		atomic { /* w = fetch_or_sc(&ev, WAITER) | WAITER */
			drain_waiter(e);
			w = ev[e] | WAITER;
			ev[e] = w;
			announced[e] = true
		}
#ifndef MUTANT_NO_BARRIER
		/*
		 * shmpipe__os_barrier(): every running thread fences. Issued
		 * in every wait of an end that has promised it, the wait that
		 * promised it included, sleeping or polling.
		 */
		if
		:: BARRIER_DUE ->
			atomic {
				drain_w();
				drain_r()
			}
		:: else
		fi;
#endif
#ifndef MUTANT_NO_RECHECK
		ready(e, pos, r); /* the last look, after announcing */
#endif
#ifdef MUTANT_DRAIN_LATE
		drain_bell(e);
#endif
		if
		:: r ->
			withdraw(e, w);
#if defined(POLLER) && !defined(MUTANT_NO_RESTORE)
			/*
			 * The drain may have emptied a doorbell that a level-
			 * triggered loop waits on before its next call, and
			 * nobody will ring a withdrawn announcement: put the
			 * byte back (shmpipe__os_kick), unless a signaller
			 * took the bit and rings anyway. Poll calls only.
			 */
			if
			:: withdrew && !slp -> ring(e)
			:: else
			fi
#endif
		:: !r && !slp ->
			err = true; /* EAGAIN: WAITER stays set */
			r = true
		:: else ->
			sleep_on_bell(e);
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
		withdrew = false;
		fail = false
#endif
	od;
#ifdef MUTANT_BARRIER_LATE
	fresh = false;
#endif
	r = false
}

/*
 * shmpipe__signal, after the caller's store of an index or a state:
 * sw = load(&ev); while WAITER is set, cas_sc(&ev, &sw, sw + 1) clears it
 * and counts one wake-up, and only a successful CAS rings the doorbell.
 */
inline signal_rest(e)
{
#ifdef MUTANT_ALWAYS_WAKE
	atomic {
		assert(announced[e]); /* a ring nobody needs */
		ring(e)
	}
#else
	do
	:: (sw & WAITER) ->
		atomic {
			drain_signaller(e);
			if
			:: ev[e] == sw ->
				assert(announced[e]); /* a ring nobody needs */
				ev[e] = sw + 1;
				announced[e] = false;
				cas_ok = true
			:: else ->
				sw = ev[e]; /* a failed CAS reloads: the waiter withdrew */
				cas_ok = false
			fi
		}
		if
		:: cas_ok -> signal_ring(e); break
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
#if defined(MUTANT_SIGNAL_BEFORE_PUBLISH)
	sw = ev[e];
	atomic { drain_signaller(e); var = val };
	signal_rest(e)
#elif defined(MUTANT_RING_BEFORE_PUBLISH)
	sw = ev[e];
	signal_rest(e);
	atomic { drain_signaller(e); var = val }
#else
	atomic { drain_signaller(e); var = val };
	sw = ev[e];
	signal_rest(e)
#endif
}

/*
 * shmpipe__publish + shmpipe__signal_peer: a new position. The mode is
 * shmpipe__update_fenceless: fl, the signaller's e->peer_barrier, caches the
 * waiter's flag once it has been read set; until then each publication
 * reads the flag (a relaxed load, in the step of the store: see the memory
 * model above). Fenced, the store is a store_sc, as in publish() above;
 * fenceless, it goes into the owner's buffer, and the look at the word, a
 * plain load, may see memory before the store leaves the buffer.
 */
inline store_pos(sbuf, spend, var, val, e)
{
	atomic {
		if
		:: !fl -> fl = promised[e]
		:: else
		fi;
		if
		:: fl -> sbuf = val; spend = true
		:: else -> drain_signaller(e); var = val
		fi
	}
}

inline publish_pos(sbuf, spend, var, val, e)
{
#if defined(MUTANT_SIGNAL_BEFORE_PUBLISH)
	sw = ev[e];
	store_pos(sbuf, spend, var, val, e);
	signal_rest(e)
#elif defined(MUTANT_RING_BEFORE_PUBLISH)
	sw = ev[e];
	signal_rest(e);
	store_pos(sbuf, spend, var, val, e)
#else
	store_pos(sbuf, spend, var, val, e);
	sw = ev[e];
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

/*
 * The application: write items 1..N in calls of any length, then close.
 * A poller waits on its doorbell after a call that returned EAGAIN; with
 * WAIT_LT before every call, the first too (the new doorbell's byte lets it
 * through, as it lets an event loop that polls before calling).
 */
proctype producer()
{
	byte wpos = 0;   /* e->pos: the writer's own position, private */
	byte rcache = 0; /* e->peer: read_index as last read */
	byte want, sent, n, i, w, sw;
	bool r, err, fail, cas_ok, withdrew;
	WAITER_LOCALS(SPACE)
#ifdef POLLER
	bool again = false; /* the last call returned EAGAIN */
#endif

	open_end(SPACE);
	do
	:: wpos == N -> break
	:: else ->
#ifdef POLLER
#ifdef WAIT_LT
		loop_wait(SPACE);
#else
		if
		:: again -> loop_wait(SPACE)
		:: else
		fi;
#endif
		again = false;
#endif
#ifdef WAIT_MIX
		/* This call's timeout: 0, or a sleep (set_timeout between calls). */
		if
		:: slp = true
		:: slp = false
		fi;
#endif
		early_promise(SPACE);
		/* shmpipe_write of "want" items; "sent" is its "done" */
		if
		:: rstate == CLOSED -> goto epipe /* reader_gone() */
		:: else
		fi;
		/* Any number of items; one in a level-triggered loop (WAIT_LT). */
		want = 1;
#ifndef WAIT_LT
		do
		:: want < N - wpos -> want++
		:: break
		od;
#endif
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
				:: err -> break /* -EINTR, -EAGAIN or the partial count */
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
#ifdef POLLER
		again = err && sent == 0 && !slp;
#endif
		want = 0;
		sent = 0;
		err = false
	od;
epipe:
	close_end(wstate, DATA)
}

/* The application: read until end of stream, or close the read end early. */
proctype consumer()
{
	byte rpos = 0;   /* e->pos: the reader's own position, private */
	byte wcache = 0; /* e->peer: write_index as last read */
	byte k, i, w, sw;
	bool r, err, fail, cas_ok, withdrew;
	WAITER_LOCALS(DATA)
#ifdef POLLER
	bool again = false; /* the last call returned EAGAIN */
#endif

	open_end(DATA);
read_call:
#ifdef POLLER
#ifdef WAIT_LT
	loop_wait(DATA);
#else
	if
	:: again -> loop_wait(DATA)
	:: else
	fi;
#endif
	again = false;
#endif
	if
	:: goto close_early /* the reader may close at any time */
	:: skip
	fi;
#ifdef WAIT_MIX
	if /* this call's timeout: 0, or a sleep */
	:: slp = true
	:: slp = false
	fi;
#endif
	early_promise(DATA);
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
		:: err -> /* -EINTR, or -EAGAIN: called again */
			err = false;
#ifdef POLLER
			again = !slp; /* EAGAIN: wait in the loop; EINTR: call again */
#endif
			goto read_call
		:: else
		fi
	od;
	assert(wcache - rpos <= CAP);
	/*
	 * memcpy out: 1..available items (a read may ask for less); one in a
	 * level-triggered loop (WAIT_LT).
	 */
	k = 1;
#ifndef WAIT_LT
	do
	:: k < wcache - rpos -> k++
	:: break
	od;
#endif
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

/*
 * Everything starts in one step, so that no run differs from another only
 * in when the third party was chosen.
 */
init
{
	atomic {
#if STRAY
		if
		:: run stray(DATA)
		:: run stray(SPACE)
		:: skip
		fi;
#endif
#ifdef PROMISED
		if
		:: promised[DATA] = true
		:: skip
		fi;
		if
		:: promised[SPACE] = true
		:: skip
		fi;
#endif
		run memory();
		run producer();
		run consumer()
	}
}
