//! SMS through the driver against the simulator over a real pty: bursts, multipart, memory
//! full, direct delivery, status reports, reboots during a send, acknowledgement semantics.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use std::time::Duration;

use common::{Rig, WAIT};
use flowgate_board::modem::events::DeliveryState;
use flowgate_board::modem::{ModemEvent, OutgoingSms, SmsMode};
use flowgate_board::simulator::{FaultAction, SimulatedModel};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_of_100_arrives_once_in_order() {
    let mut rig = Rig::start(SimulatedModel::QuectelEc25).await;
    rig.ready().await;
    for i in 0..100 {
        rig.ctl
            .send_sms("+15557654321", &format!("burst message {i:03}"))
            .unwrap();
    }
    for i in 0..100 {
        let m = rig.next_sms().await;
        assert_eq!(
            m.text,
            format!("burst message {i:03}"),
            "message {i} out of order"
        );
        assert_eq!(m.sender, "+15557654321");
        assert!(m.complete);
        m.ack();
    }
    // Every message was deleted after its ack, nothing is held back, nothing more arrives.
    rig.ctl.wait_for_stored(0, WAIT).await.unwrap();
    assert_eq!(rig.ctl.view(|v| v.network_queue_len()), 0);
    assert!(
        rig.sms.try_recv().is_err(),
        "a message was handed out twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_out_of_order() {
    let mut rig = Rig::start(SimulatedModel::QuectelEc25).await;
    rig.ready().await;
    let text: String = (0..400)
        .map(|i| char::from(b'a' + u8::try_from(i % 26).unwrap()))
        .collect();
    let pdus = rig.ctl.encode_sms("+4915112345678", &text).unwrap();
    assert_eq!(pdus.len(), 3);
    for i in [2, 0, 1] {
        rig.ctl.send_pdu(&pdus[i]).unwrap();
    }
    let m = rig.next_sms().await;
    assert_eq!(m.text, text);
    assert_eq!(m.parts, 3);
    assert_eq!(m.storage.len(), 3);
    assert!(m.complete);
    m.ack();
    rig.ctl.wait_for_stored(0, WAIT).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incomplete_multipart_after_timeout() {
    let mut rig = Rig::start_with(SimulatedModel::QuectelEc25, |_, mc| {
        mc.sms.multipart_timeout_ms = 300
    })
    .await;
    rig.ready().await;
    let text = "x".repeat(320);
    let pdus = rig.ctl.encode_sms("+4915112345678", &text).unwrap();
    assert_eq!(pdus.len(), 3);
    rig.ctl.send_pdu(&pdus[0]).unwrap();
    let m = rig.next_sms().await;
    assert!(!m.complete);
    assert_eq!(m.missing_parts, vec![2, 3]);
    assert!(m.text.starts_with(&"x".repeat(153)));
    assert!(m.text.contains("[…]"));
    m.ack();
    rig.ctl.wait_for_stored(0, WAIT).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacked_message_is_released_and_handed_out_again() {
    let mut rig = Rig::start_with(SimulatedModel::QuectelEc25, |_, mc| {
        mc.sms.sweep_interval_ms = 1_000
    })
    .await;
    rig.ready().await;
    rig.ctl.send_sms("+15550000001", "keep me").unwrap();
    let first = rig.next_sms().await;
    let fp = first.fingerprint.clone();
    drop(first); // the caller failed to store it
    let again = rig.next_sms().await;
    assert_eq!(again.text, "keep me");
    assert_eq!(
        again.fingerprint, fp,
        "the fingerprint identifies the re-delivery"
    );
    again.ack();
    rig.ctl.wait_for_stored(0, WAIT).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlog_is_drained_at_start() {
    let mut rig = Rig::start_full(
        SimulatedModel::QuectelEc25,
        |_, _| {},
        |ctl| {
            // Stored before the gateway starts (CNMI not set yet: no +CMTI).
            ctl.send_sms("+15550000002", "old one").unwrap();
            ctl.send_sms("+15550000003", "old two").unwrap();
        },
    )
    .await;
    rig.ready().await;
    let a = rig.next_sms().await;
    let b = rig.next_sms().await;
    assert_eq!((a.text.as_str(), b.text.as_str()), ("old one", "old two"));
    a.ack();
    b.ack();
    rig.ctl.wait_for_stored(0, WAIT).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_full_is_reported_and_drained() {
    let mut rig = Rig::start_with(SimulatedModel::HuaweiE1550, |sc, _| sc.storage_slots = 3).await;
    rig.ready().await;
    for i in 0..5 {
        rig.ctl
            .send_sms("+15550000004", &format!("full {i}"))
            .unwrap();
    }
    let mem = rig
        .event("SmsMemoryFull", |e| match e {
            ModemEvent::SmsMemoryFull { mem } => Some(mem.clone()),
            _ => None,
        })
        .await;
    assert_eq!(mem, "SM");
    let mut texts = Vec::new();
    for _ in 0..5 {
        let m = rig.next_sms().await;
        texts.push(m.text.clone());
        m.ack();
    }
    assert_eq!(
        texts,
        vec!["full 0", "full 1", "full 2", "full 3", "full 4"]
    );
    rig.ctl.wait_for_stored(0, WAIT).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_delivery_is_acknowledged_with_cnma_after_ack() {
    let mut rig = Rig::start_with(SimulatedModel::QuectelEc25, |_, mc| {
        mc.sms.mode = SmsMode::Direct
    })
    .await;
    rig.ready().await;
    rig.ctl.send_sms("+15550000005", "direct hello").unwrap();
    let m = rig.next_sms().await;
    assert_eq!(m.text, "direct hello");
    assert!(m.storage.is_empty());
    assert!(
        !rig.ctl.commands().iter().any(|c| c == "AT+CNMA"),
        "CNMA before the ack"
    );
    m.ack();
    rig.ctl.wait_for_command("AT+CNMA", 1, WAIT).await.unwrap();
    assert!(rig.ctl.stored().is_empty());
}

/// Direct delivery acknowledges each part of a multipart message before the next comes, long
/// before the whole message can be stored: each part is kept on the modem first, so a crash
/// in the middle of the message loses none of the acknowledged parts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_multipart_parts_survive_a_crash_before_the_message_is_complete() {
    let mut rig = Rig::start_with(SimulatedModel::QuectelEc25, |_, mc| {
        mc.sms.mode = SmsMode::Direct
    })
    .await;
    rig.ready().await;
    let text = "part ".repeat(80);
    let pdus = rig.ctl.encode_sms("+15550000006", &text).unwrap();
    assert_eq!(pdus.len(), 3);
    for p in &pdus[..2] {
        rig.ctl.send_pdu(p).unwrap();
    }
    rig.ctl.wait_for_command("AT+CNMA", 2, WAIT).await.unwrap();
    // Each part was stored on the modem before it was acknowledged.
    let cmds = rig.ctl.commands();
    let first_cnma = cmds.iter().position(|c| c == "AT+CNMA").unwrap();
    assert!(
        cmds[..first_cnma].iter().any(|c| c.starts_with("AT+CMGW=")),
        "acknowledged before it was stored: {cmds:?}"
    );
    rig.ctl.wait_for_stored(2, WAIT).await.unwrap();
    // The gateway dies with two acknowledged parts; the third arrives after the restart.
    rig.crash_and_restart().await;
    rig.ready().await;
    rig.ctl.send_pdu(&pdus[2]).unwrap();
    let m = rig.next_sms().await;
    assert!(m.complete, "{:?}", m.missing_parts);
    assert_eq!(m.text, text);
    m.ack();
    rig.ctl.wait_for_stored(0, WAIT).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_long_text_and_match_status_reports() {
    let mut rig = Rig::start(SimulatedModel::QuectelEc25).await;
    rig.ready().await;
    let text = format!("{} — with a dash and an emoji 🙂", "long text ".repeat(15));
    let sent = rig
        .modem
        .send_sms(OutgoingSms::new("+15551112222", text.clone()).with_key("msg-1"))
        .await
        .unwrap();
    assert_eq!(sent.parts, 3, "UCS2 text of {} chars", text.chars().count());
    assert_eq!(sent.message_references.len(), 3);
    let parts = rig.ctl.wait_for_sent_sms(3, WAIT).await.unwrap();
    assert!(
        parts
            .iter()
            .all(|p| p.to == "+15551112222" && p.status_report)
    );
    assert_eq!(
        rig.ctl.sent_messages(),
        vec![("+15551112222".to_owned(), text)]
    );
    // The simulator reports each part delivered (+CDS); each report carries our key.
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let r = rig
            .event("status report", |e| match e {
                ModemEvent::StatusReport(r) => Some(r.clone()),
                _ => None,
            })
            .await;
        assert_eq!(r.key.as_deref(), Some("msg-1"));
        assert_eq!(r.delivery, DeliveryState::Delivered);
        assert_eq!(r.parts, Some(3));
        seen.push(r.message_reference);
    }
    seen.sort_unstable();
    let mut refs = sent.message_references.clone();
    refs.sort_unstable();
    assert_eq!(seen, refs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_status_reports_huawei() {
    let mut rig = Rig::start(SimulatedModel::HuaweiE1550).await;
    rig.ready().await;
    let sent = rig
        .modem
        .send_sms(OutgoingSms::new("+15551113333", "report me").with_key("k"))
        .await
        .unwrap();
    let r = rig
        .event("status report", |e| match e {
            ModemEvent::StatusReport(r) => Some(r.clone()),
            _ => None,
        })
        .await;
    assert_eq!(r.message_reference, sent.message_references[0]);
    assert_eq!(r.key.as_deref(), Some("k"));
    assert_eq!(r.recipient, "+15551113333");
    // The stored report (+CDSI) was read and deleted.
    rig.ctl.wait_for_stored(0, WAIT).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reboot_in_the_middle_of_a_send_retries_and_loses_nothing() {
    let mut rig = Rig::start(SimulatedModel::QuectelEc25).await;
    rig.ready().await;
    assert_eq!(rig.modem.init_count(), 1);
    rig.ctl.fail_next("AT+CMGS", FaultAction::Reboot, 1);
    let sent = rig
        .modem
        .send_sms(OutgoingSms::new("+15552223333", "survives a reboot"))
        .await
        .unwrap();
    assert_eq!(sent.message_references.len(), 1);
    assert_eq!(
        rig.ctl.sent_messages(),
        vec![("+15552223333".to_owned(), "survives a reboot".to_owned())]
    );
    assert_eq!(rig.ctl.view(|v| v.reboots()), 1);
    assert!(
        rig.modem.init_count() >= 2,
        "the driver re-initialised after RDY"
    );
    // Receiving still works after the re-init.
    rig.ctl.send_sms("+15550000009", "after reboot").unwrap();
    let m = rig.next_sms().await;
    assert_eq!(m.text, "after reboot");
    m.ack();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_errors_are_typed() {
    let rig = Rig::start(SimulatedModel::QuectelEc25).await;
    rig.ready().await;
    rig.ctl.fail_next(
        "AT+CMGS",
        FaultAction::Error("+CMS ERROR: 330".to_owned()),
        1,
    );
    let e = rig
        .modem
        .send_sms(OutgoingSms::new("+15552223333", "x"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(330));
    assert!(e.to_string().contains("SMSC address unknown"), "{e}");
    assert!(!e.is_transient());
    let e = rig
        .modem
        .send_sms(OutgoingSms::new("not a number!", "x"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("recipient"), "{e}");
    let e = rig
        .modem
        .send_sms(OutgoingSms::new("+1555", ""))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
    // Nothing broke: a normal send works.
    let _ = tokio::time::timeout(
        Duration::from_secs(20),
        rig.modem.send_sms(OutgoingSms::new("+1555", "ok")),
    )
    .await
    .unwrap()
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsolicited_cms_322_is_a_full_memory() {
    let mut rig = Rig::start(SimulatedModel::QuectelEc25).await;
    // Unsolicited while idle: after the whole start-up sweep (ME, SM and SR listed) and call
    // poll. Sent while a sweep command was still pending it would end that command instead
    // (a final result), and no full memory would be reported.
    rig.settled(3).await;
    rig.ctl.send_urc("+CMS ERROR: 322").unwrap();
    let mem = rig
        .event("SmsMemoryFull", |e| match e {
            ModemEvent::SmsMemoryFull { mem } => Some(mem.clone()),
            _ => None,
        })
        .await;
    assert_eq!(mem, "ME");
    // The drain is a sweep.
    rig.ctl
        .wait_for_command("AT+CMGL=4", 4, WAIT)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_arriving_while_the_modem_recovers_are_read_afterwards() {
    let mut rig = Rig::start(SimulatedModel::QuectelEc25).await;
    rig.ready().await;
    // A reboot: the message is stored while the driver re-initialises (CNMI is reset, so
    // there is no +CMTI); the sweep after the re-init finds it.
    rig.ctl.reboot().unwrap();
    rig.ctl
        .send_sms("+15550000008", "stored during the reboot")
        .unwrap();
    let m = rig.next_sms().await;
    assert_eq!(m.text, "stored during the reboot");
    m.ack();
    rig.ctl.wait_for_stored(0, WAIT).await.unwrap();
}

/// A status report that reaches a modem whose memory is full is held back by the network
/// and delivered once there is room (3GPP 23.040: the SC keeps what the MS refused for
/// memory capacity), as held-back messages are: the gateway still learns of the delivery.
/// (Before, the simulated modem dropped it, and the reply stayed `sent` for good.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_report_waits_for_room_in_a_full_memory() {
    let mut rig = Rig::start_with(SimulatedModel::QuectelEc25, |_, mc| {
        // Sent at once with AT+CMGS: a full memory refuses AT+CMGW.
        mc.sms.store_and_send = false;
    })
    .await;
    rig.ready().await;
    let mut sim_events = rig.ctl.subscribe();
    rig.ctl.set_memory_full(true).unwrap();
    let sent = rig
        .modem
        .send_sms(OutgoingSms::new("+15551114444", "report me later").with_key("late"))
        .await
        .unwrap();
    let mr = sent.message_references[0];
    tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(flowgate_board::simulator::SimulatorEvent::StatusReportSent { mr: m }) =
                sim_events.recv().await
                && m == mr
            {
                return;
            }
        }
    })
    .await
    .expect("the network sent the report");
    assert!(rig.ctl.reports_lost().is_empty(), "held, not dropped");
    rig.ctl.set_memory_full(false).unwrap();
    let r = rig
        .event("status report", |e| match e {
            ModemEvent::StatusReport(r) => Some(r.clone()),
            _ => None,
        })
        .await;
    assert_eq!(r.message_reference, mr);
    assert_eq!(r.key.as_deref(), Some("late"));
    rig.ctl.wait_for_stored(0, WAIT).await.unwrap();
}
