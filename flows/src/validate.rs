//! Flow validation: every problem at once, each with a JSON path, a plain sentence and a
//! [`Severity`].
//!
//! Errors make a flow unusable (the API refuses it, `flowgate flow validate` exits 1);
//! warnings never refuse anything. The line between them follows one rule: **a flow VoIPBIN
//! would accept and run imports** — Flowgate keeps its checks, but wherever VoIPBIN runs the
//! flow (normalising the value, ignoring it, or failing that one action when it is reached)
//! the finding is a warning whose sentence says what happens at run time. Errors are kept
//! for what cannot run at all:
//!
//! | error | why |
//! |---|---|
//! | not JSON, over a cap, not an object, a field of the wrong JSON type, an id that is not a UUID | Flowgate cannot represent it (options are typed when the flow is created) |
//! | an unknown (or the internal `empty`) action type | VoIPBIN refuses it too (`INVALID_ACTION_TYPE`) |
//! | `call`/`connect` `anonymous` not `""`, `yes`, `no` or `auto` | VoIPBIN refuses it too (`INVALID_ANONYMOUS_VALUE`) |
//! | START, FINISH or NEXT as an action id, `next_id` or jump target | reserved for the engine (a nil id means "no id": one is assigned) |
//! | a wrong value in a Flowgate option (`condition_datetime.timezone`, `.omitted_fields`) | Flowgate's own options have no VoIPBIN behaviour to fall back on |
//!
//! Everything else is a warning, for example:
//!
//! | warning | at run time |
//! |---|---|
//! | a jump target or `next_id` that is not in the list | searched in the stacks below (a `fetch_flow` sub-flow may jump into the flow that fetched it); the flow stops with an error only when it is in none of them |
//! | a duplicate action id | jumps go to the first action with that id (as in VoIPBIN); the engine gives the later ones fresh ids so they run where they stand |
//! | a missing target (`goto`, `false_target_id`, `branch` keys) | the flow stops with an error when it would jump there |
//! | an unknown `hangup.reason` | normal clearing (VoIPBIN's default), which the engine hands to the runtime |
//! | non-DTMF characters in `digits_receive.key` / `condition_call_digits.key` | stored; they never match a digit |
//! | an unknown `condition`, `value_type` or call status | the condition is false |
//! | values out of range, missing URLs or destinations, unknown enum values of commands | the action fails when it runs, following its error policy (fatal or swallowed) |
//! | inline `call.actions` that do not parse | the `call` fails when it runs (VoIPBIN creates their flow only then) |
//! | unreachable actions, `goto` without `loop_count`, `branch` without default, an omitted `condition_datetime` hour/minute (compared as 0), media gating for a known use, unknown option fields | legal, probably not meant |
//!
//! Values that contain a `${…}` template are not range-checked: they are only known when the
//! action runs (the engine or the runtime report a failure then).
//!
//! ```
//! use flowgate_flows::validate::{validate_json, Severity, ValidateOptions};
//! let (flow, report) = validate_json(
//!     r#"[{"type":"hangup","option":{"reason":"angry"}}]"#, &ValidateOptions::default());
//! assert!(flow.is_some() && report.is_ok());
//! assert_eq!(report.warnings[0].path, "actions[0].option.reason");
//! assert_eq!(report.warnings[0].severity, Severity::Warning);
//! let report = validate_json(r#"[{"type":"hangupp"}]"#, &ValidateOptions::default()).1;
//! assert_eq!(report.errors[0].path, "actions[0].type");
//! ```

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::limits::{Limits, join_path};
use crate::model::{
    ADDRESS_TYPES, Action, ActionOption, Address, Flow, HANGUP_REASONS, IdRef, ReferenceType,
    actions_lenient, is_reserved_action_id, parse_json,
};
use crate::vars::{self, has_placeholder};

pub use crate::problem::{FlowError, Problem, Severity};

/// Everything validation found. Each list holds problems of one [`Severity`] (every
/// [`Problem`] also carries its severity, so merged lists stay readable).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Problems that make the flow unusable.
    pub errors: Vec<Problem>,
    /// Suspicious but legal things, and what happens at run time.
    pub warnings: Vec<Problem>,
}

impl Report {
    /// No errors (warnings allowed).
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// Files a problem under its severity.
    pub fn push(&mut self, problem: Problem) {
        match problem.severity {
            Severity::Error => self.errors.push(problem),
            Severity::Warning => self.warnings.push(problem),
        }
    }

    /// Every problem, errors first.
    pub fn problems(&self) -> impl Iterator<Item = &Problem> {
        self.errors.iter().chain(&self.warnings)
    }
}

/// What to validate against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidateOptions {
    /// Caps applied when parsing.
    pub limits: Limits,
    /// If the flow's use is known (a number's call flow, a message flow, API): warn about
    /// actions that media gating would always skip.
    pub reference_type: Option<ReferenceType>,
}

/// Parses and validates a flow document; parse problems and validation problems come back
/// together. The flow is returned only when there are no errors.
pub fn validate_json(text: &str, opts: &ValidateOptions) -> (Option<Flow>, Report) {
    let value = match parse_json(text, &opts.limits) {
        Ok(v) => v,
        Err(e) => {
            return (
                None,
                Report {
                    errors: e.problems(),
                    warnings: Vec::new(),
                },
            );
        }
    };
    let (flow, parse_errors) = Flow::from_value_lenient(value, &opts.limits, &mut Uuid::new_v4);
    let mut report = validate(&flow, opts);
    if !parse_errors.is_empty() {
        // Placeholders stand in for the broken actions; drop the warnings about them.
        let broken: HashSet<&str> = parse_errors
            .iter()
            .filter_map(|e| e.path.find(']').and_then(|i| e.path.get(..=i)))
            .collect();
        report.warnings.retain(|w| {
            !broken.iter().any(|b| {
                w.path
                    .strip_prefix(b)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
            })
        });
        let mut errors = parse_errors;
        errors.append(&mut report.errors);
        report.errors = errors;
    }
    let ok = report.is_ok();
    (ok.then_some(flow), report)
}

/// Validates a parsed flow.
pub fn validate(flow: &Flow, opts: &ValidateOptions) -> Report {
    let mut v = Validator {
        report: Report::default(),
        opts,
        demote: None,
    };
    if flow.actions.is_empty() {
        v.warn(
            "actions",
            "the flow has no actions: it ends as soon as it starts",
        );
    }
    v.check_actions(&flow.actions, "actions", &HashSet::new());
    v.report
}

/// Validates actions that will run as a new stack (`fetch` replies, `push_actions`):
/// jump targets may also be the ids in `outer` (the stacks below); targets in neither are
/// warnings (they fail only if the jump happens).
pub fn validate_actions(actions: &[Action], outer: &HashSet<Uuid>, limits: &Limits) -> Report {
    let opts = ValidateOptions {
        limits: limits.clone(),
        reference_type: None,
    };
    let mut v = Validator {
        report: Report::default(),
        opts: &opts,
        demote: None,
    };
    v.check_actions(actions, "actions", outer);
    v.report
}

const CONDITIONS: &[&str] = &["==", "!=", ">", ">=", "<", "<="];
const HTTP_METHODS: &[&str] = &["", "GET", "POST", "PUT", "DELETE"];
const ANONYMOUS: &[&str] = &["", "yes", "no", "auto"];
const CALL_STATUSES: &[&str] = &[
    "dialing",
    "ringing",
    "progressing",
    "terminating",
    "canceling",
    "hangup",
];

