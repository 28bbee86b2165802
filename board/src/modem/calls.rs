//! The call tracker: every call-related URC and `AT+CLCC` snapshot in, call events out.
//!
//! Sans-IO (`now` is an input). Modems report calls in different dialects — `RING`/`+CLIP`,
//! Quectel ccinfo, `^DSCI`, SIMCom unsolicited `+CLCC`, Huawei `^ORIG/^CONF/^CONN/^CEND`,
//! `NO CARRIER`/`BUSY`/`NO ANSWER` — and any of them can be missing or late, so the tracker
//! treats URCs as hints and `AT+CLCC` as the truth: a call missing from a snapshot has ended.
//! Each call gets a driver-unique [`CallId`]; the modem's index is only used for matching.

use std::time::Duration;

use tokio::time::Instant;

use super::at::types::{CallInfo, CallStat, Direction};
use super::at::urc::Urc;
use super::events::{CallEndCause, CallEndReason, CallId, CallSummary, ModemEvent};

/// What the driver must do after feeding the tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallAction {
    /// Publish this event.
    Emit(ModemEvent),
    /// Poll `AT+CLCC` soon (the URC was ambiguous).
    PollClcc,
    /// The call became active: route its audio (unless done early).
    Connected(CallId),
    /// The call ended: undo per-call audio routing.
    Ended(CallId),
}

#[derive(Debug, Clone)]
struct Tracked {
    id: CallId,
    index: Option<u8>,
    direction: Direction,
    state: CallStat,
    number: Option<String>,
    announced: bool,
    connected: bool,
    local_hangup: bool,
    end_hint: Option<CallEndCause>,
    created: Instant,
    /// Seen with an index in a CLCC snapshot or a state URC.
    confirmed: bool,
}

/// Tracks the calls of one modem.
#[derive(Debug)]
pub struct CallTracker {
    calls: Vec<Tracked>,
    next_id: u64,
    grace: Duration,
}

impl CallTracker {
    /// A tracker. Calls never confirmed by the modem (created from `RING` or our `ATD`) are
    /// ended by a `CLCC` snapshot only after `grace`, because some modems list a call a moment
    /// after announcing it.
    pub fn new(grace: Duration) -> Self {
        Self {
            calls: Vec::new(),
            next_id: 1,
            grace,
        }
    }

    /// True while any call exists.
    pub fn has_calls(&self) -> bool {
        !self.calls.is_empty()
    }

    /// The calls, for status.
    pub fn summaries(&self) -> Vec<CallSummary> {
        self.calls
            .iter()
            .map(|c| CallSummary {
                call: c.id,
                direction: c.direction,
                state: c.state,
                number: c.number.clone(),
            })
            .collect()
    }

    /// The modem's index of a call, when known.
    pub fn index_of(&self, id: CallId) -> Option<u8> {
        self.find_id(id).and_then(|c| c.index)
    }

    /// The state of a call, if it exists.
    pub fn state_of(&self, id: CallId) -> Option<CallStat> {
        self.find_id(id).map(|c| c.state)
    }

    /// Number of calls.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// True when no call exists.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// The one active call, if exactly one is active (DTMF belongs to it).
    pub fn active_call(&self) -> Option<CallId> {
        let mut it = self.calls.iter().filter(|c| c.state == CallStat::Active);
        match (it.next(), it.next()) {
            (Some(c), None) => Some(c.id),
            _ => None,
        }
    }

    fn find_id(&self, id: CallId) -> Option<&Tracked> {
        self.calls.iter().find(|c| c.id == id)
    }

    fn pos_id(&self, id: CallId) -> Option<usize> {
        self.calls.iter().position(|c| c.id == id)
    }

    fn new_call(&mut self, direction: Direction, state: CallStat, now: Instant) -> usize {
        let id = CallId(self.next_id);
        self.next_id = self.next_id.saturating_add(1);
        self.calls.push(Tracked {
            id,
            index: None,
            direction,
            state,
            number: None,
            announced: false,
            connected: false,
            local_hangup: false,
            end_hint: None,
            created: now,
            confirmed: false,
        });
        self.calls.len() - 1
    }

    /// We are dialling `number`: a new outgoing call in state dialing.
    pub fn dial_started(&mut self, number: &str, now: Instant) -> (CallId, Vec<CallAction>) {
        let i = self.new_call(Direction::Outgoing, CallStat::Dialing, now);
        let mut out = Vec::new();
        if let Some(c) = self.calls.get_mut(i) {
            c.number = Some(number.to_owned());
            c.announced = true;
            out.push(state_event(c));
            return (c.id, out);
        }
        (CallId(0), out)
    }

