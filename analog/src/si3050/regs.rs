//! Si3050 (+ Si3018/Si3019 line side) register map and bit fields.
//!
//! From DAHDI `wctdm.c` (`wctdm_init_voicedaa`, hook and ring handling) and xpp
//! `card_fxo.c`, as summarised in the analog reference §1.4. Items marked **VERIFY** are
//! datasheet details no open driver exercises.

use crate::interface::registers;

registers! {
    /// Si3050 registers.
    pub enum Reg {
        /// Control 1: bit 7 software reset.
        Control1 = 1,
        /// Control 2: reads 0x03 after reset.
        Control2 = 2,
        /// Interrupt mask (same bits as the source register; **VERIFY**).
        IrqMask = 3,
        /// Interrupt source: bit 7 ring detect, bit 0 polarity reversal.
        IrqSource = 4,
        /// DAA control 1: bit 0 OH (off-hook), bit 3 ONHM (on-hook line monitor), bit 5 RDTP,
        /// bit 6 RDTN (ring detect, positive/negative half-cycle).
        DaaControl1 = 5,
        /// DAA control 2: 0 powers up the line side over the isolation link.
        DaaControl2 = 6,
        /// System- and line-side revision: bits 7:4 line-side ID (non-zero once the
        /// isolation link is up).
        LineSideRevision = 11,
        /// International control 1: OHS (bit 6), RZ (bit 1), RT (bit 0).
        IntlControl1 = 16,
        /// International control 2.
        IntlControl2 = 17,
        /// International control 3 (bit 1: full-wave ring detection).
        IntlControl3 = 18,
        /// Ring validation control.
        RingValidation = 24,
        /// DC termination: DCV (bits 7:6), MINI (5:4), ILIM (bit 1).
        DcTermination = 26,
        /// Loop current status (LCS).
        LoopCurrent = 28,
        /// Line voltage status (LVS), signed, about 1 V/LSB.
        LineVoltage = 29,
        /// AC termination (ACIM).
        AcTermination = 30,
        /// DAA control 4: 0xA3 (OHS2 at bit 3).
        DaaControl4 = 31,
        /// PCM control (0x28 µ-law, 0x20 A-law).
        PcmControl = 33,
        /// PCM transmit start count, low.
        PcmTxStartLow = 34,
        /// PCM transmit start count, high.
        PcmTxStartHigh = 35,
        /// PCM receive start count, low.
        PcmRxStartLow = 36,
        /// PCM receive start count, high.
        PcmRxStartHigh = 37,
        /// Transmit gain, integer dB (bit 4 = attenuate).
        TxGain2 = 38,
        /// Receive gain, integer dB (bit 4 = attenuate).
        RxGain2 = 39,
        /// Transmit gain, tenths of dB (bit 4 = attenuate).
        TxGain3 = 40,
        /// Receive gain, tenths of dB (bit 4 = attenuate).
        RxGain3 = 41,
    }
}

/// Register 1: software reset.
pub const SOFT_RESET: u8 = 0x80;
/// Register 2 after reset.
pub const CONTROL2_RESET: u8 = 0x03;
/// Register 4: ring detect interrupt.
pub const IRQ_RING: u8 = 0x80;
/// Register 4: polarity reversal interrupt.
pub const IRQ_POLARITY: u8 = 0x01;
/// Register 5 bit 0: off-hook.
pub const OFF_HOOK: u8 = 0x01;
/// Register 5 bit 3: on-hook line monitor (audio path while on-hook: caller ID).
pub const ON_HOOK_MONITOR: u8 = 0x08;
/// Register 5 bit 5: ring detected, positive half-cycle.
pub const RING_POSITIVE: u8 = 0x20;
/// Register 5 bit 6: ring detected, negative half-cycle.
pub const RING_NEGATIVE: u8 = 0x40;
/// Register 11: line-side ID field.
pub const LINE_SIDE_ID_MASK: u8 = 0xF0;
/// Register 18: full-wave ring detection.
pub const FULL_WAVE_RING: u8 = 0x02;
/// Register 24 default ring validation.
pub const RING_VALIDATION_DEFAULT: u8 = 0x19;
/// Register 31 base value (OHS2 at bit 3 is added per country).
pub const DAA_CONTROL4_BASE: u8 = 0xA3;
/// Register 33: µ-law.
pub const PCM_ULAW: u8 = 0x28;
/// Register 33: A-law.
pub const PCM_ALAW: u8 = 0x20;
/// Gain registers: the attenuate flag.
pub const GAIN_ATTENUATE: u8 = 0x10;
/// Loop current register: the LCS field (**VERIFY**: bits 4:0, about 1.1 mA/LSB).
pub const LOOP_CURRENT_MASK: u8 = 0x1F;
