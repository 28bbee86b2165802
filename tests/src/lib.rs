//! Harness for Flowgate's end-to-end tests.
//!
//! [`Gateway::start`] runs the real daemon in-process on the simulated board (temporary data
//! directory, API on a free loopback port); tests drive it only through its HTTP API — the
//! simulator's control endpoints included — exactly as a controller or an installer would.
//! [`Process`] starts the daemon as a separate process for crash tests.
//!
//! Waiting is event-driven: [`Api::wait_for`] long-polls the gateway's event log and
//! re-checks its condition after every event, so no test sleeps to synchronise.

#![allow(
    clippy::unwrap_used,
    clippy::missing_panics_doc,
    reason = "test harness: a failed step is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flowgate::config::Config;
use flowgate::daemon::Daemon;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// How long any single wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(30);

/// A running in-process gateway on the simulated board.
pub struct Gateway {
    daemon: Option<Daemon>,
    api: Api,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// Starts the daemon with the default config (simulated board).
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts the daemon after `tweak` adjusts the config.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.data.dir = dir.path().join("data");
        config.api.listen = "127.0.0.1:0".into();
        // Tests run side by side: each gateway's SIP takes a free port.
        config.sip.listen = "127.0.0.1:0".parse().unwrap();
        tweak(&mut config);
        let daemon = Daemon::start(config).await.unwrap();
        let api = Api::new(
            &format!("http://{}", daemon.addr()),
            daemon.token().as_str(),
        );
        api.wait_modems_ready().await;
        Self {
            daemon: Some(daemon),
            api,
            _dir: dir,
        }
    }

    /// The API client.
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// The daemon (for the rare check the API cannot make).
    pub fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().unwrap()
    }

    /// Orderly shutdown.
    pub async fn stop(mut self) {
        if let Some(d) = self.daemon.take() {
            d.shutdown().await.unwrap();
        }
    }
}

