//! DTMF detector conforming to ITU-T Q.23/Q.24.
//!
//! The method is described on [`DtmfDetector`].

use std::f64::consts::TAU;
use std::sync::OnceLock;

use super::{COL_HZ, DtmfDigit, ROW_HZ};
use crate::error::{DspError, Result};
use crate::level::dbm0_to_amplitude;
use crate::util::{check_rate, len_f32};

/// Largest half block (16 kHz).
const MAX_HALF: usize = 102;
/// Consecutive hit windows that declare a digit.
const HITS_TO_START: u32 = 4;
/// Consecutive windows without the digit that end it.
const MISSES_TO_END: u32 = 5;
/// Phase increments kept for the frequency estimate.
const INCS: usize = (HITS_TO_START - 1) as usize;
/// Half-block energies must agree within this factor (3 dB).
const STATIONARITY: f32 = 2.0;

/// What the detector reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfEvent {
    /// A digit was recognised.
    Start {
        /// The digit.
        digit: DtmfDigit,
        /// Estimated first sample of the tone (start of the first window
        /// that carried it), counted from creation or the last reset.
        at: u64,
        /// Sample position at which the decision was made (≈ `at` + 32…45 ms).
        detected_at: u64,
    },
    /// The digit's tone stopped.
    End {
        /// The digit that ended.
        digit: DtmfDigit,
        /// Estimated sample just after the tone (end of the last window that
        /// carried it).
        at: u64,
        /// Sample position at which the end was decided (≈ `at` + 32 ms).
        detected_at: u64,
    },
}

impl DtmfEvent {
    /// The digit the event is about.
    #[must_use]
    pub fn digit(&self) -> DtmfDigit {
        match self {
            DtmfEvent::Start { digit, .. } | DtmfEvent::End { digit, .. } => *digit,
        }
    }

    /// True for [`DtmfEvent::Start`].
    #[must_use]
    pub fn is_start(&self) -> bool {
        matches!(self, DtmfEvent::Start { .. })
    }
}

/// Settings of the [`DtmfDetector`]. Start from [`DtmfConfig::new`] (standard)
/// or [`DtmfConfig::relaxed`] and adjust fields.
#[derive(Debug, Clone, PartialEq)]
pub struct DtmfConfig {
    /// 8000 or 16000 Hz.
    pub sample_rate: u32,
    /// Weakest tone (each of the two) that is detected. Default −42 dBm0,
    /// giving a dynamic range of about 45 dB below the +3 dBm0 maximum.
    pub min_level_dbm0: f32,
    /// Largest accepted excess of the low (row) tone over the high one.
    /// Default 8.5 dB: Q.24's 8 dB plus 0.5 dB for measurement error.
    pub max_normal_twist_db: f32,
    /// Largest accepted excess of the high (column) tone over the low one.
    /// Default 4.5 dB: Q.24's 4 dB plus 0.5 dB.
    pub max_reverse_twist_db: f32,
    /// Largest accepted frequency deviation of each tone, in percent.
    /// Default 2.5 %: halfway between Q.24's "must accept" 1.5 % and "must
    /// reject" 3.5 %.
    pub max_frequency_deviation_pct: f32,
    /// Each tone must exceed every other tone of its group by this much.
    /// Default 8 dB.
    pub min_relative_peak_db: f32,
    /// The two tones must carry at least this share of the window's energy.
    /// Default 0.75: the main defence against talk-off (no false digit on
    /// the espeak-ng corpus down to 0.7, two at 0.65), while white noise 7 dB
    /// below each tone still passes.
    pub min_tone_energy_fraction: f32,
    /// The second harmonic of the high tone must be at least this far below
    /// it. Default 12 dB.
    pub min_harmonic_rejection_db: f32,
    /// Notch filters in front of the detector for a dial tone that may be
    /// present under the digits (overlap dialling on FXO lines), e.g.
    /// [`NORTH_AMERICAN_DIAL_TONE`](Self::NORTH_AMERICAN_DIAL_TONE). Both
    /// frequencies must lie in 100…600 Hz. Default `None`: the two serial
    /// IIR filters cut throughput to about 40 %, weaken talk-off protection
    /// (they remove speech energy around 350–440 Hz along with the dial
    /// tone), and are only needed while a dial tone can be present.
    pub dial_tone_notch_hz: Option<[f32; 2]>,
}

