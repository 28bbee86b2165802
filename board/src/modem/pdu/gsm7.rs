//! The GSM 7-bit default alphabet and its extension table (3GPP TS 23.038 §6.2.1), and septet
//! packing (LSB first, optionally after a user data header).
//!
//! The table below was written from TS 23.038 itself (note 0x5F is `§` and 0x60 is `¿`; some
//! widely copied tables have a backtick at 0x5F). National language shift tables (UDH IEI
//! 0x24/0x25) are not implemented: such messages are recognised by the UDH parser and decoded
//! with the default tables.

use super::error::PduError;

/// The escape septet that selects the extension table for the next septet.
pub const ESC: u8 = 0x1B;

/// Default alphabet, indexed by septet value.
const BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{A0}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// Extension table entry for the septet after ESC, if TS 23.038 defines one.
fn extension(septet: u8) -> Option<char> {
    Some(match septet {
        0x0A => '\u{0C}', // form feed (page break)
        0x14 => '^',
        0x28 => '{',
        0x29 => '}',
        0x2F => '\\',
        0x3C => '[',
        0x3D => '~',
        0x3E => ']',
        0x40 => '|',
        0x65 => '€',
        _ => return None,
    })
}

/// How a character is written in GSM7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gsm7Char {
    /// One septet of the default alphabet.
    Basic(u8),
    /// ESC followed by this septet of the extension table (costs two septets).
    Extended(u8),
}

impl Gsm7Char {
    /// Septets this character occupies (1 or 2).
    pub fn septets(self) -> usize {
        match self {
            Self::Basic(_) => 1,
            Self::Extended(_) => 2,
        }
    }
}

/// Reverse of [`extension`], by character.
fn extension_code(ch: char) -> Option<u8> {
    Some(match ch {
        '\u{0C}' => 0x0A,
        '^' => 0x14,
        '{' => 0x28,
        '}' => 0x29,
        '\\' => 0x2F,
        '[' => 0x3C,
        '~' => 0x3D,
        ']' => 0x3E,
        '|' => 0x40,
        '€' => 0x65,
        _ => return None,
    })
}

/// Septet of each ASCII character in the default alphabet (0xFF = not there), built from
/// [`BASIC`] at compile time so the common case is one lookup.
const ASCII_TO_SEPTET: [u8; 128] = {
    let mut table = [0xFFu8; 128];
    let mut s = 0;
    while s < 128 {
        let c = BASIC[s] as u32;
        if c < 128 && s != ESC as usize {
            #[expect(clippy::cast_possible_truncation, reason = "s < 128")]
            {
                table[c as usize] = s as u8;
            }
        }
        s += 1;
    }
    table
};

/// Looks up `ch` in the default alphabet, then in the extension table.
pub fn encode_char(ch: char) -> Option<Gsm7Char> {
    let code = u32::from(ch);
    if let Some(&s) = usize::try_from(code)
        .ok()
        .and_then(|i| ASCII_TO_SEPTET.get(i))
        && s != 0xFF
    {
        return Some(Gsm7Char::Basic(s));
    }
    if let Some(ext) = extension_code(ch) {
        return Some(Gsm7Char::Extended(ext));
    }
    if code < 128 {
        return None;
    }
    // ESC (0x1B) is not a character; its slot in BASIC holds a stand-in for display only.
    BASIC
        .iter()
        .position(|&c| c == ch)
        .and_then(|i| u8::try_from(i).ok())
        .filter(|&s| s != ESC)
        .map(Gsm7Char::Basic)
}

/// Septets `text` needs in GSM7, or `None` if some character is not representable.
pub fn septet_len(text: &str) -> Option<usize> {
    text.chars()
        .map(|c| encode_char(c).map(Gsm7Char::septets))
        .sum()
}

