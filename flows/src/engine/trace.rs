//! The executed-actions history of an activeflow: a bounded window of recent entries plus
//! totals, so a flow that loops for hours does not grow its persisted state.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::ActionType;

/// What happened to an action the cursor reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceOutcome {
    /// It ran (control actions inside the engine, commands handed to the runtime).
    Executed,
    /// Media gating skipped it.
    Skipped,
    /// It failed; `reason` says why (fatal failures also end the flow).
    Failed,
}

/// One cursor move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Executed {
    /// Sequence number over the whole life of the activeflow (starts at 1).
    pub seq: u64,
    /// Stack the action belongs to (the main stack is `…0001`).
    pub stack_id: Uuid,
    /// Position of the action in its stack.
    pub index: usize,
    /// Action id.
    pub id: Uuid,
    /// Action type.
    #[serde(rename = "type")]
    pub kind: ActionType,
    /// What happened.
    pub outcome: TraceOutcome,
    /// Why it failed, was cut short, or completed without a command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Engine time when the cursor reached it.
    pub at: DateTime<Utc>,
}

/// Totals over the whole life of an activeflow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceTotals {
    /// Actions that ran.
    pub executed: u64,
    /// Actions skipped by media gating.
    pub skipped: u64,
    /// Actions that failed.
    pub failed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct Trace {
    pub(crate) window: VecDeque<Executed>,
    pub(crate) totals: TraceTotals,
    pub(crate) last_seq: u64,
}

impl TraceTotals {
    fn slot(&mut self, o: TraceOutcome) -> &mut u64 {
        match o {
            TraceOutcome::Executed => &mut self.executed,
            TraceOutcome::Skipped => &mut self.skipped,
            TraceOutcome::Failed => &mut self.failed,
        }
    }
}

impl Trace {
    /// Records an entry (its `seq` is assigned here) and returns its sequence number.
    pub(crate) fn push(&mut self, mut e: Executed, cap: usize) -> u64 {
        self.last_seq += 1;
        e.seq = self.last_seq;
        *self.totals.slot(e.outcome) += 1;
        if cap > 0 {
            if self.window.len() >= cap {
                self.window.pop_front();
            }
            self.window.push_back(e);
        }
        self.last_seq
    }

    /// Changes the outcome of an entry already recorded (a command that failed or was
    /// interrupted later). Entries that left the window only update the totals.
    pub(crate) fn amend(&mut self, seq: u64, outcome: TraceOutcome, reason: Option<String>) {
        let old = match self.window.iter_mut().rev().find(|e| e.seq == seq) {
            Some(e) => {
                e.reason = reason;
                std::mem::replace(&mut e.outcome, outcome)
            }
            None => TraceOutcome::Executed,
        };
        if old != outcome {
            let slot = self.totals.slot(old);
            *slot = slot.saturating_sub(1);
            *self.totals.slot(outcome) += 1;
        }
    }
}
