//! Helpers shared by the user agent's integration tests: configurations on loopback,
//! waiting for events (never sleeping), free ports, and a media thread per call.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::field_reassign_with_default,
    reason = "test helpers"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use flowgate_sip::config::{SipConfig, TrunkConfig};
use flowgate_sip::rtp::{FrameStatus, RtpStream};
use flowgate_sip::transaction::Transport;
use flowgate_sip::ua::{UaEvent, UserAgent};
use tokio::sync::mpsc::UnboundedReceiver;

/// A configuration on `ip`, port 0, UDP only, with an RTP range of its own.
pub fn config(ip: &str, rtp_base: u16) -> SipConfig {
    let mut c = SipConfig::default();
    c.listen = format!("{ip}:0").parse().unwrap();
    c.transports = vec![Transport::Udp];
    c.rtp.port_min = rtp_base;
    c.rtp.port_max = rtp_base + 400;
    c.security.rate_per_sec = 1000;
    c.security.rate_burst = 1000;
    c
}

/// A trunk that trusts everything from `cidr`.
pub fn trusted(name: &str, proxy: SocketAddr, cidr: &str) -> TrunkConfig {
    TrunkConfig {
        trusted_sources: vec![cidr.into()],
        ..TrunkConfig::new(name, proxy)
    }
}

/// Waits for the next event (at most 20 s: a hung test fails instead of hanging CI).
pub async fn next(ev: &mut UnboundedReceiver<UaEvent>) -> UaEvent {
    tokio::time::timeout(Duration::from_secs(20), ev.recv())
        .await
        .expect("no event within 20 s")
        .expect("event stream closed")
}

/// Waits for the first event that `pick` accepts, skipping others.
pub async fn wait_for<T>(
    ev: &mut UnboundedReceiver<UaEvent>,
    mut pick: impl FnMut(&UaEvent) -> Option<T>,
) -> T {
    loop {
        let e = next(ev).await;
        if let Some(t) = pick(&e) {
            return t;
        }
    }
}

/// Counters of a media thread.
#[derive(Debug, Default)]
pub struct MediaCounters {
    /// Frames read with audio from the far end.
    pub received: AtomicU64,
    /// Frames read in total.
    pub frames: AtomicU64,
    /// Largest absolute sample seen.
    pub peak: AtomicU64,
}

/// Runs a media thread on `stream`: writes `tone` (or silence) every frame and reads,
/// until the call ends (the stream is closed).
pub fn media_thread(
    mut stream: RtpStream,
    tone_amplitude: i16,
) -> (Arc<MediaCounters>, std::thread::JoinHandle<()>) {
    let counters = Arc::new(MediaCounters::default());
    let c = counters.clone();
    let h = std::thread::spawn(move || {
        let mut frame = [0i16; 160];
        let mut phase = 0u32;
        loop {
            let out: Vec<i16> = (0..160)
                .map(|_| {
                    phase = (phase + 1) % 8;
                    // 1 kHz square-ish tone at 8 kHz.
                    if phase < 4 {
                        tone_amplitude
                    } else {
                        -tone_amplitude
                    }
                })
                .collect();
            if stream.write_frame(&out).is_err() {
                break;
            }
            match stream.read_frame(&mut frame) {
                Ok(st) => {
                    c.frames.fetch_add(1, Ordering::Relaxed);
                    if st == FrameStatus::Received {
                        c.received.fetch_add(1, Ordering::Relaxed);
                        let p = frame
                            .iter()
                            .map(|s| u64::from(s.unsigned_abs()))
                            .max()
                            .unwrap_or(0);
                        c.peak.fetch_max(p, Ordering::Relaxed);
                    }
                }
                Err(_) => break,
            }
        }
    });
    (counters, h)
}

/// `from` calls `to` at `uri` as `caller` and `to` answers: the call's id at each end,
/// once both saw the answer.
pub async fn answered_call(
    (from, from_events): (&UserAgent, &mut UnboundedReceiver<UaEvent>),
    (to, to_events): (&UserAgent, &mut UnboundedReceiver<UaEvent>),
    uri: String,
    caller: flowgate_sip::ua::Party,
) -> (uuid::Uuid, uuid::Uuid) {
    let id = uuid::Uuid::now_v7();
    from.call(id, flowgate_sip::ua::Destination::Uri(uri), caller)
        .await
        .unwrap();
    let theirs = wait_for(to_events, |e| match e {
        UaEvent::Incoming { call, replaces, .. } => {
            assert_eq!(*replaces, None, "a plain call replaces nothing");
            Some(*call)
        }
        _ => None,
    })
    .await;
    to.answer(theirs).await.unwrap();
    for (events, call_id) in [(from_events, id), (to_events, theirs)] {
        wait_for(events, |e| {
            matches!(e, UaEvent::Answered { call } if *call == call_id).then_some(())
        })
        .await;
    }
    (id, theirs)
}

/// Starts a user agent.
pub async fn start(cfg: SipConfig) -> (UserAgent, UnboundedReceiver<UaEvent>) {
    trace();
    UserAgent::start(cfg).await.expect("user agent starts")
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn trace() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