/// A small client for the LAN API.
#[derive(Clone)]
pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    /// A client for `base` (`http://127.0.0.1:port`) with `token`.
    pub fn new(base: &str, token: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(90))
            .build()
            .unwrap();
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http,
        }
    }

    /// Any request; returns status and JSON body (`Null` when the body is not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        if let Some(b) = body {
            request = request.json(&b);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self
            .call(method.clone(), path, body, Some(&self.token))
            .await;
        assert!(status.is_success(), "{method} {path} -> {status}: {value}");
        value
    }

    /// GET, expecting 2xx.
    pub async fn get(&self, path: &str) -> Value {
        self.ok(Method::GET, path, None).await
    }

    /// POST, expecting 2xx.
    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.ok(Method::POST, path, Some(body)).await
    }

    /// PUT, expecting 2xx.
    pub async fn put(&self, path: &str, body: Value) -> Value {
        self.ok(Method::PUT, path, Some(body)).await
    }

    /// Raw bytes of a GET (recordings), expecting 2xx.
    pub async fn get_bytes(&self, path: &str) -> Vec<u8> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "GET {path} -> {}",
            response.status()
        );
        response.bytes().await.unwrap().to_vec()
    }

    /// Creates a flow; returns its id.
    pub async fn create_flow(&self, flow: Value) -> Uuid {
        let created = self.post("/v1.0/flows", flow).await;
        Uuid::parse_str(created["id"].as_str().unwrap()).unwrap()
    }

    /// Binds the simulated modem's number to flows.
    pub async fn bind(&self, call_flow: Option<Uuid>, message_flow: Option<Uuid>) {
        let nil = Uuid::nil().to_string();
        self.post(
            "/v1.0/numbers",
            json!({
                "number": SIM_NUMBER,
                "call_flow_id": call_flow.map_or(nil.clone(), |u| u.to_string()),
                "message_flow_id": message_flow.map_or(nil, |u| u.to_string()),
            }),
        )
        .await;
    }

    /// Waits until every modem is ready.
    pub async fn wait_modems_ready(&self) {
        self.wait_for("modems ready", || async {
            let health = self
                .call(Method::GET, "/v1.0/gateway/health", None, None)
                .await
                .1;
            health["modems"]
                .as_array()
                .filter(|m| m.iter().all(|m| m["state"] == "ready"))
                .map(|_| ())
        })
        .await;
    }

    /// Re-evaluates `check` after every new event until it returns `Some`, at most [`WAIT`].
    pub async fn wait_for<T, F, Fut>(&self, what: &str, check: F) -> T
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        match self.try_wait_for(check).await {
            Some(v) => v,
            None => panic!("timed out waiting for {what}"),
        }
    }

    /// [`Api::wait_for`] that returns `None` at the deadline instead of panicking, so the
    /// caller can say what it saw last (a failed wait must explain itself).
    pub async fn try_wait_for<T, F, Fut>(&self, check: F) -> Option<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + WAIT;
        let mut after = self.get("/v1.0/gateway/events?limit=1").await["last_seq"]
            .as_u64()
            .unwrap_or(0);
        loop {
            if let Some(v) = check().await {
                return Some(v);
            }
            if deadline.saturating_duration_since(Instant::now()).is_zero() {
                return None;
            }
            // Long-poll: returns as soon as anything changes (or after 1 s, to also notice
            // changes that are not events, such as a modem becoming ready).
            let page = self
                .get(&format!(
                    "/v1.0/gateway/events?after={after}&limit=1000&wait=1"
                ))
                .await;
            after = page["next_after"].as_u64().unwrap_or(after);
        }
    }

    /// Waits until the activeflow has ended; returns it.
    pub async fn wait_ended(&self, activeflow: &str) -> Value {
        self.wait_for("activeflow end", || async {
            let af = self.get(&format!("/v1.0/activeflows/{activeflow}")).await;
            (af["status"] == "ended").then_some(af)
        })
        .await
    }

    /// The most recent calls (newest last).
    pub async fn calls(&self) -> Vec<Value> {
        self.get("/v1.0/calls?page_size=100").await["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// What the gateway sent through the simulated modem.
    pub async fn sim_sent(&self) -> Value {
        self.get("/v1.0/gateway/sim/sent").await
    }
}

/// The simulated modem's own number (board profile `simulated`).
pub const SIM_NUMBER: &str = "+15550001000";

/// A flow from `flows/library/`.
pub fn library_flow(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../flows/library")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The daemon as a separate process (crash tests).
pub struct Process {
    child: Child,
    /// Base URL of its API.
    pub base: String,
}

impl Process {
    /// Starts `flowgate-testd run --config <config>`; returns once its API answers.
    pub fn start(binary: &Path, config: &Path) -> Self {
        Self::start_with_env(binary, config, &[])
    }

    /// [`Process::start`] with extra environment variables (`flowgate-testd`'s switches).
    pub fn start_with_env(binary: &Path, config: &Path, env: &[(&str, &str)]) -> Self {
        let child = Command::new(binary)
            .args(["run", "--config"])
            .arg(config)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(daemon_log())
            .spawn()
            .unwrap();
        // Owned by `Process` at once, so its Drop reaps the daemon whatever happens next.
        let mut process = Self {
            child,
            base: String::new(),
        };
        // The daemon prints "Flowgate API on http://ADDR/v1.0 …" once it listens.
        let stdout = process.child.stdout.take().unwrap();
        let mut reader = std::io::BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            let n = std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
            assert!(n > 0, "the daemon exited before listening");
            if let Some(rest) = line.strip_prefix("Flowgate API on ") {
                process.base = rest.split("/v1.0").next().unwrap().to_owned();
                // Keep draining stdout so the daemon never blocks on a full pipe.
                std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
                return process;
            }
        }
    }

    /// Waits for the daemon to die by itself (a crash point), at most `limit`; returns
    /// whether it did.
    pub async fn wait_death(mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        // std has no async notification of a child's exit: look every 20 ms. Only how soon
        // the death is noticed depends on this, never the outcome.
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// `kill -9`.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM and wait for a clean exit; returns whether it exited 0.
    pub fn terminate(mut self) -> bool {
        let pid = i32::try_from(self.child.id()).unwrap();
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        self.child.wait().unwrap().success()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Already reaped by `kill`/`terminate` in the normal case; errors mean exactly that.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a process daemon's log (stderr) goes: a new file in `FLOWGATE_E2E_DAEMON_LOGS` when
/// that is set (with `RUST_LOG`, which the daemon inherits, to choose what is logged), to
/// read after a failed crash test; nowhere otherwise.
fn daemon_log() -> Stdio {
    let Some(dir) = std::env::var_os("FLOWGATE_E2E_DAEMON_LOGS") else {
        return Stdio::null();
    };
    std::fs::create_dir_all(&dir).unwrap();
    let name = format!(
        "daemon-{}-{}.log",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    );
    let file = std::fs::File::create(Path::new(&dir).join(&name)).unwrap();
    eprintln!("daemon log: {}", Path::new(&dir).join(name).display());
    Stdio::from(file)
}

/// Writes a config file for a process daemon and returns its path.
pub fn write_config(dir: &Path, board: &Path) -> PathBuf {
    let path = dir.join("config.toml");
    let text = format!(
        "[api]\nlisten = \"127.0.0.1:0\"\n[sip]\nlisten = \"127.0.0.1:0\"\n[data]\ndir = {:?}\n[board]\nprofile = {:?}\n[log]\nfilter = \"warn\"\n",
        dir.join("data"),
        board
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[path = "../../board/tests/common/python.rs"]
mod python;
pub use python::python_with;

/// espeak-ng's speech for `text`, resampled to 8 kHz (what a caller says in the tests).
pub fn speak(text: &str) -> Vec<i16> {
    let out = Command::new("espeak-ng")
        .args(["-v", "en-us", "--stdout", text])
        .output()
        .expect("espeak-ng (run scripts/deps.sh)");
    assert!(out.status.success(), "espeak-ng failed");
    let wav = out.stdout;
    let rate = u32::from_le_bytes([wav[24], wav[25], wav[26], wav[27]]);
    let data = wav.windows(4).position(|w| w == b"data").unwrap() + 8;
    let samples: Vec<i16> = wav[data..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    flowgate_dsp::resample(&samples, rate, 8000).unwrap()
}

/// A Python test server under `tests/` that speaks JSON lines on stdout: the first says
/// `{"port": N}` once it listens, each later one reports something it handled (the SMTP
/// server of the e-mail tests, the recogniser of the transcription tests). Killed when
/// dropped.
pub struct JsonLineServer {
    _child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    name: &'static str,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

impl JsonLineServer {
    /// Starts `tests/<script>` with the Python that has `module`, and waits for its port.
    pub async fn start(name: &'static str, module: &str, script: &str, args: &[&str]) -> Self {
        use tokio::io::AsyncBufReadExt;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(script);
        let mut child = tokio::process::Command::new(python_with(module))
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("the {name} did not start"))
            .unwrap()
            .unwrap_or_else(|| panic!("the {name} exited"));
        let port = serde_json::from_str::<Value>(&first).unwrap()["port"]
            .as_u64()
            .unwrap();
        Self {
            _child: child,
            lines,
            name,
            port: u16::try_from(port).unwrap(),
        }
    }

    /// The next thing the server reports having handled.
    pub async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(WAIT, self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("nothing reached the {}", self.name))
            .unwrap()
            .unwrap_or_else(|| panic!("the {} exited", self.name));
        serde_json::from_str(&line).unwrap()
    }
}
