//! `transcribe_recording` and `transcribe_start`/`transcribe_stop` against a real
//! recogniser: pocketsphinx's bundled en-US acoustic model, with a spoken-digit grammar,
//! behind the OpenAI `/v1/audio/transcriptions` shape (`tests/stt/server.py`). The simulated caller speaks
//! espeak-ng digits; the flow sees the words, and so does `/v1.0/transcribes`. Then the
//! failures: an engine answering 500, one that never answers, none configured.

use flowgate_tests::{Gateway, JsonLineServer, WAIT, speak};
use serde_json::{Value, json};

/// What the caller says, and the words the recogniser must find.
const SPOKEN: &str = "one two three four five";
/// At least this many of the five words (measured: 5 of 5 through the gateway's 8 kHz
/// recording with the server's digit grammar; 3 leaves room for another pocketsphinx
/// build). The model's full language model finds 0-1 of 5 on this audio (see
/// `tests/stt/server.py`), so the tests use the grammar.
const MIN_WORDS: usize = 3;

/// The test recogniser (`tests/stt/server.py`); killed when dropped.
struct Stt(JsonLineServer);

impl Stt {
    async fn start(args: &[&str]) -> Self {
        Self(JsonLineServer::start("STT server", "pocketsphinx", "stt/server.py", args).await)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.0.port)
    }

    /// The next request the server answered.
    async fn request(&mut self) -> Value {
        self.0.next().await
    }
}

/// How many of `SPOKEN`'s words `text` has.
fn words_found(text: &str) -> usize {
    let heard: Vec<String> = text
        .split_whitespace()
        .map(|w| w.to_ascii_lowercase())
        .collect();
    SPOKEN
        .split(' ')
        .filter(|w| heard.iter().any(|h| h == w))
        .count()
}

/// Recording, then `transcribe_recording` of it.
fn recording_flow() -> Value {
    json!({"name": "transcribe recording", "detail": "", "actions": [
        {"type": "answer"},
        {"type": "recording_start", "option": {"format": "wav", "duration": 30}},
        {"type": "digits_receive", "option": {"duration": 30000, "key": "#"}},
        {"type": "recording_stop"},
        {"type": "transcribe_recording", "option": {"language": "en-US", "provider": "gcp"}},
        {"type": "variable_set", "option": {"key": "heard", "value": "${voipbin.gateway.transcript}"}},
        {"type": "variable_set", "option": {"key": "tid", "value": "${voipbin.transcribe.id}"}},
        {"type": "hangup"}]})
}

/// `transcribe_start` of the caller's side, then `transcribe_stop`.
fn live_flow() -> Value {
    json!({"name": "transcribe live", "detail": "", "actions": [
        {"type": "answer"},
        {"type": "transcribe_start", "option": {"language": "en-US", "direction": "in"}},
        {"type": "digits_receive", "option": {"duration": 30000, "key": "#"}},
        {"type": "transcribe_stop"},
        {"type": "variable_set", "option": {"key": "heard", "value": "${voipbin.gateway.transcript}"}},
        {"type": "variable_set", "option": {"key": "tid", "value": "${voipbin.transcribe.id}"}},
        {"type": "hangup"}]})
}

/// Rings the gateway with `flow`; once it waits for digits the caller says `SPOKEN` and
/// presses `#` (signalled, so the tone is not in the audio). Returns the ended activeflow.
async fn speak_into(gw: &Gateway, flow: Value) -> Value {
    let api = gw.api();
    let sim = gw.daemon().sims().remove(0);
    let flow = api.create_flow(flow).await;
    api.bind(Some(flow), None).await;
    api.post("/v1.0/gateway/sim/calls", json!({"from": "+15551112222"}))
        .await;
    let af = api
        .wait_for("the flow to wait for digits", || async {
            let call = api.calls().await.into_iter().next()?;
            let af = call["activeflow_id"].as_str()?.to_owned();
            let view = api.get(&format!("/v1.0/activeflows/{af}")).await;
            (view["current_action"]["type"] == "digits_receive").then_some(af)
        })
        .await;
    let audio = [vec![0i16; 2400], speak(SPOKEN), vec![0i16; 2400]].concat();
    sim.queue_audio(&audio).unwrap();
    sim.wait_for("the speech to be played", WAIT, |v| {
        (v.audio_queued() == 0).then_some(())
    })
    .await
    .unwrap();
    api.post("/v1.0/gateway/sim/dtmf", json!({"digits": "#"}))
        .await;
    api.wait_ended(&af).await
}

