/* SPDX-License-Identifier: MIT */
/*
 * shmpipe forward: a bridge between a pipe and a NATS JetStream stream.
 *
 *   forward NAME nats://HOST:PORT[,HOST:PORT...]/SUBJECT    ring -> JetStream
 *   forward nats://HOST:PORT[,HOST:PORT...]/SUBJECT NAME    JetStream -> ring
 *
 * Ring to JetStream: the read end of NAME; each record (or chunk of a byte
 * stream) is published as one message, at most --window unacknowledged at
 * once, and released from the ring only once JetStream has acknowledged it
 * (shmpipe_peek / shmpipe_peek_next, publish, acknowledgement, consume). A
 * message's id (Nats-Msg-Id) is this run's random id and the message's
 * position in the ring, so that one published again (no acknowledgement
 * within ACK_WAIT, a server that went away) is stored once. The end of the
 * stream is a last message with the header Shmpipe-End: eof, or error when
 * the writer died or aborted.
 *
 * JetStream to ring: the write end of NAME; a durable pull consumer fetches
 * as many messages as the ring has room for (by the sizes seen so far),
 * writes each (one record each in record mode) and acknowledges it once it
 * is committed; a message delivered again after a lost acknowledgement is
 * recognised by the near ring position in its id and not written twice.
 * The end marker
 * closes (eof) or aborts (error) the writer.
 *
 * libnats is used here only, by the program; the library stays libc-only.
 * Built without it, the command says so.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/random.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "acks.h"
#include "cli.h"
#include "progress.h"

#define FWD_CONNECT   3 /* the servers could not be reached within --timeout */
#define FWD_NO_STREAM 4 /* the stream (or the consumer) is missing, no --create */
#define FWD_AUTH      5 /* the servers refused our credentials */

#ifndef SHMPIPE_HAVE_NATS

int cli_forward(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_error("forward: this shmpipe was built without NATS support (libnats)");
	return CLI_USAGE;
}

#else

#include <nats/nats.h>

#include "pull.h"

#define MAX_SERVERS    16
#define END_HEADER     "Shmpipe-End"
#define ACK_WAIT_MS    5000 /* republish what has no acknowledgement after this */
#define RETRY_MS       5    /* republish a refused message after this, doubling */
#define RETRY_MAX_MS   200  /* ... up to this while the refusals go on */
#define FETCH_WAIT_MS  500  /* one pull request's wait on the server */
#define DEFAULT_WINDOW 256
#define GAP_WARN_S     30  /* only messages after the next one this long: said */
#define HEADER_ROOM    256 /* a message's headers, within the server's largest message */
#define REPORT_PREFIX  "_SHMPIPE.taken" /* where the far side says how far it took */
#define IO_BUF_SIZE    (256 << 10)	/* libnats' socket buffers */
#define PURGE_WINDOWS  32	     /* the far side purges what it took every this many windows */
#define PURGE_BYTES    (32ull << 20) /* ... or bytes of messages, whichever comes first */

struct url {
	char buf[1024];
	char *servers[MAX_SERVERS];
	int nservers;
	const char *subject;
};

/* What the callbacks of libnats's threads share with the main thread. */
struct link {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int connected;
	char status[96];
	char refusal[200]; /* the servers' first refusal of a subject we need */
};

static struct link lk = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, "", ""};

/*
 * The subscriptions, destroyed only once the connection is closed: libnats
 * 3.4's reader does not hold a subscription while it hands it a message, so
 * one destroyed before may be used after it is freed (pull.h).
 */
static natsSubscription *near_reports; /* the far side's reports */
static struct pull far_pull;	       /* the far side's deliveries */

static int is_url(const char *s)
{
	return strncmp(s, "nats://", 7) == 0 || strncmp(s, "tls://", 6) == 0;
}

/* nats://[user:pass@]host:port[,host:port...]/subject into u. */
static int parse_url(const char *arg, struct url *u)
{
	const char *scheme = strncmp(arg, "tls://", 6) == 0 ? "tls://" : "nats://";
	const char *rest = arg + strlen(scheme), *slash = strchr(rest, '/');
	char *p, *save = NULL, *tok;
	size_t used;

	if (!slash || slash == rest || !slash[1])
		return -EINVAL;
	for (const char *s = slash + 1; *s; s++)
		if (*s <= ' ' || *s == 0x7f || (*s == '.' && (s[1] == '.' || s[1] == '\0')))
			return -EINVAL;
	if (slash[1] == '.' || strlen(arg) >= sizeof(u->buf) / 2)
		return -EINVAL;
	/* Subject first, then each server with the scheme put back. */
	u->subject = u->buf;
	used = (size_t)snprintf(u->buf, sizeof(u->buf), "%s", slash + 1) + 1;
	p = u->buf + used;
	{
		char hosts[512];

		snprintf(hosts, sizeof(hosts), "%.*s", (int)(slash - rest), rest);
		u->nservers = 0;
		for (tok = strtok_r(hosts, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			const char *at = strrchr(tok, '@'), *host = at ? at + 1 : tok;
			const char *colon = strrchr(host, ':');
			int k;

			if (u->nservers == MAX_SERVERS || !*host || *host == ':' ||
			    strchr(tok, ' '))
				return -EINVAL;
			/* A port, if any, is 1 to 65535 (an IPv6 host is in brackets). */
			if (colon && !(host[0] == '[' && strchr(colon, ']'))) {
				char *end;
				long port;

				errno = 0;
				port = strtol(colon + 1, &end, 10);
				if (!colon[1] || *end || errno || port < 1 || port > 65535 ||
				    colon[1] < '0' || colon[1] > '9')
					return -EINVAL;
			}
			k = snprintf(p, sizeof(u->buf) - used, "%s%s", scheme, tok);
			if (k < 0 || (size_t)k + 1 > sizeof(u->buf) - used)
				return -EINVAL;
			u->servers[u->nservers++] = p;
			p += k + 1;
			used += (size_t)k + 1;
		}
	}
	return u->nservers > 0 ? 0 : -EINVAL;
}

/* The default stream name: SHMPIPE_ and the subject, wildcards and dots as _. */
static void default_stream(char *buf, size_t len, const char *subject)
{
	size_t n = (size_t)snprintf(buf, len, "SHMPIPE_");

	for (const char *s = subject; *s && n + 1 < len; s++)
		buf[n++] = (*s == '.' || *s == '*' || *s == '>') ? '_' : *s;
	buf[n] = '\0';
}

static void on_disconnected(natsConnection *nc, void *closure)
{
	(void)nc;
	(void)closure;
	pthread_mutex_lock(&lk.lock);
	lk.connected = 0;
	snprintf(lk.status, sizeof(lk.status), "  server unreachable: reconnecting");
	pthread_cond_broadcast(&lk.cond);
	pthread_mutex_unlock(&lk.lock);
}

static void on_connected(natsConnection *nc, void *closure)
{
	(void)nc;
	(void)closure;
	pthread_mutex_lock(&lk.lock);
	lk.connected = 1;
	lk.status[0] = '\0';
	pthread_cond_broadcast(&lk.cond);
	pthread_mutex_unlock(&lk.lock);
}

/*
 * A permissions violation: the servers refused a publication or a
 * subscription of ours. libnats says so only here, on its thread, and the
 * request or the message that was refused would only go unanswered, so
 * that the forward would wait (for a JetStream that "does not answer", for
 * acknowledgements that never come). Kept for the main thread, which
 * stops (refused()); except a refusal of the far side's reports, which are
 * only a help (the near side asks the servers instead).
 */
static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
	const char *e = NULL;

	(void)sub;
	(void)closure;
	if (err != NATS_NOT_PERMITTED)
		return;
	natsConnection_GetLastError(nc, &e);
	if (e && strstr(e, REPORT_PREFIX))
		return;
	pthread_mutex_lock(&lk.lock);
	if (!lk.refusal[0])
		snprintf(lk.refusal, sizeof(lk.refusal), "%s",
			 e && *e ? e : "permissions violation");
	pthread_cond_broadcast(&lk.cond);
	pthread_mutex_unlock(&lk.lock);
}

/* The servers' refusal of a subject we need: said, and FWD_AUTH; 0 if none. */
static int refused(const char *what)
{
	char text[sizeof(lk.refusal)];

	pthread_mutex_lock(&lk.lock);
	memcpy(text, lk.refusal, sizeof(text));
	pthread_mutex_unlock(&lk.lock);
	if (!text[0])
		return 0;
	cli_error("%s: the servers refuse us: %s", what, text);
	return FWD_AUTH;
}

/* Backoff: 100 ms doubling to 2 s, so that a server down costs no busy loop. */
static int64_t reconnect_delay(natsConnection *nc, int attempts, void *closure)
{
	int64_t ms = 100;

	(void)nc;
	(void)closure;
	for (int i = 1; i < attempts && ms < 2000; i++)
		ms *= 2;
	if (ms > 2000)
		ms = 2000;
	pthread_mutex_lock(&lk.lock);
	snprintf(lk.status, sizeof(lk.status),
		 "  server unreachable: attempt %d, next in %" PRId64 " ms", attempts, ms);
	pthread_mutex_unlock(&lk.lock);
	return ms;
}

/*
 * Sets the progress line's status to text, or clears it (NULL), while the
 * servers are connected: while they are not, the reconnection's status
 * stays until on_connected clears it. Whether it was set.
 */
static int link_status(const char *text)
{
	int set;

	pthread_mutex_lock(&lk.lock);
	set = lk.connected;
	if (set)
		snprintf(lk.status, sizeof(lk.status), "%s", text ? text : "");
	pthread_mutex_unlock(&lk.lock);
	return set;
}

