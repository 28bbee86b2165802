//! One task per line: the line's leg events keep the call records, the flows and the
//! waiting parties (dials, transfers, bridges) in step with the legs.
//!
//! The line's stream is the only source of truth about its legs and it is read in order
//! by this task alone: an outgoing leg is registered before it is placed, so its first
//! event finds it, and whoever waits for a leg waits on the call's [`Phase`] watch.

use std::sync::Arc;

use chrono::Utc;
use flowgate_flows::model::parse_actions;
use flowgate_flows::model::{Address, ReferenceType};
use flowgate_line::{
    EndCause, LegEvent, LegId, Line, LineEvents, Party, Progress, TransferTarget, Transport,
};
use tracing::{info, warn};

use super::record::{
    CALL_STATUS_VAR, call_variables, new_call_record, set_details, stage_new_call, store_new_call,
    update_call,
};
use super::{LiveCall, Phase};
use crate::metrics::Metrics;
use crate::model::{CallDirection, CallStatus, Number};
use crate::runtime::mailbox::Signal;
use crate::runtime::sms::tel;
use crate::runtime::{FlowSource, Runtime, RuntimeError, StartRequest};
use crate::store::Batch;

/// Reads one line's events until shutdown (or the line goes away).
pub(crate) async fn line_events_task(rt: Runtime, line: Arc<dyn Line>, mut events: LineEvents) {
    let cancel = rt.cancel_token().clone();
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => return,
            e = events.recv() => e,
        };
        let Some(event) = event else { return };
        if let LegEvent::Incoming {
            leg,
            caller,
            callee,
        } = event
        {
            if let Err(e) = on_incoming(&rt, &line, leg, caller, callee).await {
                warn!(line = line.id(), cause = %e, "incoming call not handled");
            }
            continue;
        }
        if let LegEvent::Replacing {
            leg,
            caller,
            callee,
            replaced,
        } = &event
        {
            if let Err(e) =
                super::transfer::on_replacing(&rt, &line, *leg, caller, callee, *replaced)
            {
                warn!(line = line.id(), cause = %e, "replacing call not handled");
            }
            continue;
        }
        let Some(call) = rt.live_call_by_id(event.leg()) else {
            continue;
        };
        // After a fail-over, the old line's late events are not about this leg any more.
        if call.line_id() != line.id() {
            continue;
        }
        match event {
            LegEvent::Incoming { .. } | LegEvent::Replacing { .. } => {}
            LegEvent::Progress { progress, .. } => on_progress(&rt, &call, progress),
            LegEvent::Answered { .. } => on_answered(&rt, &call).await,
            LegEvent::AudioReady { .. } => {
                // Opening the voice port must not hold up the other events.
                rt.spawn(async move { call.on_audio_ready().await });
            }
            LegEvent::Dtmf { digit, .. } => call.route_signalled_dtmf(digit),
            LegEvent::Held { .. } => {
                let _ = update_call(&rt, call.id(), |c| c.hold = true);
            }
            LegEvent::Retrieved { .. } => {
                let _ = update_call(&rt, call.id(), |c| c.hold = false);
            }
            // Handled before the two legs' `Ended`, which follow in the same stream.
            LegEvent::TransferRequested { to, .. } => match to {
                TransferTarget::Leg(to) => call.join_far_ends(to).await,
                // A blind transfer dials and waits for an answer: not on this task.
                TransferTarget::Party(party) => {
                    rt.spawn(async move { call.hand_over_to(party).await });
                }
            },
            LegEvent::Ended { cause, .. } => on_ended(&rt, &call, cause).await,
        }
    }
}

fn on_progress(rt: &Runtime, call: &LiveCall, progress: Progress) {
    if matches!(progress, Progress::Ringing | Progress::EarlyMedia) {
        // The far end rings: another line would ring it twice, so no fail-over from now.
        call.inner.live.lock().failover = false;
        if let Err(e) = update_call(rt, call.id(), |c| {
            c.status = CallStatus::Ringing;
            c.tm_ringing.get_or_insert_with(Utc::now);
        }) {
            warn!(call = %call.id(), cause = %e, "call record not updated");
        }
        call.set_status_variable(CallStatus::Ringing);
    }
    call.inner.phase.send_if_modified(|p| {
        if matches!(p, Phase::Setup | Phase::Progress(_)) && *p != Phase::Progress(progress) {
            *p = Phase::Progress(progress);
            true
        } else {
            false
        }
    });
}

