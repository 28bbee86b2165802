//! Gateway latencies, end to end on the simulated board (in-process daemon, real sled on
//! disk, real pty to the simulated modem):
//!
//! - **sms_to_first_command**: the simulated network delivers an SMS (`+CMTI`) → the driver
//!   reads it, the gateway stores and flushes it, acknowledges it, starts the message flow,
//!   and the flow's first command (`message_send`) is queued — measured to the commit of
//!   the reply's `message_created` event.
//! - **interrupt**: an API flow waits in `block`; `PUT /v1.0/activeflows/{id}/forward_action_id`
//!   with `forward_now` over HTTP → the flow has jumped and ended (its end committed).
//!
//! Criterion reports the mean; p50/p99 over every iteration are printed at the end.
//! Run: `cargo bench -p flowgate --bench gateway`

use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::Criterion;
use flowgate::config::Config;
use flowgate::daemon::Daemon;
use serde_json::{Value, json};

static SAMPLES: Mutex<Vec<(&'static str, Duration)>> = Mutex::new(Vec::new());

struct Rig {
    daemon: Daemon,
    base: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Rig {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::default();
        config.data.dir = dir.path().join("data");
        config.api.listen = "127.0.0.1:0".into();
        config.log.filter = "error".into();
        let daemon = Daemon::start(config).await.expect("daemon");
        let base = format!("http://{}/v1.0", daemon.addr());
        let rig = Self {
            daemon,
            base,
            http: reqwest::Client::new(),
            _dir: dir,
        };
        for modem in rig.daemon.runtime().modems().iter() {
            modem
                .wait_ready(Duration::from_secs(30))
                .await
                .expect("modem ready");
        }
        rig
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.daemon.token().as_str())
            .json(&body)
            .send()
            .await
            .expect("request");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.expect("json")
    }

    /// Waits until `check` holds, re-checking after every committed event.
    async fn wait_until(&self, check: impl Fn() -> bool) {
        let mut seq = self.daemon.runtime().db().store.watch_seq();
        while !check() {
            tokio::time::timeout(Duration::from_secs(30), seq.changed())
                .await
                .expect("event timeout")
                .expect("store");
        }
    }

    /// Waits for the first event after `after` that satisfies `pred`.
    async fn wait_event(&self, after: u64, pred: impl Fn(&flowgate::store::Event) -> bool) {
        let store = &self.daemon.runtime().db().store;
        let mut seq = store.watch_seq();
        let mut cursor = after;
        loop {
            let events = store.events_after(cursor, 1000).expect("events");
            if events.iter().any(&pred) {
                return;
            }
            cursor = events.last().map_or(cursor, |e| e.seq);
            tokio::time::timeout(Duration::from_secs(30), seq.changed())
                .await
                .expect("event timeout")
                .expect("store");
        }
    }
}

fn record(name: &'static str, d: Duration) {
    SAMPLES.lock().expect("samples").push((name, d));
}

fn sms_to_first_command(c: &mut Criterion, rt: &tokio::runtime::Runtime, rig: &Rig) {
    let bot: Value = serde_json::from_str(include_str!("../../flows/library/sms-keyword-bot.json"))
        .expect("flow");
    rt.block_on(async {
        let flow = rig.call(reqwest::Method::POST, "/flows", bot).await;
        rig.call(
            reqwest::Method::POST,
            "/numbers",
            json!({"number": "+15550001000", "message_flow_id": flow["id"]}),
        )
        .await;
    });
    let sim = rig.daemon.sims().remove(0);
    let mut n = 0u64;
    c.bench_function("sms_to_first_command", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    n += 1;
                    let from = format!("+1555400{:04}", n % 10_000);
                    let after = rig.daemon.runtime().db().store.last_seq();
                    let start = Instant::now();
                    sim.send_sms(&from, "HOURS").expect("inject");
                    rig.wait_event(after, |e| {
                        e.kind == "message_created"
                            && e.data["direction"] == "outbound"
                            && e.data["targets"][0]["destination"]["target"] == from.as_str()
                    })
                    .await;
                    let d = start.elapsed();
                    record("sms_to_first_command", d);
                    total += d;
                }
                total
            })
        });
    });
}

fn interrupt(c: &mut Criterion, rt: &tokio::runtime::Runtime, rig: &Rig) {
    let target = "00000000-0000-4000-8000-0000000000aa";
    c.bench_function("interrupt_forward_now", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let af = rig
                        .call(reqwest::Method::POST, "/activeflows", json!({"actions": [
                            {"type": "block"},
                            {"id": target, "type": "variable_set", "option": {"key": "jumped", "value": "yes"}}]}))
                        .await;
                    let id = af["id"].as_str().expect("id").to_owned();
                    // Wait until the runner sits in the block.
                    let store = &rig.daemon.runtime().db().store;
                    let uuid: uuid::Uuid = id.parse().expect("uuid");
                    rig.wait_until(|| {
                        rig.daemon.runtime().db().activeflows.get(uuid).ok().flatten().is_some_and(|a| a.engine.is_blocked())
                    })
                    .await;
                    let after = store.last_seq();
                    let start = Instant::now();
                    rig.call(reqwest::Method::PUT, &format!("/activeflows/{id}/forward_action_id"), json!({"forward_action_id": target, "forward_now": true})).await;
                    rig.wait_event(after, |e| e.resource_id.to_string() == id && e.data["status"] == "ended").await;
                    let d = start.elapsed();
                    record("interrupt_forward_now", d);
                    total += d;
                }
                total
            })
        });
    });
}

/// The `pct`-th percentile (0–100) of a sorted, non-empty slice (nearest rank).
fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    let idx = (sorted.len() - 1) * pct.min(100) / 100;
    sorted[idx]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let rig = rt.block_on(Rig::start());
    let mut c = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();
    sms_to_first_command(&mut c, &rt, &rig);
    interrupt(&mut c, &rt, &rig);
    c.final_summary();
    let samples = SAMPLES.lock().expect("samples").clone();
    for name in ["sms_to_first_command", "interrupt_forward_now"] {
        let mut ds: Vec<Duration> = samples
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, d)| *d)
            .collect();
        if ds.is_empty() {
            continue;
        }
        ds.sort();
        println!(
            "{name}: n={} p50={:.2} ms p99={:.2} ms max={:.2} ms",
            ds.len(),
            percentile(&ds, 50).as_secs_f64() * 1e3,
            percentile(&ds, 99).as_secs_f64() * 1e3,
            ds[ds.len() - 1].as_secs_f64() * 1e3
        );
    }
    rt.block_on(rig.daemon.shutdown()).expect("shutdown");
}
