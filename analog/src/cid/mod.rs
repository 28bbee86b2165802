//! Caller ID messages: the data-link layer of GR-30-CORE (Bell: SDMF, MDMF) and ETSI
//! EN 300 659-3 (CLIP "call set-up" and message-waiting messages), plus DTMF CLIP
//! ([`dtmf`]) and the byte-stream framing that finds a message in demodulated FSK
//! ([`frame`]).
//!
//! A message is `type, length, body, checksum`; the checksum is the two's complement of the
//! sum of all preceding bytes, so all bytes add up to 0 mod 256. Bodies:
//!
//! | type | layout | body |
//! |---|---|---|
//! | `0x04` | SDMF | `MMDDHHMM` then the number (ASCII), or `O` (unavailable) / `P` (private) |
//! | `0x06` | SDMF MWI | `42 42 42` on, `6F 6F 6F` off |
//! | `0x80` | MDMF / ETSI CLIP | parameters `type, length, value`: 0x01 date/time, 0x02 number, 0x04 number absent, 0x07 name, 0x08 name absent, 0x11 call type (ETSI) |
//! | `0x82` | MDMF / ETSI MWI | parameter 0x0B visual indicator (0xFF on, 0x00 off) |
//!
//! Everything is `no_std` and allocation-free; decoding never panics on any input (fuzzed).

pub mod dtmf;
pub mod frame;

use core::fmt;

use heapless::{String, Vec};

/// Longest number kept (MDMF allows up to 20 characters in practice).
pub const MAX_NUMBER: usize = 20;
/// Longest name kept (ETSI allows 50; phones show 15–20; longer names are cut).
pub const MAX_NAME: usize = 32;
/// Longest encoded message (type, length, up to 255 body bytes, checksum).
pub const MAX_MESSAGE: usize = 258;

/// SDMF caller ID.
pub const TYPE_SDMF: u8 = 0x04;
/// SDMF message waiting.
pub const TYPE_SDMF_MWI: u8 = 0x06;
/// MDMF / ETSI call set-up (caller ID).
pub const TYPE_MDMF: u8 = 0x80;
/// MDMF / ETSI message waiting.
pub const TYPE_MDMF_MWI: u8 = 0x82;

/// MDMF parameter: date and time (`MMDDHHMM`).
pub const PARAM_DATETIME: u8 = 0x01;
/// MDMF parameter: calling number.
pub const PARAM_NUMBER: u8 = 0x02;
/// MDMF parameter: reason the number is absent.
pub const PARAM_NUMBER_ABSENT: u8 = 0x04;
/// MDMF parameter: calling name.
pub const PARAM_NAME: u8 = 0x07;
/// MDMF parameter: reason the name is absent.
pub const PARAM_NAME_ABSENT: u8 = 0x08;
/// MDMF parameter: visual message-waiting indicator.
pub const PARAM_MWI: u8 = 0x0B;
/// ETSI parameter: call type (1 = voice).
pub const PARAM_CALL_TYPE: u8 = 0x11;

/// Date and time of the call as the network sends it (no year, no zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateTime {
    /// 1…12.
    pub month: u8,
    /// 1…31.
    pub day: u8,
    /// 0…23.
    pub hour: u8,
    /// 0…59.
    pub minute: u8,
}

impl DateTime {
    /// A valid date-time, or `None`.
    #[must_use]
    pub fn new(month: u8, day: u8, hour: u8, minute: u8) -> Option<Self> {
        ((1..=12).contains(&month) && (1..=31).contains(&day) && hour < 24 && minute < 60)
            .then_some(Self {
                month,
                day,
                hour,
                minute,
            })
    }

    fn to_ascii(self) -> [u8; 8] {
        let two = |v: u8| [b'0' + v / 10, b'0' + v % 10];
        let [a, b] = two(self.month);
        let [c, d] = two(self.day);
        let [e, f] = two(self.hour);
        let [g, h] = two(self.minute);
        [a, b, c, d, e, f, g, h]
    }

