//! Flash wear: bytes written per API activeflow and per inbound SMS, and how fast retention
//! prunes.
//!
//! - **activeflow**: the runtime runs `FLOWGATE_WEAR_N` (default 5,000) API activeflows of the
//!   API benchmark's flow (three `variable_set`, a `talk` that API flows skip) to their end,
//!   16 at a time, on a sled database in a temporary directory.
//! - **sms**: the daemon on the simulated board receives 300 SMS for a number bound to the
//!   keyword bot (each stored, its flow run, a reply stored and sent).
//!
//! For each: the bytes the gateway commits (keys, values, events: `Store::bytes_committed`),
//! the bytes the process made the kernel write to the disk (`write_bytes` of
//! `/proc/self/io`: sled's log with its framing, rewrites and compaction), and the growth of
//! the database on disk (`size_on_disk`).
//!
//! - **prune**: the ended activeflows then go (`retention::prune_records` with a count limit of
//!   10): records removed per second, and the database size before, right after, and after as
//!   many new activeflows again (sled reuses the freed segments); then six rounds of new
//!   activeflows and pruning, to show where the size settles.
//!
//! Run: `cargo bench -p flowgate --bench disk_wear`

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use flowgate::config::Config;
use flowgate::daemon::Daemon;
use flowgate::metrics::Metrics;
use flowgate::runtime::{FlowSource, Modems, Runtime, RuntimeOptions, StartRequest};
use flowgate::store::{Db, Store, StoreOptions};
use flowgate::sync::flowset::FlowSet;
use flowgate::sync::retention::{self, RecordLimits};
use flowgate_flows::model::{Flow, ReferenceType};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Bytes the kernel wrote to storage for this process so far.
fn disk_writes() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn per(total: u64, n: u64) -> f64 {
    f64::from(u32::try_from(total / n.max(1)).unwrap_or(u32::MAX))
}

/// Events committed after `after`, by type: count and bytes of their data.
fn event_mix(store: &Store, after: u64, n: u64) -> String {
    let mut mix: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    let mut cursor = after;
    loop {
        let events = store.events_after(cursor, 1000).expect("events");
        let Some(last) = events.last() else { break };
        cursor = last.seq;
        for e in &events {
            let entry = mix.entry(e.kind.clone()).or_default();
            entry.0 += 1;
            entry.1 += u64::try_from(e.data.to_string().len()).unwrap_or(0);
        }
    }
    mix.iter()
        .map(|(kind, (count, bytes))| {
            format!(
                "{kind} {:.1}×{:.0} B",
                per(*count * 10, n) / 10.0,
                per(*bytes, *count)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn run_activeflows(runtime: &Runtime, flow_id: uuid::Uuid, n: u64) {
    let mut tasks = Vec::new();
    for i in 0..16 {
        let share = n / 16 + u64::from(i < n % 16);
        let runtime = runtime.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..share {
                let request =
                    StartRequest::new(FlowSource::Stored(flow_id), ReferenceType::Api, None);
                runtime.start(request).await.expect("start");
            }
        }));
    }
    for task in tasks {
        task.await.expect("starter");
    }
    let mut seq = runtime.db().store.watch_seq();
    while runtime.running() > 0 {
        // Each activeflow's end is an event: wake on events, not on a timer.
        let _ = tokio::time::timeout(Duration::from_millis(50), seq.changed()).await;
    }
}

async fn activeflows(n: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), &StoreOptions::default()).expect("store");
    let db = Db::new(store.clone()).expect("db");
    let cancel = CancellationToken::new();
    let runtime = Runtime::new(
        db.clone(),
        Modems::default(),
        RuntimeOptions::default(),
        Arc::new(Metrics::default()),
        cancel.child_token(),
    );
    let flow: Flow = serde_json::from_value(json!({"name": "bench", "actions": [
        {"type": "variable_set", "option": {"key": "a", "value": "1"}},
        {"type": "variable_set", "option": {"key": "b", "value": "${a}2"}},
        {"type": "talk", "option": {"text": "skipped on API flows"}},
        {"type": "variable_set", "option": {"key": "c", "value": "${b}3"}},
    ]}))
    .expect("flow");
    let flow = FlowSet::new(db.clone()).create(flow).expect("create flow");
    let flow_id = flow.id.expect("id");
    store.flush().await.expect("flush");

    let (committed0, written0, disk0) = (
        store.bytes_committed(),
        disk_writes(),
        store.size_on_disk().expect("size"),
    );
    let seq0 = store.last_seq();
    let started = Instant::now();
    run_activeflows(&runtime, flow_id, n).await;
    store.flush().await.expect("flush");
    let elapsed = started.elapsed();
    let committed = store.bytes_committed() - committed0;
    let written = disk_writes() - written0;
    let disk = store.size_on_disk().expect("size").saturating_sub(disk0);
    println!(
        "activeflow: {n} in {:.1} s; per activeflow: committed {:.0} B, written to disk {:.0} B, database growth {:.0} B",
        elapsed.as_secs_f64(),
        per(committed, n),
        per(written, n),
        per(disk, n),
    );
    println!("  events per activeflow: {}", event_mix(&store, seq0, n));
    let sample = db
        .activeflows
        .iter()
        .next()
        .expect("one")
        .expect("readable")
        .1;
    println!(
        "activeflow record as stored: {} B (engine state JSON {} B)",
        db.activeflows
            .stored_len(sample.id)
            .expect("len")
            .unwrap_or(0),
        serde_json::to_vec(&sample.engine).expect("json").len(),
    );

    // Pruning: everything but 10 ended activeflows goes.
    let before = store.size_on_disk().expect("size");
    let limits = RecordLimits {
        max_age: TimeDelta::days(30),
        activeflows: 10,
        calls: 10,
        messages: 10,
        recordings: 10,
    };
    let started = Instant::now();
    let report = retention::prune_records(
        &db,
        &dir.path().join("recordings"),
        &limits,
        Utc::now(),
        false,
    )
    .expect("prune");
    store.flush().await.expect("flush");
    let took = started.elapsed();
    let after = store.size_on_disk().expect("size");
    run_activeflows(&runtime, flow_id, n).await;
    store.flush().await.expect("flush");
    let refilled = store.size_on_disk().expect("size");
    println!(
        "prune: {} ended activeflows in {:.2} s ({:.0} records/s); database {} KiB before, {} KiB right after, {} KiB after {n} new activeflows",
        report.activeflows,
        took.as_secs_f64(),
        f64::from(u32::try_from(report.activeflows).unwrap_or(u32::MAX)) / took.as_secs_f64(),
        before / 1024,
        after / 1024,
        refilled / 1024,
    );

    // Steady state: rounds of n new activeflows, each followed by retention keeping 10 ended
    // activeflows and 1,000 events. Pruning does not shrink sled's file, but the space it
    // frees is reused: the size settles instead of growing with every round.
    let mut sizes = Vec::new();
    for _ in 0..6 {
        retention::prune_records(
            &db,
            &dir.path().join("recordings"),
            &limits,
            Utc::now(),
            false,
        )
        .expect("prune");
        let last = store.last_seq();
        store
            .prune_events(last.saturating_sub(1000))
            .expect("prune events");
        store.flush().await.expect("flush");
        run_activeflows(&runtime, flow_id, n).await;
        store.flush().await.expect("flush");
        sizes.push(format!("{}", store.size_on_disk().expect("size") / 1024));
    }
    println!(
        "steady state: database KiB after each round of {n} activeflows + pruning: {}",
        sizes.join(", ")
    );
    cancel.cancel();
    runtime.wait_stopped().await;
}

