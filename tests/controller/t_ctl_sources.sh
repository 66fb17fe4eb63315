#!/usr/bin/env bash
# t_ctl_sources.sh — the pressure sources other than ring utilization and
# member memory (t_ctl_pressure, t_ctl_poller, t_ctl_memory):
#  - per-device quota: shmbus-load spreads 100 tags over 4 devices (25 %
#    each); with device_quota 0.2 a device's share of the ring reaches its
#    quota before the ring itself is full, so the level climbs to critical
#    driven by the device source while the ring alone would be lower;
#  - the system's memory pressure, read from a PSI file: the controller reads
#    $SHMBUS_MEMORY_PRESSURE_FILE (default /proc/pressure/memory; a cgroup's
#    memory.pressure has the same format), here a file the test writes, so
#    the level follows "some avg10" up and down; a file that does not parse
#    or disappears is reported once and turns the source off.
. "$(dirname "$0")/lib.sh"

PSI="$T/memory.pressure"
psi() { # AVG10: replaces the PSI file atomically
  printf 'some avg10=%s avg60=0.00 avg300=0.00 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n' \
    "$1" >"$PSI.tmp"
  mv "$PSI.tmp" "$PSI"
}
psi 0.00
export SHMBUS_MEMORY_PRESSURE_FILE=$PSI
write_config "  slot_count: 4096
  policy: backpressure" "  device_quota: 0.2"
start_controller
unset SHMBUS_MEMORY_PRESSURE_FILE

pressure() { get /api/pressure; }

p=$(pressure)
jq -e '.sources.system == 0 and .level == "none"' <<<"$p" >/dev/null || fail "system source at 0: $p"

# --- per-device quota
spawn consumer consumer "$BUILD/tests/ctl_testpeer" drain "$SEG" 100000 writer stats
check "consumer joined both groups" wait_for 10 groups_served
spawn producer producer "$BIN/shmbus-load" --name "$SEG" --rate 2000 --tags 100 --seconds 60
four_devices() { pressure | jq -e '.devices | length == 4' >/dev/null; }
check "four devices sampled" wait_for 10 four_devices
kill -STOP "$consumer"
check "the device source drives the level to critical" wait_for 20 level_is critical
p=$(pressure)
jq -e '.source == "device" and (.detail | test("^[0-3]$")) and .sources.device.value >= 0.98 and
       .sources.ring.value < .sources.device.value and .sources.ring.value < 0.95 and .paused_by_pressure' \
  <<<"$p" >/dev/null || fail "critical from the device source, the ring alone below high: $p"
jq -e 'all(.devices[]; .traffic > 0.2 and .traffic < 0.3 and (.value - .share / 0.2 | fabs) < 0.001)' \
  <<<"$p" >/dev/null || fail "device shares: $p"
grep -Eq 'pressure high -> critical: [0-9.]+ from device \(device [0-3]\)' "$T/controller.log" ||
  fail "transition from the device source not logged"
kill -TERM "$producer"
wait "$producer" || fail "producer failed"
kill -CONT "$consumer"
check "device pressure recovers" wait_for 20 level_is none

# --- the system's memory pressure (PSI)
psi 85.00 # 0.85: moderate (>= 0.8, < 0.95)
check "PSI 85 % gives moderate" wait_for 5 level_is moderate
p=$(pressure)
jq -e --arg f "$PSI" '.source == "system" and .detail == $f and .sources.system == 0.85' <<<"$p" >/dev/null ||
  fail "system source: $p"
grep -qF "pressure low -> moderate: 0.850 from system ($PSI)" "$T/controller.log" || fail "system transition not logged"
grep -qx 'shmbus_system_memory_pressure_ratio 0.85' <<<"$(get /metrics)" || fail "/metrics system ratio"
psi 99.00
check "PSI 99 % gives critical" wait_for 5 level_is critical
[ "$(pressure | jq -r .paused_by_pressure)" = true ] || fail "critical system pressure does not pause"
psi 0.00
check "PSI back to 0 gives none" wait_for 5 level_is none
# (recovery one level per check, in reverse order)
sed -n '/pressure high -> critical: 0.990 from system/,$p' "$T/controller.log" |
  grep -o 'pressure [a-z]* -> [a-z]*' | head -5 | tr '\n' ',' >"$T/recovery"
[ "$(cat "$T/recovery")" = 'pressure high -> critical,pressure critical -> high,pressure high -> moderate,pressure moderate -> low,pressure low -> none,' ] ||
  fail "recovery from system pressure: $(cat "$T/recovery")"

# Bad input: a file that does not parse, then none at all; reported once each.
printf 'some avg10=lots\n' >"$PSI"
check "unparsable PSI file reported" wait_for 5 grep -qF "system memory pressure: $PSI does not hold a PSI 'some avg10=' line" "$T/controller.log"
[ "$(pressure | jq -c .sources.system)" = null ] || fail "the system source should be off"
rm "$PSI"
check "missing PSI file reported" wait_for 5 grep -qF "system memory pressure: $PSI does not exist" "$T/controller.log"
psi 0.00
check "PSI file back" wait_for 5 grep -qF "system memory pressure: $PSI is readable again" "$T/controller.log"
[ "$(grep -c 'system memory pressure: ' "$T/controller.log")" = 3 ] || fail "PSI problems logged more than once each"
[ "$(pressure | jq -c .sources.system)" = 0 ] || fail "the system source should be back"

kill -TERM "$consumer"
wait "$consumer" || fail "consumer failed"
stop_controller
echo PASS
