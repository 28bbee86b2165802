//! SDP (RFC 4566) and the offer/answer model (RFC 3264) for G.711 voice: PCMU (0),
//! PCMA (8), `telephone-event` (RFC 4733, dynamic PT), ptime 20, direction attributes
//! for hold, connection address and port.
//!
//! The answer picks the first codec of the *offer* that this side supports (RFC 3264
//! §6.1: the answerer should keep the offerer's preference), answers every other m-line
//! with port 0, and mirrors the direction (`sendonly` ↔ `recvonly`). No common codec is
//! [`SdpError::NoCommonCodec`], which the user agent answers `488`.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use thiserror::Error;

/// Errors of SDP parsing and negotiation.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SdpError {
    /// The body is not SDP this stack can read.
    #[error("malformed SDP: {0}")]
    Malformed(String),
    /// No audio stream, or no codec in common: answer 488.
    #[error("no common codec")]
    NoCommonCodec,
}

/// A voice codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, static PT 0.
    Pcmu,
    /// G.711 A-law, static PT 8.
    Pcma,
}

impl Codec {
    /// The static payload type.
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The encoding name.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// By encoding name, case-insensitively.
    pub fn from_name(s: &str) -> Option<Codec> {
        if s.eq_ignore_ascii_case("PCMU") {
            Some(Codec::Pcmu)
        } else if s.eq_ignore_ascii_case("PCMA") {
            Some(Codec::Pcma)
        } else {
            None
        }
    }

    /// The G.711 law for `flowgate_dsp::g711`.
    pub fn law(self) -> flowgate_dsp::g711::Law {
        match self {
            Codec::Pcmu => flowgate_dsp::g711::Law::Ulaw,
            Codec::Pcma => flowgate_dsp::g711::Law::Alaw,
        }
    }
}

/// Media direction (RFC 3264 §5.1, §8.4 for hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Both ways.
    SendRecv,
    /// This side only sends (it holds the peer).
    SendOnly,
    /// This side only receives.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    /// The attribute name.
    pub fn attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction the answerer uses for an offer of `self`.
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    /// Whether media flows from this side.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether media flows to this side.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// One m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, …
    pub kind: String,
    /// Port (0 = rejected/disabled stream).
    pub port: u16,
    /// Transport protocol (`RTP/AVP`).
    pub proto: String,
    /// Payload types in preference order.
    pub formats: Vec<u8>,
    /// `a=rtpmap` entries: (PT, encoding name, clock rate).
    pub rtpmap: Vec<(u8, String, u32)>,
    /// `a=ptime`, ms.
    pub ptime: Option<u32>,
    /// Direction (sendrecv when absent, inheriting a session-level attribute).
    pub direction: Direction,
    /// Media-level `c=` address.
    pub connection: Option<IpAddr>,
}

impl Media {
    /// Resolves a PT to an encoding name (static table for 0 and 8).
    pub fn encoding(&self, pt: u8) -> Option<(&str, u32)> {
        if let Some((_, n, r)) = self.rtpmap.iter().find(|(p, _, _)| *p == pt) {
            return Some((n.as_str(), *r));
        }
        match pt {
            0 => Some(("PCMU", 8000)),
            8 => Some(("PCMA", 8000)),
            _ => None,
        }
    }
}

/// A parsed session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    /// `o=` session id.
    pub session_id: u64,
    /// `o=` version.
    pub version: u64,
    /// Session-level `c=` address.
    pub connection: Option<IpAddr>,
    /// The m-lines.
    pub media: Vec<Media>,
}

fn parse_c(v: &str) -> Result<IpAddr, SdpError> {
    let mut it = v.split_ascii_whitespace();
    match (it.next(), it.next(), it.next()) {
        (Some("IN"), Some("IP4" | "IP6"), Some(a)) => {
            // Multicast TTL suffix (`/127`) is not for a voice gateway.
            a.split('/')
                .next()
                .unwrap_or_default()
                .parse()
                .map_err(|_| SdpError::Malformed(format!("c={v}")))
        }
        _ => Err(SdpError::Malformed(format!("c={v}"))),
    }
}

