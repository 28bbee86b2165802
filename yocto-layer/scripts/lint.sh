#!/usr/bin/env bash
# Lints every recipe, bbappend and conf of meta-flowgate with oelint-adv (no bitbake
# needed). The rules are oelint-adv's own for the layer's release, pinned in
# oelint-rules.json (`oelint-adv --release wrynose --print-rulefile`) minus
# oelint.vars.homepageping, which needs the network and would make the check flaky.
# Suppressed, with the reason:
#   suggestedvar.BUGTRACKER     the project has no public bug tracker (SECURITY.md says
#                               where to report)
#   suggestedvar.CVE_PRODUCT    only the daemon has one; images and packagegroups do not
#   suggestedvar.BBCLASSEXTEND, bbclassextend
#                               a board daemon: no native or nativesdk variant makes sense
# oelint-constants.json adds the variables of meta-rauc's bundle class (the bundle recipe in
# dynamic-layers/rauc), which oelint-adv does not know.
#
#   yocto-layer/scripts/lint.sh [OELINT_ADV]   (default: oelint-adv on PATH)
set -euo pipefail

layer="$(cd "$(dirname "$0")/.." && pwd)"
oelint="${1:-oelint-adv}"
cd "$layer"
shopt -s nullglob
files=(conf/layer.conf recipes-*/*/*.bb recipes-*/*/*.bbappend
  dynamic-layers/*/recipes-*/*/*.bb dynamic-layers/*/recipes-*/*/*.bbappend)
exec "$oelint" --release wrynose --quiet --relpaths \
  --rulefile oelint-rules.json \
  --constantmods +oelint-constants.json \
  --suppress oelint.var.suggestedvar.BUGTRACKER \
  --suppress oelint.var.suggestedvar.CVE_PRODUCT \
  --suppress oelint.var.suggestedvar.BBCLASSEXTEND \
  --suppress oelint.var.bbclassextend \
  "${files[@]}"
