/* SPDX-License-Identifier: MIT */
/*
 * The native half of the Node.js package: one pipe end (writer or reader)
 * wrapped for JavaScript, over the public shmpipe API only.
 *
 * One thread
 * ----------
 * Everything here runs on the thread of the end's JavaScript environment
 * (the main thread or a worker's): the addon starts no thread and takes no
 * lock on a pipe's path (one mutex guards the process-wide record of
 * endpoints, taken only to make, open or discard one). The library is
 * always called with timeout 0; a call that returns -EAGAIN has armed the
 * end's pollfd, which polls readable once that call may make progress.
 *
 * Asynchronous ends wait in the event loop: a libuv uv_poll_t watches the
 * pollfd, and its callback calls again. A write of any size takes no copy:
 * the job holds a reference to the caller's array of Buffers and feeds the
 * ring from them, at most ASYNC_SLICE bytes per loop turn, as room appears;
 * when a slice stops with room left, a uv_idle_t brings the job back on the
 * next turn, so timers and I/O run in between. The write's JavaScript
 * callback runs once the last byte is in the ring (or on an error); then the
 * references are dropped.
 *
 * Synchronous ends (the Sync* classes, { blocking: true }) wait in the
 * calling thread, in a private epoll set that holds the pollfd and, edge
 * triggered, the loop's own descriptor (uv_backend_fd). worker.terminate()
 * wakes that loop (uv_async_send to it), so the wait returns -EINTR and the
 * thread is back in JavaScript, where V8 stops it, at once; see sync_wait.
 *
 * Lifetimes
 * ---------
 * struct end is owned together by the JavaScript wrapper (until its
 * finalizer), the environment's async cleanup hook (until removed) and each
 * libuv handle (until its close callback); the last of them frees it. The
 * pollfd belongs to the library handle, and shmpipe_*_close/abort close it:
 * the uv_poll_t is closed first (uv_close stops watching at once). Closing
 * from JavaScript drops a pending callback without calling it (the stream
 * classes call it back themselves). A write end that is still open when its
 * wrapper is collected or its environment torn down (a worker that throws,
 * exits or is terminated) is aborted, so its reader sees -ECONNRESET after
 * the committed bytes and never takes the truncation for an end of stream.
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shmpipe.h"
#include "uv_min.h"

#define MAX_IOV 1024
/* Most bytes one loop turn copies into the ring for an asynchronous write. */
#define ASYNC_SLICE ((size_t)1 << 20)
/* Most records one call of shmpipe_writev takes. */
#define RECORD_BATCH 64
/* How often a synchronous wait returns to JavaScript when it cannot rely on the loop's descriptor. */
#define SYNC_SLICE_MS 100
/* Largest element a read takes whole (a float64 or a 64-bit integer is 8). */
#define MAX_READ_UNIT 16
/* The library's default spin (shmpipe_*_set_spin(-1)), in microseconds. */
#define DEFAULT_SPIN_US 30

enum kind { WRITER, READER };
enum op { OP_NONE, OP_WAIT, OP_WRITE };

/* An asynchronous write in progress: where it stands in the caller's chunks. */
struct job {
	napi_ref chunks; /* the JavaScript array of Buffers, held, never copied */
	size_t *lens;	 /* each chunk's length when the write began */
	int n;		 /* chunks */
	int i;		 /* the next chunk to write from */
	size_t skip;	 /* bytes of chunk i already in the ring */
	size_t unit;	 /* stream mode: only whole units go into the ring */
};

struct end {
	enum kind kind;
	shmpipe_writer *w; /* the library handle; both NULL once closed */
	shmpipe_reader *r;
	bool records;
	unsigned
	    readers; /* a write end: the readers its pipe takes at once (1, or a broadcast's N) */
	int pollfd;
	unsigned spin_us; /* synchronous waits spin this long before they sleep */

	napi_env env;
	uv_loop_t *loop;
	int loop_fd;	/* uv_backend_fd(loop), or -1 */
	int sync_ep;	/* the epoll set of synchronous waits, or -1 */
	bool loop_news; /* the last synchronous wait ended for news on the loop */

	uv_poll_t *poll; /* made at the first asynchronous wait */
	uv_idle_t *idle; /* made when a write first stops with room left */
	bool polling, idling;
	int handles; /* libuv handles not yet closed */

	enum op op;
	napi_ref callback; /* the pending operation's JavaScript callback */
	napi_async_context actx;
	struct job job;

	napi_ref view; /* the ArrayBuffer of the last zero-copy peek, or reserve (write end) */
	size_t view_len;

	unsigned char carry[MAX_READ_UNIT]; /* the start of an element, taken from the ring */
	size_t carry_len;

	napi_async_cleanup_hook_handle hook;
	bool wrapped;  /* the JavaScript wrapper still holds the end */
	bool teardown; /* the environment is going away */
};

static void end_free_if_unused(struct end *e)
{
	if (!e->wrapped && !e->hook && e->handles == 0) {
		free(e->job.lens);
		free(e);
	}
}

/* ---- errors and argument checks ------------------------------------- */

static napi_value undefined(napi_env env)
{
	napi_value v;

	napi_get_undefined(env, &v);
	return v;
}

static napi_value int_value(napi_env env, int64_t n)
{
	napi_value v;

	napi_create_int64(env, n, &v);
	return v;
}

static napi_value type_error(napi_env env, const char *msg)
{
	napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
	return NULL;
}

static napi_value range_error(napi_env env, const char *msg)
{
	napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
	return NULL;
}

static bool get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv)
{
	size_t argc = want;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok)
		return false;
	for (size_t i = argc; i < want; i++)
		argv[i] = undefined(env);
	return true;
}

static bool is_type(napi_env env, napi_value v, napi_valuetype t)
{
	napi_valuetype got;

	return napi_typeof(env, v, &got) == napi_ok && got == t;
}

/* An integer argument in [lo, hi]; throws and returns false otherwise. */
static bool get_int(napi_env env, napi_value v, int64_t lo, int64_t hi, int64_t *out,
		    const char *what)
{
	double d;

	if (!is_type(env, v, napi_number)) {
		type_error(env, what);
		return false;
	}
	napi_get_value_double(env, v, &d);
	if (!(d >= (double)lo && d <= (double)hi) || d != (double)(int64_t)d) {
		range_error(env, what);
		return false;
	}
	*out = (int64_t)d;
	return true;
}

/* A pipe name argument, or NULL for undefined/null (anonymous). */
static bool get_name(napi_env env, napi_value v, char *buf, size_t size, bool *have)
{
	size_t len;

	*have = false;
	if (is_type(env, v, napi_undefined) || is_type(env, v, napi_null))
		return true;
	if (!is_type(env, v, napi_string)) {
		type_error(env, "name must be a string");
		return false;
	}
	napi_get_value_string_utf8(env, v, NULL, 0, &len);
	if (len + 1 > size) {
		range_error(env, "name is too long");
		return false;
	}
	napi_get_value_string_utf8(env, v, buf, size, &len);
	if (strlen(buf) != len) {
		type_error(env, "name must not contain NUL");
		return false;
	}
	*have = true;
	return true;
}

static struct end *get_end(napi_env env, napi_value v)
{
	struct end *e = NULL;

	if (!is_type(env, v, napi_object) || napi_unwrap(env, v, (void **)&e) != napi_ok || !e) {
		type_error(env, "not a shmpipe handle");
		return NULL;
	}
	return e;
}

static napi_value throw_rc(napi_env env, int rc, const char *what)
{
	napi_value err, msg, code, errno_v;
	char text[256];
	const char *name = "EIO";

	switch (-rc) {
	case EINVAL:
		name = "EINVAL";
		break;
	case EEXIST:
		name = "EEXIST";
		break;
	case ENOENT:
		name = "ENOENT";
		break;
	case EBUSY:
		name = "EBUSY";
		break;
	case EPROTO:
		name = "EPROTO";
		break;
	case EACCES:
		name = "EACCES";
		break;
	case ENOMEM:
		name = "ENOMEM";
		break;
	case EMFILE:
		name = "EMFILE";
		break;
	case EBADF:
		name = "EBADF";
		break;
	case EMSGSIZE:
		name = "EMSGSIZE";
		break;
	case EPIPE:
		name = "EPIPE";
		break;
	case ECONNRESET:
		name = "ECONNRESET";
		break;
	case EAGAIN: /* an opener crowded out of the creator's rendezvous */
		name = "EAGAIN";
		break;
	case ENOSPC:
		name = "ENOSPC";
		break;
	case EPERM:
		name = "EPERM";
		break;
	case ECONNREFUSED:
		name = "ECONNREFUSED";
		break;
	case EOPNOTSUPP:
		name = "EOPNOTSUPP";
		break;
	case ETIMEDOUT:
		name = "ETIMEDOUT";
		break;
	case EINTR:
		name = "EINTR";
		break;
	default:
		break;
	}
	snprintf(text, sizeof(text), "%s: %s", what, shmpipe_strerror(rc));
	napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
	napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
	napi_create_error(env, code, msg, &err);
	napi_create_int32(env, rc, &errno_v);
	napi_set_named_property(env, err, "errno", errno_v);
	napi_throw(env, err);
	return NULL;
}

