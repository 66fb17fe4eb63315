#!/usr/bin/env bash
# The README's first command. On a fresh Debian machine:
#   ./deploy/demo.sh         installs what is missing, builds, starts shmbus-sim
#                            and the whole group (controller, writer, stats,
#                            poller) under supervisord with
#                            deploy/examples/sim.yaml, and shows shmstat with
#                            records flowing. The group keeps running so the
#                            README's next commands have something to look at.
#   ./deploy/demo.sh stop    stops everything it started (supervisord and every
#                            process of the group, then the segment); data and
#                            logs stay in /tmp/shmbus-demo until removed.
#   ./deploy/demo.sh status  supervisorctl status and a one-shot shmstat.
# If start-up fails (or is interrupted) everything started is stopped again.
#
# Everything lives in /tmp/shmbus-demo (the paths of sim.yaml): supervisord's
# configuration (generated from deploy/supervisor/, editable), socket, pid
# file and logs; the nng sockets (run/) and chunk files (data/). The
# segment is /dev/shm/shmbus.demo; the simulator listens on 127.0.0.1:1502,
# the controller's HTTP on 127.0.0.1:9108.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/build/bin
CONFIG=$ROOT/deploy/examples/sim.yaml
DEMO=/tmp/shmbus-demo
SUP=$DEMO/supervisor
SEGMENT=demo
CTL=(supervisorctl -c "$SUP/supervisord.conf")

