//! Small helpers shared by the modules: sample-count conversions and
//! sample-rate validation.

use crate::error::{DspError, Result};

/// `n as f32` for sample counts (exact below 2²⁴, which every block is).
#[expect(
    clippy::cast_precision_loss,
    reason = "sample counts in a block are far below 2^24"
)]
pub(crate) fn len_f32(n: usize) -> f32 {
    n as f32
}

/// Validates a sample rate against a list and names the component on error.
pub(crate) fn check_rate(
    component: &'static str,
    rate: u32,
    allowed: &[u32],
    supported: &'static str,
) -> Result<()> {
    if allowed.contains(&rate) {
        Ok(())
    } else {
        Err(DspError::UnsupportedSampleRate {
            component,
            rate,
            supported,
        })
    }
}

/// Samples in `ms` milliseconds at `rate` Hz (rounded down).
pub(crate) fn ms_to_samples(ms: u32, rate: u32) -> u64 {
    u64::from(ms) * u64::from(rate) / 1000
}