/// Values of the Flowgate option `condition_datetime.omitted_fields`.
pub const OMITTED_FIELDS: &[&str] = &["", "zero", "any"];

/// Whether `c` is a DTMF character (`0-9 A-D # *`).
pub fn is_dtmf(c: char) -> bool {
    matches!(c, '0'..='9' | 'A'..='D' | '#' | '*')
}

struct Validator<'o> {
    report: Report,
    opts: &'o ValidateOptions,
    /// While checking a part VoIPBIN only looks at when it runs (inline `call.actions`):
    /// errors there are warnings that the action fails, with this note appended.
    demote: Option<&'static str>,
}

/// Where the targets of one list of actions may point.
struct Scope<'a> {
    own: HashMap<Uuid, usize>,
    outer: &'a HashSet<Uuid>,
}

impl Scope<'_> {
    fn contains(&self, id: Uuid) -> bool {
        self.own.contains_key(&id) || self.outer.contains(&id)
    }
}

/// One action being checked: where it is and the scope of its jump targets.
struct At<'a> {
    list: &'a str,
    index: usize,
    scope: &'a Scope<'a>,
}

impl At<'_> {
    /// The whole option.
    fn whole(&self) -> P<'_> {
        P {
            at: self,
            field: "",
            index: None,
            key: None,
        }
    }

    /// `option.field`
    fn f<'s>(&'s self, field: &'s str) -> P<'s> {
        P {
            at: self,
            field,
            index: None,
            key: None,
        }
    }

    /// `option.field[i]`
    fn fi<'s>(&'s self, field: &'s str, i: usize) -> P<'s> {
        P {
            at: self,
            field,
            index: Some(i),
            key: None,
        }
    }

    /// `option.field.key`
    fn fk<'s>(&'s self, field: &'s str, key: &'s str) -> P<'s> {
        P {
            at: self,
            field,
            index: None,
            key: Some(key),
        }
    }

    /// `option.field[i].key`
    fn fik<'s>(&'s self, field: &'s str, i: usize, key: &'s str) -> P<'s> {
        P {
            at: self,
            field,
            index: Some(i),
            key: Some(key),
        }
    }
}

/// A JSON path inside an action's option, turned into text only when a problem is reported
/// (validating a large valid flow allocates no paths).
#[derive(Clone, Copy)]
struct P<'a> {
    at: &'a At<'a>,
    field: &'a str,
    index: Option<usize>,
    key: Option<&'a str>,
}

/// Something that becomes a JSON path.
trait IntoPath {
    fn into_path(self) -> String;
}

impl IntoPath for String {
    fn into_path(self) -> String {
        self
    }
}

impl IntoPath for &str {
    fn into_path(self) -> String {
        self.to_owned()
    }
}

impl IntoPath for P<'_> {
    fn into_path(self) -> String {
        let mut s = format!("{}[{}].option", self.at.list, self.at.index);
        if !self.field.is_empty() {
            s.push('.');
            s.push_str(self.field);
        }
        if let Some(i) = self.index {
            s.push_str(&format!("[{i}]"));
        }
        if let Some(k) = self.key {
            s.push('.');
            s.push_str(k);
        }
        s
    }
}

/// The sentence ending of a command check: what happens when the action runs with it.
const FAILS: &str = "the action fails when it runs";

