//! DTMF generator: a queue of digits played as tone bursts separated by
//! pauses, streamed into caller-provided buffers.

use std::collections::VecDeque;

use super::DtmfDigit;
use crate::error::{DspError, Result};
use crate::level::dbm0_to_amplitude;
use crate::osc::{Osc, to_i16};
use crate::util::{check_rate, ms_to_samples};

/// Settings of the [`DtmfGenerator`].
#[derive(Debug, Clone, PartialEq)]
pub struct DtmfGenConfig {
    /// 8000 or 16000 Hz.
    pub sample_rate: u32,
    /// Low-group (row) tone level. Default −10 dBm0, spandsp's default and
    /// well inside every receiver's range.
    pub low_dbm0: f32,
    /// High-group (column) tone level. Default −8 dBm0: the customary +2 dB
    /// pre-emphasis of the high group, which receivers accept as 2 dB of
    /// reverse twist.
    pub high_dbm0: f32,
    /// Tone duration. Default 100 ms: the lower bound of VoIPBIN's
    /// `digits_send.duration` and twice the Q.24 minimum, so the digits
    /// survive codecs and jitter buffers on the way.
    pub on_ms: u32,
    /// Pause between digits (none after the last). Default 100 ms.
    pub off_ms: u32,
}

impl DtmfGenConfig {
    /// The defaults documented on each field, at `sample_rate`.
    #[must_use]
    pub fn new(sample_rate: u32) -> Self {
        Self {
            sample_rate,
            low_dbm0: -10.0,
            high_dbm0: -8.0,
            on_ms: 100,
            off_ms: 100,
        }
    }
}

impl Default for DtmfGenConfig {
    fn default() -> Self {
        Self::new(8000)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Tone { left: u64 },
    Pause { left: u64 },
}

/// Streams queued digits as DTMF. Phase-continuous across calls to
/// [`fill`](Self::fill); each digit starts at phase 0.
#[derive(Debug, Clone)]
pub struct DtmfGenerator {
    config: DtmfGenConfig,
    low_amp: f64,
    high_amp: f64,
    on: u64,
    off: u64,
    queue: VecDeque<DtmfDigit>,
    low: Osc,
    high: Osc,
    phase: Phase,
}

impl DtmfGenerator {
    /// A generator with the given settings.
    ///
    /// # Errors
    /// [`DspError::UnsupportedSampleRate`] for rates other than 8000/16000;
    /// [`DspError::InvalidConfig`] for a level above +3 dBm0 (it would clip),
    /// a non-finite level or a tone shorter than 1 ms.
    pub fn new(config: DtmfGenConfig) -> Result<Self> {
        check_rate(
            "DTMF generator",
            config.sample_rate,
            &[8000, 16000],
            "8000, 16000",
        )?;
        for (field, level) in [
            ("low_dbm0", config.low_dbm0),
            ("high_dbm0", config.high_dbm0),
        ] {
            if !level.is_finite() || level > 3.0 {
                return Err(DspError::InvalidConfig {
                    component: "DTMF generator",
                    field,
                    reason: format!("{level} dBm0 is not a level at or below +3 dBm0"),
                });
            }
        }
        if config.on_ms == 0 {
            return Err(DspError::InvalidConfig {
                component: "DTMF generator",
                field: "on_ms",
                reason: "a tone needs at least 1 ms".into(),
            });
        }
        let rate = config.sample_rate;
        Ok(Self {
            low_amp: f64::from(dbm0_to_amplitude(config.low_dbm0)),
            high_amp: f64::from(dbm0_to_amplitude(config.high_dbm0)),
            on: ms_to_samples(config.on_ms, rate).max(1),
            off: ms_to_samples(config.off_ms, rate),
            queue: VecDeque::with_capacity(32),
            low: Osc::new(697.0, rate, 0.0),
            high: Osc::new(1209.0, rate, 0.0),
            phase: Phase::Idle,
            config,
        })
    }

    /// Appends digits (`0-9 * # A-D`) to the queue. Nothing is queued if
    /// any character is invalid.
    ///
    /// # Errors
    /// [`DspError::InvalidDigit`] naming the first invalid character.
    pub fn queue(&mut self, digits: &str) -> Result<()> {
        let parsed = DtmfDigit::parse_str(digits)?;
        self.queue.extend(parsed);
        Ok(())
    }

    /// Appends one digit.
    pub fn queue_digit(&mut self, digit: DtmfDigit) {
        self.queue.push_back(digit);
    }

