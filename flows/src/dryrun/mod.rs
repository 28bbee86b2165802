//! Dry run: a flow offline against a scripted channel — `flowgate flow run`, a unit-test
//! tool for flows.
//!
//! Pure: no I/O and no clock. What the gateway's runtime does around a flow is simulated
//! (module `channel`): the variables it sets at the start (`voipbin.call.*` with
//! `voipbin.call.status` `ringing`, `voipbin.conversation*`, `voipbin.gateway.*` — line,
//! transport, modem —, `voipbin.flow.reference_data`), `voipbin.call.status` becoming
//! `progressing` when the call is answered (by `answer`, or by the media commands that answer
//! first), `voipbin.recording.*` after `recording_start`, and the runtime's own failures (a
//! second `recording_start`, a call command — `connect` included — once the call is over).
//! `--var` values override any of them.
//!
//! Media commands complete at once while a virtual clock advances by the durations their
//! options state (`sleep`, `echo`, `digits_send`, a `digits_receive` timeout); service
//! commands (`message_send`, `webhook_send`, `call`, `email_send`, …) are recorded with every
//! option substituted — exactly what the runtime would be handed — not performed.
//! `fetch_flow` is answered from [`DryRunConfig::flows`] (the CLI's `--with` files), `fetch`
//! by the caller's closure (the CLI maps URLs to files or other URLs with `--fetch`).
//!
//! When a flow ends with an `on_complete_flow_id` found among [`DryRunConfig::flows`], the
//! follow-up runs next (inheriting the variables, `complete_count` + 1, no live call — as on
//! the gateway, where the call is hung up by then), until the engine's chain limit
//! ([`Guards::max_complete_count`]) refuses one. The report lists each flow with how it ended
//! and what followed ([`DryRunReport::flows`]).
//!
//! # The script
//!
//! Scripted events ([`InputEvent`], one per `--input`, or one per line of a `--script` file,
//! `#` comments) are consumed **in order**. Channel input is taken by the command it applies
//! to; interrupts (what a client would send through the API) apply at the next point where
//! the flow **waits** — a command handed to the runtime, or a `block` — before that command
//! takes any input; an `at:` marker holds everything after it until the cursor has reached the
//! named action.
//!
//! | event | applies to | effect |
//! |---|---|---|
//! | `dtmf:DIGITS` | the next `digits_receive` | digits pressed one by one; digits left over once it is satisfied stay queued for the next one (type-ahead) |
//! | `press:DIGITS` | the next call-media command that takes time (e.g. a `talk` prompt) | digits pressed while it plays: barge-in with `digits_handle: next`, otherwise they overwrite `voipbin.call.digits` |
//! | `timeout` | the next `digits_receive` | it times out (also what happens when no input is left) |
//! | `hangup` | the next call-media command that takes time | the caller hangs up there |
//! | `fail[:REASON]` | the next command of any kind | it fails (tests error policies) |
//! | `at:TARGET` | — | the events after it wait until the cursor has reached TARGET (an action that waits there takes them) |
//! | `forward:TARGET` | the next waiting point | `forward_action_id` without `forward_now`: the pending command finishes (and takes its input), then the flow jumps |
//! | `forward-now:TARGET` | the next waiting point | `forward_action_id` with `forward_now`: the pending command or block is abandoned, the flow jumps at once |
//! | `push:SOURCE` / `push-now:SOURCE` | the next waiting point | `push_actions`: SOURCE is a JSON array of actions (inline, or a file for the CLI); they run next (`-now`: at once), then the flow goes on after the current action |
//! | `continue[:TARGET]` | the next `block` | `continue` with the block's id (or TARGET); the events after it wait for that block too |
//! | `stop[:REASON]` | the next waiting point | the API's stop (reason `stopped through the API`) |
//!
//! TARGET is an action id or `actions[N]`, the N-th action of the flow running at that moment.
//! Commands that take time on the call are `talk`, `play`, `beep`, `digits_receive`,
//! `digits_send`, `sleep`, `echo`, `amd`, `connect`, `queue_join`, …; instant ones (`answer`,
//! `recording_start`, `hangup`, …) never take channel input. An interrupt the engine refuses
//! (an unknown target, `continue` naming another action) is reported, like the API's 4xx,
//! and the run goes on. A `block` that nothing continues ends the flow (stopped).
//!
//! ```
//! use flowgate_flows::dryrun::{dry_run, DryRunConfig, InputEvent, no_fetch};
//! use flowgate_flows::{limits::Limits, model::parse_flow};
//! let flow = parse_flow(r#"[{"type":"digits_receive","option":{"duration":3000,"length":2}},
//!     {"type":"variable_set","option":{"key":"got","value":"${voipbin.call.digits}"}}]"#,
//!     &Limits::default()).unwrap();
//! let cfg = DryRunConfig { inputs: vec!["dtmf:42".parse().unwrap()], ..DryRunConfig::default() };
//! let report = dry_run(&flow, &cfg, &mut no_fetch).unwrap();
//! assert_eq!(report.variables["got"], "42");
//! assert_eq!(report.end, "finished");
//! ```

