//! `conference_join` on a three-modem board: three GSM calls join one local conference;
//! each caller hears the other two and never itself, a participant muted through the API
//! is no longer heard, one leaving (hanging up) ends neither the others nor the
//! conference, an interrupted flow takes its call out and goes on, and the conference
//! ends with its last participant.

use std::path::Path;

use flowgate_tests::{Gateway, SIM_NUMBER, WAIT};
use serde_json::{Value, json};

use crate::connect::{tone, tone_share};

const CONFERENCE: &str = "00000000-0000-4000-8000-00000000c0f1";
/// Where an interrupt sends a participant's flow.
const OUT: &str = "00000000-0000-4000-8000-00000000c0f2";
const NUMBERS: [&str; 3] = [SIM_NUMBER, "+15550002000", "+15550003000"];

fn board(dir: &Path) -> String {
    let mut text = "name = \"conference-test\"\ndescription = \"three modems\"\n".to_owned();
    for (i, number) in NUMBERS.iter().enumerate() {
        text.push_str(&format!(
            "\n[[modem]]\nid = \"sim{i}\"\nprofile = \"quectel-ec25\"\n[modem.simulated]\nown_number = \"{number}\"\n"
        ));
    }
    let path = dir.join("board.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

async fn conferences(gw: &Gateway) -> Vec<Value> {
    gw.api().get("/v1.0/conferences").await["result"]
        .as_array()
        .unwrap()
        .clone()
}

/// Waits for the conference to have exactly `calls` as participants (in any order).
async fn wait_participants(gw: &Gateway, calls: &[&str]) -> Value {
    let api = gw.api();
    api.wait_for(&format!("{} participants", calls.len()), || async {
        let list = conferences(gw).await;
        let conf = list.iter().find(|c| c["id"] == CONFERENCE)?;
        let ids: Vec<&str> = conf["participants"]
            .as_array()?
            .iter()
            .filter_map(|p| p["call_id"].as_str())
            .collect();
        (ids.len() == calls.len() && calls.iter().all(|c| ids.contains(c))).then(|| conf.clone())
    })
    .await
}

/// Rings modem `i`; returns the id of its incoming call.
async fn call_in(gw: &Gateway, i: usize) -> String {
    let api = gw.api();
    api.post(
        &format!("/v1.0/gateway/sim/calls?modem=sim{i}"),
        json!({"from": format!("+1555333444{i}")}),
    )
    .await;
    api.wait_for("the incoming call", || async {
        let calls = api.calls().await;
        let call = calls.iter().find(|c| c["line_id"] == format!("sim{i}"))?;
        Some(call["id"].as_str()?.to_owned())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_calls_hear_each_other_but_not_themselves_and_leave_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let profile = board(dir.path());
    let gw = Gateway::start_with(|c| c.board.profile = profile).await;
    let api = gw.api();
    let sims = gw.daemon().sims();
    let flow = api
        .create_flow(json!({"name": "conference", "detail": "", "actions": [
            {"type": "conference_join", "option": {"conference_id": CONFERENCE}},
            {"id": OUT, "type": "variable_set", "option": {"key": "after", "value": "conference"}}]}))
        .await;
    for number in NUMBERS {
        api.post(
            "/v1.0/numbers",
            json!({"number": number, "call_flow_id": flow.to_string()}),
        )
        .await;
    }
    assert!(conferences(&gw).await.is_empty());

    let mut calls = Vec::new();
    for i in 0..3 {
        calls.push(call_in(&gw, i).await);
        let ids: Vec<&str> = calls.iter().map(String::as_str).collect();
        wait_participants(&gw, &ids).await;
    }

    // 1 kHz from the first caller, 1.5 kHz from the second, the third silent.
    let listen = async |feeds: [Option<f64>; 3], in_call: usize| -> Vec<Vec<i16>> {
        for sim in &sims {
            sim.clear_audio();
            sim.take_recorded_audio();
        }
        for (sim, hz) in sims.iter().zip(feeds) {
            if let Some(hz) = hz {
                sim.queue_audio(&tone(hz, 8000)).unwrap();
            }
        }
        // Only the callers still in the call hear anything.
        for sim in sims.iter().take(in_call) {
            sim.wait_for_recorded(12_000, WAIT).await.unwrap();
        }
        sims.iter().map(|s| s.take_recorded_audio()).collect()
    };
    let heard = listen([Some(1000.0), Some(1500.0), None], 3).await;
    let share = |who: usize, hz: f64| tone_share(&heard[who], hz);
    eprintln!(
        "tone shares (1 kHz, 1.5 kHz) heard by each caller: {:.3?}",
        (0..3)
            .map(|w| (share(w, 1000.0), share(w, 1500.0)))
            .collect::<Vec<_>>()
    );
    assert!(share(0, 1500.0) > 0.8, "the first caller hears the second");
    assert!(share(0, 1000.0) < 0.1, "... and not itself");
    assert!(share(1, 1000.0) > 0.8, "the second caller hears the first");
    assert!(share(1, 1500.0) < 0.1, "... and not itself");
    assert!(
        share(2, 1000.0) > 0.3 && share(2, 1500.0) > 0.3,
        "the third caller hears both: {} {}",
        share(2, 1000.0),
        share(2, 1500.0)
    );

    // The second caller muted through the API: nobody hears it, it still hears.
    let conf = api
        .post(
            &format!(
                "/v1.0/conferences/{CONFERENCE}/participants/{}/mute",
                calls[1]
            ),
            json!({}),
        )
        .await;
    assert_eq!(conf["participants"][1]["muted"], true);
    let heard = listen([Some(1000.0), Some(1500.0), None], 3).await;
    assert!(tone_share(&heard[2], 1000.0) > 0.8, "the first is heard");
    assert!(tone_share(&heard[2], 1500.0) < 0.1, "the muted one is not");
    assert!(tone_share(&heard[0], 1500.0) < 0.1, "the muted one is not");
    assert!(tone_share(&heard[1], 1000.0) > 0.8, "the muted one hears");
    let (status, _) = api
        .call(
            reqwest::Method::POST,
            &format!(
                "/v1.0/conferences/{CONFERENCE}/participants/{}/mute",
                uuid::Uuid::nil()
            ),
            None,
            Some(gw.daemon().token().as_str()),
        )
        .await;
    assert_eq!(status, 404, "no such participant");
    let (status, _) = api
        .call(
            reqwest::Method::DELETE,
            &format!(
                "/v1.0/conferences/{CONFERENCE}/participants/{}/mute",
                calls[1]
            ),
            None,
            Some(gw.daemon().token().as_str()),
        )
        .await;
    assert!(status.is_success(), "{status}");

    // The third caller hangs up: it leaves, the others stay and still hear each other.
    api.post("/v1.0/gateway/sim/hangup?modem=sim2", json!({}))
        .await;
    wait_participants(&gw, &[&calls[0], &calls[1]]).await;
    let third = api.get(&format!("/v1.0/calls/{}", calls[2])).await;
    let af = api
        .wait_ended(third["activeflow_id"].as_str().unwrap())
        .await;
    assert!(
        af["variables"].get("after").is_none(),
        "the flow ends with the call"
    );
    for id in &calls[..2] {
        let c = api.get(&format!("/v1.0/calls/{id}")).await;
        assert_eq!(c["status"], "progressing", "{id} is still up");
    }
    let heard = listen([Some(1000.0), Some(1500.0), None], 2).await;
    assert!(tone_share(&heard[0], 1500.0) > 0.8);
    assert!(tone_share(&heard[1], 1000.0) > 0.8);

    // The second caller's flow is interrupted (a jump, now): it leaves the conference and
    // its flow goes on after it (then ends, hanging the call up); the first stays.
    let second = api.get(&format!("/v1.0/calls/{}", calls[1])).await;
    let af = second["activeflow_id"].as_str().unwrap().to_owned();
    api.put(
        &format!("/v1.0/activeflows/{af}/forward_action_id"),
        json!({"forward_action_id": OUT, "forward_now": true}),
    )
    .await;
    wait_participants(&gw, &[&calls[0]]).await;
    let af = api.wait_ended(&af).await;
    assert_eq!(af["variables"]["after"], "conference");
    let first = api.get(&format!("/v1.0/calls/{}", calls[0])).await;
    assert_eq!(first["status"], "progressing", "the first caller stays");

    // The last one leaves: the conference is gone.
    api.post("/v1.0/gateway/sim/hangup?modem=sim0", json!({}))
        .await;
    api.wait_for("the conference to end", || async {
        conferences(&gw).await.is_empty().then_some(())
    })
    .await;
    gw.stop().await;
}
