//! One RTP session, sans-IO: packets with their source address and arrival instant in,
//! decoded 20 ms frames out; 20 ms frames in, packets (with their destination) out.
//!
//! * Sending: random SSRC and initial sequence/timestamp (RFC 3550 §5.1), the timestamp
//!   advancing 160 per frame, the marker on the first packet; queued RFC 4733 digits
//!   replace audio while they play (their timestamp is the event start).
//! * Receiving: G.711 decoded through `flowgate_dsp::g711`, telephone-events turned into
//!   digits, a new SSRC resets the jitter buffer, and statistics for RTCP receiver
//!   report blocks (RFC 3550 A.3, A.8).
//! * Symmetric RTP: once a packet arrived, media goes back to where it came from (NAT),
//!   re-latching when the source's SSRC changes.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::dtmf::{DtmfReceiver, DtmfSender};
use super::jitter::{FrameStatus, JitterBuffer, JitterConfig, JitterStats};
use super::rtcp::ReportBlock;
use super::{FRAME, RtpPacket};
use crate::sdp::{Codec, Direction, Negotiated};

/// What offer/answer decided for the stream (updated on re-INVITE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionParams {
    /// Codec sent and expected.
    pub codec: Codec,
    /// Its payload type.
    pub payload_type: u8,
    /// The peer's telephone-event PT.
    pub telephone_event: Option<u8>,
    /// The SDP's destination (before latching).
    pub remote: Option<SocketAddr>,
    /// This side's direction (hold stops sending).
    pub direction: Direction,
    /// Send to the latched source address instead of the SDP's.
    pub symmetric: bool,
}

impl SessionParams {
    /// From an SDP negotiation.
    pub fn from_negotiated(n: &Negotiated, symmetric: bool) -> Self {
        Self {
            codec: n.codec,
            payload_type: n.payload_type,
            telephone_event: n.telephone_event,
            remote: n.remote,
            direction: n.direction,
            symmetric,
        }
    }
}

/// What happened to a received packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// Audio queued in the jitter buffer.
    Audio,
    /// The start of a telephone-event digit.
    Dtmf(char),
    /// A repeated event packet, an unknown payload type or a malformed packet.
    Ignored,
}

/// One RTP session.
#[derive(Debug)]
pub struct RtpSession {
    params: SessionParams,
    ssrc: u32,
    seq: u16,
    ts: u32,
    first_sent: bool,
    latched: Option<SocketAddr>,
    remote_ssrc: Option<u32>,
    jb: JitterBuffer,
    jb_cfg: JitterConfig,
    dtmf_rx: DtmfReceiver,
    dtmf_queue: VecDeque<DtmfSender>,
    dtmf_ts: u32,
    dtmf_active: bool,
    // Reception statistics (RFC 3550 A.1/A.3).
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    // Sending statistics.
    packets_sent: u32,
    octets_sent: u32,
    decode: Vec<i16>,
    out: Vec<u8>,
    payload: Vec<u8>,
}

impl RtpSession {
    /// A session with `params`.
    pub fn new(params: SessionParams, jitter: JitterConfig) -> Self {
        Self {
            params,
            ssrc: rand::random(),
            seq: rand::random(),
            ts: rand::random(),
            first_sent: false,
            latched: None,
            remote_ssrc: None,
            jb: JitterBuffer::new(jitter),
            jb_cfg: jitter,
            dtmf_rx: DtmfReceiver::default(),
            dtmf_queue: VecDeque::new(),
            dtmf_ts: 0,
            dtmf_active: false,
            base_seq: 0,
            max_seq: 0,
            cycles: 0,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            packets_sent: 0,
            octets_sent: 0,
            decode: vec![0; 1024],
            out: Vec::with_capacity(12 + 480),
            payload: Vec::with_capacity(480),
        }
    }

    /// The parameters in force.
    pub fn params(&self) -> SessionParams {
        self.params
    }

