//! Activeflow variables and `${name}` substitution.
//!
//! * [`Variables`] is the string → string map of one activeflow. Names are stored under their
//!   canonical spelling: the legacy `voipbin.message.*` names are aliases of
//!   `voipbin.conversation_message.*` / `voipbin.conversation.*` ([`canonical_name`]), so reading
//!   or writing either spelling works.
//! * [`substitute`] replaces `${name}` placeholders (non-greedy, no nesting, no escaping;
//!   unknown names become `""`; a `${` whose closing `}` comes after a newline is left as text,
//!   like VoIPBIN's regex). It is **single-pass**: an inserted value is never scanned again, so
//!   a caller name or an SMS text containing `${…}` stays literal text. A string without `${`
//!   is returned borrowed: no allocation.
//! * [`Substitute`] applies substitution to typed option structs: strings only, recursively,
//!   keeping every other JSON type (VoIPBIN turns numbers inside arrays into strings; Flowgate
//!   does not).
//! * [`sanitize_external`] filters variables that come from outside (API): `voipbin.*` keys are
//!   dropped (case-insensitively, after trimming) and the VoIPBIN caps are enforced.

use std::borrow::Cow;

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::limits::Limits;

/// Prefix of the namespace reserved for the platform.
pub const VOIPBIN_PREFIX: &str = "voipbin.";
/// Prefix of the variables the engine sets at creation; nobody else may write them.
pub const ACTIVEFLOW_PREFIX: &str = "voipbin.activeflow.";
/// The DTMF digits variable (`digits_receive`, `branch` default, `condition_call_digits`).
pub const CALL_DIGITS: &str = "voipbin.call.digits";
/// The call status variable the runtime keeps current for `condition_call_status`.
pub const CALL_STATUS: &str = "voipbin.call.status";
/// The JSON of the call or conversation an activeflow runs for (a trusted variable the
/// runtime keeps current; see the engine docs). VoIPBIN computes it when a template reads it.
pub const REFERENCE_DATA: &str = "voipbin.flow.reference_data";

const LEGACY_MESSAGE_PREFIX: &str = "voipbin.message.";

/// Why a variable could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VarError {
    /// Empty variable name.
    #[error("the variable name is empty")]
    EmptyName,
    /// `voipbin.activeflow.*` is written only by the engine at creation.
    #[error("`{0}` is reserved: voipbin.activeflow.* variables are set by the engine only")]
    Reserved(String),
    /// The value is longer than the cap.
    #[error("the value of `{name}` is {size} bytes; at most {max} bytes are accepted")]
    ValueTooLarge {
        /// Variable name.
        name: String,
        /// Value size in bytes.
        size: usize,
        /// The cap.
        max: usize,
    },
    /// Too many variables.
    #[error("too many variables: at most {max} are accepted")]
    TooMany {
        /// The cap.
        max: usize,
    },
    /// All variables together are too large.
    #[error("variables would take {size} bytes; at most {max} bytes are accepted")]
    TooLarge {
        /// Total size in bytes.
        size: usize,
        /// The cap.
        max: usize,
    },
}

/// The variables of one activeflow (string → string, insertion ordered).
///
/// Serializes as a plain JSON object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Variables {
    map: IndexMap<String, String>,
    /// Sum of key and value lengths, kept for the total-size cap.
    bytes: usize,
}

impl Variables {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Value of `name` (either spelling of an aliased name).
    pub fn get(&self, name: &str) -> Option<&str> {
        match canonical_name(name) {
            Cow::Borrowed(n) => self.map.get(n),
            Cow::Owned(n) => self.map.get(n.as_str()),
        }
        .map(String::as_str)
    }

    /// Whether `name` is set.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Number of variables.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are no variables.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Total bytes of names and values.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Iterates `(name, value)` in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// A copy as a plain map, sorted by name (for reports).
    pub fn to_sorted_map(&self) -> IndexMap<String, String> {
        let mut m = self.map.clone();
        m.sort_keys();
        m
    }

    /// A copy as a plain map in insertion order.
    pub fn to_map(&self) -> IndexMap<String, String> {
        self.map.clone()
    }

    /// Stores `value` verbatim under `name` (trusted writer: the runtime or the engine).
    ///
    /// `voipbin.activeflow.*` is refused; the caps of `limits` are enforced. The value is
    /// never substituted (single pass).
    pub fn set(&mut self, name: &str, value: &str, limits: &Limits) -> Result<(), VarError> {
        if is_reserved(name) {
            return Err(VarError::Reserved(name.to_owned()));
        }
        self.set_internal(name, value, limits)
    }

