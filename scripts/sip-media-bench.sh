#!/usr/bin/env bash
# Concurrent calls with RTP both ways through the running daemon (issue 10's media
# benchmark): the release `flowgate` on the simulated board, a flow that answers and echoes
# the caller (`echo`) bound to number 1000, and the load generator
# sip/examples/media_load.rs, which places CALLS SIP calls over UDP from 127.0.0.1 (the
# default config's trusted `local` trunk: no credentials), sends G.711 µ-law RTP at ptime
# 20 on every call, receives the gateway's RTP and measures a DURATION-second window with
# every call up. Both run on the same machine.
#
#   scripts/sip-media-bench.sh                        1000 calls, placed at 200/s, 30 s window
#   CALLS=2000 DURATION=60 scripts/sip-media-bench.sh
#
# Prints (the header of sip/examples/media_load.rs has the details): calls established/failed; frames sent and
# received; frames lost (each payload carries its frame counter, checked bit for bit when
# it comes back), sequence gaps in the gateway's streams; added jitter p50/p99/max (kernel
# receive stamps, SO_TIMESTAMPNS, minus RTP timestamp time, over the call's smallest
# transit); the echo delay; the daemon's CPU over the window (user+sys from
# /proc/<pid>/stat) as % of a core and per call-second (the figure that stays comparable
# when other work shares the machine); its RSS before the first call and with every call
# up, per call; the generator's own CPU and the load average. Exits non-zero when a call
# failed or was dropped, or a frame was lost or altered.
#
# FLOWGATE_BIN / LOAD_BIN use those binaries instead of building them.
#
# AUTOGROUP_NICE=-10 runs the daemon and the generator in a session of their own whose
# scheduling group gets that nice value (root or CAP_SYS_NICE): with autogroup scheduling
# (/proc/sys/kernel/sched_autogroup_enabled) every session's group gets an equal share of
# the cores whatever its processes' nice, so a shared machine with two other sessions
# compiling gives the gateway about a third of the two cores. On a board the gateway does
# not share its cores with compilers; this is the nearest to that here. The figures say
# which way they were measured.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
calls="${CALLS:-1000}"
rate="${RATE:-200}"
duration="${DURATION:-30}"
target="${CARGO_TARGET_DIR:-$root/target}"
bin="${FLOWGATE_BIN:-$target/release/flowgate}"
load="${LOAD_BIN:-$target/release/examples/media_load}"

command -v curl >/dev/null || { echo "curl is missing" >&2; exit 2; }
if [ -z "${FLOWGATE_BIN:-}" ]; then
  (cd "$root" && cargo build --release --locked -p flowgate --bin flowgate)
fi
if [ -z "${LOAD_BIN:-}" ]; then
  (cd "$root" && cargo build --release --locked -p flowgate-sip --example media_load)
fi
if [ -n "${AUTOGROUP_NICE:-}" ] && [ -z "${_SIP_MEDIA_BENCH_SESSION:-}" ]; then
  FLOWGATE_BIN="$bin" LOAD_BIN="$load" _SIP_MEDIA_BENCH_SESSION=1 exec setsid --wait "$0" "$@"
fi
if [ -n "${AUTOGROUP_NICE:-}" ]; then
  echo "$AUTOGROUP_NICE" >/proc/self/autogroup ||
    { echo "cannot set the session's autogroup nice value (root or CAP_SYS_NICE)" >&2; exit 2; }
fi
# Two sockets a call on each side, besides the daemon's own files.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

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

# RTP 20000-39999 for the daemon (10,000 calls), the generator from 40000.
cat >"$dir/config.toml" <<CONF
[api]
listen = "127.0.0.1:0"
[data]
dir = "$dir/data"
[board]
profile = "simulated"
[log]
# The user agent's "call ended" lines carry each call's RTP and jitter buffer counters.
filter = "warn,flowgate_sip::ua=info"
format = "json"
[sip]
listen = "127.0.0.1:0"
transports = ["udp"]
[sip.rtp]
port_min = 20000
port_max = 39999
CONF

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
# The echo outlasts any run; the generator hangs up.
flow="$(call_api -X POST "$api/v1.0/flows" -d '{"name":"echo","detail":"","actions":[
  {"type":"answer"},
  {"type":"echo","option":{"duration":36000000}},
  {"type":"hangup"}]}' | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
[ -n "$flow" ] || { echo "could not create the flow" >&2; exit 1; }
call_api -X POST "$api/v1.0/numbers" \
  -d "{\"number\":\"1000\",\"call_flow_id\":\"$flow\",\"message_flow_id\":\"00000000-0000-0000-0000-000000000000\"}" >/dev/null

echo "flowgate $bin (pid $daemon), SIP $sip; $calls calls at $rate/s, ${duration} s window;" \
  "$(sed 's/^/scheduling group /' /proc/self/autogroup 2>/dev/null || true); load average $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
"$load" --sip "$sip" --pid "$daemon" --number 1000 --calls "$calls" --rate "$rate" \
  --duration "$duration" --rtp-base 40000 || status=$?
# Inside the gateway: what the jitter buffers did with the callers' packets, added up over
# the calls' "call ended" lines (counted from each call's start, the setup included).
python3 - "$dir/stderr" <<'PY'
import json, sys
keys = ["rtp_in", "rtp_out", "jb_lost", "jb_late", "jb_underruns", "jb_shrunk", "jb_resyncs"]
sums, calls = dict.fromkeys(keys, 0), 0
for line in open(sys.argv[1], errors="replace"):
    try:
        f = json.loads(line).get("fields", {})
    except ValueError:
        continue
    if f.get("message") == "call ended" and "rtp_in" in f:
        calls += 1
        for k in keys:
            sums[k] += int(f.get(k, 0))
print("gateway's own counters over %d calls: RTP in %d, out %d; jitter buffers: lost %d, late %d, "
      "underruns %d, dropped to shrink the delay %d, resyncs %d"
      % (calls, *(sums[k] for k in keys)))
PY
if ! kill -0 "$daemon" 2>/dev/null; then
  echo "the daemon died:" >&2
  tail -50 "$dir/stderr" >&2
  exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "media_load exited $status; the daemon's warnings and errors (last 30):" >&2
  grep -v '"message":"call ended"' "$dir/stderr" | grep -v '"level":"INFO"' | tail -30 >&2
  exit 1
fi
