/* SPDX-License-Identifier: MIT */
/*
 * bulk: bytes between two threads, shmpipe against the kernel's transports
 * and against one plain memcpy of the same volume.
 *
 *   bulk --impl IMPL [--ring BYTES] [--write BYTES] [--bytes BYTES] [--rss] [--spin US]
 *        [--offset BYTES]
 *
 * IMPL is one of
 *   shmpipe     shmpipe_write / shmpipe_read, WRITE bytes per call each side
 *   shmpipe_zc  shmpipe_reserve + memcpy + commit / shmpipe_peek + consume:
 *               the producer still copies its chunk in (it has to come from
 *               somewhere), the consumer checks it in place, so one copy
 *               per byte instead of two
 *   pipe        pipe(2) grown with F_SETPIPE_SZ to RING bytes
 *   socketpair  socketpair(AF_UNIX, SOCK_STREAM) with SO_SNDBUF/SO_RCVBUF
 *               set to RING bytes
 *   memcpy      one thread copying WRITE-byte chunks into a RING-byte
 *               buffer, round and round: one copy per byte, no second
 *               thread, the physical limit of this machine
 *
 * The data is checked without hiding the copy: every WRITE-byte chunk starts
 * with its 64-bit sequence number, and the consumer checks each sequence
 * number that lands in what it received and the last byte of every read
 * against the pattern, so lost, repeated or torn chunks fail the run.
 *
 * With --rss it also prints the process's peak resident set size and, for
 * shmpipe, how often each side slept, per GiB. --spin sets shmpipe's spin
 * on both ends (shmpipe_*_set_spin; default: the library's). --offset puts
 * the reader's buffer that many bytes past a page boundary (default: where
 * malloc puts it), for copies whose destination and source alias.
 *
 * Prints bench.h lines: "bulk IMPL ring=R write=W GB/s NOTE".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <shmpipe.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

enum impl { SHMPIPE, SHMPIPE_ZC, PIPE, SOCKETPAIR, MEMCPY };

static enum impl impl;
static size_t ring = 1 << 20;
static size_t wsize = 64 << 10;
static uint64_t total = 256ull << 20;
static int spin = -1;
static long roffset = -1; /* --offset: the reader's buffer offset in its page */

static shmpipe_writer *sw;
static shmpipe_reader *sr;
static int fds[2];
static unsigned char *src;

/* The pattern byte at offset off of a chunk (the first 8 bytes are the stamp). */
static unsigned char pattern(size_t off)
{
	return (unsigned char)(off * 131u + 7u);
}

static void stamp(uint64_t chunk)
{
	memcpy(src, &chunk, sizeof(chunk));
}

/* Consumer-side check of n received bytes at stream position pos. */
static void check(const unsigned char *p, size_t n, uint64_t pos)
{
	uint64_t c = (pos + wsize - 1) / wsize; /* first chunk starting at or after pos */

	for (; c * wsize + 8 <= pos + n; c++) {
		uint64_t got;

		memcpy(&got, p + (c * wsize - pos), sizeof(got));
		if (got != c)
			BENCH_DIE("bulk: chunk %llu has sequence number %llu",
				  (unsigned long long)c, (unsigned long long)got);
	}
	size_t last = (size_t)((pos + n - 1) % wsize);
	if (last >= 8 && p[n - 1] != pattern(last))
		BENCH_DIE("bulk: wrong byte at offset %llu", (unsigned long long)(pos + n - 1));
}

static void *producer(void *arg)
{
	uint64_t sent = 0;

	(void)arg;
	for (uint64_t chunk = 0; sent < total; chunk++) {
		size_t n = total - sent < wsize ? (size_t)(total - sent) : wsize;
		size_t done = 0;

		stamp(chunk);
		while (done < n) {
			ssize_t k;

			if (impl == SHMPIPE) {
				k = shmpipe_write(sw, src + done, n - done);
			} else if (impl == SHMPIPE_ZC) {
				/* Ask for the rest of the chunk but at most half the ring, so
				 * that a chunk larger than the ring is still filled while the
				 * consumer drains the other half. */
				size_t want = n - done < ring / 2 ? n - done : ring / 2;
				void *p;

				k = shmpipe_reserve(sw, &p, want ? want : 1);
				if (k > 0) {
					if ((size_t)k > n - done)
						k = (ssize_t)(n - done);
					memcpy(p, src + done, (size_t)k);
					int e = shmpipe_commit(sw, (size_t)k);
					if (e < 0)
						k = e;
				}
			} else {
				k = write(fds[1], src + done, n - done);
				if (k < 0)
					k = -errno;
			}
			if (k < 0)
				BENCH_DIE("bulk: write: %s", strerror((int)-k));
			done += (size_t)k;
		}
		sent += n;
	}
	if (impl == SHMPIPE || impl == SHMPIPE_ZC)
		shmpipe_writer_close(sw);
	else
		close(fds[1]);
	return NULL;
}

