//! The gateway's persistent state, in sled 0.34.
//!
//! # Layout
//!
//! One sled database under `<data dir>/db` with a tree per record type (see
//! [`Store`]'s fields), a `meta` tree (schema version, flow-set revision, webhook cursors)
//! and an `events` tree: the event log, keyed by a big-endian sequence number.
//!
//! # Events
//!
//! Every change a controller may care about (activeflows, calls, messages, flows…) is
//! written through a [`Batch`]: the record changes and their [`Event`]s commit in one sled
//! transaction. One thread applies every batch and allocates the sequence numbers (see
//! [`commit`]), so the log is gap-free, sequence order is commit order, and a reader that
//! has seen sequence `n` has seen every change up to `n`. That is what lets
//! `GET /v1.0/gateway/events?after=SEQ` promise "no loss".
//!
//! # Durability
//!
//! sled keeps recent writes in memory and syncs them every `flush_every_ms`. Where the
//! gateway acknowledges something to the outside world — an SMS before the modem deletes it,
//! an API create before the response — the caller awaits [`Store::flush`] first
//! ("persist, then acknowledge"). Concurrent flushes share one fsync (see [`commit`]).
//!
//! # Disk budget
//!
//! [`budget`] decides when the data directory is full; then batches that create something
//! (any `*_created` event) are refused with [`StoreError::DiskFull`], while updates and deletes
//! go through (running flows finish, retention frees room).
//!
//! # Liveness
//!
//! sled 0.34.7 could deadlock under a sustained write burst; the workspace carries a patched
//! sled that removes the cause (`vendor/sled/PATCHES.md`). [`watchdog`] stays as the last line
//! of defence: it notices a store that takes no more writes so the daemon can exit and be
//! restarted.

pub mod budget;
pub mod codec;
mod commit;
mod db;
mod migrate;
mod table;
pub mod watchdog;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use uuid::Uuid;

pub use budget::{DiskBudget, DiskGuard, DiskState};
pub use db::Db;
pub use table::{Page, Table};

/// The schema this build reads and writes. Bump it with a migration in [`Store::open`].
///
/// 3: large values and events are stored LZ4-compressed ([`codec`]). Older databases need no
/// conversion for that (plain JSON still reads); a build that knows only version 2 refuses a
/// version 3 database instead of failing on its compressed records.
///
/// 4: an activeflow's main actions are stored once, in `activeflow_actions`, not in the
/// record every step rewrites (`migrate` moves them); a version 3 build would read such a
/// record as a flow without actions, so it refuses the database instead.
pub const SCHEMA_VERSION: u32 = 4;

const SCHEMA_KEY: &[u8] = b"schema_version";

/// Errors of the store layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database directory could not be opened.
    #[error("cannot open the database at {path}: {source}")]
    Open {
        /// The database directory.
        path: PathBuf,
        /// What sled said.
        source: sled::Error,
    },
    /// Another process holds the database.
    #[error("the database at {path} is in use by another process (is another flowgate running?)")]
    Locked {
        /// The database directory.
        path: PathBuf,
    },
    /// The database was written by a newer Flowgate.
    #[error(
        "the database at {path} has schema version {found}, this build understands up to {supported}; \
         upgrade Flowgate or point --data at another directory"
    )]
    NewerSchema {
        /// The database directory.
        path: PathBuf,
        /// The version found on disk.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// A record or key on disk cannot be read back.
    #[error("corrupt record in table {table} at key {key}: {reason}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The key, as text.
        key: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A record could not be serialised (a bug, reported rather than panicking).
    #[error("cannot encode a record for table {table}: {source}")]
    Encode {
        /// The table.
        table: &'static str,
        /// The serde error.
        source: serde_json::Error,
    },
    /// The commit thread is gone (the store is shutting down, or the thread died).
    #[error("the store's commit thread has stopped")]
    Stopped,
    /// The data directory has used up its disk budget (or its file system is nearly full):
    /// nothing new is stored until retention has made room.
    #[error(
        "the disk is full: the data directory uses {used_mib} MiB of its {max_mib} MiB budget \
         ([data] max_disk_mib) or its file system is nearly full; nothing new is stored until \
         old records are pruned"
    )]
    DiskFull {
        /// MiB in use at the last measurement.
        used_mib: u64,
        /// The budget, MiB.
        max_mib: u64,
    },
    /// sled failed (I/O error, corruption detected while running).
    #[error("database {op} failed: {source}")]
    Sled {
        /// What the store was doing.
        op: &'static str,
        /// What sled said.
        source: sled::Error,
    },
}

