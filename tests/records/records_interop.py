#!/usr/bin/python3
"""records_interop.py — libshm's FlatBuffers codec against the official tools.

Proves, field by field, that the records libshm builds and reads are the
records FlatBuffers' own implementations build and read:

  C -> official   buffers built by libshm (through record_tool) are decoded by
                  `flatc --json --raw-binary` (the C++ reader) and by Python
                  code generated with `flatc --python` at test time, run on
                  python3-flatbuffers. Integers and strings must be equal;
                  doubles bit-exact through Python (NaN payloads included) and
                  equal to flatc's 12-significant-digit text through flatc.
  official -> C   buffers built by the Python builder (fields omitted so that
                  defaults apply, forced defaults, other field orders, fields
                  of a newer schema, a 300-deep chain of nested tables in a
                  field the reader does not know) and by `flatc -b` from JSON
                  (the C++ builder) are verified and read by libshm with the
                  same values; damaged ones (no identifier, oversize string,
                  NUL inside a string, truncations) are refused with a reason.

Run by ctest (tests/records/CMakeLists.txt) with SHMBUS_BIN_DIR and
SHMBUS_SOURCE_DIR set; needs /usr/bin/python3 with python3-flatbuffers and
flatc (SHMBUS_FLATC, set by CMake, else the one on PATH). Generated code
lives in a temporary directory only.
"""
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

