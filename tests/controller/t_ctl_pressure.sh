#!/usr/bin/env bash
# t_ctl_pressure.sh — memory-pressure transitions driven by a real slow
# consumer: shmbus-load produces into a backpressure ring, a second
# shmbus-load drains both groups and is stopped with SIGSTOP. The controller
# must climb none -> low -> moderate -> high -> critical, pause producers (in
# the segment and on PUB), and after SIGCONT recover in reverse order, one
# level at a time. The published actions are received by nngcat as the real
# subscriber; nothing produced is lost (backpressure).
. "$(dirname "$0")/lib.sh"

write_config "  slot_count: 8192
  policy: backpressure" "  check_interval_ms: 100"
start_controller
start_subscriber


# The consumer first (it must be draining before anything is produced).
spawn consumer consumer "$BIN/shmbus-load" --name "$SEG" --rate 0.001 --drain writer --drain stats --seconds 60
check "consumer joined both groups" wait_for 10 groups_served
spawn producer producer "$BIN/shmbus-load" --name "$SEG" --rate 4000 --tags 100 --seconds 60
producing() { [ "$(req '{"cmd":"status"}' | jq .ring.records_put)" -gt 2000 ]; }
check "records flow" wait_for 10 producing
check "pressure none while the consumer keeps up" wait_for 10 level_is none
marker=$(wc -l <"$T/events.q") # what is published from here on is checked below
transitions() { # from to: the counter's value in /metrics
  local v
  v=$(grep -F "shmbus_controller_pressure_transitions_total{from=\"$1\",to=\"$2\"} " <<<"$3" | cut -d' ' -f2)
  echo "${v:-0}"
}
before=$(get /metrics)
tbefore=$(get /api/pressure | jq .transitions)

kill -STOP "$consumer"
check "pressure reaches critical" wait_for 10 level_is critical
status=$(req '{"cmd":"status"}')
[ "$(jq -r .paused <<<"$status")" = true ] || fail "status does not say paused: $status"
[ "$(get /api/pressure | jq -r .paused_by_pressure)" = true ] || fail "not paused by pressure"
metrics=$(get /metrics)
grep -qx 'shmbus_ring_paused 1' <<<"$metrics" || fail "/metrics does not show paused"
grep -qx 'shmbus_pressure_level 4' <<<"$metrics" || fail "/metrics does not show level 4"

# Stop producing, then let the consumer drain: pure recovery.
kill -TERM "$producer"
wait "$producer" || fail "producer failed"
kill -CONT "$consumer"
check "pressure recovers to none" wait_for 10 level_is none
[ "$(req '{"cmd":"status"}' | jq -r .paused)" = false ] || fail "still paused after recovery"
sleep 0.3 # the last events are in flight to nngcat

got=$(tail -n +"$((marker + 1))" "$T/events.q" | jq -r . | jq -r '.cmd + (if .level then ":" + .level else "" end)' | tr '\n' ' ')
want="pressure:low pressure:moderate pressure:high pressure:critical pause resume pressure:high pressure:moderate pressure:low pressure:none "
[ "$got" = "$want" ] || fail "published actions: got '$got', want '$want'"
# Each message is exactly the documented JSON.
published=$(tail -n +"$((marker + 1))" "$T/events.q" | jq -r .)
grep -qx '{"cmd":"pressure","level":"critical"}' <<<"$published" ||
  fail "pressure message is not the documented JSON"
grep -qx '{"cmd":"pause"}' <<<"$published" || fail "no pause message"

# Every transition was logged and counted (once each since the marker).
for t in 'none -> low' 'low -> moderate' 'moderate -> high' 'high -> critical' \
  'critical -> high' 'high -> moderate' 'moderate -> low' 'low -> none'; do
  grep -q "pressure $t: " "$T/controller.log" || fail "transition '$t' not logged"
done
after=$(get /metrics)
for pair in none,low low,moderate moderate,high high,critical critical,high high,moderate moderate,low low,none; do
  from=${pair%,*} to=${pair#*,}
  d=$(($(transitions "$from" "$to" "$after") - $(transitions "$from" "$to" "$before")))
  [ "$d" -eq 1 ] || fail "transition $from -> $to counted $d times, want 1"
done
[ "$(($(get /api/pressure | jq .transitions) - tbefore))" -eq 8 ] || fail "transitions in /api/pressure"

# Nothing lost: each group drained what was put.
kill -TERM "$consumer"
wait "$consumer" || fail "consumer failed"
put=$(jq .put "$T/producer.out")
drained=$(jq .drained "$T/consumer.out")
[ "$put" -gt 8192 ] || fail "producer put only $put records"
[ "$drained" -eq $((put * 2)) ] || fail "drained $drained of $((put * 2)) (2 groups x $put)"
buffer=$(get /api/buffer/status)
[ "$(jq .current_size <<<"$buffer")" -eq 0 ] || fail "ring not empty: $buffer"
[ "$(jq '[.groups[].overflow_count] | add' <<<"$buffer")" -eq 0 ] || fail "a group lost records"

stop_controller
echo "PASS: $got"
