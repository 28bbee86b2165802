//! Calls: modem calls as channels that flows run on.
//!
//! One task per modem listens to its events: an incoming call becomes a [`Call`] record and,
//! when its number has a `call_flow_id`, an activeflow bound to a [`CallChannel`]; state
//! changes update the record (and `voipbin.call.status`); the far end hanging up ends the
//! flow; DTMF goes to the flow. Outbound calls (`POST /calls`, the `call` action) are dialled
//! here too and start their flow when answered.
//!
//! [`CallChannel::perform`] executes the call commands of a flow (answer, hangup, sleep,
//! digits, media…). The media commands go to the call's media session (see `media`).

mod media;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use flowgate_board::modem::ModemHandle;
use flowgate_board::modem::at::types::CallStat;
use flowgate_board::modem::events::{CallEndCause, CallEndReason, CallId, ModemEvent};
use flowgate_flows::engine::{Command, EndReason, Outcome};
use flowgate_flows::model::{Address, CallOption, CommandOption, ReferenceType, parse_actions};

use crate::media::Source;
use futures::FutureExt;
use futures::future::BoxFuture;
use indexmap::IndexMap;
use parking_lot::Mutex;
use tokio::sync::{Notify, broadcast, watch};
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::modems::Modems;
use super::runner::{Channel, Signal};
use super::sms::tel;
use super::{FlowSource, Runtime, RuntimeError, StartRequest};
use crate::metrics::Metrics;
use crate::model::{ActiveflowRecord, Call, CallDirection, CallStatus, Number, derived_id};
use crate::store::{Batch, Db};

/// Live calls, by record id and by (modem, driver call id).
#[derive(Default)]
pub(crate) struct CallTable {
    by_id: HashMap<Uuid, CallChannel>,
    by_modem: HashMap<(String, CallId), Uuid>,
}

/// What to start when an outbound call is answered.
#[derive(Clone)]
struct PendingFlow {
    flow: FlowSource,
    external: IndexMap<String, String>,
}

/// A live call the runtime holds. Cheap to clone.
#[derive(Clone)]
pub(crate) struct CallChannel {
    inner: Arc<CallInner>,
}

struct CallInner {
    rt: Runtime,
    id: Uuid,
    modem: ModemHandle,
    modem_call: CallId,
    live: Mutex<Live>,
    /// The media session (see `media`).
    media: watch::Sender<media::MediaSlot>,
    /// Held while the session is being opened, so it is opened once.
    media_open: tokio::sync::Mutex<()>,
    /// Recordings in progress and what to do when they end.
    recordings: Mutex<HashMap<Uuid, media::RecordingOrigin>>,
    /// Wakes `stop_recording` when a recording's file is complete.
    recording_done: Notify,
}

#[derive(Default)]
struct Live {
    activeflow: Option<Uuid>,
    answered: bool,
    ended: bool,
    /// Set when the gateway hung up (so the record says `hangup_by: local`).
    local_reason: Option<String>,
    /// Outbound: the flow to start on answer (taken when started).
    pending_flow: Option<PendingFlow>,
}

impl CallChannel {
    fn new(rt: &Runtime, id: Uuid, modem: &ModemHandle, modem_call: CallId) -> Self {
        Self {
            inner: Arc::new(CallInner {
                rt: rt.clone(),
                id,
                modem: modem.clone(),
                modem_call,
                live: Mutex::new(Live::default()),
                media: watch::Sender::new(media::initial_slot(&modem.audio_transport())),
                media_open: tokio::sync::Mutex::new(()),
                recordings: Mutex::new(HashMap::new()),
                recording_done: Notify::new(),
            }),
        }
    }

    /// The call record id.
    pub(crate) fn id(&self) -> Uuid {
        self.inner.id
    }

