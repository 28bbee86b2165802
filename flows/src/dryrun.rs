//! Dry-run: runs a flow offline against a scripted channel (`flowgate flow run`).
//!
//! Pure: no I/O and no clock. Media commands complete at once while a virtual clock advances
//! by the durations their options state (`sleep`, `echo`, `digits_send`, a `digits_receive`
//! timeout); service commands (`message_send`, `webhook_send`, `call`, `email_send`, …) are
//! recorded with their substituted options, not performed; `fetch`/`fetch_flow` call the
//! caller's closure (the CLI may do a real HTTP request or look the flow up in files).
//!
//! Scripted input ([`InputEvent`], parsed from the CLI's `--input` strings) is consumed in
//! order:
//!
//! | input | consumed by | effect |
//! |---|---|---|
//! | `dtmf:DIGITS` | the next `digits_receive` | digits pressed one by one; digits left over once it is satisfied stay queued for the next one (type-ahead) |
//! | `press:DIGITS` | the next waiting call-media command (e.g. a `talk` prompt) | digits pressed while it plays: barge-in with `digits_handle: next`, otherwise they overwrite `voipbin.call.digits` |
//! | `timeout` | the next `digits_receive` | it times out (also what happens when no input is left) |
//! | `hangup` | the next waiting call-media command | the caller hangs up there |
//! | `fail[:REASON]` | the next command of any kind | it fails (tests error policies) |
//!
//! "Waiting" call-media commands are those that take time on the call (`talk`, `play`,
//! `beep`, `digits_receive`, `digits_send`, `sleep`, `echo`, `amd`, `connect`, `queue_join`,
//! …); instant ones (`answer`, `recording_start`, `hangup`, …) never consume input.
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

use std::collections::{HashMap, VecDeque};
use std::fmt::{self, Write as _};
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use indexmap::IndexMap;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::engine::{
    Activeflow, ActiveflowSpec, Command, DtmfEffect, End, EndReason, EngineError, FollowUp, Guards,
    Outcome, Step, TraceOutcome,
};
use crate::model::{Action, ActionType, CommandOption, Flow, ID_START, Media, ReferenceType};
use crate::validate::is_dtmf;

/// One scripted channel event (see the module docs for when each is consumed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputEvent {
    /// `dtmf:DIGITS`: digits for the next `digits_receive`.
    Dtmf(String),
    /// `press:DIGITS`: digits pressed during the next call-media command.
    Press(String),
    /// `timeout`: the next `digits_receive` times out.
    Timeout,
    /// `hangup`: the caller hangs up at the next call-media command.
    Hangup,
    /// `fail[:REASON]`: the next command fails.
    Fail(String),
}

/// A malformed `--input` or `--var`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// Unknown event kind.
    #[error("unknown input `{0}`: use dtmf:DIGITS, press:DIGITS, timeout, hangup or fail[:REASON]")]
    Unknown(String),
    /// `dtmf:`/`press:` without digits.
    #[error("`{0}` needs digits after the colon (0-9, A-D, #, *)")]
    NoDigits(String),
    /// A character that is not a DTMF digit.
    #[error("`{input}`: `{ch}` is not a DTMF digit (0-9, A-D, #, *)")]
    BadDigit {
        /// The whole input.
        input: String,
        /// The offending character.
        ch: char,
    },
    /// `--var` without `=`.
    #[error("`{0}` is not KEY=VALUE")]
    BadVar(String),
    /// `--now` that is not RFC 3339.
    #[error("{0}")]
    BadTime(String),
    /// `--reference` that is not a reference type.
    #[error(
        "unknown reference type `{0}`: use call, api, message, conversation, campaign, recording, transcribe, webchat, ai or none"
    )]
    BadReference(String),
}

impl FromStr for InputEvent {
    type Err = InputError;

