//! The call record (VoIPBIN's call, plus the line it is on) and its events, and the
//! `voipbin.call.*` variables a call flow starts with.

use chrono::Utc;
use flowgate_flows::model::Address;
use flowgate_flows::vars::REFERENCE_DATA;
use flowgate_line::{Line, Transport};
use indexmap::IndexMap;
use uuid::Uuid;

use crate::model::{Call, CallDirection, CallStatus};
use crate::runtime::mailbox::Signal;
use crate::runtime::{Runtime, RuntimeError};
use crate::store::{Batch, Db};

/// The trusted variable the runtime keeps in step with the call's status.
pub(super) const CALL_STATUS_VAR: &str = "voipbin.call.status";

/// Read-modify-write of a call record with a `call_updated` event.
pub(super) fn update_call(
    rt: &Runtime,
    id: Uuid,
    change: impl FnOnce(&mut Call),
) -> Result<Option<Call>, RuntimeError> {
    update_call_with(rt, id, Batch::new(), change)
}

/// [`update_call`] committed in one transaction with `batch`'s writes, for a change of the
/// call that must not be seen apart from another record's (a recording that ended and the
/// call that no longer holds it).
pub(super) fn update_call_with(
    rt: &Runtime,
    id: Uuid,
    mut batch: Batch,
    change: impl FnOnce(&mut Call),
) -> Result<Option<Call>, RuntimeError> {
    let db = rt.db();
    let _guard = rt.inner.call_lock.lock();
    let Some(mut call) = db.calls.get(id)? else {
        db.store.commit(batch)?;
        return Ok(None);
    };
    change(&mut call);
    call.tm_update = Utc::now();
    // The call's public JSON, serialized once: the event's data and the flow's
    // `voipbin.flow.reference_data` are the same text.
    let json = reference_data(&call);
    batch.put(&db.calls, id, &call)?;
    batch.event_json("call_updated", id, json.clone());
    db.store.commit(batch)?;
    // The call's flow sees the call as it is now (VoIPBIN resolves the variable live).
    if let Some(af) = call.activeflow_id {
        let _ = rt.signal(
            af,
            Signal::SetVariable {
                name: REFERENCE_DATA.into(),
                value: json,
            },
        );
    }
    Ok(Some(call))
}

/// The `voipbin.call.*` variables of a call (and the gateway's own: the line).
pub(super) fn call_variables(call: &Call) -> IndexMap<String, String> {
    let mut vars = IndexMap::new();
    vars.insert("voipbin.call.id".into(), call.id.to_string());
    vars.insert(
        "voipbin.call.direction".into(),
        match call.direction {
            CallDirection::Incoming => "incoming",
            CallDirection::Outgoing => "outgoing",
        }
        .into(),
    );
    vars.insert(
        "voipbin.call.master_call_id".into(),
        call.master_call_id.unwrap_or_else(Uuid::nil).to_string(),
    );
    vars.insert("voipbin.call.digits".into(), String::new());
    vars.insert(CALL_STATUS_VAR.into(), call.status.as_str().into());
    for (side, a) in [("source", &call.source), ("destination", &call.destination)] {
        vars.insert(format!("voipbin.call.{side}.name"), a.name.clone());
        vars.insert(format!("voipbin.call.{side}.detail"), a.detail.clone());
        vars.insert(format!("voipbin.call.{side}.target"), a.target.clone());
        vars.insert(
            format!("voipbin.call.{side}.target_name"),
            a.target_name.clone(),
        );
        vars.insert(format!("voipbin.call.{side}.type"), a.kind.clone());
    }
    vars.insert("voipbin.gateway.line_id".into(), call.line_id.clone());
    vars.insert(
        "voipbin.gateway.transport".into(),
        call.transport.as_str().into(),
    );
    // Kept for flows written before lines: the modem's id on modem calls.
    vars.insert("voipbin.gateway.modem_id".into(), call.modem_id.clone());
    vars.insert(REFERENCE_DATA.into(), reference_data(call));
    vars
}

/// `voipbin.flow.reference_data`: the call as `GET /v1.0/calls/{id}` serves it.
fn reference_data(call: &Call) -> String {
    serde_json::to_string(call).unwrap_or_default()
}

/// Stages a new call record with its `call_created` event.
pub(super) fn stage_new_call(
    batch: &mut Batch,
    db: &Db,
    record: &Call,
) -> Result<(), RuntimeError> {
    batch.put(&db.calls, record.id, record)?;
    batch.event_of("call_created", record.id, record);
    Ok(())
}

/// Commits a new call record with its `call_created` event.
pub(super) fn store_new_call(rt: &Runtime, record: &Call) -> Result<(), RuntimeError> {
    let db = rt.db();
    let mut batch = Batch::new();
    stage_new_call(&mut batch, db, record)?;
    db.store.commit(batch)?;
    Ok(())
}

/// Points a record at `line` (a new call, or an outbound call failed over to another
/// line).
pub(super) fn set_line(call: &mut Call, line: &dyn Line) {
    call.line_id = line.id().to_owned();
    call.transport = line.transport();
    call.modem_id = if line.transport() == Transport::Modem {
        call.line_id.clone()
    } else {
        String::new()
    };
    // Another line's identifiers do not describe the leg any more.
    call.sip_call_id.clear();
    call.remote_uri.clear();
}

/// A new call record on `line`.
pub(super) fn new_call_record(
    id: Uuid,
    line: &dyn Line,
    direction: CallDirection,
    source: Address,
    destination: Address,
) -> Call {
    let now = Utc::now();
    let mut call = Call {
        id,
        line_id: String::new(),
        transport: line.transport(),
        modem_id: String::new(),
        direction,
        source,
        destination,
        status: match direction {
            CallDirection::Incoming => CallStatus::Ringing,
            CallDirection::Outgoing => CallStatus::Dialing,
        },
        flow_id: None,
        activeflow_id: None,
        master_call_id: None,
        chained_call_ids: Vec::new(),
        recording_id: None,
        recording_ids: Vec::new(),
        hangup_by: String::new(),
        hangup_reason: String::new(),
        end_cause: None,
        hold: false,
        mute_direction: String::new(),
        sip_call_id: String::new(),
        remote_uri: String::new(),
        tm_create: now,
        tm_ringing: (direction == CallDirection::Incoming).then_some(now),
        tm_progressing: None,
        tm_hangup: None,
        tm_update: now,
    };
    set_line(&mut call, line);
    set_details(&mut call, line, id);
    call
}

/// Records what the line knows of the leg (SIP Call-ID, remote URI); nothing changes for
/// lines that know nothing.
pub(super) fn set_details(call: &mut Call, line: &dyn Line, leg: Uuid) {
    let details = line.leg_details(leg);
    call.sip_call_id = details.call_id;
    call.remote_uri = details.remote_uri;
}
