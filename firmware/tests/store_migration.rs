//! A database written by the release before lines (schema 1) opens in this build: calls
//! and number bindings are migrated to name their line, and records that keep their shape
//! (messages with a prepared SMS in modem storage) still read.

use flowgate::model::TargetStatus;
use flowgate::store::{Db, SCHEMA_VERSION, Store, StoreOptions};
use flowgate_line::Transport;
use uuid::Uuid;

const CALL: &str = r#"{"id":"0190b7a0-0000-7000-8000-0000000000c1","modem_id":"sim0","direction":"incoming",
"source":{"type":"tel","target":"+15557654321","target_name":"","name":"","detail":""},
"destination":{"type":"tel","target":"+15550001000","target_name":"","name":"","detail":""},
"status":"hangup","flow_id":"00000000-0000-0000-0000-000000000000",
"activeflow_id":"00000000-0000-0000-0000-000000000000","master_call_id":"00000000-0000-0000-0000-000000000000",
"chained_call_ids":[],"recording_id":"00000000-0000-0000-0000-000000000000","recording_ids":[],
"hangup_by":"remote","hangup_reason":"normal","hold":false,"mute_direction":"",
"tm_create":"2026-11-01T10:00:00Z","tm_ringing":"2026-11-01T10:00:00Z","tm_progressing":null,
"tm_hangup":"2026-11-01T10:00:09Z","tm_update":"2026-11-01T10:00:09Z"}"#;

const NUMBER: &str = r#"{"id":"0190b7a0-0000-7000-8000-0000000000a1","number":"","modem_id":"sim0",
"call_flow_id":"f1000000-0000-4000-8000-000000000001","message_flow_id":"00000000-0000-0000-0000-000000000000",
"name":"","detail":"","status":"active","tm_create":"2026-11-01T09:00:00Z","tm_update":"2026-11-01T09:00:00Z"}"#;

const MESSAGE: &str = r#"{"id":"0190b7a0-0000-7000-8000-0000000000b1","type":"sms","direction":"outbound",
"source":{"type":"tel","target":"","target_name":"","name":"","detail":""},
"targets":[{"destination":{"type":"tel","target":"+15557654321","target_name":"","name":"","detail":""},
"status":"queued","parts":0,"references":[],"delivered_parts":0,"attempts":1,"next_attempt":null,
"prepared":{"modem":"sim0","mem":"ME","to":"+15557654321","key":"k1","parts":[{"index":3,"pdu":"0011000B915155674523F10000AA01C8","tpdu_len":15}]},
"error":"","tm_update":"2026-11-01T10:00:00Z"}],
"text":"Hi","modem_id":"sim0","tm_sent_by_network":null,"incomplete":false,"flow_state":"none",
"activeflow_id":"00000000-0000-0000-0000-000000000000","tm_create":"2026-11-01T10:00:00Z","tm_update":"2026-11-01T10:00:00Z"}"#;

fn id(s: &str) -> Uuid {
    Uuid::parse_str(s).expect("schema-1 fixture")
}

/// Writes the records as the schema-1 release stored them: JSON under the UUID's bytes.
fn write_v1(dir: &std::path::Path) {
    let db = sled::open(dir.join("db")).expect("schema-1 fixture");
    db.open_tree("meta")
        .expect("schema-1 fixture")
        .insert("schema_version", &1u32.to_be_bytes())
        .expect("schema-1 fixture");
    for (tree, key, json) in [
        ("calls", "0190b7a0-0000-7000-8000-0000000000c1", CALL),
        ("numbers", "0190b7a0-0000-7000-8000-0000000000a1", NUMBER),
        ("messages", "0190b7a0-0000-7000-8000-0000000000b1", MESSAGE),
    ] {
        let value: serde_json::Value = serde_json::from_str(json).expect("schema-1 fixture");
        db.open_tree(tree)
            .expect("schema-1 fixture")
            .insert(
                id(key).as_bytes(),
                serde_json::to_vec(&value).expect("schema-1 fixture"),
            )
            .expect("schema-1 fixture");
    }
    db.flush().expect("schema-1 fixture");
}

#[test]
fn a_schema_1_database_is_migrated_to_lines() {
    assert_eq!(SCHEMA_VERSION, 3);
    let dir = tempfile::tempdir().unwrap();
    write_v1(dir.path());

    let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
    let db = Db::new(store).unwrap();
    let call = db
        .calls
        .get(id("0190b7a0-0000-7000-8000-0000000000c1"))
        .unwrap()
        .unwrap();
    assert_eq!(call.line_id, "sim0");
    assert_eq!(call.transport, Transport::Modem);
    assert_eq!(call.modem_id, "sim0", "older clients still read modem_id");
    assert_eq!(call.hangup_reason, "normal");
    assert!(call.end_cause.is_none());

    let number = db
        .numbers
        .get(id("0190b7a0-0000-7000-8000-0000000000a1"))
        .unwrap()
        .unwrap();
    assert_eq!(number.line_id, "sim0");
    assert!(number.matches("sim0", "+19999"));

    let message = db
        .messages
        .get(id("0190b7a0-0000-7000-8000-0000000000b1"))
        .unwrap()
        .unwrap();
    let target = &message.targets[0];
    assert_eq!(target.status, TargetStatus::Queued);
    let prepared = target.prepared.as_ref().expect("the prepared SMS survives");
    assert_eq!(
        (prepared.modem.as_str(), prepared.parts[0].index),
        ("sim0", Some(3))
    );
    drop(db);

    // The version was written: a second open migrates nothing and reads the same.
    let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
    let db = Db::new(store).unwrap();
    let again = db
        .calls
        .get(id("0190b7a0-0000-7000-8000-0000000000c1"))
        .unwrap()
        .unwrap();
    assert_eq!(again, call);
}
