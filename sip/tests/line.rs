//! The user agent as a call-leg `Line`: two user agents on loopback, each wrapped in a
//! `SipLine`, place, ring, answer, carry audio and digits, hold, and end with mapped
//! causes — the events in the contract's order; REFERs from the peer become transfer requests.

#![allow(
    clippy::unwrap_used,
    clippy::field_reassign_with_default,
    reason = "tests"
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use flowgate_line::{
    Cause, DtmfSource, LegAudio, LegEvent, LegId, Line, LineEvents, Party, Placement, Progress,
    TransferTarget,
};
use flowgate_sip::line::SipLine;
use flowgate_sip::ua::{AuthIdentity, UserAgent};
use uuid::Uuid;

async fn line(config: flowgate_sip::config::SipConfig) -> (Arc<SipLine>, LineEvents) {
    let (ua, events) = UserAgent::start(config.clone()).await.unwrap();
    let (line, _notices) = SipLine::new("sip", ua, events, &config, None);
    let events = line.take_events().unwrap();
    assert!(line.take_events().is_none(), "the stream is taken once");
    (line, events)
}

async fn next_leg(ev: &mut LineEvents) -> LegEvent {
    tokio::time::timeout(Duration::from_secs(30), ev.recv())
        .await
        .expect("no leg event within 30 s")
        .expect("leg events closed")
}

async fn wait_leg(ev: &mut LineEvents, mut pick: impl FnMut(&LegEvent) -> bool) -> LegEvent {
    loop {
        let e = next_leg(ev).await;
        if pick(&e) {
            return e;
        }
    }
}

/// Runs a port like the media layer does (a frame out, a frame in) until the call closes
/// it; says on the channel when the far end's sound first arrives. The thread must keep
/// running: RFC 4733 digits leave through the stream's media thread.
fn media(audio: LegAudio, tone: i16) -> std::sync::mpsc::Receiver<()> {
    let LegAudio::Port(mut port) = audio else {
        panic!("a SIP leg's audio is a port")
    };
    let (heard, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let out: Vec<i16> = (0..160)
            .map(|i| if i % 8 < 4 { tone } else { -tone })
            .collect();
        let mut frame = [0i16; 160];
        let mut told = false;
        while port.write_frame(&out).is_ok() && port.read_frame(&mut frame).is_ok() {
            if !told && frame.iter().any(|s| s.unsigned_abs() > 1000) {
                told = heard.send(()).is_ok();
            }
        }
    });
    rx
}

