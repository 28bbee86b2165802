//! Engine benchmarks: control actions per second, parse + validate throughput of a 1 MB
//! flow, activeflow state serialize + deserialize, substitution.
//!
//! Run with `cargo bench -p flowgate-flows`.

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use flowgate_flows::engine::{Activeflow, ActiveflowSpec, Guards, Step};
use flowgate_flows::limits::Limits;
use flowgate_flows::model::{ReferenceType, parse_flow};
use flowgate_flows::validate::{ValidateOptions, validate_json};
use flowgate_flows::vars::{Variables, substitute};
use serde_json::{Value, json};
use uuid::Uuid;

fn id(n: usize) -> String {
    Uuid::from_u128(0x5000 + u128::try_from(n).unwrap_or(0)).to_string()
}

/// 100 blocks of variable_set / condition_variable / variable_set, then a goto back to the
/// start `loops` times: a long, purely non-media flow.
fn control_flow(loops: i64) -> String {
    let mut actions = Vec::new();
    for b in 0..100 {
        actions.push(json!({"id": id(3 * b), "type":"variable_set",
            "option":{"key":"state","value":"step-${counter}"}}));
        actions.push(json!({"id": id(3 * b + 1), "type":"condition_variable",
            "option":{"condition":"!=","variable":"${state}","value_type":"string",
                      "value_string":"never","false_target_id": id(0)}}));
        actions.push(json!({"id": id(3 * b + 2), "type":"variable_set",
            "option":{"key":"counter","value":"plain"}}));
    }
    actions.push(json!({"type":"goto","option":{"target_id": id(0), "loop_count": loops}}));
    json!({"name":"bench","detail":"","actions":actions}).to_string()
}

fn bench_control(c: &mut Criterion) {
    let loops = 99;
    let flow = parse_flow(&control_flow(loops), &Limits::default()).expect("flow");
    let guards = Guards {
        max_iterations_per_run: u32::MAX,
        max_executions: u64::MAX,
        ..Guards::default()
    };
    let spec = ActiveflowSpec::new(Uuid::from_u128(1), &flow, ReferenceType::Api, Uuid::nil());
    let proto = Activeflow::new(spec, &guards).expect("activeflow");
    let now = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .expect("time");
    let mut probe = proto.clone();
    let Step::Ended(_) = probe.run(now) else {
        panic!("the bench flow must end")
    };
    let actions = probe.stats().executions;
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(actions));
    g.bench_function("control_actions", |b| {
        b.iter_batched(
            || proto.clone(),
            |mut af| black_box(af.run(now)),
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

/// A realistic mixed flow of about 1 MB.
fn big_flow() -> String {
    let mut actions: Vec<Value> = Vec::new();
    let mut i = 0;
    let mut size = 0;
    while size < 1_000_000 {
        let a = match i % 6 {
            0 => {
                json!({"id": id(i), "type":"talk","option":{"text":"Welcome to our service, please listen carefully as our menu options have changed ${name}","language":"en-US","digits_handle":"next"}})
            }
            1 => {
                json!({"id": id(i), "type":"digits_receive","option":{"duration":5000,"length":1,"key":"#"}})
            }
            2 => {
                json!({"id": id(i), "type":"branch","option":{"target_ids":{"1": id(i - 2),"2": id(i + 1)},"default_target_id": id(i - 2)}})
            }
            3 => {
                json!({"id": id(i), "type":"message_send","option":{"source":{"type":"tel","target":"+15550000001"},"destinations":[{"type":"tel","target":"${voipbin.call.source.target}"}],"text":"Thanks for calling"}})
            }
            4 => {
                json!({"id": id(i), "type":"webhook_send","option":{"sync":false,"uri":"https://crm.example/hook","method":"POST","data_type":"application/json","data":"{\"n\":\"${voipbin.call.source.target}\"}"}, "tm_execute": null})
            }
            _ => {
                json!({"id": id(i), "type":"goto","option":{"target_id": id(i - 5),"loop_count":2}})
            }
        };
        size += a.to_string().len() + 1;
        actions.push(a);
        i += 1;
    }
    json!({"name":"big","detail":"1 MB","actions":actions}).to_string()
}

fn bench_parse(c: &mut Criterion) {
    let text = big_flow();
    let opts = ValidateOptions::default();
    let (flow, report) = validate_json(&text, &opts);
    assert!(
        report.is_ok() && flow.is_some(),
        "{:?}",
        report.errors.first()
    );
    let mut g = c.benchmark_group("parse_validate");
    g.throughput(Throughput::Bytes(u64::try_from(text.len()).unwrap_or(0)));
    g.sample_size(20);
    g.bench_function("1MB_flow", |b| {
        b.iter(|| black_box(validate_json(black_box(&text), &opts)))
    });
    g.finish();
}

/// A typical IVR activeflow mid-call: 20 actions, 30 variables, a full trace window.
fn bench_state(c: &mut Criterion) {
    let now = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .expect("time");
    let af = flowgate_flows::fixtures::looped_ivr(now);
    let bytes = serde_json::to_vec(&af).expect("ser");
    let mut g = c.benchmark_group("state");
    g.throughput(Throughput::Bytes(u64::try_from(bytes.len()).unwrap_or(0)));
    g.bench_function("serialize_deserialize", |b| {
        b.iter(|| {
            let v = serde_json::to_vec(black_box(&af)).expect("ser");
            let back: Activeflow = serde_json::from_slice(&v).expect("de");
            black_box(back)
        });
    });
    g.finish();
}

fn bench_substitute(c: &mut Criterion) {
    let mut vars = Variables::new();
    vars.set("name", "Ann", &Limits::default()).expect("var");
    let plain = "Welcome to our service, please listen carefully as our menu options have changed";
    let templ = "Welcome ${name}, your order ${order} ships today";
    let mut g = c.benchmark_group("substitute");
    g.bench_function("no_placeholder", |b| {
        b.iter(|| black_box(substitute(black_box(plain), &vars)))
    });
    g.bench_function("two_placeholders", |b| {
        b.iter(|| black_box(substitute(black_box(templ), &vars)))
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_control,
    bench_parse,
    bench_state,
    bench_substitute
);
criterion_main!(benches);
