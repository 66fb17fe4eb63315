#!/usr/bin/env bash
# t_ctl_poller.sh — the whole pressure loop with real processes: the
# controller, shmbus-sim serving one device, shmbus-poller reading it (4
# high-priority tags in poll group "fast", 12 low-priority tags in "lowg",
# both every 100 ms), a slow consumer (ctl_testpeer drain: 240 records/s per
# group) that is stopped with SIGSTOP so the ring fills, and ring_probe
# recording every record the poller publishes.
#
# The evidence is what the poller did, not what was sent to it:
#  - its log shows it applied none->low->moderate->high->critical and, after
#    SIGCONT, critical->high->moderate->low->none, in exactly that order;
#  - the records it published (ring_probe, timestamped at the poll instant)
#    between the moments it applied two levels show: moderate, the
#    low-priority group polled at most half as often as the high-priority
#    one (slow factor 4) but still polled; high, no low-priority record at
#    all while high-priority tags keep coming; critical, no record at all,
#    and its request counter (read from the controller's /metrics) stands
#    still; after recovery both groups at their full rate again;
#  - the controller published exactly the documented actions (an nngcat
#    subscriber) and logged every transition;
#  - a set_interval request to the controller reaches the poller.
# No assertion is about speed: counts are compared with each other inside
# one window, and each window starts 250 ms after the poller logged the
# level, so a poll decided just before the change is not counted in it.
. "$(dirname "$0")/lib.sh"

SIM_PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
tags=""
for i in 0 1 2 3; do
  tags+="      - {name: hi$i, register: holding, address: $i, type: uint16, poll_group: fast}
"
done
for i in $(seq 0 11); do
  tags+="      - {name: lo$i, register: holding, address: $((10 + i)), type: uint16, poll_group: lowg, priority: 5}
"
done
# Thresholds wider apart than the defaults, so that each level lasts long
# enough (seconds) at this small production rate to be seen in the records.
write_config "  slot_count: 1024
  policy: backpressure" "  check_interval_ms: 100
  pressure: {low: 0.3, moderate: 0.45, high: 0.75, critical: 0.85, hysteresis: 0.05}" "devices:
  - name: plc1
    host: 127.0.0.1
    port: $SIM_PORT
    address_base: 0
    poll_groups: [{name: fast, interval_ms: 100}, {name: lowg, interval_ms: 100}]
    tags:
$tags"
start_controller
start_subscriber # before the poller: the subscriber's reload requests must not reach it
marker=$(wc -l <"$T/events.q")

port_open() { "$PY" -c "import socket,sys; socket.create_connection(('127.0.0.1', $SIM_PORT), 0.2)"; }
records_seen() { [ "$(grep -c '"seq"' "$T/probe.out")" -gt "$1" ]; }
poller_logged() { grep -q "control: pressure $1 -> $2 " "$T/poller.err"; }
requests_total() { get /metrics | sed -n 's/^shmbus_poller_requests_total{device="plc1"} //p'; }

spawn sim sim "$BIN/shmbus-sim" --config "$T/c.yaml"
check "shmbus-sim listens" wait_for 10 port_open
spawn consumer consumer "$BUILD/tests/ctl_testpeer" drain "$SEG" 240 writer stats
check "the slow consumer joined both groups" wait_for 10 groups_served
spawn probe probe "$BIN/ring_probe" --segment "$SEG" --seconds 170 --ready "$T/probe.ready" --catalog
check "ring_probe ready" wait_for 10 test -e "$T/probe.ready"
spawn poller poller "$BIN/shmbus-poller" --config "$T/c.yaml"
check "the poller publishes" wait_for 15 records_seen 100
check "pressure none while the consumer keeps up" wait_for 10 level_is none

now_ns() { date +%s%N; }
t_base=$(now_ns)
sleep 2

# --- the consumer stops: the ring fills, the poller is steered down
kill -STOP "$consumer"
t_stop=$(now_ns)
check "pressure reaches critical" wait_for 60 level_is critical
check "the poller applied critical" wait_for 5 poller_logged high critical
grep -q 'control: polling paused' "$T/poller.err" || fail "the poller did not log the pause"
[ "$(get /api/pressure | jq -r .paused_by_pressure)" = true ] || fail "not paused by pressure"
sleep 0.3
r1=$(requests_total)
sleep 1.5
r2=$(requests_total)
[ -n "$r1" ] && [ "$r1" = "$r2" ] || fail "the poller kept sending requests at critical: $r1 -> $r2"

# --- the consumer resumes: recovery one level per check, in reverse
kill -CONT "$consumer"
check "pressure recovers to none" wait_for 60 level_is none
check "the poller applied none" wait_for 5 poller_logged low none
grep -q 'control: polling resumed' "$T/poller.err" || fail "the poller did not log the resume"
sleep 2
t_end=$(now_ns)
r3=$(requests_total)
[ "$r3" -gt "$r2" ] || fail "the poller sends no requests after recovery ($r2 -> $r3)"

