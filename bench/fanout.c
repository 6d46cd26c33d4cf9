/* SPDX-License-Identifier: MIT */
/*
 * fanout - one writer, N readers that each get the whole stream.
 *
 *   fanout --impl shmpipe|pipes|tee --readers N [--bytes B] [--write W] [--ring R]
 *   fanout --impl share --readers N [--records K] [--work US]
 *
 * shmpipe: one broadcast pipe (options.readers = N; N = 1 is the plain
 * pipe), N reader threads. pipes: N pipe(2)s of R bytes each (F_SETPIPE_SZ),
 * the writer writing every chunk N times, N reader threads. tee: the writer
 * writes into one pipe(2) read by tee(1), which copies it into N pipes (N - 1
 * named /dev/fd/K, and its standard output), read by N threads. Every reader
 * sums a word of every chunk it gets and checks it got B bytes.
 *
 * Prints one line (bench.h): "fanout IMPL readers=N VALUE GB/s NOTE", the
 * stream's rate: B bytes over the time from the first write until the last
 * reader has its last byte (each reader gets all B).
 *
 * share: work-sharing (SHMPIPE_SHARE): K records of 64 bytes, each taken by
 * one of N worker threads, which works US microseconds on it (a loop that
 * hashes until the clock says so). Prints "share shmpipe workers=N
 * work=USus VALUE Mrecords/s NOTE", the records over the time until the
 * last is done; the note says how many each worker took.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "shmpipe.h"

#define MAX_READERS 64

struct reader {
	pthread_t t;
	shmpipe_reader *r; /* shmpipe */
	int fd;		   /* pipes, tee */
	uint64_t got, sum;
	size_t chunk;
};

static void *read_shmpipe(void *arg)
{
	struct reader *rd = arg;
	uint8_t *buf = malloc(rd->chunk);
	ssize_t n;

	while (buf && (n = shmpipe_read(rd->r, buf, rd->chunk)) > 0) {
		rd->got += (uint64_t)n;
		rd->sum += buf[0] + buf[n - 1];
	}
	free(buf);
	return NULL;
}

static void *read_fd(void *arg)
{
	struct reader *rd = arg;
	uint8_t *buf = malloc(rd->chunk);
	ssize_t n;

	while (buf && ((n = read(rd->fd, buf, rd->chunk)) > 0 || (n < 0 && errno == EINTR))) {
		if (n < 0)
			continue;
		rd->got += (uint64_t)n;
		rd->sum += buf[0] + buf[n - 1];
	}
	free(buf);
	return NULL;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "fanout: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

/* ---- work-sharing ---------------------------------------------------- */

struct worker {
	pthread_t t;
	shmpipe_reader *r;
	double work_us;
	uint64_t taken, sum;
};

/* Works us microseconds on a record: hashes it until the clock says so. */
static uint64_t work(const uint8_t *p, size_t n, double us)
{
	double end = bench_now() + us / 1e6;
	uint64_t h = 1469598103934665603ull;

	do {
		for (size_t i = 0; i < n; i++)
			h = (h ^ p[i]) * 1099511628211ull;
	} while (bench_now() < end);
	return h;
}

static void *share_worker(void *arg)
{
	struct worker *wk = arg;
	uint8_t buf[64];
	ssize_t n;

	while ((n = shmpipe_read(wk->r, buf, sizeof(buf))) > 0) {
		wk->sum += work(buf, (size_t)n, wk->work_us);
		wk->taken++;
	}
	if (n < 0)
		die("shmpipe_read", (int)n);
	return NULL;
}

static int run_share(int nr, uint64_t records, double work_us)
{
	shmpipe_options o = {.capacity = 1 << 20,
			     .readers = nr > 1 ? (uint32_t)nr : 2,
			     .flags = SHMPIPE_RECORDS | SHMPIPE_SHARE};
	struct worker wk[MAX_READERS];
	shmpipe_writer *w;
	uint8_t rec[64];
	uint64_t total = 0;
	char note[256] = "taken";
	double t0, t1;
	int err;

	memset(wk, 0, sizeof(wk));
	memset(rec, 7, sizeof(rec));
	/* One worker: a shared pipe of two places with one taken. */
	err = shmpipe_pair(&w, &wk[0].r, &o);
	for (int i = 1; err == 0 && i < nr; i++)
		err = shmpipe_reader_open_fd(&wk[i].r, shmpipe_writer_fd(w));
	if (err < 0)
		die("shmpipe", err);
	for (int i = 0; i < nr; i++) {
		wk[i].work_us = work_us;
		pthread_create(&wk[i].t, NULL, share_worker, &wk[i]);
	}
	t0 = bench_now();
	for (uint64_t i = 0; i < records; i++) {
		memcpy(rec, &i, sizeof(i));
		if (shmpipe_write(w, rec, sizeof(rec)) != sizeof(rec))
			die("shmpipe_write", EIO);
	}
	shmpipe_writer_close(w);
	for (int i = 0; i < nr; i++) {
		pthread_join(wk[i].t, NULL);
		total += wk[i].taken;
		snprintf(note + strlen(note), sizeof(note) - strlen(note), " %llu",
			 (unsigned long long)wk[i].taken);
		shmpipe_reader_close(wk[i].r);
	}
	t1 = bench_now();
	if (total != records) {
		fprintf(stderr, "fanout: the workers took %llu of %llu records\n",
			(unsigned long long)total, (unsigned long long)records);
		return 1;
	}
	printf("share\tshmpipe\tworkers=%d work=%gus\t%.6g\tMrecords/s\t%s\n", nr, work_us,
	       (double)records / (t1 - t0) / 1e6, note);
	return 0;
}

/* Writes all of buf to fd. */
static void write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("write", errno);
		buf += n;
		len -= (size_t)n;
	}
}

