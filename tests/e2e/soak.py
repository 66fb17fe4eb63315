#!/usr/bin/env python3
"""soak.py -- the whole group under supervisord for a long run at full rate
against shmbus-sim, resident memory of every process sampled. Started by
soak.sh (see README.md); not a ctest test.

    soak.py [--minutes 10] [--sample-s 10] [--devices 4] [--tags 1000]
            [--interval-ms 1] [--writers 2] [--warmup-s 60]

Every --sample-s it prints one line: records put per second over the
interval, the writer group's lag, the pressure level, and each process's
resident memory (VmRSS) in MB. At the end the poller is stopped, the
consumers drain, and it prints per process the resident memory (VmRSS; and
"own" = RssAnon + RssFile, i.e. without the shared ring) after the warm-up,
at its highest and at the end, with the growth after the warm-up as a
least-squares slope in MB/min; then the totals, and checks that nothing was
lost: every record put was stored (writer_points_total) and seen by stats,
no group lost one, no process restarted or exited uncleanly.
Exit status 0 when these hold, 1 otherwise.
"""
import argparse
import json
import os
import time

import e2elib as e
from e2elib import check, log

KINDS = [("float32", 2), ("uint16", 1), ("int32", 2), ("int16", 1)]


def sim_devices(n_devices, n_tags, interval_ms):
    text, base = "", e.pl.free_ports(n_devices)
    for d in range(n_devices):
        text += ("  - name: sim%d\n    transport: tcp\n    host: 127.0.0.1\n    port: %d\n"
                 "    address_base: 0\n    response_timeout_ms: 2000\n"
                 "    poll_groups: [{name: fast, interval_ms: %d}]\n    tags:\n"
                 % (d, base + d, interval_ms))
        addr = 0
        for i in range(n_tags):
            dtype, width = KINDS[i % len(KINDS)]
            text += ("      - {name: sim%d.t%d, register: holding, address: %d, type: %s}\n"
                     % (d, i, addr, dtype))
            addr += width
    return text


def memory(pid):
    """(VmRSS, RssAnon + RssFile) in MB, or None once the process is gone."""
    fields = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "RssAnon", "RssFile"):
                    fields[k] = int(v.split()[0]) / 1024.0
    except OSError:
        return None
    return fields.get("VmRSS", 0.0), fields.get("RssAnon", 0.0) + fields.get("RssFile", 0.0)


