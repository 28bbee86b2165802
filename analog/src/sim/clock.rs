//! Simulated time shared by the simulated chips, the telephone and the exchange line. The
//! driver's `DelayNs` advances it (initialisation "waits" without sleeping); the test or the
//! runner moves it forward with [`SimClock::advance_to`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use embedded_hal::delay::DelayNs;

use crate::Millis;

/// Monotonic simulated time in nanoseconds.
#[derive(Debug, Clone, Default)]
pub struct SimClock {
    ns: Arc<AtomicU64>,
}

impl SimClock {
    /// A clock at 0.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Now, in ms.
    #[must_use]
    pub fn now(&self) -> Millis {
        self.ns.load(Ordering::SeqCst) / 1_000_000
    }

    /// Moves the clock forward to `ms` (never backwards).
    pub fn advance_to(&self, ms: Millis) {
        self.ns
            .fetch_max(ms.saturating_mul(1_000_000), Ordering::SeqCst);
    }

    /// Moves the clock forward by `ns`.
    pub fn advance_ns(&self, ns: u64) {
        self.ns.fetch_add(ns, Ordering::SeqCst);
    }

    /// A `DelayNs` that advances this clock.
    #[must_use]
    pub fn delay(&self) -> SimDelay {
        SimDelay {
            clock: self.clone(),
        }
    }
}

/// `DelayNs` on simulated time: returns at once, the clock has moved.
#[derive(Debug, Clone)]
pub struct SimDelay {
    clock: SimClock,
}

impl DelayNs for SimDelay {
    fn delay_ns(&mut self, ns: u32) {
        self.clock.advance_ns(u64::from(ns));
    }
}