/// The executed action of `kind` in an ended activeflow.
fn executed(af: &Value, kind: &str) -> Value {
    af["executed_actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == kind)
        .cloned()
        .unwrap_or_else(|| panic!("no {kind} in {af}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcribe_recording_hears_the_caller() {
    let mut stt = Stt::start(&["--digits"]).await;
    let endpoint = stt.endpoint();
    let gw = Gateway::start_with(|c| {
        c.transcribe.endpoint = endpoint;
        c.transcribe.model = "pocketsphinx-en-us".into();
        c.transcribe.api_key = "k3y".into();
    })
    .await;
    let af = speak_into(&gw, recording_flow()).await;
    let heard = af["variables"]["heard"].as_str().unwrap().to_owned();
    let found = words_found(&heard);
    println!("transcribe_recording heard {heard:?}: {found}/5 words");
    assert!(found >= MIN_WORDS, "heard {heard:?} ({found}/5)\n{af}");
    assert_eq!(executed(&af, "transcribe_recording")["outcome"], "executed");

    // What the engine was sent: the OpenAI form fields, the key, the primary subtag.
    let sent = stt.request().await;
    assert_eq!(sent["model"], "pocketsphinx-en-us", "{sent}");
    assert_eq!(sent["language"], "en", "{sent}");
    assert_eq!(sent["response_format"], "json", "{sent}");
    assert_eq!(sent["authorization"], "Bearer k3y", "{sent}");

    // The API has it, as VoIPBIN's transcribe with its transcript.
    let tid = af["variables"]["tid"].as_str().unwrap();
    let t = gw.api().get(&format!("/v1.0/transcribes/{tid}")).await;
    assert_eq!(t["status"], "done", "{t}");
    assert_eq!(t["reference_type"], "recording", "{t}");
    assert_eq!(t["language"], "en-US", "{t}");
    assert_eq!(t["direction"], "both", "{t}");
    assert_eq!(t["transcripts"][0]["message"], heard.as_str(), "{t}");
    let list = gw.api().get("/v1.0/transcribes").await;
    assert_eq!(list["result"].as_array().unwrap().len(), 1, "{list}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcribe_start_and_stop_hear_the_caller() {
    let stt = Stt::start(&["--digits"]).await;
    let endpoint = stt.endpoint();
    let gw = Gateway::start_with(|c| c.transcribe.endpoint = endpoint).await;
    let af = speak_into(&gw, live_flow()).await;
    let heard = af["variables"]["heard"].as_str().unwrap().to_owned();
    let found = words_found(&heard);
    println!("transcribe_start/stop heard {heard:?}: {found}/5 words");
    assert!(found >= MIN_WORDS, "heard {heard:?} ({found}/5)\n{af}");
    assert_eq!(executed(&af, "transcribe_stop")["outcome"], "executed");
    let tid = af["variables"]["tid"].as_str().unwrap();
    let t = gw.api().get(&format!("/v1.0/transcribes/{tid}")).await;
    assert_eq!(t["status"], "done", "{t}");
    assert_eq!(t["reference_type"], "call", "{t}");
    assert_eq!(t["direction"], "in", "{t}");
    // The captured segment is a recording of the call, not one of its recording_ids.
    let recording = t["recording_ids"][0].as_str().unwrap();
    let r = gw.api().get(&format!("/v1.0/recordings/{recording}")).await;
    assert_eq!(r["status"], "ended", "{r}");
    let call = gw.api().calls().await.into_iter().next().unwrap();
    assert_eq!(call["recording_ids"], json!([]), "{call}");
    gw.stop().await;
}

/// Runs the recording flow against an engine that fails; returns the failed action.
async fn failing(gw: &Gateway) -> (Value, Value) {
    let af = speak_into(gw, recording_flow()).await;
    let action = executed(&af, "transcribe_recording");
    assert_eq!(action["outcome"], "failed", "{action}");
    // Swallowed: the flow went on to the end.
    assert_eq!(executed(&af, "hangup")["type"], "hangup");
    (af, action)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcribe_failures_are_recorded_and_the_flow_goes_on() {
    // An engine answering 500.
    let stt = Stt::start(&["--fail-status", "500"]).await;
    let endpoint = stt.endpoint();
    let gw = Gateway::start_with(|c| c.transcribe.endpoint = endpoint).await;
    let (_, action) = failing(&gw).await;
    let text = action.to_string();
    assert!(
        text.contains("HTTP 500") && text.contains("the test server refuses"),
        "{text}"
    );
    let list = gw.api().get("/v1.0/transcribes").await;
    let t = &list["result"][0];
    assert_eq!(t["status"], "failed", "{list}");
    assert!(t["error"].as_str().unwrap().contains("HTTP 500"), "{list}");
    gw.stop().await;

    // An engine that never answers: the timeout.
    let stt = Stt::start(&["--hang"]).await;
    let endpoint = stt.endpoint();
    let gw = Gateway::start_with(|c| {
        c.transcribe.endpoint = endpoint;
        c.transcribe.timeout_secs = 1;
    })
    .await;
    let (_, action) = failing(&gw).await;
    assert!(
        action.to_string().contains("no answer within 1 s"),
        "{action}"
    );
    gw.stop().await;

    // Nobody listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let gw =
        Gateway::start_with(|c| c.transcribe.endpoint = format!("http://127.0.0.1:{port}")).await;
    let (_, action) = failing(&gw).await;
    assert!(action.to_string().contains("connection failed"), "{action}");
    gw.stop().await;

    // No engine configured.
    let gw = Gateway::start().await;
    let (_, action) = failing(&gw).await;
    assert!(
        action
            .to_string()
            .contains("no speech-to-text engine is configured"),
        "{action}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hang_up_sends_the_live_segment_in_the_background() {
    let stt = Stt::start(&["--digits"]).await;
    let endpoint = stt.endpoint();
    let gw = Gateway::start_with(|c| c.transcribe.endpoint = endpoint).await;
    let api = gw.api();
    let sim = gw.daemon().sims().remove(0);
    let flow = api
        .create_flow(
            json!({"name": "transcribe until hang-up", "detail": "", "actions": [
            {"type": "answer"},
            {"type": "transcribe_start", "option": {"language": "en-US"}},
            {"type": "digits_receive", "option": {"duration": 30000, "key": "#"}},
            {"type": "hangup"}]}),
        )
        .await;
    api.bind(Some(flow), None).await;
    api.post("/v1.0/gateway/sim/calls", json!({"from": "+15551112222"}))
        .await;
    let af = api
        .wait_for("the flow to wait for digits", || async {
            let call = api.calls().await.into_iter().next()?;
            let af = call["activeflow_id"].as_str()?.to_owned();
            let view = api.get(&format!("/v1.0/activeflows/{af}")).await;
            (view["current_action"]["type"] == "digits_receive").then_some(af)
        })
        .await;
    let audio = [vec![0i16; 2400], speak(SPOKEN), vec![0i16; 2400]].concat();
    sim.queue_audio(&audio).unwrap();
    sim.wait_for("the speech to be played", WAIT, |v| {
        (v.audio_queued() == 0).then_some(())
    })
    .await
    .unwrap();
    // The caller hangs up: no transcribe_stop runs; the segment goes to the engine anyway.
    api.post("/v1.0/gateway/sim/hangup", json!({})).await;
    api.wait_ended(&af).await;
    let t = api
        .wait_for("the transcription to finish", || async {
            let list = api.get("/v1.0/transcribes").await;
            let t = list["result"].as_array()?.first()?.clone();
            (t["status"] != "progressing").then_some(t)
        })
        .await;
    assert_eq!(t["status"], "done", "{t}");
    assert_eq!(t["direction"], "both", "{t}");
    let heard = t["transcripts"][0]["message"].as_str().unwrap();
    let found = words_found(heard);
    println!("after hang-up heard {heard:?}: {found}/5 words");
    assert!(found >= MIN_WORDS, "heard {heard:?} ({found}/5)\n{t}");
    gw.stop().await;
}
