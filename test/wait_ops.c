/* SPDX-License-Identifier: MIT */
/*
 * Description: the waiting path without real time. The library's waits reach
 * the operating system through one table (shmpipe__wait_ops, wait.c); this
 * program, linked with the static library, replaces the clock, the barrier,
 * the doorbell's wait and the lock query with fakes and checks the branches
 * that real time makes slow or rare: a 5-second timeout that expires at
 * once, at its exact deadline; a failed process-wide barrier, after which
 * an untimed wait goes in 10 ms slices and looks at the peer's lock after
 * each; a timed wait cut into those slices and ended by its own deadline;
 * a peer whose lock is no longer held, which a blind waiter reports as
 * dead (-ECONNRESET to the reader, -EPIPE to the writer) without waiting;
 * a doorbell that hangs up while the peer's lock is still held, as in the
 * moment between the two in a death, which an event loop's call waits out
 * once, in 1 ms steps for at most 20 ms, and a broadcast reader's life
 * line that does the same.
 */
#include "internal.h"
#include "os.h"
#include "test.h"

static uint64_t fake_ns = 1000000000; /* the fake monotonic clock */
static int barrier_result;	      /* what the fake barrier returns */
static int lock_result = -1;	      /* the fake lock query's answer; < 0: ask the kernel */

/* What the doorbell's waits saw, and what the next one does. */
#define MAX_WAITS 32
static int waits;
static int64_t deadline_ms[MAX_WAITS]; /* each wait's deadline from the start; -1: none */
static uint64_t start_ns;
static int (*on_wait)(int n, const struct timespec *deadline);

static uint64_t fake_now(void)
{
	return fake_ns;
}

static void fake_yield(void)
{
}

static void fake_deadline(struct timespec *out, int timeout_ms)
{
	uint64_t t = fake_ns + (uint64_t)timeout_ms * 1000000;

	out->tv_sec = (time_t)(t / 1000000000);
	out->tv_nsec = (long)(t % 1000000000);
}

static int fake_barrier(void)
{
	return barrier_result;
}

static int fake_doorbell_wait(int fd, int poll_fd, const struct timespec *deadline)
{
	int n = waits++;

	(void)fd;
	(void)poll_fd;
	ASSERT_LT(n, MAX_WAITS);
	if (deadline)
		deadline_ms[n] = ((int64_t)deadline->tv_sec * 1000000000 + deadline->tv_nsec -
				  (int64_t)start_ns) /
				 1000000;
	else
		deadline_ms[n] = -1;
	return on_wait(n, deadline);
}

static int fake_lock_held(int fd, unsigned byte)
{
	return lock_result >= 0 ? lock_result : shmpipe__os_lock_held(fd, byte);
}

static const struct shmpipe__wait_ops fake_ops = {
    .now_ns = fake_now,
    .yield = fake_yield,
    .deadline = fake_deadline,
    .barrier = fake_barrier,
    .doorbell_wait = fake_doorbell_wait,
    .lock_held = fake_lock_held,
};

/* The time runs on to the deadline, which ends the wait. */
static int expire(int n, const struct timespec *deadline)
{
	(void)n;
	ASSERT_TRUE(deadline != NULL);
	fake_ns = (uint64_t)deadline->tv_sec * 1000000000 + (uint64_t)deadline->tv_nsec;
	return -ETIMEDOUT;
}

static void reset(void)
{
	waits = 0;
	start_ns = fake_ns;
	barrier_result = 0;
	lock_result = -1;
}

/* A pair whose ends have promised their barriers: a blocking call each. */
static void promised_pair(shmpipe_writer **w, shmpipe_reader **r)
{
	uint8_t b = 1;

	test_pair(w, r, 64);
	ASSERT_EQ(shmpipe_write(*w, &b, 1), 1);
	ASSERT_EQ(shmpipe_read(*r, &b, 1), 1);
	ASSERT_OK(shmpipe_writer_set_spin(*w, 0));
	ASSERT_OK(shmpipe_reader_set_spin(*r, 0));
}

