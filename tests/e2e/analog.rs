//! Analog ports on the default simulated board (an Si3215 with a telephone as `fxs0`,
//! extension 200; an Si3050 on an exchange line as `fxo0`), driven through the analog
//! simulator API: a phone dials an extension bound to an IVR and presses a digit; the
//! exchange line rings with caller ID and the flow connects it to a GSM number through the
//! simulated modem; hang-ups on either side release both legs and the ports. A GSM caller
//! put through to the phone is handed to a second GSM party by a consultation transfer
//! (flash, dial, hang up).

use flowgate_tests::{Gateway, WAIT};
use serde_json::{Value, json};

use crate::connect::{exchange_tones, tone, tone_share};

const B1: &str = "00000000-0000-4000-8000-0000000000c1";
const B2: &str = "00000000-0000-4000-8000-0000000000c2";
const BF: &str = "00000000-0000-4000-8000-0000000000cf";

/// The GSM number the analog caller is connected to (the simulated network answers it).
const GSM: &str = "+15557778888";

/// An IVR: the caller's digit (DTMF from the phone, found in the audio) picks the branch.
fn ivr() -> Value {
    json!({"name": "analog ivr", "detail": "", "actions": [
        {"type": "answer"},
        {"type": "digits_receive", "option": {"duration": 60000, "length": 1}},
        {"type": "branch", "option": {"target_ids": {"1": B1, "2": B2}, "default_target_id": BF}},
        {"id": BF, "type": "variable_set", "option": {"key": "choice", "value": "invalid"}},
        {"type": "hangup"},
        {"id": B1, "type": "variable_set", "option": {"key": "choice", "value": "sales"}},
        {"type": "hangup"},
        {"id": B2, "type": "variable_set", "option": {"key": "choice", "value": "support"}},
        {"type": "hangup"}]})
}

/// Answers the exchange line's caller and connects it to the GSM number; after the bridge the
/// flow notes it and hangs up.
fn connect_to_gsm() -> Value {
    json!({"name": "landline to mobile", "detail": "", "actions": [
        {"type": "answer"},
        {"type": "connect", "option": {
            "source": {"type": "tel", "target": ""},
            "destinations": [{"type": "tel", "target": GSM}]}},
        {"type": "variable_set", "option": {"key": "after", "value": "connect"}},
        {"type": "hangup"}]})
}

/// The port's state in `GET /v1.0/gateway/lines`.
async fn port(gw: &Gateway, id: &str) -> Value {
    let lines = gw.api().get("/v1.0/gateway/lines").await;
    lines["result"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["id"] == id))
        .map(|l| l["analog"].clone())
        .unwrap_or_default()
}

/// Waits until the port is idle (on-hook, no call, no leg).
async fn idle(gw: &Gateway, id: &str) {
    gw.api()
        .wait_for(&format!("{id} to be idle"), || async {
            let p = port(gw, id).await;
            (p["hook"] == "on_hook" && p["in_call"] == false && p["leg"].is_null()).then_some(())
        })
        .await;
}

