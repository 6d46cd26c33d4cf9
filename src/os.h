/* SPDX-License-Identifier: MIT */
/*
 * The seam between the portable core and the operating system: how shared
 * memory is obtained and mapped twice, how a waiting end is woken and learns
 * of its peer's death, how descriptors are passed. Linux implements it in
 * os_linux.c, os_linux_bell.c and os_linux_guard.c. Two GNU C library
 * calls sit outside it, each in the one file that offers its feature:
 * fopencookie(3) (stream.c, the FILE * streams) and strerrordesc_np(3)
 * (error.c); a port supplies those two as well.
 *
 * Functions returning int or a signed size give >= 0 on success or -errno;
 * those returning void, a size or a pid cannot fail.
 */
#ifndef SHMPIPE_OS_H
#define SHMPIPE_OS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "atomics.h"

/* The size of a memory page, the unit of every mapping. */
size_t shmpipe__os_page_size(void);

/*
 * What a system call that makes a descriptor returned, made safe to keep:
 * fd itself if it is above 2, else a duplicate above 2 (and fd closed), so
 * that the library never holds descriptor 0, 1 or 2; -errno for fd < 0.
 * Every descriptor the library makes or receives goes through it.
 */
int shmpipe__os_high(int fd);

/*
 * Creates an anonymous shared memory object of size bytes (zero-filled),
 * which can be mapped by this process and inherited by fork(2) or passed as
 * a descriptor. Returns the descriptor (close-on-exec) or -errno.
 */
int shmpipe__os_shm_anon(const char *name, uint64_t size);

/*
 * Creates a named shared memory object (name as shm_open takes it) of size
 * bytes, exclusively (-EEXIST if the name is taken), with exactly the
 * permission bits mode. Returns the descriptor (close-on-exec) or -errno.
 */
int shmpipe__os_shm_create(const char *name, uint64_t size, unsigned mode);

/*
 * Opens an existing named object, read-write or read-only, without waiting:
 * -EPROTO if it is not a regular file (a FIFO, a device), -errno.
 */
int shmpipe__os_shm_open(const char *name, int readonly);

/* Removes a name. */
int shmpipe__os_shm_unlink(const char *name);

/*
 * A new open file description of what fd refers to, opened through
 * /proc/self/fd with flags: the descriptor, -EOPNOTSUPP if there is no
 * /proc, or -errno (-ENOENT: fd is not open).
 */
int shmpipe__os_proc_open(int fd, int flags);

/*
 * A new open file description of the object behind fd (not a dup: locks
 * taken through it are its own). Returns the descriptor or -errno.
 */
int shmpipe__os_reopen(int fd);

/*
 * For a pair where there is no /proc: a new object of size bytes, reserved,
 * opened three times (returns one descriptor, *rfd and *mfd the others),
 * its name already gone. Not sealed: its mappings are guarded. -errno on
 * failure.
 */
int shmpipe__os_shm_pair(uint64_t size, int *rfd, int *mfd);

/*
 * Whether fd is a memfd that can still be shrunk (not sealed against it).
 * False for objects that cannot be sealed at all, such as named ones.
 */
int shmpipe__os_shrinkable(int fd);

/*
 * The permission bits of the object behind fd, 0 if it has no name (a
 * memfd, or a named object since unlinked), or -errno.
 */
int shmpipe__os_mode(int fd);

/* Whether the object behind fd belongs to our effective user or to root. */
bool shmpipe__os_owner_trusted(int fd);

/* The size of the object behind fd, or -errno. */
int64_t shmpipe__os_size(int fd);

/*
 * Liveness locks: an end holds an exclusive lock on one byte of the object
 * for as long as its open file description exists, so the kernel releases
 * it when the holder closes or dies, whatever its pid becomes. lock takes it
 * (-EBUSY if another description holds it, -EACCES if only read locks,
 * which any reader of the object may take, keep us from it); held tells
 * whether another description holds a write lock on it (1), not (0), or
 * -errno: read locks never count.
 */
