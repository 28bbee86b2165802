//! External media: a copy of a call's audio streamed as G.711 RTP over UDP to a host on
//! the LAN, and that host's RTP mixed back into the call (VoIPBIN's
//! `external_media_start` / `external_media_stop`).
//!
//! VoIPBIN builds this from an Asterisk snoop channel, so its two direction options keep
//! Asterisk's spy/whisper meaning, seen from the call:
//!
//! | option | `in` | `out` | `both` | empty |
//! |---|---|---|---|---|
//! | `direction_listen` (what is streamed) | the caller's audio | what the caller hears | both, mixed | nothing (silence is sent) |
//! | `direction_speak` (where the host's audio goes) | into the call as if the caller said it (a bridged peer, recordings, `echo` hear it) | to the caller | both | dropped |
//!
//! A listening stream never contains the host's own audio (a spy does not hear whispers).
//!
//! Two halves, like the rest of the media layer:
//!
//! * [`Tap`] lives in the sans-IO [`MediaCore`](super::core): per frame it takes the
//!   listened audio and injects the spoken audio at the right points of the frame.
//! * [`ExternalStream`] lives on the call's media thread (the I/O shell): a
//!   non-blocking UDP socket and the SIP crate's sans-IO [`RtpSession`] (packetizer,
//!   G.711, jitter buffer), so one RTP implementation serves SIP calls and external
//!   media. Per frame the thread feeds received datagrams in and pulls one frame out
//!   before the tick, and sends the listened frame after it. The call's port paces
//!   everything: one packet per 20 ms frame, timestamps advancing 160 per packet.
//!
//! The same taps serve the WebSocket media stream (`GET /v1.0/calls/{id}/media_stream`,
//! [`super::wsmedia`]): [`ExternalStream::channel`] hands the frames to and from the API's
//! WebSocket task through two bounded channels instead of a socket. Towards the client a
//! full channel drops the frame (a slow client loses audio, the call never waits); from
//! the client one frame is taken per 20 ms tick, and the WebSocket task waits while the
//! channel is full, so a client sending faster than real time is slowed down by TCP
//! rather than buffered without bound. A stream whose client left is dropped by the
//! media thread.
//!
//! G.711 RTP is 8 kHz: a 16 kHz call is converted on the way (as the bridge does).
//! Packets are always sent, silence when nothing is listened to, so the host learns the
//! gateway's address and can speak back to it; only datagrams from `external_host`
//! itself are accepted (the socket is connected to it), so nobody else on the LAN can
//! inject audio into a call. The stream ends with `external_media_stop` or with the
//! call's media session.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::Instant;

use flowgate_sip::rtp::{JitterConfig, RtpSession, SessionParams};
use flowgate_sip::sdp::{Codec, Direction};
use uuid::Uuid;

use super::bridge::convert_rate;
use super::error::{MediaError, Result};

/// Most external media streams on one call (VoIPBIN's limit per call).
pub const MAX_PER_CALL: usize = 5;

/// Rate of G.711 RTP.
const RTP_RATE: u32 = 8000;
/// Samples per 20 ms RTP packet.
const RTP_FRAME: usize = 160;

/// One side of the call, as VoIPBIN's `direction_listen` / `direction_speak` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TapDirection {
    /// The caller's side: what they say (listen), or as if they said it (speak).
    In,
    /// What the caller hears.
    Out,
    /// Both.
    Both,
}

impl TapDirection {
    /// Parses a VoIPBIN direction: `in`, `out`, `both`, or empty for none.
    ///
    /// # Errors
    /// [`MediaError::InvalidOption`] for anything else.
    pub fn parse(field: &'static str, value: &str) -> Result<Option<Self>> {
        match value {
            "" => Ok(None),
            "in" => Ok(Some(TapDirection::In)),
            "out" => Ok(Some(TapDirection::Out)),
            "both" => Ok(Some(TapDirection::Both)),
            other => Err(MediaError::InvalidOption {
                field,
                reason: format!("{other:?} is not a direction (in, out, both or empty)"),
            }),
        }
    }

