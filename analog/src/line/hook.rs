//! FXS hook detection: debounce the raw loop-closure bit, then classify on-hook intervals.
//!
//! | on-hook interval (break) | meaning |
//! |---|---|
//! | shorter than the debounce | contact bounce, ignored |
//! | up to `pulse_break_max_ms` | one dial pulse; pulses separated by less than `interdigit_ms` of off-hook form one digit (10 pulses = `0`) |
//! | shorter than `flash_min_ms` | nothing (too long for a pulse, too short for a flash) |
//! | up to `flash_max_ms` | hook flash |
//! | longer | hang-up |
//!
//! Defaults: 10 ms debounce (a 20 pps break is 33 ms), pulses up to 120 ms (10 pps breaks are
//! 60–67 ms, 8 pps ≈ 80 ms), flash from 100 to 800 ms (DAHDI: 200…1250 ms; commercial ATAs
//! 100…600 or 900 ms; a phone's "R" key makes 80–120 ms in Europe, 600 ms in the US; a break of
//! up to the pulse limit stays a pulse), 300 ms of off-hook completes a pulse digit (DAHDI: max
//! pulse + 50 ms). The window is configurable (`[analog] flash_min_ms`, `flash_max_ms`); its
//! upper end is also how long a hang-up takes to be reported. The
//! timing of an edge is the time the raw bit changed, not when the debounce confirmed it, so
//! measured breaks are exact at the polling resolution.

use heapless::Deque;

use crate::Millis;

/// Hook timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookTiming {
    /// A change must hold this long to count.
    pub debounce_ms: u16,
    /// Longest break that is a dial pulse.
    pub pulse_break_max_ms: u16,
    /// Shortest break that is a flash (between the pulse limit and this: ignored).
    pub flash_min_ms: u16,
    /// Longest break that is a flash (longer: hang-up).
    pub flash_max_ms: u16,
    /// Off-hook time after the last pulse that completes a pulse digit.
    pub interdigit_ms: u16,
}

impl Default for HookTiming {
    fn default() -> Self {
        Self {
            debounce_ms: 10,
            pulse_break_max_ms: 120,
            flash_min_ms: 100,
            flash_max_ms: 800,
            interdigit_ms: 300,
        }
    }
}

/// What the hook did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookEvent {
    /// Lifted after being on-hook.
    OffHook,
    /// Put down (on-hook longer than a flash).
    OnHook,
    /// A hook flash.
    Flash,
    /// A pulse-dialled digit (`1`…`9`, `0`).
    Digit(char),
}

/// Debounces and classifies the hook of one FXS line.
#[derive(Debug, Clone)]
pub struct HookDetector {
    timing: HookTiming,
    raw: bool,
    raw_since: Millis,
    /// Debounced state: true = off-hook.
    stable: bool,
    /// When the current break started (debounced on-hook edge).
    break_start: Millis,
    /// The phone is considered hung up (on-hook longer than a flash, or never lifted).
    hung_up: bool,
    pulses: u8,
    last_make: Millis,
    events: Deque<HookEvent, 4>,
}

impl HookDetector {
    /// A detector for a phone that starts on-hook.
    #[must_use]
    pub fn new(timing: HookTiming) -> Self {
        Self {
            timing,
            raw: false,
            raw_since: 0,
            stable: false,
            break_start: 0,
            hung_up: true,
            pulses: 0,
            last_make: 0,
            events: Deque::new(),
        }
    }

    /// The timing in use.
    #[must_use]
    pub fn timing(&self) -> HookTiming {
        self.timing
    }

    /// True while debounced off-hook (pulse breaks and flashes included as on-hook).
    #[must_use]
    pub fn is_off_hook(&self) -> bool {
        self.stable
    }

    /// True while the phone counts as hung up.
    #[must_use]
    pub fn is_hung_up(&self) -> bool {
        self.hung_up
    }

    fn emit(&mut self, e: HookEvent) {
        // Four slots: at most a digit and one more event are produced per update.
        let _ = self.events.push_back(e);
    }

    fn finish_digit(&mut self) {
        if self.pulses > 0 {
            let d = match self.pulses {
                10 => '0',
                // Eleven or more pulses are not a digit (a stuck dial or line noise).
                n if n > 10 => {
                    self.pulses = 0;
                    return;
                }
                n => char::from(b'0' + n),
            };
            self.pulses = 0;
            self.emit(HookEvent::Digit(d));
        }
    }

    /// Feeds the raw loop-closure bit sampled at `now`; returns the next event, if any (call
    /// [`poll`](Self::poll) until it returns `None` when several are pending).
    pub fn update(&mut self, off_hook: bool, now: Millis) -> Option<HookEvent> {
        if off_hook != self.raw {
            self.raw = off_hook;
            self.raw_since = now;
        }
        if self.raw != self.stable
            && now.saturating_sub(self.raw_since) >= u64::from(self.timing.debounce_ms)
        {
            let edge = self.raw_since;
            self.stable = self.raw;
            if self.stable {
                if self.hung_up {
                    self.hung_up = false;
                    self.pulses = 0;
                    self.emit(HookEvent::OffHook);
                } else {
                    let brk = edge.saturating_sub(self.break_start);
                    if brk <= u64::from(self.timing.pulse_break_max_ms) {
                        self.pulses = self.pulses.saturating_add(1);
                        self.last_make = edge;
                    } else if brk >= u64::from(self.timing.flash_min_ms) {
                        self.finish_digit();
                        self.emit(HookEvent::Flash);
                    } else {
                        // A break between the pulse limit and the flash window is neither:
                        // a digit being dialled is finished, and nothing else happens.
                        self.finish_digit();
                    }
                }
            } else {
                self.break_start = edge;
            }
        }
        self.poll(now)
    }

