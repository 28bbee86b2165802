//! The sans-IO engine: one [`Activeflow`] is the complete state of one running flow.
//!
//! No tokio, no clock, no I/O: time comes in as `now`, everything that needs the outside
//! world goes out as a [`Command`], and its result comes back as an [`Outcome`].
//!
//! # Flow of control
//!
//! 1. [`Activeflow::new`] builds the state from an [`ActiveflowSpec`] (actions, reference,
//!    variables) and the [`Guards`].
//! 2. [`Activeflow::run`] moves the cursor through control actions (goto, branch, conditions,
//!    variable_set, …) and skipped actions until it reaches an action the runtime must
//!    perform ([`Step::Execute`]), a `block` ([`Step::Blocked`]) or the end ([`Step::Ended`]).
//!    While a command is pending, `run` returns the same command again (so a runtime that
//!    restarts from persisted state re-issues it: commands are at-least-once).
//! 3. The runtime performs the command and calls [`Activeflow::complete`] with its
//!    [`Outcome`], then `run` again.
//! 4. Caller digits go to [`Activeflow::dtmf`]; the [`DtmfEffect`] says whether the pending
//!    command is finished (digits_receive satisfied, `talk` with `digits_handle: next`).
//! 5. Interrupts: [`Activeflow::forward`] (jump, optionally abandoning the pending command),
//!    [`Activeflow::push_actions`] (fork), [`Activeflow::stop`], and
//!    [`Activeflow::continue_block`].
//! 6. [`End`] says why the flow ended and whether an `on_complete_flow_id` follow-up must be
//!    started ([`FollowUp`]).
//!
//! ```
//! use chrono::Utc;
//! use flowgate_flows::engine::*;
//! use flowgate_flows::limits::Limits;
//! use flowgate_flows::model::{parse_flow, CommandOption, ReferenceType};
//! use uuid::Uuid;
//!
//! let flow = parse_flow(r#"[{"type":"talk","option":{"text":"Press 1"}},
//!     {"type":"digits_receive","option":{"duration":5000,"length":1}},
//!     {"type":"branch","option":{"target_ids":{"1":"00000000-0000-0000-0000-0000000000b1"},
//!         "default_target_id":"00000000-0000-0000-0000-0000000000b1"}},
//!     {"id":"00000000-0000-0000-0000-0000000000b1","type":"hangup"}]"#, &Limits::default()).unwrap();
//! let spec = ActiveflowSpec::new(Uuid::new_v4(), &flow, ReferenceType::Call, Uuid::new_v4());
//! let mut af = Activeflow::new(spec, &Guards::default()).unwrap();
//! let now = Utc::now();
//! loop {
//!     match af.run(now) {
//!         Step::Execute(cmd) => match cmd.option {
//!             CommandOption::DigitsReceive(_) => {
//!                 // the runtime's DTMF detector reports a digit
//!                 assert_eq!(af.dtmf('1', now).unwrap(), DtmfEffect::Completed);
//!             }
//!             _ => af.complete(cmd.action_id, Outcome::Done, now).unwrap(),
//!         },
//!         Step::Blocked => unreachable!("no block in this flow"),
//!         Step::Ended(end) => {
//!             assert_eq!(end.reason, EndReason::Hangup);
//!             break;
//!         }
//!     }
//! }
//! ```
//!
//! # What the runtime provides
//!
//! * Variables it knows, through [`ActiveflowSpec::variables`] or
//!   [`Activeflow::set_variable`]: `voipbin.call.*` (source, destination, direction, …;
//!   `voipbin.call.digits` starts as `""`), `voipbin.conversation*` for messages,
//!   `voipbin.recording.*` when a recording starts. For `condition_call_status` it keeps
//!   **`voipbin.call.status`** current (`dialing`, `ringing`, `progressing`, `terminating`,
//!   `canceling`, `hangup`); VoIPBIN documents this variable but never sets it.
//! * **`voipbin.flow.reference_data`** ([`vars::REFERENCE_DATA`]): the JSON of the call
//!   (as `GET /v1.0/calls/{id}` serves it) or of the conversation (`{id, self, peer, …}`,
//!   VoIPBIN's field names) the activeflow runs for, set with
//!   [`Activeflow::set_reference_data`] when the flow starts and again whenever the call
//!   changes (status, recording) — VoIPBIN computes it each time a template reads it. Other
//!   reference types have none (`""`), and a flow of another kind of reference does not
//!   inherit it (a recording's on-end flow). A flow's own `variable_set` of the name wins
//!   until the runtime sets it again (VoIPBIN: a stored variable of that name wins).
//!   [`crate::dryrun`] does all of this offline, as a model.
//! * Timers of media commands, and their outcomes ([`Outcome::Timeout`] for a
//!   `digits_receive` that ran out).
//! * Commands carry the values the runtime must act on: where VoIPBIN normalises a value
//!   (an unknown or empty `hangup.reason` is normal clearing) the command holds the
//!   normalised one.
//! * The actions for `fetch` / `fetch_flow` ([`Outcome::Actions`]).
//! * For calls: hang up when the flow ends ([`EndReason::Finished`], `Stopped`, `Error`,
//!   `Guard`), as VoIPBIN's call-manager does; and report a remote hang-up with
//!   [`Activeflow::stop`]`(EndReason::Hangup)` (or [`Outcome::Hangup`] for the pending
//!   command).
//! * Persistence: the whole [`Activeflow`] is `Serialize + Deserialize`; save it after every
//!   `run`/`complete`/`dtmf`. A pending command is re-issued by `run` after a restart. A
//!   runtime that stores the flow's actions once, apart, calls
//!   [`Activeflow::store_actions_apart`] and gives them back with
//!   [`Activeflow::attach_main_actions`] after deserializing.
//!
//! # Cursor (reference §3.2)
//!
//! The next action is: the forward pointer if set (jumps, forks, interrupts), else the
//! action's `next_id`, else the next array element; at the end of a forked stack the cursor
//! returns after the forking action (honouring that action's own `next_id`). Jump targets
//! (`goto`, `branch`, conditions, `next_id`, `forward`) are searched in the current stack and
//! then each ancestor, like VoIPBIN's `GetAction` following `ReturnStackID`; jumping into an
//! ancestor releases the stacks in between. A target found in no stack ends the flow with an
//! error naming it when the jump happens (not before: VoIPBIN pushes such actions and a jump
//! that never happens is harmless). Only the chain of stacks from the main stack to the
//! current one is kept, so no stack leaks.
//!
//! Actions without an id (nil) and actions repeating an id of their list get ids derived
//! from the activeflow id when the activeflow is created or the actions are pushed; jumps to
//! a repeated id go to its first action.

