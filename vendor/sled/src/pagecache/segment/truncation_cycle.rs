//! flowgate patch: a deterministic reproduction of sled 0.34.7's write stall
//! (see vendor/sled/PATCHES.md). Compiled for tests only.
//!
//! The stall is a cycle between three parties:
//! - a writer that needs a new segment calls `SegmentAccountant::next`
//!   holding the segment accountant's mutex, and `bump_tip` waits there for a
//!   pending truncation of the file's tail;
//! - every IO pool thread is in `IoBufs::write_to_log`, whose last step
//!   (`sa_stabilize` → `with_sa`) needs that mutex;
//! - released 0.34.7 queued the truncation on that same pool.
//!
//! Soaks hit it only by luck of timing. This test builds the cycle step by
//! step with sled's own objects, waiting for each step to be reached rather
//! than sleeping: a real `Db`, real log writes sealed onto the IO pool, and
//! the real `free_segment` → `truncate` → `next` → `bump_tip` path. On
//! released 0.34.7 it reports "deadlock reproduced" after its deadline (and
//! with `SLED_STALL_HOLD=1` keeps the process stuck for a debugger); with
//! the patch the truncation runs on its own thread and everything finishes.

use std::sync::{Arc, atomic::Ordering, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use super::{Free, Segment, SegmentAccountant};
use crate::pagecache::{LogKind, LogOffset, Lsn, PageId};
use crate::threadpool::tests::{
    DEADLINE, POOL_TEST_LOCK, queued_tasks, total_threads,
};
use crate::{Config, IVec, Result, pin};

/// The page id the filler log writes are reserved for. Only the log sees
/// these writes (the page cache never links them), so any id works.
const FILLER_PID: PageId = 4;

/// How far the writer stands in its critical section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Starting,
    HoldingLock,
    MayTruncate,
    NeedsNewSegment,
}

/// The writer's step, observable and awaitable by the test.
struct Progress {
    step: parking_lot::Mutex<Step>,
    changed: parking_lot::Condvar,
}

impl Progress {
    fn set(&self, step: Step) {
        *self.step.lock() = step;
        self.changed.notify_all();
    }

    fn get(&self) -> Step {
        *self.step.lock()
    }

    /// Waits until `step` is reached; false at the deadline.
    fn wait_for(&self, step: Step, deadline: Instant) -> bool {
        let mut current = self.step.lock();
        while *current < step {
            if self.changed.wait_until(&mut current, deadline).timed_out() {
                return *current >= step;
            }
        }
        true
    }
}

/// Takes the three segments at the file's tail for the writer: they go to
/// LSNs far above anything the log will write during the test, so only
/// the writer ever uses them.
fn claim_tail_segments(
    sa: &mut SegmentAccountant,
    first_lsn: Lsn,
) -> Result<Vec<LogOffset>> {
    let segment_size = sa.config.segment_size;
    assert!(sa.free.is_empty(), "a fresh database has no free segment");
    let tip = sa.tip;
    let mut lids = Vec::new();
    for i in 0..3 {
        lids.push(sa.next(first_lsn + (i * segment_size) as Lsn)?);
    }
    let expected: Vec<LogOffset> =
        (0..3).map(|i| tip + (i * segment_size) as LogOffset).collect();
    assert_eq!(lids, expected, "next() grows the file at its tip");
    Ok(lids)
}

/// Frees the claimed segments the way the cleaner frees emptied ones. Once
/// the last two are free and at the tail, `free_segment` truncates the file
/// to drop them (`SegmentAccountant::truncate`, the code under test).
fn free_tail_segments(
    sa: &mut SegmentAccountant,
    lids: &[LogOffset],
) -> Result<()> {
    for &lid in lids {
        let idx = sa.segment_id(lid);
        let lsn = sa.segments[idx].lsn();
        sa.segments[idx] = Segment::Free(Free { previous_lsn: Some(lsn) });
        sa.free_segment(lid)?;
    }
    assert_eq!(sa.async_truncations.len(), 2, "the tail is being truncated");
    assert_eq!(sa.free.len(), 1, "one freed segment stays on the free list");
    Ok(())
}

/// Seals one small log write onto the IO pool and waits until its thread
/// is past the disk write (`mark_interval` made it stable): from there the
/// task only needs the segment accountant's mutex, which the writer holds,
/// so the pool thread running it stays blocked in `write_to_log`.
///
/// Returns false if the write was not taken by a pool thread because every
/// thread is blocked already (the pool may shrink while the test runs).
fn block_one_pool_thread(
    log: &crate::pagecache::logger::Log,
    blocked: usize,
    deadline: Instant,
) -> bool {
    let guard = pin();
    let reservation = log
        .reserve(
            LogKind::Replace,
            FILLER_PID,
            &IVec::from(&b"filler"[..]),
            &guard,
        )
        .expect("reserve a log write");
    let (lsn, _) = reservation.complete().expect("complete a log write");
    log.roll_iobuf().expect("seal the IO buffer onto the pool");

    let iobufs = &log.iobufs;
    let mut intervals = iobufs.intervals.lock();
    while iobufs.stable() < lsn {
        if blocked >= total_threads() {
            return false;
        }
        assert!(
            Instant::now() < deadline,
            "a log write was not written within {:?}",
            DEADLINE
        );
        // bounded slices only to re-read the pool's size; the write's
        // progress itself is signalled by `interval_updated`
        let _ = iobufs
            .interval_updated
            .wait_for(&mut intervals, Duration::from_millis(100));
    }
    true
}

