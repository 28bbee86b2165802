//! Calls: legs on the gateway's lines, as the flows see them.
//!
//! A [`LiveCall`] is the runtime's handle of one leg while it is up: its record id (the
//! leg id), the line it is on, its phase, its flow, its media session and the call it may
//! be bridged to. Every line's events go through one task (`events`), which keeps the call
//! records and the flows in step with the legs. The rooms:
//!
//! | module | job |
//! |---|---|
//! | `events` | one task per line: incoming legs start flows, progress/answer/end update records |
//! | `perform` | the call commands of a flow (answer, hangup, sleep, digits, media, connect) |
//! | `dial` | outbound legs: routing over the lines, fail-over, ring timeout, the `call` action |
//! | `bridge` | `connect`: ring the destinations, join the first that answers, relay digits |
//! | `conference` | `conference_join`/`confbridge_join`: the runtime's conferences, join until the call or the action ends |
//! | `transfer` | `POST /transfers`: network transfers where the line can |
//! | `media` | the call's media session, recordings, the API's audio interrupts |
//! | `external` | `external_media_start`/`_stop`: VoIPBIN's options checked, RTP streams started |
//! | `record` | the call record and its events, and the `voipbin.call.*` variables |
//! | `transcribe` | `transcribe_start`/`transcribe_stop`: capture the call, then speech to text |

mod bridge;
pub(crate) mod conference;
mod dial;
mod events;
mod external;
mod media;
mod perform;
mod queue;
mod record;
mod transcribe;
mod transfer;

use std::collections::HashMap;
use std::sync::Arc;

use flowgate_line::{Capabilities, Cause, EndCause, LegId, Line, Progress};
use parking_lot::Mutex;
use tokio::sync::{Notify, watch};
use tracing::debug;
use uuid::Uuid;

use super::mailbox::Signal;
use super::{FlowSource, Runtime, RuntimeError};
use crate::metrics::Metrics;
use crate::model::Call;

pub use dial::DialRequest;
pub(crate) use dial::dial_from_flow;
pub(crate) use events::line_events_task;
pub(crate) use queue::{QueueEntry, valid_routing_method};

/// Live calls, by record (leg) id.
#[derive(Default)]
pub(crate) struct CallTable {
    by_id: HashMap<Uuid, LiveCall>,
}

/// What to start when an outbound call is answered.
#[derive(Clone)]
struct PendingFlow {
    flow: FlowSource,
    external: indexmap::IndexMap<String, String>,
}

/// How far a leg got. Published on a watch so a transfer or a bridge waits for a leg
/// without subscribing to anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Placed or announced, nothing heard yet.
    Setup,
    /// The far end progressed (outgoing).
    Progress(Progress),
    /// Answered.
    Answered,
    /// Over.
    Ended(EndCause),
}

/// A live call the runtime holds. Cheap to clone.
#[derive(Clone)]
pub(crate) struct LiveCall {
    inner: Arc<CallInner>,
}

struct CallInner {
    rt: Runtime,
    id: Uuid,
    /// The line the leg is on (another one after a fail-over).
    line: Mutex<Arc<dyn Line>>,
    live: Mutex<Live>,
    phase: watch::Sender<Phase>,
    /// The media session (see `media`).
    media: watch::Sender<media::MediaSlot>,
    /// Held while the session is being opened, so it is opened once.
    media_open: tokio::sync::Mutex<()>,
    /// Recordings in progress and what to do when they end.
    recordings: Mutex<HashMap<Uuid, media::RecordingOrigin>>,
    /// Wakes `stop_recording` when a recording's file is complete.
    recording_done: Notify,
    /// The transcription running on the call (`transcribe_start`), if any.
    transcribing: Mutex<Option<transcribe::LiveTranscribe>>,
}

#[derive(Default)]
struct Live {
    activeflow: Option<Uuid>,
    answered: bool,
    ended: bool,
    /// Set when the gateway hung up (so the record says `hangup_by: local`): VoIPBIN's
    /// reason for the record.
    local_reason: Option<String>,
    /// The line said the leg ended under an operation of ours (the caller hung up in the
    /// instant the gateway answered: a modem's `ATA` gets `NO CARRIER`). The end is the far
    /// end's: a hang-up of the gateway after it (the flow failing on the answer) does not
    /// claim it, and the line's `Ended` event settles the record.
    far_end_left: bool,
    /// Outbound: the flow to start on answer (taken when started).
    pending_flow: Option<PendingFlow>,
    /// Outbound, before the far end rang: an end is a candidate for fail-over, which the
    /// dialler decides, instead of the end of the call.
    failover: bool,
    /// The call this one is bridged to (`connect`): digits are relayed to it.
    peer: Option<LiveCall>,
    /// Calls a transfer parted this one from while neither ended (its party was handed
    /// to a flow): their `connect` guard and bridge no longer own it, as if it had been
    /// handed to another party (see `handed_over`).
    parted_from: Vec<LegId>,
}

impl LiveCall {
    fn new(rt: &Runtime, id: Uuid, line: Arc<dyn Line>) -> Self {
        Self {
            inner: Arc::new(CallInner {
                rt: rt.clone(),
                id,
                line: Mutex::new(line),
                live: Mutex::new(Live::default()),
                phase: watch::Sender::new(Phase::Setup),
                media: watch::Sender::new(media::MediaSlot::Waiting),
                media_open: tokio::sync::Mutex::new(()),
                recordings: Mutex::new(HashMap::new()),
                recording_done: Notify::new(),
                transcribing: Mutex::new(None),
            }),
        }
    }

    /// The call record id (the leg id).
    pub(crate) fn id(&self) -> LegId {
        self.inner.id
    }