    /// Like [`Variables::set`] but allowed to write `voipbin.activeflow.*` (engine only).
    pub(crate) fn set_internal(
        &mut self,
        name: &str,
        value: &str,
        limits: &Limits,
    ) -> Result<(), VarError> {
        if name.is_empty() {
            return Err(VarError::EmptyName);
        }
        let name = canonical_name(name);
        if value.len() > limits.max_variable_value_bytes {
            return Err(VarError::ValueTooLarge {
                name: name.into_owned(),
                size: value.len(),
                max: limits.max_variable_value_bytes,
            });
        }
        if let Some(old) = self.map.get_mut(name.as_ref()) {
            let size = self.bytes - old.len() + value.len();
            if size > limits.max_variables_bytes {
                return Err(VarError::TooLarge {
                    size,
                    max: limits.max_variables_bytes,
                });
            }
            // Reuse the existing allocation: loops that rewrite a variable do not allocate.
            old.clear();
            old.push_str(value);
            self.bytes = size;
            return Ok(());
        }
        if self.map.len() >= limits.max_variables {
            return Err(VarError::TooMany {
                max: limits.max_variables,
            });
        }
        let size = self.bytes + name.len() + value.len();
        if size > limits.max_variables_bytes {
            return Err(VarError::TooLarge {
                size,
                max: limits.max_variables_bytes,
            });
        }
        self.map.insert(name.into_owned(), value.to_owned());
        self.bytes = size;
        Ok(())
    }

    /// Appends `suffix` to the value of `name` (created empty if missing). Used for DTMF.
    pub(crate) fn append(
        &mut self,
        name: &str,
        suffix: &str,
        limits: &Limits,
    ) -> Result<(), VarError> {
        let mut value = self.get(name).unwrap_or_default().to_owned();
        value.push_str(suffix);
        self.set_internal(name, &value, limits)
    }

    /// Removes `name`; returns its value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        let name = canonical_name(name);
        let (k, v) = self.map.shift_remove_entry(name.as_ref())?;
        self.bytes -= k.len() + v.len();
        Some(v)
    }

    /// Substitutes `${name}` placeholders in `template` (see [`substitute`]).
    pub fn substitute<'a>(&'a self, template: &'a str) -> Cow<'a, str> {
        substitute(template, self)
    }
}

impl Serialize for Variables {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.map.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Variables {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = IndexMap::<String, String>::deserialize(d)?;
        let bytes = map.iter().map(|(k, v)| k.len() + v.len()).sum();
        Ok(Self { map, bytes })
    }
}

/// Whether `name` is in the engine-only `voipbin.activeflow.*` namespace.
pub fn is_reserved(name: &str) -> bool {
    canonical_name(name).starts_with(ACTIVEFLOW_PREFIX)
}

/// The canonical spelling of a variable name.
///
/// Legacy names (VoIPBIN before May 2025, still used by its docs) map to the current ones:
///
/// | legacy | canonical |
/// |---|---|
/// | `voipbin.message.{id,text,direction}` | `voipbin.conversation_message.{…}` |
/// | `voipbin.message.source.{name,detail,target,target_name,type}` | `voipbin.conversation.peer.{…}` |
/// | `voipbin.message.target.destination.{…}` | `voipbin.conversation.self.{…}` |
///
/// `number` is accepted for `target` in the two address groups (the docs write
/// `voipbin.message.source.number`). Other names are returned unchanged, without allocating.
pub fn canonical_name(name: &str) -> Cow<'_, str> {
    let Some(rest) = name.strip_prefix(LEGACY_MESSAGE_PREFIX) else {
        return Cow::Borrowed(name);
    };
    let field = |f: &str| {
        if f == "number" {
            "target".to_owned()
        } else {
            f.to_owned()
        }
    };
    if matches!(rest, "id" | "text" | "direction") {
        return Cow::Owned(format!("voipbin.conversation_message.{rest}"));
    }
    if let Some(f) = rest.strip_prefix("source.") {
        return Cow::Owned(format!("voipbin.conversation.peer.{}", field(f)));
    }
    if let Some(f) = rest.strip_prefix("target.destination.") {
        return Cow::Owned(format!("voipbin.conversation.self.{}", field(f)));
    }
    Cow::Borrowed(name)
}