    fn from_str(s: &str) -> Result<Self, InputError> {
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k.trim(), Some(a)),
            None => (s.trim(), None),
        };
        let digits = |arg: Option<&str>| -> Result<String, InputError> {
            let d = arg.unwrap_or("").trim();
            if d.is_empty() {
                return Err(InputError::NoDigits(s.to_owned()));
            }
            d.chars()
                .map(|c| {
                    let u = c.to_ascii_uppercase();
                    if is_dtmf(u) {
                        Ok(u)
                    } else {
                        Err(InputError::BadDigit {
                            input: s.to_owned(),
                            ch: c,
                        })
                    }
                })
                .collect()
        };
        match (kind.to_ascii_lowercase().as_str(), arg) {
            ("dtmf", a) => Ok(InputEvent::Dtmf(digits(a)?)),
            ("press", a) => Ok(InputEvent::Press(digits(a)?)),
            ("timeout", None) => Ok(InputEvent::Timeout),
            ("hangup", None) => Ok(InputEvent::Hangup),
            ("fail", a) => Ok(InputEvent::Fail(
                a.map(str::trim)
                    .filter(|r| !r.is_empty())
                    .unwrap_or("scripted failure")
                    .to_owned(),
            )),
            _ => Err(InputError::Unknown(s.to_owned())),
        }
    }
}

impl fmt::Display for InputEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputEvent::Dtmf(d) => write!(f, "dtmf:{d}"),
            InputEvent::Press(d) => write!(f, "press:{d}"),
            InputEvent::Timeout => f.write_str("timeout"),
            InputEvent::Hangup => f.write_str("hangup"),
            InputEvent::Fail(r) => write!(f, "fail:{r}"),
        }
    }
}

/// Parses a `--var KEY=VALUE` argument.
pub fn parse_var(s: &str) -> Result<(String, String), InputError> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(InputError::BadVar(s.to_owned())),
    }
}

/// Parses a `--now` argument (RFC 3339, e.g. `2025-06-04T10:00:00+02:00`).
pub fn parse_now(s: &str) -> Result<DateTime<Utc>, InputError> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| InputError::BadTime(format!("`{s}` is not an RFC 3339 time: {e}")))
}

/// Parses a `--reference` argument (`call`, `api`, `message`, `conversation`, …, `none`).
pub fn parse_reference(s: &str) -> Result<ReferenceType, InputError> {
    ReferenceType::from_name(s.trim()).ok_or_else(|| InputError::BadReference(s.to_owned()))
}

/// What a `fetch` / `fetch_flow` asks the caller for.
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
    /// `fetch_flow`: the actions of this flow.
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
    /// Variables set before the first action, like the runtime sets `voipbin.call.*` or
    /// `voipbin.conversation*` (trusted: `voipbin.*` allowed, except
    /// `voipbin.activeflow.*`).
    pub variables: IndexMap<String, String>,
    /// Scripted channel events.
    pub inputs: Vec<InputEvent>,
    /// Virtual start time (for `condition_datetime`).
    pub now: DateTime<Utc>,
    /// Engine guards (the trace window is raised to keep the whole trace).
    pub guards: Guards,
}

impl Default for DryRunConfig {
    fn default() -> Self {
        Self {
            reference_type: ReferenceType::Call,
            variables: IndexMap::new(),
            inputs: Vec::new(),
            now: DateTime::<Utc>::UNIX_EPOCH,
            guards: Guards::default(),
        }
    }
}

/// One action the cursor reached.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceEntry {
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
    /// Position in its stack (`actions[index]` for the main stack).
    pub index: usize,
    /// The stack, when not the main one (fetched/pushed actions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<Uuid>,
    /// Virtual time when the cursor reached it.
    pub at: DateTime<Utc>,
    /// The substituted options of a command (what would have been sent/performed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub option: Option<Value>,
    /// Scripted input consumed by it, or how it completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
}

