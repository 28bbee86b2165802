//! Sample-rate conversion for prompts and recordings: espeak-ng's 22 050 Hz,
//! files at 16/44.1/48 kHz, calls at 8 kHz (or 16 kHz).
//!
//! [`Resampler`] is a polyphase windowed-sinc converter for any rational
//! ratio `to/from` (reduced by their gcd to `L/M`, `L ≤ 1024`). The prototype
//! low-pass (Kaiser window, β for 80 dB) passes up to 85 % of the lower
//! Nyquist frequency and stops from the lower Nyquist frequency on (for
//! 22 050 → 8000: flat to 3400 Hz, ≥ 80 dB down from 4000 Hz), so nothing
//! aliases into the output band. Exactly 2:1 and 1:2 use a cheap half-band
//! filter instead (≈ 4× fewer operations; 70 dB; flat to 0.85 · Nyquist,
//! with the band between the lower Nyquist frequency and 1.15 × it
//! attenuated less than fully — above the telephone band).
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

#[derive(Debug, Clone)]
enum Engine {
    /// `coefs[p·taps..(p+1)·taps]` is branch `p`.
    Poly {
        l: u64,
        m: u64,
        taps: usize,
        coefs: Vec<f32>,
    },
    /// 2:1 decimation. `h[j]` multiplies the input pair at offsets ±(2j+1).
    HalfDown { center: f32, h: Vec<f32> },
    /// 1:2 interpolation. `g[j]` multiplies the input pair at ±(j + ½)
    /// around each odd output; even outputs are the input samples.
    HalfUp { g: Vec<f32> },
}