mod channel;
mod script;

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};
use indexmap::IndexMap;
use serde::{Serialize, Serializer};
use serde_json::Value;
use uuid::Uuid;

use crate::engine::{
    Activeflow, ActiveflowSpec, Command, DtmfEffect, End, EndReason, EngineError, FollowUp,
    ForwardEffect, Guards, Outcome, Step, TraceOutcome,
};
use crate::model::{Action, ActionType, CommandOption, Flow, ID_START, Media, ReferenceType};

pub use channel::{DEFAULT_MODEM_ID, DRY_RUN_CALL_ID, DRY_RUN_CONVERSATION_ID, DRY_RUN_MESSAGE_ID};
pub use script::{
    API_STOP_REASON, InputError, InputEvent, Target, actions_of, parse_input, parse_now,
    parse_reference, parse_var, script_lines,
};

use channel::Channel;

/// What a `fetch` asks the caller for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FetchRequest {
    /// `fetch`: an HTTP request whose reply is a JSON array of actions.
    Fetch {
        /// URL (substituted).
        url: String,
        /// Method (`GET` when the option was empty).
        method: String,
        /// The body VoIPBIN sends: `{"activeflow_id", "reference_id"}`.
        body: Value,
    },
    /// `fetch_flow` of a flow that is not in [`DryRunConfig::flows`].
    FetchFlow {
        /// The flow id.
        flow_id: Uuid,
    },
}

/// A fetch handler that refuses everything (for flows without fetch).
pub fn no_fetch(_: &FetchRequest) -> Result<Vec<Action>, String> {
    Err("fetching is not available in this dry run".to_owned())
}

/// Dry-run settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DryRunConfig {
    /// What started the flow (media gating). Default `call`.
    pub reference_type: ReferenceType,
    /// Variables set before the first action, over the ones the runtime would set
    /// (trusted: `voipbin.*` allowed, except `voipbin.activeflow.*`).
    pub variables: IndexMap<String, String>,
    /// The script.
    pub inputs: Vec<InputEvent>,
    /// Virtual start time (for `condition_datetime`).
    pub now: DateTime<Utc>,
    /// Engine guards (the trace window is raised to keep the whole trace).
    pub guards: Guards,
    /// Other flows, by id: `fetch_flow` pushes their actions, `on_complete_flow_id`
    /// follow-ups run them.
    pub flows: Vec<Flow>,
}

impl Default for DryRunConfig {
    fn default() -> Self {
        Self {
            reference_type: ReferenceType::Call,
            variables: IndexMap::new(),
            inputs: Vec::new(),
            now: DateTime::<Utc>::UNIX_EPOCH,
            guards: Guards::default(),
            flows: Vec::new(),
        }
    }
}

/// One action the cursor reached.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceEntry {
    /// Which flow of the run (index into [`DryRunReport::flows`]; 0 is the flow given).
    pub flow: usize,
    /// Action id.
    pub id: Uuid,
    /// Action type.
    #[serde(rename = "type")]
    pub kind: ActionType,
    /// `executed`, `skipped` or `failed`.
    pub outcome: TraceOutcome,
    /// Why it failed, was cut short, or completed without a command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Position in its stack (`actions[index]` for the flow's own actions).
    pub index: usize,
    /// The stack, when not the flow's own (fetched/pushed actions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<Uuid>,
    /// Virtual time when the cursor reached it.
    pub at: DateTime<Utc>,
    /// The substituted options of a command: everything the runtime would be handed (the
    /// text `message_send` would send, the URL `fetch` would request, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub option: Option<Value>,
    /// Scripted events it took, interrupts applied while it waited, or how it completed
    /// (`; `-separated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
}