    /// `ATD` failed or returned a call-progress result: the call is over.
    pub fn dial_failed(&mut self, id: CallId, cause: CallEndCause) -> Vec<CallAction> {
        self.end(id, Some(cause))
    }

    /// `ATA` succeeded.
    pub fn answered(&mut self, id: CallId) -> Vec<CallAction> {
        match self.pos_id(id) {
            Some(i) => self.set_state(i, CallStat::Active),
            None => Vec::new(),
        }
    }

    /// We are hanging the call up: its end is ours, whatever the modem reports next.
    pub fn hangup_requested(&mut self, id: CallId) {
        if let Some(i) = self.pos_id(id)
            && let Some(c) = self.calls.get_mut(i)
        {
            c.local_hangup = true;
        }
    }

    /// The hang-up command succeeded: the call is over.
    pub fn hangup_done(&mut self, id: CallId) -> Vec<CallAction> {
        self.end(id, None)
    }

    /// The modem rebooted or vanished: every call is gone.
    pub fn end_all(&mut self, source: &str) -> Vec<CallAction> {
        let ids: Vec<CallId> = self.calls.iter().map(|c| c.id).collect();
        ids.into_iter()
            .flat_map(|id| {
                self.end(
                    id,
                    Some(CallEndCause::new(CallEndReason::ModemReset, source)),
                )
            })
            .collect()
    }

    /// Feeds a URC.
    pub fn on_urc(&mut self, urc: &Urc, now: Instant) -> Vec<CallAction> {
        match urc {
            Urc::Ring | Urc::CRing { .. } => {
                if !self
                    .calls
                    .iter()
                    .any(|c| matches!(c.state, CallStat::Incoming | CallStat::Waiting))
                {
                    self.new_call(Direction::Incoming, CallStat::Incoming, now);
                }
                vec![CallAction::PollClcc]
            }
            Urc::Clip { number, .. } => {
                let i = match self.calls.iter().position(|c| {
                    matches!(c.state, CallStat::Incoming | CallStat::Waiting) && c.number.is_none()
                }) {
                    Some(i) => i,
                    None if self
                        .calls
                        .iter()
                        .any(|c| matches!(c.state, CallStat::Incoming | CallStat::Waiting)) =>
                    {
                        return Vec::new(); // repeated +CLIP with the next RING
                    }
                    None => self.new_call(Direction::Incoming, CallStat::Incoming, now),
                };
                let mut out = Vec::new();
                if let Some(c) = self.calls.get_mut(i) {
                    c.number = number.clone();
                    if !c.announced {
                        c.announced = true;
                        out.push(CallAction::Emit(ModemEvent::IncomingCall {
                            call: c.id,
                            number: c.number.clone(),
                        }));
                    }
                }
                out
            }
            Urc::Clcc(info) => self.apply_info(info, "+CLCC", now),
            Urc::Ccinfo(info) => self.apply_info(info, "ccinfo", now),
            Urc::Dsci(info) => self.apply_info(info, "^DSCI", now),
            Urc::Orig { index, .. } => {
                self.apply_index_state(*index, Direction::Outgoing, CallStat::Dialing, now)
            }
            Urc::Conf { index } => {
                self.apply_index_state(*index, Direction::Outgoing, CallStat::Alerting, now)
            }
            Urc::Conn { index, .. } => {
                let dir = self
                    .by_index(*index)
                    .map_or(Direction::Outgoing, |c| c.direction);
                self.apply_index_state(*index, dir, CallStat::Active, now)
            }
            Urc::Cend {
                index, cc_cause, ..
            } => {
                let Some(i) = self
                    .calls
                    .iter()
                    .position(|c| c.index == Some(*index))
                    .or_else(|| self.single())
                else {
                    return Vec::new();
                };
                let id = self.calls.get(i).map_or(CallId(0), |c| c.id);
                let cause = cc_cause.map(|cc| CallEndCause::from_cc(cc, "^CEND"));
                self.end(id, cause)
            }
            Urc::NoCarrier => self.progress_end(None, "NO CARRIER"),
            Urc::Busy => self.progress_end(Some(CallEndReason::Busy), "BUSY"),
            Urc::NoAnswer => self.progress_end(Some(CallEndReason::NoAnswer), "NO ANSWER"),
            Urc::VoiceCallEnd { .. } => self.progress_end(None, "VOICE CALL: END"),
            Urc::VoiceCallBegin => vec![CallAction::PollClcc],
            Urc::MissedCall { .. } => {
                let ids: Vec<CallId> = self
                    .calls
                    .iter()
                    .filter(|c| matches!(c.state, CallStat::Incoming | CallStat::Waiting))
                    .map(|c| c.id)
                    .collect();
                ids.into_iter()
                    .flat_map(|id| {
                        self.end(
                            id,
                            Some(CallEndCause::new(CallEndReason::Missed, "MISSED_CALL")),
                        )
                    })
                    .collect()
            }
            Urc::Dtmf { digit, source, .. } => vec![CallAction::Emit(ModemEvent::Dtmf {
                call: self.active_call(),
                digit: *digit,
                source: *source,
            })],
            _ => Vec::new(),
        }
    }

