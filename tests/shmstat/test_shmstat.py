#!/usr/bin/python3
"""test_shmstat.py — shmstat against a live segment.

    test_shmstat.py SHMSTAT SHMSTAT_TRAFFIC

shmstat_traffic creates a segment with known content (catalog, counters,
two groups, a producer, 105 records of which one is not a FlatBuffer) and
reports exactly what it did; this script runs shmstat in every mode and
compares: the text report, --json (figures against the helper's), -w/-n
(rates from the interval), --tail (decoded and hex), --tail --raw read back
by flatc, errors (missing segment, foreign object, other layout version,
usage) with exit status 2 and one line on stderr, and SIGINT ending a watch.
The segment's bytes are hashed with the traffic paused before and after
shmstat runs: shmstat must never change them.

Every process is stopped and every /dev/shm object removed on exit, also
on failure. Run with /usr/bin/python3 (Debian's Python).
"""
import hashlib
import json
import os
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time

SHMSTAT, TRAFFIC = sys.argv[1], sys.argv[2]
SOURCE_DIR = os.environ.get("SHMBUS_SOURCE_DIR",
                            os.path.join(os.path.dirname(__file__), "..", ".."))
SCHEMA = os.path.join(SOURCE_DIR, "schemas", "shmbus.fbs")
TAG = "ts%d" % os.getpid()
NAME = TAG + "-live"
FOREIGN = TAG + "-foreign"
OLDVER = TAG + "-version"
MISSING = TAG + "-missing"
created_objects = [NAME, FOREIGN, OLDVER]
children = []
checks = 0


def shm_path(name):
    return "/dev/shm/shmbus." + name


def fail(msg):
    raise AssertionError(msg)


def check(cond, msg):
    global checks
    checks += 1
    if not cond:
        fail(msg)


def run(args, env=None, timeout=30, binary=False):
    """Runs shmstat with args; returns (rc, stdout, stderr)."""
    e = dict(os.environ)
    e.pop("SHMBUS_SEGMENT", None)
    if env:
        e.update(env)
    p = subprocess.run([SHMSTAT] + args, capture_output=True, env=e, timeout=timeout)
    out = p.stdout if binary else p.stdout.decode("utf-8")
    return p.returncode, out, p.stderr.decode("utf-8", "replace")


