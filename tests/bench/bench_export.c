/*
 * bench_export.c — `shmbus-bench export [--quick] [--case postgres|mqtt]`:
 * how fast shmbus-export moves records from the ring into PostgreSQL and an
 * MQTT broker, against what a user would do by hand, in the same run.
 *
 *   postgres                 the real shmbus-export process, timed from the
 *                            first put until the group has acknowledged the
 *                            last record (a batch is acknowledged after its
 *                            COMMIT), batches of 500 and larger. Exactly once
 *                            as in production, with the default configuration
 *                            (group commit on: under the backlog this run
 *                            makes, a transaction carries up to
 *                            max_batches_per_commit batches, 16 shared by
 *                            the 2 connections: 8 of 500); "group":"off" is
 *                            batch 500 with max_batches_per_commit 1, one
 *                            transaction per batch as before group commit.
 *                            "commits" is the median number of transactions
 *                            a run took. A fresh batch is a binary COPY
 *                            into the table, whose unique key (source_id,
 *                            seq) makes a batch with a row already there fail
 *                            as a whole and go again through the staging
 *                            table ("path":"direct"). "path":"staging" sends
 *                            every batch through the staging table + INSERT
 *                            ... ON CONFLICT, the way re-delivered and
 *                            replayed batches go.
 *   baseline_psql_copy       psql \copy of the same rows from a CSV file into
 *                            the same table (same indexes), one transaction
 *   mqtt                     shmbus-export at QoS 1: a batch is acknowledged
 *                            in the ring when every PUBACK came
 *   baseline_mosquitto_pub   mosquitto_pub -l -q 1 publishing the same
 *                            payloads, one per line (its default in-flight
 *                            window of 20, and -M 500), timed until the
 *                            broker acknowledged every one; the mqtt ratio
 *                            is against the faster of the two
 *
 * Full runs interleave 3 rounds (baseline, then every case) and pair each
 * ratio with its own round's baseline; the JSON shows medians. --quick runs
 * one round of fewer rows.
 *
 * Configurations use batch_age_ms 50: records arrive faster than any
 * batch fills, so the age only decides how long the last, partial batch
 * waits before it is sent (with 500 ms it would be a large part of a short
 * run).
 *
 * The servers are the Debian ones, started here in temporary directories
 * (as `nobody` when run as root), with their default durability settings
 * (PostgreSQL fsync and synchronous_commit on). A case whose server cannot
 * start prints a JSON line with "skipped" and the reason.
 */
#include "bench.h"
#include "config.h"
#include "export.h"
#include "mqtt_internal.h"
#include "pg_internal.h"

#include <shmbus/shm.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <libgen.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#define BENCH_TAGS 100
#define PAD_LINES 400 /* see mosquitto_pub_run */
#define MAX_CHILDREN 16
#define BENCH_MAX_ROUNDS 3 /* full runs; --quick runs one */

static pid_t children[MAX_CHILDREN];
static int failures; /* behaviour checks that failed: the exit status says so */
static int n_children;
static char workdir[256];
static char segname[32];
static uid_t run_uid;
static gid_t run_gid;
static bool drop_privileges;

/* ------------------------------------------------------------ processes */

