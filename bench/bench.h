/* SPDX-License-Identifier: MIT */
/*
 * bench.h - what the comparison benchmarks share: a monotonic clock, size
 * parsing with K/M/G suffixes, and the one output format the runner
 * (bench/run.sh) aggregates.
 *
 * Every measurement is printed as one tab-separated line:
 *
 *   bench  impl  case  value  unit  note
 *
 * "case" names the parameters of the cell (e.g. "ring=64K write=1K"); "note"
 * says what the system actually granted (a pipe size, a socket buffer) or is
 * "-". Lines that do not start with a known bench name are ignored by the
 * runner, so a program may print diagnostics on stderr freely.
 */
#ifndef SHMPIPE_BENCH_H
#define SHMPIPE_BENCH_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/units.h"

static inline double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A byte count, as common/units.h reads them (64K, 1M, 10G); exits on garbage or 0. */
static inline uint64_t bench_size(const char *prog, const char *s)
{
	uint64_t v;

	if (units_parse_size(s, &v) < 0 || v == 0) {
		fprintf(stderr, "%s: bad number: %s\n", prog, s);
		exit(2);
	}
	return v;
}

/* "64", "1K", "16M": the short form used in case names and table headers. */
static inline const char *bench_human(uint64_t v, char *buf, size_t len)
{
	if (v >= (1u << 30) && v % (1u << 30) == 0)
		snprintf(buf, len, "%lluG", (unsigned long long)(v >> 30));
	else if (v >= (1u << 20) && v % (1u << 20) == 0)
		snprintf(buf, len, "%lluM", (unsigned long long)(v >> 20));
	else if (v >= (1u << 10) && v % (1u << 10) == 0)
		snprintf(buf, len, "%lluK", (unsigned long long)(v >> 10));
	else
		snprintf(buf, len, "%llu", (unsigned long long)v);
	return buf;
}

#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
static inline void
bench_emit(const char *bench, const char *impl, double value, const char *unit,
	   const char *case_fmt, ...)
{
	char cs[256];
	va_list ap;

	va_start(ap, case_fmt);
	vsnprintf(cs, sizeof(cs), case_fmt, ap);
	va_end(ap);
	printf("%s\t%s\t%s\t%.6g\t%s\t", bench, impl, cs, value, unit);
}

/* Ends a bench_emit line with its note ("-" if none). */
static inline void bench_note(const char *note)
{
	printf("%s\n", note && *note ? note : "-");
	fflush(stdout);
}

#define BENCH_DIE(...)                                                                             \
	do {                                                                                       \
		fprintf(stderr, __VA_ARGS__);                                                      \
		fputc('\n', stderr);                                                               \
		exit(1);                                                                           \
	} while (0)

#endif /* SHMPIPE_BENCH_H */
