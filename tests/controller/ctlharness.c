/*
 * ctlharness.c — see ctlharness.h.
 */
#include "ctlharness.h"

#include "shmtest.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void ctlh_init(ctlh *h, const char *prefix, const char *segment_extra, const char *controller_extra)
{
    memset(h, 0, sizeof *h);
    shmtest_tmpdir(h->dir, sizeof h->dir);
    shmtest_segment_name(h->segment, sizeof h->segment, prefix);
    h->port = shmtest_free_port();
    snprintf(h->config, sizeof h->config, "%s/controller.yaml", h->dir);
    snprintf(h->log, sizeof h->log, "%s/controller.log", h->dir);
    FILE *f = fopen(h->config, "w");
    if (!f)
        abort();
    fprintf(f,
            "segment:\n  name: %s\n%s"
            "paths:\n  run_dir: %s/run\n  data_dir: %s/data\n"
            "controller:\n  http: 127.0.0.1:%d\n%s",
            h->segment, segment_extra ? segment_extra : "", h->dir, h->dir, h->port,
            controller_extra ? controller_extra : "");
    fclose(f);
}

struct up_arg {
    ctlh *h;
    bool exited;
};

static int controller_up(void *arg)
{
    struct up_arg *u = arg;
    int st;
    if (waitpid(u->h->pid, &st, WNOHANG) == u->h->pid) {
        u->exited = true;
        return 1;
    }
    /* Up when this very process logged that it runs (the log is appended to
     * across restarts, and a killed predecessor leaves its socket behind). */
    char ready[64];
    snprintf(ready, sizeof ready, "controller[%d] info: running:", (int)u->h->pid);
    return ctlh_log_has(u->h, ready);
}

pid_t ctlh_start(ctlh *h, const char *extra_arg)
{
    char bin[PATH_MAX];
    shmtest_bin(bin, sizeof bin, "shmbus-controller");
    char *argv[] = {bin, "--config", h->config, (char *)extra_arg, NULL};
    h->pid = shmtest_spawn(argv, h->log);
    struct up_arg u = {.h = h};
    if (!shmtest_wait_until(controller_up, &u, 10000) || u.exited) {
        h->pid = -1;
        return -1;
    }
    return h->pid;
}

int ctlh_stop(ctlh *h)
{
    if (h->pid <= 0)
        return -1;
    kill(h->pid, SIGTERM);
    int st = shmtest_wait_pid(h->pid, 10000);
    h->pid = -1;
    return st;
}

struct find_arg {
    const char *name;
    uint64_t value;
};

static int find_counter(void *arg, const char *name, int kind, uint64_t value)
{
    struct find_arg *f = arg;
    (void)kind;
    if (strcmp(name, f->name) == 0) {
        f->value = value;
        return 1;
    }
    return 0;
}

uint64_t ctlh_counter(shm_segment *seg, const char *name)
{
    struct find_arg f = {.name = name, .value = 0};
    shm_counter_foreach(seg, find_counter, &f);
    return f.value;
}

bool ctlh_log_has_from(const ctlh *h, pid_t pid, const char *text)
{
    FILE *f = fopen(h->log, "r");
    if (!f)
        return false;
    char line[4096], who[48] = "";
    if (pid > 0)
        snprintf(who, sizeof who, "controller[%d] ", (int)pid);
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, who) && strstr(line, text);
    fclose(f);
    return found;
}

bool ctlh_log_has(const ctlh *h, const char *text)
{
    return ctlh_log_has_from(h, 0, text);
}
