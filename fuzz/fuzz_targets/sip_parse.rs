//! Fuzz target for the SIP message parser: arbitrary bytes as a datagram must never
//! panic; what parses must serialize and parse again; a refusal's reply must serialize;
//! the stream framer must agree with the parser on complete frames; and the header
//! value parsers (Via, name-addr, CSeq, digest, Refer-To and Replaces, SDP) must never
//! panic on any value.

#![no_main]

use flowgate_sip::auth::{Answer, Challenge};
use flowgate_sip::message::{Limits, NameAddr, Via, frame_len, parse, parse_cseq};
use flowgate_sip::refer::{DialogRef, parse_refer_to, split_uri_headers};
use flowgate_sip::sdp::Sdp;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    match parse(data, &limits) {
        Ok(m) => {
            let again = parse(&m.to_bytes(), &limits);
            assert!(again.is_ok(), "a parsed message must re-parse");
            for h in &m.headers().0 {
                let _ = Via::parse(&h.value);
                let _ = NameAddr::parse(&h.value);
                let _ = parse_cseq(&h.value);
                let _ = Challenge::parse(&h.value);
                let _ = Answer::parse(&h.value);
                // What a REFER's Refer-To carries, and what it makes an INVITE carry.
                if let Ok(r) = parse_refer_to(&h.value)
                    && let Some(d) = r.replaces
                {
                    let again = split_uri_headers(&format!("{}?{}", r.uri, d.uri_header()));
                    assert_eq!(
                        again,
                        Ok((r.uri, Some(d))),
                        "a Replaces must survive its URI header"
                    );
                }
                let _ = DialogRef::parse(&h.value);
            }
        }
        Err(refusal) => {
            if let Some(r) = refusal.reply {
                let _ = r.to_bytes();
            }
        }
    }
    if let Ok(Some(n)) = frame_len(data, &limits) {
        assert!(n <= data.len());
    }
    let _ = Sdp::parse(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = flowgate_sip::message::parse_uri(s);
    }
});