static const char *progress_status(void *arg)
{
	static char copy[96];

	(void)arg;
	pthread_mutex_lock(&lk.lock);
	memcpy(copy, lk.status, sizeof(copy));
	pthread_mutex_unlock(&lk.lock);
	return copy;
}

/*
 * The files the options name (--creds, --tls-ca) are read by libnats and
 * OpenSSL only when they are needed: a wrong path showed as servers that
 * cannot be reached (or not at all while they were down), and a FIFO hung
 * the forward past --timeout. Looked at here instead, before the pipe and
 * the network: a regular file of at most 1 MiB that we can read, in a
 * buffer the caller frees. NULL after the usage error is said.
 */
static char *option_file(const char *opt, const char *path)
{
	enum { OPTION_FILE_MAX = 1 << 20 };
	struct stat sb;
	char *buf = NULL;
	ssize_t n = 0;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC), err;

	if (fd < 0) {
		cli_usage("forward", "%s %s: %s", opt, path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > OPTION_FILE_MAX) {
		close(fd);
		cli_usage("forward", "%s %s: not a regular file of at most 1 MiB", opt, path);
		return NULL;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (buf)
		n = read(fd, buf, (size_t)sb.st_size);
	err = errno;
	close(fd);
	if (!buf || n < 0) {
		free(buf);
		cli_usage("forward", "%s %s: %s", opt, path, buf ? strerror(err) : "out of memory");
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/*
 * The files of the options, before anything else: readable, and a
 * credentials file holding a user's JWT and its nkey seed as nsc writes
 * them (what is wrong with a certificate, OpenSSL says). 0, or CLI_USAGE
 * after the message.
 */
static int option_files_usable(const struct cli_opts *o)
{
	char *buf;
	int ok;

	if (o->tls_ca) {
		buf = option_file("--tls-ca", o->tls_ca);
		if (!buf)
			return CLI_USAGE;
		free(buf);
	}
	if (!o->creds)
		return 0;
	buf = option_file("--creds", o->creds);
	if (!buf)
		return CLI_USAGE;
	ok = strstr(buf, "BEGIN NATS USER JWT") && strstr(buf, "BEGIN USER NKEY SEED");
	free(buf);
	if (!ok)
		return cli_usage("forward",
				 "--creds %s: not a NATS credentials file (a user's JWT and its "
				 "nkey seed, as nsc writes them)",
				 o->creds);
	return 0;
}

/* Whether a failed connection was the servers' refusal of our credentials. */
static int refused_at_connect(natsStatus s)
{
	const char *e = nats_GetLastError(NULL);

	return s == NATS_NOT_PERMITTED || (e && strstr(e, "uthoriz"));
}

/*
 * Connects (retrying in the background with backoff until --timeout, or for
 * ever) and gets the JetStream context. Returns 0 or an exit status after
 * the message.
 */
static int connect_nats(const struct url *u, const struct cli_opts *o, const char *what,
			natsConnection **nc, natsOptions **nopts)
{
	natsStatus s;
	double t0 = cli_now();
	int shown = 0;

	if (natsOptions_Create(nopts) != NATS_OK)
		goto nomem;
	s = natsOptions_SetServers(*nopts, (const char **)u->servers, u->nservers);
	if (s == NATS_OK)
		s = natsOptions_SetNoRandomize(*nopts, true);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(*nopts, -1);
	if (s == NATS_OK)
		s = natsOptions_SetCustomReconnectDelay(*nopts, reconnect_delay, NULL);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(*nopts, on_connected, NULL);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(*nopts, on_disconnected, NULL);
	if (s == NATS_OK)
		s = natsOptions_SetErrorHandler(*nopts, on_async_error, NULL);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(*nopts, 2000);
	/*
	 * Socket reads and writes of 256 KiB, not libnats' 32 KiB: fewer
	 * system calls and wake-ups on a bulk transfer (records of 4 KiB
	 * went through the bridge about 5% faster, docs/benchmarks.md).
	 */
	if (s == NATS_OK)
		s = natsOptions_SetIOBufSize(*nopts, IO_BUF_SIZE);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectBufSize(*nopts, 64 << 20);
	if (s == NATS_OK && o->creds)
		s = natsOptions_SetUserCredentialsFromFiles(*nopts, o->creds, NULL);
	if (s == NATS_OK && (o->tls || o->tls_ca || strncmp(u->servers[0], "tls://", 6) == 0))
		s = natsOptions_SetSecure(*nopts, true);
	if (s == NATS_OK && o->tls_ca)
		s = natsOptions_LoadCATrustedCertificates(*nopts, o->tls_ca);
	if (s != NATS_OK) {
		cli_error("%s: %s", what, nats_GetLastError(NULL));
		return CLI_USAGE;
	}
	/*
	 * Once at once, to tell a refusal of our credentials (for good) from
	 * servers that are not there (yet): only for those does libnats then
	 * try again in the background, with our backoff.
	 */
	s = natsConnection_Connect(nc, *nopts);
	/*
	 * With credentials, a refusal is tried once more: libnats 3.4.1
	 * sometimes sends its CONNECT with the user's JWT but without the
	 * signature of the server's nonce (about 1 connection in 50 here,
	 * seen in the server's trace), and the servers refuse that; a
	 * credential that is really refused is refused again.
	 */
	if (s != NATS_OK && o->creds && refused_at_connect(s)) {
		usleep(50 * 1000);
		s = natsConnection_Connect(nc, *nopts);
	}
	if (s == NATS_NO_SERVER) {
		s = natsOptions_SetRetryOnFailedConnect(*nopts, true, on_connected, NULL);
		if (s == NATS_OK)
			s = natsConnection_Connect(nc, *nopts);
	}
	if (s == NATS_OK) {
		on_connected(*nc, NULL);
		return 0;
	}
	if (s != NATS_NOT_YET_CONNECTED) {
		const char *e = nats_GetLastError(NULL);

		cli_error("%s: connecting to %s: %s", what, u->servers[0],
			  e ? e : natsStatus_GetText(s));
		return refused_at_connect(s) ? FWD_AUTH : FWD_CONNECT;
	}
	/* Not yet: libnats tries again with our backoff; wait for it, not in a loop of ours. */
	pthread_mutex_lock(&lk.lock);
	while (!lk.connected) {
		struct timespec ts;
		int timed_out;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&lk.cond, &lk.lock, &ts);
		timed_out = o->timeout_ms >= 0 && (cli_now() - t0) * 1000 >= o->timeout_ms;
		if (lk.connected)
			break;
		pthread_mutex_unlock(&lk.lock);
		{
			/* The servers came, and refuse us: no use trying again. */
			const char *e = NULL;

			if (natsConnection_GetLastError(*nc, &e) == NATS_NOT_PERMITTED ||
			    (e && strstr(e, "uthoriz"))) {
				if (shown)
					progress_note_end();
				cli_error("%s: %s refused us: %s", what, u->servers[0], e ? e : "");
				natsConnection_Destroy(*nc);
				*nc = NULL;
				return FWD_AUTH;
			}
		}
		if (timed_out) {
			if (shown)
				progress_note_end();
			cli_error("%s: cannot reach %s%s (connection refused or no server)", what,
				  u->servers[0], u->nservers > 1 ? " nor the other servers" : "");
			natsConnection_Destroy(*nc);
			*nc = NULL;
			return FWD_CONNECT;
		}
		{
			char msg[CLI_SHOWN_MAX + 160];

			snprintf(msg, sizeof(msg), "%s: waiting for the server%s", what,
				 progress_status(NULL));
			progress_note(o->quiet, o->progress, msg);
			shown = 1;
		}
		pthread_mutex_lock(&lk.lock);
	}
	pthread_mutex_unlock(&lk.lock);
	if (shown)
		progress_note_end();
	return 0;

nomem:
	cli_error("%s: out of memory", what);
	return CLI_FAILED;
}

/*
 * Makes sure the stream exists (creating it with --create). Returns 0 or an
 * exit status after the message.
 */
static int ensure_stream(jsCtx *js, const char *stream, const struct url *u,
			 const struct cli_opts *o, const char *what)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s;

	double t0 = cli_now();

	for (;;) {
		s = js_GetStreamInfo(&si, js, stream, NULL, &jerr);
		if (s == NATS_OK) {
			jsStreamInfo_Destroy(si);
			return 0;
		}
		if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr)
			break;
		/* A cluster still electing its leaders, a server coming back: again. */
		if (s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS ||
		    s == NATS_CONNECTION_DISCONNECTED) {
			int st = refused(what);

			if (st)
				return st;
			if (o->timeout_ms >= 0 && (cli_now() - t0) * 1000 >= o->timeout_ms) {
				cli_error(
				    "%s: JetStream does not answer on %s (not enabled there, or "
				    "no leader) within --timeout",
				    what, u->servers[0]);
				return FWD_CONNECT;
			}
			usleep(200 * 1000);
			continue;
		}
		cli_error("%s: stream %s: %s", what, stream, nats_GetLastError(NULL));
		return s == NATS_NOT_PERMITTED ? FWD_AUTH : CLI_FAILED;
	}
	if (!o->create) {
		cli_error("%s: no stream %s on the server (--create makes it)", what, stream);
		return FWD_NO_STREAM;
	}
	{
		jsStreamConfig cfg;
		const char *subjects[1] = {u->subject};

		jsStreamConfig_Init(&cfg);
		cfg.Name = stream;
		cfg.Subjects = subjects;
		cfg.SubjectsLen = 1;
		cfg.Storage = js_FileStorage;
		cfg.Replicas = o->replicas > 0 ? o->replicas : 1;
		/*
		 * Limits retention and no limit: the far side purges what it
		 * took (purge_taken()), and the near side holds back while the
		 * far side's backlog is full (room()). Not a limit of the
		 * stream: JetStream 2.9 checks such a limit on each replica
		 * apart, against deletions each applies at its own moment, so
		 * that replicas may keep different messages and a new leader
		 * lack one its predecessor acknowledged.
		 */
		cfg.Retention = js_LimitsPolicy;
		for (;;) {
			s = js_AddStream(&si, js, &cfg, NULL, &jerr);
			if (s == NATS_OK) {
				jsStreamInfo_Destroy(si);
				return 0;
			}
			if (s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS) {
				int st = refused(what);

				if (st)
					return st;
				usleep(200 * 1000);
				continue;
			}
			/* Made by the other forward at the same moment: fine. */
			if (js_GetStreamInfo(&si, js, stream, NULL, NULL) == NATS_OK) {
				jsStreamInfo_Destroy(si);
				return 0;
			}
			cli_error("%s: creating stream %s: %s", what, stream,
				  nats_GetLastError(NULL));
			return CLI_FAILED;
		}
	}
}