    fn parse(b: &[u8]) -> Option<Self> {
        if b.len() != 8 || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let two = |i: usize| (b[i] - b'0') * 10 + (b[i + 1] - b'0');
        Self::new(two(0), two(2), two(4), two(6))
    }
}

/// Why a number or name is not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Absence {
    /// `P`: withheld by the caller.
    Private,
    /// `O`: not available (out of area, international, network could not tell).
    Unavailable,
}

impl Absence {
    fn code(self) -> u8 {
        match self {
            Absence::Private => b'P',
            Absence::Unavailable => b'O',
        }
    }

    fn parse(b: u8) -> Option<Self> {
        match b {
            b'P' | b'p' => Some(Absence::Private),
            b'O' | b'o' => Some(Absence::Unavailable),
            _ => None,
        }
    }
}

/// The caller identity carried by a caller-ID message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallerId {
    /// The calling number.
    pub number: Option<String<MAX_NUMBER>>,
    /// Why there is no number.
    pub number_absent: Option<Absence>,
    /// The calling name.
    pub name: Option<String<MAX_NAME>>,
    /// Why there is no name.
    pub name_absent: Option<Absence>,
    /// When the call was made.
    pub datetime: Option<DateTime>,
    /// ETSI call type (1 = voice call).
    pub call_type: Option<u8>,
}

impl CallerId {
    /// A caller ID with a number (printable ASCII, cut to [`MAX_NUMBER`]) and optional name
    /// (cut to [`MAX_NAME`]). Non-printable characters are dropped.
    #[must_use]
    pub fn new(number: &str, name: Option<&str>) -> Self {
        Self {
            number: Some(printable(number.as_bytes())),
            name: name.map(|n| printable(n.as_bytes())),
            ..Self::default()
        }
    }

    /// A withheld caller.
    #[must_use]
    pub fn absent(reason: Absence) -> Self {
        Self {
            number_absent: Some(reason),
            name_absent: Some(reason),
            ..Self::default()
        }
    }

    /// With a date and time.
    #[must_use]
    pub fn at(mut self, datetime: DateTime) -> Self {
        self.datetime = Some(datetime);
        self
    }
}

/// A decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Caller identity (SDMF, MDMF, ETSI call set-up).
    CallerId(CallerId),
    /// Message waiting on (`true`) or off.
    MessageWaiting(bool),
}

/// Which message layout to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Bell single data message format (number and date only).
    Sdmf,
    /// Bell multiple data message format.
    Mdmf,
    /// ETSI EN 300 659-3 call set-up (MDMF with the call type parameter).
    Etsi,
}

/// Why a message could not be built or read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CidError {
    /// Fewer bytes than the header and length say.
    Truncated,
    /// The bytes do not add up to zero.
    Checksum {
        /// The checksum the bytes call for.
        expected: u8,
        /// The one received.
        found: u8,
    },
    /// A message type this layer does not know.
    UnknownType(u8),
    /// A parameter's length runs past the message body.
    BadParameter {
        /// The parameter type.
        param: u8,
    },
    /// A field has invalid content (date not `MMDDHHMM`, absence code not `O`/`P`, …).
    BadField {
        /// Which field.
        field: &'static str,
    },
    /// SDMF needs a date and time.
    MissingDate,
    /// The message would not fit (never happens with the field limits of [`CallerId`]).
    TooLong,
    /// A byte arrived with a framing error (lost start or stop bit) inside a message.
    Framing,
    /// The carrier ended before the message did.
    Incomplete,
}

impl fmt::Display for CidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CidError::Truncated => f.write_str("caller-ID message truncated"),
            CidError::Checksum { expected, found } => write!(
                f,
                "caller-ID checksum {found:#04x}, the message calls for {expected:#04x}"
            ),
            CidError::UnknownType(t) => write!(f, "unknown caller-ID message type {t:#04x}"),
            CidError::BadParameter { param } => {
                write!(f, "caller-ID parameter {param:#04x} runs past the message")
            }
            CidError::BadField { field } => write!(f, "caller-ID field {field} is invalid"),
            CidError::MissingDate => f.write_str("SDMF caller ID needs a date and time"),
            CidError::TooLong => f.write_str("caller-ID message too long"),
            CidError::Framing => f.write_str("caller-ID byte lost (framing error)"),
            CidError::Incomplete => f.write_str("caller-ID burst ended inside the message"),
        }
    }
}

