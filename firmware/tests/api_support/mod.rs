//! Shared rig for the API tests: the real router served on 127.0.0.1:0 over a sled store in a
//! temporary directory, a runtime with no modems (or a simulated one), and a reqwest client.
//! Waiting is done through the API's own long-poll on the event log, never with sleeps.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use flowgate::api::auth::ApiToken;
use flowgate::api::{ApiState, serve};
use flowgate::config::Config;
use flowgate::metrics::Metrics;
use flowgate::runtime::{Modems, Runtime, RuntimeOptions};
use flowgate::store::{Db, Store, StoreOptions};
use flowgate_board::modem::Modem;
use flowgate_board::simulator::{Simulator, SimulatorConfig, SimulatorControl};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub const TOKEN: &str = "test-token-0123456789abcdef";

/// Generous limit for waits; they return as soon as the condition holds.
pub const WAIT: Duration = Duration::from_secs(30);

pub struct Gateway {
    pub base: String,
    pub client: reqwest::Client,
    pub runtime: Runtime,
    pub db: Db,
    pub config: Config,
    pub cancel: CancellationToken,
    pub dir: tempfile::TempDir,
    /// The simulated board, when started with [`Gateway::start_sim`].
    pub sim: Option<Simulator>,
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

impl Gateway {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_full(tweak, Modems::default(), None, CancellationToken::new()).await
    }

    /// A gateway on the simulated board: one simulated modem `m0`, ready.
    pub async fn start_sim() -> Self {
        init_tracing();
        let sim = Simulator::start(SimulatorConfig::default()).expect("simulator");
        let cancel = CancellationToken::new();
        let modem = Modem::spawn(
            sim.modem_config("m0"),
            sim.vendor_profile(),
            cancel.child_token(),
        );
        modem.wait_ready(WAIT).await.expect("modem ready");
        let mut gw = Self::start_full(
            |_| {},
            Modems::new(vec![modem]),
            Some(sim.control()),
            cancel,
        )
        .await;
        gw.sim = Some(sim);
        gw
    }

    /// The simulator's control handle (gateways from [`Gateway::start_sim`]).
    pub fn sim(&self) -> SimulatorControl {
        self.sim.as_ref().expect("a simulated board").control()
    }

    /// A gateway over the given modems (and simulator), config tweaked by `tweak`; `cancel`
    /// stops it (and is cancelled when the gateway is dropped).
    pub async fn start_full(
        tweak: impl FnOnce(&mut Config),
        modems: Modems,
        sim: Option<SimulatorControl>,
        cancel: CancellationToken,
    ) -> Self {
        init_tracing();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::default();
        config.data.dir = dir.path().to_owned();
        tweak(&mut config);
        let store = Store::open(dir.path(), &StoreOptions::default()).expect("store");
        let db = Db::new(store).expect("db");
        let runtime = Runtime::new(
            db.clone(),
            modems,
            RuntimeOptions::default(),
            Arc::new(Metrics::default()),
            cancel.child_token(),
        );
        runtime.recover().await.expect("recover");
        runtime.start_services();
        let sims = sim.map(|s| vec![("m0".to_owned(), s)]).unwrap_or_default();
        let state = ApiState::new(runtime.clone(), ApiToken::new(TOKEN), config.clone(), sims);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let server_cancel = cancel.child_token();
        tokio::spawn(async move {
            serve(listener, state, server_cancel).await.expect("serve");
        });
        Self {
            base,
            client: reqwest::Client::new(),
            runtime,
            db,
            config,
            cancel,
            dir,
            sim: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with the bearer token.
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(TOKEN)
    }

    /// Sends and returns (status, JSON body or Null).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut r = self.req(method, path);
        if let Some(body) = body {
            r = r.json(&body);
        }
        send(r).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None).await
    }

    /// Expects 200 and returns the body.
    pub async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method.clone(), path, body).await;
        assert_eq!(status, StatusCode::OK, "{method} {path}: {value}");
        value
    }

    /// Creates a flow and returns its id.
    pub async fn create_flow(&self, actions: Value) -> String {
        let flow = self
            .ok(
                Method::POST,
                "/v1.0/flows",
                Some(json!({"name": "f", "detail": "", "actions": actions})),
            )
            .await;
        flow["id"].as_str().expect("flow id").to_owned()
    }

    /// Long-polls the event log from `after` until an event satisfies `pred`; returns it.
    pub async fn wait_event(&self, after: u64, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        let mut after = after;
        loop {
            assert!(
                Instant::now() < deadline,
                "no matching event within {WAIT:?}"
            );
            let page = self
                .ok(
                    Method::GET,
                    &format!("/v1.0/gateway/events?after={after}&limit=1000&wait=5"),
                    None,
                )
                .await;
            for event in page["events"].as_array().expect("events") {
                if pred(event) {
                    return event.clone();
                }
            }
            after = page["next_after"].as_u64().expect("next_after");
        }
    }

    /// Waits until activeflow `id` has ended; returns its public JSON.
    pub async fn wait_ended(&self, id: &str) -> Value {
        self.wait_event(0, |e| {
            e["resource_id"] == id && e["data"]["status"] == "ended"
        })
        .await;
        self.ok(Method::GET, &format!("/v1.0/activeflows/{id}"), None)
            .await
    }

    pub fn last_seq(&self) -> u64 {
        self.db.store.last_seq()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

pub async fn send(r: RequestBuilder) -> (StatusCode, Value) {
    let response = r.send().await.expect("request");
    let status = response.status();
    let bytes = response.bytes().await.expect("body");
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    (status, value)
}

/// Asserts an error response: status and `code`.
#[track_caller]
pub fn assert_error(got: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["code"], code, "{}", got.1);
    assert!(
        got.1["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        got.1
    );
}

/// The JSON paths of an error's problems.
pub fn problem_paths(body: &Value) -> Vec<String> {
    body["problems"].as_array().map_or_else(Vec::new, |p| {
        p.iter()
            .filter_map(|p| p["path"].as_str().map(str::to_owned))
            .collect()
    })
}

/// Types of an activeflow's executed actions with their outcomes: `["variable_set:executed", …]`.
pub fn executed(activeflow: &Value) -> Vec<String> {
    activeflow["executed_actions"]
        .as_array()
        .map_or_else(Vec::new, |a| {
            a.iter()
                .map(|e| {
                    format!(
                        "{}:{}",
                        e["type"].as_str().unwrap_or("?"),
                        e["outcome"].as_str().unwrap_or("?")
                    )
                })
                .collect()
        })
}
