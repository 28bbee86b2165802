//! `POST /v1.0/transfers`: hand an answered call to another party, the way its line can.
//!
//! * A line that reaches a party by address (SIP REFER) does a blind transfer itself.
//! * A line that joins two of its own legs (GSM explicit call transfer) gets the usual
//!   dance: hold the caller, place the transferee on the same line, and join the two —
//!   at once for a blind transfer (the transferee is alerting), once answered for an
//!   attended one; if the transferee never answers, the caller is taken off hold.
//!
//! The other way round, a line's own user or peer may ask for a transfer
//! (`LegEvent::TransferRequested`): to another leg (an analog phone hanging up in a
//! consultation call, a SIP attended REFER with `Replaces`), [`LiveCall::join_far_ends`]
//! bridges what the two legs were bridged to, and the two legs leave; to a party (a SIP
//! blind REFER), [`LiveCall::hand_over_to`] dials it where the peer could have called it
//! itself and bridges the party the leg was bridged to once it answers. And a new call may
//! take a leg's place (`LegEvent::Replacing`: a SIP INVITE with `Replaces`, the gateway the
//! target of an attended transfer done elsewhere): [`on_replacing`] hands it the leg's
//! party.
//!
//! A transfer to a number bound to a flow (`call_flow_id`) does what a call to that number
//! does, as a blind transfer into an Asterisk dialplan extension does: the transferred
//! party leaves its bridge and runs that flow ([`LiveCall::hand_to_flow`]; its old flow,
//! if any, is stopped without hanging it up). Nothing is dialled.

use std::sync::Arc;

use flowgate_flows::model::{Address, ReferenceType};
use flowgate_line::{Cause, LegError, LegId, Line, Party, Progress, TransferTarget};
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::dial::DialRequest;
use super::events::{arrived, find_binding, routes_onward};
use super::record::{call_variables, store_new_call, update_call};
use super::{LiveCall, Phase};
use crate::model::CallDirection;
use crate::runtime::mailbox::Signal;
use crate::runtime::sms::tel;
use crate::runtime::{
    FlowSource, Runtime, RuntimeError, StartRequest, Transfer, TransferRequest, TransferType,
};
use crate::store::Batch;

/// The flow bound to `number` for a call arriving on `line_id` (its `call_flow_id`), if
/// any: where a transfer to that number sends the party.
fn flow_of_number(rt: &Runtime, line_id: &str, number: &str) -> Option<Uuid> {
    if number.trim().is_empty() {
        return None;
    }
    match find_binding(rt, line_id, number) {
        Ok(binding) => binding.and_then(|b| b.call_flow_id),
        Err(e) => {
            warn!(number, cause = %e, "number bindings not read; the transfer target is dialled");
            None
        }
    }
}

