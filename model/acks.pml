/* SPDX-License-Identifier: MIT */
/*
 * acks.pml - a Promela model of the far forward's cumulative
 * acknowledgements on a JetStream consumer that acknowledges all up to one
 * (AckAll, as `forward --create` makes it; cli/acks.c, cli/forward.c), and
 * of its rule for where the pipe starts. One far forwarder takes the
 * stream; it may die at any step, and a second one then takes over from
 * the state it left beside the pipe.
 *
 * The stream holds the pipe's messages 1..M, in the ring's order (the near
 * side's expectation keeps it so), message s at near position s.
 *
 *   server    the consumer: pending[] (delivered, not acknowledged), its
 *             count np, the last delivery sequence dseq, the next message
 *             never delivered nn, the ack floor asflr. Each step, one of:
 *             delivers nn (pending, dseq + 1) to the live forwarder;
 *             delivers a pending message again (AckWait or a refusal's
 *             delay: at most R times in all, so the search ends); after a
 *             death, delivers to the dead one's pull request, still open
 *             (lost, but pending, dseq + 1: at most L times); takes an
 *             acknowledgement of position s: none at or below asflr (a
 *             no-op, as nats-server 2.9's AckAll), else every pending
 *             message in (asflr, s] leaves pending and asflr = s.
 *   forwarder starts from the consumer as the servers describe it (one
 *             atomic look: pending count, dseq, asflr): in doubt if any
 *             is pending (delivered to one that died). For each delivery
 *             (s, d): a delivery sequence other than dmax + 1 puts it in
 *             doubt (some went elsewhere); at or below its floor it is
 *             covered (acknowledged alone, harmless); else it is noted.
 *             The start: while it knows none (the state beside the pipe),
 *             once not in doubt with some noted, the lowest noted is the
 *             start; before that, nothing is taken. Then s below next is
 *             in already (taken), s at next is written (next + 1, taken),
 *             s after next is refused (left pending). In doubt, it may ask
 *             the servers (one atomic look: np, dseq) and is out of doubt
 *             if np equals what it has noted. Out of doubt, it
 *             acknowledges the last of the noted that are taken from the
 *             lowest up, and its floor moves there.
 *
 * Checks: a message leaves pending by an acknowledgement only once written
 * (taken); the start is the pipe's first message (right_start); the pipe
 * is written in order (next). Acknowledgements and deliveries in flight
 * are channels, so every race with a look at the servers is there.
 *
 * With the start right, an acknowledgement of taken messages cannot cover
 * an unwritten one (all taken ones are below next, and the stream is in the
 * ring's order): the doubt guards the start. A mutant that leaves the doubt
 * when np is at most what was noted (a forwarder that died may have had an
 * acknowledgement on its way, which makes np the lower) is not caught.
 *
 * Mutants (each must make a check fail; test/model_check.sh):
 *   MUTANT_NO_START_DOUBT   a forwarder starts out of doubt whatever is pending
 *   MUTANT_NO_GAP_DOUBT     a gap in the delivery sequence puts it in no doubt
 *   MUTANT_ANY_LOOK         out of doubt at any look at the servers
 *   MUTANT_ACK_UNTAKEN      the acknowledgement goes past a noted message not taken
 *   MUTANT_FIRST_SEEN_START the first message it sees is the start (the old rule)
 */

#define M 3 /* the pipe's messages (pick() below names each) */
#ifndef R
#define R 2 /* deliveries again, in all */
#endif
#ifndef L
#define L 1 /* deliveries to a dead forwarder's open request */
#endif

/* The servers. */
bool pending[M + 1];
byte np, dseq, nn = 1, asflr, again, lost;

/* Beside the pipe: survives a forwarder. */
bool known, written[M + 1];
byte next;

/* The forwarder's, gone with it. */
bool alive, dead_once, unknown;
byte dmax, floor;
bool seen[M + 1], tk[M + 1]; /* noted above floor; taken */

chan del = [2] of { byte, byte }; /* (s, d) to the live forwarder */
chan ack = [2] of { byte };	  /* s, cumulative */

inline noted_count(c)
{
	c = 0;
	for (i : 1 .. M) {
		if
		:: seen[i] -> c++
		:: else
		fi
	}
}

