/* SPDX-License-Identifier: MIT */
/*
 * What the parts of the shmpipe program share: exit statuses, messages,
 * option values, human units, and the commands themselves.
 */
#ifndef SHMPIPE_CLI_H
#define SHMPIPE_CLI_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "shmpipe.h"

/* Exit statuses, as the manual page and --help document them. */
#define CLI_OK	   0
#define CLI_FAILED 1 /* a runtime failure: peer died, EPIPE, I/O error, timeout */
#define CLI_USAGE  2 /* bad usage or arguments; nothing was created or changed */

/* Everything any command accepts; each command takes what applies to it. */
struct cli_opts {
	uint64_t size;	 /* ring capacity in bytes, 0 = the command's default */
	int records;	 /* --records */
	int open;	 /* write --open: take the write end of an existing pipe */
	int create;	 /* read --create: create the pipe and take the read end */
	unsigned mode;	 /* --mode: permission bits of a new pipe, 0 = 0600 */
	int timeout_ms;	 /* --timeout, -1 = wait forever */
	int quiet;	 /* --quiet: no progress line */
	int progress;	 /* --progress: a progress line even if stderr is no terminal */
	int watch;	 /* stat --watch */
	int json;	 /* stat/ls --json */
	int interval_ms; /* stat --interval */
	int force;	 /* rm --force */
	int readers;	 /* write --readers: readers at once, 0 = not given (one) */
	int share;	 /* write --share: each record to one of the readers */
	int reopen;	 /* write --reopen: SHMPIPE_REOPEN */
	/* forward */
	const char *stream;  /* --stream: the JetStream stream's name */
	const char *durable; /* --durable: the pull consumer's name */
	const char *creds;   /* --creds: a credentials file */
	const char *tls_ca;  /* --tls-ca: the CA certificates file */
	int tls;	     /* --tls */
	int replicas;	     /* --replicas, with --create */
	int window;	     /* --window: messages in flight */
	uint64_t chunk;	     /* --chunk: the largest message of a byte stream */
};

/* The smallest record ring the library makes: a frame and 8 bytes of payload. */
#define RECORDS_MIN_SIZE 16

/* The options of a pipe that write (or read --create, forward) creates. */
int cli_options_for_create(const struct cli_opts *o, shmpipe_options *so);

/* "shmpipe: <message>" on stderr, one line. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * For bad input: "shmpipe: <message>", the command's usage line and a hint,
 * on stderr. Returns CLI_USAGE for the caller to exit with.
 */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Whether standard descriptor fd (0, 1 or 2) was closed when the program
 * started. It is /dev/null now, so that nothing else can take its number;
 * a command that would read or write through it refuses to run instead.
 */
int cli_std_closed(int fd);

/* The one-line synopsis of a command ("write", "read", ...), or NULL. */
const char *cli_synopsis(const char *cmd);

/*
 * Checks a pipe name and writes it in the form the library takes into buf
 * (a leading '/' may be left out on the command line). Returns 0 or -EINVAL.
 */
int cli_name(const char *arg, char *buf, size_t len);

/*
 * For a NAME that exists and is not a regular file (a symbolic link, a
 * directory, a FIFO...): "not a shmpipe", before the library opens it and
 * says less (ELOOP, EISDIR, EINVAL), or waits forever for a FIFO's writer.
 * Returns 0, or CLI_USAGE after the message.
 */
int cli_check_kind(const char *cmd, const char *name);

/*
 * shmpipe_inspect of a NAME given on the command line. A pipe that is
 * being created is not one (-EPROTO) until its creator has set it up: as
 * opening an end does, this gives it a moment (200 ms) first.
 */
int cli_inspect(const char *name, shmpipe_info *out);

/* For a NAME that cli_name refused: the message, escaped. Returns CLI_USAGE. */
int cli_bad_name(const char *cmd, const char *arg);

/*
 * A name fit to print on a terminal, in buf (CLI_SHOWN_MAX bytes hold any
 * pipe's): a backslash as \\, a newline, tab or carriage return as \n, \t,
 * \r, and as \xHH each other byte of a control character (C0, DEL, C1,
 * and Unicode's line separators and direction controls), each byte that is
 * not part of valid UTF-8, and each byte from 0x80 up if the locale's
 * character set is not UTF-8. A longer name is cut at a whole escape.
 * Returns buf.
 */
#define CLI_SHOWN_MAX 1024
const char *cli_shown(char *buf, size_t len, const char *name);

/*
 * A name as a JSON string, quotes included, on f: always valid JSON in
 * UTF-8. Control characters (as cli_shown has them) are escaped as \uXXXX,
 * and each byte that is not part of valid UTF-8 is replaced by U+FFFD: a
 * name with U+FFFD in it may not be the name as it is.
 */
void cli_print_json_name(FILE *f, const char *name);

/* Human units (units.c). Each returns 0, or -EINVAL for a bad value. */
int cli_parse_size(const char *s, uint64_t *out);	    /* 64K, 16M, 1G, 1T, bytes */
int cli_parse_duration(const char *s, int *out_ms);	    /* 250ms, 10s, 5m, 1h, seconds */
void cli_format_bytes(char *buf, size_t len, double bytes); /* "1.23 GiB" */
void cli_format_rate(char *buf, size_t len, double bytes_per_s);
void cli_format_duration(char *buf, size_t len, double seconds); /* "1:02:03" */
double cli_now(void);						 /* monotonic seconds */

/*
 * The name a transfer is attached through, removed by cli_forget_name when
 * that end fails, is interrupted, or (the reader) finishes. The signal
 * handlers set up by cli_guard_signals remove it too, so that an
 * interrupted transfer leaves nothing behind; only if it still names the
 * object this process attached to (the same device and inode), never a
 * newer pipe of the same name.
 */
void cli_remember_name(const char *name, int fd);
/*
 * Another object (the far forward's state beside its pipe) that goes with
 * the remembered name: removed with it, and only when it is (if it still
 * is the object there now).
 */
void cli_remember_companion(const char *name);
/* Set while a progress line is open on a terminal: a fatal signal ends it. */
extern volatile sig_atomic_t cli_line_open;
void cli_forget_name(void);
void cli_guard_signals(void);
void cli_block_signals(int block);

int cli_write(int argc, char **argv);
int cli_read(int argc, char **argv);
int cli_buffer(int argc, char **argv);
int cli_stat(int argc, char **argv);
int cli_ls(int argc, char **argv);
int cli_rm(int argc, char **argv);
int cli_forward(int argc, char **argv);

/*
 * Parses the options of command cmd (argv[0]) that are listed in `accept`
 * (their long names, space-separated) into *o. On success returns the number
 * of operands, which it gathers at argv[1] onwards; on bad input prints the usage and returns
 * -CLI_USAGE; for --help prints the command's help and returns CLI_HELP_SHOWN.
 */
#define CLI_HELP_SHOWN (-100)
int cli_parse_opts(int argc, char **argv, const char *accept, struct cli_opts *o);

#endif /* SHMPIPE_CLI_H */
