//! A register-level Si3215: the direct and indirect register files, per-byte SPI framing,
//! the reset values the driver checks, DC-DC power-up and decay, calibration, indirect access,
//! linefeed states with automatic ring trip, loop closure from the telephone, line voltages,
//! interrupts, and injectable faults (power alarm, self-reset, leak, dead converter).

use crate::Millis;
use crate::si321x::regs::{self, Linefeed, Reg};

/// Faults the simulated ProSLIC can be told to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProslicFaults {
    /// The battery never comes up (dead DC-DC converter).
    pub no_power: bool,
    /// The battery collapses when the converter is off (leak on the line).
    pub leak: bool,
    /// Calibration never finishes.
    pub stuck_calibration: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spi {
    Address,
    Write(u8),
    Read(u8),
}

/// The chip.
#[derive(Debug, Clone)]
pub struct SimSi3215 {
    regs: [u8; 128],
    ind: [u16; 128],
    spi: Spi,
    indirect_write_armed: bool,
    power_on_at: Option<Millis>,
    power_off_at: Option<Millis>,
    cal_until: Option<Millis>,
    /// Set by the telephone: the handset is off-hook.
    pub phone_off_hook: bool,
    /// Faults to show.
    pub faults: ProslicFaults,
    in_reset: bool,
    now: Millis,
    /// Register writes seen (for tests that look at what the driver did).
    pub writes: usize,
}

/// Identification: part bits 0, revision 3 (the driver accepts revision ≥ 2).
const ID: u8 = 0x03;

impl Default for SimSi3215 {
    fn default() -> Self {
        Self::new()
    }
}

impl SimSi3215 {
    /// A chip just out of reset.
    #[must_use]
    pub fn new() -> Self {
        let mut c = Self {
            regs: [0; 128],
            ind: [0; 128],
            spi: Spi::Address,
            indirect_write_armed: false,
            power_on_at: None,
            power_off_at: None,
            cal_until: None,
            phone_off_hook: false,
            faults: ProslicFaults::default(),
            in_reset: false,
            now: 0,
            writes: 0,
        };
        c.reset_registers();
        c
    }

    fn reset_registers(&mut self) {
        self.regs = [0; 128];
        self.ind = [0; 128];
        self.regs[usize::from(Reg::Id.addr())] = ID;
        self.regs[usize::from(Reg::PcmMode.addr())] = regs::PCM_MODE_SI3215;
        self.regs[usize::from(Reg::AudioLoopback.addr())] = regs::LOOPBACK_RESET;
        self.regs[usize::from(Reg::Hybrid.addr())] = regs::HYBRID_RESET;
        self.regs[usize::from(Reg::PowerDown1.addr())] = regs::POWER_DOWN_DCDC;
        self.power_on_at = None;
        self.power_off_at = None;
        self.cal_until = None;
        self.spi = Spi::Address;
        self.indirect_write_armed = false;
    }

    /// Drives the reset line (`true` = asserted, low).
    pub fn set_reset(&mut self, asserted: bool) {
        if asserted {
            self.reset_registers();
        }
        self.in_reset = asserted;
    }

    /// Simulates the chip resetting itself (brown-out): the driver must notice and re-init.
    pub fn self_reset(&mut self) {
        self.reset_registers();
    }

    /// Simulates a power alarm: the chip opens the line by itself.
    pub fn power_alarm(&mut self) {
        let lf = &mut self.regs[usize::from(Reg::Linefeed.addr())];
        *lf &= regs::LINEFEED_SET_MASK;
        self.regs[usize::from(Reg::IrqStatus2.addr())] |= 0x04;
    }

    /// Updates time-dependent state.
    pub fn advance(&mut self, now: Millis) {
        self.now = now;
        if let Some(until) = self.cal_until
            && now >= until
            && !self.faults.stuck_calibration
        {
            self.cal_until = None;
            self.regs[usize::from(Reg::Calibration1.addr())] = 0;
            // Plausible calibration results.
            for (i, r) in (98..=107).enumerate() {
                self.regs[r] = 0x10 + u8::try_from(i).unwrap_or(0);
            }
            self.regs[usize::from(Reg::DcPeakCal.addr())] = 0x08;
        }
    }

    /// The requested linefeed state.
    #[must_use]
    pub fn linefeed(&self) -> Linefeed {
        Linefeed::from_bits(self.regs[usize::from(Reg::Linefeed.addr())])
    }

    /// The actual linefeed state.
    #[must_use]
    pub fn linefeed_actual(&self) -> Linefeed {
        Linefeed::from_bits(self.regs[usize::from(Reg::Linefeed.addr())] >> 4)
    }

    fn powered(&self) -> bool {
        self.regs[usize::from(Reg::PowerDown1.addr())] & regs::POWER_DOWN_DCDC == 0
    }

    fn vbat(&self) -> u8 {
        if self.faults.no_power {
            return 0;
        }
        if self.powered() {
            // Ramps to 0xC8 (≈75 V) in 40 ms.
            match self.power_on_at {
                Some(t) => {
                    let up = self.now.saturating_sub(t).min(40);
                    u8::try_from(up * 0xC8 / 40).unwrap_or(0xC8)
                }
                None => 0,
            }
        } else {
            match self.power_off_at {
                Some(t) if !self.faults.leak => {
                    // Slow decay: 0.1 LSB per ms, far above the leak threshold after 500 ms.
                    let down = self.now.saturating_sub(t) / 10;
                    u8::try_from(0xC8u64.saturating_sub(down)).unwrap_or(0)
                }
                _ => 0,
            }
        }
    }

