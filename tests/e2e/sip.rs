//! SIP calls as legs, end to end: the real daemon with its SIP user agent on loopback, and
//! SIPp (Debian `sip-tester`) started by each test as the PBX or the phone.
//!
//! * SIPp calls a number bound to an IVR flow, sends an RFC 2833 digit, the flow branches
//!   on it, and SIPp's BYE ends the activeflow.
//! * A GSM call (simulated modem) `connect`s to a `sip:` destination (a SIPp UAS echoing
//!   RTP): audio crosses both ways (the caller's tone comes back through SIP), a digit
//!   crosses as RFC 4733 and comes back, and either side's hang-up ends both legs.
//! * An INVITE without credentials from a source no trunk trusts is challenged, and the
//!   modem never dials; the same INVITE from the trusted source is routed out by the
//!   routing table through the modem.
//! * The SIP side transfers the GSM caller (blind REFER to the gateway's `sip:200@…`): the
//!   gateway dials 200 out on the other modem, NOTIFYs 100 then 200, and the caller and
//!   200 hear each other; to a busy number the PBX hears 486 and keeps the caller; the
//!   same REFER from a far end no trunk trusts gets 403 and no modem dials.
//! * The gateway as the target of an attended transfer done elsewhere: a phone's INVITE
//!   with `Replaces` naming the PBX's call with the gateway takes the GSM caller over.
//! * A GSM call and a SIP call (placed by the API) meet in a `conference_join`: the caller
//!   alone does not hear itself, and hears its tone come back through the echoing SIP
//!   participant; the SIP leg hanging up leaves the caller in the conference.

use std::path::PathBuf;
use std::time::Duration;

use flowgate_test_peers::baresip;
use flowgate_test_peers::sipp::{self, finished};
use flowgate_tests::{Gateway, SIM_NUMBER, WAIT};
use serde_json::{Value, json};
use tokio::process::Child;

use crate::connect::{exchange_tones, tone, tone_share};

pub(crate) fn scenario(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("e2e/sipp")
        .join(name)
        .display()
        .to_string()
}

/// A SIPp UAS on a free port that answers one call and echoes its RTP: the port and the
/// process.
pub(crate) async fn sipp_echo_uas() -> (u16, Child) {
    sipp_uas("uas_echo.xml", "127.0.0.1", &[]).await
}

/// A SIPp UAS running `scenario_file` on `ip` and a free port, echoing RTP, with `extra`
/// arguments: the port and the process.
async fn sipp_uas(scenario_file: &str, ip: &str, extra: &[&str]) -> (u16, Child) {
    let uas = scenario(scenario_file);
    let mut args = vec!["-sf", &uas, "-rtp_echo"];
    args.extend_from_slice(extra);
    sipp::start(ip, &args).await
}

/// The gateway's SIP address.
fn sip_addr(gw: &Gateway) -> String {
    gw.daemon()
        .sip()
        .expect("SIP runs by default")
        .user_agent()
        .udp_addr()
        .to_string()
}

async fn call(gw: &Gateway, id: &str) -> Value {
    gw.api().get(&format!("/v1.0/calls/{id}")).await
}

pub(crate) async fn ended(gw: &Gateway, id: &str) -> Value {
    let api = gw.api();
    api.wait_for("the call to end", || async {
        let c = call(gw, id).await;
        (c["status"] == "hangup").then_some(c)
    })
    .await
}

