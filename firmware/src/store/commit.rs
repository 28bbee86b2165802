//! The commit and flush threads: every [`Batch`] goes through one thread, which applies
//! whatever is queued as one sled transaction; batches that must be durable (and plain
//! flushes) then go to a second thread, which makes everything queued for it durable with
//! one flush (group commit at both levels, as a database's log writer does). A plain commit
//! never waits behind an fsync.
//!
//! Why one thread: each sled 0.34 transaction (and `Tree::apply_batch`) pins the log, which
//! seals and writes the current IO buffer twice, each write followed by a
//! `sync_file_range` on sled's IO pool: a fixed cost of two synchronous log writes per
//! transaction however small it is, ~40 % of the machine's CPU under API load when every
//! task committed on its own. While a thread works on one group, the next one queues up, so
//! under load the fixed costs are paid once per group, and a lone request pays no added
//! delay. One flushing thread also keeps sled's `flush_async` out of the picture: four or
//! more of those at once could leave sled 0.34.7's IO pool with every thread waiting for a log
//! write queued on that same pool (released 0.34.7; see `vendor/sled/PATCHES.md`).
//!
//! The thread is the one place sequence numbers are allocated: sequence order is commit
//! order without a lock, and the log stays gap-free. A group's transaction is atomic as a
//! whole; when it fails, its batches are retried one by one so that each caller hears its
//! own outcome.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use chrono::Utc;
use futures::channel::oneshot;
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::watch;
use uuid::Uuid;

use super::{Batch, StoreError};

/// Most batches combined into one transaction (bounds the transaction's size and the wait
/// of the first batch in a very long queue).
const MAX_GROUP: usize = 256;

/// How a commit went: the sequence numbers of the batch's events.
pub(super) type Outcome = Result<Vec<u64>, StoreError>;

struct Job {
    batch: Batch,
    /// Answer only once the batch (and everything written before) is on disk.
    durable: bool,
    reply: oneshot::Sender<Outcome>,
}

/// A committed batch that waits for the flush thread.
struct Committed {
    outcome: Outcome,
    reply: oneshot::Sender<Outcome>,
}

/// The handle on the commit and flush threads. Dropping it lets them finish what is queued
/// and waits for them, so the database is closed when the [`Store`](super::Store) is gone.
pub(super) struct Committer {
    queue: Option<mpsc::Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Committer {
    /// Starts the threads; `last` is the newest sequence number in `events`.
    pub(super) fn start(
        db: sled::Db,
        events: sled::Tree,
        last: u64,
        seq_tx: watch::Sender<u64>,
        written: Arc<AtomicU64>,
    ) -> Result<Self, StoreError> {
        let (queue, jobs) = mpsc::channel();
        let (to_flush, flushes) = mpsc::channel();
        let spawn = |name: &str, work: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(work)
                .map_err(|e| StoreError::Sled {
                    op: "start a store thread",
                    source: sled::Error::Io(e),
                })
        };
        let flusher = spawn("store-flush", Box::new(move || flush_loop(&flushes, &db)))?;
        let committer = spawn(
            "store-commit",
            Box::new(move || commit_loop(&jobs, &to_flush, &events, last, &seq_tx, &written)),
        )?;
        Ok(Self {
            queue: Some(queue),
            // Joined in this order: the commit thread hands its last work to the flusher.
            threads: vec![committer, flusher],
        })
    }

