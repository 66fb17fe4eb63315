#!/usr/bin/env python3
"""The poller against a real peer: python3-pymodbus serves known contents in
every register table, data type and byte order, on two unit ids, over Modbus
TCP, over RTU-over-TCP (pymodbus's RTU framer on a TCP socket) and over an
RTU serial line (a socat pty pair standing in for the RS-485 line). The
decoded values the poller publishes into the ring must equal the expected
ones exactly (bit for bit, floats included), with one timestamp per request,
and the tag catalog must describe every tag.
"""
import math
import os
import struct
import time

import pollerlib as pl

ORDERS32 = ["ABCD", "CDAB", "BADC", "DCBA"]
ORDERS64 = ["ABCDEFGH", "HGFEDCBA", "BADCFEHG", "GHEFCDAB"]
f32 = lambda x: struct.unpack(">f", struct.pack(">f", x))[0]

# (type, orders, raw values (one per order), scale, offset)
CASES = [
    ("int16", ["AB", "BA"], [-12345, -2], 1.0, 0.0),
    ("uint16", ["AB", "BA"], [54321, 0x1234], 0.1, -5.0),
    ("int32", ORDERS32, [-2000000000, -1, 123456789, -7], 1.0, 0.0),
    ("uint32", ORDERS32, [4000000000, 1, 0xDEADBEEF, 65536], 0.001, 0.0),
    ("float32", ORDERS32, [f32(3.14159), f32(-0.0001), f32(1e30), f32(-273.15)], 1.0, 0.0),
    ("float32", ["ABCD"], [f32(21.5)], 2.0, 1.0),
    ("int64", ORDERS64, [-8070450532247928832, 1, -1, 2**53 + 1], 1.0, 0.0),
    ("uint64", ORDERS64, [18000000000000000000, 42, 2**64 - 1, 2**53 + 1], 1.0, 0.0),
    ("float64", ORDERS64, [-1234.5678e-9, math.pi, 1e300, -0.5], 1.0, 0.0),
    ("float64", ["HGFEDCBA"], [123.25], 10.0, 3.0),
]


def build_layout():
    """Registers of unit 1 (holding) and unit 2 (input), and the tags."""
    tags, expect = [], {}
    regs = {1: [], 2: []}
    table = {1: "holding", 2: "input"}
    n = 0
    for dtype, orders, raws, scale, offset in CASES:
        for order, raw in zip(orders, raws):
            for unit in (1, 2):
                r = regs[unit]
                if n % 3 == 0:
                    r.append(0)  # a one-register hole, filled by max_gap
                name = "u%d.%s.%s.%d" % (unit, dtype, order, n)
                tags.append({"name": name, "register": table[unit], "address": len(r),
                             "type": dtype, "order": order, "scale": scale, "offset": offset,
                             "unit_id": unit})
                r.extend(pl.to_registers(dtype, order, raw))
                expect[name] = pl.decoded(dtype, raw, scale, offset)
            n += 1
    # Bits of a register, a bool register, strings; far away (a second request).
    hr = regs[1]
    hr.extend([0] * (300 - len(hr)))
    base = len(hr)
    hr.append((1 << 0) | (1 << 5) | (1 << 15))
    for bit, want in [(0, 1), (1, 0), (5, 1), (15, 1)]:
        name = "u1.bit%d" % bit
        tags.append({"name": name, "register": "holding", "address": base, "type": "bit",
                     "bit": bit, "unit_id": 1})
        expect[name] = (float(want), want)
    hr.extend([7, 0])
    tags.append({"name": "u1.boolreg7", "register": "holding", "address": base + 1,
                 "type": "bool", "unit_id": 1})
    tags.append({"name": "u1.boolreg0", "register": "holding", "address": base + 2,
                 "type": "bool", "unit_id": 1})
    expect["u1.boolreg7"] = (1.0, 1)
    expect["u1.boolreg0"] = (0.0, 0)
    for text, length, order in [("PUMP-7", 3, "AB"), ("abc", 2, "BA")]:
        addr = len(hr)
        hr.extend(pl.text_registers(text, length, order))
        name = "u1.str.%s" % order
        tags.append({"name": name, "register": "holding", "address": addr, "type": "string",
                     "length": length, "order": order, "unit_id": 1})
        expect[name] = (float(len(text)), pl.text_raw(text))
    # Coils on unit 1, discrete inputs on unit 2.
    bits = [1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1]
    for i, b in enumerate(bits):
        for unit, reg in ((1, "coil"), (2, "discrete")):
            name = "u%d.%s%d" % (unit, reg, i)
            tags.append({"name": name, "register": reg, "address": i, "unit_id": unit})
            expect[name] = (float(b), b)
    layout = {"units": {"1": {"hr": regs[1], "co": bits}, "2": {"ir": regs[2], "di": bits}}}
    return layout, tags, expect


def yaml_tags(tags, prefix):
    lines = []
    for t in tags:
        fields = ["name: %s%s" % (prefix, t["name"])]
        for k in ("register", "address", "type", "order", "bit", "length", "unit_id", "scale",
                  "offset"):
            if k in t:
                v = t[k]
                fields.append("%s: %s" % (k, repr(v) if isinstance(v, float) else v))
        lines.append("      - {%s}" % ", ".join(fields))
    return "\n".join(lines)


