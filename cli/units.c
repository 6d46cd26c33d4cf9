/* SPDX-License-Identifier: MIT */
/*
 * Human units: sizes in binary multiples (64K is 65536 bytes, as dd and
 * mbuffer count ring sizes), durations with a unit suffix, and their
 * printing with three significant digits.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli.h"
#include "../common/units.h"

/* Splits "16M" into 16 and "M"; the number must be whole and non-negative. */
static int split(const char *s, unsigned long long *num, const char **unit)
{
	char *end;

	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	*num = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	*unit = end;
	return 0;
}

int cli_parse_size(const char *s, uint64_t *out)
{
	uint64_t v;

	if (units_parse_size(s, &v) < 0 || v == 0 || v > SHMPIPE_MAX_CAPACITY)
		return -EINVAL;
	*out = v;
	return 0;
}

int cli_parse_duration(const char *s, int *out_ms)
{
	unsigned long long v, scale;
	const char *u;

	if (split(s, &v, &u) < 0)
		return -EINVAL;
	if (strcmp(u, "ms") == 0)
		scale = 1;
	else if (strcmp(u, "") == 0 || strcmp(u, "s") == 0)
		scale = 1000;
	else if (strcmp(u, "m") == 0 || strcmp(u, "min") == 0)
		scale = 60000;
	else if (strcmp(u, "h") == 0)
		scale = 3600000;
	else
		return -EINVAL;
	/* The library counts in int milliseconds: about 24 days at most. */
	if (v == 0 || v > 2147483647ull / scale)
		return -EINVAL;
	*out_ms = (int)(v * scale);
	return 0;
}

void cli_format_bytes(char *buf, size_t len, double v)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	int i = 0;

	while (v >= 1023.5 && i < 5) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, len, "%.0f B", v);
	else if (v < 9.995)
		snprintf(buf, len, "%.2f %s", v, units[i]);
	else if (v < 99.95)
		snprintf(buf, len, "%.1f %s", v, units[i]);
	else
		snprintf(buf, len, "%.0f %s", v, units[i]);
}

void cli_format_rate(char *buf, size_t len, double bytes_per_s)
{
	char b[32];

	cli_format_bytes(b, sizeof(b), bytes_per_s < 0 ? 0 : bytes_per_s);
	snprintf(buf, len, "%s/s", b);
}

void cli_format_duration(char *buf, size_t len, double seconds)
{
	unsigned long t = seconds < 0 ? 0 : (unsigned long)seconds;

	snprintf(buf, len, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
}

double cli_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
