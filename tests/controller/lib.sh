# lib.sh — sourced by the controller's script tests: a temporary directory
# with the run dir, a unique segment, a free loopback port, a config, the
# controller and an nngcat subscriber, and cleanup of everything at exit
# (also on failure). Needs SHMBUS_BIN_DIR and SHMBUS_BUILD_DIR (set by ctest).
set -euo pipefail

BIN=${SHMBUS_BIN_DIR:?run through ctest (SHMBUS_BIN_DIR)}
BUILD=${SHMBUS_BUILD_DIR:?run through ctest (SHMBUS_BUILD_DIR)}
PY=${SHMBUS_PYTHON3:-/usr/bin/python3}
NAME=$(basename "$0" .sh)
T=$(mktemp -d "${TMPDIR:-/tmp}/shmbus-$NAME.XXXXXX")
SEG="t$$-${NAME#t_}"
PIDS=()
CTL=0

cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    kill -CONT "$p" 2>/dev/null || true
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -f "/dev/shm/shmbus.$SEG"
  if [ -z "${SHMTEST_KEEP:-}" ]; then rm -rf "$T"; fi
}
trap cleanup EXIT

need() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || { echo "SKIP: $c is not installed"; exit 77; }
  done
}
need nngcat curl jq

fail() {
  echo "FAIL: $*" >&2
  if [ -f "$T/controller.log" ]; then
    echo "--- controller log (last 40 lines)" >&2
    tail -40 "$T/controller.log" >&2
  fi
  exit 1
}

check() { # description command...: runs command, fails the test when it fails
  local what=$1
  shift
  "$@" || fail "$what"
}

now_ms() { date +%s%3N; }

# wait_for SECONDS command...: polls every 50 ms until command succeeds.
wait_for() {
  local deadline=$(($(now_ms) + $1 * 1000))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$(now_ms)" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
CONTROL="ipc://$T/run/$SEG.control"
EVENTS="ipc://$T/run/$SEG.events"

# write_config SEGMENT_YAML CONTROLLER_YAML [MORE_YAML]: the group's config file.
write_config() {
  cat >"$T/c.yaml" <<EOF
segment:
  name: $SEG
$1
paths:
  run_dir: $T/run
  data_dir: $T/data
controller:
  http: 127.0.0.1:$PORT
$2
${3:-}
EOF
}

start_controller() {
  "$BIN/shmbus-controller" --config "$T/c.yaml" >>"$T/controller.log" 2>&1 &
  CTL=$!
  PIDS+=("$CTL")
  wait_for 10 grep -q "controller\[$CTL\] info: running:" "$T/controller.log" ||
    fail "controller did not start"
}

stop_controller() { # expects a clean exit
  kill -TERM "$CTL"
  local rc=0
  wait "$CTL" || rc=$?
  [ "$rc" -eq 0 ] || fail "controller exited with $rc on SIGTERM"
}

# req JSON: one request over nng REQ with nngcat, prints the JSON answer.
req() {
  nngcat --req --dial "$CONTROL" --data "$1" --quoted --recv-timeout 5 | jq -r .
}

# get PATH [curl args...]: body of GET $URL/PATH.
get() {
  local path=$1
  shift
  curl -sS --max-time 5 "$@" "$URL$path"
}

# code METHOD PATH [curl args...]: the HTTP status only.
code() {
  local method=$1 path=$2
  shift 2
  curl -sS --max-time 5 -o /dev/null -w '%{http_code}' -X "$method" "$@" "$URL$path"
}

# Subscribes to the controller's events with nngcat; each message lands in
# $T/events.q as one quoted line. events prints them as plain JSON.
start_subscriber() {
  nngcat --sub --dial "$EVENTS" --subscribe "" --quoted >"$T/events.q" 2>"$T/nngcat-sub.log" &
  PIDS+=("$!")
  # PUB drops what is sent before a subscriber is connected: publish reloads
  # until one arrives, then the subscriber is known to be in place.
  local i
  for i in $(seq 1 100); do
    req '{"cmd":"reload"}' >/dev/null
    if grep -q 'reload' "$T/events.q" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  fail "subscriber never received an event"
}

events() { jq -r . <"$T/events.q"; }

# spawn VAR NAME command...: runs command in the background, stdout in
# $T/NAME.out and stderr in $T/NAME.err, killed at exit; its pid goes to VAR.
spawn() {
  local var=$1 name=$2
  shift 2
  "$@" >"$T/$name.out" 2>"$T/$name.err" &
  PIDS+=("$!")
  printf -v "$var" '%s' "$!"
}

level_is() { [ "$(get /api/pressure | jq -r .level)" = "$1" ]; }
groups_served() { # both consumer groups (writer, stats) have a live member
  [ "$(req '{"cmd":"status"}' | jq '[.groups[] | select(.members > 0)] | length')" = 2 ]
}
