//! The I/O piece of RTP: an [`RtpStream`] on a std `UdpSocket` (RTP on an even port of
//! the configured range, RTCP on the next), with a 20 ms frame interface shaped like the
//! call-leg contract's `AudioPort`, in two modes:
//!
//! * shared pacing (what the media layer uses): a loop shared by many calls calls
//!   [`RtpStream::read_frame_now`] on each 20 ms tick of its own clock; the socket is
//!   non-blocking and the read takes whatever has arrived, so a frame costs a few
//!   syscalls and no thread wake-up of its own;
//! * blocking: [`RtpStream::read_frame`] returns every 20 ms by the stream's own clock
//!   (absolute deadlines, so the pace does not drift), receiving whatever arrives
//!   meanwhile, even when packets stop. For a caller with a thread per stream (tests,
//!   tools).
//!
//! [`RtpStream::write_frame`] never blocks in either mode.
//! The user agent keeps an [`RtpControl`] to change the parameters on a re-INVITE, send
//! RFC 4733 digits and close the stream when the call ends.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use thiserror::Error;

use super::jitter::{FrameStatus, JitterConfig, JitterStats};
use super::session::{Incoming, RtpSession, SessionParams};
use super::{is_rtcp, rtcp};

/// Errors of the RTP I/O layer.
#[derive(Debug, Error)]
pub enum StreamError {
    /// No free even/odd port pair in the range.
    #[error("no free RTP port in {min}..={max}")]
    NoPort {
        /// Range start.
        min: u16,
        /// Range end.
        max: u16,
    },
    /// A socket error.
    #[error("RTP socket: {0}")]
    Io(#[from] std::io::Error),
    /// The call ended: the user agent closed the stream.
    #[error("RTP stream closed")]
    Closed,
}

/// The configured RTP port range; allocation walks it round-robin.
#[derive(Debug)]
pub struct PortRange {
    min: u16,
    max: u16,
    next: AtomicU16,
}

impl PortRange {
    /// A range (`min` rounded up to even).
    pub fn new(min: u16, max: u16) -> Self {
        let min = min + min % 2;
        Self {
            min,
            max,
            next: AtomicU16::new(min),
        }
    }

    /// Binds an RTP socket on an even port and RTCP on the next one.
    pub fn bind(&self, ip: IpAddr) -> Result<(UdpSocket, UdpSocket), StreamError> {
        let pairs = (self.max.saturating_sub(self.min) / 2).max(1);
        for _ in 0..pairs {
            let mut p = self.next.fetch_add(2, Ordering::Relaxed);
            if p < self.min || p >= self.max {
                // Wrapped past the end: start over (a racing thread may do the same).
                self.next.store(self.min + 2, Ordering::Relaxed);
                p = self.min;
            }
            let Ok(rtp) = UdpSocket::bind(SocketAddr::new(ip, p)) else {
                continue;
            };
            let Ok(rtcp) = UdpSocket::bind(SocketAddr::new(ip, p + 1)) else {
                continue;
            };
            return Ok((rtp, rtcp));
        }
        Err(StreamError::NoPort {
            min: self.min,
            max: self.max,
        })
    }
}

#[derive(Debug, Default)]
struct Shared {
    params: Option<SessionParams>,
    dtmf: VecDeque<(char, Duration)>,
    closed: bool,
    stats: StreamStats,
}

/// Counters of a stream, readable from the control side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// RTP packets received (any payload).
    pub packets_in: u64,
    /// RTP packets sent.
    pub packets_out: u64,
    /// RTCP packets received.
    pub rtcp_in: u64,
    /// Digits received by RFC 4733.
    pub digits_in: u64,
    /// Jitter buffer counters.
    pub jitter: JitterStats,
}

/// The user agent's handle on a stream.
#[derive(Debug, Clone)]
pub struct RtpControl(Arc<Mutex<Shared>>);

