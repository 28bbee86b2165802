//! Mixing and gain for the media layer: an interrupt prompt mixed over the
//! flow's audio, muting, volume. Integer arithmetic that saturates instead of
//! wrapping, so an overload clips rather than turning into loud noise.

use crate::level::db_to_linear;

/// Fixed-point fraction bits of [`Gain`] (Q12: 4096 = unity).
const GAIN_BITS: u32 = 12;
const GAIN_ONE: i32 = 1 << GAIN_BITS;
/// Largest gain factor: 32768 · `MAX_FACTOR` must fit an `i32`.
const MAX_FACTOR: i32 = 65535;

/// A linear gain between 0 (mute) and ≈ +24 dB, stored as Q12 fixed point so
/// mixing is a multiply, a shift and a saturating add per sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gain(i32);

impl Gain {
    /// Gain 1 (0 dB).
    pub const UNITY: Gain = Gain(GAIN_ONE);
    /// Gain 0 (silence).
    pub const MUTE: Gain = Gain(0);

    /// Gain of `db` decibels, clamped to ≈ +24 dB; anything below −72 dB
    /// (and NaN) is mute, below the resolution of the Q12 factor.
    #[must_use]
    pub fn from_db(db: f32) -> Gain {
        if db.is_nan() || db < -72.0 {
            return Gain::MUTE;
        }
        Gain::from_linear(db_to_linear(db.min(24.1)))
    }

    /// Gain of a linear factor, clamped to `0.0..=16.0` (NaN is mute).
    #[must_use]
    pub fn from_linear(factor: f32) -> Gain {
        if factor.is_nan() || factor <= 0.0 {
            return Gain::MUTE;
        }
        let q = (factor * 4096.0).round().min(65535.0);
        #[expect(
            clippy::cast_possible_truncation,
            reason = "clamped to 0..=65535 just above"
        )]
        Gain(q as i32)
    }

    /// The linear factor.
    #[must_use]
    pub fn linear(self) -> f32 {
        #[expect(
            clippy::cast_precision_loss,
            reason = "Q12 values below 65536 are exact in f32"
        )]
        let v = self.0 as f32 / 4096.0;
        v
    }

    #[inline]
    fn apply(self, x: i16) -> i32 {
        // Round to nearest; |x·g| ≤ 32768·65535 < 2³¹ by construction.
        (i32::from(x) * self.0.min(MAX_FACTOR) + (GAIN_ONE >> 1)) >> GAIN_BITS
    }
}

#[inline]
fn saturate(v: i32) -> i16 {
    i16::try_from(v.clamp(i32::from(i16::MIN), i32::from(i16::MAX))).unwrap_or_default()
}

/// Mixes `src · gain` into `dst` with saturation: `dst[i] = sat(dst[i] + src[i]·gain)`.
/// Only the first `min(dst.len(), src.len())` samples are touched.
pub fn mix_into(dst: &mut [i16], src: &[i16], gain: Gain) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = saturate(i32::from(*d) + gain.apply(s));
    }
}

/// Scales `buf` in place by `gain`, saturating.
pub fn apply_gain(buf: &mut [i16], gain: Gain) {
    if gain == Gain::UNITY {
        return;
    }
    for x in buf.iter_mut() {
        *x = saturate(gain.apply(*x));
    }
}

/// Writes `a·ga + b·gb` into `out` (saturating): a two-input mixer for when
/// neither input may be modified. Samples beyond the shorter input count as 0.
pub fn mix2(out: &mut [i16], a: &[i16], ga: Gain, b: &[i16], gb: Gain) {
    for (i, o) in out.iter_mut().enumerate() {
        let x = a.get(i).map_or(0, |&s| ga.apply(s));
        let y = b.get(i).map_or(0, |&s| gb.apply(s));
        *o = saturate(x + y);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn gains_convert() {
        assert_eq!(Gain::from_db(0.0), Gain::UNITY);
        assert_eq!(Gain::from_db(f32::NAN), Gain::MUTE);
        assert_eq!(Gain::from_db(-100.0), Gain::MUTE);
        assert!((Gain::from_db(-6.0206).linear() - 0.5).abs() < 1e-3);
        assert!((Gain::from_db(100.0).linear() - 16.0).abs() < 0.01);
        assert_eq!(Gain::from_linear(-1.0), Gain::MUTE);
    }

    #[test]
    fn mixing_saturates_instead_of_wrapping() {
        let mut dst = [30000, -30000, 100, 0];
        mix_into(&mut dst, &[10000, -10000, -50, 7], Gain::UNITY);
        assert_eq!(dst, [32767, -32768, 50, 7]);
        let mut half = [1000, -1001, 3];
        apply_gain(&mut half, Gain::from_linear(0.5));
        assert_eq!(half, [500, -500, 2]);
        let mut out = [0; 3];
        mix2(
            &mut out,
            &[100, 200],
            Gain::UNITY,
            &[1, 2, 3],
            Gain::from_linear(2.0),
        );
        assert_eq!(out, [102, 204, 6]);
    }

    proptest! {
        #[test]
        fn mix_matches_wide_arithmetic(d in any::<i16>(), s in any::<i16>(), g in 0f32..16.0) {
            let gain = Gain::from_linear(g);
            let mut dst = [d];
            mix_into(&mut dst, &[s], gain);
            let exact = f64::from(d) + f64::from(s) * f64::from(gain.linear());
            let expect = exact.clamp(-32768.0, 32767.0);
            prop_assert!((f64::from(dst[0]) - expect).abs() <= 0.5 + 1e-9);
        }
    }
}
