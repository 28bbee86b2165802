//! `queue_join`: a local call queue, as VoIPBIN's queue-manager runs one — the I/O shell
//! around the sans-IO [`machine`].
//!
//! The caller is answered, a queuecall record is stored and the `voipbin.queue.*` /
//! `voipbin.queuecall.*` variables are set; the caller then hears the queue's wait flow
//! (run again and again, as VoIPBIN loops it) or music on hold. One driver task per queue
//! owns the queue's [`machine::QueueMachine`]: it dials the agents the machine picks
//! (through the routing table, like `connect` does: extensions, `sip:` URIs, FXS ports,
//! numbers), reports their answers and refusals back to it, and applies its deadlines.
//! When an agent answers, the caller's wait ends and the two calls are bridged as
//! `connect` bridges them. The action completes — and the flow goes on after
//! `queue_join`, as VoIPBIN's `service_stop` makes it — when the agent hangs up, on the
//! wait or service timeout, or on a kick (`POST /v1.0/queuecalls/{id}/kick`). A caller
//! hanging up (or the flow being interrupted) drops the action: its guard takes the
//! caller out of the queue, which cancels the agents ringing for it, and the queuecall
//! is `abandoned` (or `done` when it was being served).
//!
//! Why the wait flow runs in a nested engine instead of being pushed onto the caller's
//! flow as VoIPBIN does: VoIPBIN ends the wait with a forward to a `confbridge_join`
//! and a `service_stop`, interrupts the gateway's engine does not have for service
//! stacks. A nested [`Activeflow`] runs the same actions with the caller's variables
//! (substitution, branches, loops all behave), limited to the media actions a wait
//! flow is for (`answer`, `talk`, `play`, `beep`, `sleep`, `echo`); anything else
//! ends that pass of the wait flow (logged) and music on hold takes over.

pub(crate) mod machine;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use chrono::Utc;
use flowgate_flows::engine::{Activeflow, ActiveflowSpec, Outcome, Step};
use flowgate_flows::model::{ActionType, Address, Flow, QueueJoinOption, ReferenceType};
use indexmap::IndexMap;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};
use uuid::Uuid;

use self::machine::{Effect, QueueMachine, Settings, Strategy};
use super::dial::DialRequest;
use super::{LiveCall, Phase};
use crate::model::{Queue, Queuecall, QueuecallStatus};
use crate::runtime::mailbox::Signal;
use crate::runtime::{Runtime, RuntimeError};
use crate::store::Batch;

/// An agent rings this long by default before the next is tried (Asterisk's 15 s).
const DEFAULT_RING_TIMEOUT: Duration = Duration::from_secs(15);
/// The default pause after every agent was tried (Asterisk's `retry`).
const DEFAULT_RETRY: Duration = Duration::from_secs(5);
/// How long a cancelled agent leg may take to end before the driver goes on.
const CANCEL_WAIT: Duration = Duration::from_secs(2);
/// A pass of the wait flow shorter than this is not repeated (a flow that fails or plays
/// nothing would otherwise loop without pause); music on hold takes over.
const MIN_WAIT_PASS: Duration = Duration::from_secs(1);

/// A queue's entry in the runtime's table: its driver and who is in it now.
pub(crate) struct QueueEntry {
    tx: mpsc::UnboundedSender<Input>,
    /// Queuecalls in the queue and their status, in joining order.
    members: IndexMap<Uuid, QueuecallStatus>,
}

/// What the driver of a queue is told.
enum Input {
    Join {
        queue: Box<Queue>,
        caller: Uuid,
        call: LiveCall,
        source: Address,
        wait: Option<Duration>,
        service: Option<Duration>,
        events: mpsc::UnboundedSender<ToCaller>,
    },
    /// The caller is gone (hung up, interrupted, served): take it out.
    Leave { caller: Uuid },
    /// `POST /v1.0/queuecalls/{id}/kick`.
    Kick {
        caller: Uuid,
        reply: oneshot::Sender<bool>,
    },
    /// The queue was changed through the API.
    Reconfigure(Box<Queue>),
    Answered {
        caller: Uuid,
        agent: String,
        leg: Uuid,
    },
    Refused {
        caller: Uuid,
        agent: String,
        leg: Uuid,
    },
}

