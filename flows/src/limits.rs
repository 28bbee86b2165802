//! Caps against hostile or broken input: flow size, JSON nesting, string sizes, action counts
//! and variables.
//!
//! Every flow that enters Flowgate (API body, sled, a file given to the CLI, a `fetch` reply)
//! goes through [`Limits`] before anything else looks at it. The nesting depth is checked by a
//! byte scanner *before* serde sees the text, so a deeply nested document is refused in linear
//! time without recursion. The values, and where they come from, are listed in the crate docs
//! (section "Limits and guards").

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::problem::FlowError;

/// Size caps for flows and variables. All sizes are bytes of UTF-8.
///
/// The defaults are generous for real flows (a large IVR has a few hundred actions) and small
/// enough that a hostile document cannot exhaust the memory of a gateway board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Largest flow document accepted (JSON text). Default 4 MiB.
    pub max_flow_bytes: usize,
    /// Deepest nesting of JSON arrays/objects. Default 32 (a flow with `call` actions carrying
    /// inline actions needs about 12).
    pub max_depth: usize,
    /// Most actions in one flow or one list of actions. Default 10,000.
    pub max_actions: usize,
    /// Longest single string (or object key) anywhere in a flow. Default 64 KiB.
    pub max_string_bytes: usize,
    /// Most actions accepted from one `fetch`/`fetch_flow` reply or one `push_actions`.
    /// Default 1,000.
    pub max_fetched_actions: usize,
    /// External variables (API `variables`): most keys. VoIPBIN: 100.
    pub max_external_variables: usize,
    /// External variables: total bytes of keys and values. VoIPBIN: 64 KiB.
    pub max_external_variables_bytes: usize,
    /// External variables: longest value. VoIPBIN: 32 KiB.
    pub max_external_value_bytes: usize,
    /// Most variables an activeflow may hold (any source). Default 1,000.
    pub max_variables: usize,
    /// Longest variable value an activeflow may hold. Default 64 KiB.
    pub max_variable_value_bytes: usize,
    /// Total bytes of all variables of an activeflow. Default 1 MiB.
    pub max_variables_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_flow_bytes: 4 * 1024 * 1024,
            max_depth: 32,
            max_actions: 10_000,
            max_string_bytes: 64 * 1024,
            max_fetched_actions: 1_000,
            max_external_variables: 100,
            max_external_variables_bytes: 64 * 1024,
            max_external_value_bytes: 32 * 1024,
            max_variables: 1_000,
            max_variable_value_bytes: 64 * 1024,
            max_variables_bytes: 1024 * 1024,
        }
    }
}

/// Why a document was refused before it was parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// The text is larger than [`Limits::max_flow_bytes`].
    #[error("the flow is {size} bytes; at most {max} bytes are accepted")]
    TooLarge {
        /// Size of the document.
        size: usize,
        /// The cap.
        max: usize,
    },
    /// Arrays/objects are nested deeper than [`Limits::max_depth`].
    #[error("JSON nesting deeper than {max} levels at byte {offset}")]
    TooDeep {
        /// Byte offset of the bracket that went too deep.
        offset: usize,
        /// The cap.
        max: usize,
    },
}