impl RtpControl {
    fn with<T>(&self, f: impl FnOnce(&mut Shared) -> T) -> T {
        let mut g = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut g)
    }

    /// New parameters (re-INVITE), applied at the next frame.
    pub fn update(&self, params: SessionParams) {
        self.with(|s| s.params = Some(params));
    }

    /// Queues a digit to send as RFC 4733 events.
    pub fn send_dtmf(&self, digit: char, duration: Duration) {
        self.with(|s| s.dtmf.push_back((digit, duration)));
    }

    /// Ends the stream: the next read or write returns [`StreamError::Closed`].
    pub fn close(&self) {
        self.with(|s| s.closed = true);
    }

    /// Whether the stream was closed.
    pub fn is_closed(&self) -> bool {
        self.with(|s| s.closed)
    }

    /// The counters as of the last frame.
    pub fn stats(&self) -> StreamStats {
        self.with(|s| s.stats)
    }
}

/// A digit sink: called from the media thread for each RFC 4733 digit received.
pub type DtmfSink = Box<dyn FnMut(char) + Send>;

/// One call's RTP stream.
pub struct RtpStream {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    session: RtpSession,
    shared: Arc<Mutex<Shared>>,
    next_tick: Option<Instant>,
    next_rtcp: Option<Instant>,
    on_dtmf: Option<DtmfSink>,
    digits: VecDeque<char>,
    stats: StreamStats,
    device: String,
    /// Whether the RTP socket is in non-blocking mode (shared pacing).
    nonblocking: bool,
    /// Frames read in shared pacing, to look at the RTCP socket every few frames only.
    polls: u32,
}

impl std::fmt::Debug for RtpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtpStream")
            .field("local", &self.rtp.local_addr().ok())
            .finish_non_exhaustive()
    }
}

/// The receive buffer's size: larger than any datagram a peer that keeps to the path MTU
/// sends; a larger one is truncated and fails to parse.
const RECV_BUF: usize = 2048;

thread_local! {
    /// One receive buffer per reading thread (a frame-loop worker reads hundreds of
    /// streams), not one in every stream (2 MB at a thousand calls), and made once: a
    /// buffer on the stack would be zeroed every frame of every call (≈ 100 MB/s of
    /// memset at a thousand calls).
    static RECV: std::cell::RefCell<Box<[u8; RECV_BUF]>> =
        std::cell::RefCell::new(Box::new([0; RECV_BUF]));
}
const TICK: Duration = Duration::from_millis(20);
const RTCP_INTERVAL: Duration = Duration::from_secs(5);
/// At most this many datagrams are taken per frame in shared pacing: a flooding peer
/// cannot hold the loop that serves the other calls (the rest waits for the next tick or
/// is dropped by the kernel when the socket buffer fills).
const MAX_READS_PER_FRAME: usize = 32;
/// In shared pacing the RTCP socket is read every this many frames: reports come every
/// few seconds, and a syscall per frame for them is a quarter of the stream's I/O.
const RTCP_POLL_FRAMES: u32 = 10;

impl RtpStream {
    /// Binds a stream in `range` on `ip`. Parameters may be set later (the port is
    /// needed for the SDP before the answer is known): until then nothing is sent.
    pub fn bind(
        range: &PortRange,
        ip: IpAddr,
        params: SessionParams,
        jitter: JitterConfig,
    ) -> Result<(Self, RtpControl), StreamError> {
        let (rtp, rtcp) = range.bind(ip)?;
        rtcp.set_nonblocking(true)?;
        let device = format!("rtp:{}", rtp.local_addr()?);
        let shared = Arc::new(Mutex::new(Shared::default()));
        let s = Self {
            rtp,
            rtcp,
            session: RtpSession::new(params, jitter),
            shared: shared.clone(),
            next_tick: None,
            next_rtcp: None,
            on_dtmf: None,
            digits: VecDeque::new(),
            stats: StreamStats::default(),
            device,
            nonblocking: false,
            polls: 0,
        };
        Ok((s, RtpControl(shared)))
    }

