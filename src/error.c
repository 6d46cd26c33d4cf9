/* SPDX-License-Identifier: MIT */
/* Error names and the version: the two pieces of text the library owns. */
#include <limits.h>
#include <string.h>

#include "shmpipe.h"

#define SHMPIPE__STR(x)	 #x
#define SHMPIPE__XSTR(x) SHMPIPE__STR(x)

/*
 * strerror() may return a buffer that a later call overwrites;
 * strerrordesc_np() returns static text, so shmpipe_strerror is safe from
 * any thread and its text is exactly strerror's.
 */
const char *shmpipe_strerror(int err)
{
	const char *s;

	if (err >= 0)
		return "Success";
	if (err == INT_MIN)
		return "Unknown error";
	s = strerrordesc_np(-err);
	return s ? s : "Unknown error";
}

const char *shmpipe_version(void)
{
	return SHMPIPE__XSTR(SHMPIPE_VERSION_MAJOR) "." SHMPIPE__XSTR(
	    SHMPIPE_VERSION_MINOR) "." SHMPIPE__XSTR(SHMPIPE_VERSION_PATCH);
}