/// One entry of the event log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// Position in the log: strictly increasing, gap-free, persistent.
    pub seq: u64,
    /// When the change was committed.
    pub time: DateTime<Utc>,
    /// VoIPBIN-style event type, e.g. `activeflow_updated`, `message_created`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The resource the event is about.
    pub resource_id: Uuid,
    /// The resource as it is after the change (its public JSON).
    pub data: serde_json::Value,
}

/// How the store is tuned; part of the daemon config.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Page cache size in bytes. Small by default: the board has little RAM and the working
    /// set (running activeflows, recent messages) is small.
    pub cache_bytes: u64,
    /// Background sync interval; explicit [`Store::flush`] calls are the durability points.
    pub flush_every_ms: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            cache_bytes: 8 * 1024 * 1024,
            flush_every_ms: 500,
        }
    }
}

/// A pending atomic change: record writes plus the events describing them.
#[derive(Default)]
pub struct Batch {
    ops: Vec<Op>,
    events: Vec<PendingEvent>,
    /// An event whose data could not be encoded: the commit fails with it.
    encode_error: Option<StoreError>,
}

struct Op {
    tree: sled::Tree,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
}

struct PendingEvent {
    kind: String,
    resource_id: Uuid,
    /// Encoded by the caller, so the commit thread only copies it.
    data: Box<serde_json::value::RawValue>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `value` under `id` in `table` when the batch commits.
    pub fn put<V: Serialize + serde::de::DeserializeOwned>(
        &mut self,
        table: &Table<V>,
        id: Uuid,
        value: &V,
    ) -> Result<&mut Self, StoreError> {
        let bytes = table.encode(value)?;
        self.ops.push(Op {
            tree: table.tree.clone(),
            key: id.as_bytes().to_vec(),
            value: Some(bytes),
        });
        Ok(self)
    }

    /// Removes `id` from `table` when the batch commits.
    pub fn remove<V>(&mut self, table: &Table<V>, id: Uuid) -> &mut Self {
        self.ops.push(Op {
            tree: table.tree.clone(),
            key: id.as_bytes().to_vec(),
            value: None,
        });
        self
    }

    /// Appends an event to the log when the batch commits.
    pub fn event(
        &mut self,
        kind: impl Into<String>,
        resource_id: Uuid,
        data: serde_json::Value,
    ) -> &mut Self {
        self.push_event(kind, resource_id, serde_json::value::to_raw_value(&data))
    }

    /// Appends an event whose data is `data` serialized straight to JSON text: the same
    /// event as [`Batch::event`] with `serde_json::to_value(data)`, without building the
    /// intermediate value tree (the activeflow's per-step event is the hot case).
    pub fn event_of<T: Serialize + ?Sized>(
        &mut self,
        kind: impl Into<String>,
        resource_id: Uuid,
        data: &T,
    ) -> &mut Self {
        self.push_event(kind, resource_id, serde_json::value::to_raw_value(data))
    }

    /// Appends an event whose data is `json`, JSON text the caller already has (an empty
    /// or invalid text is an encode error at commit, as for [`Batch::event_of`]).
    pub fn event_json(
        &mut self,
        kind: impl Into<String>,
        resource_id: Uuid,
        json: String,
    ) -> &mut Self {
        self.push_event(
            kind,
            resource_id,
            serde_json::value::RawValue::from_string(json),
        )
    }

    /// Queues an encoded event, or keeps the first encode error for the commit to report.
    fn push_event(
        &mut self,
        kind: impl Into<String>,
        resource_id: Uuid,
        data: Result<Box<serde_json::value::RawValue>, serde_json::Error>,
    ) -> &mut Self {
        match data {
            Ok(data) => self.events.push(PendingEvent {
                kind: kind.into(),
                resource_id,
                data,
            }),
            Err(source) => {
                self.encode_error.get_or_insert(StoreError::Encode {
                    table: "events",
                    source,
                });
            }
        }
        self
    }

