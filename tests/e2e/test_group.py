#!/usr/bin/env python3
"""The whole group under supervisord, against a python3-pymodbus device whose
registers change with every poll (e2e_device.py):

- the values in the chunk files, read back with shmbus-query, are exactly
  what the device served: one point per tag for each read it logged (at most
  the last read, in flight when the poller stopped, missing), each decoded
  to the value the device encoded, all points of a read with one timestamp
  taken just before the device answered;
- every record put is stored once (seq contiguity), every service exited
  cleanly (status 0) when stopped;
- stats over nng (nngcat) agree with the store: count, min, max, mean,
  first, last of every tag, and its history (`range`) point for point;
- `shmstat --json`, the controller's `GET /api/buffer/status` (curl) and
  its nng `status` agree with each other, once with records waiting for the
  writers (stopped with supervisorctl) and once drained.
"""
import math

import e2elib as e
from e2elib import check, log

FAST_MS, SLOW_MS = 50, 200


def _counts(doc):
    """The ring's and groups' figures, without rates (lifetime averages move)."""
    strip = lambda d: {k: v for k, v in d.items() if not k.endswith("_per_s")}
    return strip(doc["ring"]), [strip(x) for x in doc["groups"]]


def buffer_matches(g):
    """shmstat and /api/buffer/status agree on a ring that does not move
    (poller stopped): returns None, or what differs."""
    a = g.shmstat()
    b = g.api("/api/buffer/status")
    c = g.shmstat()
    if _counts(a) != _counts(c):
        return "the ring still moves"
    ring = a["ring"]
    want = {"current_size": max(x["lag"] for x in a["groups"]), "max_size": ring["capacity"],
            "overflow_count": ring["overflow_events"]}
    got = {k: b[k] for k in want}
    if got != want or abs(b["utilization_pct"] - 100.0 * ring["utilization"]) > 0.001:
        return "ring: shmstat %r (utilization %r), /api/buffer/status %r" % (want, ring, b)
    mine = {x["name"]: {"current_size": x["lag"], "max_size": ring["capacity"],
                        "overflow_count": x["lost"]} for x in a["groups"]}
    theirs = {x["name"]: {k: x[k] for k in ("current_size", "max_size", "overflow_count")}
              for x in b["groups"]}
    if mine != theirs:
        return "groups: shmstat %r, /api/buffer/status %r" % (mine, theirs)
    status = g.control({"cmd": "status"})
    if status["ring"]["records_put"] != ring["records_put"] or \
            status["ring"]["head_seq"] != ring["head_seq"]:
        return "nng status %r, shmstat %r" % (status["ring"], ring)
    for x in status["groups"]:
        y = [z for z in a["groups"] if z["name"] == x["name"]][0]
        if (x["lag"], x["consumed"], x["lost"]) != (y["lag"], y["consumed"], y["lost"]):
            return "group %s: nng status %r, shmstat %r" % (x["name"], x, y)
    return None


def check_buffer(g, what):
    last = [None]

    def agree():
        last[0] = buffer_matches(g)
        return last[0] is None
    check(e.wait_until(agree, 10, step=0.3), "%s: %s" % (what, last[0]))
    b = g.api("/api/buffer/status")
    log("%s: shmstat and /api/buffer/status agree: current_size %d of %d"
        % (what, b["current_size"], b["max_size"]))
    return b


def check_stats(g, by_tag):
    """shmbus-stats (over nng) agrees with the store, tag by tag."""
    status = g.stats({"op": "status"})
    st = g.group_stats("stats")
    check(status["records"] == st["consumed"],
          "stats status records %d, its group consumed %d" % (status["records"], st["consumed"]))
    for t in g.tags:
        pts = by_tag[t.name]
        values = [p["value"] for p in pts]
        s = g.stats({"op": "stats", "tag": t.name})["tags"][0]
        check(s["window"] >= len(values), "test needs a window >= %d" % len(values))
        want = {"count": len(values), "min": min(values), "max": max(values),
                "first": values[0], "last": values[-1], "first_t_ns": pts[0]["time_ns"],
                "last_t_ns": pts[-1]["time_ns"]}
        got = {k: s[k] for k in want}
        check(got == want, "stats of %s: %r, store %r" % (t.name, got, want))
        mean = math.fsum(values) / len(values)
        check(abs(s["mean"] - mean) <= 1e-9 * max(1.0, abs(mean)),
              "stats mean of %s: %r, store %r" % (t.name, s["mean"], mean))
        r = g.stats({"op": "range", "tag": t.name, "max_points": 20000})
        check(r["total"] == len(pts) and not r.get("downsampled"),
              "range of %s: total %d, store %d" % (t.name, r["total"], len(pts)))
        check(r["points"] == [[p["time_ns"], p["value"]] for p in pts],
              "range of %s differs from the store" % t.name)
    log("stats over nng: count, min, max, mean, first, last and history of %d tags agree"
        % len(g.tags))


def scenario(g):
    enough = lambda: sum(1 for s in g.served() if s["table"] == "hr") >= 100
    check(e.wait_until(enough, 60, step=0.2), "the device served fewer than 100 reads")
    # Records waiting for the writers: stop them, poll on, stop the poller.
    g.ctl("stop", "shmbus-writer:*")
    n = len(g.served())
    check(e.wait_until(lambda: len(g.served()) >= n + 20, 30, step=0.1), "polling stopped")
    g.ctl("stop", e.POLLER)
    g.wait_drained("stats")
    b = check_buffer(g, "writers stopped")
    check(b["current_size"] >= 20, "writer group should lag: %r" % b)
    g.ctl("start", "shmbus-writer:*")
    g.wait_drained("writer")
    check_buffer(g, "writers drained")
    points, _ = g.check_store()
    by_tag = g.check_served(points)
    check_stats(g, by_tag)
    check(g.healthy() is False, "/healthz should miss the stopped poller")


def main():
    tags = e.table_tags("fast", "hr", 9, "fast") + e.table_tags("slow", "ir", 4, "slow")
    g = e.Group("group", tags, [("fast", FAST_MS), ("slow", SLOW_MS)],
                segment="  slot_count: 8192\n  policy: backpressure\n")
    g.run(lambda: scenario(g))


if __name__ == "__main__":
    main()
