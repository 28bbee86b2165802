//! One command as a handler sees it ([`Cmd`]), what a handler answers ([`Reply`]), and the
//! command table: every family module lists its commands with the models that know them and
//! whether they need an unlocked SIM. The dispatcher looks commands up here and `AT+CLAC`
//! lists the same table, so a model never claims a command it does not answer.

use super::line::{Op, Piece};
use super::{Out, SimCore, audio, calls, general, line_out, network, sms, ussd};
use crate::modem::at::args::Args;
use crate::simulator::SimulatedModel;

/// One command of a command line.
#[derive(Debug)]
pub(super) struct Cmd<'a> {
    /// Upper-case name with its prefix (`+CMGS`, `^DTMF`, `E`, `D`).
    pub(super) name: &'a str,
    /// Run, set, read or test.
    pub(super) op: Op,
    /// The values as sent (case kept).
    pub(super) raw: &'a str,
    /// [`Cmd::raw`] split into arguments.
    pub(super) args: Args,
}

impl<'a> Cmd<'a> {
    pub(super) fn new(p: &'a Piece) -> Self {
        Self {
            name: &p.name,
            op: p.op,
            raw: &p.raw,
            args: Args::parse(&p.raw),
        }
    }

    /// The numeric value of a basic command (`ATE1` → 1; `ATE` → 0, V.250 §5.3.1).
    pub(super) fn basic_value(&self) -> Option<u32> {
        if self.raw.is_empty() {
            Some(0)
        } else {
            self.raw.parse().ok()
        }
    }
}

/// Why a command failed; the core writes it as `AT+CMEE` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    /// `ERROR`: syntax or a value out of range.
    Plain,
    /// A command the model does not have (`ERROR`, Huawei `COMMAND NOT SUPPORT`).
    Unknown,
    /// `+CME ERROR: <n>` (27.007 §9.2).
    Cme(u16),
    /// `+CMS ERROR: <n>` (27.005 §3.2.5).
    Cms(u16),
}

/// How a command ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Final {
    /// `OK`.
    Ok,
    /// A failure (stops the rest of the line).
    Error(Failure),
    /// Another final result code (`NO CARRIER` for `ATA` without a call, `ATD` of a data
    /// call).
    Text(&'static str),
    /// The `> ` prompt opened: the final result comes after the body.
    Prompt,
}

/// A handler's answer: information text, the final result, and what the modem writes after
/// the final result (URCs it causes, timers).
#[derive(Debug)]
pub(super) struct Reply {
    pub(super) info: Vec<Out>,
    pub(super) fin: Final,
    pub(super) after: Vec<Out>,
}

impl Reply {
    /// `OK`.
    pub(super) fn ok() -> Self {
        Self {
            info: Vec::new(),
            fin: Final::Ok,
            after: Vec::new(),
        }
    }

    /// One information line, then `OK`.
    pub(super) fn line(text: impl AsRef<str>) -> Self {
        Self::ok().with_line(text)
    }

    /// Information lines, then `OK`.
    pub(super) fn lines<S: AsRef<str>>(lines: impl IntoIterator<Item = S>) -> Self {
        let mut r = Self::ok();
        for l in lines {
            r = r.with_line(l);
        }
        r
    }

    /// A failure.
    pub(super) fn fail(f: Failure) -> Self {
        Self {
            info: Vec::new(),
            fin: Final::Error(f),
            after: Vec::new(),
        }
    }

    /// `+CME ERROR: <code>`.
    pub(super) fn cme(code: u16) -> Self {
        Self::fail(Failure::Cme(code))
    }

    /// `+CMS ERROR: <code>`.
    pub(super) fn cms(code: u16) -> Self {
        Self::fail(Failure::Cms(code))
    }

    /// `ERROR`.
    pub(super) fn error() -> Self {
        Self::fail(Failure::Plain)
    }

