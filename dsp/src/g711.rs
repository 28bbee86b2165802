//! G.711 µ-law and A-law, bit-exact with ITU-T G.711 as implemented by the
//! ITU's reference software (G.191 STL `g711.c`).
//!
//! Linear samples are 16-bit: µ-law uses the top 14 bits, A-law the top 13.
//! Encoding is branch-light arithmetic (segment = bit length of the
//! magnitude); decoding is a 256-entry table built at compile time.
//!
//! Negative inputs are folded with one's complement (`!x`), not negation,
//! as the reference does: the negative range of a two's-complement code is
//! one step larger, and this keeps every decision interval symmetric.

/// µ-law (G.711 Table 2a, North America and Japan).
pub mod ulaw {
    /// Encodes one 16-bit linear sample.
    #[inline]
    #[must_use]
    pub fn encode(x: i16) -> u8 {
        let mag = if x < 0 { !x } else { x };
        // 14-bit magnitude plus the µ-law bias of 33, clipped to 13 bits.
        let biased = ((mag >> 2) + 33).min(0x1FFF);
        let biased = u32::from(biased.unsigned_abs());
        // Segment 1..=8: 1 + bit length of biased >> 6.
        let seg = 1 + (32 - (biased >> 6).leading_zeros());
        let mantissa = (biased >> seg) & 0x0F;
        let code = ((8 - seg) << 4) | (0x0F - mantissa);
        let sign = if x >= 0 { 0x80 } else { 0 };
        u8::try_from(code | sign).unwrap_or(0)
    }

    /// Decodes one code to a 16-bit linear sample.
    #[inline]
    #[must_use]
    pub fn decode(code: u8) -> i16 {
        DECODE[usize::from(code)]
    }

    /// Encodes a block (`out` gets `min(input.len(), out.len())` codes).
    pub fn encode_block(input: &[i16], out: &mut [u8]) {
        for (o, &x) in out.iter_mut().zip(input) {
            *o = encode(x);
        }
    }

    /// Decodes a block (`out` gets `min(input.len(), out.len())` samples).
    pub fn decode_block(input: &[u8], out: &mut [i16]) {
        for (o, &c) in out.iter_mut().zip(input) {
            *o = decode(c);
        }
    }

    #[expect(
        clippy::cast_possible_truncation,
        reason = "magnitudes are at most 32124"
    )]
    const fn decode_one(code: u8) -> i16 {
        let inv = !code;
        let exponent = ((inv >> 4) & 0x07) as i32;
        let mantissa = (inv & 0x0F) as i32;
        let step = 4 << (exponent + 1);
        let magnitude = (0x80 << exponent) + step * mantissa + step / 2 - 4 * 33;
        (if code < 0x80 { -magnitude } else { magnitude }) as i16
    }

    #[expect(clippy::cast_possible_truncation, reason = "i < 256")]
    const DECODE: [i16; 256] = {
        let mut t = [0i16; 256];
        let mut i = 0;
        while i < 256 {
            t[i] = decode_one(i as u8);
            i += 1;
        }
        t
    };
}

/// A-law (G.711 Table 1a, Europe and most of the world).
pub mod alaw {
    /// Encodes one 16-bit linear sample.
    #[inline]
    #[must_use]
    pub fn encode(x: i16) -> u8 {
        let mag = if x < 0 { !x } else { x };
        // 12-bit magnitude (13-bit code without sign).
        let ix = u32::from((mag >> 4).unsigned_abs());
        let code = if ix > 15 {
            // Segment 1..=7 from the bit length; the leading 1 is implicit.
            let exp = (32 - ix.leading_zeros()) - 4;
            let mantissa = (ix >> (exp - 1)) - 16;
            (exp << 4) | mantissa
        } else {
            ix
        };
        let sign = if x >= 0 { 0x80 } else { 0 };
        u8::try_from((code | sign) ^ 0x55).unwrap_or(0)
    }

    /// Decodes one code to a 16-bit linear sample.
    #[inline]
    #[must_use]
    pub fn decode(code: u8) -> i16 {
        DECODE[usize::from(code)]
    }

    /// Encodes a block (`out` gets `min(input.len(), out.len())` codes).
    pub fn encode_block(input: &[i16], out: &mut [u8]) {
        for (o, &x) in out.iter_mut().zip(input) {
            *o = encode(x);
        }
    }

    /// Decodes a block (`out` gets `min(input.len(), out.len())` samples).
    pub fn decode_block(input: &[u8], out: &mut [i16]) {
        for (o, &c) in out.iter_mut().zip(input) {
            *o = decode(c);
        }
    }

    #[expect(
        clippy::cast_possible_truncation,
        reason = "magnitudes are at most 32256"
    )]
    const fn decode_one(code: u8) -> i16 {
        let ix = (code ^ 0x55) & 0x7F;
        let exp = (ix >> 4) as i32;
        let mut mantissa = (ix & 0x0F) as i32;
        if exp > 0 {
            mantissa += 16;
        }
        mantissa = (mantissa << 4) + 8;
        if exp > 1 {
            mantissa <<= exp - 1;
        }
        (if code > 127 { mantissa } else { -mantissa }) as i16
    }

    #[expect(clippy::cast_possible_truncation, reason = "i < 256")]
    const DECODE: [i16; 256] = {
        let mut t = [0i16; 256];
        let mut i = 0;
        while i < 256 {
            t[i] = decode_one(i as u8);
            i += 1;
        }
        t
    };
}

/// Which G.711 law a channel uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law.
    Ulaw,
    /// A-law.
    Alaw,
}

impl Law {
    /// Encodes one sample with this law.
    #[inline]
    #[must_use]
    pub fn encode(self, x: i16) -> u8 {
        match self {
            Law::Ulaw => ulaw::encode(x),
            Law::Alaw => alaw::encode(x),
        }
    }

