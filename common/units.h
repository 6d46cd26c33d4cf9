/* SPDX-License-Identifier: MIT */
/*
 * The one parser of byte counts for the shmpipe program, the benchmarks,
 * the examples and the tests (not part of the library): decimal digits,
 * then optionally K, M, G or T (binary multiples: 64K is 65536, as dd and
 * mbuffer count), optionally followed by B or iB, in either case. Nothing
 * else: no sign, no space, no hexadecimal, no fraction. Header-only;
 * include it by its relative path ("../common/units.h").
 */
#ifndef SHMPIPE_COMMON_UNITS_H
#define SHMPIPE_COMMON_UNITS_H

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <strings.h>

/* 0 and the count in *out, or -EINVAL (not a count, or above 2^64 - 1). */
static inline int units_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "KMGT";
	unsigned long long v;
	const char *p;
	char *end;
	int shift = 0;

	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end) {
		for (p = units; *p && *p != toupper((unsigned char)*end); p++)
			;
		if (!*p)
			return -EINVAL;
		shift = 10 * (int)(p - units + 1);
		end++;
		/* 16M, 16MB, 16MiB all mean 16 << 20. */
		if (*end && strcasecmp(end, "B") != 0 && strcasecmp(end, "iB") != 0)
			return -EINVAL;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

#endif /* SHMPIPE_COMMON_UNITS_H */
