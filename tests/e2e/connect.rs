//! `connect` on a two-modem board: a GSM call in on one modem is connected out through the
//! other (call forwarding through the gateway). Audio crosses both ways (a tone played on
//! each side is heard on the other), digits are relayed, hang-ups on either side end both
//! legs with the right reasons, and busy, ring timeout and an unusable line behave as a
//! caller expects.

use std::path::Path;

use flowgate_dsp::{DtmfConfig, DtmfDetector, DtmfEvent};
use flowgate_tests::{Gateway, SIM_NUMBER, WAIT};
use serde_json::{Value, json};

/// The number the far end answers (after 300 ms of ringing).
pub(crate) const ANSWERS: &str = "+15557778888";
/// The number that is busy.
pub(crate) const BUSY: &str = "+15550000017";
/// The number that rings until someone gives up.
pub(crate) const RINGS: &str = "+15550000019";

/// A board of simulated modems: `sim0` takes the incoming calls; the others dial out and
/// know the numbers above. `sim1` gets `sim1_extra` in its `[modem.simulated]`; `extra` is
/// appended (more modems).
pub(crate) fn board(dir: &Path, sim1_extra: &str, extra: &str) -> String {
    let dial = format!(
        r#"
[modem.simulated.dial.default]
outcome = "answer"
ring_ms = 300
[modem.simulated.dial.numbers."{BUSY}"]
outcome = "busy"
after_ms = 200
[modem.simulated.dial.numbers."{RINGS}"]
outcome = "manual"
"#
    );
    let text = format!(
        r#"name = "connect-test"
description = "modems for the connect tests"

[[modem]]
id = "sim0"
profile = "quectel-ec25"
[modem.simulated]
own_number = "{SIM_NUMBER}"

[[modem]]
id = "sim1"
profile = "quectel-ec25"
[modem.simulated]
own_number = "+15550002000"
{sim1_extra}
{dial}
{extra}"#
    );
    let path = dir.join("board.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

pub(crate) async fn gateway(
    sim1_extra: &str,
    extra: &str,
    ring_timeout_secs: u64,
) -> (Gateway, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let profile = board(dir.path(), sim1_extra, extra);
    let gw = Gateway::start_with(|c| {
        c.board.profile = profile;
        c.calls.ring_timeout_secs = ring_timeout_secs;
    })
    .await;
    (gw, dir)
}

/// Forwards the call to `to`; after the bridge the flow notes it and hangs up.
fn forward(to: &str, relay_reason: bool) -> Value {
    json!({"name": "forward", "detail": "", "actions": [
        {"type": "connect", "option": {
            "source": {"type": "tel", "target": ""},
            "destinations": [{"type": "tel", "target": to}],
            "relay_reason": relay_reason}},
        {"type": "variable_set", "option": {"key": "after", "value": "connect"}},
        {"type": "hangup"}]})
}

/// Binds `flow` to sim0, rings sim0 from a caller, and returns the incoming call's id.
pub(crate) async fn call_in(gw: &Gateway, flow: Value) -> String {
    let api = gw.api();
    let flow = api.create_flow(flow).await;
    api.bind(Some(flow), None).await;
    api.post(
        "/v1.0/gateway/sim/calls?modem=sim0",
        json!({"from": "+15551112222"}),
    )
    .await;
    api.wait_for("the incoming call", || async {
        let calls = api.calls().await;
        let call = calls.iter().find(|c| c["direction"] == "incoming")?;
        Some(call["id"].as_str()?.to_owned())
    })
    .await
}

async fn call(gw: &Gateway, id: &str) -> Value {
    gw.api().get(&format!("/v1.0/calls/{id}")).await
}

/// Waits for the outgoing leg (the call the gateway placed) to reach `status`.
async fn outgoing(gw: &Gateway, status: &str) -> Value {
    let api = gw.api();
    api.wait_for(&format!("the outgoing leg to be {status}"), || async {
        api.calls()
            .await
            .into_iter()
            .find(|c| c["direction"] == "outgoing" && c["status"] == status)
    })
    .await
}

async fn ended(gw: &Gateway, id: &str) -> Value {
    let api = gw.api();
    api.wait_for("the call to end", || async {
        let c = call(gw, id).await;
        (c["status"] == "hangup").then_some(c)
    })
    .await
}

/// Two simulated mobiles in one call: sim0 sends 1 kHz, sim1 1.5 kHz, one second each;
/// returns what each recorded meanwhile (sim0's, sim1's).
pub(crate) async fn exchange_tones(
    sims: &[flowgate_board::simulator::SimulatorControl],
) -> (Vec<i16>, Vec<i16>) {
    for sim in sims {
        sim.take_recorded_audio();
    }
    sims[0].queue_audio(&tone(1000.0, 8000)).unwrap();
    sims[1].queue_audio(&tone(1500.0, 8000)).unwrap();
    for sim in sims {
        sim.wait_for_recorded(12_000, WAIT).await.unwrap();
    }
    (sims[0].take_recorded_audio(), sims[1].take_recorded_audio())
}

/// `n` samples of a sine at `hz`, −12 dBFS.
#[expect(
    clippy::cast_possible_truncation,
    reason = "the amplitude is bounded to ±8000"
)]
pub(crate) fn tone(hz: f64, n: u32) -> Vec<i16> {
    (0..n)
        .map(|i| (8000.0 * (2.0 * std::f64::consts::PI * hz * f64::from(i) / 8000.0).sin()) as i16)
        .collect()
}

