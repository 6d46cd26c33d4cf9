/* SPDX-License-Identifier: MIT */
/*
 * Description: single-threaded byte stream basics. Default capacity is
 * 1 MiB; data round-trips intact; a read returns what is there without
 * waiting to fill its buffer; the six counters are exact after known
 * operations (produced counts writes, consumed counts reads that returned
 * data, no waits with timeouts 0); capacity is exact, for page multiples and
 * odd sizes alike (a full ring refuses one more byte with -EAGAIN); and many
 * laps around the ring with sizes coprime to the capacity keep every byte.
 */
#include "test.h"

static void test_default_capacity(void)
{
	shmpipe_writer *w = NULL;
	shmpipe_reader *r = NULL;
	shmpipe_options o = test_opts(0);
	shmpipe_stats s;

	ASSERT_OK(shmpipe_pair(&w, &r, NULL));
	ASSERT_NOT_NULL(w);
	ASSERT_NOT_NULL(r);
	s = test_wstats(w);
	ASSERT_EQ(s.capacity, SHMPIPE_DEFAULT_CAPACITY);
	ASSERT_EQ(s.capacity, 1024 * 1024);
	ASSERT_EQ(s.write_index, 0);
	ASSERT_EQ(s.read_index, 0);
	ASSERT_EQ(s.produced, 0);
	ASSERT_EQ(s.consumed, 0);
	ASSERT_EQ(s.producer_waits, 0);
	ASSERT_EQ(s.consumer_waits, 0);
	s = test_rstats(r);
	ASSERT_EQ(s.capacity, 1024 * 1024);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));

	/* capacity 0 in options means the default too. */
	w = NULL;
	r = NULL;
	ASSERT_OK(shmpipe_pair(&w, &r, &o));
	s = test_rstats(r);
	ASSERT_EQ(s.capacity, 1024 * 1024);

	/* The default ring really holds 1 MiB, and not a byte more. */
	{
		size_t n = SHMPIPE_DEFAULT_CAPACITY;
		char *big = malloc(n);
		ASSERT_NOT_NULL(big);
		test_pattern_fill(big, n, 7, 0);
		ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
		ASSERT_EQ(shmpipe_write(w, big, n), n);
		ASSERT_ERR(shmpipe_write(w, big, 1), -EAGAIN);
		memset(big, 0, n);
		ASSERT_EQ(shmpipe_read(r, big, n), n);
		ASSERT_PATTERN(big, n, 7, 0);
		free(big);
	}
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

static void test_round_trip_and_counters(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s, s2;
	char buf[100];

	test_pair(&w, &r, 4096);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));

	ASSERT_EQ(shmpipe_write(w, "hello", 5), 5);
	s = test_wstats(w);
	ASSERT_EQ(s.write_index, 5);
	ASSERT_EQ(s.read_index, 0);
	ASSERT_EQ(s.produced, 1);
	ASSERT_EQ(s.consumed, 0);

	ASSERT_EQ(shmpipe_write(w, ", world!!!", 10), 10);
	/* A read returns what is there (15 bytes), not the 100 asked for. */
	ASSERT_EQ(shmpipe_read(r, buf, 3), 3);
	ASSERT_MEM_EQ(buf, "hel", 3);
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 12);
	ASSERT_MEM_EQ(buf, "lo, world!!!", 12);
	/*
	 * Empty now: timeout 0 says -EAGAIN. The first arms the descriptor
	 * and counts one wait; the second finds it armed and counts nothing.
	 */
	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), -EAGAIN);
	ASSERT_ERR(shmpipe_read(r, buf, 1), -EAGAIN);

	s = test_rstats(r);
	s2 = test_wstats(w);
	ASSERT_STATS_EQ(&s, &s2);
	ASSERT_EQ(s.capacity, 4096);
	ASSERT_EQ(s.write_index, 15);
	ASSERT_EQ(s.read_index, 15);
	ASSERT_EQ(s.produced, 2);
	ASSERT_EQ(s.consumed, 2);
	ASSERT_EQ(s.producer_waits, 0);
	ASSERT_EQ(s.consumer_waits, 1);

	/* A few hundred more, each read draining exactly one write. */
	for (int i = 0; i < 300; i++) {
		size_t n = (size_t)(i % 97) + 1;
		char out[100], in[100];
		test_pattern_fill(out, n, 11, (uint64_t)i * 1000);
		ASSERT_EQ(shmpipe_write(w, out, n), n);
		ASSERT_EQ(shmpipe_read(r, in, sizeof(in)), n);
		ASSERT_MEM_EQ(in, out, n);
	}
	s = test_rstats(r);
	ASSERT_EQ(s.produced, 302);
	ASSERT_EQ(s.consumed, 302);
	ASSERT_EQ(s.write_index, s.read_index);
	ASSERT_EQ(s.producer_waits, 0);
	ASSERT_EQ(s.consumer_waits, 1); /* the one above: data was always there */

	/* The same with the default, infinite timeouts: data is there, no wait. */
	ASSERT_OK(shmpipe_writer_set_timeout(w, -1));
	ASSERT_OK(shmpipe_reader_set_timeout(r, -1));
	ASSERT_EQ(shmpipe_write(w, "abc", 3), 3);
	ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), 3);
	ASSERT_MEM_EQ(buf, "abc", 3);
	s = test_rstats(r);
	ASSERT_EQ(s.producer_waits, 0);
	ASSERT_EQ(s.consumer_waits, 1); /* still the one refusal's */
	ASSERT_EQ(s.produced, 303);
	ASSERT_EQ(s.consumed, 303);

	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

