/*
 * bench_records.c — `shmbus-bench records [--quick] [--check]`: throughput of
 * the FlatBuffers record codec on one core.
 *
 * Records go to and from an array of 128-byte slots laid out like the ring's
 * (16-byte header, payload after it), 4096 slots (512 KiB) so the figures are
 * the codec's and not the memory's. Cases, each the median of many rounds of
 * 65536 records (51 with --quick, 301 without):
 *   encode                 shm_tag_value_encode into the slot
 *   verify_decode          shm_tag_value_decode from the slot (fast path)
 *   encode_verify_decode   both, as producer and consumer would
 *   verify_decode_generic  the generic verifier alone, as for a buffer built
 *                          by another FlatBuffers implementation
 * Baseline, measured in the same run: copying the plain C struct
 * (shm_tag_value, 48 bytes) into the slot, out of it, or both
 * ("baseline_memcpy_struct", records/s); "ratio" = records_per_s / baseline.
 * --check verifies every decoded record equals what was encoded (exit 1 if
 * not); no speed is ever asserted.
 */
#include "bench.h"
#include "record_internal.h"

#include <shmbus/shm.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    SLOT_SIZE = 128,
    SLOTS = 4096, /* power of two */
    MAX_ROUNDS = 301,
};

static uint8_t *slots;
static shm_tag_value *inputs;
static volatile uint64_t sink;

static uint8_t *payload(size_t i)
{
    return slots + (i & (SLOTS - 1)) * SLOT_SIZE + SHM_SLOT_HEADER;
}

static void make_inputs(void)
{
    for (size_t i = 0; i < SLOTS; i++) {
        inputs[i] = (shm_tag_value){
            .sequence = 1000000 + i,
            .timestamp_ns = 1763900000000000000 + (int64_t)i * 1000,
            .device_id = (uint32_t)(i % 7),
            .tag_id = (uint32_t)i,
            .value = (double)i * 0.25 - 100.0,
            .raw = (int64_t)i * 3,
            .quality = (uint8_t)(i % 7),
            .exception_code = (uint8_t)(i % 3),
            .flags = (uint16_t)i,
        };
    }
}

/* Makes the compiler treat the slots as read by someone else. */
static inline void clobber(void)
{
    __asm__ volatile("" : : "r"(slots) : "memory");
}

typedef uint64_t (*round_fn)(size_t n);

static uint64_t round_encode(size_t n)
{
    for (size_t i = 0; i < n; i++)
        shm_tag_value_encode(&inputs[i & (SLOTS - 1)], payload(i), SHM_TAG_VALUE_MAX);
    clobber();
    return 0;
}

static uint64_t round_decode(size_t n)
{
    uint64_t acc = 0;
    shm_tag_value v;
    for (size_t i = 0; i < n; i++) {
        if (shm_tag_value_decode(payload(i), SHM__TAG_VALUE_LEN, &v) == 0)
            acc += v.sequence + v.quality;
    }
    return acc;
}

static uint64_t round_encode_decode(size_t n)
{
    uint64_t acc = 0;
    shm_tag_value v;
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = payload(i);
        int len = shm_tag_value_encode(&inputs[i & (SLOTS - 1)], p, SHM_TAG_VALUE_MAX);
        if (shm_tag_value_decode(p, (size_t)len, &v) == 0)
            acc += v.sequence + v.quality;
    }
    return acc;
}

static uint64_t round_decode_generic(size_t n)
{
    uint64_t acc = 0;
    shm_tag_value v;
    for (size_t i = 0; i < n; i++) {
        if (shm__tag_value_decode_generic(payload(i), SHM__TAG_VALUE_LEN, &v) == 0)
            acc += v.sequence + v.quality;
    }
    return acc;
}

static uint64_t round_copy_in(size_t n)
{
    for (size_t i = 0; i < n; i++)
        memcpy(payload(i), &inputs[i & (SLOTS - 1)], sizeof(shm_tag_value));
    clobber();
    return 0;
}

static uint64_t round_copy_out(size_t n)
{
    uint64_t acc = 0;
    shm_tag_value v;
    for (size_t i = 0; i < n; i++) {
        memcpy(&v, payload(i), sizeof v);
        acc += v.sequence + v.quality;
    }
    return acc;
}

