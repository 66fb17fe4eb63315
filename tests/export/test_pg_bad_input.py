"""test_pg_bad_input.py — bad settings and bad databases give a clear error
naming the target, the member keeps retrying, and the rest of the group
keeps exporting.

One group export-pg, eight members: two good ones (password file over TCP;
PGPASSWORD from the environment) and six that cannot work — a port where
nothing listens, a host name that does not resolve, a host that accepts
the connection and never answers (connect_timeout), a wrong password,
sslmode=require against a server without TLS, and a database whose
shmbus_values table has other columns.
Every record still arrives exactly once through the good members; each bad
member logs one error line with the reason, counts retries, takes no batch,
and the one with the incompatible table recovers on its own once the table
is fixed. Settings that can never work (a conninfo libpq cannot parse, a
missing password file, a configuration without the section) stop the
process at start with exit status 2 and the reason.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from exportlib import (Group, Postgres, SilentServer, bin_path, check, free_port,  # noqa: E402
                       log, secret, wait_until)

pg = Postgres()
pg.createdb("plant")
pg.createdb("legacy")
pg.psql("CREATE TABLE shmbus_values (time timestamptz, tag text, value text, seq bigint)",
        db="legacy")
grp = Group(policy="backpressure", slots=65536, tags=10)
grp.create(groups=("export-pg",))


good_pw = secret(grp.dir, "good.pass", Postgres.PASSWORD)
bad_pw = secret(grp.dir, "bad.pass", "not-the-password")
TAIL = "    batch_records: 500\n    batch_age_ms: 200\n    backoff_min_ms: 100\n    backoff_max_ms: 500\n"


def config(name, conninfo, password_file=None):
    body = f'  postgres:\n    conninfo: "{conninfo}"\n'
    if password_file:
        body += f"    password_file: {password_file}\n"
    return grp.write_config(os.path.join(grp.dir, f"{name}.yaml"), body + TAIL)


closed_port = free_port()
silent = SilentServer()
members = {
    "pg-good": (config("good", pg.tcp_conninfo("plant"), good_pw), None),
    "pg-envpw": (config("envpw", pg.tcp_conninfo("plant")), {"PGPASSWORD": Postgres.PASSWORD}),
    "pg-refused": (config("refused", f"host=127.0.0.1 port={closed_port} dbname=plant user=shmbus",
                          good_pw), None),
    "pg-badpw": (config("badpw", pg.tcp_conninfo("plant"), bad_pw), None),
    "pg-notls": (config("notls", pg.tcp_conninfo("plant") + " sslmode=require", good_pw), None),
    "pg-incompat": (config("incompat", f"host={pg.sock} port={pg.port} dbname=legacy user=shmbus"),
                    None),
    "pg-nodns": (config("nodns", "host=no-such-host.invalid dbname=plant user=shmbus", good_pw),
                 None),
    "pg-silent": (config("silent", f"host=127.0.0.1 port={silent.port} dbname=plant user=shmbus "
                         "connect_timeout=2", good_pw), None),
}
for m, (cfg, env) in members.items():
    grp.start_exporter(cfg, "postgres", m, env)
bad = {"pg-refused": "Connection refused",
       "pg-badpw": 'password authentication failed for user "shmbus"',
       "pg-notls": "server does not support SSL, but SSL was required",
       "pg-incompat": "incompatible existing table: shmbus_values has no column source_id (integer)",
       "pg-nodns": 'could not translate host name "no-such-host.invalid" to address',
       "pg-silent": "timeout expired"}
grp.wait_retrying("postgres", bad, 3, 60)

N = 10000
grp.put_drained(N, 5000, "export-pg")
rows = pg.psql("SELECT count(*), count(DISTINCT seq) FROM shmbus_values", db="plant")
check(rows == f"{N}|{N}", f"the good members exported every record exactly once ({rows})")
for m in ("pg-good", "pg-envpw"):
    check(grp.counter("batches_total", "postgres", m) > 0, f"{m} took batches")
for m, reason in bad.items():
    grp.check_bad_member(m, "postgres", reason, (Postgres.PASSWORD, "not-the-password"))
check("legacy" in pg.psql("SELECT current_database()", db="legacy")
      and pg.psql("SELECT count(*) FROM shmbus_values", db="legacy") == "0",
      "the incompatible table was left alone")

# The operator fixes the table: the member connects on its next retry.
pg.psql("DROP TABLE shmbus_values", db="legacy")
wait_until(lambda: "back after" in grp.exporter_log("pg-incompat"), 20,
           "pg-incompat to connect once the table is fixed")
check(pg.psql("SELECT count(*) FROM shmbus_schema", db="legacy") == "1",
      "pg-incompat created its tables in the fixed database")
for m in members:
    check(grp.stop_exporter(m) == 0, f"{m} stops cleanly")

# Settings that can never work: exit 2 at start, with the reason.
grp.start_fails("postgres", "badconninfo", '  postgres:\n    conninfo: "host=db port"\n',
                "export.postgres.conninfo is not a libpq connection string or URI")
grp.start_fails("postgres", "nopwfile",
                '  postgres:\n    conninfo: "host=db"\n    password_file: /nonexistent/pg.pass\n',
                "password file /nonexistent/pg.pass: No such file or directory")
grp.start_fails("postgres", "nosection", "  mqtt: {}\n", "export.postgres: not configured")
r = subprocess.run([bin_path("shmbus-export"), "--target", "postgres"], capture_output=True, text=True)
check(r.returncode == 2 and "--config and --target are required" in r.stderr, "usage errors exit 2")
log("PASS")
