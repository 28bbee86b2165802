//! Call media sessions driven in lockstep through an in-process port: every
//! frame the test sends is answered by exactly one frame, so "within one frame"
//! is checked exactly, with no clocks involved.

mod media_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use flowgate::media::{
    CallMedia, ChannelPeer, ChannelPort, DtmfSource, EndOfKey, Layer, MediaContext, MediaError,
    MediaEvent, MediaEvents, MuteDirection, PlaybackOutcome, RecordOptions, RecordingEnd, Source,
    StopCause, read_audio_file, write_wav,
};
use media_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn session(ctx: &MediaContext) -> (CallMedia, MediaEvents, ChannelPeer) {
    let (port, peer) = ChannelPort::pair(8000, None).expect("pair");
    let (media, events) = CallMedia::open_port(Box::new(port), ctx, "test-call")
        .await
        .expect("open");
    (media, events, peer)
}

fn silence() -> Vec<i16> {
    vec![0; F]
}

fn finished(events: &[MediaEvent]) -> Vec<(u64, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::PlaybackFinished { id, outcome, .. } => {
                Some((id.0, format!("{outcome:?}")))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_is_heard_then_silence() {
    let dir = tempfile::tempdir().expect("dir");
    let ctx = context(dir.path());
    let (media, mut events, mut far) = session(&ctx).await;
    let prompt = sine(1000.0, 500, 8000.0, 8000);
    let mut pb = media
        .play(Layer::Flow, Source::Samples(prompt.clone().into()))
        .expect("play");
    let out: Vec<i16> = (0..40).flat_map(|_| far.swap(&silence())).collect();
    // Queued before the first frame, so it starts in the first frame, sample exact.
    assert_eq!(&out[..prompt.len()], &prompt[..]);
    assert!(power(&out[..prompt.len()]) > 1e6);
    assert_eq!(power(&out[prompt.len()..]), 0.0, "silence after the prompt");
    assert!(pb.wait().await.is_finished());
    let ev = drain(&mut events);
    assert!(matches!(
        ev.first(),
        Some(MediaEvent::PlaybackStarted {
            layer: Layer::Flow,
            ..
        })
    ));
    assert_eq!(finished(&ev), [(pb.id().0, "Finished".to_owned())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inband_digits_are_reported_once_even_when_the_modem_reports_them_too() {
    let dir = tempfile::tempdir().expect("dir");
    let ctx = context(dir.path());
    let (media, mut events, mut far) = session(&ctx).await;
    // The modem's URC for the `2` arrives while the tone sounds.
    let mut seen = dtmf_with_modem_report(&media, &mut far, &mut events, "123", 11, '2');
    // A key only the modem heard still counts.
    media.signalled_dtmf('9').expect("modem digit");
    for _ in 0..3 {
        far.swap(&silence());
    }
    seen.extend(drain(&mut events));
    assert_eq!(digits(&seen), "1239");
    let sources: Vec<DtmfSource> = seen
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Dtmf { source, .. } => Some(*source),
            _ => None,
        })
        .collect();
    assert_eq!(
        sources,
        [
            DtmfSource::InBand,
            DtmfSource::Signalled,
            DtmfSource::InBand,
            DtmfSource::Signalled
        ]
    );
    assert!(media.signalled_dtmf('x').is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_stops_the_prompt_in_the_next_frame() {
    let dir = tempfile::tempdir().expect("dir");
    let ctx = context(dir.path());
    let (media, mut events, mut far) = session(&ctx).await;
    let pb = media
        .play(
            Layer::Flow,
            Source::Samples(sine(600.0, 5000, 8000.0, 8000).into()),
        )
        .expect("play");
    for _ in 0..5 {
        assert!(power(&far.swap(&silence())) > 1e6);
    }
    let mut detected_at = None;
    for (k, f) in frames(&dtmf("5", 100, 0), F).iter().enumerate() {
        let out = far.swap(f);
        if detected_at.is_some() {
            assert_eq!(
                power(&out),
                0.0,
                "the prompt stopped in the frame after the digit"
            );
            break;
        }
        assert!(power(&out) > 1e6, "prompt still playing before the digit");
        if digits(&drain(&mut events)) == "5" {
            detected_at = Some(k);
            pb.stop();
        }
    }
    assert!(detected_at.is_some(), "the digit was detected");
    let ev = drain(&mut events);
    assert!(ev.iter().any(|e| matches!(
        e,
        MediaEvent::PlaybackFinished {
            outcome: PlaybackOutcome::Stopped(StopCause::Command),
            ..
        }
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_returns_each_frame_in_the_same_frame() {
    let dir = tempfile::tempdir().expect("dir");
    let ctx = context(dir.path());
    let (media, mut events, mut far) = session(&ctx).await;
    let mut pb = media.echo(Duration::from_millis(400)).expect("echo");
    let voice = frames(&sine(300.0, 600, 6000.0, 8000), F);
    for (k, f) in voice.iter().enumerate() {
        let out = far.swap(f);
        if k < 20 {
            assert_eq!(&out, f, "frame {k} echoed with no added frame of delay");
        } else {
            assert_eq!(power(&out), 0.0, "echo over after its duration");
        }
    }
    assert!(pb.wait().await.is_finished());
    assert_eq!(finished(&drain(&mut events)).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_ends_on_hash_and_leaves_the_key_out() {
    let dir = tempfile::tempdir().expect("dir");
    let ctx = context(dir.path());
    let (media, mut events, mut far) = session(&ctx).await;
    let rec = media
        .start_recording(RecordOptions {
            end_of_key: EndOfKey::Digit('#'),
            ..RecordOptions::default()
        })
        .await
        .expect("record");
    assert_eq!(rec.path, ctx.recording_path(rec.id));
    let voice = sine(440.0, 500, 5000.0, 8000);
    for f in frames(&voice, F) {
        far.swap(&f);
    }
    let mut end = None;
    for f in frames(&dtmf("#", 150, 0), F)
        .iter()
        .chain(std::iter::repeat_n(&silence(), 10))
    {
        far.swap(f);
        for e in drain(&mut events) {
            if let MediaEvent::RecordingFinished {
                id,
                path,
                duration,
                reason,
            } = e
            {
                end = Some((id, path, duration, reason));
            }
        }
    }
    let (id, path, duration, reason) = end.expect("the recording ended");
    assert_eq!(id, rec.id);
    assert!(matches!(reason, RecordingEnd::Key('#')), "{reason:?}");
    assert!(
        duration >= Duration::from_millis(485) && duration <= Duration::from_millis(515),
        "{duration:?}"
    );
    let samples = read_audio_file(&path, 8000).expect("wav");
    assert_eq!(samples.len() as u128, duration.as_micros() * 8 / 1000);
    let common = samples.len().min(voice.len());
    assert_eq!(
        &samples[..common - 120],
        &voice[..common - 120],
        "the caller's audio, unchanged"
    );
    let tail = &samples[samples.len().saturating_sub(400)..];
    assert!(
        tone_power(tail, 941.0, 8000.0) < tone_power(tail, 440.0, 8000.0) / 100.0,
        "no DTMF in the file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_ends_on_silence_and_on_duration() {
    let dir = tempfile::tempdir().expect("dir");
    let ctx = context(dir.path());
    let (media, mut events, mut far) = session(&ctx).await;
    let on_silence = media
        .start_recording(RecordOptions {
            end_of_silence: Some(Duration::from_secs(1)),
            ..RecordOptions::default()
        })
        .await
        .expect("record");
    let capped = media
        .start_recording(RecordOptions {
            duration: Some(Duration::from_millis(300)),
            ..RecordOptions::default()
        })
        .await
        .expect("record");
    for f in frames(&sine(440.0, 200, 5000.0, 8000), F) {
        far.swap(&f);
    }
    let mut ends = Vec::new();
    for _ in 0..100 {
        far.swap(&silence());
        for e in drain(&mut events) {
            if let MediaEvent::RecordingFinished {
                id,
                duration,
                reason,
                ..
            } = e
            {
                ends.push((id, duration, format!("{reason:?}")));
            }
        }
    }
    assert_eq!(ends.len(), 2, "{ends:?}");
    assert_eq!(
        ends[0],
        (capped.id, Duration::from_millis(300), "Duration".to_owned())
    );
    assert_eq!(ends[1].0, on_silence.id);
    assert_eq!(ends[1].2, "Silence");
    // 200 ms of voice, then the detector's 1 s of silence (10 ms blocks).
    assert!(
        ends[1].1 >= Duration::from_millis(1190) && ends[1].1 <= Duration::from_millis(1230),
        "{:?}",
        ends[1].1
    );
    assert_eq!(
        read_audio_file(&capped.path, 8000).expect("wav").len(),
        2400
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beep_start_beeps_to_the_caller_before_recording() {
    let dir = tempfile::tempdir().expect("dir");
    let ctx = context(dir.path());
    let (media, mut events, mut far) = session(&ctx).await;
    let rec = media
        .start_recording(RecordOptions {
            beep_start: true,
            ..RecordOptions::default()
        })
        .await
        .expect("record");
    let (outs, seen) = exchange_until(&mut far, &mut events, F, 50, |e| {
        matches!(e, MediaEvent::RecordingStarted { .. })
    });
    let beep: Vec<i16> = outs.concat();
    assert!(
        tone_power(&beep, 1000.0, 8000.0) > 1e6,
        "the caller hears the 1 kHz beep"
    );
    assert!(
        (12..=14).contains(&outs.len()),
        "250 ms beep, then recording ({} frames)",
        outs.len()
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, MediaEvent::RecordingStarted { id } if *id == rec.id))
    );
    media.stop_recording(rec.id).expect("stop");
    far.swap(&silence());
    let ev = drain(&mut events);
    assert!(ev.iter().any(|e| matches!(
        e,
        MediaEvent::RecordingFinished {
            reason: RecordingEnd::Stopped,
            ..
        }
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_plays_music_and_pauses_the_flow() {
    let dir = tempfile::tempdir().expect("dir");
    let ctx = context(dir.path());
    let (media, _events, mut far) = session(&ctx).await;
    let prompt: Vec<i16> = (0..F * 20)
        .map(|i| i16::try_from(i % 3000).expect("small") + 1)
        .collect();
    let _pb = media
        .play(Layer::Flow, Source::Samples(prompt.clone().into()))
        .expect("play");
    let first: Vec<i16> = (0..5).flat_map(|_| far.swap(&silence())).collect();
    assert_eq!(&first[..], &prompt[..5 * F]);
    media.hold(true).await.expect("hold");
    let held: Vec<i16> = (0..40).flat_map(|_| far.swap(&silence())).collect();
    assert!(power(&held) > 1e4, "music on hold is audible");
    let moh = flowgate::media::generated_music_on_hold(8000);
    assert_eq!(
        &held[..],
        &moh[..held.len()],
        "the generated music (no file configured)"
    );
    media.hold(false).await.expect("unhold");
    let rest: Vec<i16> = (0..15).flat_map(|_| far.swap(&silence())).collect();
    assert_eq!(
        &rest[..],
        &prompt[5 * F..],
        "the prompt resumes where hold paused it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn music_on_hold_file_is_used_when_configured() {
    let dir = tempfile::tempdir().expect("dir");
    let moh_file = dir.path().join("moh.wav");
    let music = sine(523.0, 300, 3000.0, 16000);
    write_wav(&moh_file, &music, 16000).expect("moh");
    let ctx = MediaContext::new(flowgate::media::MediaSettings {
        music_on_hold: Some(moh_file),
        ..settings(dir.path())
    })
    .expect("ctx");
    let (media, _events, mut far) = session(&ctx).await;
    media.hold(true).await.expect("hold");
    let held: Vec<i16> = (0..30).flat_map(|_| far.swap(&silence())).collect();
    assert!(tone_power(&held, 523.0, 8000.0) > 100.0 * tone_power(&held, 1000.0, 8000.0));
    assert!(power(&held) > 1e6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mute_silences_each_direction() {
    let dir = tempfile::tempdir().expect("dir");
    let ctx = context(dir.path());
    let (media, _events, mut far) = session(&ctx).await;
    let _echo = media.echo(Duration::from_secs(10)).expect("echo");
    let voice = vec![1234i16; F];
    assert_eq!(far.swap(&voice), voice);
    media.mute(MuteDirection::In, true).expect("mute");
    assert_eq!(
        power(&far.swap(&voice)),
        0.0,
        "the gateway hears nothing from the caller"
    );
    media.mute(MuteDirection::In, false).expect("unmute");
    assert_eq!(far.swap(&voice), voice);
    media.mute(MuteDirection::Out, true).expect("mute");
    assert_eq!(power(&far.swap(&voice)), 0.0, "the caller hears nothing");
    media.mute(MuteDirection::Both, false).expect("unmute");
    assert_eq!(far.swap(&voice), voice);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_is_mixed_over_the_ducked_flow() {
    let dir = tempfile::tempdir().expect("dir");
    let ctx = context(dir.path());
    let (media, mut events, mut far) = session(&ctx).await;
    let _flow = media
        .play(
            Layer::Flow,
            Source::Samples(sine(500.0, 2000, 8000.0, 8000).into()),
        )
        .expect("flow");
    let alone: Vec<i16> = (0..10).flat_map(|_| far.swap(&silence())).collect();
    let mut talk = media
        .play(
            Layer::Interrupt,
            Source::Samples(sine(1500.0, 400, 8000.0, 8000).into()),
        )
        .expect("talk");
    let mixed: Vec<i16> = (0..20).flat_map(|_| far.swap(&silence())).collect();
    let after: Vec<i16> = (0..10).flat_map(|_| far.swap(&silence())).collect();
    assert!(talk.wait().await.is_finished());
    let (p_alone, p_mixed, p_after) = (
        tone_power(&alone, 500.0, 8000.0),
        tone_power(&mixed, 500.0, 8000.0),
        tone_power(&after, 500.0, 8000.0),
    );
    assert!(
        (p_mixed / p_alone - 0.25).abs() < 0.02,
        "flow 6 dB down: {}",
        p_mixed / p_alone
    );
    assert!((p_after / p_alone - 1.0).abs() < 0.02);
    assert!(
        tone_power(&mixed, 1500.0, 8000.0) > 0.9 * p_alone,
        "the interrupt at full level"
    );
    assert!(drain(&mut events).iter().any(|e| matches!(
        e,
        MediaEvent::PlaybackStarted {
            layer: Layer::Interrupt,
            ..
        }
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sources_fail_clearly() {
    let dir = tempfile::tempdir().expect("dir");
    let ctx = context(dir.path());
    let (media, mut events, mut far) = session(&ctx).await;
    let text = |t: &str| Source::Tts {
        text: t.into(),
        language: None,
        voice: None,
    };
    assert!(matches!(
        media.play(Layer::Flow, text("  ")),
        Err(MediaError::InvalidOption { field: "text", .. })
    ));
    assert!(matches!(
        media.play(Layer::Flow, Source::Urls(vec![])),
        Err(MediaError::InvalidOption { .. })
    ));
    let bad_digits = Source::Digits {
        digits: "12x".into(),
        tone: Duration::from_millis(100),
        gap: Duration::ZERO,
    };
    assert!(media.play(Layer::Flow, bad_digits).is_err());
    for (url, want) in [
        ("/etc/passwd", "outside the sound directories"),
        ("nosuch.wav", "No such file"),
        ("gopher://x/y", "unsupported"),
    ] {
        let mut pb = media
            .play(Layer::Flow, Source::Urls(vec![url.into()]))
            .expect("queued");
        // Preparation runs in the background; keep frames flowing meanwhile.
        let (_, seen) = exchange_until(
            &mut far,
            &mut events,
            F,
            500_000,
            |e| matches!(e, MediaEvent::PlaybackFinished { id, .. } if *id == pb.id()),
        );
        let PlaybackOutcome::Failed(e) = pb.wait().await else {
            panic!("{url}: {seen:?}")
        };
        assert!(e.to_string().contains(want), "{url}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_handles_stop_and_detached_ones_play_on() {
    let dir = tempfile::tempdir().expect("dir");
    let ctx = context(dir.path());
    let (media, mut events, mut far) = session(&ctx).await;
    let long = || Source::Samples(sine(700.0, 3000, 8000.0, 8000).into());
    let pb = media.play(Layer::Flow, long()).expect("play");
    assert!(power(&far.swap(&silence())) > 1e6);
    drop(pb);
    assert_eq!(
        power(&far.swap(&silence())),
        0.0,
        "dropping the handle stopped it"
    );
    assert!(drain(&mut events).iter().any(|e| matches!(
        e,
        MediaEvent::PlaybackFinished {
            outcome: PlaybackOutcome::Stopped(StopCause::HandleDropped),
            ..
        }
    )));
    media.play(Layer::Flow, long()).expect("play").detach();
    for _ in 0..10 {
        assert!(
            power(&far.swap(&silence())) > 1e6,
            "a detached playback goes on"
        );
    }
    media.stop_layer(Layer::Flow).expect("stop layer");
    assert_eq!(power(&far.swap(&silence())), 0.0);
    assert!(drain(&mut events).iter().any(|e| matches!(
        e,
        MediaEvent::PlaybackFinished {
            outcome: PlaybackOutcome::Stopped(StopCause::LayerCleared),
            ..
        }
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digits_send_plays_dtmf_the_detector_recognises() {
    let dir = tempfile::tempdir().expect("dir");
    let ctx = context(dir.path());
    let (media, _events, mut far) = session(&ctx).await;
    let mut pb = media
        .play(
            Layer::Flow,
            Source::Digits {
                digits: "42#".into(),
                tone: Duration::from_millis(100),
                gap: Duration::from_millis(100),
            },
        )
        .expect("digits");
    let out: Vec<i16> = (0..30).flat_map(|_| far.swap(&silence())).collect();
    assert!(pb.wait().await.is_finished());
    let mut det =
        flowgate_dsp::DtmfDetector::new(flowgate_dsp::DtmfConfig::new(8000)).expect("det");
    let got: String = det
        .process(&out)
        .iter()
        .filter(|e| e.is_start())
        .map(|e| e.digit().to_char())
        .collect();
    assert_eq!(got, "42#");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_finalizes_recordings_and_ends_with_closed() {
    let dir = tempfile::tempdir().expect("dir");
    let ctx = context(dir.path());
    let (media, mut events, mut far) = session(&ctx).await;
    let rec = media
        .start_recording(RecordOptions::default())
        .await
        .expect("record");
    let mut pb = media
        .play(
            Layer::Flow,
            Source::Samples(sine(700.0, 3000, 8000.0, 8000).into()),
        )
        .expect("play");
    for _ in 0..25 {
        far.swap(&vec![2000; F]);
    }
    media.close();
    // The session may still read one frame before it sees the close.
    let _ = far.send(&silence());
    media.closed().await;
    assert!(media.is_closed());
    assert!(matches!(
        pb.wait().await,
        PlaybackOutcome::Stopped(StopCause::Closed)
    ));
    let ev = drain(&mut events);
    assert!(matches!(ev.last(), Some(MediaEvent::Closed)));
    let Some(MediaEvent::RecordingFinished {
        duration,
        reason: RecordingEnd::Hangup,
        path,
        ..
    }) = ev
        .iter()
        .find(|e| matches!(e, MediaEvent::RecordingFinished { .. }))
        .cloned()
    else {
        panic!("recording finalized on hang-up: {ev:?}")
    };
    assert_eq!(duration, Duration::from_millis(500));
    assert_eq!(
        read_audio_file(&path, 8000).expect("valid WAV"),
        vec![2000; 25 * F]
    );
    assert!(matches!(
        media.play(Layer::Flow, Source::Beep),
        Err(MediaError::SessionClosed)
    ));
    assert_eq!(rec.path, path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_failure_is_reported_and_ends_the_session() {
    let dir = tempfile::tempdir().expect("dir");
    let ctx = context(dir.path());
    let (media, mut events, far) = session(&ctx).await;
    drop(far);
    let e = wait_event(&mut events, |e| matches!(e, MediaEvent::PortFailed { .. })).await;
    assert!(e_to_string(&e).contains("channel"));
    wait_event(&mut events, |e| matches!(e, MediaEvent::Closed)).await;
    media.closed().await;
}

/// A SIP hang-up: on a BYE the user agent closes the call's RTP stream, which the session
/// reads as the end of the call's audio (`PortError::Closed`), not as a port failure: the
/// recording is finalized as on a hang-up and the events end with `Closed` without
/// `PortFailed` (which the runtime logs as a warning and reports as the voice port failing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_far_end_closing_the_rtp_stream_ends_the_session_without_a_failure() {
    use flowgate_sip::rtp::{JitterConfig, PortRange, RtpStream, SessionParams};
    use flowgate_sip::sdp::{Codec, Direction};
    let dir = tempfile::tempdir().expect("dir");
    let ctx = context(dir.path());
    let params = SessionParams {
        codec: Codec::Pcma,
        payload_type: 8,
        telephone_event: Some(101),
        remote: None,
        direction: Direction::SendRecv,
        symmetric: true,
    };
    let (stream, control) = RtpStream::bind(
        &PortRange::new(35_000, 35_999),
        "127.0.0.1".parse().expect("ip"),
        params,
        JitterConfig::default(),
    )
    .expect("bind");
    let (media, mut events) = CallMedia::open_port(Box::new(stream), &ctx, "sip-call")
        .await
        .expect("open");
    let rec = media
        .start_recording(RecordOptions::default())
        .await
        .expect("record");
    // The BYE.
    control.close();
    media.closed().await;
    let ev = drain(&mut events);
    assert!(
        !ev.iter()
            .any(|e| matches!(e, MediaEvent::PortFailed { .. })),
        "a hang-up is not a port failure: {ev:?}"
    );
    assert!(
        ev.iter().any(|e| matches!(
            e,
            MediaEvent::RecordingFinished { id, reason: RecordingEnd::Hangup, .. } if *id == rec.id
        )),
        "{ev:?}"
    );
    assert!(matches!(ev.last(), Some(MediaEvent::Closed)), "{ev:?}");
}

fn e_to_string(e: &MediaEvent) -> String {
    match e {
        MediaEvent::PortFailed { error } => error.to_string(),
        other => format!("{other:?}"),
    }
}

#[cfg(all(feature = "flac", feature = "ogg-vorbis"))]
fn sox(args: &[&str]) {
    let st = std::process::Command::new("sox")
        .args(args)
        .status()
        .expect("sox (Debian package `sox`) runs");
    assert!(st.success(), "sox {args:?}");
}

// FLAC and OGG/Vorbis are features of the daemon (on by default).
#[cfg(all(feature = "flac", feature = "ogg-vorbis"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_files_of_several_formats_play_in_sequence() {
    let dir = tempfile::tempdir().expect("dir");
    let ctx = context(dir.path());
    let sounds = dir.path().join("sounds");
    let s = |n: &str| sounds.join(n).to_str().expect("utf8").to_owned();
    // 44.1 kHz stereo WAV, 16 kHz FLAC, 22.05 kHz OGG/Vorbis: 300 ms each.
    sox(&[
        "-n",
        "-r",
        "44100",
        "-c",
        "2",
        "-b",
        "16",
        &s("a.wav"),
        "synth",
        "0.3",
        "sine",
        "400",
        "vol",
        "0.3",
    ]);
    sox(&[
        "-n",
        "-r",
        "16000",
        "-c",
        "1",
        &s("b.flac"),
        "synth",
        "0.3",
        "sine",
        "800",
        "vol",
        "0.3",
    ]);
    sox(&[
        "-n",
        "-r",
        "22050",
        "-c",
        "1",
        &s("c.ogg"),
        "synth",
        "0.3",
        "sine",
        "1200",
        "vol",
        "0.3",
    ]);
    for (name, f) in [("a.wav", 400.0), ("b.flac", 800.0), ("c.ogg", 1200.0)] {
        let samples = read_audio_file(&sounds.join(name), 8000).expect(name);
        assert!(
            (2350..=2500).contains(&samples.len()),
            "{name}: {}",
            samples.len()
        );
        assert!(
            tone_power(&samples, f, 8000.0) > 0.8 * power(&samples),
            "{name}"
        );
    }
    let (media, mut events, mut far) = session(&ctx).await;
    let file_url = format!("file://{}", s("c.ogg"));
    let mut pb = media
        .play(
            Layer::Flow,
            Source::Urls(vec!["a.wav".into(), s("b.flac"), file_url]),
        )
        .expect("play");
    let (outs, _) = exchange_until(&mut far, &mut events, F, 500_000, |e| {
        matches!(e, MediaEvent::PlaybackStarted { .. })
    });
    let mut out: Vec<i16> = outs.last().cloned().unwrap_or_default();
    for _ in 0..50 {
        out.extend(far.swap(&silence()));
    }
    assert!(pb.wait().await.is_finished());
    let seg = |i: usize| &out[i * 2400 + 200..(i + 1) * 2400 - 200];
    for (i, f) in [400.0, 800.0, 1200.0].into_iter().enumerate() {
        assert!(
            tone_power(seg(i), f, 8000.0) > 0.8 * power(seg(i)),
            "segment {i} is {f} Hz"
        );
    }
}

/// A one-file HTTP server: `GET /p.wav` answers `body`, anything else 404.
async fn serve(body: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            h.fetch_add(1, Ordering::SeqCst);
            let ok = req.starts_with(b"GET /p.wav");
            let head = if ok {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_owned()
            };
            let _ = sock.write_all(head.as_bytes()).await;
            if ok {
                let _ = sock.write_all(&body).await;
            }
            let _ = sock.shutdown().await;
        }
    });
    (format!("http://{addr}"), hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_urls_are_fetched_once_and_cached() {
    let dir = tempfile::tempdir().expect("dir");
    let ctx = context(dir.path());
    let prompt = sine(900.0, 200, 8000.0, 8000);
    let (base, hits) = serve(flowgate::media::wav_bytes(&prompt, 8000).expect("wav")).await;
    let url = format!("{base}/p.wav");
    assert_eq!(
        &ctx.load_url(&url, 8000).await.expect("first")[..],
        &prompt[..]
    );
    assert_eq!(
        &ctx.load_url(&url, 8000).await.expect("second")[..],
        &prompt[..]
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the second play came from the cache"
    );
    assert_eq!(
        (ctx.stats().downloads(), ctx.stats().download_cache_hits()),
        (1, 1)
    );
    let missing = ctx
        .load_url(&format!("{base}/nope.wav"), 8000)
        .await
        .expect_err("404");
    assert!(missing.to_string().contains("404"), "{missing}");

    let small = MediaContext::new(flowgate::media::MediaSettings {
        max_fetch_bytes: 100,
        ..settings(dir.path())
    })
    .expect("ctx");
    let err = small
        .load_url(&format!("{base}/p.wav?x"), 8000)
        .await
        .expect_err("too large");
    assert!(
        matches!(err, MediaError::FetchTooLarge { limit: 100, .. }),
        "{err}"
    );
}

/// A port without a clock of its own (what an RTP stream is) runs on the context's shared
/// frame loop, not on a thread of its own: the same frame (prompt, in-band digits, echo,
/// close) on that loop's 20 ms clock. The peer queues its frames ahead; the port takes one
/// per tick, so the audio the session hears is exact whatever the loop's timing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_without_a_clock_runs_on_the_shared_frame_loop() {
    let dir = tempfile::tempdir().expect("dir");
    let ctx = context(dir.path());
    let (port, far) = ChannelPort::shared_pair(8000).expect("pair");
    let (media, mut events) = CallMedia::open_port(Box::new(port), &ctx, "shared-call")
        .await
        .expect("open");
    assert_eq!(ctx.shared_loop_sessions(), 1);
    let prompt = sine(1000.0, 500, 8000.0, 8000);
    let mut pb = media
        .play(Layer::Flow, Source::Samples(prompt.clone().into()))
        .expect("play");
    // The caller presses 5 (in band), queued ahead of time.
    for f in frames(&dtmf("5", 100, 60), F) {
        far.send(&f).expect("send");
    }
    let mut out = Vec::new();
    while out.len() < prompt.len() + 10 * F {
        out.extend(far.recv(WAIT).expect("a frame every tick"));
    }
    // Frames before the `play` command came are silent; the prompt is then played whole.
    let start = F * out
        .chunks(F)
        .position(|f| f.iter().any(|&s| s != 0))
        .expect("the prompt is heard");
    assert_eq!(&out[start..start + prompt.len()], &prompt[..]);
    assert!(pb.wait().await.is_finished());
    let e = wait_event(&mut events, |e| matches!(e, MediaEvent::Dtmf { .. })).await;
    assert!(
        matches!(
            e,
            MediaEvent::Dtmf {
                digit: '5',
                source: DtmfSource::InBand
            }
        ),
        "{e:?}"
    );
    // Echo: what the caller says comes back.
    let _echo = media.echo(Duration::from_secs(5)).expect("echo");
    let voice = sine(700.0, 20, 6000.0, 8000);
    let mut heard = false;
    for _ in 0..200 {
        far.send(&voice).expect("send");
        if far.recv(WAIT).expect("frame") == voice {
            heard = true;
            break;
        }
    }
    assert!(heard, "the echo came back");
    media.close();
    wait_event(&mut events, |e| matches!(e, MediaEvent::Closed)).await;
    media.closed().await;
}

/// A shared-loop session whose port fails ends alone, with `PortFailed` then `Closed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_port_on_the_shared_loop_ends_only_its_session() {
    let dir = tempfile::tempdir().expect("dir");
    let ctx = context(dir.path());
    let (port_a, far_a) = ChannelPort::shared_pair(8000).expect("pair");
    let (port_b, far_b) = ChannelPort::shared_pair(8000).expect("pair");
    let (a, mut events_a) = CallMedia::open_port(Box::new(port_a), &ctx, "a")
        .await
        .expect("open");
    let (b, _events_b) = CallMedia::open_port(Box::new(port_b), &ctx, "b")
        .await
        .expect("open");
    drop(far_a);
    wait_event(&mut events_a, |e| {
        matches!(e, MediaEvent::PortFailed { .. })
    })
    .await;
    wait_event(&mut events_a, |e| matches!(e, MediaEvent::Closed)).await;
    a.closed().await;
    // b goes on: it still answers frames and plays.
    let mut pb = b
        .play(
            Layer::Flow,
            Source::Samples(sine(500.0, 60, 8000.0, 8000).into()),
        )
        .expect("play");
    for _ in 0..10 {
        far_b.recv(WAIT).expect("b still ticks");
    }
    assert!(pb.wait().await.is_finished());
    assert!(!b.is_closed());
}