SRC = os.environ.get("SHMBUS_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("SHMBUS_BIN_DIR") or os.path.join(SRC, "build", "bin")
TOOL = os.path.join(BIN, "record_tool")
SCHEMAS = os.path.join(SRC, "schemas")
FLATC = os.environ.get("SHMBUS_FLATC") or shutil.which("flatc")

U64_MAX = 2**64 - 1
I64_MAX = 2**63 - 1
I64_MIN = -2**63
U32_MAX = 2**32 - 1

QUALITY = ["GOOD", "BAD", "STALE", "COMM_FAIL", "CONFIG_ERROR", "DEVICE_EXCEPTION",
           "DECODE_ERROR"]
DATA_TYPE = ["BOOL", "BIT", "INT16", "UINT16", "INT32", "UINT32", "INT64", "UINT64",
             "FLOAT32", "FLOAT64", "STRING"]

VALUE_FIELDS = ["sequence", "timestamp_ns", "device_id", "tag_id", "value", "raw", "quality",
                "exception_code", "flags"]
META_FIELDS = ["id", "device_id", "name", "device", "unit", "data_type", "priority", "scale",
               "offset"]
VALUE_DEFAULTS = dict(sequence=0, timestamp_ns=0, device_id=0, tag_id=0, value=0.0, raw=0,
                      quality=0, exception_code=0, flags=0)
META_DEFAULTS = dict(id=0, device_id=0, name=b"", device=b"", unit=b"", data_type=0, priority=0,
                     scale=1.0, offset=0.0)


def bits(d):
    return struct.unpack("<Q", struct.pack("<d", d))[0]


def from_bits(b):
    return struct.unpack("<d", struct.pack("<Q", b))[0]


class Checks:
    def __init__(self):
        self.passed = 0
        self.failures = []

    def eq(self, what, got, want):
        if got == want:
            self.passed += 1
        else:
            self.failures.append(f"{what}: got {got!r}, want {want!r}")

    def true(self, what, cond):
        self.eq(what, bool(cond), True)


CHECK = Checks()


def run(cmd, ok_codes=(0,)):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if p.returncode not in ok_codes:
        sys.stderr.write(f"command failed ({p.returncode}): {cmd}\n{p.stderr.decode()}\n")
        sys.exit(1)
    return p


# --------------------------------------------------------------- cases

def nan(b):
    return ("bits", b)


def value_cases():
    """TagValues with every field set, edge values included. A double is a
    float or ("bits", n) for exact bit patterns such as NaN payloads."""
    cases = [
        dict(VALUE_DEFAULTS),
        dict(sequence=U64_MAX, timestamp_ns=I64_MAX, device_id=U32_MAX, tag_id=U32_MAX,
             value=1.7976931348623157e308, raw=I64_MAX, quality=6, exception_code=255,
             flags=65535),
        dict(sequence=1, timestamp_ns=I64_MIN, device_id=1, tag_id=2, value=-0.0, raw=I64_MIN,
             quality=2, exception_code=0, flags=1),
        dict(sequence=42, timestamp_ns=1763900000123456789, device_id=3, tag_id=17, value=21.5,
             raw=2150, quality=0, exception_code=0, flags=0),
        dict(sequence=43, timestamp_ns=5, device_id=0, tag_id=0, value=5e-324, raw=-1,
             quality=5, exception_code=2, flags=0x8001),
        dict(sequence=44, timestamp_ns=6, device_id=9, tag_id=9, value=math.pi, raw=3,
             quality=200, exception_code=1, flags=2),  # a quality a newer schema may add
        dict(sequence=45, timestamp_ns=7, device_id=1, tag_id=1, value=-273.15, raw=0,
             quality=1, exception_code=0, flags=0),
    ]
    specials = [nan(0x7ff8000000000000), nan(0xfff8000000000000), nan(0x7ff8000000000123),
                float("inf"), float("-inf")]
    for i, v in enumerate(specials):
        cases.append(dict(sequence=100 + i, timestamp_ns=-1, device_id=7, tag_id=8, value=v,
                          raw=i, quality=3, exception_code=0, flags=0))
    for q in range(7):
        cases.append(dict(sequence=200 + q, timestamp_ns=q, device_id=q, tag_id=q, value=q / 4,
                          raw=q, quality=q, exception_code=q, flags=q))
    return cases


def meta_cases():
    s255 = b"n" * 255
    s255u = b"x" * 250 + "é€".encode()  # 255 bytes ending in multi-byte characters
    assert len(s255u) == 255
    cases = [
        dict(META_DEFAULTS),
        dict(id=1, device_id=2, name=b"boiler1.temperature", device=b"plc1",
             unit="°C".encode(), data_type=8, priority=3, scale=0.1, offset=-273.15),
        dict(id=U32_MAX, device_id=U32_MAX, name=s255, device=s255u, unit=s255, data_type=10,
             priority=255, scale=nan(0x7ff8000000000000), offset=float("-inf")),
        dict(id=5, device_id=0, name=b"", device=b"d", unit=b"", data_type=42, priority=0,
             scale=0.0, offset=-0.0),  # 42: a data type a newer schema may add
        dict(id=6, device_id=1, name=b'quote " backslash \\ tab \t', device=b"\x7f",
             unit="Ω·m".encode(), data_type=3, priority=1, scale=float("inf"), offset=1e-300),
    ]
    for t in range(11):
        cases.append(dict(id=100 + t, device_id=t, name=b"tag%d" % t, device=b"dev", unit=b"u",
                          data_type=t, priority=t, scale=t + 0.5, offset=-t))
    return cases


def as_double(v):
    return from_bits(v[1]) if isinstance(v, tuple) else float(v)


def double_bits(v):
    return v[1] if isinstance(v, tuple) else bits(float(v))


# --------------------------------------------------------- C -> official

def c_encode(tmp, cases, kind):
    files = []
    for i, c in enumerate(cases):
        path = os.path.join(tmp, f"c_{kind}_{i:03d}.bin")
        args = [TOOL, "encode-value" if kind == "value" else "encode-meta", path]
        for k, v in c.items():
            if k in ("value", "scale", "offset"):
                args.append(f"{k}_bits={double_bits(v):#x}")
            elif isinstance(v, bytes):
                args.append(k.encode() + b"=" + v)
            else:
                args.append(f"{k}={v}")
        run(args)
        files.append(path)
    return files


_FLATC_NONFINITE = re.compile(r'^(\s*"[a-z_]+": )(-?)(nan|inf)(,?)$', re.M)


def flatc_json(tmp, schema, files):
    """Decodes binary files with flatc (the C++ reader); returns parsed JSON."""
    out = os.path.join(tmp, "flatc_json")
    os.makedirs(out, exist_ok=True)
    run([FLATC, "--json", "--strict-json", "--defaults-json", "--raw-binary", "-o", out,
         os.path.join(SCHEMAS, schema), "--"] + files)
    docs = []
    for f in files:
        name = os.path.splitext(os.path.basename(f))[0] + ".json"
        with open(os.path.join(out, name), encoding="utf-8") as fh:
            text = fh.read()
        # flatc writes non-finite doubles as bare nan / inf / -inf
        text = _FLATC_NONFINITE.sub(
            lambda m: m.group(1) + ('"-' if m.group(2) else '"') + m.group(3) + '"' + m.group(4),
            text)
        docs.append(json.loads(text))
    return docs


def flatc_double(text_or_num):
    if isinstance(text_or_num, str):
        return float(text_or_num)  # "nan", "inf", "-inf"
    return float(text_or_num)


def check_flatc_double(what, got, want):
    """flatc prints doubles in fixed notation with 12 decimals (trailing zeros
    trimmed): 1e-300 prints as 0.0, pi as 3.14159265359. Compare with exactly
    that rounding; where it loses nothing, compare the bits too."""
    w = as_double(want)
    g = flatc_double(got)
    if math.isnan(w):
        CHECK.true(f"{what} is nan", math.isnan(g))
    elif math.isinf(w):
        CHECK.eq(what, g, w)
    else:
        rounded = float("%.12f" % w)
        CHECK.eq(what, g, rounded)
        if bits(rounded) == bits(w):
            CHECK.eq(what + " bits", f"{bits(g):016x}", f"{bits(w):016x}")


def check_python_double(what, got, want):
    CHECK.eq(what + " bits", f"{bits(got):016x}", f"{double_bits(want):016x}")


def c_to_official(tmp, py):
    TagValue, TagMeta = py["TagValue"], py["TagMeta"]
    vcases = value_cases()
    vfiles = c_encode(tmp, vcases, "value")
    for i, (c, doc) in enumerate(zip(vcases, flatc_json(tmp, "shmbus.fbs", vfiles))):
        w = f"C->flatc TagValue[{i}]"
        for k in VALUE_FIELDS:
            if k == "value":
                check_flatc_double(f"{w}.value", doc[k], c[k])
            elif k == "quality":
                CHECK.eq(f"{w}.quality", doc[k], QUALITY[c[k]] if c[k] < len(QUALITY) else c[k])
            else:
                CHECK.eq(f"{w}.{k}", doc[k], c[k])
    for i, (c, path) in enumerate(zip(vcases, vfiles)):
        w = f"C->python TagValue[{i}]"
        buf = bytearray(open(path, "rb").read())
        CHECK.true(f"{w} identifier", TagValue.TagValue.TagValueBufferHasIdentifier(buf, 0))
        t = TagValue.TagValue.GetRootAs(buf, 0)
        CHECK.eq(f"{w}.sequence", t.Sequence(), c["sequence"])
        CHECK.eq(f"{w}.timestamp_ns", t.TimestampNs(), c["timestamp_ns"])
        CHECK.eq(f"{w}.device_id", t.DeviceId(), c["device_id"])
        CHECK.eq(f"{w}.tag_id", t.TagId(), c["tag_id"])
        check_python_double(f"{w}.value", t.Value(), c["value"])
        CHECK.eq(f"{w}.raw", t.Raw(), c["raw"])
        CHECK.eq(f"{w}.quality", t.Quality(), c["quality"])
        CHECK.eq(f"{w}.exception_code", t.ExceptionCode(), c["exception_code"])
        CHECK.eq(f"{w}.flags", t.Flags(), c["flags"])

    mcases = meta_cases()
    mfiles = c_encode(tmp, mcases, "meta")
    for i, (c, doc) in enumerate(zip(mcases, flatc_json(tmp, "catalog.fbs", mfiles))):
        w = f"C->flatc TagMeta[{i}]"
        for k in META_FIELDS:
            if k in ("scale", "offset"):
                check_flatc_double(f"{w}.{k}", doc[k], c[k])
            elif k == "data_type":
                want = DATA_TYPE[c[k]] if c[k] < len(DATA_TYPE) else c[k]
                CHECK.eq(f"{w}.data_type", doc[k], want)
            elif isinstance(c[k], bytes):
                CHECK.eq(f"{w}.{k}", doc[k].encode("utf-8"), c[k])
            else:
                CHECK.eq(f"{w}.{k}", doc[k], c[k])
    for i, (c, path) in enumerate(zip(mcases, mfiles)):
        w = f"C->python TagMeta[{i}]"
        buf = bytearray(open(path, "rb").read())
        CHECK.true(f"{w} identifier", TagMeta.TagMeta.TagMetaBufferHasIdentifier(buf, 0))
        t = TagMeta.TagMeta.GetRootAs(buf, 0)
        CHECK.eq(f"{w}.id", t.Id(), c["id"])
        CHECK.eq(f"{w}.device_id", t.DeviceId(), c["device_id"])
        CHECK.eq(f"{w}.name", t.Name(), c["name"])
        CHECK.eq(f"{w}.device", t.Device(), c["device"])
        CHECK.eq(f"{w}.unit", t.Unit(), c["unit"])
        CHECK.eq(f"{w}.data_type", t.DataType(), c["data_type"])
        CHECK.eq(f"{w}.priority", t.Priority(), c["priority"])
        check_python_double(f"{w}.scale", t.Scale(), c["scale"])
        check_python_double(f"{w}.offset", t.Offset(), c["offset"])
    return len(vfiles) + len(mfiles)


# --------------------------------------------------------- official -> C

def py_value(py, fields, ident=b"SHMV", order=None, force_defaults=False, extra=None):
    """Builds a TagValue with python3-flatbuffers; only the fields given are
    added, in `order` (default: schema order)."""
    import flatbuffers
    T = py["TagValue"]
    b = flatbuffers.Builder(0)
    if force_defaults:
        b.ForceDefaults(True)
    adders = dict(sequence=T.AddSequence, timestamp_ns=T.AddTimestampNs, device_id=T.AddDeviceId,
                  tag_id=T.AddTagId, value=lambda bb, v: T.AddValue(bb, as_double(v)),
                  raw=T.AddRaw, quality=T.AddQuality, exception_code=T.AddExceptionCode,
                  flags=T.AddFlags)
    T.Start(b)
    for k in order or VALUE_FIELDS:
        if k in fields:
            adders[k](b, fields[k])
    root = T.End(b)
    b.Finish(root, ident) if ident else b.Finish(root)
    return bytes(b.Output())


def py_meta(py, fields, ident=b"SHMC"):
    import flatbuffers
    T = py["TagMeta"]
    b = flatbuffers.Builder(0)
    offs = {}
    for k in ("name", "device", "unit"):  # strings are built before the table
        if k in fields:
            offs[k] = b.CreateString(fields[k])
    T.Start(b)
    for k, add in (("id", T.AddId), ("device_id", T.AddDeviceId), ("name", T.AddName),
                   ("device", T.AddDevice), ("unit", T.AddUnit), ("data_type", T.AddDataType),
                   ("priority", T.AddPriority), ("scale", T.AddScale),
                   ("offset", T.AddOffset)):
        if k in offs:
            add(b, offs[k])
        elif k in fields:
            add(b, as_double(fields[k]) if k in ("scale", "offset") else fields[k])
    root = T.End(b)
    b.Finish(root, ident) if ident else b.Finish(root)
    return bytes(b.Output())


def c_decode(files, mode="decode"):
    """libshm's verdict on each file (record_tool decode: kind from the file
    identifier; decode-value / decode-meta: that kind whatever it says)."""
    p = run([TOOL, mode] + files, ok_codes=(0, 1))
    lines = [json.loads(line) for line in p.stdout.decode("utf-8").splitlines()]
    CHECK.eq("record_tool decode lines", len(lines), len(files))
    return lines


def check_c_value(what, doc, want):
    full = dict(VALUE_DEFAULTS)
    full.update(want)
    CHECK.true(f"{what} accepted ({doc.get('diag')})", doc.get("ok"))
    if not doc.get("ok"):
        return
    for k in VALUE_FIELDS:
        if k == "value":
            CHECK.eq(f"{what}.value bits", doc["value_bits"], f"{double_bits(full[k]):016x}")
        else:
            CHECK.eq(f"{what}.{k}", doc[k], full[k])


def check_c_meta(what, doc, want):
    full = dict(META_DEFAULTS)
    full.update(want)
    CHECK.true(f"{what} accepted ({doc.get('diag')})", doc.get("ok"))
    if not doc.get("ok"):
        return
    for k in META_FIELDS:
        if k in ("scale", "offset"):
            CHECK.eq(f"{what}.{k} bits", doc[k + "_bits"], f"{double_bits(full[k]):016x}")
        elif isinstance(full[k], bytes):
            CHECK.eq(f"{what}.{k}", doc[k].encode("utf-8"), full[k])
        else:
            CHECK.eq(f"{what}.{k}", doc[k], full[k])


def write(tmp, name, data):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def official_to_c(tmp, py):
    n = 0
    # --- Python builder, TagValue
    vcases = []  # (name, buffer, expected fields)
    for i, c in enumerate(value_cases()):
        full = dict(c)
        if full["value"] == 0 and bits(as_double(full["value"])) != 0:
            # -0.0 equals the default 0.0: the official builder omits it, so it
            # reads back as +0.0 (libshm's fixed layout keeps the sign)
            full["value"] = 0.0
        vcases.append((f"all{i}", py_value(py, c), full))
        vcases.append((f"rev{i}", py_value(py, c, order=list(reversed(VALUE_FIELDS))), full))
    vcases.append(("empty", py_value(py, {}), {}))
    vcases.append(("forced_defaults", py_value(py, VALUE_DEFAULTS, force_defaults=True), {}))
    vcases.append(("seq_only", py_value(py, dict(sequence=9)), dict(sequence=9)))
    vcases.append(("value_nan", py_value(py, dict(value=nan(0x7ff8000000000001), tag_id=4)),
                   dict(value=nan(0x7ff8000000000001), tag_id=4)))
    vcases.append(("sparse", py_value(py, dict(tag_id=5, quality=3, flags=7)),
                   dict(tag_id=5, quality=3, flags=7)))
    vcases.append(("last_only", py_value(py, dict(flags=0xffff)), dict(flags=0xffff)))
    files = [write(tmp, f"py_value_{name}.bin", buf) for name, buf, _ in vcases]
    for (name, _, want), doc in zip(vcases, c_decode(files)):
        check_c_value(f"python->C TagValue {name}", doc, want)
    n += len(files)

    # --- Python builder, TagMeta
    mcases = []
    for i, c in enumerate(meta_cases()):
        full = dict(c)
        if full["offset"] == 0 and bits(as_double(full["offset"])) != 0:
            full["offset"] = 0.0  # -0.0 is omitted as the default, as above
        mcases.append((f"all{i}", py_meta(py, c), full))
    mcases.append(("empty", py_meta(py, {}), {}))
    mcases.append(("name_only", py_meta(py, dict(name=b"t1")), dict(name=b"t1")))
    mcases.append(("no_scale", py_meta(py, dict(id=3, unit=b"bar", offset=2.5)),
                   dict(id=3, unit=b"bar", offset=2.5)))
    mcases.append(("scale_zero", py_meta(py, dict(scale=0.0)), dict(scale=0.0)))
    files = [write(tmp, f"py_meta_{name}.bin", buf) for name, buf, _ in mcases]
    for (name, _, want), doc in zip(mcases, c_decode(files)):
        check_c_meta(f"python->C TagMeta {name}", doc, want)
    n += len(files)

    # --- flatc -b (the C++ builder) from JSON
    jdir = os.path.join(tmp, "flatc_b")
    os.makedirs(jdir)
    jcases = [
        ("v_full", "shmbus.fbs", dict(sequence=U64_MAX, timestamp_ns=I64_MIN, device_id=U32_MAX,
                                      tag_id=1, value=0.5, raw=I64_MAX, quality="COMM_FAIL",
                                      exception_code=11, flags=3)),
        ("v_empty", "shmbus.fbs", {}),
        ("v_value", "shmbus.fbs", dict(value=-1e300, quality="STALE")),
        ("m_full", "catalog.fbs", dict(id=7, device_id=8, name="pump.speed", device="vfd2",
                                       unit="rpm", data_type="UINT16", priority=2, scale=0.25,
                                       offset=-4)),
        ("m_empty", "catalog.fbs", {}),
        ("m_unit", "catalog.fbs", dict(unit="µS/cm", scale=1)),
    ]
    files = []
    for name, schema, doc in jcases:
        jpath = os.path.join(jdir, name + ".json")
        with open(jpath, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False)
        run([FLATC, "-b", "-o", jdir, os.path.join(SCHEMAS, schema), jpath])
        files.append(os.path.join(jdir, name + (".shmv" if schema == "shmbus.fbs" else ".shmc")))
    for (name, schema, doc), got in zip(jcases, c_decode(files)):
        want = {}
        for k, v in doc.items():
            if k == "quality":
                v = QUALITY.index(v)
            elif k == "data_type":
                v = DATA_TYPE.index(v)
            elif isinstance(v, str):
                v = v.encode("utf-8")
            want[k] = v
        if schema == "shmbus.fbs":
            check_c_value(f"flatc->C TagValue {name}", got, want)
        else:
            check_c_meta(f"flatc->C TagMeta {name}", got, want)
    n += len(files)
    return n


def official_rejected(tmp, py, future):
    """Buffers the official builders can make but libshm must refuse."""
    cases = [
        ("no_identifier", py_value(py, dict(sequence=1), ident=None), "file identifier"),
        ("meta_as_value", py_meta(py, dict(name=b"x")), 'expected "SHMV"'),
        ("oversize_name", py_meta(py, dict(name=b"n" * 256)),
         "TagMeta.name: string of 256 bytes is longer than 255"),
        ("nul_in_unit", py_meta(py, dict(unit=b"m\x00s")),
         "TagMeta.unit: string contains a NUL byte at index 1"),
        ("not_utf8", py_meta(py, dict(device=b"\xff\xfe")),
         "TagMeta.device: string is not valid UTF-8"),
    ]
    names = []
    for name, buf, expect in cases:
        names.append(write(tmp, f"reject_{name}.bin", buf))
    docs = c_decode(names[:2], "decode-value") + c_decode(names[2:], "decode-meta")
    for (name, _, expect), doc in zip(cases, docs):
        CHECK.true(f"reject {name}: refused", doc.get("ok") is False)
        CHECK.true(f"reject {name}: diag {doc.get('diag')!r} names {expect!r}",
                   expect in (doc.get("diag") or ""))

    # Every truncation of official buffers: refused, or (where the builder left
    # trailing padding) read with exactly the same values. Never anything else.
    bufs = [("value", py_value(py, value_cases()[1])), ("meta", py_meta(py, meta_cases()[1])),
            ("future", future)]
    total = 0
    for label, buf in bufs:
        full = c_decode([write(tmp, f"trunc_{label}_full.bin", buf)])[0]
        CHECK.true(f"truncation {label}: full buffer accepted", full.get("ok"))
        files = [write(tmp, f"trunc_{label}_{k:04d}.bin", buf[:k]) for k in range(len(buf))]
        for k, doc in enumerate(c_decode(files)):
            if doc.get("ok"):
                same = {a: b for a, b in doc.items() if a not in ("file", "len")}
                ref = {a: b for a, b in full.items() if a not in ("file", "len")}
                CHECK.eq(f"truncation {label} to {k} bytes reads the same", same, ref)
            else:
                CHECK.true(f"truncation {label} to {k}: diag", doc.get("diag"))
        total += len(files)
    return len(cases) + total


# --------------------------------------------------- newer schema, nesting

FUTURE_FBS = """
// A newer TagValue: two fields appended, one of them a chain of nested tables.
namespace shmbus_future;
table Nested { child: Nested; depth: uint; }
table TagValue {
  sequence: ulong; timestamp_ns: long; device_id: uint; tag_id: uint; value: double;
  raw: long; quality: ubyte; exception_code: ubyte; flags: ushort;
  label: string;   // id 9
  chain: Nested;   // id 10
}
root_type TagValue;
file_identifier "SHMV";
"""


def future_buffer(tmp):
    """A TagValue from a newer schema carrying a 300-deep nested chain."""
    import flatbuffers
    import importlib
    path = os.path.join(tmp, "future.fbs")
    with open(path, "w") as f:
        f.write(FUTURE_FBS)
    run([FLATC, "--python", "-o", os.path.join(tmp, "py"), path])
    N = importlib.import_module("shmbus_future.Nested")
    T = importlib.import_module("shmbus_future.TagValue")
    b = flatbuffers.Builder(0)
    child = 0
    for depth in range(300):
        N.Start(b)
        if child:
            N.AddChild(b, child)
        N.AddDepth(b, depth)
        child = N.End(b)
    label = b.CreateString("from a newer producer")
    T.Start(b)
    T.AddSequence(b, 77)
    T.AddTagId(b, 12)
    T.AddValue(b, 6.25)
    T.AddQuality(b, 1)
    T.AddLabel(b, label)
    T.AddChain(b, child)
    root = T.End(b)
    b.Finish(root, b"SHMV")
    return bytes(b.Output())


def newer_schema(tmp, future):
    doc = c_decode([write(tmp, "future_nested.bin", future)])[0]
    check_c_value("newer schema with 300-deep nesting", doc,
                  dict(sequence=77, tag_id=12, value=6.25, quality=1))
    return 1


# ------------------------------------------------------------------ main

def main():
    if FLATC is None:
        print("flatc not found", file=sys.stderr)
        return 1
    if not os.access(TOOL, os.X_OK):
        print(f"{TOOL} is not built", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="shmbus-records-") as tmp:
        pydir = os.path.join(tmp, "py")
        run([FLATC, "--python", "-o", pydir, "-I", SCHEMAS, os.path.join(SCHEMAS, "shmbus.fbs"),
             os.path.join(SCHEMAS, "catalog.fbs")])
        sys.path.insert(0, pydir)
        import importlib
        py = dict(TagValue=importlib.import_module("shmbus.TagValue"),
                  TagMeta=importlib.import_module("shmbus.TagMeta"))
        counts = dict(c_to_official=c_to_official(tmp, py), official_to_c=official_to_c(tmp, py))
        future = future_buffer(tmp)
        counts["newer_schema"] = newer_schema(tmp, future)
        counts["rejected"] = official_rejected(tmp, py, future)
    for f in CHECK.failures:
        print("FAIL", f)
    print(json.dumps(dict(buffers=counts, checks_passed=CHECK.passed,
                          checks_failed=len(CHECK.failures))))
    return 1 if CHECK.failures else 0


if __name__ == "__main__":
    sys.exit(main())
