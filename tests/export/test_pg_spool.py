"""test_pg_spool.py — a drop-oldest ring and a database that goes away:
nothing acknowledged is lost.

The ring is small (4096 slots) and fed at 4000 records/s; PostgreSQL is
stopped for 4 s, far longer than the ring can hold. The exporters take
what the ring would overwrite into their CRC-checked spool files (the
spool_bytes gauge shows it), and acknowledge it in the ring only once it is
on disk. One exporter is SIGKILLed during the outage and replaced by a
member with another name, which adopts the dead member's spool. When the
database is back the spools are replayed in order; afterwards every
sequence number is in the table exactly once and the group lost nothing.
"""
import glob
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from exportlib import (Group, Postgres, check, expected_row_sql, fail, log,  # noqa: E402
                       missing_seqs, wait_until)

pg = Postgres()
pg.createdb("plant")
grp = Group(policy="drop-oldest", slots=4096, tags=10)
grp.create(groups=("export-pg",))
cfg = grp.write_config(os.path.join(grp.dir, "plant.yaml"), f"""\
  postgres:
    conninfo: "host={pg.sock} port={pg.port} dbname=plant user=shmbus"
    batch_records: 500
    batch_age_ms: 200
    backoff_min_ms: 100
    backoff_max_ms: 800
""")
for m in ("pg-1", "pg-2"):
    grp.start_exporter(cfg, "postgres", m)
wait_until(lambda: grp.counter("connected", "postgres") == 2, 30, "both exporters to connect")

N = 40000
feeder, out = grp.put(N, rate=4000, wait=False)
time.sleep(2)
log("stopping PostgreSQL for 4 s")
pg.stop("fast")
t_down = time.monotonic()
peak = wait_until(lambda: grp.counter("spool_bytes", "postgres"), 10,
                  "the spool to take records while the database is away")
log(f"spool holds {peak} bytes")
p1, _ = grp.exporters["pg-1"]
p1.send_signal(signal.SIGKILL)
p1.wait()
log("pg-1 SIGKILLed during the outage; pg-3 takes its place")
grp.start_exporter(cfg, "postgres", "pg-3")
time.sleep(max(0, 4 - (time.monotonic() - t_down)))
spooled_during = grp.counter("spool_bytes", "postgres")
pg.start()
log(f"PostgreSQL is back; spools hold {spooled_during} bytes")
check(feeder.wait(timeout=120) == 0, "feeder finished")
res = grp.feed_result(out)
check(res["put"] == N, f"feeder put {N} records")
grp.wait_drained("export-pg", res, 90)
wait_until(lambda: grp.counter("spool_bytes", "postgres") == 0, 60, "the spools to be replayed")
first, last = res["first_seq"], res["last_seq"]
deadline = time.monotonic() + 30
while pg.psql("SELECT count(*) FROM shmbus_values", db="plant") != str(N):
    if time.monotonic() > deadline:
        fail(f"rows missing after the group drained: {missing_seqs(pg, 'plant', first, last)} "
             f"(first {first}); group {grp.group('export-pg')}")
    time.sleep(0.2)
rows = pg.psql("SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM shmbus_values",
               db="plant")
check(rows == f"{N}|{N}|{first}|{last}", f"every record is in the table exactly once ({rows})")
bad = pg.psql(f"SELECT count(*) FROM shmbus_values WHERE {expected_row_sql(grp.tags)}", db="plant")
check(bad == "0", "every field of every row equals what was put")
g = grp.group("export-pg")
check(g["lost"] == 0, f"the ring overwrote nothing the export had not taken (lost {g['lost']})")
spooled = grp.counter("spooled_rows_total", "postgres")
replayed = grp.counter("replayed_rows_total", "postgres")
check(spooled > 4096, f"more than a ring's worth went through the spool ({spooled} rows)")
check(replayed >= spooled, f"every spooled row was replayed ({replayed} >= {spooled})")
spools = glob.glob(os.path.join(grp.data_dir, "export", "postgres-pg-1.spool"))
check(not spools, "the dead member's spool was adopted, delivered and removed")
check("adopting spool" in grp.exporter_log("pg-2") + grp.exporter_log("pg-3"),
      "a live member logged the adoption")
for m in ("pg-2", "pg-3"):
    check(grp.stop_exporter(m) == 0, f"{m} stops cleanly")
log("PASS")
