//! Schema migrations: a database written by an older release is brought to
//! [`super::SCHEMA_VERSION`] when it is opened.
//!
//! Migrations work on the records' raw JSON, never through today's model types: a migration
//! describes what an old release wrote, and must keep working however the model changes
//! later. Each step only fills in what is missing, so a step interrupted by a crash simply
//! runs again at the next start; the version is written after the step's data is.

use serde_json::{Map, Value};
use sled::Transactional;

use super::{StoreError, codec};

/// Brings the data from schema `from` to the newest; returns the version reached.
pub(super) fn run(db: &sled::Db, from: u32) -> Result<u32, StoreError> {
    let mut version = from;
    if version < 2 {
        v1_lines(db)?;
        version = 2;
    }
    if version < 3 {
        // v2 → v3: large values are written LZ4-compressed from now on (`super::codec`);
        // plain JSON still reads, so nothing is converted. The steps above see only plain
        // JSON: no release before 3 compressed anything.
        version = 3;
    }
    if version < 4 {
        v3_actions_apart(db)?;
        version = 4;
    }
    Ok(version)
}

/// v3 → v4: an activeflow's main actions (its flow, which never changes) move out of the
/// record rewritten at every step into `activeflow_actions`, under the same key and as the
/// same JSON (`engine.stacks[0].actions`). Records already without them are left alone.
fn v3_actions_apart(db: &sled::Db) -> Result<(), StoreError> {
    let open = |name| {
        db.open_tree(name).map_err(|source| StoreError::Sled {
            op: "open tree",
            source,
        })
    };
    let activeflows = open("activeflows")?;
    let actions = open("activeflow_actions")?;
    for entry in activeflows.iter() {
        let (key, bytes) = entry.map_err(|source| StoreError::Sled { op: "scan", source })?;
        let corrupt = |reason: String| StoreError::Corrupt {
            table: "activeflows",
            key: hex::encode(&key),
            reason: format!("migrating: {reason}"),
        };
        let json = codec::unpack(&bytes).map_err(&corrupt)?;
        let mut record: Value =
            serde_json::from_slice(&json).map_err(|e| corrupt(e.to_string()))?;
        let main = record
            .pointer_mut("/engine/stacks/0")
            .and_then(Value::as_object_mut)
            .filter(|stack| stack.get("return_stack").is_none_or(Value::is_null));
        let Some(main_actions) = main.and_then(|stack| stack.remove("actions")) else {
            continue;
        };
        let encode = |value: &Value, table| {
            serde_json::to_vec(value)
                .map(codec::pack)
                .map_err(|source| StoreError::Encode { table, source })
        };
        let main_actions = encode(&main_actions, "activeflow_actions")?;
        let record = encode(&record, "activeflows")?;
        // Both or neither: a crash in between must not leave a state without its actions.
        let written: sled::transaction::TransactionResult<(), std::convert::Infallible> =
            (&actions, &activeflows).transaction(|(actions, activeflows)| {
                actions.insert(key.as_ref(), main_actions.as_slice())?;
                activeflows.insert(key.as_ref(), record.as_slice())?;
                Ok(())
            });
        match written {
            Ok(()) => {}
            Err(sled::transaction::TransactionError::Storage(source)) => {
                return Err(StoreError::Sled {
                    op: "migrate",
                    source,
                });
            }
            Err(sled::transaction::TransactionError::Abort(never)) => match never {},
        }
    }
    Ok(())
}

/// v1 → v2: calls and number bindings name their *line* (modems, SIP, analog ports), not
/// only their modem. Calls get `line_id` (the modem id) and `transport: "modem"`; number
/// bindings by modem get `line_id`.
fn v1_lines(db: &sled::Db) -> Result<(), StoreError> {
    rewrite(db, "calls", |record| {
        let modem = text(record, "modem_id");
        let mut changed = false;
        if !record.contains_key("line_id") {
            record.insert("line_id".into(), Value::String(modem));
            changed = true;
        }
        if !record.contains_key("transport") {
            record.insert("transport".into(), Value::String("modem".into()));
            changed = true;
        }
        changed
    })?;
    rewrite(db, "numbers", |record| {
        if record.contains_key("line_id") {
            return false;
        }
        let modem = text(record, "modem_id");
        record.insert("line_id".into(), Value::String(modem));
        true
    })
}

fn text(record: &Map<String, Value>, key: &str) -> String {
    record
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Applies `change` to every record of `tree` (JSON objects) and writes back the ones it
/// changed.
fn rewrite(
    db: &sled::Db,
    tree: &'static str,
    mut change: impl FnMut(&mut Map<String, Value>) -> bool,
) -> Result<(), StoreError> {
    let tree_handle = db.open_tree(tree).map_err(|source| StoreError::Sled {
        op: "open tree",
        source,
    })?;
    for entry in tree_handle.iter() {
        let (key, bytes) = entry.map_err(|source| StoreError::Sled { op: "scan", source })?;
        let mut value: Value = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            table: tree,
            key: hex::encode(&key),
            reason: format!("migrating: {e}"),
        })?;
        let Some(record) = value.as_object_mut() else {
            return Err(StoreError::Corrupt {
                table: tree,
                key: hex::encode(&key),
                reason: "migrating: the record is not a JSON object".into(),
            });
        };
        if change(record) {
            let bytes = serde_json::to_vec(&value).map_err(|source| StoreError::Encode {
                table: tree,
                source,
            })?;
            tree_handle
                .insert(key, bytes)
                .map_err(|source| StoreError::Sled {
                    op: "insert",
                    source,
                })?;
        }
    }
    Ok(())
}
