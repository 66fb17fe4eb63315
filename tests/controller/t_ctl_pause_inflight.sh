#!/usr/bin/env bash
# t_ctl_pause_inflight.sh — a poll response that meets the controller's
# pause is held and published on resume, not dropped. A fake device answers
# every request after 1.5 s; the controller's `pause` (the segment's paused
# flag: claims get SHM_EPAUSED) is sent while a request is pending, so its
# answer arrives while producers are paused. After `resume`: the poller's
# records_dropped_total is 0 and the held request's records are on the ring.
. "$(dirname "$0")/lib.sh"

DEV_PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
write_config "  slot_count: 1024
  policy: backpressure" "  check_interval_ms: 100" "devices:
  - name: plc1
    host: 127.0.0.1
    port: $DEV_PORT
    address_base: 0
    response_timeout_ms: 4000
    poll_groups: [{name: g, interval_ms: 100}]
    tags:
      - {name: t0, register: holding, address: 0, type: uint16, poll_group: g}
      - {name: t1, register: holding, address: 1, type: uint16, poll_group: g}
      - {name: t2, register: holding, address: 2, type: uint16, poll_group: g}
      - {name: t3, register: holding, address: 3, type: uint16, poll_group: g}"
start_controller

port_open() { "$PY" -c "import socket,sys; socket.create_connection(('127.0.0.1', $DEV_PORT), 0.2)"; }
requests_seen() { [ "$(wc -l <"$T/device.out")" -ge "$1" ]; }
records_seen() { [ "$(grep -c '"seq"' "$T/probe.out")" -ge "$1" ]; }
metric() { get /metrics | sed -n "s/^$1{device=\"plc1\"} //p"; }

spawn device device "$PY" "$SHMBUS_SOURCE_DIR/tests/poller/fake_device.py" --port "$DEV_PORT" --script slow
check "fake device listens" wait_for 10 port_open
spawn probe probe "$BIN/ring_probe" --segment "$SEG" --seconds 60 --ready "$T/probe.ready"
check "ring_probe ready" wait_for 10 test -e "$T/probe.ready"
spawn poller poller "$BIN/shmbus-poller" --config "$T/c.yaml"

# The first answer arrives; then wait for the next request and pause at once,
# well inside the 1.5 s the device takes to answer it.
check "the first request's records arrive" wait_for 15 records_seen 4
n=$(wc -l <"$T/device.out")
check "the poller sends its next request" wait_for 5 requests_seen $((n + 1))
before=$(grep -c '"seq"' "$T/probe.out")
r=$(req '{"cmd":"pause"}')
[ "$(jq -r .paused <<<"$r")" = true ] || fail "pause: $r"
t_pause=$(date +%s%N)
sleep 2.5 # the pending answer arrives (~1.5 s after its request) while paused
[ "$(grep -c '"seq"' "$T/probe.out")" = "$before" ] || fail "records published while paused"
r=$(req '{"cmd":"resume"}')
[ "$(jq -r .paused <<<"$r")" = false ] || fail "resume: $r"
check "the held answer is published after resume" wait_for 5 records_seen $((before + 4))
# Its records carry the time they were read, before the pause.
held=$(jq -s --argjson p "$t_pause" '[.[] | select(has("seq"))] | .['"$before"':('"$before"' + 4)] | map(.ts < $p) | all' "$T/probe.out")
[ "$held" = true ] || fail "the records after resume are not the ones read before the pause"
dropped=$(metric shmbus_poller_records_dropped_total)
[ "$dropped" = 0 ] || fail "the poller dropped $dropped records at the pause"
grep -q 'control: polling paused' "$T/poller.err" || fail "the poller did not log the pause"
echo "PASS: the answer that met the pause was held and published ($(wc -l <"$T/device.out") requests served)"
