/*
 * test_segment.c — the segment's life and its error paths: create, attach,
 * close, unlink; names; other layout versions, truncated and foreign
 * objects; geometry; permissions; continuing after every member died;
 * reset only on request; read-only attach; and process liveness (reused
 * pids, zombies) as the member registry sees it.
 *
 * Objects are tampered with through /dev/shm/shmbus.<name> with plain
 * open/mmap/ftruncate, as a foreign program would. Children come from
 * shmtest_fork() and are killed and reaped at exit whatever happens; every
 * wait is bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first */
#include <cmocka.h>

#include <shmbus/shm.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h" /* tests reach into the registry to fake a reused pid */
#include "shmtest.h"

/* ------------------------------------------------------------- helpers */

static const char *obj_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "/dev/shm/shmbus.%s", name);
    return buf;
}

static uint8_t *read_object(const char *name, size_t *len)
{
    char path[128];
    int fd = open(obj_path(path, sizeof path, name), O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    assert_non_null(buf);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        assert_true(n > 0);
        got += (size_t)n;
    }
    close(fd);
    *len = got;
    return buf;
}

/* Writes a 32-bit value at offset of the object, as a foreign program. */
static void poke_u32(const char *name, size_t offset, uint32_t value)
{
    char path[128];
    int fd = open(obj_path(path, sizeof path, name), O_RDWR);
    assert_true(fd >= 0);
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(p != MAP_FAILED);
    memcpy((uint8_t *)p + offset, &value, sizeof value);
    munmap(p, 4096);
    close(fd);
}

static void truncate_object(const char *name, off_t size)
{
    char path[128];
    int fd = open(obj_path(path, sizeof path, name), O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, size), 0);
    close(fd);
}

static int object_exists(const char *name)
{
    char path[128];
    struct stat st;
    return stat(obj_path(path, sizeof path, name), &st) == 0;
}

static const shm_segment_options small = {
    .slot_size = 128,
    .slot_count = 256,
    .policy = SHM_POLICY_BACKPRESSURE,
    .max_members = 16,
    .catalog_capacity = 8,
    .counter_capacity = 16,
};

static shm_segment *create_small(const char *name)
{
    shm_segment *seg = NULL;
    int rc = shm_segment_open(name, &small, SHM_OPEN_CREATE, &seg);
    if (rc)
        fail_msg("create %s: %s (%s)", name, shm_strerror(rc), shm_last_error());
    return seg;
}

static void put_text(shm_producer *p, int i, uint64_t *seq)
{
    char rec[32];
    int n = snprintf(rec, sizeof rec, "rec-%d", i);
    assert_int_equal(shm_put(p, rec, (uint32_t)n, seq), 0);
}

static void assert_error_mentions(const char *what)
{
    const char *e = shm_last_error();
    if (!strstr(e, what))
        fail_msg("last error '%s' does not mention '%s'", e, what);
}

/* ------------------------------------------------------ life and names */

static void test_create_attach_close_unlink(void **state)
{
    (void)state;
    char name[64], path[128];
    shmtest_segment_name(name, sizeof name, "life");
    shm_segment_options o = {.slot_size = 256,
                             .slot_count = 128,
                             .policy = SHM_POLICY_BACKPRESSURE,
                             .max_members = 8,
                             .catalog_capacity = 16,
                             .counter_capacity = 32};
    struct timespec t0, t1;
    clock_gettime(CLOCK_REALTIME, &t0);
    shm_segment *a = NULL, *b = NULL;
    assert_int_equal(shm_segment_open(name, &o, SHM_OPEN_CREATE, &a), 0);
    clock_gettime(CLOCK_REALTIME, &t1);
    assert_non_null(a);

    shm_segment_info ia, ib;
    assert_int_equal(shm_segment_info_get(a, &ia), 0);
    assert_string_equal(ia.name, name);
    assert_int_equal(ia.layout_version, 1);
    assert_int_equal(ia.slot_size, 256);
    assert_int_equal(ia.slot_payload, 256 - SHM_SLOT_HEADER);
    assert_int_equal(ia.slot_count, 128);
    assert_int_equal(ia.policy, SHM_POLICY_BACKPRESSURE);
    assert_int_equal(ia.max_members, 8);
    assert_int_equal(ia.catalog_capacity, 16);
    assert_int_equal(ia.counter_capacity, 32);
    assert_int_equal(ia.util_warn_pct, 80);
    assert_int_equal(ia.creator_pid, getpid());
    assert_int_equal(ia.readonly, 0);
    int64_t ns0 = (int64_t)t0.tv_sec * 1000000000 + t0.tv_nsec;
    int64_t ns1 = (int64_t)t1.tv_sec * 1000000000 + t1.tv_nsec;
    assert_true(ia.created_ns >= ns0 && ia.created_ns <= ns1);
    assert_true(ia.initial_seq >= (uint64_t)ia.created_ns);
    struct stat st;
    assert_int_equal(stat(obj_path(path, sizeof path, name), &st), 0);
    assert_int_equal((uint64_t)st.st_size, ia.total_bytes);

    /* A second attach sees the same segment: same identity, same records. */
    assert_int_equal(shm_segment_open(name, NULL, SHM_OPEN_ATTACH, &b), 0);
    assert_int_equal(shm_segment_info_get(b, &ib), 0);
    assert_int_equal(ib.created_ns, ia.created_ns);
    assert_int_equal(ib.initial_seq, ia.initial_seq);
    assert_int_equal(ib.slot_size, 256);
    shm_consumer *c;
    shm_producer *p;
    uint64_t seq;
    assert_int_equal(shm_consumer_open(b, "g", "c", &c), 0);
    assert_int_equal(shm_producer_open(a, "p", &p), 0);
    put_text(p, 7, &seq);
    assert_int_equal(seq, ia.initial_seq);
    shm_batch batch;
    shm_record r;
    assert_int_equal(shm_consume(c, 8, 0, &batch), 1);
    assert_int_equal(shm_batch_next(c, &batch, &r), 1);
    assert_int_equal(r.len, 5);
    assert_memory_equal(r.data, "rec-7", 5);
    assert_int_equal(shm_ack(c, &batch), 0);
    shm_producer_close(&p);
    shm_consumer_close(&c);

    shm_segment_close(&b);
    assert_null(b);
    shm_segment_close(&a);
    assert_null(a);
    shm_segment_close(&a); /* closing a cleared handle is harmless */
    shm_segment_close(NULL);

    assert_int_equal(shm_segment_unlink(name), 0);
    assert_false(object_exists(name));
    assert_int_equal(shm_segment_open(name, NULL, SHM_OPEN_ATTACH, &a), SHM_ENOENT);
    assert_null(a);
    assert_int_equal(shm_segment_unlink(name), SHM_ENOENT);

    assert_int_equal(shm_segment_open(name, NULL, 0, NULL), SHM_EINVAL);
    assert_int_equal(shm_segment_info_get(NULL, &ia), SHM_EINVAL);
    assert_int_equal(shm_segment_open(name, NULL, SHM_OPEN_RESET, &a), SHM_EINVAL);
    assert_int_equal(shm_segment_open(name, NULL, SHM_OPEN_READONLY | SHM_OPEN_CREATE, &a),
                     SHM_EINVAL);
}

