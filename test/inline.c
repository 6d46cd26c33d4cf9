/* SPDX-License-Identifier: MIT */
/*
 * Description: the inline calls of shmpipe.h. shmpipe_write and shmpipe_read
 * are macros whose common case runs in the caller's code; every other case
 * calls the library. This program counts the library calls (it defines
 * shmpipe_write and shmpipe_read itself, counts, and passes each call on to
 * the library's), so it knows which path a call took, and checks that:
 * items go through inline once both ends have promised their barrier, in
 * order, across the end of the ring, with the counters exact; a reader that
 * closed gives -EPIPE at once, and an end closed by a forked copy -EBADF; an
 * inline write wakes a sleeping reader and an inline read a sleeping writer;
 * a reservation or a peek shuts the gate until the library ends it; a
 * record pipe and the end of the stream never go inline; a bad write_index
 * is refused; NULL handles and buffers are refused as the library does;
 * and every call of either end, in a random order, keeps every byte and
 * what the gates promise.
 * The gates open only with SHMPIPE_BARRIER=1 (the process-wide barriers,
 * src/os_linux.c); without it, or with SHMPIPE_NO_BARRIER set, they stay
 * shut and every call goes to the library, with the same results.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/wait.h>

#include "test.h"

static long lib_writes, lib_reads;

ssize_t(shmpipe_write)(shmpipe_writer *w, const void *buf, size_t len)
{
	static ssize_t (*real)(shmpipe_writer *, const void *, size_t);

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "shmpipe_write");
	__atomic_fetch_add(&lib_writes, 1, __ATOMIC_RELAXED);
	return real(w, buf, len);
}

ssize_t(shmpipe_read)(shmpipe_reader *r, void *buf, size_t len)
{
	static ssize_t (*real)(shmpipe_reader *, void *, size_t);

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "shmpipe_read");
	__atomic_fetch_add(&lib_reads, 1, __ATOMIC_RELAXED);
	return real(r, buf, len);
}

static long writes(void)
{
	return __atomic_load_n(&lib_writes, __ATOMIC_RELAXED);
}

static long reads(void)
{
	return __atomic_load_n(&lib_reads, __ATOMIC_RELAXED);
}

static const struct shmpipe__fast *fast_w(shmpipe_writer *w)
{
	return (const struct shmpipe__fast *)(void *)w;
}

static const struct shmpipe__fast *fast_r(shmpipe_reader *r)
{
	return (const struct shmpipe__fast *)(void *)r;
}

/* The gates open only where ends may publish without a fence. */
static bool inline_expected;

/* One write and one read through the library, which open both gates. */
static void warm(shmpipe_writer *w, shmpipe_reader *r)
{
	int32_t v = -1, x;

	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(shmpipe_write(w, &v, sizeof(v)), 4);
		ASSERT_EQ(shmpipe_read(r, &x, sizeof(x)), 4);
		ASSERT_EQ(x, -1);
	}
	if (inline_expected) {
		ASSERT_GT(fast_w(w)->avail, 0);
		ASSERT_GT(fast_r(r)->limit, 0);
	} else {
		ASSERT_EQ(fast_w(w)->avail, 0);
		ASSERT_EQ(fast_r(r)->limit, 0);
	}
}

/*
 * Items one by one, in bursts of up to a ring's worth, with an odd-sized
 * write now and then so that items straddle the end of the data region.
 */
