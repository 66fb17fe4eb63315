/*
 * t_query.c — shmbus-query as a user runs it, on a data directory written
 * through the chunk library by two writers (one chunk sealed, one not, and
 * one record stored by both): tags by name and by id, ISO 8601 and epoch
 * ranges, CSV and JSON, records stored twice shown once, --info, --list,
 * --verify on a clean and on a damaged directory (exit 1, file and offset
 * named), a foreign file and a newer-format chunk named on stderr, no
 * progress output when stderr is not a terminal, usage errors.
 */
#include "shmtest.h"
#include "wtest.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define TAGS 8u
#define T0 1767225600000000000ll /* 2026-01-01T00:00:00Z */

static char data[256], dir[600];
static size_t npts;

struct run {
    int status;
    char *out, *err;
};

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = calloc((size_t)n + 1, 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n)
        s[0] = 0;
    fclose(f);
    return s;
}

/* Runs shmbus-query with args (a shell word list, no quoting needed). */
static struct run query(const char *args)
{
    char bin[512], cmd[2048], out[700], err[700];
    shmtest_bin(bin, sizeof bin, "shmbus-query");
    snprintf(out, sizeof out, "%s/q.out", data);
    snprintf(err, sizeof err, "%s/q.err", data);
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>%s", bin, args, out, err);
    int st = system(cmd);
    struct run r = {WIFEXITED(st) ? WEXITSTATUS(st) : -1, slurp(out), slurp(err)};
    return r;
}

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

static int count_lines(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static int setup(void **state)
{
    (void)state;
    shmtest_tmpdir(data, sizeof data);
    snprintf(dir, sizeof dir, "%s/chunks", data);
    mkdir(dir, 0770);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    uint64_t seq = 100;
    int64_t t = T0;
    shm_tag_value *all = NULL;
    /* writer a: 10 polls sealed, then writer b: 10 polls unsealed */
    assert_int_equal(wtest_write_open_chunk(dfd, "a", 1, 2, 5, TAGS, &seq, &t, &all, &npts), 0);
    chunk_seal_report rep;
    assert_int_equal(chunk_seal(dfd, "a.0000000001.open", 0, &rep), 0);
    assert_int_equal(wtest_write_open_chunk(dfd, "b", 1, 2, 5, TAGS, &seq, &t, &all, &npts), 0);
    /* writer b also stored a batch writer a had written (re-delivery) */
    chunk_builder *b;
    chunk_builder_new(&b);
    for (size_t i = 0; i < 4; i++)
        chunk_builder_add(b, &all[i]);
    uint8_t buf[4096];
    size_t len;
    assert_int_equal(chunk_builder_encode(b, buf, sizeof buf, &len, NULL), 0);
    chunk_builder_free(&b);
    char name[64];
    chunk_name_format(name, sizeof name, "b", 2, CHUNK_NAME_OPEN);
    chunk_file_header h = {.version = CHUNK_FORMAT_VERSION, .chunk_no = 2, .writer = "b"};
    int fd = chunk_create(dfd, &h, name, sizeof name);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, buf, len, CHUNK_FILE_HEADER_SIZE), (ssize_t)len);
    close(fd);
    chunk_catalog_entry cat[TAGS];
    char names[TAGS][16];
    for (uint32_t i = 0; i < TAGS; i++) {
        snprintf(names[i], sizeof names[i], "boiler.t%u", i);
        cat[i] = (chunk_catalog_entry){.id = i, .device_id = i / 4, .name = names[i],
                                       .device = "plc", .unit = "degC", .data_type = SHM_DT_FLOAT64};
    }
    assert_int_equal(chunk_catalog_write(dfd, "a", "plant", cat, TAGS), 0);
    close(dfd);
    free(all);
    return 0;
}