    /// Moves every write and event of `later` to the end of this batch (a later write to the
    /// same key wins).
    pub fn append(&mut self, mut later: Batch) -> &mut Self {
        self.ops.append(&mut later.ops);
        self.events.append(&mut later.events);
        if self.encode_error.is_none() {
            self.encode_error = later.encode_error;
        }
        self
    }

    /// Whether the batch creates something (an event `*_created`): what a full disk refuses.
    pub fn creates(&self) -> bool {
        self.events.iter().any(|e| e.kind.ends_with("_created"))
    }

    /// Whether the batch does nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.events.is_empty() && self.encode_error.is_none()
    }
}

/// The gateway's database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// The commit thread. First, so that dropping the store stops it (and its handles on
    /// the database) before anything else goes.
    committer: commit::Committer,
    db: sled::Db,
    path: PathBuf,
    meta: sled::Tree,
    events: sled::Tree,
    /// The last committed event sequence (the commit thread allocates and announces them).
    last_seq: watch::Receiver<u64>,
    /// The disk verdict (set by retention, read on every commit).
    guard: DiskGuard,
    /// Bytes of keys, values and events committed through batches (flash-wear accounting).
    written: Arc<AtomicU64>,
}

impl Store {
    /// Opens (or creates) the database in `dir`, checking the schema version.
    ///
    /// A database locked by another opener is waited for up to [`LOCK_WAIT`], then refused
    /// with [`StoreError::Locked`].
    pub fn open(dir: &Path, options: &StoreOptions) -> Result<Self, StoreError> {
        let path = dir.join("db");
        let config = sled::Config::new()
            .path(&path)
            .cache_capacity(options.cache_bytes)
            .flush_every_ms(Some(options.flush_every_ms));
        let open = || {
            config
                .open()
                .map_err(|source| classify_open_error(&path, source))
        };
        let db = match open() {
            Err(StoreError::Locked { .. }) if lock_released(&path.join("db"), LOCK_WAIT) => open(),
            first => first,
        }?;
        Self::from_db(db, path)
    }

