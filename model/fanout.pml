/* SPDX-License-Identifier: MIT */
/*
 * fanout.pml - a Promela model of shmpipe's broadcast (fan-out) protocol:
 * one writer, several readers, each reader gets every item written after
 * it joined, at its own pace, and the writer never overwrites an item that
 * a live reader has still to read. wakeup.pml checks the wait/wake protocol
 * of one writer and one reader in detail (ways of waiting, fenceless
 * publication, stray rings); this model takes its sleeper, all fenced, and
 * checks what fan-out adds: the room over several readers, joining
 * mid-stream, leaving, dying and reaping, and signalling every reader.
 *
 * The shared words: write_index W (stored by the writer), writer_state, a
 * ring of C slots, and for each reader place ("slot") j < NSLOT its state
 * (FREE, OPEN, CLOSED, DROPPED), its published position R[j] and its
 * data_event (its reader waits for data on it, the writer signals it). One
 * space_event: the writer waits for room on it, any reader signals it.
 * Doorbells: the writer's, which any reader may ring, and one per place,
 * which only the writer rings. Every access is seq_cst: the writer is
 * always fenced, fan-out has no fenceless publication and no process-wide
 * barrier. Waiting and signalling are wakeup.pml's sleeper's: the waiter
 * drains its doorbell, fetch_or(event, WAITER), looks at its condition, and
 * blocks in a read of the doorbell if it still does not hold; after a
 * wake-up it takes its announcement back (cas) and looks again. The
 * signaller stores, loads the event word, and if WAITER is set CASes it to
 * (count + 1, WAITER clear) and, if the CAS succeeded, rings the doorbell.
 *
 * The processes (init starts them all in one step):
 *   writer    writes items 0..K-1 (item p is stored as VAL(p)), then
 *             closes: store_sc(writer_state, CLOSED), then signals every
 *             place's data_event. Before item p it looks at the places,
 *             one seq_cst load of each state and of each OPEN place's R,
 *             and computes room = C - (p - min R over the OPEN places):
 *             0 with no place OPEN, and 0 if an OPEN R < p - C (a joiner's
 *             first, stale R: positions are unsigned in the code, where the
 *             subtraction would wrap to a huge room). With room >= 1:
 *             store the item, store_sc(W, p + 1), signal each place's
 *             data_event. Else, if no place is OPEN and one is not FREE (a
 *             reader had been there), EPIPE: it closes. Else it waits on
 *             space_event for room >= 1 or EPIPE. Its sleep ends in a ring,
 *             or in the 10 ms liveness slice: once after a reader died
 *             (deathnote), or spuriously (-DTIMER= times per run, each
 *             chosen before the sleep blocks, never while it is blocked).
 *             After a slice it reaps: cas(state, OPEN, DROPPED) of each
 *             place whose process is dead (a ghost flag, for the kernel's
 *             answer), then looks again.
 *   reader 0  place 0: the pipe's first reader, OPEN at 0 from the start
 *             (with -DJOIN0 it joins as reader 1 does); reads to end of
 *             stream (with -DLEAVE0=true it may leave, as reader 1).
 *   reader 1  place 1: joins at any moment, reads to end of stream, may
 *             leave at the top of any read call (-DLEAVE1=false: never),
 *             and may die (-DKILL1=0: never): init chooses whether it
 *             will, and if so the killer stops it for good at any moment,
 *             its place left OPEN. (A killer that could fire in any run
 *             would let a process blocked by a lost wake-up out.)
 *   reader 2  -DLATE: waits until place 1 is CLOSED or DROPPED, joins it and
 *             reads to end of stream; or never joins, if the writer
 *             finished first.
 * Join: r1 = load(W); store(R, r1); store_sc(state, OPEN); r2 = load_sc(W);
 * store_sc(R, r2); signal space_event; the reader starts at r2. Read: if
 * load_sc(W) > pos, take ring[pos % C], pos++, store_sc(R, pos), signal
 * space_event; else if load_sc(writer_state) is CLOSED and another load of
 * W still equals pos, end of stream; else wait on its data_event for
 * W != pos or writer_state CLOSED. Leave: store_sc(state, CLOSED), signal
 * space_event. A joiner registers itself in the place (the ghost owner,
 * and dead[] cleared, for the code's pid) before its first store.
 *
 * What spin checks, exhaustively, for every interleaving:
 *   - no overrun of a live reader, twice: each item a reader takes from the
 *     ring is the one written for its position; and no store of item p
 *     finds a reader that has its start position, has neither left nor
 *     died, and has not read item p - C (the one the store overwrites);
 *   - no lost wake-up: no state in which a process is blocked forever
 *     (spin: "invalid end state"), so every reader that neither left nor
 *     died reaches end of stream, and the writer writes all K items, or
 *     gets EPIPE, and closes;
 *   - a joiner gets a contiguous suffix of the stream: it reads from its
 *     join position on, each item checked as above, and at end of stream it
 *     is at K; or the writer got EPIPE, and then the reader joined when no
 *     reader was left and read nothing (pos == jpos);
 *   - at the end (init, once every other process is done): W == K, or EPIPE;
 *   - no needless ring: a signaller's CAS takes only an announcement that
 *     is still there (announced[], as in wakeup.pml).
 *
 * Mutants: spin -DMUTANT_x -a fanout.pml builds a broken protocol, and
 * test/model_check.sh requires that spin finds the error in each:
 *   MUTANT_JOIN_NO_REREAD   the joiner does not load W again after going
 *                           OPEN: it starts at r1, which the writer may
 *                           have overwritten while the place was not OPEN
 *   MUTANT_NO_STALE_CHECK   the writer does not take an OPEN R < W - C for
 *                           no room: the unsigned room wraps (huge)
 *   MUTANT_MIN_SKIPS_SLOT   the writer leaves the last place out of the
 *                           minimum (as if its reader had read everything)
 *   MUTANT_READ_NO_SIGNAL   a reader does not signal space_event after it
 *                           publishes its R
 *   MUTANT_SIGNAL_ONE       the writer signals place 0's data_event only
 *                           (after a write, and when it closes)
 *   MUTANT_REAP_ALIVE       the reap drops an OPEN place without asking
 *                           whether its process is dead
 *   MUTANT_LEAVE_NO_SIGNAL  a leaving reader does not signal space_event
 *
 * Each step of the model is one access of the code (a load, a store, a
 * fetch_or or a CAS, a ring or a drain of a doorbell); atomic blocks join
 * an access to the private bookkeeping around it, and to ghost updates.
 *
 * Sizes: -DC= (ring, in items, default 2), -DK= (items, default 3, at most
 * 15), -DTIMER=. The state space grows fast: the default has 4.8 million
 * states, K=4 with reader 1 only joining 2.0 million, -DLATE with C=1, K=2
 * and reader 1 only dying 7.0 million, -DLATE with the defaults and reader
 * 1 only dying 14 million (test/model_check.sh lists what it runs).
 *
 * Simplifications. Each read call moves one item: a read of several only
 * publishes R less often. A place's doorbell and data_event belong to the
 * place, so a reader that takes a place over may find a byte or a WAITER
 * bit that the one before it left, which only makes a spurious wake-up.
 * The wake-up count of an event word is not kept (EVMOD 2; -DEVMOD=8 keeps
 * two bits of it, at ten times the states): each word has one waiter,
 * which alone sets WAITER, so between its announcement and its withdrawal
 * at most one CAS takes the bit, and a CAS that meets the waiter's next
 * announcement rings for that one with or without the count. A dead
 * reader's position is forgotten with it (it is a ghost from then on). The
 * reap's look at the process and its CAS are one step: in the code the
 * state word carries a generation, so that a CAS meant for a dead reader
 * fails on the place of a reader that took it since.
 *
 * Not modelled (src/broadcast.c has them): the readers_live count and
 * reader_state that tell the writer about EPIPE with one load (here it
 * looks at every place); places taken by a lock, so that a reader may take
 * over the place of a dead reader still OPEN, before the reap; the writer
 * meeting each reader's doorbell before it can ring it; the writer's room
 * cached between looks; the clearing of data_event by a joiner; shared
 * pipes; records; readers that publish impossible positions.
 */

