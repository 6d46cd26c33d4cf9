/* SPDX-License-Identifier: MIT */
/*
 * stat, ls and rm: the commands that look at pipes from outside, through
 * shmpipe_inspect, without taking an end (and so without disturbing a
 * transfer).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define SHM_DIR "/dev/shm"

/* An end in words: running, asleep, closed, aborted, dead, or not taken yet. */
static const char *end_word(const shmpipe_end_info *e)
{
	if (e->state == SHMPIPE_END_ABSENT)
		return "absent";
	if (e->state == SHMPIPE_END_CLOSED)
		return "closed";
	if (e->state == SHMPIPE_END_ABORTED)
		return "aborted";
	if (!e->alive)
		return "dead";
	return e->asleep ? "asleep" : "running";
}

/*
 * A broadcast pipe's readers' places, as shmpipe_inspect_readers gives
 * them; n = 0 for a pipe with one reader (its reader is info.reader).
 */
struct places {
	unsigned n;
	shmpipe_reader_info p[SHMPIPE_READERS_MAX];
};

/* The places of the pipe that *in describes, if it is a broadcast one. */
static int read_places(const char *name, const shmpipe_info *in, struct places *pl)
{
	int n;

	pl->n = 0;
	if (in->readers <= 1)
		return 0;
	n = shmpipe_inspect_readers(name, pl->p, SHMPIPE_READERS_MAX);
	if (n < 0)
		return n;
	pl->n = (unsigned)n < SHMPIPE_READERS_MAX ? (unsigned)n : SHMPIPE_READERS_MAX;
	return 0;
}

/* Readers in a place now: open, and their process alive. */
static unsigned attached(const struct places *pl)
{
	unsigned k = 0;

	for (unsigned i = 0; i < pl->n; i++)
		k += pl->p[i].end.state == SHMPIPE_END_OPEN && pl->p[i].end.alive;
	return k;
}

static void json_end_fields(FILE *f, const shmpipe_end_info *e)
{
	static const char *const states[] = {"absent", "open", "closed", "aborted"};

	fprintf(f, "\"state\":\"%s\",\"pid\":%u,\"alive\":%s,\"asleep\":%s,\"status\":\"%s\"",
		states[e->state], e->pid, e->alive ? "true" : "false", e->asleep ? "true" : "false",
		end_word(e));
}

static void json_end(FILE *f, const char *key, const shmpipe_end_info *e)
{
	fprintf(f, "\"%s\":{", key);
	json_end_fields(f, e);
	fputc('}', f);
}

/* "reader_places": every place, in order, each an end with its position. */
static void json_places(FILE *f, const struct places *pl)
{
	fputs(",\"reader_places\":[", f);
	for (unsigned i = 0; i < pl->n; i++) {
		const shmpipe_reader_info *r = &pl->p[i];

		fprintf(f, "%s{\"place\":%u,", i ? "," : "", i);
		json_end_fields(f, &r->end);
		fprintf(f, ",\"read_index\":%llu,\"consumed\":%llu,\"consumer_waits\":%llu}",
			(unsigned long long)r->read_index, (unsigned long long)r->consumed,
			(unsigned long long)r->consumer_waits);
	}
	fputc(']', f);
}

static int percent(const shmpipe_stats *s)
{
	uint64_t depth = s->write_index - s->read_index;

	return s->capacity ? (int)((depth * 100 + s->capacity / 2) / s->capacity) : 0;
}

/*
 * One pipe as JSON; rate < 0 leaves the rate out (ls). After the fields of
 * old, "readers", and for a broadcast pipe its "reader_places".
 */
static void json_pipe(FILE *f, const char *name, const shmpipe_info *in, const struct places *pl,
		      double rate)
{
	const shmpipe_stats *s = &in->stats;

	fputs("{\"name\":", f);
	cli_print_json_name(f, name);
	fprintf(f,
		",\"records\":%s,\"reopen\":%s,\"capacity\":%llu,\"write_index\":%llu,\"read_"
		"index\":%llu,"
		"\"produced\":%llu,\"consumed\":%llu,\"producer_waits\":%llu,"
		"\"consumer_waits\":%llu,\"queue_bytes\":%llu,\"queue_percent\":%d,",
		(in->flags & SHMPIPE_RECORDS) ? "true" : "false",
		(in->flags & SHMPIPE_REOPEN) ? "true" : "false", (unsigned long long)s->capacity,
		(unsigned long long)s->write_index, (unsigned long long)s->read_index,
		(unsigned long long)s->produced, (unsigned long long)s->consumed,
		(unsigned long long)s->producer_waits, (unsigned long long)s->consumer_waits,
		(unsigned long long)(s->write_index - s->read_index), percent(s));
	if (rate >= 0)
		fprintf(f, "\"rate_bytes_per_s\":%.0f,", rate);
	json_end(f, "writer", &in->writer);
	fputc(',', f);
	json_end(f, "reader", &in->reader);
	fprintf(f, ",\"readers\":%u", in->readers ? in->readers : 1);
	if (pl->n)
		json_places(f, pl);
	fputc('}', f);
}