/// A `${name}` occurrence: byte range of the whole placeholder and of the name.
#[derive(Debug, Clone, Copy)]
struct Placeholder {
    start: usize,
    name_start: usize,
    name_end: usize,
    end: usize,
}

/// Finds the first placeholder at or after `from`, with the semantics of VoIPBIN's regex
/// `\$\{(.*?)\}` (`.` does not match a newline). Linear: a `${` that cannot close (newline or
/// end of text first) makes the scan skip past that point instead of rescanning.
fn find_placeholder(s: &str, from: usize) -> Option<Placeholder> {
    let b = s.as_bytes();
    let mut i = from;
    while i + 1 < b.len() {
        let rel = b.get(i..)?.iter().position(|&c| c == b'$')?;
        let start = i + rel;
        if b.get(start + 1) != Some(&b'{') {
            i = start + 1;
            continue;
        }
        let name_start = start + 2;
        let tail = b.get(name_start..)?;
        match tail.iter().position(|&c| c == b'}' || c == b'\n') {
            Some(p) if tail.get(p) == Some(&b'}') => {
                return Some(Placeholder {
                    start,
                    name_start,
                    name_end: name_start + p,
                    end: name_start + p + 1,
                });
            }
            // A newline first: no `${` before it can match; resume after the newline.
            Some(p) => i = name_start + p + 1,
            None => return None,
        }
    }
    None
}

/// Substitutes `${name}` placeholders in `template` with values from `vars`.
///
/// Returns the template itself (borrowed, no allocation) when it has no placeholder, and the
/// variable's value itself (borrowed) when the template is exactly one placeholder.
pub fn substitute<'a>(template: &'a str, vars: &'a Variables) -> Cow<'a, str> {
    let Some(first) = find_placeholder(template, 0) else {
        return Cow::Borrowed(template);
    };
    if first.start == 0 && first.end == template.len() {
        let name = template.get(first.name_start..first.name_end).unwrap_or("");
        return Cow::Borrowed(vars.get(name).unwrap_or(""));
    }
    let mut out = String::with_capacity(template.len() + 16);
    write_substituted(template, vars, first, &mut out);
    Cow::Owned(out)
}

/// Substitutes into `out` (cleared first), reusing its allocation.
pub fn substitute_into(template: &str, vars: &Variables, out: &mut String) {
    out.clear();
    match find_placeholder(template, 0) {
        None => out.push_str(template),
        Some(first) => write_substituted(template, vars, first, out),
    }
}

fn write_substituted(template: &str, vars: &Variables, first: Placeholder, out: &mut String) {
    let mut done = 0;
    let mut next = Some(first);
    while let Some(p) = next {
        out.push_str(template.get(done..p.start).unwrap_or(""));
        let name = template.get(p.name_start..p.name_end).unwrap_or("");
        out.push_str(vars.get(name).unwrap_or(""));
        done = p.end;
        next = find_placeholder(template, done);
    }
    out.push_str(template.get(done..).unwrap_or(""));
}

/// Whether `s` contains a placeholder that substitution would replace.
pub fn has_placeholder(s: &str) -> bool {
    find_placeholder(s, 0).is_some()
}

/// If `s` is exactly one placeholder (`${name}`), the name.
pub fn sole_placeholder(s: &str) -> Option<&str> {
    let p = find_placeholder(s, 0)?;
    if p.start == 0 && p.end == s.len() {
        s.get(p.name_start..p.name_end)
    } else {
        None
    }
}

/// Whether a JSON value holds a placeholder in any string (object keys are not substituted).
pub fn value_has_placeholder(v: &Value) -> bool {
    match v {
        Value::String(s) => has_placeholder(s),
        Value::Array(a) => a.iter().any(value_has_placeholder),
        Value::Object(m) => m.values().any(value_has_placeholder),
        _ => false,
    }
}

/// A substitution that could not produce a value of the field's type (a `${…}` in a UUID
/// field that did not resolve to a UUID).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SubstError {
    /// Path of the field inside the option (`conversation_id`, `destinations[0].target`).
    pub path: String,
    /// What went wrong.
    pub message: String,
}

impl SubstError {
    /// An error at the current field.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            path: String::new(),
            message: message.into(),
        }
    }

    /// Prefixes the path with a field name.
    pub fn within(mut self, field: &str) -> Self {
        self.path = if self.path.is_empty() {
            field.to_owned()
        } else if self.path.starts_with('[') {
            format!("{field}{}", self.path)
        } else {
            format!("{field}.{}", self.path)
        };
        self
    }
}