/// What followed a flow of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FollowUpReport {
    /// No `on_complete_flow_id`.
    None,
    /// The follow-up ran: the next entry of [`DryRunReport::flows`].
    Started {
        /// Its flow.
        flow_id: Uuid,
        /// Its chain depth.
        complete_count: u32,
    },
    /// The chain limit refused it ([`Guards::max_complete_count`]).
    Refused {
        /// The flow that would have run.
        flow_id: Uuid,
        /// The depth it would have had.
        complete_count: u32,
    },
    /// It would start on the gateway, but the flow is not among [`DryRunConfig::flows`].
    Missing {
        /// The flow that would run.
        flow_id: Uuid,
        /// The depth it would have.
        complete_count: u32,
    },
    /// The engine refused to create it (its actions or variables).
    NotStarted {
        /// The flow.
        flow_id: Uuid,
        /// Why.
        reason: String,
    },
}

/// One flow of the run (the flow given, then its on-complete follow-ups).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowRun {
    /// The flow id (nil when the file has none).
    pub flow_id: Uuid,
    /// The activeflow id the dry run gave it.
    pub activeflow_id: Uuid,
    /// Chain depth (0 for the flow given).
    pub complete_count: u32,
    /// Its reference type.
    pub reference_type: ReferenceType,
    /// Why it ended (`{"kind": "finished" | "stopped" | "error" | "guard" | "hangup",
    /// "detail": …}`).
    pub ended: EndReason,
    /// The same as text, with what followed.
    pub end: String,
    /// What followed.
    pub follow_up: FollowUpReport,
    /// Its variables when it ended, sorted by name.
    pub variables: IndexMap<String, String>,
}

/// An interrupt of the script, where it applied and what the engine made of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterruptReport {
    /// Which flow of the run.
    pub flow: usize,
    /// The action the flow waited on (a command or a `block`).
    pub action: Uuid,
    /// The event, as written in the script.
    pub event: String,
    /// `interrupted`, `queued`, `continued`, `stopped`, or `refused: …` (what the API
    /// would answer with a 4xx).
    pub effect: String,
}

/// The result of a dry run. Serializes as `{"trace": […], "variables": {…}, "end": "…",
/// "flows": […], "interrupts": […], "unused_inputs": […]}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DryRunReport {
    /// Every action the cursor reached, in order, over all flows of the run.
    pub trace: Vec<TraceEntry>,
    /// Final variables of the last flow that ran, sorted by name.
    pub variables: IndexMap<String, String>,
    /// How the last flow ended, as text (`finished`, `hangup`, `stopped: …`, `error: …`,
    /// `guard: …`, with what followed in parentheses).
    pub end: String,
    /// Every flow that ran: the flow given, then its on-complete follow-ups.
    pub flows: Vec<FlowRun>,
    /// The script's interrupts.
    pub interrupts: Vec<InterruptReport>,
    /// Scripted events that were never consumed.
    #[serde(serialize_with = "as_strings")]
    pub unused_inputs: Vec<InputEvent>,
    /// The engine's [`End`] of the last flow (not serialized).
    #[serde(skip)]
    pub end_detail: End,
}

fn as_strings<S: Serializer>(events: &[InputEvent], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(events.iter().map(ToString::to_string))
}

impl DryRunReport {
    /// Whether any flow of the run ended with an error or on a guard.
    pub fn failed(&self) -> bool {
        self.flows
            .iter()
            .any(|f| matches!(f.ended, EndReason::Error(_) | EndReason::Guard(_)))
    }
}

/// Why a dry run could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DryRunError {
    /// The engine refused the flow or the variables.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Activeflow ids of the run: the flow given, then its follow-ups.
fn activeflow_id(n: usize) -> Uuid {
    Uuid::from_u128(0xd1ce + u128::try_from(n).unwrap_or(0))
}

