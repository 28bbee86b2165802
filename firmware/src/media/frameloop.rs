//! The shared frame loop: a small fixed pool of threads that each serve many call media
//! sessions, one 20 ms frame per session per tick of the context's clock.
//!
//! # Why
//!
//! A session whose port has no clock of its own ([`Pacing::Shared`](super::port::Pacing):
//! RTP) used to get a thread that slept until each frame was due. With hundreds of SIP
//! calls that is a wake-up, a timed wait and a socket-option change per call every 20 ms,
//! plus a thread created and destroyed per call: the largest CPU cost of a call in the SIP
//! benchmark. Here one thread serves many sessions on its own ticks, each session reading
//! what its socket has received without waiting.
//!
//! Device ports (serial PCM, ALSA) keep a thread each: their device blocks and is the
//! clock.
//!
//! A worker splits its sessions into [`PHASES`] groups and wakes once per group, 2 ms
//! apart, running one group each time; every session keeps its group, so it still runs
//! every 20 ms. Why: a session's packet leaves when the worker reaches it, after the
//! sessions before it. With every session in one run per tick, the last of ~500 (1,000
//! calls on two workers) went out ~7 ms after the tick, later or earlier with the work
//! and preemptions before it: the benchmark through the daemon
//! (`scripts/sip-media-bench.sh`) measured the added jitter's p99 rising from 2.5 ms for
//! the first tenth of the calls to 8.6 ms for the last. A tenth of the run before each
//! session is a tenth of that spread, with no frame of delay added: at 1,000 calls four
//! groups gave a p99 of 1.8-2.0 ms on a quiet machine (rising 1.1 → 2.3 ms across the
//! calls), ten give 0.86-0.96 ms (0.7 → 1.1 ms) for the same CPU; the extra wake-ups cost
//! nothing measurable.
//!
//! # Rules
//!
//! * A session's frame must not block: the port reads with
//!   [`read_frame_now`](super::port::AudioPort::read_frame_now), writes do not block, and
//!   everything slow (TTS, downloads, decoding, opening files) is prepared on the tokio
//!   runtime before it reaches the core, as for a session on its own thread.
//! * A worker that falls behind runs its sessions late rather than skipping them: RTP
//!   timing comes from the far end's timestamps and the jitter buffer, so a late tick is
//!   delay, not loss. After a long stall (a suspended process) the schedule restarts from
//!   now instead of running the missed ticks back to back.
//! * A panic in one session ends that session only (it is reported like a port failure);
//!   the other sessions on the worker go on. That holds where panics unwind (tests, debug
//!   builds); the release profile aborts on panic (the flash budget, Cargo.toml), and there
//!   the service restarts instead.
//! * Workers start with the first session and stop when the context is gone and their
//!   last session has ended.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::time::Duration;

use parking_lot::Mutex;

use super::clock::Clock;
use super::error::{MediaError, Result};

/// One frame period.
const TICK: Duration = Duration::from_millis(20);
/// Groups of sessions per worker, each run at its own point of the tick (2 ms apart).
const PHASES: usize = 10;
/// A worker later than this restarts its schedule from now.
const MAX_BEHIND: Duration = Duration::from_millis(100);
/// Workers at most; fewer on a machine with fewer cores.
const MAX_WORKERS: usize = 4;

/// A session as the loop sees it.
pub(crate) trait FrameTask: Send {
    /// Runs one frame; false when the session has ended (then [`finish`](Self::finish)).
    fn frame(&mut self) -> bool;
    /// Ends the session: final events, handles told. `panicked` when `frame` panicked.
    fn finish(self: Box<Self>, panicked: bool);
}

struct Worker {
    tx: Sender<Box<dyn FrameTask>>,
    /// Sessions on this worker, to place a new one on the least loaded.
    load: Arc<AtomicUsize>,
}

/// The pool; one per [`MediaContext`](super::MediaContext), started on first use.
pub(crate) struct FrameLoop {
    clock: Arc<dyn Clock>,
    workers: Mutex<Vec<Worker>>,
}

impl std::fmt::Debug for FrameLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameLoop")
            .field("workers", &self.workers.lock().len())
            .finish_non_exhaustive()
    }
}

