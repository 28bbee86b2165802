//! The real drivers, line logic and ports running on the simulated chips, end to end: a phone
//! on the FXS port and an exchange line on the FXO port.

mod common;

use common::{Rig, sine, tone_fraction};
use flowgate_analog::cid::{Absence, CallerId, DateTime};
use flowgate_analog::country::{CidSignalling, country};
use flowgate_analog::line::fxo::DialMode;
use flowgate_analog::line::{Digits, Disconnect, EndReason, LineEvent, Route, Tone};
use flowgate_analog::port::FxoPortConfig;
use flowgate_analog::port::{AnalogPort, HookState, LineCommand};
use flowgate_analog::si3050::{FxoChipConfig, LineSide};
use flowgate_analog::sim::SimBoard;
use flowgate_analog::sim::{DialMethod, DisconnectSignal, ExchangeConfig, ExchangeEvent};
use flowgate_dsp::{ProgressConfig, ProgressDetector, ToneKind, ToneTable};

fn digits(s: &str) -> Digits {
    Digits::try_from(s).expect("short")
}

fn heard_tones(audio: &[i16], zone: &str) -> Vec<ToneKind> {
    let table = ToneTable::builtin().expect("tones");
    let z = table.zone(zone).expect("zone");
    let mut d = ProgressDetector::new(z, &ToneKind::ALL, ProgressConfig::new(8000)).expect("ok");
    let mut found = Vec::new();
    d.process(audio, |k| found.push(k));
    found
}

#[test]
fn phone_lifts_hears_dial_tone_and_dials_an_extension_by_dtmf() {
    let mut rig = Rig::new(ExchangeConfig::default());
    assert_eq!(rig.fxs.status().chip.as_deref(), Some("Si3215 rev 3"));
    rig.ctl.lift_handset();
    let (t, _) = rig.until_fxs(200, |e| *e == LineEvent::OffHook);
    assert_eq!(rig.fxs.status().hook, HookState::OffHook);
    rig.step(1500);
    let heard = rig.ctl.phone_heard();
    assert!(
        heard_tones(&heard, "us").contains(&ToneKind::Dial),
        "no dial tone heard"
    );
    rig.ctl.dial("0#", DialMethod::Dtmf).expect("digits");
    // "0#": outside prefix without a number is no route.
    let (_, e) = rig.until_fxs(2000, |e| matches!(e, LineEvent::Ended { .. }));
    assert_eq!(
        e,
        LineEvent::Ended {
            reason: EndReason::NoRoute,
            answered: false
        }
    );
    rig.step(1200);
    assert!(heard_tones(&rig.ctl.phone_heard(), "us").contains(&ToneKind::Congestion));
    rig.ctl.hang_up();
    rig.step(1200);
    // Again, now an outside number terminated with #.
    rig.ctl.lift_handset();
    rig.until_fxs(200, |e| *e == LineEvent::OffHook);
    rig.ctl.dial("05551234#", DialMethod::Dtmf).expect("digits");
    let (t2, e) = rig.until_fxs(3000, |e| matches!(e, LineEvent::Dialled { .. }));
    assert_eq!(
        e,
        LineEvent::Dialled {
            route: Route::Outside(digits("5551234")),
            digits: digits("05551234#")
        }
    );
    assert!(t2 > t);
    // The gateway connects the call; audio flows from the phone to the call.
    rig.fxs
        .command(LineCommand::Answer, rig.now)
        .expect("answer");
    rig.step(300);
    rig.fxs_call_audio.clear();
    rig.ctl.phone_say(&sine(1000.0, 400));
    rig.step(600);
    assert!(tone_fraction(&rig.fxs_call_audio, 1000.0) > 0.5);
    rig.ctl.hang_up();
    let (_, e) = rig.until_fxs(1500, |e| matches!(e, LineEvent::Ended { .. }));
    assert_eq!(
        e,
        LineEvent::Ended {
            reason: EndReason::PhoneOnHook,
            answered: true
        }
    );
}