/// Share of the signal's energy at `hz` (Goertzel over 20 ms blocks, best block).
pub(crate) fn tone_share(samples: &[i16], hz: f64) -> f64 {
    let coeff = 2.0 * (2.0 * std::f64::consts::PI * hz / 8000.0).cos();
    samples
        .chunks_exact(160)
        .map(|block| {
            let (mut s1, mut s2, mut energy) = (0.0f64, 0.0f64, 0.0f64);
            for &x in block {
                let x = f64::from(x);
                energy += x * x;
                let s = x + coeff * s1 - s2;
                s2 = s1;
                s1 = s;
            }
            let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
            // A pure tone puts energy·N/2 into its bin.
            if energy > 0.0 {
                power / (energy * 80.0)
            } else {
                0.0
            }
        })
        .fold(0.0, f64::max)
}

fn dtmf_in(samples: &[i16]) -> String {
    let mut detector = DtmfDetector::new(DtmfConfig::new(8000)).unwrap();
    let mut digits = String::new();
    detector.process_with(samples, |e| {
        if let DtmfEvent::Start { digit, .. } = e {
            digits.push(digit.to_char());
        }
    });
    digits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gsm_call_is_connected_out_through_the_other_modem() {
    let (gw, _dir) = gateway("", "", 60).await;
    let api = gw.api();
    let sims = gw.daemon().sims();
    let incoming = call_in(&gw, forward(ANSWERS, false)).await;

    let leg = outgoing(&gw, "progressing").await;
    assert_eq!(
        leg["line_id"], "sim1",
        "sim0 carries the caller: the call goes out on sim1"
    );
    assert_eq!(leg["transport"], "modem");
    assert_eq!(leg["destination"]["target"], ANSWERS);
    assert_eq!(leg["master_call_id"], incoming.as_str());
    let master = api
        .wait_for("the caller to be answered", || async {
            let c = call(&gw, &incoming).await;
            (c["status"] == "progressing").then_some(c)
        })
        .await;
    assert_eq!(master["line_id"], "sim0");
    assert!(
        master["chained_call_ids"]
            .as_array()
            .unwrap()
            .contains(&leg["id"])
    );
    let sent = api.get("/v1.0/gateway/sim/sent?modem=sim1").await;
    assert_eq!(sent["dialled"], json!([ANSWERS]));

    // Audio both ways: 1 kHz from the caller, 1.5 kHz from the far end.
    let (at_caller, at_far_end) = exchange_tones(&sims).await;
    assert!(
        tone_share(&at_far_end, 1000.0) > 0.8,
        "the far end hears the caller"
    );
    assert!(
        tone_share(&at_caller, 1500.0) > 0.8,
        "the caller hears the far end"
    );
    assert!(
        tone_share(&at_far_end, 1500.0) < 0.1,
        "no echo of the far end"
    );

    // A digit the caller's modem signals (no tone in the audio) is signalled on the other
    // modem; an in-band digit crosses in the audio.
    api.post(
        "/v1.0/gateway/sim/dtmf?modem=sim0",
        json!({"digits": "5", "mode": "urc"}),
    )
    .await;
    api.wait_for("the digit to be relayed", || async {
        let sent = api.get("/v1.0/gateway/sim/sent?modem=sim1").await;
        (sent["dtmf"] == "5").then_some(())
    })
    .await;
    sims[1].take_recorded_audio();
    api.post(
        "/v1.0/gateway/sim/dtmf?modem=sim0",
        json!({"digits": "7", "mode": "inband", "level_dbm0": -10.0}),
    )
    .await;
    sims[1].wait_for_recorded(8000, WAIT).await.unwrap();
    assert_eq!(dtmf_in(&sims[1].take_recorded_audio()), "7");
    let sent = api.get("/v1.0/gateway/sim/sent?modem=sim1").await;
    assert_eq!(sent["dtmf"], "5", "an in-band digit is not signalled again");

    // The far end hangs up: its leg ends (remote, normal), the flow goes on after
    // `connect` and hangs the caller up.
    api.post("/v1.0/gateway/sim/hangup?modem=sim1", json!({}))
        .await;
    let leg = ended(&gw, leg["id"].as_str().unwrap()).await;
    assert_eq!(
        (&leg["hangup_by"], &leg["hangup_reason"]),
        (&json!("remote"), &json!("normal"))
    );
    assert_eq!(leg["end_cause"]["cause"], "normal");
    let master = ended(&gw, &incoming).await;
    assert_eq!(
        (&master["hangup_by"], &master["hangup_reason"]),
        (&json!("local"), &json!("normal"))
    );
    let af = api
        .wait_ended(master["activeflow_id"].as_str().unwrap())
        .await;
    assert_eq!(af["variables"]["after"], "connect");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_hanging_up_ends_the_connected_call() {
    let (gw, _dir) = gateway("", "", 60).await;
    let api = gw.api();
    let incoming = call_in(&gw, forward(ANSWERS, true)).await;
    let leg = outgoing(&gw, "progressing").await;
    // The caller is the only call on sim0 (the simulator hangs up its newest call).
    assert_eq!(leg["line_id"], "sim1", "{leg}");
    // Connected: the caller is answered once the leg is (a caller hanging up while the
    // gateway answers it is another story: under load that fell in between).
    api.wait_for("the caller to be answered", || async {
        (call(&gw, &incoming).await["status"] == "progressing").then_some(())
    })
    .await;

    api.post("/v1.0/gateway/sim/hangup?modem=sim0", json!({}))
        .await;
    let master = ended(&gw, &incoming).await;
    assert_eq!(
        master["hangup_by"],
        "remote",
        "{master}\nleg: {}",
        call(&gw, leg["id"].as_str().unwrap()).await
    );
    let leg = ended(&gw, leg["id"].as_str().unwrap()).await;
    assert_eq!(
        (&leg["hangup_by"], &leg["hangup_reason"]),
        (&json!("local"), &json!("normal"))
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_destination_is_relayed_to_the_caller() {
    let (gw, _dir) = gateway("", "", 60).await;
    let incoming = call_in(&gw, forward(BUSY, true)).await;
    let leg = outgoing(&gw, "hangup").await;
    assert_eq!(
        (&leg["hangup_by"], &leg["hangup_reason"]),
        (&json!("remote"), &json!("busy"))
    );
    let master = ended(&gw, &incoming).await;
    assert_eq!(
        (&master["hangup_by"], &master["hangup_reason"]),
        (&json!("local"), &json!("busy"))
    );
    assert_eq!(
        master["tm_progressing"],
        Value::Null,
        "the caller was never answered"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_destination_is_given_up_after_the_ring_timeout() {
    let (gw, _dir) = gateway("", "", 5).await;
    let incoming = call_in(&gw, forward(RINGS, true)).await;
    let leg = outgoing(&gw, "ringing").await;
    let leg = ended(&gw, leg["id"].as_str().unwrap()).await;
    // VoIPBIN's reason for a call the platform's own dial timeout ended.
    assert_eq!(
        (&leg["hangup_by"], &leg["hangup_reason"]),
        (&json!("local"), &json!("dialout"))
    );
    let master = ended(&gw, &incoming).await;
    assert_eq!(master["hangup_reason"], "dialout");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_line_is_passed_over_for_the_next() {
    // sim1 has no network; sim2 does.
    let extra = r#"
[[modem]]
id = "sim2"
profile = "quectel-ec25"
[modem.simulated]
own_number = "+15550003000"
"#;
    let (gw, _dir) = gateway("registration = 2", extra, 60).await;
    let api = gw.api();
    let lines = api.get("/v1.0/gateway/lines").await;
    let sim1 = lines["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == "sim1")
        .unwrap()
        .clone();
    assert_eq!(sim1["availability"]["state"], "unregistered", "{sim1}");
    let incoming = call_in(&gw, forward(ANSWERS, true)).await;
    let leg = outgoing(&gw, "progressing").await;
    assert_eq!(leg["line_id"], "sim2");
    let sent = api.get("/v1.0/gateway/sim/sent?modem=sim1").await;
    assert_eq!(
        sent["dialled"],
        json!([]),
        "the unregistered modem never dialled"
    );
    api.post("/v1.0/gateway/sim/hangup?modem=sim2", json!({}))
        .await;
    let master = ended(&gw, &incoming).await;
    assert_eq!(master["hangup_reason"], "normal");
    gw.stop().await;
}