impl LiveCall {
    /// Transfers the call.
    pub(crate) async fn transfer(
        &self,
        request: TransferRequest,
    ) -> Result<Transfer, RuntimeError> {
        let Some(destination) = request.transferee_addresses.first().cloned() else {
            return Err(RuntimeError::Invalid(
                "transferee_addresses is empty".into(),
            ));
        };
        if destination.target.is_empty() {
            return Err(RuntimeError::Invalid(
                "the transferee address has no target".into(),
            ));
        }
        if !self.is_answered() {
            return Err(RuntimeError::Invalid(
                "only an answered call can be transferred".into(),
            ));
        }
        let rt = &self.inner.rt;
        let line = self.line();
        let caps = line.capabilities();
        let mut transfer = Transfer {
            id: Uuid::now_v7(),
            transfer_type: request.transfer_type,
            transferer_call_id: self.id(),
            transferee_call_id: None,
            call_ids: Vec::new(),
            status: "pending".into(),
        };
        // A number of the gateway's own bound to a flow, as numbers are matched for calls
        // arriving on no line in particular (a line-wide binding would catch every number).
        if destination.kind == "tel"
            && let Some(flow_id) = flow_of_number(rt, "", &destination.target)
        {
            return self
                .transfer_to_flow(transfer, flow_id, &destination.target)
                .await;
        }
        if request.transfer_type == TransferType::Blind && caps.transfer_to_party {
            self.inner.live.lock().local_reason = Some("normal".into());
            let to = super::dial::party_of(&destination);
            if let Err(e) = line.transfer(self.id(), TransferTarget::Party(to)).await {
                self.inner.live.lock().local_reason = None;
                return Err(e.into());
            }
            transfer.status = "transferred".into();
            return Ok(transfer);
        }
        if !caps.transfer_to_leg {
            return Err(LegError::Unsupported {
                line: line.id().to_owned(),
                what: "transfer calls",
            }
            .into());
        }
        line.hold(self.id()).await?;
        let dialled = rt
            .dial(DialRequest {
                id: None,
                source: rt
                    .db()
                    .calls
                    .get(self.id())?
                    .map(|c| c.destination)
                    .unwrap_or_default(),
                destination,
                flow: None,
                variables: Default::default(),
                master_call_id: Some(self.id()),
                // The network joins only two calls of the same line.
                line_id: line.id().to_owned(),
                prefer_line: String::new(),
            })
            .await;
        let other = match dialled.map(|c| rt.live_call_by_id(c.id)) {
            Ok(Some(other)) => other,
            Ok(None) => {
                let _ = line.retrieve(self.id()).await;
                return Err(RuntimeError::Invalid(
                    "the transferee's call ended at once".into(),
                ));
            }
            Err(e) => {
                let _ = line.retrieve(self.id()).await;
                return Err(e);
            }
        };
        update_call(rt, self.id(), |c| c.chained_call_ids.push(other.id()))?;
        transfer.transferee_call_id = Some(other.id());
        transfer.call_ids = vec![other.id()];
        match request.transfer_type {
            TransferType::Blind => {
                self.complete_transfer(&other).await?;
                transfer.status = "transferred".into();
            }
            TransferType::Attended => {
                let this = self.clone();
                let ring = rt.inner.options.ring_timeout;
                rt.spawn(async move {
                    let answered = tokio::time::timeout(
                        ring,
                        other.wait_phase(|p| matches!(p, Phase::Answered)),
                    )
                    .await;
                    if matches!(answered, Ok(Phase::Answered)) {
                        if let Err(e) = this.complete_transfer(&other).await {
                            warn!(call = %this.id(), cause = %e, "attended transfer failed");
                        }
                    } else {
                        info!(call = %this.id(), "transferee did not answer; the caller is taken off hold");
                        other.hangup("noanswer").await;
                        let _ = this.line().retrieve(this.id()).await;
                    }
                });
            }
        }
        Ok(transfer)
    }

    /// The line's user hands this (held) leg's far end to the far end of its leg `to`: the
    /// two far ends are bridged and stay so until either hangs up; this leg and `to` end
    /// right after (their `Ended` follow this event). The consulted party may still ring
    /// (a blind transfer): the leg `to` dialled is taken over as it is, and the dialler's
    /// ring timeout still applies to it.
    pub(crate) async fn join_far_ends(&self, to: LegId) {
        let rt = &self.inner.rt;
        let Some(other) = rt.live_call_by_id(to) else {
            warn!(call = %self.id(), to = %to, "transfer requested to a leg that is gone");
            return;
        };
        let held = self.inner.live.lock().peer.clone();
        let consulted = other
            .inner
            .live
            .lock()
            .peer
            .clone()
            .or_else(|| other.ringing_destination());
        let (Some(held), Some(consulted)) = (held, consulted) else {
            info!(call = %self.id(), to = %to, "transfer requested, but a leg has no bridged party to hand over; the legs end");
            return;
        };
        if held.is_ended() || consulted.is_ended() {
            info!(call = %self.id(), to = %to, "transfer requested, but a party already left");
            return;
        }
        // The leaving legs let go first, so their bridges' ends do not take the parties
        // along (see `connect`: a handed-over party is no longer theirs).
        self.inner.live.lock().peer = None;
        other.inner.live.lock().peer = None;
        if let Err(e) = held.join_audio(&consulted).await {
            warn!(call = %held.id(), peer = %consulted.id(), cause = %e, "transfer: audio not bridged");
        }
        let _ = update_call(rt, held.id(), |c| c.chained_call_ids.push(consulted.id()));
        info!(held = %held.id(), consulted = %consulted.id(), by = %self.id(), "transferred by the phone");
        release_together(held, consulted);
    }

    /// The far end of this leg (a SIP peer's blind REFER) hands the party bridged to this
    /// leg over to `to`: the gateway dials `to` — only where this leg's peer could have
    /// called it through the gateway itself — and, once it answers, bridges the party to
    /// it. The line hears how it went ([`flowgate_line::Line::transfer_outcome`]: the
    /// peer's NOTIFY); the peer ends this leg itself.
    pub(crate) async fn hand_over_to(&self, to: Party) {
        let outcome = self.hand_over(&to).await;
        match &outcome {
            Ok(()) => {
                info!(call = %self.id(), to = %to.number, uri = %to.uri, "blind transfer done")
            }
            Err(cause) => {
                info!(call = %self.id(), to = %to.number, uri = %to.uri, %cause, "blind transfer failed")
            }
        }
        if let Err(e) = self.line().transfer_outcome(self.id(), outcome).await {
            debug!(call = %self.id(), cause = %e, "transfer outcome not reported (the leg ended)");
        }
    }