static void test_attach_missing(void **state)
{
    (void)state;
    char name[64];
    shmtest_segment_name(name, sizeof name, "missing");
    shm_segment *seg = (shm_segment *)&seg; /* must be cleared on failure */
    assert_int_equal(shm_segment_open(name, NULL, SHM_OPEN_ATTACH, &seg), SHM_ENOENT);
    assert_null(seg);
    assert_error_mentions(name);
    assert_int_equal(shm_segment_open(name, NULL, SHM_OPEN_READONLY, &seg), SHM_ENOENT);
    assert_false(object_exists(name)); /* attaching never creates */
    assert_string_equal(shm_strerror(SHM_ENOENT), "segment does not exist");
}

static void test_bad_names(void **state)
{
    (void)state;
    char too_long[SHM_NAME_MAX + 2];
    memset(too_long, 'x', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';
    const char *bad[] = {"a/b", "/abc", "abc/", "", too_long, "two words", "dots/../x"};
    shm_segment *seg = NULL;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(shm_segment_open(bad[i], &small, SHM_OPEN_CREATE, &seg), SHM_ENAME);
        assert_null(seg);
        assert_int_equal(shm_segment_open(bad[i], NULL, SHM_OPEN_ATTACH, &seg), SHM_ENAME);
        assert_int_equal(shm_segment_open(bad[i], NULL, SHM_OPEN_READONLY, &seg), SHM_ENAME);
        assert_int_equal(shm_segment_unlink(bad[i]), SHM_ENAME);
    }
    assert_int_equal(shm_segment_open(NULL, NULL, SHM_OPEN_CREATE, &seg), SHM_ENAME);
    assert_int_equal(shm_segment_unlink(NULL), SHM_ENAME);
    assert_error_mentions("no '/'");

    /* Exactly SHM_NAME_MAX characters is a good name. */
    char name[64];
    for (int attempt = 0; attempt < 4; attempt++) {
        shmtest_segment_name(name, sizeof name, "n");
        size_t len = strlen(name);
        if (len > SHM_NAME_MAX)
            fail_msg("generated name %s is too long", name);
        char pad[SHM_NAME_MAX + 1];
        memset(pad, 'n', SHM_NAME_MAX - len + 1);
        pad[SHM_NAME_MAX - len + 1] = '\0';
        shmtest_segment_name(name, sizeof name, pad);
        if (strlen(name) == SHM_NAME_MAX)
            break;
    }
    assert_int_equal(strlen(name), SHM_NAME_MAX);
    assert_int_equal(shm_segment_open(name, &small, SHM_OPEN_CREATE, &seg), 0);
    shm_segment_info info;
    assert_int_equal(shm_segment_info_get(seg, &info), 0);
    assert_string_equal(info.name, name);
    shm_segment_close(&seg);
}

/* -------------------------------------------- refused, never misread */

