//! USSD helpers for `AT+CUSD`: GSM7-packed hex ↔ text (with the TS 23.038 CR padding rule for
//! strings that carry no septet count), UCS2 hex ↔ text, and the cell-broadcast data coding
//! scheme (TS 23.038 §5) that `+CUSD: <m>,"<str>",<dcs>` replies use.

use serde::{Deserialize, Serialize};

use super::dcs::{Alphabet, MessageClass};
use super::error::PduError;
use super::octets::{from_hex, to_hex};
use super::{gsm7, ucs2};

const CR: u8 = 0x0D;

/// Packs text as GSM7 septets and returns upper-case hex, as many Huawei sticks want the
/// `AT+CUSD` request.
///
/// Without a septet count a receiver cannot tell 7 spare zero bits from an `@`, so TS 23.038
/// §6.1.2.3.1 pads: when the septets end 7 bits short of an octet boundary (8n−1 septets) a CR
/// fills the gap, and a text that really ends in CR on an octet boundary gets a second CR.
///
/// # Errors
/// [`PduError::NotGsm7`] if the text is not representable.
pub fn gsm7_pack_hex(text: &str) -> Result<String, PduError> {
    let mut septets = gsm7::text_to_septets(text)?;
    if septets.len() % 8 == 7 || (septets.len().is_multiple_of(8) && septets.last() == Some(&CR)) {
        septets.push(CR);
    }
    Ok(to_hex(&gsm7::pack(&septets, 0)))
}

/// Unpacks GSM7-packed hex (e.g. a Huawei `+CUSD` reply) to text.
///
/// When the octets hold a whole number of 8 septets and the last one is a CR, it is the
/// TS 23.038 padding and is dropped. Seven zero bits from a sender that does not pad read as
/// a trailing `@`; they are kept, because a real `@` in that position looks the same.
///
/// # Errors
/// Hex errors.
pub fn gsm7_unpack_hex(hex: &str) -> Result<String, PduError> {
    let octets = from_hex(hex)?;
    let count = gsm7::septets_in(octets.len());
    let mut septets = gsm7::unpack(&octets, 0, count);
    if count.is_multiple_of(8) && septets.last() == Some(&CR) {
        septets.pop();
    }
    Ok(gsm7::septets_to_text(&septets))
}

/// Encodes text as UCS2 (UTF-16BE) upper-case hex, for `AT+CSCS="UCS2"` requests.
pub fn ucs2_hex_encode(text: &str) -> String {
    to_hex(&ucs2::encode(text))
}

/// Decodes UCS2 (UTF-16BE) hex; surrogate pairs join, lone surrogates become U+FFFD.
///
/// # Errors
/// Hex errors.
pub fn ucs2_hex_decode(hex: &str) -> Result<String, PduError> {
    Ok(ucs2::decode(&from_hex(hex)?))
}

/// What a `+CUSD` data coding scheme (cell-broadcast DCS, TS 23.038 §5) says about the string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UssdCoding {
    /// The alphabet.
    pub alphabet: Alphabet,
    /// DCS 0x10 / 0x11: the text starts with a language indication (GSM7: two letters and a
    /// CR; UCS2: two GSM7 letters packed in the first two octets) that is not part of it.
    pub language_prefix: bool,
    /// Message class, if the DCS gives one.
    pub class: Option<MessageClass>,
}

/// Interprets a `+CUSD` data coding scheme.
///
/// Reserved values read as GSM7 as TS 23.038 asks.
///
/// # Errors
/// [`PduError::InvalidDcs`] for codings that cannot be shown as text: compressed data,
/// messages with a user data header (group 0x9_) and WAP-defined codings (0xE_).
pub fn ussd_coding(dcs: u8) -> Result<UssdCoding, PduError> {
    let invalid = |reason| PduError::InvalidDcs { dcs, reason };
    let plain = |alphabet| UssdCoding {
        alphabet,
        language_prefix: false,
        class: None,
    };
    let class = |bits: u8| match bits & 0x03 {
        0 => MessageClass::Class0,
        1 => MessageClass::Class1,
        2 => MessageClass::Class2,
        _ => MessageClass::Class3,
    };
    Ok(match dcs >> 4 {
        0x1 if dcs & 0x0F <= 1 => UssdCoding {
            alphabet: if dcs == 0x11 {
                Alphabet::Ucs2
            } else {
                Alphabet::Gsm7
            },
            language_prefix: true,
            class: None,
        },
        0x4..=0x7 => {
            if dcs & 0x20 != 0 {
                return Err(invalid("compressed USSD data is not supported"));
            }
            let alphabet = match (dcs >> 2) & 0x03 {
                1 => Alphabet::EightBit,
                2 => Alphabet::Ucs2,
                _ => Alphabet::Gsm7,
            };
            UssdCoding {
                alphabet,
                language_prefix: false,
                class: (dcs & 0x10 != 0).then(|| class(dcs)),
            }
        }
        0x9 => return Err(invalid("USSD with a user data header is not supported")),
        0xE => return Err(invalid("WAP-defined coding")),
        0xF => UssdCoding {
            alphabet: if dcs & 0x04 != 0 {
                Alphabet::EightBit
            } else {
                Alphabet::Gsm7
            },
            language_prefix: false,
            class: Some(class(dcs)),
        },
        // Language groups 0x0_, 0x2_ and every reserved value: GSM7.
        _ => plain(Alphabet::Gsm7),
    })
}