    /// Executes a call command of the flow. `variables` are the flow's variables when the
    /// command needs them (a recording's on-end flow inherits them), else empty.
    pub(crate) fn perform(
        &self,
        command: Command,
        variables: IndexMap<String, String>,
    ) -> BoxFuture<'static, Outcome> {
        let this = self.clone();
        async move { this.perform_inner(command, variables).await }.boxed()
    }

    async fn perform_inner(
        &self,
        command: Command,
        variables: IndexMap<String, String>,
    ) -> Outcome {
        let kind = command.kind();
        match command.option {
            CommandOption::Answer(_) => match self.answer().await {
                Ok(()) => Outcome::Done,
                Err(e) => Outcome::Failed(format!("answer: {e}")),
            },
            CommandOption::Hangup(option) => {
                let reason = if option.reason.is_empty() {
                    "normal".to_owned()
                } else {
                    option.reason
                };
                self.hangup(&reason).await;
                self.close_media();
                Outcome::Hangup
            }
            CommandOption::Sleep(option) => {
                tokio::time::sleep(millis(option.duration)).await;
                Outcome::Done
            }
            CommandOption::DigitsReceive(option) => {
                // Digits arrive through the runner's mailbox (the engine decides when enough
                // have come); this future is only the timeout. VoIPBIN ends at once when
                // `duration` is 0; a caller would expect to be given time, so 0 means the
                // default of 5 s (documented in the README).
                let ms = if option.duration > 0 {
                    option.duration
                } else {
                    DEFAULT_DIGITS_TIMEOUT_MS
                };
                tokio::time::sleep(millis(ms)).await;
                Outcome::Timeout
            }
            CommandOption::DigitsSend(option) => {
                self.send_digits(&option.digits, option.duration, option.interval)
                    .await
            }
            CommandOption::Talk(option) => {
                let source = Source::Tts {
                    text: option.text,
                    language: Some(option.language).filter(|l| !l.is_empty()),
                    voice: Some(option.voice_id).filter(|v| !v.is_empty()),
                };
                self.play_and_wait("talk", source, option.r#async).await
            }
            CommandOption::Play(option) => {
                self.play_and_wait("play", Source::Urls(option.stream_urls), false)
                    .await
            }
            CommandOption::Beep(_) => self.play_and_wait("beep", Source::Beep, false).await,
            CommandOption::Echo(option) | CommandOption::StreamEcho(option) => {
                self.echo(option.duration).await
            }
            CommandOption::RecordingStart(option) => {
                self.flow_recording_start(option, variables).await
            }
            CommandOption::RecordingStop(_) => match self.stop_recording().await {
                Ok(_) => Outcome::Done,
                Err(e) => Outcome::Failed(format!("recording_stop: {e}")),
            },
            // VoIPBIN has no executor for `mute` (it is a no-op there) and the action has no
            // options, so muting here could never be undone by the flow: say so instead.
            CommandOption::Mute(_) => Outcome::Failed(
                "mute: the action has no executor in VoIPBIN; use POST /v1.0/calls/{id}/mute"
                    .into(),
            ),
            _ => Outcome::Failed(format!("{kind}: not a call action")),
        }
    }

    async fn answer(&self) -> Result<(), RuntimeError> {
        if self.inner.live.lock().answered {
            return Ok(());
        }
        self.inner
            .modem
            .answer(self.inner.modem_call)
            .await
            .map_err(RuntimeError::Modem)?;
        self.mark_answered()?;
        Ok(())
    }

    fn mark_answered(&self) -> Result<(), RuntimeError> {
        {
            let mut live = self.inner.live.lock();
            if live.answered {
                return Ok(());
            }
            live.answered = true;
        }
        let now = Utc::now();
        update_call(&self.inner.rt, self.inner.id, |c| {
            c.status = CallStatus::Progressing;
            c.tm_progressing.get_or_insert(now);
        })?;
        self.set_status_variable(CallStatus::Progressing);
        Ok(())
    }

    fn set_status_variable(&self, status: CallStatus) {
        if let Some(af) = self.inner.live.lock().activeflow {
            let _ = self.inner.rt.signal(
                af,
                Signal::SetVariable {
                    name: CALL_STATUS_VAR.into(),
                    value: status.as_str().into(),
                },
            );
        }
    }

    /// Hangs up (idempotent); `reason` is VoIPBIN's hang-up reason for the record.
    pub(crate) async fn hangup(&self, reason: &str) {
        {
            let mut live = self.inner.live.lock();
            if live.ended {
                return;
            }
            live.local_reason.get_or_insert_with(|| reason.to_owned());
        }
        if let Err(e) = self.inner.modem.hangup(self.inner.modem_call).await {
            // The call may already be gone (the far end hung up at the same moment); the
            // CallEnded event settles the record either way.
            debug!(call = %self.inner.id, cause = %e, "hang-up");
        }
    }

    /// The flow on this call ended: hang up if the call is still up (VoIPBIN: FINISH or an
    /// ended activeflow hangs up the call).
    pub(crate) async fn end_of_flow(&self, reason: &EndReason) {
        let hangup_reason = match reason {
            EndReason::Error(_) | EndReason::Guard(_) => "failed",
            _ => "normal",
        };
        self.hangup(hangup_reason).await;
    }
}

