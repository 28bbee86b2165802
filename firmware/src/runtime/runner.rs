//! One activeflow's task: engine ↔ executor ↔ mailbox.
//!
//! The loop asks the engine for the next step, persists the state, and performs the
//! command while listening to the mailbox. A signal that finishes or abandons the pending
//! command (a digit that completes `digits_receive`, barge-in, `forward_now`, stop, hang-up)
//! drops the command's future — executors are written so that dropping them stops what they
//! were doing (playback, timers) — and the loop goes round again. Interrupts therefore take
//! effect at once, whatever the flow is waiting on.
//!
//! On shutdown the runner leaves the stored state as it is: a command that was pending is
//! issued again when the flow resumes (commands are at-least-once; `message_send` is made
//! idempotent by deriving the message id from the activeflow and the step).

use chrono::Utc;
use flowgate_flows::engine::{
    Command, End, EndReason, EngineError, FollowUp, ForwardEffect, Outcome, Step,
};
use flowgate_flows::model::ReferenceType;
use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};
use uuid::Uuid;

use super::calls::LiveCall;
use super::mailbox::Signal;
use super::{Runtime, RuntimeError, commands};
use crate::metrics::Metrics;
use crate::model::{ActiveflowRecord, ActiveflowStatus};
use crate::store::Batch;

/// The creation of an activeflow that is not stored yet (see [`super::Runtime::start`]): its
/// events go into the runner's first commit, and the starter hears how that commit went.
pub(crate) struct Created {
    /// The creation's events.
    pub(crate) batch: Batch,
    /// Told the record as first stored, or why it could not be.
    pub(crate) stored: oneshot::Sender<Result<ActiveflowRecord, RuntimeError>>,
}

/// What a signal did to the pending command.
enum Effect {
    /// Keep waiting for the command.
    Keep,
    /// The command is finished or abandoned: drop it and step the engine.
    Drop,
}

pub(crate) struct Runner {
    rt: Runtime,
    record: ActiveflowRecord,
    mailbox: mpsc::UnboundedReceiver<Signal>,
    /// The call a call flow runs on (none for API, message and follow-up flows).
    call: Option<LiveCall>,
    /// Stop requests to answer once the end is stored.
    stop_waiters: Vec<oneshot::Sender<()>>,
    /// The creation still to commit with the first state stored.
    created: Option<Created>,
}

impl Runner {
    pub(crate) fn new(
        rt: Runtime,
        record: ActiveflowRecord,
        mailbox: mpsc::UnboundedReceiver<Signal>,
        call: Option<LiveCall>,
        created: Option<Created>,
    ) -> Self {
        Self {
            rt,
            record,
            mailbox,
            call,
            stop_waiters: Vec::new(),
            created,
        }
    }

    pub(crate) async fn run(mut self) {
        let id = self.record.id;
        if let Err(e) = self.drive().await {
            // The store failed under us: nothing sensible can continue. The stored state is
            // the last good one and will be resumed (or ended) at the next start.
            error!(activeflow = %id, cause = %e, "activeflow runner stopped");
        }
        self.rt.runner_exited(id);
        // Anyone still waiting for a stop gets an answer (the stored record tells the rest).
        for waiter in self.stop_waiters.drain(..) {
            let _ = waiter.send(());
        }
    }

    async fn drive(&mut self) -> Result<(), RuntimeError> {
        let cancel = self.rt.cancel_token().clone();
        loop {
            let step = self.record.engine.run(Utc::now());
            match step {
                Step::Ended(end) => {
                    // Boxed, as `save` below: this future lives as long as the flow (hours
                    // on a call), so it should be only as large as its waiting needs, not
                    // as large as the end's or a commit's futures.
                    Box::pin(self.finish(end)).await?;
                    return Ok(());
                }
                Step::Blocked => {
                    Box::pin(self.save()).await?;
                    loop {
                        let signal = tokio::select! {
                            _ = cancel.cancelled() => return Ok(()),
                            signal = self.mailbox.recv() => signal,
                        };
                        let Some(signal) = signal else { return Ok(()) };
                        if let Effect::Drop = self.on_signal(signal, None) {
                            break;
                        }
                    }
                }
                Step::Execute(command) => {
                    Box::pin(self.save()).await?;
                    Metrics::inc(&self.rt.metrics().actions_executed_total);
                    let action_id = command.action_id;
                    debug!(activeflow = %self.record.id, action = %action_id, kind = %command.kind(), "executing");
                    let mut work = self.command_future(command);
                    loop {
                        tokio::select! {
                            _ = cancel.cancelled() => return Ok(()),
                            signal = self.mailbox.recv() => {
                                let Some(signal) = signal else { return Ok(()) };
                                if let Effect::Drop = self.on_signal(signal, Some(action_id)) {
                                    break;
                                }
                            }
                            outcome = &mut work => {
                                // Signals the command queued while it ran (variables it set,
                                // digits pressed) apply before the engine moves on.
                                while let Ok(signal) = self.mailbox.try_recv() {
                                    if let Effect::Drop = self.on_signal(signal, Some(action_id)) {
                                        break;
                                    }
                                }
                                if let Err(e) = self.record.engine.complete(action_id, outcome, Utc::now()) {
                                    debug!(activeflow = %self.record.id, cause = %e, "late outcome ignored");
                                }
                                break;
                            }
                        }
                    }
                }
            }
        }
    }