impl Sdp {
    /// Parses an SDP body (LF or CRLF lines).
    pub fn parse(body: &[u8]) -> Result<Self, SdpError> {
        let text =
            std::str::from_utf8(body).map_err(|_| SdpError::Malformed("not UTF-8".into()))?;
        let mut sdp = Sdp {
            session_id: 0,
            version: 0,
            connection: None,
            media: Vec::new(),
        };
        let mut session_dir = Direction::SendRecv;
        let mut seen_v = false;
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| SdpError::Malformed(line.to_owned()))?;
            match k {
                "v" => {
                    if v != "0" {
                        return Err(SdpError::Malformed(format!("v={v}")));
                    }
                    seen_v = true;
                }
                "o" => {
                    let f: Vec<&str> = v.split_ascii_whitespace().collect();
                    if f.len() != 6 {
                        return Err(SdpError::Malformed(format!("o={v}")));
                    }
                    sdp.session_id = f[1].parse().unwrap_or(0);
                    sdp.version = f[2].parse().unwrap_or(0);
                }
                "c" => {
                    let ip = parse_c(v)?;
                    match sdp.media.last_mut() {
                        Some(m) => m.connection = Some(ip),
                        None => sdp.connection = Some(ip),
                    }
                }
                "m" => {
                    if sdp.media.len() >= 16 {
                        return Err(SdpError::Malformed("too many m-lines".into()));
                    }
                    let f: Vec<&str> = v.split_ascii_whitespace().collect();
                    if f.len() < 3 {
                        return Err(SdpError::Malformed(format!("m={v}")));
                    }
                    let port = f[1].split('/').next().unwrap_or_default();
                    let port = port
                        .parse()
                        .map_err(|_| SdpError::Malformed(format!("m={v}")))?;
                    let formats = if f[2].starts_with("RTP/") {
                        f[3..]
                            .iter()
                            .map(|p| {
                                p.parse::<u8>()
                                    .map_err(|_| SdpError::Malformed(format!("m={v}")))
                            })
                            .collect::<Result<_, _>>()?
                    } else {
                        Vec::new()
                    };
                    sdp.media.push(Media {
                        kind: f[0].to_owned(),
                        port,
                        proto: f[2].to_owned(),
                        formats,
                        rtpmap: Vec::new(),
                        ptime: None,
                        direction: session_dir,
                        connection: None,
                    });
                }
                "a" => {
                    let (name, value) = v.split_once(':').unwrap_or((v, ""));
                    let dir = match name {
                        "sendrecv" => Some(Direction::SendRecv),
                        "sendonly" => Some(Direction::SendOnly),
                        "recvonly" => Some(Direction::RecvOnly),
                        "inactive" => Some(Direction::Inactive),
                        _ => None,
                    };
                    match (sdp.media.last_mut(), dir) {
                        (None, Some(d)) => session_dir = d,
                        (Some(m), Some(d)) => m.direction = d,
                        (Some(m), None) if name == "rtpmap" => {
                            let (pt, enc) = value
                                .split_once(' ')
                                .ok_or_else(|| SdpError::Malformed(line.to_owned()))?;
                            let pt = pt
                                .parse()
                                .map_err(|_| SdpError::Malformed(line.to_owned()))?;
                            let mut e = enc.trim().split('/');
                            let name = e.next().unwrap_or_default().to_owned();
                            let rate = e.next().and_then(|r| r.parse().ok()).unwrap_or(8000);
                            if m.rtpmap.len() < 64 {
                                m.rtpmap.push((pt, name, rate));
                            }
                        }
                        (Some(m), None) if name == "ptime" => m.ptime = value.trim().parse().ok(),
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        if !seen_v {
            return Err(SdpError::Malformed("no v= line".into()));
        }
        Ok(sdp)
    }

    /// The first audio m-line with a non-zero port.
    pub fn audio(&self) -> Option<&Media> {
        self.media.iter().find(|m| m.kind == "audio" && m.port != 0)
    }

    /// Where the audio stream of this description goes (`None`: held with 0.0.0.0 or
    /// no audio).
    pub fn audio_addr(&self) -> Option<SocketAddr> {
        let m = self.audio()?;
        let ip = m.connection.or(self.connection)?;
        (!ip.is_unspecified()).then_some(SocketAddr::new(ip, m.port))
    }
}

/// This side's media parameters for building offers and answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// Address in `c=` and `o=`.
    pub addr: IpAddr,
    /// RTP port.
    pub port: u16,
    /// Codecs in preference order.
    pub codecs: Vec<Codec>,
    /// PT offered for telephone-event (None: do not offer RFC 4733).
    pub telephone_event: Option<u8>,
    /// The direction this side wants.
    pub direction: Direction,
    /// `o=` session id.
    pub session_id: u64,
    /// `o=` version, incremented for every new offer/answer in a session.
    pub version: u64,
}

/// What offer/answer settled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The codec to send (and expect).
    pub codec: Codec,
    /// Its payload type.
    pub payload_type: u8,
    /// The peer's telephone-event PT, if both sides do RFC 4733.
    pub telephone_event: Option<u8>,
    /// Where to send RTP (None: the peer is on hold with 0.0.0.0, or `inactive`).
    pub remote: Option<SocketAddr>,
    /// This side's direction.
    pub direction: Direction,
    /// Packetization time, ms.
    pub ptime: u32,
}

