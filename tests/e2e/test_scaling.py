#!/usr/bin/env python3
"""Scaling writers under supervisord while records flow: numprocs of the
writer program goes 1 -> 3 -> 1 in the included shmbus.conf, applied with
`supervisorctl update`.

- the controller, stats and the poller keep running (same pids): only the
  writers restart;
- with three writers, each of them stores a visible share of the records
  (shmstat --json members, and each writer's writer_points_total counter);
- afterwards every sequence number put is in the store exactly once: none
  missing, none returned twice, none stored twice (clean stops hand nothing
  back).
"""
import e2elib as e
from e2elib import check, log

INTERVAL_MS = 20
MIN_SHARE = 0.05  # of the records the three writers took meanwhile


def writer_members(st):
    return {m["name"]: m for m in st["members"]
            if m["group"] == "writer" and m["alive"] and m["state"] == "active"}


def writer_points(st):
    return {c["name"]: c["value"] for c in st["counters"]
            if c["name"].startswith("writer_points_total{")}


def scenario(g):
    others = {p: g.pid(p) for p in (e.CONTROLLER, e.STATS, e.POLLER)}
    g.wait_flowing(2000)

    g.set_writers(3)
    log("3 writers: %r" % {p: s for p, s in g.status().items() if "writer" in p})
    before = g.shmstat()
    g.wait_flowing(4000)
    after = g.shmstat()
    members = writer_members(after)
    check(sorted(members) == ["writer-1", "writer-2", "writer-3"],
          "writer members after scaling to 3: %r" % sorted(members))
    took = {n: m["records"] for n, m in members.items()}
    total = sum(took.values())
    check(total > 0, "the writers took nothing")
    for n, r in sorted(took.items()):
        check(r >= MIN_SHARE * total, "%s took %d of %d records: the load does not spread"
              % (n, r, total))
    p0, p1 = writer_points(before), writer_points(after)
    grew = {n: p1.get(n, 0) - p0.get(n, 0) for n in p1}
    check(len(grew) >= 3 and all(v > 0 for v in grew.values()),
          "writer_points_total did not grow for every writer: %r" % grew)
    log("load spread over 3 writers (records taken): %r; points stored meanwhile: %r"
        % (took, grew))

    g.set_writers(1)
    g.wait_flowing(2000)
    members = writer_members(g.shmstat())
    check(sorted(members) == ["writer-1"], "writer members after scaling back: %r"
          % sorted(members))
    check({p: g.pid(p) for p in others} == others,
          "scaling writers restarted other programs: %r -> %r"
          % (others, {p: g.pid(p) for p in others}))

    g.ctl("stop", e.POLLER)
    g.wait_drained("writer")
    _, st = g.check_store()
    wg = [x for x in st["groups"] if x["name"] == "writer"][0]
    check(wg["redelivered"] == 0, "clean scaling redelivered records: %r" % wg)


def main():
    g = e.Group("scaling", e.table_tags("s", "hr", 20, "fast"), [("fast", INTERVAL_MS)],
                segment="  slot_count: 65536\n  policy: backpressure\n")
    g.run(lambda: scenario(g))


if __name__ == "__main__":
    main()
