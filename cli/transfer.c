/* SPDX-License-Identifier: MIT */
/*
 * write, read and buffer: the commands that move data. Bytes go from a file
 * descriptor into the ring with read(2) and out of it with write(2), through
 * the library's pumps, with no buffer of ours in between.
 *
 * Who removes a pipe's name: the reader, when it is done (the stream ended
 * or failed: the name has no more use), and either end that fails or is
 * interrupted. A writer that completes leaves the name, so that what it put
 * into the ring waits there for a reader that has not come yet. Of a
 * broadcast pipe's readers (write --readers N) the first one done removes
 * it for all: they have all come by then, as the writer waits for them.
 *
 * A writer that fails or is interrupted exits without ending the stream:
 * its reader then reports truncated output (-ECONNRESET), where a clean end
 * of stream would pass a partial copy off as a whole one.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"

/* The default ring of write and read --create: the library's, 1 MiB. */
#define TRANSFER_DEFAULT_SIZE SHMPIPE_DEFAULT_CAPACITY
/* buffer's default: enough to ride out a consumer's pause of a fraction of a second. */
#define BUFFER_DEFAULT_SIZE ((uint64_t)16 << 20)
/* A shared pipe's records also carry their number: 8 bytes more. */
#define SHARE_MIN_SIZE 24

/* Errors of attaching that come from the arguments rather than the system. */
static int attach_status(int err)
{
	switch (err) {
	case -ENOENT:
	case -EEXIST:
	case -EBUSY:
	case -EPROTO:
	case -EACCES:
	case -EPERM:
	case -EINVAL:
	case -ELOOP:
	case -EISDIR:
		return CLI_USAGE;
	default:
		return CLI_FAILED;
	}
}

/* A reader refused by a broadcast pipe (write --readers). */
static const char places_taken[] = "every reader's place is taken";

/* Whether every place of a broadcast pipe is held by a live reader. */
static int all_places_taken(const char *name, unsigned readers)
{
	shmpipe_reader_info places[SHMPIPE_READERS_MAX];
	int n = shmpipe_inspect_readers(name, places, SHMPIPE_READERS_MAX);

	if (n < 0 || (unsigned)n != readers || n > SHMPIPE_READERS_MAX)
		return 0; /* changed under us: let shmpipe_reader_open say */
	for (int i = 0; i < n; i++)
		if (places[i].end.state != SHMPIPE_END_OPEN || !places[i].end.alive)
			return 0;
	return 1;
}

static const char *attach_why(int err, int writer)
{
	switch (err) {
	case -ENOENT:
		return "no such pipe";
	case -EEXIST:
		return writer ? "exists already (write --open takes its write end)"
			      : "exists already (read without --create takes its read end)";
	case -EBUSY:
		return writer ? "its write end is taken" : "its read end is taken";
	case -EPROTO:
		return "not a shmpipe (or not one this version understands)";
	case -EPERM:
		return "owned by another user (only this user's pipes and root's are opened)";
	case -ELOOP:
		return "not a shmpipe: a symbolic link";
	case -EISDIR:
		return "not a shmpipe: a directory";
	default:
		return shmpipe_strerror(err);
	}
}

/*
 * How much the reader drains per call of the pump: an eighth of the ring
 * (at least 64 KiB). The pump releases what it wrote out only when the call
 * ends, so a call on the whole ring would hold all of it until a slow output
 * took the last byte, and the writer would stall for no reason; smaller
 * calls hand space back as it frees, and stat sees the progress.
 */
static size_t drain_chunk(const shmpipe_reader *r, int records)
{
	shmpipe_stats s;
	uint64_t c = shmpipe_reader_stats(r, &s) == 0 ? s.capacity / 8 : 0;

	/* Records go out and are released one by one already; and a limit
	 * could stop at a record bigger than it. */
	if (records)
		return 0;
	return c < 65536 ? 65536 : (size_t)c;
}

/* Ring errors, as opposed to errors of the file on the other side of the pump. */
static int ring_error(int err)
{
	return err == -EPIPE || err == -ECONNRESET || err == -ETIMEDOUT || err == -EAGAIN ||
	       err == -EPROTO || err == -EINTR;
}

