/* SPDX-License-Identifier: MIT */
/*
 * jspair - JetStream throughput without shmpipe: the plain libnats pair that
 * `shmpipe forward` (ring -> JetStream -> ring) is measured against, and the
 * two ring ends of that bridge. bench/nats.sh drives all of its modes.
 *
 *   jspair --url URL --stream S --subject SUBJ --count N --size B --window W
 *          [--create] [--durable D] [--msg-id] [--work-queue] [--hold H]
 *   jspair --url URL --stream S --delete
 *   jspair --gen NAME --count N --size B [--ring R]
 *   jspair --drain NAME --count N --size B [--window W]
 *
 * The pair: one process, two threads, each with its own connection, as the
 * bridge's two forwards have. The publisher sends N messages of B bytes to
 * SUBJ with js_PublishMsgAsync, at most W of them unacknowledged (the
 * context's PublishAsync.MaxPending). The consumer fetches from the durable
 * pull consumer D (default S_PAIR) in batches of at most W and acks each
 * message (AckExplicit, and the consumer's MaxAckPending is W too). Every
 * payload starts with its sequence number (8 bytes, host order): the
 * consumer checks that each message has B bytes and the next number, so
 * that none is missing, out of order or there twice. --create deletes the
 * stream S if it exists and creates it afresh (file storage, the one
 * subject SUBJ) with its consumer D, so that every run starts empty;
 * without it both must exist and the stream must hold nothing yet. --msg-id
 * gives each message a Nats-Msg-Id header, for which the server checks its
 * duplicate window (what a publisher that may resend after a reconnection
 * pays). --work-queue makes the stream a work queue, as `forward --create`
 * does, so that the server deletes each message once it is acknowledged.
 * --hold H holds the publisher back, as the bridge's near side is, while H
 * messages it published are not yet taken by the consumer (0, the default:
 * no bound; the bridge's is four windows). The pair prints one line
 * (bench.h):
 *
 *   jetstream  plain  size=B window=W  VALUE  Krecords/s  X MB/s
 *
 * N records over the time from the first publish until the consumer has
 * the last message. The note gives the payload's rate in MB/s (10^6 B) and
 * the longest wait between two arrivals (of a fetched batch, of a record):
 * a stall, such as a pull request that sits until it expires, shows there;
 * and when the publisher had its last acknowledgement, in percent of that
 * time (without --hold the publisher runs ahead, and the stream holds what
 * the consumer has yet to take).
 * --delete deletes the stream S (no error if there is none) and exits.
 *
 * --gen and --drain are the bridge's two ends. --gen creates the record pipe
 * NAME (a ring of R, default 8M), waits until a reader (the forward)
 * attaches, writes N records of B bytes numbered as above and closes the
 * pipe; record 0 also carries, after its number, the CLOCK_MONOTONIC time
 * at which it was written. --drain opens the pipe NAME that the far forward
 * creates (waiting up to a minute for it to appear), reads and checks N
 * records and then the end of the stream, removes the name as `shmpipe read`
 * does, and prints "jetstream bridge size=B window=W ..." as above, timed
 * from record 0's write until it has the last record: the monotonic clock
 * is the host's, so the two processes share it. B is at least 16 there (the
 * number and the time), at least 8 for the pair.
 *
 * Exit status: 0 done and every message checked, 1 failure, 2 bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <unistd.h>

#include <nats/nats.h>

#include "bench.h"
#include "shmpipe.h"

/* How long any one step may stall before the run counts as broken. */
#define STALL_MS 60000

struct cfg {
	const char *url, *stream, *subject, *durable;
	uint64_t count;
	size_t size;
	int window;
	uint64_t hold; /* --hold: at most this many published and not yet taken (0: no bound) */
	bool create, msg_id, work_queue;
};

