//! `external_media_start` / `external_media_stop` on a simulated GSM call: the test is
//! the LAN host, a UDP socket on 127.0.0.1 that receives the call's RTP and speaks back.

use std::time::Duration;

use flowgate_dsp::g711::Law;
use flowgate_sip::rtp::RtpPacket;
use flowgate_tests::{Gateway, WAIT};
use serde_json::{Value, json};
use tokio::net::UdpSocket;

/// How long a stream that has ended must stay quiet for the test to call it ended. Only
/// used to observe that nothing more comes; nothing waits on it to happen.
const QUIET: Duration = Duration::from_secs(1);

fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt()
}

/// Half a second of deterministic noise at about −20 dBFS: no period, so finding it in
/// the stream at one offset only proves the audio arrived in order and intact.
pub(crate) fn noise() -> Vec<i16> {
    let mut x: u32 = 0x1234_5678;
    (0..4000)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            i16::try_from((x >> 16) & 0x1fff).unwrap() - 0x1000
        })
        .collect()
}

/// Whether `samples` hold the 1 kHz tone somewhere: a loud 100 ms window with about
/// 200 zero crossings.
pub(crate) fn has_1k_tone(samples: &[i16]) -> bool {
    samples.chunks_exact(800).any(|w| {
        let crossings = w.windows(2).filter(|p| (p[0] < 0) != (p[1] < 0)).count();
        rms(w) > 3000.0 && (180..=220).contains(&crossings)
    })
}

/// One second of a 1 kHz tone at about −12 dBFS.
#[expect(
    clippy::cast_possible_truncation,
    reason = "the amplitude is bounded to ±8000"
)]
fn tone_1k() -> Vec<i16> {
    (0..8000)
        .map(|i| {
            (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * f64::from(i) / 8000.0).sin()) as i16
        })
        .collect()
}

/// One RTP packet as the test received it.
struct Rtp {
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
    marker: bool,
    payload: Vec<u8>,
}

