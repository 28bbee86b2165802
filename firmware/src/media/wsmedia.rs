//! The wire formats of the WebSocket media stream (`GET /v1.0/calls/{id}/media_stream`), as
//! VoIPBIN defines them: 8 kHz, 16-bit signed linear, mono, little-endian, 20 ms (160
//! samples, 320 bytes) per binary WebSocket message, in one of three encapsulations:
//!
//! | `encapsulation` | one message |
//! |---|---|
//! | `sln` | the 320 bytes of PCM, nothing else |
//! | `rtp` | a 12-byte RTP header (payload type 96 = L16/8000/1 by convention: there is no SDP; sequence +1 and timestamp +160 per message, marker on the first) and the PCM |
//! | `audiosocket` | Asterisk AudioSocket messages: kind `0x10` (audio), a 2-byte big-endian length, the PCM |
//!
//! Sans-IO: [`Encoder`] turns a frame into a message, [`Decoder`] turns the client's messages
//! into 20 ms frames (whatever sizes the client sends; the remainder waits for the next
//! message, so nothing is lost or reordered). Malformed messages are errors, never panics;
//! the shell skips them. AudioSocket's hang-up message (kind `0x00`) says the client is done;
//! its id, DTMF and error messages carry nothing for the call and are skipped.

use flowgate_sip::rtp::RtpPacket;
use thiserror::Error;

/// The stream's sample rate.
pub const RATE: u32 = 8000;
/// Samples per message (20 ms).
pub const FRAME: usize = 160;
/// RTP payload type of the stream (dynamic; L16/8000/1 by VoIPBIN's convention).
pub const RTP_PAYLOAD_TYPE: u8 = 96;

const AUDIOSOCKET_HANGUP: u8 = 0x00;
const AUDIOSOCKET_AUDIO: u8 = 0x10;
const AUDIOSOCKET_HEADER: usize = 3;

/// What is wrong with a stream request or a client's message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WsMediaError {
    /// An encapsulation the stream does not have.
    #[error("encapsulation {0:?} is not one of rtp, sln, audiosocket")]
    Encapsulation(String),
    /// A message that is not RTP.
    #[error("not an RTP packet: {0}")]
    Rtp(String),
    /// RTP with another payload than the stream's L16.
    #[error("RTP payload type {0}: the stream carries L16 as payload type 96")]
    PayloadType(u8),
    /// A malformed AudioSocket message.
    #[error("AudioSocket: {0}")]
    AudioSocket(String),
}

/// How the stream's audio is wrapped in each WebSocket message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encapsulation {
    /// RTP header + PCM.
    Rtp,
    /// Bare PCM.
    Sln,
    /// AudioSocket audio messages.
    Audiosocket,
}

impl Encapsulation {
    /// Parses VoIPBIN's name.
    ///
    /// # Errors
    /// [`WsMediaError::Encapsulation`] for anything else (names are lower case).
    pub fn parse(value: &str) -> Result<Self, WsMediaError> {
        match value {
            "rtp" => Ok(Encapsulation::Rtp),
            "sln" => Ok(Encapsulation::Sln),
            "audiosocket" => Ok(Encapsulation::Audiosocket),
            other => Err(WsMediaError::Encapsulation(other.to_owned())),
        }
    }

    /// VoIPBIN's name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Encapsulation::Rtp => "rtp",
            Encapsulation::Sln => "sln",
            Encapsulation::Audiosocket => "audiosocket",
        }
    }
}

/// Turns the call's 8 kHz frames into messages for the client.
#[derive(Debug)]
pub struct Encoder {
    encapsulation: Encapsulation,
    seq: u16,
    timestamp: u32,
    ssrc: u32,
    first: bool,
    pcm: Vec<u8>,
}

impl Encoder {
    /// An encoder; `ssrc` and `seq` seed the RTP header (random per stream in the shell).
    #[must_use]
    pub fn new(encapsulation: Encapsulation, ssrc: u32, seq: u16) -> Self {
        Self {
            encapsulation,
            seq,
            timestamp: 0,
            ssrc,
            first: true,
            pcm: Vec::with_capacity(FRAME * 2),
        }
    }

    /// One message carrying `frame` (8 kHz samples; 160 of them in a 20 ms stream).
    pub fn encode(&mut self, frame: &[i16]) -> Vec<u8> {
        self.pcm.clear();
        for s in frame {
            self.pcm.extend_from_slice(&s.to_le_bytes());
        }
        match self.encapsulation {
            Encapsulation::Sln => self.pcm.clone(),
            Encapsulation::Audiosocket => {
                let len = u16::try_from(self.pcm.len()).unwrap_or(u16::MAX);
                let mut out = Vec::with_capacity(AUDIOSOCKET_HEADER + self.pcm.len());
                out.push(AUDIOSOCKET_AUDIO);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&self.pcm[..usize::from(len)]);
                out
            }
            Encapsulation::Rtp => {
                let mut out = Vec::with_capacity(12 + self.pcm.len());
                RtpPacket {
                    marker: self.first,
                    payload_type: RTP_PAYLOAD_TYPE,
                    seq: self.seq,
                    timestamp: self.timestamp,
                    ssrc: self.ssrc,
                    payload: &self.pcm,
                }
                .write(&mut out);
                self.first = false;
                self.seq = self.seq.wrapping_add(1);
                let samples = u32::try_from(frame.len()).unwrap_or(u32::MAX);
                self.timestamp = self.timestamp.wrapping_add(samples);
                out
            }
        }
    }
}

