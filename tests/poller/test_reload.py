#!/usr/bin/env python3
"""Configuration handling of shmbus-poller:
  - a bad file at start-up: exit status 1 and a file:line:field message;
  - SIGHUP with a new tag list: new tags are polled and catalogued, removed
    ones stop and leave the catalog, without a restart (same pid);
  - SIGHUP with a broken file: refused with file:line:field in the log, the
    running configuration keeps polling, reload_errors_total counts it.
"""
import os
import signal
import subprocess
import time

import pollerlib as pl

HEADER = ("segment: {name: %s}\npaths: {run_dir: %s}\ndevices:\n"
          "  - name: dev\n    host: 127.0.0.1\n    port: %d\n    address_base: 0\n"
          "    poll_groups: [{name: g, interval_ms: 100}]\n    tags:\n")


def main():
    d = pl.tmpdir()
    port = pl.free_port()
    seg = pl.segment_name("reload")
    cfg = os.path.join(d, "plant.yaml")
    head = HEADER % (seg, d, port)

    # A bad file at start-up.
    with open(cfg, "w") as f:
        f.write(head + "      - {name: a, register: holding, address: 0, type: flot32}\n")
    r = subprocess.run([os.path.join(pl.BIN, "shmbus-poller"), "--config", cfg],
                       capture_output=True, text=True, timeout=20)
    pl.check(r.returncode == 1, "a bad config gave exit status %d" % r.returncode)
    want = "%s:10: devices[0].tags[0].type: unknown data type 'flot32'" % cfg
    pl.check(want in r.stderr, "stderr lacks %r:\n%s" % (want, r.stderr))

    with open(cfg, "w") as f:
        f.write(head + "      - {name: a, register: holding, address: 0}\n"
                       "      - {name: b, register: holding, address: 1}\n")
    pl.sim(cfg, d, "--time", "1700000000000")
    pl.check(pl.wait_until(lambda: pl.port_open(port), 10), "shmbus-sim did not listen")
    probe = pl.Probe(seg, d, seconds=120)
    poller = pl.poller(cfg, d)
    pl.check(pl.wait_until(lambda: {0, 1} <= {r["tag"] for r in probe.parse()[0]}, 10),
             "no records for a and b")

    # v2: b removed, c added with an explicit id.
    with open(cfg, "w") as f:
        f.write(head + "      - {name: a, register: holding, address: 0}\n"
                       "      - {name: c, register: holding, address: 2, id: 10, type: int16}\n")
    poller.send_signal(signal.SIGHUP)
    t_reload = time.time_ns()
    pl.check(pl.wait_until(lambda: any(r["tag"] == 10 for r in probe.parse()[0]), 10),
             "no records for c after the reload")
    time.sleep(0.5)
    late_b = [r for r in probe.parse()[0] if r["tag"] == 1 and r["ts"] > t_reload + 300_000_000]
    pl.check(not late_b, "b still polled after the reload")

    # v3: broken. The running configuration stays.
    with open(cfg, "w") as f:
        f.write(head + "      - {name: a, register: holding, address: 0}\n"
                       "      - {name: c, register: holding, address: 0, id: 10}\n")
    poller.send_signal(signal.SIGHUP)
    t_bad = time.time_ns()
    time.sleep(1.0)
    recent = {r["tag"] for r in probe.parse()[0] if r["ts"] > t_bad + 300_000_000}
    pl.check(recent == {0, 10}, "after a refused reload, tags polled: %r" % recent)
    pl.check(poller.poll() is None, "the poller died on a bad reload")
    pl.check(pl.stop(poller) == 0, "poller did not exit cleanly")
    records, catalog, counters = probe.stop_now()
    names = {tid: c["name"] for tid, c in catalog.items()}
    pl.check(names == {0: "a", 10: "c"}, "catalog after reloads: %r" % names)
    pl.check(counters.get("shmbus_poller_reloads_total") == 2, "reloads_total %r" %
             counters.get("shmbus_poller_reloads_total"))
    pl.check(counters.get("shmbus_poller_reload_errors_total") == 1, "reload_errors_total")
    with open(os.path.join(d, "poller.log")) as f:
        log = f.read()
    want = "%s:11: devices[0].tags[1].address: holding 0..0 of unit 1 overlaps tag 'a'" % cfg
    pl.check(want in log, "log lacks %r:\n%s" % (want, log))
    print("ok: bad start refused; reload added c and dropped b; broken reload refused and logged")


if __name__ == "__main__":
    main()
