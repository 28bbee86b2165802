//! An analog port as a line of the call-leg contract ([`flowgate_line::Line`]).
//!
//! [`AnalogLine::spawn`] starts one runner thread per port. The runner owns the port (driver,
//! line logic, audio path) and its line side ([`PortIo`]): it polls the port every 5 ms,
//! moves a 20 ms audio frame every 20 ms, applies the leg operations the handle sends it,
//! and turns the port's neutral [`LineEvent`]s into the line's one ordered [`LegEvent`]
//! stream. Blocking SPI and PCM work stays off the async runtime; the handle's futures only
//! wait for the runner's reply.
//!
//! The mapping (the sans-IO part, [`Legs`], tested without threads):
//!
//! | port | leg contract |
//! |---|---|
//! | FXS `Dialled { route }` | `Incoming { caller: the port's extension, callee: the digits }`, the phone hears ringback until the flow answers |
//! | FXS `place` | `Ring { caller ID from the placement }` → `Progress(Ringing)`; the phone's off-hook → `Answered` + `AudioReady` |
//! | FXO `Incoming { caller }` | `Incoming { caller: the caller ID, callee: the line's number }`; `answer` (or auto-answer after N rings) → `Answered` + `AudioReady` |
//! | FXO `place` | `Dial(number)` → `Progress(Trying)` → `Answered` (dialled, or battery reversal) + `AudioReady` |
//! | pulse digits during a call | `Dtmf { Signalled }` (DTMF in the audio is the media layer's) |
//! | FXS `Flash { held }` (hook flash in an answered call) | `Held` / `Retrieved`: the phone put the call on hold (it hears recall dial tone, the call hears silence) or took it back |
//! | FXS `Consult { route }` (digits dialled while held) | a second leg: `Incoming { caller: the extension, callee: the digits }`; the held leg stays, its audio gets silence |
//! | FXS `Transfer` (on-hook with a consultation call) | `TransferRequested { leg: held, to: consultation }`, then both legs `Ended(Transferred)`: the runtime joins their far ends |
//! | FXS `ConsultEnded` | `Ended` of the consultation leg (a flash back, or its far end left) |
//! | `Ended { reason }` | `Ended { cause }` (local hang-ups keep the cause asked for) |

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use chrono::{Datelike, Timelike};
use flowgate_analog::Millis;
use flowgate_analog::cid::{Absence, CallerId, DateTime};
use flowgate_analog::line::{Digits, Disconnect, EndReason, LineEvent, Route, Tone};
use flowgate_analog::port::{
    AnalogPort, FRAME, HookState, LineCommand, PortError, PortKind, PortStatus,
};
use flowgate_dsp::{DtmfConfig, DtmfDetector, DtmfEvent};
use flowgate_line::{
    Availability, Capabilities, Cause, DtmfSource, EndCause, LegAudio, LegError, LegEvent,
    LegFuture, LegId, Line, LineEventSender, LineEvents, Party, Placement, Progress,
    TransferTarget, Transport, line_events,
};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::side::{CALL_QUEUE, CallAudio, CallAudioEnd, PortIo};

/// How often the runner polls the port (the line logic wants at least every 10 ms).
const POLL_MS: Millis = 5;
/// One audio frame.
const FRAME_MS: Millis = 20;
/// A port that failed to start is tried again this often.
const RESTART_MS: Millis = 10_000;
/// The key guard lets the call's audio through once no key has sounded for this many frames
/// (the detector decides a tone within ~45 ms)…
const KEY_GUARD_QUIET_FRAMES: u32 = 4;
/// …or after this many frames whatever the phone does (a key held this long is a digit).
const KEY_GUARD_MAX_FRAMES: u32 = 100;

/// What the gateway's configuration says about a port besides its chip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalogLineConfig {
    /// The port id (`fxs0`): the line's id.
    pub id: String,
    /// FXS: the port's extension (the caller of the phone's calls, and how others reach
    /// it). FXO: the exchange line's own number, if known (the callee of its incoming
    /// calls); may be empty.
    pub own_number: String,
}

/// The port's state as the management API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalogLineStatus {
    /// `fxs` or `fxo`.
    pub kind: &'static str,
    /// The chip as identified, once started.
    pub chip: Option<String>,
    /// `on_hook` or `off_hook` (FXS: the phone's; FXO: the port's own).
    pub hook: &'static str,
    /// FXS: the port rings the phone; FXO: the exchange rings the line.
    pub ringing: bool,
    /// A call is in progress on the port.
    pub in_call: bool,
    /// Loop current, mA.
    pub loop_current_ma: Option<f32>,
    /// Line voltage, V (FXO: tip-ring, signed; FXS: battery).
    pub line_voltage_v: Option<f32>,
    /// Alarms.
    pub alarms: AlarmsView,
    /// The leg on the port, if any.
    pub leg: Option<LegId>,
    /// Why the port does not work (failed to start, bus error), if it does not.
    pub fault: Option<String>,
}

/// Alarms of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AlarmsView {
    /// FXS: power alarms since start.
    pub power: u32,
    /// FXS: thermal alarms since start.
    pub thermal: u32,
    /// FXS: the line is left open after too many power alarms.
    pub line_open: bool,
    /// FXO: no battery on the line.
    pub no_battery: bool,
}

impl AnalogLineStatus {
    fn new(kind: PortKind) -> Self {
        Self {
            kind: kind_name(kind),
            chip: None,
            hook: "on_hook",
            ringing: false,
            in_call: false,
            loop_current_ma: None,
            line_voltage_v: None,
            alarms: AlarmsView {
                power: 0,
                thermal: 0,
                line_open: false,
                no_battery: false,
            },
            leg: None,
            fault: Some("starting".into()),
        }
    }

