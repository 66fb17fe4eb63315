#!/usr/bin/env bash
# Installs, from Debian's packages, whatever shmbus needs to build, run and
# test that is not there yet. Needs root (or sudo). Safe to run again.
set -euo pipefail
PKGS=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libmodbus-dev liburing-dev libnng-dev nng-utils libcmocka-dev libyaml-dev
  flatbuffers-compiler python3 python3-flatbuffers python3-pymodbus mbpoll
  libjansson-dev supervisor curl prometheus jq procps socat
  libpq-dev postgresql mosquitto mosquitto-clients libmosquitto-dev openssl
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