/*
 * A read returns everything that is in the ring, up to len, whenever the
 * data was written: "copies whatever is there, up to len bytes", as
 * read(2) on a pipe. Here the second write lands after an earlier read has
 * already seen the ring, so an end that only looked at the writer's
 * position when its own view was empty would return just the first part.
 */
static void test_read_returns_all_available(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	uint8_t out[40], in[64];

	test_pair(&w, &r, 64);
	test_pattern_fill(out, sizeof(out), 4, 0);
	ASSERT_EQ(shmpipe_write(w, out, 10), 10);
	ASSERT_EQ(shmpipe_read(r, in, 5), 5);	       /* 5 left */
	ASSERT_EQ(shmpipe_write(w, out + 10, 10), 10); /* 15 there now */
	ASSERT_EQ(shmpipe_read(r, in, sizeof(in)), 15);
	ASSERT_PATTERN(in, 15, 4, 5);

	/* Again with timeout 0. */
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	ASSERT_EQ(shmpipe_write(w, out + 20, 8), 8);
	ASSERT_EQ(shmpipe_read(r, in, 4), 4);	       /* 4 left */
	ASSERT_EQ(shmpipe_write(w, out + 28, 12), 12); /* 16 there now */
	ASSERT_EQ(shmpipe_read(r, in, sizeof(in)), 16);
	ASSERT_PATTERN(in, 16, 4, 24);

	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

/*
 * The ring holds exactly `cap` bytes: filling it in uneven pieces succeeds,
 * one more byte is -EAGAIN, and every freed byte can be reused at once.
 */
static void check_exact_capacity(size_t cap)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	size_t done = 0, chunk = cap / 3 + 1;
	uint8_t *buf = malloc(cap + 1);

	ASSERT_NOT_NULL(buf);
	test_pair(&w, &r, cap);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));

	s = test_wstats(w);
	ASSERT_EQ(s.capacity, cap);

	test_pattern_fill(buf, cap + 1, cap, 0);
	while (done < cap) {
		size_t n = cap - done < chunk ? cap - done : chunk;
		ASSERT_EQ(shmpipe_write(w, buf + done, n), n);
		done += n;
	}
	ASSERT_ERR(shmpipe_write(w, buf + cap, 1), -EAGAIN);
	ASSERT_ERR(shmpipe_write(w, buf + cap, 1), -EAGAIN);
	s = test_wstats(w);
	ASSERT_EQ(s.write_index - s.read_index, cap);
	ASSERT_EQ(s.write_index, cap);
	ASSERT_EQ(s.producer_waits, 1); /* the first refusal armed the descriptor */

	/* Free one byte: exactly one byte fits again. */
	ASSERT_EQ(shmpipe_read(r, buf, 1), 1);
	ASSERT_PATTERN(buf, 1, cap, 0);
	test_pattern_fill(buf, 2, cap, cap);
	ASSERT_EQ(shmpipe_write(w, buf, 1), 1);
	ASSERT_ERR(shmpipe_write(w, buf + 1, 1), -EAGAIN);
	s = test_rstats(r);
	ASSERT_EQ(s.write_index, cap + 1);
	ASSERT_EQ(s.read_index, 1);

	/* Drain: the cap bytes come out in order, then nothing. */
	done = 0;
	while (done < cap) {
		ssize_t n = shmpipe_read(r, buf, cap);
		ASSERT_GT(n, 0);
		ASSERT_PATTERN(buf, (size_t)n, cap, 1 + done);
		done += (size_t)n;
	}
	ASSERT_EQ(done, cap);
	ASSERT_ERR(shmpipe_read(r, buf, cap), -EAGAIN);
	s = test_rstats(r);
	ASSERT_EQ(s.read_index, cap + 1);
	ASSERT_EQ(s.consumer_waits, 1); /* the refusal after the drain */

	/* An empty ring takes exactly cap bytes in one write. */
	test_pattern_fill(buf, cap + 1, cap + 5, 0);
	ASSERT_EQ(shmpipe_write(w, buf, cap), cap);
	ASSERT_ERR(shmpipe_write(w, buf, 1), -EAGAIN);

	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
	free(buf);
}