impl CallChannel {
    /// Transfers the call.
    pub(crate) async fn transfer(
        &self,
        request: super::TransferRequest,
    ) -> Result<super::Transfer, RuntimeError> {
        use super::{Transfer, TransferType};
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
        if !self.inner.live.lock().answered {
            return Err(RuntimeError::Invalid(
                "only an answered call can be transferred".into(),
            ));
        }
        let rt = &self.inner.rt;
        let modem = self.inner.modem.clone();
        let mut events = modem.subscribe();
        modem.hold(self.inner.modem_call).await?;
        let transferee = match modem.dial(&destination.target).await {
            Ok(call) => call,
            Err(e) => {
                let _ = modem.retrieve(self.inner.modem_call).await;
                return Err(e.into());
            }
        };
        let own = Modems::own_number(&modem).unwrap_or_default();
        let id = Uuid::now_v7();
        let mut record =
            new_call_record(id, &modem, CallDirection::Outgoing, tel(&own), destination);
        record.master_call_id = Some(self.inner.id);
        let db = rt.db();
        let mut batch = Batch::new();
        stage_new_call(&mut batch, db, &record)?;
        db.store.commit(batch)?;
        update_call(rt, self.inner.id, |c| c.chained_call_ids.push(id))?;
        let other = CallChannel::new(rt, id, &modem, transferee);
        rt.register_call(&other);

        let mut transfer = Transfer {
            id: Uuid::now_v7(),
            transfer_type: request.transfer_type,
            transferer_call_id: self.inner.id,
            transferee_call_id: Some(id),
            call_ids: vec![id],
            status: "pending".into(),
        };
        match request.transfer_type {
            TransferType::Blind => {
                self.complete_transfer(&other).await?;
                transfer.status = "transferred".into();
            }
            TransferType::Attended => {
                let this = self.clone();
                rt.spawn(async move {
                    if wait_answered(&mut events, transferee).await {
                        if let Err(e) = this.complete_transfer(&other).await {
                            warn!(call = %this.id(), cause = %e, "attended transfer failed");
                        }
                    } else {
                        info!(call = %this.id(), "transferee did not answer; the caller is taken off hold");
                        other.hangup("noanswer").await;
                        let _ = this.inner.modem.retrieve(this.inner.modem_call).await;
                    }
                });
            }
        }
        Ok(transfer)
    }

    /// ECT: the network joins this (held) call with `other`; both leave the gateway.
    async fn complete_transfer(&self, other: &CallChannel) -> Result<(), RuntimeError> {
        for call in [self, other] {
            call.inner
                .live
                .lock()
                .local_reason
                .get_or_insert_with(|| "normal".to_owned());
        }
        match self
            .inner
            .modem
            .transfer(self.inner.modem_call, other.inner.modem_call)
            .await
        {
            Ok(()) => {
                info!(call = %self.id(), transferee = %other.id(), "transferred by the network");
                Ok(())
            }
            Err(e) => {
                // The network refused: both calls are as they were; give the caller back.
                other.hangup("failed").await;
                let _ = self.inner.modem.retrieve(self.inner.modem_call).await;
                self.inner.live.lock().local_reason = None;
                Err(e.into())
            }
        }
    }
}

const CALL_STATUS_VAR: &str = "voipbin.call.status";
const DEFAULT_DIGITS_TIMEOUT_MS: i64 = 5000;

fn millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms.max(0)).unwrap_or(0))
}

