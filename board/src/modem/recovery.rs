//! Recovery policy as sans-IO state machines: the escalation ladder for an unresponsive modem
//! and exponential back-off for reopening ports and waiting for a busy SIM.
//!
//! The driver executes the steps (sends `AT`, re-runs init, pulses a GPIO); these types only
//! decide what comes next and when, from `now` passed in, so they are tested without sleeping.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// A rung of the escalation ladder, from cheapest to most drastic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryStep {
    /// Send `AT` a few times with the short timeout: maybe one reply was lost.
    Resync,
    /// Run the whole init sequence again (settings may have been lost).
    Reinit,
    /// `AT+CFUN=1,1`: the modem restarts itself; wait for it to come back, then init.
    SoftReset,
    /// Pulse the reset line or power key from the board profile; wait, reopen, init.
    PowerCycle,
    /// Nothing worked: report and stop trying (until the give-up cool-down, if any).
    GiveUp,
}

impl RecoveryStep {
    /// The step after this one.
    pub fn next(self) -> Self {
        match self {
            RecoveryStep::Resync => RecoveryStep::Reinit,
            RecoveryStep::Reinit => RecoveryStep::SoftReset,
            RecoveryStep::SoftReset => RecoveryStep::PowerCycle,
            RecoveryStep::PowerCycle | RecoveryStep::GiveUp => RecoveryStep::GiveUp,
        }
    }
}

impl std::fmt::Display for RecoveryStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RecoveryStep::Resync => "resync",
            RecoveryStep::Reinit => "reinit",
            RecoveryStep::SoftReset => "soft-reset",
            RecoveryStep::PowerCycle => "power-cycle",
            RecoveryStep::GiveUp => "give-up",
        })
    }
}

/// The ladder: which step to try next, and whether to start over after giving up.
#[derive(Debug, Clone)]
pub struct Ladder {
    next: Option<RecoveryStep>,
    gave_up_at: Option<Instant>,
    retry_after_give_up: Option<Duration>,
    climbs: u32,
}

/// What the ladder wants done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LadderAction {
    /// Execute this step now.
    Run(RecoveryStep),
    /// Gave up; try again from the bottom at this instant.
    WaitUntil(Instant),
    /// Gave up for good (no retry configured).
    Stop,
}

impl Ladder {
    /// A ladder that, after giving up, starts over after `retry_after_give_up` (or never).
    pub fn new(retry_after_give_up: Option<Duration>) -> Self {
        Self {
            next: None,
            gave_up_at: None,
            retry_after_give_up,
            climbs: 0,
        }
    }

    /// True while a climb is in progress (a fault was reported and no step succeeded yet).
    pub fn is_climbing(&self) -> bool {
        self.next.is_some() || self.gave_up_at.is_some()
    }

    /// Number of climbs started since creation (for status).
    pub fn climbs(&self) -> u32 {
        self.climbs
    }

    /// A fault was seen (command timeout, failed init). Starts a climb at `first` unless one
    /// is already in progress.
    pub fn fault(&mut self, first: RecoveryStep) {
        if !self.is_climbing() {
            self.climbs = self.climbs.saturating_add(1);
            self.next = Some(first);
        }
    }

    /// The current step succeeded: the modem is healthy again.
    pub fn succeeded(&mut self) {
        self.next = None;
        self.gave_up_at = None;
    }

    /// The step just run failed (or was skipped): advance.
    pub fn failed(&mut self, step: RecoveryStep, now: Instant) {
        if step == RecoveryStep::GiveUp {
            self.next = None;
            self.gave_up_at = Some(now);
        } else {
            self.next = Some(step.next());
        }
    }

    /// What to do at `now`. `None` when not climbing.
    pub fn poll(&mut self, now: Instant) -> Option<LadderAction> {
        if let Some(step) = self.next {
            return Some(LadderAction::Run(step));
        }
        let at = self.gave_up_at?;
        match self.retry_after_give_up {
            None => Some(LadderAction::Stop),
            Some(d) => {
                let when = at + d;
                if now >= when {
                    self.gave_up_at = None;
                    self.next = Some(RecoveryStep::Reinit);
                    Some(LadderAction::Run(RecoveryStep::Reinit))
                } else {
                    Some(LadderAction::WaitUntil(when))
                }
            }
        }
    }
}

/// Exponential back-off parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackoffPolicy {
    /// First delay in ms.
    pub initial_ms: u64,
    /// Cap in ms.
    pub max_ms: u64,
    /// Multiplier per attempt (integer; 2 doubles).
    pub factor: u32,
}

