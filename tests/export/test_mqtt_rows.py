"""test_mqtt_rows.py — records from a live ring reach an MQTT broker, one
message per record on <prefix>/<device>/<tag>, with the JSON payload of
schemas/mqtt.md, published by two competing exporters at QoS 1.

mosquitto (free loopback port, persistence in a temporary directory) and
mosquitto_sub with a persistent session receive every record; each
payload's fields equal what was put; a tag name with '/', '+', '#' is
escaped in its topic level; with retain on, a new subscriber gets the last
value of every tag; the counters add up.
"""
import datetime
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from exportlib import Group, Mosquitto, Subscriber, check, log, wait_until  # noqa: E402


def expected(seq, tags):
    tag = seq % tags
    name = "flow_rate__" if tag == 1 else f"t{tag}"
    t = datetime.datetime.fromtimestamp(seq // 1000 / 1e6, datetime.timezone.utc)
    q = "DEVICE_EXCEPTION" if seq % 10 == 7 else "STALE" if seq % 10 == 3 else "GOOD"
    return (f"plant/gw/plc{tag % 2}/{name}", t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            (seq % 100000) * 0.25, q, f"u{tag % 3}")


broker = Mosquitto()
grp = Group(policy="backpressure", slots=65536, tags=10)
grp.create(groups=("export-mqtt",))
sub = Subscriber(broker, "plant/gw/#", grp.dir)
cfg = grp.write_config(os.path.join(grp.dir, "plant.yaml"), f"""\
  mqtt:
    host: 127.0.0.1
    port: {broker.port}
    client_id: gw
    prefix: plant/gw
    qos: 1
    retain: true
    batch_records: 200
    batch_age_ms: 100
""")
for m in ("mqtt-1", "mqtt-2"):
    grp.start_exporter(cfg, "mqtt", m)
wait_until(lambda: grp.counter("connected", "mqtt") == 2, 30, "both exporters to connect")

N = 5000
log(f"putting {N} records at 5000/s")
res = grp.put(N, rate=5000, groups=("export-mqtt",))
check(res["put"] == N, f"feeder put {N} records")
grp.wait_drained("export-mqtt", res, 60)
first, last = res["first_seq"], res["last_seq"]
want = set(range(first, last + 1))


def all_received():
    got = {p["seq"] for _, p in sub.messages()}
    return want <= got


wait_until(all_received, 30, "mosquitto_sub to receive every record", interval=0.3)
msgs = sub.messages()
seqs = [p["seq"] for _, p in msgs]
check(set(seqs) == want, f"mosquitto_sub received each of the {N} records")
log(f"{len(seqs)} messages for {N} records ({len(seqs) - N} repeats)")
wrong = []
for topic, p in msgs:
    e_topic, e_time, e_value, e_quality, e_unit = expected(p["seq"], grp.tags)
    got = (topic, p["time"], p["value"], p["quality"], p["unit"])
    if got != (e_topic, e_time, e_value, e_quality, e_unit):
        wrong.append((got, (e_topic, e_time, e_value, e_quality, e_unit)))
    elif (p["seq"] % 10 == 7) != (p.get("exception") == 2):
        wrong.append((p, "exception"))
check(not wrong, f"topic and payload of every message are what was put ({wrong[:3]})")
check(grp.counter("messages_total", "mqtt") == N,
      f"messages_total counters add up to {N} ({grp.counter('messages_total', 'mqtt')})")
for m in ("mqtt-1", "mqtt-2"):
    check(grp.counter("batches_total", "mqtt", m) > 0, f"member {m} took batches")

# Retained: a fresh subscriber gets a value of each of the 10 tags at once.
r = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-t", "plant/gw/#",
                    "--retained-only", "-W", "3", "-F", "%t %p"], capture_output=True, text=True)
retained = {}
for line in r.stdout.splitlines():
    topic, payload = line.split(" ", 1)
    import json
    retained[topic] = json.loads(payload)["seq"]
ok = len(retained) == 10
for topic, seq in retained.items():
    ok = ok and first <= seq <= last and expected(seq, grp.tags)[0] == topic
check(ok, f"retained: one message per tag topic, a value of that tag ({len(retained)} topics); "
          "with two members the last to arrive is not always the newest")

for m in ("mqtt-1", "mqtt-2"):
    rc = grp.stop_exporter(m)
    check(rc == 0, f"{m} stops cleanly (exit {rc})")
log("PASS")