int shmpipe__os_lock(int fd, unsigned byte);
int shmpipe__os_lock_held(int fd, unsigned byte);
/* Releases our lock on byte, even while other descriptors of ours are open. */
void shmpipe__os_unlock(int fd, unsigned byte);

/*
 * Reads len bytes at offset off of the object: a copy that cannot fault,
 * however its owner resizes it meanwhile. 0, -EPROTO if the object ends
 * before, or -errno.
 */
int shmpipe__os_read_at(int fd, void *buf, size_t len, uint64_t off);

/* Sends / receives one descriptor over a UNIX socket (SCM_RIGHTS). */
int shmpipe__os_send_fd(int sock, int fd);
int shmpipe__os_recv_fd(int sock);

/* Sleeps about ms milliseconds (waiting for a creator to finish). */
void shmpipe__os_sleep_ms(int ms);

/* The caller's process id, for observers. */
uint32_t shmpipe__os_pid(void);

/* Closes a descriptor returned by one of the functions above. */
void shmpipe__os_close(int fd);

/*
 * Maps the object behind fd as header (hdr_size bytes at file offset 0)
 * followed by the data region (data_size bytes at file offset hdr_size)
 * mapped twice, back to back. On success *base is the start of the header
 * and the mapping is hdr_size + 2 * data_size bytes long. Both sizes must be
 * page multiples.
 */
int shmpipe__os_map_ring(int fd, size_t hdr_size, size_t data_size, void **base);

/* Undoes shmpipe__os_map_ring. */
void shmpipe__os_unmap(void *base, size_t len);

/*
 * The SIGBUS guard (os_linux_guard.c): guard registers a mapping of an
 * object that may shrink under us (installing the process's SIGBUS handler
 * the first time); a fault in it replaces it with private memory whose
 * header page holds no valid position or state, so the end fails its next
 * check with -EPROTO instead of dying. 0, or -errno. unguard forgets it.
 */
int shmpipe__os_guard(void *base, size_t len, size_t hdr_size);
void shmpipe__os_unguard(void *base);

/* Gives the processor to another runnable thread, if any (sched_yield). */
void shmpipe__os_yield(void);

/* The monotonic clock in nanoseconds, for bounding a spin. */
uint64_t shmpipe__os_now_ns(void);

/*
 * A deadline timeout_ms milliseconds from now on the monotonic clock, in the
 * form shmpipe__os_doorbell_wait takes.
 */
void shmpipe__os_deadline(struct timespec *out, int timeout_ms);

/*
 * Process-wide barriers (Linux: membarrier(2), GLOBAL_EXPEDITED). register
 * makes the calling process take part: from then on, every barrier issued
 * by any process makes each thread of this one that is running pass a full
 * memory barrier before the call returns (a thread that is not running
 * passed one when it was switched out). A forked child takes part as its
 * parent did. Returns 0, or -errno (-ENOSYS where the system has no such
 * barrier, unless the environment variable SHMPIPE_BARRIER=1 asks for it,
 * and whenever SHMPIPE_NO_BARRIER is set: every end then stays on the
 * fenced path; os_linux.c says why it is not the default). barrier issues
 * one: 0 or -errno.
 */
int shmpipe__os_barrier_register(void);
int shmpipe__os_barrier(void);

/*
 * Doorbells (Linux: a pipe; os_linux_bell.c). An end waits on the read side of
 * its own doorbell, and only its peer holds the write side, so the read side
 * reports end of file as soon as the peer is gone, whatever its pid becomes.
 *
 * doorbell makes one: fds[0] the read side (blocking), fds[1] the write side
 * (non-blocking). ring writes one byte (never blocks, never raises SIGPIPE
 * while the caller also holds a read side). drain empties the read side
 * without blocking: 0, 1 if no write side is left, or -errno. doorbell_wait
 * waits for a byte (consuming some) or the hang-up: with no deadline and
 * poll_fd < 0 it is one blocking read(2), restarted under SA_RESTART;
 * otherwise poll(2) on poll_fd (or fd; or on nothing, a plain sleep, if both
 * are -1) until the absolute monotonic deadline. 0 (woken), 1 (hung up), -ETIMEDOUT, -EINTR. kick
 * writes one byte into the end's own doorbell, from any thread, through a write side opened for the
 * purpose.
 */
