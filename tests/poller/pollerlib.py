"""pollerlib.py -- shared helpers of the poller's end-to-end tests.

Every child process a test starts is killed at exit (also when an assertion
fails), every segment it names is unlinked, every temporary directory
removed. Waits are bounded. Run with /usr/bin/python3 (SHMBUS_PYTHON3).
"""
import atexit
import json
import math
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("SHMBUS_BIN_DIR", os.path.join(os.getcwd(), "bin"))
SRC = os.environ.get("SHMBUS_SOURCE_DIR", os.path.dirname(os.path.abspath(__file__)) + "/../..")
PY = os.environ.get("SHMBUS_PYTHON3", "/usr/bin/python3")
HERE = os.path.dirname(os.path.abspath(__file__))

_children = []
_segments = []
_dirs = []


def _cleanup():
    for p in _children:
        if p.poll() is None:
            p.kill()
            p.wait()
    for s in _segments:
        try:
            os.unlink("/dev/shm/shmbus." + s)
        except FileNotFoundError:
            pass
    if not os.environ.get("SHMTEST_KEEP"):
        for d in _dirs:
            shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def tmpdir():
    d = tempfile.mkdtemp(prefix="shmbus-poller-")
    _dirs.append(d)
    return d


def segment_name(prefix):
    name = "t%d-%s" % (os.getpid(), prefix)
    _segments.append(name)
    return name


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def free_ports(n):
    """A base port with n consecutive ports free a moment ago."""
    import random
    for _ in range(100):
        base = random.randint(20000, 60000)
        socks = []
        try:
            for i in range(n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    fail("no %d consecutive free ports" % n)


def spawn(argv, log=None, **kw):
    out = open(log, "w") if log else subprocess.DEVNULL
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **kw)
    _children.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=10):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return p.returncode


def wait_until(cond, timeout, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def modbus_server(port, layout, directory, framer="socket", ignore_missing=False, tag="pm"):
    path = os.path.join(directory, "layout-%d.json" % port)
    with open(path, "w") as f:
        json.dump(layout, f)
    argv = [PY, os.path.join(HERE, "modbus_server.py"), "--port", str(port), "--layout", path,
            "--framer", framer]
    if ignore_missing:
        argv.append("--ignore-missing")
    p = spawn(argv, log=os.path.join(directory, "%s-%d.log" % (tag, port)))
    check(wait_until(lambda: port_open(port), 20), "pymodbus server on port %d did not start" % port)
    return p


def serial_line(directory):
    """A pty pair joined by socat, standing in for an RS-485 line: returns
    (the poller's end, the device's end)."""
    a, b = os.path.join(directory, "tty-poller"), os.path.join(directory, "tty-device")
    spawn(["socat", "pty,raw,echo=0,link=" + a, "pty,raw,echo=0,link=" + b],
          log=os.path.join(directory, "socat.log"))
    check(wait_until(lambda: os.path.exists(a) and os.path.exists(b), 10), "socat made no ptys")
    return a, b


def modbus_serial_server(device, layout, directory, other_end):
    """pymodbus on `device`; ready once mbpoll gets an answer on other_end."""
    path = os.path.join(directory, "layout-serial.json")
    with open(path, "w") as f:
        json.dump(layout, f)
    p = spawn([PY, os.path.join(HERE, "modbus_server.py"), "--serial", device, "--layout", path],
              log=os.path.join(directory, "pm-serial.log"))
    unit = sorted(layout["units"])[0]

    def answers():
        r = subprocess.run(["mbpoll", "-1", "-m", "rtu", "-b", "19200", "-P", "none", "-0",
                            "-a", unit, "-r", "0", "-c", "1", "-o", "0.5", other_end],
                           capture_output=True, text=True, timeout=10)
        return r.returncode == 0
    check(wait_until(answers, 20, step=0.2), "pymodbus serial server does not answer")
    return p


def sim(config_path, directory, *extra):
    p = spawn([os.path.join(BIN, "shmbus-sim"), "--config", config_path] + list(extra),
              log=os.path.join(directory, "sim.log"))
    return p


class Probe:
    """ring_probe in the background: joins a group before the poller starts."""

    def __init__(self, segment, directory, seconds, extra=()):
        self.out = os.path.join(directory, "probe-%s.jsonl" % segment)
        ready = os.path.join(directory, "probe-%s.ready" % segment)
        f = open(self.out, "w")
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "ring_probe"), "--segment", segment, "--seconds", str(seconds),
             "--ready", ready, "--catalog", "--counters", "shmbus_poller"] + list(extra),
            stdout=f, stderr=subprocess.STDOUT)
        _children.append(self.proc)
        check(wait_until(lambda: os.path.exists(ready), 10), "ring_probe did not start")

    def finish(self, timeout=60):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        return self.parse()

    def stop_now(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)
        return self.parse()

    def parse(self):
        records, catalog, counters, invalid, other = [], {}, {}, [], []
        with open(self.out) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    j = json.loads(line)
                except ValueError:
                    other.append(line)
                    continue
                if "catalog" in j:
                    catalog[j["catalog"]] = j
                elif "counter" in j:
                    counters[j["counter"]] = j["value"]
                elif "invalid" in j:
                    invalid.append(j)
                else:
                    records.append(j)
        check(not invalid, "ring_probe saw records that failed verification: %r" % invalid[:3])
        return records, catalog, counters