/* The bytes of a Buffer or typed array; false if v is neither. */
static bool view_bytes(napi_env env, napi_value v, void **data, size_t *len)
{
	static const size_t sizes[] = {1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8};
	bool ok;

	if (napi_is_typedarray(env, v, &ok) == napi_ok && ok) {
		napi_typedarray_type t;
		size_t count, off;
		napi_value ab;

		napi_get_typedarray_info(env, v, &t, &count, data, &ab, &off);
		*len = count * ((size_t)t < sizeof(sizes) / sizeof(sizes[0]) ? sizes[t] : 1);
		return true;
	}
	if (napi_is_buffer(env, v, &ok) == napi_ok && ok) {
		napi_get_buffer_info(env, v, data, len);
		return true;
	}
	return false;
}

/* ---- time and spinning --------------------------------------------------- */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A call's limit as poll(2) counts it, turned into an instant (ns), or -1 for none. */
static int64_t deadline_of(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : now_ns() + (int64_t)timeout_ms * 1000000;
}

static int ms_left(int64_t deadline)
{
	if (deadline < 0)
		return -1;
	int64_t left = deadline - now_ns();

	return left <= 0 ? 0 : (int)((left + 999999) / 1000000);
}

#if defined(__x86_64__) || defined(__i386__)
static inline void cpu_relax(void)
{
	__builtin_ia32_pause();
}
#elif defined(__aarch64__)
static inline void cpu_relax(void)
{
	__asm__ __volatile__("yield");
}
#else
static inline void cpu_relax(void)
{
	__asm__ __volatile__("" ::: "memory");
}
#endif

/*
 * Whether the counters show data (reader) or at least need free bytes
 * (writer). A stats error counts as ready: the spin ends, and the call that
 * follows meets the error and reports it.
 */
static bool looks_ready(const struct end *e, size_t need)
{
	shmpipe_stats s;

	if (e->w)
		return shmpipe_writer_stats(e->w, &s) == 0 &&
		       s.capacity - (s.write_index - s.read_index) >= need;
	return shmpipe_reader_stats(e->r, &s) == 0 && s.write_index != s.read_index;
}

/*
 * What the library's own spin does before a blocking call sleeps, for the
 * synchronous waits here (which call it with timeout 0, so that it never
 * spins itself): look at the shared counters, without announcing a wait,
 * for up to spin_us, so that a peer about to act is met without a sleep on
 * this side or a ring on the other.
 */
static void spin_until_ready(const struct end *e, size_t need)
{
	int64_t start;

	if (!e->spin_us || looks_ready(e, need))
		return;
	start = now_ns();
	for (unsigned k = 1;; k++) {
		cpu_relax();
		if (looks_ready(e, need))
			return;
		if (k % 16 == 0 && now_ns() - start >= (int64_t)e->spin_us * 1000)
			return;
	}
}

/* ---- waiting in the calling thread --------------------------------------- */

/*
 * Sleeps until the pollfd polls readable (0), the time is up (-ETIMEDOUT),
 * or the thread should go back to JavaScript (-EINTR): a signal, or news on
 * the environment's event loop. The loop's descriptor is in the set edge
 * triggered: worker.terminate() ends with uv_async_send to the worker's
 * loop, which makes that descriptor report a new event even though nobody
 * runs the loop while we sleep, and the call returns at once, where V8 then
 * stops the worker. Other news (a message for this thread, or news from
 * before this wait) costs one trip to JavaScript and back.
 *
 * After such news the loop may hold events that nobody takes while this
 * thread stays in JavaScript, and a termination could then find its wake-up
 * already pending and make no new edge. So until the loop's descriptor is
 * seen quiet again, the sleep is cut into SYNC_SLICE_MS slices, as it was
 * before the descriptor existed. In the steady state a wait is one
 * epoll_wait.
 */
static int sync_wait(struct end *e, int timeout_ms)
{
	struct epoll_event ev[2];
	int n, slice = timeout_ms;

	if (e->sync_ep < 0) {
		struct epoll_event add = {.events = EPOLLIN, .data.u32 = 0};
		int ep = epoll_create1(EPOLL_CLOEXEC);

		if (ep < 0)
			return -errno;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, e->pollfd, &add) < 0) {
			n = -errno;
			close(ep);
			return n;
		}
		add.events = EPOLLIN | EPOLLET;
		add.data.u32 = 1;
		if (e->loop_fd >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, e->loop_fd, &add) < 0)
			e->loop_fd = -1;
		e->sync_ep = ep;
	}
	if (e->loop_fd < 0) {
		slice = SYNC_SLICE_MS;
	} else if (e->loop_news) {
		struct pollfd p = {.fd = e->loop_fd, .events = POLLIN};

		e->loop_news = poll(&p, 1, 0) > 0;
		if (e->loop_news)
			slice = SYNC_SLICE_MS;
	}
	if (timeout_ms >= 0 && timeout_ms < slice)
		slice = timeout_ms;
	n = epoll_wait(e->sync_ep, ev, 2, slice);
	if (n < 0)
		return -errno;
	if (n == 0)
		return slice == timeout_ms ? -ETIMEDOUT : -EINTR;
	for (int i = 0; i < n; i++) {
		if (ev[i].data.u32 == 1) {
			e->loop_news = true;
			return -EINTR;
		}
	}
	return 0;
}

/* ---- writing into the ring ---------------------------------------------- */

/* A position in a list of buffers: buffer i, skip bytes into it. */
struct cursor {
	struct iovec *iov;
	int n;
	int i;
	size_t skip;
};

static size_t cursor_left(const struct cursor *c)
{
	size_t left = 0;

	for (int i = c->i; i < c->n; i++)
		left += c->iov[i].iov_len;
	return left - c->skip;
}

/*
 * Stream mode: copies up to max bytes (whole units) from the cursor into
 * the ring through reserve/commit, without waiting. Returns the bytes
 * written, or -errno (-EAGAIN: the ring is full) if none were.
 */
static ssize_t pump_stream(shmpipe_writer *w, struct cursor *c, size_t unit, size_t max)
{
	size_t total = 0, left = cursor_left(c);

	if (max < unit)
		max = unit;
	while (left >= unit && max - total >= unit) {
		void *p;
		ssize_t room = shmpipe_reserve(w, &p, unit);

		if (room < 0)
			return total ? (ssize_t)total : room;
		size_t n = (size_t)room;

		if (n > left)
			n = left;
		if (n > max - total)
			n = max - total;
		n -= n % unit;
		for (size_t k = 0; k < n;) {
			size_t take = c->iov[c->i].iov_len - c->skip;

			if (take > n - k)
				take = n - k;
			memcpy((char *)p + k, (char *)c->iov[c->i].iov_base + c->skip, take);
			k += take;
			c->skip += take;
			if (c->skip == c->iov[c->i].iov_len) {
				c->i++;
				c->skip = 0;
			}
		}
		int rc = shmpipe_commit(w, n);

		if (rc < 0)
			return total ? (ssize_t)total : rc;
		total += n;
		left -= n;
	}
	/* Empty buffers at the end are written too. */
	while (c->i < c->n && c->iov[c->i].iov_len == c->skip) {
		c->i++;
		c->skip = 0;
	}
	return (ssize_t)total;
}

/*
 * Record mode: each buffer is one record. Writes the records that fit, up
 * to about max payload bytes (at least one record), without waiting.
 * Returns the payload bytes written, or -errno if none were.
 */
static ssize_t pump_records(shmpipe_writer *w, struct cursor *c, size_t max)
{
	size_t total = 0;

	while (c->i < c->n && total < max) {
		int cnt = 0;
		size_t batch = 0;

		while (c->i + cnt < c->n && cnt < RECORD_BATCH && (cnt == 0 || total + batch < max))
			batch += c->iov[c->i + cnt++].iov_len;
		ssize_t rc = shmpipe_writev(w, c->iov + c->i, cnt);

		if (rc < 0)
			return total ? (ssize_t)total : rc;
		/* Step over the whole records written (and empty ones, which are skipped). */
		size_t done = 0;
		int end = c->i + cnt;

		while (c->i < end && done + c->iov[c->i].iov_len <= (size_t)rc) {
			done += c->iov[c->i].iov_len;
			c->i++;
		}
		total += done;
		if (c->i < end)
			break; /* the ring is full */
	}
	return (ssize_t)total;
}

static ssize_t pump(struct end *e, struct cursor *c, size_t unit, size_t max)
{
	if (c->i >= c->n)
		return 0;
	return e->records ? pump_records(e->w, c, max) : pump_stream(e->w, c, unit, max);
}

/* ---- the event loop: uv_poll_t, uv_idle_t, callbacks ----------------------- */

static void on_handle_closed(uv_handle_t *h)
{
	struct end *e = uv_handle_get_data(h);

	free(h);
	e->handles--;
	if (e->handles == 0 && e->hook && !e->w && !e->r) {
		napi_remove_async_cleanup_hook(e->hook);
		e->hook = NULL;
	}
	end_free_if_unused(e);
}

