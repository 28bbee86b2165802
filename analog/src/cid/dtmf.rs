//! DTMF caller ID (EN 300 659-1 annex and national variants, as spandsp documents them).
//!
//! | variant | countries | number | absent |
//! |---|---|---|---|
//! | V1 | BE, BR, DK, FI, IS, IN, NL, SA, SE, UY | `A<number>C` (`D<redirecting>` may follow the number) | `B00C` unavailable, `B10C` private |
//! | V2 | — | `A<number>#` | `D1#` private, `D2#` international, `D3#` unavailable |
//! | V3 | TW, KW | `D<number>C` | — |
//! | V4 | DK, NL | `<number>#` | — |
//!
//! [`encode`] produces the digit string for a variant; [`DtmfClipReceiver`] collects digits
//! as they are detected and recognises any of the four layouts.

use heapless::String;

use super::{Absence, CallerId, MAX_NUMBER};
use crate::Millis;

/// A DTMF CLIP layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// `A<number>C`, absence `B<code>C`.
    V1,
    /// `A<number>#`, absence `D<code>#`.
    V2,
    /// `D<number>C`.
    V3,
    /// `<number>#`.
    V4,
}

/// Longest digit string [`encode`] produces.
pub const MAX_DIGITS: usize = MAX_NUMBER + 4;

/// The digits to send for `cid` in `variant`. The number keeps only DTMF digits (`0-9`, `*`
/// is dropped since it has no place in these layouts); an absent number uses the variant's
/// absence code, or for V3/V4 (which have none) nothing is sent (`None`).
#[must_use]
pub fn encode(cid: &CallerId, variant: Variant) -> Option<String<MAX_DIGITS>> {
    let mut s: String<MAX_DIGITS> = String::new();
    let digits = |s: &mut String<MAX_DIGITS>, n: &str| {
        for c in n.chars().filter(char::is_ascii_digit) {
            let _ = s.push(c);
        }
    };
    match (&cid.number, variant) {
        (Some(n), v) => {
            let (open, close) = match v {
                Variant::V1 => (Some('A'), 'C'),
                Variant::V2 => (Some('A'), '#'),
                Variant::V3 => (Some('D'), 'C'),
                Variant::V4 => (None, '#'),
            };
            if let Some(o) = open {
                let _ = s.push(o);
            }
            digits(&mut s, n);
            let _ = s.push(close);
        }
        (None, Variant::V1) => {
            let code = match cid.number_absent.unwrap_or(Absence::Unavailable) {
                Absence::Unavailable => "B00C",
                Absence::Private => "B10C",
            };
            let _ = s.push_str(code);
        }
        (None, Variant::V2) => {
            let code = match cid.number_absent.unwrap_or(Absence::Unavailable) {
                Absence::Private => "D1#",
                Absence::Unavailable => "D3#",
            };
            let _ = s.push_str(code);
        }
        (None, Variant::V3 | Variant::V4) => return None,
    }
    Some(s)
}

/// Gap after which a partial DTMF CLIP string is abandoned (the digits come 70 ms on / 70 ms
/// off; a second of nothing means the string is over or was not CLIP).
pub const DIGIT_TIMEOUT_MS: Millis = 1000;

/// Collects detected digits into a DTMF caller ID.
#[derive(Debug, Clone, Default)]
pub struct DtmfClipReceiver {
    digits: String<MAX_DIGITS>,
    last: Option<Millis>,
}

impl DtmfClipReceiver {
    /// An empty receiver.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The digits collected so far.
    #[must_use]
    pub fn pending(&self) -> &str {
        &self.digits
    }

    /// Forgets collected digits.
    pub fn reset(&mut self) {
        self.digits.clear();
        self.last = None;
    }

    /// Feeds a detected digit; returns the caller ID when the string is complete.
    pub fn push(&mut self, digit: char, now: Millis) -> Option<CallerId> {
        if self
            .last
            .is_some_and(|t| now.saturating_sub(t) > DIGIT_TIMEOUT_MS)
        {
            self.digits.clear();
        }
        self.last = Some(now);
        if self.digits.push(digit).is_err() {
            // Longer than any CLIP string: not CLIP, start over with this digit.
            self.digits.clear();
            let _ = self.digits.push(digit);
        }
        let result = parse(&self.digits);
        if result.is_some() || matches!(digit, 'C' | '#') {
            self.digits.clear();
            self.last = None;
        }
        result
    }
}

