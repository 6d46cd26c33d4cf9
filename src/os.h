/*
 * The seam between the portable core and the operating system. Everything
 * that differs by platform (how shared memory is obtained and mapped twice,
 * how a thread sleeps on a word and is woken) sits behind these functions;
 * Linux implements them in os_linux.c. A port adds an os_<name>.c and
 * changes nothing else.
 *
 * Every function returns >= 0 on success or -errno.
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
 * Creates an anonymous shared memory object of size bytes (zero-filled),
 * which can be mapped by this process and inherited by fork(2) or passed as
 * a descriptor. Returns the descriptor (close-on-exec) or -errno.
 */
int shmpipe__os_shm_anon(const char *name, uint64_t size);

/* Closes a descriptor returned by shmpipe__os_shm_anon. */
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

/* The monotonic clock in nanoseconds, for bounding a spin. */
uint64_t shmpipe__os_now_ns(void);

/*
 * A deadline timeout_ms milliseconds from now on the monotonic clock, in the
 * form shmpipe__os_wait takes.
 */
void shmpipe__os_deadline(struct timespec *out, int timeout_ms);

/*
 * Sleeps while *word == expected, until woken by shmpipe__os_wake or until
 * the absolute monotonic deadline (NULL: no deadline). Works between
 * processes that map the same object. Returns 0 when woken, when the word
 * no longer held expected, or spuriously (the caller re-checks its
 * condition in every case), -ETIMEDOUT at the deadline, -EINTR on a signal, or
 * another -errno if the system cannot wait at all.
 */
int shmpipe__os_wait(shmpipe__u32 *word, uint32_t expected, const struct timespec *deadline);

/* Wakes one thread sleeping in shmpipe__os_wait on word, if any. */
void shmpipe__os_wake(shmpipe__u32 *word);

#endif /* SHMPIPE_OS_H */
