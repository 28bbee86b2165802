//! A register-level Si3050 with an Si3019 line side: the three-byte SPI framing, reset
//! values, software reset, the isolation link coming up, the hook and on-hook-monitor bits,
//! ring-detect bits, line voltage and loop current from the exchange line, and the interrupt
//! source register.

use crate::Millis;
use crate::si3050::regs::{self, Reg};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spi {
    Control,
    Register { read: bool },
    Write(u8),
    Read(u8),
}

/// What the line looks like from the DAA (supplied by the exchange model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineView {
    /// Ring-detect positive half-cycle.
    pub ring_positive: bool,
    /// Ring-detect negative half-cycle.
    pub ring_negative: bool,
    /// Tip-ring voltage, V.
    pub voltage: i8,
    /// Loop current register value.
    pub current: u8,
}

/// The chip.
#[derive(Debug, Clone)]
pub struct SimSi3050 {
    regs: [u8; 64],
    spi: Spi,
    iso_up_at: Option<Millis>,
    now: Millis,
    in_reset: bool,
    /// Line-side ID the chip reports (0x3 = Si3019).
    pub line_side_id: u8,
    /// The isolation link never comes up (a fault to inject).
    pub iso_fault: bool,
    /// The line as the exchange presents it.
    pub line: LineView,
    last_ringing: bool,
    last_polarity: bool,
}

impl Default for SimSi3050 {
    fn default() -> Self {
        Self::new()
    }
}

impl SimSi3050 {
    /// A chip just out of reset.
    #[must_use]
    pub fn new() -> Self {
        let mut c = Self {
            regs: [0; 64],
            spi: Spi::Control,
            iso_up_at: None,
            now: 0,
            in_reset: false,
            line_side_id: 0x3,
            iso_fault: false,
            line: LineView::default(),
            last_ringing: false,
            last_polarity: true,
        };
        c.reset_registers();
        c
    }

    fn reset_registers(&mut self) {
        self.regs = [0; 64];
        self.regs[usize::from(Reg::Control2.addr())] = regs::CONTROL2_RESET;
        // Line side powered down until register 6 is cleared.
        self.regs[usize::from(Reg::DaaControl2.addr())] = 0x10;
        self.iso_up_at = None;
        self.spi = Spi::Control;
    }

    /// Drives the reset line.
    pub fn set_reset(&mut self, asserted: bool) {
        if asserted {
            self.reset_registers();
        }
        self.in_reset = asserted;
    }

    /// Off-hook bit.
    #[must_use]
    pub fn off_hook(&self) -> bool {
        self.regs[usize::from(Reg::DaaControl1.addr())] & regs::OFF_HOOK != 0
    }

    /// On-hook line monitor bit (the audio path on-hook).
    #[must_use]
    pub fn monitoring(&self) -> bool {
        self.regs[usize::from(Reg::DaaControl1.addr())] & regs::ON_HOOK_MONITOR != 0
    }

    /// Updates time-dependent state and latches interrupts from the line.
    pub fn advance(&mut self, now: Millis) {
        self.now = now;
        let ringing = self.line.ring_positive || self.line.ring_negative;
        let irq = usize::from(Reg::IrqSource.addr());
        if ringing && !self.last_ringing {
            self.regs[irq] |= regs::IRQ_RING;
        }
        self.last_ringing = ringing;
        let polarity = self.line.voltage >= 0;
        if self.line.voltage != 0 && polarity != self.last_polarity {
            self.regs[irq] |= regs::IRQ_POLARITY;
            self.last_polarity = polarity;
        }
    }

    /// The interrupt output is asserted.
    #[must_use]
    pub fn interrupt(&self) -> bool {
        self.regs[usize::from(Reg::IrqSource.addr())] & self.regs[usize::from(Reg::IrqMask.addr())]
            != 0
    }

    fn read(&mut self, reg: u8) -> u8 {
        let a = usize::from(reg & 0x3F);
        match reg {
            5 => {
                let mut v = self.regs[a] & !(regs::RING_POSITIVE | regs::RING_NEGATIVE);
                if self.line.ring_positive {
                    v |= regs::RING_POSITIVE;
                }
                if self.line.ring_negative {
                    v |= regs::RING_NEGATIVE;
                }
                v
            }
            11 => match self.iso_up_at {
                Some(t) if self.now >= t && !self.iso_fault => self.line_side_id << 4 | 0x03,
                _ => 0,
            },
            28 => {
                if self.off_hook() {
                    self.line.current
                } else {
                    0
                }
            }
            29 => self.line.voltage.to_ne_bytes()[0],
            _ => self.regs[a],
        }
    }

    fn write(&mut self, reg: u8, v: u8) {
        let a = usize::from(reg & 0x3F);
        match reg {
            1 if v & regs::SOFT_RESET != 0 => self.reset_registers(),
            6 => {
                self.regs[a] = v;
                if v == 0 && self.iso_up_at.is_none() {
                    self.iso_up_at = Some(self.now + 30);
                }
            }
            11 | 28 | 29 => {}
            _ => self.regs[a] = v,
        }
    }

    /// One SPI byte.
    pub fn spi_byte(&mut self, mosi: Option<u8>) -> u8 {
        if self.in_reset {
            return 0xFF;
        }
        match (self.spi, mosi) {
            (Spi::Control, Some(b)) => {
                // 0x20 write, 0x60 read; the low nibble is the chain address (0 here).
                self.spi = match b & 0xF0 {
                    0x20 => Spi::Register { read: false },
                    0x60 => Spi::Register { read: true },
                    _ => Spi::Control,
                };
                0
            }
            (Spi::Register { read }, Some(r)) => {
                self.spi = if read { Spi::Read(r) } else { Spi::Write(r) };
                0
            }
            (Spi::Write(r), Some(v)) => {
                self.spi = Spi::Control;
                self.write(r, v);
                0
            }
            (Spi::Read(r), _) => {
                self.spi = Spi::Control;
                self.read(r)
            }
            (_, None) => 0xFF,
        }
    }

    /// Register value (for tests).
    #[must_use]
    pub fn register(&self, reg: u8) -> u8 {
        self.regs[usize::from(reg & 0x3F)]
    }
}
