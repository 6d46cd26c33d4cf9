/* SPDX-License-Identifier: MIT */
/*
 * Description: a /dev/shm too small for the ring (Docker's default is 64
 * MiB). The test runs in a mount namespace of its own, with an 8 MiB tmpfs
 * on /dev/shm (it needs root, and skips without). Creating a pipe reserves
 * its memory at once, so:
 *
 * (a) a ring larger than the free space fails to be created, with -ENOSPC,
 *     and leaves no name behind;
 * (b) a ring that fits holds its space: a second pipe that would need the
 *     rest fails the same way, rather than both being made sparse and a
 *     writer later dying of SIGBUS when the ring wraps into pages the tmpfs
 *     cannot give; then 64 MiB go through the first one, to a reader in a
 *     child process, every byte checked.
 */
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>

#include "xproc.h"

#define SHM_SIZE "8m"
#define MiB	 (1024 * 1024)

static int private_shm(void)
{
	if (unshare(CLONE_NEWNS) < 0)
		return -errno;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -errno;
	if (mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=" SHM_SIZE) < 0)
		return -errno;
	return 0;
}

static int body(int argc, char **argv)
{
	char name[XP_NAME_MAX], name2[XP_NAME_MAX];
	shmpipe_options o = test_opts(16 * MiB);
	shmpipe_writer *w, *w2;
	shmpipe_reader *r;
	uint64_t total = 64 * MiB;
	pid_t pid;
	int err;

	(void)argc;
	(void)argv;
	test_watchdog(60);
	err = private_shm();
	if (err < 0)
		TEST_SKIP("no private tmpfs on /dev/shm: %s", strerror(-err));

	/* (a) Larger than the whole tmpfs. */
	xp_name(name, sizeof(name), 1);
	ASSERT_ERR(shmpipe_writer_create(&w, name, &o), -ENOSPC);
	ASSERT_EQ(xp_name_exists(name), 0);
	ASSERT_ERR(shmpipe_reader_create(&r, name, &o), -ENOSPC);
	ASSERT_EQ(xp_name_exists(name), 0);

	/* (b) 6 MiB fit; then 4 more do not, since the first holds its space. */
	o.capacity = 6 * MiB;
	ASSERT_OK(shmpipe_writer_create(&w, name, &o));
	xp_name(name2, sizeof(name2), 2);
	o.capacity = 4 * MiB;
	ASSERT_ERR(shmpipe_writer_create(&w2, name2, &o), -ENOSPC);
	ASSERT_EQ(xp_name_exists(name2), 0);

	pid = xp_fork();
	if (pid == 0) {
		ASSERT_OK(shmpipe_reader_open(&r, name));
		xp_read_stream(r, total, 21);
		ASSERT_OK(shmpipe_reader_close(r));
		_exit(T_PASS);
	}
	xp_write_stream(w, total, 21);
	ASSERT_OK(shmpipe_writer_close(w));
	XP_ASSERT_EXIT(xp_wait(pid, 60000), T_PASS);
	ASSERT_OK(shmpipe_unlink(name));
	printf("ok - a ring that does not fit in /dev/shm is -ENOSPC at creation, one that "
	       "fits holds its space\n");
	return T_PASS;
}

int main(int argc, char **argv)
{
	return xp_main("full_shm", body, argc, argv);
}
