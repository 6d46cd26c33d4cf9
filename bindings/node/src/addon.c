/*
 * The native half of the Node.js package: one pipe end (writer or reader)
 * wrapped for JavaScript, over the public shmpipe API only.
 *
 * Who touches the handle
 * ----------------------
 * A shmpipe end is used by one thread at a time. Here that thread is the
 * JavaScript thread that created the end, except while a job is pending.
 * The JavaScript thread copies with timeout 0 only. When a write finds the
 * ring full, the rest of it is copied into a job (struct wjob) and the
 * end's waiter thread takes the handle to write it as room appears; when a
 * read finds the ring empty, the waiter takes the handle to sleep in
 * shmpipe_peek until data comes, and the JavaScript thread copies it out.
 * Either way the waiter then gives the handle back and signals the
 * JavaScript thread through a thread-safe function. The event loop is
 * never blocked, and one waiter thread serves one end, asleep in the kernel
 * when it has nothing to do.
 *
 * Closing an end while the waiter is inside a call interrupts that call
 * (shmpipe_writer_interrupt / shmpipe_reader_interrupt, the one call the
 * library allows from another thread), so the waiter returns at once. A
 * handle is closed by whoever holds it: the JavaScript thread if the waiter
 * is not inside a call, or else the waiter when its call returns. So close never blocks the event
 * loop and never frees a handle under a sleeping call.
 *
 * Lifetimes
 * ---------
 * struct end is shared by the JavaScript wrapper, the waiter thread and the
 * environment's cleanup hook: it carries a reference count and is freed by
 * whoever drops the last reference. The waiter calls the thread-safe
 * function only while holding the end's mutex and only while the end is
 * open; closing sets `closing` under that mutex before releasing the
 * thread-safe function, so no call can follow the release. When a worker is
 * terminated, the cleanup hook (registered after the thread-safe function,
 * hence run before Node tears it down) closes the end the same way.
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmpipe.h"

#define MAX_IOV 1024

enum kind { WRITER, READER };

/*
 * The rest of a write that found the ring full, copied out of JavaScript
 * memory so that the waiter thread owns it outright: it writes it into the
 * ring as room appears, with no trip back to the event loop per wake-up,
 * and a close or the environment's teardown never leaves it reading freed
 * memory. Stream mode: len bytes, written in whole units. Record mode:
 * nrec records, lengths in rec[], payloads back to back in data.
 */
struct wjob {
	char *data;
	size_t len, off;
	size_t unit;
	size_t *rec;
	int nrec, next;
};

static void wjob_free(struct wjob *j)
{
	if (j) {
		free(j->data);
		free(j->rec);
		free(j);
	}
}

struct end {
	enum kind kind;
	atomic_int refs;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* The handle; NULL once closed. Guarded by mu when the waiter runs. */
	shmpipe_writer *w;
	shmpipe_reader *r;
	bool records;

	/* Waiter state, all guarded by mu. */
	bool thread_started;
	bool job;     /* a wait was asked for and the waiter has not taken it */
	bool in_call; /* the waiter is inside a shmpipe call on the handle */
	bool pending; /* a wait is started and its callback not yet run */
	atomic_bool closing;
	size_t job_min; /* writer: bytes of room to wait for */
	struct wjob *wjob; /* writer: data for the waiter to write, or NULL */
	int result;     /* outcome of the last wait */

	/* Main-thread only. */
	napi_env env;
	napi_threadsafe_function tsfn;
	bool tsfn_live;
	napi_ref callback; /* the pending wait's JavaScript callback */
	napi_ref view;     /* the ArrayBuffer of the last zero-copy peek */
	size_t view_len;
	bool hook;
};

static void end_unref(struct end *e)
{
	if (atomic_fetch_sub(&e->refs, 1) == 1) {
		pthread_mutex_destroy(&e->mu);
		pthread_cond_destroy(&e->cv);
		free(e);
	}
}

