"""test_mqtt_tls.py — MQTT over TLS with the settings of the configuration.

A test CA signs a certificate for 127.0.0.1; mosquitto listens with it. An
exporter that trusts the CA (tls_ca_file) delivers every record, which a
mosquitto_sub over TLS receives; one that trusts another CA is refused by
its own certificate check (a clear error naming the target and OpenSSL's
reason, retries, no batch taken) while the other goes on; a CA file that
does not exist stops the process at start (exit 2).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from exportlib import Group, Mosquitto, Subscriber, check, log, test_pki, wait_until  # noqa: E402

pki = test_pki()
ca = os.path.join(pki, "ca.pem")
broker = Mosquitto(listener_conf=(f"cafile {ca}", f"certfile {pki}/server.pem",
                                  f"keyfile {pki}/server.key"))
grp = Group(policy="backpressure", slots=65536, tags=10)
grp.create(groups=("export-mqtt",))
sub = Subscriber(broker, "tls/#", grp.dir, extra_args=("--cafile", ca))


def config(name, ca_file):
    return grp.mqtt_config(name, "127.0.0.1", broker.port, prefix="tls", tls_ca_file=ca_file)


grp.start_exporter(config("good", ca), "mqtt", "tls-good")
grp.start_exporter(config("otherca", os.path.join(pki, "other.pem")), "mqtt", "tls-otherca")
wait_until(lambda: grp.counter("connected", "mqtt", "tls-good") == 1, 30, "the TLS exporter to connect")
grp.wait_retrying("mqtt", ["tls-otherca"], 2, 30)
N = 3000
sub.wait_all(grp.put_drained(N, 3000, "export-mqtt"), 30, "mosquitto_sub over TLS to receive every record")
log(f"ok: all {N} records went over TLS and reached the subscriber")
grp.check_bad_member("tls-otherca", "mqtt", "A TLS error occurred")
check(" tls: " in grp.error_lines("tls-otherca", "mqtt")[0]
      and "certificate verify failed" in grp.error_lines("tls-otherca", "mqtt")[0],
      "the error line says TLS and gives OpenSSL's reason")
for m in ("tls-good", "tls-otherca"):
    check(grp.stop_exporter(m) == 0, f"{m} stops cleanly")

grp.start_fails("mqtt", "missing", "  mqtt:\n    tls_ca_file: /nonexistent/ca.pem\n", "TLS settings")
log("PASS")
