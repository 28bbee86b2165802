//! Driver against the simulator over a real pty: init, identity, status.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use common::Rig;
use flowgate_board::modem::at::types::{RegStatus, SimState};
use flowgate_board::simulator::SimulatedModel;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_and_identity_quectel() {
    let rig = Rig::start(SimulatedModel::QuectelEc25).await;
    rig.ready().await;
    let s = rig.modem.status();
    assert_eq!(s.identity.manufacturer.as_deref(), Some("Quectel"));
    assert_eq!(s.identity.model.as_deref(), Some("EC25"));
    assert_eq!(s.identity.firmware.as_deref(), Some("EC25EFAR06A06M4G"));
    assert_eq!(s.identity.imei.as_deref(), Some("867962040123456"));
    assert_eq!(s.identity.imsi.as_deref(), Some("310260000000001"));
    assert_eq!(s.identity.iccid.as_deref(), Some("89014103211118510720"));
    assert_eq!(s.identity.own_number.as_deref(), Some("+15550001000"));
    assert_eq!(s.sim, SimState::Ready);
    assert_eq!(s.registration.map(|r| r.status), Some(RegStatus::Home));
    assert_eq!(s.eps_registration.map(|r| r.status), Some(RegStatus::Home));
    assert_eq!(s.operator.as_deref(), Some("Flowgate Sim"));
    assert_eq!(s.signal.and_then(|x| x.dbm), Some(-73));
    assert!(s.is_registered());
    // The status serializes for the API.
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["state"]["state"], "ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_and_identity_huawei() {
    let rig = Rig::start(SimulatedModel::HuaweiE1550).await;
    rig.ready().await;
    let s = rig.modem.status();
    assert_eq!(s.identity.manufacturer.as_deref(), Some("huawei"));
    assert_eq!(s.identity.model.as_deref(), Some("E1550"));
    assert_eq!(s.identity.iccid.as_deref(), Some("89014103211118510720"));
    assert_eq!(s.eps_registration, None);
    assert_eq!(s.registration.map(|r| r.status), Some(RegStatus::Home));
    // The Huawei sim says COMMAND NOT SUPPORT to +CEREG: init tolerated it.
    assert!(rig.ctl.commands().iter().any(|c| c == "AT+CMEE=1"));
}