/// Runs `flow` with the scripted channel of `cfg`, then its on-complete follow-ups found in
/// `cfg.flows`. `fetch` answers `fetch` (and `fetch_flow` of flows not in `cfg.flows`).
pub fn dry_run(
    flow: &Flow,
    cfg: &DryRunConfig,
    fetch: &mut dyn FnMut(&FetchRequest) -> Result<Vec<Action>, String>,
) -> Result<DryRunReport, DryRunError> {
    let mut guards = cfg.guards.clone();
    guards.trace_window = usize::try_from(guards.max_executions)
        .unwrap_or(usize::MAX)
        .clamp(guards.trace_window, 1_000_000);
    let (channel, variables) = Channel::new(cfg.reference_type, &cfg.variables, cfg.now);
    let mut spec = ActiveflowSpec::new(
        activeflow_id(0),
        flow,
        cfg.reference_type,
        channel.reference_id(),
    );
    spec.variables = variables;
    let mut af = Activeflow::new(spec, &guards)?;
    let mut run = Runner {
        cfg,
        script: cfg.inputs.iter().cloned().collect(),
        now: cfg.now,
        trace: Vec::new(),
        interrupts: Vec::new(),
        channel,
        fetch,
    };
    let mut flows: Vec<FlowRun> = Vec::new();
    let mut current = flow;
    loop {
        let index = flows.len();
        let mut cur = Current {
            index,
            actions: &current.actions,
            details: HashMap::new(),
            checked: 0,
        };
        run.channel.refresh(&mut af, run.now);
        let end = run.run_flow(&mut af, &mut cur);
        // The runtime hangs up a call whose flow ends; follow-ups have no live call.
        run.channel.hang_up(run.now);
        run.collect_trace(&af, cur);
        let mut next = None;
        let follow_up = match &end.follow_up {
            FollowUp::None => FollowUpReport::None,
            FollowUp::Refused {
                flow_id,
                complete_count,
            } => FollowUpReport::Refused {
                flow_id: *flow_id,
                complete_count: *complete_count,
            },
            FollowUp::Start(oc) => match cfg.flows.iter().find(|f| f.id == Some(oc.flow_id)) {
                None => FollowUpReport::Missing {
                    flow_id: oc.flow_id,
                    complete_count: oc.complete_count,
                },
                Some(f) => {
                    let spec = ActiveflowSpec::follow_up(activeflow_id(index + 1), oc, f);
                    match Activeflow::new(spec, &guards) {
                        Ok(a) => {
                            next = Some((a, f));
                            FollowUpReport::Started {
                                flow_id: oc.flow_id,
                                complete_count: oc.complete_count,
                            }
                        }
                        Err(e) => FollowUpReport::NotStarted {
                            flow_id: oc.flow_id,
                            reason: e.to_string(),
                        },
                    }
                }
            },
        };
        flows.push(FlowRun {
            flow_id: af.flow_id(),
            activeflow_id: af.id(),
            complete_count: af.complete_count(),
            reference_type: af.reference_type(),
            ended: end.reason.clone(),
            end: describe_end(&end.reason, &follow_up),
            follow_up,
            variables: af.variables().to_sorted_map(),
        });
        match next {
            Some((a, f)) => {
                af = a;
                current = f;
            }
            None => {
                let last = flows.last();
                return Ok(DryRunReport {
                    trace: run.trace,
                    variables: last.map(|f| f.variables.clone()).unwrap_or_default(),
                    end: last.map(|f| f.end.clone()).unwrap_or_default(),
                    interrupts: run.interrupts,
                    unused_inputs: run.script.into_iter().collect(),
                    end_detail: end,
                    flows,
                });
            }
        }
    }
}

fn describe_end(reason: &EndReason, follow_up: &FollowUpReport) -> String {
    let mut s = reason.to_string();
    let _ = match follow_up {
        FollowUpReport::None => Ok(()),
        FollowUpReport::Started {
            flow_id,
            complete_count,
        } => write!(
            s,
            " (then on_complete_flow_id {flow_id} runs with complete_count {complete_count})"
        ),
        FollowUpReport::Refused {
            flow_id,
            complete_count,
        } => write!(
            s,
            " (on_complete_flow_id {flow_id} refused: chain depth {complete_count} is too deep)"
        ),
        FollowUpReport::Missing {
            flow_id,
            complete_count,
        } => write!(
            s,
            " (then on_complete_flow_id {flow_id} starts with complete_count {complete_count}; it is not among the given flows)"
        ),
        FollowUpReport::NotStarted { flow_id, reason } => {
            write!(s, " (on_complete_flow_id {flow_id} not started: {reason})")
        }
    };
    s
}