impl core::error::Error for CidError {}

/// The checksum that makes `bytes` plus it add up to zero.
#[must_use]
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |a, &b| a.wrapping_add(b))
        .wrapping_neg()
}

fn printable<const N: usize>(b: &[u8]) -> String<N> {
    let mut s = String::new();
    for &c in b {
        if (0x20..0x7F).contains(&c) && s.push(char::from(c)).is_err() {
            break;
        }
    }
    s
}

struct Builder {
    buf: Vec<u8, MAX_MESSAGE>,
}

impl Builder {
    fn new(kind: u8) -> Self {
        let mut buf = Vec::new();
        // Two bytes always fit in an empty buffer of 258.
        let _ = buf.push(kind);
        let _ = buf.push(0);
        Self { buf }
    }

    fn bytes(&mut self, b: &[u8]) -> Result<(), CidError> {
        self.buf.extend_from_slice(b).map_err(|_| CidError::TooLong)
    }

    fn param(&mut self, t: u8, value: &[u8]) -> Result<(), CidError> {
        let len = u8::try_from(value.len()).map_err(|_| CidError::TooLong)?;
        self.bytes(&[t, len])?;
        self.bytes(value)
    }

    fn finish(mut self) -> Result<Vec<u8, MAX_MESSAGE>, CidError> {
        let len = u8::try_from(self.buf.len() - 2).map_err(|_| CidError::TooLong)?;
        self.buf[1] = len;
        let cs = checksum(&self.buf);
        self.bytes(&[cs])?;
        Ok(self.buf)
    }
}

/// Encodes a message.
///
/// # Errors
/// [`CidError::MissingDate`] for SDMF caller ID without a date; [`CidError::TooLong`] never
/// with [`CallerId`]'s limits.
pub fn encode(message: &Message, layout: Layout) -> Result<Vec<u8, MAX_MESSAGE>, CidError> {
    match (message, layout) {
        (Message::MessageWaiting(on), Layout::Sdmf) => {
            let mut b = Builder::new(TYPE_SDMF_MWI);
            b.bytes(if *on { &[0x42; 3] } else { &[0x6F; 3] })?;
            b.finish()
        }
        (Message::MessageWaiting(on), _) => {
            let mut b = Builder::new(TYPE_MDMF_MWI);
            b.param(PARAM_MWI, &[if *on { 0xFF } else { 0x00 }])?;
            b.finish()
        }
        (Message::CallerId(cid), Layout::Sdmf) => {
            let dt = cid.datetime.ok_or(CidError::MissingDate)?;
            let mut b = Builder::new(TYPE_SDMF);
            b.bytes(&dt.to_ascii())?;
            match (&cid.number, cid.number_absent) {
                (Some(n), _) => b.bytes(n.as_bytes())?,
                (None, reason) => b.bytes(&[reason.unwrap_or(Absence::Unavailable).code()])?,
            }
            b.finish()
        }
        (Message::CallerId(cid), layout) => {
            let mut b = Builder::new(TYPE_MDMF);
            if layout == Layout::Etsi {
                b.param(PARAM_CALL_TYPE, &[cid.call_type.unwrap_or(1)])?;
            }
            if let Some(dt) = cid.datetime {
                b.param(PARAM_DATETIME, &dt.to_ascii())?;
            }
            match (&cid.number, cid.number_absent) {
                (Some(n), _) => b.param(PARAM_NUMBER, n.as_bytes())?,
                (None, reason) => b.param(
                    PARAM_NUMBER_ABSENT,
                    &[reason.unwrap_or(Absence::Unavailable).code()],
                )?,
            }
            match (&cid.name, cid.name_absent) {
                (Some(n), _) => b.param(PARAM_NAME, n.as_bytes())?,
                (None, Some(reason)) => b.param(PARAM_NAME_ABSENT, &[reason.code()])?,
                (None, None) => {}
            }
            b.finish()
        }
    }
}

