/*
 * leak.c — sample window and least-squares slope (see leak.h).
 */
#include "leak.h"

#include <string.h>

void leak_reset(leak_window *w)
{
    memset(w, 0, sizeof *w);
}

void leak_add(leak_window *w, int64_t t_ms, double bytes)
{
    w->t_ms[w->head] = t_ms;
    w->bytes[w->head] = bytes;
    w->head = (w->head + 1) % LEAK_SAMPLES;
    if (w->count < LEAK_SAMPLES)
        w->count++;
}

int leak_slope(const leak_window *w, int64_t window_ms, double *bytes_per_s)
{
    if (w->count < LEAK_MIN_SAMPLES)
        return -1;
    uint32_t newest = (w->head + LEAK_SAMPLES - 1) % LEAK_SAMPLES;
    int64_t t_new = w->t_ms[newest], t_old = t_new;
    /* Centre time on the newest sample so the sums stay small and exact. */
    double n = 0, st = 0, sb = 0, stt = 0, stb = 0;
    for (uint32_t k = 0; k < w->count; k++) {
        uint32_t i = (newest + LEAK_SAMPLES - k) % LEAK_SAMPLES;
        if (t_new - w->t_ms[i] > window_ms)
            break;
        double t = (double)(w->t_ms[i] - t_new) / 1000.0, b = w->bytes[i];
        n += 1;
        st += t;
        sb += b;
        stt += t * t;
        stb += t * b;
        t_old = w->t_ms[i];
    }
    if (n < LEAK_MIN_SAMPLES || (t_new - t_old) * 2 < window_ms)
        return -1;
    double den = n * stt - st * st;
    if (den <= 0)
        return -1;
    *bytes_per_s = (n * stb - st * sb) / den;
    return 0;
}
