//! A database written by the release before lines (schema 1) opens in this build: calls
//! and number bindings are migrated to name their line, and records that keep their shape
//! (messages with a prepared SMS in modem storage) still read.

use flowgate::model::TargetStatus;
use flowgate::store::{Db, SCHEMA_VERSION, Store, StoreOptions};
use flowgate_line::Transport;
use uuid::Uuid;

/// Reopens the store. Its previous handle was dropped just before; `Store::open` waits for
/// sled to let go of the file (`store::LOCK_WAIT`).
fn reopen(dir: &std::path::Path) -> Store {
    Store::open(dir, &StoreOptions::default()).expect("reopen the store")
}

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
    let dir = tempfile::tempdir().unwrap();
    write_v1(dir.path());

    let store = reopen(dir.path());
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
    let store = reopen(dir.path());
    let db = Db::new(store).unwrap();
    let again = db
        .calls
        .get(id("0190b7a0-0000-7000-8000-0000000000c1"))
        .unwrap()
        .unwrap();
    assert_eq!(again, call);
}

/// An activeflow record as schema 3 stored it: the whole engine state, the flow's actions
/// in its main stack, LZ4-compressed when large. Built with the engine of this build (its
/// full serialization is schema 3's format), run until it waits.
fn schema_3_activeflow(
    id: Uuid,
    reference_type: flowgate_flows::model::ReferenceType,
    actions: &str,
) -> flowgate::model::ActiveflowRecord {
    use flowgate_flows::engine::{Activeflow, ActiveflowSpec, Guards, Step};
    let limits = flowgate_flows::limits::Limits::default();
    let spec = ActiveflowSpec {
        id,
        reference_type,
        reference_id: Uuid::from_u128(0xca11),
        actions: flowgate_flows::model::parse_actions(actions, &limits).expect("schema-3 fixture"),
        ..ActiveflowSpec::default()
    };
    let mut engine = Activeflow::new(spec, &Guards::default()).expect("schema-3 fixture");
    let now = chrono::Utc::now();
    assert!(matches!(engine.run(now), Step::Blocked | Step::Execute(_)));
    flowgate::model::ActiveflowRecord {
        id,
        flow_id: None,
        status: flowgate::model::ActiveflowStatus::Running,
        reference_type,
        reference_id: Some(Uuid::from_u128(0xca11)),
        reference_activeflow_id: None,
        webhook_uri: String::new(),
        webhook_method: String::new(),
        end_reason: None,
        tm_create: now,
        tm_update: now,
        tm_end: None,
        engine,
    }
}

