#!/usr/bin/env bash
# The size of the daemon as it goes on the board: builds the release binary (the
# workspace's release profile: opt-level, fat LTO, one codegen unit) with the board
# image's features (`--no-default-features`: no simulator, no MP3/FLAC/OGG), strips a copy
# and prints its size against the flash budget, then the crates that take the most
# room (cargo-bloat when installed: `cargo install cargo-bloat`; otherwise the
# symbol table grouped by crate with nm, the same attribution cargo-bloat makes).
#
#   scripts/binary-size.sh [--footprint] [cargo build args, e.g. --features simulator]
#
# --footprint also measures start-up and idle RSS of the stripped binary with
# 10,000 stored flows (firmware/benches/footprint.rs, run on that binary): on the
# simulated board when the build has the simulator, else on the rpi4-quectel-ec25
# profile (its modem absent here: the driver waits for the port, as on a board whose
# modem has not enumerated yet).
#
# Symbols are kept in the build (CARGO_PROFILE_RELEASE_STRIP=false) so the crate
# breakdown has names; the stripped copy is what the recipe installs (bitbake
# strips the same way).
set -euo pipefail
cd "$(dirname "$0")/.."

budget=$((8 * 1000 * 1000))
footprint=no
if [ "${1:-}" = "--footprint" ]; then
  footprint=yes
  shift
fi

export CARGO_PROFILE_RELEASE_STRIP=false CARGO_INCREMENTAL=0
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --locked -p flowgate --bin flowgate --no-default-features "$@"
binary="$target/release/flowgate"
stripped="$target/release/flowgate.stripped"
cp "$binary" "$stripped"
strip "$stripped"
size=$(stat -c %s "$stripped")
awk -v s="$size" -v b="$budget" 'BEGIN {
  printf "stripped: %d bytes (%.2f MB), budget %.1f MB: %s\n", s, s / 1e6, b / 1e6, (s <= b ? "within" : "OVER")
}'
size -A "$stripped" | awk '$2 > 100000 { printf "  %-20s %8.0f KiB\n", $1, $2 / 1024 }'

echo "top crates (.text):"
if cargo bloat --version >/dev/null 2>&1; then
  cargo bloat --release --locked -p flowgate --bin flowgate --no-default-features --crates -n 25 "$@" | sed 's/^/  /'
else
  # nm: size and demangled name of every function; the crate is the first path segment.
  nm -S --size-sort --radix=d -C "$binary" | awk '$3 ~ /^[tTwW]$/ {
      name = $4; for (i = 5; i <= NF; i++) name = name " " $i
      sub(/^[<&*]+/, "", name); sub(/^(dyn |impl |mut )/, "", name)
      crate = (match(name, /^[A-Za-z0-9_]+::/) ? substr(name, 1, RLENGTH - 2) : "[other]")
      bytes[crate] += $2; total += $2
    } END {
      for (c in bytes) printf "%10.0f KiB %5.1f%%  %s\n", bytes[c] / 1024, 100 * bytes[c] / total, c
    }' | sort -rn | head -25 | sed 's/^/  /'
fi

if [ "$footprint" = yes ]; then
  board=rpi4-quectel-ec25
  case " $* " in *simulator*) board=simulated ;; esac
  FOOTPRINT_BINARY="$(realpath "$stripped")" FOOTPRINT_BOARD="$board" \
    cargo test --locked -p flowgate --bench footprint
fi
