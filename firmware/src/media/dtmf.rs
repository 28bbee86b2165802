//! One key press, one digit: merging the in-band detector with the digits the line
//! signals (modem URCs, RFC 4733).
//!
//! A modem that reports DTMF (`+QTONEDET`, `+RXDTMF`, `^DDTMF`, `+DTMF`) usually
//! leaves the tones in the voice stream as well, so the in-band detector hears the
//! same press. Each report is kept for a while; a report from one source that
//! matches an unmatched report of the same digit from the *other* source counts
//! as the same press and is swallowed. Whichever source reports first is passed
//! on at once (no added latency).
//!
//! # The window
//!
//! An in-band press spans from the detector's start decision to its end
//! decision (the key is held for that time). A modem report matches it when it
//! arrives within [`DEFAULT_WINDOW`] (300 ms, configurable) before the start or
//! after the end of that span, because modems report at different moments: at
//! tone start (Quectel, Huawei) or at tone end with its length (SIM800 `+DTMF:
//! <d>,<ms>`). Two modem reports match each other never; two in-band presses of
//! the same key are two presses. Matching is one-to-one, so a quick `1 1` reported
//! by both sources still gives two digits.

use std::collections::VecDeque;
use std::time::Duration;

use super::types::DtmfSource;

/// Default matching window.
pub const DEFAULT_WINDOW: Duration = Duration::from_millis(300);

/// Reports kept (older ones can no longer match anyway).
const KEEP: usize = 32;

#[derive(Debug, Clone)]
struct Report {
    digit: char,
    source: DtmfSource,
    /// When the press started (ms).
    start: u64,
    /// When it ended; `None` while an in-band press is still held.
    end: Option<u64>,
    matched: bool,
    /// A signalled report already given to [`DtmfMerger::settle_signalled`].
    settled: bool,
}

impl Report {
    fn overlaps(&self, at: u64, window: u64, now: u64) -> bool {
        let end = self.end.unwrap_or(now);
        at + window >= self.start && at <= end + window
    }
}

/// Merges the two digit sources (sans-IO: times in milliseconds are inputs).
#[derive(Debug, Clone)]
pub(crate) struct DtmfMerger {
    window: u64,
    reports: VecDeque<Report>,
}

impl DtmfMerger {
    pub(crate) fn new(window: Duration) -> Self {
        DtmfMerger {
            window: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
            reports: VecDeque::new(),
        }
    }

    fn prune(&mut self, now: u64) {
        let window = self.window;
        self.reports
            .retain(|r| r.end.is_none_or(|end| end + window >= now));
        while self.reports.len() > KEEP {
            self.reports.pop_front();
        }
    }

    /// A press reported by `source` at `now`. Returns true when it is a new press
    /// to pass on, false when the other source already reported it.
    pub(crate) fn press(&mut self, digit: char, source: DtmfSource, now: u64) -> bool {
        self.prune(now);
        let window = self.window;
        if let Some(r) = self.reports.iter_mut().find(|r| {
            !r.matched && r.digit == digit && r.source != source && r.overlaps(now, window, now)
        }) {
            r.matched = true;
            // Keep the in-band span: it is what later modem reports are compared
            // with, and it is already recorded on the matched entry.
            return false;
        }
        let end = match source {
            DtmfSource::Signalled => Some(now),
            DtmfSource::InBand => None,
        };
        self.reports.push_back(Report {
            digit,
            source,
            start: now,
            end,
            matched: false,
            settled: false,
        });
        true
    }

    /// Calls `relay` once for every signalled press that no in-band tone matched within
    /// the window: the audio did not carry it, so a bridged peer must be sent it. Call it
    /// every frame (before a press can prune the report).
    pub(crate) fn settle_signalled(&mut self, now: u64, mut relay: impl FnMut(char)) {
        let window = self.window;
        for r in &mut self.reports {
            if r.source == DtmfSource::Signalled
                && !r.matched
                && !r.settled
                && r.start + window <= now
            {
                r.settled = true;
                relay(r.digit);
            }
        }
    }

    /// The in-band detector decided the held key `digit` was released at `now`.
    pub(crate) fn release(&mut self, digit: char, now: u64) {
        if let Some(r) = self
            .reports
            .iter_mut()
            .rev()
            .find(|r| r.source == DtmfSource::InBand && r.digit == digit && r.end.is_none())
        {
            r.end = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DtmfSource::{InBand, Signalled};

    fn merger() -> DtmfMerger {
        DtmfMerger::new(DEFAULT_WINDOW)
    }

    #[test]
    fn both_sources_report_one_press_once() {
        let mut m = merger();
        assert!(m.press('5', InBand, 1000));
        assert!(!m.press('5', Signalled, 1080));
        m.release('5', 1150);
        // Modem first this time.
        assert!(m.press('7', Signalled, 2000));
        assert!(!m.press('7', InBand, 2040));
        m.release('7', 2200);
    }

    #[test]
    fn modem_report_at_tone_end_of_a_long_press_still_matches() {
        let mut m = merger();
        assert!(m.press('1', InBand, 0));
        m.release('1', 1500);
        assert!(!m.press('1', Signalled, 1600));
    }

    #[test]
    fn quick_repeats_are_two_presses() {
        let mut m = merger();
        assert!(m.press('1', InBand, 0));
        assert!(!m.press('1', Signalled, 50));
        m.release('1', 100);
        assert!(m.press('1', InBand, 200));
        assert!(!m.press('1', Signalled, 250));
        m.release('1', 300);
        // Only one source reporting two presses: both pass.
        assert!(m.press('2', Signalled, 1000));
        assert!(m.press('2', Signalled, 1200));
    }

    #[test]
    fn only_signalled_presses_without_a_tone_are_settled_for_relay() {
        let mut m = merger();
        assert!(m.press('5', Signalled, 0));
        assert!(!m.press('5', InBand, 40));
        m.release('5', 140);
        assert!(m.press('6', Signalled, 1000));
        let mut relayed = Vec::new();
        m.settle_signalled(1200, |d| relayed.push(d));
        assert!(relayed.is_empty(), "not before the window closed");
        m.settle_signalled(1300, |d| relayed.push(d));
        m.settle_signalled(1400, |d| relayed.push(d));
        assert_eq!(relayed, ['6']);
    }

    #[test]
    fn other_digits_and_late_reports_do_not_match() {
        let mut m = merger();
        assert!(m.press('3', InBand, 0));
        assert!(m.press('4', Signalled, 20));
        m.release('3', 100);
        assert!(m.press('3', Signalled, 100 + 301));
    }
}
