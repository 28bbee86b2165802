//! TP-UDL / TP-UD with the optional user data header (TS 23.040 §9.2.3.24): concatenation with
//! 8- and 16-bit references, application ports, national language shift tables (recognised,
//! not applied) and any other information element kept by its length.

use serde::{Deserialize, Serialize};

use super::dcs::{Alphabet, DataCoding};
use super::error::{Field, PduError};
use super::octets::Reader;
use super::{gsm7, ucs2};

/// Most septets one SMS carries.
pub const MAX_SEPTETS: usize = 160;
/// Most octets one SMS carries.
pub const MAX_OCTETS: usize = 140;

/// Concatenated-message information (IEI 0x00 or 0x08).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Concat {
    /// Reference shared by all parts of one message.
    pub reference: u16,
    /// `true` for the 16-bit reference element (IEI 0x08), `false` for IEI 0x00.
    pub wide: bool,
    /// Number of parts.
    pub total: u8,
    /// This part's number, 1-based.
    pub seq: u8,
}

/// One information element of a user data header.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InformationElement {
    /// Concatenation (IEI 0x00 / 0x08).
    Concat(Concat),
    /// Application port addressing (IEI 0x04 with 8-bit, 0x05 with 16-bit ports).
    Ports {
        /// Destination port.
        destination: u16,
        /// Originator port.
        source: u16,
        /// `true` for IEI 0x05.
        wide: bool,
    },
    /// National language single shift table (IEI 0x24). Recognised only: text is still decoded
    /// with the default tables.
    NationalSingleShift(u8),
    /// National language locking shift table (IEI 0x25). Recognised only, as above.
    NationalLockingShift(u8),
    /// Any other element, kept as sent.
    Other {
        /// Information element identifier.
        iei: u8,
        /// Its data.
        data: Vec<u8>,
    },
}

impl InformationElement {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), PduError> {
        let too_long = PduError::UserDataTooLong {
            len: 256,
            max: 255,
            unit: "octets in one information element",
        };
        match self {
            Self::Concat(c) if c.wide => {
                let [hi, lo] = c.reference.to_be_bytes();
                out.extend_from_slice(&[0x08, 4, hi, lo, c.total, c.seq]);
            }
            Self::Concat(c) => {
                let r = u8::try_from(c.reference).map_err(|_| PduError::BadUdh {
                    offset: 0,
                    reason: "an 8-bit concatenation reference must be below 256",
                })?;
                out.extend_from_slice(&[0x00, 3, r, c.total, c.seq]);
            }
            Self::Ports {
                destination,
                source,
                wide: true,
            } => {
                out.extend_from_slice(&[0x05, 4]);
                out.extend_from_slice(&destination.to_be_bytes());
                out.extend_from_slice(&source.to_be_bytes());
            }
            Self::Ports {
                destination,
                source,
                wide: false,
            } => {
                let port = |p: &u16| {
                    u8::try_from(*p).map_err(|_| PduError::BadUdh {
                        offset: 0,
                        reason: "an 8-bit application port must be below 256",
                    })
                };
                out.extend_from_slice(&[0x04, 2, port(destination)?, port(source)?]);
            }
            Self::NationalSingleShift(t) => out.extend_from_slice(&[0x24, 1, *t]),
            Self::NationalLockingShift(t) => out.extend_from_slice(&[0x25, 1, *t]),
            Self::Other { iei, data } => {
                out.push(*iei);
                out.push(u8::try_from(data.len()).map_err(|_| too_long)?);
                out.extend_from_slice(data);
            }
        }
        Ok(())
    }

    /// Parses one element's data; `offset` is where the IEI sits (for errors).
    fn parse(iei: u8, data: &[u8], offset: usize) -> Result<Self, PduError> {
        let bad = |reason| PduError::BadUdh { offset, reason };
        Ok(match iei {
            0x00 => match *data {
                [r, total, seq] => Self::Concat(Concat {
                    reference: r.into(),
                    wide: false,
                    total,
                    seq,
                }),
                _ => return Err(bad("concatenation element (IEI 00) must be 3 octets")),
            },
            0x08 => match *data {
                [hi, lo, total, seq] => Self::Concat(Concat {
                    reference: u16::from_be_bytes([hi, lo]),
                    wide: true,
                    total,
                    seq,
                }),
                _ => return Err(bad("concatenation element (IEI 08) must be 4 octets")),
            },
            0x04 => match *data {
                [d, s] => Self::Ports {
                    destination: d.into(),
                    source: s.into(),
                    wide: false,
                },
                _ => return Err(bad("port element (IEI 04) must be 2 octets")),
            },
            0x05 => match *data {
                [d1, d2, s1, s2] => Self::Ports {
                    destination: u16::from_be_bytes([d1, d2]),
                    source: u16::from_be_bytes([s1, s2]),
                    wide: true,
                },
                _ => return Err(bad("port element (IEI 05) must be 4 octets")),
            },
            0x24 | 0x25 => match *data {
                [t] if iei == 0x24 => Self::NationalSingleShift(t),
                [t] => Self::NationalLockingShift(t),
                _ => return Err(bad("shift table element (IEI 24/25) must be 1 octet")),
            },
            _ => Self::Other {
                iei,
                data: data.to_vec(),
            },
        })
    }
}

