//! Runs activeflows: each one is a tokio task (a *runner*) that asks the engine for the next
//! command, performs it on the right channel (a call, the SMS queue, HTTP), feeds the outcome
//! back, and persists the engine state after every step.
//!
//! # Layout
//!
//! - [`Runtime`] (this file): the hub — creates activeflows, holds the mailbox of every live
//!   runner, routes interrupts, resumes flows after a restart.
//! - `runner`: one activeflow's task loop (engine ↔ executor ↔ mailbox); `mailbox`: what
//!   can be said to a runner.
//! - `commands`: where every engine command is performed (call commands go to the call;
//!   HTTP, the flow store, SMS, outbound calls and the clear failures are here).
//! - `calls`: live calls — legs on the gateway's lines (see `flowgate_line`), their records,
//!   media, dialling with fail-over, `connect`, transfers.
//! - `lines`: the registry of lines and the routing table; `modems`: the modems, for SMS and
//!   USSD, which stay modem features.
//! - `sms`: inbound SMS (persist, then acknowledge, then start the flow) and the outbound
//!   queue with retries and delivery reports.
//!
//! # Crash safety
//!
//! An activeflow is stored (and flushed) before it starts running and after every step. At
//! start-up [`Runtime::recover`] resumes API and message flows from their stored state,
//! ends flows that were on a call (the call did not survive the restart) with a recorded
//! reason, and starts the flows of inbound messages that were stored but not yet started.

mod calls;
mod commands;
pub mod email;
mod interrupts;
mod lines;
mod mailbox;
mod modems;
mod runner;
mod sms;
pub mod transcribe;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use flowgate_flows::engine::{
    Activeflow, ActiveflowSpec, EndReason, EngineError, ForwardEffect, Guards, OnComplete,
};
use flowgate_flows::model::{Action, ReferenceType};
use indexmap::IndexMap;
use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};
use uuid::Uuid;

use crate::metrics::Metrics;
use crate::model::{ActiveflowRecord, ActiveflowStatus};
use crate::store::{Batch, Db, StoreError};

pub use calls::DialRequest;
pub use calls::conference::{
    ConferenceInfo, ConferenceRecordingRequest, ConferenceRequest, ConferenceStatus,
    ConferenceType, Conferencecall,
};
pub(crate) use calls::valid_routing_method;
pub use interrupts::{
    MuteDirection, RecordingRequest, TalkRequest, Transfer, TransferRequest, TransferType,
};
pub use lines::{Lines, Route, RouteError, Routes};
pub(crate) use mailbox::Signal;
pub use modems::Modems;
pub use sms::SmsPolicy;

