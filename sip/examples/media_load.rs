//! Concurrent calls with RTP both ways through a running gateway (issue 10's media
//! benchmark; `scripts/sip-media-bench.sh` starts the daemon and runs this).
//!
//! Places `--calls` SIP calls over UDP (INVITE with a PCMU offer, ACK, BYE at the end;
//! messages parsed with this crate's `message` and `sdp` modules) to a number whose flow
//! answers and echoes the caller (`echo`). On every established call it sends G.711 µ-law
//! RTP at ptime 20 from its own socket (RTCP port bound too), receives the gateway's RTP and
//! reports, over a measured window in which every call is up and echoing (the calls' packets
//! leave at ten points 2 ms apart of the 20 ms period, as callers not in step would send):
//!
//! * calls established / failed / ended by the gateway;
//! * packets sent and received, sequence gaps in the gateway's streams;
//! * frames lost: every payload carries its frame counter and send time in bytes that
//!   survive a µ-law decode and re-encode, and the rest of the payload is a pattern of the
//!   counter, so an echoed frame is recognised bit for bit; a frame sent in the window
//!   that never comes back (within a drain second after the window) is lost, one that comes
//!   back changed is altered, a gateway packet without a counter is filler (silence or
//!   concealment: the last echoed frame at half, quarter or eighth level counts as
//!   filler even when its head still reads as digits);
//! * added jitter: per packet, its arrival time (the kernel's `SO_TIMESTAMPNS` receive
//!   stamp, so this program's scheduling does not count) minus its RTP timestamp's time,
//!   relative to the smallest such transit of its call; p50/p99/max over all packets;
//! * echo delay: arrival of an echoed frame minus the send time written in it;
//! * the daemon's CPU (user+sys from `/proc/<pid>/stat` over the window), as % of a core
//!   and per call-second; its RSS before the first call and with every call up, and the
//!   difference per call; this program's own CPU and how late its send ticks ran; the
//!   load average.
//!
//! Exits 1 when a call failed or was dropped, a frame was lost or altered, or the gateway's
//! streams had gaps; 2 on bad arguments or I/O errors.
//!
//! ```text
//! media_load --sip 127.0.0.1:5060 --pid <daemon pid> [--number 1000] [--calls 1000]
//!            [--rate 200] [--duration 30] [--local-ip 127.0.0.1] [--rtp-base 40000]
//! ```

#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    reason = "RTP fields and the payload's 6-bit digits are packed by casts on purpose"
)]

use std::io::IoSliceMut;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use flowgate_dsp::g711::ulaw;
use flowgate_sip::message::{Limits, Message, NameAddr, Request, Response, param, parse};
use flowgate_sip::sdp::Sdp;
use nix::errno::Errno;
use nix::poll::PollTimeout;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
use nix::sys::time::TimeSpec;

const FRAME_MS: u64 = 20;
const PAYLOAD: usize = 160;
/// Counter digits then send-time digits at the head of the payload, 6 bits each.
const COUNTER_DIGITS: usize = 6;
const TIME_DIGITS: usize = 11;
const HEAD: usize = COUNTER_DIGITS + TIME_DIGITS;
/// How long after the window the gateway has to send the window's last frames back.
const DRAIN: Duration = Duration::from_secs(1);
/// SIP timer T1 and the transaction timeout (64·T1).
const T1: Duration = Duration::from_millis(500);
const TIMER_B: Duration = Duration::from_secs(32);
/// Points of the 20 ms period the calls' packets leave at (2 ms apart).
const SEND_SLOTS: usize = 10;
/// How often the receiving thread takes what the sockets hold.
const POLL: Duration = Duration::from_millis(4);

// The stages, shared with the media threads.
const SETUP: u8 = 0;
const MEASURE: u8 = 1;
const DRAINING: u8 = 2;
const DONE: u8 = 3;

struct Args {
    sip: SocketAddr,
    pid: u32,
    number: String,
    calls: usize,
    rate: f64,
    duration: Duration,
    local_ip: IpAddr,
    rtp_base: u16,
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "media_load: {msg}\nusage: media_load --sip ADDR:PORT --pid PID [--number N] [--calls N] \
         [--rate PER_S] [--duration S] [--local-ip IP] [--rtp-base PORT]"
    );
    std::process::exit(2)
}

fn value<T: std::str::FromStr>(flag: &str, v: &str) -> T
where
    T::Err: std::fmt::Display,
{
    v.parse()
        .unwrap_or_else(|e| usage(&format!("bad value for {flag}: {v}: {e}")))
}

fn parse_args() -> Args {
    let mut a = Args {
        sip: "127.0.0.1:5060"
            .parse()
            .unwrap_or_else(|_| usage("address")),
        pid: 0,
        number: "1000".into(),
        calls: 1000,
        rate: 200.0,
        duration: Duration::from_secs(30),
        local_ip: IpAddr::from([127, 0, 0, 1]),
        rtp_base: 40000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--sip" => a.sip = value(&flag, &v),
            "--pid" => a.pid = value(&flag, &v),
            "--number" => a.number.clone_from(&v),
            "--calls" => a.calls = value(&flag, &v),
            "--rate" => a.rate = value(&flag, &v),
            "--duration" => a.duration = Duration::from_secs(value(&flag, &v)),
            "--local-ip" => a.local_ip = value(&flag, &v),
            "--rtp-base" => a.rtp_base = value(&flag, &v),
            _ => usage(&format!("unknown argument {flag}")),
        }
    }
    if a.pid == 0 {
        usage("--pid is required (the daemon's CPU and memory are read from /proc)");
    }
    if a.calls == 0 || a.rate <= 0.0 {
        usage("--calls and --rate must be positive");
    }
    a
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("media_load: {what}: {e}");
    std::process::exit(2)
}