    fn has_in(self) -> bool {
        matches!(self, TapDirection::In | TapDirection::Both)
    }

    fn has_out(self) -> bool {
        matches!(self, TapDirection::Out | TapDirection::Both)
    }
}

/// What to stream, where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExternalMediaOptions {
    /// The host the RTP goes to and the only one it is accepted from.
    pub host: SocketAddr,
    /// µ-law (PT 0) or A-law (PT 8).
    pub codec: Codec,
    /// What is streamed to the host.
    pub listen: Option<TapDirection>,
    /// Where the host's audio goes.
    pub speak: Option<TapDirection>,
}

/// A started stream, as the caller of [`CallMedia::start_external`](super::CallMedia::start_external) sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExternalMediaInfo {
    /// Its id (for stopping it).
    pub id: Uuid,
    /// The gateway's end of the stream.
    pub local: SocketAddr,
}

/// The core's side of one stream: frame buffers, no I/O.
pub(crate) struct Tap {
    id: Uuid,
    listen: Option<TapDirection>,
    speak: Option<TapDirection>,
    /// This frame's audio for the host.
    listened: Vec<i16>,
    /// This frame's audio from the host (silence when none came).
    spoken: Vec<i16>,
}

impl Tap {
    pub(crate) fn new(id: Uuid, options: &ExternalMediaOptions, frame: usize) -> Self {
        Self::with(id, options.listen, options.speak, frame)
    }

    pub(crate) fn with(
        id: Uuid,
        listen: Option<TapDirection>,
        speak: Option<TapDirection>,
        frame: usize,
    ) -> Self {
        Tap {
            id,
            listen,
            speak,
            listened: vec![0; frame],
            spoken: vec![0; frame],
        }
    }

    pub(crate) fn id(&self) -> Uuid {
        self.id
    }

    /// Where the media thread puts the host's audio for the next tick.
    pub(crate) fn spoken_mut(&mut self) -> &mut [i16] {
        &mut self.spoken
    }

    /// The audio the last tick listened to.
    pub(crate) fn listened(&self) -> &[i16] {
        &self.listened
    }

    /// Step one of a frame: the caller's audio, before anything is injected into it.
    pub(crate) fn listen_in(&mut self, heard: &[i16]) {
        let n = heard.len().min(self.listened.len());
        if self.listen.is_some_and(TapDirection::has_in) {
            self.listened[..n].copy_from_slice(&heard[..n]);
        } else {
            self.listened.fill(0);
        }
    }

    /// Step two: the audio to the caller, before this stream's injection.
    pub(crate) fn listen_out(&mut self, output: &[i16]) {
        if self.listen.is_some_and(TapDirection::has_out) {
            for (l, o) in self.listened.iter_mut().zip(output) {
                *l = l.saturating_add(*o);
            }
        }
    }

    /// Adds the host's audio for the caller's side (`in`) into `into`; false when this
    /// stream does not speak there.
    pub(crate) fn speak_in(&self, into: &mut [i16]) -> bool {
        self.speak.is_some_and(TapDirection::has_in) && mix_into(into, &self.spoken)
    }

    /// Adds the host's audio for the caller (`out`) into `into`.
    pub(crate) fn speak_out(&self, into: &mut [i16]) -> bool {
        self.speak.is_some_and(TapDirection::has_out) && mix_into(into, &self.spoken)
    }
}

fn mix_into(into: &mut [i16], add: &[i16]) -> bool {
    for (o, a) in into.iter_mut().zip(add) {
        *o = o.saturating_add(*a);
    }
    true
}

/// Counters of one stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExternalStats {
    /// RTP packets (or WebSocket frames) sent.
    pub sent: u64,
    /// Datagrams received from the host (frames from the WebSocket client).
    pub received: u64,
    /// Sends the network refused (the host not listening, a full buffer; a WebSocket
    /// client too slow to take its frames).
    pub send_errors: u64,
}

