//! SMS: the inbound pipeline and the outbound queue.
//!
//! # Inbound: persist, then acknowledge, then run
//!
//! For each message the modem driver hands over:
//!
//! 1. If its content fingerprint was seen before, it is a re-delivery (the gateway died
//!    after storing it but before the modem deleted it): acknowledge and stop.
//! 2. Store the message, its dedupe marker, its conversation and — when the number has a
//!    `message_flow_id` — a "flow pending" marker, in one batch; **flush**.
//! 3. Acknowledge: only now does the driver delete it from the modem.
//! 4. Create the activeflow and remove the "flow pending" marker in one batch, flush, run.
//!
//! A crash between any two steps loses nothing and runs no flow twice: after 2 the message
//! is stored and step 1 catches the re-delivery; after 2 but before 4 the marker makes
//! [`recover`] start the flow; 4 is atomic.
//!
//! # Outbound: a persistent queue
//!
//! `message_send`, `conversation_send` and `POST /messages` store a message with `queued`
//! targets and a queue marker. One sender task per gateway sends due targets through a modem,
//! retries transient failures with exponential back-off (persisted, so retries survive
//! restarts), and applies delivery reports by the key the driver echoes back.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flowgate_board::crashpoint;
use flowgate_board::modem::events::{DeliveryState, StatusReportEvent};

use flowgate_board::modem::{
    InboundReport, InboundSms, ModemError, ModemHandle, OutgoingSms, PreparedPart, PreparedSms,
    SmsMessage,
};
use flowgate_flows::model::{Address, ReferenceType};
use indexmap::IndexMap;
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};
use uuid::Uuid;

use super::modems::Modems;
use super::{FlowSource, Runtime, RuntimeError, StartRequest};
use crate::metrics::Metrics;
use crate::model::{
    Conversation, FlowState, Message, MessageDirection, MessageTarget, Number, Pending, SmsSeen,
    StoredSms, StoredSmsPart, TargetStatus, derived_id,
};
use crate::store::Batch;

/// Outbound sending policy.
#[derive(Debug, Clone)]
pub struct SmsPolicy {
    /// Attempts before a target is failed.
    pub attempts: u32,
    /// First retry delay (doubles per attempt).
    pub retry_base: Duration,
    /// Ask for delivery reports.
    pub delivery_reports: bool,
}

impl Default for SmsPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            retry_base: Duration::from_secs(5),
            delivery_reports: true,
        }
    }
}

/// A telephone [`Address`].
pub(crate) fn tel(target: &str) -> Address {
    Address {
        kind: "tel".into(),
        target: target.to_owned(),
        ..Address::default()
    }
}

// ----- inbound ---------------------------------------------------------------------------

/// Consumes a modem's inbound messages until shutdown.
pub(crate) async fn inbound_task(rt: Runtime, modem: ModemHandle) {
    let Some(mut rx) = modem.take_sms_receiver() else {
        error!(
            modem = modem.id(),
            "the inbound SMS receiver was already taken"
        );
        return;
    };
    let cancel = rt.cancel_token().clone();
    loop {
        let sms = tokio::select! {
            _ = cancel.cancelled() => return,
            sms = rx.recv() => match sms { Some(s) => s, None => return },
        };
        if let Err(e) = receive(&rt, &modem, sms).await {
            // Not acknowledged (the ack was dropped): the driver hands it out again later.
            error!(modem = modem.id(), cause = %e, "inbound SMS not stored; it stays on the modem");
        }
    }
}

