//! Start-up time and idle memory of the real `flowgate` binary with 10,000 stored flows
//! (targets: ready ≤ 500 ms, idle RSS ≤ 30 MB).
//!
//! The flows are written into a fresh data directory through the store, then the daemon is
//! started on the simulated board; "ready" is when it prints that the API listens (after
//! opening the store, recovering, starting the modem and binding the API). RSS is read from
//! `/proc/<pid>/status` after the modem is ready and the process has idled.
//! Run: `cargo bench -p flowgate --bench footprint` (uses the release-profile binary that
//! `cargo bench` builds). `FOOTPRINT_BINARY=<path>` measures another build instead, e.g. the
//! stripped release binary `scripts/binary-size.sh` makes (the data directory is still
//! written by this program, whatever profile it was built with).

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flowgate::store::{Db, Store, StoreOptions};
use flowgate_flows::limits::Limits;
use flowgate_flows::model::parse_flow;
use uuid::Uuid;

const FLOWS: usize = 10_000;
const RUNS: usize = 5;

fn populate(dir: &std::path::Path) {
    let store = Store::open(dir, &StoreOptions::default()).expect("store");
    let db = Db::new(store.clone()).expect("db");
    let text = include_str!("../../flows/library/ivr-menu.json");
    let template = parse_flow(text, &Limits::default()).expect("flow");
    for _ in 0..FLOWS {
        let mut flow = template.clone();
        let id = Uuid::now_v7();
        flow.id = Some(id);
        db.flows.put(id, &flow).expect("put");
    }
    store.flush_blocking().expect("flush");
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` / `cargo test --benches` probe
    }
    let binary = std::env::var_os("FOOTPRINT_BINARY").map_or_else(
        || env!("CARGO_BIN_EXE_flowgate").into(),
        std::path::PathBuf::from,
    );
    // The board image's daemon has no simulator: binary-size.sh names a real profile
    // (FOOTPRINT_BOARD) whose hardware is absent here.
    let board = std::env::var("FOOTPRINT_BOARD").unwrap_or_else(|_| "simulated".into());
    println!("measuring {} on board {board}", binary.display());
    let mut ready = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..RUNS {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        populate(&data);
        let start = Instant::now();
        let mut child = Command::new(&binary)
            .args([
                "run",
                "--listen",
                "127.0.0.1:0",
                "--board",
                &board,
                "--data",
            ])
            .arg(&data)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = std::io::BufReader::new(stdout).lines();
        let line = lines.next().expect("output").expect("line");
        assert!(line.starts_with("Flowgate API on"), "{line}");
        ready.push(start.elapsed());
        std::thread::spawn(move || for _ in lines {});
        // Idle: the modem initialises, then nothing happens.
        std::thread::sleep(Duration::from_secs(3));
        rss.push(rss_kib(child.id()));
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
    }
    ready.sort();
    rss.sort_unstable();
    println!(
        "startup to ready with {FLOWS} flows: median {:.0} ms, max {:.0} ms",
        ready[RUNS / 2].as_secs_f64() * 1e3,
        ready[RUNS - 1].as_secs_f64() * 1e3
    );
    println!(
        "idle RSS with {FLOWS} flows: median {:.1} MB, max {:.1} MB",
        rss[RUNS / 2] as f64 / 1024.0,
        rss[RUNS - 1] as f64 / 1024.0
    );
}
