//! Si3210/Si3215 register map: the direct registers a driver touches, the indirect
//! (16-bit) registers with their Si3215 addresses, bit fields, and the initial indirect table.
//!
//! Addresses and values from DAHDI `proslic.h` / `wctdm.c` (see the analog reference §1.3).

use crate::interface::registers;

registers! {
    /// Direct (8-bit) registers.
    pub enum Reg {
        /// Bits 5:4 part, 3:0 revision.
        Id = 0,
        /// PCM mode; bit 7 reads 1 on an Si3215.
        PcmMode = 1,
        /// PCM transmit start count, low byte (bit offset of the timeslot).
        PcmTxStartLow = 2,
        /// PCM transmit start count, high bits.
        PcmTxStartHigh = 3,
        /// PCM receive start count, low byte.
        PcmRxStartLow = 4,
        /// PCM receive start count, high bits.
        PcmRxStartHigh = 5,
        /// Audio loopback; reads 0x02 after reset.
        AudioLoopback = 8,
        /// Analog audio gain (±3.5 dB steps).
        AudioGain = 9,
        /// Two-wire impedance (TISS).
        LineImpedance = 10,
        /// Hybrid; reads 0x33 after reset.
        Hybrid = 11,
        /// Power-down control 1 (bit 4: DC-DC converter off).
        PowerDown1 = 14,
        /// Interrupt status 1 (oscillators, ring timers).
        IrqStatus1 = 18,
        /// Interrupt status 2 (ring trip, loop closure, transistor power alarms).
        IrqStatus2 = 19,
        /// Interrupt status 3 (DTMF, calibration).
        IrqStatus3 = 20,
        /// Interrupt enable 1.
        IrqEnable1 = 21,
        /// Interrupt enable 2.
        IrqEnable2 = 22,
        /// Interrupt enable 3.
        IrqEnable3 = 23,
        /// Indirect data, low byte.
        IndirectDataLow = 28,
        /// Indirect data, high byte.
        IndirectDataHigh = 29,
        /// Indirect address; writing it starts the access.
        IndirectAddress = 30,
        /// Indirect access status (non-zero while pending).
        IndirectStatus = 31,
        /// Ringing oscillator control (0 = continuous, cadence in software).
        RingOscControl = 34,
        /// Linefeed control: bits 2:0 requested state, bits 6:4 actual state.
        Linefeed = 64,
        /// Battery feed control (1 = Q7 off).
        BatteryFeed = 66,
        /// Automatic/manual control (0x07: auto ring trip, loop closure and power-alarm
        /// open; automatic battery switching off, which protects Q7).
        AutoControl = 67,
        /// Loop closure / ring trip status: bit 0 loop closed (off-hook).
        LoopStatus = 68,
        /// Loop closure debounce.
        LoopDebounce = 69,
        /// Loop current limit: (mA − 20) / 3.
        LoopCurrentLimit = 71,
        /// On-hook line voltage.
        OnHookVoltage = 72,
        /// Common-mode voltage.
        CommonModeVoltage = 73,
        /// High battery voltage (1.5 V/LSB).
        BatteryHigh = 74,
        /// Loop current sense (**VERIFY**: about 1.1 mA/LSB).
        LoopCurrentSense = 79,
        /// Tip voltage sense (376 mV/LSB).
        TipVoltage = 80,
        /// Ring voltage sense (376 mV/LSB).
        RingVoltage = 81,
        /// Battery voltage sense (376 mV/LSB).
        BatteryVoltage = 82,
        /// DC-DC converter PWM period.
        DcDcPwm = 92,
        /// DC-DC converter control (0x19 engage, 0x99 calibrate).
        DcDcControl = 93,
        /// Calibration control 1 (start; reads 0 when done).
        Calibration1 = 96,
        /// Calibration control 2 (which calibrations).
        Calibration2 = 97,
        /// First calibration result register (98…107 follow).
        RingGainCal = 98,
        /// DC peak calibration result; sane values are 2…13.
        DcPeakCal = 107,
        /// Revision C enhancement control.
        Enhancement = 108,
    }
}

