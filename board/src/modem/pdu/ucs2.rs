//! "UCS2" user data, treated as UTF-16BE as real phones send it: surrogate pairs (emoji) decode
//! to one character, lone surrogates become U+FFFD, and an odd trailing octet (half a code
//! unit, which cannot carry a character) is dropped.

/// Decodes big-endian UTF-16 octets.
pub fn decode(octets: &[u8]) -> String {
    // `chunks_exact` leaves out a dangling half unit. Dropping it (rather than showing
    // U+FFFD) keeps decode → encode within the 140 octets the PDU had.
    let units = octets.chunks_exact(2).filter_map(|c| match *c {
        [hi, lo] => Some(u16::from_be_bytes([hi, lo])),
        _ => None,
    });
    char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// Encodes text as big-endian UTF-16 octets.
pub fn encode(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// UTF-16 code units `text` needs (an emoji outside the BMP needs two).
pub fn unit_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surrogates() {
        assert_eq!(decode(&[0xD8, 0x3D, 0xDE, 0x03]), "😃");
        assert_eq!(encode("😃"), [0xD8, 0x3D, 0xDE, 0x03]);
        assert_eq!(unit_len("a😃"), 3);
        // Lone high surrogate, lone low surrogate, odd octet.
        assert_eq!(decode(&[0xD8, 0x3D, 0x00, 0x41]), "\u{FFFD}A");
        assert_eq!(decode(&[0xDE, 0x03]), "\u{FFFD}");
        assert_eq!(decode(&[0x00, 0x41, 0x00]), "A");
    }
}
