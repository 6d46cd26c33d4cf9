/* SPDX-License-Identifier: MIT */
/*
 * share.pml - a Promela model of shmpipe's work-sharing (SHMPIPE_SHARE):
 * one writer, two readers, each item taken by exactly one reader, the
 * writer never overwriting an item that nobody took or that a live reader
 * holds, and no lost wake-up. fanout.pml checks broadcast (joining,
 * leaving, the room over several readers); wakeup.pml the wait/wake
 * protocol in detail. This model takes their sleeper, all seq_cst, and
 * checks what work-sharing adds: the claim and the holds.
 *
 * The shared words: write_index W, writer_state (wclosed), a ring of C
 * slots, the claim CL (the first item nobody took), and for each reader
 * place j its state (OPEN, DROPPED), its hold H[j] (the item it holds, or
 * NONE) and its data_event ev[j]; one space_event ev[SPACE]. Doorbells:
 * bell[e] says the doorbell of the side waiting on ev[e] holds a byte.
 *
 *   writer    writes items 0..K-1 (item p stored as VAL(p)), then closes
 *             and signals every place. Before item p it reads CL, then each
 *             OPEN place's H (seq_cst, one load a step): room = C - (p - min)
 *             over CL and the holds that are not NONE. With room, stores the
 *             item, W = p + 1, signals every place. Without, waits on
 *             space_event (room, or no reader left: EPIPE). Its sleep ends
 *             in a ring or in a liveness slice, after which it drops each
 *             OPEN place whose reader is dead (the kernel's lock table, a
 *             ghost here).
 *   reader j  c = CL, w = W. c == w: lets go of any hold (H = NONE, then
 *             signals space_event); at writer_state CLOSED with CL == W
 *             still, the end; else waits on its data_event for CL != W or
 *             CLOSED. c != w: H = c, then CL again (moved: start over), then
 *             cas(CL, c, c + 1) (failed: start over), then takes ring[c] -
 *             the copy, after the cas - lets go (H = NONE) and signals
 *             space_event.
 *   reader 1  may die at any step (-DNODEATH: never); its place stays
 *             OPEN, with whatever it held, until the writer drops it.
 *
 * Checks: a reader's item is the one written at its position (the writer
 * never overwrote it: right_item); no item is taken twice (once); at the
 * end every item was taken, but for at most one per dead reader, the one
 * it held (none_lost); no process sleeps for ever (invalid end states).
 *
 * Mutants (each must make a check fail; test/model_check.sh):
 *   MUTANT_HOLD_AFTER    the hold is published after the cas, not before
 *   MUTANT_NO_HOLDS      the writer's room ignores the holds
 *   MUTANT_NO_CLAIM      the writer's room ignores the claim
 *   MUTANT_STALE_HOLD    a reader waits with the hold it had
 *   MUTANT_NO_RELEASE    letting go does not signal space_event
 *   MUTANT_SIGNAL_ONE    the writer signals place 0 only
 *   MUTANT_REAP_LIVE     the writer drops a place whose reader lives
 */

#ifndef C
#define C 2 /* ring capacity, in items */
#endif
#ifndef K
#define K 4 /* items the writer writes */
#endif

#define NR	2
#define SPACE	NR /* ev[], bell[]: the places, then the writer */
#define WAITER	1
#ifndef EVMOD
#define EVMOD 2 /* an event word: WAITER (and with 4, a one-bit count) */
#endif
#define NONE	255
#define OPEN	1
#define DROPPED 3
#define VAL(p)	((p) % 15 + 1)

byte W;
byte CL;
bool wclosed;
byte ring[C];
byte H[NR];
byte st[NR];
byte ev[NR + 1];
bool bell[NR + 1];

/* Ghosts. */
byte taken[K];
bool dead[NR];
bool finished[NR];
bool epipe;
bool wdone;

hidden byte right_item;
hidden byte once;
hidden byte none_lost;

/* The signaller, after its store: load, then cas and ring if WAITER. */
inline sig(e)
{
	sw = ev[e];
	do
	:: !(sw & WAITER) -> sw = 0; break
	:: else ->
		atomic {
			if
			:: ev[e] == sw -> ev[e] = (sw + 1) % EVMOD; bell[e] = true; sw = 0
			:: else -> sw = ev[e]
			fi
		}
	od
}

/* The waiter: drain, then fetch_or(WAITER); withdraw takes it back. */
inline announce(e)
{
	bell[e] = false;
	atomic { w = ev[e] | WAITER; ev[e] = w }
}

inline withdraw(e)
{
	atomic {
		if
		:: ev[e] == w -> ev[e] = w & ~WAITER
		:: else
		fi;
		w = 0
	}
}