#ifndef C
#define C 2 /* ring capacity, in items */
#endif
#ifndef K
#define K 3 /* items the writer writes (at most 15) */
#endif
#ifndef TIMER
#define TIMER 0 /* spurious liveness slices of the writer in one run */
#endif
#ifndef EVMOD
#define EVMOD 2 /* an event word is WAITER and a count of log2(EVMOD)-1 bits */
#endif
#ifndef LEAVE0
#define LEAVE0 false /* reader 0 may leave */
#endif
#ifndef LEAVE1
#define LEAVE1 true /* reader 1 may leave */
#endif
#ifndef KILL1
#define KILL1 1 /* reader 1 may die */
#endif

#define NSLOT 2     /* reader places */
#define SPACE NSLOT /* in ev[], bell[], announced[]: the places, then the writer */
#define NREADER 3   /* reader processes: 0, 1, and 2 (-DLATE) */

#define WAITER 1

#define FREE 0
#define OPEN 1
#define CLOSED 2
#define DROPPED 3

#define VAL(p) ((p) % 16 + 1) /* the item written at position p (never 0) */

/* The shared header. Positions count items. */
byte W;             /* write_index */
byte wstate = OPEN; /* writer_state */
byte ring[C];       /* the data region */
byte st[NSLOT];     /* each place's state */
byte R[NSLOT];      /* each place's published read_index */
byte ev[NSLOT + 1]; /* each place's data_event, then space_event */

