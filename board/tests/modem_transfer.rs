//! Hold, retrieve and explicit call transfer (`AT+CHLD=2`/`=4`) through the driver against
//! the simulator over a real pty: the gateway holds the caller, dials the transferee and
//! joins the two, blind (transferee alerting) and attended (transferee answered); a network
//! that refuses the transfer; the held party hanging up.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use common::{Rig, WAIT};
use flowgate_board::modem::at::types::CallStat;
use flowgate_board::modem::{CallEndReason, CallId, ModemError, ModemEvent};
use flowgate_board::simulator::{DialOutcome, SimulatedModel};

const CALLER: &str = "+15557770001";
const TRANSFEREE: &str = "+15557770002";

async fn state(rig: &mut Rig, call: CallId, want: CallStat) {
    rig.event(&format!("{call} {want:?}"), |e| {
        matches!(e, ModemEvent::CallState { call: c, state, .. } if *c == call && *state == want)
            .then_some(())
    })
    .await;
}

async fn ended(rig: &mut Rig, call: CallId) -> CallEndReason {
    rig.event(&format!("{call} ended"), |e| match e {
        ModemEvent::CallEnded { call: c, cause } if *c == call => Some(cause.reason),
        _ => None,
    })
    .await
}

/// A caller rings in, the gateway answers and puts them on hold, then dials the transferee
/// (who rings until the test answers for them).
async fn caller_held_transferee_dialled(profile: SimulatedModel) -> (Rig, CallId, CallId) {
    let mut rig = Rig::start_with(profile, |sc, _| sc.dial.default = DialOutcome::Manual).await;
    rig.ready().await;
    let a = rig.answered(CALLER).await;
    rig.ctl
        .wait_for_calls(&[(CALLER, CallStat::Active)], WAIT)
        .await
        .unwrap();
    rig.modem.hold(a).await.unwrap();
    state(&mut rig, a, CallStat::Held).await;
    rig.ctl
        .wait_for_calls(&[(CALLER, CallStat::Held)], WAIT)
        .await
        .unwrap();
    let b = rig.modem.dial(TRANSFEREE).await.unwrap();
    (rig, a, b)
}

/// The transferee's phone rings while the caller waits on hold, then it answers.
async fn transferee_answers(rig: &mut Rig, b: CallId) {
    rig.ctl
        .wait_for_calls(
            &[(CALLER, CallStat::Held), (TRANSFEREE, CallStat::Alerting)],
            WAIT,
        )
        .await
        .unwrap();
    rig.ctl.remote_answer().unwrap();
    state(rig, b, CallStat::Active).await;
}

/// The driver's calls with their states, in call order.
fn call_states(rig: &Rig) -> Vec<(CallId, CallStat)> {
    let mut states: Vec<(CallId, CallStat)> = rig
        .modem
        .calls()
        .iter()
        .map(|c| (c.call, c.state))
        .collect();
    states.sort_by_key(|(call, _)| *call);
    states
}

/// Both calls end as transferred (in either order) and the simulator logged the join.
async fn transferred(rig: &mut Rig, a: CallId, b: CallId) {
    let mut ends = Vec::new();
    while ends.len() < 2 {
        let end = rig
            .event("transfer ends", |e| match e {
                ModemEvent::CallEnded { call, cause } if *call == a || *call == b => {
                    Some((*call, cause.reason))
                }
                _ => None,
            })
            .await;
        ends.push(end);
    }
    ends.sort_by_key(|(call, _)| *call);
    assert_eq!(
        ends,
        vec![
            (a, CallEndReason::Transferred),
            (b, CallEndReason::Transferred)
        ]
    );
    assert!(rig.modem.calls().is_empty());
    rig.ctl.wait_for_no_calls(WAIT).await.unwrap();
    let log = rig.ctl.call_log();
    let id_of = |n: &str| log.iter().find(|r| r.number == n).unwrap().id;
    for (n, other) in [(CALLER, TRANSFEREE), (TRANSFEREE, CALLER)] {
        let r = log.iter().find(|r| r.number == n).unwrap();
        assert_eq!(r.ended_by.as_deref(), Some("transferred"), "{r:?}");
        assert_eq!(r.transferred_with, Some(id_of(other)), "{r:?}");
    }
}

