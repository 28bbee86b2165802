//! 1200-baud FSK for caller ID: Bell 202 (mark 1200 Hz, space 2200 Hz, Telcordia GR-30) and
//! ITU-T V.23 as used by ETSI EN 300 659 and BT SIN227 (mark 1300 Hz, space 2100 Hz), with
//! asynchronous 8N1 framing (start bit 0, eight data bits LSB first, stop bit 1).
//!
//! [`FskModulator`] turns queued bits and bytes into phase-continuous audio; the caller-ID
//! layer queues the channel seizure (alternating bits), the mark signal and the message.
//! [`FskDemodulator`] turns audio back into bytes: two non-coherent correlators (one per
//! tone) over a one-bit sliding window, a carrier detector, and a UART that re-synchronises on
//! every start bit, so clock offsets between the ends never accumulate.
//!
//! Why correlators over a one-bit window: for non-coherent binary FSK in white noise, comparing
//! the energy of the two tones over exactly one bit is the optimal decision; sampling that
//! statistic in the middle of each bit (timed from the start bit's edge) makes it the matched
//! filter. A channel seizure (`0101…`) framed as 8N1 reads as a run of `0x55` bytes, which the
//! message layer skips.

use std::collections::VecDeque;
use std::f64::consts::TAU;

use crate::error::{DspError, Result};
use crate::level::dbm0_to_amplitude;
use crate::osc::to_i16;
use crate::util::check_rate;

/// Bits per second of both standards.
pub const BAUD: u32 = 1200;

/// Longest correlator window (samples per bit at 16 kHz, rounded up).
const MAX_WINDOW: usize = 14;

/// Renormalise the rotating phasors this often (see `osc.rs`).
const RENORM_EVERY: u32 = 256;

/// Which FSK signalling a caller-ID burst uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FskStandard {
    /// Bell 202 (North America, Telcordia GR-30-CORE): mark 1200 Hz, space 2200 Hz.
    Bell202,
    /// ITU-T V.23 (ETSI EN 300 659, BT SIN227): mark 1300 Hz, space 2100 Hz.
    V23,
}

impl FskStandard {
    /// The mark (binary 1) frequency in Hz.
    #[must_use]
    pub fn mark_hz(self) -> f64 {
        match self {
            FskStandard::Bell202 => 1200.0,
            FskStandard::V23 => 1300.0,
        }
    }

    /// The space (binary 0) frequency in Hz.
    #[must_use]
    pub fn space_hz(self) -> f64 {
        match self {
            FskStandard::Bell202 => 2200.0,
            FskStandard::V23 => 2100.0,
        }
    }
}

/// Settings of the [`FskModulator`].
#[derive(Debug, Clone, PartialEq)]
pub struct FskModConfig {
    /// Bell 202 or V.23.
    pub standard: FskStandard,
    /// 8000 or 16000 Hz.
    pub sample_rate: u32,
    /// Signal level. Default −13 dBm0: the nominal caller-ID transmit level of both
    /// GR-30-CORE and EN 300 659-1 (−13.5 dBm at the line interface).
    pub level_dbm0: f32,
}

impl FskModConfig {
    /// The defaults for `standard` at `sample_rate`.
    #[must_use]
    pub fn new(standard: FskStandard, sample_rate: u32) -> Self {
        Self {
            standard,
            sample_rate,
            level_dbm0: -13.0,
        }
    }
}

/// Streams queued bits as phase-continuous FSK. Bit boundaries fall on fractional sample
/// positions (6⅔ samples per bit at 8 kHz); the accumulated error never exceeds one sample.
#[derive(Debug, Clone)]
pub struct FskModulator {
    config: FskModConfig,
    amplitude: f64,
    /// Current phasor (unit length) and the per-sample rotations of the two tones.
    re: f64,
    im: f64,
    mark_step: (f64, f64),
    space_step: (f64, f64),
    renorm: u32,
    bits: VecDeque<bool>,
    /// The bit being sent and how far into it we are, in units of 1/(rate·baud) s.
    current: Option<bool>,
    bit_clock: u64,
}

