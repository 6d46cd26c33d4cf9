/* SPDX-License-Identifier: MIT */
/*
 * The progress line of write, read and buffer: one line on standard error,
 * rewritten in place a few times a second on a terminal, like pv(1).
 */
#ifndef SHMPIPE_CLI_PROGRESS_H
#define SHMPIPE_CLI_PROGRESS_H

#include <pthread.h>

#include "shmpipe.h"

struct progress {
	int on;			 /* a line is being shown */
	int tty;		 /* stderr is a terminal: rewrite in place */
	int out;		 /* count read_index (bytes out) rather than write_index */
	const shmpipe_writer *w; /* the handle the counters come from: one of the two */
	const shmpipe_reader *r;
	double t0;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;
	/* The last few samples, for the current rate. */
	double st[8];
	uint64_t sb[8];
	unsigned ns;
	/* Appended to the line when it says something (forward's link to the servers). */
	const char *(*status)(void *arg);
	void *status_arg;
};

/*
 * Decides whether to show a line (on a terminal, or if forced, never when
 * quiet) and starts a thread that samples the counters of w or r (one of
 * them NULL) and draws it. `out` picks the bytes read rather than written.
 * The handle must stay open until progress_stop.
 */
void progress_start(struct progress *p, int quiet, int forced, const shmpipe_writer *w,
		    const shmpipe_reader *r, int out);

/* Sets what is appended to each line from now on (fn may return ""). */
void progress_set_status(struct progress *p, const char *(*fn)(void *arg), void *arg);

/*
 * Stops the thread and leaves a final line (the total, the average rate)
 * ended by a newline, so that whatever is printed next starts on a line of
 * its own.
 */
void progress_stop(struct progress *p);

/*
 * Before the transfer, where its progress line will be and when it will be
 * shown (the same quiet and forced): what the command waits for, such as
 * "waiting for readers: 1 of 3". On a terminal it is rewritten in place,
 * and the progress line takes its place; otherwise it is a whole line.
 */
void progress_note(int quiet, int forced, const char *msg);

/* Ends a note left on a terminal's line, for a message that follows it. */
void progress_note_end(void);

#endif /* SHMPIPE_CLI_PROGRESS_H */