impl Validator<'_> {
    /// Something that cannot run at all (see the module docs).
    fn err(&mut self, path: impl IntoPath, msg: impl Into<String>) {
        let path = path.into_path();
        match self.demote {
            None => self.report.errors.push(Problem::error(path, msg)),
            Some(note) => self
                .report
                .warnings
                .push(Problem::warning(path, format!("{}; {note}", msg.into()))),
        }
    }

    /// Legal (VoIPBIN runs it); the sentence says what happens.
    fn warn(&mut self, path: impl IntoPath, msg: impl Into<String>) {
        self.report
            .warnings
            .push(Problem::warning(path.into_path(), msg));
    }

    fn check_actions(&mut self, actions: &[Action], path: &str, outer: &HashSet<Uuid>) {
        let mut own: HashMap<Uuid, usize> = HashMap::with_capacity(actions.len());
        for (i, a) in actions.iter().enumerate() {
            if a.id.is_nil() {
                // Built in code without an id: the engine assigns one (the parser already does).
                continue;
            }
            if let Some(first) = own.get(&a.id) {
                self.warn(
                    format!("{path}[{i}].id"),
                    format!(
                        "duplicate id {}: jumps to it go to {path}[{first}] (as in VoIPBIN); this action gets a fresh id when the flow runs",
                        a.id
                    ),
                );
            } else {
                own.insert(a.id, i);
            }
        }
        let scope = Scope { own, outer };
        let mut dynamic_targets = false;
        for (i, a) in actions.iter().enumerate() {
            let apath = |field: &str| format!("{path}[{i}].{field}");
            if is_reserved_action_id(a.id) {
                self.err(apath("id"), format!("{} is a reserved id", a.id));
            }
            if let Some(n) = a.next() {
                if is_reserved_action_id(n) {
                    self.err(
                        apath("next_id"),
                        format!("{n} is a reserved id and cannot be a jump target"),
                    );
                } else if !scope.contains(n) {
                    self.warn(apath("next_id"), outside(n));
                }
            }
            self.check_unknown_fields(a, &format!("{path}[{i}]"));
            if let Some(rt) = self.opts.reference_type
                && !rt.runs(a.kind())
            {
                self.warn(
                    apath("type"),
                    format!(
                        "`{}` never runs in a flow started by `{}`: media gating skips it",
                        a.kind(),
                        display_rt(rt)
                    ),
                );
            }
            let at = At {
                list: path,
                index: i,
                scope: &scope,
            };
            dynamic_targets |= self.check_option(a.option(), &at);
        }
        if !dynamic_targets {
            self.check_reachability(actions, path, &scope);
        }
    }

    fn check_unknown_fields(&mut self, a: &Action, apath: &str) {
        let Some(serde_json::Value::Object(raw)) = a.raw_option() else {
            return;
        };
        let known = a.kind().option_fields();
        if raw.keys().all(|k| known.contains(&k.as_str())) {
            return;
        }
        for k in raw.keys() {
            if !known.contains(&k.as_str()) {
                self.warn(
                    join_path(&join_path(apath, "option"), k),
                    format!(
                        "unknown option field `{k}` for `{}`; it is ignored",
                        a.kind()
                    ),
                );
            }
        }
    }

    /// Checks one jump target. `missing` says what happens at run time when it is not set
    /// (`None`: not setting it is fine). Returns true when the target is a template.
    fn target(&mut self, t: &IdRef, path: P<'_>, missing: Option<&str>) -> bool {
        match t {
            IdRef::Template(_) => {
                self.warn(
                    path,
                    "the target is a ${…} template: it cannot be checked before the flow runs",
                );
                true
            }
            IdRef::Id(u) if u.is_nil() => {
                if let Some(what) = missing {
                    self.warn(path, format!("no target action id: {what}"));
                }
                false
            }
            IdRef::Id(u) if is_reserved_action_id(*u) => {
                self.err(
                    path,
                    format!("{u} is a reserved id and cannot be a jump target"),
                );
                false
            }
            IdRef::Id(u) => {
                if !path.at.scope.contains(*u) {
                    self.warn(path, outside(*u));
                }
                false
            }
        }
    }

    fn required_id(&mut self, id: &IdRef, path: P<'_>, what: &str) {
        if id.is_nil() {
            self.warn(path, format!("{what} is required: {FAILS}"));
        }
    }

    fn one_of(&mut self, value: &str, allowed: &[&str], path: P<'_>, what: &str) {
        if let Some(list) = not_one_of(value, allowed) {
            self.warn(
                path,
                format!("`{value}` is not a valid {what} (use one of {list}): {FAILS}"),
            );
        }
    }

    fn range(&mut self, v: i64, lo: i64, hi: i64, path: P<'_>, what: &str, effect: &str) {
        if v < lo || v > hi {
            self.warn(
                path,
                format!("{what} should be between {lo} and {hi}, not {v}: {effect}"),
            );
        }
    }

    fn non_negative(&mut self, v: i64, path: P<'_>, what: &str, effect: &str) {
        if v < 0 {
            self.warn(path, format!("{what} cannot be negative ({v}): {effect}"));
        }
    }

    fn required_text(&mut self, s: &str, path: P<'_>, what: &str, effect: &str) {
        if s.trim().is_empty() {
            self.warn(path, format!("{what} is required: {effect}"));
        }
    }

    fn http_url(&mut self, s: &str, path: P<'_>, what: &str, effect: &str) {
        if s.trim().is_empty() {
            self.warn(path, format!("{what} is required: {effect}"));
        } else if !(has_placeholder(s) || s.starts_with("http://") || s.starts_with("https://")) {
            self.warn(
                path,
                format!("{what} must be an http:// or https:// URL, not `{s}`: {effect}"),
            );
        }
    }

    fn dtmf_chars(&mut self, s: &str, path: P<'_>, what: &str, effect: &str) {
        if has_placeholder(s) {
            return;
        }
        if let Some(c) = s.chars().find(|c| !is_dtmf(*c)) {
            self.warn(
                path,
                format!("{what} should only contain 0-9, A-D, # and *; `{c}` is not a DTMF digit: {effect}"),
            );
        }
    }

    /// The options every dialling action shares (`call`, `connect`): destinations, the
    /// caller id's address type and the anonymity setting.
    fn dial(&mut self, destinations: &[Address], source: &Address, anonymous: &str, at: &At<'_>) {
        self.addresses(destinations, at, "destinations", true);
        self.one_of(
            &source.kind,
            ADDRESS_TYPES,
            at.fk("source", "type"),
            "address type",
        );
        // VoIPBIN refuses a flow with a bad `anonymous` when it is created.
        if let Some(list) = not_one_of(anonymous, ANONYMOUS) {
            self.err(
                at.f("anonymous"),
                format!("`{anonymous}` is not a valid anonymous value; use one of {list}"),
            );
        }
    }

    fn addresses(&mut self, list: &[Address], at: &At<'_>, field: &str, required: bool) {
        if list.is_empty() && required {
            self.warn(
                at.f(field),
                format!("at least one destination is required: {FAILS}"),
            );
        }
        for (i, a) in list.iter().enumerate() {
            self.one_of(
                &a.kind,
                ADDRESS_TYPES,
                at.fik(field, i, "type"),
                "address type",
            );
            if a.target.trim().is_empty() {
                self.warn(
                    at.fik(field, i, "target"),
                    format!("the destination has no target: {FAILS}"),
                );
            }
        }
    }

    /// Checks an option. Returns true if a jump target is a template (reachability unknown).
    fn check_option(&mut self, o: &ActionOption, at: &At<'_>) -> bool {
        const STOPS: &str = "the flow stops with an error when it jumps";
        const FALSE_STOPS: &str = "a false condition stops the flow with an error";
        const ALWAYS_FALSE: &str = "the condition is always false";
        let mut dynamic = false;
        match o {
            ActionOption::Goto(g) => {
                let missing = (g.loop_count > 0).then_some(STOPS);
                dynamic |= self.target(&g.target_id, at.f("target_id"), missing);
                if g.loop_count <= 0 {
                    self.warn(
                        at.f("loop_count"),
                        "goto without a positive loop_count never jumps (VoIPBIN behaviour); set loop_count to the number of jumps",
                    );
                }
            }
            ActionOption::Branch(b) => {
                for (k, t) in &b.target_ids {
                    let what = format!("the value `{k}` stops the flow with an error");
                    dynamic |= self.target(t, at.fk("target_ids", k), Some(&what));
                }
                dynamic |= self.target(&b.default_target_id, at.f("default_target_id"), None);
                if b.default_target_id.is_nil() {
                    if b.target_ids.is_empty() {
                        self.warn(
                            at.whole(),
                            "branch has neither target_ids nor a default_target_id: every value stops the flow with an error",
                        );
                    } else {
                        self.warn(
                            at.f("default_target_id"),
                            "branch has no default_target_id: a value that matches no key stops the flow",
                        );
                    }
                }
            }
            ActionOption::ConditionVariable(c) => {
                self.condition(&c.condition, at, ALWAYS_FALSE);
                if let Some(list) = not_one_of(&c.value_type, &["string", "number", "length"]) {
                    self.warn(
                        at.f("value_type"),
                        format!(
                            "`{}` is not a valid value_type (use one of {list}): {ALWAYS_FALSE}",
                            c.value_type
                        ),
                    );
                }
                self.required_text(
                    &c.variable,
                    at.f("variable"),
                    "variable",
                    "the empty text is compared",
                );
                self.non_negative(
                    c.value_length,
                    at.f("value_length"),
                    "value_length",
                    "no length compares so",
                );
                dynamic |= self.target(
                    &c.false_target_id,
                    at.f("false_target_id"),
                    Some(FALSE_STOPS),
                );
            }
            ActionOption::ConditionDatetime(c) => self.condition_datetime(c, at, &mut dynamic),
            ActionOption::ConditionCallDigits(c) => {
                self.non_negative(c.length, at.f("length"), "length", "it is not checked");
                self.dtmf_chars(&c.key, at.f("key"), "key", "such characters never match");
                if c.length <= 0 && c.key.is_empty() {
                    self.warn(
                        at.whole(),
                        "condition_call_digits without length or key is never true",
                    );
                }
                dynamic |= self.target(
                    &c.false_target_id,
                    at.f("false_target_id"),
                    Some(FALSE_STOPS),
                );
            }
            ActionOption::ConditionCallStatus(c) => {
                if let Some(list) = not_one_of(&c.status, CALL_STATUSES) {
                    self.warn(
                        at.f("status"),
                        format!(
                            "`{}` is not a call status (use one of {list}): {ALWAYS_FALSE}",
                            c.status
                        ),
                    );
                }
                dynamic |= self.target(
                    &c.false_target_id,
                    at.f("false_target_id"),
                    Some(FALSE_STOPS),
                );
            }
            ActionOption::VariableSet(v) => {
                self.required_text(
                    &v.key,
                    at.f("key"),
                    "key",
                    "an empty name is refused when it runs (the flow goes on)",
                );
                if vars::is_reserved(&v.key) {
                    self.warn(at.f("key"), "voipbin.activeflow.* variables are set by the engine: the change is refused when it runs (the flow goes on)");
                }
            }
            ActionOption::Block(_) | ActionOption::Stop(_) | ActionOption::Empty(_) => {}
            ActionOption::Fetch(x) => {
                self.http_url(
                    &x.event_url,
                    at.f("event_url"),
                    "event_url",
                    "the fetch fails when it runs, which stops the flow",
                );
                self.one_of(
                    &x.event_method,
                    HTTP_METHODS,
                    at.f("event_method"),
                    "HTTP method",
                );
            }
            ActionOption::FetchFlow(x) => self.required_id(&x.flow_id, at.f("flow_id"), "flow_id"),
            ActionOption::Call(c) => {
                self.dial(&c.destinations, &c.source, &c.anonymous, at);
                if c.flow_id.is_nil() && c.actions.is_empty() {
                    self.warn(
                        at.whole(),
                        format!(
                            "call needs a flow_id or inline actions for the new calls: {FAILS}"
                        ),
                    );
                }
                if !c.actions.is_empty() {
                    // The inline actions form the new calls' own flow (their own id space).
                    // VoIPBIN creates that flow only when the action runs, so whatever is wrong
                    // with it makes the `call` fail then: warnings here.
                    let saved = self.demote.replace("the `call` fails when it runs");
                    let mut errs = Vec::new();
                    let p = at.f("actions").into_path();
                    let inline = actions_lenient(
                        serde_json::Value::Array(c.actions.clone()),
                        &p,
                        &self.opts.limits,
                        &mut Uuid::new_v4,
                        &mut errs,
                    );
                    for e in errs {
                        self.err(e.path, e.message);
                    }
                    self.check_actions(&inline, &p, &HashSet::new());
                    self.demote = saved;
                }
            }
            ActionOption::Connect(c) => {
                self.dial(&c.destinations, &c.source, &c.anonymous, at);
            }
            ActionOption::QueueJoin(q) => {
                self.required_id(&q.queue_id, at.f("queue_id"), "queue_id")
            }
            ActionOption::ConferenceJoin(c) => {
                self.required_id(&c.conference_id, at.f("conference_id"), "conference_id");
            }
            ActionOption::AiTalk(a) => {
                self.assistance(&a.assistance_type, &a.assistance_id, &a.ai_id, at);
                self.non_negative(a.duration, at.f("duration"), "duration", FAILS);
            }
            ActionOption::AiTask(a) => {
                self.assistance(&a.assistance_type, &a.assistance_id, &a.ai_id, at);
            }
            ActionOption::AiSummary(_) | ActionOption::CaseCreate(_) => {}
            ActionOption::MessageSend(m) => {
                self.addresses(&m.destinations, at, "destinations", true);
                self.one_of(
                    &m.source.kind,
                    ADDRESS_TYPES,
                    at.fk("source", "type"),
                    "address type",
                );
                if m.text.is_empty() {
                    self.warn(at.f("text"), "the message text is empty");
                }
            }
            ActionOption::EmailSend(e) => {
                self.addresses(&e.destinations, at, "destinations", true);
                for (i, d) in e.destinations.iter().enumerate() {
                    if !matches!(d.kind.as_str(), "" | "email") && !has_placeholder(&d.kind) {
                        self.warn(
                            at.fik("destinations", i, "type"),
                            format!("email destinations must have type `email`: {FAILS}"),
                        );
                    }
                }
                if e.subject.is_empty() && e.content.is_empty() {
                    self.warn(at.whole(), "the email has neither subject nor content");
                }
            }
            ActionOption::WebhookSend(w) => {
                self.http_url(&w.uri, at.f("uri"), "uri", FAILS);
                self.one_of(&w.method, HTTP_METHODS, at.f("method"), "HTTP method");
            }
            ActionOption::ConversationSend(c) => {
                self.required_id(
                    &c.conversation_id,
                    at.f("conversation_id"),
                    "conversation_id",
                );
                if c.text.is_empty() {
                    self.warn(at.f("text"), "the message text is empty");
                }
            }
            ActionOption::TranscribeStart(t) | ActionOption::TranscribeRecording(t) => {
                self.required_text(&t.language, at.f("language"), "language", FAILS);
                self.one_of(
                    &t.provider,
                    &["", "gcp", "aws"],
                    at.f("provider"),
                    "provider",
                );
                self.one_of(
                    &t.direction,
                    &["", "in", "out", "both"],
                    at.f("direction"),
                    "direction",
                );
            }
            ActionOption::Talk(t) => {
                self.required_text(&t.text, at.f("text"), "text", "there is nothing to say");
                if let Some(list) = not_one_of(&t.digits_handle, &["", "next"]) {
                    self.warn(
                        at.f("digits_handle"),
                        format!("`{}` is not a valid digits_handle (use one of {list}): a key press does not interrupt the prompt", t.digits_handle),
                    );
                }
                if let Some(list) = not_one_of(&t.provider, &["", "gcp", "aws"]) {
                    self.warn(
                        at.f("provider"),
                        format!("`{}` is not a valid provider (use one of {list}): the gateway's own TTS speaks anyway", t.provider),
                    );
                }
            }
            ActionOption::Play(p) => {
                if p.stream_urls.is_empty() {
                    self.warn(
                        at.f("stream_urls"),
                        "no stream URL: there is nothing to play",
                    );
                }
            }
            ActionOption::DigitsReceive(d) => {
                self.non_negative(d.duration, at.f("duration"), "duration", "it counts as 0");
                self.non_negative(
                    d.length,
                    at.f("length"),
                    "length",
                    "there is no length rule",
                );
                self.dtmf_chars(
                    &d.key,
                    at.f("key"),
                    "key",
                    "it is stored, but such characters never end the input",
                );
                if d.duration == 0 {
                    self.warn(at.f("duration"), "duration 0: digits_receive times out at once unless digits were pressed before");
                }
                if d.length <= 0 && d.key.is_empty() {
                    self.warn(
                        at.whole(),
                        "digits_receive without length or key ends only on its timeout",
                    );
                }
            }
            ActionOption::DigitsSend(d) => {
                if d.digits.is_empty() {
                    self.warn(
                        at.f("digits"),
                        "digits is required: there is nothing to send",
                    );
                } else if !has_placeholder(&d.digits) && d.digits.chars().count() > 100 {
                    self.warn(
                        at.f("digits"),
                        format!("at most 100 digits can be sent: {FAILS}"),
                    );
                }
                self.dtmf_chars(&d.digits, at.f("digits"), "digits", FAILS);
                self.range(
                    d.duration,
                    100,
                    1000,
                    at.f("duration"),
                    "duration (ms per tone)",
                    "tones that short or long may not be recognised",
                );
                self.range(
                    d.interval,
                    0,
                    5000,
                    at.f("interval"),
                    "interval (ms)",
                    "a negative gap counts as 0",
                );
            }
            ActionOption::Sleep(s) => {
                self.non_negative(s.duration, at.f("duration"), "duration", "it counts as 0");
            }
            ActionOption::Echo(e) | ActionOption::StreamEcho(e) => {
                self.non_negative(
                    e.duration,
                    at.f("duration"),
                    "duration",
                    "the default of 180 s applies",
                );
            }
            ActionOption::Hangup(h) => {
                if let Some(list) = not_one_of(&h.reason, HANGUP_REASONS) {
                    self.warn(
                        at.f("reason"),
                        format!("`{}` is not a hangup reason (use one of {list}): the call is hung up with normal clearing, as VoIPBIN does", h.reason),
                    );
                }
            }
            ActionOption::RecordingStart(r) => {
                self.one_of(&r.format, &["", "wav"], at.f("format"), "recording format");
                self.end_of_key(&r.end_of_key, at);
                self.non_negative(
                    r.end_of_silence,
                    at.f("end_of_silence"),
                    "end_of_silence",
                    FAILS,
                );
                self.non_negative(r.duration, at.f("duration"), "duration", FAILS);
            }
            ActionOption::ExternalMediaStart(e) => {
                self.required_text(
                    &e.external_host,
                    at.f("external_host"),
                    "external_host",
                    FAILS,
                );
            }
            ActionOption::Amd(a) => {
                self.one_of(
                    &a.machine_handle,
                    &["", "hangup", "continue"],
                    at.f("machine_handle"),
                    "machine_handle",
                );
            }
            ActionOption::ConfbridgeJoin(c) => {
                self.required_id(&c.confbridge_id, at.f("confbridge_id"), "confbridge_id");
            }
            // Portability warnings: the flow behaves differently on VoIPBIN than here.
            ActionOption::Mute(_) => {
                self.warn(
                    at.whole(),
                    "`mute` has no executor in VoIPBIN: it does nothing there (the gateway \
                     fails it with an explanation; mute a call with POST /v1.0/calls/{id}/mute)",
                );
            }
            ActionOption::TranscribeStop(_) => {
                self.warn(
                    at.whole(),
                    "`transcribe_stop` has no executor in VoIPBIN: it does nothing there (the \
                     gateway ends the transcription and waits for its text)",
                );
            }
            ActionOption::Answer(_)
            | ActionOption::Beep(_)
            | ActionOption::RecordingStop(_)
            | ActionOption::ExternalMediaStop(_) => {}
        }
        dynamic
    }

    fn condition(&mut self, condition: &str, at: &At<'_>, effect: &str) {
        if let Some(list) = not_one_of(condition, CONDITIONS) {
            self.warn(
                at.f("condition"),
                format!("`{condition}` is not a valid condition (use one of {list}): {effect}"),
            );
        }
    }

    fn end_of_key(&mut self, key: &str, at: &At<'_>) {
        if not_one_of(key, &["", "none", "any", "*", "#"]).is_none() {
            return;
        }
        let mut chars = key.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if is_dtmf(c.to_ascii_uppercase()) => self.warn(
                at.f("end_of_key"),
                format!("VoIPBIN documents `none`, `any`, `*` and `#`; the gateway also ends the recording on `{c}`"),
            ),
            _ => self.warn(
                at.f("end_of_key"),
                format!("`{key}` is not none, any or a DTMF key: {FAILS}"),
            ),
        }
    }

    fn assistance(&mut self, kind: &str, assistance_id: &IdRef, ai_id: &IdRef, at: &At<'_>) {
        self.one_of(
            kind,
            &["", "ai", "team"],
            at.f("assistance_type"),
            "assistance_type",
        );
        if assistance_id.is_nil() && ai_id.is_nil() {
            self.warn(
                at.f("assistance_id"),
                format!("assistance_id (or the deprecated ai_id) is required: {FAILS}"),
            );
        }
    }

    fn condition_datetime(
        &mut self,
        c: &crate::model::ConditionDatetimeOption,
        at: &At<'_>,
        dynamic: &mut bool,
    ) {
        const NEVER: &str = "such a value never compares as meant";
        self.condition(&c.condition, at, "the condition is always false");
        if let Some(h) = c.hour {
            self.range(h, -1, 23, at.f("hour"), "hour", NEVER);
        }
        if let Some(m) = c.minute {
            self.range(m, -1, 59, at.f("minute"), "minute", NEVER);
        }
        self.range(c.day, 0, 31, at.f("day"), "day", NEVER);
        self.range(c.month, 0, 12, at.f("month"), "month", NEVER);
        for (i, w) in c.weekdays.iter().enumerate() {
            self.range(
                *w,
                0,
                6,
                at.fi("weekdays", i),
                "a weekday (0 = Sunday)",
                "it never matches",
            );
        }
        // Flowgate's own options: no VoIPBIN behaviour to fall back on, so errors.
        if !c.timezone.is_empty()
            && !has_placeholder(&c.timezone)
            && let Err(e) = crate::tz::lookup(&c.timezone)
        {
            self.err(at.f("timezone"), e.to_string());
        }
        let any = c.omitted_fields == "any";
        if let Some(list) = not_one_of(&c.omitted_fields, OMITTED_FIELDS) {
            self.err(
                at.f("omitted_fields"),
                format!(
                    "`{}` is not a valid omitted_fields (use one of {list})",
                    c.omitted_fields
                ),
            );
        } else if !any {
            let omitted: Vec<&str> = [("hour", c.hour), ("minute", c.minute)]
                .iter()
                .filter(|(_, v)| v.is_none())
                .map(|(n, _)| *n)
                .collect();
            if !omitted.is_empty() {
                let (names, it) = match omitted.as_slice() {
                    [one] => (format!("`{one}` is"), "it"),
                    _ => ("`hour` and `minute` are".to_owned(), "them"),
                };
                self.warn(
                    at.whole(),
                    format!(
                        "{names} omitted: VoIPBIN compares {it} as 0 (with `==` only at {}), and so does Flowgate; write -1 to match any value, or set `omitted_fields: any`",
                        if omitted.len() == 2 { "00:00" } else if omitted[0] == "hour" { "hour 0" } else { "minute 0" }
                    ),
                );
            }
        }
        let tested = |v: Option<i64>| match v {
            Some(v) => v >= 0,
            None => !any,
        };
        let tests_nothing = c.weekdays.is_empty()
            && c.month <= 0
            && c.day <= 0
            && !tested(c.hour)
            && !tested(c.minute);
        if tests_nothing {
            self.warn(
                at.whole(),
                "condition_datetime tests nothing: it is always true",
            );
        }
        *dynamic |= self.target(
            &c.false_target_id,
            at.f("false_target_id"),
            Some("a false condition stops the flow with an error"),
        );
    }

    /// Warns about actions no path reaches from the first action. Targets outside the list
    /// (ancestor stacks) and external jumps (`forward`) are not known here, hence a warning.
    fn check_reachability(&mut self, actions: &[Action], path: &str, scope: &Scope<'_>) {
        if actions.is_empty() {
            return;
        }
        let mut seen = vec![false; actions.len()];
        let mut todo = vec![0usize];
        let idx = |t: &IdRef| t.non_nil().and_then(|u| scope.own.get(&u).copied());
        while let Some(i) = todo.pop() {
            let (Some(a), Some(visited)) = (actions.get(i), seen.get_mut(i)) else {
                continue;
            };
            if std::mem::replace(visited, true) {
                continue;
            }
            let fall = match a.next() {
                Some(n) => scope.own.get(&n).copied(),
                None => (i + 1 < actions.len()).then_some(i + 1),
            };
            let mut push = |j: Option<usize>| {
                if let Some(j) = j {
                    todo.push(j);
                }
            };
            match a.option() {
                ActionOption::Stop(_) => {}
                ActionOption::Branch(b) => {
                    b.target_ids.values().for_each(|t| push(idx(t)));
                    push(idx(&b.default_target_id));
                }
                ActionOption::Goto(g) => {
                    push(idx(&g.target_id));
                    push(fall);
                }
                ActionOption::ConditionVariable(c) => {
                    push(idx(&c.false_target_id));
                    push(fall);
                }
                ActionOption::ConditionDatetime(c) => {
                    push(idx(&c.false_target_id));
                    push(fall);
                }
                ActionOption::ConditionCallDigits(c) => {
                    push(idx(&c.false_target_id));
                    push(fall);
                }
                ActionOption::ConditionCallStatus(c) => {
                    push(idx(&c.false_target_id));
                    push(fall);
                }
                _ => push(fall),
            }
        }
        for (i, s) in seen.iter().enumerate() {
            if !s {
                self.warn(
                    format!("{path}[{i}]"),
                    "unreachable: no action jumps here and it does not follow a reachable action",
                );
            }
        }
    }
}

