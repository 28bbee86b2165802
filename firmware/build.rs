//! Build steps for the daemon that only matter on the board's flash.
//!
//! - Relocations: a position-independent executable carries one relocation per pointer in
//!   its data (vtables, string tables, jump tables): ~43,000 of them, 24 bytes each as
//!   RELA — about 1 MB of the stripped binary. `-z pack-relative-relocs` stores the relative
//!   ones as DT_RELR bitmaps instead (a few KB), and the binary stays a PIE (ASLR stays).
//!   The linker only packs them when the C library it links against understands DT_RELR
//!   (glibc ≥ 2.36, musl ≥ 1.2.4; it checks for `GLIBC_ABI_DT_RELR`), so an older target
//!   still links and runs. Only the binaries get the flag: test and bench harnesses link as
//!   before.
//! - Identical code folding (`--icf=all`, ~70 KB): generic code instantiated for different
//!   types often compiles to the same machine code, and the linker keeps one copy. Only LLD
//!   and mold have the option; rustc links `x86_64-unknown-linux-gnu` with its bundled LLD
//!   unless a linker is configured, so it is passed for that target's release builds when
//!   no other linker is set (`RUSTC_LINKER`, or linker flags in `RUSTFLAGS`). Yocto's cross
//!   builds use their own triple and linker and do not get it. Rust makes no promise that
//!   distinct functions or constants have distinct addresses, so folding them is sound;
//!   statics with interior mutability live in writable sections, which the linker never
//!   folds.
//! - The OpenAPI document: the daemon serves the checked-in `openapi.json` (compacted and
//!   LZ4-compressed here: 245 KB of pretty JSON, 106 KB compacted, a fraction of that
//!   compressed) instead of building it with utoipa at run time, which took 0.7 MB of code.
//!   A test (`tests/api_openapi.rs`) keeps the checked-in file equal to what the code
//!   generates and the served document equal to the file.

use std::path::PathBuf;

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && (env == "gnu" || env == "musl") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let target = std::env::var("TARGET").unwrap_or_default();
    let profile = std::env::var("PROFILE").unwrap_or_default();
    // Flags that pick another linker (`-C linker=…`, `-C link-self-contained=-linker`,
    // `-C linker-features=-lld`) turn it off too.
    let rustflags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if target == "x86_64-unknown-linux-gnu"
        && profile == "release"
        && std::env::var_os("RUSTC_LINKER").is_none()
        && !rustflags.contains("linker")
        && !rustflags.contains("link-self-contained")
    {
        println!("cargo:rustc-link-arg-bins=-Wl,--icf=all");
    }

    let source = PathBuf::from("openapi.json");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", source.display());
    let text = std::fs::read_to_string(&source)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", source.display()));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let target = out.join("openapi.min.json.lz4");
    let compressed = lz4_flex::compress_prepend_size(compact_json(&text).as_bytes());
    std::fs::write(&target, compressed)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", target.display()));
}

/// Drops the whitespace between JSON tokens (the pretty printer's indentation), leaving
/// strings untouched: the same document in ~55% of the bytes.
fn compact_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_ascii_whitespace() {
            out.push(c);
        }
    }
    out
}
