//! Signal levels: the dBFS / dBm0 conventions of the whole crate, a level
//! meter and the silence detector behind `recording_start.end_of_silence`.
//!
//! # Reference levels
//!
//! Samples are 16-bit linear (`i16`), the way G.711 is expanded everywhere
//! (µ-law's 14-bit and A-law's 13-bit codes shifted left).
//!
//! * **dBFS** is mean power relative to a full-scale *square* wave
//!   (`32768²`): a full-scale sine reads −3.01 dBFS.
//! * **dBm0**: G.711 puts the maximum sine at +3.14 dBm0 (A-law; µ-law's exact
//!   figure is +3.17 dBm0, the 0.03 dB difference is ignored, as spandsp does).
//!   So 0 dBm0 is a sine 3.14 dB below full scale, peak amplitude ≈ 22 827, and
//!   `dBm0 = dBFS + 6.15`.

use crate::error::{DspError, Result};
use crate::util::{len_f32, ms_to_samples};

/// Peak amplitude of a full-scale sine in 16-bit samples.
pub const FULL_SCALE: f32 = 32768.0;

/// Level in dBm0 of a full-scale sine (G.711 A-law; µ-law is 3.17).
#[expect(clippy::approx_constant, reason = "G.711's +3.14 dBm0, not π")]
pub const FULL_SCALE_SINE_DBM0: f32 = 3.14;

/// Add this to a dBFS figure (square-wave reference) to get dBm0.
pub const DBFS_TO_DBM0: f32 = FULL_SCALE_SINE_DBM0 + 3.0103;

/// Floor returned instead of −∞ for digital silence, so comparisons and
/// arithmetic on levels stay finite.
pub const MIN_DB: f32 = -120.0;

/// Peak amplitude (16-bit scale) of a sine at `dbm0`.
#[must_use]
pub fn dbm0_to_amplitude(dbm0: f32) -> f32 {
    FULL_SCALE * 10f32.powf((dbm0 - FULL_SCALE_SINE_DBM0) / 20.0)
}

/// Mean power (mean of `x²`, 16-bit scale) of a sine at `dbm0`.
#[must_use]
pub fn dbm0_to_power(dbm0: f32) -> f32 {
    let a = dbm0_to_amplitude(dbm0);
    a * a / 2.0
}

/// dBm0 of a signal whose mean power (mean of `x²`, 16-bit scale) is `power`.
#[must_use]
pub fn power_to_dbm0(power: f32) -> f32 {
    power_to_dbfs(power) + DBFS_TO_DBM0
}

/// dBFS (square-wave reference) of a mean power `power` (mean of `x²`).
#[must_use]
pub fn power_to_dbfs(power: f32) -> f32 {
    if power <= 0.0 {
        return MIN_DB;
    }
    (10.0 * (power / (FULL_SCALE * FULL_SCALE)).log10()).max(MIN_DB)
}

/// Linear amplitude factor of a gain in dB.
#[must_use]
pub fn db_to_linear(db: f32) -> f32 {
    10f32.powf(db / 20.0)
}

/// Mean of `x²` over a block (0 for an empty block).
#[must_use]
pub fn mean_power(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    sum_squares(samples) / len_f32(samples.len())
}

/// RMS level of a block in dBFS ([`MIN_DB`] for silence or an empty block).
#[must_use]
pub fn rms_dbfs(samples: &[i16]) -> f32 {
    power_to_dbfs(mean_power(samples))
}

/// Level of a block in dBm0 ([`MIN_DB`] + 6.15 for silence).
#[must_use]
pub fn rms_dbm0(samples: &[i16]) -> f32 {
    power_to_dbm0(mean_power(samples))
}

/// `Σx²` in f32; eight partial sums so the loop vectorises and long blocks
/// do not lose precision in one running sum.
pub(crate) fn sum_squares(samples: &[i16]) -> f32 {
    let mut acc = [0f32; 8];
    let mut chunks = samples.chunks_exact(8);
    for c in &mut chunks {
        for (a, &s) in acc.iter_mut().zip(c) {
            let x = f32::from(s);
            *a += x * x;
        }
    }
    for (a, &s) in acc.iter_mut().zip(chunks.remainder()) {
        let x = f32::from(s);
        *a += x * x;
    }
    acc.iter().sum()
}

