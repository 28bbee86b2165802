//! Flow validation: every problem at once, each with a JSON path and a plain sentence.
//!
//! [`FlowError`]s make a flow unusable (the API refuses it, `flowgate flow validate` exits 1);
//! [`FlowWarning`]s are suspicious but legal (unreachable actions, a `goto` without
//! `loop_count`, a `branch` without default, media actions that can never run for the given
//! reference type, unknown option fields). Both serialize as `{"path": …, "message": …}`.
//!
//! Values that contain a `${…}` template are not range-checked: they are only known when the
//! action runs (the engine reports a failure then).
//!
//! ```
//! use flowgate_flows::validate::{validate_json, ValidateOptions};
//! let report = validate_json(r#"[{"type":"goto","option":{"target_id":"7c9e6679-7425-40de-944b-e07fc1f90ae7"}}]"#,
//!     &ValidateOptions::default()).1;
//! assert_eq!(report.errors[0].path, "actions[0].option.target_id");
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::limits::{Limits, join_path};
use crate::model::{
    ADDRESS_TYPES, Action, ActionOption, Address, Flow, HANGUP_REASONS, IdRef, ReferenceType,
    actions_lenient, is_reserved_id, parse_json,
};
use crate::vars::{self, has_placeholder};

/// A problem that makes the flow unusable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowError {
    /// JSON path (`actions[3].option.target_id`; `""` for the whole document).
    pub path: String,
    /// What is wrong, as a sentence.
    pub message: String,
}

/// Something legal but probably not what the author meant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowWarning {
    /// JSON path.
    pub path: String,
    /// What looks wrong, as a sentence.
    pub message: String,
}

impl FlowError {
    /// A new error.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl FlowWarning {
    /// A new warning.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

fn fmt_problem(f: &mut fmt::Formatter<'_>, path: &str, message: &str) -> fmt::Result {
    if path.is_empty() {
        f.write_str(message)
    } else {
        write!(f, "{path}: {message}")
    }
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_problem(f, &self.path, &self.message)
    }
}

impl fmt::Display for FlowWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_problem(f, &self.path, &self.message)
    }
}

impl std::error::Error for FlowError {}

/// Everything validation found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Problems that make the flow unusable.
    pub errors: Vec<FlowError>,
    /// Suspicious but legal things.
    pub warnings: Vec<FlowWarning>,
}

