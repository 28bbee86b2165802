//! The runtime over the call-leg contract alone: scripted lines (test doubles of
//! `flowgate_line::Line`) show how dialling fails over, when it must not, and that a leg's
//! events reach the call record whatever line carries it.

use std::sync::Arc;
use std::time::Duration;

use flowgate::metrics::Metrics;
use flowgate::model::CallStatus;
use flowgate::runtime::{DialRequest, FlowSource, Modems, Runtime, RuntimeOptions};
use flowgate::store::{Db, Store};
use flowgate_flows::model::Address;
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
}

impl ScriptedLine {
    fn new(id: &'static str, script: Script) -> Arc<Self> {
        let (tx, rx) = line_events();
        Arc::new(Self {
            id,
            script,
            tx,
            rx: Mutex::new(Some(rx)),
            placed: Mutex::new(Vec::new()),
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
        Box::pin(async { Ok(()) })
    }
    fn hangup(&self, leg: LegId, cause: Cause) -> LegFuture<'_, ()> {
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
    let mut seq = rt.db().store.watch_seq();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(call) = rt.db().calls.get(id).expect("read")
                && done(&call)
            {
                return call;
            }
            seq.changed().await.expect("store open");
        }
    })
    .await
    .expect("the call got there")
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