/// Read-modify-write of a call record with a `call_updated` event.
fn update_call(
    rt: &Runtime,
    id: Uuid,
    change: impl FnOnce(&mut Call),
) -> Result<Option<Call>, RuntimeError> {
    let db = rt.db();
    let _guard = rt.inner.call_lock.lock();
    let Some(mut call) = db.calls.get(id)? else {
        return Ok(None);
    };
    change(&mut call);
    call.tm_update = Utc::now();
    let mut batch = Batch::new();
    batch.put(&db.calls, id, &call)?;
    batch.event(
        "call_updated",
        id,
        serde_json::to_value(&call).unwrap_or_default(),
    );
    db.store.commit(batch)?;
    Ok(Some(call))
}

/// The `voipbin.call.*` variables of a call.
fn call_variables(call: &Call) -> IndexMap<String, String> {
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
    vars.insert("voipbin.gateway.modem_id".into(), call.modem_id.clone());
    vars
}

/// Stages a new call record with its `call_created` event.
fn stage_new_call(batch: &mut Batch, db: &Db, record: &Call) -> Result<(), RuntimeError> {
    batch.put(&db.calls, record.id, record)?;
    batch.event(
        "call_created",
        record.id,
        serde_json::to_value(record).unwrap_or_default(),
    );
    Ok(())
}

fn new_call_record(
    id: Uuid,
    modem: &ModemHandle,
    direction: CallDirection,
    source: Address,
    destination: Address,
) -> Call {
    let now = Utc::now();
    Call {
        id,
        modem_id: modem.id().to_owned(),
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
        hold: false,
        mute_direction: String::new(),
        tm_create: now,
        tm_ringing: (direction == CallDirection::Incoming).then_some(now),
        tm_progressing: None,
        tm_hangup: None,
        tm_update: now,
    }
}

impl Runtime {
    /// The live call with this record id.
    pub(crate) fn call_channel(&self, id: Uuid) -> Option<CallChannel> {
        self.inner.calls.lock().by_id.get(&id).cloned()
    }

    fn register_call(&self, channel: &CallChannel) {
        let mut table = self.inner.calls.lock();
        table.by_id.insert(channel.id(), channel.clone());
        table.by_modem.insert(
            (
                channel.inner.modem.id().to_owned(),
                channel.inner.modem_call,
            ),
            channel.id(),
        );
        Metrics::add(&self.inner.metrics.calls_active, 1);
    }

    fn call_by_modem(&self, modem: &str, call: CallId) -> Option<CallChannel> {
        let table = self.inner.calls.lock();
        let id = table.by_modem.get(&(modem.to_owned(), call))?;
        table.by_id.get(id).cloned()
    }

    fn unregister_call(&self, channel: &CallChannel) {
        let mut table = self.inner.calls.lock();
        if table.by_id.remove(&channel.id()).is_some() {
            Metrics::add(&self.inner.metrics.calls_active, -1);
        }
        table.by_modem.remove(&(
            channel.inner.modem.id().to_owned(),
            channel.inner.modem_call,
        ));
    }

    /// Hangs up every live call (shutdown).
    pub async fn hangup_all(&self) {
        let calls: Vec<CallChannel> = self.inner.calls.lock().by_id.values().cloned().collect();
        futures::future::join_all(calls.iter().map(|c| c.hangup("normal"))).await;
    }

    /// Hangs up a call from the API (`POST /calls/{id}/hangup`).
    pub async fn hangup_call(&self, id: Uuid) -> Result<Call, RuntimeError> {
        match self.call_channel(id) {
            Some(channel) => channel.hangup("normal").await,
            None if self.db().calls.contains(id)? => {}
            None => return Err(RuntimeError::CallNotFound(id)),
        }
        self.db()
            .calls
            .get(id)?
            .ok_or(RuntimeError::CallNotFound(id))
    }

