//! The flow model: [`Flow`], [`Action`], typed options, reference types, reserved ids, and the
//! path-aware parser.
//!
//! A flow exported from VoIPBIN parses unchanged: unknown fields (`customer_id`, `type`,
//! `tm_create`, `direct_hash`, `tm_execute` on actions, …) are kept in `extra` and the raw
//! `option` object is kept next to its typed view, so re-serializing loses nothing. Parsing
//! never panics; every problem comes back as a [`FlowError`] with a JSON path such as
//! `actions[3].option.target_id`, and all of them are reported at once.
//!
//! ```
//! use flowgate_flows::{limits::Limits, model::{parse_flow, ActionType}};
//! let flow = parse_flow(r#"{"name":"hi","detail":"","actions":[{"type":"talk","option":{"text":"Hello"}}]}"#,
//!     &Limits::default()).unwrap();
//! assert_eq!(flow.actions[0].kind(), ActionType::Talk);
//! assert!(!flow.actions[0].id.is_nil()); // missing ids are assigned
//! ```

pub mod options;

use std::fmt;

use indexmap::IndexMap;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::limits::{LimitError, Limits, join_path};
pub use crate::problem::FlowError;
pub use options::*;

/// The nil UUID: "no action" (also what `block` returns in VoIPBIN). As an action's `id` it
/// means "no id yet" (VoIPBIN's Go clients send it for every action without one): the parser
/// and the engine assign a fresh id.
pub const ID_EMPTY: Uuid = Uuid::nil();
/// The cursor position before the first action; also the id of the main stack.
pub const ID_START: Uuid = Uuid::from_u128(1);
/// End of flow.
pub const ID_FINISH: Uuid = Uuid::from_u128(2);
/// Internal "continue the loop".
pub const ID_NEXT: Uuid = Uuid::from_u128(3);

/// Whether `id` is one of the four reserved ids (nil, START, FINISH, NEXT).
pub fn is_reserved_id(id: Uuid) -> bool {
    id.is_nil() || is_reserved_action_id(id)
}

/// Whether `id` is START, FINISH or NEXT: ids no action may have and no jump may target. (The
/// nil id is not among them: on an action it means "assign one", as a target "not set".)
pub fn is_reserved_action_id(id: Uuid) -> bool {
    id == ID_START || id == ID_FINISH || id == ID_NEXT
}

/// What started an activeflow; decides the media class (reference §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceType {
    /// A phone call: class rtc.
    #[default]
    Call,
    /// `POST /activeflows`: non_rtc.
    Api,
    /// An inbound message in a conversation (SMS, LINE, …): non_rtc.
    Conversation,
    /// Legacy SMS reference (before May 2025): non_rtc.
    Message,
    /// A recording's on-end flow in VoIPBIN docs: non_rtc.
    Recording,
    /// A transcription's on-end flow: non_rtc.
    Transcribe,
    /// An outbound campaign: non_rtc.
    Campaign,
    /// A webchat session (legacy): non_rtc.
    Webchat,
    /// An AI session: non_rtc.
    Ai,
    /// No reference (`""`, recording on-end flows): only `any` actions run.
    #[serde(rename = "")]
    None,
}

/// Media class of an activeflow (reference §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaClass {
    /// Calls.
    Rtc,
    /// Everything else with a reference.
    NonRtc,
    /// No reference.
    None,
}

