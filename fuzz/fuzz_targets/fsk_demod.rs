//! Fuzz target for the caller-ID receiver (FSK demodulators for Bell 202 and V.23, DTMF
//! CLIP): any sample stream in chunks of any size must never panic, and chunking must not
//! change what is decoded.

#![no_main]

use flowgate_analog::port::cid::{CidReceiver, CidReceiverConfig};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(mode).max(1);
    let samples: Vec<i16> = rest
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let config = CidReceiverConfig::all(8000);
    let (Ok(mut whole), Ok(mut parts)) = (CidReceiver::new(config), CidReceiver::new(config)) else {
        return;
    };
    let mut a = Vec::new();
    whole.process(&samples, |r| a.push(r));
    let mut b = Vec::new();
    for c in samples.chunks(chunk) {
        parts.process(c, |r| b.push(r));
    }
    assert_eq!(a, b);
});
