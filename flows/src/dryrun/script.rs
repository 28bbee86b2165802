//! The dry run's script language: one event per `--input` argument or per line of a script
//! file, parsed into [`InputEvent`]s. See the [module docs](super) for what each event does
//! and when it applies.
//!
//! Parsing is pure: `push:FILE` asks a loader for the actions of FILE (the command line
//! reads files; [`InputEvent::from_str`] only accepts inline JSON).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::limits::Limits;
use crate::model::{Action, Flow, ReferenceType, actions_from_value, parse_json};
use crate::validate::is_dtmf;

/// Where an interrupt or an `at:` marker points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// An action id.
    Id(Uuid),
    /// `actions[N]`: the action at index N of the flow running at that moment (its own
    /// actions, not fetched ones).
    Index(usize),
}

impl FromStr for Target {
    type Err = InputError;

    fn from_str(s: &str) -> Result<Self, InputError> {
        let t = s.trim();
        if let Some(n) = t
            .strip_prefix("actions[")
            .and_then(|rest| rest.strip_suffix(']'))
        {
            return n
                .trim()
                .parse()
                .map(Target::Index)
                .map_err(|_| InputError::BadTarget(s.to_owned()));
        }
        Uuid::parse_str(t)
            .map(Target::Id)
            .map_err(|_| InputError::BadTarget(s.to_owned()))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Id(u) => u.fmt(f),
            Target::Index(i) => write!(f, "actions[{i}]"),
        }
    }
}

/// One scripted event (see the [module docs](super) for when each applies).
#[derive(Debug, Clone, PartialEq)]
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
    /// `at:TARGET`: the events after it wait until the cursor has reached TARGET.
    At(Target),
    /// `forward:TARGET` (`now: false`) or `forward-now:TARGET` (`now: true`): the API's
    /// `forward_action_id` with `forward_now`.
    Forward {
        /// Where to jump.
        target: Target,
        /// Abandon the pending command (or block) at once.
        now: bool,
    },
    /// `push:SOURCE` / `push-now:SOURCE`: the API's `push_actions`.
    Push {
        /// The actions (ids assigned where missing).
        actions: Vec<Action>,
        /// Where they came from (a file name, or `inline`), for the trace.
        source: String,
        /// Abandon the pending command (or block) at once.
        now: bool,
    },
    /// `continue` / `continue:TARGET`: the API's `continue` for the block the flow waits on
    /// (or the named one).
    Continue(Option<Target>),
    /// `stop[:REASON]`: the API's stop.
    Stop(String),
}

impl InputEvent {
    /// Whether it is an interrupt the API would send (applied at the next waiting point),
    /// as opposed to channel input or an `at:` marker.
    pub fn is_interrupt(&self) -> bool {
        matches!(
            self,
            InputEvent::Forward { .. }
                | InputEvent::Push { .. }
                | InputEvent::Continue(_)
                | InputEvent::Stop(_)
        )
    }
}

/// The reason `stop` gives when the script names none (what the API's stop uses).
pub const API_STOP_REASON: &str = "stopped through the API";

/// A malformed `--input`, script line or `--var`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// Unknown event kind.
    #[error(
        "unknown input `{0}`: use dtmf:DIGITS, press:DIGITS, timeout, hangup, fail[:REASON], at:TARGET, forward:TARGET, forward-now:TARGET, push:SOURCE, push-now:SOURCE, continue[:TARGET] or stop[:REASON]"
    )]
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
    /// A target that is neither a UUID nor `actions[N]`.
    #[error("`{0}` is not an action id: use a UUID or actions[N]")]
    BadTarget(String),
    /// `push:` whose actions could not be read or parsed.
    #[error("`{input}`: {message}")]
    Push {
        /// The whole input.
        input: String,
        /// What went wrong.
        message: String,
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

    /// Parses one event; `push:` takes inline JSON only (files need [`parse_input`]).
    fn from_str(s: &str) -> Result<Self, InputError> {
        parse_input(s, &mut |source| {
            Err(format!(
                "cannot read `{source}` here: give the actions inline as JSON, or use the command line"
            ))
        })
    }
}