static void test_other_layout_version(void **state)
{
    (void)state;
    char name[64];
    shmtest_segment_name(name, sizeof name, "version");
    shm_segment *seg = create_small(name);
    shm_segment_close(&seg);

    poke_u32(name, offsetof(struct shm__header, layout_version), SHM__LAYOUT_VERSION + 1);
    size_t len_before, len_after;
    uint8_t *before = read_object(name, &len_before);
    assert_int_equal(shm_segment_open(name, NULL, SHM_OPEN_ATTACH, &seg), SHM_EVERSION);
    assert_null(seg);
    assert_error_mentions("layout version 2");
    assert_int_equal(shm_segment_open(name, NULL, SHM_OPEN_READONLY, &seg), SHM_EVERSION);
    /* A plain create attaches to what is there: refused, not overwritten. */
    assert_int_equal(shm_segment_open(name, &small, SHM_OPEN_CREATE, &seg), SHM_EVERSION);
    uint8_t *after = read_object(name, &len_after);
    assert_int_equal(len_before, len_after);
    assert_memory_equal(before, after, len_before);
    free(before);
    free(after);

    /* Only an explicit reset replaces it. */
    assert_int_equal(shm_segment_open(name, &small, SHM_OPEN_CREATE | SHM_OPEN_RESET, &seg), 0);
    shm_segment_info info;
    assert_int_equal(shm_segment_info_get(seg, &info), 0);
    assert_int_equal(info.layout_version, SHM__LAYOUT_VERSION);
    shm_segment_close(&seg);
}

static void test_truncated(void **state)
{
    (void)state;
    char name[64];
    shmtest_segment_name(name, sizeof name, "trunc");
    shm_segment *seg = create_small(name);
    shm_segment_info info;
    assert_int_equal(shm_segment_info_get(seg, &info), 0);
    shm_segment_close(&seg);

    truncate_object(name, (off_t)info.total_bytes - 4096);
    assert_int_equal(shm_segment_open(name, NULL, SHM_OPEN_ATTACH, &seg), SHM_ETRUNCATED);
    assert_null(seg);
    assert_error_mentions("header says");
    assert_int_equal(shm_segment_open(name, NULL, SHM_OPEN_READONLY, &seg), SHM_ETRUNCATED);
    assert_int_equal(shm_segment_open(name, &small, SHM_OPEN_CREATE, &seg), SHM_ETRUNCATED);

    /* Shorter than a header (an attach gives a creator 1 s to size it). */
    truncate_object(name, 100);
    assert_int_equal(shm_segment_open(name, NULL, SHM_OPEN_READONLY, &seg), SHM_ETRUNCATED);
    assert_error_mentions("smaller than a segment header");

    /* Longer than the header says is no shmbus segment either. */
    truncate_object(name, 0);
    shm_segment_unlink(name);
    seg = create_small(name);
    shm_segment_close(&seg);
    truncate_object(name, (off_t)info.total_bytes + 4096);
    assert_int_equal(shm_segment_open(name, NULL, SHM_OPEN_ATTACH, &seg), SHM_ECORRUPT);
}

static void test_foreign_object(void **state)
{
    (void)state;
    char name[64], path[128];
    shmtest_segment_name(name, sizeof name, "foreign");
    uint8_t junk[65536];
    int rnd = open("/dev/urandom", O_RDONLY);
    assert_true(rnd >= 0);
    assert_int_equal(read(rnd, junk, sizeof junk), (ssize_t)sizeof junk);
    close(rnd);
    junk[0] = 'X'; /* neither the magic nor an object still being created */
    int fd = open(obj_path(path, sizeof path, name), O_RDWR | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    close(fd);

    shm_segment *seg = NULL;
    assert_int_equal(shm_segment_open(name, NULL, SHM_OPEN_ATTACH, &seg), SHM_EFOREIGN);
    assert_null(seg);
    assert_error_mentions("not a shmbus segment");
    assert_int_equal(shm_segment_open(name, NULL, SHM_OPEN_READONLY, &seg), SHM_EFOREIGN);
    assert_int_equal(shm_segment_open(name, &small, SHM_OPEN_CREATE, &seg), SHM_EFOREIGN);
    size_t len;
    uint8_t *now = read_object(name, &len);
    assert_int_equal(len, sizeof junk);
    assert_memory_equal(now, junk, sizeof junk); /* never written */
    free(now);
}

static void test_geometry_mismatch(void **state)
{
    (void)state;
    char name[64];
    shmtest_segment_name(name, sizeof name, "geom");
    shm_segment *seg = create_small(name), *other = NULL;
    shm_segment_info info, info2;
    assert_int_equal(shm_segment_info_get(seg, &info), 0);

    shm_segment_options o = small;
    o.slot_size = 256;
    assert_int_equal(shm_segment_open(name, &o, SHM_OPEN_CREATE, &other), SHM_EEXIST);
    assert_null(other);
    assert_error_mentions("slot size 128");
    o = small;
    o.slot_count = 512;
    assert_int_equal(shm_segment_open(name, &o, SHM_OPEN_CREATE, &other), SHM_EEXIST);
    o = small;
    o.policy = SHM_POLICY_DROP_OLDEST;
    assert_int_equal(shm_segment_open(name, &o, SHM_OPEN_CREATE, &other), SHM_EEXIST);
    o = small;
    o.max_members = 32;
    assert_int_equal(shm_segment_open(name, &o, SHM_OPEN_CREATE, &other), SHM_EEXIST);

    /* The same geometry attaches to the same segment. */
    assert_int_equal(shm_segment_open(name, &small, SHM_OPEN_CREATE, &other), 0);
    assert_int_equal(shm_segment_info_get(other, &info2), 0);
    assert_int_equal(info2.created_ns, info.created_ns);
    assert_int_equal(info2.initial_seq, info.initial_seq);
    shm_segment_close(&other);
    /* A plain attach compares nothing. */
    o = small;
    o.slot_size = 4096;
    assert_int_equal(shm_segment_open(name, &o, SHM_OPEN_ATTACH, &other), 0);
    shm_segment_close(&other);
    shm_segment_close(&seg);
}

static void test_invalid_geometry(void **state)
{
    (void)state;
    char name[64];
    shmtest_segment_name(name, sizeof name, "badgeom");
    static const struct {
        uint32_t slot_size, slot_count, max_members;
    } bad[] = {
        {63, 256, 0},   {8192, 256, 0}, {100, 256, 0}, {32, 256, 0},    {4160, 256, 0},
        {128, 1000, 0}, {128, 1, 0},    {128, 3, 0},   {128, 256, 257},
    };
    shm_segment *seg = NULL;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        shm_segment_options o = {.slot_size = bad[i].slot_size,
                                 .slot_count = bad[i].slot_count,
                                 .max_members = bad[i].max_members};
        int rc = shm_segment_open(name, &o, SHM_OPEN_CREATE, &seg);
        if (rc != SHM_EGEOMETRY)
            fail_msg("slot size %u, count %u, members %u: got %d (%s)", bad[i].slot_size,
                     bad[i].slot_count, bad[i].max_members, rc, shm_strerror(rc));
        assert_null(seg);
        assert_false(object_exists(name)); /* nothing half-made is left */
    }
    shm_segment_options o = {.slot_size = 100};
    assert_int_equal(shm_segment_open(name, &o, SHM_OPEN_CREATE, &seg), SHM_EGEOMETRY);
    assert_error_mentions("slot size 100");
    o = (shm_segment_options){.slot_count = 1000};
    assert_int_equal(shm_segment_open(name, &o, SHM_OPEN_CREATE, &seg), SHM_EGEOMETRY);
    assert_error_mentions("slot count 1000");
    o = (shm_segment_options){.policy = 7};
    assert_int_equal(shm_segment_open(name, &o, SHM_OPEN_CREATE, &seg), SHM_EINVAL);
    /* The bounds themselves are good. */
    o = (shm_segment_options){.slot_size = 64, .slot_count = 2};
    assert_int_equal(shm_segment_open(name, &o, SHM_OPEN_CREATE, &seg), 0);
    shm_segment_close(&seg);
    shm_segment_unlink(name);
    o = (shm_segment_options){.slot_size = 4096, .slot_count = 4};
    assert_int_equal(shm_segment_open(name, &o, SHM_OPEN_CREATE, &seg), 0);
    shm_segment_close(&seg);
}

