//! `queue_join`: local call queues, end to end on the simulated modem and SIPp.
//!
//! * A GSM caller joins a queue whose only agent is an extension nobody registered: the
//!   agent is refused, the caller hears the wait flow's beep again and again. A SIP phone
//!   (SIPp echoing RTP) is added to the queue through the API: it rings, answers, and the
//!   caller's tone comes back through it (caller and agent are bridged). The VoIPBIN
//!   variables are set, the queue shows the queuecall being served, and when the caller
//!   hangs up the agent is hung up and the queuecall is done.
//! * A caller nobody answers leaves the queue at the wait timeout and the flow goes on
//!   after `queue_join`; a kick through the API does the same at once.
//! * On two modems: busy and unanswered agents are passed over for the next (linear),
//!   caller and agent hear each other, the agent hanging up lets the flow go on; the
//!   service timeout hangs the agent up; a caller hanging up while an agent rings
//!   abandons and cancels the agent's leg.

use flowgate_tests::{Gateway, SIM_NUMBER, WAIT};
use serde_json::{Value, json};

use crate::connect::{self, tone, tone_share};
use crate::sip::{bind, ended, gsm_call_in, sipp_echo_uas};
use flowgate_test_peers::sipp::finished;

/// A wait flow: a beep, then a second of silence (looped by the queue).
fn wait_flow() -> Value {
    json!({"name": "hold", "detail": "", "actions": [
        {"type": "beep"},
        {"type": "sleep", "option": {"duration": 1000}}]})
}

/// The caller's flow: join the queue, then note what the flow saw and hang up.
fn caller_flow(queue: &str) -> Value {
    json!({"name": "queue", "detail": "", "actions": [
        {"type": "queue_join", "option": {"queue_id": queue}},
        {"type": "variable_set", "option": {"key": "after", "value": "queue ${voipbin.queue.name}"}},
        {"type": "hangup"}]})
}

async fn create_queue(gw: &Gateway, body: Value) -> String {
    let q = gw.api().post("/v1.0/queues", body).await;
    q["id"].as_str().expect("a queue id").to_owned()
}

/// Waits for the queuecall of `call` to reach `status`.
async fn queuecall(gw: &Gateway, call: &str, status: &str) -> Value {
    let api = gw.api();
    api.wait_for(&format!("the queuecall to be {status}"), || async {
        let list = api.get("/v1.0/queuecalls").await;
        list["result"]
            .as_array()?
            .iter()
            .find(|q| q["reference_id"] == call && q["status"] == status)
            .cloned()
    })
    .await
}

