//! The runtime over the call-leg contract alone: scripted lines (test doubles of
//! `flowgate_line::Line`) show how dialling fails over, when it must not, that a leg's
//! events reach the call record whatever line carries it, and whose end it is when the
//! caller leaves as the call is answered.

use std::sync::Arc;
use std::time::Duration;

use flowgate::metrics::Metrics;
use flowgate::model::{CallStatus, Number};
use flowgate::runtime::{DialRequest, FlowSource, Modems, Runtime, RuntimeOptions};
use flowgate::store::{Db, Store};
use flowgate::sync::flowset::FlowSet;
use flowgate_flows::model::{Address, Flow};
use flowgate_line::{
    Availability, Capabilities, Cause, EndCause, LegAudio, LegError, LegEvent, LegFuture, LegId,
    Line, LineEventSender, LineEvents, Party, Placement, Progress, TransferTarget, Transport,
    line_events,
};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// What a scripted line does when asked to place a leg.
#[derive(Clone, Copy)]
enum Script {
    /// `place` fails with this cause.
    Refuse(Cause),
    /// `place` succeeds, then the leg ends with this cause before ringing.
    EndEarly(Cause),
    /// `place` succeeds, the far end rings and answers.
    Answer,
    /// `place` succeeds, the far end rings, then ends with this cause.
    RingThenEnd(Cause),
}

struct ScriptedLine {
    id: &'static str,
    script: Script,
    tx: LineEventSender,
    rx: Mutex<Option<LineEvents>>,
    placed: Mutex<Vec<LegId>>,
    /// `answer` fails as a modem's `ATA` does when the caller hangs up in that instant: the
    /// leg is over, and the line reports its end only later (see `far_end_ends`).
    caller_leaves_on_answer: bool,
    hangups: Mutex<Vec<LegId>>,
}

impl ScriptedLine {
    fn new(id: &'static str, script: Script) -> Arc<Self> {
        Self::with(id, script, false)
    }

    fn with(id: &'static str, script: Script, caller_leaves_on_answer: bool) -> Arc<Self> {
        let (tx, rx) = line_events();
        Arc::new(Self {
            id,
            script,
            tx,
            rx: Mutex::new(Some(rx)),
            placed: Mutex::new(Vec::new()),
            caller_leaves_on_answer,
            hangups: Mutex::new(Vec::new()),
        })
    }

    fn emit(&self, event: LegEvent) {
        self.tx.send(event).expect("runtime listens");
    }
}

impl Line for ScriptedLine {
    fn id(&self) -> &str {
        self.id
    }
    fn transport(&self) -> Transport {
        Transport::Modem
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    fn availability(&self) -> Availability {
        Availability::Ready
    }
    fn own_party(&self) -> Party {
        Party::default()
    }
    fn take_events(&self) -> Option<LineEvents> {
        self.rx.lock().take()
    }
    fn place(&self, leg: LegId, _: Placement) -> LegFuture<'_, ()> {
        self.placed.lock().push(leg);
        Box::pin(async move {
            match self.script {
                Script::Refuse(cause) => Err(LegError::Failed {
                    line: self.id.into(),
                    reason: "refused".into(),
                    cause: Some(EndCause::new(cause, "scripted")),
                }),
                Script::EndEarly(cause) => {
                    self.emit(LegEvent::Ended {
                        leg,
                        cause: EndCause::new(cause, "scripted"),
                    });
                    Ok(())
                }
                Script::Answer => {
                    self.emit(LegEvent::Progress {
                        leg,
                        progress: Progress::Ringing,
                    });
                    self.emit(LegEvent::Answered { leg });
                    Ok(())
                }
                Script::RingThenEnd(cause) => {
                    self.emit(LegEvent::Progress {
                        leg,
                        progress: Progress::Ringing,
                    });
                    self.emit(LegEvent::Ended {
                        leg,
                        cause: EndCause::new(cause, "scripted"),
                    });
                    Ok(())
                }
            }
        })
    }
    fn answer(&self, _: LegId) -> LegFuture<'_, ()> {
        Box::pin(async move {
            if self.caller_leaves_on_answer {
                return Err(LegError::Failed {
                    line: self.id.into(),
                    reason: "`ATA`: the call ended first (NO CARRIER)".into(),
                    cause: Some(EndCause::new(Cause::Cancelled, "NO CARRIER")),
                });
            }
            Ok(())
        })
    }
    fn hangup(&self, leg: LegId, cause: Cause) -> LegFuture<'_, ()> {
        self.hangups.lock().push(leg);
        self.emit(LegEvent::Ended {
            leg,
            cause: EndCause::new(cause, "hung up"),
        });
        Box::pin(async { Ok(()) })
    }
    fn send_dtmf(&self, _: LegId, _: &str) -> LegFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
    fn hold(&self, _: LegId) -> LegFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
    fn retrieve(&self, _: LegId) -> LegFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
    fn transfer(&self, _: LegId, _: TransferTarget) -> LegFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
    fn audio(&self, _: LegId) -> LegAudio {
        LegAudio::Unavailable("scripted line".into())
    }
}