/// A level meter: a smoothed level (exponential average of `x²` with a
/// configurable time constant), the mean level since the last reset, and the
/// peak magnitude.
#[derive(Debug, Clone)]
pub struct LevelMeter {
    alpha: f32,
    smoothed: f32,
    total: f64,
    count: u64,
    peak: u16,
}

impl LevelMeter {
    /// A meter whose smoothed level follows the signal with a time constant of
    /// `time_constant_ms` (e.g. 125 ms "fast", 1000 ms "slow" in sound-level
    /// meter terms). Any positive sample rate is accepted.
    ///
    /// # Errors
    /// [`DspError::InvalidConfig`] when the rate or the time constant is 0.
    pub fn new(sample_rate: u32, time_constant_ms: u32) -> Result<Self> {
        if sample_rate == 0 || time_constant_ms == 0 {
            return Err(DspError::InvalidConfig {
                component: "level meter",
                field: if sample_rate == 0 {
                    "sample_rate"
                } else {
                    "time_constant_ms"
                },
                reason: "must be greater than 0".into(),
            });
        }
        let tau_samples = f64::from(time_constant_ms) * f64::from(sample_rate) / 1000.0;
        #[expect(
            clippy::cast_possible_truncation,
            reason = "a smoothing coefficient in (0, 1] fits f32"
        )]
        let alpha = (1.0 - (-1.0 / tau_samples).exp()) as f32;
        Ok(Self {
            alpha,
            smoothed: 0.0,
            total: 0.0,
            count: 0,
            peak: 0,
        })
    }

    /// Feeds a block of samples.
    pub fn process(&mut self, samples: &[i16]) {
        let mut s = self.smoothed;
        for &x in samples {
            let v = f32::from(x);
            s += self.alpha * (v * v - s);
        }
        self.smoothed = s;
        self.total += f64::from(sum_squares(samples));
        self.count += samples.len() as u64;
        let peak = samples.iter().map(|x| x.unsigned_abs()).max().unwrap_or(0);
        self.peak = self.peak.max(peak);
    }

    /// Smoothed level in dBFS.
    #[must_use]
    pub fn level_dbfs(&self) -> f32 {
        power_to_dbfs(self.smoothed)
    }

    /// Smoothed level in dBm0.
    #[must_use]
    pub fn level_dbm0(&self) -> f32 {
        power_to_dbm0(self.smoothed)
    }

    /// Mean level in dBm0 over everything fed since creation or [`reset`](Self::reset).
    #[must_use]
    pub fn mean_dbm0(&self) -> f32 {
        if self.count == 0 {
            return power_to_dbm0(0.0);
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_precision_loss,
            reason = "a mean power fits f32; the count's precision loss is irrelevant"
        )]
        let mean = (self.total / self.count as f64) as f32;
        power_to_dbm0(mean)
    }

    /// Largest magnitude seen since creation or reset (0..=32768).
    #[must_use]
    pub fn peak(&self) -> u16 {
        self.peak
    }

    /// Clears all state.
    pub fn reset(&mut self) {
        self.smoothed = 0.0;
        self.total = 0.0;
        self.count = 0;
        self.peak = 0;
    }
}

/// Settings of the [`SilenceDetector`].
#[derive(Debug, Clone, PartialEq)]
pub struct SilenceConfig {
    /// Sample rate in Hz (any positive rate).
    pub sample_rate: u32,
    /// A 10 ms block at or below this level is "quiet". Default −42 dBm0:
    /// above the idle noise of a GSM or PSTN line (≈ −55…−65 dBm0), well
    /// below quiet speech (≈ −30 dBm0).
    pub threshold_dbm0: f32,
    /// Speech needs this many consecutive loud milliseconds to count, so a
    /// click or a single noise burst does not restart the silence. Default 20.
    pub min_voice_ms: u32,
    /// The signal is reported silent only after this much quiet, so the
    /// pauses between words do not count. Default 300 ms.
    pub hangover_ms: u32,
}