    /// Queues `batch` (which may be empty: a flush); the receiver hears once it is
    /// committed, and flushed if `durable` (or is cancelled when the threads are gone).
    pub(super) fn submit(&self, batch: Batch, durable: bool) -> oneshot::Receiver<Outcome> {
        let (reply, outcome) = oneshot::channel();
        if let Some(queue) = &self.queue {
            // A closed queue drops the job and with it `reply`: the caller sees the cancel.
            let _ = queue.send(Job {
                batch,
                durable,
                reply,
            });
        }
        outcome
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        drop(self.queue.take());
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Takes everything queued (up to `MAX_GROUP`), waiting for the first item.
fn next_group<T>(queue: &mpsc::Receiver<T>) -> Option<Vec<T>> {
    let mut group = vec![queue.recv().ok()?];
    while group.len() < MAX_GROUP {
        match queue.try_recv() {
            Ok(item) => group.push(item),
            Err(_) => break,
        }
    }
    Some(group)
}

/// Commits groups; answers plain commits at once and hands durable ones to the flusher, so
/// a commit never waits behind an fsync.
fn commit_loop(
    jobs: &mpsc::Receiver<Job>,
    to_flush: &mpsc::Sender<Committed>,
    events: &sled::Tree,
    mut seq: u64,
    seq_tx: &watch::Sender<u64>,
    written: &AtomicU64,
) {
    while let Some(group) = next_group(jobs) {
        let outcomes = commit_group(events, &mut seq, &group, written);
        if *seq_tx.borrow() != seq {
            seq_tx.send_replace(seq);
        }
        for (job, outcome) in group.into_iter().zip(outcomes) {
            if job.durable && outcome.is_ok() {
                let committed = Committed {
                    outcome,
                    reply: job.reply,
                };
                // The flusher only stops after this thread: a failed send cannot happen,
                // and would drop the reply (the caller sees the cancel) if it did.
                let _ = to_flush.send(committed);
            } else {
                let _ = job.reply.send(outcome);
            }
        }
    }
}

/// Flushes once for everything queued, then answers it.
fn flush_loop(flushes: &mpsc::Receiver<Committed>, db: &sled::Db) {
    while let Some(group) = next_group(flushes) {
        match db.flush() {
            Ok(_) => {
                for committed in group {
                    let _ = committed.reply.send(committed.outcome);
                }
            }
            Err(source) => {
                // sled's error is not Clone: the first caller gets it, the others its text.
                let text = source.to_string();
                let mut source = Some(source);
                for committed in group {
                    let source = source
                        .take()
                        .unwrap_or_else(|| sled::Error::Io(std::io::Error::other(text.clone())));
                    let _ = committed.reply.send(Err(StoreError::Sled {
                        op: "flush",
                        source,
                    }));
                }
            }
        }
    }
}

/// Commits the group's batches in one transaction, or one by one when that fails.
fn commit_group(
    events: &sled::Tree,
    seq: &mut u64,
    group: &[Job],
    written: &AtomicU64,
) -> Vec<Outcome> {
    let mut outcomes: Vec<Outcome> = group.iter().map(|_| Ok(Vec::new())).collect();
    let pending: Vec<usize> = (0..group.len())
        .filter(|&i| !group[i].batch.is_empty())
        .collect();
    if pending.is_empty() {
        return outcomes;
    }
    match apply(
        events,
        seq,
        pending.iter().map(|&i| &group[i].batch),
        written,
    ) {
        Ok(numbered) => {
            for (&i, seqs) in pending.iter().zip(numbered) {
                outcomes[i] = Ok(seqs);
            }
        }
        Err(e) if pending.len() == 1 => outcomes[pending[0]] = Err(e),
        Err(_) => {
            for &i in &pending {
                outcomes[i] = apply(events, seq, std::iter::once(&group[i].batch), written)
                    .map(|mut numbered| numbered.pop().unwrap_or_default());
            }
        }
    }
    outcomes
}

/// An event as stored: its data was encoded by the caller when it built the batch.
#[derive(Serialize)]
struct StoredEvent<'a> {
    seq: u64,
    time: chrono::DateTime<Utc>,
    #[serde(rename = "type")]
    kind: &'a str,
    resource_id: Uuid,
    data: &'a RawValue,
}

/// Applies `batches` in one transaction, their events numbered after `seq`; advances `seq`
/// only when the transaction committed. Returns each batch's sequence numbers.
fn apply<'a>(
    events: &sled::Tree,
    seq: &mut u64,
    batches: impl Iterator<Item = &'a Batch> + Clone,
    written: &AtomicU64,
) -> Result<Vec<Vec<u64>>, StoreError> {
    let now = Utc::now();
    let mut next = *seq;
    let mut numbered = Vec::new();
    let mut encoded = Vec::new();
    for batch in batches.clone() {
        let mut seqs = Vec::with_capacity(batch.events.len());
        for pending in &batch.events {
            next += 1;
            let bytes = serde_json::to_vec(&StoredEvent {
                seq: next,
                time: now,
                kind: &pending.kind,
                resource_id: pending.resource_id,
                data: &pending.data,
            })
            .map(super::codec::pack)
            .map_err(|source| StoreError::Encode {
                table: "events",
                source,
            })?;
            encoded.push((next, bytes));
            seqs.push(next);
        }
        numbered.push(seqs);
    }

    // Distinct trees touched by the group, the event log last.
    let mut trees: Vec<&sled::Tree> = Vec::new();
    let mut index = Vec::new();
    for op in batches.clone().flat_map(|b| &b.ops) {
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
    trees.push(events);

    use sled::Transactional;
    let result: sled::transaction::TransactionResult<(), std::convert::Infallible> =
        trees.as_slice().transaction(|tx| {
            for (op, &pos) in batches.clone().flat_map(|b| &b.ops).zip(&index) {
                match &op.value {
                    Some(v) => tx[pos].insert(op.key.as_slice(), v.as_slice())?,
                    None => tx[pos].remove(op.key.as_slice())?,
                };
            }
            for (seq, bytes) in &encoded {
                tx[events_pos].insert(&seq.to_be_bytes(), bytes.as_slice())?;
            }
            Ok(())
        });
    match result {
        Ok(()) => {
            *seq = next;
            let ops: usize = batches
                .flat_map(|b| &b.ops)
                .map(|op| op.key.len() + op.value.as_ref().map_or(0, Vec::len))
                .sum();
            let events: usize = encoded.iter().map(|(_, bytes)| 8 + bytes.len()).sum();
            written.fetch_add(
                u64::try_from(ops + events).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
            Ok(numbered)
        }
        Err(sled::transaction::TransactionError::Storage(source)) => Err(StoreError::Sled {
            op: "commit",
            source,
        }),
        Err(sled::transaction::TransactionError::Abort(never)) => match never {},
    }
}