/// The separate bursts of a 1 kHz tone in `samples` (20 ms blocks).
fn beeps(samples: &[i16]) -> usize {
    let mut bursts = 0;
    let mut inside = false;
    for block in samples.chunks_exact(160) {
        let on = tone_share(block, 1000.0) > 0.5;
        if on && !inside {
            bursts += 1;
        }
        inside = on;
    }
    bursts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gsm_caller_waits_hearing_the_wait_flow_and_is_put_through_to_a_sip_agent() {
    let gw = Gateway::start().await;
    let api = gw.api();
    let sim = gw.daemon().sims().remove(0);
    let (port, child) = sipp_echo_uas().await;
    let hold = api.create_flow(wait_flow()).await;
    let queue = create_queue(
        &gw,
        json!({"name": "sales", "detail": "the sales desk", "routing_method": "linear",
            "tag_ids": [], "wait_flow_id": hold.to_string(), "wait_timeout": 0,
            "service_timeout": 0, "retry_interval": 300,
            "agents": [{"type": "extension", "target": "100"}]}),
    )
    .await;
    bind(&gw, SIM_NUMBER, caller_flow(&queue)).await;
    let incoming = gsm_call_in(&gw).await;
    let qc = queuecall(&gw, &incoming, "waiting").await;
    assert_eq!(qc["queue_id"], queue.as_str());
    let q = api.get(&format!("/v1.0/queues/{queue}")).await;
    assert_eq!(q["wait_queuecall_ids"], json!([qc["id"]]));
    assert_eq!(q["total_incoming_count"], 1);

    // Waiting: the wait flow's beep, again and again (extension 100 is not registered,
    // so the only agent is refused at every round).
    sim.take_recorded_audio();
    sim.wait_for_recorded(24_000, WAIT).await.unwrap();
    let heard = beeps(&sim.take_recorded_audio());
    assert!(heard >= 2, "the wait flow loops: {heard} beeps in 3 s");
    assert_eq!(call(&gw, &incoming).await["status"], "progressing");

    // A SIP phone joins the queue's agents: it is rung and answers; the caller is put
    // through and hears its own 1.5 kHz come back through the echoing phone.
    api.put(
        &format!("/v1.0/queues/{queue}"),
        json!({"agents": [{"type": "extension", "target": "100"},
                          {"type": "sip", "target": format!("1000@127.0.0.1:{port}")}]}),
    )
    .await;
    let qc = queuecall(&gw, &incoming, "service").await;
    assert_eq!(qc["service_agent"]["type"], "sip");
    let leg = qc["service_call_id"].as_str().unwrap().to_owned();
    let agent = call(&gw, &leg).await;
    assert_eq!(agent["master_call_id"], incoming.as_str());
    assert_eq!(agent["transport"], "sip");
    let q = api.get(&format!("/v1.0/queues/{queue}")).await;
    assert_eq!(q["service_queuecall_ids"], json!([qc["id"]]));
    assert_eq!(q["wait_queuecall_ids"], json!([]));
    sim.take_recorded_audio();
    sim.queue_audio(&tone(1500.0, 16_000)).unwrap();
    sim.wait_for_recorded(16_000, WAIT).await.unwrap();
    let at_caller = sim.take_recorded_audio();
    let share = tone_share(&at_caller, 1500.0);
    eprintln!("1.5 kHz share at the caller through the queue's agent: {share:.3}");
    assert!(
        share > 0.5,
        "the caller hears the agent (its echo): {share}"
    );

    // The caller hangs up: the agent gets its BYE, the queuecall is done.
    api.post("/v1.0/gateway/sim/hangup", json!({})).await;
    let caller = ended(&gw, &incoming).await;
    // The VoIPBIN variables were set on the caller's flow.
    let af = api
        .wait_ended(caller["activeflow_id"].as_str().unwrap())
        .await;
    let vars = &af["variables"];
    assert_eq!(vars["voipbin.queue.id"], queue.as_str());
    assert_eq!(vars["voipbin.queue.name"], "sales");
    assert_eq!(vars["voipbin.queue.detail"], "the sales desk");
    assert_eq!(vars["voipbin.queuecall.id"], qc["id"]);
    assert_eq!(vars["voipbin.queuecall.timeout_wait"], "0");
    assert!(
        vars.get("after").is_none(),
        "the caller hung up in the queue"
    );
    let agent = ended(&gw, &leg).await;
    assert_eq!(agent["hangup_by"], "local");
    let qc = queuecall(&gw, &incoming, "done").await;
    assert_eq!(qc["end_reason"], "service_end");
    assert!(qc["duration_waiting"].as_i64().unwrap() > 0);
    let q = api.get(&format!("/v1.0/queues/{queue}")).await;
    assert_eq!(q["total_serviced_count"], 1);
    assert_eq!(q["service_queuecall_ids"], json!([]));
    finished(child).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wait_timeout_and_a_kick_continue_the_flow_after_queue_join() {
    let gw = Gateway::start().await;
    let api = gw.api();
    // No wait flow: music on hold. The agent is never reachable.
    let queue = create_queue(
        &gw,
        json!({"name": "support", "wait_timeout": 1500, "retry_interval": 300,
            "agents": [{"type": "extension", "target": "100"}]}),
    )
    .await;
    bind(&gw, SIM_NUMBER, caller_flow(&queue)).await;

    let incoming = gsm_call_in(&gw).await;
    // As in VoIPBIN, a caller leaving unserved (timeout, kick, hang-up) is abandoned.
    let qc = queuecall(&gw, &incoming, "abandoned").await;
    assert_eq!(qc["end_reason"], "wait_timeout");
    let waited = qc["duration_waiting"].as_i64().unwrap();
    assert!(
        waited >= 1500,
        "left at the wait timeout, not before: {waited} ms"
    );
    let af_id = call(&gw, &incoming).await["activeflow_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let af = api.wait_ended(&af_id).await;
    assert_eq!(af["variables"]["after"], "queue support");
    assert_eq!(af["variables"]["voipbin.queuecall.timeout_wait"], "1500");
    ended(&gw, &incoming).await;

    // A kick: the queue has no timeout now; the caller waits until the API kicks it.
    api.put(&format!("/v1.0/queues/{queue}"), json!({"wait_timeout": 0}))
        .await;
    api.post("/v1.0/gateway/sim/calls", json!({"from": "+15551113333"}))
        .await;
    let second = api
        .wait_for("the second call", || async {
            api.calls()
                .await
                .into_iter()
                .find(|c| c["direction"] == "incoming" && c["id"] != incoming.as_str())
                .and_then(|c| Some(c["id"].as_str()?.to_owned()))
        })
        .await;
    let qc = queuecall(&gw, &second, "waiting").await;
    let kicked = api
        .post(
            &format!("/v1.0/queuecalls/{}/kick", qc["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(kicked["id"], qc["id"]);
    let qc = queuecall(&gw, &second, "abandoned").await;
    assert_eq!(qc["end_reason"], "kicked");
    let af_id = call(&gw, &second).await["activeflow_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        api.wait_ended(&af_id).await["variables"]["after"],
        "queue support"
    );
    let q = api.get(&format!("/v1.0/queues/{queue}")).await;
    assert_eq!(q["total_incoming_count"], 2);
    assert_eq!(q["total_abandoned_count"], 2);
    gw.stop().await;
}

/// On two modems: the caller on sim0; agents are numbers sim1 dials (one busy, one
/// ringing until cancelled, one answering). Linear: the busy agent is passed over at
/// once, the ringing one after the agent ring timeout, the third answers and the two
/// GSM calls are bridged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_and_unanswered_agents_are_passed_over_for_the_next() {
    let (gw, _dir) = connect::gateway("", "", 60).await;
    let api = gw.api();
    let sims = gw.daemon().sims();
    let agent = |n: &str| json!({"type": "tel", "target": n});
    let queue = create_queue(
        &gw,
        json!({"name": "desk", "routing_method": "linear", "agent_ring_timeout": 1500,
            "agents": [agent(connect::BUSY), agent(connect::RINGS), agent(connect::ANSWERS)]}),
    )
    .await;
    let incoming = connect::call_in(&gw, caller_flow(&queue)).await;
    let qc = queuecall(&gw, &incoming, "service").await;
    assert_eq!(qc["service_agent"]["target"], connect::ANSWERS);
    let sent = api.get("/v1.0/gateway/sim/sent?modem=sim1").await;
    assert_eq!(
        sent["dialled"],
        json!([connect::BUSY, connect::RINGS, connect::ANSWERS])
    );
    let calls = api.calls().await;
    let unanswered = calls
        .iter()
        .find(|c| c["destination"]["target"] == connect::RINGS)
        .unwrap();
    assert_eq!(
        (&unanswered["hangup_by"], &unanswered["hangup_reason"]),
        (&json!("local"), &json!("cancel")),
        "the agent that did not answer in time is cancelled"
    );
    let waited = qc["duration_waiting"].as_i64().unwrap();
    assert!(
        waited >= 1500,
        "the ringing agent had its ring timeout: {waited} ms"
    );

    // Caller and agent hear each other.
    let (at_caller, at_agent) = connect::exchange_tones(&sims).await;
    let (at_agent, at_caller) = (
        tone_share(&at_agent, 1000.0),
        tone_share(&at_caller, 1500.0),
    );
    eprintln!(
        "queue bridge: caller's tone at the agent {at_agent:.3}, agent's at the caller {at_caller:.3}"
    );
    assert!(at_agent > 0.8 && at_caller > 0.8);

    // The agent hangs up: the flow goes on after queue_join.
    api.post("/v1.0/gateway/sim/hangup?modem=sim1", json!({}))
        .await;
    let master = ended(&gw, &incoming).await;
    let af = api
        .wait_ended(master["activeflow_id"].as_str().unwrap())
        .await;
    assert_eq!(af["variables"]["after"], "queue desk");
    let qc = queuecall(&gw, &incoming, "done").await;
    assert_eq!(qc["end_reason"], "service_end");
    gw.stop().await;
}

/// The caller hangs up while an agent rings: the queuecall is abandoned and the agent's
/// leg is cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_hanging_up_abandons_and_cancels_the_ringing_agent() {
    let (gw, _dir) = connect::gateway("", "", 60).await;
    let api = gw.api();
    let queue = create_queue(
        &gw,
        json!({"name": "desk", "agents": [{"type": "tel", "target": connect::RINGS}]}),
    )
    .await;
    let incoming = connect::call_in(&gw, caller_flow(&queue)).await;
    let leg = api
        .wait_for("the agent to ring", || async {
            api.calls()
                .await
                .into_iter()
                .find(|c| c["direction"] == "outgoing" && c["status"] == "ringing")
        })
        .await;
    api.post("/v1.0/gateway/sim/hangup?modem=sim0", json!({}))
        .await;
    let qc = queuecall(&gw, &incoming, "abandoned").await;
    assert_eq!(qc["end_reason"], "hangup");
    let leg = ended(&gw, leg["id"].as_str().unwrap()).await;
    assert_eq!(
        (&leg["hangup_by"], &leg["hangup_reason"]),
        (&json!("local"), &json!("cancel"))
    );
    let q = api.get(&format!("/v1.0/queues/{queue}")).await;
    assert_eq!(q["total_abandoned_count"], 1);
    assert_eq!(q["wait_queuecall_ids"], json!([]));
    gw.stop().await;
}

/// The service timeout hangs the agent up and the caller's flow goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_timeout_ends_the_agents_call_and_the_flow_goes_on() {
    let (gw, _dir) = connect::gateway("", "", 60).await;
    let api = gw.api();
    let queue = create_queue(
        &gw,
        json!({"name": "desk", "service_timeout": 1500,
            "agents": [{"type": "tel", "target": connect::ANSWERS}]}),
    )
    .await;
    let incoming = connect::call_in(&gw, caller_flow(&queue)).await;
    let served = queuecall(&gw, &incoming, "service").await;
    let qc = queuecall(&gw, &incoming, "done").await;
    assert_eq!(qc["end_reason"], "service_timeout");
    let talked = qc["duration_service"].as_i64().unwrap();
    assert!(talked >= 1500, "served up to the timeout: {talked} ms");
    let agent = ended(&gw, served["service_call_id"].as_str().unwrap()).await;
    assert_eq!(agent["hangup_by"], "local");
    let af_id = call(&gw, &incoming).await["activeflow_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        api.wait_ended(&af_id).await["variables"]["after"],
        "queue desk"
    );
    gw.stop().await;
}

async fn call(gw: &Gateway, id: &str) -> Value {
    gw.api().get(&format!("/v1.0/calls/{id}")).await
}