impl FskModulator {
    /// A modulator with the given settings.
    ///
    /// # Errors
    /// [`DspError::UnsupportedSampleRate`] for rates other than 8000/16000;
    /// [`DspError::InvalidConfig`] for a non-finite level or one above +3 dBm0.
    pub fn new(config: FskModConfig) -> Result<Self> {
        check_rate(
            "FSK modulator",
            config.sample_rate,
            &[8000, 16000],
            "8000, 16000",
        )?;
        if !config.level_dbm0.is_finite() || config.level_dbm0 > 3.0 {
            return Err(DspError::InvalidConfig {
                component: "FSK modulator",
                field: "level_dbm0",
                reason: format!(
                    "{} dBm0 is not a level at or below +3 dBm0",
                    config.level_dbm0
                ),
            });
        }
        let rate = f64::from(config.sample_rate);
        let step = |hz: f64| {
            let w = TAU * hz / rate;
            (w.cos(), w.sin())
        };
        Ok(Self {
            amplitude: f64::from(dbm0_to_amplitude(config.level_dbm0)),
            mark_step: step(config.standard.mark_hz()),
            space_step: step(config.standard.space_hz()),
            re: 1.0,
            im: 0.0,
            renorm: 0,
            bits: VecDeque::new(),
            current: None,
            bit_clock: 0,
            config,
        })
    }

    /// The settings in use.
    #[must_use]
    pub fn config(&self) -> &FskModConfig {
        &self.config
    }

    /// Queues `n` bits of channel seizure: alternating 0 and 1, starting with 0.
    pub fn queue_seizure(&mut self, n: usize) {
        self.bits.extend((0..n).map(|i| i % 2 == 1));
    }

    /// Queues `n` mark bits (binary 1).
    pub fn queue_marks(&mut self, n: usize) {
        self.bits.extend(std::iter::repeat_n(true, n));
    }

    /// Queues one byte as 8N1: start bit, eight data bits LSB first, stop bit.
    pub fn queue_byte(&mut self, byte: u8) {
        self.bits.push_back(false);
        self.bits.extend((0..8).map(|i| byte >> i & 1 == 1));
        self.bits.push_back(true);
    }

    /// Queues bytes as 8N1, back to back.
    pub fn queue_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.queue_byte(b);
        }
    }

    /// True when nothing is queued or being sent.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.current.is_none() && self.bits.is_empty()
    }

    /// Samples still to come for everything queued (rounded up).
    #[must_use]
    pub fn remaining_samples(&self) -> u64 {
        let rate = u64::from(self.config.sample_rate);
        let bits = self.bits.len() as u64 + u64::from(self.current.is_some());
        let clock_units = (bits * rate).saturating_sub(self.bit_clock);
        clock_units.div_ceil(u64::from(BAUD))
    }

    /// Drops everything queued and stops at once.
    pub fn clear(&mut self) {
        self.bits.clear();
        self.current = None;
        self.bit_clock = 0;
    }

    /// Writes the next `out.len()` samples: the queued bits, then silence. Returns how many
    /// samples carried signal; fewer than `out.len()` means the burst ended in this buffer.
    pub fn fill(&mut self, out: &mut [i16]) -> usize {
        let rate = u64::from(self.config.sample_rate);
        for (i, o) in out.iter_mut().enumerate() {
            let bit = match self.current {
                Some(b) => b,
                None => match self.bits.pop_front() {
                    Some(b) => {
                        self.current = Some(b);
                        b
                    }
                    None => {
                        out[i..].fill(0);
                        // Next burst starts at phase 0 again (no click at its start).
                        self.re = 1.0;
                        self.im = 0.0;
                        return i;
                    }
                },
            };
            *o = to_i16(self.im * self.amplitude);
            let (c, s) = if bit { self.mark_step } else { self.space_step };
            let re = self.re * c - self.im * s;
            let im = self.re * s + self.im * c;
            self.re = re;
            self.im = im;
            self.renorm += 1;
            if self.renorm >= RENORM_EVERY {
                self.renorm = 0;
                let g = 1.5 - 0.5 * (re * re + im * im);
                self.re *= g;
                self.im *= g;
            }
            // One sample is `BAUD` clock units; a bit is `rate` units.
            self.bit_clock += u64::from(BAUD);
            if self.bit_clock >= rate {
                self.bit_clock -= rate;
                self.current = None;
            }
        }
        out.len()
    }
}

/// Settings of the [`FskDemodulator`].
#[derive(Debug, Clone, PartialEq)]
pub struct FskDemodConfig {
    /// Bell 202 or V.23.
    pub standard: FskStandard,
    /// 8000 or 16000 Hz.
    pub sample_rate: u32,
    /// Weakest signal that counts as a carrier. Default −48 dBm0: GR-30 and EN 300 659
    /// receivers must accept −32 to −40 dBm at the line; the margin covers line loss.
    pub min_level_dbm0: f32,
}

