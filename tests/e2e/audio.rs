use flowgate_tests::{Gateway, WAIT};
use serde_json::{Value, json};

const B2: &str = "00000000-0000-4000-8000-0000000000b2";
const BF: &str = "00000000-0000-4000-8000-0000000000bf";

fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt()
}

/// `n` samples of a 440 Hz tone at about −12 dBFS.
#[expect(
    clippy::cast_possible_truncation,
    reason = "the amplitude is bounded to ±8000"
)]
fn tone_440(n: u32) -> Vec<i16> {
    (0..n)
        .map(|i| {
            (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * f64::from(i) / 8000.0).sin()) as i16
        })
        .collect()
}

/// A voicemail IVR: prompt, one digit, branch, recording ended by `#`.
fn voicemail_ivr() -> Value {
    json!({"name": "voicemail-ivr", "detail": "", "actions": [
        {"type": "answer"},
        {"type": "talk", "option": {"text": "Press two to leave a message.", "language": "en-US"}},
        {"type": "digits_receive", "option": {"duration": 20000, "length": 1}},
        {"type": "branch", "option": {"target_ids": {"2": B2}, "default_target_id": BF}},
        {"id": BF, "type": "hangup"},
        {"id": B2, "type": "recording_start", "option": {"format": "wav", "end_of_key": "#", "duration": 30}},
        {"type": "digits_receive", "option": {"duration": 30000, "key": "#"}},
        {"type": "variable_set", "option": {"key": "recorded", "value": "${voipbin.recording.id}"}},
        {"type": "hangup"}]})
}

