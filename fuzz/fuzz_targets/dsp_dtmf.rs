//! Fuzz target for the DTMF detector: any sample stream, cut into chunks of
//! any size, at either rate, in standard, relaxed or notch mode, must never
//! panic; chunking must not change the events; every Start is followed by an
//! End of the same digit before the next Start.

#![no_main]

use flowgate_dsp::{DtmfConfig, DtmfDetector, DtmfEvent};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let rate = if mode & 1 == 0 { 8000 } else { 16000 };
    let mut config = if mode & 2 == 0 {
        DtmfConfig::new(rate)
    } else {
        DtmfConfig::relaxed(rate)
    };
    if mode & 4 != 0 {
        config.dial_tone_notch_hz = Some(DtmfConfig::NORTH_AMERICAN_DIAL_TONE);
    }
    let chunk = usize::from(mode >> 3).max(1) * 7;
    let samples: Vec<i16> = rest
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let Ok(mut whole) = DtmfDetector::new(config.clone()) else {
        return;
    };
    let Ok(mut cut) = DtmfDetector::new(config) else {
        return;
    };
    let expect = whole.process(&samples).to_vec();
    let mut got = Vec::new();
    for c in samples.chunks(chunk) {
        got.extend_from_slice(cut.process(c));
    }
    assert_eq!(expect, got, "chunking changed the events");
    let mut open = None;
    for e in &got {
        match *e {
            DtmfEvent::Start { digit, .. } => {
                assert!(open.is_none(), "two starts without an end: {got:?}");
                open = Some(digit);
            }
            DtmfEvent::End { digit, .. } => {
                assert_eq!(open.take(), Some(digit), "end without start: {got:?}");
            }
        }
    }
});