impl DtmfConfig {
    /// 350 + 440 Hz (North America, UK); use `[425.0, 425.0]` for the
    /// European 425 Hz dial tone.
    pub const NORTH_AMERICAN_DIAL_TONE: [f32; 2] = [350.0, 440.0];

    /// Standard (Q.24) settings at `sample_rate`; see each field's default.
    #[must_use]
    pub fn new(sample_rate: u32) -> Self {
        Self {
            sample_rate,
            min_level_dbm0: -42.0,
            max_normal_twist_db: 8.5,
            max_reverse_twist_db: 4.5,
            max_frequency_deviation_pct: 2.5,
            min_relative_peak_db: 8.0,
            min_tone_energy_fraction: 0.75,
            min_harmonic_rejection_db: 12.0,
            dial_tone_notch_hz: None,
        }
    }

    /// Relaxed settings for poor lines (lossy codecs, cheap phones): twist
    /// 10/6.5 dB (Asterisk's `relaxdtmf` also widens reverse twist), ±3 %
    /// frequency tolerance, 6 dB relative peak, 0.6 energy share, −45 dBm0.
    /// Talk-off risk grows accordingly.
    #[must_use]
    pub fn relaxed(sample_rate: u32) -> Self {
        Self {
            min_level_dbm0: -45.0,
            max_normal_twist_db: 10.0,
            max_reverse_twist_db: 6.5,
            max_frequency_deviation_pct: 3.0,
            min_relative_peak_db: 6.0,
            min_tone_energy_fraction: 0.6,
            min_harmonic_rejection_db: 8.0,
            ..Self::new(sample_rate)
        }
    }

    fn validate(&self) -> Result<()> {
        check_rate(
            "DTMF detector",
            self.sample_rate,
            &[8000, 16000],
            "8000, 16000",
        )?;
        let bad = |field: &'static str, reason: String| {
            Err(DspError::InvalidConfig {
                component: "DTMF detector",
                field,
                reason,
            })
        };
        let checks: [(&'static str, f32, f32, f32); 7] = [
            ("min_level_dbm0", self.min_level_dbm0, -80.0, 3.0),
            ("max_normal_twist_db", self.max_normal_twist_db, 0.0, 20.0),
            ("max_reverse_twist_db", self.max_reverse_twist_db, 0.0, 20.0),
            (
                "max_frequency_deviation_pct",
                self.max_frequency_deviation_pct,
                0.1,
                6.0,
            ),
            ("min_relative_peak_db", self.min_relative_peak_db, 0.0, 40.0),
            (
                "min_tone_energy_fraction",
                self.min_tone_energy_fraction,
                0.0,
                1.0,
            ),
            (
                "min_harmonic_rejection_db",
                self.min_harmonic_rejection_db,
                0.0,
                60.0,
            ),
        ];
        for (field, v, lo, hi) in checks {
            if !(v.is_finite() && (lo..=hi).contains(&v)) {
                return bad(field, format!("{v} is outside {lo}..={hi}"));
            }
        }
        if let Some(notch) = self.dial_tone_notch_hz
            && notch
                .iter()
                .any(|f| !(f.is_finite() && (100.0..=600.0).contains(f)))
        {
            return bad(
                "dial_tone_notch_hz",
                format!("{notch:?} must lie within 100..=600 Hz"),
            );
        }
        Ok(())
    }
}

impl Default for DtmfConfig {
    fn default() -> Self {
        Self::new(8000)
    }
}

impl Default for DtmfDetector {
    /// The standard settings at 8 kHz.
    fn default() -> Self {
        Self::build(DtmfConfig::default())
    }
}

/// Per-rate constant tables, shared by every detector at that rate.
#[derive(Debug)]
struct Tables {
    half: usize,
    /// `basis[m] = [cos ω_k m (k = 0..8), −sin ω_k m (k = 0..8)]`.
    basis: Vec<[f32; 16]>,
    /// `e^{−jω_k·half}` as (re, im): joins two half sums into a window sum,
    /// and removes the nominal rotation between consecutive windows.
    rot: [(f32, f32); 8],
    /// Goertzel coefficients `2cos(2ω_k)` for the second harmonics (only
    /// the high group's are used).
    harmonic_coef: [f32; 8],
    /// `leak[k][j]`: share of a tone at frequency `j` that appears in bin
    /// `k` over one window: `G(ω_j − ω_k)/N` with `G(Δ) = Σ_m e^{jΔm}`.
    leak: [[(f32, f32); 8]; 8],
    /// Radians of phase advance per half block per Hz of deviation.
    rad_per_hz: f32,
}

