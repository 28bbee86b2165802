//! Flowgate's hardware layer.
//!
//! # Layout
//!
//! - [`modem`]: GSM/LTE modems — the sans-IO AT codec, the sans-IO SMS PDU codec, the async
//!   driver that owns a serial port, and the vendor profiles.
//! - [`simulator`]: the simulated modem — a modem on a pseudo-terminal with a serial-PCM voice
//!   port, answering as the vendors' manuals show, scriptable through a control handle. It is
//!   the default board of the daemon.
//! - [`analog`]: FXS/FXO ports on Linux — board-profile entries, spidev and GPIO
//!   character-device bindings for the `flowgate-analog` drivers.
//! - [`boards`]: board profiles (TOML): which modems, analog ports, GPIOs and audio devices a
//!   board has.
//! - [`crashpoint`]: named steps of the SMS pipeline a test daemon can die at.

pub mod analog;
pub mod boards;
pub mod crashpoint;
pub mod modem;
pub mod simulator;