/// The result of a dry run. Serializes exactly as `{"trace": […], "variables": {…},
/// "end": "…"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DryRunReport {
    /// Every action the cursor reached, in order.
    pub trace: Vec<TraceEntry>,
    /// Final variables, sorted by name.
    pub variables: IndexMap<String, String>,
    /// How the flow ended, as text (`finished`, `hangup`, `stopped: …`, `error: …`,
    /// `guard: …`; a requested on-complete follow-up is appended).
    pub end: String,
    /// The engine's [`End`] (not serialized).
    #[serde(skip)]
    pub end_detail: End,
    /// Scripted inputs that were never consumed (not serialized).
    #[serde(skip)]
    pub unused_inputs: Vec<InputEvent>,
}

/// Why a dry run could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DryRunError {
    /// The engine refused the flow or the variables.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Runs `flow` with the scripted channel of `cfg`. `fetch` answers `fetch`/`fetch_flow`.
pub fn dry_run(
    flow: &Flow,
    cfg: &DryRunConfig,
    fetch: &mut dyn FnMut(&FetchRequest) -> Result<Vec<Action>, String>,
) -> Result<DryRunReport, DryRunError> {
    let mut guards = cfg.guards.clone();
    guards.trace_window = usize::try_from(guards.max_executions)
        .unwrap_or(usize::MAX)
        .clamp(guards.trace_window, 1_000_000);
    let af_id = Uuid::from_u128(0xd1ce);
    let mut spec = ActiveflowSpec::new(af_id, flow, cfg.reference_type, Uuid::nil());
    spec.variables = cfg.variables.clone();
    let mut af = Activeflow::new(spec, &guards)?;
    let mut run = Runner {
        inputs: cfg.inputs.iter().cloned().collect(),
        now: cfg.now,
        details: HashMap::new(),
    };
    let end = loop {
        match af.run(run.now) {
            Step::Ended(end) => break end,
            Step::Blocked => {
                break af.stop(EndReason::Stopped(format!(
                    "blocked at action {}: nothing continues it in a dry run",
                    af.current_action_id()
                )));
            }
            Step::Execute(cmd) => run.perform(&mut af, &cmd, fetch),
        }
    };
    let trace = af
        .executed()
        .map(|e| {
            let (option, input) = run.details.remove(&e.seq).unwrap_or_default();
            TraceEntry {
                id: e.id,
                kind: e.kind,
                outcome: e.outcome,
                reason: e.reason.clone(),
                index: e.index,
                stack: (e.stack_id != ID_START).then_some(e.stack_id),
                at: e.at,
                option,
                input,
            }
        })
        .collect();
    Ok(DryRunReport {
        trace,
        variables: af.variables().to_sorted_map(),
        end: describe_end(&end),
        end_detail: end,
        unused_inputs: run.inputs.into_iter().collect(),
    })
}

fn describe_end(end: &End) -> String {
    let mut s = end.reason.to_string();
    match &end.follow_up {
        FollowUp::None => {}
        FollowUp::Start(oc) => {
            let _ = write!(
                s,
                " (then on_complete_flow_id {} starts with complete_count {})",
                oc.flow_id, oc.complete_count
            );
        }
        FollowUp::Refused {
            flow_id,
            complete_count,
        } => {
            let _ = write!(
                s,
                " (on_complete_flow_id {flow_id} refused: chain depth {complete_count} is too deep)"
            );
        }
    }
    s
}

struct Runner {
    inputs: VecDeque<InputEvent>,
    now: DateTime<Utc>,
    /// Trace seq → (substituted option, input note).
    details: HashMap<u64, (Option<Value>, Option<String>)>,
}

impl Runner {
    fn perform(
        &mut self,
        af: &mut Activeflow,
        cmd: &Command,
        fetch: &mut dyn FnMut(&FetchRequest) -> Result<Vec<Action>, String>,
    ) {
        let seq = af.executed().next_back().map_or(0, |e| e.seq);
        let option = serde_json::to_value(&cmd.option)
            .ok()
            .and_then(|v| v.get("option").cloned());
        let (outcome, note) = self.outcome(af, cmd, fetch);
        self.details.insert(seq, (option, note));
        if let Some(outcome) = outcome {
            // The command is pending; a refusal here would be an engine bug, and the next
            // `run` reports the state either way.
            let _ = af.complete(cmd.action_id, outcome, self.now);
        }
    }