/*
 * A request to the servers made on a thread of its own, so that the main
 * loop never waits for its answer: the near side's question of the far
 * side's backlog, the far side's purge of what it has taken.
 */
struct chore {
	pthread_t thread;
	pthread_cond_t cond; /* want or stop set, or the chore done (with lk.lock) */
	int started, want, stop;
	void (*fn)(void *arg);
	void *arg;
};

static void *chore_loop(void *p)
{
	struct chore *c = p;

	pthread_mutex_lock(&lk.lock);
	for (;;) {
		while (!c->want && !c->stop)
			pthread_cond_wait(&c->cond, &lk.lock);
		if (c->stop)
			break;
		pthread_mutex_unlock(&lk.lock);
		c->fn(c->arg);
		pthread_mutex_lock(&lk.lock);
		c->want = 0;
		pthread_cond_broadcast(&c->cond);
	}
	pthread_mutex_unlock(&lk.lock);
	return NULL;
}

static void chore_start(struct chore *c, void (*fn)(void *), void *arg)
{
	c->fn = fn;
	c->arg = arg;
	pthread_cond_init(&c->cond, NULL);
	c->started = pthread_create(&c->thread, NULL, chore_loop, c) == 0;
	if (!c->started)
		pthread_cond_destroy(&c->cond);
}

/* Has it done unless it is under way, at once; lk.lock held. */
static void chore_want(struct chore *c)
{
	if (c->want)
		return;
	c->want = 1;
	pthread_cond_broadcast(&c->cond);
}

/* Waits for the chore under way, if any, and ends the thread. */
static void chore_stop(struct chore *c)
{
	if (!c->started)
		return;
	pthread_mutex_lock(&lk.lock);
	while (c->want)
		pthread_cond_wait(&c->cond, &lk.lock);
	c->stop = 1;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&lk.lock);
	pthread_join(c->thread, NULL);
	pthread_cond_destroy(&c->cond);
	c->started = 0;
}

/* ---- ring -> JetStream ------------------------------------------------- */

/* One message in flight: its place in the ring and whether it was acknowledged. */
struct slot {
	uint64_t pos;  /* ring position of its first byte (of its frame, in record mode) */
	size_t len;    /* payload bytes (0: the end marker) */
	const void *p; /* its bytes in the ring, to publish again */
	double sent;   /* when it was last published */
	int acked;     /* JetStream stored it (set by the acknowledgement's thread) */
	int retry;     /* refused: publish again after RETRY_MS */
};

struct out {
	jsCtx *js;
	const char *subject;
	const char *stream, *durable; /* where the far side's backlog is asked */
	char run[48];		      /* the pipe's id: its inode and birth time, hex */
	uint64_t prev_pos;	      /* the last message released from the ring */
	int have_prev;
	/*
	 * Until JetStream stores one of ours anew: a forwarder that took the
	 * read end again does not know how far the dead one got, so it sends
	 * one message at a time, expecting nothing, until one is not a
	 * duplicate; from then on the stream's last message is known.
	 */
	int sync;
	int retry_ms; /* the wait before a refused message goes again */
	struct slot *slots;
	unsigned window, head, n; /* slots head .. head + n - 1, oldest first */
	const char *end;	  /* the end marker sent, or NULL */
	uint64_t acked, republished;
	uint64_t woke; /* acked when the main loop was last woken */
	/*
	 * The far side's backlog, the messages the stream holds that it has
	 * not acknowledged: as last asked (backlog), plus those stored since
	 * (stored, counted by the acknowledgements), plus those in flight,
	 * is at most bound. An overestimate: a message stored before the
	 * question whose acknowledgement comes after it counts twice.
	 */
	uint64_t backlog, stored, bound;
	/*
	 * The far side's reports (report_taken()): the stream position of
	 * the last message it took, in order, of this pipe. The stream holds
	 * at most last_seq - taken that it has not taken: another bound on
	 * the backlog, fresh after each of its fetches, which spares asking
	 * the servers while the reports come.
	 */
	uint64_t last_seq; /* the highest stream position stored of ours */
	uint64_t taken;	   /* the far side's last report, at most last_seq */
	uint64_t reports;  /* reports heard */
	uint64_t heard;	   /* ... when the servers were last asked */
	struct chore asker;
	double next_ask; /* when to ask again */
	int ask_ms;	 /* ... after this, doubling while the far side is stalled */
	int held;	 /* the status line says so */
	char err[160];	 /* a refusal that is not worth trying again */
};

static struct out *the_out;

/*
 * The transfer is over (the end crossed, the far reader went away): the
 * pipe has no more use. Otherwise a pipe whose end may be taken again is
 * left to a forward started again.
 */
static int fwd_over;
static int fwd_closed; /* the far writer was closed or aborted: its handle is gone */

/* The acknowledgement of one message, on a thread of libnats. */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct out *o;
	const char *id = NULL, *colon = NULL;
	uint64_t pos;
	int wake = 1;

	(void)js;
	(void)closure;
	if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) != NATS_OK || !id ||
	    !(colon = strrchr(id, ':'))) {
		natsMsg_Destroy(msg);
		return;
	}
	pos = strtoull(colon + 1, NULL, 10);
	pthread_mutex_lock(&lk.lock);
	o = the_out;
	for (unsigned k = 0; o && k < o->n; k++) {
		struct slot *sl = &o->slots[(o->head + k) % o->window];

		if (sl->pos != pos || sl->acked)
			continue;
		/*
		 * The main loop woken when it has something to do: a refusal,
		 * an eighth of the window acknowledged, or the newest in
		 * flight (all of them, as they mostly come in order); not for
		 * each acknowledgement, which cost as much as the publication.
		 * It looks at least every 5 ms anyway.
		 */
		wake = !pa || k == o->n - 1 || o->acked + 1 - o->woke >= (o->window + 7) / 8;
		if (pa) {
			if (pa->Sequence > o->last_seq)
				o->last_seq = pa->Sequence;
			sl->acked = 1;
			o->acked++;
			o->stored++;
			o->retry_ms = RETRY_MS;
			if (!pa->Duplicate)
				o->sync = 0;
		} else if (pae) {
			/*
			 * Refused: a message before it is missing (lost with
			 * a server), no leader yet. All again, in order,
			 * soon; except what no retry can mend.
			 */
			sl->retry = 1;
			/*
			 * The oldest in flight, whose predecessor was stored,
			 * refused for its expectation: the stream's last is
			 * not what we think (ours, stored by a forwarder that
			 * died; or forgotten by a server started again on an
			 * empty work queue). Find out one at a time.
			 */
			if (k == 0 && pae->ErrCode == JSStreamWrongLastMsgIDErr)
				o->sync = 1;
			if ((pae->ErrCode == JSStreamNotFoundErr ||
			     pae->ErrCode == JSStreamMessageExceedsMaximumErr) &&
			    !o->err[0])
				snprintf(o->err, sizeof(o->err), "%s",
					 pae->ErrText ? pae->ErrText : "refused by the server");
		}
		break;
	}
	if (wake) {
		if (o)
			o->woke = o->acked;
		pthread_cond_broadcast(&lk.cond);
	}
	pthread_mutex_unlock(&lk.lock);
	natsMsg_Destroy(msg); /* ours, in this callback */
}

/* A decimal number of n bytes, digits only, that fits: 0, or -1. */
static int parse_seq(const char *p, size_t n, uint64_t *v)
{
	*v = 0;
	if (n == 0 || n > 20)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9' || *v > (UINT64_MAX - (uint64_t)(p[i] - '0')) / 10)
			return -1;
		*v = *v * 10 + (uint64_t)(p[i] - '0');
	}
	return 0;
}

/* Where the far side of stream's consumer durable reports (the near side listens). */
static void report_subject(char *buf, size_t n, const char *stream, const char *durable)
{
	snprintf(buf, n, "%s.%s.%s", REPORT_PREFIX, stream, durable);
}

/*
 * A report of the far side, on a thread of libnats: "PIPE SEQ", the stream
 * position of the last message of the pipe PIPE it took, in order. Anyone
 * with the right to publish may send one, so it counts only if it is of
 * this pipe and within what this side stored; a higher position than one
 * heard before only, as they may cross on the way.
 */