static void cleanup(void)
{
    for (int i = n_children - 1; i >= 0; i--) {
        if (children[i] > 0) {
            kill(children[i], SIGTERM);
            for (int k = 0; k < 200 && waitpid(children[i], NULL, WNOHANG) == 0; k++)
                usleep(20000);
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
        }
    }
    n_children = 0;
    if (segname[0])
        shm_segment_unlink(segname);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_workdir(void)
{
    cleanup();
    if (getenv("SHMBUS_BENCH_KEEP")) /* for a look at the servers' and exporter's logs */
        fprintf(stderr, "bench export: kept %s\n", workdir);
    else if (workdir[0])
        nftw(workdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void forget_child(pid_t pid)
{
    for (int i = 0; i < n_children; i++)
        if (children[i] == pid)
            children[i] = 0;
}

/* Starts argv with stdout+stderr to log (or /dev/null), stdin from in_path
 * (or /dev/null), optionally as the unprivileged server user; the child
 * dies with us (PR_SET_PDEATHSIG, set after the uid change, which clears it). */
static pid_t start(char *const argv[], const char *log, const char *in_path, bool as_server)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int in = open(in_path ? in_path : "/dev/null", O_RDONLY);
        int out = log ? open(log, O_WRONLY | O_CREAT | O_APPEND, 0644) : open("/dev/null", O_WRONLY);
        if (in < 0 || out < 0)
            _exit(127);
        dup2(in, 0);
        dup2(out, 1);
        dup2(out, 2);
        if (as_server && drop_privileges && (setgid(run_gid) != 0 || setuid(run_uid) != 0))
            _exit(126);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execvp(argv[0], argv);
        _exit(127);
    }
    if (n_children < MAX_CHILDREN)
        children[n_children++] = pid;
    return pid;
}

/* Runs to completion; returns the exit status (or -1). */
static int run(char *const argv[], const char *log, const char *in_path, bool as_server)
{
    pid_t pid = start(argv, log, in_path, as_server);
    if (pid < 0)
        return -1;
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    forget_child(pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void stop_child(pid_t pid, int sig)
{
    if (pid <= 0)
        return;
    kill(pid, sig);
    int st;
    for (int k = 0; k < 1500 && waitpid(pid, &st, WNOHANG) == 0; k++)
        usleep(20000);
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    forget_child(pid);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &al) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static bool tcp_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void skip_line(const char *case_name, const char *why)
{
    bench_json j;
    bench_json_begin(&j, "export", case_name);
    bench_json_str(&j, "skipped", why);
    bench_json_end(&j);
}

static void path_in(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", workdir, name);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* ---------------------------------------------------------------- ring */

static shm_segment *seg;
static shm_producer *producer;

static int ring_setup(uint32_t slots)
{
    snprintf(segname, sizeof segname, "bench-export-%d", (int)getpid());
    shm_segment_unlink(segname);
    shm_segment_options o = {.policy = SHM_POLICY_BACKPRESSURE, .slot_count = slots};
    if (shm_segment_open(segname, &o, SHM_OPEN_CREATE, &seg) != 0)
        return -1;
    uint8_t buf[SHM_CATALOG_ENTRY_MAX];
    for (uint32_t i = 0; i < BENCH_TAGS; i++) {
        char name[32], device[16];
        snprintf(name, sizeof name, "tag%u", i);
        snprintf(device, sizeof device, "plc%u", i / 25);
        shm_tag_meta m = {.id = i, .device_id = i / 25, .name = name, .device = device,
                          .unit = "degC", .data_type = SHM_DT_FLOAT32, .scale = 1};
        int len = shm_tag_meta_encode(&m, buf, sizeof buf);
        if (len < 0 || shm_catalog_put(seg, i, buf, (uint32_t)len) != 0)
            return -1;
    }
    return shm_producer_open(seg, "bench-export", &producer);
}

static void make_value(uint64_t s, int64_t t, shm_tag_value *v)
{
    memset(v, 0, sizeof *v);
    v->sequence = s;
    v->timestamp_ns = t;
    v->tag_id = (uint32_t)(s % BENCH_TAGS);
    v->device_id = v->tag_id / 25;
    v->value = 20.0 + (double)(s % 1000) * 0.01;
    v->raw = (int64_t)(s % 1000);
    v->quality = SHM_Q_GOOD;
}

/* Puts n records as fast as the ring takes them; returns the last seq. */
static uint64_t ring_put(uint64_t n, uint64_t *first)
{
    uint64_t put = 0, last = 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    while (put < n) {
        shm_slots s;
        uint32_t want = n - put > 256 ? 256 : (uint32_t)(n - put);
        int got = shm_claim(producer, want, &s);
        if (got < 0) {
            usleep(200);
            continue;
        }
        for (int i = 0; i < got; i++) {
            shm_tag_value v;
            make_value(s.first_seq + (uint64_t)i, t + (int64_t)(put + (uint64_t)i) * 1000, &v);
            int len = shm_tag_value_encode(&v, shm_slots_buf(&s, (uint32_t)i), s.payload);
            shm_slots_set_len(&s, (uint32_t)i, (uint32_t)len);
        }
        shm_commit(producer, &s);
        if (put == 0)
            *first = s.first_seq;
        last = s.first_seq + (uint64_t)got - 1;
        put += (uint64_t)got;
    }
    return last;
}

static uint64_t group_tail(const char *group)
{
    shm_group_stats gs[SHM_MAX_GROUPS];
    int n = shm_group_stats_get(seg, gs, SHM_MAX_GROUPS);
    for (int i = 0; i < n && i < SHM_MAX_GROUPS; i++)
        if (strcmp(gs[i].name, group) == 0)
            return gs[i].tail_seq;
    return 0;
}

static void group_create(const char *group)
{
    shm_consumer *c;
    if (shm_consumer_open(seg, group, "bench-setup", &c) == 0)
        shm_consumer_close(&c);
}

/* Waits for the exporter's connected gauge; false after timeout_ms. */
static bool wait_connected(const char *target, const char *member, int timeout_ms, pid_t pid)
{
    char name[SHM_COUNTER_NAME_MAX + 1];
    snprintf(name, sizeof name, "shmbus_export_connected{target=\"%s\",member=\"%s\"}", target,
             member);
    shm_counter *c;
    if (shm_counter_open(seg, name, SHM_GAUGE, &c) != 0)
        return false;
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (shm_counter_get(c) == 1)
            return true;
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            forget_child(pid);
            return false;
        }
        usleep(10000);
    }
    return false;
}

/* One timed run of shmbus-export. */
typedef struct export_run {
    double secs;  /* from the first put until the group acknowledged the last record */
    double cpu_s; /* the exporter's CPU time over the whole run */
} export_run;

/* Starts shmbus-export (with env_name=env_value in its environment when
 * given), puts n records, and times them through. Returns 0, or -1 when the
 * exporter did not connect or died. */
static int timed_export(const char *target, const char *group, const char *config_path,
                        const char *member, uint64_t n, const char *env_name,
                        const char *env_value, export_run *out)
{
    char exe[512], log[512];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 32);
    if (len <= 0)
        return -1;
    exe[len] = '\0';
    snprintf(strrchr(exe, '/') + 1, 32, "shmbus-export");
    path_in(log, sizeof log, "export.log");
    char *argv[] = {exe, "--config", (char *)config_path, "--target", (char *)target, "--name",
                    (char *)member, NULL};
    if (env_name)
        setenv(env_name, env_value, 1);
    pid_t pid = start(argv, log, NULL, false);
    if (env_name)
        unsetenv(env_name);
    if (pid < 0 || !wait_connected(target, member, 20000, pid)) {
        fprintf(stderr, "bench export: %s did not connect (see %s)\n", target, log);
        stop_child(pid, SIGKILL);
        return -1;
    }
    uint64_t first = 0;
    int64_t t0 = bench_now_ns();
    uint64_t last = ring_put(n, &first);
    while (group_tail(group) <= last) {
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            forget_child(pid);
            return -1;
        }
        usleep(2000); /* coarse enough to leave the two cores to the exporter and server */
    }
    out->secs = (double)(bench_now_ns() - t0) / 1e9;
    bench_usage use;
    bench_proc_usage(pid, &use);
    out->cpu_s = use.cpu_s;
    stop_child(pid, SIGTERM);
    return 0;
}