    /// A throwaway in-memory-backed database for tests and dry runs.
    pub fn temporary() -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .temporary(true)
            .open()
            .map_err(|source| StoreError::Open {
                path: PathBuf::from("<temporary>"),
                source,
            })?;
        Self::from_db(db, PathBuf::from("<temporary>"))
    }

    fn from_db(db: sled::Db, path: PathBuf) -> Result<Self, StoreError> {
        let meta = db.open_tree("meta").map_err(|source| StoreError::Sled {
            op: "open tree",
            source,
        })?;
        check_schema(&db, &meta, &path)?;
        let events = db.open_tree("events").map_err(|source| StoreError::Sled {
            op: "open tree",
            source,
        })?;
        let last = match events
            .last()
            .map_err(|source| StoreError::Sled { op: "scan", source })?
        {
            Some((key, _)) => seq_from_key(&key)?,
            None => 0,
        };
        let (seq_tx, last_seq) = watch::channel(last);
        let written = Arc::new(AtomicU64::new(0));
        let committer = commit::Committer::start(
            db.clone(),
            events.clone(),
            last,
            seq_tx,
            Arc::clone(&written),
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                committer,
                db,
                path,
                meta,
                events,
                last_seq,
                guard: DiskGuard::default(),
                written,
            }),
        })
    }

    /// Opens the typed table `name`.
    pub fn table<V: Serialize + serde::de::DeserializeOwned>(
        &self,
        name: &'static str,
    ) -> Result<Table<V>, StoreError> {
        Table::open(&self.inner.db, name)
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// sled's files on disk (log, snapshots, config), in bytes.
    ///
    /// # Errors
    /// The files could not be listed.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.inner
            .db
            .size_on_disk()
            .map_err(|source| StoreError::Sled {
                op: "measure the size on disk",
                source,
            })
    }

    /// The disk verdict this store obeys (retention sets it; see [`budget`]).
    pub fn disk_guard(&self) -> &DiskGuard {
        &self.inner.guard
    }

    /// Bytes of keys, values and events committed through batches since the store was
    /// opened: what the gateway asks sled to write (sled adds its own framing and rewrites).
    pub fn bytes_committed(&self) -> u64 {
        self.inner.written.load(Ordering::Relaxed)
    }

    /// Commits `batch` atomically; returns the sequence numbers of its events.
    ///
    /// Blocks the calling thread for the commit (see [`commit`] for how concurrent batches
    /// share a transaction); async code prefers [`Store::commit_async`].
    pub fn commit(&self, batch: Batch) -> Result<Vec<u64>, StoreError> {
        futures::executor::block_on(self.submit(batch, false))
    }

    /// [`Store::commit`] without blocking: the task waits while the commit thread works,
    /// and the batches of tasks waiting together share one transaction.
    pub async fn commit_async(&self, batch: Batch) -> Result<Vec<u64>, StoreError> {
        self.submit(batch, false).await
    }

    /// Commits `batch` and answers once it is on disk (with everything written before):
    /// [`Store::commit_async`] and [`Store::flush`] in one trip to the commit thread.
    pub async fn commit_durable(&self, batch: Batch) -> Result<Vec<u64>, StoreError> {
        self.submit(batch, true).await
    }

    /// Waits until everything written so far is on disk.
    ///
    /// Concurrent callers share flushes (group commit): the flush thread syncs once for
    /// everything queued while it was busy.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.submit(Batch::new(), true).await.map(drop)
    }

    /// Blocking variant of [`Store::flush`] for threads outside the runtime.
    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        futures::executor::block_on(self.submit(Batch::new(), true)).map(drop)
    }

    /// Hands `batch` to the commit thread; resolves with its outcome.
    fn submit(
        &self,
        mut batch: Batch,
        durable: bool,
    ) -> impl std::future::Future<Output = Result<Vec<u64>, StoreError>> + use<> {
        // A full disk refuses what creates; updates and deletes still go through.
        let admitted = if batch.creates() {
            self.inner.guard.admit()
        } else {
            Ok(())
        };
        let queued = match (batch.encode_error.take(), admitted) {
            (Some(e), _) | (None, Err(e)) => Err(e),
            (None, Ok(())) if batch.is_empty() && !durable => Ok(None),
            (None, Ok(())) => Ok(Some(self.inner.committer.submit(batch, durable))),
        };
        async move {
            match queued? {
                Some(outcome) => outcome.await.unwrap_or(Err(StoreError::Stopped)),
                None => Ok(Vec::new()),
            }
        }
    }

    /// The sequence number of the newest event.
    pub fn last_seq(&self) -> u64 {
        *self.inner.last_seq.borrow()
    }

    /// A receiver that changes whenever new events are committed.
    pub fn watch_seq(&self) -> watch::Receiver<u64> {
        self.inner.last_seq.clone()
    }

    /// Up to `limit` events with sequence greater than `after`, in order.
    pub fn events_after(&self, after: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let start = after.saturating_add(1).to_be_bytes();
        let mut out = Vec::new();
        for entry in self.inner.events.range(start..) {
            if out.len() >= limit {
                break;
            }
            let (key, bytes) = entry.map_err(|source| StoreError::Sled { op: "scan", source })?;
            out.push(decode_event(&key, &bytes)?);
        }
        Ok(out)
    }

    /// Up to `limit` events after `after`, keeping only those `wanted` accepts from a look at
    /// their type and their data's JSON text; returns them and the sequence number of the last
    /// event looked at (`None` when there was none). The others are never decoded into values:
    /// a reader that wants few of the events (the per-activeflow webhooks) pays little for
    /// the rest.
    pub fn events_after_filtered(
        &self,
        after: u64,
        limit: usize,
        wanted: impl Fn(&str, &serde_json::value::RawValue) -> bool,
    ) -> Result<(Vec<Event>, Option<u64>), StoreError> {
        /// The parts of a stored event a filter looks at, borrowed from its JSON.
        #[derive(Deserialize)]
        struct Glance<'a> {
            #[serde(rename = "type", borrow)]
            kind: std::borrow::Cow<'a, str>,
            #[serde(borrow)]
            data: &'a serde_json::value::RawValue,
        }
        let start = after.saturating_add(1).to_be_bytes();
        let mut out = Vec::new();
        let mut last = None;
        for entry in self.inner.events.range(start..).take(limit) {
            let (key, bytes) = entry.map_err(|source| StoreError::Sled { op: "scan", source })?;
            let json = codec::unpack(&bytes).map_err(|reason| StoreError::Corrupt {
                table: "events",
                key: hex::encode(&key),
                reason,
            })?;
            let glance: Glance<'_> =
                serde_json::from_slice(&json).map_err(|e| StoreError::Corrupt {
                    table: "events",
                    key: hex::encode(&key),
                    reason: e.to_string(),
                })?;
            if wanted(&glance.kind, glance.data) {
                out.push(decode_event(&key, &json)?);
            }
            last = Some(seq_from_key(&key)?);
        }
        Ok((out, last))
    }

    /// Deletes events with sequence `<= upto` (log retention); returns how many went.
    ///
    /// Deletes in sled batches of 1,024 keys: one log write per chunk instead of one per event.
    pub fn prune_events(&self, upto: u64) -> Result<usize, StoreError> {
        const CHUNK: usize = 1024;
        let mut removed = 0;
        let end = upto.saturating_add(1).to_be_bytes();
        loop {
            let mut batch = sled::Batch::default();
            let mut n = 0;
            for entry in self.inner.events.range(..end).take(CHUNK) {
                let (key, _) = entry.map_err(|source| StoreError::Sled { op: "scan", source })?;
                batch.remove(key);
                n += 1;
            }
            if n == 0 {
                return Ok(removed);
            }
            self.inner
                .events
                .apply_batch(batch)
                .map_err(|source| StoreError::Sled {
                    op: "remove",
                    source,
                })?;
            removed += n;
        }
    }

    /// The sequence number of the newest event committed before `cutoff` (0 if none): what
    /// age-based retention may prune.
    pub fn last_seq_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        #[derive(Deserialize)]
        struct Stamp {
            time: DateTime<Utc>,
        }
        let mut last = 0;
        for entry in self.inner.events.iter() {
            let (key, bytes) = entry.map_err(|source| StoreError::Sled { op: "scan", source })?;
            let corrupt = |reason: String| StoreError::Corrupt {
                table: "events",
                key: hex::encode(&key),
                reason,
            };
            let json = codec::unpack(&bytes).map_err(corrupt)?;
            let stamp: Stamp = serde_json::from_slice(&json).map_err(|e| corrupt(e.to_string()))?;
            if stamp.time >= cutoff {
                break;
            }
            last = seq_from_key(&key)?;
        }
        Ok(last)
    }

    /// Reads a small value from the meta tree.
    pub fn meta_get<V: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<V>, StoreError> {
        match self
            .inner
            .meta
            .get(key)
            .map_err(|source| StoreError::Sled { op: "get", source })?
        {
            Some(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| StoreError::Corrupt {
                        table: "meta",
                        key: key.to_owned(),
                        reason: e.to_string(),
                    })
            }
            None => Ok(None),
        }
    }

    /// Writes a small value to the meta tree.
    pub fn meta_put<V: Serialize>(&self, key: &str, value: &V) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|source| StoreError::Encode {
            table: "meta",
            source,
        })?;
        self.inner
            .meta
            .insert(key, bytes)
            .map_err(|source| StoreError::Sled {
                op: "insert",
                source,
            })?;
        Ok(())
    }
}

