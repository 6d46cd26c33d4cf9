/* SPDX-License-Identifier: MIT */
/*
 * Description: stdio streams on a pipe. shmpipe_writer_fopen gives a FILE
 * that fprintf, fputs, fputc and fwrite write into: with full buffering
 * (setvbuf) nothing reaches the reader before fflush and everything does
 * after it; fclose flushes and ends the stream (the reader gets the data,
 * then 0). shmpipe_reader_fopen gives a FILE for fread, fgets and getline:
 * a consumer thread reads many thousand text lines of every length through
 * a small ring, each checked, then EOF (feof, not ferror). Record mode
 * refuses both with -EINVAL, as do NULL arguments. A reader that closes
 * shows on the writing FILE as ferror with errno EPIPE: when it closed
 * before the flush, and when it closed while the flush was blocked on a
 * full ring.
 */
#include <pthread.h>

#include "test.h"

static void test_flush_visibility(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	FILE *fp = NULL;
	char *vbuf = malloc(1 << 16);
	char want[8192], got[8192];
	uint8_t bin[1000];
	const void *rb;
	int len;

	ASSERT_NOT_NULL(vbuf);
	test_pair(&w, &r, 1 << 16);
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	ASSERT_OK(shmpipe_writer_fopen(w, &fp));
	ASSERT_NOT_NULL(fp);
	ASSERT_OK(setvbuf(fp, vbuf, _IOFBF, 1 << 16));

	test_pattern_fill(bin, sizeof(bin), 1, 0);
	ASSERT_EQ(fprintf(fp, "hello %d %s %.3f\n", 42, "world", 2.5), 21);
	ASSERT_GE(fputs("a line from fputs\n", fp), 0);
	ASSERT_EQ(fputc('!', fp), '!');
	ASSERT_EQ(fwrite(bin, 1, sizeof(bin), fp), sizeof(bin));
	ASSERT_EQ(fprintf(fp, "%s", "tail"), 4);
	len = snprintf(want, sizeof(want), "hello %d %s %.3f\na line from fputs\n!", 42, "world",
		       2.5);
	memcpy(want + len, bin, sizeof(bin));
	len += (int)sizeof(bin);
	memcpy(want + len, "tail", 4);
	len += 4;

	/* Still in stdio's buffer: the pipe has seen nothing. */
	s = test_rstats(r);
	ASSERT_EQ(s.write_index, 0);
	ASSERT_EQ(s.produced, 0);
	ASSERT_ERR(shmpipe_peek(r, &rb), -EAGAIN);
	ASSERT_ERR(shmpipe_read(r, got, sizeof(got)), -EAGAIN);

	ASSERT_OK(fflush(fp));
	s = test_rstats(r);
	ASSERT_EQ(s.write_index, len);
	ASSERT_EQ(shmpipe_read(r, got, sizeof(got)), len);
	ASSERT_MEM_EQ(got, want, (size_t)len);

	/* Again after the flush; fclose flushes what is left and ends the stream. */
	ASSERT_EQ(fprintf(fp, "%05d|", 7), 6);
	ASSERT_ERR(shmpipe_read(r, got, sizeof(got)), -EAGAIN);
	ASSERT_OK(fclose(fp));
	ASSERT_EQ(shmpipe_read(r, got, sizeof(got)), 6);
	ASSERT_MEM_EQ(got, "00007|", 6);
	ASSERT_EQ(shmpipe_read(r, got, sizeof(got)), 0);
	ASSERT_OK(shmpipe_reader_set_timeout(r, -1));
	ASSERT_EQ(shmpipe_read(r, got, sizeof(got)), 0);
	ASSERT_OK(shmpipe_reader_close(r));
	free(vbuf);

	/* An empty FILE: fclose alone is end of stream. */
	test_pair(&w, &r, 4096);
	ASSERT_OK(shmpipe_writer_fopen(w, &fp));
	ASSERT_OK(fclose(fp));
	ASSERT_EQ(shmpipe_read(r, got, sizeof(got)), 0);
	ASSERT_OK(shmpipe_reader_close(r));
}

static void test_bad_args(void)
{
	shmpipe_options o = test_opts(4096);
	shmpipe_writer *w;
	shmpipe_reader *r;
	FILE *fp = NULL;

	test_pair(&w, &r, 4096);
	ASSERT_ERR(shmpipe_writer_fopen(NULL, &fp), -EINVAL);
	ASSERT_ERR(shmpipe_writer_fopen(w, NULL), -EINVAL);
	ASSERT_ERR(shmpipe_reader_fopen(NULL, &fp), -EINVAL);
	ASSERT_ERR(shmpipe_reader_fopen(r, NULL), -EINVAL);
	ASSERT_PTR_EQ(fp, NULL);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));

	/* stdio would cut records anywhere: record mode is refused. */
	o.flags = SHMPIPE_RECORDS;
	ASSERT_OK(shmpipe_pair(&w, &r, &o));
	ASSERT_ERR(shmpipe_writer_fopen(w, &fp), -EINVAL);
	ASSERT_ERR(shmpipe_reader_fopen(r, &fp), -EINVAL);
	ASSERT_PTR_EQ(fp, NULL);
	/* The handles are still the caller's, and work. */
	ASSERT_EQ(shmpipe_write(w, "rec", 3), 3);
	{
		char b[8];

		ASSERT_EQ(shmpipe_read(r, b, sizeof(b)), 3);
		ASSERT_MEM_EQ(b, "rec", 3);
	}
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

/* ---- many lines through a small ring -------------------------------- */

#define LINES 60000

