/* SPDX-License-Identifier: MIT */
/*
 * shmpipe(1): the command-line face of the library. This file holds what
 * every command shares: dispatch, help and usage messages, option parsing,
 * standard descriptors the program was started without, and the signal
 * guard that removes a half-done pipe's name. The commands live in
 * transfer.c (write, read, buffer) and observe.c (stat, ls, rm); what is
 * done to their NAME operands, in names.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *synopsis; /* options and operands, after "shmpipe NAME" */
	const char *help;     /* what it does and its options */
};

static const struct command commands[] = {
    {"write", cli_write,
     "[--size SIZE] [--records] [--mode MODE] [--readers N [--share]] [--reopen] "
     "[--open] [--timeout TIME] [--quiet|--progress] NAME [FILE]",
     "Create the pipe NAME and copy standard input (or FILE) into it. A full ring\n"
     "blocks the copy until the reader makes room; the end of the input is the end\n"
     "of the stream. The data waits in the ring if no reader has come yet. With\n"
     "--readers N, N 'shmpipe read NAME' take it at once and each gets every byte;\n"
     "the copy waits for the slowest of them.\n"
     "  -s, --size SIZE     ring capacity: 64K, 16M, 1G ... (default 1M)\n"
     "  -r, --records       record mode: each read(2) of the input is one record\n"
     "  -m, --mode MODE     permission bits of the new pipe, octal (default 600)\n"
     "  -n, --readers N     broadcast to N readers (1 to 64): wait (up to --timeout)\n"
     "                      until N have come; each then gets the whole stream\n"
     "  -S, --share         with --readers: deal the records out instead, each to\n"
     "                      one reader, the first free (implies --records)\n"
     "      --reopen        a reader that dies leaves its end to the next one, which\n"
     "                      goes on where it stopped (shmpipe forward started again)\n"
     "  -o, --open          take the write end of an existing pipe instead\n"
     "  -t, --timeout TIME  fail if the ring stays full this long: 500ms, 10s, 5m\n"},
    {"read", cli_read,
     "[--create [--size SIZE] [--records] [--mode MODE]] [--timeout TIME] [--quiet|--progress] "
     "NAME [FILE]",
     "Take the read end of the pipe NAME and copy what comes to standard output (or\n"
     "FILE, created or truncated), until the writer ends the stream. Removes the\n"
     "name when done. If the writer dies without ending the stream, says so and\n"
     "exits 1: the output is truncated. On a pipe of write --readers N it takes\n"
     "one of the N readers' places.\n"
     "  -c, --create        create the pipe (the writer then uses write --open)\n"
     "  -s, --size SIZE     with --create: ring capacity (default 1M)\n"
     "  -r, --records       with --create: record mode, one write(2) per record\n"
     "  -m, --mode MODE     with --create: permission bits, octal (default 600)\n"
     "  -t, --timeout TIME  fail if no data comes for this long: 500ms, 10s, 5m\n"},
    {"buffer", cli_buffer, "[--size SIZE] [--quiet|--progress]",
     "Copy standard input to standard output through a ring of SIZE bytes, with\n"
     "one thread on each side: producer | shmpipe buffer --size 256M | consumer.\n"
     "  -s, --size SIZE     ring capacity (default 16M)\n"},
    {"stat", cli_stat, "[--watch] [--interval TIME] [--json] NAME",
     "Show the pipe's six counters, its queue depth, its current rate, and who\n"
     "holds each end (pid, and whether it is running, asleep, closed or dead).\n"
     "  -w, --watch         refresh until the pipe goes away (in place on a terminal)\n"
     "  -i, --interval TIME sampling period for the rate and --watch (default 1s)\n"
     "  -j, --json          one JSON object (one per line with --watch)\n"},
    {"ls", cli_ls, "[--json]",
     "List the pipes that exist, with capacity, queue depth and both ends' holders.\n"
     "  -j, --json          a JSON array\n"},
    {"forward", cli_forward,
     "[--create [--replicas N]] [--stream S] [--durable D] [--window N] [--chunk SIZE]\n"
     "       [--size SIZE] [--records] [--mode MODE] [--open] [--creds FILE] [--tls]\n"
     "       [--tls-ca FILE] [--timeout TIME] [--quiet|--progress]\n"
     "       NAME nats://HOST:PORT[,HOST:PORT...]/SUBJECT | nats://.../SUBJECT NAME",
     "Bridge a pipe and a NATS JetStream stream, in the direction of the operands.\n"
     "NAME then URL: take the read end of NAME (as read does) and publish each\n"
     "record, or each chunk of a byte stream, as one message; a message leaves the\n"
     "ring only once JetStream has acknowledged it, so a full or unreachable server\n"
     "fills the ring and blocks the writer. URL then NAME: create NAME and take its\n"
     "write end (as write does); a durable consumer fetches what the ring has room\n"
     "for, and each message is acknowledged once it is in the ring. The end of the\n"
     "stream crosses as a last message: the far writer closes, or, if the near\n"
     "writer died or aborted, aborts. Reconnects with backoff while the servers\n"
     "are away.\n"
     "  -c, --create        create the stream and the consumer, if missing\n"
     "      --replicas N    with --create: the stream's replicas (default 1)\n"
     "      --stream S      the stream (default SHMPIPE_ and the subject, . as _)\n"
     "      --durable D     the durable consumer (default the stream and _FWD); the\n"
     "                      near side holds back while it has four windows\n"
     "                      unacknowledged\n"
     "      --window N      messages unacknowledged at once (default 256)\n"
     "      --chunk SIZE    a byte stream's largest message (default 64K)\n"
     "  -s, --size SIZE     URL to NAME: ring capacity (default 1M)\n"
     "  -r, --records       URL to NAME: record mode, one record per message\n"
     "  -m, --mode MODE     URL to NAME: permission bits, octal (default 600)\n"
     "  -o, --open          URL to NAME: take the write end of an existing pipe\n"
     "      --creds FILE    NATS credentials (JWT and seed)\n"
     "      --tls           TLS to the servers (also for tls:// addresses)\n"
     "      --tls-ca FILE   the certificates to trust for TLS\n"
     "  -t, --timeout TIME  fail if the servers stay unreachable at the start, or\n"
     "                      the ring stays empty or full, this long\n"
     "Exit status also: 3 the servers could not be reached within --timeout, 4 no\n"
     "such stream or consumer (without --create), 5 authorization refused.\n"},
    {"rm", cli_rm, "[--force] NAME...",
     "Remove pipes' names, as unlink(2) does: ends attached keep working. Refuses\n"
     "shared memory objects that are not shmpipes.\n"
     "  -f, --force         no error for a name that does not exist\n"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char common_help[] =
    "  -q, --quiet         no progress line\n"
    "  -p, --progress      a progress line even when standard error is no terminal\n";

static const char exit_help[] =
    "NAME is a POSIX shared memory name such as /backup (the leading / may be left\n"
    "out); the pipe is the file /dev/shm/backup. SIZE takes K, M, G, T (powers of\n"
    "1024). Exit status: 0 success, 1 failure during the transfer (the peer died\n"
    "or went away, an I/O error, a timeout), 2 bad usage or arguments (unknown\n"
    "command or option, bad size or name, no such pipe, name or end taken, a pipe\n"
    "not this user's to open or remove, a FILE that cannot be opened, standard\n"
    "input or output needed and closed); nothing is created or removed then.\n";

static const struct command *find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

const char *cli_synopsis(const char *cmd)
{
	const struct command *c = find(cmd);

	return c ? c->synopsis : NULL;
}

void cli_error(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* One write, so that the line is not torn by another writer of stderr. */
	fprintf(stderr, "shmpipe: %s\n", msg);
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
	const struct command *c = cmd ? find(cmd) : NULL;
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c)
		fprintf(stderr, "shmpipe: %s: %s\nusage: shmpipe %s %s\nTry 'shmpipe %s --help'.\n",
			cmd, msg, c->name, c->synopsis, c->name);
	else
		fprintf(stderr,
			"shmpipe: %s\nusage: shmpipe write|read|buffer|stat|ls|rm [OPTIONS] ...\n"
			"Try 'shmpipe --help'.\n",
			msg);
	return CLI_USAGE;
}

static void help(FILE *f)
{
	fprintf(f, "usage: shmpipe COMMAND [OPTIONS] ...\n\n"
		   "A pipe in shared memory with hard backpressure, between processes.\n\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  shmpipe %s %s\n", commands[i].name, commands[i].synopsis);
	fprintf(f,
		"\nwrite, read and buffer show a progress line when standard error is a\n"
		"terminal:\n%s\n%s\n"
		"Example, in two shells:\n"
		"  tar c dir | shmpipe write /backup\n"
		"  shmpipe read /backup | gzip > dir.tar.gz\n\n"
		"'shmpipe COMMAND --help' describes a command; man shmpipe has it all.\n",
		common_help, exit_help);
}

static void command_help(const struct command *c)
{
	printf("usage: shmpipe %s %s\n\n%s", c->name, c->synopsis, c->help);
	if (strcmp(c->name, "write") == 0 || strcmp(c->name, "read") == 0 ||
	    strcmp(c->name, "buffer") == 0)
		fputs(common_help, stdout);
	printf("  -h, --help          this help\n\n%s", exit_help);
}

/* Options with a long name only. */
enum {
	OPT_STREAM = 256,
	OPT_DURABLE,
	OPT_REPLICAS,
	OPT_WINDOW,
	OPT_CHUNK,
	OPT_CREDS,
	OPT_TLS,
	OPT_TLS_CA,
	OPT_REOPEN,
};

/* A whole number from lo to hi, or -1. */
static long parse_count(const char *s, long lo, long hi)
{
	char *end;
	long k;

	errno = 0;
	k = strtol(s, &end, 10);
	if (*s < '0' || *s > '9' || *end || errno || k < lo || k > hi)
		return -1;
	return k;
}

int cli_parse_opts(int argc, char **argv, const char *accept, struct cli_opts *o)
{
	static const struct option all[] = {
	    {"size", required_argument, NULL, 's'},
	    {"records", no_argument, NULL, 'r'},
	    {"mode", required_argument, NULL, 'm'},
	    {"open", no_argument, NULL, 'o'},
	    {"create", no_argument, NULL, 'c'},
	    {"timeout", required_argument, NULL, 't'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"progress", no_argument, NULL, 'p'},
	    {"watch", no_argument, NULL, 'w'},
	    {"interval", required_argument, NULL, 'i'},
	    {"json", no_argument, NULL, 'j'},
	    {"force", no_argument, NULL, 'f'},
	    {"readers", required_argument, NULL, 'n'},
	    {"share", no_argument, NULL, 'S'},
	    {"stream", required_argument, NULL, OPT_STREAM},
	    {"durable", required_argument, NULL, OPT_DURABLE},
	    {"replicas", required_argument, NULL, OPT_REPLICAS},
	    {"window", required_argument, NULL, OPT_WINDOW},
	    {"chunk", required_argument, NULL, OPT_CHUNK},
	    {"creds", required_argument, NULL, OPT_CREDS},
	    {"tls", no_argument, NULL, OPT_TLS},
	    {"tls-ca", required_argument, NULL, OPT_TLS_CA},
	    {"reopen", no_argument, NULL, OPT_REOPEN},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct option mine[sizeof(all) / sizeof(all[0])];
	char shorts[64] = "-:";
	const char *cmd = argv[0];
	int n = 0, c, operands = 0;
	char **ops = argv + 1;

	/* Only this command's options, so that others are "unknown" to getopt. */
	for (size_t i = 0; all[i].name; i++) {
		const char *p = accept;
		size_t l = strlen(all[i].name);

		/* A whole word of accept ("open" is not the end of "reopen"). */
		while ((p = strstr(p, all[i].name)) &&
		       !((p == accept || p[-1] == ' ') && (p[l] == ' ' || p[l] == '\0')))
			p += l;
		if (strcmp(all[i].name, "help") != 0 && !p)
			continue;
		mine[n++] = all[i];
		if (all[i].val < 128)
			snprintf(shorts + strlen(shorts), sizeof(shorts) - strlen(shorts), "%c%s",
				 all[i].val, all[i].has_arg ? ":" : "");
	}
	memset(&mine[n], 0, sizeof(mine[n]));
	memset(o, 0, sizeof(*o));
	o->timeout_ms = -1;
	o->interval_ms = 1000;
	/*
	 * Options may come before or after operands (GNU style); "-" in front
	 * hands operands back in order, and they are collected at argv[1...],
	 * over entries getopt has passed already.
	 */
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, shorts, mine, NULL)) != -1) {
		switch (c) {
		case 1: /* an operand, in order */
			ops[operands++] = optarg;
			break;
		case 's':
			if (cli_parse_size(optarg, &o->size) < 0)
				return -cli_usage(
				    cmd, "bad size '%s' (want 64K, 16M, 1G ... up to 1T)", optarg);
			break;
		case 'r':
			o->records = 1;
			break;
		case 'm': {
			char *end;
			unsigned long m = strtoul(optarg, &end, 8);

			if (!*optarg || *end || m == 0 || m > 0777)
				return -cli_usage(cmd, "bad mode '%s' (want octal bits like 600)",
						  optarg);
			o->mode = (unsigned)m;
			break;
		}
		case 'n': {
			char *end;
			unsigned long k;

			errno = 0;
			k = strtoul(optarg, &end, 10);
			if (optarg[0] < '0' || optarg[0] > '9' || *end || errno || k < 1 ||
			    k > SHMPIPE_READERS_MAX)
				return -cli_usage(cmd, "bad number of readers '%s' (want 1 to %d)",
						  optarg, SHMPIPE_READERS_MAX);
			o->readers = (int)k;
			break;
		}
		case 'S':
			o->share = 1;
			o->records = 1;
			break;
		case OPT_STREAM:
		case OPT_DURABLE:
			if (!*optarg || strpbrk(optarg, " \t\r\n.*>/\\") || strlen(optarg) > 200)
				return -cli_usage(cmd, "bad name '%s' (letters, digits, - and _)",
						  optarg);
			*(c == OPT_STREAM ? &o->stream : &o->durable) = optarg;
			break;
		case OPT_REPLICAS:
			o->replicas = (int)parse_count(optarg, 1, 5);
			if (o->replicas < 0)
				return -cli_usage(cmd, "bad number of replicas '%s' (want 1 to 5)",
						  optarg);
			break;
		case OPT_WINDOW:
			o->window = (int)parse_count(optarg, 1, 65536);
			if (o->window < 0)
				return -cli_usage(cmd, "bad window '%s' (want 1 to 65536 messages)",
						  optarg);
			break;
		case OPT_CHUNK:
			if (cli_parse_size(optarg, &o->chunk) < 0 || o->chunk == 0 ||
			    o->chunk > (64u << 20))
				return -cli_usage(cmd, "bad chunk size '%s' (want 1 to 64M)",
						  optarg);
			break;
		case OPT_CREDS:
			o->creds = optarg;
			break;
		case OPT_TLS:
			o->tls = 1;
			break;
		case OPT_TLS_CA:
			o->tls_ca = optarg;
			break;
		case OPT_REOPEN:
			o->reopen = 1;
			break;
		case 'o':
			o->open = 1;
			break;
		case 'c':
			o->create = 1;
			break;
		case 't':
			if (cli_parse_duration(optarg, &o->timeout_ms) < 0)
				return -cli_usage(cmd, "bad time '%s' (want 500ms, 10s, 5m, 1h)",
						  optarg);
			break;
		case 'i':
			if (cli_parse_duration(optarg, &o->interval_ms) < 0)
				return -cli_usage(cmd, "bad time '%s' (want 500ms, 10s, 5m, 1h)",
						  optarg);
			break;
		case 'q':
			o->quiet = 1;
			break;
		case 'p':
			o->progress = 1;
			break;
		case 'w':
			o->watch = 1;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'f':
			o->force = 1;
			break;
		case 'h':
			command_help(find(cmd));
			return CLI_HELP_SHOWN;
		case ':':
			return -cli_usage(cmd, "option '%s' needs a value", argv[optind - 1]);
		default:
			return -cli_usage(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	/* What followed "--" is operands too. */
	while (optind < argc)
		ops[operands++] = argv[optind++];
	if (o->quiet && o->progress)
		return -cli_usage(cmd, "--quiet and --progress contradict each other");
	return operands;
}

/* ---- the name of an unfinished transfer ---------------------------------- */

/*
 * Set once before the signal handlers may run and read by them: plain
 * storage written before the handlers are installed or while signals are
 * blocked, so a handler never sees it half-written.
 */
static char held_path[256];
static dev_t held_dev;
static ino_t held_ino;
static volatile sig_atomic_t held;

static char companion_path[256];
static dev_t companion_dev;
static ino_t companion_ino;
static volatile sig_atomic_t companion;

/* Async-signal-safe: stat(2) and unlink(2) only. */
static void unlink_if_ours(void)
{
	struct stat st;

	if (held && stat(held_path, &st) == 0 && st.st_dev == held_dev && st.st_ino == held_ino) {
		unlink(held_path);
		if (companion && stat(companion_path, &st) == 0 && st.st_dev == companion_dev &&
		    st.st_ino == companion_ino)
			unlink(companion_path);
	}
	held = 0;
	companion = 0;
}

void cli_remember_name(const char *name, int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return;
	/* Linux keeps POSIX shared memory objects as files in /dev/shm. */
	snprintf(held_path, sizeof(held_path), "/dev/shm%s", name);
	held_dev = st.st_dev;
	held_ino = st.st_ino;
	held = 1;
}

void cli_remember_companion(const char *name)
{
	struct stat st;

	cli_block_signals(1);
	snprintf(companion_path, sizeof(companion_path), "/dev/shm%s", name);
	if (held && stat(companion_path, &st) == 0) {
		companion_dev = st.st_dev;
		companion_ino = st.st_ino;
		companion = 1;
	}
	cli_block_signals(0);
}

void cli_forget_name(void)
{
	cli_block_signals(1);
	unlink_if_ours();
	cli_block_signals(0);
}

volatile sig_atomic_t cli_line_open;

static void on_signal(int sig)
{
	unlink_if_ours();
	/* The shell's next prompt must not land on the progress line. */
	if (cli_line_open && write(STDERR_FILENO, "\n", 1) < 0)
		(void)0;
	/* Die of the signal, as the shell expects of an interrupted program. */
	signal(sig, SIG_DFL);
	raise(sig);
}

static const int guarded[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT};

void cli_guard_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(guarded) / sizeof(guarded[0]); i++)
		sigaction(guarded[i], &sa, NULL);
}

