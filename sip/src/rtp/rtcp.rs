//! Minimal RTCP (RFC 3550 §6.4): sender and receiver reports with one report block,
//! plus a parser for compound packets (SR, RR; other types are skipped). Wall-clock
//! time is an input.

use std::time::{SystemTime, UNIX_EPOCH};

use thiserror::Error;

/// RTCP parse errors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RtcpError {
    /// Too short, a length field pointing past the end, or not version 2.
    #[error("malformed RTCP packet")]
    Malformed,
}

/// One report block (about one source we receive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source reported on.
    pub ssrc: u32,
    /// Fraction lost since the last report, /256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed, clamped).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter, timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the last SR's NTP time.
    pub lsr: u32,
    /// Delay since that SR, 1/65536 s.
    pub dlsr: u32,
}

/// A parsed RTCP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    /// Sender report.
    Sr {
        /// Sender SSRC.
        ssrc: u32,
        /// NTP timestamp (64-bit).
        ntp: u64,
        /// RTP timestamp.
        rtp_ts: u32,
        /// Packets sent.
        packets: u32,
        /// Octets sent.
        octets: u32,
        /// Report blocks.
        reports: Vec<ReportBlock>,
    },
    /// Receiver report.
    Rr {
        /// Reporter SSRC.
        ssrc: u32,
        /// Report blocks.
        reports: Vec<ReportBlock>,
    },
    /// Any other type (SDES, BYE, APP, feedback), by packet type.
    Other(u8),
}

/// The 64-bit NTP timestamp of a wall-clock time.
pub fn ntp(t: SystemTime) -> u64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() + 2_208_988_800;
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

fn write_block(out: &mut Vec<u8>, b: &ReportBlock) {
    out.extend_from_slice(&b.ssrc.to_be_bytes());
    let lost = b.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff);
    let lost = lost.to_be_bytes();
    out.extend_from_slice(&[b.fraction_lost, lost[1], lost[2], lost[3]]);
    out.extend_from_slice(&b.highest_seq.to_be_bytes());
    out.extend_from_slice(&b.jitter.to_be_bytes());
    out.extend_from_slice(&b.lsr.to_be_bytes());
    out.extend_from_slice(&b.dlsr.to_be_bytes());
}

fn header(out: &mut Vec<u8>, count: u8, pt: u8, words_minus_one: u16) {
    out.push(0x80 | (count & 0x1f));
    out.push(pt);
    out.extend_from_slice(&words_minus_one.to_be_bytes());
}

/// A sender report (with a report block when we also receive).
pub fn sender_report(
    ssrc: u32,
    wall: SystemTime,
    rtp_ts: u32,
    packets: u32,
    octets: u32,
    block: Option<&ReportBlock>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(52);
    let n = u8::from(block.is_some());
    header(&mut out, n, 200, 6 + 6 * u16::from(n));
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(&ntp(wall).to_be_bytes());
    out.extend_from_slice(&rtp_ts.to_be_bytes());
    out.extend_from_slice(&packets.to_be_bytes());
    out.extend_from_slice(&octets.to_be_bytes());
    if let Some(b) = block {
        write_block(&mut out, b);
    }
    out
}

/// A receiver report.
pub fn receiver_report(ssrc: u32, block: Option<&ReportBlock>) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    let n = u8::from(block.is_some());
    header(&mut out, n, 201, 1 + 6 * u16::from(n));
    out.extend_from_slice(&ssrc.to_be_bytes());
    if let Some(b) = block {
        write_block(&mut out, b);
    }
    out
}

fn u32_at(b: &[u8], i: usize) -> Result<u32, RtcpError> {
    let s = b.get(i..i + 4).ok_or(RtcpError::Malformed)?;
    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn blocks(b: &[u8], at: usize, n: usize) -> Result<Vec<ReportBlock>, RtcpError> {
    (0..n)
        .map(|i| {
            let o = at + 24 * i;
            let lost = b.get(o + 5..o + 8).ok_or(RtcpError::Malformed)?;
            let sign = if lost[0] & 0x80 != 0 { 0xff } else { 0 };
            Ok(ReportBlock {
                ssrc: u32_at(b, o)?,
                fraction_lost: *b.get(o + 4).ok_or(RtcpError::Malformed)?,
                cumulative_lost: i32::from_be_bytes([sign, lost[0], lost[1], lost[2]]),
                highest_seq: u32_at(b, o + 8)?,
                jitter: u32_at(b, o + 12)?,
                lsr: u32_at(b, o + 16)?,
                dlsr: u32_at(b, o + 20)?,
            })
        })
        .collect()
}

/// Parses a compound RTCP packet.
pub fn parse(mut b: &[u8]) -> Result<Vec<RtcpPacket>, RtcpError> {
    let mut out = Vec::new();
    while !b.is_empty() {
        if b.len() < 4 || b[0] >> 6 != 2 || out.len() > 16 {
            return Err(RtcpError::Malformed);
        }
        let count = usize::from(b[0] & 0x1f);
        let pt = b[1];
        let len = (usize::from(u16::from_be_bytes([b[2], b[3]])) + 1) * 4;
        let p = b.get(..len).ok_or(RtcpError::Malformed)?;
        out.push(match pt {
            200 => {
                if p.len() < 28 + 24 * count {
                    return Err(RtcpError::Malformed);
                }
                RtcpPacket::Sr {
                    ssrc: u32_at(p, 4)?,
                    ntp: (u64::from(u32_at(p, 8)?) << 32) | u64::from(u32_at(p, 12)?),
                    rtp_ts: u32_at(p, 16)?,
                    packets: u32_at(p, 20)?,
                    octets: u32_at(p, 24)?,
                    reports: blocks(p, 28, count)?,
                }
            }
            201 => {
                if p.len() < 8 + 24 * count {
                    return Err(RtcpError::Malformed);
                }
                RtcpPacket::Rr {
                    ssrc: u32_at(p, 4)?,
                    reports: blocks(p, 8, count)?,
                }
            }
            other => RtcpPacket::Other(other),
        });
        b = &b[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sr_and_rr_round_trip() {
        let block = ReportBlock {
            ssrc: 9,
            fraction_lost: 12,
            cumulative_lost: -3,
            highest_seq: 70_000,
            jitter: 44,
            lsr: 5,
            dlsr: 6,
        };
        let wall = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let mut compound = sender_report(1, wall, 160, 10, 1600, Some(&block));
        compound.extend(receiver_report(2, None));
        let p = parse(&compound).unwrap();
        assert_eq!(
            p[0],
            RtcpPacket::Sr {
                ssrc: 1,
                ntp: ntp(wall),
                rtp_ts: 160,
                packets: 10,
                octets: 1600,
                reports: vec![block]
            }
        );
        assert_eq!(
            p[1],
            RtcpPacket::Rr {
                ssrc: 2,
                reports: vec![]
            }
        );
        assert_eq!(ntp(wall) >> 32, 1_700_000_000 + 2_208_988_800);
        assert!(parse(&compound[..10]).is_err());
        assert!(parse(&[0x81, 200, 0, 0]).is_err());
    }
}
