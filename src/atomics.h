/* SPDX-License-Identifier: MIT */
/*
 * Every atomic access of shmpipe goes through these helpers, so that the
 * memory order of each one is spelled out and reviewed in one place. Each use
 * carries a comment naming the operation it pairs with.
 *
 * The wait/wake protocol relies on sequentially consistent operations (the
 * store-buffering pattern: "I publish, then look whether you sleep" against
 * "I announce that I sleep, then look whether you published"); everything
 * else is plain release/acquire.
 */
#ifndef SHMPIPE_ATOMICS_H
#define SHMPIPE_ATOMICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef _Atomic uint64_t shmpipe__u64;
typedef _Atomic uint32_t shmpipe__u32;

/* Values only the caller's side writes: relaxed is enough to read them back. */
static inline uint64_t shmpipe__load_relaxed(const shmpipe__u64 *p)
{
	return atomic_load_explicit((shmpipe__u64 *)p, memory_order_relaxed);
}

static inline void shmpipe__store_relaxed(shmpipe__u64 *p, uint64_t v)
{
	atomic_store_explicit(p, v, memory_order_relaxed);
}

/*
 * A counter published after the position it counts: an observer that
 * acquires it also sees that position (pairs with shmpipe__load_acquire).
 */
static inline void shmpipe__store_release(shmpipe__u64 *p, uint64_t v)
{
	atomic_store_explicit(p, v, memory_order_release);
}

/* Pairs with shmpipe__store_release / shmpipe__store_sc of the other side. */
static inline uint64_t shmpipe__load_acquire(const shmpipe__u64 *p)
{
	return atomic_load_explicit((shmpipe__u64 *)p, memory_order_acquire);
}

static inline uint32_t shmpipe__load32_acquire(const shmpipe__u32 *p)
{
	return atomic_load_explicit((shmpipe__u32 *)p, memory_order_acquire);
}

/*
 * Publish a position (or state) so that the data before it is visible to an
 * acquirer, and order it before the later sequentially consistent load of
 * the peer's waiter flag (store->load: the one reordering that release alone
 * allows and the wake-up protocol forbids). On x86-64 this is one xchg.
 */
static inline void shmpipe__store_sc(shmpipe__u64 *p, uint64_t v)
{
	atomic_store_explicit(p, v, memory_order_seq_cst);
}

static inline void shmpipe__store32_sc(shmpipe__u32 *p, uint32_t v)
{
	atomic_store_explicit(p, v, memory_order_seq_cst);
}

static inline uint64_t shmpipe__load_sc(const shmpipe__u64 *p)
{
	return atomic_load_explicit((shmpipe__u64 *)p, memory_order_seq_cst);
}

static inline uint32_t shmpipe__load32_sc(const shmpipe__u32 *p)
{
	return atomic_load_explicit((shmpipe__u32 *)p, memory_order_seq_cst);
}

static inline uint32_t shmpipe__exchange32_sc(shmpipe__u32 *p, uint32_t v)
{
	return atomic_exchange_explicit(p, v, memory_order_seq_cst);
}

static inline uint32_t shmpipe__fetch_or32_sc(shmpipe__u32 *p, uint32_t v)
{
	return atomic_fetch_or_explicit(p, v, memory_order_seq_cst);
}

static inline bool shmpipe__cas32_sc(shmpipe__u32 *p, uint32_t *expected, uint32_t desired)
{
	return atomic_compare_exchange_strong_explicit(p, expected, desired, memory_order_seq_cst,
						       memory_order_seq_cst);
}

static inline bool shmpipe__cas64_sc(shmpipe__u64 *p, uint64_t *expected, uint64_t desired)
{
	return atomic_compare_exchange_strong_explicit(p, expected, desired, memory_order_seq_cst,
						       memory_order_seq_cst);
}

/* A word only read for a hint (a flag that is set once and never cleared). */
static inline uint32_t shmpipe__load32_relaxed(const shmpipe__u32 *p)
{
	return atomic_load_explicit((shmpipe__u32 *)p, memory_order_relaxed);
}

static inline void shmpipe__store32_relaxed(shmpipe__u32 *p, uint32_t v)
{
	atomic_store_explicit(p, v, memory_order_relaxed);
}

/*
 * Keeps the compiler from moving memory accesses across it, and nothing
 * more: the processor may still let a later load pass an earlier store. The
 * fast side of the asymmetric fence (wait.c) needs exactly this, because the
 * slow side's process-wide barrier orders the processor for it.
 */
static inline void shmpipe__compiler_barrier(void)
{
	atomic_signal_fence(memory_order_seq_cst);
}

/* A hint to the CPU inside a short spin loop. */
static inline void shmpipe__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif /* SHMPIPE_ATOMICS_H */