static void close_handle_locked(struct end *e)
{
	if (e->w)
		shmpipe_writer_close(e->w);
	if (e->r)
		shmpipe_reader_close(e->r);
	e->w = NULL;
	e->r = NULL;
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

/* ---- the waiter thread and its thread-safe function ------------------ */

/*
 * Writes a job into the ring (waiter thread), sleeping while it is full.
 * Returns 0 once all of it is in, or -errno (the part before stays written).
 */
static int wjob_run(struct end *e, struct wjob *j)
{
	while (!atomic_load(&e->closing)) {
		ssize_t rc;

		if (j->rec) {
			struct iovec iov[64];
			int n = 0;
			size_t off = j->off;

			if (j->next == j->nrec)
				return 0;
			for (int i = j->next; i < j->nrec && n < 64; i++) {
				iov[n].iov_base = j->data + off;
				iov[n].iov_len = j->rec[i];
				off += j->rec[i];
				n++;
			}
			rc = shmpipe_writev(e->w, iov, n);
			if (rc > 0) {
				/* Whole records were written: step over them. */
				for (size_t done = 0; done < (size_t)rc; j->next++) {
					done += j->rec[j->next];
					j->off += j->rec[j->next];
				}
			}
		} else {
			void *p;

			if (j->off == j->len)
				return 0;
			rc = shmpipe_reserve(e->w, &p, j->unit);
			/* Closed meanwhile: publish nothing more. */
			if (atomic_load(&e->closing))
				break;
			if (rc > 0) {
				size_t n = (size_t)rc < j->len - j->off ? (size_t)rc : j->len - j->off;

				n -= n % j->unit;
				memcpy(p, j->data + j->off, n);
				rc = shmpipe_commit(e->w, n);
				if (rc == 0)
					j->off += n;
			}
		}
		if (rc < 0 && rc != -ETIMEDOUT && rc != -EINTR)
			return (int)rc;
	}
	return -EBADF;
}

static void *waiter_main(void *arg)
{
	struct end *e = arg;
	sigset_t all;

	/* Signals belong to the JavaScript thread, not to this one. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);

	pthread_mutex_lock(&e->mu);
	for (;;) {
		while (!e->job && !atomic_load(&e->closing))
			pthread_cond_wait(&e->cv, &e->mu);
		if (atomic_load(&e->closing))
			break;
		e->job = false;
		e->in_call = true;
		size_t min = e->job_min;
		struct wjob *j = e->wjob;
		pthread_mutex_unlock(&e->mu);

		/*
		 * Write, or wait for data, for as long as it takes: a close
		 * interrupts the call (end_close). Only this thread touches the
		 * handle while in_call is set.
		 */
		ssize_t rc;

		if (e->w)
			shmpipe_writer_set_timeout(e->w, -1);
		else
			shmpipe_reader_set_timeout(e->r, -1);
		if (j) {
			rc = wjob_run(e, j);
		} else {
			do {
				if (e->w) {
					void *p;

					rc = shmpipe_reserve(e->w, &p, min);
				} else {
					const void *p;

					rc = shmpipe_peek(e->r, &p);
				}
			} while ((rc == -ETIMEDOUT || rc == -EINTR) && !atomic_load(&e->closing));
		}

		pthread_mutex_lock(&e->mu);
		e->in_call = false;
		if (atomic_load(&e->closing))
			break;
		e->result = rc < 0 ? (int)rc : 0;
		/* Under mu: closing cannot be set (and the function released) meanwhile. */
		napi_call_threadsafe_function(e->tsfn, NULL, napi_tsfn_nonblocking);
	}
	/* Closing: the handle is ours to close if the main thread could not. */
	close_handle_locked(e);
	wjob_free(e->wjob);
	e->wjob = NULL;
	pthread_mutex_unlock(&e->mu);
	end_unref(e);
	return NULL;
}

/* Runs on the JavaScript thread when a wait has finished. */
static void wait_done(napi_env env, napi_value js_cb, void *context, void *data)
{
	struct end *e = context;
	napi_value cb, global, arg, ret;
	int result;

	(void)js_cb;
	(void)data;
	if (!env || !e)
		return;
	pthread_mutex_lock(&e->mu);
	result = e->result;
	e->pending = false;
	wjob_free(e->wjob);
	e->wjob = NULL;
	pthread_mutex_unlock(&e->mu);
	if (!e->callback)
		return;
	napi_get_reference_value(env, e->callback, &cb);
	napi_delete_reference(env, e->callback);
	e->callback = NULL;
	if (e->tsfn_live)
		napi_unref_threadsafe_function(env, e->tsfn);
	napi_get_global(env, &global);
	arg = int_value(env, result);
	/* Node runs this inside a callback scope: exceptions go to 'uncaughtException'. */
	napi_call_function(env, global, cb, 1, &arg, &ret);
}

/*
 * Closes the end from the JavaScript thread (close(), the finalizer, or the
 * environment's cleanup hook). Never blocks on the waiter.
 */
