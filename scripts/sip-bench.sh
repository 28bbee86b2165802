#!/usr/bin/env bash
# Call setup rate of the running daemon over SIP (issue 10's benchmark): the release
# `flowgate` on the simulated board, a flow that answers, plays a prompt (`talk`, from
# the TTS cache after the first call) and hangs up, bound to number 1000; SIPp (Debian
# sip-tester) calls it with scripts/sipp/uac_prompt.xml, each call successful when the
# gateway's BYE comes after the prompt. SIPp runs on the same machine as the daemon.
#
#   scripts/sip-bench.sh                      5000 calls, offered at 1000/s, <= 1000 at once
#   CALLS=20000 RATE=600 LIMIT=1500 scripts/sip-bench.sh
#   EXTRA_ACTIONS=200 scripts/sip-bench.sh     the same flow carrying 200 more actions
#
# EXTRA_ACTIONS (default 0) appends that many `talk` actions after the `hangup`: never
# reached, but part of the flow every activeflow stores, like the branches of a real IVR
# menu (200 make the flow ~24 KB of JSON). It shows what the flow's size costs per call.
#
# Prints the calls, the wall time from the first INVITE to the last call's end, the rate,
# SIPp's successful/failed counts, the daemon's CPU time per call (user+sys from
# /proc/<pid>/stat over the measured run: the figure that stays comparable when other
# work shares the machine) and the load average; exits non-zero when a call failed. The figure is a
# rate over the whole run, prompt time included, so it is slightly below the setup rate.
# 127.0.0.1 is a trusted trunk in the default config, so the per-source rate limit does
# not apply; the RTP range is widened to 20000-29999 (5000 calls at once).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
calls="${CALLS:-5000}"
rate="${RATE:-1000}"
limit="${LIMIT:-1000}"
prompt="${PROMPT:-Welcome.}"
extra_actions="${EXTRA_ACTIONS:-0}"
target="${CARGO_TARGET_DIR:-$root/target}"
bin="${FLOWGATE_BIN:-$target/release/flowgate}"

command -v sipp >/dev/null || { echo "sipp is missing: scripts/deps.sh test installs it" >&2; exit 2; }
command -v curl >/dev/null || { echo "curl is missing" >&2; exit 2; }
if [ -z "${FLOWGATE_BIN:-}" ]; then
  (cd "$root" && cargo build --release --locked -p flowgate --bin flowgate)
fi

dir="$(mktemp -d)"
daemon=""
cleanup() {
  if [ -n "$daemon" ]; then
    kill -TERM "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

cat >"$dir/config.toml" <<EOF
[api]
listen = "127.0.0.1:0"
[data]
dir = "$dir/data"
[board]
profile = "simulated"
[log]
filter = "warn"
[sip]
listen = "127.0.0.1:0"
transports = ["udp"]
[sip.rtp]
port_min = 20000
port_max = 29999
EOF

"$bin" run --config "$dir/config.toml" >"$dir/stdout" 2>"$dir/stderr" &
daemon=$!
# The daemon prints its API and SIP addresses once it listens.
for _ in $(seq 1 300); do
  grep -q '^SIP on ' "$dir/stdout" 2>/dev/null && break
  kill -0 "$daemon" 2>/dev/null || { cat "$dir/stderr" >&2; exit 1; }
  sleep 0.1
done
api="$(sed -n 's|^Flowgate API on \(http://[^/]*\)/v1.0.*|\1|p' "$dir/stdout")"
sip="$(sed -n 's|^SIP on udp/tcp \([0-9.:]*\).*|\1|p' "$dir/stdout")"
if [ -z "$api" ] || [ -z "$sip" ]; then
  echo "the daemon did not start:" >&2
  cat "$dir/stdout" "$dir/stderr" >&2
  exit 1
fi
token="$(cat "$dir/data/api-token")"
call_api() {
  curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' "$@"
}
extra="$(python3 -c 'import json, sys
n = int(sys.argv[1])
print("".join(",%s" % json.dumps({"type": "talk", "option": {"text": "Menu option %d: press %d to hear about our offer number %d." % (i, i % 10, i), "language": "en-US"}}) for i in range(n)))' "$extra_actions")"
flow="$(call_api -X POST "$api/v1.0/flows" -d "{\"name\":\"prompt\",\"detail\":\"\",\"actions\":[
  {\"type\":\"answer\"},
  {\"type\":\"talk\",\"option\":{\"text\":\"$prompt\",\"language\":\"en-US\"}},
  {\"type\":\"hangup\"}$extra]}" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
[ -n "$flow" ] || { echo "could not create the flow" >&2; exit 1; }
call_api -X POST "$api/v1.0/numbers" \
  -d "{\"number\":\"1000\",\"call_flow_id\":\"$flow\",\"message_flow_id\":\"00000000-0000-0000-0000-000000000000\"}" >/dev/null

cd "$dir"
run_sipp() {
  sipp -sf "$root/scripts/sipp/uac_prompt.xml" -s 1000 "$sip" -i 127.0.0.1 -mp 16000 \
    -nostdin -timeout 300s -trace_screen "$@" >/dev/null 2>"$dir/sipp.err"
}
# One call first: the prompt's TTS goes into the cache, as on a gateway in service.
run_sipp -m 1 || { echo "the warm-up call failed:" >&2; cat "$dir"/*_screen.log "$dir/sipp.err" >&2; exit 1; }
rm -f "$dir"/*_screen.log

# utime + stime of the daemon, in clock ticks (fields 14 and 15; the command name in
# field 2 has no spaces).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$daemon/stat"; }
cpu0="$(cpu_ticks)"
start=$(date +%s.%N)
status=0
run_sipp -m "$calls" -r "$rate" -l "$limit" || status=$?
end=$(date +%s.%N)
cpu1="$(cpu_ticks)"
screen="$(ls "$dir"/*_screen.log)"
ok="$(grep -m1 'Successful call' "$screen" | awk '{print $(NF)}')"
failed="$(grep -m1 'Failed call' "$screen" | awk '{print $(NF)}')"
awk -v n="$calls" -v s="$start" -v e="$end" -v ok="$ok" -v failed="$failed" -v r="$rate" -v l="$limit" 'BEGIN {
  printf "%d calls (offered %d/s, <= %d at once) in %.2f s: %.0f calls/s; successful %s, failed %s\n",
    n, r, l, e - s, n / (e - s), ok, failed
}'
awk -v n="$calls" -v c0="$cpu0" -v c1="$cpu1" -v hz="$(getconf CLK_TCK)" -v load="$(cut -d' ' -f1-3 /proc/loadavg)" 'BEGIN {
  printf "daemon CPU (user+sys) %.2f s: %.2f ms per call; load average %s\n",
    (c1 - c0) / hz, 1000 * (c1 - c0) / hz / n, load
}'
if [ "$status" -ne 0 ]; then
  echo "sipp exited $status:" >&2
  cat "$screen" "$dir/sipp.err" >&2
  exit 1
fi
