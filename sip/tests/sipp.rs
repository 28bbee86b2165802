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
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use flowgate_sip::cause::Cause;
use flowgate_sip::ua::{Destination, DtmfSource, Party, UaEvent};
use tokio::process::{Child, Command};
use uuid::Uuid;

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

fn sipp(args: &[String]) -> Child {
    Command::new("sipp")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sipp runs (Debian package sip-tester; scripts/deps.sh test installs it)")
}

async fn finished(child: Child) {
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("sipp finishes within 30 s")
        .expect("sipp exit status");
    assert!(
        out.status.success(),
        "sipp failed: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_even_port() -> u16 {
    loop {
        let p = free_udp_port();
        if p.is_multiple_of(2) && p < 65_000 {
            return p;
        }
    }
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
    let child = sipp(&[
        "-sf".into(),
        scenario("uac_dtmf.xml").display().to_string(),
        "-s".into(),
        "100".into(),
        format!("127.0.0.1:{port}"),
        "-i".into(),
        "127.0.0.1".into(),
        "-p".into(),
        free_udp_port().to_string(),
        "-mp".into(),
        free_even_port().to_string(),
        "-m".into(),
        "1".into(),
        "-nostdin".into(),
        "-timeout".into(),
        "25s".into(),
    ]);

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
    let sipp_port = free_udp_port();
    let child = sipp(&[
        "-sf".into(),
        scenario("uas.xml").display().to_string(),
        "-i".into(),
        "127.0.0.1".into(),
        "-p".into(),
        sipp_port.to_string(),
        "-mp".into(),
        free_even_port().to_string(),
        "-m".into(),
        "1".into(),
        "-nostdin".into(),
        "-timeout".into(),
        "25s".into(),
    ]);
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
    let child = sipp(&[
        "-sf".into(),
        scenario("uac_refer_malformed.xml").display().to_string(),
        "-s".into(),
        "100".into(),
        format!("127.0.0.1:{port}"),
        "-i".into(),
        "127.0.0.1".into(),
        "-p".into(),
        free_udp_port().to_string(),
        "-mp".into(),
        free_even_port().to_string(),
        "-m".into(),
        "1".into(),
        "-nostdin".into(),
        "-timeout".into(),
        "25s".into(),
    ]);
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