/* Line i: its number, a length between 0 and 300, then that many letters. */
static size_t make_line(char *buf, uint64_t i)
{
	uint64_t x = test_mix64(i);
	size_t body = (size_t)(x % 301);
	int n = snprintf(buf, 32, "%" PRIu64 ":%zu:", i, body);

	for (size_t k = 0; k < body; k++)
		buf[n + k] = (char)('a' + test_pattern_byte(i, k) % 26);
	buf[n + body] = '\n';
	buf[n + body + 1] = '\0';
	return (size_t)n + body + 1;
}

struct lines {
	shmpipe_writer *w;
	shmpipe_reader *r;
	uint64_t bytes;
};

static void *line_writer(void *arg)
{
	struct lines *c = arg;
	FILE *fp;
	char line[400];

	ASSERT_OK(shmpipe_writer_fopen(c->w, &fp));
	for (uint64_t i = 0; i < LINES; i++) {
		size_t n = make_line(line, i);

		switch (i % 3) {
		case 0:
			ASSERT_GE(fputs(line, fp), 0);
			break;
		case 1:
			ASSERT_EQ(fprintf(fp, "%s", line), n);
			break;
		default:
			ASSERT_EQ(fwrite(line, 1, n, fp), n);
		}
		c->bytes += n;
	}
	ASSERT_OK(fclose(fp));
	return NULL;
}

static void *line_reader(void *arg)
{
	struct lines *c = arg;
	FILE *fp;
	char want[400], got[400];
	char *line = NULL;
	size_t cap = 0;
	uint64_t i = 0, bytes = 0;

	ASSERT_OK(shmpipe_reader_fopen(c->r, &fp));
	for (;; i++) {
		size_t n = make_line(want, i);

		if (i % 5 == 4) {
			if (fgets(got, sizeof(got), fp) == NULL)
				break;
			ASSERT_STR_EQ(got, want);
		} else if (i % 5 == 3) {
			/* fread of exactly the line's length. */
			size_t k = fread(got, 1, n, fp);

			if (k == 0)
				break;
			ASSERT_EQ(k, n);
			got[k] = '\0';
			ASSERT_STR_EQ(got, want);
		} else {
			ssize_t k = getline(&line, &cap, fp);

			if (k < 0)
				break;
			ASSERT_EQ(k, n);
			ASSERT_STR_EQ(line, want);
		}
		ASSERT_LT(i, LINES);
		bytes += n;
	}
	ASSERT_EQ(i, LINES);
	ASSERT_TRUE(feof(fp));
	ASSERT_TRUE(!ferror(fp));
	ASSERT_EQ(getline(&line, &cap, fp), -1);
	ASSERT_EQ(bytes, c->bytes);
	free(line);
	ASSERT_OK(fclose(fp));
	return NULL;
}

static void test_lines(void)
{
	struct lines c;

	memset(&c, 0, sizeof(c));
	test_pair(&c.w, &c.r, 4099);
	test_two_threads(line_writer, &c, line_reader, &c);
	printf("%d lines, %" PRIu64 " bytes through a 4099-byte ring\n", LINES, c.bytes);
}

/* ---- EPIPE ---------------------------------------------------------- */

static void test_epipe_before_flush(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	FILE *fp;

	test_pair(&w, &r, 4096);
	ASSERT_OK(shmpipe_writer_fopen(w, &fp));
	ASSERT_OK(setvbuf(fp, NULL, _IOFBF, 0));
	ASSERT_EQ(fprintf(fp, "nobody reads this\n"), 18);
	ASSERT_OK(shmpipe_reader_close(r));
	errno = 0;
	ASSERT_EQ(fflush(fp), EOF);
	ASSERT_TRUE(ferror(fp));
	ASSERT_ERR(-errno, -EPIPE);
	fclose(fp); /* fails (the data cannot go anywhere) but frees the writer */
}

struct blocked {
	FILE *fp;
	int ret;
	int err;
	int ferr;
};

static void *blocked_flusher(void *arg)
{
	struct blocked *b = arg;
	char *big = malloc(3 * 4096);

	ASSERT_NOT_NULL(big);
	memset(big, 'x', 3 * 4096);
	/* Three rings' worth: the flush blocks after the first. */
	ASSERT_EQ(fwrite(big, 1, 3 * 4096, b->fp), 3 * 4096);
	errno = 0;
	b->ret = fflush(b->fp);
	b->err = errno;
	b->ferr = ferror(b->fp) != 0;
	free(big);
	return NULL;
}

static void test_epipe_while_blocked(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	struct blocked b;
	pthread_t t;
	int64_t t0;
	char *vbuf = malloc(1 << 16);

	ASSERT_NOT_NULL(vbuf);
	memset(&b, 0, sizeof(b));
	test_pair(&w, &r, 4096);
	ASSERT_OK(shmpipe_writer_fopen(w, &b.fp));
	ASSERT_OK(setvbuf(b.fp, vbuf, _IOFBF, 1 << 16));
	ASSERT_OK(pthread_create(&t, NULL, blocked_flusher, &b));
	t0 = test_now_ms();
	while (test_rstats(r).producer_waits == 0) {
		ASSERT_LT(test_now_ms() - t0, 5000 * TEST_SLOW);
		usleep(100);
	}
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(pthread_join(t, NULL));
	ASSERT_EQ(b.ret, EOF);
	ASSERT_TRUE(b.ferr);
	/* errno after the failed fflush, as -errno so that it prints by name. */
	ASSERT_ERR(-b.err, -EPIPE);
	fclose(b.fp);
	free(vbuf);
}

int main(void)
{
	test_watchdog(30);
	signal(SIGPIPE, SIG_DFL); /* the library must not raise it */
	test_bad_args();
	test_flush_visibility();
	test_lines();
	test_epipe_before_flush();
	test_epipe_while_blocked();
	return T_PASS;
}
