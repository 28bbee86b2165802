//! DTMF (ITU-T Q.23): the 16 digits and their frequencies, the detector and
//! the generator.

mod detector;
mod generator;

pub use detector::{DtmfConfig, DtmfDetector, DtmfEvent};
pub use generator::{DtmfGenConfig, DtmfGenerator};

use crate::error::{DspError, Result};

/// Low-group (row) frequencies in Hz.
pub const ROW_HZ: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// High-group (column) frequencies in Hz.
pub const COL_HZ: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

/// Keypad layout, row-major: `KEYPAD[row][col]`.
const KEYPAD: [[DtmfDigit; 4]; 4] = {
    use DtmfDigit::*;
    [
        [One, Two, Three, A],
        [Four, Five, Six, B],
        [Seven, Eight, Nine, C],
        [Star, Zero, Hash, D],
    ]
};

/// One of the 16 DTMF digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DtmfDigit {
    /// `1` (697 + 1209 Hz)
    One,
    /// `2` (697 + 1336 Hz)
    Two,
    /// `3` (697 + 1477 Hz)
    Three,
    /// `A` (697 + 1633 Hz)
    A,
    /// `4` (770 + 1209 Hz)
    Four,
    /// `5` (770 + 1336 Hz)
    Five,
    /// `6` (770 + 1477 Hz)
    Six,
    /// `B` (770 + 1633 Hz)
    B,
    /// `7` (852 + 1209 Hz)
    Seven,
    /// `8` (852 + 1336 Hz)
    Eight,
    /// `9` (852 + 1477 Hz)
    Nine,
    /// `C` (852 + 1633 Hz)
    C,
    /// `*` (941 + 1209 Hz)
    Star,
    /// `0` (941 + 1336 Hz)
    Zero,
    /// `#` (941 + 1477 Hz)
    Hash,
    /// `D` (941 + 1633 Hz)
    D,
}

impl DtmfDigit {
    /// All 16 digits in keypad order (`123A456B789C*0#D`).
    pub const ALL: [DtmfDigit; 16] = {
        let mut all = [DtmfDigit::One; 16];
        let mut i = 0;
        while i < 16 {
            all[i] = KEYPAD[i / 4][i % 4];
            i += 1;
        }
        all
    };

    /// The digit at keypad `row` and `col` (both `0..4`).
    #[must_use]
    pub fn from_position(row: usize, col: usize) -> Option<DtmfDigit> {
        KEYPAD.get(row)?.get(col).copied()
    }

    /// Parses `0-9`, `*`, `#`, `A-D` (also lower case).
    #[must_use]
    pub fn from_char(c: char) -> Option<DtmfDigit> {
        let i = "123A456B789C*0#D".find(c.to_ascii_uppercase())?;
        DtmfDigit::ALL.get(i).copied()
    }

    /// Parses a whole digit string, naming the first invalid character.
    ///
    /// # Errors
    /// [`DspError::InvalidDigit`] for any character that is not a DTMF digit.
    pub fn parse_str(s: &str) -> Result<Vec<DtmfDigit>> {
        s.chars()
            .enumerate()
            .map(|(position, digit)| {
                DtmfDigit::from_char(digit).ok_or(DspError::InvalidDigit { digit, position })
            })
            .collect()
    }

    /// The character: `0-9`, `*`, `#`, `A-D`.
    #[must_use]
    pub fn to_char(self) -> char {
        let b = b"123A456B789C*0#D"[self.index()];
        char::from(b)
    }

    /// Keypad row `0..4` (index into [`ROW_HZ`]).
    #[must_use]
    pub fn row(self) -> usize {
        self.index() / 4
    }

    /// Keypad column `0..4` (index into [`COL_HZ`]).
    #[must_use]
    pub fn col(self) -> usize {
        self.index() % 4
    }

    /// `(low, high)` frequencies in Hz.
    #[must_use]
    pub fn frequencies(self) -> (f32, f32) {
        (ROW_HZ[self.row()], COL_HZ[self.col()])
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for DtmfDigit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.to_char())
    }
}

impl TryFrom<char> for DtmfDigit {
    type Error = DspError;

    fn try_from(c: char) -> Result<Self> {
        DtmfDigit::from_char(c).ok_or(DspError::InvalidDigit {
            digit: c,
            position: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_map_both_ways() {
        for (i, c) in "123A456B789C*0#D".chars().enumerate() {
            let d = DtmfDigit::from_char(c).expect("digit");
            assert_eq!(d.to_char(), c);
            assert_eq!(DtmfDigit::ALL[i], d);
            assert_eq!(DtmfDigit::from_position(d.row(), d.col()), Some(d));
        }
        assert_eq!(DtmfDigit::from_char('b'), Some(DtmfDigit::B));
        assert_eq!(DtmfDigit::Hash.frequencies(), (941.0, 1477.0));
        assert_eq!(DtmfDigit::from_char('E'), None);
        assert_eq!(
            DtmfDigit::parse_str("12x"),
            Err(DspError::InvalidDigit {
                digit: 'x',
                position: 2
            })
        );
        assert_eq!(DtmfDigit::from_position(4, 0), None);
        assert_eq!(DtmfDigit::Zero.to_string(), "0");
    }
}
