"""test_mqtt_tls.py — MQTT over TLS with the settings of the configuration.

A test CA signs a certificate for 127.0.0.1; mosquitto listens with it. An
exporter that trusts the CA (tls_ca_file) delivers every record, which a
mosquitto_sub over TLS receives; one that trusts another CA is refused by
its own certificate check (a clear error naming the target and OpenSSL's
reason, retries, no batch taken) while the other goes on; a CA file that
does not exist stops the process at start (exit 2).
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from exportlib import (Group, Mosquitto, Subscriber, bin_path, check, log,  # noqa: E402
                       test_pki, wait_until)

pki = test_pki()
ca = os.path.join(pki, "ca.pem")
broker = Mosquitto(listener_conf=(f"cafile {ca}", f"certfile {pki}/server.pem",
                                  f"keyfile {pki}/server.key"))
grp = Group(policy="backpressure", slots=65536, tags=10)
grp.create(groups=("export-mqtt",))
sub = Subscriber(broker, "tls/#", grp.dir, extra_args=("--cafile", ca))


def config(name, ca_file):
    return grp.write_config(os.path.join(grp.dir, f"{name}.yaml"), f"""\
  mqtt:
    host: 127.0.0.1
    port: {broker.port}
    client_id: gw
    prefix: tls
    tls_ca_file: {ca_file}
    batch_records: 200
    batch_age_ms: 100
    backoff_min_ms: 100
    backoff_max_ms: 500
""")


grp.start_exporter(config("good", ca), "mqtt", "tls-good")
grp.start_exporter(config("otherca", os.path.join(pki, "other.pem")), "mqtt", "tls-otherca")
wait_until(lambda: grp.counter("connected", "mqtt", "tls-good") == 1, 30, "the TLS exporter to connect")
wait_until(lambda: grp.counter("retries_total", "mqtt", "tls-otherca") >= 2, 30,
           "the exporter with the wrong CA to retry")
N = 3000
res = grp.put(N, rate=3000)
grp.wait_drained("export-mqtt", res, 60)
want = set(range(res["first_seq"], res["last_seq"] + 1))
wait_until(lambda: want <= {p["seq"] for _, p in sub.messages()}, 30,
           "mosquitto_sub over TLS to receive every record", interval=0.3)
check(True, f"all {N} records went over TLS and reached the subscriber")
check(grp.counter("batches_total", "mqtt", "tls-otherca") == 0, "the member that distrusts the broker took no batch")
errors = [l for l in grp.exporter_log("tls-otherca").splitlines() if " error: mqtt target " in l]
check(len(errors) == 1 and "tls" in errors[0] and "A TLS error occurred" in errors[0]
      and "certificate verify failed" in errors[0],
      f"one clear error line with OpenSSL's reason ({errors[:1]})")
for m in ("tls-good", "tls-otherca"):
    check(grp.stop_exporter(m) == 0, f"{m} stops cleanly")

cfg = config("missing", "/nonexistent/ca.pem")
r = subprocess.run([bin_path("shmbus-export"), "--config", cfg, "--target", "mqtt", "--name", "x"],
                   capture_output=True, text=True, timeout=30)
check(r.returncode == 2 and "TLS settings" in r.stderr,
      f"a CA file that does not exist: exit 2 at start ({r.stderr.strip()[-160:]})")
log("PASS")
