//! Benchmarks of the SIP stack: message parse/serialize, transaction throughput, the
//! jitter buffer and an RTP session per call-second (CPU per concurrent G.711 call, with
//! and without loopback sockets), memory per call, and call setups per second between
//! two user agents in one process on loopback (both on the same two cores).
//!
//! Run: `cargo bench -p flowgate-sip --bench sip`. Figures are in the README.

// The counting allocator below needs `unsafe impl GlobalAlloc`; it only forwards to the
// system allocator and counts, to measure the heap held per call.
#![allow(
    unsafe_code,
    missing_docs,
    clippy::unwrap_used,
    reason = "benchmark harness"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowgate_sip::config::{SipConfig, TrunkConfig};
use flowgate_sip::message::{Limits, Message, Response, parse};
use flowgate_sip::rtp::{
    FrameStatus, JitterBuffer, JitterConfig, PortRange, RtpSession, RtpStream, SessionParams,
};
use flowgate_sip::sdp::{Codec, Direction};
use flowgate_sip::transaction::{Incoming, Peer, Timers, TransactionLayer, Transport};
use flowgate_sip::ua::{Destination, Party, UaEvent, UserAgent};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size().cast_signed(), Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size().cast_signed(), Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n.cast_signed() - l.size().cast_signed(), Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const SDP: &str = "v=0\r\no=pbx 2890844526 2890844526 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\na=ptime:20\r\n";