// ---------------------------------------------------------------------------------------
// The payload: 6-bit digits as bytes 0x80..=0xBF, which µ-law decodes to distinct values
// and encodes back to themselves (checked at start), so the gateway's decode, echo and
// re-encode return them unchanged.

fn digit(v: u64) -> u8 {
    0x80 | (v & 0x3F) as u8
}

fn filler(counter: u64, i: usize) -> u8 {
    digit(counter.wrapping_mul(31).wrapping_add(i as u64 * 7))
}

fn write_payload(out: &mut [u8], counter: u64, sent_ns: u64) {
    for (i, b) in out[..COUNTER_DIGITS].iter_mut().enumerate() {
        *b = digit(counter >> (6 * i));
    }
    for (i, b) in out[COUNTER_DIGITS..HEAD].iter_mut().enumerate() {
        *b = digit(sent_ns >> (6 * i));
    }
    for (i, b) in out.iter_mut().enumerate().skip(HEAD) {
        *b = filler(counter, i);
    }
}

enum Frame {
    /// Ours, bit for bit: counter and send time.
    Echo(u64, u64),
    /// Our head but a changed body.
    Altered,
    /// Not one of our frames (silence, concealment).
    Filler,
}

/// Whether `p` is the gateway's concealment of the frame `last` (the last one it echoed):
/// its jitter buffer covers a packet that is late by repeating the last frame at half,
/// quarter and eighth level. Such a frame can keep a head of valid digits (halving moves a
/// µ-law code down a segment, often still inside 0x80..=0xBF) and would read as altered;
/// it is filler — the late frame itself still comes back, so nothing is lost.
fn is_concealment(p: &[u8], last: &[u8]) -> bool {
    p.len() == last.len()
        && (1..=3).any(|shift| {
            p.iter()
                .zip(last)
                .all(|(&b, &l)| b == ulaw::encode(ulaw::decode(l) >> shift))
        })
}

fn read_payload(p: &[u8]) -> Frame {
    if p.len() != PAYLOAD || p[..HEAD].iter().any(|&b| b & 0xC0 != 0x80) {
        return Frame::Filler;
    }
    let value = |d: &[u8]| {
        d.iter()
            .enumerate()
            .fold(0u64, |v, (i, &b)| v | (u64::from(b & 0x3F) << (6 * i)))
    };
    let counter = value(&p[..COUNTER_DIGITS]);
    let sent = value(&p[COUNTER_DIGITS..HEAD]);
    if p.iter()
        .enumerate()
        .skip(HEAD)
        .any(|(i, &b)| b != filler(counter, i))
    {
        return Frame::Altered;
    }
    Frame::Echo(counter, sent)
}

fn check_ulaw_round_trip() {
    for b in 0x80..=0xBFu8 {
        assert_eq!(
            ulaw::encode(ulaw::decode(b)),
            b,
            "µ-law code {b:#x} does not survive decode + encode: the payload check would fail"
        );
    }
}

fn realtime_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

// ---------------------------------------------------------------------------------------
// /proc readings.

fn proc_cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| fail(&format!("/proc/{pid}/stat"), e));
    // Fields after the command name (which ends at the last ')'): state is field 3, utime
    // and stime fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    n(14) + n(15)
}

fn proc_rss_kb(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| fail(&format!("/proc/{pid}/status"), e));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn clock_ticks_per_s() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |v| v as f64)
}

// ---------------------------------------------------------------------------------------
// Signalling.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not placed yet.
    Idle,
    Inviting,
    Up,
    Byeing,
    /// BYE answered.
    Ended,
    Failed,
}

struct Call {
    state: State,
    /// The request in flight (INVITE or BYE), for retransmission.
    pending: Vec<u8>,
    first_sent: Instant,
    next_retx: Instant,
    interval: Duration,
    to_tag: String,
    /// Where in-dialog requests go (the 200's Contact).
    target: String,
    ack: Vec<u8>,
    /// The gateway hung up (BYE from it) while we did not.
    dropped: bool,
    failure: String,
}

struct Sip {
    sock: UdpSocket,
    server: SocketAddr,
    local: SocketAddr,
    number: String,
    tag: String,
}

impl Sip {
    fn call_id(&self, i: usize) -> String {
        format!("ml-{}-{i}@{}", self.tag, self.local.ip())
    }

    fn from(&self, i: usize) -> String {
        format!(
            "\"load {i}\" <sip:55{i:06}@{}>;tag=f{}-{i}",
            self.local, self.tag
        )
    }