impl ReferenceType {
    /// The JSON name (`""` for [`ReferenceType::None`]).
    pub fn as_str(self) -> &'static str {
        match self {
            ReferenceType::Call => "call",
            ReferenceType::Api => "api",
            ReferenceType::Conversation => "conversation",
            ReferenceType::Message => "message",
            ReferenceType::Recording => "recording",
            ReferenceType::Transcribe => "transcribe",
            ReferenceType::Campaign => "campaign",
            ReferenceType::Webchat => "webchat",
            ReferenceType::Ai => "ai",
            ReferenceType::None => "",
        }
    }

    /// Parses a JSON name.
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "call" => ReferenceType::Call,
            "api" => ReferenceType::Api,
            "conversation" => ReferenceType::Conversation,
            "message" => ReferenceType::Message,
            "recording" => ReferenceType::Recording,
            "transcribe" => ReferenceType::Transcribe,
            "campaign" => ReferenceType::Campaign,
            "webchat" => ReferenceType::Webchat,
            "ai" => ReferenceType::Ai,
            "" | "none" => ReferenceType::None,
            _ => return None,
        })
    }

    /// The media class.
    pub fn class(self) -> MediaClass {
        match self {
            ReferenceType::Call => MediaClass::Rtc,
            ReferenceType::None => MediaClass::None,
            _ => MediaClass::NonRtc,
        }
    }

    /// Whether activeflows of this reference have reference data
    /// (`${voipbin.flow.reference_data}`): the JSON of their call (`call`) or conversation
    /// (`conversation`, legacy `message`). VoIPBIN resolves it to `""` for the others.
    pub fn has_reference_data(self) -> bool {
        matches!(
            self,
            ReferenceType::Call | ReferenceType::Conversation | ReferenceType::Message
        )
    }

    /// Whether an action of `kind` runs on this reference (otherwise it is skipped).
    pub fn runs(self, kind: ActionType) -> bool {
        matches!(
            (kind.media(), self.class()),
            (Media::Any, _) | (Media::Rtc, MediaClass::Rtc) | (Media::NonRtc, MediaClass::NonRtc)
        )
    }
}

impl fmt::Display for ReferenceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One action: `{id, next_id, type, option}` plus any other fields, kept verbatim.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// The action id (assigned when missing; never a reserved id in user flows).
    pub id: Uuid,
    /// Explicit successor; `None` or nil means "the next element of the array".
    pub next_id: Option<Uuid>,
    option: ActionOption,
    /// The `option` object exactly as given (`None` if absent); serialized instead of the
    /// typed view so unknown option fields survive.
    raw_option: Option<Value>,
    /// Fields other than `id`, `next_id`, `type` and `option` (e.g. `tm_execute`).
    pub extra: IndexMap<String, Value>,
}

impl Action {
    /// A new action with a random id.
    pub fn new(option: ActionOption) -> Self {
        Self::with_id(Uuid::new_v4(), option)
    }

    /// A new action with the given id.
    pub fn with_id(id: Uuid, option: ActionOption) -> Self {
        Self {
            id,
            next_id: None,
            option,
            raw_option: None,
            extra: IndexMap::new(),
        }
    }

    /// Sets `next_id` (builder style).
    pub fn then(mut self, next: Uuid) -> Self {
        self.next_id = Some(next);
        self
    }

    /// The action type.
    pub fn kind(&self) -> ActionType {
        self.option.kind()
    }

    /// The typed option.
    pub fn option(&self) -> &ActionOption {
        &self.option
    }

    /// The option object as given in the source document, if any.
    pub fn raw_option(&self) -> Option<&Value> {
        self.raw_option.as_ref()
    }

    /// Replaces the option (the raw copy is dropped; serialization uses the typed view).
    pub fn set_option(&mut self, option: ActionOption) {
        self.option = option;
        self.raw_option = None;
    }

    /// The explicit successor, if set and not nil.
    pub fn next(&self) -> Option<Uuid> {
        self.next_id.filter(|u| !u.is_nil())
    }

    /// Parses one action object. `path` is its JSON path (`actions[3]`). Problems are
    /// appended to `errors`; on failure `None` is returned.
    pub fn from_value(
        value: Value,
        path: &str,
        new_id: &mut dyn FnMut() -> Uuid,
        errors: &mut Vec<FlowError>,
    ) -> Option<Action> {
        let (action, ok) = Self::from_value_lenient(value, path, new_id, errors)?;
        ok.then_some(action)
    }