int cli_options_for_create(const struct cli_opts *o, shmpipe_options *so)
{
	memset(so, 0, sizeof(*so));
	so->capacity = o->size ? (size_t)o->size : TRANSFER_DEFAULT_SIZE;
	so->flags = (o->records ? SHMPIPE_RECORDS : 0) | (o->share ? SHMPIPE_SHARE : 0) |
		    (o->reopen ? SHMPIPE_REOPEN : 0);
	so->mode = o->mode;
	/* One reader is the pipe of old: readers stays 0. */
	so->readers = o->readers > 1 ? (uint32_t)o->readers : 0;
	return 0;
}

/*
 * write --readers N: waits until N readers have come, within timeout_ms
 * in all (-1: forever), saying how many have while it waits. Returns the
 * number that came, or the error (-ETIMEDOUT) with the number in *came.
 */
static int wait_readers(shmpipe_writer *w, const struct cli_opts *o, int *came)
{
	double deadline = cli_now() + o->timeout_ms / 1000.0;
	char msg[64];
	int k = shmpipe_writer_wait_readers(w, 0), shown = -1;

	while (k >= 0 && k < o->readers) {
		if (k != shown) {
			snprintf(msg, sizeof(msg), "waiting for readers: %d of %d", k, o->readers);
			progress_note(o->quiet, o->progress, msg);
			shown = k;
		}
		*came = k;
		if (o->timeout_ms >= 0) {
			double left_ms = (deadline - cli_now()) * 1000;

			if (left_ms <= 0) {
				k = -ETIMEDOUT;
				break;
			}
			/* Rounded up: a timeout of 0 would not wait at all. */
			shmpipe_writer_set_timeout(w,
						   left_ms < INT_MAX ? (int)left_ms + 1 : INT_MAX);
		}
		/* Back as soon as one more came (or one left and another came). */
		k = shmpipe_writer_wait_readers(w, (unsigned)k + 1);
	}
	shmpipe_writer_set_timeout(w, o->timeout_ms);
	if (k >= 0)
		*came = k;
	return k;
}

/*
 * The pump stopped after moving bytes: at the end of the input, or on an
 * error it will report when called again. Calling it again is the way to
 * tell, except on a terminal, whose end of input (^D) holds for one read
 * only: there a second read would wait for a second ^D. So on a terminal
 * ask the ring instead, without waiting: a reader gone is the one error
 * that matters (a read error on a terminal means it hung up, and SIGHUP
 * follows). Returns 0 for the end of the input, or the error.
 */
static ssize_t tty_stop_reason(shmpipe_writer *w, int timeout_ms)
{
	void *p;
	ssize_t k;

	shmpipe_writer_set_timeout(w, 0);
	k = shmpipe_reserve(w, &p, 1);
	if (k >= 0)
		shmpipe_commit(w, 0);
	shmpipe_writer_set_timeout(w, timeout_ms);
	return k == -EPIPE ? k : 0;
}

