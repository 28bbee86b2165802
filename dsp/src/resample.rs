//! Sample-rate conversion for prompts and recordings: espeak-ng's 22 050 Hz,
//! files at 16/44.1/48 kHz, calls at 8 kHz (or 16 kHz).
//!
//! [`Resampler`] is a polyphase windowed-sinc converter for any rational
//! ratio `to/from` (reduced by their gcd to `L/M`, `L ≤ 1024`). The prototype
//! low-pass (Kaiser window, β for 80 dB) passes up to 85 % of the lower
//! Nyquist frequency and stops from the lower Nyquist frequency on, so
//! nothing aliases into the output band. The cheap path for exactly 2:1 and
//! 1:2 (16 kHz ↔ 8 kHz) is a half-band design (70 dB, transition band
//! centred on 4 kHz) with a third to a sixth of the taps; 4.0–4.6 kHz then
//! folds onto 3.4–4.0 kHz, above the telephone band.
//!
//! Measured (tone sweeps through the converter, 16-bit samples):
//!
//! | conversion | taps/output | stopband | passband 0…0.85·Nyquist |
//! |---|---|---|---|
//! | 22 050 → 8000 | 192 | ≥ 82.1 dB from 4000 Hz | ±0.013 dB |
//! | 44 100 → 8000 | 376 | ≥ 81.7 dB from 4000 Hz | ±0.013 dB |
//! | 48 000 → 8000 | 408 | ≥ 82.5 dB from 4000 Hz | ±0.013 dB |
//! | 22 050 → 16 000 | 96 | ≥ 82.1 dB from 8000 Hz | ±0.008 dB |
//! | 16 000 → 8000 (half-band) | 64 | ≥ 69.7 dB from 4600 Hz | ±0.012 dB |
//! | 8000 → 16 000 (half-band) | 32 | images ≥ 69.6 dB down | |
//! | 8000 → 22 050 / 48 000 | 72 | images ≥ 73.5 / 72.1 dB down | |
//!
//! Output is time-aligned with the input (no filter delay): output sample
//! `k` is the input at time `k·from/to`. Streaming keeps the filter's history
//! between calls; [`Resampler::flush`] emits the tail at the end so the total
//! output is `ceil(n·to/from)` samples. Nothing allocates after construction
//! except the caller's `Vec` in [`Resampler::process`].

use std::f64::consts::PI;

use crate::error::{DspError, Result};
use crate::osc::to_i16;

/// Stopband attenuation the polyphase design aims for.
const POLY_ATTEN_DB: f64 = 80.0;
/// Stopband attenuation of the half-band path.
const HALFBAND_ATTEN_DB: f64 = 70.0;
/// Passband edge as a fraction of the lower Nyquist frequency.
const PASS_FRACTION: f64 = 0.85;
/// Largest interpolation factor (number of polyphase branches).
const MAX_L: u64 = 1024;
/// Largest coefficient table (4 MiB of f32).
const MAX_COEFS: usize = 1 << 20;
/// Input pushed per step; bounds the history buffer.
const CHUNK: usize = 512;

/// How far a [`Resampler::process_into`] call got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Input samples consumed.
    pub consumed: usize,
    /// Output samples written.
    pub produced: usize,
}

