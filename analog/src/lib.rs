//! Analog telephone lines for Flowgate: FXS ports (an analog phone plugs into the gateway)
//! on the Si3210/Si3215 ProSLIC, and FXO ports (the gateway plugs into a landline) on the
//! Si3050 + Si3018/19 voice DAA.
//!
//! # Layout
//!
//! | layer | module | `no_std` |
//! |---|---|---|
//! | register access over `embedded_hal::spi::SpiDevice` (per-byte chip select) | [`interface`] | yes |
//! | Si3210/Si3215 driver: reset, init + calibration, linefeed, ringing, hook, alarms | [`si321x`] | yes |
//! | Si3050 driver: init with country termination, hook, ring bits, line voltage/current | [`si3050`] | yes |
//! | country data (DAA termination, ring frequency, FXS impedance, tone zone) | [`country`] | yes |
//! | caller ID messages: SDMF, MDMF, ETSI CLIP, MWI, DTMF CLIP; checksum; framing | [`cid`] | yes |
//! | line logic: sans-IO FXS and FXO state machines, time as an input | [`line`] | yes |
//! | ports: driver + line logic + audio (tones, DTMF, caller-ID FSK) — the API to wrap | [`port`] | `std` |
//! | simulated Si3215/Si3050, telephone and exchange line | [`sim`] | `sim` |
//!
//! Time is always an input: every state machine takes `now` as milliseconds ([`Millis`]) from
//! an arbitrary monotonic origin, and drivers wait only through the `DelayNs` they were given.
//! Nothing here opens a device; the Linux shell (spidev, GPIO character device, ALSA) lives in
//! `flowgate-board`.
//!
//! Register facts come from the open DAHDI drivers (`wctdm`, `wctdm24xxp`) as summarised in the
//! project's analog reference; the few that are marked **VERIFY** in the register tables are
//! datasheet details no open driver exercises.
#![cfg_attr(not(feature = "std"), no_std)]

pub mod cid;
pub mod country;
mod error;
pub mod interface;
pub mod line;
pub mod si3050;
pub mod si321x;

#[cfg(feature = "std")]
pub mod port;
#[cfg(feature = "sim")]
pub mod sim;

pub use error::Error;

/// Milliseconds since an arbitrary monotonic origin: the time input of every state machine.
pub type Millis = u64;

/// A GPIO that is not wired (no reset line, no interrupt line): writes do nothing, reads say
/// "inactive" (an interrupt line that never fires; the port then polls).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoPin;

impl embedded_hal::digital::ErrorType for NoPin {
    type Error = core::convert::Infallible;
}

impl embedded_hal::digital::OutputPin for NoPin {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl embedded_hal::digital::InputPin for NoPin {
    // The chips' interrupt outputs are active low: "high" is "no interrupt".
    fn is_high(&mut self) -> Result<bool, Self::Error> {
        Ok(true)
    }
    fn is_low(&mut self) -> Result<bool, Self::Error> {
        Ok(false)
    }
}
