//! Opening a real analog port: spidev with a kernel-managed chip select (one transaction per
//! byte, so chip select toggles between bytes as the ProSLIC and DAA require; SPI mode 3) and
//! GPIO character-device lines (reset as an output, the interrupt as a falling-edge event
//! whose file descriptor a runner can wait on).

use std::fmt;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Duration;

use embedded_hal::digital::{self, InputPin, OutputPin};
use gpio_cdev::{Chip, EventRequestFlags, LineEventHandle, LineHandle, LineRequestFlags};
use linux_embedded_hal::spidev::{SpiModeFlags, SpidevOptions};
use linux_embedded_hal::{Delay, SpidevDevice};
use thiserror::Error;

use super::{AnalogPortProfile, GpioLine, PortSettings};
use flowgate_analog::port::{AnalogPort, FxoPort, FxsPort, PortError};
use flowgate_analog::si321x::Si321x;
use flowgate_analog::si3050::Si3050;

/// The consumer name the lines are requested under (`gpioinfo` shows it).
const CONSUMER: &str = "flowgate-analog";

/// A GPIO error.
#[derive(Debug, Error)]
#[error("GPIO: {0}")]
pub struct GpioError(String);

impl digital::Error for GpioError {
    fn kind(&self) -> digital::ErrorKind {
        digital::ErrorKind::Other
    }
}

/// A port's GPIO: a reset output, an interrupt input with edge events, or not wired.
pub enum BoardPin {
    /// An output line.
    Output(LineHandle),
    /// An input line requested for falling-edge events.
    Interrupt(LineEventHandle),
    /// Not wired: writes are ignored, reads say "no interrupt".
    None,
}

impl fmt::Debug for BoardPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BoardPin::Output(_) => "BoardPin::Output",
            BoardPin::Interrupt(_) => "BoardPin::Interrupt",
            BoardPin::None => "BoardPin::None",
        })
    }
}

impl digital::ErrorType for BoardPin {
    type Error = GpioError;
}

impl OutputPin for BoardPin {
    fn set_low(&mut self) -> Result<(), GpioError> {
        match self {
            BoardPin::Output(h) => h.set_value(0).map_err(|e| GpioError(e.to_string())),
            BoardPin::Interrupt(_) => Err(GpioError("the interrupt line is an input".into())),
            BoardPin::None => Ok(()),
        }
    }

    fn set_high(&mut self) -> Result<(), GpioError> {
        match self {
            BoardPin::Output(h) => h.set_value(1).map_err(|e| GpioError(e.to_string())),
            BoardPin::Interrupt(_) => Err(GpioError("the interrupt line is an input".into())),
            BoardPin::None => Ok(()),
        }
    }
}

impl InputPin for BoardPin {
    fn is_high(&mut self) -> Result<bool, GpioError> {
        match self {
            BoardPin::Output(h) => h
                .get_value()
                .map(|v| v != 0)
                .map_err(|e| GpioError(e.to_string())),
            BoardPin::Interrupt(h) => h
                .get_value()
                .map(|v| v != 0)
                .map_err(|e| GpioError(e.to_string())),
            BoardPin::None => Ok(true),
        }
    }

    fn is_low(&mut self) -> Result<bool, GpioError> {
        self.is_high().map(|h| !h)
    }
}

/// Waits for the interrupt line's falling edges (a duplicate of the event handle's file
/// descriptor, so the port keeps the pin and the runner can wait).
#[derive(Debug)]
pub struct IrqWaiter {
    fd: OwnedFd,
}

impl IrqWaiter {
    /// Waits up to `timeout` for an edge; returns whether one came. Pending edges are
    /// consumed.
    ///
    /// # Errors
    /// The poll or read failed.
    pub fn wait(&mut self, timeout: Duration) -> std::io::Result<bool> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.fd_borrow(), PollFlags::POLLIN)];
        let n = poll(&mut fds, PollTimeout::from(ms)).map_err(std::io::Error::from)?;
        if n == 0 {
            return Ok(false);
        }
        // One event record is 16 bytes (timestamp + id); drain what is there.
        let mut buf = [0u8; 256];
        let _ = nix::unistd::read(&self.fd, &mut buf).map_err(std::io::Error::from)?;
        Ok(true)
    }

    fn fd_borrow(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }
}

/// Why a port could not be opened.
#[derive(Debug, Error)]
pub enum AnalogOpenError {
    /// The SPI device could not be opened or configured.
    #[error("{port}: SPI {path}: {reason}")]
    Spi {
        /// Port id.
        port: String,
        /// The spidev path.
        path: String,
        /// Why.
        reason: String,
    },
    /// A GPIO line could not be requested.
    #[error("{port}: GPIO {chip} line {line}: {reason}")]
    Gpio {
        /// Port id.
        port: String,
        /// The chip path.
        chip: String,
        /// The line offset.
        line: u32,
        /// Why.
        reason: String,
    },
    /// The profile describes a simulated port or is inconsistent.
    #[error("{port}: {reason}")]
    Profile {
        /// Port id.
        port: String,
        /// Why.
        reason: String,
    },
    /// Building the port failed (configuration of the audio path, tone zone).
    #[error("{port}: {source}")]
    Port {
        /// Port id.
        port: String,
        /// The port error.
        source: PortError,
    },
}