/// A realistic INVITE from a PBX through one proxy, with SDP.
fn invite() -> String {
    format!(
        "INVITE sip:+15551234567@192.0.2.10:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK74bf9;rport\r\n\
Via: SIP/2.0/UDP 192.0.2.30:5060;branch=z9hG4bK88aa1;received=192.0.2.31\r\n\
Max-Forwards: 69\r\n\
From: \"Alice Example\" <sip:alice@pbx.example.com>;tag=9fxced76sl\r\n\
To: <sip:+15551234567@gw.example.com>\r\n\
Call-ID: 3848276298220188511@pbx.example.com\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@192.0.2.20:5060>\r\n\
Record-Route: <sip:192.0.2.30;lr>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY, INFO\r\n\
Supported: replaces, timer\r\n\
User-Agent: Bench PBX 1.0\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    )
}

fn messages(c: &mut Criterion) {
    let invite = invite();
    let mut g = c.benchmark_group("message");
    g.throughput(Throughput::Elements(1));
    let limits = Limits::default();
    g.bench_function("parse INVITE with SDP", |b| {
        b.iter(|| parse(black_box(invite.as_bytes()), &limits).unwrap())
    });
    let Ok(Message::Request(req)) = parse(invite.as_bytes(), &limits) else {
        panic!()
    };
    g.bench_function("serialize INVITE with SDP", |b| {
        b.iter(|| black_box(&req).to_bytes())
    });
    let mut ok = Response::to_request(&req, 200, "OK");
    ok.set_to_tag("abc");
    g.bench_function("build + serialize 200 OK", |b| {
        b.iter(|| {
            let mut r = Response::to_request(black_box(&req), 200, "OK");
            r.set_to_tag("abc");
            r.to_bytes()
        })
    });
    g.finish();
}

fn transactions(c: &mut Criterion) {
    let invite = invite();
    let mut g = c.benchmark_group("transaction");
    g.throughput(Throughput::Elements(1));
    let limits = Limits::default();
    let Ok(Message::Request(req)) = parse(invite.as_bytes(), &limits) else {
        panic!()
    };
    let peer = Peer {
        addr: "192.0.2.20:5060".parse().unwrap(),
        transport: Transport::Udp,
    };
    // A server INVITE transaction: new request, 100, 200, and its end (timer L).
    g.bench_function("INVITE server: request, 100, 200, expiry", |b| {
        let mut layer = TransactionLayer::new(Timers::default());
        let t0 = Instant::now();
        let mut n = 0u64;
        b.iter(|| {
            n += 1;
            let mut r = req.clone();
            r.headers.set(
                "Via",
                format!("SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK{n}"),
            );
            let now = t0 + Duration::from_micros(n);
            let Incoming::New(id) = layer.on_request(&r, peer, now) else {
                panic!()
            };
            let mut trying = Response::to_request(&r, 100, "Trying");
            layer.respond(id, &trying, now);
            trying.status = 200;
            trying.set_to_tag("t");
            layer.respond(id, &trying, now);
            layer.poll(now + Duration::from_secs(33))
        });
    });
    g.finish();
}

fn g711_frame(k: u32) -> Vec<i16> {
    (0..160)
        .map(|i| (((i + k) % 16) as i16 - 8) * 1000)
        .collect()
}

fn media(c: &mut Criterion) {
    let mut g = c.benchmark_group("rtp");
    // Jitter buffer alone: one call-second (50 packets in, 50 frames out), jittered.
    g.throughput(Throughput::Elements(1));
    g.bench_function("jitter buffer, per call-second", |b| {
        let frame = [100i16; 160];
        let t0 = Instant::now();
        b.iter(|| {
            let mut jb = JitterBuffer::new(JitterConfig::default());
            let mut out = [0i16; 160];
            for k in 0..50u32 {
                let jitter = u64::from((k * 7) % 3) * 10;
                jb.push(
                    k * 160,
                    &frame,
                    t0 + Duration::from_millis(u64::from(k) * 20 + jitter),
                );
                black_box(jb.pop(&mut out));
            }
        });
    });
    let params = |remote: SocketAddr| SessionParams {
        codec: Codec::Pcmu,
        payload_type: 0,
        telephone_event: Some(101),
        remote: Some(remote),
        direction: Direction::SendRecv,
        symmetric: true,
    };
    // RTP session, sans-IO: encode 50 frames, decode 50 packets, jitter buffer in and out.
    g.bench_function(
        "G.711 session (encode+decode+jitter), per call-second",
        |b| {
            let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
            let mut a = RtpSession::new(params(peer), JitterConfig::default());
            let mut z = RtpSession::new(params(peer), JitterConfig::default());
            let frames: Vec<Vec<i16>> = (0..50).map(g711_frame).collect();
            let t0 = Instant::now();
            let mut sec = 0u64;
            b.iter(|| {
                sec += 1;
                let mut out = [0i16; 160];
                for (k, f) in frames.iter().enumerate() {
                    let pkt = a.push(f).map(|(p, _)| p.to_vec()).unwrap();
                    let now = t0 + Duration::from_millis(sec * 1000 + k as u64 * 20);
                    z.on_packet(&pkt, peer, now);
                    black_box(z.pull(&mut out));
                }
            });
        },
    );
    // The same with the packets going through loopback UDP sockets (the syscalls a call's
    // media thread makes: one send and one receive per frame per direction).
    g.bench_function(
        "G.711 call over loopback sockets, both directions, per call-second",
        |b| {
            let sa = UdpSocket::bind("127.0.0.1:0").unwrap();
            let sb = UdpSocket::bind("127.0.0.1:0").unwrap();
            let (aa, ab) = (sa.local_addr().unwrap(), sb.local_addr().unwrap());
            let mut a = RtpSession::new(params(ab), JitterConfig::default());
            let mut z = RtpSession::new(params(aa), JitterConfig::default());
            let frames: Vec<Vec<i16>> = (0..50).map(g711_frame).collect();
            let mut buf = [0u8; 1500];
            let t0 = Instant::now();
            let mut sec = 0u64;
            b.iter(|| {
                sec += 1;
                let mut out = [0i16; 160];
                for (k, f) in frames.iter().enumerate() {
                    let now = t0 + Duration::from_millis(sec * 1000 + k as u64 * 20);
                    let (p, d) = a.push(f).unwrap();
                    sa.send_to(p, d).unwrap();
                    let (n, from) = sb.recv_from(&mut buf).unwrap();
                    z.on_packet(&buf[..n], from, now);
                    black_box(z.pull(&mut out));
                    let (p, d) = z.push(f).unwrap();
                    sb.send_to(p, d).unwrap();
                    let (n, from) = sa.recv_from(&mut buf).unwrap();
                    a.on_packet(&buf[..n], from, now);
                    black_box(a.pull(&mut out));
                }
            });
        },
    );
    g.finish();

    // Memory per call, printed (not timed): the heap an RtpStream holds right after it is
    // bound (sockets, session, buffers), plus what a session's jitter buffer and counters
    // grow to over 10 s of jittered audio, plus their inline sizes.
    let range = PortRange::new(36_000, 36_999);
    let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let before = LIVE.load(Ordering::Relaxed);
    let (s, ctl) = RtpStream::bind(
        &range,
        "127.0.0.1".parse().unwrap(),
        params(peer),
        JitterConfig::default(),
    )
    .unwrap();
    let stream_heap = LIVE.load(Ordering::Relaxed) - before;
    let mut feeder = RtpSession::new(params(peer), JitterConfig::default());
    let packets: Vec<Vec<u8>> = (0..500u32)
        .map(|k| {
            feeder
                .push(&g711_frame(k))
                .map(|(p, _)| p.to_vec())
                .unwrap()
        })
        .collect();
    let before = LIVE.load(Ordering::Relaxed);
    let mut session = RtpSession::new(params(peer), JitterConfig::default());
    let fresh = LIVE.load(Ordering::Relaxed) - before;
    let t0 = Instant::now();
    let mut out = [0i16; 160];
    let mut peak = 0;
    for (k, pkt) in packets.iter().enumerate() {
        let arrival = t0 + Duration::from_millis(k as u64 * 20 + (k as u64 % 5) * 12);
        session.on_packet(pkt, peer, arrival);
        let _ = session.pull(&mut out) == FrameStatus::Received;
        peak = peak.max(LIVE.load(Ordering::Relaxed) - before);
    }
    println!(
        "rtp/memory per call: RtpStream {} B inline + {} B heap when bound; a session grows from {} B to at most {} B heap over 10 s of jittered audio; RtpControl {} B",
        std::mem::size_of::<RtpStream>(),
        stream_heap,
        fresh,
        peak,
        std::mem::size_of_val(&ctl),
    );
    drop(s);
}

fn trusted_config(ip: &str, rtp: u16) -> SipConfig {
    let mut c = SipConfig {
        listen: format!("{ip}:0").parse().unwrap(),
        transports: vec![Transport::Udp],
        ..SipConfig::default()
    };
    c.rtp.port_min = rtp;
    c.rtp.port_max = rtp + 9_000;
    c.trunks.push(TrunkConfig {
        trusted_sources: vec!["127.0.0.0/8".into()],
        ..TrunkConfig::new("lan", "127.0.0.1:5060".parse().unwrap())
    });
    c
}

fn call_setups(c: &mut Criterion) {
    // Two user agents in one process on the same 2 cores: A places `batch` calls at once,
    // B answers each on Incoming, A hangs each up on Answered; the time until every
    // call ended is one sample. Each call is INVITE/100/200/ACK/BYE/200 with SDP and two
    // RTP sockets per side.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (a, mut ea, b, mut eb) = rt.block_on(async {
        let (a, ea) = UserAgent::start(trusted_config("127.0.0.1", 20_000))
            .await
            .unwrap();
        let (b, eb) = UserAgent::start(trusted_config("127.0.0.1", 40_000))
            .await
            .unwrap();
        (a, ea, b, eb)
    });
    let to = Destination::Uri(format!("sip:100@{}", b.udp_addr()));
    let b2 = b.clone();
    rt.spawn(async move {
        while let Some(e) = eb.recv().await {
            if let UaEvent::Incoming { call, .. } = e {
                let _ = b2.answer(call).await;
            }
        }
    });
    let batch = 200u64;
    let mut g = c.benchmark_group("ua");
    g.throughput(Throughput::Elements(batch));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function(
        "call setups+teardowns, 200 concurrent, UAC and UAS in one process",
        |bch| {
            bch.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..batch {
                            a.call(uuid::Uuid::now_v7(), to.clone(), Party::default())
                                .await
                                .unwrap();
                        }
                        let mut ended = 0;
                        while ended < batch {
                            match ea.recv().await.unwrap() {
                                UaEvent::Answered { call } => {
                                    let _ =
                                        a.hangup(call, flowgate_sip::cause::Cause::Normal).await;
                                }
                                UaEvent::Ended { cause, .. } => {
                                    assert_eq!(
                                        cause.cause,
                                        flowgate_sip::cause::Cause::Normal,
                                        "a call failed: {cause:?}"
                                    );
                                    ended += 1;
                                }
                                _ => {}
                            }
                        }
                        start.elapsed()
                    });
                }
                total
            });
        },
    );
    g.finish();
    rt.block_on(async {
        a.shutdown().await;
        b.shutdown().await;
    });
}