    /// Writes the next `out.len()` samples: tones, pauses, then silence once
    /// everything queued has been played. Returns how many samples belonged
    /// to the digit sequence (tone or pause); fewer than `out.len()` means it
    /// finished in this buffer.
    pub fn fill(&mut self, out: &mut [i16]) -> usize {
        let mut i = 0;
        while i < out.len() {
            let rest = &mut out[i..];
            match self.phase {
                Phase::Idle => {
                    let Some(digit) = self.queue.pop_front() else {
                        rest.fill(0);
                        return i;
                    };
                    self.start(digit);
                }
                Phase::Tone { left } => {
                    let n = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    for o in &mut rest[..n] {
                        *o = to_i16(self.low.next() + self.high.next());
                    }
                    i += n;
                    let left = left - n as u64;
                    self.phase = if left > 0 {
                        Phase::Tone { left }
                    } else if self.queue.is_empty() || self.off == 0 {
                        Phase::Idle
                    } else {
                        Phase::Pause { left: self.off }
                    };
                }
                Phase::Pause { left } => {
                    let n = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    rest[..n].fill(0);
                    i += n;
                    let left = left - n as u64;
                    self.phase = if left > 0 {
                        Phase::Pause { left }
                    } else {
                        Phase::Idle
                    };
                }
            }
        }
        i
    }

    fn start(&mut self, digit: DtmfDigit) {
        let (lo, hi) = digit.frequencies();
        let rate = self.config.sample_rate;
        self.low = Osc::new(f64::from(lo), rate, self.low_amp);
        self.high = Osc::new(f64::from(hi), rate, self.high_amp);
        self.phase = Phase::Tone { left: self.on };
    }

    /// True when nothing is queued or playing.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.phase == Phase::Idle && self.queue.is_empty()
    }

    /// Samples still to come for everything queued (tones and pauses).
    #[must_use]
    pub fn remaining_samples(&self) -> u64 {
        let queued = self.queue.len() as u64;
        let current = match self.phase {
            Phase::Idle => 0,
            Phase::Tone { left } => left + if queued > 0 { self.off } else { 0 },
            Phase::Pause { left } => left,
        };
        current + queued * self.on + queued.saturating_sub(1) * self.off
    }

    /// Drops everything queued and stops the current digit at once.
    pub fn clear(&mut self) {
        self.queue.clear();
        self.phase = Phase::Idle;
    }

    /// The settings in use.
    #[must_use]
    pub fn config(&self) -> &DtmfGenConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_follows_the_config() {
        let mut g = DtmfGenerator::new(DtmfGenConfig::default()).expect("valid");
        g.queue("12").expect("digits");
        assert_eq!(g.remaining_samples(), 800 + 800 + 800);
        let mut out = vec![0i16; 3000];
        // Odd chunk sizes must give the same stream as one call.
        let mut n = 0;
        for c in out.chunks_mut(7) {
            n += g.fill(c);
        }
        assert_eq!(n, 2400);
        assert!(g.is_idle());
        assert!(out[..800].iter().any(|&s| s != 0));
        assert!(out[800..1600].iter().all(|&s| s == 0));
        assert!(out[1600..2400].iter().any(|&s| s != 0));
        assert!(out[2400..].iter().all(|&s| s == 0));
        let mut whole = DtmfGenerator::new(DtmfGenConfig::default()).expect("valid");
        whole.queue("12").expect("digits");
        let mut one = vec![0i16; 3000];
        whole.fill(&mut one);
        assert_eq!(one, out);
    }

    #[test]
    fn levels_are_as_configured() {
        let cfg = DtmfGenConfig {
            low_dbm0: -10.0,
            high_dbm0: -10.0,
            on_ms: 1000,
            ..DtmfGenConfig::default()
        };
        let mut g = DtmfGenerator::new(cfg).expect("valid");
        g.queue("5").expect("digit");
        let mut out = vec![0i16; 8000];
        g.fill(&mut out);
        // Two tones at −10 dBm0 each: −6.99 dBm0 in total.
        let level = crate::level::rms_dbm0(&out);
        assert!((level + 6.99).abs() < 0.05, "{level}");
    }

    #[test]
    fn rejects_bad_input() {
        let mut g = DtmfGenerator::new(DtmfGenConfig::default()).expect("valid");
        assert!(g.queue("1x").is_err());
        assert!(g.is_idle(), "nothing queued after an error");
        assert!(DtmfGenerator::new(DtmfGenConfig::new(11025)).is_err());
        let loud = DtmfGenConfig {
            low_dbm0: 6.0,
            ..DtmfGenConfig::default()
        };
        assert!(DtmfGenerator::new(loud).is_err());
        g.queue("1").expect("digit");
        g.clear();
        assert!(g.is_idle());
    }
}
