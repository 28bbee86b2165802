//! TP-DCS, the SMS data coding scheme (TS 23.038 §4): alphabet, message class, compression,
//! message-waiting groups.
//!
//! TS 23.038 says reserved codings "shall be assumed to be the GSM 7 bit default alphabet" by a
//! receiver, so every octet decodes to something; [`DataCoding::is_reserved`] tells them apart.

use serde::{Deserialize, Serialize};

/// How the user data is coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Alphabet {
    /// GSM 7-bit default alphabet, packed septets; TP-UDL counts septets.
    Gsm7,
    /// 8-bit data, kept as bytes; TP-UDL counts octets.
    EightBit,
    /// UCS2 (decoded as UTF-16BE); TP-UDL counts octets.
    Ucs2,
}

/// Message class (TS 23.038): where the phone should put the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageClass {
    /// Class 0, "flash": shown immediately, not stored.
    Class0,
    /// Class 1: mobile equipment specific.
    Class1,
    /// Class 2: SIM specific.
    Class2,
    /// Class 3: terminal equipment specific.
    Class3,
}

impl MessageClass {
    fn from_bits(b: u8) -> Self {
        match b & 0x03 {
            0 => Self::Class0,
            1 => Self::Class1,
            2 => Self::Class2,
            _ => Self::Class3,
        }
    }

    fn bits(self) -> u8 {
        match self {
            Self::Class0 => 0,
            Self::Class1 => 1,
            Self::Class2 => 2,
            Self::Class3 => 3,
        }
    }
}

/// Message waiting indication groups (DCS 0xC0–0xEF).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MessageWaiting {
    /// Whether the indication is being set (true) or cleared.
    pub active: bool,
    /// 0 voicemail, 1 fax, 2 e-mail, 3 other.
    pub kind: u8,
    /// Group 0xC0–0xCF: the message may be discarded after updating the indication.
    pub discard: bool,
}

/// A TP-DCS octet with accessors for what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DataCoding(pub u8);

impl DataCoding {
    /// GSM7, no class (0x00).
    pub const GSM7: Self = Self(0x00);
    /// 8-bit data, no class (0x04).
    pub const EIGHT_BIT: Self = Self(0x04);
    /// UCS2, no class (0x08).
    pub const UCS2: Self = Self(0x08);

    /// The coding for `alphabet` with an optional class, in the general coding group.
    pub fn new(alphabet: Alphabet, class: Option<MessageClass>) -> Self {
        let a = match alphabet {
            Alphabet::Gsm7 => 0x00,
            Alphabet::EightBit => 0x04,
            Alphabet::Ucs2 => 0x08,
        };
        match class {
            None => Self(a),
            Some(c) => Self(a | 0x10 | c.bits()),
        }
    }

    /// The octet.
    pub fn octet(self) -> u8 {
        self.0
    }

    /// The alphabet (reserved codings read as GSM7, per TS 23.038).
    pub fn alphabet(self) -> Alphabet {
        let d = self.0;
        match d >> 4 {
            0x0..=0x7 => match (d >> 2) & 0x03 {
                1 => Alphabet::EightBit,
                2 => Alphabet::Ucs2,
                _ => Alphabet::Gsm7,
            },
            0xE => Alphabet::Ucs2,
            0xF if d & 0x04 != 0 => Alphabet::EightBit,
            _ => Alphabet::Gsm7,
        }
    }

    /// The message class, if the coding gives one.
    pub fn class(self) -> Option<MessageClass> {
        let d = self.0;
        match d >> 4 {
            0x0..=0x7 if d & 0x10 != 0 => Some(MessageClass::from_bits(d)),
            0xF => Some(MessageClass::from_bits(d)),
            _ => None,
        }
    }

    /// Whether the user data is compressed (TS 23.042). Compressed data is not decompressed:
    /// it is delivered as bytes.
    pub fn is_compressed(self) -> bool {
        // Only the general (00xx) and auto-deletion (01xx) groups have a compression bit.
        self.0 & 0x80 == 0 && self.0 & 0x20 != 0
    }

    /// Whether the message is marked for automatic deletion (group 01xx).
    pub fn auto_delete(self) -> bool {
        self.0 >> 6 == 1
    }

    /// The message waiting indication, for groups 0xC0–0xEF.
    pub fn message_waiting(self) -> Option<MessageWaiting> {
        let d = self.0;
        matches!(d >> 4, 0xC..=0xE).then_some(MessageWaiting {
            active: d & 0x08 != 0,
            kind: d & 0x03,
            discard: d >> 4 == 0xC,
        })
    }

    /// Whether the octet is in a reserved coding group or uses the reserved alphabet value.
    pub fn is_reserved(self) -> bool {
        let d = self.0;
        match d >> 4 {
            0x0..=0x7 => (d >> 2) & 0x03 == 3,
            0x8..=0xB => true,
            0xF => d & 0x08 != 0,
            _ => false,
        }
    }
}

impl From<u8> for DataCoding {
    fn from(v: u8) -> Self {
        Self(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups() {
        let dc = DataCoding;
        assert_eq!(dc(0x00).alphabet(), Alphabet::Gsm7);
        assert_eq!(dc(0x04).alphabet(), Alphabet::EightBit);
        assert_eq!(dc(0x08).alphabet(), Alphabet::Ucs2);
        assert_eq!(dc(0x10).class(), Some(MessageClass::Class0));
        assert_eq!(dc(0x18).alphabet(), Alphabet::Ucs2);
        assert_eq!(dc(0x18).class(), Some(MessageClass::Class0));
        assert_eq!(dc(0xF1).alphabet(), Alphabet::Gsm7);
        assert_eq!(dc(0xF1).class(), Some(MessageClass::Class1));
        assert_eq!(dc(0xF6).alphabet(), Alphabet::EightBit);
        assert_eq!(dc(0xF6).class(), Some(MessageClass::Class2));
        assert_eq!(dc(0x00).class(), None);
        assert!(dc(0x20).is_compressed());
        assert!(!dc(0xF4).is_compressed());
        assert!(dc(0x48).auto_delete());
        assert_eq!(dc(0x48).alphabet(), Alphabet::Ucs2);
        assert_eq!(dc(0xE8).alphabet(), Alphabet::Ucs2);
        assert_eq!(
            dc(0xC8).message_waiting(),
            Some(MessageWaiting {
                active: true,
                kind: 0,
                discard: true
            })
        );
        assert!(dc(0x0C).is_reserved());
        assert_eq!(dc(0x0C).alphabet(), Alphabet::Gsm7);
        assert!(dc(0x90).is_reserved());
        assert_eq!(
            DataCoding::new(Alphabet::Ucs2, Some(MessageClass::Class0)),
            dc(0x18)
        );
        assert_eq!(DataCoding::new(Alphabet::Gsm7, None), DataCoding::GSM7);
    }
}