/// A call arrived on a line: record it, and run the flow bound to its number or line.
async fn on_incoming(
    rt: &Runtime,
    line: &Arc<dyn Line>,
    leg: LegId,
    caller: Party,
    callee: Party,
) -> Result<(), RuntimeError> {
    let db = rt.db();
    let binding = find_binding(rt, line.id(), &callee.number)?;
    let ours = binding
        .as_ref()
        .map(|b| b.number.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| callee.number.clone());
    let mut destination: Address = tel(&ours);
    destination.target_name = callee.display_name.clone();
    let (mut record, call) = arrived(rt, line, leg, &caller, destination);

    let flow_id = binding.and_then(|b| b.call_flow_id);
    if flow_id.is_none() && line.transport() == Transport::Sip {
        return route_out(rt, &call, record, &caller, &callee).await;
    }
    let Some(flow_id) = flow_id else {
        store_new_call(rt, &record)?;
        warn!(line = line.id(), caller = %caller.number, "incoming call to a number with no call_flow_id: rejecting");
        call.hangup("failed").await;
        return Ok(());
    };
    record.flow_id = Some(flow_id);
    let mut request =
        StartRequest::new(FlowSource::Stored(flow_id), ReferenceType::Call, Some(leg));
    request.variables = call_variables(&record);
    let mut batch = Batch::new();
    let af = match rt.prepare(request, &mut batch) {
        Ok(af) => af,
        Err(e) => {
            store_new_call(rt, &record)?;
            warn!(call = %leg, flow = %flow_id, cause = %e, "call flow not started: rejecting the call");
            call.hangup("failed").await;
            return Ok(());
        }
    };
    record.activeflow_id = Some(af.id);
    stage_new_call(&mut batch, db, &record)?;
    // One trip to the store threads for commit and flush, and no tokio worker blocked
    // while the commit thread works.
    db.store.commit_durable(batch).await?;
    call.inner.live.lock().activeflow = Some(af.id);
    info!(call = %leg, line = line.id(), caller = %caller.number, activeflow = %af.id, "incoming call");
    rt.launch_with(af, Some(call));
    Ok(())
}

/// A call that arrived on `line` from `caller` for `destination`: its record (not stored
/// yet) and its live call, registered and counted.
pub(super) fn arrived(
    rt: &Runtime,
    line: &Arc<dyn Line>,
    leg: LegId,
    caller: &Party,
    destination: Address,
) -> (crate::model::Call, LiveCall) {
    let mut source = tel(&caller.number);
    source.target_name = if caller.number.is_empty() {
        "anonymous".into()
    } else {
        caller.display_name.clone()
    };
    let record = new_call_record(
        leg,
        line.as_ref(),
        CallDirection::Incoming,
        source,
        destination,
    );
    Metrics::inc(&rt.metrics().calls_incoming_total);
    let call = LiveCall::new(rt, leg, Arc::clone(line));
    rt.register_call(&call);
    (record, call)
}

/// A SIP call to a number no flow is bound to goes out again by the routing table (the
/// PBX's GSM trunk): an inline flow `connect`s it to the dialled number and hangs the
/// caller up with the far end's reason. The SIP line only reports calls from trusted trunk
/// sources and authenticated extensions, so nothing unauthenticated gets here.
async fn route_out(
    rt: &Runtime,
    call: &LiveCall,
    mut record: crate::model::Call,
    caller: &Party,
    callee: &Party,
) -> Result<(), RuntimeError> {
    let leg = call.id();
    let line_id = call.line_id();
    let destination = tel(&callee.number);
    let onward = routes_onward(rt, &line_id, &destination);
    if callee.number.trim().is_empty() || !onward {
        store_new_call(rt, &record)?;
        warn!(call = %leg, line = %line_id, callee = %callee.number, "incoming SIP call to a number with no flow and no onward route: rejecting");
        call.hangup("failed").await;
        return Ok(());
    }
    let actions = serde_json::json!([{
        "type": "connect",
        "option": {
            "source": {"type": "tel", "target": caller.number, "target_name": caller.display_name},
            "destinations": [{"type": "tel", "target": callee.number}],
            "relay_reason": true,
        },
    }]);
    let actions = parse_actions(&actions.to_string(), &rt.guards().limits)
        .map_err(|e| RuntimeError::Invalid(format!("route-out flow: {e}")))?;
    let mut request =
        StartRequest::new(FlowSource::Inline(actions), ReferenceType::Call, Some(leg));
    request.variables = call_variables(&record);
    let db = rt.db();
    let mut batch = Batch::new();
    let af = match rt.prepare(request, &mut batch) {
        Ok(af) => af,
        Err(e) => {
            store_new_call(rt, &record)?;
            warn!(call = %leg, cause = %e, "route-out flow not started: rejecting the call");
            call.hangup("failed").await;
            return Ok(());
        }
    };
    record.activeflow_id = Some(af.id);
    stage_new_call(&mut batch, db, &record)?;
    db.store.commit_durable(batch).await?;
    call.inner.live.lock().activeflow = Some(af.id);
    info!(call = %leg, line = %line_id, caller = %caller.number, to = %callee.number, activeflow = %af.id, "incoming SIP call routed out");
    rt.launch_with(af, Some(call.clone()));
    Ok(())
}

/// Whether the routing table takes `destination` to a line other than `line_id`: what a
/// caller on that line (an authenticated SIP peer) may reach through the gateway. A route
/// that only leads back to the line the call came in on would loop.
pub(super) fn routes_onward(rt: &Runtime, line_id: &str, destination: &Address) -> bool {
    rt.routes()
        .candidates(rt.lines(), destination)
        .map(|lines| lines.iter().any(|l| l.id() != line_id))
        .unwrap_or(false)
}

