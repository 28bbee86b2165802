//! Activeflow state saved to and loaded from sled, as the runtime does at every step.
//!
//! The state is an IVR that has looped a few times (20 actions, 30 variables, 150 steps of
//! history: about 23 KB of JSON, the same shape as the engine's serialize benchmark), kept in
//! an `ActiveflowRecord` on a real sled database in a temporary directory.
//!
//! - **save_commit**: one batch (the record plus its `activeflow_updated` event) committed;
//! - **save_durable**: the same, then flushed to disk (what a step costs before the runtime
//!   acknowledges anything outside);
//! - **load**: the record read back and deserialized (what a restart does per activeflow);
//! - **activeflow_codec**: LZ4 packing and unpacking of the record alone (`store::codec`).
//!
//! Run: `cargo bench -p flowgate --bench store`

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowgate::model::{ActiveflowRecord, ActiveflowStatus};
use flowgate::store::{Batch, Db, Store, StoreOptions, codec};
use flowgate_flows::model::ReferenceType;
use serde_json::json;
use uuid::Uuid;

fn looped_ivr() -> ActiveflowRecord {
    let now = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .expect("time");
    let engine = flowgate_flows::fixtures::looped_ivr(now);
    ActiveflowRecord {
        id: Uuid::from_u128(1),
        flow_id: None,
        status: ActiveflowStatus::Running,
        reference_type: ReferenceType::Call,
        reference_id: Some(Uuid::from_u128(2)),
        reference_activeflow_id: None,
        webhook_uri: String::new(),
        webhook_method: String::new(),
        end_reason: None,
        tm_create: now,
        tm_update: now,
        tm_end: None,
        engine,
    }
}

/// Released sled 0.34.7 could deadlock under a sustained write burst; the workspace's patched
/// copy should not (`vendor/sled/PATCHES.md`). A run that stops making progress fails with a
/// message instead of hanging: that would be a regression.
fn guard_against_stalls(progress: &'static AtomicU64) {
    std::thread::spawn(move || {
        let mut last = u64::MAX;
        loop {
            std::thread::sleep(Duration::from_secs(60));
            let now = progress.load(Ordering::Relaxed);
            if now == last {
                eprintln!(
                    "no store operation finished for 60 s: the store stalled (see vendor/sled/PATCHES.md)"
                );
                std::process::exit(1);
            }
            last = now;
        }
    });
}

static PROGRESS: AtomicU64 = AtomicU64::new(0);

fn bench_state(c: &mut Criterion) {
    guard_against_stalls(&PROGRESS);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), &StoreOptions::default()).expect("store");
    let db = Db::new(store.clone()).expect("db");
    let record = looped_ivr();
    let id = record.id;
    let size = serde_json::to_vec(&record).expect("json").len();
    let save = || {
        let mut batch = Batch::new();
        batch
            .put(&db.activeflows, id, black_box(&record))
            .expect("put");
        batch.event("activeflow_updated", id, json!({"id": id}));
        store.commit(batch).expect("commit");
        PROGRESS.fetch_add(1, Ordering::Relaxed);
    };

    let mut g = c.benchmark_group("activeflow_state");
    g.measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Bytes(u64::try_from(size).unwrap_or(0)));
    g.bench_function("save_commit", |b| b.iter(save));
    g.bench_function("save_durable", |b| {
        b.iter(|| {
            save();
            store.flush_blocking().expect("flush");
        });
    });
    g.bench_function("load", |b| {
        b.iter(|| {
            PROGRESS.fetch_add(1, Ordering::Relaxed);
            black_box(db.activeflows.get(id).expect("get").expect("stored"))
        });
    });
    g.finish();

    // The codec alone (LZ4 on the record's JSON), to tell its share of the figures above.
    let json = serde_json::to_vec(&record).expect("json");
    let packed = codec::pack(json.clone());
    let mut g = c.benchmark_group("activeflow_codec");
    g.measurement_time(Duration::from_secs(2));
    g.throughput(Throughput::Bytes(u64::try_from(size).unwrap_or(0)));
    g.bench_function("pack", |b| b.iter(|| codec::pack(black_box(json.clone()))));
    g.bench_function("unpack", |b| {
        b.iter(|| codec::unpack(black_box(&packed)).expect("unpack").len())
    });
    g.finish();
    println!(
        "activeflow record: {size} bytes of JSON, {} stored",
        packed.len()
    );
}

criterion_group!(benches, bench_state);
criterion_main!(benches);