static void items(void)
{
	const long n = 200000 / TEST_SLOW;
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats st;
	uint64_t seed = 7, bytes = 0, nw = 0, nr = 0, next_in = 0, next_out = 0;
	long w0, r0;

	test_pair(&w, &r, 4096);
	warm(w, r);
	ASSERT_OK(shmpipe_writer_stats(w, &st));
	bytes = st.write_index;
	nw = st.produced;
	nr = st.consumed;
	w0 = writes();
	r0 = reads();
	while (next_out < (uint64_t)n) {
		uint64_t burst = test_rand_range(&seed, 1, 1000);

		for (uint64_t i = 0; i < burst && next_in < (uint64_t)n; i++, next_in++) {
			uint32_t v = (uint32_t)next_in;

			ASSERT_EQ(shmpipe_write(w, &v, sizeof(v)), 4);
			bytes += 4;
			nw++;
		}
		if (test_rand_range(&seed, 0, 9) == 0) {
			/* Three bytes out of step, read back as three. */
			uint8_t odd[3] = {1, 2, 3}, back[3];

			while (next_out < next_in) {
				uint32_t x;

				ASSERT_EQ(shmpipe_read(r, &x, sizeof(x)), 4);
				ASSERT_EQ(x, (uint32_t)next_out);
				next_out++;
				nr++;
			}
			ASSERT_EQ(shmpipe_write(w, odd, 3), 3);
			ASSERT_EQ(shmpipe_read(r, back, 3), 3);
			ASSERT_MEM_EQ(back, odd, 3);
			bytes += 3;
			nw++;
			nr++;
		}
		while (next_out < next_in) {
			uint32_t x;

			ASSERT_EQ(shmpipe_read(r, &x, sizeof(x)), 4);
			ASSERT_EQ(x, (uint32_t)next_out);
			next_out++;
			nr++;
		}
	}
	/* The counters are the seed's, exact after every call. */
	ASSERT_OK(shmpipe_reader_stats(r, &st));
	ASSERT_EQ(st.write_index, bytes);
	ASSERT_EQ(st.read_index, bytes);
	ASSERT_EQ(st.produced, nw);
	ASSERT_EQ(st.consumed, nr);
	printf("items: %ld items, library writes %ld, library reads %ld\n", n, writes() - w0,
	       reads() - r0);
	if (inline_expected) {
		/* The library sees a call when a window runs out: a few per lap. */
		ASSERT_LT(writes() - w0, n / 50);
		ASSERT_LT(reads() - r0, n / 50);
	} else {
		ASSERT_GE(writes() - w0, n);
		ASSERT_GE(reads() - r0, n);
	}
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_writer_close(w));
}

/* A reader that closed, or an end closed in a forked copy: refused at once. */
static void refused(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	int32_t v = 5;
	pid_t pid;
	int status;

	test_pair(&w, &r, 4096);
	warm(w, r);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_ERR(shmpipe_write(w, &v, sizeof(v)), -EPIPE);
	ASSERT_ERR(shmpipe_write(w, &v, sizeof(v)), -EPIPE);
	ASSERT_OK(shmpipe_writer_close(w));

	test_pair(&w, &r, 4096);
	warm(w, r);
	pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0)
		_exit(shmpipe_writer_close(w) == 0 ? 0 : 1);
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	if (inline_expected)
		ASSERT_GT(fast_w(w)->avail, 0); /* the gate is ours: still open */
	ASSERT_ERR(shmpipe_write(w, &v, sizeof(v)), -EBADF);
	/* The reader sees the end of the stream, and nothing after it. */
	ASSERT_EQ(shmpipe_read(r, &v, sizeof(v)), 0);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_writer_close(w));
}

struct sleeper {
	shmpipe_writer *w;
	shmpipe_reader *r;
	int32_t got;
	ssize_t ret;
	int done;
};

