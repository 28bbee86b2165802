//! Failures injected on purpose: slow, lost or garbled replies, an unresponsive modem, a busy
//! SIM, a full memory, a network that refuses call transfer, and one-shot triggers on commands
//! (reboot instead of or right after answering, drop, error, garbage, carry out the command
//! and lose its reply, or the far end hangs up as the command arrives).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Out;

/// What can go wrong on purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultAction {
    /// Reboot (RDY / ^BOOT after the boot delay) instead of answering.
    Reboot,
    /// Say nothing and do nothing (the command was lost on the way in).
    Drop,
    /// Carry the command out but lose its reply (the modem acted; the gateway never hears
    /// about it): an `AT+CMSS` whose message went out but whose `+CMSS:` never arrived.
    NoReply,
    /// Answer with this final line (e.g. `+CMS ERROR: 500`).
    Error(String),
    /// Answer with these bytes before the normal reply.
    Garbage(Vec<u8>),
    /// Carry the command out and answer it, then reboot at once: the boot URCs follow the
    /// reply in the same write, so the gateway reads them before it sends its next command
    /// (a reboot between two commands, e.g. between the `AT+CPMS` that selected a memory
    /// and the `AT+CMGW` that relies on it: settings are back to their power-on values).
    RebootAfter,
    /// The far end of the most recent call hangs up as the command arrives, and the
    /// command is carried out after that: a caller who gives up in the instant the gateway
    /// answers, whose `ATA` then gets `NO CARRIER` (the call's state URCs follow the reply).
    FarEndLeaves,
}

#[derive(Debug, Clone)]
struct Trigger {
    prefix: String,
    action: FaultAction,
    /// Matching commands to let through before the fault applies.
    skip: u32,
    remaining: u32,
}

/// The faults in force.
#[derive(Debug, Clone, Default)]
pub(crate) struct Faults {
    pub(crate) reply_delay: Duration,
    pub(crate) drop_replies: u32,
    pub(crate) unresponsive: bool,
    pub(crate) sim_busy: u32,
    pub(crate) memory_full: bool,
    /// The network refuses explicit call transfer (`AT+CHLD=4`).
    pub(crate) ect_refused: bool,
    triggers: Vec<Trigger>,
}

impl Faults {
    /// Adds a trigger for command lines starting with `prefix`, applied to `times` lines after
    /// `skip` matching ones went through.
    pub(crate) fn add_trigger(&mut self, prefix: &str, action: FaultAction, skip: u32, times: u32) {
        self.triggers.push(Trigger {
            prefix: prefix.to_ascii_uppercase(),
            action,
            skip,
            remaining: times.max(1),
        });
    }

    /// The action of the first trigger matching the upper-case line `upper`, if it applies now.
    pub(super) fn take_trigger(&mut self, upper: &str) -> Option<FaultAction> {
        let i = self
            .triggers
            .iter()
            .position(|t| upper.starts_with(&t.prefix))?;
        let t = self.triggers.get_mut(i)?;
        if t.skip > 0 {
            t.skip -= 1;
            return None;
        }
        let action = t.action.clone();
        t.remaining = t.remaining.saturating_sub(1);
        if t.remaining == 0 {
            self.triggers.remove(i);
        }
        Some(action)
    }
}

/// Keeps what is not a reply (timers, audio flushes) of `outs`: the modem acted, its answer
/// was lost.
pub(super) fn without_reply(outs: Vec<Out>) -> Vec<Out> {
    outs.into_iter()
        .filter(|o| !matches!(o, Out::Bytes(_)))
        .collect()
}
