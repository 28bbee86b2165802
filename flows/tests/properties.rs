//! Property tests: termination within the guards, substitution on arbitrary text,
//! pause/serialize/resume equivalence, and lossless parse/serialize round trips.

use chrono::{DateTime, Duration, TimeZone, Utc};
use flowgate_flows::dryrun::{DryRunConfig, InputEvent, Target, dry_run, no_fetch};
use flowgate_flows::engine::{Activeflow, ActiveflowSpec, Guards, Outcome, Step};
use flowgate_flows::limits::Limits;
use flowgate_flows::model::{ActionType, Flow, ReferenceType, parse_flow};
use flowgate_flows::validate::{ValidateOptions, validate};
use flowgate_flows::vars::{Variables, substitute};
use proptest::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

fn aid(i: usize) -> String {
    Uuid::from_u128(0x1000 + u128::try_from(i).unwrap_or(0)).to_string()
}

/// A generated action; targets are indices into the flow (taken modulo its length).
#[derive(Debug, Clone)]
enum Gen {
    Talk(bool),
    Receive(i64, String),
    Branch(Vec<(String, usize)>, Option<usize>),
    Goto(usize, i64),
    /// A goto to an id in no stack: a warning when validated, an error only if it jumps.
    GotoOutside(i64),
    CondVar(String, String, usize),
    CondDatetime(i64, usize),
    CondDigits(i64, usize),
    Set(String, String),
    Stop,
    Hangup,
    Webhook,
    Message,
    Sleep(i64),
    Block,
    Answer,
}

fn gen_action() -> impl Strategy<Value = Gen> {
    let var = prop::sample::select(vec!["a", "b", "voipbin.call.digits"]);
    let text = prop::sample::select(vec!["1", "2", "x", "${a}", "${b}1", ""]);
    prop_oneof![
        any::<bool>().prop_map(Gen::Talk),
        (0i64..3, prop::sample::select(vec!["", "#", "*#"]))
            .prop_map(|(l, k)| Gen::Receive(l, k.into())),
        (
            prop::collection::vec((text.clone().prop_map(String::from), any::<usize>()), 0..3),
            prop::option::of(any::<usize>())
        )
            .prop_map(|(t, d)| Gen::Branch(t, d)),
        (any::<usize>(), -1i64..4).prop_map(|(t, n)| Gen::Goto(t, n)),
        (-1i64..2).prop_map(Gen::GotoOutside),
        (
            var.clone().prop_map(String::from),
            text.clone().prop_map(String::from),
            any::<usize>()
        )
            .prop_map(|(v, s, t)| Gen::CondVar(v, s, t)),
        (-1i64..24, any::<usize>()).prop_map(|(h, t)| Gen::CondDatetime(h, t)),
        (0i64..3, any::<usize>()).prop_map(|(l, t)| Gen::CondDigits(l, t)),
        (var.prop_map(String::from), text.prop_map(String::from)).prop_map(|(k, v)| Gen::Set(k, v)),
        Just(Gen::Stop),
        Just(Gen::Hangup),
        Just(Gen::Webhook),
        Just(Gen::Message),
        (0i64..5000).prop_map(Gen::Sleep),
        Just(Gen::Block),
        Just(Gen::Answer),
    ]
}

