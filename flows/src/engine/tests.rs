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