/// Streaming rational-ratio resampler (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct Resampler {
    from: u32,
    to: u32,
    /// Reduced ratio: `l` output samples for every `m` input samples.
    l: u64,
    m: u64,
    /// Taps per branch (even, a multiple of 8).
    taps: usize,
    /// `coefs[p·taps..(p+1)·taps]` is polyphase branch `p`.
    coefs: Vec<f32>,
    /// Input samples (as f32), `hist[0]` being hist coordinate `base`.
    hist: Vec<f32>,
    base: u64,
    /// Input samples pushed, zeros of `flush` included.
    pushed: u64,
    /// Real input samples (excluding flush padding).
    real_in: u64,
    /// Index of the next output sample.
    next: u64,
    /// Its window start (`next·m div l`) and branch (`next·m mod l`), kept
    /// incrementally: two 64-bit divisions per sample would cost more than
    /// a short filter.
    next_start: u64,
    next_branch: u64,
    /// Set by `flush`: stop at this many outputs.
    limit: Option<u64>,
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz (both 1000…192 000).
    ///
    /// # Errors
    /// [`DspError::UnsupportedRatio`] for rates out of range or a ratio
    /// whose reduced interpolation factor exceeds 1024.
    pub fn new(from: u32, to: u32) -> Result<Self> {
        let refuse = |reason: String| DspError::UnsupportedRatio { from, to, reason };
        for r in [from, to] {
            if !(1000..=192_000).contains(&r) {
                return Err(refuse(format!("{r} Hz is outside 1000..=192000 Hz")));
            }
        }
        let g = gcd(u64::from(from), u64::from(to));
        let (l, m) = (u64::from(to) / g, u64::from(from) / g);
        if l > MAX_L {
            return Err(refuse(format!(
                "the reduced ratio {l}/{m} needs more than {MAX_L} filter phases"
            )));
        }
        let (taps, coefs) = polyphase(from, to, l, m).map_err(refuse)?;
        let mut r = Self {
            from,
            to,
            l,
            m,
            taps,
            coefs,
            hist: Vec::new(),
            base: 0,
            pushed: 0,
            real_in: 0,
            next: 0,
            next_start: 0,
            next_branch: 0,
            limit: None,
        };
        r.hist.reserve_exact(2 * taps + 2 * CHUNK);
        r.reset();
        Ok(r)
    }

    /// Input rate in Hz.
    #[must_use]
    pub fn from_rate(&self) -> u32 {
        self.from
    }

    /// Output rate in Hz.
    #[must_use]
    pub fn to_rate(&self) -> u32 {
        self.to
    }

    /// Filter taps applied per output sample (the cost figure).
    #[must_use]
    pub fn taps_per_output(&self) -> usize {
        self.taps
    }

    /// Zeros standing in for the input before the start: `taps/2 − 1`, so
    /// the first output's window is centred on the first input sample.
    fn lead(&self) -> usize {
        self.taps / 2 - 1
    }

    /// An upper bound of the outputs `input_len` more input samples give.
    #[must_use]
    pub fn max_output(&self, input_len: usize) -> usize {
        let n = input_len as u64 * u64::from(self.to) / u64::from(self.from) + 2;
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    /// Converts as much of `input` as fits in `output`.
    pub fn process_into(&mut self, input: &[i16], output: &mut [i16]) -> Progress {
        let mut p = Progress::default();
        loop {
            let made = self.produce(&mut output[p.produced..]);
            p.produced += made;
            if p.produced == output.len() || p.consumed == input.len() {
                return p;
            }
            let taken = self.push(&input[p.consumed..], false);
            p.consumed += taken;
            if taken == 0 && made == 0 {
                // Only after `flush`: the stream is over until `reset`.
                return p;
            }
        }
    }

    /// Converts all of `input`, appending to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        out.reserve(self.max_output(input.len()));
        let mut buf = [0i16; 256];
        let mut rest = input;
        loop {
            let p = self.process_into(rest, &mut buf);
            out.extend_from_slice(&buf[..p.produced]);
            rest = &rest[p.consumed..];
            // A buffer not filled means the input is used up (or the stream
            // was flushed).
            if p.produced < buf.len() {
                return;
            }
        }
    }

    /// Ends the stream: appends the remaining outputs, so that the total is
    /// `ceil(input · to / from)`. Call [`reset`](Self::reset) before reuse.
    pub fn flush(&mut self, out: &mut Vec<i16>) {
        let total = (self.real_in * u64::from(self.to)).div_ceil(u64::from(self.from));
        self.limit = Some(total);
        let zeros = [0i16; CHUNK];
        let mut buf = [0i16; 256];
        while self.next < total {
            let n = self.produce(&mut buf);
            out.extend_from_slice(&buf[..n]);
            if n == 0 && self.push(&zeros, true) == 0 {
                break;
            }
        }
    }

    /// Back to the start of a new stream.
    pub fn reset(&mut self) {
        self.hist.clear();
        self.hist.resize(self.lead(), 0.0);
        self.base = 0;
        self.pushed = 0;
        self.real_in = 0;
        self.next = 0;
        self.next_start = 0;
        self.next_branch = 0;
        self.limit = None;
    }

    /// Appends input to the history after dropping what no output needs any
    /// more; returns how many samples were taken (≤ [`CHUNK`]).
    fn push(&mut self, input: &[i16], padding: bool) -> usize {
        let keep_from = self.next_start.min(self.base + self.hist.len() as u64);
        let drop = usize::try_from(keep_from - self.base).unwrap_or(0);
        if drop > 0 {
            self.hist.drain(..drop);
            self.base = keep_from;
        }
        let room = (self.hist.capacity() - self.hist.len()).min(CHUNK);
        let n = room.min(input.len());
        self.hist.extend(input[..n].iter().map(|&s| f32::from(s)));
        self.pushed += n as u64;
        if !padding {
            self.real_in += n as u64;
        }
        n
    }

    /// Computes outputs while the history covers their windows.
    fn produce(&mut self, out: &mut [i16]) -> usize {
        let taps = self.taps;
        let end = self.base + self.hist.len() as u64;
        let mut n = 0;
        while n < out.len() {
            if self.limit.is_some_and(|lim| self.next >= lim) {
                break;
            }
            let start = self.next_start;
            if start + taps as u64 > end {
                break;
            }
            let off = usize::try_from(start - self.base).unwrap_or(0);
            let p = usize::try_from(self.next_branch).unwrap_or(0);
            let (Some(w), Some(c)) = (
                self.hist.get(off..off + taps),
                self.coefs.get(p * taps..(p + 1) * taps),
            ) else {
                break;
            };
            out[n] = to_i16(f64::from(dot(w, c)));
            n += 1;
            self.next += 1;
            self.next_start += self.m / self.l;
            self.next_branch += self.m % self.l;
            if self.next_branch >= self.l {
                self.next_branch -= self.l;
                self.next_start += 1;
            }
        }
        n
    }
}