impl FskDemodConfig {
    /// The defaults for `standard` at `sample_rate`.
    #[must_use]
    pub fn new(standard: FskStandard, sample_rate: u32) -> Self {
        Self {
            standard,
            sample_rate,
            min_level_dbm0: -48.0,
        }
    }
}

/// What the demodulator found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FskEvent {
    /// The in-band energy rose above the carrier threshold.
    CarrierUp,
    /// A byte with a good start and stop bit.
    Byte(u8),
    /// A start bit was followed by a space where the stop bit should be: the byte is lost
    /// (the message layer treats the message as damaged).
    FramingError,
    /// The carrier went away (below the threshold, with 3 dB hysteresis, for two bits).
    CarrierDown,
    /// Continuous mark for [`MARK_SIGNAL_BITS`] bits: the mark signal that precedes a
    /// caller-ID message (GR-30: 180 bits; EN 300 659: 180 ± 25). Reported once per run.
    MarkSignal,
}

/// Continuous mark bits that count as a mark signal. Noise never holds one tone this long,
/// so a message layer that only starts after a mark signal does not lock onto a byte that
/// noise made look like a message type.
pub const MARK_SIGNAL_BITS: u32 = 40;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Uart {
    /// Waiting for a start bit; `armed` once a mark has been seen since the last byte or
    /// framing error (a start bit is a mark-to-space edge).
    Idle { armed: bool },
    /// A mark-to-space edge at `edge` (fractional sample index), to be confirmed.
    Start { edge: f64 },
    /// Receiving bit `bit` (0 = start, 1..=8 data, 9 = stop), sampled at `at`.
    Bits { bit: u8, at: f64, value: u16 },
}

/// Decodes 1200-baud FSK into bytes. Block-oriented and allocation-free: feed any number of
/// samples per call; events come through a callback in stream order.
#[derive(Debug, Clone)]
pub struct FskDemodulator {
    config: FskDemodConfig,
    window: usize,
    /// Samples per bit.
    bit_len: f64,
    /// From a zero crossing of the statistic to the next bit's sampling instant: the
    /// window lags the signal by (W−1)/2 samples, and the window is aligned with a bit when
    /// it ends one bit minus a sample after the bit's start.
    center_offset: f64,
    /// The statistic one sample ago.
    prev_d: f64,
    lo_m: (f64, f64),
    lo_s: (f64, f64),
    step_m: (f64, f64),
    step_s: (f64, f64),
    renorm: u32,
    ring_m: [(f64, f64); MAX_WINDOW],
    ring_s: [(f64, f64); MAX_WINDOW],
    ring_pos: usize,
    sum_m: (f64, f64),
    sum_s: (f64, f64),
    /// Correlator energy thresholds (carrier on / off), in squared-sum units.
    on_threshold: f64,
    off_threshold: f64,
    carrier: bool,
    quiet: u32,
    uart: Uart,
    /// Samples processed.
    n: u64,
    /// Consecutive mark samples while idle, and whether this run was reported.
    mark_run: u32,
    mark_reported: bool,
    mark_signal_samples: u32,
    /// Resync the sliding sums from the ring this often (float drift).
    since_resync: u32,
}