    /// Like [`Action::from_value`], but an action whose type or option is wrong still comes
    /// back (as `empty`, flag `false`) so validation can go on and resolve jumps to its id.
    pub(crate) fn from_value_lenient(
        value: Value,
        path: &str,
        new_id: &mut dyn FnMut() -> Uuid,
        errors: &mut Vec<FlowError>,
    ) -> Option<(Action, bool)> {
        let Value::Object(mut obj) = value else {
            errors.push(FlowError::new(path, "an action must be a JSON object"));
            return None;
        };
        let before = errors.len();
        let id = match obj.shift_remove("id") {
            // Absent, null and "" all mean "no id yet".
            None | Some(Value::Null) => Some(new_id()),
            Some(Value::String(s)) if s.is_empty() => Some(new_id()),
            Some(v) => match parse_uuid_field(&v) {
                // The nil id too: VoIPBIN's clients send it for actions without an id, and
                // VoIPBIN assigns a fresh one (GenerateFlowActions).
                Ok(u) if u.is_nil() => Some(new_id()),
                Ok(u) if is_reserved_action_id(u) => {
                    errors.push(FlowError::new(
                        join_path(path, "id"),
                        format!("{u} is a reserved id (START, FINISH, NEXT) and cannot be used by an action"),
                    ));
                    None
                }
                Ok(u) => Some(u),
                Err(m) => {
                    errors.push(FlowError::new(join_path(path, "id"), m));
                    None
                }
            },
        };
        let next_id = match obj.shift_remove("next_id") {
            None => None,
            Some(v) => match parse_uuid_field(&v) {
                Ok(u) if is_reserved_action_id(u) => {
                    errors.push(FlowError::new(
                        join_path(path, "next_id"),
                        format!("{u} is a reserved id and cannot be a jump target"),
                    ));
                    None
                }
                Ok(u) => Some(u),
                Err(m) => {
                    errors.push(FlowError::new(join_path(path, "next_id"), m));
                    None
                }
            },
        };
        let kind = match obj.shift_remove("type") {
            None => {
                errors.push(FlowError::new(
                    join_path(path, "type"),
                    "the action type is missing",
                ));
                None
            }
            Some(Value::String(t)) => match ActionType::from_name(&t) {
                Some(k) if k.is_user_type() => Some(k),
                Some(_) => {
                    errors.push(FlowError::new(
                        join_path(path, "type"),
                        format!("`{t}` is internal to the engine and not allowed in flows"),
                    ));
                    None
                }
                None => {
                    errors.push(FlowError::new(
                        join_path(path, "type"),
                        format!("unknown action type `{t}`"),
                    ));
                    None
                }
            },
            Some(_) => {
                errors.push(FlowError::new(
                    join_path(path, "type"),
                    "the action type must be a string",
                ));
                None
            }
        };
        let raw_option = obj.shift_remove("option");
        let option = kind.and_then(|k| {
            let opath = || join_path(path, "option");
            match &raw_option {
                None | Some(Value::Null) => Some(ActionOption::default_for(k)),
                Some(v @ Value::Object(_)) => match ActionOption::from_value(k, v) {
                    Ok(o) => Some(o),
                    Err((p, m)) => {
                        let full = if p.is_empty() {
                            opath()
                        } else {
                            join_path(&opath(), &p)
                        };
                        errors.push(FlowError::new(full, format!("wrong option for `{k}`: {m}")));
                        None
                    }
                },
                Some(_) => {
                    errors.push(FlowError::new(opath(), "the option must be a JSON object"));
                    None
                }
            }
        });
        let ok = errors.len() == before;
        let action = Action {
            id: id.unwrap_or_else(&mut *new_id),
            next_id,
            option: option.unwrap_or_else(|| ActionOption::Empty(NoOption {})),
            raw_option,
            extra: obj.into_iter().collect(),
        };
        Some((action, ok))
    }
}

/// Reads a UUID field: a UUID string, `""` or `null` (nil).
fn parse_uuid_field(v: &Value) -> Result<Uuid, String> {
    match v {
        Value::Null => Ok(Uuid::nil()),
        Value::String(s) if s.is_empty() => Ok(Uuid::nil()),
        Value::String(s) => Uuid::parse_str(s).map_err(|e| format!("`{s}` is not a UUID ({e})")),
        _ => Err("must be a UUID string".to_owned()),
    }
}