    fn update(&mut self, s: &PortStatus, leg: Option<LegId>, fault: Option<String>) -> bool {
        // Readings are rounded so that sensor noise is not a change worth an event.
        let round = |v: Option<f32>| v.map(f32::round);
        let next = Self {
            kind: kind_name(s.kind),
            chip: s.chip.clone(),
            hook: match s.hook {
                HookState::OnHook => "on_hook",
                HookState::OffHook => "off_hook",
            },
            ringing: s.ringing,
            in_call: s.in_call,
            loop_current_ma: round(s.loop_current_ma),
            line_voltage_v: round(s.line_voltage_v),
            alarms: AlarmsView {
                power: s.alarms.power,
                thermal: s.alarms.thermal,
                line_open: s.alarms.line_open,
                no_battery: s.alarms.no_battery,
            },
            leg,
            fault,
        };
        if next == *self {
            false
        } else {
            *self = next;
            true
        }
    }
}

fn kind_name(kind: PortKind) -> &'static str {
    match kind {
        PortKind::Fxs => "fxs",
        PortKind::Fxo => "fxo",
    }
}

/// A leg operation for the runner.
enum Op {
    Place(LegId, Placement),
    Answer(LegId),
    Hangup(LegId, Cause),
    SendDtmf(LegId, String),
    Audio(LegId, CallAudioEnd),
}

struct Request {
    op: Op,
    reply: oneshot::Sender<Result<(), LegError>>,
}

/// An analog port as a line. Cheap to share (`Arc`).
pub struct AnalogLine {
    config: AnalogLineConfig,
    kind: PortKind,
    requests: mpsc::Sender<Request>,
    status: watch::Receiver<AnalogLineStatus>,
    events: Mutex<Option<LineEvents>>,
}

impl AnalogLine {
    /// Starts the port's runner thread (it starts the port) and returns the line. The
    /// runner stops when `cancel` fires or the line is dropped.
    ///
    /// # Errors
    /// The thread could not be started.
    pub fn spawn(
        config: AnalogLineConfig,
        port: Box<dyn AnalogPort>,
        side: Box<dyn PortIo>,
        cancel: CancellationToken,
    ) -> std::io::Result<Arc<Self>> {
        let kind = port.kind();
        let (tx, rx) = line_events();
        let (requests, inbox) = mpsc::channel();
        let (status_tx, status) = watch::channel(AnalogLineStatus::new(kind));
        let runner = Runner {
            legs: Legs::new(config.clone(), kind),
            port,
            side,
            inbox,
            events: tx,
            status: status_tx,
            cancel,
            fault: Some("starting".into()),
            audio: Vec::new(),
            from_call: std::collections::VecDeque::new(),
            key_guard: None,
        };
        std::thread::Builder::new()
            .name(format!("analog {}", config.id))
            .spawn(move || runner.run())?;
        Ok(Arc::new(Self {
            config,
            kind,
            requests,
            status,
            events: Mutex::new(Some(rx)),
        }))
    }

    /// The port's state now.
    pub fn status(&self) -> AnalogLineStatus {
        self.status.borrow().clone()
    }

    /// A watch on the port's state (changes on every hook, ring, call or alarm change).
    pub fn watch_status(&self) -> watch::Receiver<AnalogLineStatus> {
        self.status.clone()
    }

    /// FXS or FXO.
    pub fn kind(&self) -> PortKind {
        self.kind
    }

    fn request(&self, op: Op) -> LegFuture<'_, ()> {
        let (reply, answer) = oneshot::channel();
        let sent = self.requests.send(Request { op, reply });
        Box::pin(async move {
            if sent.is_err() {
                return Err(self.stopped());
            }
            answer.await.unwrap_or_else(|_| Err(self.stopped()))
        })
    }

    fn stopped(&self) -> LegError {
        LegError::Unavailable {
            line: self.config.id.clone(),
            reason: "the port's runner stopped".into(),
        }
    }
}

impl Line for AnalogLine {
    fn id(&self) -> &str {
        &self.config.id
    }

    fn transport(&self) -> Transport {
        match self.kind {
            PortKind::Fxs => Transport::Fxs,
            PortKind::Fxo => Transport::Fxo,
        }
    }

    fn capabilities(&self) -> Capabilities {
        // Digits go in-band on both kinds (an FXO port dials them into the call itself);
        // no network hold or transfer on a plain line.
        Capabilities::default()
    }

    fn availability(&self) -> Availability {
        let s = self.status.borrow();
        if let Some(fault) = &s.fault {
            return Availability::Down {
                reason: fault.clone(),
            };
        }
        if s.alarms.line_open {
            return Availability::Down {
                reason: "the line is open after repeated power alarms".into(),
            };
        }
        if s.alarms.no_battery {
            return Availability::Down {
                reason: "no battery on the exchange line".into(),
            };
        }
        if s.in_call || s.ringing || s.hook == "off_hook" || s.leg.is_some() {
            return Availability::Busy;
        }
        Availability::Ready
    }

    fn own_party(&self) -> Party {
        Party::number(self.config.own_number.clone())
    }

    fn take_events(&self) -> Option<LineEvents> {
        self.events.lock().take()
    }