/// Streaming rational-ratio resampler (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct Resampler {
    from: u32,
    to: u32,
    engine: Engine,
    /// Zeros standing in for the input before the start.
    lead: usize,
    /// Input samples (as f32), `hist[0]` being hist coordinate `base`.
    hist: Vec<f32>,
    base: u64,
    /// Input samples pushed, zeros of `flush` included.
    pushed: u64,
    /// Real input samples (excluding flush padding).
    real_in: u64,
    /// Index of the next output sample.
    next: u64,
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
        let (engine, lead) = if (l, m) == (1, 2) {
            let h = halfband(f64::from(from));
            let lead = 2 * h.len() - 1;
            (Engine::HalfDown { center: 0.5, h }, lead)
        } else if (l, m) == (2, 1) {
            let h = halfband(f64::from(to));
            let g: Vec<f32> = h.iter().map(|c| 2.0 * c).collect();
            let lead = g.len() - 1;
            (Engine::HalfUp { g }, lead)
        } else {
            let (taps, coefs) = polyphase(from, to, l).map_err(refuse)?;
            (Engine::Poly { l, m, taps, coefs }, taps / 2 - 1)
        };
        let mut r = Self {
            from,
            to,
            engine,
            lead,
            hist: Vec::new(),
            base: 0,
            pushed: 0,
            real_in: 0,
            next: 0,
            limit: None,
        };
        r.hist.reserve_exact(r.window() + lead + 2 * CHUNK);
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
        match &self.engine {
            Engine::Poly { taps, .. } => *taps,
            Engine::HalfDown { h, .. } => 2 * h.len() + 1,
            Engine::HalfUp { g } => 2 * g.len(),
        }
    }

    /// Hist coordinates spanned by one output's window.
    fn window(&self) -> usize {
        match &self.engine {
            Engine::Poly { taps, .. } => *taps,
            Engine::HalfDown { h, .. } => 4 * h.len() - 1,
            Engine::HalfUp { g } => 2 * g.len(),
        }
    }

    /// First hist coordinate of output `k`'s window.
    fn window_start(&self, k: u64) -> u64 {
        match &self.engine {
            Engine::Poly { l, m, .. } => k * m / l,
            Engine::HalfDown { .. } => 2 * k,
            Engine::HalfUp { .. } => k / 2,
        }
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
        self.hist.resize(self.lead, 0.0);
        self.base = 0;
        self.pushed = 0;
        self.real_in = 0;
        self.next = 0;
        self.limit = None;
    }

    /// Appends input to the history after dropping what no output needs any
    /// more; returns how many samples were taken (≤ [`CHUNK`]).
    fn push(&mut self, input: &[i16], padding: bool) -> usize {
        let keep_from = self
            .window_start(self.next)
            .min(self.base + self.hist.len() as u64);
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
        let window = self.window();
        let end = self.base + self.hist.len() as u64;
        let mut n = 0;
        while n < out.len() {
            if self.limit.is_some_and(|lim| self.next >= lim) {
                break;
            }
            let start = self.window_start(self.next);
            if start + window as u64 > end {
                break;
            }
            let off = usize::try_from(start - self.base).unwrap_or(0);
            let Some(w) = self.hist.get(off..off + window) else {
                break;
            };
            let y = match &self.engine {
                Engine::Poly { l, m, taps, coefs } => {
                    let p = usize::try_from(self.next * m % l).unwrap_or(0);
                    dot(w, &coefs[p * taps..(p + 1) * taps])
                }
                Engine::HalfDown { center, h } => {
                    let c = 2 * h.len() - 1;
                    let mut acc = center * w[c];
                    for (j, &hj) in h.iter().enumerate() {
                        acc += hj * (w[c - (2 * j + 1)] + w[c + 2 * j + 1]);
                    }
                    acc
                }
                Engine::HalfUp { g } => {
                    // x[n] sits at w[P − 1]; odd outputs lie half-way
                    // between x[n] and x[n + 1].
                    let c = g.len() - 1;
                    if self.next.is_multiple_of(2) {
                        w[c]
                    } else {
                        let mut acc = 0.0;
                        for (j, &gj) in g.iter().enumerate() {
                            acc += gj * (w[c - j] + w[c + 1 + j]);
                        }
                        acc
                    }
                }
            };
            out[n] = to_i16(f64::from(y));
            n += 1;
            self.next += 1;
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
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    reason = "coefficients fit f32; indices are small"
)]
fn polyphase(from: u32, to: u32, l: u64) -> std::result::Result<(usize, Vec<f32>), String> {
    let fs = f64::from(from);
    let nyq = f64::from(from.min(to)) / 2.0;
    let pass = PASS_FRACTION * nyq;
    let fc = (pass + nyq) / 2.0 / fs;
    let transition = (nyq - pass) / fs;
    let n = kaiser_taps(POLY_ATTEN_DB, transition);
    let taps = n.div_ceil(8) * 8;
    let l = usize::try_from(l).map_err(|e| e.to_string())?;
    if taps * l > MAX_COEFS {
        return Err(format!(
            "the filter would need {} coefficients (limit {MAX_COEFS})",
            taps * l
        ));
    }
    let beta = kaiser_beta(POLY_ATTEN_DB);
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

/// Half-band low-pass at `rate` (cutoff rate/4): the coefficients at odd
/// offsets ±1, ±3, … (even offsets are zero, the centre is ½).
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    reason = "coefficients fit f32; indices are small"
)]
fn halfband(rate: f64) -> Vec<f32> {
    let nyq_low = rate / 4.0;
    let transition = 2.0 * (1.0 - PASS_FRACTION) * nyq_low / rate;
    let n = kaiser_taps(HALFBAND_ATTEN_DB, transition);
    let pairs = n.div_ceil(4);
    let span = (2 * pairs) as f64;
    let beta = kaiser_beta(HALFBAND_ATTEN_DB);
    let raw: Vec<f64> = (0..pairs)
        .map(|j| {
            let t = (2 * j + 1) as f64;
            0.5 * sinc(t / 2.0) * kaiser(t / span, beta)
        })
        .collect();
    // DC gain exactly 1: centre ½ plus twice the sum of the pairs.
    let scale = 0.5 / (2.0 * raw.iter().sum::<f64>());
    raw.iter().map(|r| (r * scale) as f32).collect()
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