int cli_write(int argc, char **argv)
{
	char name[256], shown[CLI_SHOWN_MAX], what[CLI_SHOWN_MAX + 8];
	const char *file = NULL;
	struct cli_opts o;
	shmpipe_options so;
	struct progress pg;
	shmpipe_writer *w;
	ssize_t n;
	int in = STDIN_FILENO, err;

	n = cli_parse_opts(
	    argc, argv, "size records mode readers share reopen open timeout quiet progress", &o);
	if (n < 0)
		return n == CLI_HELP_SHOWN ? CLI_OK : CLI_USAGE;
	if (n < 1)
		return cli_usage("write", "no pipe NAME given");
	if (n > 2)
		return cli_usage("write", "too many operands ('%s')", argv[3]);
	if (cli_name(argv[1], name, sizeof(name)) < 0)
		return cli_bad_name("write", argv[1]);
	cli_shown(shown, sizeof(shown), name);
	if (o.reopen && o.readers > 1)
		return cli_usage("write",
				 "--reopen is for a pipe of one reader: not with --readers");
	if (o.open && (o.size || o.records || o.mode || o.readers || o.reopen))
		return cli_usage("write", "--open takes the pipe as it was created: no --size, "
					  "--records, --mode, --readers, --share or --reopen");
	if (o.share && o.readers < 2)
		return cli_usage("write", "--share deals records out among readers: it needs "
					  "--readers 2 or more");
	if (o.share && o.size && o.size < SHARE_MIN_SIZE)
		return cli_usage("write", "--share needs a ring of at least %d bytes (--size)",
				 SHARE_MIN_SIZE);
	if (o.records && o.size && o.size < RECORDS_MIN_SIZE)
		return cli_usage("write", "--records needs a ring of at least %d bytes (--size)",
				 RECORDS_MIN_SIZE);
	if ((n < 2 || strcmp(argv[2], "-") == 0) && cli_std_closed(STDIN_FILENO))
		return cli_usage("write", "standard input is closed");
	if (cli_check_kind("write", name) != 0)
		return CLI_USAGE;
	if (n == 2 && strcmp(argv[2], "-") != 0) {
		file = argv[2];
		in = open(file, O_RDONLY | O_CLOEXEC);
		if (in < 0)
			return cli_usage("write", "cannot open '%s': %s", file, strerror(errno));
	}
	snprintf(what, sizeof(what), "write %s", shown);

	/* No signal between making the name and knowing it is ours to remove. */
	cli_guard_signals();
	cli_block_signals(1);
	if (o.open) {
		err = shmpipe_writer_open(&w, name);
	} else {
		cli_options_for_create(&o, &so);
		err = shmpipe_writer_create(&w, name, &so);
	}
	if (err < 0) {
		cli_block_signals(0);
		if (attach_status(err) == CLI_USAGE)
			return cli_usage("write", "%s: %s", shown, attach_why(err, 1));
		cli_error("%s: %s", what, shmpipe_strerror(err));
		return CLI_FAILED;
	}
	cli_remember_name(name, shmpipe_writer_fd(w));
	cli_block_signals(0);
	shmpipe_writer_set_timeout(w, o.timeout_ms);
	/* Broadcast: every reader from the first byte, so all of them first. */
	if (o.readers > 1) {
		int came = 0;

		err = wait_readers(w, &o, &came);
		if (err < 0) {
			progress_note_end();
			if (err == -ETIMEDOUT)
				cli_error("%s: timed out waiting for readers: %d of %d came", what,
					  came, o.readers);
			else
				cli_error("%s: waiting for readers: %s", what,
					  shmpipe_strerror(err));
			/* Not closed: a reader that came must not take this for a whole stream. */
			cli_forget_name();
			return CLI_FAILED;
		}
	}

	progress_start(&pg, o.quiet, o.progress, w, NULL, 0);
	/* Until read(2) reports the end of the input, or an error stops the pump. */
	do {
		n = shmpipe_write_from_fd(w, in, 0);
		if (n > 0 && isatty(in))
			n = tty_stop_reason(w, o.timeout_ms);
	} while (n > 0);
	progress_stop(&pg);
	if (n < 0) {
		err = (int)n;
		if (err == -EPIPE && o.readers > 1)
			cli_error("%s: every reader closed the pipe or died", what);
		else if (err == -EPIPE)
			cli_error("%s: the reader closed the pipe or died", what);
		else if (err == -ETIMEDOUT)
			cli_error("%s: timed out: the ring stayed full", what);
		else if (ring_error(err))
			cli_error("%s: %s", what, shmpipe_strerror(err));
		else
			cli_error("%s: reading %s: %s", what, file ? file : "standard input",
				  shmpipe_strerror(err));
		/* Not shmpipe_writer_close: the reader must see a truncated stream. */
		cli_forget_name();
		return CLI_FAILED;
	}
	shmpipe_writer_close(w);
	if (in != STDIN_FILENO)
		close(in);
	return CLI_OK;
}

