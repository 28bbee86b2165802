//! Detection latency of the analog ports, in simulated time: the real drivers and line logic on
//! the simulated chips, polled every 5 ms as the gateway's port runner does, with the line
//! event taken at the poll that reports it. Each figure is measured at five phases of the
//! action against the poll (0…4 ms after it) and given as min–max; the test prints the table
//! the README quotes and asserts the bounds, so a regression fails here rather than in a
//! figure nobody re-measures.
//!
//! ```text
//! cargo test -p flowgate-analog --test latency -- --nocapture
//! ```

mod common;

use common::Rig;
use common::cid_suite::{Standard, ours_tx};
use flowgate_analog::Millis;
use flowgate_analog::cid::{CallerId, DateTime};
use flowgate_analog::country::CidSignalling;
use flowgate_analog::line::{Disconnect, EndReason, LineEvent};
use flowgate_analog::port::{AnalogPort, FxoPortConfig, LineCommand};
use flowgate_analog::si3050::{FxoChipConfig, LineSide};
use flowgate_analog::sim::{DisconnectSignal, ExchangeConfig, ExchangeState, SimBoard};

/// Phases of an action against the 5 ms poll.
const PHASES: [Millis; 5] = [0, 1, 2, 3, 4];

/// A rig whose board clock is `phase` ms past the last poll: what the control does now
/// happens between two polls, as a real user's action does.
fn at_phase(rig: &mut Rig, phase: Millis) -> Millis {
    rig.board.advance_to(rig.now + phase);
    rig.now + phase
}

/// min–max over the phases of `f`, which returns one latency.
fn over_phases(mut f: impl FnMut(Millis) -> Millis) -> (Millis, Millis) {
    let v: Vec<Millis> = PHASES.iter().map(|&p| f(p)).collect();
    (
        *v.iter().min().expect("phases"),
        *v.iter().max().expect("phases"),
    )
}

fn caller() -> CallerId {
    CallerId::new("0123456789", Some("GATEWAY TEST"))
        .at(DateTime::new(11, 23, 18, 45).expect("date"))
}

/// An FXS call the phone answered (ring, lift): the line is connected.
fn fxs_connected() -> Rig {
    let mut rig = Rig::new(ExchangeConfig::default());
    rig.fxs
        .command(LineCommand::Ring { caller: None }, rig.now)
        .expect("ring");
    rig.step(100);
    rig.ctl.lift_handset();
    rig.until_fxs(500, |e| *e == LineEvent::Answered);
    rig.step(500);
    rig
}

/// An FXO call placed and answered by the far end, disconnecting with `signal`.
fn fxo_connected(signal: DisconnectSignal) -> Rig {
    let board = SimBoard::new(ExchangeConfig {
        disconnect: signal,
        ..ExchangeConfig::default()
    })
    .expect("board");
    let fxs = board.default_fxs_port().expect("fxs");
    let us = flowgate_analog::country::country("us").expect("us");
    let fxo = board
        .fxo_port(
            FxoChipConfig::new(LineSide::Si3019, us.daa),
            FxoPortConfig::for_zone("us"),
        )
        .expect("fxo");
    let mut rig = Rig::with_ports(board, fxs, fxo);
    rig.fxo
        .command(
            LineCommand::Dial("5551234".try_into().expect("short")),
            rig.now,
        )
        .expect("dial");
    rig.until_fxo(5000, |e| *e == LineEvent::Proceeding);
    rig.step(4000);
    rig.ctl.answer_line().expect("answer");
    // Past the loop-current safe zone after seizure and dialling.
    rig.step(3000);
    rig
}

struct Table(Vec<(String, (Millis, Millis), Millis)>);

impl Table {
    /// Records a figure and asserts it stays within `bound` ms.
    fn row(&mut self, what: &str, (lo, hi): (Millis, Millis), bound: Millis) {
        assert!(hi <= bound, "{what}: {lo}–{hi} ms, bound {bound} ms");
        self.0.push((what.to_owned(), (lo, hi), bound));
    }
}