/* ------------------------------------------------------------- postgres */

static char pg_bindir[256], pg_sock[256];
static int pg_port;
static pid_t pg_pid;

static int find_pg_bindir(void)
{
    glob_t g;
    if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) != 0)
        return -1;
    snprintf(pg_bindir, sizeof pg_bindir, "%s", g.gl_pathv[g.gl_pathc - 1]);
    *strrchr(pg_bindir, '/') = '\0';
    globfree(&g);
    return 0;
}

static int psql(const char *db, const char *sql, const char *file)
{
    char port[16], log[512];
    snprintf(port, sizeof port, "%d", pg_port);
    path_in(log, sizeof log, "psql.log");
    char *argv[] = {"psql", "-h", pg_sock, "-p", port, "-U", "shmbus", "-d", (char *)db, "-v",
                    "ON_ERROR_STOP=1", "-Xq", file ? "-f" : "-c", (char *)(file ? file : sql),
                    NULL};
    return run(argv, log, NULL, false);
}

static long long psql_count(const char *db, const char *table)
{
    char out[512], sql[256], port[16];
    path_in(out, sizeof out, "count.out");
    unlink(out);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    snprintf(port, sizeof port, "%d", pg_port);
    char *argv[] = {"psql", "-h", pg_sock, "-p", port, "-U", "shmbus", "-d", (char *)db, "-Atqc",
                    sql, NULL};
    if (run(argv, out, NULL, false) != 0)
        return -1;
    FILE *f = fopen(out, "r");
    long long n = -1;
    if (f) {
        if (fscanf(f, "%lld", &n) != 1)
            n = -1;
        fclose(f);
    }
    return n;
}