void cli_block_signals(int block)
{
	sigset_t set;

	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(guarded) / sizeof(guarded[0]); i++)
		sigaddset(&set, guarded[i]);
	pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

/* ---- standard descriptors ----------------------------------------------- */

static int std_closed[3];

int cli_std_closed(int fd)
{
	return fd >= 0 && fd <= 2 && std_closed[fd];
}

/*
 * A program started with descriptor 0, 1 or 2 closed would give that number
 * to the next thing it opens: a pipe's shared memory, a socket, an output
 * FILE. Its standard input would then come from it, or its output, progress
 * and messages go into it. /dev/null takes each closed one first; the
 * commands that need one that was closed then refuse to run
 * (cli_std_closed). Returns 0, or -errno if /dev/null cannot be opened.
 */
static int fill_std(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		int nfd;

		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		/* The lowest free number: fd itself, as those below it are open. */
		nfd = open("/dev/null", O_RDWR);
		if (nfd < 0)
			return -errno;
		if (nfd != fd) {
			close(nfd);
			return -EBADF;
		}
		std_closed[fd] = 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const struct command *c;
	int err = fill_std();

	/* Only to know whether names may be printed as UTF-8 (names.c). */
	setlocale(LC_CTYPE, "");
	if (err < 0) {
		/* Said on standard error if that is open; nothing is safe to do. */
		cli_error("cannot open /dev/null: %s", strerror(-err));
		return CLI_FAILED;
	}
	if (argc < 2)
		return cli_usage(NULL, "no command given");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		if (argc > 2 && (c = find(argv[2])) != NULL) {
			command_help(c);
			return CLI_OK;
		}
		help(stdout);
		return CLI_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("shmpipe %s\n", shmpipe_version());
		return CLI_OK;
	}
	c = find(argv[1]);
	if (!c)
		return cli_usage(NULL, "unknown command '%s'", argv[1]);
	return c->run(argc - 1, argv + 1);
}
