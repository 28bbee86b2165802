//! Fuzz target for the SMS PDU decoder: arbitrary octets (and the same input read as a hex
//! string, as the AT layer hands it over) must never panic, and anything that decodes must
//! re-encode and decode to the same value.

#![no_main]

use flowgate_board::modem::pdu::{Pdu, Tpdu, ussd};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = Tpdu::decode(data);
    if let Ok(pdu) = Pdu::decode(data) {
        let encoded = match pdu.encode() {
            Ok(e) => e,
            Err(e) => panic!("decoded but cannot re-encode: {e}: {pdu:?}"),
        };
        assert_eq!(Pdu::decode(&encoded.octets).as_ref(), Ok(&pdu));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let first = data.first().copied().unwrap_or(0);
        let _ = Pdu::from_hex_with_tpdu_len(text, usize::from(first));
        let _ = ussd::gsm7_unpack_hex(text);
        let _ = ussd::decode_ussd(text, first, ussd::UssdCharset::RawHex);
    }
});