/// Converts text to septet values (extension characters become ESC + code).
///
/// # Errors
/// [`PduError::NotGsm7`] for the first character outside the alphabet.
pub fn text_to_septets(text: &str) -> Result<Vec<u8>, PduError> {
    let mut out = Vec::with_capacity(text.len());
    for ch in text.chars() {
        match encode_char(ch).ok_or(PduError::NotGsm7 { ch })? {
            Gsm7Char::Basic(s) => out.push(s),
            Gsm7Char::Extended(s) => {
                out.push(ESC);
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// Converts septet values to text.
///
/// Per TS 23.038: ESC followed by a code the extension table does not define shows the default
/// alphabet character of that code; ESC ESC (reserved for a further table) and a trailing ESC
/// show a space. Values above 0x7F are masked to 7 bits.
pub fn septets_to_text(septets: &[u8]) -> String {
    let mut out = String::with_capacity(septets.len());
    let mut it = septets.iter().map(|&s| s & 0x7F);
    while let Some(s) = it.next() {
        if s != ESC {
            out.push(basic(s));
            continue;
        }
        match it.next() {
            Some(ESC) | None => out.push(' '),
            Some(e) => out.push(extension(e).unwrap_or_else(|| basic(e))),
        }
    }
    out
}

fn basic(septet: u8) -> char {
    BASIC
        .get(usize::from(septet & 0x7F))
        .copied()
        .unwrap_or(' ')
}

/// Packs septets LSB first, starting `skip_bits` into the output (used to leave room for a user
/// data header: the header octets are written over the first bytes afterwards).
pub fn pack(septets: &[u8], skip_bits: usize) -> Vec<u8> {
    let total_bits = skip_bits + septets.len() * 7;
    let mut out = vec![0u8; total_bits.div_ceil(8)];
    for (i, &s) in septets.iter().enumerate() {
        let bit = skip_bits + i * 7;
        let (byte, shift) = (bit / 8, bit % 8);
        let v = u16::from(s & 0x7F) << shift;
        let [lo, hi] = v.to_le_bytes();
        if let Some(b) = out.get_mut(byte) {
            *b |= lo;
        }
        if let Some(b) = out.get_mut(byte + 1) {
            *b |= hi;
        }
    }
    out
}

/// Unpacks `count` septets starting at septet index `first` (septet `i` lives at bit `7 * i`).
/// Missing trailing bits read as zero; callers check lengths before calling.
pub fn unpack(octets: &[u8], first: usize, count: usize) -> Vec<u8> {
    (first..first + count)
        .map(|i| {
            let bit = i * 7;
            let (byte, shift) = (bit / 8, bit % 8);
            let lo = octets.get(byte).copied().unwrap_or(0);
            let hi = octets.get(byte + 1).copied().unwrap_or(0);
            let v = u16::from_le_bytes([lo, hi]) >> shift;
            v.to_le_bytes()[0] & 0x7F
        })
        .collect()
}

/// Septets that can be unpacked from `octets` octets (no septet count available).
pub fn septets_in(octets: usize) -> usize {
    octets * 8 / 7
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_ts_23_038_landmarks() {
        assert_eq!(encode_char('@'), Some(Gsm7Char::Basic(0x00)));
        assert_eq!(encode_char('§'), Some(Gsm7Char::Basic(0x5F)));
        assert_eq!(encode_char('¿'), Some(Gsm7Char::Basic(0x60)));
        assert_eq!(encode_char('à'), Some(Gsm7Char::Basic(0x7F)));
        assert_eq!(encode_char('Ç'), Some(Gsm7Char::Basic(0x09)));
        assert_eq!(encode_char('€'), Some(Gsm7Char::Extended(0x65)));
        assert_eq!(encode_char('['), Some(Gsm7Char::Extended(0x3C)));
        assert_eq!(encode_char('`'), None);
        assert_eq!(encode_char('ç'), None);
        // The ESC slot is not a character of its own.
        assert_eq!(encode_char('\u{A0}'), None);
        assert_eq!(septet_len("a€{"), Some(5));
        assert_eq!(septet_len("a😀"), None);
    }

    #[test]
    fn every_character_round_trips() {
        for s in 0u8..128 {
            if s == ESC {
                continue;
            }
            let text = septets_to_text(&[s]);
            assert_eq!(text_to_septets(&text), Ok(vec![s]), "septet {s:#x}");
        }
        for s in 0u8..128 {
            if let Some(c) = extension(s) {
                assert_eq!(text_to_septets(&c.to_string()), Ok(vec![ESC, s]));
            }
        }
    }

    #[test]
    fn unknown_escapes_render_per_spec() {
        // ESC + undefined code → default-alphabet character of that code.
        assert_eq!(septets_to_text(&[ESC, 0x41]), "A");
        assert_eq!(septets_to_text(&[ESC, ESC, 0x41]), " A");
        assert_eq!(septets_to_text(&[0x41, ESC]), "A ");
    }

    #[test]
    fn packing_vectors() {
        let pack_text = |t: &str| pack(&text_to_septets(t).unwrap_or_default(), 0);
        assert_eq!(pack_text("123"), [0x31, 0xD9, 0x0C]);
        assert_eq!(
            pack_text("Hello World!"),
            [
                0xC8, 0x32, 0x9B, 0xFD, 0x06, 0x5D, 0xDF, 0x72, 0x36, 0x39, 0x04
            ]
        );
        // 8 septets fill exactly 7 octets.
        let eight = pack_text("abcdefgh");
        assert_eq!(eight.len(), 7);
        assert_eq!(septets_to_text(&unpack(&eight, 0, 8)), "abcdefgh");
        // 25 septets: the last one sits alone in the 22nd octet.
        let t25 = "abcdefghijklmnopqrstuvwxy";
        let p25 = pack_text(t25);
        assert_eq!(p25.len(), 22);
        // Septet 24 starts at bit 168 = octet 21, bit 0: 'y' (0x79) alone.
        assert_eq!(p25.last(), Some(&0x79));
        assert_eq!(septets_to_text(&unpack(&p25, 0, 25)), t25);
    }

    #[test]
    fn packing_after_a_header_keeps_header_bits_free() {
        // A 6-octet UDH leaves 48 bits; septets start at bit 49 (1 fill bit).
        let s = text_to_septets("Hi").unwrap_or_default();
        let packed = pack(&s, 49);
        assert!(packed.iter().take(6).all(|&b| b == 0));
        assert_eq!(septets_to_text(&unpack(&packed, 7, 2)), "Hi");
    }
}
