//! Shared test support: signal synthesis, the DTMF conformance suite and the
//! espeak-ng talk-off corpus. Included by the tests, the report example and
//! the benchmarks (`#[path]`), so not every item is used everywhere.
#![allow(dead_code)]

pub(crate) mod signal;
#[cfg(feature = "spandsp-compare")]
pub(crate) mod spandsp;
pub(crate) mod speech;
pub(crate) mod suite;

/// The benchmarks' test audio: 9.6 s of all 16 digits (−10 dBm0, 100 ms on,
/// 100 ms off) over white noise at −40 dBm0.
pub(crate) fn bench_audio(rate: u32) -> Vec<i16> {
    let mut rng = signal::Rng::new(99);
    let mut b = signal::Builder::new(rate);
    for _ in 0..3 {
        for d in suite::ALL.chars() {
            let digit =
                flowgate_dsp::DtmfDigit::from_char(d).unwrap_or(flowgate_dsp::DtmfDigit::One);
            let (lo, hi) = digit.frequencies();
            b.digit(
                &mut rng,
                (f64::from(lo), -10.0),
                (f64::from(hi), -10.0),
                signal::ms(rate, 100.0),
            );
            b.silence(signal::ms(rate, 100.0));
        }
    }
    b.add_noise(&mut rng, -40.0);
    b.finish(signal::Munge::Linear)
}