    /// The local RTP address.
    pub fn local_addr(&self) -> Result<SocketAddr, StreamError> {
        Ok(self.rtp.local_addr()?)
    }

    /// Sample rate (8 kHz: G.711).
    pub fn sample_rate(&self) -> u32 {
        8000
    }

    /// Routes received digits to `sink` (called on the media thread) instead of
    /// [`RtpStream::take_dtmf`].
    pub fn set_dtmf_sink(&mut self, sink: DtmfSink) {
        self.on_dtmf = Some(sink);
    }

    /// The next digit received by RFC 4733 when no sink is set.
    pub fn take_dtmf(&mut self) -> Option<char> {
        self.digits.pop_front()
    }

    fn sync_control(&mut self) -> Result<(), StreamError> {
        let mut g = self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if g.closed {
            return Err(StreamError::Closed);
        }
        if let Some(p) = g.params.take() {
            self.session.update(p);
        }
        while let Some((d, dur)) = g.dtmf.pop_front() {
            self.session.queue_dtmf(d, dur);
        }
        self.stats.jitter = self.session.jitter_stats();
        g.stats = self.stats;
        Ok(())
    }

    fn handle(&mut self, data: &[u8], from: SocketAddr, now: Instant) {
        if is_rtcp(data) {
            if rtcp::parse(data).is_ok() {
                self.stats.rtcp_in += 1;
            }
            return;
        }
        self.stats.packets_in += 1;
        if let Incoming::Dtmf(d) = self.session.on_packet(data, from, now) {
            self.stats.digits_in += 1;
            match &mut self.on_dtmf {
                Some(sink) => sink(d),
                None => self.digits.push_back(d),
            }
        }
    }

    fn set_nonblocking(&mut self, on: bool) -> Result<(), StreamError> {
        if self.nonblocking != on {
            self.rtp.set_nonblocking(on)?;
            self.nonblocking = on;
        }
        Ok(())
    }

    /// Shared pacing: takes the datagrams that have arrived (at most
    /// [`MAX_READS_PER_FRAME`]) without waiting, then fills `frame` from the jitter
    /// buffer. The caller calls it once per 20 ms tick of its own clock.
    pub fn read_frame_now(&mut self, frame: &mut [i16]) -> Result<FrameStatus, StreamError> {
        self.sync_control()?;
        self.set_nonblocking(true)?;
        RECV.with_borrow_mut(|buf| self.receive_now(&mut buf[..]))?;
        Ok(self.session.pull(frame))
    }