    /// Feeds an `AT+CLCC` snapshot (voice calls only are kept).
    pub fn on_clcc(&mut self, snapshot: &[CallInfo], now: Instant) -> Vec<CallAction> {
        let mut out = Vec::new();
        let voice: Vec<&CallInfo> = snapshot
            .iter()
            .filter(|c| c.mode == 0 || c.mode == 9)
            .collect();
        for info in &voice {
            out.extend(self.apply_info(info, "CLCC", now));
        }
        let gone: Vec<CallId> = self
            .calls
            .iter()
            .filter(|c| match c.index {
                Some(ix) => !voice.iter().any(|v| v.index == ix),
                None => now.saturating_duration_since(c.created) >= self.grace,
            })
            .map(|c| c.id)
            .collect();
        for id in gone {
            out.extend(self.end(id, None));
        }
        out
    }

    fn by_index(&self, index: u8) -> Option<&Tracked> {
        self.calls.iter().find(|c| c.index == Some(index))
    }

    /// The only call, when exactly one exists.
    fn single(&self) -> Option<usize> {
        (self.calls.len() == 1).then_some(0)
    }

    fn apply_index_state(
        &mut self,
        index: u8,
        direction: Direction,
        state: CallStat,
        now: Instant,
    ) -> Vec<CallAction> {
        let info = CallInfo {
            index,
            direction,
            state,
            mode: 0,
            multiparty: false,
            number: self.by_index(index).and_then(|c| c.number.clone()),
            toa: None,
        };
        self.apply_info(&info, "^ORIG/^CONF/^CONN", now)
    }

    fn apply_info(&mut self, info: &CallInfo, source: &str, now: Instant) -> Vec<CallAction> {
        let pos = self
            .calls
            .iter()
            .position(|c| c.index == Some(info.index))
            .or_else(|| {
                // An unindexed call of the same direction (from RING, +CLIP or our ATD).
                self.calls
                    .iter()
                    .position(|c| c.index.is_none() && c.direction == info.direction)
            });
        if info.state == CallStat::Released {
            let Some(c) = pos.and_then(|i| self.calls.get(i)) else {
                return Vec::new();
            };
            let id = c.id;
            let cause = c
                .end_hint
                .clone()
                .unwrap_or_else(|| classify_release(Some(c.state), source));
            return self.end(id, Some(cause));
        }
        let i = match pos {
            Some(i) => i,
            None => self.new_call(info.direction, info.state, now),
        };
        let mut out = Vec::new();
        let Some(c) = self.calls.get_mut(i) else {
            return out;
        };
        c.index = Some(info.index);
        c.confirmed = true;
        if c.number.is_none() && info.number.is_some() {
            c.number = info.number.clone();
        }
        if c.direction == Direction::Incoming && !c.announced {
            c.announced = true;
            out.push(CallAction::Emit(ModemEvent::IncomingCall {
                call: c.id,
                number: c.number.clone(),
            }));
            if matches!(info.state, CallStat::Incoming | CallStat::Waiting) {
                c.state = info.state;
                return out;
            }
        }
        out.extend(self.set_state(i, info.state));
        out
    }

    fn set_state(&mut self, i: usize, state: CallStat) -> Vec<CallAction> {
        let mut out = Vec::new();
        let Some(c) = self.calls.get_mut(i) else {
            return out;
        };
        if c.state != state {
            c.state = state;
            out.push(state_event(c));
        }
        if state == CallStat::Active && !c.connected {
            c.connected = true;
            out.push(CallAction::Connected(c.id));
        }
        out
    }

