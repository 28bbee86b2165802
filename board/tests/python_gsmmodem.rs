//! An independent modem client against the simulator: python-gsmmodem (PyPI
//! `python-gsmmodem-new`, installed by `scripts/deps.sh test`) runs a whole session
//! (`tests/python_gsmmodem/session.py`) on the simulator's real pty, once per simulated model:
//! its own connect sequence, identity, SMS in and out in text mode and in PDU mode (multipart
//! UCS2 with emoji both ways, status reports), USSD, and calls both ways.
//!
//! The script checks what the client received; it asks this test, over a JSON line protocol on
//! its stdin/stdout, to act as the network and the far end (deliver an SMS, ring, answer, hang
//! up). This test then checks what the simulator saw the client do. No sleeps: the script's
//! waits are events of the client, this side waits on simulator state.
//!
//! The client's log (every line it wrote and read) is printed when a session fails, or always
//! with `FLOWGATE_PYLOG=1`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use flowgate_board::modem::at::types::Direction;
use flowgate_board::simulator::{
    DialOutcome, SimulatedCallRecord, SimulatedModel, Simulator, SimulatorConfig, SimulatorControl,
    UssdCoding, UssdScript,
};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

#[path = "common/python.rs"]
#[allow(
    unreachable_pub,
    reason = "shared with flowgate-tests, which re-exports it from its library"
)]
mod python;

/// Limit of one wait on the simulator (it returns as soon as the condition holds).
const WAIT: Duration = Duration::from_secs(30);
/// Limit of a whole session (python-gsmmodem polls call state every 0.5 s).
const SESSION: Duration = Duration::from_secs(240);

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python_gsmmodem/session.py")
}

/// Carries out one request of the script.
async fn serve(
    ctl: &SimulatorControl,
    req: &Value,
    report: &mut Option<Value>,
    reported: &mut usize,
) -> Value {
    let s = |k: &str| req.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let op = s("op");
    let r: Result<Value, String> = async {
        let e = |e: flowgate_board::simulator::SimulatorError| e.to_string();
        match op.as_str() {
            "send_sms" => {
                // Parts arrive one after the other, as over the air: the next once the client
                // has read and deleted the one before (python-gsmmodem handles one `+CMTI` per
                // batch of lines it reads).
                let pdus = ctl.encode_sms(&s("sender"), &s("text")).map_err(e)?;
                for (i, p) in pdus.iter().enumerate() {
                    if i > 0 {
                        ctl.wait_for_stored(0, WAIT).await.map_err(e)?;
                    }
                    ctl.send_pdu(p).map_err(e)?;
                }
                Ok(json!(pdus.len()))
            }
            "deliver_reports" => {
                // The network confirms delivery of every part sent since the last call, one
                // report at a time (the client reads and deletes each before the next).
                let parts = ctl.sent_sms();
                for (i, p) in parts.iter().enumerate().skip(*reported) {
                    if i > *reported {
                        ctl.wait_for_stored(0, WAIT).await.map_err(e)?;
                    }
                    ctl.status_report(p.mr, &p.to, 0).map_err(e)?;
                }
                let n = parts.len() - *reported;
                *reported = parts.len();
                Ok(json!(n))
            }
            "queue_ussd" => {
                let mut script = UssdScript::new(s("text"), UssdCoding::Gsm7);
                script.status = req
                    .get("status")
                    .and_then(Value::as_u64)
                    .and_then(|v| u8::try_from(v).ok())
                    .unwrap_or(0);
                ctl.queue_ussd_reply(script).map_err(e)?;
                Ok(Value::Null)
            }
            "remote_answer" => ctl.remote_answer().map(|()| Value::Null).map_err(e),
            "remote_hangup" => ctl.remote_hangup().map(|()| Value::Null).map_err(e),
            "incoming_call" => ctl
                .incoming_call(&s("number"))
                .map(|()| Value::Null)
                .map_err(e),
            "far_end_dtmf" => ctl.dtmf(&s("digits")).map(|()| Value::Null).map_err(e),
            "dtmf_sent" => Ok(json!(ctl.dtmf_sent())),
            "wait_no_calls" => ctl
                .wait_for_no_calls(WAIT)
                .await
                .map(|()| Value::Null)
                .map_err(e),
            "report" => {
                *report = req.get("report").cloned();
                Ok(Value::Null)
            }
            other => Err(format!("unknown op `{other}`")),
        }
    }
    .await;
    match r {
        Ok(v) => json!({ "ok": true, "value": v }),
        Err(e) => json!({ "ok": false, "error": e }),
    }
}