impl SilenceConfig {
    /// The defaults documented on each field, at `sample_rate`.
    #[must_use]
    pub fn new(sample_rate: u32) -> Self {
        Self {
            sample_rate,
            threshold_dbm0: -42.0,
            min_voice_ms: 20,
            hangover_ms: 300,
        }
    }
}

impl Default for SilenceConfig {
    fn default() -> Self {
        Self::new(8000)
    }
}

/// Energy-threshold silence detector with hangover.
///
/// It measures 10 ms blocks. [`silence_ms`](Self::silence_ms) is how long the
/// signal has been quiet (since the last speech, or since creation); it is what
/// `recording_start.end_of_silence` compares with. [`is_silent`](Self::is_silent)
/// becomes true once that exceeds the hangover.
#[derive(Debug, Clone)]
pub struct SilenceDetector {
    config: SilenceConfig,
    block_len: usize,
    threshold: f32,
    min_voice_blocks: u32,
    hangover_samples: u64,
    acc: f32,
    filled: usize,
    loud_run: u32,
    quiet_samples: u64,
}

impl SilenceDetector {
    /// A detector with the given settings.
    ///
    /// # Errors
    /// [`DspError::InvalidConfig`] for a sample rate below 100 Hz or a
    /// threshold that is not a finite number.
    pub fn new(config: SilenceConfig) -> Result<Self> {
        if config.sample_rate < 100 {
            return Err(DspError::InvalidConfig {
                component: "silence detector",
                field: "sample_rate",
                reason: format!("{} Hz is below 100 Hz", config.sample_rate),
            });
        }
        if !config.threshold_dbm0.is_finite() {
            return Err(DspError::InvalidConfig {
                component: "silence detector",
                field: "threshold_dbm0",
                reason: "must be a finite number".into(),
            });
        }
        let block_len = usize::try_from(config.sample_rate / 100).unwrap_or(80);
        let threshold = dbm0_to_power(config.threshold_dbm0) * len_f32(block_len);
        let min_voice_blocks = config.min_voice_ms.div_ceil(10).max(1);
        let hangover_samples = ms_to_samples(config.hangover_ms, config.sample_rate);
        Ok(Self {
            config,
            block_len,
            threshold,
            min_voice_blocks,
            hangover_samples,
            acc: 0.0,
            filled: 0,
            loud_run: 0,
            quiet_samples: 0,
        })
    }

    /// Feeds samples; returns [`is_silent`](Self::is_silent) after them.
    pub fn process(&mut self, mut samples: &[i16]) -> bool {
        while !samples.is_empty() {
            let take = (self.block_len - self.filled).min(samples.len());
            let (head, rest) = samples.split_at(take);
            self.acc += sum_squares(head);
            self.filled += take;
            samples = rest;
            if self.filled == self.block_len {
                self.end_block();
            }
        }
        self.is_silent()
    }

    fn end_block(&mut self) {
        let block = self.block_len as u64;
        if self.acc > self.threshold {
            self.loud_run += 1;
            if self.loud_run >= self.min_voice_blocks {
                self.quiet_samples = 0;
            } else {
                // Not (yet) speech: a short burst neither ends nor extends
                // the silence.
                self.quiet_samples += block;
            }
        } else {
            self.loud_run = 0;
            self.quiet_samples += block;
        }
        self.acc = 0.0;
        self.filled = 0;
    }

    /// True once the signal has been quiet for longer than the hangover.
    #[must_use]
    pub fn is_silent(&self) -> bool {
        self.quiet_samples >= self.hangover_samples
    }

    /// How long the signal has been quiet, in samples (block resolution).
    #[must_use]
    pub fn silence_samples(&self) -> u64 {
        self.quiet_samples
    }

    /// How long the signal has been quiet, in milliseconds (10 ms resolution).
    #[must_use]
    pub fn silence_ms(&self) -> u64 {
        self.quiet_samples * 1000 / u64::from(self.config.sample_rate)
    }

