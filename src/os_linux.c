/* SPDX-License-Identifier: MIT */
/*
 * Linux: memfd for shared memory, two MAP_FIXED mappings inside one reserved
 * range for the mirror, membarrier for the asymmetric fence (the doorbells
 * are in os_linux_bell.c). System calls are wrapped here and
 * only here, turning -1/errno into -errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "os.h"

size_t shmpipe__os_page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);

	return p > 0 ? (size_t)p : 4096;
}

int shmpipe__os_high(int fd)
{
	int nfd, err;

	/*
	 * Never 0, 1 or 2. A process started with one of them closed would
	 * otherwise get our object under that number, and what it means for
	 * its standard input, output or error would come from or go into the
	 * pipe (as shm_open, pipe2 and the rest take the lowest free number).
	 */
	if (fd < 0)
		return -errno;
	if (fd > 2)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	err = -errno;
	close(fd);
	return nfd < 0 ? err : nfd;
}

/*
 * Gives the object its size, with every page of it reserved now: a tmpfs
 * (/dev/shm is one, 64 MiB in a default Docker container) or the memory
 * behind a memfd that cannot hold it says so here, as -ENOSPC or -ENOMEM,
 * rather than as a SIGBUS in the middle of a write once the ring wraps
 * into pages nobody could provide.
 */
static int reserve(int fd, uint64_t size)
{
	int err;

	if (size > (uint64_t)INT64_MAX)
		return -EINVAL;
	do
		err = fallocate(fd, 0, 0, (off_t)size);
	while (err < 0 && errno == EINTR);
	if (err == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	/* A file system that cannot reserve: only the size, as before. */
	return ftruncate(fd, (off_t)size) < 0 ? -errno : 0;
}

int shmpipe__os_shm_anon(const char *name, uint64_t size)
{
	int fd = shmpipe__os_high(memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
	int err;

	if (fd < 0)
		return fd;
	/*
	 * Nobody may shrink the object under a mapping (a shrunk file turns
	 * accesses into SIGBUS) or grow it: seal its size for good.
	 */
	err = reserve(fd, size);
	if (err == 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		err = -errno;
	if (err < 0) {
		close(fd);
		return err;
	}
	return fd;
}

int shmpipe__os_shm_create(const char *name, uint64_t size, unsigned mode)
{
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int err;

	if (fd < 0)
		return -errno;
	fd = shmpipe__os_high(fd);
	if (fd < 0) {
		shm_unlink(name);
		return fd;
	}
	/* Exactly the bits asked for: shm_open filtered them through umask. */
	err = fchmod(fd, mode) < 0 ? -errno : reserve(fd, size);
	if (err < 0) {
		close(fd);
		shm_unlink(name);
		return err;
	}
	return fd;
}

int shmpipe__os_shm_open(const char *name, int readonly)
{
	/*
	 * Non-blocking: anyone may put a FIFO in /dev/shm under a pipe's name,
	 * and opening it to read would wait for a writer that never comes.
	 * Only a regular file is a shared memory object.
	 */
	int fd = shmpipe__os_high(
	    shm_open(name, (readonly ? O_RDONLY : O_RDWR) | O_NONBLOCK | O_CLOEXEC, 0));
	struct stat st;

	if (fd < 0)
		return fd == -ENXIO ? -EPROTO : fd; /* a FIFO without a reader */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
		int err = S_ISREG(st.st_mode) ? -errno : -EPROTO;

		close(fd);
		return err;
	}
	return fd;
}

int shmpipe__os_shm_unlink(const char *name)
{
	return shm_unlink(name) < 0 ? -errno : 0;
}

int shmpipe__os_proc_open(int fd, int flags)
{
	char path[64];
	int nfd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	nfd = shmpipe__os_high(open(path, flags | O_CLOEXEC));
	/* No /proc at all (a chroot, a bare container): say so, not "no such fd". */
	if (nfd == -ENOENT && access("/proc/self/fd", F_OK) < 0)
		return -EOPNOTSUPP;
	return nfd;
}

int shmpipe__os_reopen(int fd)
{
	return shmpipe__os_proc_open(fd, O_RDWR);
}

int shmpipe__os_shm_pair(uint64_t size, int *rfd, int *mfd)
{
	char name[64];
	uint8_t r[8];
	int fd = -EEXIST;

	/*
	 * Without /proc a memfd cannot be opened twice, and each end needs
	 * its own open file description for its lock: make the object by a
	 * name nobody can guess, open it twice, and take the name away.
	 */
	for (int i = 0; i < 8 && fd == -EEXIST; i++) {
		int err = shmpipe__os_random(r, sizeof(r));

		if (err < 0)
			return err;
		snprintf(name, sizeof(name), "/shmpipe-pair-%02x%02x%02x%02x%02x%02x%02x%02x", r[0],
			 r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
		fd = shmpipe__os_shm_create(name, size, 0600);
	}
	if (fd < 0)
		return fd;
	*rfd = shmpipe__os_shm_open(name, 0);
	*mfd = *rfd < 0 ? *rfd : shmpipe__os_shm_open(name, 0);
	shm_unlink(name);
	if (*rfd < 0 || *mfd < 0) {
		int err = *rfd < 0 ? *rfd : *mfd;

		if (*rfd >= 0)
			close(*rfd);
		close(fd);
		return err;
	}
	return fd;
}

int shmpipe__os_shrinkable(int fd)
{
	char path[64], target[16];
	ssize_t n;
	int seals;

	/*
	 * Only a memfd can be sealed; a file in /dev/shm reports a lone
	 * F_SEAL_SEAL like an unsealable memfd does, so ask what it is.
	 */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target));
	if (n < 7 || memcmp(target, "/memfd:", 7) != 0)
		return 0;
	seals = fcntl(fd, F_GET_SEALS);
	return seals < 0 || !(seals & F_SEAL_SHRINK);
}

int shmpipe__os_mode(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	/* A memfd, or a named object since unlinked, has no name to guard. */
	return st.st_nlink ? (int)(st.st_mode & 07777) : 0;
}

bool shmpipe__os_owner_trusted(int fd)
{
	struct stat st;
	uid_t me = geteuid();

	return fstat(fd, &st) == 0 && (st.st_uid == me || st.st_uid == 0);
}

int64_t shmpipe__os_size(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	return st.st_size;
}

static struct flock lock_byte(short type, unsigned byte)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = byte;
	fl.l_len = 1;
	return fl;
}