/// Runs the script against a simulator of `model`; returns its report and the simulator.
async fn run_session(model: SimulatedModel) -> (Value, Simulator) {
    let python = python::python_with("gsmmodem");
    let mut cfg = SimulatorConfig::new(model);
    // The far end answers when the script says so, and the network confirms delivery when
    // the script asks.
    cfg.dial.default = DialOutcome::Manual;
    cfg.auto_status_report = None;
    let sim = Simulator::start(cfg).expect("simulator");
    let ctl = sim.control();
    // Waiting in storage before the client connects (no +CNMI yet: stored, not announced).
    ctl.send_sms("+15550002222", "Stored while you were away")
        .expect("stored SMS");
    // The model's power-on receive memory, which python-gsmmodem does not read by default
    // (it selects the first memory `AT+CPMS=?` lists): the script lists that memory by name.
    let memory = ctl
        .stored_by_memory()
        .first()
        .map(|(memory, ..)| memory.clone())
        .expect("the stored SMS is in a memory");
    let mut child = Command::new(&python)
        .arg(script())
        .arg(sim.at_path())
        .arg(model.vendor_profile_id())
        .arg(&memory)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", python.display()));
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(String::new()));
    let log_w = Arc::clone(&log);
    let drain = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf).await;
        log_w.lock().push_str(&String::from_utf8_lossy(&buf));
    });
    let mut report = None;
    let mut reported = 0;
    let talk = async {
        let mut lines = BufReader::new(stdout).lines();
        while let Some(line) = lines.next_line().await.expect("script stdout") {
            let req: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a request: {line:?}: {e}"));
            let reply = serve(&ctl, &req, &mut report, &mut reported).await;
            stdin
                .write_all(format!("{reply}\n").as_bytes())
                .await
                .expect("script stdin");
        }
        child.wait().await.expect("script exit")
    };
    let status = tokio::time::timeout(SESSION, talk).await;
    let _ = drain.await;
    let log = log.lock().clone();
    match status {
        Ok(s) if s.success() => {
            if std::env::var_os("FLOWGATE_PYLOG").is_some() {
                eprintln!("{log}");
            }
        }
        Ok(s) => panic!("python-gsmmodem session failed ({s}):\n{log}"),
        Err(_) => panic!("python-gsmmodem session timed out:\n{log}"),
    }
    let report = report.unwrap_or_else(|| panic!("no report from the script:\n{log}"));
    (report, sim)
}

/// `want` appear in `have` in this order (with anything between).
fn in_order(have: &[String], want: &[&str]) -> bool {
    let mut it = have.iter();
    want.iter().all(|w| it.any(|h| h == w))
}

fn call(r: &SimulatedCallRecord) -> (Direction, &str, bool, Option<&str>) {
    (
        r.direction,
        r.number.as_str(),
        r.answered,
        r.ended_by.as_deref(),
    )
}