/// Binds `number` to `flow`; returns the flow's id.
pub(crate) async fn bind(gw: &Gateway, number: &str, flow: Value) -> uuid::Uuid {
    let api = gw.api();
    let flow = api.create_flow(flow).await;
    let nil = uuid::Uuid::nil().to_string();
    api.post(
        "/v1.0/numbers",
        json!({"number": number, "call_flow_id": flow.to_string(), "message_flow_id": nil}),
    )
    .await;
    flow
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_calls_an_ivr_flow_and_its_rfc2833_digit_picks_the_branch() {
    let gw = Gateway::start().await;
    let api = gw.api();
    let one = "b2000000-0000-4000-8000-000000000001";
    let other = "b2000000-0000-4000-8000-000000000002";
    bind(
        &gw,
        "1000",
        json!({"name": "ivr", "detail": "", "actions": [
            {"type": "answer"},
            {"type": "digits_receive", "option": {"duration": 10000, "length": 1}},
            {"type": "branch", "option": {"variable": "voipbin.call.digits",
                "target_ids": {"1": one}, "default_target_id": other}},
            {"id": other, "type": "variable_set", "option": {"key": "choice", "value": "other"}},
            {"type": "hangup"},
            {"id": one, "type": "variable_set", "option": {"key": "choice", "value": "one"}},
            {"type": "sleep", "option": {"duration": 30000}}]}),
    )
    .await;

    let sip = sip_addr(&gw);
    let ivr = scenario("uac_ivr.xml");
    let (_, child) = sipp::start("127.0.0.1", &["-sf", &ivr, "-s", "1000", &sip]).await;
    // SIPp's own verdict: answered, and its BYE got 200 (the flow never hung up on it).
    finished(child).await;

    let calls = api.calls().await;
    let c = calls
        .iter()
        .find(|c| c["direction"] == "incoming")
        .expect("the SIP call has a record");
    assert_eq!(c["transport"], "sip");
    assert_eq!(c["line_id"], "sip");
    assert_eq!(c["source"]["target"], "5551000");
    assert_eq!(c["destination"]["target"], "1000");
    assert!(
        c["sip_call_id"].as_str().is_some_and(|id| !id.is_empty()),
        "the record shows SIPp's Call-ID: {c}"
    );
    assert!(
        c["remote_uri"]
            .as_str()
            .unwrap()
            .starts_with("sip:5551000@"),
        "{c}"
    );
    let c = ended(&gw, c["id"].as_str().unwrap()).await;
    assert_eq!(c["hangup_by"], "remote");
    assert_eq!(c["end_cause"]["cause"], "normal");
    let af = api.wait_ended(c["activeflow_id"].as_str().unwrap()).await;
    assert_eq!(
        af["variables"]["choice"], "one",
        "the digit 1 picked the branch"
    );
    gw.stop().await;
}

/// Connects the caller to `to`; after the bridge the flow notes it and hangs up.
fn connect_to(to: &str) -> Value {
    json!({"name": "to-sip", "detail": "", "actions": [
        {"type": "connect", "option": {
            "source": {"type": "tel", "target": ""},
            "destinations": [{"type": "sip", "target": to}]}},
        {"type": "variable_set", "option": {"key": "after", "value": "connect"}},
        {"type": "hangup"}]})
}

/// Rings the simulated modem from a caller; returns the incoming call's id.
pub(crate) async fn gsm_call_in(gw: &Gateway) -> String {
    let api = gw.api();
    api.post("/v1.0/gateway/sim/calls", json!({"from": "+15551112222"}))
        .await;
    api.wait_for("the incoming GSM call", || async {
        let calls = api.calls().await;
        let call = calls
            .iter()
            .find(|c| c["direction"] == "incoming" && c["transport"] == "modem")?;
        Some(call["id"].as_str()?.to_owned())
    })
    .await
}

/// Waits for the SIP leg the gateway placed to be answered.
async fn sip_leg_answered(gw: &Gateway) -> Value {
    let api = gw.api();
    api.wait_for("the SIP leg to be answered", || async {
        api.calls().await.into_iter().find(|c| {
            c["direction"] == "outgoing" && c["transport"] == "sip" && c["status"] == "progressing"
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gsm_call_connects_to_a_sip_phone_with_audio_and_digits_both_ways() {
    let gw = Gateway::start().await;
    let api = gw.api();
    let sim = gw.daemon().sims().remove(0);
    let (port, child) = sipp_echo_uas().await;
    bind(
        &gw,
        SIM_NUMBER,
        connect_to(&format!("1000@127.0.0.1:{port}")),
    )
    .await;
    let incoming = gsm_call_in(&gw).await;

    let leg = sip_leg_answered(&gw).await;
    assert_eq!(leg["line_id"], "sip");
    assert_eq!(
        leg["remote_uri"],
        format!("sip:1000@127.0.0.1:{port}"),
        "the record shows whom it called"
    );
    assert!(leg["sip_call_id"].as_str().unwrap().ends_with("@flowgate"));
    assert_eq!(leg["master_call_id"], incoming.as_str());
    api.wait_for("the caller to be answered", || async {
        (call(&gw, &incoming).await["status"] == "progressing").then_some(())
    })
    .await;

    // The caller's 1 kHz goes out as RTP, SIPp sends it back, and the caller hears it:
    // audio crossed the bridge in both directions (the bridge itself never echoes).
    sim.take_recorded_audio();
    sim.queue_audio(&tone(1000.0, 16_000)).unwrap();
    sim.wait_for_recorded(16_000, WAIT).await.unwrap();
    let at_caller = sim.take_recorded_audio();
    assert!(
        tone_share(&at_caller, 1000.0) > 0.5,
        "the caller hears its tone back through SIP"
    );

    // A digit the caller's modem signals goes out as RFC 4733; SIPp echoes the events,
    // the gateway reads them as the SIP side's digit and signals it to the modem.
    api.post(
        "/v1.0/gateway/sim/dtmf",
        json!({"digits": "5", "mode": "urc"}),
    )
    .await;
    api.wait_for("the digit to come back from SIP", || async {
        let sent = api.get("/v1.0/gateway/sim/sent").await;
        (sent["dtmf"] == "5").then_some(())
    })
    .await;

    // The GSM caller hangs up: the SIP leg gets its BYE (SIPp's scenario ends well).
    api.post("/v1.0/gateway/sim/hangup", json!({})).await;
    let master = ended(&gw, &incoming).await;
    assert_eq!(master["hangup_by"], "remote");
    let leg = ended(&gw, leg["id"].as_str().unwrap()).await;
    assert_eq!(
        (&leg["hangup_by"], &leg["hangup_reason"]),
        (&json!("local"), &json!("normal"))
    );
    finished(child).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sip_side_hanging_up_ends_the_connect_and_the_flow_goes_on() {
    let gw = Gateway::start().await;
    let api = gw.api();
    let (port, child) = sipp_uas("uas_bye.xml", "127.0.0.1", &[]).await;
    bind(
        &gw,
        SIM_NUMBER,
        connect_to(&format!("sip:1000@127.0.0.1:{port}")),
    )
    .await;
    let incoming = gsm_call_in(&gw).await;
    let leg = sip_leg_answered(&gw).await;
    // SIPp hangs up 3 s after answering.
    let leg = ended(&gw, leg["id"].as_str().unwrap()).await;
    assert_eq!(
        (&leg["hangup_by"], &leg["hangup_reason"]),
        (&json!("remote"), &json!("normal"))
    );
    let master = ended(&gw, &incoming).await;
    assert_eq!(master["hangup_by"], "local");
    let af = api
        .wait_ended(master["activeflow_id"].as_str().unwrap())
        .await;
    assert_eq!(af["variables"]["after"], "connect");
    finished(child).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_invite_never_reaches_the_modem() {
    let gw = Gateway::start().await;
    let api = gw.api();
    let sip = sip_addr(&gw);
    let number = "+15557778888";

    // From 127.0.0.2: no trunk trusts it (the default trusts 127.0.0.1 only), and it has
    // no credentials. SIPp's scenario passes only on a 401 challenge.
    let unauth = scenario("uac_unauth.xml");
    let (_, child) = sipp::start("127.0.0.2", &["-sf", &unauth, "-s", number, &sip]).await;
    finished(child).await;
    assert!(
        api.calls().await.is_empty(),
        "no call record for a refused INVITE"
    );
    let sent = api.get("/v1.0/gateway/sim/sent").await;
    assert_eq!(sent["dialled"], json!([]), "the modem never dialled");
    let status = api.get("/v1.0/gateway/sip").await;
    assert_eq!(status["udp"], sip.as_str());
    assert_eq!(status["trunks"][0]["name"], "local");
    assert_eq!(status["trunks"][0]["registration"]["state"], "unregistered");
    assert_eq!(status["extensions"], json!([]), "nobody registered");

    // The same number from the trusted source: no flow is bound to it, so the routing
    // table sends it out through the modem.
    let (_, trusted) = sipp::start("127.0.0.1", &["-sn", "uac", "-s", number, &sip]).await;
    api.wait_for("the modem to dial the routed call", || async {
        let sent = api.get("/v1.0/gateway/sim/sent").await;
        (sent["dialled"] == json!([number])).then_some(())
    })
    .await;
    let calls = api.calls().await;
    let sip_call = calls
        .iter()
        .find(|c| c["transport"] == "sip")
        .expect("the trusted call's record");
    assert_eq!(sip_call["destination"]["target"], number);
    drop(trusted);
    gw.stop().await;
}

/// baresip registered as extension `201` (password `phone-secret`) to the gateway at
/// `gateway_port`, playing a 1 kHz tone into its calls, running `command`.
async fn baresip(dir: &std::path::Path, gateway_port: u16, command: &str) -> Child {
    let account = format!(
        "<sip:201@127.0.0.1:{gateway_port}>;auth_pass=phone-secret;regint=60;audio_codecs=PCMU"
    );
    baresip::start(dir, &account, &tone(1000.0, 8000 * 20), command, 40).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_registered_to_the_gateway_calls_out_through_the_modem() {
    let gw = Gateway::start_with(|c| {
        c.sip
            .extensions
            .push(flowgate_sip::config::ExtensionConfig {
                user: "201".into(),
                password: "phone-secret".into(),
                display_name: "Desk".into(),
            });
    })
    .await;
    let api = gw.api();
    let sim = gw.daemon().sims().remove(0);
    let sip = sip_addr(&gw);
    let port: u16 = sip.rsplit(':').next().unwrap().parse().unwrap();
    let number = "+15557778888";
    let dir = tempfile::tempdir().unwrap();
    let phone = baresip(dir.path(), port, &format!("/dial sip:{number}@{sip}")).await;

    // Registered (digest), then its call is routed out by the table: the modem dials.
    api.wait_for("extension 201 registered", || async {
        let status = api.get("/v1.0/gateway/sip").await;
        (status["extensions"][0]["user"] == "201").then_some(())
    })
    .await;
    api.wait_for("the modem to dial the phone's call", || async {
        let sent = api.get("/v1.0/gateway/sim/sent").await;
        (sent["dialled"] == json!([number])).then_some(())
    })
    .await;
    let calls = api.calls().await;
    let from_phone = calls
        .iter()
        .find(|c| c["transport"] == "sip")
        .expect("the phone's call");
    assert_eq!(
        from_phone["source"]["target"], "201",
        "an extension calls as itself"
    );
    let from_phone = from_phone["id"].as_str().unwrap().to_owned();

    // The mobile answers: the phone is answered, and its tone reaches the mobile.
    api.post("/v1.0/gateway/sim/answer", json!({})).await;
    api.wait_for("the phone's call to be answered", || async {
        (call(&gw, &from_phone).await["status"] == "progressing").then_some(())
    })
    .await;
    sim.take_recorded_audio();
    sim.wait_for_recorded(16_000, WAIT).await.unwrap();
    let at_mobile = sim.take_recorded_audio();
    assert!(
        tone_share(&at_mobile, 1000.0) > 0.5,
        "the mobile hears the phone's tone"
    );

    // The mobile hangs up: the phone's call ends with it.
    api.post("/v1.0/gateway/sim/hangup", json!({})).await;
    let ended_call = ended(&gw, &from_phone).await;
    assert_eq!(ended_call["hangup_by"], "local");
    drop(phone);
    gw.stop().await;
}

/// A GSM call and a SIP call in one local conference: alone, the GSM caller does not hear
/// its own tone; once a SIP phone that echoes its RTP (SIPp) joins, the caller hears its
/// tone come back through the SIP participant. Hanging the SIP leg up leaves the GSM
/// caller in the conference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gsm_caller_and_a_sip_phone_meet_in_a_conference() {
    const CONFERENCE: &str = "00000000-0000-4000-8000-00000000c0f3";
    let gw = Gateway::start().await;
    let api = gw.api();
    let sim = gw.daemon().sims().remove(0);
    let (port, child) = sipp_echo_uas().await;
    let join = json!([{"type": "conference_join", "option": {"conference_id": CONFERENCE}}]);
    bind(
        &gw,
        SIM_NUMBER,
        json!({"name": "conference", "detail": "", "actions": join}),
    )
    .await;
    let incoming = gsm_call_in(&gw).await;
    let participants = async |n: usize| {
        api.wait_for(&format!("{n} participants"), || async {
            let list = api.get("/v1.0/conferences").await;
            let p = list["result"][0]["participants"].as_array()?.clone();
            (p.len() == n).then_some(p)
        })
        .await
    };
    participants(1).await;

    // Alone: the caller's tone does not come back.
    sim.take_recorded_audio();
    sim.queue_audio(&tone(1000.0, 8000)).unwrap();
    sim.wait_for_recorded(12_000, WAIT).await.unwrap();
    let alone = tone_share(&sim.take_recorded_audio(), 1000.0);
    assert!(alone < 0.1, "a participant never hears itself: {alone}");

    // The SIP phone is called into the conference.
    api.post(
        "/v1.0/calls",
        json!({
            "source": {"type": "tel", "target": SIM_NUMBER},
            "destinations": [{"type": "sip", "target": format!("1000@127.0.0.1:{port}")}],
            "actions": join}),
    )
    .await;
    let leg = sip_leg_answered(&gw).await;
    let list = participants(2).await;
    assert_eq!(list[0]["call_id"], incoming.as_str());
    assert_eq!(list[1]["call_id"], leg["id"]);
    sim.take_recorded_audio();
    sim.queue_audio(&tone(1000.0, 16_000)).unwrap();
    sim.wait_for_recorded(16_000, WAIT).await.unwrap();
    let through_sip = tone_share(&sim.take_recorded_audio(), 1000.0);
    eprintln!(
        "1 kHz share at the GSM caller: alone {alone:.3}, with the SIP echo {through_sip:.3}"
    );
    assert!(
        through_sip > 0.5,
        "the caller hears the SIP participant (its echo): {through_sip}"
    );

    // A digit the caller's modem signals is the caller's conference digit, relayed to the
    // SIP participant as RFC 4733; SIPp echoes the event, so it is the SIP participant's
    // digit too, relayed to the modem out of band.
    api.post(
        "/v1.0/gateway/sim/dtmf",
        json!({"digits": "7", "mode": "urc"}),
    )
    .await;
    let digits = api
        .wait_for("the digit back through the conference", || async {
            let sent = api.get("/v1.0/gateway/sim/sent").await;
            if sent["dtmf"] != "7" {
                return None;
            }
            let page = api.get("/v1.0/gateway/events?limit=1000").await;
            let digits: Vec<(String, String)> = page["events"]
                .as_array()?
                .iter()
                .filter(|e| e["type"] == "conference_dtmf" && e["data"]["digit"] == "7")
                .map(|e| {
                    let d = &e["data"];
                    (
                        d["call_id"].as_str().unwrap_or_default().to_owned(),
                        d["source"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            (digits.len() >= 2).then_some(digits)
        })
        .await;
    assert_eq!(digits[0], (incoming.clone(), "signalled".to_owned()));
    assert_eq!(
        digits[1],
        (
            leg["id"].as_str().unwrap().to_owned(),
            "signalled".to_owned()
        )
    );

    // The SIP leg is hung up: it leaves (SIPp gets its BYE), the caller stays.
    api.post(
        &format!("/v1.0/calls/{}/hangup", leg["id"].as_str().unwrap()),
        json!({}),
    )
    .await;
    ended(&gw, leg["id"].as_str().unwrap()).await;
    participants(1).await;
    assert_eq!(call(&gw, &incoming).await["status"], "progressing");
    finished(child).await;
    api.post("/v1.0/gateway/sim/hangup", json!({})).await;
    ended(&gw, &incoming).await;
    api.wait_for("the conference to end", || async {
        let list = api.get("/v1.0/conferences").await;
        list["result"].as_array()?.is_empty().then_some(())
    })
    .await;
    gw.stop().await;
}

/// A two-modem gateway (`sim0` takes the GSM caller, `sim1` dials out and answers) whose
/// GSM caller is connected to a SIPp UAS at `ip` running `scenario_file`, which REFERs
/// the call to the gateway's own `sip:<target>@…`. Returns the gateway, its board's
/// directory, SIPp, and the GSM caller's call id once the SIP leg answered.
async fn gsm_caller_bridged_to_a_referring_pbx(
    scenario_file: &str,
    ip: &str,
    target: &str,
) -> (Gateway, tempfile::TempDir, Child, String) {
    gsm_caller_bridged_to_a_pbx_referring_to(
        scenario_file,
        ip,
        |gw| format!("sip:{target}@{}", sip_addr(gw)),
        None,
    )
    .await
}

/// As [`gsm_caller_bridged_to_a_referring_pbx`], with the `Refer-To` URI made from the
/// gateway, and `binding` (a number and its flow) in place before the PBX is called.
async fn gsm_caller_bridged_to_a_pbx_referring_to(
    scenario_file: &str,
    ip: &str,
    refer_to: impl FnOnce(&Gateway) -> String,
    binding: Option<(&str, Value)>,
) -> (Gateway, tempfile::TempDir, Child, String) {
    let dir = tempfile::tempdir().unwrap();
    let profile = crate::connect::board(dir.path(), "", "");
    let gw = Gateway::start_with(|c| c.board.profile = profile).await;
    if let Some((number, flow)) = binding {
        bind(&gw, number, flow).await;
    }
    let refer_to = refer_to(&gw);
    let messages = pbx_messages(&dir).display().to_string();
    let (port, child) = sipp_uas(
        scenario_file,
        ip,
        &[
            "-key",
            "refer_to",
            &refer_to,
            "-trace_msg",
            "-message_file",
            &messages,
        ],
    )
    .await;
    bind(&gw, SIM_NUMBER, connect_to(&format!("1000@{ip}:{port}"))).await;
    let api = gw.api();
    api.post(
        "/v1.0/gateway/sim/calls?modem=sim0",
        json!({"from": "+15551112222"}),
    )
    .await;
    let incoming = api
        .wait_for("the incoming GSM call", || async {
            let calls = api.calls().await;
            let call = calls
                .iter()
                .find(|c| c["direction"] == "incoming" && c["transport"] == "modem")?;
            Some(call["id"].as_str()?.to_owned())
        })
        .await;
    // Answered (the transfer may already be over by the time this looks).
    api.wait_for("the SIP leg to be answered", || async {
        api.calls().await.into_iter().find(|c| {
            c["direction"] == "outgoing"
                && c["transport"] == "sip"
                && c["tm_progressing"].is_string()
        })
    })
    .await;
    (gw, dir, child, incoming)
}

/// Where SIPp, as the PBX of [`gsm_caller_bridged_to_a_pbx_referring_to`], logs the
/// messages it sent and received.
fn pbx_messages(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("pbx-messages.log")
}

/// The sipfrag statuses of the NOTIFYs in a SIPp message log, in order (a retransmission
/// counted once).
fn notified(messages: &str) -> Vec<&'static str> {
    let mut seen: Vec<&'static str> = Vec::new();
    for m in messages.split("-----------------------------------------------") {
        if !m.contains("\nNOTIFY sip:") {
            continue;
        }
        let status = ["100 Trying", "180 Ringing", "200 OK"]
            .into_iter()
            .find(|s| m.contains(&format!("\nSIP/2.0 {s}")));
        if let Some(s) = status
            && seen.last() != Some(&s)
        {
            seen.push(s);
        }
    }
    seen
}

/// While the transfer target rings, the PBX that transferred the GSM caller is told so
/// (NOTIFY `180 Ringing`, the subscription still active), then `200 OK` once the target
/// answers: the transferor's phone can show the target ringing, as Asterisk's does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blind_transfer_tells_the_pbx_the_target_rings() {
    let (gw, dir, child, _incoming) =
        gsm_caller_bridged_to_a_referring_pbx("uas_refer.xml", "127.0.0.1", crate::connect::RINGS)
            .await;
    let api = gw.api();
    let log = pbx_messages(&dir);
    api.wait_for("the PBX to hear that the target rings", || async {
        let messages = std::fs::read_to_string(&log).ok()?;
        notified(&messages).contains(&"180 Ringing").then_some(())
    })
    .await;
    api.post("/v1.0/gateway/sim/answer?modem=sim1", json!({}))
        .await;
    finished(child).await;
    let messages = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        notified(&messages),
        ["100 Trying", "180 Ringing", "200 OK"],
        "{messages}"
    );
    gw.stop().await;
}

/// The PBX the GSM caller was connected to transfers the call (blind REFER to the
/// gateway's `sip:200@…`): the gateway accepts (202), dials 200 through the routing table
/// (out on `sim1`), tells the PBX it worked (NOTIFY 100 then 200), and the GSM caller
/// talks to 200 while the PBX leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pbx_blind_transfers_a_gsm_caller_to_a_number() {
    let (gw, _dir, child, incoming) =
        gsm_caller_bridged_to_a_referring_pbx("uas_refer.xml", "127.0.0.1", "200").await;
    let api = gw.api();
    let sims = gw.daemon().sims();
    let target = api
        .wait_for("the transfer target to answer", || async {
            api.calls().await.into_iter().find(|c| {
                c["transport"] == "modem"
                    && c["direction"] == "outgoing"
                    && c["status"] == "progressing"
            })
        })
        .await;
    assert_eq!(target["line_id"], "sim1");
    assert_eq!(target["destination"]["target"], "200");
    assert_eq!(target["master_call_id"], incoming.as_str());
    assert_eq!(
        target["source"]["target"], "+15551112222",
        "the transferred caller keeps its number"
    );
    let sent = api.get("/v1.0/gateway/sim/sent?modem=sim1").await;
    assert_eq!(sent["dialled"], json!(["200"]));
    // The PBX saw 202, NOTIFY 100 and NOTIFY 200, and hung up its leg.
    finished(child).await;
    let sip_leg = api
        .wait_for("the PBX's leg to end", || async {
            api.calls()
                .await
                .into_iter()
                .find(|c| c["transport"] == "sip" && c["status"] == "hangup")
        })
        .await;
    assert_eq!(sip_leg["hangup_by"], "remote");
    assert_eq!(sip_leg["end_cause"]["cause"], "transferred");
    assert_eq!(call(&gw, &incoming).await["status"], "progressing");

    // The caller and 200 hear each other.
    let (at_caller, at_200) = exchange_tones(&sims).await;
    assert!(tone_share(&at_200, 1000.0) > 0.8, "200 hears the caller");
    assert!(tone_share(&at_caller, 1500.0) > 0.8, "the caller hears 200");

    // 200 hangs up: the caller goes with it.
    api.post("/v1.0/gateway/sim/hangup?modem=sim1", json!({}))
        .await;
    ended(&gw, target["id"].as_str().unwrap()).await;
    ended(&gw, &incoming).await;
    gw.stop().await;
}

/// Toll fraud through REFER: a far end the gateway called at an address no trunk trusts
/// (127.0.0.2) asks it to call a number. The REFER is refused (403), no modem dials, and
/// the call goes on until that far end hangs up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refer_from_an_unauthenticated_far_end_dials_nothing() {
    let (gw, _dir, child, incoming) =
        gsm_caller_bridged_to_a_referring_pbx("uas_refer_refused.xml", "127.0.0.2", "200").await;
    let api = gw.api();
    finished(child).await;
    let master = ended(&gw, &incoming).await;
    assert_eq!(
        master["hangup_by"], "local",
        "the connect ended with the SIP leg"
    );
    for modem in ["sim0", "sim1"] {
        let sent = api
            .get(&format!("/v1.0/gateway/sim/sent?modem={modem}"))
            .await;
        assert_eq!(sent["dialled"], json!([]), "{modem} never dialled");
    }
    assert_eq!(
        api.calls().await.len(),
        2,
        "the caller and the SIP leg, nothing else"
    );
    gw.stop().await;
}

/// The transfer target is busy: the PBX hears it (final NOTIFY 486), the GSM caller stays
/// on the PBX's call, and when the PBX hangs up the caller's `connect` ends as usual (its
/// flow goes on to the next action), not as a handed-over call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_blind_transfer_leaves_the_caller_with_the_pbx() {
    let busy = crate::connect::BUSY;
    let (gw, _dir, child, incoming) =
        gsm_caller_bridged_to_a_referring_pbx("uas_refer_busy.xml", "127.0.0.1", busy).await;
    let api = gw.api();
    finished(child).await;
    let sent = api.get("/v1.0/gateway/sim/sent?modem=sim1").await;
    assert_eq!(sent["dialled"], json!([busy]));
    let master = ended(&gw, &incoming).await;
    let af = api
        .wait_ended(master["activeflow_id"].as_str().unwrap())
        .await;
    assert_eq!(
        af["variables"]["after"], "connect",
        "the caller's flow went on"
    );
    let sip_leg = api
        .calls()
        .await
        .into_iter()
        .find(|c| c["transport"] == "sip")
        .unwrap();
    assert_ne!(
        sip_leg["end_cause"]["cause"], "transferred",
        "a failed transfer is not a transfer"
    );
    gw.stop().await;
}

/// A flow for the number a PBX transfers into: it notes that it ran, waits for a digit
/// from whoever it runs for, and hangs up.
fn transfer_target_flow() -> Value {
    json!({"name": "desk", "detail": "", "actions": [
        {"type": "variable_set", "option": {"key": "ran", "value": "yes"}},
        {"type": "digits_receive", "option": {"duration": 30000, "length": 1}},
        {"type": "hangup"}]})
}

/// A blind transfer to a number bound to a flow runs that flow on the transferred caller,
/// as a call to that number would (as Asterisk's blind transfer into a dialplan
/// extension): the PBX REFERs the GSM caller to the gateway's `sip:2000@…`, 2000 is bound
/// to a flow, and nothing is dialled — the caller's record points at a new activeflow of
/// that flow, the caller's digit reaches it, its first flow stops without running on
/// after `connect`, and the PBX's leg ends `transferred` after NOTIFY 200. (Before, the
/// gateway dialled 2000 out through a modem.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pbx_blind_transfers_a_gsm_caller_into_the_flow_of_a_number() {
    let (gw, _dir, child, incoming) = gsm_caller_bridged_to_a_pbx_referring_to(
        "uas_refer.xml",
        "127.0.0.1",
        |gw| format!("sip:2000@{}", sip_addr(gw)),
        Some(("2000", transfer_target_flow())),
    )
    .await;
    let api = gw.api();
    let numbers = api.get("/v1.0/numbers").await;
    let desk = numbers["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["number"] == "2000")
        .unwrap()["call_flow_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The PBX saw 202, NOTIFY 100 and NOTIFY 200, and hung up its leg.
    finished(child).await;
    let caller = api
        .wait_for("the caller to run 2000's flow", || async {
            let c = call(&gw, &incoming).await;
            (c["flow_id"] == desk.as_str()).then_some(c)
        })
        .await;
    let af = caller["activeflow_id"].as_str().unwrap().to_owned();
    let listed = api.get("/v1.0/activeflows?page_size=100").await;
    let first = listed["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["reference_id"] == incoming.as_str() && a["flow_id"] != desk.as_str())
        .expect("the caller's first activeflow")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(af, first, "a new activeflow");
    let view = api.get(&format!("/v1.0/activeflows/{af}")).await;
    assert_eq!(view["reference_type"], "call");
    assert_eq!(view["reference_id"], incoming.as_str());
    let old = api.wait_ended(&first).await;
    assert!(
        old["variables"].get("after").is_none(),
        "the caller's first flow stopped instead of going on after connect: {old}"
    );
    let sip_leg = api
        .wait_for("the PBX's leg to end", || async {
            api.calls()
                .await
                .into_iter()
                .find(|c| c["transport"] == "sip" && c["status"] == "hangup")
        })
        .await;
    assert_eq!(sip_leg["end_cause"]["cause"], "transferred");
    assert_eq!(call(&gw, &incoming).await["status"], "progressing");

    // The caller talks to the flow now: its digit ends digits_receive, the flow hangs up.
    api.wait_for("the flow to wait for a digit", || async {
        let v = api.get(&format!("/v1.0/activeflows/{af}")).await;
        (v["current_action"]["type"] == "digits_receive").then_some(())
    })
    .await;
    api.post("/v1.0/gateway/sim/dtmf?modem=sim0", json!({"digits": "7"}))
        .await;
    let done = api.wait_ended(&af).await;
    assert_eq!(done["variables"]["ran"], "yes");
    assert_eq!(done["variables"]["voipbin.call.digits"], "7");
    let caller = ended(&gw, &incoming).await;
    assert_eq!(caller["hangup_by"], "local", "the flow hung up");
    for modem in ["sim0", "sim1"] {
        let sent = api
            .get(&format!("/v1.0/gateway/sim/sent?modem={modem}"))
            .await;
        assert_eq!(sent["dialled"], json!([]), "{modem} dialled nothing");
    }
    gw.stop().await;
}

/// An attended transfer the PBX set up without the gateway: it REFERs the GSM caller to
/// a phone (a second SIPp) with `Replaces` naming its own consultation call with that
/// phone. The gateway is the transferee (RFC 5589 §7): it INVITEs the phone with that
/// `Replaces` (and `Require: replaces`; the phone's scenario passes only so), tells the
/// PBX NOTIFY 100 then 200 once the phone answered, and the caller talks to the phone
/// (its echo comes back) until the caller hangs up. (Before: NOTIFY 501, nothing sent.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pbx_attended_transfer_to_its_own_consultation_call_invites_with_replaces() {
    let (phone_port, phone) = sipp_uas("uas_replaced.xml", "127.0.0.1", &[]).await;
    let (gw, _dir, pbx, incoming) =
        gsm_caller_bridged_to_a_pbx_referring_to(
            "uas_refer.xml",
            "127.0.0.1",
            |_| {
                format!(
                    "sip:300@127.0.0.1:{phone_port}?Replaces=consult-1%40pbx%3Bto-tag%3Dt1%3Bfrom-tag%3Df1"
                )
            },
            None,
        )
        .await;
    let api = gw.api();
    finished(pbx).await;
    let target = api
        .wait_for("the phone's leg to answer", || async {
            api.calls().await.into_iter().find(|c| {
                c["transport"] == "sip"
                    && c["direction"] == "outgoing"
                    && c["master_call_id"] == incoming.as_str()
                    && c["status"] == "progressing"
            })
        })
        .await;
    assert!(
        target["destination"]["target"]
            .as_str()
            .unwrap()
            .starts_with(&format!("sip:300@127.0.0.1:{phone_port}")),
        "{target}"
    );
    assert_eq!(
        target["source"]["target"], "+15551112222",
        "the transferred caller keeps its number"
    );
    let pbx_leg = api
        .wait_for("the PBX's leg to end", || async {
            api.calls().await.into_iter().find(|c| {
                c["transport"] == "sip" && c["status"] == "hangup" && c["id"] != target["id"]
            })
        })
        .await;
    assert_eq!(pbx_leg["end_cause"]["cause"], "transferred");

    // The caller's tone goes to the phone, which echoes it: the caller hears it back.
    let sim = gw.daemon().sims().remove(0);
    sim.take_recorded_audio();
    sim.queue_audio(&tone(1000.0, 16_000)).unwrap();
    sim.wait_for_recorded(16_000, WAIT).await.unwrap();
    assert!(
        tone_share(&sim.take_recorded_audio(), 1000.0) > 0.5,
        "the caller hears its tone back through the phone"
    );

    // The caller hangs up: the phone gets its BYE (its scenario ends well).
    api.post("/v1.0/gateway/sim/hangup?modem=sim0", json!({}))
        .await;
    ended(&gw, target["id"].as_str().unwrap()).await;
    finished(phone).await;
    for modem in ["sim0", "sim1"] {
        let sent = api
            .get(&format!("/v1.0/gateway/sim/sent?modem={modem}"))
            .await;
        assert_eq!(sent["dialled"], json!([]), "{modem} dialled nothing");
    }
    gw.stop().await;
}

/// `POST /v1.0/transfers` to a number bound to a flow, as VoIPBIN reads it: the party the
/// transferer's call is bridged to runs that flow, and the transferer's call is hung up.
/// Here the GSM caller is connected to a SIP phone (SIPp echoing), the API transfers the
/// phone's leg to 2000: the phone gets a BYE (no REFER, which the phone would not
/// expect), the caller's record points at 2000's flow, and its digit reaches that flow.
/// (Before, the SIP phone was sent a REFER to 2000 through a trunk.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_transfer_to_a_number_bound_to_a_flow_runs_it_for_the_bridged_party() {
    let gw = Gateway::start().await;
    let api = gw.api();
    let (port, phone) = sipp_echo_uas().await;
    let desk = bind(&gw, "2000", transfer_target_flow()).await;
    bind(
        &gw,
        SIM_NUMBER,
        connect_to(&format!("1000@127.0.0.1:{port}")),
    )
    .await;
    let incoming = gsm_call_in(&gw).await;
    let leg = sip_leg_answered(&gw).await;
    // Bridged once the caller hears its tone come back through the phone.
    let sim = gw.daemon().sims().remove(0);
    sim.take_recorded_audio();
    sim.queue_audio(&tone(1000.0, 16_000)).unwrap();
    sim.wait_for_recorded(16_000, WAIT).await.unwrap();
    assert!(tone_share(&sim.take_recorded_audio(), 1000.0) > 0.5);
    let result = api
        .post(
            "/v1.0/transfers",
            json!({
            "transfer_type": "blind",
            "transferer_call_id": leg["id"],
            "transferee_addresses": [{"type": "tel", "target": "2000"}]}),
        )
        .await;
    assert_eq!(result["status"], "transferred");
    assert_eq!(result["transferee_call_id"], incoming.as_str());
    finished(phone).await;
    let sip_leg = ended(&gw, leg["id"].as_str().unwrap()).await;
    assert_eq!(sip_leg["hangup_by"], "local");
    let caller = call(&gw, &incoming).await;
    assert_eq!(caller["flow_id"], desk.to_string());
    assert_eq!(caller["status"], "progressing");
    let af = caller["activeflow_id"].as_str().unwrap().to_owned();
    api.wait_for("the flow to wait for a digit", || async {
        let v = api.get(&format!("/v1.0/activeflows/{af}")).await;
        (v["current_action"]["type"] == "digits_receive").then_some(())
    })
    .await;
    api.post("/v1.0/gateway/sim/dtmf", json!({"digits": "4"}))
        .await;
    let done = api.wait_ended(&af).await;
    assert_eq!(done["variables"]["ran"], "yes");
    assert_eq!(done["variables"]["voipbin.call.digits"], "4");
    ended(&gw, &incoming).await;
    gw.stop().await;
}

/// The events of a peer's user agent.
type PeerEvents = tokio::sync::mpsc::UnboundedReceiver<flowgate_sip::ua::UaEvent>;

/// A SIP user agent of the test's own on loopback (a PBX or a phone), trusting calls from
/// 127.0.0.1 as the gateway's default configuration does, with RTP ports from `rtp_base`.
async fn peer_ua(rtp_base: u16) -> (flowgate_sip::ua::UserAgent, PeerEvents) {
    let mut c = flowgate_sip::config::SipConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        transports: vec![flowgate_sip::transaction::Transport::Udp],
        ..Default::default()
    };
    c.rtp.port_min = rtp_base;
    c.rtp.port_max = rtp_base + 100;
    c.trunks.push(flowgate_sip::config::TrunkConfig {
        trusted_sources: vec!["127.0.0.1/32".into()],
        ..flowgate_sip::config::TrunkConfig::new("lan", "127.0.0.1:5060".parse().unwrap())
    });
    flowgate_sip::ua::UserAgent::start(c)
        .await
        .expect("the peer's user agent starts")
}

/// The next event of a peer's user agent that `pick` takes (others skipped; 20 s at most).
async fn peer_event<T>(
    events: &mut PeerEvents,
    mut pick: impl FnMut(&flowgate_sip::ua::UaEvent) -> Option<T>,
) -> T {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .expect("a SIP event within 20 s")
            .expect("the user agent runs");
        if let Some(t) = pick(&e) {
            return t;
        }
    }
}

/// A thread sending back every frame a peer's call receives, until the call ends.
fn echo(mut stream: flowgate_sip::rtp::RtpStream) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut frame = [0i16; 160];
        while stream.read_frame(&mut frame).is_ok() {
            if stream.write_frame(&frame).is_err() {
                break;
            }
        }
    })
}

/// A PBX with a call to the gateway (`pbx_call`, its id at the PBX) completes an attended
/// transfer elsewhere: it consults `phone` directly, then REFERs the phone to the gateway
/// with a `Replaces` naming `pbx_call` (RFC 5589 §7), and the phone sends the gateway
/// that INVITE with `Replaces`. Returns the phone's new call and the PBX's consultation.
async fn transfer_by_replaces(
    pbx: &flowgate_sip::ua::UserAgent,
    pbx_events: &mut PeerEvents,
    phone: &flowgate_sip::ua::UserAgent,
    phone_events: &mut PeerEvents,
    pbx_call: uuid::Uuid,
) -> (uuid::Uuid, uuid::Uuid) {
    use flowgate_sip::ua::{Destination, Party, UaEvent};
    let consult = uuid::Uuid::now_v7();
    pbx.call(
        consult,
        Destination::Uri(format!("sip:600@{}", phone.udp_addr())),
        Party::number("200"),
    )
    .await
    .unwrap();
    let phone_consult = peer_event(phone_events, |e| match e {
        UaEvent::Incoming { call, .. } => Some(*call),
        _ => None,
    })
    .await;
    phone.answer(phone_consult).await.unwrap();
    peer_event(pbx_events, |e| {
        matches!(e, UaEvent::Answered { call } if *call == consult).then_some(())
    })
    .await;
    pbx.transfer_attended(consult, pbx_call).await.unwrap();
    let target = peer_event(phone_events, |e| match e {
        UaEvent::TransferRequested { target, .. } => Some(target.clone()),
        _ => None,
    })
    .await;
    let replaces = target.replaces.expect("an attended transfer").dialog();
    let replacing = uuid::Uuid::now_v7();
    phone
        .call(
            replacing,
            Destination::Uri(format!("{}?{}", target.uri, replaces.uri_header())),
            Party::number("600"),
        )
        .await
        .unwrap();
    (replacing, consult)
}

/// The gateway as the target of an attended transfer done elsewhere (RFC 3891): the GSM
/// caller is connected to a PBX, and the PBX hands the caller to a phone it consulted
/// directly ([`transfer_by_replaces`]). The phone's INVITE with `Replaces` is answered at
/// once, the caller is bridged to the phone (its tone comes back through the phone's
/// echo), the PBX's leg gets a BYE (cause `transferred`), nothing is dialled, and the
/// phone hanging up ends the caller's call. (Before: a second, unrelated call into the
/// routing table.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_with_replaces_hands_the_gsm_caller_to_the_phone() {
    use flowgate_sip::ua::UaEvent;
    let gw = Gateway::start().await;
    let api = gw.api();
    let (pbx, mut pbx_events) = peer_ua(63_000).await;
    let (phone, mut phone_events) = peer_ua(63_500).await;
    bind(
        &gw,
        SIM_NUMBER,
        connect_to(&format!("500@{}", pbx.udp_addr())),
    )
    .await;
    let incoming = gsm_call_in(&gw).await;
    let pbx_call = peer_event(&mut pbx_events, |e| match e {
        UaEvent::Incoming { call, .. } => Some(*call),
        _ => None,
    })
    .await;
    pbx.answer(pbx_call).await.unwrap();
    let pbx_leg = sip_leg_answered(&gw).await;
    // The PBX echoes; once the caller hears its tone back the caller and the PBX are
    // bridged (answered is not yet bridged: a transfer right then has no party to hand over).
    let sim = gw.daemon().sims().remove(0);
    let pbx_echo = echo(pbx.take_audio(pbx_call).unwrap());
    sim.take_recorded_audio();
    sim.queue_audio(&tone(1000.0, 16_000)).unwrap();
    sim.wait_for_recorded(16_000, WAIT).await.unwrap();
    assert!(tone_share(&sim.take_recorded_audio(), 1000.0) > 0.5);

    let (replacing, consult) =
        transfer_by_replaces(&pbx, &mut pbx_events, &phone, &mut phone_events, pbx_call).await;
    peer_event(&mut phone_events, |e| {
        matches!(e, UaEvent::Answered { call } if *call == replacing).then_some(())
    })
    .await;
    // The phone echoes what it hears.
    let phone_echo = echo(phone.take_audio(replacing).unwrap());
    // The PBX's call with the gateway is ended by the gateway, as replaced.
    peer_event(&mut pbx_events, |e| {
        matches!(e, UaEvent::Ended { call, .. } if *call == pbx_call).then_some(())
    })
    .await;
    pbx.hangup(consult, flowgate_sip::cause::Cause::Normal)
        .await
        .unwrap();
    let old = ended(&gw, pbx_leg["id"].as_str().unwrap()).await;
    assert_eq!(old["end_cause"]["cause"], "transferred", "{old}");
    let new = api
        .wait_for("the replacing call's record", || async {
            api.calls().await.into_iter().find(|c| {
                c["transport"] == "sip"
                    && c["direction"] == "incoming"
                    && c["status"] == "progressing"
            })
        })
        .await;
    assert_eq!(new["master_call_id"], incoming.as_str(), "{new}");
    assert_eq!(call(&gw, &incoming).await["status"], "progressing");

    sim.take_recorded_audio();
    sim.queue_audio(&tone(1000.0, 16_000)).unwrap();
    sim.wait_for_recorded(16_000, WAIT).await.unwrap();
    assert!(
        tone_share(&sim.take_recorded_audio(), 1000.0) > 0.5,
        "the caller hears its tone back through the phone"
    );

    // The phone hangs up: the caller's call ends with it.
    phone
        .hangup(replacing, flowgate_sip::cause::Cause::Normal)
        .await
        .unwrap();
    ended(&gw, &incoming).await;
    pbx_echo.join().unwrap();
    phone_echo.join().unwrap();
    let sent = api.get("/v1.0/gateway/sim/sent").await;
    assert_eq!(sent["dialled"], json!([]), "nothing was dialled");
    pbx.shutdown().await;
    phone.shutdown().await;
    gw.stop().await;
}