    fn invite(&self, i: usize, rtp: SocketAddr) -> Vec<u8> {
        let ip = self.local.ip();
        let sdp = format!(
            "v=0\r\no=load {i} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n",
            rtp.port()
        );
        format!(
            "INVITE sip:{n}@{s} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK-{t}-{i}-inv;rport\r\n\
             From: {f}\r\nTo: <sip:{n}@{s}>\r\nCall-ID: {c}\r\nCSeq: 1 INVITE\r\n\
             Contact: <sip:55{i:06}@{l}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\n\
             Content-Length: {len}\r\n\r\n{sdp}",
            n = self.number,
            s = self.server,
            l = self.local,
            t = self.tag,
            f = self.from(i),
            c = self.call_id(i),
            len = sdp.len(),
        )
        .into_bytes()
    }

    /// ACK of a final response: for a 2xx a new transaction to the Contact, for an error
    /// the INVITE's own branch.
    fn ack(&self, i: usize, uri: &str, to_tag: &str, ok: bool) -> Vec<u8> {
        let branch = if ok { "ack" } else { "inv" };
        format!(
            "ACK {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK-{t}-{i}-{branch};rport\r\n\
             From: {f}\r\nTo: <sip:{n}@{s}>;tag={to_tag}\r\nCall-ID: {c}\r\nCSeq: 1 ACK\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            n = self.number,
            s = self.server,
            l = self.local,
            t = self.tag,
            f = self.from(i),
            c = self.call_id(i),
        )
        .into_bytes()
    }

    fn bye(&self, i: usize, uri: &str, to_tag: &str) -> Vec<u8> {
        format!(
            "BYE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bK-{t}-{i}-bye;rport\r\n\
             From: {f}\r\nTo: <sip:{n}@{s}>;tag={to_tag}\r\nCall-ID: {c}\r\nCSeq: 2 BYE\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            n = self.number,
            s = self.server,
            l = self.local,
            t = self.tag,
            f = self.from(i),
            c = self.call_id(i),
        )
        .into_bytes()
    }

    fn send(&self, bytes: &[u8]) {
        if let Err(e) = self.sock.send_to(bytes, self.server) {
            eprintln!("media_load: SIP send: {e}");
        }
    }

    fn index(&self, call_id: &str) -> Option<usize> {
        call_id
            .strip_prefix(&format!("ml-{}-", self.tag))?
            .split('@')
            .next()?
            .parse()
            .ok()
    }
}

/// Shared with the media threads: where each call's RTP goes once it is up.
struct Media {
    sockets: Vec<(UdpSocket, UdpSocket)>,
    dest: Vec<OnceLock<SocketAddr>>,
    stage: AtomicU8,
    /// Calls that have received their first echoed frame.
    echoing: AtomicUsize,
}

fn bind_pairs(ip: IpAddr, base: u16, n: usize) -> Vec<(UdpSocket, UdpSocket)> {
    let mut out = Vec::with_capacity(n);
    let mut port = base + base % 2;
    while out.len() < n {
        if port >= 65534 {
            fail(
                "RTP ports",
                format!("only {} pairs free from {base}", out.len()),
            );
        }
        if let (Ok(rtp), Ok(rtcp)) = (
            UdpSocket::bind(SocketAddr::new(ip, port)),
            UdpSocket::bind(SocketAddr::new(ip, port + 1)),
        ) {
            setsockopt(&rtp, sockopt::ReceiveTimestampns, &true)
                .unwrap_or_else(|e| fail("SO_TIMESTAMPNS", e));
            out.push((rtp, rtcp));
        }
        port += 2;
    }
    out
}

// ---------------------------------------------------------------------------------------
// Sending: one thread, every 20 ms by absolute deadlines, a packet on every call that is up.

#[derive(Default)]
struct SendReport {
    packets: u64,
    /// Per call: the first and one past the last counter sent in the window.
    window: Vec<(u64, u64)>,
    /// How late each tick started (µs).
    late_us: Vec<u32>,
}

