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
//! transaction, and sequence numbers are allocated under a lock held across that commit, so
//! the log is gap-free and a reader that has seen sequence `n` has seen every change up to
//! `n`. That is what lets `GET /v1.0/gateway/events?after=SEQ` promise "no loss".
//!
//! # Durability
//!
//! sled keeps recent writes in memory and syncs them every `flush_every_ms`. Where the
//! gateway acknowledges something to the outside world — an SMS before the modem deletes it,
//! an API create before the response — the caller awaits [`Store::flush`] first
//! ("persist, then acknowledge"). Concurrent flushes share one fsync.
//!
//! # Liveness
//!
//! sled 0.34.7 can deadlock under a sustained write burst; [`watchdog`] notices a store that
//! takes no more writes so the daemon can exit and be restarted.

mod db;
mod table;
pub mod watchdog;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use uuid::Uuid;

pub use db::Db;
pub use table::{Page, Table};

/// The schema this build reads and writes. Bump it with a migration in [`Store::open`].
pub const SCHEMA_VERSION: u32 = 1;

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
}

struct Op {
    tree: sled::Tree,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
}

struct PendingEvent {
    kind: String,
    resource_id: Uuid,
    data: serde_json::Value,
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
        self.events.push(PendingEvent {
            kind: kind.into(),
            resource_id,
            data,
        });
        self
    }

    /// Moves every write and event of `later` to the end of this batch (a later write to the
    /// same key wins).
    pub fn append(&mut self, mut later: Batch) -> &mut Self {
        self.ops.append(&mut later.ops);
        self.events.append(&mut later.events);
        self
    }

    /// Whether the batch does nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.events.is_empty()
    }
}

/// The gateway's database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    path: PathBuf,
    meta: sled::Tree,
    events: sled::Tree,
    /// Last committed event sequence, held while a batch commits so sequence order is
    /// commit order.
    seq: Mutex<u64>,
    seq_tx: watch::Sender<u64>,
    /// Flush requests and whether one is running (see [`Store::flush`]).
    flush: Mutex<FlushState>,
    /// The highest flush ticket known to be on disk.
    flushed: watch::Sender<u64>,
}

#[derive(Default)]
struct FlushState {
    /// Tickets handed out; a flush started after ticket `n` was taken covers it.
    requested: u64,
    running: bool,
}

/// Clears the "running" flag if the flushing task is dropped mid-flush, so the next caller
/// takes over instead of everyone waiting forever.
struct Leading<'a>(&'a Inner);

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        self.0.flush.lock().running = false;
        // Wake the waiters: one of them leads the next flush.
        self.0.flushed.send_modify(|_| {});
    }
}

impl Store {
    /// Opens (or creates) the database in `dir`, checking the schema version.
    pub fn open(dir: &Path, options: &StoreOptions) -> Result<Self, StoreError> {
        let path = dir.join("db");
        let config = sled::Config::new()
            .path(&path)
            .cache_capacity(options.cache_bytes)
            .flush_every_ms(Some(options.flush_every_ms));
        let db = config
            .open()
            .map_err(|source| classify_open_error(&path, source))?;
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
        let (seq_tx, _) = watch::channel(last);
        let (flushed, _) = watch::channel(0);
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                path,
                meta,
                events,
                seq: Mutex::new(last),
                seq_tx,
                flush: Mutex::new(FlushState::default()),
                flushed,
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

    /// Commits `batch` atomically; returns the sequence numbers of its events.
    pub fn commit(&self, batch: Batch) -> Result<Vec<u64>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let now = Utc::now();
        let mut seq = self.inner.seq.lock();
        let first = *seq + 1;
        let mut events = Vec::with_capacity(batch.events.len());
        for (offset, pending) in (0u64..).zip(batch.events) {
            let event = Event {
                seq: first + offset,
                time: now,
                kind: pending.kind,
                resource_id: pending.resource_id,
                data: pending.data,
            };
            let bytes = serde_json::to_vec(&event).map_err(|source| StoreError::Encode {
                table: "events",
                source,
            })?;
            events.push((event.seq, bytes));
        }

        // Distinct trees touched by the batch, the event log last.
        let mut trees: Vec<&sled::Tree> = Vec::new();
        let mut index = Vec::with_capacity(batch.ops.len());
        for op in &batch.ops {
            let pos = match trees.iter().position(|t| t.name() == op.tree.name()) {
                Some(pos) => pos,
                None => {
                    trees.push(&op.tree);
                    trees.len() - 1
                }
            };
            index.push(pos);
        }
        let events_pos = trees.len();
        trees.push(&self.inner.events);

        use sled::Transactional;
        let result: sled::transaction::TransactionResult<(), std::convert::Infallible> =
            trees.as_slice().transaction(|tx| {
                for (op, &pos) in batch.ops.iter().zip(&index) {
                    match &op.value {
                        Some(v) => tx[pos].insert(op.key.as_slice(), v.as_slice())?,
                        None => tx[pos].remove(op.key.as_slice())?,
                    };
                }
                for (seq, bytes) in &events {
                    tx[events_pos].insert(&seq.to_be_bytes(), bytes.as_slice())?;
                }
                Ok(())
            });
        match result {
            Ok(()) => {}
            Err(sled::transaction::TransactionError::Storage(source)) => {
                return Err(StoreError::Sled {
                    op: "commit",
                    source,
                });
            }
            Err(sled::transaction::TransactionError::Abort(never)) => match never {},
        }
        let seqs: Vec<u64> = events.iter().map(|(s, _)| *s).collect();
        if let Some(&last) = seqs.last() {
            *seq = last;
            self.inner.seq_tx.send_replace(last);
        }
        Ok(seqs)
    }

