"""test_pg_tls.py — the TLS settings of the conninfo reach libpq unchanged.

A test CA signs a certificate for 127.0.0.1; PostgreSQL 15 serves TLS with
it. An exporter whose conninfo says sslmode=verify-full and trusts the CA
(sslrootcert) delivers every record over TLS (pg_stat_ssl shows its
connections encrypted); one that trusts another CA refuses the server
itself: one error line naming the target and OpenSSL's reason, retries, no
batch taken, while the other member goes on. Neither logs the password.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from exportlib import Group, Postgres, check, log, secret, test_pki, wait_until  # noqa: E402

pki = test_pki()
pg = Postgres(settings=("ssl=on", f"ssl_cert_file={pki}/server.pem",
                        f"ssl_key_file={pki}/server.key"))
pg.createdb("plant")
grp = Group(policy="backpressure", slots=65536, tags=10)
grp.create(groups=("export-pg",))
pwfile = secret(grp.dir, "pg.pass", Postgres.PASSWORD)


def config(name, rootcert):
    return grp.write_config(os.path.join(grp.dir, f"{name}.yaml"), f"""\
  postgres:
    conninfo: "{pg.tcp_conninfo('plant')} sslmode=verify-full sslrootcert={rootcert}"
    password_file: {pwfile}
    batch_records: 500
    batch_age_ms: 200
    backoff_min_ms: 100
    backoff_max_ms: 500
""")


grp.start_exporter(config("good", f"{pki}/ca.pem"), "postgres", "tls-good")
grp.start_exporter(config("otherca", f"{pki}/other.pem"), "postgres", "tls-otherca")
wait_until(lambda: grp.counter("connected", "postgres", "tls-good") == 1, 30,
           "the TLS exporter to connect")
grp.wait_retrying("postgres", ["tls-otherca"], 2, 30)

N = 5000
grp.put_drained(N, 5000, "export-pg")
rows = pg.psql("SELECT count(*), count(DISTINCT seq) FROM shmbus_values", db="plant")
check(rows == f"{N}|{N}", f"every record arrived once over TLS ({rows})")
encrypted = pg.psql("SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_ssl s "
                    "JOIN pg_stat_activity a USING (pid) "
                    "WHERE a.application_name = 'shmbus-export'")
check(encrypted.split("|")[0] == encrypted.split("|")[1] != "0",
      f"the exporter's connections are encrypted (encrypted|all: {encrypted})")
grp.check_bad_member("tls-otherca", "postgres", "SSL error: certificate verify failed",
                     (Postgres.PASSWORD,))
check("sslmode=verify-full" in grp.error_lines("tls-otherca", "postgres")[0],
      "the error line names the TLS mode")
check(Postgres.PASSWORD not in grp.exporter_log("tls-good"), "tls-good: the password is not logged")
for m in ("tls-good", "tls-otherca"):
    check(grp.stop_exporter(m) == 0, f"{m} stops cleanly")
log("PASS")
