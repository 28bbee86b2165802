//! Deterministic test signals: tone bursts with chosen frequencies, levels,
//! durations and phases, seeded white Gaussian noise, and the G.711 round
//! trip ("codec munging") the suite runs everything through.

use std::f64::consts::TAU;

use flowgate_dsp::g711::Law;
use flowgate_dsp::level::dbm0_to_amplitude;

/// SplitMix64: tiny, seedable, good enough for test noise and jitter.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        #[expect(clippy::cast_precision_loss, reason = "53-bit mantissa by design")]
        let v = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        v
    }

    /// Uniform integer in `0..n`.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % (n.max(1) as u64)).unwrap_or(0)
    }

    /// Standard normal (Box–Muller).
    pub(crate) fn gauss(&mut self) -> f64 {
        let u1 = self.unit().max(1e-300);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
    }
}

/// Codec applied to the whole test signal before detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Munge {
    Linear,
    Ulaw,
    Alaw,
}

impl Munge {
    pub(crate) const ALL: [Munge; 3] = [Munge::Linear, Munge::Ulaw, Munge::Alaw];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Munge::Linear => "linear",
            Munge::Ulaw => "µ-law",
            Munge::Alaw => "A-law",
        }
    }

    pub(crate) fn apply(self, x: &mut [i16]) {
        match self {
            Munge::Linear => {}
            Munge::Ulaw => Law::Ulaw.round_trip(x),
            Munge::Alaw => Law::Alaw.round_trip(x),
        }
    }
}

/// A signal under construction, in f64 so components add without
/// intermediate rounding; saturated to i16 at the end.
#[derive(Debug, Clone)]
pub(crate) struct Builder {
    pub(crate) rate: u32,
    pub(crate) buf: Vec<f64>,
}

pub(crate) fn ms(rate: u32, ms: f64) -> usize {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "non-negative durations of a few seconds"
    )]
    let n = (ms * f64::from(rate) / 1000.0).round().max(0.0) as usize;
    n
}

impl Builder {
    pub(crate) fn new(rate: u32) -> Self {
        Self {
            rate,
            buf: Vec::new(),
        }
    }

    pub(crate) fn silence(&mut self, samples: usize) {
        self.buf.resize(self.buf.len() + samples, 0.0);
    }

    /// Appends a burst of sines `(freq Hz, level dBm0, phase rad)`.
    pub(crate) fn tones(&mut self, parts: &[(f64, f64, f64)], samples: usize) {
        let start = self.buf.len();
        self.silence(samples);
        self.add_tones_at(start, parts, samples);
    }

    /// Adds sines over `samples` samples starting at `start` (extending the
    /// signal if needed).
    pub(crate) fn add_tones_at(&mut self, start: usize, parts: &[(f64, f64, f64)], samples: usize) {
        if self.buf.len() < start + samples {
            self.buf.resize(start + samples, 0.0);
        }
        let rate = f64::from(self.rate);
        for &(f, level, phase) in parts {
            #[expect(clippy::cast_possible_truncation, reason = "dBm0 levels fit f32")]
            let a = f64::from(dbm0_to_amplitude(level as f32));
            let w = TAU * f / rate;
            for (i, s) in self.buf[start..start + samples].iter_mut().enumerate() {
                #[expect(clippy::cast_precision_loss, reason = "short signals")]
                let n = i as f64;
                *s += a * (w * n + phase).sin();
            }
        }
    }

    /// A DTMF digit burst at per-tone levels with random phases.
    pub(crate) fn digit(
        &mut self,
        rng: &mut Rng,
        (f_low, l_low): (f64, f64),
        (f_high, l_high): (f64, f64),
        samples: usize,
    ) {
        let p1 = TAU * rng.unit();
        let p2 = TAU * rng.unit();
        self.tones(&[(f_low, l_low, p1), (f_high, l_high, p2)], samples);
    }

    /// Adds white Gaussian noise of power `level` dBm0 over the whole signal.
    pub(crate) fn add_noise(&mut self, rng: &mut Rng, level_dbm0: f64) {
        #[expect(clippy::cast_possible_truncation, reason = "dBm0 levels fit f32")]
        let sigma = f64::from(dbm0_to_amplitude(level_dbm0 as f32)) / 2f64.sqrt();
        for s in &mut self.buf {
            *s += sigma * rng.gauss();
        }
    }

    /// Saturates to i16 and applies the codec.
    pub(crate) fn finish(&self, munge: Munge) -> Vec<i16> {
        let mut out: Vec<i16> = self
            .buf
            .iter()
            .map(|&v| {
                #[expect(clippy::cast_possible_truncation, reason = "clamped first")]
                let s = v.round().clamp(-32768.0, 32767.0) as i16;
                s
            })
            .collect();
        munge.apply(&mut out);
        out
    }
}
