//! Addresses: TP-OA / TP-DA / TP-RA (TS 23.040 §9.1.2.5) and the SMSC address in front of the
//! TPDU (TS 24.011 §8.2.5.1). Swapped BCD with an `F` filler and `*`/`#`/`a`/`b`/`c` digits,
//! or GSM7-packed alphanumeric text (type of address 0xD0).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::{Field, PduError};
use super::gsm7;
use super::octets::{Reader, swapped_nibbles};

/// Most digits an address field may carry (TS 23.040: 2–12 octets including the TOA).
pub const MAX_DIGITS: usize = 20;
/// Most septets an alphanumeric address may carry (20 semi-octets = 80 bits).
pub const MAX_ALPHANUMERIC_SEPTETS: usize = 11;

/// Type of number, bits 6–4 of the type-of-address octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TypeOfNumber {
    /// 000: unknown (the usual national form).
    Unknown,
    /// 001: international; shown with a leading `+`.
    International,
    /// 010: national.
    National,
    /// 011: network specific.
    NetworkSpecific,
    /// 100: subscriber number.
    Subscriber,
    /// 101: alphanumeric (GSM7-packed text, e.g. a company name).
    Alphanumeric,
    /// 110: abbreviated number.
    Abbreviated,
}

impl TypeOfNumber {
    fn bits(self) -> u8 {
        match self {
            Self::Unknown => 0,
            Self::International => 1,
            Self::National => 2,
            Self::NetworkSpecific => 3,
            Self::Subscriber => 4,
            Self::Alphanumeric => 5,
            Self::Abbreviated => 6,
        }
    }

    fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits & 0x07 {
            0 => Self::Unknown,
            1 => Self::International,
            2 => Self::National,
            3 => Self::NetworkSpecific,
            4 => Self::Subscriber,
            5 => Self::Alphanumeric,
            6 => Self::Abbreviated,
            _ => return None,
        })
    }
}

/// Numbering plan "ISDN/telephone" (E.164), the one phone numbers use.
pub const NPI_ISDN: u8 = 1;

/// A decoded or to-be-encoded address.
///
/// `value` holds the digits (`0-9`, `*`, `#`, `a`, `b`, `c`) without any `+`, or the text of an
/// alphanumeric address. [`fmt::Display`] shows international numbers with a leading `+`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Address {
    /// Type of number.
    pub ton: TypeOfNumber,
    /// Numbering plan identification (low 4 bits of the type-of-address octet).
    pub npi: u8,
    /// Digits or alphanumeric text.
    pub value: String,
}

impl Address {
    /// An international number (`+` optional in `digits`), TOA 0x91.
    ///
    /// # Errors
    /// [`PduError::InvalidAddress`] if `digits` is not 1–20 dialling digits.
    pub fn international(digits: &str) -> Result<Self, PduError> {
        Self::number(
            TypeOfNumber::International,
            digits.strip_prefix('+').unwrap_or(digits),
        )
    }

    /// A number of unknown type (what phones send for national numbers), TOA 0x81.
    ///
    /// # Errors
    /// [`PduError::InvalidAddress`] if `digits` is not 1–20 dialling digits.
    pub fn unknown(digits: &str) -> Result<Self, PduError> {
        Self::number(TypeOfNumber::Unknown, digits)
    }

    /// A national number, TOA 0xA1.
    ///
    /// # Errors
    /// [`PduError::InvalidAddress`] if `digits` is not 1–20 dialling digits.
    pub fn national(digits: &str) -> Result<Self, PduError> {
        Self::number(TypeOfNumber::National, digits)
    }

    /// An alphanumeric sender such as "InternetSMS", TOA 0xD0.
    ///
    /// # Errors
    /// [`PduError::InvalidAddress`] if the text is empty, not GSM7, or longer than 11 septets.
    pub fn alphanumeric(text: &str) -> Result<Self, PduError> {
        let bad = |reason| PduError::InvalidAddress {
            address: text.to_owned(),
            reason,
        };
        let septets = gsm7::septet_len(text).ok_or_else(|| bad("not in the GSM7 alphabet"))?;
        if septets == 0 || septets > MAX_ALPHANUMERIC_SEPTETS {
            return Err(bad("alphanumeric address must be 1-11 septets"));
        }
        Ok(Self {
            ton: TypeOfNumber::Alphanumeric,
            npi: 0,
            value: text.to_owned(),
        })
    }

