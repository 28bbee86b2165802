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
    /// `AT+CHLD=4` is pending for this call: its release is the transfer.
    transferring: bool,
    end_hint: Option<CallEndCause>,
    created: Instant,
    /// Missing from the last `AT+CLCC` snapshot (a second miss ends the call).
    absent: bool,
}

/// Tracks the calls of one modem.
#[derive(Debug)]
pub struct CallTracker {
    calls: Vec<Tracked>,
    next_id: u64,
    grace: Duration,
    /// Incremented whenever a call starts, changes state or ends: a `CLCC` snapshot requested
    /// before may still list an ended call, or a held call as active, and must not undo it.
    epoch: u64,
    /// Indexes of calls ended recently whose index no new call has taken yet: a second
    /// report of the same end (`NO CARRIER` and then ccinfo, `OK` to `AT+CHUP` and then
    /// `^CEND`) is swallowed instead of ending the next call.
    recent_ends: Vec<(u8, Instant)>,
    /// The modem sends call-state URCs (ccinfo, `^DSCI`, `+CLCC`, `^CEND`...): call-progress
    /// texts (`BUSY`, `NO CARRIER`) then only explain the end the state URC will report.
    state_urcs: bool,
}

/// How many recent ends are remembered.
const RECENT_ENDS: usize = 8;

