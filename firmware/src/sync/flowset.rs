//! The flow set: every change to the stored flows goes through [`FlowSet`], which keeps the
//! set's *revision* — the number a controller compares (`ETag` / `If-Match`) to push a whole
//! set atomically and to detect that someone else changed a flow in between.
//!
//! # Revision
//!
//! The revision lives in the store's meta tree under [`REVISION_KEY`]. Every change (create,
//! update, delete, import) takes the set's lock, writes `revision + 1`, then commits the
//! change with its `flow_*` events in one batch. Bumping *before* the commit means a crash in
//! between leaves a revision that moved without a change (a controller sees a spurious
//! conflict and re-reads) rather than a change the revision does not show (a controller would
//! overwrite it unknowingly). The lock makes "compare, then change" atomic for imports.
//!
//! # Bindings
//!
//! Number bindings (`call_flow_id`, `message_flow_id`) and queues' `wait_flow_id` must never
//! point at a missing flow: deleting a bound flow, or importing a set without it, is refused
//! with the bindings named ([`FlowSetError::InUse`]). The number and queue handlers take
//! [`FlowSet::lock`] while they check that the flows they bind exist, so a concurrent delete
//! cannot slip between check and write.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, SecondsFormat, Utc};
use flowgate_flows::model::Flow;
use flowgate_flows::validate::{FlowError, ValidateOptions, validate};
use parking_lot::{Mutex, MutexGuard};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::store::{Batch, Db, StoreError};

/// Meta-tree key of the flow-set revision.
pub const REVISION_KEY: &str = "flowset_revision";

/// Most flows the gateway stores (VoIPBIN's per-customer cap).
pub const MAX_FLOWS: usize = 10_000;

/// Why a flow-set change was refused.
#[derive(Debug, thiserror::Error)]
pub enum FlowSetError {
    /// No flow with this id.
    #[error("flow {0} does not exist")]
    NotFound(Uuid),
    /// A flow with this id exists already.
    #[error("flow {0} already exists")]
    Duplicate(Uuid),
    /// The body names another flow than the path.
    #[error("the flow id in the body ({body}) differs from the id in the path ({path})")]
    IdMismatch {
        /// Id in the URL.
        path: Uuid,
        /// Id in the body.
        body: Uuid,
    },
    /// Number or queue bindings would point at flows that no longer exist.
    #[error("{} binding(s) use flows that would disappear", .0.len())]
    InUse(Vec<FlowUse>),
    /// The set changed since the revision the client knows.
    #[error("the flow set is at revision {current}, the request expected {expected}")]
    RevisionMismatch {
        /// What the client sent in `If-Match`.
        expected: u64,
        /// The stored revision.
        current: u64,
    },
    /// An imported set has invalid flows; every problem with its path (`flows[2].actions[0].type`).
    #[error("the flow set is invalid ({} problem(s))", .0.len())]
    Invalid(Vec<FlowError>),
    /// The all-zero id means "no flow" in number bindings, so no flow may have it.
    #[error("the all-zero flow id means \"no flow\" and cannot name a flow")]
    NilId,
    /// The gateway stores at most [`MAX_FLOWS`] flows.
    #[error("at most {0} flows can be stored")]
    TooMany(usize),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A number binding that uses a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowUse {
    /// The flow.
    pub flow_id: Uuid,
    /// What uses it: `numbers` or `queues` (the API collection).
    pub owner: &'static str,
    /// The number or queue record.
    pub owner_id: Uuid,
    /// The number (or modem), or the queue's name, as shown to people.
    pub label: String,
    /// `call_flow_id`, `message_flow_id` or `wait_flow_id`.
    pub field: &'static str,
}

impl std::fmt::Display for FlowUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let owner = self.owner.trim_end_matches('s');
        write!(
            f,
            "flow {} is the {} of {owner} {} ({})",
            self.flow_id, self.field, self.owner_id, self.label
        )
    }
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ImportSummary {
    /// The revision after the import (unchanged when the set was already equal).
    pub revision: u64,
    /// Flows that were new.
    pub created: usize,
    /// Flows that changed.
    pub updated: usize,
    /// Flows removed because the set no longer has them.
    pub deleted: usize,
    /// Flows that were already equal.
    pub unchanged: usize,
}

