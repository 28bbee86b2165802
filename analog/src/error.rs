//! The driver error type, shared by both chip drivers: bus and pin errors of the HAL
//! implementation, plus the chip-level failures of initialisation and supervision.

use core::fmt;

/// A driver error. `CommE` is the SPI device's error, `PinE` the GPIO error (reset and
/// interrupt lines share one pin error type; use [`NoPin`](crate::NoPin) for lines that are
/// not wired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error<CommE, PinE> {
    /// The SPI transfer failed.
    Comm(CommE),
    /// Driving the reset line or reading the interrupt line failed.
    Pin(PinE),
    /// Nothing answers: the ID register reads all zeros or all ones.
    NoChip {
        /// What the ID register read.
        id: u8,
    },
    /// A chip answers, but not the one the port is configured for (or a revision the driver
    /// does not support).
    WrongChip {
        /// What the configuration expects.
        expected: &'static str,
        /// What the chip reports.
        found: &'static str,
        /// The raw identification register.
        id: u8,
    },
    /// A register does not hold its documented reset value: the chip is not in a state the
    /// initialisation sequence can start from (or the bus is miswired).
    Sanity {
        /// The register's name.
        register: &'static str,
        /// Its reset value.
        expected: u8,
        /// What it read.
        found: u8,
    },
    /// The ProSLIC's DC-DC converter did not bring the battery voltage up in time.
    PowerUp {
        /// Battery voltage register at the deadline (×376 mV).
        vbat: u8,
    },
    /// With the DC-DC converter off the battery voltage collapsed at once: a leak or a short
    /// on the line side. Initialisation stops before the line is powered.
    PowerLeak {
        /// Battery voltage register when the test failed (×376 mV).
        vbat: u8,
    },
    /// The ProSLIC did not finish its calibration within 2 s.
    CalibrationTimeout,
    /// An indirect-register access stayed pending.
    IndirectTimeout {
        /// The indirect register.
        register: u8,
    },
    /// An indirect register read back different from what was written.
    IndirectVerify {
        /// The indirect register.
        register: u8,
        /// Written.
        expected: u16,
        /// Read back.
        found: u16,
    },
    /// The DAA's isolation link (ISOcap) to the line-side chip did not come up within 2 s.
    IsoLinkDown,
    /// An operation that needs an initialised chip was called first.
    NotInitialised,
    /// The operation is not possible in the current line state (for example a polarity change
    /// while ringing or with the line open).
    InvalidState {
        /// What was refused and why.
        what: &'static str,
    },
    /// A configuration value is outside what the chip supports.
    InvalidConfig {
        /// What is wrong.
        what: &'static str,
    },
}

impl<CommE: fmt::Debug, PinE: fmt::Debug> fmt::Display for Error<CommE, PinE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Comm(e) => write!(f, "SPI transfer failed: {e:?}"),
            Error::Pin(e) => write!(f, "GPIO failed: {e:?}"),
            Error::NoChip { id } => write!(f, "no chip answers (ID register reads {id:#04x})"),
            Error::WrongChip {
                expected,
                found,
                id,
            } => write!(
                f,
                "wrong chip: configured for {expected}, found {found} (ID {id:#04x})"
            ),
            Error::Sanity {
                register,
                expected,
                found,
            } => write!(
                f,
                "register {register} reads {found:#04x}, reset value is {expected:#04x}"
            ),
            Error::PowerUp { vbat } => write!(
                f,
                "battery voltage did not come up (VBAT {} mV); check the DC-DC supply",
                u32::from(*vbat) * 376
            ),
            Error::PowerLeak { vbat } => write!(
                f,
                "power leak on the line side (VBAT fell to {} mV with the converter off)",
                u32::from(*vbat) * 376
            ),
            Error::CalibrationTimeout => f.write_str("ProSLIC calibration did not finish in 2 s"),
            Error::IndirectTimeout { register } => {
                write!(f, "indirect register {register} access stayed pending")
            }
            Error::IndirectVerify {
                register,
                expected,
                found,
            } => write!(
                f,
                "indirect register {register} reads {found:#06x} after writing {expected:#06x}"
            ),
            Error::IsoLinkDown => {
                f.write_str("DAA isolation link to the line side did not come up")
            }
            Error::NotInitialised => f.write_str("chip not initialised"),
            Error::InvalidState { what } => write!(f, "not possible now: {what}"),
            Error::InvalidConfig { what } => write!(f, "invalid configuration: {what}"),
        }
    }
}

impl<CommE: fmt::Debug, PinE: fmt::Debug> core::error::Error for Error<CommE, PinE> {}