    /// The line the leg is on now.
    fn line(&self) -> Arc<dyn Line> {
        Arc::clone(&self.inner.line.lock())
    }

    fn line_id(&self) -> String {
        self.inner.line.lock().id().to_owned()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.line.lock().capabilities()
    }

    /// Waits for the phase to satisfy `done` (or the call to be forgotten).
    async fn wait_phase(&self, done: impl Fn(&Phase) -> bool) -> Phase {
        let mut rx = self.inner.phase.subscribe();
        match rx
            .wait_for(|p| done(p) || matches!(p, Phase::Ended(_)))
            .await
        {
            Ok(p) => p.clone(),
            // The sender lives as long as `self`: unreachable, but an end is the safe answer.
            Err(_) => Phase::Ended(EndCause::new(Cause::Normal, "call forgotten")),
        }
    }

    fn is_answered(&self) -> bool {
        self.inner.live.lock().answered
    }

    fn is_ended(&self) -> bool {
        self.inner.live.lock().ended
    }

    fn activeflow(&self) -> Option<Uuid> {
        self.inner.live.lock().activeflow
    }

    /// Sends a signal to the call's flow, if it has one running.
    fn to_flow(&self, signal: Signal) {
        if let Some(af) = self.activeflow() {
            let _ = self.inner.rt.signal(af, signal);
        }
    }

    /// Answers the leg (once; answering an answered leg is a no-op).
    async fn answer(&self) -> Result<(), RuntimeError> {
        if !self.is_answered() {
            let line = self.line();
            if let Err(e) = line.answer(self.id()).await {
                if e.ended_leg() {
                    self.inner.live.lock().far_end_left = true;
                }
                return Err(e.into());
            }
            // Boxed: starting a pending flow is a large future, and every action that needs
            // the call answered (most media actions) would otherwise carry its size for as
            // long as it runs — kilobytes per call at a thousand calls.
            Box::pin(events::on_answered(&self.inner.rt, self)).await;
        }
        // The line's `Answered` event may have won the race with the calls above: its task
        // then records the answer while this one sees the call answered already. Returning
        // at once let the flow's next step run before the record and the flow's variables
        // said so (`voipbin.flow.reference_data` still "ringing": seen under load). The
        // phase turns `Answered` right after both, with no await in between.
        self.wait_phase(|p| matches!(p, Phase::Answered)).await;
        Ok(())
    }

    /// Hangs up (idempotent); `reason` is VoIPBIN's hang-up reason for the record.
    pub(crate) async fn hangup(&self, reason: &str) {
        self.hangup_with(reason, Cause::from_voipbin_reason(reason))
            .await
    }

    /// Hangs up with a line cause of its own (one no flow reason names: the far end is
    /// told the call was transferred, or refused).
    pub(crate) async fn hangup_with(&self, reason: &str, cause: Cause) {
        {
            let mut live = self.inner.live.lock();
            if live.ended || live.far_end_left {
                return;
            }
            live.local_reason.get_or_insert_with(|| reason.to_owned());
            // An end we asked for is never a reason to try another line.
            live.failover = false;
        }
        let line = self.line();
        if let Err(e) = line.hangup(self.id(), cause).await {
            // The leg may already be gone (the far end hung up at the same moment); the
            // Ended event settles the record either way.
            debug!(call = %self.id(), cause = %e, "hang-up");
        }
    }

    /// The flow `activeflow` on this call ended: hang up if the call is still up (VoIPBIN:
    /// FINISH or an ended activeflow hangs up the call) — unless the call runs another
    /// flow now (a transfer to a number bound to a flow stopped the old one).
    pub(crate) async fn end_of_flow(
        &self,
        activeflow: Uuid,
        reason: &flowgate_flows::engine::EndReason,
    ) {
        use flowgate_flows::engine::EndReason;
        if self.activeflow().is_some_and(|now| now != activeflow) {
            debug!(call = %self.id(), %activeflow, "the call runs another flow now: not hung up");
            return;
        }
        let hangup_reason = match reason {
            EndReason::Error(_) | EndReason::Guard(_) => "failed",
            _ => "normal",
        };
        self.hangup(hangup_reason).await;
    }
}

impl Runtime {
    /// The live call with this record id.
    pub(crate) fn live_call_by_id(&self, id: Uuid) -> Option<LiveCall> {
        self.inner.calls.lock().by_id.get(&id).cloned()
    }

    fn register_call(&self, call: &LiveCall) {
        let mut table = self.inner.calls.lock();
        if table.by_id.insert(call.id(), call.clone()).is_none() {
            Metrics::add(&self.inner.metrics.calls_active, 1);
        }
    }

    fn unregister_call(&self, call: &LiveCall) {
        let mut table = self.inner.calls.lock();
        if table.by_id.remove(&call.id()).is_some() {
            Metrics::add(&self.inner.metrics.calls_active, -1);
        }
    }

    /// Hangs up every live call (shutdown).
    pub async fn hangup_all(&self) {
        let calls: Vec<LiveCall> = self.inner.calls.lock().by_id.values().cloned().collect();
        futures::future::join_all(calls.iter().map(|c| c.hangup("normal"))).await;
    }

    /// Hangs up a call from the API (`POST /calls/{id}/hangup`).
    pub async fn hangup_call(&self, id: Uuid) -> Result<Call, RuntimeError> {
        match self.live_call_by_id(id) {
            Some(call) => call.hangup("normal").await,
            None if self.db().calls.contains(id)? => {}
            None => return Err(RuntimeError::CallNotFound(id)),
        }
        self.db()
            .calls
            .get(id)?
            .ok_or(RuntimeError::CallNotFound(id))
    }
}