    async fn hand_over(&self, to: &Party) -> Result<(), Cause> {
        let rt = &self.inner.rt;
        let Some(held) = self.inner.live.lock().peer.clone() else {
            info!(call = %self.id(), "blind transfer asked for, but the leg is bridged to nobody");
            return Err(Cause::Rejected);
        };
        let destination = if to.uri.is_empty() {
            // A number at the gateway: reached as a call from this leg's peer would be —
            // a number bound to a flow runs that flow.
            if let Some(flow_id) = flow_of_number(rt, &self.line_id(), &to.number) {
                if !held.is_answered() || held.is_ended() {
                    return Err(Cause::Rejected);
                }
                return match held.hand_to_flow(self, flow_id, &to.number).await {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        warn!(call = %self.id(), to = %to.number, cause = %e, "blind transfer into a flow failed");
                        Err(Cause::NetworkFailure)
                    }
                };
            }
            if !routes_onward(rt, &self.line_id(), &tel(&to.number)) {
                warn!(call = %self.id(), to = %to.number, "blind transfer to a number this line's peers may not call: refused");
                return Err(Cause::Barred);
            }
            tel(&to.number)
        } else {
            Address {
                kind: "sip".into(),
                target: to.uri.clone(),
                ..Address::default()
            }
        };
        // The handed-over party keeps its identity towards the new party, as a
        // forwarded call presents its caller.
        let source = rt
            .db()
            .calls
            .get(held.id())
            .ok()
            .flatten()
            .map(|c| match c.direction {
                CallDirection::Incoming => c.source,
                CallDirection::Outgoing => c.destination,
            })
            .unwrap_or_default();
        let dialled = rt
            .dial(DialRequest {
                id: None,
                source,
                destination,
                flow: None,
                variables: Default::default(),
                master_call_id: Some(held.id()),
                line_id: String::new(),
                prefer_line: String::new(),
            })
            .await;
        let other = match dialled.map(|c| rt.live_call_by_id(c.id)) {
            Ok(Some(other)) => other,
            Ok(None) => return Err(Cause::Unavailable),
            Err(e) => {
                info!(call = %self.id(), cause = %e, "blind transfer: the target was not dialled");
                return Err(Cause::Unavailable);
            }
        };
        let _ = update_call(rt, held.id(), |c| c.chained_call_ids.push(other.id()));
        // From now on the party is promised to the target: if the peer hangs up this leg
        // while the target rings (a transfer without waiting for the NOTIFY), the party's
        // `connect` lets it go instead of ending or resuming its flow.
        held.inner.live.lock().peer = Some(other.clone());
        // The peer hears once that the target rings (NOTIFY 180), then how it ended.
        let mut told = false;
        let answered = loop {
            let phase = tokio::select! {
                p = other.wait_phase(|p| {
                    matches!(p, Phase::Answered)
                        || (!told
                            && matches!(
                                p,
                                Phase::Progress(Progress::Ringing | Progress::EarlyMedia)
                            ))
                }) => p,
                _ = held.wait_phase(|_| false) => {
                    other.hangup("cancel").await;
                    return Err(Cause::Cancelled);
                }
            };
            let Phase::Progress(progress) = phase else {
                break phase;
            };
            told = true;
            if let Err(e) = self.line().transfer_progress(self.id(), progress).await {
                debug!(call = %self.id(), cause = %e, "transfer progress not reported");
            }
        };
        if let Phase::Ended(cause) = answered {
            {
                let mut live = held.inner.live.lock();
                if live.peer.as_ref().is_some_and(|p| p.id() == other.id()) {
                    live.peer = None;
                }
            }
            if self.is_ended() {
                // Nobody to go back to: the party hears why, as a caller would.
                let reason = cause.cause.voipbin_reason(false).to_owned();
                held.hangup(&reason).await;
            } else {
                // The peer still has the call (on hold): it takes the party back.
                held.inner.live.lock().peer = Some(self.clone());
            }
            return Err(cause.cause);
        }
        self.inner.live.lock().peer = None;
        if let Err(e) = held.join_audio(&other).await {
            warn!(call = %held.id(), peer = %other.id(), cause = %e, "transfer: audio not bridged");
        }
        info!(held = %held.id(), target = %other.id(), by = %self.id(), "transferred by the peer");
        release_together(held, other);
        Ok(())
    }

    /// The one leg this call's `connect` dialled that still rings, if exactly one does.
    fn ringing_destination(&self) -> Option<LiveCall> {
        let rt = &self.inner.rt;
        let record = rt.db().calls.get(self.id()).ok().flatten()?;
        let mut ringing = record
            .chained_call_ids
            .iter()
            .filter_map(|id| rt.live_call_by_id(*id))
            .filter(|c| !c.is_ended() && !c.is_answered());
        let first = ringing.next()?;
        ringing.next().is_none().then_some(first)
    }

    /// `POST /transfers` to a number bound to a flow: the party this call is bridged to
    /// (VoIPBIN's transferee; this call is the transferer's) runs that flow and this call
    /// is hung up — or, bridged to nobody, this call runs it itself. Either type: a flow
    /// has nobody to consult.
    async fn transfer_to_flow(
        &self,
        mut transfer: Transfer,
        flow_id: Uuid,
        number: &str,
    ) -> Result<Transfer, RuntimeError> {
        let peer = self.inner.live.lock().peer.clone();
        let party = peer.clone().unwrap_or_else(|| self.clone());
        let activeflow = party.hand_to_flow(self, flow_id, number).await?;
        if peer.is_some() {
            self.hangup("normal").await;
        }
        info!(call = %self.id(), party = %party.id(), flow = %flow_id, %activeflow, "transferred to a flow");
        transfer.transferee_call_id = Some(party.id());
        transfer.call_ids = vec![party.id()];
        transfer.status = "transferred".into();
        Ok(transfer)
    }

    /// This call (answered) leaves the bridge it shares with `by` (the leg whose user
    /// transferred it; `by` may be the call itself) and runs the flow `flow_id` bound to
    /// `number`, as a call to that number would: a new activeflow on this call, the call
    /// record's `flow_id`/`activeflow_id` pointing at it (`call_updated`). The flow the
    /// call ran until now is stopped (reason `transferred`) without hanging the call up,
    /// and neither `by`'s `connect` nor this call's lets the other's end take it along.
    /// Returns the new activeflow's id.
    pub(super) async fn hand_to_flow(
        &self,
        by: &LiveCall,
        flow_id: Uuid,
        number: &str,
    ) -> Result<Uuid, RuntimeError> {
        let rt = &self.inner.rt;
        if self.is_ended() {
            return Err(RuntimeError::Invalid(
                "the transferred call already ended".into(),
            ));
        }
        let record = rt
            .db()
            .calls
            .get(self.id())?
            .ok_or(RuntimeError::CallNotFound(self.id()))?;
        let mut request = StartRequest::new(
            FlowSource::Stored(flow_id),
            ReferenceType::Call,
            Some(self.id()),
        );
        request.variables = call_variables(&record);
        let mut batch = Batch::new();
        let af = rt.prepare(request, &mut batch)?;
        rt.db().store.commit_durable(batch).await?;
        if by.id() != self.id() {
            self.inner.live.lock().parted_from.push(by.id());
            by.inner.live.lock().parted_from.push(self.id());
            by.leave_bridge();
        }
        // The old flow's runner reads the call's activeflow when it ends: switched first,
        // so stopping it does not hang the call up.
        let old = self.inner.live.lock().activeflow.replace(af.id);
        self.leave_bridge();
        let new_id = af.id;
        if let Err(e) = update_call(rt, self.id(), |c| {
            c.flow_id = Some(flow_id);
            c.activeflow_id = Some(new_id);
        }) {
            warn!(call = %self.id(), cause = %e, "call record not updated");
        }
        info!(call = %self.id(), by = %by.id(), number, flow = %flow_id, activeflow = %new_id, previous = ?old, "transferred into a flow");
        rt.launch_with(af, Some(self.clone()));
        if let Some(old) = old.filter(|old| *old != new_id) {
            let _ = rt.signal(
                old,
                Signal::Stop {
                    reason: "transferred".into(),
                    reply: None,
                },
            );
        }
        Ok(new_id)
    }

    /// The line joins this (held) call with `other`; both leave the gateway.
    async fn complete_transfer(&self, other: &LiveCall) -> Result<(), RuntimeError> {
        for call in [self, other] {
            call.inner
                .live
                .lock()
                .local_reason
                .get_or_insert_with(|| "normal".to_owned());
        }
        let line = self.line();
        match line
            .transfer(self.id(), TransferTarget::Leg(other.id()))
            .await
        {
            Ok(()) => {
                info!(call = %self.id(), transferee = %other.id(), "transferred by the network");
                Ok(())
            }
            Err(e) => {
                // The network refused: both calls are as they were; give the caller back.
                other.hangup("failed").await;
                let _ = line.retrieve(self.id()).await;
                self.inner.live.lock().local_reason = None;
                Err(e.into())
            }
        }
    }
}