registers! {
    /// Indirect (16-bit) registers, by their Si3210 address.
    pub enum Indirect {
        /// Oscillator 1 frequency coefficient.
        Osc1Coef = 13,
        /// Oscillator 1 amplitude.
        Osc1X = 14,
        /// Oscillator 1 initial phase.
        Osc1Y = 15,
        /// Oscillator 2 frequency coefficient.
        Osc2Coef = 16,
        /// Oscillator 2 amplitude.
        Osc2X = 17,
        /// Oscillator 2 initial phase.
        Osc2Y = 18,
        /// Ringing DC offset.
        RingVoltageOffset = 19,
        /// Ringing oscillator coefficient (RCO = 32768·cos(2π·f/1000)).
        RingOsc = 20,
        /// Ringing amplitude (RNGX).
        RingX = 21,
        /// Ringing initial phase / neon pulse width (RNGY).
        RingY = 22,
        /// Receive digital gain.
        RxDigitalGain = 26,
        /// Transmit digital gain.
        TxDigitalGain = 27,
        /// Loop closure threshold.
        LoopCloseThreshold = 28,
        /// Ring trip threshold.
        RingTripThreshold = 29,
        /// Common-mode minimum threshold.
        CommonMinThreshold = 30,
        /// Common-mode maximum threshold.
        CommonMaxThreshold = 31,
        /// Power alarm threshold, Q1/Q2.
        PowerAlarmQ1Q2 = 32,
        /// Power alarm threshold, Q3/Q4.
        PowerAlarmQ3Q4 = 33,
        /// Power alarm threshold, Q5/Q6.
        PowerAlarmQ5Q6 = 34,
        /// Loop closure filter (flushed to 0x8000 during calibration).
        LoopClosureFilter = 35,
        /// Ring trip filter.
        RingTripFilter = 36,
        /// Thermal low-pass pole, Q1/Q2.
        ThermalPoleQ1Q2 = 37,
        /// Thermal low-pass pole, Q3/Q4.
        ThermalPoleQ3Q4 = 38,
        /// Thermal low-pass pole, Q5/Q6.
        ThermalPoleQ5Q6 = 39,
        /// Common-mode bias during ringing.
        CmBiasRinging = 40,
        /// DC-DC minimum voltage.
        DcDcMinVoltage = 41,
        /// DC-DC extra.
        DcDcExtra = 42,
        /// Loop closure threshold, low.
        LoopCloseThresholdLow = 43,
    }
}

/// DTMF decoder indirect registers 0…12 exist on the Si3210 only (the Si3215 has no DTMF
/// decoder); they are loaded by address.
pub const DTMF_TABLE: [(u8, u16); 13] = [
    (0, 0x55C2),
    (1, 0x51E6),
    (2, 0x4B85),
    (3, 0x4937),
    (4, 0x3333),
    (5, 0x0202),
    (6, 0x0202),
    (7, 0x0198),
    (8, 0x0198),
    (9, 0x0611),
    (10, 0x0202),
    (11, 0x00E5),
    (12, 0x0A1C),
];

/// The initial indirect register values (ringing oscillator values are rewritten by the
/// ring-generator setup afterwards). Pulse-metering registers 23…25 exist only on the Si3210.
pub const INDIRECT_TABLE: [(Indirect, u16); 28] = [
    (Indirect::Osc1Coef, 0x7B30),
    (Indirect::Osc1X, 0x0063),
    (Indirect::Osc1Y, 0x0000),
    (Indirect::Osc2Coef, 0x7870),
    (Indirect::Osc2X, 0x007D),
    (Indirect::Osc2Y, 0x0000),
    (Indirect::RingVoltageOffset, 0x0000),
    (Indirect::RingOsc, 0x7EF0),
    (Indirect::RingX, 0x0160),
    (Indirect::RingY, 0x0000),
    (Indirect::RxDigitalGain, 0x2000),
    (Indirect::TxDigitalGain, 0x4000),
    (Indirect::LoopCloseThreshold, 0x1000),
    (Indirect::RingTripThreshold, 0x3600),
    (Indirect::CommonMinThreshold, 0x1000),
    (Indirect::CommonMaxThreshold, 0x0200),
    (Indirect::PowerAlarmQ1Q2, 0x07C0),
    (Indirect::PowerAlarmQ3Q4, 0x2600),
    (Indirect::PowerAlarmQ5Q6, 0x1B80),
    (Indirect::LoopClosureFilter, 0x8000),
    (Indirect::RingTripFilter, 0x0320),
    (Indirect::ThermalPoleQ1Q2, 0x008C),
    (Indirect::ThermalPoleQ3Q4, 0x0100),
    (Indirect::ThermalPoleQ5Q6, 0x0010),
    (Indirect::CmBiasRinging, 0x0C00),
    (Indirect::DcDcMinVoltage, 0x0C00),
    (Indirect::DcDcExtra, 0x1000),
    (Indirect::LoopCloseThresholdLow, 0x1000),
];

/// Si3210-only pulse-metering registers 23…25.
pub const PULSE_TABLE: [(u8, u16); 3] = [(23, 0x2000), (24, 0x2000), (25, 0x0000)];

impl Indirect {
    /// The address on an Si3215, which packs its indirect registers differently; `None` for
    /// registers it does not have.
    #[must_use]
    pub const fn si3215_addr(self) -> Option<u8> {
        match self {
            Indirect::DcDcExtra => None,
            Indirect::DcDcMinVoltage => Some(64),
            Indirect::LoopCloseThresholdLow => Some(66),
            // 13…40 move down by 13 on the Si3215 (the pulse registers 23…25 it lacks are
            // not in this enum).
            other => Some(other.addr() - 13),
        }
    }
}

/// Linefeed states (register 64, bits 2:0 requested, 6:4 actual).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Linefeed {
    /// Line open (no battery).
    Open = 0,
    /// Forward active (normal talk/idle battery).
    ActiveFwd = 1,
    /// Forward on-hook transmission (audio path on an on-hook line: caller ID).
    OhtFwd = 2,
    /// Tip open (ground start).
    TipOpen = 3,
    /// Ringing.
    Ringing = 4,
    /// Reverse active (polarity reversed).
    ActiveRev = 5,
    /// Reverse on-hook transmission.
    OhtRev = 6,
    /// Ring open.
    RingOpen = 7,
}