#[test]
fn rotary_phone_dials_by_pulses() {
    let mut rig = Rig::new(ExchangeConfig::default());
    rig.ctl.lift_handset();
    rig.until_fxs(200, |e| *e == LineEvent::OffHook);
    rig.step(300);
    rig.ctl.dial("0907", DialMethod::Pulse).expect("digits");
    // No terminator on a rotary dial: the inter-digit timeout (4 s) routes.
    let (_, e) = rig.until_fxs(12_000, |e| matches!(e, LineEvent::Dialled { .. }));
    assert_eq!(
        e,
        LineEvent::Dialled {
            route: Route::Outside(digits("907")),
            digits: digits("0907")
        }
    );
}

#[test]
fn phone_rings_with_bell_caller_id_answers_and_hangs_up() {
    let mut rig = Rig::new(ExchangeConfig::default());
    let caller = CallerId::new("5551234567", Some("JOHN SMITH"))
        .at(DateTime::new(3, 15, 13, 45).expect("date"));
    rig.fxs
        .command(
            LineCommand::Ring {
                caller: Some(caller.clone()),
            },
            rig.now,
        )
        .expect("ring");
    rig.step(7000);
    let rings = rig.ctl.phone_rings();
    assert!(!rings.is_empty(), "the phone rang");
    // First ring 2 s (US cadence).
    let first = rings[0].1 - rings[0].0;
    assert!((1990..=2010).contains(&first), "{rings:?}");
    assert_eq!(rig.ctl.phone_caller_ids(), vec![caller]);
    rig.ctl.lift_handset();
    rig.until_fxs(300, |e| *e == LineEvent::Answered);
    assert!(!rig.ctl.phone_ringing());
    rig.ctl.hang_up();
    let (_, e) = rig.until_fxs(1500, |e| matches!(e, LineEvent::Ended { .. }));
    assert_eq!(
        e,
        LineEvent::Ended {
            reason: EndReason::PhoneOnHook,
            answered: true
        }
    );
}

#[test]
fn exchange_rings_with_caller_id_fxo_decodes_and_answers() {
    for signalling in [
        CidSignalling::Bell,
        CidSignalling::EtsiPreRing,
        CidSignalling::EtsiAfterRing,
        CidSignalling::Dtmf,
    ] {
        let mut rig = Rig::new(ExchangeConfig::default());
        let caller =
            CallerId::new("0123456789", Some("ANNA")).at(DateTime::new(1, 2, 3, 4).expect("d"));
        rig.ctl.ring_line(Some(&caller), signalling).expect("ring");
        let (_, e) = rig.until_fxo(8000, |e| matches!(e, LineEvent::Incoming { .. }));
        let LineEvent::Incoming {
            caller: Some(got), ..
        } = e
        else {
            panic!("{signalling:?}: incoming without caller ID: {e:?}");
        };
        assert_eq!(got.number.as_deref(), Some("0123456789"), "{signalling:?}");
        if signalling != CidSignalling::Dtmf {
            assert_eq!(got.name.as_deref(), Some("ANNA"), "{signalling:?}");
        }
        rig.fxo
            .command(LineCommand::Answer, rig.now)
            .expect("answer");
        rig.until_fxo(100, |e| *e == LineEvent::Answered);
        rig.step(1500);
        assert!(
            rig.ctl
                .exchange_events()
                .contains(&ExchangeEvent::GatewayAnswered)
        );
        // Far end hangs up with a battery reversal.
        rig.ctl.hang_up_line().expect("hang up");
        let (_, e) = rig.until_fxo(1000, |e| matches!(e, LineEvent::Ended { .. }));
        assert_eq!(
            e,
            LineEvent::Ended {
                reason: EndReason::FarEnd(Disconnect::BatteryReversal),
                answered: true
            }
        );
        rig.step(1500);
        assert!(
            rig.ctl
                .exchange_events()
                .contains(&ExchangeEvent::GatewayHungUp)
        );
    }
}

