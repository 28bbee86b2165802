//! Problems found in a flow: a JSON path, a sentence, and how serious it is.
//!
//! One type for every layer that reports on a document — the input caps ([`crate::limits`]),
//! the parser ([`crate::model`]), validation ([`crate::validate`]) and the engine's checks of
//! pushed actions — so that all of them can report every problem at once with the same shape.
//! It lives in its own module because all of those layers need it and none of them should
//! depend on another one just for this type.
//!
//! A [`Problem`] serializes as `{"severity": "error"|"warning", "path": …, "message": …}`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How serious a [`Problem`] is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Legal, and VoIPBIN would run it, but probably not what the author meant (or it fails
    /// when it runs). Never a reason to refuse a flow.
    Warning,
    /// The flow cannot be represented or cannot run at all: it is refused.
    #[default]
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One problem: where (`actions[3].option.target_id`; `""` for the whole document), what, and
/// how serious.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Problem {
    /// Error or warning. Absent in older serialized forms, which only held errors.
    #[serde(default)]
    pub severity: Severity,
    /// JSON path (`actions[3].option.target_id`; `""` for the whole document).
    pub path: String,
    /// What is wrong, as a sentence.
    pub message: String,
}

/// The name the parser, the input caps and the engine use for their problems: always of
/// severity [`Severity::Error`] when they make it ([`FlowError::new`]).
pub type FlowError = Problem;

impl Problem {
    /// An error (what the parser and the caps report).
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::error(path, message)
    }

    /// A problem of severity [`Severity::Error`].
    pub fn error(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            path: path.into(),
            message: message.into(),
        }
    }

    /// A problem of severity [`Severity::Warning`].
    pub fn warning(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            path: path.into(),
            message: message.into(),
        }
    }

    /// Whether it makes the flow unusable.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for Problem {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_with_severity_and_reads_old_form() {
        let p = Problem::warning("actions[0]", "odd");
        assert_eq!(
            serde_json::to_string(&p).expect("ser"),
            r#"{"severity":"warning","path":"actions[0]","message":"odd"}"#
        );
        let old: Problem =
            serde_json::from_str(r#"{"path":"","message":"bad"}"#).expect("old form");
        assert!(old.is_error());
        assert_eq!(old.to_string(), "bad");
        assert_eq!(FlowError::new("x", "y").to_string(), "x: y");
    }
}
