/* SPDX-License-Identifier: MIT */
/*
 * The SIGBUS guard. A named shared memory object cannot be sealed, so any
 * process with write access to it (our peer, which we do not trust) can
 * shrink it with ftruncate while we have it mapped; our next access to a
 * page past the new end then raises SIGBUS, which kills the process unless
 * something handles it. A process may also pass us such an object as a
 * descriptor. Size-sealed memfds (shmpipe_pair, anonymous pipes) cannot
 * shrink and need nothing.
 *
 * Rather than arm anything on the hot path, we take the fault when it
 * happens: every mapping of a shrinkable object is registered here, and a
 * SIGBUS handler, installed once per process, replaces a registered
 * mapping that faulted with private anonymous memory, whose header page it
 * fills with ones: a header in which no position and no state is valid.
 * The access that faulted is retried and completes on private memory (a
 * read sees junk, as it could from any hostile peer), and the end's next
 * look at a position or a state fails its check with -EPROTO. The shared
 * object is not touched again; the peer that shrank it is on its own.
 *
 * A SIGBUS at an address that is not ours goes to the handler we replaced,
 * as if we were not there: its own function, or the default action (the
 * fault is taken again with it, a sent signal is raised again).
 *
 * The registry is a list that only grows, of nodes that are reused: the
 * handler walks it without a lock, and a node it reads is never freed.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "os.h"

struct guard {
	_Atomic uintptr_t base; /* 0: a free node */
	_Atomic size_t len;
	_Atomic size_t hdr_size;
	struct guard *next; /* set before the node is published, never changed */
};

static struct guard *_Atomic guards;
static struct sigaction replaced;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int install_err;

/* Hands a SIGBUS that is not ours to whoever would have had it. */
static void pass_on(int sig, siginfo_t *si, void *uc)
{
	struct sigaction dfl;

	if (replaced.sa_flags & SA_SIGINFO) {
		if (replaced.sa_sigaction)
			replaced.sa_sigaction(sig, si, uc);
		return;
	}
	if (replaced.sa_handler != SIG_DFL && replaced.sa_handler != SIG_IGN) {
		replaced.sa_handler(sig);
		return;
	}
	/* The default action, as without us: it cannot be ignored for a fault. */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigaction(sig, &dfl, NULL);
	/*
	 * A fault: returning retries the access, which faults again. A sent
	 * signal: deliver it again.
	 */
	if (si->si_code <= 0)
		raise(sig);
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;
	int saved = errno;

	if (si->si_code == BUS_ADRERR) {
		for (struct guard *g = atomic_load(&guards); g; g = g->next) {
			uintptr_t b = atomic_load(&g->base);
			size_t len = atomic_load(&g->len);

			if (!b || a - b >= len)
				continue;
			/* mmap is a plain system call on Linux: safe here. */
			if (mmap((void *)b, len, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
				break;
			memset((void *)b, 0xff, atomic_load(&g->hdr_size));
			errno = saved;
			return;
		}
	}
	errno = saved;
	pass_on(sig, si, uc);
}

static void install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sigemptyset(&sa.sa_mask);
	/* NODEFER: a handler that passes a fault on may see it again at once. */
	sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK | SA_RESTART;
	if (sigaction(SIGBUS, &sa, &replaced) < 0)
		install_err = -errno;
}

int shmpipe__os_guard(void *base, size_t len, size_t hdr_size)
{
	struct guard *g;

	pthread_once(&install_once, install);
	if (install_err < 0)
		return install_err;
	/* A free node if there is one, else a new one at the head. */
	for (g = atomic_load(&guards); g; g = g->next) {
		uintptr_t free_base = 0;

		if (atomic_compare_exchange_strong(&g->base, &free_base, (uintptr_t)1)) {
			atomic_store(&g->len, len);
			atomic_store(&g->hdr_size, hdr_size);
			atomic_store(&g->base, (uintptr_t)base);
			return 0;
		}
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	atomic_init(&g->base, (uintptr_t)base);
	atomic_init(&g->len, len);
	atomic_init(&g->hdr_size, hdr_size);
	g->next = atomic_load(&guards);
	while (!atomic_compare_exchange_weak(&guards, &g->next, g))
		;
	return 0;
}

void shmpipe__os_unguard(void *base)
{
	for (struct guard *g = atomic_load(&guards); g; g = g->next) {
		uintptr_t b = (uintptr_t)base;

		if (atomic_compare_exchange_strong(&g->base, &b, (uintptr_t)0))
			return;
	}
}
