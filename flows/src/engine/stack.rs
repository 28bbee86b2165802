//! Stacks of an activeflow: the main stack and the stacks pushed by forks (`fetch`,
//! `fetch_flow`, `push_actions`), each with its return pointer (reference §3.2–3.3).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::{Action, ActionOption};

/// One action as the engine keeps it: id, explicit successor and typed option (templates
/// intact; substitution happens on a copy each time the action runs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Node {
    pub(crate) id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) next_id: Option<Uuid>,
    #[serde(flatten)]
    pub(crate) option: ActionOption,
}

impl From<&Action> for Node {
    fn from(a: &Action) -> Self {
        Node {
            id: a.id,
            next_id: a.next(),
            option: a.option().clone(),
        }
    }
}

/// A list of actions with a return pointer. The main stack has no return pointer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "StackRepr")]
pub(crate) struct Stack {
    pub(crate) id: Uuid,
    pub(crate) actions: Vec<Node>,
    /// Where to continue when this stack runs out: after `return_action` in `return_stack`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) return_stack: Option<Uuid>,
    pub(crate) return_action: Uuid,
    /// Action id → position; rebuilt after deserializing.
    #[serde(skip)]
    index: HashMap<Uuid, usize>,
}

#[derive(Deserialize)]
struct StackRepr {
    id: Uuid,
    actions: Vec<Node>,
    #[serde(default)]
    return_stack: Option<Uuid>,
    return_action: Uuid,
}

impl From<StackRepr> for Stack {
    fn from(r: StackRepr) -> Self {
        Stack::new(r.id, r.actions, r.return_stack, r.return_action)
    }
}

impl Stack {
    pub(crate) fn new(
        id: Uuid,
        actions: Vec<Node>,
        return_stack: Option<Uuid>,
        return_action: Uuid,
    ) -> Self {
        let mut index = HashMap::with_capacity(actions.len());
        for (i, n) in actions.iter().enumerate() {
            // First occurrence wins, like a linear search would.
            index.entry(n.id).or_insert(i);
        }
        Stack {
            id,
            actions,
            return_stack,
            return_action,
            index,
        }
    }

    pub(crate) fn position(&self, id: Uuid) -> Option<usize> {
        self.index.get(&id).copied()
    }
}
