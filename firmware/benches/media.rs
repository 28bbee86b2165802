//! Media layer benchmarks.
//!
//! * `media_core/*`: CPU cost of one call's media pipeline (the per-frame core:
//!   DTMF detection on the caller's audio, the flow layer, the interrupt layer
//!   mixed over it, a recording) for one channel-second (50 frames) per
//!   iteration; the throughput figure is channels one core sustains.
//! * `media_echo/round_trip`: added latency of `echo`, captured frame → sent
//!   frame, through a live session (port, media thread, core, port) on an
//!   in-process port: what the pipeline adds on top of the device's own
//!   buffering. The pipeline itself adds no frame of delay (the frame captured
//!   is the frame sent in the same tick); this is the processing and thread
//!   hand-off time. Target ≤ 40 ms.
//! * `media_tts/cache_hit`: `talk` audio for a prompt already in the disk cache
//!   (no espeak-ng run): key, file read, decode.
//!
//! ```text
//! cargo bench -p flowgate --bench media
//! ```

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowgate::media::bench::CoreBench;
use flowgate::media::{CallMedia, ChannelPort, Layer, MediaContext, MediaSettings};

const FRAME: usize = 160;

fn tone(freq: f64, n: usize, amp: f64) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let v = amp * (std::f64::consts::TAU * freq * i as f64 / 8000.0).sin();
            #[expect(clippy::cast_possible_truncation, reason = "|v| ≤ amp < 32768")]
            let s = v.round() as i16;
            s
        })
        .collect()
}

fn core(c: &mut Criterion) {
    let mut g = c.benchmark_group("media_core");
    // One channel-second per iteration.
    g.throughput(Throughput::Elements(8000));
    let caller = tone(300.0, 8000, 4000.0);
    let prompt: Arc<[i16]> = tone(600.0, 8000, 8000.0).into();
    let talk: Arc<[i16]> = tone(1500.0, 8000, 8000.0).into();
    let setups: [(&str, bool, bool); 3] = [
        ("detect_only", false, false),
        ("flow", true, false),
        ("flow_interrupt_record", true, true),
    ];
    for (name, flow, everything) in setups {
        g.bench_function(name, |b| {
            let mut core = CoreBench::new(8000).expect("core");
            if flow {
                core.play_loop(Layer::Flow, prompt.clone());
            }
            if everything {
                core.play_loop(Layer::Interrupt, talk.clone());
                core.record().expect("record");
            }
            let mut out = vec![0i16; FRAME];
            b.iter(|| {
                for f in caller.chunks(FRAME) {
                    core.tick(black_box(f), &mut out);
                }
                out[0]
            });
        });
    }
    g.finish();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A media context with default settings over a scratch data directory.
fn context(dir: &std::path::Path) -> MediaContext {
    MediaContext::new(MediaSettings {
        data_dir: dir.to_owned(),
        ..MediaSettings::default()
    })
    .expect("context")
}

fn echo(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("dir");
    let ctx = context(dir.path());
    let (port, peer) = ChannelPort::pair(8000, None).expect("pair");
    let (media, _events) = rt
        .block_on(CallMedia::open_port(Box::new(port), &ctx, "bench"))
        .expect("open");
    let _echo = media.echo(Duration::from_secs(24 * 3600)).expect("echo");
    let frame = tone(440.0, FRAME, 6000.0);
    let mut g = c.benchmark_group("media_echo");
    g.bench_function("round_trip", |b| {
        b.iter(|| {
            let out = peer
                .exchange(black_box(&frame), Duration::from_secs(5))
                .expect("answer");
            assert_eq!(out, frame, "echo returns the same frame");
            out
        });
    });
    g.finish();
    media.close();
    drop(peer);
    rt.block_on(media.closed());
}

fn tts(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("dir");
    let ctx = context(dir.path());
    let text = "Thank you for calling. Press one for sales, two for support.";
    rt.block_on(ctx.synthesize(text, Some("en-US"), None, 8000))
        .expect("warm the cache");
    let runs = ctx.stats().tts_runs();
    let mut g = c.benchmark_group("media_tts");
    g.bench_function("cache_hit", |b| {
        b.iter(|| {
            rt.block_on(ctx.synthesize(black_box(text), Some("en-US"), None, 8000))
                .expect("hit")
        });
    });
    g.finish();
    assert_eq!(
        ctx.stats().tts_runs(),
        runs,
        "every iteration was a cache hit"
    );
}

criterion_group!(benches, core, echo, tts);
criterion_main!(benches);