    fn place(&self, leg: LegId, placement: Placement) -> LegFuture<'_, ()> {
        self.request(Op::Place(leg, placement))
    }

    fn answer(&self, leg: LegId) -> LegFuture<'_, ()> {
        self.request(Op::Answer(leg))
    }

    fn hangup(&self, leg: LegId, cause: Cause) -> LegFuture<'_, ()> {
        self.request(Op::Hangup(leg, cause))
    }

    fn send_dtmf(&self, leg: LegId, digits: &str) -> LegFuture<'_, ()> {
        self.request(Op::SendDtmf(leg, digits.to_owned()))
    }

    fn hold(&self, _leg: LegId) -> LegFuture<'_, ()> {
        Box::pin(async move { Err(self.unsupported("hold a call")) })
    }

    fn retrieve(&self, _leg: LegId) -> LegFuture<'_, ()> {
        Box::pin(async move { Err(self.unsupported("retrieve a call")) })
    }

    fn transfer(&self, _leg: LegId, _to: TransferTarget) -> LegFuture<'_, ()> {
        Box::pin(async move { Err(self.unsupported("transfer a call")) })
    }

    fn audio(&self, leg: LegId) -> LegAudio {
        let (port, end) = CallAudio::pair(format!("{} call audio", self.config.id));
        let (reply, _) = oneshot::channel();
        // The runner attaches the frames if the leg is still its call; otherwise the port
        // reads as closed at once and the media session ends.
        match self.requests.send(Request {
            op: Op::Audio(leg, end),
            reply,
        }) {
            Ok(()) => LegAudio::Port(Box::new(port)),
            Err(_) => LegAudio::Unavailable("the port's runner stopped".into()),
        }
    }
}

impl AnalogLine {
    fn unsupported(&self, what: &'static str) -> LegError {
        LegError::Unsupported {
            line: self.config.id.clone(),
            what,
        }
    }
}

/// The call on a port, as legs see it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    leg: LegId,
    outgoing: bool,
    answered: bool,
    /// The phone holds the call (FXS hook flash).
    held: bool,
    local_cause: Option<Cause>,
}

impl Call {
    /// A new call on leg `leg`, not answered yet.
    fn new(leg: LegId, outgoing: bool) -> Self {
        Self {
            leg,
            outgoing,
            answered: false,
            held: false,
            local_cause: None,
        }
    }
}

/// The sans-IO half of the adapter: leg operations → port commands, port events → leg
/// events. One call per port at a time.
#[derive(Debug)]
pub(crate) struct Legs {
    config: AnalogLineConfig,
    kind: PortKind,
    call: Option<Call>,
    /// FXS: the consultation call the phone dialled while `call` is held.
    consult: Option<Call>,
}

/// What a leg operation asks of the port, and what to tell the stream once it succeeded.
#[derive(Debug, PartialEq)]
pub(crate) struct Plan {
    command: Option<LineCommand>,
    after: Vec<LegEvent>,
}

impl Legs {
    pub(crate) fn new(config: AnalogLineConfig, kind: PortKind) -> Self {
        Self {
            config,
            kind,
            call: None,
            consult: None,
        }
    }

    fn leg(&self) -> Option<LegId> {
        self.call.as_ref().map(|c| c.leg)
    }

    fn line(&self) -> String {
        self.config.id.clone()
    }

    fn call_mut(&mut self, leg: LegId) -> Result<&mut Call, LegError> {
        let line = self.line();
        match (&mut self.call, &mut self.consult) {
            (Some(c), _) | (_, Some(c)) if c.leg == leg => Ok(c),
            _ => Err(LegError::NoSuchLeg { line, leg }),
        }
    }

    fn is_consult(&self, leg: LegId) -> bool {
        self.consult.as_ref().is_some_and(|c| c.leg == leg)
    }

    /// The leg the phone talks to now: the consultation call if there is one.
    pub(crate) fn active(&self) -> Option<LegId> {
        self.consult.as_ref().or(self.call.as_ref()).map(|c| c.leg)
    }

    /// The held leg, if the phone holds one.
    pub(crate) fn held_leg(&self) -> Option<LegId> {
        self.call.as_ref().filter(|c| c.held).map(|c| c.leg)
    }

    /// Plans a placement. `idle` says whether the port can take a call now.
    pub(crate) fn place(
        &mut self,
        leg: LegId,
        p: &Placement,
        idle: bool,
        now: chrono::DateTime<chrono::Local>,
    ) -> Result<Plan, LegError> {
        if self.call.is_some() || !idle {
            return Err(LegError::Unavailable {
                line: self.line(),
                reason: "the port is in use".into(),
            });
        }
        let (command, progress) = match self.kind {
            PortKind::Fxs => (
                LineCommand::Ring {
                    caller: Some(caller_id(&p.from, now)),
                },
                Progress::Ringing,
            ),
            PortKind::Fxo => (LineCommand::Dial(dialable(&p.to.number)?), Progress::Trying),
        };
        self.call = Some(Call::new(leg, true));
        Ok(Plan {
            command: Some(command),
            after: vec![LegEvent::Progress { leg, progress }],
        })
    }

    /// A placement the port refused: forget the leg.
    pub(crate) fn place_failed(&mut self, leg: LegId) {
        if self.leg() == Some(leg) {
            self.call = None;
        }
    }

    pub(crate) fn answer(&mut self, leg: LegId) -> Result<Plan, LegError> {
        let call = self.call_mut(leg)?;
        if call.outgoing {
            return Err(LegError::Invalid(
                "an outgoing analog leg is answered by the far end".into(),
            ));
        }
        if call.answered {
            return Ok(Plan {
                command: None,
                after: Vec::new(),
            });
        }
        call.answered = true;
        Ok(Plan {
            command: Some(LineCommand::Answer),
            after: vec![LegEvent::Answered { leg }, LegEvent::AudioReady { leg }],
        })
    }