/// A real port on this board.
pub type LinuxPort = Box<dyn AnalogPort>;

fn gpio(port: &str, l: &GpioLine, interrupt: bool) -> Result<BoardPin, AnalogOpenError> {
    let err = |e: gpio_cdev::Error| AnalogOpenError::Gpio {
        port: port.to_owned(),
        chip: l.path(),
        line: l.line,
        reason: e.to_string(),
    };
    let mut chip = Chip::new(l.path()).map_err(err)?;
    let line = chip.get_line(l.line).map_err(err)?;
    if interrupt {
        line.events(
            LineRequestFlags::INPUT,
            EventRequestFlags::FALLING_EDGE,
            CONSUMER,
        )
        .map(BoardPin::Interrupt)
        .map_err(err)
    } else {
        // Released from reset (high) until the driver pulses it.
        line.request(LineRequestFlags::OUTPUT, 1, CONSUMER)
            .map(BoardPin::Output)
            .map_err(err)
    }
}

/// Opens the port a profile describes (not started: call [`AnalogPort::start`]); returns it
/// with a waiter for its interrupt line when one is wired.
///
/// # Errors
/// [`AnalogOpenError`] naming the port and the device that failed.
pub fn open_port(p: &AnalogPortProfile) -> Result<(LinuxPort, Option<IrqWaiter>), AnalogOpenError> {
    let settings = p.settings().map_err(|source| AnalogOpenError::Port {
        port: p.id.clone(),
        source,
    })?;
    open_port_with(p, settings)
}

/// Opens the port a profile describes with `settings` (the profile's, adjusted by the
/// gateway's configuration).
///
/// # Errors
/// [`AnalogOpenError`] naming the port and the device that failed.
pub fn open_port_with(
    p: &AnalogPortProfile,
    settings: PortSettings,
) -> Result<(LinuxPort, Option<IrqWaiter>), AnalogOpenError> {
    let port_err = |source: PortError| AnalogOpenError::Port {
        port: p.id.clone(),
        source,
    };
    let Some(spi_loc) = p.spi else {
        return Err(AnalogOpenError::Profile {
            port: p.id.clone(),
            reason: "no SPI device (a simulated port runs on the simulated board)".into(),
        });
    };
    let path = spi_loc.path();
    let spi_err = |e: &dyn fmt::Display| AnalogOpenError::Spi {
        port: p.id.clone(),
        path: path.clone(),
        reason: e.to_string(),
    };
    let mut spi = SpidevDevice::open(&path).map_err(|e| spi_err(&e))?;
    // Mode 3 (CPOL = CPHA = 1), as DAHDI's oak8x and the Dragino driver run these chips.
    let options = SpidevOptions::new()
        .bits_per_word(8)
        .max_speed_hz(spi_loc.max_speed_hz)
        .mode(SpiModeFlags::SPI_MODE_3)
        .build();
    spi.configure(&options).map_err(|e| spi_err(&e))?;
    let reset = match &p.reset {
        Some(l) => gpio(&p.id, l, false)?,
        None => BoardPin::None,
    };
    let (int, waiter) = match &p.interrupt {
        Some(l) => {
            let pin = gpio(&p.id, l, true)?;
            let waiter = match &pin {
                BoardPin::Interrupt(h) => {
                    // A second descriptor for the same event file: the runner waits on it while
                    // the driver owns the pin; reading either consumes the events.
                    let fd = nix::unistd::dup(event_fd(h)).map_err(|e| AnalogOpenError::Gpio {
                        port: p.id.clone(),
                        chip: l.path(),
                        line: l.line,
                        reason: e.to_string(),
                    })?;
                    Some(IrqWaiter { fd })
                }
                _ => None,
            };
            (pin, waiter)
        }
        None => (BoardPin::None, None),
    };
    let port: LinuxPort = match settings {
        PortSettings::Fxs(chip, cfg) => Box::new(
            FxsPort::new(Si321x::new(spi, reset, int, Delay, chip), *cfg).map_err(port_err)?,
        ),
        PortSettings::Fxo(chip, cfg) => Box::new(
            FxoPort::new(Si3050::new(spi, reset, int, Delay, chip), cfg).map_err(port_err)?,
        ),
    };
    Ok((port, waiter))
}

fn event_fd(h: &LineEventHandle) -> BorrowedFd<'_> {
    use std::os::fd::AsFd;
    h.as_fd()
}