/// Steps 1–4 of the inbound pipeline for one message.
pub(crate) async fn receive(
    rt: &Runtime,
    modem: &ModemHandle,
    sms: InboundSms,
) -> Result<(), RuntimeError> {
    let (message, ack) = sms.into_parts();
    let db = rt.db();
    let seen_id = derived_id(&["sms", &message.modem, &message.fingerprint]);
    if db.sms_seen.contains(seen_id)? {
        Metrics::inc(&rt.metrics().sms_duplicates_total);
        info!(modem = %message.modem, sender = %message.sender, "SMS delivered again after a restart; already stored");
        ack.ack();
        return Ok(());
    }

    let binding = find_binding(rt, modem)?;
    let own = Modems::own_number(modem);
    let self_target = binding
        .as_ref()
        .map(|b| b.number.clone())
        .filter(|n| !n.is_empty())
        .or(own)
        .unwrap_or_else(|| modem.id().to_owned());
    let now = Utc::now();
    let conversation_id = Conversation::id_for(modem.id(), &self_target, &message.sender);
    let conversation = match db.conversations.get(conversation_id)? {
        Some(mut c) => {
            c.tm_update = now;
            c
        }
        None => Conversation {
            id: conversation_id,
            self_address: tel(&self_target),
            peer: peer_address(&message.sender),
            modem_id: modem.id().to_owned(),
            tm_create: now,
            tm_update: now,
        },
    };
    let flow_id = binding.as_ref().and_then(|b| b.message_flow_id);
    let record = inbound_record(&message, &conversation, flow_id.is_some(), now);

    let mut batch = Batch::new();
    batch.put(&db.messages, record.id, &record)?;
    batch.put(
        &db.sms_seen,
        seen_id,
        &SmsSeen {
            message_id: record.id,
            tm_create: now,
        },
    )?;
    batch.put(&db.conversations, conversation.id, &conversation)?;
    if flow_id.is_some() {
        batch.put(&db.sms_flow_pending, record.id, &Pending { tm_create: now })?;
    }
    batch.event(
        "message_created",
        record.id,
        serde_json::to_value(&record).unwrap_or_default(),
    );
    db.store.commit(batch)?;
    db.store.flush().await?;
    crashpoint::reach(crashpoint::INBOUND_STORED);
    ack.ack();
    // The modem deletes it now: a reply waiting for a slot may fit.
    rt.sms_wake().notify_one();
    Metrics::inc(&rt.metrics().sms_received_total);
    debug!(modem = modem.id(), message = %record.id, sender = %message.sender, "SMS stored");

    if let Some(flow_id) = flow_id {
        start_message_flow(rt, record, &conversation, flow_id).await?;
    }
    Ok(())
}

fn peer_address(sender: &str) -> Address {
    // Alphanumeric senders ("InternetSMS") cannot be replied to; keep them visible as such.
    let is_number = sender
        .chars()
        .all(|c| c.is_ascii_digit() || c == '+' || c == '*' || c == '#');
    let mut a = tel(sender);
    if !is_number {
        a.kind = String::new();
        a.target_name = sender.to_owned();
    }
    a
}

fn inbound_record(
    message: &SmsMessage,
    conversation: &Conversation,
    has_flow: bool,
    now: DateTime<Utc>,
) -> Message {
    let text = match &message.error {
        Some(e) if message.text.is_empty() => format!("[undecodable message: {e}]"),
        _ => message.text.clone(),
    };
    Message {
        id: Uuid::now_v7(),
        kind: "sms".into(),
        direction: MessageDirection::Inbound,
        source: conversation.peer.clone(),
        targets: vec![MessageTarget {
            destination: conversation.self_address.clone(),
            status: TargetStatus::Received,
            parts: u32::from(message.parts),
            references: Vec::new(),
            delivered_parts: 0,
            attempts: 0,
            next_attempt: None,
            prepared: None,
            error: if message.complete {
                String::new()
            } else {
                format!("parts missing: {:?}", message.missing_parts)
            },
            tm_update: now,
        }],
        text,
        modem_id: message.modem.clone(),
        tm_sent_by_network: message.timestamp.map(|t| t.with_timezone(&Utc)),
        incomplete: !message.complete,
        flow_state: if has_flow {
            FlowState::Pending
        } else {
            FlowState::None
        },
        activeflow_id: None,
        tm_create: now,
        tm_update: now,
    }
}

