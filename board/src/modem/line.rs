//! The modem as a line of the call-leg contract ([`flowgate_line::Line`]).
//!
//! [`ModemLine`] wraps a [`ModemHandle`]: it names the driver's calls with leg ids, turns
//! the driver's broadcast events into one ordered [`LegEvent`] stream, and maps the
//! driver's end reasons and 24.008 causes to neutral [`EndCause`]s. SMS and USSD stay on
//! the [`ModemHandle`]; calls go through the line.
//!
//! Ordering: one task reads the driver's broadcast and is the only sender of the stream.
//! An outgoing leg is named inside [`ModemHandle::dial_as`], before the driver publishes
//! anything about the call, so the task always knows the leg of an event it reads. If the
//! broadcast ever lags (the task fell behind), the task reconciles with the driver's call
//! list: calls that vanished end, calls that appeared are announced.

use std::collections::HashMap;
use std::sync::Arc;

use flowgate_line::{
    Availability, Capabilities, Cause, DtmfSource, EndCause, LegAudio, LegError, LegEvent,
    LegFuture, LegId, Line, LineEventSender, LineEvents, Party, Placement, Progress,
    TransferTarget, Transport, line_events,
};
use parking_lot::Mutex;
use tokio::sync::broadcast;
use tracing::{debug, warn};
use uuid::Uuid;

use super::ModemHandle;
use super::at::types::{CallStat, Direction};
use super::error::ModemError;
use super::events::{CallEndCause, CallEndReason, CallId, ModemEvent, ModemState};

/// A modem as a line. Cheap to share (`Arc`).
pub struct ModemLine {
    modem: ModemHandle,
    legs: Arc<Mutex<Legs>>,
    events: Mutex<Option<LineEvents>>,
}

/// The legs of the modem's calls.
#[derive(Default)]
struct Legs {
    by_call: HashMap<CallId, LegState>,
}

struct LegState {
    leg: LegId,
    answered: bool,
    /// The cause our own hang-up asked for (the driver only knows "local hang-up").
    local_cause: Option<Cause>,
}

impl Legs {
    fn call_of(&self, leg: LegId) -> Option<CallId> {
        self.by_call
            .iter()
            .find(|(_, s)| s.leg == leg)
            .map(|(call, _)| *call)
    }
}

impl ModemLine {
    /// The line of `modem`. Subscribes to the driver's events at once (call this right
    /// after [`super::Modem::spawn`], before any call can ring) and starts the task that
    /// feeds the line's event stream; the task ends with the driver.
    pub fn new(modem: ModemHandle) -> Arc<Self> {
        let (tx, rx) = line_events();
        let legs = Arc::new(Mutex::new(Legs::default()));
        let translator = Translator {
            modem: modem.clone(),
            legs: Arc::clone(&legs),
            tx,
        };
        tokio::spawn(translator.run(modem.subscribe()));
        Arc::new(Self {
            modem,
            legs,
            events: Mutex::new(Some(rx)),
        })
    }

    /// The driver (SMS, USSD, status).
    pub fn modem(&self) -> &ModemHandle {
        &self.modem
    }

    fn call(&self, leg: LegId) -> Result<CallId, LegError> {
        self.legs
            .lock()
            .call_of(leg)
            .ok_or_else(|| LegError::NoSuchLeg {
                line: self.modem.id().to_owned(),
                leg,
            })
    }

    fn error(&self, e: ModemError) -> LegError {
        leg_error(self.modem.id(), e)
    }
}

/// Maps a driver error to the contract's.
fn leg_error(line: &str, e: ModemError) -> LegError {
    let line = line.to_owned();
    match e {
        ModemError::NotReady { state } => LegError::Unavailable {
            line,
            reason: format!("the modem is {state}"),
        },
        ModemError::NotRegistered => LegError::Unavailable {
            line,
            reason: "not registered to a network".into(),
        },
        ModemError::Sim(sim) => LegError::Unavailable {
            line,
            reason: format!("SIM {sim:?}"),
        },
        ModemError::Stopped | ModemError::PortGone { .. } | ModemError::Rebooted { .. } => {
            LegError::Unavailable {
                line,
                reason: e.to_string(),
            }
        }
        ModemError::InvalidArgument(why) => LegError::Invalid(why),
        ModemError::CallEnded { ref cause, .. } => LegError::Failed {
            line,
            reason: e.to_string(),
            cause: Some(end_cause(cause, None)),
        },
        ModemError::Unsupported(_) => LegError::Failed {
            line,
            reason: e.to_string(),
            cause: None,
        },
        other => LegError::Failed {
            line,
            reason: other.to_string(),
            cause: None,
        },
    }
}

