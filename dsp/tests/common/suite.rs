//! The DTMF conformance suite of analog.md §3.3 (Mitel CM7291 side 1 as
//! replicated by spandsp's `dtmf_rx_tests`, plus dial-tone tolerance and
//! talk-off), written against a small [`Detector`] trait so the same
//! measurements run on our detector and on spandsp's.
//!
//! Every function synthesises its own deterministic signal (seeded noise and
//! phases), feeds it in 20 ms frames, and returns figures; the tests assert
//! on them and the report example prints them.

use std::fmt::Write as _;

use flowgate_dsp::dtmf::{COL_HZ, ROW_HZ};
use flowgate_dsp::{DtmfConfig, DtmfDetector, DtmfDigit};

use super::signal::{Builder, Munge, Rng, ms};

/// All 16 digits, keypad order.
pub(crate) const ALL: &str = "123A456B789C*0#D";

/// A digit detector under test.
pub(crate) trait Detector {
    fn name(&self) -> String;
    /// Sample rate it expects.
    fn rate(&self) -> u32 {
        8000
    }
    fn reset(&mut self);
    /// Feeds samples; appends the digits whose start was detected.
    fn feed(&mut self, samples: &[i16], out: &mut String);
}

/// Our detector.
pub(crate) struct Flowgate {
    det: DtmfDetector,
    label: String,
}

impl Flowgate {
    pub(crate) fn new(config: DtmfConfig, label: &str) -> Self {
        let det = DtmfDetector::new(config).expect("a valid detector config");
        Self {
            det,
            label: label.to_owned(),
        }
    }

    pub(crate) fn standard(rate: u32) -> Self {
        Self::new(DtmfConfig::new(rate), "flowgate")
    }
}

impl Detector for Flowgate {
    fn name(&self) -> String {
        self.label.clone()
    }

    fn rate(&self) -> u32 {
        self.det.config().sample_rate
    }

    fn reset(&mut self) {
        self.det.reset();
    }

    fn feed(&mut self, samples: &[i16], out: &mut String) {
        for e in self.det.process(samples) {
            if e.is_start() {
                out.push(e.digit().to_char());
            }
        }
    }
}

/// Runs a whole signal through a freshly reset detector in 20 ms frames.
pub(crate) fn run(det: &mut dyn Detector, signal: &[i16]) -> String {
    det.reset();
    let mut out = String::new();
    let frame = usize::try_from(det.rate() / 50).unwrap_or(160);
    for chunk in signal.chunks(frame) {
        det.feed(chunk, &mut out);
    }
    out
}

fn freqs(d: char) -> (f64, f64) {
    let digit = DtmfDigit::from_char(d).unwrap_or(DtmfDigit::One);
    (
        f64::from(ROW_HZ[digit.row()]),
        f64::from(COL_HZ[digit.col()]),
    )
}

/// Bursts of `digits`, each tone at its level, `on`/`off` ms, optional
/// extra random jitter of the pause (0..jitter samples) to vary alignment.
#[expect(clippy::too_many_arguments, reason = "test signal description")]
fn bursts(
    rate: u32,
    rng: &mut Rng,
    digits: &str,
    dev: (f64, f64),
    levels: (f64, f64),
    on_ms: f64,
    off_ms: f64,
    jitter: usize,
) -> Builder {
    let mut b = Builder::new(rate);
    b.silence(ms(rate, 50.0) + rng.below(jitter.max(1)));
    for d in digits.chars() {
        let (lo, hi) = freqs(d);
        b.digit(
            rng,
            (lo * (1.0 + dev.0), levels.0),
            (hi * (1.0 + dev.1), levels.1),
            ms(rate, on_ms),
        );
        b.silence(ms(rate, off_ms) + rng.below(jitter.max(1)));
    }
    b
}

/// Test 2: all 16 digits × 10 at −4 dBm0, 50/50 ms. Returns what was detected.
pub(crate) fn decode_check(det: &mut dyn Detector, munge: Munge) -> (String, String) {
    let mut rng = Rng::new(2);
    let expect = ALL.repeat(10);
    let b = bursts(
        det.rate(),
        &mut rng,
        &expect,
        (0.0, 0.0),
        (-4.0, -4.0),
        50.0,
        50.0,
        0,
    );
    (expect, run(det, &b.finish(munge)))
}