static const char *pg_start(void)
{
    if (find_pg_bindir() != 0)
        return "no PostgreSQL server binaries under /usr/lib/postgresql";
    char data[512], initdb[512], postgres[512], log[512], port[16], sockopt[300];
    path_in(data, sizeof data, "pgdata");
    path_in(log, sizeof log, "postgres.log");
    snprintf(pg_sock, sizeof pg_sock, "%s", workdir);
    snprintf(initdb, sizeof initdb, "%s/initdb", pg_bindir);
    snprintf(postgres, sizeof postgres, "%s/postgres", pg_bindir);
    char *init_argv[] = {initdb, "-D", data, "-U", "shmbus", "--auth-local=trust", "-E", "UTF8",
                         "--locale=C.UTF-8", "--no-sync", NULL};
    if (run(init_argv, log, NULL, true) != 0)
        return "initdb failed";
    pg_port = free_port();
    snprintf(port, sizeof port, "%d", pg_port);
    snprintf(sockopt, sizeof sockopt, "%s", pg_sock);
    char *argv[] = {postgres, "-D", data, "-k", sockopt, "-p", port, "-c",
                    "listen_addresses=", "-c", "dynamic_shared_memory_type=mmap",
                    "-c", "shared_buffers=128MB", "-c", "max_wal_size=1GB", NULL};
    pg_pid = start(argv, log, NULL, true);
    for (int i = 0; i < 300; i++) {
        if (psql("postgres", "SELECT 1", NULL) == 0)
            return NULL;
        if (waitpid(pg_pid, NULL, WNOHANG) == pg_pid)
            return "postgres exited at start";
        usleep(100000);
    }
    return "postgres did not accept connections";
}

/* The CSV of psql's baseline: the very rows the exporter will send. */
static int write_csv(const char *path, uint64_t n, uint64_t first_seq)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    for (uint64_t i = 0; i < n; i++) {
        shm_tag_value v;
        make_value(first_seq + i, t + (int64_t)i * 1000, &v);
        char when[40];
        mqtt_format_time(v.timestamp_ns, when, sizeof when);
        fprintf(f, "%s,1,%u,%.17g,%lld,%u,%u,%llu\n", when, v.tag_id, v.value, (long long)v.raw,
                v.quality, v.exception_code, (unsigned long long)(first_seq + i));
    }
    return fclose(f);
}

/* One way of exporting timed against the baseline. */
typedef struct pg_case {
    uint32_t batch;
    uint32_t max_batches; /* max_batches_per_commit; 0: the default (not in the file) */
    bool dedupe; /* every batch through the staging table (SHMBUS_EXPORT_TEST_ALWAYS_DEDUPE) */
    double rate[BENCH_MAX_ROUNDS], ratio[BENCH_MAX_ROUNDS], cpu[BENCH_MAX_ROUNDS];
    double commits[BENCH_MAX_ROUNDS]; /* transactions the exporter committed */
    int ok;
    char config[512];
} pg_case;

static double psql_copy_run(const char *copy_cmd, uint64_t n)
{
    psql("bench_copy", "TRUNCATE shmbus_values", NULL);
    psql("bench_copy", "CHECKPOINT", NULL);
    int64_t t0 = bench_now_ns();
    int rc = psql("bench_copy", copy_cmd, NULL);
    return rc == 0 ? (double)n / ((double)(bench_now_ns() - t0) / 1e9) : 0;
}

/* The bench member's counter `what` (0 when it does not exist yet). */
static uint64_t member_counter(const char *what)
{
    char name[SHM_COUNTER_NAME_MAX + 1];
    snprintf(name, sizeof name, "shmbus_export_%s{target=\"postgres\",member=\"bench-pg\"}",
             what);
    shm_counter *c;
    return shm_counter_open(seg, name, SHM_COUNTER, &c) == 0 ? shm_counter_get(c) : 0;
}

