/* SPDX-License-Identifier: MIT */
/*
 * The doorbells: how an end that waits is woken by its peer, and learns at
 * once that the peer is gone.
 *
 * Each end has a doorbell, a pipe: it keeps the read side (bell) and hands
 * the write side to its peer, which rings by writing one byte, and only when
 * the shared event word says that this end waits (wait.c). Nobody else holds
 * the write side, so when the peer's process dies the kernel closes it and
 * bell reports end of file: a death is noticed at once, by a sleeping call
 * and by an event loop alike, and a pid that is reused plays no part. The
 * peer also keeps a read side of our doorbell (peer_guard on its side): with
 * a reader always there, its rings never raise SIGPIPE, and our death only
 * makes them land nowhere.
 *
 * An event loop waits on pollfd, an epoll instance holding bell, so that the
 * descriptor it was given stays the same even while the creating end also
 * waits for its peer to meet it. It also holds note, an eventfd through
 * which the end tells its own loop to call again (wait.c says when).
 *
 * Meeting. The two ends of a pair are made together and exchange their
 * doorbells directly. The ends of a named pipe (or of one passed as a
 * descriptor) meet through a rendezvous: the creating end listens on an
 * abstract UNIX socket named by a random token that it writes in the header
 * before publishing it; an opening end connects before it takes its end and,
 * once it has, sends its proof (its own descriptor of the object, whose
 * open file description holds the end's lock), the write side of its
 * doorbell and a read side of it. The creating end accepts when it next
 * runs (its waits and its pollfd watch the listener), checks the proof with
 * the kernel's lock table, replies with its own doorbell and stops
 * listening. Until then the opening end's doorbell is in flight in a socket
 * the creating end's process holds, so the creator's death still shows on
 * the opener's bell; the opening end picks up the reply when it first has to
 * ring. Anyone may connect to the socket (the abstract namespace has no
 * permissions), but without the proof a connection is dropped, and no
 * connection can ring anything.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "os.h"

/* How long the creating end waits for an accepted connection's message. */
#define SHMPIPE__HELLO_WAIT_MS 50

static void close_fd(int *fd)
{
	if (*fd >= 0)
		shmpipe__os_close(*fd);
	*fd = -1;
}

/* Closes every pending connection. */
static void drop_pending(struct shmpipe__end *e)
{
	for (int i = 0; i < SHMPIPE__PENDING; i++) {
		if (e->pending[i] >= 0)
			shmpipe__os_poller_del(e->pollfd, e->pending[i]);
		close_fd(&e->pending[i]);
	}
}

int shmpipe__doorbell_init(struct shmpipe__end *e)
{
	int fds[2];
	int err = shmpipe__os_doorbell(fds);

	if (err < 0)
		return err;
	e->bell = fds[0];
	e->own_ring = fds[1];
	err = shmpipe__os_poller(e->bell);
	if (err >= 0) {
		e->pollfd = err;
		err = shmpipe__os_note();
	}
	if (err >= 0) {
		e->note = err;
		err = shmpipe__os_poller_add(e->pollfd, e->note);
	}
	/* A broadcast writer's readers' life lines (broadcast.c). */
	if (err >= 0 && e->fan)
		err = shmpipe__os_poller_add(e->pollfd, e->fan->lives);
	if (err < 0) {
		shmpipe__doorbell_close(e);
		return err;
	}
	/*
	 * A new end's descriptor starts readable, so that an event loop that
	 * waits before its first call is told to make it; that call, if it
	 * finds nothing to do, clears the note and arms the doorbell.
	 */
	shmpipe__note(e, true);
	return 0;
}

void shmpipe__note(struct shmpipe__end *e, bool set)
{
	/* Only this end's calls set and clear it: the flag saves the calls. */
	if (set && !e->note_set)
		shmpipe__os_note_set(e->note);
	else if (!set && e->note_set)
		shmpipe__os_note_clear(e->note);
	e->note_set = set;
}

void shmpipe__doorbell_close(struct shmpipe__end *e)
{
	shmpipe__fan_free(e);
	close_fd(&e->pollfd);
	close_fd(&e->note);
	close_fd(&e->listener);
	drop_pending(e);
	close_fd(&e->conn);
	close_fd(&e->own_ring);
	close_fd(&e->peer_bell);
	close_fd(&e->peer_guard);
	close_fd(&e->life);
	close_fd(&e->bell);
}