#[test]
fn fxo_dials_out_and_every_disconnect_signal_is_detected() {
    for (signal, watch_current, expect) in [
        (
            DisconnectSignal::OpenLoop { ms: 400 },
            true,
            Disconnect::LoopCurrent,
        ),
        (DisconnectSignal::BusyTone, true, Disconnect::BusyTone),
        (DisconnectSignal::BatteryLoss, true, Disconnect::LoopCurrent),
        (
            DisconnectSignal::BatteryLoss,
            false,
            Disconnect::BatteryLoss,
        ),
        (
            DisconnectSignal::Reversal,
            true,
            Disconnect::BatteryReversal,
        ),
    ] {
        let mut rig = rig_with_fxo(
            ExchangeConfig {
                disconnect: signal,
                ..ExchangeConfig::default()
            },
            |c| {
                c.line.supervision.loop_current = watch_current;
            },
        );
        rig.fxo
            .command(LineCommand::Dial(digits("5551234")), rig.now)
            .expect("dial");
        rig.until_fxo(5000, |e| *e == LineEvent::Proceeding);
        rig.step(4000);
        assert_eq!(rig.ctl.dialled(), vec!["5551234".to_owned()], "{signal:?}");
        rig.ctl.answer_line().expect("answer");
        rig.step(100);
        rig.fxo_call_audio.clear();
        rig.ctl.line_say(&sine(700.0, 500));
        rig.step(700);
        assert!(
            tone_fraction(&rig.fxo_call_audio, 700.0) > 0.3,
            "{signal:?}"
        );
        rig.ctl.hang_up_line().expect("far end hangs up");
        let (_, e) = rig.until_fxo(6000, |e| matches!(e, LineEvent::Ended { .. }));
        assert_eq!(
            e,
            LineEvent::Ended {
                reason: EndReason::FarEnd(expect),
                answered: true
            },
            "{signal:?}"
        );
    }
}

/// A rig whose FXO port configuration `f` adjusts.
fn rig_with_fxo(exchange: ExchangeConfig, f: impl FnOnce(&mut FxoPortConfig)) -> Rig {
    let board = SimBoard::new(exchange).expect("board");
    let fxs = board.default_fxs_port().expect("fxs");
    let us = country("us").expect("us");
    let mut cfg = FxoPortConfig::for_zone("us");
    f(&mut cfg);
    let fxo = board
        .fxo_port(FxoChipConfig::new(LineSide::Si3019, us.daa), cfg)
        .expect("fxo");
    Rig::with_ports(board, fxs, fxo)
}

#[test]
fn fxo_pulse_dialling_reaches_the_exchange() {
    let mut rig = rig_with_fxo(ExchangeConfig::default(), |c| {
        c.line.dial_mode = DialMode::Pulse
    });
    rig.fxo
        .command(LineCommand::Dial(digits("907")), rig.now)
        .expect("dial");
    rig.until_fxo(10_000, |e| *e == LineEvent::Proceeding);
    rig.step(4000);
    assert_eq!(rig.ctl.dialled(), vec!["907".to_owned()]);
}

