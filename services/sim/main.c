/*
 * main.c — shmbus-sim: serves the devices of a group configuration as
 * Modbus TCP slaves whose registers follow deterministic generators, so
 * shmbus runs (and is tested and benchmarked) with no plant attached.
 * See --help and README.md.
 */
#include "config.h"
#include "log.h"
#include "sim_server.h"
#include "simgen.h"
#include "tagcodec.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SELECTED 256

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: shmbus-sim --config FILE [options]\n"
            "\n"
            "Serves every tcp device of the group configuration FILE as a Modbus TCP slave on\n"
            "its port (host is ignored; --bind sets the address). Each tag's registers hold\n"
            "its `sim:` generator (ramp, sine, counter, random_walk, toggle, constant; default\n"
            "by type) at the time of the request, encoded in the tag's type, byte order,\n"
            "scale and offset exactly as shmbus-poller decodes them. Requests for a unit id\n"
            "with no tags are not answered; reads outside a unit's tables get exception 2.\n"
            "\n"
            "options:\n"
            "  --config FILE       group configuration (required)\n"
            "  --device NAME       serve only this device (repeatable)\n"
            "  --bind ADDR         listen address (default 127.0.0.1)\n"
            "  --port N            serve the (single) selected device on port N instead\n"
            "  --port-base P       with --instances: ignore the configured ports\n"
            "  --instances N       serve N copies of each selected device; copy i of device\n"
            "                      d (d-th selected) listens on P + i * devices + d\n"
            "  --time MS           frozen mode: serve the values at MS (ms since the epoch)\n"
            "  --delay-ms N        answer every request N ms late\n"
            "  --threads N         poll-loop threads sharing the listeners (default 1)\n"
            "  --dump              print each tag's registers at --time (or now) and exit\n"
            "  --help              this text\n"
            "\n"
            "Deterministic: a register read at instant t (ms) holds f(t) for the generator\n"
            "definitions in services/common/simgen.h; with --time it never changes.\n");
}

typedef struct thread_arg {
    sim_listener **listeners;
    size_t n;
    sim_options opts;
    int status;
} thread_arg;

static void *thread_main(void *p)
{
    thread_arg *a = p;
    a->status = sim_serve(a->listeners, a->n, &a->opts);
    return NULL;
}

