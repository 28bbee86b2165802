use flowgate_tests::Gateway;
use serde_json::{Value, json};

const B1: &str = "00000000-0000-4000-8000-0000000000b1";
const B2: &str = "00000000-0000-4000-8000-0000000000b2";
const BF: &str = "00000000-0000-4000-8000-0000000000bf";

/// An IVR without prompts: digits decide the branch (URC DTMF, as the modem reports it).
fn ivr() -> Value {
    json!({"name": "ivr", "detail": "", "actions": [
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

/// Binds `flow` to the modem, calls it, and returns the activeflow once it waits for digits.
async fn call_waiting_in_digits(gw: &Gateway, flow: Value) -> String {
    let api = gw.api();
    let flow = api.create_flow(flow).await;
    api.bind(Some(flow), None).await;
    api.post("/v1.0/gateway/sim/calls", json!({"from": "+15551112222"}))
        .await;
    api.wait_for("the flow to wait for digits", || async {
        let call = api.calls().await.into_iter().next()?;
        let af = call["activeflow_id"].as_str()?.to_owned();
        let view = api.get(&format!("/v1.0/activeflows/{af}")).await;
        (view["current_action"]["type"] == "digits_receive").then_some(af)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ivr_call_branches_on_the_digit_pressed() {
    let gw = Gateway::start().await;
    let api = gw.api();
    let af = call_waiting_in_digits(&gw, ivr()).await;
    api.post("/v1.0/gateway/sim/dtmf", json!({"digits": "2"}))
        .await;

    let ended = api.wait_ended(&af).await;
    assert_eq!(ended["variables"]["choice"], "support");
    assert_eq!(
        ended["variables"]["voipbin.call.source.target"],
        "+15551112222"
    );
    assert_eq!(ended["end_reason"]["kind"], "hangup");
    // The flow's hangup ended the call on the modem.
    let call = api
        .wait_for("the call record to settle", || async {
            let call = api.calls().await.into_iter().next()?;
            (call["status"] == "hangup").then_some(call)
        })
        .await;
    assert_eq!(call["direction"], "incoming");
    assert_eq!(call["hangup_by"], "local");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_action_id_interrupts_digits_receive_at_once() {
    let gw = Gateway::start().await;
    let api = gw.api();
    let af = call_waiting_in_digits(&gw, ivr()).await;

    // digits_receive would wait 60 s; the jump must not wait for it.
    api.put(
        &format!("/v1.0/activeflows/{af}/forward_action_id"),
        json!({"forward_action_id": B1, "forward_now": true}),
    )
    .await;
    let ended = api.wait_ended(&af).await;
    assert_eq!(ended["variables"]["choice"], "sales");
    let trace: Vec<&str> = ended["executed_actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        trace,
        ["answer", "digits_receive", "variable_set", "hangup"]
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_hangup_ends_the_flow() {
    let gw = Gateway::start().await;
    let api = gw.api();
    let af = call_waiting_in_digits(&gw, ivr()).await;
    api.post("/v1.0/gateway/sim/hangup", json!({})).await;
    let ended = api.wait_ended(&af).await;
    assert_eq!(ended["end_reason"]["kind"], "hangup");
    assert!(ended["variables"].get("choice").is_none());
    let call = api.calls().await.into_iter().next().unwrap();
    assert_eq!(call["hangup_by"], "remote");
    gw.stop().await;
}

/// Answers and waits; the flow is interrupted by the transfer.
fn waiting_flow() -> Value {
    json!({"name": "hold-line", "detail": "", "actions": [
        {"type": "answer"},
        {"type": "digits_receive", "option": {"duration": 60000, "length": 4}},
        {"type": "hangup"}]})
}

async fn transfer(kind: &str) {
    let gw = Gateway::start().await;
    let api = gw.api();
    let sim = gw.daemon().sims().remove(0);
    let af = call_waiting_in_digits(&gw, waiting_flow()).await;
    let caller = api.calls().await[0]["id"].as_str().unwrap().to_owned();

    let result = api
        .post(
            "/v1.0/transfers",
            json!({
            "transfer_type": kind,
            "transferer_call_id": caller,
            "transferee_addresses": [{"type": "tel", "target": "+15559998888"}]}),
        )
        .await;
    assert_eq!(result["transferer_call_id"], caller.as_str());

    // The network joined the caller and the transferee; the gateway left both calls.
    let log = sim
        .wait_for("the network transfer", flowgate_tests::WAIT, |v| {
            let log = v.call_log();
            log.iter()
                .all(|c| c.ended_by.is_some())
                .then(|| log.to_vec())
        })
        .await
        .unwrap();
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(
        log.iter()
            .all(|c| c.ended_by.as_deref() == Some("transferred")),
        "{log:?}"
    );
    assert_eq!(sim.dialled(), ["+15559998888"]);
    // Blind: joined while it rang; attended: only once it answered.
    let transferee = log.iter().find(|c| c.number == "+15559998888").unwrap();
    assert_eq!(transferee.answered, kind == "attended", "{transferee:?}");
    // The caller's flow ended with the call; both records say the gateway let go.
    let ended = api.wait_ended(&af).await;
    assert_eq!(ended["end_reason"]["kind"], "hangup");
    let calls = api
        .wait_for("both call records to settle", || async {
            let calls = api.calls().await;
            (calls.len() == 2 && calls.iter().all(|c| c["status"] == "hangup")).then_some(calls)
        })
        .await;
    assert!(calls.iter().all(|c| c["hangup_by"] == "local"), "{calls:?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blind_transfer_joins_the_caller_while_the_transferee_rings() {
    transfer("blind").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attended_transfer_joins_the_caller_once_the_transferee_answers() {
    transfer("attended").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_call_runs_its_flow_when_answered() {
    let gw = Gateway::start().await;
    let api = gw.api();
    let sim = gw.daemon().sims().remove(0);
    let created = api
        .post("/v1.0/calls", json!({
            "source": {"type": "tel", "target": "+15550001000"},
            "destinations": [{"type": "tel", "target": "+15557770000"}],
            "actions": [
                {"type": "variable_set", "option": {"key": "reached", "value": "${voipbin.call.destination.target}"}},
                {"type": "digits_send", "option": {"digits": "42", "duration": 100, "interval": 50}},
                {"type": "hangup"}]}))
        .await;
    let call_id = created["calls"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(sim.dialled(), ["+15557770000"]);

    // The simulated far end answers after ringing; then the flow runs on the call.
    let call = api
        .wait_for("the call to end", || async {
            let call = api.get(&format!("/v1.0/calls/{call_id}")).await;
            (call["status"] == "hangup").then_some(call)
        })
        .await;
    assert_eq!(call["direction"], "outgoing");
    assert!(call["tm_progressing"].is_string(), "never answered: {call}");
    let af = call["activeflow_id"].as_str().unwrap();
    let ended = api.wait_ended(af).await;
    assert_eq!(ended["variables"]["reached"], "+15557770000");
    assert_eq!(sim.dtmf_sent(), "42");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_flow_sees_its_call_as_reference_data() {
    let gw = Gateway::start().await;
    let api = gw.api();
    let flow = json!({"name": "ref", "detail": "", "actions": [
        {"type": "answer"},
        {"type": "variable_set", "option": {"key": "me", "value": "${voipbin.flow.reference_data}"}},
        {"type": "digits_receive", "option": {"duration": 60000, "length": 1}},
        {"type": "hangup"}]});
    let af = call_waiting_in_digits(&gw, flow).await;
    api.post("/v1.0/gateway/sim/hangup", json!({})).await;
    let ended = api.wait_ended(&af).await;
    let me: Value = serde_json::from_str(ended["variables"]["me"].as_str().unwrap()).unwrap();
    assert_eq!(me["source"]["target"], "+15551112222");
    assert_eq!(me["line_id"], "sim0");
    assert_eq!(
        me["status"], "progressing",
        "the call as it was when the action ran"
    );
    // The live view: the call is over, and the flow was told so before it ended.
    assert_eq!(ended["variables"]["voipbin.call.status"], "hangup");
    let now: Value = serde_json::from_str(
        ended["variables"]["voipbin.flow.reference_data"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(now["status"], "hangup");
    gw.stop().await;
}