static void nats_die(const char *what, natsStatus s, jsErrCode jerr)
{
	const char *detail = nats_GetLastError(NULL);

	fprintf(stderr, "jspair: %s: %s", what, natsStatus_GetText(s));
	if (jerr)
		fprintf(stderr, " (JetStream error %d)", (int)jerr);
	if (detail && *detail)
		fprintf(stderr, ": %s", detail);
	fputc('\n', stderr);
	exit(1);
}

static void connect_js(const struct cfg *c, natsConnection **nc, jsCtx **js, jsOptions *jo)
{
	natsStatus s = natsConnection_ConnectTo(nc, c->url);

	if (s != NATS_OK)
		nats_die(c->url, s, 0);
	s = natsConnection_JetStream(js, *nc, jo);
	if (s != NATS_OK)
		nats_die("JetStream context", s, 0);
}

/* Deletes the stream; a stream that is not there is no error. */
static void delete_stream(jsCtx *js, const char *stream)
{
	jsErrCode jerr = 0;
	natsStatus s = js_DeleteStream(js, stream, NULL, &jerr);

	if (s != NATS_OK && s != NATS_NOT_FOUND)
		nats_die("delete stream", s, jerr);
}

/* --create: the stream S afresh, empty, and its durable pull consumer D. */
static void create_stream(const struct cfg *c)
{
	const char *subjects[1] = {c->subject};
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsStreamConfig sc;
	jsConsumerConfig cc;
	jsErrCode jerr = 0;
	natsStatus s;

	connect_js(c, &nc, &js, NULL);
	delete_stream(js, c->stream);
	jsStreamConfig_Init(&sc);
	sc.Name = c->stream;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	/* As shmpipe forward --create makes it: a message goes once taken. */
	if (c->work_queue)
		sc.Retention = js_WorkQueuePolicy;
	s = js_AddStream(NULL, js, &sc, NULL, &jerr);
	if (s != NATS_OK)
		nats_die("add stream", s, jerr);
	jsConsumerConfig_Init(&cc);
	cc.Durable = c->durable;
	cc.AckPolicy = js_AckExplicit;
	cc.DeliverPolicy = js_DeliverAll;
	cc.MaxAckPending = c->window;
	s = js_AddConsumer(NULL, js, c->stream, &cc, NULL, &jerr);
	if (s != NATS_OK)
		nats_die("add consumer", s, jerr);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
}

/* ---- the consumer thread ------------------------------------------------ */

struct consumer {
	const struct cfg *cfg;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool ready;	    /* subscribed: the publisher may start the clock */
	double t_last, gap; /* the last message's arrival; the longest wait for one */
	uint64_t got, bytes;
	atomic_uint_fast64_t taken; /* got, after each batch: what --hold counts */
};

