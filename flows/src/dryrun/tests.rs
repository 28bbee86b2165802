//! The dry run: scripted channel input, the runtime's variables, interrupts, chains.

use super::*;
use crate::limits::Limits;
use crate::model::parse_flow;

fn flow(json: &str) -> Flow {
    parse_flow(json, &Limits::default()).expect("flow")
}

fn cfg(rt: ReferenceType, inputs: &[&str]) -> DryRunConfig {
    DryRunConfig {
        reference_type: rt,
        inputs: inputs.iter().map(|i| i.parse().expect("input")).collect(),
        ..DryRunConfig::default()
    }
}

fn run(json: &str, rt: ReferenceType, inputs: &[&str]) -> DryRunReport {
    dry_run(&flow(json), &cfg(rt, inputs), &mut no_fetch).expect("dry run")
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0xb000 + n)
}

/// `talk` with a known id.
fn talk(n: u128) -> String {
    format!(
        r#"{{"id":"{}","type":"talk","option":{{"text":"t{n}"}}}}"#,
        id(n)
    )
}

/// The texts of the `talk`s that ran (executed, not interrupted).
fn said(r: &DryRunReport) -> Vec<String> {
    r.trace
        .iter()
        .filter(|e| e.kind == ActionType::Talk && e.outcome == TraceOutcome::Executed)
        .filter(|e| e.reason.is_none())
        .filter_map(|e| e.option.as_ref()?["text"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn json_shape() {
    let r = run(
        r#"[{"type":"talk","option":{"text":"x"}}]"#,
        ReferenceType::Api,
        &[],
    );
    let v = serde_json::to_value(&r).expect("ser");
    let keys: Vec<_> = v.as_object().expect("object").keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "trace",
            "variables",
            "end",
            "flows",
            "interrupts",
            "unused_inputs"
        ]
    );
    assert_eq!(v["trace"][0]["type"], "talk");
    assert_eq!(v["trace"][0]["outcome"], "skipped");
    assert_eq!(v["trace"][0]["flow"], 0);
    assert_eq!(v["end"], "finished");
    assert_eq!(v["flows"][0]["ended"]["kind"], "finished");
    assert_eq!(v["flows"][0]["follow_up"]["kind"], "none");
    assert!(!r.failed());
}

#[test]
fn type_ahead_and_timeout() {
    let flow = r#"[
        {"type":"digits_receive","option":{"duration":1000,"length":1}},
        {"type":"variable_set","option":{"key":"first","value":"${voipbin.call.digits}"}},
        {"type":"branch","option":{"default_target_id":"00000000-0000-0000-0000-0000000000a2"}},
        {"id":"00000000-0000-0000-0000-0000000000a2","type":"digits_receive","option":{"duration":1000,"length":1}},
        {"type":"variable_set","option":{"key":"second","value":"${voipbin.call.digits}"}},
        {"type":"digits_receive","option":{"duration":2500,"length":3}}
    ]"#;
    let r = run(flow, ReferenceType::Call, &["dtmf:12"]);
    assert_eq!(r.variables["first"], "1");
    assert_eq!(r.variables["second"], "2");
    assert_eq!(r.trace[5].input.as_deref(), Some("timeout"));
    assert_eq!(r.trace[5].at, DateTime::<Utc>::UNIX_EPOCH);
    assert!(r.render_text().contains("end: finished"));
}

#[test]
fn hangup_and_failure_inputs() {
    let r = run(
        r#"[{"type":"talk","option":{"text":"a"}},{"type":"talk","option":{"text":"b"}}]"#,
        ReferenceType::Call,
        &["hangup"],
    );
    assert_eq!(r.end, "hangup");
    assert_eq!(r.trace.len(), 1);
    let r = run(
        r#"[{"type":"message_send","option":{"destinations":[{"type":"tel","target":"+1"}],"text":"t"}}]"#,
        ReferenceType::Api,
        &["fail:smsc down"],
    );
    assert!(r.end.starts_with("error: `message_send`"), "{}", r.end);
    assert_eq!(r.trace[0].outcome, TraceOutcome::Failed);
    assert!(r.failed());
}

