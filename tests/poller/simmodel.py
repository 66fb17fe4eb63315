"""simmodel.py -- what shmbus-sim serves, computed independently in Python
from the configuration and an instant (services/common/simgen.h defines
the generators; the arithmetic below follows it operation by operation, so
values agree bit for bit with the C code, which uses the same libm).
"""
import math
import struct

import pollerlib as pl

MASK = (1 << 64) - 1
RANGES = {"int16": (-32768, 32767), "uint16": (0, 65535), "int32": (-2**31, 2**31 - 1),
          "uint32": (0, 2**32 - 1), "int64": (-2**63, 2**63 - 1024),
          "uint64": (0, 18446744073709549568)}
WIDTH = {"int16": 2, "uint16": 2, "int32": 4, "uint32": 4, "float32": 4, "int64": 8,
         "uint64": 8, "float64": 8}


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def generator(tag, position):
    """The tag's generator with the defaults shmbus-sim applies."""
    dtype = tag.get("type", "bool" if tag["register"] in ("coil", "discrete") else "uint16")
    binary = dtype in ("bool", "bit")
    g = {"kind": "toggle" if binary else "sine" if dtype.startswith("float")
         else "constant" if dtype == "string" else "counter",
         "min": 0.0, "max": 1.0 if binary else 100.0, "period_s": 10.0 if binary else 60.0,
         "step": 1.0, "value": 0.0, "seed": tag.get("id", position),
         "text": tag["name"][: 2 * tag.get("length", 1)]}
    g.update(tag.get("sim", {}))
    for k in ("min", "max", "period_s", "step", "value"):
        g[k] = float(g[k])
    return g


def value_at(g, t_ms):
    t = t_ms / 1000.0
    k = g["kind"]
    if k == "ramp":
        x = t / g["period_s"]
        return g["min"] + (g["max"] - g["min"]) * (x - math.floor(x))
    if k == "sine":
        return (g["min"] + g["max"]) / 2 + (g["max"] - g["min"]) / 2 * math.sin(
            2 * math.pi * t / g["period_s"])
    if k == "counter":
        return g["min"] + math.fmod(math.floor(t * g["step"]), g["max"] - g["min"] + 1)
    if k == "toggle":
        x = t / g["period_s"]
        return 0.0 if x - math.floor(x) < 0.5 else 1.0
    if k == "random_walk":
        kk = math.floor(t / g["period_s"])
        start = kk - math.fmod(kk, 1000)
        pos = (g["min"] + g["max"]) / 2
        j = start + 1
        while j <= kk:
            h = splitmix64(((g["seed"] << 32) + int(j)) & MASK)
            pos += g["step"] if h & 1 else -g["step"]
            if pos > g["max"]:
                pos = 2 * g["max"] - pos
            if pos < g["min"]:
                pos = 2 * g["min"] - pos
            if pos > g["max"] or pos < g["min"]:
                pos = (g["min"] + g["max"]) / 2
            j += 1
        return pos
    return g["value"]


def c_round(x):
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def raw_of(tag, value):
    """The raw device value shmbus-sim stores for an engineering value."""
    dtype = tag.get("type", "bool" if tag["register"] in ("coil", "discrete") else "uint16")
    scale, offset = float(tag.get("scale", 1.0)), float(tag.get("offset", 0.0))
    x = value if (scale == 1.0 and offset == 0.0) else (value - offset) / scale
    if dtype in ("bool", "bit"):
        return 1 if c_round(x) != 0 else 0
    if dtype == "float32":
        return struct.unpack(">f", struct.pack(">f", x))[0]
    if dtype == "float64":
        return x
    lo, hi = RANGES[dtype]
    return int(min(max(c_round(x), lo), hi))


def image(tags, t_ms):
    """{(unit, table): {address: register or bit}} and {tag name: (value, raw)}
    as the poller should publish them."""
    regs, expect = {}, {}
    for pos, tag in enumerate(tags):
        dtype = tag.get("type", "bool" if tag["register"] in ("coil", "discrete") else "uint16")
        unit = tag.get("unit_id", 1)
        table = regs.setdefault((unit, tag["register"]), {})
        g = generator(tag, tag.get("id", pos))
        addr = tag["address"]
        scale, offset = float(tag.get("scale", 1.0)), float(tag.get("offset", 0.0))
        if tag["register"] in ("coil", "discrete"):
            bit = 1 if value_at(g, t_ms) != 0.0 else 0
            table[addr] = bit
            expect[tag["name"]] = (float(bit), bit)
            continue
        if dtype == "string":
            length = tag["length"]
            words = pl.text_registers(g["text"], length, tag.get("order", "AB"))
            for i, w in enumerate(words):
                table[addr + i] = w
            text = g["text"][: 2 * length]
            expect[tag["name"]] = (float(len(text)), pl.text_raw(text))
            continue
        raw = raw_of(tag, value_at(g, t_ms))
        if dtype == "bit":
            table[addr] = table.get(addr, 0) | (raw << tag["bit"])
            expect[tag["name"]] = (float(raw), raw)
            continue
        if dtype == "bool":
            table[addr] = raw
            expect[tag["name"]] = (float(raw), raw)
            continue
        order = tag.get("order", "ABCDEFGH"[: WIDTH[dtype]])
        for i, w in enumerate(pl.to_registers(dtype, order, raw)):
            table[addr + i] = w
        expect[tag["name"]] = pl.decoded(dtype, raw, scale, offset)
    return regs, expect
