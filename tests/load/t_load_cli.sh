#!/usr/bin/env bash
# t_load_cli.sh — shmbus-load refuses bad options with exit 2 and a message
# naming what was wrong, and a run drains exactly what it put.
set -euo pipefail
BIN=${SHMBUS_BIN_DIR:?}
PY=${SHMBUS_PYTHON3:-/usr/bin/python3}
NAME=tload-$$
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"; rm -f /dev/shm/shmbus.$NAME' EXIT

refused() { # expected-text args...
  local want=$1; shift
  local rc=0
  "$BIN/shmbus-load" "$@" 2>"$OUT/err" >/dev/null || rc=$?
  if [ "$rc" != 2 ] || ! grep -qF -- "$want" "$OUT/err"; then
    echo "FAIL: shmbus-load $* -> rc $rc, stderr: $(cat "$OUT/err")"; exit 1
  fi
}
refused "--policy 'sideways'" --name "$NAME" --policy sideways
refused "unknown option '--frobnicate'" --name "$NAME" --frobnicate 1
refused "must be positive" --name "$NAME" --seconds 0
groups=()
for g in 1 2 3 4 5 6 7 8 9; do groups+=(--group "g$g"); done
refused "at most 8 --group" --name "$NAME" "${groups[@]}"
[ ! -e "/dev/shm/shmbus.$NAME" ] || { echo "FAIL: a refused run created the segment"; exit 1; }

# 17 groups cannot exist: the segment has 16. The 17th is refused by name.
for i in $(seq 1 8); do "$BIN/shmbus-load" --name "$NAME" --seconds 0.05 --rate 10 \
  --group "a$i" --group "b$i" >/dev/null; done
refused "group 'c1'" --name "$NAME" --seconds 0.05 --group c1
rm -f "/dev/shm/shmbus.$NAME"

# A drained run: every record put is consumed by the drain group.
"$BIN/shmbus-load" --name "$NAME" --seconds 0.5 --rate 20000 --tags 50 --drain w >"$OUT/run.json"
"$BIN/shmstat" --name "$NAME" --json >"$OUT/stat.json"
"$PY" - "$OUT/run.json" "$OUT/stat.json" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
stat = json.load(open(sys.argv[2]))
assert run["put"] > 0, run
assert run["drained"] == run["put"], run
groups = {g["name"]: g for g in stat["groups"]}
assert groups["w"]["consumed"] == run["put"], (groups["w"], run)
assert groups["w"]["lost"] == 0, groups["w"]
print("load_cli: put", run["put"], "drained", run["drained"])
PY