static void end_close(struct end *e, bool teardown)
{
	napi_env env = e->env;

	pthread_mutex_lock(&e->mu);
	if (atomic_load(&e->closing)) {
		pthread_mutex_unlock(&e->mu);
		return;
	}
	atomic_store(&e->closing, true);
	if (!e->in_call)
		close_handle_locked(e);
	else if (e->w) /* the waiter holds the handle, and cannot close it before we let go of mu */
		shmpipe_writer_interrupt(e->w);
	else
		shmpipe_reader_interrupt(e->r);
	pthread_cond_signal(&e->cv);
	pthread_mutex_unlock(&e->mu);

	/*
	 * During the environment's teardown no JavaScript runs any more: leave
	 * the references to Node, release only the thread-safe function.
	 */
	if (!teardown && e->view) {
		napi_value ab;

		if (napi_get_reference_value(env, e->view, &ab) == napi_ok && ab)
			napi_detach_arraybuffer(env, ab);
		napi_delete_reference(env, e->view);
		e->view = NULL;
	}
	if (!teardown && e->callback) {
		napi_delete_reference(env, e->callback);
		e->callback = NULL;
	}
	if (e->tsfn_live) {
		e->tsfn_live = false;
		napi_release_threadsafe_function(e->tsfn, napi_tsfn_abort);
	}
}

static void cleanup_hook(void *arg);

static void remove_hook(struct end *e)
{
	if (e->hook) {
		e->hook = false;
		napi_remove_env_cleanup_hook(e->env, cleanup_hook, e);
		end_unref(e);
	}
}

static void cleanup_hook(void *arg)
{
	struct end *e = arg;

	e->hook = false;
	end_close(e, true);
	end_unref(e);
}

static void finalize_end(napi_env env, void *data, void *hint)
{
	struct end *e = data;

	(void)env;
	(void)hint;
	end_close(e, false);
	remove_hook(e);
	end_unref(e);
}

static void tsfn_finalize(napi_env env, void *data, void *hint)
{
	(void)env;
	(void)data;
	(void)hint;
}

/* Wraps a new handle in a JavaScript object. */
static napi_value wrap_end(napi_env env, enum kind kind, shmpipe_writer *w, shmpipe_reader *r,
			   bool records)
{
	struct end *e = calloc(1, sizeof(*e));
	napi_value obj, name;

	if (!e) {
		if (w)
			shmpipe_writer_close(w);
		if (r)
			shmpipe_reader_close(r);
		napi_throw_error(env, "ENOMEM", "out of memory");
		return NULL;
	}
	e->kind = kind;
	e->w = w;
	e->r = r;
	e->records = records;
	e->env = env;
	atomic_init(&e->refs, 1);
	atomic_init(&e->closing, false);
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cv, NULL);

	napi_create_object(env, &obj);
	napi_create_string_utf8(env, "shmpipe", NAPI_AUTO_LENGTH, &name);
	if (napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, tsfn_finalize, e,
					    wait_done, &e->tsfn) != napi_ok) {
		close_handle_locked(e);
		end_unref(e);
		napi_throw_error(env, "ENOMEM", "cannot create a thread-safe function");
		return NULL;
	}
	e->tsfn_live = true;
	napi_unref_threadsafe_function(env, e->tsfn);
	/* After the function: cleanup hooks run in reverse order of registration. */
	atomic_fetch_add(&e->refs, 1);
	e->hook = napi_add_env_cleanup_hook(env, cleanup_hook, e) == napi_ok;
	if (!e->hook)
		atomic_fetch_sub(&e->refs, 1);
	if (napi_wrap(env, obj, e, finalize_end, NULL, NULL) != napi_ok) {
		end_close(e, true);
		remove_hook(e);
		end_unref(e);
		napi_throw_error(env, "EFAULT", "cannot wrap a handle");
		return NULL;
	}
	return obj;
}

/* Starts a wait for room (writer, min bytes) or data (reader); cb(rc) later. */
static int start_wait(napi_env env, struct end *e, size_t min, struct wjob *j, napi_value cb)
{
	int err = 0;

	pthread_mutex_lock(&e->mu);
	if (atomic_load(&e->closing) || (!e->w && !e->r))
		err = -EBADF;
	else if (e->pending)
		err = -EBUSY;
	if (!err && !e->thread_started) {
		pthread_t t;
		pthread_attr_t attr;

		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, 64 * 1024);
		atomic_fetch_add(&e->refs, 1);
		if (pthread_create(&t, &attr, waiter_main, e) != 0) {
			atomic_fetch_sub(&e->refs, 1);
			err = -EAGAIN;
		} else {
			e->thread_started = true;
		}
		pthread_attr_destroy(&attr);
	}
	if (!err) {
		e->pending = true;
		e->job = true;
		e->job_min = min;
		e->wjob = j;
		pthread_cond_signal(&e->cv);
	}
	pthread_mutex_unlock(&e->mu);
	if (err)
		return err;
	napi_create_reference(env, cb, 1, &e->callback);
	napi_ref_threadsafe_function(env, e->tsfn);
	return 0;
}