    /// Decodes one code with this law.
    #[inline]
    #[must_use]
    pub fn decode(self, code: u8) -> i16 {
        match self {
            Law::Ulaw => ulaw::decode(code),
            Law::Alaw => alaw::decode(code),
        }
    }

    /// Encodes then decodes a block in place: what a signal sounds like
    /// after one G.711 hop.
    pub fn round_trip(self, buf: &mut [i16]) {
        for x in buf.iter_mut() {
            *x = self.decode(self.encode(*x));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known code points (G.711 tables; values as 16-bit linear).
    #[test]
    fn ulaw_code_points() {
        assert_eq!(ulaw::decode(0xFF), 0);
        assert_eq!(ulaw::decode(0x7F), 0);
        assert_eq!(ulaw::decode(0x80), 32124);
        assert_eq!(ulaw::decode(0x00), -32124);
        assert_eq!(ulaw::decode(0xFE), 8);
        assert_eq!(ulaw::decode(0x7E), -8);
        assert_eq!(ulaw::decode(0x8F), 16764);
        assert_eq!(ulaw::decode(0x90), 15996);
        assert_eq!(ulaw::decode(0xF0), 120);
        assert_eq!(ulaw::decode(0xEF), 132);
        assert_eq!(ulaw::encode(0), 0xFF);
        assert_eq!(ulaw::encode(-1), 0x7F);
        assert_eq!(ulaw::encode(i16::MAX), 0x80);
        assert_eq!(ulaw::encode(i16::MIN), 0x00);
        assert_eq!(ulaw::encode(32124), 0x80);
        // The digital milliwatt (G.711 Table 5): a 1 kHz sine at 0 dBm0.
        let dmw = [0x1E, 0x0B, 0x0B, 0x1E, 0x9E, 0x8B, 0x8B, 0x9E];
        let lin: Vec<i16> = dmw.iter().map(|&c| ulaw::decode(c)).collect();
        assert_eq!(lin[0], -lin[4]);
        assert_eq!(lin[1], -lin[5]);
        let dbm0 = crate::level::rms_dbm0(&lin);
        assert!(dbm0.abs() < 0.1, "digital milliwatt reads {dbm0} dBm0");
    }

    #[test]
    fn alaw_code_points() {
        assert_eq!(alaw::decode(0xD5), 8);
        assert_eq!(alaw::decode(0x55), -8);
        assert_eq!(alaw::decode(0xAA), 32256);
        assert_eq!(alaw::decode(0x2A), -32256);
        assert_eq!(alaw::decode(0x80), 5504);
        assert_eq!(alaw::decode(0x00), -5504);
        assert_eq!(alaw::encode(0), 0xD5);
        assert_eq!(alaw::encode(-1), 0x55);
        assert_eq!(alaw::encode(i16::MAX), 0xAA);
        assert_eq!(alaw::encode(i16::MIN), 0x2A);
        // The A-law digital milliwatt (G.711 Table 6).
        let dmw = [0x34, 0x21, 0x21, 0x34, 0xB4, 0xA1, 0xA1, 0xB4];
        let lin: Vec<i16> = dmw.iter().map(|&c| alaw::decode(c)).collect();
        let dbm0 = crate::level::rms_dbm0(&lin);
        assert!(dbm0.abs() < 0.1, "digital milliwatt reads {dbm0} dBm0");
    }

    /// Every code decodes to a value that encodes back to the same code
    /// (µ-law's "negative zero" 0x7F is the one code that maps to +0).
    #[test]
    fn every_code_round_trips() {
        for c in 0..=255u8 {
            let expect = if c == 0x7F { 0xFF } else { c };
            assert_eq!(ulaw::encode(ulaw::decode(c)), expect, "ulaw {c:#04x}");
            assert_eq!(alaw::encode(alaw::decode(c)), c, "alaw {c:#04x}");
        }
    }

    /// Over all 65 536 inputs: encoding is monotonic, the decoded value is
    /// the nearest reconstruction level within half a step, and the code is
    /// symmetric under one's complement.
    #[test]
    fn full_range_properties() {
        for law in [Law::Ulaw, Law::Alaw] {
            let mut prev = i32::MIN;
            for x in i16::MIN..=i16::MAX {
                let y = law.decode(law.encode(x));
                assert!(i32::from(y) >= prev, "{law:?} not monotonic at {x}");
                prev = i32::from(y);
                // Step of the segment: distance to the next reconstruction level.
                let err = (i32::from(x) - i32::from(y)).abs();
                let mag = i32::from(x).abs();
                let max_err = match law {
                    Law::Ulaw => (mag + 132) / 32 + 4,
                    Law::Alaw => (mag / 32).max(16) + 8,
                };
                assert!(err <= max_err, "{law:?} x={x} y={y} err={err}");
                let neg = !x;
                assert_eq!(
                    law.encode(neg) ^ 0x80,
                    law.encode(x),
                    "{law:?} asymmetric at {x}"
                );
            }
        }
    }

    #[test]
    fn block_helpers_match_scalar() {
        let input: Vec<i16> = (-300..300).map(|i| i * 97).collect();
        let mut codes = vec![0u8; input.len()];
        let mut back = vec![0i16; input.len()];
        ulaw::encode_block(&input, &mut codes);
        ulaw::decode_block(&codes, &mut back);
        let mut rt = input.clone();
        Law::Ulaw.round_trip(&mut rt);
        assert_eq!(back, rt);
        alaw::encode_block(&input, &mut codes);
        alaw::decode_block(&codes, &mut back);
        let mut rt = input;
        Law::Alaw.round_trip(&mut rt);
        assert_eq!(back, rt);
    }
}