static void test_permissions(void **state)
{
    (void)state;
    char name[64], path[128];
    mode_t old = umask(077); /* a umask must not narrow the group's access */
    shmtest_segment_name(name, sizeof name, "perm");
    shm_segment *seg = create_small(name);
    struct stat st;
    assert_int_equal(stat(obj_path(path, sizeof path, name), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0660);
    shm_segment_close(&seg);

    shmtest_segment_name(name, sizeof name, "perm");
    shm_segment_options o = small;
    o.mode = 0600;
    assert_int_equal(shm_segment_open(name, &o, SHM_OPEN_CREATE, &seg), 0);
    assert_int_equal(stat(obj_path(path, sizeof path, name), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    shm_segment_close(&seg);
    umask(old);
}

/* ------------------------------------- continuing after everyone died */

struct death_report {
    uint64_t first_seq; /* sequence of record 0 */
    uint64_t held_seq;  /* first sequence of the batch left unacknowledged */
    uint32_t held_count;
    int ok;
};

#define DEATH_RECORDS 100

/* Child: joins as consumer and producer, puts records, acknowledges one
 * batch, takes another and exits without closing anything (shmtest_fork
 * ends it with _exit: no atexit handlers, no cleanup). */
static int child_dies_holding(void *arg)
{
    struct death_report *rep = arg;
    const char *name = (const char *)(rep + 1);
    shm_segment *seg;
    shm_consumer *c;
    shm_producer *p;
    if (shm_segment_open(name, &small, SHM_OPEN_CREATE, &seg) ||
        shm_consumer_open(seg, "g", "dying", &c) || shm_producer_open(seg, "p", &p))
        return 1;
    for (int i = 0; i < DEATH_RECORDS; i++) {
        char rec[32];
        uint64_t seq;
        int n = snprintf(rec, sizeof rec, "rec-%d", i);
        if (shm_put(p, rec, (uint32_t)n, &seq))
            return 2;
        if (i == 0)
            rep->first_seq = seq;
    }
    shm_batch b;
    shm_record r;
    if (shm_consume(c, 10, 0, &b) != 10)
        return 3;
    while (shm_batch_next(c, &b, &r) == 1)
        ;
    if (shm_ack(c, &b))
        return 4;
    if (shm_consume(c, 10, 0, &b) != 10)
        return 5;
    while (shm_batch_next(c, &b, &r) == 1)
        ;
    rep->held_seq = b.first_seq;
    rep->held_count = b.count;
    rep->ok = 1;
    return 0;
}

static void test_reattach_after_all_died(void **state)
{
    (void)state;
    struct death_report *rep = shmtest_shared_alloc(4096);
    char *name = (char *)(rep + 1);
    shmtest_segment_name(name, 64, "dead");

    pid_t pid = shmtest_fork(child_dies_holding, rep);
    assert_true(pid > 0);
    int status = shmtest_wait_pid(pid, 20000);
    assert_true(status != -1 && WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(rep->ok, 1);
    assert_int_equal(rep->held_seq, rep->first_seq + 10);
    assert_int_equal(rep->held_count, 10);

    /* Every member is dead; the segment is attached again, not replaced. */
    shm_segment *seg = NULL;
    assert_int_equal(shm_segment_open(name, &small, SHM_OPEN_CREATE, &seg), 0);
    shm_segment_info info;
    assert_int_equal(shm_segment_info_get(seg, &info), 0);
    assert_int_equal(info.initial_seq, rep->first_seq);
    assert_int_equal(info.creator_pid, pid);
    shm_ring_stats rs;
    assert_int_equal(shm_ring_stats_get(seg, &rs), 0);
    assert_int_equal(rs.records_put, DEATH_RECORDS);
    assert_int_equal(rs.head_seq, rep->first_seq + DEATH_RECORDS);
    assert_int_equal(rs.members_reclaimed, 2); /* the attach cleaned up */
    shm_group_stats gs[SHM_MAX_GROUPS];
    assert_int_equal(shm_group_stats_get(seg, gs, SHM_MAX_GROUPS), 1);
    assert_int_equal(gs[0].orphans, 1);
    assert_int_equal(gs[0].tail_seq, rep->first_seq + 10);

    shm_consumer *c;
    assert_int_equal(shm_consumer_open(seg, "g", "heir", &c), 0);
    /* The dead producer's slot is free; the dead consumer's stays, marked
     * dead, until its orphaned batch has been taken over. */
    shm_member_stats ms[16];
    assert_int_equal(shm_member_stats_get(seg, ms, 16), 2);
    for (int i = 0; i < 2; i++) {
        if (strcmp(ms[i].name, "heir") == 0) {
            assert_int_equal(ms[i].state, SHM_MEMBER_ACTIVE);
            assert_int_equal(ms[i].alive, 1);
        } else {
            assert_string_equal(ms[i].name, "dying");
            assert_int_equal(ms[i].state, SHM_MEMBER_DEAD);
            assert_int_equal(ms[i].alive, 0);
            assert_int_equal(ms[i].pid, pid);
        }
    }

    uint8_t seen[DEATH_RECORDS] = {0};
    int batches = 0, redelivered = 0;
    shm_batch b;
    int n;
    while ((n = shm_consume(c, 32, 0, &b)) > 0) {
        if (batches++ == 0) {
            /* The dead member's batch comes first, whole, marked. */
            assert_int_equal(b.first_seq, rep->held_seq);
            assert_int_equal(b.count, 10);
            assert_int_equal(b.redelivered, 1);
        }
        redelivered += b.redelivered ? (int)b.count : 0;
        shm_record r;
        while (shm_batch_next(c, &b, &r) == 1) {
            uint64_t i = r.seq - rep->first_seq;
            assert_true(i < DEATH_RECORDS);
            char want[32];
            int len = snprintf(want, sizeof want, "rec-%d", (int)i);
            assert_int_equal(r.len, (uint32_t)len);
            assert_memory_equal(r.data, want, (size_t)len);
            seen[i]++;
        }
        assert_int_equal(shm_ack(c, &b), 0);
    }
    assert_int_equal(n, 0);
    assert_int_equal(redelivered, 10);
    for (int i = 0; i < DEATH_RECORDS; i++) {
        if (seen[i] != (i < 10 ? 0 : 1))
            fail_msg("record %d delivered %d times", i, seen[i]);
    }
    assert_int_equal(shm_group_stats_get(seg, gs, SHM_MAX_GROUPS), 1);
    assert_int_equal(gs[0].redelivered, 10);
    assert_int_equal(gs[0].orphans, 0);
    assert_int_equal(gs[0].lag, 0);
    /* Nothing is held any more: the dead member's slot is freed. */
    assert_true(shm_reclaim(seg, NULL) >= 0);
    assert_int_equal(shm_member_stats_get(seg, ms, 16), 1);
    assert_string_equal(ms[0].name, "heir");

    /* Sequence numbers continue where the dead producer stopped. */
    shm_producer *p;
    uint64_t seq;
    assert_int_equal(shm_producer_open(seg, "p2", &p), 0);
    put_text(p, 100, &seq);
    assert_int_equal(seq, rep->first_seq + DEATH_RECORDS);
    shm_producer_close(&p);
    shm_consumer_close(&c);
    shm_segment_close(&seg);
}

/* ---------------------------------------------------------- reset */

struct live_member {
    shmtest_barrier *joined;
    char name[64];
};

/* Child: joins the group and stays until killed. */
static int child_stays(void *arg)
{
    struct live_member *lm = arg;
    shm_segment *seg;
    shm_consumer *c;
    int rc = shm_segment_open(lm->name, NULL, SHM_OPEN_ATTACH, &seg);
    if (rc == 0)
        rc = shm_consumer_open(seg, "g", "stayer", &c);
    shmtest_barrier_wait(lm->joined);
    if (rc)
        return 1;
    for (;;)
        pause();
}

static void test_reset_only_on_request(void **state)
{
    (void)state;
    struct live_member *lm = shmtest_shared_alloc(sizeof *lm);
    lm->joined = shmtest_barrier_new(2);
    shmtest_segment_name(lm->name, sizeof lm->name, "reset");
    shm_segment *old = create_small(lm->name), *seg = NULL;
    shm_producer *p;
    uint64_t last = 0;
    assert_int_equal(shm_producer_open(old, "p", &p), 0);
    for (int i = 0; i < 5; i++)
        put_text(p, i, &last);
    shm_producer_close(&p);
    shm_segment_info before;
    assert_int_equal(shm_segment_info_get(old, &before), 0);

    pid_t pid = shmtest_fork(child_stays, lm);
    assert_true(pid > 0);
    shmtest_barrier_wait(lm->joined);

    assert_int_equal(shm_segment_open(lm->name, &small, SHM_OPEN_CREATE | SHM_OPEN_RESET, &seg),
                     SHM_EBUSY);
    assert_null(seg);
    assert_error_mentions("1 live member");
    /* Refused means untouched: the old segment is still the one by that name. */
    assert_int_equal(shm_segment_open(lm->name, &small, SHM_OPEN_CREATE, &seg), 0);
    shm_segment_info info;
    assert_int_equal(shm_segment_info_get(seg, &info), 0);
    assert_int_equal(info.initial_seq, before.initial_seq);
    shm_member_stats ms[16];
    assert_int_equal(shm_member_stats_get(seg, ms, 16), 1);
    assert_int_equal(ms[0].pid, pid);
    shm_segment_close(&seg);

    /* Once no member lives, the reset is accepted. */
    shmtest_kill(pid);
    assert_int_equal(shm_segment_open(lm->name, &small, SHM_OPEN_CREATE | SHM_OPEN_RESET, &seg), 0);
    assert_int_equal(shm_segment_info_get(seg, &info), 0);
    assert_true(info.initial_seq > last);
    assert_true(info.created_ns >= before.created_ns);
    shm_ring_stats rs;
    assert_int_equal(shm_ring_stats_get(seg, &rs), 0);
    assert_int_equal(rs.records_put, 0);
    assert_int_equal(rs.groups, 0);
    assert_int_equal(shm_member_stats_get(seg, ms, 16), 0);
    uint64_t seq;
    assert_int_equal(shm_producer_open(seg, "p", &p), 0);
    put_text(p, 0, &seq);
    assert_true(seq > last);
    shm_producer_close(&p);

    /* Our own live member blocks a reset too, unless it is forced. */
    shm_consumer *c;
    shm_segment *again = NULL;
    assert_int_equal(shm_consumer_open(seg, "g", "me", &c), 0);
    assert_int_equal(shm_segment_open(lm->name, &small, SHM_OPEN_CREATE | SHM_OPEN_RESET, &again),
                     SHM_EBUSY);
    assert_int_equal(shm_segment_open(lm->name, &small,
                                      SHM_OPEN_CREATE | SHM_OPEN_RESET | SHM_OPEN_FORCE, &again),
                     0);
    shm_segment_info forced;
    assert_int_equal(shm_segment_info_get(again, &forced), 0);
    assert_true(forced.initial_seq > seq);
    shm_consumer_close(&c); /* it belongs to the replaced segment's mapping */
    shm_segment_close(&again);
    shm_segment_close(&seg);
    shm_segment_close(&old);
}

/* ------------------------------------------------------- read-only */

static int count_counter(void *ctx, const char *name, int kind, uint64_t value)
{
    if (strcmp(name, "ro_total") == 0 && kind == SHM_COUNTER)
        *(uint64_t *)ctx = value;
    return 0;
}

static void test_readonly_attach(void **state)
{
    (void)state;
    char name[64];
    shmtest_segment_name(name, sizeof name, "ro");
    shm_segment *seg = create_small(name), *ro = NULL;
    shm_producer *p;
    shm_consumer *c;
    shm_counter *k;
    assert_int_equal(shm_consumer_open(seg, "g", "c", &c), 0);
    assert_int_equal(shm_producer_open(seg, "p", &p), 0);
    assert_int_equal(shm_counter_open(seg, "ro_total", SHM_COUNTER, &k), 0);
    shm_counter_add(k, 5);
    uint8_t meta[SHM_CATALOG_ENTRY_MAX];
    shm_tag_meta m = {.id = 0, .name = "t0", .device = "d", .unit = "u", .scale = 1.0};
    int mlen = shm_tag_meta_encode(&m, meta, sizeof meta);
    assert_true(mlen > 0);
    assert_int_equal(shm_catalog_put(seg, 0, meta, (uint32_t)mlen), 0);
    uint64_t seq;
    for (int i = 0; i < 20; i++)
        put_text(p, i, &seq);
    shm_batch b, held;
    shm_record r;
    assert_int_equal(shm_consume(c, 10, 0, &b), 10);
    while (shm_batch_next(c, &b, &r) == 1)
        ;
    assert_int_equal(shm_ack(c, &b), 0);
    assert_int_equal(shm_consume(c, 5, 0, &held), 5); /* held, not acknowledged */

    size_t len_before, len_after;
    uint8_t *before = read_object(name, &len_before);

    assert_int_equal(shm_segment_open(name, NULL, SHM_OPEN_READONLY, &ro), 0);
    shm_segment_info info;
    assert_int_equal(shm_segment_info_get(ro, &info), 0);
    assert_int_equal(info.readonly, 1);

    /* Everything that would write is refused. */
    shm_producer *rp = NULL;
    shm_consumer *rc = NULL;
    shm_counter *rk = NULL;
    assert_int_equal(shm_producer_open(ro, "p", &rp), SHM_EREADONLY);
    assert_null(rp);
    assert_int_equal(shm_consumer_open(ro, "g", "c", &rc), SHM_EREADONLY);
    assert_int_equal(shm_consumer_open(ro, "newgroup", "c", &rc), SHM_EREADONLY);
    assert_null(rc);
    assert_int_equal(shm_counter_open(ro, "ro_total", SHM_COUNTER, &rk), SHM_EREADONLY);
    assert_int_equal(shm_counter_open(ro, "ro_other", SHM_GAUGE, &rk), SHM_EREADONLY);
    assert_int_equal(shm_catalog_put(ro, 1, meta, (uint32_t)mlen), SHM_EREADONLY);
    assert_int_equal(shm_reclaim(ro, NULL), SHM_EREADONLY);
    assert_int_equal(shm_set_paused(ro, 1), SHM_EREADONLY);
    assert_int_equal(shm_set_pressure_level(ro, 2), SHM_EREADONLY);
    assert_error_mentions("read-only");

    /* Everything that observes works. */
    shm_ring_stats rs;
    assert_int_equal(shm_ring_stats_get(ro, &rs), 0);
    assert_int_equal(rs.records_put, 20);
    assert_int_equal(rs.head_seq, seq + 1);
    shm_group_stats gs[SHM_MAX_GROUPS];
    assert_int_equal(shm_group_stats_get(ro, gs, SHM_MAX_GROUPS), 1);
    assert_string_equal(gs[0].name, "g");
    assert_int_equal(gs[0].consumed, 10);
    assert_int_equal(gs[0].members, 1);
    shm_member_stats ms[16];
    assert_int_equal(shm_member_stats_get(ro, ms, 16), 2);
    int holding = ms[0].role == SHM_ROLE_CONSUMER ? 0 : 1;
    assert_int_equal(ms[holding].batches_held, 1);
    assert_int_equal(ms[0].alive && ms[1].alive, 1);
    shm_record recs[5];
    uint8_t buf[5 * 112];
    assert_int_equal(shm_ring_peek(ro, 5, recs, buf, sizeof buf), 5);
    for (int i = 0; i < 5; i++) {
        char want[32];
        int n = snprintf(want, sizeof want, "rec-%d", 15 + i);
        assert_int_equal(recs[i].seq, seq - 4 + (uint64_t)i);
        assert_int_equal(recs[i].len, (uint32_t)n);
        assert_memory_equal(recs[i].data, want, (size_t)n);
    }
    uint64_t value = 0;
    assert_int_equal(shm_counter_foreach(ro, count_counter, &value), 0);
    assert_int_equal(value, 5);
    uint8_t got[SHM_CATALOG_ENTRY_MAX];
    assert_int_equal(shm_catalog_get(ro, 0, got, sizeof got), mlen);
    assert_memory_equal(got, meta, (size_t)mlen);
    shm_segment_close(&ro);

    /* ... and not one byte of the segment changed. */
    uint8_t *after = read_object(name, &len_after);
    assert_int_equal(len_before, len_after);
    assert_memory_equal(before, after, len_before);
    free(before);
    free(after);

    assert_int_equal(shm_ack(c, &held), 0);
    shm_producer_close(&p);
    shm_consumer_close(&c);
    shm_segment_close(&seg);
}

/* ------------------------------------------------ process liveness */

struct held_batch {
    shmtest_barrier *ready;   /* child joined and holds a batch */
    shmtest_barrier *release; /* child may exit now */
    char name[64];
    int stay; /* 1: wait to be killed instead of exiting */
};

/* Child: joins group "g", takes a batch, then exits (or stays). */
static int child_holds_batch(void *arg)
{
    struct held_batch *hb = arg;
    shm_segment *seg;
    shm_consumer *c;
    shm_batch b;
    int rc = shm_segment_open(hb->name, NULL, SHM_OPEN_ATTACH, &seg);
    if (rc == 0)
        rc = shm_consumer_open(seg, "g", "holder", &c);
    if (rc == 0 && shm_consume(c, 4, 0, &b) != 4)
        rc = 1;
    shmtest_barrier_wait(hb->ready);
    shmtest_barrier_wait(hb->release);
    while (hb->stay)
        pause();
    return rc ? 1 : 0;
}

/* A segment with group "g" (made by a consumer of ours that stays) and 8
 * records in it. */
static shm_segment *segment_with_records(const char *name, shm_consumer **keeper)
{
    shm_segment *seg = create_small(name);
    shm_producer *p;
    uint64_t seq;
    assert_int_equal(shm_consumer_open(seg, "g", "keeper", keeper), 0);
    assert_int_equal(shm_producer_open(seg, "p", &p), 0);
    for (int i = 0; i < 8; i++)
        put_text(p, i, &seq);
    shm_producer_close(&p);
    return seg;
}

static int find_member(const shm_segment *seg, int32_t pid, shm_member_stats *out)
{
    shm_member_stats ms[16];
    int n = shm_member_stats_get(seg, ms, 16);
    for (int i = 0; i < n && i < 16; i++) {
        if (ms[i].pid == pid) {
            *out = ms[i];
            return 1;
        }
    }
    return 0;
}

static void test_reused_pid_is_not_the_member(void **state)
{
    (void)state;
    int32_t me = (int32_t)getpid();
    uint64_t start = shm_process_start_time(me);
    assert_true(start > 0);
    assert_int_equal(shm_process_alive(me, start), 1);
    assert_int_equal(shm_process_alive(me, start + 1), 0); /* same pid, another process */
    assert_int_equal(shm_process_alive(me, start - 1), 0);
    assert_int_equal(shm_process_alive(0, start), 0);
    assert_int_equal(shm_process_alive(-1, start), 0);
    assert_int_equal(shm_process_start_time(-1), 0);

    /* In the registry: a member whose pid now runs another process (a
     * different start time) is dead; what it held is re-delivered. */
    struct held_batch *hb = shmtest_shared_alloc(sizeof *hb);
    hb->ready = shmtest_barrier_new(2);
    hb->release = shmtest_barrier_new(2);
    hb->stay = 1;
    shmtest_segment_name(hb->name, sizeof hb->name, "reuse");
    shm_consumer *keeper;
    shm_segment *seg = segment_with_records(hb->name, &keeper);
    pid_t pid = shmtest_fork(child_holds_batch, hb);
    assert_true(pid > 0);
    shmtest_barrier_wait(hb->ready);
    shmtest_barrier_wait(hb->release);

    shm_member_stats m;
    assert_true(find_member(seg, pid, &m));
    assert_int_equal(m.alive, 1);
    assert_int_equal(m.batches_held, 1);
    /* Rewrite the registered start time: now the running process with
     * that pid is not the one that joined. */
    seg->members[m.index].start_time = m.start_time + 1;
    assert_true(find_member(seg, pid, &m));
    assert_int_equal(m.alive, 0);
    shm_reclaim_report rep;
    assert_int_equal(shm_reclaim(seg, &rep), 1);
    assert_int_equal(rep.members_dead, 1);
    assert_int_equal(rep.batches_orphaned, 1);
    assert_int_equal(kill(pid, 0), 0); /* the process itself was left alone */

    shm_batch b;
    assert_int_equal(shm_consume(keeper, 16, 0, &b), 4);
    assert_int_equal(b.redelivered, 1);
    assert_int_equal(shm_ack(keeper, &b), 0);
    shmtest_kill(pid);
    shm_consumer_close(&keeper);
    shm_segment_close(&seg);
}

static int is_zombie(void *arg)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", *(int *)arg);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] == 'Z';
}

static void test_zombie_counts_as_dead(void **state)
{
    (void)state;
    struct held_batch *hb = shmtest_shared_alloc(sizeof *hb);
    hb->ready = shmtest_barrier_new(2);
    hb->release = shmtest_barrier_new(2);
    hb->stay = 0;
    shmtest_segment_name(hb->name, sizeof hb->name, "zombie");
    shm_consumer *keeper;
    shm_segment *seg = segment_with_records(hb->name, &keeper);
    pid_t pid = shmtest_fork(child_holds_batch, hb);
    assert_true(pid > 0);
    shmtest_barrier_wait(hb->ready);
    uint64_t start = shm_process_start_time(pid);
    assert_true(start > 0);
    assert_int_equal(shm_process_alive(pid, start), 1);

    shmtest_barrier_wait(hb->release); /* the child exits; nobody reaps it yet */
    int zpid = pid;
    if (!shmtest_wait_until(is_zombie, &zpid, 10000))
        fail_msg("child %d did not become a zombie", zpid);
    assert_int_equal(kill(pid, 0), 0);                    /* the pid still exists ... */
    assert_int_equal(shm_process_start_time(pid), start); /* ... with its start time ... */
    assert_int_equal(shm_process_alive(pid, start), 0);   /* ... and counts as dead */

    shm_member_stats m;
    assert_true(find_member(seg, pid, &m));
    assert_int_equal(m.alive, 0);
    shm_reclaim_report rep;
    assert_int_equal(shm_reclaim(seg, &rep), 1);
    assert_int_equal(rep.members_dead, 1);
    assert_int_equal(rep.batches_orphaned, 1);
    shm_batch b;
    assert_int_equal(shm_consume(keeper, 16, 0, &b), 4);
    assert_int_equal(b.redelivered, 1);
    assert_int_equal(shm_ack(keeper, &b), 0);

    int status = shmtest_wait_pid(pid, 5000);
    assert_true(status != -1 && WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    shm_consumer_close(&keeper);
    shm_segment_close(&seg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_attach_close_unlink),
        cmocka_unit_test(test_attach_missing),
        cmocka_unit_test(test_bad_names),
        cmocka_unit_test(test_other_layout_version),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_foreign_object),
        cmocka_unit_test(test_geometry_mismatch),
        cmocka_unit_test(test_invalid_geometry),
        cmocka_unit_test(test_permissions),
        cmocka_unit_test(test_reattach_after_all_died),
        cmocka_unit_test(test_reset_only_on_request),
        cmocka_unit_test(test_readonly_attach),
        cmocka_unit_test(test_reused_pid_is_not_the_member),
        cmocka_unit_test(test_zombie_counts_as_dead),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