/// What the script did at a waiting point.
enum Applied {
    /// Nothing that moves the flow: the command goes on (or the block stays).
    Nothing,
    /// The pending command or block was abandoned or continued: run again.
    Resumed,
    /// The flow was stopped.
    Ended,
}

/// Where the flow waits: a command handed over, or a block (with its trace entry).
#[derive(Clone, Copy)]
enum Waiting {
    Command { seq: u64, action: Uuid },
    Block { seq: u64, action: Uuid },
}

impl Waiting {
    fn seq(self) -> u64 {
        match self {
            Waiting::Command { seq, .. } | Waiting::Block { seq, .. } => seq,
        }
    }

    fn action(self) -> Uuid {
        match self {
            Waiting::Command { action, .. } | Waiting::Block { action, .. } => action,
        }
    }
}

/// Bookkeeping for the activeflow running now.
struct Current<'f> {
    index: usize,
    /// Its flow's own actions (`actions[N]` targets).
    actions: &'f [Action],
    /// Trace seq → (substituted option, notes).
    details: HashMap<u64, (Option<Value>, Vec<String>)>,
    /// Trace entries up to this seq were looked at for `at:` markers.
    checked: u64,
}

impl Current<'_> {
    fn note(&mut self, seq: u64, note: String) {
        self.details.entry(seq).or_default().1.push(note);
    }

    fn resolve(&self, target: Target) -> Option<Uuid> {
        match target {
            Target::Id(u) => Some(u),
            Target::Index(i) => self.actions.get(i).map(|a| a.id),
        }
    }
}

struct Runner<'c, 'f> {
    cfg: &'c DryRunConfig,
    script: VecDeque<InputEvent>,
    now: DateTime<Utc>,
    trace: Vec<TraceEntry>,
    interrupts: Vec<InterruptReport>,
    channel: Channel,
    fetch: &'f mut dyn FnMut(&FetchRequest) -> Result<Vec<Action>, String>,
}

impl Runner<'_, '_> {
    /// Runs one activeflow to its end.
    fn run_flow(&mut self, af: &mut Activeflow, cur: &mut Current<'_>) -> End {
        loop {
            match af.run(self.now) {
                Step::Ended(end) => return end,
                Step::Blocked => {
                    let waiting = Waiting::Block {
                        seq: last_seq(af),
                        action: af.current_action_id(),
                    };
                    match self.apply_script(af, cur, waiting) {
                        Applied::Resumed | Applied::Ended => {}
                        Applied::Nothing => {
                            return af.stop(EndReason::Stopped(format!(
                                "blocked at action {}: nothing continues it in a dry run",
                                af.current_action_id()
                            )));
                        }
                    }
                }
                Step::Execute(cmd) => {
                    let seq = last_seq(af);
                    let option = serde_json::to_value(&cmd.option)
                        .ok()
                        .and_then(|v| v.get("option").cloned());
                    cur.details.entry(seq).or_default().0 = option;
                    // The runtime starts the command (a media command answers the call
                    // first) before any interrupt can reach it.
                    let refused = self.channel.issue(af, &cmd.option, self.now);
                    let waiting = Waiting::Command {
                        seq,
                        action: cmd.action_id,
                    };
                    if !matches!(self.apply_script(af, cur, waiting), Applied::Nothing) {
                        continue;
                    }
                    let (outcome, note) = match refused {
                        Some(failure) => (Some(failure), None),
                        None => self.outcome(af, &cmd),
                    };
                    if let Some(note) = note {
                        cur.note(seq, note);
                    }
                    if let Some(outcome) = outcome {
                        let outcome = if Channel::is_channel_command(cmd.kind()) {
                            self.channel.complete(af, &cmd.option, outcome, self.now)
                        } else {
                            outcome
                        };
                        // The command is pending; a refusal here would be an engine bug, and
                        // the next `run` reports the state either way.
                        let _ = af.complete(cmd.action_id, outcome, self.now);
                    }
                    cur.checked = last_seq(af).max(cur.checked);
                }
            }
        }
    }

