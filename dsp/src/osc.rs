//! Phase-continuous sine oscillators shared by the generators.
//!
//! A rotating phasor (one complex multiply per sample) instead of `sin()` per
//! sample: about ten times cheaper, and exact in frequency to ~1e-9. Rounding
//! makes the phasor's length drift slowly, so it is renormalised every
//! [`RENORM_EVERY`] samples.

use std::f64::consts::TAU;

const RENORM_EVERY: u32 = 256;

/// One sine oscillator: `amplitude · sin(2π f n / rate + φ0)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Osc {
    re: f64,
    im: f64,
    step_re: f64,
    step_im: f64,
    amplitude: f64,
    count: u32,
}

impl Osc {
    /// An oscillator at `freq_hz` for `rate` Hz, starting at phase 0 (so a
    /// tone starts at a zero crossing, without a click).
    pub(crate) fn new(freq_hz: f64, rate: u32, amplitude: f64) -> Self {
        let w = TAU * freq_hz / f64::from(rate);
        Self {
            re: 1.0,
            im: 0.0,
            step_re: w.cos(),
            step_im: w.sin(),
            amplitude,
            count: 0,
        }
    }

    /// Next sample (before scaling to i16).
    #[inline]
    pub(crate) fn next(&mut self) -> f64 {
        let out = self.im * self.amplitude;
        let re = self.re * self.step_re - self.im * self.step_im;
        let im = self.re * self.step_im + self.im * self.step_re;
        self.re = re;
        self.im = im;
        self.count += 1;
        if self.count >= RENORM_EVERY {
            self.count = 0;
            // One Newton step towards |z| = 1; the error is ~1e-15 here.
            let g = 1.5 - 0.5 * (re * re + im * im);
            self.re *= g;
            self.im *= g;
        }
        out
    }
}

/// Rounds (half away from zero) and saturates a generated sample to i16.
/// Adding ±½ then truncating avoids `f64::round`, a libm call on baseline
/// x86-64, in the per-sample loops.
#[inline]
pub(crate) fn to_i16(v: f64) -> i16 {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "clamped to the i16 range first; the cast truncates ±½ away"
    )]
    let s = (v.clamp(-32768.0, 32767.0) + 0.5f64.copysign(v)) as i16;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_sin_over_a_long_run() {
        let mut o = Osc::new(1336.0, 8000, 1.0);
        let mut worst: f64 = 0.0;
        for n in 0..800_000u32 {
            let expect = (TAU * 1336.0 * f64::from(n) / 8000.0).sin();
            worst = worst.max((o.next() - expect).abs());
        }
        assert!(worst < 1e-6, "max error {worst}");
    }

    #[test]
    fn saturates() {
        assert_eq!(to_i16(40000.0), 32767);
        assert_eq!(to_i16(-40000.0), -32768);
        assert_eq!(to_i16(1.5), 2);
        assert_eq!(to_i16(-1.5), -2);
        assert_eq!(to_i16(1.49), 1);
        assert_eq!(to_i16(-0.2), 0);
        assert_eq!(to_i16(32767.4), 32767);
        assert_eq!(to_i16(-32768.6), -32768);
    }
}