def slope_per_min(samples):
    """Least-squares slope of [(t_s, mb)] in MB/min."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mt = sum(t for t, _ in samples) / n
    mv = sum(v for _, v in samples) / n
    den = sum((t - mt) ** 2 for t, _ in samples)
    return 60.0 * sum((t - mt) * (v - mv) for t, v in samples) / den if den else 0.0


def counters(st, prefix):
    return sum(c["value"] for c in st["counters"] if c["name"].startswith(prefix))


def short(proc):
    return proc.split(":")[-1].replace("shmbus-", "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--sample-s", type=float, default=10)
    ap.add_argument("--devices", type=int, default=4)
    ap.add_argument("--tags", type=int, default=1000)
    ap.add_argument("--interval-ms", type=int, default=1)
    ap.add_argument("--writers", type=int, default=2)
    ap.add_argument("--warmup-s", type=float, default=60)
    args = ap.parse_args()

    g = e.Group("soak", segment="  slot_count: 262144\n  policy: backpressure\n",
                writers=args.writers,
                extra="writer:\n  retention_bytes: 2GiB\n",
                sim_devices=sim_devices(args.devices, args.tags, args.interval_ms))
    g.run(lambda: soak(g, args))


def soak(g, args):
    procs = {p: pid for p, (state, pid) in g.status().items() if state == "RUNNING"}
    log("soak for %.1f min: %d devices x %d tags every %d ms, %d writers; processes: %s"
        % (args.minutes, args.devices, args.tags, args.interval_ms, args.writers,
           ", ".join("%s %d" % (short(p), pid) for p, pid in sorted(procs.items()))))
    rss = {p: [] for p in procs}  # [(t, vmrss, own)]
    t0 = time.time()
    st0 = g.shmstat()
    last_put, last_t, max_lag, max_level = st0["ring"]["records_put"], t0, 0, 0
    end = t0 + args.minutes * 60
    due = t0
    while time.time() < end:
        due = min(due + args.sample_s, end)  # on schedule, whatever a sample takes
        time.sleep(max(0.0, due - time.time()))
        now = time.time()
        st = g.shmstat()
        put = st["ring"]["records_put"]
        lag = max(x["lag"] for x in st["groups"])
        max_lag, max_level = max(max_lag, lag), max(max_level, st["ring"]["pressure_level"])
        line = []
        for p, pid in procs.items():
            m = memory(pid)
            check(m is not None, "%s (pid %d) is gone: %r" % (p, pid, g.status()))
            rss[p].append((now - t0, m[0], m[1]))
            line.append("%s %.1f" % (short(p), m[0]))
        log("%5.0f s  %9.0f records/s  lag %7d  pressure %d  RSS MB: %s"
            % (now - t0, (put - last_put) / (now - last_t), lag, st["ring"]["pressure_level"],
               ", ".join(line)))
        last_put, last_t = put, now
    elapsed = time.time() - t0
    put_total = g.records_put() - st0["ring"]["records_put"]
    g.ctl("stop", e.POLLER)
    g.wait_drained("writer", timeout=300)
    g.wait_drained("stats", timeout=300)
    st = g.shmstat()

    print("\n%-10s %7s | %27s | %27s | %s" % ("process", "pid", "VmRSS MB: warm  max  end",
                                              "own MB: warm  max  end", "growth MB/min (own)"))
    summary = {"records_put": put_total, "seconds": round(elapsed, 1),
               "records_per_s": round(put_total / elapsed), "processes": {}}
    for p, samples in sorted(rss.items()):
        warm = [s for s in samples if s[0] >= args.warmup_s] or samples[-1:]
        growth = slope_per_min([(t, own) for t, _, own in warm])
        print("%-10s %7d | %9.1f %6.1f %6.1f    | %9.1f %6.1f %6.1f    | %+.3f"
              % (short(p), procs[p], warm[0][1], max(s[1] for s in samples), samples[-1][1],
                 warm[0][2], max(s[2] for s in samples), samples[-1][2], growth))
        summary["processes"][short(p)] = {
            "vmrss_mb_warm": round(warm[0][1], 1), "vmrss_mb_max": round(max(s[1] for s in samples), 1),
            "vmrss_mb_end": round(samples[-1][1], 1), "own_mb_end": round(samples[-1][2], 1),
            "own_growth_mb_per_min": round(growth, 3)}
    stored = counters(st, "writer_points_total")
    wg = [x for x in st["groups"] if x["name"] == "writer"][0]
    sg = [x for x in st["groups"] if x["name"] == "stats"][0]
    summary.update({
        "writer_points": stored, "stats_consumed": sg["consumed"], "max_lag": max_lag,
        "max_pressure_level": max_level, "full_rejections": st["ring"]["full_rejections"],
        "poller_dropped": counters(st, "shmbus_poller_records_dropped_total"),
        "poller_overruns": counters(st, "shmbus_poller_overruns_total"),
        "leak_warnings": counters(st, "controller_leak_warnings_total"),
        "chunks_deleted": counters(st, "writer_chunks_deleted_total"),
        "groups": {x["name"]: {k: x[k] for k in ("consumed", "lost", "invalid", "padded",
                                                 "redelivered")} for x in st["groups"]}})
    print("\nrecords put %d in %.0f s (%.0f/s); stored %d; stats saw %d; max lag %d; "
          "max pressure level %d; full rejections %d; poller dropped %d, overruns %d; "
          "leak warnings %d; chunks deleted by retention %d"
          % (put_total, elapsed, put_total / elapsed, stored, sg["consumed"], max_lag, max_level,
             summary["full_rejections"], summary["poller_dropped"], summary["poller_overruns"],
             summary["leak_warnings"], summary["chunks_deleted"]))
    with open(os.path.join(g.dir, "log", "controller.log"), errors="replace") as f:
        for line in f:
            if "leak watch" in line:
                print(line.rstrip())
    print("SUMMARY " + json.dumps(summary, sort_keys=True))
    total = st["ring"]["records_put"]
    if stored != total or sg["consumed"] != total:
        print("ring %s\ngroups %s\nstats status %s" % (json.dumps(st["ring"]),
              json.dumps(st["groups"]), json.dumps(g.stats({"op": "status"}))))
        time.sleep(3)
        print("3 s later: groups %s" % json.dumps(g.shmstat()["groups"]))
    check(stored == total, "stored %d of %d records put" % (stored, total))
    check(sg["consumed"] == total, "stats consumed %d of %d" % (sg["consumed"], total))
    check(wg["lost"] == 0 and sg["lost"] == 0, "a group lost records: %r" % st["groups"])
    restarted = {p: pid for p, (state, pid) in g.status().items() if p in procs and pid
                 and pid != procs[p]}
    check(not restarted, "processes restarted during the soak: %r" % restarted)


if __name__ == "__main__":
    main()