/// Waits until the call's flow is on the `nth` (0-based) `digits_receive`.
async fn wait_digits(gw: &Gateway, nth: usize) -> String {
    let api = gw.api();
    api.wait_for("the flow to wait for digits", || async {
        let call = api.calls().await.into_iter().next()?;
        let af = call["activeflow_id"].as_str()?.to_owned();
        let view = api.get(&format!("/v1.0/activeflows/{af}")).await;
        let seen = view["executed_actions"]
            .as_array()?
            .iter()
            .filter(|e| e["type"] == "digits_receive")
            .count();
        (view["current_action"]["type"] == "digits_receive" && seen == nth + 1).then_some(af)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ivr_prompt_inband_digit_and_voicemail_ending_on_hash() {
    let gw = Gateway::start().await;
    let api = gw.api();
    let sim = gw.daemon().sims().remove(0);
    let flow = api.create_flow(voicemail_ivr()).await;
    api.bind(Some(flow), None).await;
    api.post("/v1.0/gateway/sim/calls", json!({"from": "+15551112222"}))
        .await;

    // The prompt is heard: energy in what the gateway sent while `talk` ran …
    let af = wait_digits(&gw, 0).await;
    let prompt = sim.take_recorded_audio();
    assert!(
        rms(&prompt) > 300.0,
        "no prompt energy (rms {})",
        rms(&prompt)
    );
    // … and silence afterwards, while the flow waits for a digit.
    let before = sim.recorded_audio().len();
    sim.wait_for_recorded(before + 8000, WAIT).await.unwrap();
    let after = sim.recorded_audio();
    assert!(
        rms(&after[before..]) < 50.0,
        "not silent after the prompt (rms {})",
        rms(&after[before..])
    );

    // The caller presses 2 as in-band tones (no modem URC).
    api.post(
        "/v1.0/gateway/sim/dtmf",
        json!({"digits": "2", "mode": "inband"}),
    )
    .await;
    wait_digits(&gw, 1).await;
    let call = api.calls().await.into_iter().next().unwrap();
    let recording_id = call["recording_id"].as_str().unwrap().to_owned();

    // Something to record (a 1 s, 440 Hz tone), then `#` ends recording and flow step.
    let tone = tone_440(8000);
    sim.queue_audio(&tone).unwrap();
    sim.wait_for("the tone to be played", WAIT, |v| {
        (v.audio_queued() == 0).then_some(())
    })
    .await
    .unwrap();
    api.post(
        "/v1.0/gateway/sim/dtmf",
        json!({"digits": "#", "mode": "inband"}),
    )
    .await;

    let ended = api.wait_ended(&af).await;
    assert_eq!(ended["variables"]["recorded"], recording_id.as_str());
    let recording = api
        .wait_for("the recording to end", || async {
            let r = api.get(&format!("/v1.0/recordings/{recording_id}")).await;
            (r["status"] == "ended").then_some(r)
        })
        .await;
    assert_eq!(recording["end_reason"], "key:#");
    assert!(
        recording["duration_ms"].as_u64().unwrap() >= 900,
        "{recording}"
    );

    // The file is downloadable: a WAV holding the tone.
    let wav = api
        .get_bytes(&format!("/v1.0/recordings/{recording_id}/file"))
        .await;
    assert_eq!(&wav[..4], b"RIFF");
    let samples: Vec<i16> = wav[44..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert!(samples.len() >= 7000, "{} samples", samples.len());
    assert!(
        rms(&samples) > 1000.0,
        "the tone is not in the recording (rms {})",
        rms(&samples)
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_talk_interrupt_is_heard_while_the_flow_waits_for_digits() {
    let gw = Gateway::start().await;
    let api = gw.api();
    let sim = gw.daemon().sims().remove(0);
    let flow = api
        .create_flow(json!({"name": "wait", "detail": "", "actions": [
            {"type": "answer"},
            {"type": "digits_receive", "option": {"duration": 60000, "length": 1}},
            {"type": "hangup"}]}))
        .await;
    api.bind(Some(flow), None).await;
    api.post("/v1.0/gateway/sim/calls", json!({"from": "+15551112222"}))
        .await;
    let af = wait_digits(&gw, 0).await;
    sim.wait_for("voice audio", WAIT, |v| v.audio_active().then_some(()))
        .await
        .unwrap();
    sim.take_recorded_audio();

    let call_id = api.calls().await[0]["id"].as_str().unwrap().to_owned();
    api.post(
        &format!("/v1.0/calls/{call_id}/talk"),
        json!({"text": "Your call is important to us.", "language": "en-US"}),
    )
    .await;
    // Heard: speech energy reaches the caller …
    sim.wait_for("the interrupt prompt", WAIT, |v| {
        let r = v.recorded_len();
        (r > 4000).then_some(())
    })
    .await
    .unwrap();
    tokio::time::timeout(WAIT, async {
        loop {
            let heard = sim.recorded_audio();
            if heard.chunks(800).any(|w| rms(w) > 300.0) {
                break;
            }
            let n = heard.len();
            sim.wait_for_recorded(n + 1600, WAIT).await.unwrap();
        }
    })
    .await
    .expect("the interrupt prompt was never heard");
    // … and the flow did not move: still waiting for the digit.
    let view = api.get(&format!("/v1.0/activeflows/{af}")).await;
    assert_eq!(view["current_action"]["type"], "digits_receive");
    assert_eq!(view["status"], "running");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_cuts_the_prompt_and_the_digit_counts() {
    let gw = Gateway::start().await;
    let api = gw.api();
    let sim = gw.daemon().sims().remove(0);
    let long = "Thank you for calling. All our agents are busy helping other customers. \
                Please stay on the line, or press any key to skip this message and go straight to the menu.";
    let flow = api
        .create_flow(json!({"name": "barge", "detail": "", "actions": [
            {"type": "answer"},
            {"type": "talk", "option": {"text": long, "language": "en-US", "digits_handle": "next"}},
            {"type": "digits_receive", "option": {"duration": 20000, "length": 1}},
            {"type": "variable_set", "option": {"key": "pressed", "value": "${voipbin.call.digits}"}},
            {"type": "hangup"}]}))
        .await;
    api.bind(Some(flow), None).await;
    api.post("/v1.0/gateway/sim/calls", json!({"from": "+15551112222"}))
        .await;

    // Wait until the prompt is audibly playing.
    let mut heard = 0;
    tokio::time::timeout(WAIT, async {
        loop {
            let audio = sim.recorded_audio();
            if audio.chunks(160).filter(|w| rms(w) > 300.0).count() > 25 {
                heard = audio.len();
                break;
            }
            sim.wait_for_recorded(audio.len() + 800, WAIT)
                .await
                .unwrap();
        }
    })
    .await
    .expect("the prompt never played");
    api.post(
        "/v1.0/gateway/sim/dtmf",
        json!({"digits": "5", "mode": "inband", "duration_ms": 80}),
    )
    .await;

    let af = api.calls().await[0]["activeflow_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ended = api.wait_ended(&af).await;
    // The digit pressed during the prompt satisfied the digits_receive after it.
    assert_eq!(ended["variables"]["pressed"], "5");
    // The prompt stopped soon after the key: its 80 ms tone, ~40 ms to detect it, and the
    // pipeline; nowhere near the ~10 s the full text would take.
    let audio = sim.recorded_audio();
    let last_speech = audio.chunks(160).rposition(|w| rms(w) > 300.0).unwrap() * 160;
    assert!(
        last_speech < heard + 8 * 400,
        "speech went on {} ms after the key was sent",
        (last_speech.saturating_sub(heard)) / 8
    );
    gw.stop().await;
}

/// The call from `caller`, once its flow waits in its first `digits_receive`; returns the
/// call and its activeflow.
async fn call_in_digits(gw: &Gateway, caller: &str) -> (String, String) {
    let api = gw.api();
    api.wait_for("the caller's flow to wait for digits", || async {
        let call = api
            .calls()
            .await
            .into_iter()
            .find(|c| c["source"]["target"] == caller)?;
        let af = call["activeflow_id"].as_str()?.to_owned();
        let view = api.get(&format!("/v1.0/activeflows/{af}")).await;
        (view["current_action"]["type"] == "digits_receive")
            .then(|| (call["id"].as_str().unwrap_or_default().to_owned(), af))
    })
    .await
}

/// A prompt, then one digit kept in a variable.
fn prompt_and_digit() -> Value {
    json!({"name": "prompt-digit", "detail": "", "actions": [
        {"type": "answer"},
        {"type": "talk", "option": {"text": "Press two for support.", "language": "en-US"}},
        {"type": "digits_receive", "option": {"duration": 20000, "length": 1}},
        {"type": "variable_set", "option": {"key": "pressed", "value": "${voipbin.call.digits}"}},
        {"type": "hangup"}]})
}

/// Callers put through one after the other, each the moment the previous call ends (the
/// next waiting caller answered as soon as the line frees): each new call's voice port is
/// opened while the previous call's session may still hold it. Every call must hear its
/// prompt and have its in-band digit heard. The first hand-over follows the caller's
/// hang-up, the others the flow's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_right_after_the_previous_one_ends_have_audio() {
    let gw = Gateway::start().await;
    let api = gw.api();
    let sim = gw.daemon().sims().remove(0);
    let flow = api.create_flow(prompt_and_digit()).await;
    api.bind(Some(flow), None).await;

    // The first call is in its flow with its media session open (the prompt played); its
    // caller hangs up and the next one rings at once.
    sim.incoming_call("+15551110000").unwrap();
    let (_, first) = call_in_digits(&gw, "+15551110000").await;
    assert!(
        rms(&sim.take_recorded_audio()) > 300.0,
        "first prompt not heard"
    );
    sim.remote_hangup().unwrap();
    sim.incoming_call("+15551110001").unwrap();
    let ended = api.wait_ended(&first).await;
    assert_eq!(ended["end_reason"]["kind"], "hangup");

    for n in 1..=4 {
        let caller = format!("+1555111000{n}");
        // The call hears its prompt …
        let (_, af) = call_in_digits(&gw, &caller).await;
        let prompt = sim.take_recorded_audio();
        assert!(
            rms(&prompt) > 300.0,
            "call {n}: the prompt was not heard (rms {})",
            rms(&prompt)
        );
        // … and its caller's in-band digit reaches the flow, which then hangs up; the next
        // caller rings the moment the modem has hung up.
        api.post(
            "/v1.0/gateway/sim/dtmf",
            json!({"digits": "2", "mode": "inband"}),
        )
        .await;
        sim.wait_for_no_calls(WAIT).await.unwrap();
        if n < 4 {
            sim.incoming_call(&format!("+1555111000{}", n + 1)).unwrap();
        }
        let ended = api.wait_ended(&af).await;
        assert_eq!(ended["variables"]["pressed"], "2", "call {n}: {ended}");
    }
    gw.stop().await;
}

/// Records `secs` of what the caller sends on call `call`; returns the samples.
async fn record_caller(gw: &Gateway, call: &str, secs: u32) -> Vec<i16> {
    let api = gw.api();
    let recording = api
        .post(
            &format!("/v1.0/calls/{call}/recording_start"),
            json!({"format": "wav", "duration": secs}),
        )
        .await;
    let id = recording["id"].as_str().unwrap().to_owned();
    api.wait_for("the recording to end", || async {
        let r = api.get(&format!("/v1.0/recordings/{id}")).await;
        (r["status"] == "ended").then_some(())
    })
    .await;
    let wav = api.get_bytes(&format!("/v1.0/recordings/{id}/file")).await;
    assert_eq!(&wav[..4], b"RIFF");
    wav[44..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Caller audio belongs to the call it was queued for: what is left when the call ends does
/// not play into the next call, and `DELETE /v1.0/gateway/sim/audio` drops it mid-call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_audio_left_at_the_end_of_a_call_is_dropped_and_the_api_clears_it() {
    let gw = Gateway::start().await;
    let api = gw.api();
    let sim = gw.daemon().sims().remove(0);
    let flow = api
        .create_flow(json!({"name": "wait", "detail": "", "actions": [
            {"type": "answer"},
            {"type": "digits_receive", "option": {"duration": 60000, "length": 1}},
            {"type": "hangup"}]}))
        .await;
    api.bind(Some(flow), None).await;
    let ten_seconds = tone_440(80_000);

    // First call: ten seconds of caller audio start playing, then the caller hangs up.
    api.post("/v1.0/gateway/sim/calls", json!({"from": "+15551112222"}))
        .await;
    let (first, _) = call_in_digits(&gw, "+15551112222").await;
    sim.wait_for_audio(true, WAIT).await.unwrap();
    sim.queue_audio(&ten_seconds).unwrap();
    sim.wait_for("the caller audio to play", WAIT, |v| {
        (v.audio_queued() < ten_seconds.len()).then_some(())
    })
    .await
    .unwrap();
    api.post("/v1.0/gateway/sim/hangup", json!({})).await;
    api.wait_for("the first call to end", || async {
        let call = api.get(&format!("/v1.0/calls/{first}")).await;
        (call["status"] == "hangup").then_some(())
    })
    .await;
    assert_eq!(api.get("/v1.0/gateway/sim").await["audio_queued"], 0);

    // Second call: none of the first caller's tone reaches it.
    api.post("/v1.0/gateway/sim/calls", json!({"from": "+15553334444"}))
        .await;
    let (second, _) = call_in_digits(&gw, "+15553334444").await;
    sim.wait_for_audio(true, WAIT).await.unwrap();
    let heard = record_caller(&gw, &second, 1).await;
    assert!(heard.len() >= 7000, "{} samples", heard.len());
    assert!(
        rms(&heard) < 50.0,
        "the previous call's audio played into this one (rms {})",
        rms(&heard)
    );

    // Mid-call, the API drops what is queued: the caller falls silent.
    sim.queue_audio(&ten_seconds).unwrap();
    let (status, cleared) = api
        .call(
            reqwest::Method::DELETE,
            "/v1.0/gateway/sim/audio",
            None,
            Some(gw.daemon().token().as_str()),
        )
        .await;
    assert!(status.is_success(), "{status}: {cleared}");
    let dropped = cleared["samples"].as_u64().unwrap();
    assert!(dropped > 0 && dropped <= 80_000, "{cleared}");
    assert_eq!(api.get("/v1.0/gateway/sim").await["audio_queued"], 0);
    // What the simulator sent before the DELETE may still be on its way (the pty and the
    // port's receive buffer, held to real time): the recording may start with the tone, but
    // its second half is silent.
    let heard = record_caller(&gw, &second, 2).await;
    assert!(heard.len() >= 15_000, "{} samples", heard.len());
    let tail = &heard[heard.len() - 8000..];
    assert!(
        rms(tail) < 50.0,
        "cleared caller audio still played (rms {})",
        rms(tail)
    );
    gw.stop().await;
}