/* The consumer, in the calling thread; returns the bytes received. */
static uint64_t consume(void)
{
	/* --offset: the buffer at that many bytes past a page boundary. */
	unsigned char *base = roffset < 0 ? malloc(wsize) : aligned_alloc(4096, wsize + 8192);
	unsigned char *buf = base && roffset > 0 ? base + roffset : base;
	uint64_t pos = 0;

	if (!buf)
		BENCH_DIE("bulk: out of memory");
	for (;;) {
		ssize_t k;

		if (impl == SHMPIPE) {
			k = shmpipe_read(sr, buf, wsize);
			if (k > 0)
				check(buf, (size_t)k, pos);
		} else if (impl == SHMPIPE_ZC) {
			const void *p;

			k = shmpipe_peek(sr, &p);
			if (k > 0) {
				check(p, (size_t)k, pos);
				int e = shmpipe_consume(sr, (size_t)k);
				if (e < 0)
					k = e;
			}
		} else {
			k = read(fds[0], buf, wsize);
			if (k < 0)
				k = errno == EINTR ? 0 : -errno;
			else if (k > 0)
				check(buf, (size_t)k, pos);
			else
				break;
		}
		if (k == 0 && (impl == SHMPIPE || impl == SHMPIPE_ZC))
			break;
		if (k < 0)
			BENCH_DIE("bulk: read: %s", strerror((int)-k));
		pos += (uint64_t)k;
	}
	free(base);
	return pos;
}

/* One thread, one copy per byte: WRITE-byte chunks into a RING-byte buffer. */
static void run_memcpy(void)
{
	unsigned char *dst = malloc(ring);
	size_t at = 0;
	uint64_t sent = 0;
	volatile unsigned char sink;

	if (!dst)
		BENCH_DIE("bulk: out of memory");
	memset(dst, 0, ring); /* fault the pages in, as the ring's are */
	for (uint64_t chunk = 0; sent < total; chunk++) {
		size_t n = total - sent < wsize ? (size_t)(total - sent) : wsize;
		size_t done = 0;

		stamp(chunk);
		while (done < n) {
			size_t k = n - done < ring - at ? n - done : ring - at;

			memcpy(dst + at, src + done, k);
			at = (at + k) % ring;
			done += k;
		}
		sent += n;
	}
	sink = dst[(at + ring - 1) % ring];
	(void)sink;
	free(dst);
}