/// What the driver tells a waiting caller.
enum ToCaller {
    Connect {
        agent: Address,
        leg: LiveCall,
        /// When the agent answered: the moment the service timer started from, so the
        /// record's service time is the one the timeout measured, not shortened by the
        /// handoff to the caller's task.
        served_at: chrono::DateTime<Utc>,
    },
    /// Leave the queue; the flow goes on (`wait_timeout`, `kicked`, `service_timeout`).
    Leave { reason: &'static str },
}

fn ms(v: i64) -> Option<Duration> {
    (v > 0).then(|| Duration::from_millis(v.unsigned_abs()))
}

fn settings_of(queue: &Queue) -> Settings {
    Settings {
        strategy: Strategy::from_method(&queue.routing_method).unwrap_or(Strategy::RingAll),
        ring_timeout: ms(queue.agent_ring_timeout).unwrap_or(DEFAULT_RING_TIMEOUT),
        retry: ms(queue.retry_interval).unwrap_or(DEFAULT_RETRY),
    }
}

/// Whether `method` names a ring strategy (the API checks a queue with it).
pub(crate) fn valid_routing_method(method: &str) -> bool {
    Strategy::from_method(method).is_some()
}

/// The machine's key of an agent: its address as one string.
fn agent_key(a: &Address) -> String {
    if a.kind.is_empty() {
        a.target.clone()
    } else {
        format!("{}:{}", a.kind, a.target)
    }
}

fn agents_of(queue: &Queue) -> (Vec<String>, HashMap<String, Address>) {
    let mut keys = Vec::new();
    let mut by_key = HashMap::new();
    for a in &queue.agents {
        let key = agent_key(a);
        keys.push(key.clone());
        by_key.insert(key, a.clone());
    }
    (keys, by_key)
}

/// The variables VoIPBIN sets when a call joins a queue.
fn queue_variables(queue: &Queue, qc: &Queuecall) -> Vec<(String, String)> {
    vec![
        ("voipbin.queue.id".into(), queue.id.to_string()),
        ("voipbin.queue.name".into(), queue.name.clone()),
        ("voipbin.queue.detail".into(), queue.detail.clone()),
        ("voipbin.queuecall.id".into(), qc.id.to_string()),
        (
            "voipbin.queuecall.timeout_wait".into(),
            qc.timeout_wait.to_string(),
        ),
        (
            "voipbin.queuecall.timeout_service".into(),
            qc.timeout_service.to_string(),
        ),
    ]
}

/// One queue's driver: the machine, the callers' channels and the agents' legs.
struct Driver {
    rt: Runtime,
    queue_id: Uuid,
    machine: QueueMachine,
    agents: HashMap<String, Address>,
    callers: HashMap<Uuid, Caller>,
    /// Ringing legs by (caller, agent).
    legs: HashMap<(Uuid, String), LiveCall>,
    tx: mpsc::UnboundedSender<Input>,
}

struct Caller {
    call: LiveCall,
    source: Address,
    events: mpsc::UnboundedSender<ToCaller>,
    /// Wall-clock time of the agent's answer, set with the machine's `answered`.
    answered_at: Option<chrono::DateTime<Utc>>,
}

impl Driver {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Input>) {
        let cancel = self.rt.cancel_token().clone();
        loop {
            let deadline = self.machine.next_deadline();
            let effects = tokio::select! {
                () = cancel.cancelled() => break,
                input = rx.recv() => match input {
                    Some(input) => self.on_input(input),
                    None => break,
                },
                () = sleep_until(deadline), if deadline.is_some() => {
                    self.machine.tick(Instant::now())
                }
            };
            self.apply(effects).await;
        }
        debug!(queue = %self.queue_id, "queue driver stopped");
    }