#[test]
fn barge_in_press() {
    let r = run(
        r#"[{"type":"talk","option":{"text":"menu","digits_handle":"next"}},
            {"type":"digits_receive","option":{"duration":5000,"length":1}}]"#,
        ReferenceType::Call,
        &["press:7"],
    );
    assert_eq!(r.variables["voipbin.call.digits"], "7");
    assert_eq!(r.trace[0].input.as_deref(), Some("press:7 (interrupted)"));
    // digits_receive was satisfied on entry: no command, no input consumed
    assert_eq!(r.trace[1].input, None);
    assert!(r.unused_inputs.is_empty());
}

#[test]
fn virtual_time_advances() {
    let r = run(
        r#"[{"type":"sleep","option":{"duration":1500}},{"type":"digits_send","option":{"digits":"123","duration":100,"interval":50}},{"type":"answer"}]"#,
        ReferenceType::Call,
        &[],
    );
    assert_eq!(
        r.trace[2].at,
        DateTime::<Utc>::UNIX_EPOCH + Duration::milliseconds(1500 + 400)
    );
}

// ----- what the runtime sets ---------------------------------------------------------------

#[test]
fn call_status_follows_the_call_as_on_the_gateway() {
    // condition_call_status sees `ringing` before the call is answered, `progressing` after
    // `answer` — and after a `talk`, which answers first.
    let json = format!(
        r#"[
        {{"type":"condition_call_status","option":{{"status":"ringing","false_target_id":"{x}"}}}},
        {{"type":"variable_set","option":{{"key":"before","value":"${{voipbin.call.status}}"}}}},
        {{"type":"answer"}},
        {{"type":"condition_call_status","option":{{"status":"progressing","false_target_id":"{x}"}}}},
        {{"type":"variable_set","option":{{"key":"after","value":"${{voipbin.call.status}}"}}}},
        {{"type":"stop"}},
        {{"id":"{x}","type":"variable_set","option":{{"key":"wrong","value":"yes"}}}}
    ]"#,
        x = id(9)
    );
    let r = run(&json, ReferenceType::Call, &[]);
    assert_eq!(r.variables["before"], "ringing");
    assert_eq!(r.variables["after"], "progressing");
    assert!(!r.variables.contains_key("wrong"));

    let talk_first = format!(
        r#"[{{"type":"talk","option":{{"text":"hi"}}}},
            {{"type":"condition_call_status","option":{{"status":"progressing","false_target_id":"{x}"}}}},
            {{"type":"stop"}},
            {{"id":"{x}","type":"variable_set","option":{{"key":"wrong","value":"yes"}}}}]"#,
        x = id(9)
    );
    let r = run(&talk_first, ReferenceType::Call, &[]);
    assert!(!r.variables.contains_key("wrong"), "talk answers the call");

    // An outbound call's flow starts answered.
    let mut c = cfg(ReferenceType::Call, &[]);
    c.variables
        .insert("voipbin.call.direction".into(), "outgoing".into());
    let r = dry_run(
        &flow(r#"[{"type":"variable_set","option":{"key":"s","value":"${voipbin.call.status}"}}]"#),
        &c,
        &mut no_fetch,
    )
    .expect("run");
    assert_eq!(r.variables["s"], "progressing");
}

