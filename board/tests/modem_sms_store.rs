//! Exactly-once SMS sending through modem storage (`AT+CMGW` → persist → `AT+CMSS`),
//! against the simulator over a real pty: gateway crashes before and after the modem sent,
//! multipart messages cut in the middle, orphans of a crash before the slots were persisted,
//! a gateway that died at the `> ` prompt, separate receive and write memories, and a full
//! or refusing storage deferring or failing a message rather than falling back to `AT+CMGS`.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use common::{Rig, WAIT, fast_timeouts};
use flowgate_board::modem::{ModemEvent, OutgoingSms, PartOutcome, PreparedSms, StorageSlot};
use flowgate_board::simulator::{FaultAction, SimulatedModel};

const TO: &str = "+15551230001";

/// What the runtime does between `prepare_sms` and `send_prepared`: persist the value.
fn persist(p: &PreparedSms) -> PreparedSms {
    serde_json::from_str(&serde_json::to_string(p).unwrap()).unwrap()
}

/// Prepares a reply to [`TO`] in modem storage (it must succeed).
async fn prepare(rig: &Rig, text: impl Into<String>) -> PreparedSms {
    rig.modem
        .prepare_sms(OutgoingSms::new(TO, text))
        .await
        .unwrap()
}

fn long_text() -> String {
    (0..400)
        .map(|i| char::from(b'a' + u8::try_from(i % 26).unwrap()))
        .collect()
}

fn count(rig: &Rig, prefix: &str) -> usize {
    rig.ctl
        .commands()
        .iter()
        .filter(|c| c.starts_with(prefix))
        .count()
}

/// Stored messages outside the status-report memory (reports of what was sent arrive there
/// on their own schedule and are deleted once read).
fn on_modem(rig: &Rig) -> Vec<(u32, u8, String)> {
    rig.ctl
        .stored_by_memory()
        .into_iter()
        .filter(|(mem, ..)| mem != "SR")
        .map(|(_, i, s, p)| (i, s, p))
        .collect()
}