impl Report {
    /// No errors (warnings allowed).
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
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
/// jump targets may also be the ids in `outer` (the stacks below).
pub fn validate_actions(actions: &[Action], outer: &HashSet<Uuid>, limits: &Limits) -> Report {
    let opts = ValidateOptions {
        limits: limits.clone(),
        reference_type: None,
    };
    let mut v = Validator {
        report: Report::default(),
        opts: &opts,
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

/// Whether `c` is a DTMF character (`0-9 A-D # *`).
pub fn is_dtmf(c: char) -> bool {
    matches!(c, '0'..='9' | 'A'..='D' | '#' | '*')
}

struct Validator<'o> {
    report: Report,
    opts: &'o ValidateOptions,
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

impl Validator<'_> {
    fn err(&mut self, path: impl IntoPath, msg: impl Into<String>) {
        self.report
            .errors
            .push(FlowError::new(path.into_path(), msg));
    }

    fn warn(&mut self, path: impl IntoPath, msg: impl Into<String>) {
        self.report
            .warnings
            .push(FlowWarning::new(path.into_path(), msg));
    }

    fn check_actions(&mut self, actions: &[Action], path: &str, outer: &HashSet<Uuid>) {
        let mut own: HashMap<Uuid, usize> = HashMap::with_capacity(actions.len());
        for (i, a) in actions.iter().enumerate() {
            if let Some(first) = own.get(&a.id) {
                self.err(
                    format!("{path}[{i}].id"),
                    format!("duplicate id {}: {path}[{first}] already uses it", a.id),
                );
            } else {
                own.insert(a.id, i);
            }
        }
        let scope = Scope { own, outer };
        let mut dynamic_targets = false;
        for (i, a) in actions.iter().enumerate() {
            let apath = |field: &str| format!("{path}[{i}].{field}");
            if is_reserved_id(a.id) {
                self.err(apath("id"), format!("{} is a reserved id", a.id));
            }
            if let Some(n) = a.next()
                && !scope.contains(n)
            {
                self.err(
                    apath("next_id"),
                    format!("next_id {n} does not match any action id"),
                );
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
        let known = a.kind().option_fields();
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

    /// Checks one jump target. Returns true when the target is a template.
    fn target(&mut self, t: &IdRef, path: P<'_>, required: bool) -> bool {
        match t {
            IdRef::Template(_) => {
                self.warn(
                    path,
                    "the target is a ${…} template: it cannot be checked before the flow runs",
                );
                true
            }
            IdRef::Id(u) if u.is_nil() => {
                if required {
                    self.err(path, "a target action id is required");
                }
                false
            }
            IdRef::Id(u) => {
                if !path.at.scope.contains(*u) {
                    self.err(path, format!("{u} does not match any action id"));
                }
                false
            }
        }
    }

    fn required_id(&mut self, id: &IdRef, path: P<'_>, what: &str) {
        if id.is_nil() {
            self.err(path, format!("{what} is required"));
        }
    }

    fn one_of(&mut self, value: &str, allowed: &[&str], path: P<'_>, what: &str) {
        if !has_placeholder(value) && !allowed.contains(&value) {
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
            self.err(
                path,
                format!(
                    "`{value}` is not a valid {what}; use one of {}",
                    list.join(", ")
                ),
            );
        }
    }

    fn range(&mut self, v: i64, lo: i64, hi: i64, path: P<'_>, what: &str) {
        if v < lo || v > hi {
            self.err(
                path,
                format!("{what} must be between {lo} and {hi}, not {v}"),
            );
        }
    }

    fn non_negative(&mut self, v: i64, path: P<'_>, what: &str) {
        if v < 0 {
            self.err(path, format!("{what} cannot be negative ({v})"));
        }
    }

    fn required_text(&mut self, s: &str, path: P<'_>, what: &str) {
        if s.trim().is_empty() {
            self.err(path, format!("{what} is required"));
        }
    }

    fn http_url(&mut self, s: &str, path: P<'_>, what: &str) {
        if s.trim().is_empty() {
            self.err(path, format!("{what} is required"));
        } else if !(has_placeholder(s) || s.starts_with("http://") || s.starts_with("https://")) {
            self.err(
                path,
                format!("{what} must be an http:// or https:// URL, not `{s}`"),
            );
        }
    }

    fn dtmf_chars(&mut self, s: &str, path: P<'_>, what: &str) {
        if has_placeholder(s) {
            return;
        }
        if let Some(c) = s.chars().find(|c| !is_dtmf(*c)) {
            self.err(
                path,
                format!("{what} may only contain 0-9, A-D, # and *; `{c}` is not allowed"),
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
        self.one_of(anonymous, ANONYMOUS, at.f("anonymous"), "anonymous value");
    }

    fn addresses(&mut self, list: &[Address], at: &At<'_>, field: &str, required: bool) {
        if list.is_empty() && required {
            self.err(at.f(field), "at least one destination is required");
        }
        for (i, a) in list.iter().enumerate() {
            self.one_of(
                &a.kind,
                ADDRESS_TYPES,
                at.fik(field, i, "type"),
                "address type",
            );
            if a.target.trim().is_empty() {
                self.err(at.fik(field, i, "target"), "the destination has no target");
            }
        }
    }

    /// Checks an option. Returns true if a jump target is a template (reachability unknown).
    fn check_option(&mut self, o: &ActionOption, at: &At<'_>) -> bool {
        let mut dynamic = false;
        match o {
            ActionOption::Goto(g) => {
                dynamic |= self.target(&g.target_id, at.f("target_id"), true);
                if g.loop_count <= 0 {
                    self.warn(
                        at.f("loop_count"),
                        "goto without a positive loop_count never jumps (VoIPBIN behaviour); set loop_count to the number of jumps",
                    );
                }
            }
            ActionOption::Branch(b) => {
                for (k, t) in &b.target_ids {
                    dynamic |= self.target(t, at.fk("target_ids", k), true);
                }
                dynamic |= self.target(&b.default_target_id, at.f("default_target_id"), false);
                if b.default_target_id.is_nil() {
                    if b.target_ids.is_empty() {
                        self.err(at.whole(), "branch needs target_ids or a default_target_id");
                    } else {
                        self.warn(
                            at.f("default_target_id"),
                            "branch has no default_target_id: a value that matches no key stops the flow",
                        );
                    }
                }
            }
            ActionOption::ConditionVariable(c) => {
                self.one_of(&c.condition, CONDITIONS, at.f("condition"), "condition");
                self.one_of(
                    &c.value_type,
                    &["string", "number", "length"],
                    at.f("value_type"),
                    "value_type",
                );
                self.required_text(&c.variable, at.f("variable"), "variable");
                self.non_negative(c.value_length, at.f("value_length"), "value_length");
                dynamic |= self.target(&c.false_target_id, at.f("false_target_id"), true);
            }
            ActionOption::ConditionDatetime(c) => {
                self.one_of(&c.condition, CONDITIONS, at.f("condition"), "condition");
                if let Some(h) = c.hour {
                    self.range(h, -1, 23, at.f("hour"), "hour");
                }
                if let Some(m) = c.minute {
                    self.range(m, -1, 59, at.f("minute"), "minute");
                }
                self.range(c.day, 0, 31, at.f("day"), "day");
                self.range(c.month, 0, 12, at.f("month"), "month");
                for (i, w) in c.weekdays.iter().enumerate() {
                    self.range(*w, 0, 6, at.fi("weekdays", i), "a weekday (0 = Sunday)");
                }
                if !c.timezone.is_empty()
                    && !has_placeholder(&c.timezone)
                    && c.timezone.parse::<chrono_tz::Tz>().is_err()
                {
                    self.err(
                        at.f("timezone"),
                        format!("`{}` is not an IANA time zone name", c.timezone),
                    );
                }
                let tests_nothing = c.weekdays.is_empty()
                    && c.month <= 0
                    && c.day <= 0
                    && c.hour.is_none_or(|h| h < 0)
                    && c.minute.is_none_or(|m| m < 0);
                if tests_nothing {
                    self.warn(
                        at.whole(),
                        "condition_datetime tests nothing: it is always true",
                    );
                }
                dynamic |= self.target(&c.false_target_id, at.f("false_target_id"), true);
            }
            ActionOption::ConditionCallDigits(c) => {
                self.non_negative(c.length, at.f("length"), "length");
                self.dtmf_chars(&c.key, at.f("key"), "key");
                if c.length == 0 && c.key.is_empty() {
                    self.warn(
                        at.whole(),
                        "condition_call_digits without length or key is never true",
                    );
                }
                dynamic |= self.target(&c.false_target_id, at.f("false_target_id"), true);
            }
            ActionOption::ConditionCallStatus(c) => {
                self.one_of(&c.status, CALL_STATUSES, at.f("status"), "call status");
                dynamic |= self.target(&c.false_target_id, at.f("false_target_id"), true);
            }
            ActionOption::VariableSet(v) => {
                self.required_text(&v.key, at.f("key"), "key");
                if vars::is_reserved(&v.key) {
                    self.err(at.f("key"), "voipbin.activeflow.* variables are set by the engine and cannot be changed");
                }
            }
            ActionOption::Block(_) | ActionOption::Stop(_) | ActionOption::Empty(_) => {}
            ActionOption::Fetch(x) => {
                self.http_url(&x.event_url, at.f("event_url"), "event_url");
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
                    self.err(
                        at.whole(),
                        "call needs a flow_id or inline actions for the new calls",
                    );
                }
                if !c.actions.is_empty() {
                    // The inline actions form the new call's own flow: their own id space.
                    let mut errs = Vec::new();
                    let p = at.f("actions").into_path();
                    let inline = actions_lenient(
                        serde_json::Value::Array(c.actions.clone()),
                        &p,
                        &self.opts.limits,
                        &mut Uuid::new_v4,
                        &mut errs,
                    );
                    self.report.errors.append(&mut errs);
                    self.check_actions(&inline, &p, &HashSet::new());
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
                self.one_of(
                    &a.assistance_type,
                    &["", "ai", "team"],
                    at.f("assistance_type"),
                    "assistance_type",
                );
                if a.assistance_id.is_nil() && a.ai_id.is_nil() {
                    self.err(
                        at.f("assistance_id"),
                        "assistance_id (or the deprecated ai_id) is required",
                    );
                }
                self.non_negative(a.duration, at.f("duration"), "duration");
            }
            ActionOption::AiTask(a) => {
                self.one_of(
                    &a.assistance_type,
                    &["", "ai", "team"],
                    at.f("assistance_type"),
                    "assistance_type",
                );
                if a.assistance_id.is_nil() && a.ai_id.is_nil() {
                    self.err(
                        at.f("assistance_id"),
                        "assistance_id (or the deprecated ai_id) is required",
                    );
                }
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
                    if !matches!(d.kind.as_str(), "" | "email") {
                        self.err(
                            at.fik("destinations", i, "type"),
                            "email destinations must have type `email`",
                        );
                    }
                }
                if e.subject.is_empty() && e.content.is_empty() {
                    self.warn(at.whole(), "the email has neither subject nor content");
                }
            }
            ActionOption::WebhookSend(w) => {
                self.http_url(&w.uri, at.f("uri"), "uri");
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
                self.required_text(&t.language, at.f("language"), "language");
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
                self.required_text(&t.text, at.f("text"), "text");
                self.one_of(
                    &t.digits_handle,
                    &["", "next"],
                    at.f("digits_handle"),
                    "digits_handle",
                );
                self.one_of(
                    &t.provider,
                    &["", "gcp", "aws"],
                    at.f("provider"),
                    "provider",
                );
            }
            ActionOption::Play(p) => {
                if p.stream_urls.is_empty() {
                    self.err(at.f("stream_urls"), "at least one stream URL is required");
                }
            }
            ActionOption::DigitsReceive(d) => {
                self.non_negative(d.duration, at.f("duration"), "duration");
                self.non_negative(d.length, at.f("length"), "length");
                self.dtmf_chars(&d.key, at.f("key"), "key");
                if d.duration == 0 {
                    self.warn(at.f("duration"), "duration 0: digits_receive times out at once unless digits were pressed before");
                }
                if d.length == 0 && d.key.is_empty() {
                    self.warn(
                        at.whole(),
                        "digits_receive without length or key ends only on its timeout",
                    );
                }
            }
            ActionOption::DigitsSend(d) => {
                if d.digits.is_empty() {
                    self.err(at.f("digits"), "digits is required");
                } else if !has_placeholder(&d.digits) && d.digits.chars().count() > 100 {
                    self.err(at.f("digits"), "at most 100 digits can be sent");
                }
                self.dtmf_chars(&d.digits, at.f("digits"), "digits");
                self.range(
                    d.duration,
                    100,
                    1000,
                    at.f("duration"),
                    "duration (ms per tone)",
                );
                self.range(d.interval, 0, 5000, at.f("interval"), "interval (ms)");
            }
            ActionOption::Sleep(s) => self.non_negative(s.duration, at.f("duration"), "duration"),
            ActionOption::Echo(e) | ActionOption::StreamEcho(e) => {
                self.non_negative(e.duration, at.f("duration"), "duration");
            }
            ActionOption::Hangup(h) => {
                self.one_of(&h.reason, HANGUP_REASONS, at.f("reason"), "hangup reason")
            }
            ActionOption::RecordingStart(r) => {
                self.one_of(&r.format, &["", "wav"], at.f("format"), "recording format");
                self.one_of(
                    &r.end_of_key,
                    &["", "none", "any", "*", "#"],
                    at.f("end_of_key"),
                    "end_of_key",
                );
                self.non_negative(r.end_of_silence, at.f("end_of_silence"), "end_of_silence");
                self.non_negative(r.duration, at.f("duration"), "duration");
            }
            ActionOption::ExternalMediaStart(e) => {
                self.required_text(&e.external_host, at.f("external_host"), "external_host");
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
            ActionOption::Mute(_) | ActionOption::TranscribeStop(_) => {
                self.warn(
                    at.whole(),
                    format!(
                        "`{}` has no executor in VoIPBIN: it does nothing there",
                        o.kind()
                    ),
                );
            }
            ActionOption::Answer(_)
            | ActionOption::Beep(_)
            | ActionOption::RecordingStop(_)
            | ActionOption::ExternalMediaStop(_) => {}
        }
        dynamic
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

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: &str) -> Report {
        validate_json(json, &ValidateOptions::default()).1
    }

    fn paths(r: &[FlowError]) -> Vec<&str> {
        r.iter().map(|e| e.path.as_str()).collect()
    }

    const A: &str = "00000000-0000-0000-0000-0000000000a1";

    #[test]
    fn duplicate_ids_and_missing_targets() {
        let r = check(&format!(
            r#"[{{"id":"{A}","type":"answer"}},{{"id":"{A}","type":"answer","next_id":"00000000-0000-0000-0000-0000000000ff"}}]"#
        ));
        assert_eq!(paths(&r.errors), ["actions[1].id", "actions[1].next_id"]);
    }

    #[test]
    fn jump_targets_of_every_kind() {
        let missing = "00000000-0000-0000-0000-0000000000ff";
        let r = check(&format!(
            r#"[
            {{"type":"goto","option":{{"target_id":"{missing}","loop_count":1}}}},
            {{"type":"branch","option":{{"target_ids":{{"1":"{missing}"}},"default_target_id":"{missing}"}}}},
            {{"type":"condition_variable","option":{{"condition":"==","variable":"x","value_type":"string","false_target_id":"{missing}"}}}},
            {{"type":"condition_datetime","option":{{"condition":"==","hour":3,"false_target_id":"{missing}"}}}},
            {{"type":"condition_call_digits","option":{{"length":1,"false_target_id":"{missing}"}}}},
            {{"type":"condition_call_status","option":{{"status":"ringing"}}}}
        ]"#
        ));
        assert_eq!(
            paths(&r.errors),
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
    }

    #[test]
    fn out_of_range_values() {
        let r = check(
            r##"[
            {"type":"digits_send","option":{"digits":"12x","duration":50,"interval":6000}},
            {"type":"digits_receive","option":{"duration":-1,"length":1,"key":"#e"}},
            {"type":"condition_datetime","option":{"condition":"=~","hour":24,"minute":60,"day":32,"month":13,"weekdays":[7],"timezone":"Mars/Base","false_target_id":"00000000-0000-0000-0000-0000000000a1"}},
            {"id":"00000000-0000-0000-0000-0000000000a1","type":"recording_start","option":{"format":"mp3","end_of_key":"5","duration":-2}},
            {"type":"hangup","option":{"reason":"angry"}},
            {"type":"condition_variable","option":{"condition":"==","variable":"x","value_type":"bool","false_target_id":"00000000-0000-0000-0000-0000000000a1"}},
            {"type":"call","option":{"destinations":[{"type":"pigeon","target":"x"}],"anonymous":"maybe","flow_id":"00000000-0000-0000-0000-0000000000a1"}},
            {"type":"webhook_send","option":{"uri":"ftp://x","method":"PATCH"}},
            {"type":"variable_set","option":{"key":"voipbin.activeflow.id","value":"x"}},
            {"type":"talk","option":{"digits_handle":"skip"}}
        ]"##,
        );
        let p = paths(&r.errors);
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
            "actions[2].option.timezone",
            "actions[3].option.format",
            "actions[3].option.end_of_key",
            "actions[3].option.duration",
            "actions[4].option.reason",
            "actions[5].option.value_type",
            "actions[6].option.destinations[0].type",
            "actions[6].option.anonymous",
            "actions[7].option.uri",
            "actions[7].option.method",
            "actions[8].option.key",
            "actions[9].option.text",
            "actions[9].option.digits_handle",
        ] {
            assert!(p.contains(&expected), "missing {expected} in {p:?}");
        }
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
    }

    #[test]
    fn inline_call_actions_are_validated() {
        let r = check(
            r#"[{"type":"call","option":{"destinations":[{"type":"tel","target":"+1"}],
                "actions":[{"type":"talk","option":{"text":"x"}},{"type":"bogus"}]}}]"#,
        );
        assert_eq!(paths(&r.errors), ["actions[0].option.actions[1].type"]);
    }

    #[test]
    fn no_warnings_about_placeholders_of_broken_actions() {
        let r = check(r#"[{"type":"tallk","option":{"text":"x"}},{"type":"answer"}]"#);
        assert_eq!(paths(&r.errors), ["actions[0].type"]);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }

    #[test]
    fn parse_and_validation_errors_together() {
        let r = check(&format!(
            r#"[{{"type":"talk","option":{{"text":1}}}},{{"type":"goto","option":{{"target_id":"{A}","loop_count":1}}}}]"#
        ));
        assert_eq!(
            paths(&r.errors),
            ["actions[0].option.text", "actions[1].option.target_id"]
        );
    }

    #[test]
    fn problems_serialize_as_path_and_message() {
        let e = FlowError::new("actions[0]", "bad");
        assert_eq!(
            serde_json::to_string(&e).expect("ser"),
            r#"{"path":"actions[0]","message":"bad"}"#
        );
    }
}

#[cfg(test)]
mod every_error {
    use super::*;

    /// One action per rule; each must produce an error at exactly the expected path.
    const CASES: &[(&str, &str)] = &[
        (r#"{"type":"branch","option":{}}"#, "option"),
        (
            r#"{"type":"condition_variable","option":{"condition":"==","value_type":"string","false_target_id":"00000000-0000-0000-0000-0000000000a1"}}"#,
            "option.variable",
        ),
        (
            r#"{"type":"condition_variable","option":{"condition":"==","variable":"x","value_type":"length","value_length":-1,"false_target_id":"00000000-0000-0000-0000-0000000000a1"}}"#,
            "option.value_length",
        ),
        (
            r#"{"type":"condition_call_digits","option":{"length":-1,"false_target_id":"00000000-0000-0000-0000-0000000000a1"}}"#,
            "option.length",
        ),
        (
            r#"{"type":"condition_call_digits","option":{"key":"x","false_target_id":"00000000-0000-0000-0000-0000000000a1"}}"#,
            "option.key",
        ),
        (
            r#"{"type":"condition_call_status","option":{"status":"flying","false_target_id":"00000000-0000-0000-0000-0000000000a1"}}"#,
            "option.status",
        ),
        (
            r#"{"type":"variable_set","option":{"value":"x"}}"#,
            "option.key",
        ),
        (r#"{"type":"fetch","option":{}}"#, "option.event_url"),
        (
            r#"{"type":"fetch","option":{"event_url":"http://x","event_method":"PATCH"}}"#,
            "option.event_method",
        ),
        (r#"{"type":"fetch_flow","option":{}}"#, "option.flow_id"),
        (
            r#"{"type":"call","option":{"flow_id":"00000000-0000-0000-0000-0000000000a1"}}"#,
            "option.destinations",
        ),
        (
            r#"{"type":"call","option":{"destinations":[{"type":"tel","target":"+1"}]}}"#,
            "option",
        ),
        (
            r#"{"type":"call","option":{"destinations":[{"type":"tel"}],"flow_id":"00000000-0000-0000-0000-0000000000a1"}}"#,
            "option.destinations[0].target",
        ),
        (r#"{"type":"connect","option":{}}"#, "option.destinations"),
        (
            r#"{"type":"connect","option":{"destinations":[{"type":"tel","target":"+1"}],"source":{"type":"fax"}}}"#,
            "option.source.type",
        ),
        (r#"{"type":"queue_join","option":{}}"#, "option.queue_id"),
        (
            r#"{"type":"conference_join","option":{}}"#,
            "option.conference_id",
        ),
        (
            r#"{"type":"confbridge_join","option":{}}"#,
            "option.confbridge_id",
        ),
        (r#"{"type":"ai_talk","option":{}}"#, "option.assistance_id"),
        (
            r#"{"type":"ai_talk","option":{"ai_id":"00000000-0000-0000-0000-0000000000a1","assistance_type":"bot"}}"#,
            "option.assistance_type",
        ),
        (
            r#"{"type":"ai_talk","option":{"ai_id":"00000000-0000-0000-0000-0000000000a1","duration":-5}}"#,
            "option.duration",
        ),
        (r#"{"type":"ai_task","option":{}}"#, "option.assistance_id"),
        (
            r#"{"type":"message_send","option":{"text":"x"}}"#,
            "option.destinations",
        ),
        (
            r#"{"type":"email_send","option":{"destinations":[{"type":"tel","target":"+1"}],"subject":"s"}}"#,
            "option.destinations[0].type",
        ),
        (r#"{"type":"webhook_send","option":{}}"#, "option.uri"),
        (
            r#"{"type":"conversation_send","option":{"text":"x"}}"#,
            "option.conversation_id",
        ),
        (
            r#"{"type":"transcribe_start","option":{}}"#,
            "option.language",
        ),
        (
            r#"{"type":"transcribe_recording","option":{"language":"en-US","provider":"ibm"}}"#,
            "option.provider",
        ),
        (
            r#"{"type":"transcribe_start","option":{"language":"en-US","direction":"up"}}"#,
            "option.direction",
        ),
        (
            r#"{"type":"talk","option":{"text":"x","provider":"ibm"}}"#,
            "option.provider",
        ),
        (r#"{"type":"play","option":{}}"#, "option.stream_urls"),
        (
            r#"{"type":"digits_receive","option":{"duration":100,"length":-1}}"#,
            "option.length",
        ),
        (
            r#"{"type":"digits_send","option":{"duration":100}}"#,
            "option.digits",
        ),
        (
            r#"{"type":"sleep","option":{"duration":-1}}"#,
            "option.duration",
        ),
        (
            r#"{"type":"echo","option":{"duration":-1}}"#,
            "option.duration",
        ),
        (
            r#"{"type":"stream_echo","option":{"duration":-1}}"#,
            "option.duration",
        ),
        (
            r#"{"type":"recording_start","option":{"end_of_silence":-1}}"#,
            "option.end_of_silence",
        ),
        (
            r#"{"type":"external_media_start","option":{}}"#,
            "option.external_host",
        ),
        (
            r#"{"type":"amd","option":{"machine_handle":"ignore"}}"#,
            "option.machine_handle",
        ),
        (
            r#"{"type":"goto","option":{"target_id":"00000000-0000-0000-0000-000000000002","loop_count":1}}"#,
            "option.target_id",
        ),
    ];

    #[test]
    fn each_rule_reports_its_path() {
        for (action, path) in CASES {
            let doc = format!(
                r#"[{action},{{"id":"00000000-0000-0000-0000-0000000000a1","type":"answer"}}]"#
            );
            let (_, r) = validate_json(&doc, &ValidateOptions::default());
            let expected = format!("actions[0].{path}");
            assert!(
                r.errors.iter().any(|e| e.path == expected),
                "{action}: expected an error at {expected}, got {:?}",
                r.errors
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
        assert_eq!(r.errors[0].path, "actions[0].option.digits");
    }
}
