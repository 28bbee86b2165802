//! The simulated analog board: a register-level Si3215 with a telephone on its line and a
//! register-level Si3050 on a simulated exchange line, behind embedded-hal's `SpiDevice`,
//! `OutputPin`/`InputPin` and `DelayNs`, so the real drivers, line logic and ports run on them
//! unchanged.
//!
//! ```text
//!  FxsPort ─ Si321x driver ─ SimSpi ──▶ SimSi3215 ─── SimPhone        (lift, dial, hang up, hears)
//!  FxoPort ─ Si3050 driver ─ SimSpi ──▶ SimSi3050 ─── SimExchange     (rings with caller ID, answers,
//!                                                                       hangs up, carries audio)
//!                   audio: SimBoard::fxs_frame / fxo_frame (20 ms, 8 kHz i16)
//! ```
//!
//! Time is simulated ([`SimClock`]): drivers' delays advance it, and whoever runs the board
//! moves it forward ([`SimBoard::advance_to`]) — a test in steps, the daemon from its real
//! clock. [`AnalogSimControl`] (clone-able, the analog twin of the modem simulator's
//! `SimulatorControl`) acts as the user and the network and reads back what happened;
//! [`AnalogSimControl::wait_for`] wakes on every state change, never on a timer.

mod clock;
mod exchange;
mod phone;
mod si3050;
mod si3215;

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use embedded_hal::digital::{self, InputPin, OutputPin};
use embedded_hal::spi::{self, Operation, SpiDevice};

pub use self::clock::{SimClock, SimDelay};
pub use self::exchange::{
    DisconnectSignal, ExchangeConfig, ExchangeEvent, ExchangeState, SimExchange,
};
pub use self::phone::SimPhone;
pub use self::si3050::{LineView, SimSi3050};
pub use self::si3215::{ProslicFaults, SimSi3215};
use crate::Millis;
use crate::cid::CallerId;
use crate::country::CidSignalling;
use crate::port::{FxoPort, FxoPortConfig, FxsPort, FxsPortConfig, PortError};
use crate::si321x::{FxsChipConfig, Part, Si321x};
use crate::si3050::{FxoChipConfig, LineSide, Si3050};

/// Everything simulated, behind one lock.
#[derive(Debug)]
pub struct SimState {
    /// The ProSLIC.
    pub slic: SimSi3215,
    /// The telephone on it.
    pub phone: SimPhone,
    /// The DAA.
    pub daa: SimSi3050,
    /// The exchange line on it.
    pub exchange: SimExchange,
    /// SPI bytes exchanged (both chips).
    pub spi_bytes: u64,
}

impl SimState {
    fn advance(&mut self, now: Millis) {
        self.phone.advance(now, &mut self.slic);
        self.slic.advance(now);
        self.exchange.advance(now, &mut self.daa);
    }
}

#[derive(Debug)]
struct Shared {
    state: Mutex<SimState>,
    changed: Condvar,
    clock: SimClock,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SimState> {
        // A panic while holding the lock (a failed test) must not hide the original panic
        // behind a poison error in every other handle.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Which simulated chip an SPI device or pin talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chip {
    /// The Si3215.
    Slic,
    /// The Si3050.
    Daa,
}

/// The simulated SPI device of one chip (chip select per transaction, like spidev).
#[derive(Debug, Clone)]
pub struct SimSpi {
    shared: Arc<Shared>,
    chip: Chip,
}

/// Errors of the simulated HAL (none happen; the type exists for the traits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimHalError;

impl spi::Error for SimHalError {
    fn kind(&self) -> spi::ErrorKind {
        spi::ErrorKind::Other
    }
}

impl digital::Error for SimHalError {
    fn kind(&self) -> digital::ErrorKind {
        digital::ErrorKind::Other
    }
}

impl spi::ErrorType for SimSpi {
    type Error = SimHalError;
}

impl SpiDevice for SimSpi {
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), SimHalError> {
        let now = self.shared.clock.now();
        let mut s = self.shared.lock();
        s.advance(now);
        let byte = |s: &mut SimState, mosi: Option<u8>| -> u8 {
            s.spi_bytes += 1;
            match self.chip {
                Chip::Slic => s.slic.spi_byte(mosi),
                Chip::Daa => s.daa.spi_byte(mosi),
            }
        };
        for op in operations.iter_mut() {
            match op {
                Operation::Write(w) => {
                    for &b in w.iter() {
                        byte(&mut s, Some(b));
                    }
                }
                Operation::Read(r) => {
                    for b in r.iter_mut() {
                        *b = byte(&mut s, None);
                    }
                }
                Operation::Transfer(r, w) => {
                    for (i, rb) in r.iter_mut().enumerate() {
                        *rb = byte(&mut s, w.get(i).copied());
                    }
                }
                Operation::TransferInPlace(buf) => {
                    for b in buf.iter_mut() {
                        *b = byte(&mut s, Some(*b));
                    }
                }
                Operation::DelayNs(ns) => self.shared.clock.advance_ns(u64::from(*ns)),
            }
        }
        drop(s);
        self.shared.changed.notify_all();
        Ok(())
    }
}