#[test]
fn phone_calls_out_through_the_fxo_line_with_audio_both_ways() {
    let mut rig = Rig::new(ExchangeConfig::default());
    rig.ctl.lift_handset();
    rig.until_fxs(200, |e| *e == LineEvent::OffHook);
    rig.ctl.dial("0555#", DialMethod::Dtmf).expect("digits");
    let (_, e) = rig.until_fxs(3000, |e| matches!(e, LineEvent::Dialled { .. }));
    let LineEvent::Dialled {
        route: Route::Outside(number),
        ..
    } = e
    else {
        panic!("{e:?}")
    };
    rig.fxs
        .command(LineCommand::Ringback, rig.now)
        .expect("ringback");
    rig.fxo
        .command(LineCommand::Dial(number), rig.now)
        .expect("dial");
    rig.until_fxo(5000, |e| *e == LineEvent::Answered);
    rig.fxs
        .command(LineCommand::Answer, rig.now)
        .expect("connect");
    rig.bridge = true;
    rig.step(4000);
    assert_eq!(rig.ctl.dialled(), vec!["555".to_owned()]);
    rig.ctl.answer_line().expect("far end answers");
    rig.step(100);
    let _ = (rig.ctl.line_heard(), rig.ctl.phone_heard());
    rig.ctl.phone_say(&sine(1000.0, 600));
    rig.ctl.line_say(&sine(600.0, 600));
    rig.step(1000);
    assert!(
        tone_fraction(&rig.ctl.line_heard(), 1000.0) > 0.3,
        "far end hears the phone"
    );
    assert!(
        tone_fraction(&rig.ctl.phone_heard(), 600.0) > 0.3,
        "phone hears the far end"
    );
    // The far end hangs up; the gateway ends the FXS leg: the phone hears busy.
    rig.ctl.hang_up_line().expect("hang up");
    rig.until_fxo(1000, |e| matches!(e, LineEvent::Ended { .. }));
    rig.fxs
        .command(LineCommand::Hangup { tone: Tone::Busy }, rig.now)
        .expect("hangup");
    let _ = rig.ctl.phone_heard();
    rig.step(2500);
    assert!(heard_tones(&rig.ctl.phone_heard(), "us").contains(&ToneKind::Busy));
}

#[test]
fn withheld_caller_and_ringing_that_stops() {
    let mut rig = Rig::new(ExchangeConfig::default());
    let caller = CallerId::absent(Absence::Private).at(DateTime::new(12, 25, 8, 0).expect("d"));
    rig.ctl
        .ring_line(Some(&caller), CidSignalling::Bell)
        .expect("ring");
    let (_, e) = rig.until_fxo(6000, |e| matches!(e, LineEvent::Incoming { .. }));
    let LineEvent::Incoming {
        caller: Some(got), ..
    } = e
    else {
        panic!("{e:?}")
    };
    assert_eq!(got.number_absent, Some(Absence::Private));
    rig.ctl.hang_up_line().expect("caller gives up");
    let (_, e) = rig.until_fxo(10_000, |e| matches!(e, LineEvent::Ended { .. }));
    assert_eq!(
        e,
        LineEvent::Ended {
            reason: EndReason::RingingStopped,
            answered: false
        }
    );
}

#[test]
fn power_alarm_and_chip_self_reset_are_recovered() {
    let mut rig = Rig::new(ExchangeConfig::default());
    rig.step(100);
    // The chip opens the line by itself (a power alarm): the port restores it.
    rig.ctl.chips(|slic, _| slic.power_alarm());
    rig.step(1100);
    assert_eq!(rig.fxs.status().alarms.power, 1);
    assert_eq!(rig.fxs.status().alarms.thermal, 1);
    assert_ne!(
        rig.ctl.chips(|slic, _| slic.linefeed_actual()),
        flowgate_analog::si321x::regs::Linefeed::Open
    );
    // The chip resets itself: the port notices and initialises it again (restoring the
    // calibration), and the phone works afterwards.
    rig.ctl.chips(|slic, _| slic.self_reset());
    rig.step(1100);
    assert_eq!(rig.fxs.status().chip.as_deref(), Some("Si3215 rev 3"));
    rig.ctl.lift_handset();
    rig.until_fxs(300, |e| *e == LineEvent::OffHook);
}

/// The phone calls out through the FXO line and the far end answers: both ports connected,
/// their call audio bridged.
fn phone_in_a_call_through_the_fxo_line(rig: &mut Rig) {
    rig.ctl.lift_handset();
    rig.until_fxs(200, |e| *e == LineEvent::OffHook);
    rig.ctl.dial("0555#", DialMethod::Dtmf).expect("digits");
    let (_, e) = rig.until_fxs(3000, |e| matches!(e, LineEvent::Dialled { .. }));
    let LineEvent::Dialled {
        route: Route::Outside(number),
        ..
    } = e
    else {
        panic!("{e:?}")
    };
    rig.fxo
        .command(LineCommand::Dial(number), rig.now)
        .expect("dial");
    rig.until_fxo(5000, |e| *e == LineEvent::Answered);
    rig.fxs
        .command(LineCommand::Answer, rig.now)
        .expect("connect");
    rig.bridge = true;
    rig.step(4000);
    rig.ctl.answer_line().expect("far end answers");
    rig.step(100);
}

