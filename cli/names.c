/* SPDX-License-Identifier: MIT */
/*
 * Pipe names: the NAME operand checked and put in the form the library
 * takes, and any name made fit to print.
 *
 * A name in /dev/shm is whatever its maker chose: any bytes but '/' and
 * NUL. Printed as they are, a newline forges a row of ls, an escape
 * sequence rewrites the screen, a right-to-left override turns the rest of
 * the line around; and JSON must be valid UTF-8. So a name is printed with
 * every byte that is not plain text escaped, and a name on the command line
 * is checked before the library sees it.
 */
#include <errno.h>
#include <langinfo.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

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

int cli_bad_name(const char *cmd, const char *arg)
{
	char shown[CLI_SHOWN_MAX];

	return cli_usage(cmd, "bad pipe name '%s' (want /name, 1 to 200 characters, no other '/')",
			 cli_shown(shown, sizeof(shown), arg));
}

int cli_check_kind(const char *cmd, const char *name)
{
	char path[300], shown[CLI_SHOWN_MAX];
	const char *kind;
	struct stat st;

	/* Linux keeps POSIX shared memory objects as files in /dev/shm. */
	snprintf(path, sizeof(path), "/dev/shm%s", name);
	if (lstat(path, &st) < 0 || S_ISREG(st.st_mode))
		return 0; /* absent, or for the library to judge */
	if (S_ISLNK(st.st_mode))
		kind = "a symbolic link";
	else if (S_ISDIR(st.st_mode))
		kind = "a directory";
	else if (S_ISFIFO(st.st_mode))
		kind = "a FIFO";
	else if (S_ISSOCK(st.st_mode))
		kind = "a socket";
	else
		kind = "a device";
	return cli_usage(cmd, "%s: not a shmpipe: %s", cli_shown(shown, sizeof(shown), name), kind);
}

/*
 * The length (1 to 4) of the UTF-8 character s starts with, its code point
 * in *cp; 0 if s does not start with one. Overlong forms, surrogates and
 * code points past U+10FFFF are not UTF-8. Stops at a NUL, which is never
 * a continuation byte.
 */
static int utf8_char(const unsigned char *s, uint32_t *cp)
{
	uint32_t c = s[0];
	int n;

	if (c < 0x80)
		n = 1;
	else if (c >= 0xc2 && c <= 0xdf)
		n = 2, c &= 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, c &= 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, c &= 0x07;
	else
		return 0;
	for (int i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) || (c >= 0xd800 && c <= 0xdfff) ||
	    c > 0x10ffff)
		return 0;
	*cp = c;
	return n;
}

/*
 * Characters that move the cursor or change how the rest of the line reads:
 * the C0 and C1 controls, DEL, and Unicode's line separators and direction
 * marks, overrides and isolates.
 */
static int is_control(uint32_t c)
{
	return c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x061c || c == 0x200e || c == 0x200f ||
	       (c >= 0x2028 && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

/*
 * Whether the terminal takes UTF-8, as the locale says. Otherwise every
 * byte from 0x80 up is escaped: on an 8-bit terminal some of them are
 * controls.
 */
static int utf8_terminal(void)
{
	static int known, utf8;

	if (!known) {
		utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
		known = 1;
	}
	return utf8;
}

/* Appends s to buf[*at...] if it fits with room for the NUL; else fails. */
static int put(char *buf, size_t len, size_t *at, const char *s, size_t n)
{
	if (*at + n + 1 > len)
		return -1;
	memcpy(buf + *at, s, n);
	*at += n;
	buf[*at] = '\0';
	return 0;
}

const char *cli_shown(char *buf, size_t len, const char *name)
{
	const unsigned char *p = (const unsigned char *)name;
	size_t at = 0;

	if (len == 0)
		return "";
	buf[0] = '\0';
	while (*p) {
		char esc[8];
		const char *out = esc;
		uint32_t c = 0;
		int n = utf8_char(p, &c);

		if (n == 1 && c == '\\')
			out = "\\\\";
		else if (n == 1 && c == '\n')
			out = "\\n";
		else if (n == 1 && c == '\t')
			out = "\\t";
		else if (n == 1 && c == '\r')
			out = "\\r";
		else if (n == 1 ? !is_control(c) : n > 1 && utf8_terminal() && !is_control(c))
			out = NULL;
		if (!out) {
			if (put(buf, len, &at, (const char *)p, (size_t)n) < 0)
				break;
			p += n;
			continue;
		}
		/* One byte at a time: a character's next bytes are escaped in turn. */
		if (out == esc)
			snprintf(esc, sizeof(esc), "\\x%02x", *p);
		if (put(buf, len, &at, out, strlen(out)) < 0)
			break;
		p++;
	}
	return buf;
}

void cli_print_json_name(FILE *f, const char *name)
{
	const unsigned char *p = (const unsigned char *)name;

	fputc('"', f);
	while (*p) {
		uint32_t c = 0;
		int n = utf8_char(p, &c);

		if (n == 0) {
			fputs("\\ufffd", f);
			n = 1;
		} else if (c == '"' || c == '\\') {
			fprintf(f, "\\%c", (int)c);
		} else if (is_control(c)) {
			fprintf(f, "\\u%04x", (unsigned)c);
		} else {
			fwrite(p, 1, (size_t)n, f);
		}
		p += n;
	}
	fputc('"', f);
}