    /// The settings in use.
    #[must_use]
    pub fn config(&self) -> &SilenceConfig {
        &self.config
    }

    /// Back to the initial state (silent for 0 ms).
    pub fn reset(&mut self) {
        self.acc = 0.0;
        self.filled = 0;
        self.loud_run = 0;
        self.quiet_samples = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, dbm0: f32, n: usize, rate: f32) -> Vec<i16> {
        let a = dbm0_to_amplitude(dbm0);
        (0..n)
            .map(|i| {
                #[expect(clippy::cast_possible_truncation, reason = "test signal")]
                let v = (a * (2.0 * std::f32::consts::PI * freq * len_f32(i) / rate).sin()) as i16;
                v
            })
            .collect()
    }

    #[test]
    fn zero_dbm0_sine_reads_zero_dbm0_and_minus_6_15_dbfs() {
        let s = sine(1000.0, 0.0, 8000, 8000.0);
        assert!((rms_dbm0(&s) - 0.0).abs() < 0.05, "{}", rms_dbm0(&s));
        assert!((rms_dbfs(&s) + 6.15).abs() < 0.05, "{}", rms_dbfs(&s));
        let full = sine(1000.0, FULL_SCALE_SINE_DBM0 - 0.001, 8000, 8000.0);
        assert!((rms_dbfs(&full) + 3.01).abs() < 0.05);
    }

    #[test]
    fn silence_reads_the_floor() {
        assert_eq!(rms_dbfs(&[0; 80]), MIN_DB);
        assert_eq!(rms_dbfs(&[]), MIN_DB);
    }

    #[test]
    fn meter_follows_level_changes() {
        let mut m = LevelMeter::new(8000, 50).expect("valid");
        m.process(&sine(440.0, -20.0, 8000, 8000.0));
        assert!((m.level_dbm0() + 20.0).abs() < 0.5, "{}", m.level_dbm0());
        m.process(&sine(440.0, -40.0, 8000, 8000.0));
        assert!((m.level_dbm0() + 40.0).abs() < 0.5, "{}", m.level_dbm0());
        assert!((m.mean_dbm0() + 22.96).abs() < 0.2, "{}", m.mean_dbm0());
        assert!(m.peak() > 2000);
        m.reset();
        assert_eq!(m.peak(), 0);
        assert!(LevelMeter::new(0, 10).is_err());
    }

    #[test]
    fn silence_detector_counts_quiet_time_and_ignores_clicks() {
        let mut d = SilenceDetector::new(SilenceConfig::default()).expect("valid");
        assert!(!d.process(&[0; 800]));
        assert_eq!(d.silence_ms(), 100);
        assert!(d.process(&[0; 1600]));
        assert_eq!(d.silence_ms(), 300);
        // A 10 ms click does not count as speech.
        d.process(&sine(1000.0, -10.0, 80, 8000.0));
        assert_eq!(d.silence_ms(), 310);
        // 100 ms of speech-level signal resets the silence.
        assert!(!d.process(&sine(300.0, -20.0, 800, 8000.0)));
        assert_eq!(d.silence_ms(), 0);
        // Quiet noise below the threshold counts as silence.
        d.process(&sine(300.0, -50.0, 2400, 8000.0));
        assert_eq!(d.silence_ms(), 300);
        assert!(d.is_silent());
        d.reset();
        assert_eq!(d.silence_samples(), 0);
    }

    #[test]
    fn silence_detector_is_chunking_independent() {
        let mut sig = sine(300.0, -20.0, 1200, 8000.0);
        sig.extend(std::iter::repeat_n(0, 3333));
        let mut a = SilenceDetector::new(SilenceConfig::default()).expect("valid");
        let mut b = a.clone();
        a.process(&sig);
        for c in sig.chunks(37) {
            b.process(c);
        }
        assert_eq!(a.silence_samples(), b.silence_samples());
        assert!(SilenceDetector::new(SilenceConfig::new(50)).is_err());
    }
}