static void test_exact_capacities(void)
{
	static const size_t caps[] = {
	    1,	  2,	3,     7,     32,    1000,   4095,	    4096,
	    4097, 8191, 12288, 65536, 65537, 100003, (1 << 20) + 1,
	};

	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		check_exact_capacity(caps[i]);
}

/*
 * Lap the ring many times with write and read sizes coprime to the
 * capacity, so that the wrap point falls everywhere, keeping the ring partly
 * full so that reads and writes straddle the end of the data region.
 */
static void check_laps(size_t cap, size_t wsize, size_t rsize, int laps)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats s;
	uint64_t woff = 0, roff = 0, target = (uint64_t)cap * (uint64_t)laps;
	uint64_t writes = 0, reads = 0;
	uint8_t *wbuf = malloc(wsize), *rbuf = malloc(rsize);
	const uint64_t seed = 0x5eed0000 + cap;

	ASSERT_NOT_NULL(wbuf);
	ASSERT_NOT_NULL(rbuf);
	test_pair(&w, &r, cap);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));

	while (woff < target || roff < woff) {
		/* Write while it fits whole. */
		while (woff < target && woff - roff + wsize <= cap) {
			test_pattern_fill(wbuf, wsize, seed, woff);
			ASSERT_EQ(shmpipe_write(w, wbuf, wsize), wsize);
			woff += wsize;
			writes++;
		}
		/* Read until the ring is less than half full (or empty). */
		do {
			ssize_t n = shmpipe_read(r, rbuf, rsize);
			size_t most = woff - roff < rsize ? (size_t)(woff - roff) : rsize;
			/* Exactly `most` is test_read_returns_all_available's point. */
			ASSERT_GT(n, 0);
			ASSERT_LE(n, most);
			ASSERT_PATTERN(rbuf, (size_t)n, seed, roff);
			roff += (uint64_t)n;
			reads++;
		} while (roff < woff && woff - roff > cap / 2);
	}
	ASSERT_EQ(woff, roff);
	ASSERT_ERR(shmpipe_read(r, rbuf, rsize), -EAGAIN);

	s = test_rstats(r);
	ASSERT_EQ(s.write_index, woff);
	ASSERT_EQ(s.read_index, roff);
	ASSERT_EQ(s.produced, writes);
	ASSERT_EQ(s.consumed, reads);
	ASSERT_EQ(s.producer_waits, 0);
	ASSERT_EQ(s.consumer_waits, 1); /* the one refusal at the end */

	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
	free(wbuf);
	free(rbuf);
}

static void test_wrap_around(void)
{
	check_laps(1000, 7, 13, 200);
	check_laps(1000, 13, 7, 200);
	check_laps(4096, 997, 1009, 300);
	check_laps(4097, 4096, 4095, 300);
	check_laps(4099, 1, 3, 20);
	check_laps(65536, 65535, 4099, 100);
	check_laps(12289, 12289, 12289, 100);
	check_laps(3, 2, 1, 1000);
}

int main(void)
{
	test_watchdog(30);
	test_default_capacity();
	test_round_trip_and_counters();
	test_exact_capacities();
	test_wrap_around();
	test_read_returns_all_available();
	return T_PASS;
}