fn sender(media: &Media) -> SendReport {
    let n = media.sockets.len();
    let mut next_counter = vec![0u64; n];
    let ssrc: Vec<u32> = (0..n).map(|i| 0x5EED_0000 ^ (i as u32)).collect();
    let mut report = SendReport {
        window: vec![(0, 0); n],
        ..SendReport::default()
    };
    let mut pkt = [0u8; 12 + PAYLOAD];
    // Real callers are not in step: the calls are spread over SEND_SLOTS points of the
    // 20 ms period (call i at slot i mod SEND_SLOTS) instead of leaving in one burst.
    let step = Duration::from_millis(FRAME_MS) / SEND_SLOTS as u32;
    let mut slot = 0usize;
    let mut next = Instant::now();
    let mut measuring = false;
    loop {
        let stage = media.stage.load(Ordering::Acquire);
        if stage >= DRAINING {
            for (w, &c) in report.window.iter_mut().zip(&next_counter) {
                w.1 = c;
            }
            return report;
        }
        if stage == MEASURE && !measuring {
            measuring = true;
            for (w, &c) in report.window.iter_mut().zip(&next_counter) {
                *w = (c, c);
            }
        }
        let late = Instant::now().saturating_duration_since(next);
        if measuring {
            report
                .late_us
                .push(u32::try_from(late.as_micros()).unwrap_or(u32::MAX));
        }
        for i in (slot..n).step_by(SEND_SLOTS) {
            let Some(dest) = media.dest[i].get() else {
                continue;
            };
            let c = next_counter[i];
            next_counter[i] += 1;
            pkt[0] = 0x80;
            pkt[1] = 0; // PCMU
            pkt[2..4].copy_from_slice(&(c as u16).to_be_bytes());
            pkt[4..8].copy_from_slice(&((c as u32).wrapping_mul(160)).to_be_bytes());
            pkt[8..12].copy_from_slice(&ssrc[i].to_be_bytes());
            write_payload(&mut pkt[12..], c, realtime_ns());
            match media.sockets[i].0.send_to(&pkt, dest) {
                Ok(_) => report.packets += 1,
                Err(e) => eprintln!("media_load: RTP send on call {i}: {e}"),
            }
        }
        slot = (slot + 1) % SEND_SLOTS;
        next += step;
        let now = Instant::now();
        if now < next {
            std::thread::sleep(next - now);
        } else if now > next + Duration::from_millis(5 * FRAME_MS) {
            // Far behind (stopped process): restart the schedule rather than burst.
            next = now;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Receiving: one thread on epoll over every call's RTP socket, kernel receive stamps.

#[derive(Default, Clone)]
struct CallRx {
    packets: u64,
    /// Echoed frames seen, by counter (bit set).
    seen: Vec<u64>,
    echoed: bool,
    // In the window:
    window_packets: u64,
    last_seq: Option<u16>,
    gaps: u64,
    disorder: u64,
    last_ts: Option<u32>,
    ext_ts: i64,
    transits: Vec<i64>,
    altered: u64,
    filler: u64,
    duplicates: u64,
    /// The payload of the last echoed frame (what a concealment repeats).
    last_echo: Vec<u8>,
}

impl CallRx {
    fn mark(&mut self, counter: u64) -> bool {
        let (w, b) = ((counter / 64) as usize, counter % 64);
        if self.seen.len() <= w {
            self.seen.resize(w + 64, 0);
        }
        let had = self.seen[w] & (1 << b) != 0;
        self.seen[w] |= 1 << b;
        !had
    }

    fn has(&self, counter: u64) -> bool {
        let (w, b) = ((counter / 64) as usize, counter % 64);
        self.seen.get(w).is_some_and(|v| v & (1 << b) != 0)
    }
}

struct RecvReport {
    calls: Vec<CallRx>,
    /// Echo delay of the window's frames (µs).
    echo_us: Vec<u32>,
    no_stamp: u64,
}

fn receiver(media: &Media) -> RecvReport {
    let epoll = Epoll::new(EpollCreateFlags::empty()).unwrap_or_else(|e| fail("epoll", e));
    for (i, (rtp, _)) in media.sockets.iter().enumerate() {
        epoll
            .add(rtp, EpollEvent::new(EpollFlags::EPOLLIN, i as u64))
            .unwrap_or_else(|e| fail("epoll add", e));
    }
    let mut report = RecvReport {
        calls: vec![CallRx::default(); media.sockets.len()],
        echo_us: Vec::new(),
        no_stamp: 0,
    };
    let mut events = vec![EpollEvent::empty(); media.sockets.len().max(1)];
    let mut buf = [0u8; 2048];
    let mut cmsg = nix::cmsg_space!(TimeSpec);
    loop {
        let stage = media.stage.load(Ordering::Acquire);
        if stage == DONE {
            return report;
        }
        // Poll every few milliseconds instead of waking per packet: each wake-up of a
        // blocked reader preempts the gateway's sender on these shared cores (a 1,000-call
        // run lost a tenth of the gateway's frame ticks that way). The kernel stamps the
        // arrival, so reading later changes no figure.
        std::thread::sleep(POLL);
        let n = match epoll.wait(&mut events, PollTimeout::ZERO) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => fail("epoll wait", e),
        };
        for ev in &events[..n] {
            let i = ev.data() as usize;
            let fd = media.sockets[i].0.as_raw_fd();
            loop {
                let (len, stamp) = {
                    let mut iov = [IoSliceMut::new(&mut buf)];
                    match recvmsg::<()>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_DONTWAIT) {
                        Ok(msg) => {
                            let mut stamp = None;
                            if let Ok(cmsgs) = msg.cmsgs() {
                                for c in cmsgs {
                                    if let ControlMessageOwned::ScmTimestampns(t) = c {
                                        stamp = Some(t.tv_sec() * 1_000_000_000 + t.tv_nsec());
                                    }
                                }
                            }
                            (msg.bytes, stamp)
                        }
                        Err(Errno::EAGAIN) => break,
                        Err(Errno::EINTR | Errno::ECONNREFUSED) => continue,
                        Err(e) => fail("RTP receive", e),
                    }
                };
                let arrival = stamp.unwrap_or_else(|| {
                    report.no_stamp += 1;
                    realtime_ns() as i64
                });
                on_packet(&mut report, i, &buf[..len], arrival, stage, media);
            }
        }
    }
}

fn on_packet(
    report: &mut RecvReport,
    i: usize,
    pkt: &[u8],
    arrival: i64,
    stage: u8,
    media: &Media,
) {
    if pkt.len() < 12 || pkt[0] >> 6 != 2 {
        return;
    }
    let cc = usize::from(pkt[0] & 0x0F);
    let mut off = 12 + 4 * cc;
    if pkt[0] & 0x10 != 0 && pkt.len() >= off + 4 {
        off += 4 + 4 * usize::from(u16::from_be_bytes([pkt[off + 2], pkt[off + 3]]));
    }
    if pkt.len() < off {
        return;
    }
    let seq = u16::from_be_bytes([pkt[2], pkt[3]]);
    let ts = u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]);
    let payload = &pkt[off..];
    let c = &mut report.calls[i];
    c.packets += 1;
    let measuring = stage == MEASURE;
    let frame = match read_payload(payload) {
        Frame::Altered if is_concealment(payload, &c.last_echo) => Frame::Filler,
        frame => frame,
    };
    if let Frame::Echo(counter, sent) = frame {
        c.last_echo.clear();
        c.last_echo.extend_from_slice(payload);
        let new = c.mark(counter);
        if !c.echoed {
            c.echoed = true;
            media.echoing.fetch_add(1, Ordering::Relaxed);
        }
        if measuring {
            if new {
                let d = (arrival - sent as i64).max(0) / 1000;
                report.echo_us.push(u32::try_from(d).unwrap_or(u32::MAX));
            } else {
                c.duplicates += 1;
            }
        }
    }
    if !measuring {
        return;
    }
    match frame {
        Frame::Altered => c.altered += 1,
        Frame::Filler => c.filler += 1,
        Frame::Echo(..) => {}
    }
    c.window_packets += 1;
    if let Some(last) = c.last_seq {
        let d = seq.wrapping_sub(last) as i16;
        if d > 1 {
            c.gaps += u64::from(d.unsigned_abs()) - 1;
        } else if d <= 0 {
            c.disorder += 1;
        }
    }
    if c.last_seq.is_none_or(|l| (seq.wrapping_sub(l) as i16) > 0) {
        c.last_seq = Some(seq);
    }
    // Unwrapped timestamp → its time in ns; transit = arrival − that.
    match c.last_ts {
        None => c.ext_ts = i64::from(ts),
        Some(l) => c.ext_ts += i64::from(ts.wrapping_sub(l) as i32),
    }
    c.last_ts = Some(ts);
    c.transits.push(arrival - c.ext_ts * 125_000);
}

