//! Media over the simulated modem's serial-PCM voice port, in real time: the
//! real driver answers a simulated call, the session opens the voice pty from
//! the modem configuration, and the simulator (which writes one frame of caller
//! audio per 20 ms and records what the gateway sends) plays the caller.
//!
//! The test plays the runtime's part: it forwards the modem's DTMF URCs to the
//! session, as the daemon does.

mod media_support;

use std::time::Duration;

use flowgate::media::{
    CallMedia, EndOfKey, Layer, MediaEvent, MediaEvents, RecordOptions, RecordingEnd, Source,
};
use flowgate_board::modem::{AudioTransport, Modem, ModemConfig, ModemEvent, ModemHandle};
use flowgate_board::simulator::{SimulatedModel, Simulator, SimulatorConfig, SimulatorControl};
use flowgate_line::LegAudio;
use media_support::*;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

struct Call {
    _sim: Simulator,
    ctl: SimulatorControl,
    _modem: ModemHandle,
    modem_events: broadcast::Receiver<ModemEvent>,
    cancel: CancellationToken,
    transport: AudioTransport,
    _dir: tempfile::TempDir,
}

impl Drop for Call {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn modem_event<T>(
    rx: &mut broadcast::Receiver<ModemEvent>,
    f: impl Fn(&ModemEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    if let Some(v) = f(&e) {
                        return v;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("modem events closed"),
            }
        }
    })
    .await
    .expect("modem event in time")
}

/// A simulated incoming call, answered, with its audio routed.
async fn answered_call() -> Call {
    let dir = tempfile::tempdir().expect("dir");
    let mut sc = SimulatorConfig::new(SimulatedModel::QuectelEc25);
    sc.link = Some(dir.path().join("at"));
    sc.pcm_link = Some(dir.path().join("pcm"));
    sc.ring_interval_ms = None;
    let sim = Simulator::start(sc).expect("sim");
    let ctl = sim.control();
    let mut mc = ModemConfig::new("m0", dir.path().join("at"));
    mc.audio = Some(AudioTransport::SerialPcm {
        device: dir.path().join("pcm"),
        sample_rate: 8000,
    });
    mc.call_poll_interval_ms = 300;
    let transport = mc.audio.clone().expect("audio");
    let cancel = CancellationToken::new();
    let modem = Modem::spawn(mc, sim.vendor_profile(), cancel.clone());
    let mut modem_events = modem.subscribe();
    modem.wait_ready(WAIT).await.expect("modem ready");
    ctl.incoming_call("+15550002222").expect("ring");
    let call = modem_event(&mut modem_events, |e| match e {
        ModemEvent::IncomingCall { call, .. } => Some(*call),
        _ => None,
    })
    .await;
    modem.answer(call).await.expect("answer");
    modem_event(&mut modem_events, |e| {
        matches!(e, ModemEvent::AudioReady { call: c } if *c == call).then_some(())
    })
    .await;
    ctl.wait_for_audio(true, WAIT)
        .await
        .expect("voice port active");
    Call {
        _sim: sim,
        ctl,
        _modem: modem,
        modem_events,
        cancel,
        transport,
        _dir: dir,
    }
}