static void on_report(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	const char *data = natsMsg_GetData(msg);
	int len = natsMsg_GetDataLength(msg), i;
	uint64_t seq = 0;
	struct out *o;

	(void)nc;
	(void)sub;
	(void)closure;
	for (i = 0; i < len && data[i] != ' '; i++)
		;
	pthread_mutex_lock(&lk.lock);
	o = the_out;
	if (o && i < len && (size_t)i == strlen(o->run) && memcmp(data, o->run, (size_t)i) == 0 &&
	    parse_seq(data + i + 1, (size_t)(len - i - 1), &seq) == 0 && seq <= o->last_seq &&
	    seq >= o->taken) {
		o->taken = seq;
		o->reports++;
		pthread_cond_broadcast(&lk.cond);
	}
	pthread_mutex_unlock(&lk.lock);
	natsMsg_Destroy(msg);
}

/*
 * Publishes the slot k places after the oldest. Its id is the pipe's and its
 * position; it expects the stream's last message to be the one before it in
 * the ring (the server refuses it otherwise), so that a message lost with a
 * server and published again cannot land after the ones that followed it.
 */
static natsStatus publish(struct out *o, unsigned k)
{
	struct slot *sl = &o->slots[(o->head + k) % o->window];
	natsMsg *m = NULL;
	char id[80], prev[80];
	int have_prev;
	natsStatus s;

	pthread_mutex_lock(&lk.lock);
	have_prev = !o->sync && (k > 0 || o->have_prev);
	snprintf(id, sizeof(id), "%s:%" PRIu64, o->run, sl->pos);
	snprintf(prev, sizeof(prev), "%s:%" PRIu64, o->run,
		 k > 0 ? o->slots[(o->head + k - 1) % o->window].pos : o->prev_pos);
	pthread_mutex_unlock(&lk.lock);
	s = natsMsg_Create(&m, o->subject, NULL, sl->p, (int)sl->len);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
	if (s == NATS_OK && have_prev)
		s = natsMsgHeader_Set(m, "Nats-Expected-Last-Msg-Id", prev);
	if (s == NATS_OK && o->end && sl->len == 0)
		s = natsMsgHeader_Set(m, END_HEADER, o->end);
	if (s == NATS_OK)
		s = js_PublishMsgAsync(o->js, &m, NULL);
	natsMsg_Destroy(m); /* NULL once libnats took it */
	pthread_mutex_lock(&lk.lock);
	sl->sent = cli_now();
	/*
	 * Not sent: the servers away, the socket broken by one that died (an
	 * I/O error, before libnats sees the link down), the buffer for them
	 * full. Again soon: only what no retry mends ends the transfer.
	 */
	if (s != NATS_OK && s != NATS_INVALID_ARG && s != NATS_INVALID_SUBJECT &&
	    s != NATS_MAX_PAYLOAD && s != NATS_NOT_PERMITTED && s != NATS_NO_MEMORY)
		sl->retry = 1;
	else if (s != NATS_OK && !o->err[0])
		snprintf(o->err, sizeof(o->err), "%s",
			 nats_GetLastError(NULL) ? nats_GetLastError(NULL) : natsStatus_GetText(s));
	pthread_mutex_unlock(&lk.lock);
	return s;
}

/* Takes a new slot at the back for pos, len, p, and publishes it. */
static natsStatus send_new(struct out *o, uint64_t pos, const void *p, size_t len)
{
	struct slot *sl;

	pthread_mutex_lock(&lk.lock);
	sl = &o->slots[(o->head + o->n) % o->window];
	*sl = (struct slot){.pos = pos, .len = len, .p = p};
	o->n++;
	pthread_mutex_unlock(&lk.lock);
	return publish(o, o->n - 1);
}

/*
 * Releases the acknowledged messages at the front from the ring, and
 * publishes again those refused or left without an answer for too long.
 */
static int settle(struct out *o, shmpipe_reader *r)
{
	double now = cli_now();
	int err = 0, due = 0;

	pthread_mutex_lock(&lk.lock);
	while (o->n && o->slots[o->head].acked) {
		struct slot *sl = &o->slots[o->head];

		if (sl->len) {
			pthread_mutex_unlock(&lk.lock);
			err = shmpipe_consume(r, sl->len);
			pthread_mutex_lock(&lk.lock);
			if (err < 0)
				break;
		}
		o->prev_pos = sl->pos;
		o->have_prev = 1;
		o->head = (o->head + 1) % o->window;
		o->n--;
	}
	for (unsigned k = 0; k < o->n && !due; k++) {
		struct slot *sl = &o->slots[(o->head + k) % o->window];

		due = !sl->acked && ((sl->retry && now - sl->sent >= o->retry_ms / 1000.0) ||
				     now - sl->sent >= ACK_WAIT_MS / 1000.0);
	}
	/* Refused again and again (no leader yet): back off, up to RETRY_MAX_MS. */
	if (due && o->retry_ms < RETRY_MAX_MS)
		o->retry_ms *= 2;
	pthread_mutex_unlock(&lk.lock);
	/* One is due: all that wait go again, oldest first, each after the one before. */
	for (unsigned k = 0; due && err == 0 && k < o->n && !(k > 0 && o->sync); k++) {
		struct slot *sl = &o->slots[(o->head + k) % o->window];

		pthread_mutex_lock(&lk.lock);
		due = !sl->acked;
		sl->retry = 0;
		pthread_mutex_unlock(&lk.lock);
		if (due) {
			o->republished++;
			publish(o, k);
		}
		due = 1;
	}
	return err;
}

/* Waits for an acknowledgement or a report of the far side, at most ms. */
static void wait_acks(struct out *o, int ms)
{
	struct timespec ts;
	uint64_t before, reports;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)ms * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&lk.lock);
	before = o->acked;
	reports = o->reports;
	while (o->acked == before && o->reports == reports)
		if (pthread_cond_timedwait(&lk.cond, &lk.lock, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&lk.lock);
}

/*
 * Asks the servers the far side's backlog: the messages its consumer has
 * not acknowledged; or, before the consumer is made, all the stream holds.
 * Acknowledgements that come meanwhile still count: an overestimate.
 */
static void ask_backlog(void *arg)
{
	struct out *o = arg;
	jsConsumerInfo *ci = NULL;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	jsOptions jo;
	uint64_t base, held;

	jsOptions_Init(&jo);
	jo.Wait = 1000;
	pthread_mutex_lock(&lk.lock);
	base = o->stored;
	pthread_mutex_unlock(&lk.lock);
	if (js_GetConsumerInfo(&ci, o->js, o->stream, o->durable, &jo, &jerr) == NATS_OK) {
		held = ci->NumPending + (uint64_t)ci->NumAckPending;
		jsConsumerInfo_Destroy(ci);
	} else if (jerr == JSConsumerNotFoundErr &&
		   js_GetStreamInfo(&si, o->js, o->stream, &jo, NULL) == NATS_OK) {
		held = si->State.Msgs;
		jsStreamInfo_Destroy(si);
	} else {
		return; /* no answer (the servers away, a leader being elected) */
	}
	pthread_mutex_lock(&lk.lock);
	o->backlog = held;
	o->stored -= base;
	pthread_mutex_unlock(&lk.lock);
}

/*
 * Whether one more message may go: the far side's backlog with it stays
 * within the bound (four windows: what the far side takes at once, what this
 * side has in flight, and two more that keep the far side's next fetches
 * from waiting). The count is the lower of two overestimates: the servers'
 * last answer plus what was stored since, and what the far side's last
 * report leaves. The question goes to the servers on the asker's thread
 * once the count passes three quarters of the bound (at most every 10 ms),
 * so that the answer is usually there before the bound is reached; held
 * back, again after 1 ms doubling to 100 ms. Not asked while the far
 * side's reports come: only when none came since the last question (none
 * yet, a far side stalled, or whose reports do not get here).
 */
static int room(struct out *o)
{
	double now = cli_now();
	uint64_t count;
	int ok;

	pthread_mutex_lock(&lk.lock);
	count = o->backlog + o->stored;
	if (o->reports && o->last_seq - o->taken < count)
		count = o->last_seq - o->taken;
	count += o->n;
	ok = count < o->bound;
	/* Not while the reports come: one since the last question says more. */
	if (count >= o->bound - o->bound / 4 && now >= o->next_ask && !o->asker.want &&
	    o->reports == o->heard) {
		o->heard = o->reports;
		if (o->asker.started) {
			chore_want(&o->asker);
		} else {
			/* No thread: asked here. */
			pthread_mutex_unlock(&lk.lock);
			ask_backlog(o);
			pthread_mutex_lock(&lk.lock);
		}
		o->next_ask = now + (ok ? 10 : o->ask_ms) / 1000.0;
		if (!ok && o->ask_ms < 100)
			o->ask_ms *= 2;
	}
	if (ok) {
		o->ask_ms = 1;
		if (o->held && lk.connected)
			lk.status[0] = '\0';
		o->held = 0;
	} else if (lk.connected) {
		snprintf(lk.status, sizeof(lk.status),
			 "  held back: %" PRIu64 " messages wait for the far side",
			 o->backlog + o->stored);
		o->held = 1;
	}
	pthread_mutex_unlock(&lk.lock);
	return ok;
}