/*
 * The handle for a synchronous call from the JavaScript thread, or NULL
 * with *err set: closed (-EBADF), or lent to the waiter (-EBUSY).
 */
static bool usable(struct end *e, int *err)
{
	bool ok;

	pthread_mutex_lock(&e->mu);
	ok = !atomic_load(&e->closing) && (e->w || e->r) && !e->pending;
	pthread_mutex_unlock(&e->mu);
	*err = atomic_load(&e->closing) || (!e->w && !e->r) ? -EBADF : -EBUSY;
	return ok;
}

/* ---- creating and opening -------------------------------------------- */

static bool get_options(napi_env env, napi_value cap, napi_value flags, napi_value mode,
			shmpipe_options *o)
{
	int64_t c = 0, f = 0, m = 0;

	if (!is_type(env, cap, napi_undefined) &&
	    !get_int(env, cap, 0, (int64_t)SHMPIPE_MAX_CAPACITY, &c,
		     "capacity must be an integer from 0 to 2^40"))
		return false;
	if (!is_type(env, flags, napi_undefined) &&
	    !get_int(env, flags, 0, SHMPIPE_RECORDS, &f, "flags must be 0 or 1"))
		return false;
	if (!is_type(env, mode, napi_undefined) &&
	    !get_int(env, mode, 0, 0777, &m, "mode must be permission bits (0 to 0o777)"))
		return false;
	memset(o, 0, sizeof(*o));
	o->capacity = (size_t)c;
	o->flags = (unsigned)f;
	o->mode = (unsigned)m;
	return true;
}

static napi_value throw_rc(napi_env env, int rc, const char *what)
{
	napi_value err, msg, code, errno_v;
	char text[256];
	const char *name = "EIO";

	switch (-rc) {
	case EINVAL: name = "EINVAL"; break;
	case EEXIST: name = "EEXIST"; break;
	case ENOENT: name = "ENOENT"; break;
	case EBUSY: name = "EBUSY"; break;
	case EPROTO: name = "EPROTO"; break;
	case EACCES: name = "EACCES"; break;
	case ENOMEM: name = "ENOMEM"; break;
	case EMFILE: name = "EMFILE"; break;
	case EBADF: name = "EBADF"; break;
	case EMSGSIZE: name = "EMSGSIZE"; break;
	case EPIPE: name = "EPIPE"; break;
	case ECONNRESET: name = "ECONNRESET"; break;
	default: break;
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

/* create(kind, name|null, capacity, flags, mode) -> handle */
static napi_value js_create(napi_env env, napi_callback_info info)
{
	napi_value argv[5];
	char name[256];
	bool have;
	int64_t kind;
	shmpipe_options o;
	int rc;

	if (!get_args(env, info, 5, argv) || !get_int(env, argv[0], 0, 1, &kind, "bad end kind") ||
	    !get_name(env, argv[1], name, sizeof(name), &have) ||
	    !get_options(env, argv[2], argv[3], argv[4], &o))
		return NULL;
	if (kind == WRITER) {
		shmpipe_writer *w;

		rc = shmpipe_writer_create(&w, have ? name : NULL, &o);
		if (rc < 0)
			return throw_rc(env, rc, "shmpipe_writer_create");
		return wrap_end(env, WRITER, w, NULL, o.flags & SHMPIPE_RECORDS);
	} else {
		shmpipe_reader *r;

		rc = shmpipe_reader_create(&r, have ? name : NULL, &o);
		if (rc < 0)
			return throw_rc(env, rc, "shmpipe_reader_create");
		return wrap_end(env, READER, NULL, r, o.flags & SHMPIPE_RECORDS);
	}
}

/* open(kind, nameOrFd, records) -> handle */
static napi_value js_open(napi_env env, napi_callback_info info)
{
	napi_value argv[3];
	char name[256];
	int64_t kind, fd = -1;
	bool have = false, records = false;
	int rc;

	if (!get_args(env, info, 3, argv) || !get_int(env, argv[0], 0, 1, &kind, "bad end kind"))
		return NULL;
	if (is_type(env, argv[1], napi_number)) {
		if (!get_int(env, argv[1], 0, INT_MAX, &fd, "fd must be a descriptor"))
			return NULL;
	} else if (!get_name(env, argv[1], name, sizeof(name), &have)) {
		return NULL;
	} else if (!have) {
		return type_error(env, "a pipe name or descriptor is required");
	}
	if (is_type(env, argv[2], napi_boolean))
		napi_get_value_bool(env, argv[2], &records);
	if (kind == WRITER) {
		shmpipe_writer *w;

		rc = have ? shmpipe_writer_open(&w, name) : shmpipe_writer_open_fd(&w, (int)fd);
		if (rc < 0)
			return throw_rc(env, rc, "shmpipe_writer_open");
		return wrap_end(env, WRITER, w, NULL, records);
	} else {
		shmpipe_reader *r;

		rc = have ? shmpipe_reader_open(&r, name) : shmpipe_reader_open_fd(&r, (int)fd);
		if (rc < 0)
			return throw_rc(env, rc, "shmpipe_reader_open");
		return wrap_end(env, READER, NULL, r, records);
	}
}

/* dupFd(handle) -> a close-on-exec duplicate of the pipe's descriptor */
static napi_value js_dup_fd(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	struct end *e;
	int fd = -EBADF, nfd;

	if (!get_args(env, info, 1, argv) || !(e = get_end(env, argv[0])))
		return NULL;
	pthread_mutex_lock(&e->mu);
	if (!atomic_load(&e->closing))
		fd = e->w ? shmpipe_writer_fd(e->w) : e->r ? shmpipe_reader_fd(e->r) : -EBADF;
	nfd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : fd;
	if (fd >= 0 && nfd < 0)
		nfd = -errno;
	pthread_mutex_unlock(&e->mu);
	if (nfd < 0)
		return throw_rc(env, nfd, "dup");
	return int_value(env, nfd);
}

/* closeFd(fd): for descriptors from dupFd that were never opened. */
static napi_value js_close_fd(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	int64_t fd;

	if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], 0, INT_MAX, &fd, "bad fd"))
		return NULL;
	close((int)fd);
	return undefined(env);
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