    /// Dials `destination` and runs `flow` on the call once it is answered.
    pub async fn dial(&self, request: DialRequest) -> Result<Call, RuntimeError> {
        let modems: &Modems = &self.inner.modems;
        let modem = modems
            .pick(&request.modem_id, &request.source.target)
            .ok_or_else(|| RuntimeError::NoModem("the board has no modem to dial with".into()))?
            .clone();
        let id = request.id.unwrap_or_else(Uuid::now_v7);
        if let Some(existing) = self.db().calls.get(id)? {
            return Ok(existing); // idempotent (a resumed `call` action)
        }
        let number = request.destination.target.clone();
        let modem_call = modem.dial(&number).await.map_err(RuntimeError::Modem)?;
        let mut record = new_call_record(
            id,
            &modem,
            CallDirection::Outgoing,
            request.source.clone(),
            request.destination.clone(),
        );
        record.master_call_id = request.master_call_id;
        if let FlowSource::Stored(flow_id) = &request.flow {
            record.flow_id = Some(*flow_id);
        }
        let db = self.db();
        let mut batch = Batch::new();
        stage_new_call(&mut batch, db, &record)?;
        db.store.commit(batch)?;
        Metrics::inc(&self.inner.metrics.calls_outgoing_total);

        let channel = CallChannel::new(self, id, &modem, modem_call);
        channel.inner.live.lock().pending_flow = Some(PendingFlow {
            flow: request.flow,
            external: request.variables,
        });
        self.register_call(&channel);
        info!(call = %id, modem = modem.id(), %number, "dialling");

        // Events for this call may have been handled before it was registered: catch up
        // with the driver's view (the flow starts at most once either way).
        match modem.calls().into_iter().find(|c| c.call == modem_call) {
            Some(summary) if summary.state == CallStat::Active => on_answered(self, &channel).await,
            Some(_) => {}
            None => {
                // Already over (busy, no answer) before registration; the ended event may
                // have been dropped as unknown, so settle the record here.
                on_ended(
                    self,
                    &channel,
                    &CallEndCause::new(CallEndReason::Released, "dial"),
                )
                .await;
            }
        }
        Ok(self.db().calls.get(id)?.unwrap_or(record))
    }
}

/// An outbound call request.
#[derive(Debug, Clone)]
pub struct DialRequest {
    /// Requested id (the `call` action derives one so a resumed flow does not dial twice).
    pub id: Option<Uuid>,
    /// Our side (the number to send from; picks the modem).
    pub source: Address,
    /// Who to call.
    pub destination: Address,
    /// The flow to run once answered.
    pub flow: FlowSource,
    /// Variables for that flow (untrusted: sanitised by the engine).
    pub variables: IndexMap<String, String>,
    /// The call that asked for this one.
    pub master_call_id: Option<Uuid>,
    /// A modem id to dial through ("" = pick).
    pub modem_id: String,
}

/// The `call` action: dial every destination, each call running the given flow.
pub(crate) async fn dial_from_flow(
    rt: &Runtime,
    parent: &ActiveflowRecord,
    step_key: Uuid,
    option: CallOption,
) -> Outcome {
    if option.destinations.is_empty() {
        return Outcome::Failed("call: no destinations".into());
    }
    let flow = if let Some(flow_id) = option.flow_id.non_nil() {
        FlowSource::Stored(flow_id)
    } else if !option.actions.is_empty() {
        let text = serde_json::Value::Array(option.actions.clone()).to_string();
        match parse_actions(&text, &rt.guards().limits) {
            Ok(actions) => FlowSource::Inline(actions),
            Err(e) => return Outcome::Failed(format!("call: invalid actions: {e}")),
        }
    } else {
        return Outcome::Failed("call: neither flow_id nor actions".into());
    };
    let master = (parent.reference_type == ReferenceType::Call)
        .then_some(parent.reference_id)
        .flatten();
    let mut failures = Vec::new();
    for (i, destination) in option.destinations.iter().enumerate() {
        let request = DialRequest {
            id: Some(derived_id(&["call", &step_key.to_string(), &i.to_string()])),
            source: option.source.clone(),
            destination: destination.clone(),
            flow: flow.clone(),
            variables: IndexMap::new(),
            master_call_id: master,
            modem_id: parent
                .engine
                .variable("voipbin.gateway.modem_id")
                .unwrap_or_default()
                .to_owned(),
        };
        if let Err(e) = rt.dial(request).await {
            failures.push(format!("{}: {e}", destination.target));
        }
    }
    if failures.len() == option.destinations.len() {
        Outcome::Failed(format!("call: {}", failures.join("; ")))
    } else {
        // VoIPBIN: the current flow continues at once; calls that failed to dial are
        // visible as failed call records.
        Outcome::Done
    }
}

