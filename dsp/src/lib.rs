//! Pure telephony DSP for Flowgate: DTMF detection and generation,
//! call-progress tones, G.711, resampling, levels, silence detection and
//! mixing.
//!
//! Everything here is sans-IO and block-oriented: `i16` samples in, `i16`
//! samples or events out, at 8 kHz (16 kHz where noted). Objects allocate
//! when they are built, never while processing, and never panic on sample
//! data. Only configuration can fail, with a [`DspError`].
//!
//! | Need | Use |
//! |---|---|
//! | digits pressed by the caller | [`DtmfDetector`] |
//! | send digits in-band | [`DtmfGenerator`] |
//! | dial/busy/ringback/congestion, beep | [`ToneGenerator`], [`ToneTable`] |
//! | µ-law / A-law | [`g711::ulaw`], [`g711::alaw`] |
//! | prompts at 22 050 Hz, files at 44.1/48 kHz | [`Resampler`], [`resample()`] |
//! | caller-ID FSK (Bell 202, V.23) | [`FskModulator`], [`FskDemodulator`] |
//! | hear dial/busy/congestion tones | [`ProgressDetector`] |
//! | levels, `end_of_silence` | [`LevelMeter`], [`SilenceDetector`] |
//! | interrupt prompt over the flow's audio | [`mix_into`], [`Gain`] |
//! | person or answering machine | [`Amd`] |
//!
//! Level conventions (dBFS, dBm0) are defined in [`level`].

pub mod amd;
pub mod dtmf;
mod error;
pub mod fsk;
pub mod g711;
pub mod level;
pub mod mix;
mod osc;
pub mod progress;
pub mod resample;
pub mod tones;
mod util;

pub use amd::{Amd, AmdCause, AmdConfig, AmdResult, AmdStatus};
pub use dtmf::{DtmfConfig, DtmfDetector, DtmfDigit, DtmfEvent, DtmfGenConfig, DtmfGenerator};
pub use error::{DspError, Result};
pub use fsk::{FskDemodConfig, FskDemodulator, FskEvent, FskModConfig, FskModulator, FskStandard};
pub use level::{LevelMeter, SilenceConfig, SilenceDetector};
pub use mix::{Gain, apply_gain, mix_into, mix2};
pub use progress::{ProgressConfig, ProgressDetector};
pub use resample::{Progress, Resampler, resample};
pub use tones::{ToneGenerator, ToneKind, ToneSpec, ToneTable, Zone};
