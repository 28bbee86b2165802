//! API-triggered activeflows per second, end to end over HTTP with persistence.
//!
//! The real router is served on 127.0.0.1 over a sled database on disk; `CLIENTS` concurrent
//! HTTP/1.1 keep-alive connections each `POST /v1.0/activeflows {flow_id}` for a short
//! non-media flow (three `variable_set` and a `talk` that API flows skip). A create answers
//! after the activeflow is stored and flushed; an iteration ends when every activeflow it
//! started has run to its end (its steps persisted too). Throughput is reported in
//! activeflows per second.
//!
//! The clients are hyper's bare HTTP/1 connections in this process: they share the
//! machine's two cores with the server, so they are kept as lean as a load generator
//! (with reqwest's pooled client the same server measured about a quarter fewer per second).
//!
//! `activeflows_runtime_only` starts the same activeflows on the runtime without HTTP: what the
//! HTTP layer (and the in-process clients) cost.
//!
//! Run: `cargo bench -p flowgate --bench api_activeflows`

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowgate::api::auth::ApiToken;
use flowgate::api::{ApiState, serve};
use flowgate::config::Config;
use flowgate::metrics::Metrics;
use flowgate::runtime::{FlowSource, StartRequest};
use flowgate::runtime::{Modems, Runtime, RuntimeOptions};
use flowgate::store::{Db, Store, StoreOptions};
use flowgate_flows::model::ReferenceType;
use serde_json::json;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "bench-token-0123456789abcdef";
/// Concurrent HTTP clients. Override with `FLOWGATE_BENCH_CLIENTS`.
const CLIENTS: u64 = 32;

const STUCK: &str = "activeflow creates stopped making progress: the store stalled (released sled \
    0.34.7 could deadlock here; the patched copy in vendor/sled should not) or flushes no longer \
    go through the store's one flush thread";

fn clients() -> u64 {
    std::env::var("FLOWGATE_BENCH_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(CLIENTS)
}

struct Rig {
    addr: SocketAddr,
    flow_id: String,
    runtime: Runtime,
    clients: usize,
    cancel: CancellationToken,
    _dir: tempfile::TempDir,
}

async fn rig() -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::default();
    config.data.dir = dir.path().to_owned();
    let store = Store::open(dir.path(), &StoreOptions::default()).expect("store");
    let db = Db::new(store).expect("db");
    let cancel = CancellationToken::new();
    let runtime = Runtime::new(
        db,
        Modems::default(),
        RuntimeOptions::default(),
        Arc::new(Metrics::default()),
        cancel.child_token(),
    );
    let state = ApiState::new(runtime.clone(), ApiToken::new(TOKEN), config, Vec::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server_cancel = cancel.child_token();
    tokio::spawn(async move {
        let _ = serve(listener, state, server_cancel).await;
    });
    let flow = json!({"name": "bench", "actions": [
        {"type": "variable_set", "option": {"key": "a", "value": "1"}},
        {"type": "variable_set", "option": {"key": "b", "value": "${a}2"}},
        {"type": "talk", "option": {"text": "skipped on API flows"}},
        {"type": "variable_set", "option": {"key": "c", "value": "${b}3"}},
    ]});
    let mut client = connect(addr).await;
    let created = post(&mut client, "/v1.0/flows", flow.to_string()).await;
    let created: serde_json::Value = serde_json::from_slice(&created).expect("flow json");
    let flow_id = created["id"].as_str().expect("flow id").to_owned();
    Rig {
        addr,
        flow_id,
        runtime,
        clients: usize::try_from(clients()).unwrap_or(1),
        cancel,
        _dir: dir,
    }
}

/// One keep-alive HTTP/1.1 connection to the server.
async fn connect(addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    sender
}

/// `POST path` with a JSON body; panics unless the answer is a success. Returns the body.
async fn post(client: &mut SendRequest<Full<Bytes>>, path: &str, body: impl Into<Bytes>) -> Bytes {
    client.ready().await.expect("connection ready");
    let request = hyper::Request::post(path)
        .header("host", "127.0.0.1")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(Full::new(body.into()))
        .expect("request");
    let response = client.send_request(request).await.expect("response");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert!(status.is_success(), "status {status}: {body:?}");
    body
}

/// Starts `n` activeflows over `CLIENTS` connections and waits until all have ended.
async fn run(rig: &Rig, n: u64) -> Duration {
    let count = u64::try_from(rig.clients).unwrap_or(1);
    let mut connections = Vec::new();
    for _ in 0..count {
        connections.push(connect(rig.addr).await);
    }
    let body = Bytes::from(json!({"flow_id": rig.flow_id}).to_string());
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, mut client) in (0..count).zip(connections) {
        let share = n / count + u64::from(i < n % count);
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..share {
                post(&mut client, "/v1.0/activeflows", body.clone()).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("client");
    }
    // Every activeflow created has run to its end (all steps persisted).
    while rig.runtime.running() > 0 {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    start.elapsed()
}

/// The same activeflows started on the runtime directly (no HTTP): what the HTTP layer costs.
async fn run_direct(rig: &Rig, n: u64) -> Duration {
    let flow_id: uuid::Uuid = rig.flow_id.parse().expect("flow id");
    let start = Instant::now();
    let count = u64::try_from(rig.clients).unwrap_or(1);
    let mut tasks = Vec::new();
    for i in 0..count {
        let share = n / count + u64::from(i < n % count);
        let runtime = rig.runtime.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..share {
                let request =
                    StartRequest::new(FlowSource::Stored(flow_id), ReferenceType::Api, None);
                runtime.start(request).await.expect("start");
            }
        }));
    }
    for task in tasks {
        task.await.expect("starter");
    }
    while rig.runtime.running() > 0 {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let rig = tokio.block_on(rig());
    let mut group = c.benchmark_group("api");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("activeflows_e2e", |b| {
        b.iter_custom(|iters| {
            // A stuck store must fail the run, not hang it (see STUCK).
            let limit = Duration::from_secs(60) + Duration::from_millis(iters.saturating_mul(2));
            tokio.block_on(async {
                tokio::time::timeout(limit, run(&rig, iters))
                    .await
                    .expect(STUCK)
            })
        })
    });
    group.bench_function("activeflows_runtime_only", |b| {
        b.iter_custom(|iters| {
            let limit = Duration::from_secs(60) + Duration::from_millis(iters.saturating_mul(2));
            tokio.block_on(async {
                tokio::time::timeout(limit, run_direct(&rig, iters))
                    .await
                    .expect(STUCK)
            })
        })
    });
    group.finish();
    rig.cancel.cancel();
}

criterion_group!(benches, bench);
criterion_main!(benches);
