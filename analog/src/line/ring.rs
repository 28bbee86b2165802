//! FXO ring detection from the DAA's ring-detect bits (register 5 RDTP/RDTN).
//!
//! The positive and negative half-cycle bits must alternate more than twice before a ring is
//! reported, and each alternation keeps the ring alive for the debounce time (128 ms, DAHDI
//! `wctdm24xxp`). A neon message-waiting lamp pulses only one polarity, so it never rings.
//! With full-wave detection both bits rise together; every renewed activity then counts as an
//! alternation.

use crate::Millis;

/// Ring detection timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingTiming {
    /// No ring bits for this long ends a ring.
    pub debounce_ms: u16,
    /// Alternations needed to start a ring.
    pub min_alternations: u8,
}

impl Default for RingTiming {
    fn default() -> Self {
        Self {
            debounce_ms: 128,
            min_alternations: 3,
        }
    }
}

/// A ring edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingEdge {
    /// Ringing started.
    Start,
    /// Ringing stopped; it lasted `on_ms`.
    End {
        /// Duration of the ring burst.
        on_ms: u64,
    },
}

/// Turns ring-detect bit samples into ring bursts.
#[derive(Debug, Clone)]
pub struct RingDetector {
    timing: RingTiming,
    last: Option<bool>,
    alternations: u8,
    first_activity: Millis,
    last_activity: Option<Millis>,
    ringing: bool,
}

impl RingDetector {
    /// A detector with the given timing.
    #[must_use]
    pub fn new(timing: RingTiming) -> Self {
        Self {
            timing,
            last: None,
            alternations: 0,
            first_activity: 0,
            last_activity: None,
            ringing: false,
        }
    }

    /// True during a ring burst.
    #[must_use]
    pub fn is_ringing(&self) -> bool {
        self.ringing
    }

    /// Feeds one sample of the two ring bits.
    pub fn sample(&mut self, positive: bool, negative: bool, now: Millis) -> Option<RingEdge> {
        let polarity = match (positive, negative) {
            (true, false) => Some(true),
            (false, true) => Some(false),
            // Full-wave: both at once; treat as the opposite of the last one seen.
            (true, true) => Some(!self.last.unwrap_or(false)),
            (false, false) => None,
        };
        if let Some(p) = polarity {
            if self.last_activity.is_none() {
                self.first_activity = now;
            }
            if self.last != Some(p) {
                if self.last.is_some() {
                    self.alternations = self.alternations.saturating_add(1);
                }
                self.last = Some(p);
            }
            self.last_activity = Some(now);
            if !self.ringing && self.alternations >= self.timing.min_alternations {
                self.ringing = true;
                return Some(RingEdge::Start);
            }
            return None;
        }
        let quiet = self
            .last_activity
            .is_some_and(|t| now.saturating_sub(t) > u64::from(self.timing.debounce_ms));
        if quiet {
            let started = self.first_activity;
            let ended = self.last_activity.unwrap_or(now);
            self.last = None;
            self.alternations = 0;
            self.last_activity = None;
            if self.ringing {
                self.ringing = false;
                return Some(RingEdge::End {
                    on_ms: ended.saturating_sub(started),
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 20 Hz ring for `on` ms sampled every 5 ms: positive for the first half-cycle.
    fn ring(
        d: &mut RingDetector,
        t: &mut Millis,
        on: u64,
        hz: u64,
        half_wave_only: bool,
    ) -> Vec<(Millis, RingEdge)> {
        let mut out = Vec::new();
        let end = *t + on;
        let start = *t;
        while *t < end {
            let phase = ((*t - start) * hz * 2 / 1000).is_multiple_of(2);
            let (p, n) = if half_wave_only {
                (phase, false)
            } else {
                (phase, !phase)
            };
            if let Some(e) = d.sample(p, n, *t) {
                out.push((*t, e));
            }
            *t += 5;
        }
        out
    }

    fn quiet(d: &mut RingDetector, t: &mut Millis, ms: u64) -> Vec<(Millis, RingEdge)> {
        let mut out = Vec::new();
        let end = *t + ms;
        while *t < end {
            if let Some(e) = d.sample(false, false, *t) {
                out.push((*t, e));
            }
            *t += 5;
        }
        out
    }

    #[test]
    fn us_cadence_two_rings() {
        let mut d = RingDetector::new(RingTiming::default());
        let mut t = 0;
        let mut ev = ring(&mut d, &mut t, 2000, 20, false);
        ev.extend(quiet(&mut d, &mut t, 4000));
        ev.extend(ring(&mut d, &mut t, 2000, 20, false));
        ev.extend(quiet(&mut d, &mut t, 500));
        assert_eq!(ev.len(), 4, "{ev:?}");
        assert_eq!(ev[0].1, RingEdge::Start);
        // Three alternations at 20 Hz take 75 ms.
        assert!(ev[0].0 <= 80, "{ev:?}");
        assert!(matches!(ev[1].1, RingEdge::End { on_ms } if (1950..=2000).contains(&on_ms)));
        // The end is reported one debounce after the last activity.
        assert!((2120..=2140).contains(&ev[1].0), "{ev:?}");
        assert_eq!(ev[2].1, RingEdge::Start);
    }

    #[test]
    fn neon_pulses_do_not_ring() {
        let mut d = RingDetector::new(RingTiming::default());
        let mut t = 0;
        let mut ev = ring(&mut d, &mut t, 2000, 1, true);
        ev.extend(quiet(&mut d, &mut t, 1000));
        assert!(ev.is_empty(), "{ev:?}");
    }
}
