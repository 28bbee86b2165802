//! Register access over `embedded_hal::spi::SpiDevice`.
//!
//! Both chip families frame **every byte** with its own chip-select cycle (DAHDI's
//! `__write_8bits`/`__read_8bits`; oak8x on the Raspberry Pi does the same), so each byte is
//! one `SpiDevice` transaction. linux-embedded-hal's `SpidevDevice` keeps CS asserted for a
//! whole transaction, which is why a register access is never one multi-byte transaction.
//!
//! | chip | write | read |
//! |---|---|---|
//! | Si3210/Si3215 | `[addr & 0x7F]`, `[data]` | `[addr | 0x80]`, then clock one byte in |
//! | Si3050 | `[0x20 | cid]`, `[reg]`, `[data]` | `[0x60 | cid]`, `[reg]`, clock one byte in |
//!
//! `cid` is the DAA's position in a daisy chain with its four bits reversed (0 for a chip on
//! its own chip select).

use embedded_hal::spi::SpiDevice;

/// Byte-wide register access to one chip.
pub trait RegisterBus {
    /// The bus error.
    type Error;
    /// Reads register `reg`.
    ///
    /// # Errors
    /// The bus error.
    fn read(&mut self, reg: u8) -> Result<u8, Self::Error>;
    /// Writes `value` to register `reg`.
    ///
    /// # Errors
    /// The bus error.
    fn write(&mut self, reg: u8, value: u8) -> Result<(), Self::Error>;
}

/// Bit 7 of the ProSLIC address byte: read.
const PROSLIC_READ: u8 = 0x80;

/// The ProSLIC (Si3210/Si3215) framing, one chip per chip select.
#[derive(Debug)]
pub struct ProslicSpi<SPI> {
    spi: SPI,
}

impl<SPI> ProslicSpi<SPI> {
    /// Wraps the SPI device of one ProSLIC.
    pub fn new(spi: SPI) -> Self {
        Self { spi }
    }

    /// Hands the SPI device back.
    pub fn release(self) -> SPI {
        self.spi
    }
}

impl<SPI: SpiDevice> RegisterBus for ProslicSpi<SPI> {
    type Error = SPI::Error;

    fn read(&mut self, reg: u8) -> Result<u8, SPI::Error> {
        self.spi.write(&[reg | PROSLIC_READ])?;
        let mut b = [0u8];
        self.spi.read(&mut b)?;
        Ok(b[0])
    }

    fn write(&mut self, reg: u8, value: u8) -> Result<(), SPI::Error> {
        self.spi.write(&[reg & !PROSLIC_READ])?;
        self.spi.write(&[value])
    }
}

/// DAA control byte: write.
const DAA_WRITE: u8 = 0x20;
/// DAA control byte: read.
const DAA_READ: u8 = 0x60;

/// The Si3050 framing.
#[derive(Debug)]
pub struct DaaSpi<SPI> {
    spi: SPI,
    cid: u8,
}

impl<SPI> DaaSpi<SPI> {
    /// Wraps the SPI device of a DAA alone on its chip select.
    pub fn new(spi: SPI) -> Self {
        Self { spi, cid: 0 }
    }

    /// Wraps the SPI device of the DAA at `position` (0..=3) of a daisy chain: the control
    /// byte carries the position with its bits reversed (0, 8, 4, 12).
    pub fn chained(spi: SPI, position: u8) -> Self {
        let p = position & 0x03;
        let cid = ((p & 1) << 3) | ((p & 2) << 1);
        Self { spi, cid }
    }

    /// The chain address bits of the control byte.
    pub fn chain_id(&self) -> u8 {
        self.cid
    }

    /// Hands the SPI device back.
    pub fn release(self) -> SPI {
        self.spi
    }
}

impl<SPI: SpiDevice> RegisterBus for DaaSpi<SPI> {
    type Error = SPI::Error;

    fn read(&mut self, reg: u8) -> Result<u8, SPI::Error> {
        self.spi.write(&[DAA_READ | self.cid])?;
        self.spi.write(&[reg])?;
        let mut b = [0u8];
        self.spi.read(&mut b)?;
        Ok(b[0])
    }

    fn write(&mut self, reg: u8, value: u8) -> Result<(), SPI::Error> {
        self.spi.write(&[DAA_WRITE | self.cid])?;
        self.spi.write(&[reg])?;
        self.spi.write(&[value])
    }
}

/// Declares a typed register table: an enum whose discriminants are the addresses, with each
/// register's name for error messages. Call sites name registers, never numbers.
macro_rules! registers {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $( $(#[$rmeta:meta])* $reg:ident = $addr:literal ),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        $vis enum $name {
            $( $(#[$rmeta])* $reg = $addr ),*
        }

        impl $name {
            /// The register's address.
            #[must_use]
            pub const fn addr(self) -> u8 {
                self as u8
            }

            /// The register's name.
            #[must_use]
            pub const fn name(self) -> &'static str {
                match self {
                    $( $name::$reg => stringify!($reg) ),*
                }
            }
        }
    };
}
pub(crate) use registers;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_positions_are_bit_reversed() {
        let ids: [u8; 4] =
            core::array::from_fn(|i| DaaSpi::chained((), u8::try_from(i).unwrap_or(0)).chain_id());
        assert_eq!(ids, [0x00, 0x08, 0x04, 0x0C]);
    }
}
