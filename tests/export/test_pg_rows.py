"""test_pg_rows.py — records from a live ring arrive in PostgreSQL as rows,
exactly as they were put, shared by two competing exporters.

A real PostgreSQL 15 (temporary directory, free loopback port, scram
password over TCP read from a password file) and a segment fed by
export_feed at 10 000 records/s: afterwards psql reads every row back and
each field equals what was put (every field is a function of the sequence
number), no sequence number is missing or doubled, the tags table and the
shmbus_tag_values view answer by tag name, both members took batches, the
counters add up, and no log line carries the password.
"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from exportlib import (Group, Postgres, bin_path, check, expected_row_sql, free_port,  # noqa: E402
                       log, secret, spawn, wait_until)

pg = Postgres()
pg.createdb("plant")
grp = Group(policy="backpressure", slots=65536, tags=10)
grp.create(groups=("export-pg",))

pwfile = secret(grp.dir, "pg.pass", Postgres.PASSWORD)
cfg = grp.write_config(os.path.join(grp.dir, "plant.yaml"), f"""\
  postgres:
    conninfo: "{pg.tcp_conninfo('plant')}"
    password_file: {pwfile}
    source: gw-test
    batch_records: 500
    batch_age_ms: 200
""")
for m in ("pg-1", "pg-2"):
    grp.start_exporter(cfg, "postgres", m)

N = 20000
log(f"putting {N} records at 10000/s")
res = grp.put(N, rate=10000, groups=("export-pg",))
check(res["put"] == N and res["last_seq"] - res["first_seq"] + 1 == N, f"feeder put {N} records")
grp.wait_drained("export-pg", res, 60)

first, last = res["first_seq"], res["last_seq"]
rows = pg.psql(f"SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM shmbus_values "
               f"WHERE seq BETWEEN {first} AND {last}", db="plant")
check(rows == f"{N}|{N}|{first}|{last}", f"every sequence number once in shmbus_values ({rows})")
check(pg.psql("SELECT count(*) FROM shmbus_values", db="plant") == str(N), "nothing else in the table")
bad = pg.psql(f"SELECT count(*) FROM shmbus_values WHERE {expected_row_sql(grp.tags)}", db="plant")
check(bad == "0", "every field of every row equals what was put")
nan_or_null = pg.psql("SELECT count(*) FROM shmbus_values WHERE value = 'NaN'", db="plant")
check(nan_or_null == "0", "no NaN crept in")

src = pg.psql("SELECT id, name FROM shmbus_sources", db="plant")
check(src.endswith("|gw-test"), f"the source is registered ({src})")
tags = pg.psql("SELECT tag_id, name, device, unit, data_type FROM shmbus_tags ORDER BY tag_id",
               db="plant").splitlines()
check(len(tags) == 10 and tags[1] == "1|flow/rate+#|plc1|u1|FLOAT32" and tags[4] == "4|t4|plc0|u1|FLOAT32",
      "the tag catalog is in shmbus_tags")
by_name = pg.psql("SELECT count(*), min(unit), min(device), count(*) FILTER (WHERE quality = 'STALE') "
                  "FROM shmbus_tag_values WHERE tag = 't3'", db="plant")
want = sum(1 for s in range(first, last + 1) if s % 10 == 3)
check(by_name == f"{want}|u0|plc1|{want}", f"query by tag name through the view ({by_name})")
exc = pg.psql("SELECT count(*) FROM shmbus_tag_values WHERE quality = 'DEVICE_EXCEPTION' "
              "AND exception = 2", db="plant")
check(exc == str(sum(1 for s in range(first, last + 1) if s % 10 == 7)),
      "exception codes and quality names")
version = pg.psql("SELECT version FROM shmbus_schema", db="plant")
check(version == "1", "schema version 1 is recorded")

rows_counted = grp.counter("rows_total", "postgres")
check(rows_counted == N, f"rows_total counters add up to {N} ({rows_counted})")
for m in ("pg-1", "pg-2"):
    b = grp.counter("batches_total", "postgres", m)
    check(b > 0, f"member {m} took batches ({b})")
check(grp.counter("duplicates_total", "postgres") == 0, "no duplicates without faults")
check(grp.counter("connected", "postgres") == 2, "both members report connected")

# A fresh batch that meets rows the table has already (here: planted with
# the next sequence numbers) fails its direct COPY as a whole and is redone
# through the staging table: the planted rows stay, the others are added,
# nothing is doubled.
src_id = pg.psql("SELECT id FROM shmbus_sources WHERE name = 'gw-test'", db="plant")
pg.psql(f"INSERT INTO shmbus_values SELECT now(), {src_id}, s % 10, -1, 0, 0, 0, s "
        f"FROM generate_series({last + 1}::bigint, {last + 100}::bigint) s", db="plant")
dups_before = grp.counter("duplicates_total", "postgres")
res2 = grp.put(1000, rate=2000)
check(res2["first_seq"] == last + 1, "the next records got the planted sequence numbers")
grp.wait_drained("export-pg", res2, 60)
rows = pg.psql(f"SELECT count(*), count(DISTINCT seq), count(*) FILTER (WHERE value = -1) "
               f"FROM shmbus_values WHERE seq > {last}", db="plant")
check(rows == "1000|1000|100", f"conflicting batches: each record once, planted rows kept ({rows})")
check(grp.counter("duplicates_total", "postgres") - dups_before == 100,
      "the 100 rows already there are counted as duplicates")

shmstat = bin_path("shmstat")
if os.path.exists(shmstat):
    r = subprocess.run([shmstat, "--name", grp.name, "--json"], capture_output=True, text=True,
                       timeout=30)
    check(r.returncode == 0 and 'shmbus_export_rows_total{target=\\"postgres\\",member=\\"pg-1\\"}' in r.stdout,
          "shmstat shows the export counters")
else:
    log("shmstat is not built here; counter display not checked")

controller = bin_path("shmbus-controller")
if os.path.exists(controller) and shutil.which("curl"):
    http = free_port()
    ccfg = grp.write_config(os.path.join(grp.dir, "controller.yaml"), "  postgres: {}\n",
                            f"controller: {{http: '127.0.0.1:{http}'}}\n")
    spawn([controller, "--config", ccfg], os.path.join(grp.dir, "controller.log"))

    def metrics():
        r = subprocess.run(["curl", "-sf", f"http://127.0.0.1:{http}/metrics"],
                           capture_output=True, text=True)
        return r.stdout if r.returncode == 0 else ""
    text = wait_until(metrics, 20, "the controller's /metrics")
    line = [l for l in text.splitlines()
            if l.startswith('shmbus_export_rows_total{target="postgres",member="pg-1"}')]
    check(line and int(line[0].split()[-1]) == grp.counter("rows_total", "postgres", "pg-1"),
          f"the controller's /metrics shows the export counters ({line[:1]})")
    check('shmbus_export_connected{target="postgres",member="pg-2"} 1' in text,
          "the connected gauge is on /metrics")
else:
    log("shmbus-controller or curl missing here; /metrics not checked")

for m in ("pg-1", "pg-2"):
    rc = grp.stop_exporter(m)
    check(rc == 0, f"{m} stops cleanly on SIGTERM (exit {rc})")
    text = grp.exporter_log(m)
    check(Postgres.PASSWORD not in text, f"{m}'s log does not carry the password")
    check("connected" in text, f"{m} logged its connection")
log("PASS")