/// Values that can be copied with their `${…}` placeholders substituted.
///
/// Implemented for option structs (strings substituted, other types copied), `String`,
/// JSON values (recursively, strings only, types kept), collections and scalars.
pub trait Substitute: Sized {
    /// A copy with every string substituted from `vars`.
    fn substitute(&self, vars: &Variables) -> Result<Self, SubstError>;
}

impl Substitute for String {
    fn substitute(&self, vars: &Variables) -> Result<Self, SubstError> {
        Ok(substitute(self, vars).into_owned())
    }
}

macro_rules! copy_substitute {
    ($($t:ty),*) => {$(
        impl Substitute for $t {
            fn substitute(&self, _vars: &Variables) -> Result<Self, SubstError> {
                Ok(*self)
            }
        }
    )*};
}
copy_substitute!(bool, i64, f32, f64, uuid::Uuid);

impl<T: Substitute> Substitute for Option<T> {
    fn substitute(&self, vars: &Variables) -> Result<Self, SubstError> {
        self.as_ref().map(|v| v.substitute(vars)).transpose()
    }
}

impl<T: Substitute> Substitute for Vec<T> {
    fn substitute(&self, vars: &Variables) -> Result<Self, SubstError> {
        self.iter()
            .enumerate()
            .map(|(i, v)| v.substitute(vars).map_err(|e| e.within(&format!("[{i}]"))))
            .collect()
    }
}

impl<T: Substitute> Substitute for IndexMap<String, T> {
    fn substitute(&self, vars: &Variables) -> Result<Self, SubstError> {
        self.iter()
            .map(|(k, v)| Ok((k.clone(), v.substitute(vars).map_err(|e| e.within(k))?)))
            .collect()
    }
}

impl Substitute for Value {
    fn substitute(&self, vars: &Variables) -> Result<Self, SubstError> {
        Ok(substitute_value(self, vars))
    }
}

