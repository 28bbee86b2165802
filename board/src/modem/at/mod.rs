//! The AT command codec (3GPP TS 27.007 / 27.005 framing), sans-IO.
//!
//! - [`codec`]: bytes in, [`AtEvent`]s out (responses, the `> ` prompt, URCs).
//! - [`urc`]: typed unsolicited result codes.
//! - [`response`]: typed parsers for the information lines of the commands the driver sends.
//! - [`types`]: the values those lines carry (SIM state, registration, calls, error codes).
//! - [`args`]: the comma-separated argument tokenizer they share.

pub mod args;
pub mod codec;
pub mod response;
pub mod types;
pub mod urc;

pub use codec::{AtCodec, AtEvent, CodecLimits, FinalResult, Pending, Response};
pub use types::*;
pub use urc::{Urc, UrcError};