/// The number binding for a call to `callee` on line `line_id`.
pub(super) fn find_binding(
    rt: &Runtime,
    line_id: &str,
    callee: &str,
) -> Result<Option<Number>, RuntimeError> {
    for entry in rt.db().numbers.iter() {
        let (_, number) = entry?;
        if number.matches(line_id, callee) {
            return Ok(Some(number));
        }
    }
    Ok(None)
}

/// The call is answered (ours: the far end picked up; theirs: we answered).
pub(super) async fn on_answered(rt: &Runtime, call: &LiveCall) {
    {
        let mut live = call.inner.live.lock();
        if live.answered || live.ended {
            return;
        }
        live.answered = true;
        live.failover = false;
    }
    let now = Utc::now();
    let line = Arc::clone(&*call.inner.line.lock());
    if let Err(e) = update_call(rt, call.id(), |c| {
        c.status = CallStatus::Progressing;
        c.tm_progressing.get_or_insert(now);
        // A fast answer can overtake the dialler's own update of the leg's identifiers (SIP
        // Call-ID, remote URI): an answered record always carries them.
        if c.sip_call_id.is_empty() {
            set_details(c, line.as_ref(), call.id());
        }
    }) {
        warn!(call = %call.id(), cause = %e, "call record not updated");
    }
    call.set_status_variable(CallStatus::Progressing);
    call.inner.phase.send_replace(Phase::Answered);

    let pending = call.inner.live.lock().pending_flow.take();
    let Some(pending) = pending else { return };
    let Ok(Some(record)) = rt.db().calls.get(call.id()) else {
        return;
    };
    let mut request = StartRequest::new(pending.flow, ReferenceType::Call, Some(call.id()));
    request.variables = call_variables(&record);
    request.external = pending.external;
    let db = rt.db();
    let mut batch = Batch::new();
    match rt.prepare(request, &mut batch) {
        Ok(af) => {
            let mut record = record;
            record.activeflow_id = Some(af.id);
            if batch.put(&db.calls, record.id, &record).is_err() || db.store.commit(batch).is_err()
            {
                warn!(call = %record.id, "outbound call flow not stored; hanging up");
                call.hangup("failed").await;
                return;
            }
            call.inner.live.lock().activeflow = Some(af.id);
            info!(call = %record.id, activeflow = %af.id, "outbound call answered; flow started");
            rt.launch_with(af, Some(call.clone()));
        }
        Err(e) => {
            warn!(call = %call.id(), cause = %e, "outbound call flow not started; hanging up");
            call.hangup("failed").await;
        }
    }
}

/// The leg ended on its line. Before the far end rang, an outbound leg may still be
/// placed on another line: then the dialler hears of the end and decides; otherwise the
/// call is over.
async fn on_ended(rt: &Runtime, call: &LiveCall, cause: EndCause) {
    {
        let live = call.inner.live.lock();
        if live.ended {
            return;
        }
        if live.failover && !live.answered && cause.cause.fails_over() {
            drop(live);
            call.inner.phase.send_replace(Phase::Ended(cause));
            return;
        }
    }
    settle(rt, call, &cause).await;
}

/// The call is over: settle the record, end the flow, forget the call.
pub(super) async fn settle(rt: &Runtime, call: &LiveCall, cause: &EndCause) {
    let (activeflow, local_reason, answered) = {
        let mut live = call.inner.live.lock();
        if live.ended {
            return;
        }
        live.ended = true;
        live.failover = false;
        live.peer = None;
        (live.activeflow, live.local_reason.clone(), live.answered)
    };
    let (by, reason) = match local_reason {
        Some(reason) => ("local", reason),
        None => ("remote", cause.cause.voipbin_reason(answered).to_owned()),
    };
    let now = Utc::now();
    if let Err(e) = update_call(rt, call.id(), |c| {
        c.status = CallStatus::Hangup;
        c.hangup_by = by.into();
        c.hangup_reason = reason.clone();
        c.end_cause = Some(cause.clone());
        c.tm_hangup = Some(now);
    }) {
        warn!(call = %call.id(), cause = %e, "call record not updated");
    }
    info!(call = %call.id(), line = %call.line_id(), by, reason = %reason, cause = %cause.cause, q850 = cause.q850, detail = %cause.detail, "call ended");
    call.close_media();
    rt.unregister_call(call);
    call.inner.phase.send_replace(Phase::Ended(cause.clone()));
    if let Some(af) = activeflow {
        // What the flow (and its on-complete follow-up) sees, as VoIPBIN's live call.
        let _ = rt.signal(
            af,
            Signal::SetVariable {
                name: CALL_STATUS_VAR.into(),
                value: CallStatus::Hangup.as_str().into(),
            },
        );
        let _ = rt.signal(af, Signal::Hangup);
    }
}

impl LiveCall {
    pub(super) fn set_status_variable(&self, status: CallStatus) {
        self.to_flow(Signal::SetVariable {
            name: CALL_STATUS_VAR.into(),
            value: status.as_str().into(),
        });
    }
}