/// How the modem presents the `+CUSD` string, which depends on `AT+CSCS` and the vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UssdCharset {
    /// The network's coding as hex: packed GSM7, UCS2 or 8-bit octets, per the DCS (Huawei,
    /// and most modems with `AT+CSCS="HEX"` or in their default mode).
    RawHex,
    /// Always UCS2 hex whatever the DCS (`AT+CSCS="UCS2"`).
    Ucs2Hex,
    /// Already text (`AT+CSCS="GSM"` / `"IRA"`).
    Text,
}

/// Decodes a `+CUSD` string to text.
///
/// # Errors
/// [`PduError::InvalidDcs`] (see [`ussd_coding`]) or hex errors.
pub fn decode_ussd(payload: &str, dcs: u8, charset: UssdCharset) -> Result<String, PduError> {
    let coding = ussd_coding(dcs)?;
    match charset {
        UssdCharset::Text => Ok(payload.to_owned()),
        UssdCharset::Ucs2Hex => ucs2_hex_decode(payload),
        UssdCharset::RawHex => match coding.alphabet {
            Alphabet::Gsm7 => {
                let text = gsm7_unpack_hex(payload)?;
                Ok(if coding.language_prefix {
                    text.chars().skip(3).collect()
                } else {
                    text
                })
            }
            Alphabet::Ucs2 => {
                let octets = from_hex(payload)?;
                let skip = if coding.language_prefix { 2 } else { 0 };
                Ok(ucs2::decode(octets.get(skip..).unwrap_or_default()))
            }
            // 8-bit USSD has no defined character set; show the octets as Latin-1.
            Alphabet::EightBit => Ok(from_hex(payload)?.into_iter().map(char::from).collect()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huawei_reply() {
        // chan_quectel test/parse.c: +CUSD: 0,"CF2135487D2E4130572D0682BB1A",0 — a Russian
        // balance reply in Latin look-alikes; 15 septets, the 16th is the CR pad.
        let text = decode_ussd("CF2135487D2E4130572D0682BB1A", 0, UssdCharset::RawHex);
        assert_eq!(text.as_deref(), Ok("OCTATOK 0.51 p."));
        assert_eq!(
            gsm7_pack_hex("OCTATOK 0.51 p."),
            Ok("CF2135487D2E4130572D0682BB1A".into())
        );
    }

    #[test]
    fn cr_padding() {
        // 7 septets: a CR fills the last 7 bits, and is removed on the way back.
        let hex = gsm7_pack_hex("1234567").unwrap_or_default();
        assert_eq!(hex.len(), 14);
        assert!(hex.ends_with("1A"), "{hex}");
        assert_eq!(gsm7_unpack_hex(&hex).as_deref(), Ok("1234567"));
        // A real '@' in the last septet of an octet boundary survives.
        let hex = gsm7_pack_hex("123456@").unwrap_or_default();
        assert_eq!(gsm7_unpack_hex(&hex).as_deref(), Ok("123456@"));
        let hex = gsm7_pack_hex("1234567@").unwrap_or_default();
        assert_eq!(gsm7_unpack_hex(&hex).as_deref(), Ok("1234567@"));
        // Text ending in CR on an octet boundary gets a second CR, which the receiver shows
        // (TS 23.038: CR CR means the same as CR) instead of mistaking the first for padding.
        let hex = gsm7_pack_hex("1234567\r").unwrap_or_default();
        assert_eq!(hex.len(), 16);
        assert_eq!(gsm7_unpack_hex(&hex).as_deref(), Ok("1234567\r\r"));
        // *100# is the classic request.
        assert_eq!(gsm7_pack_hex("*100#"), Ok("AA180C3602".into()));
        assert_eq!(gsm7_unpack_hex("AA180C3602").as_deref(), Ok("*100#"));
    }

    #[test]
    fn ucs2_and_codings() {
        assert_eq!(ucs2_hex_encode("Да😃"), "04140430D83DDE03");
        assert_eq!(ucs2_hex_decode("04140430D83DDE03").as_deref(), Ok("Да😃"));
        assert_eq!(
            decode_ussd("04140430", 0x48, UssdCharset::RawHex).as_deref(),
            Ok("Да")
        );
        assert_eq!(
            decode_ussd("04140430", 0x0F, UssdCharset::Ucs2Hex).as_deref(),
            Ok("Да")
        );
        assert_eq!(
            decode_ussd("Hi", 0x0F, UssdCharset::Text).as_deref(),
            Ok("Hi")
        );
        assert_eq!(ussd_coding(0x0F).map(|c| c.alphabet), Ok(Alphabet::Gsm7));
        assert_eq!(ussd_coding(0x11).map(|c| c.language_prefix), Ok(true));
        assert_eq!(
            ussd_coding(0x44).map(|c| c.alphabet),
            Ok(Alphabet::EightBit)
        );
        assert_eq!(
            ussd_coding(0xF5).map(|c| c.class),
            Ok(Some(MessageClass::Class1))
        );
        assert!(matches!(
            ussd_coding(0x60),
            Err(PduError::InvalidDcs { dcs: 0x60, .. })
        ));
        assert!(ussd_coding(0x95).is_err());
        // Language prefix "en\r" stripped.
        let hex = gsm7_pack_hex("en\rHello").unwrap_or_default();
        assert_eq!(
            decode_ussd(&hex, 0x10, UssdCharset::RawHex).as_deref(),
            Ok("Hello")
        );
    }
}
