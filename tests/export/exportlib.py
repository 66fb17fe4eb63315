"""exportlib.py — what the shmbus-export tests share: real servers started in
temporary directories, the feeder, export processes, and cleanup that runs
even when a test fails.

Servers (PostgreSQL 15 from Debian, mosquitto) run as the unprivileged user
`nobody` when the tests run as root (postgres refuses root), bind 127.0.0.1
on ports chosen here, keep their data under the test's temporary directory,
and are started as direct children with PR_SET_PDEATHSIG, so even a test
killed by ctest's timeout takes them along. Every child is also killed and
every segment unlinked by an atexit handler.

Run with /usr/bin/python3 (Debian's). Environment: SHMBUS_BIN_DIR (built
executables), EXPORT_FEED (the feeder), SHMBUS_SOURCE_DIR.
"""
import atexit
import ctypes
import glob
import json
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

_libc = ctypes.CDLL(None, use_errno=True)
_children = []
_segments = []
_tmpdirs = []
_servers = []  # stopped gracefully at exit, before children are killed
SKIP = 77


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _pdeathsig():
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the test


def _cleanup():
    for srv in reversed(_servers):
        try:
            srv.shutdown()
        except Exception:
            pass
    for p in reversed(_children):
        if p.poll() is None:
            try:
                p.kill()
                p.wait(timeout=10)
            except Exception:
                pass
    for name in _segments:
        try:
            os.unlink(f"/dev/shm/shmbus.{name}")
        except FileNotFoundError:
            pass
    if not os.environ.get("SHMTEST_KEEP"):
        for d in _tmpdirs:
            shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))


def skip(why):
    print(f"SKIP: {why}", flush=True)
    sys.exit(SKIP)


def fail(why):
    print(f"FAIL: {why}", flush=True)
    sys.exit(1)


def check(cond, why):
    if not cond:
        fail(why)
    log(f"ok: {why}")


def spawn(args, log_path=None, user=None, env=None, cwd=None):
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    kw = {}
    if user is not None:
        kw["user"] = user.pw_uid
        kw["group"] = user.pw_gid
        kw["extra_groups"] = []
    p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_pdeathsig,
                         env=env, cwd=cwd, **kw)
    if log_path:
        out.close()
    _children.append(p)
    return p