int shmpipe__os_doorbell(int fds[2]);
void shmpipe__os_ring(int fd);
int shmpipe__os_drain(int fd);
int shmpipe__os_doorbell_wait(int fd, int poll_fd, const struct timespec *deadline);
int shmpipe__os_kick(int fd);

/*
 * A note an end leaves for its own event loop (Linux: an eventfd): note
 * makes one, note_set makes it readable, note_clear not.
 */
int shmpipe__os_note(void);
void shmpipe__os_note_set(int fd);
void shmpipe__os_note_clear(int fd);

/*
 * The descriptor an event loop waits on (Linux: an epoll instance, itself
 * pollable): readable while any descriptor added to it is.
 */
int shmpipe__os_poller(int fd);
int shmpipe__os_poller_add(int ep, int fd);
void shmpipe__os_poller_del(int ep, int fd);
/*
 * poller_new makes one with nothing in it; poller_ready puts up to n of the
 * descriptors that are readable now (or hung up) into fds, without waiting,
 * and returns how many, or -errno.
 */
int shmpipe__os_poller_new(void);
int shmpipe__os_poller_ready(int ep, int *fds, int n);

/* len random bytes, or -errno. */
int shmpipe__os_random(void *buf, size_t len);

/*
 * The rendezvous of a named or passed pipe (Linux: an abstract AF_UNIX
 * stream socket named after a token, so no file is ever left behind).
 * listen binds and listens with a backlog; connect connects, retrying a full backlog for
 * about half a second; accept takes one connection, waiting for it if wait
 * (restarted under SA_RESTART, -EINTR otherwise), else -EAGAIN if none is
 * there; knock connects and hangs up at once, to end a waiting accept.
 * send_fds sends a tagged message carrying n descriptors; recv_fds receives
 * one carrying exactly n (waiting up to wait_ms for it to come), or
 * -EAGAIN, or -EBADMSG, closing whatever else came.
 */
#define SHMPIPE__OS_FDS_MAX 4
/*
 * Connections that wait for the creating end: the one peer, with room for
 * a few strangers (each one beyond the creating end's look is a delay for
 * the peer); a broadcast writer's readers, all at once.
 */
#define SHMPIPE__OS_BACKLOG	 16
#define SHMPIPE__OS_BACKLOG_MANY 80 /* SHMPIPE_READERS_MAX, and some */
int shmpipe__os_listen(const uint8_t *token, size_t len, int backlog);
int shmpipe__os_connect(const uint8_t *token, size_t len);
int shmpipe__os_accept(int listener, int wait);
void shmpipe__os_knock(const uint8_t *token, size_t len);
int shmpipe__os_send_fds(int sock, const int *fds, int n);
int shmpipe__os_recv_fds(int sock, int *fds, int n, int wait_ms);
/* The same, with len bytes of the sender's own after the tag (exactly len on receipt). */
#define SHMPIPE__OS_EXTRA_MAX 16
int shmpipe__os_send_fds_with(int sock, const int *fds, int n, const void *extra, size_t len);
int shmpipe__os_recv_fds_with(int sock, int *fds, int n, int wait_ms, void *extra, size_t len);
/* Whether fd was opened for reading and writing (1), not (0), or -errno. */
int shmpipe__os_writable(int fd);

/* Whether two descriptors name the same file (1), not (0), or -errno. */
int shmpipe__os_same_file(int a, int b);
/*
 * Makes fd's open file description non-blocking (a doorbell received from a
 * peer: ring never blocks on it even where the kernel ignores RWF_NOWAIT).
 */
void shmpipe__os_nonblock(int fd);
/* A new descriptor (close-on-exec) of the same open file description. */
int shmpipe__os_dup(int fd);
/* Whether fd is a pipe (1), not (0), or -errno. */
int shmpipe__os_is_pipe(int fd);

#endif /* SHMPIPE_OS_H */