    /// Waits until everything written so far is on disk.
    ///
    /// Concurrent callers share flushes (group commit): at most one `flush_async` runs at a
    /// time, and a caller whose writes it may not cover waits for the next one, which it may
    /// lead itself. Besides saving fsyncs, this avoids a sled 0.34.7 stall: with four or more
    /// concurrent `flush_async` calls its IO pool can end up with every thread waiting for a
    /// log write queued on that same pool.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let inner = &*self.inner;
        let mut done = inner.flushed.subscribe();
        let ticket = {
            let mut state = inner.flush.lock();
            state.requested += 1;
            state.requested
        };
        loop {
            if *done.borrow_and_update() >= ticket {
                return Ok(());
            }
            let lead = {
                let mut state = inner.flush.lock();
                if state.running {
                    None
                } else {
                    state.running = true;
                    // Every ticket taken so far belongs to writes already made.
                    Some(state.requested)
                }
            };
            match lead {
                Some(upto) => {
                    let guard = Leading(inner);
                    let result = inner.db.flush_async().await;
                    if result.is_ok() {
                        inner.flushed.send_modify(|c| *c = (*c).max(upto));
                    }
                    drop(guard);
                    result.map_err(|source| StoreError::Sled {
                        op: "flush",
                        source,
                    })?;
                }
                None => {
                    if done.changed().await.is_err() {
                        return Ok(()); // the store is gone with everything in it
                    }
                }
            }
        }
    }

    /// Blocking variant of [`Store::flush`] for shutdown paths outside the runtime.
    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        self.inner.db.flush().map_err(|source| StoreError::Sled {
            op: "flush",
            source,
        })?;
        Ok(())
    }

    /// The sequence number of the newest event.
    pub fn last_seq(&self) -> u64 {
        *self.inner.seq_tx.borrow()
    }

    /// A receiver that changes whenever new events are committed.
    pub fn watch_seq(&self) -> watch::Receiver<u64> {
        self.inner.seq_tx.subscribe()
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
            let event: Event = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                table: "events",
                key: hex::encode(&key),
                reason: e.to_string(),
            })?;
            out.push(event);
        }
        Ok(out)
    }

    /// Deletes events with sequence `<= upto` (log retention); returns how many went.
    pub fn prune_events(&self, upto: u64) -> Result<usize, StoreError> {
        let mut removed = 0;
        let end = upto.saturating_add(1).to_be_bytes();
        for entry in self.inner.events.range(..end) {
            let (key, _) = entry.map_err(|source| StoreError::Sled { op: "scan", source })?;
            self.inner
                .events
                .remove(key)
                .map_err(|source| StoreError::Sled {
                    op: "remove",
                    source,
                })?;
            removed += 1;
        }
        Ok(removed)
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
            // found < SCHEMA_VERSION: migrations go here when the schema changes.
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
    fn second_opener_gets_a_clear_lock_error() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        match Store::open(dir.path(), &StoreOptions::default()) {
            Err(StoreError::Locked { .. }) => {}
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("the second opener must be refused"),
        }
    }
}