fn find_binding(rt: &Runtime, modem: &ModemHandle) -> Result<Option<Number>, RuntimeError> {
    let own = Modems::own_number(modem).unwrap_or_default();
    for entry in rt.db().numbers.iter() {
        let (_, number) = entry?;
        if number.matches(modem.id(), &own) {
            return Ok(Some(number));
        }
    }
    Ok(None)
}

/// The variables a message flow starts with (reference §4, conversation names; the engine
/// answers the legacy `voipbin.message.*` names as aliases).
fn message_variables(message: &Message, conversation: &Conversation) -> IndexMap<String, String> {
    let mut vars = IndexMap::new();
    vars.insert(
        "voipbin.conversation.id".into(),
        conversation.id.to_string(),
    );
    vars.insert(
        "voipbin.conversation.owner_id".into(),
        Uuid::nil().to_string(),
    );
    for (side, address) in [
        ("self", &conversation.self_address),
        ("peer", &conversation.peer),
    ] {
        vars.insert(
            format!("voipbin.conversation.{side}.type"),
            address.kind.clone(),
        );
        vars.insert(
            format!("voipbin.conversation.{side}.target"),
            address.target.clone(),
        );
        vars.insert(
            format!("voipbin.conversation.{side}.target_name"),
            address.target_name.clone(),
        );
        vars.insert(
            format!("voipbin.conversation.{side}.name"),
            address.name.clone(),
        );
        vars.insert(
            format!("voipbin.conversation.{side}.detail"),
            address.detail.clone(),
        );
    }
    vars.insert(
        "voipbin.conversation_message.id".into(),
        message.id.to_string(),
    );
    vars.insert(
        "voipbin.conversation_message.text".into(),
        message.text.clone(),
    );
    vars.insert(
        "voipbin.conversation_message.direction".into(),
        "incoming".into(),
    );
    vars.insert(
        "voipbin.gateway.modem_id".into(),
        conversation.modem_id.clone(),
    );
    // The conversation with VoIPBIN's field names (`self`, `peer`).
    let data = serde_json::json!({
        "id": conversation.id,
        "self": conversation.self_address,
        "peer": conversation.peer,
        "tm_create": conversation.tm_create,
        "tm_update": conversation.tm_update,
    });
    vars.insert(
        flowgate_flows::vars::REFERENCE_DATA.into(),
        data.to_string(),
    );
    vars
}

