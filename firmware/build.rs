//! Link settings for the daemon binary that only matter on the board's flash.
//!
//! A position-independent executable carries one relocation per pointer in its data
//! (vtables, string tables, jump tables): ~43,000 of them, 24 bytes each as RELA — about
//! 1 MB of the stripped binary. `-z pack-relative-relocs` stores the relative ones as
//! DT_RELR bitmaps instead (a few KB), keeping the binary a PIE (ASLR stays). The linker
//! only packs them when the C library it links against understands DT_RELR (glibc ≥ 2.36,
//! musl ≥ 1.2.4; it checks `GLIBC_ABI_DT_RELR`), so an older target still links and runs.
//! Only the binaries get the flag: test and bench harnesses link as before.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && (env == "gnu" || env == "musl") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
