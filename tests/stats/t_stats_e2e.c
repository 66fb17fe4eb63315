/*
 * t_stats_e2e.c — shmbus-stats end to end: the test creates a segment, names
 * tags in the catalog, starts the real service, puts encoded TagValues into
 * the ring (plus an undecodable record, a NaN, a bad-quality value and an
 * out-of-range tag id) and checks the answers over nng — from this process
 * and from nngcat as an independent peer — against values computed here.
 * Then: bad requests get errors while good ones keep working; the sockets
 * are 0660; a summary arrives on the PUB socket; the snapshot survives a
 * SIGKILL and restart; a request sent while the service is down is answered
 * after the restart; SIGTERM writes a last snapshot; a corrupt or foreign
 * snapshot is moved aside; two shards split the tags.
 */
#include "statclient.h"
#include "statref.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h> /* after the three headers it needs */

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <shmbus/shm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmtest.h"

#define SEC 1000000000LL
#define N_SAMPLES 200
#define NNGCAT "/usr/bin/nngcat"

typedef struct env {
    char seg[64];
    char dir[256], run_dir[300], data_dir[300];
    char rep_url[512], pub_url[512], rep_path[400], pub_path[400], snap_path[400];
    shm_segment *segment;
    shm_producer *prod;
    int64_t t0;
    int starts;
    double temp[N_SAMPLES];
    char extra_args[4][64];
    int n_extra;
} env;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

/* ------------------------------------------------------------ nng client */

static json_t *ask_raw(const char *url, const void *req, size_t len)
{
    return statclient_ask(url, req, len);
}

static json_t *ask(env *e, const char *req)
{
    return ask_raw(e->rep_url, req, strlen(req));
}

static json_t *ask_ok(env *e, const char *req)
{
    json_t *j = ask(e, req);
    if (!j || !json_is_true(json_object_get(j, "ok")))
        fail_msg("request %s: %s", req, j ? json_dumps(j, JSON_COMPACT) : "no reply");
    return j;
}

static double num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_number(v))
        fail_msg("key %s is not a number in %s", key, json_dumps(o, JSON_COMPACT));
    return json_number_value(v);
}

static json_t *first_tag(json_t *reply)
{
    return json_array_get(json_object_get(reply, "tags"), 0);
}

/* ------------------------------------------------------------ service */

static pid_t start_service(env *e)
{
    char bin[512], log[512];
    shmtest_bin(bin, sizeof bin, "shmbus-stats");
    snprintf(log, sizeof log, "%s/stats-%d.log", e->dir, ++e->starts);
    char *argv[32] = {bin,          "--segment",
                      e->seg,       "--run-dir",
                      e->run_dir,   "--data-dir",
                      e->data_dir,  "--snapshot-interval-s",
                      "1",          "--publish-interval-s",
                      "1",          "--history-s",
                      "86400",      "--max-tags",
                      "16",         "--step-tag",
                      "valve.state"};
    int argc = 17;
    for (int i = 0; i < e->n_extra; i++)
        argv[argc++] = e->extra_args[i];
    argv[argc] = NULL;
    pid_t pid = shmtest_spawn(argv, log);
    assert_true(pid > 0);
    return pid;
}

/* A status field (in `section` when not NULL) reaching a value: at least
 * it (or true), or exactly it. */
typedef struct status_wait {
    env *e;
    const char *key;
    double at_least;
    const char *section;
    int exact;
} status_wait;

static int status_reached(void *arg)
{
    status_wait *w = arg;
    json_t *j = ask_raw(w->e->rep_url, "{\"op\":\"status\"}", 15);
    if (!j)
        return 0;
    json_t *v = json_object_get(w->section ? json_object_get(j, w->section) : j, w->key);
    double x = json_is_number(v) ? json_number_value(v) : NAN;
    int ok = w->exact ? x == w->at_least : json_is_true(v) || x >= w->at_least;
    json_decref(j);
    return ok;
}

