"""test_mqtt_faults.py — at least once to the broker through exporter
crashes and a broker restart; a client the broker refuses does not hold
the group back.

mosquitto requires a password; two exporters log in, a third has the wrong
password and is refused (one clear error line, retries, no batch taken).
While a live ring is fed, one exporter is SIGKILLed 20 times (restarted at
once under its name, so its persistent session continues) and the broker
is stopped and restarted (persistence in a temporary directory). A
mosquitto_sub with a persistent session at QoS 1 receives every record at
least once (exactly once after deduplication by "seq").
"""
import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from exportlib import Group, Mosquitto, Subscriber, check, log, secret, wait_until  # noqa: E402

random.seed(os.getpid())
PW = "broker-pw-ok"
broker = Mosquitto(users={"gw": PW, "sub": "sub-pw"})
grp = Group(policy="backpressure", slots=65536, tags=10)
grp.create(groups=("export-mqtt",))
sub = Subscriber(broker, "plant/#", grp.dir, username="sub", password="sub-pw")


def config(name, pwfile):
    return grp.mqtt_config(name, "127.0.0.1", broker.port, username="gw", password_file=pwfile,
                           backoff_max_ms=800, ack_timeout_ms=5000)


good = config("good", secret(grp.dir, "good.pass", PW))
wrong = config("wrong", secret(grp.dir, "wrong.pass", "wrong-pw"))
members = ["mqtt-1", "mqtt-2"]
for m in members:
    grp.start_exporter(good, "mqtt", m)
grp.start_exporter(wrong, "mqtt", "mqtt-bad")
wait_until(lambda: grp.counter("connected", "mqtt", "mqtt-1") == 1
           and grp.counter("connected", "mqtt", "mqtt-2") == 1, 30, "both good exporters to connect")

N = 24000
feeder, out = grp.put(N, rate=2000, wait=False)
t0 = time.monotonic()
kills = 0
restarted = False
while kills < 20 or not restarted:
    time.sleep(random.uniform(0.25, 0.45))
    if not restarted and time.monotonic() - t0 > 4:
        log("restarting the broker")
        broker.stop()
        time.sleep(1.5)
        broker.start()
        restarted = True
        continue
    if kills < 20:
        p, _ = grp.exporters["mqtt-1"]
        p.send_signal(signal.SIGKILL)
        p.wait()
        kills += 1
        grp.start_exporter(good, "mqtt", "mqtt-1")
log(f"{kills} SIGKILLs done, broker restarted")
check(feeder.wait(timeout=120) == 0, "feeder finished")
res = grp.feed_result(out)
check(res["put"] == N, f"feeder put {N} records")
grp.wait_drained("export-mqtt", res, 90)
want = set(range(res["first_seq"], res["last_seq"] + 1))
wait_until(lambda: want <= {p["seq"] for _, p in sub.messages()}, 60,
           "mosquitto_sub to receive every acknowledged record", interval=0.5)
seqs = [p["seq"] for _, p in sub.messages()]
check(want <= set(seqs), f"every one of the {N} records reached the subscriber at least once")
log(f"{len(seqs)} messages for {N} records: {len(seqs) - len(set(seqs))} repeats, "
    f"exactly once after deduplication by seq")
g = grp.group("export-mqtt")
check(g["redelivered"] > 0, f"killed members' batches were re-delivered ({g['redelivered']})")
check(grp.counter("outages_total", "mqtt", "mqtt-2") >= 1, "mqtt-2 counted the broker outage")
text = grp.exporter_log("mqtt-2")
check(" error: mqtt target 127.0.0.1:" in text and "back after" in text,
      "mqtt-2 logged the outage and its end")

check(grp.counter("retries_total", "mqtt", "mqtt-bad") >= 2, "the refused member keeps retrying")
grp.check_bad_member("mqtt-bad", "mqtt", "broker refused the client: Connection Refused: not authorised",
                     (PW, "wrong-pw"))
check(PW not in text, "no password in mqtt-2's log")
for m in members + ["mqtt-bad"]:
    check(grp.stop_exporter(m) == 0, f"{m} stops cleanly")
log("PASS")
