"""test_mqtt_bad_input.py — brokers that cannot be used give a clear error
naming the target, the member keeps retrying, and the rest of the group
keeps publishing.

One group export-mqtt against a mosquitto that requires a password, five
members: a good one, and four that cannot work — a wrong password (the
broker refuses the client), a port where nothing listens, a host name that
does not resolve, and a host that accepts the connection and never sends
CONNACK. Every record still reaches the subscriber through the good member;
each bad member logs one error line with the reason, counts retries and
takes no batch. Settings that can never work (a missing password file, a
batch larger than the message ids of a session allow) stop the process at
start with exit status 2 and the reason.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from exportlib import (Group, Mosquitto, SilentServer, Subscriber, bin_path, check,  # noqa: E402
                       free_port, log, wait_until)

PW = "broker-pw-ok"
broker = Mosquitto(users={"gw": PW, "sub": "sub-pw"})
grp = Group(policy="backpressure", slots=65536, tags=10)
grp.create(groups=("export-mqtt",))
sub = Subscriber(broker, "plant/#", grp.dir, username="sub", password="sub-pw")


def secret(name, text):
    path = os.path.join(grp.dir, name)
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)
    return path


good_pw, wrong_pw = secret("good.pass", PW), secret("wrong.pass", "wrong-pw")


def config(name, host, port, pwfile, extra=""):
    return grp.write_config(os.path.join(grp.dir, f"{name}.yaml"), f"""\
  mqtt:
    host: {host}
    port: {port}
    client_id: gw
    prefix: plant
    username: gw
    password_file: {pwfile}
    batch_records: 200
    batch_age_ms: 100
    backoff_min_ms: 100
    backoff_max_ms: 500
{extra}""")


silent = SilentServer()
members = {
    "mqtt-good": config("good", "127.0.0.1", broker.port, good_pw),
    "mqtt-badpw": config("badpw", "127.0.0.1", broker.port, wrong_pw),
    "mqtt-closed": config("closed", "127.0.0.1", free_port(), good_pw),
    "mqtt-nodns": config("nodns", "no-such-host.invalid", broker.port, good_pw),
    "mqtt-silent": config("silent", "127.0.0.1", silent.port, good_pw),
}
bad = {"mqtt-badpw": "broker refused the client: Connection Refused: not authorised",
       "mqtt-closed": "connecting: Connection refused",
       "mqtt-nodns": "connecting: cannot resolve host name no-such-host.invalid: ",
       "mqtt-silent": "no CONNACK within 5000 ms"}
for m, cfg in members.items():
    grp.start_exporter(cfg, "mqtt", m)
wait_until(lambda: all(grp.counter("retries_total", "mqtt", m) >= 2 for m in bad), 60,
           "every bad member to retry")

N = 4000
res = grp.put(N, rate=4000)
grp.wait_drained("export-mqtt", res, 60)
want = set(range(res["first_seq"], res["last_seq"] + 1))
wait_until(lambda: want <= {p["seq"] for _, p in sub.messages()}, 30,
           "mosquitto_sub to receive every record", interval=0.3)
check(True, f"the good member published all {N} records")
for m, reason in bad.items():
    p, _ = grp.exporters[m]
    check(p.poll() is None, f"{m} keeps running")
    check(grp.counter("batches_total", "mqtt", m) == 0, f"{m} took no batch")
    text = grp.exporter_log(m)
    errors = [l for l in text.splitlines() if " error: mqtt target " in l]
    check(len(errors) == 1 and reason in errors[0] and "client_id=gw-" + m in errors[0],
          f"{m}: one error line naming the target and the reason '{reason}'")
    log(f"  {errors[0].split(' error: ', 1)[1][:200]}")
    check(PW not in text and "wrong-pw" not in text, f"{m}: no password in the log")
for m in members:
    check(grp.stop_exporter(m) == 0, f"{m} stops cleanly")


def start_fails(name, body, expect):
    cfg = grp.write_config(os.path.join(grp.dir, f"{name}.yaml"), body)
    r = subprocess.run([bin_path("shmbus-export"), "--config", cfg, "--target", "mqtt",
                        "--name", name], capture_output=True, text=True, timeout=30)
    check(r.returncode == 2 and expect in r.stderr,
          f"{name}: exit 2 with '{expect}' (got {r.returncode}: {r.stderr.strip()[-200:]})")


start_fails("nopwfile", "  mqtt:\n    username: gw\n    password_file: /nonexistent/mqtt.pass\n",
            "password file /nonexistent/mqtt.pass: No such file or directory")
start_fails("hugebatch", "  mqtt:\n    batch_records: 30000\n",
            "export.mqtt.batch_records: 30000 is out of range (1..20000)")
log("PASS")
