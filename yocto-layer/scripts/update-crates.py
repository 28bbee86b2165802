#!/usr/bin/env python3
"""Writes (or checks) the flowgate recipe's crate list from the workspace Cargo.lock.

The recipe builds with `cargo --frozen` and no network: every crate from crates.io
must be in SRC_URI as oe-core's `crate://crates.io/<name>/<version>` fetcher URL
with its sha256 (the checksum Cargo.lock already records). This produces the same
format as oe-core's `bitbake -c update_crates flowgate`, without a bitbake setup.

    yocto-layer/scripts/update-crates.py           rewrite flowgate-crates.inc
    yocto-layer/scripts/update-crates.py --check   exit 1 if it is out of date (or the
                                                   recipe's licence checksum is)

Path dependencies (the workspace members, vendor/sled) are part of the source tree
and need no entry. Git dependencies are refused: they would need `git://` entries
with `type=git-dependency`, and the workspace has none.
"""

import argparse
import difflib
import hashlib
import pathlib
import re
import sys
import tomllib

LAYER = pathlib.Path(__file__).resolve().parent.parent
ROOT = LAYER.parent
LOCK = ROOT / "Cargo.lock"
RECIPE = LAYER / "recipes-flowgate" / "flowgate" / "flowgate_git.bb"
INC = RECIPE.with_name("flowgate-crates.inc")
REGISTRY = "registry+https://github.com/rust-lang/crates.io-index"


def render(lock_text: str) -> str:
    lock = tomllib.loads(lock_text)
    crates = []
    for pkg in lock.get("package", []):
        source = pkg.get("source")
        if source is None:
            continue  # a path dependency: in the source tree
        if source != REGISTRY:
            raise SystemExit(
                f"{pkg['name']} {pkg['version']}: source {source!r} is not crates.io; "
                "add it to the recipe by hand (git:// ... type=git-dependency)"
            )
        if "checksum" not in pkg:
            raise SystemExit(f"{pkg['name']} {pkg['version']}: no checksum in Cargo.lock")
        crates.append((pkg["name"], pkg["version"], pkg["checksum"]))
    crates.sort()
    lines = [
        "# Generated from Cargo.lock by yocto-layer/scripts/update-crates.py: do not edit.",
        "# Regenerate after every Cargo.lock change (the crate-list test fails until then).",
        "",
        "# from Cargo.lock",
    ]
    # One crate per line; oelint-adv wants no leading space inside the quotes.
    urls = [f"crate://crates.io/{name}/{version}" for name, version, _ in crates]
    if urls:
        lines.append(f'SRC_URI += "{urls[0]} \\')
        lines += [f"            {url} \\" for url in urls[1:]]
        lines.append('            "')
    lines.append("")
    lines += [
        f'SRC_URI[{name}-{version}.sha256sum] = "{checksum}"'
        for name, version, checksum in crates
    ]
    return "\n".join(lines) + "\n"


def licence_problems() -> list[str]:
    """Checks each `file://...;beginline=;endline=;md5=` of the recipe's LIC_FILES_CHKSUM
    against the repository (bitbake hashes those lines, newlines included)."""
    text = RECIPE.read_text(encoding="utf-8")
    problems = []
    for entry in re.findall(r"file://([^\s\"]+)", text):
        path, *params = entry.split(";")
        opts = dict(p.split("=", 1) for p in params)
        if "md5" not in opts:
            continue
        lines = (ROOT / path).read_text(encoding="utf-8").splitlines(keepends=True)
        begin = int(opts.get("beginline", "1"))
        end = int(opts.get("endline", str(len(lines))))
        got = hashlib.md5("".join(lines[begin - 1 : end]).encode()).hexdigest()
        if got != opts["md5"]:
            problems.append(
                f"LIC_FILES_CHKSUM {path} lines {begin}-{end}: md5 {got}, recipe says "
                f"{opts['md5']} (did the licence line move? fix beginline/endline/md5)"
            )
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the .inc is stale")
    parser.add_argument("--lock", type=pathlib.Path, default=LOCK)
    parser.add_argument("--inc", type=pathlib.Path, default=INC)
    args = parser.parse_args()
    want = render(args.lock.read_text(encoding="utf-8"))
    if args.check:
        problems = licence_problems()
        for problem in problems:
            print(problem, file=sys.stderr)
        have = args.inc.read_text(encoding="utf-8") if args.inc.exists() else ""
        if have == want:
            return 1 if problems else 0
        sys.stdout.writelines(
            difflib.unified_diff(
                have.splitlines(keepends=True),
                want.splitlines(keepends=True),
                str(args.inc),
                "from " + str(args.lock),
            )
        )
        print(
            f"{args.inc} does not match {args.lock}: run yocto-layer/scripts/update-crates.py",
            file=sys.stderr,
        )
        return 1
    args.inc.write_text(want, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
