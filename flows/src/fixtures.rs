//! Sample activeflows shared by benchmarks (here and in the firmware), so that figures
//! measured in different crates are about the same state. Not part of the flow language.

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::engine::{Activeflow, ActiveflowSpec, Guards, Outcome, Step};
use crate::limits::Limits;
use crate::model::{ReferenceType, parse_flow};

/// A typical IVR activeflow mid-call: 19 prompts and a `goto` looping back, 30 call
/// variables, and 150 steps run at `now` (a full trace window) — about 23 KB of JSON.
///
/// # Panics
/// Never for this fixed flow (the `expect`s guard the fixture itself).
#[must_use]
pub fn looped_ivr(now: DateTime<Utc>) -> Activeflow {
    let id = |n: u128| Uuid::from_u128(0x5000 + n).to_string();
    let mut actions = Vec::new();
    for n in 0..19 {
        actions.push(json!({"id": id(n), "type": "talk",
            "option": {"text": format!("prompt {n} for ${{name}}"), "language": "en-US"}}));
    }
    actions.push(json!({"type": "goto", "option": {"target_id": id(0), "loop_count": 100}}));
    let text = json!({"name": "ivr", "detail": "", "actions": actions}).to_string();
    let flow = parse_flow(&text, &Limits::default()).expect("fixture flow parses");
    let spec = ActiveflowSpec::new(
        Uuid::from_u128(1),
        &flow,
        ReferenceType::Call,
        Uuid::from_u128(2),
    );
    let mut engine = Activeflow::new(spec, &Guards::default()).expect("fixture activeflow");
    for v in 0..30 {
        engine
            .set_variable(&format!("voipbin.call.var{v}"), "+15551234567")
            .expect("fixture variable");
    }
    for _ in 0..150 {
        if let Step::Execute(cmd) = engine.run(now) {
            engine
                .complete(cmd.action_id, Outcome::Done, now)
                .expect("fixture step");
        }
    }
    engine
}
