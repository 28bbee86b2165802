use std::collections::HashMap;
use std::time::Duration;

use flowgate_board::crashpoint;
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

/// The simulated modem in the test process (so — like real hardware — it keeps its stored
/// messages while the gateway process dies), a board profile for it, and a daemon config.
struct Rig {
    dir: tempfile::TempDir,
    sim: Simulator,
    config: std::path::PathBuf,
}

impl Rig {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sim = Simulator::start(SimulatorConfig {
            link: Some(dir.path().join("modem-at")),
            own_number: SIM_NUMBER.into(),
            ..SimulatorConfig::default()
        })
        .unwrap();
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
        Self { dir, sim, config }
    }

    /// Starts a daemon (with `flowgate-testd` switches in `env`) and its API client.
    fn daemon(&self, env: &[(&str, &str)]) -> (Process, Api) {
        let binary = std::path::Path::new(env!("CARGO_BIN_EXE_flowgate-testd"));
        let process = Process::start_with_env(binary, &self.config, env);
        let token = std::fs::read_to_string(self.dir.path().join("data/api-token")).unwrap();
        let api = Api::new(&process.base, token.trim());
        (process, api)
    }

    /// The keyword bot bound to the modem's number.
    async fn bind_bot(api: &Api) {
        api.wait_modems_ready().await;
        let bot = api.create_flow(library_flow("sms-keyword-bot")).await;
        api.bind(None, Some(bot)).await;
    }

    /// Nothing left on the modem: every stored message and report was deleted after it was
    /// persisted (a report is deleted just after the API shows it applied, so wait).
    async fn modem_storage_empties(&self) {
        let control = self.sim.control();
        if control.wait_for_stored(0, WAIT).await.is_err() {
            panic!(
                "messages left on the modem: {:?}",
                control
                    .stored_by_memory()
                    .iter()
                    .map(|(memory, index, stat, _)| (memory.clone(), *index, *stat))
                    .collect::<Vec<_>>()
            );
        }
    }
}

/// `kill -9` in the middle of a 200-SMS burst, restart: every message is stored once and
/// answered exactly once, never with `AT+CMGS`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_an_sms_burst_loses_nothing_and_answers_once() {
    let rig = Rig::new();
    let sim_control = rig.sim.control();
    let (first, api) = rig.daemon(&[]);
    Rig::bind_bot(&api).await;

    for i in 0..BURST {
        sim_control.send_sms(&sender(i), "HOURS").unwrap();
    }
    // Kill the gateway while the burst is being worked through.
    sim_control
        .wait_for_sent_sms(BURST / 5, WAIT)
        .await
        .unwrap();
    first.kill();

    let (second, api) = rig.daemon(&[]);
    sim_control
        .wait_for_sent_sms(BURST, Duration::from_secs(120))
        .await
        .unwrap();
    // What the check saw last, for the failure message.
    let seen = std::sync::Mutex::new(String::new());
    let handled = api
        .try_wait_for(|| async {
            let messages = all(&api, "/v1.0/messages").await;
            let inbound = messages
                .iter()
                .filter(|m| m["direction"] == "inbound")
                .count();
            // Delivered: the status reports of replies sent just before the kill arrived
            // while the gateway was down and were read from the modem after the restart.
            let outbound: Vec<&Value> = messages
                .iter()
                .filter(|m| m["direction"] == "outbound")
                .collect();
            let undelivered: Vec<String> = outbound
                .iter()
                .filter(|m| m["targets"][0]["status"] != "delivered")
                .map(|m| {
                    let t = &m["targets"][0];
                    format!(
                        "{} {} status={} parts={} references={} delivered_parts={} attempts={} prepared={} error={:?}",
                        m["id"],
                        t["destination"]["target"],
                        t["status"],
                        t["parts"],
                        t["references"],
                        t["delivered_parts"],
                        t["attempts"],
                        !t["prepared"].is_null(),
                        t["error"].as_str().unwrap_or_default()
                    )
                })
                .collect();
            let delivered = outbound.len() - undelivered.len();
            *seen.lock().unwrap() = format!(
                "inbound {inbound}/{BURST}, outbound {}, delivered {delivered}/{BURST}; not delivered: {undelivered:#?}",
                outbound.len()
            );
            (inbound >= BURST && delivered >= BURST).then_some(messages)
        })
        .await;
    let Some(messages) = handled else {
        panic!(
            "timed out waiting for every message handled: {}; reports the modem dropped (MRs): {:?}; modem storage: {:?}",
            seen.lock().unwrap(),
            sim_control.reports_lost(),
            sim_control
                .stored_by_memory()
                .iter()
                .map(|(memory, index, stat, _)| (memory.clone(), *index, *stat))
                .collect::<Vec<_>>()
        );
    };
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
    // Nothing is left on the modem: every stored message and report was deleted after it
    // was persisted. Checked while the daemon runs: the last reports are deleted just after
    // the API shows them applied, and a SIGTERM in between leaves them (read, stat 1) for
    // the next start to read again (1 of 80 runs under load failed so).
    rig.modem_storage_empties().await;
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
}

