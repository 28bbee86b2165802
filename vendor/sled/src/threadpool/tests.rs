//! flowgate patch: tests of the IO pool's bookkeeping, plus the read-only
//! view of the pool that the truncation-cycle test in
//! `pagecache/segment/truncation_cycle.rs` needs. Compiled for tests only.
//!
//! These tests share the process-wide pool with every other test in the
//! crate, so the ones that occupy pool threads on purpose take
//! [`POOL_TEST_LOCK`] and never depend on the pool being otherwise idle.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::{QUEUE, TOTAL_THREAD_COUNT, WAITING_THREAD_COUNT, spawn};
use crate::SeqCst;

/// Bounds every wait of these tests. Reached only when the code under test
/// is broken (or the machine is stalled for a minute); a passing run waits
/// for events, never for this.
pub(crate) const DEADLINE: Duration = Duration::from_secs(60);

/// Serializes the tests that fill pool threads on purpose, so that one of
/// them cannot starve the other of threads.
pub(crate) static POOL_TEST_LOCK: Mutex<()> = parking_lot::const_mutex(());

/// Threads in the IO pool right now.
pub(crate) fn total_threads() -> usize {
    TOTAL_THREAD_COUNT.load(SeqCst)
}

/// Tasks queued on the IO pool that no thread has taken yet.
pub(crate) fn queued_tasks() -> usize {
    QUEUE.mu.lock().len()
}

/// A count that tasks raise and tests wait on.
#[derive(Default)]
struct Gauge {
    count: Mutex<usize>,
    changed: Condvar,
}

impl Gauge {
    fn raise(&self) {
        *self.count.lock() += 1;
        self.changed.notify_all();
    }

    /// Waits until the count reaches `target`; false at the deadline.
    fn wait_for(&self, target: usize, deadline: Instant) -> bool {
        let mut count = self.count.lock();
        while *count < target {
            if self.changed.wait_until(&mut count, deadline).timed_out() {
                return *count >= target;
            }
        }
        true
    }
}

/// Released 0.34.7 decremented `WAITING_THREAD_COUNT` once more for every
/// task a thread ran, on top of `recv_timeout` counting it as no longer
/// waiting. With four tasks running on the seven initial threads the count
/// went below zero and wrapped to ~2^64, which `maybe_spawn_new_thread`
/// reads as "plenty of idle threads": the pool stopped growing.
///
/// Four tasks are held running at once (each signals that it started, then
/// waits for the release); while they run, at most `threads - 4` threads
/// can be idle.
#[test]
fn waiting_count_stays_within_idle_threads_while_four_tasks_run() {
    const BUSY: usize = 4;
    let _serial = POOL_TEST_LOCK.lock();
    let deadline = Instant::now() + DEADLINE;

    let started = Arc::new(Gauge::default());
    let release = Arc::new(Gauge::default());
    let mut promises = Vec::new();
    for _ in 0..BUSY {
        let started = started.clone();
        let release = release.clone();
        promises.push(
            spawn(move || {
                started.raise();
                // bounded, so that a failing run frees its pool threads
                release.wait_for(1, deadline)
            })
            .expect("spawn on the IO pool"),
        );
    }

    let all_running = started.wait_for(BUSY, deadline);
    let waiting = WAITING_THREAD_COUNT.load(SeqCst);
    let threads = total_threads();
    release.raise();

    assert!(all_running, "the IO pool never ran {} tasks at once", BUSY);
    assert!(
        waiting <= threads - BUSY,
        "WAITING_THREAD_COUNT is {} while {} of the pool's {} threads run \
         tasks: the idle count went below zero and wrapped",
        waiting,
        BUSY,
        threads,
    );

    for mut promise in promises {
        let released =
            promise.wait_timeout(DEADLINE).expect("a held task did not finish");
        assert!(released, "a held task was never released");
    }

    // all tasks done: the count is back to idle threads only
    let waiting = WAITING_THREAD_COUNT.load(SeqCst);
    let threads = total_threads();
    assert!(
        waiting <= threads,
        "WAITING_THREAD_COUNT is {} with {} threads after the tasks ended",
        waiting,
        threads,
    );
}
