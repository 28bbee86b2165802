//! Octet-level plumbing shared by the decoders: hex conversion with precise errors and a
//! bounds-checked reader that reports which field ran out of input.

use super::error::{Field, PduError};

/// Decodes a hex string (either case; surrounding whitespace ignored) into octets.
///
/// # Errors
/// [`PduError::BadHexDigit`] or [`PduError::OddHexLength`].
pub fn from_hex(hex: &str) -> Result<Vec<u8>, PduError> {
    let hex = hex.trim();
    hex::decode(hex).map_err(|e| match e {
        hex::FromHexError::InvalidHexCharacter { c, index } => {
            PduError::BadHexDigit { index, found: c }
        }
        // `OddLength` and the (unused here) `InvalidStringLength` both mean a half octet.
        _ => PduError::OddHexLength { len: hex.len() },
    })
}

/// Encodes octets as upper-case hex, the form modems expect after `AT+CMGS`.
pub fn to_hex(octets: &[u8]) -> String {
    hex::encode_upper(octets)
}

/// A cursor over a PDU that never reads past the end: every read names the field it is for,
/// so a short PDU turns into [`PduError::Truncated`] with the offset and field.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Current octet offset.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Octets not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn u8(&mut self, field: Field) -> Result<u8, PduError> {
        let b = *self.buf.get(self.pos).ok_or(PduError::Truncated {
            offset: self.pos,
            field,
            needed: 1,
        })?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn take(&mut self, n: usize, field: Field) -> Result<&'a [u8], PduError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return Err(PduError::Truncated {
                offset: self.pos,
                field,
                needed: n - self.remaining(),
            });
        };
        let s = self.buf.get(self.pos..end).unwrap_or_default();
        self.pos = end;
        Ok(s)
    }
}

/// Reads the BCD semi-octet pair `b` the swapped way TS 23.040 stores it: low nibble first.
pub(crate) fn swapped_nibbles(b: u8) -> (u8, u8) {
    (b & 0x0F, b >> 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_errors_are_precise() {
        assert_eq!(from_hex(" 0a0B \n"), Ok(vec![0x0A, 0x0B]));
        assert_eq!(from_hex("0"), Err(PduError::OddHexLength { len: 1 }));
        assert_eq!(
            from_hex("00zz"),
            Err(PduError::BadHexDigit {
                index: 2,
                found: 'z'
            })
        );
        assert_eq!(to_hex(&[0xAB, 0x01]), "AB01");
    }

    #[test]
    fn reader_reports_field_and_offset() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u8(Field::FirstOctet), Ok(1));
        assert_eq!(
            r.take(5, Field::Timestamp),
            Err(PduError::Truncated {
                offset: 1,
                field: Field::Timestamp,
                needed: 3
            })
        );
        assert_eq!(r.take(2, Field::Timestamp), Ok(&[2u8, 3][..]));
        assert_eq!(
            r.u8(Field::Status),
            Err(PduError::Truncated {
                offset: 3,
                field: Field::Status,
                needed: 1
            })
        );
    }
}