    /// A call-progress URC without a call index: applies to the dialling call for
    /// BUSY/NO ANSWER, otherwise to the only call; with several calls, ask CLCC.
    fn progress_end(&mut self, reason: Option<CallEndReason>, source: &str) -> Vec<CallAction> {
        let target = match reason {
            Some(_) => self
                .calls
                .iter()
                .position(|c| {
                    c.direction == Direction::Outgoing
                        && matches!(c.state, CallStat::Dialing | CallStat::Alerting)
                })
                .or_else(|| self.single()),
            None => self.single(),
        };
        match target
            .and_then(|i| self.calls.get(i))
            .map(|c| (c.id, c.state))
        {
            Some((id, state)) => {
                let cause = match reason {
                    Some(r) => CallEndCause::new(r, source),
                    None => classify_release(Some(state), source),
                };
                let mut out = self.end(id, Some(cause));
                out.push(CallAction::PollClcc);
                out
            }
            None => {
                let cause = reason.map(|r| CallEndCause::new(r, source));
                for c in &mut self.calls {
                    if c.end_hint.is_none() {
                        c.end_hint = cause
                            .clone()
                            .or_else(|| Some(classify_release(Some(c.state), source)));
                    }
                }
                if self.calls.is_empty() {
                    Vec::new()
                } else {
                    vec![CallAction::PollClcc]
                }
            }
        }
    }

    fn end(&mut self, id: CallId, cause: Option<CallEndCause>) -> Vec<CallAction> {
        let Some(i) = self.pos_id(id) else {
            return Vec::new();
        };
        let c = self.calls.remove(i);
        let cause = if c.local_hangup {
            CallEndCause {
                reason: CallEndReason::LocalHangup,
                cc_cause: cause.as_ref().and_then(|x| x.cc_cause),
                source: cause.map_or_else(|| "hangup".to_owned(), |x| x.source),
            }
        } else {
            cause
                .or(c.end_hint)
                .unwrap_or_else(|| classify_release(Some(c.state), "CLCC"))
        };
        vec![
            CallAction::Emit(ModemEvent::CallEnded { call: c.id, cause }),
            CallAction::Ended(c.id),
        ]
    }
}

/// A release without a stated cause, judged by what the call was doing.
fn classify_release(state: Option<CallStat>, source: &str) -> CallEndCause {
    let reason = match state {
        Some(CallStat::Incoming | CallStat::Waiting) => CallEndReason::Missed,
        Some(CallStat::Dialing | CallStat::Alerting) => CallEndReason::Rejected,
        Some(CallStat::Active | CallStat::Held) => CallEndReason::RemoteHangup,
        _ => CallEndReason::Released,
    };
    CallEndCause::new(reason, source)
}

