//! Two user agents in one process on loopback: call flows in and out, media and digits,
//! hold, transfer, cancel, busy, and the security rules (challenge, wrong password,
//! ban, registrar and calls to an extension).

#![allow(
    clippy::unwrap_used,
    clippy::field_reassign_with_default,
    reason = "tests"
)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use flowgate_sip::cause::Cause;
use flowgate_sip::config::ExtensionConfig;
use flowgate_sip::ua::{AuthIdentity, Destination, DtmfSource, Party, Progress, UaEvent};
use uuid::Uuid;

fn party(n: &str) -> Party {
    Party {
        number: n.into(),
        display_name: format!("Caller {n}"),
        uri: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_answer_media_dtmf_hold_and_hangup() {
    let (a, mut ea) = start(config("127.0.0.1", 41_000)).await;
    let mut cb = config("127.0.0.1", 42_000);
    cb.trunks.push(trusted(
        "lan",
        "127.0.0.1:5060".parse().unwrap(),
        "127.0.0.1/32",
    ));
    let (b, mut eb) = start(cb).await;

    let id = Uuid::now_v7();
    let to = Destination::Uri(format!("sip:200@{}", b.udp_addr()));
    a.call(id, to, party("5551234")).await.unwrap();

    let (bid, caller, callee, auth) = wait_for(&mut eb, |e| match e {
        UaEvent::Incoming {
            call,
            caller,
            callee,
            auth,
            ..
        } => Some((*call, caller.clone(), callee.clone(), auth.clone())),
        _ => None,
    })
    .await;
    assert_eq!(caller.number, "5551234");
    assert_eq!(caller.display_name, "Caller 5551234");
    assert_eq!(callee.number, "200");
    assert_eq!(auth, AuthIdentity::Trunk("lan".into()));

    b.progress(bid, false).await.unwrap();
    wait_for(&mut ea, |e| {
        matches!(
            e,
            UaEvent::Progress {
                progress: Progress::Ringing,
                ..
            }
        )
        .then_some(())
    })
    .await;
    b.answer(bid).await.unwrap();
    wait_for(&mut ea, |e| {
        matches!(e, UaEvent::Answered { call } if *call == id).then_some(())
    })
    .await;
    wait_for(&mut eb, |e| {
        matches!(e, UaEvent::Answered { call } if *call == bid).then_some(())
    })
    .await;

    let (ca, ha) = media_thread(a.take_audio(id).unwrap(), 8000);
    let (cbm, hb) = media_thread(b.take_audio(bid).unwrap(), 4000);

    a.send_dtmf(id, "42#", Duration::from_millis(80))
        .await
        .unwrap();
    let mut digits = String::new();
    while digits.len() < 3 {
        let d = wait_for(&mut eb, |e| match e {
            UaEvent::Dtmf {
                digit,
                source: DtmfSource::Rfc4733,
                ..
            } => Some(*digit),
            _ => None,
        })
        .await;
        digits.push(d);
    }
    assert_eq!(digits, "42#");

    a.hold(id).await.unwrap();
    wait_for(&mut eb, |e| {
        matches!(e, UaEvent::Held { call } if *call == bid).then_some(())
    })
    .await;
    a.retrieve(id).await.unwrap();
    wait_for(&mut eb, |e| {
        matches!(e, UaEvent::Retrieved { call } if *call == bid).then_some(())
    })
    .await;

    // Audio flowed both ways (≥ 0.3 s each) at about the sent level.
    while cbm.received.load(Ordering::Relaxed) < 15 || ca.received.load(Ordering::Relaxed) < 15 {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(cbm.peak.load(Ordering::Relaxed) > 6000);

    a.hangup(id, Cause::Normal).await.unwrap();
    let cause = wait_for(&mut eb, |e| match e {
        UaEvent::Ended { call, cause } if *call == bid => Some(cause.clone()),
        _ => None,
    })
    .await;
    assert_eq!(cause.cause, Cause::Normal);
    wait_for(&mut ea, |e| {
        matches!(e, UaEvent::Ended { call, .. } if *call == id).then_some(())
    })
    .await;
    ha.join().unwrap();
    hb.join().unwrap();
    // Nothing is left behind on either side.
    assert_eq!(a.status().await.unwrap().calls, 0);
    assert_eq!(b.status().await.unwrap().calls, 0);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_cancel_and_blind_transfer() {
    let (a, mut ea) = start(config("127.0.0.1", 43_000)).await;
    let mut cb = config("127.0.0.1", 43_500);
    cb.trunks.push(trusted(
        "lan",
        "127.0.0.1:5060".parse().unwrap(),
        "127.0.0.1/32",
    ));
    let (b, mut eb) = start(cb).await;
    let to = || Destination::Uri(format!("sip:300@{}", b.udp_addr()));

    // Busy: 486 with Q.850 17, "busy" for VoIPBIN.
    let id = Uuid::now_v7();
    a.call(id, to(), party("1")).await.unwrap();
    let bid = wait_for(&mut eb, |e| match e {
        UaEvent::Incoming { call, .. } => Some(*call),
        _ => None,
    })
    .await;
    b.hangup(bid, Cause::Busy).await.unwrap();
    let c = wait_for(&mut ea, |e| match e {
        UaEvent::Ended { call, cause } if *call == id => Some(cause.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        (c.cause, c.sip_status, c.q850),
        (Cause::Busy, Some(486), 17)
    );
    assert_eq!(c.cause.voipbin_reason(false), "busy");

    // Cancel: the caller gives up while it rings.
    let id = Uuid::now_v7();
    a.call(id, to(), party("2")).await.unwrap();
    let bid = wait_for(&mut eb, |e| match e {
        UaEvent::Incoming { call, .. } => Some(*call),
        _ => None,
    })
    .await;
    b.progress(bid, true).await.unwrap();
    wait_for(&mut ea, |e| {
        matches!(
            e,
            UaEvent::Progress {
                progress: Progress::EarlyMedia,
                ..
            }
        )
        .then_some(())
    })
    .await;
    a.hangup(id, Cause::Cancelled).await.unwrap();
    let c = wait_for(&mut eb, |e| match e {
        UaEvent::Ended { call, cause } if *call == bid => Some(cause.clone()),
        _ => None,
    })
    .await;
    assert_eq!(c.cause, Cause::Cancelled);
    wait_for(&mut ea, |e| {
        matches!(e, UaEvent::Ended { call, .. } if *call == id).then_some(())
    })
    .await;

    // Blind transfer: A asks B to call someone else; B reports success.
    let id = Uuid::now_v7();
    a.call(id, to(), party("3")).await.unwrap();
    let bid = wait_for(&mut eb, |e| match e {
        UaEvent::Incoming { call, .. } => Some(*call),
        _ => None,
    })
    .await;
    b.answer(bid).await.unwrap();
    wait_for(&mut ea, |e| {
        matches!(e, UaEvent::Answered { .. }).then_some(())
    })
    .await;
    a.transfer(id, "sip:400@127.0.0.1:5999").await.unwrap();
    let target = wait_for(&mut eb, |e| match e {
        UaEvent::TransferRequested { call, target } if *call == bid => Some(target.clone()),
        _ => None,
    })
    .await;
    assert_eq!(target.uri, "sip:400@127.0.0.1:5999");
    assert!(target.replaces.is_none());
    b.transfer_outcome(bid, 200).await.unwrap();
    let st = wait_for(&mut ea, |e| match e {
        UaEvent::TransferResult { call, status } if *call == id => Some(*status),
        _ => None,
    })
    .await;
    assert_eq!(st, 200);
    b.hangup(bid, Cause::Transferred).await.unwrap();
    wait_for(&mut ea, |e| {
        matches!(e, UaEvent::Ended { call, .. } if *call == id).then_some(())
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_are_challenged_refused_and_banned() {
    // The gateway on 127.0.0.1 trusts nothing; the stranger is on 127.0.0.2.
    let mut cg = config("127.0.0.1", 44_000);
    cg.extensions.push(ExtensionConfig {
        user: "201".into(),
        password: "right-password".into(),
        display_name: "Desk".into(),
    });
    cg.security.ban_after_failures = 2;
    let (gw, mut eg) = start(cg).await;
    let (stranger, mut es) = start(config("127.0.0.2", 44_500)).await;
    let to = || Destination::Uri(format!("sip:+15550001@{}", gw.udp_addr()));

    // No credentials at all: 401 challenge, the call never shows up at the gateway.
    let id = Uuid::now_v7();
    stranger.call(id, to(), party("666")).await.unwrap();
    let c = wait_for(&mut es, |e| match e {
        UaEvent::Ended { call, cause } if *call == id => Some(cause.clone()),
        _ => None,
    })
    .await;
    assert_eq!(c.sip_status, Some(401));
    assert!(
        eg.try_recv().is_err(),
        "no event at the gateway for an unauthenticated call"
    );

    // Challenge unknown sources off: 403.
    gw.shutdown().await;
    let mut cg = config("127.0.0.1", 44_000);
    cg.security.challenge_unknown = false;
    let (gw, mut eg) = start(cg).await;
    let id = Uuid::now_v7();
    stranger
        .call(
            id,
            Destination::Uri(format!("sip:1@{}", gw.udp_addr())),
            party("666"),
        )
        .await
        .unwrap();
    let c = wait_for(&mut es, |e| match e {
        UaEvent::Ended { call, cause } if *call == id => Some(cause.clone()),
        _ => None,
    })
    .await;
    assert_eq!(c.sip_status, Some(403));
    assert!(eg.try_recv().is_err());
    gw.shutdown().await;
    stranger.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_registers_with_digest_and_is_called_and_calls() {
    // The gateway (registrar) on 127.0.0.1; the phone on 127.0.0.3 registers to it
    // through a trunk entry with credentials.
    let mut cg = config("127.0.0.1", 45_000);
    // Both algorithms offered (RFC 8760): this user agent picks SHA-256.
    cg.challenge_algorithms = vec![
        flowgate_sip::auth::Algorithm::Sha256,
        flowgate_sip::auth::Algorithm::Md5,
    ];
    cg.extensions.push(ExtensionConfig {
        user: "201".into(),
        password: "phone-secret".into(),
        display_name: "Desk".into(),
    });
    let (gw, mut eg) = start(cg).await;
    let mut cp = config("127.0.0.3", 45_500);
    let mut t = trusted("gw", gw.udp_addr(), "127.0.0.1/32");
    t.username = Some("201".into());
    t.password = Some("phone-secret".into());
    t.register = true;
    t.expires_secs = 120;
    cp.trunks.push(t);
    let (phone, mut ep) = start(cp).await;

    let st = wait_for(&mut ep, |e| match e {
        UaEvent::Registration { state, .. }
            if !matches!(state, flowgate_sip::ua::RegState::Registering) =>
        {
            Some(state.clone())
        }
        _ => None,
    })
    .await;
    assert_eq!(
        st,
        flowgate_sip::ua::RegState::Registered { expires_secs: 120 }
    );
    wait_for(&mut eg, |e| {
        matches!(
            e,
            UaEvent::Extension {
                registered: true,
                ..
            }
        )
        .then_some(())
    })
    .await;
    let s = gw.status().await.unwrap();
    assert_eq!(s.extensions[0].user, "201");

    // The gateway calls the extension (by its binding); the phone trusts the gateway.
    let id = Uuid::now_v7();
    gw.call(
        id,
        Destination::Extension("201".into()),
        party("+15557654321"),
    )
    .await
    .unwrap();
    let pid = wait_for(&mut ep, |e| match e {
        UaEvent::Incoming { call, caller, .. } => {
            assert_eq!(caller.number, "+15557654321");
            Some(*call)
        }
        _ => None,
    })
    .await;
    phone.answer(pid).await.unwrap();
    wait_for(&mut eg, |e| {
        matches!(e, UaEvent::Answered { call } if *call == id).then_some(())
    })
    .await;
    phone.hangup(pid, Cause::Normal).await.unwrap();
    wait_for(&mut eg, |e| {
        matches!(e, UaEvent::Ended { call, .. } if *call == id).then_some(())
    })
    .await;

    // The phone calls out through the gateway: challenged (401), answers with its
    // credentials, and arrives authenticated as extension 201.
    let id = Uuid::now_v7();
    phone
        .call(
            id,
            Destination::Trunk {
                trunk: "gw".into(),
                number: "+15550009999".into(),
            },
            party("201"),
        )
        .await
        .unwrap();
    let (gid, caller, auth) = wait_for(&mut eg, |e| match e {
        UaEvent::Incoming {
            call, caller, auth, ..
        } => Some((*call, caller.clone(), auth.clone())),
        _ => None,
    })
    .await;
    assert_eq!(auth, AuthIdentity::Extension("201".into()));
    assert_eq!(caller.number, "201");
    assert_eq!(caller.display_name, "Caller 201");
    gw.hangup(gid, Cause::NoAnswer).await.unwrap();
    let c = wait_for(&mut ep, |e| match e {
        UaEvent::Ended { call, cause } if *call == id => Some(cause.clone()),
        _ => None,
    })
    .await;
    assert_eq!(c.cause, Cause::NoAnswer);
    gw.shutdown().await;
    phone.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_refused_and_the_source_banned() {
    let mut cg = config("127.0.0.1", 46_000);
    cg.extensions.push(ExtensionConfig {
        user: "201".into(),
        password: "phone-secret".into(),
        display_name: String::new(),
    });
    cg.security.ban_after_failures = 2;
    let (gw, mut eg) = start(cg).await;
    let mut cp = config("127.0.0.4", 46_500);
    let mut t = trusted("gw", gw.udp_addr(), "127.0.0.1/32");
    t.username = Some("201".into());
    t.password = Some("wrong-secret".into());
    cp.trunks.push(t);
    let (phone, mut ep) = start(cp).await;
    for _ in 0..2 {
        let id = Uuid::now_v7();
        phone
            .call(
                id,
                Destination::Trunk {
                    trunk: "gw".into(),
                    number: "1".into(),
                },
                party("201"),
            )
            .await
            .unwrap();
        let c = wait_for(&mut ep, |e| match e {
            UaEvent::Ended { call, cause } if *call == id => Some(cause.clone()),
            _ => None,
        })
        .await;
        assert_eq!(c.sip_status, Some(403));
    }
    // Banned now: the next INVITE gets no answer at all (a timeout at the phone would
    // take 32 s; check the gateway never reports a call and answers nothing).
    let id = Uuid::now_v7();
    phone
        .call(
            id,
            Destination::Trunk {
                trunk: "gw".into(),
                number: "1".into(),
            },
            party("201"),
        )
        .await
        .unwrap();
    let r = tokio::time::timeout(Duration::from_millis(1500), async {
        loop {
            if let Some(UaEvent::Ended { call, .. } | UaEvent::Progress { call, .. }) =
                ep.recv().await
                && call == id
            {
                return;
            }
        }
    })
    .await;
    assert!(r.is_err(), "a banned source got an answer");
    assert!(eg.try_recv().is_err());
    phone.hangup(id, Cause::Normal).await.unwrap();
    gw.shutdown().await;
    phone.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_call_qualify_and_attended_transfer() {
    let mut ca = config("127.0.0.1", 52_000);
    ca.transports = vec![
        flowgate_sip::transaction::Transport::Udp,
        flowgate_sip::transaction::Transport::Tcp,
    ];
    let mut cb = config("127.0.0.1", 52_500);
    cb.transports = ca.transports.clone();
    cb.trunks.push(trusted(
        "lan",
        "127.0.0.1:5060".parse().unwrap(),
        "127.0.0.1/32",
    ));
    let (b, mut eb) = start(cb).await;
    // A pings B with OPTIONS as a qualified trunk.
    let mut qt = trusted("b", b.udp_addr(), "127.0.0.1/32");
    qt.qualify = true;
    ca.trunks.push(qt);
    let (a, mut ea) = start(ca).await;
    let reachable = wait_for(&mut ea, |e| match e {
        UaEvent::TrunkReachable { trunk, reachable } if trunk == "b" => Some(*reachable),
        _ => None,
    })
    .await;
    assert!(reachable);

    // Two calls over TCP from A to B.
    let tcp = b.tcp_addr().unwrap();
    let mut ids = Vec::new();
    let mut bids = Vec::new();
    for n in ["301", "302"] {
        let id = Uuid::now_v7();
        a.call(
            id,
            Destination::Uri(format!("sip:{n}@{tcp};transport=tcp")),
            party("9"),
        )
        .await
        .unwrap();
        let bid = wait_for(&mut eb, |e| match e {
            UaEvent::Incoming { call, .. } => Some(*call),
            _ => None,
        })
        .await;
        b.answer(bid).await.unwrap();
        wait_for(&mut ea, |e| {
            matches!(e, UaEvent::Answered { call } if *call == id).then_some(())
        })
        .await;
        ids.push(id);
        bids.push(bid);
    }
    // Attended transfer: A asks B (first call) to replace the second call.
    a.transfer_attended(ids[0], ids[1]).await.unwrap();
    let target = wait_for(&mut eb, |e| match e {
        UaEvent::TransferRequested { call, target } if *call == bids[0] => Some(target.clone()),
        _ => None,
    })
    .await;
    let rep = target.replaces.expect("Replaces");
    assert_eq!(
        rep.call,
        Some(bids[1]),
        "the Replaces names B's second call"
    );
    b.transfer_outcome(bids[0], 503).await.unwrap();
    let st = wait_for(&mut ea, |e| match e {
        UaEvent::TransferResult { call, status } if *call == ids[0] => Some(*status),
        _ => None,
    })
    .await;
    assert_eq!(st, 503);
    for (id, bid) in ids.iter().zip(&bids) {
        b.hangup(*bid, Cause::Normal).await.unwrap();
        wait_for(&mut ea, |e| {
            matches!(e, UaEvent::Ended { call, .. } if call == id).then_some(())
        })
        .await;
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scanner_flood_dials_nothing_and_the_gateway_stays_responsive() {
    // SIPVicious-style: OPTIONS and INVITEs to guessed extensions from 127.0.0.5, as fast
    // as the socket goes. The gateway rate-limits the source (50/s, burst 100), never
    // reports a call, and still serves a trusted caller at once.
    let mut cg = config("127.0.0.1", 53_000);
    cg.security.rate_per_sec = 50;
    cg.security.rate_burst = 100;
    cg.extensions.push(ExtensionConfig {
        user: "201".into(),
        password: "phone-secret".into(),
        display_name: String::new(),
    });
    cg.trunks.push(trusted(
        "lan",
        "127.0.0.1:5060".parse().unwrap(),
        "127.0.0.1/32",
    ));
    let (gw, mut eg) = start(cg).await;
    let target = gw.udp_addr();
    let scanner = tokio::net::UdpSocket::bind("127.0.0.5:0").await.unwrap();
    let t0 = std::time::Instant::now();
    for i in 0..1000u32 {
        let method = if i % 2 == 0 { "OPTIONS" } else { "INVITE" };
        let msg = format!(
            "{method} sip:{ext}@{target} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.5:5060;branch=z9hG4bKscan{i}\r\nFrom: \"sipvicious\" <sip:100@1.1.1.1>;tag={i}\r\nTo: <sip:{ext}@{target}>\r\nCall-ID: scan{i}\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            ext = 100 + i % 900
        );
        scanner.send_to(msg.as_bytes(), target).await.unwrap();
    }
    let sending = t0.elapsed();
    // Count the requests answered (final responses are retransmitted to a scanner that
    // never ACKs: count Call-IDs) until a second passes quietly.
    let mut answered = std::collections::HashSet::new();
    let mut buf = vec![0u8; 4096];
    while let Ok(Ok((n, _))) =
        tokio::time::timeout(Duration::from_millis(1000), scanner.recv_from(&mut buf)).await
    {
        let Ok(flowgate_sip::message::Message::Response(r)) =
            flowgate_sip::message::parse(&buf[..n], &Default::default())
        else {
            panic!("not a response")
        };
        if r.key().unwrap().cseq_method == flowgate_sip::message::Method::Invite {
            assert!(
                matches!(r.status, 401 | 403),
                "an INVITE from a scanner got {}",
                r.status
            );
        }
        answered.insert(r.key().unwrap().call_id);
    }
    let answers = answered.len();
    let allowed = 100.0 + 50.0 * (t0.elapsed().as_secs_f64());
    // The burst allowance plus what refilled meanwhile, nothing like 1000 (INVITEs get
    // challenges, OPTIONS 200).
    assert!(
        (answers as f64) <= allowed,
        "{answers} requests of 1000 answered (sent in {sending:?}, allowance {allowed:.0})"
    );
    assert!(eg.try_recv().is_err(), "the scan produced an event");

    // A trusted caller still gets through at once.
    let (a, _ea) = start(config("127.0.0.1", 53_500)).await;
    let id = Uuid::now_v7();
    a.call(
        id,
        Destination::Uri(format!("sip:200@{target}")),
        party("7"),
    )
    .await
    .unwrap();
    let auth = wait_for(&mut eg, |e| match e {
        UaEvent::Incoming { auth, .. } => Some(auth.clone()),
        _ => None,
    })
    .await;
    assert_eq!(auth, AuthIdentity::Trunk("lan".into()));
    a.shutdown().await;
    gw.shutdown().await;
}

/// A REFER can make the gateway dial: one from a far end the user agent never
/// authenticated (a plain address it called) is refused with `403` and never reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refer_from_an_unauthenticated_far_end_is_refused() {
    let mut ca = config("127.0.0.1", 54_000);
    ca.trunks.push(trusted(
        "lan",
        "127.0.0.1:5060".parse().unwrap(),
        "127.0.0.1/32",
    ));
    let (a, mut ea) = start(ca).await;
    // B trusts nobody: A is just an address B calls.
    let (b, mut eb) = start(config("127.0.0.1", 55_000)).await;
    let (id, aid) = answered_call(
        (&b, &mut eb),
        (&a, &mut ea),
        format!("sip:200@{}", a.udp_addr()),
        party("1"),
    )
    .await;
    let refused = a
        .transfer(aid, &format!("sip:+4490012345@{}", b.udp_addr()))
        .await;
    assert!(
        matches!(refused, Err(flowgate_sip::ua::UaError::Refused(403))),
        "{refused:?}"
    );
    // The call is still up and nothing asked B's owner to dial: B's next event is the
    // end A causes now.
    a.hangup(aid, Cause::Normal).await.unwrap();
    let next = wait_for(&mut eb, |e| match e {
        UaEvent::TransferRequested { .. } | UaEvent::Ended { .. } => Some(e.clone()),
        _ => None,
    })
    .await;
    assert!(
        matches!(next, UaEvent::Ended { call, .. } if call == id),
        "{next:?}"
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// A trunk's `max_calls`: an INVITE from it beyond the limit gets 503 (the PBX takes its
/// next route), an outgoing call to it fails over as an unreachable trunk would, and a
/// call that ends frees its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_at_its_call_limit_refuses_and_fails_over() {
    let mut pc = config("127.0.0.1", 59_000);
    pc.trunks.push(trusted(
        "gw",
        "127.0.0.1:5060".parse().unwrap(),
        "127.0.0.1/32",
    ));
    let (pbx, mut ep) = start(pc).await;
    let mut gc = config("127.0.0.1", 59_500);
    let mut t = trusted("pbx", pbx.udp_addr(), "127.0.0.1/32");
    t.max_calls = 1;
    gc.trunks.push(t);
    let (gw, mut eg) = start(gc).await;
    let to_gw = || Destination::Uri(format!("sip:300@{}", gw.udp_addr()));
    let to_pbx = || Destination::Trunk {
        trunk: "pbx".into(),
        number: "400".into(),
    };

    // The first call from the PBX takes the trunk's one place.
    let first = Uuid::now_v7();
    pbx.call(first, to_gw(), party("1")).await.unwrap();
    let g_first = wait_for(&mut eg, |e| match e {
        UaEvent::Incoming { call, .. } => Some(*call),
        _ => None,
    })
    .await;

    // A second one is refused with 503.
    let second = Uuid::now_v7();
    pbx.call(second, to_gw(), party("2")).await.unwrap();
    let c = wait_for(&mut ep, |e| match e {
        UaEvent::Ended { call, cause } if *call == second => Some(cause.clone()),
        _ => None,
    })
    .await;
    assert_eq!(c.sip_status, Some(503));

    // Outgoing on the full trunk: refused at once, for the next route.
    let out = Uuid::now_v7();
    let err = gw.call(out, to_pbx(), party("9")).await.unwrap_err();
    assert!(
        matches!(&err, flowgate_sip::ua::UaError::TrunkFull { trunk, max: 1 } if trunk == "pbx"),
        "{err}"
    );

    // The first call ends; the place is free again, both ways.
    gw.hangup(g_first, Cause::Normal).await.unwrap();
    wait_for(&mut ep, |e| {
        matches!(e, UaEvent::Ended { call, .. } if *call == first).then_some(())
    })
    .await;
    wait_for(&mut eg, |e| {
        matches!(e, UaEvent::Ended { call, .. } if *call == g_first).then_some(())
    })
    .await;
    gw.call(out, to_pbx(), party("9")).await.unwrap();
    let p_out = wait_for(&mut ep, |e| match e {
        UaEvent::Incoming { call, .. } => Some(*call),
        _ => None,
    })
    .await;
    pbx.hangup(p_out, Cause::Busy).await.unwrap();
    wait_for(&mut eg, |e| {
        matches!(e, UaEvent::Ended { call, .. } if *call == out).then_some(())
    })
    .await;
    pbx.shutdown().await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_with_replaces_takes_a_confirmed_calls_place() {
    // A talks to B (the gateway under test) and to C; A completes an attended transfer by
    // asking C to replace A's call with B (REFER to C with Replaces), so C sends B an
    // INVITE with that Replaces (RFC 3891): B is the target of a transfer done elsewhere.
    let lan = || trusted("lan", "127.0.0.1:5060".parse().unwrap(), "127.0.0.1/32");
    let mut cb = config("127.0.0.1", 61_000);
    cb.trunks.push(lan());
    let (b, mut eb) = start(cb).await;
    let mut cc = config("127.0.0.1", 61_500);
    cc.trunks.push(lan());
    let (c, mut ec) = start(cc).await;
    let (a, mut ea) = start(config("127.0.0.1", 62_000)).await;

    let (to_b, b_call) = answered_call(
        (&a, &mut ea),
        (&b, &mut eb),
        format!("sip:500@{}", b.udp_addr()),
        party("1"),
    )
    .await;
    let (to_c, c_call) = answered_call(
        (&a, &mut ea),
        (&c, &mut ec),
        format!("sip:600@{}", c.udp_addr()),
        party("1"),
    )
    .await;

    a.transfer_attended(to_c, to_b).await.unwrap();
    let target = wait_for(&mut ec, |e| match e {
        UaEvent::TransferRequested { call, target } if *call == c_call => Some(target.clone()),
        _ => None,
    })
    .await;
    let dialog = target.replaces.expect("Replaces").dialog();
    let uri = |d: &flowgate_sip::refer::DialogRef| {
        Destination::Uri(format!("{}?{}", target.uri, d.uri_header()))
    };

    // Refused first: a dialog B does not have (481), `early-only` for a confirmed one (486).
    let mut unknown = dialog.clone();
    unknown.from_tag = "not-a-tag".into();
    let mut early_only = dialog.clone();
    early_only.early_only = true;
    for (d, status) in [(unknown, 481), (early_only, 486)] {
        let id = Uuid::now_v7();
        c.call(id, uri(&d), party("600")).await.unwrap();
        let cause = wait_for(&mut ec, |e| match e {
            UaEvent::Ended { call, cause } if *call == id => Some(cause.clone()),
            _ => None,
        })
        .await;
        assert_eq!(cause.sip_status, Some(status), "{d:?}");
    }

    // The real one: B learns which of its calls the new one replaces.
    let replacing = Uuid::now_v7();
    c.call(replacing, uri(&dialog), party("600")).await.unwrap();
    let (new_call, replaced) = wait_for(&mut eb, |e| match e {
        UaEvent::Incoming { call, replaces, .. } => Some((*call, *replaces)),
        _ => None,
    })
    .await;
    assert_eq!(replaced, Some(b_call));
    b.answer(new_call).await.unwrap();
    wait_for(&mut ec, |e| {
        matches!(e, UaEvent::Answered { call } if *call == replacing).then_some(())
    })
    .await;
    // B's owner hangs the replaced call up: A's leg to B ends, the new call stays.
    b.hangup(b_call, Cause::Transferred).await.unwrap();
    wait_for(&mut ea, |e| {
        matches!(e, UaEvent::Ended { call, .. } if *call == to_b).then_some(())
    })
    .await;
    assert_eq!(b.status().await.unwrap().calls, 1);
    for ua in [&a, &b, &c] {
        ua.shutdown().await;
    }
}

/// What a peer may not ask of an INVITE: an extension the user agent lacks gets `420`
/// naming it (`Require: replaces` is fine: it is implemented), two `Replaces` get `400`;
/// OPTIONS says what is supported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requirements_the_user_agent_lacks_and_double_replaces_are_refused() {
    let mut cg = config("127.0.0.1", 62_500);
    cg.trunks.push(trusted(
        "lan",
        "127.0.0.1:5060".parse().unwrap(),
        "127.0.0.1/32",
    ));
    let (gw, mut eg) = start(cg).await;
    let target = gw.udp_addr();
    let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = peer.local_addr().unwrap();
    let mut buf = vec![0u8; 4096];
    let cases = [
        ("INVITE", "Require: 100rel, replaces\r\n", 420),
        (
            "INVITE",
            "Replaces: a@b;to-tag=1;from-tag=2\r\nReplaces: c@d;to-tag=3;from-tag=4\r\n",
            400,
        ),
        ("INVITE", "Replaces: a@b;to-tag=1\r\n", 400),
        ("OPTIONS", "", 200),
    ];
    for (i, (method, extra, status)) in cases.into_iter().enumerate() {
        let msg = format!(
            "{method} sip:500@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKreq{i}\r\nFrom: <sip:9@{me}>;tag=f{i}\r\nTo: <sip:500@{target}>\r\nCall-ID: req{i}@test\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\nContact: <sip:9@{me}>\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        peer.send_to(msg.as_bytes(), target).await.unwrap();
        let r = loop {
            let (n, _) = tokio::time::timeout(Duration::from_secs(20), peer.recv_from(&mut buf))
                .await
                .unwrap()
                .unwrap();
            let Ok(flowgate_sip::message::Message::Response(r)) =
                flowgate_sip::message::parse(&buf[..n], &Default::default())
            else {
                panic!("not a response")
            };
            if r.status >= 200 {
                break r;
            }
        };
        assert_eq!(r.status, status, "{method} with {extra:?}");
        match status {
            420 => assert_eq!(r.headers.get("Unsupported"), Some("100rel")),
            200 => assert_eq!(r.headers.get("Supported"), Some("replaces")),
            _ => {}
        }
    }
    assert!(eg.try_recv().is_err(), "no call was reported");
    gw.shutdown().await;
}