static void on_ready(struct end *e, int status);

static void on_poll(uv_poll_t *h, int status, int events)
{
	(void)events;
	on_ready(uv_handle_get_data((uv_handle_t *)h), status);
}

static void on_idle(uv_idle_t *h)
{
	on_ready(uv_handle_get_data((uv_handle_t *)h), 0);
}

/* Starts or stops watching the pollfd: 0, or libuv's -errno. Stopping cannot fail. */
static int set_polling(struct end *e, bool on)
{
	int rc = 0;

	if (on != e->polling) {
		rc = on ? uv_poll_start(e->poll, UV_READABLE, on_poll) : uv_poll_stop(e->poll);
		if (rc == 0)
			e->polling = on;
	}
	return rc;
}

static int set_idling(struct end *e, bool on)
{
	int rc = 0;

	if (on != e->idling) {
		rc = on ? uv_idle_start(e->idle, on_idle) : uv_idle_stop(e->idle);
		if (rc == 0)
			e->idling = on;
	}
	return rc;
}

/* Makes the end's uv_poll_t (and, for what == UV_IDLE, its uv_idle_t) if not made yet. */
static int make_handle(struct end *e, uv_handle_type what)
{
	uv_handle_t *h;
	int err;

	if (what == UV_POLL ? e->poll != NULL : e->idle != NULL)
		return 0;
	h = malloc(uv_handle_size(what));
	if (!h)
		return -ENOMEM;
	/* uv_poll_init makes the descriptor O_NONBLOCK: harmless, it is an epoll instance. */
	err = what == UV_POLL ? uv_poll_init(e->loop, (uv_poll_t *)h, e->pollfd)
			      : uv_idle_init(e->loop, (uv_idle_t *)h);
	if (err < 0) {
		free(h);
		return err;
	}
	uv_handle_set_data(h, e);
	e->handles++;
	if (what == UV_POLL)
		e->poll = (uv_poll_t *)h;
	else
		e->idle = (uv_idle_t *)h;
	return 0;
}

static void job_release(napi_env env, struct end *e)
{
	if (e->job.chunks && !e->teardown)
		napi_delete_reference(env, e->job.chunks);
	e->job.chunks = NULL;
	free(e->job.lens);
	e->job.lens = NULL;
}

/* Ends the pending operation and calls its callback with rc. */
static void finish(struct end *e, int rc)
{
	napi_env env = e->env;
	napi_handle_scope scope;
	napi_value cb, recv, arg, ret;
	napi_ref ref = e->callback;

	if (e->poll)
		(void)set_polling(e, false); /* stopping cannot fail */
	if (e->idle)
		(void)set_idling(e, false);
	e->op = OP_NONE;
	e->callback = NULL;
	job_release(env, e);
	if (!ref)
		return;
	napi_open_handle_scope(env, &scope);
	napi_get_reference_value(env, ref, &cb);
	napi_delete_reference(env, ref);
	napi_get_global(env, &recv);
	arg = int_value(env, rc);
	/* A callback scope: ticks and microtasks run after it, as after any I/O callback. */
	if (napi_make_callback(env, e->actx, recv, cb, 1, &arg, &ret) == napi_pending_exception) {
		napi_value exc;

		napi_get_and_clear_last_exception(env, &exc);
		napi_fatal_exception(env, exc);
	}
	napi_close_handle_scope(env, scope);
}

/*
 * One slice of an asynchronous write, from the referenced chunks: 1 if
 * room may be left (the slice ended), -EAGAIN if the ring is full, 0 once
 * everything is in, or another -errno. A chunk whose length changed since
 * the write began (its ArrayBuffer was detached, transferred or resized)
 * fails the write with -EFAULT rather than write less than was asked.
 */
static int job_slice(struct end *e, napi_value arr)
{
	struct iovec iov[MAX_IOV];
	struct job *j = &e->job;
	struct cursor c = {.iov = iov, .n = 0, .i = 0, .skip = j->skip};
	size_t have = 0;
	ssize_t rc;

	/* Fresh pointers for as many chunks as this slice may reach. */
	for (int k = j->i; k < j->n && have < ASYNC_SLICE + j->skip; k++) {
		napi_value v;
		void *data;
		size_t len;

		if (napi_get_element(e->env, arr, (uint32_t)k, &v) != napi_ok ||
		    !view_bytes(e->env, v, &data, &len) || len != j->lens[k])
			return -EFAULT;
		iov[c.n].iov_base = data;
		iov[c.n].iov_len = len;
		c.n++;
		have += len;
	}
	rc = pump(e, &c, j->unit, ASYNC_SLICE);
	if (rc < 0)
		return (int)rc;
	if (c.i == 0 && c.skip == j->skip && j->i < j->n)
		return -EAGAIN; /* no step forward: wait for the descriptor, do not spin */
	j->i += c.i;
	j->skip = c.skip;
	return j->i >= j->n ? 0 : 1;
}

/*
 * The end's descriptor polled readable, or a write slice is due; status is
 * libuv's error for the poll (the descriptor cannot be watched), which ends
 * the operation.
 */
static void on_ready(struct end *e, int status)
{
	napi_handle_scope scope;
	napi_value arr;
	int rc;

	if (e->op == OP_NONE)
		return;
	if (status < 0) {
		finish(e, status);
		return;
	}
	if (e->op == OP_WAIT) {
		finish(e, 0);
		return;
	}
	napi_open_handle_scope(e->env, &scope);
	napi_get_reference_value(e->env, e->job.chunks, &arr);
	rc = job_slice(e, arr);
	napi_close_handle_scope(e->env, scope);
	if (rc == 1 && !make_handle(e, UV_IDLE)) {
		/* Room may be left: the next slice on the next turn of the loop. */
		(void)set_polling(e, false);
		rc = set_idling(e, true);
		if (rc < 0)
			finish(e, rc);
	} else if (rc == 1 || rc == -EAGAIN) {
		if (e->idle)
			(void)set_idling(e, false);
		rc = set_polling(e, true);
		if (rc < 0)
			finish(e, rc);
	} else {
		finish(e, rc);
	}
}

/*
 * Detaches the Buffer of the last peek or reserve (its length becomes 0),
 * so that it can never reach memory the other end may reuse, and forgets
 * it. No JavaScript runs during the teardown: leave the references to Node
 * then.
 */
static void drop_view(napi_env env, struct end *e)
{
	napi_value ab;

	if (e->view && !e->teardown) {
		if (napi_get_reference_value(env, e->view, &ab) == napi_ok && ab)
			napi_detach_arraybuffer(env, ab);
		napi_delete_reference(env, e->view);
	}
	e->view = NULL;
	e->view_len = 0;
}

/* ---- closing ------------------------------------------------------------- */

static void close_uv(uv_handle_t **h)
{
	if (*h) {
		uv_close(*h, on_handle_closed);
		*h = NULL;
	}
}

/*
 * Closes the end: its libuv handles first (they stop watching the pollfd at
 * once), then the library handle, which closes the pollfd. A write end is
 * aborted if abort is set. Drops a pending operation without calling it.
 * Returns what the library's close returned (0, or -errno), 0 if the end
 * was closed already.
 */
static int end_close(struct end *e, bool abort)
{
	napi_env env = e->env;
	int rc = 0;

	if (!e->w && !e->r)
		return 0;
	e->op = OP_NONE;
	if (e->callback && !e->teardown)
		napi_delete_reference(env, e->callback);
	e->callback = NULL;
	job_release(env, e);
	close_uv((uv_handle_t **)&e->poll);
	close_uv((uv_handle_t **)&e->idle);
	e->polling = e->idling = false;
	if (e->sync_ep >= 0)
		close(e->sync_ep);
	e->sync_ep = -1;
	if (e->w)
		rc = abort ? shmpipe_writer_abort(e->w) : shmpipe_writer_close(e->w);
	if (e->r)
		rc = shmpipe_reader_close(e->r);
	e->w = NULL;
	e->r = NULL;
	drop_view(env, e); /* a reservation still out is dropped, unpublished */
	if (e->actx)
		napi_async_destroy(env, e->actx);
	e->actx = NULL;
	/* The hook goes once the handles are closed: the teardown waits for them. */
	if (e->hook && e->handles == 0) {
		napi_remove_async_cleanup_hook(e->hook);
		e->hook = NULL;
	}
	return rc;
}

/* The environment is going away (a worker that ended, threw, exited or was terminated). */
static void cleanup_hook(napi_async_cleanup_hook_handle handle, void *arg)
{
	struct end *e = arg;

	(void)handle;
	e->teardown = true;
	(void)end_close(e, true); /* nobody is left to tell */
	end_free_if_unused(e);
}

static void finalize_end(napi_env env, void *data, void *hint)
{
	struct end *e = data;

	(void)env;
	(void)hint;
	(void)end_close(e, true); /* nobody is left to tell */
	e->wrapped = false;
	end_free_if_unused(e);
}

/*
 * Wraps a new handle in a JavaScript object. Its mode comes from the pipe
 * itself (shmpipe_*_options), never from what the opener assumed: an end
 * that read records as bytes would consume part of a record (-EINVAL) and
 * see the same record again for ever.
 */