/// Whether each side hears the other: the phone says 1000 Hz, the far end 600 Hz.
fn both_ways(rig: &mut Rig) -> (f64, f64) {
    let _ = (rig.ctl.line_heard(), rig.ctl.phone_heard());
    rig.ctl.phone_say(&sine(1000.0, 600));
    rig.ctl.line_say(&sine(600.0, 600));
    rig.step(1000);
    (
        tone_fraction(&rig.ctl.line_heard(), 1000.0),
        tone_fraction(&rig.ctl.phone_heard(), 600.0),
    )
}

#[test]
fn flash_hook_holds_the_call_with_dial_tone_and_the_next_flash_takes_it_back() {
    let mut rig = Rig::new(ExchangeConfig::default());
    phone_in_a_call_through_the_fxo_line(&mut rig);
    let (far_hears, phone_hears) = both_ways(&mut rig);
    assert!(
        far_hears > 0.3 && phone_hears > 0.3,
        "{far_hears} {phone_hears}"
    );

    // A 400 ms flash (inside the default 100–800 ms window) holds the call.
    rig.ctl.flash(400);
    let (t_flash, e) = rig.until_fxs(1000, |e| matches!(e, LineEvent::Flash { .. }));
    assert_eq!(e, LineEvent::Flash { held: true });
    // Reported when the phone is back off-hook, after the 10 ms debounce (5 ms polls).
    let flashed_at = t_flash;
    rig.step(1500);
    assert!(
        heard_tones(&rig.ctl.phone_heard(), "us").contains(&ToneKind::Dial),
        "a held call gives the phone recall dial tone"
    );
    let (far_hears, phone_hears) = both_ways(&mut rig);
    assert!(
        far_hears < 0.01,
        "the far end must not hear a held phone: {far_hears}"
    );
    assert!(
        phone_hears < 0.01,
        "the held far end is not heard: {phone_hears}"
    );
    // Digits while held are not collected (no consultation call), by DTMF or pulses.
    rig.ctl.dial("5", DialMethod::Dtmf).expect("digit");
    rig.ctl.dial("3", DialMethod::Pulse).expect("digit");
    rig.step(2000);
    assert!(
        rig.fxs_events
            .iter()
            .all(|(t, e)| *t <= flashed_at || matches!(e, LineEvent::Flash { .. })),
        "{:?}",
        rig.fxs_events
    );
    assert!(rig.fxs.line().in_call());

    // The next flash takes the call back: audio both ways again.
    rig.ctl.flash(300);
    let (_, e) = rig.until_fxs(1000, |e| matches!(e, LineEvent::Flash { .. }));
    assert_eq!(e, LineEvent::Flash { held: false });
    let (far_hears, phone_hears) = both_ways(&mut rig);
    assert!(
        far_hears > 0.3 && phone_hears > 0.3,
        "{far_hears} {phone_hears}"
    );

    // Nothing the call heard from the phone across hold and retrieval sounds like a key.
    let mut keys = Vec::new();
    flowgate_dsp::DtmfDetector::new(flowgate_dsp::DtmfConfig::new(8000))
        .expect("detector")
        .process_with(&rig.fxs_call_audio, |e| keys.push(e));
    assert!(keys.is_empty(), "{keys:?}");

    // On-hook longer than the window is a hang-up, reported 800 ms after the edge.
    rig.ctl.flash(900);
    let (t_end, e) = rig.until_fxs(1500, |e| matches!(e, LineEvent::Ended { .. }));
    assert_eq!(
        e,
        LineEvent::Ended {
            reason: EndReason::PhoneOnHook,
            answered: true
        }
    );
    assert!(
        !rig.fxs_events
            .iter()
            .any(|(t, e)| *t > t_flash && *e == LineEvent::Flash { held: true }),
        "a 900 ms break is not a flash"
    );
    // Back off-hook after 900 ms: a new call with dial tone.
    let (t_off, _) = rig.until_fxs(500, |e| *e == LineEvent::OffHook);
    assert!(t_off > t_end);
}