/// Parses a complete DTMF CLIP string of any variant.
#[must_use]
pub fn parse(s: &str) -> Option<CallerId> {
    // CLIP strings are DTMF symbols: anything else is not one (and slicing below relies on
    // every character being one byte).
    if !s.is_ascii() {
        return None;
    }
    let b = s.as_bytes();
    let (&first, _) = b.split_first()?;
    let (&last, _) = b.split_last()?;
    if b.len() < 2 || !matches!(last, b'C' | b'#') {
        return None;
    }
    let inner = &s[1..s.len() - 1];
    let number = |n: &str| -> Option<CallerId> {
        if n.is_empty() || !n.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        Some(CallerId::new(n, None))
    };
    match (first, last) {
        (b'A', b'C') => {
            // A<number>[D<redirecting>][B<info>]C: the calling number is up to the first
            // letter.
            let end = inner.find(['B', 'D']).unwrap_or(inner.len());
            number(&inner[..end])
        }
        (b'A', b'#') => number(inner),
        (b'B', b'C') => match inner {
            "00" => Some(CallerId::absent(Absence::Unavailable)),
            "10" | "01" => Some(CallerId::absent(Absence::Private)),
            _ => None,
        },
        (b'D', b'#') => match inner {
            "1" => Some(CallerId::absent(Absence::Private)),
            "2" | "3" => Some(CallerId::absent(Absence::Unavailable)),
            _ => None,
        },
        (b'D', b'C') => number(inner),
        (d, b'#') if d.is_ascii_digit() => number(&s[..s.len() - 1]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the cid_decode fuzz target: a string starting with a multi-byte character
    /// was sliced inside it.
    #[test]
    fn non_dtmf_characters_are_not_clip() {
        assert_eq!(parse("\u{349}\u{4}C"), None);
        assert_eq!(parse("A12\u{e9}C"), None);
    }

    #[test]
    fn all_variants_round_trip() {
        let cid = CallerId::new("0123456789", None);
        for v in [Variant::V1, Variant::V2, Variant::V3, Variant::V4] {
            let s = encode(&cid, v).expect("has a number");
            let back = parse(&s).expect("parses");
            assert_eq!(back.number.as_deref(), Some("0123456789"), "{v:?} {s}");
        }
        assert_eq!(encode(&cid, Variant::V1).as_deref(), Some("A0123456789C"));
        assert_eq!(encode(&cid, Variant::V4).as_deref(), Some("0123456789#"));
    }

    #[test]
    fn absence_codes() {
        let private = CallerId::absent(Absence::Private);
        assert_eq!(encode(&private, Variant::V1).as_deref(), Some("B10C"));
        assert_eq!(encode(&private, Variant::V2).as_deref(), Some("D1#"));
        assert_eq!(encode(&private, Variant::V3), None);
        assert_eq!(
            parse("B10C").and_then(|c| c.number_absent),
            Some(Absence::Private)
        );
        assert_eq!(
            parse("B00C").and_then(|c| c.number_absent),
            Some(Absence::Unavailable)
        );
        assert_eq!(
            parse("D3#").and_then(|c| c.number_absent),
            Some(Absence::Unavailable)
        );
        assert_eq!(
            parse("A123D456C").and_then(|c| c.number).as_deref(),
            Some("123")
        );
    }

    #[test]
    fn receiver_collects_with_timeouts() {
        let mut r = DtmfClipReceiver::new();
        let mut now = 0;
        let mut got = None;
        for c in "A5551234C".chars() {
            got = r.push(c, now);
            now += 140;
        }
        assert_eq!(got.and_then(|c| c.number).as_deref(), Some("5551234"));
        // A stale partial string is dropped.
        assert!(r.push('A', 10_000).is_none());
        assert!(r.push('1', 10_140).is_none());
        assert!(r.push('#', 20_000).is_none());
        assert_eq!(r.pending(), "");
        assert!(parse("").is_none());
        assert!(parse("AC").is_none());
        assert!(parse("X12#").is_none());
    }
}