    /// Decides the outcome of a command (`None` when DTMF already completed it).
    fn outcome(
        &mut self,
        af: &mut Activeflow,
        cmd: &Command,
        fetch: &mut dyn FnMut(&FetchRequest) -> Result<Vec<Action>, String>,
    ) -> (Option<Outcome>, Option<String>) {
        let channel = waits_on_call(cmd.kind());
        match self.inputs.front() {
            Some(InputEvent::Hangup) if channel => {
                self.inputs.pop_front();
                return (Some(Outcome::Hangup), Some("hangup".into()));
            }
            Some(InputEvent::Fail(r)) => {
                let r = r.clone();
                self.inputs.pop_front();
                return (Some(Outcome::Failed(r.clone())), Some(format!("fail:{r}")));
            }
            Some(InputEvent::Press(_)) if channel && cmd.kind() != ActionType::DigitsReceive => {
                if let Some(InputEvent::Press(d)) = self.inputs.pop_front() {
                    let (ended, rest) = press(af, &d, self.now);
                    if !rest.is_empty() {
                        self.inputs.push_front(InputEvent::Press(rest));
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
                        f.event_method.clone()
                    },
                    body: serde_json::json!({
                        "activeflow_id": af.id(),
                        "reference_id": af.reference_id(),
                    }),
                };
                fetched(fetch(&req))
            }
            CommandOption::FetchFlow(f) => fetched(fetch(&FetchRequest::FetchFlow {
                flow_id: f.flow_id.uuid(),
            })),
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
            match self.inputs.pop_front() {
                Some(InputEvent::Dtmf(d) | InputEvent::Press(d)) => {
                    let mut chars = d.chars();
                    for c in chars.by_ref() {
                        used.push(c);
                        match af.dtmf(c, self.now) {
                            Ok(e) if e.ends_command() => {
                                let rest: String = chars.collect();
                                if !rest.is_empty() {
                                    self.inputs.push_front(InputEvent::Dtmf(rest));
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
                    self.inputs.push_front(other);
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
    /// Human-readable rendering: the trace, the variables, the end.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "trace:");
        for (i, e) in self.trace.iter().enumerate() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;
    use crate::model::parse_flow;

    fn run(json: &str, rt: ReferenceType, inputs: &[&str]) -> DryRunReport {
        let flow = parse_flow(json, &Limits::default()).expect("flow");
        let cfg = DryRunConfig {
            reference_type: rt,
            inputs: inputs.iter().map(|i| i.parse().expect("input")).collect(),
            ..DryRunConfig::default()
        };
        dry_run(&flow, &cfg, &mut no_fetch).expect("dry run")
    }

    #[test]
    fn input_parser() {
        assert_eq!("dtmf:12#".parse(), Ok(InputEvent::Dtmf("12#".into())));
        assert_eq!("DTMF: a*".parse(), Ok(InputEvent::Dtmf("A*".into())));
        assert_eq!("hangup".parse(), Ok(InputEvent::Hangup));
        assert_eq!("timeout".parse(), Ok(InputEvent::Timeout));
        assert_eq!(
            "fail".parse(),
            Ok(InputEvent::Fail("scripted failure".into()))
        );
        assert_eq!(
            "fail:smsc down".parse(),
            Ok(InputEvent::Fail("smsc down".into()))
        );
        assert_eq!("press:1".parse(), Ok(InputEvent::Press("1".into())));
        assert!(matches!(
            "dtmf:".parse::<InputEvent>(),
            Err(InputError::NoDigits(_))
        ));
        assert!(matches!(
            "dtmf:1x".parse::<InputEvent>(),
            Err(InputError::BadDigit { ch: 'x', .. })
        ));
        assert!(matches!(
            "ring".parse::<InputEvent>(),
            Err(InputError::Unknown(_))
        ));
        assert!(matches!(
            "hangup:now".parse::<InputEvent>(),
            Err(InputError::Unknown(_))
        ));
        assert_eq!(parse_var("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_var("novalue").is_err());
        assert_eq!(
            parse_now("2025-06-04T10:00:00+02:00").map(|t| t.to_rfc3339()),
            Ok("2025-06-04T08:00:00+00:00".to_owned())
        );
        assert!(matches!(
            parse_now("yesterday"),
            Err(InputError::BadTime(_))
        ));
        assert_eq!(parse_reference("message"), Ok(ReferenceType::Message));
        assert!(matches!(
            parse_reference("fax"),
            Err(InputError::BadReference(_))
        ));
    }

    #[test]
    fn json_shape_is_exact() {
        let r = run(
            r#"[{"type":"talk","option":{"text":"x"}}]"#,
            ReferenceType::Api,
            &[],
        );
        let v = serde_json::to_value(&r).expect("ser");
        let keys: Vec<_> = v.as_object().expect("object").keys().cloned().collect();
        assert_eq!(keys, ["trace", "variables", "end"]);
        assert_eq!(v["trace"][0]["type"], "talk");
        assert_eq!(v["trace"][0]["outcome"], "skipped");
        assert_eq!(v["end"], "finished");
    }

    #[test]
    fn type_ahead_and_timeout() {
        let flow = r#"[
            {"type":"digits_receive","option":{"duration":1000,"length":1}},
            {"type":"variable_set","option":{"key":"first","value":"${voipbin.call.digits}"}},
            {"type":"branch","option":{"default_target_id":"00000000-0000-0000-0000-0000000000a2"}},
            {"id":"00000000-0000-0000-0000-0000000000a2","type":"digits_receive","option":{"duration":1000,"length":1}},
            {"type":"variable_set","option":{"key":"second","value":"${voipbin.call.digits}"}},
            {"type":"digits_receive","option":{"duration":2500,"length":3}}
        ]"#;
        let r = run(flow, ReferenceType::Call, &["dtmf:12"]);
        assert_eq!(r.variables["first"], "1");
        assert_eq!(r.variables["second"], "2");
        assert_eq!(r.trace[5].input.as_deref(), Some("timeout"));
        assert_eq!(r.trace[5].at, DateTime::<Utc>::UNIX_EPOCH);
        assert!(r.render_text().contains("end: finished"));
    }

    #[test]
    fn hangup_and_failure_inputs() {
        let r = run(
            r#"[{"type":"talk","option":{"text":"a"}},{"type":"talk","option":{"text":"b"}}]"#,
            ReferenceType::Call,
            &["hangup"],
        );
        assert_eq!(r.end, "hangup");
        assert_eq!(r.trace.len(), 1);
        let r = run(
            r#"[{"type":"message_send","option":{"destinations":[{"type":"tel","target":"+1"}],"text":"t"}}]"#,
            ReferenceType::Api,
            &["fail:smsc down"],
        );
        assert!(r.end.starts_with("error: `message_send`"), "{}", r.end);
        assert_eq!(r.trace[0].outcome, TraceOutcome::Failed);
    }

    #[test]
    fn barge_in_press() {
        let r = run(
            r#"[{"type":"talk","option":{"text":"menu","digits_handle":"next"}},
                {"type":"digits_receive","option":{"duration":5000,"length":1}}]"#,
            ReferenceType::Call,
            &["press:7"],
        );
        assert_eq!(r.variables["voipbin.call.digits"], "7");
        assert_eq!(r.trace[0].input.as_deref(), Some("press:7 (interrupted)"));
        // digits_receive was satisfied on entry: no command, no input consumed
        assert_eq!(r.trace[1].input, None);
        assert!(r.unused_inputs.is_empty());
    }

    #[test]
    fn virtual_time_advances() {
        let r = run(
            r#"[{"type":"sleep","option":{"duration":1500}},{"type":"digits_send","option":{"digits":"123","duration":100,"interval":50}},{"type":"answer"}]"#,
            ReferenceType::Call,
            &[],
        );
        assert_eq!(
            r.trace[2].at,
            DateTime::<Utc>::UNIX_EPOCH + Duration::milliseconds(1500 + 400)
        );
    }
}