def poller(config_path, directory, log_name="poller.log"):
    return spawn([os.path.join(BIN, "shmbus-poller"), "--config", config_path],
                 log=os.path.join(directory, log_name))


def counter(counters, metric, device, kind=None):
    if kind:
        return counters.get('shmbus_poller_%s{device="%s",kind="%s"}' % (metric, device, kind), 0)
    return counters.get('shmbus_poller_%s{device="%s"}' % (metric, device), 0)


# ------------------------------------------------------------ value encoding
# An implementation independent of the C code: struct packs the value big
# endian (letter A = most significant byte), the order string says which
# value byte sits at each wire position.

FMT = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "int64": ">q",
       "uint64": ">Q", "float32": ">f", "float64": ">d"}
TYPE_IDS = {"bool": 0, "bit": 1, "int16": 2, "uint16": 3, "int32": 4, "uint32": 5, "int64": 6,
            "uint64": 7, "float32": 8, "float64": 9, "string": 10}


def value_bytes(dtype, raw):
    return struct.pack(FMT[dtype], raw)


def to_registers(dtype, order, raw):
    vb = value_bytes(dtype, raw)
    wire = bytes(vb[ord(c) - ord("A")] for c in order)
    return [wire[i] << 8 | wire[i + 1] for i in range(0, len(wire), 2)]


def decoded(dtype, raw, scale=1.0, offset=0.0):
    """(value, raw as the poller publishes them) for a raw device value."""
    if dtype in ("float32", "float64"):
        bits = struct.unpack(">I" if dtype == "float32" else ">Q", value_bytes(dtype, raw))[0]
        x = struct.unpack(FMT[dtype], value_bytes(dtype, raw))[0]
        rawpub = bits if dtype == "float32" else struct.unpack(">q", struct.pack(">Q", bits))[0]
    else:
        x = float(raw)
        rawpub = raw if dtype != "uint64" else struct.unpack(">q", struct.pack(">Q", raw))[0]
    if scale != 1.0 or offset != 0.0:
        x = x * scale + offset
    return x, rawpub


def text_registers(text, length, order="AB"):
    b = text.encode().ljust(2 * length, b"\0")[: 2 * length]
    if order == "BA":
        return [b[i + 1] << 8 | b[i] for i in range(0, len(b), 2)]
    return [b[i] << 8 | b[i + 1] for i in range(0, len(b), 2)]


def text_raw(text):
    b = text.encode().ljust(8, b"\0")[:8]
    return struct.unpack("<q", b)[0]


def f64_bits(x):
    return "%016x" % struct.unpack(">Q", struct.pack(">d", x))[0]


def latest_by_tag(records, quality=None):
    out = {}
    for r in records:
        if quality is None or r["quality"] == quality:
            out[r["tag"]] = r
    return out


def qname(q):
    return ["GOOD", "BAD", "STALE", "COMM_FAIL", "CONFIG_ERROR", "DEVICE_EXCEPTION",
            "DECODE_ERROR"][q]