impl Line for ModemLine {
    fn id(&self) -> &str {
        self.modem.id()
    }

    fn transport(&self) -> Transport {
        Transport::Modem
    }

    fn capabilities(&self) -> Capabilities {
        let profile = self.modem.profile();
        Capabilities {
            hold: profile.call_hold,
            transfer_to_leg: profile.call_hold,
            transfer_to_party: false,
            dtmf_signalled: true,
            early_media: profile.audio.enable_early,
        }
    }

    fn availability(&self) -> Availability {
        let status = self.modem.status();
        match &status.state {
            ModemState::Ready if !status.is_registered() && status.registration.is_some() => {
                Availability::Unregistered {
                    reason: "not registered to a network".into(),
                }
            }
            ModemState::Ready if !status.calls.is_empty() => Availability::Busy,
            ModemState::Ready => Availability::Ready,
            ModemState::WaitingForSim { sim, .. } => Availability::Unregistered {
                reason: format!("SIM {sim:?}"),
            },
            other => Availability::Down {
                reason: format!("the modem is {}", other.name()),
            },
        }
    }

    fn own_party(&self) -> Party {
        Party::number(self.modem.status().identity.own_number.unwrap_or_default())
    }

    fn take_events(&self) -> Option<LineEvents> {
        self.events.lock().take()
    }

    fn place(&self, leg: LegId, placement: Placement) -> LegFuture<'_, ()> {
        Box::pin(async move {
            let number = placement.to.number.trim();
            if number.is_empty() {
                return Err(LegError::Invalid(
                    "a modem dials numbers: the destination has none".into(),
                ));
            }
            let legs = Arc::clone(&self.legs);
            self.modem
                .dial_as(number, move |call| {
                    legs.lock().by_call.insert(
                        call,
                        LegState {
                            leg,
                            answered: false,
                            local_cause: None,
                        },
                    );
                })
                .await
                .map(|_| ())
                .map_err(|e| {
                    // Named but never dialled: nothing will end it, so forget it here.
                    let mut legs = self.legs.lock();
                    if let Some(call) = legs.call_of(leg)
                        && self.modem.calls().iter().all(|c| c.call != call)
                    {
                        legs.by_call.remove(&call);
                    }
                    self.error(e)
                })
        })
    }

    fn answer(&self, leg: LegId) -> LegFuture<'_, ()> {
        Box::pin(async move {
            let call = self.call(leg)?;
            self.modem.answer(call).await.map_err(|e| self.error(e))
        })
    }

    fn hangup(&self, leg: LegId, cause: Cause) -> LegFuture<'_, ()> {
        Box::pin(async move {
            let call = {
                let mut legs = self.legs.lock();
                let Some(call) = legs.call_of(leg) else {
                    return Ok(()); // already over
                };
                if let Some(state) = legs.by_call.get_mut(&call) {
                    state.local_cause.get_or_insert(cause);
                }
                call
            };
            match self.modem.hangup(call).await {
                Ok(()) | Err(ModemError::NoSuchCall(_)) => Ok(()),
                Err(e) => Err(self.error(e)),
            }
        })
    }

    fn send_dtmf(&self, leg: LegId, digits: &str) -> LegFuture<'_, ()> {
        let digits = digits.to_owned();
        Box::pin(async move {
            let call = self.call(leg)?;
            self.modem
                .send_dtmf(call, &digits)
                .await
                .map_err(|e| self.error(e))
        })
    }

    fn hold(&self, leg: LegId) -> LegFuture<'_, ()> {
        Box::pin(async move {
            let call = self.call(leg)?;
            self.modem.hold(call).await.map_err(|e| self.error(e))
        })
    }

    fn retrieve(&self, leg: LegId) -> LegFuture<'_, ()> {
        Box::pin(async move {
            let call = self.call(leg)?;
            self.modem.retrieve(call).await.map_err(|e| self.error(e))
        })
    }

    fn transfer(&self, leg: LegId, to: TransferTarget) -> LegFuture<'_, ()> {
        Box::pin(async move {
            let TransferTarget::Leg(other) = to else {
                return Err(LegError::Unsupported {
                    line: self.modem.id().to_owned(),
                    what: "transfer a call to an address (only to another of its calls)",
                });
            };
            let (a, b) = (self.call(leg)?, self.call(other)?);
            self.modem.transfer(a, b).await.map_err(|e| self.error(e))
        })
    }

    fn audio(&self, _leg: LegId) -> LegAudio {
        LegAudio::from_transport(self.modem.audio_transport())
    }
}