/// A call arrived to take `replaced`'s place ([`flowgate_line::LegEvent::Replacing`]: the
/// far end of `replaced` transferred it here, an attended transfer completed elsewhere —
/// a SIP INVITE with `Replaces`). The new call is recorded and, when `replaced` is bridged
/// to a party, answered and bridged to it; `replaced` is then hung up as transferred. With
/// no party to hand over, the new call is refused and `replaced` stays as it was.
///
/// Runs on the line's event task up to the hand-over's first step: `replaced` lets go of
/// the party before any later event of the line (its far end's BYE follows soon after)
/// can end it and take the party along. Answering and bridging wait for the new leg's
/// own events, so they run on a task of their own.
pub(super) fn on_replacing(
    rt: &Runtime,
    line: &Arc<dyn Line>,
    leg: LegId,
    caller: &Party,
    callee: &Party,
    replaced: LegId,
) -> Result<(), RuntimeError> {
    let (mut record, call) = arrived(rt, line, leg, caller, tel(&callee.number));
    let old = rt.live_call_by_id(replaced);
    let party = old
        .as_ref()
        .and_then(|o| o.inner.live.lock().peer.clone())
        .filter(|p| !p.is_ended());
    if let Some(party) = &party {
        record.master_call_id = Some(party.id());
    }
    store_new_call(rt, &record)?;
    let (Some(old), Some(party)) = (old, party) else {
        info!(call = %leg, %replaced, "a call to replace a leg bridged to nobody: refused");
        rt.spawn(async move { call.hangup_with("failed", Cause::Rejected).await });
        return Ok(());
    };
    {
        let mut live = old.inner.live.lock();
        live.peer = None;
        live.parted_from.push(party.id());
    }
    party.inner.live.lock().parted_from.push(old.id());
    info!(call = %leg, %replaced, party = %party.id(), "a call replaces a leg: handing its party over");
    rt.spawn(async move { replace(call, old, party).await });
    Ok(())
}