static int ring_to_js(shmpipe_reader *r, natsConnection *nc, jsCtx *js, const char *stream,
		      const char *durable, const struct url *u, const struct cli_opts *co,
		      const char *what, int records, size_t max_payload)
{
	natsSubscription *reports = NULL;
	char subject[600];
	struct out o = {.js = js, .subject = u->subject, .stream = stream, .durable = durable};
	size_t chunk = co->chunk ? (size_t)co->chunk : 64 * 1024;
	uint64_t pos, rnd = 0, shown = 0; /* shown: bytes published, not consumed (byte stream) */
	shmpipe_stats st;
	int user_timeout = co->timeout_ms, status = CLI_OK, held;
	ssize_t got = 0;

	if (max_payload <= HEADER_ROOM) {
		cli_error("%s: the server's largest message (%zu bytes) leaves no room for data",
			  what, max_payload);
		return CLI_FAILED;
	}
	if (chunk + HEADER_ROOM > max_payload)
		chunk = max_payload - HEADER_ROOM;
	o.window = co->window ? (unsigned)co->window : DEFAULT_WINDOW;
	o.bound = 4 * (uint64_t)o.window;
	o.backlog = o.bound; /* not known until asked: a forwarder started again may find it full */
	o.ask_ms = 1;
	o.slots = calloc(o.window, sizeof(*o.slots));
	if (!o.slots) {
		cli_error("%s: out of memory", what);
		return CLI_FAILED;
	}
	/*
	 * The pipe's id, the same for a forwarder that takes the read end
	 * again after a death: its inode and its birth time, which a pipe
	 * made again under the same name does not share.
	 */
	{
		struct statx sx;

		if (statx(shmpipe_reader_fd(r), "", AT_EMPTY_PATH, STATX_INO | STATX_BTIME, &sx) ==
			0 &&
		    (sx.stx_mask & STATX_BTIME)) {
			snprintf(o.run, sizeof(o.run), "%" PRIx64 "-%" PRIx64 ".%x",
				 (uint64_t)sx.stx_ino, (uint64_t)sx.stx_btime.tv_sec,
				 (unsigned)sx.stx_btime.tv_nsec);
		} else {
			/* No birth time: an id of this run only (a restart may then repeat). */
			if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
				rnd = (uint64_t)getpid() << 32 ^ (uint64_t)(cli_now() * 1e9);
			snprintf(o.run, sizeof(o.run), "r%016" PRIx64, rnd);
		}
	}
	shmpipe_reader_stats(r, &st);
	pos = st.read_index;
	o.sync = 1;
	o.retry_ms = RETRY_MS;
	pthread_mutex_lock(&lk.lock);
	the_out = &o;
	pthread_mutex_unlock(&lk.lock);
	chore_start(&o.asker, ask_backlog, &o);
	/*
	 * The far side's reports. Without them (no right to listen there, a
	 * far side that does not send them), the servers are asked.
	 */
	report_subject(subject, sizeof(subject), stream, durable);
	natsConnection_Subscribe(&reports, nc, subject, on_report, NULL);
	near_reports = reports;

	for (;;) {
		int err = settle(&o, r);

		if (err < 0) {
			cli_error("%s: %s", what, shmpipe_strerror(err));
			status = CLI_FAILED;
			break;
		}
		if (o.err[0]) {
			cli_error("%s: the server refused a message: %s", what, o.err);
			status = CLI_FAILED;
			break;
		}
		if ((status = refused(what)) != 0)
			break;
		if (o.end && o.n == 0) {
			fwd_over = 1;
			break;
		} /* the end marker too was stored */
		if (!records) {
			/* What settle released is no longer shown. */
			shmpipe_stats now;

			shmpipe_reader_stats(r, &now);
			shown = pos - now.read_index;
		}
		got = -EAGAIN;
		held = 0;
		/* Fill the window; wait for the ring only when nothing is in flight. */
		while (!o.end && o.n < (o.sync ? 1u : o.window)) {
			const void *p;

			if (!room(&o)) {
				held = 1;
				break;
			}

			shmpipe_reader_set_timeout(r, o.n ? 0 : user_timeout);
			if (records) {
				got = shmpipe_peek_next(r, &p);
				if (got > 0) {
					if ((size_t)got + HEADER_ROOM > max_payload) {
						cli_error(
						    "%s: a record of %zd bytes is larger than the "
						    "server's largest message (%zu)",
						    what, got, max_payload);
						status = CLI_FAILED;
						goto out;
					}
					send_new(&o, pos, p, (size_t)got);
					pos += SHMPIPE_RECORD_SPACE(got);
					continue;
				}
			} else {
				got = shmpipe_peek(r, &p);
				if (got > 0 && (uint64_t)got > shown) {
					size_t len = (uint64_t)got - shown < chunk
							 ? (size_t)((uint64_t)got - shown)
							 : chunk;

					send_new(&o, pos, (const uint8_t *)p + shown, len);
					pos += len;
					shown += len;
					continue;
				}
				if (got > 0)
					got = -EAGAIN;
			}
			if (got == 0 || got == -ECONNRESET) {
				/* The end crosses as a message of its own, after the data. */
				o.end = got == 0 ? "eof" : "error";
				send_new(&o, pos, "", 0);
				break;
			}
			if (got == -EAGAIN && o.n)
				break;
			if (got < 0) {
				cli_error("%s: %s", what,
					  got == -ETIMEDOUT ? "timed out waiting for data"
							    : shmpipe_strerror((int)got));
				status = CLI_FAILED;
				goto out;
			}
		}
		if (o.n && (o.n == (o.sync ? 1u : o.window) || got == -EAGAIN || o.end))
			wait_acks(&o, 5);
		else if (held && !o.n)
			wait_acks(&o, o.ask_ms); /* a report, or until it is worth asking again */
	}
	if (status == CLI_OK && strcmp(o.end, "error") == 0) {
		cli_error("%s: the writer died or aborted; the far side gets an error, not an end",
			  what);
		status = CLI_FAILED;
	}
out:
	if (o.republished && !co->quiet)
		fprintf(stderr, "%s: %" PRIu64 " messages published again (no answer in time)\n",
			what, o.republished);
	/* Destroyed once the connection is closed (near_reports). */
	if (reports)
		natsSubscription_Unsubscribe(reports);
	chore_stop(&o.asker);
	/* Late acknowledgements and reports find nothing to mark. */
	pthread_mutex_lock(&lk.lock);
	the_out = NULL;
	pthread_mutex_unlock(&lk.lock);
	free(o.slots);
	return status;
}

/* ---- JetStream -> ring ----------------------------------------------------- */

/*
 * What the far side has committed, kept beside the pipe (NAME.forward in
 * /dev/shm, mapped: a store is there even if the process dies right after
 * it), so that a forwarder that takes the write end again knows where the
 * stream stands. Positions are the near ring's (each message's id carries
 * its own): next is where the next message must start. Before a message
 * goes in: pend_next (next once it is in) and pend_end (the far ring's
 * write_index then), then pending; after: next, and pending cleared.
 * write_index in the pipe then tells whether a pending message went in
 * whole, in part (a byte stream: the rest is written), or not at all.
 */
struct state {
	uint64_t magic;
	char pipe[48];		    /* the near pipe's id */
	_Atomic uint64_t next;	    /* near position of the next message to write */
	_Atomic uint64_t pending;   /* 1 while a message is being written */
	_Atomic uint64_t pend_next; /* next, once it is in */
	_Atomic uint64_t pend_end;  /* the far ring's write_index, once it is in */
	_Atomic uint64_t known;	    /* next and pipe say something */
};

#define STATE_MAGIC 0x73686d70666f7232ull

static struct state *state_open(const char *name, char *path, size_t len, int fresh)
{
	struct state *st;
	struct stat sb;
	int fd;

	snprintf(path, len, "%s.forward", name);
	if (fresh)
		shm_unlink(path);
	fd = shm_open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return NULL;
	/* Ours, and a plain object of our size: another user's is not trusted. */
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_uid != geteuid() ||
	    (sb.st_size != 0 && sb.st_size != (off_t)sizeof(*st)) ||
	    ftruncate(fd, sizeof(*st)) < 0) {
		close(fd);
		return NULL;
	}
	st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (st == MAP_FAILED)
		return NULL;
	if (st->magic != STATE_MAGIC) {
		memset(st, 0, sizeof(*st));
		st->magic = STATE_MAGIC;
	}
	return st;
}

/* Waits for room for a message of about `space` ring bytes; 0 or the error. */
static int wait_room(shmpipe_writer *w, uint64_t capacity, uint64_t space)
{
	shmpipe_stats st;
	void *p;
	ssize_t k;

	shmpipe_writer_stats(w, &st);
	if (capacity - (st.write_index - st.read_index) >= space)
		return 0;
	/* A reservation waits as a write does, and a commit of 0 publishes nothing. */
	k = shmpipe_reserve(w, &p, (size_t)(space < capacity ? space : 1));
	if (k < 0)
		return (int)k;
	shmpipe_commit(w, 0);
	return 0;
}

static const char *write_why(ssize_t err)
{
	return err == -EPIPE	   ? "the reader closed the pipe or died"
	       : err == -EMSGSIZE  ? "a message is larger than the ring's largest record"
	       : err == -ETIMEDOUT ? "timed out: the ring stayed full"
				   : shmpipe_strerror((int)err);
}

/* A message's near pipe and position, from its id; 0 or -1. */
static int msg_pos(natsMsg *m, char *pipe, size_t len, uint64_t *pos)
{
	const char *id = NULL, *colon;
	char *end;

	if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) != NATS_OK || !id ||
	    !(colon = strrchr(id, ':')) || (size_t)(colon - id) >= len || colon[1] < '0' ||
	    colon[1] > '9')
		return -1;
	errno = 0;
	*pos = strtoull(colon + 1, &end, 10);
	if (*end || errno)
		return -1;
	memcpy(pipe, id, (size_t)(colon - id));
	pipe[colon - id] = '\0';
	return 0;
}