fn display_rt(rt: ReferenceType) -> &'static str {
    if rt == ReferenceType::None {
        "no reference"
    } else {
        rt.as_str()
    }
}

/// The warning for a jump target or `next_id` outside the list being checked.
fn outside(id: Uuid) -> String {
    format!(
        "{id} is not an action of this flow: at run time it is looked up in the flows below \
         (a sub-flow reached by fetch_flow may jump into the flow that fetched it); the flow \
         stops with an error when it is in none of them"
    )
}

/// `None` when `value` is allowed (or a `${…}` template, only known at run time); otherwise
/// the allowed values as a readable list.
fn not_one_of(value: &str, allowed: &[&str]) -> Option<String> {
    if has_placeholder(value) || allowed.contains(&value) {
        return None;
    }
    let list: Vec<String> = allowed
        .iter()
        .map(|a| {
            if a.is_empty() {
                "\"\"".to_owned()
            } else {
                format!("`{a}`")
            }
        })
        .collect();
    Some(list.join(", "))
}
#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: &str) -> Report {
        validate_json(json, &ValidateOptions::default()).1
    }

    fn paths(r: &[Problem]) -> Vec<&str> {
        r.iter().map(|e| e.path.as_str()).collect()
    }

    const A: &str = "00000000-0000-0000-0000-0000000000a1";
    const MISSING: &str = "00000000-0000-0000-0000-0000000000ff";

    #[test]
    fn duplicate_ids_and_outside_targets_are_warnings() {
        let r = check(&format!(
            r#"[{{"id":"{A}","type":"answer"}},{{"id":"{A}","type":"answer","next_id":"{MISSING}"}}]"#
        ));
        assert!(r.is_ok(), "{:?}", r.errors);
        assert_eq!(paths(&r.warnings), ["actions[1].id", "actions[1].next_id"]);
        assert!(r.warnings.iter().all(|w| w.severity == Severity::Warning));
        assert!(r.warnings[0].message.contains("fresh id"));
        assert!(
            r.warnings[1]
                .message
                .contains("looked up in the flows below")
        );
    }

    #[test]
    fn jump_targets_of_every_kind() {
        // Not in the flow: warnings (a sub-flow may jump into the flow that fetched it).
        let r = check(&format!(
            r#"[
            {{"type":"goto","option":{{"target_id":"{MISSING}","loop_count":1}}}},
            {{"type":"branch","option":{{"target_ids":{{"1":"{MISSING}"}},"default_target_id":"{MISSING}"}}}},
            {{"type":"condition_variable","option":{{"condition":"==","variable":"x","value_type":"string","false_target_id":"{MISSING}"}}}},
            {{"type":"condition_datetime","option":{{"condition":"==","hour":3,"minute":-1,"false_target_id":"{MISSING}"}}}},
            {{"type":"condition_call_digits","option":{{"length":1,"false_target_id":"{MISSING}"}}}},
            {{"type":"condition_call_status","option":{{"status":"ringing"}}}}
        ]"#
        ));
        assert!(r.is_ok(), "{:?}", r.errors);
        let targets: Vec<&str> = paths(&r.warnings)
            .into_iter()
            .filter(|p| p.contains("target"))
            .collect();
        assert_eq!(
            targets,
            [
                "actions[0].option.target_id",
                "actions[1].option.target_ids.1",
                "actions[1].option.default_target_id",
                "actions[2].option.false_target_id",
                "actions[3].option.false_target_id",
                "actions[4].option.false_target_id",
                "actions[5].option.false_target_id",
            ]
        );
        // Reserved ids are errors wherever a jump could go.
        let r = check(
            r#"[{"type":"goto","option":{"target_id":"00000000-0000-0000-0000-000000000002","loop_count":1}},
                {"type":"answer","next_id":"00000000-0000-0000-0000-000000000003"},
                {"type":"branch","option":{"target_ids":{"1":"00000000-0000-0000-0000-000000000001"}}}]"#,
        );
        assert_eq!(
            paths(&r.errors),
            [
                "actions[1].next_id",
                "actions[0].option.target_id",
                "actions[2].option.target_ids.1"
            ]
        );
    }

    #[test]
    fn targets_in_the_stacks_below_are_fine() {
        let outer: HashSet<Uuid> = [Uuid::parse_str(MISSING).expect("uuid")].into();
        let actions = crate::model::parse_actions(
            &format!(r#"[{{"type":"goto","option":{{"target_id":"{MISSING}","loop_count":1}}}}]"#),
            &Limits::default(),
        )
        .expect("parse");
        let r = validate_actions(&actions, &outer, &Limits::default());
        assert!(r.errors.is_empty() && r.warnings.is_empty(), "{r:?}");
        let r = validate_actions(&actions, &HashSet::new(), &Limits::default());
        assert!(r.is_ok());
        assert_eq!(paths(&r.warnings), ["actions[0].option.target_id"]);
    }

    #[test]
    fn what_voipbin_runs_imports_with_warnings() {
        let r = check(
            r##"[
            {"type":"digits_send","option":{"digits":"12x","duration":50,"interval":6000}},
            {"type":"digits_receive","option":{"duration":-1,"length":1,"key":"#e"}},
            {"type":"condition_datetime","option":{"condition":"=~","hour":24,"minute":60,"day":32,"month":13,"weekdays":[7],"false_target_id":"00000000-0000-0000-0000-0000000000a1"}},
            {"id":"00000000-0000-0000-0000-0000000000a1","type":"recording_start","option":{"format":"mp3","end_of_key":"x","duration":-2}},
            {"type":"hangup","option":{"reason":"angry"}},
            {"type":"condition_variable","option":{"condition":"==","variable":"x","value_type":"bool","false_target_id":"00000000-0000-0000-0000-0000000000a1"}},
            {"type":"call","option":{"destinations":[{"type":"pigeon","target":"x"}],"flow_id":"00000000-0000-0000-0000-0000000000a1"}},
            {"type":"webhook_send","option":{"uri":"ftp://x","method":"PATCH"}},
            {"type":"variable_set","option":{"key":"voipbin.activeflow.id","value":"x"}},
            {"type":"talk","option":{"digits_handle":"skip"}},
            {"type":"branch","option":{}},
            {"type":"fetch","option":{}},
            {"type":"message_send","option":{"text":"x"}}
        ]"##,
        );
        assert!(r.is_ok(), "{:?}", r.errors);
        let p = paths(&r.warnings);
        for expected in [
            "actions[0].option.digits",
            "actions[0].option.duration",
            "actions[0].option.interval",
            "actions[1].option.duration",
            "actions[1].option.key",
            "actions[2].option.condition",
            "actions[2].option.hour",
            "actions[2].option.minute",
            "actions[2].option.day",
            "actions[2].option.month",
            "actions[2].option.weekdays[0]",
            "actions[3].option.format",
            "actions[3].option.end_of_key",
            "actions[3].option.duration",
            "actions[4].option.reason",
            "actions[5].option.value_type",
            "actions[6].option.destinations[0].type",
            "actions[7].option.uri",
            "actions[7].option.method",
            "actions[8].option.key",
            "actions[9].option.text",
            "actions[9].option.digits_handle",
            "actions[10].option",
            "actions[11].option.event_url",
            "actions[12].option.destinations",
        ] {
            assert!(p.contains(&expected), "missing {expected} in {p:?}");
        }
        let reason = r
            .warnings
            .iter()
            .find(|w| w.path == "actions[4].option.reason")
            .expect("reason");
        assert!(reason.message.contains("normal clearing"), "{reason}");
    }

    #[test]
    fn what_cannot_run_is_still_an_error() {
        let r = check(
            r#"[
            {"type":"call","option":{"destinations":[{"type":"tel","target":"+1"}],"anonymous":"maybe","flow_id":"00000000-0000-0000-0000-0000000000a1"}},
            {"type":"connect","option":{"destinations":[{"type":"tel","target":"+1"}],"anonymous":"never"}},
            {"id":"00000000-0000-0000-0000-0000000000a1","type":"condition_datetime","option":{"condition":"==","hour":1,"minute":1,"timezone":"Mars/Base","false_target_id":"00000000-0000-0000-0000-0000000000a1"}},
            {"type":"condition_datetime","option":{"condition":"==","hour":1,"minute":1,"omitted_fields":"some","false_target_id":"00000000-0000-0000-0000-0000000000a1"}},
            {"type":"talk","option":{"text":5}},
            {"type":"tallk"},
            {"id":"00000000-0000-0000-0000-000000000003","type":"answer"}
        ]"#,
        );
        assert_eq!(
            paths(&r.errors),
            [
                "actions[4].option.text",
                "actions[5].type",
                "actions[6].id",
                "actions[0].option.anonymous",
                "actions[1].option.anonymous",
                "actions[2].option.timezone",
                "actions[3].option.omitted_fields",
            ]
        );
        assert!(r.errors.iter().all(Problem::is_error));
    }

    #[test]
    fn nil_ids_are_assigned_not_refused() {
        let (flow, r) = validate_json(
            r#"[{"id":"00000000-0000-0000-0000-000000000000","type":"answer"},
                {"id":"00000000-0000-0000-0000-000000000000","type":"hangup",
                 "next_id":"00000000-0000-0000-0000-000000000000"}]"#,
            &ValidateOptions::default(),
        );
        assert!(r.errors.is_empty() && r.warnings.is_empty(), "{r:?}");
        let flow = flow.expect("valid");
        assert!(flow.actions.iter().all(|a| !a.id.is_nil()));
        assert_ne!(flow.actions[0].id, flow.actions[1].id);
        assert_eq!(flow.actions[1].next(), None, "a nil next_id is no next_id");
    }

    #[test]
    fn omitted_datetime_fields_are_compared_as_zero_and_said_so() {
        let r = check(
            r#"[{"type":"condition_datetime","option":{"condition":">=","hour":9,"false_target_id":"00000000-0000-0000-0000-0000000000a1"}},
                {"type":"condition_datetime","option":{"condition":"==","weekdays":[1],"false_target_id":"00000000-0000-0000-0000-0000000000a1"}},
                {"type":"condition_datetime","option":{"condition":"==","weekdays":[1],"omitted_fields":"any","false_target_id":"00000000-0000-0000-0000-0000000000a1"}},
                {"type":"condition_datetime","option":{"condition":"==","omitted_fields":"any","false_target_id":"00000000-0000-0000-0000-0000000000a1"}},
                {"id":"00000000-0000-0000-0000-0000000000a1","type":"hangup"}]"#,
        );
        assert!(r.is_ok(), "{:?}", r.errors);
        let w: Vec<(&str, &str)> = r
            .warnings
            .iter()
            .map(|w| (w.path.as_str(), w.message.as_str()))
            .collect();
        assert!(
            w[0].0 == "actions[0].option" && w[0].1.contains("`minute` is omitted"),
            "{w:?}"
        );
        assert!(
            w[1].0 == "actions[1].option" && w[1].1.contains("00:00"),
            "{w:?}"
        );
        assert_eq!(w[2].0, "actions[3].option", "{w:?}");
        assert!(w[2].1.contains("tests nothing"), "{w:?}");
        assert_eq!(w.len(), 3, "{w:?}");
    }

    #[test]
    fn warnings_not_errors() {
        let r = check(&format!(
            r#"[
            {{"id":"{A}","type":"talk","option":{{"text":"hi","lenght":3}}}},
            {{"type":"goto","option":{{"target_id":"{A}"}}}},
            {{"type":"branch","option":{{"target_ids":{{"1":"{A}"}}}}}},
            {{"type":"stop"}},
            {{"type":"hangup"}}
        ]"#
        ));
        assert!(r.is_ok(), "{:?}", r.errors);
        let w: Vec<_> = r.warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(
            w,
            [
                "actions[0].option.lenght",
                "actions[1].option.loop_count",
                "actions[2].option.default_target_id",
                "actions[3]",
                "actions[4]"
            ]
        );
    }

    #[test]
    fn media_gating_warning_for_a_use() {
        let opts = ValidateOptions {
            reference_type: Some(ReferenceType::Api),
            ..ValidateOptions::default()
        };
        let r = validate_json(r#"[{"type":"talk","option":{"text":"x"}}]"#, &opts).1;
        assert_eq!(r.warnings[0].path, "actions[0].type");
    }

    #[test]
    fn templates_are_not_range_checked() {
        let r = check(
            r#"[{"type":"conversation_send","option":{"conversation_id":"${voipbin.conversation.id}","text":"x"}},
                {"type":"hangup","option":{"reason":"${why}"}}]"#,
        );
        assert!(r.is_ok(), "{:?}", r.errors);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }

    #[test]
    fn inline_call_actions_are_checked_as_warnings() {
        // VoIPBIN creates the new calls' flow only when `call` runs: what is wrong with it
        // makes that `call` fail then.
        let r = check(
            r#"[{"type":"call","option":{"destinations":[{"type":"tel","target":"+1"}],
                "actions":[{"type":"talk","option":{"text":"x"}},{"type":"bogus"}]}}]"#,
        );
        assert!(r.is_ok(), "{:?}", r.errors);
        let w = r
            .warnings
            .iter()
            .find(|w| w.path == "actions[0].option.actions[1].type")
            .expect("inline problem");
        assert!(w.message.contains("the `call` fails when it runs"), "{w}");
    }

    #[test]
    fn no_warnings_about_placeholders_of_broken_actions() {
        let r = check(r#"[{"type":"tallk","option":{"text":"x"}},{"type":"answer"}]"#);
        assert_eq!(paths(&r.errors), ["actions[0].type"]);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }

    #[test]
    fn parse_and_validation_errors_together() {
        let r = check(
            r#"[{"type":"talk","option":{"text":1}},{"type":"goto","option":{"target_id":"00000000-0000-0000-0000-000000000002","loop_count":1}}]"#,
        );
        assert_eq!(
            paths(&r.errors),
            ["actions[0].option.text", "actions[1].option.target_id"]
        );
    }

    #[test]
    fn report_files_problems_by_severity() {
        let mut r = Report::default();
        r.push(Problem::warning("a", "w"));
        r.push(Problem::error("b", "e"));
        assert!(!r.is_ok());
        let all: Vec<_> = r.problems().map(|p| p.path.as_str()).collect();
        assert_eq!(all, ["b", "a"]);
        assert_eq!(
            serde_json::to_value(&r).expect("ser"),
            serde_json::json!({"errors":[{"severity":"error","path":"b","message":"e"}],
                "warnings":[{"severity":"warning","path":"a","message":"w"}]})
        );
    }
}