static napi_value wrap_end(napi_env env, enum kind kind, shmpipe_writer *w, shmpipe_reader *r)
{
	struct end *e = calloc(1, sizeof(*e));
	napi_value obj, name;
	shmpipe_options o;
	int rc = w ? shmpipe_writer_options(w, &o) : shmpipe_reader_options(r, &o);

	if (!e || rc < 0) {
		free(e);
		/* The error thrown is the one to tell. */
		if (w)
			(void)shmpipe_writer_abort(w);
		if (r)
			(void)shmpipe_reader_close(r);
		return throw_rc(env, rc < 0 ? rc : -ENOMEM, "open");
	}
	e->kind = kind;
	e->w = w;
	e->r = r;
	e->records = (o.flags & SHMPIPE_RECORDS) != 0;
	e->readers = 1;
	e->env = env;
	e->sync_ep = -1;
	e->loop_fd = -1;
	e->spin_us = DEFAULT_SPIN_US;
	e->pollfd = w ? shmpipe_writer_pollfd(w) : shmpipe_reader_pollfd(r);
	rc = e->pollfd < 0 ? e->pollfd
	     : w	   ? shmpipe_writer_set_timeout(w, 0)
			   : shmpipe_reader_set_timeout(r, 0);
	if (rc < 0) {
		(void)end_close(e, true); /* the error thrown is the one to tell */
		free(e);
		return throw_rc(env, rc, "open");
	}
	if (napi_get_uv_event_loop(env, (struct uv_loop_s **)&e->loop) == napi_ok && e->loop)
		e->loop_fd = uv_backend_fd(e->loop);

	napi_create_object(env, &obj);
	napi_create_string_utf8(env, "shmpipe", NAPI_AUTO_LENGTH, &name);
	if (napi_async_init(env, NULL, name, &e->actx) != napi_ok ||
	    napi_add_async_cleanup_hook(env, cleanup_hook, e, &e->hook) != napi_ok) {
		(void)end_close(e, true);
		free(e);
		napi_throw_error(env, "EFAULT", "cannot set up a pipe end");
		return NULL;
	}
	e->wrapped = true;
	if (napi_wrap(env, obj, e, finalize_end, NULL, NULL) != napi_ok) {
		e->wrapped = false;
		(void)end_close(e, true);
		end_free_if_unused(e);
		napi_throw_error(env, "EFAULT", "cannot wrap a handle");
		return NULL;
	}
	return obj;
}

/*
 * Whether the JavaScript thread may call the library on the end now; if
 * not, *err is -EBADF (closed) or -EBUSY (an asynchronous operation is
 * pending on it).
 */
static bool usable(struct end *e, int *err)
{
	*err = !e->w && !e->r ? -EBADF : e->op != OP_NONE ? -EBUSY : 0;
	return *err == 0;
}

/* ---- creating and opening -------------------------------------------- */

static bool get_options(napi_env env, napi_value cap, napi_value flags, napi_value mode,
			napi_value readers, shmpipe_options *o)
{
	int64_t c = 0, f = 0, m = 0, n = 0;

	if (!is_type(env, cap, napi_undefined) &&
	    !get_int(env, cap, 0, (int64_t)SHMPIPE_MAX_CAPACITY, &c,
		     "capacity must be an integer from 0 to 2^40"))
		return false;
	if (!is_type(env, flags, napi_undefined) &&
	    !get_int(env, flags, 0, SHMPIPE_RECORDS | SHMPIPE_SHARE, &f,
		     "flags must be SHMPIPE_RECORDS, SHMPIPE_SHARE or both"))
		return false;
	if (!is_type(env, mode, napi_undefined) &&
	    !get_int(env, mode, 0, 0777, &m, "mode must be permission bits (0 to 0o777)"))
		return false;
	if (!is_type(env, readers, napi_undefined) &&
	    !get_int(env, readers, 0, SHMPIPE_READERS_MAX, &n,
		     "readers must be an integer from 1 to 64 (0 = 1)"))
		return false;
	memset(o, 0, sizeof(*o));
	o->capacity = (size_t)c;
	o->flags = (unsigned)f;
	o->mode = (unsigned)m;
	o->readers = (uint32_t)n;
	return true;
}

/*
 * create(kind, name|null, capacity, flags, mode, readers) -> handle. A
 * broadcast pipe (readers > 1) is made by its writer: the library refuses
 * a reader's with a bare -EINVAL, so that is said here in words. So is a
 * work-sharing pipe (SHMPIPE_SHARE), which is also a broadcast one's.
 */
static napi_value js_create(napi_env env, napi_callback_info info)
{
	napi_value argv[6], obj;
	char name[256];
	bool have;
	int64_t kind;
	shmpipe_options o;
	int rc;

	if (!get_args(env, info, 6, argv) || !get_int(env, argv[0], 0, 1, &kind, "bad end kind") ||
	    !get_name(env, argv[1], name, sizeof(name), &have) ||
	    !get_options(env, argv[2], argv[3], argv[4], argv[5], &o))
		return NULL;
	if (kind == WRITER) {
		shmpipe_writer *w;
		struct end *e;

		rc = shmpipe_writer_create(&w, have ? name : NULL, &o);
		if (rc < 0)
			return throw_rc(env, rc, "shmpipe_writer_create");
		obj = wrap_end(env, WRITER, w, NULL);
		if (obj && napi_unwrap(env, obj, (void **)&e) == napi_ok && e)
			e->readers = o.readers > 1 ? o.readers : 1;
		return obj;
	} else {
		shmpipe_reader *r;

		if (o.readers > 1)
			return type_error(env,
					  "readers: a broadcast pipe is created by its writer");
		if (o.flags & SHMPIPE_SHARE)
			return type_error(env,
					  "share: a work-sharing pipe is created by its writer");
		rc = shmpipe_reader_create(&r, have ? name : NULL, &o);
		if (rc < 0)
			return throw_rc(env, rc, "shmpipe_reader_create");
		return wrap_end(env, READER, NULL, r);
	}
}

/*
 * Endpoints
 * ---------
 * An anonymous pipe's endpoint() carries a duplicate of the pipe's
 * descriptor, owned by the package until the endpoint is opened or
 * discarded. A descriptor number alone cannot say which object it names:
 * once closed, the number is reused by the next open. So each duplicate is
 * recorded here, process-wide (workers share the descriptor table), with an
 * id that the endpoint carries and the object's identity (st_dev, st_ino).
 * Opening or discarding an endpoint claims its record first: a second open
 * of the same endpoint, an open after a discard, or one through a number
 * that now names something else finds no record (or another object) and is
 * refused, and never closes a descriptor the package does not own.
 */
struct ep_slot {
	int fd;
	double id;
	dev_t dev;
	ino_t ino;
};

static pthread_mutex_t ep_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ep_slot *ep_slots;
static size_t ep_count, ep_size;
static double ep_next_id = 1;

/* Records fd under a new id (0 if out of memory). A record of the same number is stale: drop it. */
static double ep_record(int fd, const struct stat *st)
{
	double id = 0;

	pthread_mutex_lock(&ep_lock);
	for (size_t i = 0; i < ep_count; i++) {
		if (ep_slots[i].fd == fd)
			ep_slots[i--] = ep_slots[--ep_count];
	}
	if (ep_count == ep_size) {
		size_t size = ep_size ? ep_size * 2 : 16;
		struct ep_slot *more = realloc(ep_slots, size * sizeof(*more));

		if (more) {
			ep_slots = more;
			ep_size = size;
		}
	}
	if (ep_count < ep_size) {
		id = ep_next_id++;
		ep_slots[ep_count++] = (struct ep_slot){fd, id, st->st_dev, st->st_ino};
	}
	pthread_mutex_unlock(&ep_lock);
	return id;
}

/*
 * Claims the record of an endpoint: 0 if fd is the endpoint's descriptor,
 * still open on the object it was made for (the record is then gone: the
 * caller owns fd and must close it), -EBADF if the endpoint was already
 * opened or discarded, -ESTALE if its number now names another object.
 */
static int ep_claim(int fd, double id)
{
	struct ep_slot slot = {.fd = -1};
	struct stat st;

	pthread_mutex_lock(&ep_lock);
	for (size_t i = 0; i < ep_count; i++) {
		if (ep_slots[i].id == id && ep_slots[i].fd == fd) {
			slot = ep_slots[i];
			ep_slots[i] = ep_slots[--ep_count];
			break;
		}
	}
	pthread_mutex_unlock(&ep_lock);
	if (slot.fd < 0)
		return -EBADF;
	if (fstat(fd, &st) < 0 || st.st_dev != slot.dev || st.st_ino != slot.ino)
		return -ESTALE;
	return 0;
}

static bool get_endpoint(napi_env env, napi_value fdv, napi_value idv, int64_t *fd, double *id)
{
	if (!get_int(env, fdv, 0, INT_MAX, fd, "endpoint fd must be a descriptor"))
		return false;
	if (!is_type(env, idv, napi_number)) {
		type_error(env, "endpoint id must be a number");
		return false;
	}
	napi_get_value_double(env, idv, id);
	return true;
}