/// Step 4: create the message's activeflow and clear its pending marker atomically.
async fn start_message_flow(
    rt: &Runtime,
    mut message: Message,
    conversation: &Conversation,
    flow_id: Uuid,
) -> Result<(), RuntimeError> {
    let db = rt.db();
    let mut request = StartRequest::new(
        FlowSource::Stored(flow_id),
        ReferenceType::Conversation,
        Some(conversation.id),
    );
    request.variables = message_variables(&message, conversation);
    let mut batch = Batch::new();
    let record = match rt.prepare(request, &mut batch) {
        Ok(r) => r,
        Err(e @ (RuntimeError::FlowNotFound(_) | RuntimeError::Engine(_))) => {
            // The binding points at a flow that is gone or invalid: the message stays stored,
            // with no flow, and the reason is logged.
            warn!(message = %message.id, flow = %flow_id, cause = %e, "message flow not started");
            let mut batch = Batch::new();
            message.flow_state = FlowState::None;
            message.tm_update = Utc::now();
            batch.put(&db.messages, message.id, &message)?;
            batch.remove(&db.sms_flow_pending, message.id);
            batch.event(
                "message_updated",
                message.id,
                serde_json::to_value(&message).unwrap_or_default(),
            );
            db.store.commit(batch)?;
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    message.flow_state = FlowState::Started;
    message.activeflow_id = Some(record.id);
    message.tm_update = Utc::now();
    batch.put(&db.messages, message.id, &message)?;
    batch.remove(&db.sms_flow_pending, message.id);
    batch.event(
        "message_updated",
        message.id,
        serde_json::to_value(&message).unwrap_or_default(),
    );
    db.store.commit(batch)?;
    db.store.flush().await?;
    crashpoint::reach(crashpoint::FLOW_STARTED);
    rt.launch(record);
    Ok(())
}

/// Starts the flows of messages that were stored but whose flow never started.
pub(crate) async fn recover(rt: &Runtime) -> Result<usize, RuntimeError> {
    let db = rt.db();
    let pending: Vec<Uuid> = db
        .sms_flow_pending
        .iter()
        .map(|e| e.map(|(id, _)| id))
        .collect::<Result<_, _>>()?;
    let mut started = 0;
    for id in pending {
        let Some(message) = db.messages.get(id)? else {
            db.sms_flow_pending.remove(id)?;
            continue;
        };
        let conversation_id = Conversation::id_for(
            &message.modem_id,
            &target_of(&message),
            &message.source.target,
        );
        let Some(conversation) = db.conversations.get(conversation_id)? else {
            warn!(message = %id, "conversation of a pending message is missing; flow not started");
            db.sms_flow_pending.remove(id)?;
            continue;
        };
        let modem_binding = rt.db().numbers.iter().find_map(|e| {
            e.ok()
                .map(|(_, n)| n)
                .filter(|n| n.matches(&message.modem_id, &conversation.self_address.target))
        });
        match modem_binding.and_then(|b| b.message_flow_id) {
            Some(flow_id) => {
                start_message_flow(rt, message, &conversation, flow_id).await?;
                started += 1;
            }
            None => {
                db.sms_flow_pending.remove(id)?;
            }
        }
    }
    Ok(started)
}

fn target_of(message: &Message) -> String {
    message
        .targets
        .first()
        .map(|t| t.destination.target.clone())
        .unwrap_or_default()
}

// ----- outbound --------------------------------------------------------------------------

/// Stores an outbound message (idempotent on `id`) and wakes the sender.
pub(crate) fn queue_outbound(
    rt: &Runtime,
    id: Uuid,
    activeflow_id: Option<Uuid>,
    source: Address,
    destinations: Vec<Address>,
    text: String,
    modem_id: String,
) -> Result<Message, RuntimeError> {
    let db = rt.db();
    if let Some(existing) = db.messages.get(id)? {
        return Ok(existing);
    }
    let now = Utc::now();
    let message = Message {
        id,
        kind: "sms".into(),
        direction: MessageDirection::Outbound,
        source,
        targets: destinations
            .into_iter()
            .map(|destination| MessageTarget {
                destination,
                status: TargetStatus::Queued,
                parts: 0,
                references: Vec::new(),
                delivered_parts: 0,
                attempts: 0,
                next_attempt: Some(now),
                prepared: None,
                error: String::new(),
                tm_update: now,
            })
            .collect(),
        text,
        modem_id,
        tm_sent_by_network: None,
        incomplete: false,
        flow_state: FlowState::None,
        activeflow_id,
        tm_create: now,
        tm_update: now,
    };
    let mut batch = Batch::new();
    batch.put(&db.messages, id, &message)?;
    batch.put(&db.sms_queue, id, &Pending { tm_create: now })?;
    batch.event(
        "message_created",
        id,
        serde_json::to_value(&message).unwrap_or_default(),
    );
    db.store.commit(batch)?;
    rt.sms_wake().notify_one();
    Ok(message)
}

/// The outbound sender: sends due targets, sleeps until the next retry or a wake-up.
pub(crate) async fn sender_task(rt: Runtime) {
    let cancel = rt.cancel_token().clone();
    let modems = rt.modems().clone();
    let policy = rt.inner.options.sms.clone();
    let wake = rt.inner.sms_wake.clone();
    if let Err(e) = reconcile_storage(&rt, &modems) {
        warn!(cause = %e, "outbound storage not reconciled");
    }
    loop {
        let next = match send_due(&rt, &modems, &policy).await {
            Ok(next) => next,
            Err(e) => {
                error!(cause = %e, "SMS sender could not read its queue");
                Some(Utc::now() + chrono::Duration::seconds(5))
            }
        };
        let sleep = next
            .map(|t| (t - Utc::now()).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}

/// Sends every due target; returns when the next retry is due, if any.
async fn send_due(
    rt: &Runtime,
    modems: &Modems,
    policy: &SmsPolicy,
) -> Result<Option<DateTime<Utc>>, RuntimeError> {
    let db = rt.db();
    let queued: Vec<Uuid> = db
        .sms_queue
        .iter()
        .map(|e| e.map(|(id, _)| id))
        .collect::<Result<_, _>>()?;
    let mut next: Option<DateTime<Utc>> = None;
    for id in queued {
        if rt.cancel_token().is_cancelled() {
            break;
        }
        let Some(message) = db.messages.get(id)? else {
            db.sms_queue.remove(id)?;
            continue;
        };
        for index in 0..message.targets.len() {
            let target = &message.targets[index];
            let due = target.status == TargetStatus::Queued
                && target.next_attempt.is_none_or(|at| at <= Utc::now());
            if !due {
                continue;
            }
            let settled = send_target(rt, modems, policy, &message, index).await?;
            match settled.status {
                TargetStatus::Sent => Metrics::inc(&rt.metrics().sms_sent_total),
                TargetStatus::Failed => Metrics::inc(&rt.metrics().sms_failed_total),
                _ => {}
            }
            let waits_for_room = settled.status == TargetStatus::Queued
                && settled.attempts == message.targets[index].attempts;
            store_target(rt, id, index, &settled).await?;
            if waits_for_room {
                // Modem storage is full: later messages would wait too, and keeping the
                // queue's order means not overtaking this one.
                if let Some(at) = settled.next_attempt {
                    next = Some(next.map_or(at, |n| n.min(at)));
                }
                return Ok(next);
            }
        }
        let Some(message) = db.messages.get(id)? else {
            continue;
        };
        if message
            .targets
            .iter()
            .all(|t| t.status != TargetStatus::Queued)
        {
            db.sms_queue.remove(id)?;
        }
        for t in message
            .targets
            .iter()
            .filter(|t| t.status == TargetStatus::Queued)
        {
            if let Some(at) = t.next_attempt {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
    }
    Ok(next)
}

/// Stores one target's new state and flushes: the modem's view of the message changed, and
/// a crash must find the gateway's record agreeing with it.
async fn store_target(
    rt: &Runtime,
    id: Uuid,
    index: usize,
    target: &MessageTarget,
) -> Result<(), RuntimeError> {
    update_message(rt, id, |m| {
        if let Some(t) = m.targets.get_mut(index) {
            // A delivery report may have landed meanwhile (status, delivered parts); what
            // the send decided wins for the rest.
            let delivered = t.delivered_parts;
            *t = target.clone();
            t.delivered_parts = t.delivered_parts.max(delivered);
            // Reports that landed before the send was recorded (read after a crash) count.
            if t.status == TargetStatus::Sent && t.delivered_parts >= t.parts.max(1) {
                t.status = TargetStatus::Delivered;
            }
        }
    })?;
    rt.db().store.flush().await?;
    Ok(())
}

/// At start-up: tell each modem which stored outgoing messages the gateway still refers to,
/// so orphans of a crash between `AT+CMGW` and persisting the slots are deleted, not sent.
/// One task per modem, so a modem that never becomes ready holds up nothing else (the
/// driver keeps slots it is preparing or sending meanwhile).
fn reconcile_storage(rt: &Runtime, modems: &Modems) -> Result<(), RuntimeError> {
    let db = rt.db();
    let mut keep: HashMap<String, Vec<PreparedSms>> = HashMap::new();
    for entry in db.sms_queue.iter() {
        let (id, _) = entry?;
        if let Some(message) = db.messages.get(id)? {
            for stored in message.targets.into_iter().filter_map(|t| t.prepared) {
                let prepared = PreparedSms::from(stored);
                keep.entry(prepared.modem.clone())
                    .or_default()
                    .push(prepared);
            }
        }
    }
    for modem in modems.iter() {
        let modem = modem.clone();
        let kept = keep.remove(modem.id()).unwrap_or_default();
        let cancel = rt.cancel_token().clone();
        rt.spawn(async move {
            let ready = tokio::select! {
                _ = cancel.cancelled() => return,
                r = modem.wait_ready(Duration::from_secs(600)) => r,
            };
            if ready.is_err() {
                warn!(
                    modem = modem.id(),
                    "not ready; outbound storage not reconciled"
                );
                return;
            }
            match modem.reconcile_outbound(&kept).await {
                Ok(report) if !report.deleted.is_empty() => {
                    info!(
                        modem = modem.id(),
                        deleted = report.deleted.len(),
                        "deleted stored outgoing SMS no message refers to"
                    );
                }
                Ok(_) => {}
                Err(e) => warn!(modem = modem.id(), cause = %e, "outbound storage not reconciled"),
            }
        });
    }
    Ok(())
}

/// Read-modify-write of one message under the runtime's message lock, with a
/// `message_updated` event. The closure must not block.
fn update_message(
    rt: &Runtime,
    id: Uuid,
    change: impl FnOnce(&mut Message),
) -> Result<Option<Message>, RuntimeError> {
    let db = rt.db();
    let _guard = rt.inner.message_lock.lock();
    let Some(mut message) = db.messages.get(id)? else {
        return Ok(None);
    };
    change(&mut message);
    message.tm_update = Utc::now();
    let mut batch = Batch::new();
    batch.put(&db.messages, id, &message)?;
    batch.event(
        "message_updated",
        id,
        serde_json::to_value(&message).unwrap_or_default(),
    );
    db.store.commit(batch)?;
    Ok(Some(message))
}

/// The key the driver echoes in status reports: `<message id>/<target index>`.
fn report_key(message: Uuid, index: usize) -> String {
    format!("{message}/{index}")
}

/// Sends one target exactly once, through modem storage where the modem allows it:
/// prepare (`AT+CMGW`) → persist + flush → send from storage. Returns the target as it is
/// after the attempt.
async fn send_target(
    rt: &Runtime,
    modems: &Modems,
    policy: &SmsPolicy,
    message: &Message,
    index: usize,
) -> Result<MessageTarget, RuntimeError> {
    let mut target = message.targets[index].clone();
    let to = target.destination.target.clone();
    let now = Utc::now();
    target.attempts += 1;
    target.tm_update = now;

    let result = async {
        let prepared = match target.prepared.clone() {
            // Written to storage by an earlier attempt (maybe before a crash): only the
            // modem that holds it can settle it.
            Some(stored) => PreparedSms::from(stored),
            None => {
                let modem = modems
                    .pick(&message.modem_id, &message.source.target)
                    .ok_or_else(no_modem)?;
                let sms = OutgoingSms {
                    to: to.clone(),
                    text: message.text.clone(),
                    status_report: Some(policy.delivery_reports),
                    key: Some(report_key(message.id, index)),
                };
                let prepared = match modem.prepare_sms(sms).await {
                    Ok(p) => p,
                    // No room in the modem's write memory: nothing was sent; the message
                    // stays queued and waits (not an attempt) while received messages drain.
                    Err(e @ ModemError::StorageFull(_)) => return Err((e.to_string(), None)),
                    Err(e) => return Err(modem_failure(e)),
                };
                crashpoint::reach(crashpoint::REPLY_PREPARED);
                target.prepared = Some(StoredSms::from(&prepared));
                store_target(rt, message.id, index, &target)
                    .await
                    .map_err(|e| (e.to_string(), Some(true)))?;
                crashpoint::reach(crashpoint::REPLY_STORED);
                prepared
            }
        };
        let modem = modems.get(&prepared.modem).ok_or_else(|| {
            (
                format!(
                    "modem {} holding the prepared message is not on this board",
                    prepared.modem
                ),
                Some(false),
            )
        })?;
        let sent = modem
            .send_prepared(&prepared)
            .await
            .map_err(modem_failure)?;
        crashpoint::reach(crashpoint::REPLY_SENT);
        Ok(sent)
    }
    .await;

    match result {
        Ok(sent) => {
            target.status = TargetStatus::Sent;
            target.references = sent.message_references;
            target.parts = u32::try_from(sent.parts).unwrap_or(u32::MAX);
            target.next_attempt = None;
            target.prepared = None;
            target.error.clear();
            debug!(message = %message.id, %to, parts = sent.parts, "SMS sent");
        }
        Err((error, None)) => {
            target.attempts -= 1;
            target.error = error;
            // Woken earlier by every stored inbound message (its deletion frees a slot).
            let wait = policy.retry_base.min(Duration::from_secs(2));
            target.next_attempt = Some(
                now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(2)),
            );
            info!(message = %message.id, %to, error = %target.error, "SMS waits for room in modem storage");
        }
        Err((error, Some(transient))) => {
            target.error = error;
            if transient && target.attempts < policy.attempts {
                let factor = 1u32 << target.attempts.min(10);
                let delay = policy.retry_base.saturating_mul(factor);
                target.next_attempt = Some(
                    now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1)),
                );
                warn!(message = %message.id, %to, attempt = target.attempts, error = %target.error, "SMS send failed; will retry");
            } else {
                target.status = TargetStatus::Failed;
                target.next_attempt = None;
                if let Some(prepared) = target.prepared.take().map(PreparedSms::from)
                    && let Some(modem) = modems.get(&prepared.modem)
                    && let Err(e) = modem.discard_prepared(&prepared).await
                {
                    warn!(message = %message.id, cause = %e, "stored parts of a failed SMS not deleted");
                }
                warn!(message = %message.id, %to, attempts = target.attempts, error = %target.error, "SMS send failed for good");
            }
        }
    }
    Ok(target)
}

/// Why a send did not settle, and whether a retry may cure it: `Some(transient)`, or
/// `None` for "no room in modem storage yet" (waits without counting as an attempt).
type SendFailure = (String, Option<bool>);

fn no_modem() -> SendFailure {
    ("the board has no modem".to_owned(), Some(false))
}

fn modem_failure(e: ModemError) -> SendFailure {
    let transient = e.is_transient();
    (e.to_string(), Some(transient))
}

/// Applies delivery reports from one modem until shutdown.
pub(crate) async fn reports_task(rt: Runtime, mut reports: mpsc::Receiver<InboundReport>) {
    let cancel = rt.cancel_token().clone();
    loop {
        let report = tokio::select! {
            _ = cancel.cancelled() => return,
            r = reports.recv() => match r { Some(r) => r, None => return },
        };
        // Persist, then acknowledge: the modem deletes a stored report only after this.
        match apply_report(&rt, &report.report) {
            Ok(()) => match rt.db().store.flush().await {
                Ok(()) => {
                    crashpoint::reach(crashpoint::REPORT_APPLIED);
                    report.ack();
                }
                Err(e) => warn!(cause = %e, "delivery report not flushed; it stays on the modem"),
            },
            Err(e) => warn!(cause = %e, "delivery report not applied; it stays on the modem"),
        }
    }
}

fn apply_report(rt: &Runtime, report: &StatusReportEvent) -> Result<(), RuntimeError> {
    let found = match report.key.as_deref().and_then(parse_key) {
        Some(k) => Some(k),
        // The driver matches reports to keys by the message references it remembers; a
        // report read after a restart (stored by the modem while the gateway was down) has
        // no key: find the message by recipient and message reference instead.
        None => find_sent_target(rt, report)?,
    };
    let Some((id, index)) = found else {
        debug!(
            mr = report.message_reference,
            "status report for a message this gateway did not send"
        );
        return Ok(());
    };
    if report.delivery == DeliveryState::Pending {
        return Ok(());
    }
    update_message(rt, id, |message| {
        let Some(target) = message.targets.get_mut(index) else {
            return;
        };
        if target.status == TargetStatus::Queued {
            // Its send is settled after a restart: count the part now, and let the send
            // decide the status (store_target merges the count).
            if report.delivery == DeliveryState::Delivered {
                target.delivered_parts = target.delivered_parts.saturating_add(1);
            }
            return;
        }
        match report.delivery {
            DeliveryState::Pending => {}
            DeliveryState::Delivered => {
                target.delivered_parts = target.delivered_parts.saturating_add(1);
                if target.delivered_parts >= target.parts.max(1) {
                    target.status = TargetStatus::Delivered;
                }
            }
            DeliveryState::Failed => {
                target.status = TargetStatus::Failed;
                target.error = format!(
                    "the network reported delivery failure (TP-ST 0x{:02x})",
                    report.status
                );
            }
        }
        target.tm_update = Utc::now();
    })?;
    Ok(())
}

/// The outbound target a keyless status report belongs to: the newest target to the
/// report's recipient still waiting for reports (`sent`) whose message references include
/// the report's; failing that, the newest such target whose references are incomplete (a
/// part found already sent after a crash has no known reference).
fn find_sent_target(
    rt: &Runtime,
    report: &StatusReportEvent,
) -> Result<Option<(Uuid, usize)>, RuntimeError> {
    let mut by_ref: Option<(DateTime<Utc>, Uuid, usize)> = None;
    let mut unknown_ref: Option<(DateTime<Utc>, Uuid, usize)> = None;
    for entry in rt.db().messages.iter() {
        let (id, message) = entry?;
        if message.direction != MessageDirection::Outbound {
            continue;
        }
        for (index, t) in message.targets.iter().enumerate() {
            // A target still queued with prepared slots may have gone out just before a
            // crash; its send is settled after the restart, maybe after its report.
            let waiting = t.status == TargetStatus::Sent
                || (t.status == TargetStatus::Queued && t.prepared.is_some());
            if !waiting || !same_number(&t.destination.target, &report.recipient) {
                continue;
            }
            // A queued target's part count is only in its prepared slots (`parts` is set when
            // the send settles): counting 0 there lost the report of a reply that went out
            // just before a crash and was settled after it.
            let parts = usize::try_from(t.parts)
                .unwrap_or(usize::MAX)
                .max(t.prepared.as_ref().map_or(0, |p| p.parts.len()));
            let slot = if t.references.contains(&report.message_reference) {
                &mut by_ref
            } else if t.references.len() < parts {
                &mut unknown_ref
            } else {
                continue;
            };
            if slot
                .as_ref()
                .is_none_or(|(at, _, _)| message.tm_create > *at)
            {
                *slot = Some((message.tm_create, id, index));
            }
        }
    }
    Ok(by_ref.or(unknown_ref).map(|(_, id, index)| (id, index)))
}

/// Two renderings of a number are the same subscriber (`+1555…` and `1555…`).
fn same_number(a: &str, b: &str) -> bool {
    a.trim_start_matches('+') == b.trim_start_matches('+')
}

fn parse_key(key: &str) -> Option<(Uuid, usize)> {
    let (id, index) = key.split_once('/')?;
    Some((Uuid::parse_str(id).ok()?, index.parse().ok()?))
}

/// The store's copy of a prepared message (the model owns its types).
impl From<&PreparedSms> for StoredSms {
    fn from(p: &PreparedSms) -> Self {
        StoredSms {
            modem: p.modem.clone(),
            mem: p.mem.clone(),
            to: p.to.clone(),
            key: p.key.clone(),
            parts: p
                .parts
                .iter()
                .map(|part| StoredSmsPart {
                    index: part.index,
                    pdu: part.pdu.clone(),
                    tpdu_len: part.tpdu_len,
                })
                .collect(),
        }
    }
}

/// The driver's prepared message again, from the store's copy (after a restart).
impl From<StoredSms> for PreparedSms {
    fn from(s: StoredSms) -> Self {
        PreparedSms {
            modem: s.modem,
            mem: s.mem,
            to: s.to,
            key: s.key,
            parts: s
                .parts
                .into_iter()
                .map(|part| PreparedPart {
                    index: part.index,
                    pdu: part.pdu,
                    tpdu_len: part.tpdu_len,
                })
                .collect(),
        }
    }
}