static napi_value js_close(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	struct end *e;

	if (!get_args(env, info, 1, argv) || !(e = get_end(env, argv[0])))
		return NULL;
	end_close(e, false);
	remove_hook(e);
	return undefined(env);
}

/* ---- writing ------------------------------------------------------------ */

struct chunks {
	struct iovec iov[MAX_IOV];
	int n;
	uint64_t total;
};

/* Buffers or typed arrays of an array argument, as iovecs. */
static bool get_chunks(napi_env env, napi_value arr, struct chunks *c)
{
	uint32_t n;
	bool is_array;

	c->n = 0;
	c->total = 0;
	if (napi_is_array(env, arr, &is_array) != napi_ok || !is_array) {
		type_error(env, "chunks must be an array of Buffers");
		return false;
	}
	napi_get_array_length(env, arr, &n);
	if (n > MAX_IOV) {
		range_error(env, "too many chunks in one call");
		return false;
	}
	for (uint32_t i = 0; i < n; i++) {
		napi_value v;
		bool ok;
		void *data;
		size_t len;

		napi_get_element(env, arr, i, &v);
		if (napi_is_typedarray(env, v, &ok) == napi_ok && ok) {
			napi_typedarray_type t;
			size_t count;
			napi_value ab;
			size_t off;
			static const size_t sizes[] = {1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8};

			napi_get_typedarray_info(env, v, &t, &count, &data, &ab, &off);
			len = count * ((size_t)t < sizeof(sizes) / sizeof(sizes[0]) ? sizes[t] : 1);
		} else if (napi_is_buffer(env, v, &ok) == napi_ok && ok) {
			napi_get_buffer_info(env, v, &data, &len);
		} else {
			type_error(env, "chunks must be Buffers or typed arrays");
			return false;
		}
		c->iov[c->n].iov_base = data;
		c->iov[c->n].iov_len = len;
		c->n++;
		c->total += len;
	}
	return true;
}

/*
 * write(handle, chunks, done, unit, timeout) -> bytes of the concatenation
 * written so far (done plus what this call added), or -errno if it added
 * nothing. timeout 0 never sleeps; -1 sleeps until all is in (blocking mode).
 * Stream mode copies through reserve/commit in whole units (an Int32 item
 * is never split); record mode writes each chunk as one record, and done
 * then always falls between records.
 */