    /// Another final result code.
    pub(super) fn text(t: &'static str) -> Self {
        Self {
            info: Vec::new(),
            fin: Final::Text(t),
            after: Vec::new(),
        }
    }

    /// Adds an information line.
    pub(super) fn with_line(mut self, text: impl AsRef<str>) -> Self {
        self.info.push(line_out(text.as_ref()));
        self
    }

    /// Adds outputs before the final result.
    pub(super) fn before(mut self, outs: impl IntoIterator<Item = Out>) -> Self {
        self.info.extend(outs);
        self
    }

    /// Adds outputs after the final result.
    pub(super) fn then(mut self, outs: impl IntoIterator<Item = Out>) -> Self {
        self.after.extend(outs);
        self
    }
}

/// Which models know a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Models(u8);

impl Models {
    pub(super) const QUECTEL: Self = Self(1);
    pub(super) const HUAWEI: Self = Self(2);
    pub(super) const SIMCOM: Self = Self(4);
    pub(super) const ALL: Self = Self(7);

    /// Both sets.
    pub(super) const fn or(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    fn has(self, m: SimulatedModel) -> bool {
        let bit = match m {
            SimulatedModel::QuectelEc25 => Self::QUECTEL,
            SimulatedModel::HuaweiE1550 => Self::HUAWEI,
            SimulatedModel::Sim7600 => Self::SIMCOM,
        };
        self.0 & bit.0 != 0
    }
}

/// A command handler.
pub(super) type Handler = fn(&mut SimCore, &Cmd<'_>) -> Reply;

/// One entry of a family's command table.
pub(super) struct Spec {
    /// Upper-case name with its prefix, as [`Cmd::name`].
    pub(super) name: &'static str,
    /// The models that have it.
    pub(super) models: Models,
    /// Refused with `+CME ERROR: 11` while the SIM waits for its PIN.
    pub(super) sim: bool,
    /// The handler.
    pub(super) run: Handler,
}

impl Spec {
    /// A command every model has that works without the SIM.
    pub(super) const fn all(name: &'static str, run: Handler) -> Self {
        Self {
            name,
            models: Models::ALL,
            sim: false,
            run,
        }
    }

    /// A command of some models that works without the SIM.
    pub(super) const fn only(name: &'static str, models: Models, run: Handler) -> Self {
        Self {
            name,
            models,
            sim: false,
            run,
        }
    }

    /// A command every model has that needs the SIM.
    pub(super) const fn sim(name: &'static str, run: Handler) -> Self {
        Self {
            name,
            models: Models::ALL,
            sim: true,
            run,
        }
    }
}

/// The command tables of all families.
const FAMILIES: &[&[Spec]] = &[
    general::COMMANDS,
    network::COMMANDS,
    sms::COMMANDS,
    calls::COMMANDS,
    ussd::COMMANDS,
    audio::COMMANDS,
];

/// The command `name` of `model`, if it has one.
pub(super) fn find(model: SimulatedModel, name: &str) -> Option<&'static Spec> {
    FAMILIES
        .iter()
        .flat_map(|f| f.iter())
        .find(|s| s.name == name && s.models.has(model))
}

/// Every command `model` has, as `AT+CLAC` lists them (27.007 §8.37: with the `AT` prefix).
pub(super) fn names(model: SimulatedModel) -> Vec<String> {
    FAMILIES
        .iter()
        .flat_map(|f| f.iter())
        .filter(|s| s.models.has(model))
        .map(|s| format!("AT{}", s.name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_command_is_listed_twice_for_a_model() {
        for m in SimulatedModel::ALL {
            let mut n = names(m);
            let all = n.len();
            n.sort();
            n.dedup();
            assert_eq!(n.len(), all, "{m:?}");
            assert!(n.contains(&"AT+CLAC".to_owned()));
        }
        assert!(find(SimulatedModel::HuaweiE1550, "^USSDMODE").is_some());
        assert!(find(SimulatedModel::QuectelEc25, "^USSDMODE").is_none());
    }
}