fn render(actions: &[Gen]) -> String {
    let n = actions.len().max(1);
    let t = |i: &usize| aid(i % n);
    let items: Vec<Value> = actions
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let (ty, opt) = match g {
                Gen::Talk(next) => ("talk", json!({"text":"hi ${a}","digits_handle": if *next {"next"} else {""}})),
                Gen::Receive(l, k) => ("digits_receive", json!({"duration":1000,"length":l,"key":k})),
                Gen::Branch(targets, default) => {
                    let mut m = serde_json::Map::new();
                    for (k, v) in targets {
                        m.insert(k.clone(), json!(t(v)));
                    }
                    let mut o = json!({"variable":"a","target_ids":m});
                    if let Some(d) = default {
                        o["default_target_id"] = json!(t(d));
                    }
                    if targets.is_empty() && default.is_none() {
                        o["default_target_id"] = json!(aid(0));
                    }
                    ("branch", o)
                }
                Gen::Goto(target, n) => ("goto", json!({"target_id":t(target),"loop_count":n})),
                Gen::GotoOutside(n) => ("goto", json!({"target_id":aid(5000),"loop_count":n})),
                Gen::CondVar(v, s, target) => (
                    "condition_variable",
                    json!({"condition":"==","variable":format!("${{{v}}}"),"value_type":"string","value_string":s,"false_target_id":t(target)}),
                ),
                Gen::CondDatetime(h, target) => (
                    "condition_datetime",
                    json!({"condition":">=","hour":h,"false_target_id":t(target)}),
                ),
                Gen::CondDigits(l, target) => (
                    "condition_call_digits",
                    json!({"length":l,"key":"#","false_target_id":t(target)}),
                ),
                Gen::Set(k, v) => ("variable_set", json!({"key":k,"value":v})),
                Gen::Stop => ("stop", json!({})),
                Gen::Hangup => ("hangup", json!({})),
                Gen::Webhook => ("webhook_send", json!({"uri":"http://h/${a}","method":"POST","data":"${b}"})),
                Gen::Message => (
                    "message_send",
                    json!({"destinations":[{"type":"tel","target":"+1${a}"}],"text":"t"}),
                ),
                Gen::Sleep(d) => ("sleep", json!({"duration":d})),
                Gen::Block => ("block", json!({})),
                Gen::Answer => ("answer", json!({})),
            };
            json!({"id": aid(i), "type": ty, "option": opt})
        })
        .collect();
    json!({"name":"gen","detail":"","actions":items}).to_string()
}

fn reference() -> impl Strategy<Value = ReferenceType> {
    prop::sample::select(vec![
        ReferenceType::Call,
        ReferenceType::Api,
        ReferenceType::Conversation,
        ReferenceType::None,
    ])
}