/// Parses one event. `load` answers `push:SOURCE` when SOURCE is not inline JSON (a file
/// name): the JSON text of an array of actions, or of a flow whose actions are pushed.
pub fn parse_input(
    s: &str,
    load: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<InputEvent, InputError> {
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
    let reason = |arg: Option<&str>, default: &str| {
        arg.map(str::trim)
            .filter(|r| !r.is_empty())
            .unwrap_or(default)
            .to_owned()
    };
    let target = |arg: Option<&str>| -> Result<Target, InputError> {
        arg.ok_or_else(|| InputError::BadTarget(s.to_owned()))?
            .parse()
    };
    match (kind.to_ascii_lowercase().as_str(), arg) {
        ("dtmf", a) => Ok(InputEvent::Dtmf(digits(a)?)),
        ("press", a) => Ok(InputEvent::Press(digits(a)?)),
        ("timeout", None) => Ok(InputEvent::Timeout),
        ("hangup", None) => Ok(InputEvent::Hangup),
        ("fail", a) => Ok(InputEvent::Fail(reason(a, "scripted failure"))),
        ("at", a) => Ok(InputEvent::At(target(a)?)),
        ("forward", a) => Ok(InputEvent::Forward {
            target: target(a)?,
            now: false,
        }),
        ("forward-now", a) => Ok(InputEvent::Forward {
            target: target(a)?,
            now: true,
        }),
        (k @ ("push" | "push-now"), Some(a)) => {
            let (actions, source) =
                push_actions(a.trim(), load).map_err(|message| InputError::Push {
                    input: s.to_owned(),
                    message,
                })?;
            Ok(InputEvent::Push {
                actions,
                source,
                now: k == "push-now",
            })
        }
        ("continue", None) => Ok(InputEvent::Continue(None)),
        ("continue", a) => Ok(InputEvent::Continue(Some(target(a)?))),
        ("stop", a) => Ok(InputEvent::Stop(reason(a, API_STOP_REASON))),
        _ => Err(InputError::Unknown(s.to_owned())),
    }
}

/// The actions of a `push:` argument: inline JSON, or the text `load` returns for a file.
fn push_actions(
    arg: &str,
    load: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<(Vec<Action>, String), String> {
    if arg.is_empty() {
        return Err("push needs actions: a JSON array, or a file holding one".to_owned());
    }
    let inline = arg.starts_with('[') || arg.starts_with('{');
    let (text, source) = if inline {
        (arg.to_owned(), "inline".to_owned())
    } else {
        (load(arg)?, arg.to_owned())
    };
    Ok((actions_of(&text)?, source))
}

/// The actions of a JSON text: an array of actions, or a flow object (its `actions`).
pub fn actions_of(text: &str) -> Result<Vec<Action>, String> {
    let limits = Limits::default();
    let value = parse_json(text, &limits).map_err(|e| e.to_string())?;
    match value {
        Value::Object(_) => Flow::from_value(value, &limits)
            .map(|f| f.actions)
            .map_err(|e| e.to_string()),
        other => actions_from_value(other, &limits).map_err(|e| e.to_string()),
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
            InputEvent::At(t) => write!(f, "at:{t}"),
            InputEvent::Forward { target, now } => {
                write!(f, "forward{}:{target}", if *now { "-now" } else { "" })
            }
            InputEvent::Push {
                actions,
                source,
                now,
            } => write!(
                f,
                "push{}:{source} ({} actions)",
                if *now { "-now" } else { "" },
                actions.len()
            ),
            InputEvent::Continue(None) => f.write_str("continue"),
            InputEvent::Continue(Some(t)) => write!(f, "continue:{t}"),
            InputEvent::Stop(r) => write!(f, "stop:{r}"),
        }
    }
}

/// Splits a script file into its events' texts: one per line; blank lines and lines
/// starting with `#` are skipped. Returns `(line number, text)` pairs.
pub fn script_lines(text: &str) -> Vec<(usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_events() {
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
    }

    #[test]
    fn interrupts_and_markers() {
        let u = "00000000-0000-0000-0000-0000000000b1";
        let id = Uuid::parse_str(u).expect("uuid");
        assert_eq!(
            format!("at:{u}").parse(),
            Ok(InputEvent::At(Target::Id(id)))
        );
        assert_eq!(
            "at: actions[3]".parse(),
            Ok(InputEvent::At(Target::Index(3)))
        );
        assert_eq!(
            format!("forward:{u}").parse(),
            Ok(InputEvent::Forward {
                target: Target::Id(id),
                now: false
            })
        );
        assert_eq!(
            "Forward-Now:actions[0]".parse(),
            Ok(InputEvent::Forward {
                target: Target::Index(0),
                now: true
            })
        );
        assert_eq!("continue".parse(), Ok(InputEvent::Continue(None)));
        assert_eq!(
            format!("continue:{u}").parse(),
            Ok(InputEvent::Continue(Some(Target::Id(id))))
        );
        assert_eq!("stop".parse(), Ok(InputEvent::Stop(API_STOP_REASON.into())));
        assert_eq!("stop: done".parse(), Ok(InputEvent::Stop("done".into())));
        assert!(matches!(
            "forward:nowhere".parse::<InputEvent>(),
            Err(InputError::BadTarget(_))
        ));
        assert!(matches!(
            "at:actions[x]".parse::<InputEvent>(),
            Err(InputError::BadTarget(_))
        ));
        assert!(matches!(
            "forward".parse::<InputEvent>(),
            Err(InputError::BadTarget(_))
        ));
        let InputEvent::Push {
            actions,
            source,
            now,
        } = r#"push-now:[{"type":"talk","option":{"text":"hi"}}]"#
            .parse()
            .expect("push")
        else {
            panic!("not a push")
        };
        assert!(now);
        assert_eq!(source, "inline");
        assert_eq!(actions.len(), 1);
        assert!(!actions[0].id.is_nil(), "ids are assigned");
        // Files need a loader; a flow object pushes its actions.
        assert!(matches!(
            "push:x.json".parse::<InputEvent>(),
            Err(InputError::Push { .. })
        ));
        let event = parse_input("push:x.json", &mut |name| {
            assert_eq!(name, "x.json");
            Ok(r#"{"name":"x","actions":[{"type":"hangup"},{"type":"answer"}]}"#.into())
        })
        .expect("loaded");
        assert!(
            matches!(event, InputEvent::Push { ref actions, now: false, .. } if actions.len() == 2)
        );
        assert_eq!(event.to_string(), "push:x.json (2 actions)");
        assert!(matches!(
            r#"push:[{"type":"nope"}]"#.parse::<InputEvent>(),
            Err(InputError::Push { .. })
        ));
    }

    #[test]
    fn events_display_as_they_parse() {
        for s in [
            "dtmf:12",
            "press:3",
            "timeout",
            "hangup",
            "fail:x",
            "at:actions[2]",
            "forward:actions[1]",
            "forward-now:00000000-0000-0000-0000-0000000000b1",
            "continue",
            "continue:actions[4]",
            "stop:bye",
        ] {
            let e: InputEvent = s.parse().expect(s);
            assert_eq!(e.to_string(), s);
            assert_eq!(e.to_string().parse::<InputEvent>(), Ok(e));
        }
    }

    #[test]
    fn script_files_and_arguments() {
        let lines = script_lines("# menu test\n\ndtmf:1\n  forward:actions[0]  \n#x\nhangup\n");
        assert_eq!(
            lines,
            [(3, "dtmf:1"), (4, "forward:actions[0]"), (6, "hangup")]
        );
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
}
