use std::collections::HashMap;
use std::time::Duration;

use flowgate_board::simulator::{Simulator, SimulatorConfig};
use flowgate_tests::{Api, Process, SIM_NUMBER, WAIT, library_flow, write_config};
use serde_json::Value;

const BURST: usize = 200;

/// Every record of a paged list.
async fn all(api: &Api, path: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = api
            .get(&format!("{path}?page_size=100&page_token={token}"))
            .await;
        out.extend(page["result"].as_array().cloned().unwrap_or_default());
        match page["next_page_token"].as_str() {
            Some(t) if !t.is_empty() => token = t.to_owned(),
            _ => return out,
        }
    }
}

fn sender(i: usize) -> String {
    format!("+1555300{i:04}")
}

/// `kill -9` in the middle of a 200-SMS burst, restart: every message is stored once and
/// answered exactly once, never with `AT+CMGS`. The simulated modem lives in the test process, so — like real hardware —
/// it keeps its stored messages while the gateway process dies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_an_sms_burst_loses_nothing_and_answers_once() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimulatorConfig {
        link: Some(dir.path().join("modem-at")),
        own_number: SIM_NUMBER.into(),
        ..SimulatorConfig::default()
    })
    .unwrap();
    let sim_control = sim.control();
    let board = dir.path().join("board.toml");
    std::fs::write(
        &board,
        format!(
            "name = \"crash-test\"\n[[modem]]\nid = \"m0\"\nprofile = \"quectel-ec25\"\nport = {:?}\n",
            dir.path().join("modem-at")
        ),
    )
    .unwrap();
    let config = write_config(dir.path(), &board);
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_flowgate-testd"));

    let first = Process::start(binary, &config);
    let token = std::fs::read_to_string(dir.path().join("data/api-token")).unwrap();
    let api = Api::new(&first.base, token.trim());
    api.wait_modems_ready().await;
    let bot = api.create_flow(library_flow("sms-keyword-bot")).await;
    api.bind(None, Some(bot)).await;

    for i in 0..BURST {
        sim_control.send_sms(&sender(i), "HOURS").unwrap();
    }
    // Kill the gateway while the burst is being worked through.
    sim_control
        .wait_for_sent_sms(BURST / 5, WAIT)
        .await
        .unwrap();
    first.kill();

    let second = Process::start(binary, &config);
    let api = Api::new(&second.base, token.trim());
    sim_control
        .wait_for_sent_sms(BURST, Duration::from_secs(120))
        .await
        .unwrap();
    let messages = api
        .wait_for("every message handled", || async {
            let messages = all(&api, "/v1.0/messages").await;
            let inbound = messages
                .iter()
                .filter(|m| m["direction"] == "inbound")
                .count();
            // Delivered: the status reports of replies sent just before the kill arrived
            // while the gateway was down and were read from the modem after the restart.
            let delivered = messages
                .iter()
                .filter(|m| m["direction"] == "outbound")
                .filter(|m| m["targets"][0]["status"] == "delivered")
                .count();
            (inbound >= BURST && delivered >= BURST).then_some(messages)
        })
        .await;
    // Stored once each: no re-delivery after the restart became a second message.
    let mut stored: HashMap<String, usize> = HashMap::new();
    for m in messages.iter().filter(|m| m["direction"] == "inbound") {
        *stored
            .entry(m["source"]["target"].as_str().unwrap().to_owned())
            .or_default() += 1;
        assert_eq!(m["flow_state"], "started", "{m}");
    }
    assert_eq!(stored.len(), BURST);
    assert!(stored.values().all(|&n| n == 1), "an SMS was stored twice");
    assert!(
        second.terminate(),
        "the daemon did not exit cleanly on SIGTERM"
    );

    // Answered once each.
    let mut replies: HashMap<String, usize> = HashMap::new();
    for (to, text) in sim_control.sent_messages() {
        assert_eq!(text, "We are open Monday to Friday, 9:00 to 17:00.");
        *replies.entry(to).or_default() += 1;
    }
    // Replies go out through modem storage (AT+CMGW, then AT+CMSS), which a restart can
    // check: exactly once. They are written to a memory of their own (the burst fills the
    // receive memory), so none ever falls back to AT+CMGS.
    for i in 0..BURST {
        let n = replies.get(&sender(i)).copied().unwrap_or(0);
        assert_eq!(n, 1, "{n} replies to {}", sender(i));
    }
    assert_eq!(sim_control.cmgs_sends(), 0, "a reply went out with AT+CMGS");
    assert_eq!(replies.len(), BURST);
    // Nothing is left on the modem: every stored message was deleted after it was persisted.
    // A status report is deleted from the modem only after the runtime applied it, which
    // can come just after the API shows it delivered.
    if sim_control.wait_for_stored(0, WAIT).await.is_err() {
        panic!(
            "messages left on the modem: {:?}",
            sim_control
                .stored_by_memory()
                .iter()
                .map(|(memory, index, stat, _)| (memory.clone(), *index, *stat))
                .collect::<Vec<_>>()
        );
    }
    drop(sim);
}
