//! Flow documents from the fuzzer: parse, validate and, when valid, dry-run them against a
//! scripted channel derived from the same input. Nothing may panic or hang (the engine
//! guards bound every run).
//!
//! Input layout: byte 0 picks the reference type, byte 1 and 2 seed the scripted channel,
//! the rest is the flow JSON.
//!
//! Run: `cargo +nightly fuzz run flow_parse_validate_run -- -max_total_time=60`
//! (seed corpus: `flows/library/*.json` prefixed with three bytes).
#![no_main]

use flowgate_flows::dryrun::{DryRunConfig, FetchRequest, InputEvent, dry_run};
use flowgate_flows::engine::Guards;
use flowgate_flows::limits::Limits;
use flowgate_flows::model::{Action, ReferenceType, parse_actions};
use flowgate_flows::validate::{ValidateOptions, validate_json};
use flowgate_flows::vars::{Variables, substitute};

const REFERENCES: [ReferenceType; 5] = [
    ReferenceType::Call,
    ReferenceType::Api,
    ReferenceType::Conversation,
    ReferenceType::None,
    ReferenceType::Message,
];

fn inputs(a: u8, b: u8) -> Vec<InputEvent> {
    let mut out = Vec::new();
    for bits in [a, b, a.rotate_left(3), b.rotate_left(5)] {
        out.push(match bits % 6 {
            0 => InputEvent::Dtmf("1".into()),
            1 => InputEvent::Dtmf("12#".into()),
            2 => InputEvent::Press("2".into()),
            3 => InputEvent::Timeout,
            4 => InputEvent::Hangup,
            _ => InputEvent::Fail("fuzz".into()),
        });
    }
    out
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let [rt, a, b, rest @ ..] = data else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let limits = Limits {
        max_flow_bytes: 256 * 1024,
        max_actions: 500,
        ..Limits::default()
    };
    let opts = ValidateOptions {
        limits: limits.clone(),
        reference_type: REFERENCES.get(usize::from(*rt) % REFERENCES.len()).copied(),
    };
    // Substitution on arbitrary text, with a variable whose value is itself a template.
    let mut vars = Variables::new();
    let _ = vars.set("a", "${a}", &limits);
    let _ = substitute(text, &vars);
    // A fetch reply that is this same text.
    let reply = parse_actions(text, &limits);
    let (flow, _report) = validate_json(text, &opts);
    let Some(flow) = flow else { return };
    let cfg = DryRunConfig {
        reference_type: opts.reference_type.unwrap_or_default(),
        inputs: inputs(*a, *b),
        guards: Guards {
            max_executions: 2_000,
            limits,
            ..Guards::default()
        },
        ..DryRunConfig::default()
    };
    let mut fetch = |_: &FetchRequest| -> Result<Vec<Action>, String> {
        reply.clone().map_err(|e| e.to_string())
    };
    let _ = dry_run(&flow, &cfg, &mut fetch);
});