static void pg_case_run(pg_case *c, uint64_t n, double baseline)
{
    psql("bench_export", "DROP TABLE IF EXISTS shmbus_values, shmbus_tags, shmbus_sources, "
                         "shmbus_quality, shmbus_schema CASCADE", NULL);
    psql("bench_export", "CHECKPOINT", NULL);
    export_run run;
    uint64_t commits0 = member_counter("batches_total");
    if (timed_export("postgres", "export-pg", c->config, "bench-pg", n,
                     c->dedupe ? "SHMBUS_EXPORT_TEST_ALWAYS_DEDUPE" : NULL, "1", &run) != 0)
        return;
    long long checked = psql_count("bench_export", "shmbus_values");
    if (checked != (long long)n) {
        fprintf(stderr, "bench export: postgres batch %u: %lld rows in the table, %llu put\n",
                c->batch, checked, (unsigned long long)n);
        failures++;
        return;
    }
    c->rate[c->ok] = (double)n / run.secs;
    c->ratio[c->ok] = baseline > 0 ? c->rate[c->ok] / baseline : 0;
    c->cpu[c->ok] = run.cpu_s;
    c->commits[c->ok] = (double)(member_counter("batches_total") - commits0);
    c->ok++;
}

static void bench_postgres(bool quick)
{
    const char *why = pg_start();
    if (why) {
        skip_line("postgres", why);
        skip_line("baseline_psql_copy", why);
        return;
    }
    char schema[512];
    path_in(schema, sizeof schema, "schema.sql");
    write_file(schema, pg_schema_sql());
    if (psql("postgres", "CREATE DATABASE bench_export", NULL) != 0 ||
        psql("postgres", "CREATE DATABASE bench_copy", NULL) != 0 ||
        psql("bench_copy", NULL, schema) != 0) {
        skip_line("postgres", "creating the databases failed");
        return;
    }
    uint64_t n = quick ? 30000 : 300000;
    int rounds = quick ? 1 : BENCH_MAX_ROUNDS;
    pg_case cases[] = {{.batch = 500},  {.batch = 500, .max_batches = 1}, {.batch = 5000},
                       {.batch = 20000}, {.batch = 500, .dedupe = true}};
    const size_t n_cases = sizeof cases / sizeof cases[0];
    for (size_t k = 0; k < n_cases; k++) {
        char name[32], yaml[1536], group[64] = "";
        snprintf(name, sizeof name, "pg-%zu.yaml", k);
        path_in(cases[k].config, sizeof cases[k].config, name);
        if (cases[k].max_batches)
            snprintf(group, sizeof group, "    max_batches_per_commit: %u\n", cases[k].max_batches);
        snprintf(yaml, sizeof yaml,
                 "segment: {name: %s}\npaths: {data_dir: %s/data, run_dir: %s}\n"
                 "export:\n  postgres:\n    conninfo: \"host=%s port=%d dbname=bench_export "
                 "user=shmbus\"\n    source: bench\n    batch_records: %u\n    batch_age_ms: 50\n%s",
                 segname, workdir, workdir, pg_sock, pg_port, cases[k].batch, group);
        write_file(cases[k].config, yaml);
    }
    char csv[512];
    path_in(csv, sizeof csv, "rows.csv");
    write_csv(csv, n, 1);
    char copy_cmd[1024];
    snprintf(copy_cmd, sizeof copy_cmd,
             "\\copy shmbus_values (time, source_id, tag_id, value, raw, quality, exception, seq) "
             "FROM '%s' WITH (FORMAT csv)",
             csv);
    group_create("export-pg");
    /* Rounds interleave the baseline and every case, and each ratio pairs
     * a case with the baseline of its own round: this machine's speed
     * drifts (other tenants) over a run far more than between neighbours. */
    double baseline[BENCH_MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) {
        baseline[r] = psql_copy_run(copy_cmd, n);
        for (size_t k = 0; k < n_cases; k++)
            pg_case_run(&cases[k], n, baseline[r]);
    }
    long long copied = psql_count("bench_copy", "shmbus_values");
    uint32_t default_max_batches = 0; /* the loader's default, which the other cases use */
    config *defaults = NULL;
    char err[256];
    if (config_defaults(&defaults, err, sizeof err) == 0)
        default_max_batches = defaults->postgres.max_batches_per_commit;
    config_free(&defaults);
    double base = bench_median(baseline, (size_t)rounds);
    bench_json j;
    bench_json_begin(&j, "export", "baseline_psql_copy");
    bench_json_int(&j, "rows", (int64_t)n);
    bench_json_int(&j, "rounds", rounds);
    bench_json_num(&j, "rows_per_s", base);
    bench_json_int(&j, "checked_rows", copied);
    bench_json_str(&j, "how", "psql \\copy FROM csv, one transaction, same table and indexes");
    bench_json_end(&j);
    for (size_t k = 0; k < n_cases; k++) {
        pg_case *c = &cases[k];
        bench_json_begin(&j, "export", "postgres");
        if (!c->ok) {
            bench_json_str(&j, "skipped", "shmbus-export did not finish (see its log)");
            bench_json_end(&j);
            continue;
        }
        bench_json_int(&j, "batch", c->batch);
        bench_json_str(&j, "path", c->dedupe ? "staging" : "direct");
        /* The configured cap and what it gave. */
        bench_json_int(&j, "max_batches_per_commit",
                       c->max_batches ? c->max_batches : default_max_batches);
        bench_json_str(&j, "group", c->max_batches == 1 ? "off" : "on");
        bench_json_num(&j, "commits", bench_median(c->commits, (size_t)c->ok));
        bench_json_int(&j, "rows", (int64_t)n);
        bench_json_int(&j, "rounds", c->ok);
        bench_json_num(&j, "rows_per_s", bench_median(c->rate, (size_t)c->ok));
        bench_json_num(&j, "baseline_rows_per_s", base);
        bench_json_num(&j, "ratio", bench_median(c->ratio, (size_t)c->ok));
        bench_json_num(&j, "exporter_cpu_s", bench_median(c->cpu, (size_t)c->ok));
        bench_json_str(&j, "baseline", "baseline_psql_copy");
        bench_json_end(&j);
    }
    stop_child(pg_pid, SIGINT);
}