    /// `None`: the leg is over already (hang-ups race with the far end).
    pub(crate) fn hangup(&mut self, leg: LegId, cause: Cause) -> Option<LineCommand> {
        let consult = self.is_consult(leg);
        let call = self.call_mut(leg).ok()?;
        call.local_cause.get_or_insert(cause);
        // A phone still off-hook hears busy after a normal end and reorder after a failure.
        let tone = match cause {
            Cause::Normal | Cause::Busy | Cause::NoAnswer | Cause::Rejected | Cause::Cancelled => {
                Tone::Busy
            }
            _ => Tone::Congestion,
        };
        Some(if consult {
            LineCommand::HangupConsult { tone }
        } else {
            LineCommand::Hangup { tone }
        })
    }

    pub(crate) fn send_dtmf(&mut self, leg: LegId, digits: &str) -> Result<LineCommand, LegError> {
        let kind = self.kind;
        let line = self.line();
        let call = self.call_mut(leg)?;
        if !call.answered {
            return Err(LegError::Invalid("digits need an answered call".into()));
        }
        match kind {
            PortKind::Fxo => Ok(LineCommand::SendDtmf(dialable(digits)?)),
            PortKind::Fxs => Err(LegError::Unsupported {
                line,
                what: "signal digits to an analog phone (they go in-band)",
            }),
        }
    }

    /// Whether audio for `leg` may be attached now.
    pub(crate) fn audio_for(&self, leg: LegId) -> bool {
        self.call.as_ref().is_some_and(|c| c.leg == leg) || self.is_consult(leg)
    }

    /// The phone's call to `route` as an incoming leg (the runtime routes it like any call
    /// into the gateway); the phone hears ringback until the flow answers, as from a network.
    fn dialled_by_phone(&self, leg: LegId, route: &Route) -> (Vec<LegEvent>, Option<LineCommand>) {
        let callee = match route {
            Route::Extension(d) | Route::Outside(d) | Route::Number(d) => d.to_string(),
            Route::Hotline => String::new(),
        };
        let caller = Party {
            number: self.config.own_number.clone(),
            display_name: self.config.id.clone(),
            uri: String::new(),
        };
        (
            vec![LegEvent::Incoming {
                leg,
                caller,
                callee: Party::number(callee),
            }],
            Some(LineCommand::Ringback),
        )
    }

    /// Maps a port event; returns the leg events and a command to apply at once (FXS:
    /// ringback to a phone whose call was just announced).
    pub(crate) fn on_event(&mut self, e: LineEvent) -> (Vec<LegEvent>, Option<LineCommand>) {
        match e {
            LineEvent::Dialled { route, digits } if self.call.is_none() => {
                let leg = Uuid::now_v7();
                self.call = Some(Call::new(leg, false));
                debug!(port = %self.config.id, %digits, "phone dialled");
                self.dialled_by_phone(leg, &route)
            }
            LineEvent::Incoming { caller, .. } if self.call.is_none() => {
                let leg = Uuid::now_v7();
                self.call = Some(Call::new(leg, false));
                (
                    vec![LegEvent::Incoming {
                        leg,
                        caller: caller_party(caller.as_ref()),
                        callee: Party::number(self.config.own_number.clone()),
                    }],
                    None,
                )
            }
            LineEvent::Answered => {
                let Some(call) = self.consult.as_mut().or(self.call.as_mut()) else {
                    return (Vec::new(), None);
                };
                if call.answered {
                    return (Vec::new(), None);
                }
                call.answered = true;
                let leg = call.leg;
                (
                    vec![LegEvent::Answered { leg }, LegEvent::AudioReady { leg }],
                    None,
                )
            }
            LineEvent::Digit { digit, .. } => match self.active() {
                Some(leg) => (
                    vec![LegEvent::Dtmf {
                        leg,
                        digit,
                        source: DtmfSource::Signalled,
                    }],
                    None,
                ),
                None => (Vec::new(), None),
            },
            // The phone's user put the call on hold with a hook flash, or took it back: the
            // runtime marks the call held (`hold` in its record and events).
            LineEvent::Flash { held } => match &mut self.call {
                Some(call) if call.answered => {
                    call.held = held;
                    let leg = call.leg;
                    let e = if held {
                        LegEvent::Held { leg }
                    } else {
                        LegEvent::Retrieved { leg }
                    };
                    (vec![e], None)
                }
                _ => (Vec::new(), None),
            },
            // Digits dialled while the call is held: a second leg, as a fresh call would be.
            LineEvent::Consult { route, digits } if self.call.is_some() => {
                let leg = Uuid::now_v7();
                self.consult = Some(Call::new(leg, false));
                debug!(port = %self.config.id, %digits, "phone dialled a consultation call");
                self.dialled_by_phone(leg, &route)
            }
            LineEvent::Transfer { .. } => match (&self.call, &self.consult) {
                (Some(held), Some(consult)) => (
                    vec![LegEvent::TransferRequested {
                        leg: held.leg,
                        to: TransferTarget::Leg(consult.leg),
                    }],
                    None,
                ),
                _ => (Vec::new(), None),
            },
            LineEvent::ConsultEnded { reason, answered } => match self.consult.take() {
                Some(call) => (
                    vec![LegEvent::Ended {
                        leg: call.leg,
                        cause: end_cause(reason, answered, call.local_cause),
                    }],
                    None,
                ),
                None => (Vec::new(), None),
            },
            LineEvent::Ended { reason, answered } => match self.call.take() {
                Some(call) => {
                    // The held party left during a consultation: that call is the phone's
                    // call now.
                    if let Some(mut c) = self.consult.take() {
                        c.held = false;
                        self.call = Some(c);
                    }
                    (
                        vec![LegEvent::Ended {
                            leg: call.leg,
                            cause: end_cause(reason, answered, call.local_cause),
                        }],
                        None,
                    )
                }
                None => (Vec::new(), None),
            },
            // Off-hook, rings after the first, permanent signal, dialling progress:
            // no leg event (an FXO `Proceeding` was announced as Trying at placement).
            _ => (Vec::new(), None),
        }
    }

