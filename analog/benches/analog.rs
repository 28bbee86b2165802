//! Cost of the analog ports, and their detection latency in simulated time.
//!
//! - `cid_decode`: the caller-ID receiver (Bell 202 + V.23 + DTMF CLIP at once, as an FXO
//!   port runs it on-hook) over one second of line audio that carries a caller-ID burst;
//!   time per iteration = CPU per port-second.
//! - `port_second`: one simulated second of a port — polls every 5 ms (SPI to the simulated
//!   chip, line logic) and 50 audio frames — idle, and during ringing with caller ID. It
//!   includes the simulated chip's own work, so it is an upper bound for the port itself.
//! - `latency` (printed, simulated time): off-hook → `OffHook` event, ring start at the line →
//!   FXO ring detected, the far end's reversal → `Ended`.
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
use flowgate_analog::country::CidSignalling;
use flowgate_analog::line::LineEvent;
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

fn latency(_c: &mut Criterion) {
    // Off-hook to event: the phone lifts at a random phase of the 5 ms poll.
    let mut worst_hook = 0;
    for offset in 0..5 {
        let mut rig = Rig::new(ExchangeConfig::default());
        rig.step(offset);
        let t0 = rig.now;
        rig.ctl.lift_handset();
        let (t, _) = rig.until_fxs(500, |e| *e == LineEvent::OffHook);
        worst_hook = worst_hook.max(t - t0);
    }
    // Ring at the line to the FXO ring detector, and caller ID to the Incoming event.
    let mut rig = Rig::new(ExchangeConfig::default());
    let t0 = rig.now;
    rig.ctl
        .ring_line(Some(&caller()), CidSignalling::Bell)
        .expect("ring");
    let (t_in, _) = rig.until_fxo(8000, |e| matches!(e, LineEvent::Incoming { .. }));
    // Far-end reversal to Ended.
    rig.fxo
        .command(LineCommand::Answer, rig.now)
        .expect("answer");
    rig.step(2000);
    let t1 = rig.now;
    rig.ctl.hang_up_line().expect("hang up");
    let (t_end, _) = rig.until_fxo(2000, |e| matches!(e, LineEvent::Ended { .. }));
    println!(
        "latency (simulated time, 5 ms polling): off-hook → OffHook ≤ {worst_hook} ms; \
         ring + Bell caller ID → Incoming {} ms after the first ring started \
         (caller ID ends ≈ {} ms); far-end reversal → Ended {} ms",
        t_in - t0,
        2000 + 500 + ours_tx(&caller(), Standard::Bell).len() as u64 / 8,
        t_end - t1
    );
}

criterion_group!(benches, cid_decode, port_second, latency);
criterion_main!(benches);