    /// Applies what the script says at a waiting point: `at:` markers that are reached, then
    /// interrupts, in order, until channel input (for the command), an unreached marker or
    /// a `continue` outside a block holds the rest.
    fn apply_script(
        &mut self,
        af: &mut Activeflow,
        cur: &mut Current<'_>,
        waiting: Waiting,
    ) -> Applied {
        let applied = loop {
            match self.script.front() {
                Some(InputEvent::At(target)) => {
                    let reached = cur.resolve(*target).is_some_and(|id| {
                        af.executed()
                            .rev()
                            .take_while(|e| e.seq > cur.checked)
                            .any(|e| e.id == id)
                    });
                    if !reached {
                        break Applied::Nothing;
                    }
                    self.script.pop_front();
                }
                Some(InputEvent::Continue(_)) if !matches!(waiting, Waiting::Block { .. }) => {
                    break Applied::Nothing;
                }
                Some(e) if e.is_interrupt() => {
                    let Some(event) = self.script.pop_front() else {
                        break Applied::Nothing;
                    };
                    match self.interrupt(af, cur, event, waiting) {
                        Applied::Nothing => {}
                        other => break other,
                    }
                }
                _ => break Applied::Nothing,
            }
        };
        cur.checked = cur.checked.max(waiting.seq());
        applied
    }

    /// Sends one interrupt to the engine, the way the API's handlers do.
    fn interrupt(
        &mut self,
        af: &mut Activeflow,
        cur: &mut Current<'_>,
        event: InputEvent,
        waiting: Waiting,
    ) -> Applied {
        let text = event.to_string();
        let unknown = |t: Target| format!("refused: there is no {t} in this flow");
        let forwarded = |r: Result<ForwardEffect, EngineError>| match r {
            Ok(ForwardEffect::Interrupt) => (Applied::Resumed, "interrupted".to_owned()),
            Ok(ForwardEffect::Queued) => (Applied::Nothing, "queued".to_owned()),
            Err(e) => (Applied::Nothing, format!("refused: {e}")),
        };
        let (applied, effect) = match event {
            InputEvent::Forward { target, now } => match cur.resolve(target) {
                Some(id) => forwarded(af.forward(id, now)),
                None => (Applied::Nothing, unknown(target)),
            },
            InputEvent::Push { actions, now, .. } => forwarded(af.push_actions(actions, now)),
            InputEvent::Continue(target) => {
                let id = match target {
                    Some(t) => cur.resolve(t),
                    None => Some(af.current_action_id()),
                };
                match id.map(|id| af.continue_block(id)) {
                    Some(Ok(())) => (Applied::Resumed, "continued".to_owned()),
                    Some(Err(e)) => (Applied::Nothing, format!("refused: {e}")),
                    None => (
                        Applied::Nothing,
                        unknown(target.unwrap_or(Target::Index(0))),
                    ),
                }
            }
            InputEvent::Stop(reason) => {
                af.stop(EndReason::Stopped(reason));
                (Applied::Ended, "stopped".to_owned())
            }
            _ => (Applied::Nothing, "not an interrupt".to_owned()),
        };
        cur.note(waiting.seq(), format!("{text} ({effect})"));
        self.interrupts.push(InterruptReport {
            flow: cur.index,
            action: waiting.action(),
            event: text,
            effect,
        });
        applied
    }