impl CallTracker {
    /// A tracker. Calls without a modem index (created from `RING` or our `ATD`) count as
    /// missing from `CLCC` snapshots only after `grace`, because some modems list a call a
    /// moment after announcing it; any call ends at its second consecutive miss.
    pub fn new(grace: Duration) -> Self {
        Self {
            calls: Vec::new(),
            next_id: 1,
            grace,
            epoch: 0,
            recent_ends: Vec::new(),
            state_urcs: false,
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

    /// The current epoch; pass it to [`CallTracker::on_clcc`] with the snapshot requested now.
    pub fn epoch(&self) -> u64 {
        self.epoch
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
        self.epoch = self.epoch.wrapping_add(1);
        self.calls.push(Tracked {
            id,
            index: None,
            direction,
            state,
            number: None,
            announced: false,
            connected: false,
            local_hangup: false,
            transferring: false,
            end_hint: None,
            created: now,
            absent: false,
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

    /// `ATD` or `ATA` failed or returned a call-progress result (read at `at`): the call is
    /// over.
    pub fn command_ended(
        &mut self,
        id: CallId,
        cause: CallEndCause,
        at: Instant,
    ) -> Vec<CallAction> {
        self.end(id, Some(cause), at)
    }

    /// `ATA` succeeded.
    pub fn answered(&mut self, id: CallId) -> Vec<CallAction> {
        self.apply_states(&[(id, CallStat::Active)])
    }

    /// We are hanging the call up: its end is ours, whatever the modem reports next.
    pub fn hangup_requested(&mut self, id: CallId) {
        if let Some(i) = self.pos_id(id)
            && let Some(c) = self.calls.get_mut(i)
        {
            c.local_hangup = true;
        }
    }

    /// The hang-up command succeeded (its `OK` read at `at`): the call is over.
    pub fn hangup_done(&mut self, id: CallId, at: Instant) -> Vec<CallAction> {
        self.end(id, None, at)
    }

    /// What `AT+CHLD=2` (no call ringing) will make of the calls: the active ones held, the
    /// held ones active — a hold, a retrieve or a swap. Taken before the command is sent and
    /// applied with [`CallTracker::apply_states`] after its `OK`, so the modem's own state
    /// URCs for the swap, when processed first, are not swapped back.
    pub fn swap_plan(&self) -> Vec<(CallId, CallStat)> {
        self.calls
            .iter()
            .filter_map(|c| match c.state {
                CallStat::Active => Some((c.id, CallStat::Held)),
                CallStat::Held => Some((c.id, CallStat::Active)),
                _ => None,
            })
            .collect()
    }

    /// Sets the states a successful command gave the calls (see [`CallTracker::swap_plan`]).
    pub fn apply_states(&mut self, plan: &[(CallId, CallStat)]) -> Vec<CallAction> {
        let mut out = Vec::new();
        for (id, state) in plan {
            if let Some(i) = self.pos_id(*id) {
                out.extend(self.set_state(i, *state));
            }
        }
        out
    }

    /// `AT+CHLD=4` is about to join `calls`: whatever reports their release from now on
    /// reports the transfer (the modem's release URCs may be read before the `OK`).
    pub fn transfer_requested(&mut self, calls: [CallId; 2]) {
        for c in self.calls.iter_mut().filter(|c| calls.contains(&c.id)) {
            c.transferring = true;
        }
    }

    /// `AT+CHLD=4` failed: the calls stay, and a later release is an ordinary one.
    pub fn transfer_failed(&mut self, calls: [CallId; 2]) {
        for c in self.calls.iter_mut().filter(|c| calls.contains(&c.id)) {
            c.transferring = false;
        }
    }

    /// `AT+CHLD=4` succeeded (its `OK` read at `at`): both calls left the modem, joined to
    /// each other.
    pub fn transferred(&mut self, calls: [CallId; 2], at: Instant) -> Vec<CallAction> {
        calls
            .into_iter()
            .flat_map(|id| self.end(id, None, at))
            .collect()
    }

    /// The modem rebooted or vanished (noticed at `at`): every call is gone.
    pub fn end_all(&mut self, source: &str, at: Instant) -> Vec<CallAction> {
        let ids: Vec<CallId> = self.calls.iter().map(|c| c.id).collect();
        ids.into_iter()
            .flat_map(|id| {
                self.end(
                    id,
                    Some(CallEndCause::new(CallEndReason::ModemReset, source)),
                    at,
                )
            })
            .collect()
    }

    /// Feeds a URC received at `now`. URCs that end a call only apply to calls that existed
    /// when they were received: a late `^CEND` or ccinfo release of the previous call must
    /// not end the call just dialled.
    pub fn on_urc(&mut self, urc: &Urc, now: Instant) -> Vec<CallAction> {
        if matches!(
            urc,
            Urc::Clcc(_)
                | Urc::Ccinfo(_)
                | Urc::Dsci(_)
                | Urc::Orig { .. }
                | Urc::Conf { .. }
                | Urc::Conn { .. }
                | Urc::Cend { .. }
        ) {
            self.state_urcs = true;
        }
        match urc {
            // RING/+CLIP create a call only when there is none: with a call in progress a
            // second caller is reported as waiting (+CCWA, CLCC), and a RING read before our
            // ATA but processed after it must not look like a new call.
            Urc::Ring | Urc::CRing { .. } => {
                if self.calls.is_empty() {
                    self.new_call(Direction::Incoming, CallStat::Incoming, now);
                }
                vec![CallAction::PollClcc]
            }
            Urc::Clip { number, .. } => {
                let i = match self.calls.iter().position(|c| {
                    matches!(c.state, CallStat::Incoming | CallStat::Waiting) && c.number.is_none()
                }) {
                    Some(i) => i,
                    None if !self.calls.is_empty() => {
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
                // ^CONN also reports answered incoming calls: take the direction of the call
                // it must be (indexed, or the one not yet indexed that existed when it was
                // read: a call dialled since is not the one it reports).
                let mut unindexed = self
                    .calls
                    .iter()
                    .filter(|c| c.index.is_none() && c.created <= now);
                let lone = match (unindexed.next(), unindexed.next()) {
                    (Some(c), None) => Some(c.direction),
                    _ => None,
                };
                let dir = self
                    .by_index(*index)
                    .map(|c| c.direction)
                    .or(lone)
                    .unwrap_or(Direction::Outgoing);
                self.apply_index_state(*index, dir, CallStat::Active, now)
            }
            Urc::Cend {
                index, cc_cause, ..
            } => {
                let by_index = self
                    .calls
                    .iter()
                    .position(|c| c.index == Some(*index) && c.created <= now);
                if by_index.is_none() && self.recent_ends.iter().any(|(i, _)| i == index) {
                    return Vec::new();
                }
                // Without an index match only a ringing call not yet listed can be meant (our
                // own dialled calls always get their index from ^ORIG first).
                let Some(i) = by_index.or_else(|| {
                    self.single_before(now).filter(|i| {
                        self.calls.get(*i).is_some_and(|c| {
                            c.index.is_none() && c.direction == Direction::Incoming
                        })
                    })
                }) else {
                    return Vec::new();
                };
                let Some((id, state)) = self.calls.get(i).map(|c| (c.id, c.state)) else {
                    return Vec::new();
                };
                let mut cause = cc_cause.map(|cc| CallEndCause::from_cc(cc, "^CEND"));
                if let Some(c) = cause.as_mut()
                    && c.reason == CallEndReason::RemoteHangup
                    && matches!(state, CallStat::Incoming | CallStat::Waiting)
                {
                    c.reason = CallEndReason::Missed;
                }
                self.end(id, cause, now)
            }
            Urc::NoCarrier => self.progress_end(None, "NO CARRIER", now),
            Urc::Busy => self.progress_end(Some(CallEndReason::Busy), "BUSY", now),
            Urc::NoAnswer => self.progress_end(Some(CallEndReason::NoAnswer), "NO ANSWER", now),
            Urc::VoiceCallEnd { .. } => self.progress_end(None, "VOICE CALL: END", now),
            Urc::VoiceCallBegin => vec![CallAction::PollClcc],
            Urc::MissedCall { .. } => {
                let ids: Vec<CallId> = self
                    .calls
                    .iter()
                    .filter(|c| {
                        matches!(c.state, CallStat::Incoming | CallStat::Waiting)
                            && c.created <= now
                    })
                    .map(|c| c.id)
                    .collect();
                ids.into_iter()
                    .flat_map(|id| {
                        self.end(
                            id,
                            Some(CallEndCause::new(CallEndReason::Missed, "MISSED_CALL")),
                            now,
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

    /// Feeds an `AT+CLCC` snapshot (voice calls only are kept) requested at `epoch`. A stale
    /// snapshot (a call started, changed state or ended since it was requested, e.g. by our
    /// own `ATA` or `AT+CHLD=2` whose reply overtook it) is dropped: the poller asks again
    /// while calls exist.
    pub fn on_clcc(&mut self, snapshot: &[CallInfo], epoch: u64, now: Instant) -> Vec<CallAction> {
        let mut out = Vec::new();
        if epoch != self.epoch {
            return out;
        }
        let voice: Vec<&CallInfo> = snapshot
            .iter()
            .filter(|c| c.mode == 0 || c.mode == 9)
            .collect();
        for info in &voice {
            out.extend(self.apply_info(info, "CLCC", now));
        }
        // A call missing from one snapshot usually has a cause URC on its way (the modem
        // updates its call list before it prints BUSY or ^CEND): end it at the second miss,
        // unless its end is already explained.
        let mut gone = Vec::new();
        for c in &mut self.calls {
            let missing = match c.index {
                Some(ix) => !voice.iter().any(|v| v.index == ix),
                None => now.saturating_duration_since(c.created) >= self.grace,
            };
            if !missing {
                c.absent = false;
            } else if c.absent || c.end_hint.is_some() || c.local_hangup {
                gone.push(c.id);
            } else {
                c.absent = true;
            }
        }
        for id in gone {
            out.extend(self.end(id, None, now));
        }
        out
    }

    fn by_index(&self, index: u8) -> Option<&Tracked> {
        self.calls.iter().find(|c| c.index == Some(index))
    }

    /// The only call, when exactly one exists and it existed at `at`.
    fn single_before(&self, at: Instant) -> Option<usize> {
        match self.calls.as_slice() {
            [c] if c.created <= at => Some(0),
            _ => None,
        }
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
        // A report about the index of a call that ended, while no new call has it: a second
        // report of that end, or a state read before the end was (e.g. before the `OK` of
        // our hang-up or transfer) — not a new call.
        if !self.calls.iter().any(|c| c.index == Some(info.index))
            && let Some((_, ended)) = self.recent_ends.iter().find(|(i, _)| *i == info.index)
            && (info.state == CallStat::Released || now < *ended)
        {
            return Vec::new();
        }
        let pos = self
            .calls
            .iter()
            .position(|c| c.index == Some(info.index))
            .or_else(|| {
                // An unindexed call of the same direction (from RING, +CLIP or our ATD) that
                // existed when the report was read.
                self.calls.iter().position(|c| {
                    c.index.is_none() && c.direction == info.direction && c.created <= now
                })
            });
        if info.state == CallStat::Released {
            let Some(c) = pos
                .and_then(|i| self.calls.get(i))
                .filter(|c| c.created <= now)
            else {
                return Vec::new();
            };
            let id = c.id;
            let cause = c
                .end_hint
                .clone()
                .unwrap_or_else(|| classify_release(Some(c.state), source));
            return self.end(id, Some(cause), now);
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
        self.recent_ends.retain(|(i, _)| *i != info.index);
        c.absent = false;
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
            self.epoch = self.epoch.wrapping_add(1);
        }
        if state == CallStat::Active && !c.connected {
            c.connected = true;
            out.push(CallAction::Connected(c.id));
        }
        out
    }

    /// A call-progress URC without a call index: applies to the dialling call for
    /// BUSY/NO ANSWER, otherwise to the only call; with several calls, ask CLCC.
    fn progress_end(
        &mut self,
        reason: Option<CallEndReason>,
        source: &str,
        at: Instant,
    ) -> Vec<CallAction> {
        let target = match reason {
            Some(_) => self
                .calls
                .iter()
                .position(|c| {
                    c.direction == Direction::Outgoing
                        && matches!(c.state, CallStat::Dialing | CallStat::Alerting)
                        && c.created <= at
                })
                .or_else(|| self.single_before(at)),
            None => self.single_before(at),
        };
        match target
            .and_then(|i| self.calls.get(i))
            .map(|c| (c.id, c.state))
        {
            // The state URC that follows will end the call; this text only says why.
            Some((_, state)) if self.state_urcs => {
                if let Some(c) = target.and_then(|i| self.calls.get_mut(i)) {
                    c.end_hint = Some(match reason {
                        Some(r) => CallEndCause::new(r, source),
                        None => classify_release(Some(state), source),
                    });
                }
                vec![CallAction::PollClcc]
            }
            Some((id, state)) => {
                let cause = match reason {
                    Some(r) => CallEndCause::new(r, source),
                    None => classify_release(Some(state), source),
                };
                let mut out = self.end(id, Some(cause), at);
                out.push(CallAction::PollClcc);
                out
            }
            None => {
                let cause = reason.map(|r| CallEndCause::new(r, source));
                for c in self.calls.iter_mut().filter(|c| c.created <= at) {
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

    /// Ends a call; `at` is when what ended it was read.
    fn end(&mut self, id: CallId, cause: Option<CallEndCause>, at: Instant) -> Vec<CallAction> {
        let Some(i) = self.pos_id(id) else {
            return Vec::new();
        };
        let c = self.calls.remove(i);
        self.epoch = self.epoch.wrapping_add(1);
        if let Some(ix) = c.index {
            self.recent_ends.retain(|(i, _)| *i != ix);
            if self.recent_ends.len() >= RECENT_ENDS {
                self.recent_ends.remove(0);
            }
            self.recent_ends.push((ix, at));
        }
        let cause = if c.local_hangup {
            CallEndCause {
                reason: CallEndReason::LocalHangup,
                cc_cause: cause.as_ref().and_then(|x| x.cc_cause),
                source: cause.map_or_else(|| "hangup".to_owned(), |x| x.source),
            }
        } else if c.transferring {
            CallEndCause::new(CallEndReason::Transferred, "AT+CHLD=4")
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

    fn ended(a: &[CallAction]) -> Option<(CallId, CallEndCause)> {
        events(a).into_iter().find_map(|e| match e {
            ModemEvent::CallEnded { call, cause } => Some((*call, cause.clone())),
            _ => None,
        })
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

    fn tracker() -> CallTracker {
        CallTracker::new(Duration::from_secs(5))
    }

    #[test]
    fn quectel_incoming_answer_dtmf_remote_hangup() {
        let now = Instant::now();
        let mut t = tracker();
        let a = t.on_urc(
            &Urc::Ccinfo(info(1, Direction::Incoming, CallStat::Incoming, "+1555")),
            now,
        );
        let Some(ModemEvent::IncomingCall { call, number }) = events(&a).first().copied().cloned()
        else {
            panic!("{a:?}")
        };
        assert_eq!(number.as_deref(), Some("+1555"));
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
        // A RING read before ATA but processed after it is no new call.
        assert!(events(&t.on_urc(&Urc::Ring, now)).is_empty());
        assert_eq!(t.len(), 1);
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
        // NO CARRIER explains the end; the ccinfo release reports it.
        assert_eq!(t.on_urc(&Urc::NoCarrier, now), vec![CallAction::PollClcc]);
        let a = t.on_urc(
            &Urc::Ccinfo(info(1, Direction::Incoming, CallStat::Released, "+1555")),
            now,
        );
        let (c, cause) = ended(&a).unwrap();
        assert_eq!(
            (c, cause.reason, cause.source.as_str()),
            (call, CallEndReason::RemoteHangup, "NO CARRIER")
        );
        assert!(a.contains(&CallAction::Ended(call)));
        assert!(t.is_empty());
    }

    #[test]
    fn huawei_ring_clip_clcc_and_cend_cause() {
        let now = Instant::now();
        let mut t = tracker();
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
        let e = t.epoch();
        let a = t.on_clcc(
            &[info(1, Direction::Incoming, CallStat::Incoming, "+4912")],
            e,
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
        let (_, cause) = ended(&a).unwrap();
        assert_eq!(
            (cause.reason, cause.cc_cause),
            (CallEndReason::RemoteHangup, Some(16))
        );
    }

    #[test]
    fn huawei_conn_before_clcc_matches_the_answered_incoming_call() {
        let now = Instant::now();
        let mut t = tracker();
        t.on_urc(&Urc::Ring, now);
        let a = t.on_urc(
            &Urc::Clip {
                number: Some("+4912".into()),
                toa: Some(145),
                validity: Some(0),
            },
            now,
        );
        let Some(ModemEvent::IncomingCall { call, .. }) = events(&a).first().copied().cloned()
        else {
            panic!()
        };
        t.answered(call);
        t.on_urc(
            &Urc::Conn {
                index: 1,
                call_type: 0,
            },
            now,
        );
        assert_eq!(t.len(), 1);
        assert_eq!(t.index_of(call), Some(1));
        assert_eq!(t.active_call(), Some(call));
    }

    #[test]
    fn huawei_ringing_call_ended_by_the_caller_is_missed() {
        let now = Instant::now();
        let mut t = tracker();
        t.on_urc(&Urc::Ring, now);
        t.on_urc(
            &Urc::Clip {
                number: Some("+4912".into()),
                toa: Some(145),
                validity: Some(0),
            },
            now,
        );
        let a = t.on_urc(
            &Urc::Cend {
                index: 1,
                duration: 0,
                end_status: 104,
                cc_cause: Some(16),
            },
            now,
        );
        assert_eq!(ended(&a).unwrap().1.reason, CallEndReason::Missed);
    }

    #[test]
    fn generic_modem_progress_texts_end_calls() {
        let now = Instant::now();
        let mut t = tracker();
        let (id, _) = t.dial_started("+1666", now);
        let a = t.on_urc(&Urc::Busy, now);
        assert_eq!(
            ended(&a).map(|(c, x)| (c, x.reason)),
            Some((id, CallEndReason::Busy))
        );
        let (id, _) = t.dial_started("+1666", now);
        let a = t.on_urc(&Urc::NoAnswer, now);
        assert_eq!(
            ended(&a).map(|(c, x)| (c, x.reason)),
            Some((id, CallEndReason::NoAnswer))
        );
        let (id, _) = t.dial_started("+1666", now);
        t.answered(id);
        let a = t.on_urc(&Urc::NoCarrier, now);
        assert_eq!(
            ended(&a).map(|(c, x)| (c, x.reason)),
            Some((id, CallEndReason::RemoteHangup))
        );
    }

    #[test]
    fn huawei_outgoing_causes_and_local_hangup() {
        let now = Instant::now();
        let mut t = tracker();
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
        assert_eq!(ended(&a).unwrap().1.reason, CallEndReason::NoAnswer);
        let (id, _) = t.dial_started("+1666", now);
        t.on_urc(
            &Urc::Orig {
                index: 1,
                call_type: 0,
            },
            now,
        );
        let a = t.on_urc(
            &Urc::Conn {
                index: 1,
                call_type: 0,
            },
            now,
        );
        assert!(a.contains(&CallAction::Connected(id)));
        t.hangup_requested(id);
        let a = t.hangup_done(id, now);
        assert_eq!(ended(&a).unwrap().1.reason, CallEndReason::LocalHangup);
    }

    #[test]
    fn late_end_reports_of_the_previous_call_do_not_end_the_next() {
        let now = Instant::now();
        let mut t = tracker();
        let (first, _) = t.dial_started("+1", now);
        t.on_urc(
            &Urc::Ccinfo(info(1, Direction::Outgoing, CallStat::Active, "+1")),
            now,
        );
        t.hangup_requested(first);
        t.hangup_done(first, now);
        // The next call is dialled before the modem's own report of the first end is read.
        let (next, _) = t.dial_started("+2", now);
        assert!(
            t.on_urc(
                &Urc::Ccinfo(info(1, Direction::Outgoing, CallStat::Released, "+1")),
                now
            )
            .is_empty()
        );
        assert!(
            t.on_urc(
                &Urc::Cend {
                    index: 1,
                    duration: 9,
                    end_status: 104,
                    cc_cause: Some(16)
                },
                now
            )
            .is_empty()
        );
        assert_eq!(t.state_of(next), Some(CallStat::Dialing));
        // Once the new call owns index 1, its own end applies.
        t.on_urc(
            &Urc::Ccinfo(info(1, Direction::Outgoing, CallStat::Alerting, "+2")),
            now,
        );
        assert_eq!(t.on_urc(&Urc::Busy, now), vec![CallAction::PollClcc]);
        let a = t.on_urc(
            &Urc::Ccinfo(info(1, Direction::Outgoing, CallStat::Released, "+2")),
            now,
        );
        assert_eq!(
            ended(&a).map(|(c, x)| (c, x.reason)),
            Some((next, CallEndReason::Busy))
        );
        // URCs read before a call existed never end it.
        let later = now + Duration::from_millis(10);
        let (third, _) = t.dial_started("+3", later);
        assert!(events(&t.on_urc(&Urc::NoCarrier, now)).is_empty());
        assert_eq!(t.state_of(third), Some(CallStat::Dialing));
    }

    #[test]
    fn clcc_absence_ends_calls_at_the_second_miss() {
        let now = Instant::now();
        let mut t = tracker();
        let (id, _) = t.dial_started("+1", now);
        assert!(
            events(&t.on_clcc(&[], t.epoch(), now)).is_empty(),
            "within grace"
        );
        let later = now + Duration::from_secs(6);
        assert!(
            events(&t.on_clcc(&[], t.epoch(), later)).is_empty(),
            "first miss"
        );
        let a = t.on_clcc(&[], t.epoch(), later);
        assert_eq!(ended(&a).map(|(c, _)| c), Some(id));
        // Indexed calls end at the second miss.
        t.on_urc(
            &Urc::Ccinfo(info(2, Direction::Incoming, CallStat::Incoming, "+2")),
            now,
        );
        assert!(events(&t.on_clcc(&[], t.epoch(), now)).is_empty());
        let a = t.on_clcc(&[], t.epoch(), now);
        assert_eq!(ended(&a).unwrap().1.reason, CallEndReason::Missed);
        // A call seen again is no longer absent.
        t.on_urc(
            &Urc::Ccinfo(info(4, Direction::Incoming, CallStat::Incoming, "+4")),
            now,
        );
        t.on_clcc(&[], t.epoch(), now);
        t.on_clcc(
            &[info(4, Direction::Incoming, CallStat::Incoming, "+4")],
            t.epoch(),
            now,
        );
        assert!(events(&t.on_clcc(&[], t.epoch(), now)).is_empty());
    }

    #[test]
    fn stale_snapshot_does_not_resurrect_an_ended_call() {
        let now = Instant::now();
        let mut t = tracker();
        t.on_urc(
            &Urc::Ccinfo(info(1, Direction::Incoming, CallStat::Incoming, "+1")),
            now,
        );
        let before = t.epoch();
        t.on_urc(
            &Urc::Ccinfo(info(1, Direction::Incoming, CallStat::Released, "+1")),
            now,
        );
        assert!(t.is_empty());
        // The poller's snapshot was requested before the end was processed.
        let a = t.on_clcc(
            &[info(1, Direction::Incoming, CallStat::Active, "+1")],
            before,
            now,
        );
        assert!(a.is_empty(), "{a:?}");
        assert!(t.is_empty());
    }

    #[test]
    fn hold_swap_and_transfer() {
        let now = Instant::now();
        let mut t = tracker();
        t.on_urc(
            &Urc::Ccinfo(info(1, Direction::Incoming, CallStat::Incoming, "+1")),
            now,
        );
        let a = t.calls[0].id;
        t.answered(a);
        let plan = t.swap_plan();
        let ev = t.apply_states(&plan);
        assert!(
            matches!(events(&ev)[..], [ModemEvent::CallState { call, state: CallStat::Held, .. }] if *call == a)
        );
        // Dialling while the first call is held: the ccinfo of index 2 belongs to the new call.
        let (b, _) = t.dial_started("+2", now);
        t.on_urc(
            &Urc::Ccinfo(info(2, Direction::Outgoing, CallStat::Alerting, "+2")),
            now,
        );
        assert_eq!(t.state_of(b), Some(CallStat::Alerting));
        assert_eq!(t.state_of(a), Some(CallStat::Held));
        // ECT: the modem's release of one call may be read before the OK.
        t.transfer_requested([a, b]);
        let ev = t.on_urc(
            &Urc::Ccinfo(info(1, Direction::Incoming, CallStat::Released, "+1")),
            now,
        );
        assert_eq!(
            ended(&ev).map(|(c, x)| (c, x.reason)),
            Some((a, CallEndReason::Transferred))
        );
        let ev = t.transferred([a, b], now);
        assert_eq!(
            ended(&ev).map(|(c, x)| (c, x.reason)),
            Some((b, CallEndReason::Transferred))
        );
        assert!(t.is_empty());
        // The late release of the second call is swallowed.
        assert!(
            t.on_urc(
                &Urc::Ccinfo(info(2, Direction::Outgoing, CallStat::Released, "+2")),
                now
            )
            .is_empty()
        );
    }

    #[test]
    fn refused_transfer_leaves_ordinary_ends() {
        let now = Instant::now();
        let mut t = tracker();
        let (a, _) = t.dial_started("+1", now);
        t.answered(a);
        let plan = t.swap_plan();
        t.apply_states(&plan);
        let (b, _) = t.dial_started("+2", now);
        t.answered(b);
        t.transfer_requested([a, b]);
        t.transfer_failed([a, b]);
        // Retrieve = swap: b is held, a active again; the modem's URCs for the swap may be
        // processed before the OK, and applying the plan again changes nothing.
        let plan = t.swap_plan();
        t.apply_states(&plan);
        assert!(t.apply_states(&plan).is_empty());
        assert_eq!(
            (t.state_of(a), t.state_of(b)),
            (Some(CallStat::Active), Some(CallStat::Held))
        );
        let ev = t.on_clcc(
            &[info(1, Direction::Outgoing, CallStat::Active, "+1")],
            t.epoch(),
            now + Duration::from_secs(10),
        );
        assert!(ended(&ev).is_none(), "first miss");
        let ev = t.on_clcc(
            &[info(1, Direction::Outgoing, CallStat::Active, "+1")],
            t.epoch(),
            now + Duration::from_secs(10),
        );
        assert_eq!(
            ended(&ev).map(|(c, x)| (c, x.reason)),
            Some((b, CallEndReason::RemoteHangup))
        );
    }

    #[test]
    fn end_all_on_reboot() {
        let now = Instant::now();
        let mut t = tracker();
        t.dial_started("+1", now);
        t.on_urc(
            &Urc::Ccinfo(info(2, Direction::Incoming, CallStat::Incoming, "+2")),
            now,
        );
        let a = t.end_all("RDY", now);
        assert_eq!(events(&a).len(), 2);
        assert!(events(&a).iter().all(|e| matches!(e, ModemEvent::CallEnded { cause, .. } if cause.reason == CallEndReason::ModemReset)));
        assert!(t.is_empty());
    }
}
