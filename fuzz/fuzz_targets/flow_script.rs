//! Dry-run scripts from the fuzzer (`flowgate flow run --script`): every line goes through
//! the script parser (`push:FILE` reads the same input back as the "file"), and the events
//! that parse drive a fixed flow that waits in every way the script can interrupt — a
//! prompt, a digit collection, a fetch, a block and an on-complete follow-up. Nothing may
//! panic or hang.
//!
//! Run: `cargo +nightly fuzz run flow_script -- -max_total_time=60`
#![no_main]

use flowgate_flows::dryrun::{DryRunConfig, FetchRequest, dry_run, parse_input, script_lines};
use flowgate_flows::engine::Guards;
use flowgate_flows::limits::Limits;
use flowgate_flows::model::{Action, Flow, ReferenceType, parse_flow};

const CALL: &str = r##"{"id":"f0000000-0000-4000-8000-000000000001","name":"f","detail":"",
 "on_complete_flow_id":"f0000000-0000-4000-8000-000000000002","actions":[
 {"id":"00000000-0000-4000-8000-0000000000a1","type":"talk","option":{"text":"hi","digits_handle":"next"}},
 {"id":"00000000-0000-4000-8000-0000000000a2","type":"digits_receive","option":{"duration":1000,"length":2,"key":"#"}},
 {"id":"00000000-0000-4000-8000-0000000000a3","type":"branch","option":{"target_ids":{"1":"00000000-0000-4000-8000-0000000000a1"},"default_target_id":"00000000-0000-4000-8000-0000000000a4"}},
 {"id":"00000000-0000-4000-8000-0000000000a4","type":"fetch","option":{"event_url":"http://x/${voipbin.call.digits}"}},
 {"id":"00000000-0000-4000-8000-0000000000a5","type":"block"},
 {"id":"00000000-0000-4000-8000-0000000000a6","type":"recording_start","option":{"format":"wav"}},
 {"id":"00000000-0000-4000-8000-0000000000a7","type":"goto","option":{"target_id":"00000000-0000-4000-8000-0000000000a1","loop_count":2}}]}"##;

const FOLLOW_UP: &str = r#"{"id":"f0000000-0000-4000-8000-000000000002","name":"g","detail":"",
 "on_complete_flow_id":"f0000000-0000-4000-8000-000000000002","actions":[
 {"type":"block"},{"type":"talk","option":{"text":"${voipbin.flow.reference_data}"}}]}"#;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut load = |_: &str| -> Result<String, String> { Ok(text.to_owned()) };
    let inputs: Vec<_> = script_lines(text)
        .into_iter()
        .filter_map(|(_, line)| parse_input(line, &mut load).ok())
        .collect();
    let (Ok(flow), Ok(follow_up)) = (
        parse_flow(CALL, &Limits::default()),
        parse_flow(FOLLOW_UP, &Limits::default()),
    ) else {
        return;
    };
    let flows: Vec<Flow> = vec![follow_up];
    let reference = match data.first().map(|b| b % 3) {
        Some(0) => ReferenceType::Call,
        Some(1) => ReferenceType::Conversation,
        _ => ReferenceType::Api,
    };
    let cfg = DryRunConfig {
        reference_type: reference,
        inputs,
        flows,
        guards: Guards {
            max_executions: 2_000,
            ..Guards::default()
        },
        ..DryRunConfig::default()
    };
    // The fetch reply is the input itself, when it is an action list.
    let mut fetch = |_: &FetchRequest| -> Result<Vec<Action>, String> {
        flowgate_flows::dryrun::actions_of(text)
    };
    let _ = dry_run(&flow, &cfg, &mut fetch);
});