/// What a client's message meant besides its audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Said {
    /// Audio (or nothing for the call); the stream goes on.
    Audio,
    /// The client hung up its side (AudioSocket kind `0x00`).
    Hangup,
}

/// Turns the client's messages into 20 ms frames at 8 kHz.
#[derive(Debug)]
pub struct Decoder {
    encapsulation: Encapsulation,
    /// Samples of an unfinished frame (fewer than [`FRAME`]).
    pending: Vec<i16>,
    /// The first byte of a sample split across two `sln` messages.
    odd: Option<u8>,
}

impl Decoder {
    /// A decoder for one stream.
    #[must_use]
    pub fn new(encapsulation: Encapsulation) -> Self {
        Self {
            encapsulation,
            pending: Vec::with_capacity(FRAME),
            odd: None,
        }
    }

    /// Feeds one message; each complete frame goes to `frame`, in order.
    ///
    /// # Errors
    /// A message that does not parse; frames already complete before the fault were
    /// given out, the rest of the message is dropped.
    pub fn push(
        &mut self,
        message: &[u8],
        mut frame: impl FnMut(Vec<i16>),
    ) -> Result<Said, WsMediaError> {
        match self.encapsulation {
            Encapsulation::Sln => {
                self.pcm(message, &mut frame);
                Ok(Said::Audio)
            }
            Encapsulation::Rtp => {
                let packet =
                    RtpPacket::parse(message).map_err(|e| WsMediaError::Rtp(e.to_string()))?;
                if packet.payload_type != RTP_PAYLOAD_TYPE {
                    return Err(WsMediaError::PayloadType(packet.payload_type));
                }
                if packet.payload.len() % 2 != 0 {
                    return Err(WsMediaError::Rtp(format!(
                        "an L16 payload of {} bytes (not whole samples)",
                        packet.payload.len()
                    )));
                }
                // RTP payloads are whole packets: a half sample never carries over.
                self.odd = None;
                self.pcm(packet.payload, &mut frame);
                Ok(Said::Audio)
            }
            Encapsulation::Audiosocket => {
                let mut rest = message;
                while !rest.is_empty() {
                    let Some((&[kind, hi, lo], body)) =
                        rest.split_first_chunk::<AUDIOSOCKET_HEADER>()
                    else {
                        return Err(WsMediaError::AudioSocket(format!(
                            "{} bytes left: shorter than a message header",
                            rest.len()
                        )));
                    };
                    let len = usize::from(u16::from_be_bytes([hi, lo]));
                    let Some(payload) = body.get(..len) else {
                        return Err(WsMediaError::AudioSocket(format!(
                            "kind {kind:#04x} declares {len} bytes, {} follow",
                            body.len()
                        )));
                    };
                    match kind {
                        AUDIOSOCKET_HANGUP => return Ok(Said::Hangup),
                        AUDIOSOCKET_AUDIO => {
                            if len % 2 != 0 {
                                return Err(WsMediaError::AudioSocket(format!(
                                    "audio of {len} bytes (not whole samples)"
                                )));
                            }
                            self.odd = None;
                            self.pcm(payload, &mut frame);
                        }
                        // Id, DTMF, error: nothing for the call's audio.
                        _ => {}
                    }
                    rest = &body[len..];
                }
                Ok(Said::Audio)
            }
        }
    }

    /// Appends little-endian PCM bytes, giving out every complete frame.
    fn pcm(&mut self, bytes: &[u8], frame: &mut impl FnMut(Vec<i16>)) {
        let mut bytes = bytes;
        if let Some(low) = self.odd.take() {
            let Some((&high, rest)) = bytes.split_first() else {
                self.odd = Some(low);
                return;
            };
            self.sample(i16::from_le_bytes([low, high]), frame);
            bytes = rest;
        }
        let mut pairs = bytes.chunks_exact(2);
        for pair in &mut pairs {
            self.sample(i16::from_le_bytes([pair[0], pair[1]]), frame);
        }
        if let [low] = pairs.remainder() {
            self.odd = Some(*low);
        }
    }