/// A simulated GPIO: the chip's reset input (`OutputPin`) or interrupt output (`InputPin`).
#[derive(Debug, Clone)]
pub struct SimPin {
    shared: Arc<Shared>,
    chip: Chip,
}

impl digital::ErrorType for SimPin {
    type Error = SimHalError;
}

impl OutputPin for SimPin {
    fn set_low(&mut self) -> Result<(), SimHalError> {
        let mut s = self.shared.lock();
        match self.chip {
            Chip::Slic => s.slic.set_reset(true),
            Chip::Daa => s.daa.set_reset(true),
        }
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), SimHalError> {
        let mut s = self.shared.lock();
        match self.chip {
            Chip::Slic => s.slic.set_reset(false),
            Chip::Daa => s.daa.set_reset(false),
        }
        Ok(())
    }
}

impl InputPin for SimPin {
    fn is_high(&mut self) -> Result<bool, SimHalError> {
        self.is_low().map(|l| !l)
    }

    fn is_low(&mut self) -> Result<bool, SimHalError> {
        let now = self.shared.clock.now();
        let mut s = self.shared.lock();
        s.advance(now);
        Ok(match self.chip {
            Chip::Slic => s.slic.interrupt(),
            Chip::Daa => s.daa.interrupt(),
        })
    }
}

/// The simulated FXS port's type.
pub type SimFxsPort = FxsPort<SimSpi, SimPin, SimPin, SimDelay>;
/// The simulated FXO port's type.
pub type SimFxoPort = FxoPort<SimSpi, SimPin, SimPin, SimDelay>;

/// The simulated board: one FXS port with a telephone, one FXO port on an exchange line.
#[derive(Debug, Clone)]
pub struct SimBoard {
    shared: Arc<Shared>,
}