fn write_sdp(
    local: &LocalMedia,
    formats: &[(u8, &str, u32)],
    te: Option<u8>,
    dir: Direction,
    port: u16,
) -> String {
    let ipv = if local.addr.is_ipv4() { "IP4" } else { "IP6" };
    let mut s = String::with_capacity(256);
    let _ = write!(
        s,
        "v=0\r\no=flowgate {} {} IN {ipv} {}\r\ns=flowgate\r\nc=IN {ipv} {}\r\nt=0 0\r\n",
        local.session_id, local.version, local.addr, local.addr
    );
    let mut pts: Vec<String> = formats.iter().map(|(p, _, _)| p.to_string()).collect();
    if let Some(te) = te {
        pts.push(te.to_string());
    }
    let _ = write!(s, "m=audio {port} RTP/AVP {}\r\n", pts.join(" "));
    for (pt, name, rate) in formats {
        let _ = write!(s, "a=rtpmap:{pt} {name}/{rate}\r\n");
    }
    if let Some(te) = te {
        let _ = write!(
            s,
            "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\n"
        );
    }
    let _ = write!(s, "a=ptime:20\r\na={}\r\n", dir.attr());
    s
}

/// Builds an offer.
pub fn offer(local: &LocalMedia) -> String {
    let f: Vec<(u8, &str, u32)> = local
        .codecs
        .iter()
        .map(|c| (c.payload_type(), c.name(), 8000))
        .collect();
    write_sdp(
        local,
        &f,
        local.telephone_event,
        local.direction,
        local.port,
    )
}

fn te_pt(m: &Media) -> Option<u8> {
    m.formats.iter().copied().find(|pt| {
        m.encoding(*pt)
            .is_some_and(|(n, r)| n.eq_ignore_ascii_case("telephone-event") && r == 8000)
    })
}

/// Answers an offer: the first offered codec this side supports. `local.direction` is
/// what this side wants (sendrecv, or sendonly to hold); the result combines it with
/// the offer's.
pub fn answer(offer: &Sdp, local: &LocalMedia) -> Result<(String, Negotiated), SdpError> {
    let m = offer.audio().ok_or(SdpError::NoCommonCodec)?;
    if !m.proto.starts_with("RTP/AVP") {
        return Err(SdpError::NoCommonCodec);
    }
    let (pt, codec) = m
        .formats
        .iter()
        .find_map(|pt| {
            let (name, rate) = m.encoding(*pt)?;
            let c = Codec::from_name(name).filter(|_| rate == 8000)?;
            local.codecs.contains(&c).then_some((*pt, c))
        })
        .ok_or(SdpError::NoCommonCodec)?;
    let te = te_pt(m).filter(|_| local.telephone_event.is_some());
    let held_by_addr = m
        .connection
        .or(offer.connection)
        .is_some_and(|ip| ip.is_unspecified());
    let offered = if held_by_addr {
        Direction::SendOnly
    } else {
        m.direction
    };
    let dir = combine(offered.answer(), local.direction);
    let mut body = write_sdp(local, &[(pt, codec.name(), 8000)], te, dir, local.port);
    // Every other m-line of the offer is refused with port 0, in order (RFC 3264 §6).
    let mut extra = String::new();
    let mut seen_audio = false;
    for om in &offer.media {
        if !seen_audio && std::ptr::eq(om, m) {
            seen_audio = true;
            continue;
        }
        let _ = write!(
            extra,
            "m={} 0 {} {}\r\n",
            om.kind,
            om.proto,
            om.formats
                .first()
                .map(u8::to_string)
                .unwrap_or_else(|| "0".into())
        );
    }
    // Keep m-line order: declined lines before the accepted one go first.
    let idx = offer
        .media
        .iter()
        .position(|x| std::ptr::eq(x, m))
        .unwrap_or(0);
    if idx > 0 || !extra.is_empty() {
        let (head, audio) = body.split_at(body.find("m=audio").unwrap_or(body.len()));
        let mut before = String::new();
        let mut after = String::new();
        for (i, om) in offer.media.iter().enumerate() {
            if i == idx {
                continue;
            }
            let line = format!(
                "m={} 0 {} {}\r\n",
                om.kind,
                om.proto,
                om.formats
                    .first()
                    .map(u8::to_string)
                    .unwrap_or_else(|| "0".into())
            );
            if i < idx {
                before.push_str(&line);
            } else {
                after.push_str(&line);
            }
        }
        body = format!("{head}{before}{audio}{after}");
    }
    let remote = offer.audio_addr().filter(|_| dir != Direction::Inactive);
    let ptime = m.ptime.unwrap_or(20);
    Ok((
        body,
        Negotiated {
            codec,
            payload_type: pt,
            telephone_event: te,
            remote,
            direction: dir,
            ptime,
        },
    ))
}