/* What the far side's purge needs. */
struct purge {
	jsCtx *js;
	const char *stream, *durable;
	int own;		/* the floor is this side's own (cumulative acknowledgements) */
	_Atomic uint64_t floor; /* ... acknowledged up to this stream position */
};

/*
 * Removes from the stream what the consumer has acknowledged, all below its
 * ack floor: as this side acknowledged it (cumulative acknowledgements, all
 * of it taken), else as the servers know it. One purge every PURGE_WINDOWS
 * windows or PURGE_BYTES of messages, on the purger's thread, not a
 * deletion each as a work queue does (which cost the bridge a fifth of its
 * speed): a purge that leaves most of a block of the servers' store rewrites
 * the rest, so purges of 8 MiB cost the bridge a tenth of its speed on
 * records of 4 KiB. No answer: the next purge takes these too.
 */
static void purge_taken(void *arg)
{
	struct purge *pu = arg;
	jsConsumerInfo *ci = NULL;
	jsOptions jo;
	uint64_t floor;

	jsOptions_Init(&jo);
	jo.Wait = 1000;
	if (pu->own) {
		floor = atomic_load(&pu->floor);
	} else {
		if (js_GetConsumerInfo(&ci, pu->js, pu->stream, pu->durable, &jo, NULL) != NATS_OK)
			return;
		floor = ci->AckFloor.Stream;
		jsConsumerInfo_Destroy(ci);
	}
	/*
	 * Nothing taken yet: nothing to purge. And a purge up to sequence 1
	 * (or 0) is one of everything to nats-server 2.9, not of nothing.
	 */
	if (floor == 0)
		return;
	jsOptions_Init(&jo);
	jo.Wait = 1000;
	jo.Stream.Purge.Sequence = floor + 1; /* up to it, not including */
	js_PurgeStream(pu->js, pu->stream, &jo, NULL);
}

/*
 * Tells the near side how far this side took: "PIPE SEQ", the stream
 * position of m, the last message it wrote, in order. Fire and forget, after
 * the acknowledgements on the same connection, which the servers therefore
 * have before the near side hears it. Lost, or not allowed: the near side
 * asks the servers instead.
 */
static void report_taken(natsConnection *nc, const char *subject, const char *pipe, natsMsg *m)
{
	jsMsgMetaData *meta = NULL;
	char buf[96];
	int n;

	if (natsMsg_GetMetaData(&meta, m) != NATS_OK)
		return;
	n = snprintf(buf, sizeof(buf), "%s %" PRIu64, pipe, meta->Sequence.Stream);
	jsMsgMetaData_Destroy(meta);
	if (n > 0 && (size_t)n < sizeof(buf))
		natsConnection_Publish(nc, subject, buf, n);
}

struct bypos {
	natsMsg *m;
	uint64_t pos;
	int ok;
	int covered;   /* below this side's floor (cumulative acknowledgements) */
	uint64_t sseq; /* its stream position (cumulative acknowledgements) */
	char pipe[48];
};