/* ----------------------------------------------------------------- mqtt */

static const char *mosquitto_exe(void)
{
    static const char *const paths[] = {"/usr/sbin/mosquitto", "/usr/bin/mosquitto", NULL};
    for (int i = 0; paths[i]; i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

/* Runs mosquitto_pub -l -q 1 on the lines of `lines` and returns the
 * seconds until the broker acknowledged all n of them (*acked receives how
 * many were). stdin stays open until then: mosquitto_pub 2.0.11 disconnects
 * at end of input with messages still queued (it acknowledged about a third
 * of 100 000 lines here), so timing the process would time a partial run.
 * -d makes it print one line per PUBACK, which is how we count. It reads
 * stdin through stdio but waits on the descriptor, so the last lines would
 * sit in its buffer: PAD_LINES more lines follow the n (their PUBACKs come
 * after the n counted ones). */
static double mosquitto_pub_run(const char *port, const char *window, const char *lines,
                                uint64_t n, uint64_t *acked)
{
    *acked = 0;
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0)
        return -1;
    char *argv[] = {"mosquitto_pub", "-d", "-h", "127.0.0.1", "-p", (char *)port, "-q", "1",
                    "-t", "bench/baseline", "-l", window ? "-M" : NULL, (char *)window, NULL};
    int64_t t0 = bench_now_ns();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(out[1], 2);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    if (pid < 0) {
        close(in[1]);
        close(out[0]);
        return -1;
    }
    if (n_children < MAX_CHILDREN)
        children[n_children++] = pid;
    fcntl(in[1], F_SETFL, O_NONBLOCK);
    FILE *src = fopen(lines, "r");
    static char chunk[1 << 16], text[1 << 16];
    size_t chunk_len = 0, chunk_pos = 0, text_len = 0;
    bool src_done = !src;
    int pad_left = PAD_LINES;
    int64_t done_ns = 0, deadline = t0 + 120 * (int64_t)1000000000;
    while (*acked < n && bench_now_ns() < deadline) {
        if (!src_done && chunk_pos == chunk_len) {
            chunk_len = fread(chunk, 1, sizeof chunk, src);
            chunk_pos = 0;
            src_done = chunk_len == 0;
        }
        if (src_done && chunk_pos == chunk_len && pad_left > 0) {
            chunk_len = 0;
            for (; pad_left > 0 && chunk_len + 128 < sizeof chunk; pad_left--)
                chunk_len += (size_t)snprintf(chunk + chunk_len, sizeof chunk - chunk_len,
                                              "{\"pad\":%d}\n", pad_left);
            chunk_pos = 0;
        }
        struct pollfd p[2] = {{.fd = out[0], .events = POLLIN},
                              {.fd = in[1], .events = chunk_pos < chunk_len ? POLLOUT : 0}};
        if (poll(p, 2, 1000) < 0 && errno != EINTR)
            break;
        if (p[1].revents & POLLOUT) {
            ssize_t w = write(in[1], chunk + chunk_pos, chunk_len - chunk_pos);
            if (w > 0)
                chunk_pos += (size_t)w;
        }
        if (p[0].revents & (POLLIN | POLLHUP)) {
            ssize_t r = read(out[0], text + text_len, sizeof text - text_len - 1);
            if (r <= 0)
                break; /* it exited */
            text_len += (size_t)r;
            text[text_len] = '\0';
            char *line = text, *nl;
            while ((nl = strchr(line, '\n')) != NULL) {
                if (strstr(line, "received PUBACK") && strstr(line, "received PUBACK") < nl)
                    (*acked)++;
                line = nl + 1;
            }
            text_len = strlen(line);
            memmove(text, line, text_len + 1);
        }
    }
    done_ns = bench_now_ns();
    if (src)
        fclose(src);
    close(in[1]); /* end of input: it disconnects and exits */
    close(out[0]);
    int st;
    waitpid(pid, &st, 0);
    forget_child(pid);
    return (double)(done_ns - t0) / 1e9;
}

static void bench_mqtt(bool quick)
{
    const char *exe = mosquitto_exe();
    if (!exe || access("/usr/bin/mosquitto_pub", X_OK) != 0) {
        skip_line("mqtt", "mosquitto or mosquitto_pub is not installed");
        skip_line("baseline_mosquitto_pub", "mosquitto or mosquitto_pub is not installed");
        return;
    }
    int port = free_port();
    char conf[512], text[512], log[512];
    path_in(conf, sizeof conf, "mosquitto.conf");
    path_in(log, sizeof log, "mosquitto.log");
    snprintf(text, sizeof text,
             "listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
             "max_queued_messages 0\n",
             port);
    write_file(conf, text);
    char *argv[] = {(char *)exe, "-c", conf, NULL};
    pid_t broker = start(argv, log, NULL, true);
    bool up = false;
    for (int i = 0; i < 200 && !up; i++) {
        up = tcp_open(port);
        if (!up)
            usleep(25000);
    }
    if (!up) {
        skip_line("mqtt", "mosquitto did not start");
        stop_child(broker, SIGKILL);
        return;
    }
    uint64_t n = quick ? 10000 : 100000;
    int rounds = quick ? 1 : BENCH_MAX_ROUNDS;

    /* The payloads the exporter will publish, for mosquitto_pub -l. */
    char lines[512];
    path_in(lines, sizeof lines, "payloads.txt");
    FILE *f = fopen(lines, "w");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    export_tag tag = {.known = true, .data_type = "FLOAT32"};
    snprintf(tag.unit, sizeof tag.unit, "degC");
    for (uint64_t i = 0; f && i < n; i++) {
        shm_tag_value v;
        make_value(1795000000000000000ull + i, t + (int64_t)i * 1000, &v);
        export_row r = {.seq = v.sequence, .time_ns = v.timestamp_ns, .tag_id = v.tag_id,
                        .device_id = v.device_id, .value = v.value, .raw = v.raw,
                        .quality = v.quality};
        char payload[MQTT_PAYLOAD_MAX];
        if (mqtt_format_payload(&r, &tag, payload, sizeof payload) > 0)
            fprintf(f, "%s\n", payload);
    }
    if (f)
        fclose(f);
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    group_create("export-mqtt");
    char mqtt_yaml[512], yaml[1024];
    path_in(mqtt_yaml, sizeof mqtt_yaml, "mqtt.yaml");
    snprintf(yaml, sizeof yaml,
             "segment: {name: %s}\npaths: {data_dir: %s/data, run_dir: %s}\n"
             "export:\n  mqtt:\n    host: 127.0.0.1\n    port: %d\n    client_id: bench\n"
             "    prefix: bench\n    qos: 1\n    batch_records: 500\n    batch_age_ms: 50\n",
             segname, workdir, workdir, port);
    write_file(mqtt_yaml, yaml);

    /* Rounds interleave both baselines and the exporter; each round's
     * ratio is against the faster baseline of that round. */
    const char *windows[] = {NULL, "500"};
    double base[2][BENCH_MAX_ROUNDS], rate[BENCH_MAX_ROUNDS], ratio[BENCH_MAX_ROUNDS],
        cpu[BENCH_MAX_ROUNDS];
    uint64_t acked_min[2] = {n, n};
    int ok = 0;
    for (int r = 0; r < rounds; r++) {
        for (int w = 0; w < 2; w++) {
            uint64_t acked = 0;
            double secs = mosquitto_pub_run(portstr, windows[w], lines, n, &acked);
            base[w][r] = secs > 0 ? (double)acked / secs : 0;
            acked_min[w] = acked < acked_min[w] ? acked : acked_min[w];
        }
        export_run run;
        if (timed_export("mqtt", "export-mqtt", mqtt_yaml, "bench-mqtt", n, NULL, NULL, &run) != 0)
            continue;
        double best = base[0][r] > base[1][r] ? base[0][r] : base[1][r];
        rate[ok] = (double)n / run.secs;
        ratio[ok] = best > 0 ? rate[ok] / best : 0;
        cpu[ok++] = run.cpu_s;
    }
    double base_med[2];
    bench_json j;
    for (int w = 0; w < 2; w++) {
        base_med[w] = bench_median(base[w], (size_t)rounds);
        bench_json_begin(&j, "export", "baseline_mosquitto_pub");
        bench_json_int(&j, "messages", (int64_t)n);
        bench_json_int(&j, "rounds", rounds);
        bench_json_int(&j, "acknowledged", (int64_t)acked_min[w]);
        bench_json_num(&j, "messages_per_s", base_med[w]);
        bench_json_int(&j, "max_inflight", windows[w] ? 500 : 20);
        bench_json_str(&j, "how", windows[w] ? "mosquitto_pub -d -l -q 1 -M 500, stdin open until "
                                               "every PUBACK"
                                             : "mosquitto_pub -d -l -q 1 (default window), stdin "
                                               "open until every PUBACK");
        bench_json_end(&j);
        if (acked_min[w] != n)
            failures++;
    }
    bench_json_begin(&j, "export", "mqtt");
    if (!ok) {
        bench_json_str(&j, "skipped", "shmbus-export did not finish (see its log)");
    } else {
        bench_json_int(&j, "qos", 1);
        bench_json_int(&j, "batch", 500);
        bench_json_int(&j, "messages", (int64_t)n);
        bench_json_int(&j, "rounds", ok);
        bench_json_num(&j, "messages_per_s", bench_median(rate, (size_t)ok));
        bench_json_num(&j, "baseline_messages_per_s",
                       base_med[0] > base_med[1] ? base_med[0] : base_med[1]);
        bench_json_num(&j, "ratio", bench_median(ratio, (size_t)ok));
        bench_json_num(&j, "exporter_cpu_s", bench_median(cpu, (size_t)ok));
        bench_json_str(&j, "baseline", "baseline_mosquitto_pub, the faster window of each round");
    }
    bench_json_end(&j);
    stop_child(broker, SIGTERM);
}

/* ----------------------------------------------------------------- main */

int bench_export(int argc, char **argv)
{
    bool quick = bench_has_flag(argc, argv, "--quick");
    const char *only = bench_flag_value(argc, argv, "--case");
    snprintf(workdir, sizeof workdir, "%s/shmbus-bench-export-XXXXXX",
             getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(workdir)) {
        perror("mkdtemp");
        return 1;
    }
    atexit(remove_workdir);
    signal(SIGINT, exit);
    signal(SIGTERM, exit);
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("nobody");
        if (pw) {
            drop_privileges = true;
            run_uid = pw->pw_uid;
            run_gid = pw->pw_gid;
            if (chown(workdir, run_uid, run_gid) != 0)
                perror("chown");
        }
    }
    chmod(workdir, 0755);
    if (ring_setup(quick ? 131072 : 524288) != 0) {
        fprintf(stderr, "bench export: segment: %s\n", shm_last_error());
        return 1;
    }
    if (!only || strcmp(only, "postgres") == 0)
        bench_postgres(quick);
    if (!only || strcmp(only, "mqtt") == 0)
        bench_mqtt(quick);
    shm_producer_close(&producer);
    shm_segment_close(&seg);
    return failures ? 1 : 0;
}