impl BackoffPolicy {
    /// A policy from `initial` doubling up to `max`.
    pub const fn doubling(initial_ms: u64, max_ms: u64) -> Self {
        Self {
            initial_ms,
            max_ms,
            factor: 2,
        }
    }
}

/// Exponential back-off state.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: BackoffPolicy,
    attempt: u32,
    next_at: Option<Instant>,
}

impl Backoff {
    /// Fresh state.
    pub fn new(policy: BackoffPolicy) -> Self {
        Self {
            policy,
            attempt: 0,
            next_at: None,
        }
    }

    /// Attempts made since the last reset.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The delay before the next attempt: `initial · factor^attempt`, capped.
    pub fn delay(&self) -> Duration {
        let mut ms = self.policy.initial_ms;
        for _ in 0..self.attempt {
            ms = ms.saturating_mul(u64::from(self.policy.factor.max(1)));
            if ms >= self.policy.max_ms {
                break;
            }
        }
        Duration::from_millis(ms.min(self.policy.max_ms))
    }

    /// An attempt failed at `now`: returns when the next one is due.
    pub fn failed(&mut self, now: Instant) -> Instant {
        let at = now + self.delay();
        self.attempt = self.attempt.saturating_add(1);
        self.next_at = Some(at);
        at
    }

    /// Whether an attempt may be made at `now`.
    pub fn ready(&self, now: Instant) -> bool {
        self.next_at.is_none_or(|t| now >= t)
    }

    /// When the next attempt is due (`None`: now).
    pub fn next_at(&self) -> Option<Instant> {
        self.next_at
    }

    /// Success: start over.
    pub fn reset(&mut self) {
        self.attempt = 0;
        self.next_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladder_climbs_in_order_and_gives_up() {
        let t0 = Instant::now();
        let mut l = Ladder::new(None);
        assert_eq!(l.poll(t0), None);
        l.fault(RecoveryStep::Resync);
        let mut seen = Vec::new();
        while let Some(LadderAction::Run(s)) = l.poll(t0) {
            seen.push(s);
            l.failed(s, t0);
        }
        assert_eq!(
            seen,
            vec![
                RecoveryStep::Resync,
                RecoveryStep::Reinit,
                RecoveryStep::SoftReset,
                RecoveryStep::PowerCycle,
                RecoveryStep::GiveUp
            ]
        );
        assert_eq!(l.poll(t0), Some(LadderAction::Stop));
        // A new fault while given up does not restart the climb.
        l.fault(RecoveryStep::Resync);
        assert_eq!(l.poll(t0), Some(LadderAction::Stop));
    }

    #[test]
    fn ladder_success_resets_and_retry_after_give_up() {
        let t0 = Instant::now();
        let mut l = Ladder::new(Some(Duration::from_secs(60)));
        l.fault(RecoveryStep::Resync);
        l.failed(RecoveryStep::Resync, t0);
        assert_eq!(l.poll(t0), Some(LadderAction::Run(RecoveryStep::Reinit)));
        l.succeeded();
        assert_eq!(l.poll(t0), None);
        assert!(!l.is_climbing());
        l.fault(RecoveryStep::PowerCycle);
        l.failed(RecoveryStep::PowerCycle, t0);
        assert_eq!(l.poll(t0), Some(LadderAction::Run(RecoveryStep::GiveUp)));
        l.failed(RecoveryStep::GiveUp, t0);
        assert_eq!(
            l.poll(t0 + Duration::from_secs(1)),
            Some(LadderAction::WaitUntil(t0 + Duration::from_secs(60)))
        );
        assert_eq!(
            l.poll(t0 + Duration::from_secs(60)),
            Some(LadderAction::Run(RecoveryStep::Reinit))
        );
        assert_eq!(l.climbs(), 2);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let t0 = Instant::now();
        let mut b = Backoff::new(BackoffPolicy::doubling(100, 1000));
        assert!(b.ready(t0));
        let d: Vec<u64> = (0..6)
            .map(|_| {
                let at = b.failed(t0);
                u64::try_from((at - t0).as_millis()).unwrap()
            })
            .collect();
        assert_eq!(d, vec![100, 200, 400, 800, 1000, 1000]);
        assert!(!b.ready(t0));
        assert!(b.ready(t0 + Duration::from_secs(1)));
        b.reset();
        assert_eq!(b.delay(), Duration::from_millis(100));
    }
}