    fn on_input(&mut self, input: Input) -> Vec<Effect> {
        // The wall clock is read first: a service time measured from it to a moment after
        // the timer fired is never shorter than the timeout.
        let wall = Utc::now();
        let now = Instant::now();
        match input {
            Input::Join {
                queue,
                caller,
                call,
                source,
                wait,
                service,
                events,
            } => {
                let mut effects = self.reconfigure(&queue);
                self.callers.insert(
                    caller,
                    Caller {
                        call,
                        source,
                        events,
                        answered_at: None,
                    },
                );
                effects.extend(self.machine.join(caller, wait, service, now));
                effects
            }
            Input::Leave { caller } => {
                self.callers.remove(&caller);
                self.machine.leave(caller, now)
            }
            Input::Kick { caller, reply } => {
                let known = self.callers.remove(&caller);
                let _ = reply.send(known.is_some());
                if let Some(c) = known {
                    let _ = c.events.send(ToCaller::Leave { reason: "kicked" });
                }
                self.machine.leave(caller, now)
            }
            Input::Reconfigure(queue) => self.reconfigure(&queue),
            Input::Answered { caller, agent, leg } => {
                if self.legs.get(&(caller, agent.clone())).map(LiveCall::id) != Some(leg) {
                    return Vec::new(); // a leg cancelled meanwhile
                }
                if let Some(c) = self.callers.get_mut(&caller) {
                    c.answered_at = Some(wall);
                }
                self.machine.answered(caller, &agent, now)
            }
            Input::Refused { caller, agent, leg } => {
                let key = (caller, agent.clone());
                if self.legs.get(&key).map(LiveCall::id) != Some(leg) {
                    return Vec::new();
                }
                self.legs.remove(&key);
                self.machine.refused(caller, &agent, now)
            }
        }
    }

    fn reconfigure(&mut self, queue: &Queue) -> Vec<Effect> {
        let (keys, by_key) = agents_of(queue);
        // Agents still ringing or talking keep their address until their call ends.
        self.agents.retain(|k, _| by_key.contains_key(k));
        self.agents.extend(by_key);
        self.machine
            .reconfigure(settings_of(queue), keys, Instant::now())
    }

    async fn apply(&mut self, effects: Vec<Effect>) {
        let mut work: VecDeque<Effect> = effects.into();
        while let Some(effect) = work.pop_front() {
            match effect {
                Effect::Ring { caller, agent } => {
                    if let Err(why) = self.ring(caller, &agent).await {
                        info!(queue = %self.queue_id, queuecall = %caller, %agent, cause = %why, "agent not rung");
                        work.extend(self.machine.refused(caller, &agent, Instant::now()));
                    }
                }
                Effect::Cancel { caller, agent } => {
                    if let Some(leg) = self.legs.remove(&(caller, agent)) {
                        // Awaited to the leg's end: the next agent may be on the same
                        // line (a modem carries one call), which is busy until then.
                        leg.hangup("cancel").await;
                        let _ = tokio::time::timeout(CANCEL_WAIT, leg.wait_phase(|_| false)).await;
                    }
                }
                Effect::Connect { caller, agent } => {
                    let Some(leg) = self.legs.remove(&(caller, agent.clone())) else {
                        work.extend(self.machine.leave(caller, Instant::now()));
                        continue;
                    };
                    let address = self.agents.get(&agent).cloned().unwrap_or_default();
                    let sent = self.callers.get(&caller).is_some_and(|c| {
                        c.events
                            .send(ToCaller::Connect {
                                agent: address,
                                leg: leg.clone(),
                                // Connect follows `answered`, which stamped it.
                                served_at: c.answered_at.unwrap_or_else(Utc::now),
                            })
                            .is_ok()
                    });
                    if !sent {
                        self.rt.spawn(async move { leg.hangup("normal").await });
                        self.callers.remove(&caller);
                        work.extend(self.machine.leave(caller, Instant::now()));
                    }
                }
                Effect::WaitTimeout { caller } => {
                    if let Some(c) = self.callers.remove(&caller) {
                        let _ = c.events.send(ToCaller::Leave {
                            reason: "wait_timeout",
                        });
                    }
                }
                Effect::ServiceTimeout { caller, .. } => {
                    if let Some(c) = self.callers.remove(&caller) {
                        let _ = c.events.send(ToCaller::Leave {
                            reason: "service_timeout",
                        });
                    }
                }
            }
        }
    }