def tmpdir(owner=None):
    d = tempfile.mkdtemp(prefix="shmbus-export-test-")
    _tmpdirs.append(d)
    os.chmod(d, 0o755)
    if owner is not None:
        os.chown(d, owner.pw_uid, owner.pw_gid)
    return d


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(cond, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    fail(f"timed out after {timeout} s waiting for {what}")


class SilentServer:
    """A loopback port that accepts connections and never says a word: a
    database or broker host that is there but does not answer. Its
    connections are held until the test ends."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return


def secret(directory, name, text):
    """A password file (mode 0600) holding text; returns its path."""
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)
    return path


def server_user():
    """The user servers run as: nobody when we are root, else ourselves."""
    if os.geteuid() == 0:
        return pwd.getpwnam("nobody")
    return None


def bin_path(name):
    return os.path.join(os.environ.get("SHMBUS_BIN_DIR", "./bin"), name)


# ------------------------------------------------------------------ postgres

def pg_bindir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return os.path.dirname(found[-1]) if found else None


class Postgres:
    """A PostgreSQL server in a temporary directory: superuser `shmbus`,
    trust on the Unix socket (the tests' psql), scram-sha-256 over TCP (the
    exporter, with a password file)."""

    PASSWORD = "s3cret-export-pw"

    def __init__(self, fsync=False, settings=()):
        bindir = pg_bindir()
        if not bindir or not shutil.which("psql"):
            skip("PostgreSQL server binaries or psql are not installed")
        self.bindir = bindir
        self.user = server_user()
        self.dir = tmpdir(self.user)
        self.data = os.path.join(self.dir, "data")
        self.sock = self.dir
        self.port = free_port()
        self.log = os.path.join(self.dir, "postgres.log")
        self.fsync = fsync
        self.settings = list(settings)  # more "-c name=value" for the server
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as f:
            f.write(self.PASSWORD + "\n")
        if self.user:
            os.chown(pwfile, self.user.pw_uid, self.user.pw_gid)
        t0 = time.monotonic()
        p = spawn([f"{bindir}/initdb", "-D", self.data, "-U", "shmbus", "--auth-local=trust",
                   "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8",
                   "--locale=C.UTF-8", "--no-sync"], os.path.join(self.dir, "initdb.log"),
                  user=self.user)
        if p.wait(timeout=90) != 0:
            fail(f"initdb failed: {open(os.path.join(self.dir, 'initdb.log')).read()[-2000:]}")
        log(f"initdb in {time.monotonic() - t0:.1f} s")
        self.proc = None
        _servers.append(self)
        self.start()

    def shutdown(self):
        if self.proc and self.proc.poll() is None:
            self.stop("fast")

    def start(self):
        args = [f"{self.bindir}/postgres", "-D", self.data, "-k", self.sock,
                "-c", "listen_addresses=127.0.0.1", "-p", str(self.port),
                "-c", f"fsync={'on' if self.fsync else 'off'}",
                "-c", "max_connections=40", "-c", "shared_buffers=32MB",
                # dynamic shared memory as files in the data directory: nothing
                # is left in /dev/shm even when the server is killed
                "-c", "dynamic_shared_memory_type=mmap",
                "-c", "log_min_messages=warning"]
        for setting in self.settings:
            args += ["-c", setting]
        self.proc = spawn(args, self.log, user=self.user)
        wait_until(lambda: self._ready(), 30, "postgres to accept connections")

    def _ready(self):
        if self.proc.poll() is not None:
            fail(f"postgres exited: {open(self.log).read()[-2000:]}")
        r = subprocess.run(["psql", "-h", self.sock, "-p", str(self.port), "-U", "shmbus",
                            "-d", "postgres", "-Atqc", "SELECT 1"], capture_output=True,
                           text=True)
        return r.returncode == 0

    def stop(self, mode="fast"):
        """fast: SIGINT (abort sessions, clean shutdown); immediate: SIGQUIT."""
        sig = {"fast": signal.SIGINT, "immediate": signal.SIGQUIT, "kill": signal.SIGKILL}[mode]
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def psql(self, sql, db="postgres", check=True):
        r = subprocess.run(["psql", "-h", self.sock, "-p", str(self.port), "-U", "shmbus",
                            "-d", db, "-v", "ON_ERROR_STOP=1", "-AtXq", "-F", "|", "-c", sql],
                           capture_output=True, text=True, timeout=60)
        if check and r.returncode != 0:
            fail(f"psql failed ({sql[:200]}): {r.stderr}")
        return r.stdout.strip()

    def createdb(self, name):
        self.psql(f"CREATE DATABASE {name}")

    def tcp_conninfo(self, db):
        return f"host=127.0.0.1 port={self.port} dbname={db} user=shmbus"


# ----------------------------------------------------------------------- TLS

def test_pki():
    """A throw-away PKI in a temporary directory owned by the server user:
    ca.pem (the test CA), server.pem/server.key (CN and subjectAltName
    127.0.0.1, signed by the CA; the key readable by its owner only) and
    other.pem (a CA that signed nothing here). Skips without openssl."""
    if not shutil.which("openssl"):
        skip("openssl is not installed")
    user = server_user()
    pki = tmpdir(user)

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=pki)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=shmbus test CA")
    openssl("req", "-x509", *ec, "-keyout", "other.key", "-out", "other.pem", "-days", "2",
            "-subj", "/CN=some other CA")
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(pki, "ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext")
    for name in os.listdir(pki):
        path = os.path.join(pki, name)
        if user:
            os.chown(path, user.pw_uid, user.pw_gid)
        os.chmod(path, 0o600 if name.endswith(".key") else 0o644)
    return pki


# ----------------------------------------------------------------- mosquitto

class Mosquitto:
    """mosquitto on a free loopback port, persistence in a temporary dir."""

    def __init__(self, users=None, listener_conf=()):
        if not shutil.which("mosquitto") and not os.path.exists("/usr/sbin/mosquitto"):
            skip("mosquitto is not installed")
        self.exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.user = server_user()
        self.dir = tmpdir(self.user)
        self.port = free_port()
        self.log = os.path.join(self.dir, "mosquitto.log")
        conf = [f"listener {self.port} 127.0.0.1", *listener_conf, "persistence true",
                f"persistence_location {self.dir}/", "autosave_interval 1",
                "max_queued_messages 0", "max_inflight_messages 0",
                f"log_dest file {self.log}", "log_type error", "log_type warning",
                "log_type notice", "connection_messages true"]
        if users:
            pwfile = os.path.join(self.dir, "passwd")
            open(pwfile, "w").close()
            for name, pw in users.items():
                subprocess.run(["mosquitto_passwd", "-b", pwfile, name, pw], check=True,
                               capture_output=True)
            if self.user:
                os.chown(pwfile, self.user.pw_uid, self.user.pw_gid)
            os.chmod(pwfile, 0o600)
            conf += ["allow_anonymous false", f"password_file {pwfile}"]
        else:
            conf += ["allow_anonymous true"]
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(conf) + "\n")
        self.proc = None
        _servers.append(self)
        self.start()

    def shutdown(self):
        if self.proc and self.proc.poll() is None:
            self.stop()

    def start(self):
        self.proc = spawn([self.exe, "-c", self.conf], os.path.join(self.dir, "stdout.log"),
                          user=self.user)
        wait_until(self._ready, 20, "mosquitto to listen")

    def _ready(self):
        if self.proc.poll() is not None:
            fail(f"mosquitto exited: {open(os.path.join(self.dir, 'stdout.log')).read()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)  # saves the persistence file
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Subscriber:
    """mosquitto_sub with a persistent session (fixed id, -c) at QoS 1,
    printing one line per message: topic and payload."""

    def __init__(self, broker, topic, out_dir, client_id="test-sub", username=None,
                 password=None, extra_args=()):
        self.path = os.path.join(out_dir, f"{client_id}.out")
        self.broker = broker
        self.args = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1",
                     "-c", "-i", client_id, "-t", topic, "-F", "%t %p"]
        if username:
            self.args += ["-u", username, "-P", password]
        self.args += list(extra_args)
        self.proc = spawn(self.args, self.path)

    def wait_all(self, put_result, timeout, what="mosquitto_sub to receive every record"):
        """Waits until every record of a put arrived (at least once)."""
        want = set(range(put_result["first_seq"], put_result["last_seq"] + 1))
        wait_until(lambda: want <= {p["seq"] for _, p in self.messages()}, timeout, what,
                   interval=0.3)
        return want

    def messages(self):
        out = []
        try:
            with open(self.path, errors="replace") as f:
                for line in f:
                    line = line.rstrip("\n")
                    if " {" not in line:
                        continue
                    topic, payload = line.split(" ", 1)
                    try:
                        out.append((topic, json.loads(payload)))
                    except ValueError:
                        pass
        except FileNotFoundError:
            pass
        return out


# -------------------------------------------------------------- shmbus side

class Group:
    """A segment fed by export_feed, and the exporters that read it."""

    def __init__(self, policy="backpressure", slots=65536, tags=10):
        self.name = f"exp{os.getpid()}-{random.randrange(1 << 30)}"[:31]
        _segments.append(self.name)
        self.policy = policy
        self.slots = slots
        self.tags = tags
        self.dir = tmpdir()
        self.data_dir = os.path.join(self.dir, "data")
        self.feeder = os.environ.get("EXPORT_FEED", "")
        if not os.path.exists(self.feeder):
            fail(f"EXPORT_FEED={self.feeder!r} is not the feeder executable")
        self.exporters = {}

    def create(self, groups):
        """Creates the segment with these consumer groups and no records yet."""
        return self.put(0, groups=groups)

    def put(self, count, rate=0, groups=(), wait=True):
        args = [self.feeder, "put", "--name", self.name, "--policy", self.policy,
                "--slots", str(self.slots), "--count", str(count), "--rate", str(rate),
                "--tags", str(self.tags)]
        for g in groups:
            args += ["--group", g]
        out = os.path.join(self.dir, f"feed-{time.monotonic_ns()}.json")
        p = spawn(args, out)
        if not wait:
            return p, out
        if p.wait(timeout=300) != 0:
            fail(f"feeder failed: {open(out).read()}")
        return json.loads(open(out).read().strip().splitlines()[-1])

    @staticmethod
    def feed_result(out):
        return json.loads(open(out).read().strip().splitlines()[-1])

    def stats(self):
        r = subprocess.run([self.feeder, "stats", "--name", self.name], capture_output=True,
                           text=True, timeout=30)
        counters, groups = {}, {}
        for line in r.stdout.splitlines():
            d = json.loads(line)
            if "counter" in d:
                counters[d["counter"]] = d["value"]
            elif "group" in d:
                groups[d["group"]] = d
        return counters, groups

    def members(self):
        """The consumer members in the segment (a dead one too, until it is
        reclaimed), by pid: {pid: {"member", "in_group", "pid", "held"}}."""
        r = subprocess.run([self.feeder, "stats", "--name", self.name], capture_output=True,
                           text=True, timeout=30)
        return {d["pid"]: d for d in map(json.loads, r.stdout.splitlines()) if "member" in d}

    def counter(self, what, target, member=None):
        """Sum of shmbus_export_<what>{target=..} over members (or one member)."""
        counters, _ = self.stats()
        total = 0
        for name, v in counters.items():
            if not name.startswith(f"shmbus_export_{what}{{target=\"{target}\""):
                continue
            if member and f'member="{member}"' not in name:
                continue
            total += v
        return total

    def group(self, name):
        return self.stats()[1].get(name)

    def write_config(self, path, export_yaml, extra_yaml=""):
        with open(path, "w") as f:
            f.write(f"segment: {{name: {self.name}, slot_count: {self.slots}, "
                    f"policy: {self.policy}}}\n")
            f.write(f"paths: {{data_dir: {self.data_dir}, run_dir: {self.dir}}}\n")
            f.write(extra_yaml)
            f.write("export:\n" + export_yaml)
        return path

    def mqtt_config(self, name, host, port, **settings):
        """A configuration file with an export.mqtt section: client id gw,
        prefix plant, batches of 200 or 100 ms, fast backoff, and then
        `settings` (which may override any of these)."""
        mqtt = {"host": host, "port": port, "client_id": "gw", "prefix": "plant",
                "batch_records": 200, "batch_age_ms": 100, "backoff_min_ms": 100,
                "backoff_max_ms": 500, **settings}
        body = "  mqtt:\n" + "".join(f"    {k}: {v}\n" for k, v in mqtt.items())
        return self.write_config(os.path.join(self.dir, f"{name}.yaml"), body)

    def start_exporter(self, config, target, member, env_extra=None):
        env = dict(os.environ)
        env.pop("PGPASSWORD", None)
        if env_extra:
            env.update(env_extra)
        logp = os.path.join(self.dir, f"{member}.log")
        p = spawn([bin_path("shmbus-export"), "--config", config, "--target", target,
                   "--name", member], logp, env=env)
        self.exporters[member] = (p, logp)
        return p

    def exporter_log(self, member):
        try:
            return open(self.exporters[member][1], errors="replace").read()
        except (KeyError, FileNotFoundError):
            return ""

    def stop_exporter(self, member, sig=signal.SIGTERM):
        """Stops a member; returns its exit status. A sanitizer report in
        its log (ASan/UBSan builds) fails the test."""
        p, _ = self.exporters[member]
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        text = self.exporter_log(member)
        for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            if marker in text:
                fail(f"{member}: sanitizer report in its log:\n{text[text.index(marker) - 200:][:3000]}")
        return p.returncode

    def wait_retrying(self, target, members, retries, timeout):
        """Waits until each member counted at least `retries` failed attempts."""
        wait_until(lambda: all(self.counter("retries_total", target, m) >= retries
                               for m in members), timeout, f"{', '.join(members)} to retry")

    def put_drained(self, count, rate, group, timeout=60):
        """Puts count records at rate and waits until group acknowledged them."""
        res = self.put(count, rate=rate)
        check(res["put"] == count, f"feeder put {count} records")
        self.wait_drained(group, res, timeout)
        return res

    def error_lines(self, member, target):
        """The lines of a member's log that report an outage of its target."""
        return [l for l in self.exporter_log(member).splitlines()
                if f" error: {target} target " in l]

    def check_bad_member(self, member, target, reason, secrets=()):
        """A member that cannot use its target: it keeps running, took no
        batch, logged exactly one error line (naming the target) with
        `reason` in it, and none of `secrets`."""
        p, _ = self.exporters[member]
        check(p.poll() is None, f"{member} keeps running")
        check(self.counter("batches_total", target, member) == 0, f"{member} took no batch")
        errors = self.error_lines(member, target)
        check(len(errors) == 1 and reason in errors[0],
              f"{member}: one error line naming the reason '{reason}' ({errors[:2]})")
        log(f"  {errors[0].split(' error: ', 1)[1][:200]}")
        text = self.exporter_log(member)
        check(not any(s in text for s in secrets), f"{member}: no password in the log")

    def start_fails(self, target, name, export_yaml, expect):
        """A configuration that can never work: shmbus-export exits 2 at
        start with `expect` in its error output."""
        cfg = self.write_config(os.path.join(self.dir, f"{name}.yaml"), export_yaml)
        r = subprocess.run([bin_path("shmbus-export"), "--config", cfg, "--target", target,
                            "--name", name], capture_output=True, text=True, timeout=30)
        check(r.returncode == 2 and expect in r.stderr,
              f"{name}: exit 2 with '{expect}' (got {r.returncode}: {r.stderr.strip()[-200:]})")

    def wait_drained(self, group, put_result, timeout):
        """Waits until every record put is acknowledged in `group`."""
        end = put_result["last_seq"] + 1 if put_result["put"] else None

        def drained():
            g = self.group(group)
            return g and (end is None or g["tail"] >= end) and g["orphans"] == 0
        return wait_until(drained, timeout, f"group {group} to acknowledge every record",
                          interval=0.2)


def expected_row_sql(tags):
    """A WHERE clause true for rows that differ from what export_feed put."""
    return (f"tag_id <> seq % {tags} OR value <> (seq % 100000) * 0.25 OR raw <> seq % 1000003 "
            f"OR (extract(epoch FROM time) * 1000000)::bigint <> seq / 1000 "
            f"OR quality <> (CASE WHEN seq % 10 = 7 THEN 5 WHEN seq % 10 = 3 THEN 2 ELSE 0 END) "
            f"OR exception <> (CASE WHEN seq % 10 = 7 THEN 2 ELSE 0 END)")


def missing_seqs(pg, db, first, last):
    """Describes which sequence numbers of [first, last] are not in
    shmbus_values (ranges), for failure messages."""
    out = pg.psql(f"SELECT min(s), max(s), count(*) FROM (SELECT s, s - row_number() OVER (ORDER BY s) AS g "
                  f"FROM generate_series({first}::bigint, {last}::bigint) s "
                  f"WHERE NOT EXISTS (SELECT 1 FROM shmbus_values v WHERE v.seq = s)) m "
                  f"GROUP BY g ORDER BY 1 LIMIT 10", db=db)
    return out.replace("\n", "; ") or "none"