/// Errors of the runtime's operations (API-facing).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A referenced flow does not exist.
    #[error("flow {0} does not exist")]
    FlowNotFound(Uuid),
    /// The activeflow does not exist.
    #[error("activeflow {0} does not exist")]
    ActiveflowNotFound(Uuid),
    /// The activeflow exists but is not running.
    #[error("activeflow {0} has ended")]
    Ended(Uuid),
    /// An activeflow with this id already exists.
    #[error("activeflow {0} already exists")]
    Duplicate(Uuid),
    /// The engine refused (invalid actions, variables over a cap, unknown jump target…).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The call does not exist.
    #[error("call {0} does not exist")]
    CallNotFound(Uuid),
    /// The conference (or conferencecall) does not exist.
    #[error("conference {0} does not exist")]
    ConferenceNotFound(Uuid),
    /// The call exists but is over.
    #[error("call {0} is not up any more")]
    CallOver(Uuid),
    /// The call has no audio path for a media operation.
    #[error("call {0} has no audio path: {1}")]
    NoAudio(Uuid, String),
    /// The call already has as many media streams as it may.
    #[error("call {0} already has its {1} media streams")]
    TooManyStreams(Uuid, usize),
    /// A request that cannot be honoured as asked.
    #[error("{0}")]
    Invalid(String),
    /// No modem can do what was asked.
    #[error("no modem: {0}")]
    NoModem(String),
    /// No line can carry the call.
    #[error("no line: {0}")]
    NoLine(String),
    /// A line refused or failed a call operation.
    #[error(transparent)]
    Line(#[from] flowgate_line::LegError),
    /// The modem refused or failed.
    #[error(transparent)]
    Modem(#[from] flowgate_board::modem::error::ModemError),
    /// The gateway is shutting down.
    #[error("the gateway is shutting down")]
    ShuttingDown,
}

/// Runtime settings taken from the daemon config.
#[derive(Clone)]
pub struct RuntimeOptions {
    /// Engine guards for new activeflows.
    pub guards: Guards,
    /// Timeout of `fetch` / `webhook_send`.
    pub http_timeout: Duration,
    /// Largest `fetch` response body.
    pub max_response_bytes: usize,
    /// Outbound SMS policy.
    pub sms: SmsPolicy,
    /// The media layer; `None` runs without audio (calls can still be answered, take digits
    /// from the modem and hang up).
    pub media: Option<crate::media::MediaContext>,
    /// How long an outbound call may ring before it is given up.
    pub ring_timeout: Duration,
    /// The routing table for outbound calls.
    pub routes: Routes,
    /// Lines besides the modems (SIP, analog ports), already running.
    pub lines: Vec<std::sync::Arc<dyn flowgate_line::Line>>,
    /// The SMTP relay of `email_send`.
    pub email: email::EmailConfig,
    /// The speech-to-text engine of the `transcribe_*` actions.
    pub transcribe: transcribe::TranscribeConfig,
}

impl std::fmt::Debug for RuntimeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeOptions")
            .field("guards", &self.guards)
            .field("http_timeout", &self.http_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("sms", &self.sms)
            .field("ring_timeout", &self.ring_timeout)
            .field("routes", &self.routes)
            .field(
                "lines",
                &self
                    .lines
                    .iter()
                    .map(|l| l.id().to_owned())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            guards: Guards::default(),
            http_timeout: Duration::from_secs(10),
            max_response_bytes: 1024 * 1024,
            sms: SmsPolicy::default(),
            media: None,
            ring_timeout: Duration::from_secs(60),
            routes: Routes::default(),
            lines: Vec::new(),
            email: email::EmailConfig::default(),
            transcribe: transcribe::TranscribeConfig::default(),
        }
    }
}

/// Where an activeflow's actions come from.
#[derive(Debug, Clone)]
pub enum FlowSource {
    /// A stored flow.
    Stored(Uuid),
    /// Inline actions (ids already assigned), as `POST /activeflows {actions}` sends.
    Inline(Vec<Action>),
}

/// Everything needed to start an activeflow.
#[derive(Debug, Clone)]
pub struct StartRequest {
    /// Requested id (the API may pass one); a UUIDv7 otherwise.
    pub id: Option<Uuid>,
    /// The actions.
    pub flow: FlowSource,
    /// What started it.
    pub reference_type: ReferenceType,
    /// The reference's id.
    pub reference_id: Option<Uuid>,
    /// Parent activeflow (follow-up chains).
    pub reference_activeflow_id: Option<Uuid>,
    /// Chain depth.
    pub complete_count: u32,
    /// Variables copied from a parent.
    pub inherited: IndexMap<String, String>,
    /// Trusted variables the gateway sets (`voipbin.call.*`, `voipbin.conversation.*`).
    pub variables: IndexMap<String, String>,
    /// Untrusted variables (API), sanitised by the engine.
    pub external: IndexMap<String, String>,
    /// Per-activeflow webhook.
    pub webhook_uri: String,
    /// Its method.
    pub webhook_method: String,
}

impl StartRequest {
    /// A request with defaults for everything but the flow and reference.
    pub fn new(
        flow: FlowSource,
        reference_type: ReferenceType,
        reference_id: Option<Uuid>,
    ) -> Self {
        Self {
            id: None,
            flow,
            reference_type,
            reference_id,
            reference_activeflow_id: None,
            complete_count: 0,
            inherited: IndexMap::new(),
            variables: IndexMap::new(),
            external: IndexMap::new(),
            webhook_uri: String::new(),
            webhook_method: String::new(),
        }
    }
}

