//! Engine semantics, one test per behaviour.

use super::*;
use crate::model::{parse_actions, parse_flow};

use chrono::TimeZone;

fn t0() -> DateTime<Utc> {
    // A Wednesday.
    Utc.with_ymd_and_hms(2025, 6, 4, 10, 30, 0)
        .single()
        .expect("valid time")
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0xa000 + n)
}

fn actions(json: &str) -> Vec<Action> {
    parse_flow(json, &Limits::default())
        .expect("flow parses")
        .actions
}

fn new_af(json: &str, rt: ReferenceType) -> Activeflow {
    new_af_with(json, rt, &Guards::default())
}

fn new_af_with(json: &str, rt: ReferenceType, guards: &Guards) -> Activeflow {
    let spec = ActiveflowSpec {
        id: id(0xfff),
        reference_type: rt,
        actions: actions(json),
        ..ActiveflowSpec::default()
    };
    Activeflow::new(spec, guards).expect("activeflow")
}

/// Runs to the end completing every command with `Done`; returns the types of the
/// commands issued and the end.
fn drive(af: &mut Activeflow) -> (Vec<ActionType>, End) {
    let mut cmds = Vec::new();
    loop {
        match af.run(t0()) {
            Step::Execute(c) => {
                cmds.push(c.kind());
                af.complete(c.action_id, Outcome::Done, t0())
                    .expect("complete");
            }
            Step::Blocked => panic!("unexpected block"),
            Step::Ended(e) => return (cmds, e),
        }
    }
}

fn trace_types(af: &Activeflow) -> Vec<(ActionType, TraceOutcome)> {
    af.executed().map(|e| (e.kind, e.outcome)).collect()
}

#[test]
fn linear_flow_finishes() {
    let mut af = new_af(
        r#"[{"type":"answer"},{"type":"talk","option":{"text":"hi"}},{"type":"hangup"}]"#,
        ReferenceType::Call,
    );
    let (cmds, end) = drive(&mut af);
    assert_eq!(
        cmds,
        [ActionType::Answer, ActionType::Talk, ActionType::Hangup]
    );
    assert_eq!(end.reason, EndReason::Hangup);
}

fn cmd_ids(af: &mut Activeflow) -> Vec<Uuid> {
    let mut out = Vec::new();
    while let Step::Execute(c) = af.run(t0()) {
        out.push(c.action_id);
        af.complete(c.action_id, Outcome::Done, t0())
            .expect("complete");
    }
    out
}

fn talk(n: u128) -> String {
    format!(
        r#"{{"id":"{}","type":"talk","option":{{"text":"t{n}"}}}}"#,
        id(n)
    )
}

#[test]
fn goto_jumps_loop_count_times_then_falls_through() {
    let json = format!(
        r#"[{},{{"type":"goto","option":{{"target_id":"{}","loop_count":2}}}},{}]"#,
        talk(1),
        id(1),
        talk(2)
    );
    let mut af = new_af(&json, ReferenceType::Call);
    assert_eq!(cmd_ids(&mut af), [id(1), id(1), id(1), id(2)]);
    assert_eq!(af.end().map(|e| &e.reason), Some(&EndReason::Finished));
}

#[test]
fn goto_without_loop_count_never_jumps() {
    let json = format!(
        r#"[{},{{"type":"goto","option":{{"target_id":"{}"}}}},{}]"#,
        talk(1),
        id(1),
        talk(2)
    );
    let mut af = new_af(&json, ReferenceType::Call);
    assert_eq!(cmd_ids(&mut af), [id(1), id(2)]);
}

#[test]
fn next_id_wins_over_array_order() {
    let json = format!(
        r#"[{{"id":"{}","next_id":"{}","type":"talk","option":{{"text":"a"}}}},{},{}]"#,
        id(1),
        id(3),
        talk(2),
        talk(3)
    );
    let mut af = new_af(&json, ReferenceType::Call);
    assert_eq!(cmd_ids(&mut af), [id(1), id(3)]);
}

fn branch_flow(default: bool) -> String {
    let d = if default {
        format!(r#","default_target_id":"{}""#, id(9))
    } else {
        String::new()
    };
    format!(
        r#"[{{"type":"branch","option":{{"variable":"choice","target_ids":{{"1":"{}","2":"{}"}}{d}}}}},
        {},{},{},{}]"#,
        id(1),
        id(2),
        r#"{"type":"stop"}"#,
        talk(1),
        talk(2),
        talk(9)
    )
}

#[test]
fn branch_exact_match_default_and_clear() {
    for (value, expected) in [("1", id(1)), ("2", id(2)), ("1 ", id(9)), ("", id(9))] {
        let mut af = new_af(&branch_flow(true), ReferenceType::Call);
        af.set_variable("choice", value).expect("set");
        let Step::Execute(c) = af.run(t0()) else {
            panic!("expected a command")
        };
        assert_eq!(c.action_id, expected, "value {value:?}");
        assert_eq!(
            af.variable("choice"),
            Some(""),
            "branch clears the variable"
        );
    }
}

#[test]
fn branch_without_match_or_default_is_fatal() {
    let mut af = new_af(&branch_flow(false), ReferenceType::Call);
    af.set_variable("choice", "7").expect("set");
    let Step::Ended(end) = af.run(t0()) else {
        panic!("expected the end")
    };
    assert!(
        matches!(&end.reason, EndReason::Error(e) if e.contains("`7`")),
        "{end:?}"
    );
    assert_eq!(af.stats().totals.failed, 1);
}

#[test]
fn branch_defaults_to_call_digits_and_accepts_template_name() {
    for variable in ["", "${voipbin.call.digits}", "voipbin.call.digits"] {
        let json = format!(
            r#"[{{"type":"branch","option":{{"variable":"{variable}","target_ids":{{"5":"{}"}}}}}},{}]"#,
            id(1),
            talk(1)
        );
        let mut af = new_af(&json, ReferenceType::Call);
        af.set_variable(CALL_DIGITS, "5").expect("set");
        assert_eq!(cmd_ids(&mut af), [id(1)], "variable {variable:?}");
    }
}

fn cond_var(opt: &str) -> String {
    format!(
        r#"[{{"type":"condition_variable","option":{{{opt},"false_target_id":"{}"}}}},{},{{"type":"stop"}},{}]"#,
        id(2),
        talk(1),
        talk(2)
    )
}

fn first_command(json: &str, vars: &[(&str, &str)]) -> Uuid {
    let mut af = new_af(json, ReferenceType::Call);
    for (k, v) in vars {
        af.set_variable(k, v).expect("set");
    }
    match af.run(t0()) {
        Step::Execute(c) => c.action_id,
        other => panic!("expected a command, got {other:?}"),
    }
}

#[test]
fn condition_variable_types_and_operators() {
    let t = id(1);
    let f = id(2);
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Uuid);
    let cases: &[Case<'_>] = &[
        (
            r#""condition":"==","variable":"${x}","value_type":"string","value_string":"abc""#,
            &[("x", "abc")],
            t,
        ),
        (
            r#""condition":"!=","variable":"${x}","value_type":"string","value_string":"abc""#,
            &[("x", "abc")],
            f,
        ),
        (
            r#""condition":"<","variable":"${x}","value_type":"string","value_string":"b""#,
            &[("x", "abc")],
            t,
        ),
        (
            r#""condition":">=","variable":"${x}","value_type":"number","value_number":2.5"#,
            &[("x", "2.5")],
            t,
        ),
        (
            r#""condition":">","variable":"${x}","value_type":"number","value_number":10"#,
            &[("x", "9")],
            f,
        ),
        (
            r#""condition":"==","variable":"${x}","value_type":"number","value_number":1"#,
            &[("x", "one")],
            f,
        ),
        (
            r#""condition":"==","variable":"${x}","value_type":"length","value_length":3"#,
            &[("x", "abc")],
            t,
        ),
        (
            r#""condition":"<=","variable":"${x}","value_type":"length","value_length":2"#,
            &[("x", "abc")],
            f,
        ),
        // bare name of a known variable reads it
        (
            r#""condition":"==","variable":"x","value_type":"string","value_string":"abc""#,
            &[("x", "abc")],
            t,
        ),
        // bare text that is no variable is literal
        (
            r#""condition":"==","variable":"abc","value_type":"string","value_string":"abc""#,
            &[],
            t,
        ),
        // unknown operator counts as false (validation refuses it statically; here via template)
        (
            r#""condition":"${op}","variable":"a","value_type":"string","value_string":"a""#,
            &[("op", "=~")],
            f,
        ),
        // value_string is substituted
        (
            r#""condition":"==","variable":"${x}","value_type":"string","value_string":"${y}""#,
            &[("x", "q"), ("y", "q")],
            t,
        ),
    ];
    for (opt, vars, expected) in cases {
        assert_eq!(first_command(&cond_var(opt), vars), *expected, "{opt}");
    }
}