static void *consume(void *arg)
{
	struct consumer *cs = arg;
	const struct cfg *c = cs->cfg;
	natsConnection *nc = NULL;
	natsSubscription *sub = NULL;
	jsCtx *js = NULL;
	jsSubOptions so;
	jsErrCode jerr = 0;
	natsStatus s;
	int idle_ms = 0;
	double prev = 0;

	connect_js(c, &nc, &js, NULL);
	/* Bound to the stream and the consumer by name: no lookup by subject. */
	jsSubOptions_Init(&so);
	so.Stream = c->stream;
	so.Consumer = c->durable;
	s = js_PullSubscribe(&sub, js, c->subject, c->durable, NULL, &so, &jerr);
	if (s != NATS_OK)
		nats_die("pull subscribe", s, jerr);
	pthread_mutex_lock(&cs->mu);
	cs->ready = true;
	pthread_cond_signal(&cs->cv);
	pthread_mutex_unlock(&cs->mu);

	while (cs->got < c->count) {
		uint64_t left = c->count - cs->got;
		int batch = left < (uint64_t)c->window ? (int)left : c->window;
		natsMsgList list;

		/*
		 * Never more than is left: a waiting pull request returns only
		 * once its batch is full or it expires, so asking for more than
		 * will ever come would add the whole timeout to the last batch.
		 */
		s = natsSubscription_Fetch(&list, sub, batch, 1000, &jerr);
		if (s == NATS_TIMEOUT) {
			idle_ms += 1000;
			if (idle_ms >= STALL_MS)
				BENCH_DIE("jspair: nothing came for %d s, after %llu of %llu",
					  idle_ms / 1000, (unsigned long long)cs->got,
					  (unsigned long long)c->count);
			continue;
		}
		if (s != NATS_OK)
			nats_die("fetch", s, jerr);
		idle_ms = 0;
		{
			double now = bench_now();

			if (prev && now - prev > cs->gap)
				cs->gap = now - prev;
			prev = now;
		}
		for (int i = 0; i < list.Count; i++) {
			natsMsg *m = list.Msgs[i];
			int len = natsMsg_GetDataLength(m);
			uint64_t seq;

			if (len != (int)c->size)
				BENCH_DIE("jspair: message %llu has %d bytes, not %zu",
					  (unsigned long long)cs->got, len, c->size);
			memcpy(&seq, natsMsg_GetData(m), sizeof(seq));
			if (seq != cs->got)
				BENCH_DIE("jspair: message %llu carries number %llu",
					  (unsigned long long)cs->got, (unsigned long long)seq);
			cs->got++;
			cs->bytes += (uint64_t)len;
			s = natsMsg_Ack(m, NULL);
			if (s != NATS_OK)
				nats_die("ack", s, 0);
		}
		natsMsgList_Destroy(&list);
		atomic_store(&cs->taken, cs->got);
		if (c->hold) {
			pthread_mutex_lock(&cs->mu);
			pthread_cond_broadcast(&cs->cv);
			pthread_mutex_unlock(&cs->mu);
		}
	}
	cs->t_last = bench_now();
	/* The last acks out before the connection goes (not timed). */
	natsConnection_FlushTimeout(nc, 5000);
	natsSubscription_Destroy(sub);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return NULL;
}

/* ---- the publisher -------------------------------------------------------- */

struct acks {
	atomic_uint_least64_t ok;
	atomic_flag claimed; /* taken by the first failure, which then fills why */
	atomic_bool failed;  /* set once why is filled in */
	char why[256];
};

/*
 * Called on the connection's delivery thread for each publish acknowledgment
 * (or failure). Unlike an ErrHandler's, an AckHandler's msg is ours: the
 * library let go of it, and it is destroyed here.
 */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct acks *a = closure;

	(void)js;
	natsMsg_Destroy(msg);
	if (pae == NULL && !pa->Duplicate) {
		atomic_fetch_add_explicit(&a->ok, 1, memory_order_relaxed);
		return;
	}
	if (atomic_flag_test_and_set(&a->claimed))
		return;
	if (pae)
		snprintf(a->why, sizeof(a->why), "%s (JetStream error %d): %s",
			 natsStatus_GetText(pae->Err), (int)pae->ErrCode,
			 pae->ErrText ? pae->ErrText : "-");
	else
		snprintf(a->why, sizeof(a->why), "stream sequence %llu acked as a duplicate",
			 (unsigned long long)pa->Sequence);
	/* Pairs with the publisher's acquire load: why is complete before it is read. */
	atomic_store_explicit(&a->failed, true, memory_order_release);
}