static napi_value endpoint_error(napi_env env, int rc)
{
	napi_throw_error(env, "ERR_SHMPIPE_ENDPOINT",
			 rc == -ESTALE
			     ? "endpoint: its descriptor was closed by someone else"
			     : "endpoint: already opened or discarded (an endpoint opens once)");
	return NULL;
}

/* endpointFd(handle) -> { fd, id }: a close-on-exec duplicate of the pipe's descriptor, recorded. */
static napi_value js_endpoint_fd(napi_env env, napi_callback_info info)
{
	napi_value argv[1], o;
	struct end *e;
	struct stat st;
	int fd, nfd;
	double id;

	if (!get_args(env, info, 1, argv) || !(e = get_end(env, argv[0])))
		return NULL;
	fd = e->w ? shmpipe_writer_fd(e->w) : e->r ? shmpipe_reader_fd(e->r) : -EBADF;
	if (fd < 0)
		return throw_rc(env, fd, "endpoint");
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (nfd < 0)
		return throw_rc(env, -errno, "dup");
	if (fstat(nfd, &st) < 0) {
		int err = -errno;

		close(nfd);
		return throw_rc(env, err, "fstat");
	}
	id = ep_record(nfd, &st);
	if (id == 0) {
		close(nfd);
		return throw_rc(env, -ENOMEM, "endpoint");
	}
	napi_create_object(env, &o);
	napi_set_named_property(env, o, "fd", int_value(env, nfd));
	napi_set_named_property(env, o, "id", int_value(env, (int64_t)id));
	return o;
}

/* discardEndpoint(fd, id): closes an endpoint's descriptor, unless it was opened or discarded. */
static napi_value js_discard_endpoint(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	int64_t fd;
	double id;

	if (!get_args(env, info, 2, argv) || !get_endpoint(env, argv[0], argv[1], &fd, &id))
		return NULL;
	if (ep_claim((int)fd, id) == 0)
		close((int)fd);
	return undefined(env);
}

/*
 * open(kind, name) or open(kind, fd) -> handle, in the pipe's own mode;
 * open(kind, fd, id) opens an
 * endpoint: it claims the endpoint's descriptor (see Endpoints above) and
 * closes it once the end is open or the open failed, so an endpoint opens
 * once. A plain descriptor stays the caller's, open.
 */
static napi_value js_open(napi_env env, napi_callback_info info)
{
	napi_value argv[3];
	char name[256];
	int64_t kind, fd = -1;
	double id = 0;
	bool have = false, endpoint = false;
	int rc;

	if (!get_args(env, info, 3, argv) || !get_int(env, argv[0], 0, 1, &kind, "bad end kind"))
		return NULL;
	if (!is_type(env, argv[2], napi_undefined)) {
		if (!get_endpoint(env, argv[1], argv[2], &fd, &id))
			return NULL;
		rc = ep_claim((int)fd, id);
		if (rc < 0)
			return endpoint_error(env, rc);
		endpoint = true;
	} else if (is_type(env, argv[1], napi_number)) {
		if (!get_int(env, argv[1], 0, INT_MAX, &fd, "fd must be a descriptor"))
			return NULL;
	} else if (!get_name(env, argv[1], name, sizeof(name), &have)) {
		return NULL;
	} else if (!have) {
		return type_error(env, "a pipe name or descriptor is required");
	}
	if (kind == WRITER) {
		shmpipe_writer *w;

		rc = have ? shmpipe_writer_open(&w, name) : shmpipe_writer_open_fd(&w, (int)fd);
		if (endpoint)
			close((int)fd);
		if (rc < 0)
			return throw_rc(env, rc, "shmpipe_writer_open");
		return wrap_end(env, WRITER, w, NULL);
	} else {
		shmpipe_reader *r;

		rc = have ? shmpipe_reader_open(&r, name) : shmpipe_reader_open_fd(&r, (int)fd);
		if (endpoint)
			close((int)fd);
		if (rc < 0)
			return throw_rc(env, rc, "shmpipe_reader_open");
		return wrap_end(env, READER, NULL, r);
	}
}

static napi_value js_unlink(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	char name[256];
	bool have;

	if (!get_args(env, info, 1, argv) || !get_name(env, argv[0], name, sizeof(name), &have))
		return NULL;
	if (!have)
		return type_error(env, "name must be a string");
	return int_value(env, shmpipe_unlink(name));
}

/*
 * close(handle): end of stream for a writer. abort(handle): a writer closes
 * as failed. Either returns 0, or the library's -errno (the end is closed
 * all the same).
 */
static napi_value close_common(napi_env env, napi_callback_info info, bool abort)
{
	napi_value argv[1];
	struct end *e;

	if (!get_args(env, info, 1, argv) || !(e = get_end(env, argv[0])))
		return NULL;
	return int_value(env, end_close(e, abort));
}

static napi_value js_close(napi_env env, napi_callback_info info)
{
	return close_common(env, info, false);
}

static napi_value js_abort(napi_env env, napi_callback_info info)
{
	return close_common(env, info, true);
}

/* ---- writing ------------------------------------------------------------ */

/* The Buffers or typed arrays of an array argument, as iovecs (at most MAX_IOV). */
static bool get_chunks(napi_env env, napi_value arr, struct iovec *iov, int *n, uint64_t *total)
{
	uint32_t count;
	bool is_array;

	*n = 0;
	*total = 0;
	if (napi_is_array(env, arr, &is_array) != napi_ok || !is_array) {
		type_error(env, "chunks must be an array of Buffers");
		return false;
	}
	napi_get_array_length(env, arr, &count);
	if (count > MAX_IOV) {
		range_error(env, "too many chunks in one call");
		return false;
	}
	for (uint32_t i = 0; i < count; i++) {
		napi_value v;

		napi_get_element(env, arr, i, &v);
		if (!view_bytes(env, v, &iov[i].iov_base, &iov[i].iov_len)) {
			type_error(env, "chunks must be Buffers or typed arrays");
			return false;
		}
		*total += iov[i].iov_len;
	}
	*n = (int)count;
	return true;
}

/* Puts the cursor done bytes into the chunks; false (and throws) if done is not a valid offset. */
static bool cursor_seek(napi_env env, struct end *e, struct cursor *c, uint64_t done,
			uint64_t total)
{
	if (done > total) {
		range_error(env, "offset beyond the chunks");
		return false;
	}
	while (done > 0 && c->i < c->n && done >= c->iov[c->i].iov_len) {
		done -= c->iov[c->i].iov_len;
		c->i++;
	}
	if (e->records && done != 0) {
		range_error(env, "offset inside a record");
		return false;
	}
	c->skip = (size_t)done;
	return true;
}

static bool writer_args(napi_env env, napi_value *argv, struct end **e, int64_t *unit)
{
	if (!(*e = get_end(env, argv[0])))
		return false;
	if ((*e)->kind != WRITER) {
		type_error(env, "not a write end");
		return false;
	}
	return get_int(env, argv[3], 1, 1 << 20, unit, "bad unit");
}

/*
 * write(handle, chunks, done, unit, timeout) -> bytes of the concatenation
 * written so far (done plus what this call added), or -errno if it added
 * nothing. Waits in the calling thread: timeout 0 never, -1 until all is in;
 * returns early (-EINTR, or the count) when the thread should go back to
 * JavaScript (see sync_wait). Stream mode writes whole units (an Int32 item
 * is never split); record mode writes each chunk as one record, and done
 * then always falls between records.
 */
static napi_value js_write(napi_env env, napi_callback_info info)
{
	struct iovec iov[MAX_IOV];
	napi_value argv[5];
	struct end *e;
	struct cursor c = {.iov = iov};
	int64_t done, unit, timeout, deadline;
	uint64_t total, written = 0;
	int err;

	if (!get_args(env, info, 5, argv) || !writer_args(env, argv, &e, &unit) ||
	    !get_int(env, argv[2], 0, INT64_MAX / 2, &done, "bad offset") ||
	    !get_int(env, argv[4], -1, INT_MAX, &timeout, "bad timeout") ||
	    !get_chunks(env, argv[1], iov, &c.n, &total))
		return NULL;
	if (!usable(e, &err))
		return int_value(env, err);
	if (!cursor_seek(env, e, &c, (uint64_t)done, total))
		return NULL;
	drop_view(env, e); /* the library ends a reservation at a write */
	if (!e->records && (total - (uint64_t)done) % (uint64_t)unit != 0)
		return range_error(env, "chunks must hold whole units");
	deadline = deadline_of((int)timeout);
	for (;;) {
		if (timeout != 0)
			spin_until_ready(e, e->records ? 1 : (size_t)unit);
		ssize_t rc = pump(e, &c, (size_t)unit, SIZE_MAX);

		if (rc > 0)
			written += (uint64_t)rc;
		if (c.i >= c.n || rc == 0)
			break;
		if (rc > 0)
			continue;
		if (rc == -EAGAIN && timeout != 0)
			rc = sync_wait(e, ms_left(deadline));
		if (rc < 0) {
			err = (int)rc;
			break;
		}
	}
	return int_value(env, written || !err ? done + (int64_t)written : err);
}