// ---------------------------------------------------------------------------------------

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i])
}

fn ms(us: f64) -> String {
    format!("{:.2} ms", us / 1000.0)
}

fn main() {
    let args = parse_args();
    check_ulaw_round_trip();
    let pid = args.pid.to_string();
    let n = args.calls;

    let sock = UdpSocket::bind(SocketAddr::new(args.local_ip, 0))
        .unwrap_or_else(|e| fail("SIP socket", e));
    sock.set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap_or_else(|e| fail("SIP socket", e));
    let local = sock.local_addr().unwrap_or_else(|e| fail("SIP socket", e));
    let sip = Sip {
        sock,
        server: args.sip,
        local,
        number: args.number.clone(),
        tag: format!("{}", std::process::id()),
    };
    let media = Arc::new(Media {
        sockets: bind_pairs(args.local_ip, args.rtp_base, n),
        dest: (0..n).map(|_| OnceLock::new()).collect(),
        stage: AtomicU8::new(SETUP),
        echoing: AtomicUsize::new(0),
    });
    let rtp_addr: Vec<SocketAddr> = media
        .sockets
        .iter()
        .map(|(s, _)| s.local_addr().unwrap_or_else(|e| fail("RTP socket", e)))
        .collect();

    let hz = clock_ticks_per_s();
    let self_pid = std::process::id().to_string();
    let rss_idle = proc_rss_kb(&pid);

    let send_thread = {
        let m = media.clone();
        std::thread::Builder::new()
            .name("rtp-send".into())
            .spawn(move || sender(&m))
            .unwrap_or_else(|e| fail("thread", e))
    };
    let recv_thread = {
        let m = media.clone();
        std::thread::Builder::new()
            .name("rtp-recv".into())
            .spawn(move || receiver(&m))
            .unwrap_or_else(|e| fail("thread", e))
    };

    let now = Instant::now();
    let mut calls: Vec<Call> = (0..n)
        .map(|_| Call {
            state: State::Idle,
            pending: Vec::new(),
            first_sent: now,
            next_retx: now,
            interval: T1,
            to_tag: String::new(),
            target: String::new(),
            ack: Vec::new(),
            dropped: false,
            failure: String::new(),
        })
        .collect();

    let limits = Limits::default();
    let mut buf = vec![0u8; 65536];
    let start = Instant::now();
    let gap = Duration::from_secs_f64(1.0 / args.rate);
    let mut placed = 0usize;
    let mut setup_done: Option<Instant> = None;
    let mut window: Option<(Instant, u64, u64)> = None; // start, daemon ticks, own ticks
    let mut measured: Option<Measured> = None;
    let mut rss_peak = 0u64;
    let mut drain_until: Option<Instant> = None;
    let mut bye_started = false;
    let mut byes_placed = 0usize;
    let mut bye_start = now;
    let echo_deadline = Duration::from_secs(20);

    loop {
        // Signalling in.
        while let Ok((len, from)) = sip.sock.recv_from(&mut buf) {
            let Ok(msg) = parse(&buf[..len], &limits) else {
                continue;
            };
            match msg {
                Message::Response(r) => on_response(&sip, &mut calls, &media, &r),
                Message::Request(r) => on_request(&sip, &mut calls, &media, &r, from),
            }
        }
        let now = Instant::now();
        // New calls at the offered rate.
        while placed < n && now >= start + gap.mul_f64(placed as f64) {
            let c = &mut calls[placed];
            c.pending = sip.invite(placed, rtp_addr[placed]);
            c.state = State::Inviting;
            c.first_sent = now;
            c.next_retx = now + T1;
            sip.send(&c.pending);
            placed += 1;
        }
        // Retransmissions (INVITE, BYE) and timeouts.
        for c in calls.iter_mut() {
            if matches!(c.state, State::Inviting | State::Byeing) && now >= c.next_retx {
                if now.duration_since(c.first_sent) > TIMER_B {
                    c.failure = format!("{:?} timed out", c.state);
                    c.state = State::Failed;
                    continue;
                }
                sip.send(&c.pending);
                c.interval = (c.interval * 2).min(Duration::from_secs(4));
                c.next_retx = now + c.interval;
            }
        }
        let up = calls.iter().filter(|c| c.state == State::Up).count();
        let settled = placed == n && !calls.iter().any(|c| c.state == State::Inviting);
        match media.stage.load(Ordering::Acquire) {
            SETUP if settled => {
                let since = *setup_done.get_or_insert(now);
                let echoing = media.echoing.load(Ordering::Relaxed);
                // Every call up is echoing (or it took too long: measure what there is),
                // then one more second for the buffers to settle.
                if (echoing >= up || now.duration_since(since) > echo_deadline)
                    && now.duration_since(since) > Duration::from_secs(1)
                {
                    window = Some((now, proc_cpu_ticks(&pid), proc_cpu_ticks(&self_pid)));
                    media.stage.store(MEASURE, Ordering::Release);
                    println!(
                        "{up} calls up of {n} ({} failed) after {:.1} s, {echoing} echoing; measuring {} s",
                        calls.iter().filter(|c| c.state == State::Failed).count(),
                        now.duration_since(start).as_secs_f64(),
                        args.duration.as_secs()
                    );
                }
            }
            MEASURE => {
                let Some((t0, d0, s0)) = window else {
                    continue;
                };
                let elapsed = now.duration_since(t0);
                // RSS with every call up: sampled through the window, the highest kept.
                if elapsed.as_millis() % 1000 < 10 {
                    rss_peak = rss_peak.max(proc_rss_kb(&pid));
                }
                if elapsed >= args.duration {
                    let d1 = proc_cpu_ticks(&pid);
                    let s1 = proc_cpu_ticks(&self_pid);
                    rss_peak = rss_peak.max(proc_rss_kb(&pid));
                    measured = Some(Measured {
                        secs: elapsed.as_secs_f64(),
                        daemon_cpu_s: (d1 - d0) as f64 / hz,
                        own_cpu_s: (s1 - s0) as f64 / hz,
                        up_at_end: up,
                        load: std::fs::read_to_string("/proc/loadavg")
                            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
                            .unwrap_or_default(),
                    });
                    media.stage.store(DRAINING, Ordering::Release);
                    drain_until = Some(now + DRAIN);
                }
            }
            DRAINING if drain_until.is_some_and(|d| now >= d) => {
                media.stage.store(DONE, Ordering::Release);
                bye_started = true;
                bye_start = now;
            }
            _ => {}
        }
        // Hang up every call that is up, at ten times the setup rate.
        if bye_started {
            while byes_placed < n && now >= bye_start + gap.mul_f64(byes_placed as f64 / 10.0) {
                let i = byes_placed;
                byes_placed += 1;
                let c = &mut calls[i];
                if c.state == State::Up {
                    c.pending = sip.bye(i, &c.target, &c.to_tag);
                    c.state = State::Byeing;
                    c.first_sent = now;
                    c.interval = T1;
                    c.next_retx = now + T1;
                    sip.send(&c.pending);
                }
            }
            if byes_placed == n
                && !calls
                    .iter()
                    .any(|c| matches!(c.state, State::Inviting | State::Byeing))
            {
                break;
            }
        }
    }

    let sent = send_thread
        .join()
        .unwrap_or_else(|_| fail("sender", "panicked"));
    let rx = recv_thread
        .join()
        .unwrap_or_else(|_| fail("receiver", "panicked"));
    let Some(m) = measured else {
        fail("measurement", "no window was measured")
    };
    // What stays after the calls: stored records, caches, the allocator's free lists.
    std::thread::sleep(Duration::from_secs(3));
    let rss = [rss_idle, rss_peak, proc_rss_kb(&pid)];
    let code = report(&calls, &sent, rx, &m, rss);
    std::process::exit(code);
}

