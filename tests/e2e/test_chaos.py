#!/usr/bin/env python3
"""kill -9 under supervisord: the controller, a writer (two run), stats and
the poller, each SIGKILLed in turn at a random moment, ROUNDS times, while
records flow. After each kill:

- supervisord restarts the process (RUNNING again with a new pid), the
  group is healthy again (/healthz 200) and records flow;
- the segment is the same one (a restarted controller re-attaches, it
  never re-creates it: initial_seq unchanged);
- after a writer's kill, every record the writer group had acknowledged
  before it is in the store.

At the end (poller stopped, writers drained): every record put is in the
store exactly once as readers see it (seq contiguity, less the slots of a
killed poller's unfinished claims that consumers skipped), every stored
value is what the device served, and the group is healthy again once the
poller is back.
"""
import os
import random
import signal
import time

import e2elib as e
from e2elib import check, log

ROUNDS = int(os.environ.get("SHMBUS_E2E_CHAOS_ROUNDS", "3"))
INTERVAL_MS = 20


def acked_stored(g, st):
    """Every seq below the writer group's tail (acknowledged) is stored.
    Slots of dead producers are not records: at most `padded` may lack."""
    first = st["segment"]["initial_seq"]
    wg = [x for x in st["groups"] if x["name"] == "writer"][0]
    tail = wg["tail_seq"]
    below = {p["seq"] for p in g.stored() if p["seq"] < tail}
    padded = g.group_stats("writer")["padded"]
    check(len(below) >= (tail - first) - padded,
          "acknowledged records missing from the store: %d of %d stored (%d padded)"
          % (len(below), tail - first, padded))
    return tail - first


def scenario(g):
    killed = []
    initial = g.shmstat()["segment"]["initial_seq"]
    g.wait_flowing(500)
    for rnd in range(ROUNDS):
        for proc in (e.CONTROLLER, e.writer(1 + rnd % 2), e.STATS, e.POLLER):
            time.sleep(random.uniform(0.1, 1.5))
            before = g.shmstat()
            pid = g.pid(proc)
            check(pid, "%s has no pid: %r" % (proc, g.status()))
            os.kill(pid, signal.SIGKILL)
            killed.append(proc.split(":")[1])
            new = g.wait_running(proc, not_pid=pid)
            g.wait_healthy(60)
            g.wait_flowing(300)
            st = g.shmstat()
            check(st["segment"]["initial_seq"] == initial,
                  "the segment was re-created after killing %s" % proc)
            note = ""
            if proc.startswith("shmbus-writer"):
                note = ", %d acknowledged records stored" % acked_stored(g, before)
            log("round %d: %s SIGKILLed (pid %d), restarted as %d, healthy%s"
                % (rnd + 1, proc, pid, new, note))

    g.ctl("stop", e.POLLER)
    g.wait_drained("writer")
    g.wait_drained("stats")
    points, st = g.check_store(allow_duplicates=True)
    wg = [x for x in st["groups"] if x["name"] == "writer"][0]
    log("writer group: %d redelivered, %d padded; ring: %d slots reclaimed, %d members"
        % (wg["redelivered"], wg["padded"], st["ring"]["slots_reclaimed"],
           st["ring"]["members_reclaimed"]))
    # A killed poller may have had one read answered but not published.
    g.check_served(points, max_missing=ROUNDS + 1)
    g.ctl("start", e.POLLER)
    g.wait_healthy(60)
    g.wait_flowing(100)
    return killed


def main():
    random.seed(os.getpid())
    tags = e.table_tags("c", "hr", 40, "fast")
    g = e.Group("chaos", tags, [("fast", INTERVAL_MS)], writers=2,
                segment="  slot_count: 65536\n  policy: backpressure\n")
    g.run(lambda: scenario(g))


if __name__ == "__main__":
    main()
