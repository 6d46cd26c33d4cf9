/* SPDX-License-Identifier: MIT */
/*
 * Description: a process without /proc (a chroot, a bare container). The
 * test hides /proc under an empty tmpfs in a mount namespace of its own
 * (root only; skipped otherwise).
 *
 * (a) shmpipe_pair still works: without /proc a memfd cannot be opened a
 *     second time for the second end's own description, so the pair is
 *     made over a named object opened twice, whose name is gone at once.
 *     Data goes through, every byte checked, and no name is left.
 * (b) A named pipe, created and opened by name, works: nothing there needs
 *     /proc.
 * (c) What does need it says so: shmpipe_*_open_fd (an end's own open file
 *     description of a passed object) and shmpipe_*_interrupt return
 *     -EOPNOTSUPP, not -EBADF or -ENOENT for a valid descriptor.
 */
#include <dirent.h>
#include <sched.h>
#include <sys/mount.h>

#include "xproc.h"

#define CAP 4096

static void move(shmpipe_writer *w, shmpipe_reader *r, const char *what)
{
	uint8_t buf[1000];
	uint64_t woff = 0, roff = 0, total = 5 * CAP;

	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	while (roff < total) {
		ssize_t n;

		if (woff < total) {
			size_t k = (size_t)(total - woff);

			if (k > sizeof(buf))
				k = sizeof(buf);
			test_pattern_fill(buf, k, 7, woff);
			n = shmpipe_write(w, buf, k);
			if (n < 0 && n != -EAGAIN)
				TEST_FAIL("%s: write = %zd", what, n);
			if (n > 0)
				woff += (uint64_t)n;
		}
		n = shmpipe_read(r, buf, sizeof(buf));
		if (n < 0 && n != -EAGAIN)
			TEST_FAIL("%s: read = %zd", what, n);
		if (n > 0) {
			ASSERT_PATTERN(buf, (size_t)n, 7, roff);
			roff += (uint64_t)n;
		}
	}
}

static int count_pair_names(void)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *de;
	int n = 0;

	ASSERT_NOT_NULL(d);
	while ((de = readdir(d)) != NULL)
		n += strncmp(de->d_name, "shmpipe-pair-", 13) == 0;
	closedir(d);
	return n;
}

static int body(int argc, char **argv)
{
	char name[XP_NAME_MAX];
	shmpipe_options o = test_opts(CAP);
	shmpipe_writer *w;
	shmpipe_reader *r;
	int names;

	(void)argc;
	(void)argv;
	test_watchdog(60);
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("none", "/proc", "tmpfs", MS_NOSUID | MS_NODEV, "size=64k") < 0)
		TEST_SKIP("cannot hide /proc: %s", strerror(errno));
	ASSERT_TRUE(access("/proc/self", F_OK) < 0);

	/* (a) */
	names = count_pair_names();
	ASSERT_OK(shmpipe_pair(&w, &r, &o));
	ASSERT_EQ(count_pair_names(), names);
	move(w, r, "a pair");
	/* (c) an interrupt needs /proc */
	ASSERT_ERR(shmpipe_writer_interrupt(w), -EOPNOTSUPP);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
	printf("ok - a pair without /proc\n");

	/* (b) */
	xp_name(name, sizeof(name), 1);
	ASSERT_OK(shmpipe_writer_create(&w, name, &o));
	ASSERT_OK(shmpipe_reader_open(&r, name));
	move(w, r, "a named pipe");
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_unlink(name));
	printf("ok - a named pipe without /proc\n");

	/* (c) a passed descriptor */
	ASSERT_OK(shmpipe_writer_create(&w, NULL, &o));
	ASSERT_ERR(shmpipe_reader_open_fd(&r, shmpipe_writer_fd(w)), -EOPNOTSUPP);
	ASSERT_OK(shmpipe_writer_close(w));
	printf("ok - what needs /proc says so: -EOPNOTSUPP\n");
	/* /proc back, for what runs at exit (LeakSanitizer reads it). */
	ASSERT_EQ(umount2("/proc", MNT_DETACH), 0);
	return T_PASS;
}

int main(int argc, char **argv)
{
	return xp_main("no_proc", body, argc, argv);
}
