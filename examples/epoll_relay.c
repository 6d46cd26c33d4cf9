/* SPDX-License-Identifier: MIT */
/*
 * epoll_relay.c - one thread, one epoll: a TCP socket and several shmpipes.
 *
 * A relay thread serves one TCP client. The bytes the client sends are cut
 * into chunks (whatever one recv(2) returns, up to 4 KiB) and dealt round
 * robin to WORKERS worker threads, each through its own shmpipe in record
 * mode (one chunk, one record). Each worker turns its chunks to upper case
 * and sends them back through a second shmpipe, and the relay sends the
 * results to the client in the order the chunks came in.
 *
 * The relay never blocks and never copies: the socket is non-blocking,
 * every end the relay holds has timeout 0, recv(2) writes straight into
 * space reserved in a request ring and send(2) reads straight from a
 * response ring. It sleeps only in epoll_wait, which watches the socket and
 * the ends' descriptors (shmpipe_writer_pollfd, shmpipe_reader_pollfd). The
 * loop is the edge-triggered one: after any wake-up, move what can be moved
 * until every path has stopped on -EAGAIN (which re-arms that descriptor)
 * or is finished, then wait. A full request ring stops the reading of the
 * socket, so a slow worker holds back the client (backpressure) and memory
 * stays bounded.
 *
 * The workers are ordinary threads with blocking calls. A worker that
 * fails aborts its response pipe (shmpipe_writer_abort), so the relay sees
 * -ECONNRESET rather than a clean end and fails too.
 *
 * Without arguments the program checks itself: a client thread sends 64 MiB
 * of text and checks that every byte comes back in upper case and in order;
 * it exits 0 if so, 1 on any error or wrong byte. With a port, it serves one client on
 * 127.0.0.1:PORT and exits when that client has finished, e.g.
 *
 *	./epoll_relay 5555 &  echo hello | nc -N 127.0.0.1 5555     # HELLO
 *
 * Build: cc -O2 -o epoll_relay epoll_relay.c $(pkg-config --cflags --libs shmpipe) -lpthread
 * Usage: epoll_relay [PORT]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <shmpipe.h>

#define WORKERS	    4
#define CHUNK	    4096	  /* the most one record (one recv) carries */
#define RING	    (64 * 1024)	  /* each pipe's capacity: about 15 chunks */
#define CHECK_BYTES (64ull << 20) /* what the self-check sends */

struct worker {
	shmpipe_writer *req;  /* relay -> worker: the relay's end */
	shmpipe_reader *in;   /* the worker's end */
	shmpipe_writer *out;  /* worker -> relay: the worker's end */
	shmpipe_reader *resp; /* the relay's end */
	pthread_t thread;
};

struct relay {
	int sock, ep;
	struct worker w[WORKERS];
	unsigned next_in;  /* the worker that gets the next chunk */
	unsigned next_out; /* the worker whose result goes out next */
	size_t sent;	   /* bytes of that result already sent */
	int in_done;	   /* the client has finished sending */
	int out_done;	   /* every result has been sent */
};

static void die(const char *what, int err)
{
	fprintf(stderr, "epoll_relay: %s: %s\n", what, strerror(err));
	exit(1);
}

static char to_upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* A worker: blocking calls, one chunk in, the same chunk in upper case out. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	ssize_t n;

	for (;;) {
		const void *chunk;
		void *result;

		n = shmpipe_peek(w->in, &chunk);
		if (n <= 0)
			break; /* 0: end of stream, the relay has no more */
		ssize_t room = shmpipe_reserve(w->out, &result, (size_t)n);
		if (room < 0) {
			n = room;
			break;
		}
		for (ssize_t i = 0; i < n; i++)
			((char *)result)[i] = to_upper(((const char *)chunk)[i]);
		if (shmpipe_commit(w->out, (size_t)n) < 0 ||
		    shmpipe_consume(w->in, (size_t)n) < 0) {
			n = -EIO;
			break;
		}
	}
	if (n < 0) {
		fprintf(stderr, "epoll_relay: worker: %s\n", shmpipe_strerror((int)n));
		shmpipe_writer_abort(w->out);
	} else {
		shmpipe_writer_close(w->out);
	}
	shmpipe_reader_close(w->in);
	return NULL;
}