    /// Parses what a user or API would write: `+<digits>` is international, plain dialling
    /// digits are "unknown" (TOA 0x81), anything else is an alphanumeric sender.
    ///
    /// # Errors
    /// [`PduError::InvalidAddress`] if it fits none of these.
    pub fn parse(text: &str) -> Result<Self, PduError> {
        let text = text.trim();
        if let Some(digits) = text.strip_prefix('+') {
            Self::international(digits)
        } else if !text.is_empty() && text.chars().all(|c| digit_nibble(c).is_some()) {
            Self::unknown(text)
        } else {
            Self::alphanumeric(text)
        }
    }

    fn number(ton: TypeOfNumber, digits: &str) -> Result<Self, PduError> {
        let bad = |reason| PduError::InvalidAddress {
            address: digits.to_owned(),
            reason,
        };
        if digits.is_empty() || digits.chars().count() > MAX_DIGITS {
            return Err(bad("a number must have 1-20 digits"));
        }
        if digits.chars().any(|c| digit_nibble(c).is_none()) {
            return Err(bad("only 0-9, *, #, a, b, c are dialling digits"));
        }
        Ok(Self {
            ton,
            npi: NPI_ISDN,
            value: digits.to_ascii_lowercase(),
        })
    }

    /// The type-of-address octet (bit 7 always set).
    pub fn toa(&self) -> u8 {
        0x80 | (self.ton.bits() << 4) | (self.npi & 0x0F)
    }

    /// Reads TP-OA / TP-DA / TP-RA (length in semi-octets).
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, PduError> {
        let offset = r.pos();
        let len = usize::from(r.u8(Field::AddressLength)?);
        let toa = read_toa(r, len == 0)?;
        if len > MAX_DIGITS {
            return Err(PduError::BadAddress {
                offset,
                reason: "more than 20 semi-octets",
            });
        }
        let octets = r.take(len.div_ceil(2), Field::AddressValue)?;
        Ok(from_parts(toa, octets, len))
    }

    /// Reads the SMSC field (length in octets including the TOA; 0 = none).
    pub(crate) fn decode_smsc(r: &mut Reader<'_>) -> Result<Option<Self>, PduError> {
        let offset = r.pos();
        let len = usize::from(r.u8(Field::SmscLength)?);
        if len == 0 {
            return Ok(None);
        }
        // 1 TOA octet + up to 10 digit octets (TS 24.011 RP-address): the same 20 digits an
        // encoder may write, so whatever decodes also re-encodes.
        if len > 11 {
            return Err(PduError::BadAddress {
                offset,
                reason: "SMSC field longer than 11 octets",
            });
        }
        let toa = r.u8(Field::SmscAddress)?;
        check_toa(toa, offset + 1)?;
        // The SMSC is an RP address, a BCD number (TS 24.011 §8.2.5, TS 24.008 10.5.4.7,
        // where type 101 is reserved). An "alphanumeric" SMSC could not even be written back:
        // its length counts octets, so 7 septets and 8 septets take the same 7 octets.
        if TypeOfNumber::from_bits(toa >> 4) == Some(TypeOfNumber::Alphanumeric) {
            return Err(PduError::BadToa {
                offset: offset + 1,
                toa,
                reason: "an SMSC address is a number, not alphanumeric",
            });
        }
        let octets = r.take(len - 1, Field::SmscAddress)?;
        Ok(Some(from_parts(toa, octets, octets.len() * 2)))
    }

