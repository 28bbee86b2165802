//! RTP and RTCP (RFC 3550) for G.711 voice: the packet codec, RFC 4733 telephone-events,
//! the adaptive jitter buffer, a sans-IO [`RtpSession`] that ties them together
//! (SSRC/sequence/timestamp handling, symmetric RTP latching, RTCP statistics), and the
//! blocking [`RtpStream`] on a UDP socket that the media layer reads 20 ms frames from.

pub mod dtmf;
pub mod jitter;
pub mod rtcp;
pub mod session;
pub mod stream;

pub use dtmf::{DtmfReceiver, DtmfSender};
pub use jitter::{FrameStatus, JitterBuffer, JitterConfig};
pub use session::{RtpSession, SessionParams};
pub use stream::{PortRange, RtpControl, RtpStream, StreamError};

use thiserror::Error;

/// Samples per 20 ms frame at 8 kHz.
pub const FRAME: usize = 160;

/// Errors of the RTP packet codec.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RtpError {
    /// Shorter than its header says.
    #[error("truncated RTP packet")]
    Truncated,
    /// Version is not 2.
    #[error("not RTP version 2")]
    Version,
}

/// A parsed RTP packet, borrowing its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// Marker bit.
    pub marker: bool,
    /// Payload type.
    pub payload_type: u8,
    /// Sequence number.
    pub seq: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// SSRC.
    pub ssrc: u32,
    /// Payload (padding removed, CSRCs and extension skipped).
    pub payload: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    /// Parses a packet.
    pub fn parse(b: &'a [u8]) -> Result<Self, RtpError> {
        if b.len() < 12 {
            return Err(RtpError::Truncated);
        }
        if b[0] >> 6 != 2 {
            return Err(RtpError::Version);
        }
        let padding = b[0] & 0x20 != 0;
        let extension = b[0] & 0x10 != 0;
        let cc = usize::from(b[0] & 0x0f);
        let mut off = 12 + 4 * cc;
        if extension {
            let ext = b.get(off..off + 4).ok_or(RtpError::Truncated)?;
            off += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        }
        let mut end = b.len();
        if padding {
            let pad = usize::from(*b.last().ok_or(RtpError::Truncated)?);
            end = end.checked_sub(pad).ok_or(RtpError::Truncated)?;
        }
        let payload = b.get(off..end).ok_or(RtpError::Truncated)?;
        Ok(Self {
            marker: b[1] & 0x80 != 0,
            payload_type: b[1] & 0x7f,
            seq: u16::from_be_bytes([b[2], b[3]]),
            timestamp: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            payload,
        })
    }

    /// Writes a packet (no CSRC, no extension) into `out`, replacing its contents.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.clear();
        out.reserve(12 + self.payload.len());
        out.push(0x80);
        out.push((u8::from(self.marker) << 7) | (self.payload_type & 0x7f));
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(self.payload);
    }
}

/// Whether a datagram on an RTP port is RTCP (RFC 5761 §4: PT 200–204 in byte 1).
pub fn is_rtcp(b: &[u8]) -> bool {
    b.len() >= 8 && (200..=204).contains(&b[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let p = RtpPacket {
            marker: true,
            payload_type: 8,
            seq: 65535,
            timestamp: 7,
            ssrc: 0xdead_beef,
            payload: &[1, 2, 3],
        };
        let mut b = Vec::new();
        p.write(&mut b);
        assert_eq!(RtpPacket::parse(&b).unwrap(), p);
        assert_eq!(RtpPacket::parse(&b[..11]), Err(RtpError::Truncated));
        b[0] = 0x40;
        assert_eq!(RtpPacket::parse(&b), Err(RtpError::Version));
        // Padding longer than the packet.
        let bad = [0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200];
        assert_eq!(RtpPacket::parse(&bad), Err(RtpError::Truncated));
        // CSRC count pointing past the end.
        let bad = [0x8f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(RtpPacket::parse(&bad), Err(RtpError::Truncated));
    }
}