static int run_pair(const struct cfg *c)
{
	struct consumer cs = {.cfg = c};
	struct acks acks = {.claimed = ATOMIC_FLAG_INIT};
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsOptions jo;
	jsPubOptions po;
	pthread_t t;
	uint8_t *buf;
	char id[32];
	double t0, t_pub, dt;
	natsStatus s;

	if (c->create)
		create_stream(c);
	buf = malloc(c->size);
	if (!buf)
		BENCH_DIE("jspair: out of memory");
	for (size_t i = 0; i < c->size; i++)
		buf[i] = (uint8_t)(i * 7);

	atomic_init(&cs.taken, 0);
	pthread_mutex_init(&cs.mu, NULL);
	pthread_cond_init(&cs.cv, NULL);
	if (pthread_create(&t, NULL, consume, &cs) != 0)
		BENCH_DIE("jspair: pthread_create failed");

	/*
	 * MaxPending counts a message from its publish to its ack, the new one
	 * included: at most W are in flight. A publish that would exceed it
	 * waits up to StallWait and then fails with NATS_TIMEOUT, not having
	 * taken the message, so it is simply tried again below.
	 */
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = c->window;
	jo.PublishAsync.StallWait = 1000;
	jo.PublishAsync.AckHandler = on_ack;
	jo.PublishAsync.AckHandlerClosure = &acks;
	connect_js(c, &nc, &js, &jo);
	jsPubOptions_Init(&po);
	po.MsgId = id;

	pthread_mutex_lock(&cs.mu);
	while (!cs.ready)
		pthread_cond_wait(&cs.cv, &cs.mu);
	pthread_mutex_unlock(&cs.mu);

	t0 = bench_now();
	for (uint64_t i = 0; i < c->count; i++) {
		natsMsg *m = NULL;
		int stalled_ms = 0;

		/* --hold: as the bridge's near side, not too far ahead of the consumer. */
		while (c->hold && i - atomic_load(&cs.taken) >= c->hold) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_mutex_lock(&cs.mu);
			if (i - atomic_load(&cs.taken) >= c->hold)
				pthread_cond_timedwait(&cs.cv, &cs.mu, &ts);
			pthread_mutex_unlock(&cs.mu);
		}
		memcpy(buf, &i, sizeof(i));
		s = natsMsg_Create(&m, c->subject, NULL, (const char *)buf, (int)c->size);
		if (s != NATS_OK)
			nats_die("message", s, 0);
		/* The option sets the header: the same as natsMsgHeader_Set("Nats-Msg-Id"). */
		snprintf(id, sizeof(id), "%llu", (unsigned long long)i);
		while ((s = js_PublishMsgAsync(js, &m, c->msg_id ? &po : NULL)) == NATS_TIMEOUT &&
		       stalled_ms < STALL_MS)
			stalled_ms += 1000;
		/* NULL once the library took it; otherwise ours to free. */
		natsMsg_Destroy(m);
		if (s != NATS_OK)
			nats_die("publish", s, 0);
		if (atomic_load_explicit(&acks.failed, memory_order_acquire))
			BENCH_DIE("jspair: publish %llu: %s", (unsigned long long)i, acks.why);
	}
	jsPubOptions_Init(&po);
	po.MaxWait = STALL_MS;
	s = js_PublishAsyncComplete(js, &po);
	if (s != NATS_OK)
		nats_die("waiting for the last acks", s, 0);
	t_pub = bench_now();
	if (atomic_load_explicit(&acks.failed, memory_order_acquire))
		BENCH_DIE("jspair: publish: %s", acks.why);
	pthread_join(t, NULL);
	if (atomic_load(&acks.ok) != c->count)
		BENCH_DIE("jspair: %llu of %llu publishes acknowledged",
			  (unsigned long long)atomic_load(&acks.ok), (unsigned long long)c->count);
	dt = cs.t_last - t0;
	{
		char note[96];

		snprintf(note, sizeof(note), "%.1f MB/s, max gap %.1f ms, all published at %.0f%%",
			 (double)cs.bytes / dt / 1e6, cs.gap * 1e3, 100 * (t_pub - t0) / dt);
		bench_emit("jetstream", "plain", (double)c->count / dt / 1e3, "Krecords/s",
			   "size=%zu window=%d", c->size, c->window);
		bench_note(note);
	}
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	free(buf);
	return 0;
}

/* ---- the bridge's ends ---------------------------------------------------- */

static void shm_die(const char *what, const char *name, long err)
{
	fprintf(stderr, "jspair: %s %s: %s\n", what, name, shmpipe_strerror((int)err));
	exit(1);
}

