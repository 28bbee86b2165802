#!/usr/bin/env bash
# Installs the Debian packages Flowgate needs, or says exactly which are missing.
#
#   scripts/deps.sh run     what `flowgate run` needs (build + TTS)
#   scripts/deps.sh test    what the test suite needs (adds the PulseAudio
#                           real-time ALSA path and the ALSA plugins, the
#                           Python modem client the simulator is checked with,
#                           and chromium + Selenium for the admin page test)
#   scripts/deps.sh bench   what the benchmarks need (adds libclang for the
#                           spandsp comparison)
#
# As root it apt-installs what is missing; otherwise it prints the apt line
# and fails, so nobody runs a half-working build.
#
# `test` and `bench` also make a Python venv with python-gsmmodem-new (an
# independent modem client; pyserial comes with it), aiosmtpd (a real SMTP
# server for tests/e2e/email.rs), selenium (drives Debian's chromium for
# tests/e2e/admin_browser.py), schemathesis (an OpenAPI-driven API tester for
# tests/e2e/schemathesis.rs) and oelint-adv (the Yocto recipe linter for
# tests/e2e/layer.rs), pocketsphinx and websockets (the WebSocket media stream
# clients of tests/e2e/media_stream.rs) in ${CARGO_TARGET_DIR:-target}/pyvenv. That needs
# no root: pip installs into the venv only.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"

run_pkgs=(pkg-config libasound2-dev espeak-ng)
# systemd (systemd-analyze), udev (udevadm) and shellcheck check the Yocto layer's unit,
# udev rules and scripts (tests/e2e/layer.rs).
test_pkgs=("${run_pkgs[@]}" libasound2-plugins pulseaudio alsa-utils multimon-ng sox python3-venv sip-tester kamailio baresip openssl chromium chromium-driver systemd udev shellcheck)
bench_pkgs=("${test_pkgs[@]}" libclang-dev)

# The releases the tests were written against: the simulator's python-gsmmodem client, the
# SMTP server the email_send end-to-end tests deliver to (tests/smtp/server.py), the
# Selenium the admin page's browser test drives Debian's chromium with (through
# chromium-driver; Selenium's own driver download is never used), the API's schema test,
# the oelint-adv whose rules yocto-layer/oelint-rules.json pins, and pocketsphinx (with its
# bundled en-US model), the recogniser the transcribe_* tests wrap (tests/stt/server.py).
pypi_pkgs=(python-gsmmodem-new==0.13.0 aiosmtpd==1.4.6 selenium==4.45.0 schemathesis==4.32.5 oelint-adv==9.11.2 pocketsphinx==5.0.4 websockets==17.4)

case "${1:-test}" in
  run) want=("${run_pkgs[@]}"); python=no ;;
  test) want=("${test_pkgs[@]}"); python=yes ;;
  bench) want=("${bench_pkgs[@]}"); python=yes ;;
  *) echo "usage: $0 run|test|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
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
fi

if [ "$python" = yes ]; then
  target="${CARGO_TARGET_DIR:-$root/target}"
  case "$target" in /*) ;; *) target="$root/$target" ;; esac
  venv="$target/pyvenv"
  if ! "$venv/bin/python3" -c 'import gsmmodem, aiosmtpd, selenium, schemathesis, oelint_adv, pocketsphinx, websockets' 2>/dev/null; then
    echo "making $venv with ${pypi_pkgs[*]}" >&2
    mkdir -p "$target"
    [ -x "$venv/bin/python3" ] || python3 -m venv "$venv"
    "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check "${pypi_pkgs[@]}"
  fi
fi
