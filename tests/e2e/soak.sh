#!/usr/bin/env bash
# soak.sh — the whole group under supervisord for 10 minutes at full rate
# against shmbus-sim, resident memory of every process sampled; prints a
# summary and checks that nothing was lost. Not part of ctest (see
# tests/e2e/README.md). Options go to soak.py, e.g.
#   tests/e2e/soak.sh                      # 10 minutes, defaults
#   tests/e2e/soak.sh --minutes 1 --sample-s 5 --warmup-s 20
# Uses build/ (builds it when missing); everything it starts is stopped at
# the end, also on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x build/bin/shmbus-poller ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j"$(nproc)" >/dev/null
fi
export SHMBUS_BIN_DIR=$PWD/build/bin SHMBUS_SOURCE_DIR=$PWD SHMBUS_PYTHON3=/usr/bin/python3
exec /usr/bin/python3 tests/e2e/soak.py "$@"
