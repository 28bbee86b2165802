//! `GET /v1.0/calls/{id}/media_stream` on a simulated GSM call, with Python `websockets`
//! clients (`media_stream_client.py`, driven through stdin/stdout): two listeners at once
//! (`sln` and `rtp`) receive the caller's audio byte for byte, a tone one of them sends is
//! what the caller hears, refusals are plain API errors before any upgrade, and the
//! gateway closes the streams (1000) when the call ends.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use flowgate_tests::{Gateway, WAIT, python_with};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::external_media::{has_1k_tone, noise};

/// One `media_stream_client.py` process.
struct Client {
    _child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    /// Where it writes the PCM it receives.
    out: PathBuf,
}

impl Client {
    async fn start(url: &str, encapsulation: &str, out: &Path) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/media_stream_client.py");
        let mut child = Command::new(python_with("websockets"))
            .arg(script)
            .args([url, encapsulation, &out.display().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            _child: child,
            stdin,
            lines,
            out: out.to_owned(),
        }
    }

    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(WAIT, self.lines.next_line())
            .await
            .expect("the client said nothing")
            .unwrap()
            .expect("the client exited");
        serde_json::from_str(&line).unwrap()
    }

    async fn tell(&mut self, command: &str) {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Whether what it received so far holds `pcm` (s16le) as one run.
    fn received(&self, pcm: &[u8]) -> bool {
        std::fs::read(&self.out).is_ok_and(|got| got.windows(pcm.len()).any(|w| w == pcm))
    }
}

fn le(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_clients_hear_the_caller_exactly_and_speak_to_it() {
    let gw = Gateway::start().await;
    let api = gw.api();
    let sim = gw.daemon().sims().remove(0);
    let dir = tempfile::tempdir().unwrap();
    let flow = api
        .create_flow(json!({"name": "listen", "detail": "", "actions": [
            {"type": "answer"},
            {"type": "sleep", "option": {"duration": 120_000}}]}))
        .await;
    api.bind(Some(flow), None).await;
    api.post("/v1.0/gateway/sim/calls", json!({"from": "+15551112222"}))
        .await;
    let id = api
        .wait_for("the call to be answered", || async {
            let call = api.calls().await.into_iter().next()?;
            (call["status"] == "progressing").then(|| call["id"].as_str().unwrap().to_owned())
        })
        .await;
    let base = format!("ws://{}/v1.0/calls", gw.daemon().addr());
    let token = gw.daemon().token().as_str().to_owned();
    let url = |id: &str, encapsulation: &str| {
        format!("{base}/{id}/media_stream?encapsulation={encapsulation}&token={token}")
    };

    // Refusals come before the upgrade, as API errors.
    let http = format!("http://{}", gw.daemon().addr());
    let path = format!("/v1.0/calls/{id}/media_stream?encapsulation=sln");
    let (status, _) = api.call(reqwest::Method::GET, &path, None, None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the API's token is needed"
    );
    let (status, body) = api
        .call(reqwest::Method::GET, &path, None, Some(&token))
        .await;
    assert_eq!(status, StatusCode::UPGRADE_REQUIRED, "{body}");
    let wrong = format!("/v1.0/calls/{id}/media_stream?encapsulation=slin16");
    let (status, body) = api
        .call(reqwest::Method::GET, &wrong, None, Some(&token))
        .await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::BAD_REQUEST, &json!("INVALID_ENCAPSULATION"))
    );
    let nobody = uuid::Uuid::now_v7().to_string();
    let mut refused = Client::start(&url(&nobody, "sln"), "sln", &dir.path().join("x")).await;
    assert_eq!(refused.next().await, json!({"status": 404}), "{http}");

    // Two listeners at once.
    let mut sln = Client::start(&url(&id, "sln"), "sln", &dir.path().join("sln.pcm")).await;
    let mut rtp = Client::start(&url(&id, "rtp"), "rtp", &dir.path().join("rtp.pcm")).await;
    assert_eq!(sln.next().await, json!({"open": true}));
    assert_eq!(rtp.next().await, json!({"open": true}));

    // The caller speaks: both receive it byte for byte (the flow plays nothing, so the
    // mix of both sides is the caller alone).
    let caller = le(&noise());
    sim.queue_audio(&noise()).unwrap();
    api.wait_for("both clients to receive the caller's audio", || async {
        (sln.received(&caller) && rtp.received(&caller)).then_some(())
    })
    .await;

    // One client speaks: the caller hears its tone.
    sim.take_recorded_audio();
    sln.tell("tone").await;
    sim.wait_for_recorded(16_000, WAIT).await.unwrap();
    assert!(
        has_1k_tone(&sim.take_recorded_audio()),
        "the caller hears the client's tone"
    );

    // A client that leaves ends its own stream only.
    rtp.tell("close").await;
    let closed = rtp.next().await;
    assert_eq!(closed["closed"], 1000, "{closed}");
    assert_eq!(
        closed["rtp_ok"], true,
        "RTP headers: PT 96, one SSRC, +1 / +160: {closed}"
    );

    // The call ends: the gateway closes the other stream normally.
    api.post("/v1.0/gateway/sim/hangup", json!({})).await;
    let closed = sln.next().await;
    assert_eq!(closed["closed"], 1000, "{closed}");
    assert!(closed["messages"].as_u64().unwrap() > 25, "{closed}");
    gw.stop().await;
}