fn heard(rx: &std::sync::mpsc::Receiver<()>) -> bool {
    rx.recv_timeout(Duration::from_secs(30)).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sip_leg_rings_answers_carries_audio_and_digits_holds_and_ends() {
    let (a, mut ea) = line(config("127.0.0.1", 43_000)).await;
    let mut cb = config("127.0.0.1", 44_000);
    cb.trunks.push(trusted(
        "lan",
        "127.0.0.1:5999".parse().unwrap(),
        "127.0.0.1/32",
    ));
    let (b, mut eb) = line(cb).await;

    let leg: LegId = Uuid::now_v7();
    let to = format!("sip:300@{}", b.user_agent().udp_addr());
    a.place(
        leg,
        Placement {
            to: Party {
                uri: to,
                ..Party::default()
            },
            from: Party::number("5550100"),
        },
    )
    .await
    .unwrap();
    assert!(a.leg_info(leg).unwrap().remote_uri.starts_with("sip:300@"));

    let LegEvent::Incoming {
        leg: bleg,
        caller,
        callee,
    } = next_leg(&mut eb).await
    else {
        panic!("first event on the callee's line is Incoming")
    };
    assert_eq!(caller.number, "5550100");
    assert_eq!(callee.number, "300");
    let info = b.leg_info(bleg).unwrap();
    assert_eq!(info.auth, Some(AuthIdentity::Trunk("lan".into())));
    assert!(!info.sip_call_id.is_empty());

    // The callee's line rings the caller at once (180), before anyone answers.
    let mut seen = Vec::new();
    loop {
        let e = next_leg(&mut ea).await;
        seen.push(e.clone());
        if e == (LegEvent::Progress {
            leg,
            progress: Progress::Ringing,
        }) {
            break;
        }
    }
    b.answer(bleg).await.unwrap();
    wait_leg(&mut eb, |e| *e == LegEvent::AudioReady { leg: bleg }).await;
    wait_leg(&mut ea, |e| *e == LegEvent::Answered { leg }).await;
    wait_leg(&mut eb, |e| *e == LegEvent::Answered { leg: bleg }).await;

    // Audio both ways through the ports the lines hand out.
    let from_b = media(b.audio(bleg), 8000);
    let from_a = media(a.audio(leg), 8000);
    assert!(
        matches!(a.audio(leg), LegAudio::Unavailable(_)),
        "taken once"
    );
    assert!(heard(&from_a), "the caller heard the callee");
    assert!(heard(&from_b), "the callee heard the caller");

    // Digits out of band (RFC 4733, negotiated), reported as signalled.
    a.send_dtmf(leg, "5").await.unwrap();
    let e = wait_leg(&mut eb, |e| matches!(e, LegEvent::Dtmf { .. })).await;
    assert_eq!(
        e,
        LegEvent::Dtmf {
            leg: bleg,
            digit: '5',
            source: DtmfSource::Signalled
        }
    );

    // Hold and take back by re-INVITE.
    a.hold(leg).await.unwrap();
    wait_leg(&mut eb, |e| *e == LegEvent::Held { leg: bleg }).await;
    a.retrieve(leg).await.unwrap();
    wait_leg(&mut eb, |e| *e == LegEvent::Retrieved { leg: bleg }).await;

    // The callee hangs up: both legs end once, normally.
    b.hangup(bleg, Cause::Normal).await.unwrap();
    let LegEvent::Ended { cause, .. } =
        wait_leg(&mut ea, |e| matches!(e, LegEvent::Ended { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(cause.cause, Cause::Normal);
    wait_leg(&mut eb, |e| matches!(e, LegEvent::Ended { .. })).await;
    assert!(a.leg_info(leg).is_none());
    // Hanging up an ended leg is not an error; other operations say the leg is gone.
    a.hangup(leg, Cause::Normal).await.unwrap();
    assert!(a.answer(leg).await.is_err());
    assert!(
        seen.iter().all(|e| e.leg() == leg),
        "only the caller's leg: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_call_ends_with_the_mapped_cause() {
    let (a, mut ea) = line(config("127.0.0.1", 45_000)).await;
    let mut cb = config("127.0.0.1", 46_000);
    cb.trunks.push(trusted(
        "lan",
        "127.0.0.1:5999".parse().unwrap(),
        "127.0.0.1/32",
    ));
    let (b, mut eb) = line(cb).await;
    let leg = Uuid::now_v7();
    a.place(
        leg,
        Placement {
            to: Party::number(format!("400@{}", b.user_agent().udp_addr())),
            from: Party::number("5550101"),
        },
    )
    .await
    .unwrap();
    let LegEvent::Incoming { leg: bleg, .. } = next_leg(&mut eb).await else {
        panic!("Incoming first")
    };
    // A busy mobile behind the gateway: the PBX hears 486, the caller's line "busy".
    b.hangup(bleg, Cause::Busy).await.unwrap();
    let LegEvent::Ended { cause, .. } =
        wait_leg(&mut ea, |e| matches!(e, LegEvent::Ended { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(cause.cause, Cause::Busy);
    assert_eq!(cause.q850, 17);
    assert!(cause.detail.contains("486"), "{}", cause.detail);

    // A destination the line cannot route is refused before anything is sent.
    let err = a
        .place(
            Uuid::now_v7(),
            Placement {
                to: Party::number("+4930123"),
                from: Party::default(),
            },
        )
        .await
        .unwrap_err();
    assert!(!err.fails_over(), "{err}");
}

/// Places a call from `a` to `b` and answers it; returns (a's leg, b's leg).
async fn answered_call(
    a: &SipLine,
    ea: &mut LineEvents,
    b: &SipLine,
    eb: &mut LineEvents,
    user: &str,
) -> (LegId, LegId) {
    let leg: LegId = Uuid::now_v7();
    let to = format!("sip:{user}@{}", b.user_agent().udp_addr());
    a.place(
        leg,
        Placement {
            to: Party {
                uri: to,
                ..Party::default()
            },
            from: Party::number("5550100"),
        },
    )
    .await
    .unwrap();
    let LegEvent::Incoming { leg: bleg, .. } =
        wait_leg(eb, |e| matches!(e, LegEvent::Incoming { .. })).await
    else {
        unreachable!()
    };
    b.answer(bleg).await.unwrap();
    wait_leg(ea, |e| *e == LegEvent::Answered { leg }).await;
    wait_leg(eb, |e| *e == LegEvent::Answered { leg: bleg }).await;
    (leg, bleg)
}

async fn ended_with(ev: &mut LineEvents, leg: LegId) -> Cause {
    let LegEvent::Ended { cause, .. } = wait_leg(
        ev,
        |e| matches!(e, LegEvent::Ended { leg: l, .. } if *l == leg),
    )
    .await
    else {
        unreachable!()
    };
    cause.cause
}

/// REFERs from the peer become the contract's transfer requests: an attended one naming
/// another of the line's dialogs joins the two legs (the replaced one is hung up, both end
/// `Transferred`), a blind one to the gateway's own address asks for the number, and one
/// to a trunk's proxy is refused without asking anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refers_from_the_peer_become_transfer_requests() {
    let (a, mut ea) = line(config("127.0.0.1", 56_000)).await;
    let mut cb = config("127.0.0.1", 57_000);
    cb.trunks.push(trusted(
        "lan",
        "127.0.0.1:5999".parse().unwrap(),
        "127.0.0.1/32",
    ));
    let (b, mut eb) = line(cb).await;

    // Attended: the phone (a) has two calls through the gateway (b) and joins them.
    let (a1, b1) = answered_call(&a, &mut ea, &b, &mut eb, "201").await;
    let (a2, b2) = answered_call(&a, &mut ea, &b, &mut eb, "202").await;
    a.transfer(a1, TransferTarget::Leg(a2)).await.unwrap();
    let e = wait_leg(&mut eb, |e| matches!(e, LegEvent::TransferRequested { .. })).await;
    assert_eq!(
        e,
        LegEvent::TransferRequested {
            leg: b1,
            to: TransferTarget::Leg(b2)
        }
    );
    // The gateway ends the replaced dialog; the phone ends the referring one.
    assert_eq!(ended_with(&mut eb, b2).await, Cause::Transferred);
    ended_with(&mut ea, a2).await;
    a.hangup(a1, Cause::Normal).await.unwrap();
    assert_eq!(ended_with(&mut eb, b1).await, Cause::Transferred);

    // Blind, to a number at the gateway: the owner of the calls decides and reports.
    let (a3, b3) = answered_call(&a, &mut ea, &b, &mut eb, "203").await;
    let gw = b.user_agent().udp_addr();
    a.transfer(
        a3,
        TransferTarget::Party(Party {
            uri: format!("sip:200@{gw}"),
            ..Party::default()
        }),
    )
    .await
    .unwrap();
    let e = wait_leg(&mut eb, |e| matches!(e, LegEvent::TransferRequested { .. })).await;
    assert_eq!(
        e,
        LegEvent::TransferRequested {
            leg: b3,
            to: TransferTarget::Party(Party::number("200"))
        }
    );
    b.transfer_outcome(b3, Ok(())).await.unwrap();
    a.hangup(a3, Cause::Normal).await.unwrap();
    assert_eq!(ended_with(&mut eb, b3).await, Cause::Transferred);

    // Blind, to the trunk's proxy: refused by the line (a call there would be the
    // gateway's, with its credentials); nothing is asked of the owner.
    let (a4, b4) = answered_call(&a, &mut ea, &b, &mut eb, "204").await;
    a.transfer(
        a4,
        TransferTarget::Party(Party {
            uri: "sip:+4490012345@127.0.0.1:5999".into(),
            ..Party::default()
        }),
    )
    .await
    .unwrap();
    a.hangup(a4, Cause::Normal).await.unwrap();
    let e = wait_leg(&mut eb, |e| {
        matches!(
            e,
            LegEvent::TransferRequested { .. } | LegEvent::Ended { .. }
        )
    })
    .await;
    assert!(
        matches!(e, LegEvent::Ended { leg, ref cause } if leg == b4 && cause.cause == Cause::Normal),
        "{e:?}"
    );
}

/// An attended transfer the phone set up without the gateway: the phone (a) has a call
/// through the gateway (b) and a consultation call straight to the target (c), and REFERs
/// the gateway's call to c with `Replaces` naming the consultation dialog. The gateway
/// does not have that dialog, so it is the transferee: the line asks its owner to call
/// c with the `Replaces` riding on the address, the INVITE that follows reaches c at its
/// Request-URI (the URI header is not part of it), and the owner's outcome is the final
/// NOTIFY (the leg then ends `Transferred`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attended_refer_to_a_dialog_elsewhere_asks_to_call_the_target_with_it() {
    let trusting = |base| {
        let mut c = config("127.0.0.1", base);
        c.trunks.push(trusted(
            "lan",
            "127.0.0.1:5999".parse().unwrap(),
            "127.0.0.1/32",
        ));
        c
    };
    let (a, mut ea) = line(config("127.0.0.1", 58_000)).await;
    let (b, mut eb) = line(trusting(58_500)).await;
    let (c, mut ec) = line(trusting(59_000)).await;

    let (a1, b1) = answered_call(&a, &mut ea, &b, &mut eb, "201").await;
    let (consult, c_consult) = answered_call(&a, &mut ea, &c, &mut ec, "300").await;
    a.transfer(a1, TransferTarget::Leg(consult)).await.unwrap();
    let e = wait_leg(&mut eb, |e| matches!(e, LegEvent::TransferRequested { .. })).await;
    let LegEvent::TransferRequested {
        leg,
        to: TransferTarget::Party(target),
    } = e
    else {
        panic!("not a transfer to a party: {e:?}")
    };
    assert_eq!(leg, b1);
    let (uri, replaces) = flowgate_sip::refer::split_uri_headers(&target.uri).unwrap();
    assert!(
        uri.contains(&c.user_agent().udp_addr().to_string()),
        "the target's address: {uri}"
    );
    let replaces = replaces.expect("the Replaces rides on the address");
    assert_eq!(
        replaces.call_id,
        flowgate_sip::ua::outgoing_call_id(consult),
        "it names the consultation dialog"
    );

    // The owner places the call the line asked for; the target sees a call that takes
    // the place of its consultation call (RFC 3891).
    let bc: LegId = Uuid::now_v7();
    b.place(
        bc,
        Placement {
            to: target,
            from: Party::number("5550100"),
        },
    )
    .await
    .unwrap();
    let LegEvent::Replacing {
        leg: cb, replaced, ..
    } = wait_leg(&mut ec, |e| matches!(e, LegEvent::Replacing { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(replaced, c_consult);
    c.answer(cb).await.unwrap();
    wait_leg(&mut eb, |e| *e == LegEvent::Answered { leg: bc }).await;
    b.transfer_outcome(b1, Ok(())).await.unwrap();
    a.hangup(a1, Cause::Normal).await.unwrap();
    assert_eq!(ended_with(&mut eb, b1).await, Cause::Transferred);

    // The same REFER naming the referring dialog itself is refused outright.
    let (a2, _b2) = answered_call(&a, &mut ea, &b, &mut eb, "202").await;
    let refused = a.transfer(a2, TransferTarget::Leg(a2)).await;
    assert!(refused.is_err(), "{refused:?}");
}