/// Serializes the typed option without its type tag.
struct OptionContent<'a>(&'a ActionOption);

impl Serialize for OptionContent<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.to_value().serialize(s)
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &self.id)?;
        if let Some(n) = &self.next_id {
            m.serialize_entry("next_id", n)?;
        }
        m.serialize_entry("type", self.kind().as_str())?;
        match &self.raw_option {
            Some(raw) => m.serialize_entry("option", raw)?,
            None => {
                let v = self.option.to_value();
                if v.as_object().is_some_and(|o| !o.is_empty()) {
                    m.serialize_entry("option", &OptionContent(&self.option))?;
                }
            }
        }
        for (k, v) in &self.extra {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let mut errors = Vec::new();
        let limits = Limits::default();
        limits.check_value(&v, "", &mut errors);
        let action = if errors.is_empty() {
            Action::from_value(v, "", &mut Uuid::new_v4, &mut errors)
        } else {
            None
        };
        action.ok_or_else(|| serde::de::Error::custom(ParseError::Invalid(errors)))
    }
}

/// A flow: `{id, name, detail, actions, on_complete_flow_id}` plus any other fields.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Flow {
    /// The flow id (`None` when the document had none; the store assigns one).
    pub id: Option<Uuid>,
    /// Name.
    pub name: String,
    /// Description.
    pub detail: String,
    /// The actions, in array order.
    pub actions: Vec<Action>,
    /// Flow started when an activeflow of this flow ends (nil = none).
    pub on_complete_flow_id: Option<Uuid>,
    /// Other fields (`customer_id`, `type`, `tm_create`, …), kept verbatim.
    pub extra: IndexMap<String, Value>,
}

impl Flow {
    /// The on-complete flow, if set and not nil.
    pub fn on_complete(&self) -> Option<Uuid> {
        self.on_complete_flow_id.filter(|u| !u.is_nil())
    }

    /// Builds a flow from a parsed JSON value (object, or a bare array of actions).
    pub fn from_value(value: Value, limits: &Limits) -> Result<Flow, ParseError> {
        let (flow, errors) = Self::from_value_lenient(value, limits, &mut Uuid::new_v4);
        if errors.is_empty() {
            Ok(flow)
        } else {
            Err(ParseError::Invalid(errors))
        }
    }

    /// Parses what it can; actions whose type or option is wrong become `empty` placeholders
    /// (ids kept) so that validation can still check the rest of the flow.
    pub(crate) fn from_value_lenient(
        value: Value,
        limits: &Limits,
        new_id: &mut dyn FnMut() -> Uuid,
    ) -> (Flow, Vec<FlowError>) {
        let mut errors = Vec::new();
        limits.check_value(&value, "", &mut errors);
        if !errors.is_empty() {
            return (Flow::default(), errors);
        }
        let mut flow = Flow::default();
        let mut obj = match value {
            Value::Object(o) => o,
            Value::Array(a) => {
                let mut o = Map::new();
                o.insert("actions".into(), Value::Array(a));
                o
            }
            _ => {
                errors.push(FlowError::new(
                    "",
                    "a flow must be a JSON object (or an array of actions)",
                ));
                return (flow, errors);
            }
        };
        match obj.shift_remove("id") {
            None => {}
            Some(v) => match parse_uuid_field(&v) {
                Ok(u) => flow.id = Some(u),
                Err(m) => errors.push(FlowError::new("id", m)),
            },
        }
        for (field, slot) in [("name", &mut flow.name), ("detail", &mut flow.detail)] {
            match obj.shift_remove(field) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => *slot = s,
                Some(_) => {
                    errors.push(FlowError::new(field, format!("`{field}` must be a string")))
                }
            }
        }
        match obj.shift_remove("on_complete_flow_id") {
            None => {}
            Some(v) => match parse_uuid_field(&v) {
                Ok(u) => flow.on_complete_flow_id = Some(u),
                Err(m) => errors.push(FlowError::new("on_complete_flow_id", m)),
            },
        }
        match obj.shift_remove("actions") {
            None => errors.push(FlowError::new("actions", "the flow has no `actions` array")),
            Some(v) => flow.actions = actions_lenient(v, "actions", limits, new_id, &mut errors),
        }
        flow.extra = obj.into_iter().collect();
        (flow, errors)
    }
}