int shmpipe__pair_meet(struct shmpipe__end *w, struct shmpipe__end *r)
{
	int wg = shmpipe__os_dup(w->bell);
	int rg = wg < 0 ? wg : shmpipe__os_dup(r->bell);

	if (rg < 0) {
		close_fd(&wg);
		return rg;
	}
	if (w->fan) {
		/*
		 * A broadcast writer keeps the write side of its doorbell,
		 * for every reader still to come: the reader gets a copy.
		 */
		int ring = shmpipe__os_dup(w->own_ring);

		if (ring < 0) {
			close_fd(&wg);
			close_fd(&rg);
			return ring;
		}
		int life = shmpipe__fan_life(w, 0);

		if (life < 0) {
			close_fd(&ring);
			close_fd(&wg);
			close_fd(&rg);
			return life;
		}
		r->life = life;
		w->fan->met[0].bell = r->own_ring;
		w->fan->met[0].guard = rg;
		w->fan->met[0].word = r->place_word;
		r->own_ring = -1;
		r->peer_bell = ring;
		r->peer_guard = wg;
		return 0;
	}
	w->peer_bell = r->own_ring;
	w->peer_guard = rg;
	r->own_ring = -1;
	r->peer_bell = w->own_ring;
	r->peer_guard = wg;
	w->own_ring = -1;
	return 0;
}

int shmpipe__listen(uint8_t *token, unsigned readers)
{
	int err = -EADDRINUSE;

	/* A taken name is someone else's rendezvous (or a squatter's): draw again. */
	for (int i = 0; i < 8 && err == -EADDRINUSE; i++) {
		err = shmpipe__os_random(token, SHMPIPE__TOKEN_LEN);
		if (err == 0)
			err = shmpipe__os_listen(token, SHMPIPE__TOKEN_LEN,
						 readers > 1 ? SHMPIPE__OS_BACKLOG_MANY
							     : SHMPIPE__OS_BACKLOG);
	}
	return err;
}

int shmpipe__listen_attach(struct shmpipe__end *e, int listener, const uint8_t *token)
{
	int err = shmpipe__os_poller_add(e->pollfd, listener);

	if (err < 0) {
		shmpipe__os_close(listener);
		return err;
	}
	e->listener = listener;
	memcpy(e->token, token, sizeof(e->token));
	shmpipe__store32_relaxed(&e->listening, 1);
	return 0;
}

int shmpipe__dial(const uint8_t *token)
{
	int s = shmpipe__os_connect(token, SHMPIPE__TOKEN_LEN);

	/*
	 * Nobody listens: the creating end has met its peer already (the end
	 * we want is taken, which end_take will say), or it has closed or
	 * died, which our calls will learn from the header and its lock.
	 */
	if (s == -ECONNREFUSED || s == -ENOENT)
		return -1;
	return s;
}

void shmpipe__hello(struct shmpipe__end *e, int s)
{
	int fds[3] = {e->fd, e->own_ring, e->bell};
	int sent;

	if (s < 0)
		return;
	/*
	 * A broadcast reader says which place it holds, and proves that it
	 * may write the object with a description of its own that holds no
	 * lock (broadcast.c says why); without /proc to make one, it sends
	 * its own, whose lock then stays with the hello until the writer
	 * takes it.
	 */
	if (e->place) {
		uint32_t said[2] = {e->place_index, e->place_word};
		int proof = shmpipe__os_reopen(e->fd);

		if (proof >= 0)
			fds[0] = proof;
		sent = shmpipe__os_send_fds_with(s, fds, 3, said, sizeof(said));
		if (proof >= 0)
			shmpipe__os_close(proof);
	} else {
		sent = shmpipe__os_send_fds(s, fds, 3);
	}
	/*
	 * Our doorbell goes in flight: from here on only the creating end's
	 * process holds its write side (in the message until it accepts), so
	 * that its death shows on our bell. If the send fails the creator is
	 * gone already and we keep it: our waits then ask the lock instead.
	 */
	if (sent < 0) {
		shmpipe__os_close(s);
		return;
	}
	close_fd(&e->own_ring);
	e->conn = s;
}

/* A doorbell as received: the write side and a read side of one pipe. */
static bool doorbell_ok(int w, int r)
{
	return shmpipe__os_is_pipe(w) == 1 && shmpipe__os_same_file(w, r) == 1;
}