static void *read_sleeping(void *arg)
{
	struct sleeper *s = arg;

	s->ret = shmpipe_read(s->r, &s->got, sizeof(s->got));
	__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *write_sleeping(void *arg)
{
	struct sleeper *s = arg;
	int32_t v = 99;

	s->ret = shmpipe_write(s->w, &v, sizeof(v));
	__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * Waits until the other thread's call has gone to sleep, which it counts in
 * the shared stats first (producer_waits or consumer_waits rises past was).
 */
static void until_asleep(shmpipe_reader *r, bool writer, uint64_t was)
{
	shmpipe_stats st;

	for (int i = 0; i < 5000; i++) {
		ASSERT_OK(shmpipe_reader_stats(r, &st));
		if ((writer ? st.producer_waits : st.consumer_waits) > was)
			break;
		test_sleep_ms(1);
	}
	ASSERT_GT(writer ? st.producer_waits : st.consumer_waits, was);
	test_sleep_ms(10); /* from counting the wait to sleeping in it */
}

/* An inline call that finds its peer asleep wakes it. */
static void wakes(void)
{
	struct sleeper s = {0};
	shmpipe_stats st;
	pthread_t t;
	int32_t v = 42, x;
	long w0, r0;

	test_pair(&s.w, &s.r, 64);
	ASSERT_OK(shmpipe_reader_set_spin(s.r, 0));
	ASSERT_OK(shmpipe_writer_set_spin(s.w, 0));
	warm(s.w, s.r);

	ASSERT_OK(shmpipe_reader_stats(s.r, &st));
	ASSERT_EQ(pthread_create(&t, NULL, read_sleeping, &s), 0);
	until_asleep(s.r, false, st.consumer_waits);
	w0 = writes();
	ASSERT_EQ(shmpipe_write(s.w, &v, sizeof(v)), 4);
	if (inline_expected)
		ASSERT_EQ(writes(), w0); /* the write that woke it was inline */
	ASSERT_EQ(pthread_join(t, NULL), 0);
	ASSERT_EQ(s.ret, 4);
	ASSERT_EQ(s.got, 42);

	/* Fill the ring, then a writer sleeps until an inline read frees room. */
	for (int i = 0; i < 64 / 4; i++)
		ASSERT_EQ(shmpipe_write(s.w, &i, sizeof(i)), 4);
	s.done = 0;
	ASSERT_OK(shmpipe_reader_stats(s.r, &st));
	ASSERT_EQ(pthread_create(&t, NULL, write_sleeping, &s), 0);
	until_asleep(s.r, true, st.producer_waits);
	ASSERT_EQ(__atomic_load_n(&s.done, __ATOMIC_ACQUIRE), 0);
	r0 = reads();
	ASSERT_EQ(shmpipe_read(s.r, &x, sizeof(x)), 4);
	ASSERT_EQ(x, 0);
	if (inline_expected)
		ASSERT_EQ(reads(), r0);
	ASSERT_EQ(pthread_join(t, NULL), 0);
	ASSERT_EQ(s.ret, 4);
	for (int i = 1; i < 64 / 4; i++) {
		ASSERT_EQ(shmpipe_read(s.r, &x, sizeof(x)), 4);
		ASSERT_EQ(x, i);
	}
	ASSERT_EQ(shmpipe_read(s.r, &x, sizeof(x)), 4);
	ASSERT_EQ(x, 99);
	ASSERT_OK(shmpipe_reader_close(s.r));
	ASSERT_OK(shmpipe_writer_close(s.w));
}

/* A reservation and a peek shut the gates; the library's next call ends them. */
static void lent(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	const void *seen;
	void *room;
	int32_t v = 7, x;

	test_pair(&w, &r, 4096);
	warm(w, r);
	ASSERT_GE(shmpipe_reserve(w, &room, 4), 4);
	ASSERT_EQ(fast_w(w)->avail, 0);
	memcpy(room, "abcd", 4);
	/* A write ends the reservation, which then cannot be committed. */
	ASSERT_EQ(shmpipe_write(w, &v, sizeof(v)), 4);
	ASSERT_ERR(shmpipe_commit(w, 4), -EINVAL);
	ASSERT_EQ(shmpipe_write(w, &v, sizeof(v)), 4);

	ASSERT_EQ(shmpipe_peek(r, &seen), 8);
	ASSERT_EQ(fast_r(r)->avail, 0);
	ASSERT_EQ(fast_r(r)->limit, 0);
	ASSERT_OK(shmpipe_consume(r, 2));
	/* A read ends the peek: it gets what follows the consumed bytes. */
	ASSERT_EQ(shmpipe_read(r, &x, 2), 2);
	ASSERT_EQ(shmpipe_read(r, &x, sizeof(x)), 4);
	ASSERT_EQ(x, 7);
	if (inline_expected)
		ASSERT_GT(fast_r(r)->limit, 0);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_writer_close(w));
}

/* Records and the end of the stream go through the library only. */
static void library_only(void)
{
	shmpipe_options o = {.capacity = 4096, .flags = SHMPIPE_RECORDS};
	shmpipe_writer *w;
	shmpipe_reader *r;
	int32_t v = 3, x;
	long w0, r0;

	ASSERT_OK(shmpipe_pair(&w, &r, &o));
	w0 = writes();
	r0 = reads();
	for (int i = 0; i < 100; i++) {
		ASSERT_EQ(shmpipe_write(w, &v, sizeof(v)), 4);
		ASSERT_EQ(shmpipe_read(r, &x, sizeof(x)), 4);
	}
	ASSERT_EQ(writes() - w0, 100);
	ASSERT_EQ(reads() - r0, 100);
	ASSERT_EQ(fast_w(w)->avail, 0);
	ASSERT_EQ(fast_r(r)->limit, 0);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_writer_close(w));

	test_pair(&w, &r, 4096);
	warm(w, r);
	ASSERT_EQ(shmpipe_write(w, &v, sizeof(v)), 4);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_EQ(shmpipe_read(r, &x, sizeof(x)), 4);
	ASSERT_EQ(shmpipe_read(r, &x, sizeof(x)), 0);
	ASSERT_EQ(fast_r(r)->avail, 0);
	ASSERT_EQ(fast_r(r)->limit, 0);
	ASSERT_EQ(shmpipe_read(r, &x, sizeof(x)), 0);
	ASSERT_OK(shmpipe_reader_close(r));
}