/// The hand-over of [`on_replacing`]: `new` is answered and bridged to `party`, then `old`
/// leaves. If `new` cannot take the party (it hung up first, no audio), the party goes
/// back to `old` — or, when `old` is gone too, is hung up rather than left alone.
async fn replace(new: LiveCall, old: LiveCall, party: LiveCall) {
    let rt = new.inner.rt.clone();
    match new.join_audio(&party).await {
        Ok(()) => {
            let _ = update_call(&rt, party.id(), |c| c.chained_call_ids.push(new.id()));
            info!(call = %new.id(), party = %party.id(), replaced = %old.id(), "transferred to the replacing call");
            release_together(party, new);
            old.hangup_with("normal", Cause::Transferred).await;
        }
        Err(e) => {
            warn!(call = %new.id(), party = %party.id(), replaced = %old.id(), cause = %e, "the replacing call did not take the party over");
            new.hangup("failed").await;
            for (a, b) in [(&old, &party), (&party, &old)] {
                a.inner.live.lock().parted_from.retain(|id| *id != b.id());
            }
            if old.is_ended() || party.join_audio(&old).await.is_err() {
                party.hangup("normal").await;
            }
        }
    }
}

/// Two parties a transfer joined: nobody's flow owns their bridge, so whoever leaves first
/// takes the other along.
fn release_together(a: LiveCall, b: LiveCall) {
    let rt = a.inner.rt.clone();
    rt.spawn(async move {
        tokio::select! {
            _ = a.wait_phase(|_| false) => {},
            _ = b.wait_phase(|_| false) => {},
        }
        if a.handed_over(b.id()) && b.handed_over(a.id()) {
            // A later transfer parted them (one runs a flow now): not ours to end.
            return;
        }
        a.leave_bridge();
        b.leave_bridge();
        a.hangup("normal").await;
        b.hangup("normal").await;
    });
}