/// Frames queued each way between the media thread and a WebSocket client (1 s).
pub const CHANNEL_FRAMES: usize = 50;

/// The WebSocket task's ends of a channel stream: 20 ms frames at 8 kHz each way.
#[derive(Debug)]
pub struct MediaStreamEnds {
    /// Its id (the media session's stream id).
    pub id: Uuid,
    /// What the stream listens to, one frame per 20 ms; ends when the stream does.
    pub listened: tokio::sync::mpsc::Receiver<Vec<i16>>,
    /// What the client says, into the call (one frame is taken per 20 ms).
    pub spoken: tokio::sync::mpsc::Sender<Vec<i16>>,
}

/// The media thread's side of one stream.
pub(crate) struct ExternalStream {
    id: Uuid,
    io: Io,
    rate: u32,
    narrow: [i16; RTP_FRAME],
    stats: ExternalStats,
}

enum Io {
    /// RTP over UDP to a LAN host (`external_media_start`).
    Rtp {
        host: SocketAddr,
        socket: UdpSocket,
        // Boxed: the session's jitter buffer makes it large, and most streams of a
        // busy gateway may be WebSocket ones.
        rtp: Box<RtpSession>,
        buf: Vec<u8>,
    },
    /// Frames to and from the API's WebSocket task (`media_stream`).
    Channel {
        to_client: tokio::sync::mpsc::Sender<Vec<i16>>,
        from_client: tokio::sync::mpsc::Receiver<Vec<i16>>,
    },
}

