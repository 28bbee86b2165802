//! The API on the simulated board: modem status and USSD, the simulator's control endpoints
//! (SMS in, calls in, DTMF, remote hang-up, caller audio, what the gateway sent), and the
//! paths through a real modem driver: an SMS answered by its bound flow, an SMS sent through
//! the API, a call hung up through the API. Waits go through the event log, never sleeps.

mod api_support;

use api_support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const OWN: &str = "+15550001000";
const PEER: &str = "+15550009999";

/// Events of `kind` whose data satisfies `pred`, from `after`.
async fn wait_kind(gw: &Gateway, after: u64, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
    gw.wait_event(after, |e| e["type"] == kind && pred(&e["data"]))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modems_health_and_ussd() {
    let gw = Gateway::start_sim().await;
    let modems = gw.ok(Method::GET, "/v1.0/gateway/modems", None).await;
    let m0 = &modems["result"][0];
    assert_eq!(
        (m0["id"].as_str(), m0["state"]["state"].as_str()),
        (Some("m0"), Some("ready")),
        "{m0}"
    );
    assert_eq!(m0["identity"]["imei"], "867962040123456");
    assert_eq!(
        gw.ok(Method::GET, "/v1.0/gateway/modems/m0", None).await["id"],
        "m0"
    );

    let health = send(gw.client.get(gw.url("/v1.0/gateway/health"))).await.1;
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(
        health["modems"],
        json!([{"id": "m0", "state": "ready", "registered": true}])
    );

    let balance = gw
        .ok(
            Method::POST,
            "/v1.0/gateway/modems/m0/ussd",
            Some(json!({"code": "*100#"})),
        )
        .await;
    assert_eq!(balance["text"], "Your balance is 12.34 EUR", "{balance}");
    let scripted = gw
        .call(
            Method::POST,
            "/v1.0/gateway/sim/ussd",
            Some(json!({"text": "Hello from the network"})),
        )
        .await;
    assert_eq!(scripted.0, StatusCode::NO_CONTENT, "{}", scripted.1);
    let reply = gw
        .ok(
            Method::POST,
            "/v1.0/gateway/modems/m0/ussd",
            Some(json!({"code": "*101#"})),
        )
        .await;
    assert_eq!(reply["text"], "Hello from the network");
    let bad = gw
        .post(
            "/v1.0/gateway/modems/m0/ussd",
            json!({"code": "\"; AT+CFUN=0"}),
        )
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "INVALID_REQUEST");
    let bad_coding = gw
        .post(
            "/v1.0/gateway/sim/ussd",
            json!({"text": "x", "coding": "ebcdic"}),
        )
        .await;
    assert_error(&bad_coding, StatusCode::BAD_REQUEST, "INVALID_BODY");

    let status = gw.ok(Method::GET, "/v1.0/gateway/sim", None).await;
    assert_eq!(status["at_path"], gw.sim().at_path().display().to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_sms_runs_its_flow_and_the_reply_goes_out() {
    let gw = Gateway::start_sim().await;
    let flow = gw
        .create_flow(json!([{"type": "message_send", "option": {
            "source": {"type": "tel", "target": "${voipbin.conversation.self.target}"},
            "destinations": [{"type": "tel", "target": "${voipbin.conversation.peer.target}"}],
            "text": "pong: ${voipbin.conversation_message.text}"}}]))
        .await;
    gw.ok(
        Method::POST,
        "/v1.0/numbers",
        Some(json!({"modem_id": "m0", "message_flow_id": flow})),
    )
    .await;

    let after = gw.last_seq();
    let delivered = gw
        .ok(
            Method::POST,
            "/v1.0/gateway/sim/sms",
            Some(json!({"from": PEER, "text": "ping"})),
        )
        .await;
    assert_eq!(delivered["pdus"].as_array().map(Vec::len), Some(1));
    wait_kind(&gw, after, "message_created", |m| {
        m["direction"] == "inbound" && m["text"] == "ping"
    })
    .await;
    wait_kind(&gw, after, "message_updated", |m| {
        m["direction"] == "outbound" && m["targets"][0]["status"] == "sent"
    })
    .await;

    let sent = gw.ok(Method::GET, "/v1.0/gateway/sim/sent", None).await;
    assert_eq!(
        sent["messages"],
        json!([{"to": PEER, "text": "pong: ping"}]),
        "{sent}"
    );
    assert!(
        sent["sms"][0]["pdu"]
            .as_str()
            .is_some_and(|p| !p.is_empty())
    );

    let raw = gw.post("/v1.0/gateway/sim/sms", json!({"pdu": "zz"})).await;
    assert_error(&raw, StatusCode::BAD_REQUEST, "INVALID_BODY");
    let neither = gw
        .post("/v1.0/gateway/sim/sms", json!({"from": PEER}))
        .await;
    assert_error(&neither, StatusCode::BAD_REQUEST, "INVALID_BODY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_message_is_sent_through_the_modem() {
    let gw = Gateway::start_sim().await;
    let after = gw.last_seq();
    let body = json!({"source": {"type": "tel", "target": OWN}, "destinations": [{"type": "tel", "target": PEER}], "text": "from the API"});
    let message = gw.ok(Method::POST, "/v1.0/messages", Some(body)).await;
    let id = message["id"].as_str().expect("id").to_owned();
    wait_kind(&gw, after, "message_updated", |m| {
        m["id"] == id.as_str() && m["targets"][0]["status"] == "sent"
    })
    .await;
    let sent = gw.ok(Method::GET, "/v1.0/gateway/sim/sent", None).await;
    assert_eq!(
        sent["messages"],
        json!([{"to": PEER, "text": "from the API"}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incoming_call_is_listed_and_hung_up_through_the_api() {
    let gw = Gateway::start_sim().await;
    let no_call = gw
        .post("/v1.0/gateway/sim/dtmf", json!({"digits": "1"}))
        .await;
    assert_error(&no_call, StatusCode::CONFLICT, "NO_CALL");
    assert_error(
        &gw.post("/v1.0/gateway/sim/hangup", json!({})).await,
        StatusCode::CONFLICT,
        "NO_CALL",
    );

    let after = gw.last_seq();
    let ring = gw
        .call(
            Method::POST,
            "/v1.0/gateway/sim/calls",
            Some(json!({"from": PEER})),
        )
        .await;
    assert_eq!(ring.0, StatusCode::NO_CONTENT, "{}", ring.1);
    let created = wait_kind(&gw, after, "call_created", |c| c["direction"] == "incoming").await;
    let id = created["resource_id"].as_str().expect("call id").to_owned();
    let call = gw.ok(Method::GET, &format!("/v1.0/calls/{id}"), None).await;
    assert_eq!(
        (call["source"]["target"].as_str(), call["modem_id"].as_str()),
        (Some(PEER), Some("m0"))
    );
    assert_eq!(
        gw.ok(Method::GET, "/v1.0/calls", None).await["result"][0]["id"],
        id.as_str()
    );

    gw.ok(Method::POST, &format!("/v1.0/calls/{id}/hangup"), None)
        .await;
    wait_kind(&gw, after, "call_updated", |c| {
        c["id"] == id.as_str() && c["status"] == "hangup"
    })
    .await;
    let log = gw.sim().call_log();
    assert_eq!(
        log.last().and_then(|c| c.ended_by.as_deref()),
        Some("gateway"),
        "{log:?}"
    );
    // Interrupts on a call that is over are a conflict, not a crash.
    let over = gw
        .post(
            &format!("/v1.0/calls/{id}/talk"),
            json!({"text": "too late"}),
        )
        .await;
    assert_error(&over, StatusCode::CONFLICT, "CALL_OVER");
    let status = gw.ok(Method::GET, "/v1.0/gateway/sim", None).await;
    assert_eq!(status["calls"].as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_calls_dial_through_the_modem() {
    let gw = Gateway::start_sim().await;
    let flow = gw.create_flow(json!([{"type": "hangup"}])).await;
    let after = gw.last_seq();
    let body = json!({"source": {"type": "tel", "target": OWN}, "destinations": [{"type": "tel", "target": PEER}], "flow_id": flow});
    let created = gw.ok(Method::POST, "/v1.0/calls", Some(body)).await;
    assert_eq!(created["groupcalls"], json!([]));
    let id = created["calls"][0]["id"]
        .as_str()
        .expect("call id")
        .to_owned();
    assert_eq!(created["calls"][0]["direction"], "outgoing");
    // The simulator answers after its ring time; the flow hangs up.
    wait_kind(&gw, after, "call_updated", |c| {
        c["id"] == id.as_str() && c["status"] == "hangup"
    })
    .await;
    assert_eq!(
        gw.ok(Method::GET, "/v1.0/gateway/sim/sent", None).await["dialled"],
        json!([PEER])
    );
}

/// Sample `i` of a 440 Hz tone at 16 kHz.
#[expect(
    clippy::cast_possible_truncation,
    reason = "the amplitude is within the i16 range"
)]
fn tone_sample(i: u32) -> i16 {
    ((f64::from(i) * 440.0 * std::f64::consts::TAU / 16000.0).sin() * 8000.0) as i16
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_audio_and_recorded_audio() {
    let gw = Gateway::start_sim().await;
    // 0.5 s of a 440 Hz tone at 16 kHz becomes 4000 samples at 8 kHz.
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut wav = std::io::Cursor::new(Vec::new());
    {
        let mut writer = hound::WavWriter::new(&mut wav, spec).expect("wav");
        for i in 0..8000u32 {
            writer.write_sample(tone_sample(i)).expect("sample");
        }
        writer.finalize().expect("finalize");
    }
    let queued = send(
        gw.req(Method::POST, "/v1.0/gateway/sim/audio")
            .header("content-type", "audio/wav")
            .body(wav.into_inner()),
    )
    .await;
    assert_eq!(queued.0, StatusCode::OK, "{}", queued.1);
    let samples = queued.1["samples"].as_u64().expect("samples");
    assert!((3990..=4010).contains(&samples), "{samples}");
    assert_eq!(
        queued.1["duration_ms"].as_u64(),
        Some(samples * 1000 / 8000)
    );
    let garbage = send(
        gw.req(Method::POST, "/v1.0/gateway/sim/audio")
            .body("not audio"),
    )
    .await;
    assert_error(&garbage, StatusCode::BAD_REQUEST, "INVALID_AUDIO");

    let tones = gw
        .call(
            Method::POST,
            "/v1.0/gateway/sim/dtmf",
            Some(json!({"digits": "12#", "mode": "inband", "duration_ms": 80})),
        )
        .await;
    assert_eq!(tones.0, StatusCode::NO_CONTENT, "{}", tones.1);
    let quiet = gw
        .post(
            "/v1.0/gateway/sim/dtmf",
            json!({"digits": "1", "mode": "inband", "level_dbm0": 3.0}),
        )
        .await;
    assert_error(&quiet, StatusCode::BAD_REQUEST, "INVALID_BODY");
    let not_digits = gw
        .post(
            "/v1.0/gateway/sim/dtmf",
            json!({"digits": "1x", "mode": "inband"}),
        )
        .await;
    assert_error(&not_digits, StatusCode::BAD_REQUEST, "INVALID_BODY");

    let response = gw
        .req(Method::GET, "/v1.0/gateway/sim/audio?take=true")
        .send()
        .await
        .expect("audio");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "audio/wav");
    let bytes = response.bytes().await.expect("bytes");
    let reader = hound::WavReader::new(std::io::Cursor::new(bytes.to_vec())).expect("a WAV");
    assert_eq!(
        (reader.spec().sample_rate, reader.spec().channels),
        (8000, 1)
    );
}