/// Recognition bandwidth of one tone of one digit.
#[derive(Debug, Clone)]
pub(crate) struct Bandwidth {
    pub(crate) digit: char,
    pub(crate) high: bool,
    /// Consecutive 0.1 % steps accepted (all 10 bursts) above / below nominal.
    pub(crate) n_plus: u32,
    pub(crate) n_minus: u32,
    /// Detections at deviations ≥ 3.5 % (should be 0).
    pub(crate) beyond_reject: usize,
}

impl Bandwidth {
    /// Mitel RRB %.
    pub(crate) fn rrb(&self) -> f64 {
        f64::from(self.n_plus + self.n_minus) / 10.0
    }
    /// Mitel RCFO %.
    pub(crate) fn rcfo(&self) -> f64 {
        (f64::from(self.n_plus) - f64::from(self.n_minus)) / 20.0
    }
    /// Mitel pass mark: 3 % + rcfo ≤ RRB < 15 % + rcfo.
    pub(crate) fn mitel_pass(&self) -> bool {
        let (rrb, rcfo) = (self.rrb(), self.rcfo());
        3.0 + rcfo <= rrb && rrb < 15.0 + rcfo
    }
}

/// Test 3: digits 1, 5, 9, D; each tone swept ±0.1…±6 % in 0.1 % steps,
/// 10 bursts (50/50 ms) per step at −17 dBm0.
pub(crate) fn recognition_bandwidth(det: &mut dyn Detector, munge: Munge) -> Vec<Bandwidth> {
    let mut rng = Rng::new(3);
    let mut out = Vec::new();
    for digit in ['1', '5', '9', 'D'] {
        for high in [false, true] {
            let mut result = Bandwidth {
                digit,
                high,
                n_plus: 0,
                n_minus: 0,
                beyond_reject: 0,
            };
            for sign in [1.0, -1.0] {
                let mut contiguous = true;
                for step in 1..=60u32 {
                    let d = sign * f64::from(step) / 1000.0;
                    let dev = if high { (0.0, d) } else { (d, 0.0) };
                    let burst = digit.to_string().repeat(10);
                    let b = bursts(
                        det.rate(),
                        &mut rng,
                        &burst,
                        dev,
                        (-17.0, -17.0),
                        50.0,
                        50.0,
                        0,
                    );
                    let got = run(det, &b.finish(munge));
                    let all = got == burst;
                    if contiguous && all {
                        if sign > 0.0 {
                            result.n_plus += 1;
                        } else {
                            result.n_minus += 1;
                        }
                    } else {
                        contiguous = false;
                    }
                    if step >= 35 {
                        result.beyond_reject += got.len();
                    }
                }
            }
            out.push(result);
        }
    }
    out
}

/// Test 4: largest twist (dB) at which every digit is still detected, with
/// one tone fixed at −3 dBm0 and the other attenuated in 1 dB steps to
/// −23 dBm0. Returns (normal: high attenuated, reverse: low attenuated).
pub(crate) fn twist(det: &mut dyn Detector, munge: Munge) -> (u32, u32) {
    let mut rng = Rng::new(4);
    let mut result = [0u32; 2];
    for (slot, reverse) in [false, true].into_iter().enumerate() {
        for att in 0..=20u32 {
            let weak = -3.0 - f64::from(att);
            let levels = if reverse { (weak, -3.0) } else { (-3.0, weak) };
            let expect = ALL.repeat(2);
            let b = bursts(
                det.rate(),
                &mut rng,
                &expect,
                (0.0, 0.0),
                levels,
                50.0,
                50.0,
                0,
            );
            if run(det, &b.finish(munge)) != expect {
                break;
            }
            result[slot] = att;
        }
    }
    (result[0], result[1])
}