/// Waits for a media event while forwarding the modem's DTMF URCs to the session.
async fn media_event(
    call: &mut Call,
    media: &CallMedia,
    events: &mut MediaEvents,
    seen: &mut Vec<MediaEvent>,
    pred: impl Fn(&MediaEvent) -> bool,
) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        tokio::select! {
            e = events.recv() => {
                let e = e.expect("session alive");
                let hit = pred(&e);
                seen.push(e);
                if hit {
                    return;
                }
            }
            m = call.modem_events.recv() => {
                if let Ok(ModemEvent::Dtmf { digit, .. }) = m {
                    media.signalled_dtmf(digit).expect("forward");
                }
            }
            () = tokio::time::sleep_until(deadline) => panic!("no matching media event; saw {seen:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ivr_audio_over_the_simulated_modem() {
    let mut call = answered_call().await;
    let data = tempfile::tempdir().expect("data");
    let ctx = context(data.path());
    let (media, mut events) =
        CallMedia::open(LegAudio::Device(call.transport.clone()), &ctx, "sim-call")
            .await
            .expect("open the voice port");
    let mut seen = Vec::new();

    // The caller hears the prompt, then silence.
    call.ctl.take_recorded_audio();
    let prompt = sine(1000.0, 600, 8000.0, 8000);
    let mut pb = media
        .play(Layer::Flow, Source::Samples(prompt.clone().into()))
        .expect("play");
    assert!(pb.wait().await.is_finished());
    let after_prompt = call.ctl.recorded_audio().len();
    call.ctl
        .wait_for_recorded(after_prompt + 8000 * 3 / 10, WAIT)
        .await
        .expect("more audio");
    let heard = call.ctl.recorded_audio();
    let start = heard
        .windows(64)
        .position(|w| w == &prompt[..64])
        .expect("the prompt reached the simulator");
    assert_eq!(
        &heard[start..start + prompt.len()],
        &prompt[..],
        "sample-exact over the tty"
    );
    assert!(heard[..start].iter().all(|&s| s == 0), "silence before it");
    assert!(
        heard[start + prompt.len()..].iter().all(|&s| s == 0),
        "silence after the prompt"
    );

    // The caller presses 2 in-band while the modem also reports it: one digit.
    call.ctl
        .queue_audio(&dtmf("2", 120, 0))
        .expect("caller audio");
    call.ctl.dtmf("2").expect("URC");
    media_event(&mut call, &media, &mut events, &mut seen, |e| {
        matches!(e, MediaEvent::Dtmf { .. })
    })
    .await;
    call.ctl.queue_audio(&vec![0; 4000]).expect("pause");
    call.ctl
        .queue_audio(&dtmf("3", 120, 0))
        .expect("caller audio");
    media_event(&mut call, &media, &mut events, &mut seen, |e| {
        matches!(e, MediaEvent::Dtmf { digit: '3', .. })
    })
    .await;
    assert_eq!(digits(&seen), "23", "the 2 counted once: {seen:?}");

    // A recording that ends on # and leaves the key out.
    let rec = media
        .start_recording(RecordOptions {
            end_of_key: EndOfKey::Digit('#'),
            ..RecordOptions::default()
        })
        .await
        .expect("record");
    call.ctl
        .queue_audio(&sine(440.0, 500, 6000.0, 8000))
        .expect("voice");
    call.ctl.queue_audio(&dtmf("#", 150, 300)).expect("#");
    media_event(&mut call, &media, &mut events, &mut seen, |e| {
        matches!(e, MediaEvent::RecordingFinished { .. })
    })
    .await;
    let Some(MediaEvent::RecordingFinished {
        id,
        path,
        duration,
        reason,
    }) = seen.last().cloned()
    else {
        unreachable!()
    };
    assert_eq!(id, rec.id);
    assert!(matches!(reason, RecordingEnd::Key('#')), "{reason:?}");
    assert!(duration >= Duration::from_millis(480), "{duration:?}");
    let recorded = flowgate::media::read_audio_file(&path, 8000).expect("wav");
    let tail = &recorded[recorded.len().saturating_sub(400)..];
    assert!(
        tone_power(tail, 941.0, 8000.0) < tone_power(tail, 440.0, 8000.0) / 100.0,
        "no # in the file"
    );

    media.close();
    media.closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_music_reaches_the_caller_and_barge_in_is_prompt() {
    let call = answered_call().await;
    let data = tempfile::tempdir().expect("data");
    let ctx = context(data.path());
    let (media, mut events) =
        CallMedia::open(LegAudio::Device(call.transport.clone()), &ctx, "sim-call")
            .await
            .expect("open");
    media.hold(true).await.expect("hold");
    let from = call.ctl.recorded_audio().len();
    call.ctl
        .wait_for_recorded(from + 8000, WAIT)
        .await
        .expect("audio");
    let heard = call.ctl.recorded_audio();
    assert!(power(&heard[from..]) > 1e4, "music on hold is heard");
    media.hold(false).await.expect("unhold");

    // Barge-in on the real-time path: stop as soon as the digit is reported;
    // the stop lands on the next frame the session writes.
    let pb = media
        .play(
            Layer::Flow,
            Source::Samples(sine(700.0, 10_000, 8000.0, 8000).into()),
        )
        .expect("play");
    call.ctl.queue_audio(&dtmf("5", 150, 0)).expect("digit");
    wait_event(&mut events, |e| {
        matches!(e, MediaEvent::Dtmf { digit: '5', .. })
    })
    .await;
    pb.stop();
    wait_event(&mut events, |e| {
        matches!(e, MediaEvent::PlaybackFinished { .. })
    })
    .await;
    let stopped_at = call.ctl.recorded_audio().len();
    call.ctl
        .wait_for_recorded(stopped_at + 1600, WAIT)
        .await
        .expect("audio");
    let heard = call.ctl.recorded_audio();
    // At most the frame in flight when the stop came carries the prompt.
    assert!(
        heard[stopped_at + F..].iter().all(|&s| s == 0),
        "silent after the stop"
    );
    media.close();
}
