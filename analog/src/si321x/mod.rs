//! Si3210/Si3215 ProSLIC driver (FXS): reset, identification, the published initialisation
//! and calibration sequence, linefeed control (active, on-hook transmission, ringing, polarity),
//! hook status, line measurements, and the power/thermal alarm checks.
//!
//! Shape of the embedded-hal drivers (lsm303agr): generic over `SpiDevice`, a reset
//! `OutputPin`, an interrupt `InputPin` and a `DelayNs`; typed registers ([`regs`]); shadow
//! copies of the control registers the line logic changes (no read-modify-write over the bus);
//! [`Si321x::destroy`] hands everything back. Ringing cadence, hook debounce and pulse
//! decoding are the line logic's job ([`crate::line`]); this driver only moves registers.

pub mod regs;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal::spi::SpiDevice;

use self::regs::{Indirect, Linefeed, Reg};
use crate::Error;
use crate::interface::{ProslicSpi, RegisterBus};

/// Which ProSLIC the port is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// Si3210 (with DTMF decoder and pulse metering).
    Si3210,
    /// Si3215 (no DTMF decoder; indirect registers at other addresses).
    Si3215,
}

impl Part {
    /// The part number.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Part::Si3210 => "Si3210",
            Part::Si3215 => "Si3215",
        }
    }
}

/// What identification found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChipInfo {
    /// The part.
    pub part: Part,
    /// Silicon revision (register 0 bits 3:0; 2 = revision C).
    pub revision: u8,
}

/// PCM companding on the chip's PCM highway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Companding {
    /// G.711 µ-law.
    Ulaw,
    /// G.711 A-law.
    Alaw,
}

/// Ringing frequency (the ringing oscillator coefficient RCO = 32768·cos(2π·f/1000)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RingFrequency {
    /// 20 Hz (North America and most of the world): RCO 0x7EFE.
    Hz20,
    /// 25 Hz (TBR21 Europe): RCO 0x7E6C.
    Hz25,
}

impl RingFrequency {
    /// The ringing oscillator coefficient.
    #[must_use]
    pub const fn rco(self) -> u16 {
        match self {
            RingFrequency::Hz20 => 0x7EFE,
            RingFrequency::Hz25 => 0x7E6C,
        }
    }
}

/// Ringing voltage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RingLevel {
    /// About 50 V peak (low-power boards).
    Low,
    /// About 70 V peak.
    Normal,
    /// About 89 V peak, with the high battery raised to 94.5 V (long lines, several REN).
    Boost,
}

/// Ring generator settings derived from frequency and level: (RNGX, VBATH). RNGX scales with
/// √((1−a)/(1+a)), a = RCO/32768, so the same voltage needs a larger RNGX at 25 Hz.
#[must_use]
pub const fn ring_amplitude(freq: RingFrequency, level: RingLevel) -> (u16, u8) {
    match (freq, level) {
        (RingFrequency::Hz20, RingLevel::Low) => (0x0108, regs::VBATH_DEFAULT),
        (RingFrequency::Hz20, RingLevel::Normal) => (0x0160, regs::VBATH_DEFAULT),
        (RingFrequency::Hz20, RingLevel::Boost) => (0x01D1, regs::VBATH_BOOST),
        (RingFrequency::Hz25, RingLevel::Low) => (0x014B, regs::VBATH_DEFAULT),
        (RingFrequency::Hz25, RingLevel::Normal) => (0x01B9, regs::VBATH_DEFAULT),
        (RingFrequency::Hz25, RingLevel::Boost) => (0x0247, regs::VBATH_BOOST),
    }
}