async fn sms(n: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::default();
    config.data.dir = dir.path().join("data");
    config.api.listen = "127.0.0.1:0".into();
    config.log.filter = "error".into();
    let daemon = Daemon::start(config).await.expect("daemon");
    for modem in daemon.runtime().modems().iter() {
        modem
            .wait_ready(Duration::from_secs(30))
            .await
            .expect("modem ready");
    }
    let http = reqwest::Client::new();
    let base = format!("http://{}/v1.0", daemon.addr());
    let post = |path: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(daemon.token().as_str())
            .json(&body)
            .send()
    };
    let bot: Value = serde_json::from_str(include_str!("../../flows/library/sms-keyword-bot.json"))
        .expect("flow");
    let flow: Value = post("/flows", bot)
        .await
        .expect("flow")
        .json()
        .await
        .expect("json");
    post(
        "/numbers",
        json!({"number": "+15550001000", "message_flow_id": flow["id"]}),
    )
    .await
    .expect("number");
    let store = daemon.runtime().db().store.clone();
    let sim = daemon.sims().remove(0);
    store.flush().await.expect("flush");
    let (committed0, written0, disk0) = (
        store.bytes_committed(),
        disk_writes(),
        store.size_on_disk().expect("size"),
    );
    let messages0 = daemon.runtime().db().messages.len();
    let seq0 = store.last_seq();
    let mut seq = store.watch_seq();
    for i in 0..n {
        sim.send_sms(&format!("+1555400{:04}", i % 10_000), "HOURS")
            .expect("inject");
        // One at a time, as a modem delivers them: wait until its reply is stored.
        let target = messages0 + 2 * usize::try_from(i + 1).expect("count");
        while daemon.runtime().db().messages.len() < target {
            tokio::time::timeout(Duration::from_secs(30), seq.changed())
                .await
                .expect("progress")
                .expect("store");
        }
    }
    // Let the replies settle (sent, stored) before measuring.
    while !daemon.runtime().db().sms_queue.is_empty() {
        let _ = tokio::time::timeout(Duration::from_millis(100), seq.changed()).await;
    }
    store.flush().await.expect("flush");
    let committed = store.bytes_committed() - committed0;
    let written = disk_writes() - written0;
    let disk = store.size_on_disk().expect("size").saturating_sub(disk0);
    println!(
        "sms (stored, keyword-bot flow, reply sent): {n}; per SMS: committed {:.0} B, written to disk {:.0} B, database growth {:.0} B",
        per(committed, n),
        per(written, n),
        per(disk, n),
    );
    println!("  events per SMS: {}", event_mix(&store, seq0, n));
    let db = daemon.runtime().db();
    if let Some(Ok((id, _))) = db.activeflows.iter().last() {
        println!(
            "  message activeflow record as stored: {} B",
            db.activeflows.stored_len(id).expect("len").unwrap_or(0)
        );
    }
    daemon.shutdown().await.expect("shutdown");
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("disk_wear: run with `cargo bench` (skipped in test mode)");
        return;
    }
    let n = std::env::var("FLOWGATE_WEAR_N")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(5_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    rt.block_on(activeflows(n));
    rt.block_on(sms(300));
}