impl SimBoard {
    /// A board whose exchange line behaves as `exchange` says.
    ///
    /// # Errors
    /// An unknown tone zone in `exchange`.
    pub fn new(exchange: ExchangeConfig) -> Result<Self, String> {
        let state = SimState {
            slic: SimSi3215::new(),
            phone: SimPhone::new(),
            daa: SimSi3050::new(),
            exchange: SimExchange::new(exchange)?,
            spi_bytes: 0,
        };
        Ok(Self {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                changed: Condvar::new(),
                clock: SimClock::new(),
            }),
        })
    }

    /// The simulated clock.
    #[must_use]
    pub fn clock(&self) -> SimClock {
        self.shared.clock.clone()
    }

    /// Moves simulated time forward to `now` and updates the models.
    pub fn advance_to(&self, now: Millis) {
        self.shared.clock.advance_to(now);
        let now = self.shared.clock.now();
        self.shared.lock().advance(now);
        self.shared.changed.notify_all();
    }

    /// SPI device, reset pin, interrupt pin and delay of a chip.
    #[must_use]
    pub fn hal(&self, chip: Chip) -> (SimSpi, SimPin, SimPin, SimDelay) {
        let spi = SimSpi {
            shared: self.shared.clone(),
            chip,
        };
        let pin = SimPin {
            shared: self.shared.clone(),
            chip,
        };
        (spi, pin.clone(), pin, self.shared.clock.delay())
    }

    /// An FXS port on the simulated Si3215 (not started).
    ///
    /// # Errors
    /// [`PortError`] from the port's configuration.
    pub fn fxs_port(
        &self,
        chip: FxsChipConfig,
        config: FxsPortConfig,
    ) -> Result<SimFxsPort, PortError> {
        let (spi, rst, int, delay) = self.hal(Chip::Slic);
        FxsPort::new(Si321x::new(spi, rst, int, delay, chip), config)
    }

    /// An FXO port on the simulated Si3050 (not started).
    ///
    /// # Errors
    /// [`PortError`] from the port's configuration.
    pub fn fxo_port(
        &self,
        chip: FxoChipConfig,
        config: FxoPortConfig,
    ) -> Result<SimFxoPort, PortError> {
        let (spi, rst, int, delay) = self.hal(Chip::Daa);
        FxoPort::new(Si3050::new(spi, rst, int, delay, chip), config)
    }

    /// The default simulated FXS port: Si3215, US settings.
    ///
    /// # Errors
    /// [`PortError`] (never with the built-in tables).
    pub fn default_fxs_port(&self) -> Result<SimFxsPort, PortError> {
        self.fxs_port(
            FxsChipConfig::new(Part::Si3215),
            FxsPortConfig::for_zone("us")?,
        )
    }

    /// The default simulated FXO port: Si3050 + Si3019, US settings.
    ///
    /// # Errors
    /// [`PortError`] (never with the built-in tables).
    pub fn default_fxo_port(&self) -> Result<SimFxoPort, PortError> {
        let us = crate::country::country("us").ok_or(PortError::Config("no us".into()))?;
        self.fxo_port(
            FxoChipConfig::new(LineSide::Si3019, us.daa),
            FxoPortConfig::for_zone("us"),
        )
    }

    /// One 20 ms frame on the FXS line: what the port sends to the phone → what the phone
    /// sends back.
    #[must_use]
    pub fn fxs_frame(&self, to_phone: &[i16]) -> Vec<i16> {
        let mut s = self.shared.lock();
        let SimState { slic, phone, .. } = &mut *s;
        phone.frame(slic, to_phone)
    }

    /// One 20 ms frame on the FXO line: what the port sends to the exchange → what the
    /// exchange sends back.
    #[must_use]
    pub fn fxo_frame(&self, to_exchange: &[i16]) -> Vec<i16> {
        let mut s = self.shared.lock();
        let SimState { daa, exchange, .. } = &mut *s;
        exchange.frame(daa, to_exchange)
    }

    /// The control handle.
    #[must_use]
    pub fn control(&self) -> AnalogSimControl {
        AnalogSimControl {
            shared: self.shared.clone(),
        }
    }
}

/// How the simulated phone dials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DialMethod {
    /// DTMF tones.
    Dtmf,
    /// Rotary pulses (10 pps).
    Pulse,
}

/// The simulator's control handle: the user at the phone, the network behind the exchange.
#[derive(Debug, Clone)]
pub struct AnalogSimControl {
    shared: Arc<Shared>,
}

impl AnalogSimControl {
    fn with<T>(&self, f: impl FnOnce(&mut SimState, Millis) -> T) -> T {
        let now = self.shared.clock.now();
        let out = {
            let mut s = self.shared.lock();
            s.advance(now);
            f(&mut s, now)
        };
        self.shared.changed.notify_all();
        out
    }

    /// Lifts the handset (after any dialling already scheduled).
    pub fn lift_handset(&self) {
        self.with(|s, now| {
            let at = s.phone.busy_until(now);
            s.phone.schedule_hook(at, true);
            s.phone.advance(now, &mut s.slic);
        });
    }

    /// Replaces the handset.
    pub fn hang_up(&self) {
        self.with(|s, now| {
            let at = s.phone.busy_until(now);
            s.phone.schedule_hook(at, false);
            s.phone.advance(now, &mut s.slic);
        });
    }

    /// Flashes the hook (on-hook for `ms`).
    pub fn flash(&self, ms: Millis) {
        self.with(|s, now| {
            let at = s.phone.busy_until(now);
            s.phone.schedule_hook(at, false);
            s.phone.schedule_hook(at + ms, true);
            s.phone.advance(now, &mut s.slic);
        });
    }

