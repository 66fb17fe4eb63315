#!/usr/bin/env bash
# t_ctl_control.sh — the control plane driven with nngcat as the real peer:
# every command, the events it forwards (received by an nngcat subscriber),
# bad requests answered with {"error":...} while good ones keep working,
# restrictive socket permissions, reload by request and by SIGHUP (and a
# broken config refused with the old one kept), and a clean stop.
. "$(dirname "$0")/lib.sh"

DEVICES='devices:
  - name: plc1
    host: 127.0.0.1
    address_base: 0
    poll_groups: [{name: fast, interval_ms: 100}]
    tags: [{name: t1, register: holding, address: 0, type: uint16, poll_group: fast}]'
write_config "  slot_count: 1024" "  required_roles: [writer]" "$DEVICES"
start_controller

# IPC sockets: owner and group only.
for s in control events; do
  mode=$(stat -c %a "$T/run/$SEG.$s")
  [ "$mode" = 660 ] || fail "$SEG.$s has mode $mode, want 660"
done

start_subscriber
marker=$(wc -l <"$T/events.q")

# --- good requests
s=$(req '{"cmd":"status"}')
[ "$(jq -r .segment <<<"$s")" = "$SEG" ] || fail "status: $s"
[ "$(jq -r .policy <<<"$s")" = backpressure ] || fail "status policy: $s"
[ "$(jq -r '.groups | map(.name) | sort | join(",")' <<<"$s")" = stats,writer ] || fail "groups: $s"
[ "$(req '{"cmd":"members"}' | jq -r '.members | type')" = array ] || fail "members"
[ "$(req '{"cmd":"pressure"}' | jq -r .level)" = none ] || fail "pressure"

r=$(req '{"cmd":"pause"}')
[ "$(jq -r .paused <<<"$r")" = true ] || fail "pause: $r"
[ "$(req '{"cmd":"status"}' | jq -r .paused)" = true ] || fail "status after pause"
grep -q '"ring":' <<<"$s" || fail "status has no ring"
r=$(req '{"cmd":"resume"}')
[ "$(jq -r .paused <<<"$r")" = false ] || fail "resume: $r"

r=$(req '{"cmd":"set_interval","device":"plc1","group":"fast","interval_ms":250}')
[ "$(jq -r .ok <<<"$r")" = true ] || fail "set_interval: $r"

# --- bad requests: each answered with an error naming what was wrong
expect_error() { # request fragment
  local r
  r=$(req "$1") || fail "no answer to $1"
  jq -e 'keys == ["error"]' <<<"$r" >/dev/null || fail "answer to $1 is not {\"error\":...}: $r"
  grep -qF -- "$2" <<<"$(jq -r .error <<<"$r")" || fail "answer to $1 lacks '$2': $r"
}
expect_error 'not json' 'malformed JSON'
expect_error '[1,2]' 'a request is a JSON object'
expect_error '{"command":"status"}' 'missing "cmd"'
expect_error '{"cmd":42}' '"cmd" must be a string'
expect_error '{"cmd":"explode"}' "unknown command 'explode'"
expect_error '{"cmd":"status","extra":1}' "unknown field 'extra'"
expect_error '{"cmd":"set_interval","device":"plc1","group":"fast","interval_ms":"fast"}' 'must be an integer'
expect_error '{"cmd":"set_interval","device":"plc1","group":"fast","interval_ms":-5}' 'must be an integer'
expect_error '{"cmd":"set_interval","device":["plc1"],"group":"fast","interval_ms":5}' 'must be strings'
expect_error '{"cmd":"set_interval","device":"plc2","group":"fast","interval_ms":5}' "unknown device 'plc2'"
expect_error '{"cmd":"set_interval","device":"plc1","group":"slow","interval_ms":5}' "no poll group 'slow'"
expect_error '{"cmd":"reset_counters","prefix":true}' 'must be a string'
head -c 70000 /dev/zero | tr '\0' ' ' >"$T/big.json"
printf '{"cmd":"status"}' >>"$T/big.json"
r=$(nngcat --req --dial "$CONTROL" --file "$T/big.json" --quoted --recv-timeout 5 | jq -r .)
grep -q 'exceeds the limit of 65536 bytes' <<<"$r" || fail "oversize request: $r"
# Far beyond the limit nng drops the connection instead of buffering it;
# the controller goes on serving.
head -c 2000000 /dev/zero | tr '\0' 'x' >"$T/huge"
nngcat --req --dial "$CONTROL" --file "$T/huge" --quoted --recv-timeout 2 >/dev/null 2>&1 || true
[ "$(req '{"cmd":"status"}' | jq -r .segment)" = "$SEG" ] || fail "not serving after bad requests"