fn cond_dt(opt: &str) -> String {
    format!(
        r#"[{{"type":"condition_datetime","option":{{{opt},"false_target_id":"{}"}}}},{},{{"type":"stop"}},{}]"#,
        id(2),
        talk(1),
        talk(2)
    )
}

#[test]
fn condition_datetime_operand_order_and_fields() {
    crate::tz::install_system_zones_for_tests();
    // t0: Wednesday 2025-06-04 10:30 UTC
    let t = id(1);
    let f = id(2);
    let cases: &[(&str, Uuid)] = &[
        // option <op> now: 9 <= 10 → true (VoIPBIN's example)
        (r#""condition":"<=","hour":9,"minute":-1"#, t),
        (r#""condition":">=","hour":9,"minute":-1"#, f),
        (r#""condition":"==","hour":10,"minute":30"#, t),
        // An omitted hour or minute is 0 and tested, as in VoIPBIN's code: at 10:30,
        // `hour == 10` alone is false (minute 0 != 30) …
        (r#""condition":"==","hour":10"#, f),
        (r#""condition":"==","minute":30"#, f),
        (r#""condition":"==","hour":10,"minute":-1"#, t),
        (r#""condition":"==","weekdays":[3]"#, f),
        (
            r#""condition":"==","weekdays":[3],"hour":-1,"minute":-1"#,
            t,
        ),
        (r#""condition":"<=","weekdays":[3]"#, t),
        // … unless the Flowgate option says omitted fields match any value.
        (r#""condition":"==","hour":10,"omitted_fields":"any""#, t),
        (r#""condition":"==","minute":30,"omitted_fields":"any""#, t),
        (
            r#""condition":"==","weekdays":[3],"omitted_fields":"any""#,
            t,
        ),
        (
            r#""condition":"==","weekdays":[0,6],"omitted_fields":"any""#,
            f,
        ),
        (
            r#""condition":"==","month":6,"day":4,"omitted_fields":"any""#,
            t,
        ),
        (r#""condition":"==","month":6,"day":4"#, f),
        (r#""condition":"==","month":7,"omitted_fields":"any""#, f),
        (r#""condition":">","day":3,"hour":-1,"minute":-1"#, f),
        (r#""condition":">=","hour":9"#, f),
        // per-action time zone: 10:30 UTC is 19:30 in Tokyo
        (
            r#""condition":"==","hour":19,"minute":30,"timezone":"Asia/Tokyo""#,
            t,
        ),
        (r#""condition":"${op}","hour":10,"minute":-1"#, f),
    ];
    for (opt, expected) in cases {
        assert_eq!(first_command(&cond_dt(opt), &[]), *expected, "{opt}");
    }
}

#[test]
fn condition_datetime_default_timezone_from_guards() {
    crate::tz::install_system_zones_for_tests();
    let guards = Guards {
        timezone: "Europe/Berlin".into(),
        ..Guards::default()
    };
    // 10:30 UTC = 12:30 in Berlin (summer time)
    let mut af = new_af_with(
        &cond_dt(r#""condition":"==","hour":12,"minute":-1"#),
        ReferenceType::Call,
        &guards,
    );
    let Step::Execute(c) = af.run(t0()) else {
        panic!("command")
    };
    assert_eq!(c.action_id, id(1));
}

#[test]
fn condition_call_digits_and_status() {
    let digits = |opt: &str| {
        format!(
            r#"[{{"type":"condition_call_digits","option":{{{opt},"false_target_id":"{}"}}}},{},{{"type":"stop"}},{}]"#,
            id(2),
            talk(1),
            talk(2)
        )
    };
    assert_eq!(
        first_command(&digits(r#""length":2"#), &[(CALL_DIGITS, "12")]),
        id(1)
    );
    assert_eq!(
        first_command(&digits(r#""length":3"#), &[(CALL_DIGITS, "12")]),
        id(2)
    );
    assert_eq!(
        first_command(&digits(r##""key":"#""##), &[(CALL_DIGITS, "12#")]),
        id(1)
    );
    let status = format!(
        r#"[{{"type":"condition_call_status","option":{{"status":"progressing","false_target_id":"{}"}}}},{},{{"type":"stop"}},{}]"#,
        id(2),
        talk(1),
        talk(2)
    );
    assert_eq!(
        first_command(&status, &[(CALL_STATUS, "progressing")]),
        id(1)
    );
    assert_eq!(first_command(&status, &[(CALL_STATUS, "ringing")]), id(2));
    assert_eq!(first_command(&status, &[]), id(2));
}

#[test]
fn variable_set_substitutes_and_refuses_reserved() {
    let mut af = new_af(
        r#"[{"type":"variable_set","option":{"key":"greeting","value":"hi ${name}"}},
            {"type":"variable_set","option":{"key":"k_${name}","value":"${greeting}!"}}]"#,
        ReferenceType::Api,
    );
    af.set_variable("name", "${greeting}").expect("set");
    let (_, end) = drive(&mut af);
    assert_eq!(end.reason, EndReason::Finished);
    // single pass: the value of `name` is not expanded again
    assert_eq!(af.variable("greeting"), Some("hi ${greeting}"));
    assert_eq!(af.variable("k_${greeting}"), Some("hi ${greeting}!"));

    // writing voipbin.activeflow.* through a template is refused, swallowed, traced
    let mut af = new_af(
        r#"[{"type":"variable_set","option":{"key":"${k}","value":"forged"}},{"type":"talk","option":{"text":"x"}}]"#,
        ReferenceType::Call,
    );
    af.set_variable("k", "voipbin.activeflow.id").expect("set");
    let (cmds, _) = drive(&mut af);
    assert_eq!(cmds, [ActionType::Talk]);
    assert_eq!(
        af.variable("voipbin.activeflow.id"),
        Some(id(0xfff).to_string().as_str())
    );
    assert_eq!(
        trace_types(&af)[0],
        (ActionType::VariableSet, TraceOutcome::Failed)
    );
}

#[test]
fn media_gating_by_reference_type() {
    let json = r#"[{"type":"answer"},{"type":"talk","option":{"text":"x"}},{"type":"block"},
        {"type":"webhook_send","option":{"uri":"http://x"}},{"type":"ai_summary"}]"#;
    // call: block and ai_summary skipped
    let mut af = new_af(json, ReferenceType::Call);
    let (cmds, _) = drive(&mut af);
    assert_eq!(
        cmds,
        [
            ActionType::Answer,
            ActionType::Talk,
            ActionType::WebhookSend
        ]
    );
    let skipped: Vec<_> = trace_types(&af)
        .into_iter()
        .filter(|(_, o)| *o == TraceOutcome::Skipped)
        .map(|(k, _)| k)
        .collect();
    assert_eq!(skipped, [ActionType::Block, ActionType::AiSummary]);
    // api: media skipped, block runs
    let mut af = new_af(json, ReferenceType::Api);
    assert_eq!(af.run(t0()), Step::Blocked);
    assert_eq!(af.stats().totals.skipped, 2);
    // none: only `any` actions
    let mut af = new_af(json, ReferenceType::None);
    let (cmds, _) = drive(&mut af);
    assert_eq!(cmds, [ActionType::WebhookSend]);
}

#[test]
fn block_waits_for_continue() {
    let mut af = new_af(
        &format!(
            r#"[{{"id":"{}","type":"block"}},{{"type":"webhook_send","option":{{"uri":"http://x"}}}}]"#,
            id(1)
        ),
        ReferenceType::Conversation,
    );
    assert_eq!(af.run(t0()), Step::Blocked);
    assert_eq!(af.run(t0()), Step::Blocked, "run does not move a block");
    assert!(matches!(
        af.continue_block(id(2)),
        Err(EngineError::Stale { .. })
    ));
    af.continue_block(id(1)).expect("continue");
    assert!(matches!(af.run(t0()), Step::Execute(c) if c.kind() == ActionType::WebhookSend));
}

#[test]
fn stop_action_ends_with_stopped() {
    let mut af = new_af(
        r#"[{"type":"stop"},{"type":"answer"}]"#,
        ReferenceType::Call,
    );
    let (cmds, end) = drive(&mut af);
    assert!(cmds.is_empty());
    assert_eq!(end.reason, EndReason::Stopped("stop action".into()));
}

#[test]
fn fetch_pushes_a_stack_and_returns_after_the_fork() {
    let json = format!(
        r#"[{{"id":"{}","type":"fetch","option":{{"event_url":"http://x"}},"next_id":"{}"}},{},{}]"#,
        id(1),
        id(3),
        talk(2),
        talk(3)
    );
    let mut af = new_af(&json, ReferenceType::Call);
    let Step::Execute(c) = af.run(t0()) else {
        panic!()
    };
    assert_eq!(c.kind(), ActionType::Fetch);
    let fetched = parse_actions(
        r#"[{"type":"talk","option":{"text":"f1"}},{"type":"talk","option":{"text":"f2"}}]"#,
        &Limits::default(),
    )
    .expect("parse");
    let f_ids: Vec<Uuid> = fetched.iter().map(|a| a.id).collect();
    af.complete(c.action_id, Outcome::Actions(fetched), t0())
        .expect("complete");
    let ids = cmd_ids(&mut af);
    // forked stack, then back after the fetch honouring its next_id (skips id(2))
    assert_eq!(ids, [f_ids[0], f_ids[1], id(3)]);
    assert_eq!(af.current_stack_id(), ID_START);
}

#[test]
fn conference_join_pushes_the_conference_service_stack() {
    // VoIPBIN's conference service answers `conference_join` with a stack (pre flow, then
    // `confbridge_join`); the flow resumes after the join when that stack is done.
    let json = format!(
        r#"[{{"id":"{}","type":"conference_join","option":{{"conference_id":"{}"}}}},{}]"#,
        id(1),
        id(0xc0),
        talk(2)
    );
    let mut af = new_af(&json, ReferenceType::Call);
    let Step::Execute(c) = af.run(t0()) else {
        panic!()
    };
    assert_eq!(c.kind(), ActionType::ConferenceJoin);
    let stack = parse_actions(
        &format!(
            r#"[{{"type":"talk","option":{{"text":"pre"}}}},{{"type":"confbridge_join","option":{{"confbridge_id":"{}"}}}}]"#,
            id(0xc0)
        ),
        &Limits::default(),
    )
    .expect("parse");
    let pushed: Vec<Uuid> = stack.iter().map(|a| a.id).collect();
    af.complete(c.action_id, Outcome::Actions(stack), t0())
        .expect("complete");
    assert_eq!(cmd_ids(&mut af), [pushed[0], pushed[1], id(2)]);
}

#[test]
fn fetched_actions_can_jump_to_ancestors_and_unwind() {
    let json = format!(
        r#"[{},{{"type":"fetch_flow","option":{{"flow_id":"{}"}}}},{}]"#,
        talk(1),
        id(0x77),
        talk(2)
    );
    let mut af = new_af(&json, ReferenceType::Call);
    let mut seen = Vec::new();
    loop {
        match af.run(t0()) {
            Step::Execute(c) if c.kind() == ActionType::FetchFlow => {
                let goto = parse_actions(
                    &format!(
                        r#"[{},{{"type":"goto","option":{{"target_id":"{}","loop_count":1}}}}]"#,
                        talk(5),
                        id(2)
                    ),
                    &Limits::default(),
                )
                .expect("parse");
                af.complete(c.action_id, Outcome::Actions(goto), t0())
                    .expect("complete");
            }
            Step::Execute(c) => {
                seen.push(c.action_id);
                af.complete(c.action_id, Outcome::Done, t0())
                    .expect("complete");
            }
            Step::Blocked => panic!(),
            Step::Ended(_) => break,
        }
    }
    assert_eq!(seen, [id(1), id(5), id(2)]);
}

#[test]
fn invalid_fetched_actions_are_a_fatal_fetch_error() {
    let mut af = new_af(
        r#"[{"type":"fetch","option":{"event_url":"http://x"}}]"#,
        ReferenceType::Api,
    );
    let Step::Execute(c) = af.run(t0()) else {
        panic!()
    };
    let bad = parse_actions(
        r#"[{"type":"goto","option":{"target_id":"00000000-0000-0000-0000-000000000001","loop_count":1}}]"#,
        &Limits::default(),
    )
    .expect("parse");
    af.complete(c.action_id, Outcome::Actions(bad), t0())
        .expect("complete");
    let Step::Ended(end) = af.run(t0()) else {
        panic!()
    };
    assert!(
        matches!(&end.reason, EndReason::Error(e) if e.contains("`fetch`") && e.contains("reserved")),
        "{end:?}"
    );
}

#[test]
fn a_target_in_no_stack_fails_only_when_the_jump_happens() {
    // Fetched actions may name a target that is in none of the stacks: VoIPBIN pushes them,
    // and only the jump fails (fatal). A goto that does not jump is harmless.
    let mut af = new_af(
        r#"[{"type":"fetch","option":{"event_url":"http://x"}}]"#,
        ReferenceType::Api,
    );
    let Step::Execute(c) = af.run(t0()) else {
        panic!()
    };
    let fetched = parse_actions(
        &format!(
            r#"[{{"type":"goto","option":{{"target_id":"{t}"}}}},
                {{"type":"variable_set","option":{{"key":"a","value":"1"}}}},
                {{"type":"goto","option":{{"target_id":"{t}","loop_count":1}}}}]"#,
            t = id(42)
        ),
        &Limits::default(),
    )
    .expect("parse");
    af.complete(c.action_id, Outcome::Actions(fetched), t0())
        .expect("pushed");
    let Step::Ended(end) = af.run(t0()) else {
        panic!()
    };
    assert_eq!(af.variable("a"), Some("1"));
    assert!(
        matches!(&end.reason, EndReason::Error(e) if e.contains("`goto`") && e.contains(&id(42).to_string())),
        "{end:?}"
    );
    // The same for the main stack: the flow is created and runs until the jump.
    let mut af = new_af(
        &format!(
            r#"[{},{{"type":"goto","option":{{"target_id":"{}","loop_count":1}}}},{}]"#,
            talk(1),
            id(42),
            talk(2)
        ),
        ReferenceType::Call,
    );
    let (cmds, end) = drive(&mut af);
    assert_eq!(cmds, [ActionType::Talk]);
    assert!(matches!(end.reason, EndReason::Error(_)), "{end:?}");
}

#[test]
fn unexpected_and_stale_outcomes_are_refused() {
    let mut af = new_af(&format!("[{}]", talk(1)), ReferenceType::Call);
    let Step::Execute(c) = af.run(t0()) else {
        panic!()
    };
    assert!(matches!(
        af.complete(c.action_id, Outcome::Actions(vec![]), t0()),
        Err(EngineError::UnexpectedOutcome { .. })
    ));
    assert!(matches!(
        af.complete(id(99), Outcome::Done, t0()),
        Err(EngineError::Stale { .. })
    ));
    af.complete(c.action_id, Outcome::Done, t0())
        .expect("complete");
    assert!(matches!(
        af.complete(c.action_id, Outcome::Done, t0()),
        Err(EngineError::Stale { .. })
    ));
}

#[test]
fn error_policies() {
    // message_send failing is fatal
    let mut af = new_af(
        r#"[{"type":"message_send","option":{"destinations":[{"type":"tel","target":"+1"}],"text":"x"}},{"type":"answer"}]"#,
        ReferenceType::Call,
    );
    let Step::Execute(c) = af.run(t0()) else {
        panic!()
    };
    af.complete(c.action_id, Outcome::Failed("no modem".into()), t0())
        .expect("complete");
    let Step::Ended(end) = af.run(t0()) else {
        panic!()
    };
    assert!(matches!(&end.reason, EndReason::Error(e) if e.contains("no modem")));
    // webhook_send and media failing are swallowed
    let mut af = new_af(
        r#"[{"type":"webhook_send","option":{"uri":"http://x"}},{"type":"play","option":{"stream_urls":["x"]}},{"type":"answer"}]"#,
        ReferenceType::Call,
    );
    for _ in 0..2 {
        let Step::Execute(c) = af.run(t0()) else {
            panic!()
        };
        af.complete(c.action_id, Outcome::Failed("down".into()), t0())
            .expect("complete");
    }
    assert!(matches!(af.run(t0()), Step::Execute(c) if c.kind() == ActionType::Answer));
    assert_eq!(af.stats().totals.failed, 2);
}

#[test]
fn template_ids_resolve_or_fail_by_policy() {
    let json = r#"[{"type":"conversation_send","option":{"conversation_id":"${voipbin.conversation.id}","text":"hi ${name}"}},
        {"type":"queue_join","option":{"queue_id":"${q}"}}]"#;
    let mut af = new_af(json, ReferenceType::Call);
    let conv = Uuid::new_v4();
    af.set_variable("voipbin.conversation.id", &conv.to_string())
        .expect("set");
    af.set_variable("name", "Ann").expect("set");
    af.set_variable("q", "not-a-uuid").expect("set");
    let Step::Execute(c) = af.run(t0()) else {
        panic!()
    };
    let CommandOption::ConversationSend(o) = &c.option else {
        panic!()
    };
    assert_eq!(o.conversation_id, IdRef::Id(conv));
    assert_eq!(o.text, "hi Ann");
    af.complete(c.action_id, Outcome::Done, t0())
        .expect("complete");
    // queue_join: fatal when its id does not resolve
    let Step::Ended(end) = af.run(t0()) else {
        panic!()
    };
    assert!(
        matches!(&end.reason, EndReason::Error(e) if e.contains("option.queue_id")),
        "{end:?}"
    );
}

fn receive(opt: &str) -> String {
    format!(
        r#"[{{"type":"digits_receive","option":{{{opt}}}}},{}]"#,
        talk(1)
    )
}

#[test]
fn digits_receive_appends_and_finishes_on_length() {
    let mut af = new_af(
        &receive(r#""duration":5000,"length":3"#),
        ReferenceType::Call,
    );
    af.set_variable(CALL_DIGITS, "").expect("set");
    assert!(matches!(af.run(t0()), Step::Execute(c) if c.kind() == ActionType::DigitsReceive));
    assert_eq!(af.dtmf('1', t0()), Ok(DtmfEffect::Collecting));
    assert_eq!(af.dtmf('2', t0()), Ok(DtmfEffect::Collecting));
    assert_eq!(af.dtmf('3', t0()), Ok(DtmfEffect::Completed));
    assert_eq!(af.variable(CALL_DIGITS), Some("123"));
    assert!(matches!(af.run(t0()), Step::Execute(c) if c.action_id == id(1)));
}

#[test]
fn digits_receive_terminator_is_kept() {
    let mut af = new_af(
        &receive(r##""duration":5000,"key":"#*""##),
        ReferenceType::Call,
    );
    assert!(matches!(af.run(t0()), Step::Execute(_)));
    assert_eq!(af.dtmf('4', t0()), Ok(DtmfEffect::Collecting));
    assert_eq!(af.dtmf('#', t0()), Ok(DtmfEffect::Completed));
    assert_eq!(af.variable(CALL_DIGITS), Some("4#"));
}

#[test]
fn digits_receive_prepressed_digits_complete_on_entry() {
    let mut af = new_af(
        &receive(r#""duration":5000,"length":1"#),
        ReferenceType::Call,
    );
    af.set_variable(CALL_DIGITS, "9").expect("set");
    // no digits_receive command: it was satisfied on entry
    assert!(matches!(af.run(t0()), Step::Execute(c) if c.action_id == id(1)));
    assert_eq!(
        trace_types(&af)[0],
        (ActionType::DigitsReceive, TraceOutcome::Executed)
    );
}

#[test]
fn digits_receive_timeout_ends_it() {
    let mut af = new_af(
        &receive(r#""duration":5000,"length":4"#),
        ReferenceType::Call,
    );
    let Step::Execute(c) = af.run(t0()) else {
        panic!()
    };
    af.dtmf('1', t0()).expect("dtmf");
    af.complete(c.action_id, Outcome::Timeout, t0())
        .expect("timeout");
    assert_eq!(af.variable(CALL_DIGITS), Some("1"));
    assert!(matches!(af.run(t0()), Step::Execute(c) if c.action_id == id(1)));
}

#[test]
fn dtmf_during_other_actions_overwrites_and_barges_in() {
    let json = format!(
        r#"[{{"type":"talk","option":{{"text":"menu","digits_handle":"next"}}}},{{"type":"talk","option":{{"text":"plain"}}}},{}]"#,
        talk(1)
    );
    let mut af = new_af(&json, ReferenceType::Call);
    af.set_variable(CALL_DIGITS, "55").expect("set");
    let Step::Execute(c) = af.run(t0()) else {
        panic!()
    };
    assert_eq!(af.dtmf('3', t0()), Ok(DtmfEffect::Interrupted));
    assert_eq!(af.variable(CALL_DIGITS), Some("3"));
    // the interrupted talk is complete: a late playback-finished report is stale
    assert!(matches!(
        af.complete(c.action_id, Outcome::Done, t0()),
        Err(EngineError::Stale { .. })
    ));
    let Step::Execute(plain) = af.run(t0()) else {
        panic!()
    };
    assert_eq!(af.dtmf('7', t0()), Ok(DtmfEffect::Stored));
    assert_eq!(af.variable(CALL_DIGITS), Some("7"));
    assert_eq!(af.pending().map(|c| c.action_id), Some(plain.action_id));
    assert_eq!(af.dtmf('x', t0()), Err(EngineError::InvalidDigit('x')));
    assert_eq!(af.dtmf('b', t0()), Ok(DtmfEffect::Stored));
    assert_eq!(af.variable(CALL_DIGITS), Some("B"));
}

#[test]
fn forward_now_abandons_the_pending_command() {
    let json = format!(r#"[{},{},{}]"#, talk(1), talk(2), talk(3));
    let mut af = new_af(&json, ReferenceType::Call);
    let Step::Execute(c) = af.run(t0()) else {
        panic!()
    };
    assert_eq!(c.action_id, id(1));
    assert_eq!(af.forward(id(3), true), Ok(ForwardEffect::Interrupt));
    assert!(matches!(af.run(t0()), Step::Execute(c) if c.action_id == id(3)));
    assert_eq!(
        af.forward(id(42), false),
        Err(EngineError::NotFound(id(42)))
    );
    // without forward_now the jump waits for the command to complete
    assert_eq!(af.forward(id(1), false), Ok(ForwardEffect::Queued));
    assert!(matches!(af.run(t0()), Step::Execute(c) if c.action_id == id(3)));
    af.complete(id(3), Outcome::Done, t0()).expect("complete");
    assert!(matches!(af.run(t0()), Step::Execute(c) if c.action_id == id(1)));
}

#[test]
fn push_actions_fork_lifo_and_return() {
    let json = format!(r#"[{},{}]"#, talk(1), talk(2));
    let mut af = new_af(&json, ReferenceType::Call);
    let Step::Execute(_) = af.run(t0()) else {
        panic!()
    };
    let a = parse_actions(&format!("[{}]", talk(10)), &Limits::default()).expect("a");
    let b = parse_actions(&format!("[{}]", talk(20)), &Limits::default()).expect("b");
    assert_eq!(af.push_actions(a, false), Ok(ForwardEffect::Queued));
    assert_eq!(af.push_actions(b, false), Ok(ForwardEffect::Queued));
    af.complete(id(1), Outcome::Done, t0()).expect("complete");
    assert_eq!(cmd_ids(&mut af), [id(20), id(10), id(2)]);
    // invalid pushes are refused and change nothing
    let mut af = new_af(&json, ReferenceType::Call);
    // (a jump to the reserved FINISH id cannot run anywhere)
    let bad = parse_actions(
        r#"[{"type":"goto","option":{"target_id":"00000000-0000-0000-0000-000000000002","loop_count":1}}]"#,
        &Limits::default(),
    )
    .expect("parse");
    assert!(matches!(
        af.push_actions(bad, true),
        Err(EngineError::InvalidActions(_))
    ));
    assert_eq!(cmd_ids(&mut af), [id(1), id(2)]);
}

#[test]
fn guard_iterations_per_run() {
    let json = format!(
        r#"[{{"id":"{}","type":"variable_set","option":{{"key":"a","value":"b"}}}},{{"type":"goto","option":{{"target_id":"{}","loop_count":100000}}}}]"#,
        id(1),
        id(1)
    );
    let mut af = new_af(&json, ReferenceType::Api);
    let Step::Ended(end) = af.run(t0()) else {
        panic!()
    };
    assert!(
        matches!(&end.reason, EndReason::Guard(g) if g.contains("1000")),
        "{end:?}"
    );
    assert_eq!(af.stats().executions, 1000);
}

#[test]
fn guard_lifetime_executions() {
    let json = format!(
        r#"[{},{{"type":"goto","option":{{"target_id":"{}","loop_count":100000}}}}]"#,
        talk(1),
        id(1)
    );
    let guards = Guards {
        max_executions: 50,
        ..Guards::default()
    };
    let mut af = new_af_with(&json, ReferenceType::Call, &guards);
    let (cmds, end) = drive(&mut af);
    assert_eq!(cmds.len(), 25);
    assert!(
        matches!(&end.reason, EndReason::Guard(g) if g.contains("50")),
        "{end:?}"
    );
}

#[test]
fn trace_window_is_bounded_totals_are_not() {
    let goto = actions(&format!(
        r#"[{{"type":"goto","option":{{"target_id":"{}","loop_count":300}}}},{}]"#,
        id(1),
        talk(1)
    ))
    .remove(0);
    let spec = ActiveflowSpec {
        actions: vec![
            Action::with_id(id(1), ActionOption::Empty(crate::model::NoOption {})),
            goto,
        ],
        ..ActiveflowSpec::default()
    };
    let mut af = Activeflow::new(spec, &Guards::default()).expect("af");
    let Step::Ended(end) = af.run(t0()) else {
        panic!()
    };
    assert_eq!(end.reason, EndReason::Finished);
    assert_eq!(af.executed().len(), 100);
    assert_eq!(af.stats().totals.executed, 602);
    assert_eq!(af.executed().last().map(|e| e.seq), Some(602));
}

#[test]
fn stack_guard_refuses_deep_forks() {
    let guards = Guards {
        max_stack_hops: 3,
        ..Guards::default()
    };
    let mut af = new_af_with(&format!("[{}]", talk(1)), ReferenceType::Call, &guards);
    for n in 0..2 {
        let a = parse_actions(&format!("[{}]", talk(100 + n)), &Limits::default()).expect("a");
        af.push_actions(a, false).expect("push");
    }
    let a = parse_actions(&format!("[{}]", talk(200)), &Limits::default()).expect("a");
    assert_eq!(
        af.push_actions(a, false),
        Err(EngineError::TooManyStacks(3))
    );
}

#[test]
fn reserved_variables_are_set_last_and_unforgeable() {
    let mut inherited = IndexMap::new();
    inherited.insert("voipbin.activeflow.id".to_owned(), "parent".to_owned());
    inherited.insert("from_parent".to_owned(), "yes".to_owned());
    let mut external = IndexMap::new();
    external.insert("voipbin.activeflow.flow_id".to_owned(), "forged".to_owned());
    external.insert(" VOIPBIN.call.id".to_owned(), "forged".to_owned());
    external.insert("order".to_owned(), "A-17".to_owned());
    let spec = ActiveflowSpec {
        id: id(1),
        flow_id: id(2),
        reference_type: ReferenceType::Api,
        reference_id: id(3),
        reference_activeflow_id: id(4),
        complete_count: 2,
        actions: actions(r#"[{"type":"stop"}]"#),
        inherited_variables: inherited,
        external_variables: external,
        ..ActiveflowSpec::default()
    };
    let mut af = Activeflow::new(spec, &Guards::default()).expect("af");
    let v = |k: &str| af.variable(k).map(str::to_owned);
    assert_eq!(v("voipbin.activeflow.id"), Some(id(1).to_string()));
    assert_eq!(v("voipbin.activeflow.flow_id"), Some(id(2).to_string()));
    assert_eq!(v("voipbin.activeflow.reference_type"), Some("api".into()));
    assert_eq!(
        v("voipbin.activeflow.reference_id"),
        Some(id(3).to_string())
    );
    assert_eq!(
        v("voipbin.activeflow.reference_activeflow_id"),
        Some(id(4).to_string())
    );
    assert_eq!(v("voipbin.activeflow.complete_count"), Some("2".into()));
    assert_eq!(v("voipbin.call.id"), None);
    assert_eq!(v("order"), Some("A-17".into()));
    assert_eq!(v("from_parent"), Some("yes".into()));
    assert!(af.set_variable("voipbin.activeflow.id", "x").is_err());
    assert!(af.remove_variable("voipbin.activeflow.id").is_err());
}

#[test]
fn external_variable_caps_refuse_creation() {
    let external = (0..101)
        .map(|i| (format!("k{i}"), "v".to_owned()))
        .collect();
    let spec = ActiveflowSpec {
        actions: actions(r#"[{"type":"stop"}]"#),
        external_variables: external,
        ..ActiveflowSpec::default()
    };
    assert!(matches!(
        Activeflow::new(spec, &Guards::default()),
        Err(EngineError::Variables(VarError::TooMany { max: 100 }))
    ));
}

#[test]
fn on_complete_follow_up_and_chain_limit() {
    let flow = parse_flow(
        &format!(r#"{{"id":"{}","name":"a","detail":"","on_complete_flow_id":"{}","actions":[{{"type":"variable_set","option":{{"key":"x","value":"1"}}}}]}}"#, id(1), id(2)),
        &Limits::default(),
    )
    .expect("flow");
    let spec = ActiveflowSpec::new(id(10), &flow, ReferenceType::Call, id(20));
    let mut af = Activeflow::new(spec, &Guards::default()).expect("af");
    let Step::Ended(end) = af.run(t0()) else {
        panic!()
    };
    let FollowUp::Start(oc) = &end.follow_up else {
        panic!("{end:?}")
    };
    assert_eq!(oc.flow_id, id(2));
    assert_eq!(oc.complete_count, 1);
    assert_eq!(oc.reference_activeflow_id, id(10));
    assert_eq!(oc.reference_type, ReferenceType::Call);
    assert_eq!(oc.variables.get("x").map(String::as_str), Some("1"));
    // the follow-up inherits variables; its own activeflow.* are rewritten
    let next = ActiveflowSpec::follow_up(id(11), oc, &flow);
    let af2 = Activeflow::new(next, &Guards::default()).expect("af2");
    assert_eq!(af2.variable("x"), Some("1"));
    assert_eq!(
        af2.variable("voipbin.activeflow.id"),
        Some(id(11).to_string().as_str())
    );
    assert_eq!(af2.variable("voipbin.activeflow.complete_count"), Some("1"));
    // depth: count 4 → next would be 5 → refused
    let mut spec = ActiveflowSpec::new(id(12), &flow, ReferenceType::Call, id(20));
    spec.complete_count = 4;
    let mut af = Activeflow::new(spec, &Guards::default()).expect("af");
    let Step::Ended(end) = af.run(t0()) else {
        panic!()
    };
    assert_eq!(
        end.follow_up,
        FollowUp::Refused {
            flow_id: id(2),
            complete_count: 5
        }
    );
    let mut spec = ActiveflowSpec::new(id(13), &flow, ReferenceType::Call, id(20));
    spec.complete_count = 5;
    assert!(matches!(
        Activeflow::new(spec, &Guards::default()),
        Err(EngineError::ChainTooDeep { .. })
    ));
}

#[test]
fn stop_is_idempotent_and_hangup_outcome_ends() {
    let mut af = new_af(&format!("[{}]", talk(1)), ReferenceType::Call);
    let Step::Execute(c) = af.run(t0()) else {
        panic!()
    };
    af.complete(c.action_id, Outcome::Hangup, t0())
        .expect("complete");
    assert!(matches!(af.run(t0()), Step::Ended(e) if e.reason == EndReason::Hangup));
    let e = af.stop(EndReason::Stopped("api".into()));
    assert_eq!(e.reason, EndReason::Hangup);
    assert_eq!(af.dtmf('1', t0()), Ok(DtmfEffect::Ignored));
    assert_eq!(af.forward(id(1), true), Err(EngineError::Ended));
}

#[test]
fn state_round_trips_through_serde_mid_flow() {
    let json = format!(
        r#"[{},{{"type":"goto","option":{{"target_id":"{}","loop_count":2}}}},{}]"#,
        talk(1),
        id(1),
        talk(2)
    );
    let mut straight = new_af(&json, ReferenceType::Call);
    let mut af = straight.clone();
    let expected = cmd_ids(&mut straight);
    let mut got = Vec::new();
    loop {
        let saved = serde_json::to_string(&af).expect("ser");
        af = serde_json::from_str(&saved).expect("de");
        match af.run(t0()) {
            Step::Execute(c) => {
                got.push(c.action_id);
                let saved = serde_json::to_string(&af).expect("ser");
                af = serde_json::from_str(&saved).expect("de");
                af.complete(c.action_id, Outcome::Done, t0())
                    .expect("complete");
            }
            _ => break,
        }
    }
    assert_eq!(got, expected);
    assert_eq!(
        af.executed().collect::<Vec<_>>(),
        straight.executed().collect::<Vec<_>>()
    );
}

/// Serializes `af` without its main actions, deserializes it and gives them back: what a
/// runtime that stores the actions apart does at every step and after a restart.
fn reload_apart(af: &Activeflow, main: &MainActions) -> Activeflow {
    let saved = serde_json::to_value(af).expect("ser");
    assert!(
        saved["stacks"][0].get("actions").is_none(),
        "the main actions stay out of the state: {saved}"
    );
    let mut back: Activeflow = serde_json::from_value(saved).expect("de");
    assert!(back.main_actions_missing());
    back.attach_main_actions(main.clone());
    assert!(!back.main_actions_missing());
    back
}

#[test]
fn state_with_actions_apart_round_trips_mid_flow_pushed_stacks_included() {
    let json = format!(
        r#"[{},{{"type":"goto","option":{{"target_id":"{}","loop_count":2}}}},{}]"#,
        talk(1),
        id(1),
        talk(2)
    );
    let pushed = parse_actions(&format!("[{}]", talk(10)), &Limits::default()).expect("push");
    let mut straight = new_af(&json, ReferenceType::Call);
    let mut af = straight.clone();
    af.store_actions_apart();
    let main = af.main_actions();
    assert_eq!(
        serde_json::to_value(&main).expect("ser"),
        serde_json::to_value(&straight).expect("ser")["stacks"][0]["actions"],
        "stored apart, the actions are the main stack's JSON"
    );
    let mut expected = Vec::new();
    let mut got = Vec::new();
    for (af, ids, reload) in [
        (&mut straight, &mut expected, false),
        (&mut af, &mut got, true),
    ] {
        let mut first = true;
        loop {
            if reload {
                *af = reload_apart(af, &main);
            }
            let Step::Execute(c) = af.run(t0()) else {
                break;
            };
            ids.push(c.action_id);
            if std::mem::take(&mut first) {
                // A pushed stack is not the flow's: it stays in the state.
                af.push_actions(pushed.clone(), false).expect("push");
                if reload {
                    let saved = serde_json::to_value(&*af).expect("ser");
                    assert!(saved["stacks"][1]["actions"].is_array(), "{saved}");
                    *af = reload_apart(af, &main);
                }
            }
            af.complete(c.action_id, Outcome::Done, t0())
                .expect("complete");
        }
    }
    assert_eq!(got, expected);
    assert!(got.contains(&id(10)));
    assert_eq!(
        af.executed().collect::<Vec<_>>(),
        straight.executed().collect::<Vec<_>>()
    );
    assert_eq!(af.end(), straight.end());
}

#[test]
fn a_state_without_its_actions_never_runs_as_an_empty_flow() {
    let mut af = new_af(&format!("[{}]", talk(1)), ReferenceType::Api);
    af.store_actions_apart();
    let mut back: Activeflow =
        serde_json::from_value(serde_json::to_value(&af).expect("ser")).expect("de");
    let Step::Ended(end) = back.run(t0()) else {
        panic!("a state without its actions must not run")
    };
    assert!(matches!(end.reason, EndReason::Error(_)), "{end:?}");
    // A state that never had its actions apart reads as it always did.
    let inline: Activeflow = serde_json::from_value(
        serde_json::to_value(new_af(&format!("[{}]", talk(1)), ReferenceType::Api)).expect("ser"),
    )
    .expect("de");
    assert!(!inline.main_actions_missing());
}

#[test]
fn empty_flow_finishes_at_once() {
    let spec = ActiveflowSpec::default();
    let mut af = Activeflow::new(spec, &Guards::default()).expect("af");
    assert!(matches!(af.run(t0()), Step::Ended(e) if e.reason == EndReason::Finished));
}

/// Every non-control action becomes a command of its type, its strings substituted.
#[test]
fn every_command_type_reaches_the_runtime_substituted() {
    let u = id(0x55);
    let samples: Vec<(&str, String)> = vec![
        ("fetch", r#"{"event_url":"http://h/${x}"}"#.into()),
        ("fetch_flow", format!(r#"{{"flow_id":"{u}"}}"#)),
        (
            "call",
            format!(r#"{{"destinations":[{{"type":"tel","target":"${{x}}"}}],"flow_id":"{u}"}}"#),
        ),
        (
            "connect",
            r#"{"destinations":[{"type":"tel","target":"${x}"}]}"#.into(),
        ),
        ("queue_join", format!(r#"{{"queue_id":"{u}"}}"#)),
        ("conference_join", format!(r#"{{"conference_id":"{u}"}}"#)),
        ("ai_talk", format!(r#"{{"assistance_id":"{u}"}}"#)),
        ("ai_task", format!(r#"{{"assistance_id":"{u}"}}"#)),
        ("ai_summary", r#"{"language":"${x}"}"#.into()),
        (
            "message_send",
            r#"{"destinations":[{"type":"tel","target":"+1"}],"text":"${x}"}"#.into(),
        ),
        (
            "email_send",
            r#"{"destinations":[{"type":"email","target":"a@b"}],"subject":"${x}"}"#.into(),
        ),
        ("webhook_send", r#"{"uri":"http://h","data":"${x}"}"#.into()),
        (
            "conversation_send",
            format!(r#"{{"conversation_id":"{u}","text":"${{x}}"}}"#),
        ),
        ("case_create", r#"{"name":"${x}"}"#.into()),
        ("transcribe_start", r#"{"language":"${x}"}"#.into()),
        ("transcribe_recording", r#"{"language":"${x}"}"#.into()),
        ("answer", "{}".into()),
        ("talk", r#"{"text":"${x}"}"#.into()),
        ("play", r#"{"stream_urls":["http://h/${x}.wav"]}"#.into()),
        ("beep", "{}".into()),
        ("digits_receive", r#"{"duration":10,"length":1}"#.into()),
        ("digits_send", r#"{"digits":"12","duration":100}"#.into()),
        ("sleep", r#"{"duration":10}"#.into()),
        ("echo", "{}".into()),
        ("stream_echo", "{}".into()),
        ("hangup", r#"{"reason":"busy"}"#.into()),
        ("recording_start", r#"{"format":"wav"}"#.into()),
        ("recording_stop", "{}".into()),
        (
            "external_media_start",
            r#"{"external_host":"${x}:4000"}"#.into(),
        ),
        ("external_media_stop", "{}".into()),
        ("amd", r#"{"machine_handle":"continue"}"#.into()),
        ("confbridge_join", format!(r#"{{"confbridge_id":"{u}"}}"#)),
        ("mute", "{}".into()),
        ("transcribe_stop", "{}".into()),
    ];
    let commands = ActionType::ALL.iter().filter(|t| !t.is_control()).count();
    assert_eq!(samples.len(), commands, "one sample per command type");
    for (ty, opt) in samples {
        let kind = ActionType::from_name(ty).expect("type");
        let rt = match kind.media() {
            crate::model::Media::NonRtc => ReferenceType::Api,
            _ => ReferenceType::Call,
        };
        let mut af = new_af(&format!(r#"[{{"type":"{ty}","option":{opt}}}]"#), rt);
        af.set_variable("x", "SUB").expect("set");
        let Step::Execute(c) = af.run(t0()) else {
            panic!("{ty}: expected a command")
        };
        assert_eq!(c.kind(), kind);
        let json = serde_json::to_string(&c).expect("ser");
        assert!(!json.contains("${x}"), "{ty}: not substituted: {json}");
        if opt.contains("${x}") {
            assert!(json.contains("SUB"), "{ty}: {json}");
        }
        let back: Command = serde_json::from_str(&json).expect("de");
        assert_eq!(back, c);
    }
}

#[test]
fn actions_without_ids_get_distinct_ids() {
    let nil_talk = || {
        let mut a = actions(r#"[{"type":"talk","option":{"text":"x"}}]"#).remove(0);
        a.id = Uuid::nil();
        a
    };
    let spec = ActiveflowSpec {
        id: id(1),
        actions: vec![nil_talk(), nil_talk()],
        ..ActiveflowSpec::default()
    };
    let mut af = Activeflow::new(spec, &Guards::default()).expect("af");
    let Step::Execute(first) = af.run(t0()) else {
        panic!()
    };
    af.push_actions(vec![nil_talk()], true).expect("push");
    let Step::Execute(pushed) = af.run(t0()) else {
        panic!()
    };
    af.complete(pushed.action_id, Outcome::Done, t0())
        .expect("complete");
    let Step::Execute(second) = af.run(t0()) else {
        panic!()
    };
    let ids = [first.action_id, pushed.action_id, second.action_id];
    assert!(ids.iter().all(|i| !i.is_nil()));
    assert_ne!(ids[0], ids[1]);
    assert_ne!(ids[0], ids[2]);
    assert_ne!(ids[1], ids[2]);
    assert_ne!(pushed.action_id, af.current_stack_id());
}

/// Drives a flow whose `fetch_flow`s are answered from `flows`; returns the ids of the
/// commands other than fetch_flow, and the end.
fn drive_fetching(af: &mut Activeflow, flows: &[(Uuid, Vec<Action>)]) -> (Vec<Uuid>, End) {
    let mut seen = Vec::new();
    loop {
        match af.run(t0()) {
            Step::Execute(c) => {
                let outcome = match &c.option {
                    CommandOption::FetchFlow(f) => {
                        let actions = flows
                            .iter()
                            .find(|(id, _)| *id == f.flow_id.uuid())
                            .map(|(_, a)| a.clone())
                            .expect("known flow");
                        Outcome::Actions(actions)
                    }
                    _ => {
                        seen.push(c.action_id);
                        Outcome::Done
                    }
                };
                af.complete(c.action_id, outcome, t0()).expect("complete");
            }
            Step::Blocked => panic!("unexpected block"),
            Step::Ended(e) => return (seen, e),
        }
    }
}

fn u(s: &str) -> Uuid {
    Uuid::parse_str(s).expect("uuid")
}

/// VoIPBIN's `Test_GetAction` "action exist in the other stack depth 1": a sub-flow pushed
/// by `fetch_flow` jumps back into the main stack; the sub-flow's stack is released.
#[test]
fn goto_into_the_parent_stack_one_level_up() {
    let main_talk = "9453b73e-d3b5-11ec-b636-0fcf55d52956";
    let sub_talk = "51e04796-d3b5-11ec-a41b-1fb38082327f";
    let sub_flow = "93def85e-d3b5-11ec-b6e5-6751b01de122";
    let json = format!(
        r#"[{{"id":"{main_talk}","type":"talk","option":{{"text":"main"}}}},
            {{"type":"condition_variable","option":{{"condition":"==","variable":"${{done}}","value_type":"string","value_string":"","false_target_id":"{end}"}}}},
            {{"type":"variable_set","option":{{"key":"done","value":"1"}}}},
            {{"type":"fetch_flow","option":{{"flow_id":"{sub_flow}"}}}},
            {{"type":"talk","option":{{"text":"never: the sub-flow jumped away"}}}},
            {{"id":"{end}","type":"talk","option":{{"text":"end"}}}}]"#,
        end = id(0xe)
    );
    // Validated alone, the sub-flow's target is not an error.
    let sub_text = format!(
        r#"[{{"id":"{sub_talk}","type":"talk","option":{{"text":"sub"}}}},
            {{"type":"goto","option":{{"target_id":"{main_talk}","loop_count":1}}}}]"#
    );
    let (sub, report) =
        crate::validate::validate_json(&sub_text, &crate::validate::ValidateOptions::default());
    assert!(report.is_ok(), "{:?}", report.errors);
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    let sub = sub.expect("sub-flow").actions;

    let mut af = new_af(&json, ReferenceType::Call);
    let mut jumped_back = false;
    let mut seen = Vec::new();
    loop {
        match af.run(t0()) {
            Step::Execute(c) if c.kind() == ActionType::FetchFlow => {
                af.complete(c.action_id, Outcome::Actions(sub.clone()), t0())
                    .expect("complete");
            }
            Step::Execute(c) => {
                if c.action_id == u(main_talk) && !seen.is_empty() {
                    // Back in the main stack; the sub-flow's stack is gone.
                    assert_eq!(af.current_stack_id(), ID_START);
                    assert_eq!(af.stacks.len(), 1);
                    jumped_back = true;
                }
                seen.push(c.action_id);
                af.complete(c.action_id, Outcome::Done, t0())
                    .expect("complete");
            }
            Step::Blocked => panic!(),
            Step::Ended(e) => {
                assert_eq!(e.reason, EndReason::Finished);
                break;
            }
        }
    }
    assert!(jumped_back);
    assert_eq!(seen, [u(main_talk), u(sub_talk), u(main_talk), id(0xe)]);
}

/// VoIPBIN's `Test_GetAction` "action exist in the other stack depth 2": from the fourth
/// stack, a goto lands two stacks up; the two stacks in between are released, and the flow
/// then returns from there as usual.
#[test]
fn goto_into_an_ancestor_stack_two_levels_up() {
    let flow_a = u("93def85e-d3b5-11ec-b6e5-6751b01de122");
    let flow_b = u("f725f016-d3b5-11ec-9897-eb58118fdc21");
    let flow_c = u("79d1a532-f446-470f-bdc6-45542750d9cd");
    let target = "127eb93f-3d03-4583-83c0-bd4a23c66f03";
    let main = format!(
        r#"[{{"id":"5edb555c-d3b6-11ec-8c3d-43092e3123e7","type":"talk","option":{{"text":"main"}}}},
            {{"id":"9453b73e-d3b5-11ec-b636-0fcf55d52956","type":"fetch_flow","option":{{"flow_id":"{flow_a}"}}}},
            {{"type":"talk","option":{{"text":"end"}},"id":"{end}"}}]"#,
        end = id(0xe)
    );
    let a = actions(&format!(
        r#"[{{"id":"51e04796-d3b5-11ec-a41b-1fb38082327f","type":"fetch_flow","option":{{"flow_id":"{flow_b}"}}}},
            {{"id":"{target}","type":"talk","option":{{"text":"in A"}}}}]"#
    ));
    let b = actions(&format!(
        r#"[{{"id":"fb79a806-d3b5-11ec-8418-bfbfa0a8638e","type":"fetch_flow","option":{{"flow_id":"{flow_c}"}}}},
            {{"type":"talk","option":{{"text":"never: B is released"}}}}]"#
    ));
    let c = actions(&format!(
        r#"[{{"id":"2549adfe-e7c5-4c10-ba5b-fb29bbeac441","type":"goto","option":{{"target_id":"{target}","loop_count":1}}}},
            {{"type":"talk","option":{{"text":"never: C is released"}}}}]"#
    ));
    let mut af = new_af(&main, ReferenceType::Call);
    let flows = [(flow_a, a), (flow_b, b), (flow_c, c)];
    // Step until the target runs, to look at the stacks there.
    let mut seen = Vec::new();
    while let Step::Execute(cmd) = af.run(t0()) {
        let outcome = match &cmd.option {
            CommandOption::FetchFlow(f) => Outcome::Actions(
                flows
                    .iter()
                    .find(|(id, _)| *id == f.flow_id.uuid())
                    .map(|(_, a)| a.clone())
                    .expect("known"),
            ),
            _ => {
                if cmd.action_id == u(target) {
                    assert_eq!(af.stacks.len(), 2, "main and A only");
                    assert_ne!(af.current_stack_id(), ID_START);
                }
                seen.push(cmd.action_id);
                Outcome::Done
            }
        };
        af.complete(cmd.action_id, outcome, t0()).expect("complete");
    }
    assert_eq!(
        seen,
        [
            u("5edb555c-d3b6-11ec-8c3d-43092e3123e7"),
            u(target),
            id(0xe)
        ]
    );
    assert_eq!(af.end().map(|e| &e.reason), Some(&EndReason::Finished));

    // Three levels up, into the main stack, works the same way.
    let c3 = actions(
        r#"[{"type":"goto","option":{"target_id":"5edb555c-d3b6-11ec-8c3d-43092e3123e7","loop_count":1}}]"#,
    );
    let a = flows[0].1.clone();
    let b = flows[1].1.clone();
    let mut af = new_af(&main, ReferenceType::Call);
    let (seen, end) = drive_fetching(&mut af, &[(flow_a, a), (flow_b, b), (flow_c, c3)]);
    // main talk, (A, B, C pushed), back to the main talk, then fetch again: the goto copy in
    // the new C stack has its own loop_count, so the flow keeps looping until a guard.
    assert_eq!(seen[..2], [u("5edb555c-d3b6-11ec-8c3d-43092e3123e7"); 2]);
    assert!(matches!(end.reason, EndReason::Guard(_)), "{end:?}");
}

/// Missing in every stack: a fatal error naming the target when the jump happens, as
/// VoIPBIN's GetAction fails once it runs out of return stacks.
#[test]
fn goto_target_missing_in_every_stack_is_a_run_time_error() {
    let flow_a = id(0xa);
    let main = format!(
        r#"[{},{{"type":"fetch_flow","option":{{"flow_id":"{flow_a}"}}}},{}]"#,
        talk(1),
        talk(2)
    );
    let a = actions(&format!(
        r#"[{},{{"type":"goto","option":{{"target_id":"{}","loop_count":1}}}}]"#,
        talk(3),
        id(0x404)
    ));
    let mut af = new_af(&main, ReferenceType::Call);
    let (seen, end) = drive_fetching(&mut af, &[(flow_a, a)]);
    assert_eq!(seen, [id(1), id(3)]);
    assert!(
        matches!(&end.reason, EndReason::Error(e) if e.contains(&id(0x404).to_string())),
        "{end:?}"
    );
}

#[test]
fn repeated_ids_get_fresh_ones_and_jumps_go_to_the_first() {
    // Both talks have id(1); the goto jumps to the first. The second runs where it stands.
    let json = format!(
        r#"[{},{},{{"type":"goto","option":{{"target_id":"{}","loop_count":1}}}}]"#,
        talk(1),
        talk(1),
        id(1)
    );
    let mut af = new_af(&json, ReferenceType::Call);
    let ids = cmd_ids(&mut af);
    assert_eq!(ids.len(), 4);
    assert_eq!(ids[0], id(1));
    assert_ne!(ids[1], id(1), "the repeat got a fresh id");
    assert_eq!(ids[2], id(1), "the jump went to the first");
    assert_eq!(ids[3], ids[1]);
    // Deterministic: the same flow gets the same ids.
    let mut again = new_af(&json, ReferenceType::Call);
    assert_eq!(cmd_ids(&mut again), ids);
}

#[test]
fn unknown_hangup_reasons_are_normal_clearing_for_the_runtime() {
    for (given, handed) in [("angry", "normal"), ("", "normal"), ("busy", "busy")] {
        let mut af = new_af(
            &format!(r#"[{{"type":"hangup","option":{{"reason":"{given}"}}}}]"#),
            ReferenceType::Call,
        );
        let Step::Execute(c) = af.run(t0()) else {
            panic!()
        };
        let CommandOption::Hangup(h) = c.option else {
            panic!()
        };
        assert_eq!(h.reason, handed, "{given}");
    }
}

#[test]
fn reference_data_belongs_to_calls_and_conversations() {
    let data = serde_json::json!({"id": "c", "status": "ringing"});
    let json = r#"[{"type":"variable_set","option":{"key":"d","value":"${voipbin.flow.reference_data}"}}]"#;
    let mut af = new_af(json, ReferenceType::Call);
    af.set_reference_data(&data).expect("set");
    drive(&mut af);
    assert_eq!(af.variable("d"), Some(r#"{"id":"c","status":"ringing"}"#));
    // API flows have none; inherited reference data does not follow a flow onto another
    // kind of reference (a recording's on-end flow runs without one).
    let mut af = new_af(json, ReferenceType::Api);
    af.set_reference_data(&data).expect("ignored");
    drive(&mut af);
    assert_eq!(af.variable("d"), Some(""));
    let spec = ActiveflowSpec {
        id: id(0xfff),
        reference_type: ReferenceType::None,
        actions: actions(json),
        inherited_variables: [(vars::REFERENCE_DATA.to_owned(), "{}".to_owned())].into(),
        ..ActiveflowSpec::default()
    };
    let af = Activeflow::new(spec, &Guards::default()).expect("af");
    assert_eq!(af.variable(vars::REFERENCE_DATA), None);
}
