#!/usr/bin/env python3
"""Memory pressure under supervisord, backpressure policy: the only writer is
stopped with SIGSTOP while two poll groups flow into a small ring -- a few
high-priority tags (priority 0) and many low-priority ones (priority 5, their
own poll group and register table).

- the controller raises the level as the writer group's lag grows: low,
  moderate, high, critical (GET /api/pressure, /metrics transitions) and
  the poller receives each level (its log);
- moderate: the device sees the low-priority group read more slowly;
- high: the device sees no more reads of the low-priority table while the
  high-priority one is still read, and nothing of it reaches the store;
- critical: producers paused, nothing read, and the ring was never full
  (no refused claim: full_rejections 0, nothing dropped by the poller);
- SIGCONT: the writer drains, the level goes back to none, both groups are
  read again, and every record put is in the store exactly once with the
  values the device served.
"""
import calendar
import os
import re
import signal
import time

import e2elib as e
from e2elib import check, log

INTERVAL_MS = 50
LEVELS = ["none", "low", "moderate", "high", "critical"]


def poller_log(g):
    with open(os.path.join(g.dir, "log", "poller.log")) as f:
        return f.read()


def reads(g, table, t0, t1):
    """Times (s) of the device's reads of `table` in [t0, t1)."""
    return [s["t_ns"] / 1e9 for s in g.served()
            if s["table"] == table and t0 <= s["t_ns"] / 1e9 < t1]


def scenario(g):
    g.wait_flowing(1000)
    check(g.api("/api/pressure")["level"] == "none", "pressure before the test: %r"
          % g.api("/api/pressure"))
    writer_pid = g.pid(e.writer(1))
    os.kill(writer_pid, signal.SIGSTOP)
    t_stop = time.time()
    log("writer-1 (pid %d) stopped with SIGSTOP" % writer_pid)
    first_seen = {}

    def level():
        lv = g.api("/api/pressure")["level"]
        first_seen.setdefault(lv, time.time())
        return lv == "critical"
    check(e.wait_until(level, 90, step=0.05), "pressure never reached critical: %r"
          % g.api("/api/pressure"))
    order = sorted(first_seen, key=first_seen.get)
    check([LEVELS.index(x) for x in order] == sorted(LEVELS.index(x) for x in order),
          "levels did not rise in order: %r" % order)
    check("high" in first_seen, "level high never observed: %r" % first_seen)
    log("levels seen after SIGSTOP: %s" % ", ".join("%s +%.1f s" % (x, first_seen[x] - t_stop)
                                                     for x in order))
    p = g.api("/api/pressure")
    check(p["paused"] and p["paused_by_pressure"] and p["source"] == "ring",
          "critical but not paused by ring pressure: %r" % p)
    # Paused: the poller reads nothing more.
    time.sleep(0.5)
    put = g.records_put()
    t_quiet = time.time()
    time.sleep(1.5)
    check(g.records_put() == put, "records still put while paused")
    check(not reads(g, "hr", t_quiet, time.time()) and not reads(g, "ir", t_quiet, time.time()),
          "the device is still read while critical")

    os.kill(writer_pid, signal.SIGCONT)
    t_cont = time.time()
    check(e.wait_until(lambda: g.api("/api/pressure")["level"] == "none", 60, step=0.1),
          "pressure did not recover: %r" % g.api("/api/pressure"))
    log("SIGCONT: level none after %.1f s" % (time.time() - t_cont))
    t_none = time.time()
    if not e.wait_until(lambda: len(reads(g, "ir", t_none, 1e12)) >= 10, 30, step=0.1):
        # Say what else stopped, to tell a stuck poller from a shed group.
        check(False, "the low-priority group is not read again after recovery (reads since "
              "level none: ir %d, hr %d; records put %d; /api/pressure %r)\npoller log tail:\n%s"
              % (len(reads(g, "ir", t_none, 1e12)), len(reads(g, "hr", t_none, 1e12)),
                 g.records_put(), g.api("/api/pressure"), poller_log(g)[-3000:]))
    g.wait_flowing(500)

    # What the poller received, with its own timestamps.
    text = poller_log(g)
    got = {}
    for m in re.finditer(r"^(\S+)Z poller\[\d+\] info: control: pressure (\w+) -> (\w+)",
                         text, re.M):
        stamp = time.strptime(m.group(1)[:19], "%Y-%m-%dT%H:%M:%S")
        got.setdefault(m.group(3), calendar.timegm(stamp) + float("0" + m.group(1)[19:]))
    for lv in ("moderate", "high", "critical", "none"):
        check(lv in got, "the poller never received pressure %s:\n%s" % (lv, text[-2000:]))
    check(re.search(r"control: polling paused", text) and re.search(r"control: polling resumed",
                                                                      text),
          "the poller was not paused and resumed")
    # moderate: the low-priority group runs slower (slow_factor 4).
    span = (got["moderate"] + 0.3, got["high"])
    slow = reads(g, "ir", *span)
    if span[1] - span[0] >= 1.0:
        check(len(slow) >= 2, "moderate: %d low-priority reads in %.1f s"
              % (len(slow), span[1] - span[0]))
        mean = (slow[-1] - slow[0]) / (len(slow) - 1)
        check(mean >= 2.5 * INTERVAL_MS / 1000, "moderate: low-priority reads every %.0f ms"
              % (mean * 1000))
        log("moderate: low-priority group read every %.0f ms (interval %d ms)"
            % (mean * 1000, INTERVAL_MS))
    else:
        log("moderate lasted %.1f s: too short to measure the slower reads"
            % (span[1] - span[0] + 0.3))
    # high: low-priority tags neither read nor published, high-priority ones still are.
    window = (got["high"] + 0.3, got["critical"])
    shed, kept = reads(g, "ir", *window), reads(g, "hr", *window)
    check(window[1] - window[0] > 0.3, "level high lasted only %.2f s" % (window[1] - window[0]))
    check(not shed, "high: the low-priority table was still read %d times" % len(shed))
    check(len(kept) >= 3, "high: the high-priority table was read only %d times in %.1f s"
          % (len(kept), window[1] - window[0]))
    log("high for %.1f s: %d high-priority reads, 0 low-priority" % (window[1] - window[0],
                                                                      len(kept)))

    g.ctl("stop", e.POLLER)
    g.wait_drained("writer")
    points, st = g.check_store()
    check(st["ring"]["full_rejections"] == 0, "claims refused on a full ring: %r" % st["ring"])
    dropped = {c["name"]: c["value"] for c in st["counters"]
               if c["name"].startswith("shmbus_poller_records_dropped_total")}
    check(dropped and not any(dropped.values()), "the poller dropped records: %r" % dropped)
    g.check_served(points)
    low = [t.name for t in g.tags if t.priority > 0]
    stored_lo = [p["time_ns"] / 1e9 for p in points if p["tag"] in low]
    check(not [t for t in stored_lo if window[0] <= t < window[1]],
          "low-priority points stored from the time of level high")


def main():
    tags = (e.table_tags("hi", "hr", 2, "fast", priority=0) +
            e.table_tags("lo", "ir", 30, "bulk", priority=5))
    g = e.Group("pressure", tags, [("fast", INTERVAL_MS), ("bulk", INTERVAL_MS)],
                segment="  slot_count: 4096\n  policy: backpressure\n",
                controller="  check_interval_ms: 100\n")
    g.run(lambda: scenario(g))


if __name__ == "__main__":
    main()