/// Parses an array of actions, keeping placeholders for broken ones.
pub(crate) fn actions_lenient(
    value: Value,
    path: &str,
    limits: &Limits,
    new_id: &mut dyn FnMut() -> Uuid,
    errors: &mut Vec<FlowError>,
) -> Vec<Action> {
    let Value::Array(items) = value else {
        errors.push(FlowError::new(path, "`actions` must be an array"));
        return Vec::new();
    };
    if items.len() > limits.max_actions {
        errors.push(FlowError::new(
            path,
            format!(
                "{} actions; at most {} are accepted",
                items.len(),
                limits.max_actions
            ),
        ));
        return Vec::new();
    }
    items
        .into_iter()
        .enumerate()
        .filter_map(|(i, v)| {
            Action::from_value_lenient(v, &format!("{path}[{i}]"), new_id, errors).map(|(a, _)| a)
        })
        .collect()
}

impl Serialize for Flow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if let Some(id) = &self.id {
            m.serialize_entry("id", id)?;
        }
        m.serialize_entry("name", &self.name)?;
        m.serialize_entry("detail", &self.detail)?;
        m.serialize_entry("actions", &self.actions)?;
        if let Some(oc) = &self.on_complete_flow_id {
            m.serialize_entry("on_complete_flow_id", oc)?;
        }
        for (k, v) in &self.extra {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Flow {
    /// Deserializes with the default [`Limits`] (ids assigned, everything checked).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Flow::from_value(v, &Limits::default()).map_err(serde::de::Error::custom)
    }
}

/// Why a flow (or a list of actions) could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Refused before parsing (size, nesting).
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// Not JSON.
    #[error("not valid JSON: {0}")]
    Json(String),
    /// JSON, but not a valid flow; every problem found.
    #[error("{}", ErrorList(.0))]
    Invalid(Vec<FlowError>),
}

struct ErrorList<'a>(&'a [FlowError]);

impl fmt::Display for ErrorList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ParseError {
    /// The problems as path + sentence (a single root-level problem for syntax and limits).
    pub fn problems(&self) -> Vec<FlowError> {
        match self {
            ParseError::Invalid(v) => v.clone(),
            other => vec![FlowError::new("", other.to_string())],
        }
    }
}

/// Checks the limits of a text and parses it into a JSON value.
pub fn parse_json(text: &str, limits: &Limits) -> Result<Value, ParseError> {
    limits.check_text(text)?;
    serde_json::from_str(text).map_err(|e| ParseError::Json(e.to_string()))
}

/// Parses a flow document (object, or a bare array of actions), with limits, assigning
/// random (v4) ids to actions that have none. Returns every problem at once.
pub fn parse_flow(text: &str, limits: &Limits) -> Result<Flow, ParseError> {
    Flow::from_value(parse_json(text, limits)?, limits)
}

/// Parses a JSON array of actions (a `fetch` reply, `push_actions`, inline `actions`).
pub fn parse_actions(text: &str, limits: &Limits) -> Result<Vec<Action>, ParseError> {
    actions_from_value(parse_json(text, limits)?, limits)
}