# A poll group's interval set through the controller's control plane
# reaches the poller too.
r=$(req '{"cmd":"set_interval","device":"plc1","group":"lowg","interval_ms":1000}')
[ "$(jq -r .ok <<<"$r")" = true ] || fail "set_interval: $r"
interval_applied() { grep -q 'control: device plc1 group lowg: interval 1000 ms' "$T/poller.err"; }
check "the poller applied the interval" wait_for 5 interval_applied

kill -TERM "$poller"
wait "$poller" || fail "the poller exited with $? on SIGTERM"
kill -TERM "$probe"
wait "$probe" || fail "ring_probe failed (invalid records?): $(tail -3 "$T/probe.err")"
kill -TERM "$consumer"
wait "$consumer" || fail "the slow consumer failed"

# --- what the poller applied, in order
applied=$(sed -n 's/.*control: pressure \([a-z]*\) -> \([a-z]*\) .*/\1>\2/p' "$T/poller.err" | tr '\n' ' ')
want="none>low low>moderate moderate>high high>critical critical>high high>moderate moderate>low low>none "
[ "$applied" = "$want" ] || fail "the poller applied '$applied', want '$want'"
at() { # FROM TO: when the poller logged that change, ns since the epoch
  local stamp
  stamp=$(grep -m1 "control: pressure $1 -> $2 " "$T/poller.err" | cut -d' ' -f1)
  date -d "$stamp" +%s%N
}
t_mod=$(at low moderate) t_high=$(at moderate high) t_crit=$(at high critical)
t_rhigh=$(at critical high) t_rmod=$(at high moderate) t_rlow=$(at moderate low)
t_none=$(at low none)
M=250000000 # 250 ms

# counts FROM_NS TO_NS: "<records per high-priority tag> <per low-priority tag>"
# in [FROM, TO) by poll instant, tags classified by their catalog priority.
counts() {
  jq -rs --argjson a "$1" --argjson b "$2" '
    (map(select(has("catalog"))) | map({key: (.catalog | tostring), value: .priority}) | from_entries) as $prio
    | map(select(has("seq") and .ts >= $a and .ts < $b))
    | [(map(select($prio[.tag | tostring] == 0)) | length) / 4,
       (map(select($prio[.tag | tostring] == 5)) | length) / 12]
    | "\(.[0]) \(.[1])"' "$T/probe.out"
}
report=""
window() { # NAME FROM TO: sets HI and LO for the window
  read -r HI LO <<<"$(counts "$2" "$3")"
  report+="$1: hi $HI lo $LO; "
}
le_half() { jq -en --argjson lo "$1" --argjson hi "$2" '$lo <= $hi / 2' >/dev/null; }
ge_half() { jq -en --argjson lo "$1" --argjson hi "$2" '$lo >= $hi / 2' >/dev/null; }
positive() { jq -en --argjson x "$1" '$x > 0' >/dev/null; }
at_least() { jq -en --argjson x "$1" --argjson n "$2" '$x >= $n' >/dev/null; }

window base "$t_base" "$t_stop"
at_least "$HI" 5 && ge_half "$LO" "$HI" || fail "before the pressure both groups run alike: $report"
window moderate $((t_mod + M)) "$t_high"
at_least "$HI" 4 || fail "moderate lasted too little to judge: $report"
positive "$LO" && le_half "$LO" "$HI" || fail "moderate: low-priority group not slowed (or stopped): $report"
window high $((t_high + M)) "$t_crit"
positive "$HI" && [ "$LO" = 0 ] || fail "high: low-priority tags not stopped (or all stopped): $report"
window critical $((t_crit + M)) "$t_rhigh"
[ "$HI" = 0 ] && [ "$LO" = 0 ] || fail "critical: records published while paused: $report"
window recovery-high $((t_rhigh + M)) "$t_rmod"
[ "$LO" = 0 ] || fail "back at high: low-priority tags published: $report"
window recovery-moderate $((t_rmod + M)) "$t_rlow" # short (about 1 s): judged when long enough
if at_least "$HI" 4; then le_half "$LO" "$HI" || fail "back at moderate: not slowed: $report"; fi
window recovered $((t_none + M)) "$t_end"
at_least "$HI" 5 && ge_half "$LO" "$HI" || fail "after recovery both groups run alike again: $report"

# --- what the controller published and logged
got=$(tail -n +"$((marker + 1))" "$T/events.q" | jq -r . | jq -r '.cmd + (if .level then ":" + .level else "" end)' | tr '\n' ' ')
want="pressure:low pressure:moderate pressure:high pressure:critical pause resume pressure:high pressure:moderate pressure:low pressure:none set_interval "
[ "$got" = "$want" ] || fail "published actions: got '$got', want '$want'"
for t in 'none -> low' 'low -> moderate' 'moderate -> high' 'high -> critical' \
  'critical -> high' 'high -> moderate' 'moderate -> low' 'low -> none'; do
  grep -q "pressure $t: .* from ring (group " "$T/controller.log" || fail "controller did not log '$t'"
done

stop_controller
echo "PASS: $report"
