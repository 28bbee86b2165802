//! SMS PDU codec throughput: decoding the PDU kinds the driver sees (single GSM7, UCS2, one
//! part of a multipart message, a status report) from the hex the modem prints, and encoding a
//! 3-part message for `AT+CMGS`. Criterion reports messages per second (`elem/s`).
//!
//! Run: `cargo bench -p flowgate-board --bench pdu`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowgate_board::modem::pdu::{Address, Pdu, SubmitOptions, encode_submit};

const GSM7_SINGLE: &str =
    "07912143658709F1040B918100551512F20000111010214365000AE8329BFD4697D9EC37";
const UCS2: &str = "07919730071111F10414D04937BD2C7797E9D3E614000811309291024061080442043504410442";
const MULTIPART_PART: &str = "07912160130320F5440B916171056429F5000021405291650569A00500034C0201A9E8F41C949E83C2207B599E07B1DFEE33885E9ED341E4F23C7D7697C920FA1B54C697E5E3F4BC0C6AD7D9F434081E96D341E3303C2C4EB3D3F4BC0B94A483E6E8779D4D06CDD1EF3BA80E0785E7A0B7BB0C6A97E7F3F0B9CC02B9DF7450780EA2DFDF2C50780EA2A3CBA0BA9B5C96B3F369F71954768FDFE4B4FB0C9297E1F2F2BCECA6CF41";
const STATUS_REPORT: &str = "0006D60B911326880736F4111011719551401110117195714000";

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("pdu_decode");
    g.throughput(Throughput::Elements(1));
    for (name, hex) in [
        ("gsm7_single", GSM7_SINGLE),
        ("ucs2_alphanumeric", UCS2),
        ("multipart_part", MULTIPART_PART),
        ("status_report", STATUS_REPORT),
    ] {
        assert!(Pdu::from_hex(hex).is_ok(), "{name} must decode");
        g.bench_function(name, |b| b.iter(|| Pdu::from_hex(black_box(hex))));
    }
    g.finish();
}

fn encode(c: &mut Criterion) {
    let to = Address::parse("+15555551234").unwrap_or_else(|e| panic!("{e}"));
    // 400 GSM7 septets with a few extension characters: 3 parts of at most 153 septets.
    let text = "Flowgate gateway test message {€} ".repeat(12);
    let text = &text[..text.char_indices().nth(390).map_or(text.len(), |(i, _)| i)];
    let options = SubmitOptions::default();
    let parts = encode_submit(&to, text, &options).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parts.len(), 3, "the benchmark text must need 3 parts");
    let mut g = c.benchmark_group("pdu_encode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("submit_3_parts", |b| {
        b.iter(|| encode_submit(black_box(&to), black_box(text), black_box(&options)))
    });
    g.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