static napi_value js_write(napi_env env, napi_callback_info info)
{
	napi_value argv[5];
	struct end *e;
	struct chunks *c;
	int64_t done, unit, timeout;
	int err;
	int64_t ret;

	if (!get_args(env, info, 5, argv) || !(e = get_end(env, argv[0])))
		return NULL;
	if (e->kind != WRITER)
		return type_error(env, "not a write end");
	if (!get_int(env, argv[2], 0, INT64_MAX / 2, &done, "bad offset") ||
	    !get_int(env, argv[3], 1, 1 << 20, &unit, "bad unit") ||
	    !get_int(env, argv[4], -1, INT_MAX, &timeout, "bad timeout"))
		return NULL;
	c = malloc(sizeof(*c));
	if (!c) {
		napi_throw_error(env, "ENOMEM", "out of memory");
		return NULL;
	}
	if (!get_chunks(env, argv[1], c)) {
		free(c);
		return NULL;
	}
	if (!usable(e, &err)) {
		free(c);
		return int_value(env, err);
	}
	if ((uint64_t)done > c->total) {
		free(c);
		return range_error(env, "offset beyond the chunks");
	}
	shmpipe_writer_set_timeout(e->w, (int)timeout);

	/* Skip what is already written. */
	int i = 0;
	uint64_t skip = (uint64_t)done;

	while (i < c->n && skip >= c->iov[i].iov_len) {
		skip -= c->iov[i].iov_len;
		i++;
	}
	ret = done;
	if (e->records) {
		if (skip != 0) {
			free(c);
			return range_error(env, "offset inside a record");
		}
		if (i < c->n) {
			ssize_t n = shmpipe_writev(e->w, c->iov + i, c->n - i);

			ret = n < 0 ? n : done + n;
		}
	} else {
		uint64_t left = c->total - (uint64_t)done;

		while (left > 0) {
			void *p;
			ssize_t room = shmpipe_reserve(e->w, &p, (size_t)unit);

			if (room < 0) {
				if (ret == done)
					ret = room;
				break;
			}
			uint64_t n = (uint64_t)room < left ? (uint64_t)room : left;

			n -= n % (uint64_t)unit;
			for (uint64_t k = 0; k < n;) {
				size_t take = c->iov[i].iov_len - skip;

				if (take > n - k)
					take = n - k;
				memcpy((char *)p + k, (char *)c->iov[i].iov_base + skip, take);
				k += take;
				skip += take;
				if (skip == c->iov[i].iov_len) {
					i++;
					skip = 0;
				}
			}
			int rc = shmpipe_commit(e->w, n);

			if (rc < 0) {
				if (ret == done)
					ret = rc;
				break;
			}
			ret += n;
			left -= n;
		}
	}
	free(c);
	return int_value(env, ret);
}

/* waitWritable(handle, minBytes, cb): cb(0) once minBytes are free, or cb(-errno). */
static napi_value js_wait(napi_env env, napi_callback_info info)
{
	napi_value argv[3];
	struct end *e;
	int64_t min;
	int rc;

	if (!get_args(env, info, 3, argv) || !(e = get_end(env, argv[0])))
		return NULL;
	if (!get_int(env, argv[1], 0, (int64_t)SHMPIPE_MAX_CAPACITY, &min, "bad size"))
		return NULL;
	if (!is_type(env, argv[2], napi_function))
		return type_error(env, "callback must be a function");
	rc = start_wait(env, e, (size_t)min, NULL, argv[2]);
	return int_value(env, rc);
}

/*
 * writeAsync(handle, chunks, done, unit, cb): hands what is left of chunks
 * after done bytes (on a record boundary in record mode) to the waiter
 * thread, which writes it into the ring as room appears; cb(0) once all of
 * it is in, or cb(-errno). Returns 0, or -errno if nothing was started.
 */
