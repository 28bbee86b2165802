//! Real peers: SIPp (Debian `sip-tester`, installed by `scripts/deps.sh test`) calls the
//! user agent with audio and RFC 2833 digits from the pcaps it ships, and answers a call
//! the user agent places. Each test starts its own SIPp on free loopback ports.

#![allow(
    clippy::unwrap_used,
    clippy::field_reassign_with_default,
    reason = "tests"
)]

mod common;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use flowgate_sip::cause::Cause;
use flowgate_sip::ua::{Destination, DtmfSource, Party, UaEvent};
use flowgate_test_peers::sipp::{self, finished};
use uuid::Uuid;

fn scenario(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_calls_with_audio_and_rfc2833_digits() {
    let mut cfg = config("127.0.0.1", 47_000);
    cfg.trunks.push(trusted(
        "sipp",
        "127.0.0.1:5060".parse().unwrap(),
        "127.0.0.1/32",
    ));
    let (ua, mut ev) = start(cfg).await;
    let port = ua.udp_addr().port();
    let target = format!("127.0.0.1:{port}");
    let (_, child) = sipp::start(
        "127.0.0.1",
        &["-sf", &scenario("uac_dtmf.xml"), "-s", "100", &target],
    )
    .await;

    let mut digits = String::new();
    let mut media = None;
    loop {
        match next(&mut ev).await {
            UaEvent::Incoming {
                call,
                caller,
                callee,
                ..
            } => {
                assert_eq!(caller.number, "5551000");
                assert_eq!(caller.display_name, "SIPp Caller");
                assert_eq!(callee.number, "100");
                ua.progress(call, false).await.unwrap();
                ua.answer(call).await.unwrap();
            }
            UaEvent::AudioReady { call } => {
                media = Some(media_thread(ua.take_audio(call).unwrap(), 3000))
            }
            UaEvent::Dtmf { digit, source, .. } => {
                assert_eq!(source, DtmfSource::Rfc4733);
                digits.push(digit);
            }
            UaEvent::Ended { cause, .. } => {
                assert_eq!(cause.cause, Cause::Normal);
                break;
            }
            _ => {}
        }
    }
    finished(child).await;
    assert_eq!(digits, "1#");
    let (counters, h) = media.expect("audio was ready");
    h.join().unwrap();
    // ~1.2 s of g711a.pcap (30 ms packets) reached the jitter buffer's output.
    let got = counters.received.load(Ordering::Relaxed);
    assert!(got >= 25, "only {got} frames with audio");
    ua.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_agent_calls_a_sipp_uas() {
    let (ua, mut ev) = start(config("127.0.0.1", 48_000)).await;
    let (sipp_port, child) = sipp::start("127.0.0.1", &["-sf", &scenario("uas.xml")]).await;
    let id = Uuid::now_v7();
    let from = Party {
        number: "+15550001111".into(),
        display_name: "Gateway".into(),
        uri: String::new(),
    };
    ua.call(
        id,
        Destination::Uri(format!("sip:1000@127.0.0.1:{sipp_port}")),
        from,
    )
    .await
    .unwrap();
    wait_for(&mut ev, |e| {
        matches!(e, UaEvent::Answered { call } if *call == id).then_some(())
    })
    .await;
    let (counters, h) = media_thread(ua.take_audio(id).unwrap(), 3000);
    // SIPp plays g711a.pcap after the ACK: wait until half a second of it arrived.
    let arrived = tokio::time::timeout(Duration::from_secs(10), async {
        while counters.received.load(Ordering::Relaxed) < 25 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(arrived.is_ok(), "no audio from SIPp");
    ua.hangup(id, Cause::Normal).await.unwrap();
    wait_for(&mut ev, |e| {
        matches!(e, UaEvent::Ended { call, .. } if *call == id).then_some(())
    })
    .await;
    h.join().unwrap();
    finished(child).await;
    ua.shutdown().await;
}

/// REFERs a trusted peer sends that cannot be read — a `Replaces` missing a tag or its
/// Call-ID, two `Refer-To`, none — get `400` (SIPp's scenario passes only so) and never
/// reach the owner: a malformed attended transfer must not turn into a blind one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_refers_get_400_and_ask_nothing() {
    let mut cfg = config("127.0.0.1", 50_000);
    cfg.trunks.push(trusted(
        "sipp",
        "127.0.0.1:5060".parse().unwrap(),
        "127.0.0.1/32",
    ));
    let (ua, mut ev) = start(cfg).await;
    let port = ua.udp_addr().port();
    let target = format!("127.0.0.1:{port}");
    let (_, child) = sipp::start(
        "127.0.0.1",
        &[
            "-sf",
            &scenario("uac_refer_malformed.xml"),
            "-s",
            "100",
            &target,
        ],
    )
    .await;
    loop {
        match next(&mut ev).await {
            UaEvent::Incoming { call, .. } => ua.answer(call).await.unwrap(),
            UaEvent::TransferRequested { target, .. } => {
                panic!("a malformed REFER reached the owner: {target:?}")
            }
            UaEvent::Ended { cause, .. } => {
                assert_eq!(cause.cause, Cause::Normal);
                break;
            }
            _ => {}
        }
    }
    finished(child).await;
    ua.shutdown().await;
}