/// The task that turns driver events into leg events.
struct Translator {
    modem: ModemHandle,
    legs: Arc<Mutex<Legs>>,
    tx: LineEventSender,
}

impl Translator {
    async fn run(self, mut events: broadcast::Receiver<ModemEvent>) {
        loop {
            match events.recv().await {
                Ok(event) => self.on_event(event),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    warn!(
                        modem = self.modem.id(),
                        missed, "modem events lagged; reconciling calls"
                    );
                    self.reconcile();
                }
                Err(broadcast::error::RecvError::Closed) => {
                    // The driver stopped: whatever was up is gone.
                    let ended: Vec<_> = self.legs.lock().by_call.drain().collect();
                    for (_, state) in ended {
                        self.send(LegEvent::Ended {
                            leg: state.leg,
                            cause: EndCause::new(Cause::LineReset, "modem driver stopped"),
                        });
                    }
                    return;
                }
            }
        }
    }

    fn send(&self, event: LegEvent) {
        // The receiver is gone only at shutdown; nothing to do then.
        let _ = self.tx.send(event);
    }

    fn leg_of(&self, call: CallId) -> Option<LegId> {
        self.legs.lock().by_call.get(&call).map(|s| s.leg)
    }

    fn on_event(&self, event: ModemEvent) {
        match event {
            ModemEvent::IncomingCall { call, number } => self.incoming(call, number),
            ModemEvent::CallState { call, state, .. } => {
                let answered_now = {
                    let mut legs = self.legs.lock();
                    let Some(s) = legs.by_call.get_mut(&call) else {
                        return;
                    };
                    let first = state == CallStat::Active && !s.answered;
                    if first {
                        s.answered = true;
                    }
                    (s.leg, first)
                };
                let (leg, first_answer) = answered_now;
                match state {
                    CallStat::Active if first_answer => self.send(LegEvent::Answered { leg }),
                    CallStat::Dialing => self.send(LegEvent::Progress {
                        leg,
                        progress: Progress::Trying,
                    }),
                    CallStat::Alerting => self.send(LegEvent::Progress {
                        leg,
                        progress: Progress::Ringing,
                    }),
                    _ => {}
                }
            }
            ModemEvent::AudioReady { call } => {
                if let Some(leg) = self.leg_of(call) {
                    self.send(LegEvent::AudioReady { leg });
                }
            }
            ModemEvent::CallEnded { call, cause } => {
                let Some(state) = self.legs.lock().by_call.remove(&call) else {
                    return;
                };
                let cause = end_cause(&cause, state.local_cause);
                debug!(modem = self.modem.id(), leg = %state.leg, cause = %cause.cause, "leg ended");
                self.send(LegEvent::Ended {
                    leg: state.leg,
                    cause,
                });
            }
            ModemEvent::Dtmf { call, digit, .. } => {
                // A URC without a call belongs to the only call, when there is one.
                let leg = match call {
                    Some(call) => self.leg_of(call),
                    None => {
                        let legs = self.legs.lock();
                        let mut all = legs.by_call.values();
                        match (all.next(), all.next()) {
                            (Some(only), None) => Some(only.leg),
                            _ => None,
                        }
                    }
                };
                if let Some(leg) = leg {
                    self.send(LegEvent::Dtmf {
                        leg,
                        digit,
                        source: DtmfSource::Signalled,
                    });
                }
            }
            _ => {}
        }
    }

    fn incoming(&self, call: CallId, number: Option<String>) {
        let leg = {
            let mut legs = self.legs.lock();
            if legs.by_call.contains_key(&call) {
                return;
            }
            let leg = Uuid::now_v7();
            legs.by_call.insert(
                call,
                LegState {
                    leg,
                    answered: false,
                    local_cause: None,
                },
            );
            leg
        };
        let own = self.modem.status().identity.own_number.unwrap_or_default();
        self.send(LegEvent::Incoming {
            leg,
            caller: Party::number(number.unwrap_or_default()),
            callee: Party::number(own),
        });
    }

    /// After lost events: end legs whose calls are gone, announce calls nobody knows.
    fn reconcile(&self) {
        let calls = self.modem.calls();
        let gone: Vec<LegState> = {
            let mut legs = self.legs.lock();
            let vanished: Vec<CallId> = legs
                .by_call
                .keys()
                .filter(|id| calls.iter().all(|c| c.call != **id))
                .copied()
                .collect();
            vanished
                .into_iter()
                .filter_map(|id| legs.by_call.remove(&id))
                .collect()
        };
        for state in gone {
            self.send(LegEvent::Ended {
                leg: state.leg,
                cause: EndCause::new(Cause::Normal, "call gone after lost modem events"),
            });
        }
        for c in calls {
            if c.direction == Direction::Incoming && self.leg_of(c.call).is_none() {
                self.incoming(c.call, c.number);
            }
        }
    }
}