#[cfg(test)]
mod every_rule {
    use super::*;

    const T: &str = r#""false_target_id":"00000000-0000-0000-0000-0000000000a1""#;

    /// One action per rule and the path and severity it must be reported at.
    fn cases() -> Vec<(String, &'static str, Severity)> {
        use Severity::{Error as E, Warning as W};
        let c = |a: &str, p: &'static str, s: Severity| (a.to_owned(), p, s);
        vec![
            c(r#"{"type":"branch","option":{}}"#, "option", W),
            c(
                &format!(
                    r#"{{"type":"condition_variable","option":{{"condition":"==","value_type":"string",{T}}}}}"#
                ),
                "option.variable",
                W,
            ),
            c(
                &format!(
                    r#"{{"type":"condition_variable","option":{{"condition":"==","variable":"x","value_type":"length","value_length":-1,{T}}}}}"#
                ),
                "option.value_length",
                W,
            ),
            c(
                &format!(r#"{{"type":"condition_call_digits","option":{{"length":-1,{T}}}}}"#),
                "option.length",
                W,
            ),
            c(
                &format!(r#"{{"type":"condition_call_digits","option":{{"key":"x",{T}}}}}"#),
                "option.key",
                W,
            ),
            c(
                &format!(
                    r#"{{"type":"condition_call_status","option":{{"status":"flying",{T}}}}}"#
                ),
                "option.status",
                W,
            ),
            c(
                r#"{"type":"variable_set","option":{"value":"x"}}"#,
                "option.key",
                W,
            ),
            c(r#"{"type":"fetch","option":{}}"#, "option.event_url", W),
            c(
                r#"{"type":"fetch","option":{"event_url":"http://x","event_method":"PATCH"}}"#,
                "option.event_method",
                W,
            ),
            c(r#"{"type":"fetch_flow","option":{}}"#, "option.flow_id", W),
            c(
                r#"{"type":"call","option":{"flow_id":"00000000-0000-0000-0000-0000000000a1"}}"#,
                "option.destinations",
                W,
            ),
            c(
                r#"{"type":"call","option":{"destinations":[{"type":"tel","target":"+1"}]}}"#,
                "option",
                W,
            ),
            c(
                r#"{"type":"call","option":{"destinations":[{"type":"tel"}],"flow_id":"00000000-0000-0000-0000-0000000000a1"}}"#,
                "option.destinations[0].target",
                W,
            ),
            c(
                r#"{"type":"call","option":{"destinations":[{"type":"tel","target":"+1"}],"anonymous":"x","flow_id":"00000000-0000-0000-0000-0000000000a1"}}"#,
                "option.anonymous",
                E,
            ),
            c(
                r#"{"type":"connect","option":{}}"#,
                "option.destinations",
                W,
            ),
            c(
                r#"{"type":"connect","option":{"destinations":[{"type":"tel","target":"+1"}],"source":{"type":"fax"}}}"#,
                "option.source.type",
                W,
            ),
            c(r#"{"type":"queue_join","option":{}}"#, "option.queue_id", W),
            c(
                r#"{"type":"conference_join","option":{}}"#,
                "option.conference_id",
                W,
            ),
            c(
                r#"{"type":"confbridge_join","option":{}}"#,
                "option.confbridge_id",
                W,
            ),
            c(
                r#"{"type":"ai_talk","option":{}}"#,
                "option.assistance_id",
                W,
            ),
            c(
                r#"{"type":"ai_talk","option":{"ai_id":"00000000-0000-0000-0000-0000000000a1","assistance_type":"bot"}}"#,
                "option.assistance_type",
                W,
            ),
            c(
                r#"{"type":"ai_talk","option":{"ai_id":"00000000-0000-0000-0000-0000000000a1","duration":-5}}"#,
                "option.duration",
                W,
            ),
            c(
                r#"{"type":"ai_task","option":{}}"#,
                "option.assistance_id",
                W,
            ),
            c(
                r#"{"type":"message_send","option":{"text":"x"}}"#,
                "option.destinations",
                W,
            ),
            c(
                r#"{"type":"email_send","option":{"destinations":[{"type":"tel","target":"+1"}],"subject":"s"}}"#,
                "option.destinations[0].type",
                W,
            ),
            c(r#"{"type":"webhook_send","option":{}}"#, "option.uri", W),
            c(
                r#"{"type":"conversation_send","option":{"text":"x"}}"#,
                "option.conversation_id",
                W,
            ),
            c(
                r#"{"type":"transcribe_start","option":{}}"#,
                "option.language",
                W,
            ),
            c(
                r#"{"type":"transcribe_recording","option":{"language":"en-US","provider":"ibm"}}"#,
                "option.provider",
                W,
            ),
            c(
                r#"{"type":"transcribe_start","option":{"language":"en-US","direction":"up"}}"#,
                "option.direction",
                W,
            ),
            c(
                r#"{"type":"talk","option":{"text":"x","provider":"ibm"}}"#,
                "option.provider",
                W,
            ),
            c(r#"{"type":"play","option":{}}"#, "option.stream_urls", W),
            c(
                r#"{"type":"digits_receive","option":{"duration":100,"length":-1}}"#,
                "option.length",
                W,
            ),
            c(
                r#"{"type":"digits_send","option":{"duration":100}}"#,
                "option.digits",
                W,
            ),
            c(
                r#"{"type":"sleep","option":{"duration":-1}}"#,
                "option.duration",
                W,
            ),
            c(
                r#"{"type":"echo","option":{"duration":-1}}"#,
                "option.duration",
                W,
            ),
            c(
                r#"{"type":"stream_echo","option":{"duration":-1}}"#,
                "option.duration",
                W,
            ),
            c(
                r#"{"type":"recording_start","option":{"end_of_silence":-1}}"#,
                "option.end_of_silence",
                W,
            ),
            c(
                r#"{"type":"external_media_start","option":{}}"#,
                "option.external_host",
                W,
            ),
            c(
                r#"{"type":"amd","option":{"machine_handle":"ignore"}}"#,
                "option.machine_handle",
                W,
            ),
            c(
                r#"{"type":"hangup","option":{"reason":"angry"}}"#,
                "option.reason",
                W,
            ),
            c(
                r#"{"type":"goto","option":{"loop_count":1}}"#,
                "option.target_id",
                W,
            ),
            c(
                r#"{"type":"goto","option":{"target_id":"00000000-0000-0000-0000-000000000002","loop_count":1}}"#,
                "option.target_id",
                E,
            ),
            c(
                &format!(
                    r#"{{"type":"condition_datetime","option":{{"condition":"==","hour":1,"minute":1,"timezone":"Nowhere/Land",{T}}}}}"#
                ),
                "option.timezone",
                E,
            ),
        ]
    }

    #[test]
    fn each_rule_reports_its_path_and_severity() {
        for (action, path, severity) in cases() {
            let doc = format!(
                r#"[{action},{{"id":"00000000-0000-0000-0000-0000000000a1","type":"answer"}}]"#
            );
            let (_, r) = validate_json(&doc, &ValidateOptions::default());
            let expected = format!("actions[0].{path}");
            assert!(
                r.problems()
                    .any(|e| e.path == expected && e.severity == severity),
                "{action}: expected a {severity} at {expected}, got {:?}",
                r.problems().collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn too_many_digits() {
        let digits = "1".repeat(101);
        let doc = format!(
            r#"[{{"type":"digits_send","option":{{"digits":"{digits}","duration":100}}}}]"#
        );
        let (_, r) = validate_json(&doc, &ValidateOptions::default());
        assert!(r.is_ok());
        assert_eq!(r.warnings[0].path, "actions[0].option.digits");
    }
}
