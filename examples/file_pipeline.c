/* SPDX-License-Identifier: MIT */
/*
 * file_pipeline.c - the seed's
 *
 *	fs.createReadStream(f).pipe(transform).pipe(sharedMemorySink)
 *
 * in C, with a worker consuming in parallel.
 *
 * The main thread is the stream: it reads a file in chunks with read(2)
 * straight into space reserved in a shmpipe's ring, transforms each chunk
 * there (ASCII to upper case, like a Transform stream) and commits it. The
 * sink thread looks at the bytes in place (peek) and releases them
 * (consume), so each byte is copied once in all: by read(2), from the page
 * cache into the ring. The pipe's ring is bounded (--capacity, 1 MiB
 * by default), so when the sink falls behind, shmpipe_reserve sleeps and the
 * reading of the file pauses: backpressure, as in the seed, with no queue
 * that can grow. A sink thread peeks at the pipe, counts bytes and lines and
 * hashes what it sees (64-bit FNV-1a); at end of stream it prints them and
 * the pipe's counters.
 *
 * The example checks itself: afterwards it reads the file again in one
 * thread, transforms and hashes it the same way, and prints "verified: OK"
 * only if both agree. Without a FILE it makes its own input, 64 MiB of
 * deterministic pseudo-random text (--size) in a temporary file, so the
 * program alone is a complete demo. It exits 0 on success, 1 on any error
 * or mismatch, 2 on bad usage.
 *
 * Build: cc -O2 -o file_pipeline file_pipeline.c $(pkg-config --cflags --libs shmpipe) -lpthread
 * Usage: file_pipeline [--capacity BYTES] [--chunk BYTES] [--size BYTES] [FILE]
 *        (BYTES may end in K, M or G, for KiB, MiB, GiB)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <shmpipe.h>

#include "../common/units.h"

#define MiB (1024.0 * 1024.0)

/* What both the sink and the verification pass compute over the bytes. */
struct digest {
	uint64_t bytes;
	uint64_t lines;
	uint64_t fnv; /* 64-bit FNV-1a of every byte, in order */
};

static void digest_init(struct digest *d)
{
	d->bytes = 0;
	d->lines = 0;
	d->fnv = 0xcbf29ce484222325ULL; /* the FNV-1a offset basis */
}

static void digest_update(struct digest *d, const unsigned char *p, size_t n)
{
	uint64_t h = d->fnv;

	for (size_t i = 0; i < n; i++) {
		h = (h ^ p[i]) * 0x100000001b3ULL; /* the FNV-1a prime */
		d->lines += p[i] == '\n';
	}
	d->fnv = h;
	d->bytes += n;
}

/*
 * The Transform stream: ASCII lower case to upper case, in place. Written
 * without a branch so that the compiler can vectorize it; random text would
 * mispredict an if on every space.
 */
static void transform(char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		p[i] = (char)(c ^ ((unsigned char)(c - 'a') < 26 ? 0x20 : 0));
	}
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* read(2) that retries when a signal interrupts it. */
static ssize_t read_retry(int fd, void *buf, size_t len)
{
	ssize_t n;

	do
		n = read(fd, buf, len);
	while (n < 0 && errno == EINTR);
	return n;
}

/*
 * The sink: the seed's worker. It owns the read end and closes it on every
 * path; if it stops early, that close is what makes the producer's next
 * write fail with -EPIPE rather than sleep forever on a full ring.
 */
struct sink {
	shmpipe_reader *reader;
	size_t bufsize;
	struct digest d;
	int err;
};

static void *sink_main(void *arg)
{
	struct sink *s = arg;
	shmpipe_stats st;
	const void *p;
	ssize_t n;
	int ret;

	/*
	 * Zero-copy: peek shows the bytes where they lie in the ring, the
	 * digest reads them there, and consume hands the space back.
	 */
	digest_init(&s->d);
	while ((n = shmpipe_peek(s->reader, &p)) > 0) {
		if ((size_t)n > s->bufsize)
			n = (ssize_t)s->bufsize;
		digest_update(&s->d, p, (size_t)n);
		ret = shmpipe_consume(s->reader, (size_t)n);
		if (ret < 0) {
			n = ret;
			break;
		}
	}

	/* Peek returns 0 only after the writer closed and we drained the ring. */
	if (n == 0)
		n = shmpipe_reader_stats(s->reader, &st);
	if (n < 0) {
		fprintf(stderr, "sink: %s\n", shmpipe_strerror((int)n));
		s->err = (int)n;
	} else {
		printf("sink:     end of stream: %" PRIu64 " bytes, %" PRIu64
		       " lines, FNV-1a 0x%016" PRIx64 "\n",
		       s->d.bytes, s->d.lines, s->d.fnv);
		printf("counters: capacity=%" PRIu64 " write_index=%" PRIu64 " read_index=%" PRIu64
		       " produced=%" PRIu64 " consumed=%" PRIu64 " producer_waits=%" PRIu64
		       " consumer_waits=%" PRIu64 "\n",
		       st.capacity, st.write_index, st.read_index, st.produced, st.consumed,
		       st.producer_waits, st.consumer_waits);
	}
	ret = shmpipe_reader_close(s->reader);
	if (ret < 0 && s->err == 0) {
		fprintf(stderr, "sink: shmpipe_reader_close: %s\n", shmpipe_strerror(ret));
		s->err = ret;
	}
	return NULL;
}