fn tables(rate: u32) -> &'static Tables {
    static T8: OnceLock<Tables> = OnceLock::new();
    static T16: OnceLock<Tables> = OnceLock::new();
    let cell = if rate == 16000 { &T16 } else { &T8 };
    cell.get_or_init(|| build_tables(rate))
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "table values are in [-2, 2] and fit f32"
)]
fn build_tables(rate: u32) -> Tables {
    let half = if rate == 16000 {
        MAX_HALF
    } else {
        MAX_HALF / 2
    };
    let freqs: Vec<f64> = ROW_HZ
        .iter()
        .chain(COL_HZ.iter())
        .map(|&f| f64::from(f))
        .collect();
    let omega: Vec<f64> = freqs.iter().map(|f| TAU * f / f64::from(rate)).collect();
    let basis = (0..half)
        .map(|m| {
            let mut row = [0f32; 16];
            for (k, w) in omega.iter().enumerate() {
                let a = w * f64::from(u32::try_from(m).unwrap_or(0));
                row[k] = a.cos() as f32;
                row[k + 8] = -a.sin() as f32;
            }
            row
        })
        .collect();
    let mut rot = [(0f32, 0f32); 8];
    let mut harmonic_coef = [0f32; 8];
    let half_f = f64::from(u32::try_from(half).unwrap_or(0));
    for (k, w) in omega.iter().enumerate() {
        rot[k] = ((w * half_f).cos() as f32, -(w * half_f).sin() as f32);
        harmonic_coef[k] = (2.0 * (2.0 * w).cos()) as f32;
    }
    let n = 2 * half;
    let mut leak = [[(0f32, 0f32); 8]; 8];
    for (k, row) in leak.iter_mut().enumerate() {
        for (j, cell) in row.iter_mut().enumerate() {
            let d = omega[j] - omega[k];
            let (mut re, mut im) = (0f64, 0f64);
            for m in 0..n {
                let a = d * f64::from(u32::try_from(m).unwrap_or(0));
                re += a.cos();
                im += a.sin();
            }
            let nf = f64::from(u32::try_from(n).unwrap_or(1));
            *cell = ((re / nf) as f32, (im / nf) as f32);
        }
    }
    Tables {
        half,
        basis,
        rot,
        harmonic_coef,
        leak,
        rad_per_hz: (TAU * half_f / f64::from(rate)) as f32,
    }
}

/// Linear thresholds derived from a [`DtmfConfig`].
#[derive(Debug, Clone, Copy)]
struct Thresholds {
    min_power: f32,
    normal_twist: f32,
    reverse_twist: f32,
    relative_peak: f32,
    /// `min_tone_energy_fraction · N / 2`, to compare `|X|²` sums with `Σx²`.
    fraction_scaled: f32,
    harmonic: f32,
    max_dev: f32,
}

impl Thresholds {
    fn new(c: &DtmfConfig, window: usize) -> Self {
        let n = len_f32(window);
        let amp = dbm0_to_amplitude(c.min_level_dbm0);
        let db = |v: f32| 10f32.powf(v / 10.0);
        Self {
            min_power: (amp * n / 2.0).powi(2),
            normal_twist: db(c.max_normal_twist_db),
            reverse_twist: db(c.max_reverse_twist_db),
            relative_peak: db(c.min_relative_peak_db),
            fraction_scaled: c.min_tone_energy_fraction * n / 2.0,
            harmonic: db(c.min_harmonic_rejection_db),
            max_dev: c.max_frequency_deviation_pct / 100.0,
        }
    }
}

/// Direct-form-II-transposed notch biquad.
#[derive(Debug, Clone, Copy)]
struct Notch {
    b1: f32,
    a1: f32,
    a2: f32,
    z1: f32,
    z2: f32,
}

impl Notch {
    /// Pole radius: −3 dB width ≈ (1 − r)·rate/π ≈ 76 Hz at 8 kHz, wide enough
    /// for dial tones that are off by 1 %, narrow enough to leave 697 Hz alone.
    const R: f64 = 0.97;

