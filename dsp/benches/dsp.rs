//! Cost of the DSP building blocks. The G.711, tone, level and mixer
//! groups process one channel-second per iteration (time = cost per
//! channel-second); the resampler groups produce one output second; the
//! DTMF group runs the 9.6 s benchmark audio. In every group the throughput
//! (samples/s ÷ sample rate) is the number of channels one core sustains.
//!
//! ```text
//! cargo bench -p flowgate-dsp --bench dsp
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowgate_dsp::g711::{alaw, ulaw};
use flowgate_dsp::{
    DtmfConfig, DtmfDetector, DtmfGenConfig, DtmfGenerator, Gain, Resampler, SilenceConfig,
    SilenceDetector, ToneGenerator, ToneKind, mix_into,
};

const FRAME: usize = 160;

fn dtmf(c: &mut Criterion) {
    let mut g = c.benchmark_group("dtmf_detect");
    for rate in [8000u32, 16000] {
        let audio = common::bench_audio(rate);
        g.throughput(Throughput::Elements(audio.len() as u64));
        let frame = usize::try_from(rate / 50).unwrap_or(FRAME);
        g.bench_function(format!("{}k", rate / 1000), |b| {
            let mut det = DtmfDetector::new(DtmfConfig::new(rate)).expect("valid");
            b.iter(|| {
                let mut n = 0;
                for f in audio.chunks(frame) {
                    n += det.process(black_box(f)).len();
                }
                n
            });
        });
    }
    let audio = common::bench_audio(8000);
    let mut notch = DtmfConfig::new(8000);
    notch.dial_tone_notch_hz = Some(DtmfConfig::NORTH_AMERICAN_DIAL_TONE);
    g.throughput(Throughput::Elements(audio.len() as u64));
    g.bench_function("8k_dial_tone_notch", |b| {
        let mut det = DtmfDetector::new(notch.clone()).expect("valid");
        b.iter(|| {
            for f in audio.chunks(FRAME) {
                black_box(det.process(black_box(f)));
            }
        });
    });
    g.finish();
}

fn g711(c: &mut Criterion) {
    let audio = common::bench_audio(8000);
    let second = &audio[..8000];
    let mut codes = vec![0u8; 8000];
    let mut back = vec![0i16; 8000];
    let mut g = c.benchmark_group("g711_channel_second");
    g.throughput(Throughput::Elements(8000));
    g.bench_function("ulaw_encode", |b| {
        b.iter(|| ulaw::encode_block(black_box(second), &mut codes));
    });
    g.bench_function("ulaw_decode", |b| {
        b.iter(|| ulaw::decode_block(black_box(&codes), &mut back));
    });
    g.bench_function("alaw_encode", |b| {
        b.iter(|| alaw::encode_block(black_box(second), &mut codes));
    });
    g.bench_function("alaw_decode", |b| {
        b.iter(|| alaw::decode_block(black_box(&codes), &mut back));
    });
    g.finish();
}

fn tones(c: &mut Criterion) {
    let mut out = vec![0i16; 8000];
    let mut g = c.benchmark_group("tone_channel_second");
    g.throughput(Throughput::Elements(8000));
    g.bench_function("dtmf_generator", |b| {
        let mut tone_gen = DtmfGenerator::new(DtmfGenConfig {
            on_ms: 1000,
            ..DtmfGenConfig::default()
        })
        .expect("valid");
        b.iter(|| {
            tone_gen.queue("5").expect("digit");
            for f in out.chunks_mut(FRAME) {
                tone_gen.fill(f);
            }
        });
    });
    g.bench_function("dial_tone_us", |b| {
        let mut tone_gen = ToneGenerator::call_progress("us", ToneKind::Dial, 8000).expect("valid");
        b.iter(|| {
            for f in out.chunks_mut(FRAME) {
                tone_gen.fill(f);
            }
        });
    });
    g.bench_function("ringback_in_am", |b| {
        let mut tone_gen =
            ToneGenerator::call_progress("in", ToneKind::Ringback, 8000).expect("valid");
        b.iter(|| {
            for f in out.chunks_mut(FRAME) {
                tone_gen.fill(f);
            }
        });
    });
    g.finish();
}

fn resample(c: &mut Criterion) {
    let mut g = c.benchmark_group("resample_output_second");
    for (from, to) in [
        (22050u32, 8000u32),
        (48000, 8000),
        (16000, 8000),
        (8000, 16000),
    ] {
        let input = common::bench_audio(from);
        let n = usize::try_from(from).unwrap_or(8000);
        let second = &input[..n];
        g.throughput(Throughput::Elements(u64::from(to)));
        g.bench_function(format!("{from}_to_{to}"), |b| {
            let mut r = Resampler::new(from, to).expect("supported");
            let mut out = Vec::with_capacity(usize::try_from(to).unwrap_or(0) + 16);
            b.iter(|| {
                out.clear();
                r.process(black_box(second), &mut out);
                out.len()
            });
        });
    }
    g.finish();
}

fn levels_and_mix(c: &mut Criterion) {
    let audio = common::bench_audio(8000);
    let second = &audio[..8000];
    let mut g = c.benchmark_group("misc_channel_second");
    g.throughput(Throughput::Elements(8000));
    g.bench_function("silence_detector", |b| {
        let mut d = SilenceDetector::new(SilenceConfig::default()).expect("valid");
        b.iter(|| {
            for f in second.chunks(FRAME) {
                d.process(black_box(f));
            }
        });
    });
    g.bench_function("mix_into", |b| {
        let mut dst = second.to_vec();
        let gain = Gain::from_db(-6.0);
        b.iter(|| mix_into(&mut dst, black_box(second), gain));
    });
    g.finish();
}

criterion_group!(benches, dtmf, g711, tones, resample, levels_and_mix);
criterion_main!(benches);