mod stack;
mod trace;

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use chrono::{DateTime, Datelike, Timelike, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use tracing::debug;
use uuid::Uuid;

use crate::limits::Limits;
use crate::model::{
    Action, ActionOption, ActionType, CommandOption, DigitsReceiveOption, ErrorPolicy, Flow,
    HANGUP_REASONS, ID_START, IdRef, ReferenceType,
};
use crate::validate::{FlowError, validate_actions};
use crate::vars::{
    self, CALL_DIGITS, CALL_STATUS, SubstError, VarError, Variables, sanitize_external,
    sole_placeholder, substitute, substitute_into,
};
use stack::{Node, Placement, Stack};
use trace::Trace;
pub use trace::{Executed, TraceOutcome, TraceTotals};

/// The actions of an activeflow's main stack, as stored apart from its state (see
/// [`Activeflow::store_actions_apart`]): the same JSON as the `actions` of the main stack in
/// the full state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MainActions(Vec<Node>);

/// Engine guards: caps on how much one activeflow may do. Stored in the activeflow (so a
/// resumed flow keeps them) and documented with VoIPBIN's values in the crate docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Guards {
    /// Cursor moves in one [`Activeflow::run`] call before the flow is stopped (a control
    /// loop that never reaches a command). VoIPBIN: 1000.
    pub max_iterations_per_run: u32,
    /// Cursor moves over the whole life (skipped and control actions included). VoIPBIN
    /// stops at about 100, which kills ordinary looping IVRs; Flowgate defaults to 10,000.
    pub max_executions: u64,
    /// Stack hops while resolving the next action, and the most stacks alive at once.
    /// VoIPBIN: 100.
    pub max_stack_hops: u32,
    /// On-complete chains: a follow-up whose `complete_count` would reach this is refused.
    /// VoIPBIN: 5 (at most 4 follow-up hops).
    pub max_complete_count: u32,
    /// Entries kept in the executed-actions window (totals are always kept). Default 100.
    pub trace_window: usize,
    /// Time zone (IANA name, [`crate::tz`]) of `condition_datetime` when the action has no
    /// `timezone`. VoIPBIN: UTC. Resolved when the action runs, so a stored activeflow
    /// loads even if the zone has gone from the image's tzdata (the action then fails).
    pub timezone: String,
    /// Size caps for variables and fetched actions.
    pub limits: Limits,
}

impl Default for Guards {
    fn default() -> Self {
        Self {
            max_iterations_per_run: 1000,
            max_executions: 10_000,
            max_stack_hops: 100,
            max_complete_count: 5,
            trace_window: 100,
            timezone: crate::tz::UTC.to_owned(),
            limits: Limits::default(),
        }
    }
}

/// Everything needed to create an activeflow.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActiveflowSpec {
    /// The activeflow id.
    pub id: Uuid,
    /// The flow template.
    pub flow_id: Uuid,
    /// What started it (decides media gating).
    pub reference_type: ReferenceType,
    /// The call, conversation, … id.
    pub reference_id: Uuid,
    /// The parent activeflow (on-complete chains); nil for none.
    pub reference_activeflow_id: Uuid,
    /// The actions (copied; later edits of the flow do not affect the activeflow).
    pub actions: Vec<Action>,
    /// Flow to start when this one ends.
    pub on_complete_flow_id: Option<Uuid>,
    /// Chain depth (0 for a first flow).
    pub complete_count: u32,
    /// Variables inherited from the parent activeflow (copied first).
    pub inherited_variables: IndexMap<String, String>,
    /// Variables set by the runtime (`voipbin.call.*`, `voipbin.conversation.*`, …; trusted,
    /// stored verbatim).
    pub variables: IndexMap<String, String>,
    /// Variables from outside (API): sanitized (`voipbin.*` dropped, caps enforced).
    pub external_variables: IndexMap<String, String>,
}

impl ActiveflowSpec {
    /// A spec for a fresh activeflow of `flow`.
    pub fn new(id: Uuid, flow: &Flow, reference_type: ReferenceType, reference_id: Uuid) -> Self {
        Self {
            id,
            flow_id: flow.id.unwrap_or_else(Uuid::nil),
            reference_type,
            reference_id,
            actions: flow.actions.clone(),
            on_complete_flow_id: flow.on_complete(),
            ..Self::default()
        }
    }

    /// The spec of the follow-up requested by an ended activeflow, with `flow` being the
    /// flow named by [`OnComplete::flow_id`].
    pub fn follow_up(id: Uuid, request: &OnComplete, flow: &Flow) -> Self {
        Self {
            id,
            flow_id: request.flow_id,
            reference_type: request.reference_type,
            reference_id: request.reference_id,
            reference_activeflow_id: request.reference_activeflow_id,
            actions: flow.actions.clone(),
            on_complete_flow_id: flow.on_complete(),
            complete_count: request.complete_count,
            inherited_variables: request.variables.clone(),
            ..Self::default()
        }
    }
}

/// An action the runtime must perform: its id and its typed, substituted option.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// The action id (pass it back to [`Activeflow::complete`]).
    pub action_id: Uuid,
    /// What to do.
    #[serde(flatten)]
    pub option: CommandOption,
}

impl Command {
    /// The action type.
    pub fn kind(&self) -> ActionType {
        self.option.kind()
    }
}

/// What [`Activeflow::run`] stopped at.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", content = "detail", rename_all = "snake_case")]
pub enum Step {
    /// Perform this command, then call [`Activeflow::complete`].
    Execute(Command),
    /// A `block` is waiting for [`Activeflow::continue_block`] (or a forward).
    Blocked,
    /// The flow has ended.
    Ended(End),
}

/// The result of a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It finished normally.
    Done,
    /// Its timer ran out (`digits_receive` without enough digits; sleep, echo, …): the action
    /// is finished, like [`Outcome::Done`].
    Timeout,
    /// It could not be performed; the action's error policy decides (fatal → the flow ends
    /// with an error; swallow → recorded as failed, the flow continues).
    Failed(String),
    /// The call hung up while the command ran: the flow ends with [`EndReason::Hangup`].
    Hangup,
    /// The actions returned by `fetch` / looked up by `fetch_flow`, or the stack
    /// `conference_join` runs (VoIPBIN's conference service: pre flow, then the join):
    /// validated and pushed as a new stack (an empty list is a no-op). Ids must be assigned already
    /// ([`crate::model::parse_actions`] does that).
    Actions(Vec<Action>),
}

/// Why a flow ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum EndReason {
    /// The main stack ran out of actions.
    Finished,
    /// A `stop` action, or [`Activeflow::stop`] with this reason.
    Stopped(String),
    /// A fatal action error.
    Error(String),
    /// A guard was hit.
    Guard(String),
    /// The call hung up (a `hangup` action, or the caller).
    Hangup,
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndReason::Finished => f.write_str("finished"),
            EndReason::Stopped(r) => write!(f, "stopped: {r}"),
            EndReason::Error(r) => write!(f, "error: {r}"),
            EndReason::Guard(r) => write!(f, "guard: {r}"),
            EndReason::Hangup => f.write_str("hangup"),
        }
    }
}

/// How a flow ended and what must happen next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    /// Why.
    pub reason: EndReason,
    /// The `on_complete_flow_id` follow-up.
    pub follow_up: FollowUp,
}

/// The on-complete follow-up of an ended flow. Like VoIPBIN's code (not its docs), it is
/// requested after every end, errors included.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FollowUp {
    /// No `on_complete_flow_id`.
    #[default]
    None,
    /// Start this flow (see [`ActiveflowSpec::follow_up`]).
    Start(OnComplete),
    /// The chain is too deep ([`Guards::max_complete_count`]); nothing is started.
    Refused {
        /// The flow that would have started.
        flow_id: Uuid,
        /// The count it would have had.
        complete_count: u32,
    },
}