/// Combines what the offer allows this side with what this side wants.
fn combine(allowed: Direction, wanted: Direction) -> Direction {
    let send = allowed.sends() && wanted.sends();
    let recv = allowed.receives() && wanted.receives();
    match (send, recv) {
        (true, true) => Direction::SendRecv,
        (true, false) => Direction::SendOnly,
        (false, true) => Direction::RecvOnly,
        (false, false) => Direction::Inactive,
    }
}

/// Reads the answer to an offer this side made.
pub fn accept_answer(local: &LocalMedia, answer: &Sdp) -> Result<Negotiated, SdpError> {
    let m = answer.audio().ok_or(SdpError::NoCommonCodec)?;
    let (pt, codec) = m
        .formats
        .iter()
        .find_map(|pt| {
            let (name, _) = m.encoding(*pt)?;
            let c = Codec::from_name(name)?;
            local.codecs.contains(&c).then_some((*pt, c))
        })
        .ok_or(SdpError::NoCommonCodec)?;
    let te = te_pt(m).filter(|_| local.telephone_event.is_some());
    let dir = combine(m.direction.answer(), local.direction);
    let remote = answer.audio_addr().filter(|_| dir != Direction::Inactive);
    Ok(Negotiated {
        codec,
        payload_type: pt,
        telephone_event: te,
        remote,
        direction: dir,
        ptime: m.ptime.unwrap_or(20),
    })
}

/// A wildcard address used when nothing better is known.
pub const UNSPECIFIED: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

#[cfg(test)]
mod tests {
    use super::*;

    fn local(dir: Direction) -> LocalMedia {
        LocalMedia {
            addr: "127.0.0.1".parse().unwrap(),
            port: 20000,
            codecs: vec![Codec::Pcmu, Codec::Pcma],
            telephone_event: Some(101),
            direction: dir,
            session_id: 1,
            version: 1,
        }
    }

    const SIPP_OFFER: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 0 96\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:96 telephone-event/8000\r\n";

    #[test]
    fn answers_first_common_codec_of_the_offer() {
        let offer = Sdp::parse(SIPP_OFFER.as_bytes()).unwrap();
        let (body, n) = answer(&offer, &local(Direction::SendRecv)).unwrap();
        assert_eq!(n.codec, Codec::Pcma);
        assert_eq!(n.telephone_event, Some(96));
        assert_eq!(n.remote, Some("127.0.0.1:6000".parse().unwrap()));
        assert!(body.contains("m=audio 20000 RTP/AVP 8 96\r\n"));
        assert!(body.contains("a=sendrecv"));
        let back = Sdp::parse(body.as_bytes()).unwrap();
        assert_eq!(
            accept_answer(&local(Direction::SendRecv), &back)
                .unwrap()
                .codec,
            Codec::Pcma
        );
    }

    #[test]
    fn no_common_codec_is_an_error() {
        let o = SIPP_OFFER
            .replace("8 0 96", "18 96")
            .replace("a=rtpmap:8 PCMA/8000", "a=rtpmap:18 G729/8000");
        assert_eq!(
            answer(
                &Sdp::parse(o.as_bytes()).unwrap(),
                &local(Direction::SendRecv)
            ),
            Err(SdpError::NoCommonCodec)
        );
    }

    #[test]
    fn hold_directions_mirror() {
        let o = format!("{SIPP_OFFER}a=sendonly\r\n");
        let (body, n) = answer(
            &Sdp::parse(o.as_bytes()).unwrap(),
            &local(Direction::SendRecv),
        )
        .unwrap();
        assert_eq!(n.direction, Direction::RecvOnly);
        assert!(body.contains("a=recvonly"));
        let o = format!("{SIPP_OFFER}a=inactive\r\n");
        let (_, n) = answer(
            &Sdp::parse(o.as_bytes()).unwrap(),
            &local(Direction::SendRecv),
        )
        .unwrap();
        assert_eq!((n.direction, n.remote), (Direction::Inactive, None));
        // RFC 2543 hold: c=0.0.0.0.
        let o = SIPP_OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
        let (_, n) = answer(
            &Sdp::parse(o.as_bytes()).unwrap(),
            &local(Direction::SendRecv),
        )
        .unwrap();
        assert_eq!((n.direction, n.remote), (Direction::RecvOnly, None));
        // We hold the peer: our offer says sendonly.
        assert!(offer(&local(Direction::SendOnly)).contains("a=sendonly"));
    }

    #[test]
    fn declined_streams_keep_their_place() {
        let o = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=video 5000 RTP/AVP 31\r\nm=audio 6000 RTP/AVP 0\r\n";
        let (body, _) = answer(
            &Sdp::parse(o.as_bytes()).unwrap(),
            &local(Direction::SendRecv),
        )
        .unwrap();
        let v = body.find("m=video 0").unwrap();
        let a = body.find("m=audio 20000").unwrap();
        assert!(v < a);
        assert!(Sdp::parse(b"garbage").is_err());
    }
}
