//! What can be said to a running activeflow: the messages of a runner's mailbox.
//!
//! Kept apart from the runner so the parts that talk to flows (calls, SMS, the API)
//! depend on this small vocabulary, not on the runner's loop.

use flowgate_flows::engine::{EngineError, ForwardEffect};
use flowgate_flows::model::Action;
use tokio::sync::oneshot;
use uuid::Uuid;

/// A message to a runner.
pub(crate) enum Signal {
    /// A digit the caller pressed.
    Dtmf(char),
    /// Jump to an action.
    Forward {
        target: Uuid,
        now: bool,
        reply: oneshot::Sender<Result<ForwardEffect, EngineError>>,
    },
    /// Fork: push actions as a new stack.
    Push {
        actions: Vec<Action>,
        now: bool,
        reply: oneshot::Sender<Result<ForwardEffect, EngineError>>,
    },
    /// Resume a `block`.
    Continue {
        action_id: Uuid,
        reply: oneshot::Sender<Result<(), EngineError>>,
    },
    /// End the flow.
    Stop {
        reason: String,
        reply: Option<oneshot::Sender<()>>,
    },
    /// The call the flow runs on is gone.
    Hangup,
    /// A trusted variable changed outside the flow (`voipbin.call.status`).
    SetVariable { name: String, value: String },
}
