#!/usr/bin/env bash
# Long fuzzing runs of every target in fuzz/, with a summary table at the end: the figures
# issue 9 asks for ("each fuzz target runs for at least an hour without a finding").
#
#   scripts/fuzz-soak.sh [seconds per target, default 3600] [target ...]
#
# Environment:
#   JOBS=n         targets fuzzed at the same time (default: number of cores)
#   IDLE=1         run the fuzzers under SCHED_IDLE, so that they only take CPU nobody else
#                  wants (a soak on a machine that is also building); the CPU column then
#                  says how much each target really got
#   FUZZ_WORK=dir  corpora, findings and logs (default target/fuzz-soak); the corpora are
#                  kept, so a second run continues where the first stopped
#   CPU=1          the seconds are CPU seconds each target must get, not wall time: a target
#                  is stopped (SIGINT, after which libFuzzer prints its final stats) once its
#                  user+sys time reaches them. With IDLE=1 this is "an hour of fuzzing" that
#                  the machine's other work cannot shorten, only delay.
#
# Needs the nightly toolchain, cargo-fuzz and the Debian packages the build needs; on a fresh
# machine it installs all three (the packages with scripts/deps.sh, as `make run` does).
# Builds once with sanitizers (ASan, libFuzzer's coverage) into target/fuzz-soak/build, then
# runs the binaries directly, so a source change during a soak does not rebuild under the
# running fuzzers.
# A finding is any crash-, leak-, timeout- or oom- file libFuzzer writes; the script exits
# non-zero when there is one and prints how to reproduce it.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-3600}"
shift || true
jobs="${JOBS:-$(nproc)}"
work="${FUZZ_WORK:-target/fuzz-soak}"
build="$work/build"
# Each run has its own log directory: a later soak of the same target must not overwrite the
# figures an earlier table was printed from.
logs="$work/logs/$(date -u +%Y%m%dT%H%M%S)-$$"
mkdir -p "$work/corpus" "$work/findings" "$logs"

scripts/deps.sh run
# Checked apart: `cargo +nightly fuzz` fails alike when either is missing.
rustup run nightly rustc --version >/dev/null 2>&1 || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir fuzz)
fi

cargo +nightly fuzz build --fuzz-dir fuzz --target-dir "$build"
bin_dir="$build/x86_64-unknown-linux-gnu/release"

prefix=()
# libFuzzer's per-input timeout is wall-clock time: a starved fuzzer reports inputs that take
# a millisecond as timeouts. Under SCHED_IDLE starvation is the point, so the limit is wide
# there, and every timeout finding is re-run at normal priority below before it counts.
timeout=10
if [ "${IDLE:-0}" = 1 ]; then
  prefix=(chrt --idle 0)
  timeout=300
fi

ticks_per_second="$(getconf CLK_TCK)"

# The CPU seconds (user+sys) process $1 has used so far; fields 14 and 15 of its stat line,
# counted after the ")" that closes its name.
cpu_of() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  awk -v hz="$ticks_per_second" '{ printf "%d", ($12 + $13) / hz }' <<<"$stat"
}

run_one() {
  local target="$1" wall="$seconds"
  mkdir -p "$work/corpus/$target" "$work/findings/$target"
  # With a CPU budget the wall-clock limit is only a backstop for a fuzzer that never gets
  # its share.
  if [ "${CPU:-0}" = 1 ]; then wall=$((seconds * 50)); fi
  # GNU time adds the CPU the target really got (user+sys seconds) to its log.
  "${prefix[@]}" /usr/bin/time -f "cpu_seconds %U %S" \
    "$bin_dir/$target" "$work/corpus/$target" \
    -max_total_time="$wall" -print_final_stats=1 -timeout="$timeout" -rss_limit_mb=2048 \
    -artifact_prefix="$work/findings/$target/" \
    >"$logs/$target.log" 2>&1 &
  local timer=$!
  if [ "${CPU:-0}" = 1 ]; then
    # GNU time ignores SIGINT while it waits, so the signal goes to the fuzzer, its child.
    local fuzzer="" used
    while kill -0 "$timer" 2>/dev/null; do
      [ -n "$fuzzer" ] || fuzzer="$(pgrep -P "$timer" || true)"
      if [ -n "$fuzzer" ] && used="$(cpu_of "$fuzzer")" && [ "$used" -ge "$seconds" ]; then
        kill -INT "$fuzzer" 2>/dev/null || true
        break
      fi
      sleep 5
    done
  fi
  wait "$timer" || true
}

unit="s"
if [ "${CPU:-0}" = 1 ]; then unit="CPU s"; fi
echo "fuzzing ${#targets[@]} targets for ${seconds} ${unit} each, ${jobs} at a time (logs: $logs)"
running=0
for target in "${targets[@]}"; do
  run_one "$target" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

# A timeout or slow unit (libFuzzer writes one for an input that took over 10 s) that the
# input does not reproduce alone, at normal priority, was the machine (a fuzzer without CPU
# for that long: starved, or stopped with SIGSTOP to give a benchmark a quiet machine), not
# the code: set aside, not counted.
mkdir -p "$work/starved"
for finding in "$work"/findings/*/timeout-* "$work"/findings/*/slow-unit-*; do
  [ -e "$finding" ] || continue
  target="$(basename "$(dirname "$finding")")"
  if timeout 10 "$bin_dir/$target" "$finding" >/dev/null 2>&1; then
    kind="$(basename "$finding")"
    echo "${kind%-*} not reproduced alone (starved): $finding" >&2
    mv "$finding" "$work/starved/"
  fi
done

final_stat() { grep -m1 "^stat::$2:" "$logs/$1.log" | awk '{print $2}'; }

findings=0
printf '%-26s %14s %9s %8s %8s %8s %s\n' target executions execs/s cpu_s cov corpus findings
for target in "${targets[@]}"; do
  log="$logs/$target.log"
  execs="$(final_stat "$target" number_of_executed_units)"
  rate="$(final_stat "$target" average_exec_per_sec)"
  cpu="$(awk '/^cpu_seconds/ {printf "%.0f", $2 + $3}' "$log")"
  # The last status line libFuzzer printed: "#N DONE cov: C ft: F corp: K/..."
  cov="$(grep -E '^#[0-9]+' "$log" | tail -1 | sed -n 's/.* cov: \([0-9]*\).*/\1/p')"
  corpus="$(find "$work/corpus/$target" -type f | wc -l)"
  found="$(find "$work/findings/$target" -type f | wc -l)"
  findings=$((findings + found))
  printf '%-26s %14s %9s %8s %8s %8s %s\n' "$target" "${execs:-?}" "${rate:-?}" "${cpu:-?}" \
    "${cov:-?}" "$corpus" "$found"
done

if [ "$findings" -gt 0 ]; then
  echo "findings in $work/findings; reproduce with: $bin_dir/<target> <finding file>" >&2
  exit 1
fi
