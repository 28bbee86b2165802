//! The disk budget seen from outside: a full disk refuses new work with `507 DISK_FULL` while
//! the gateway keeps serving, and an inbound SMS that cannot be stored is not acknowledged —
//! it stays on the modem and is stored once there is room.
//!
//! The verdict is set directly on the store's `DiskGuard` (what the budget task does after
//! measuring), so the tests do not need a full file system.

mod api_support;

use api_support::{Gateway, WAIT, assert_error};
use flowgate::runtime::Modems;
use flowgate::store::DiskState;
use flowgate_board::modem::Modem;
use flowgate_board::simulator::{Simulator, SimulatorConfig};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const MIB: u64 = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_new_work_with_507_and_keeps_serving() {
    let gw = Gateway::start().await;
    let flow_id = gw
        .create_flow(json!([{"type": "variable_set", "option": {"key": "a", "value": "1"}}]))
        .await;
    let guard = gw.db.store.disk_guard().clone();
    guard.set(DiskState::Full, 1030 * MIB, 1024 * MIB);

    let refused = gw
        .post("/v1.0/activeflows", json!({"flow_id": flow_id}))
        .await;
    assert_error(&refused, StatusCode::INSUFFICIENT_STORAGE, "DISK_FULL");
    let message = refused.1["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("1030 MiB") && message.contains("max_disk_mib"),
        "{message}"
    );
    let refused = gw
        .post("/v1.0/flows", json!({"name": "g", "actions": []}))
        .await;
    assert_error(&refused, StatusCode::INSUFFICIENT_STORAGE, "DISK_FULL");
    assert_eq!(gw.db.activeflows.len(), 0);

    // Reads and the rest of the API go on.
    let (status, flows) = gw.get("/v1.0/flows").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(flows["result"].as_array().map(Vec::len), Some(1));
    let (status, _) = gw.get(&format!("/v1.0/flows/{flow_id}")).await;
    assert_eq!(status, StatusCode::OK);

    // Room again: the same request succeeds.
    guard.set(DiskState::Pressure, 950 * MIB, 1024 * MIB);
    let created = gw
        .ok(
            Method::POST,
            "/v1.0/activeflows",
            Some(json!({"flow_id": flow_id})),
        )
        .await;
    let id = created["id"].as_str().expect("id").to_owned();
    gw.wait_ended(&id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_that_cannot_be_stored_stays_on_the_modem_until_there_is_room() {
    api_support::init_tracing();
    let sim = Simulator::start(SimulatorConfig::default()).expect("simulator");
    let cancel = CancellationToken::new();
    let mut modem_config = sim.modem_config("m0");
    // The driver hands an unacknowledged message out again at its next sweep.
    modem_config.sms.sweep_interval_ms = 1_000;
    let modem = Modem::spawn(modem_config, sim.vendor_profile(), cancel.child_token());
    modem.wait_ready(WAIT).await.expect("modem ready");
    let control = sim.control();
    let mut gw = Gateway::start_full(
        |_| {},
        Modems::new(vec![modem]),
        Some(control.clone()),
        cancel,
    )
    .await;
    gw.sim = Some(sim);

    let guard = gw.db.store.disk_guard().clone();
    guard.set(DiskState::Full, 1030 * MIB, 1024 * MIB);
    let mut refusals = guard.refusals();
    let after = gw.last_seq();
    control
        .send_sms("+15557654321", "kept on the modem")
        .expect("inject");

    // The gateway tried, the store refused, and nothing was acknowledged.
    tokio::time::timeout(WAIT, refusals.wait_for(|n| *n >= 1))
        .await
        .expect("the store was asked to keep the SMS")
        .expect("guard");
    assert_eq!(gw.db.messages.len(), 0);
    assert_eq!(gw.db.sms_seen.len(), 0);
    assert_eq!(
        control.stored().len(),
        1,
        "the SMS must stay in the modem's storage"
    );

    // Room again: the next sweep hands it out, and it is stored once.
    guard.set(DiskState::Ok, 100 * MIB, 1024 * MIB);
    let event = gw
        .wait_event(after, |e| e["type"] == "message_created")
        .await;
    assert_eq!(event["data"]["text"], "kept on the modem");
    assert_eq!(gw.db.messages.len(), 1);
}