impl FrameLoop {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        FrameLoop {
            clock,
            workers: Mutex::new(Vec::new()),
        }
    }

    /// Sessions being served now (all workers).
    pub(crate) fn sessions(&self) -> usize {
        self.workers
            .lock()
            .iter()
            .map(|w| w.load.load(Ordering::Relaxed))
            .sum()
    }

    /// Hands a session to the least loaded worker; its first frame runs at that worker's
    /// next tick.
    ///
    /// # Errors
    /// [`MediaError::Worker`] when no worker thread can be started.
    pub(crate) fn add(&self, task: Box<dyn FrameTask>) -> Result<()> {
        let mut workers = self.workers.lock();
        if workers.is_empty() {
            let n = std::thread::available_parallelism()
                .map_or(1, std::num::NonZeroUsize::get)
                .clamp(1, MAX_WORKERS);
            for i in 0..n {
                workers.push(self.spawn(i)?);
            }
        }
        // Each worker holds a receiver until the context is dropped, so a send only fails
        // if its thread died; then it is replaced.
        let i = (0..workers.len())
            .min_by_key(|&i| workers[i].load.load(Ordering::Relaxed))
            .unwrap_or(0);
        workers[i].load.fetch_add(1, Ordering::Relaxed);
        match workers[i].tx.send(task) {
            Ok(()) => Ok(()),
            Err(back) => {
                tracing::error!(worker = i, "media loop worker gone; starting a new one");
                workers[i] = self.spawn(i)?;
                workers[i].load.fetch_add(1, Ordering::Relaxed);
                workers[i]
                    .tx
                    .send(back.0)
                    .map_err(|_| MediaError::Worker("the media loop worker died".into()))
            }
        }
    }

    fn spawn(&self, index: usize) -> Result<Worker> {
        let (tx, rx) = channel();
        let load = Arc::new(AtomicUsize::new(0));
        let (clock, l) = (self.clock.clone(), load.clone());
        std::thread::Builder::new()
            .name(format!("media-loop-{index}"))
            .spawn(move || run(&rx, clock.as_ref(), &l))
            .map_err(|e| MediaError::Worker(format!("cannot start a media loop thread: {e}")))?;
        Ok(Worker { tx, load })
    }
}