/*
 * Whether proof is the open file description through which the peer holds
 * its end: a description of the same object, which the kernel says does not
 * conflict with the lock that our own description sees held.
 */
static bool proof_ok(const struct shmpipe__end *e, int proof)
{
	return shmpipe__os_same_file(proof, e->fd) == 1 &&
	       shmpipe__os_lock_held(proof, e->peer_lock) == 0 &&
	       shmpipe__os_lock_held(e->fd, e->peer_lock) == 1;
}

/*
 * The creating end: what came on connection s (which this takes over). If
 * it is the peer's hello, meets the peer and stops listening.
 */
/*
 * Receives a hello on connection s: three descriptors, and for a broadcast
 * writer the place and word its reader says (said).
 */
static int recv_hello(const struct shmpipe__end *e, int s, int *in, int wait_ms, uint32_t *said)
{
	if (e->fan)
		return shmpipe__os_recv_fds_with(s, in, 3, wait_ms, said, 2 * sizeof(*said));
	return shmpipe__os_recv_fds(s, in, 3, wait_ms);
}

static void greet(struct shmpipe__end *e, int s, int *in, const uint32_t *said)
{
	int out[2] = {e->own_ring, e->bell};

	/*
	 * A broadcast writer meets each reader in its place (its proof says
	 * which), sends it a copy of its doorbell and goes on listening.
	 */
	if (e->fan) {
		int life = doorbell_ok(in[1], in[2]) ? shmpipe__fan_greet(e, in, said) : -1;

		if (life >= 0) {
			int out3[3] = {e->own_ring, e->bell, life};

			/* A reader that is gone already only misses the reply. */
			(void)shmpipe__os_send_fds(s, out3, 3);
			shmpipe__os_close(life);
			shmpipe__os_nonblock(in[1]);
			shmpipe__os_close(in[0]);
			shmpipe__note(e, true);
		} else {
			for (int i = 0; i < 3; i++)
				shmpipe__os_close(in[i]);
		}
		shmpipe__os_close(s);
		return;
	}
	if (!proof_ok(e, in[0]) || !doorbell_ok(in[1], in[2]) ||
	    shmpipe__os_send_fds(s, out, 2) < 0) {
		for (int i = 0; i < 3; i++)
			shmpipe__os_close(in[i]);
		shmpipe__os_close(s);
		return;
	}
	shmpipe__os_close(in[0]);
	shmpipe__os_nonblock(in[1]);
	e->peer_bell = in[1];
	e->peer_guard = in[2];
	/* Ours is the peer's now (in the reply until it picks it up). */
	close_fd(&e->own_ring);
	drop_pending(e);
	shmpipe__os_poller_del(e->pollfd, e->listener);
	close_fd(&e->listener);
	shmpipe__store32_relaxed(&e->listening, 0);
	shmpipe__os_close(s);
	/*
	 * The peer may have rung before we met, into nothing (shmpipe__ring),
	 * and what made our descriptor readable meanwhile, the listener or
	 * this connection, is gone. A meeting in our wait looks at the
	 * condition after this; one in our ring comes in a call that makes
	 * progress and will not look again, so an event loop must be told to
	 * call once more: the next call that finds nothing to do clears this.
	 */
	shmpipe__note(e, true);
}

/*
 * Keeps a connection whose hello has not come yet, watched by pollfd. When
 * all the places are taken the oldest goes: strangers' connections take the
 * peer's place only if SHMPIPE__PENDING of them come between the peer's
 * connect and its hello, microseconds apart.
 */
static void keep_pending(struct shmpipe__end *e, int s)
{
	int n = SHMPIPE__PENDING - 1;

	if (e->pending[0] >= 0 && e->pending[n] >= 0) {
		shmpipe__os_poller_del(e->pollfd, e->pending[0]);
		close_fd(&e->pending[0]);
	}
	/* Oldest first: close the gaps, then take the last free place. */
	for (int i = 0, j = 0; i < SHMPIPE__PENDING; i++) {
		int fd = e->pending[i];

		e->pending[i] = -1;
		if (fd >= 0)
			e->pending[j++] = fd;
	}
	while (n > 0 && e->pending[n - 1] < 0)
		n--;
	if (shmpipe__os_poller_add(e->pollfd, s) < 0) {
		shmpipe__os_close(s);
		return;
	}
	e->pending[n] = s;
}

