#!/usr/bin/env bash
# Runs one of the two stall tests (PATCHES.md, "Tests") against sled 0.34.7 as released:
# a scratch copy of this directory whose src/threadpool.rs and src/pagecache/segment.rs are
# taken back to the commit that vendored the release, plus only the lines that declare the
# test modules. Nothing here is committed or changes the vendored copy.
#
#   vendor/sled/reproduce-released-stall.sh counter   # the idle count wraps (fails at once)
#   vendor/sled/reproduce-released-stall.sh cycle     # the deadlock (reported after 60 s)
#   SLED_STALL_HOLD=1 vendor/sled/reproduce-released-stall.sh cycle
#       # stays deadlocked and prints the PID, for: gdb -p PID -batch -ex "thread apply all bt"
#
# Exits 0 when the released code shows the fault, 1 when it does not.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
case "${1:-}" in
counter) filter=threadpool::tests expect='wrapped' ;;
cycle) filter=truncation_cycle expect='deadlock reproduced' ;;
*)
    echo "usage: $0 counter|cycle" >&2
    exit 2
    ;;
esac

# the commit that added the released crate (the patch came after it)
released=$(git -C "$here" log --format=%H --diff-filter=A -- src/threadpool.rs | tail -n 1)
[ -n "$released" ] || { echo "no git history for $here/src/threadpool.rs" >&2; exit 2; }

# kept between runs so that only sled is rebuilt; a fresh copy (new mtimes) every run
work=${SLED_RELEASED_DIR:-${TMPDIR:-/tmp}/sled-0.34.7-released}
rm -rf "$work/sled"
mkdir -p "$work"
cp -r "$here" "$work/sled"
rm -rf "$work/sled/target"
for file in src/threadpool.rs src/pagecache/segment.rs; do
    git -C "$here" show "$released:./$file" >"$work/sled/$file"
done
cat >>"$work/sled/src/threadpool.rs" <<'EOF'

#[cfg(test)]
pub(crate) mod tests;
EOF
cat >>"$work/sled/src/pagecache/segment.rs" <<'EOF'

#[cfg(all(test, target_os = "linux", not(miri)))]
mod truncation_cycle;
EOF

echo "sled 0.34.7 as released (threadpool.rs, segment.rs from ${released:0:12}) in $work/sled" >&2
log="$work/test.log"
set +e
cargo test --locked --manifest-path "$work/sled/Cargo.toml" --target-dir "$work/target" \
    --lib -- "$filter" --nocapture 2>&1 | tee "$log" | grep -v '^warning' | grep -E "^test |panicked|$expect|holding pid"
set -e
if grep -q "$expect" "$log"; then
    echo "reproduced on the released code: $expect" >&2
    exit 0
fi
echo "not reproduced (full output: $log)" >&2
exit 1