    fn command_future(&self, command: Command) -> BoxFuture<'static, Outcome> {
        commands::perform(&self.rt, &self.record, self.call.as_ref(), command)
    }

    /// Applies a mailbox signal to the engine.
    fn on_signal(&mut self, signal: Signal, pending: Option<Uuid>) -> Effect {
        let now = Utc::now();
        let engine = &mut self.record.engine;
        match signal {
            Signal::Dtmf(digit) => match engine.dtmf(digit, now) {
                Ok(effect) => {
                    debug!(activeflow = %self.record.id, %digit, ?effect, "dtmf");
                    if effect.ends_command() {
                        Effect::Drop
                    } else {
                        Effect::Keep
                    }
                }
                Err(e) => {
                    warn!(activeflow = %self.record.id, %digit, cause = %e, "digit ignored");
                    Effect::Keep
                }
            },
            Signal::Forward {
                target,
                now: forward_now,
                reply,
            } => {
                let result = engine.forward(target, forward_now);
                let effect = forward_effect(&result);
                let _ = reply.send(result);
                effect
            }
            Signal::Push {
                actions,
                now: forward_now,
                reply,
            } => {
                let result = engine.push_actions(actions, forward_now);
                let effect = forward_effect(&result);
                let _ = reply.send(result);
                effect
            }
            Signal::Continue { action_id, reply } => {
                let result = engine.continue_block(action_id);
                let effect = if result.is_ok() {
                    Effect::Drop
                } else {
                    Effect::Keep
                };
                let _ = reply.send(result);
                effect
            }
            Signal::Stop { reason, reply } => {
                engine.stop(EndReason::Stopped(reason));
                self.stop_waiters.extend(reply);
                Effect::Drop
            }
            Signal::SetVariable { name, value } => {
                if let Err(e) = engine.set_variable(&name, &value) {
                    warn!(activeflow = %self.record.id, variable = %name, cause = %e, "variable not set");
                }
                Effect::Keep
            }
            Signal::Hangup => {
                match pending {
                    Some(action_id) => {
                        if engine.complete(action_id, Outcome::Hangup, now).is_err() {
                            engine.stop(EndReason::Hangup);
                        }
                    }
                    None => {
                        engine.stop(EndReason::Hangup);
                    }
                }
                Effect::Drop
            }
        }
    }

    /// Stores the current state. The first time for an activeflow not stored yet, the
    /// creation's events go in the same commit, and the runner waits until it is on disk —
    /// no command runs for an activeflow that a crash could make vanish — then tells the
    /// starter.
    async fn save(&mut self) -> Result<(), RuntimeError> {
        let Some(created) = self.created.take() else {
            return self.persist(Batch::new(), false).await;
        };
        match self.persist(created.batch, true).await {
            Ok(()) => {
                let _ = created.stored.send(Ok(self.record.clone()));
                Ok(())
            }
            Err(e) => {
                let _ = created.stored.send(Err(e));
                // Never stored: there is nothing to resume.
                Err(RuntimeError::ActiveflowNotFound(self.record.id))
            }
        }
    }

    /// Commits the current state with an `activeflow_updated` event after what `batch` holds;
    /// when `durable`, returns once it is on disk.
    async fn persist(&mut self, mut batch: Batch, durable: bool) -> Result<(), RuntimeError> {
        self.record.tm_update = Utc::now();
        let db = self.rt.db();
        batch.put(&db.activeflows, self.record.id, &self.record)?;
        // Straight to JSON text: this runs on every step of every flow.
        batch.event_of(
            "activeflow_updated",
            self.record.id,
            &self.record.public_ref(),
        );
        if durable {
            db.store.commit_durable(batch).await?;
        } else {
            db.store.commit_async(batch).await?;
        }
        Ok(())
    }

    /// Stores the end, hangs up the call of a call flow, starts the follow-up.
    async fn finish(&mut self, end: End) -> Result<(), RuntimeError> {
        let now = Utc::now();
        self.record.status = ActiveflowStatus::Ended;
        self.record.end_reason = Some(end.reason.clone());
        self.record.tm_end = Some(now);
        self.save().await?;
        Metrics::inc(&self.rt.metrics().activeflows_ended_total);
        info!(activeflow = %self.record.id, reason = %end.reason, "activeflow ended");
        for waiter in self.stop_waiters.drain(..) {
            let _ = waiter.send(());
        }

        // VoIPBIN: FINISH (or any end) of a call flow hangs up the call.
        if self.record.reference_type == ReferenceType::Call
            && let Some(call) = &self.call
        {
            call.end_of_flow(self.record.id, &end.reason).await;
        }

        match &end.follow_up {
            FollowUp::None => {}
            FollowUp::Start(request) => {
                let rt = self.rt.clone();
                let request = request.clone();
                let parent = self.record.id;
                self.rt.spawn(async move {
                    match rt.start_follow_up(&request).await {
                        Ok(next) => info!(activeflow = %parent, follow_up = %next.id, "on-complete flow started"),
                        Err(e) => warn!(activeflow = %parent, flow = %request.flow_id, cause = %e, "on-complete flow not started"),
                    }
                });
            }
            FollowUp::Refused {
                flow_id,
                complete_count,
            } => {
                warn!(activeflow = %self.record.id, flow = %flow_id, complete_count, "on-complete chain too deep; follow-up refused");
            }
        }
        Ok(())
    }
}

fn forward_effect(result: &Result<ForwardEffect, EngineError>) -> Effect {
    match result {
        Ok(ForwardEffect::Interrupt) => Effect::Drop,
        _ => Effect::Keep,
    }
}
