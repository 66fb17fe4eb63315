#!/usr/bin/env bash
# The README's first command: installs what is missing, builds shmbus, and
# shows it working on this machine with nothing attached:
#   1. the ring benchmark in quick mode (JSON lines, with baselines);
#   2. a live segment with traffic (shmbus-load) inspected by shmstat.
# Everything it starts is stopped when it ends, also on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
BIN=build/bin
NAME=demo-$$
LOAD_PID=""
cleanup() {
  [ -n "$LOAD_PID" ] && kill "$LOAD_PID" 2>/dev/null && wait "$LOAD_PID" 2>/dev/null || true
  rm -f "/dev/shm/shmbus.$NAME"
}
trap cleanup EXIT INT TERM

echo "== shmbus-bench ring --quick"
"$BIN/shmbus-bench" ring --quick

echo
echo "== a live segment: 20,000 tag values/s for 8 s, groups 'writer' and 'stats'"
"$BIN/shmbus-load" --name "$NAME" --seconds 8 --rate 20000 --tags 200 \
  --group writer --drain writer --drain stats >/dev/null &
LOAD_PID=$!
for _ in $(seq 50); do [ -e "/dev/shm/shmbus.$NAME" ] && break; sleep 0.1; done
sleep 1
"$BIN/shmstat" --name "$NAME"
echo
echo "== shmstat -w 1 -n 3 (rates)"
"$BIN/shmstat" --name "$NAME" -w 1 -n 3
echo
echo "== shmstat --tail 5 (newest records, decoded)"
"$BIN/shmstat" --name "$NAME" --tail 5
wait "$LOAD_PID" || true
LOAD_PID=""