impl FskDemodulator {
    /// A demodulator with the given settings.
    ///
    /// # Errors
    /// [`DspError::UnsupportedSampleRate`] for rates other than 8000/16000;
    /// [`DspError::InvalidConfig`] for a non-finite level.
    pub fn new(config: FskDemodConfig) -> Result<Self> {
        check_rate(
            "FSK demodulator",
            config.sample_rate,
            &[8000, 16000],
            "8000, 16000",
        )?;
        if !config.min_level_dbm0.is_finite() || config.min_level_dbm0 > 0.0 {
            return Err(DspError::InvalidConfig {
                component: "FSK demodulator",
                field: "min_level_dbm0",
                reason: format!("{} dBm0 is not a level below 0 dBm0", config.min_level_dbm0),
            });
        }
        let rate = f64::from(config.sample_rate);
        let bit_len = rate / f64::from(BAUD);
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "6.67 or 13.3 rounded: a small positive number"
        )]
        let window = (bit_len.round() as usize).min(MAX_WINDOW);
        let step = |hz: f64| {
            let w = TAU * hz / rate;
            (w.cos(), -w.sin())
        };
        // A sine of amplitude A gives |sum|² = (A·W/2)² in its own correlator.
        let amp = f64::from(dbm0_to_amplitude(config.min_level_dbm0));
        let w = window as f64;
        let on_threshold = (amp * w / 2.0).powi(2);
        let center_offset = bit_len - 1.0 - (w - 1.0) / 2.0;
        Ok(Self {
            window,
            bit_len,
            center_offset,
            prev_d: 0.0,
            lo_m: (1.0, 0.0),
            lo_s: (1.0, 0.0),
            step_m: step(config.standard.mark_hz()),
            step_s: step(config.standard.space_hz()),
            renorm: 0,
            ring_m: [(0.0, 0.0); MAX_WINDOW],
            ring_s: [(0.0, 0.0); MAX_WINDOW],
            ring_pos: 0,
            sum_m: (0.0, 0.0),
            sum_s: (0.0, 0.0),
            on_threshold,
            off_threshold: on_threshold / 2.0,
            carrier: false,
            quiet: 0,
            uart: Uart::Idle { armed: false },
            n: 0,
            mark_run: 0,
            mark_reported: false,
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "40 bits of 6.7 or 13.3 samples"
            )]
            mark_signal_samples: (f64::from(MARK_SIGNAL_BITS) * bit_len) as u32,
            since_resync: 0,
            config,
        })
    }

    /// The settings in use.
    #[must_use]
    pub fn config(&self) -> &FskDemodConfig {
        &self.config
    }

    /// True while a carrier is present.
    #[must_use]
    pub fn carrier(&self) -> bool {
        self.carrier
    }

    /// Forgets everything (carrier, partial byte, filter state).
    pub fn reset(&mut self) {
        let config = self.config.clone();
        if let Ok(fresh) = Self::new(config) {
            *self = fresh;
        }
    }

    /// Feeds samples; `on_event` receives carrier changes and bytes in stream order.
    pub fn process(&mut self, samples: &[i16], mut on_event: impl FnMut(FskEvent)) {
        for &x in samples {
            let x = f64::from(x);
            let m = (x * self.lo_m.0, x * self.lo_m.1);
            let s = (x * self.lo_s.0, x * self.lo_s.1);
            self.lo_m = rotate(self.lo_m, self.step_m);
            self.lo_s = rotate(self.lo_s, self.step_s);
            self.renorm += 1;
            if self.renorm >= RENORM_EVERY {
                self.renorm = 0;
                self.lo_m = renormalise(self.lo_m);
                self.lo_s = renormalise(self.lo_s);
            }
            let old_m = self.ring_m[self.ring_pos];
            let old_s = self.ring_s[self.ring_pos];
            self.ring_m[self.ring_pos] = m;
            self.ring_s[self.ring_pos] = s;
            self.ring_pos = (self.ring_pos + 1) % self.window;
            self.since_resync += 1;
            if self.since_resync >= 4096 {
                self.since_resync = 0;
                self.sum_m = self.ring_m[..self.window]
                    .iter()
                    .fold((0.0, 0.0), |a, v| (a.0 + v.0, a.1 + v.1));
                self.sum_s = self.ring_s[..self.window]
                    .iter()
                    .fold((0.0, 0.0), |a, v| (a.0 + v.0, a.1 + v.1));
            } else {
                self.sum_m = (self.sum_m.0 + m.0 - old_m.0, self.sum_m.1 + m.1 - old_m.1);
                self.sum_s = (self.sum_s.0 + s.0 - old_s.0, self.sum_s.1 + s.1 - old_s.1);
            }
            let em = self.sum_m.0 * self.sum_m.0 + self.sum_m.1 * self.sum_m.1;
            let es = self.sum_s.0 * self.sum_s.0 + self.sum_s.1 * self.sum_s.1;
            self.step_carrier(em.max(es), &mut on_event);
            self.step_uart(em - es, &mut on_event);
            self.n += 1;
        }
    }

    fn step_carrier(&mut self, energy: f64, on_event: &mut impl FnMut(FskEvent)) {
        if self.carrier {
            if energy < self.off_threshold {
                self.quiet += 1;
                // Two bits of quiet: the burst is over (one bit can fade inside a burst).
                #[expect(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "two bit lengths: 14 or 27 samples"
                )]
                let limit = (2.0 * self.bit_len) as u32;
                if self.quiet > limit {
                    self.carrier = false;
                    self.quiet = 0;
                    // A byte cut off by the end of the carrier is usually a false start on
                    // the burst's tail; the message layer sees the burst end either way.
                    self.uart = Uart::Idle { armed: false };
                    on_event(FskEvent::CarrierDown);
                }
            } else {
                self.quiet = 0;
            }
        } else if energy >= self.on_threshold {
            self.carrier = true;
            self.quiet = 0;
            on_event(FskEvent::CarrierUp);
        }
    }

    fn step_uart(&mut self, d: f64, on_event: &mut impl FnMut(FskEvent)) {
        let prev = self.prev_d;
        self.prev_d = d;
        if !self.carrier {
            self.mark_run = 0;
            self.mark_reported = false;
            return;
        }
        let now = self.n as f64;
        if d > 0.0 && matches!(self.uart, Uart::Idle { .. }) {
            self.mark_run = self.mark_run.saturating_add(1);
            if !self.mark_reported && self.mark_run >= self.mark_signal_samples {
                self.mark_reported = true;
                on_event(FskEvent::MarkSignal);
            }
        } else {
            self.mark_run = 0;
            self.mark_reported = false;
        }
        // Where the statistic crossed zero between the previous sample and this one.
        let crossing = || now - 1.0 + prev / (prev - d);
        match self.uart {
            Uart::Idle { armed } => {
                if d > 0.0 {
                    if !armed {
                        self.uart = Uart::Idle { armed: true };
                    }
                } else if armed && d < 0.0 && prev >= 0.0 {
                    // A mark-to-space edge; confirmed by the next sample (noise makes single
                    // negative samples inside a mark).
                    self.uart = Uart::Start { edge: crossing() };
                }
            }
            Uart::Start { edge } => {
                self.uart = if d < 0.0 {
                    Uart::Bits {
                        bit: 0,
                        at: edge + self.center_offset,
                        value: 0,
                    }
                } else {
                    Uart::Idle { armed: true }
                };
            }
            Uart::Bits { bit, at, value } => {
                let mut at = at;
                if (d < 0.0) != (prev < 0.0) && prev != 0.0 {
                    // A bit boundary: pull the sampling instant halfway towards where this
                    // edge says the next bit's centre is (tracks clock offset and jitter).
                    let predicted = crossing() + self.center_offset;
                    let error = predicted - at;
                    if error.abs() < 0.4 * self.bit_len {
                        at += 0.5 * error;
                    }
                }
                if now < at {
                    self.uart = Uart::Bits { bit, at, value };
                    return;
                }
                // The statistic at the (fractional) sampling instant.
                let frac = (at - (now - 1.0)).clamp(0.0, 1.0);
                let mark = prev + (d - prev) * frac > 0.0;
                match bit {
                    0 if mark => {
                        // A glitch, not a start bit.
                        self.uart = Uart::Idle { armed: true };
                    }
                    9 => {
                        if mark {
                            #[expect(
                                clippy::cast_possible_truncation,
                                reason = "eight data bits were shifted in"
                            )]
                            on_event(FskEvent::Byte((value >> 1) as u8));
                            self.uart = Uart::Idle { armed: true };
                        } else {
                            on_event(FskEvent::FramingError);
                            self.uart = Uart::Idle { armed: false };
                        }
                    }
                    _ => {
                        let value = if bit >= 1 && mark {
                            value | 1 << bit
                        } else {
                            value
                        };
                        self.uart = Uart::Bits {
                            bit: bit + 1,
                            at: at + self.bit_len,
                            value,
                        };
                    }
                }
            }
        }
    }
}

