//! `amd` on a live call: the simulated caller answers with espeak-ng speech — a short
//! "hello" (a person) or a voicemail greeting (a machine) — and the flow sees the verdict.

use flowgate_tests::{Gateway, speak};
use serde_json::{Value, json};

fn amd_flow() -> Value {
    json!({"name": "amd", "detail": "", "actions": [
        {"type": "answer"},
        {"type": "amd", "option": {"machine_handle": "hangup"}},
        {"type": "variable_set", "option": {"key": "verdict", "value": "${voipbin.gateway.amd_status}"}},
        {"type": "hangup"}]})
}

/// Rings the gateway, answers with `speech`; returns the ended activeflow and the call.
async fn answer_with(gw: &Gateway, speech: &[i16]) -> (Value, Value) {
    let api = gw.api();
    let sim = gw.daemon().sims().remove(0);
    let flow = api.create_flow(amd_flow()).await;
    api.bind(Some(flow), None).await;
    api.post("/v1.0/gateway/sim/calls", json!({"from": "+15551112222"}))
        .await;
    let af = api
        .wait_for("the flow to reach amd", || async {
            let call = api.calls().await.into_iter().next()?;
            let af = call["activeflow_id"].as_str()?.to_owned();
            let view = api.get(&format!("/v1.0/activeflows/{af}")).await;
            (view["current_action"]["type"] == "amd").then_some(af)
        })
        .await;
    // A short pause, then the speech; the simulated line is silent afterwards.
    let audio = [vec![0i16; 2400], speech.to_vec()].concat();
    sim.queue_audio(&audio).unwrap();
    let ended = api.wait_ended(&af).await;
    let call = api
        .wait_for("the call to end", || async {
            let call = api.calls().await.into_iter().next()?;
            (call["status"] == "hangup").then_some(call)
        })
        .await;
    (ended, call)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amd_hears_a_person_and_the_flow_goes_on() {
    let gw = Gateway::start().await;
    let (af, call) = answer_with(&gw, &speak("hello?")).await;
    assert_eq!(af["variables"]["verdict"], "HUMAN", "{af}");
    assert_eq!(
        af["variables"]["voipbin.gateway.amd_cause"], "HUMAN",
        "{af}"
    );
    assert_ne!(call["hangup_reason"], "amd", "{call}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amd_hangs_up_on_a_machine() {
    let gw = Gateway::start().await;
    let greeting =
        speak("Hello, you have reached John Smith. Please leave a message after the tone.");
    let (af, call) = answer_with(&gw, &greeting).await;
    assert_eq!(call["hangup_reason"], "amd", "{call}");
    assert_eq!(
        af["variables"]["voipbin.gateway.amd_status"], "MACHINE",
        "{af}"
    );
    assert!(
        af["variables"]["verdict"].is_null(),
        "the flow stopped at amd: {af}"
    );
    gw.stop().await;
}