/// Test 5: every digit from +3 to −50 dBm0 per tone in 1 dB steps.
/// Returns (highest, lowest) level of the contiguous detected range.
pub(crate) fn dynamic_range(det: &mut dyn Detector, munge: Munge) -> Option<(i32, i32)> {
    let mut rng = Rng::new(5);
    let mut best: Option<(i32, i32)> = None;
    let mut run_start: Option<i32> = None;
    for level in (-50..=3).rev() {
        let l = f64::from(level);
        let b = bursts(det.rate(), &mut rng, ALL, (0.0, 0.0), (l, l), 50.0, 50.0, 0);
        if run(det, &b.finish(munge)) == ALL {
            let top = *run_start.get_or_insert(level);
            let cand = (top, level);
            if best.is_none_or(|(h, lo)| h - lo < cand.0 - cand.1) {
                best = Some(cand);
            }
        } else {
            run_start = None;
        }
    }
    best
}

/// Test 6: tone durations 49 → 10 ms (1 ms steps), every digit four times
/// at varying alignment, 100 ms pauses, −10 dBm0. Returns, per duration,
/// (ms, detections, bursts).
pub(crate) fn guard_time(det: &mut dyn Detector, munge: Munge) -> Vec<(u32, usize, usize)> {
    let mut rng = Rng::new(6);
    let mut out = Vec::new();
    for dur in (10..=49u32).rev() {
        let seq = ALL.repeat(4);
        let rate = det.rate();
        let jitter = usize::try_from(rate / 80).unwrap_or(100);
        let b = bursts(
            rate,
            &mut rng,
            &seq,
            (0.0, 0.0),
            (-10.0, -10.0),
            f64::from(dur),
            100.0,
            jitter,
        );
        let got = run(det, &b.finish(munge));
        out.push((dur, got.len(), seq.len()));
    }
    out
}

/// Test 7: all 16 digits at −4 dBm0 per tone, 50/50 ms, `bursts` times per
/// noise level, white Gaussian noise from `start` dBm0 down to −50 dBm0.
/// Returns the acceptable S/N (dB, −4 − noise level) at the first noise level
/// where every burst is decoded exactly, with the number of misses and
/// false digits at each failing level.
pub(crate) fn signal_to_noise(
    det: &mut dyn Detector,
    munge: Munge,
    start: i32,
    bursts_per_level: usize,
) -> (Option<i32>, String) {
    let mut rng = Rng::new(7);
    let mut log = String::new();
    for noise in (-50..=start).rev() {
        let expect = ALL.repeat(bursts_per_level);
        let mut b = bursts(
            det.rate(),
            &mut rng,
            &expect,
            (0.0, 0.0),
            (-4.0, -4.0),
            50.0,
            50.0,
            0,
        );
        b.add_noise(&mut rng, f64::from(noise));
        let got = run(det, &b.finish(munge));
        if got == expect {
            return (Some(-4 - noise), log);
        }
        let _ = write!(
            log,
            "noise {noise} dBm0: {} of {} detected; ",
            got.len(),
            expect.len()
        );
    }
    (None, log)
}

/// Dial-tone tolerance: all 16 digits at −15 dBm0 under 350 + 440 Hz at
/// −30…0 dBm0 (each tone). Returns the loudest dial tone (dBm0) up to which
/// every level decodes exactly.
pub(crate) fn dial_tone(det: &mut dyn Detector, munge: Munge) -> Option<i32> {
    let mut rng = Rng::new(8);
    let mut best = None;
    for level in -30..=0 {
        let mut b = bursts(
            det.rate(),
            &mut rng,
            ALL,
            (0.0, 0.0),
            (-15.0, -15.0),
            50.0,
            50.0,
            0,
        );
        let n = b.buf.len();
        let l = f64::from(level);
        b.add_tones_at(0, &[(350.0, l, 0.0), (440.0, l, 1.0)], n);
        if run(det, &b.finish(munge)) != ALL {
            break;
        }
        best = Some(level);
    }
    best
}