static uint64_t round_copy_in_out(size_t n)
{
    uint64_t acc = 0;
    shm_tag_value v;
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = payload(i);
        memcpy(p, &inputs[i & (SLOTS - 1)], sizeof v);
        clobber();
        memcpy(&v, p, sizeof v);
        acc += v.sequence + v.quality;
    }
    return acc;
}

/* Median records/s of `rounds` rounds of n records each (after one warm-up).
 * Rounds are short (well under a millisecond) and many, so that the median
 * is a round the scheduler did not interrupt on this shared machine. */
static double measure(round_fn fn, size_t n, int rounds)
{
    double rates[MAX_ROUNDS];
    sink += fn(n);
    for (int r = 0; r < rounds; r++) {
        int64_t t0 = bench_now_ns();
        sink += fn(n);
        int64_t t1 = bench_now_ns();
        rates[r] = (double)n * 1e9 / (double)(t1 - t0 > 0 ? t1 - t0 : 1);
    }
    return bench_median(rates, (size_t)rounds);
}

/* Before and after timing: every slot decodes to exactly its input. */
static int check_slots(void)
{
    round_encode(SLOTS);
    for (size_t i = 0; i < SLOTS; i++) {
        shm_tag_value v;
        const shm_tag_value *w = &inputs[i];
        if (shm_tag_value_decode(payload(i), SHM__TAG_VALUE_LEN, &v) != 0 ||
            v.sequence != w->sequence || v.timestamp_ns != w->timestamp_ns ||
            v.device_id != w->device_id || v.tag_id != w->tag_id || v.value != w->value ||
            v.raw != w->raw || v.quality != w->quality || v.exception_code != w->exception_code ||
            v.flags != w->flags) {
            fprintf(stderr, "bench records: slot %zu does not decode to its input: %s\n", i,
                    shm_last_error());
            return -1;
        }
    }
    return 0;
}

static void report(const char *name, double rate, double baseline, size_t n, int rounds)
{
    bench_json j;
    bench_json_begin(&j, "records", name);
    bench_json_num(&j, "records_per_s", rate);
    bench_json_num(&j, "ns_per_record", 1e9 / rate);
    bench_json_num(&j, "baseline_memcpy_struct", baseline);
    bench_json_num(&j, "ratio", rate / baseline);
    bench_json_int(&j, "record_bytes", SHM__TAG_VALUE_LEN);
    bench_json_int(&j, "records_per_round", (int64_t)n);
    bench_json_int(&j, "rounds", rounds);
    bench_json_end(&j);
}

int bench_records(int argc, char **argv)
{
    int quick = bench_has_flag(argc, argv, "--quick");
    int check = bench_has_flag(argc, argv, "--check");
    size_t n = (size_t)1 << 16;
    int rounds = quick ? 51 : MAX_ROUNDS;

    slots = aligned_alloc(64, (size_t)SLOTS * SLOT_SIZE);
    inputs = malloc(sizeof *inputs * SLOTS);
    if (slots == NULL || inputs == NULL) {
        fprintf(stderr, "bench records: out of memory\n");
        return 1;
    }
    memset(slots, 0, (size_t)SLOTS * SLOT_SIZE);
    make_inputs();
    int status = 0;
    if (check_slots() < 0)
        status = 1;

    double enc = measure(round_encode, n, rounds);
    double copy_in = measure(round_copy_in, n, rounds);
    report("encode", enc, copy_in, n, rounds);

    round_encode(SLOTS);
    double dec = measure(round_decode, n, rounds);
    double gen = measure(round_decode_generic, n, rounds);
    round_copy_in(SLOTS);
    double copy_out = measure(round_copy_out, n, rounds);
    report("verify_decode", dec, copy_out, n, rounds);

    double both = measure(round_encode_decode, n, rounds);
    double copy_both = measure(round_copy_in_out, n, rounds);
    report("encode_verify_decode", both, copy_both, n, rounds);
    report("verify_decode_generic", gen, copy_out, n, rounds);

    if (check && check_slots() < 0)
        status = 1;
    free(slots);
    free(inputs);
    return status;
}
