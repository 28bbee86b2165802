//! Text to speech with the real espeak-ng: synthesis, the disk cache (a hit
//! runs no process), voice choice, errors, and `talk` in a session.

mod media_support;

use flowgate::media::{CallMedia, ChannelPort, Layer, MediaError, MediaEvent, Source};
use media_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthesis_is_cached_on_disk() {
    let dir = tempfile::tempdir().expect("dir");
    let ctx = context(dir.path());
    let text = "Welcome to Flowgate. Press one for sales.";
    let first = ctx
        .synthesize(text, Some("en-US"), None, 8000)
        .await
        .expect("synthesize");
    // About 2.5 s of speech, clearly audible, in the telephone band.
    assert!(
        first.len() > 8000 && first.len() < 8000 * 6,
        "{} samples",
        first.len()
    );
    assert!(power(&first) > 1e5);
    assert_eq!(ctx.stats().tts_runs(), 1);

    let again = ctx
        .synthesize(text, Some("en-US"), None, 8000)
        .await
        .expect("cached");
    assert_eq!(again, first, "the cached prompt is the same audio");
    assert_eq!(ctx.stats().tts_runs(), 1, "no second espeak-ng run");
    assert_eq!(ctx.stats().tts_cache_hits(), 1);
    let cached: Vec<_> = std::fs::read_dir(dir.path().join("cache/tts"))
        .expect("cache dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0].ends_with(".wav") && !cached[0].starts_with(".tmp"));

    // Another rate, language or voice is another entry.
    let wide = ctx
        .synthesize(text, Some("en-US"), None, 16000)
        .await
        .expect("16 kHz");
    assert!(
        wide.len().abs_diff(2 * first.len()) < 4,
        "{} vs {}",
        wide.len(),
        first.len()
    );
    ctx.synthesize(text, Some("en-GB"), None, 8000)
        .await
        .expect("en-GB");
    ctx.synthesize(text, Some("en-US"), Some("en-us+f3"), 8000)
        .await
        .expect("variant");
    assert_eq!(ctx.stats().tts_runs(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn languages_fall_back_and_unknown_ones_fail() {
    let dir = tempfile::tempdir().expect("dir");
    let ctx = context(dir.path());
    assert_eq!(
        ctx.tts_voice(Some("en-US"), None).await.expect("en-US"),
        "gmw/en-US"
    );
    assert_eq!(
        ctx.tts_voice(Some("de-DE"), None).await.expect("de-DE"),
        "gmw/de"
    );
    assert_eq!(
        ctx.tts_voice(Some("zh-CN"), None).await.expect("zh"),
        "sit/cmn"
    );
    assert_eq!(
        ctx.tts_voice(Some("pt-BR"), None).await.expect("pt-BR"),
        "roa/pt-BR"
    );
    assert_eq!(
        ctx.tts_voice(None, None).await.expect("default"),
        "gmw/en-US"
    );
    assert_eq!(
        ctx.tts_voice(Some("fr-FR"), Some("en-US-Wavenet-D"))
            .await
            .expect("cloud id"),
        "roa/fr"
    );
    let err = ctx
        .synthesize("qapla", Some("tlh-KL"), None, 8000)
        .await
        .expect_err("Klingon");
    assert!(
        matches!(err, MediaError::UnknownLanguage { ref language } if language == "tlh-KL"),
        "{err}"
    );
    assert_eq!(ctx.stats().tts_runs(), 0);
    let long = "a".repeat(6000);
    assert!(matches!(
        ctx.synthesize(&long, None, None, 8000).await,
        Err(MediaError::InvalidOption { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssml_and_a_missing_engine() {
    let dir = tempfile::tempdir().expect("dir");
    let ctx = context(dir.path());
    let plain = ctx
        .synthesize("Hello world", Some("en-US"), None, 8000)
        .await
        .expect("plain");
    let ssml = ctx
        .synthesize(
            r#"<speak>Hello <break time="800ms"/> world</speak>"#,
            Some("en-US"),
            None,
            8000,
        )
        .await
        .expect("ssml");
    assert!(
        ssml.len() > plain.len() + 8000 * 6 / 10,
        "the break is honoured: {} vs {}",
        ssml.len(),
        plain.len()
    );

    let broken = flowgate::media::MediaContext::new(flowgate::media::MediaSettings {
        tts_command: "/nonexistent/espeak-ng".into(),
        ..settings(dir.path())
    })
    .expect("ctx");
    let err = broken
        .synthesize("hi", None, None, 8000)
        .await
        .expect_err("no engine");
    assert!(matches!(err, MediaError::TtsUnavailable { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/espeak-ng"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talk_in_a_session_is_heard_and_a_failure_is_its_outcome() {
    let dir = tempfile::tempdir().expect("dir");
    let ctx = context(dir.path());
    let (port, mut far) = ChannelPort::pair(8000, None).expect("pair");
    let (media, mut events) = CallMedia::open_port(Box::new(port), &ctx, "tts-call")
        .await
        .expect("open");
    let talk = |text: &str, language: &str| Source::Tts {
        text: text.into(),
        language: Some(language.into()),
        voice: None,
    };
    let mut pb = media
        .play(Layer::Flow, talk("Your call is important to us.", "en-US"))
        .expect("talk");
    let (outs, _) = exchange_until(&mut far, &mut events, F, 2_000_000, |e| {
        matches!(e, MediaEvent::PlaybackStarted { .. })
    });
    let mut heard = outs.last().cloned().expect("frame");
    for _ in 0..50 {
        heard.extend(far.swap(&vec![0; F]));
    }
    assert!(power(&heard) > 1e5, "speech is heard");
    pb.stop();
    // The session sees the stop at its next frame, whichever that is: keep the lockstep
    // going until it reports the playback over (one swap could race the stop).
    exchange_until(
        &mut far,
        &mut events,
        F,
        2_000_000,
        |e| matches!(e, MediaEvent::PlaybackFinished { id, .. } if *id == pb.id()),
    );
    assert!(matches!(
        pb.wait().await,
        flowgate::media::PlaybackOutcome::Stopped(_)
    ));

    let mut bad = media
        .play(Layer::Flow, talk("hello", "xx-YY"))
        .expect("queued");
    exchange_until(
        &mut far,
        &mut events,
        F,
        2_000_000,
        |e| matches!(e, MediaEvent::PlaybackFinished { id, .. } if *id == bad.id()),
    );
    let flowgate::media::PlaybackOutcome::Failed(e) = bad.wait().await else {
        panic!("should fail")
    };
    assert!(matches!(*e, MediaError::UnknownLanguage { .. }), "{e}");
}
