//! AT codec throughput on a realistic mixed transcript: init replies with echo, signal and
//! registration queries, call URCs (ccinfo, RING, +CLIP, ^CEND), DTMF, +CMTI / +CMGR / a
//! 20-message +CMGL with PDUs, +CMGS with the prompt, +CUSD before and after OK, +CDS.
//! The bytes arrive in 64-byte reads (a USB serial port's typical chunk) and, as a worst
//! case, one byte at a time. Criterion reports MB/s (`bytes`) and lines/s (`lines`).
//!
//! Run: `cargo bench -p flowgate-board --bench at_codec`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowgate_board::modem::at::codec::{AtCodec, AtEvent, Pending};

const PDU: &str = "07912143658709F1040B918100551512F20000111010214365000AE8329BFD4697D9EC37";

/// (command pending while these bytes arrive, bytes).
fn transcript() -> Vec<(Option<&'static str>, Vec<u8>)> {
    let mut t: Vec<(Option<&'static str>, Vec<u8>)> = vec![
        (Some("AT"), b"AT\r\r\nOK\r\n".to_vec()),
        (Some("ATE0"), b"ATE0\r\r\nOK\r\n".to_vec()),
        (Some("AT+CGMI"), b"\r\nQuectel\r\n\r\nOK\r\n".to_vec()),
        (Some("AT+CGMR"), b"\r\nRevision: EC25EFAR06A06M4G\r\n\r\nOK\r\n".to_vec()),
        (Some("AT+CSQ"), b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n".to_vec()),
        (Some("AT+CREG?"), b"\r\n+QIND: \"csq\",21,99\r\n\r\n+CREG: 2,1,\"4CA\",\"81DE445\",7\r\n\r\nOK\r\n".to_vec()),
        (Some("AT+COPS?"), b"\r\n+COPS: 0,0,\"Flowgate Sim\",7\r\n\r\nOK\r\n".to_vec()),
        (None, b"\r\n+QIND: \"ccinfo\",1,1,4,0,0,\"+15557778888\",145\r\n\r\nRING\r\n\r\n+CLIP: \"+15557778888\",145,,,,0\r\n".to_vec()),
        (Some("AT+CLCC"), b"\r\n+CLCC: 1,1,4,0,0,\"+15557778888\",145\r\n\r\nOK\r\n".to_vec()),
        (Some("ATA"), b"\r\nOK\r\n\r\n+QIND: \"ccinfo\",1,1,0,0,0,\"+15557778888\",145\r\n".to_vec()),
        (None, b"\r\n+QTONEDET: 49\r\n\r\n+QTONEDET: 50\r\n\r\n+QTONEDET: 35\r\n".to_vec()),
        (Some("AT+VTS=\"5\""), b"\r\nOK\r\n".to_vec()),
        (None, b"\r\nNO CARRIER\r\n\r\n+QIND: \"ccinfo\",1,1,-1,0,0,\"+15557778888\",145\r\n".to_vec()),
        (None, b"\r\n+CMTI: \"ME\",3\r\n".to_vec()),
        (Some("AT+CMGR=3"), format!("\r\n+CMGR: 0,,29\r\n{PDU}\r\n\r\nOK\r\n").into_bytes()),
        (Some("AT+CMGD=3"), b"\r\nOK\r\n".to_vec()),
        (Some("AT+CMGS=23"), b"\r\n> ".to_vec()),
        (None, b"\r\n+CMGS: 42\r\n\r\nOK\r\n".to_vec()),
        (Some("AT+CUSD=1,\"*100#\",15"), b"\r\n+CUSD: 0,\"Your balance is 12.34 EUR\",15\r\n\r\nOK\r\n".to_vec()),
        (None, format!("\r\n+CDS: 25\r\n{PDU}\r\n").into_bytes()),
    ];
    let mut cmgl = String::new();
    for i in 0..20 {
        cmgl.push_str(&format!("\r\n+CMGL: {i},1,,29\r\n{PDU}"));
    }
    cmgl.push_str("\r\n\r\nOK\r\n");
    t.push((Some("AT+CMGL=4"), cmgl.into_bytes()));
    t
}

fn run(steps: &[(Option<&'static str>, Vec<u8>)], chunk: usize) -> usize {
    let mut codec = AtCodec::default();
    let mut out = Vec::with_capacity(64);
    let mut events = 0;
    for (cmd, bytes) in steps {
        if let Some(c) = cmd {
            codec.begin(Pending::for_command(c));
        }
        for piece in bytes.chunks(chunk) {
            codec.feed(black_box(piece), &mut out);
            events += out.len();
            out.clear();
        }
    }
    events
}

fn bench(c: &mut Criterion) {
    let steps = transcript();
    let bytes: usize = steps.iter().map(|(_, b)| b.len()).sum();
    let lines: usize = steps
        .iter()
        .map(|(_, b)| {
            String::from_utf8_lossy(b)
                .split(['\r', '\n'])
                .filter(|l| !l.trim().is_empty())
                .count()
        })
        .sum();
    // Sanity: the transcript parses into the expected kinds of events.
    let mut codec = AtCodec::default();
    let mut out = Vec::new();
    for (cmd, b) in &steps {
        if let Some(c) = cmd {
            codec.begin(Pending::for_command(c));
        }
        codec.feed(b, &mut out);
    }
    assert!(out.iter().any(|e| matches!(e, AtEvent::Prompt)));
    assert!(
        !out.iter().any(|e| matches!(
            e,
            AtEvent::BadUrc(_) | AtEvent::Stray(_) | AtEvent::Overflow { .. }
        )),
        "{out:?}"
    );

    let mut g = c.benchmark_group("at_codec");
    g.throughput(Throughput::Bytes(u64::try_from(bytes).unwrap_or(u64::MAX)));
    g.bench_function("transcript_64B_reads_bytes", |b| b.iter(|| run(&steps, 64)));
    g.bench_function("transcript_1B_reads_bytes", |b| b.iter(|| run(&steps, 1)));
    g.throughput(Throughput::Elements(
        u64::try_from(lines).unwrap_or(u64::MAX),
    ));
    g.bench_function("transcript_64B_reads_lines", |b| b.iter(|| run(&steps, 64)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