static void fill(shmpipe_writer *w)
{
	uint8_t full[64] = {0};

	ASSERT_EQ(shmpipe_write(w, full, sizeof(full)), 64);
}

/* A timeout of 5 s expires at once, at its exact deadline, counted as one wait. */
static void timeout_expires(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	shmpipe_stats st;
	uint8_t b = 2;

	promised_pair(&w, &r);
	fill(w);
	reset();
	on_wait = expire;
	ASSERT_OK(shmpipe_writer_set_timeout(w, 5000));
	ASSERT_ERR(shmpipe_write(w, &b, 1), -ETIMEDOUT);
	ASSERT_EQ(waits, 1);
	ASSERT_EQ(deadline_ms[0], 5000);
	ASSERT_EQ(fake_ns - start_ns, 5000ull * 1000000);
	ASSERT_OK(shmpipe_writer_stats(w, &st));
	ASSERT_EQ(st.producer_waits, 1);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_writer_close(w));
}

static shmpipe_writer *slices_writer;

/* Two slices end; in the third wait the writer publishes and rings. */
static int data_in_third_slice(int n, const struct timespec *deadline)
{
	uint8_t b = 9;

	if (n < 2)
		return expire(n, deadline);
	ASSERT_EQ(shmpipe_write(slices_writer, &b, 1), 1);
	return 0;
}

/*
 * A failed barrier leaves the waiter blind to a fenceless peer: an untimed
 * read then waits in slices of SHMPIPE__LIVENESS_MS, looking again after
 * each, until the data comes.
 */
static void blind_slices(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	uint8_t b = 0;

	promised_pair(&w, &r);
	reset();
	barrier_result = -ENOSYS;
	slices_writer = w;
	on_wait = data_in_third_slice;
	ASSERT_EQ(shmpipe_read(r, &b, 1), 1);
	ASSERT_EQ(b, 9);
	ASSERT_EQ(waits, 3);
	ASSERT_EQ(deadline_ms[0], 10);
	ASSERT_EQ(deadline_ms[1], 20);
	ASSERT_EQ(deadline_ms[2], 20 + 10);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_writer_close(w));
}

/* A timed wait in slices ends at its own deadline, not at a slice's. */
static void blind_timeout(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	uint8_t b;

	promised_pair(&w, &r);
	reset();
	barrier_result = -ENOSYS;
	on_wait = expire;
	ASSERT_OK(shmpipe_reader_set_timeout(r, 25));
	ASSERT_ERR(shmpipe_read(r, &b, 1), -ETIMEDOUT);
	ASSERT_EQ(waits, 3);
	ASSERT_EQ(deadline_ms[0], 10);
	ASSERT_EQ(deadline_ms[1], 20);
	ASSERT_EQ(deadline_ms[2], 25);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_writer_close(w));
}

static int no_wait_expected(int n, const struct timespec *deadline)
{
	(void)deadline;
	TEST_FAIL("wait %d: a dead peer is reported before any wait", n);
}

/*
 * A blind waiter asks the lock table whether its peer lives: a lock that
 * nobody holds is a dead peer, reported at once.
 */
static void dead_by_lock(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	uint8_t b;

	promised_pair(&w, &r);
	reset();
	barrier_result = -ENOSYS;
	lock_result = 0;
	on_wait = no_wait_expected;
	ASSERT_ERR(shmpipe_read(r, &b, 1), -ECONNRESET);
	fill(w);
	ASSERT_ERR(shmpipe_write(w, &b, 1), -EPIPE);
	ASSERT_EQ(waits, 0);
	/* The same lock held: alive, and the timed wait runs out as usual. */
	lock_result = 1;
	on_wait = expire;
	ASSERT_OK(shmpipe_writer_set_timeout(w, 50));
	ASSERT_ERR(shmpipe_write(w, &b, 1), -ETIMEDOUT);
	ASSERT_GE(waits, 1);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_writer_close(w));
}

