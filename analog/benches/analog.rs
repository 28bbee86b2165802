//! Cost of the analog ports (CPU per port).
//!
//! - `cid_decode`: the caller-ID receiver (Bell 202 + V.23 + DTMF CLIP at once, as an FXO
//!   port runs it on-hook) over one second of line audio that carries a caller-ID burst;
//!   time per iteration = CPU per port-second.
//! - `port_second`: one simulated second of a port — polls every 5 ms (SPI to the simulated
//!   chip, line logic) and 50 audio frames — idle, and during ringing with caller ID. It
//!   includes the simulated chip's own work, so it is an upper bound for the port itself.
//!
//! Detection latency is measured in simulated time, not here: `tests/latency.rs`.
//!
//! ```text
//! cargo bench -p flowgate-analog --bench analog
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use common::Rig;
use common::cid_suite::{Standard, ours_tx};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowgate_analog::cid::{CallerId, DateTime};
use flowgate_analog::port::cid::{CidReceiver, CidReceiverConfig};
use flowgate_analog::port::{AnalogPort, LineCommand};
use flowgate_analog::sim::ExchangeConfig;

fn caller() -> CallerId {
    CallerId::new("0123456789", Some("GATEWAY TEST"))
        .at(DateTime::new(11, 23, 18, 45).expect("date"))
}

fn cid_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("cid_decode");
    for standard in Standard::ALL {
        let mut audio = ours_tx(&caller(), standard);
        audio.resize(8000, 0);
        g.throughput(Throughput::Elements(audio.len() as u64));
        g.bench_function(standard.name(), |b| {
            let mut rx = CidReceiver::new(CidReceiverConfig::all(8000)).expect("8 kHz");
            b.iter(|| {
                let mut n = 0;
                for f in audio.chunks(160) {
                    rx.process(black_box(f), |_| n += 1);
                }
                n
            });
        });
    }
    g.finish();
}

fn port_second(c: &mut Criterion) {
    let mut g = c.benchmark_group("port_second");
    g.sample_size(20);
    g.bench_function("fxs+fxo idle", |b| {
        let mut rig = Rig::new(ExchangeConfig::default());
        b.iter(|| rig.step(1000));
    });
    g.bench_function("fxs ringing with caller ID", |b| {
        let mut rig = Rig::new(ExchangeConfig::default());
        b.iter(|| {
            if !rig.fxs.line().ringing() {
                let _ = rig.fxs.command(
                    LineCommand::Ring {
                        caller: Some(caller()),
                    },
                    rig.now,
                );
            }
            rig.step(1000);
        });
    });
    g.finish();
}

criterion_group!(benches, cid_decode, port_second);
criterion_main!(benches);
