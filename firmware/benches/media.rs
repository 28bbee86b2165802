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
//! * `media_bridge/core_pair`: CPU of one bridged call-second: both calls' cores (DTMF
//!   detection on each side, the frame queues between them) for 50 frames each.
//! * `media_bridge/round_trip`: a frame captured on one call is sent on the other in the
//!   same tick (asserted: no extra frame of delay); the time is the two sessions'
//!   processing and thread hand-offs on in-process ports.
//!
//! ```text
//! cargo bench -p flowgate --bench media
//! ```

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowgate::media::bench::CoreBench;
use flowgate::media::{CallMedia, ChannelPort, Layer, MediaContext, MediaSettings, bridge_pair};

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

fn bridge(c: &mut Criterion) {
    let mut g = c.benchmark_group("media_bridge");
    let caller = tone(300.0, 8000, 4000.0);
    let callee = tone(700.0, 8000, 4000.0);
    g.throughput(Throughput::Elements(8000));
    g.bench_function("core_pair", |b| {
        let (mut a, mut z) = (
            CoreBench::new(8000).expect("core"),
            CoreBench::new(8000).expect("core"),
        );
        let (end_a, end_z) = bridge_pair();
        a.bridge(end_a);
        z.bridge(end_z);
        let (mut out_a, mut out_z) = (vec![0i16; FRAME], vec![0i16; FRAME]);
        b.iter(|| {
            for (fa, fz) in caller.chunks(FRAME).zip(callee.chunks(FRAME)) {
                a.tick(black_box(fa), &mut out_a);
                z.tick(black_box(fz), &mut out_z);
            }
            (out_a[0], out_z[0])
        });
    });
    g.finish();

    let rt = runtime();
    let dir = tempfile::tempdir().expect("dir");
    let ctx = context(dir.path());
    let (port_a, peer_a) = ChannelPort::pair(8000, None).expect("pair");
    let (port_z, peer_z) = ChannelPort::pair(8000, None).expect("pair");
    let (a, _ev_a) = rt
        .block_on(CallMedia::open_port(Box::new(port_a), &ctx, "bench-a"))
        .expect("open");
    let (z, _ev_z) = rt
        .block_on(CallMedia::open_port(Box::new(port_z), &ctx, "bench-z"))
        .expect("open");
    let (end_a, end_z) = bridge_pair();
    a.bridge(end_a).expect("bridge");
    z.bridge(end_z).expect("bridge");
    // Let the bridge commands land before the first measured frame.
    for _ in 0..2 {
        peer_a
            .exchange(&[0; FRAME], Duration::from_secs(5))
            .expect("tick");
        peer_z
            .exchange(&[0; FRAME], Duration::from_secs(5))
            .expect("tick");
    }
    let frame = tone(440.0, FRAME, 6000.0);
    let silence = [0i16; FRAME];
    let mut g = c.benchmark_group("media_bridge");
    g.bench_function("round_trip", |b| {
        b.iter(|| {
            // Caller A's frame goes in; callee Z's very next frame out is that frame.
            peer_a
                .exchange(black_box(&frame), Duration::from_secs(5))
                .expect("a ticks");
            let out = peer_z
                .exchange(&silence, Duration::from_secs(5))
                .expect("z ticks");
            assert_eq!(out, frame, "no extra frame of delay");
            out
        });
    });
    g.finish();
    a.close();
    z.close();
    drop((peer_a, peer_z));
    rt.block_on(a.closed());
    rt.block_on(z.closed());
}

criterion_group!(benches, core, echo, tts, bridge);
criterion_main!(benches);