/// Settings of one FXS port's ProSLIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FxsChipConfig {
    /// The part fitted; initialisation refuses any other.
    pub part: Part,
    /// PCM companding.
    pub companding: Companding,
    /// PCM timeslot (8-bit slots from the frame sync).
    pub timeslot: u8,
    /// Loop current limit, 20…41 mA (rounded down to a 3 mA step).
    pub loop_current_ma: u8,
    /// Ringing frequency.
    pub ring_frequency: RingFrequency,
    /// Ringing voltage.
    pub ring_level: RingLevel,
    /// Two-wire impedance code (TISS, 0…7; from the country), or `None` for the 600 Ω
    /// reset default.
    pub impedance: Option<u8>,
    /// Idle polarity reversed (some PBX/alarm equipment expects it).
    pub reverse_polarity: bool,
    /// Calibration results of an earlier initialisation of this chip: skip the leak test and
    /// calibration and restore them (fast re-init after a chip reset).
    pub calibration: Option<[u8; regs::CAL_REGS]>,
}

impl FxsChipConfig {
    /// Defaults for `part`: µ-law, timeslot 0, 20 mA, 20 Hz normal ringing, 600 Ω.
    #[must_use]
    pub const fn new(part: Part) -> Self {
        Self {
            part,
            companding: Companding::Ulaw,
            timeslot: 0,
            loop_current_ma: 20,
            ring_frequency: RingFrequency::Hz20,
            ring_level: RingLevel::Normal,
            impedance: None,
            reverse_polarity: false,
            calibration: None,
        }
    }
}

/// Line measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FxsMeasurements {
    /// Tip voltage magnitude, mV.
    pub tip_mv: u32,
    /// Ring voltage magnitude, mV.
    pub ring_mv: u32,
    /// Battery voltage magnitude, mV.
    pub battery_mv: u32,
    /// Loop current sense register (about 1.1 mA/LSB, **VERIFY**).
    pub loop_current_raw: u8,
}

/// Result of a health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Health {
    /// The chip opened the line by itself (power alarm) and the intended state was restored.
    pub power_alarm: bool,
    /// Transistor power alarms (register 19 bits 2…7, the chip's thermal model of Q1…Q6).
    pub thermal_alarms: u8,
    /// Power alarms in a row exceeded the limit: the line was left open.
    pub gave_up: bool,
    /// Register 8 no longer reads 0: the chip reset itself and must be initialised again.
    pub chip_reset: bool,
}

/// Power alarms tolerated before the line is left open (DAHDI: 10, one forgiven per 10 s).
pub const MAX_POWER_ALARMS: u8 = 10;

/// Polling intervals and limits of the initialisation sequence.
const POWER_UP_POLL_MS: u32 = 10;
const POWER_UP_LIMIT_MS: u32 = 500;
const LEAK_POLL_MS: u32 = 50;
const LEAK_TEST_MS: u32 = 500;
const CAL_POLL_MS: u32 = 10;
const CAL_LIMIT_MS: u32 = 2000;
const INDIRECT_POLLS: u32 = 100;
const RESET_LOW_MS: u32 = 10;
const RESET_SETTLE_MS: u32 = 100;

type DrvResult<T, SPI, P> = Result<T, Error<<SPI as embedded_hal::spi::ErrorType>::Error, P>>;

/// One Si3210/Si3215.
#[derive(Debug)]
pub struct Si321x<SPI, RST, INT, D> {
    bus: ProslicSpi<SPI>,
    reset: RST,
    int: INT,
    delay: D,
    config: FxsChipConfig,
    info: Option<ChipInfo>,
    /// Shadow of register 64's requested state (what the line logic asked for).
    linefeed: Linefeed,
    calibration: Option<[u8; regs::CAL_REGS]>,
    power_alarms: u8,
}