/// Builds actions from a parsed JSON array, with limits and id assignment.
pub fn actions_from_value(value: Value, limits: &Limits) -> Result<Vec<Action>, ParseError> {
    let mut errors = Vec::new();
    limits.check_value(&value, "", &mut errors);
    if !errors.is_empty() {
        return Err(ParseError::Invalid(errors));
    }
    let Value::Array(items) = value else {
        return Err(ParseError::Invalid(vec![FlowError::new(
            "",
            "expected a JSON array of actions",
        )]));
    };
    if items.len() > limits.max_actions {
        return Err(ParseError::Invalid(vec![FlowError::new(
            "",
            format!(
                "{} actions; at most {} are accepted",
                items.len(),
                limits.max_actions
            ),
        )]));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, v) in items.into_iter().enumerate() {
        if let Some(a) = Action::from_value(v, &format!("[{i}]"), &mut Uuid::new_v4, &mut errors) {
            out.push(a);
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ParseError::Invalid(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn voipbin_export_round_trips() {
        let doc = json!({
            "id": "9bc851be-f05e-11ef-a1e0-77ec628521e0",
            "customer_id": "5e4a0680-804e-11ec-8477-2fea5968d85b",
            "type": "flow",
            "name": "Sample",
            "detail": "",
            "actions": [
                {"id":"9c8ebac0-f05e-11ef-b9ae-4b8aecc935fe","next_id":"00000000-0000-0000-0000-000000000000",
                 "type":"answer","tm_execute":null},
                {"id":"9c659370-f05e-11ef-b141-63708262508b","type":"digits_receive",
                 "option":{"duration":5000,"length":1,"future_field":{"x":[1,2]}}}
            ],
            "direct_hash": "abc",
            "on_complete_flow_id": "00000000-0000-0000-0000-000000000000",
            "tm_create": "2024-01-01 00:00:00.000000"
        });
        let flow = Flow::from_value(doc.clone(), &Limits::default()).expect("parse");
        assert_eq!(flow.on_complete(), None);
        assert_eq!(flow.actions[0].next(), None);
        let back = serde_json::to_value(&flow).expect("ser");
        assert_eq!(back, doc);
    }

    #[test]
    fn all_errors_reported_with_paths() {
        let doc = json!({"actions":[
            {"type":"nope"},
            {"id":"00000000-0000-0000-0000-000000000002","type":"answer"},
            {"type":"talk","option":{"text":5}},
            {"type":"empty"},
            {"type":"goto","option":"x"},
            7
        ]});
        let Err(ParseError::Invalid(errs)) = Flow::from_value(doc, &Limits::default()) else {
            panic!("expected errors");
        };
        let paths: Vec<_> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "actions[0].type",
                "actions[1].id",
                "actions[2].option.text",
                "actions[3].type",
                "actions[4].option",
                "actions[5]"
            ]
        );
    }

    #[test]
    fn missing_ids_assigned_and_bare_array_accepted() {
        let flow = parse_flow(
            r#"[{"type":"answer"},{"type":"hangup"}]"#,
            &Limits::default(),
        )
        .expect("parse");
        assert_eq!(flow.actions.len(), 2);
        assert!(flow.actions.iter().all(|a| a.id.get_version_num() == 4));
    }

    #[test]
    fn hostile_input_is_refused_cleanly() {
        let deep = "[".repeat(100_000);
        assert!(matches!(
            parse_flow(&deep, &Limits::default()),
            Err(ParseError::Limit(LimitError::TooDeep { .. }))
        ));
        assert!(matches!(
            parse_flow("{", &Limits::default()),
            Err(ParseError::Json(_))
        ));
        let many = format!("[{}]", [r#"{"type":"answer"}"#; 11].join(","));
        let small = Limits {
            max_actions: 10,
            ..Limits::default()
        };
        assert!(matches!(
            parse_flow(&many, &small),
            Err(ParseError::Invalid(_))
        ));
    }

    #[test]
    fn media_gating_table() {
        assert!(ReferenceType::Call.runs(ActionType::Talk));
        assert!(!ReferenceType::Api.runs(ActionType::Talk));
        assert!(!ReferenceType::Call.runs(ActionType::Block));
        assert!(ReferenceType::Conversation.runs(ActionType::Block));
        assert!(!ReferenceType::None.runs(ActionType::Block));
        assert!(ReferenceType::None.runs(ActionType::MessageSend));
        assert!(!ReferenceType::Call.runs(ActionType::AiSummary));
    }
}
