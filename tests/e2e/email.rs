//! `email_send` against a real SMTP server (aiosmtpd, `tests/smtp/server.py`): plain with
//! AUTH, STARTTLS and implicit TLS with a private CA the gateway is told to trust, a recording
//! attached by id, and a relay that refuses the credentials.

use std::path::Path;
use std::process::Stdio;

use flowgate_tests::{Gateway, JsonLineServer};
use serde_json::{Value, json};

/// The test SMTP server (`tests/smtp/server.py`); killed when dropped.
struct Smtp(JsonLineServer);

impl Smtp {
    async fn start(args: &[&str]) -> Self {
        Self(JsonLineServer::start("SMTP server", "aiosmtpd", "smtp/server.py", args).await)
    }

    fn port(&self) -> u16 {
        self.0.port
    }

    /// The next message the server received.
    async fn message(&mut self) -> Value {
        self.0.next().await
    }
}

/// A private CA and a `localhost` certificate it signs (rustls refuses a self-signed
/// end-entity certificate as its own root), made with the openssl CLI.
fn make_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl (Debian package openssl, installed by scripts/deps.sh test)");
        assert!(status.success(), "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=Test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.pem",
    ]);
}

fn notify_flow() -> Value {
    json!({"name": "notify-by-mail", "detail": "", "actions": [
        {"type": "email_send", "option": {
            "destinations": [{"type": "email", "target": "ops@example.com", "target_name": "Ops"}],
            "subject": "Order ${order}",
            "content": "Order ${order} shipped."}}]})
}

/// Runs `notify_flow` from the API; returns how its `email_send` ended.
async fn run_notify(gw: &Gateway) -> Value {
    let api = gw.api();
    let flow = api.create_flow(notify_flow()).await;
    let af = api
        .post(
            "/v1.0/activeflows",
            json!({"flow_id": flow, "variables": {"order": "A-17"}}),
        )
        .await;
    let af = api.wait_ended(af["id"].as_str().unwrap()).await;
    af["executed_actions"][0].clone()
}

/// The relay settings of one test: `security`, credentials (empty: no AUTH), and a private
/// CA file for the TLS modes.
struct Relay<'a> {
    host: &'a str,
    port: u16,
    security: &'a str,
    login: Option<(&'a str, &'a str)>,
    ca_file: Option<&'a Path>,
}

/// A gateway whose `[email]` points at `relay`, sending as `from`.
async fn gateway_with(relay: Relay<'_>, from: &str) -> Gateway {
    Gateway::start_with(|c| {
        c.email.host = relay.host.into();
        c.email.port = relay.port;
        c.email.security = relay.security.into();
        if let Some((user, password)) = relay.login {
            c.email.username = user.into();
            c.email.password = password.into();
        }
        if let Some(ca) = relay.ca_file {
            c.email.ca_file = ca.to_str().unwrap().into();
        }
        c.email.from = from.into();
    })
    .await
}