int main(int argc, char **argv)
{
	static const char *names[] = {"shmpipe", "shmpipe_zc", "pipe", "socketpair", "memcpy"};
	const char *name = NULL;
	char note[128] = "-", rs[24], ws[24];
	int want_rss = 0;
	pthread_t t;
	double t0, t1;
	uint64_t got;

	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && !strcmp(argv[i], "--impl"))
			name = argv[++i];
		else if (i + 1 < argc && !strcmp(argv[i], "--ring"))
			ring = (size_t)bench_size("bulk", argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--write"))
			wsize = (size_t)bench_size("bulk", argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--bytes"))
			total = bench_size("bulk", argv[++i]);
		else if (!strcmp(argv[i], "--rss"))
			want_rss = 1;
		else if (i + 1 < argc && !strcmp(argv[i], "--spin"))
			spin = atoi(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--offset"))
			roffset = atol(argv[++i]) & 4095;
		else
			name = NULL, i = argc;
	}
	for (impl = SHMPIPE; name && impl <= MEMCPY; impl++)
		if (!strcmp(name, names[impl]))
			break;
	if (!name || impl > MEMCPY || wsize < 16) {
		fprintf(stderr, "usage: bulk --impl shmpipe|shmpipe_zc|pipe|socketpair|memcpy "
				"[--ring BYTES] [--write BYTES (>= 16)] [--bytes BYTES] [--rss] "
				"[--spin US] [--offset BYTES]\n");
		return 2;
	}
	src = malloc(wsize);
	if (!src)
		BENCH_DIE("bulk: out of memory");
	for (size_t i = 0; i < wsize; i++)
		src[i] = pattern(i);

	if (impl == SHMPIPE || impl == SHMPIPE_ZC) {
		shmpipe_options o = {.capacity = ring};
		int e = shmpipe_pair(&sw, &sr, &o);

		if (e < 0)
			BENCH_DIE("bulk: shmpipe_pair: %s", shmpipe_strerror(e));
		if (shmpipe_writer_set_spin(sw, spin) < 0 || shmpipe_reader_set_spin(sr, spin) < 0)
			BENCH_DIE("bulk: bad --spin %d", spin);
	} else if (impl == PIPE) {
		if (pipe2(fds, O_CLOEXEC) < 0)
			BENCH_DIE("bulk: pipe2: %s", strerror(errno));
		/* Beyond /proc/sys/fs/pipe-max-size this needs CAP_SYS_RESOURCE; if
		 * refused, take the largest allowed; the note says what it got. */
		if (fcntl(fds[1], F_SETPIPE_SZ, (int)ring) < 0) {
			FILE *f = fopen("/proc/sys/fs/pipe-max-size", "r");
			int max;

			if (f && fscanf(f, "%d", &max) == 1 && (size_t)max < ring)
				(void)fcntl(fds[1], F_SETPIPE_SZ, max);
			if (f)
				fclose(f);
		}
		snprintf(note, sizeof(note), "pipe_sz=%s",
			 bench_human((uint64_t)fcntl(fds[1], F_GETPIPE_SZ), rs, sizeof(rs)));
	} else if (impl == SOCKETPAIR) {
		int v = (int)ring, snd = 0, rcv = 0;
		socklen_t len = sizeof(int);

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
			BENCH_DIE("bulk: socketpair: %s", strerror(errno));
		setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
		setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
		getsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &snd, &len);
		len = sizeof(int);
		getsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &rcv, &len);
		/* Linux doubles the value asked for (bookkeeping overhead) and caps it
		 * at net.core.wmem_max / rmem_max: report what it granted. */
		snprintf(note, sizeof(note), "sndbuf=%s rcvbuf=%s",
			 bench_human((uint64_t)snd, rs, sizeof(rs)),
			 bench_human((uint64_t)rcv, ws, sizeof(ws)));
	}

	t0 = bench_now();
	if (impl == MEMCPY) {
		run_memcpy();
		got = total;
	} else {
		if (pthread_create(&t, NULL, producer, NULL) != 0)
			BENCH_DIE("bulk: pthread_create failed");
		got = consume();
		pthread_join(t, NULL);
	}
	t1 = bench_now();
	if (got != total)
		BENCH_DIE("bulk: received %llu of %llu bytes", (unsigned long long)got,
			  (unsigned long long)total);

	bench_human(ring, rs, sizeof(rs));
	bench_human(wsize, ws, sizeof(ws));
	bench_emit("bulk", names[impl], (double)total / (t1 - t0) / 1e9, "GB/s", "ring=%s write=%s",
		   rs, ws);
	bench_note(note);
	if (want_rss) {
		struct rusage ru;
		char vs[24];

		getrusage(RUSAGE_SELF, &ru);
		bench_emit("memory", names[impl], (double)ru.ru_maxrss / 1024.0, "MiB",
			   "bytes=%s ring=%s", bench_human(total, vs, sizeof(vs)), rs);
		bench_note("peak RSS of the whole process");
	}
	if (want_rss && (impl == SHMPIPE || impl == SHMPIPE_ZC)) {
		shmpipe_stats st;

		shmpipe_reader_stats(sr, &st);
		bench_emit("sleeps", names[impl],
			   (double)(st.producer_waits + st.consumer_waits) /
			       ((double)total / (1u << 30)),
			   "per GiB", "ring=%s write=%s", rs, ws);
		snprintf(note, sizeof(note), "producer_waits %llu + consumer_waits %llu",
			 (unsigned long long)st.producer_waits,
			 (unsigned long long)st.consumer_waits);
		bench_note(note);
	}
	if (impl == SHMPIPE || impl == SHMPIPE_ZC)
		shmpipe_reader_close(sr);
	else if (impl != MEMCPY)
		close(fds[0]);
	free(src);
	return 0;
}
