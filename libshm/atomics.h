/*
 * atomics.h — the only way libshm touches memory shared between processes.
 *
 * Thin names over C11 atomic_*_explicit so every use states its ordering,
 * and each call site says in a comment what the ordering pairs with (as
 * liburing's barrier.h does). Cross-process atomics must be lock-free: a
 * library lock would live in one process's memory and order nothing across
 * processes, so the build refuses a target where they are not.
 */
#ifndef SHMBUS_ATOMICS_H
#define SHMBUS_ATOMICS_H

#include <stdatomic.h>
#include <stdint.h>

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");
_Static_assert(ATOMIC_SHORT_LOCK_FREE == 2, "16-bit atomics must be lock-free");

#define shm__load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define shm__load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define shm__load_seq_cst(p) atomic_load_explicit((p), memory_order_seq_cst)
#define shm__store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define shm__store_release(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define shm__store_seq_cst(p, v) atomic_store_explicit((p), (v), memory_order_seq_cst)
#define shm__fetch_add_relaxed(p, v) atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define shm__fetch_add_acq_rel(p, v) atomic_fetch_add_explicit((p), (v), memory_order_acq_rel)
#define shm__fetch_sub_seq_cst(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_seq_cst)
#define shm__fetch_add_seq_cst(p, v) atomic_fetch_add_explicit((p), (v), memory_order_seq_cst)
#define shm__fetch_sub_relaxed(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_relaxed)
#define shm__fetch_or_relaxed(p, v) atomic_fetch_or_explicit((p), (v), memory_order_relaxed)
#define shm__fetch_and_relaxed(p, v) atomic_fetch_and_explicit((p), (v), memory_order_relaxed)
/* Strong compare-exchange: acq_rel on success, acquire on failure (the
 * failed caller re-reads state that it then acts on). */
#define shm__cas(p, expected, desired)                                                      \
    atomic_compare_exchange_strong_explicit((p), (expected), (desired), memory_order_acq_rel, \
                                            memory_order_acquire)
#define shm__fence_acquire() atomic_thread_fence(memory_order_acquire)
#define shm__fence_release() atomic_thread_fence(memory_order_release)
#define shm__fence_seq_cst() atomic_thread_fence(memory_order_seq_cst)

/* Raises a monotonic 64-bit value to at least v (CAS loop; returns the new value). */
static inline uint64_t shm__max_u64(_Atomic uint64_t *p, uint64_t v)
{
    uint64_t cur = shm__load_relaxed(p);
    while (cur < v && !shm__cas(p, &cur, v)) {
    }
    return cur < v ? v : cur;
}

static inline uint32_t shm__max_u32(_Atomic uint32_t *p, uint32_t v)
{
    uint32_t cur = shm__load_relaxed(p);
    while (cur < v && !shm__cas(p, &cur, v)) {
    }
    return cur < v ? v : cur;
}

/* A polite spin-wait hint. */
static inline void shm__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif
