//! Retention: what the gateway deletes so that its data directory stays inside its disk
//! budget, and never what is still needed.
//!
//! - **Event log**: at most `data.event_retention` events and none older than
//!   `data.retention_days`, but never an event a webhook target has not received yet (its
//!   cursor is the limit) — [`prune_bound`], [`prune_once`].
//! - **Records**: ended activeflows, calls, messages and recordings (with their files), and
//!   finished transcribes (under the recordings' count limit: one per recording or call
//!   segment) and queuecalls that are over (under the calls' count limit), older than `data.retention_days`, and the oldest ended ones beyond each
//!   table's count limit —
//!   [`select`] (the decision, time as an input) and [`prune_records`] (the I/O). Never
//!   pruned: running activeflows, calls not hung up or whose activeflow still runs, messages
//!   with a target still queued or being sent (or a pending flow start), recordings still
//!   capturing. Deletions are housekeeping: they write no event.
//! - **Disk budget**: [`run_budget`] measures the data directory every 30 s and sets the
//!   store's `DiskGuard` (see `store::budget`); when full, or over 90 % of
//!   `data.max_disk_mib` and still growing, records are pruned beyond the limits too: the
//!   oldest quarter of what may go, every round.
//!
//! sled does not give space back at once: a delete writes a tombstone, and the segments that
//! held the records are reused by later writes (or cut off when they are at the end of the
//! file). Pruning keeps the file from growing rather than shrinking it; the figures are in the
//! README (Measurements).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::config::DataConfig;
use crate::model::{
    ActiveflowStatus, CallStatus, QueuecallStatus, RecordingStatus, TargetStatus, TranscribeStatus,
};
use crate::store::budget::{self, DiskBudget, DiskState};
use crate::store::{Batch, Db, Store, StoreError, Table};

/// The highest sequence number that may be pruned: everything but the newest `retention`
/// events, and nothing after the lowest delivery cursor.
pub fn prune_bound(last_seq: u64, retention: u64, cursors: &[u64]) -> u64 {
    let by_size = last_seq.saturating_sub(retention);
    cursors.iter().copied().fold(by_size, u64::min)
}

/// Prunes once; returns how many events went. Besides the newest `retention`, events older
/// than `max_age` before `now` go too (when given). Cursors not stored yet impose no limit
/// (their worker starts at the end of the log).
pub fn prune_once(
    store: &Store,
    retention: u64,
    max_age: Option<(DateTime<Utc>, TimeDelta)>,
    cursor_keys: &[String],
) -> Result<usize, StoreError> {
    let mut cursors = Vec::with_capacity(cursor_keys.len());
    for key in cursor_keys {
        if let Some(cursor) = store.meta_get::<u64>(key)? {
            cursors.push(cursor);
        }
    }
    let mut bound = prune_bound(store.last_seq(), retention, &cursors);
    if let Some((now, age)) = max_age {
        let by_age = store.last_seq_before(now - age)?;
        bound = bound.max(cursors.iter().copied().fold(by_age, u64::min));
    }
    if bound == 0 {
        return Ok(0);
    }
    store.prune_events(bound)
}

/// Prunes at start, then each time the log has grown by a tenth of `retention`.
pub async fn run(
    store: Store,
    retention: u64,
    cursor_keys: Vec<String>,
    cancel: CancellationToken,
) {
    let step = (retention / 10).max(1);
    let mut seq = store.watch_seq();
    loop {
        let checked = store.last_seq();
        match prune_once(&store, retention, None, &cursor_keys) {
            Ok(0) => {}
            Ok(n) => debug!(pruned = n, "event log pruned"),
            Err(e) => warn!(cause = %e, "event log retention failed"),
        }
        let next = checked.saturating_add(step);
        tokio::select! {
            _ = cancel.cancelled() => return,
            changed = seq.wait_for(|s| *s >= next) => if changed.is_err() { return },
        }
    }
}

/// How long and how many ended records are kept (`[data]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordLimits {
    /// Ended records older than this go.
    pub max_age: TimeDelta,
    /// Ended activeflows kept at most.
    pub activeflows: usize,
    /// Ended calls kept at most.
    pub calls: usize,
    /// Settled messages kept at most.
    pub messages: usize,
    /// Ended recordings kept at most.
    pub recordings: usize,
}

impl RecordLimits {
    /// The limits of a (validated) `[data]` section.
    pub fn from_config(data: &DataConfig) -> Self {
        let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Self {
            max_age: TimeDelta::days(
                i64::try_from(data.retention_days).unwrap_or(i64::MAX / 86_400_000),
            ),
            activeflows: count(data.keep_activeflows),
            calls: count(data.keep_calls),
            messages: count(data.keep_messages),
            recordings: count(data.keep_recordings),
        }
    }
}

/// One record as retention sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// The record's id.
    pub id: Uuid,
    /// When it ended; `None` while it is still needed (never pruned).
    pub ended: Option<DateTime<Utc>>,
}

/// Which of `candidates` go: every ended one older than `max_age` before `now`, the oldest
/// ended ones beyond `keep`, and under `pressure` also the oldest quarter of the ended ones
/// left. Oldest means ended first (ties: lower id, i.e. created first).
pub fn select(
    candidates: &[Candidate],
    now: DateTime<Utc>,
    max_age: TimeDelta,
    keep: usize,
    pressure: bool,
) -> Vec<Uuid> {
    let mut ended: Vec<(DateTime<Utc>, Uuid)> = candidates
        .iter()
        .filter_map(|c| c.ended.map(|t| (t, c.id)))
        .collect();
    ended.sort_unstable();
    let cutoff = now - max_age;
    let by_age = ended.partition_point(|(t, _)| *t < cutoff);
    let by_count = ended.len().saturating_sub(keep);
    let mut n = by_age.max(by_count);
    if pressure {
        n += (ended.len() - n).div_ceil(4);
    }
    ended.truncate(n);
    ended.into_iter().map(|(_, id)| id).collect()
}

/// What one [`prune_records`] pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Ended activeflows.
    pub activeflows: usize,
    /// Ended calls.
    pub calls: usize,
    /// Settled messages.
    pub messages: usize,
    /// Ended recordings.
    pub recordings: usize,
    /// Recording files deleted.
    pub recording_files: usize,
    /// Finished transcribes.
    pub transcribes: usize,
    /// Queuecalls over (done or abandoned).
    pub queuecalls: usize,
    /// Inbound SMS dedupe markers older than the age limit.
    pub sms_seen: usize,
}

impl PruneReport {
    /// Records removed in all.
    pub fn total(&self) -> usize {
        self.activeflows
            + self.calls
            + self.messages
            + self.recordings
            + self.transcribes
            + self.queuecalls
            + self.sms_seen
    }
}

/// Removes what [`select`] picks from every record table, and the files of pruned
/// recordings from `recordings_dir`. `now` is an input (tests pass a fixed time).
///
/// # Errors
/// A table could not be read or the removals not committed.
pub fn prune_records(
    db: &Db,
    recordings_dir: &Path,
    limits: &RecordLimits,
    now: DateTime<Utc>,
    pressure: bool,
) -> Result<PruneReport, StoreError> {
    let mut report = PruneReport::default();

    // Activeflows: running ones are needed (and so are their calls).
    let mut running = HashSet::new();
    let mut candidates = Vec::new();
    for entry in db.activeflows.iter() {
        let Some((id, record)) = readable(entry, "activeflows") else {
            continue;
        };
        let ended = match record.status {
            ActiveflowStatus::Running => {
                running.insert(id);
                None
            }
            ActiveflowStatus::Ended => Some(record.tm_end.unwrap_or(record.tm_update)),
        };
        candidates.push(Candidate { id, ended });
    }
    let gone = select(
        &candidates,
        now,
        limits.max_age,
        limits.activeflows,
        pressure,
    );
    // The state and the actions stored apart go in the same commit: no orphan is left.
    for chunk in gone.chunks(512) {
        let mut batch = Batch::new();
        for id in chunk {
            batch.remove(&db.activeflows, *id);
            batch.remove(&db.activeflow_actions, *id);
        }
        db.store.commit(batch)?;
    }
    report.activeflows = gone.len();

    // Calls: needed until hung up and while their activeflow runs.
    let mut candidates = Vec::new();
    for entry in db.calls.iter() {
        let Some((id, call)) = readable(entry, "calls") else {
            continue;
        };
        let busy = call.status != CallStatus::Hangup
            || call.activeflow_id.is_some_and(|a| running.contains(&a));
        let ended = (!busy).then(|| call.tm_hangup.unwrap_or(call.tm_update));
        candidates.push(Candidate { id, ended });
    }
    let gone = select(&candidates, now, limits.max_age, limits.calls, pressure);
    report.calls = remove_all(db, &db.calls, &gone)?;

    // Messages: needed while queued, being sent, or waiting for their flow to start.
    let mut candidates = Vec::new();
    for entry in db.messages.iter() {
        let Some((id, message)) = readable(entry, "messages") else {
            continue;
        };
        let busy = message
            .targets
            .iter()
            .any(|t| t.status == TargetStatus::Queued || t.prepared.is_some())
            || db.sms_queue.contains(id)?
            || db.sms_flow_pending.contains(id)?;
        let settled = message
            .targets
            .iter()
            .map(|t| t.tm_update)
            .fold(message.tm_update, DateTime::max);
        candidates.push(Candidate {
            id,
            ended: (!busy).then_some(settled),
        });
    }
    let gone = select(&candidates, now, limits.max_age, limits.messages, pressure);
    report.messages = remove_all(db, &db.messages, &gone)?;

    // Recordings: needed while capturing; the files go after the records (a stray file is
    // harmless, a record without its file is not).
    let mut candidates = Vec::new();
    let mut files = std::collections::HashMap::new();
    for entry in db.recordings.iter() {
        let Some((id, recording)) = readable(entry, "recordings") else {
            continue;
        };
        let ended = match recording.status {
            RecordingStatus::Recording => None,
            RecordingStatus::Ended => Some(recording.tm_end.unwrap_or(recording.tm_start)),
        };
        candidates.push(Candidate { id, ended });
        files.insert(id, recording.filenames);
    }
    let gone = select(
        &candidates,
        now,
        limits.max_age,
        limits.recordings,
        pressure,
    );
    report.recordings = remove_all(db, &db.recordings, &gone)?;
    for id in &gone {
        for name in files.remove(id).unwrap_or_default() {
            let Some(path) = plain_file(recordings_dir, &name) else {
                continue;
            };
            match std::fs::remove_file(&path) {
                Ok(()) => report.recording_files += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    warn!(recording = %id, file = %path.display(), cause = %e, "recording file not removed");
                }
            }
        }
    }

    // Transcribes: needed while progressing (the capture or the engine's answer is due).
    let mut candidates = Vec::new();
    for entry in db.transcribes.iter() {
        let Some((id, transcribe)) = readable(entry, "transcribes") else {
            continue;
        };
        let ended =
            (transcribe.status != TranscribeStatus::Progressing).then_some(transcribe.tm_update);
        candidates.push(Candidate { id, ended });
    }
    let gone = select(
        &candidates,
        now,
        limits.max_age,
        limits.recordings,
        pressure,
    );
    report.transcribes = remove_all(db, &db.transcribes, &gone)?;

    // Queuecalls: needed while the caller is in the queue (one per queue stay of a call:
    // under the calls' count limit).
    let mut candidates = Vec::new();
    for entry in db.queuecalls.iter() {
        let Some((id, qc)) = readable(entry, "queuecalls") else {
            continue;
        };
        let over = matches!(
            qc.status,
            QueuecallStatus::Done | QueuecallStatus::Abandoned
        );
        let ended = over.then(|| qc.tm_end.unwrap_or(qc.tm_update));
        candidates.push(Candidate { id, ended });
    }
    let gone = select(&candidates, now, limits.max_age, limits.calls, pressure);
    report.queuecalls = remove_all(db, &db.queuecalls, &gone)?;

    // Dedupe markers only matter while the modem may hand the same SMS out again (seconds
    // to minutes after a crash): the age limit is plenty.
    let cutoff = now - limits.max_age;
    let mut old = Vec::new();
    for entry in db.sms_seen.iter() {
        if let Some((id, seen)) = readable(entry, "sms_seen")
            && seen.tm_create < cutoff
        {
            old.push(id);
        }
    }
    report.sms_seen = remove_all(db, &db.sms_seen, &old)?;
    Ok(report)
}

/// A record, or `None` (logged) when it does not parse: retention leaves it alone.
fn readable<V>(entry: Result<(Uuid, V), StoreError>, table: &str) -> Option<(Uuid, V)> {
    match entry {
        Ok(pair) => Some(pair),
        Err(e) => {
            warn!(table, cause = %e, "unreadable record left alone by retention");
            None
        }
    }
}

/// Removes `ids` from `table` in batches (no events: housekeeping, not a change anyone
/// follows). Returns how many were removed.
fn remove_all<V: serde::Serialize + serde::de::DeserializeOwned>(
    db: &Db,
    table: &Table<V>,
    ids: &[Uuid],
) -> Result<usize, StoreError> {
    for chunk in ids.chunks(512) {
        let mut batch = Batch::new();
        for id in chunk {
            batch.remove(table, *id);
        }
        db.store.commit(batch)?;
    }
    Ok(ids.len())
}