int cli_read(int argc, char **argv)
{
	char name[256], shown[CLI_SHOWN_MAX], what[CLI_SHOWN_MAX + 8];
	const char *file = NULL;
	struct cli_opts o;
	shmpipe_options so;
	struct progress pg;
	shmpipe_reader *r;
	shmpipe_info info = {0};
	struct stat st;
	int out = STDOUT_FILENO, made_file = 0, err;
	size_t chunk;
	ssize_t n;

	n = cli_parse_opts(argc, argv, "create size records mode timeout quiet progress", &o);
	if (n < 0)
		return n == CLI_HELP_SHOWN ? CLI_OK : CLI_USAGE;
	if (n < 1)
		return cli_usage("read", "no pipe NAME given");
	if (n > 2)
		return cli_usage("read", "too many operands ('%s')", argv[3]);
	if (cli_name(argv[1], name, sizeof(name)) < 0)
		return cli_bad_name("read", argv[1]);
	cli_shown(shown, sizeof(shown), name);
	if (!o.create && (o.size || o.records || o.mode))
		return cli_usage("read", "--size, --records and --mode go with --create");
	if (o.records && o.size && o.size < RECORDS_MIN_SIZE)
		return cli_usage("read", "--records needs a ring of at least %d bytes (--size)",
				 RECORDS_MIN_SIZE);
	if ((n < 2 || strcmp(argv[2], "-") == 0) && cli_std_closed(STDOUT_FILENO))
		return cli_usage("read", "standard output is closed");
	if (cli_check_kind("read", name) != 0)
		return CLI_USAGE;
	snprintf(what, sizeof(what), "read %s", shown);
	/* A missing pipe is bad input: say so before creating an output file. */
	if (!o.create) {
		err = cli_inspect(name, &info);
		if (err == -ENOENT || err == -EPROTO || err == -EACCES || err == -ELOOP ||
		    err == -EISDIR)
			return cli_usage("read", "%s: %s", shown, attach_why(err, 0));
		/* Broadcast: the read side is open once one reader came; ask each place. */
		if (err == 0 && info.readers > 1 && all_places_taken(name, info.readers))
			return cli_usage("read", "%s: %s (%u readers)", shown, places_taken,
					 info.readers);
		if (err == 0 && info.readers <= 1 && info.reader.state != SHMPIPE_END_ABSENT)
			return cli_usage("read", "%s: %s", shown, attach_why(-EBUSY, 0));
	}
	if (n == 2 && strcmp(argv[2], "-") != 0) {
		file = argv[2];
		/*
		 * Truncated only once the end is ours, and removed again if we
		 * made it and cannot attach: a refused read changes no file.
		 */
		out = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		made_file = out >= 0;
		if (out < 0 && errno == EEXIST)
			out = open(file, O_WRONLY | O_CLOEXEC);
		if (out < 0)
			return cli_usage("read", "cannot open '%s': %s", file, strerror(errno));
	}

	cli_guard_signals();
	cli_block_signals(1);
	if (o.create) {
		cli_options_for_create(&o, &so);
		err = shmpipe_reader_create(&r, name, &so);
	} else {
		err = shmpipe_reader_open(&r, name);
	}
	if (err < 0) {
		cli_block_signals(0);
		if (made_file)
			unlink(file); /* nothing half-created: not even the output */
		if (err == -EBUSY && info.readers > 1)
			return cli_usage("read", "%s: %s (%u readers)", shown, places_taken,
					 info.readers);
		if (attach_status(err) == CLI_USAGE)
			return cli_usage("read", "%s: %s", shown, attach_why(err, 0));
		cli_error("%s: %s", what, shmpipe_strerror(err));
		return CLI_FAILED;
	}
	cli_remember_name(name, shmpipe_reader_fd(r));
	cli_block_signals(0);
	shmpipe_reader_set_timeout(r, o.timeout_ms);
	if (out != STDOUT_FILENO && fstat(out, &st) == 0 && S_ISREG(st.st_mode) &&
	    ftruncate(out, 0) < 0) {
		cli_error("%s: truncating %s: %s", what, file, strerror(errno));
		cli_forget_name();
		shmpipe_reader_close(r);
		return CLI_FAILED;
	}

	progress_start(&pg, o.quiet, o.progress, NULL, r, 1);
	/* Until the end of the stream (0) or an error (< 0). */
	chunk = drain_chunk(r, o.create ? o.records : (info.flags & SHMPIPE_RECORDS) != 0);
	do
		n = shmpipe_read_to_fd(r, out, chunk);
	while (n > 0);
	progress_stop(&pg);
	/* Done either way: the name has no more use. */
	cli_forget_name();
	err = (int)n;
	if (err == -ECONNRESET)
		cli_error("%s: writer died without closing; output truncated", what);
	else if (err == -ETIMEDOUT)
		cli_error("%s: timed out waiting for data", what);
	else if (err < 0 && ring_error(err))
		cli_error("%s: %s", what, shmpipe_strerror(err));
	else if (err < 0)
		cli_error("%s: writing %s: %s", what, file ? file : "standard output",
			  shmpipe_strerror(err));
	shmpipe_reader_close(r);
	if (out != STDOUT_FILENO && close(out) < 0 && err == 0) {
		cli_error("%s: writing %s: %s", what, file, strerror(errno));
		return CLI_FAILED;
	}
	return err < 0 ? CLI_FAILED : CLI_OK;
}