async fn blind(profile: SimulatedModel) {
    let (mut rig, a, b) = caller_held_transferee_dialled(profile).await;
    // Transfer right away: the driver waits until the transferee's phone rings (ECT needs
    // the second call alerting at least; the E1550 wedges on AT+CHLD before ^CONF).
    rig.modem.transfer(a, b).await.unwrap();
    transferred(&mut rig, a, b).await;
    assert!(
        rig.ctl
            .call_log()
            .iter()
            .all(|r| r.number != TRANSFEREE || !r.answered),
        "blind: the transferee had not answered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blind_transfer_quectel() {
    blind(SimulatedModel::QuectelEc25).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blind_transfer_huawei() {
    blind(SimulatedModel::HuaweiE1550).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blind_transfer_sim7600() {
    blind(SimulatedModel::Sim7600).await;
}

async fn attended(profile: SimulatedModel) {
    let (mut rig, a, b) = caller_held_transferee_dialled(profile).await;
    transferee_answers(&mut rig, b).await;
    // The gateway talks to the transferee (DTMF goes to the active call), then joins.
    rig.modem.send_dtmf(b, "1").await.unwrap();
    rig.modem.transfer(b, a).await.unwrap();
    transferred(&mut rig, a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attended_transfer_quectel() {
    attended(SimulatedModel::QuectelEc25).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attended_transfer_huawei() {
    attended(SimulatedModel::HuaweiE1550).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_transfer_keeps_both_calls_and_retrieve_works() {
    let (mut rig, a, b) = caller_held_transferee_dialled(SimulatedModel::QuectelEc25).await;
    transferee_answers(&mut rig, b).await;
    rig.ctl.set_ect_refused(true);
    let e = rig.modem.transfer(a, b).await.unwrap_err();
    assert!(matches!(e, ModemError::Cme { .. }), "{e:?}");
    assert_eq!(e.code(), Some(3));
    assert_eq!(
        call_states(&rig),
        vec![(a, CallStat::Held), (b, CallStat::Active)]
    );

    // Back to the caller: the transferee goes on hold (a swap).
    rig.modem.retrieve(a).await.unwrap();
    state(&mut rig, a, CallStat::Active).await;
    rig.ctl
        .wait_for_calls(
            &[(CALLER, CallStat::Active), (TRANSFEREE, CallStat::Held)],
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(rig.modem.calls().len(), 2);
    // Bad requests are refused without touching the modem.
    assert!(rig.modem.retrieve(a).await.is_err(), "already active");
    assert!(rig.modem.transfer(a, a).await.is_err());
    // The network allows it again: the caller (active) joins the transferee (held).
    rig.ctl.set_ect_refused(false);
    rig.modem.transfer(a, b).await.unwrap();
    transferred(&mut rig, a, b).await;
}

async fn held_party_hangs_up(profile: SimulatedModel) {
    let (mut rig, a, b) = caller_held_transferee_dialled(profile).await;
    transferee_answers(&mut rig, b).await;
    let held = rig
        .ctl
        .calls()
        .into_iter()
        .find(|c| c.3 == CALLER)
        .unwrap()
        .0;
    rig.ctl.remote_hangup_call(held).unwrap();
    assert_eq!(ended(&mut rig, a).await, CallEndReason::RemoteHangup);
    assert_eq!(call_states(&rig), vec![(b, CallStat::Active)]);
    rig.ctl
        .wait_for_calls(&[(TRANSFEREE, CallStat::Active)], WAIT)
        .await
        .unwrap();
    // Nothing is left to transfer; the remaining call hangs up normally.
    assert!(rig.modem.transfer(a, b).await.is_err());
    rig.modem.hangup(b).await.unwrap();
    assert_eq!(ended(&mut rig, b).await, CallEndReason::LocalHangup);
    rig.ctl.wait_for_no_calls(WAIT).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_party_hangs_up_quectel() {
    held_party_hangs_up(SimulatedModel::QuectelEc25).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_party_hangs_up_huawei() {
    held_party_hangs_up(SimulatedModel::HuaweiE1550).await;
}