impl Linefeed {
    /// Decodes three bits.
    #[must_use]
    pub const fn from_bits(b: u8) -> Linefeed {
        match b & 0x07 {
            0 => Linefeed::Open,
            1 => Linefeed::ActiveFwd,
            2 => Linefeed::OhtFwd,
            3 => Linefeed::TipOpen,
            4 => Linefeed::Ringing,
            5 => Linefeed::ActiveRev,
            6 => Linefeed::OhtRev,
            _ => Linefeed::RingOpen,
        }
    }

    /// The same state with the other polarity (XOR bit 2); `None` for Open and Ringing,
    /// whose polarity cannot change.
    #[must_use]
    pub const fn reversed(self) -> Option<Linefeed> {
        match self {
            Linefeed::Open | Linefeed::Ringing => None,
            other => Some(Linefeed::from_bits(other as u8 ^ LINEFEED_REVERSE)),
        }
    }

    /// True for the reverse-polarity states.
    #[must_use]
    pub const fn is_reversed(self) -> bool {
        matches!(
            self,
            Linefeed::ActiveRev | Linefeed::OhtRev | Linefeed::RingOpen
        )
    }
}

/// XOR mask that flips a linefeed state's polarity.
pub const LINEFEED_REVERSE: u8 = 0x04;
/// Register 64: mask of the requested state.
pub const LINEFEED_SET_MASK: u8 = 0x07;
/// Register 64: shift of the actual state.
pub const LINEFEED_ACTUAL_SHIFT: u8 = 4;
/// Register 68 bit 0: loop closed.
pub const LOOP_STATUS_CLOSED: u8 = 0x01;
/// Register 1: PCM on, µ-law 8-bit.
pub const PCM_ULAW: u8 = 0x28;
/// Register 1: PCM on, A-law 8-bit.
pub const PCM_ALAW: u8 = 0x20;
/// Register 1 bit 7: the part is an Si3215.
pub const PCM_MODE_SI3215: u8 = 0x80;
/// Register 8 after reset.
pub const LOOPBACK_RESET: u8 = 0x02;
/// Register 11 after reset.
pub const HYBRID_RESET: u8 = 0x33;
/// Register 14: DC-DC converter powered down.
pub const POWER_DOWN_DCDC: u8 = 0x10;
/// Register 92: DC-DC PWM period.
pub const DCDC_PWM_PERIOD: u8 = 0xFF;
/// Register 93: engage the DC-DC converter.
pub const DCDC_ENGAGE: u8 = 0x19;
/// Register 93: calibrate the DC-DC converter.
pub const DCDC_CALIBRATE: u8 = 0x99;
/// Register 97: run every calibration.
pub const CAL_ALL: u8 = 0x1F;
/// Register 96: start, no speed-up.
pub const CAL_START: u8 = 0x5F;
/// Register 108: revision C enhancements.
pub const ENHANCEMENT_REV_C: u8 = 0xEB;
/// Register 67: automatic ring trip, loop closure and power-alarm open; no automatic battery
/// switching (protects Q7).
pub const AUTO_CONTROL: u8 = 0x07;
/// Register 66: Q7 off.
pub const BATTERY_FEED_Q7_OFF: u8 = 0x01;
/// Register 73: common-mode voltage.
pub const COMMON_MODE: u8 = 0x04;
/// Register 10 bit 3: use the TISS code in bits 2:0.
pub const IMPEDANCE_ENABLE: u8 = 0x08;
/// Register 74 default (75 V) and boosted (94.5 V) high battery.
pub const VBATH_DEFAULT: u8 = 0x32;
/// Boosted high battery for 89 V peak ringing.
pub const VBATH_BOOST: u8 = 0x3F;
/// Indirect 29 (ring trip threshold) for normal ringing.
pub const RING_TRIP_NORMAL: u16 = 0x3600;
/// Value that flushes the digital filters 35…39 during calibration.
pub const FILTER_FLUSH: u16 = 0x8000;
/// Interrupt status 2 (register 19): ring trip.
pub const IRQ2_RING_TRIP: u8 = 0x01;
/// Interrupt status 2: loop closure change.
pub const IRQ2_LOOP_CLOSURE: u8 = 0x02;
/// Interrupt status 2: transistor power alarms Q1…Q6 (the chip's thermal model of the
/// external transistors), bits 2…7 (**VERIFY** bit order against the datasheet).
pub const IRQ2_POWER_ALARMS: u8 = 0xFC;
/// Battery voltage register value that counts as powered up (≈72 V).
pub const VBAT_POWERED: u8 = 0xC0;
/// Battery voltage register value below which the leak test fails.
pub const VBAT_LEAK: u8 = 0x06;
/// Number of calibration result registers (96…107) saved for a fast re-init.
pub const CAL_REGS: usize = 12;