    /// The port stopped working: the call is over.
    pub(crate) fn fault(&mut self, why: &str) -> Vec<LegEvent> {
        self.consult
            .take()
            .into_iter()
            .chain(self.call.take())
            .map(|c| LegEvent::Ended {
                leg: c.leg,
                cause: EndCause::new(Cause::LineReset, format!("analog port failed: {why}")),
            })
            .collect()
    }
}

/// The neutral cause of a port's call end.
fn end_cause(reason: EndReason, answered: bool, local: Option<Cause>) -> EndCause {
    let (cause, detail) = match reason {
        EndReason::Local => (local.unwrap_or(Cause::Normal), "local hang-up".to_owned()),
        EndReason::PhoneOnHook => (Cause::Normal, "the phone went on-hook".to_owned()),
        EndReason::FarEnd(d) => {
            let what = match d {
                Disconnect::LoopCurrent => "loop current dropped",
                Disconnect::BatteryReversal => "battery reversal",
                Disconnect::BatteryLoss => "battery lost",
                Disconnect::BusyTone => "busy tone",
                Disconnect::CongestionTone => "congestion tone",
                Disconnect::Silence => "silence timeout",
            };
            // Busy tone before an answer is the callee's busy; after, the far end left.
            let cause = match d {
                Disconnect::BusyTone if !answered => Cause::Busy,
                Disconnect::CongestionTone if !answered => Cause::Congestion,
                Disconnect::BatteryLoss => Cause::NetworkFailure,
                _ => Cause::Normal,
            };
            (cause, format!("far end: {what}"))
        }
        EndReason::RingingStopped => (Cause::Cancelled, "the caller gave up".to_owned()),
        EndReason::NoRoute => (Cause::Unreachable, "no route for the digits".to_owned()),
        EndReason::LineFault => (Cause::LineReset, "line fault".to_owned()),
        EndReason::Transferred => (
            Cause::Transferred,
            "the phone transferred the call".to_owned(),
        ),
    };
    EndCause::new(cause, detail)
}

/// The caller ID an FXS phone shows for `from`.
fn caller_id(from: &Party, now: chrono::DateTime<chrono::Local>) -> CallerId {
    let name = Some(from.display_name.as_str()).filter(|n| !n.is_empty());
    let cid = if from.number.is_empty() && name.is_none() {
        CallerId::absent(Absence::Private)
    } else {
        let mut c = CallerId::new(&from.number, name);
        if from.number.is_empty() {
            c.number = None;
            c.number_absent = Some(Absence::Private);
        }
        c
    };
    let month = u8::try_from(now.month()).unwrap_or(1);
    let day = u8::try_from(now.day()).unwrap_or(1);
    let hour = u8::try_from(now.hour()).unwrap_or(0);
    let minute = u8::try_from(now.minute()).unwrap_or(0);
    match DateTime::new(month, day, hour, minute) {
        Some(dt) => cid.at(dt),
        None => cid,
    }
}

/// The party a received caller ID names (number empty when withheld or absent).
fn caller_party(cid: Option<&CallerId>) -> Party {
    let Some(cid) = cid else {
        return Party::default();
    };
    Party {
        number: cid.number.as_deref().unwrap_or_default().to_owned(),
        display_name: cid.name.as_deref().unwrap_or_default().to_owned(),
        uri: String::new(),
    }
}

/// Digits an analog line can dial: `0-9`, `*`, `#` (spaces, dashes, dots and brackets are
/// formatting and dropped).
fn dialable(number: &str) -> Result<Digits, LegError> {
    let mut out = Digits::new();
    for c in number.chars() {
        match c {
            '0'..='9' | '*' | '#' => out.push(c).map_err(|_| {
                LegError::Invalid(format!("{number:?} is too long to dial on an analog line"))
            })?,
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => {
                return Err(LegError::Invalid(format!(
                    "{number:?}: an analog line dials digits, * and # only"
                )));
            }
        }
    }
    if out.is_empty() {
        return Err(LegError::Invalid(
            "an analog line dials numbers: the destination has none".into(),
        ));
    }
    Ok(out)
}

fn port_error(line: &str, e: &PortError) -> LegError {
    match e {
        PortError::Refused { .. } => LegError::Unavailable {
            line: line.to_owned(),
            reason: e.to_string(),
        },
        PortError::Unsupported { .. } => LegError::Invalid(e.to_string()),
        _ => LegError::Failed {
            line: line.to_owned(),
            reason: e.to_string(),
            cause: None,
        },
    }
}

/// The runner thread's state.
struct Runner {
    legs: Legs,
    port: Box<dyn AnalogPort>,
    side: Box<dyn PortIo>,
    inbox: mpsc::Receiver<Request>,
    events: LineEventSender,
    status: watch::Sender<AnalogLineStatus>,
    cancel: CancellationToken,
    fault: Option<String>,
    /// The call side of each leg whose audio is open: the held leg and the consultation
    /// leg both have one during a consultation.
    audio: Vec<(LegId, CallAudioEnd)>,
    from_call: std::collections::VecDeque<Vec<i16>>,
    key_guard: Option<KeyGuard>,
}

/// The key that completed an FXS number is still sounding when the call is announced (the
/// dial plan routes on the key's start): its tone must not reach the call, where the flow
/// would take it for a digit. The call's audio from the phone stays silent until no key
/// sounds.
struct KeyGuard {
    detector: DtmfDetector,
    held: bool,
    frames: u32,
}