/// The neutral cause of a driver call end. `local` is the cause our own hang-up asked for.
fn end_cause(cause: &CallEndCause, local: Option<Cause>) -> EndCause {
    if let Some(local) = local
        && matches!(
            cause.reason,
            CallEndReason::LocalHangup | CallEndReason::Released | CallEndReason::RemoteHangup
        )
    {
        return EndCause::new(local, format!("local hang-up ({})", cause.source));
    }
    if let Some(cc) = cause.cc_cause.and_then(|cc| u8::try_from(cc).ok()) {
        // 24.008 call-control causes use the Q.850 numbering.
        return EndCause::from_q850(cc, format!("{} cc {cc}", cause.source));
    }
    let neutral = match cause.reason {
        CallEndReason::LocalHangup | CallEndReason::RemoteHangup | CallEndReason::Released => {
            Cause::Normal
        }
        CallEndReason::Busy => Cause::Busy,
        CallEndReason::NoAnswer => Cause::NoAnswer,
        CallEndReason::Rejected => Cause::Rejected,
        CallEndReason::Unreachable => Cause::Unreachable,
        CallEndReason::NetworkFailure => Cause::NetworkFailure,
        CallEndReason::Missed => Cause::Cancelled,
        CallEndReason::ModemReset => Cause::LineReset,
        CallEndReason::Transferred => Cause::Transferred,
    };
    EndCause::new(neutral, cause.source.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_ends_map_to_neutral_causes() {
        let busy = CallEndCause::new(CallEndReason::Busy, "BUSY");
        assert_eq!(end_cause(&busy, None).cause, Cause::Busy);
        let cc = CallEndCause::from_cc(17, "^CEND");
        let mapped = end_cause(&cc, None);
        assert_eq!((mapped.cause, mapped.q850), (Cause::Busy, 17));
        let missed = CallEndCause::new(CallEndReason::Missed, "CLCC");
        assert_eq!(end_cause(&missed, None).cause, Cause::Cancelled);
        // Our own hang-up keeps the cause we asked for.
        let ours = CallEndCause::new(CallEndReason::LocalHangup, "OK");
        assert_eq!(end_cause(&ours, Some(Cause::Busy)).cause, Cause::Busy);
        // A transfer is reported as such even if we had asked to hang up.
        let moved = CallEndCause::new(CallEndReason::Transferred, "CHLD=4");
        assert_eq!(
            end_cause(&moved, Some(Cause::Normal)).cause,
            Cause::Transferred
        );
    }

    #[test]
    fn driver_errors_tell_whether_another_line_may_help() {
        assert!(
            leg_error(
                "sim0",
                ModemError::NotReady {
                    state: "recovering".into()
                }
            )
            .fails_over()
        );
        assert!(!leg_error("sim0", ModemError::InvalidArgument("x".into())).fails_over());
    }

    #[test]
    fn a_call_that_ended_under_a_command_ended_the_leg() {
        let e = leg_error(
            "sim0",
            ModemError::CallEnded {
                command: "ATA".into(),
                cause: CallEndCause::new(CallEndReason::Missed, "NO CARRIER"),
            },
        );
        assert!(e.ended_leg(), "{e:?}");
        let LegError::Failed {
            cause: Some(cause), ..
        } = e
        else {
            panic!("{e:?}");
        };
        assert_eq!(
            (cause.cause, cause.detail.as_str()),
            (Cause::Cancelled, "NO CARRIER")
        );
        assert!(!leg_error("sim0", ModemError::InvalidArgument("x".into())).ended_leg());
    }
}
