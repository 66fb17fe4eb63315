"""e2elib.py -- the shmbus process group under a real supervisord, for the
end-to-end tests.

A Group is one temporary directory holding everything of one run: the group
configuration (unique segment, free loopback ports, run and data dirs), a
copy of deploy/supervisor/shmbus.conf (its writer numprocs is what the
scaling test edits), supervisord's socket, pid file and logs. supervisord
runs in the foreground as the test's child, with
deploy/supervisor/supervisord.conf and the environment variables that file
and shmbus.conf name. The device is e2e_device.py (python3-pymodbus)
serving tags whose values change with every poll and logging each served
read, so a test can compare the store with exactly what the device served.

Every process is stopped at exit, also when a check fails: SIGCONT to any
stopped member, `supervisorctl shutdown`, a bounded wait for supervisord,
then SIGKILL to whatever is left of this run's processes (found by the run's
directory on their command line, never by a program name); then the
directory is removed (kept with SHMTEST_KEEP=1) and pollerlib (imported from
tests/poller) unlinks the segment. Run with /usr/bin/python3 (SHMBUS_PYTHON3).
"""
import atexit
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "poller"))
import pollerlib as pl  # noqa: E402
from e2e_device import raw_value  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(pl.SRC)
BIN = pl.BIN
SUPERVISORD_CONF = os.path.join(SRC, "deploy", "supervisor", "supervisord.conf")
SHMBUS_CONF = os.path.join(SRC, "deploy", "supervisor", "shmbus.conf")
check, fail, wait_until = pl.check, pl.fail, pl.wait_until

# Programs as supervisorctl names them (see deploy/supervisor/shmbus.conf).
CONTROLLER = "shmbus:shmbus-controller"
STATS = "shmbus:shmbus-stats"
POLLER = "shmbus:shmbus-poller"


def writer(n):
    return "shmbus-writer:shmbus-writer-%d" % n


def need(*commands):
    for c in commands:
        if not shutil.which(c):
            print("SKIP: %s is not installed" % c)
            sys.exit(77)


need("supervisord", "supervisorctl", "nngcat", "curl")


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


# ------------------------------------------------------------------ tags

# A mix of types and byte orders, cycled over a table's tags. Tag 0 of
# every table is a uint16 counter (raw = k): it names the read k of a point.
KINDS = [("uint16", "AB", 1, 0, 1.0, 0.0), ("int16", "AB", 3, -30000, 0.1, 0.0),
         ("float32", "CDAB", 0.25, 7.0, 1.0, 0.0), ("int32", "ABCD", -1000, 5, 1.0, 0.0),
         ("uint32", "DCBA", 70001, 0, 0.001, 0.0), ("float64", "GHEFCDAB", 0.125, 1e6, 1.0, 0.0),
         ("int64", "HGFEDCBA", -(1 << 40) - 3, 11, 1.0, 0.0),
         ("uint64", "ABCDEFGH", 1 << 50, 1, 1.0, 0.0), ("uint16", "BA", 5, 1, 0.5, -2.0)]
WIDTH = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "int64": 4,
         "uint64": 4, "float64": 4}


class Tag:
    def __init__(self, name, unit, table, address, dtype, order, a, b, scale, offset, group,
                 priority):
        self.name, self.unit, self.table, self.address = name, unit, table, address
        self.type, self.order, self.a, self.b = dtype, order, a, b
        self.scale, self.offset, self.group, self.priority = scale, offset, group, priority

    def spec(self):
        return {"address": self.address, "type": self.type, "order": self.order, "a": self.a,
                "b": self.b}

    def value(self, k):
        """The value the poller publishes for read k (pollerlib's decoder)."""
        return pl.decoded(self.type, raw_value(self.spec(), k), self.scale, self.offset)[0]

    def yaml(self):
        table = {"hr": "holding", "ir": "input"}[self.table]
        return ("      - {name: %s, unit_id: %d, register: %s, address: %d, type: %s, order: %s, "
                "scale: %r, offset: %r, poll_group: %s, priority: %d}\n"
                % (self.name, self.unit, table, self.address, self.type, self.order, self.scale,
                   self.offset, self.group, self.priority))


