//! `flowgate flow validate` and `flowgate flow run` as a user runs them: the real binary,
//! real files, and for `--fetch URL http://…` a real HTTP server on loopback started here.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn flowgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowgate"))
        .args(args)
        .output()
        .expect("run flowgate")
}

fn write(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, value.to_string()).expect("write");
    path
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const A: &str = "00000000-0000-4000-8000-0000000000a1";
const B: &str = "00000000-0000-4000-8000-0000000000b1";
const C: &str = "00000000-0000-4000-8000-0000000000c1";
const MAIN: &str = "f0000000-0000-4000-8000-0000000000f1";
const NEXT: &str = "f0000000-0000-4000-8000-0000000000f2";

/// The texts of the `talk`s that played to the end.
fn said(report: &Value) -> Vec<String> {
    report["trace"]
        .as_array()
        .expect("trace")
        .iter()
        .filter(|e| e["type"] == "talk" && e["outcome"] == "executed" && e.get("reason").is_none())
        .map(|e| e["option"]["text"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn validate_warns_without_failing_unless_strict() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A sub-flow that jumps into the flow fetching it, and VoIPBIN's nil ids.
    let sub = write(
        dir.path(),
        "sub.json",
        &json!({"name": "sub", "detail": "", "actions": [
            {"id": "00000000-0000-0000-0000-000000000000", "type": "talk", "option": {"text": "x"}},
            {"type": "goto", "option": {"target_id": A, "loop_count": 1}}]}),
    );
    let out = flowgate(&["flow", "validate", p(&sub)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: actions[1].option.target_id"),
        "{}",
        stderr(&out)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(": ok"));

    let strict = flowgate(&["flow", "validate", "--strict", p(&sub)]);
    assert_eq!(strict.status.code(), Some(1));

    let out = flowgate(&["flow", "validate", "--json", p(&sub)]);
    let report = stdout_json(&out);
    assert_eq!(report["valid"], true);
    assert_eq!(report["files"][0]["warnings"][0]["severity"], "warning");

    let broken = write(
        dir.path(),
        "broken.json",
        &json!([{"type": "goto", "option": {"target_id": "00000000-0000-0000-0000-000000000002", "loop_count": 1}}]),
    );
    let out = flowgate(&["flow", "validate", "--json", p(&broken)]);
    assert_eq!(out.status.code(), Some(1));
    let report = stdout_json(&out);
    assert_eq!(report["files"][0]["errors"][0]["severity"], "error");
    assert_eq!(
        report["files"][0]["errors"][0]["path"],
        "actions[0].option.target_id"
    );
}

#[test]
fn the_readme_example_still_runs() {
    let ivr = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../flows/library/ivr-menu.json"
    );
    let out = flowgate(&[
        "flow",
        "run",
        ivr,
        "--input",
        "dtmf:2",
        "--input",
        "hangup",
        "--now",
        "2025-06-04T10:00:00Z",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("trace:") && text.contains("end: hangup"),
        "{text}"
    );
}

#[test]
fn a_script_file_drives_interrupts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flow = write(
        dir.path(),
        "menu.json",
        &json!({"name": "menu", "detail": "", "actions": [
            {"type": "talk", "option": {"text": "welcome"}},
            {"id": A, "type": "digits_receive", "option": {"duration": 5000, "length": 1}},
            {"type": "talk", "option": {"text": "you pressed ${voipbin.call.digits}"}},
            {"id": C, "type": "talk", "option": {"text": "operator"}}]}),
    );
    let script = dir.path().join("menu.script");
    std::fs::write(
        &script,
        "# the agent takes over while the caller is asked for a digit\n\
         at:actions[1]\n\
         forward-now:actions[3]\n",
    )
    .expect("script");
    let out = flowgate(&["flow", "run", p(&flow), "--script", p(&script), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout_json(&out);
    assert_eq!(said(&report), ["welcome", "operator"]);
    assert_eq!(report["interrupts"][0]["action"], A);
    assert_eq!(report["interrupts"][0]["effect"], "interrupted");
    assert_eq!(report["trace"][1]["reason"], "interrupted");

    // Without forward_now the prompt's digit is taken first, then the jump happens.
    let out = flowgate(&[
        "flow",
        "run",
        p(&flow),
        "--json",
        "--input",
        "at:actions[1]",
        "--input",
        &format!("forward:{C}"),
        "--input",
        "dtmf:7",
    ]);
    let report = stdout_json(&out);
    assert_eq!(said(&report), ["welcome", "operator"]);
    assert_eq!(report["variables"]["voipbin.call.digits"], "7");
    assert_eq!(report["interrupts"][0]["effect"], "queued");

    // A bad event names its line.
    std::fs::write(&script, "dtmf:1\nring\n").expect("script");
    let out = flowgate(&["flow", "run", p(&flow), "--script", p(&script)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("menu.script:2"), "{}", stderr(&out));
}

#[test]
fn continue_after_block_and_pushed_actions_from_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flow = write(
        dir.path(),
        "bot.json",
        &json!({"name": "bot", "detail": "", "actions": [
            {"type": "message_send", "option": {"destinations": [{"type": "tel", "target": "${voipbin.conversation.peer.target}"}], "text": "hold on"}},
            {"id": B, "type": "block"},
            {"type": "variable_set", "option": {"key": "resumed", "value": "yes"}}]}),
    );
    let scripts = dir.path().join("scripts");
    std::fs::create_dir(&scripts).expect("dir");
    write(
        &scripts,
        "agent.json",
        &json!([{"type": "variable_set", "option": {"key": "agent", "value": "joined"}}]),
    );
    let script = scripts.join("bot.script");
    std::fs::write(&script, "push-now:agent.json\ncontinue\n").expect("script");
    let out = flowgate(&[
        "flow",
        "run",
        p(&flow),
        "--reference",
        "message",
        "--var",
        "voipbin.message.source.number=+15557654321",
        "--script",
        p(&script),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout_json(&out);
    assert_eq!(
        report["trace"][0]["option"]["destinations"][0]["target"],
        "+15557654321"
    );
    // The push came while the message was being sent; it ran, then the flow blocked and
    // the client continued it.
    assert_eq!(report["variables"]["agent"], "joined");
    assert_eq!(report["variables"]["resumed"], "yes");
    let effects: Vec<&str> = report["interrupts"]
        .as_array()
        .expect("interrupts")
        .iter()
        .map(|i| i["effect"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(effects, ["interrupted", "continued"]);
    assert_eq!(report["end"], "finished");
}

#[test]
fn on_complete_chains_run_with_the_with_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let main = write(
        dir.path(),
        "main.json",
        &json!({"id": MAIN, "name": "main", "detail": "", "on_complete_flow_id": NEXT, "actions": [
            {"type": "answer"},
            {"type": "variable_set", "option": {"key": "ticket", "value": "T-1"}},
            {"type": "hangup"}]}),
    );
    let next = write(
        dir.path(),
        "next.json",
        &json!({"id": NEXT, "name": "report", "detail": "", "actions": [
            {"type": "webhook_send", "option": {"uri": "https://crm.example/t", "method": "POST", "data": "${ticket} ${voipbin.call.status}"}}]}),
    );
    let out = flowgate(&["flow", "run", p(&main), "--with", p(&next), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout_json(&out);
    let flows = report["flows"].as_array().expect("flows");
    assert_eq!(flows.len(), 2);
    assert_eq!(flows[0]["ended"]["kind"], "hangup");
    assert_eq!(flows[0]["follow_up"]["kind"], "started");
    assert_eq!(flows[1]["complete_count"], 1);
    assert_eq!(flows[1]["follow_up"]["kind"], "none");
    let hook = report["trace"]
        .as_array()
        .expect("trace")
        .iter()
        .find(|e| e["flow"] == 1)
        .expect("the follow-up ran");
    assert_eq!(hook["option"]["data"], "T-1 progressing");

    // Without --with the run says what would follow.
    let out = flowgate(&["flow", "run", p(&main), "--json"]);
    let report = stdout_json(&out);
    assert_eq!(report["flows"][0]["follow_up"]["kind"], "missing");
}

/// Answers one HTTP request with `body`; returns the port and the request it got.
fn one_shot_server(body: &'static str) -> (u16, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut head = String::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("read");
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            head.push_str(&line);
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        let mut request_body = vec![0u8; length];
        reader.read_exact(&mut request_body).expect("body");
        write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("answer");
        format!("{head}{}", String::from_utf8_lossy(&request_body))
    });
    (port, handle)
}

#[test]
fn fetch_is_answered_from_files_or_another_url_never_on_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flow = write(
        dir.path(),
        "fetching.json",
        &json!({"name": "fetching", "detail": "", "actions": [
            {"type": "fetch", "option": {"event_url": "https://crm.example/menu?caller=${caller}", "event_method": "POST"}},
            {"type": "variable_set", "option": {"key": "after", "value": "yes"}}]}),
    );
    let reply = write(
        dir.path(),
        "reply.json",
        &json!([{"type": "variable_set", "option": {"key": "fetched", "value": "from the file"}}]),
    );
    let url = "https://crm.example/menu?caller=42";
    let out = flowgate(&[
        "flow",
        "run",
        p(&flow),
        "--reference",
        "api",
        "--var",
        "caller=42",
        "--fetch",
        url,
        p(&reply),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout_json(&out);
    assert_eq!(report["variables"]["fetched"], "from the file");
    assert_eq!(report["variables"]["after"], "yes");
    assert_eq!(report["trace"][0]["option"]["event_url"], url);

    // No answer for the URL: the fetch fails (fatal), and the dry run never went online.
    let out = flowgate(&[
        "flow",
        "run",
        p(&flow),
        "--reference",
        "api",
        "--var",
        "caller=7",
        "--fetch",
        url,
        p(&reply),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report = stdout_json(&out);
    assert!(
        report["end"]
            .as_str()
            .is_some_and(|e| e.contains("no --fetch answer for https://crm.example/menu?caller=7")),
        "{}",
        report["end"]
    );

    // `*` sends any other fetch to a URL given instead: a server on loopback here.
    let (port, server) = one_shot_server(
        r#"[{"type":"variable_set","option":{"key":"fetched","value":"from the server"}}]"#,
    );
    let instead = format!("http://127.0.0.1:{port}/menu");
    let out = flowgate(&[
        "flow",
        "run",
        p(&flow),
        "--reference",
        "api",
        "--var",
        "caller=9",
        "--fetch",
        "*",
        &instead,
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout_json(&out);
    assert_eq!(report["variables"]["fetched"], "from the server");
    let request = server.join().expect("server");
    assert!(request.starts_with("POST /menu HTTP/1.1"), "{request}");
    assert!(request.contains("\"activeflow_id\""), "{request}");
}