fn state_event(c: &Tracked) -> CallAction {
    CallAction::Emit(ModemEvent::CallState {
        call: c.id,
        state: c.state,
        direction: c.direction,
        number: c.number.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::at::types::DtmfSource;
    use super::*;

    fn events(a: &[CallAction]) -> Vec<&ModemEvent> {
        a.iter()
            .filter_map(|x| {
                if let CallAction::Emit(e) = x {
                    Some(e)
                } else {
                    None
                }
            })
            .collect()
    }

    fn info(index: u8, dir: Direction, state: CallStat, number: &str) -> CallInfo {
        CallInfo {
            index,
            direction: dir,
            state,
            mode: 0,
            multiparty: false,
            number: Some(number.into()),
            toa: Some(145),
        }
    }

    #[test]
    fn quectel_incoming_answer_dtmf_remote_hangup() {
        let now = Instant::now();
        let mut t = CallTracker::new(Duration::from_secs(5));
        let a = t.on_urc(
            &Urc::Ccinfo(info(1, Direction::Incoming, CallStat::Incoming, "+1555")),
            now,
        );
        let ev = events(&a);
        assert!(matches!(ev[0], ModemEvent::IncomingCall { number: Some(n), .. } if n == "+1555"));
        let ModemEvent::IncomingCall { call, .. } = ev[0].clone() else {
            panic!()
        };
        // RING/+CLIP for the same call announce nothing new.
        assert!(events(&t.on_urc(&Urc::Ring, now)).is_empty());
        assert!(
            events(&t.on_urc(
                &Urc::Clip {
                    number: Some("+1555".into()),
                    toa: None,
                    validity: None
                },
                now
            ))
            .is_empty()
        );
        let a = t.answered(call);
        assert!(a.contains(&CallAction::Connected(call)));
        let a = t.on_urc(
            &Urc::Dtmf {
                digit: '5',
                source: DtmfSource::Qtonedet,
                duration_ms: None,
            },
            now,
        );
        assert!(
            matches!(events(&a)[0], ModemEvent::Dtmf { call: Some(c), digit: '5', .. } if *c == call)
        );
        let a = t.on_urc(&Urc::NoCarrier, now);
        assert!(
            matches!(events(&a)[0], ModemEvent::CallEnded { cause, .. } if cause.reason == CallEndReason::RemoteHangup)
        );
        assert!(t.is_empty());
        // The late ccinfo release finds nothing.
        assert!(
            t.on_urc(
                &Urc::Ccinfo(info(1, Direction::Incoming, CallStat::Released, "+1555")),
                now
            )
            .is_empty()
        );
    }

    #[test]
    fn huawei_ring_clip_clcc_and_cend_cause() {
        let now = Instant::now();
        let mut t = CallTracker::new(Duration::from_secs(5));
        assert_eq!(t.on_urc(&Urc::Ring, now), vec![CallAction::PollClcc]);
        let a = t.on_urc(
            &Urc::Clip {
                number: Some("+4912".into()),
                toa: Some(145),
                validity: Some(0),
            },
            now,
        );
        assert!(matches!(events(&a)[0], ModemEvent::IncomingCall { .. }));
        let a = t.on_clcc(
            &[info(1, Direction::Incoming, CallStat::Incoming, "+4912")],
            now,
        );
        assert!(events(&a).is_empty(), "{a:?}");
        assert_eq!(t.len(), 1);
        let a = t.on_urc(
            &Urc::Conn {
                index: 1,
                call_type: 0,
            },
            now,
        );
        assert!(matches!(
            events(&a)[0],
            ModemEvent::CallState {
                state: CallStat::Active,
                ..
            }
        ));
        let a = t.on_urc(
            &Urc::Cend {
                index: 1,
                duration: 5,
                end_status: 29,
                cc_cause: Some(16),
            },
            now,
        );
        assert!(
            matches!(events(&a)[0], ModemEvent::CallEnded { cause, .. } if cause.reason == CallEndReason::RemoteHangup && cause.cc_cause == Some(16))
        );
    }

    #[test]
    fn outgoing_busy_no_answer_and_local_hangup() {
        let now = Instant::now();
        let mut t = CallTracker::new(Duration::from_secs(5));
        let (id, _) = t.dial_started("+1666", now);
        let a = t.on_urc(&Urc::Busy, now);
        assert!(
            matches!(events(&a)[0], ModemEvent::CallEnded { call, cause } if *call == id && cause.reason == CallEndReason::Busy)
        );

        let (id, _) = t.dial_started("+1666", now);
        t.on_urc(
            &Urc::Orig {
                index: 1,
                call_type: 0,
            },
            now,
        );
        assert_eq!(t.index_of(id), Some(1));
        let a = t.on_urc(
            &Urc::Cend {
                index: 1,
                duration: 0,
                end_status: 104,
                cc_cause: Some(19),
            },
            now,
        );
        assert!(
            matches!(events(&a)[0], ModemEvent::CallEnded { cause, .. } if cause.reason == CallEndReason::NoAnswer)
        );

        let (id, _) = t.dial_started("+1666", now);
        let a = t.on_urc(
            &Urc::Ccinfo(info(1, Direction::Outgoing, CallStat::Active, "+1666")),
            now,
        );
        assert!(a.contains(&CallAction::Connected(id)));
        t.hangup_requested(id);
        let a = t.on_urc(&Urc::NoCarrier, now);
        assert!(
            matches!(events(&a)[0], ModemEvent::CallEnded { cause, .. } if cause.reason == CallEndReason::LocalHangup)
        );
    }

    #[test]
    fn clcc_absence_ends_calls_after_grace() {
        let now = Instant::now();
        let mut t = CallTracker::new(Duration::from_secs(5));
        let (id, _) = t.dial_started("+1", now);
        assert!(events(&t.on_clcc(&[], now)).is_empty(), "within grace");
        let a = t.on_clcc(&[], now + Duration::from_secs(6));
        assert!(matches!(events(&a)[0], ModemEvent::CallEnded { call, .. } if *call == id));
        // Indexed calls end at once when missing.
        t.on_urc(
            &Urc::Ccinfo(info(2, Direction::Incoming, CallStat::Incoming, "+2")),
            now,
        );
        let a = t.on_clcc(&[], now);
        assert!(
            matches!(events(&a)[0], ModemEvent::CallEnded { cause, .. } if cause.reason == CallEndReason::Missed)
        );
    }

    #[test]
    fn end_all_on_reboot() {
        let now = Instant::now();
        let mut t = CallTracker::new(Duration::from_secs(5));
        t.dial_started("+1", now);
        t.on_urc(
            &Urc::Ccinfo(info(2, Direction::Incoming, CallStat::Incoming, "+2")),
            now,
        );
        let a = t.end_all("RDY");
        assert_eq!(events(&a).len(), 2);
        assert!(t.is_empty());
    }
}