struct Measured {
    secs: f64,
    daemon_cpu_s: f64,
    own_cpu_s: f64,
    up_at_end: usize,
    load: String,
}

fn on_response(sip: &Sip, calls: &mut [Call], media: &Media, r: &Response) {
    let h = &r.headers;
    let Some(i) = h.get("Call-ID").and_then(|c| sip.index(c)) else {
        return;
    };
    let Some(c) = calls.get_mut(i) else { return };
    let method = h
        .get("CSeq")
        .unwrap_or("")
        .split_whitespace()
        .nth(1)
        .unwrap_or("");
    let to_tag = h
        .get("To")
        .and_then(|t| param(t, "tag").flatten())
        .unwrap_or("")
        .to_owned();
    match (method, r.status) {
        ("INVITE", 100..=199) if c.state == State::Inviting => {
            // A provisional response stops the INVITE's retransmissions (RFC 3261
            // 17.1.1.2); Timer B still bounds the wait for the final one.
            c.next_retx = c.first_sent + TIMER_B;
        }
        ("INVITE", 200..=299) => {
            if c.state == State::Inviting {
                let target = h
                    .get("Contact")
                    .and_then(|v| NameAddr::parse(v).ok())
                    .map_or_else(|| format!("sip:{}@{}", sip.number, sip.server), |a| a.uri);
                let dest = Sdp::parse(&r.body).ok().and_then(|s| s.audio_addr());
                c.to_tag = to_tag;
                c.ack = sip.ack(i, &target, &c.to_tag, true);
                c.target = target;
                sip.send(&c.ack);
                match dest {
                    Some(d) => {
                        let _ = media.dest[i].set(d);
                        c.state = State::Up;
                    }
                    None => {
                        c.failure = "200 without an audio address".into();
                        c.state = State::Failed;
                    }
                }
            } else if !c.ack.is_empty() {
                // A retransmitted 200: our ACK was lost.
                sip.send(&c.ack);
            }
        }
        ("INVITE", status) => {
            let uri = format!("sip:{}@{}", sip.number, sip.server);
            sip.send(&sip.ack(i, &uri, &to_tag, false));
            if c.state == State::Inviting {
                c.failure = format!("INVITE answered {status} {}", r.reason);
                c.state = State::Failed;
            }
        }
        ("BYE", 200..=699) if c.state == State::Byeing => {
            c.state = if r.status < 300 {
                State::Ended
            } else {
                c.failure = format!("BYE answered {} {}", r.status, r.reason);
                State::Failed
            };
        }
        _ => {}
    }
}