# --- counters, then reset
m=$(get /metrics)
grep -q '^shmbus_controller_control_requests_total{result="error"} [1-9]' <<<"$m" ||
  fail "errors not counted"
r=$(req '{"cmd":"reset_counters","prefix":"controller_control_"}')
[ "$(jq .reset <<<"$r")" -eq 2 ] || fail "reset_counters: $r"
m=$(get /metrics)
grep -qx 'shmbus_controller_control_requests_total{result="error"} 0' <<<"$m" || fail "not reset"

# --- forwarded events
sleep 0.3
# (start_subscriber's probing reloads may land after the marker: the last
# one sent can still be in flight when the first is seen; they are not
# what this part checks)
published=$(tail -n +"$((marker + 1))" "$T/events.q" | jq -r . | grep -vx '{"cmd":"reload"}')
want='{"cmd":"pause"}
{"cmd":"resume"}
{"cmd":"set_interval","device":"plc1","group":"fast","interval_ms":250}'
[ "$published" = "$want" ] || fail "published: '$published', want '$want'"

# --- reload by SIGHUP with new thresholds; by request with a broken file
sed -i 's/^  required_roles: \[writer\]$/  required_roles: [writer]\n  pressure: {low: 0.5, moderate: 0.7, high: 0.9, critical: 0.97, hysteresis: 0.02}/' "$T/c.yaml"
marker=$(wc -l <"$T/events.q")
kill -HUP "$CTL"
low_is() { [ "$(get /api/pressure | jq .thresholds.low)" = 0.5 ]; }
check "SIGHUP applies new thresholds" wait_for 5 low_is
reloaded() { tail -n +"$((marker + 1))" "$T/events.q" | jq -r . | grep -qx '{"cmd":"reload"}'; }
check "reload forwarded" wait_for 5 reloaded
grep -q 'reloaded .*c.yaml (SIGHUP)' "$T/controller.log" || fail "SIGHUP reload not logged"

cp "$T/c.yaml" "$T/c.yaml.good"
sed -i 's/low: 0.5/low: 0.9/' "$T/c.yaml" # thresholds no longer rise
r=$(req '{"cmd":"reload"}')
grep -q 'reload failed, old configuration kept' <<<"$(jq -r .error <<<"$r")" || fail "bad reload: $r"
grep -q 'c.yaml:[0-9]*: controller.pressure' <<<"$(jq -r .error <<<"$r")" || fail "no file:line: $r"
[ "$(get /api/pressure | jq .thresholds.low)" = 0.5 ] || fail "old config not kept"
echo 'segment: [' >"$T/c.yaml"
kill -HUP "$CTL"
bad_logged() { grep -q 'reload (SIGHUP): reload failed' "$T/controller.log"; }
check "bad SIGHUP reload logged" wait_for 5 bad_logged
[ "$(req '{"cmd":"status"}' | jq -r .segment)" = "$SEG" ] || fail "not serving after bad reload"
cp "$T/c.yaml.good" "$T/c.yaml"

stop_controller
grep -q 'info: stopping' "$T/controller.log" || fail "no stop message"

# SIGTERM ends even a long check interval at once (the check loop sleeps in
# sigtimedwait, so a signal ends the sleep).
sed -i 's/^  required_roles: \[writer\]$/  required_roles: [writer]\n  check_interval_ms: 60000/' "$T/c.yaml"
start_controller
kill -TERM "$CTL"
gone() { ! kill -0 "$CTL" 2>/dev/null; }
check "SIGTERM during a 60 s check interval" wait_for 5 gone
wait "$CTL" || fail "exit status after SIGTERM"
echo PASS