/// How long [`Store::open`] waits for a database whose lock is held. sled keeps its file
/// open for a moment after its last handle is gone (the final log flush finishes on sled's
/// IO threads, which hold the file until they return), so a store reopened at once in the
/// same process could find its own lock still held (seen under load in
/// `reopening_keeps_sequence_and_refuses_newer_schema`). A lock that outlasts this wait is
/// another opener's: a second daemon on the same data directory.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Waits up to `limit` for the advisory lock on sled's file `file` to be free; `true` when
/// it was. The lock is taken (blocking) on a helper thread and let go at once: a blocking
/// `flock` wakes when the holder closes the file, with no polling. After a timeout the
/// helper stays blocked until the holder lets go, then releases at once.
fn lock_released(file: &Path, limit: std::time::Duration) -> bool {
    let Ok(file) = std::fs::File::open(file) else {
        return false;
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::Builder::new()
        .name("store-lock-wait".into())
        .spawn(move || {
            let taken = file.lock().is_ok();
            if taken {
                let _ = file.unlock();
            }
            let _ = tx.send(taken);
        });
    waiter.is_ok() && rx.recv_timeout(limit).unwrap_or(false)
}

fn classify_open_error(path: &Path, source: sled::Error) -> StoreError {
    if let sled::Error::Io(io) = &source {
        // sled takes an exclusive advisory lock on the db file; a second opener sees
        // WouldBlock ("could not acquire lock").
        if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock") {
            return StoreError::Locked {
                path: path.to_owned(),
            };
        }
    }
    StoreError::Open {
        path: path.to_owned(),
        source,
    }
}

