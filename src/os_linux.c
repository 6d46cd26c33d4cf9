/*
 * Linux: memfd for shared memory, two MAP_FIXED mappings inside one reserved
 * range for the mirror, futex for sleeping. System calls are wrapped here and
 * only here, turning -1/errno into -errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "os.h"

size_t shmpipe__os_page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);

	return p > 0 ? (size_t)p : 4096;
}

int shmpipe__os_shm_anon(const char *name, uint64_t size)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return -errno;
	if (size > (uint64_t)INT64_MAX || ftruncate(fd, (off_t)size) < 0) {
		int err = size > (uint64_t)INT64_MAX ? -EINVAL : -errno;

		close(fd);
		return err;
	}
	/*
	 * Nobody may shrink the object under a mapping (a shrunk file turns
	 * accesses into SIGBUS) or grow it: seal its size for good.
	 */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

void shmpipe__os_close(int fd)
{
	close(fd);
}

int shmpipe__os_map_ring(int fd, size_t hdr_size, size_t data_size, void **base)
{
	size_t len = hdr_size + 2 * data_size;
	uint8_t *p, *q;
	int err;

	/* Reserve the whole range first so both copies land back to back. */
	p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	q = mmap(p, hdr_size + data_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	if (q == MAP_FAILED)
		goto fail;
	q = mmap(p + hdr_size + data_size, data_size, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED, fd, (off_t)hdr_size);
	if (q == MAP_FAILED)
		goto fail;
	*base = p;
	return 0;
fail:
	err = -errno;
	munmap(p, len);
	return err;
}

void shmpipe__os_unmap(void *base, size_t len)
{
	munmap(base, len);
}

uint64_t shmpipe__os_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void shmpipe__os_deadline(struct timespec *out, int timeout_ms)
{
	clock_gettime(CLOCK_MONOTONIC, out);
	out->tv_sec += timeout_ms / 1000;
	out->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (out->tv_nsec >= 1000000000L) {
		out->tv_sec++;
		out->tv_nsec -= 1000000000L;
	}
}

int shmpipe__os_wait(shmpipe__u32 *word, uint32_t expected, const struct timespec *deadline)
{
	/*
	 * FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a
	 * wait that is woken early and resumed keeps the caller's deadline.
	 * Not FUTEX_PRIVATE_FLAG: the word is shared with other processes.
	 */
	long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET, expected, deadline,
			 NULL, FUTEX_BITSET_MATCH_ANY);

	if (r == 0 || errno == EAGAIN)
		return 0;
	/* ETIMEDOUT, EINTR, and what should never happen (EFAULT, ENOSYS). */
	return -errno;
}

void shmpipe__os_wake(shmpipe__u32 *word)
{
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, 1, NULL, NULL, 0);
}
