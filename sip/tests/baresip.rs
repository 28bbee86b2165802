//! Real phone: baresip (Debian package, installed by `scripts/deps.sh test`) registers
//! to the user agent's registrar with digest authentication, calls out through it
//! (arriving as extension 201 after a 401 challenge) with audio from a generated WAV,
//! and is called back through its binding (auto-answer). Started by the test on free
//! loopback ports with a configuration written to a temporary directory.

#![allow(
    clippy::unwrap_used,
    clippy::field_reassign_with_default,
    reason = "tests"
)]

mod common;

use std::io::Write;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use flowgate_sip::cause::Cause;
use flowgate_sip::config::ExtensionConfig;
use flowgate_sip::ua::{AuthIdentity, Destination, Party, UaEvent};
use tokio::process::{Child, Command};
use uuid::Uuid;

/// 8 kHz mono 16-bit WAV of a 1 kHz tone, `secs` long.
fn tone_wav(path: &std::path::Path, secs: u32) {
    let n = 8000 * secs;
    let mut f = std::fs::File::create(path).unwrap();
    let data_len = n * 2;
    f.write_all(b"RIFF").unwrap();
    f.write_all(&(36 + data_len).to_le_bytes()).unwrap();
    f.write_all(b"WAVEfmt ").unwrap();
    f.write_all(&16u32.to_le_bytes()).unwrap();
    f.write_all(&1u16.to_le_bytes()).unwrap(); // PCM
    f.write_all(&1u16.to_le_bytes()).unwrap(); // mono
    f.write_all(&8000u32.to_le_bytes()).unwrap();
    f.write_all(&16000u32.to_le_bytes()).unwrap();
    f.write_all(&2u16.to_le_bytes()).unwrap();
    f.write_all(&16u16.to_le_bytes()).unwrap();
    f.write_all(b"data").unwrap();
    f.write_all(&data_len.to_le_bytes()).unwrap();
    let pattern: [i16; 8] = [0, 7071, 10000, 7071, 0, -7071, -10000, -7071];
    for i in 0..n {
        f.write_all(&pattern[(i % 8) as usize].to_le_bytes())
            .unwrap();
    }
}

fn baresip(dir: &std::path::Path, ua_port: u16, dial: &str) -> Child {
    let sip_port = free_udp_port();
    let rtp = 50_000 + (sip_port % 500) * 2;
    let wav = dir.join("tone.wav");
    tone_wav(&wav, 20);
    let config = format!(
        "poll_method epoll\nsip_listen 127.0.0.1:{sip_port}\naudio_player aubridge,flowgate\naudio_source aufile,{}\naudio_alert aubridge,flowgate\nrtp_ports {rtp}-{}\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\nmodule aubridge.so\nmodule_app account.so\nmodule_app menu.so\n",
        wav.display(),
        rtp + 40
    );
    std::fs::write(dir.join("config"), config).unwrap();
    std::fs::write(
        dir.join("accounts"),
        format!("<sip:201@127.0.0.1:{ua_port}>;auth_pass=phone-secret;regint=60;answermode=auto;audio_codecs=PCMU\n"),
    )
    .unwrap();
    std::fs::write(dir.join("contacts"), "").unwrap();
    Command::new("baresip")
        .args(["-f", &dir.display().to_string(), "-t", "25", "-e", dial])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("baresip runs (Debian package baresip; scripts/deps.sh test installs it)")
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
    );

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
