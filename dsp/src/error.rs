//! The one error type of the DSP crate.
//!
//! Only configuration and table loading can fail: once a detector, generator or
//! resampler exists, processing sample data never fails and never panics.

use thiserror::Error;

/// Why a DSP object could not be built or a request could not be honoured.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DspError {
    /// The component does not run at this sample rate.
    #[error("unsupported sample rate {rate} Hz for {component} (supported: {supported})")]
    UnsupportedSampleRate {
        /// Component that refused the rate.
        component: &'static str,
        /// The requested rate in Hz.
        rate: u32,
        /// Human-readable list of the rates it does support.
        supported: &'static str,
    },
    /// A character that is not a DTMF digit (`0-9 * # A-D`).
    #[error("invalid DTMF digit {digit:?} at position {position}")]
    InvalidDigit {
        /// The offending character.
        digit: char,
        /// Its index (in characters) in the string that was given.
        position: usize,
    },
    /// A configuration value is outside its valid range.
    #[error("invalid {component} setting `{field}`: {reason}")]
    InvalidConfig {
        /// Component being configured.
        component: &'static str,
        /// Name of the setting.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// No tone zone with this name exists in the tone table.
    #[error("unknown tone zone {zone:?} (known: {known})")]
    UnknownZone {
        /// The requested zone name.
        zone: String,
        /// Comma-separated list of the zones the table has.
        known: String,
    },
    /// The tone table text is not valid.
    #[error("tone table: {reason}")]
    ToneTable {
        /// What is wrong, with the zone and tone it concerns.
        reason: String,
    },
    /// The resampler cannot convert between these two rates.
    #[error("cannot resample {from} Hz to {to} Hz: {reason}")]
    UnsupportedRatio {
        /// Input rate in Hz.
        from: u32,
        /// Output rate in Hz.
        to: u32,
        /// Why the ratio is refused.
        reason: String,
    },
}

/// Result alias used throughout the crate.
pub type Result<T, E = DspError> = std::result::Result<T, E>;
