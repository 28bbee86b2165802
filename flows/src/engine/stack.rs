//! Stacks of an activeflow: the main stack and the stacks pushed by forks (`fetch`,
//! `fetch_flow`, `push_actions`), each with its return pointer (reference §3.2–3.3).
//!
//! A stack's actions never change once it exists, but for one thing: a `goto` counts its
//! jumps down in the stack's copy (reference §3.4). The main stack's actions (the flow
//! itself, often the bulk of the state) can be kept out of the serialized state
//! ([`Placement::Apart`]) with those counters kept in it (`loop_counts`): a runtime that
//! persists the state after every step then writes the actions once, on their own, instead
//! of at every step.

use std::collections::{BTreeMap, HashMap};

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};
use uuid::Uuid;

use crate::model::{Action, ActionOption};

/// The `goto` counters a stack has counted down, by position: `loop_counts` of a stack
/// serialized without its actions.
pub(crate) type LoopCounts = BTreeMap<usize, i64>;

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

/// Where a stack's actions are when the state is serialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Placement {
    /// In the serialized state (pushed stacks always; the main stack unless moved apart).
    #[default]
    Inline,
    /// Kept out of the serialized state, and present here: the runtime stores them apart.
    Apart,
    /// Deserialized from a state without them: they must be attached before the flow runs.
    Missing,
}

/// A list of actions with a return pointer. The main stack has no return pointer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "StackRepr")]
pub(crate) struct Stack {
    pub(crate) id: Uuid,
    pub(crate) actions: Vec<Node>,
    /// Where to continue when this stack runs out: after `return_action` in `return_stack`.
    pub(crate) return_stack: Option<Uuid>,
    pub(crate) return_action: Uuid,
    /// Whether `actions` go into the serialized state (not itself serialized: a state
    /// without `actions` deserializes as [`Placement::Missing`]).
    pub(crate) placement: Placement,
    /// Every `goto` counter of `actions` that was counted down, with its value now; goes
    /// into the serialized state when the actions do not (see [`Stack::count_down`]).
    loop_counts: LoopCounts,
    /// Action id → position; rebuilt after deserializing.
    index: HashMap<Uuid, usize>,
}

/// Written by hand (the fields in declaration order, as the derive did) so that `actions`
/// can be left out when they are stored apart.
impl Serialize for Stack {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let inline = self.placement == Placement::Inline;
        let counts = !inline && !self.loop_counts.is_empty();
        let fields = 2
            + usize::from(inline)
            + usize::from(counts)
            + usize::from(self.return_stack.is_some());
        let mut st = serializer.serialize_struct("Stack", fields)?;
        st.serialize_field("id", &self.id)?;
        if inline {
            st.serialize_field("actions", &self.actions)?;
        }
        if counts {
            st.serialize_field("loop_counts", &self.loop_counts)?;
        }
        if let Some(return_stack) = &self.return_stack {
            st.serialize_field("return_stack", return_stack)?;
        }
        st.serialize_field("return_action", &self.return_action)?;
        st.end()
    }
}

#[derive(Deserialize)]
struct StackRepr {
    id: Uuid,
    #[serde(default)]
    actions: Option<Vec<Node>>,
    #[serde(default)]
    loop_counts: LoopCounts,
    #[serde(default)]
    return_stack: Option<Uuid>,
    return_action: Uuid,
}

impl From<StackRepr> for Stack {
    fn from(r: StackRepr) -> Self {
        let (actions, placement) = match r.actions {
            Some(actions) => (actions, Placement::Inline),
            None => (Vec::new(), Placement::Missing),
        };
        let mut stack = Stack::new(r.id, actions, r.return_stack, r.return_action);
        stack.placement = placement;
        stack.loop_counts = r.loop_counts;
        stack
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
            placement: Placement::Inline,
            loop_counts: LoopCounts::new(),
            index,
        }
    }

    /// Puts `actions` (as they were stored apart) into a stack deserialized without them,
    /// with the `goto` counters it has counted down since; they stay apart.
    pub(crate) fn attach(&mut self, actions: Vec<Node>) {
        let loop_counts = std::mem::take(&mut self.loop_counts);
        *self = Stack::new(self.id, actions, self.return_stack, self.return_action);
        self.placement = Placement::Apart;
        for (&idx, &count) in &loop_counts {
            if let Some(ActionOption::Goto(g)) = self.actions.get_mut(idx).map(|n| &mut n.option) {
                g.loop_count = count;
            }
        }
        self.loop_counts = loop_counts;
    }

    /// Counts down the `goto` at `idx` (the decrement lives in this stack's copy, reference
    /// §3.4) and remembers its value for a state serialized without the actions.
    pub(crate) fn count_down(&mut self, idx: usize) {
        if let Some(ActionOption::Goto(g)) = self.actions.get_mut(idx).map(|n| &mut n.option) {
            g.loop_count -= 1;
            self.loop_counts.insert(idx, g.loop_count);
        }
    }

    pub(crate) fn position(&self, id: Uuid) -> Option<usize> {
        self.index.get(&id).copied()
    }
}
