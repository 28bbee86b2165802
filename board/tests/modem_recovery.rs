//! Recovery through the driver against the simulator over a real pty: the escalation ladder,
//! lost replies, busy and locked SIMs, reboots, a vanished port, garbage, and two modems
//! where one fails.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use std::time::Duration;

use common::{Rig, WAIT, fast_timeouts};
use flowgate_board::modem::at::types::SimState;
use flowgate_board::modem::config::GpioLineConfig;
use flowgate_board::modem::events::RecoveryOutcome;
use flowgate_board::modem::recovery::RecoveryStep;
use flowgate_board::modem::{CallEndReason, ModemEvent, ModemState, OutgoingSms};
use flowgate_board::simulator::{FaultAction, SimulatedModel};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unresponsive_modem_climbs_the_ladder_then_comes_back() {
    let gpio_dir = tempfile::tempdir().unwrap();
    let gpio = gpio_dir.path().join("reset-value");
    let g = gpio.clone();
    let mut rig = Rig::start_with(SimulatedModel::QuectelEc25, move |_, mc| {
        fast_timeouts(mc);
        mc.power.reset = Some(GpioLineConfig {
            value_file: g,
            active_low: false,
            pulse_ms: 5,
        });
    })
    .await;
    rig.ready().await;
    rig.ctl.set_unresponsive(true);
    let e = rig
        .modem
        .command("AT+CSQ", Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("timed out"), "{e}");

    let mut steps = Vec::new();
    loop {
        let ev = rig
            .event("recovery or failed state", |e| match e {
                ModemEvent::Recovery { step, outcome } => Some(Some((*step, outcome.clone()))),
                ModemEvent::State {
                    state: ModemState::Failed { .. },
                } => Some(None),
                _ => None,
            })
            .await;
        match ev {
            Some((step, RecoveryOutcome::Started)) => steps.push(format!("{step}")),
            Some((step, RecoveryOutcome::Failed { .. })) => steps.push(format!("{step} failed")),
            Some((step, other)) => panic!("{step}: unexpected {other:?}"),
            None => break,
        }
    }
    assert_eq!(
        steps,
        [
            "resync",
            "resync failed",
            "reinit",
            "reinit failed",
            "soft-reset",
            "soft-reset failed",
            "power-cycle",
            "power-cycle failed",
            "give-up",
            "give-up failed"
        ]
    );
    // The reset line was pulsed and released.
    assert_eq!(std::fs::read_to_string(&gpio).unwrap(), "0");
    assert!(matches!(
        rig.modem.status().state,
        ModemState::Failed { .. }
    ));
    assert!(
        rig.modem
            .send_dtmf(flowgate_board::modem::CallId(1), "1")
            .await
            .is_err()
    );

    // Someone power-cycles it by hand: the boot URC brings the driver back.
    rig.ctl.set_unresponsive(false);
    rig.ctl.reboot().unwrap();
    rig.ready().await;
    assert!(rig.modem.init_count() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_cycle_is_skipped_without_gpio() {
    let mut rig = Rig::start_with(SimulatedModel::HuaweiE1550, |_, mc| fast_timeouts(mc)).await;
    rig.ready().await;
    rig.ctl.set_unresponsive(true);
    let _ = rig.modem.command("AT", Duration::from_millis(250)).await;
    let reason = rig
        .event("power-cycle skipped", |e| match e {
            ModemEvent::Recovery {
                step: RecoveryStep::PowerCycle,
                outcome: RecoveryOutcome::Skipped { reason },
            } => Some(reason.clone()),
            _ => None,
        })
        .await;
    assert!(reason.contains("no reset or power-key GPIO"), "{reason}");
    rig.state("failed", |s| matches!(s, ModemState::Failed { .. }))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_reply_is_cured_by_resync() {
    let mut rig = Rig::start_with(SimulatedModel::QuectelEc25, |_, mc| fast_timeouts(mc)).await;
    rig.ready().await;
    // Only the reply to our command is lost, whatever the driver's own sweeps and polls
    // send meanwhile (counting their commands raced with them on a loaded machine).
    rig.ctl.fail_next("AT+CSQ", FaultAction::Drop, 1);
    assert!(
        rig.modem
            .command("AT+CSQ", Duration::from_millis(300))
            .await
            .is_err()
    );
    rig.event("resync succeeded", |e| {
        matches!(
            e,
            ModemEvent::Recovery {
                step: RecoveryStep::Resync,
                outcome: RecoveryOutcome::Succeeded
            }
        )
        .then_some(())
    })
    .await;
    rig.ready().await;
    assert_eq!(rig.modem.status().recoveries, 1);
    let r = rig.modem.command("AT+CSQ", WAIT).await.unwrap();
    assert_eq!(r.value("+CSQ"), Some("20,99"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_sim_is_retried_with_backoff() {
    let rig = Rig::start_full(
        SimulatedModel::QuectelEc25,
        |_, _| {},
        |ctl| ctl.set_sim_busy(3),
    )
    .await;
    rig.ready().await;
    let cpin = rig
        .ctl
        .commands()
        .iter()
        .filter(|c| *c == "AT+CPIN?")
        .count();
    assert_eq!(cpin, 4, "three busy answers, then READY");
    assert_eq!(rig.modem.status().sim, SimState::Ready);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_pin_is_entered() {
    let rig = Rig::start_with(SimulatedModel::QuectelEc25, |sc, mc| {
        sc.pin = Some("1234".to_owned());
        mc.pin = Some("1234".to_owned());
    })
    .await;
    rig.ready().await;
    assert!(rig.ctl.commands().iter().any(|c| c == "AT+CPIN=\"1234\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_sim_without_pin_waits() {
    let mut rig = Rig::start_with(SimulatedModel::QuectelEc25, |sc, mc| {
        sc.pin = Some("1234".to_owned());
        mc.sms.ready_wait_ms = 200;
    })
    .await;
    let s = rig
        .state("waiting for SIM", |s| {
            matches!(s, ModemState::WaitingForSim { .. })
        })
        .await;
    assert!(
        matches!(
            s,
            ModemState::WaitingForSim {
                sim: SimState::PinRequired,
                ..
            }
        ),
        "{s:?}"
    );
    let e = rig
        .modem
        .send_sms(OutgoingSms::new("+1555", "x"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not ready"), "{e}");
    assert!(
        !rig.ctl.commands().iter().any(|c| c.starts_with("AT+CPIN=")),
        "no PIN was guessed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reboot_during_a_call_ends_it_and_reinitialises() {
    let mut rig = Rig::start(SimulatedModel::QuectelEc25).await;
    rig.ready().await;
    let call = rig.answered("+15550009999").await;
    rig.ctl.reboot().unwrap();
    let reason = rig
        .event("call ended", |e| match e {
            ModemEvent::CallEnded { call: c, cause } if *c == call => Some(cause.reason),
            _ => None,
        })
        .await;
    assert_eq!(reason, CallEndReason::ModemReset);
    // A transient state: the event stream has it even when the watch has moved on (the
    // start-up's own `Initializing` was consumed above, before the call ended).
    rig.event("re-initialising", |e| {
        matches!(e, ModemEvent::State { state } if *state == ModemState::Initializing).then_some(())
    })
    .await;
    rig.ready().await;
    assert_eq!(rig.modem.init_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_port_is_reopened_by_path() {
    let mut rig = Rig::start(SimulatedModel::QuectelEc25).await;
    rig.ready().await;
    let before = rig.ctl.at_pty();
    rig.ctl.vanish(Duration::from_millis(300)).unwrap();
    // From the event stream: the watch may already have moved on to re-opening.
    rig.event("port lost", |e| {
        matches!(
            e,
            ModemEvent::State {
                state: ModemState::PortLost { .. }
            }
        )
        .then_some(())
    })
    .await;
    rig.state("ready again", |s| *s == ModemState::Ready).await;
    assert_eq!(rig.modem.init_count(), 2);
    assert_ne!(
        rig.ctl.at_pty(),
        before,
        "the pty was re-created at a new path"
    );
    rig.ctl
        .send_sms("+15550000001", "after the port came back")
        .unwrap();
    let m = rig.next_sms().await;
    assert_eq!(m.text, "after the port came back");
    m.ack();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_line_is_survived() {
    let mut rig = Rig::start(SimulatedModel::QuectelEc25).await;
    rig.ready().await;
    let mut junk = vec![
        0u8, 0xFF, 0xFE, b'\r', b'\n', 0x1B, b'>', b' ', b'\r', b'\n',
    ];
    junk.extend(std::iter::repeat_n(b'A', 6000));
    junk.extend(b"\r\n+CMTI: \"ME\"\r\n+QIND: \"ccinfo\",x\r\n\x00\x00O\xffK?\r\n");
    rig.ctl.send_garbage(&junk).unwrap();
    rig.ctl.fail_next(
        "AT+CSQ",
        FaultAction::Garbage(b"\r\n\xff\xfe\x00random junk\r\n^^^\r".to_vec()),
        1,
    );
    let r = rig.modem.command("AT+CSQ", WAIT).await.unwrap();
    assert_eq!(r.value("+CSQ"), Some("20,99"));
    rig.ctl
        .send_sms("+15550000001", "through the noise")
        .unwrap();
    let m = rig.next_sms().await;
    assert_eq!(m.text, "through the noise");
    m.ack();
    assert_eq!(rig.modem.status().state, ModemState::Ready);
    assert_eq!(rig.modem.status().recoveries, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huawei_boot_heartbeat_is_not_a_reboot() {
    let rig = Rig::start(SimulatedModel::HuaweiE1550).await;
    // The driver idle first (SM, ME and SR listed): the heartbeat and the reboot below must
    // not land on a sweep command. A reboot that swallows one is a different path, with a
    // real-time bound (`a_command_swallowed_by_a_huawei_reboot_does_not_hold_up_reinit`);
    // racing into it made this test take 5 s instead of 0.2 s, or fail, by scheduling.
    rig.settled(3).await;
    rig.ctl.send_urc("^BOOT:20952548,0,0,0,75").unwrap();
    // A marker URC after it: URCs are handled in order, so once the marker shows in the
    // status the heartbeat's check (`AT+CMEE?`) is over and its verdict taken.
    rig.ctl.send_urc("^RSSI:7").unwrap();
    let mut rx = rig.modem.watch_status();
    let status = tokio::time::timeout(
        WAIT,
        rx.wait_for(|s| s.signal.as_ref().is_some_and(|q| q.quality.rssi == 7)),
    )
    .await
    .expect("the marker URC handled")
    .unwrap()
    .clone();
    // The probe found the settings intact: no re-init. A real reboot re-initialises.
    let probes = rig.ctl.view(|v| {
        v.commands()
            .iter()
            .filter(|c| c.starts_with("AT+CMEE?"))
            .count()
    });
    assert_eq!(probes, 1);
    assert_eq!(status.state, ModemState::Ready);
    assert_eq!(rig.modem.init_count(), 1);
    rig.ctl.reboot().unwrap();
    rig.ctl.wait_for_command("AT+CMEE?", 2, WAIT).await.unwrap();
    let m = rig.modem.clone();
    tokio::time::timeout(
        WAIT,
        rx.wait_for(|s| s.state == ModemState::Ready && m.init_count() == 2),
    )
    .await
    .unwrap()
    .unwrap();
}

/// The race behind the old flake of `huawei_boot_heartbeat_is_not_a_reboot`: a command sent
/// just as the modem reboots is swallowed, and the `^BOOT` check queued behind it used to
/// wait out that command's whole timeout (two minutes for a listing) before the driver
/// noticed the reboot. Now the swallowed command fails as `Rebooted` soon after `^BOOT`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_swallowed_by_a_huawei_reboot_does_not_hold_up_reinit() {
    let rig = Rig::start(SimulatedModel::HuaweiE1550).await;
    rig.ready().await;
    // The start-up sweep lists both memories (receive SM, write ME) first.
    rig.ctl
        .wait_for_command("AT+CMGL=4", 2, WAIT)
        .await
        .unwrap();
    rig.modem.command("AT", WAIT).await.unwrap();
    // A listing of read messages (stat 1): the driver's own sweeps list stat 4 (all), and
    // may still be listing the status-report memory, so the fault must not match theirs.
    rig.ctl.fail_next("AT+CMGL=1", FaultAction::Drop, 1);
    let m = rig.modem.clone();
    let listing =
        tokio::spawn(async move { m.command("AT+CMGL=1", Duration::from_secs(120)).await });
    rig.ctl
        .wait_for_command("AT+CMGL=1", 1, WAIT)
        .await
        .unwrap();
    rig.ctl.reboot().unwrap();
    let e = tokio::time::timeout(WAIT, listing)
        .await
        .expect("the swallowed command is given up soon after ^BOOT")
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(e, flowgate_board::modem::ModemError::Rebooted { .. }),
        "{e}"
    );
    let mut rx = rig.modem.watch_status();
    let m = rig.modem.clone();
    // Only whether it matched: `wait_for` returns a guard that holds the status watch's read
    // lock. Kept alive (as `r` once was) across `rig.modem.status()` below, that second read
    // waits behind a driver task's status update, which waits for the first read to end:
    // the test thread and then every runtime worker block, and no timeout can fire (the
    // test ran past 60 s under load, about one run in sixty).
    let reinitialised = tokio::time::timeout(
        WAIT,
        rx.wait_for(|s| s.state == ModemState::Ready && m.init_count() == 2),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    assert!(
        reinitialised,
        "{:?} inits={}",
        rig.modem.status(),
        rig.modem.init_count()
    );
    assert_eq!(rig.modem.status().recoveries, 0, "a reboot is not a fault");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_modems_one_failing_does_not_disturb_the_other() {
    let bad = Rig::start_with(SimulatedModel::QuectelEc25, |_, mc| fast_timeouts(mc)).await;
    let mut good = Rig::start(SimulatedModel::HuaweiE1550).await;
    bad.ready().await;
    good.ready().await;
    bad.ctl.set_unresponsive(true);
    let _ = bad.modem.command("AT", Duration::from_millis(250)).await;
    // While the first climbs its ladder, the second works normally.
    good.ctl.send_sms("+15550000001", "still here").unwrap();
    let m = good.next_sms().await;
    assert_eq!(m.text, "still here");
    m.ack();
    good.modem
        .send_sms(OutgoingSms::new("+15550000002", "and sending"))
        .await
        .unwrap();
    let call = good.answered("+15550000003").await;
    good.modem.hangup(call).await.unwrap();
    let mut bad = bad;
    bad.state("failed", |s| matches!(s, ModemState::Failed { .. }))
        .await;
    assert_eq!(good.modem.status().state, ModemState::Ready);
    assert_eq!(good.modem.status().recoveries, 0);
}