#[test]
fn detection_latency_in_simulated_time() {
    let mut t = Table(Vec::new());

    // FXS: the phone lifted on an idle line → OffHook (10 ms debounce).
    let r = over_phases(|p| {
        let mut rig = Rig::new(ExchangeConfig::default());
        rig.step(100);
        let t0 = at_phase(&mut rig, p);
        rig.ctl.lift_handset();
        rig.until_fxs(500, |e| *e == LineEvent::OffHook).0 - t0
    });
    t.row("FXS off-hook → `OffHook` (dial tone starts)", r, 20);

    // FXS: the phone lifted while ringing → Answered (ring trip).
    let r = over_phases(|p| {
        let mut rig = Rig::new(ExchangeConfig::default());
        rig.fxs
            .command(LineCommand::Ring { caller: None }, rig.now)
            .expect("ring");
        rig.step(500);
        let t0 = at_phase(&mut rig, p);
        rig.ctl.lift_handset();
        rig.until_fxs(500, |e| *e == LineEvent::Answered).0 - t0
    });
    t.row("FXS ring trip: off-hook while ringing → `Answered`", r, 20);

    // FXS: a 400 ms hook flash in a call → Flash, from the end of the break.
    let r = over_phases(|p| {
        let mut rig = fxs_connected();
        let t0 = at_phase(&mut rig, p);
        rig.ctl.flash(400);
        rig.until_fxs(1000, |e| matches!(e, LineEvent::Flash { .. }))
            .0
            .saturating_sub(t0 + 400)
    });
    t.row("FXS hook flash (400 ms) → `Flash`, after the break", r, 20);

    // FXS: the phone hung up in a call → Ended (the flash window's end, 800 ms by default).
    let r = over_phases(|p| {
        let mut rig = fxs_connected();
        let t0 = at_phase(&mut rig, p);
        rig.ctl.hang_up();
        let (at, e) = rig.until_fxs(2000, |e| matches!(e, LineEvent::Ended { .. }));
        assert_eq!(
            e,
            LineEvent::Ended {
                reason: EndReason::PhoneOnHook,
                answered: true
            }
        );
        at - t0
    });
    t.row(
        "FXS on-hook → `Ended` (800 ms flash window + debounce)",
        r,
        820,
    );

    // FXO: the exchange starts ringing (no caller ID) → the port sees the ring.
    let mut announce = (Millis::MAX, 0);
    let r = over_phases(|p| {
        let mut rig = Rig::new(ExchangeConfig::default());
        rig.step(100);
        let t0 = at_phase(&mut rig, p);
        rig.ctl.ring_line(None, CidSignalling::Bell).expect("ring");
        let start = match rig.ctl.exchange_state() {
            ExchangeState::Ringing { cadence_start } => cadence_start,
            s => panic!("{s:?}"),
        };
        assert_eq!(start, t0);
        let end = t0 + 2000;
        while !rig.fxo.line().ringing() {
            rig.step(5);
            assert!(rig.now < end, "no ring detected");
        }
        let detected = rig.now - t0;
        // Without caller ID the call is announced at the second ring (so a Bell caller ID
        // between the rings can still come): 6 s cadence + the same detection time.
        let (at, _) = rig.until_fxo(8000, |e| matches!(e, LineEvent::Incoming { .. }));
        announce = (announce.0.min(at - t0), announce.1.max(at - t0));
        // The end of the first 2 s burst.
        while rig.fxo.line().ringing() && rig.now < t0 + 2000 + 500 {
            rig.step(5);
        }
        detected
    });
    t.row("FXO ring voltage on → ring detected", r, 100);
    t.row(
        "FXO ring without caller ID → `Incoming` (announced at ring 2, 6 s cadence)",
        announce,
        6100,
    );

    // FXO: Bell 202 caller ID between the first and second ring → Incoming, from the end of
    // the caller-ID burst.
    let burst_ms = ours_tx(&caller(), Standard::Bell).len() as Millis / 8;
    let r = over_phases(|p| {
        let mut rig = Rig::new(ExchangeConfig::default());
        rig.step(100);
        let t0 = at_phase(&mut rig, p);
        rig.ctl
            .ring_line(Some(&caller()), CidSignalling::Bell)
            .expect("ring");
        let (at, e) = rig.until_fxo(8000, |e| matches!(e, LineEvent::Incoming { .. }));
        assert!(
            matches!(e, LineEvent::Incoming { caller: Some(ref c), .. } if c.number == caller().number),
            "{e:?}"
        );
        // The exchange plays the burst from 500 ms after the first 2 s ring, in 20 ms frames.
        at.saturating_sub(t0 + 2500 + burst_ms)
    });
    t.row(
        "FXO Bell 202 caller ID → `Incoming`, after the burst ends",
        r,
        50,
    );

    // FXO disconnect supervision: the far end hangs up → Ended, per signal.
    for (signal, expect, what, bound) in [
        (
            DisconnectSignal::Reversal,
            Disconnect::BatteryReversal,
            "FXO far end clears, battery reversal → `Ended`",
            100,
        ),
        (
            DisconnectSignal::OpenLoop { ms: 400 },
            Disconnect::LoopCurrent,
            "FXO far end clears, 400 ms loop-current break → `Ended`",
            150,
        ),
        (
            DisconnectSignal::BusyTone,
            Disconnect::BusyTone,
            "FXO far end clears, busy tone → `Ended`",
            2500,
        ),
    ] {
        let r = over_phases(|p| {
            let mut rig = fxo_connected(signal);
            let t0 = at_phase(&mut rig, p);
            rig.ctl.hang_up_line().expect("hang up");
            let (at, e) = rig.until_fxo(6000, |e| matches!(e, LineEvent::Ended { .. }));
            assert_eq!(
                e,
                LineEvent::Ended {
                    reason: EndReason::FarEnd(expect),
                    answered: true
                },
                "{what}"
            );
            at - t0
        });
        t.row(what, r, bound);
    }

    println!("\n| event (simulated time, 5 ms polls) | latency | bound asserted |");
    println!("|---|---|---|");
    for (what, (lo, hi), bound) in &t.0 {
        let figure = if lo == hi {
            format!("{lo} ms")
        } else {
            format!("{lo}–{hi} ms")
        };
        println!("| {what} | {figure} | ≤ {bound} ms |");
    }
}