impl ExternalStream {
    /// Binds a UDP socket connected to the host. Non-blocking and cheap: callable from
    /// async code.
    ///
    /// # Errors
    /// [`MediaError::Device`] when the socket cannot be made.
    pub(crate) fn open(
        id: Uuid,
        options: &ExternalMediaOptions,
        rate: u32,
    ) -> Result<(Self, SocketAddr)> {
        let io = |op: &'static str| {
            move |e: std::io::Error| MediaError::Device {
                device: format!("external media to {}", options.host),
                op,
                detail: e.to_string(),
            }
        };
        let any: SocketAddr = if options.host.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(any).map_err(io("bind"))?;
        // Connected: the kernel picks the local address towards the host and drops
        // datagrams from anyone else.
        socket.connect(options.host).map_err(io("connect"))?;
        socket
            .set_nonblocking(true)
            .map_err(io("set_nonblocking"))?;
        let local = socket.local_addr().map_err(io("local_addr"))?;
        let params = SessionParams {
            codec: options.codec,
            payload_type: options.codec.payload_type(),
            telephone_event: None,
            remote: Some(options.host),
            direction: Direction::SendRecv,
            symmetric: false,
        };
        Ok((
            ExternalStream {
                id,
                io: Io::Rtp {
                    host: options.host,
                    socket,
                    rtp: Box::new(RtpSession::new(params, JitterConfig::default())),
                    buf: vec![0; 2048],
                },
                rate,
                narrow: [0; RTP_FRAME],
                stats: ExternalStats::default(),
            },
            local,
        ))
    }

    /// A stream to and from a WebSocket client (8 kHz frames through bounded channels);
    /// the client's task gets the other ends.
    pub(crate) fn channel(id: Uuid, rate: u32) -> (Self, MediaStreamEnds) {
        let (to_client, listened) = tokio::sync::mpsc::channel(CHANNEL_FRAMES);
        let (spoken, from_client) = tokio::sync::mpsc::channel(CHANNEL_FRAMES);
        (
            ExternalStream {
                id,
                io: Io::Channel {
                    to_client,
                    from_client,
                },
                rate,
                narrow: [0; RTP_FRAME],
                stats: ExternalStats::default(),
            },
            MediaStreamEnds {
                id,
                listened,
                spoken,
            },
        )
    }

    pub(crate) fn id(&self) -> Uuid {
        self.id
    }

    /// The far end is gone for good (a WebSocket client that left): the stream is over.
    pub(crate) fn is_gone(&self) -> bool {
        match &self.io {
            Io::Rtp { .. } => false,
            Io::Channel { to_client, .. } => to_client.is_closed(),
        }
    }

    /// What the stream is, for logs.
    pub(crate) fn describe(&self) -> String {
        match &self.io {
            Io::Rtp { host, .. } => format!("rtp to {host}"),
            Io::Channel { .. } => "websocket".to_owned(),
        }
    }

    pub(crate) fn stats(&self) -> ExternalStats {
        self.stats
    }

    /// Takes what arrived since the last frame, then fills `out` (one frame at the call's
    /// rate) with the host's next frame, or silence.
    pub(crate) fn receive(&mut self, now: Instant, out: &mut [i16]) {
        match &mut self.io {
            Io::Rtp {
                host,
                socket,
                rtp,
                buf,
            } => {
                loop {
                    match socket.recv(buf) {
                        Ok(n) => {
                            self.stats.received += 1;
                            let data = buf.get(..n).unwrap_or(&[]);
                            rtp.on_packet(data, *host, now);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        // An ICMP error left by an earlier send (the host is not listening
                        // yet): it does not end the stream.
                        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
                        Err(e) => {
                            tracing::debug!(external_media = %self.id, error = %e, "external media receive failed");
                            break;
                        }
                    }
                }
                rtp.pull(&mut self.narrow);
            }
            Io::Channel { from_client, .. } => match from_client.try_recv() {
                Ok(frame) => {
                    self.stats.received += 1;
                    let n = frame.len().min(RTP_FRAME);
                    self.narrow[..n].copy_from_slice(&frame[..n]);
                    self.narrow[n..].fill(0);
                }
                Err(_) => self.narrow.fill(0),
            },
        }
        convert_rate(&self.narrow, RTP_RATE, out, self.rate);
    }

    /// Sends one frame (at the call's rate) as one RTP packet, or one 8 kHz frame to the
    /// WebSocket client.
    pub(crate) fn send(&mut self, frame: &[i16]) {
        convert_rate(frame, self.rate, &mut self.narrow, RTP_RATE);
        match &mut self.io {
            Io::Rtp { socket, rtp, .. } => {
                let Some((packet, _)) = rtp.push(&self.narrow) else {
                    return;
                };
                match socket.send(packet) {
                    Ok(_) => self.stats.sent += 1,
                    Err(_) => self.stats.send_errors += 1,
                }
            }
            Io::Channel { to_client, .. } => match to_client.try_send(self.narrow.to_vec()) {
                Ok(()) => self.stats.sent += 1,
                // A slow client loses this frame; a gone one ends the stream (`is_gone`).
                Err(_) => self.stats.send_errors += 1,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn options(host: SocketAddr, listen: &str, speak: &str) -> ExternalMediaOptions {
        ExternalMediaOptions {
            host,
            codec: Codec::Pcmu,
            listen: TapDirection::parse("direction_listen", listen).unwrap(),
            speak: TapDirection::parse("direction_speak", speak).unwrap(),
        }
    }

    #[test]
    fn directions_parse_as_voipbin_names_them() {
        assert_eq!(TapDirection::parse("d", "").unwrap(), None);
        assert_eq!(
            TapDirection::parse("d", "both").unwrap(),
            Some(TapDirection::Both)
        );
        assert!(TapDirection::parse("d", "IN").is_err());
        assert!(TapDirection::parse("d", "none").is_err());
    }

    #[test]
    fn listen_in_out_and_both_take_the_right_audio() {
        let host = "127.0.0.1:9".parse().unwrap();
        let caller = [100i16; 4];
        let to_caller = [7i16; 4];
        for (listen, want) in [("in", 100), ("out", 7), ("both", 107), ("", 0)] {
            let mut t = Tap::new(Uuid::nil(), &options(host, listen, ""), 4);
            t.listen_in(&caller);
            t.listen_out(&to_caller);
            assert_eq!(t.listened(), &[want; 4], "listen {listen:?}");
        }
    }

    #[test]
    fn speak_goes_where_its_direction_says() {
        let host = "127.0.0.1:9".parse().unwrap();
        for (speak, into_in, into_out) in [
            ("in", true, false),
            ("out", false, true),
            ("both", true, true),
            ("", false, false),
        ] {
            let mut t = Tap::new(Uuid::nil(), &options(host, "", speak), 4);
            t.spoken_mut().fill(5);
            let (mut a, mut b) = ([1i16; 4], [1i16; 4]);
            assert_eq!(t.speak_in(&mut a), into_in);
            assert_eq!(t.speak_out(&mut b), into_out);
            assert_eq!(a[0], if into_in { 6 } else { 1 });
            assert_eq!(b[0], if into_out { 6 } else { 1 });
        }
    }

    #[test]
    fn a_stream_sends_rtp_and_takes_audio_only_from_its_host() {
        let host = UdpSocket::bind("127.0.0.1:0").unwrap();
        host.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let opts = options(host.local_addr().unwrap(), "in", "out");
        let (mut s, local) = ExternalStream::open(Uuid::nil(), &opts, 16000).unwrap();
        // A 16 kHz call: 320 samples become one 160-sample µ-law packet.
        s.send(&[1000i16; 320]);
        s.send(&[1000i16; 320]);
        let mut buf = [0u8; 512];
        let mut seqs = Vec::new();
        for _ in 0..2 {
            let n = host.recv(&mut buf).unwrap();
            let p = flowgate_sip::rtp::RtpPacket::parse(&buf[..n]).unwrap();
            assert_eq!(p.payload_type, 0);
            assert_eq!(p.payload.len(), 160);
            assert!(
                p.payload
                    .iter()
                    .all(|&c| c == Codec::Pcmu.law().encode(1000))
            );
            seqs.push((p.seq, p.timestamp, p.marker));
        }
        assert_eq!(seqs[1].0, seqs[0].0.wrapping_add(1));
        assert_eq!(seqs[1].1, seqs[0].1.wrapping_add(160));
        assert!(seqs[0].2 && !seqs[1].2, "marker on the first packet only");

        // A stranger's packets never reach the call.
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        let law = Codec::Pcmu.law();
        let payload = [law.encode(-2000); 160];
        let mut pkt = Vec::new();
        flowgate_sip::rtp::RtpPacket {
            marker: true,
            payload_type: 0,
            seq: 1,
            timestamp: 0,
            ssrc: 9,
            payload: &payload,
        }
        .write(&mut pkt);
        stranger.send_to(&pkt, local).unwrap();
        // The host's do (the jitter buffer holds a frame first).
        let t0 = Instant::now();
        let mut out = [0i16; 320];
        let mut heard = false;
        for k in 0..4u16 {
            let payload = [law.encode(3000); 160];
            flowgate_sip::rtp::RtpPacket {
                marker: k == 0,
                payload_type: 0,
                seq: 10 + k,
                timestamp: u32::from(k) * 160,
                ssrc: 7,
                payload: &payload,
            }
            .write(&mut pkt);
            host.send_to(&pkt, local).unwrap();
            // Loopback delivery is all but synchronous; poll until the datagram is in.
            let start = Instant::now();
            loop {
                s.receive(t0 + Duration::from_millis(u64::from(k) * 20), &mut out);
                heard |= out
                    .iter()
                    .all(|&v| (v - law.decode(law.encode(3000))).abs() < 64);
                assert!(out.iter().all(|&v| v >= 0), "the stranger's audio came in");
                if s.stats().received > u64::from(k) || start.elapsed() > Duration::from_secs(5) {
                    break;
                }
                std::thread::yield_now();
            }
        }
        for _ in 0..2 {
            s.receive(t0 + Duration::from_millis(100), &mut out);
            heard |= out
                .iter()
                .all(|&v| (v - law.decode(law.encode(3000))).abs() < 64);
        }
        assert!(heard, "the host's audio never came out");
    }
}