/// `dir/name` for a plain file name (no path, not hidden), else `None`.
fn plain_file(dir: &Path, name: &str) -> Option<PathBuf> {
    let plain = Path::new(name).file_name().is_some_and(|f| f == name) && !name.starts_with('.');
    plain.then(|| dir.join(name))
}

/// How the disk-budget task runs.
#[derive(Debug, Clone)]
pub struct BudgetOptions {
    /// The data directory (measured as a whole).
    pub data_dir: PathBuf,
    /// Where recording files live.
    pub recordings_dir: PathBuf,
    /// `[data] max_disk_mib`.
    pub budget: DiskBudget,
    /// Record retention.
    pub limits: RecordLimits,
    /// `[data] event_retention`.
    pub event_retention: u64,
    /// Webhook cursors (events not delivered are kept).
    pub cursor_keys: Vec<String>,
    /// Time between measurements.
    pub every: Duration,
    /// Time between retention passes while the disk is not under pressure.
    pub prune_every: Duration,
}

impl BudgetOptions {
    /// The options for a (validated) `[data]` section.
    pub fn from_config(data: &DataConfig, cursor_keys: Vec<String>) -> Self {
        Self {
            data_dir: data.dir.clone(),
            recordings_dir: data.dir.join("recordings"),
            budget: DiskBudget::from_mib(data.max_disk_mib),
            limits: RecordLimits::from_config(data),
            event_retention: data.event_retention,
            cursor_keys,
            every: Duration::from_secs(30),
            prune_every: Duration::from_secs(600),
        }
    }
}

/// What one [`budget_round`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// The verdict.
    pub state: DiskState,
    /// Bytes in the data directory (the next round's `previous_used`).
    pub used: u64,
    /// What was pruned, and how many events, when retention ran.
    pub pruned: Option<(PruneReport, usize)>,
}

/// One round of the budget task: measure, set the store's verdict, prune when due (or when
/// the directory is over 90 % and still growing, or full). `previous_used` is the last
/// round's measurement (`None` for the first).
///
/// # Errors
/// Measuring failed (the verdict is left as it was), or pruning failed.
pub fn budget_round(
    db: &Db,
    options: &BudgetOptions,
    now: DateTime<Utc>,
    previous_used: Option<u64>,
    prune_due: bool,
) -> Result<Round, BudgetError> {
    let guard = db.store.disk_guard();
    let usage = budget::measure(&options.data_dir).map_err(BudgetError::Measure)?;
    let state = options
        .budget
        .assess(previous_used, usage.used, usage.fs_free);
    guard.set(state, usage.used, options.budget.max_bytes);
    let pressure = match state {
        DiskState::Ok => false,
        DiskState::Pressure => DiskBudget::growing(previous_used, usage.used),
        DiskState::Full => true,
    };
    if !(prune_due || pressure) {
        return Ok(Round {
            state,
            used: usage.used,
            pruned: None,
        });
    }
    let report = prune_records(db, &options.recordings_dir, &options.limits, now, pressure)?;
    // Under pressure the event log keeps a quarter of its usual length (undelivered events
    // are kept whatever the pressure).
    let events = if pressure {
        (options.event_retention / 4).max(100)
    } else {
        options.event_retention
    };
    let pruned_events = prune_once(
        &db.store,
        events,
        Some((now, options.limits.max_age)),
        &options.cursor_keys,
    )?;
    Ok(Round {
        state,
        used: usage.used,
        pruned: Some((report, pruned_events)),
    })
}

/// Errors of the budget task.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    /// The data directory or its file system could not be measured.
    #[error("cannot measure the data directory: {0}")]
    Measure(std::io::Error),
    /// Pruning failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Measures every `options.every`, keeps the store's disk verdict current and prunes