#[inline]
fn rotate(z: (f64, f64), step: (f64, f64)) -> (f64, f64) {
    (z.0 * step.0 - z.1 * step.1, z.0 * step.1 + z.1 * step.0)
}

#[inline]
fn renormalise(z: (f64, f64)) -> (f64, f64) {
    let g = 1.5 - 0.5 * (z.0 * z.0 + z.1 * z.1);
    (z.0 * g, z.1 * g)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modulate(standard: FskStandard, rate: u32, bytes: &[u8]) -> Vec<i16> {
        let mut m = FskModulator::new(FskModConfig::new(standard, rate)).expect("valid");
        m.queue_seizure(300);
        m.queue_marks(180);
        m.queue_bytes(bytes);
        m.queue_marks(10);
        let n = usize::try_from(m.remaining_samples()).expect("small");
        let mut out = vec![0i16; n + 400];
        let used = m.fill(&mut out);
        assert_eq!(used, n, "remaining_samples is exact");
        assert!(m.is_idle());
        let mut padded = vec![0i16; 300];
        padded.extend(out);
        padded
    }

    fn demodulate(standard: FskStandard, rate: u32, audio: &[i16]) -> (Vec<u8>, Vec<FskEvent>) {
        let mut d = FskDemodulator::new(FskDemodConfig::new(standard, rate)).expect("valid");
        let mut bytes = Vec::new();
        let mut events = Vec::new();
        // Odd block sizes: block boundaries must not matter.
        for chunk in audio.chunks(37) {
            d.process(chunk, |e| {
                if let FskEvent::Byte(b) = e {
                    bytes.push(b);
                }
                events.push(e);
            });
        }
        (bytes, events)
    }

    #[test]
    fn round_trip_both_standards_and_rates() {
        let payload: Vec<u8> = (0..=255u8).collect();
        for standard in [FskStandard::Bell202, FskStandard::V23] {
            for rate in [8000, 16000] {
                let audio = modulate(standard, rate, &payload);
                let (bytes, events) = demodulate(standard, rate, &audio);
                // The receiver may lock onto the seizure off by a bit pair, so the byte
                // straddling seizure and mark signal varies; the message follows intact.
                assert!(
                    bytes.ends_with(&payload),
                    "{standard:?} at {rate} Hz: {bytes:02x?}"
                );
                assert!(bytes.len() <= payload.len() + 31);
                assert_eq!(events.first(), Some(&FskEvent::CarrierUp));
                assert!(events.contains(&FskEvent::MarkSignal));
                assert_eq!(events.last(), Some(&FskEvent::CarrierDown));
                let first_payload = events
                    .iter()
                    .rposition(|e| *e == FskEvent::Byte(0x55))
                    .expect("seizure read");
                assert!(!events[first_payload..].contains(&FskEvent::FramingError));
            }
        }
    }

    #[test]
    fn seizure_reads_as_0x55() {
        let audio = modulate(FskStandard::Bell202, 8000, &[0x80]);
        let (bytes, _) = demodulate(FskStandard::Bell202, 8000, &audio);
        let seizure = bytes.iter().take_while(|&&b| b == 0x55).count();
        assert!(seizure >= 25, "{seizure} seizure bytes of 30");
        assert_eq!(bytes.last(), Some(&0x80));
    }

    #[test]
    fn silence_and_weak_signals_are_no_carrier() {
        let mut d = FskDemodulator::new(FskDemodConfig::new(FskStandard::V23, 8000)).expect("ok");
        let mut events = 0;
        d.process(&[0i16; 8000], |_| events += 1);
        assert_eq!(events, 0);
        let mut m = FskModulator::new(FskModConfig {
            level_dbm0: -60.0,
            ..FskModConfig::new(FskStandard::V23, 8000)
        })
        .expect("valid");
        m.queue_bytes(b"hello");
        let mut audio = vec![0i16; 1000];
        m.fill(&mut audio);
        d.process(&audio, |_| events += 1);
        assert_eq!(events, 0);
    }

    #[test]
    fn remaining_samples_counts_fractional_bits() {
        let mut m =
            FskModulator::new(FskModConfig::new(FskStandard::Bell202, 8000)).expect("valid");
        m.queue_marks(3);
        // 3 bits at 6⅔ samples = 20 samples.
        assert_eq!(m.remaining_samples(), 20);
        let mut out = [0i16; 7];
        assert_eq!(m.fill(&mut out), 7);
        assert_eq!(m.remaining_samples(), 13);
    }

    #[test]
    fn rejects_bad_config() {
        assert!(FskModulator::new(FskModConfig::new(FskStandard::V23, 44100)).is_err());
        let mut c = FskModConfig::new(FskStandard::V23, 8000);
        c.level_dbm0 = f32::NAN;
        assert!(FskModulator::new(c).is_err());
        let mut c = FskDemodConfig::new(FskStandard::V23, 8000);
        c.min_level_dbm0 = 5.0;
        assert!(FskDemodulator::new(c).is_err());
    }
}