def table_tags(prefix, table, count, group, priority=0, unit=1):
    """`count` tags of one register table at consecutive addresses (one
    request per poll), the first a counter."""
    tags, addr = [], 0
    for i in range(count):
        dtype, order, a, b, scale, offset = KINDS[i % len(KINDS)]
        tags.append(Tag("%s.%s%d" % (prefix, dtype, i), unit, table, addr, dtype, order, a,
                        b + i, scale, offset, group, priority))
        addr += WIDTH[dtype]
    # One request per poll (<= 125 registers): the device counts reads at address 0.
    check(addr <= 125, "%d tags take %d registers: more than one request" % (count, addr))
    return tags


# ------------------------------------------------------------------ the group

class Group:
    """One shmbus group under supervisord, with its device."""

    def __init__(self, name, tags=(), poll_groups=(), segment="", controller="", writers=1,
                 extra="", sim_devices=None):
        """tags and poll_groups make device dev1, served by e2e_device.py;
        or sim_devices, the YAML of the devices list, served by shmbus-sim
        under supervisord (deploy/supervisor/sim.conf, as in the demo)."""
        self.dir = tempfile.mkdtemp(prefix="shmbus-e2e-")
        self.seg = pl.segment_name(name)
        self.tags = list(tags)
        self.writers = writers
        for sub in ("state", "log", "run", "data"):
            os.makedirs(os.path.join(self.dir, sub))
        self.http_port = pl.free_ports(2)
        self.device_port = self.http_port + 1
        self.url = "http://127.0.0.1:%d" % self.http_port
        self.config = os.path.join(self.dir, "shmbus.yaml")
        self.include = os.path.join(self.dir, "shmbus.conf")
        devices = sim_devices if sim_devices is not None else self._device_yaml(poll_groups)
        with open(self.config, "w") as f:
            f.write("segment:\n  name: %s\n%s"
                    "paths:\n  run_dir: %s/run\n  data_dir: %s/data\n"
                    "controller:\n  http: 127.0.0.1:%d\n  required_roles: [poller, writer]\n"
                    "%s%sdevices:\n%s"
                    % (self.seg, segment, self.dir, self.dir, self.http_port, controller, extra,
                       devices))
        self._write_include(writers)
        includes = self.include
        if sim_devices is not None:
            includes += " " + os.path.join(SRC, "deploy", "supervisor", "sim.conf")
        self.env = dict(os.environ, SHMBUS_BIN=BIN, SHMBUS_CONFIG=self.config,
                        SHMBUS_LOG_DIR=os.path.join(self.dir, "log"),
                        SHMBUS_STATE_DIR=os.path.join(self.dir, "state"),
                        SHMBUS_SUPERVISOR_INCLUDE=includes)
        self.served_log = os.path.join(self.dir, "served.jsonl")
        self.device = self.supervisord = None
        self.started = False
        atexit.register(self.cleanup)  # runs before pollerlib's (LIFO)

    def _device_yaml(self, poll_groups):
        groups = ", ".join("{name: %s, interval_ms: %d}" % g for g in poll_groups)
        return ("  - name: dev1\n    transport: tcp\n    host: 127.0.0.1\n"
                "    port: %d\n    address_base: 0\n    response_timeout_ms: 3000\n"
                "    poll_groups: [%s]\n    tags:\n" % (self.device_port, groups)
                + "".join(t.yaml() for t in self.tags))

    def _write_include(self, writers):
        with open(SHMBUS_CONF) as f:
            text = f.read()
        text, n = re.subn(r"(?m)^numprocs=\d+$", "numprocs=%d" % writers, text, count=1)
        check(n == 1, "no numprocs line in %s" % SHMBUS_CONF)
        with open(self.include, "w") as f:
            f.write(text)

    # -------------------------------------------------------- start / stop

    def start(self):
        if self.tags:
            self._start_device()
        # In the foreground (-n), a child of this test that gets SIGTERM when
        # the test dies however it dies (PR_SET_PDEATHSIG): it then stops
        # the group itself, and ctest's kill of a timed-out test's process
        # tree reaches it.
        self.supervisord = subprocess.Popen(
            ["supervisord", "-n", "-c", SUPERVISORD_CONF], env=self.env,
            stdout=open(os.path.join(self.dir, "supervisord.out"), "w"),
            stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        self.started = True
        sock = os.path.join(self.dir, "state", "supervisor.sock")
        check(wait_until(lambda: os.path.exists(sock) or self.supervisord.poll() is not None, 30),
              "supervisord did not start")
        check(self.supervisord.poll() is None, "supervisord exited with %s"
              % self.supervisord.returncode)
        self.wait_healthy(60)
        everything = lambda: all(st == "RUNNING" for st, _ in self.status().values())
        check(wait_until(everything, 60, step=0.2), "not every program is RUNNING: %r"
              % self.status())
        log("group %s up under supervisord (%s)" % (self.seg, self.dir))

    def _start_device(self):
        spec = {"units": {}}
        for t in self.tags:
            spec["units"].setdefault(str(t.unit), {}).setdefault(t.table, []).append(t.spec())
        path = os.path.join(self.dir, "device.json")
        with open(path, "w") as f:
            json.dump(spec, f)
        self.device = pl.spawn([pl.PY, os.path.join(HERE, "e2e_device.py"), "--port",
                                str(self.device_port), "--spec", path, "--log", self.served_log],
                               log=os.path.join(self.dir, "device.log"),
                               preexec_fn=_die_with_parent)
        check(wait_until(lambda: pl.port_open(self.device_port), 20), "device did not start")

    def run(self, scenario):
        """Starts the group, runs scenario(), stops the group and checks that
        every exit supervisord saw was clean, except the SIGKILLs of the
        programs scenario() returns. On failure, the services' logs are
        printed."""
        self.start()
        try:
            killed = scenario() or ()
            self.shutdown()
            self.check_clean_exits(allow_killed=killed)
        except SystemExit:
            self.tail_logs()
            raise
        print("PASS")

    def ctl(self, *args, ok=True):
        r = subprocess.run(["supervisorctl", "-c", SUPERVISORD_CONF] + list(args), env=self.env,
                           capture_output=True, text=True, timeout=120)
        if ok:
            check(r.returncode == 0, "supervisorctl %s: %s%s" % (" ".join(args), r.stdout,
                                                                  r.stderr))
        return r.stdout

    def status(self):
        """{process name: (state, pid or 0)} from `supervisorctl status`."""
        out = {}
        for line in self.ctl("status", ok=False).splitlines():
            parts = line.split()
            if len(parts) >= 2:
                m = re.search(r"pid (\d+),", line)
                out[parts[0]] = (parts[1], int(m.group(1)) if m else 0)
        return out

    def pid(self, proc):
        return self.status().get(proc, ("?", 0))[1]

    def wait_running(self, proc, not_pid=0, timeout=60):
        """Waits until `proc` is RUNNING (past startsecs) with a pid other
        than not_pid; returns the pid."""
        def running():
            state, pid = self.status().get(proc, ("?", 0))
            return pid if state == "RUNNING" and pid != not_pid else 0
        pid = wait_until(running, timeout, step=0.2)
        check(pid, "%s not RUNNING again within %d s: %r" % (proc, timeout, self.status()))
        return pid

    def set_writers(self, n):
        """Edits numprocs in the included conf and runs `supervisorctl update`."""
        self._write_include(n)
        self.writers = n
        self.ctl("update")
        for i in range(1, n + 1):
            self.wait_running(writer(i))
        gone = [p for p in self.status() if p.startswith("shmbus-writer:")
                and int(p.rsplit("-", 1)[1]) > n]
        check(not gone, "writers still listed after scaling to %d: %r" % (n, gone))

    def own_pids(self):
        """Processes of this run: their command line names its directory."""
        pids = []
        for p in os.listdir("/proc"):
            if not p.isdigit() or int(p) == os.getpid():
                continue
            try:
                with open("/proc/%s/cmdline" % p, "rb") as f:
                    if self.dir.encode() in f.read():
                        pids.append(int(p))
            except OSError:
                pass
        return pids

    def shutdown(self):
        """Stops everything supervisord runs (clean stops) and supervisord."""
        if not self.started:
            return
        self.started = False
        for p in self.own_pids():
            _signal(p, signal.SIGCONT)
        self.ctl("shutdown", ok=False)
        try:
            self.supervisord.wait(60)
        except subprocess.TimeoutExpired:
            self.supervisord.kill()
            self.supervisord.wait()

    def cleanup(self):
        try:
            self.shutdown()
        finally:
            if self.supervisord is not None and self.supervisord.poll() is None:
                self.supervisord.kill()  # first: it would restart what is killed next
                self.supervisord.wait()
            for p in self.own_pids():
                _signal(p, signal.SIGCONT)
                _signal(p, signal.SIGKILL)
            if self.device is not None:
                pl.stop(self.device, signal.SIGKILL)
            if not os.environ.get("SHMTEST_KEEP"):
                shutil.rmtree(self.dir, ignore_errors=True)

    def supervisord_log(self):
        with open(os.path.join(self.dir, "state", "supervisord.log")) as f:
            return f.read()

    def check_clean_exits(self, allow_killed=()):
        """Every exit supervisord saw was a clean stop (status 0), except
        SIGKILLs of the pids in allow_killed."""
        bad = []
        for line in self.supervisord_log().splitlines():
            m = re.search(r"(stopped|exited): (\S+) \((.*)\)", line)
            if not m or m.group(3) == "exit status 0":
                continue
            if m.group(3).startswith("terminated by SIGKILL") and m.group(2) in allow_killed:
                continue
            bad.append(line)
        check(not bad, "unclean exits under supervisord:\n  " + "\n  ".join(bad))

    def tail_logs(self, lines=30):
        for name in sorted(os.listdir(os.path.join(self.dir, "log"))):
            path = os.path.join(self.dir, "log", name)
            with open(path, errors="replace") as f:
                text = f.read().splitlines()[-lines:]
            print("--- %s (last %d lines)" % (name, len(text)))
            print("\n".join(text))

    # -------------------------------------------------------- peers

    def http(self, path):
        """(status, body) of GET path, with curl."""
        r = subprocess.run(["curl", "-sS", "--max-time", "5", "-w", "\n%{http_code}",
                            self.url + path], capture_output=True, text=True, timeout=20)
        body, _, code = r.stdout.rpartition("\n")
        return (int(code) if code.isdigit() else 0), body

    def api(self, path):
        code, body = self.http(path)
        check(code == 200, "GET %s: %d %s" % (path, code, body))
        return json.loads(body)

    def healthy(self):
        return self.http("/healthz")[0] == 200

    def wait_healthy(self, timeout):
        if not wait_until(self.healthy, timeout, step=0.2):
            self.tail_logs()
            fail("/healthz not 200 within %d s: %r" % (timeout, self.http("/healthz")))

    def nng(self, url, request):
        r = subprocess.run(["nngcat", "--req", "--dial", url, "--data", json.dumps(request),
                            "--raw", "--recv-timeout", "10", "--send-timeout", "10"],
                           capture_output=True, timeout=30)
        check(r.returncode == 0 and r.stdout, "nngcat %s %s: rc %d %s" % (
            url, request, r.returncode, r.stderr.decode(errors="replace")))
        return json.loads(r.stdout)

    def control(self, request):
        return self.nng("ipc://%s/run/%s.control" % (self.dir, self.seg), request)

    def stats(self, request):
        answer = self.nng("ipc://%s/run/%s.stats" % (self.dir, self.seg), request)
        check(answer.get("ok"), "stats %s: %s" % (request, answer))
        return answer

    def shmstat(self):
        r = subprocess.run([os.path.join(BIN, "shmstat"), "--name", self.seg, "--json"],
                           capture_output=True, text=True, timeout=30)
        check(r.returncode == 0, "shmstat: %s" % r.stderr)
        return json.loads(r.stdout)

    def group_stats(self, name):
        return [g for g in self.shmstat()["groups"] if g["name"] == name][0]

    def wait_drained(self, group, timeout=60):
        """Waits until `group` has acknowledged every record put."""
        check(wait_until(lambda: self.group_stats(group)["lag"] == 0, timeout, step=0.2),
              "group %s did not drain within %d s: %r" % (group, timeout, self.group_stats(group)))

    def records_put(self):
        return self.shmstat()["ring"]["records_put"]

    def wait_flowing(self, more, timeout=60):
        """Waits until `more` records more have been put."""
        start = self.records_put()
        check(wait_until(lambda: self.records_put() >= start + more, timeout, step=0.2),
              "records do not flow: %d put, waited for %d more" % (self.records_put(), more))

    def served(self):
        """Reads the device served: [{"unit", "table", "k", "t_ns"}]."""
        with open(self.served_log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def check_served(self, points, max_missing=1):
        """Stored points == the device's logged reads, decoded: each read the
        device logged is stored once, one point per tag, at one timestamp taken
        just before the device answered, each value as the device encoded it.
        At most max_missing reads per table may be missing (answered while the
        poller was stopped or killed). Returns {tag name: [points]}."""
        by_tag = {}
        for p in points:
            check(p["quality"] == "GOOD", "a point that is not GOOD: %r" % p)
            by_tag.setdefault(p["tag"], []).append(p)
        served = self.served()
        for table in ("hr", "ir"):
            tags = [t for t in self.tags if t.table == table]
            reads = {s["k"]: s["t_ns"] for s in served if s["table"] == table}
            if not tags:
                continue
            at, seen = {}, set()  # time_ns -> k, from the table's counter tag
            for p in by_tag.get(tags[0].name, []):
                k = int(p["value"])
                check(k in reads, "%s: stored read %d that the device never served" % (table, k))
                check(p["time_ns"] not in at and k not in seen,
                      "%s: read %d stored twice" % (table, k))
                at[p["time_ns"]] = k
                seen.add(k)
                # The poll instant is taken just before the request is sent.
                lead = reads[k] - p["time_ns"]
                check(-5e6 < lead < 3e9, "%s read %d: served %.3f s after its timestamp"
                      % (table, k, lead / 1e9))
            missing = sorted(set(reads) - seen)
            check(len(missing) <= max_missing, "%s: reads served but not stored: %r (of %d)"
                  % (table, missing[:10], len(reads)))
            check(len(at) >= 20, "%s: only %d reads stored" % (table, len(at)))
            for t in tags:
                mine = by_tag.get(t.name, [])
                check(len(mine) == len(at), "%s: %d points, %d reads" % (t.name, len(mine), len(at)))
                for p in mine:
                    k = at.get(p["time_ns"])
                    check(k is not None, "%s: a point at a time no read has: %r" % (t.name, p))
                    check(p["value"] == t.value(k), "%s read %d: stored %r, device served %r"
                          % (t.name, k, p["value"], t.value(k)))
            log("%s: %d reads served, %d stored, every value as served; not stored: %r"
                % (table, len(reads), len(at), missing))
        return by_tag

    # -------------------------------------------------------- the store

    def query(self, *args):
        r = subprocess.run([os.path.join(BIN, "shmbus-query"), "--data",
                            os.path.join(self.dir, "data")] + list(args),
                           capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, "shmbus-query %s: exit %d: %s" % (" ".join(args), r.returncode,
                                                                   r.stderr))
        return r.stdout

    def stored(self):
        """Every point the store returns (duplicates dropped by the reader)."""
        args = ["--format", "json"]
        for t in self.tags:
            args += ["--tag", t.name]
        return [json.loads(line) for line in self.query(*args).splitlines() if line]

    def stored_physically(self):
        """Points in the chunk files, duplicates included (--list)."""
        rows = [json.loads(line) for line in self.query("--list", "--format", "json").splitlines()
                if line]
        return sum(r["points"] for r in rows)

    def check_store(self, allow_duplicates=False):
        """Every record put into the ring is stored exactly once: the
        sequence numbers read back are [initial_seq, head_seq) without a gap
        (less the slots of dead producers that consumers skipped), none
        returned twice, and, unless allowed, none stored twice. Returns the
        points and the shmstat document."""
        points = self.stored()
        st = self.shmstat()
        first, head = st["segment"]["initial_seq"], st["ring"]["head_seq"]
        writer_group = [g for g in st["groups"] if g["name"] == "writer"][0]
        check(writer_group["lag"] == 0, "writer group not drained: %r" % writer_group)
        seqs = [p["seq"] for p in points]
        unique = set(seqs)
        check(len(unique) == len(seqs), "shmbus-query returned %d sequence numbers twice"
              % (len(seqs) - len(unique)))
        outside = [s for s in unique if not first <= s < head]
        check(not outside, "stored seqs outside [initial, head): %r" % outside[:5])
        padded = writer_group["padded"]
        missing = (head - first) - padded - len(unique)
        if missing:
            gaps = sorted(set(range(first, head)) - unique)
            fail("%d sequence numbers missing from the store (%d padded slots of dead producers "
                 "excluded), first ones: %r" % (missing, padded, [g - first for g in gaps[:10]]))
        check(writer_group["lost"] == 0 and writer_group["invalid"] == 0,
              "writer group lost or refused records: %r" % writer_group)
        physical = self.stored_physically()
        if not allow_duplicates:
            check(physical == len(unique), "%d points stored twice in the chunk files"
                  % (physical - len(unique)))
        log("store: %d records, seqs [initial, head) complete (%d padded), %d physical copies"
            % (len(unique), padded, physical))
        return points, st


def _die_with_parent():
    """In a child before exec: SIGTERM when the parent dies."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _signal(pid, sig):
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