impl Limits {
    /// Checks size and nesting depth of a JSON text without parsing it.
    ///
    /// Linear in the input, no recursion, no allocation. Brackets inside strings are ignored;
    /// malformed JSON is left for the parser to report.
    pub fn check_text(&self, text: &str) -> Result<(), LimitError> {
        if text.len() > self.max_flow_bytes {
            return Err(LimitError::TooLarge {
                size: text.len(),
                max: self.max_flow_bytes,
            });
        }
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        for (offset, &b) in text.as_bytes().iter().enumerate() {
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > self.max_depth {
                        return Err(LimitError::TooDeep {
                            offset,
                            max: self.max_depth,
                        });
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks an already parsed value: nesting depth and string sizes. Problems are appended
    /// to `out` with their JSON path (`prefix` is the path of `value`).
    ///
    /// Used for values that did not come through [`Limits::check_text`] (API bodies already
    /// parsed by the web framework, actions handed to the engine).
    pub fn check_value(&self, value: &Value, prefix: &str, out: &mut Vec<FlowError>) {
        if self.value_ok(value) {
            return;
        }
        // Explicit stack instead of recursion: the depth is what we are checking. Paths are
        // only built on this (rare) slow path.
        let mut stack: Vec<(&Value, String, usize)> = vec![(value, prefix.to_owned(), 1)];
        while let Some((v, path, depth)) = stack.pop() {
            match v {
                Value::String(s) if s.len() > self.max_string_bytes => {
                    out.push(FlowError::new(
                        path,
                        format!(
                            "the string is {} bytes; at most {} bytes are accepted",
                            s.len(),
                            self.max_string_bytes
                        ),
                    ));
                }
                Value::Array(items) => {
                    if depth > self.max_depth {
                        out.push(too_deep(path, self.max_depth));
                        continue;
                    }
                    for (i, item) in items.iter().enumerate() {
                        if is_container_or_string(item) {
                            stack.push((item, format!("{path}[{i}]"), depth + 1));
                        }
                    }
                }
                Value::Object(map) => {
                    if depth > self.max_depth {
                        out.push(too_deep(path, self.max_depth));
                        continue;
                    }
                    for (k, item) in map {
                        let child = join_path(&path, k);
                        if k.len() > self.max_string_bytes {
                            out.push(FlowError::new(
                                child.clone(),
                                format!(
                                    "the key is {} bytes; at most {} bytes are accepted",
                                    k.len(),
                                    self.max_string_bytes
                                ),
                            ));
                        }
                        if is_container_or_string(item) {
                            stack.push((item, child, depth + 1));
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

impl Limits {
    /// Fast check without paths or allocation beyond the work stack.
    fn value_ok(&self, value: &Value) -> bool {
        let mut stack: Vec<(&Value, usize)> = vec![(value, 1)];
        while let Some((v, depth)) = stack.pop() {
            match v {
                Value::String(s) if s.len() > self.max_string_bytes => return false,
                Value::Array(items) => {
                    if depth > self.max_depth {
                        return false;
                    }
                    stack.extend(
                        items
                            .iter()
                            .filter(|i| is_container_or_string(i))
                            .map(|i| (i, depth + 1)),
                    );
                }
                Value::Object(map) => {
                    if depth > self.max_depth {
                        return false;
                    }
                    for (k, item) in map {
                        if k.len() > self.max_string_bytes {
                            return false;
                        }
                        if is_container_or_string(item) {
                            stack.push((item, depth + 1));
                        }
                    }
                }
                _ => {}
            }
        }
        true
    }
}

fn is_container_or_string(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Array(_) | Value::Object(_))
}

fn too_deep(path: String, max: usize) -> FlowError {
    FlowError::new(path, format!("JSON nesting deeper than {max} levels"))
}

/// Joins a JSON path and an object key (`actions[2].option` + `text`).
pub(crate) fn join_path(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_scan_ignores_brackets_in_strings() {
        let limits = Limits {
            max_depth: 2,
            ..Limits::default()
        };
        assert!(limits.check_text(r#"{"a":["[[[[{{{{\"]]"]}"#).is_ok());
        assert_eq!(
            limits.check_text(r#"{"a":[{}]}"#),
            Err(LimitError::TooDeep { offset: 6, max: 2 })
        );
    }

    #[test]
    fn size_cap() {
        let limits = Limits {
            max_flow_bytes: 3,
            ..Limits::default()
        };
        assert_eq!(
            limits.check_text("[  ]"),
            Err(LimitError::TooLarge { size: 4, max: 3 })
        );
    }

    #[test]
    fn value_check_reports_paths() {
        let limits = Limits {
            max_string_bytes: 8,
            max_depth: 3,
            ..Limits::default()
        };
        let v = serde_json::json!({"actions":[{"option":{"text":"long text"}}], "ok":"abc"});
        let mut out = Vec::new();
        limits.check_value(&v, "", &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        // depth 4 object is refused before its string is looked at
        assert_eq!(out[0].path, "actions[0].option");
        let limits = Limits {
            max_string_bytes: 8,
            ..Limits::default()
        };
        let mut out = Vec::new();
        limits.check_value(&v, "", &mut out);
        assert_eq!(out[0].path, "actions[0].option.text");
    }
}