    /// Writes TP-OA / TP-DA / TP-RA.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), PduError> {
        let (semi_octets, body) = self.body()?;
        out.push(u8::try_from(semi_octets).map_err(|_| self.invalid("address too long"))?);
        out.push(self.toa());
        out.extend_from_slice(&body);
        Ok(())
    }

    /// Writes the SMSC field; `None` writes `00` (use the SMSC configured in the modem).
    pub(crate) fn encode_smsc(smsc: Option<&Self>, out: &mut Vec<u8>) -> Result<(), PduError> {
        let Some(a) = smsc else {
            out.push(0);
            return Ok(());
        };
        if a.ton == TypeOfNumber::Alphanumeric {
            return Err(a.invalid("an SMSC address is a number, not alphanumeric"));
        }
        let (_, body) = a.body()?;
        out.push(u8::try_from(body.len() + 1).map_err(|_| a.invalid("SMSC too long"))?);
        out.push(a.toa());
        out.extend_from_slice(&body);
        Ok(())
    }

    /// Semi-octet count and encoded octets of the value.
    fn body(&self) -> Result<(usize, Vec<u8>), PduError> {
        if self.ton == TypeOfNumber::Alphanumeric {
            let septets = gsm7::text_to_septets(&self.value)?;
            if septets.len() > MAX_ALPHANUMERIC_SEPTETS {
                return Err(self.invalid("alphanumeric address longer than 11 septets"));
            }
            return Ok(((septets.len() * 7).div_ceil(4), gsm7::pack(&septets, 0)));
        }
        let nibbles = self
            .value
            .chars()
            .map(|c| digit_nibble(c).ok_or_else(|| self.invalid("not a dialling digit")))
            .collect::<Result<Vec<u8>, _>>()?;
        if nibbles.len() > MAX_DIGITS {
            return Err(self.invalid("more than 20 digits"));
        }
        let body = nibbles
            .chunks(2)
            .map(|pair| match *pair {
                [lo, hi] => lo | (hi << 4),
                [lo] => lo | 0xF0,
                _ => 0xFF,
            })
            .collect();
        Ok((nibbles.len(), body))
    }

    fn invalid(&self, reason: &'static str) -> PduError {
        PduError::InvalidAddress {
            address: self.to_string(),
            reason,
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ton == TypeOfNumber::International && !self.value.is_empty() {
            f.write_str("+")?;
        }
        f.write_str(&self.value)
    }
}

fn read_toa(r: &mut Reader<'_>, empty: bool) -> Result<u8, PduError> {
    let offset = r.pos();
    let toa = r.u8(Field::AddressType)?;
    // An empty address carries a TOA octet that some SIMs leave as 0x00: nothing to misread.
    if !empty {
        check_toa(toa, offset)?;
    }
    Ok(toa)
}

fn check_toa(toa: u8, offset: usize) -> Result<(), PduError> {
    if toa & 0x80 == 0 {
        return Err(PduError::BadToa {
            offset,
            toa,
            reason: "bit 7 must be 1",
        });
    }
    if TypeOfNumber::from_bits(toa >> 4).is_none() {
        return Err(PduError::BadToa {
            offset,
            toa,
            reason: "reserved type of number 111",
        });
    }
    Ok(())
}

fn from_parts(toa: u8, octets: &[u8], semi_octets: usize) -> Address {
    let ton = TypeOfNumber::from_bits(toa >> 4).unwrap_or(TypeOfNumber::Unknown);
    let value = if ton == TypeOfNumber::Alphanumeric {
        // The length counts the semi-octets actually used: 4 bits each, 7 bits a septet.
        let septets = gsm7::unpack(octets, 0, semi_octets * 4 / 7);
        gsm7::septets_to_text(&septets)
    } else {
        octets
            .iter()
            .flat_map(|&b| {
                let (lo, hi) = swapped_nibbles(b);
                [lo, hi]
            })
            .take(semi_octets)
            .filter_map(nibble_digit)
            .collect()
    };
    Address {
        ton,
        npi: toa & 0x0F,
        value,
    }
}

/// BCD nibble → dialling digit; 0xF is the filler and yields nothing.
fn nibble_digit(n: u8) -> Option<char> {
    Some(match n {
        0..=9 => char::from(b'0' + n),
        0xA => '*',
        0xB => '#',
        0xC => 'a',
        0xD => 'b',
        0xE => 'c',
        _ => return None,
    })
}

