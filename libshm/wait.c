/*
 * wait.c — sleeping consumers and the producers that wake them.
 *
 * An event count in the header: `sleepers` counts consumers about to sleep
 * or asleep; `wake_word` is the futex word. A consumer increments sleepers
 * (seq_cst), reads wake_word, re-checks its condition, and only then waits
 * for wake_word to change. A producer stores its stamps, issues a seq_cst
 * fence, and reads sleepers: it pays for a FUTEX_WAKE only when someone
 * sleeps. Either the producer sees the sleeper or the sleeper's re-check
 * sees the record — the two seq_cst operations cannot both miss (Dekker).
 * The futex is shared (no FUTEX_PRIVATE_FLAG): waiters are other processes.
 */
#include "internal.h"

#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long futex(_Atomic uint32_t *addr, int op, uint32_t val, const struct timespec *timeout)
{
    return syscall(SYS_futex, (uint32_t *)addr, op, val, timeout, NULL, 0);
}

void shm__wake_consumers(shm_segment *seg)
{
    if (seg->readonly)
        return;
    /* seq_cst: a sleeper that read the old value before our increment has
     * its FUTEX_WAIT fail with EAGAIN or is woken below. */
    shm__fetch_add_seq_cst(&seg->hdr->wake_word, 1u);
    futex(&seg->hdr->wake_word, FUTEX_WAKE, INT_MAX, NULL);
}

void shm__sleep_until(shm_segment *seg, int64_t timeout_ns, bool (*ready)(void *), void *arg)
{
    struct shm__header *h = seg->hdr;
    shm__fetch_add_seq_cst(&h->sleepers, 1u);
    uint32_t w = shm__load_seq_cst(&h->wake_word);
    if (!ready(arg) && timeout_ns > 0) {
        struct timespec ts = {(time_t)(timeout_ns / 1000000000), (long)(timeout_ns % 1000000000)};
        futex(&h->wake_word, FUTEX_WAIT, w, &ts);
    }
    shm__fetch_sub_seq_cst(&h->sleepers, 1u);
}