def digest(name):
    with open(shm_path(name), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Traffic:
    """The helper process, driven over its stdin, answering JSON lines."""

    def __init__(self, name):
        self.p = subprocess.Popen([TRAFFIC, name], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        children.append(self.p)

    def line(self, timeout=20):
        deadline = time.monotonic() + timeout
        buf = b""
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                fail("shmstat_traffic did not answer within %d s" % timeout)
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if r:
                c = os.read(self.p.stdout.fileno(), 1)
                if not c:
                    fail("shmstat_traffic exited (status %s)" % self.p.poll())
                buf += c
        return json.loads(buf)

    def command(self, cmd):
        self.p.stdin.write((cmd + "\n").encode())
        self.p.stdin.flush()
        return self.line()


def one_line(err):
    return len(err.strip().splitlines()) == 1


def test_report(facts):
    rc, out, err = run(["--name", NAME])
    check(rc == 0, "shmstat: status %d, stderr %r" % (rc, err))
    for want in ("segment /shmbus." + NAME, "policy drop-oldest", "slots 1024 x 128 B",
                 "records put %d" % facts["records_put"], "writer", "stats", " p1 ",
                 "traffic_requests_total{device=\"plc1\"}", "traffic_level"):
        check(want in out, "text report lacks %r:\n%s" % (want, out))
    check("members (3)" in out and "groups (2)" in out, "text report counts:\n" + out)


def test_json(facts):
    # The name comes from SHMBUS_SEGMENT here.
    rc, out, err = run(["--json"], env={"SHMBUS_SEGMENT": NAME})
    check(rc == 0, "--json: status %d, stderr %r" % (rc, err))
    doc = json.loads(out)
    seg, ring = doc["segment"], doc["ring"]
    check(seg["name"] == NAME, "segment name %r" % seg["name"])
    check(seg["slot_count"] == 1024 and seg["slot_size"] == 128 and seg["slot_payload"] == 112,
          "geometry %r" % seg)
    check(seg["policy"] == "drop-oldest" and seg["layout_version"] == 1, "segment %r" % seg)
    check(seg["creator_pid"] == facts["pid"], "creator pid %r" % seg["creator_pid"])
    check(ring["records_put"] == facts["records_put"],
          "records_put %r, helper put %r" % (ring["records_put"], facts["records_put"]))
    check(ring["head_seq"] == seg["initial_seq"] + facts["records_put"], "head_seq %r" % ring)
    check(isinstance(ring["utilization"], float) and ring["paused"] is False, "ring %r" % ring)
    groups = {g["name"]: g for g in doc["groups"]}
    check(sorted(groups) == sorted(facts["groups"]), "groups %r" % list(groups))
    check(groups["writer"]["consumed"] == facts["writer_consumed"], "writer %r" % groups["writer"])
    check(groups["stats"]["consumed"] == facts["stats_consumed"], "stats %r" % groups["stats"])
    check(groups["stats"]["lag"] == facts["records_put"] - facts["stats_consumed"],
          "stats lag %r" % groups["stats"])
    check(groups["writer"]["lag"] == 0 and groups["writer"]["members"] == 1,
          "writer %r" % groups["writer"])
    members = doc["members"]
    check(len(members) == facts["members"], "%d members, helper joined %d"
          % (len(members), facts["members"]))
    check(all(m["alive"] and m["state"] == "active" and m["pid"] == facts["pid"]
              for m in members), "members %r" % members)
    roles = sorted((m["role"], m["group"], m["name"]) for m in members)
    check(roles == [("consumer", "stats", "s1"), ("consumer", "writer", "w1"),
                    ("producer", "", "p1")], "members %r" % roles)
    producer = [m for m in members if m["role"] == "producer"][0]
    check(producer["records"] == facts["records_put"], "producer records %r" % producer)
    check(doc["rates"]["basis"] == "lifetime" and ring["put_per_s"] > 0, "rates %r" % doc["rates"])
    counters = {c["name"]: c for c in doc["counters"]}
    check(counters["traffic_puts_total"]["value"] == facts["records_put"], "counters %r" % counters)
    check(counters["traffic_level"]["kind"] == "gauge" and counters["traffic_level"]["value"] == 42,
          "gauge %r" % counters["traffic_level"])
    check(counters['traffic_requests_total{device="plc1"}']["value"] == 7, "labelled counter")


def test_tail(facts):
    rc, out, err = run(["--name", NAME, "--tail", "5"])
    check(rc == 0, "--tail 5: status %d, stderr %r" % (rc, err))
    tail = facts["tail"]
    lines = out.splitlines()
    check(lines[0].startswith("newest 5 of 5"), "--tail header: %r" % lines[0])
    check(("not a TagValue" in out and " ".join(facts["raw_hex"][i:i + 2]
           for i in range(0, len(facts["raw_hex"]), 2)) in out),
          "--tail 5 shows the raw record as hex:\n" + out)
    for rec in tail[1:]:
        want = "tag %s (%d)" % (rec["tag"], rec["tag_id"])
        row = [l for l in lines if l.strip().startswith(str(rec["seq"]))]
        check(len(row) == 1 and want in row[0] and "quality " + rec["quality"] in row[0],
              "--tail 5 row for %d: %r" % (rec["seq"], row))

    rc, out, err = run(["--name", NAME, "--tail", "5", "--json"])
    check(rc == 0, "--tail --json: status %d, %r" % (rc, err))
    recs = json.loads(out)["records"]
    check([r["seq"] for r in recs] == [t["seq"] for t in tail], "tail seqs %r" % recs)
    check(recs[0]["hex"] == facts["raw_hex"] and "error" in recs[0], "raw record %r" % recs[0])
    for got, want in zip(recs[1:], tail[1:]):
        tv = got["tag_value"]
        check(tv["sequence"] == want["seq"] and tv["tag_id"] == want["tag_id"]
              and tv["tag"] == want["tag"] and tv["value"] == want["value"]
              and tv["raw"] == want["raw"] and tv["quality"] == want["quality"]
              and tv["timestamp_ns"] == want["timestamp_ns"] and tv["device"] == "plc1",
              "tail record %r, helper wrote %r" % (tv, want))


def test_raw(facts, tmp):
    rc, out, err = run(["--name", NAME, "--tail", "3", "--raw"], binary=True)
    check(rc == 0, "--tail 3 --raw: status %d, %r" % (rc, err))
    frames, pos = [], 0
    while pos < len(out):
        check(pos + 4 <= len(out), "--raw: torn length prefix at %d" % pos)
        (n,) = struct.unpack_from("<I", out, pos)
        check(pos + 4 + n <= len(out), "--raw: frame of %d bytes runs past the end" % n)
        frames.append(out[pos:pos + 4 + n])
        pos += 4 + n
    check(len(frames) == 3, "--raw wrote %d frames, expected 3" % len(frames))
    if not os.path.exists(SCHEMA):
        print("SKIP flatc check: %s does not exist yet" % SCHEMA)
        return
    # flatc reads one buffer per file: one file per frame.
    for i, (frame, want) in enumerate(zip(frames, facts["tail"][2:])):
        path = os.path.join(tmp, "rec%d.bin" % i)
        with open(path, "wb") as f:
            f.write(frame)
        p = subprocess.run(["flatc", "--json", "--strict-json", "--size-prefixed", "--raw-binary",
                            "-o", tmp, SCHEMA, "--", path], capture_output=True, timeout=30)
        check(p.returncode == 0, "flatc on frame %d: %s" % (i, p.stderr.decode()))
        with open(os.path.join(tmp, "rec%d.json" % i)) as f:
            got = json.load(f)
        check(int(got["sequence"]) == want["seq"] and got.get("tag_id", 0) == want["tag_id"]
              and float(got["value"]) == want["value"]
              and got.get("quality", "GOOD") == want["quality"],
              "flatc read %r, helper wrote %r" % (got, want))


def test_watch():
    rc, out, err = run(["--name", NAME, "-w", "1", "-n", "2", "--json"])
    check(rc == 0, "-w 1 -n 2 --json: status %d, %r" % (rc, err))
    docs = [json.loads(l) for l in out.splitlines()]
    check(len(docs) == 2, "-n 2 printed %d JSON lines" % len(docs))
    second = docs[1]
    check(second["rates"]["basis"] == "interval" and second["rates"]["interval_s"] > 0.5,
          "second report rates %r" % second["rates"])
    check(second["ring"]["put_per_s"] > 0, "put/s %r" % second["ring"].get("put_per_s"))
    writer = [g for g in second["groups"] if g["name"] == "writer"][0]
    check(writer["consumed_per_s"] > 0, "writer consumed/s %r" % writer)
    producer = [m for m in second["members"] if m["role"] == "producer"][0]
    check(producer["records_per_s"] > 0, "producer records/s %r" % producer)
    puts = [c for c in second["counters"] if c["name"] == "traffic_puts_total"][0]
    check(puts["per_s"] > 0 and "per_s" not in
          [c for c in second["counters"] if c["name"] == "traffic_level"][0],
          "counter rates %r" % second["counters"])

    rc, out, err = run(["--name", NAME, "-w", "0.5", "-n", "2"])
    check(rc == 0, "-w 0.5 -n 2: status %d, %r" % (rc, err))
    check(out.count("segment /shmbus." + NAME) == 2 and "rates over the last" in out,
          "text watch output:\n" + out)

    # Without -n a watch runs until interrupted; SIGINT ends it with status 0.
    p = subprocess.Popen([SHMSTAT, "--name", NAME, "-w", "0.2"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    children.append(p)
    r, _, _ = select.select([p.stdout], [], [], 20)
    check(bool(r), "watch printed nothing")
    p.send_signal(signal.SIGINT)
    try:
        rc = p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        fail("watch did not stop on SIGINT")
    check(rc == 0, "watch after SIGINT: status %d" % rc)


def test_errors():
    rc, out, err = run(["--name", MISSING])
    check(rc == 2 and out == "" and one_line(err) and "no such segment" in err,
          "missing segment: status %d, stdout %r, stderr %r" % (rc, out, err))
    rc, out, err = run(["--json"], env={"SHMBUS_SEGMENT": MISSING})
    check(rc == 2 and out == "" and one_line(err), "missing segment --json: %d %r" % (rc, err))

    junk = os.urandom(8192)
    with open(shm_path(FOREIGN), "wb") as f:
        f.write(junk)
    rc, out, err = run(["--name", FOREIGN])
    check(rc == 2 and out == "" and one_line(err) and "not a shmbus segment" in err,
          "foreign object: status %d, stderr %r" % (rc, err))
    rc, out, err = run(["--name", FOREIGN, "--tail", "3"])
    check(rc == 2 and one_line(err), "foreign object --tail: status %d, %r" % (rc, err))
    with open(shm_path(FOREIGN), "rb") as f:
        check(f.read() == junk, "shmstat changed the foreign object")

    # A shmbus header of layout version 2, marked ready.
    hdr = bytearray(8192)
    hdr[0:8] = b"SHMBUS\x00\x01"
    struct.pack_into("<II", hdr, 8, 2, 4096)
    struct.pack_into("<I", hdr, 256, 1)
    with open(shm_path(OLDVER), "wb") as f:
        f.write(hdr)
    rc, out, err = run(["--name", OLDVER])
    check(rc == 2 and one_line(err) and "layout version 2" in err,
          "other layout version: status %d, stderr %r" % (rc, err))

    for args in (["--bogus"], ["--raw"], ["--tail", "0"], ["-w", "0"], ["-w", "x"],
                 ["--tail", "3", "-w", "1"], ["--tail", "2", "--raw", "--json"], ["extra"],
                 ["--name", "x" * 40]):
        rc, out, err = run(args)
        check(rc == 2 and "usage:" in err, "usage error %r: status %d, stderr %r" % (args, rc, err))
    rc, out, err = run(["--help"])
    check(rc == 0 and "usage:" in out, "--help: status %d" % rc)


def main():
    tmp = tempfile.mkdtemp(prefix="shmstat-test-")
    try:
        traffic = Traffic(NAME)
        facts = traffic.line()
        check(facts["event"] == "ready", "helper: %r" % facts)

        before = digest(NAME)
        test_report(facts)
        test_json(facts)
        test_tail(facts)
        test_raw(facts, tmp)
        check(digest(NAME) == before, "shmstat changed the segment's bytes (one-shot runs)")

        check(traffic.command("run")["event"] == "running", "helper did not start traffic")
        test_watch()
        paused = traffic.command("pause")
        check(paused["records_put"] > facts["records_put"], "no traffic while running: %r" % paused)
        before = digest(NAME)
        rc, out, err = run(["--name", NAME, "-w", "0.2", "-n", "3", "--json"])
        check(rc == 0 and len(out.splitlines()) == 3, "watch while paused: %d %r" % (rc, err))
        check(json.loads(out.splitlines()[-1])["ring"]["records_put"] == paused["records_put"],
              "records_put after traffic")
        run(["--name", NAME, "--tail", "100"])
        run(["--name", NAME])
        check(digest(NAME) == before, "shmstat changed the segment's bytes (watch, tail)")

        test_errors()
        traffic.p.stdin.close()  # end of input: the helper closes its members and exits
        check(traffic.p.wait(timeout=20) == 0, "helper exit status")
        print("shmstat: %d checks passed" % checks)
    finally:
        for p in children:
            if p.poll() is None:
                p.kill()
                p.wait()
        for name in created_objects:
            try:
                os.unlink(shm_path(name))
            except FileNotFoundError:
                pass
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("FAIL: %s" % e, file=sys.stderr)
        sys.exit(1)