fn sipp_to_ua(c: &mut Criterion) {
    // SIPp (Debian sip-tester) places calls with its built-in `uac` scenario (INVITE with
    // SDP, 200, ACK, BYE) as fast as it can, up to 500 at once, against one user agent
    // that answers each on Incoming: the gateway's side of a call setup alone. Skipped
    // when sipp is not installed.
    if std::process::Command::new("sipp")
        .arg("-v")
        .output()
        .is_err()
    {
        println!("ua/sipp: sipp not installed, skipped");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (ua, mut ev) = rt.block_on(async {
        UserAgent::start(trusted_config("127.0.0.1", 20_000))
            .await
            .unwrap()
    });
    let port = ua.udp_addr().port();
    let answering = ua.clone();
    rt.spawn(async move {
        while let Some(e) = ev.recv().await {
            if let UaEvent::Incoming { call, .. } = e {
                let _ = answering.answer(call).await;
            }
        }
    });
    let calls = 2000u64;
    let mut g = c.benchmark_group("ua");
    g.throughput(Throughput::Elements(calls));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(30));
    g.bench_function("sipp uac -> user agent, 2000 calls, <= 500 at once", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let sport = UdpSocket::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port();
                let start = Instant::now();
                let out = std::process::Command::new("sipp")
                    .args([
                        "-sn",
                        "uac",
                        &format!("127.0.0.1:{port}"),
                        "-i",
                        "127.0.0.1",
                        "-p",
                        &sport.to_string(),
                    ])
                    .args([
                        "-m",
                        &calls.to_string(),
                        "-r",
                        "5000",
                        "-l",
                        "500",
                        "-nostdin",
                        "-timeout",
                        "60s",
                    ])
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .unwrap();
                total += start.elapsed();
                assert!(out.success(), "sipp reported failed calls");
            }
            total
        });
    });
    g.finish();
    rt.block_on(ua.shutdown());
}

criterion_group!(
    benches,
    messages,
    transactions,
    media,
    call_setups,
    sipp_to_ua
);
criterion_main!(benches);