#[test]
fn the_runtime_variables_are_set_and_overridable() {
    let mut c = cfg(ReferenceType::Call, &[]);
    c.variables
        .insert("voipbin.call.source.target".into(), "+15551230000".into());
    let r = dry_run(&flow(r#"[{"type":"answer"}]"#), &c, &mut no_fetch).expect("run");
    for (k, v) in [
        ("voipbin.call.id", DRY_RUN_CALL_ID.to_string().as_str()),
        ("voipbin.call.direction", "incoming"),
        ("voipbin.call.digits", ""),
        ("voipbin.call.source.target", "+15551230000"),
        ("voipbin.call.source.type", "tel"),
        ("voipbin.gateway.modem_id", DEFAULT_MODEM_ID),
        (
            "voipbin.activeflow.reference_id",
            DRY_RUN_CALL_ID.to_string().as_str(),
        ),
    ] {
        assert_eq!(r.variables[k], v, "{k}");
    }
    let r = run(r#"[{"type":"stop"}]"#, ReferenceType::Conversation, &[]);
    assert_eq!(
        r.variables["voipbin.conversation.id"],
        DRY_RUN_CONVERSATION_ID.to_string()
    );
    assert_eq!(
        r.variables["voipbin.conversation_message.direction"],
        "incoming"
    );
    let r = run(r#"[{"type":"stop"}]"#, ReferenceType::Api, &[]);
    assert!(!r.variables.keys().any(|k| k.starts_with("voipbin.call.")));
}

#[test]
fn recording_start_sets_the_recording_variables() {
    let r = run(
        r##"[{"type":"recording_start","option":{"format":"wav","end_of_key":"#"}},
            {"type":"variable_set","option":{"key":"rec","value":"${voipbin.recording.id}"}},
            {"type":"recording_start","option":{"format":"wav"}},
            {"type":"recording_stop"},
            {"type":"recording_stop"},
            {"type":"recording_start","option":{"format":"mp3"}}]"##,
        ReferenceType::Call,
        &[],
    );
    let rec = &r.variables["voipbin.recording.id"];
    assert_eq!(&r.variables["rec"], rec);
    assert_eq!(
        r.variables["voipbin.recording.filenames"],
        format!("{rec}.wav")
    );
    assert_eq!(
        r.variables["voipbin.recording.reference_id"],
        DRY_RUN_CALL_ID.to_string()
    );
    assert_eq!(r.variables["voipbin.recording.reference_type"], "call");
    let outcomes: Vec<_> = r.trace.iter().map(|e| e.outcome).collect();
    use TraceOutcome::{Executed as E, Failed as F};
    // A second recording while one runs, a stop without one and mp3 fail as on the gateway
    // (recording actions swallow failures: the flow goes on).
    assert_eq!(outcomes, [E, E, F, E, F, F]);
    assert!(
        r.trace[2]
            .reason
            .as_deref()
            .is_some_and(|m| m.contains("already recording"))
    );
    assert_eq!(r.end, "finished");
}

#[test]
fn reference_data_is_the_call_or_conversation_json() {
    let msg = |text: &str| {
        format!(
            r#"[{{"type":"message_send","option":{{"destinations":[{{"type":"tel","target":"+1"}}],"text":"{text}"}}}},
                {{"type":"answer"}},
                {{"type":"message_send","option":{{"destinations":[{{"type":"tel","target":"+1"}}],"text":"{text}"}}}}]"#
        )
    };
    let r = run(
        &msg("${voipbin.flow.reference_data}"),
        ReferenceType::Call,
        &[],
    );
    let sent: Vec<Value> = r
        .trace
        .iter()
        .filter(|e| e.kind == ActionType::MessageSend)
        .map(|e| {
            let text = e.option.as_ref().expect("option")["text"]
                .as_str()
                .expect("text")
                .to_owned();
            serde_json::from_str(&text).expect("the text is the call's JSON")
        })
        .collect();
    assert_eq!(sent[0]["id"], DRY_RUN_CALL_ID.to_string());
    assert_eq!(sent[0]["status"], "ringing");
    assert_eq!(sent[0]["activeflow_id"], activeflow_id(0).to_string());
    assert_eq!(sent[1]["status"], "progressing", "kept current");

    let r = run(
        r#"[{"type":"variable_set","option":{"key":"d","value":"${voipbin.flow.reference_data}"}}]"#,
        ReferenceType::Conversation,
        &[],
    );
    let conv: Value = serde_json::from_str(&r.variables["d"]).expect("json");
    assert_eq!(conv["id"], DRY_RUN_CONVERSATION_ID.to_string());
    assert_eq!(conv["peer"]["type"], "tel");

    // Other references have none (VoIPBIN: ""); a --var value wins and stays.
    let r = run(
        r#"[{"type":"variable_set","option":{"key":"d","value":"x${voipbin.flow.reference_data}"}}]"#,
        ReferenceType::Api,
        &[],
    );
    assert_eq!(r.variables["d"], "x");
    let mut c = cfg(ReferenceType::Call, &[]);
    c.variables
        .insert("voipbin.flow.reference_data".into(), "{\"mine\":1}".into());
    let r = dry_run(&flow(r#"[{"type":"answer"}]"#), &c, &mut no_fetch).expect("run");
    assert_eq!(r.variables["voipbin.flow.reference_data"], "{\"mine\":1}");
}

#[test]
fn every_option_is_in_the_trace_substituted() {
    let mut c = cfg(ReferenceType::Call, &[]);
    c.variables.insert("order".into(), "A-17".into());
    let r = dry_run(
        &flow(
            r#"[{"type":"message_send","option":{"source":{"type":"tel","target":"${voipbin.gateway.modem_id}"},
                  "destinations":[{"type":"tel","target":"+1555"}],"text":"Order ${order} shipped"}},
                {"type":"hangup","option":{"reason":"angry"}}]"#,
        ),
        &c,
        &mut no_fetch,
    )
    .expect("run");
    let sms = r.trace[0].option.as_ref().expect("option");
    assert_eq!(sms["text"], "Order A-17 shipped");
    assert_eq!(sms["source"]["target"], DEFAULT_MODEM_ID);
    assert_eq!(sms["destinations"][0]["target_name"], "");
    // What the runtime is handed: an unknown reason is normal clearing.
    assert_eq!(
        r.trace[1].option.as_ref().expect("option")["reason"],
        "normal"
    );
}

// ----- interrupts ----------------------------------------------------------------------------

#[test]
fn forward_without_now_waits_for_the_command() {
    let json = format!("[{},{},{}]", talk(1), talk(2), talk(3));
    let r = run(&json, ReferenceType::Call, &[&format!("forward:{}", id(3))]);
    assert_eq!(said(&r), ["t1", "t3"]);
    assert_eq!(
        r.trace[0].input.as_deref(),
        Some(format!("forward:{} (queued)", id(3)).as_str())
    );
    assert_eq!(r.interrupts[0].effect, "queued");
    assert_eq!(r.interrupts[0].action, id(1));
}

#[test]
fn forward_now_abandons_the_wait_and_at_picks_the_point() {
    let json = format!(
        r#"[{},{{"id":"{}","type":"digits_receive","option":{{"duration":5000,"length":1}}}},{},{}]"#,
        talk(1),
        id(2),
        talk(3),
        talk(4)
    );
    // At the digits_receive, the client jumps to t4 at once: no digit is taken, no time
    // passes, t3 never plays.
    let r = run(
        &json,
        ReferenceType::Call,
        &["at:actions[1]", "forward-now:actions[3]", "dtmf:5"],
    );
    assert_eq!(said(&r), ["t1", "t4"]);
    let receive = &r.trace[1];
    assert_eq!(receive.reason.as_deref(), Some("interrupted"));
    assert_eq!(receive.at, r.trace[2].at);
    assert_eq!(
        r.unused_inputs,
        [InputEvent::Dtmf("5".into())],
        "the digits were for a wait that was abandoned"
    );
    // Without the marker the jump happens at the first prompt.
    let r = run(&json, ReferenceType::Call, &["forward-now:actions[3]"]);
    assert_eq!(said(&r), ["t4"]);
    assert_eq!(r.trace[0].reason.as_deref(), Some("interrupted"));
}

#[test]
fn continue_waits_for_the_block() {
    // A conversation flow: the message goes out, the flow blocks until a client continues.
    let json = format!(
        r#"[{{"type":"message_send","option":{{"destinations":[{{"type":"tel","target":"+1"}}],"text":"hi"}}}},
            {{"id":"{}","type":"block"}},
            {{"type":"variable_set","option":{{"key":"resumed","value":"yes"}}}}]"#,
        id(5)
    );
    let r = run(&json, ReferenceType::Conversation, &["continue"]);
    assert_eq!(r.variables["resumed"], "yes");
    assert_eq!(r.end, "finished");
    assert_eq!(r.interrupts[0].action, id(5));
    assert_eq!(r.interrupts[0].effect, "continued");
    // Nothing continues it: stopped at the block.
    let r = run(&json, ReferenceType::Conversation, &[]);
    assert!(r.end.starts_with("stopped: blocked at action"), "{}", r.end);
    // A continue naming another action is refused like the API's 409; the run goes on.
    let r = run(
        &json,
        ReferenceType::Conversation,
        &[&format!("continue:{}", id(77)), "continue"],
    );
    assert!(
        r.interrupts[0].effect.starts_with("refused:"),
        "{:?}",
        r.interrupts
    );
    assert_eq!(r.variables["resumed"], "yes");
}