static int run_gen(const char *name, uint64_t count, size_t size, uint64_t ring)
{
	shmpipe_options o = {.capacity = ring, .flags = SHMPIPE_RECORDS};
	shmpipe_writer *w = NULL;
	uint8_t *buf = malloc(size);
	uint64_t fill;
	double t0;
	int err;

	if (!buf)
		BENCH_DIE("jspair: out of memory");
	for (size_t i = 0; i < size; i++)
		buf[i] = (uint8_t)(i * 7);
	err = shmpipe_writer_create(&w, name, &o);
	if (err < 0)
		shm_die("create", name, err);
	shmpipe_writer_set_timeout(w, STALL_MS);
	/* The clock starts when the forward is there, not while it starts up. */
	err = shmpipe_writer_wait_readers(w, 1);
	if (err < 0) {
		shmpipe_unlink(name);
		shm_die("waiting for the reader of", name, err);
	}
	t0 = bench_now();
	memcpy(&fill, buf + 8, sizeof(fill));
	memcpy(buf + 8, &t0, sizeof(t0));
	for (uint64_t i = 0; i < count; i++) {
		ssize_t n;

		memcpy(buf, &i, sizeof(i));
		n = shmpipe_write(w, buf, size);
		if (n != (ssize_t)size) {
			/* The forward then ends its stream with the error marker. */
			shmpipe_writer_abort(w);
			shm_die("write to", name, n < 0 ? n : -EIO);
		}
		if (i == 0)
			memcpy(buf + 8, &fill, sizeof(fill));
	}
	shmpipe_writer_close(w);
	free(buf);
	return 0;
}

static int run_drain(const char *name, uint64_t count, size_t size, int window)
{
	size_t cap = size < 65536 ? 65536 : size;
	uint8_t *buf = malloc(cap);
	shmpipe_reader *r = NULL;
	uint64_t bytes = 0;
	double t0 = 0, t1, now, prev = 0, gap = 0, give_up = bench_now() + STALL_MS / 1000;
	ssize_t n;
	int err;

	if (!buf)
		BENCH_DIE("jspair: out of memory");
	/* The far forward creates the pipe once it has its stream and consumer. */
	while ((err = shmpipe_reader_open(&r, name)) == -ENOENT && bench_now() < give_up)
		usleep(10000);
	if (err < 0)
		shm_die("open", name, err);
	shmpipe_reader_set_timeout(r, STALL_MS);
	for (uint64_t i = 0; i < count; i++) {
		uint64_t seq;

		n = shmpipe_read(r, buf, cap);
		if (n == 0)
			BENCH_DIE("jspair: %s ended after %llu of %llu records", name,
				  (unsigned long long)i, (unsigned long long)count);
		if (n < 0)
			shm_die("read from", name, n);
		if ((size_t)n != size)
			BENCH_DIE("jspair: record %llu has %zd bytes, not %zu",
				  (unsigned long long)i, n, size);
		memcpy(&seq, buf, sizeof(seq));
		if (seq != i)
			BENCH_DIE("jspair: record %llu carries number %llu", (unsigned long long)i,
				  (unsigned long long)seq);
		if (i == 0)
			memcpy(&t0, buf + 8, sizeof(t0));
		bytes += (uint64_t)n;
		now = bench_now();
		if (i && now - prev > gap)
			gap = now - prev;
		prev = now;
	}
	t1 = bench_now();
	n = shmpipe_read(r, buf, cap);
	if (n > 0)
		BENCH_DIE("jspair: %s has more than %llu records", name, (unsigned long long)count);
	if (n < 0)
		shm_die("the end of", name, n);
	shmpipe_reader_close(r);
	/* The reader removes the name when it is done, as `shmpipe read` does. */
	shmpipe_unlink(name);
	{
		char note[64];

		snprintf(note, sizeof(note), "%.1f MB/s, max gap %.1f ms",
			 (double)bytes / (t1 - t0) / 1e6, gap * 1e3);
		bench_emit("jetstream", "bridge", (double)count / (t1 - t0) / 1e3, "Krecords/s",
			   "size=%zu window=%d", size, window);
		bench_note(note);
	}
	free(buf);
	return 0;
}