    #[expect(clippy::cast_possible_truncation, reason = "coefficients fit f32")]
    fn new(freq: f32, rate: u32) -> Self {
        let c = (TAU * f64::from(freq) / f64::from(rate)).cos();
        Self {
            b1: (-2.0 * c) as f32,
            a1: (-2.0 * Self::R * c) as f32,
            a2: (Self::R * Self::R) as f32,
            z1: 0.0,
            z2: 0.0,
        }
    }

    #[inline]
    fn run(&mut self, x: f32) -> f32 {
        // b0 = b2 = 1.
        let y = x + self.z1;
        self.z1 = self.b1 * x - self.a1 * y + self.z2;
        self.z2 = x - self.a2 * y;
        y
    }
}

/// What one analysis window says.
#[derive(Debug, Clone, Copy)]
struct Verdict {
    digit: DtmfDigit,
    row: usize,
    col: usize,
    /// Passes every test: counts towards declaring `digit`.
    hit: bool,
    /// Still carries `digit` well enough to keep a declared digit alive.
    carries: bool,
    /// `digit` is the digit currently declared.
    held: bool,
    /// Complex amplitudes of the row and column tone, cross-leakage removed.
    tones: [(f32, f32); 2],
}

#[derive(Debug, Clone, Copy)]
struct Current {
    digit: DtmfDigit,
    misses: u32,
    last_end: u64,
}

/// Streaming DTMF detector conforming to ITU-T Q.23/Q.24.
///
/// Feed any number of samples per call; results do not depend on how the
/// stream is cut into chunks.
///
/// # How it works
///
/// The signal is cut into *half blocks* of 6.375 ms (51 samples at 8 kHz, 102
/// at 16 kHz). For each half block the detector accumulates a complex DFT
/// term at each of the eight DTMF frequencies (a table of `cos`/`sin` rows:
/// 16 multiply-adds per sample with no dependency between them, which the
/// compiler vectorises) and the block energy. Two consecutive half blocks
/// form one *analysis window* of 12.75 ms (the classic 102-sample block,
/// whose bins are one DTMF step apart); windows overlap by half and
/// advance every 6.375 ms.
///
/// The strongest row and column bins are the candidate digit. Each bin also
/// holds a sidelobe of the other group's tone (−21 dB between 941 and
/// 1209 Hz), enough to move a measured twist by ±2 dB; the two tone
/// amplitudes are therefore solved from a 2×2 system with the known leakage
/// coefficients, and those sidelobes are subtracted from the other bins
/// before the relative-peak test. A window *hits* digit `d` when:
///
/// * both tones are at or above the level threshold;
/// * twist (row/column power ratio) is within the normal/reverse limits;
/// * the two tones carry most of the window's energy (the relative energy
///   test: speech, music and noise spread their energy);
/// * the two half blocks carry similar energy (the tone was present across
///   the whole window, which makes the guard time precise);
/// * every other bin is the relative-peak margin below the tone of its group;
/// * the second harmonic of the high tone is weak (speech has harmonics,
///   DTMF does not); checked on the window that completes a run only, as it
///   needs a Goertzel pass over the window.
///
/// While a digit is held, its windows only need to carry it, so the last two
/// tests and the phase measurement are skipped: a held tone costs little
/// more than silence.
///
/// A digit is **declared** after four consecutive hit windows of the same digit
/// (the tone was present for ≥ 32 ms) whose *measured* frequencies are within
/// the tolerance. The frequencies come from the phase advance of each bin
/// from window to window, averaged over the run: that separates ±1.5 % from
/// ±3.5 % even for 697 Hz, where the block's bandwidth alone cannot (3.5 % is
/// a third of a bin there). A declared digit **ends** after five consecutive
/// windows (32 ms) that no longer carry it, which bridges interruptions of
/// up to 10 ms.
///
/// Guard time follows from the window geometry: a hit needs ≥ 50 % of each
/// half covered, so four hits need a tone of at least ≈ 26 ms (anything
/// ≤ 23 ms is rejected) and any tone of 40 ms or more contains five full half
/// blocks (always detected).
///
/// Per-sample work: one i16→f32 conversion, 17 multiply-adds, one store; per
/// half block a few hundred operations. No allocation after construction.
#[derive(Debug, Clone)]
pub struct DtmfDetector {
    config: DtmfConfig,
    t: &'static Tables,
    th: Thresholds,
    notch: Option<[Notch; 2]>,
    /// Running DFT sums of the current half block.
    acc: [f32; 16],
    energy: f32,
    pos: usize,
    /// Samples of the current and the previous half block; the current one
    /// is in half number `cur` (0 or 1) of the buffer.
    buf: [f32; 2 * MAX_HALF],
    cur: usize,
    prev: [f32; 16],
    prev_energy: f32,
    /// Completed half blocks since reset.
    halves: u64,
    /// Tone amplitudes of the previous window (valid while a run lasts).
    prev_tones: [(f32, f32); 2],
    /// Hit run: digit, length, first sample, last phase increments (row, col).
    run_digit: Option<DtmfDigit>,
    run_len: u32,
    run_start: u64,
    incs: [[f32; 2]; INCS],
    current: Option<Current>,
    events: Vec<DtmfEvent>,
}