static void test_read_tag(void **state)
{
    (void)state;
    char args[1024];
    /* 20 polls, tag 3: 20 points, the one stored twice shown once */
    snprintf(args, sizeof args, "--data %s --tag boiler.t3", data);
    struct run r = query(args);
    assert_int_equal(r.status, 0);
    assert_int_equal(count_lines(r.out, "\n"), 21);
    assert_non_null(strstr(r.out, "time,tag,value,quality,exception,seq\n"));
    assert_int_equal(count_lines(r.out, ",boiler.t3,"), 20);
    assert_int_equal(count_lines(r.out, "2026-01-01T00:00:0"), 10);
    assert_string_equal(r.err, "");
    run_free(&r);
    /* tag 0 by id, over the chunk directory itself: the duplicated record once */
    snprintf(args, sizeof args, "--data %s --tag 0", dir);
    r = query(args);
    assert_int_equal(r.status, 0);
    assert_int_equal(count_lines(r.out, ",boiler.t0,"), 20);
    run_free(&r);
    /* a time range, ISO 8601 with a zone, and epoch ns */
    snprintf(args, sizeof args,
             "--data %s --tag boiler.t3 --from 2026-01-01T01:00:02+01:00 --to %lld", data,
             (long long)(T0 + 4999999999ll));
    r = query(args);
    assert_int_equal(r.status, 0);
    assert_int_equal(count_lines(r.out, ",boiler.t3,"), 3); /* polls at 2, 3, 4 s */
    run_free(&r);
    /* JSON lines */
    snprintf(args, sizeof args, "--data %s --tag boiler.t5 --format json --to 2026-01-01T00:00:01.5Z",
             data);
    r = query(args);
    assert_int_equal(r.status, 0);
    assert_int_equal(count_lines(r.out, "{\"time\":\"2026-01-01T00:00:0"), 2);
    assert_int_equal(count_lines(r.out, "\"tag\":\"boiler.t5\",\"value\":"), 2);
    assert_int_equal(count_lines(r.out, "\"quality\":"), 2);
    run_free(&r);
    /* several tags */
    snprintf(args, sizeof args, "--data %s --tag 1 --tag boiler.t2", data);
    r = query(args);
    assert_int_equal(count_lines(r.out, ",boiler.t1,"), 20);
    assert_int_equal(count_lines(r.out, ",boiler.t2,"), 20);
    run_free(&r);
}

/* On a terminal (script(1) gives it one), the scan shows its progress on
 * stderr; through a pipe it does not (test_verify_and_damage checks that). */
static void test_progress_on_terminal(void **state)
{
    (void)state;
    if (system("command -v script >/dev/null 2>&1") != 0) {
        printf("script(1) not installed; skipped\n");
        skip();
    }
    char bin[512], cmd[2048], out[700];
    shmtest_bin(bin, sizeof bin, "shmbus-query");
    snprintf(out, sizeof out, "%s/tty.out", data);
    snprintf(cmd, sizeof cmd, "script -qec '%s --data %s --info' /dev/null > %s 2>&1", bin, data, out);
    assert_int_equal(system(cmd), 0);
    char *text = slurp(out);
    assert_non_null(strstr(text, "scanning 3/3 chunk files"));
    free(text);
}

static void test_usage_errors(void **state)
{
    (void)state;
    char args[1024];
    snprintf(args, sizeof args, "--data %s --tag no.such.tag", data);
    struct run r = query(args);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "unknown tag 'no.such.tag'"));
    run_free(&r);
    snprintf(args, sizeof args, "--data %s --tag 1 --from yesterday", data);
    r = query(args);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--from 'yesterday'"));
    run_free(&r);
    r = query("--tag 1");
    assert_int_equal(r.status, 2);
    run_free(&r);
    snprintf(args, sizeof args, "--data %s/nonexistent --tag 1", data);
    r = query(args);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "nonexistent"));
    run_free(&r);
}

static void test_info_list(void **state)
{
    (void)state;
    char args[1024];
    snprintf(args, sizeof args, "--data %s --info", data);
    struct run r = query(args);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "\na "));
    assert_non_null(strstr(r.out, "\nb "));
    assert_non_null(strstr(r.out, "2026-01-01T00:00:00"));
    run_free(&r);
    snprintf(args, sizeof args, "--data %s --info --format json", data);
    r = query(args);
    assert_non_null(strstr(r.out, "\"writer\":\"a\",\"chunks\":1,\"sealed\":1"));
    assert_non_null(strstr(r.out, "\"writer\":\"b\",\"chunks\":2,\"sealed\":0,\"unsealed\":2"));
    run_free(&r);
    snprintf(args, sizeof args, "--data %s --list", data);
    r = query(args);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "5,boiler.t5,plc,degC,20\n"));
    assert_non_null(strstr(r.out, "0,boiler.t0,plc,degC,21\n")); /* stored: 21, read: 20 */
    run_free(&r);
}