fn check_schema(db: &sled::Db, meta: &sled::Tree, path: &Path) -> Result<(), StoreError> {
    let stored = meta
        .get(SCHEMA_KEY)
        .map_err(|source| StoreError::Sled { op: "get", source })?;
    match stored {
        Some(bytes) => {
            let raw: [u8; 4] = bytes.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                table: "meta",
                key: "schema_version".into(),
                reason: format!("expected 4 bytes, found {}", bytes.len()),
            })?;
            let found = u32::from_be_bytes(raw);
            if found > SCHEMA_VERSION {
                return Err(StoreError::NewerSchema {
                    path: path.to_owned(),
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            if found < SCHEMA_VERSION {
                let reached = migrate::run(db, found)?;
                db.flush().map_err(|source| StoreError::Sled {
                    op: "flush",
                    source,
                })?;
                meta.insert(SCHEMA_KEY, &reached.to_be_bytes())
                    .map_err(|source| StoreError::Sled {
                        op: "insert",
                        source,
                    })?;
                tracing::info!(from = found, to = reached, "database migrated");
            }
            Ok(())
        }
        None => {
            // A database with data but no version was not written by Flowgate.
            let foreign = db.tree_names().iter().any(|name| {
                name.as_ref() != b"__sled__default"
                    && name.as_ref() != b"meta"
                    && db.open_tree(name).map(|t| !t.is_empty()).unwrap_or(true)
            });
            if foreign {
                return Err(StoreError::Corrupt {
                    table: "meta",
                    key: "schema_version".into(),
                    reason: "the database holds data but no schema version; it was not written by Flowgate".into(),
                });
            }
            meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())
                .map_err(|source| StoreError::Sled {
                    op: "insert",
                    source,
                })?;
            Ok(())
        }
    }
}

/// An event as stored (JSON, compressed when large; see [`codec`]).
fn decode_event(key: &[u8], bytes: &[u8]) -> Result<Event, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        table: "events",
        key: hex::encode(key),
        reason,
    };
    let json = codec::unpack(bytes).map_err(corrupt)?;
    serde_json::from_slice(&json).map_err(|e| corrupt(e.to_string()))
}

