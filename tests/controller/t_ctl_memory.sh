#!/usr/bin/env bash
# t_ctl_memory.sh — members' memory as a pressure source and the leak watch,
# with a real member process (ctl_testpeer grow) whose private memory grows
# 6 MiB/s for 8 s: the controller reads it from /proc, warns that it grows
# faster than leak_growth_mb_per_min (logged, counted, flagged in
# /api/members), raises the pressure level from the member source against
# rss_limit_mb, and when the process is killed logs its death and lets the
# pressure fall back to none.
. "$(dirname "$0")/lib.sh"

write_config "  slot_count: 1024" "  rss_limit_mb: 64
  leak_window_s: 10
  leak_growth_mb_per_min: 30"
start_controller

"$BUILD/tests/ctl_testpeer" grow "$SEG" 6 8 >"$T/peer.out" 2>&1 &
peer=$!
PIDS+=("$peer")

peer_json() { get /api/members | jq -c '.members[] | select(.name == "testpeer-grow")'; }
suspect() { [ "$(peer_json | jq -r .leak_suspect)" = true ]; }
check "leak suspected" wait_for 20 suspect
p=$(peer_json)
jq -e '.growth_mb_per_min > 30 and .private_bytes > 0 and .rss_bytes >= .private_bytes' <<<"$p" \
  >/dev/null || fail "member figures: $p"
grep -q "leak watch: 'testpeer-grow' (pid $peer) private memory grows" "$T/controller.log" ||
  fail "leak warning not logged"
# (Counted once per growth spell: a peer slowed down by a busy machine may
# make two spells of one.)
grep -Eqx 'shmbus_controller_leak_warnings_total [1-9][0-9]*' <<<"$(get /metrics)" ||
  fail "leak not counted"
grep -Eq "^shmbus_member_private_growth_bytes_per_second\{member=\"testpeer-grow\",.*\} [0-9.e+]+$" \
  <<<"$(get /metrics)" || fail "growth metric missing"

# 48 MiB of 64: the member source drives the level.
member_pressure() {
  get /api/pressure | jq -e '.source == "member" and .level != "none" and
    (.sources.member.member | startswith("testpeer-grow (pid"))' >/dev/null
}
check "member pressure" wait_for 20 member_pressure
grep -q 'from member (testpeer-grow' "$T/controller.log" || fail "transition source not logged"

kill -KILL "$peer"
wait "$peer" 2>/dev/null || true
died() { grep -q "'testpeer-grow' (consumer of group stats, pid $peer) died" "$T/controller.log"; }
check "death noticed" wait_for 5 died
calm() { [ "$(get /api/pressure | jq -r .level)" = none ]; }
check "pressure back to none" wait_for 5 calm

stop_controller
echo PASS