static napi_value js_write_async(napi_env env, napi_callback_info info)
{
	napi_value argv[5];
	struct end *e;
	struct chunks *c;
	struct wjob *j;
	int64_t done, unit;
	int err;

	if (!get_args(env, info, 5, argv) || !(e = get_end(env, argv[0])))
		return NULL;
	if (e->kind != WRITER)
		return type_error(env, "not a write end");
	if (!get_int(env, argv[2], 0, INT64_MAX / 2, &done, "bad offset") ||
	    !get_int(env, argv[3], 1, 1 << 20, &unit, "bad unit"))
		return NULL;
	if (!is_type(env, argv[4], napi_function))
		return type_error(env, "callback must be a function");
	c = malloc(sizeof(*c));
	j = calloc(1, sizeof(*j));
	if (!c || !j) {
		free(c);
		free(j);
		napi_throw_error(env, "ENOMEM", "out of memory");
		return NULL;
	}
	if (!get_chunks(env, argv[1], c)) {
		free(c);
		free(j);
		return NULL;
	}
	if ((uint64_t)done > c->total) {
		free(c);
		free(j);
		return range_error(env, "offset beyond the chunks");
	}
	if (!usable(e, &err)) {
		free(c);
		free(j);
		return int_value(env, err);
	}
	j->unit = (size_t)unit;
	j->len = (size_t)(c->total - (uint64_t)done);
	j->data = malloc(j->len ? j->len : 1);
	if (e->records)
		j->rec = malloc(sizeof(*j->rec) * (size_t)(c->n ? c->n : 1));
	if (!j->data || (e->records && !j->rec)) {
		free(c);
		wjob_free(j);
		napi_throw_error(env, "ENOMEM", "out of memory");
		return NULL;
	}
	/* Copy out what is left, skipping the done bytes. */
	uint64_t skip = (uint64_t)done;
	size_t at = 0;

	for (int i = 0; i < c->n; i++) {
		size_t len = c->iov[i].iov_len;

		if (skip >= len) {
			skip -= len;
			continue;
		}
		if (e->records && skip != 0) {
			free(c);
			wjob_free(j);
			return range_error(env, "offset inside a record");
		}
		memcpy(j->data + at, (char *)c->iov[i].iov_base + skip, len - skip);
		if (e->records && len > 0)
			j->rec[j->nrec++] = len;
		at += len - skip;
		skip = 0;
	}
	free(c);
	err = start_wait(env, e, 0, j, argv[4]);
	if (err < 0)
		wjob_free(j);
	return int_value(env, err);
}

/* ---- reading ------------------------------------------------------------ */

/*
 * Peeks with a timeout on the JavaScript thread: the count, 0 at end of
 * stream, or -errno, including when the end is not usable here (closed, its
 * waiter inside a call) or a zero-copy view of it is still out (-EBUSY).
 */