#[test]
fn forward_now_leaves_a_block() {
    let json = format!(
        r#"[{{"type":"block"}},{{"type":"variable_set","option":{{"key":"x","value":"skipped"}}}},
            {{"id":"{}","type":"variable_set","option":{{"key":"y","value":"jumped"}}}}]"#,
        id(6)
    );
    let r = run(
        &json,
        ReferenceType::Api,
        &[&format!("forward-now:{}", id(6))],
    );
    assert_eq!(r.variables["y"], "jumped");
    assert!(!r.variables.contains_key("x"));
}

#[test]
fn pushed_actions_run_then_the_flow_goes_on() {
    let json = format!("[{},{}]", talk(1), talk(2));
    let push = r#"[{"type":"talk","option":{"text":"pushed"}}]"#;
    let r = run(&json, ReferenceType::Call, &[&format!("push:{push}")]);
    assert_eq!(said(&r), ["t1", "pushed", "t2"]);
    let pushed = r.trace.iter().find(|e| e.stack.is_some()).expect("forked");
    assert_eq!(pushed.kind, ActionType::Talk);
    let r = run(&json, ReferenceType::Call, &[&format!("push-now:{push}")]);
    assert_eq!(said(&r), ["pushed", "t2"]);
}

#[test]
fn stop_and_refused_interrupts() {
    let json = format!("[{},{}]", talk(1), talk(2));
    let r = run(&json, ReferenceType::Call, &["at:actions[1]", "stop"]);
    assert_eq!(r.trace.len(), 2);
    assert_eq!(
        r.trace[1].input.as_deref(),
        Some(format!("stop:{API_STOP_REASON} (stopped)").as_str()),
        "stopped while t2 played"
    );
    assert_eq!(r.end, format!("stopped: {API_STOP_REASON}"));
    let r = run(
        &json,
        ReferenceType::Call,
        &["forward:actions[9]", &format!("forward:{}", id(99))],
    );
    assert_eq!(said(&r), ["t1", "t2"]);
    assert!(
        r.interrupts
            .iter()
            .all(|i| i.effect.starts_with("refused:"))
    );
    assert!(r.render_text().contains("refused"));
}

