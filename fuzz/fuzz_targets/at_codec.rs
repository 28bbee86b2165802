//! Fuzz target for the AT codec: arbitrary bytes, fed whole and in arbitrary chunks, with any
//! command pending, must never panic, must give the same events however they are chunked,
//! and every reply must go through the typed reply parsers without panicking.

#![no_main]

use flowgate_board::modem::at::codec::{AtCodec, AtEvent, CodecLimits, Pending};
use flowgate_board::modem::at::{response, urc};

const COMMANDS: &[&str] = &[
    "AT",
    "AT+CMGL=4",
    "AT+CMGR=1",
    "AT+CMGS=20",
    "ATD+15551234;",
    "ATA",
    "AT+CLCC",
    "AT+CUSD=1,\"*100#\",15",
    "AT+CSQ",
    "AT+CREG?",
    "AT+CPMS?",
    "AT+CPIN?",
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&sel, input)) = data.split_first() else {
        return;
    };
    let cmd = COMMANDS
        .get(usize::from(sel) % COMMANDS.len())
        .copied()
        .unwrap_or("AT");
    let limits = CodecLimits {
        max_line: 32 + usize::from(sel) * 8,
        max_response_lines: 8,
    };
    let pending = || Pending::for_command(cmd);

    let mut whole = AtCodec::new(limits);
    whole.begin(pending());
    let mut a = Vec::new();
    whole.feed(input, &mut a);

    // The same bytes in chunks whose sizes come from a small generator seeded by `sel`.
    let mut chunked = AtCodec::new(limits);
    chunked.begin(pending());
    let mut b = Vec::new();
    let mut state = u32::from(sel) | 1;
    let mut rest = input;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state % 9 + 1) as usize;
        let (chunk, tail) = rest.split_at(n.min(rest.len()));
        chunked.feed(chunk, &mut b);
        rest = tail;
    }
    assert_eq!(a, b, "chunking changed the events");

    for ev in &a {
        match ev {
            AtEvent::Response(r) => {
                let _ = response::cmgr(r);
                let _ = response::cmgl(r);
                let _ = response::clcc(r);
                let _ = response::cmgs(r);
                let _ = response::csq(r);
                let _ = response::registration(r, "+CREG");
                let _ = response::cpms(r);
                let _ = response::cpms_test(r);
                let _ = response::cpin(r);
                let _ = response::cops(r);
                let _ = response::cnum(r);
                let _ = response::iccid(r);
                let _ = response::digits(r);
                let _ = r.first_text();
            }
            AtEvent::Stray(line) => {
                let _ = urc::parse_urc(line);
            }
            _ => {}
        }
    }
    // Every line also goes through the URC parser directly.
    for line in String::from_utf8_lossy(input).split(['\r', '\n']) {
        let _ = urc::parse_urc(line);
        let _ = urc::classify(line);
    }
});