/* Any pending message into q (np > 0: there is one). */
inline pick(q)
{
	if
	:: pending[1] -> q = 1
	:: pending[2] -> q = 2
	:: pending[3] -> q = 3
	fi
}

/* The servers: see above. */
active proctype server()
{
	byte s, q;

end:
	do
	:: atomic { nn <= M && alive && nfull(del) ->
		pending[nn] = true; np++; dseq++; del ! nn, dseq; nn++ }
	:: atomic { again < R && np > 0 && alive && nfull(del) ->
		again++; pick(q); dseq++; del ! q, dseq }
	/* To the open request of the forwarder that died: lost, pending. */
	:: atomic { lost < L && dead_once && nn <= M ->
		lost++; pending[nn] = true; np++; dseq++; nn++ }
	:: atomic { lost < L && dead_once && np > 0 ->
		lost++; dseq++ }
	:: atomic { ack ? s ->
		if
		:: s <= asflr -> skip
		:: else ->
			q = asflr + 1;
			do
			:: q <= s ->
				if
				:: pending[q] ->
					assert(written[q]); /* acknowledged, never written: lost */
					pending[q] = false; np--
				:: else
				fi;
				q++
			:: else -> break
			od;
			asflr = s
		fi }
	od
}

proctype forwarder()
{
	byte s, d, c, i, lo, k;

	/* The consumer as the servers describe it at the start. */
	atomic {
		unknown = np != 0;
#ifdef MUTANT_NO_START_DOUBT
		unknown = false;
#endif
		dmax = dseq; floor = asflr;
		for (i : 1 .. M) { seen[i] = false; tk[i] = false }
		alive = true
	}
end:
	do
	:: del ? s, d ->
		atomic {
			/* cumul_note */
			if
			:: d != dmax + 1 ->
#ifndef MUTANT_NO_GAP_DOUBT
				unknown = true
#else
				skip
#endif
			:: else
			fi;
			dmax = d;
			if
			:: s <= floor -> ack ! s; goto checked /* covered: acknowledged alone */
			:: else -> seen[s] = true
			fi;
			/* The start, once sure. */
			if
			:: !known ->
#ifndef MUTANT_FIRST_SEEN_START
				noted_count(c);
				if
				:: !unknown && c > 0 ->
					lo = 1;
					do
					:: !seen[lo] -> lo++
					:: else -> break
					od;
					/* The lowest noted, when it is in this fetch. */
					if
					:: s == lo ->
						known = true; next = lo;
						assert(next == 1) /* right_start */
					:: else
					fi
				:: else
				fi
#else
				known = true; next = s;
				assert(next == 1) /* right_start */
#endif
			:: else
			fi;
			if
			:: !known -> skip /* refused: again later */
			:: known && s < next -> tk[s] = true /* in already */
			:: known && s == next -> written[s] = true; next++; tk[s] = true
			:: known && s > next -> skip /* refused: one before it is out */
			fi;
		checked:
			skip
		};
		/* In doubt: may ask the servers (cumul_check). */
		if
		:: unknown ->
			atomic {
				noted_count(c);
#ifndef MUTANT_ANY_LOOK
				if
				:: np == c -> unknown = false; dmax = dseq
				:: else
				fi
#else
				unknown = false; dmax = dseq
#endif
			}
		:: true
		fi;
		/* cumul_ack: the taken ones from the lowest noted up. */
		atomic {
			if
			:: !unknown ->
				k = 0;
				i = floor + 1;
				do
				:: i <= M && !seen[i] -> i++
#ifndef MUTANT_ACK_UNTAKEN
				:: i <= M && seen[i] && tk[i] -> k = i; i++
				:: i > M || (seen[i] && !tk[i]) -> break
#else
				:: i <= M && seen[i] -> k = i; i++
				:: i > M -> break
#endif
				od;
				if
				:: k > 0 ->
					ack ! k;
					for (i : floor + 1 .. k) { seen[i] = false }
					floor = k
				:: else
				fi
			:: else
			fi
		}
	:: !dead_once ->
		/* Dies: what was on its way to it is lost, pending still. */
		atomic {
			alive = false; dead_once = true;
			do
			:: del ? s, d
			:: empty(del) -> break
			od;
			run forwarder()
		};
		break
	od
}

init
{
	run forwarder()
}