fn digit_nibble(c: char) -> Option<u8> {
    Some(match c {
        '0'..='9' => u8::try_from(u32::from(c) - u32::from('0')).ok()?,
        '*' => 0xA,
        '#' => 0xB,
        'a' | 'A' => 0xC,
        'b' | 'B' => 0xD,
        'c' | 'C' => 0xE,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_hex(h: &str) -> Result<Address, PduError> {
        let b = super::super::octets::from_hex(h)?;
        Address::decode(&mut Reader::new(&b))
    }

    /// Found by the pdu_decode fuzz target: an SMSC typed alphanumeric decoded to a value that
    /// re-encoded to a different one (its length counts octets, not septets).
    #[test]
    fn an_alphanumeric_smsc_is_refused_both_ways() {
        let field = [0x09, 0xDF, 0x99, 0x0D, 0x00, 0x36, 0x36, 0x16, 0x36, 0x36];
        assert!(matches!(
            Address::decode_smsc(&mut Reader::new(&field)),
            Err(PduError::BadToa { offset: 1, .. })
        ));
        let alpha = Address {
            ton: TypeOfNumber::Alphanumeric,
            npi: 0,
            value: "Flowgate".into(),
        };
        assert!(Address::encode_smsc(Some(&alpha), &mut Vec::new()).is_err());
    }

    fn encode(a: &Address) -> Vec<u8> {
        let mut out = Vec::new();
        assert_eq!(a.encode(&mut out), Ok(()));
        out
    }

    #[test]
    fn numbers() {
        let a = decode_hex("0B918100551512F2").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.to_string(), "+18005551212");
        assert_eq!(a.toa(), 0x91);
        assert_eq!(encode(&a), [0x0B, 0x91, 0x81, 0x00, 0x55, 0x15, 0x12, 0xF2]);
        let star = Address::parse("*100#").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(star.toa(), 0x81);
        assert_eq!(encode(&star), [0x05, 0x81, 0x1A, 0x00, 0xFB]);
        let back = decode_hex("0581 1A00FB".replace(' ', "").as_str());
        assert_eq!(back.map(|a| a.value), Ok("*100#".to_owned()));
    }

    #[test]
    fn alphanumeric() {
        let a = decode_hex("14D04937BD2C7797E9D3E614").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.ton, TypeOfNumber::Alphanumeric);
        assert_eq!(a.value, "InternetSMS");
        assert_eq!(
            crate::modem::pdu::octets::to_hex(&encode(&a)),
            "14D04937BD2C7797E9D3E614"
        );
        // 7 characters: 49 bits → 13 semi-octets; no phantom '@' on decode.
        let seven = Address::alphanumeric("Flowgat").unwrap_or_else(|e| panic!("{e}"));
        let bytes = encode(&seven);
        assert_eq!(bytes.first(), Some(&13));
        assert_eq!(
            Address::decode(&mut Reader::new(&bytes)).map(|a| a.value),
            Ok("Flowgat".to_owned())
        );
    }

    #[test]
    fn errors() {
        assert!(matches!(
            decode_hex("0B118100551512F2"),
            Err(PduError::BadToa { offset: 1, .. })
        ));
        assert!(matches!(
            decode_hex("0BF18100551512F2"),
            Err(PduError::BadToa { .. })
        ));
        assert!(matches!(
            decode_hex("0B918100"),
            Err(PduError::Truncated {
                field: Field::AddressValue,
                offset: 2,
                ..
            })
        ));
        assert!(matches!(
            decode_hex("1591"),
            Err(PduError::BadAddress { .. })
        ));
        assert!(Address::parse("+12ab").is_ok());
        assert!(Address::parse("+12x").is_err());
        assert!(Address::parse("ThisIsTooLongASender").is_err());
        assert!(Address::parse("").is_err());
    }

    #[test]
    fn smsc() {
        let b = [0x07, 0x91, 0x21, 0x43, 0x65, 0x87, 0x09, 0xF1];
        let a = Address::decode_smsc(&mut Reader::new(&b));
        assert_eq!(
            a.clone().map(|a| a.map(|a| a.to_string())),
            Ok(Some("+12345678901".into()))
        );
        let mut out = Vec::new();
        let a = a.ok().flatten();
        assert_eq!(Address::encode_smsc(a.as_ref(), &mut out), Ok(()));
        assert_eq!(out, b);
        assert_eq!(Address::decode_smsc(&mut Reader::new(&[0])), Ok(None));
        // 22 digits do not fit an SMSC field (found by the fuzzer: it decoded, but could not
        // be re-encoded).
        let mut long = vec![12, 0x91];
        long.extend([0u8; 11]);
        assert!(matches!(
            Address::decode_smsc(&mut Reader::new(&long)),
            Err(PduError::BadAddress { offset: 0, .. })
        ));
    }
}