/// Converts a whole signal (one call, with flush).
///
/// # Errors
/// As [`Resampler::new`].
pub fn resample(input: &[i16], from: u32, to: u32) -> Result<Vec<i16>> {
    if from == to {
        return Ok(input.to_vec());
    }
    let mut r = Resampler::new(from, to)?;
    let mut out = Vec::with_capacity(r.max_output(input.len()));
    r.process(input, &mut out);
    r.flush(&mut out);
    Ok(out)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Dot product with eight partial sums (vectorises; fixed summation order).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// Kaiser β for a stopband attenuation in dB.
fn kaiser_beta(atten_db: f64) -> f64 {
    if atten_db > 50.0 {
        0.1102 * (atten_db - 8.7)
    } else if atten_db > 21.0 {
        0.5842 * (atten_db - 21.0).powf(0.4) + 0.07886 * (atten_db - 21.0)
    } else {
        0.0
    }
}

/// Modified Bessel function I0 by its power series (converges fast for the
/// β ≤ 10 used here).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    for k in 1..50 {
        let k = f64::from(k);
        term *= q / (k * k);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

/// Kaiser window at `u` ∈ [−1, 1].
fn kaiser(u: f64, beta: f64) -> f64 {
    let v = 1.0 - u * u;
    if v <= 0.0 {
        0.0
    } else {
        bessel_i0(beta * v.sqrt()) / bessel_i0(beta)
    }
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        (PI * x).sin() / (PI * x)
    }
}

