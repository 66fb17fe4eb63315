"""test_pg_group.py — group commit: under a backlog one PostgreSQL
transaction carries several ring batches, and exactly once still holds.

Phase 1: 40 000 records wait in the ring before the exporter starts
(batches of 500, default max_batches_per_commit 16, 2 connections: a
transaction may hold 16 / 2 = 8 ring batches). Every row arrives once, the
80 ring batches went in far fewer transactions (batches_total counts
transactions, grouped_batches_total the ring batches that joined one), and
PostgreSQL's own count of committed transactions (pg_stat_database) agrees:
fewer than the 80 a COMMIT per batch would need.
Phase 2: a backlog again, fed on while two exporters drain it with a delay
between COMMIT and the ring acknowledgement (SHMBUS_EXPORT_TEST_COMMIT_DELAY_MS);
12 SIGKILLs, some while the victim holds more ring batches than its two
lanes could without grouping (a grouped transaction in flight, committed
or not). Afterwards every record is in the table exactly once.
Phase 3: max_batches_per_commit 1 restores one transaction per batch: the
same kind of backlog takes one COMMIT per ring batch, none grouped.
"""
import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from exportlib import (Group, Postgres, check, expected_row_sql, log, missing_seqs,  # noqa: E402
                       secret, wait_until)

random.seed(os.getpid())
pg = Postgres()
pg.createdb("plant")
grp = Group(policy="backpressure", slots=65536, tags=10)
grp.create(groups=("export-pg",))
pwfile = secret(grp.dir, "pg.pass", Postgres.PASSWORD)


def config(name, extra=""):
    return grp.write_config(os.path.join(grp.dir, f"{name}.yaml"), f"""\
  postgres:
    conninfo: "{pg.tcp_conninfo('plant')}"
    password_file: {pwfile}
    batch_records: 500
    batch_age_ms: 200
    backoff_min_ms: 100
    backoff_max_ms: 1000
{extra}""")


def xact_commit():
    """Transactions committed in database plant, as PostgreSQL counts them."""
    return int(pg.psql("SELECT xact_commit FROM pg_stat_database WHERE datname = 'plant'"))


def exactly_once(first, last, what):
    n = last - first + 1
    rows = pg.psql("SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM shmbus_values",
                   db="plant")
    check(rows == f"{n}|{n}|{first}|{last}",
          f"{what}: every record in the table exactly once ({rows}; missing: "
          f"{missing_seqs(pg, 'plant', first, last) if rows != f'{n}|{n}|{first}|{last}' else 'none'})")


def drain_alone(cfg, member, count):
    """Puts `count` records while no exporter runs, then lets `member` drain
    them; returns (transactions, grouped ring batches, commits PostgreSQL
    counted) of that drain."""
    res = grp.put(count, groups=("export-pg",))
    check(res["put"] == count, f"{count} records wait in the ring")
    b0 = grp.counter("batches_total", "postgres")
    g0 = grp.counter("grouped_batches_total", "postgres")
    x0 = xact_commit()
    grp.start_exporter(cfg, "postgres", member)
    grp.wait_drained("export-pg", res, 90)
    check(grp.stop_exporter(member) == 0, f"{member} stops cleanly")
    batches = grp.counter("batches_total", "postgres") - b0
    grouped = grp.counter("grouped_batches_total", "postgres") - g0
    # A backend reports its counts to the statistics when it exits, which
    # may come a moment after the exporter did.
    def counted():
        d = xact_commit() - x0
        return d if d >= batches else None
    commits = wait_until(counted, 20, "PostgreSQL to count the exporter's commits")
    log(f"{member}: {count // 500} ring batches in {batches} transactions ({grouped} grouped); "
        f"pg_stat_database counted {commits} commits in all")
    return res, batches, grouped, commits


# ---------------------------------------------------------------- phase 1
N1 = 40000
res1, batches, grouped, commits = drain_alone(config("grouped"), "pg-1", N1)
exactly_once(res1["first_seq"], res1["last_seq"], "backlog drained with group commit")
check(batches + grouped == N1 // 500,
      f"each of the {N1 // 500} ring batches is either a transaction's first or grouped into one")
check(grouped > 0 and batches <= N1 // 500 // 4,
      f"transactions grouped several ring batches ({batches} transactions)")
check(commits < N1 // 500,
      f"PostgreSQL committed fewer transactions ({commits}) than there were ring batches")
start_line = [l for l in grp.exporter_log("pg-1").splitlines() if "group commit" in l]
check(start_line and "group commit under backlog: up to 8 batches (4000 records)" in start_line[0],
      f"the start line states the grouping bound, 16 batches shared by 2 lanes ({start_line[:1]})")
check(grp.counter("duplicates_total", "postgres") == 0, "no duplicates without faults")

# ---------------------------------------------------------------- phase 2
cfg = config("kills")
delay = {"SHMBUS_EXPORT_TEST_COMMIT_DELAY_MS": "300"}
dups0 = grp.counter("duplicates_total", "postgres")
grouped0 = grp.counter("grouped_batches_total", "postgres")
redelivered0 = grp.group("export-pg")["redelivered"]
backlog = grp.put(30000, groups=("export-pg",))
feeder, out = grp.put(40000, rate=8000, groups=("export-pg",), wait=False)
members = ["pg-2", "pg-3"]
for m in members:
    grp.start_exporter(cfg, "postgres", m, delay)
held_at_kill = []
for kill in range(12):
    time.sleep(random.uniform(0.3, 0.6))
    victim = members[kill % 2]
    p, _ = grp.exporters[victim]
    held = grp.members().get(p.pid, {}).get("held", 0)
    p.send_signal(signal.SIGKILL)
    p.wait()
    held_at_kill.append(held)
    grp.start_exporter(cfg, "postgres", victim, delay)
log(f"12 SIGKILLs; ring batches the victim held just before each: {held_at_kill}")
check(feeder.wait(timeout=120) == 0, "feeder finished")
live = grp.feed_result(out)
grp.wait_drained("export-pg", live, 120)
check(max(held_at_kill) > 2,
      "a kill landed while the victim held more ring batches than 2 lanes hold without grouping")
exactly_once(res1["first_seq"], live["last_seq"], "after 12 kills during grouped transactions")
check(live["first_seq"] == backlog["last_seq"] + 1, "the live records follow the backlog")
bad = pg.psql(f"SELECT count(*) FROM shmbus_values WHERE {expected_row_sql(grp.tags)}", db="plant")
check(bad == "0", "every field of every row equals what was put")
check(grp.counter("grouped_batches_total", "postgres") > grouped0, "group commit was at work")
check(grp.group("export-pg")["redelivered"] > redelivered0, "killed members' batches were re-delivered")
check(grp.counter("duplicates_total", "postgres") > dups0,
      "transactions committed before a kill came again and inserted nothing")
for m in members:
    check(grp.stop_exporter(m) == 0, f"{m} stops cleanly")

# ---------------------------------------------------------------- phase 3
N3 = 20000
res3, batches, grouped, commits = drain_alone(config("ungrouped", "    max_batches_per_commit: 1\n"),
                                              "pg-4", N3)
exactly_once(res1["first_seq"], res3["last_seq"], "backlog drained without group commit")
check(batches == N3 // 500 and grouped == 0,
      f"max_batches_per_commit 1: one transaction per ring batch ({batches}, {grouped} grouped)")
check(commits >= N3 // 500, f"PostgreSQL counted a commit per batch at least ({commits})")
check("group commit off" in grp.exporter_log("pg-4"), "the start line says group commit is off")
log("PASS")