fn runtime(lines: Vec<Arc<ScriptedLine>>) -> Runtime {
    let db = Db::new(Store::temporary().expect("store")).expect("db");
    let options = RuntimeOptions {
        lines: lines.into_iter().map(|l| l as Arc<dyn Line>).collect(),
        ..RuntimeOptions::default()
    };
    let rt = Runtime::new(
        db,
        Modems::default(),
        options,
        Arc::new(Metrics::default()),
        CancellationToken::new(),
    );
    rt.start_services();
    rt
}

fn request() -> DialRequest {
    DialRequest {
        id: None,
        source: Address::default(),
        destination: Address {
            kind: "tel".into(),
            target: "+15557778888".into(),
            ..Address::default()
        },
        flow: Some(FlowSource::Inline(Vec::new())),
        variables: Default::default(),
        master_call_id: None,
        line_id: String::new(),
        prefer_line: String::new(),
    }
}

/// Waits (on the store's event feed) until the call satisfies `done`.
async fn call_until(
    rt: &Runtime,
    id: Uuid,
    done: impl Fn(&flowgate::model::Call) -> bool,
) -> flowgate::model::Call {
    store_until(rt, |db| db.calls.get(id).expect("read").filter(|c| done(c))).await
}

#[tokio::test]
async fn a_line_that_refuses_hands_the_call_to_the_next() {
    let bad = ScriptedLine::new("a", Script::Refuse(Cause::Congestion));
    let good = ScriptedLine::new("b", Script::Answer);
    let rt = runtime(vec![bad.clone(), good.clone()]);
    let call = rt.dial(request()).await.expect("dialled");
    assert_eq!(call.line_id, "b");
    let call = call_until(&rt, call.id, |c| c.tm_progressing.is_some()).await;
    assert_eq!(call.line_id, "b");
    assert_eq!(bad.placed.lock().as_slice(), [call.id]);
    assert_eq!(
        good.placed.lock().as_slice(),
        [call.id],
        "the same leg, on the next line"
    );
}

#[tokio::test]
async fn a_line_that_fails_before_ringing_hands_the_call_to_the_next() {
    let bad = ScriptedLine::new("a", Script::EndEarly(Cause::NetworkFailure));
    let good = ScriptedLine::new("b", Script::Answer);
    let rt = runtime(vec![bad.clone(), good.clone()]);
    let call = rt.dial(request()).await.expect("dialled");
    // Answered (its empty flow then hangs it up: look at the answer, not the status).
    let call = call_until(&rt, call.id, |c| c.tm_progressing.is_some()).await;
    assert_eq!(call.line_id, "b");
}

#[tokio::test]
async fn a_busy_callee_is_not_rung_again_on_another_line() {
    let busy = ScriptedLine::new("a", Script::EndEarly(Cause::Busy));
    let other = ScriptedLine::new("b", Script::Answer);
    let rt = runtime(vec![busy.clone(), other.clone()]);
    let call = rt.dial(request()).await.expect("dialled");
    let call = call_until(&rt, call.id, |c| c.status == CallStatus::Hangup).await;
    assert_eq!(
        (call.hangup_by.as_str(), call.hangup_reason.as_str()),
        ("remote", "busy")
    );
    assert!(other.placed.lock().is_empty());
}