/* The doorbells: bell[e] says whether the pipe of the side waiting on ev[e] holds a byte. */
bool bell[NSLOT + 1];

/*
 * Each reader's own position (e->pos), private to it: kept here rather
 * than as a local so that the writer's ghost check can read it.
 */
byte pos[NREADER];

/* Ghosts: read by assertions, and by guards that stand for the kernel. */
bool announced[NSLOT + 1]; /* the waiter on ev[e] announced, not withdrawn nor rung since */
bool live[NREADER];        /* the reader has its start position, and neither left nor died */
byte jpos[NREADER];        /* ... which is this */
byte owner[NSLOT];         /* the reader last registered in the place */
bool dead[NSLOT];          /* the process registered in the place is dead */
bool deathnote;            /* a reader died since the writer's last liveness slice */
bool running[NREADER];     /* the reader's process runs (the killer may kill it) */
bool killed[NREADER];      /* the reader is dead: it takes no step any more */
byte timer = TIMER;        /* spurious liveness slices left */
bool epipe;                /* the writer got EPIPE */
bool wdone;                /* the writer has closed */

/*
 * What the assertions check, in scratch variables that are not part of the
 * state, so that spin's report names the check.
 */
hidden byte slot_free;      /* a store into the ring overwrites no live reader's item */
hidden byte right_item;     /* a reader takes the item written at its position */
hidden byte whole_suffix;   /* at end of stream: every item from the join on */
hidden byte no_reader_left; /* at EPIPE: no reader that has anything to read */
hidden byte all_or_epipe;   /* at the end: the writer wrote all K items, or got EPIPE */

/*
 * shmpipe__signal, after the caller's store: sw = load_sc(&ev); while
 * WAITER is set, cas(&ev, &sw, sw + 1); a successful CAS rings (write(2)
 * of one byte to the doorbell of the side waiting on ev[e]). Each step is
 * one access; sw != 0: a CAS is due, cas_ok: a ring is due.
 */
inline sig(e)
{
	do
	:: atomic {
		sw == 0 && !cas_ok ->
		sw = ev[e];
		if
		:: !(sw & WAITER) -> sw = 0; break
		:: else
		fi
	}
	:: atomic {
		sw != 0 ->
		if
		:: ev[e] == sw ->
			assert(announced[e]); /* a ring nobody needs */
			ev[e] = (sw + 1) % EVMOD;
			announced[e] = false;
			sw = 0;
			cas_ok = true
		:: else -> /* a failed CAS reloads */
			sw = ev[e];
			if
			:: !(sw & WAITER) -> sw = 0; break
			:: else
			fi
		fi
	}
	:: atomic { cas_ok -> bell[e] = true; cas_ok = false; break }
	od
}

/* w = fetch_or(&ev, WAITER) | WAITER */
inline announce(e)
{
	atomic {
		w = ev[e] | WAITER;
		ev[e] = w;
		announced[e] = true
	}
}

/* cas(&ev, w, w & ~WAITER): take the announcement back, if still there. */
inline withdraw(e)
{
	atomic {
		if
		:: ev[e] == w -> ev[e] = w & ~WAITER
		:: else /* a signaller took the bit: it rings */
		fi;
		announced[e] = false;
		w = 0
	}
}

/* The writer signals every place's data_event (MUTANT_SIGNAL_ONE: place 0's only). */
inline signal_readers()
{
	sig(0);
#ifndef MUTANT_SIGNAL_ONE
	sig(1)
#endif
}

/*
 * The writer's look at the places, for item wpos (space_or_gone): a
 * seq_cst load of each state, then, if OPEN, of its R, one per step.
 * r: room >= 1, or gone (no place OPEN, and one neither OPEN nor FREE: a
 * reader had been there); room and gone say which. ph is the next load:
 * 0 the state of place 0, 1 its R, 2 the state of place 1, 3 its R.
 */
