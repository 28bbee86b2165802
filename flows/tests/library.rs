//! Every library flow validates cleanly (no errors, no warnings for its intended use) and
//! dry-runs through its main paths.

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use flowgate_flows::dryrun::{DryRunConfig, DryRunReport, FetchRequest, dry_run, parse_var};
use flowgate_flows::engine::{EndReason, FollowUp};
use flowgate_flows::model::{Action, ActionType, Flow, ReferenceType};
use flowgate_flows::validate::{ValidateOptions, validate_json};
use uuid::Uuid;

/// Library file → the reference type it is written for.
const LIBRARY: &[(&str, ReferenceType)] = &[
    ("ivr-menu.json", ReferenceType::Call),
    ("sms-keyword-bot.json", ReferenceType::Conversation),
    ("business-hours.json", ReferenceType::Call),
    ("api-notification.json", ReferenceType::Api),
    ("support-line.json", ReferenceType::Call),
    ("post-call-report.json", ReferenceType::Call),
];

/// The library directory. Every test reads its flows through here, so this is also where the
/// process gets the machine's tzdata, as the daemon and the CLI install it (business-hours
/// names `Europe/Berlin`).
fn dir() -> PathBuf {
    flowgate_flows::tz::install(std::sync::Arc::new(flowgate_flows::tz::ZoneinfoDir::new(
        flowgate_flows::tz::DEFAULT_ZONEINFO_DIR,
    )));
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("library")
}

fn load(name: &str) -> Flow {
    let rt = LIBRARY.iter().find(|(n, _)| *n == name).map(|(_, rt)| *rt);
    let text = std::fs::read_to_string(dir().join(name)).expect("library file");
    let opts = ValidateOptions {
        reference_type: rt,
        ..ValidateOptions::default()
    };
    let (flow, report) = validate_json(&text, &opts);
    assert!(report.errors.is_empty(), "{name}: {:?}", report.errors);
    assert!(report.warnings.is_empty(), "{name}: {:?}", report.warnings);
    flow.expect("valid flow")
}

#[test]
fn every_library_file_is_listed_and_valid() {
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .expect("library dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    let mut listed: Vec<String> = LIBRARY.iter().map(|(n, _)| (*n).to_owned()).collect();
    listed.sort();
    assert_eq!(files, listed, "add new library flows to LIBRARY");
    for (name, _) in LIBRARY {
        load(name);
    }
}

/// A Wednesday morning in Berlin (10:00 local).
fn weekday_morning() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 4, 8, 0, 0)
        .single()
        .expect("time")
}

fn call_vars() -> Vec<(String, String)> {
    [
        "voipbin.call.source.target=+15551230000",
        "voipbin.call.destination.target=+15550000001",
        "voipbin.call.digits=",
    ]
    .iter()
    .map(|v| parse_var(v).expect("var"))
    .collect()
}

fn run(name: &str, vars: &[(String, String)], inputs: &[&str], now: DateTime<Utc>) -> DryRunReport {
    let flow = load(name);
    let rt = LIBRARY
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(ReferenceType::Call, |(_, rt)| *rt);
    let cfg = DryRunConfig {
        reference_type: rt,
        variables: vars.iter().cloned().collect(),
        inputs: inputs.iter().map(|i| i.parse().expect("input")).collect(),
        now,
        ..DryRunConfig::default()
    };
    let mut fetch = |_: &FetchRequest| -> Result<Vec<Action>, String> { Err("no fetch".into()) };
    let report = dry_run(&flow, &cfg, &mut fetch).expect("dry run");
    // Every report renders and serializes.
    assert!(report.render_text().contains("end: "));
    serde_json::to_string(&report).expect("json");
    report
}

fn executed(r: &DryRunReport) -> Vec<ActionType> {
    r.trace
        .iter()
        .filter(|e| e.outcome == flowgate_flows::engine::TraceOutcome::Executed)
        .map(|e| e.kind)
        .collect()
}

fn option_of(r: &DryRunReport, kind: ActionType) -> serde_json::Value {
    r.trace
        .iter()
        .find(|e| e.kind == kind)
        .and_then(|e| e.option.clone())
        .unwrap_or_default()
}

#[test]
fn ivr_menu_sms_choice() {
    let r = run(
        "ivr-menu.json",
        &call_vars(),
        &["dtmf:1"],
        weekday_morning(),
    );
    let sms = option_of(&r, ActionType::MessageSend);
    assert_eq!(sms["destinations"][0]["target"], "+15551230000");
    assert_eq!(sms["source"]["target"], "+15550000001");
    assert_eq!(r.end, "hangup");
}