impl DtmfDetector {
    /// A detector with the given settings.
    ///
    /// # Errors
    /// [`DspError::UnsupportedSampleRate`] for rates other than 8000/16000,
    /// [`DspError::InvalidConfig`] for settings out of range.
    pub fn new(config: DtmfConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self::build(config))
    }

    /// Builds from a validated config.
    fn build(config: DtmfConfig) -> Self {
        let t = tables(config.sample_rate);
        let th = Thresholds::new(&config, 2 * t.half);
        let notch = config.dial_tone_notch_hz.map(|[a, b]| {
            [
                Notch::new(a, config.sample_rate),
                Notch::new(b, config.sample_rate),
            ]
        });
        Self {
            config,
            t,
            th,
            notch,
            acc: [0.0; 16],
            energy: 0.0,
            pos: 0,
            buf: [0.0; 2 * MAX_HALF],
            cur: 0,
            prev: [0.0; 16],
            prev_energy: 0.0,
            halves: 0,
            prev_tones: [(0.0, 0.0); 2],
            run_digit: None,
            run_len: 0,
            run_start: 0,
            incs: [[0.0; 2]; INCS],
            current: None,
            events: Vec::with_capacity(8),
        }
    }

    /// Feeds samples and returns the events they produced (valid until the
    /// next call). Allocation-free unless one call produces more than eight
    /// events (a chunk of several seconds).
    pub fn process(&mut self, samples: &[i16]) -> &[DtmfEvent] {
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        self.process_with(samples, |e| events.push(e));
        self.events = events;
        &self.events
    }

    /// Feeds samples and hands each event to `on_event` as it is decided.
    pub fn process_with(&mut self, mut samples: &[i16], mut on_event: impl FnMut(DtmfEvent)) {
        let half = self.t.half;
        while !samples.is_empty() {
            let n = (half - self.pos).min(samples.len());
            let (head, rest) = samples.split_at(n);
            self.accumulate(head);
            samples = rest;
            if self.pos == half {
                self.end_half(&mut on_event);
            }
        }
    }

    /// Converts (and optionally notch-filters) samples into `buf`, then adds
    /// them to the DFT sums. The two passes keep the hot loop free of
    /// branches and dependencies, so it vectorises.
    fn accumulate(&mut self, samples: &[i16]) {
        let half = self.t.half;
        let start = self.cur * half + self.pos;
        let Some(dst) = self.buf.get_mut(start..start + samples.len()) else {
            // Unreachable (`process_with` never crosses a half block); still
            // make progress rather than loop.
            self.pos += samples.len();
            return;
        };
        match &mut self.notch {
            None => {
                for (d, &s) in dst.iter_mut().zip(samples) {
                    *d = f32::from(s);
                }
            }
            Some([n1, n2]) => {
                for (d, &s) in dst.iter_mut().zip(samples) {
                    *d = n2.run(n1.run(f32::from(s)));
                }
            }
        }
        let basis = &self.t.basis[self.pos..self.pos + samples.len()];
        let mut acc = self.acc;
        let mut e = self.energy;
        for (&x, b) in dst.iter().zip(basis) {
            e += x * x;
            for (a, &c) in acc.iter_mut().zip(b) {
                *a += x * c;
            }
        }
        self.acc = acc;
        self.energy = e;
        self.pos += samples.len();
    }

    fn end_half(&mut self, on_event: &mut impl FnMut(DtmfEvent)) {
        let half = self.t.half;
        self.halves += 1;
        if self.halves >= 2 {
            let window_end = self.halves * half as u64;
            let window_start = window_end - 2 * half as u64;
            let verdict = self.evaluate();
            self.step(verdict, window_start, window_end, on_event);
            self.prev_tones = verdict.tones;
        }
        self.prev = self.acc;
        self.prev_energy = self.energy;
        self.acc = [0.0; 16];
        self.energy = 0.0;
        self.pos = 0;
        self.cur ^= 1;
    }

    /// Joins the two half blocks into window sums and runs the tests.
    fn evaluate(&self) -> Verdict {
        let t = self.t;
        let mut x = [(0f32, 0f32); 8];
        let mut p = [0f32; 8];
        for (k, &(c, s)) in t.rot.iter().enumerate() {
            let (ar, ai) = (self.acc[k], self.acc[k + 8]);
            let re = self.prev[k] + ar * c - ai * s;
            let im = self.prev[k + 8] + ar * s + ai * c;
            x[k] = (re, im);
            p[k] = re * re + im * im;
        }
        let row = argmax(&p[..4]);
        let col = argmax(&p[4..]);
        // Each bin also holds a sidelobe of the other group's tone (−21 dB at
        // 941/1209 Hz): enough to move the measured twist by ±2 dB when the
        // tones differ by 8 dB. Undo it by solving the 2×2 system
        //   X_r = a_r + g·a_c,  X_c = a_c + g*·a_r.
        let g = t.leak[row][4 + col];
        let (xr, xc) = (x[row], x[4 + col]);
        let det = 1.0 - (g.0 * g.0 + g.1 * g.1);
        let a_r = cdiv(csub(xr, cmul(g, xc)), det);
        let a_c = cdiv(csub(xc, cmul(conj(g), xr)), det);
        let (pr, pc) = (norm(a_r), norm(a_c));
        let digit = DtmfDigit::from_position(row, col).unwrap_or(DtmfDigit::One);
        let th = &self.th;
        let total = self.prev_energy + self.energy;
        let tones = pr + pc;
        let carries = pr >= th.min_power * 0.25
            && pc >= th.min_power * 0.25
            && tones >= 0.5 * th.fraction_scaled * total;
        let held = self.current.is_some_and(|c| c.digit == digit);
        let hit = carries
            && pr >= th.min_power
            && pc >= th.min_power
            && pr <= pc * th.normal_twist
            && pc <= pr * th.reverse_twist
            && tones >= th.fraction_scaled * total
            && self.prev_energy.max(self.energy) <= STATIONARITY * self.prev_energy.min(self.energy)
            // While the digit is held its windows only need to carry it, so
            // the costlier tests run only while a digit is being recognised;
            // the Goertzel of the harmonic test only on a window that would
            // complete a run.
            && (held
                || (self.peaks_ok(&x, (row, a_r, pr), (4 + col, a_c, pc))
                    && (self.run_digit != Some(digit)
                        || self.run_len + 1 < HITS_TO_START
                        || self.harmonic_ok(4 + col, pc))));
        Verdict {
            digit,
            row,
            col,
            hit,
            carries,
            held,
            tones: [a_r, a_c],
        }
    }

    /// Relative-peak test: every other bin, once the known sidelobes of the
    /// two detected tones are taken out of it, is at least the margin below
    /// the tone of its group. (Raw, the 941 Hz tone's sidelobe plus the
    /// 1336 Hz tone's can put the 1209 Hz bin within 8 dB of a 1336 Hz tone
    /// that is 8 dB weaker than its partner.)
    fn peaks_ok(
        &self,
        x: &[(f32, f32); 8],
        (row, a_r, pr): (usize, (f32, f32), f32),
        (col, a_c, pc): (usize, (f32, f32), f32),
    ) -> bool {
        let leak = &self.t.leak;
        x.iter().enumerate().all(|(k, &xk)| {
            if k == row || k == col {
                return true;
            }
            let rest = csub(csub(xk, cmul(a_r, leak[k][row])), cmul(a_c, leak[k][col]));
            let peak = if k < 4 { pr } else { pc };
            norm(rest) * self.th.relative_peak <= peak
        })
    }

    /// Second-harmonic test of the high tone, run only on windows that passed
    /// everything else. The low tones' harmonics (1394…1882 Hz) fall within
    /// a bin of the high-group tones, where a 12.75 ms window cannot tell
    /// them apart, so only the high tone (harmonics 2418…3266 Hz, a region
    /// DTMF leaves empty) is tested.
    fn harmonic_ok(&self, col: usize, pc: f32) -> bool {
        let half = self.t.half;
        let (cur, prev) = (self.cur * half, (self.cur ^ 1) * half);
        let window = self.buf[prev..prev + half]
            .iter()
            .chain(&self.buf[cur..cur + half]);
        goertzel_power(window, self.t.harmonic_coef[col]) * self.th.harmonic <= pc
    }

    /// Advances the hit run and the declared-digit state by one window.
    fn step(
        &mut self,
        v: Verdict,
        window_start: u64,
        window_end: u64,
        on_event: &mut impl FnMut(DtmfEvent),
    ) {
        if v.hit {
            if self.run_digit == Some(v.digit) {
                // A held digit cannot start again: skip the phase arithmetic.
                if !v.held {
                    let inc = [
                        self.phase_advance(v.tones[0], self.prev_tones[0], v.row),
                        self.phase_advance(v.tones[1], self.prev_tones[1], 4 + v.col),
                    ];
                    let slot = usize::try_from(self.run_len).unwrap_or(0) % INCS;
                    self.incs[slot] = inc;
                }
                self.run_len += 1;
            } else {
                self.run_digit = Some(v.digit);
                self.run_len = 1;
                self.run_start = window_start;
            }
        } else {
            self.run_digit = None;
            self.run_len = 0;
        }

        if let Some(cur) = &mut self.current {
            if v.carries && v.digit == cur.digit {
                cur.misses = 0;
                cur.last_end = window_end;
            } else {
                cur.misses += 1;
                if cur.misses >= MISSES_TO_END {
                    on_event(DtmfEvent::End {
                        digit: cur.digit,
                        at: cur.last_end,
                        detected_at: window_end,
                    });
                    self.current = None;
                }
            }
        }

        if let Some(digit) = self.run_digit
            && self.run_len >= HITS_TO_START
            && self.current.map(|c| c.digit) != Some(digit)
            && self.frequencies_ok(digit)
        {
            if let Some(cur) = self.current.take() {
                on_event(DtmfEvent::End {
                    digit: cur.digit,
                    at: cur.last_end.min(window_start),
                    detected_at: window_end,
                });
            }
            on_event(DtmfEvent::Start {
                digit,
                at: self.run_start,
                detected_at: window_end,
            });
            self.current = Some(Current {
                digit,
                misses: 0,
                last_end: window_end,
            });
        }
    }

    /// Phase advance (radians, −π…π) of tone `k` from the previous window
    /// (`before`) to this one (`now`), beyond the nominal advance of the bin
    /// frequency.
    fn phase_advance(&self, now: (f32, f32), before: (f32, f32), k: usize) -> f32 {
        let w = cmul(cmul(now, conj(before)), self.t.rot[k]);
        w.1.atan2(w.0)
    }

    /// Mean frequency deviation over the last increments, relative to the
    /// nominal frequencies, within tolerance for both tones.
    fn frequencies_ok(&self, digit: DtmfDigit) -> bool {
        let (lo, hi) = digit.frequencies();
        let n = len_f32(INCS);
        let (mut dr, mut dc) = (0.0, 0.0);
        for [r, c] in &self.incs {
            dr += r;
            dc += c;
        }
        let hz_r = dr / n / self.t.rad_per_hz;
        let hz_c = dc / n / self.t.rad_per_hz;
        hz_r.abs() <= self.th.max_dev * lo && hz_c.abs() <= self.th.max_dev * hi
    }

    /// The digit currently held (between its `Start` and `End` events).
    #[must_use]
    pub fn current_digit(&self) -> Option<DtmfDigit> {
        self.current.map(|c| c.digit)
    }

    /// Samples consumed since creation or the last reset.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.halves * self.t.half as u64 + self.pos as u64
    }

    /// The settings in use.
    #[must_use]
    pub fn config(&self) -> &DtmfConfig {
        &self.config
    }

    /// Forgets everything (a new call, or after a gap in the audio).
    /// Positions restart at 0; no `End` is reported for a digit in progress.
    pub fn reset(&mut self) {
        let events = std::mem::take(&mut self.events);
        *self = Self::build(self.config.clone());
        self.events = events;
    }
}

