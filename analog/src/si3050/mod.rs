//! Si3050 voice DAA driver (FXO): software reset, initialisation with the country's DC and AC
//! termination and ring settings, the isolation link, on-hook line monitoring (needed to hear
//! caller ID), seize/release, the ring-detect bits, the interrupt source, and the line voltage
//! and loop current used for disconnect supervision.
//!
//! Same shape as the ProSLIC driver: generic over `SpiDevice`, reset `OutputPin`, interrupt
//! `InputPin`, `DelayNs`; a shadow of the DAA control register the line logic toggles; the
//! identification check refuses a line-side part other than the configured one.

pub mod regs;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal::spi::SpiDevice;

use self::regs::Reg;
use crate::Error;
use crate::country::DaaTermination;
use crate::interface::{DaaSpi, RegisterBus};
use crate::si321x::Companding;

/// The line-side chip paired with the Si3050.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineSide {
    /// Si3018 (line-side ID 0b0001, **VERIFY**).
    Si3018,
    /// Si3019 (line-side ID 0b0011, **VERIFY**): the Si3018 with an improved ring detector.
    Si3019,
}

impl LineSide {
    /// The part number.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            LineSide::Si3018 => "Si3018",
            LineSide::Si3019 => "Si3019",
        }
    }

    /// The line-side ID in register 11 bits 7:4.
    #[must_use]
    pub const fn id(self) -> u8 {
        match self {
            LineSide::Si3018 => 0x1,
            LineSide::Si3019 => 0x3,
        }
    }

    fn from_id(id: u8) -> Option<LineSide> {
        match id {
            0x1 => Some(LineSide::Si3018),
            0x3 => Some(LineSide::Si3019),
            _ => None,
        }
    }
}

/// Settings of one FXO port's DAA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FxoChipConfig {
    /// The line-side part fitted; initialisation refuses any other.
    pub line_side: LineSide,
    /// The country's DC/AC termination and ringer settings.
    pub termination: DaaTermination,
    /// PCM companding.
    pub companding: Companding,
    /// PCM timeslot.
    pub timeslot: u8,
    /// Full-wave ring detection (both half-cycles raise the ring bits).
    pub full_wave_ring_detect: bool,
    /// Transmit gain, tenths of dB (−150…120).
    pub tx_gain_tenths_db: i16,
    /// Receive gain, tenths of dB (−150…120).
    pub rx_gain_tenths_db: i16,
}

impl FxoChipConfig {
    /// Defaults: µ-law, timeslot 0, half-wave ring detection, 0 dB gains.
    #[must_use]
    pub const fn new(line_side: LineSide, termination: DaaTermination) -> Self {
        Self {
            line_side,
            termination,
            companding: Companding::Ulaw,
            timeslot: 0,
            full_wave_ring_detect: false,
            tx_gain_tenths_db: 0,
            rx_gain_tenths_db: 0,
        }
    }
}

/// One sample of the line as the DAA sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineSample {
    /// Ring detected, positive half-cycle.
    pub ring_positive: bool,
    /// Ring detected, negative half-cycle.
    pub ring_negative: bool,
    /// Line voltage, volts (signed: the sign is the polarity).
    pub line_voltage: i8,
    /// Loop current register (**VERIFY**: about 1.1 mA/LSB; meaningful off-hook only).
    pub loop_current_raw: u8,
}

const RESET_WAIT_MS: u32 = 100;
const ISO_POLL_MS: u32 = 100;
const ISO_LIMIT_MS: u32 = 2000;
const RESET_LOW_MS: u32 = 10;

type DrvResult<T, SPI, P> = Result<T, Error<<SPI as embedded_hal::spi::ErrorType>::Error, P>>;

/// Encodes a gain in tenths of dB as the (integer, fraction) register pair.
///
/// # Errors
/// `None` outside −15.0…+12.0 dB.
#[must_use]
pub fn gain_registers(tenths: i16) -> Option<(u8, u8)> {
    match tenths {
        -150..=0 => {
            let t = tenths.unsigned_abs();
            #[expect(clippy::cast_possible_truncation, reason = "t ≤ 150")]
            let (whole, frac) = ((t / 10) as u8, (t % 10) as u8);
            Some((regs::GAIN_ATTENUATE + whole, regs::GAIN_ATTENUATE + frac))
        }
        1..=120 => {
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "1…120"
            )]
            let (whole, frac) = ((tenths / 10) as u8, (tenths % 10) as u8);
            Some((whole, frac))
        }
        _ => None,
    }
}

/// One Si3050.
#[derive(Debug)]
pub struct Si3050<SPI, RST, INT, D> {
    bus: DaaSpi<SPI>,
    reset: RST,
    int: INT,
    delay: D,
    config: FxoChipConfig,
    /// Shadow of register 5 (hook and on-hook monitor bits).
    daa_control1: u8,
    initialised: bool,
}