/// The next RTP packet, and where it came from.
async fn next_packet(sock: &UdpSocket, limit: Duration) -> Option<(Rtp, std::net::SocketAddr)> {
    let mut buf = [0u8; 2048];
    let (n, from) = tokio::time::timeout(limit, sock.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    let p = RtpPacket::parse(&buf[..n]).expect("the gateway sent a valid RTP packet");
    Some((
        Rtp {
            pt: p.payload_type,
            seq: p.seq,
            ts: p.timestamp,
            ssrc: p.ssrc,
            marker: p.marker,
            payload: p.payload.to_vec(),
        },
        from,
    ))
}

/// Waits until the flow is on its `nth` (0-based) `digits_receive`.
async fn wait_digits(gw: &Gateway, af: &str, nth: usize) -> Value {
    let api = gw.api();
    api.wait_for("the flow to wait for digits", || async {
        let view = api.get(&format!("/v1.0/activeflows/{af}")).await;
        let seen = view["executed_actions"]
            .as_array()?
            .iter()
            .filter(|e| e["type"] == "digits_receive")
            .count();
        (view["current_action"]["type"] == "digits_receive" && seen == nth + 1).then_some(view)
    })
    .await
}

/// Reads whatever is queued without waiting, then asserts nothing more comes for [`QUIET`].
/// Done on the std socket: its non-blocking reads are real syscalls, whereas tokio's
/// `try_recv` trusts the reactor's readiness, which may lag a datagram already queued.
async fn assert_stream_ended(sock: UdpSocket, what: &'static str) -> UdpSocket {
    let sock = sock.into_std().unwrap();
    let sock = tokio::task::spawn_blocking(move || {
        let mut buf = [0u8; 2048];
        sock.set_nonblocking(true).unwrap();
        while sock.recv_from(&mut buf).is_ok() {}
        sock.set_nonblocking(false).unwrap();
        sock.set_read_timeout(Some(QUIET)).unwrap();
        assert!(
            sock.recv_from(&mut buf).is_err(),
            "RTP still arrives after {what}"
        );
        sock.set_nonblocking(true).unwrap();
        sock
    })
    .await
    .unwrap();
    UdpSocket::from_std(sock).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_streams_to_a_lan_host_hears_it_and_stops() {
    let gw = Gateway::start().await;
    let api = gw.api();
    let sim = gw.daemon().sims().remove(0);
    let host = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = host.local_addr().unwrap().to_string();
    let flow = api
        .create_flow(json!({"name": "external-media", "detail": "", "actions": [
            {"type": "answer"},
            {"type": "external_media_start", "option": {
                "external_host": addr, "encapsulation": "rtp", "transport": "udp",
                "connection_type": "client", "format": "ulaw",
                "direction_listen": "in", "direction_speak": "out"}},
            // Something the gateway cannot do fails the action, by name, and the flow goes on.
            {"type": "external_media_start", "option": {
                "external_host": addr, "encapsulation": "audiosocket", "direction_listen": "in"}},
            // Digits accumulate in voipbin.call.digits: each wait is for one more.
            {"type": "digits_receive", "option": {"duration": 60000, "length": 1}},
            {"type": "external_media_stop"},
            {"type": "digits_receive", "option": {"duration": 60000, "length": 2}},
            {"type": "external_media_start", "option": {
                "external_host": addr, "direction_listen": "both"}},
            {"type": "digits_receive", "option": {"duration": 60000, "length": 3}},
            {"type": "hangup"}]}))
        .await;
    api.bind(Some(flow), None).await;
    api.post("/v1.0/gateway/sim/calls", json!({"from": "+15551112222"}))
        .await;
    let af = api
        .wait_for("the call's activeflow", || async {
            api.calls().await.into_iter().next()?["activeflow_id"]
                .as_str()
                .map(str::to_owned)
        })
        .await;
    let view = wait_digits(&gw, &af, 0).await;
    let refused = view["executed_actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "external_media_start" && e["outcome"] == "failed")
        .unwrap_or_else(|| panic!("the audiosocket start did not fail: {view}"));
    assert!(
        refused["reason"]
            .as_str()
            .unwrap()
            .contains("encapsulation \"audiosocket\""),
        "{refused}"
    );

    // The caller speaks: their audio arrives as µ-law RTP, in order, intact.
    let (first, gateway) = next_packet(&host, WAIT).await.expect("no RTP arrived");
    assert_eq!(first.pt, 0, "PCMU");
    let caller = noise();
    let expected: Vec<u8> = caller.iter().map(|&s| Law::Ulaw.encode(s)).collect();
    sim.queue_audio(&caller).unwrap();
    let mut stream = first.payload.clone();
    let mut last = first;
    let mut packets = 1;
    tokio::time::timeout(WAIT, async {
        while !stream.windows(expected.len()).any(|w| w == expected) {
            let (p, from) = next_packet(&host, WAIT).await.expect("the stream stopped");
            assert_eq!(from, gateway, "one source");
            assert_eq!(p.pt, 0);
            assert_eq!(p.ssrc, last.ssrc, "one SSRC");
            assert_eq!(
                p.seq,
                last.seq.wrapping_add(1),
                "consecutive sequence numbers"
            );
            assert_eq!(p.ts, last.ts.wrapping_add(160), "20 ms of 8 kHz per packet");
            assert_eq!(p.payload.len(), 160);
            assert!(!p.marker, "the marker is on the first packet only");
            stream.extend_from_slice(&p.payload);
            last = p;
            packets += 1;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the caller's audio never arrived ({packets} packets)"));

    // The host speaks (direction_speak "out"): a 1 kHz tone reaches the caller.
    sim.take_recorded_audio();
    let tone: Vec<u8> = tone_1k().into_iter().map(|s| Law::Ulaw.encode(s)).collect();
    let mut pace = tokio::time::interval(Duration::from_millis(20));
    let mut heard = false;
    for (k, chunk) in tone.chunks(160).enumerate() {
        pace.tick().await;
        let k = u16::try_from(k).unwrap();
        let mut pkt = Vec::new();
        RtpPacket {
            marker: k == 0,
            payload_type: 0,
            seq: 1000 + k,
            timestamp: u32::from(k) * 160,
            ssrc: 0x00c0_ffee,
            payload: chunk,
        }
        .write(&mut pkt);
        host.send_to(&pkt, gateway).await.unwrap();
        if has_1k_tone(&sim.recorded_audio()) {
            heard = true;
            break;
        }
    }
    if !heard {
        let n = sim.recorded_audio().len();
        sim.wait_for_recorded(n + 1600, WAIT).await.unwrap();
        heard = has_1k_tone(&sim.recorded_audio());
    }
    assert!(heard, "the host's audio never reached the caller");

    // A digit moves the flow past external_media_stop: nothing more is sent.
    api.post("/v1.0/gateway/sim/dtmf", json!({"digits": "1"}))
        .await;
    wait_digits(&gw, &af, 1).await;
    let host = assert_stream_ended(host, "external_media_stop").await;

    // Started again, the stream ends with the call.
    api.post("/v1.0/gateway/sim/dtmf", json!({"digits": "2"}))
        .await;
    wait_digits(&gw, &af, 2).await;
    let (again, _) = next_packet(&host, WAIT)
        .await
        .expect("the second stream sent nothing");
    assert_eq!(again.pt, 0);
    sim.remote_hangup().unwrap();
    api.wait_ended(&af).await;
    tokio::time::timeout(WAIT, async {
        let mut buf = [0u8; 2048];
        while tokio::time::timeout(QUIET, host.recv_from(&mut buf))
            .await
            .is_ok()
        {}
    })
    .await
    .expect("RTP still arrives after the caller hung up");
    gw.stop().await;
}
