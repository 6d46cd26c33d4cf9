/* SPDX-License-Identifier: MIT */
/*
 * The progress line. A thread samples the shared counters (a consistent
 * snapshot, readable from any thread: no cost to the transfer) every 250 ms
 * and redraws one line with a carriage return, clearing what is left of the
 * previous one. The line never gets wider than the terminal, so it never
 * wraps and scrolls. When forced onto something that is not a terminal, it
 * prints whole lines instead, once a second, with no control characters.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"

#define TTY_PERIOD_MS 250
#define LOG_PERIOD_MS 1000

static int read_stats(const struct progress *p, shmpipe_stats *s)
{
	return p->w ? shmpipe_writer_stats(p->w, s) : shmpipe_reader_stats(p->r, s);
}

static int width(void)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
		return ws.ws_col;
	return 80;
}

/*
 *   1.25 GiB  412 MiB/s  ring  87% of 16.0 MiB  waits w 1204 r 3  0:00:03
 */
static void draw(struct progress *p, int final)
{
	char line[256], bytes[32], rate[32], cap[32], el[32];
	shmpipe_stats s;
	double now = cli_now(), r;
	uint64_t b, depth;
	unsigned k;
	int n, pct;

	if (read_stats(p, &s) < 0)
		return;
	b = p->out ? s.read_index : s.write_index;
	/*
	 * The rate over the last eight samples (two seconds on a terminal),
	 * against the oldest of them, kept before its slot is reused; the
	 * average over the whole transfer on the final line.
	 */
	k = p->ns < 8 ? 0 : p->ns % 8;
	if (final || p->ns == 0)
		r = now > p->t0 ? (double)b / (now - p->t0) : 0;
	else
		r = now > p->st[k] ? (double)(b - p->sb[k]) / (now - p->st[k]) : 0;
	p->st[p->ns % 8] = now;
	p->sb[p->ns % 8] = b;
	p->ns++;
	depth = s.write_index - s.read_index;
	pct = s.capacity ? (int)((depth * 100 + s.capacity / 2) / s.capacity) : 0;
	cli_format_bytes(bytes, sizeof(bytes), (double)b);
	cli_format_rate(rate, sizeof(rate), r);
	cli_format_bytes(cap, sizeof(cap), (double)s.capacity);
	cli_format_duration(el, sizeof(el), now - p->t0);
	n = snprintf(line, sizeof(line), "%10s %12s%s ring %3d%% of %s  waits w %llu r %llu  %s",
		     bytes, rate, final ? " avg" : "    ", pct, cap,
		     (unsigned long long)s.producer_waits, (unsigned long long)s.consumer_waits,
		     el);
	if (p->status && n > 0 && n < (int)sizeof(line)) {
		const char *st = p->status(p->status_arg);

		if (st && *st)
			n += snprintf(line + n, sizeof(line) - (size_t)n, "%s", st);
		if (n >= (int)sizeof(line))
			n = (int)sizeof(line) - 1;
	}
	if (p->tty) {
		int w = width() - 1;

		if (n > w && w < (int)sizeof(line))
			line[w] = '\0';
		/* \r back to the start, \033[K clears what the last line left. */
		fprintf(stderr, "\r%s\033[K%s", line, final ? "\n" : "");
		cli_line_open = !final;
	} else {
		fprintf(stderr, "%s\n", line);
	}
	fflush(stderr);
}

static void *run(void *arg)
{
	struct progress *p = arg;
	int period = p->tty ? TTY_PERIOD_MS : LOG_PERIOD_MS;
	struct timespec ts;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += (long)period * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		while (!p->stop && pthread_cond_timedwait(&p->cond, &p->lock, &ts) != ETIMEDOUT)
			;
		if (!p->stop)
			draw(p, 0);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

void progress_start(struct progress *p, int quiet, int forced, const shmpipe_writer *w,
		    const shmpipe_reader *r, int out)
{
	pthread_condattr_t ca;

	memset(p, 0, sizeof(*p));
	p->tty = isatty(STDERR_FILENO);
	if (quiet || !(p->tty || forced))
		return;
	p->w = w;
	p->r = r;
	p->out = out;
	p->t0 = cli_now();
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	/* Without the line the transfer goes on: a failure here is not fatal. */
	if (pthread_create(&p->thread, NULL, run, p) != 0)
		return;
	p->on = 1;
}

void progress_set_status(struct progress *p, const char *(*fn)(void *arg), void *arg)
{
	if (!p->on)
		return;
	pthread_mutex_lock(&p->lock);
	p->status = fn;
	p->status_arg = arg;
	pthread_mutex_unlock(&p->lock);
}

void progress_stop(struct progress *p)
{
	if (!p->on)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = 1;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	draw(p, 1);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	p->on = 0;
}

void progress_note(int quiet, int forced, const char *msg)
{
	char line[256];
	int w = width() - 1;

	if (quiet)
		return;
	if (isatty(STDERR_FILENO)) {
		snprintf(line, sizeof(line), "%s", msg);
		if (w < (int)sizeof(line))
			line[w] = '\0';
		fprintf(stderr, "\r%s\033[K", line);
		cli_line_open = 1;
	} else if (forced) {
		fprintf(stderr, "%s\n", msg);
	}
	fflush(stderr);
}

void progress_note_end(void)
{
	if (!cli_line_open)
		return;
	fputc('\n', stderr);
	fflush(stderr);
	cli_line_open = 0;
}