impl<SPI, RST, INT, D, PinE> Si3050<SPI, RST, INT, D>
where
    SPI: SpiDevice,
    RST: OutputPin<Error = PinE>,
    INT: InputPin<Error = PinE>,
    D: DelayNs,
{
    /// A driver for the DAA alone on `spi`'s chip select. No bus traffic until
    /// [`init`](Self::init).
    pub fn new(spi: SPI, reset: RST, int: INT, delay: D, config: FxoChipConfig) -> Self {
        Self::with_bus(DaaSpi::new(spi), reset, int, delay, config)
    }

    /// A driver over an explicit bus framing (a daisy-chained DAA).
    pub fn with_bus(
        bus: DaaSpi<SPI>,
        reset: RST,
        int: INT,
        delay: D,
        config: FxoChipConfig,
    ) -> Self {
        Self {
            bus,
            reset,
            int,
            delay,
            config,
            daa_control1: 0,
            initialised: false,
        }
    }

    /// Hands back the SPI device, the pins and the delay.
    pub fn destroy(self) -> (SPI, RST, INT, D) {
        (self.bus.release(), self.reset, self.int, self.delay)
    }

    /// The configuration.
    pub fn config(&self) -> &FxoChipConfig {
        &self.config
    }

    fn read(&mut self, reg: Reg) -> DrvResult<u8, SPI, PinE> {
        self.bus.read(reg.addr()).map_err(Error::Comm)
    }

    fn write(&mut self, reg: Reg, value: u8) -> DrvResult<(), SPI, PinE> {
        self.bus.write(reg.addr(), value).map_err(Error::Comm)
    }

    /// Resets and initialises the DAA, leaving it on-hook with the line monitor on.
    ///
    /// # Errors
    /// [`Error::Sanity`], [`Error::IsoLinkDown`], [`Error::WrongChip`] (another line-side
    /// part), [`Error::InvalidConfig`] (gains out of range), bus and pin errors.
    pub fn init(&mut self) -> DrvResult<LineSide, SPI, PinE> {
        let (tx_whole, tx_frac) =
            gain_registers(self.config.tx_gain_tenths_db).ok_or(Error::InvalidConfig {
                what: "transmit gain must be −15.0…+12.0 dB",
            })?;
        let (rx_whole, rx_frac) =
            gain_registers(self.config.rx_gain_tenths_db).ok_or(Error::InvalidConfig {
                what: "receive gain must be −15.0…+12.0 dB",
            })?;
        self.initialised = false;
        self.reset.set_low().map_err(Error::Pin)?;
        self.delay.delay_ms(RESET_LOW_MS);
        self.reset.set_high().map_err(Error::Pin)?;
        self.delay.delay_ms(RESET_WAIT_MS);
        let found = self.read(Reg::Control2)?;
        if found == 0x00 || found == 0xFF {
            return Err(Error::NoChip { id: found });
        }
        if found != regs::CONTROL2_RESET {
            return Err(Error::Sanity {
                register: Reg::Control2.name(),
                expected: regs::CONTROL2_RESET,
                found,
            });
        }
        self.write(Reg::Control1, regs::SOFT_RESET)?;
        self.delay.delay_ms(RESET_WAIT_MS);
        let pcm = match self.config.companding {
            Companding::Ulaw => regs::PCM_ULAW,
            Companding::Alaw => regs::PCM_ALAW,
        };
        self.write(Reg::PcmControl, pcm)?;
        let t = self.config.termination;
        self.write(Reg::IntlControl1, t.reg16())?;
        if self.config.full_wave_ring_detect {
            self.write(Reg::IntlControl3, regs::FULL_WAVE_RING)?;
            self.write(Reg::RingValidation, 0)?;
        } else {
            self.write(Reg::IntlControl3, 0)?;
            self.write(Reg::RingValidation, regs::RING_VALIDATION_DEFAULT)?;
        }
        self.write(Reg::DcTermination, t.reg26())?;
        self.write(Reg::AcTermination, t.acim)?;
        self.write(
            Reg::DaaControl4,
            regs::DAA_CONTROL4_BASE | u8::from(t.ohs2) << 3,
        )?;
        let [start_hi, start_lo] = (u16::from(self.config.timeslot) * 8).to_be_bytes();
        self.write(Reg::PcmTxStartLow, start_lo)?;
        self.write(Reg::PcmTxStartHigh, start_hi)?;
        self.write(Reg::PcmRxStartLow, start_lo)?;
        self.write(Reg::PcmRxStartHigh, start_hi)?;
        // Power the line side up over the isolation capacitor and wait for its ID.
        self.write(Reg::DaaControl2, 0)?;
        let mut waited = 0;
        let mut rev = self.read(Reg::LineSideRevision)?;
        while rev & regs::LINE_SIDE_ID_MASK == 0 {
            if waited >= ISO_LIMIT_MS {
                return Err(Error::IsoLinkDown);
            }
            self.delay.delay_ms(ISO_POLL_MS);
            waited += ISO_POLL_MS;
            rev = self.read(Reg::LineSideRevision)?;
        }
        let id = rev >> 4;
        match LineSide::from_id(id) {
            Some(part) if part == self.config.line_side => {}
            Some(part) => {
                return Err(Error::WrongChip {
                    expected: self.config.line_side.name(),
                    found: part.name(),
                    id: rev,
                });
            }
            None => {
                return Err(Error::WrongChip {
                    expected: self.config.line_side.name(),
                    found: "an unknown line-side part",
                    id: rev,
                });
            }
        }
        // On-hook line monitor on: the audio path stays open on-hook for caller ID.
        self.daa_control1 = regs::ON_HOOK_MONITOR;
        self.write(Reg::DaaControl1, self.daa_control1)?;
        self.write(Reg::TxGain2, tx_whole)?;
        self.write(Reg::TxGain3, tx_frac)?;
        self.write(Reg::RxGain2, rx_whole)?;
        self.write(Reg::RxGain3, rx_frac)?;
        // Interrupt on ring detect and polarity reversal.
        self.write(Reg::IrqMask, regs::IRQ_RING | regs::IRQ_POLARITY)?;
        self.initialised = true;
        Ok(self.config.line_side)
    }

    /// Goes off-hook (seize) or back on-hook (release). The line monitor stays on.
    ///
    /// # Errors
    /// [`Error::NotInitialised`], bus errors.
    pub fn set_off_hook(&mut self, off_hook: bool) -> DrvResult<(), SPI, PinE> {
        if !self.initialised {
            return Err(Error::NotInitialised);
        }
        let v = if off_hook {
            self.daa_control1 | regs::OFF_HOOK
        } else {
            self.daa_control1 & !regs::OFF_HOOK
        };
        self.write(Reg::DaaControl1, v)?;
        self.daa_control1 = v;
        Ok(())
    }

    /// True while off-hook (shadow).
    pub fn is_off_hook(&self) -> bool {
        self.daa_control1 & regs::OFF_HOOK != 0
    }

    /// Ring bits, line voltage and loop current: what the line logic needs every poll.
    ///
    /// # Errors
    /// Bus errors.
    pub fn sample(&mut self) -> DrvResult<LineSample, SPI, PinE> {
        let c1 = self.read(Reg::DaaControl1)?;
        let lvs = self.read(Reg::LineVoltage)?;
        let lcs = self.read(Reg::LoopCurrent)?;
        Ok(LineSample {
            ring_positive: c1 & regs::RING_POSITIVE != 0,
            ring_negative: c1 & regs::RING_NEGATIVE != 0,
            line_voltage: i8::from_ne_bytes([lvs]),
            loop_current_raw: lcs & regs::LOOP_CURRENT_MASK,
        })
    }

    /// True while the interrupt line is asserted (active low).
    ///
    /// # Errors
    /// [`Error::Pin`].
    pub fn interrupt_pending(&mut self) -> DrvResult<bool, SPI, PinE> {
        self.int.is_low().map_err(Error::Pin)
    }

    /// Reads and clears the interrupt source register.
    ///
    /// # Errors
    /// Bus errors.
    pub fn take_interrupts(&mut self) -> DrvResult<u8, SPI, PinE> {
        let s = self.read(Reg::IrqSource)?;
        if s != 0 {
            // Writing zero clears the sources (**VERIFY** against the datasheet).
            self.write(Reg::IrqSource, 0)?;
        }
        Ok(s)
    }

    /// Sets the hardware gains.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] outside −15.0…+12.0 dB; bus errors.
    pub fn set_gains(&mut self, tx_tenths_db: i16, rx_tenths_db: i16) -> DrvResult<(), SPI, PinE> {
        let (tw, tf) = gain_registers(tx_tenths_db).ok_or(Error::InvalidConfig {
            what: "transmit gain must be −15.0…+12.0 dB",
        })?;
        let (rw, rf) = gain_registers(rx_tenths_db).ok_or(Error::InvalidConfig {
            what: "receive gain must be −15.0…+12.0 dB",
        })?;
        self.write(Reg::TxGain2, tw)?;
        self.write(Reg::TxGain3, tf)?;
        self.write(Reg::RxGain2, rw)?;
        self.write(Reg::RxGain3, rf)?;
        self.config.tx_gain_tenths_db = tx_tenths_db;
        self.config.rx_gain_tenths_db = rx_tenths_db;
        Ok(())
    }
}