#[test]
fn ivr_menu_retries_three_times_then_goodbye() {
    let r = run("ivr-menu.json", &call_vars(), &[], weekday_morning());
    let receives = executed(&r)
        .iter()
        .filter(|k| **k == ActionType::DigitsReceive)
        .count();
    assert_eq!(receives, 3);
    let talks: Vec<_> = r
        .trace
        .iter()
        .filter(|e| e.kind == ActionType::Talk)
        .filter_map(|e| {
            e.option
                .as_ref()
                .and_then(|o| o["text"].as_str())
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(talks.last().map(String::as_str), Some("Goodbye."));
    assert_eq!(r.end, "hangup");
}

#[test]
fn ivr_menu_barge_in_to_voicemail() {
    // "2" pressed during the prompt interrupts it and satisfies digits_receive at once;
    // "#" ends the message.
    let r = run(
        "ivr-menu.json",
        &call_vars(),
        &["press:2", "dtmf:#"],
        weekday_morning(),
    );
    let kinds = executed(&r);
    assert!(kinds.contains(&ActionType::RecordingStart));
    assert!(kinds.contains(&ActionType::RecordingStop));
    assert_eq!(r.variables["voipbin.call.digits"], "#");
    assert!(r.unused_inputs.is_empty());
}

#[test]
fn ivr_menu_caller_hangs_up() {
    let r = run(
        "ivr-menu.json",
        &call_vars(),
        &["hangup"],
        weekday_morning(),
    );
    assert_eq!(r.end, "hangup");
    assert_eq!(
        r.trace.len(),
        2,
        "answer, then the prompt during which the caller hangs up"
    );
}

fn conversation_vars(text: &str) -> Vec<(String, String)> {
    vec![
        (
            "voipbin.conversation.self.target".into(),
            "+15550000001".into(),
        ),
        (
            "voipbin.conversation.peer.target".into(),
            "+15557654321".into(),
        ),
        // legacy spelling works too
        ("voipbin.message.text".into(), text.into()),
    ]
}

#[test]
fn sms_bot_keywords() {
    let r = run(
        "sms-keyword-bot.json",
        &conversation_vars("HOURS"),
        &[],
        weekday_morning(),
    );
    let sms = option_of(&r, ActionType::MessageSend);
    assert_eq!(sms["source"]["target"], "+15550000001");
    assert_eq!(sms["destinations"][0]["target"], "+15557654321");
    assert!(sms["text"].as_str().is_some_and(|t| t.contains("open")));
    assert_eq!(r.end, "stopped: stop action");
    assert_eq!(
        r.variables["voipbin.conversation_message.text"], "",
        "branch clears it"
    );

    let r = run(
        "sms-keyword-bot.json",
        &conversation_vars("STOP"),
        &[],
        weekday_morning(),
    );
    let hook = option_of(&r, ActionType::WebhookSend);
    assert_eq!(
        hook["data"],
        r#"{"phone":"+15557654321","number":"+15550000001"}"#
    );

    let r = run(
        "sms-keyword-bot.json",
        &conversation_vars("what?"),
        &[],
        weekday_morning(),
    );
    assert!(
        option_of(&r, ActionType::MessageSend)["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("Reply HOURS"))
    );
    assert_eq!(r.end, "finished");
}

#[test]
fn business_hours_open_and_closed() {
    let open = run("business-hours.json", &call_vars(), &[], weekday_morning());
    let sms = option_of(&open, ActionType::MessageSend);
    assert_eq!(sms["text"], "Call from +15551230000: please call back.");
    assert!(!executed(&open).contains(&ActionType::RecordingStart));

    // Saturday: closed, voicemail ended with #
    let saturday = Utc
        .with_ymd_and_hms(2025, 6, 7, 10, 0, 0)
        .single()
        .expect("time");
    let closed = run("business-hours.json", &call_vars(), &["dtmf:#"], saturday);
    let kinds = executed(&closed);
    assert!(kinds.contains(&ActionType::RecordingStart));
    assert!(kinds.contains(&ActionType::WebhookSend));
    assert!(!kinds.contains(&ActionType::MessageSend));

    // Weekday 17:30 in Berlin (15:30 UTC): closed
    let evening = Utc
        .with_ymd_and_hms(2025, 6, 4, 15, 30, 0)
        .single()
        .expect("time");
    let late = run("business-hours.json", &call_vars(), &[], evening);
    assert!(executed(&late).contains(&ActionType::RecordingStart));
    // 16:59 Berlin: still open
    let last_minute = Utc
        .with_ymd_and_hms(2025, 6, 4, 14, 59, 0)
        .single()
        .expect("time");
    let r = run("business-hours.json", &call_vars(), &[], last_minute);
    assert!(executed(&r).contains(&ActionType::MessageSend));
}

#[test]
fn api_notification() {
    let vars: Vec<_> = ["order=A-17", "phone=+15551234567"]
        .iter()
        .map(|v| parse_var(v).expect("var"))
        .collect();
    let r = run("api-notification.json", &vars, &[], weekday_morning());
    let sms = option_of(&r, ActionType::MessageSend);
    assert_eq!(sms["destinations"][0]["target"], "+15551234567");
    assert_eq!(
        sms["text"],
        "Your order A-17 has shipped. Track it at https://shop.example/t/A-17"
    );
    let hook = option_of(&r, ActionType::WebhookSend);
    assert!(
        hook["data"]
            .as_str()
            .is_some_and(|d| d.contains(r#""order":"A-17""#))
    );
    assert_eq!(r.end, "stopped: stop action");

    let r = run(
        "api-notification.json",
        &[parse_var("order=A-18").expect("var")],
        &[],
        weekday_morning(),
    );
    assert!(!executed(&r).contains(&ActionType::MessageSend));
    assert_eq!(
        option_of(&r, ActionType::WebhookSend)["uri"],
        "https://shop.example/hooks/failed"
    );
}

#[test]
fn support_line_then_post_call_report() {
    let r = run(
        "support-line.json",
        &call_vars(),
        &["dtmf:#"],
        weekday_morning(),
    );
    assert_eq!(r.end_detail.reason, EndReason::Hangup);
    let FollowUp::Start(oc) = &r.end_detail.follow_up else {
        panic!("expected a follow-up, got {:?}", r.end_detail.follow_up)
    };
    assert_eq!(oc.complete_count, 1);
    assert_eq!(oc.reference_type, ReferenceType::Call);
    let report_flow = load("post-call-report.json");
    assert_eq!(Some(oc.flow_id), report_flow.id);

    // The follow-up runs with the inherited variables, on the same (hung-up) call reference.
    let inherited: Vec<(String, String)> = oc
        .variables
        .iter()
        .filter(|(k, _)| !k.starts_with("voipbin.activeflow."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let follow = run("post-call-report.json", &inherited, &[], weekday_morning());
    let sms = option_of(&follow, ActionType::MessageSend);
    assert_eq!(
        sms["text"],
        "Thanks for calling. Your ticket is T-+15551230000."
    );
    assert_eq!(follow.end, "finished");
    assert!(
        follow
            .trace
            .iter()
            .all(|e| e.outcome != flowgate_flows::engine::TraceOutcome::Skipped)
    );
}

#[test]
fn hangup_during_the_caller_message_still_runs_post_call_work() {
    let r = run(
        "support-line.json",
        &call_vars(),
        &["hangup"],
        weekday_morning(),
    );
    assert_eq!(r.end_detail.reason, EndReason::Hangup);
    assert!(matches!(r.end_detail.follow_up, FollowUp::Start(_)));
}

#[test]
fn library_ids_are_unique_across_files() {
    let mut seen: HashMap<Uuid, &str> = HashMap::new();
    for (name, _) in LIBRARY {
        let flow = load(name);
        for id in flow.actions.iter().map(|a| a.id).chain(flow.id) {
            if let Some(other) = seen.insert(id, name) {
                panic!("{id} is used in {name} and {other}");
            }
        }
    }
}

#[test]
fn support_line_chain_runs_the_post_call_report() {
    // The README's example: an agent ends the recording through the API while the caller
    // describes the problem; the call ends and the post-call report runs on its own.
    let flow = load("support-line.json");
    let cfg = DryRunConfig {
        reference_type: ReferenceType::Call,
        variables: call_vars().into_iter().collect(),
        inputs: [
            "at:actions[4]",
            "forward-now:a5000000-0000-4000-8000-000000000006",
        ]
        .iter()
        .map(|i| i.parse().expect("input"))
        .collect(),
        now: weekday_morning(),
        flows: vec![load("post-call-report.json")],
        ..DryRunConfig::default()
    };
    let r = dry_run(&flow, &cfg, &mut |_: &FetchRequest| Err("no fetch".into())).expect("run");
    assert_eq!(r.flows.len(), 2);
    assert_eq!(r.flows[0].ended, EndReason::Hangup);
    assert_eq!(r.interrupts[0].effect, "interrupted");
    let recording = &r.flows[0].variables["voipbin.recording.id"];
    let report = r
        .trace
        .iter()
        .find(|e| e.flow == 1 && e.kind == ActionType::WebhookSend)
        .and_then(|e| e.option.clone())
        .expect("the report was filed");
    let data: serde_json::Value =
        serde_json::from_str(report["data"].as_str().expect("data")).expect("json body");
    assert_eq!(data["ticket"], "T-+15551230000");
    assert_eq!(&data["recording"], recording.as_str());
    assert_eq!(r.end, "finished");
    assert!(r.unused_inputs.is_empty());
}