async fn call_where(gw: &Gateway, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let api = gw.api();
    api.wait_for(what, || async {
        api.calls().await.into_iter().find(|c| f(c))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_dials_an_ivr_extension_and_the_flow_branches_on_its_digit() {
    let gw = Gateway::start_with(|c| c.analog.extensions = vec!["300".into()]).await;
    let api = gw.api();
    let flow = api.create_flow(ivr()).await;
    api.post(
        "/v1.0/numbers",
        json!({"number": "300", "call_flow_id": flow.to_string()}),
    )
    .await;
    idle(&gw, "fxs0").await;

    api.post("/v1.0/gateway/sim/analog/phone/lift", json!({}))
        .await;
    api.wait_for("the port to see the off-hook", || async {
        (port(&gw, "fxs0").await["hook"] == "off_hook").then_some(())
    })
    .await;
    // An extension of the dial plan routes at once, without `#`.
    api.post(
        "/v1.0/gateway/sim/analog/phone/dial",
        json!({"digits": "300"}),
    )
    .await;
    let af = api
        .wait_for("the IVR to wait for a digit", || async {
            let call = api.calls().await.into_iter().next()?;
            let af = call["activeflow_id"].as_str()?.to_owned();
            let view = api.get(&format!("/v1.0/activeflows/{af}")).await;
            (view["current_action"]["type"] == "digits_receive").then_some(af)
        })
        .await;
    let call = api.calls().await.into_iter().next().unwrap();
    assert_eq!(call["line_id"], "fxs0");
    assert_eq!(call["transport"], "fxs");
    assert_eq!(call["direction"], "incoming");
    assert_eq!(
        call["source"]["target"], "200",
        "the caller is the port's extension"
    );
    assert_eq!(call["destination"]["target"], "300");
    assert_eq!(port(&gw, "fxs0").await["leg"], call["id"]);

    api.post(
        "/v1.0/gateway/sim/analog/phone/dial",
        json!({"digits": "2"}),
    )
    .await;
    let ended = api.wait_ended(&af).await;
    assert_eq!(ended["variables"]["choice"], "support", "{ended}");
    assert_eq!(ended["variables"]["voipbin.call.source.target"], "200");
    let id = call["id"].as_str().unwrap().to_owned();
    let call = call_where(&gw, "the call to end", |c| {
        c["id"] == id.as_str() && c["status"] == "hangup"
    })
    .await;
    assert_eq!(call["hangup_by"], "local");
    // The phone, left off-hook, hears busy; hanging it up leaves the port idle.
    api.post("/v1.0/gateway/sim/analog/phone/hangup", json!({}))
        .await;
    idle(&gw, "fxs0").await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_flash_holds_the_phones_call_the_next_takes_it_back_and_on_hook_recalls() {
    let gw = Gateway::start_with(|c| c.analog.extensions = vec!["300".into()]).await;
    let api = gw.api();
    let flow = api.create_flow(ivr()).await;
    api.post(
        "/v1.0/numbers",
        json!({"number": "300", "call_flow_id": flow.to_string()}),
    )
    .await;
    idle(&gw, "fxs0").await;
    api.post("/v1.0/gateway/sim/analog/phone/lift", json!({}))
        .await;
    api.wait_for("the port to see the off-hook", || async {
        (port(&gw, "fxs0").await["hook"] == "off_hook").then_some(())
    })
    .await;
    api.post(
        "/v1.0/gateway/sim/analog/phone/dial",
        json!({"digits": "300"}),
    )
    .await;
    let call = call_where(&gw, "the IVR to answer the phone", |c| {
        c["line_id"] == "fxs0" && c["status"] == "progressing"
    })
    .await;
    assert_eq!(call["hold"], false);
    let id = call["id"].as_str().unwrap().to_owned();
    // A 400 ms flash holds the call; the call record (and its `call_updated` event) says so.
    api.post("/v1.0/gateway/sim/analog/phone/flash", json!({"ms": 400}))
        .await;
    call_where(&gw, "the call to be held", |c| {
        c["id"] == id.as_str() && c["hold"] == true
    })
    .await;
    // The next flash takes it back; the flow's digit still reaches the IVR afterwards.
    api.post("/v1.0/gateway/sim/analog/phone/flash", json!({}))
        .await;
    call_where(&gw, "the call to be taken back", |c| {
        c["id"] == id.as_str() && c["hold"] == false
    })
    .await;
    // Held, then on-hook: the held call is not dropped; the phone rings back (recall) and
    // lifting it takes the call back.
    api.post("/v1.0/gateway/sim/analog/phone/flash", json!({}))
        .await;
    call_where(&gw, "the call to be held again", |c| {
        c["id"] == id.as_str() && c["hold"] == true
    })
    .await;
    api.post("/v1.0/gateway/sim/analog/phone/hangup", json!({}))
        .await;
    api.wait_for("the phone to ring back", || async {
        (port(&gw, "fxs0").await["ringing"] == true).then_some(())
    })
    .await;
    assert_eq!(port(&gw, "fxs0").await["leg"], id.as_str(), "same call");
    api.post("/v1.0/gateway/sim/analog/phone/lift", json!({}))
        .await;
    call_where(&gw, "the recalled call to be taken back", |c| {
        c["id"] == id.as_str() && c["hold"] == false
    })
    .await;
    let af = call["activeflow_id"].as_str().unwrap().to_owned();
    api.post(
        "/v1.0/gateway/sim/analog/phone/dial",
        json!({"digits": "1"}),
    )
    .await;
    let ended = api.wait_ended(&af).await;
    assert_eq!(ended["variables"]["choice"], "sales", "{ended}");
    let events = api.get("/v1.0/gateway/events?after=0&limit=1000").await;
    let holds: Vec<bool> = events["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["type"] == "call_updated" && e["data"]["id"] == id.as_str())
        .filter_map(|e| e["data"]["hold"].as_bool())
        .collect();
    assert!(
        holds.windows(2).any(|w| w == [true, false]),
        "call_updated events show the hold and the retrieval: {holds:?}"
    );
    api.post("/v1.0/gateway/sim/analog/phone/hangup", json!({}))
        .await;
    idle(&gw, "fxs0").await;
    gw.stop().await;
}

/// Rings the exchange line with caller ID under a flow that connects it to the GSM number;
/// returns (the landline call, the GSM leg) once both are up.
async fn landline_connected_to_gsm(gw: &Gateway) -> (Value, Value) {
    let api = gw.api();
    let flow = api.create_flow(connect_to_gsm()).await;
    api.post(
        "/v1.0/numbers",
        json!({"line_id": "fxo0", "call_flow_id": flow.to_string()}),
    )
    .await;
    idle(gw, "fxo0").await;
    api.post(
        "/v1.0/gateway/sim/analog/line/ring",
        json!({"number": "5559876543", "name": "BOB"}),
    )
    .await;
    let landline = call_where(gw, "the landline call", |c| c["line_id"] == "fxo0").await;
    assert_eq!(landline["direction"], "incoming");
    assert_eq!(landline["source"]["target"], "5559876543");
    assert_eq!(landline["source"]["target_name"], "BOB");
    let gsm = call_where(gw, "the GSM leg to be answered", |c| {
        c["direction"] == "outgoing" && c["status"] == "progressing"
    })
    .await;
    assert_eq!(gsm["line_id"], "sim0");
    assert_eq!(gsm["destination"]["target"], GSM);
    assert_eq!(gsm["master_call_id"], landline["id"]);
    // The exchange saw the gateway answer (the line is connected end to end).
    api.wait_for("the exchange to see the answer", || async {
        let s = api.get("/v1.0/gateway/sim/analog").await;
        (s["exchange"]["state"] == "connected").then_some(())
    })
    .await;
    (landline, gsm)
}

async fn ended(gw: &Gateway, call: &Value) -> Value {
    let id = call["id"].as_str().unwrap().to_owned();
    call_where(gw, "the call to end", |c| {
        c["id"] == id.as_str() && c["status"] == "hangup"
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_landline_caller_is_connected_to_a_mobile_and_hangs_up_first() {
    let gw = Gateway::start().await;
    let (landline, gsm) = landline_connected_to_gsm(&gw).await;
    gw.api()
        .post("/v1.0/gateway/sim/analog/line/hangup", json!({}))
        .await;
    let landline = ended(&gw, &landline).await;
    assert_eq!(landline["hangup_by"], "remote");
    let gsm = ended(&gw, &gsm).await;
    assert_eq!(gsm["hangup_by"], "local", "the gateway released the mobile");
    idle(&gw, "fxo0").await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mobile_hangs_up_first_and_the_flow_releases_the_landline() {
    let gw = Gateway::start().await;
    let api = gw.api();
    let (landline, gsm) = landline_connected_to_gsm(&gw).await;
    api.post("/v1.0/gateway/sim/hangup", json!({})).await;
    let gsm = ended(&gw, &gsm).await;
    assert_eq!(gsm["hangup_by"], "remote");
    let landline = ended(&gw, &landline).await;
    assert_eq!(
        landline["hangup_by"], "local",
        "the flow hung up after connect"
    );
    let af = landline["activeflow_id"].as_str().unwrap().to_owned();
    let flow = api.wait_ended(&af).await;
    assert_eq!(flow["variables"]["after"], "connect");
    api.wait_for("the exchange to see the gateway hang up", || async {
        let s = api.get("/v1.0/gateway/sim/analog").await;
        s["exchange"]["events"]
            .as_array()?
            .iter()
            .any(|e| e == "hung_up")
            .then_some(())
    })
    .await;
    idle(&gw, "fxo0").await;
    gw.stop().await;
}

/// The default simulated board's FXS port with two modems: the first call is on `sim0`,
/// the consultation call goes out on `sim1` (the simulated network answers it, or lets
/// `+15550000019` ring until told).
fn two_modems_and_a_phone(dir: &std::path::Path) -> String {
    let text = r#"name = "transfer-test"
description = "two modems and the simulated analog ports"

[[modem]]
id = "sim0"
profile = "quectel-ec25"
[modem.simulated]
own_number = "+15550001000"
[modem.simulated.dial.default]
outcome = "answer"
ring_ms = 300

[[modem]]
id = "sim1"
profile = "quectel-ec25"
[modem.simulated]
own_number = "+15550002000"
[modem.simulated.dial.default]
outcome = "answer"
ring_ms = 300
[modem.simulated.dial.numbers."+15550000019"]
outcome = "manual"

[[analog]]
id = "fxs0"
chip = "si3215"
country = "us"
extension = "200"
simulated = true
"#;
    let path = dir.join("board.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Two modems and a phone on extension 200: a GSM caller on sim0 is put through to the
/// phone, which answers; extension 300 (dialled by the phone) goes out to the mobile `GSM`
/// on sim1. Returns the gateway, its board directory, the caller's call and the phone's leg.
async fn phone_answers_a_gsm_caller() -> (Gateway, tempfile::TempDir, Value, Value) {
    let dir = tempfile::tempdir().unwrap();
    let profile = two_modems_and_a_phone(dir.path());
    let gw = Gateway::start_with(|c| {
        c.board.profile = profile;
        c.analog.extensions = vec!["300".into()];
    })
    .await;
    let api = gw.api();
    // The GSM caller is put through to the phone's extension.
    let to_phone = api
        .create_flow(json!({"name": "to the phone", "detail": "", "actions": [
            {"type": "connect", "option": {
                "source": {"type": "tel", "target": ""},
                "destinations": [{"type": "extension", "target": "200"}]}},
            {"type": "hangup"}]}))
        .await;
    api.bind(Some(to_phone), None).await;
    // Extension 300, dialled by the phone, goes out to a mobile.
    let to_mobile = api
        .create_flow(json!({"name": "to a mobile", "detail": "", "actions": [
            {"type": "connect", "option": {
                "source": {"type": "tel", "target": ""},
                "destinations": [{"type": "tel", "target": GSM}]}},
            {"type": "hangup"}]}))
        .await;
    api.post(
        "/v1.0/numbers",
        json!({"number": "300", "call_flow_id": to_mobile.to_string()}),
    )
    .await;
    idle(&gw, "fxs0").await;

    api.post(
        "/v1.0/gateway/sim/calls?modem=sim0",
        json!({"from": "+15551112222"}),
    )
    .await;
    let caller = call_where(&gw, "the GSM caller", |c| c["line_id"] == "sim0").await;
    api.wait_for("the phone to ring", || async {
        (port(&gw, "fxs0").await["ringing"] == true).then_some(())
    })
    .await;
    api.post("/v1.0/gateway/sim/analog/phone/lift", json!({}))
        .await;
    let held = call_where(&gw, "the phone's leg to be answered", |c| {
        c["line_id"] == "fxs0" && c["status"] == "progressing"
    })
    .await;
    (gw, dir, caller, held)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_transfers_a_gsm_caller_to_a_second_gsm_party() {
    let (gw, _dir, caller, held) = phone_answers_a_gsm_caller().await;
    let api = gw.api();
    let sims = gw.daemon().sims();

    // Flash: the caller is held; the phone dials 300, which calls the mobile on sim1.
    api.post("/v1.0/gateway/sim/analog/phone/flash", json!({}))
        .await;
    call_where(&gw, "the caller's leg to be held", |c| {
        c["id"] == held["id"] && c["hold"] == true
    })
    .await;
    api.post(
        "/v1.0/gateway/sim/analog/phone/dial",
        json!({"digits": "300"}),
    )
    .await;
    let consult = call_where(&gw, "the consultation leg", |c| {
        c["line_id"] == "fxs0" && c["direction"] == "incoming"
    })
    .await;
    assert_eq!(consult["destination"]["target"], "300");
    let mobile = call_where(&gw, "the mobile to answer", |c| {
        c["line_id"] == "sim1" && c["status"] == "progressing"
    })
    .await;
    assert_eq!(mobile["destination"]["target"], GSM);
    api.wait_for("the phone to be connected to the mobile", || async {
        let c = api
            .get(&format!("/v1.0/calls/{}", consult["id"].as_str()?))
            .await;
        (c["status"] == "progressing").then_some(())
    })
    .await;

    // On-hook: attended transfer. Both phone legs end as transferred, the port is free,
    // the caller and the mobile stay up.
    api.post("/v1.0/gateway/sim/analog/phone/hangup", json!({}))
        .await;
    for leg in [&held, &consult] {
        let leg = ended(&gw, leg).await;
        assert_eq!(leg["end_cause"]["cause"], "transferred", "{leg}");
    }
    idle(&gw, "fxs0").await;
    for c in [&caller, &mobile] {
        let now = api
            .get(&format!("/v1.0/calls/{}", c["id"].as_str().unwrap()))
            .await;
        assert_eq!(now["status"], "progressing", "{now}");
    }

    // Audio both ways between the caller (sim0) and the mobile (sim1).
    let (at_caller, at_mobile) = exchange_tones(&sims).await;
    assert!(
        tone_share(&at_mobile, 1000.0) > 0.8,
        "the mobile hears the caller"
    );
    assert!(
        tone_share(&at_caller, 1500.0) > 0.8,
        "the caller hears the mobile"
    );

    // The mobile hangs up: the caller is released too.
    api.post("/v1.0/gateway/sim/hangup?modem=sim1", json!({}))
        .await;
    let mobile = ended(&gw, &mobile).await;
    assert_eq!(mobile["hangup_by"], "remote");
    let caller = ended(&gw, &caller).await;
    assert_eq!(caller["hangup_by"], "local");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_up_while_the_consulted_mobile_rings_is_a_blind_transfer() {
    const RINGS: &str = "+15550000019";
    let dir = tempfile::tempdir().unwrap();
    let profile = two_modems_and_a_phone(dir.path());
    let gw = Gateway::start_with(|c| {
        c.board.profile = profile;
        c.analog.extensions = vec!["301".into()];
    })
    .await;
    let api = gw.api();
    let sims = gw.daemon().sims();
    // This time the phone calls the GSM side first.
    let out = api
        .create_flow(json!({"name": "phone out", "detail": "", "actions": [
            {"type": "connect", "option": {
                "source": {"type": "tel", "target": ""},
                "destinations": [{"type": "tel", "target": GSM}]}},
            {"type": "hangup"}]}))
        .await;
    api.post(
        "/v1.0/numbers",
        json!({"number": "5557778888", "call_flow_id": out.to_string()}),
    )
    .await;
    let to_ringer = api
        .create_flow(json!({"name": "to a ringer", "detail": "", "actions": [
            {"type": "connect", "option": {
                "source": {"type": "tel", "target": ""},
                "destinations": [{"type": "tel", "target": RINGS}]}},
            {"type": "hangup"}]}))
        .await;
    api.post(
        "/v1.0/numbers",
        json!({"number": "301", "call_flow_id": to_ringer.to_string()}),
    )
    .await;
    idle(&gw, "fxs0").await;
    api.post("/v1.0/gateway/sim/analog/phone/lift", json!({}))
        .await;
    api.wait_for("the port to see the off-hook", || async {
        (port(&gw, "fxs0").await["hook"] == "off_hook").then_some(())
    })
    .await;
    api.post(
        "/v1.0/gateway/sim/analog/phone/dial",
        json!({"digits": "5557778888#"}),
    )
    .await;
    let first = call_where(&gw, "the first mobile to answer", |c| {
        c["line_id"] == "sim0" && c["status"] == "progressing"
    })
    .await;
    let phone = call_where(&gw, "the phone's call", |c| c["line_id"] == "fxs0").await;
    api.wait_for("the phone's call to be connected", || async {
        let c = api
            .get(&format!("/v1.0/calls/{}", phone["id"].as_str()?))
            .await;
        (c["status"] == "progressing").then_some(())
    })
    .await;
    api.post("/v1.0/gateway/sim/analog/phone/flash", json!({}))
        .await;
    api.post(
        "/v1.0/gateway/sim/analog/phone/dial",
        json!({"digits": "301"}),
    )
    .await;
    let second = call_where(&gw, "the second mobile to ring", |c| {
        c["line_id"] == "sim1" && c["status"] == "ringing"
    })
    .await;
    assert_eq!(second["destination"]["target"], RINGS);
    // On-hook while it rings: the first mobile waits for the second, the port is free.
    api.post("/v1.0/gateway/sim/analog/phone/hangup", json!({}))
        .await;
    idle(&gw, "fxs0").await;
    let phone = ended(&gw, &phone).await;
    assert_eq!(phone["end_cause"]["cause"], "transferred", "{phone}");
    api.post("/v1.0/gateway/sim/answer?modem=sim1", json!({}))
        .await;
    call_where(&gw, "the second mobile to answer", |c| {
        c["id"] == second["id"] && c["status"] == "progressing"
    })
    .await;
    assert_eq!(
        api.get(&format!("/v1.0/calls/{}", first["id"].as_str().unwrap()))
            .await["status"],
        "progressing"
    );
    for sim in &sims {
        sim.take_recorded_audio();
    }
    sims[0].queue_audio(&tone(1000.0, 8000)).unwrap();
    sims[1].queue_audio(&tone(1500.0, 8000)).unwrap();
    for sim in &sims {
        sim.wait_for_recorded(12_000, WAIT).await.unwrap();
    }
    assert!(
        tone_share(&sims[1].take_recorded_audio(), 1000.0) > 0.8,
        "the second hears the first"
    );
    assert!(
        tone_share(&sims[0].take_recorded_audio(), 1500.0) > 0.8,
        "the first hears the second"
    );
    // The first mobile hangs up: the second is released.
    api.post("/v1.0/gateway/sim/hangup?modem=sim0", json!({}))
        .await;
    let second = ended(&gw, &second).await;
    assert_eq!(second["hangup_by"], "local");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flash_ends_the_consultation_and_the_held_caller_leaving_keeps_it() {
    let (gw, _dir, caller, held) = phone_answers_a_gsm_caller().await;
    let api = gw.api();
    let hid = held["id"].as_str().unwrap().to_owned();

    // Consult, then flash back: the consultation and the mobile end, the caller is back.
    api.post("/v1.0/gateway/sim/analog/phone/flash", json!({}))
        .await;
    api.post(
        "/v1.0/gateway/sim/analog/phone/dial",
        json!({"digits": "300"}),
    )
    .await;
    let mobile = call_where(&gw, "the mobile to answer", |c| {
        c["line_id"] == "sim1" && c["status"] == "progressing"
    })
    .await;
    let consult = call_where(&gw, "the consultation leg", |c| {
        c["line_id"] == "fxs0" && c["direction"] == "incoming"
    })
    .await;
    api.post("/v1.0/gateway/sim/analog/phone/flash", json!({}))
        .await;
    let consult = ended(&gw, &consult).await;
    assert_eq!(
        consult["hangup_by"], "remote",
        "the phone ended it: {consult}"
    );
    let mobile = ended(&gw, &mobile).await;
    assert_eq!(
        mobile["hangup_by"], "local",
        "the gateway released the mobile"
    );
    call_where(&gw, "the caller to be back", |c| {
        c["id"] == hid.as_str() && c["hold"] == false && c["status"] == "progressing"
    })
    .await;

    // Consult again; this time the held caller gives up: the consultation goes on alone.
    api.post("/v1.0/gateway/sim/analog/phone/flash", json!({}))
        .await;
    call_where(&gw, "the caller to be held", |c| {
        c["id"] == hid.as_str() && c["hold"] == true
    })
    .await;
    api.post(
        "/v1.0/gateway/sim/analog/phone/dial",
        json!({"digits": "300"}),
    )
    .await;
    let mobile = call_where(&gw, "the second mobile call to answer", |c| {
        c["line_id"] == "sim1" && c["status"] == "progressing"
    })
    .await;
    let consult = call_where(&gw, "the second consultation leg", |c| {
        c["line_id"] == "fxs0" && c["direction"] == "incoming" && c["status"] != "hangup"
    })
    .await;
    api.post("/v1.0/gateway/sim/hangup?modem=sim0", json!({}))
        .await;
    ended(&gw, &caller).await;
    ended(&gw, &held).await;
    let cid = consult["id"].as_str().unwrap().to_owned();
    api.wait_for("the consultation to be the phone's call", || async {
        let p = port(&gw, "fxs0").await;
        (p["leg"] == cid.as_str()).then_some(())
    })
    .await;
    for c in [&consult, &mobile] {
        let now = api
            .get(&format!("/v1.0/calls/{}", c["id"].as_str().unwrap()))
            .await;
        assert_eq!(now["status"], "progressing", "{now}");
    }
    // The phone hangs up: a plain end now.
    api.post("/v1.0/gateway/sim/analog/phone/hangup", json!({}))
        .await;
    let consult = ended(&gw, &consult).await;
    assert_eq!(consult["end_cause"]["cause"], "normal", "{consult}");
    ended(&gw, &mobile).await;
    idle(&gw, "fxs0").await;
    gw.stop().await;
}