/// Talk-off: digits reported on speech (there are none in it).
pub(crate) fn talk_off(det: &mut dyn Detector, speech: &[Vec<i16>]) -> (usize, String) {
    let mut total = 0;
    let mut digits = String::new();
    for s in speech {
        let got = run(det, s);
        total += got.len();
        digits.push_str(&got);
    }
    (total, digits)
}

/// Misses and false digits over the suite's signals, for comparing
/// detectors: the "must detect" set (decode check; every bandwidth step
/// within ±1.5 %; twist up to 8 dB normal and 4 dB reverse; levels 0 …
/// −35 dBm0; durations 40…49 ms; S/N 9 dB) and the "must reject" set
/// (bandwidth steps beyond ±3.5 %; durations 10…23 ms).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Score {
    pub(crate) expected: usize,
    pub(crate) missed: usize,
    /// Extra or wrong digits on the must-detect set.
    pub(crate) wrong: usize,
    pub(crate) reject_bursts: usize,
    pub(crate) false_digits: usize,
}

impl Score {
    /// Scores one must-detect signal: in-order matches count as found.
    fn detect(&mut self, expect: &str, got: &str) {
        let mut want = expect.chars().peekable();
        let mut matched = 0;
        for g in got.chars() {
            if want.peek() == Some(&g) {
                want.next();
                matched += 1;
            }
        }
        self.expected += expect.len();
        self.missed += expect.len() - matched;
        self.wrong += got.len() - matched;
    }

    fn reject(&mut self, bursts: usize, got: &str) {
        self.reject_bursts += bursts;
        self.false_digits += got.len();
    }
}

pub(crate) fn scorecard(det: &mut dyn Detector, munge: Munge) -> Score {
    let mut score = Score::default();
    let mut rng = Rng::new(12);
    let rate = det.rate();
    let (expect, got) = decode_check(det, munge);
    score.detect(&expect, &got);
    for digit in ['1', '5', '9', 'D'] {
        let burst = digit.to_string().repeat(10);
        for high in [false, true] {
            for step in (-60..=60i32).filter(|s| *s != 0 && (s.abs() <= 15 || s.abs() >= 35)) {
                let d = f64::from(step) / 1000.0;
                let dev = if high { (0.0, d) } else { (d, 0.0) };
                let b = bursts(rate, &mut rng, &burst, dev, (-17.0, -17.0), 50.0, 50.0, 0);
                let got = run(det, &b.finish(munge));
                if step.abs() <= 15 {
                    score.detect(&burst, &got);
                } else {
                    score.reject(burst.len(), &got);
                }
            }
        }
    }
    let seq = ALL.repeat(2);
    for att in 0..=8u32 {
        for reverse in [false, true] {
            if reverse && att > 4 {
                continue;
            }
            let weak = -3.0 - f64::from(att);
            let levels = if reverse { (weak, -3.0) } else { (-3.0, weak) };
            let b = bursts(rate, &mut rng, &seq, (0.0, 0.0), levels, 50.0, 50.0, 0);
            score.detect(&seq, &run(det, &b.finish(munge)));
        }
    }
    for level in -35..=0 {
        let l = f64::from(level);
        let b = bursts(rate, &mut rng, ALL, (0.0, 0.0), (l, l), 50.0, 50.0, 0);
        score.detect(ALL, &run(det, &b.finish(munge)));
    }
    let jitter = usize::try_from(rate / 80).unwrap_or(100);
    let seq = ALL.repeat(4);
    for dur in (10..=23u32).chain(40..=49) {
        let b = bursts(
            rate,
            &mut rng,
            &seq,
            (0.0, 0.0),
            (-10.0, -10.0),
            f64::from(dur),
            100.0,
            jitter,
        );
        let got = run(det, &b.finish(munge));
        if dur >= 40 {
            score.detect(&seq, &got);
        } else {
            score.reject(seq.len(), &got);
        }
    }
    let seq = ALL.repeat(100);
    let mut b = bursts(
        rate,
        &mut rng,
        &seq,
        (0.0, 0.0),
        (-4.0, -4.0),
        50.0,
        50.0,
        0,
    );
    b.add_noise(&mut rng, -13.0);
    score.detect(&seq, &run(det, &b.finish(munge)));
    score
}
