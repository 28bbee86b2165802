//! Calls and USSD through the driver against the simulator over a real pty.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use common::{Rig, WAIT};
use flowgate_board::modem::at::types::{CallStat, Direction, DtmfSource};
use flowgate_board::modem::events::UssdStatus;
use flowgate_board::modem::{CallEndReason, CallId, ModemError, ModemEvent, OutgoingSms};
use flowgate_board::simulator::{DialOutcome, FaultAction, SimulatedModel, UssdCoding, UssdScript};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn incoming_answer_dtmf_remote_hangup(
    profile: SimulatedModel,
    source: DtmfSource,
    cc: Option<u16>,
) {
    let mut rig = Rig::start(profile).await;
    rig.ready().await;
    rig.ctl.incoming_call("+15557778888").unwrap();
    let (call, number) = rig
        .event("incoming call", |e| match e {
            ModemEvent::IncomingCall { call, number } => Some((*call, number.clone())),
            _ => None,
        })
        .await;
    assert_eq!(number.as_deref(), Some("+15557778888"));
    rig.modem.answer(call).await.unwrap();
    rig.event("active", |e| {
        matches!(e, ModemEvent::CallState { call: c, state: CallStat::Active, .. } if *c == call)
            .then_some(())
    })
    .await;
    rig.event("audio ready", |e| {
        matches!(e, ModemEvent::AudioReady { call: c } if *c == call).then_some(())
    })
    .await;
    rig.ctl.wait_for_audio(true, WAIT).await.unwrap();

    rig.ctl.dtmf("12#").unwrap();
    let mut digits = String::new();
    while digits.len() < 3 {
        let (c, d, s) = rig
            .event("dtmf", |e| match e {
                ModemEvent::Dtmf {
                    call,
                    digit,
                    source,
                } => Some((*call, *digit, *source)),
                _ => None,
            })
            .await;
        assert_eq!(c, Some(call));
        assert_eq!(s, source);
        digits.push(d);
    }
    assert_eq!(digits, "12#");

    rig.modem.send_dtmf(call, "5*").await.unwrap();
    assert_eq!(rig.ctl.wait_for_dtmf_sent(2, WAIT).await.unwrap(), "5*");

    rig.ctl.remote_hangup().unwrap();
    let cause = rig
        .event("call ended", |e| match e {
            ModemEvent::CallEnded { call: c, cause } if *c == call => Some(cause.clone()),
            _ => None,
        })
        .await;
    assert_eq!(cause.reason, CallEndReason::RemoteHangup, "{cause:?}");
    assert_eq!(cause.cc_cause, cc);
    assert!(rig.modem.calls().is_empty());
    rig.ctl.wait_for_audio(false, WAIT).await.unwrap();
    assert!(
        rig.modem.send_dtmf(call, "1").await.is_err(),
        "DTMF on an ended call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_call_quectel() {
    incoming_answer_dtmf_remote_hangup(SimulatedModel::QuectelEc25, DtmfSource::Qtonedet, None)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_call_huawei() {
    incoming_answer_dtmf_remote_hangup(SimulatedModel::HuaweiE1550, DtmfSource::Ddtmf, Some(16))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_call_sim7600() {
    incoming_answer_dtmf_remote_hangup(SimulatedModel::Sim7600, DtmfSource::Rxdtmf, None).await;
}

/// The caller hangs up in the instant the gateway answers: `ATA` gets `NO CARRIER`. That is
/// a missed call, ended by the far end and reported once, not a failed command on a call
/// that rings on until the next poll.
async fn caller_leaves_as_the_call_is_answered(profile: SimulatedModel) {
    let mut rig = Rig::start(profile).await;
    rig.ready().await;
    let call = rig.incoming("+15557778888").await;
    rig.ctl.fail_next("ATA", FaultAction::FarEndLeaves, 1);
    let err = rig.modem.answer(call).await.unwrap_err();
    assert!(
        matches!(&err, ModemError::CallEnded { cause, .. } if cause.reason == CallEndReason::Missed),
        "{err:?}"
    );
    assert!(rig.modem.calls().is_empty());
    assert_eq!(ended(&mut rig, call).await, CallEndReason::Missed);
    let log = rig.ctl.call_log();
    assert_eq!(log[0].ended_by.as_deref(), Some("remote"));
    assert!(!log[0].answered);

    // The modem's own report of that end (a state URC after the reply, on modems that have
    // them) does not end the call a second time: the next event about calls is the next call.
    rig.ctl.incoming_call("+15559990000").unwrap();
    rig.event("the next call", |e| match e {
        ModemEvent::CallEnded { call: c, .. } if *c == call => panic!("ended twice: {e:?}"),
        ModemEvent::IncomingCall { call: next, .. } => Some(*next),
        _ => None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_leaves_as_answered_quectel() {
    caller_leaves_as_the_call_is_answered(SimulatedModel::QuectelEc25).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_leaves_as_answered_huawei() {
    caller_leaves_as_the_call_is_answered(SimulatedModel::HuaweiE1550).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_leaves_as_answered_sim7600() {
    caller_leaves_as_the_call_is_answered(SimulatedModel::Sim7600).await;
}

async fn dial(rig: &mut Rig, number: &str) -> CallId {
    let call = rig.modem.dial(number).await.unwrap();
    rig.ctl.wait_for_dialled(1, WAIT).await.unwrap();
    call
}

async fn ended(rig: &mut Rig, call: CallId) -> CallEndReason {
    rig.event("call ended", |e| match e {
        ModemEvent::CallEnded { call: c, cause } if *c == call => Some(cause.reason),
        _ => None,
    })
    .await
}

async fn outgoing(profile: SimulatedModel) {
    let mut rig = Rig::start_with(profile, |sc, _| sc.dial.default = DialOutcome::Manual).await;
    rig.ready().await;

    // Connect, then we hang up.
    let call = dial(&mut rig, "+15550101010").await;
    rig.event("alerting", |e| {
        matches!(e, ModemEvent::CallState { call: c, state: CallStat::Alerting, direction: Direction::Outgoing, .. } if *c == call).then_some(())
    })
    .await;
    rig.ctl.remote_answer().unwrap();
    rig.event("audio ready", |e| {
        matches!(e, ModemEvent::AudioReady { call: c } if *c == call).then_some(())
    })
    .await;
    rig.modem.hangup(call).await.unwrap();
    assert_eq!(ended(&mut rig, call).await, CallEndReason::LocalHangup);
    rig.ctl.wait_for_no_calls(WAIT).await.unwrap();
    assert_eq!(rig.ctl.call_log()[0].ended_by.as_deref(), Some("gateway"));
    assert!(rig.ctl.call_log()[0].answered);

    // Busy.
    let call = rig.modem.dial("+15550202020").await.unwrap();
    rig.ctl.wait_for_dialled(2, WAIT).await.unwrap();
    rig.ctl.remote_busy().unwrap();
    assert_eq!(ended(&mut rig, call).await, CallEndReason::Busy);

    // No answer.
    let call = rig.modem.dial("+15550303030").await.unwrap();
    rig.ctl.wait_for_dialled(3, WAIT).await.unwrap();
    rig.ctl.remote_no_answer().unwrap();
    assert_eq!(ended(&mut rig, call).await, CallEndReason::NoAnswer);
    assert!(rig.modem.calls().is_empty());
    assert_eq!(
        rig.ctl.dialled(),
        vec!["+15550101010", "+15550202020", "+15550303030"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_calls_quectel() {
    outgoing(SimulatedModel::QuectelEc25).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_calls_huawei() {
    outgoing(SimulatedModel::HuaweiE1550).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_call_scripted_answer_and_remote_hangup() {
    let mut rig = Rig::start_with(SimulatedModel::QuectelEc25, |sc, _| {
        sc.dial.default = DialOutcome::Answer { ring_ms: 50 };
    })
    .await;
    rig.ready().await;
    let call = rig.modem.dial("+15550404040").await.unwrap();
    rig.event("active", |e| {
        matches!(e, ModemEvent::CallState { call: c, state: CallStat::Active, .. } if *c == call)
            .then_some(())
    })
    .await;
    rig.ctl.remote_hangup().unwrap();
    assert_eq!(ended(&mut rig, call).await, CallEndReason::RemoteHangup);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_call_operations_are_errors() {
    let rig = Rig::start(SimulatedModel::QuectelEc25).await;
    rig.ready().await;
    assert!(rig.modem.dial("12ab").await.is_err());
    assert!(rig.modem.dial("").await.is_err());
    assert!(rig.modem.answer(CallId(99)).await.is_err());
    assert!(rig.modem.hangup(CallId(99)).await.is_err());
    assert!(rig.modem.send_dtmf(CallId(99), "x").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_during_a_call_does_not_disturb_it() {
    let mut rig = Rig::start(SimulatedModel::QuectelEc25).await;
    rig.ready().await;
    let call = rig.answered("+15557770000").await;
    rig.audio_ready().await;

    rig.ctl
        .send_sms("+15551230000", "arrives mid-call")
        .unwrap();
    let m = rig.next_sms().await;
    assert_eq!(m.text, "arrives mid-call");
    m.ack();
    rig.modem
        .send_sms(OutgoingSms::new("+15551230000", "sent mid-call"))
        .await
        .unwrap();
    // A garbled SMS PDU during the call is reported as such and never touches the call.
    rig.ctl.send_pdu("0791AABBCCDDEEFF0000").unwrap();
    let bad = rig.next_sms().await;
    assert!(bad.error.is_some());
    bad.ack();

    let calls = rig.modem.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].state, CallStat::Active);
    rig.ctl.dtmf("9").unwrap();
    rig.event("dtmf", |e| {
        matches!(e, ModemEvent::Dtmf { call: Some(c), digit: '9', .. } if *c == call).then_some(())
    })
    .await;
    rig.ctl.remote_hangup().unwrap();
    assert_eq!(ended(&mut rig, call).await, CallEndReason::RemoteHangup);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_call() {
    let mut rig = Rig::start(SimulatedModel::QuectelEc25).await;
    rig.ready().await;
    let call = rig.incoming("+15557770001").await;
    rig.ctl.remote_hangup().unwrap();
    assert_eq!(ended(&mut rig, call).await, CallEndReason::Missed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voice_port_carries_audio_both_ways() {
    let mut rig = Rig::start(SimulatedModel::QuectelEc25).await;
    rig.ready().await;
    let tone: Vec<i16> = (0..1600)
        .map(|i| i16::try_from((i % 100) * 100).unwrap())
        .collect();
    rig.ctl.queue_audio(&tone).unwrap();
    let call = rig.answered("+15557770002").await;
    rig.audio_ready().await;
    let pcm = rig.sim.pcm_path();
    let mut port =
        tokio_serial::SerialStream::open(&tokio_serial::new(pcm.to_string_lossy(), 115_200))
            .unwrap();
    // Read until the queued caller audio has been seen (silence may come first).
    let mut got = Vec::new();
    let mut buf = [0u8; 640];
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let n = port.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
            let samples: Vec<i16> = got
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect();
            if samples
                .windows(tone.len().min(400))
                .any(|w| w == &tone[..w.len()])
            {
                return;
            }
        }
    })
    .await;
    assert!(found.is_ok(), "caller audio not seen on the voice port");
    // What the gateway writes is recorded.
    let out: Vec<u8> = (0..320i16).flat_map(|s| (s * 7).to_le_bytes()).collect();
    port.write_all(&out).await.unwrap();
    rig.ctl.wait_for_recorded(320, WAIT).await.unwrap();
    let rec = rig.ctl.recorded_audio();
    assert_eq!(
        &rec[..320],
        &(0..320i16).map(|s| s * 7).collect::<Vec<_>>()[..]
    );
    rig.modem.hangup(call).await.unwrap();
    rig.ctl.wait_for_audio(false, WAIT).await.unwrap();
}

/// A host that reads the voice port late makes the simulator's writes partial (the pty's
/// buffer is full): what it then reads must still be whole 16-bit samples, never a stream
/// shifted by a byte. Every queued sample has two equal bytes and neighbours differ, so a
/// shifted stream shows unequal bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voice_port_keeps_samples_whole_when_the_host_reads_late() {
    let mut rig = Rig::start(SimulatedModel::QuectelEc25).await;
    rig.ready().await;
    let call = rig.answered("+15557770003").await;
    rig.audio_ready().await;
    let pcm = rig.sim.pcm_path();
    let mut port =
        tokio_serial::SerialStream::open(&tokio_serial::new(pcm.to_string_lossy(), 115_200))
            .unwrap();
    // 2 s of audio (64 KB), far more than the pty holds while nobody reads it.
    let audio: Vec<i16> = (0..16_000u32)
        .map(|i| i16::from_le_bytes([u8::try_from(i % 97 + 1).unwrap(); 2]))
        .collect();
    rig.ctl.queue_audio(&audio).unwrap();
    rig.ctl
        .wait_for("the audio to be written", WAIT, |v| {
            (v.audio_queued() == 0).then_some(())
        })
        .await
        .unwrap();
    // Now read what the port kept, and a little of what follows.
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < 8192 {
        let n = tokio::time::timeout(WAIT, port.read(&mut buf))
            .await
            .expect("voice port silent")
            .unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    let shifted = got.chunks_exact(2).filter(|s| s[0] != s[1]).count();
    assert_eq!(shifted, 0, "{shifted} samples read shifted by a byte");
    rig.modem.hangup(call).await.unwrap();
}

async fn ussd(profile: SimulatedModel) {
    let rig = Rig::start(profile).await;
    rig.ready().await;
    // Default reply, GSM7 (plain text on Quectel, packed hex on Huawei).
    let r = rig.modem.ussd("*100#").await.unwrap();
    assert_eq!(r.status, UssdStatus::Done);
    assert_eq!(r.text.as_deref(), Some("Your balance is 12.34 EUR"));
    assert_eq!(rig.ctl.view(|v| v.ussd_requests().to_vec()), vec!["*100#"]);
    // UCS2 reply, sent before the OK.
    let mut s = UssdScript::new("Баланс: 5 ₽", UssdCoding::Ucs2);
    s.before_ok = true;
    rig.ctl.queue_ussd_reply(s).unwrap();
    let r = rig.modem.ussd("*101#").await.unwrap();
    assert_eq!(r.text.as_deref(), Some("Баланс: 5 ₽"));
    // GSM7 with a URC in between and "further action" status; then cancel.
    let mut s = UssdScript::new("1 Balance\n2 Bundles", UssdCoding::Gsm7);
    s.interleave_urc = true;
    s.status = 1;
    rig.ctl.queue_ussd_reply(s).unwrap();
    let r = rig.modem.ussd("*102#").await.unwrap();
    assert_eq!(r.status, UssdStatus::FurtherAction);
    assert_eq!(r.text.as_deref(), Some("1 Balance\n2 Bundles"));
    rig.modem.ussd_cancel().await.unwrap();
    assert!(rig.modem.ussd("bad\"code").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ussd_quectel_text_and_ucs2() {
    ussd(SimulatedModel::QuectelEc25).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ussd_huawei_packed_gsm7_and_ucs2() {
    ussd(SimulatedModel::HuaweiE1550).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_initiated_ussd_is_an_event() {
    let mut rig = Rig::start(SimulatedModel::HuaweiE1550).await;
    rig.ready().await;
    rig.ctl
        .ussd_notify(&UssdScript::new("Promo", UssdCoding::Gsm7))
        .unwrap();
    let r = rig
        .event("ussd", |e| match e {
            ModemEvent::Ussd(r) => Some(r.clone()),
            _ => None,
        })
        .await;
    assert_eq!(r.text.as_deref(), Some("Promo"));
}
