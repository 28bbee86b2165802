//! Time for the audio ports: a [`Clock`] (real or manual) and the [`Pacer`] that
//! keeps a port at one frame per 20 ms when its device does not block.
//!
//! # Why a pacer
//!
//! A modem's voice tty or a sound card delivers one frame every 20 ms and blocks
//! in between, so the media loop runs at real time for free. A `file`/`null` ALSA
//! PCM, a pipe or a flooding far end returns at once: a loop that waited on such a
//! device for its clock would run flat out (baresip wrote 260 MB of audio in a 3 s
//! call that way). The pacer keeps a schedule of absolute deadlines, one per frame,
//! and tells the port to sleep when a frame came in early. When the device itself
//! blocked (it is the clock) the schedule is re-anchored to it, so a real device's
//! clock drift never fights the system clock.
//!
//! The pacer is sans-IO: it takes `now` and how long the device blocked, and returns
//! a deadline to sleep until. Time is a [`Duration`] since the clock's origin so a
//! test can drive it with a [`ManualClock`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// A monotonic clock the ports read and sleep on.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Time since the clock's origin.
    fn now(&self) -> Duration;
    /// Blocks the calling thread until `now() >= deadline`.
    fn sleep_until(&self, deadline: Duration);
}

/// The real monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    #[must_use]
    pub fn new() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }

    /// The shared form the ports take.
    #[must_use]
    pub fn shared() -> Arc<dyn Clock> {
        Arc::new(SystemClock::new())
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn sleep_until(&self, deadline: Duration) {
        let now = self.now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
    }
}

/// A clock that only moves when told to: `sleep_until` jumps straight to the
/// deadline. Tests use it to count how much time a port *would* have spent waiting
/// without spending it.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: Mutex<Duration>,
}

impl ManualClock {
    /// A manual clock at zero.
    #[must_use]
    pub fn new() -> Arc<ManualClock> {
        Arc::new(ManualClock::default())
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        *self.now.lock() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        *self.now.lock()
    }

    fn sleep_until(&self, deadline: Duration) {
        let mut now = self.now.lock();
        if deadline > *now {
            *now = deadline;
        }
    }
}

/// Schedule of frame deadlines for one stream (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    frame: Duration,
    /// Deadline of frame number 0 of the current schedule.
    anchor: Option<Duration>,
    /// Frames handed out since the anchor.
    count: u32,
    /// A device call that waited at least this long means the device paces itself.
    block_threshold: Duration,
    /// Further behind than this and the schedule restarts from now, so a stall
    /// is not followed by a burst that tries to catch up.
    resync_after: Duration,
}

impl Pacer {
    /// A pacer for frames of `frame` duration.
    pub(crate) fn new(frame: Duration) -> Self {
        Pacer {
            frame,
            anchor: None,
            count: 0,
            block_threshold: Duration::from_millis(2),
            resync_after: frame * 10,
        }
    }

    fn due(&self, anchor: Duration) -> Duration {
        anchor + self.frame * self.count
    }

    fn reanchor(&mut self, now: Duration) {
        self.anchor = Some(now);
        self.count = 0;
    }

    /// A frame arrived at `now`; the device call(s) for it blocked for `waited`.
    /// Returns the deadline to sleep until before handing the frame out, if the
    /// frame is early.
    pub(crate) fn on_frame(&mut self, now: Duration, waited: Duration) -> Option<Duration> {
        let Some(anchor) = self.anchor else {
            self.reanchor(now);
            return None;
        };
        if waited >= self.block_threshold {
            // The device is the clock.
            self.reanchor(now);
            return None;
        }
        self.count = self.count.saturating_add(1);
        let due = self.due(anchor);
        if now < due {
            return Some(due);
        }
        if now > due + self.resync_after || self.count == u32::MAX {
            self.reanchor(now);
        }
        None
    }

    /// No frame came by the stall deadline; the loop ticks on the schedule instead.
    pub(crate) fn on_missing(&mut self, now: Duration) {
        match self.anchor {
            Some(anchor) => {
                self.count = self.count.saturating_add(1);
                if now > self.due(anchor) + self.resync_after || self.count == u32::MAX {
                    self.reanchor(now);
                }
            }
            None => self.reanchor(now),
        }
    }

    /// When the next frame is late enough to count as missing: its nominal time
    /// plus `tolerance`. Before the first frame the stall is measured from `now`.
    pub(crate) fn stall_deadline(&self, now: Duration, tolerance: Duration) -> Duration {
        match self.anchor {
            Some(anchor) => anchor + self.frame * self.count.saturating_add(1) + tolerance,
            None => now + tolerance,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: Duration = Duration::from_millis(20);

    #[test]
    fn non_blocking_device_is_held_to_real_time() {
        let mut p = Pacer::new(F);
        let mut now = Duration::ZERO;
        assert_eq!(p.on_frame(now, Duration::ZERO), None);
        for k in 1..=100u32 {
            // The device answers instantly: every frame is early and is held
            // back to its deadline.
            let sleep = p.on_frame(now, Duration::ZERO).expect("early frame");
            assert_eq!(sleep, F * k);
            now = sleep;
        }
        assert_eq!(now, F * 100);
    }

    #[test]
    fn blocking_device_is_never_delayed() {
        let mut p = Pacer::new(F);
        let mut now = Duration::ZERO;
        for _ in 0..50 {
            // A device slightly faster than the system clock.
            now += Duration::from_micros(19_900);
            assert_eq!(p.on_frame(now, Duration::from_millis(15)), None);
        }
    }

    #[test]
    fn stall_ticks_on_the_schedule_then_resyncs() {
        let mut p = Pacer::new(F);
        p.on_frame(Duration::ZERO, Duration::ZERO);
        let tol = Duration::from_millis(60);
        assert_eq!(p.stall_deadline(Duration::ZERO, tol), F + tol);
        p.on_missing(F + tol);
        assert_eq!(p.stall_deadline(F + tol, tol), F * 2 + tol);
        // A long stall restarts the schedule instead of bursting afterwards.
        let late = Duration::from_secs(5);
        p.on_missing(late);
        assert_eq!(
            p.on_frame(late + Duration::from_millis(1), Duration::ZERO),
            Some(late + F)
        );
        assert_eq!(p.on_frame(late + F, Duration::ZERO), Some(late + F * 2));
    }

    #[test]
    fn manual_clock_jumps_to_deadlines() {
        let c = ManualClock::new();
        c.sleep_until(Duration::from_millis(40));
        assert_eq!(c.now(), Duration::from_millis(40));
        c.sleep_until(Duration::from_millis(10));
        assert_eq!(c.now(), Duration::from_millis(40));
        c.advance(F);
        assert_eq!(c.now(), Duration::from_millis(60));
    }
}