/* ---- buffer ------------------------------------------------------------- */

struct feeder {
	shmpipe_writer *w;
	ssize_t ret; /* 0 at the end of the input, or the error that stopped it */
};

/* The input side of buffer: standard input into the ring, then end of stream. */
static void *feed(void *arg)
{
	struct feeder *f = arg;
	ssize_t n;

	do
		n = shmpipe_write_from_fd(f->w, STDIN_FILENO, 0);
	while (n > 0);
	f->ret = n;
	/* After an input error the stream still ends: what came is passed on. */
	shmpipe_writer_close(f->w);
	return NULL;
}

int cli_buffer(int argc, char **argv)
{
	struct cli_opts o;
	shmpipe_options so;
	struct progress pg;
	struct feeder f;
	shmpipe_reader *r;
	pthread_t t;
	size_t chunk;
	ssize_t n;
	int err;

	n = cli_parse_opts(argc, argv, "size quiet progress", &o);
	if (n < 0)
		return n == CLI_HELP_SHOWN ? CLI_OK : CLI_USAGE;
	if (n > 0)
		return cli_usage("buffer", "no operands expected ('%s')", argv[1]);
	if (cli_std_closed(STDIN_FILENO))
		return cli_usage("buffer", "standard input is closed");
	if (cli_std_closed(STDOUT_FILENO))
		return cli_usage("buffer", "standard output is closed");
	memset(&so, 0, sizeof(so));
	so.capacity = o.size ? (size_t)o.size : BUFFER_DEFAULT_SIZE;
	err = shmpipe_pair(&f.w, &r, &so);
	if (err < 0) {
		cli_error("buffer: cannot make a ring of %llu bytes: %s",
			  (unsigned long long)so.capacity, shmpipe_strerror(err));
		return CLI_FAILED;
	}
	f.ret = 0;
	err = pthread_create(&t, NULL, feed, &f);
	if (err != 0) {
		cli_error("buffer: cannot start a thread: %s", strerror(err));
		return CLI_FAILED;
	}
	/* The reader's counters: its handle lives until after progress_stop. */
	progress_start(&pg, o.quiet, o.progress, NULL, r, 1);
	chunk = drain_chunk(r, 0);
	do
		n = shmpipe_read_to_fd(r, STDOUT_FILENO, chunk);
	while (n > 0);
	progress_stop(&pg);
	/* A writer still feeding is woken with -EPIPE and stops. */
	shmpipe_reader_close(r);
	pthread_join(t, NULL);
	if (n < 0) {
		cli_error("buffer: writing standard output: %s", shmpipe_strerror((int)n));
		return CLI_FAILED;
	}
	if (f.ret < 0) {
		cli_error("buffer: reading standard input: %s", shmpipe_strerror((int)f.ret));
		return CLI_FAILED;
	}
	return CLI_OK;
}