#[test]
fn tail_truncation_awaited_under_the_sa_lock_completes_with_the_pool_full() {
    let _serial = POOL_TEST_LOCK.lock();
    let deadline = Instant::now() + DEADLINE;

    let db = Config::new()
        .temporary(true)
        .flush_every_ms(None)
        .open()
        .expect("open a temporary database");
    db.insert(b"key", b"value").unwrap();
    db.flush().unwrap();

    let log = &db.context.pagecache.log;
    // Each log write queued or running on the pool holds a clone of
    // `iobufs` until it returns. The setup's last write may still be in its
    // final step (which takes the segment accountant's mutex): let it end,
    // so that from here on the only pool tasks of this database are the
    // test's own.
    while crate::Arc::strong_count(&log.iobufs) > 1 {
        assert!(
            Instant::now() < deadline,
            "the setup's log writes did not finish within {:?}",
            DEADLINE
        );
        thread::sleep(Duration::from_millis(1));
    }
    let iobufs = log.iobufs.clone();
    let segment_size = log.config.segment_size as Lsn;
    let first_lsn =
        (iobufs.max_reserved_lsn.load(Ordering::SeqCst) / segment_size + 64)
            * segment_size;

    // 1. The writer takes the segment accountant's mutex and keeps it, as
    //    `maybe_seal_and_write_iobuf` does around `next`.
    let progress = Arc::new(Progress {
        step: parking_lot::Mutex::new(Step::Starting),
        changed: parking_lot::Condvar::new(),
    });
    let (done_tx, done_rx) = mpsc::channel();
    let writer = {
        let progress = progress.clone();
        let iobufs = iobufs.clone();
        thread::Builder::new()
            .name("stall-writer".to_string())
            .spawn(move || {
                let result: Result<_> = iobufs.with_sa(|sa| {
                    let lids = claim_tail_segments(sa, first_lsn)?;
                    progress.set(Step::HoldingLock);
                    if !progress.wait_for(Step::MayTruncate, deadline) {
                        return Ok(None);
                    }
                    // 3. The tail becomes free: its truncation is queued...
                    free_tail_segments(sa, &lids)?;
                    // ...the free list serves one more segment, then the
                    //    next one must come from the tip: `bump_tip` waits
                    //    for the truncation, still under the mutex.
                    sa.next(first_lsn + 3 * segment_size)?;
                    progress.set(Step::NeedsNewSegment);
                    let lid = sa.next(first_lsn + 4 * segment_size)?;
                    // the file grows again where it was truncated to
                    Ok(Some((lid, lids[1])))
                });
                let _ = done_tx.send(result);
            })
            .expect("start the writer thread")
    };
    assert!(
        progress.wait_for(Step::HoldingLock, deadline),
        "the writer never got the segment accountant's mutex"
    );

    // 2. Every IO pool thread gets a log write that ends up waiting for
    //    that mutex.
    let mut blocked = 0;
    while blocked < total_threads() {
        if block_one_pool_thread(log, blocked, deadline) {
            blocked += 1;
        }
    }
    eprintln!(
        "{} of the IO pool's {} threads blocked in write_to_log; \
         the writer may truncate now",
        blocked,
        total_threads()
    );
    progress.set(Step::MayTruncate);

    match done_rx.recv_timeout(DEADLINE) {
        Ok(result) => {
            let result =
                result.expect("the writer's segment accounting failed");
            let (lid, expected) =
                result.expect("the writer gave up waiting for the test");
            assert_eq!(lid, expected, "next() grows the truncated tail");
            writer.join().unwrap();
        }
        Err(_) => report_deadlock(db, progress.get(), blocked),
    }

    // 4. The cycle is broken: the blocked log writes finish and the store
    //    takes (and makes durable) a new write.
    let (flushed_tx, flushed_rx) = mpsc::channel();
    let db = Arc::new(db);
    let flusher = {
        let db = db.clone();
        thread::spawn(move || {
            let result = db.insert(b"after", b"stall").and_then(|_| db.flush());
            let _ = flushed_tx.send(result.map(|_| ()));
        })
    };
    flushed_rx
        .recv_timeout(DEADLINE)
        .expect("the store did not take a write after the truncation")
        .expect("write after the truncation");
    flusher.join().unwrap();
}

/// The writer did not come back: say what is stuck where, then fail (or,
/// with `SLED_STALL_HOLD=1`, stay stuck so that a debugger can attach).
fn report_deadlock(db: crate::Db, step: Step, blocked: usize) -> ! {
    let queued = queued_tasks();
    if step != Step::NeedsNewSegment || blocked < total_threads() || queued == 0
    {
        std::mem::forget(db);
        panic!(
            "stuck, but not in the expected cycle: writer at step {:?}, {} of \
             {} pool threads blocked, {} task(s) queued",
            step,
            blocked,
            total_threads(),
            queued
        );
    }
    let report = format!(
        "deadlock reproduced: after {:?} the writer still holds the segment \
         accountant's mutex at step {:?} (waiting in SegmentAccountant::next \
         → bump_tip for the tail truncation); the IO pool has {} threads, {} \
         of them blocked in write_to_log waiting for that mutex, and {} \
         task(s) queued behind them (the truncations)",
        DEADLINE,
        step,
        total_threads(),
        blocked,
        queued,
    );
    if std::env::var_os("SLED_STALL_HOLD").is_some() {
        eprintln!(
            "{}; holding pid {} for a debugger",
            report,
            std::process::id()
        );
        loop {
            thread::park();
        }
    }
    // dropping the database would flush through the stuck log forever
    std::mem::forget(db);
    panic!("{}", report);
}
