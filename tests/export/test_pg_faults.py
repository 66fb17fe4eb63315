"""test_pg_faults.py — exactly once in PostgreSQL through crashes of the
exporters and of the database.

Phase 1: two exporters share group export-pg while a live ring is fed; one
of them is SIGKILLed 24 times (alternating, at random moments, restarted
at once under its name). SHMBUS_EXPORT_TEST_COMMIT_DELAY_MS widens the
window between COMMIT and the ring acknowledgement, so kills also land
after a commit: those batches are re-delivered and must insert nothing.
Phase 2: PostgreSQL is crashed (SIGQUIT, immediate shutdown) mid-run and
restarted 3 s later; records wait in the ring (backpressure) and the
exporters reconnect with backoff, logging one error line per outage.
Afterwards every sequence number put is in the table exactly once and every
row equals what was put.
"""
import os
import random
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from exportlib import Group, Postgres, check, expected_row_sql, log, secret, wait_until  # noqa: E402

random.seed(os.getpid())
pg = Postgres()
pg.createdb("plant")
grp = Group(policy="backpressure", slots=65536, tags=10)
grp.create(groups=("export-pg",))
pwfile = secret(grp.dir, "pg.pass", Postgres.PASSWORD)
cfg = grp.write_config(os.path.join(grp.dir, "plant.yaml"), f"""\
  postgres:
    conninfo: "{pg.tcp_conninfo('plant')}"
    password_file: {pwfile}
    batch_records: 500
    batch_age_ms: 200
    backoff_min_ms: 100
    backoff_max_ms: 1000
""")
delay = {"SHMBUS_EXPORT_TEST_COMMIT_DELAY_MS": "100"}
members = ["pg-1", "pg-2"]
for m in members:
    grp.start_exporter(cfg, "postgres", m, delay)
wait_until(lambda: grp.counter("connected", "postgres") == 2, 30, "both exporters to connect")

# ---------------------------------------------------------------- phase 1
N1 = 50000
feeder, out = grp.put(N1, rate=2000, groups=("export-pg",), wait=False)
kills = 0
while kills < 24:
    time.sleep(random.uniform(0.4, 0.9))
    victim = members[kills % 2]
    p, _ = grp.exporters[victim]
    p.send_signal(signal.SIGKILL)
    p.wait()
    kills += 1
    grp.start_exporter(cfg, "postgres", victim, delay)
log(f"{kills} SIGKILLs done")
check(feeder.wait(timeout=120) == 0, "feeder finished")
res1 = grp.feed_result(out)
check(res1["put"] == N1, f"feeder put {N1} records")
grp.wait_drained("export-pg", res1, 90)
first = res1["first_seq"]
rows = pg.psql("SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM shmbus_values",
               db="plant")
check(rows == f"{N1}|{N1}|{first}|{res1['last_seq']}",
      f"after {kills} kills every acknowledged record is in the table exactly once ({rows})")
g = grp.group("export-pg")
dups = grp.counter("duplicates_total", "postgres")
log(f"group export-pg: redelivered {g['redelivered']}, duplicates skipped by ON CONFLICT {dups}")
check(g["redelivered"] > 0, "killed members' batches were re-delivered")
check(dups > 0, "batches committed before a kill came again and inserted nothing")

# ---------------------------------------------------------------- phase 2
outages_before = grp.counter("outages_total", "postgres")
N2 = 16000
feeder, out = grp.put(N2, rate=2000, groups=(), wait=False)
time.sleep(2.5)
log("crashing PostgreSQL (immediate shutdown)")
pg.stop("immediate")
time.sleep(3)
pg.start()
log("PostgreSQL is back")
check(feeder.wait(timeout=120) == 0, "feeder finished")
res2 = grp.feed_result(out)
grp.wait_drained("export-pg", res2, 90)
rows = pg.psql("SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM shmbus_values",
               db="plant")
check(rows == f"{N1 + N2}|{N1 + N2}|{first}|{res2['last_seq']}",
      f"after the database crash every record is in the table exactly once ({rows})")
bad = pg.psql(f"SELECT count(*) FROM shmbus_values WHERE {expected_row_sql(grp.tags)}", db="plant")
check(bad == "0", "every field of every row equals what was put")
outages = grp.counter("outages_total", "postgres") - outages_before
check(outages >= 2, f"both members counted the outage ({outages})")
check(grp.counter("retries_total", "postgres") >= outages, "retries are counted")
for m in members:
    text = grp.exporter_log(m)
    errors = grp.error_lines(m, "postgres")
    backs = [l for l in text.splitlines() if "back after" in l]
    check(len(errors) >= 1 and len(errors) == len(backs),
          f"{m}: one error line per outage and one when it ended ({len(errors)}/{len(backs)})")
    check(all(re.search(r"postgres target host=127\.0\.0\.1 port=\d+ dbname=plant user=shmbus", l)
              for l in errors), f"{m}: the error names the target")
    check(Postgres.PASSWORD not in text, f"{m}: the password is not logged")
for m in members:
    check(grp.stop_exporter(m) == 0, f"{m} stops cleanly")
log("PASS")