/*
 * writeAsync(handle, chunks, unit, cb) -> 1 if all of chunks went into the
 * ring at once (cb is not called), 0 if the write goes on in the event loop
 * (cb(0) once the last byte is in, or cb(-errno)), or -errno if it failed
 * at once. Takes no copy: the chunks are referenced, and must not be
 * changed until cb; one whose length changes fails the write (-EFAULT).
 * Copies at most ASYNC_SLICE bytes before it returns, and as much per turn
 * of the loop after.
 */
static napi_value js_write_async(napi_env env, napi_callback_info info)
{
	napi_value argv[4];
	struct end *e;
	struct job *j;
	int64_t unit;
	uint32_t count;
	bool is_array;
	int rc;

	if (!get_args(env, info, 4, argv) || !(e = get_end(env, argv[0])))
		return NULL;
	if (e->kind != WRITER)
		return type_error(env, "not a write end");
	if (!get_int(env, argv[2], 1, 1 << 20, &unit, "bad unit"))
		return NULL;
	if (!is_type(env, argv[3], napi_function))
		return type_error(env, "callback must be a function");
	if (napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array)
		return type_error(env, "chunks must be an array of Buffers");
	napi_get_array_length(env, argv[1], &count);
	if (count > MAX_IOV)
		return range_error(env, "too many chunks in one call");
	if (!usable(e, &rc))
		return int_value(env, rc);
	drop_view(env, e); /* the library ends a reservation at a write */

	j = &e->job;
	j->lens = malloc(sizeof(*j->lens) * (count ? count : 1));
	if (!j->lens) {
		napi_throw_error(env, "ENOMEM", "out of memory");
		return NULL;
	}
	uint64_t total = 0;

	for (uint32_t i = 0; i < count; i++) {
		napi_value v;
		void *data;

		napi_get_element(env, argv[1], i, &v);
		if (!view_bytes(env, v, &data, &j->lens[i])) {
			job_release(env, e);
			return type_error(env, "chunks must be Buffers or typed arrays");
		}
		total += j->lens[i];
	}
	if (!e->records && total % (uint64_t)unit != 0) {
		job_release(env, e);
		return range_error(env, "chunks must hold whole units");
	}
	j->n = (int)count;
	j->i = 0;
	j->skip = 0;
	j->unit = (size_t)unit;
	rc = job_slice(e, argv[1]);
	if (rc == 1 || rc == -EAGAIN) {
		int err = make_handle(e, UV_POLL);

		if (!err && rc == 1)
			err = make_handle(e, UV_IDLE);
		if (err) {
			job_release(env, e);
			return int_value(env, err);
		}
		err = rc == 1 ? set_idling(e, true) : set_polling(e, true);
		if (err) {
			job_release(env, e);
			return int_value(env, err);
		}
		napi_create_reference(env, argv[1], 1, &j->chunks);
		napi_create_reference(env, argv[3], 1, &e->callback);
		e->op = OP_WRITE;
		return int_value(env, 0);
	}
	job_release(env, e);
	return int_value(env, rc == 0 ? 1 : rc);
}

/*
 * wait(handle, cb) -> 0, or -errno if no wait was started. cb(0) once the
 * end's descriptor polls readable: a call that returned -EAGAIN may now
 * make progress (for a reader: data, end of stream, or the writer gone).
 */
static napi_value js_wait(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	struct end *e;
	int rc;

	if (!get_args(env, info, 2, argv) || !(e = get_end(env, argv[0])))
		return NULL;
	if (!is_type(env, argv[1], napi_function))
		return type_error(env, "callback must be a function");
	if (!usable(e, &rc))
		return int_value(env, rc);
	rc = make_handle(e, UV_POLL);
	if (rc == 0)
		rc = set_polling(e, true);
	if (rc < 0)
		return int_value(env, rc);
	napi_create_reference(env, argv[1], 1, &e->callback);
	e->op = OP_WAIT;
	return int_value(env, 0);
}

/*
 * unwait(handle) -> 1 if a wait() was pending (it is dropped: its callback
 * is never called), else 0. For a write end whose wait for readers gives
 * way to a write, which needs the end's descriptor for itself.
 */
static napi_value js_unwait(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	struct end *e;

	if (!get_args(env, info, 1, argv) || !(e = get_end(env, argv[0])))
		return NULL;
	if (e->op != OP_WAIT)
		return int_value(env, 0);
	if (e->poll)
		(void)set_polling(e, false); /* stopping cannot fail */
	e->op = OP_NONE;
	if (e->callback)
		napi_delete_reference(env, e->callback);
	e->callback = NULL;
	return int_value(env, 1);
}

/*
 * waitReaders(handle, n, timeout) -> how many readers are attached, once
 * at least n are, or -errno: -EAGAIN (timeout 0: the descriptor polls
 * readable when a reader attaches), -ETIMEDOUT, -EINTR (see sync_wait),
 * -EPIPE (the one reader of a plain pipe is gone), -EBADF (closed), or
 * -EBUSY if n are not there yet and an asynchronous operation holds the
 * end (its descriptor is taken): then nothing is armed. The count alone
 * (n at most what is attached; n = 0 always) never waits and is given
 * whatever is pending, as shmpipe_writer_wait_readers(w, 0) touches
 * nothing.
 */
static napi_value js_wait_readers(napi_env env, napi_callback_info info)
{
	napi_value argv[3];
	struct end *e;
	int64_t n, timeout, deadline;
	int rc;

	if (!get_args(env, info, 3, argv) || !(e = get_end(env, argv[0])))
		return NULL;
	if (e->kind != WRITER)
		return type_error(env, "not a write end");
	if (!get_int(env, argv[1], 0, SHMPIPE_READERS_MAX, &n, "bad reader count") ||
	    !get_int(env, argv[2], -1, INT_MAX, &timeout, "bad timeout"))
		return NULL;
	if (!e->w)
		return int_value(env, -EBADF);
	rc = shmpipe_writer_wait_readers(e->w, 0);
	if (rc < 0 || rc >= n)
		return int_value(env, rc);
	if (!usable(e, &rc))
		return int_value(env, rc);
	deadline = deadline_of((int)timeout);
	for (;;) {
		rc = shmpipe_writer_wait_readers(e->w, (unsigned)n);
		if (rc != -EAGAIN || timeout == 0)
			break;
		rc = sync_wait(e, ms_left(deadline));
		if (rc < 0)
			break;
	}
	return int_value(env, rc);
}

/* ---- reading ------------------------------------------------------------ */

/*
 * Peeks, waiting in the calling thread as js_write does: the count, 0 at
 * end of stream, or -errno, including when the end is not usable here
 * (closed, an asynchronous wait pending) or a zero-copy view of it is still
 * out (-EBUSY).
 */
static ssize_t peek_here(struct end *e, const void **p, int timeout)
{
	int64_t deadline = deadline_of(timeout);
	int err;

	if (!usable(e, &err))
		return err;
	if (e->view)
		return -EBUSY;
	for (;;) {
		if (timeout != 0)
			spin_until_ready(e, 1);
		ssize_t n = shmpipe_peek(e->r, p);

		if (n != -EAGAIN || timeout == 0)
			return n;
		err = sync_wait(e, ms_left(deadline));
		if (err < 0)
			return err;
	}
}

static struct end *reader_arg(napi_env env, napi_value v)
{
	struct end *e = get_end(env, v);

	if (e && e->kind != READER) {
		type_error(env, "not a read end");
		return NULL;
	}
	return e;
}

/*
 * Stream mode: up to max bytes of whole units (max >= unit), waiting as
 * peek_here does. Returns how many: the e->carry_len bytes set aside, then
 * *from_ring bytes at *p, which the caller copies in that order, then
 * consumes *from_ring and empties the carry. Returns 0 at end of stream,
 * -errno, or -EILSEQ if the stream ended inside an element.
 *
 * Fewer bytes than a unit in the ring may be an element the writer is still
 * writing, or the last bytes of a stream cut inside one; only the ring can
 * tell, once they are out of it: so they are set aside in e->carry and the
 * ring is asked again. Left in place they would keep the end's descriptor
 * readable, and a loop waiting for the rest would never sleep.
 */
static ssize_t peek_units(struct end *e, size_t unit, size_t max, int timeout, const void **p,
			  size_t *from_ring)
{
	int64_t deadline = deadline_of(timeout);

	for (;;) {
		ssize_t n = peek_here(e, p, timeout < 0 ? -1 : ms_left(deadline));
		int rc;

		if (n < 0)
			return n;
		if (n == 0)
			return e->carry_len ? -EILSEQ : 0;

		size_t take = e->carry_len + (size_t)n;

		if (take > max)
			take = max;
		take -= take % unit;
		if (take) {
			*from_ring = take - e->carry_len;
			return (ssize_t)take;
		}
		/* Here carry_len + n < unit <= MAX_READ_UNIT. */
		memcpy(e->carry + e->carry_len, *p, (size_t)n);
		rc = shmpipe_consume(e->r, (size_t)n);
		if (rc < 0)
			return rc;
		e->carry_len += (size_t)n;
	}
}