/* ---- options ---------------------------------------------------------------- */

static int usage(void)
{
	fprintf(stderr,
		"usage: jspair --url URL --stream S --subject SUBJ --count N --size B --window W\n"
		"              [--create] [--durable D] [--msg-id] [--work-queue]\n"
		"       jspair --url URL --stream S --delete\n"
		"       jspair --gen NAME --count N --size B [--ring R]\n"
		"       jspair --drain NAME --count N --size B [--window W]\n");
	return 2;
}

/* "name" and "/name" both name /dev/shm/name, as the shmpipe CLI takes them. */
static const char *shm_name(const char *arg, char *buf, size_t len)
{
	if (arg[0] == '/')
		return arg;
	snprintf(buf, len, "/%s", arg);
	return buf;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"url", required_argument, NULL, 'u'},     {"stream", required_argument, NULL, 's'},
	    {"subject", required_argument, NULL, 'j'}, {"count", required_argument, NULL, 'n'},
	    {"size", required_argument, NULL, 'b'},    {"window", required_argument, NULL, 'w'},
	    {"create", no_argument, NULL, 'c'},	       {"durable", required_argument, NULL, 'd'},
	    {"msg-id", no_argument, NULL, 'm'},	       {"delete", no_argument, NULL, 'x'},
	    {"gen", required_argument, NULL, 'g'},     {"drain", required_argument, NULL, 'r'},
	    {"ring", required_argument, NULL, 'R'},    {"work-queue", no_argument, NULL, 'q'},
	    {"hold", required_argument, NULL, 'H'},    {NULL, 0, NULL, 0},
	};
	struct cfg c = {.count = 100000, .size = 64, .window = 256};
	const char *gen = NULL, *drain = NULL;
	uint64_t ring = 8 << 20;
	bool del = false;
	char durable[256], name[256];
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'u':
			c.url = optarg;
			break;
		case 's':
			c.stream = optarg;
			break;
		case 'j':
			c.subject = optarg;
			break;
		case 'n':
			c.count = bench_size(argv[0], optarg);
			break;
		case 'b':
			c.size = (size_t)bench_size(argv[0], optarg);
			break;
		case 'w':
			c.window = (int)bench_size(argv[0], optarg);
			break;
		case 'c':
			c.create = true;
			break;
		case 'd':
			c.durable = optarg;
			break;
		case 'q':
			c.work_queue = true;
			break;
		case 'H':
			c.hold = bench_size(argv[0], optarg);
			break;
		case 'm':
			c.msg_id = true;
			break;
		case 'x':
			del = true;
			break;
		case 'g':
			gen = optarg;
			break;
		case 'r':
			drain = optarg;
			break;
		case 'R':
			ring = bench_size(argv[0], optarg);
			break;
		default:
			return usage();
		}
	}
	if (optind != argc || c.window < 1)
		return usage();
	if (gen || drain) {
		if ((gen && drain) || c.size < 16)
			return usage();
		if (gen)
			return run_gen(shm_name(gen, name, sizeof(name)), c.count, c.size, ring);
		return run_drain(shm_name(drain, name, sizeof(name)), c.count, c.size, c.window);
	}
	if (!c.url || !c.stream || (!del && (!c.subject || c.size < 8)))
		return usage();
	if (!c.durable) {
		snprintf(durable, sizeof(durable), "%s_PAIR", c.stream);
		c.durable = durable;
	}
	if (del) {
		natsConnection *nc = NULL;
		jsCtx *js = NULL;

		connect_js(&c, &nc, &js, NULL);
		delete_stream(js, c.stream);
		jsCtx_Destroy(js);
		natsConnection_Destroy(nc);
		rc = 0;
	} else {
		rc = run_pair(&c);
	}
	/* Waits for the library's threads, so that no leak checker sees them. */
	nats_CloseAndWait(5000);
	return rc;
}
