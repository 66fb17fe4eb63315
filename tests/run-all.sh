#!/usr/bin/env bash
# The README's test command: installs what is missing, builds shmbus three
# ways and runs every test through ctest.
#   build/       optimised, warnings as errors: every test
#   build-asan/  AddressSanitizer + UBSan: every test but benchmarks' smoke runs
#   build-tsan/  ThreadSanitizer: the tests labelled `concurrency`
# Set SHMBUS_TEST_QUICK=1 to skip the sanitizer builds while iterating.
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/install-deps.sh

jobs=$(nproc)
summary=()
total_pass=0
total_fail=0

run_suite() { # dir label-args...
  local dir=$1; shift
  local log="$dir/ctest.log" rc=0
  (cd "$dir" && ctest --output-on-failure --timeout 900 -j"$jobs" "$@") 2>&1 | tee "$log" || rc=$?
  local line
  line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -1 || true)
  local failed total
  failed=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
  total=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/' <<<"$line")
  if [ -z "$line" ]; then failed=1; total=1; rc=1; fi
  total_pass=$((total_pass + total - failed))
  total_fail=$((total_fail + failed))
  summary+=("$dir: $line")
  return $rc
}

build() { # dir cmake-args...
  local dir=$1; shift
  cmake -S . -B "$dir" -DSHMBUS_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
}

status=0
build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
run_suite build || status=1
if [ "${SHMBUS_TEST_QUICK:-0}" != 1 ]; then
  build build-asan -DCMAKE_BUILD_TYPE=Debug -DSHMBUS_SANITIZER=address
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite build-asan -LE 'bench|nosan' || status=1
  build build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHMBUS_SANITIZER=thread
  TSAN_OPTIONS="halt_on_error=1 suppressions=$PWD/tests/tsan.supp" \
    run_suite build-tsan -L concurrency || status=1
fi

echo
printf '%s\n' "${summary[@]}"
echo "all suites: $total_pass passed, $total_fail failed"
exit $status