supervisord_pid() { # prints the pid of the demo's supervisord if it runs
  local pid
  pid=$(cat "$SUP/supervisord.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  grep -qa supervisord "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

# Processes of this checkout's build running this demo's configuration: left
# over only if supervisord itself was killed. Matched by executable path and
# config path, never by a bare name.
stray_pids() {
  local exe dir
  find /proc -mindepth 2 -maxdepth 2 -name exe -lname "$BIN/*" 2>/dev/null |
    while read -r exe; do
      dir=${exe%/exe}
      grep -qaF -- "$CONFIG" "$dir/cmdline" 2>/dev/null && echo "${dir#/proc/}"
    done
  return 0
}

stop_all() {
  local pid
  if pid=$(supervisord_pid); then
    echo "stopping the group, the simulator and supervisord (pid $pid)"
    "${CTL[@]}" shutdown >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
    # supervisord gives each process its stopwaitsecs (at most 15 s) in turn.
    for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "supervisord did not stop within 60 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  for pid in $(stray_pids); do
    echo "stopping a left-over process: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
    kill -TERM "$pid" 2>/dev/null || true
  done
  for _ in $(seq 100); do [ -z "$(stray_pids)" ] && break; sleep 0.1; done
  for pid in $(stray_pids); do kill -KILL "$pid" 2>/dev/null || true; done
  rm -f "/dev/shm/shmbus.$SEGMENT"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

show_logs() {
  local f
  for f in "$DEMO"/log/*.log; do
    [ -e "$f" ] || continue
    echo "--- $f (last lines)" >&2
    tail -n 5 "$f" >&2
  done
}

# supervisord's configuration for this checkout: deploy/supervisor/*.conf with
# the environment references replaced by this machine's paths, so that
# supervisorctl needs nothing but -c and shmbus.conf can be edited in place
# (numprocs of the writer) followed by `supervisorctl update`.
write_supervisor_config() {
  mkdir -p "$SUP" "$DEMO/log" "$DEMO/run" "$DEMO/data"
  local f
  for f in supervisord.conf shmbus.conf sim.conf; do
    sed -e "s|%(ENV_SHMBUS_STATE_DIR)s|$SUP|g" \
        -e "s|%(ENV_SHMBUS_SUPERVISOR_INCLUDE)s|$SUP/sim.conf $SUP/shmbus.conf|g" \
        -e "s|%(ENV_SHMBUS_BIN)s|$BIN|g" \
        -e "s|%(ENV_SHMBUS_CONFIG)s|$CONFIG|g" \
        -e "s|%(ENV_SHMBUS_LOG_DIR)s|$DEMO/log|g" \
        "deploy/supervisor/$f" >"$SUP/$f"
  done
}

wait_running() { # every program RUNNING (supervisord's startsecs passed)
  local out
  for _ in $(seq 150); do
    out=$("${CTL[@]}" status 2>/dev/null || true)
    if [ "$(grep -c ' RUNNING ' <<<"$out")" -ge 5 ] && ! grep -qvE ' RUNNING ' <<<"$out"; then
      return 0
    fi
    sleep 0.2
  done
  echo "$out" >&2
  return 1
}

wait_flowing() { # records put, and some made durable by the writer
  local js
  for _ in $(seq 100); do
    js=$("$BIN/shmstat" --name "$SEGMENT" --json 2>/dev/null || true)
    if [ -n "$js" ] && jq -e '.ring.records_put > 0 and
         ([.counters[] | select(.name | startswith("writer_points_total")) | .value] | add // 0) > 0' \
         >/dev/null <<<"$js"; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

start() {
  ./deploy/install-deps.sh
  echo "== building (build/, RelWithDebInfo)"
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j"$(nproc)" >/dev/null

  if supervisord_pid >/dev/null; then
    echo "== the demo group is already running"
    status
    return 0
  fi
  local port
  for port in 1502 9108; do
    if port_busy "$port"; then
      echo "demo: 127.0.0.1:$port is already in use by another program; the demo needs it" >&2
      exit 1
    fi
  done
  stop_all >/dev/null # a stray from a demo whose supervisord was killed
  trap 'echo "demo: start-up failed; stopping what was started" >&2; show_logs; stop_all; exit 1' ERR
  trap 'trap - ERR; echo "demo: interrupted; stopping what was started" >&2; stop_all; exit 130' INT TERM

  echo "== starting shmbus-sim and the group [group:shmbus] under supervisord"
  write_supervisor_config
  supervisord -c "$SUP/supervisord.conf"
  wait_running
  "${CTL[@]}" status
  wait_flowing
  sleep 1 # a second of traffic makes the rates worth reading

  echo
  echo "== shmstat --name $SEGMENT"
  # The named counters (some 55 of them) are left to the reader's own shmstat.
  "$BIN/shmstat" --name "$SEGMENT" | awk '/^counters \(/ { print $0 ": build/bin/shmstat --name '"$SEGMENT"' lists them"; exit } { print }'
  echo
  echo "== shmstat --name $SEGMENT -w 1 -n 3   (ring and groups; rates over each second)"
  "$BIN/shmstat" --name "$SEGMENT" -w 1 -n 3 |
    grep -E '^  rates over|records put|^  NAME +MEMB|^  (writer|stats) ' || true
  echo
  echo "== shmstat --name $SEGMENT --tail 5   (newest records, decoded)"
  "$BIN/shmstat" --name "$SEGMENT" --tail 5
  trap - ERR INT TERM

  cat <<EOF

The group keeps running (segment /dev/shm/shmbus.$SEGMENT, files in $DEMO).
  watch it:     build/bin/shmstat --name $SEGMENT -w 1
  supervisor:   supervisorctl -c $SUP/supervisord.conf status
  stored data:  build/bin/shmbus-query --data $DEMO/data --list
  HTTP:         curl -s http://127.0.0.1:9108/api/buffer/status
  stop it all:  ./deploy/demo.sh stop
EOF
}

status() {
  "${CTL[@]}" status || true
  "$BIN/shmstat" --name "$SEGMENT" || true
}

case "${1:-start}" in
  start) start ;;
  stop) stop_all; echo "stopped; data and logs are kept in $DEMO (rm -rf $DEMO to start afresh)" ;;
  status) if supervisord_pid >/dev/null; then status; else echo "the demo is not running"; fi ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