async fn full_session(model: SimulatedModel) {
    let (report, sim) = run_session(model).await;
    let ctl = sim.control();

    // The client's own init sequence went through (python-gsmmodem `GsmModem.connect`).
    let commands = ctl.commands();
    let mut init = vec![
        "ATZ",
        "ATE0",
        "AT+CFUN?",
        "AT+CMEE=1",
        "AT+CPIN?",
        "AT+CLAC",
    ];
    if model == SimulatedModel::HuaweiE1550 {
        init.extend(["AT^CVOICE=0", "AT^USSDMODE=0"]);
    }
    if model == SimulatedModel::Sim7600 {
        init.push("AT+DDET=1");
    }
    init.extend([
        "AT+COPS=3,0",
        "AT+CMGF=0",
        "AT+CSMP=49,167,0,0",
        "AT+CPMS=?",
        "AT+CNMI=2,1,0,2",
        "AT+CLIP=1",
        "AT+CRC=1",
        "AT+CVHU=0",
    ]);
    assert!(in_order(&commands, &init), "init {init:?} in {commands:#?}");
    for c in [
        "AT+CMGF=1",
        "AT+CSCS=?",
        "AT+CSCS=\"UCS2\"",
        "AT+CMGL=\"ALL\"",
    ] {
        assert!(commands.iter().any(|x| x == c), "{c} in {commands:#?}");
    }

    // What the client read: identity and the messages, as the simulator holds them.
    let id = &report["identity"];
    let want = SimulatorConfig::new(model);
    assert_eq!(id["imei"], json!(want.imei));
    assert_eq!(id["imsi"], json!(want.imsi));
    assert_eq!(id["network"], json!(want.operator));
    assert_eq!(id["own_number"], json!(want.own_number));
    assert_eq!(id["signal"], json!(want.rssi));
    assert_eq!(id["smsc"], json!("+15550000000"));
    assert_eq!(
        report["text_mode"]["stored"],
        json!("Stored while you were away")
    );
    assert_eq!(report["text_mode"]["received"], json!("Hello in text mode"));
    let received = report["pdu_mode"]["received"].as_str().unwrap_or("");
    assert!(
        received.contains('😀') && received.ends_with("Ende 👍"),
        "{received}"
    );

    // What the client sent: text mode, then PDU mode (multipart UCS2 with emoji, GSM 7-bit).
    let sent = ctl.sent_messages();
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(
        sent[0],
        ("+15551110001".to_owned(), "Text mode out".to_owned())
    );
    assert_eq!(sent[1].0, "+15551110002");
    assert!(
        sent[1].1.starts_with("Antwort aus Python 🙂 ") && sent[1].1.contains(" 🎉 "),
        "{:?}",
        sent[1].1
    );
    assert!(sent[1].1.ends_with(" Ende ✅"), "{:?}", sent[1].1);
    assert_eq!(
        sent[2],
        (
            "+15551110003".to_owned(),
            "Plain GSM 7-bit, one part".to_owned()
        )
    );
    let parts = ctl.sent_sms();
    assert!(parts.iter().all(|p| p.status_report), "{parts:?}");
    assert!(
        parts.iter().filter(|p| p.concat.is_some()).count() >= 2,
        "{parts:?}"
    );
    // The client deleted everything it read, reports included.
    assert_eq!(ctl.stored(), Vec::new());

    // USSD and calls.
    assert_eq!(
        ctl.view(|v| v.ussd_requests().to_vec()),
        vec!["*100#", "1", "*101#"]
    );
    assert_eq!(ctl.dialled(), vec!["+15553330001", "+15553330002"]);
    assert_eq!(ctl.dtmf_sent(), "12#");
    let log = ctl.call_log();
    let calls: Vec<_> = log.iter().map(call).collect();
    use Direction::{Incoming, Outgoing};
    assert_eq!(
        calls,
        vec![
            (Outgoing, "+15553330001", true, Some("gateway")),
            (Outgoing, "+15553330002", true, Some("remote")),
            (Incoming, "+15557654321", true, Some("remote")),
            (Incoming, "+15557654322", false, Some("remote")),
            (Incoming, "+15557654323", true, Some("gateway")),
        ]
    );
    assert_eq!(
        report["calls"],
        json!(["+15557654321", "+15557654322", "+15557654323"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_gsmmodem_session_quectel_ec25() {
    full_session(SimulatedModel::QuectelEc25).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_gsmmodem_session_huawei_e1550() {
    full_session(SimulatedModel::HuaweiE1550).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_gsmmodem_session_simcom_sim7600() {
    full_session(SimulatedModel::Sim7600).await;
}