/// Decodes one message from the start of `bytes`; returns it and how many bytes it used.
/// Unknown MDMF parameters are skipped; an invalid date is an error, over-long fields are cut.
///
/// # Errors
/// [`CidError`] describing the first problem; never panics.
pub fn decode(bytes: &[u8]) -> Result<(Message, usize), CidError> {
    let (&kind, rest) = bytes.split_first().ok_or(CidError::Truncated)?;
    if !matches!(kind, TYPE_SDMF | TYPE_SDMF_MWI | TYPE_MDMF | TYPE_MDMF_MWI) {
        return Err(CidError::UnknownType(kind));
    }
    let (&len, rest) = rest.split_first().ok_or(CidError::Truncated)?;
    let len = usize::from(len);
    if rest.len() < len + 1 {
        return Err(CidError::Truncated);
    }
    let body = &rest[..len];
    let found = rest[len];
    let expected = checksum(&bytes[..2 + len]);
    if found != expected {
        return Err(CidError::Checksum { expected, found });
    }
    let used = len + 3;
    let message = match kind {
        TYPE_SDMF => {
            if body.len() < 9 {
                return Err(CidError::BadField { field: "SDMF body" });
            }
            let datetime =
                DateTime::parse(&body[..8]).ok_or(CidError::BadField { field: "date/time" })?;
            // Judged on what is printable: a number of nothing but line noise is no
            // number (re-encoded, an empty number would be an SDMF body too short to
            // decode), and what is left of it as one absence code is that code.
            let number: String<MAX_NUMBER> = printable(&body[8..]);
            let mut cid = CallerId {
                datetime: Some(datetime),
                ..CallerId::default()
            };
            match number.as_bytes() {
                [] => cid.number_absent = Some(Absence::Unavailable),
                [c] if Absence::parse(*c).is_some() => cid.number_absent = Absence::parse(*c),
                _ => cid.number = Some(number),
            }
            Message::CallerId(cid)
        }
        TYPE_SDMF_MWI => match body {
            [0x42, 0x42, 0x42] => Message::MessageWaiting(true),
            [0x6F, 0x6F, 0x6F] => Message::MessageWaiting(false),
            _ => return Err(CidError::BadField { field: "SDMF MWI" }),
        },
        TYPE_MDMF_MWI => {
            let mut state = None;
            for_params(body, |t, v| {
                if t == PARAM_MWI {
                    state = Some(v.first().is_some_and(|&b| b != 0));
                }
                Ok(())
            })?;
            Message::MessageWaiting(state.ok_or(CidError::BadField {
                field: "MWI indicator",
            })?)
        }
        _ => {
            let mut cid = CallerId::default();
            for_params(body, |t, v| {
                match t {
                    PARAM_DATETIME => {
                        cid.datetime = Some(
                            DateTime::parse(v).ok_or(CidError::BadField { field: "date/time" })?,
                        );
                    }
                    PARAM_NUMBER => cid.number = Some(printable(v)),
                    PARAM_NUMBER_ABSENT => {
                        cid.number_absent =
                            Some(v.first().and_then(|&c| Absence::parse(c)).ok_or(
                                CidError::BadField {
                                    field: "number absence reason",
                                },
                            )?);
                    }
                    PARAM_NAME => cid.name = Some(printable(v)),
                    PARAM_NAME_ABSENT => {
                        cid.name_absent = Some(v.first().and_then(|&c| Absence::parse(c)).ok_or(
                            CidError::BadField {
                                field: "name absence reason",
                            },
                        )?);
                    }
                    PARAM_CALL_TYPE => cid.call_type = v.first().copied(),
                    _ => {}
                }
                Ok(())
            })?;
            Message::CallerId(cid)
        }
    };
    Ok((message, used))
}