/// A worker: every tick, each session's frame, one group of sessions per phase of the
/// tick; sessions that ended are finished.
fn run(rx: &Receiver<Box<dyn FrameTask>>, clock: &dyn Clock, load: &AtomicUsize) {
    let mut groups: [Vec<Box<dyn FrameTask>>; PHASES] = std::array::from_fn(|_| Vec::new());
    // A new session joins the smallest group, so the groups stay even as calls come and go.
    let place = |groups: &mut [Vec<Box<dyn FrameTask>>; PHASES], task| {
        let g = (0..PHASES).min_by_key(|&g| groups[g].len()).unwrap_or(0);
        groups[g].push(task);
    };
    let step = TICK / u32::try_from(PHASES).unwrap_or(1);
    let mut next = clock.now();
    let mut phase = 0;
    loop {
        loop {
            match rx.try_recv() {
                Ok(task) => place(&mut groups, task),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) if groups.iter().all(Vec::is_empty) => return,
                Err(TryRecvError::Disconnected) => break,
            }
        }
        if groups.iter().all(Vec::is_empty) {
            // Idle: no tick until a session comes.
            match rx.recv() {
                Ok(task) => place(&mut groups, task),
                Err(_) => return,
            }
            next = clock.now();
        }
        let tasks = &mut groups[phase];
        let mut i = 0;
        while i < tasks.len() {
            match catch_unwind(AssertUnwindSafe(|| tasks[i].frame())) {
                Ok(true) => i += 1,
                Ok(false) => {
                    end(tasks.swap_remove(i), false);
                    load.fetch_sub(1, Ordering::Relaxed);
                }
                Err(_) => {
                    tracing::error!("a media session panicked in the media loop; ending it");
                    end(tasks.swap_remove(i), true);
                    load.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        phase = (phase + 1) % PHASES;
        next += step;
        let now = clock.now();
        if now > next + MAX_BEHIND {
            tracing::debug!(
                behind_ms = u64::try_from((now - next).as_millis()).unwrap_or(u64::MAX),
                sessions = groups.iter().map(Vec::len).sum::<usize>(),
                "media loop behind; schedule restarted"
            );
            next = now;
        } else {
            clock.sleep_until(next);
        }
    }
}

fn end(task: Box<dyn FrameTask>, panicked: bool) {
    if catch_unwind(AssertUnwindSafe(|| task.finish(panicked))).is_err() {
        tracing::error!("a media session panicked while closing");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;
    use std::sync::mpsc;

    use super::*;
    use crate::media::clock::{ManualClock, SystemClock};

    struct Counted {
        frames: Arc<AtomicU32>,
        stop_after: u32,
        panic_at: Option<u32>,
        done: mpsc::Sender<(u32, bool)>,
    }

    impl FrameTask for Counted {
        fn frame(&mut self) -> bool {
            let n = self.frames.fetch_add(1, Ordering::SeqCst) + 1;
            assert!(self.panic_at != Some(n), "test panic");
            n < self.stop_after
        }
        fn finish(self: Box<Self>, panicked: bool) {
            let _ = self
                .done
                .send((self.frames.load(Ordering::SeqCst), panicked));
        }
    }

    /// Records the clock at each of its frames.
    struct Timed {
        clock: Arc<ManualClock>,
        times: Vec<Duration>,
        frames: usize,
        done: mpsc::Sender<Vec<Duration>>,
    }

    impl FrameTask for Timed {
        fn frame(&mut self) -> bool {
            self.times.push(self.clock.now());
            self.times.len() < self.frames
        }
        fn finish(self: Box<Self>, _panicked: bool) {
            let _ = self.done.send(self.times);
        }
    }

    #[test]
    fn sessions_are_spread_over_the_tick_and_each_runs_every_20_ms() {
        let clock = ManualClock::new();
        let (tx, rx) = channel::<Box<dyn FrameTask>>();
        let (done_tx, done_rx) = mpsc::channel();
        let sessions = 2 * PHASES;
        for _ in 0..sessions {
            tx.send(Box::new(Timed {
                clock: clock.clone(),
                times: Vec::new(),
                frames: 5,
                done: done_tx.clone(),
            }))
            .unwrap();
        }
        drop(tx);
        let load = AtomicUsize::new(sessions);
        let c: Arc<dyn Clock> = clock.clone();
        // Returns once every session has ended and the sender is gone.
        run(&rx, c.as_ref(), &load);
        assert_eq!(load.load(Ordering::SeqCst), 0);
        let mut firsts = Vec::new();
        for _ in 0..sessions {
            let times = done_rx.try_recv().unwrap();
            assert_eq!(times.len(), 5);
            for (n, t) in times.iter().enumerate() {
                assert_eq!(*t - times[0], TICK * u32::try_from(n).unwrap(), "{times:?}");
            }
            firsts.push(times[0]);
        }
        firsts.sort_unstable();
        // Two sessions at each of the tick's points, 2 ms apart.
        let step = TICK / u32::try_from(PHASES).unwrap();
        let expected: Vec<Duration> = (0..sessions)
            .map(|i| step * u32::try_from(i / 2).unwrap())
            .collect();
        assert_eq!(step, Duration::from_millis(2));
        assert_eq!(firsts, expected);
    }

    #[test]
    fn runs_every_session_until_it_ends_and_survives_a_panicking_one() {
        let lp = FrameLoop::new(SystemClock::shared());
        let (done_tx, done_rx) = mpsc::channel();
        let counters: Vec<_> = (0..3).map(|_| Arc::new(AtomicU32::new(0))).collect();
        for (i, c) in counters.iter().enumerate() {
            lp.add(Box::new(Counted {
                frames: c.clone(),
                stop_after: 3 + u32::try_from(i).unwrap(),
                panic_at: (i == 1).then_some(2),
                done: done_tx.clone(),
            }))
            .unwrap();
        }
        let mut ends: Vec<_> = (0..3)
            .map(|_| done_rx.recv_timeout(Duration::from_secs(30)).unwrap())
            .collect();
        ends.sort_unstable();
        // The panicking session ends at its second frame, the others run to their end.
        assert_eq!(ends, vec![(2, true), (3, false), (5, false)]);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while lp.sessions() != 0 {
            assert!(std::time::Instant::now() < deadline, "load not released");
            std::thread::yield_now();
        }
    }
}
