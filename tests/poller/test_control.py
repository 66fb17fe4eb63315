#!/usr/bin/env python3
"""The poller obeys the controller: commands published with nngcat on
ipc://<run_dir>/<segment>.events (the controller's PUB endpoint) pause and
resume polling, change a poll group's interval, and apply memory-pressure
levels (moderate slows low-priority groups, high stops low-priority tags,
critical pauses; recovery in reverse); a malformed message is counted and
ignored. Checked on the records that reach the ring.
"""
import os
import subprocess
import time

import pollerlib as pl

T_MS = 1700000000000


def send(url, msg):
    """Publishes msg once the poller's SUB had time to dial, twice."""
    # PUB/SUB drops what is sent before the subscriber is connected (the
    # poller redials every 250 ms at most): send twice; every command is
    # idempotent, as a controller's repeated level announcements are.
    r = subprocess.run(["nngcat", "--pub", "--listen", url, "--data", msg, "--delay", "1",
                        "--interval", "1", "--count", "2"], capture_output=True, text=True,
                       timeout=20)
    pl.check(r.returncode == 0, "nngcat failed: %s" % r.stderr)


def rates(probe, ids, seconds=1.5):
    time.sleep(0.3)
    t0 = time.time_ns()
    time.sleep(seconds)
    t1 = time.time_ns()
    recs = [r for r in probe.parse()[0] if t0 <= r["ts"] < t1]
    return {name: sum(1 for r in recs if r["tag"] == tid) / seconds for name, tid in ids.items()}


def main():
    d = pl.tmpdir()
    port = pl.free_port()
    seg = pl.segment_name("control")
    cfg = os.path.join(d, "plant.yaml")
    with open(cfg, "w") as f:
        f.write("segment: {name: %s}\npaths: {run_dir: %s}\ndevices:\n"
                "  - name: dev\n    host: 127.0.0.1\n    port: %d\n    address_base: 0\n"
                "    poll_groups: [{name: fast, interval_ms: 100}, {name: lowg, interval_ms: 100}]\n"
                "    tags:\n"
                "      - {name: hi, register: holding, address: 0, poll_group: fast}\n"
                "      - {name: lo, register: holding, address: 10, poll_group: lowg, priority: 5}\n"
                % (seg, d, port))
    pl.sim(cfg, d, "--time", str(T_MS))
    pl.check(pl.wait_until(lambda: pl.port_open(port), 10), "shmbus-sim did not listen")
    url = "ipc://%s/%s.events" % (d, seg)
    probe = pl.Probe(seg, d, seconds=300)
    poller = pl.poller(cfg, d)
    pl.check(pl.wait_until(lambda: len(probe.parse()[0]) > 4, 10), "no records")
    ids = {}
    # The catalog comes at the end of the probe's output; ids follow file order.
    ids = {"hi": 0, "lo": 1}

    steps = []
    base = rates(probe, ids)
    steps.append(("start", base))
    pl.check(base["hi"] >= 5 and base["lo"] >= 5, "base rates %r" % base)

    send(url, '{"cmd":"pause"}')
    r = rates(probe, ids)
    steps.append(("pause", r))
    pl.check(r["hi"] == 0 and r["lo"] == 0, "records while paused: %r" % r)
    send(url, '{"cmd":"resume"}')
    r = rates(probe, ids)
    steps.append(("resume", r))
    pl.check(r["hi"] >= 5 and r["lo"] >= 5, "after resume: %r" % r)

    send(url, '{"cmd":"set_interval","device":"dev","group":"lowg","interval_ms":1000}')
    r = rates(probe, ids, 2.0)
    steps.append(("set_interval 1000", r))
    pl.check(r["lo"] <= 1.5 and r["hi"] >= 5, "lowg at 1000 ms: %r" % r)
    send(url, '{"cmd":"set_interval","device":"dev","group":"lowg","interval_ms":100}')

    send(url, '{"cmd":"pressure","level":"moderate"}')
    r = rates(probe, ids, 3.0)
    steps.append(("moderate", r))
    # slow_factor 4: about a quarter of the rate; half leaves room for noise.
    pl.check(r["hi"] >= 5 and 0 < r["lo"] <= r["hi"] / 2, "moderate pressure: %r" % r)
    send(url, '{"cmd":"pressure","level":"high"}')
    r = rates(probe, ids)
    steps.append(("high", r))
    pl.check(r["hi"] >= 5 and r["lo"] == 0, "high pressure: %r" % r)
    send(url, '{"cmd":"pressure","level":"critical"}')
    r = rates(probe, ids)
    steps.append(("critical", r))
    pl.check(r["hi"] == 0 and r["lo"] == 0, "critical pressure: %r" % r)
    send(url, '{"cmd":"pressure","level":"high"}')
    r = rates(probe, ids)
    steps.append(("back to high", r))
    pl.check(r["hi"] >= 5 and r["lo"] == 0, "back to high: %r" % r)
    send(url, '{"cmd":"pressure","level":"none"}')
    r = rates(probe, ids)
    steps.append(("none", r))
    pl.check(r["hi"] >= 5 and r["lo"] >= 5, "recovered: %r" % r)

    send(url, '{"cmd":"pressure","level":"extreme"}')
    send(url, 'not json at all')
    send(url, '{"cmd":"set_interval","device":"nope","group":"fast","interval_ms":5}')
    r = rates(probe, ids)
    pl.check(poller.poll() is None, "the poller died on bad messages")
    pl.check(r["hi"] >= 5 and r["lo"] >= 5, "after bad messages: %r" % r)

    pl.check(pl.stop(poller) == 0, "poller did not exit cleanly")
    records, catalog, counters = probe.stop_now()
    pl.check(catalog[0]["name"] == "hi" and catalog[1]["name"] == "lo", "catalog ids")
    errors = counters.get("shmbus_poller_control_errors_total", 0)
    msgs = counters.get("shmbus_poller_control_messages_total", 0)
    pl.check(3 <= errors <= 6, "control errors counted: %d" % errors)
    pl.check(13 <= msgs <= 26, "control messages counted: %d" % msgs)
    with open(os.path.join(d, "poller.log")) as f:
        log = f.read()
    pl.check('"level" must be one of' in log and "not JSON" in log, "refusals not logged")
    print("ok: " + "; ".join("%s hi %.1f lo %.1f" % (s, r["hi"], r["lo"]) for s, r in steps))


if __name__ == "__main__":
    main()
