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
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from exportlib import (Group, Mosquitto, SilentServer, Subscriber, check, free_port,  # noqa: E402
                       log, secret)

PW = "broker-pw-ok"
broker = Mosquitto(users={"gw": PW, "sub": "sub-pw"})
grp = Group(policy="backpressure", slots=65536, tags=10)
grp.create(groups=("export-mqtt",))
sub = Subscriber(broker, "plant/#", grp.dir, username="sub", password="sub-pw")


good_pw, wrong_pw = secret(grp.dir, "good.pass", PW), secret(grp.dir, "wrong.pass", "wrong-pw")


def config(name, host, port, pwfile):
    return grp.mqtt_config(name, host, port, username="gw", password_file=pwfile)


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
grp.wait_retrying("mqtt", bad, 2, 60)

N = 4000
sub.wait_all(grp.put_drained(N, 4000, "export-mqtt"), 30)
log(f"ok: the good member published all {N} records")
for m, reason in bad.items():
    grp.check_bad_member(m, "mqtt", reason, (PW, "wrong-pw"))
    check(f"client_id=gw-{m} user=gw" in grp.error_lines(m, "mqtt")[0],
          f"{m}: the error line names the client")
for m in members:
    check(grp.stop_exporter(m) == 0, f"{m} stops cleanly")
grp.start_fails("mqtt", "nopwfile",
                "  mqtt:\n    username: gw\n    password_file: /nonexistent/mqtt.pass\n",
                "password file /nonexistent/mqtt.pass: No such file or directory")
grp.start_fails("mqtt", "hugebatch", "  mqtt:\n    batch_records: 30000\n",
                "export.mqtt.batch_records: 30000 is out of range (1..20000)")
log("PASS")