/// The stored flows with their revision. Cheap to share (`Arc` it); one per process.
pub struct FlowSet {
    db: Db,
    lock: Mutex<()>,
}

impl FlowSet {
    /// The flow set over `db`.
    pub fn new(db: Db) -> Self {
        Self {
            db,
            lock: Mutex::new(()),
        }
    }

    /// Serialises flow-set changes. Held by the number handlers while they check that the
    /// flows they bind exist. Never held across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock()
    }

    /// The current revision (0 for a store that never had a flow change).
    pub fn revision(&self) -> Result<u64, StoreError> {
        Ok(self.db.store.meta_get::<u64>(REVISION_KEY)?.unwrap_or(0))
    }

    /// Stores a new flow (the id is assigned when missing) with `type`, `tm_create` and
    /// `tm_update` set, and emits `flow_created`.
    pub fn create(&self, mut flow: Flow) -> Result<Flow, FlowSetError> {
        let id = *flow.id.get_or_insert_with(Uuid::now_v7);
        if id.is_nil() {
            return Err(FlowSetError::NilId);
        }
        let now = Utc::now();
        stamp(&mut flow, now, now);
        let _guard = self.lock();
        if self.db.flows.contains(id)? {
            return Err(FlowSetError::Duplicate(id));
        }
        if self.db.flows.len() >= MAX_FLOWS {
            return Err(FlowSetError::TooMany(MAX_FLOWS));
        }
        let mut batch = Batch::new();
        batch.put(&self.db.flows, id, &flow)?;
        batch.event("flow_created", id, flow_json(&flow));
        self.commit_bumped(batch)?;
        Ok(flow)
    }

    /// Replaces flow `id` (keeping its `tm_create`) and emits `flow_updated`.
    pub fn update(&self, id: Uuid, mut flow: Flow) -> Result<Flow, FlowSetError> {
        match flow.id {
            Some(body) if body != id => return Err(FlowSetError::IdMismatch { path: id, body }),
            _ => flow.id = Some(id),
        }
        let _guard = self.lock();
        let existing = self.db.flows.get(id)?.ok_or(FlowSetError::NotFound(id))?;
        stamp(
            &mut flow,
            created_at(&existing).unwrap_or_else(Utc::now),
            Utc::now(),
        );
        let mut batch = Batch::new();
        batch.put(&self.db.flows, id, &flow)?;
        batch.event("flow_updated", id, flow_json(&flow));
        self.commit_bumped(batch)?;
        Ok(flow)
    }

    /// Deletes flow `id` unless a number binding uses it; emits `flow_deleted`.
    pub fn delete(&self, id: Uuid) -> Result<Flow, FlowSetError> {
        let _guard = self.lock();
        let existing = self.db.flows.get(id)?.ok_or(FlowSetError::NotFound(id))?;
        let uses = self.bindings_using(|flow| flow == id)?;
        if !uses.is_empty() {
            return Err(FlowSetError::InUse(uses));
        }
        let mut batch = Batch::new();
        batch.remove(&self.db.flows, id);
        batch.event("flow_deleted", id, flow_json(&existing));
        self.commit_bumped(batch)?;
        Ok(existing)
    }

    /// The whole set and its revision, read consistently.
    pub fn export(&self) -> Result<(u64, Vec<Flow>), StoreError> {
        let _guard = self.lock();
        let revision = self.revision()?;
        let flows = self
            .db
            .flows
            .iter()
            .map(|e| e.map(|(_, f)| f))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((revision, flows))
    }

    /// Parses and validates an imported set: every flow needs its `id` (the set is matched by
    /// id), ids are unique, each flow is valid. All problems are reported at once, with paths
    /// under `flows[i]`.
    pub fn parse_set(
        values: Vec<Value>,
        opts: &ValidateOptions,
    ) -> Result<Vec<Flow>, FlowSetError> {
        if values.len() > MAX_FLOWS {
            return Err(FlowSetError::TooMany(MAX_FLOWS));
        }
        let mut problems = Vec::new();
        let mut flows = Vec::with_capacity(values.len());
        let mut seen: HashMap<Uuid, usize> = HashMap::new();
        for (i, value) in values.into_iter().enumerate() {
            let at = |path: &str| {
                if path.is_empty() {
                    format!("flows[{i}]")
                } else {
                    format!("flows[{i}].{path}")
                }
            };
            // The id is checked on the raw value so a flow that does not parse is still
            // told that it lacks one.
            if matches!(value.get("id"), None | Some(Value::Null)) {
                problems.push(FlowError::new(
                    at("id"),
                    "a flow in a synced set needs its `id`",
                ));
            }
            let flow = match Flow::from_value(value, &opts.limits) {
                Ok(flow) => flow,
                Err(e) => {
                    problems.extend(
                        e.problems()
                            .into_iter()
                            .map(|p| FlowError::new(at(&p.path), p.message)),
                    );
                    continue;
                }
            };
            problems.extend(
                validate(&flow, opts)
                    .errors
                    .into_iter()
                    .map(|p| FlowError::new(at(&p.path), p.message)),
            );
            if let Some(id) = flow.id
                && let Some(first) = seen.insert(id, i)
            {
                problems.push(FlowError::new(
                    at("id"),
                    format!("flow {id} appears twice (also flows[{first}])"),
                ));
            }
            flows.push(flow);
        }
        if problems.is_empty() {
            Ok(flows)
        } else {
            Err(FlowSetError::Invalid(problems))
        }
    }

    /// Replaces the whole set with `flows` (parsed by [`FlowSet::parse_set`]) if the revision
    /// is still `expected` (`None`: unconditionally, `If-Match: *`). All or nothing: one
    /// batch with a `flow_created/updated/deleted` event per change; equal flows are left
    /// alone, and the revision moves only when something changed.
    pub fn import(
        &self,
        expected: Option<u64>,
        flows: Vec<Flow>,
    ) -> Result<ImportSummary, FlowSetError> {
        if flows.iter().any(|f| f.id.is_some_and(|id| id.is_nil())) {
            return Err(FlowSetError::NilId);
        }
        let _guard = self.lock();
        let current = self.revision()?;
        if let Some(expected) = expected.filter(|e| *e != current) {
            return Err(FlowSetError::RevisionMismatch { expected, current });
        }
        let incoming: HashSet<Uuid> = flows.iter().filter_map(|f| f.id).collect();
        let uses = self.bindings_using(|flow| !incoming.contains(&flow))?;
        if !uses.is_empty() {
            return Err(FlowSetError::InUse(uses));
        }
        let mut existing: HashMap<Uuid, Flow> = HashMap::new();
        for entry in self.db.flows.iter() {
            let (id, flow) = entry?;
            existing.insert(id, flow);
        }
        let now = Utc::now();
        let mut summary = ImportSummary {
            revision: current,
            created: 0,
            updated: 0,
            deleted: 0,
            unchanged: 0,
        };
        let mut batch = Batch::new();
        for mut flow in flows {
            let Some(id) = flow.id else { continue };
            match existing.remove(&id) {
                Some(old) if same_content(&old, &flow) => summary.unchanged += 1,
                Some(old) => {
                    stamp(&mut flow, created_at(&old).unwrap_or(now), now);
                    batch.put(&self.db.flows, id, &flow)?;
                    batch.event("flow_updated", id, flow_json(&flow));
                    summary.updated += 1;
                }
                None => {
                    stamp(&mut flow, now, now);
                    batch.put(&self.db.flows, id, &flow)?;
                    batch.event("flow_created", id, flow_json(&flow));
                    summary.created += 1;
                }
            }
        }
        // Deterministic event order for the deleted ones (ids are time-ordered UUIDv7 mostly).
        let mut gone: Vec<(Uuid, Flow)> = existing.into_iter().collect();
        gone.sort_by_key(|(id, _)| *id);
        for (id, old) in gone {
            batch.remove(&self.db.flows, id);
            batch.event("flow_deleted", id, flow_json(&old));
            summary.deleted += 1;
        }
        if !batch.is_empty() {
            summary.revision = self.commit_bumped(batch)?;
        }
        Ok(summary)
    }

    /// Bindings whose flow is `gone`: numbers' call and message flows, and queues' wait
    /// flows (a queue whose wait flow vanished would fall back to music on hold silently).
    fn bindings_using(&self, gone: impl Fn(Uuid) -> bool) -> Result<Vec<FlowUse>, StoreError> {
        let mut uses = Vec::new();
        let mut push = |owner, owner_id, label: &str, field, flow: Option<Uuid>| {
            if let Some(flow_id) = flow.filter(|f| gone(*f)) {
                uses.push(FlowUse {
                    flow_id,
                    owner,
                    owner_id,
                    label: label.to_owned(),
                    field,
                });
            }
        };
        for entry in self.db.numbers.iter() {
            let (number_id, number) = entry?;
            let label = if number.number.is_empty() {
                format!("modem {}", number.modem_id)
            } else {
                number.number.clone()
            };
            push(
                "numbers",
                number_id,
                &label,
                "call_flow_id",
                number.call_flow_id,
            );
            push(
                "numbers",
                number_id,
                &label,
                "message_flow_id",
                number.message_flow_id,
            );
        }
        for entry in self.db.queues.iter() {
            let (queue_id, queue) = entry?;
            push(
                "queues",
                queue_id,
                &queue.name,
                "wait_flow_id",
                queue.wait_flow_id,
            );
        }
        Ok(uses)
    }

    /// Bumps the revision, then commits (see the module docs for the order). Call with the
    /// lock held. Returns the new revision.
    fn commit_bumped(&self, batch: Batch) -> Result<u64, StoreError> {
        let next = self.revision()?.saturating_add(1);
        self.db.store.meta_put(REVISION_KEY, &next)?;
        self.db.store.commit(batch)?;
        Ok(next)
    }
}