/// records: every `options.prune_every`, and every round while the disk is under pressure or
/// full. Returns when `cancel` is cancelled.
pub async fn run_budget(db: Db, options: BudgetOptions, cancel: CancellationToken) {
    let mut last_prune: Option<Instant> = None;
    let mut last_state = DiskState::Ok;
    let mut previous_used = None;
    loop {
        let due = last_prune.is_none_or(|t| t.elapsed() >= options.prune_every);
        let (db2, options2) = (db.clone(), options.clone());
        let started = Instant::now();
        let round = tokio::task::spawn_blocking(move || {
            budget_round(&db2, &options2, Utc::now(), previous_used, due)
        })
        .await;
        match round {
            Ok(Ok(round)) => {
                previous_used = Some(round.used);
                if round.state != last_state {
                    let used_mib = round.used / (1024 * 1024);
                    let max_mib = options.budget.max_bytes / (1024 * 1024);
                    match round.state {
                        DiskState::Full => warn!(
                            used_mib,
                            max_mib, "disk full: new work is refused until retention makes room"
                        ),
                        DiskState::Pressure => warn!(
                            used_mib,
                            max_mib,
                            "disk nearly full: pruning beyond the retention limits while it grows"
                        ),
                        DiskState::Ok => {
                            info!(used_mib, max_mib, "disk usage back under the budget");
                        }
                    }
                    last_state = round.state;
                }
                if let Some((report, events)) = round.pruned {
                    last_prune = Some(Instant::now());
                    if report.total() + events > 0 {
                        info!(
                            activeflows = report.activeflows,
                            calls = report.calls,
                            messages = report.messages,
                            recordings = report.recordings,
                            recording_files = report.recording_files,
                            transcribes = report.transcribes,
                            queuecalls = report.queuecalls,
                            sms_seen = report.sms_seen,
                            events,
                            ms = started.elapsed().as_millis(),
                            "retention pruned"
                        );
                    }
                }
            }
            Ok(Err(e)) => warn!(cause = %e, "disk budget round failed"),
            Err(e) => warn!(cause = %e, "disk budget task failed"),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(options.every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        ActiveflowRecord, Message, MessageDirection, MessageTarget, Pending, Recording, SmsSeen,
    };
    use crate::store::Batch;
    use chrono::TimeZone;
    use flowgate_flows::model::Address;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, day, 12, 0, 0)
            .single()
            .unwrap()
    }

    fn ended(n: u128, day: u32) -> Candidate {
        Candidate {
            id: Uuid::from_u128(n),
            ended: Some(at(day)),
        }
    }

    fn ids(v: &[u128]) -> Vec<Uuid> {
        v.iter().map(|n| Uuid::from_u128(*n)).collect()
    }

    #[test]
    fn select_prunes_by_age_and_count_but_never_what_is_needed() {
        let running = Candidate {
            id: Uuid::from_u128(99),
            ended: None,
        };
        // Ended on days 1..=5; "now" is day 10.
        let c = vec![
            ended(5, 5),
            ended(1, 1),
            running,
            ended(3, 3),
            ended(2, 2),
            ended(4, 4),
        ];
        let now = at(10);
        // Older than 7 days: days 1 and 2.
        assert_eq!(
            select(&c, now, TimeDelta::days(7), 100, false),
            ids(&[1, 2])
        );
        // At most 2 ended kept: the three oldest go.
        assert_eq!(
            select(&c, now, TimeDelta::days(30), 2, false),
            ids(&[1, 2, 3])
        );
        // Under pressure a quarter of the rest (rounded up) goes too.
        assert_eq!(
            select(&c, now, TimeDelta::days(7), 100, true),
            ids(&[1, 2, 3])
        );
        // Even with nothing allowed, the running one stays.
        let all = select(&c, now, TimeDelta::days(1), 0, true);
        assert_eq!(all.len(), 5);
        assert!(!all.contains(&Uuid::from_u128(99)));
        assert!(select(&[running], now, TimeDelta::days(1), 0, true).is_empty());
    }

    fn limits(keep: usize) -> RecordLimits {
        RecordLimits {
            max_age: TimeDelta::days(7),
            activeflows: keep,
            calls: keep,
            messages: keep,
            recordings: keep,
        }
    }

    fn activeflow(n: u128, end: Option<u32>) -> ActiveflowRecord {
        ActiveflowRecord {
            id: Uuid::from_u128(n),
            flow_id: None,
            status: if end.is_some() {
                ActiveflowStatus::Ended
            } else {
                ActiveflowStatus::Running
            },
            reference_type: flowgate_flows::model::ReferenceType::Api,
            reference_id: None,
            reference_activeflow_id: None,
            webhook_uri: String::new(),
            webhook_method: String::new(),
            end_reason: None,
            tm_create: at(1),
            tm_update: at(1),
            tm_end: end.map(at),
            engine: flowgate_flows::fixtures::looped_ivr(at(1)),
        }
    }

    fn message(n: u128, status: TargetStatus, day: u32) -> Message {
        Message {
            id: Uuid::from_u128(n),
            kind: "sms".into(),
            direction: MessageDirection::Outbound,
            source: Address::default(),
            targets: vec![MessageTarget {
                destination: Address::default(),
                status,
                parts: 1,
                references: Vec::new(),
                delivered_parts: 0,
                attempts: 0,
                next_attempt: None,
                prepared: None,
                error: String::new(),
                tm_update: at(day),
            }],
            text: "hi".into(),
            modem_id: String::new(),
            tm_sent_by_network: None,
            incomplete: false,
            flow_state: crate::model::FlowState::None,
            activeflow_id: None,
            tm_create: at(day),
            tm_update: at(day),
        }
    }

    fn recording(n: u128, status: RecordingStatus, day: u32, file: &str) -> Recording {
        Recording {
            id: Uuid::from_u128(n),
            reference_type: "call".into(),
            reference_id: Uuid::from_u128(1000 + n),
            activeflow_id: None,
            status,
            format: "wav".into(),
            recording_name: file.trim_end_matches(".wav").into(),
            filenames: vec![file.into()],
            duration_ms: 1000,
            end_reason: String::new(),
            on_end_flow_id: None,
            tm_start: at(day),
            tm_end: (status == RecordingStatus::Ended).then(|| at(day)),
        }
    }

    #[test]
    fn prune_records_keeps_running_flows_unsent_sms_and_live_recordings() {
        let store = Store::temporary().unwrap();
        let db = Db::new(store.clone()).unwrap();
        let files = tempfile::tempdir().unwrap();
        // Activeflows: 1 running (old), 2 ended long ago, 3 ended recently.
        db.activeflows
            .put(Uuid::from_u128(1), &activeflow(1, None))
            .unwrap();
        db.activeflows
            .put(Uuid::from_u128(2), &activeflow(2, Some(1)))
            .unwrap();
        db.activeflows
            .put(Uuid::from_u128(3), &activeflow(3, Some(9)))
            .unwrap();
        // Messages: queued (old), sent long ago, old but still in the send queue, old inbound
        // whose flow has not started, recent.
        db.messages
            .put(Uuid::from_u128(10), &message(10, TargetStatus::Queued, 1))
            .unwrap();
        db.messages
            .put(Uuid::from_u128(11), &message(11, TargetStatus::Sent, 1))
            .unwrap();
        db.messages
            .put(Uuid::from_u128(12), &message(12, TargetStatus::Failed, 1))
            .unwrap();
        db.sms_queue
            .put(Uuid::from_u128(12), &Pending { tm_create: at(1) })
            .unwrap();
        db.messages
            .put(Uuid::from_u128(13), &message(13, TargetStatus::Received, 1))
            .unwrap();
        db.sms_flow_pending
            .put(Uuid::from_u128(13), &Pending { tm_create: at(1) })
            .unwrap();
        db.messages
            .put(
                Uuid::from_u128(14),
                &message(14, TargetStatus::Delivered, 9),
            )
            .unwrap();
        // Recordings: one still capturing (old), one ended long ago with its file.
        std::fs::write(files.path().join("old.wav"), b"RIFF").unwrap();
        std::fs::write(files.path().join("live.wav"), b"RIFF").unwrap();
        db.recordings
            .put(
                Uuid::from_u128(20),
                &recording(20, RecordingStatus::Recording, 1, "live.wav"),
            )
            .unwrap();
        db.recordings
            .put(
                Uuid::from_u128(21),
                &recording(21, RecordingStatus::Ended, 1, "old.wav"),
            )
            .unwrap();
        // A dedupe marker from long ago and a fresh one.
        let seen = |day| SmsSeen {
            message_id: Uuid::nil(),
            tm_create: at(day),
        };
        let queuecall = |n: u128, status: QueuecallStatus| crate::model::Queuecall {
            id: Uuid::from_u128(n),
            queue_id: Uuid::nil(),
            reference_type: "call".into(),
            reference_id: Uuid::nil(),
            reference_activeflow_id: None,
            source: flowgate_flows::model::Address::default(),
            routing_method: String::new(),
            tag_ids: Vec::new(),
            status,
            service_agent_id: None,
            service_agent: flowgate_flows::model::Address::default(),
            service_call_id: None,
            timeout_wait: 0,
            timeout_service: 0,
            duration_waiting: 0,
            duration_service: 0,
            end_reason: String::new(),
            tm_create: at(1),
            tm_service: None,
            tm_update: at(1),
            tm_end: None,
        };
        // An old queuecall that is over goes; one still waiting (however old) stays.
        for (n, status) in [
            (40, QueuecallStatus::Abandoned),
            (41, QueuecallStatus::Waiting),
        ] {
            db.queuecalls
                .put(Uuid::from_u128(n), &queuecall(n, status))
                .unwrap();
        }
        db.sms_seen.put(Uuid::from_u128(30), &seen(1)).unwrap();
        db.sms_seen.put(Uuid::from_u128(31), &seen(9)).unwrap();

        let report = prune_records(&db, files.path(), &limits(100), at(10), false).unwrap();
        assert_eq!(
            report,
            PruneReport {
                activeflows: 1,
                calls: 0,
                messages: 1,
                recordings: 1,
                recording_files: 1,
                transcribes: 0,
                queuecalls: 1,
                sms_seen: 1,
            }
        );
        assert!(db.queuecalls.contains(Uuid::from_u128(41)).unwrap());
        assert!(db.activeflows.contains(Uuid::from_u128(1)).unwrap());
        assert!(!db.activeflows.contains(Uuid::from_u128(2)).unwrap());
        assert!(db.activeflows.contains(Uuid::from_u128(3)).unwrap());
        for kept in [10, 12, 13, 14] {
            assert!(
                db.messages.contains(Uuid::from_u128(kept)).unwrap(),
                "message {kept}"
            );
        }
        assert!(!db.messages.contains(Uuid::from_u128(11)).unwrap());
        assert!(db.recordings.contains(Uuid::from_u128(20)).unwrap());
        assert!(!db.recordings.contains(Uuid::from_u128(21)).unwrap());
        assert!(!files.path().join("old.wav").exists());
        assert!(files.path().join("live.wav").exists());
        assert!(!db.sms_seen.contains(Uuid::from_u128(30)).unwrap());
        assert!(db.sms_seen.contains(Uuid::from_u128(31)).unwrap());

        // Under pressure with nothing allowed, only what is still needed survives.
        prune_records(&db, files.path(), &limits(0), at(10), true).unwrap();
        assert_eq!(db.activeflows.len(), 1);
        assert_eq!(db.messages.len(), 3);
        assert_eq!(db.recordings.len(), 1);
    }

    #[test]
    fn transcribes_stay_while_progressing() {
        let db = Db::new(Store::temporary().unwrap()).unwrap();
        let transcribe = |n: u128, status: TranscribeStatus| crate::model::Transcribe {
            id: Uuid::from_u128(n),
            activeflow_id: None,
            on_end_flow_id: None,
            reference_type: "call".into(),
            reference_id: Uuid::nil(),
            status,
            language: "en-US".into(),
            direction: "both".into(),
            provider: String::new(),
            recording_ids: Vec::new(),
            transcripts: Vec::new(),
            error: String::new(),
            tm_create: at(1),
            tm_update: at(1),
        };
        for (n, status) in [
            (50, TranscribeStatus::Progressing),
            (51, TranscribeStatus::Done),
            (52, TranscribeStatus::Failed),
        ] {
            db.transcribes
                .put(Uuid::from_u128(n), &transcribe(n, status))
                .unwrap();
        }
        let report =
            prune_records(&db, Path::new("/nonexistent"), &limits(100), at(10), false).unwrap();
        assert_eq!(report.transcribes, 2);
        assert!(db.transcribes.contains(Uuid::from_u128(50)).unwrap());
        assert_eq!(db.transcribes.len(), 1);
    }

    #[test]
    fn calls_stay_while_up_or_while_their_flow_runs() {
        let store = Store::temporary().unwrap();
        let db = Db::new(store).unwrap();
        db.activeflows
            .put(Uuid::from_u128(1), &activeflow(1, None))
            .unwrap();
        let call = |n: u128, status: &str, flow: Option<u128>| -> crate::model::Call {
            serde_json::from_value(serde_json::json!({
                "id": Uuid::from_u128(n), "modem_id": "m0", "direction": "incoming",
                "source": {"type": "tel", "target": "+1"}, "destination": {"type": "tel", "target": "+2"},
                "status": status, "flow_id": null,
                "activeflow_id": flow.map(Uuid::from_u128),
                "master_call_id": null, "chained_call_ids": [],
                "tm_create": at(1), "tm_hangup": at(1), "tm_update": at(1),
            }))
            .unwrap()
        };
        db.calls
            .put(Uuid::from_u128(40), &call(40, "progressing", None))
            .unwrap();
        db.calls
            .put(Uuid::from_u128(41), &call(41, "hangup", Some(1)))
            .unwrap();
        db.calls
            .put(Uuid::from_u128(42), &call(42, "hangup", None))
            .unwrap();
        let report =
            prune_records(&db, Path::new("/nonexistent"), &limits(0), at(10), true).unwrap();
        assert_eq!(report.calls, 1);
        assert!(!db.calls.contains(Uuid::from_u128(42)).unwrap());
        assert_eq!(db.calls.len(), 2);
    }

    #[test]
    fn events_go_by_age_too_but_never_before_a_cursor() {
        let store = Store::temporary().unwrap();
        for _ in 0..50 {
            let mut batch = Batch::new();
            batch.event("x", Uuid::nil(), serde_json::Value::Null);
            store.commit(batch).unwrap();
        }
        let later = Some((Utc::now() + TimeDelta::days(8), TimeDelta::days(7)));
        store.meta_put("cursor", &20u64).unwrap();
        // Every event is older than the age limit, but the cursor holds the rest.
        assert_eq!(
            prune_once(&store, 1000, later, &["cursor".to_owned()]).unwrap(),
            20
        );
        store.meta_put("cursor", &50u64).unwrap();
        assert_eq!(
            prune_once(&store, 1000, later, &["cursor".to_owned()]).unwrap(),
            30
        );
        assert!(store.events_after(0, 10).unwrap().is_empty());
    }

    #[test]
    fn a_budget_round_sets_the_verdict_and_prunes_while_growing_over_the_budget() {
        const MIB: u64 = 1024 * 1024;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &crate::store::StoreOptions::default()).unwrap();
        let db = Db::new(store.clone()).unwrap();
        for n in 0..40 {
            db.activeflows
                .put(Uuid::from_u128(n), &activeflow(n, Some(9)))
                .unwrap();
        }
        store.flush_blocking().unwrap();
        let used = budget::measure(dir.path()).unwrap().used;
        let options = |max_bytes: u64| BudgetOptions {
            data_dir: dir.path().to_owned(),
            recordings_dir: dir.path().join("recordings"),
            budget: DiskBudget {
                max_bytes,
                reserve_bytes: 0,
            },
            limits: limits(1000),
            event_retention: 1000,
            cursor_keys: Vec::new(),
            every: Duration::from_secs(30),
            prune_every: Duration::from_secs(600),
        };
        // Plenty of room, not due: nothing pruned.
        let round = budget_round(&db, &options(used * 10), at(10), None, false).unwrap();
        assert_eq!((round.state, round.pruned), (DiskState::Ok, None));
        // Over the budget and growing: full, creations refused, a quarter of the ended
        // records go.
        let round = budget_round(&db, &options(used / 2), at(10), None, false).unwrap();
        assert_eq!(round.state, DiskState::Full);
        assert_eq!(round.pruned.unwrap().0.activeflows, 10);
        assert!(store.disk_guard().admit().is_err());
        assert_eq!(db.activeflows.len(), 30);
        // Still over the budget, but no longer growing (sled reuses the room): creations are
        // admitted again and nothing more is pruned.
        let now_used = budget::measure(dir.path()).unwrap().used;
        let round =
            budget_round(&db, &options(used / 2), at(10), Some(now_used + MIB), false).unwrap();
        assert_eq!((round.state, round.pruned), (DiskState::Pressure, None));
        assert!(store.disk_guard().admit().is_ok());
        assert_eq!(db.activeflows.len(), 30);
        // Room again.
        let round =
            budget_round(&db, &options(u64::MAX / 2), at(10), Some(now_used), false).unwrap();
        assert_eq!(round.state, DiskState::Ok);
        assert!(store.disk_guard().admit().is_ok());
    }

    #[test]
    fn bound_keeps_the_newest_and_undelivered_events() {
        assert_eq!(prune_bound(1000, 100, &[]), 900);
        assert_eq!(prune_bound(1000, 100, &[950, 500]), 500);
        assert_eq!(prune_bound(50, 100, &[]), 0);
        assert_eq!(prune_bound(1000, 100, &[999]), 900);
    }

    #[test]
    fn prune_once_respects_a_cursor() {
        let store = Store::temporary().unwrap();
        for _ in 0..30 {
            let mut batch = Batch::new();
            batch.event("x", uuid::Uuid::nil(), serde_json::Value::Null);
            store.commit(batch).unwrap();
        }
        store.meta_put("cursor", &5u64).unwrap();
        assert_eq!(
            prune_once(&store, 10, None, &["cursor".to_owned()]).unwrap(),
            5
        );
        store.meta_put("cursor", &30u64).unwrap();
        assert_eq!(
            prune_once(
                &store,
                10,
                None,
                &["cursor".to_owned(), "never-set".to_owned()]
            )
            .unwrap(),
            15
        );
        assert_eq!(
            store.events_after(0, 100).unwrap().first().map(|e| e.seq),
            Some(21)
        );
    }
}