static void dump_device(const config_device *d, int64_t t_ms)
{
    for (size_t i = 0; i < d->n_tags; i++) {
        const config_tag *t = &d->tags[i];
        uint16_t regs[4] = {0};
        printf("{\"device\":\"%s\",\"tag\":\"%s\",\"unit\":%u,\"register\":\"%s\",\"address\":%u",
               d->name, t->name, t->unit_id, config_register_name(t->reg), t->protocol_address);
        if (t->reg == CONFIG_REG_COIL || t->reg == CONFIG_REG_DISCRETE) {
            printf(",\"bit\":%d}\n", simgen_value(&t->sim, t_ms) != 0.0);
            continue;
        }
        if (t->type == CONFIG_T_STRING)
            tagcodec_encode_text(t, t->sim.text, regs);
        else
            tagcodec_encode_registers(t, simgen_value(&t->sim, t_ms), regs);
        printf(",\"registers\":[");
        for (unsigned k = 0; k < t->registers; k++)
            printf("%s%u", k ? "," : "", regs[k]);
        printf("]}\n");
    }
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || end == s || v > max || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    log_init("sim");
    const char *config_path = NULL, *bind_addr = "127.0.0.1";
    const char *selected[MAX_SELECTED];
    size_t n_selected = 0;
    unsigned long port = 0, port_base = 0, instances = 1, threads = 1, delay_ms = 0;
    long long frozen = 0;
    int dump = 0;
    static const struct option long_opts[] = {
        {"config", required_argument, 0, 'c'},   {"device", required_argument, 0, 'd'},
        {"bind", required_argument, 0, 'b'},     {"port", required_argument, 0, 'p'},
        {"port-base", required_argument, 0, 'P'}, {"instances", required_argument, 0, 'n'},
        {"time", required_argument, 0, 't'},     {"delay-ms", required_argument, 0, 'D'},
        {"threads", required_argument, 0, 'T'},  {"dump", no_argument, 0, 'u'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "c:d:b:p:h", long_opts, NULL)) != -1) {
        unsigned long v;
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'd':
            if (n_selected == MAX_SELECTED) {
                fprintf(stderr, "shmbus-sim: at most %d --device options\n", MAX_SELECTED);
                return 2;
            }
            selected[n_selected++] = optarg;
            break;
        case 'b':
            bind_addr = optarg;
            break;
        case 'p':
        case 'P':
            if (parse_uint(optarg, 65535, &v) < 0 || v == 0) {
                fprintf(stderr, "shmbus-sim: bad port '%s' (1..65535)\n", optarg);
                return 2;
            }
            *(opt == 'p' ? &port : &port_base) = v;
            break;
        case 'n':
            if (parse_uint(optarg, 10000, &instances) < 0 || instances == 0) {
                fprintf(stderr, "shmbus-sim: bad --instances '%s' (1..10000)\n", optarg);
                return 2;
            }
            break;
        case 'T':
            if (parse_uint(optarg, 64, &threads) < 0 || threads == 0) {
                fprintf(stderr, "shmbus-sim: bad --threads '%s' (1..64)\n", optarg);
                return 2;
            }
            break;
        case 'D':
            if (parse_uint(optarg, 600000, &delay_ms) < 0) {
                fprintf(stderr, "shmbus-sim: bad --delay-ms '%s'\n", optarg);
                return 2;
            }
            break;
        case 't': {
            char *end;
            errno = 0;
            frozen = strtoll(optarg, &end, 10);
            if (errno || *end || frozen <= 0) {
                fprintf(stderr, "shmbus-sim: bad --time '%s' (ms since the epoch, > 0)\n",
                        optarg);
                return 2;
            }
            break;
        }
        case 'u':
            dump = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!config_path || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (instances > 1 && !port_base) {
        fprintf(stderr, "shmbus-sim: --instances needs --port-base\n");
        return 2;
    }

    char err[8192];
    config *cfg = NULL;
    if (config_load(config_path, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    /* The devices to serve: selected by name (or every tcp device). */
    const config_device *devs[MAX_SELECTED];
    size_t n_devs = 0;
    int status = 1;
    for (size_t i = 0; i < n_selected; i++) {
        const config_device *d = config_find_device(cfg, selected[i]);
        if (!d) {
            fprintf(stderr, "shmbus-sim: %s has no device '%s'\n", config_path, selected[i]);
            goto out_cfg;
        }
        devs[n_devs++] = d;
    }
    for (size_t i = 0; !n_selected && i < cfg->n_devices && n_devs < MAX_SELECTED; i++) {
        if (cfg->devices[i].transport == CONFIG_TCP)
            devs[n_devs++] = &cfg->devices[i];
        else
            log_info("device %s: transport %s is not simulated (tcp only); skipped",
                     cfg->devices[i].name, config_transport_name(cfg->devices[i].transport));
    }
    if (n_devs == 0) {
        fprintf(stderr, "shmbus-sim: %s: no tcp device to serve\n", config_path);
        goto out_cfg;
    }
    if (port && (n_devs != 1 || instances != 1)) {
        fprintf(stderr, "shmbus-sim: --port serves exactly one device (use --device)\n");
        goto out_cfg;
    }
    if (port_base && port_base + instances * n_devs - 1 > 65535) {
        fprintf(stderr, "shmbus-sim: ports %lu.. run past 65535\n", port_base);
        goto out_cfg;
    }
    if (dump) {
        int64_t t = frozen > 0 ? frozen : (int64_t)time(NULL) * 1000;
        for (size_t i = 0; i < n_devs; i++)
            dump_device(devs[i], t);
        status = 0;
        goto out_cfg;
    }

    size_t n_listeners = n_devs * instances;
    sim_listener *listeners = calloc(n_listeners, sizeof *listeners);
    sim_listener **ptrs = calloc(n_listeners, sizeof *ptrs);
    thread_arg *args = calloc(threads, sizeof *args);
    pthread_t *tids = calloc(threads, sizeof *tids);
    size_t opened = 0;
    if (!listeners || !ptrs || !args || !tids) {
        fprintf(stderr, "shmbus-sim: out of memory\n");
        goto out_mem;
    }
    for (size_t i = 0; i < instances; i++) {
        for (size_t d = 0; d < n_devs; d++) {
            unsigned long p = port_base ? port_base + i * n_devs + d : port ? port : devs[d]->port;
            if (sim_listener_open(&listeners[opened], bind_addr, (uint16_t)p, devs[d]) < 0)
                goto out_listeners;
            ptrs[opened] = &listeners[opened];
            opened++;
        }
    }
    for (size_t i = 0; i < n_devs; i++)
        log_info("serving device %s (%zu tags) on %s:%u%s", devs[i]->name, devs[i]->n_tags,
                 bind_addr, listeners[i].port, instances > 1 ? " and further instances" : "");
    if (frozen > 0)
        log_info("frozen at %lld ms since the epoch", frozen);

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (threads > n_listeners)
        threads = n_listeners;
    /* Listener i goes to thread i % threads: contiguous blocks would do as
     * well; interleaving spreads the instances of one device. */
    sim_listener **sorted = calloc(n_listeners, sizeof *sorted);
    if (!sorted)
        goto out_listeners;
    size_t k = 0;
    for (size_t t = 0; t < threads; t++) {
        args[t].listeners = &sorted[k];
        for (size_t i = t; i < n_listeners; i += threads)
            sorted[k++] = ptrs[i];
        args[t].n = (size_t)(&sorted[k] - args[t].listeners);
        args[t].opts = (sim_options){.frozen_ms = frozen, .delay_ms = (uint32_t)delay_ms,
                                     .stop = &stop_flag};
    }
    status = 0;
    size_t started = 0;
    for (size_t t = 1; t < threads; t++) {
        if (pthread_create(&tids[t], NULL, thread_main, &args[t]) != 0) {
            log_error("cannot start thread %zu", t);
            stop_flag = 1;
            status = 1;
            break;
        }
        started = t;
    }
    thread_main(&args[0]);
    for (size_t t = 1; t <= started; t++)
        pthread_join(tids[t], NULL);
    for (size_t t = 0; t < threads; t++)
        if (args[t].status < 0)
            status = 1;
    free(sorted);
    log_info("stopped");
out_listeners:
    if (opened < n_listeners && status == 1)
        log_error("could not open every listener; exiting");
    for (size_t i = 0; i < opened; i++)
        sim_listener_close(&listeners[i]);
out_mem:
    free(listeners);
    free(ptrs);
    free(args);
    free(tids);
out_cfg:
    config_free(&cfg);
    return status;
}