impl<SPI, RST, INT, D, PinE> Si321x<SPI, RST, INT, D>
where
    SPI: SpiDevice,
    RST: OutputPin<Error = PinE>,
    INT: InputPin<Error = PinE>,
    D: DelayNs,
{
    /// A driver for the chip behind `spi`. No bus traffic until [`init`](Self::init).
    pub fn new(spi: SPI, reset: RST, int: INT, delay: D, config: FxsChipConfig) -> Self {
        Self {
            bus: ProslicSpi::new(spi),
            reset,
            int,
            delay,
            config,
            info: None,
            linefeed: Linefeed::Open,
            calibration: None,
            power_alarms: 0,
        }
    }

    /// Hands back the SPI device, the pins and the delay.
    pub fn destroy(self) -> (SPI, RST, INT, D) {
        (self.bus.release(), self.reset, self.int, self.delay)
    }

    /// The configuration.
    pub fn config(&self) -> &FxsChipConfig {
        &self.config
    }

    /// What initialisation identified, once it has run.
    pub fn info(&self) -> Option<ChipInfo> {
        self.info
    }

    /// The calibration results of the last full initialisation (store them in
    /// [`FxsChipConfig::calibration`] for a fast re-init).
    pub fn calibration(&self) -> Option<[u8; regs::CAL_REGS]> {
        self.calibration
    }

    fn read(&mut self, reg: Reg) -> DrvResult<u8, SPI, PinE> {
        self.bus.read(reg.addr()).map_err(Error::Comm)
    }

    fn write(&mut self, reg: Reg, value: u8) -> DrvResult<(), SPI, PinE> {
        self.bus.write(reg.addr(), value).map_err(Error::Comm)
    }

    fn indirect_addr(&self, reg: Indirect) -> Option<u8> {
        match self.config.part {
            Part::Si3210 => Some(reg.addr()),
            Part::Si3215 => reg.si3215_addr(),
        }
    }

    fn wait_indirect(&mut self, addr: u8) -> DrvResult<(), SPI, PinE> {
        for _ in 0..INDIRECT_POLLS {
            if self.read(Reg::IndirectStatus)? == 0 {
                return Ok(());
            }
        }
        Err(Error::IndirectTimeout { register: addr })
    }

    /// Writes an indirect register by raw address: wait for the indirect interface, data low,
    /// data high, then the address (which starts the transfer).
    fn write_indirect_raw(&mut self, addr: u8, value: u16) -> DrvResult<(), SPI, PinE> {
        self.wait_indirect(addr)?;
        let [hi, lo] = value.to_be_bytes();
        self.write(Reg::IndirectDataLow, lo)?;
        self.write(Reg::IndirectDataHigh, hi)?;
        self.write(Reg::IndirectAddress, addr)
    }

    /// Reads an indirect register by raw address.
    fn read_indirect_raw(&mut self, addr: u8) -> DrvResult<u16, SPI, PinE> {
        self.wait_indirect(addr)?;
        self.write(Reg::IndirectAddress, addr)?;
        self.wait_indirect(addr)?;
        let lo = self.read(Reg::IndirectDataLow)?;
        let hi = self.read(Reg::IndirectDataHigh)?;
        Ok(u16::from_be_bytes([hi, lo]))
    }

    /// Writes an indirect register (translated for the Si3215; registers it lacks are
    /// skipped).
    ///
    /// # Errors
    /// Bus errors; [`Error::IndirectTimeout`].
    pub fn write_indirect(&mut self, reg: Indirect, value: u16) -> DrvResult<(), SPI, PinE> {
        match self.indirect_addr(reg) {
            Some(a) => self.write_indirect_raw(a, value),
            None => Ok(()),
        }
    }

    /// Reads an indirect register (`None` for registers the part lacks).
    ///
    /// # Errors
    /// Bus errors; [`Error::IndirectTimeout`].
    pub fn read_indirect(&mut self, reg: Indirect) -> DrvResult<Option<u16>, SPI, PinE> {
        match self.indirect_addr(reg) {
            Some(a) => self.read_indirect_raw(a).map(Some),
            None => Ok(None),
        }
    }

    /// The indirect table for this part: (raw address, value).
    fn indirect_table(&self) -> heapless::Vec<(u8, u16), 48> {
        let mut t = heapless::Vec::new();
        if self.config.part == Part::Si3210 {
            for &(a, v) in &regs::DTMF_TABLE {
                let _ = t.push((a, v));
            }
        }
        for &(r, v) in &regs::INDIRECT_TABLE {
            if let Some(a) = self.indirect_addr(r) {
                let _ = t.push((a, v));
            }
            if r == Indirect::RingY && self.config.part == Part::Si3210 {
                for &(a, v) in &regs::PULSE_TABLE {
                    let _ = t.push((a, v));
                }
            }
        }
        t
    }

    /// Makes the next [`init`](Self::init) restore the calibration of the last one instead
    /// of calibrating again (after the chip reset itself; saves the leak test and ~1 s).
    pub fn reuse_calibration(&mut self) {
        if self.calibration.is_some() {
            self.config.calibration = self.calibration;
        }
    }

    /// Pulses the reset line (low 10 ms, then 100 ms to settle).
    ///
    /// # Errors
    /// [`Error::Pin`].
    pub fn hardware_reset(&mut self) -> DrvResult<(), SPI, PinE> {
        self.reset.set_low().map_err(Error::Pin)?;
        self.delay.delay_ms(RESET_LOW_MS);
        self.reset.set_high().map_err(Error::Pin)?;
        self.delay.delay_ms(RESET_SETTLE_MS);
        self.info = None;
        self.linefeed = Linefeed::Open;
        Ok(())
    }

    /// Reads the identification registers and checks the part against the configuration.
    ///
    /// # Errors
    /// [`Error::NoChip`], [`Error::WrongChip`] (other part, or revision below B), bus errors.
    pub fn identify(&mut self) -> DrvResult<ChipInfo, SPI, PinE> {
        let id = self.read(Reg::Id)?;
        if id == 0x00 || id == 0xFF {
            return Err(Error::NoChip { id });
        }
        let pcm = self.read(Reg::PcmMode)?;
        let part = if pcm & regs::PCM_MODE_SI3215 != 0 {
            Part::Si3215
        } else {
            Part::Si3210
        };
        let revision = id & 0x0F;
        if part != self.config.part {
            return Err(Error::WrongChip {
                expected: self.config.part.name(),
                found: part.name(),
                id,
            });
        }
        if revision < 2 {
            return Err(Error::WrongChip {
                expected: "revision B or later",
                found: "revision A",
                id,
            });
        }
        Ok(ChipInfo { part, revision })
    }

    fn expect(&mut self, reg: Reg, expected: u8) -> DrvResult<(), SPI, PinE> {
        let found = self.read(reg)?;
        if found == expected {
            Ok(())
        } else {
            Err(Error::Sanity {
                register: reg.name(),
                expected,
                found,
            })
        }
    }

    fn power_up(&mut self) -> DrvResult<(), SPI, PinE> {
        self.write(Reg::DcDcPwm, regs::DCDC_PWM_PERIOD)?;
        self.write(Reg::PowerDown1, 0)?;
        let mut waited = 0;
        let mut vbat = self.read(Reg::BatteryVoltage)?;
        while vbat < regs::VBAT_POWERED {
            if waited >= POWER_UP_LIMIT_MS {
                return Err(Error::PowerUp { vbat });
            }
            self.delay.delay_ms(POWER_UP_POLL_MS);
            waited += POWER_UP_POLL_MS;
            vbat = self.read(Reg::BatteryVoltage)?;
        }
        let ma = self.config.loop_current_ma.clamp(20, 41);
        self.write(Reg::LoopCurrentLimit, (ma - 20) / 3)?;
        self.write(Reg::DcDcControl, regs::DCDC_ENGAGE)
    }

    /// With the converter off the battery capacitor must hold its charge: a fast collapse is
    /// a leak to ground on tip/ring.
    fn leak_test(&mut self) -> DrvResult<(), SPI, PinE> {
        self.write(Reg::Linefeed, Linefeed::Open as u8)?;
        self.write(Reg::PowerDown1, regs::POWER_DOWN_DCDC)?;
        let mut waited = 0;
        while waited < LEAK_TEST_MS {
            self.delay.delay_ms(LEAK_POLL_MS);
            waited += LEAK_POLL_MS;
            let vbat = self.read(Reg::BatteryVoltage)?;
            if vbat < regs::VBAT_LEAK {
                return Err(Error::PowerLeak { vbat });
            }
        }
        Ok(())
    }

    fn calibrate(&mut self) -> DrvResult<[u8; regs::CAL_REGS], SPI, PinE> {
        self.write(Reg::Calibration2, regs::CAL_ALL)?;
        self.write(Reg::Calibration1, regs::CAL_START)?;
        let mut waited = 0;
        while self.read(Reg::Calibration1)? != 0 {
            if waited >= CAL_LIMIT_MS {
                return Err(Error::CalibrationTimeout);
            }
            self.delay.delay_ms(CAL_POLL_MS);
            waited += CAL_POLL_MS;
        }
        self.write(Reg::DcDcControl, regs::DCDC_CALIBRATE)?;
        let peak = self.read(Reg::DcPeakCal)?;
        if !(0x02..=0x0D).contains(&peak) {
            // An implausible DC-DC calibration: use the mid value (DAHDI does the same).
            self.write(Reg::DcPeakCal, 0x08)?;
        }
        let mut cal = [0u8; regs::CAL_REGS];
        for (i, slot) in cal.iter_mut().enumerate() {
            #[expect(clippy::cast_possible_truncation, reason = "i < 12")]
            let addr = Reg::Calibration1.addr() + i as u8;
            *slot = self.bus.read(addr).map_err(Error::Comm)?;
        }
        Ok(cal)
    }

    /// Resets and initialises the chip, leaving the line in the idle active state:
    /// identification, sanity checks, indirect table, power-up, leak test, calibration (or
    /// restoring an earlier calibration), PCM, impedance, ring generator.
    ///
    /// # Errors
    /// Every [`Error`] variant of the sequence; the line stays open on failure.
    pub fn init(&mut self) -> DrvResult<ChipInfo, SPI, PinE> {
        self.hardware_reset()?;
        let info = self.identify()?;
        self.expect(Reg::AudioLoopback, regs::LOOPBACK_RESET)?;
        self.expect(Reg::Linefeed, 0)?;
        self.expect(Reg::Hybrid, regs::HYBRID_RESET)?;
        // DC-DC off until the indirect registers are loaded.
        self.write(Reg::PowerDown1, regs::POWER_DOWN_DCDC)?;
        let table = self.indirect_table();
        for &(a, v) in &table {
            self.write_indirect_raw(a, v)?;
        }
        self.write(Reg::AudioLoopback, 0)?;
        self.write(Reg::Enhancement, regs::ENHANCEMENT_REV_C)?;
        self.write(Reg::AutoControl, regs::AUTO_CONTROL)?;
        self.write(Reg::BatteryFeed, regs::BATTERY_FEED_Q7_OFF)?;
        // Flush the digital filters while calibrating; keep their values for afterwards.
        let filters = [
            Indirect::LoopClosureFilter,
            Indirect::RingTripFilter,
            Indirect::ThermalPoleQ1Q2,
            Indirect::ThermalPoleQ3Q4,
            Indirect::ThermalPoleQ5Q6,
        ];
        let mut saved = [0u16; 5];
        for (slot, &f) in saved.iter_mut().zip(&filters) {
            *slot = self.read_indirect(f)?.unwrap_or(0);
            self.write_indirect(f, regs::FILTER_FLUSH)?;
        }
        self.power_up()?;
        let cal = match self.config.calibration {
            Some(cal) => {
                for (i, &v) in cal.iter().enumerate() {
                    #[expect(clippy::cast_possible_truncation, reason = "i < 12")]
                    let addr = Reg::Calibration1.addr() + i as u8;
                    self.bus.write(addr, v).map_err(Error::Comm)?;
                }
                cal
            }
            None => {
                self.leak_test()?;
                self.power_up()?;
                self.calibrate()?
            }
        };
        self.calibration = Some(cal);
        for (&v, &f) in saved.iter().zip(&filters) {
            self.write_indirect(f, v)?;
        }
        for &(a, v) in &table {
            let found = self.read_indirect_raw(a)?;
            // The filters were restored to their pre-flush values, which the table set.
            if found != v {
                return Err(Error::IndirectVerify {
                    register: a,
                    expected: v,
                    found,
                });
            }
        }
        let pcm = match self.config.companding {
            Companding::Ulaw => regs::PCM_ULAW,
            Companding::Alaw => regs::PCM_ALAW,
        };
        self.write(Reg::PcmMode, pcm)?;
        let [start_hi, start_lo] = (u16::from(self.config.timeslot) * 8).to_be_bytes();
        self.write(Reg::PcmTxStartLow, start_lo)?;
        self.write(Reg::PcmTxStartHigh, start_hi)?;
        self.write(Reg::PcmRxStartLow, start_lo)?;
        self.write(Reg::PcmRxStartHigh, start_hi)?;
        self.write(Reg::IrqStatus1, 0xFF)?;
        self.write(Reg::IrqStatus2, 0xFF)?;
        self.write(Reg::IrqStatus3, 0xFF)?;
        self.write(Reg::CommonModeVoltage, regs::COMMON_MODE)?;
        if let Some(tiss) = self.config.impedance {
            if tiss > 7 {
                return Err(Error::InvalidConfig {
                    what: "impedance code (TISS) must be 0…7",
                });
            }
            self.write(Reg::LineImpedance, regs::IMPEDANCE_ENABLE | tiss)?;
        }
        self.init_ring_generator()?;
        // Interrupt on loop closure, ring trip and transistor power alarms: the port wakes
        // on the interrupt line instead of polling when one is wired.
        self.write(Reg::IrqEnable1, 0)?;
        self.write(
            Reg::IrqEnable2,
            regs::IRQ2_RING_TRIP | regs::IRQ2_LOOP_CLOSURE | regs::IRQ2_POWER_ALARMS,
        )?;
        self.write(Reg::IrqEnable3, 0)?;
        let idle = self.idle_active();
        self.set_linefeed(idle)?;
        self.power_alarms = 0;
        self.info = Some(info);
        Ok(info)
    }

    fn init_ring_generator(&mut self) -> DrvResult<(), SPI, PinE> {
        let (rngx, vbath) = ring_amplitude(self.config.ring_frequency, self.config.ring_level);
        self.write(Reg::RingOscControl, 0)?;
        self.write_indirect(Indirect::RingY, 0)?;
        self.write_indirect(Indirect::RingTripThreshold, regs::RING_TRIP_NORMAL)?;
        self.write(Reg::BatteryHigh, vbath)?;
        self.write_indirect(Indirect::RingOsc, self.config.ring_frequency.rco())?;
        self.write_indirect(Indirect::RingX, rngx)
    }

    /// The idle/talk state for the configured polarity.
    pub fn idle_active(&self) -> Linefeed {
        if self.config.reverse_polarity {
            Linefeed::ActiveRev
        } else {
            Linefeed::ActiveFwd
        }
    }

    /// The requested linefeed state (shadow).
    pub fn linefeed(&self) -> Linefeed {
        self.linefeed
    }

    /// Requests a linefeed state.
    ///
    /// # Errors
    /// Bus errors.
    pub fn set_linefeed(&mut self, state: Linefeed) -> DrvResult<(), SPI, PinE> {
        self.write(Reg::Linefeed, state as u8)?;
        self.linefeed = state;
        Ok(())
    }

    /// Reverses (or restores) the polarity of the current state.
    ///
    /// # Errors
    /// [`Error::InvalidState`] while ringing or open; bus errors.
    pub fn set_polarity(&mut self, reversed: bool) -> DrvResult<(), SPI, PinE> {
        if self.linefeed.is_reversed() == reversed {
            return Ok(());
        }
        let next = self.linefeed.reversed().ok_or(Error::InvalidState {
            what: "polarity cannot change while ringing or with the line open",
        })?;
        self.set_linefeed(next)
    }

    /// Starts ringing (the ring generator runs while the linefeed is Ringing; the cadence is
    /// switched by the line logic).
    ///
    /// # Errors
    /// Bus errors.
    pub fn ring(&mut self) -> DrvResult<(), SPI, PinE> {
        self.set_linefeed(Linefeed::Ringing)
    }

    /// The actual linefeed state the chip reports (register 64 bits 6:4).
    ///
    /// # Errors
    /// Bus errors.
    pub fn linefeed_actual(&mut self) -> DrvResult<Linefeed, SPI, PinE> {
        let v = self.read(Reg::Linefeed)?;
        Ok(Linefeed::from_bits(v >> regs::LINEFEED_ACTUAL_SHIFT))
    }

    /// The raw loop-closure bit: off-hook (or ring trip while ringing).
    ///
    /// # Errors
    /// Bus errors.
    pub fn loop_closed(&mut self) -> DrvResult<bool, SPI, PinE> {
        Ok(self.read(Reg::LoopStatus)? & regs::LOOP_STATUS_CLOSED != 0)
    }

    /// True while the interrupt line is asserted (active low).
    ///
    /// # Errors
    /// [`Error::Pin`].
    pub fn interrupt_pending(&mut self) -> DrvResult<bool, SPI, PinE> {
        self.int.is_low().map_err(Error::Pin)
    }

    /// Reads and clears the three interrupt status registers.
    ///
    /// # Errors
    /// Bus errors.
    pub fn take_interrupts(&mut self) -> DrvResult<[u8; 3], SPI, PinE> {
        let s = [
            self.read(Reg::IrqStatus1)?,
            self.read(Reg::IrqStatus2)?,
            self.read(Reg::IrqStatus3)?,
        ];
        // Writing ones clears the bits that were set.
        if s[0] != 0 {
            self.write(Reg::IrqStatus1, s[0])?;
        }
        if s[1] != 0 {
            self.write(Reg::IrqStatus2, s[1])?;
        }
        if s[2] != 0 {
            self.write(Reg::IrqStatus3, s[2])?;
        }
        Ok(s)
    }

    /// Tip, ring and battery voltages and the loop current sense.
    ///
    /// # Errors
    /// Bus errors.
    pub fn measurements(&mut self) -> DrvResult<FxsMeasurements, SPI, PinE> {
        let tip = self.read(Reg::TipVoltage)?;
        let ring = self.read(Reg::RingVoltage)?;
        let bat = self.read(Reg::BatteryVoltage)?;
        let cur = self.read(Reg::LoopCurrentSense)?;
        Ok(FxsMeasurements {
            tip_mv: u32::from(tip) * 376,
            ring_mv: u32::from(ring) * 376,
            battery_mv: u32::from(bat) * 376,
            loop_current_raw: cur,
        })
    }

    /// Checks the chip: a self-reset (register 8), a line the chip opened by itself (power
    /// alarm: the intended state is restored, ringing becomes active), and the transistor
    /// power alarms. After [`MAX_POWER_ALARMS`] alarms in a row the line is left open.
    ///
    /// # Errors
    /// Bus errors.
    pub fn check_health(&mut self) -> DrvResult<Health, SPI, PinE> {
        let mut h = Health::default();
        if self.read(Reg::AudioLoopback)? != 0 {
            h.chip_reset = true;
            self.info = None;
            return Ok(h);
        }
        let status2 = self.read(Reg::IrqStatus2)?;
        h.thermal_alarms = status2 & regs::IRQ2_POWER_ALARMS;
        if h.thermal_alarms != 0 {
            self.write(Reg::IrqStatus2, h.thermal_alarms)?;
        }
        let actual = self.linefeed_actual()?;
        if actual == Linefeed::Open && self.linefeed != Linefeed::Open {
            h.power_alarm = true;
            self.power_alarms = self.power_alarms.saturating_add(1);
            if self.power_alarms > MAX_POWER_ALARMS {
                h.gave_up = true;
                self.set_linefeed(Linefeed::Open)?;
            } else {
                let restore = if self.linefeed == Linefeed::Ringing {
                    self.idle_active()
                } else {
                    self.linefeed
                };
                self.set_linefeed(restore)?;
            }
        }
        Ok(h)
    }

    /// Forgives one power alarm (call every 10 s: isolated alarms never add up to giving up).
    pub fn forgive_power_alarm(&mut self) {
        self.power_alarms = self.power_alarms.saturating_sub(1);
    }
}