static void text_end(FILE *f, const char *key, const shmpipe_end_info *e)
{
	if (e->state == SHMPIPE_END_ABSENT)
		fprintf(f, "%-9s not taken yet\n", key);
	else if (e->state == SHMPIPE_END_OPEN && !e->alive)
		fprintf(f, "%-9s pid %u, dead: it exited without closing\n", key, e->pid);
	else
		fprintf(f, "%-9s pid %u, %s\n", key, e->pid, end_word(e));
}

/*
 * reader 2  pid 123, running, at 1.20 GiB (1288490188 bytes) in 42 reads, waits 3
 * for each place that was ever taken.
 */
static void text_places(FILE *f, const shmpipe_info *in, const struct places *pl)
{
	const int rec = (in->flags & SHMPIPE_RECORDS) != 0;
	unsigned k = attached(pl);

	if (k)
		fprintf(f, "%-9s %u places, %u taken\n", "readers", pl->n, k);
	else
		fprintf(f, "%-9s %u places, none taken\n", "readers", pl->n);
	for (unsigned i = 0; i < pl->n; i++) {
		const shmpipe_reader_info *r = &pl->p[i];
		char key[24], at[32];

		if (r->end.state == SHMPIPE_END_ABSENT)
			continue;
		snprintf(key, sizeof(key), "reader %u", i);
		cli_format_bytes(at, sizeof(at), (double)r->read_index);
		fprintf(f, "%-9s pid %u, %s, at %s (%llu bytes) in %llu %s, waits %llu\n", key,
			r->end.pid,
			r->end.state == SHMPIPE_END_OPEN && !r->end.alive
			    ? "dead: it exited without closing"
			    : end_word(&r->end),
			at, (unsigned long long)r->read_index, (unsigned long long)r->consumed,
			rec ? "records" : "reads", (unsigned long long)r->consumer_waits);
	}
}