#ifdef MUTANT_MIN_SKIPS_SLOT
#define LOAD_R(j) (j == NSLOT - 1 -> wpos : R[j]) /* the last place left out */
#else
#define LOAD_R(j) R[j]
#endif

inline fold_r()
{
	nopen++;
	if
	:: rr < minr -> minr = rr
	:: else
	fi;
	if
	:: rr + C < wpos -> stale = true
	:: else
	fi;
	rr = 0
}

inline look()
{
	do
	:: atomic {
		ph == 0 || ph == 2 ->
		s_ = st[ph / 2];
		if
		:: s_ == OPEN -> ph++
		:: s_ == FREE -> ph = ph + 2
		:: else -> used = true; ph = ph + 2
		fi;
		s_ = 0;
		if
		:: ph == 4 -> break
		:: else
		fi
	}
	:: atomic {
		ph == 1 || ph == 3 ->
		rr = LOAD_R(ph / 2);
		fold_r();
		ph++;
		if
		:: ph == 4 -> break
		:: else
		fi
	}
	od;
	atomic {
		if
		:: nopen == 0 -> room = 0 /* no reader yet, or none left */
#ifdef MUTANT_NO_STALE_CHECK
		:: else ->
			room = C - (wpos - minr);
			if
			:: room < 0 -> room = 127 /* unsigned: wraps to a huge room */
			:: else
			fi
#else
		:: stale -> room = 0
		:: else -> room = C - (wpos - minr)
#endif
		fi;
		gone = (nopen == 0 && used);
		r = (room >= 1 || gone);
		ph = 0;
		nopen = 0;
		minr = 255;
		stale = false;
		used = false
	}
}

/* cas(&state, OPEN, DROPPED) of place j, if its process is dead. */
inline reap_place(j)
{
	atomic {
		if
#ifdef MUTANT_REAP_ALIVE
		:: st[j] == OPEN -> st[j] = DROPPED /* alive or not */
		:: st[j] == OPEN
#else
		:: st[j] == OPEN && dead[j] -> st[j] = DROPPED
#endif
		:: else
		fi
	}
}

/*
 * The ghost check of the store of item p into the ring: no reader that
 * has its start position and neither left nor died has item p - C, which
 * the store overwrites, or a later one, still to read.
 */
inline no_overrun(p)
{
	slot_free = (!live[0] || p < pos[0] + C) &&
		    (!live[1] || p < pos[1] + C) &&
		    (!live[2] || p < pos[2] + C);
	assert(slot_free)
}

/*
 * The ghost check of EPIPE: a reader that has its start position and has
 * neither left nor died went OPEN after the writer looked at its place, so
 * it joined at the end of the stream, with nothing to read.
 */
inline epipe_check()
{
	no_reader_left = (!live[0] || jpos[0] == wpos) &&
			 (!live[1] || jpos[1] == wpos) &&
			 (!live[2] || jpos[2] == wpos);
	assert(no_reader_left)
}

proctype writer()
{
	byte wpos = 0; /* e->pos: the writer's own position */
	byte ph, s_, rr, nopen, sw, w;
	byte minr = 255;
	short room;
	bool used, stale, gone, r, cas_ok;

top:
	if
	:: wpos == K -> goto close
	:: else
	fi;
	look();
act:
	if
	:: atomic { room >= 1 -> no_overrun(wpos); ring[wpos % C] = VAL(wpos) }
		atomic { W = wpos + 1; wpos++; room = 0; r = false } /* store_sc */
		signal_readers();
		goto top
	:: atomic {
		room < 1 && gone ->
		epipe_check();
		epipe = true;
		gone = false;
		r = false
	}
		goto close
	:: else
	fi;
	/* wait on space_event until space_or_gone */
	bell[SPACE] = false; /* drain */
	announce(SPACE);
	look();
	if
	:: r -> withdraw(SPACE); goto act
	:: else
	fi;
	/*
	 * The sleep. A spurious slice is chosen before it blocks, never while
	 * it is blocked, so that a writer blocked by a lost wake-up has no way
	 * out but a ring, or the slice after a reader died.
	 */
	if
	:: atomic { timer > 0 -> timer--; r = true }
	:: true
	fi;
	if
	:: atomic { !r && bell[SPACE] -> bell[SPACE] = false } /* a ring */
	:: atomic { r || deathnote -> deathnote = false; r = false } /* a slice */
		reap_place(0);
		reap_place(1)
	fi;
	withdraw(SPACE);
	goto top;
close:
	wstate = CLOSED; /* store_sc */
	signal_readers();
	wdone = true
}

