#!/usr/bin/env bash
# Installs the Debian packages Flowgate needs, or says exactly which are missing.
#
#   scripts/deps.sh run     what `flowgate run` needs (build + TTS)
#   scripts/deps.sh test    what the test suite needs (adds the PulseAudio
#                           real-time ALSA path and the ALSA plugins)
#   scripts/deps.sh bench   what the benchmarks need (adds libclang for the
#                           spandsp comparison)
#
# As root it apt-installs what is missing; otherwise it prints the apt line
# and fails, so nobody runs a half-working build.
set -euo pipefail

run_pkgs=(pkg-config libasound2-dev espeak-ng)
test_pkgs=("${run_pkgs[@]}" libasound2-plugins pulseaudio alsa-utils multimon-ng sox)
bench_pkgs=("${test_pkgs[@]}" libclang-dev)

case "${1:-test}" in
  run) want=("${run_pkgs[@]}") ;;
  test) want=("${test_pkgs[@]}") ;;
  bench) want=("${bench_pkgs[@]}") ;;
  *) echo "usage: $0 run|test|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "missing Debian packages; install them with:" >&2
  echo "  sudo apt-get install --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