    fn sample(&mut self, s: i16, frame: &mut impl FnMut(Vec<i16>)) {
        self.pending.push(s);
        if self.pending.len() == FRAME {
            frame(std::mem::replace(
                &mut self.pending,
                Vec::with_capacity(FRAME),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(start: i16) -> Vec<i16> {
        (0..160i16).map(|i| start.wrapping_add(i * 97)).collect()
    }

    fn decode_all(d: &mut Decoder, messages: &[Vec<u8>]) -> Vec<Vec<i16>> {
        let mut frames = Vec::new();
        for m in messages {
            d.push(m, |f| frames.push(f)).unwrap();
        }
        frames
    }

    #[test]
    fn encapsulations_parse_by_voipbins_names() {
        for e in [
            Encapsulation::Rtp,
            Encapsulation::Sln,
            Encapsulation::Audiosocket,
        ] {
            assert_eq!(Encapsulation::parse(e.as_str()), Ok(e));
        }
        assert!(Encapsulation::parse("").is_err());
        assert!(Encapsulation::parse("RTP").is_err());
    }

    #[test]
    fn every_encapsulation_round_trips_frames_exactly() {
        for e in [
            Encapsulation::Rtp,
            Encapsulation::Sln,
            Encapsulation::Audiosocket,
        ] {
            let mut enc = Encoder::new(e, 7, 100);
            let frames = [ramp(-3000), ramp(12), ramp(i16::MAX - 200)];
            let messages: Vec<Vec<u8>> = frames.iter().map(|f| enc.encode(f)).collect();
            let size = match e {
                Encapsulation::Sln => 320,
                Encapsulation::Rtp => 332,
                Encapsulation::Audiosocket => 323,
            };
            assert!(messages.iter().all(|m| m.len() == size), "{e:?}");
            assert_eq!(decode_all(&mut Decoder::new(e), &messages), frames, "{e:?}");
        }
    }

    #[test]
    fn rtp_headers_count_up_and_mark_the_first() {
        let mut enc = Encoder::new(Encapsulation::Rtp, 0xdead_beef, u16::MAX);
        let a = enc.encode(&ramp(0));
        let b = enc.encode(&ramp(0));
        let (a, b) = (RtpPacket::parse(&a).unwrap(), RtpPacket::parse(&b).unwrap());
        assert_eq!((a.payload_type, a.ssrc, a.marker), (96, 0xdead_beef, true));
        assert_eq!((b.seq, b.timestamp, b.marker), (0, 160, false));
        assert_eq!(a.seq, u16::MAX);
        let audiosocket = Encoder::new(Encapsulation::Audiosocket, 0, 0).encode(&ramp(0));
        assert_eq!(&audiosocket[..3], &[0x10, 0x01, 0x40]);
    }

    #[test]
    fn odd_sized_sln_messages_make_whole_frames_in_order() {
        let frames = [ramp(5), ramp(-77)];
        let bytes: Vec<u8> = frames
            .iter()
            .flatten()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        // 7, 1, 250, … byte messages: samples split across messages.
        let mut messages = Vec::new();
        let mut rest = &bytes[..];
        for size in [7usize, 1, 250, 3, 99].iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = (*size).min(rest.len());
            messages.push(rest[..n].to_vec());
            rest = &rest[n..];
        }
        assert_eq!(
            decode_all(&mut Decoder::new(Encapsulation::Sln), &messages),
            frames
        );
    }

    #[test]
    fn malformed_messages_are_errors_and_audiosocket_can_hang_up() {
        let mut rtp = Decoder::new(Encapsulation::Rtp);
        assert!(matches!(
            rtp.push(&[0x80, 96], |_| {}),
            Err(WsMediaError::Rtp(_))
        ));
        let mut pcmu = Vec::new();
        RtpPacket {
            marker: false,
            payload_type: 0,
            seq: 1,
            timestamp: 0,
            ssrc: 1,
            payload: &[0xff; 160],
        }
        .write(&mut pcmu);
        assert_eq!(rtp.push(&pcmu, |_| {}), Err(WsMediaError::PayloadType(0)));

        let mut a = Decoder::new(Encapsulation::Audiosocket);
        assert!(a.push(&[0x10, 0x01], |_| {}).is_err(), "short header");
        assert!(
            a.push(&[0x10, 0x00, 0x04, 1, 2], |_| {}).is_err(),
            "short body"
        );
        assert!(
            a.push(&[0x10, 0x00, 0x03, 1, 2, 3], |_| {}).is_err(),
            "half a sample"
        );
        // An id message, then audio, then a hang-up, in one WebSocket message.
        let mut m = vec![0x01, 0x00, 0x02, 0xab, 0xcd];
        m.extend_from_slice(&Encoder::new(Encapsulation::Audiosocket, 0, 0).encode(&ramp(1)));
        m.extend_from_slice(&[0x00, 0x00, 0x00]);
        let mut frames = Vec::new();
        assert_eq!(a.push(&m, |f| frames.push(f)), Ok(Said::Hangup));
        assert_eq!(frames, vec![ramp(1)]);
    }
}