/// Listens to one modem's call events until shutdown.
pub(crate) async fn call_events_task(
    rt: Runtime,
    modem: ModemHandle,
    mut events: broadcast::Receiver<ModemEvent>,
) {
    let cancel = rt.cancel_token().clone();
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => return,
            e = events.recv() => e,
        };
        let event = match event {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                warn!(modem = modem.id(), missed = n, "call events lagged");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        match event {
            ModemEvent::IncomingCall { call, number }
                if rt.call_by_modem(modem.id(), call).is_none() =>
            {
                if let Err(e) = on_incoming(&rt, &modem, call, number).await {
                    warn!(modem = modem.id(), cause = %e, "incoming call not handled");
                }
            }
            ModemEvent::CallState { call, state, .. } => {
                if let Some(channel) = rt.call_by_modem(modem.id(), call) {
                    match state {
                        CallStat::Active => on_answered(&rt, &channel).await,
                        CallStat::Alerting => {
                            let _ = update_call(&rt, channel.id(), |c| {
                                c.status = CallStatus::Ringing;
                                c.tm_ringing.get_or_insert_with(Utc::now);
                            });
                            channel.set_status_variable(CallStatus::Ringing);
                        }
                        _ => {}
                    }
                }
            }
            ModemEvent::CallEnded { call, cause } => {
                if let Some(channel) = rt.call_by_modem(modem.id(), call) {
                    on_ended(&rt, &channel, &cause).await;
                }
            }
            ModemEvent::Dtmf { call, digit, .. } => {
                let channel = match call {
                    Some(call) => rt.call_by_modem(modem.id(), call),
                    None => single_call(&rt, modem.id()),
                };
                if let Some(channel) = channel {
                    channel.route_modem_dtmf(digit);
                }
            }
            ModemEvent::AudioReady { call } => {
                if let Some(channel) = rt.call_by_modem(modem.id(), call) {
                    // Opening the voice port must not hold up the other events.
                    rt.spawn(async move { channel.on_audio_ready().await });
                }
            }
            _ => {}
        }
    }
}

/// Whether `call` is answered before it ends (or 60 s pass).
async fn wait_answered(events: &mut broadcast::Receiver<ModemEvent>, call: CallId) -> bool {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(ModemEvent::CallState {
                    call: c,
                    state: CallStat::Active,
                    ..
                }) if c == call => return true,
                Ok(ModemEvent::CallEnded { call: c, .. }) if c == call => return false,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return false,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .unwrap_or(false)
}

fn single_call(rt: &Runtime, modem: &str) -> Option<CallChannel> {
    let table = rt.inner.calls.lock();
    let mut on_modem = table.by_id.values().filter(|c| c.inner.modem.id() == modem);
    let first = on_modem.next()?.clone();
    on_modem.next().is_none().then_some(first)
}

