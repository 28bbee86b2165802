//! Real registrar: the user agent registers to kamailio (Debian package, installed by
//! `scripts/deps.sh test`) with digest authentication on — SHA-256, qop=auth and nonce
//! counting (`tests/kamailio/kamailio.cfg`) — and a wrong password fails instead of
//! looping. Each test starts its own kamailio on a free loopback port.

#![allow(
    clippy::unwrap_used,
    clippy::field_reassign_with_default,
    reason = "tests"
)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use flowgate_sip::ua::{RegState, UaEvent};
use tokio::process::Child;

struct Kamailio {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Kamailio {
    /// Stops kamailio and its worker processes: SIGTERM to the main process makes it end
    /// its children (a SIGKILL, as `kill_on_drop` sends, would orphan them).
    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        }
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // A failing test still stops the whole process tree.
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
}

async fn kamailio() -> Kamailio {
    let cfg = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kamailio/kamailio.cfg");
    let dir = tempfile::tempdir().unwrap();
    let (port, child) = flowgate_test_peers::kamailio::start(&cfg, dir.path()).await;
    Kamailio {
        child,
        port,
        _dir: dir,
    }
}

fn trunk(port: u16, password: &str) -> flowgate_sip::config::TrunkConfig {
    let mut t = trusted(
        "kam",
        format!("127.0.0.1:{port}").parse().unwrap(),
        "127.0.0.1/32",
    );
    t.domain = Some("127.0.0.1".into());
    t.username = Some("gw".into());
    t.password = Some(password.into());
    t.register = true;
    t.expires_secs = 120;
    t.trusted_sources.clear();
    t
}

/// The first state after `Registering` (REGISTERs are retransmitted until kamailio is up).
async fn settled(ev: &mut tokio::sync::mpsc::UnboundedReceiver<UaEvent>) -> RegState {
    wait_for(ev, |e| match e {
        UaEvent::Registration { state, .. } if *state != RegState::Registering => {
            Some(state.clone())
        }
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_to_kamailio_with_sha256_digest() {
    let k = kamailio().await;
    let mut cfg = config("127.0.0.1", 49_000);
    cfg.trunks.push(trunk(k.port, "flowgate-secret"));
    let (ua, mut ev) = start(cfg).await;
    let st = settled(&mut ev).await;
    assert_eq!(st, RegState::Registered { expires_secs: 120 });
    let s = ua.status().await.unwrap();
    assert_eq!(
        s.trunks,
        vec![("kam".to_owned(), RegState::Registered { expires_secs: 120 })]
    );
    ua.shutdown().await;

    // Wrong password: one challenge answered, refused again → Failed, backing off.
    let mut cfg = config("127.0.0.1", 49_500);
    cfg.trunks.push(trunk(k.port, "not-the-secret"));
    let (ua, mut ev) = start(cfg).await;
    match settled(&mut ev).await {
        RegState::Failed {
            status: 401,
            retry_in_secs,
            ..
        } => assert_eq!(retry_in_secs, 30),
        other => panic!("expected a 401 failure, got {other:?}"),
    }
    // No REGISTER storm: nothing else happens within a second.
    let quiet = tokio::time::timeout(Duration::from_secs(1), ev.recv()).await;
    assert!(quiet.is_err(), "unexpected event {quiet:?}");
    ua.shutdown().await;
    k.stop().await;
}