/// A `Replaces` naming a call that is bridged to nobody (here a SIP caller in a flow)
/// has no party to hand over: the INVITE is refused (`403`), and the replaced call and
/// its flow go on untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_replacing_a_call_in_a_flow_is_refused_and_the_flow_goes_on() {
    use flowgate_sip::ua::{Destination, Party, UaEvent};
    let gw = Gateway::start().await;
    let api = gw.api();
    let (pbx, mut pbx_events) = peer_ua(64_000).await;
    let (phone, mut phone_events) = peer_ua(64_500).await;
    bind(
        &gw,
        "1000",
        json!({"name": "waits", "detail": "", "actions": [
            {"type": "answer"},
            {"type": "digits_receive", "option": {"duration": 30000, "length": 1}},
            {"type": "variable_set", "option": {"key": "after", "value": "digits"}}]}),
    )
    .await;
    let pbx_call = uuid::Uuid::now_v7();
    pbx.call(
        pbx_call,
        Destination::Uri(format!("sip:1000@{}", sip_addr(&gw))),
        Party::number("200"),
    )
    .await
    .unwrap();
    peer_event(&mut pbx_events, |e| {
        matches!(e, UaEvent::Answered { call } if *call == pbx_call).then_some(())
    })
    .await;
    let (replacing, _) =
        transfer_by_replaces(&pbx, &mut pbx_events, &phone, &mut phone_events, pbx_call).await;
    let refused = peer_event(&mut phone_events, |e| match e {
        UaEvent::Ended { call, cause } if *call == replacing => Some(cause.clone()),
        _ => None,
    })
    .await;
    assert_eq!(refused.sip_status, Some(403), "{refused:?}");

    // The PBX's call is still up in its flow, waiting for a digit, until the PBX leaves.
    let calls = api.calls().await;
    let (up, refused): (Vec<&Value>, Vec<&Value>) =
        calls.iter().partition(|c| c["source"]["target"] == "200");
    let ([caller], [refused]) = (up.as_slice(), refused.as_slice()) else {
        panic!("the PBX's call and the refused one: {calls:?}")
    };
    // Its record ends once the runtime has read the leg's end (the phone may hear first).
    let refused = ended(&gw, refused["id"].as_str().unwrap()).await;
    assert_eq!(refused["end_cause"]["cause"], "rejected", "{refused}");
    assert_eq!(caller["status"], "progressing");
    let af = caller["activeflow_id"].as_str().unwrap().to_owned();
    let flow = api.get(&format!("/v1.0/activeflows/{af}")).await;
    assert_eq!(flow["current_action"]["type"], "digits_receive", "{flow}");
    pbx.hangup(pbx_call, flowgate_sip::cause::Cause::Normal)
        .await
        .unwrap();
    let caller = ended(&gw, caller["id"].as_str().unwrap()).await;
    assert_eq!(caller["hangup_by"], "remote");
    pbx.shutdown().await;
    phone.shutdown().await;
    gw.stop().await;
}