/// A user data header: a list of information elements.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct UserDataHeader {
    /// The elements in the order sent.
    pub elements: Vec<InformationElement>,
}

impl UserDataHeader {
    /// A header with a single concatenation element.
    pub fn concat(concat: Concat) -> Self {
        Self {
            elements: vec![InformationElement::Concat(concat)],
        }
    }

    /// The concatenation element, if any (the first one wins).
    pub fn concatenation(&self) -> Option<Concat> {
        self.elements.iter().find_map(|e| match e {
            InformationElement::Concat(c) => Some(*c),
            _ => None,
        })
    }

    /// The header octets including the UDHL octet.
    pub fn encode(&self) -> Result<Vec<u8>, PduError> {
        let mut out = vec![0];
        for e in &self.elements {
            e.encode(&mut out)?;
        }
        let udhl = u8::try_from(out.len() - 1).map_err(|_| PduError::UserDataTooLong {
            len: out.len(),
            max: MAX_OCTETS,
            unit: "octets",
        })?;
        if let Some(b) = out.first_mut() {
            *b = udhl;
        }
        Ok(out)
    }

    /// Parses `octets` (starting with UDHL); `base` is the PDU offset of the UDHL octet.
    /// Returns the header and the number of octets it occupies.
    fn parse(octets: &[u8], base: usize) -> Result<(Self, usize), PduError> {
        let udhl = usize::from(*octets.first().ok_or(PduError::BadUdh {
            offset: base,
            reason: "header indicator set but no user data",
        })?);
        let ies = octets.get(1..=udhl).ok_or(PduError::BadUdh {
            offset: base,
            reason: "header length runs past the user data",
        })?;
        let mut elements = Vec::new();
        let mut i = 0;
        while i < ies.len() {
            let offset = base + 1 + i;
            let (Some(&iei), Some(&len)) = (ies.get(i), ies.get(i + 1)) else {
                return Err(PduError::BadUdh {
                    offset,
                    reason: "information element header cut off",
                });
            };
            let data = ies
                .get(i + 2..i + 2 + usize::from(len))
                .ok_or(PduError::BadUdh {
                    offset,
                    reason: "information element length runs past the header",
                })?;
            elements.push(InformationElement::parse(iei, data, offset)?);
            i += 2 + usize::from(len);
        }
        Ok((Self { elements }, udhl + 1))
    }
}

/// The content of the user data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    /// Text (GSM7 or UCS2 coding).
    Text(String),
    /// Bytes (8-bit coding, or compressed data that is not decompressed).
    Data(Vec<u8>),
}

impl Body {
    /// The text, if this is text.
    pub fn text(&self) -> Option<&str> {
        match self {
            Self::Text(t) => Some(t),
            Self::Data(_) => None,
        }
    }
}

