//! Failures injected on purpose: slow, lost or garbled replies, an unresponsive modem, a busy
//! SIM, a full memory, a network that refuses call transfer, and one-shot triggers on commands
//! (reboot instead of or right after answering, drop, error, garbage, carry out the command
//! and lose its reply, or the far end hangs up as the command arrives).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Out, SimCore, calls, line_out};

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

impl SimCore {
    /// Answers a command line, or the body of a prompt, with the trigger `fault` applied:
    /// `out` is what the modem already said (the echo), `reply` carries the command out.
    /// One place for what each fault does, whichever way the command arrived.
    pub(super) fn reply_with_fault(
        &mut self,
        fault: Option<FaultAction>,
        mut out: Vec<Out>,
        reply: impl FnOnce(&mut SimCore) -> Vec<Out>,
    ) -> Vec<Out> {
        let mut mute = false;
        let mut reboot_after = false;
        let mut trailing = Vec::new();
        match fault {
            None => {}
            Some(FaultAction::Reboot) => {
                out.extend(self.reboot());
                return out;
            }
            Some(FaultAction::RebootAfter) => reboot_after = true,
            Some(FaultAction::Drop) => return out,
            Some(FaultAction::NoReply) => mute = true,
            Some(FaultAction::Error(f)) => {
                out.push(line_out(&f));
                return out;
            }
            Some(FaultAction::Garbage(g)) => out.push(Out::Bytes(g)),
            Some(FaultAction::FarEndLeaves) => trailing = calls::far_end_leaves(self),
        }
        if !self.faults.reply_delay.is_zero() {
            out.push(Out::Sleep(self.faults.reply_delay));
        }
        let reply = reply(self);
        out.extend(if mute { without_reply(reply) } else { reply });
        out.extend(trailing);
        if reboot_after {
            out.extend(self.reboot_now());
        }
        out
    }
}