/* xorshift64: a tiny, fixed-seed random source, so every run hashes the same. */
static uint64_t next_random(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/*
 * Deterministic pseudo-random text: lines of 1 to 16 lower-case words of 1
 * to 10 letters, exactly size bytes (so the last line may lack its newline).
 */
static int generate_input(int fd, uint64_t size, char *buf, size_t bufsize)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	unsigned letters = 1 + (unsigned)(next_random(&x) % 10); /* left in this word */
	unsigned words = (unsigned)(next_random(&x) % 16);	 /* left after it in this line */

	while (size > 0) {
		size_t n = size < bufsize ? (size_t)size : bufsize;

		for (size_t i = 0; i < n; i++) {
			uint64_t rnd = next_random(&x);

			if (letters > 0) {
				buf[i] = (char)('a' + rnd % 26);
				letters--;
				continue;
			}
			/* The word is done: a space and another word, or a new line. */
			buf[i] = words > 0 ? ' ' : '\n';
			if (words > 0)
				words--;
			else
				words = (unsigned)((rnd >> 8) % 16);
			letters = 1 + (unsigned)((rnd >> 16) % 10);
		}
		for (size_t off = 0; off < n;) {
			ssize_t m = write(fd, buf + off, n - off);

			if (m < 0 && errno == EINTR)
				continue;
			if (m < 0)
				return -errno;
			off += (size_t)m;
		}
		size -= n;
	}
	return 0;
}

/* A byte count such as 65536, 64K, 1M or 2G; 0 if it is not one. */
static uint64_t parse_size(const char *s)
{
	uint64_t v;

	return units_parse_size(s, &v) == 0 ? v : 0;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--capacity BYTES] [--chunk BYTES] [--size BYTES] [FILE]\n"
		"  --capacity BYTES  the pipe's ring size (default 1M, the library's default)\n"
		"  --chunk BYTES     largest read(2) and digest step (default 64K)\n"
		"  --size BYTES      size of the generated input when no FILE (default 64M)\n",
		prog);
}

/*
 * Pump fd through the transform into the pipe, with the sink consuming in
 * parallel. Fills *sink and returns 0 or a negative error. Frees nothing it
 * did not allocate; closes both ends of the pipe on every path.
 */
static int run_pipeline(int fd, const shmpipe_options *opts, size_t chunk, struct sink *sink)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	pthread_t tid;
	int ret, err = 0;

	ret = shmpipe_pair(&w, &r, opts);
	if (ret < 0) {
		fprintf(stderr, "shmpipe_pair: %s\n", shmpipe_strerror(ret));
		return ret;
	}
	sink->reader = r;
	sink->bufsize = chunk;
	ret = pthread_create(&tid, NULL, sink_main, sink);
	if (ret) {
		fprintf(stderr, "pthread_create: %s\n", strerror(ret));
		shmpipe_reader_close(r);
		shmpipe_writer_close(w);
		return -ret;
	}

	/*
	 * One copy in all: read(2) puts the file's bytes straight into space
	 * reserved in the ring, the transform works on them in place, and
	 * commit publishes them (shmpipe_write_from_fd does the same without
	 * the transform).
	 */
	for (;;) {
		void *p;
		ssize_t room = shmpipe_reserve(w, &p, 1);
		ssize_t n;

		if (room < 0) {
			/* -EPIPE here means the sink gave up; it said why. */
			err = (int)room;
			fprintf(stderr, "shmpipe_reserve: %s\n", shmpipe_strerror(err));
			break;
		}
		n = read_retry(fd, p, (size_t)room < chunk ? (size_t)room : chunk);
		if (n < 0) {
			err = -errno;
			fprintf(stderr, "read: %s\n", strerror(errno));
			break;
		}
		if (n == 0)
			break;
		transform(p, (size_t)n);
		ret = shmpipe_commit(w, (size_t)n);
		if (ret < 0) {
			err = ret;
			fprintf(stderr, "shmpipe_commit: %s\n", shmpipe_strerror(ret));
			break;
		}
	}

	/* End of stream, also on error: the sink must not wait for more. */
	ret = shmpipe_writer_close(w);
	if (ret < 0) {
		fprintf(stderr, "shmpipe_writer_close: %s\n", shmpipe_strerror(ret));
		err = err ? err : ret;
	}
	pthread_join(tid, NULL);
	return err ? err : sink->err;
}

/*
 * Open the input: FILE if given, else a generated temporary file. Returns a
 * descriptor positioned at the start, or -1 after printing why.
 */
