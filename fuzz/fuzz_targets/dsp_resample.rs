//! Fuzz target for the resampler and G.711: arbitrary rates (from the
//! supported range), samples and buffer sizes must never panic; streaming
//! through small output buffers must give the same samples as one call; and
//! G.711 must be idempotent after one round trip.

#![no_main]

use flowgate_dsp::g711::Law;
use flowgate_dsp::{Resampler, resample};

const RATES: [u32; 8] = [8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let [a, b, out_len, rest @ ..] = data else {
        return;
    };
    let from = RATES[usize::from(*a) % RATES.len()];
    let to = RATES[usize::from(*b) % RATES.len()];
    let samples: Vec<i16> = rest
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    let Ok(whole) = resample(&samples, from, to) else {
        return;
    };
    let Ok(mut r) = Resampler::new(from, to) else {
        return;
    };
    let mut streamed = Vec::new();
    let mut buf = vec![0i16; usize::from(*out_len).max(1)];
    let mut input = &samples[..];
    while !input.is_empty() {
        let p = r.process_into(input, &mut buf);
        streamed.extend_from_slice(&buf[..p.produced]);
        input = &input[p.consumed..];
    }
    r.flush(&mut streamed);
    if from != to {
        assert_eq!(whole, streamed);
    }
    for law in [Law::Ulaw, Law::Alaw] {
        let mut once = samples.clone();
        law.round_trip(&mut once);
        let mut twice = once.clone();
        law.round_trip(&mut twice);
        assert_eq!(once, twice, "{law:?} not idempotent");
    }
});