// ----- chains and fetched flows --------------------------------------------------------------

const MAIN: &str = "f0000000-0000-4000-8000-000000000001";
const NEXT: &str = "f0000000-0000-4000-8000-000000000002";

#[test]
fn on_complete_chain_runs_with_the_given_flows() {
    let main = flow(&format!(
        r#"{{"id":"{MAIN}","name":"m","detail":"","on_complete_flow_id":"{NEXT}","actions":[
            {{"type":"variable_set","option":{{"key":"who","value":"main"}}}},{},{{"type":"hangup"}}]}}"#,
        talk(1)
    ));
    let next = flow(&format!(
        r#"{{"id":"{NEXT}","name":"n","detail":"","actions":[
            {{"type":"talk","option":{{"text":"too late"}}}},
            {{"type":"message_send","option":{{"destinations":[{{"type":"tel","target":"+1"}}],"text":"from ${{who}}"}}}},
            {{"type":"variable_set","option":{{"key":"call","value":"${{voipbin.flow.reference_data}}"}}}}]}}"#
    ));
    let mut c = cfg(ReferenceType::Call, &[]);
    c.flows = vec![next];
    let r = dry_run(&main, &c, &mut no_fetch).expect("run");
    assert_eq!(r.flows.len(), 2);
    assert_eq!(r.flows[0].ended, EndReason::Hangup);
    assert!(matches!(
        r.flows[0].follow_up,
        FollowUpReport::Started {
            complete_count: 1,
            ..
        }
    ));
    assert_eq!(r.flows[1].complete_count, 1);
    assert_eq!(r.flows[1].flow_id.to_string(), NEXT);
    assert_eq!(r.flows[1].ended, EndReason::Finished);
    let second: Vec<&TraceEntry> = r.trace.iter().filter(|e| e.flow == 1).collect();
    // The call is over: the follow-up's talk fails (swallowed), its message goes out with
    // the inherited variables.
    assert_eq!(second[0].outcome, TraceOutcome::Failed);
    assert!(
        second[0]
            .reason
            .as_deref()
            .is_some_and(|m| m.contains("no live call"))
    );
    assert_eq!(
        second[1].option.as_ref().expect("option")["text"],
        "from main"
    );
    assert_eq!(r.end, "finished");
    assert_eq!(r.variables["voipbin.activeflow.complete_count"], "1");
    // The call record is over; the variable stays as the runtime left it.
    let call: Value = serde_json::from_str(&r.variables["call"]).expect("json");
    assert_eq!(call["status"], "hangup");
    assert_eq!(call["activeflow_id"], activeflow_id(1).to_string());
    assert_eq!(r.variables["voipbin.call.status"], "progressing");
    assert!(r.render_text().contains("flow 2"));

    // Without the follow-up flow: the first flow's end says what would follow.
    let r = dry_run(&main, &cfg(ReferenceType::Call, &[]), &mut no_fetch).expect("run");
    assert_eq!(r.flows.len(), 1);
    assert!(matches!(
        r.flows[0].follow_up,
        FollowUpReport::Missing { .. }
    ));
    assert!(r.end.contains("not among the given flows"), "{}", r.end);
}

