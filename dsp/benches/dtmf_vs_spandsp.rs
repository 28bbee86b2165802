//! DTMF detection throughput, ours and spandsp's, on the same audio in one
//! run. Throughput is in samples/s; divide by 8000 for channels per core.
//!
//! ```text
//! cargo bench -p flowgate-dsp --features spandsp-compare --bench dtmf_vs_spandsp
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use common::signal::Munge;
use common::spandsp::Spandsp;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowgate_dsp::DtmfDetector;

fn bench(c: &mut Criterion) {
    let audio = common::bench_audio(8000);
    let mut g = c.benchmark_group("dtmf_detect_8k");
    g.throughput(Throughput::Elements(audio.len() as u64));
    g.bench_function("flowgate", |b| {
        let mut det = DtmfDetector::default();
        b.iter(|| {
            let mut n = 0;
            for frame in audio.chunks(160) {
                n += det.process(black_box(frame)).len();
            }
            n
        });
    });
    g.bench_function("spandsp", |b| {
        let mut det = Spandsp::new();
        b.iter(|| {
            for frame in audio.chunks(160) {
                det.rx(black_box(frame));
            }
        });
    });
    g.finish();
    let _ = Munge::Linear;
}

criterion_group!(benches, bench);
criterion_main!(benches);
