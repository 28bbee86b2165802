//! Analog ports as lines, on the simulated board, in real time: the runner threads drive the
//! real drivers, line logic and audio path; the test acts as the phone user, the exchange and
//! the runtime (leg operations, the leg event stream, the call audio port).

use std::sync::Arc;
use std::time::Duration;

use flowgate_analog::cid::CallerId;
use flowgate_analog::country::CidSignalling;
use flowgate_analog::sim::{
    AnalogSimControl, Chip, DialMethod, ExchangeConfig, ExchangeState, SimBoard,
};
use flowgate_board::analog::{AnalogLine, AnalogLineConfig, SimPortIo};
use flowgate_line::{
    Availability, Cause, LegAudio, LegEvent, Line, LineEvents, Party, Placement, Progress,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Bounds failure only; the events come as fast as the simulated line allows.
const LIMIT: Duration = Duration::from_secs(30);

struct Rig {
    ctl: AnalogSimControl,
    fxs: Arc<AnalogLine>,
    fxo: Arc<AnalogLine>,
    fxs_events: LineEvents,
    fxo_events: LineEvents,
    _cancel: tokio_util::sync::DropGuard,
}

fn rig() -> Rig {
    let board = SimBoard::new(ExchangeConfig::default()).expect("board");
    let cancel = CancellationToken::new();
    let fxs = AnalogLine::spawn(
        AnalogLineConfig {
            id: "fxs0".into(),
            own_number: "200".into(),
        },
        Box::new(board.default_fxs_port().expect("fxs")),
        Box::new(SimPortIo::new(board.clone(), Chip::Slic)),
        cancel.child_token(),
    )
    .expect("runner");
    let fxo = AnalogLine::spawn(
        AnalogLineConfig {
            id: "fxo0".into(),
            own_number: String::new(),
        },
        Box::new(board.default_fxo_port().expect("fxo")),
        Box::new(SimPortIo::new(board.clone(), Chip::Daa)),
        cancel.child_token(),
    )
    .expect("runner");
    Rig {
        ctl: board.control(),
        fxs_events: fxs.take_events().expect("events"),
        fxo_events: fxo.take_events().expect("events"),
        fxs,
        fxo,
        _cancel: cancel.drop_guard(),
    }
}

async fn next(events: &mut LineEvents) -> LegEvent {
    tokio::time::timeout(LIMIT, events.recv())
        .await
        .expect("a leg event in time")
        .expect("stream open")
}

async fn ready(line: &AnalogLine) {
    let mut w = line.watch_status();
    tokio::time::timeout(LIMIT, w.wait_for(|s| s.fault.is_none()))
        .await
        .expect("port starts")
        .expect("runner alive");
    assert_eq!(line.availability(), Availability::Ready);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_dials_an_extension_and_its_call_carries_audio() {
    let mut r = rig();
    ready(&r.fxs).await;
    r.ctl.lift_handset();
    r.ctl.dial("300#", DialMethod::Dtmf).expect("digits");
    let LegEvent::Incoming {
        leg,
        caller,
        callee,
    } = next(&mut r.fxs_events).await
    else {
        panic!("expected the call");
    };
    assert_eq!(
        (caller.number.as_str(), callee.number.as_str()),
        ("200", "300")
    );
    assert_eq!(r.fxs.availability(), Availability::Busy);
    r.fxs.answer(leg).await.expect("answer");
    assert_eq!(next(&mut r.fxs_events).await, LegEvent::Answered { leg });
    assert_eq!(next(&mut r.fxs_events).await, LegEvent::AudioReady { leg });
    let LegAudio::Port(mut port) = r.fxs.audio(leg) else {
        panic!("a port");
    };
    // What the call sends reaches the phone's earpiece.
    let tone: Vec<i16> = (0..160)
        .map(|i| if i % 8 < 4 { 6000 } else { -6000 })
        .collect();
    let mut frame = vec![0i16; 160];
    let _ = r.ctl.phone_heard();
    for _ in 0..25 {
        port.write_frame(&tone).expect("write");
        port.read_frame(&mut frame).expect("read");
    }
    let heard = r.ctl.phone_heard();
    let loud = heard.iter().filter(|s| s.unsigned_abs() > 2000).count();
    assert!(loud > 400, "the phone heard the call ({loud} loud samples)");
    r.ctl.hang_up();
    let LegEvent::Ended { leg: ended, cause } = next(&mut r.fxs_events).await else {
        panic!("expected the end");
    };
    assert_eq!((ended, cause.cause), (leg, Cause::Normal));
    // The call's audio port closes with the call.
    // (after the frames still queued for it)
    let until = std::time::Instant::now() + LIMIT;
    while port.read_frame(&mut frame).is_ok() {
        assert!(
            std::time::Instant::now() < until,
            "the audio port closes when the call ends"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_rings_the_phone_with_caller_id() {
    let mut r = rig();
    ready(&r.fxs).await;
    let leg = Uuid::now_v7();
    r.fxs
        .place(
            leg,
            Placement {
                to: Party::number("200"),
                from: Party {
                    number: "5551234567".into(),
                    display_name: "ALICE".into(),
                    uri: String::new(),
                },
            },
        )
        .await
        .expect("ring");
    assert_eq!(
        next(&mut r.fxs_events).await,
        LegEvent::Progress {
            leg,
            progress: Progress::Ringing
        }
    );
    let cid = r
        .ctl
        .wait_for(LIMIT, |s| s.phone.caller_ids().first().cloned())
        .expect("caller ID shown");
    assert_eq!(cid.number.as_deref(), Some("5551234567"));
    assert_eq!(cid.name.as_deref(), Some("ALICE"));
    r.ctl.lift_handset();
    assert_eq!(next(&mut r.fxs_events).await, LegEvent::Answered { leg });
    assert_eq!(next(&mut r.fxs_events).await, LegEvent::AudioReady { leg });
    r.fxs.hangup(leg, Cause::Normal).await.expect("hangup");
    let LegEvent::Ended { cause, .. } = next(&mut r.fxs_events).await else {
        panic!("expected the end");
    };
    assert_eq!(cause.cause, Cause::Normal);
    // A second hang-up of the ended leg is not an error.
    r.fxs.hangup(leg, Cause::Normal).await.expect("idempotent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exchange_line_rings_with_caller_id_and_the_far_end_hangs_up() {
    let mut r = rig();
    ready(&r.fxo).await;
    r.ctl
        .ring_line(
            Some(&CallerId::new("5559876543", Some("BOB"))),
            CidSignalling::Bell,
        )
        .expect("ring");
    let LegEvent::Incoming { leg, caller, .. } = next(&mut r.fxo_events).await else {
        panic!("expected the call");
    };
    assert_eq!(caller.number, "5559876543");
    assert_eq!(caller.display_name, "BOB");
    r.fxo.answer(leg).await.expect("answer");
    assert_eq!(next(&mut r.fxo_events).await, LegEvent::Answered { leg });
    assert_eq!(next(&mut r.fxo_events).await, LegEvent::AudioReady { leg });
    // The exchange sees the gateway's off-hook after its own debounce.
    r.ctl
        .wait_for(LIMIT, |s| {
            (*s.exchange.state() == ExchangeState::Connected).then_some(())
        })
        .expect("the exchange saw the answer");
    r.ctl.hang_up_line().expect("far end hangs up");
    let LegEvent::Ended { leg: ended, cause } = next(&mut r.fxo_events).await else {
        panic!("expected the end");
    };
    assert_eq!(ended, leg);
    assert!(cause.detail.starts_with("far end"), "{cause:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_dials_out_on_the_exchange_line() {
    let mut r = rig();
    ready(&r.fxo).await;
    let leg = Uuid::now_v7();
    r.fxo
        .place(
            leg,
            Placement {
                to: Party::number("5550100"),
                from: Party::default(),
            },
        )
        .await
        .expect("dial");
    assert_eq!(
        next(&mut r.fxo_events).await,
        LegEvent::Progress {
            leg,
            progress: Progress::Trying
        }
    );
    assert_eq!(next(&mut r.fxo_events).await, LegEvent::Answered { leg });
    assert_eq!(next(&mut r.fxo_events).await, LegEvent::AudioReady { leg });
    let dialled = r
        .ctl
        .wait_for(LIMIT, |s| s.exchange.dialled().first().cloned());
    assert_eq!(dialled.as_deref(), Some("5550100"));
    r.fxo.hangup(leg, Cause::Normal).await.expect("hangup");
    let LegEvent::Ended { cause, .. } = next(&mut r.fxo_events).await else {
        panic!("expected the end");
    };
    assert_eq!(cause.cause, Cause::Normal);
}