static int open_input(const char *path, uint64_t size, char *buf, size_t bufsize)
{
	const char *dir = getenv("TMPDIR");
	char tmpl[4096];
	int fd, ret;

	if (path) {
		fd = open(path, O_RDONLY);
		if (fd < 0) {
			fprintf(stderr, "%s: %s\n", path, strerror(errno));
			return -1;
		}
		/* The input is read twice: the second pass verifies the first. */
		if (lseek(fd, 0, SEEK_CUR) < 0) {
			fprintf(stderr, "%s: not seekable, so it cannot be verified\n", path);
			close(fd);
			return -1;
		}
		printf("input:    %s\n", path);
		return fd;
	}

	/*
	 * The temporary file is unlinked as soon as it exists, so that it goes
	 * away even if we are killed; the descriptor keeps it alive till exit.
	 */
	snprintf(tmpl, sizeof(tmpl), "%s/file_pipeline.XXXXXX", dir && *dir ? dir : "/tmp");
	fd = mkstemp(tmpl);
	if (fd < 0) {
		fprintf(stderr, "mkstemp %s: %s\n", tmpl, strerror(errno));
		return -1;
	}
	unlink(tmpl);
	ret = generate_input(fd, size, buf, bufsize);
	if (ret == 0 && lseek(fd, 0, SEEK_SET) < 0)
		ret = -errno;
	if (ret < 0) {
		fprintf(stderr, "%s: %s\n", tmpl, strerror(-ret));
		close(fd);
		return -1;
	}
	printf("input:    %.2f MiB of generated text in %s (temporary, removed)\n",
	       (double)size / MiB, tmpl);
	return fd;
}

/* The verification pass: read fd again from the start, transform, digest. */
static int digest_file(int fd, char *buf, size_t bufsize, struct digest *d)
{
	ssize_t n;

	if (lseek(fd, 0, SEEK_SET) < 0) {
		fprintf(stderr, "lseek: %s\n", strerror(errno));
		return -1;
	}
	digest_init(d);
	while ((n = read_retry(fd, buf, bufsize)) > 0) {
		transform(buf, (size_t)n);
		digest_update(d, (unsigned char *)buf, (size_t)n);
	}
	if (n < 0) {
		fprintf(stderr, "read: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

static double mib_per_s(uint64_t bytes, double seconds)
{
	return seconds > 0 ? (double)bytes / MiB / seconds : 0.0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"capacity", required_argument, NULL, 'c'},
	    {"chunk", required_argument, NULL, 'k'},
	    {"size", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	shmpipe_options opts = {0};
	uint64_t chunk = 64 << 10, size = 64 << 20;
	struct sink sink = {0};
	struct digest check;
	const char *path = NULL;
	double t0, t;
	char *buf;
	int c, fd, ret, status = 1;

	while ((c = getopt_long(argc, argv, "c:k:s:h", longopts, NULL)) != -1) {
		uint64_t v = c == 'h' || c == '?' ? 0 : parse_size(optarg);

		if ((c == 'c' || c == 'k' || c == 's') && v == 0) {
			fprintf(stderr, "%s: bad size: %s\n", argv[0], optarg);
			return 2;
		}
		switch (c) {
		case 'c':
			opts.capacity = (size_t)v;
			break;
		case 'k':
			chunk = v;
			break;
		case 's':
			size = v;
			break;
		case 'h':
			usage(argv[0]);
			return 0;
		default:
			usage(argv[0]);
			return 2;
		}
	}
	if (argc - optind > 1 || chunk > (1u << 30)) {
		usage(argv[0]);
		return 2;
	}
	if (optind < argc)
		path = argv[optind];

	buf = malloc(chunk);
	if (!buf) {
		fprintf(stderr, "out of memory\n");
		return 1;
	}
	fd = open_input(path, size, buf, (size_t)chunk);
	if (fd < 0)
		goto out;
	printf("pipeline: read(2) %" PRIu64
	       " bytes at a time into the ring -> uppercase in place -> shmpipe "
	       "(shmpipe %s) -> sink thread hashes in place\n",
	       chunk, shmpipe_version());
	fflush(stdout);

	t0 = now();
	ret = run_pipeline(fd, &opts, (size_t)chunk, &sink);
	t = now() - t0;
	if (ret < 0)
		goto out;
	printf("pipeline: %.2f MiB in %.3f s = %.1f MiB/s (read and uppercase in the "
	       "main thread, count and hash in the sink thread)\n",
	       (double)sink.d.bytes / MiB, t, mib_per_s(sink.d.bytes, t));

	/* The second pass: the same work in one thread, no pipe. */
	t0 = now();
	ret = digest_file(fd, buf, (size_t)chunk, &check);
	t = now() - t0;
	if (ret < 0)
		goto out;
	printf("check:    %.2f MiB in %.3f s = %.1f MiB/s (the same work again in one "
	       "thread, no pipe)\n",
	       (double)check.bytes / MiB, t, mib_per_s(check.bytes, t));
	printf("check:    %" PRIu64 " bytes, %" PRIu64 " lines, FNV-1a 0x%016" PRIx64 "\n",
	       check.bytes, check.lines, check.fnv);

	if (check.bytes != sink.d.bytes || check.lines != sink.d.lines || check.fnv != sink.d.fnv) {
		printf("verified: FAILED: the sink saw other bytes than the file holds\n");
		goto out;
	}
	printf("verified: OK\n");
	status = 0;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return status;
}