/*
 * write_index from shared memory is checked before the inline read uses it:
 * too far ahead is -EPROTO, as in the library.
 */
static void bad_index(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	const struct shmpipe__fast *f;
	uint64_t *wi, good;
	int32_t x;

	test_pair(&w, &r, 4096);
	warm(w, r);
	f = fast_r(r);
	wi = (uint64_t *)(void *)(f->shared + SHMPIPE__FAST_WRITE_INDEX);
	good = __atomic_load_n(wi, __ATOMIC_RELAXED);
	__atomic_store_n(wi, f->pos + f->capacity + 4, __ATOMIC_RELEASE);
	ASSERT_ERR(shmpipe_read(r, &x, sizeof(x)), -EPROTO);
	__atomic_store_n(wi, f->pos - 4, __ATOMIC_RELEASE);
	ASSERT_ERR(shmpipe_read(r, &x, sizeof(x)), -EPROTO);
	__atomic_store_n(wi, good, __ATOMIC_RELEASE);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_writer_close(w));
}

/* Bad arguments get the library's answers, never a fault. */
static void args(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	int32_t v = 1;
	void *nul = NULL;

	test_pair(&w, &r, 4096);
	warm(w, r);
	ASSERT_ERR(shmpipe_write(NULL, &v, sizeof(v)), -EINVAL);
	ASSERT_ERR(shmpipe_read(NULL, &v, sizeof(v)), -EINVAL);
	ASSERT_ERR(shmpipe_write(w, nul, sizeof(v)), -EINVAL);
	ASSERT_ERR(shmpipe_read(r, nul, sizeof(v)), -EINVAL);
	ASSERT_EQ(shmpipe_write(w, &v, 0), 0);
	ASSERT_EQ(shmpipe_read(r, &v, 0), 0);
	/* Longer than the window: the library takes it, in slices. */
	{
		static uint8_t big[3 * 4096], back[3 * 4096];

		test_pattern_fill(big, sizeof(big), 11, 0);
		for (size_t done = 0; done < sizeof(big);) {
			ssize_t n = shmpipe_write(w, big + done, 4096);

			ASSERT_EQ(n, 4096);
			test_read_exact(r, back + done, 4096);
			done += 4096;
		}
		ASSERT_PATTERN(back, sizeof(back), 11, 0);
	}
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_writer_close(w));
}

/* What the gates may promise, checked after every call of mixed(). */
static void gates_hold(shmpipe_writer *w, shmpipe_reader *r, uint64_t written, uint64_t taken)
{
	const struct shmpipe__fast *fw = fast_w(w), *fr = fast_r(r);

	ASSERT_EQ(fw->pos, written);
	ASSERT_EQ(fr->pos, taken);
	ASSERT_LT(fw->off, fw->data_size);
	ASSERT_LT(fr->off, fr->data_size);
	ASSERT_EQ(fw->off, written % fw->data_size);
	ASSERT_EQ(fr->off, taken % fr->data_size);
	/* Room that is free, short of the end of the first copy. */
	ASSERT_LE(fw->avail, fw->capacity - (fw->pos - fw->peer));
	if (fw->avail)
		ASSERT_LT(fw->off + fw->avail, fw->data_size);
	ASSERT_LE(fw->peer, taken);
	/* Data that is there. */
	ASSERT_LE(fr->avail, fr->peer - fr->pos);
	ASSERT_LE(fr->peer, written);
}

/*
 * Every write-side and read-side call in a random order, one thread, the
 * ends non-blocking, every byte checked: a call that moves a position
 * without shutting a gate, or a gate that promises more than is there,
 * shows as a wrong byte or a broken invariant.
 */