/// A request to start the on-complete flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnComplete {
    /// The flow to start.
    pub flow_id: Uuid,
    /// Same reference as the ended flow.
    pub reference_type: ReferenceType,
    /// Same reference id.
    pub reference_id: Uuid,
    /// The ended activeflow.
    pub reference_activeflow_id: Uuid,
    /// Chain depth of the new flow (parent + 1).
    pub complete_count: u32,
    /// All variables of the ended flow (its `voipbin.activeflow.*` are rewritten).
    pub variables: IndexMap<String, String>,
}

/// What a DTMF digit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DtmfEffect {
    /// The flow has ended; nothing changed.
    Ignored,
    /// `voipbin.call.digits` was overwritten with the digit; the pending command goes on.
    Stored,
    /// Appended to `voipbin.call.digits`; `digits_receive` keeps waiting.
    Collecting,
    /// `digits_receive` is satisfied and complete: stop its timer and call `run`.
    Completed,
    /// `talk` with `digits_handle: next` is interrupted and complete: stop the playback and
    /// call `run`.
    Interrupted,
}

impl DtmfEffect {
    /// Whether the pending command is now finished (the runtime must stop it).
    pub fn ends_command(self) -> bool {
        matches!(self, DtmfEffect::Completed | DtmfEffect::Interrupted)
    }
}

/// What a forward or a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardEffect {
    /// The jump happens when the pending command completes (or at the next `run`).
    Queued,
    /// The pending command (or block) was abandoned: stop it now and call `run`.
    Interrupt,
}

