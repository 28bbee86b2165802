//! `conference_join` on a three-modem board: three GSM calls join one local conference;
//! each caller hears the other two and never itself, a participant muted through the API
//! is no longer heard, one leaving (hanging up) ends neither the others nor the
//! conference, an interrupted flow takes its call out and goes on, and the conference
//! ends with its last participant.
//!
//! VoIPBIN's conference resource: a conference created through the API is recorded as
//! one file holding every participant (tone detection on the file), a participant is
//! kicked (its flow goes on), deleting the conference kicks the others; a conference's
//! pre flow runs before the join, and its timeout ends it (and its recording).

use std::path::Path;

use flowgate_tests::{Gateway, SIM_NUMBER, WAIT};
use reqwest::Method;
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

const NIL: &str = "00000000-0000-0000-0000-000000000000";

/// A request expected to fail with `status`.
async fn refused(gw: &Gateway, method: Method, path: &str, body: Option<Value>, status: u16) {
    let token = gw.daemon().token();
    let (got, value) = gw
        .api()
        .call(method, path, body, Some(token.as_str()))
        .await;
    assert_eq!(got.as_u16(), status, "{path}: {value}");
}

/// DELETE, expecting 2xx.
async fn delete(gw: &Gateway, path: &str) -> Value {
    let token = gw.daemon().token();
    let (status, value) = gw
        .api()
        .call(Method::DELETE, path, None, Some(token.as_str()))
        .await;
    assert!(status.is_success(), "DELETE {path} -> {status}: {value}");
    value
}