static void watch(struct relay *r, int fd, uint32_t events)
{
	struct epoll_event ev = {.events = events | EPOLLET, .data.fd = fd};

	if (epoll_ctl(r->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		die("epoll_ctl", errno);
}

/* The client has finished: end of stream for every worker. */
static void close_requests(struct relay *r)
{
	for (int i = 0; i < WORKERS; i++) {
		/* Out of the epoll set before its descriptor goes with the end. */
		epoll_ctl(r->ep, EPOLL_CTL_DEL, shmpipe_writer_pollfd(r->w[i].req), NULL);
		shmpipe_writer_close(r->w[i].req);
	}
	r->in_done = 1;
}

/*
 * Socket -> request pipes, one chunk at a time, recv(2) straight into the
 * ring. Stops on -EAGAIN from either side (a full ring, or nothing to
 * read) or at the end of the client's data. Returns 1 if it moved anything.
 */
static int pump_in(struct relay *r)
{
	int moved = 0;

	while (!r->in_done) {
		shmpipe_writer *req = r->w[r->next_in].req;
		void *span;
		ssize_t room = shmpipe_reserve(req, &span, CHUNK);

		if (room == -EAGAIN)
			break; /* the worker is behind: its descriptor will say when */
		if (room < 0)
			die("reserve", (int)-room);
		ssize_t n = recv(r->sock, span, CHUNK, 0);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break; /* the reservation is simply taken again next time */
		if (n < 0)
			die("recv", errno);
		if (n == 0) {
			close_requests(r);
			return 1;
		}
		int e = shmpipe_commit(req, (size_t)n);
		if (e < 0)
			die("commit", -e);
		r->next_in = (r->next_in + 1) % WORKERS;
		moved = 1;
	}
	return moved;
}

/*
 * Response pipes -> socket, in the order the chunks came in, send(2)
 * straight from the ring. Stops on -EAGAIN from either side, or when the
 * worker whose turn it is has ended: chunks were dealt in turn, so then
 * every result has gone out. Returns 1 if it moved anything.
 */
static int pump_out(struct relay *r)
{
	int moved = 0;

	while (!r->out_done) {
		shmpipe_reader *resp = r->w[r->next_out].resp;
		const void *result;
		ssize_t n = shmpipe_peek(resp, &result);

		if (n == -EAGAIN)
			break;
		if (n < 0)
			die("a worker failed", (int)-n); /* -ECONNRESET: it aborted */
		if (n == 0) {
			r->out_done = 1;
			return 1;
		}
		ssize_t k = send(r->sock, (const char *)result + r->sent, (size_t)n - r->sent,
				 MSG_NOSIGNAL);
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (k < 0)
			die("send", errno);
		r->sent += (size_t)k;
		moved = 1;
		if (r->sent == (size_t)n) {
			shmpipe_consume(resp, (size_t)n);
			r->sent = 0;
			r->next_out = (r->next_out + 1) % WORKERS;
		}
	}
	return moved;
}

/* Relays between the connected socket sock and WORKERS workers until done. */
static void relay(int sock)
{
	shmpipe_options opts = {.capacity = RING, .flags = SHMPIPE_RECORDS};
	struct relay r = {.sock = sock};
	struct epoll_event evs[2 * WORKERS + 1];

	r.ep = epoll_create1(EPOLL_CLOEXEC);
	if (r.ep < 0)
		die("epoll_create1", errno);
	watch(&r, sock, EPOLLIN | EPOLLOUT);
	for (int i = 0; i < WORKERS; i++) {
		struct worker *w = &r.w[i];
		int e;

		if ((e = shmpipe_pair(&w->req, &w->in, &opts)) < 0 ||
		    (e = shmpipe_pair(&w->out, &w->resp, &opts)) < 0)
			die("shmpipe_pair", -e);
		/* The relay's ends never block; the workers' ends do (the default). */
		shmpipe_writer_set_timeout(w->req, 0);
		shmpipe_reader_set_timeout(w->resp, 0);
		watch(&r, shmpipe_writer_pollfd(w->req), EPOLLIN);
		watch(&r, shmpipe_reader_pollfd(w->resp), EPOLLIN);
		if ((e = pthread_create(&w->thread, NULL, worker_main, w)) != 0)
			die("pthread_create", e);
	}

	while (!r.out_done) {
		/* Which descriptor woke us does not matter: try every path. */
		if (pump_in(&r) + pump_out(&r) > 0)
			continue;
		if (epoll_wait(r.ep, evs, 2 * WORKERS + 1, -1) < 0 && errno != EINTR)
			die("epoll_wait", errno);
	}

	shutdown(sock, SHUT_WR); /* end of stream for the client */
	for (int i = 0; i < WORKERS; i++) {
		pthread_join(r.w[i].thread, NULL);
		epoll_ctl(r.ep, EPOLL_CTL_DEL, shmpipe_reader_pollfd(r.w[i].resp), NULL);
		shmpipe_reader_close(r.w[i].resp);
	}
	close(r.ep);
}

/* --- the self-check's client ------------------------------------------- */

/* The i-th byte of the text the client sends: letters, digits, spaces. */
static char text_at(uint64_t i)
{
	static const char abc[] =
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \n";

	return abc[(i * 0x9E3779B97F4A7C15ull) >> 58];
}

static void *client_send(void *arg)
{
	int sock = *(int *)arg;
	static char buf[65536];
	uint64_t pos = 0;

	while (pos < CHECK_BYTES) {
		/* Uneven sizes, so that chunks do not line up with the sends. */
		size_t n = 1000 + (size_t)(pos % 64511);

		if (n > CHECK_BYTES - pos)
			n = (size_t)(CHECK_BYTES - pos);
		for (size_t i = 0; i < n; i++)
			buf[i] = text_at(pos + i);
		for (size_t done = 0; done < n;) {
			ssize_t k = send(sock, buf + done, n - done, MSG_NOSIGNAL);

			if (k < 0)
				die("client send", errno);
			done += (size_t)k;
		}
		pos += n;
	}
	shutdown(sock, SHUT_WR);
	return NULL;
}

/* Connects to port, sends the text, checks what comes back; exits 1 if wrong. */
static void *client_main(void *arg)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(*(uint16_t *)arg),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	static char buf[65536];
	uint64_t pos = 0;
	pthread_t sender;
	ssize_t k;
	int e;

	if (sock < 0 || connect(sock, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("client connect", errno);
	if ((e = pthread_create(&sender, NULL, client_send, &sock)) != 0)
		die("pthread_create", e);
	while ((k = recv(sock, buf, sizeof(buf), 0)) > 0) {
		for (ssize_t i = 0; i < k; i++) {
			char want = to_upper(text_at(pos + (uint64_t)i));

			if (buf[i] != want) {
				fprintf(stderr, "epoll_relay: byte %llu is %d, want %d\n",
					(unsigned long long)(pos + (uint64_t)i), buf[i], want);
				exit(1);
			}
		}
		pos += (uint64_t)k;
	}
	if (k < 0)
		die("client recv", errno);
	pthread_join(sender, NULL);
	close(sock);
	if (pos != CHECK_BYTES) {
		fprintf(stderr, "epoll_relay: got %llu of %llu bytes\n", (unsigned long long)pos,
			CHECK_BYTES);
		exit(1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int one = 1, lsock, sock, e;
	pthread_t client;
	uint16_t port;

	if (argc > 2 || (argc == 2 && (atoi(argv[1]) <= 0 || atoi(argv[1]) > 65535))) {
		fprintf(stderr, "usage: epoll_relay [PORT]\n");
		return 2;
	}
	a.sin_port = htons(argc == 2 ? (uint16_t)atoi(argv[1]) : 0);
	lsock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lsock < 0)
		die("socket", errno);
	setsockopt(lsock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lsock, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lsock, 1) < 0 ||
	    getsockname(lsock, (struct sockaddr *)&a, &alen) < 0)
		die("bind", errno);
	port = ntohs(a.sin_port);
	if (argc == 1 && (e = pthread_create(&client, NULL, client_main, &port)) != 0)
		die("pthread_create", e);

	sock = accept4(lsock, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (sock < 0)
		die("accept", errno);
	close(lsock);
	relay(sock);
	close(sock);

	if (argc == 1) {
		/* The client exits 1 itself on the first wrong or missing byte. */
		pthread_join(client, NULL);
		printf("epoll_relay: %llu bytes through %d workers, all back right: OK\n",
		       CHECK_BYTES, WORKERS);
	}
	return 0;
}