    /// Decides the outcome of a command from the script (`None` when DTMF already completed
    /// it), with a note for the trace.
    fn outcome(&mut self, af: &mut Activeflow, cmd: &Command) -> (Option<Outcome>, Option<String>) {
        let on_call = waits_on_call(cmd.kind()) && self.channel.live();
        match self.script.front() {
            Some(InputEvent::Hangup) if on_call => {
                self.script.pop_front();
                return (Some(Outcome::Hangup), Some("hangup".into()));
            }
            Some(InputEvent::Fail(r)) => {
                let r = r.clone();
                self.script.pop_front();
                return (Some(Outcome::Failed(r.clone())), Some(format!("fail:{r}")));
            }
            Some(InputEvent::Press(_)) if on_call && cmd.kind() != ActionType::DigitsReceive => {
                if let Some(InputEvent::Press(d)) = self.script.pop_front() {
                    let (ended, rest) = press(af, &d, self.now);
                    if !rest.is_empty() {
                        self.script.push_front(InputEvent::Press(rest));
                    }
                    if ended {
                        return (None, Some(format!("press:{d} (interrupted)")));
                    }
                }
            }
            _ => {}
        }
        match &cmd.option {
            CommandOption::DigitsReceive(o) => self.digits_receive(af, o.duration),
            CommandOption::Fetch(f) => {
                let req = FetchRequest::Fetch {
                    url: f.event_url.clone(),
                    method: if f.event_method.is_empty() {
                        "GET".into()
                    } else {
                        f.event_method.to_ascii_uppercase()
                    },
                    body: serde_json::json!({
                        "activeflow_id": af.id(),
                        "reference_id": af.reference_id(),
                    }),
                };
                fetched((self.fetch)(&req))
            }
            CommandOption::FetchFlow(f) => {
                let flow_id = f.flow_id.uuid();
                match self.cfg.flows.iter().find(|x| x.id == Some(flow_id)) {
                    Some(flow) => fetched(Ok(flow.actions.clone())),
                    None => fetched((self.fetch)(&FetchRequest::FetchFlow { flow_id })),
                }
            }
            other => {
                self.advance(media_duration_ms(other));
                (Some(Outcome::Done), None)
            }
        }
    }

    /// Feeds queued `dtmf:`/`press:` digits to a pending `digits_receive`.
    fn digits_receive(
        &mut self,
        af: &mut Activeflow,
        duration: i64,
    ) -> (Option<Outcome>, Option<String>) {
        let mut used = String::new();
        loop {
            match self.script.pop_front() {
                Some(InputEvent::Dtmf(d) | InputEvent::Press(d)) => {
                    let mut chars = d.chars();
                    for c in chars.by_ref() {
                        used.push(c);
                        match af.dtmf(c, self.now) {
                            Ok(e) if e.ends_command() => {
                                let rest: String = chars.collect();
                                if !rest.is_empty() {
                                    self.script.push_front(InputEvent::Dtmf(rest));
                                }
                                return (None, Some(format!("dtmf:{used}")));
                            }
                            Ok(_) => {}
                            Err(e) => return (Some(Outcome::Failed(e.to_string())), None),
                        }
                    }
                }
                Some(InputEvent::Timeout) => break,
                Some(other) => {
                    self.script.push_front(other);
                    break;
                }
                None => break,
            }
        }
        self.advance(duration);
        let note = if used.is_empty() {
            "timeout".to_owned()
        } else {
            format!("dtmf:{used} then timeout")
        };
        (Some(Outcome::Timeout), Some(note))
    }

    fn advance(&mut self, ms: i64) {
        self.now += Duration::milliseconds(ms.max(0));
    }

    /// Appends the trace of an ended activeflow.
    fn collect_trace(&mut self, af: &Activeflow, mut cur: Current<'_>) {
        for e in af.executed() {
            let (option, notes) = cur.details.remove(&e.seq).unwrap_or_default();
            self.trace.push(TraceEntry {
                flow: cur.index,
                id: e.id,
                kind: e.kind,
                outcome: e.outcome,
                reason: e.reason.clone(),
                index: e.index,
                stack: (e.stack_id != ID_START).then_some(e.stack_id),
                at: e.at,
                option,
                input: (!notes.is_empty()).then(|| notes.join("; ")),
            });
        }
    }
}

/// The sequence number of the newest trace entry (the action the flow waits on).
fn last_seq(af: &Activeflow) -> u64 {
    af.executed().next_back().map_or(0, |e| e.seq)
}

/// Whether a command takes time on the call (so the caller can press keys or hang up
/// during it).
fn waits_on_call(kind: ActionType) -> bool {
    kind.media() == Media::Rtc
        && !matches!(
            kind,
            ActionType::Answer
                | ActionType::Hangup
                | ActionType::RecordingStart
                | ActionType::RecordingStop
                | ActionType::ExternalMediaStart
                | ActionType::ExternalMediaStop
                | ActionType::Mute
                | ActionType::TranscribeStart
                | ActionType::TranscribeStop
        )
}