int shmpipe__os_lock(int fd, unsigned byte)
{
	/*
	 * Open file description locks: owned by the description, not the
	 * process, so they pass with the descriptor (fork, SCM_RIGHTS) and
	 * go away only when its last descriptor is closed, by close or death.
	 */
	struct flock fl = lock_byte(F_WRLCK, byte);
	int held;

	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	if (errno != EAGAIN && errno != EACCES)
		return -errno;
	/*
	 * Held by an end (a write lock), or blocked by a read lock, which
	 * anyone who may read the object can take: not an end, and it proves
	 * nothing, but it keeps us from holding ours.
	 */
	held = shmpipe__os_lock_held(fd, byte);
	return held == 0 ? -EACCES : held < 0 ? held : -EBUSY;
}

void shmpipe__os_unlock(int fd, unsigned byte)
{
	struct flock fl = lock_byte(F_UNLCK, byte);

	fcntl(fd, F_OFD_SETLK, &fl);
}

int shmpipe__os_lock_held(int fd, unsigned byte)
{
	/*
	 * Only a write lock is an end's: asked as a read lock would be, the
	 * kernel reports only locks that conflict with one, and read locks do
	 * not. A process that may only read the object can take read locks,
	 * even queue one for the moment an end's holder dies, and would
	 * otherwise make a dead end look held.
	 */
	struct flock fl = lock_byte(F_RDLCK, byte);

	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return -errno;
	return fl.l_type == F_WRLCK;
}

int shmpipe__os_read_at(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPROTO; /* shrunk under us */
		done += (size_t)n;
	}
	return 0;
}

void shmpipe__os_sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

uint32_t shmpipe__os_pid(void)
{
	return (uint32_t)getpid();
}

void shmpipe__os_close(int fd)
{
	close(fd);
}

int shmpipe__os_map_ring(int fd, size_t hdr_size, size_t data_size, void **base)
{
	size_t len = hdr_size + 2 * data_size;
	uint8_t *p, *q;
	int err, seals;

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
	/*
	 * An object that may shrink under us (anything but a memfd sealed
	 * against it) is guarded: a fault in it becomes -EPROTO, not death.
	 */
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
		err = shmpipe__os_guard(p, len, hdr_size);
		if (err < 0) {
			munmap(p, len);
			return err;
		}
	}
	*base = p;
	return 0;
fail:
	err = -errno;
	munmap(p, len);
	return err;
}

void shmpipe__os_unmap(void *base, size_t len)
{
	shmpipe__os_unguard(base);
	munmap(base, len);
}

void shmpipe__os_yield(void)
{
	sched_yield();
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

/* 1: this process takes part in process-wide barriers; -1: it cannot; 0: unknown. */
static _Atomic int barrier_state;
static pthread_once_t barrier_once = PTHREAD_ONCE_INIT;

static long membarrier(int cmd)
{
	return syscall(SYS_membarrier, cmd, 0u, 0);
}

/*
 * The kernel keeps the registration in the address space, which fork
 * copies; registering again in the child costs little and does not depend
 * on that detail.
 */
static void barrier_after_fork(void)
{
	if (atomic_load_explicit(&barrier_state, memory_order_relaxed) > 0 &&
	    membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) < 0)
		atomic_store_explicit(&barrier_state, -1, memory_order_relaxed);
}

/*
 * Off unless SHMPIPE_BARRIER=1 asks for it. Linux skips, in a
 * GLOBAL_EXPEDITED barrier, a processor whose cached membarrier state
 * predates the registration: one that ran this process before it
 * registered and has since held its address space only lazily (idle, or a
 * kernel thread), when a thread of this process runs there again (the
 * scheduler refreshes that state only when it switches between two
 * different address spaces). The barrier then returns without that
 * processor passing a fence, and the fenceless publication loses wake-ups:
 * a pipe hung so (both ends asleep, a record waiting) on 6.18. Until that
 * is worked around, the fenced protocol is the default.
 */
static void barrier_setup(void)
{
	long cmds = membarrier(MEMBARRIER_CMD_QUERY);
	const char *on = getenv("SHMPIPE_BARRIER");
	int state = -1;

	if (on && strcmp(on, "1") == 0 && !getenv("SHMPIPE_NO_BARRIER") && cmds > 0 &&
	    (cmds & MEMBARRIER_CMD_GLOBAL_EXPEDITED) &&
	    (cmds & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) &&
	    membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0 &&
	    pthread_atfork(NULL, NULL, barrier_after_fork) == 0)
		state = 1;
	atomic_store_explicit(&barrier_state, state, memory_order_relaxed);
}

int shmpipe__os_barrier_register(void)
{
	pthread_once(&barrier_once, barrier_setup);
	return atomic_load_explicit(&barrier_state, memory_order_relaxed) > 0 ? 0 : -ENOSYS;
}

int shmpipe__os_barrier(void)
{
	return membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0 ? 0 : -errno;
}