    /// Runs the timers; returns the next pending event.
    pub fn poll(&mut self, now: Millis) -> Option<HookEvent> {
        if self.stable {
            if self.pulses > 0
                && now.saturating_sub(self.last_make) > u64::from(self.timing.interdigit_ms)
            {
                self.finish_digit();
            }
        } else if !self.hung_up
            && now.saturating_sub(self.break_start) > u64::from(self.timing.flash_max_ms)
        {
            self.hung_up = true;
            self.pulses = 0;
            self.emit(HookEvent::OnHook);
        }
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives the detector with a hook waveform sampled every `step` ms: `(off_hook, ms)`.
    fn run(
        d: &mut HookDetector,
        wave: &[(bool, u64)],
        step: u64,
        t: &mut Millis,
    ) -> Vec<(Millis, HookEvent)> {
        let mut out = Vec::new();
        for &(state, dur) in wave {
            let end = *t + dur;
            while *t < end {
                let mut e = d.update(state, *t);
                while let Some(ev) = e {
                    out.push((*t, ev));
                    e = d.poll(*t);
                }
                *t += step;
            }
        }
        out
    }

    fn pulses(digit: u8) -> Vec<(bool, u64)> {
        let n = if digit == 0 { 10 } else { digit };
        let mut w = Vec::new();
        for _ in 0..n {
            w.push((false, 60));
            w.push((true, 40));
        }
        w
    }

    #[test]
    fn pulse_dialling_at_10_pps() {
        let mut d = HookDetector::new(HookTiming::default());
        let mut t = 0;
        let mut wave = vec![(false, 100), (true, 500)];
        for digit in [4u8, 0, 7, 1] {
            wave.extend(pulses(digit));
            wave.push((true, 700));
        }
        let ev: Vec<HookEvent> = run(&mut d, &wave, 5, &mut t)
            .into_iter()
            .map(|e| e.1)
            .collect();
        assert_eq!(
            ev,
            [
                HookEvent::OffHook,
                HookEvent::Digit('4'),
                HookEvent::Digit('0'),
                HookEvent::Digit('7'),
                HookEvent::Digit('1')
            ]
        );
    }

    #[test]
    fn twenty_pps_and_bounce() {
        let mut d = HookDetector::new(HookTiming::default());
        let mut t = 0;
        // Lift with contact bounce (4 ms glitches), then 3 pulses at 20 pps (33/17 ms).
        let mut wave = vec![(true, 4), (false, 3), (true, 4), (false, 3), (true, 500)];
        for _ in 0..3 {
            wave.push((false, 33));
            wave.push((true, 17));
        }
        wave.push((true, 500));
        let ev: Vec<HookEvent> = run(&mut d, &wave, 1, &mut t)
            .into_iter()
            .map(|e| e.1)
            .collect();
        assert_eq!(ev, [HookEvent::OffHook, HookEvent::Digit('3')]);
    }

    #[test]
    fn flash_and_hang_up_are_timed_from_the_edge() {
        let mut d = HookDetector::new(HookTiming::default());
        let mut t = 0;
        let wave = [
            (true, 300),
            (false, 400),
            (true, 300),
            (false, 1200),
            (true, 20),
        ];
        let ev = run(&mut d, &wave, 5, &mut t);
        let kinds: Vec<HookEvent> = ev.iter().map(|e| e.1).collect();
        assert_eq!(
            kinds,
            [
                HookEvent::OffHook,
                HookEvent::Flash,
                HookEvent::OnHook,
                HookEvent::OffHook
            ]
        );
        // The hang-up is reported just after flash_max (800 ms) from the on-hook edge at 1000.
        let hang = ev
            .iter()
            .find(|e| e.1 == HookEvent::OnHook)
            .expect("hang-up")
            .0;
        assert!((1800..=1810).contains(&hang), "{hang}");
        // The off-hook edge is reported after the 10 ms debounce.
        assert_eq!(ev[0].0, 10);
    }

    #[test]
    fn a_configured_flash_window_ignores_shorter_breaks_and_hangs_up_after_it() {
        let timing = HookTiming {
            flash_min_ms: 300,
            flash_max_ms: 600,
            ..HookTiming::default()
        };
        let mut d = HookDetector::new(timing);
        let mut t = 0;
        let wave = [
            (true, 300),
            (false, 200), // longer than a pulse, shorter than a flash: nothing
            (true, 400),
            (false, 400), // a flash
            (true, 400),
            (false, 700), // a hang-up, reported 600 ms after the edge
            (true, 100),
        ];
        let ev = run(&mut d, &wave, 5, &mut t);
        let kinds: Vec<HookEvent> = ev.iter().map(|e| e.1).collect();
        assert_eq!(
            kinds,
            [
                HookEvent::OffHook,
                HookEvent::Flash,
                HookEvent::OnHook,
                HookEvent::OffHook
            ]
        );
        // The flash is reported when the phone is back (edge at 1300, debounced at 1310).
        assert_eq!(ev[1].0, 1310);
        // The hang-up: on-hook edge at 1700, reported just after 600 ms.
        assert!((2300..=2310).contains(&ev[2].0), "{}", ev[2].0);
    }
}
