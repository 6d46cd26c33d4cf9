/* SPDX-License-Identifier: MIT */
/*
 * Description: a shared object shrunk under our mapping. A named object
 * cannot be sealed, so a peer with write access (or anyone who passed us a
 * descriptor of one) can ftruncate it while we use it; our next access past
 * the new end raises SIGBUS. The library guards such mappings: the fault
 * turns the end's next calls into -EPROTO, and the process lives.
 *
 * (a) The writer of a named pipe; the object is cut to its header page, and
 *     then to nothing, while it writes. Every call returns a count or
 *     -EPROTO, and soon only -EPROTO. The same for the reader, while data
 *     comes.
 * (b) An end taken with shmpipe_reader_open_fd of a named object's
 *     descriptor (which cannot be sealed, as a memfd can), cut while the
 *     end reads.
 * (c) The handler is the process's, and SIGBUS not ours still reaches
 *     whoever had it: a handler of the application's, installed before the
 *     first pipe, gets a fault in a file of its own; and in a process that
 *     had none, a sent SIGBUS still kills it.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "xproc.h"

#define CAP (64 * 1024)

static int cut(const char *name, off_t size)
{
	char path[XP_NAME_MAX + 16];
	int fd;

	snprintf(path, sizeof(path), "/dev/shm%s", name);
	fd = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(ftruncate(fd, size), 0);
	return fd;
}

/* Calls until -EPROTO; anything but a count or -EPROTO fails. */
static void write_until_eproto(shmpipe_writer *w, const char *what)
{
	static uint8_t buf[CAP];

	for (int i = 0; i < 100; i++) {
		ssize_t n = shmpipe_write(w, buf, sizeof(buf));

		if (n == -EPROTO)
			return;
		if (n < 0 && n != -EAGAIN)
			TEST_FAIL("%s: write = %zd (%s)", what, n, shmpipe_strerror((int)n));
	}
	TEST_FAIL("%s: writes go on after the object was cut", what);
}

static void read_until_eproto(shmpipe_reader *r, const char *what)
{
	static uint8_t buf[CAP];

	for (int i = 0; i < 100; i++) {
		ssize_t n = shmpipe_read(r, buf, sizeof(buf));

		if (n == -EPROTO)
			return;
		if (n <= 0 && n != -EAGAIN)
			TEST_FAIL("%s: read = %zd (%s)", what, n, shmpipe_strerror((int)n));
	}
	TEST_FAIL("%s: reads go on after the object was cut", what);
}

static void test_named(off_t size)
{
	char name[XP_NAME_MAX];
	shmpipe_options o = test_opts(CAP);
	shmpipe_writer *w;
	shmpipe_reader *r;
	static uint8_t buf[CAP];
	int fd;

	xp_name(name, sizeof(name), 1);
	ASSERT_OK(shmpipe_writer_create(&w, name, &o));
	ASSERT_OK(shmpipe_reader_open(&r, name));
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	memset(buf, 'a', sizeof(buf));
	ASSERT_EQ(shmpipe_write(w, buf, 1000), 1000);
	fd = cut(name, size);
	write_until_eproto(w, "the writer");
	read_until_eproto(r, "the reader");
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
	close(fd);
	ASSERT_OK(shmpipe_unlink(name));
}

static void test_passed(void)
{
	char name[XP_NAME_MAX], path[XP_NAME_MAX + 16];
	shmpipe_options o = test_opts(CAP);
	shmpipe_writer *w;
	shmpipe_reader *r;
	static uint8_t buf[CAP];
	int fd;

	xp_name(name, sizeof(name), 2);
	ASSERT_OK(shmpipe_writer_create(&w, name, &o));
	snprintf(path, sizeof(path), "/dev/shm%s", name);
	fd = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	ASSERT_OK(shmpipe_reader_open_fd(&r, fd));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	memset(buf, 'b', sizeof(buf));
	ASSERT_EQ(shmpipe_write(w, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	/* The sender cuts what it sent, in the middle of the data. */
	ASSERT_EQ(ftruncate(fd, 4096 + CAP / 2), 0);
	read_until_eproto(r, "a reader of a passed descriptor");
	ASSERT_OK(shmpipe_reader_close(r));
	ASSERT_OK(shmpipe_writer_drop(w)); /* its mapping faults too: not touched */
	close(fd);
	ASSERT_OK(shmpipe_unlink(name));
}

static sigjmp_buf app_jump;
static volatile sig_atomic_t app_faults;

static void app_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	app_faults++;
	siglongjmp(app_jump, 1);
}

static void test_chain(void)
{
	char path[] = "/tmp/shmpipe-test-shrink-XXXXXX";
	shmpipe_options o = test_opts(CAP);
	struct sigaction sa;
	char name[XP_NAME_MAX];
	shmpipe_writer *w;
	volatile char *p;
	int fd, status;
	pid_t pid;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = app_handler;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	ASSERT_EQ(sigaction(SIGBUS, &sa, NULL), 0);
	xp_name(name, sizeof(name), 3);
	ASSERT_OK(shmpipe_writer_create(&w, name, &o)); /* the library's handler now */

	fd = mkstemp(path);
	ASSERT_GE(fd, 0);
	unlink(path);
	ASSERT_EQ(ftruncate(fd, 8192), 0);
	p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_TRUE(p != MAP_FAILED);
	ASSERT_EQ(ftruncate(fd, 0), 0);
	if (sigsetjmp(app_jump, 1) == 0)
		p[4096] = 1; /* not the library's: the application's handler */
	ASSERT_EQ(app_faults, 1);
	munmap((void *)p, 8192);
	close(fd);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_unlink(name));

	/* No handler before us: a sent SIGBUS still does what it would. */
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		signal(SIGBUS, SIG_DFL);
		xp_name(name, sizeof(name), 4);
		if (shmpipe_writer_create(&w, name, &o) != 0)
			_exit(3);
		shmpipe_unlink(name);
		raise(SIGBUS);
		_exit(4);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS);
}

static int body(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : "abc";

	test_watchdog(60);
	if (strchr(only, 'a')) {
		test_named(4096);
		test_named(0);
		printf("ok - a named pipe cut under both ends: -EPROTO, no SIGBUS\n");
	}
	if (strchr(only, 'b')) {
		test_passed();
		printf("ok - a passed named object cut under the reader: -EPROTO, no SIGBUS\n");
	}
	if (strchr(only, 'c')) {
		test_chain();
		printf("ok - a SIGBUS that is not the library's reaches its owner\n");
	}
	return T_PASS;
}

int main(int argc, char **argv)
{
	return xp_main("hostile_shrink", body, argc, argv);
}