/// Waits for the start-up sweep of the driver started after `before` sweeps.
async fn swept(rig: &Rig, before: usize) {
    rig.ctl
        .wait_for_command("AT+CMGL=4", before + 1, WAIT)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_then_send_goes_out_once_from_storage() {
    let mut rig = Rig::start(SimulatedModel::QuectelEc25).await;
    rig.ready().await;
    let prepared = rig
        .modem
        .prepare_sms(OutgoingSms::new(TO, "stored first").with_key("k1"))
        .await
        .unwrap();
    assert!(prepared.is_crash_safe());
    assert_eq!(prepared.part_count(), 1);
    assert_eq!(prepared.modem, "m0");
    // The EC25 receives into ME; outgoing messages get the SIM's memory of their own.
    assert_eq!(prepared.mem, "SM");
    assert_eq!(rig.ctl.stored_by_memory()[0].0, "SM");
    let stored = on_modem(&rig);
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (Some(stored[0].0), stored[0].1),
        (prepared.parts[0].index, 2),
        "stored unsent"
    );
    assert!(
        rig.ctl.sent_sms().is_empty(),
        "nothing goes out before the send"
    );

    let persisted = persist(&prepared);
    let sent = rig.modem.send_prepared(&persisted).await.unwrap();
    assert_eq!(sent.key.as_deref(), Some("k1"));
    assert_eq!(sent.message_references.len(), 1);
    assert_eq!(
        sent.outcomes,
        vec![PartOutcome::Sent {
            mr: sent.message_references[0]
        }]
    );
    assert_eq!(
        rig.ctl.sent_messages(),
        vec![(TO.to_owned(), "stored first".to_owned())]
    );
    assert!(on_modem(&rig).is_empty(), "the slot is deleted once sent");
    assert_eq!(count(&rig, "AT+CMSS="), 1);
    assert_eq!(count(&rig, "AT+CMGS="), 0);
    assert_eq!(
        count(&rig, "AT+CMGR="),
        0,
        "a slot this driver just wrote needs no read-back"
    );
    // The status report of the stored send carries the key, as for AT+CMGS.
    let report = rig
        .event("status report", |e| match e {
            ModemEvent::StatusReport(r) => Some(r.clone()),
            _ => None,
        })
        .await;
    assert_eq!(report.key.as_deref(), Some("k1"));
    assert_eq!(report.message_reference, sent.message_references[0]);

    // The runtime died before it recorded the result and sends it again: nothing goes out.
    let again = rig.modem.send_prepared(&persisted).await.unwrap();
    assert_eq!(again.outcomes, vec![PartOutcome::Gone]);
    assert!(again.message_references.is_empty());
    assert_eq!(rig.ctl.sent_sms().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_before_the_send_then_resume_sends_once() {
    let mut rig = Rig::start(SimulatedModel::QuectelEc25).await;
    rig.ready().await;
    let prepared = persist(
        &rig.modem
            .prepare_sms(OutgoingSms::new(TO, "after the crash"))
            .await
            .unwrap(),
    );
    let sweeps = count(&rig, "AT+CMGL=4");
    rig.crash_and_restart().await;
    rig.ready().await;
    swept(&rig, sweeps).await;
    assert_eq!(on_modem(&rig).len(), 1, "the unsent message stays stored");

    let sent = rig.modem.send_prepared(&prepared).await.unwrap();
    assert!(matches!(sent.outcomes[..], [PartOutcome::Sent { .. }]));
    assert_eq!(
        rig.ctl.sent_messages(),
        vec![(TO.to_owned(), "after the crash".to_owned())]
    );
    let index = prepared.parts[0].index.unwrap();
    assert_eq!(
        count(&rig, &format!("AT+CMGR={index}")),
        1,
        "the new driver reads the slot back before sending"
    );
    assert!(on_modem(&rig).is_empty());
    assert!(
        rig.sms.try_recv().is_err(),
        "a stored outgoing message is never an incoming one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_modem_sent_but_before_its_reply_does_not_send_twice() {
    let mut rig = Rig::start(SimulatedModel::QuectelEc25).await;
    rig.ready().await;
    let prepared = persist(
        &rig.modem
            .prepare_sms(OutgoingSms::new(TO, "exactly once"))
            .await
            .unwrap(),
    );
    // The modem carries AT+CMSS out, but the gateway dies before its reply arrives.
    rig.ctl.fail_next("AT+CMSS", FaultAction::NoReply, 1);
    let modem = rig.modem.clone();
    let p = prepared.clone();
    let in_flight = tokio::spawn(async move { modem.send_prepared(&p).await });
    rig.ctl.wait_for_sent_sms(1, WAIT).await.unwrap();
    assert_eq!(on_modem(&rig)[0].1, 3, "stored sent");
    let sweeps = count(&rig, "AT+CMGL=4");
    rig.crash_and_restart().await;
    assert!(
        in_flight.await.unwrap().is_err(),
        "the dead driver never learned the result"
    );
    rig.ready().await;
    // The new driver's sweep deletes the stat-3 slot: it went out, there is nothing to send.
    swept(&rig, sweeps).await;
    rig.ctl.wait_for_stored(0, WAIT).await.unwrap();

    let sent = rig.modem.send_prepared(&prepared).await.unwrap();
    assert_eq!(sent.outcomes, vec![PartOutcome::Gone]);
    assert_eq!(
        rig.ctl.sent_messages(),
        vec![(TO.to_owned(), "exactly once".to_owned())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_cmss_reply_within_one_driver_is_read_back_not_resent() {
    let rig = Rig::start_with(SimulatedModel::QuectelEc25, |_, mc| fast_timeouts(mc)).await;
    rig.ready().await;
    let prepared = prepare(&rig, "reply lost").await;
    rig.ctl.fail_next("AT+CMSS", FaultAction::NoReply, 1);
    // AT+CMSS times out, the driver resyncs, reads the slot (stat 3) and does not resend.
    let sent = rig.modem.send_prepared(&prepared).await.unwrap();
    assert_eq!(sent.outcomes, vec![PartOutcome::SentBefore]);
    assert!(sent.message_references.is_empty(), "its MR is unknown");
    assert_eq!(rig.ctl.sent_sms().len(), 1);
    assert!(on_modem(&rig).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_cut_in_the_middle_is_finished_after_the_restart() {
    let mut rig = Rig::start(SimulatedModel::QuectelEc25).await;
    rig.ready().await;
    let text = long_text();
    let prepared = persist(
        &rig.modem
            .prepare_sms(OutgoingSms::new(TO, text.clone()).with_key("multi"))
            .await
            .unwrap(),
    );
    assert_eq!(prepared.part_count(), 3);
    assert!(prepared.is_crash_safe());
    assert_eq!(on_modem(&rig).len(), 3);
    // Part 1 goes out and is deleted; part 2 goes out but its reply is lost to the crash;
    // part 3 never starts.
    rig.ctl.fail_after("AT+CMSS", 1, FaultAction::NoReply, 1);
    let modem = rig.modem.clone();
    let p = prepared.clone();
    let in_flight = tokio::spawn(async move { modem.send_prepared(&p).await });
    rig.ctl.wait_for_sent_sms(2, WAIT).await.unwrap();
    let sweeps = count(&rig, "AT+CMGL=4");
    rig.crash_and_restart().await;
    assert!(in_flight.await.unwrap().is_err());
    rig.ready().await;
    swept(&rig, sweeps).await;
    // Part 2 (stored sent) was cleaned up by the sweep; part 3 is still to send.
    rig.ctl.wait_for_stored(1, WAIT).await.unwrap();
    assert_eq!(on_modem(&rig)[0].1, 2);

    let sent = rig.modem.send_prepared(&prepared).await.unwrap();
    assert!(
        matches!(
            sent.outcomes[..],
            [
                PartOutcome::Gone,
                PartOutcome::Gone,
                PartOutcome::Sent { .. }
            ]
        ),
        "{:?}",
        sent.outcomes
    );
    assert_eq!(sent.parts, 3);
    assert_eq!(rig.ctl.sent_sms().len(), 3, "every part exactly once");
    assert_eq!(rig.ctl.sent_messages(), vec![(TO.to_owned(), text)]);
    assert!(on_modem(&rig).is_empty());
    // The part sent now reports with the key.
    let report = rig
        .event("status report", |e| match e {
            ModemEvent::StatusReport(r) if r.key.is_some() => Some(r.clone()),
            _ => None,
        })
        .await;
    assert_eq!(
        (report.key.as_deref(), report.part, report.parts),
        (Some("multi"), Some(3), Some(3))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_are_never_inbound_and_reconcile_deletes_them() {
    let mut rig = Rig::start(SimulatedModel::QuectelEc25).await;
    rig.ready().await;
    let kept = persist(
        &rig.modem
            .prepare_sms(OutgoingSms::new(TO, "persisted reply"))
            .await
            .unwrap(),
    );
    // Written, but the gateway died before it persisted the slots: an orphan.
    let orphan = rig
        .modem
        .prepare_sms(OutgoingSms::new("+15559990000", "never persisted"))
        .await
        .unwrap();
    let sweeps = count(&rig, "AT+CMGL=4");
    rig.crash_and_restart().await;
    rig.ready().await;
    swept(&rig, sweeps).await;
    assert_eq!(on_modem(&rig).len(), 2);

    // An incoming message is the only thing handed out: the sweep skipped both stat-2 slots.
    rig.ctl.send_sms("+15550000042", "hello in").unwrap();
    let m = rig.next_sms().await;
    assert_eq!(m.text, "hello in");
    m.ack();
    rig.ctl.wait_for_stored(2, WAIT).await.unwrap();

    let report = rig
        .modem
        .reconcile_outbound(std::slice::from_ref(&kept))
        .await
        .unwrap();
    let slot = |p: &PreparedSms| StorageSlot {
        mem: "SM".into(),
        index: p.parts[0].index.unwrap(),
    };
    assert_eq!(report.deleted.len(), 1);
    assert_eq!(report.deleted[0].slot, slot(&orphan));
    assert_eq!(report.deleted[0].stat, 2);
    assert_eq!(report.deleted[0].to.as_deref(), Some("+15559990000"));
    assert_eq!(report.deleted[0].text.as_deref(), Some("never persisted"));
    assert_eq!(report.kept.len(), 1);
    assert_eq!(report.kept[0].slot, slot(&kept));

    let sent = rig.modem.send_prepared(&kept).await.unwrap();
    assert!(matches!(sent.outcomes[..], [PartOutcome::Sent { .. }]));
    assert_eq!(
        rig.ctl.sent_messages(),
        vec![(TO.to_owned(), "persisted reply".to_owned())],
        "the orphan never went out"
    );
    assert!(on_modem(&rig).is_empty());
    assert!(rig.sms.try_recv().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_died_at_the_prompt_does_not_wedge_the_next_one() {
    let mut rig = Rig::start_with(SimulatedModel::QuectelEc25, |_, mc| fast_timeouts(mc)).await;
    rig.ready().await;
    // The dead process wrote `AT+CMGW=<n>` and never the PDU: the modem waits at `> `.
    let modem = rig.modem.clone();
    let hung = tokio::spawn(async move {
        modem
            .command("AT+CMGW=20,2", std::time::Duration::from_secs(30))
            .await
    });
    rig.ctl
        .wait_for_command("AT+CMGW=20,2", 1, WAIT)
        .await
        .unwrap();
    rig.crash_and_restart().await;
    assert!(hung.await.unwrap().is_err());
    // The next driver's AT is swallowed by the prompt; ESC gets the modem back.
    rig.ready().await;
    assert!(on_modem(&rig).is_empty(), "ESC stored nothing");
    let prepared = prepare(&rig, "works again").await;
    rig.modem.send_prepared(&prepared).await.unwrap();
    assert_eq!(
        rig.ctl.sent_messages(),
        vec![(TO.to_owned(), "works again".to_owned())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_storage_fails_the_message_and_never_uses_cmgs() {
    let rig = Rig::start(SimulatedModel::HuaweiE1550).await;
    rig.ready().await;
    rig.ctl.fail_next(
        "AT+CMGW",
        FaultAction::Error("COMMAND NOT SUPPORT".to_owned()),
        1,
    );
    let e = rig
        .modem
        .prepare_sms(OutgoingSms::new(TO, "no storage here"))
        .await
        .unwrap_err();
    assert!(!e.is_transient(), "{e}");
    // The refusal is remembered: the next message does not try AT+CMGW again, and says why.
    let e = rig
        .modem
        .prepare_sms(OutgoingSms::new(TO, "second"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("store_and_send"), "{e}");
    assert_eq!(count(&rig, "AT+CMGW="), 1);
    assert_eq!(rig.ctl.cmgs_sends(), 0);
    assert!(rig.ctl.sent_sms().is_empty());
    assert!(on_modem(&rig).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_cmss_fails_the_part_instead_of_sending_it_with_cmgs() {
    let rig = Rig::start(SimulatedModel::QuectelEc25).await;
    rig.ready().await;
    let prepared = prepare(&rig, "stored, not sendable").await;
    rig.ctl
        .fail_next("AT+CMSS", FaultAction::Error("ERROR".to_owned()), 1);
    let e = rig.modem.send_prepared(&prepared).await.unwrap_err();
    assert!(!e.is_transient(), "{e}");
    assert_eq!(rig.ctl.cmgs_sends(), 0);
    assert!(rig.ctl.sent_sms().is_empty());
    let report = rig.modem.discard_prepared(&prepared).await.unwrap();
    assert_eq!(report.deleted_unsent, 1);
    assert!(on_modem(&rig).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_filling_the_receive_memory_leaves_replies_their_own_memory() {
    let mut rig = Rig::start_with(SimulatedModel::QuectelEc25, |sc, _| sc.storage_slots = 3).await;
    rig.ready().await;
    // Three messages fill the receive memory (ME) and stay there, unacknowledged.
    let mut held = Vec::new();
    for i in 0..3 {
        rig.ctl
            .send_sms(&format!("+1555000010{i}"), "fill")
            .unwrap();
        held.push(rig.next_sms().await);
    }
    let prepared = prepare(&rig, "reply while full").await;
    assert!(prepared.is_crash_safe());
    assert_eq!(prepared.mem, "SM");
    rig.modem.send_prepared(&prepared).await.unwrap();
    assert_eq!(count(&rig, "AT+CMSS="), 1);
    assert_eq!(rig.ctl.cmgs_sends(), 0);
    for m in held {
        m.ack();
    }
    rig.ctl.wait_for_stored(0, WAIT).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_write_memory_and_the_slot_cap_defer_and_keep_reception_going() {
    let mut rig = Rig::start_with(SimulatedModel::QuectelEc25, |_, mc| {
        mc.sms.outbound_slots = 2
    })
    .await;
    rig.ready().await;
    // A 3-part message exceeds the cap of 2 outgoing slots: it waits, nothing is sent.
    let e = rig
        .modem
        .prepare_sms(OutgoingSms::new(TO, long_text()))
        .await
        .unwrap_err();
    assert!(
        matches!(e, flowgate_board::modem::ModemError::StorageFull(_)),
        "{e}"
    );
    assert!(e.is_transient());
    assert_eq!(count(&rig, "AT+CMGW="), 0);
    // A full memory answers AT+CMGW with +CMS ERROR: 322: the message waits too.
    rig.ctl.set_memory_full(true).unwrap();
    let e = rig
        .modem
        .prepare_sms(OutgoingSms::new(TO, "memory full"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, flowgate_board::modem::ModemError::StorageFull(_)),
        "{e}"
    );
    assert!(on_modem(&rig).is_empty());
    // Messages arriving meanwhile are held back by the network, then delivered.
    rig.ctl
        .send_sms("+15550000043", "incoming while full")
        .unwrap();
    rig.ctl.set_memory_full(false).unwrap();
    let m = rig.next_sms().await;
    assert_eq!(m.text, "incoming while full");
    m.ack();
    // Storage again once there is room.
    let stored = prepare(&rig, "memory full").await;
    assert!(stored.is_crash_safe());
    rig.modem.send_prepared(&stored).await.unwrap();
    assert_eq!(
        rig.ctl.sent_messages(),
        vec![(TO.to_owned(), "memory full".into())]
    );
    assert_eq!(rig.ctl.cmgs_sends(), 0);
    rig.ctl.wait_for_stored(0, WAIT).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_leaves_the_slot_for_retry_or_discard() {
    let rig = Rig::start(SimulatedModel::QuectelEc25).await;
    rig.ready().await;
    let prepared = prepare(&rig, "doomed").await;
    rig.ctl.fail_next(
        "AT+CMSS",
        FaultAction::Error("+CMS ERROR: 330".to_owned()),
        1,
    );
    let e = rig.modem.send_prepared(&prepared).await.unwrap_err();
    assert_eq!(e.code(), Some(330));
    assert_eq!(on_modem(&rig).len(), 1, "kept for a retry");
    let report = rig.modem.discard_prepared(&prepared).await.unwrap();
    assert_eq!(
        (report.deleted_unsent, report.sent_before, report.gone),
        (1, 0, 0)
    );
    assert!(on_modem(&rig).is_empty());
    assert!(rig.ctl.sent_sms().is_empty());
    // A prepared message belongs to its modem.
    let mut foreign = prepared.clone();
    foreign.modem = "m9".into();
    assert!(rig.modem.send_prepared(&foreign).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_sends_can_be_switched_off() {
    let rig = Rig::start_with(SimulatedModel::QuectelEc25, |_, mc| {
        mc.sms.store_and_send = false
    })
    .await;
    rig.ready().await;
    let prepared = prepare(&rig, "direct").await;
    assert!(!prepared.is_crash_safe());
    rig.modem.send_prepared(&prepared).await.unwrap();
    assert_eq!(count(&rig, "AT+CMGW="), 0);
    assert_eq!(count(&rig, "AT+CMGS="), 1);
    assert_eq!(rig.ctl.cmgs_sends(), 1);
}

/// A reboot between the `AT+CPMS` that selects the write memory and the `AT+CMGW` that
/// relies on it: the rebooted modem has its power-on memory (ME on the EC25) selected again,
/// and a write it carried out would store the part there under an index the driver filed as
/// SM's (a later `AT+CMSS` sending SM's message of that index, or none). The write is held
/// back once the boot was read, the memory selected again and the part written where the
/// driver says it is; it goes out exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reboot_between_write_memory_select_and_write_does_not_misfile_the_part() {
    let rig = Rig::start(SimulatedModel::QuectelEc25).await;
    rig.settled(3).await;
    let reboots = rig.ctl.view(|v| v.reboots());
    // The preparation's first command selects the write memory: answered, then a reboot.
    rig.ctl.fail_next("AT+CPMS=", FaultAction::RebootAfter, 1);
    let prepared = persist(
        &rig.modem
            .prepare_sms(OutgoingSms::new(TO, "written once").with_key("w1"))
            .await
            .unwrap(),
    );
    assert_eq!(
        rig.ctl.view(|v| v.reboots()),
        reboots + 1,
        "the fault fired"
    );
    assert_eq!(prepared.mem, "SM");
    let index = prepared.parts[0].index.unwrap();
    let stored = rig.ctl.stored_by_memory();
    assert!(
        stored.iter().any(|(mem, i, stat, pdu)| mem == "SM"
            && *i == index
            && *stat == 2
            && pdu.ends_with(&prepared.parts[0].pdu[2..])),
        "filed where it is: {stored:?}"
    );
    assert!(
        !stored.iter().any(|(mem, ..)| mem == "ME"),
        "nothing written to the power-on memory: {stored:?}"
    );
    assert_eq!(
        count(&rig, "AT+CMGW="),
        1,
        "one write, after the new selection"
    );

    let sent = rig.modem.send_prepared(&prepared).await.unwrap();
    assert!(matches!(sent.outcomes[..], [PartOutcome::Sent { .. }]));
    assert_eq!(
        rig.ctl.sent_messages(),
        vec![(TO.to_owned(), "written once".to_owned())]
    );
}

/// A reboot between the `AT+CPMS` that selects the write memory and the `AT+CMSS` that sends
/// from it: the rebooted modem would send slot `<index>` of its power-on memory (ME, where a
/// received message sits at the same index: refused as not sendable, which also made the
/// driver give up storage sends for good) instead of the prepared part in SM. The send is
/// held back once the boot was read, the memory selected again, and the part sent from it,
/// exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reboot_between_write_memory_select_and_send_sends_the_right_message_once() {
    let mut rig = Rig::start(SimulatedModel::QuectelEc25).await;
    rig.settled(3).await;
    // A received message in ME (the EC25's receive and power-on memory), left unacknowledged
    // so it stays there.
    rig.ctl.send_sms("+15559990000", "received").unwrap();
    let inbound = rig.next_sms().await;
    assert_eq!(inbound.text, "received");
    let prepared = persist(
        &rig.modem
            .prepare_sms(OutgoingSms::new(TO, "the reply").with_key("r1"))
            .await
            .unwrap(),
    );
    assert_eq!(prepared.mem, "SM");
    // A new driver (after a gateway restart) selects the write memory before it sends.
    let sweeps = count(&rig, "AT+CMGL=4");
    rig.crash_and_restart().await;
    rig.ready().await;
    rig.ctl
        .wait_for_command("AT+CMGL=4", sweeps + 3, WAIT)
        .await
        .unwrap();
    let reboots = rig.ctl.view(|v| v.reboots());
    rig.ctl
        .fail_next("AT+CPMS=\"SM\",\"SM\"", FaultAction::RebootAfter, 1);
    let sent = rig.modem.send_prepared(&prepared).await.unwrap();
    assert_eq!(
        rig.ctl.view(|v| v.reboots()),
        reboots + 1,
        "the fault fired"
    );
    assert!(
        matches!(sent.outcomes[..], [PartOutcome::Sent { .. }]),
        "{:?}",
        sent.outcomes
    );
    assert_eq!(
        rig.ctl.sent_messages(),
        vec![(TO.to_owned(), "the reply".to_owned())],
        "the prepared part, once; never the message at the same index of another memory"
    );
    // Storage sends still work: the rebooted modem's answer was not taken for a refusal.
    let next = prepare(&rig, "and the next").await;
    assert!(next.is_crash_safe());
    rig.modem.send_prepared(&next).await.unwrap();
    assert_eq!(rig.ctl.sent_messages().len(), 2);
}

/// The Huawei `^BOOT` heartbeat, read between the write memory's selection and the answer
/// to `AT+CMSS` (it crossed the command): the modem kept its settings (`AT+CMEE?` still 1),
/// so the answer stands. Sent once, with its message reference, no read-back, no re-init.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boot_heartbeat_crossing_a_stored_send_keeps_its_answer() {
    let rig = Rig::start(SimulatedModel::HuaweiE1550).await;
    rig.ready().await;
    let prepared = prepare(&rig, "through a heartbeat").await;
    assert!(prepared.is_crash_safe());
    let reboots = rig.ctl.view(|v| v.reboots());
    rig.ctl.fail_next(
        "AT+CMSS",
        FaultAction::Garbage(b"\r\n^BOOT:20952548,0,0,0,75\r\n".to_vec()),
        1,
    );
    let sent = rig.modem.send_prepared(&prepared).await.unwrap();
    assert!(
        matches!(sent.outcomes[..], [PartOutcome::Sent { .. }]),
        "{:?}",
        sent.outcomes
    );
    assert_eq!(
        rig.ctl.sent_messages(),
        vec![(TO.to_owned(), "through a heartbeat".to_owned())]
    );
    assert_eq!(count(&rig, "AT+CMSS="), 1);
    assert_eq!(count(&rig, "AT+CMGR="), 0, "no read-back");
    assert_eq!(rig.ctl.view(|v| v.reboots()), reboots);
}

/// The same `^BOOT`, but the modem cannot show that it kept its settings (`AT+CMEE?` fails,
/// for the manager's check and the worker's): the send's answer is not trusted. After the
/// re-init the slot is read back (stored sent): the message went out once, and is not sent
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boot_crossing_a_stored_send_unconfirmed_is_read_back_not_resent() {
    let rig = Rig::start_with(SimulatedModel::HuaweiE1550, |_, mc| fast_timeouts(mc)).await;
    rig.ready().await;
    let prepared = prepare(&rig, "judged by its slot").await;
    rig.ctl.fail_next(
        "AT+CMSS",
        FaultAction::Garbage(b"\r\n^BOOT:20952548,0,0,0,75\r\n".to_vec()),
        1,
    );
    rig.ctl
        .fail_next("AT+CMEE?", FaultAction::Error("ERROR".to_owned()), 2);
    let sent = rig.modem.send_prepared(&prepared).await.unwrap();
    assert_eq!(sent.outcomes, vec![PartOutcome::SentBefore]);
    assert_eq!(
        rig.ctl.sent_messages(),
        vec![(TO.to_owned(), "judged by its slot".to_owned())]
    );
    assert_eq!(count(&rig, "AT+CMSS="), 1, "not sent again");
}