/// TP-UD: optional header plus body.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UserData {
    /// The header; `Some` sets TP-UDHI.
    pub header: Option<UserDataHeader>,
    /// The body.
    pub body: Body,
}

impl UserData {
    /// Text without a header.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            header: None,
            body: Body::Text(text.into()),
        }
    }

    /// The concatenation element of the header, if any.
    pub fn concat(&self) -> Option<Concat> {
        self.header.as_ref().and_then(UserDataHeader::concatenation)
    }

    /// Reads TP-UDL and TP-UD.
    pub(crate) fn decode(
        r: &mut Reader<'_>,
        dcs: DataCoding,
        udhi: bool,
    ) -> Result<Self, PduError> {
        let offset = r.pos();
        let udl = usize::from(r.u8(Field::UserDataLength)?);
        let septets = dcs.alphabet() == Alphabet::Gsm7 && !dcs.is_compressed();
        let (max, needed) = if septets {
            (MAX_SEPTETS, (udl * 7).div_ceil(8))
        } else {
            (MAX_OCTETS, udl)
        };
        if udl > max {
            return Err(PduError::UdlAboveMaximum { offset, udl, max });
        }
        if needed > r.remaining() {
            return Err(PduError::UdlTooLong {
                offset,
                udl,
                needed,
                available: r.remaining(),
            });
        }
        let data_offset = r.pos();
        let data = r.take(needed, Field::UserData)?;
        let (header, header_octets) = if udhi && udl > 0 {
            let (h, n) = UserDataHeader::parse(data, data_offset)?;
            (Some(h), n)
        } else {
            (None, 0)
        };
        let payload = data.get(header_octets..).unwrap_or_default();
        let body = if septets {
            // Text starts at the first septet boundary after the header (fill bits skipped).
            let skip = (header_octets * 8).div_ceil(7);
            let count = udl.checked_sub(skip).ok_or(PduError::BadUdh {
                offset: data_offset,
                reason: "header longer than TP-UDL",
            })?;
            Body::Text(gsm7::septets_to_text(&gsm7::unpack(data, skip, count)))
        } else if dcs.alphabet() == Alphabet::Ucs2 && !dcs.is_compressed() {
            Body::Text(ucs2::decode(payload))
        } else {
            Body::Data(payload.to_vec())
        };
        Ok(Self { header, body })
    }

    /// Writes TP-UDL and TP-UD for `dcs`.
    pub(crate) fn encode(&self, dcs: DataCoding, out: &mut Vec<u8>) -> Result<(), PduError> {
        let header = match &self.header {
            Some(h) => h.encode()?,
            None => Vec::new(),
        };
        let mismatch = |reason| PduError::InvalidDcs {
            dcs: dcs.octet(),
            reason,
        };
        // Same rule as the decoder: septets only for uncompressed GSM7.
        let septets = dcs.alphabet() == Alphabet::Gsm7 && !dcs.is_compressed();
        let (udl, data) = match &self.body {
            Body::Text(t) if septets => {
                let septets = gsm7::text_to_septets(t)?;
                let skip = (header.len() * 8).div_ceil(7);
                let udl = skip + septets.len();
                if udl > MAX_SEPTETS {
                    return Err(PduError::UserDataTooLong {
                        len: udl,
                        max: MAX_SEPTETS,
                        unit: "septets",
                    });
                }
                let mut packed = gsm7::pack(&septets, skip * 7);
                if let Some(head) = packed.get_mut(..header.len()) {
                    head.copy_from_slice(&header);
                }
                (udl, packed)
            }
            Body::Text(t) if dcs.alphabet() == Alphabet::Ucs2 && !dcs.is_compressed() => {
                let mut d = header;
                d.extend(ucs2::encode(t));
                (d.len(), d)
            }
            Body::Text(_) => {
                return Err(mismatch("text needs an uncompressed GSM7 or UCS2 coding"));
            }
            Body::Data(_) if septets => {
                return Err(mismatch("GSM7 coding cannot carry bytes"));
            }
            Body::Data(b) => {
                let mut d = header;
                d.extend_from_slice(b);
                (d.len(), d)
            }
        };
        if !septets && udl > MAX_OCTETS {
            return Err(PduError::UserDataTooLong {
                len: udl,
                max: MAX_OCTETS,
                unit: "octets",
            });
        }
        out.push(u8::try_from(udl).unwrap_or(u8::MAX));
        out.extend_from_slice(&data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modem::pdu::octets::from_hex;

    fn decode(h: &str, dcs: u8, udhi: bool) -> Result<UserData, PduError> {
        let b = from_hex(h)?;
        UserData::decode(&mut Reader::new(&b), DataCoding(dcs), udhi)
    }

    #[test]
    fn headers() {
        let ud = decode("0C0500034C0201C8329BFD06", 0, true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            ud.concat(),
            Some(Concat {
                reference: 0x4C,
                wide: false,
                total: 2,
                seq: 1
            })
        );
        // Ports + concat + unknown element, then UCS2 "A".
        let ud =
            decode("100D050416230000000399020277000041", 8, true).unwrap_or_else(|e| panic!("{e}"));
        let h = ud.header.clone().unwrap_or_default();
        assert_eq!(h.elements.len(), 3);
        assert_eq!(
            ud.concat().map(|c| (c.reference, c.total, c.seq)),
            Some((0x99, 2, 2))
        );
        assert_eq!(ud.body, Body::Text("A".into()));
        assert_eq!(h.encode().map(|v| v.len()), Ok(14));
    }

    #[test]
    fn malformed_headers_are_errors() {
        for (hex, why) in [
            ("0105", "udhl past data"),
            ("03020005", "ie len past header"),
            ("0403000102", "concat wrong length"),
            ("03020001", "element data cut off"),
            ("020100", "ie header cut off"),
        ] {
            let r = decode(hex, 4, true);
            assert!(matches!(r, Err(PduError::BadUdh { .. })), "{why}: {r:?}");
        }
        assert!(matches!(
            decode("A1", 0, false),
            Err(PduError::UdlAboveMaximum { udl: 161, .. })
        ));
        assert!(matches!(
            decode("0A3132", 0, false),
            Err(PduError::UdlTooLong {
                needed: 9,
                available: 2,
                ..
            })
        ));
        // GSM7: a 6-octet header needs 7 septets; UDL 3 cannot hold it.
        assert!(matches!(
            decode("030500034C0201", 0, true),
            Err(PduError::BadUdh { .. })
        ));
    }

    #[test]
    fn odd_ucs2_payload_re_encodes_within_140_octets() {
        // Found by the fuzzer: UDHL 0 + 139 octets of UCS2. The half unit at the end is
        // dropped, so re-encoding stays within 140 octets.
        let mut b = vec![140, 0];
        b.extend(std::iter::repeat_n([0x04, 0x30], 69).flatten());
        b.push(0x04);
        let ud = UserData::decode(&mut Reader::new(&b), DataCoding::UCS2, true)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ud.body, Body::Text("а".repeat(69)));
        let mut out = Vec::new();
        assert_eq!(ud.encode(DataCoding::UCS2, &mut out), Ok(()));
        assert_eq!(out.first(), Some(&139));
    }

    #[test]
    fn encode_round_trips_with_fill_bits() {
        for (wide, text) in [(false, "Hello"), (true, "Hello"), (false, ""), (true, "€")] {
            let ud = UserData {
                header: Some(UserDataHeader::concat(Concat {
                    reference: 7,
                    wide,
                    total: 2,
                    seq: 1,
                })),
                body: Body::Text(text.into()),
            };
            let mut out = Vec::new();
            assert_eq!(ud.encode(DataCoding::GSM7, &mut out), Ok(()));
            let back = UserData::decode(&mut Reader::new(&out), DataCoding::GSM7, true);
            assert_eq!(back, Ok(ud));
        }
        let mut out = Vec::new();
        let e = UserData::text("x").encode(DataCoding::EIGHT_BIT, &mut out);
        assert!(matches!(e, Err(PduError::InvalidDcs { dcs: 4, .. })));
    }
}