#[test]
fn after_the_far_end_clears_a_phone_left_off_hook_hears_busy_then_howler_then_silence() {
    let board = SimBoard::new(ExchangeConfig::default()).expect("board");
    let mut cfg = flowgate_analog::port::FxsPortConfig::for_zone("us").expect("us");
    // Short timers so the test walks the whole path; the defaults are 30 s and 40 s.
    cfg.line.reorder_ms = 3000;
    cfg.line.howler_ms = 3000;
    let fxs = board
        .fxs_port(
            flowgate_analog::si321x::FxsChipConfig::new(flowgate_analog::si321x::Part::Si3215),
            cfg,
        )
        .expect("fxs");
    let fxo = board.default_fxo_port().expect("fxo");
    let mut rig = Rig::with_ports(board, fxs, fxo);
    phone_in_a_call_through_the_fxo_line(&mut rig);
    // The far end hangs up; the gateway ends the FXS leg with busy.
    rig.ctl.hang_up_line().expect("hang up");
    rig.until_fxo(1000, |e| matches!(e, LineEvent::Ended { .. }));
    rig.fxs
        .command(LineCommand::Hangup { tone: Tone::Busy }, rig.now)
        .expect("hangup");
    let cleared = rig.now;
    let (_, e) = rig.until_fxs(100, |e| matches!(e, LineEvent::Ended { .. }));
    assert_eq!(
        e,
        LineEvent::Ended {
            reason: EndReason::Local,
            answered: true
        }
    );
    let _ = rig.ctl.phone_heard();
    rig.step(2500);
    let busy = rig.ctl.phone_heard();
    assert_eq!(heard_tones(&busy, "us"), vec![ToneKind::Busy]);
    // Howler from 3 s after the clearing: 1400 + 2060 Hz, 100 ms on / 100 ms off.
    rig.step(cleared + 3000 + 200 - rig.now);
    let _ = rig.ctl.phone_heard();
    rig.step(2000);
    let howler = rig.ctl.phone_heard();
    let both = tone_fraction(&howler, 1400.0) + tone_fraction(&howler, 2060.0);
    // The 100/100 ms cadence puts half of each tone's power into its sidebands (5 Hz apart):
    // two tones fully there read 0.25 each.
    assert!(
        both > 0.45,
        "howler heard: {both} (1400 Hz {}, 2060 Hz {})",
        tone_fraction(&howler, 1400.0),
        tone_fraction(&howler, 2060.0)
    );
    assert!(tone_fraction(&howler, 480.0) < 0.01, "busy is over");
    // …louder than the call-progress tones (+10 dB) so it is heard across a room.
    let rms =
        |x: &[i16]| (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
    assert!(
        rms(&howler) > 2.0 * rms(&busy),
        "{} vs {}",
        rms(&howler),
        rms(&busy)
    );
    // Then permanent signal: silence, one event, the port waits for the phone to go on-hook.
    let (t_ps, _) = rig.until_fxs(2000, |e| *e == LineEvent::PermanentSignal);
    assert!(
        (cleared + 6000..=cleared + 6010).contains(&t_ps),
        "permanent signal at {} ms after clearing",
        t_ps - cleared
    );
    rig.step(100);
    let _ = rig.ctl.phone_heard();
    rig.step(1000);
    assert!(rig.ctl.phone_heard().iter().all(|&v| v == 0));
    assert!(
        rig.fxs
            .command(LineCommand::Ring { caller: None }, rig.now)
            .is_err(),
        "a phone in permanent signal is busy"
    );
    rig.ctl.hang_up();
    rig.step(1000);
    rig.fxs
        .command(LineCommand::Ring { caller: None }, rig.now)
        .expect("on-hook again: the phone can be rung");
    rig.step(100);
    assert!(rig.ctl.phone_ringing());
}