    /// [`read_frame_now`](Self::read_frame_now)'s reads, into the thread's buffer.
    fn receive_now(&mut self, buf: &mut [u8]) -> Result<(), StreamError> {
        for _ in 0..MAX_READS_PER_FRAME {
            match self.rtp.recv_from(buf) {
                Ok((n, from)) => self.handle(&buf[..n], from, Instant::now()),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                // ICMP port unreachable from an earlier send surfaces here on Linux.
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Interrupted | ErrorKind::ConnectionRefused
                    ) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.polls = self.polls.wrapping_add(1);
        let now = Instant::now();
        if self.polls.is_multiple_of(RTCP_POLL_FRAMES) {
            while let Ok((n, from)) = self.rtcp.recv_from(buf) {
                self.handle(&buf[..n], from, now);
            }
            self.maybe_rtcp(now)?;
        }
        Ok(())
    }

    /// Blocks until the next 20 ms tick, receiving meanwhile, then fills `frame` from
    /// the jitter buffer.
    pub fn read_frame(&mut self, frame: &mut [i16]) -> Result<FrameStatus, StreamError> {
        self.sync_control()?;
        self.set_nonblocking(false)?;
        let start = Instant::now();
        let tick = *self.next_tick.get_or_insert(start + TICK);
        RECV.with_borrow_mut(|buf| self.receive_until(tick, &mut buf[..]))?;
        let now = Instant::now();
        // Absolute deadlines keep the pace; after a long stall, restart the clock.
        self.next_tick = Some(if now > tick + 5 * TICK {
            now + TICK
        } else {
            tick + TICK
        });
        self.maybe_rtcp(now)?;
        Ok(self.session.pull(frame))
    }

    /// [`read_frame`](Self::read_frame)'s reads until `tick`, into the thread's buffer.
    fn receive_until(&mut self, tick: Instant, buf: &mut [u8]) -> Result<(), StreamError> {
        // Receive until the tick; past it, still take what is already queued (a reader
        // that runs late must not starve the socket), bounded so a flood cannot stall us.
        let mut late_reads = 0;
        loop {
            let now = Instant::now();
            if now >= tick {
                late_reads += 1;
            }
            let wait = tick
                .saturating_duration_since(now)
                .max(Duration::from_micros(50));
            self.rtp.set_read_timeout(Some(wait))?;
            match self.rtp.recv_from(buf) {
                Ok((n, from)) => {
                    self.handle(&buf[..n], from, Instant::now());
                    if late_reads > 32 {
                        break;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) =>
                {
                    if Instant::now() >= tick {
                        break;
                    }
                }
                // ICMP port unreachable from an earlier send surfaces here on Linux.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
                Err(e) => return Err(e.into()),
            }
        }
        while let Ok((n, from)) = self.rtcp.recv_from(buf) {
            self.handle(&buf[..n], from, Instant::now());
        }
        Ok(())
    }

    /// Sends one 20 ms frame (or a telephone-event packet while digits are queued).
    /// Never blocks for long: a full socket buffer drops the packet.
    pub fn write_frame(&mut self, frame: &[i16]) -> Result<(), StreamError> {
        self.sync_control()?;
        if let Some((pkt, dest)) = self.session.push(frame) {
            match self.rtp.send_to(pkt, dest) {
                Ok(_) => self.stats.packets_out += 1,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::ConnectionRefused
                    ) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Queues a digit to send as RFC 4733 events over the next frames' writes. False
    /// when the peer did not negotiate telephone-event.
    pub fn send_dtmf(&mut self, digit: char, duration: Duration) -> bool {
        self.session.queue_dtmf(digit, duration)
    }

    /// Counters.
    pub fn stats(&self) -> StreamStats {
        StreamStats {
            jitter: self.session.jitter_stats(),
            ..self.stats
        }
    }

    fn maybe_rtcp(&mut self, now: Instant) -> Result<(), StreamError> {
        let due = *self.next_rtcp.get_or_insert(now + RTCP_INTERVAL);
        if now < due {
            return Ok(());
        }
        self.next_rtcp = Some(now + RTCP_INTERVAL);
        let Some(dest) = self.session.destination() else {
            return Ok(());
        };
        let dest = SocketAddr::new(dest.ip(), dest.port().wrapping_add(1));
        let block = self.session.report_block();
        let (packets, octets, ts) = self.session.send_counters();
        let pkt = if packets > 0 {
            rtcp::sender_report(
                self.session.ssrc(),
                SystemTime::now(),
                ts,
                packets,
                octets,
                block.as_ref(),
            )
        } else {
            rtcp::receiver_report(self.session.ssrc(), block.as_ref())
        };
        match self.rtcp.send_to(&pkt, dest) {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::ConnectionRefused
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl RtpStream {
    fn port_status(
        &self,
        read: Result<FrameStatus, StreamError>,
    ) -> Result<flowgate_line::FrameStatus, flowgate_line::PortError> {
        match read {
            Ok(FrameStatus::Received | FrameStatus::Concealed) => {
                Ok(flowgate_line::FrameStatus::Received)
            }
            Ok(FrameStatus::Missing) => Ok(flowgate_line::FrameStatus::Missing),
            Err(e) => Err(self.port_error("read", e)),
        }
    }

    /// The contract's error: `Closed` is the user agent ending the call (a BYE either
    /// way), the normal end of the stream, not a fault of the port.
    fn port_error(&self, op: &'static str, e: StreamError) -> flowgate_line::PortError {
        match e {
            StreamError::Closed => flowgate_line::PortError::Closed {
                device: self.device.clone(),
                detail: e.to_string(),
            },
            e => flowgate_line::PortError::Failed {
                device: self.device.clone(),
                op,
                detail: e.to_string(),
            },
        }
    }
}

/// The call-leg contract's port: the media layer drives a SIP call like any other leg.
/// Concealed frames (a lost or late packet covered by the jitter buffer) count as
/// `Received` — the buffer holds audio, not silence; `Missing` is silence.
impl flowgate_line::AudioPort for RtpStream {
    fn sample_rate(&self) -> u32 {
        8000
    }

    fn device(&self) -> &str {
        &self.device
    }

    fn read_frame(
        &mut self,
        frame: &mut [i16],
    ) -> Result<flowgate_line::FrameStatus, flowgate_line::PortError> {
        let read = RtpStream::read_frame(self, frame);
        self.port_status(read)
    }

    fn pacing(&self) -> flowgate_line::Pacing {
        flowgate_line::Pacing::Shared
    }

    fn read_frame_now(
        &mut self,
        frame: &mut [i16],
    ) -> Result<flowgate_line::FrameStatus, flowgate_line::PortError> {
        let read = RtpStream::read_frame_now(self, frame);
        self.port_status(read)
    }

    fn write_frame(&mut self, frame: &[i16]) -> Result<(), flowgate_line::PortError> {
        RtpStream::write_frame(self, frame).map_err(|e| self.port_error("write", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::{Codec, Direction};

    fn params(remote: Option<SocketAddr>) -> SessionParams {
        SessionParams {
            codec: Codec::Pcma,
            payload_type: 8,
            telephone_event: Some(101),
            remote,
            direction: Direction::SendRecv,
            symmetric: true,
        }
    }

    #[test]
    fn two_streams_exchange_audio_and_digits_over_loopback() {
        let range = PortRange::new(31_000, 31_999);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let (mut a, _actl) =
            RtpStream::bind(&range, ip, params(None), JitterConfig::default()).unwrap();
        let (mut b, bctl) =
            RtpStream::bind(&range, ip, params(None), JitterConfig::default()).unwrap();
        assert_eq!(a.local_addr().unwrap().port() % 2, 0);
        let mut pa = params(Some(b.local_addr().unwrap()));
        pa.remote = Some(b.local_addr().unwrap());
        a.session.update(pa);
        b.session.update(params(Some(a.local_addr().unwrap())));
        bctl.send_dtmf('9', Duration::from_millis(60));
        let tone = vec![4000i16; 160];
        let mut got_audio = 0;
        let mut frame = [0i16; 160];
        let t0 = Instant::now();
        for _ in 0..25 {
            a.write_frame(&tone).unwrap();
            b.write_frame(&tone).unwrap();
            if b.read_frame(&mut frame).unwrap() == FrameStatus::Received {
                got_audio += 1;
            }
            a.read_frame(&mut frame).unwrap();
        }
        // Paced by the streams' own 20 ms clocks (two reads per loop on separate clocks).
        assert!(
            t0.elapsed() >= Duration::from_millis(450),
            "{:?}",
            t0.elapsed()
        );
        assert!(
            got_audio >= 15,
            "{got_audio} {:?} {:?}",
            b.stats(),
            a.stats()
        );
        assert_eq!(a.take_dtmf(), Some('9'));
        bctl.close();
        assert!(matches!(b.read_frame(&mut frame), Err(StreamError::Closed)));
        // Through the contract's trait: the same stream is a `Box<dyn AudioPort>`.
        let mut port: Box<dyn flowgate_line::AudioPort> = Box::new(a);
        assert!(port.device().starts_with("rtp:127.0.0.1:"));
        assert_eq!(port.sample_rate(), 8000);
        port.write_frame(&tone).unwrap();
        assert!(port.read_frame(&mut frame).is_ok());
    }

    #[test]
    fn read_frame_now_takes_what_arrived_without_waiting() {
        let range = PortRange::new(33_000, 33_999);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let (mut a, _actl) =
            RtpStream::bind(&range, ip, params(None), JitterConfig::default()).unwrap();
        let (mut b, bctl) =
            RtpStream::bind(&range, ip, params(None), JitterConfig::default()).unwrap();
        a.session.update(params(Some(b.local_addr().unwrap())));
        b.session.update(params(Some(a.local_addr().unwrap())));
        let tone = vec![4000i16; 160];
        let mut frame = [0i16; 160];
        // Nothing sent yet: the read returns at once with silence.
        assert_eq!(b.read_frame_now(&mut frame).unwrap(), FrameStatus::Missing);
        let mut got_audio = 0;
        for _ in 0..25 {
            a.write_frame(&tone).unwrap();
            // Loopback delivers a datagram before `send_to` returns; wait only for that
            // one datagram to be readable (no timing assumption on the stream itself).
            wait_readable(&b.rtp);
            if b.read_frame_now(&mut frame).unwrap() == FrameStatus::Received {
                got_audio += 1;
            }
        }
        assert!(got_audio >= 15, "{got_audio} {:?}", b.stats());
        assert_eq!(b.stats().packets_in, 25);
        // The blocking mode still works on the same stream afterwards.
        assert!(b.read_frame(&mut frame).is_ok());
        bctl.close();
        assert!(matches!(
            b.read_frame_now(&mut frame),
            Err(StreamError::Closed)
        ));
        let port: Box<dyn flowgate_line::AudioPort> = Box::new(a);
        assert_eq!(port.pacing(), flowgate_line::Pacing::Shared);
    }

    /// A BYE closes the stream: through the contract that is the end of the stream, not a
    /// port failure (the media layer would warn about it on every hang-up otherwise).
    #[test]
    fn a_closed_stream_ends_the_port_as_closed_not_failed() {
        let range = PortRange::new(34_000, 34_999);
        let (s, ctl) = RtpStream::bind(
            &range,
            "127.0.0.1".parse().unwrap(),
            params(None),
            JitterConfig::default(),
        )
        .unwrap();
        let mut port: Box<dyn flowgate_line::AudioPort> = Box::new(s);
        let mut frame = [0i16; 160];
        assert!(port.read_frame_now(&mut frame).is_ok());
        ctl.close();
        let read = port.read_frame_now(&mut frame).unwrap_err();
        assert!(
            matches!(&read, flowgate_line::PortError::Closed { device, .. } if device.starts_with("rtp:")),
            "{read:?}"
        );
        assert!(port.read_frame(&mut frame).unwrap_err().is_closed());
        assert!(port.write_frame(&frame).unwrap_err().is_closed());
    }

    /// Blocks until `socket` (non-blocking: a stream in shared pacing) has a datagram
    /// queued, by a blocking peek with a generous timeout.
    fn wait_readable(socket: &UdpSocket) {
        socket.set_nonblocking(false).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut b = [0u8; 1];
        let _ = socket.peek_from(&mut b);
        socket.set_nonblocking(true).unwrap();
    }

    #[test]
    fn read_frame_keeps_time_without_packets() {
        let range = PortRange::new(32_000, 32_999);
        let (mut s, _c) = RtpStream::bind(
            &range,
            "127.0.0.1".parse().unwrap(),
            params(None),
            JitterConfig::default(),
        )
        .unwrap();
        let mut f = [1i16; 160];
        let t0 = Instant::now();
        for _ in 0..10 {
            assert_eq!(s.read_frame(&mut f).unwrap(), FrameStatus::Missing);
        }
        let e = t0.elapsed();
        assert!(
            e >= Duration::from_millis(195) && e < Duration::from_millis(600),
            "{e:?}"
        );
        assert!(f.iter().all(|&x| x == 0));
    }
}
