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