/// The hub. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    options: RuntimeOptions,
    http: reqwest::Client,
    metrics: Arc<Metrics>,
    runners: Mutex<HashMap<Uuid, mpsc::UnboundedSender<Signal>>>,
    modems: Modems,
    lines: Lines,
    calls: Mutex<calls::CallTable>,
    /// The live conferences (`conference_join`), by VoIPBIN's id.
    conferences: Mutex<calls::conference::Conferences>,
    /// The local queues with callers in them (`queue_join`), by queue id.
    queues: Mutex<HashMap<Uuid, calls::QueueEntry>>,
    /// Serialises read-modify-write of message records (sender vs. delivery reports).
    message_lock: Mutex<()>,
    /// Serialises read-modify-write of call records (driver events vs. commands).
    call_lock: Mutex<()>,
    sms_wake: Arc<Notify>,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl Runtime {
    /// A runtime over `db` with the board's `modems` (each becomes a line as well) and
    /// the other lines of `options`. Nothing runs until [`Runtime::start_services`],
    /// [`Runtime::recover`] or a start. Call it inside a tokio runtime.
    pub fn new(
        db: Db,
        modems: Modems,
        mut options: RuntimeOptions,
        metrics: Arc<Metrics>,
        cancel: CancellationToken,
    ) -> Self {
        let mut lines: Vec<Arc<dyn flowgate_line::Line>> = modems
            .iter()
            .map(|m| {
                flowgate_board::modem::ModemLine::new(m.clone()) as Arc<dyn flowgate_line::Line>
            })
            .collect();
        lines.append(&mut options.lines);
        let lines = Lines::new(lines);
        let http = crate::tls::Roots::get()
            .http_client(reqwest::Client::builder())
            .timeout(options.http_timeout)
            .user_agent(concat!("flowgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|e| {
                warn!(cause = %e, "HTTP client with custom settings unavailable, using defaults");
                reqwest::Client::new()
            });
        Self {
            inner: Arc::new(Inner {
                db,
                options,
                http,
                metrics,
                runners: Mutex::new(HashMap::new()),
                modems,
                lines,
                calls: Mutex::new(calls::CallTable::default()),
                conferences: Mutex::new(calls::conference::Conferences::default()),
                queues: Mutex::new(HashMap::new()),
                message_lock: Mutex::new(()),
                call_lock: Mutex::new(()),
                sms_wake: Arc::new(Notify::new()),
                cancel,
                tasks: TaskTracker::new(),
            }),
        }
    }

    /// The tables.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The shared HTTP client (fetch, webhooks, play URLs).
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// The board's modems (SMS, USSD).
    pub fn modems(&self) -> &Modems {
        &self.inner.modems
    }

    /// Every line calls can go out on or come in from.
    pub fn lines(&self) -> &Lines {
        &self.inner.lines
    }

    /// The routing table.
    pub fn routes(&self) -> &Routes {
        &self.inner.options.routes
    }

    /// The media layer, if the gateway runs with one.
    pub(crate) fn media_context(&self) -> Option<crate::media::MediaContext> {
        self.inner.options.media.clone()
    }

    /// Wakes the SMS sender (a message was queued).
    pub(crate) fn sms_wake(&self) -> &Notify {
        &self.inner.sms_wake
    }

    /// Starts the per-line call tasks, the per-modem SMS tasks (inbound SMS, delivery
    /// reports) and the SMS sender. Call once, after [`Runtime::recover`].
    pub fn start_services(&self) {
        for line in self.inner.lines.iter() {
            match line.take_events() {
                Some(events) => {
                    self.spawn(calls::line_events_task(
                        self.clone(),
                        Arc::clone(line),
                        events,
                    ));
                }
                None => warn!(line = line.id(), "the line's events are taken already"),
            }
        }
        for modem in self.inner.modems.iter() {
            self.spawn(sms::inbound_task(self.clone(), modem.clone()));
            match modem.take_status_reports() {
                Some(reports) => self.spawn(sms::reports_task(self.clone(), reports)),
                None => warn!(modem = modem.id(), "the status reports are taken already"),
            }
        }
        self.spawn(sms::sender_task(self.clone()));
    }

    /// Queues an SMS (`POST /messages`); returns the stored message.
    pub fn send_message(
        &self,
        source: flowgate_flows::model::Address,
        destinations: Vec<flowgate_flows::model::Address>,
        text: String,
    ) -> Result<crate::model::Message, RuntimeError> {
        sms::queue_outbound(
            self,
            Uuid::now_v7(),
            None,
            source,
            destinations,
            text,
            String::new(),
        )
    }

    /// The engine guards new activeflows get.
    pub fn guards(&self) -> &Guards {
        &self.inner.options.guards
    }

    /// The root cancellation of the runtime's tasks.
    pub fn cancel_token(&self) -> &CancellationToken {
        &self.inner.cancel
    }

    /// Tracks a background task so shutdown waits for it.
    pub fn spawn<F>(&self, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.inner.tasks.spawn(fut);
    }

    /// Waits until every runner and background task has stopped (after cancellation).
    pub async fn wait_stopped(&self) {
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }

    /// Number of activeflows with a live runner.
    pub fn running(&self) -> usize {
        self.inner.runners.lock().len()
    }

    /// Creates and starts an activeflow; returns its record as first stored (flushed).
    ///
    /// The creation is not committed on its own: the runner commits it together with the
    /// state it first has to store (before its first command, when it blocks, or at its end)
    /// and flushes, so a flow that runs straight through costs one commit instead of two.
    /// Nothing is acknowledged and no command runs before that, so a crash in between loses
    /// only a request nobody was told about.
    pub async fn start(&self, request: StartRequest) -> Result<ActiveflowRecord, RuntimeError> {
        let record = self.build(request)?;
        let mut creation = Batch::new();
        self.stage_creation(&mut creation, &record)?;
        let (stored_tx, stored) = oneshot::channel();
        let created = runner::Created {
            batch: creation,
            stored: stored_tx,
        };
        self.spawn_runner(record, None, Some(created));
        let record = stored.await.map_err(|_| RuntimeError::ShuttingDown)??;
        Metrics::inc(&self.inner.metrics.activeflows_started_total);
        Ok(record)
    }

    /// Builds the activeflow and stages its creation in `batch`.
    pub(crate) fn prepare(
        &self,
        request: StartRequest,
        batch: &mut Batch,
    ) -> Result<ActiveflowRecord, RuntimeError> {
        let record = self.build(request)?;
        batch.put(&self.inner.db.activeflows, record.id, &record)?;
        self.stage_creation(batch, &record)?;
        Metrics::inc(&self.inner.metrics.activeflows_started_total);
        Ok(record)
    }

    /// Stages what is written once per activeflow: its flow's actions, stored apart from
    /// the state that every step rewrites (see [`crate::store::Db::activeflow_actions`]), and
    /// the creation event.
    fn stage_creation(
        &self,
        batch: &mut Batch,
        record: &ActiveflowRecord,
    ) -> Result<(), RuntimeError> {
        batch.put(
            &self.inner.db.activeflow_actions,
            record.id,
            &record.engine.main_actions(),
        )?;
        batch.event_of("activeflow_created", record.id, &record.public_ref());
        Ok(())
    }

    /// Builds a new activeflow's record (nothing stored).
    fn build(&self, request: StartRequest) -> Result<ActiveflowRecord, RuntimeError> {
        if self.inner.cancel.is_cancelled() {
            return Err(RuntimeError::ShuttingDown);
        }
        let db = &self.inner.db;
        // Only an id the caller chose can collide; a fresh v7 id needs no lookup.
        let id = match request.id {
            Some(id) if db.activeflows.contains(id)? => return Err(RuntimeError::Duplicate(id)),
            Some(id) => id,
            None => Uuid::now_v7(),
        };
        let (flow_id, actions, on_complete) = match request.flow {
            FlowSource::Stored(flow_id) => {
                let flow = db
                    .flows
                    .get(flow_id)?
                    .ok_or(RuntimeError::FlowNotFound(flow_id))?;
                (Some(flow_id), flow.actions.clone(), flow.on_complete())
            }
            FlowSource::Inline(actions) => (None, actions, None),
        };
        let spec = ActiveflowSpec {
            id,
            flow_id: flow_id.unwrap_or_else(Uuid::nil),
            reference_type: request.reference_type,
            reference_id: request.reference_id.unwrap_or_else(Uuid::nil),
            reference_activeflow_id: request.reference_activeflow_id.unwrap_or_else(Uuid::nil),
            actions,
            on_complete_flow_id: on_complete,
            complete_count: request.complete_count,
            inherited_variables: request.inherited,
            variables: request.variables,
            external_variables: request.external,
        };
        let mut engine = Activeflow::new(spec, &self.inner.options.guards)?;
        // Each step stores the state without the flow's actions, written once at creation.
        engine.store_actions_apart();
        let now = Utc::now();
        let record = ActiveflowRecord {
            id,
            flow_id,
            status: ActiveflowStatus::Running,
            reference_type: request.reference_type,
            reference_id: request.reference_id,
            reference_activeflow_id: request.reference_activeflow_id,
            webhook_uri: request.webhook_uri,
            webhook_method: request.webhook_method,
            end_reason: None,
            tm_create: now,
            tm_update: now,
            tm_end: None,
            engine,
        };
        Ok(record)
    }

    /// Starts the runner of a stored activeflow.
    pub(crate) fn launch(&self, record: ActiveflowRecord) {
        self.launch_with(record, None);
    }

    /// Starts the runner of a stored activeflow on `call` (a call flow) or on nothing.
    pub(crate) fn launch_with(&self, record: ActiveflowRecord, call: Option<calls::LiveCall>) {
        self.spawn_runner(record, call, None);
    }

    fn spawn_runner(
        &self,
        record: ActiveflowRecord,
        call: Option<calls::LiveCall>,
        created: Option<runner::Created>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        self.inner.runners.lock().insert(record.id, tx);
        Metrics::add(&self.inner.metrics.activeflows_running, 1);
        let runner = runner::Runner::new(self.clone(), record, rx, call, created);
        self.inner.tasks.spawn(runner.run());
    }

    /// Called by a runner when it exits.
    pub(crate) fn runner_exited(&self, id: Uuid) {
        if self.inner.runners.lock().remove(&id).is_some() {
            Metrics::add(&self.inner.metrics.activeflows_running, -1);
        }
    }

    /// Sends a signal to a live runner.
    pub(crate) fn signal(&self, id: Uuid, signal: Signal) -> Result<(), RuntimeError> {
        let runners = self.inner.runners.lock();
        match runners.get(&id) {
            Some(tx) => tx.send(signal).map_err(|_| RuntimeError::Ended(id)),
            None => Err(self.not_running(id)),
        }
    }

    fn not_running(&self, id: Uuid) -> RuntimeError {
        match self.inner.db.activeflows.contains(id) {
            Ok(true) => RuntimeError::Ended(id),
            Ok(false) => RuntimeError::ActiveflowNotFound(id),
            Err(e) => RuntimeError::Store(e),
        }
    }

    /// `PUT /activeflows/{id}/forward_action_id`: jump (now, or when the current action
    /// completes).
    pub async fn forward(
        &self,
        id: Uuid,
        target: Uuid,
        now: bool,
    ) -> Result<ForwardEffect, RuntimeError> {
        let (reply, rx) = oneshot::channel();
        self.signal(id, Signal::Forward { target, now, reply })?;
        rx.await
            .map_err(|_| RuntimeError::Ended(id))?
            .map_err(RuntimeError::from)
    }

    /// Pushes actions as a new stack (VoIPBIN's `push_actions`).
    pub async fn push_actions(
        &self,
        id: Uuid,
        actions: Vec<Action>,
        now: bool,
    ) -> Result<ForwardEffect, RuntimeError> {
        let (reply, rx) = oneshot::channel();
        self.signal(
            id,
            Signal::Push {
                actions,
                now,
                reply,
            },
        )?;
        rx.await
            .map_err(|_| RuntimeError::Ended(id))?
            .map_err(RuntimeError::from)
    }

    /// Resumes a `block` (VoIPBIN's `continue`).
    pub async fn continue_block(&self, id: Uuid, action_id: Uuid) -> Result<(), RuntimeError> {
        let (reply, rx) = oneshot::channel();
        self.signal(id, Signal::Continue { action_id, reply })?;
        rx.await
            .map_err(|_| RuntimeError::Ended(id))?
            .map_err(RuntimeError::from)
    }

    /// Stops an activeflow and waits until its end is stored. Stopping an ended flow is not
    /// an error (idempotent, as in VoIPBIN).
    pub async fn stop(&self, id: Uuid, reason: &str) -> Result<ActiveflowRecord, RuntimeError> {
        let (reply, rx) = oneshot::channel();
        match self.signal(
            id,
            Signal::Stop {
                reason: reason.to_owned(),
                reply: Some(reply),
            },
        ) {
            Ok(()) => {
                // The runner answers after it stored the end; if it went away first, the
                // stored record is the truth either way.
                let _ = rx.await;
            }
            Err(RuntimeError::Ended(_)) => {}
            Err(e) => return Err(e),
        }
        self.inner
            .db
            .activeflows
            .get(id)?
            .ok_or(RuntimeError::ActiveflowNotFound(id))
    }

    /// Stops (if running) and deletes an activeflow.
    pub async fn delete(&self, id: Uuid) -> Result<ActiveflowRecord, RuntimeError> {
        let record = self.stop(id, "deleted").await?;
        let mut batch = Batch::new();
        batch.remove(&self.inner.db.activeflows, id);
        batch.remove(&self.inner.db.activeflow_actions, id);
        batch.event("activeflow_deleted", id, event_data(&record));
        self.inner.db.store.commit(batch)?;
        Ok(record)
    }

    /// Starts the on-complete follow-up of an ended activeflow.
    pub(crate) async fn start_follow_up(
        &self,
        request: &OnComplete,
    ) -> Result<ActiveflowRecord, RuntimeError> {
        let mut start = StartRequest::new(
            FlowSource::Stored(request.flow_id),
            request.reference_type,
            Some(request.reference_id).filter(|u| !u.is_nil()),
        );
        start.reference_activeflow_id = Some(request.reference_activeflow_id);
        start.complete_count = request.complete_count;
        start.inherited = request.variables.clone();
        self.start(start).await
    }

    /// Resumes after a restart: API and message flows continue from their stored state;
    /// flows that were on a call end with a recorded reason (the call is gone).
    pub async fn recover(&self) -> Result<RecoveryReport, RuntimeError> {
        let db = &self.inner.db;
        let mut report = RecoveryReport::default();
        let mut resume = Vec::new();
        for entry in db.activeflows.iter() {
            let (_, record) = entry?;
            if record.status != ActiveflowStatus::Running {
                continue;
            }
            if record.reference_type == ReferenceType::Call {
                let mut record = record;
                let end = record.engine.stop(EndReason::Stopped(
                    "the gateway restarted while the call was up".into(),
                ));
                let now = Utc::now();
                record.status = ActiveflowStatus::Ended;
                record.end_reason = Some(end.reason);
                record.tm_end = Some(now);
                record.tm_update = now;
                let mut batch = Batch::new();
                batch.put(&db.activeflows, record.id, &record)?;
                batch.event("activeflow_updated", record.id, event_data(&record));
                db.store.commit(batch)?;
                Metrics::inc(&self.inner.metrics.activeflows_ended_total);
                report.ended_calls += 1;
            } else {
                match db.activeflow_actions.get(record.id)? {
                    Some(actions) => {
                        let mut record = record;
                        record.engine.attach_main_actions(actions);
                        resume.push(record);
                    }
                    // The actions and the first state commit together, so a state without
                    // them is damaged: its first run ends it with an error that says so.
                    None => {
                        if record.engine.main_actions_missing() {
                            warn!(activeflow = %record.id, "activeflow stored without its actions");
                        }
                        resume.push(record);
                    }
                }
            }
        }
        let queuecalls = self.queuecalls_recover()?;
        if queuecalls > 0 {
            warn!(queuecalls, "queuecalls interrupted by the restart closed");
        }
        let transcribes = self.transcribe_recover()?;
        if transcribes > 0 {
            warn!(
                transcribes,
                "transcriptions interrupted by the restart marked failed"
            );
        }
        db.store.flush().await?;
        for record in resume {
            info!(activeflow = %record.id, reference = record.reference_type.as_str(), "resuming activeflow");
            report.resumed += 1;
            self.launch(record);
        }
        report.message_flows_started = sms::recover(self).await?;
        Ok(report)
    }
}

/// What [`Runtime::recover`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryReport {
    /// API/message flows resumed.
    pub resumed: usize,
    /// Call flows ended because their call did not survive.
    pub ended_calls: usize,
    /// Inbound messages whose flow had not started yet.
    pub message_flows_started: usize,
}

/// The event payload for an activeflow: its public JSON.
pub(crate) fn event_data(record: &ActiveflowRecord) -> serde_json::Value {
    serde_json::to_value(record.public()).unwrap_or(serde_json::Value::Null)
}