/*
 * Reader id in place s. joined: it is the pipe's first reader, OPEN at 0
 * from the start (init). mayleave: it may leave at the top of any read call.
 * late: it waits until the place is CLOSED or DROPPED before it joins (or
 * until the writer has finished: it never joins).
 */
proctype reader(byte id; byte s; bool joined; bool mayleave; bool late)
{
	byte sw, w;
	bool cas_ok;

	{
		if
		:: joined -> goto read_call
		:: late ->
			if
			:: st[s] == CLOSED || st[s] == DROPPED
			:: wdone -> goto done
			fi
		:: else
		fi;
		/* join: registers itself in the place, then r1 = load(W) */
		atomic { owner[s] = id; dead[s] = false; pos[id] = W }
		R[s] = pos[id];                 /* store(R, r1) */
		st[s] = OPEN;                   /* store_sc(state, OPEN) */
#ifdef MUTANT_JOIN_NO_REREAD
		atomic { R[s] = pos[id]; live[id] = true; jpos[id] = pos[id] }
#else
		atomic { pos[id] = W; live[id] = true; jpos[id] = pos[id] } /* r2 = load_sc(W) */
		R[s] = pos[id];                 /* store_sc(R, r2) */
#endif
		sig(SPACE);
read_call:
		if
		:: mayleave -> goto leave
		:: W > pos[id] -> /* load_sc(W) */
			atomic { /* memcpy out */
				right_item = (ring[pos[id] % C] == VAL(pos[id]));
				assert(right_item); /* not overrun */
				pos[id]++
			}
			R[s] = pos[id]; /* store_sc */
#ifndef MUTANT_READ_NO_SIGNAL
			sig(SPACE);
#endif
			goto read_call
		:: W <= pos[id] -> /* load_sc(W) */
			if
			:: wstate == CLOSED -> /* load_sc */
				if
				:: W == pos[id] -> goto eof /* one more look finds all it wrote */
				:: W != pos[id] -> goto read_call
				fi
			:: wstate != CLOSED
			fi
		fi;
		/* wait on data_event until data_or_eof */
		bell[s] = false; /* drain */
		announce(s);
		if
		:: W != pos[id] /* load_sc */
		:: W == pos[id] ->
			if
			:: wstate == CLOSED /* load_sc */
			:: wstate != CLOSED ->
				atomic { bell[s] -> bell[s] = false } /* the sleep: a ring */
			fi
		fi;
		withdraw(s);
		goto read_call;
leave:
		atomic { st[s] = CLOSED; live[id] = false } /* store_sc */
#ifndef MUTANT_LEAVE_NO_SIGNAL
		sig(SPACE);
#endif
		goto done;
eof:
		/* every item from its join on; or EPIPE, and it joined with no reader left */
		atomic {
			whole_suffix = (pos[id] == K || (epipe && pos[id] == jpos[id]));
			assert(whole_suffix)
		}
	} unless { killed[id] };
done:
	running[id] = false
}

/* Kills reader id (in place s) at any moment while it runs (or not, if it finished first). */
proctype killer(byte id; byte s)
{
	if
	:: atomic {
		running[id] ->
		killed[id] = true;
		live[id] = false;
		pos[id] = 0;
		jpos[id] = 0;
		if
		:: owner[s] == id -> dead[s] = true
		:: else
		fi;
		deathnote = true
	}
	:: !running[id]
	fi
}

init
{
	atomic {
#ifdef JOIN0
		running[0] = true;
		run reader(0, 0, false, LEAVE0, false);
#else
		/* the pipe's first reader, attached before the writer starts */
		st[0] = OPEN;
		live[0] = true;
		running[0] = true;
		run reader(0, 0, true, LEAVE0, false);
#endif
		run writer();
		running[1] = true;
		run reader(1, 1, false, LEAVE1, false);
#if KILL1
		/*
		 * Whether reader 1 dies is chosen here: a killer that could still
		 * fire would let a process blocked by a lost wake-up out.
		 */
		if
		:: run killer(1, 1)
		:: skip
		fi;
#endif
#ifdef LATE
		running[2] = true;
		run reader(2, 1, false, false, true);
#endif
	}
	_nr_pr == 1 ->
	all_or_epipe = (W == K || epipe);
	assert(all_or_epipe)
}