/// A relay speaking TLS with a certificate of a fresh private CA (`extra` adds server
/// options); returns it with the directory holding `ca.pem`.
async fn tls_relay(extra: &[&str]) -> (Smtp, tempfile::TempDir) {
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path());
    let cert = certs.path().join("server.pem");
    let key = certs.path().join("server.key");
    let mut args = vec![
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    (Smtp::start(&args).await, certs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_send_plain_with_auth_reaches_the_relay() {
    let mut smtp = Smtp::start(&["--auth", "flow:s3cret"]).await;
    let relay = Relay {
        host: "127.0.0.1",
        port: smtp.port(),
        security: "none",
        login: Some(("flow", "s3cret")),
        ca_file: None,
    };
    let gw = gateway_with(relay, "Gateway <gw@example.com>").await;
    let executed = run_notify(&gw).await;
    assert_eq!(executed["outcome"], "executed", "{executed}");
    let message = smtp.message().await;
    assert_eq!(message["login"], "flow");
    assert_eq!(message["mail_from"], "gw@example.com");
    assert_eq!(message["rcpt_tos"], json!(["ops@example.com"]));
    let data = message["data"].as_str().unwrap();
    assert!(data.contains("Subject: Order A-17"), "{data}");
    assert!(data.contains("To: Ops <ops@example.com>"), "{data}");
    assert!(data.contains("Order A-17 shipped."), "{data}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_send_with_wrong_credentials_fails_and_the_flow_goes_on() {
    let smtp = Smtp::start(&["--auth", "flow:s3cret"]).await;
    let relay = Relay {
        host: "127.0.0.1",
        port: smtp.port(),
        security: "none",
        login: Some(("flow", "wrong")),
        ca_file: None,
    };
    let gw = gateway_with(relay, "gw@example.com").await;
    let executed = run_notify(&gw).await;
    assert_eq!(executed["outcome"], "failed", "{executed}");
    let text = executed.to_string();
    assert!(text.contains("SMTP relay 127.0.0.1"), "{text}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_send_without_a_relay_says_so() {
    let gw = Gateway::start().await;
    let executed = run_notify(&gw).await;
    assert_eq!(executed["outcome"], "failed", "{executed}");
    assert!(
        executed.to_string().contains("no SMTP relay is configured"),
        "{executed}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_send_implicit_tls_with_a_private_ca() {
    let (mut smtp, certs) = tls_relay(&["--implicit-tls", "--auth", "flow:s3cret"]).await;
    let ca = certs.path().join("ca.pem");
    let relay = Relay {
        host: "localhost",
        port: smtp.port(),
        security: "tls",
        login: Some(("flow", "s3cret")),
        ca_file: Some(&ca),
    };
    let gw = gateway_with(relay, "gw@example.com").await;
    let executed = run_notify(&gw).await;
    assert_eq!(executed["outcome"], "executed", "{executed}");
    let message = smtp.message().await;
    assert_eq!(message["encrypted"], true);
    assert_eq!(message["login"], "flow");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_send_starttls_attaches_the_calls_recording() {
    let (mut smtp, certs) = tls_relay(&[]).await;
    let ca = certs.path().join("ca.pem");
    let relay = Relay {
        host: "localhost",
        port: smtp.port(),
        security: "starttls",
        login: None,
        ca_file: Some(&ca),
    };
    let gw = gateway_with(relay, "gw@example.com").await;
    let api = gw.api();
    let flow = api
        .create_flow(
            json!({"name": "voicemail-to-mail", "detail": "", "actions": [
            {"type": "answer"},
            {"type": "recording_start", "option": {"format": "wav"}},
            {"type": "sleep", "option": {"duration": 1000}},
            {"type": "recording_stop"},
            {"type": "email_send", "option": {
                "destinations": [{"type": "email", "target": "vm@example.com"}],
                "subject": "Voicemail from ${voipbin.call.source.target}",
                "content": "See the attachment.",
                "attachments": [{"reference_type": "recording",
                                 "reference_id": "${voipbin.recording.id}"}]}},
            {"type": "hangup"}]}),
        )
        .await;
    api.bind(Some(flow), None).await;
    api.post("/v1.0/gateway/sim/calls", json!({"from": "+15551112222"}))
        .await;
    let message = smtp.message().await;
    assert_eq!(message["encrypted"], true);
    assert_eq!(message["rcpt_tos"], json!(["vm@example.com"]));
    let data = message["data"].as_str().unwrap();
    assert!(
        data.contains("Subject: Voicemail from +15551112222"),
        "{data}"
    );
    let call = api.calls().await.into_iter().next().unwrap();
    let recording = call["recording_ids"][0].as_str().unwrap();
    // lettre splits a long name into RFC 2231 continuations (`filename*0="…"`).
    assert!(
        data.contains(&format!("=\"{recording}.wav\"")),
        "{recording}: {data}"
    );
    assert!(data.contains("Content-Type: audio/wav"), "{data}");
    // base64 of a WAV starts with the encoding of "RIFF".
    assert!(data.contains("UklGR"), "{data}");
    gw.stop().await;
}
