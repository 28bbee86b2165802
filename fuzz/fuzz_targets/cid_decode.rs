//! Fuzz target for the caller-ID message layer: any bytes through the message parser, the
//! framing assembler (with mark signals and framing errors at byte-chosen places) and the
//! DTMF CLIP parser must never panic; a message that decodes re-encodes to bytes that decode
//! to the same message (for the layouts that carry every field).

#![no_main]

use flowgate_analog::cid::dtmf::{DtmfClipReceiver, parse};
use flowgate_analog::cid::frame::FrameAssembler;
use flowgate_analog::cid::{Layout, Message, decode, encode};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok((msg, used)) = decode(data) {
        assert!(used <= data.len());
        let layout = match data.first() {
            Some(0x04 | 0x06) => Layout::Sdmf,
            _ => Layout::Mdmf,
        };
        if let Ok(bytes) = encode(&msg, layout) {
            let (back, _) = decode(&bytes).expect("our own encoding decodes");
            match (&msg, &back) {
                (Message::CallerId(a), Message::CallerId(b)) => {
                    assert_eq!(a.number, b.number);
                    assert_eq!(a.datetime, b.datetime);
                }
                (a, b) => assert_eq!(a, b),
            }
        }
    }
    let mut frames = FrameAssembler::new();
    for &b in data {
        match b {
            0xF0 => frames.mark_signal(),
            0xF1 => {
                let _ = frames.framing_error();
            }
            0xF2 => {
                let _ = frames.carrier_lost();
            }
            _ => {
                let _ = frames.push(b);
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse(text);
        let mut rx = DtmfClipReceiver::new();
        for (i, c) in text.chars().enumerate() {
            let _ = rx.push(c, i as u64 * 140);
        }
    }
});