static int lock_goes_in_third_step(int n, const struct timespec *deadline)
{
	if (n == 2)
		lock_result = 0;
	return expire(n, deadline);
}

/* The writer's doorbell hangs up: the reader's write side of it is closed. */
static void hang_up(shmpipe_reader *r)
{
	struct shmpipe__end *re = (struct shmpipe__end *)(void *)r;

	ASSERT_GE(re->peer_bell, 0);
	shmpipe__os_close(re->peer_bell);
	re->peer_bell = -1;
}

/*
 * The doorbell hangs up a moment before the dying peer's lock is let go:
 * the call an event loop makes when pollfd turns readable waits for the
 * lock in 1 ms steps and reports the death. A lock that stays held (the
 * peer only closed its write side) costs the 20 steps once, not per call.
 */
/* A polling writer on a full ring whose doorbell has hung up, its reader's lock held. */
static void hung_pair(shmpipe_writer **w, shmpipe_reader **r)
{
	test_pair(w, r, 64);
	fill(*w);
	ASSERT_OK(shmpipe_writer_set_timeout(*w, 0));
	hang_up(*r);
	reset();
	lock_result = 1;
}

static void hangup_grace(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	uint8_t b = 3;

	hung_pair(&w, &r);
	on_wait = lock_goes_in_third_step;
	ASSERT_ERR(shmpipe_write(w, &b, 1), -EPIPE);
	ASSERT_EQ(waits, 3);
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(deadline_ms[i], i + 1);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_writer_close(w));

	hung_pair(&w, &r);
	on_wait = expire;
	ASSERT_ERR(shmpipe_write(w, &b, 1), -EAGAIN);
	ASSERT_EQ(waits, 20);
	ASSERT_EQ(deadline_ms[19], 20);
	ASSERT_ERR(shmpipe_write(w, &b, 1), -EAGAIN);
	ASSERT_EQ(waits, 20);
	lock_result = 0;
	ASSERT_ERR(shmpipe_write(w, &b, 1), -EPIPE);
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_writer_close(w));
	lock_result = -1;
}

/*
 * The same moment for a broadcast writer: a reader's life line hangs up
 * while its lock is held. A polling writer is woken once for it (the line
 * leaves pollfd), so that call gives the lock its grace and drops the
 * reader: no reader left, -EPIPE.
 */
static void fan_hangup_grace(void)
{
	shmpipe_options o = test_opts(64);
	shmpipe_writer *w;
	shmpipe_reader *r;
	struct shmpipe__end *re;
	uint8_t b = 4;

	o.readers = 2;
	ASSERT_OK(shmpipe_pair(&w, &r, &o));
	fill(w);
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_ERR(shmpipe_write(w, &b, 1), -EAGAIN);
	re = (struct shmpipe__end *)(void *)r;
	ASSERT_GE(re->life, 0);
	shmpipe__os_close(re->life);
	re->life = -1;
	reset();
	lock_result = 1;
	on_wait = lock_goes_in_third_step;
	ASSERT_ERR(shmpipe_write(w, &b, 1), -EPIPE);
	ASSERT_EQ(waits, 3);
	lock_result = -1;
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_writer_close(w));
}

int main(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	bool promised;

	test_watchdog(60);
	shmpipe__wait_ops = &fake_ops;
	timeout_expires();
	hangup_grace();
	fan_hangup_grace();

	/* The barrier's branches need an end that promised one. */
	promised_pair(&w, &r);
	promised = ((struct shmpipe__end *)(void *)w)->barrier;
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_writer_close(w));
	if (!promised)
		TEST_SKIP("no process-wide barrier here: its failure cannot be played");
	blind_slices();
	blind_timeout();
	dead_by_lock();
	return T_PASS;
}