fn cmul(a: (f32, f32), b: (f32, f32)) -> (f32, f32) {
    (a.0 * b.0 - a.1 * b.1, a.0 * b.1 + a.1 * b.0)
}

fn csub(a: (f32, f32), b: (f32, f32)) -> (f32, f32) {
    (a.0 - b.0, a.1 - b.1)
}

fn cdiv(a: (f32, f32), d: f32) -> (f32, f32) {
    (a.0 / d, a.1 / d)
}

fn conj(a: (f32, f32)) -> (f32, f32) {
    (a.0, -a.1)
}

fn norm(a: (f32, f32)) -> f32 {
    a.0 * a.0 + a.1 * a.1
}

fn argmax(p: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in p.iter().enumerate() {
        if v > p[best] {
            best = i;
        }
    }
    best
}

/// `|X(ω)|²` of `samples` by Goertzel, `coef = 2cos ω`.
fn goertzel_power<'a>(samples: impl Iterator<Item = &'a f32>, coef: f32) -> f32 {
    let (mut s1, mut s2) = (0f32, 0f32);
    for &x in samples {
        let s0 = x + coef * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coef * s1 * s2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtmf::{DtmfGenConfig, DtmfGenerator};

    fn generate(digits: &str, on_ms: u32, off_ms: u32, rate: u32) -> Vec<i16> {
        let mut g = DtmfGenerator::new(DtmfGenConfig {
            on_ms,
            off_ms,
            ..DtmfGenConfig::new(rate)
        })
        .expect("valid");
        g.queue(digits).expect("digits");
        let mut out = vec![0i16; usize::try_from(g.remaining_samples()).unwrap_or(0) + 800];
        g.fill(&mut out);
        out
    }

    fn detect(det: &mut DtmfDetector, signal: &[i16], chunk: usize) -> (String, Vec<DtmfEvent>) {
        let mut all = Vec::new();
        for c in signal.chunks(chunk) {
            all.extend_from_slice(det.process(c));
        }
        let digits = all
            .iter()
            .filter(|e| e.is_start())
            .map(|e| e.digit().to_char())
            .collect();
        (digits, all)
    }

    #[test]
    fn detects_all_digits_at_both_rates_and_any_chunking() {
        for rate in [8000, 16000] {
            let sig = generate("123A456B789C*0#D", 60, 60, rate);
            for chunk in [1, 7, 160, 1000, sig.len()] {
                let mut det = DtmfDetector::new(DtmfConfig::new(rate)).expect("valid");
                let (digits, events) = detect(&mut det, &sig, chunk);
                assert_eq!(digits, "123A456B789C*0#D", "rate {rate} chunk {chunk}");
                assert_eq!(events.len(), 32, "each digit starts and ends");
            }
        }
    }

    #[test]
    fn event_positions_bracket_the_tone() {
        let mut sig = vec![0i16; 1000];
        sig.extend(generate("5", 100, 0, 8000));
        let mut det = DtmfDetector::default();
        let (_, events) = detect(&mut det, &sig, 160);
        let [
            DtmfEvent::Start {
                at, detected_at, ..
            },
            DtmfEvent::End { at: end, .. },
        ] = events[..]
        else {
            panic!("expected start and end, got {events:?}");
        };
        assert!((1000..=1000 + 51).contains(&at), "start {at}");
        assert!(detected_at <= 1000 + 400, "decided by {detected_at}");
        assert!((1800..=1800 + 102).contains(&end), "end {end}");
        assert_eq!(det.current_digit(), None);
        assert_eq!(det.position(), sig.len() as u64);
        det.reset();
        assert_eq!(det.position(), 0);
    }

    #[test]
    fn rejects_invalid_configs() {
        assert!(DtmfDetector::new(DtmfConfig::new(44100)).is_err());
        let mut c = DtmfConfig::new(8000);
        c.min_tone_energy_fraction = 1.5;
        assert!(DtmfDetector::new(c).is_err());
        let mut c = DtmfConfig::new(8000);
        c.max_normal_twist_db = f32::NAN;
        assert!(DtmfDetector::new(c).is_err());
        let mut c = DtmfConfig::new(8000);
        c.dial_tone_notch_hz = Some([350.0, 900.0]);
        assert!(DtmfDetector::new(c).is_err());
        assert!(DtmfDetector::new(DtmfConfig::relaxed(16000)).is_ok());
    }

    #[test]
    fn extreme_input_does_not_panic_or_detect() {
        let mut det = DtmfDetector::default();
        let square: Vec<i16> = (0..16000)
            .map(|i| if i % 2 == 0 { i16::MAX } else { i16::MIN })
            .collect();
        assert!(det.process(&square).is_empty());
        assert!(det.process(&[i16::MIN; 4000]).is_empty());
        assert!(det.process(&[]).is_empty());
    }
}