/// Errors of the engine API (the flow itself reports its failures through [`End`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The activeflow has ended.
    #[error("the activeflow has ended")]
    Ended,
    /// The call refers to an action that is not the pending one (a late timer, a duplicate).
    #[error("action {got} is not the pending action ({expected:?})")]
    Stale {
        /// The pending action, if any.
        expected: Option<Uuid>,
        /// The action named by the caller.
        got: Uuid,
    },
    /// No action with this id in the current stack or its ancestors.
    #[error("no action {0} in the current stack or its ancestors")]
    NotFound(Uuid),
    /// Not a DTMF character.
    #[error("`{0}` is not a DTMF digit (0-9, A-D, #, *)")]
    InvalidDigit(char),
    /// An outcome that does not fit the pending command.
    #[error("outcome does not fit the pending `{kind}` action {action_id}")]
    UnexpectedOutcome {
        /// The action.
        action_id: Uuid,
        /// Its type.
        kind: ActionType,
    },
    /// Actions (spec, push, fetch reply) failed validation.
    #[error("invalid actions: {}", list(.0))]
    InvalidActions(Vec<FlowError>),
    /// Too many actions pushed at once.
    #[error("{count} actions pushed; at most {max} are accepted")]
    TooManyActions {
        /// Pushed.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// Variables refused.
    #[error(transparent)]
    Variables(#[from] VarError),
    /// The on-complete chain is too deep.
    #[error("on-complete chain depth {complete_count} reaches the limit {max}")]
    ChainTooDeep {
        /// Requested depth.
        complete_count: u32,
        /// The guard.
        max: u32,
    },
    /// Too many stacks alive (forks inside forks).
    #[error("more than {0} stacks")]
    TooManyStacks(u32),
}

fn list(v: &[FlowError]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Counters over the life of an activeflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Cursor moves (what [`Guards::max_executions`] limits).
    pub executions: u64,
    /// Outcome totals of the executed-actions history.
    pub totals: TraceTotals,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pending {
    command: Command,
    trace_seq: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum State {
    /// The cursor is on an action that is done; `run` advances.
    Ready,
    /// A command is with the runtime.
    Waiting(Pending),
    /// A `block` (the current action) waits for `continue`.
    Blocked,
    /// Over.
    Ended { end: End },
}

/// The state of one running flow. See the module docs for the protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activeflow {
    id: Uuid,
    flow_id: Uuid,
    reference_type: ReferenceType,
    reference_id: Uuid,
    reference_activeflow_id: Uuid,
    on_complete_flow_id: Option<Uuid>,
    complete_count: u32,
    stacks: Vec<Stack>,
    current_stack: Uuid,
    current_action: Uuid,
    /// Position of `current_action` in `current_stack` (a cache; checked before use).
    #[serde(skip)]
    current_index: Option<usize>,
    forward: Option<(Uuid, Uuid)>,
    variables: Variables,
    state: State,
    trace: Trace,
    executions: u64,
    /// Counter for deterministic stack ids (keeps the engine free of randomness).
    stacks_created: u64,
    /// Counter for ids given to pushed actions that had none.
    #[serde(default)]
    ids_assigned: u64,
    guards: Guards,
    /// Reused buffers for `variable_set` (no allocation in steady-state loops).
    #[serde(skip)]
    scratch: (String, String),
}

impl Activeflow {
    /// Creates the activeflow. Variables are merged in this order: inherited → runtime →
    /// sanitized external → reserved `voipbin.activeflow.*` (last, so nothing can forge them).
    ///
    /// Fails if the actions do not validate, the variables break a cap, or the on-complete
    /// chain is too deep.
    pub fn new(spec: ActiveflowSpec, guards: &Guards) -> Result<Self, EngineError> {
        if spec.complete_count >= guards.max_complete_count {
            return Err(EngineError::ChainTooDeep {
                complete_count: spec.complete_count,
                max: guards.max_complete_count,
            });
        }
        let limits = &guards.limits;
        if spec.actions.len() > limits.max_actions {
            return Err(EngineError::TooManyActions {
                count: spec.actions.len(),
                max: limits.max_actions,
            });
        }
        let mut spec = spec;
        let mut ids_assigned = 0;
        assign_ids(spec.id, &mut ids_assigned, &mut spec.actions);
        let report = validate_actions(&spec.actions, &HashSet::new(), limits);
        if !report.is_ok() {
            return Err(EngineError::InvalidActions(report.errors));
        }
        let external = sanitize_external(spec.external_variables, limits)?;
        let mut variables = Variables::new();
        // Reference data describes this activeflow's own call or conversation: VoIPBIN
        // resolves it from the reference each time, so a flow without one (a recording's
        // on-end flow, API flows) has none, whatever it inherited.
        let own_data = spec.reference_type.has_reference_data();
        for (k, v) in spec.inherited_variables.iter().chain(&spec.variables) {
            if !vars::is_reserved(k) && (own_data || k != vars::REFERENCE_DATA) {
                variables.set(k, v, limits)?;
            }
        }
        for (k, v) in &external.variables {
            variables.set(k, v, limits)?;
        }
        let reserved = [
            ("id", spec.id.to_string()),
            ("reference_type", spec.reference_type.as_str().to_owned()),
            ("reference_id", spec.reference_id.to_string()),
            (
                "reference_activeflow_id",
                spec.reference_activeflow_id.to_string(),
            ),
            ("flow_id", spec.flow_id.to_string()),
            ("complete_count", spec.complete_count.to_string()),
        ];
        for (k, v) in reserved {
            variables.set_internal(&format!("{}{k}", vars::ACTIVEFLOW_PREFIX), &v, limits)?;
        }
        let nodes = spec.actions.iter().map(Node::from).collect();
        Ok(Activeflow {
            id: spec.id,
            flow_id: spec.flow_id,
            reference_type: spec.reference_type,
            reference_id: spec.reference_id,
            reference_activeflow_id: spec.reference_activeflow_id,
            on_complete_flow_id: spec.on_complete_flow_id.filter(|u| !u.is_nil()),
            complete_count: spec.complete_count,
            stacks: vec![Stack::new(ID_START, nodes, None, ID_START)],
            current_stack: ID_START,
            current_action: ID_START,
            current_index: None,
            forward: None,
            variables,
            state: State::Ready,
            trace: Trace::default(),
            executions: 0,
            stacks_created: 0,
            ids_assigned,
            guards: guards.clone(),
            scratch: (String::new(), String::new()),
        })
    }

    // ----- accessors -------------------------------------------------------------------

    /// The activeflow id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The flow template id.
    pub fn flow_id(&self) -> Uuid {
        self.flow_id
    }

    /// What started it.
    pub fn reference_type(&self) -> ReferenceType {
        self.reference_type
    }

    /// The reference id.
    pub fn reference_id(&self) -> Uuid {
        self.reference_id
    }

    /// The parent activeflow of an on-complete chain (nil for none).
    pub fn reference_activeflow_id(&self) -> Uuid {
        self.reference_activeflow_id
    }

    /// The flow started when this one ends.
    pub fn on_complete_flow_id(&self) -> Option<Uuid> {
        self.on_complete_flow_id
    }

    /// Chain depth (0 for a first flow).
    pub fn complete_count(&self) -> u32 {
        self.complete_count
    }

    /// The variables.
    pub fn variables(&self) -> &Variables {
        &self.variables
    }

    /// One variable.
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.variables.get(name)
    }

    /// Sets a variable on behalf of the runtime (trusted: `voipbin.*` allowed, except the
    /// reserved `voipbin.activeflow.*`). The value is stored verbatim, never substituted.
    pub fn set_variable(&mut self, name: &str, value: &str) -> Result<(), VarError> {
        self.variables.set(name, value, &self.guards.limits)
    }

    /// Sets `voipbin.flow.reference_data` ([`vars::REFERENCE_DATA`]) to the JSON of the call
    /// or conversation this activeflow runs for, on behalf of the runtime (see the module
    /// docs). For other reference types nothing is stored: VoIPBIN resolves the variable to
    /// `""` there.
    pub fn set_reference_data(&mut self, data: &serde_json::Value) -> Result<(), VarError> {
        if !self.reference_type.has_reference_data() {
            return Ok(());
        }
        self.variables
            .set(vars::REFERENCE_DATA, &data.to_string(), &self.guards.limits)
    }

    /// Removes a variable (not the reserved ones).
    pub fn remove_variable(&mut self, name: &str) -> Result<Option<String>, VarError> {
        if vars::is_reserved(name) {
            return Err(VarError::Reserved(name.to_owned()));
        }
        Ok(self.variables.remove(name))
    }

    /// From now on the serialized state leaves out the main stack's actions (the flow's
    /// actions, which never change once the activeflow exists): the runtime stores
    /// [`Activeflow::main_actions`] once, apart, and gives them back with
    /// [`Activeflow::attach_main_actions`] after deserializing the state. Stacks pushed
    /// later (`fetch`, `push_actions`) stay in the state.
    pub fn store_actions_apart(&mut self) {
        if let Some(main) = self.main_stack_mut()
            && main.placement == Placement::Inline
        {
            main.placement = Placement::Apart;
        }
    }

    /// A copy of the main stack's actions, for storing apart. Empty for a state deserialized
    /// without them and not given them back.
    pub fn main_actions(&self) -> MainActions {
        MainActions(
            self.stacks
                .first()
                .filter(|s| s.return_stack.is_none())
                .map(|s| s.actions.clone())
                .unwrap_or_default(),
        )
    }

    /// Whether this state was deserialized without the main stack's actions, which must be
    /// given back ([`Activeflow::attach_main_actions`]) before it runs.
    pub fn main_actions_missing(&self) -> bool {
        self.stacks
            .first()
            .is_some_and(|s| s.placement == Placement::Missing)
    }

    /// Gives back the main stack's actions to a state deserialized without them (they
    /// stay apart when it is serialized again). A state that has them is left as it is.
    pub fn attach_main_actions(&mut self, actions: MainActions) {
        if let Some(main) = self.main_stack_mut()
            && main.placement == Placement::Missing
        {
            main.attach(actions.0);
            self.current_index = None;
        }
    }

    fn main_stack_mut(&mut self) -> Option<&mut Stack> {
        self.stacks
            .first_mut()
            .filter(|s| s.id == ID_START && s.return_stack.is_none())
    }

    /// The current action id (`…0001` START before the first move).
    pub fn current_action_id(&self) -> Uuid {
        self.current_action
    }

    /// The current stack id (`…0001` is the main stack).
    pub fn current_stack_id(&self) -> Uuid {
        self.current_stack
    }

    /// The command the runtime is performing, if any.
    pub fn pending(&self) -> Option<&Command> {
        match &self.state {
            State::Waiting(p) => Some(&p.command),
            _ => None,
        }
    }

    /// Whether a `block` is waiting.
    pub fn is_blocked(&self) -> bool {
        matches!(self.state, State::Blocked)
    }

    /// How the flow ended, once it has.
    pub fn end(&self) -> Option<&End> {
        match &self.state {
            State::Ended { end } => Some(end),
            _ => None,
        }
    }

    /// Whether the flow has ended.
    pub fn is_ended(&self) -> bool {
        self.end().is_some()
    }

    /// The most recent executed actions (at most [`Guards::trace_window`]), oldest first.
    pub fn executed(&self) -> impl DoubleEndedIterator<Item = &Executed> + ExactSizeIterator {
        self.trace.window.iter()
    }

    /// Counters over the whole life.
    pub fn stats(&self) -> Stats {
        Stats {
            executions: self.executions,
            totals: self.trace.totals,
        }
    }

    /// The guards in force.
    pub fn guards(&self) -> &Guards {
        &self.guards
    }

    /// Replaces the guards (e.g. after a configuration change; a resumed flow keeps the ones
    /// it was created with otherwise).
    pub fn set_guards(&mut self, guards: Guards) {
        self.guards = guards;
    }

    // ----- driving ---------------------------------------------------------------------

    /// Advances until a command, a block or the end. See the module docs.
    pub fn run(&mut self, now: DateTime<Utc>) -> Step {
        match &self.state {
            State::Ended { end } => return Step::Ended(end.clone()),
            State::Waiting(p) => return Step::Execute(p.command.clone()),
            State::Blocked => return Step::Blocked,
            State::Ready => {}
        }
        if self.main_actions_missing() {
            // A runtime bug, not the flow's: without its actions the cursor would find an
            // empty main stack and "finish" a flow that never ran.
            return self.end_step(EndReason::Error(
                "the flow's actions were not loaded with its state".into(),
            ));
        }
        for _ in 0..self.guards.max_iterations_per_run {
            if self.executions >= self.guards.max_executions {
                let r = format!(
                    "more than {} actions over the flow's life",
                    self.guards.max_executions
                );
                return self.end_step(EndReason::Guard(r));
            }
            let (sp, idx) = match self.advance() {
                Ok(Some(pos)) => pos,
                Ok(None) => return self.end_step(EndReason::Finished),
                Err(reason) => return self.end_step(reason),
            };
            self.executions += 1;
            let Some(kind) = self.node(sp, idx).map(|n| n.option.kind()) else {
                return self.end_step(EndReason::Error("cursor out of range".into()));
            };
            if !self.reference_type.runs(kind) {
                self.record(sp, idx, TraceOutcome::Skipped, None, now);
                continue;
            }
            if let Some(step) = self.execute(sp, idx, now) {
                return step;
            }
        }
        let r = format!(
            "more than {} actions in one run without waiting for anything",
            self.guards.max_iterations_per_run
        );
        self.end_step(EndReason::Guard(r))
    }

    /// Reports the outcome of the pending command. Call [`Activeflow::run`] afterwards.
    ///
    /// A late or duplicate report (the action is no longer pending) is refused with
    /// [`EngineError::Stale`] and changes nothing.
    pub fn complete(
        &mut self,
        action_id: Uuid,
        outcome: Outcome,
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        let kind = match &self.state {
            State::Waiting(p) if p.command.action_id == action_id => p.command.kind(),
            State::Ended { .. } => return Err(EngineError::Ended),
            _ => {
                return Err(EngineError::Stale {
                    expected: self.pending().map(|c| c.action_id),
                    got: action_id,
                });
            }
        };
        // `conference_join` pushes VoIPBIN's conference service stack (pre flow, join).
        let pushes = matches!(
            kind,
            ActionType::Fetch | ActionType::FetchFlow | ActionType::ConferenceJoin
        );
        if matches!(outcome, Outcome::Actions(_)) && !pushes {
            return Err(EngineError::UnexpectedOutcome { action_id, kind });
        }
        let State::Waiting(pending) = std::mem::replace(&mut self.state, State::Ready) else {
            return Err(EngineError::Ended);
        };
        match outcome {
            Outcome::Done | Outcome::Timeout => {
                if kind == ActionType::Hangup {
                    self.finish(EndReason::Hangup);
                }
            }
            Outcome::Hangup => {
                self.finish(EndReason::Hangup);
            }
            Outcome::Failed(reason) => self.command_failed(&pending, kind, reason),
            Outcome::Actions(actions) => {
                if let Err(e) = self.push_stack(actions) {
                    self.command_failed(&pending, kind, e.to_string());
                }
            }
        }
        // `now` is part of the contract for symmetry with `run`; outcomes carry no time yet.
        let _ = now;
        Ok(())
    }

    /// A caller digit (`0-9 A-D # *`; lowercase `a-d` accepted). See [`DtmfEffect`].
    pub fn dtmf(&mut self, digit: char, now: DateTime<Utc>) -> Result<DtmfEffect, EngineError> {
        let d = digit.to_ascii_uppercase();
        if !crate::validate::is_dtmf(d) {
            return Err(EngineError::InvalidDigit(digit));
        }
        let mut buf = [0u8; 4];
        let ds: &str = d.encode_utf8(&mut buf);
        let limits = &self.guards.limits;
        let effect = match &self.state {
            State::Ended { .. } => return Ok(DtmfEffect::Ignored),
            State::Waiting(p) => match &p.command.option {
                CommandOption::DigitsReceive(o) => {
                    // A value over the caps cannot grow: finish instead of losing digits.
                    let appended = self.variables.append(CALL_DIGITS, ds, limits).is_ok();
                    let done = !appended
                        || o.key.contains(d)
                        || digits_satisfy_length(o, self.variables.get(CALL_DIGITS));
                    if done {
                        DtmfEffect::Completed
                    } else {
                        DtmfEffect::Collecting
                    }
                }
                CommandOption::Talk(t) if t.digits_handle == "next" => {
                    self.variables.set(CALL_DIGITS, ds, limits)?;
                    DtmfEffect::Interrupted
                }
                _ => {
                    self.variables.set(CALL_DIGITS, ds, limits)?;
                    DtmfEffect::Stored
                }
            },
            State::Ready | State::Blocked => {
                self.variables.set(CALL_DIGITS, ds, limits)?;
                DtmfEffect::Stored
            }
        };
        if effect.ends_command() {
            self.state = State::Ready;
        }
        // Part of the contract (a future inter-digit timeout needs it); unused today.
        let _ = now;
        Ok(effect)
    }

    /// Jumps to `action_id` (in the current stack or an ancestor). With `forward_now`, the
    /// pending command or block is abandoned ([`ForwardEffect::Interrupt`]); otherwise the
    /// jump happens when the pending command completes.
    pub fn forward(
        &mut self,
        action_id: Uuid,
        forward_now: bool,
    ) -> Result<ForwardEffect, EngineError> {
        if self.is_ended() {
            return Err(EngineError::Ended);
        }
        let (sp, _) = self
            .locate(self.current_stack, action_id)
            .ok_or(EngineError::NotFound(action_id))?;
        let sid = self.stacks.get(sp).map_or(self.current_stack, |s| s.id);
        self.forward = Some((sid, action_id));
        Ok(self.interrupt(forward_now))
    }

    /// Forks: pushes `actions` as a new stack that runs next; when it ends, the flow
    /// continues after the current action. Validated (targets may be in the new stack or
    /// the current stacks). With `forward_now` the pending command is abandoned.
    ///
    /// If a pushed stack has not started yet, the new one runs first and then the earlier
    /// one (VoIPBIN would orphan the earlier push).
    pub fn push_actions(
        &mut self,
        actions: Vec<Action>,
        forward_now: bool,
    ) -> Result<ForwardEffect, EngineError> {
        if self.is_ended() {
            return Err(EngineError::Ended);
        }
        self.push_stack(actions)?;
        Ok(self.interrupt(forward_now))
    }

    /// Resumes a `block` whose id is `action_id`.
    pub fn continue_block(&mut self, action_id: Uuid) -> Result<(), EngineError> {
        match self.state {
            State::Blocked if self.current_action == action_id => {
                self.state = State::Ready;
                Ok(())
            }
            State::Ended { .. } => Err(EngineError::Ended),
            _ => Err(EngineError::Stale {
                expected: self.is_blocked().then_some(self.current_action),
                got: action_id,
            }),
        }
    }

    /// Ends the flow now (API stop, caller hangup: `EndReason::Hangup`). Idempotent: an
    /// ended flow returns its existing [`End`].
    pub fn stop(&mut self, reason: EndReason) -> End {
        if let Some(end) = self.end() {
            return end.clone();
        }
        self.finish(reason)
    }

    // ----- internals -------------------------------------------------------------------

    fn interrupt(&mut self, now: bool) -> ForwardEffect {
        if !now {
            return ForwardEffect::Queued;
        }
        match std::mem::replace(&mut self.state, State::Ready) {
            State::Waiting(p) => {
                self.trace.amend(
                    p.trace_seq,
                    TraceOutcome::Executed,
                    Some("interrupted".into()),
                );
                ForwardEffect::Interrupt
            }
            State::Blocked => ForwardEffect::Interrupt,
            other => {
                self.state = other;
                ForwardEffect::Queued
            }
        }
    }

    fn node(&self, sp: usize, idx: usize) -> Option<&Node> {
        self.stacks.get(sp)?.actions.get(idx)
    }

    fn stack_pos(&self, id: Uuid) -> Option<usize> {
        self.stacks.iter().rposition(|s| s.id == id)
    }

    /// Finds `action` in stack `start` or its ancestors: (stack position, action index).
    fn locate(&self, start: Uuid, action: Uuid) -> Option<(usize, usize)> {
        let mut sid = Some(start);
        let mut hops = 0;
        while let Some(id) = sid {
            if hops > self.guards.max_stack_hops {
                return None;
            }
            hops += 1;
            let sp = self.stack_pos(id)?;
            let s = self.stacks.get(sp)?;
            if let Some(i) = s.position(action) {
                return Some((sp, i));
            }
            sid = s.return_stack;
        }
        None
    }

    /// Moves the cursor to the next action (reference §3.2). `Ok(None)` = end of flow.
    fn advance(&mut self) -> Result<Option<(usize, usize)>, EndReason> {
        let target = if let Some((fs, fa)) = self.forward.take() {
            let pos = self.locate(fs, fa).ok_or_else(|| {
                EndReason::Error(format!("jump target {fa} is not in the current stacks"))
            })?;
            Some(pos)
        } else {
            self.next_after(self.current_stack, self.current_action)?
        };
        let Some((sp, idx)) = target else {
            return Ok(None);
        };
        let (sid, aid) = match self.node(sp, idx) {
            Some(n) => (self.stacks.get(sp).map_or(ID_START, |s| s.id), n.id),
            None => return Err(EndReason::Error("cursor out of range".into())),
        };
        let mut sp = sp;
        if sid != self.current_stack {
            self.keep_chain_of(sid);
            sp = self
                .stack_pos(sid)
                .ok_or_else(|| EndReason::Error("stack lost".into()))?;
        }
        self.current_stack = sid;
        self.current_action = aid;
        self.current_index = Some(idx);
        Ok(Some((sp, idx)))
    }

    /// The action after `aid` in stack `sid`: `next_id`, else the next element, else return
    /// to the forking stack (releasing the finished one).
    fn next_after(&mut self, sid: Uuid, aid: Uuid) -> Result<Option<(usize, usize)>, EndReason> {
        let (mut sid, mut aid) = (sid, aid);
        let mut hops = 0u32;
        loop {
            hops += 1;
            if hops > self.guards.max_stack_hops {
                return Err(EndReason::Guard(format!(
                    "more than {} stack hops while looking for the next action",
                    self.guards.max_stack_hops
                )));
            }
            let Some(sp) = self.stack_pos(sid) else {
                return Ok(None);
            };
            let Some(s) = self.stacks.get(sp) else {
                return Ok(None);
            };
            if aid == ID_START {
                if !s.actions.is_empty() {
                    return Ok(Some((sp, 0)));
                }
            } else {
                let idx = match self.current_index {
                    Some(i)
                        if sid == self.current_stack
                            && s.actions.get(i).is_some_and(|n| n.id == aid) =>
                    {
                        i
                    }
                    _ => s.position(aid).ok_or_else(|| {
                        EndReason::Error(format!("action {aid} is no longer in its stack"))
                    })?,
                };
                let node = s
                    .actions
                    .get(idx)
                    .ok_or_else(|| EndReason::Error("cursor out of range".into()))?;
                if let Some(n) = node.next_id {
                    return self.locate(sid, n).map(Some).ok_or_else(|| {
                        EndReason::Error(format!(
                            "next_id {n} of action {aid} is not in the current stacks"
                        ))
                    });
                }
                if idx + 1 < s.actions.len() {
                    return Ok(Some((sp, idx + 1)));
                }
            }
            // End of this stack: return to the forking action (or finish the main stack).
            let Some(rs) = s.return_stack else {
                return Ok(None);
            };
            let ra = s.return_action;
            self.stacks.remove(sp);
            self.current_index = None;
            sid = rs;
            aid = ra;
        }
    }

    /// Keeps only `sid` and its ancestors (jumping into an ancestor releases the stacks in
    /// between; a superseded, never-entered push is dropped).
    fn keep_chain_of(&mut self, sid: Uuid) {
        let mut keep = Vec::with_capacity(self.stacks.len());
        let mut cur = Some(sid);
        while let Some(id) = cur {
            if keep.contains(&id) || keep.len() > self.stacks.len() {
                break;
            }
            keep.push(id);
            cur = self
                .stack_pos(id)
                .and_then(|p| self.stacks.get(p))
                .and_then(|s| s.return_stack);
        }
        self.stacks.retain(|s| keep.contains(&s.id));
        self.current_index = None;
    }

    fn push_stack(&mut self, mut actions: Vec<Action>) -> Result<(), EngineError> {
        if actions.is_empty() {
            return Ok(());
        }
        // Actions built without an id (nil) get one (VoIPBIN leaves fetched actions without
        // ids, which makes it skip the stack); so do repeated ids.
        assign_ids(self.id, &mut self.ids_assigned, &mut actions);
        let limits = &self.guards.limits;
        if actions.len() > limits.max_fetched_actions {
            return Err(EngineError::TooManyActions {
                count: actions.len(),
                max: limits.max_fetched_actions,
            });
        }
        if self.stacks.len() >= usize::try_from(self.guards.max_stack_hops).unwrap_or(usize::MAX) {
            return Err(EngineError::TooManyStacks(self.guards.max_stack_hops));
        }
        let outer: HashSet<Uuid> = self
            .stacks
            .iter()
            .flat_map(|s| s.actions.iter().map(|n| n.id))
            .collect();
        let report = validate_actions(&actions, &outer, limits);
        if !report.is_ok() {
            return Err(EngineError::InvalidActions(report.errors));
        }
        // A push that has not started yet (forward points at its first action) runs after
        // this one: chain the new stack to it.
        let pending_push = self.forward.and_then(|(fs, fa)| {
            let s = self.stacks.get(self.stack_pos(fs)?)?;
            let first = s.actions.first()?.id;
            (fs != self.current_stack && s.return_stack == Some(self.current_stack) && fa == first)
                .then_some(fs)
        });
        let (ret_stack, ret_action) = match pending_push {
            Some(fs) => (fs, ID_START),
            None => (self.current_stack, self.current_action),
        };
        self.stacks_created += 1;
        let id = derived_id(self.id, self.stacks_created);
        let first = actions.first().map_or(ID_START, |a| a.id);
        let nodes = actions.iter().map(Node::from).collect();
        self.stacks
            .push(Stack::new(id, nodes, Some(ret_stack), ret_action));
        self.forward = Some((id, first));
        Ok(())
    }

    fn record(
        &mut self,
        sp: usize,
        idx: usize,
        outcome: TraceOutcome,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> u64 {
        let (stack_id, id, kind) = match self.node(sp, idx) {
            Some(n) => (self.current_stack, n.id, n.option.kind()),
            None => (self.current_stack, self.current_action, ActionType::Empty),
        };
        self.trace.push(
            Executed {
                seq: 0,
                stack_id,
                index: idx,
                id,
                kind,
                outcome,
                reason,
                at: now,
            },
            self.guards.trace_window,
        )
    }

    fn finish(&mut self, reason: EndReason) -> End {
        let follow_up = match self.on_complete_flow_id {
            None => FollowUp::None,
            Some(flow_id) => {
                let complete_count = self.complete_count.saturating_add(1);
                if complete_count >= self.guards.max_complete_count {
                    FollowUp::Refused {
                        flow_id,
                        complete_count,
                    }
                } else {
                    FollowUp::Start(OnComplete {
                        flow_id,
                        reference_type: self.reference_type,
                        reference_id: self.reference_id,
                        reference_activeflow_id: self.id,
                        complete_count,
                        variables: self.variables.to_map(),
                    })
                }
            }
        };
        debug!(activeflow = %self.id, reason = %reason, "activeflow ended");
        let end = End { reason, follow_up };
        self.forward = None;
        self.state = State::Ended { end: end.clone() };
        end
    }

    fn end_step(&mut self, reason: EndReason) -> Step {
        Step::Ended(self.finish(reason))
    }

    /// An action failed: fatal ends the flow, swallow records it and goes on.
    fn action_failed(
        &mut self,
        sp: usize,
        idx: usize,
        reason: String,
        now: DateTime<Utc>,
    ) -> Option<Step> {
        let (kind, id) = self
            .node(sp, idx)
            .map_or((ActionType::Empty, self.current_action), |n| {
                (n.option.kind(), n.id)
            });
        self.record(sp, idx, TraceOutcome::Failed, Some(reason.clone()), now);
        match kind.error_policy() {
            ErrorPolicy::Fatal => {
                Some(self.end_step(EndReason::Error(format!("`{kind}` action {id}: {reason}"))))
            }
            ErrorPolicy::Swallow => {
                debug!(activeflow = %self.id, action = %id, kind = %kind, reason = %reason, "action failed, continuing");
                None
            }
        }
    }

    fn command_failed(&mut self, pending: &Pending, kind: ActionType, reason: String) {
        self.trace.amend(
            pending.trace_seq,
            TraceOutcome::Failed,
            Some(reason.clone()),
        );
        if kind.error_policy() == ErrorPolicy::Fatal {
            self.finish(EndReason::Error(format!(
                "`{kind}` action {}: {reason}",
                pending.command.action_id
            )));
        }
    }

    /// Sets the forward pointer to `target`, searched from the current stack.
    fn jump(&mut self, target: Uuid) -> Result<(), String> {
        let (sp, _) = self.locate(self.current_stack, target).ok_or_else(|| {
            format!("jump target {target} is not in the current stack or its ancestors")
        })?;
        let sid = self.stacks.get(sp).map_or(self.current_stack, |s| s.id);
        self.forward = Some((sid, target));
        Ok(())
    }

    /// Runs the action at (sp, idx), which passed media gating.
    fn execute(&mut self, sp: usize, idx: usize, now: DateTime<Utc>) -> Option<Step> {
        let Some(node) = self.stacks.get(sp).and_then(|s| s.actions.get(idx)) else {
            return Some(self.end_step(EndReason::Error("cursor out of range".into())));
        };
        let vars = &self.variables;
        // Control actions decide a jump target (or None to fall through) or an error.
        let decision: Result<Option<Uuid>, String> = match &node.option {
            ActionOption::Goto(g) => {
                if g.loop_count <= 0 {
                    Ok(None)
                } else {
                    resolve(&g.target_id, vars).map(|t| {
                        if let Some(stack) = self.stacks.get_mut(sp) {
                            stack.count_down(idx);
                        }
                        Some(t)
                    })
                }
            }
            ActionOption::Branch(b) => {
                let name: Cow<'_, str> = variable_name(&b.variable, vars);
                let name = if name.is_empty() {
                    Cow::Borrowed(CALL_DIGITS)
                } else {
                    name
                };
                let value = vars.get(&name).unwrap_or("");
                let default = (!b.default_target_id.is_nil()).then_some(&b.default_target_id);
                let target = b.target_ids.get(value).or(default).cloned().ok_or_else(|| {
                    format!("value `{value}` of `{name}` matches no target_ids key and there is no default_target_id")
                });
                let name = name.into_owned();
                // Cleared after reading, so a repeated menu re-prompts cleanly.
                match self.variables.set_internal(&name, "", &self.guards.limits) {
                    Err(e) => Err(e.to_string()),
                    Ok(()) => target.and_then(|t| resolve(&t, &self.variables)).map(Some),
                }
            }
            ActionOption::ConditionVariable(c) => {
                if condition_variable(c, vars) {
                    Ok(None)
                } else {
                    false_target(&c.false_target_id, vars)
                }
            }
            ActionOption::ConditionDatetime(c) => {
                match condition_datetime(c, vars, &self.guards.timezone, now) {
                    Ok(true) => Ok(None),
                    Ok(false) => false_target(&c.false_target_id, vars),
                    Err(e) => Err(e),
                }
            }
            ActionOption::ConditionCallDigits(c) => {
                let digits = vars.get(CALL_DIGITS).unwrap_or("");
                let key = substitute(&c.key, vars);
                let ok = (c.length > 0 && len_at_least(digits, c.length))
                    || (!key.is_empty() && digits.contains(key.as_ref()));
                if ok {
                    Ok(None)
                } else {
                    false_target(&c.false_target_id, vars)
                }
            }
            ActionOption::ConditionCallStatus(c) => {
                let status = vars.get(CALL_STATUS).unwrap_or("");
                if status == substitute(&c.status, vars) {
                    Ok(None)
                } else {
                    false_target(&c.false_target_id, vars)
                }
            }
            ActionOption::VariableSet(v) => {
                let (key, value) = &mut self.scratch;
                substitute_into(&v.key, vars, key);
                substitute_into(&v.value, vars, value);
                match self.variables.set(key, value, &self.guards.limits) {
                    Ok(()) => Ok(None),
                    Err(e) => Err(e.to_string()),
                }
            }
            ActionOption::Empty(_) => Ok(None),
            ActionOption::Stop(_) => {
                self.record(sp, idx, TraceOutcome::Executed, None, now);
                return Some(self.end_step(EndReason::Stopped("stop action".into())));
            }
            ActionOption::Block(_) => {
                self.record(sp, idx, TraceOutcome::Executed, None, now);
                self.state = State::Blocked;
                return Some(Step::Blocked);
            }
            other => {
                return match other.to_command(vars) {
                    Some(Ok(option)) => self.emit(sp, idx, effective(option), now),
                    Some(Err(e)) => self.action_failed(sp, idx, subst_reason(e), now),
                    None => self.action_failed(sp, idx, "not a command".into(), now),
                };
            }
        };
        match decision {
            Ok(target) => {
                self.record(sp, idx, TraceOutcome::Executed, None, now);
                match target.map(|t| self.jump(t)) {
                    Some(Err(e)) => self.action_failed(sp, idx, e, now),
                    _ => None,
                }
            }
            Err(e) => self.action_failed(sp, idx, e, now),
        }
    }

    /// Hands a command to the runtime (or completes `digits_receive` at once when digits
    /// pressed earlier already satisfy it).
    fn emit(
        &mut self,
        sp: usize,
        idx: usize,
        option: CommandOption,
        now: DateTime<Utc>,
    ) -> Option<Step> {
        if let CommandOption::DigitsReceive(o) = &option {
            let digits = self.variables.get(CALL_DIGITS);
            let pressed_key = digits.is_some_and(|d| d.chars().any(|c| o.key.contains(c)));
            if pressed_key || digits_satisfy_length(o, digits) {
                let why = "satisfied on entry by digits pressed earlier".to_owned();
                self.record(sp, idx, TraceOutcome::Executed, Some(why), now);
                return None;
            }
        }
        let trace_seq = self.record(sp, idx, TraceOutcome::Executed, None, now);
        let command = Command {
            action_id: self.current_action,
            option,
        };
        self.state = State::Waiting(Pending {
            command: command.clone(),
            trace_seq,
        });
        Some(Step::Execute(command))
    }
}

/// Gives ids to actions that have none (nil) and to actions that repeat an id used earlier in
/// the same list. Jumps to a repeated id go to its first action (VoIPBIN searches the list
/// in order); with a fresh id the later action runs where it stands instead of the cursor
/// landing on the first one whenever it falls through to it (VoIPBIN's behaviour, which
/// loops). Ids are derived from the activeflow id and a counter: deterministic.
fn assign_ids(base: Uuid, counter: &mut u64, actions: &mut [Action]) {
    let mut seen = HashSet::with_capacity(actions.len());
    for a in actions.iter_mut() {
        if a.id.is_nil() || !seen.insert(a.id) {
            *counter += 1;
            a.id = derived_id(base, ACTION_ID_DOMAIN | *counter);
            seen.insert(a.id);
        }
    }
}

/// The values the runtime must act on, where VoIPBIN normalises what it was given: a
/// hangup reason VoIPBIN does not know is normal clearing (`ConvertHangupReasonToChannelCause`
/// falls back to it), and so is an empty one unless the reason is copied from another call.
fn effective(mut option: CommandOption) -> CommandOption {
    if let CommandOption::Hangup(h) = &mut option {
        let unknown = !HANGUP_REASONS.contains(&h.reason.as_str());
        let empty = h.reason.is_empty() && h.reference_id.is_nil();
        if unknown || empty {
            h.reason = "normal".to_owned();
        }
    }
    option
}

fn subst_reason(e: SubstError) -> String {
    format!("option.{e}")
}

/// Whether the digits reach `length` (when a length rule is set).
fn digits_satisfy_length(o: &DigitsReceiveOption, digits: Option<&str>) -> bool {
    o.length > 0 && len_at_least(digits.unwrap_or(""), o.length)
}

fn len_at_least(s: &str, n: i64) -> bool {
    i64::try_from(s.chars().count()).unwrap_or(i64::MAX) >= n
}

/// Resolves a UUID option (substituting a template).
fn resolve(id: &IdRef, vars: &Variables) -> Result<Uuid, String> {
    match id {
        IdRef::Id(u) if u.is_nil() => Err("the target id is not set".into()),
        IdRef::Id(u) => Ok(*u),
        IdRef::Template(_) => match vars::Substitute::substitute(id, vars) {
            Ok(IdRef::Id(u)) if !u.is_nil() => Ok(u),
            Ok(_) => Err(format!("`{id}` resolved to an empty id")),
            Err(e) => Err(e.message),
        },
    }
}

fn false_target(id: &IdRef, vars: &Variables) -> Result<Option<Uuid>, String> {
    resolve(id, vars)
        .map(Some)
        .map_err(|e| format!("condition is false and false_target_id cannot be used: {e}"))
}

/// The variable a `branch` reads: `${name}` means `name`; otherwise the (substituted) text.
fn variable_name<'a>(opt: &'a str, vars: &'a Variables) -> Cow<'a, str> {
    match sole_placeholder(opt) {
        Some(n) => Cow::Borrowed(n),
        None => substitute(opt, vars),
    }
}

/// Comparison operators of the condition actions.
#[derive(Clone, Copy)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "==" => Op::Eq,
            "!=" => Op::Ne,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            "<=" => Op::Le,
            _ => return None,
        })
    }

    fn test<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Lt => a < b,
            Op::Le => a <= b,
        }
    }
}