/* Copies what peek_units found to dst, and releases it. Returns 0 or -errno. */
static int take_units(struct end *e, void *dst, const void *p, size_t from_ring)
{
	memcpy(dst, e->carry, e->carry_len);
	memcpy((char *)dst + e->carry_len, p, from_ring);
	e->carry_len = 0;
	return shmpipe_consume(e->r, from_ring);
}

static napi_value partial_error(napi_env env, struct end *e, size_t unit)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "the stream ended inside an element: %zu of its %zu bytes",
		 e->carry_len, unit);
	napi_throw_error(env, "ERR_SHMPIPE_PARTIAL_ELEMENT", msg);
	return NULL;
}

/*
 * read(handle, max, unit, timeout) -> a new Buffer with up to max bytes
 * (whole units; in record mode one whole record), null at end of stream, or
 * -errno (-EAGAIN when nothing is there and timeout is 0). Throws if the
 * stream ended inside a unit.
 */
static napi_value js_read(napi_env env, napi_callback_info info)
{
	napi_value argv[4], buf;
	struct end *e;
	int64_t max, unit, timeout;
	const void *p;
	void *copy;
	size_t from_ring = 0;
	ssize_t n;
	int rc;

	if (!get_args(env, info, 4, argv) || !(e = reader_arg(env, argv[0])))
		return NULL;
	if (!get_int(env, argv[1], 1, (int64_t)1 << 40, &max, "bad size") ||
	    !get_int(env, argv[2], 1, MAX_READ_UNIT, &unit, "bad unit") ||
	    !get_int(env, argv[3], -1, INT_MAX, &timeout, "bad timeout"))
		return NULL;
	if (!e->records && max < unit)
		return range_error(env, "max must hold one element");
	n = e->records ? peek_here(e, &p, (int)timeout)
		       : peek_units(e, (size_t)unit, (size_t)max, (int)timeout, &p, &from_ring);
	if (n == -EILSEQ)
		return partial_error(env, e, (size_t)unit);
	if (n < 0)
		return int_value(env, n);
	if (n == 0) {
		napi_get_null(env, &buf);
		return buf;
	}
	if (napi_create_buffer(env, (size_t)n, &copy, &buf) != napi_ok)
		return NULL;
	if (e->records) {
		memcpy(copy, p, (size_t)n);
		rc = shmpipe_consume(e->r, (size_t)n);
	} else {
		rc = take_units(e, copy, p, from_ring);
	}
	return rc < 0 ? int_value(env, rc) : buf;
}

/*
 * readInto(handle, typedArray, unit, timeout) -> bytes copied into the
 * array (whole units; in record mode one record, -EMSGSIZE if it does not
 * fit), 0 at end of stream, or -errno. Throws if the stream ended inside a
 * unit.
 */
static napi_value js_read_into(napi_env env, napi_callback_info info)
{
	napi_value argv[4];
	struct end *e;
	int64_t unit, timeout;
	void *data;
	size_t len, from_ring = 0;
	bool ok;
	const void *p;
	ssize_t n;
	int rc;

	if (!get_args(env, info, 4, argv) || !(e = reader_arg(env, argv[0])))
		return NULL;
	if (napi_is_typedarray(env, argv[1], &ok) != napi_ok || !ok ||
	    !view_bytes(env, argv[1], &data, &len))
		return type_error(env, "target must be a Buffer or typed array");
	if (!get_int(env, argv[2], 1, MAX_READ_UNIT, &unit, "bad unit") ||
	    !get_int(env, argv[3], -1, INT_MAX, &timeout, "bad timeout"))
		return NULL;
	len -= len % (size_t)unit;
	if (len == 0)
		return range_error(env, "target smaller than one item");
	n = e->records ? peek_here(e, &p, (int)timeout)
		       : peek_units(e, (size_t)unit, len, (int)timeout, &p, &from_ring);
	if (n == -EILSEQ)
		return partial_error(env, e, (size_t)unit);
	if (n <= 0)
		return int_value(env, n);
	if (e->records) {
		if ((size_t)n > len)
			return int_value(env, -EMSGSIZE);
		memcpy(data, p, (size_t)n);
		rc = shmpipe_consume(e->r, (size_t)n);
	} else {
		rc = take_units(e, data, p, from_ring);
	}
	return int_value(env, rc < 0 ? rc : n);
}

static void view_finalize(napi_env env, void *data, void *hint)
{
	(void)env;
	(void)data;
	(void)hint;
}

/*
 * peek(handle, timeout) -> a Buffer viewing the readable bytes in the ring
 * (one whole record in record mode), null at end of stream, or -errno. The
 * view stays valid until consume() (or close), which detaches it: it then
 * has length 0, so it can never reach memory the writer reuses.
 */
static napi_value js_peek(napi_env env, napi_callback_info info)
{
	napi_value argv[2], ab, buf;
	struct end *e;
	int64_t timeout;
	const void *p;
	ssize_t n;

	if (!get_args(env, info, 2, argv) || !(e = reader_arg(env, argv[0])))
		return NULL;
	if (!get_int(env, argv[1], -1, INT_MAX, &timeout, "bad timeout"))
		return NULL;
	n = peek_here(e, &p, (int)timeout);
	if (n < 0)
		return int_value(env, n);
	if (n == 0) {
		napi_get_null(env, &buf);
		return buf;
	}
	/* A Buffer over the ring itself; its ArrayBuffer is what consume detaches. */
	if (napi_create_external_buffer(env, (size_t)n, (void *)p, view_finalize, NULL, &buf) !=
	    napi_ok)
		return NULL;
	napi_get_typedarray_info(env, buf, NULL, NULL, NULL, &ab, NULL);
	napi_create_reference(env, ab, 1, &e->view);
	e->view_len = (size_t)n;
	return buf;
}

/* consume(handle, n): releases n bytes of the last peek and detaches its view. */
static napi_value js_consume(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	struct end *e;
	int64_t n;
	int err;

	if (!get_args(env, info, 2, argv) || !(e = reader_arg(env, argv[0])))
		return NULL;
	if (!get_int(env, argv[1], 0, (int64_t)1 << 40, &n, "bad length"))
		return NULL;
	if (!usable(e, &err))
		return int_value(env, err);
	if (!e->view)
		return n == 0 ? int_value(env, 0) : range_error(env, "nothing was peeked");
	if ((uint64_t)n > e->view_len)
		return range_error(env, "length beyond what was peeked");
	if (e->records && n != 0 && (size_t)n != e->view_len)
		return range_error(env, "a record is consumed whole");
	drop_view(env, e);
	return int_value(env, shmpipe_consume(e->r, (size_t)n));
}

/* ---- writing in place ---------------------------------------------------- */

/*
 * reserve(handle, min, unit, timeout) -> a Buffer over at least min bytes
 * of free room in the ring itself (a whole number of units; in record mode
 * the payload of one record), or -errno. Waits as js_write does. A
 * reservation still out is dropped first and its Buffer detached: the
 * library hands out the same start again, and one Buffer at a time keeps
 * the rule simple. The Buffer stays valid until commit(), a write or
 * close, which detach it.
 */
static napi_value js_reserve(napi_env env, napi_callback_info info)
{
	napi_value argv[4], ab, buf;
	struct end *e;
	int64_t min, unit, timeout, deadline;
	void *p;
	ssize_t n;
	int err;

	if (!get_args(env, info, 4, argv) || !(e = get_end(env, argv[0])))
		return NULL;
	if (e->kind != WRITER)
		return type_error(env, "not a write end");
	if (!get_int(env, argv[1], 0, (int64_t)1 << 40, &min, "bad length") ||
	    !get_int(env, argv[2], 1, 1 << 20, &unit, "bad unit") ||
	    !get_int(env, argv[3], -1, INT_MAX, &timeout, "bad timeout"))
		return NULL;
	if (!e->records && min % unit != 0)
		return range_error(env, "length must be whole units");
	if (!usable(e, &err))
		return int_value(env, err);
	drop_view(env, e);
	deadline = deadline_of((int)timeout);
	for (;;) {
		if (timeout != 0)
			spin_until_ready(e, min ? (size_t)min : 1);
		n = shmpipe_reserve(e->w, &p, (size_t)min);
		if (n != -EAGAIN || timeout == 0)
			break;
		err = sync_wait(e, ms_left(deadline));
		if (err < 0)
			return int_value(env, err);
	}
	if (n < 0)
		return int_value(env, n);
	if (!e->records)
		n -= n % unit; /* at least min, which is whole units */
	/* A Buffer over the ring itself; its ArrayBuffer is what commit detaches. */
	if (napi_create_external_buffer(env, (size_t)n, p, view_finalize, NULL, &buf) != napi_ok)
		return NULL;
	napi_get_typedarray_info(env, buf, NULL, NULL, NULL, &ab, NULL);
	napi_create_reference(env, ab, 1, &e->view);
	e->view_len = (size_t)n;
	return buf;
}