static int by_pos(const void *a, const void *b)
{
	const struct bypos *x = a, *y = b;

	if (x->ok != y->ok)
		return x->ok ? 1 : -1; /* the unreadable first: refused at once */
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/*
 * Acknowledges all taken below the first not taken, unless a delivery not
 * seen may be pending (acks.h); sync: and waits for the servers to have it
 * (the end).
 */
static void cumul_ack(struct cumul *c, natsConnection *nc, int sync)
{
	size_t k = cumul_due(c);

	if (k == 0)
		return;
	if (sync) {
		natsMsg *resp = NULL;

		if (natsConnection_RequestString(&resp, nc, c->v[k - 1].reply, "+ACK", 5000) ==
		    NATS_OK)
			natsMsg_Destroy(resp);
	} else {
		natsConnection_PublishString(nc, c->v[k - 1].reply, "+ACK");
	}
	cumul_drop(c, k);
}

/*
 * While a delivery not seen may be pending: asks the servers, at most every
 * 100 ms, how many are pending. As many as this side has seen and not
 * acknowledged (all pending, as it acknowledged none since): those are all.
 */
static void cumul_check(struct cumul *c, jsCtx *js, const char *stream, const char *durable)
{
	jsConsumerInfo *ci = NULL;
	jsOptions jo;
	double now = cli_now();

	if (!c->unknown || now < c->next_check)
		return;
	c->next_check = now + 0.1;
	jsOptions_Init(&jo);
	jo.Wait = 1000;
	if (js_GetConsumerInfo(&ci, js, stream, durable, &jo, NULL) != NATS_OK)
		return;
	cumul_reconcile(c, ci->NumAckPending, ci->Delivered.Consumer);
	jsConsumerInfo_Destroy(ci);
}

/*
 * A message delivered, noted in the order delivered: its stream position in
 * *sseq, and whether it is covered already (cumul_note()).
 */
static int cumul_seen(struct cumul *c, natsMsg *m, uint64_t *sseq)
{
	jsMsgMetaData *meta = NULL;
	int r;

	*sseq = 0;
	if (natsMsg_GetMetaData(&meta, m) != NATS_OK) {
		c->unknown = 1; /* not to be placed: nothing acknowledged over it */
		return -1;
	}
	*sseq = meta->Sequence.Stream;
	r = cumul_note(c, meta->Sequence.Stream, meta->Sequence.Consumer, natsMsg_GetReply(m));
	jsMsgMetaData_Destroy(meta);
	return r;
}

/* A message taken (written, or in already): acknowledged, now or with the next. */
static void took(struct cumul *c, natsConnection *nc, const struct bypos *b)
{
	if (!c->on || b->covered == 1)
		pull_ack(nc, b->m, 0);
	else
		cumul_taken(c, b->sseq);
}

/* The consumer as the servers describe it at the start. */
static void cumul_begin(struct cumul *c, const jsConsumerInfo *ci)
{
	cumul_start(c, ci->Config && ci->Config->AckPolicy == js_AckAll, ci->NumAckPending,
		    ci->Delivered.Consumer, ci->AckFloor.Stream);
}

static int js_to_ring(shmpipe_writer *w, natsConnection *nc, jsCtx *js, const char *stream,
		      const char *durable, const struct url *u, const struct cli_opts *co,
		      const char *what, int records, uint64_t capacity, const char *name,
		      int taken_again)
{
	char path[300], subject[600];
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	natsStatus s;
	struct state *st;
	shmpipe_stats ws;
	uint64_t avg_space = 256, wpos;
	int window = co->window ? co->window : DEFAULT_WINDOW, status = CLI_OK;
	struct cumul cu = {0};

	for (;;) {
		s = js_GetConsumerInfo(&ci, js, stream, durable, NULL, &jerr);
		if (s == NATS_OK || s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr)
			break;
		if (s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS ||
		    s == NATS_CONNECTION_DISCONNECTED) {
			int no = refused(what);

			if (no)
				return no;
			usleep(200 * 1000);
			continue;
		}
		cli_error("%s: consumer %s: %s", what, durable, nats_GetLastError(NULL));
		return CLI_FAILED;
	}
	if (s == NATS_OK) {
		const jsConsumerConfig *cc = ci->Config;
		int bad = 1;

		/* Pulled by hand (pull.h): what a pull subscription would check. */
		if (cc && cc->DeliverSubject && *cc->DeliverSubject)
			cli_error("%s: consumer %s on stream %s is a push consumer; forward pulls",
				  what, durable, stream);
		else if (cc && cc->FilterSubject && *cc->FilterSubject &&
			 strcmp(cc->FilterSubject, u->subject) != 0)
			cli_error("%s: consumer %s on stream %s takes %s, not %s", what, durable,
				  stream, cc->FilterSubject, u->subject);
		else
			bad = 0;
		if (bad) {
			jsConsumerInfo_Destroy(ci);
			return CLI_FAILED;
		}
		cumul_begin(&cu, ci);
		jsConsumerInfo_Destroy(ci);
	} else if (!co->create) {
		cli_error("%s: no consumer %s on stream %s (--create makes it)", what, durable,
			  stream);
		return FWD_NO_STREAM;
	} else {
		/*
		 * Made here, not by the subscription, which would delete it
		 * when it goes: a forwarder started again goes on with it.
		 * A message delivered to a forwarder that died comes again
		 * after AckWait. Acknowledged all up to one: see struct cumul.
		 */
		jsConsumerConfig cc;

		jsConsumerConfig_Init(&cc);
		cc.Durable = durable;
		cc.AckPolicy = js_AckAll;
		cc.AckWait = (int64_t)5 * 1000000000;
		cc.MaxAckPending = window;
		cc.DeliverPolicy = js_DeliverAll;
		cc.FilterSubject = u->subject;
		for (;;) {
			s = js_AddConsumer(&ci, js, stream, &cc, NULL, &jerr);
			if (s == NATS_OK) {
				cumul_begin(&cu, ci);
				jsConsumerInfo_Destroy(ci);
				break;
			}
			if (s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS) {
				int no = refused(what);

				if (no)
					return no;
				usleep(200 * 1000);
				continue;
			}
			cli_error("%s: creating consumer %s: %s", what, durable,
				  nats_GetLastError(NULL));
			return CLI_FAILED;
		}
	}
	s = pull_open(&far_pull, nc, stream, durable);
	if (s != NATS_OK) {
		cli_error("%s: subscribing to an inbox: %s", what, natsStatus_GetText(s));
		return CLI_FAILED;
	}
	/* Once the consumer is known to be right: a forward refused leaves no state. */
	st = state_open(name, path, sizeof(path), !taken_again);
	if (!st) {
		cli_error("%s: cannot keep its state in /dev/shm%s: %s", what, path,
			  strerror(errno ? errno : EPERM));
		return CLI_FAILED;
	}
	/* Of no use without the pipe: removed with it (a signal, a transfer over). */
	cli_remember_companion(path);
	shmpipe_writer_stats(w, &ws);
	wpos = ws.write_index;
	/* Taken again after a death: did the message being written go in? */
	if (taken_again && atomic_load(&st->pending)) {
		uint64_t pnext = atomic_load(&st->pend_next), pend = atomic_load(&st->pend_end);

		if (wpos >= pend)
			atomic_store(&st->next, pnext); /* in whole */
		else if (!records && pnext - atomic_load(&st->next) > pend - wpos)
			atomic_store(&st->next, pnext - (pend - wpos)); /* in part */
		atomic_store(&st->pending, 0);
	}

	uint64_t taken = 0;	  /* messages acknowledged since the last purge */
	uint64_t taken_bytes = 0; /* ... and their bytes */
	double gap_since = 0;	  /* since when only messages after next come */
	int gap_said = 0;
	int start_said = 0; /* the status line says it waits to learn where the pipe starts */
	struct purge pu = {.js = js, .stream = stream, .durable = durable, .own = cu.on};
	struct chore purger = {0};

	chore_start(&purger, purge_taken, &pu);
	report_subject(subject, sizeof(subject), stream, durable);

	/*
	 * Into the ring strictly in the near ring's order, by the position in
	 * each message's id: one that starts before `next` is in already
	 * (given again after a lost acknowledgement, or stored twice by a
	 * server that forgot the id), one that starts after it waits (refused
	 * with a delay) for those before it. So nothing goes in twice or out
	 * of order, whatever the stream holds.
	 */
	for (;;) {
		struct pulled list = {0};
		struct bypos *order = NULL;
		shmpipe_stats now;
		uint64_t room;
		int batch, done = 0, err, wrote = 0;
		/*
		 * The last message written, in order: what the report says.
		 * Not one in already, which a server that forgot its id may
		 * have stored again after messages not yet taken.
		 */
		natsMsg *last = NULL;

		err = wait_room(w, capacity, avg_space);
		if (err < 0) {
			cli_error("%s: %s", what, write_why(err));
			fwd_over = err == -EPIPE;
			status = CLI_FAILED;
			break;
		}
		shmpipe_writer_stats(w, &now);
		room = capacity - (now.write_index - now.read_index);
		batch = (int)(room / avg_space);
		if (batch > window)
			batch = window;
		if (batch < 1)
			batch = 1;
		/* What is there at once, or a wait for the first that comes. */
		s = pull_fetch(&far_pull, &list, batch, FETCH_WAIT_MS);
		if (list.n == 0 && (status = refused(what)) != 0)
			break;
		if (list.n == 0) {
			/* The servers away, a leader being elected: back off, no busy loop. */
			if (s != NATS_TIMEOUT)
				usleep(100 * 1000);
			continue;
		}
		order = calloc((size_t)list.n, sizeof(*order));
		if (!order) {
			pull_free(&list);
			usleep(100 * 1000);
			continue;
		}
		for (int i = 0; i < list.n; i++) {
			order[i].m = list.v[i];
			order[i].ok = msg_pos(list.v[i], order[i].pipe, sizeof(order[i].pipe),
					      &order[i].pos) == 0;
			/* In the order delivered: a gap in the deliveries shows. */
			if (cu.on)
				order[i].covered = cumul_seen(&cu, list.v[i], &order[i].sseq);
		}
		qsort(order, (size_t)list.n, sizeof(*order), by_pos);
		/*
		 * The first message ever says which pipe, and where it starts:
		 * the first the consumer has. A forwarder that died before it
		 * took any may have had the first ones delivered, and they come
		 * again only after AckWait. So (cumulative acknowledgements,
		 * acks.h) only once no delivery this side has not seen may be
		 * pending: the lowest stream position pending is then one this
		 * side has seen, and the first. Until it comes, nothing is
		 * taken. (A consumer made by an older forward: the lowest of the
		 * batch, as then.)
		 */
		if (!atomic_load(&st->known) && (!cu.on || (!cu.unknown && cu.n > 0))) {
			for (int i = 0; i < list.n; i++) {
				if (!order[i].ok || (cu.on && order[i].sseq != cu.v[0].sseq))
					continue;
				snprintf(st->pipe, sizeof(st->pipe), "%s", order[i].pipe);
				atomic_store(&st->next, order[i].pos);
				atomic_store(&st->known, 1);
				break;
			}
		}
		for (int i = 0; i < list.n; i++) {
			natsMsg *m = order[i].m;
			const char *end = NULL, *data = natsMsg_GetData(m);
			uint64_t pos = order[i].pos, next = atomic_load(&st->next), skip, space;
			uint64_t len = (uint64_t)natsMsg_GetDataLength(m), after;
			ssize_t put = 0;

			if (done) {
				pull_nak(nc, m, 100);
				continue;
			}
			if (!order[i].ok) {
				/* No id of ours: not from a forward. */
				cli_error("%s: a message without a forward's id on %s", what,
					  u->subject);
				status = CLI_FAILED;
				done = 3;
				pull_nak(nc, m, 100);
				continue;
			}
			if (!atomic_load(&st->known)) {
				/* Where the pipe starts is not known yet: again, later. */
				pull_nak(nc, m, 100);
				done = 5;
				continue;
			}
			if (strcmp(order[i].pipe, st->pipe) != 0) {
				cli_error("%s: a message of another pipe (%s, not %s) on %s: two "
					  "forwards publish there?",
					  what, order[i].pipe, st->pipe, u->subject);
				status = CLI_FAILED;
				done = 3;
				pull_nak(nc, m, 100);
				continue;
			}
			after = pos + (records ? (len ? SHMPIPE_RECORD_SPACE(len) : 0) : len);
			/* In already: all of it (records: it started before next). */
			if (records ? pos < next : after <= next && !(len == 0 && pos == next)) {
				took(&cu, nc, &order[i]);
				taken++;
				taken_bytes += len;
				continue;
			}
			if (pos > next) {
				/* One before it is still out: in order, or not at all. */
				pull_nak(nc, m, 100);
				done = 4;
				continue;
			}
			natsMsgHeader_Get(m, END_HEADER, &end);
			if (end) {
				if (cu.on)
					cumul_taken(&cu, order[i].sseq); /* acknowledged below */
				else
					pull_ack(nc, m, 1);
				taken++;
				if (strcmp(end, "eof") == 0) {
					done = 1;
				} else {
					cli_error(
					    "%s: the near writer died or aborted: the stream ends "
					    "with an error",
					    what);
					status = CLI_FAILED;
					done = 2;
				}
				continue;
			}
			skip = records ? 0 : next - pos; /* a byte stream: what is in already */
			space = records ? SHMPIPE_RECORD_SPACE(len) : len - skip;
			atomic_store(&st->pend_next, after);
			atomic_store(&st->pend_end, wpos + space);
			atomic_store(&st->pending, 1);
			if (records) {
				put = shmpipe_write(w, data, (size_t)len);
			} else {
				size_t off = (size_t)skip;

				while (off < (size_t)len) {
					put = shmpipe_write(w, data + off, (size_t)len - off);
					if (put < 0)
						break;
					off += (size_t)put;
				}
			}
			if (put < 0) {
				cli_error("%s: %s", what, write_why(put));
				fwd_over = put == -EPIPE;
				status = CLI_FAILED;
				done = 3;
				pull_nak(nc, m, 100);
				continue;
			}
			wpos += space;
			avg_space = (avg_space * 7 + SHMPIPE_RECORD_SPACE(len)) / 8;
			if (avg_space < 16)
				avg_space = 16;
			/* Committed: said so beside the pipe, then to the stream. */
			atomic_store(&st->next, after);
			atomic_store(&st->pending, 0);
			took(&cu, nc, &order[i]);
			taken++;
			taken_bytes += len;
			wrote = 1;
			last = m;
		}
		/* Once per fetch, cumulative: at the end, waited for. */
		if (cu.on) {
			if (done == 1 || done == 2)
				cumul_end(&cu);
			cumul_check(&cu, js, stream, durable);
			cumul_ack(&cu, nc, done == 1 || done == 2);
			atomic_store(&pu.floor, cu.floor);
		}
		if (last)
			report_taken(nc, subject, st->pipe, last);
		free(order);
		pull_free(&list);
		/* What the far side has taken leaves the stream, many windows at a time. */
		if ((taken >= PURGE_WINDOWS * (uint64_t)window || taken_bytes >= PURGE_BYTES) &&
		    !(done == 1 || done == 2)) {
			pthread_mutex_lock(&lk.lock);
			if (purger.started)
				chore_want(&purger);
			pthread_mutex_unlock(&lk.lock);
			if (!purger.started)
				purge_taken(&pu);
			taken = 0;
			taken_bytes = 0;
		}
		/*
		 * Where the pipe starts is not known yet (deliveries to a
		 * forwarder that died come again after AckWait): on the
		 * progress line while it lasts.
		 */
		if (done == 5 && !start_said) {
			/* Else once the reconnection is shown. */
			start_said = link_status("  waiting for the pipe's first message (sent "
						 "to one that died?)");
		} else if (start_said && atomic_load(&st->known)) {
			link_status(NULL);
			start_said = 0;
		}
		/*
		 * Messages after next, but not the one at next, for a long
		 * while: the servers lost it, as nothing else makes such a gap
		 * (each message expects the one before it, and one delivered to
		 * a forwarder that died comes again after AckWait). Said once,
		 * and on the progress line; the wait goes on.
		 */
		if (done == 4 && !wrote) {
			if (gap_since == 0) {
				gap_since = cli_now();
			} else if (!gap_said && cli_now() - gap_since >= GAP_WARN_S) {
				uint64_t at = atomic_load(&st->next);
				char line[96];

				cli_error("%s: for %d s the stream has held messages after near "
					  "position %" PRIu64 " but not the one there (lost by the "
					  "servers?); still waiting for it",
					  what, GAP_WARN_S, at);
				snprintf(line, sizeof(line),
					 "  waiting for the message at near position %" PRIu64, at);
				link_status(line);
				gap_said = 1;
			}
		} else if (wrote) {
			if (gap_said)
				link_status(NULL);
			gap_since = 0;
			gap_said = 0;
		}
		if (done == 1 || done == 2) {
			/* The end: all of it, before the far writer closes. */
			chore_stop(&purger);
			purge_taken(&pu);
			fwd_over = 1;
			if (done == 1)
				shmpipe_writer_close(w);
			else
				shmpipe_writer_abort(w);
			fwd_closed = 1;
			shm_unlink(path); /* the transfer is over */
			break;
		}
		if (done == 3)
			break;
	}
	chore_stop(&purger);
	cumul_free(&cu);
	munmap(st, sizeof(*st));
	/* far_pull: closed once the connection is. */
	return status;
}

/* ---- the command ----------------------------------------------------------- */

int cli_forward(int argc, char **argv)
{
	char name[256], shown[CLI_SHOWN_MAX], what[CLI_SHOWN_MAX + 16], stream[256], durable[300];
	struct cli_opts o;
	struct url u;
	shmpipe_reader *r = NULL;
	shmpipe_writer *w = NULL;
	shmpipe_info info = {0};
	shmpipe_options so;
	natsConnection *nc = NULL;
	natsOptions *nopts = NULL;
	jsCtx *js = NULL;
	jsOptions jo;
	struct progress pg;
	int to_js, status, err, records, taken_again = 0;
	ssize_t n;

	n = cli_parse_opts(argc, argv,
			   "stream durable create replicas window chunk size records mode open "
			   "timeout quiet progress creds tls tls-ca",
			   &o);
	if (n < 0)
		return n == CLI_HELP_SHOWN ? CLI_OK : CLI_USAGE;
	if (n != 2)
		return cli_usage("forward", "want a pipe NAME and a nats://HOST:PORT/SUBJECT");
	if (is_url(argv[1]) == is_url(argv[2]))
		return cli_usage("forward", "want one pipe NAME and one nats://HOST:PORT/SUBJECT, "
					    "in the direction of the data");
	to_js = is_url(argv[2]);
	if (parse_url(argv[to_js ? 2 : 1], &u) < 0)
		return cli_usage("forward", "bad address '%s' (want nats://HOST:PORT/SUBJECT)",
				 argv[to_js ? 2 : 1]);
	if (cli_name(argv[to_js ? 1 : 2], name, sizeof(name)) < 0)
		return cli_bad_name("forward", argv[to_js ? 1 : 2]);
	cli_shown(shown, sizeof(shown), name);
	if (to_js && (o.size || o.records || o.mode || o.open))
		return cli_usage("forward", "--size, --records, --mode and --open are for the "
					    "JetStream-to-ring direction");
	if (!to_js && o.open && (o.size || o.records || o.mode))
		return cli_usage("forward", "--open takes the pipe as it was created: no --size, "
					    "--records or --mode");
	if (o.records && o.size && o.size < RECORDS_MIN_SIZE)
		return cli_usage("forward", "--records needs a ring of at least %d bytes (--size)",
				 RECORDS_MIN_SIZE);
	if (o.stream)
		snprintf(stream, sizeof(stream), "%s", o.stream);
	else
		default_stream(stream, sizeof(stream), u.subject);
	/* The far side's consumer, whose backlog the near side watches. */
	if (o.durable)
		snprintf(durable, sizeof(durable), "%s", o.durable);
	else
		snprintf(durable, sizeof(durable), "%.200s_FWD", stream);
	if (cli_check_kind("forward", name) != 0)
		return CLI_USAGE;
	if (option_files_usable(&o) != 0)
		return CLI_USAGE;
	snprintf(what, sizeof(what), "forward %s", shown);

	/* The pipe first: a missing or taken pipe is bad input, before any network. */
	if (to_js || o.open) {
		const shmpipe_end_info *end = to_js ? &info.reader : &info.writer;

		err = cli_inspect(name, &info);
		/* A forwarder's end left by a death is taken again (SHMPIPE_REOPEN). */
		taken_again = err == 0 && (info.flags & SHMPIPE_REOPEN) &&
			      end->state == SHMPIPE_END_OPEN && !end->alive;
		if (err == 0 && info.readers <= 1 && end->state != SHMPIPE_END_ABSENT &&
		    !taken_again)
			return cli_usage("forward", "%s: the %s end is taken", shown,
					 to_js ? "read" : "write");
	}
	if (to_js) {
		if (err == 0 && (info.flags & SHMPIPE_SHARE))
			return cli_usage("forward",
					 "%s: a shared pipe deals its records out; "
					 "forward reads the whole stream",
					 shown);
	}
	cli_guard_signals();
	cli_block_signals(1);
	if (to_js) {
		err = shmpipe_reader_open(&r, name);
	} else if (o.open) {
		err = shmpipe_writer_open(&w, name);
	} else {
		/* Its end may be taken again by a forwarder started after a death. */
		cli_options_for_create(&o, &so);
		so.flags |= SHMPIPE_REOPEN;
		err = shmpipe_writer_create(&w, name, &so);
	}
	if (err < 0) {
		cli_block_signals(0);
		if (err == -ENOENT || err == -EEXIST || err == -EBUSY || err == -EACCES ||
		    err == -EPROTO || err == -EINVAL)
			return cli_usage("forward", "%s: %s", shown, shmpipe_strerror(err));
		cli_error("%s: %s", what, shmpipe_strerror(err));
		return CLI_FAILED;
	}
	cli_remember_name(name, to_js ? shmpipe_reader_fd(r) : shmpipe_writer_fd(w));
	cli_block_signals(0);
	if (w)
		shmpipe_writer_set_timeout(w, o.timeout_ms);
	{
		shmpipe_options got;

		if (to_js)
			shmpipe_reader_options(r, &got);
		else
			shmpipe_writer_options(w, &got);
		records = (got.flags & SHMPIPE_RECORDS) != 0;
		so = got;
	}

	status = connect_nats(&u, &o, what, &nc, &nopts);
	if (status == 0) {
		jsOptions_Init(&jo);
		jo.Wait = 5000;
		jo.PublishAsync.MaxPending = 1 << 20; /* our window is the bound */
		jo.PublishAsync.AckHandler = on_ack;
		jo.PublishAsync.AckHandlerClosure = NULL;
		if (natsConnection_JetStream(&js, nc, &jo) != NATS_OK) {
			cli_error("%s: %s", what, nats_GetLastError(NULL));
			status = CLI_FAILED;
		}
	}
	if (status == 0)
		status = ensure_stream(js, stream, &u, &o, what);
	if (status == 0) {
		progress_start(&pg, o.quiet, o.progress, w, r, to_js);
		progress_set_status(&pg, progress_status, NULL);
		if (to_js)
			status = ring_to_js(r, nc, js, stream, durable, &u, &o, what, records,
					    (size_t)natsConnection_GetMaxPayload(nc));
		else
			status = js_to_ring(w, nc, js, stream, durable, &u, &o, what, records,
					    so.capacity, name, taken_again);
		progress_stop(&pg);
	}
	/* A pipe this forward made, and nothing went into it: nothing to leave. */
	if (!fwd_over && !to_js && !o.open && status != CLI_OK) {
		shmpipe_stats ws;

		if (shmpipe_writer_stats(w, &ws) == 0 && ws.write_index == 0)
			fwd_over = 1;
	}
	if (!fwd_over && (so.flags & SHMPIPE_REOPEN)) {
		/*
		 * Not over, on a pipe whose end may be taken again: let go of
		 * the end as a death would, and leave the name (and the far
		 * side's state) to a forward started again.
		 */
		if (to_js)
			shmpipe_reader_drop(r);
		else
			shmpipe_writer_drop(w);
		cli_error("%s: the pipe is left for a forward started again (%s%s)", what,
			  to_js ? "" : "--open: ", shown);
	} else if (to_js) {
		/* Done either way, as read is: the name has no more use. */
		cli_forget_name();
		shmpipe_reader_close(r);
	} else if (status != CLI_OK) {
		/* Not closed: the reader must not take this for a whole stream. */
		cli_forget_name();
		if (!fwd_closed)
			shmpipe_writer_drop(w);
	}
	/* Closed first: its reader is joined before a subscription goes (pull.h). */
	if (nc)
		natsConnection_Close(nc);
	natsSubscription_Destroy(near_reports);
	pull_close(&far_pull);
	if (js)
		jsCtx_Destroy(js);
	if (nc)
		natsConnection_Destroy(nc);
	natsOptions_Destroy(nopts);
	nats_Close();
	return status;
}

#endif /* SHMPIPE_HAVE_NATS */