static void wait_status(env *e, const char *key, double at_least)
{
    status_wait w = {e, key, at_least, NULL, 0};
    if (!shmtest_wait_until(status_reached, &w, 20000))
        fail_msg("status %s never reached %g", key, at_least);
}

static int file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

static int count_files(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += strstr(de->d_name, needle) != NULL;
    if (d)
        closedir(d);
    return n;
}

/* Runs nngcat with args, returns its stdout+stderr (malloc'd). */
static char *nngcat(env *e, char *const args[])
{
    char out[512];
    static int n;
    snprintf(out, sizeof out, "%s/nngcat-%d.out", e->dir, ++n);
    char *argv[24] = {NNGCAT};
    int argc = 1;
    for (; args[argc - 1]; argc++)
        argv[argc] = args[argc - 1];
    argv[argc] = NULL;
    pid_t pid = shmtest_spawn(argv, out);
    int st = shmtest_wait_pid(pid, 20000);
    if (st == -1) {
        shmtest_kill(pid);
        fail_msg("nngcat did not finish");
    }
    FILE *f = fopen(out, "r");
    assert_non_null(f);
    char *buf = calloc(1, 1 << 20);
    size_t len = fread(buf, 1, (1 << 20) - 1, f);
    buf[len] = '\0';
    fclose(f);
    return buf;
}

/* ------------------------------------------------------------ producing */

