//! The store soak: sustained activeflow writes through the real [`Store`] on disk, the pattern
//! that stalled sled 0.34.7 (see `flowgate::store::watchdog` and `vendor/sled/PATCHES.md`).
//!
//! Several writer threads rewrite a working set of ~24 KB activeflow records through the
//! commit thread (each rewrite with its event, as the runtime does at every step), every
//! `durable_every`-th commit durable, while event retention trims the log. Rewriting large records back to
//! back frees whole segments at the log's tail, so sled truncates its file over and over —
//! the truncation that 0.34.7 queued on its own IO pool behind the segment-accountant lock.
//!
//! Shared by `tests/store_soak.rs` (short, counted, in CI) and `benches/store_soak.rs` (the
//! 10-minute run). Progress is watched from outside the writers: a run in which no commit
//! finishes for `stall_limit` is reported as a stall (and can be held for a debugger).

#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use flowgate::model::{ActiveflowRecord, ActiveflowStatus};
use flowgate::store::{Batch, Db, Store, StoreOptions};
use flowgate_flows::model::ReferenceType;
use serde_json::json;
use uuid::Uuid;

/// When a soak stops.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// After this many commits in all.
    Commits(u64),
    /// After this long.
    Elapsed(Duration),
}

/// How a soak is run.
#[derive(Debug, Clone, Copy)]
pub struct SoakOptions {
    /// Writer threads.
    pub writers: usize,
    /// Distinct activeflows each writer rewrites in turn.
    pub working_set: u128,
    /// Every this many commits a writer waits for a flush (the runtime's durable commits).
    pub durable_every: u64,
    /// When to stop.
    pub until: Until,
    /// No commit finishing for this long is a stall.
    pub stall_limit: Duration,
    /// Print a progress line this often (`None`: quiet).
    pub report_every: Option<Duration>,
    /// On a stall, keep the process (and its stuck threads) alive for a debugger instead of
    /// returning.
    pub hold_on_stall: bool,
}

/// What a soak did.
#[derive(Debug, Clone)]
pub struct SoakReport {
    /// Commits that finished.
    pub commits: u64,
    /// Bytes of activeflow JSON committed.
    pub bytes: u64,
    /// How long the run took (up to the stall, if any).
    pub elapsed: Duration,
    /// When no commit finished for `stall_limit`: how far into the run the last commit was.
    pub stalled_after: Option<Duration>,
    /// The longest time between two finished commits, seen at the monitor's resolution.
    pub longest_pause: Duration,
    /// sled's size on disk at the end.
    pub disk_bytes: u64,
}

/// One activeflow record as the runtime stores it: the looped IVR fixture (~24 KB of JSON).
pub fn record(id: Uuid) -> ActiveflowRecord {
    let now = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .expect("fixed time");
    ActiveflowRecord {
        id,
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
        engine: flowgate_flows::fixtures::looped_ivr(now),
    }
}

/// Runs the soak on a store in `dir`.
///
/// # Panics
/// When the store cannot be opened or a commit fails (a soak has nothing else to report).
pub fn run(dir: &Path, options: SoakOptions) -> SoakReport {
    let store = Store::open(dir, &StoreOptions::default()).expect("open store");
    let db = Db::new(store.clone()).expect("tables");
    let template = record(Uuid::nil());
    let record_len =
        u64::try_from(serde_json::to_vec(&template).expect("json").len()).expect("record size");
    let commits = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();

    let mut writers = Vec::new();
    for w in 0..options.writers {
        let (db, commits, stop) = (db.clone(), Arc::clone(&commits), Arc::clone(&stop));
        let mut record = template.clone();
        let limit = match options.until {
            Until::Commits(n) => Some(n),
            Until::Elapsed(_) => None,
        };
        writers.push(std::thread::spawn(move || {
            let mut n: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                let slot = u128::from(n) % options.working_set;
                let id = Uuid::from_u128((u128::try_from(w).expect("writer") << 64) | slot);
                record.id = id;
                let mut batch = Batch::new();
                batch.put(&db.activeflows, id, &record).expect("encode");
                batch.event("activeflow_updated", id, json!({"id": id}));
                db.store.commit(batch).expect("commit");
                if n % options.durable_every.max(1) == options.durable_every.max(1) - 1 {
                    db.store.flush_blocking().expect("flush");
                }
                n += 1;
                let total = commits.fetch_add(1, Ordering::Relaxed) + 1;
                if limit.is_some_and(|limit| total >= limit) {
                    stop.store(true, Ordering::Relaxed);
                }
            }
        }));
    }

    // Retention on a thread of its own: it writes too, so it may hang in a stalled store,
    // and the monitor below must not.
    {
        let (store, stop) = (db.store.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // Keep the event log to the newest 10,000 entries, as `[data]
                // event_retention` does (paced, not a synchronisation).
                let last = store.last_seq();
                if last > 20_000 {
                    store.prune_events(last - 10_000).expect("prune");
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
    }

    // The monitor: progress lines and the stall verdict.
    let tick = Duration::from_millis(100);
    let mut last_count = 0;
    let mut last_progress = Instant::now();
    let mut longest_pause = Duration::ZERO;
    let mut last_report = Instant::now();
    let mut stalled_after = None;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(tick);
        let count = commits.load(Ordering::Relaxed);
        let now = Instant::now();
        if count != last_count {
            longest_pause = longest_pause.max(now - last_progress);
            last_count = count;
            last_progress = now;
        } else if now - last_progress >= options.stall_limit {
            stalled_after = Some(last_progress - started);
            break;
        }
        if let Some(every) = options.report_every
            && now - last_report >= every
        {
            last_report = now;
            let secs = (now - started).as_secs_f64();
            println!(
                "soak: {:>6.0} s  {:>9} commits  {:>7.0} commits/s  disk {} MiB",
                secs,
                count,
                f64::from(u32::try_from(count).unwrap_or(u32::MAX)) / secs,
                db.store.size_on_disk().unwrap_or(0) / (1024 * 1024),
            );
        }
        if let Until::Elapsed(limit) = options.until
            && now - started >= limit
        {
            stop.store(true, Ordering::Relaxed);
        }
    }

    let elapsed = started.elapsed();
    let commits = commits.load(Ordering::Relaxed);
    if let Some(at) = stalled_after {
        eprintln!(
            "soak: STALL — no commit finished for {} s (last one {:.1} s into the run, {commits} commits); pid {}",
            options.stall_limit.as_secs(),
            at.as_secs_f64(),
            std::process::id()
        );
        if options.hold_on_stall {
            eprintln!("soak: holding the stalled process for a debugger (gdb -p PID)");
            loop {
                std::thread::park();
            }
        }
        // The writers and the store's threads are stuck inside sled: dropping the store would
        // join them and hang too.
        std::mem::forget(writers);
        std::mem::forget(db);
        std::mem::forget(store);
        return SoakReport {
            commits,
            bytes: commits * record_len,
            elapsed,
            stalled_after,
            longest_pause,
            disk_bytes: 0,
        };
    }
    for writer in writers {
        writer.join().expect("writer");
    }
    let disk_bytes = db.store.size_on_disk().unwrap_or(0);
    SoakReport {
        commits,
        bytes: commits * record_len,
        elapsed,
        stalled_after,
        longest_pause,
        disk_bytes,
    }
}