/*
 * commit(handle, n, unit): publishes the first n bytes of the reservation
 * (one record in record mode; 0 publishes nothing) and detaches its
 * Buffer. Returns 0 or -errno (-EPIPE: the reader is gone, the bytes are
 * dropped); throws a RangeError, and keeps the reservation, for n beyond
 * it or not whole units, or for n > 0 with nothing reserved.
 */
static napi_value js_commit(napi_env env, napi_callback_info info)
{
	napi_value argv[3];
	struct end *e;
	int64_t n, unit;
	int err;

	if (!get_args(env, info, 3, argv) || !(e = get_end(env, argv[0])))
		return NULL;
	if (e->kind != WRITER)
		return type_error(env, "not a write end");
	if (!get_int(env, argv[1], 0, (int64_t)1 << 40, &n, "bad length") ||
	    !get_int(env, argv[2], 1, 1 << 20, &unit, "bad unit"))
		return NULL;
	if (!usable(e, &err))
		return int_value(env, err);
	if (!e->view)
		return n == 0 ? int_value(env, 0) : range_error(env, "nothing was reserved");
	if ((uint64_t)n > e->view_len)
		return range_error(env, "length beyond what was reserved");
	if (!e->records && n % unit != 0)
		return range_error(env, "length must be whole units");
	drop_view(env, e);
	return int_value(env, shmpipe_commit(e->w, (size_t)n));
}

/* setSpin(handle, us): how long a synchronous wait spins before it sleeps (-1 = default). */
static napi_value js_set_spin(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	struct end *e;
	int64_t us;
	int rc;

	if (!get_args(env, info, 2, argv) || !(e = get_end(env, argv[0])))
		return NULL;
	if (!get_int(env, argv[1], -1, SHMPIPE_SPIN_MAX_US, &us,
		     "spin must be -1 or 0 to 1000000 us"))
		return NULL;
	if (!usable(e, &rc))
		return int_value(env, rc);
	e->spin_us = us < 0 ? DEFAULT_SPIN_US : (unsigned)us;
	return int_value(env, 0);
}

/* ---- observing ---------------------------------------------------------- */

static void set_num(napi_env env, napi_value obj, const char *key, uint64_t v)
{
	napi_value n;

	napi_create_double(env, (double)v, &n);
	napi_set_named_property(env, obj, key, n);
}

static napi_value stats_object(napi_env env, const shmpipe_stats *s)
{
	napi_value o;

	napi_create_object(env, &o);
	set_num(env, o, "writeIndex", s->write_index);
	set_num(env, o, "readIndex", s->read_index);
	set_num(env, o, "producedCount", s->produced);
	set_num(env, o, "consumedCount", s->consumed);
	set_num(env, o, "producerWaits", s->producer_waits);
	set_num(env, o, "consumerWaits", s->consumer_waits);
	set_num(env, o, "capacity", s->capacity);
	set_num(env, o, "queueDepth", s->write_index - s->read_index);
	return o;
}

/* stats(handle) -> the counters (any time while open, also while an operation is pending). */
static napi_value js_stats(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	struct end *e;
	shmpipe_stats s;
	int rc = -EBADF;

	if (!get_args(env, info, 1, argv) || !(e = get_end(env, argv[0])))
		return NULL;
	if (e->w)
		rc = shmpipe_writer_stats(e->w, &s);
	else if (e->r)
		rc = shmpipe_reader_stats(e->r, &s);
	if (rc < 0)
		return throw_rc(env, rc, "stats");
	return stats_object(env, &s);
}

/*
 * options(handle) -> { capacity, records, share, readers, mode }: what the
 * pipe is, as its creator made it.
 */
static napi_value js_options(napi_env env, napi_callback_info info)
{
	napi_value argv[1], o, b;
	struct end *e;
	shmpipe_options opt;
	int rc = -EBADF;

	if (!get_args(env, info, 1, argv) || !(e = get_end(env, argv[0])))
		return NULL;
	if (e->w)
		rc = shmpipe_writer_options(e->w, &opt);
	else if (e->r)
		rc = shmpipe_reader_options(e->r, &opt);
	if (rc < 0)
		return throw_rc(env, rc, "options");
	napi_create_object(env, &o);
	set_num(env, o, "capacity", opt.capacity);
	napi_get_boolean(env, (opt.flags & SHMPIPE_RECORDS) != 0, &b);
	napi_set_named_property(env, o, "records", b);
	napi_get_boolean(env, (opt.flags & SHMPIPE_SHARE) != 0, &b);
	napi_set_named_property(env, o, "share", b);
	set_num(env, o, "readers", opt.readers ? opt.readers : 1);
	set_num(env, o, "mode", opt.mode);
	return o;
}

/*
 * seq(handle) -> the number the writer gave the record that the end's last
 * read or peek returned (a work-sharing pipe's reader), or null: not such a
 * pipe, or no record taken yet. A Number: exact below 2^53, which a writer
 * numbering a billion records a second reaches in 104 days.
 */
static napi_value js_seq(napi_env env, napi_callback_info info)
{
	napi_value argv[1], v;
	struct end *e;
	uint64_t seq;

	if (!get_args(env, info, 1, argv) || !(e = reader_arg(env, argv[0])))
		return NULL;
	if (!e->r || shmpipe_reader_seq(e->r, &seq) < 0) {
		napi_get_null(env, &v);
		return v;
	}
	napi_create_double(env, (double)seq, &v);
	return v;
}

/*
 * pipeInfo(name) -> { flags, readers } of a named pipe: its flags
 * (SHMPIPE_RECORDS, SHMPIPE_SHARE) and the readers it takes at once (1, or
 * a broadcast's N); or null if that cannot be told without taking an end
 * (-ENOENT, -EACCES, a header still being written, ...): the open that
 * follows then reports it.
 */
static napi_value js_pipe_info(napi_env env, napi_callback_info info)
{
	napi_value argv[1], v;
	char name[256];
	bool have;
	shmpipe_info in;

	if (!get_args(env, info, 1, argv) || !get_name(env, argv[0], name, sizeof(name), &have))
		return NULL;
	if (!have)
		return type_error(env, "name must be a string");
	if (shmpipe_inspect(name, &in) < 0) {
		napi_get_null(env, &v);
		return v;
	}
	napi_create_object(env, &v);
	napi_set_named_property(env, v, "flags",
				int_value(env, in.flags & (SHMPIPE_RECORDS | SHMPIPE_SHARE)));
	napi_set_named_property(env, v, "readers", int_value(env, in.readers ? in.readers : 1));
	return v;
}

/* statName(name) -> the counters of a named pipe, without taking an end. */
static napi_value js_stat_name(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	char name[256];
	bool have;
	shmpipe_stats s;
	int rc;

	if (!get_args(env, info, 1, argv) || !get_name(env, argv[0], name, sizeof(name), &have))
		return NULL;
	if (!have)
		return type_error(env, "name must be a string");
	rc = shmpipe_stat(name, &s);
	if (rc < 0)
		return throw_rc(env, rc, "shmpipe_stat");
	return stats_object(env, &s);
}

static napi_value js_strerror(napi_env env, napi_callback_info info)
{
	napi_value argv[1], s;
	int64_t rc;

	if (!get_args(env, info, 1, argv) ||
	    !get_int(env, argv[0], INT_MIN, INT_MAX, &rc, "bad code"))
		return NULL;
	napi_create_string_utf8(env, shmpipe_strerror((int)rc), NAPI_AUTO_LENGTH, &s);
	return s;
}

/*
 * node_api.h's NAPI_MODULE_INIT defines an exported function of its own
 * without a prototype; the library's warnings (-Wmissing-prototypes) would
 * stop the build on a line that is not ours.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
NAPI_MODULE_INIT(/* napi_env env, napi_value exports */)
{
	static const struct {
		const char *name;
		napi_callback fn;
	} fns[] = {
	    {"create", js_create},
	    {"open", js_open},
	    {"endpointFd", js_endpoint_fd},
	    {"discardEndpoint", js_discard_endpoint},
	    {"unlink", js_unlink},
	    {"close", js_close},
	    {"abort", js_abort},
	    {"write", js_write},
	    {"writeAsync", js_write_async},
	    {"wait", js_wait},
	    {"unwait", js_unwait},
	    {"waitReaders", js_wait_readers},
	    {"read", js_read},
	    {"readInto", js_read_into},
	    {"peek", js_peek},
	    {"consume", js_consume},
	    {"reserve", js_reserve},
	    {"commit", js_commit},
	    {"setSpin", js_set_spin},
	    {"stats", js_stats},
	    {"options", js_options},
	    {"seq", js_seq},
	    {"pipeInfo", js_pipe_info},
	    {"statName", js_stat_name},
	    {"strerror", js_strerror},
	};

	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		napi_value f;

		napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
		napi_set_named_property(env, exports, fns[i].name, f);
	}
	set_num(env, exports, "RECORDS", SHMPIPE_RECORDS);
	set_num(env, exports, "SHARE", SHMPIPE_SHARE);
	set_num(env, exports, "DEFAULT_CAPACITY", SHMPIPE_DEFAULT_CAPACITY);
	set_num(env, exports, "READERS_MAX", SHMPIPE_READERS_MAX);
	return exports;
}
#pragma GCC diagnostic pop
