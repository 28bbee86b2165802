//! The store soak: sustained activeflow rewrites through the real store on disk for
//! `FLOWGATE_SOAK_SECS` seconds (default 600), the write pattern that deadlocked sled 0.34.7
//! (see `vendor/sled/PATCHES.md`). Prints commits/s every 10 s; exits 1 on a stall (no commit
//! for 30 s). With `FLOWGATE_SOAK_HOLD=1` a stalled run stays alive for `gdb -p PID`.
//!
//! Run: `cargo bench -p flowgate --bench store_soak`
//! (`FLOWGATE_SOAK_SECS=60 cargo bench -p flowgate --bench store_soak` for a short one;
//! `FLOWGATE_SOAK_WRITERS` (4) and `FLOWGATE_SOAK_SET` (64 records per writer) and `FLOWGATE_SOAK_DURABLE_EVERY` (8) shape
//! the load).

#[path = "../tests/soak_support/mod.rs"]
mod soak_support;

use std::time::Duration;

use soak_support::{SoakOptions, Until};

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing or a filter:
    // only a real bench run soaks.
    if !std::env::args().any(|a| a == "--bench") {
        println!("store_soak: run with `cargo bench` (skipped in test mode)");
        return;
    }
    let secs = std::env::var("FLOWGATE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(600);
    let hold = std::env::var("FLOWGATE_SOAK_HOLD").is_ok_and(|v| v == "1");
    let knob = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(default)
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let report = soak_support::run(
        dir.path(),
        SoakOptions {
            writers: usize::try_from(knob("FLOWGATE_SOAK_WRITERS", 4)).unwrap_or(4),
            working_set: u128::from(knob("FLOWGATE_SOAK_SET", 64)),
            durable_every: knob("FLOWGATE_SOAK_DURABLE_EVERY", 8),
            until: Until::Elapsed(Duration::from_secs(secs)),
            stall_limit: Duration::from_secs(30),
            report_every: Some(Duration::from_secs(10)),
            hold_on_stall: hold,
        },
    );
    let secs = report.elapsed.as_secs_f64();
    let mib = f64::from(u32::try_from(report.bytes / 1024).unwrap_or(u32::MAX)) / 1024.0;
    println!(
        "store_soak: {} commits in {:.0} s = {:.0} commits/s, {:.1} MiB/s of records; longest pause {} ms; disk at end {} MiB",
        report.commits,
        secs,
        f64::from(u32::try_from(report.commits).unwrap_or(u32::MAX)) / secs,
        mib / secs,
        report.longest_pause.as_millis(),
        report.disk_bytes / (1024 * 1024),
    );
    if report.stalled_after.is_some() {
        std::process::exit(1);
    }
}