fn inputs() -> impl Strategy<Value = Vec<InputEvent>> {
    let target = prop_oneof![
        (0usize..20).prop_map(Target::Index),
        (0usize..20).prop_map(|i| Target::Id(Uuid::from_u128(0x1000 + i as u128))),
    ];
    prop::collection::vec(
        prop_oneof![
            prop::sample::select(vec!["1", "2", "#", "12#", "9"])
                .prop_map(|d| InputEvent::Dtmf(d.into())),
            prop::sample::select(vec!["1", "5"]).prop_map(|d| InputEvent::Press(d.into())),
            Just(InputEvent::Timeout),
            Just(InputEvent::Hangup),
            Just(InputEvent::Fail("boom".into())),
            target.clone().prop_map(InputEvent::At),
            (target.clone(), any::<bool>()).prop_map(|(target, now)| InputEvent::Forward { target, now }),
            prop::option::of(target).prop_map(InputEvent::Continue),
            Just(InputEvent::Stop("script".into())),
            any::<bool>().prop_map(|now| {
                let push = if now { "push-now" } else { "push" };
                format!(r#"{push}:[{{"type":"variable_set","option":{{"key":"a","value":"p"}}}},{{"type":"talk","option":{{"text":"x"}}}}]"#)
                    .parse()
                    .unwrap_or(InputEvent::Timeout)
            }),
        ],
        0..8,
    )
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 3, 8, 0, 0)
        .single()
        .unwrap_or_default()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Every valid generated flow ends within the guards, whatever the channel does.
    #[test]
    fn valid_flows_terminate_within_guards(
        actions in prop::collection::vec(gen_action(), 1..16),
        rt in reference(),
        inputs in inputs(),
        max_executions in 50u64..400,
    ) {
        let text = render(&actions);
        let flow = parse_flow(&text, &Limits::default()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let report = validate(&flow, &ValidateOptions::default());
        prop_assume!(report.is_ok());
        let cfg = DryRunConfig {
            reference_type: rt,
            inputs,
            now: start(),
            guards: Guards { max_executions, ..Guards::default() },
            ..DryRunConfig::default()
        };
        let r = dry_run(&flow, &cfg, &mut no_fetch).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(r.trace.len() as u64 <= max_executions);
        prop_assert!(!r.end.is_empty());
        // Every interrupt the script applied is accounted for exactly once.
        let applied = r.interrupts.len();
        let interrupts_in_script = cfg.inputs.iter().filter(|e| e.is_interrupt()).count();
        let unused = r.unused_inputs.iter().filter(|e| e.is_interrupt()).count();
        prop_assert_eq!(applied + unused, interrupts_in_script);
    }

    /// Substitution never panics and matches a naive reading of VoIPBIN's regex.
    #[test]
    fn substitution_matches_reference(
        template in "(\\$|\\{|\\}|\\n|a|b|é|x){0,40}",
        free in ".{0,60}",
        a in ".{0,8}",
    ) {
        let mut vars = Variables::new();
        vars.set("a", &a, &Limits::default()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        vars.set("b", "${a}", &Limits::default()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for t in [&template, &free] {
            let got = substitute(t, &vars);
            prop_assert_eq!(got.as_ref(), naive(t, &vars));
        }
    }

    /// Pausing at any point, serializing, deserializing and resuming behaves exactly like
    /// running straight.
    #[test]
    fn pause_serialize_resume_is_transparent(
        actions in prop::collection::vec(gen_action(), 1..12),
        rt in reference(),
        script in prop::collection::vec(0u8..6, 0..30),
        pause_every in 1usize..4,
    ) {
        let text = render(&actions);
        let flow = parse_flow(&text, &Limits::default()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assume!(validate(&flow, &ValidateOptions::default()).is_ok());
        let straight = drive(&flow, rt, &script, None)?;
        let paused = drive(&flow, rt, &script, Some(pause_every))?;
        prop_assert_eq!(straight, paused);
    }

    /// A VoIPBIN export with arbitrary extra fields re-serializes to the same JSON.
    #[test]
    fn parse_serialize_round_trip(
        picks in prop::collection::vec((0usize..SAMPLES.len(), any::<bool>(), extra()), 0..8),
        flow_extra in extra(),
        with_oc in any::<bool>(),
    ) {
        let actions: Vec<Value> = picks
            .iter()
            .enumerate()
            .map(|(i, (s, next, x))| {
                let (ty, opt) = SAMPLES[*s];
                let mut a = json!({"id": aid(i), "type": ty});
                if let Some(o) = opt {
                    let mut o: Value = serde_json::from_str(o).unwrap_or(Value::Null);
                    if let (Some(obj), Some(ex)) = (o.as_object_mut(), x.as_object()) {
                        for (k, v) in ex { obj.insert(format!("opt_{k}"), v.clone()); }
                    }
                    a["option"] = o;
                }
                if *next { a["next_id"] = json!(aid(0)); }
                for (k, v) in x.as_object().into_iter().flatten() { a[format!("x_{k}")] = v.clone(); }
                a
            })
            .collect();
        let mut doc = json!({"id": aid(999), "name": "n", "detail": "d", "actions": actions});
        if with_oc { doc["on_complete_flow_id"] = json!(aid(998)); }
        for (k, v) in flow_extra.as_object().into_iter().flatten() { doc[format!("f_{k}")] = v.clone(); }
        let flow: Flow = serde_json::from_value(doc.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = serde_json::to_value(&flow).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, doc);
    }
}

/// VoIPBIN's `\$\{(.*?)\}` without regex, quadratic and obvious.
fn naive(s: &str, vars: &Variables) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '$' && chars.get(i + 1) == Some(&'{') {
            let close = chars[i + 2..].iter().position(|&c| c == '}' || c == '\n');
            if let Some(p) = close
                && chars[i + 2 + p] == '}'
            {
                let name: String = chars[i + 2..i + 2 + p].iter().collect();
                out.push_str(vars.get(&name).unwrap_or(""));
                i += p + 3;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Drives an activeflow with a script of outcomes; with `pause`, the state goes through
/// JSON every `pause` calls. Returns everything observable.
fn drive(
    flow: &Flow,
    rt: ReferenceType,
    script: &[u8],
    pause: Option<usize>,
) -> Result<(Vec<String>, String, Value), TestCaseError> {
    let spec = ActiveflowSpec::new(Uuid::from_u128(7), flow, rt, Uuid::from_u128(8));
    // A modest lifetime guard: generated loops through commands run into it quickly.
    let guards = Guards {
        max_executions: 300,
        ..Guards::default()
    };
    let mut af = Activeflow::new(spec, &guards).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut log = Vec::new();
    let mut now = start();
    let mut calls = 0usize;
    let mut step = 0usize;
    let roundtrip = |af: &mut Activeflow, calls: &mut usize| -> Result<(), TestCaseError> {
        *calls += 1;
        if pause.is_some_and(|p| (*calls).is_multiple_of(p)) {
            let s = serde_json::to_string(&*af).map_err(|e| TestCaseError::fail(e.to_string()))?;
            *af = serde_json::from_str(&s).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        Ok(())
    };
    loop {
        roundtrip(&mut af, &mut calls)?;
        let s = af.run(now);
        now += Duration::seconds(1);
        match s {
            Step::Ended(e) => {
                log.push(format!("end {}", e.reason));
                break;
            }
            Step::Blocked => {
                let id = af.current_action_id();
                log.push("blocked".into());
                roundtrip(&mut af, &mut calls)?;
                if script.get(step).is_some_and(|c| c % 2 == 0) {
                    af.continue_block(id)
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                } else {
                    af.stop(flowgate_flows::engine::EndReason::Stopped("script".into()));
                }
                step += 1;
            }
            Step::Execute(c) => {
                log.push(format!("cmd {} {}", c.kind(), c.action_id));
                roundtrip(&mut af, &mut calls)?;
                let choice = script.get(step).copied().unwrap_or(0);
                step += 1;
                let outcome = match choice {
                    0 => Some(Outcome::Done),
                    1 => Some(Outcome::Timeout),
                    2 => Some(Outcome::Failed("x".into())),
                    3 if c.kind() == ActionType::Talk => Some(Outcome::Hangup),
                    _ => {
                        let d = if choice == 4 { '1' } else { '#' };
                        let effect = af
                            .dtmf(d, now)
                            .map_err(|e| TestCaseError::fail(e.to_string()))?;
                        log.push(format!("dtmf {effect:?}"));
                        (!effect.ends_command()).then_some(Outcome::Done)
                    }
                };
                if let Some(o) = outcome {
                    af.complete(c.action_id, o, now)
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                }
            }
        }
    }
    let trace = serde_json::to_value(af.executed().collect::<Vec<_>>()).unwrap_or(Value::Null);
    let vars = serde_json::to_string(af.variables()).unwrap_or_default();
    Ok((log, vars, trace))
}

/// Random extra JSON fields (what VoIPBIN exports and Flowgate must keep).
fn extra() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        "[a-z0-9 ]{0,8}".prop_map(Value::String),
    ];
    let tree = leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    prop::collection::btree_map("[a-z_]{1,6}", tree, 0..3)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

/// One valid option per action type (a VoIPBIN-like export).
const SAMPLES: &[(&str, Option<&str>)] = &[
    ("answer", None),
    (
        "talk",
        Some(r##"{"text":"hi","language":"en-US","digits_handle":"next","async":false}"##),
    ),
    (
        "digits_receive",
        Some(r##"{"duration":5000,"length":1,"key":"#"}"##),
    ),
    (
        "branch",
        Some(
            r##"{"variable":"voipbin.call.digits","target_ids":{"1":"00000000-0000-0000-0000-000000001000"}}"##,
        ),
    ),
    (
        "goto",
        Some(r##"{"target_id":"00000000-0000-0000-0000-000000001000","loop_count":2}"##),
    ),
    (
        "condition_datetime",
        Some(
            r##"{"condition":"<=","hour":9,"minute":-1,"weekdays":[1,2],"false_target_id":"00000000-0000-0000-0000-000000001000"}"##,
        ),
    ),
    (
        "condition_variable",
        Some(
            r##"{"condition":"==","variable":"${x}","value_type":"number","value_number":1.5,"false_target_id":"00000000-0000-0000-0000-000000001000"}"##,
        ),
    ),
    (
        "message_send",
        Some(
            r##"{"source":{"type":"tel","target":"+1"},"destinations":[{"type":"tel","target":"+2","target_name":"","name":"","detail":""}],"text":"t"}"##,
        ),
    ),
    (
        "webhook_send",
        Some(
            r##"{"sync":true,"uri":"https://x","method":"POST","data_type":"application/json","data":"{}"}"##,
        ),
    ),
    (
        "recording_start",
        Some(
            r##"{"format":"wav","end_of_silence":3,"end_of_key":"#","duration":60,"beep_start":true,"on_end_flow_id":"00000000-0000-0000-0000-000000000000"}"##,
        ),
    ),
    (
        "call",
        Some(
            r##"{"source":{"type":"tel","target":"+1"},"destinations":[{"type":"tel","target":"+2"}],"actions":[{"type":"talk","option":{"text":"x","n":[1,"2"]}}],"chained":false,"anonymous":""}"##,
        ),
    ),
    ("hangup", Some(r##"{"reason":"busy"}"##)),
    (
        "external_media_start",
        Some(r##"{"external_host":"h:1","data":{"any":[1,2]}}"##),
    ),
    ("stop", Some("{}")),
    ("variable_set", Some(r##"{"key":"k","value":"v"}"##)),
];