/// The daemon dies (SIGKILL, from a crash point of `flowgate-testd`) at one step of the SMS
/// pipeline while a keyword reaches the bot; a second daemon takes over. Whatever the step:
/// the message is stored once, its flow ran once, the reply went out exactly once and from
/// storage, its delivery report is applied, and nothing is left on the modem.
async fn crash_at(point: &'static str) {
    assert!(crashpoint::POINTS.contains(&point), "{point}");
    let rig = Rig::new();
    let control = rig.sim.control();
    let (first, api) = rig.daemon(&[("FLOWGATE_TESTD_CRASH_AT", point)]);
    Rig::bind_bot(&api).await;
    control.send_sms("+15553009999", "HOURS").unwrap();
    assert!(
        first.wait_death(WAIT).await,
        "the daemon never reached {point}"
    );

    let (second, api) = rig.daemon(&[]);
    let messages = api
        .wait_for("the message answered and the answer delivered", || async {
            let messages = all(&api, "/v1.0/messages").await;
            let done = messages
                .iter()
                .any(|m| m["direction"] == "outbound" && m["targets"][0]["status"] == "delivered");
            done.then_some(messages)
        })
        .await;
    let inbound: Vec<&Value> = messages
        .iter()
        .filter(|m| m["direction"] == "inbound")
        .collect();
    assert_eq!(inbound.len(), 1, "{point}: {inbound:?}");
    assert_eq!(inbound[0]["flow_state"], "started", "{point}");
    let outbound = messages
        .iter()
        .filter(|m| m["direction"] == "outbound")
        .count();
    assert_eq!(outbound, 1, "{point}: the flow ran more than once");
    assert_eq!(
        control.sent_messages(),
        vec![(
            "+15553009999".to_owned(),
            "We are open Monday to Friday, 9:00 to 17:00.".to_owned()
        )],
        "{point}"
    );
    assert_eq!(
        control.cmgs_sends(),
        0,
        "{point}: a reply went out with AT+CMGS"
    );
    rig.modem_storage_empties().await;
    assert!(second.terminate(), "{point}: no clean exit on SIGTERM");
}

macro_rules! crash_tests {
    ($($name:ident => $point:expr;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                crash_at($point).await;
            }
        )*
        /// The points the tests above crash at.
        const TESTED: &[&str] = &[$($point),*];
    };
}

crash_tests! {
    a_crash_after_the_message_is_stored_before_the_modem_deletes_it => crashpoint::INBOUND_STORED;
    a_crash_after_the_modem_deleted_the_message => crashpoint::MODEM_DELETED;
    a_crash_after_the_flow_is_stored_before_it_runs => crashpoint::FLOW_STARTED;
    a_crash_after_the_reply_is_written_to_the_modem_before_it_is_recorded => crashpoint::REPLY_PREPARED;
    a_crash_after_the_reply_is_recorded_before_it_is_sent => crashpoint::REPLY_STORED;
    a_crash_after_the_reply_went_out_before_it_is_recorded => crashpoint::REPLY_SENT;
    a_crash_after_the_report_is_applied_before_the_modem_deletes_it => crashpoint::REPORT_APPLIED;
}

/// Every crash point has its test above, in pipeline order (a new point without one fails
/// here).
#[test]
fn every_crash_point_is_tested() {
    assert_eq!(TESTED, crashpoint::POINTS);
}