async fn on_incoming(
    rt: &Runtime,
    modem: &ModemHandle,
    modem_call: CallId,
    number: Option<String>,
) -> Result<(), RuntimeError> {
    let db = rt.db();
    let own = Modems::own_number(modem).unwrap_or_default();
    let binding = find_binding(rt, modem, &own)?;
    let id = Uuid::now_v7();
    let caller = number.clone().unwrap_or_default();
    let mut source = tel(&caller);
    if caller.is_empty() {
        source.target_name = "anonymous".into();
    }
    let ours = binding
        .as_ref()
        .map(|b| b.number.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or(own);
    let mut record = new_call_record(id, modem, CallDirection::Incoming, source, tel(&ours));
    Metrics::inc(&rt.metrics().calls_incoming_total);
    let channel = CallChannel::new(rt, id, modem, modem_call);
    rt.register_call(&channel);

    let Some(flow_id) = binding.and_then(|b| b.call_flow_id) else {
        let mut batch = Batch::new();
        stage_new_call(&mut batch, db, &record)?;
        db.store.commit(batch)?;
        warn!(modem = modem.id(), caller = %caller, "incoming call to a number with no call_flow_id: rejecting");
        channel.hangup("failed").await;
        return Ok(());
    };
    record.flow_id = Some(flow_id);
    let mut request = StartRequest::new(FlowSource::Stored(flow_id), ReferenceType::Call, Some(id));
    request.variables = call_variables(&record);
    let mut batch = Batch::new();
    let af = match rt.prepare(request, &mut batch) {
        Ok(af) => af,
        Err(e) => {
            let mut batch = Batch::new();
            stage_new_call(&mut batch, db, &record)?;
            db.store.commit(batch)?;
            warn!(call = %id, flow = %flow_id, cause = %e, "call flow not started: rejecting the call");
            channel.hangup("failed").await;
            return Ok(());
        }
    };
    record.activeflow_id = Some(af.id);
    stage_new_call(&mut batch, db, &record)?;
    db.store.commit(batch)?;
    db.store.flush().await?;
    channel.inner.live.lock().activeflow = Some(af.id);
    info!(call = %id, caller = %caller, activeflow = %af.id, "incoming call");
    rt.launch_with(af, Channel::Call(channel));
    Ok(())
}

fn find_binding(
    rt: &Runtime,
    modem: &ModemHandle,
    own: &str,
) -> Result<Option<Number>, RuntimeError> {
    for entry in rt.db().numbers.iter() {
        let (_, number) = entry?;
        if number.matches(modem.id(), own) {
            return Ok(Some(number));
        }
    }
    Ok(None)
}

/// The call is answered (ours: the far end picked up; theirs: we answered).
async fn on_answered(rt: &Runtime, channel: &CallChannel) {
    if let Err(e) = channel.mark_answered() {
        warn!(call = %channel.id(), cause = %e, "call record not updated");
    }
    let pending = channel.inner.live.lock().pending_flow.take();
    let Some(pending) = pending else { return };
    let Ok(Some(record)) = rt.db().calls.get(channel.id()) else {
        return;
    };
    let mut request = StartRequest::new(pending.flow, ReferenceType::Call, Some(channel.id()));
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
                channel.hangup("failed").await;
                return;
            }
            channel.inner.live.lock().activeflow = Some(af.id);
            info!(call = %record.id, activeflow = %af.id, "outbound call answered; flow started");
            rt.launch_with(af, Channel::Call(channel.clone()));
        }
        Err(e) => {
            warn!(call = %channel.id(), cause = %e, "outbound call flow not started; hanging up");
            channel.hangup("failed").await;
        }
    }
}

/// The call is over: settle the record, end the flow, forget the call.
async fn on_ended(rt: &Runtime, channel: &CallChannel, cause: &CallEndCause) {
    let (activeflow, local_reason, answered) = {
        let mut live = channel.inner.live.lock();
        if live.ended {
            return;
        }
        live.ended = true;
        (live.activeflow, live.local_reason.clone(), live.answered)
    };
    let (by, reason) = match local_reason {
        Some(reason) => ("local", reason),
        None => ("remote", hangup_reason(cause, answered).to_owned()),
    };
    let now = Utc::now();
    if let Err(e) = update_call(rt, channel.id(), |c| {
        c.status = CallStatus::Hangup;
        c.hangup_by = by.into();
        c.hangup_reason = reason.clone();
        c.tm_hangup = Some(now);
    }) {
        warn!(call = %channel.id(), cause = %e, "call record not updated");
    }
    info!(call = %channel.id(), by, reason = %reason, source = %cause.source, "call ended");
    channel.close_media();
    rt.unregister_call(channel);
    if let Some(af) = activeflow {
        let _ = rt.signal(af, Signal::Hangup);
    }
}

/// VoIPBIN's hang-up reason for a remote end.
fn hangup_reason(cause: &CallEndCause, answered: bool) -> &'static str {
    match cause.reason {
        CallEndReason::Busy | CallEndReason::Rejected => "busy",
        CallEndReason::NoAnswer => "noanswer",
        CallEndReason::Missed => "cancel",
        // Handed over to another party by the network (ECT): the gateway's part ended normally.
        CallEndReason::Transferred => "normal",
        CallEndReason::Unreachable | CallEndReason::NetworkFailure | CallEndReason::ModemReset => {
            "failed"
        }
        CallEndReason::LocalHangup | CallEndReason::RemoteHangup | CallEndReason::Released => {
            if answered {
                "normal"
            } else {
                "cancel"
            }
        }
    }
}