/// Kaiser length (taps) for an attenuation and a normalised transition width.
fn kaiser_taps(atten_db: f64, transition: f64) -> usize {
    let n = ((atten_db - 7.95) / (14.36 * transition)).ceil() + 1.0;
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a positive tap count far below 2^32"
    )]
    let n = n.max(4.0) as usize;
    n
}

/// Designs the polyphase branches: `(taps per branch, coefficients)`.
///
/// The prototype low-pass, in input-sample time `τ`, is
/// `2fc·sinc(2fc·τ)·kaiser(τ/K)`. Between `pass` and `stop` it rolls off;
/// for 2:1 and 1:2 the band is centred on the lower Nyquist frequency (a
/// half-band filter: every other coefficient is zero and far fewer taps are
/// needed), otherwise it ends there.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    reason = "coefficients fit f32; indices are small"
)]
fn polyphase(from: u32, to: u32, l: u64, m: u64) -> std::result::Result<(usize, Vec<f32>), String> {
    let fs = f64::from(from);
    let nyq = f64::from(from.min(to)) / 2.0;
    let pass = PASS_FRACTION * nyq;
    let (stop, atten) = if (l, m) == (1, 2) || (l, m) == (2, 1) {
        ((2.0 - PASS_FRACTION) * nyq, HALFBAND_ATTEN_DB)
    } else {
        (nyq, POLY_ATTEN_DB)
    };
    let fc = (pass + stop) / 2.0 / fs;
    let n = kaiser_taps(atten, (stop - pass) / fs);
    let taps = n.div_ceil(8) * 8;
    let l = usize::try_from(l).map_err(|e| e.to_string())?;
    if taps * l > MAX_COEFS {
        return Err(format!(
            "the filter would need {} coefficients (limit {MAX_COEFS})",
            taps * l
        ));
    }
    let beta = kaiser_beta(atten);
    let k = (taps / 2) as f64;
    let mut coefs = vec![0f32; taps * l];
    for (p, branch) in coefs.chunks_exact_mut(taps).enumerate() {
        let frac = p as f64 / l as f64;
        let raw: Vec<f64> = (0..taps)
            .map(|j| {
                let tau = frac + (k - 1.0) - j as f64;
                2.0 * fc * sinc(2.0 * fc * tau) * kaiser(tau / k, beta)
            })
            .collect();
        // Exact unity gain at DC in every branch.
        let sum: f64 = raw.iter().sum();
        for (c, r) in branch.iter_mut().zip(&raw) {
            *c = (r / sum) as f32;
        }
    }
    Ok((taps, coefs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f64, rate: u32, n: usize, amp: f64) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = f64::from(u32::try_from(i).unwrap_or(0)) / f64::from(rate);
                to_i16(amp * (2.0 * PI * freq * t).sin())
            })
            .collect()
    }

    fn power(x: &[i16]) -> f64 {
        x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len().max(1) as f64
    }

    /// Single-bin DFT power of `x` at `freq`.
    fn bin_power(x: &[i16], freq: f64, rate: u32) -> f64 {
        let (mut re, mut im) = (0.0, 0.0);
        for (i, &s) in x.iter().enumerate() {
            let ph = 2.0 * PI * freq * i as f64 / f64::from(rate);
            re += f64::from(s) * ph.cos();
            im += f64::from(s) * ph.sin();
        }
        2.0 * (re * re + im * im) / (x.len() as f64).powi(2)
    }

    #[test]
    fn lengths_and_alignment() {
        for (from, to) in [
            (22050, 8000),
            (8000, 22050),
            (16000, 8000),
            (8000, 16000),
            (44100, 8000),
            (48000, 16000),
            (11025, 8000),
        ] {
            let input = tone(440.0, from, usize::try_from(from).unwrap_or(0), 10000.0);
            let out = resample(&input, from, to).expect("supported");
            let expect = usize::try_from(to).unwrap_or(0);
            assert_eq!(out.len(), expect, "{from}->{to}");
            // No delay: the output matches an ideal 440 Hz sine at `to`.
            let ideal = tone(440.0, to, expect, 10000.0);
            let mid = expect / 4..expect * 3 / 4;
            let err: f64 = out[mid.clone()]
                .iter()
                .zip(&ideal[mid.clone()])
                .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
                .sum::<f64>()
                / mid.len() as f64;
            let snr = 10.0 * (power(&ideal) / err.max(1e-9)).log10();
            assert!(snr > 55.0, "{from}->{to}: SNR {snr:.1} dB");
        }
    }

    #[test]
    fn streaming_matches_one_shot() {
        let input = tone(1000.0, 22050, 30000, 12000.0);
        let whole = resample(&input, 22050, 8000).expect("supported");
        let mut r = Resampler::new(22050, 8000).expect("supported");
        let mut out = Vec::new();
        for c in input.chunks(441) {
            r.process(c, &mut out);
        }
        r.flush(&mut out);
        assert_eq!(out, whole);
        // process_into with a tiny output buffer.
        r.reset();
        let mut small = Vec::new();
        let mut rest = &input[..];
        let mut buf = [0i16; 7];
        while !rest.is_empty() {
            let p = r.process_into(rest, &mut buf);
            small.extend_from_slice(&buf[..p.produced]);
            rest = &rest[p.consumed..];
        }
        r.flush(&mut small);
        assert_eq!(small, whole);
    }

    /// Tones above the output's Nyquist frequency must not alias into it.
    #[test]
    fn stopband_attenuation() {
        for (from, to, freqs, min_db) in [
            (
                22050,
                8000,
                &[4100.0, 4500.0, 5000.0, 7000.0, 10000.0][..],
                75.0,
            ),
            (48000, 8000, &[4100.0, 6000.0, 12000.0, 20000.0][..], 75.0),
            (16000, 8000, &[4700.0, 5500.0, 7000.0][..], 65.0),
        ] {
            for &f in freqs {
                let input = tone(f, from, usize::try_from(from).unwrap_or(0), 20000.0);
                let out = resample(&input, from, to).expect("supported");
                let alias = (f64::from(to) - f).abs();
                let p = bin_power(&out[400..], alias, to).max(1e-12);
                let att = 10.0 * (power(&input) / p).log10();
                assert!(att >= min_db, "{from}->{to} {f} Hz: only {att:.1} dB");
            }
        }
    }

    #[test]
    fn upsampling_suppresses_images() {
        let input = tone(1000.0, 8000, 8000, 20000.0);
        for to in [16000, 22050, 48000] {
            let out = resample(&input, 8000, to).expect("supported");
            let image = bin_power(&out[400..], 7000.0, to).max(1e-12);
            let att = 10.0 * (power(&input) / image).log10();
            assert!(att > 65.0, "8000->{to}: image only {att:.1} dB down");
        }
    }

    #[test]
    fn refuses_bad_ratios() {
        assert!(Resampler::new(0, 8000).is_err());
        assert!(Resampler::new(8000, 500_000).is_err());
        assert!(Resampler::new(44100, 8009).is_err());
        assert_eq!(
            resample(&[1, 2, 3], 8000, 8000).expect("same"),
            vec![1, 2, 3]
        );
        let r = Resampler::new(16000, 8000).expect("supported");
        assert!(r.taps_per_output() < 70);
    }

    #[test]
    fn full_scale_input_saturates_without_panicking() {
        let sq: Vec<i16> = (0..5000)
            .map(|i| if (i / 3) % 2 == 0 { i16::MAX } else { i16::MIN })
            .collect();
        for (a, b) in [(22050, 8000), (8000, 16000), (16000, 8000)] {
            let out = resample(&sq, a, b).expect("supported");
            assert!(!out.is_empty());
        }
    }
}
