#!/usr/bin/env python3
"""shmbus-sim checked by two independent clients: mbpoll reads the
simulator's registers (frozen in time) and they must equal what the
configuration says (computed in simmodel.py); the poller reads the same
simulator and what it publishes must equal the same expectation, value for
value. Also checks that without --time the values follow the clock.
"""
import os
import re
import subprocess

import pollerlib as pl
import simmodel

T_MS = 1700000123456

TAGS = [
    {"name": "a.i16", "register": "holding", "address": 0, "type": "int16", "scale": 0.01,
     "sim": {"kind": "sine", "min": -40, "max": 40, "period_s": 7}},
    {"name": "a.u16", "register": "holding", "address": 1, "type": "uint16",
     "sim": {"kind": "ramp", "min": 0, "max": 60000, "period_s": 13}},
    {"name": "a.f32abcd", "register": "holding", "address": 2, "type": "float32", "order": "ABCD",
     "sim": {"kind": "sine", "min": 1, "max": 3, "period_s": 30}},
    {"name": "a.f32cdab", "register": "holding", "address": 4, "type": "float32", "order": "CDAB",
     "sim": {"kind": "random_walk", "min": 0, "max": 50, "step": 0.5, "period_s": 0.25}},
    {"name": "a.f32badc", "register": "holding", "address": 6, "type": "float32", "order": "BADC"},
    {"name": "a.f32dcba", "register": "holding", "address": 8, "type": "float32", "order": "DCBA",
     "scale": 0.5, "offset": 10, "sim": {"kind": "ramp", "min": 10, "max": 20, "period_s": 3}},
    {"name": "a.i32", "register": "holding", "address": 10, "type": "int32", "order": "CDAB",
     "sim": {"kind": "constant", "value": -123456}},
    {"name": "a.u32", "register": "holding", "address": 12, "type": "uint32", "order": "DCBA",
     "sim": {"kind": "counter", "max": 4294967295, "step": 1000}},
    {"name": "a.u64", "register": "holding", "address": 14, "type": "uint64", "order": "ABCDEFGH",
     "sim": {"kind": "counter", "max": 1.0e15, "step": 1000}},
    {"name": "a.i64", "register": "holding", "address": 18, "type": "int64", "order": "HGFEDCBA",
     "sim": {"kind": "counter", "min": -1000000, "max": 1000000, "step": 7}},
    {"name": "a.f64", "register": "holding", "address": 22, "type": "float64", "order": "GHEFCDAB",
     "sim": {"kind": "sine", "min": 990, "max": 1010, "period_s": 45}},
    {"name": "a.f64b", "register": "holding", "address": 26, "type": "float64", "order": "BADCFEHG",
     "sim": {"kind": "random_walk", "min": -1, "max": 1, "step": 0.125, "period_s": 1, "seed": 99}},
    {"name": "a.run", "register": "holding", "address": 30, "type": "bit", "bit": 0,
     "sim": {"kind": "toggle", "period_s": 20}},
    {"name": "a.alarm", "register": "holding", "address": 30, "type": "bit", "bit": 9,
     "sim": {"kind": "toggle", "period_s": 7}},
    {"name": "a.model", "register": "holding", "address": 31, "type": "string", "length": 4,
     "sim": {"text": "SIM-1000"}},
    {"name": "a.dflt", "register": "holding", "address": 35},
    {"name": "a.rpm", "register": "input", "address": 0, "type": "uint16",
     "sim": {"kind": "sine", "min": 1400, "max": 1500, "period_s": 10}},
    {"name": "a.cyc", "register": "input", "address": 1, "type": "uint32", "order": "BADC",
     "sim": {"kind": "counter", "max": 4294967295, "step": 3}},
    {"name": "a.pump", "register": "coil", "address": 0, "sim": {"kind": "toggle", "period_s": 30}},
    {"name": "a.pump2", "register": "coil", "address": 3},
    {"name": "a.door", "register": "discrete", "address": 2, "sim": {"kind": "toggle", "period_s": 13}},
    {"name": "b.amb", "register": "input", "address": 0, "unit_id": 3, "type": "int16",
     "scale": 0.1, "sim": {"kind": "sine", "min": -5, "max": 35, "period_s": 600}},
    {"name": "b.hum", "register": "holding", "address": 5, "unit_id": 3, "type": "uint16",
     "scale": 0.1, "sim": {"kind": "random_walk", "min": 20, "max": 80, "step": 0.2, "period_s": 2}},
]

MBPOLL_TABLE = {"coil": "0", "discrete": "1", "input": "3", "holding": "4"}


def flow(d):
    """A YAML flow mapping of a tag dict."""
    parts = []
    for k, v in d.items():
        if isinstance(v, dict):
            parts.append("%s: %s" % (k, flow(v)))
        else:
            parts.append("%s: %s" % (k, v))
    return "{" + ", ".join(parts) + "}"


