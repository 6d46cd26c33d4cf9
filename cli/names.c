/*
 * Pipe names: the NAME operand checked and put in the form the library
 * takes.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cli_name(const char *arg, char *buf, size_t len)
{
	const char *s = arg[0] == '/' ? arg + 1 : arg;
	size_t n = strlen(s);

	/* The library's rule: 1 to 200 characters, none of them '/'. */
	if (n == 0 || n > 200 || strchr(s, '/') || strcmp(s, ".") == 0 || strcmp(s, "..") == 0 ||
	    n + 2 > len)
		return -EINVAL;
	snprintf(buf, len, "/%s", s);
	return 0;
}