/// Substitutes every string inside a JSON value (recursively through arrays and objects),
/// keeping all other types. Object keys are not substituted.
pub fn substitute_value(v: &Value, vars: &Variables) -> Value {
    match v {
        Value::String(s) => Value::String(substitute(s, vars).into_owned()),
        Value::Array(a) => Value::Array(a.iter().map(|x| substitute_value(x, vars)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), substitute_value(x, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Outcome of [`sanitize_external`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sanitized {
    /// The variables kept.
    pub variables: IndexMap<String, String>,
    /// Keys dropped because they are in the `voipbin.*` namespace.
    pub dropped: Vec<String>,
}

/// Filters variables supplied from outside (API `variables`, `POST /calls`).
///
/// * Keys in the `voipbin.` namespace (compared case-insensitively after trimming, as VoIPBIN
///   does) are dropped one by one and listed in [`Sanitized::dropped`]; empty keys are dropped
///   too.
/// * The VoIPBIN caps (keys, total bytes, bytes per value; see [`Limits`]) are checked on what
///   is left. **Choice:** where VoIPBIN silently drops the whole set when a cap is exceeded,
///   Flowgate refuses with an error naming the cap, so the API can answer 400 instead of
///   running a flow without the variables its author expected.
pub fn sanitize_external(
    vars: impl IntoIterator<Item = (String, String)>,
    limits: &Limits,
) -> Result<Sanitized, VarError> {
    let mut out = Sanitized::default();
    let mut total = 0usize;
    for (k, v) in vars {
        let trimmed = k.trim();
        let is_platform = trimmed
            .get(..VOIPBIN_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(VOIPBIN_PREFIX));
        if is_platform || trimmed.is_empty() {
            out.dropped.push(k);
            continue;
        }
        if v.len() > limits.max_external_value_bytes {
            return Err(VarError::ValueTooLarge {
                name: k,
                size: v.len(),
                max: limits.max_external_value_bytes,
            });
        }
        total += k.len() + v.len();
        out.variables.insert(k, v);
    }
    if out.variables.len() > limits.max_external_variables {
        return Err(VarError::TooMany {
            max: limits.max_external_variables,
        });
    }
    if total > limits.max_external_variables_bytes {
        return Err(VarError::TooLarge {
            size: total,
            max: limits.max_external_variables_bytes,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Variables {
        let mut v = Variables::new();
        for (k, val) in pairs {
            v.set(k, val, &Limits::default()).expect("set");
        }
        v
    }

    #[test]
    fn no_placeholder_is_borrowed() {
        let v = vars(&[("a", "1")]);
        assert!(matches!(
            substitute("plain $ text {}", &v),
            Cow::Borrowed(_)
        ));
        assert!(matches!(substitute("${a}", &v), Cow::Borrowed("1")));
    }

    #[test]
    fn basic_substitution() {
        let v = vars(&[("a", "1"), ("b", "two")]);
        assert_eq!(substitute("x${a}y${b}z${c}", &v), "x1ytwoz");
        assert_eq!(substitute("${}", &v), "");
        assert_eq!(substitute("$${a}}", &v), "$1}");
        // non-greedy and no nesting: the name is `a${b`
        assert_eq!(substitute("${a${b}}", &v), "}");
        // unterminated
        assert_eq!(substitute("${a", &v), "${a");
        // newline inside breaks the match, a later placeholder still works
        assert_eq!(substitute("${a\n${b}", &v), "${a\ntwo");
    }

    #[test]
    fn single_pass() {
        let v = vars(&[("name", "${secret}"), ("secret", "S")]);
        assert_eq!(substitute("hello ${name}", &v), "hello ${secret}");
    }

    #[test]
    fn aliases_read_and_write() {
        let mut v = vars(&[("voipbin.conversation_message.text", "HOURS")]);
        assert_eq!(v.get("voipbin.message.text"), Some("HOURS"));
        v.set("voipbin.message.source.number", "+1555", &Limits::default())
            .expect("set");
        assert_eq!(v.get("voipbin.conversation.peer.target"), Some("+1555"));
        assert_eq!(
            v.get("voipbin.message.target.destination.target"),
            v.get("voipbin.conversation.self.target")
        );
        assert_eq!(substitute("${voipbin.message.source.target}", &v), "+1555");
    }

    #[test]
    fn reserved_refused() {
        let mut v = Variables::new();
        assert!(matches!(
            v.set("voipbin.activeflow.id", "x", &Limits::default()),
            Err(VarError::Reserved(_))
        ));
    }

    #[test]
    fn caps_enforced_and_bytes_tracked() {
        let limits = Limits {
            max_variables: 2,
            max_variable_value_bytes: 4,
            max_variables_bytes: 9,
            ..Limits::default()
        };
        let mut v = Variables::new();
        v.set("a", "1234", &limits).expect("a");
        assert!(matches!(
            v.set("b", "12345", &limits),
            Err(VarError::ValueTooLarge { .. })
        ));
        v.set("b", "12", &limits).expect("b");
        assert_eq!(v.bytes(), 8);
        assert!(matches!(
            v.set("c", "", &limits),
            Err(VarError::TooMany { .. })
        ));
        assert!(matches!(
            v.set("b", "1234", &limits),
            Err(VarError::TooLarge { .. })
        ));
        v.set("a", "", &limits).expect("shrink");
        assert_eq!(v.bytes(), 4);
        assert_eq!(v.remove("b"), Some("12".into()));
        assert_eq!(v.bytes(), 1);
    }

    #[test]
    fn external_sanitizing() {
        let limits = Limits::default();
        let s = sanitize_external(
            [
                (" VoIPBIN.call.id ".to_owned(), "x".to_owned()),
                ("voipbin.activeflow.id".to_owned(), "x".to_owned()),
                ("order".to_owned(), "A-17".to_owned()),
            ],
            &limits,
        )
        .expect("ok");
        assert_eq!(s.variables.len(), 1);
        assert_eq!(s.dropped.len(), 2);
        let many = (0..101).map(|i| (format!("k{i}"), String::new()));
        assert!(matches!(
            sanitize_external(many, &limits),
            Err(VarError::TooMany { max: 100 })
        ));
        let big = [("k".to_owned(), "x".repeat(32 * 1024 + 1))];
        assert!(matches!(
            sanitize_external(big, &limits),
            Err(VarError::ValueTooLarge { .. })
        ));
        let total = (0..3).map(|i| (format!("k{i}"), "x".repeat(30 * 1024)));
        assert!(matches!(
            sanitize_external(total, &limits),
            Err(VarError::TooLarge { .. })
        ));
    }

    #[test]
    fn value_substitution_keeps_types() {
        let v = vars(&[("n", "5")]);
        let j = serde_json::json!({"a":[1, "${n}", true, null, {"b":"${n}x"}], "${n}": 2.5});
        assert_eq!(
            substitute_value(&j, &v),
            serde_json::json!({"a":[1, "5", true, null, {"b":"5x"}], "${n}": 2.5})
        );
    }
}