static void text_pipe(FILE *f, const char *name, const shmpipe_info *in, const struct places *pl,
		      double rate)
{
	const shmpipe_stats *s = &in->stats;
	const int rec = (in->flags & SHMPIPE_RECORDS) != 0;
	char a[32], b[32], c[32], d[32], shown[CLI_SHOWN_MAX];

	cli_format_bytes(a, sizeof(a), (double)s->capacity);
	cli_format_bytes(b, sizeof(b), (double)s->write_index);
	cli_format_bytes(c, sizeof(c), (double)s->read_index);
	cli_format_bytes(d, sizeof(d), (double)(s->write_index - s->read_index));
	fprintf(f, "%-9s %s (%s%s)\n", "pipe", cli_shown(shown, sizeof(shown), name),
		rec ? "records" : "stream",
		(in->flags & SHMPIPE_REOPEN) ? ", an end left by a death is taken again" : "");
	fprintf(f, "%-9s %s (%llu bytes)\n", "capacity", a, (unsigned long long)s->capacity);
	fprintf(f, "%-9s %s (%llu bytes) in %llu %s\n", "written", b,
		(unsigned long long)s->write_index, (unsigned long long)s->produced,
		rec ? "records" : "writes");
	/* Broadcast: the slowest reader's position, everyone's reads. */
	fprintf(f, "%-9s %s (%llu bytes)%s in %llu %s\n", "read", c,
		(unsigned long long)s->read_index, pl->n ? " by the slowest reader" : "",
		(unsigned long long)s->consumed, rec ? "records" : "reads");
	fprintf(f, "%-9s %s (%llu bytes), %d%% full\n", "queue", d,
		(unsigned long long)(s->write_index - s->read_index), percent(s));
	cli_format_rate(a, sizeof(a), rate);
	fprintf(f, "%-9s %s\n", "rate", a);
	fprintf(f, "%-9s producer %llu, consumer %llu\n", "waits",
		(unsigned long long)s->producer_waits, (unsigned long long)s->consumer_waits);
	text_end(f, "writer", &in->writer);
	if (pl->n)
		text_places(f, in, pl);
	else
		text_end(f, "reader", &in->reader);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int cli_stat(int argc, char **argv)
{
	char name[256], shown[CLI_SHOWN_MAX];
	struct cli_opts o;
	shmpipe_info prev, cur;
	struct places pl;
	double t_prev, t_cur, rate;
	int n, err, tty, sample;

	n = cli_parse_opts(argc, argv, "watch interval json", &o);
	if (n < 0)
		return n == CLI_HELP_SHOWN ? CLI_OK : CLI_USAGE;
	if (n < 1)
		return cli_usage("stat", "no pipe NAME given");
	if (n > 1)
		return cli_usage("stat", "too many operands ('%s')", argv[2]);
	if (cli_std_closed(STDOUT_FILENO))
		return cli_usage("stat", "standard output is closed");
	if (cli_name(argv[1], name, sizeof(name)) < 0)
		return cli_bad_name("stat", argv[1]);
	cli_shown(shown, sizeof(shown), name);
	if (cli_check_kind("stat", name) != 0)
		return CLI_USAGE;
	err = cli_inspect(name, &prev);
	if (err == -ENOENT)
		return cli_usage("stat", "%s: no such pipe", shown);
	if (err == -EPROTO || err == -ELOOP || err == -EISDIR)
		return cli_usage("stat", "%s: not a shmpipe (or not one this version understands)",
				 shown);
	if (err == -EACCES)
		return cli_usage("stat", "%s: permission denied", shown);
	if (err < 0) {
		cli_error("stat %s: %s", shown, shmpipe_strerror(err));
		return CLI_FAILED;
	}
	t_prev = cli_now();
	tty = isatty(STDOUT_FILENO);
	/* One look needs two samples for a rate; a short one, not a whole interval. */
	sample = o.watch || o.interval_ms < 200 ? o.interval_ms : 200;
	for (int first = 1;; first = 0) {
		sleep_ms(sample);
		err = shmpipe_inspect(name, &cur);
		t_cur = cli_now();
		if (err == 0)
			err = read_places(name, &cur, &pl);
		if (err == -ENOENT && o.watch && !first) {
			/* The reader removes the name when it is done. */
			if (!o.json)
				printf("%s: gone\n", shown);
			return CLI_OK;
		}
		if (err < 0) {
			cli_error("stat %s: %s", shown,
				  err == -ENOENT ? "the pipe went away" : shmpipe_strerror(err));
			return CLI_FAILED;
		}
		rate = (double)(cur.stats.read_index - prev.stats.read_index) / (t_cur - t_prev);
		if (cur.stats.read_index < prev.stats.read_index)
			rate = 0; /* a new pipe of the same name */
		if (o.json) {
			json_pipe(stdout, name, &cur, &pl, rate);
			fputc('\n', stdout);
		} else {
			/* Like top: home, clear, redraw; on a file, one block after another. */
			if (o.watch && tty)
				fputs("\033[H\033[2J", stdout);
			else if (!first)
				fputc('\n', stdout);
			text_pipe(stdout, name, &cur, &pl, rate);
		}
		fflush(stdout);
		if (!o.watch)
			return CLI_OK;
		prev = cur;
		t_prev = t_cur;
	}
}

int cli_inspect(const char *name, shmpipe_info *out)
{
	int err;

	/* The library's SHMPIPE__INIT_WAIT_MS, which shmpipe_inspect does not wait. */
	for (int i = 0;; i++) {
		err = shmpipe_inspect(name, out);
		if (err != -EPROTO || i == 20)
			return err;
		sleep_ms(10);
	}
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int cli_ls(int argc, char **argv)
{
	struct cli_opts o;
	struct places pl;
	char **names = NULL;
	size_t count = 0, cap = 0, shown = 0;
	struct dirent *e;
	DIR *d;
	int n;

	n = cli_parse_opts(argc, argv, "json", &o);
	if (n < 0)
		return n == CLI_HELP_SHOWN ? CLI_OK : CLI_USAGE;
	if (n > 0)
		return cli_usage("ls", "no operands expected ('%s')", argv[1]);
	if (cli_std_closed(STDOUT_FILENO))
		return cli_usage("ls", "standard output is closed");
	d = opendir(SHM_DIR);
	if (!d) {
		cli_error("ls: %s: %s", SHM_DIR, strerror(errno));
		return CLI_FAILED;
	}
	while ((e = readdir(d)) != NULL) {
		/*
		 * Regular files only: opening a FIFO someone made there would
		 * block, and nothing else can be a pipe.
		 */
		if (e->d_name[0] == '.' || strlen(e->d_name) > 200 ||
		    (e->d_type != DT_REG && e->d_type != DT_UNKNOWN))
			continue;
		if (count == cap) {
			char **m = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof(*names));

			if (!m)
				break;
			names = m;
		}
		if (asprintf(&names[count], "/%s", e->d_name) < 0)
			break;
		count++;
	}
	closedir(d);
	if (count)
		qsort(names, count, sizeof(*names), by_name);
	if (o.json)
		fputc('[', stdout);
	for (size_t i = 0; i < count; i++) {
		shmpipe_info in;
		char cap_s[32], q[32], wr[40], rd[40], nm[CLI_SHOWN_MAX];

		/* Whatever is not a shmpipe we may read is not ours to list. */
		if (shmpipe_inspect(names[i], &in) < 0 || read_places(names[i], &in, &pl) < 0)
			continue;
		if (o.json) {
			if (shown)
				fputc(',', stdout);
			json_pipe(stdout, names[i], &in, &pl, -1);
		} else {
			if (!shown)
				printf("%-24s %10s %10s %5s  %-16s %s\n", "NAME", "CAPACITY",
				       "QUEUE", "FULL", "WRITER", "READER");
			cli_format_bytes(cap_s, sizeof(cap_s), (double)in.stats.capacity);
			cli_format_bytes(q, sizeof(q),
					 (double)(in.stats.write_index - in.stats.read_index));
			snprintf(wr, sizeof(wr), in.writer.pid ? "%u %s" : "%.0u%s", in.writer.pid,
				 end_word(&in.writer));
			if (pl.n)
				snprintf(rd, sizeof(rd), "%u of %u readers", attached(&pl), pl.n);
			else
				snprintf(rd, sizeof(rd), in.reader.pid ? "%u %s" : "%.0u%s",
					 in.reader.pid, end_word(&in.reader));
			printf("%-24s %10s %10s %4d%%  %-16s %s\n",
			       cli_shown(nm, sizeof(nm), names[i]), cap_s, q, percent(&in.stats),
			       wr, rd);
		}
		shown++;
	}
	if (o.json)
		fputs("]\n", stdout);
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
	return CLI_OK;
}

/*
 * Whether unlink(2) would let this process remove the name: it must write
 * in /dev/shm and, as that directory is sticky, own the name or the
 * directory, or be root. Asked of every name before any is removed.
 */
static int may_remove(const char *name)
{
	char path[300];
	struct stat dir, st;
	uid_t me = geteuid();

	snprintf(path, sizeof(path), SHM_DIR "%s", name);
	if (stat(SHM_DIR, &dir) < 0 || lstat(path, &st) < 0)
		return 1; /* unlink(2) will say what is wrong */
	if (faccessat(AT_FDCWD, SHM_DIR, W_OK, AT_EACCESS) < 0)
		return 0;
	return !(dir.st_mode & S_ISVTX) || me == 0 || me == st.st_uid || me == dir.st_uid;
}

int cli_rm(int argc, char **argv)
{
	struct cli_opts o;
	int n, status = CLI_OK;

	n = cli_parse_opts(argc, argv, "force", &o);
	if (n < 0)
		return n == CLI_HELP_SHOWN ? CLI_OK : CLI_USAGE;
	if (n < 1)
		return cli_usage("rm", "no pipe NAME given");
	/* Check every name before removing any: bad input changes nothing. */
	for (int i = 1; i <= n; i++) {
		char name[256], shown[CLI_SHOWN_MAX];
		shmpipe_info in;
		int err;

		if (cli_name(argv[i], name, sizeof(name)) < 0)
			return cli_bad_name("rm", argv[i]);
		cli_shown(shown, sizeof(shown), name);
		if (cli_check_kind("rm", name) != 0)
			return CLI_USAGE;
		err = cli_inspect(name, &in);
		if (err == -ENOENT && !o.force)
			return cli_usage("rm", "%s: no such pipe", shown);
		if (err == -EPROTO || err == -ELOOP || err == -EISDIR)
			return cli_usage("rm", "%s: not a shmpipe: not removed", shown);
		if (err == -EACCES || (err == 0 && !may_remove(name)))
			return cli_usage("rm", "%s: permission denied: not removed", shown);
		if (err < 0 && err != -ENOENT) {
			cli_error("rm %s: %s", shown, shmpipe_strerror(err));
			return CLI_FAILED;
		}
	}
	for (int i = 1; i <= n; i++) {
		char name[256], shown[CLI_SHOWN_MAX];
		int err;

		cli_name(argv[i], name, sizeof(name));
		err = shmpipe_unlink(name);
		if (err < 0 && !(err == -ENOENT && o.force)) {
			/* Another process changed the name or its owner since the check. */
			int st = err == -EACCES || err == -EPERM ? CLI_USAGE : CLI_FAILED;

			cli_error("rm %s: %s", cli_shown(shown, sizeof(shown), name),
				  shmpipe_strerror(err));
			if (st > status)
				status = st;
		}
	}
	return status;
}