impl KeyGuard {
    fn new() -> Option<Self> {
        let detector = DtmfDetector::new(DtmfConfig::new(8000)).ok()?;
        Some(Self {
            detector,
            held: false,
            frames: 0,
        })
    }

    /// Listens to one frame from the phone; returns whether the guard may end.
    fn quiet_after(&mut self, frame: &[i16]) -> bool {
        let held = &mut self.held;
        self.detector.process_with(frame, |e| match e {
            DtmfEvent::Start { .. } => *held = true,
            DtmfEvent::End { .. } => *held = false,
        });
        self.frames += 1;
        (!self.held && self.frames >= KEY_GUARD_QUIET_FRAMES) || self.frames >= KEY_GUARD_MAX_FRAMES
    }
}

impl Runner {
    fn run(mut self) {
        let id = self.legs.config.id.clone();
        info!(port = %id, side = %self.side.describe(), "analog port runner started");
        let mut to_line = vec![0i16; FRAME];
        let mut from_line = vec![0i16; FRAME];
        let mut last_start: Option<Millis> = None;
        let mut next_frame: Millis = 0;
        let mut next_poll: Millis = 0;
        loop {
            if self.cancel.is_cancelled() {
                break;
            }
            let now = self.side.now();
            if self.fault.is_some() && last_start.is_none_or(|t| now >= t + RESTART_MS) {
                last_start = Some(now);
                self.start(now);
                next_frame = now;
                next_poll = now;
            }
            if self.fault.is_none() {
                if now >= next_poll {
                    next_poll = now + POLL_MS;
                    if let Err(e) = self.port.poll(now) {
                        self.failed(&e);
                        continue;
                    }
                }
                if now >= next_frame {
                    // A runner that fell far behind (a stalled machine) skips, real time.
                    next_frame = if now > next_frame + 5 * FRAME_MS {
                        now + FRAME_MS
                    } else {
                        next_frame + FRAME_MS
                    };
                    self.side.exchange(&to_line, &mut from_line);
                    self.frame(now, &from_line, &mut to_line);
                }
                self.drain_events(now);
            }
            self.publish();
            let wait = Duration::from_millis(next_poll.saturating_sub(self.side.now()).max(1));
            match self.inbox.recv_timeout(wait) {
                Ok(req) => {
                    let now = self.side.now();
                    self.handle(req, now);
                    while let Ok(req) = self.inbox.try_recv() {
                        self.handle(req, now);
                    }
                    if self.fault.is_none() {
                        self.drain_events(now);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        for e in self.legs.fault("the gateway stopped") {
            let _ = self.events.send(e);
        }
        info!(port = %id, "analog port runner stopped");
    }

    fn start(&mut self, now: Millis) {
        match self.port.start(now) {
            Ok(()) => {
                info!(port = %self.legs.config.id, chip = ?self.port.status().chip, "analog port started");
                self.fault = None;
            }
            Err(e) => {
                warn!(port = %self.legs.config.id, cause = %e, "analog port did not start; retrying in 10 s");
                self.fault = Some(e.to_string());
            }
        }
    }

    fn failed(&mut self, e: &PortError) {
        warn!(port = %self.legs.config.id, cause = %e, "analog port failed; restarting it");
        for ev in self.legs.fault(&e.to_string()) {
            let _ = self.events.send(ev);
        }
        self.audio.clear();
        self.fault = Some(e.to_string());
    }

    fn frame(&mut self, now: Millis, from_line: &[i16], to_line: &mut [i16]) {
        let active = self.legs.active();
        let held = self.legs.held_leg();
        for (leg, end) in &self.audio {
            while let Ok(f) = end.from_call.try_recv() {
                // Only the leg the phone talks to reaches it; a held party is not heard.
                if Some(*leg) != active || held == active {
                    continue;
                }
                self.from_call.push_back(f);
                // Drift: the call side runs on its own clock; keep the newest frames.
                while self.from_call.len() > CALL_QUEUE {
                    self.from_call.pop_front();
                }
            }
        }
        let from_call = self.from_call.pop_front();
        let connected = self
            .port
            .audio(now, from_line, to_line, from_call.as_deref());
        let towards_call = if connected {
            match &mut self.key_guard {
                Some(guard) => {
                    if guard.quiet_after(from_line) {
                        self.key_guard = None;
                    }
                    Some(vec![0; from_line.len()])
                }
                None => Some(from_line.to_vec()),
            }
        } else {
            None
        };
        // The leg in conversation gets the phone; a held leg gets silence at the frame rate
        // (its media keeps time; the far end hears nothing).
        self.audio.retain(|(leg, end)| {
            let frame = if Some(*leg) == held {
                Some(vec![0; from_line.len()])
            } else if Some(*leg) == active {
                towards_call.clone()
            } else {
                None
            };
            frame.is_none_or(|f| end.to_call.send(f).is_ok())
        });
    }

    fn drain_events(&mut self, now: Millis) {
        while let Some(e) = self.port.next_event() {
            debug!(port = %self.legs.config.id, event = ?e, "port event");
            let ended = matches!(e, LineEvent::Ended { .. } | LineEvent::ConsultEnded { .. });
            if matches!(e, LineEvent::Dialled { .. } | LineEvent::Consult { .. }) {
                self.key_guard = KeyGuard::new();
            }
            let (leg_events, command) = self.legs.on_event(e);
            for ev in leg_events {
                let _ = self.events.send(ev);
            }
            if let Some(c) = command
                && let Err(e) = self.port.command(c, now)
            {
                debug!(port = %self.legs.config.id, cause = %e, "follow-up command refused");
            }
            if ended {
                let legs = &self.legs;
                self.audio.retain(|(leg, _)| legs.audio_for(*leg));
                self.from_call.clear();
                self.key_guard = None;
            }
        }
    }

    fn handle(&mut self, req: Request, now: Millis) {
        let line = self.legs.config.id.clone();
        if let Some(fault) = &self.fault {
            let result = match req.op {
                Op::Hangup(..) => Ok(()),
                Op::Audio(..) => Ok(()),
                _ => Err(LegError::Unavailable {
                    line,
                    reason: fault.clone(),
                }),
            };
            let _ = req.reply.send(result);
            return;
        }
        let result = match req.op {
            Op::Place(leg, placement) => {
                let status = self.port.status();
                let idle = !status.in_call && !status.ringing && status.hook == HookState::OnHook;
                match self.legs.place(leg, &placement, idle, chrono::Local::now()) {
                    Ok(plan) => self.apply(plan, now).inspect_err(|_| {
                        self.legs.place_failed(leg);
                    }),
                    Err(e) => Err(e),
                }
            }
            Op::Answer(leg) => match self.legs.answer(leg) {
                Ok(plan) => self.apply(plan, now),
                Err(e) => Err(e),
            },
            Op::Hangup(leg, cause) => match self.legs.hangup(leg, cause) {
                Some(c) => match self.port.command(c, now) {
                    Ok(()) => Ok(()),
                    // The line logic has no call any more: its `Ended` is on its way.
                    Err(PortError::Refused { .. }) => Ok(()),
                    Err(e) => Err(port_error(&line, &e)),
                },
                None => Ok(()),
            },
            Op::SendDtmf(leg, digits) => match self.legs.send_dtmf(leg, &digits) {
                Ok(c) => self.port.command(c, now).map_err(|e| port_error(&line, &e)),
                Err(e) => Err(e),
            },
            Op::Audio(leg, end) => {
                if self.legs.audio_for(leg) {
                    self.from_call.clear();
                    self.audio.retain(|(l, _)| *l != leg);
                    self.audio.push((leg, end));
                }
                Ok(())
            }
        };
        let _ = req.reply.send(result);
    }

    fn apply(&mut self, plan: Plan, now: Millis) -> Result<(), LegError> {
        if let Some(c) = plan.command {
            self.port
                .command(c, now)
                .map_err(|e| port_error(&self.legs.config.id, &e))?;
        }
        for ev in plan.after {
            let _ = self.events.send(ev);
        }
        Ok(())
    }

    fn publish(&mut self) {
        let port = self.port.status();
        let leg = self.legs.leg();
        let fault = self.fault.clone();
        self.status
            .send_if_modified(|s| s.update(&port, leg, fault));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowgate_analog::line::DigitSource;

    fn legs(kind: PortKind, own: &str) -> Legs {
        Legs::new(
            AnalogLineConfig {
                id: "p0".into(),
                own_number: own.into(),
            },
            kind,
        )
    }

    fn digits(s: &str) -> Digits {
        Digits::try_from(s).expect("short")
    }

    fn now() -> chrono::DateTime<chrono::Local> {
        chrono::Local::now()
    }

    #[test]
    fn a_phone_dialling_an_extension_is_an_incoming_call_from_its_extension() {
        let mut l = legs(PortKind::Fxs, "200");
        assert_eq!(l.on_event(LineEvent::OffHook), (vec![], None));
        let (events, command) = l.on_event(LineEvent::Dialled {
            route: Route::Extension(digits("300")),
            digits: digits("300"),
        });
        let [
            LegEvent::Incoming {
                leg,
                caller,
                callee,
            },
        ] = events.as_slice()
        else {
            panic!("{events:?}");
        };
        assert_eq!(
            (caller.number.as_str(), callee.number.as_str()),
            ("200", "300")
        );
        assert_eq!(command, Some(LineCommand::Ringback));
        let plan = l.answer(*leg).expect("answer");
        assert_eq!(plan.command, Some(LineCommand::Answer));
        assert_eq!(
            plan.after,
            [
                LegEvent::Answered { leg: *leg },
                LegEvent::AudioReady { leg: *leg }
            ]
        );
        // A pulse digit during the call is signalled; the on-hook ends the leg.
        let (d, _) = l.on_event(LineEvent::Digit {
            digit: '5',
            source: DigitSource::Pulse,
        });
        assert!(matches!(d[0], LegEvent::Dtmf { digit: '5', .. }));
        // A hook flash holds the call, the next one takes it back.
        assert_eq!(
            l.on_event(LineEvent::Flash { held: true }),
            (vec![LegEvent::Held { leg: *leg }], None)
        );
        assert_eq!(l.held_leg(), Some(*leg));
        assert_eq!(
            l.on_event(LineEvent::Flash { held: false }),
            (vec![LegEvent::Retrieved { leg: *leg }], None)
        );
        assert_eq!(l.held_leg(), None);
        let (end, _) = l.on_event(LineEvent::Ended {
            reason: EndReason::PhoneOnHook,
            answered: true,
        });
        assert!(matches!(&end[0], LegEvent::Ended { cause, .. } if cause.cause == Cause::Normal));
        assert!(l.answer(*leg).is_err());
    }

    /// An answered call from the network to the phone, held by a flash, and the
    /// consultation leg the phone then dialled.
    fn consulting(l: &mut Legs) -> (LegId, LegId) {
        let held = Uuid::now_v7();
        l.place(
            held,
            &Placement {
                to: Party::number("200"),
                from: Party::number("555"),
            },
            true,
            now(),
        )
        .expect("place");
        l.on_event(LineEvent::Answered);
        l.on_event(LineEvent::Flash { held: true });
        let (events, command) = l.on_event(LineEvent::Consult {
            route: Route::Extension(digits("301")),
            digits: digits("301"),
        });
        let [LegEvent::Incoming { leg, callee, .. }] = events.as_slice() else {
            panic!("{events:?}");
        };
        assert_eq!(callee.number, "301");
        assert_eq!(command, Some(LineCommand::Ringback));
        assert_eq!((l.active(), l.held_leg()), (Some(*leg), Some(held)));
        (held, *leg)
    }

    #[test]
    fn hanging_up_in_a_consultation_asks_to_join_the_two_far_ends() {
        let mut l = legs(PortKind::Fxs, "200");
        let (held, consult) = consulting(&mut l);
        l.answer(consult).expect("answer");
        // The gateway ending the consultation leg ends only it.
        assert_eq!(
            l.hangup(consult, Cause::Busy),
            Some(LineCommand::HangupConsult { tone: Tone::Busy })
        );
        let (t, _) = l.on_event(LineEvent::Transfer { answered: true });
        assert_eq!(
            t,
            [LegEvent::TransferRequested {
                leg: held,
                to: TransferTarget::Leg(consult)
            }]
        );
        let (c, _) = l.on_event(LineEvent::ConsultEnded {
            reason: EndReason::Transferred,
            answered: true,
        });
        let (h, _) = l.on_event(LineEvent::Ended {
            reason: EndReason::Transferred,
            answered: true,
        });
        for (e, leg) in [(c, consult), (h, held)] {
            assert!(
                matches!(&e[..], [LegEvent::Ended { leg: l, cause }] if *l == leg && cause.cause == Cause::Transferred),
                "{e:?}"
            );
        }
        assert!(!l.audio_for(held) && !l.audio_for(consult));
    }

    #[test]
    fn the_held_party_leaving_makes_the_consultation_the_phones_call() {
        let mut l = legs(PortKind::Fxs, "200");
        let (held, consult) = consulting(&mut l);
        assert_eq!(
            l.hangup(held, Cause::Normal),
            Some(LineCommand::Hangup { tone: Tone::Busy })
        );
        let (e, _) = l.on_event(LineEvent::Ended {
            reason: EndReason::Local,
            answered: true,
        });
        assert!(matches!(&e[..], [LegEvent::Ended { leg, .. }] if *leg == held));
        assert_eq!((l.active(), l.held_leg()), (Some(consult), None));
        assert_eq!(
            l.hangup(consult, Cause::Normal),
            Some(LineCommand::Hangup { tone: Tone::Busy })
        );
    }

    #[test]
    fn placing_on_fxs_rings_with_caller_id_and_a_busy_port_refuses() {
        let mut l = legs(PortKind::Fxs, "200");
        let leg = Uuid::now_v7();
        let p = Placement {
            to: Party::number("200"),
            from: Party {
                number: "+15551234".into(),
                display_name: "ALICE".into(),
                uri: String::new(),
            },
        };
        assert!(matches!(
            l.place(leg, &p, false, now()),
            Err(LegError::Unavailable { .. })
        ));
        let plan = l.place(leg, &p, true, now()).expect("idle");
        let Some(LineCommand::Ring { caller: Some(cid) }) = &plan.command else {
            panic!("{plan:?}");
        };
        assert_eq!(cid.number.as_deref(), Some("+15551234"));
        assert_eq!(cid.name.as_deref(), Some("ALICE"));
        assert!(cid.datetime.is_some());
        assert!(l.place(Uuid::now_v7(), &p, true, now()).is_err());
        let (ev, _) = l.on_event(LineEvent::Answered);
        assert_eq!(ev.len(), 2);
        // Our own hang-up keeps the cause we asked for.
        assert_eq!(
            l.hangup(leg, Cause::NoAnswer),
            Some(LineCommand::Hangup { tone: Tone::Busy })
        );
        let (end, _) = l.on_event(LineEvent::Ended {
            reason: EndReason::Local,
            answered: true,
        });
        assert!(matches!(&end[0], LegEvent::Ended { cause, .. } if cause.cause == Cause::NoAnswer));
        assert_eq!(l.hangup(leg, Cause::Normal), None);
    }

    #[test]
    fn an_exchange_call_carries_its_caller_id_and_a_busy_far_end_is_busy() {
        let mut l = legs(PortKind::Fxo, "");
        let (ev, _) = l.on_event(LineEvent::Incoming {
            caller: Some(CallerId::new("5551234567", Some("JOHN SMITH"))),
            rings: 2,
        });
        let [LegEvent::Incoming { caller, .. }] = ev.as_slice() else {
            panic!("{ev:?}");
        };
        assert_eq!(caller.number, "5551234567");
        assert_eq!(caller.display_name, "JOHN SMITH");
        l.on_event(LineEvent::Ended {
            reason: EndReason::RingingStopped,
            answered: false,
        });
        let leg = Uuid::now_v7();
        let p = Placement {
            to: Party::number("+1 555"),
            from: Party::default(),
        };
        assert!(matches!(
            l.place(leg, &p, true, now()),
            Err(LegError::Invalid(_))
        ));
        let p = Placement {
            to: Party::number("555-0100"),
            from: Party::default(),
        };
        let plan = l.place(leg, &p, true, now()).expect("dial");
        assert_eq!(plan.command, Some(LineCommand::Dial(digits("5550100"))));
        let (end, _) = l.on_event(LineEvent::Ended {
            reason: EndReason::FarEnd(Disconnect::BusyTone),
            answered: false,
        });
        assert!(matches!(&end[0], LegEvent::Ended { cause, .. } if cause.cause == Cause::Busy));
    }

    #[test]
    fn withheld_callers_show_as_private() {
        let cid = caller_id(&Party::default(), now());
        assert_eq!(cid.number_absent, Some(Absence::Private));
        assert_eq!(caller_party(None), Party::default());
    }
}