    /// Dials digits on the phone.
    ///
    /// # Errors
    /// A character that is not a digit of the method.
    pub fn dial(&self, digits: &str, method: DialMethod) -> Result<(), String> {
        self.with(|s, now| match method {
            DialMethod::Dtmf => s.phone.queue_dtmf(digits),
            DialMethod::Pulse => {
                if !digits.chars().all(|c| c.is_ascii_digit()) {
                    return Err(format!("{digits:?}: pulse dialling has digits only"));
                }
                let at = s.phone.busy_until(now);
                s.phone.schedule_pulses(digits, at);
                Ok(())
            }
        })
    }

    /// Speaks into the phone's microphone.
    pub fn phone_say(&self, samples: &[i16]) {
        self.with(|s, _| s.phone.say(samples));
    }

    /// Audio the phone heard while off-hook (taken).
    #[must_use]
    pub fn phone_heard(&self) -> Vec<i16> {
        self.with(|s, _| s.phone.take_heard())
    }

    /// True while the phone rings.
    #[must_use]
    pub fn phone_ringing(&self) -> bool {
        self.with(|s, _| s.phone.is_ringing())
    }

    /// Completed ring bursts on the phone (start, end).
    #[must_use]
    pub fn phone_rings(&self) -> Vec<(Millis, Millis)> {
        self.with(|s, _| s.phone.rings().to_vec())
    }

    /// Caller IDs the phone displayed.
    #[must_use]
    pub fn phone_caller_ids(&self) -> Vec<CallerId> {
        self.with(|s, _| s.phone.caller_ids().to_vec())
    }

    /// True while the phone is off-hook.
    #[must_use]
    pub fn phone_off_hook(&self) -> bool {
        self.with(|s, _| s.phone.is_off_hook())
    }

    /// The exchange rings the FXO line, with caller ID sent as `signalling` says.
    ///
    /// # Errors
    /// The exchange line is busy, or the caller ID cannot be rendered.
    pub fn ring_line(
        &self,
        caller: Option<&CallerId>,
        signalling: CidSignalling,
    ) -> Result<(), String> {
        self.with(|s, _| s.exchange.ring(caller, signalling))
    }

    /// The far end answers the gateway's outgoing call.
    ///
    /// # Errors
    /// Nothing to answer.
    pub fn answer_line(&self) -> Result<(), String> {
        self.with(|s, _| s.exchange.answer())
    }

    /// The far end hangs up (or stops ringing).
    ///
    /// # Errors
    /// No call.
    pub fn hang_up_line(&self) -> Result<(), String> {
        self.with(|s, _| s.exchange.far_end_hangup())
    }

    /// Far-end speech towards the gateway.
    pub fn line_say(&self, samples: &[i16]) {
        self.with(|s, _| s.exchange.say(samples));
    }

    /// What the far end heard (taken).
    #[must_use]
    pub fn line_heard(&self) -> Vec<i16> {
        self.with(|s, _| s.exchange.take_heard())
    }

    /// Numbers the gateway dialled on the exchange line.
    #[must_use]
    pub fn dialled(&self) -> Vec<String> {
        self.with(|s, _| s.exchange.dialled())
    }

    /// What the exchange saw.
    #[must_use]
    pub fn exchange_events(&self) -> Vec<ExchangeEvent> {
        self.with(|s, _| s.exchange.events().to_vec())
    }

    /// The exchange's state.
    #[must_use]
    pub fn exchange_state(&self) -> ExchangeState {
        self.with(|s, _| s.exchange.state().clone())
    }

    /// Direct access to the simulated chips (fault injection, register inspection).
    pub fn chips<T>(&self, f: impl FnOnce(&mut SimSi3215, &mut SimSi3050) -> T) -> T {
        self.with(|s, _| f(&mut s.slic, &mut s.daa))
    }

    /// Waits (real time, up to `limit`) until `f` returns `Some`; wakes on every change of
    /// the simulation.
    ///
    /// `None` when `limit` passes first.
    pub fn wait_for<T>(
        &self,
        limit: Duration,
        mut f: impl FnMut(&SimState) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + limit;
        let mut s = self.shared.lock();
        loop {
            if let Some(v) = f(&s) {
                return Some(v);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            s = self
                .shared
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }
}