    /// Replaces the parameters (a re-INVITE: hold, retrieve, a new address or codec).
    pub fn update(&mut self, params: SessionParams) {
        if params.remote != self.params.remote {
            // The peer moved: learn its source again.
            self.latched = None;
        }
        self.params = params;
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Where packets go now: the latched source (symmetric RTP) or the SDP address.
    pub fn destination(&self) -> Option<SocketAddr> {
        if !self.params.direction.sends() {
            return None;
        }
        match (self.params.symmetric, self.latched) {
            (true, Some(a)) => Some(a),
            _ => self.params.remote,
        }
    }

    /// Jitter buffer counters.
    pub fn jitter_stats(&self) -> JitterStats {
        self.jb.stats()
    }

    /// Feeds a received datagram.
    pub fn on_packet(&mut self, data: &[u8], from: SocketAddr, now: Instant) -> Incoming {
        let Ok(p) = RtpPacket::parse(data) else {
            return Incoming::Ignored;
        };
        let is_audio = p.payload_type == self.params.payload_type;
        let is_event = self.params.telephone_event == Some(p.payload_type) && p.payload_type >= 96;
        if !is_audio && !is_event {
            return Incoming::Ignored;
        }
        if self.remote_ssrc != Some(p.ssrc) {
            // A new source (first packet, or the far end restarted / was transferred).
            if self.remote_ssrc.is_some() {
                self.jb.reset();
                self.dtmf_rx = DtmfReceiver::default();
            }
            self.remote_ssrc = Some(p.ssrc);
            self.latched = Some(from);
            self.base_seq = u32::from(p.seq);
            self.max_seq = p.seq;
            self.cycles = 0;
            self.received = 0;
            self.expected_prior = 0;
            self.received_prior = 0;
        } else {
            self.latched.get_or_insert(from);
            let delta = p.seq.wrapping_sub(self.max_seq);
            if delta < 0x8000 {
                if p.seq < self.max_seq {
                    self.cycles += 1 << 16;
                }
                self.max_seq = p.seq;
            }
        }
        self.received = self.received.wrapping_add(1);
        if is_event {
            return match self.dtmf_rx.on_packet(p.timestamp, p.payload) {
                Some(d) => Incoming::Dtmf(d),
                None => Incoming::Ignored,
            };
        }
        let n = p.payload.len().min(self.decode.len());
        let law = self.params.codec.law();
        for (o, &c) in self.decode[..n].iter_mut().zip(p.payload) {
            *o = law.decode(c);
        }
        self.jb.push(p.timestamp, &self.decode[..n], now);
        Incoming::Audio
    }

    /// The next 20 ms frame to play.
    pub fn pull(&mut self, out: &mut [i16]) -> FrameStatus {
        self.jb.pop(out)
    }

    /// Queues a digit for RFC 4733 sending. False when the peer did not negotiate
    /// telephone-event or the character is not a digit.
    pub fn queue_dtmf(&mut self, digit: char, duration: Duration) -> bool {
        if self.params.telephone_event.is_none() {
            return false;
        }
        match DtmfSender::new(digit, duration) {
            Some(s) => {
                self.dtmf_queue.push_back(s);
                true
            }
            None => false,
        }
    }

    /// Whether digits are still being sent.
    pub fn dtmf_pending(&self) -> bool {
        !self.dtmf_queue.is_empty()
    }

    /// Takes a 20 ms frame to send; returns the packet and its destination, or `None`
    /// when nothing is to be sent (on hold, no destination known yet).
    pub fn push(&mut self, frame: &[i16]) -> Option<(&[u8], SocketAddr)> {
        let dest = self.destination();
        let (marker, pt, ts) = if let Some(sender) = self.dtmf_queue.front_mut() {
            if !self.dtmf_active {
                self.dtmf_active = true;
                self.dtmf_ts = self.ts;
            }
            let pkt = sender.tick();
            if sender.done() {
                self.dtmf_queue.pop_front();
                self.dtmf_active = false;
            }
            // Audio time keeps running under the event (RFC 4733 §2.5.1.2).
            self.ts = self.ts.wrapping_add(160);
            let pkt = pkt?;
            self.payload.clear();
            self.payload.extend_from_slice(&pkt.payload.bytes());
            (
                pkt.marker,
                self.params.telephone_event.unwrap_or(101),
                self.dtmf_ts,
            )
        } else {
            self.payload.clear();
            let law = self.params.codec.law();
            self.payload
                .extend(frame.iter().take(FRAME * 3).map(|&s| law.encode(s)));
            let ts = self.ts;
            self.ts = self
                .ts
                .wrapping_add(u32::try_from(frame.len().min(FRAME * 3)).unwrap_or(160));
            (!self.first_sent, self.params.payload_type, ts)
        };
        let dest = dest?;
        self.first_sent = true;
        self.seq = self.seq.wrapping_add(1);
        let p = RtpPacket {
            marker,
            payload_type: pt,
            seq: self.seq,
            timestamp: ts,
            ssrc: self.ssrc,
            payload: &self.payload,
        };
        p.write(&mut self.out);
        self.packets_sent = self.packets_sent.wrapping_add(1);
        self.octets_sent = self
            .octets_sent
            .wrapping_add(u32::try_from(self.payload.len()).unwrap_or(0));
        Some((&self.out, dest))
    }

    /// Packets and octets sent (for an SR) and the current RTP timestamp.
    pub fn send_counters(&self) -> (u32, u32, u32) {
        (self.packets_sent, self.octets_sent, self.ts)
    }

    /// A report block about the source we receive (None before any packet).
    pub fn report_block(&mut self) -> Option<ReportBlock> {
        let ssrc = self.remote_ssrc?;
        let ext_max = self.cycles + u32::from(self.max_seq);
        let expected = ext_max.wrapping_sub(self.base_seq).wrapping_add(1);
        let lost = i64::from(expected) - i64::from(self.received);
        let exp_int = expected.wrapping_sub(self.expected_prior);
        let rec_int = self.received.wrapping_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_int = i64::from(exp_int) - i64::from(rec_int);
        let fraction = if exp_int == 0 || lost_int <= 0 {
            0
        } else {
            u8::try_from((lost_int << 8) / i64::from(exp_int)).unwrap_or(255)
        };
        Some(ReportBlock {
            ssrc,
            fraction_lost: fraction,
            cumulative_lost: i32::try_from(lost).unwrap_or(i32::MAX),
            highest_seq: ext_max,
            jitter: self.jb.jitter(),
            lsr: 0,
            dlsr: 0,
        })
    }

    /// The jitter buffer configuration.
    pub fn jitter_config(&self) -> JitterConfig {
        self.jb_cfg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(remote: &str) -> SessionParams {
        SessionParams {
            codec: Codec::Pcmu,
            payload_type: 0,
            telephone_event: Some(101),
            remote: Some(remote.parse().unwrap()),
            direction: Direction::SendRecv,
            symmetric: true,
        }
    }

    #[test]
    fn two_sessions_talk_and_relay_digits() {
        let t0 = Instant::now();
        let a_addr: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let mut a = RtpSession::new(params("127.0.0.1:5000"), JitterConfig::default());
        let mut b = RtpSession::new(params("10.9.9.9:9"), JitterConfig::default());
        let tone: Vec<i16> = (0..160)
            .map(|i| if i % 2 == 0 { 8000 } else { -8000 })
            .collect();
        assert!(a.queue_dtmf('7', Duration::from_millis(60)));
        let mut digits = Vec::new();
        let mut received = 0;
        for k in 0..20u64 {
            let now = t0 + Duration::from_millis(k * 20);
            let (pkt, dest) = a.push(&tone).map(|(p, d)| (p.to_vec(), d)).unwrap();
            assert_eq!(dest, "127.0.0.1:5000".parse().unwrap());
            match b.on_packet(&pkt, a_addr, now) {
                Incoming::Dtmf(d) => digits.push(d),
                Incoming::Audio => {}
                Incoming::Ignored => {}
            }
            let mut out = [0i16; 160];
            if b.pull(&mut out) == FrameStatus::Received {
                received += 1;
                // G.711 round trip of ±8000 stays within a quantisation step.
                assert!((i32::from(out[0]).abs() - 8000).abs() < 300, "{}", out[0]);
            }
        }
        assert_eq!(digits, vec!['7']);
        assert!(received >= 10, "{received}");
        // b latched to a's source, not the SDP address.
        assert_eq!(b.destination(), Some(a_addr));
        let rb = b.report_block().unwrap();
        assert_eq!(rb.ssrc, a.ssrc());
        assert_eq!(rb.cumulative_lost, 0);
    }

    #[test]
    fn hold_stops_sending_and_loss_is_reported() {
        let mut a = RtpSession::new(params("127.0.0.1:5000"), JitterConfig::default());
        let mut p = a.params();
        p.direction = Direction::RecvOnly;
        a.update(p);
        assert!(a.push(&[0; 160]).is_none());
        let mut b = RtpSession::new(params("127.0.0.1:5000"), JitterConfig::default());
        let t0 = Instant::now();
        let from: SocketAddr = "127.0.0.1:1".parse().unwrap();
        for seq in [1u16, 2, 4, 5] {
            let pl = [0xffu8; 160];
            let pkt = RtpPacket {
                marker: false,
                payload_type: 0,
                seq,
                timestamp: u32::from(seq) * 160,
                ssrc: 5,
                payload: &pl,
            };
            let mut v = Vec::new();
            pkt.write(&mut v);
            assert_eq!(b.on_packet(&v, from, t0), Incoming::Audio);
        }
        let rb = b.report_block().unwrap();
        assert_eq!(rb.cumulative_lost, 1);
        assert_eq!(rb.fraction_lost, 51); // 1 of 5 → 256/5
        // Wrong payload type is ignored.
        let pl = [0u8; 4];
        let pkt = RtpPacket {
            marker: false,
            payload_type: 18,
            seq: 6,
            timestamp: 0,
            ssrc: 5,
            payload: &pl,
        };
        let mut v = Vec::new();
        pkt.write(&mut v);
        assert_eq!(b.on_packet(&v, from, t0), Incoming::Ignored);
    }
}