    /// Dials `agent` for `caller` and watches the leg until it answers or ends.
    async fn ring(&mut self, caller: Uuid, agent: &str) -> Result<(), String> {
        let Some(c) = self.callers.get(&caller) else {
            return Err("the caller left".into());
        };
        let Some(destination) = self.agents.get(agent).cloned() else {
            return Err("not an agent of the queue any more".into());
        };
        let request = DialRequest {
            id: None,
            source: c.source.clone(),
            destination,
            flow: None,
            variables: IndexMap::new(),
            master_call_id: Some(c.call.id()),
            line_id: String::new(),
            prefer_line: String::new(),
        };
        let record = self.rt.dial(request).await.map_err(|e| e.to_string())?;
        let Some(leg) = self.rt.live_call_by_id(record.id) else {
            return Err(format!("the call ended at once ({})", record.hangup_reason));
        };
        info!(queue = %self.queue_id, queuecall = %caller, %agent, leg = %leg.id(), "ringing agent");
        self.legs.insert((caller, agent.to_owned()), leg.clone());
        let tx = self.tx.clone();
        let agent = agent.to_owned();
        self.rt.spawn(async move {
            let phase = leg.wait_phase(|p| matches!(p, Phase::Answered)).await;
            let id = leg.id();
            let _ = tx.send(match phase {
                Phase::Answered => Input::Answered {
                    caller,
                    agent,
                    leg: id,
                },
                _ => Input::Refused {
                    caller,
                    agent,
                    leg: id,
                },
            });
        });
        Ok(())
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

impl Runtime {
    /// The driver of `queue`, started on first use.
    fn queue_driver(&self, queue: &Queue) -> mpsc::UnboundedSender<Input> {
        let mut table = self.inner.queues.lock();
        if let Some(entry) = table.get(&queue.id)
            && !entry.tx.is_closed()
        {
            return entry.tx.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let (keys, agents) = agents_of(queue);
        let driver = Driver {
            rt: self.clone(),
            queue_id: queue.id,
            machine: QueueMachine::new(settings_of(queue), keys),
            agents,
            callers: HashMap::new(),
            legs: HashMap::new(),
            tx: tx.clone(),
        };
        self.spawn(driver.run(rx));
        let members = table
            .remove(&queue.id)
            .map(|e| e.members)
            .unwrap_or_default();
        table.insert(
            queue.id,
            QueueEntry {
                tx: tx.clone(),
                members,
            },
        );
        tx
    }

    /// A queue changed through the API: its driver (if running) takes the new agents and
    /// settings.
    pub(crate) fn queue_updated(&self, queue: &Queue) {
        if let Some(entry) = self.inner.queues.lock().get(&queue.id) {
            let _ = entry.tx.send(Input::Reconfigure(Box::new(queue.clone())));
        }
    }

    /// The queuecalls in `queue_id` now: (waiting, being served).
    #[must_use]
    pub fn queue_members(&self, queue_id: Uuid) -> (Vec<Uuid>, Vec<Uuid>) {
        let table = self.inner.queues.lock();
        let Some(entry) = table.get(&queue_id) else {
            return (Vec::new(), Vec::new());
        };
        let pick = |service: bool| {
            entry
                .members
                .iter()
                .filter(|(_, s)| (**s == QueuecallStatus::Service) == service)
                .map(|(id, _)| *id)
                .collect()
        };
        (pick(false), pick(true))
    }

    fn set_member(&self, queue_id: Uuid, queuecall: Uuid, status: Option<QueuecallStatus>) {
        let mut table = self.inner.queues.lock();
        if let Some(entry) = table.get_mut(&queue_id) {
            match status {
                Some(s) => {
                    entry.members.insert(queuecall, s);
                }
                None => {
                    entry.members.shift_remove(&queuecall);
                }
            }
        }
    }

    /// Closes the queuecalls a restart interrupted (their calls did not survive it):
    /// `abandoned` when unserved, else `done`, with reason `restart`. Returns how many.
    pub(crate) fn queuecalls_recover(&self) -> Result<usize, RuntimeError> {
        let mut open = Vec::new();
        for entry in self.db().queuecalls.iter() {
            let (id, qc) = entry?;
            if !matches!(
                qc.status,
                QueuecallStatus::Done | QueuecallStatus::Abandoned
            ) {
                open.push(id);
            }
        }
        let now = Utc::now();
        for id in &open {
            update_queuecall(self, *id, |qc| {
                qc.status = if qc.tm_service.is_some() {
                    QueuecallStatus::Done
                } else {
                    QueuecallStatus::Abandoned
                };
                qc.end_reason = "restart".into();
                qc.tm_end = Some(now);
            })?;
        }
        Ok(open.len())
    }

    /// Kicks a queuecall out of its queue: the caller's flow goes on after `queue_join`
    /// (an agent it talks to is hung up). Returns the record, `kicking` until the caller
    /// has left; `Ok(None)` when there is no such queuecall.
    pub async fn queuecall_kick(&self, id: Uuid) -> Result<Option<Queuecall>, RuntimeError> {
        let Some(record) = self.db().queuecalls.get(id)? else {
            return Ok(None);
        };
        if matches!(
            record.status,
            QueuecallStatus::Done | QueuecallStatus::Abandoned
        ) {
            return Err(RuntimeError::Invalid(format!(
                "queuecall {id} is over ({:?})",
                record.status
            )));
        }
        let tx = self
            .inner
            .queues
            .lock()
            .get(&record.queue_id)
            .map(|e| e.tx.clone());
        let (reply, known) = oneshot::channel();
        let sent = tx.is_some_and(|tx| tx.send(Input::Kick { caller: id, reply }).is_ok());
        if !sent || !known.await.unwrap_or(false) {
            return Err(RuntimeError::Invalid(format!(
                "queuecall {id} is not in its queue any more"
            )));
        }
        update_queuecall(self, id, |qc| {
            if !matches!(
                qc.status,
                QueuecallStatus::Done | QueuecallStatus::Abandoned
            ) {
                qc.status = QueuecallStatus::Kicking;
            }
        })
    }
}

/// Read-modify-write of a queuecall with a `queuecall_updated` event.
fn update_queuecall(
    rt: &Runtime,
    id: Uuid,
    change: impl FnOnce(&mut Queuecall),
) -> Result<Option<Queuecall>, RuntimeError> {
    let db = rt.db();
    let _guard = rt.inner.call_lock.lock();
    let Some(mut qc) = db.queuecalls.get(id)? else {
        return Ok(None);
    };
    change(&mut qc);
    qc.tm_update = Utc::now();
    let mut batch = Batch::new();
    batch.put(&db.queuecalls, id, &qc)?;
    batch.event(
        "queuecall_updated",
        id,
        serde_json::to_value(&qc).unwrap_or_default(),
    );
    db.store.commit(batch)?;
    Ok(Some(qc))
}

/// Adds to a queue's counters.
fn count(rt: &Runtime, queue_id: Uuid, change: impl FnOnce(&mut Queue)) {
    let db = rt.db();
    let _guard = rt.inner.call_lock.lock();
    let result = (|| -> Result<(), RuntimeError> {
        let Some(mut q) = db.queues.get(queue_id)? else {
            return Ok(());
        };
        change(&mut q);
        let mut batch = Batch::new();
        batch.put(&db.queues, queue_id, &q)?;
        db.store.commit(batch)?;
        Ok(())
    })();
    if let Err(e) = result {
        warn!(queue = %queue_id, cause = %e, "queue counters not updated");
    }
}

/// The caller's stay in the queue; dropping it (however the action ends) takes the
/// caller out and settles the record.
struct Stay {
    rt: Runtime,
    queue_id: Uuid,
    queuecall: Uuid,
    call: LiveCall,
    joined: chrono::DateTime<Utc>,
    /// The agent's leg once connected.
    agent: Option<LiveCall>,
    served_at: Option<chrono::DateTime<Utc>>,
    /// Why the stay ended, when the action decided it (else the caller is gone).
    reason: Option<&'static str>,
}

impl Drop for Stay {
    fn drop(&mut self) {
        if let Some(tx) = self
            .rt
            .inner
            .queues
            .lock()
            .get(&self.queue_id)
            .map(|e| e.tx.clone())
        {
            let _ = tx.send(Input::Leave {
                caller: self.queuecall,
            });
        }
        if let Some(agent) = self.agent.take() {
            self.call.leave_bridge();
            agent.leave_bridge();
            if !agent.is_ended() {
                let rt = self.rt.clone();
                rt.spawn(async move { agent.hangup("normal").await });
            }
        }
        let now = Utc::now();
        let served = self.served_at;
        // VoIPBIN: leaving unserved — hung up, kicked, timed out — is abandoned.
        let (status, reason) = match (self.reason, served) {
            (r, Some(_)) => (QueuecallStatus::Done, r.unwrap_or("service_end")),
            (r, None) => (QueuecallStatus::Abandoned, r.unwrap_or("hangup")),
        };
        if status == QueuecallStatus::Abandoned {
            count(&self.rt, self.queue_id, |q| q.total_abandoned_count += 1);
        }
        let joined = self.joined;
        let _ = update_queuecall(&self.rt, self.queuecall, |qc| {
            qc.status = status;
            qc.end_reason = reason.to_owned();
            qc.tm_end = Some(now);
            match served {
                Some(at) => qc.duration_service = (now - at).num_milliseconds(),
                None => qc.duration_waiting = (now - joined).num_milliseconds(),
            }
        });
        self.rt.set_member(self.queue_id, self.queuecall, None);
        info!(queue = %self.queue_id, queuecall = %self.queuecall, ?status, reason, "left the queue");
    }
}

impl LiveCall {
    /// Performs `queue_join` for the flow `activeflow` on this call.
    pub(super) async fn queue_join(
        &self,
        activeflow: Uuid,
        option: QueueJoinOption,
        variables: IndexMap<String, String>,
    ) -> Outcome {
        let fail = |why: String| Outcome::Failed(format!("queue_join: {why}"));
        let rt = self.inner.rt.clone();
        let Some(queue_id) = option.queue_id.non_nil() else {
            return fail("no queue id".into());
        };
        let queue = match rt.db().queues.get(queue_id) {
            Ok(Some(q)) => q,
            Ok(None) => return fail(format!("queue {queue_id} does not exist")),
            Err(e) => return fail(e.to_string()),
        };
        let source = match rt.db().calls.get(self.id()) {
            Ok(Some(c)) => c.source,
            Ok(None) => return fail("the call record is gone".into()),
            Err(e) => return fail(e.to_string()),
        };
        if let Err(e) = self.answer().await {
            return fail(format!("answering the call: {e}"));
        }
        let now = Utc::now();
        let qc = Queuecall {
            id: Uuid::now_v7(),
            queue_id,
            reference_type: "call".into(),
            reference_id: self.id(),
            reference_activeflow_id: Some(activeflow),
            source: source.clone(),
            routing_method: queue.routing_method.clone(),
            tag_ids: queue.tag_ids.clone(),
            status: QueuecallStatus::Waiting,
            service_agent_id: None,
            service_agent: Address::default(),
            service_call_id: None,
            timeout_wait: queue.wait_timeout.max(0),
            timeout_service: queue.service_timeout.max(0),
            duration_waiting: 0,
            duration_service: 0,
            end_reason: String::new(),
            tm_create: now,
            tm_service: None,
            tm_update: now,
            tm_end: None,
        };
        let mut wait_vars = variables;
        for (name, value) in queue_variables(&queue, &qc) {
            let _ = rt.signal(
                activeflow,
                Signal::SetVariable {
                    name: name.clone(),
                    value: value.clone(),
                },
            );
            wait_vars.insert(name, value);
        }

        let (events_tx, mut events) = mpsc::unbounded_channel();
        let driver = rt.queue_driver(&queue);
        // The queue lists its member and counts it before the queuecall record is visible:
        // whoever reads a `waiting` queuecall finds it in its queue too.
        rt.set_member(queue_id, qc.id, Some(QueuecallStatus::Waiting));
        count(&rt, queue_id, |q| q.total_incoming_count += 1);
        {
            let db = rt.db();
            let mut batch = Batch::new();
            let stored = match batch.put(&db.queuecalls, qc.id, &qc) {
                Ok(_) => {
                    batch.event(
                        "queuecall_created",
                        qc.id,
                        serde_json::to_value(&qc).unwrap_or_default(),
                    );
                    db.store.commit(batch).map(drop)
                }
                Err(e) => Err(e),
            };
            if let Err(e) = stored {
                rt.set_member(queue_id, qc.id, None);
                return fail(e.to_string());
            }
        }
        let mut stay = Stay {
            rt: rt.clone(),
            queue_id,
            queuecall: qc.id,
            call: self.clone(),
            joined: now,
            agent: None,
            served_at: None,
            reason: None,
        };
        let joined = driver.send(Input::Join {
            queue: Box::new(queue.clone()),
            caller: qc.id,
            call: self.clone(),
            source,
            wait: ms(queue.wait_timeout),
            service: ms(queue.service_timeout),
            events: events_tx,
        });
        if joined.is_err() {
            stay.reason = Some("stopping");
            return fail("the gateway is stopping".into());
        }
        info!(call = %self.id(), queue = %queue_id, queuecall = %qc.id, "joined the queue");

        // Wait: the wait flow or music on hold, until the driver says what next.
        let next = {
            let wait = self.wait_audio(&queue, &wait_vars);
            tokio::pin!(wait);
            tokio::select! {
                next = events.recv() => next,
                () = &mut wait => None,
                _ = self.wait_phase(|_| false) => return Outcome::Hangup,
            }
        };
        self.end_wait_audio().await;
        let (agent, leg, served_at) = match next {
            Some(ToCaller::Connect {
                agent,
                leg,
                served_at,
            }) => (agent, leg, served_at),
            Some(ToCaller::Leave { reason }) => {
                stay.reason = Some(reason);
                return Outcome::Done;
            }
            None => {
                stay.reason = Some("stopping");
                return Outcome::Done;
            }
        };

        // Served.
        stay.agent = Some(leg.clone());
        stay.served_at = Some(served_at);
        rt.set_member(queue_id, qc.id, Some(QueuecallStatus::Service));
        count(&rt, queue_id, |q| q.total_serviced_count += 1);
        let _ = update_queuecall(&rt, qc.id, |r| {
            r.status = QueuecallStatus::Service;
            r.service_agent = agent.clone();
            r.service_call_id = Some(leg.id());
            r.tm_service = Some(served_at);
            r.duration_waiting = (served_at - now).num_milliseconds();
        });
        if let Err(e) = self.join_audio(&leg).await {
            warn!(call = %self.id(), agent = %leg.id(), cause = %e, "queue: audio not bridged");
        }
        info!(call = %self.id(), queuecall = %qc.id, agent = %agent.target, leg = %leg.id(), "queue: caller put through to the agent");
        tokio::select! {
            _ = leg.wait_phase(|_| false) => {}
            _ = self.wait_phase(|_| false) => {}
            next = events.recv() => {
                if let Some(ToCaller::Leave { reason }) = next {
                    stay.reason = Some(reason);
                }
            }
        }
        let hung_up = self.is_ended();
        drop(stay);
        if hung_up {
            Outcome::Hangup
        } else {
            Outcome::Done
        }
    }

    /// What the caller hears while waiting: the queue's wait flow again and again, or
    /// music on hold. Never ends by itself unless the call does.
    async fn wait_audio(&self, queue: &Queue, variables: &IndexMap<String, String>) {
        if let Some(flow_id) = queue.wait_flow_id {
            match self.inner.rt.db().flows.get(flow_id) {
                Ok(Some(flow)) => loop {
                    let started = Instant::now();
                    match self.wait_flow_pass(&flow, variables).await {
                        WaitPass::Hangup => return,
                        WaitPass::Played if started.elapsed() >= MIN_WAIT_PASS => {}
                        _ => {
                            info!(call = %self.id(), flow = %flow_id, "queue: the wait flow does not loop; music on hold instead");
                            break;
                        }
                    }
                },
                Ok(None) => {
                    warn!(call = %self.id(), flow = %flow_id, "queue: the wait flow does not exist; music on hold")
                }
                Err(e) => {
                    warn!(call = %self.id(), cause = %e, "queue: wait flow not read; music on hold")
                }
            }
        }
        if let Ok(media) = self.media().await
            && let Err(e) = media.hold(true).await
        {
            debug!(call = %self.id(), cause = %e, "queue: no music on hold");
        }
        std::future::pending::<()>().await;
    }

    /// The wait is over: music on hold and wait-flow audio stop.
    async fn end_wait_audio(&self) {
        if let Some(media) = self.open_media_session() {
            let _ = media.stop_layer(crate::media::Layer::Flow);
            let _ = media.hold(false).await;
        }
    }

    /// One pass of the wait flow in a nested engine (see the module docs).
    async fn wait_flow_pass(&self, flow: &Flow, variables: &IndexMap<String, String>) -> WaitPass {
        let rt = self.inner.rt.clone();
        let mut spec = ActiveflowSpec::new(Uuid::now_v7(), flow, ReferenceType::Call, self.id());
        spec.on_complete_flow_id = None;
        spec.inherited_variables = variables.clone();
        let mut af = match Activeflow::new(spec, rt.guards()) {
            Ok(af) => af,
            Err(e) => {
                warn!(call = %self.id(), cause = %e, "queue: the wait flow does not run");
                return WaitPass::Nothing;
            }
        };
        let mut played = false;
        loop {
            match af.run(Utc::now()) {
                Step::Execute(command) => {
                    let kind = command.kind();
                    let action_id = command.action_id;
                    let outcome = if matches!(
                        kind,
                        ActionType::Answer
                            | ActionType::Talk
                            | ActionType::Play
                            | ActionType::Beep
                            | ActionType::Sleep
                            | ActionType::Echo
                    ) {
                        played = true;
                        self.perform_inner(command, Uuid::now_v7(), IndexMap::new())
                            .await
                    } else {
                        Outcome::Failed(format!("{kind} is not run in a queue's wait flow"))
                    };
                    if outcome == Outcome::Hangup || self.is_ended() {
                        return WaitPass::Hangup;
                    }
                    if let Outcome::Failed(why) = &outcome {
                        debug!(call = %self.id(), %kind, cause = %why, "queue: wait flow action failed");
                    }
                    if af.complete(action_id, outcome, Utc::now()).is_err() {
                        return WaitPass::Nothing;
                    }
                }
                Step::Blocked | Step::Ended(_) => {
                    return if played {
                        WaitPass::Played
                    } else {
                        WaitPass::Nothing
                    };
                }
            }
        }
    }
}

/// How a pass of the wait flow ended.
enum WaitPass {
    /// It performed media actions.
    Played,
    /// It performed nothing (or could not run).
    Nothing,
    /// The call ended.
    Hangup,
}