/// Waits for the flow of `call` to have ended; returns its variables.
async fn flow_variables(gw: &Gateway, call: &str) -> Value {
    let api = gw.api();
    let c = api.get(&format!("/v1.0/calls/{call}")).await;
    let af = api.wait_ended(c["activeflow_id"].as_str().unwrap()).await;
    af["variables"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_conference_is_recorded_as_one_file_and_kicks_its_participants() {
    let dir = tempfile::tempdir().unwrap();
    let profile = board(dir.path());
    let gw = Gateway::start_with(|c| c.board.profile = profile).await;
    let api = gw.api();
    let sims = gw.daemon().sims();

    let conf = api
        .post(
            "/v1.0/conferences",
            json!({"id": CONFERENCE, "type": "conference", "name": "standup", "detail": "daily",
                "data": {"team": "ops"}, "timeout": 0, "pre_flow_id": NIL, "post_flow_id": NIL}),
        )
        .await;
    assert_eq!(conf["id"], CONFERENCE);
    assert_eq!(conf["type"], "conference");
    assert_eq!(conf["status"], "progressing");
    assert_eq!(conf["name"], "standup");
    assert_eq!(conf["data"]["team"], "ops");
    assert_eq!(conf["recording_id"], NIL);
    refused(
        &gw,
        Method::POST,
        "/v1.0/conferences",
        Some(json!({"id": CONFERENCE})),
        400,
    )
    .await;
    // Created, it lives without participants.
    assert_eq!(conferences(&gw).await.len(), 1);

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
    let mut calls = Vec::new();
    for i in 0..3 {
        calls.push(call_in(&gw, i).await);
        let ids: Vec<&str> = calls.iter().map(String::as_str).collect();
        wait_participants(&gw, &ids).await;
    }
    let conf = api.get(&format!("/v1.0/conferences/{CONFERENCE}")).await;
    let conferencecalls: Vec<String> = conf["conferencecall_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(conferencecalls.len(), 3);
    let cc = api
        .get(&format!("/v1.0/conferencecalls/{}", conferencecalls[1]))
        .await;
    assert_eq!(cc["conference_id"], CONFERENCE);
    assert_eq!(cc["reference_type"], "call");
    assert_eq!(cc["reference_id"], calls[1].as_str());
    assert_eq!(cc["status"], "joined");

    // The recording: one file, every participant in it.
    let started = api
        .post(
            &format!("/v1.0/conferences/{CONFERENCE}/recording_start"),
            json!({"format": "wav", "duration": 0, "on_end_flow_id": NIL}),
        )
        .await;
    let recording = started["recording_id"].as_str().unwrap().to_owned();
    assert_ne!(recording, NIL);
    assert_eq!(started["recording_ids"][0], recording.as_str());
    refused(
        &gw,
        Method::POST,
        &format!("/v1.0/conferences/{CONFERENCE}/recording_start"),
        Some(json!({"format": "wav"})),
        400,
    )
    .await;
    let freqs = [1000.0, 1500.0, 2100.0];
    for sim in &sims {
        sim.clear_audio();
        sim.take_recorded_audio();
    }
    for (sim, hz) in sims.iter().zip(freqs) {
        sim.queue_audio(&tone(hz, 8000)).unwrap();
    }
    // Every caller heard the others' second of tone: it went through the mixer.
    for sim in &sims {
        sim.wait_for_recorded(12_000, WAIT).await.unwrap();
    }
    let stopped = api
        .post(
            &format!("/v1.0/conferences/{CONFERENCE}/recording_stop"),
            json!({}),
        )
        .await;
    assert_eq!(stopped["recording_id"], NIL);
    refused(
        &gw,
        Method::POST,
        &format!("/v1.0/conferences/{CONFERENCE}/recording_stop"),
        None,
        400,
    )
    .await;
    let r = api.get(&format!("/v1.0/recordings/{recording}")).await;
    assert_eq!(r["reference_type"], "confbridge");
    assert_eq!(r["reference_id"], CONFERENCE);
    assert_eq!(r["status"], "ended");
    assert_eq!(r["end_reason"], "stop");
    let wav = api
        .get_bytes(&format!("/v1.0/recordings/{recording}/file"))
        .await;
    assert_eq!(&wav[..4], b"RIFF");
    let samples: Vec<i16> = wav[44..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let shares: Vec<f64> = freqs.iter().map(|&hz| tone_share(&samples, hz)).collect();
    // Mixed, not merely one after the other: 20 ms blocks holding all three at once.
    let together = samples
        .chunks_exact(160)
        .filter(|block| freqs.iter().all(|&hz| tone_share(block, hz) > 0.2))
        .count();
    eprintln!(
        "conference recording: {} ms, best-block tone shares (1 kHz, 1.5 kHz, 2.1 kHz) {shares:.3?}, \
         {together} blocks of 20 ms with all three",
        samples.len() / 8
    );
    for (hz, share) in freqs.iter().zip(&shares) {
        assert!(*share > 0.3, "{hz} Hz is in the recording: {share}");
    }
    assert!(
        together >= 10,
        "the three tones are mixed: {together} blocks"
    );

    // A digit the first caller sends in-band: the others hear it in the mix, and it is
    // reported as that participant's conference digit.
    api.post(
        "/v1.0/gateway/sim/dtmf?modem=sim0",
        json!({"digits": "3", "mode": "inband"}),
    )
    .await;
    api.wait_for("the in-band conference digit", || async {
        let page = api.get("/v1.0/gateway/events?limit=1000").await;
        page["events"]
            .as_array()?
            .iter()
            .find(|e| {
                e["type"] == "conference_dtmf"
                    && e["data"]["digit"] == "3"
                    && e["data"]["call_id"] == calls[0].as_str()
                    && e["data"]["source"] == "in_band"
                    && e["data"]["conferencecall_id"] == conferencecalls[0].as_str()
            })
            .map(|_| ())
    })
    .await;

    // A participant kicked: it leaves, its flow goes on after the join.
    let kicked = delete(
        &gw,
        &format!("/v1.0/conferencecalls/{}", conferencecalls[1]),
    )
    .await;
    assert_eq!(kicked["status"], "leaving");
    wait_participants(&gw, &[&calls[0], &calls[2]]).await;
    let vars = flow_variables(&gw, &calls[1]).await;
    assert_eq!(vars["after"], "conference");
    assert_eq!(vars["voipbin.conference.id"], CONFERENCE);
    assert_eq!(vars["voipbin.conference.name"], "standup");
    assert_eq!(
        vars["voipbin.conferencecall.id"],
        conferencecalls[1].as_str()
    );
    refused(
        &gw,
        Method::DELETE,
        &format!("/v1.0/conferencecalls/{}", conferencecalls[1]),
        None,
        404,
    )
    .await;

    // The conference deleted: the others are kicked, their flows go on.
    let ended = delete(&gw, &format!("/v1.0/conferences/{CONFERENCE}")).await;
    assert_eq!(ended["status"], "terminated");
    for call in [&calls[0], &calls[2]] {
        assert_eq!(flow_variables(&gw, call).await["after"], "conference");
    }
    refused(
        &gw,
        Method::GET,
        &format!("/v1.0/conferences/{CONFERENCE}"),
        None,
        404,
    )
    .await;
    assert!(conferences(&gw).await.is_empty());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conference_runs_its_pre_flow_and_its_timeout_ends_it_with_its_recording() {
    let dir = tempfile::tempdir().unwrap();
    let profile = board(dir.path());
    let gw = Gateway::start_with(|c| c.board.profile = profile).await;
    let api = gw.api();
    let pre = api
        .create_flow(json!({"name": "pre", "detail": "", "actions": [
            {"type": "variable_set", "option": {"key": "pre", "value": "ran"}}]}))
        .await;
    // VoIPBIN's shortest timeout: under a minute means a day.
    let conf = api
        .post(
            "/v1.0/conferences",
            json!({"name": "timed", "timeout": 60, "pre_flow_id": pre.to_string()}),
        )
        .await;
    let id = conf["id"].as_str().unwrap().to_owned();
    assert_eq!(conf["timeout"], 60);
    assert_eq!(conf["pre_flow_id"], pre.to_string());
    let short = api
        .post("/v1.0/conferences", json!({"name": "short", "timeout": 5}))
        .await;
    assert_eq!(short["timeout"], 86_400);
    delete(
        &gw,
        &format!("/v1.0/conferences/{}", short["id"].as_str().unwrap()),
    )
    .await;
    refused(
        &gw,
        Method::POST,
        "/v1.0/conferences",
        Some(json!({"pre_flow_id": uuid::Uuid::new_v4().to_string()})),
        400,
    )
    .await;

    let flow = api
        .create_flow(json!({"name": "conference", "detail": "", "actions": [
            {"type": "conference_join", "option": {"conference_id": id}},
            {"type": "variable_set", "option": {"key": "after", "value": "conference"}}]}))
        .await;
    api.post(
        "/v1.0/numbers",
        json!({"number": NUMBERS[0], "call_flow_id": flow.to_string()}),
    )
    .await;
    let call = call_in(&gw, 0).await;
    api.wait_for("the participant", || async {
        let c = api.get(&format!("/v1.0/conferences/{id}")).await;
        (c["participants"][0]["reference_id"] == call.as_str()).then_some(())
    })
    .await;
    let started = api
        .post(
            &format!("/v1.0/conferences/{id}/recording_start"),
            json!({"format": "wav"}),
        )
        .await;
    let recording = started["recording_id"].as_str().unwrap().to_owned();

    // The timeout (a minute from the creation) ends the conference: the participant is
    // kicked, its flow goes on, the recording ends with the conference.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let token = gw.daemon().token();
    let mut after = api.get("/v1.0/gateway/events?limit=1").await["last_seq"]
        .as_u64()
        .unwrap_or(0);
    loop {
        let (status, _) = api
            .call(
                Method::GET,
                &format!("/v1.0/conferences/{id}"),
                None,
                Some(token.as_str()),
            )
            .await;
        if status == 404 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the conference outlived its timeout"
        );
        // Long-poll the event log: returns on any change (the conference's end is one),
        // or after a second.
        let page = api
            .get(&format!(
                "/v1.0/gateway/events?after={after}&limit=1000&wait=1"
            ))
            .await;
        after = page["next_after"].as_u64().unwrap_or(after);
    }
    let vars = flow_variables(&gw, &call).await;
    assert_eq!(vars["pre"], "ran", "the pre flow ran before the join");
    assert_eq!(vars["after"], "conference");
    let r = api
        .wait_for("the recording's end", || async {
            let r = api.get(&format!("/v1.0/recordings/{recording}")).await;
            (r["status"] == "ended").then_some(r)
        })
        .await;
    assert_eq!(r["end_reason"], "hangup");
    assert!(r["duration_ms"].as_u64().unwrap() > 1000, "{r}");
    gw.stop().await;
}