    /// True when the loop is closed (off-hook on a powered, non-open line).
    #[must_use]
    pub fn loop_closed(&self) -> bool {
        self.phone_off_hook && self.linefeed_actual() != Linefeed::Open && self.vbat() > 0
    }

    /// The interrupt output is asserted (active low on the pin).
    #[must_use]
    pub fn interrupt(&self) -> bool {
        let r = |reg: Reg| self.regs[usize::from(reg.addr())];
        r(Reg::IrqStatus1) & r(Reg::IrqEnable1) != 0
            || r(Reg::IrqStatus2) & r(Reg::IrqEnable2) != 0
            || r(Reg::IrqStatus3) & r(Reg::IrqEnable3) != 0
    }

    /// The telephone changed its hook: raise the loop-closure interrupt and, when ringing
    /// with automatic ring trip, switch to active like the chip does.
    pub fn hook_changed(&mut self, off_hook: bool) {
        self.phone_off_hook = off_hook;
        self.regs[usize::from(Reg::IrqStatus2.addr())] |= regs::IRQ2_LOOP_CLOSURE;
        let auto = self.regs[usize::from(Reg::AutoControl.addr())] & 0x02 != 0;
        if off_hook && auto && self.linefeed() == Linefeed::Ringing {
            self.regs[usize::from(Reg::IrqStatus2.addr())] |= regs::IRQ2_RING_TRIP;
            let active = Linefeed::ActiveFwd as u8;
            self.regs[usize::from(Reg::Linefeed.addr())] = active << 4 | active;
        }
    }

    fn read(&mut self, addr: u8) -> u8 {
        let a = usize::from(addr & 0x7F);
        match addr {
            68 => u8::from(self.loop_closed()),
            79 => {
                if self.loop_closed() {
                    23
                } else {
                    0
                }
            }
            80 => {
                if self.linefeed_actual() == Linefeed::Open {
                    0
                } else {
                    self.vbat() / 20
                }
            }
            81 | 82 => {
                if addr == 81 && self.linefeed_actual() == Linefeed::Open {
                    0
                } else {
                    self.vbat()
                }
            }
            _ => self.regs[a],
        }
    }

    fn write(&mut self, addr: u8, v: u8) {
        self.writes += 1;
        let a = usize::from(addr & 0x7F);
        match addr {
            // Interrupt status: writing ones clears.
            18..=20 => self.regs[a] &= !v,
            29 => {
                self.regs[a] = v;
                self.indirect_write_armed = true;
            }
            30 => {
                let ia = usize::from(v & 0x7F);
                if self.indirect_write_armed {
                    self.ind[ia] = u16::from_be_bytes([self.regs[29], self.regs[28]]);
                    self.indirect_write_armed = false;
                } else {
                    let [hi, lo] = self.ind[ia].to_be_bytes();
                    self.regs[28] = lo;
                    self.regs[29] = hi;
                }
                self.regs[a] = v;
            }
            14 => {
                let was = self.powered();
                self.regs[a] = v;
                let now_on = self.powered();
                if now_on && !was {
                    self.power_on_at = Some(self.now);
                    self.power_off_at = None;
                } else if !now_on && was {
                    self.power_off_at = Some(self.now);
                    self.power_on_at = None;
                }
            }
            64 => {
                let req = v & regs::LINEFEED_SET_MASK;
                // Ring trip with the phone already off-hook: the chip refuses to ring.
                let auto = self.regs[usize::from(Reg::AutoControl.addr())] & 0x02 != 0;
                let actual = if req == Linefeed::Ringing as u8 && self.phone_off_hook && auto {
                    Linefeed::ActiveFwd as u8
                } else {
                    req
                };
                self.regs[a] = actual << 4 | req;
            }
            96 => {
                self.regs[a] = v;
                if v != 0 {
                    self.cal_until = Some(self.now + 150);
                }
            }
            // Read-only sense registers keep their computed values.
            68 | 79..=82 => {}
            _ => self.regs[a] = v,
        }
    }

    /// One SPI byte (one chip-select frame): returns the byte clocked out.
    pub fn spi_byte(&mut self, mosi: Option<u8>) -> u8 {
        if self.in_reset {
            return 0xFF;
        }
        match (self.spi, mosi) {
            (Spi::Address, Some(b)) => {
                self.spi = if b & 0x80 != 0 {
                    Spi::Read(b & 0x7F)
                } else {
                    Spi::Write(b & 0x7F)
                };
                0
            }
            (Spi::Write(a), Some(b)) => {
                self.spi = Spi::Address;
                self.write(a, b);
                0
            }
            (Spi::Read(a), _) => {
                self.spi = Spi::Address;
                self.read(a)
            }
            // A read frame without a pending address: the chip drives nothing useful.
            (_, None) => 0xFF,
        }
    }

    /// Indirect register by raw address (for tests).
    #[must_use]
    pub fn indirect(&self, addr: u8) -> u16 {
        self.ind[usize::from(addr & 0x7F)]
    }

    /// Direct register (for tests).
    #[must_use]
    pub fn register(&self, addr: u8) -> u8 {
        self.regs[usize::from(addr & 0x7F)]
    }
}