#[test]
fn chain_depth_limit_refuses_the_fifth_follow_up() {
    let looping = flow(&format!(
        r#"{{"id":"{MAIN}","name":"m","detail":"","on_complete_flow_id":"{MAIN}","actions":[
            {{"type":"variable_set","option":{{"key":"n","value":"${{voipbin.activeflow.complete_count}}"}}}}]}}"#
    ));
    let mut c = cfg(ReferenceType::Api, &[]);
    c.flows = vec![looping.clone()];
    let r = dry_run(&looping, &c, &mut no_fetch).expect("run");
    // complete_count 0..=4 run; the follow-up that would have count 5 is refused.
    assert_eq!(r.flows.len(), 5);
    assert_eq!(r.variables["n"], "4");
    assert!(matches!(
        r.flows[4].follow_up,
        FollowUpReport::Refused {
            complete_count: 5,
            ..
        }
    ));
    assert!(r.end.contains("refused"), "{}", r.end);
}

#[test]
fn fetch_flow_from_the_given_flows_may_jump_into_its_parent() {
    // The sub-flow validated alone only warns about the target; run under the main flow it
    // jumps back into it (VoIPBIN's GetAction through ReturnStackID).
    let sub = flow(&format!(
        r#"{{"id":"{NEXT}","name":"sub","detail":"","actions":[{},
            {{"type":"goto","option":{{"target_id":"{}","loop_count":1}}}}]}}"#,
        talk(5),
        id(3)
    ));
    let main = flow(&format!(
        r#"[{},{{"type":"fetch_flow","option":{{"flow_id":"{NEXT}"}}}},{},{}]"#,
        talk(1),
        talk(2),
        talk(3)
    ));
    let mut c = cfg(ReferenceType::Call, &[]);
    c.flows = vec![sub];
    let r = dry_run(&main, &c, &mut no_fetch).expect("run");
    assert_eq!(said(&r), ["t1", "t5", "t3"]);
    assert_eq!(r.end, "finished");
}