/// `condition_variable` (reference §3.4). The left operand: a `${…}` template is
/// substituted; a bare name that is a known variable reads that variable (the docs' style);
/// anything else is literal text (VoIPBIN's code). Unknown operator or type, or a failed
/// number parse, is false.
fn condition_variable(c: &crate::model::ConditionVariableOption, vars: &Variables) -> bool {
    let lhs: Cow<'_, str> = if vars::has_placeholder(&c.variable) {
        substitute(&c.variable, vars)
    } else {
        Cow::Borrowed(vars.get(&c.variable).unwrap_or(&c.variable))
    };
    let Some(op) = Op::parse(&substitute(&c.condition, vars)) else {
        return false;
    };
    match substitute(&c.value_type, vars).as_ref() {
        "string" => op.test(lhs.as_bytes(), substitute(&c.value_string, vars).as_bytes()),
        "number" => lhs.parse::<f32>().is_ok_and(|n| op.test(n, c.value_number)),
        "length" => i64::try_from(lhs.len()).is_ok_and(|n| op.test(n, c.value_length)),
        _ => false,
    }
}

/// `condition_datetime`: weekdays, then month, day, hour, minute, each `option <op> now`
/// (VoIPBIN's operand order). An omitted hour/minute is 0 and tested, as in VoIPBIN's code,
/// unless the action's `omitted_fields` is `any`; `-1` is "any" either way.
fn condition_datetime(
    c: &crate::model::ConditionDatetimeOption,
    vars: &Variables,
    default_tz: &str,
    now: DateTime<Utc>,
) -> Result<bool, String> {
    let tz_name = substitute(&c.timezone, vars);
    let tz_name = if tz_name.is_empty() {
        default_tz
    } else {
        tz_name.as_ref()
    };
    let tz = crate::tz::lookup(tz_name).map_err(|e| e.to_string())?;
    let Some(op) = Op::parse(&substitute(&c.condition, vars)) else {
        return Ok(false);
    };
    let local = tz.local(now);
    let today = i64::from(local.weekday().num_days_from_sunday());
    if !c.weekdays.is_empty() && !c.weekdays.contains(&today) {
        return Ok(false);
    }
    let omitted_any = substitute(&c.omitted_fields, vars) == "any";
    let tested = |v: Option<i64>| match v {
        Some(v) => v >= 0,
        None => !omitted_any,
    };
    let checks = [
        (c.month > 0, c.month, local.month()),
        (c.day > 0, c.day, local.day()),
        (tested(c.hour), c.hour.unwrap_or(0), local.hour()),
        (tested(c.minute), c.minute.unwrap_or(0), local.minute()),
    ];
    Ok(checks
        .iter()
        .all(|&(active, opt, cur)| !active || op.test(opt, i64::from(cur))))
}

/// Separates derived action ids from derived stack ids.
const ACTION_ID_DOMAIN: u64 = 1 << 63;

/// A stack id derived from the activeflow id and a counter: unique, deterministic (the
/// engine stays free of randomness, so a replay gives the same ids).
fn derived_id(base: Uuid, n: u64) -> Uuid {
    let (hi, lo) = base.as_u64_pair();
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let a = mix(hi ^ n);
    let b = mix(lo ^ a ^ n.rotate_left(32));
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_be_bytes());
    bytes[8..].copy_from_slice(&b.to_be_bytes());
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests;