static void mixed(size_t capacity)
{
	const long ops = 100000 / TEST_SLOW;
	static uint8_t in[8192], out[8192];
	shmpipe_writer *w;
	shmpipe_reader *r;
	uint64_t seed = capacity, written = 0, taken = 0;
	long inline_ops = 0;

	test_pair(&w, &r, capacity);
	warm(w, r); /* blocking ends promise their barrier; the gates stay open after */
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	written = taken = fast_w(w)->pos;
	for (long i = 0; i < ops; i++) {
		uint64_t pick = test_rand_range(&seed, 0, 9);
		size_t len =
		    (size_t)(test_rand_range(&seed, 0, 3) ? test_rand_range(&seed, 1, 8)
							  : test_rand_range(&seed, 1, 700));
		long before = writes() + reads();
		ssize_t n;

		if (pick < 3) {
			test_pattern_fill(in, len, 5, written);
			n = shmpipe_write(w, in, len);
			if (n == -EAGAIN)
				continue;
			ASSERT_GT(n, 0);
			written += (uint64_t)n;
		} else if (pick == 3) {
			struct iovec iov[2];
			size_t a = len / 2;

			test_pattern_fill(in, len, 5, written);
			iov[0] = (struct iovec){in, a};
			iov[1] = (struct iovec){in + a, len - a};
			n = shmpipe_writev(w, iov, 2);
			if (n == -EAGAIN)
				continue;
			ASSERT_GT(n, 0);
			written += (uint64_t)n;
		} else if (pick == 4) {
			void *room;
			ssize_t got = shmpipe_reserve(w, &room, 1);

			if (got == -EAGAIN)
				continue;
			ASSERT_GT(got, 0);
			if (test_rand_range(&seed, 0, 3) == 0) {
				/* Left unused: the next call ends it. */
			} else {
				size_t k = len < (size_t)got ? len : (size_t)got;

				test_pattern_fill(room, k, 5, written);
				ASSERT_OK(shmpipe_commit(w, k));
				written += k;
			}
		} else if (pick < 8) {
			n = shmpipe_read(r, out, len);
			if (n == -EAGAIN)
				continue;
			ASSERT_GT(n, 0);
			ASSERT_PATTERN(out, (size_t)n, 5, taken);
			taken += (uint64_t)n;
		} else {
			const void *p;
			ssize_t got = shmpipe_peek(r, &p);
			size_t k;

			if (got == -EAGAIN)
				continue;
			ASSERT_GT(got, 0);
			k = len < (size_t)got ? len : (size_t)got;
			ASSERT_PATTERN(p, k, 5, taken);
			if (pick == 8) {
				ASSERT_OK(shmpipe_consume(r, k));
				taken += k;
			}
			/* pick 9: the peek is left; the next read ends it. */
		}
		if ((pick < 3 || (pick >= 5 && pick < 8)) && writes() + reads() == before)
			inline_ops++; /* a write or read that the library did not see */
		gates_hold(w, r, written, taken);
	}
	printf("mixed, capacity %zu: %ld calls, %ld writes and reads inline\n", capacity, ops,
	       inline_ops);
	if (inline_expected)
		ASSERT_GT(inline_ops, ops / 10);
	else
		ASSERT_EQ(inline_ops, 0);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_writer_close(w));
}

int main(void)
{
	test_watchdog(120);
	inline_expected = getenv("SHMPIPE_BARRIER") &&
			  strcmp(getenv("SHMPIPE_BARRIER"), "1") == 0 &&
			  getenv("SHMPIPE_NO_BARRIER") == NULL;
	{
		/* Where the system has no process-wide barrier, no gate opens. */
		shmpipe_writer *w;
		shmpipe_reader *r;
		int32_t v = 0;

		test_pair(&w, &r, 4096);
		for (int i = 0; i < 2; i++) {
			ASSERT_EQ(shmpipe_write(w, &v, sizeof(v)), 4);
			ASSERT_EQ(shmpipe_read(r, &v, sizeof(v)), 4);
		}
		if (inline_expected && fast_w(w)->avail == 0) {
			printf("no process-wide barrier here: the gates stay shut\n");
			inline_expected = false;
		}
		ASSERT_OK(shmpipe_reader_close(r));
		ASSERT_OK(shmpipe_writer_close(w));
	}
	printf("inline calls %s\n", inline_expected ? "expected" : "not expected");
	items();
	refused();
	wakes();
	lent();
	library_only();
	bad_index();
	args();
	mixed(4096);
	mixed(1000); /* capacity below the data region's size */
	mixed(3 * 4096);
	return T_PASS;
}