static int make_pipe(int fds[2], uint64_t ring)
{
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	fcntl(fds[1], F_SETPIPE_SZ, (int)ring);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"impl", required_argument, NULL, 'i'},  {"readers", required_argument, NULL, 'n'},
	    {"bytes", required_argument, NULL, 'b'}, {"write", required_argument, NULL, 'w'},
	    {"ring", required_argument, NULL, 'r'},  {"records", required_argument, NULL, 'k'},
	    {"work", required_argument, NULL, 'u'},  {NULL, 0, NULL, 0},
	};
	const char *impl = "shmpipe";
	uint64_t records = 200000;
	double work_us = 5;
	uint64_t bytes = 1ull << 30, wsize = 64 << 10, ring = 1 << 20;
	struct reader rd[MAX_READERS];
	int nr = 1, c, out[MAX_READERS], in = -1, err;
	pid_t tee = -1;
	shmpipe_writer *w = NULL;
	uint8_t *buf;
	double t0, t1;
	char note[64] = "-";

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			impl = optarg;
			break;
		case 'n':
			nr = atoi(optarg);
			break;
		case 'b':
			bytes = bench_size(argv[0], optarg);
			break;
		case 'w':
			wsize = bench_size(argv[0], optarg);
			break;
		case 'r':
			ring = bench_size(argv[0], optarg);
			break;
		case 'k':
			records = bench_size(argv[0], optarg);
			break;
		case 'u':
			work_us = atof(optarg);
			break;
		default:
			fprintf(stderr, "usage: fanout --impl shmpipe|pipes|tee --readers N "
					"[--bytes B] [--write W] [--ring R]\n");
			return 2;
		}
	}
	if (nr < 1 || nr > MAX_READERS) {
		fprintf(stderr, "fanout: --readers from 1 to %d\n", MAX_READERS);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	buf = malloc(wsize);
	if (!buf)
		die("malloc", ENOMEM);
	for (uint64_t i = 0; i < wsize; i++)
		buf[i] = (uint8_t)(i * 7);
	memset(rd, 0, sizeof(rd));

	if (strcmp(impl, "share") == 0)
		return run_share(nr, records, work_us);
	if (strcmp(impl, "shmpipe") == 0) {
		shmpipe_options o = {.capacity = ring, .readers = nr > 1 ? (uint32_t)nr : 0};

		err = shmpipe_pair(&w, &rd[0].r, &o);
		for (int i = 1; err == 0 && i < nr; i++)
			err = shmpipe_reader_open_fd(&rd[i].r, shmpipe_writer_fd(w));
		if (err < 0)
			die("shmpipe", err);
		for (int i = 0; i < nr; i++) {
			rd[i].chunk = wsize;
			pthread_create(&rd[i].t, NULL, read_shmpipe, &rd[i]);
		}
	} else if (strcmp(impl, "pipes") == 0 || strcmp(impl, "tee") == 0) {
		int teed = strcmp(impl, "tee") == 0;

		for (int i = 0; i < nr; i++) {
			int fds[2];

			err = make_pipe(fds, ring);
			if (err < 0)
				die("pipe", err);
			rd[i].fd = fds[0];
			out[i] = fds[1];
		}
		if (teed) {
			int fds[2];

			err = make_pipe(fds, ring);
			if (err < 0)
				die("pipe", err);
			in = fds[1];
			tee = fork();
			if (tee == 0) {
				/* tee copies stdin to stdout and to each /dev/fd/K. */
				char *args[MAX_READERS + 2], names[MAX_READERS][32];
				int k = 0;

				dup2(fds[0], 0);
				dup2(out[0], 1);
				args[k++] = "tee";
				for (int i = 1; i < nr; i++) {
					int fd = dup(out[i]); /* without close-on-exec */

					snprintf(names[i], sizeof(names[i]), "/dev/fd/%d", fd);
					args[k++] = names[i];
				}
				args[k] = NULL;
				execvp("tee", args);
				_exit(127);
			}
			close(fds[0]);
			for (int i = 0; i < nr; i++)
				close(out[i]);
		}
		for (int i = 0; i < nr; i++) {
			rd[i].chunk = wsize;
			pthread_create(&rd[i].t, NULL, read_fd, &rd[i]);
		}
	} else {
		fprintf(stderr, "fanout: unknown --impl %s\n", impl);
		return 2;
	}

	t0 = bench_now();
	for (uint64_t done = 0; done < bytes;) {
		size_t n = bytes - done < wsize ? (size_t)(bytes - done) : (size_t)wsize;

		if (w) {
			ssize_t k = shmpipe_write(w, buf, n);

			if (k != (ssize_t)n)
				die("shmpipe_write", k < 0 ? (int)k : EIO);
		} else if (in >= 0) {
			write_all(in, buf, n);
		} else {
			for (int i = 0; i < nr; i++)
				write_all(out[i], buf, n);
		}
		done += n;
	}
	if (w)
		shmpipe_writer_close(w);
	else if (in >= 0)
		close(in);
	else
		for (int i = 0; i < nr; i++)
			close(out[i]);
	for (int i = 0; i < nr; i++)
		pthread_join(rd[i].t, NULL);
	t1 = bench_now();
	if (tee > 0) {
		int st;

		waitpid(tee, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			die("tee", EIO);
	}
	for (int i = 0; i < nr; i++) {
		if (rd[i].got != bytes) {
			fprintf(stderr, "fanout: reader %d got %llu of %llu bytes\n", i,
				(unsigned long long)rd[i].got, (unsigned long long)bytes);
			return 1;
		}
		if (rd[i].r)
			shmpipe_reader_close(rd[i].r);
		else
			close(rd[i].fd);
	}
	{
		char wb[32], rb[32];

		printf("fanout\t%s\treaders=%d ring=%s write=%s\t%.6g\tGB/s\t%s\n", impl, nr,
		       bench_human(ring, rb, sizeof(rb)), bench_human(wsize, wb, sizeof(wb)),
		       (double)bytes / (t1 - t0) / 1e9, note);
	}
	free(buf);
	return 0;
}