/// Server-owned fields of a stored flow (kept in the flow's extra fields, VoIPBIN's names).
const SERVER_FIELDS: [&str; 3] = ["type", "tm_create", "tm_update"];

/// Sets `type: "flow"` and the timestamps (RFC 3339, microseconds, UTC).
fn stamp(flow: &mut Flow, created: DateTime<Utc>, updated: DateTime<Utc>) {
    for field in SERVER_FIELDS {
        flow.extra.shift_remove(field);
    }
    flow.extra
        .insert("type".into(), Value::String("flow".into()));
    flow.extra.insert(
        "tm_create".into(),
        Value::String(created.to_rfc3339_opts(SecondsFormat::Micros, true)),
    );
    flow.extra.insert(
        "tm_update".into(),
        Value::String(updated.to_rfc3339_opts(SecondsFormat::Micros, true)),
    );
}

fn created_at(flow: &Flow) -> Option<DateTime<Utc>> {
    let text = flow.extra.get("tm_create")?.as_str()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Equal apart from the server-owned fields.
fn same_content(stored: &Flow, incoming: &Flow) -> bool {
    let strip = |f: &Flow| {
        let mut f = f.clone();
        for field in SERVER_FIELDS {
            f.extra.shift_remove(field);
        }
        serde_json::to_value(&f).unwrap_or(Value::Null)
    };
    strip(stored) == strip(incoming)
}

/// A flow's JSON for events and responses.
pub fn flow_json(flow: &Flow) -> Value {
    serde_json::to_value(flow).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn flow(id: Option<Uuid>, name: &str) -> Flow {
        let mut text = serde_json::json!({"name": name, "actions": [{"type": "answer"}]});
        if let Some(id) = id {
            text["id"] = Value::String(id.to_string());
        }
        Flow::from_value(text, &Default::default()).unwrap()
    }

    fn set() -> (FlowSet, Db) {
        let db = Db::new(Store::temporary().unwrap()).unwrap();
        (FlowSet::new(db.clone()), db)
    }

    #[test]
    fn every_change_bumps_the_revision_and_logs_an_event() {
        let (set, db) = set();
        assert_eq!(set.revision().unwrap(), 0);
        let created = set.create(flow(None, "a")).unwrap();
        let id = created.id.unwrap();
        assert_eq!(created.extra["type"], "flow");
        assert_eq!(set.revision().unwrap(), 1);
        let updated = set.update(id, flow(None, "b")).unwrap();
        assert_eq!(updated.extra["tm_create"], created.extra["tm_create"]);
        assert_eq!(set.revision().unwrap(), 2);
        set.delete(id).unwrap();
        assert_eq!(set.revision().unwrap(), 3);
        let kinds: Vec<String> = db
            .store
            .events_after(0, 10)
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["flow_created", "flow_updated", "flow_deleted"]);
        assert!(matches!(set.delete(id), Err(FlowSetError::NotFound(_))));
        assert!(matches!(
            set.update(id, flow(Some(Uuid::now_v7()), "x")),
            Err(FlowSetError::IdMismatch { .. })
        ));
    }

    #[test]
    fn import_is_all_or_nothing_and_checks_the_revision() {
        let (set, db) = set();
        let keep = set.create(flow(None, "keep")).unwrap();
        let drop = set.create(flow(None, "drop")).unwrap();
        let new_id = Uuid::now_v7();
        let incoming = vec![keep.clone(), flow(Some(new_id), "new")];
        assert!(matches!(
            set.import(Some(1), incoming.clone()),
            Err(FlowSetError::RevisionMismatch {
                expected: 1,
                current: 2
            })
        ));
        let summary = set.import(Some(2), incoming.clone()).unwrap();
        assert_eq!(
            (
                summary.created,
                summary.updated,
                summary.deleted,
                summary.unchanged
            ),
            (1, 0, 1, 1)
        );
        assert_eq!(summary.revision, 3);
        assert!(db.flows.get(drop.id.unwrap()).unwrap().is_none());
        // Importing the same set again changes nothing, not even the revision.
        let again = set.import(Some(3), incoming).unwrap();
        assert_eq!((again.revision, again.unchanged), (3, 2));
    }

    #[test]
    fn bound_flows_cannot_disappear() {
        let (set, db) = set();
        let bound = set.create(flow(None, "bound")).unwrap().id.unwrap();
        let now = Utc::now();
        let number = crate::model::Number {
            number: "+15550001".into(),
            call_flow_id: Some(bound),
            ..crate::model::Number::new(now)
        };
        db.numbers.put(number.id, &number).unwrap();
        match set.delete(bound) {
            Err(FlowSetError::InUse(uses)) => assert_eq!(uses[0].field, "call_flow_id"),
            other => panic!("expected InUse, got {other:?}"),
        }
        assert!(matches!(
            set.import(None, vec![]),
            Err(FlowSetError::InUse(_))
        ));
        assert!(db.flows.contains(bound).unwrap());

        // A queue's wait flow is a binding too.
        let waited = set.create(flow(None, "wait")).unwrap().id.unwrap();
        let queue: crate::model::Queue = serde_json::from_value(serde_json::json!({
            "id": Uuid::now_v7(), "name": "support", "wait_flow_id": waited,
            "tm_create": now, "tm_update": now,
        }))
        .unwrap();
        db.queues.put(queue.id, &queue).unwrap();
        match set.delete(waited) {
            Err(FlowSetError::InUse(uses)) => {
                assert_eq!((uses[0].owner, uses[0].field), ("queues", "wait_flow_id"));
                assert_eq!(
                    uses[0].to_string(),
                    format!(
                        "flow {waited} is the wait_flow_id of queue {} (support)",
                        queue.id
                    )
                );
            }
            other => panic!("expected InUse, got {other:?}"),
        }
        assert!(db.flows.contains(waited).unwrap());
    }

    #[test]
    fn parse_set_reports_every_problem_with_its_path() {
        let id = Uuid::now_v7();
        let values = vec![
            serde_json::json!({"id": id, "actions": [{"type": "answer"}]}),
            serde_json::json!({"id": id, "actions": [{"type": "nope"}]}),
            serde_json::json!({"actions": []}),
        ];
        let Err(FlowSetError::Invalid(problems)) =
            FlowSet::parse_set(values, &ValidateOptions::default())
        else {
            panic!("expected problems")
        };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert!(
            paths.iter().any(|p| p.starts_with("flows[1].actions[0]")),
            "{paths:?}"
        );
        assert!(paths.contains(&"flows[2].id"), "{paths:?}");
    }
}