/// Presses digits during a non-receiving command; returns whether the command ended and the
/// digits not used.
fn press(af: &mut Activeflow, digits: &str, now: DateTime<Utc>) -> (bool, String) {
    let mut chars = digits.chars();
    for c in chars.by_ref() {
        if af.dtmf(c, now).is_ok_and(DtmfEffect::ends_command) {
            return (true, chars.collect());
        }
    }
    (false, String::new())
}

fn fetched(r: Result<Vec<Action>, String>) -> (Option<Outcome>, Option<String>) {
    match r {
        Ok(a) => {
            let note = format!("{} actions", a.len());
            (Some(Outcome::Actions(a)), Some(note))
        }
        Err(e) => (Some(Outcome::Failed(e)), None),
    }
}

/// Virtual duration of a media command, from its options.
fn media_duration_ms(o: &CommandOption) -> i64 {
    match o {
        CommandOption::Sleep(s) => s.duration,
        CommandOption::Echo(e) | CommandOption::StreamEcho(e) => {
            if e.duration > 0 {
                e.duration
            } else {
                180_000
            }
        }
        CommandOption::DigitsSend(d) => {
            let n = i64::try_from(d.digits.chars().count()).unwrap_or(0);
            d.duration.saturating_mul(n) + d.interval.saturating_mul((n - 1).max(0))
        }
        _ => 0,
    }
}

impl DryRunReport {
    /// Human-readable rendering: per flow its trace and end, then the last variables.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let chain = self.flows.len() > 1;
        for (n, run) in self.flows.iter().enumerate() {
            if chain || n > 0 {
                let _ = writeln!(
                    s,
                    "flow {} ({}, activeflow {}, complete_count {}):",
                    n + 1,
                    run.flow_id,
                    run.activeflow_id,
                    run.complete_count
                );
            }
            let _ = writeln!(s, "trace:");
            for (i, e) in self.trace.iter().filter(|e| e.flow == n).enumerate() {
                render_entry(&mut s, i, e);
            }
            if chain {
                let _ = writeln!(s, "end of flow {}: {}", n + 1, run.end);
            }
        }
        if !self.interrupts.is_empty() {
            let _ = writeln!(s, "interrupts:");
            for i in &self.interrupts {
                let _ = writeln!(
                    s,
                    "  flow {} at {}: {} -> {}",
                    i.flow + 1,
                    i.action,
                    i.event,
                    i.effect
                );
            }
        }
        let _ = writeln!(s, "variables:");
        for (k, v) in &self.variables {
            let _ = writeln!(s, "  {k} = {v:?}");
        }
        let _ = writeln!(s, "end: {}", self.end);
        if !self.unused_inputs.is_empty() {
            let unused: Vec<String> = self.unused_inputs.iter().map(ToString::to_string).collect();
            let _ = writeln!(s, "inputs never consumed: {}", unused.join(" "));
        }
        s
    }
}

fn render_entry(s: &mut String, i: usize, e: &TraceEntry) {
    let outcome = match e.outcome {
        TraceOutcome::Executed => "executed",
        TraceOutcome::Skipped => "skipped",
        TraceOutcome::Failed => "FAILED",
    };
    let place = match e.stack {
        None => format!("actions[{}]", e.index),
        Some(_) => format!("forked[{}]", e.index),
    };
    let _ = write!(
        s,
        "{:>4}  {:<14} {:<22} {:<9} {}",
        i + 1,
        place,
        e.kind.as_str(),
        outcome,
        e.id
    );
    if let Some(inp) = &e.input {
        let _ = write!(s, "  [{inp}]");
    }
    if let Some(r) = &e.reason {
        let _ = write!(s, "  ({r})");
    }
    s.push('\n');
    let service = !e.kind.is_control() && e.kind.media() != Media::Rtc;
    match (&e.option, e.kind) {
        (Some(o), _) if service => {
            let _ = writeln!(s, "        recorded, not performed: {o}");
        }
        (Some(o), ActionType::Talk) => {
            let _ = writeln!(s, "        says: {}", o["text"]);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