def mbpoll(port, unit, table, start, count):
    out = subprocess.run(["mbpoll", "-1", "-0", "-m", "tcp", "-p", str(port), "-a", str(unit),
                          "-t", MBPOLL_TABLE[table], "-r", str(start), "-c", str(count),
                          "-o", "2", "127.0.0.1"], capture_output=True, text=True, timeout=20)
    pl.check(out.returncode == 0, "mbpoll failed: %s %s" % (out.stdout[-500:], out.stderr[-500:]))
    values = {}
    for line in out.stdout.splitlines():
        m = re.match(r"^\[(\d+)\]:\s+(-?\d+)", line)
        if m:
            values[int(m.group(1))] = int(m.group(2))
    pl.check(len(values) == count, "mbpoll printed %d of %d values" % (len(values), count))
    return values


def main():
    d = pl.tmpdir()
    port = pl.free_port()
    seg = pl.segment_name("sim")
    cfg = os.path.join(d, "sim.yaml")
    with open(cfg, "w") as f:
        f.write("segment: {name: %s}\npaths: {run_dir: %s}\ndevices:\n"
                "  - name: simA\n    host: 127.0.0.1\n    port: %d\n    address_base: 0\n"
                "    max_gap: 4\n    poll_groups: [{name: g, interval_ms: 200}]\n    tags:\n" % (seg, d, port))
        for t in TAGS:
            f.write("      - %s\n" % flow(t))
    regs, expect = simmodel.image(TAGS, T_MS)

    s = pl.sim(cfg, d, "--time", str(T_MS))
    pl.check(pl.wait_until(lambda: pl.port_open(port), 10), "shmbus-sim did not listen")

    # mbpoll against the model.
    compared = 0
    for (unit, table), cells in sorted(regs.items()):
        lo, hi = min(cells), max(cells)
        got = mbpoll(port, unit, table, lo, hi - lo + 1)
        for addr, want in cells.items():
            pl.check(got[addr] & 0xFFFF == want,
                     "mbpoll unit %d %s %d: %d, config says %d" % (unit, table, addr, got[addr], want))
            compared += 1
    # A unit without tags does not answer.
    out = subprocess.run(["mbpoll", "-1", "-0", "-p", str(port), "-a", "9", "-r", "0", "-c", "1",
                          "-o", "0.3", "127.0.0.1"], capture_output=True, text=True, timeout=20)
    pl.check("timed out" in (out.stdout + out.stderr).lower(), "unit 9 answered: %s" % out.stdout)
    # A read beyond the unit's table gets exception 2.
    out = subprocess.run(["mbpoll", "-1", "-0", "-p", str(port), "-a", "1", "-r", "30", "-c", "10",
                          "-o", "1", "127.0.0.1"], capture_output=True, text=True, timeout=20)
    pl.check("illegal data address" in (out.stdout + out.stderr).lower(),
             "read beyond the table: %s %s" % (out.stdout, out.stderr))

    # The poller against the model.
    probe = pl.Probe(seg, d, seconds=60)
    p = pl.poller(cfg, d)
    pl.wait_until(lambda: len({r["tag"] for r in probe.parse()[0]}) >= len(TAGS), 20, step=0.2)
    pl.check(pl.stop(p) == 0, "poller did not exit cleanly")
    records, catalog, counters = probe.stop_now()
    names = {tid: c["name"] for tid, c in catalog.items()}
    latest = pl.latest_by_tag(records)
    pl.check(len(latest) == len(TAGS), "records for %d of %d tags" % (len(latest), len(TAGS)))
    for tid, rec in latest.items():
        name = names[tid]
        value, raw = expect[name]
        pl.check(rec["quality"] == 0, "%s: quality %s" % (name, pl.qname(rec["quality"])))
        pl.check(rec["raw"] == raw, "%s: poller raw %d, config says %d" % (name, rec["raw"], raw))
        pl.check(rec["value_bits"] == pl.f64_bits(value),
                 "%s: poller value %r, config says %r" % (name, rec["value"], value))
    pl.stop(s)

    # Live mode: values follow the clock (a ramp changes between reads).
    s = pl.sim(cfg, d, "--port", str(port), "--device", "simA")
    pl.check(pl.wait_until(lambda: pl.port_open(port), 10), "shmbus-sim did not restart")
    first = mbpoll(port, 1, "holding", 1, 1)[1]
    changed = pl.wait_until(lambda: mbpoll(port, 1, "holding", 1, 1)[1] != first, 5, step=0.1)
    pl.check(changed, "a ramp of period 13 s did not move in 5 s")
    pl.stop(s)

    # Load-test instances: copies of the device on consecutive ports, one process.
    base = pl.free_ports(3)
    s = pl.sim(cfg, d, "--port-base", str(base), "--instances", "3", "--threads", "2",
               "--time", str(T_MS))
    for i in range(3):
        pl.check(pl.wait_until(lambda: pl.port_open(base + i), 10), "instance %d not up" % i)
        got = mbpoll(base + i, 1, "holding", 0, 2)
        pl.check(got[0] & 0xFFFF == regs[(1, "holding")][0] and got[1] == regs[(1, "holding")][1],
                 "instance %d serves other registers" % i)
    pl.stop(s)
    print("ok: mbpoll agrees with the config on %d cells; the poller on %d tags" %
          (compared, len(latest)))


if __name__ == "__main__":
    main()