fn for_params(
    mut body: &[u8],
    mut f: impl FnMut(u8, &[u8]) -> Result<(), CidError>,
) -> Result<(), CidError> {
    while let [t, len, rest @ ..] = body {
        let len = usize::from(*len);
        if rest.len() < len {
            return Err(CidError::BadParameter { param: *t });
        }
        f(*t, &rest[..len])?;
        body = &rest[len..];
    }
    if body.is_empty() {
        Ok(())
    } else {
        Err(CidError::BadParameter { param: body[0] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(m: u8, d: u8, h: u8, min: u8) -> DateTime {
        DateTime::new(m, d, h, min).expect("valid")
    }

    /// The worked examples of the analog reference §2.4 (the first is Telcordia's published
    /// example).
    #[test]
    fn golden_vectors() {
        let sdmf = encode(
            &Message::CallerId(CallerId::new("6095551212", None).at(dt(9, 30, 12, 24))),
            Layout::Sdmf,
        )
        .expect("encodes");
        assert_eq!(
            sdmf.as_slice(),
            [
                0x04, 0x12, 0x30, 0x39, 0x33, 0x30, 0x31, 0x32, 0x32, 0x34, 0x36, 0x30, 0x39, 0x35,
                0x35, 0x35, 0x31, 0x32, 0x31, 0x32, 0x51
            ]
        );
        let mdmf = encode(
            &Message::CallerId(
                CallerId::new("5551234567", Some("JOHN SMITH")).at(dt(3, 15, 13, 45)),
            ),
            Layout::Mdmf,
        )
        .expect("encodes");
        assert_eq!(
            mdmf.as_slice(),
            [
                0x80, 0x22, 0x01, 0x08, 0x30, 0x33, 0x31, 0x35, 0x31, 0x33, 0x34, 0x35, 0x02, 0x0A,
                0x35, 0x35, 0x35, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x07, 0x0A, 0x4A, 0x4F,
                0x48, 0x4E, 0x20, 0x53, 0x4D, 0x49, 0x54, 0x48, 0xC3
            ]
        );
        let private = encode(
            &Message::CallerId(CallerId::absent(Absence::Private).at(dt(12, 25, 8, 0))),
            Layout::Mdmf,
        )
        .expect("encodes");
        assert_eq!(
            private.as_slice(),
            [
                0x80, 0x10, 0x01, 0x08, 0x31, 0x32, 0x32, 0x35, 0x30, 0x38, 0x30, 0x30, 0x04, 0x01,
                0x50, 0x08, 0x01, 0x50, 0x27
            ]
        );
        let etsi = encode(
            &Message::CallerId(CallerId::new("0123456789", Some("ANNA")).at(dt(1, 2, 3, 4))),
            Layout::Etsi,
        )
        .expect("encodes");
        assert_eq!(
            etsi.as_slice(),
            [
                0x80, 0x1F, 0x11, 0x01, 0x01, 0x01, 0x08, 0x30, 0x31, 0x30, 0x32, 0x30, 0x33, 0x30,
                0x34, 0x02, 0x0A, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x07,
                0x04, 0x41, 0x4E, 0x4E, 0x41, 0x79
            ]
        );
        let on = encode(&Message::MessageWaiting(true), Layout::Mdmf).expect("encodes");
        assert_eq!(on.as_slice(), [0x82, 0x03, 0x0B, 0x01, 0xFF, 0x70]);
        let off = encode(&Message::MessageWaiting(false), Layout::Etsi).expect("encodes");
        assert_eq!(off.as_slice(), [0x82, 0x03, 0x0B, 0x01, 0x00, 0x6F]);
        let sdmf_on = encode(&Message::MessageWaiting(true), Layout::Sdmf).expect("encodes");
        assert_eq!(
            sdmf_on.as_slice(),
            [
                0x06,
                0x03,
                0x42,
                0x42,
                0x42,
                checksum(&[0x06, 0x03, 0x42, 0x42, 0x42])
            ]
        );
    }

    #[test]
    fn decode_inverts_encode() {
        let cases = [
            (
                Message::CallerId(CallerId::new("6095551212", None).at(dt(9, 30, 12, 24))),
                Layout::Sdmf,
            ),
            (
                Message::CallerId(CallerId::new("+4930123", Some("Zoë & Co")).at(dt(1, 1, 0, 0))),
                Layout::Mdmf,
            ),
            (
                Message::CallerId(CallerId::absent(Absence::Unavailable).at(dt(2, 29, 23, 59))),
                Layout::Etsi,
            ),
            (Message::MessageWaiting(true), Layout::Sdmf),
            (Message::MessageWaiting(false), Layout::Mdmf),
        ];
        for (msg, layout) in cases {
            let bytes = encode(&msg, layout).expect("encodes");
            let (back, used) = decode(&bytes).expect("decodes");
            assert_eq!(used, bytes.len());
            let mut expect = msg.clone();
            if let (Message::CallerId(c), Layout::Etsi) = (&mut expect, layout) {
                c.call_type = Some(1);
            }
            if let (Message::CallerId(c), Layout::Sdmf) = (&mut expect, layout) {
                c.name = None;
                c.name_absent = None;
            }
            assert_eq!(back, expect, "{layout:?}");
        }
    }

    #[test]
    fn errors_are_reported_not_panicked() {
        assert_eq!(decode(&[]), Err(CidError::Truncated));
        assert_eq!(decode(&[0x80]), Err(CidError::Truncated));
        assert_eq!(decode(&[0x80, 0x05, 1, 2]), Err(CidError::Truncated));
        assert_eq!(
            decode(&[0x33, 0x00, 0xCD]),
            Err(CidError::UnknownType(0x33))
        );
        assert_eq!(
            decode(&[0x82, 0x03, 0x0B, 0x01, 0xFF, 0x71]),
            Err(CidError::Checksum {
                expected: 0x70,
                found: 0x71
            })
        );
        // A parameter longer than the body.
        let mut bad = [0x80, 0x03, 0x02, 0x05, 0x31, 0];
        bad[5] = checksum(&bad[..5]);
        assert_eq!(decode(&bad), Err(CidError::BadParameter { param: 0x02 }));
        // A date that is not a date.
        let mut bad = [
            0x80, 0x0A, 0x01, 0x08, b'1', b'3', b'0', b'1', b'0', b'0', b'0', b'0', 0,
        ];
        bad[12] = checksum(&bad[..12]);
        assert_eq!(decode(&bad), Err(CidError::BadField { field: "date/time" }));
        assert_eq!(
            encode(&Message::CallerId(CallerId::new("1", None)), Layout::Sdmf),
            Err(CidError::MissingDate)
        );
    }

    #[test]
    fn long_fields_are_cut_and_control_characters_dropped() {
        let c = CallerId::new("0123456789012345678901234", Some("A\u{1}B"));
        assert_eq!(c.number.as_deref(), Some("01234567890123456789"));
        assert_eq!(c.name.as_deref(), Some("AB"));
    }

    /// Found by the `cid_decode` fuzz target: an SDMF number of nothing but unprintable
    /// bytes decoded to an empty number, which re-encoded to a body too short to decode.
    #[test]
    fn an_sdmf_number_of_line_noise_is_no_number_and_re_encodes() {
        let mut noise = [0xFF_u8; 29];
        noise[0] = TYPE_SDMF;
        noise[1] = 26;
        noise[2..10].copy_from_slice(b"11111111");
        noise[12] = 0x0B;
        noise[28] = checksum(&noise[..28]);
        let (msg, used) = decode(&noise).expect("decodes");
        assert_eq!(used, 29);
        let Message::CallerId(cid) = &msg else {
            panic!("caller ID expected, got {msg:?}")
        };
        assert_eq!(cid.number, None);
        assert_eq!(cid.number_absent, Some(Absence::Unavailable));
        let bytes = encode(&msg, Layout::Sdmf).expect("encodes");
        assert_eq!(decode(&bytes).expect("decodes again").0, msg);
        // One printable absence code among the noise is that code, as the byte alone is.
        noise[20] = b'P';
        noise[28] = checksum(&noise[..28]);
        let Message::CallerId(cid) = decode(&noise).expect("decodes").0 else {
            panic!("caller ID expected")
        };
        assert_eq!(cid.number_absent, Absence::parse(b'P'));
    }
}