fn on_request(sip: &Sip, calls: &mut [Call], _media: &Media, r: &Request, from: SocketAddr) {
    let resp = Response::to_request(r, 200, "OK");
    if let Err(e) = sip.sock.send_to(&resp.to_bytes(), from) {
        eprintln!("media_load: SIP send: {e}");
    }
    if r.method.as_str() == "BYE"
        && let Some(c) = r
            .headers
            .get("Call-ID")
            .and_then(|v| sip.index(v))
            .and_then(|i| calls.get_mut(i))
        && c.state == State::Up
    {
        c.dropped = true;
        c.failure = "the gateway hung up".into();
        c.state = State::Ended;
    }
}

fn report(
    calls: &[Call],
    sent: &SendReport,
    rx: RecvReport,
    m: &Measured,
    [rss_idle, rss_peak, rss_after]: [u64; 3],
) -> i32 {
    let n = calls.len();
    let failed: Vec<&Call> = calls.iter().filter(|c| c.state == State::Failed).collect();
    let dropped = calls.iter().filter(|c| c.dropped).count();
    let established = calls
        .iter()
        .filter(|c| !c.ack.is_empty() && !c.dropped)
        .count();
    println!(
        "calls: {n} placed, {established} established, {} failed, {dropped} ended by the gateway, {} up through the window",
        failed.len(),
        m.up_at_end
    );
    let mut reasons: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for c in &failed {
        *reasons.entry(c.failure.as_str()).or_default() += 1;
    }
    for (r, k) in &reasons {
        println!("  failed: {k} × {r}");
    }

    // Loss over the window: every frame sent in it must have come back.
    let mut window_sent = 0u64;
    let mut lost = 0u64;
    let mut calls_losing = 0usize;
    let (mut gaps, mut disorder, mut altered, mut filler, mut dups, mut rx_window, mut rx_all) =
        (0, 0, 0, 0, 0, 0u64, 0u64);
    let mut added: Vec<u32> = Vec::new();
    let mut rfc3550: Vec<u32> = Vec::new();
    let mut echoing = 0usize;
    for (i, c) in rx.calls.iter().enumerate() {
        rx_all += c.packets;
        rx_window += c.window_packets;
        gaps += c.gaps;
        disorder += c.disorder;
        altered += c.altered;
        filler += c.filler;
        dups += c.duplicates;
        if c.echoed {
            echoing += 1;
        }
        let (a, b) = sent.window[i];
        window_sent += b - a;
        let l = (a..b).filter(|&k| !c.has(k)).count() as u64;
        if l > 0 {
            calls_losing += 1;
        }
        lost += l;
        // RFC 3550's interarrival jitter (what the far end's RTCP reports would say), at
        // the end of the window; in µs.
        if c.transits.len() > 1 {
            let j = c.transits.windows(2).fold(0.0f64, |j, w| {
                j + ((w[1] - w[0]).abs() as f64 / 1000.0 - j) / 16.0
            });
            rfc3550.push(j.round() as u32);
        }
        if let Some(&min) = c.transits.iter().min() {
            added.extend(
                c.transits
                    .iter()
                    .map(|&t| u32::try_from((t - min) / 1000).unwrap_or(u32::MAX)),
            );
        }
    }
    // The added jitter's p99 by tenth of the calls in the order they were placed: the
    // gateway serves its calls in a fixed order every tick, so a rise across the tenths
    // is delay that grows with a call's place in that order.
    let tenth = rx.calls.len().div_ceil(10).max(1);
    let by_tenth: Vec<String> = rx
        .calls
        .chunks(tenth)
        .map(|chunk| {
            let mut v: Vec<u32> = Vec::new();
            for c in chunk {
                if let Some(&min) = c.transits.iter().min() {
                    v.extend(
                        c.transits
                            .iter()
                            .map(|&t| u32::try_from((t - min) / 1000).unwrap_or(u32::MAX)),
                    );
                }
            }
            v.sort_unstable();
            format!("{:.1}", percentile(&v, 0.99) / 1000.0)
        })
        .collect();
    added.sort_unstable();
    rfc3550.sort_unstable();
    let mut echo = rx.echo_us;
    echo.sort_unstable();
    let mut late = sent.late_us.clone();
    late.sort_unstable();
    let secs = m.secs;
    let call_secs = m.up_at_end as f64 * secs;
    println!(
        "window: {secs:.1} s with {} calls up; RTP to the gateway: {window_sent} frames in the window ({} packets in all); \
         from the gateway: {rx_window} packets in the window ({rx_all} in all)",
        m.up_at_end, sent.packets
    );
    println!(
        "frames lost: {lost} of {window_sent} sent in the window (on {calls_losing} calls); altered {altered}, \
         duplicated {dups}; gateway packets without an echoed frame (silence, concealment) {filler}; \
         sequence gaps in the gateway's streams {gaps}, out of order {disorder}; {echoing} calls echoing"
    );
    println!(
        "added jitter (kernel receive stamp − RTP timestamp, over the call's minimum; {} packets): \
         p50 {}, p99 {}, p99.9 {}, max {}{}",
        added.len(),
        ms(percentile(&added, 0.5)),
        ms(percentile(&added, 0.99)),
        ms(percentile(&added, 0.999)),
        ms(added.last().map_or(0.0, |&v| f64::from(v))),
        if rx.no_stamp > 0 {
            format!(" ({} packets without a kernel stamp)", rx.no_stamp)
        } else {
            String::new()
        }
    );
    println!(
        "added jitter p99 by tenth of the calls in the order they were placed: {} ms",
        by_tenth.join(" ")
    );
    println!(
        "RFC 3550 interarrival jitter of the gateway's streams at the window's end: median over the calls {}, p99 {}, max {}",
        ms(percentile(&rfc3550, 0.5)),
        ms(percentile(&rfc3550, 0.99)),
        ms(rfc3550.last().map_or(0.0, |&v| f64::from(v)))
    );
    println!(
        "echo delay (sent → echoed frame back): p50 {}, p99 {}, max {}",
        ms(percentile(&echo, 0.5)),
        ms(percentile(&echo, 0.99)),
        ms(echo.last().map_or(0.0, |&v| f64::from(v)))
    );
    println!(
        "daemon CPU (user+sys) {:.2} s over {secs:.1} s: {:.1} % of a core, {:.1} µs per call-second",
        m.daemon_cpu_s,
        100.0 * m.daemon_cpu_s / secs,
        1e6 * m.daemon_cpu_s / call_secs.max(1.0)
    );
    let up = m.up_at_end.max(1) as f64;
    let per_call = (rss_peak.saturating_sub(rss_idle) as f64) / up;
    println!(
        "daemon RSS: {:.1} MB before the calls, {:.1} MB with {} up: {per_call:.1} KB per call; \
         {:.1} MB 3 s after the last hang-up ({:.1} KB per call released, {:.1} KB kept)",
        rss_idle as f64 / 1024.0,
        rss_peak as f64 / 1024.0,
        m.up_at_end,
        rss_after as f64 / 1024.0,
        (rss_peak.saturating_sub(rss_after) as f64) / up,
        (rss_after.saturating_sub(rss_idle) as f64) / up,
    );
    println!(
        "load generator: {:.1} % of a core; send ticks late p50 {}, p99 {}, max {}; load average {}",
        100.0 * m.own_cpu_s / secs,
        ms(percentile(&late, 0.5)),
        ms(percentile(&late, 0.99)),
        ms(late.last().map_or(0.0, |&v| f64::from(v))),
        m.load
    );
    let bad = !failed.is_empty()
        || dropped > 0
        || lost > 0
        || altered > 0
        || gaps > 0
        || established < n
        || echoing < established;
    i32::from(bad)
}