/*
 * The creating end: takes one connection (waiting for it if wait) and
 * greets it. A blocking wait also waits a little for the hello, so that it
 * usually meets its peer in one call; a hello that is not there (yet) keeps
 * the connection pending, watched by pollfd. Closing it instead would lose
 * a peer that was slow between its connect and its hello: it would never
 * meet us, and its rings would go nowhere. 1 if a connection was taken, 0
 * if none was there, -EINTR.
 */
static int accept_one(struct shmpipe__end *e, bool wait)
{
	int s = shmpipe__os_accept(e->listener, wait);
	int in[3], err;
	uint32_t said[2];

	if (s < 0)
		return s == -EINTR ? s : 0;
	err = recv_hello(e, s, in, wait ? SHMPIPE__HELLO_WAIT_MS : 0, said);
	if (err == 0)
		greet(e, s, in, said);
	else if (err == -EAGAIN)
		keep_pending(e, s);
	else
		shmpipe__os_close(s);
	return 1;
}

bool shmpipe__pending(const struct shmpipe__end *e)
{
	for (int i = 0; i < SHMPIPE__PENDING; i++) {
		if (e->pending[i] >= 0)
			return true;
	}
	return false;
}

void shmpipe__meet(struct shmpipe__end *e)
{
	for (int i = 0; i < SHMPIPE__PENDING && e->listener >= 0; i++) {
		int in[3], s = e->pending[i];
		int err;
		uint32_t said[2];

		if (s < 0)
			continue;
		err = recv_hello(e, s, in, 0, said);
		if (err == -EAGAIN)
			continue;
		shmpipe__os_poller_del(e->pollfd, s);
		e->pending[i] = -1;
		if (err == 0)
			greet(e, s, in, said);
		else
			shmpipe__os_close(s);
	}
	/*
	 * A bounded number of connections per look: strangers who keep
	 * connecting cost us a little time, never a hang.
	 */
	for (int i = 0; i < 8 && e->listener >= 0; i++) {
		if (accept_one(e, false) <= 0)
			break;
	}
	if (e->conn >= 0) {
		/* A broadcast reader also gets its life line (broadcast.c). */
		int in[3], n = e->place ? 3 : 2;
		int err = shmpipe__os_recv_fds(e->conn, in, n, 0);

		if (err == -EAGAIN)
			return; /* not accepted yet */
		if (err == 0 && doorbell_ok(in[0], in[1])) {
			shmpipe__os_nonblock(in[0]);
			e->peer_bell = in[0];
			e->peer_guard = in[1];
			if (n == 3)
				e->life = in[2];
		} else if (err == 0) {
			for (int i = 0; i < n; i++)
				shmpipe__os_close(in[i]);
		}
		close_fd(&e->conn);
	}
}

void shmpipe__meet_never(struct shmpipe__end *e)
{
	uint32_t s = shmpipe__load32_acquire(e->peer_state);

	/*
	 * A broadcast writer listens, and keeps its doorbell, for good; so
	 * does an end whose dead peer's end may be taken again (REOPEN).
	 */
	if (e->own_ring < 0 || s == SHMPIPE__END_ABSENT || e->fan || e->reopen)
		return;
	/*
	 * A peer that closed, aborted or died before we met can never ring us
	 * (each end is taken once). Let go of our doorbell's write side: it
	 * then hangs up for good, so pollfd stays readable, as a pipe's does
	 * at end of stream or when its other end is gone.
	 */
	if (s == SHMPIPE__END_OPEN && shmpipe__os_lock_held(e->fd, e->peer_lock) != 0)
		return;
	close_fd(&e->own_ring);
	drop_pending(e);
	if (e->listener >= 0) {
		shmpipe__os_poller_del(e->pollfd, e->listener);
		close_fd(&e->listener);
		shmpipe__store32_relaxed(&e->listening, 0);
	}
}

int shmpipe__meet_wait(struct shmpipe__end *e)
{
	int err = accept_one(e, true);

	return err < 0 ? err : 0;
}

void shmpipe__ring(struct shmpipe__end *e)
{
	/*
	 * Not met yet: the peer's doorbell may be waiting for us in the
	 * rendezvous. If it is not there either, the creating end has not
	 * accepted, and its waits watch the listener: it will look again
	 * once it has met us.
	 */
	if (e->peer_bell < 0)
		shmpipe__meet(e);
	if (e->peer_bell >= 0)
		shmpipe__os_ring(e->peer_bell);
}