/// Schema 3 kept each activeflow's actions in the record rewritten at every step; schema 4
/// stores them once, apart. A running API flow written by schema 3 is migrated, reads the
/// same through the API, and resumes after the restart exactly where it was; a call flow
/// is ended by the recovery as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_3_activeflow_is_migrated_and_resumes_where_it_was() {
    use flowgate::model::ActiveflowStatus;
    use flowgate::runtime::{Modems, Runtime, RuntimeOptions};
    use flowgate_flows::engine::EndReason;
    use flowgate_flows::model::ReferenceType;

    assert_eq!(SCHEMA_VERSION, 4);
    let api_flow = Uuid::from_u128(0x0190_b7a0_0000_7000_8000_0000_0000_00f1);
    let call_flow = Uuid::from_u128(0x0190_b7a0_0000_7000_8000_0000_0000_00f2);
    let block = Uuid::from_u128(0xb10c);
    // Enough actions that schema 3 compressed the record.
    let padding: Vec<String> = (0..40)
        .map(|i| format!(r#"{{"type":"variable_set","option":{{"key":"pad{i}","value":"{i}"}}}}"#))
        .collect();
    let api_actions = format!(
        r#"[{},{{"type":"variable_set","option":{{"key":"before","value":"1"}}}},
        {{"id":"{block}","type":"block"}},
        {{"type":"variable_set","option":{{"key":"after","value":"${{before}}2"}}}}]"#,
        padding.join(",")
    );
    let api = schema_3_activeflow(api_flow, ReferenceType::Api, &api_actions);
    let call = schema_3_activeflow(
        call_flow,
        ReferenceType::Call,
        r#"[{"type":"talk","option":{"text":"Hello"}},{"type":"hangup"}]"#,
    );
    let api_view = serde_json::to_value(api.public()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path().join("db")).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", &3u32.to_be_bytes())
            .unwrap();
        let tree = db.open_tree("activeflows").unwrap();
        for record in [&api, &call] {
            let json = serde_json::to_vec(record).unwrap();
            assert!(
                String::from_utf8_lossy(&json).contains(r#""actions":["#),
                "schema 3 kept the actions in the record"
            );
            let stored = flowgate::store::codec::pack(json);
            tree.insert(record.id.as_bytes(), stored).unwrap();
        }
        assert_eq!(
            tree.get(api_flow.as_bytes()).unwrap().unwrap()[0],
            0,
            "packed"
        );
        db.flush().unwrap();
    }

    let store = reopen(dir.path());
    let db = Db::new(store).unwrap();
    for record in [&api, &call] {
        let stored = db.activeflows.get(record.id).unwrap().unwrap();
        assert!(
            stored.engine.main_actions_missing(),
            "the state no longer carries the actions"
        );
        assert_eq!(
            db.activeflow_actions.get(record.id).unwrap().unwrap(),
            record.engine.main_actions(),
            "the actions are stored apart, unchanged"
        );
    }
    // The API answers the same JSON for the migrated record.
    let migrated = db.activeflows.get(api_flow).unwrap().unwrap();
    assert_eq!(serde_json::to_value(migrated.public()).unwrap(), api_view);

    let cancel = tokio_util::sync::CancellationToken::new();
    let runtime = Runtime::new(
        db.clone(),
        Modems::new(vec![]),
        RuntimeOptions::default(),
        std::sync::Arc::new(flowgate::metrics::Metrics::default()),
        cancel.child_token(),
    );
    let mut seq = db.store.watch_seq();
    let report = runtime.recover().await.unwrap();
    assert_eq!((report.resumed, report.ended_calls), (1, 1));
    let ended_call = db.activeflows.get(call_flow).unwrap().unwrap();
    assert_eq!(ended_call.status, ActiveflowStatus::Ended);
    assert!(
        matches!(&ended_call.end_reason, Some(EndReason::Stopped(r)) if r.contains("restarted")),
        "{:?}",
        ended_call.end_reason
    );

    // The resumed flow waits at its block, and goes on from there with what it had.
    runtime.continue_block(api_flow, block).await.unwrap();
    let ended = loop {
        let record = db.activeflows.get(api_flow).unwrap().unwrap();
        if record.status == ActiveflowStatus::Ended {
            break record;
        }
        tokio::time::timeout(std::time::Duration::from_secs(30), seq.changed())
            .await
            .expect("the resumed flow ends")
            .unwrap();
    };
    assert_eq!(ended.end_reason, Some(EndReason::Finished));
    assert_eq!(ended.engine.variable("before"), Some("1"));
    assert_eq!(ended.engine.variable("after"), Some("12"));
    assert_eq!(ended.engine.variable("pad39"), Some("39"));
    assert!(
        ended.engine.main_actions_missing(),
        "steps after the migration still store the state without its actions"
    );
    cancel.cancel();
    runtime.wait_stopped().await;
    drop(runtime);
    drop(db);

    // The version was written: a second open finds nothing to migrate.
    let store = reopen(dir.path());
    let db = Db::new(store).unwrap();
    assert_eq!(db.activeflow_actions.len(), 2);
    assert_eq!(
        db.activeflow_actions.get(api_flow).unwrap().unwrap(),
        api.engine.main_actions()
    );
}