static void put_value(env *e, uint32_t tag, int64_t t, double v, int quality)
{
    shm_tag_value tv = {.timestamp_ns = t, .tag_id = tag, .value = v, .quality = (uint8_t)quality};
    uint8_t buf[SHM_TAG_VALUE_MAX];
    int n = shm_tag_value_encode(&tv, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(shm_put(e->prod, buf, (uint32_t)n, NULL), 0);
}

static void put_meta(env *e, uint32_t id, const char *name, int type)
{
    shm_tag_meta m = {.id = id,
                      .name = name,
                      .device = "plc1",
                      .unit = "",
                      .data_type = (uint8_t)type,
                      .scale = 1.0};
    uint8_t buf[SHM_CATALOG_ENTRY_MAX];
    int n = shm_tag_meta_encode(&m, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(shm_catalog_put(e->segment, id, buf, (uint32_t)n), 0);
}

static void make_env(env *e, const char *prefix)
{
    memset(e, 0, sizeof *e);
    shmtest_segment_name(e->seg, sizeof e->seg, prefix);
    shmtest_tmpdir(e->dir, sizeof e->dir);
    snprintf(e->run_dir, sizeof e->run_dir, "%s/run", e->dir);
    snprintf(e->data_dir, sizeof e->data_dir, "%s/data", e->dir);
    snprintf(e->rep_path, sizeof e->rep_path, "%s/%s.stats", e->run_dir, e->seg);
    snprintf(e->pub_path, sizeof e->pub_path, "%s/%s.stats-pub", e->run_dir, e->seg);
    snprintf(e->rep_url, sizeof e->rep_url, "ipc://%s", e->rep_path);
    snprintf(e->pub_url, sizeof e->pub_url, "ipc://%s", e->pub_path);
    snprintf(e->snap_path, sizeof e->snap_path, "%s/%s.stats.snap", e->data_dir, e->seg);
    shm_segment_options o = {
        .slot_count = 4096, .slot_size = 128, .policy = SHM_POLICY_BACKPRESSURE};
    int rc = shm_segment_open(e->seg, &o, SHM_OPEN_CREATE, &e->segment);
    if (rc)
        fail_msg("segment: %s", shm_last_error());
    assert_int_equal(shm_producer_open(e->segment, "test", &e->prod), 0);
}

static void close_env(env *e)
{
    shm_producer_close(&e->prod);
    shm_segment_close(&e->segment);
}

/* ------------------------------------------------------------ the test */

static void check_temp_stats(env *e, json_t *t, size_t n)
{
    ref_stats ref;
    ref_compute(e->temp, n, &ref);
    assert_int_equal(num(t, "count"), n);
    assert_true(rel_err(num(t, "mean"), ref.mean) < 1e-12);
    assert_true(rel_err(num(t, "stddev"), ref.stddev) < 1e-9);
    assert_true(num(t, "min") == ref.min && num(t, "max") == ref.max);
    assert_true(num(t, "first") == ref.first && num(t, "last") == ref.last);
}

static void test_end_to_end(void **state)
{
    (void)state;
    if (access(NNGCAT, X_OK) != 0) {
        fprintf(stderr, "nngcat not installed: skipped\n");
        exit(77);
    }
    env *e = calloc(1, sizeof *e);
    make_env(e, "stats");
    put_meta(e, 0, "boiler.temp", SHM_DT_FLOAT64);
    put_meta(e, 1, "pump.on", SHM_DT_BOOL);
    put_meta(e, 2, "flow", SHM_DT_FLOAT32);
    put_meta(e, 3, "valve.state", SHM_DT_INT16);

    pid_t pid = start_service(e);
    wait_status(e, "attached", 1);

    /* 200 samples per tag, one a second, ending now. */
    e->t0 = now_ns() - N_SAMPLES * SEC;
    for (int i = 0; i < N_SAMPLES; i++) {
        int64_t t = e->t0 + (int64_t)i * SEC;
        e->temp[i] = 20.0 + 0.1 * i + 0.01 * sin(i);
        put_value(e, 0, t, e->temp[i], SHM_Q_GOOD);
        put_value(e, 1, t, (double)((i / 20) % 2), SHM_Q_GOOD);
        put_value(e, 2, t, 3.0 * e->temp[i] - 4.0, SHM_Q_GOOD);
        put_value(e, 3, t, (double)(i / 50), SHM_Q_GOOD);
    }
    put_value(e, 0, e->t0 + 500 * SEC, NAN, SHM_Q_GOOD);                 /* excluded: NaN */
    put_value(e, 0, e->t0 + 501 * SEC, 1e6, SHM_Q_COMM_FAIL);            /* excluded: quality */
    put_value(e, 1000, e->t0, 1.0, SHM_Q_GOOD);                          /* id beyond --max-tags */
    assert_int_equal(shm_put(e->prod, "not a flatbuffer", 16, NULL), 0); /* invalid */
    wait_status(e, "records", 4 * N_SAMPLES + 2);

    /* --- statistics, from here */
    json_t *j = ask_ok(e, "{\"op\":\"status\"}");
    assert_int_equal(num(j, "invalid_records"), 1);
    assert_int_equal(num(j, "bad_tag_ids"), 1);
    assert_int_equal(num(j, "tags"), 4);
    json_decref(j);
    j = ask_ok(e, "{\"op\":\"stats\",\"tag\":\"boiler.temp\"}");
    json_t *t = first_tag(j);
    check_temp_stats(e, t, N_SAMPLES);
    assert_int_equal(num(t, "excluded_nonfinite"), 1);
    assert_int_equal(num(t, "excluded_quality"), 1);
    assert_true(fabs(num(t, "trend_per_s") - 0.1) < 1e-3);
    json_decref(j);

    /* pump.on toggles every 20 s: 9 changes over 199 s -> 199/9/2 s. */
    j = ask_ok(e, "{\"op\":\"intervals\",\"tags\":[\"pump.on\"]}");
    t = json_array_get(json_object_get(j, "intervals"), 0);
    assert_int_equal(num(t, "changes"), 9);
    assert_true(fabs(num(t, "suggested_interval_ms") - 199000.0 / 18.0) < 1e-6);
    json_decref(j);

    /* Value at a time: linear for a float, step for a state tag. */
    char req[512];
    snprintf(req, sizeof req, "{\"op\":\"value_at\",\"tag\":\"boiler.temp\",\"t_ns\":%lld}",
             (long long)(e->t0 + 10 * SEC + SEC / 4));
    j = ask_ok(e, req);
    assert_string_equal(json_string_value(json_object_get(j, "position")), "between");
    assert_true(fabs(num(j, "value") - (e->temp[10] + 0.25 * (e->temp[11] - e->temp[10]))) < 1e-12);
    json_decref(j);
    snprintf(req, sizeof req, "{\"op\":\"value_at\",\"tag\":\"valve.state\",\"t_ns\":%lld}",
             (long long)(e->t0 + 49 * SEC + SEC / 2));
    j = ask_ok(e, req);
    assert_true(num(j, "value") == 0.0);
    assert_string_equal(json_string_value(json_object_get(j, "mode")), "step");
    json_decref(j);
    snprintf(req, sizeof req, "{\"op\":\"value_at\",\"tag\":0,\"t_ns\":%lld}",
             (long long)(e->t0 - SEC));
    j = ask_ok(e, req);
    assert_string_equal(json_string_value(json_object_get(j, "position")), "before");
    json_decref(j);

    /* Range and correlation. */
    snprintf(req, sizeof req,
             "{\"op\":\"range\",\"tag\":\"boiler.temp\",\"from_ns\":%lld,\"to_ns\":%lld}",
             (long long)(e->t0 + 100 * SEC), (long long)(e->t0 + 109 * SEC));
    j = ask_ok(e, req);
    assert_int_equal(json_array_size(json_object_get(j, "points")), 10);
    assert_true(json_number_value(json_array_get(json_array_get(json_object_get(j, "points"), 9),
                                                 1)) == e->temp[109]);
    json_decref(j);
    j = ask_ok(e, "{\"op\":\"correlate\",\"tags\":[\"boiler.temp\",\"flow\"]}");
    double r =
        json_number_value(json_array_get(json_array_get(json_object_get(j, "matrix"), 0), 1));
    assert_true(fabs(r - 1.0) < 1e-9);
    json_decref(j);

    /* --- the same through nngcat, an independent nng peer */
    char *out = nngcat(e, (char *[]){"--req", "--dial", e->rep_url, "--data",
                                     "{\"op\":\"stats\",\"tag\":\"boiler.temp\"}", "--raw",
                                     "--recv-timeout", "5", NULL});
    j = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
    if (!j)
        fail_msg("nngcat printed: %s", out);
    check_temp_stats(e, first_tag(j), N_SAMPLES);
    json_decref(j);
    free(out);
    out = nngcat(e, (char *[]){"--req", "--dial", e->rep_url, "--data", "{\"op\":\"stats\",",
                               "--raw", "--recv-timeout", "5", NULL});
    assert_non_null(strstr(out, "{\"error\":\"malformed JSON"));
    free(out);
    /* A summary on the PUB socket. */
    out = nngcat(e, (char *[]){"--sub", "--dial", e->pub_url, "--subscribe", "", "--count", "1",
                               "--recv-timeout", "5", "--raw", NULL});
    assert_non_null(strstr(out, "\"type\":\"summary\""));
    assert_non_null(strstr(out, "\"name\":\"boiler.temp\""));
    free(out);

    /* --- bad requests get reasons; the service keeps answering */
    static const struct {
        const char *req, *needle;
    } bad[] = {
        {"{\"op\":\"stats\",", "malformed JSON"},
        {"{\"op\":\"stats\",\"tag\":\"no.such.tag\"}", "unknown tag 'no.such.tag'"},
        {"{\"op\":\"range\",\"tag\":0,\"from\":-10,\"to\":-20}", "inverted range"},
        {"{\"op\":\"frobnicate\"}", "unknown op"},
        {"[]", "JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = ask(e, bad[i].req);
        assert_non_null(j);
        const char *msg = json_string_value(json_object_get(j, "error"));
        if (!msg || !strstr(msg, bad[i].needle))
            fail_msg("%s: %s", bad[i].req, json_dumps(j, JSON_COMPACT));
        json_decref(j);
    }
    size_t big_len = 70 * 1024;
    char *big = malloc(big_len);
    memset(big, ' ', big_len);
    memcpy(big, "{\"op\":\"status\"", 14);
    big[big_len - 1] = '}';
    j = ask_raw(e->rep_url, big, big_len);
    free(big);
    assert_non_null(j);
    assert_non_null(strstr(json_string_value(json_object_get(j, "error")), "request too large"));
    json_decref(j);
    j = ask_ok(e, "{\"op\":\"stats\",\"tag\":\"pump.on\"}");
    json_decref(j);

    /* --- sockets are owner and group only */
    struct stat st;
    assert_int_equal(stat(e->rep_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0660);
    assert_int_equal(stat(e->pub_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0660);

    /* --- the snapshot survives SIGKILL */
    j = ask_ok(e, "{\"op\":\"snapshot\"}");
    assert_string_equal(json_string_value(json_object_get(j, "path")), e->snap_path);
    json_decref(j);
    j = ask_ok(e, "{\"op\":\"stats\",\"tag\":\"boiler.temp\"}");
    double hist_before = num(json_object_get(first_tag(j), "history"), "points");
    json_decref(j);
    shmtest_kill(pid);
    /* Asked while the service is down: nng re-sends once it is back. */
    char out_path[512];
    snprintf(out_path, sizeof out_path, "%s/during-restart.out", e->dir);
    pid_t cat = shmtest_spawn((char *[]){NNGCAT, "--req", "--async", "--dial", e->rep_url, "--data",
                                         "{\"op\":\"stats\",\"tag\":\"flow\"}", "--raw",
                                         "--recv-timeout", "15", NULL},
                              out_path);
    struct timespec pause = {0, 300 * 1000 * 1000};
    nanosleep(&pause, NULL);
    pid = start_service(e);
    wait_status(e, "attached", 1);
    assert_true(WIFEXITED(shmtest_wait_pid(cat, 20000)));
    assert_true(file_contains(out_path, "\"name\":\"flow\""));
    j = ask_ok(e, "{\"op\":\"stats\",\"tag\":\"boiler.temp\"}");
    t = first_tag(j);
    check_temp_stats(e, t, N_SAMPLES);
    assert_int_equal(num(t, "excluded_quality"), 1);
    assert_true(num(json_object_get(t, "history"), "points") == hist_before);
    json_decref(j);
    /* New records land on top of the restored state. */
    put_value(e, 0, e->t0 + N_SAMPLES * SEC, 99.0, SHM_Q_GOOD);
    status_wait w = {e, "records", 1, NULL, 0};
    assert_true(shmtest_wait_until(status_reached, &w, 10000));
    j = ask_ok(e, "{\"op\":\"stats\",\"tag\":\"boiler.temp\"}");
    assert_int_equal(num(first_tag(j), "count"), N_SAMPLES + 1);
    assert_true(num(first_tag(j), "last") == 99.0);
    json_decref(j);

    /* --- SIGTERM: exits 0 after a last snapshot */
    kill(pid, SIGTERM);
    int ws = shmtest_wait_pid(pid, 10000);
    assert_true(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    char log[512];
    snprintf(log, sizeof log, "%s/stats-%d.log", e->dir, e->starts);
    assert_true(file_contains(log, "stopped:"));

    /* --- a corrupt snapshot is moved aside; the service starts empty */
    FILE *f = fopen(e->snap_path, "r+b");
    assert_non_null(f);
    fseek(f, 200, SEEK_SET);
    fputc('X', f);
    fclose(f);
    pid = start_service(e);
    wait_status(e, "attached", 1);
    snprintf(log, sizeof log, "%s/stats-%d.log", e->dir, e->starts);
    assert_true(file_contains(log, "rejected (corrupt"));
    assert_int_equal(count_files(e->data_dir, ".bad-"), 1);
    j = ask_ok(e, "{\"op\":\"status\"}");
    assert_int_equal(num(j, "tags"), 0);
    json_decref(j);
    shmtest_kill(pid);

    /* --- a foreign file likewise */
    f = fopen(e->snap_path, "wb");
    fputs("this is not a snapshot\n", f);
    fclose(f);
    pid = start_service(e);
    wait_status(e, "attached", 1);
    snprintf(log, sizeof log, "%s/stats-%d.log", e->dir, e->starts);
    assert_true(file_contains(log, "rejected (foreign"));
    assert_int_equal(count_files(e->data_dir, ".bad-"), 2);
    shmtest_kill(pid);
    close_env(e);
    free(e);
}

static void test_shards(void **state)
{
    (void)state;
    env *e = calloc(1, sizeof *e);
    make_env(e, "shard");
    for (uint32_t id = 0; id < 8; id++) {
        char name[16];
        snprintf(name, sizeof name, "tag%u", id);
        put_meta(e, id, name, SHM_DT_FLOAT64);
    }
    env shard_env[2];
    pid_t pids[2];
    for (int k = 0; k < 2; k++) {
        shard_env[k] = *e;
        snprintf(shard_env[k].extra_args[0], 64, "--shard");
        snprintf(shard_env[k].extra_args[1], 64, "%d/2", k);
        shard_env[k].n_extra = 2;
        snprintf(shard_env[k].rep_url, sizeof shard_env[k].rep_url, "ipc://%s/%s.stats-%d",
                 e->run_dir, e->seg, k);
        pids[k] = start_service(&shard_env[k]);
        wait_status(&shard_env[k], "attached", 1);
    }
    int64_t t0 = now_ns() - 100 * SEC;
    for (int i = 0; i < 10; i++)
        for (uint32_t id = 0; id < 8; id++)
            put_value(e, id, t0 + i * SEC, id * 100.0 + i, SHM_Q_GOOD);
    int seen[8] = {0}, owner[8] = {0};
    int total = 0;
    for (int k = 0; k < 2; k++) {
        env *s = &shard_env[k];
        json_t *j = ask_ok(s, "{\"op\":\"status\"}");
        char group[16];
        snprintf(group, sizeof group, "stats-%d", k);
        assert_string_equal(json_string_value(json_object_get(j, "group")), group);
        json_decref(j);
        j = NULL;
        /* Wait until this shard has applied its records. */
        for (int tries = 0; tries < 200; tries++) {
            json_decref(j);
            j = ask_ok(s, "{\"op\":\"status\"}");
            if (num(j, "records") + num(j, "other_shard_records") >= 80)
                break;
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        assert_int_equal(num(j, "records") + num(j, "other_shard_records"), 80);
        json_decref(j);
        j = ask_ok(s, "{\"op\":\"tags\"}");
        json_t *tags = json_object_get(j, "tags");
        size_t i;
        json_t *tag;
        json_array_foreach(tags, i, tag)
        {
            int id = (int)num(tag, "id");
            assert_int_equal(num(tag, "count"), 10);
            seen[id]++;
            owner[id] = k;
            total++;
        }
        json_decref(j);
    }
    assert_int_equal(total, 8);
    for (int id = 0; id < 8; id++)
        assert_int_equal(seen[id], 1);
    /* Asking a shard for a tag it does not own says so. */
    int foreign_id = -1;
    for (int id = 0; id < 8 && foreign_id < 0; id++)
        if (owner[id] == 1)
            foreign_id = id;
    assert_true(foreign_id >= 0);
    char req[128];
    snprintf(req, sizeof req, "{\"op\":\"stats\",\"tag\":%d}", foreign_id);
    json_t *j = ask(&shard_env[0], req);
    assert_non_null(j);
    assert_non_null(strstr(json_string_value(json_object_get(j, "error")), "another shard"));
    json_decref(j);
    for (int k = 0; k < 2; k++)
        shmtest_kill(pids[k]);
    close_env(e);
    free(e);
}

/* The group configuration file drives the service; flags override it. */
static void test_config_file(void **state)
{
    (void)state;
    env *e = calloc(1, sizeof *e);
    make_env(e, "cfg");
    char cfg[512], bin[512], log[512];
    snprintf(cfg, sizeof cfg, "%s/group.yaml", e->dir);
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fprintf(f,
            "segment: {name: %s}\n"
            "paths: {run_dir: %s, data_dir: %s}\n"
            "stats: {window: 7, history_s: 100, history_capacity: 500, shards: 2}\n",
            e->seg, e->run_dir, e->data_dir);
    fclose(f);
    shmtest_bin(bin, sizeof bin, "shmbus-stats");
    /* Two shards configured: a process without --shard refuses to start. */
    snprintf(log, sizeof log, "%s/refused.log", e->dir);
    pid_t pid = shmtest_spawn((char *[]){bin, "--config", cfg, NULL}, log);
    int ws = shmtest_wait_pid(pid, 10000);
    assert_true(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 2);
    assert_true(file_contains(log, "stats.shards is 2"));
    /* With --shard, and a flag overriding the window. */
    snprintf(log, sizeof log, "%s/cfg.log", e->dir);
    pid = shmtest_spawn((char *[]){bin, "--config", cfg, "--shard", "1/2", "--window", "9", NULL},
                        log);
    snprintf(e->rep_url, sizeof e->rep_url, "ipc://%s/%s.stats-1", e->run_dir, e->seg);
    wait_status(e, "attached", 1);
    json_t *j = ask_ok(e, "{\"op\":\"status\"}");
    assert_int_equal(num(j, "window"), 9);
    assert_int_equal(num(j, "history_s"), 100);
    assert_string_equal(json_string_value(json_object_get(j, "segment")), e->seg);
    assert_string_equal(json_string_value(json_object_get(j, "shard")), "1/2");
    json_decref(j);
    shmtest_kill(pid);
    /* A configuration error names file, line and field. */
    f = fopen(cfg, "w");
    fprintf(f, "stats:\n  window: lots\n");
    fclose(f);
    snprintf(log, sizeof log, "%s/bad.log", e->dir);
    pid = shmtest_spawn((char *[]){bin, "--config", cfg, NULL}, log);
    ws = shmtest_wait_pid(pid, 10000);
    assert_true(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 2);
    assert_true(file_contains(log, "group.yaml:2"));
    assert_true(file_contains(log, "stats.window"));
    close_env(e);
    free(e);
}

/* A group configuration with `n_tags` tags on one device and the given
 * stats section. */
static void write_group_config(const char *path, env *e, int n_tags, const char *stats)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "segment: {name: %s}\n"
            "paths: {run_dir: %s, data_dir: %s}\n"
            "stats: %s\n"
            "devices:\n"
            "  - name: plc1\n"
            "    transport: tcp\n"
            "    host: 127.0.0.1\n"
            "    port: 1502\n"
            "    address_base: 0\n"
            "    poll_groups:\n"
            "      - {name: fast, interval_ms: 1000}\n"
            "    tags:\n",
            e->seg, e->run_dir, e->data_dir, stats);
    for (int i = 0; i < n_tags; i++)
        fprintf(f, "      - {name: t%d, register: holding, address: %d, type: uint16}\n", i, i);
    fclose(f);
}

/* The memory plan from the configuration: its tags are planned for from
 * the start; a limit that cannot hold them is a configuration error naming
 * the key; SIGHUP applies a new limit to every tag (values kept); a broken
 * file on reload keeps the running settings. */
static void test_memory_plan(void **state)
{
    (void)state;
    env *e = calloc(1, sizeof *e);
    make_env(e, "plan");
    char cfg[512], bin[512], log[512];
    snprintf(cfg, sizeof cfg, "%s/group.yaml", e->dir);
    shmtest_bin(bin, sizeof bin, "shmbus-stats");
    /* 600 tags x 1.7 KiB (minimal window and history) do not fit in 1 MiB. */
    write_group_config(cfg, e, 600, "{window: 1000, history_capacity: 10000, memory_limit_mb: 1}");
    snprintf(log, sizeof log, "%s/too-small.log", e->dir);
    pid_t pid = shmtest_spawn((char *[]){bin, "--config", cfg, NULL}, log);
    int ws = shmtest_wait_pid(pid, 10000);
    assert_true(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 2);
    assert_true(file_contains(log, "group.yaml: stats.memory_limit_mb: "));
    assert_true(file_contains(log, "is too small: 600 tags need"));
    assert_true(file_contains(log, "set stats.memory_limit_mb to 2 or more"));
    /* The flag names itself. */
    snprintf(log, sizeof log, "%s/too-small-flag.log", e->dir);
    pid = shmtest_spawn((char *[]){bin, "--config", cfg, "--memory-limit-mb", "1", NULL}, log);
    ws = shmtest_wait_pid(pid, 10000);
    assert_true(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 2);
    assert_true(file_contains(log, "shmbus-stats: --memory-limit-mb: "));

    /* 2 MiB: every tag gets less than asked, planned for all 600 at once. */
    write_group_config(cfg, e, 600, "{window: 1000, history_capacity: 10000, memory_limit_mb: 2}");
    snprintf(log, sizeof log, "%s/plan.log", e->dir);
    pid = shmtest_spawn((char *[]){bin, "--config", cfg, NULL}, log);
    wait_status(e, "attached", 1);
    json_t *j = ask_ok(e, "{\"op\":\"status\"}");
    json_t *m = json_object_get(j, "memory");
    assert_int_equal(num(m, "planned_tags"), 600);
    assert_int_equal(num(m, "limit_bytes"), 2 << 20);
    assert_int_equal(num(m, "window_asked"), 1000);
    assert_true(num(m, "window_granted") < 1000 && num(m, "history_granted") < 10000);
    assert_true(num(m, "planned_bytes") <= 2 << 20);
    assert_true(json_is_true(json_object_get(m, "reduced")));
    assert_int_equal(num(j, "window"), num(m, "window_granted"));
    json_decref(j);
    assert_true(file_contains(log, "stats memory (the configuration's tags of this shard)"));
    assert_true(file_contains(log, "granted window"));
    e->t0 = now_ns() - 20 * SEC;
    for (int i = 0; i < 20; i++)
        put_value(e, 3, e->t0 + i * SEC, (double)i, SHM_Q_GOOD);
    wait_status(e, "records", 20);

    /* SIGHUP with room for everything asked: every tag grows, values kept. */
    write_group_config(cfg, e, 600,
                       "{window: 1000, history_capacity: 10000, memory_limit_mb: 200}");
    kill(pid, SIGHUP);
    status_wait w = {e, "window_granted", 1000, "memory", 1};
    assert_true(shmtest_wait_until(status_reached, &w, 10000));
    j = ask_ok(e, "{\"op\":\"stats\",\"tag\":3}");
    json_t *t = first_tag(j);
    assert_int_equal(num(t, "window"), 1000);
    assert_int_equal(num(t, "count"), 20);
    assert_int_equal(num(json_object_get(t, "history"), "capacity"), 10000);
    json_decref(j);
    assert_true(file_contains(log, "stats memory (reload)"));
    assert_true(file_contains(log, "granted as asked"));

    /* A broken file on SIGHUP: said so, the running settings stay. */
    FILE *f = fopen(cfg, "w");
    fprintf(f, "stats:\n  memory_limit_mb: lots\n");
    fclose(f);
    kill(pid, SIGHUP);
    for (int tries = 0; tries < 500 && !file_contains(log, "reload failed"); tries++) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_true(file_contains(log, "reload failed"));
    assert_true(file_contains(log, "stats.memory_limit_mb"));
    j = ask_ok(e, "{\"op\":\"status\"}");
    assert_int_equal(num(json_object_get(j, "memory"), "window_granted"), 1000);
    json_decref(j);
    shmtest_kill(pid);
    close_env(e);
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_end_to_end),
        cmocka_unit_test(test_shards),
        cmocka_unit_test(test_config_file),
        cmocka_unit_test(test_memory_plan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
