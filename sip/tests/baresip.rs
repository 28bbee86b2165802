//! Real phone: baresip (Debian package, installed by `scripts/deps.sh test`) registers
//! to the user agent's registrar with digest authentication, calls out through it
//! (arriving as extension 201 after a 401 challenge) with audio from a generated WAV,
//! and is called back through its binding (auto-answer). Started by the test on free
//! loopback ports (`flowgate-test-peers`) with a configuration in a temporary directory.

#![allow(
    clippy::unwrap_used,
    clippy::field_reassign_with_default,
    reason = "tests"
)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use flowgate_sip::cause::Cause;
use flowgate_sip::config::ExtensionConfig;
use flowgate_sip::ua::{AuthIdentity, Destination, Party, UaEvent};
use flowgate_test_peers::baresip;
use tokio::process::Child;
use uuid::Uuid;

/// baresip registered as extension 201 to the user agent at `ua_port`, answering calls by
/// itself, playing 20 s of a 1 kHz tone into its calls, running `dial` at start.
async fn baresip(dir: &std::path::Path, ua_port: u16, dial: &str) -> Child {
    let period: [i16; 8] = [0, 7071, 10000, 7071, 0, -7071, -10000, -7071];
    let tone: Vec<i16> = period.iter().copied().cycle().take(8000 * 20).collect();
    let account = format!(
        "<sip:201@127.0.0.1:{ua_port}>;auth_pass=phone-secret;regint=60;answermode=auto;audio_codecs=PCMU"
    );
    baresip::start(dir, &account, &tone, dial, 25).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_registers_calls_through_and_is_called() {
    let mut cfg = config("127.0.0.1", 51_000);
    cfg.extensions.push(ExtensionConfig {
        user: "201".into(),
        password: "phone-secret".into(),
        display_name: "Desk".into(),
    });
    let (ua, mut ev) = start(cfg).await;
    let dir = tempfile::tempdir().unwrap();
    let port = ua.udp_addr().port();
    let mut phone = baresip(
        dir.path(),
        port,
        &format!("/dial sip:+15550009999@127.0.0.1:{port}"),
    )
    .await;

    let mut registered = false;
    let mut call = None;
    while !registered || call.is_none() {
        match next(&mut ev).await {
            UaEvent::Extension {
                user,
                registered: true,
            } => {
                assert_eq!(user, "201");
                registered = true;
            }
            UaEvent::Incoming {
                call: id,
                caller,
                callee,
                auth,
                ..
            } => {
                assert_eq!(auth, AuthIdentity::Extension("201".into()));
                assert_eq!(caller.number, "201");
                assert_eq!(callee.number, "+15550009999");
                call = Some(id);
            }
            _ => {}
        }
    }
    let id = call.unwrap();
    ua.answer(id).await.unwrap();
    wait_for(&mut ev, |e| {
        matches!(e, UaEvent::Answered { call } if *call == id).then_some(())
    })
    .await;
    let (counters, h) = media_thread(ua.take_audio(id).unwrap(), 3000);
    let heard = tokio::time::timeout(Duration::from_secs(10), async {
        while counters.received.load(Ordering::Relaxed) < 25 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(heard.is_ok(), "no audio from baresip");
    assert!(
        counters.peak.load(Ordering::Relaxed) > 5000,
        "baresip's tone is too quiet"
    );
    ua.hangup(id, Cause::Normal).await.unwrap();
    wait_for(&mut ev, |e| {
        matches!(e, UaEvent::Ended { call, .. } if *call == id).then_some(())
    })
    .await;
    h.join().unwrap();

    // Back through the binding: baresip auto-answers.
    let out = Uuid::now_v7();
    let from = Party {
        number: "+15557654321".into(),
        display_name: "Mobile".into(),
        uri: String::new(),
    };
    ua.call(out, Destination::Extension("201".into()), from)
        .await
        .unwrap();
    wait_for(&mut ev, |e| {
        matches!(e, UaEvent::Answered { call } if *call == out).then_some(())
    })
    .await;
    ua.hangup(out, Cause::Normal).await.unwrap();
    wait_for(&mut ev, |e| {
        matches!(e, UaEvent::Ended { call, .. } if *call == out).then_some(())
    })
    .await;
    ua.shutdown().await;
    let _ = phone.kill().await;
}