static ssize_t peek_here(struct end *e, const void **p, int timeout)
{
	int err;

	if (!usable(e, &err))
		return err;
	if (e->view)
		return -EBUSY;
	shmpipe_reader_set_timeout(e->r, timeout);
	return shmpipe_peek(e->r, p);
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
 * read(handle, max, unit, timeout) -> a new Buffer with up to max bytes
 * (whole units; in record mode one whole record), null at end of stream, or
 * -errno (-EAGAIN when nothing is there and timeout is 0).
 */
static napi_value js_read(napi_env env, napi_callback_info info)
{
	napi_value argv[4], buf;
	struct end *e;
	int64_t max, unit, timeout;
	const void *p;
	void *copy;
	ssize_t n;

	if (!get_args(env, info, 4, argv) || !(e = reader_arg(env, argv[0])))
		return NULL;
	if (!get_int(env, argv[1], 1, (int64_t)1 << 40, &max, "bad size") ||
	    !get_int(env, argv[2], 1, 1 << 20, &unit, "bad unit") ||
	    !get_int(env, argv[3], -1, INT_MAX, &timeout, "bad timeout"))
		return NULL;
	n = peek_here(e, &p, (int)timeout);
	if (n < 0)
		return int_value(env, n);
	if (n == 0) {
		napi_get_null(env, &buf);
		return buf;
	}
	if (!e->records) {
		if ((uint64_t)n > (uint64_t)max)
			n = (ssize_t)max;
		n -= n % unit;
		if (n == 0) /* a partial unit: the writer is inside an item */
			return int_value(env, -EAGAIN);
	}
	if (napi_create_buffer_copy(env, (size_t)n, p, &copy, &buf) != napi_ok)
		return NULL;
	shmpipe_consume(e->r, (size_t)n);
	return buf;
}

/*
 * readInto(handle, typedArray, unit, timeout) -> bytes copied into the
 * array (whole units; in record mode one record, -EMSGSIZE if it does not
 * fit), 0 at end of stream, or -errno.
 */
static napi_value js_read_into(napi_env env, napi_callback_info info)
{
	napi_value argv[4];
	struct end *e;
	int64_t unit, timeout;
	void *data;
	size_t len;
	bool ok;

	if (!get_args(env, info, 4, argv) || !(e = reader_arg(env, argv[0])))
		return NULL;
	if (napi_is_typedarray(env, argv[1], &ok) == napi_ok && ok) {
		napi_typedarray_type t;
		size_t count, off;
		napi_value ab;
		static const size_t sizes[] = {1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8};

		napi_get_typedarray_info(env, argv[1], &t, &count, &data, &ab, &off);
		len = count * ((size_t)t < sizeof(sizes) / sizeof(sizes[0]) ? sizes[t] : 1);
	} else {
		return type_error(env, "target must be a Buffer or typed array");
	}
	if (!get_int(env, argv[2], 1, 1 << 20, &unit, "bad unit") ||
	    !get_int(env, argv[3], -1, INT_MAX, &timeout, "bad timeout"))
		return NULL;
	len -= len % (size_t)unit;
	if (len == 0)
		return range_error(env, "target smaller than one item");

	const void *p;
	ssize_t n = peek_here(e, &p, (int)timeout);

	if (n <= 0)
		return int_value(env, n);
	if (e->records) {
		if ((size_t)n > len)
			return int_value(env, -EMSGSIZE);
	} else {
		if ((size_t)n > len)
			n = (ssize_t)len;
		n -= n % unit;
		if (n == 0)
			return int_value(env, -EAGAIN);
	}
	memcpy(data, p, (size_t)n);
	shmpipe_consume(e->r, (size_t)n);
	return int_value(env, n);
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
	napi_value argv[2], ab;
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
	if (napi_get_reference_value(env, e->view, &ab) == napi_ok && ab)
		napi_detach_arraybuffer(env, ab);
	napi_delete_reference(env, e->view);
	e->view = NULL;
	return int_value(env, shmpipe_consume(e->r, (size_t)n));
}

/* setSpin(handle, us): how long a wait spins before sleeping (-1 = default). */
static napi_value js_set_spin(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	struct end *e;
	int64_t us;
	int rc;

	if (!get_args(env, info, 2, argv) || !(e = get_end(env, argv[0])))
		return NULL;
	if (!get_int(env, argv[1], -1, SHMPIPE_SPIN_MAX_US, &us, "spin must be -1 or 0 to 1000000 us"))
		return NULL;
	/* Only while no wait is pending: the waiter reads the setting. */
	if (!usable(e, &rc))
		return int_value(env, rc);
	rc = e->w ? shmpipe_writer_set_spin(e->w, (int)us) : shmpipe_reader_set_spin(e->r, (int)us);
	return int_value(env, rc);
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

/* stats(handle) -> the counters (any time while open; from any thread). */
static napi_value js_stats(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	struct end *e;
	shmpipe_stats s;
	int rc = -EBADF;

	if (!get_args(env, info, 1, argv) || !(e = get_end(env, argv[0])))
		return NULL;
	/* Stats only read shared counters: safe while the waiter holds the end. */
	pthread_mutex_lock(&e->mu);
	if (e->w)
		rc = shmpipe_writer_stats(e->w, &s);
	else if (e->r)
		rc = shmpipe_reader_stats(e->r, &s);
	pthread_mutex_unlock(&e->mu);
	if (rc < 0)
		return throw_rc(env, rc, "stats");
	return stats_object(env, &s);
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

	if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], INT_MIN, INT_MAX, &rc, "bad code"))
		return NULL;
	napi_create_string_utf8(env, shmpipe_strerror((int)rc), NAPI_AUTO_LENGTH, &s);
	return s;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */)
{
	static const struct {
		const char *name;
		napi_callback fn;
	} fns[] = {
		{"create", js_create},   {"open", js_open},       {"dupFd", js_dup_fd},
		{"closeFd", js_close_fd}, {"unlink", js_unlink},   {"close", js_close},
		{"write", js_write},     {"writeAsync", js_write_async}, {"wait", js_wait},       {"read", js_read},
		{"readInto", js_read_into}, {"peek", js_peek},    {"consume", js_consume},
		{"setSpin", js_set_spin}, {"stats", js_stats},     {"statName", js_stat_name}, {"strerror", js_strerror},
	};

	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		napi_value f;

		napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
		napi_set_named_property(env, exports, fns[i].name, f);
	}
	set_num(env, exports, "RECORDS", SHMPIPE_RECORDS);
	set_num(env, exports, "DEFAULT_CAPACITY", SHMPIPE_DEFAULT_CAPACITY);
	return exports;
}