#[tokio::test]
async fn once_the_far_end_rang_an_end_is_the_end() {
    let rang = ScriptedLine::new("a", Script::RingThenEnd(Cause::NetworkFailure));
    let other = ScriptedLine::new("b", Script::Answer);
    let rt = runtime(vec![rang.clone(), other.clone()]);
    let call = rt.dial(request()).await.expect("dialled");
    let call = call_until(&rt, call.id, |c| c.status == CallStatus::Hangup).await;
    assert_eq!(call.hangup_reason, "failed");
    let cause = call.end_cause.expect("the line's cause is kept");
    assert_eq!((cause.cause, cause.q850), (Cause::NetworkFailure, 38));
    assert!(other.placed.lock().is_empty());
}

#[tokio::test]
async fn when_every_line_refuses_the_dial_fails_with_a_failed_record() {
    let a = ScriptedLine::new("a", Script::Refuse(Cause::Congestion));
    let b = ScriptedLine::new("b", Script::Refuse(Cause::Barred));
    let rt = runtime(vec![a, b]);
    let mut req = request();
    let id = Uuid::now_v7();
    req.id = Some(id);
    assert!(rt.dial(req).await.is_err());
    let call = rt.db().calls.get(id).expect("read").expect("recorded");
    assert_eq!(call.status, CallStatus::Hangup);
    assert_eq!(call.hangup_reason, "failed");
}

/// Waits (on the store's event feed) until `check` finds what it waits for.
async fn store_until<T>(rt: &Runtime, check: impl Fn(&Db) -> Option<T>) -> T {
    let mut seq = rt.db().store.watch_seq();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(found) = check(rt.db()) {
                return found;
            }
            seq.changed().await.expect("store open");
        }
    })
    .await
    .expect("the store got there")
}

/// Stores a flow (with `on_complete`, the flow started when it ends) and returns its id.
fn store_flow(rt: &Runtime, actions: serde_json::Value, on_complete: Option<Uuid>) -> Uuid {
    let mut text = serde_json::json!({"name": "test", "actions": actions});
    if let Some(next) = on_complete {
        text["on_complete_flow_id"] = next.to_string().into();
    }
    let flow = Flow::from_value(text, &Default::default()).expect("flow");
    FlowSet::new(rt.db().clone())
        .create(flow)
        .expect("stored")
        .id
        .expect("id")
}

#[tokio::test]
async fn a_caller_who_leaves_as_the_call_is_answered_ended_the_call() {
    let line = ScriptedLine::with("a", Script::Answer, true);
    let rt = runtime(vec![line.clone()]);
    // The follow-up starts only after the flow's end has done what it does to the call: a
    // point to look at the call from, before the line reports the end.
    let follow_up = store_flow(
        &rt,
        serde_json::json!([{"type": "sleep", "option": {"duration": 1}}]),
        None,
    );
    let flow = store_flow(
        &rt,
        serde_json::json!([{"type": "answer"}, {"type": "echo"}]),
        Some(follow_up),
    );
    let number = Number {
        line_id: "a".into(),
        call_flow_id: Some(flow),
        ..Number::new(chrono::Utc::now())
    };
    rt.db().numbers.put(number.id, &number).expect("bound");

    let leg = Uuid::now_v7();
    line.emit(LegEvent::Incoming {
        leg,
        caller: Party::number("+15557778888"),
        callee: Party::number("+15550001111"),
    });
    // The flow fails on its answer and ends while the line has not reported the end yet:
    // that end must not hang the call up as the gateway's own.
    let activeflow = store_until(&rt, |db| {
        db.calls
            .get(leg)
            .expect("read")
            .and_then(|c| c.activeflow_id)
    })
    .await;
    store_until(&rt, |db| {
        db.activeflows
            .iter()
            .map(|entry| entry.expect("read").1)
            .find(|af| af.reference_activeflow_id == Some(activeflow))
    })
    .await;
    assert!(
        line.hangups.lock().is_empty(),
        "the leg is over: nothing to hang up"
    );
    line.emit(LegEvent::Ended {
        leg,
        cause: EndCause::new(Cause::Cancelled, "NO CARRIER"),
    });
    let call = call_until(&rt, leg, |c| c.status == CallStatus::Hangup).await;
    assert_eq!(
        (call.hangup_by.as_str(), call.hangup_reason.as_str()),
        ("remote", "cancel")
    );
    assert_eq!(call.end_cause.expect("cause").detail, "NO CARRIER");
}
