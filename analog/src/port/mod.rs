//! Ports: a chip driver, its line state machine and the port's audio path put together — the
//! API the gateway's call-leg adapter wraps.
//!
//! An adapter owns one port per analog line and drives it from one thread or task:
//!
//! ```text
//! every ≤ 10 ms         port.poll(now)                      chip ↔ line logic (hook, ring, battery)
//! every 20 ms frame     port.audio(now, from_line, to_line, from_call) -> connected?
//! on a leg operation    port.command(LineCommand, now)
//! after each of these   while let Some(e) = port.next_event() { … map onto the leg contract … }
//! for the API           port.status()
//! ```
//!
//! `from_line`/`to_line` are the port's 20 ms frames of 8 kHz `i16` audio from and to the line
//! (the SLIC/DAA's PCM through ALSA, or the simulator). While [`AnalogPort::audio`] returns
//! `true` the call is connected: `from_line` is the caller's audio for the call, and `to_line`
//! carries `from_call`. Otherwise the port makes the line's sound itself (dial tone, ringback,
//! caller ID, DTMF dialling, busy…) and listens for what it needs (DTMF digits, caller ID,
//! dial tone).

pub mod cid;
mod fxo;
mod fxs;

use std::fmt;

pub use self::fxo::{FxoPort, FxoPortConfig};
pub use self::fxs::{FxsPort, FxsPortConfig};
use crate::Millis;
use crate::cid::{CallerId, CidError};
use crate::line::{Digits, LineEvent, Tone};

/// Samples in a 20 ms frame at 8 kHz.
pub const FRAME: usize = 160;

/// The two kinds of analog port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortKind {
    /// A telephone plugs in (SLIC).
    Fxs,
    /// The port plugs into a landline (DAA).
    Fxo,
}

/// Commands of the leg contract, as an analog port understands them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineCommand {
    /// FXS: ring the phone, with caller ID (set `datetime` from the wall clock).
    Ring {
        /// Who calls.
        caller: Option<CallerId>,
    },
    /// FXS: the far end of the phone's call is ringing.
    Ringback,
    /// FXS: connect the phone's call. FXO: answer the ringing line.
    Answer,
    /// End the call. FXS: a phone still off-hook hears `tone`.
    Hangup {
        /// Busy or congestion for an FXS phone left off-hook.
        tone: Tone,
    },
    /// FXS: dial tone again during a call (consultation after a flash).
    DialTone,
    /// FXS: end the consultation call (the held call stays). A phone still off-hook hears
    /// `tone` until it flashes back to the held call.
    HangupConsult {
        /// Busy or congestion.
        tone: Tone,
    },
    /// FXO: seize the line and dial.
    Dial(Digits),
    /// FXO: hook flash.
    Flash,
    /// FXO: send DTMF digits during the call.
    SendDtmf(Digits),
}

impl LineCommand {
    fn name(&self) -> &'static str {
        match self {
            LineCommand::Ring { .. } => "ring",
            LineCommand::Ringback => "ringback",
            LineCommand::Answer => "answer",
            LineCommand::Hangup { .. } => "hangup",
            LineCommand::DialTone => "dial tone",
            LineCommand::HangupConsult { .. } => "hang up the consultation call",
            LineCommand::Dial(_) => "dial",
            LineCommand::Flash => "flash",
            LineCommand::SendDtmf(_) => "send DTMF",
        }
    }
}

/// Hook state of the port's line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookState {
    /// On-hook.
    OnHook,
    /// Off-hook.
    OffHook,
}

/// Alarms of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Alarms {
    /// FXS: power alarms (the chip opened the line) since start.
    pub power: u32,
    /// FXS: transistor thermal/power alarm interrupts since start.
    pub thermal: u32,
    /// FXS: too many power alarms; the line is left open.
    pub line_open: bool,
    /// FXO: no battery on the line.
    pub no_battery: bool,
}

/// What the management API shows for a port.
#[derive(Debug, Clone, PartialEq)]
pub struct PortStatus {
    /// FXS or FXO.
    pub kind: PortKind,
    /// The chip as identified (`Si3215 rev 2`), once started.
    pub chip: Option<String>,
    /// Hook state (FXS: the phone's; FXO: the port's own).
    pub hook: HookState,
    /// Ringing now (FXS: the port rings the phone; FXO: the line rings).
    pub ringing: bool,
    /// A call is in progress.
    pub in_call: bool,
    /// Loop current in mA (approximate, from the chip's sense register).
    pub loop_current_ma: Option<f32>,
    /// Line voltage in V (FXO: tip-ring, signed; FXS: battery).
    pub line_voltage_v: Option<f32>,
    /// Alarms.
    pub alarms: Alarms,
}

/// The port layer's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortError {
    /// The chip driver failed (bus, pins, initialisation); the text is the driver's error.
    Chip(String),
    /// The port was used before [`AnalogPort::start`] succeeded.
    NotStarted,
    /// The command does not apply to this kind of port.
    Unsupported {
        /// The command.
        command: &'static str,
        /// The port kind.
        kind: PortKind,
    },
    /// The line refused the command in its current state.
    Refused {
        /// The command.
        command: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A caller-ID message could not be built.
    CallerId(CidError),
    /// Configuration of the audio path (tone zone, tone spec, rate).
    Dsp(String),
    /// Invalid port configuration.
    Config(String),
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortError::Chip(e) => write!(f, "chip: {e}"),
            PortError::NotStarted => f.write_str("port not started"),
            PortError::Unsupported { command, kind } => {
                write!(f, "{command} is not possible on an {kind:?} port")
            }
            PortError::Refused { command, reason } => write!(f, "{command} refused: {reason}"),
            PortError::CallerId(e) => write!(f, "caller ID: {e}"),
            PortError::Dsp(e) => write!(f, "audio: {e}"),
            PortError::Config(e) => write!(f, "configuration: {e}"),
        }
    }
}

impl std::error::Error for PortError {}

impl From<CidError> for PortError {
    fn from(e: CidError) -> Self {
        PortError::CallerId(e)
    }
}

/// One analog port behind one object-safe interface (FXS and FXO alike), for the call-leg
/// adapter and the management API.
pub trait AnalogPort: Send {
    /// FXS or FXO.
    fn kind(&self) -> PortKind;
    /// Resets and initialises the chip; the line is idle afterwards.
    ///
    /// # Errors
    /// [`PortError::Chip`] with the driver's reason.
    fn start(&mut self, now: Millis) -> Result<(), PortError>;
    /// Samples the chip and runs the line logic (call at least every 10 ms).
    ///
    /// # Errors
    /// [`PortError::Chip`] when the bus fails; [`PortError::NotStarted`].
    fn poll(&mut self, now: Millis) -> Result<(), PortError>;
    /// Processes one audio frame; returns `true` while the call is connected (then
    /// `from_line` is the call's audio and `to_line` carries `from_call`).
    fn audio(
        &mut self,
        now: Millis,
        from_line: &[i16],
        to_line: &mut [i16],
        from_call: Option<&[i16]>,
    ) -> bool;
    /// Applies a command.
    ///
    /// # Errors
    /// [`PortError::Unsupported`], [`PortError::Refused`], [`PortError::Chip`].
    fn command(&mut self, command: LineCommand, now: Millis) -> Result<(), PortError>;
    /// The next event, in order.
    fn next_event(&mut self) -> Option<LineEvent>;
    /// The port's status.
    fn status(&self) -> PortStatus;
}

fn chip_err<E: fmt::Display>(e: E) -> PortError {
    PortError::Chip(e.to_string())
}