def main():
    d = pl.tmpdir()
    layout, tags, expect = build_layout()
    p_tcp, p_rtu = pl.free_port(), pl.free_port()
    pl.modbus_server(p_tcp, layout, d)
    pl.modbus_server(p_rtu, layout, d, framer="rtu")
    line, slave_end = pl.serial_line(d)
    pl.modbus_serial_server(slave_end, layout, d, line)
    seg = pl.segment_name("decode")
    devices = [("tcp1", "tcp", p_tcp, "", "max_gap: 2"),
               ("tcp1s", "tcp", p_tcp, "s.", "single_request: true"),
               ("rtu1", "rtu-over-tcp", p_rtu, "r.", "max_gap: 2"),
               ("ser1", "rtu", line, "t.", "max_gap: 2")]
    text = "segment: {name: %s}\npaths: {run_dir: %s}\ndevices:\n" % (seg, d)
    for name, transport, port, prefix, extra in devices:
        if transport == "rtu":
            where = "serial: {device: %s, baud: 19200, parity: none}" % port
        else:
            where = "host: 127.0.0.1\n    port: %d" % port
        text += ("  - name: %s\n    transport: %s\n    %s\n"
                 "    address_base: 0\n    response_timeout_ms: 2000\n    %s\n"
                 "    poll_groups: [{name: g, interval_ms: 300}]\n    tags:\n%s\n"
                 % (name, transport, where, extra, yaml_tags(tags, prefix)))
    cfg = os.path.join(d, "plant.yaml")
    with open(cfg, "w") as f:
        f.write(text)

    probe = pl.Probe(seg, d, seconds=60)
    poller = pl.poller(cfg, d)
    names_by_id = {}
    # Enough cycles that every device has published every tag a few times.
    def have_all():
        recs = probe.parse()[0]
        return len({r["tag"] for r in recs}) >= 4 * len(tags) and len(recs) > 12 * len(tags)
    pl.wait_until(have_all, 40, step=0.3)
    time.sleep(0.3)
    pl.check(pl.stop(poller) == 0, "poller did not exit cleanly")
    records, catalog, counters = probe.stop_now()

    # The catalog names every tag: id -> name, device, type, scale, offset.
    for tid, c in catalog.items():
        names_by_id[tid] = c["name"]
    for prefix, dev in (("", "tcp1"), ("s.", "tcp1s"), ("r.", "rtu1"), ("t.", "ser1")):
        for t in tags:
            name = prefix + t["name"]
            c = [c for c in catalog.values() if c["name"] == name]
            pl.check(len(c) == 1, "catalog lacks %s" % name)
            c = c[0]
            pl.check(c["device"] == dev, "%s: catalog device %s" % (name, c["device"]))
            dtype = t.get("type", "bool")
            pl.check(c["data_type"] == pl.TYPE_IDS[dtype], "%s: data_type %d" % (name, c["data_type"]))
            pl.check(c["scale"] == t.get("scale", 1.0) and c["offset"] == t.get("offset", 0.0),
                     "%s: scale/offset in the catalog" % name)

    bad = [r for r in records if r["quality"] != 0]
    pl.check(not bad, "non-GOOD records from a healthy server: %r" % bad[:3])
    latest = pl.latest_by_tag(records)
    checked = 0
    for tid, rec in latest.items():
        name = names_by_id[tid]
        base = name.split(".", 1)[1] if name.startswith(("s.", "r.", "t.")) else name
        value, raw = expect[base]
        pl.check(rec["raw"] == raw, "%s: raw %d, expected %d" % (name, rec["raw"], raw))
        pl.check(rec["value_bits"] == pl.f64_bits(value),
                 "%s: value %r (bits %s), expected %r (bits %s)"
                 % (name, rec["value"], rec["value_bits"], value, pl.f64_bits(value)))
        checked += 1
    pl.check(checked == 4 * len(tags), "records for %d of %d tags" % (checked, 4 * len(tags)))

    # One timestamp per request: distinct (device, timestamp) pairs equal
    # the requests each device sent.
    for dev_id, dev in enumerate(("tcp1", "tcp1s", "rtu1", "ser1")):
        stamps = {r["ts"] for r in records if r["device"] == dev_id}
        sent = pl.counter(counters, "requests_total", dev)
        pl.check(len(stamps) == sent,
                 "%s: %d distinct timestamps for %d requests" % (dev, len(stamps), sent))
        for kind in ("timeout", "exception", "bad_frame", "connection", "decode"):
            pl.check(pl.counter(counters, "errors_total", dev, kind) == 0,
                     "%s: errors_total{kind=%s} is not 0" % (dev, kind))
    # Coalescing: the merged devices need far fewer requests per cycle.
    merged = pl.counter(counters, "requests_total", "tcp1")
    single = pl.counter(counters, "requests_total", "tcp1s")
    pl.check(single > 3 * merged, "single_request sent %d requests, merged %d" % (single, merged))
    print("ok: %d tags x 4 devices decoded exactly; %d records; requests merged %d, single %d, "
          "rtu-over-tcp %d, rtu serial %d" % (len(tags), len(records), merged, single,
                                              pl.counter(counters, "requests_total", "rtu1"),
                                              pl.counter(counters, "requests_total", "ser1")))


if __name__ == "__main__":
    main()