#ifdef MUTANT_SIGNAL_ONE
#define SIGNAL_READERS() sig(0)
#else
#define SIGNAL_READERS() sig(0); sig(1)
#endif

/* The writer's room for item p: CL, then each OPEN place's hold. */
inline look()
{
	min = CL;
#ifdef MUTANT_NO_CLAIM
	min = p;
#endif
	any = false;
	j = 0;
	do
	:: j < NR ->
		if
		:: st[j] == OPEN ->
			any = true;
			hh = H[j];
#ifndef MUTANT_NO_HOLDS
			if
			:: hh != NONE && hh < min -> min = hh
			:: else
			fi;
#endif
			hh = 0
		:: else
		fi;
		j++
	:: else -> break
	od;
	j = 0;
	room = (any && p - min < C -> C - (p - min) : 0);
	min = 0
}

proctype writer()
{
	byte p, min, hh, j, room, sw, w;
	bool any;

	do
	:: p < K ->
		look();
		if
		:: room > 0 ->
			ring[p % C] = VAL(p);
			W = p + 1;
			p++;
			SIGNAL_READERS()
		:: else ->
			if
			:: !any -> epipe = true; break /* every reader was dropped */
			:: else
			fi;
			/* Wait for room: announce, look again, sleep. */
			announce(SPACE);
			look();
			if
			:: room > 0 || !any -> withdraw(SPACE)
			:: else ->
				if
				:: bell[SPACE] -> skip
				:: (dead[0] && st[0] == OPEN) || (dead[1] && st[1] == OPEN) ->
					/* the liveness slice, then the lock table */
					j = 0;
					do
					:: j < NR ->
						if
#ifdef MUTANT_REAP_LIVE
						:: st[j] == OPEN -> st[j] = DROPPED
#else
						:: st[j] == OPEN && dead[j] -> st[j] = DROPPED
#endif
						:: else
						fi;
						j++
					:: else -> break
					od;
					j = 0
				fi;
				withdraw(SPACE)
			fi
		fi
	:: p == K -> break
	od;
	wclosed = true;
	SIGNAL_READERS();
	wdone = true
}

proctype reader(byte id)
{
	byte c, v, sw, w;
	bool held, won;

	{
		do
		:: c = CL;
			if
			:: c == W ->
				if
				:: held ->
					H[id] = NONE;
					held = false;
#ifndef MUTANT_NO_RELEASE
					sig(SPACE)
#else
					skip
#endif
				:: else
				fi;
#ifdef MUTANT_STALE_HOLD
				H[id] = c;
				held = true;
#endif
				if
				:: wclosed && CL == W -> break /* end of stream */
				:: else
				fi;
				/* Wait for an item nobody took, or the end. */
				announce(id);
				if
				:: CL != W || wclosed -> withdraw(id)
				:: else -> bell[id]; withdraw(id)
				fi
			:: else ->
				won = false;
#ifndef MUTANT_HOLD_AFTER
				H[id] = c;
				held = true;
				if
				:: CL != c -> goto again
				:: else
				fi;
#endif
				atomic {
					if
					:: CL == c -> CL = c + 1; won = true
					:: else
					fi
				}
				if
				:: !won -> goto again
				:: else
				fi;
#ifdef MUTANT_HOLD_AFTER
				H[id] = c;
				held = true;
#endif
				/*
				 * The copy out, after the cas: a memcpy takes time, so
				 * the item is read at its start and at its end.
				 */
				v = ring[c % C];
				right_item = (v == VAL(c));
				assert(right_item);
				v = ring[c % C];
				right_item = (v == VAL(c));
				assert(right_item);
				v = 0;
				taken[c]++;
				once = (taken[c] == 1);
				assert(once);
				H[id] = NONE;
				held = false;
#ifndef MUTANT_NO_RELEASE
				sig(SPACE)
#endif
			fi;
		again:
			c = 0;
			won = false
		od;
		finished[id] = true
	} unless { dead[id] }
}

/* Reader 1's process may be killed at any moment. */
proctype killer()
{
#ifndef NODEATH
	if
	:: !finished[1] -> dead[1] = true
	:: true
	fi
#else
	skip
#endif
}

init
{
	byte i, lost;

	atomic {
		H[0] = NONE;
		H[1] = NONE;
		st[0] = OPEN;
		st[1] = OPEN;
		run writer();
		run reader(0);
		run reader(1);
		run killer()
	}
	/* Everyone done (a dead reader takes no step): check what arrived. */
	(_nr_pr == 1);
	do
	:: i < K ->
		if
		:: taken[i] == 0 -> lost++
		:: else
		fi;
		i++
	:: else -> break
	od;
	none_lost = (lost <= dead[1] && (wdone || epipe));
	assert(none_lost)
}