fn seq_from_key(key: &[u8]) -> Result<u64, StoreError> {
    let raw: [u8; 8] = key.try_into().map_err(|_| StoreError::Corrupt {
        table: "events",
        key: hex::encode(key),
        reason: "event key is not an 8-byte sequence number".into(),
    })?;
    Ok(u64::from_be_bytes(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Rec {
        name: String,
    }

    #[test]
    fn batch_commits_records_and_gap_free_events() {
        let store = Store::temporary().unwrap();
        let table: Table<Rec> = store.table("recs").unwrap();
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        let mut batch = Batch::new();
        batch.put(&table, a, &Rec { name: "a".into() }).unwrap();
        batch.event("rec_created", a, serde_json::json!({"name": "a"}));
        batch.put(&table, b, &Rec { name: "b".into() }).unwrap();
        batch.event("rec_created", b, serde_json::json!({"name": "b"}));
        assert_eq!(store.commit(batch).unwrap(), vec![1, 2]);
        let mut batch = Batch::new();
        batch.remove(&table, a);
        batch.event("rec_deleted", a, serde_json::Value::Null);
        assert_eq!(store.commit(batch).unwrap(), vec![3]);

        assert_eq!(table.get(a).unwrap(), None);
        assert_eq!(table.get(b).unwrap(), Some(Rec { name: "b".into() }));
        let events = store.events_after(1, 10).unwrap();
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(events[1].kind, "rec_deleted");
        assert_eq!(store.last_seq(), 3);
        assert_eq!(store.prune_events(2).unwrap(), 2);
        assert_eq!(store.events_after(0, 10).unwrap().len(), 1);
    }

    #[test]
    fn paging_walks_in_key_order() {
        let store = Store::temporary().unwrap();
        let table: Table<Rec> = store.table("recs").unwrap();
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
        for (i, id) in ids.iter().enumerate() {
            table
                .put(
                    *id,
                    &Rec {
                        name: i.to_string(),
                    },
                )
                .unwrap();
        }
        let first = table.page(None, 2).unwrap();
        assert_eq!(
            first
                .items
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>(),
            ["0", "1"]
        );
        let second = table.page(first.next, 2).unwrap();
        assert_eq!(
            second
                .items
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>(),
            ["2", "3"]
        );
        let third = table.page(second.next, 2).unwrap();
        assert_eq!(third.items.len(), 1);
        assert!(third.next.is_none());
    }

    #[test]
    fn reopening_keeps_sequence_and_refuses_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
            let mut batch = Batch::new();
            batch.event("x", Uuid::nil(), serde_json::Value::Null);
            store.commit(batch).unwrap();
            store.flush_blocking().unwrap();
        }
        {
            let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
            assert_eq!(store.last_seq(), 1);
            let mut batch = Batch::new();
            batch.event("y", Uuid::nil(), serde_json::Value::Null);
            assert_eq!(store.commit(batch).unwrap(), vec![2]);
            store
                .inner
                .meta
                .insert(SCHEMA_KEY, &(SCHEMA_VERSION + 1).to_be_bytes())
                .unwrap();
            store.flush_blocking().unwrap();
        }
        match Store::open(dir.path(), &StoreOptions::default()) {
            Err(StoreError::NewerSchema { found, .. }) => assert_eq!(found, SCHEMA_VERSION + 1),
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("a newer schema must be refused"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_flushes_share_and_all_return() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        let table: Table<Rec> = store.table("recs").unwrap();
        let mut tasks = Vec::new();
        for i in 0..64 {
            let store = store.clone();
            let table = table.clone();
            tasks.push(tokio::spawn(async move {
                table
                    .put(
                        Uuid::now_v7(),
                        &Rec {
                            name: i.to_string(),
                        },
                    )
                    .unwrap();
                store.flush().await.unwrap();
            }));
        }
        for t in tasks {
            tokio::time::timeout(std::time::Duration::from_secs(60), t)
                .await
                .unwrap()
                .unwrap();
        }
        assert_eq!(table.len(), 64);
    }

    #[test]
    fn a_full_disk_refuses_creations_but_not_updates_or_deletes() {
        let store = Store::temporary().unwrap();
        let table: Table<Rec> = store.table("recs").unwrap();
        let id = Uuid::now_v7();
        let mut batch = Batch::new();
        batch.put(&table, id, &Rec { name: "a".into() }).unwrap();
        batch.event("rec_created", id, serde_json::Value::Null);
        store.commit(batch).unwrap();

        store
            .disk_guard()
            .set(DiskState::Full, 2048 * 1024 * 1024, 1024 * 1024 * 1024);
        let mut batch = Batch::new();
        batch
            .put(&table, Uuid::now_v7(), &Rec { name: "b".into() })
            .unwrap();
        batch.event("rec_created", id, serde_json::Value::Null);
        match store.commit(batch) {
            Err(StoreError::DiskFull { used_mib, max_mib }) => {
                assert_eq!((used_mib, max_mib), (2048, 1024));
            }
            other => panic!("a creation must be refused, got {other:?}"),
        }
        assert_eq!(table.len(), 1);

        let mut batch = Batch::new();
        batch.put(&table, id, &Rec { name: "a2".into() }).unwrap();
        batch.event("rec_updated", id, serde_json::Value::Null);
        store.commit(batch).unwrap();
        let mut batch = Batch::new();
        batch.remove(&table, id);
        store.commit(batch).unwrap();
        assert!(table.is_empty());

        store.disk_guard().set(DiskState::Ok, 0, 1024 * 1024 * 1024);
        let mut batch = Batch::new();
        batch.put(&table, id, &Rec { name: "c".into() }).unwrap();
        batch.event("rec_created", id, serde_json::Value::Null);
        store.commit(batch).unwrap();
    }

    #[test]
    fn bytes_committed_count_keys_values_and_events() {
        let store = Store::temporary().unwrap();
        let table: Table<Rec> = store.table("recs").unwrap();
        let mut batch = Batch::new();
        batch
            .put(&table, Uuid::nil(), &Rec { name: "x".into() })
            .unwrap();
        store.commit(batch).unwrap();
        // 16-byte key + {"name":"x"}.
        assert_eq!(store.bytes_committed(), 16 + 12);
    }

    #[test]
    fn events_are_pruned_in_chunks_and_found_by_age() {
        let store = Store::temporary().unwrap();
        for _ in 0..3000 {
            let mut batch = Batch::new();
            batch.event("x", Uuid::nil(), serde_json::Value::Null);
            store.commit(batch).unwrap();
        }
        let later = Utc::now() + chrono::TimeDelta::hours(1);
        assert_eq!(store.last_seq_before(later).unwrap(), 3000);
        let earlier = Utc::now() - chrono::TimeDelta::hours(1);
        assert_eq!(store.last_seq_before(earlier).unwrap(), 0);
        assert_eq!(store.prune_events(2500).unwrap(), 2500);
        assert_eq!(store.events_after(0, 10).unwrap()[0].seq, 2501);
    }

    #[test]
    fn older_databases_read_as_they_are_and_are_marked_current() {
        let dir = tempfile::tempdir().unwrap();
        let id = Uuid::now_v7();
        {
            let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
            let table: Table<Rec> = store.table("recs").unwrap();
            // What versions 1 and 2 wrote: plain JSON, however large.
            let name = "x".repeat(2000);
            table
                .tree
                .insert(id.as_bytes(), serde_json::to_vec(&Rec { name }).unwrap())
                .unwrap();
            store
                .inner
                .meta
                .insert(SCHEMA_KEY, &1u32.to_be_bytes())
                .unwrap();
            store.flush_blocking().unwrap();
        }
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        let table: Table<Rec> = store.table("recs").unwrap();
        assert_eq!(table.get(id).unwrap().unwrap().name.len(), 2000);
        let stored = store.inner.meta.get(SCHEMA_KEY).unwrap().unwrap();
        assert_eq!(stored.as_ref(), &SCHEMA_VERSION.to_be_bytes());
        // New writes of large values are compressed, and read back.
        table
            .put(
                id,
                &Rec {
                    name: "y".repeat(2000),
                },
            )
            .unwrap();
        assert!(table.stored_len(id).unwrap().unwrap() < 200);
        assert_eq!(table.get(id).unwrap().unwrap().name, "y".repeat(2000));
    }

    #[test]
    fn second_opener_gets_a_clear_lock_error() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        let started = std::time::Instant::now();
        match Store::open(dir.path(), &StoreOptions::default()) {
            Err(StoreError::Locked { .. }) => {}
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("the second opener must be refused"),
        }
        assert!(started.elapsed() >= LOCK_WAIT, "refused after the wait");
    }

    #[test]
    fn an_opener_gets_a_store_closed_while_it_opens() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        let (go, gone) = std::sync::mpsc::channel::<()>();
        let closer = std::thread::spawn(move || {
            let _ = gone.recv();
            drop(first);
        });
        go.send(()).unwrap();
        // Whether the close comes before the first attempt or while the opener waits for
        // the lock, the opener gets the store.
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        closer.join().unwrap();
        drop(store);
        assert!(lock_released(
            &dir.path().join("db").join("db"),
            std::time::Duration::from_secs(10)
        ));
    }
}