static void test_verify_and_damage(void **state)
{
    (void)state;
    char args[1024], path[700];
    snprintf(args, sizeof args, "--data %s --verify", data);
    struct run r = query(args);
    assert_int_equal(r.status, 0);
    assert_int_equal(count_lines(r.out, ": ok, "), 3);
    assert_string_equal(r.err, ""); /* no progress: stderr is not a terminal */
    run_free(&r);

    /* an unsealed chunk whose last write is still in progress (or whose
     * writer died): a note, not damage */
    snprintf(path, sizeof path, "%s/b.0000000001.open", dir);
    struct stat st0;
    assert_int_equal(stat(path, &st0), 0);
    int tfd = open(path, O_RDWR);
    uint8_t partial[40];
    assert_int_equal(pread(tfd, partial, sizeof partial, CHUNK_FILE_HEADER_SIZE), (ssize_t)sizeof partial);
    assert_int_equal(pwrite(tfd, partial, sizeof partial, st0.st_size), (ssize_t)sizeof partial);
    snprintf(args, sizeof args, "--data %s --tag 3", data);
    r = query(args);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "incomplete tail of 40 bytes in an unsealed chunk"));
    assert_int_equal(count_lines(r.out, ",boiler.t3,"), 20);
    run_free(&r);
    snprintf(args, sizeof args, "--data %s --verify", data);
    r = query(args);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "b.0000000001.open: ok, unsealed, 2 blocks, 80 points"));
    assert_non_null(strstr(r.out, "(and an incomplete tail)"));
    run_free(&r);
    assert_int_equal(ftruncate(tfd, st0.st_size), 0);
    close(tfd);

    /* a foreign file and a newer chunk: named on stderr */
    snprintf(path, sizeof path, "%s/README.txt", dir);
    FILE *f = fopen(path, "w");
    fputs("hello\n", f);
    fclose(f);
    chunk_file_header h = {.version = CHUNK_FORMAT_VERSION + 1, .chunk_no = 5, .writer = "c"};
    uint8_t hdr[CHUNK_FILE_HEADER_SIZE];
    chunk_file_header_write(&h, hdr);
    snprintf(path, sizeof path, "%s/c.0000000005.chunk", dir);
    int fd = open(path, O_WRONLY | O_CREAT, 0640);
    assert_int_equal(write(fd, hdr, sizeof hdr), (ssize_t)sizeof hdr);
    close(fd);
    snprintf(args, sizeof args, "--data %s --tag 3", data);
    r = query(args);
    assert_non_null(strstr(r.err, "README.txt: foreign file"));
    assert_non_null(strstr(r.err, "c.0000000005.chunk: chunk format version 2 is newer"));
    assert_int_equal(count_lines(r.out, ",boiler.t3,"), 20); /* the rest is still read */
    assert_int_equal(r.status, 1); /* a chunk could not be read: it may hold the tag */
    run_free(&r);
    unlink(path);

    /* flip a byte inside the sealed chunk's first block */
    snprintf(path, sizeof path, "%s/a.0000000001.chunk", dir);
    fd = open(path, O_RDWR);
    uint8_t byte;
    off_t at = CHUNK_FILE_HEADER_SIZE + CHUNK_BLOCK_HEADER_SIZE + 20;
    assert_int_equal(pread(fd, &byte, 1, at), 1);
    byte ^= 0x40;
    assert_int_equal(pwrite(fd, &byte, 1, at), 1);
    close(fd);
    snprintf(args, sizeof args, "--data %s --verify", data);
    r = query(args);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.out, "a.0000000001.chunk: DAMAGED"));
    char expect[800];
    snprintf(expect, sizeof expect, "a.0000000001.chunk: offset %u:", CHUNK_FILE_HEADER_SIZE);
    assert_non_null(strstr(r.err, expect));
    run_free(&r);
    snprintf(args, sizeof args, "--data %s --tag 0 --tag 1 --tag 2 --tag 3 --tag 4 --tag 5 --tag 6 --tag 7", data);
    r = query(args);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "a.0000000001.chunk: offset 128: block payload CRC mismatch"));
    assert_non_null(strstr(r.err, "points of tag"));
    /* one group's block of writer a is lost; everything else is read */
    int lines = count_lines(r.out, "\n") - 1;
    assert_true(lines >= 8 * 20 - 4 * 10 && lines < 8 * 20);
    run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_tag),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_progress_on_terminal),
        cmocka_unit_test(test_info_list),
        cmocka_unit_test(test_verify_and_damage),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
