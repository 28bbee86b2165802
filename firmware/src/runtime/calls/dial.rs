//! Outbound legs: the routing table picks the lines, the first that takes the call
//! carries it, and a line that fails before the far end rings hands the call to the next.
//!
//! The leg id is the call record's id and stays the same across lines, so the record, the
//! API and the flow see one call whatever line finally carries it. A watcher task per
//! outbound call does what the dial cannot wait for: it places the leg on the next line
//! when the current one fails over, and hangs up when the far end rings longer than the
//! ring timeout.

use std::sync::Arc;

use flowgate_flows::engine::Outcome;
use flowgate_flows::model::{Address, CallOption, ReferenceType, parse_actions};
use flowgate_line::{Cause, EndCause, LegDetails, LegError, Line, Party, Placement};
use indexmap::IndexMap;
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::events::settle;
use super::record::{new_call_record, set_details, set_line, store_new_call, update_call};
use super::{LiveCall, PendingFlow, Phase};
use crate::metrics::Metrics;
use crate::model::{ActiveflowRecord, Call, CallDirection, derived_id};
use crate::runtime::{FlowSource, Runtime, RuntimeError};

/// An outbound call request.
#[derive(Debug, Clone)]
pub struct DialRequest {
    /// Requested id (the `call` action derives one so a resumed flow does not dial twice).
    pub id: Option<Uuid>,
    /// Our side (caller id where the line can present one).
    pub source: Address,
    /// Who to call: `tel` (or untyped) numbers, and whatever else the routing table routes.
    pub destination: Address,
    /// The flow to run once answered (`None`: the call runs no flow, e.g. a `connect` leg).
    pub flow: Option<FlowSource>,
    /// Variables for that flow (untrusted: sanitised by the engine).
    pub variables: IndexMap<String, String>,
    /// The call that asked for this one.
    pub master_call_id: Option<Uuid>,
    /// A line to dial through ("" = the routing table decides).
    pub line_id: String,
    /// A line to try first when the routing table allows it (the line the flow's call or
    /// message came in on).
    pub prefer_line: String,
}

impl Runtime {
    /// Dials `destination` through the lines the routing table gives, and runs the
    /// request's flow on the call once it is answered. Returns the call record once a
    /// line took the call; progress, answer and end come later.
    pub async fn dial(&self, request: DialRequest) -> Result<Call, RuntimeError> {
        let id = request.id.unwrap_or_else(Uuid::now_v7);
        if let Some(existing) = self.db().calls.get(id)? {
            return Ok(existing); // idempotent (a resumed `call` action)
        }
        let lines = self.lines_for(&request)?;
        let first = lines.first().cloned().ok_or_else(|| {
            RuntimeError::NoLine(format!("no line routes {}", describe(&request.destination)))
        })?;
        let mut record = new_call_record(
            id,
            first.as_ref(),
            CallDirection::Outgoing,
            request.source.clone(),
            request.destination.clone(),
        );
        record.master_call_id = request.master_call_id;
        if let Some(FlowSource::Stored(flow_id)) = &request.flow {
            record.flow_id = Some(*flow_id);
        }
        let call = LiveCall::new(self, id, Arc::clone(&first));
        call.inner.live.lock().pending_flow = request.flow.clone().map(|flow| PendingFlow {
            flow,
            external: request.variables.clone(),
        });
        // Registered before it is placed: the leg's first event finds it.
        self.register_call(&call);
        store_new_call(self, &record)?;
        Metrics::inc(&self.inner.metrics.calls_outgoing_total);

        let placement = Placement {
            to: party_of(&request.destination),
            from: party_of(&request.source),
        };
        // A line the request names is asked even when it looks busy: the caller knows it
        // wants a second call there (a transfer), and the line refuses what it cannot do.
        let routed = request.line_id.is_empty();
        match place_on_next(self, &call, &lines, 0, &placement, routed).await {
            Ok(index) => {
                let rt = self.clone();
                let watched = call.clone();
                self.spawn(async move {
                    watch_outbound(rt, watched, lines, index, placement, routed).await;
                });
                Ok(self.db().calls.get(id)?.unwrap_or(record))
            }
            Err(e) => {
                let cause = match &e {
                    RuntimeError::Line(LegError::Failed {
                        cause: Some(cause), ..
                    }) => cause.clone(),
                    _ => EndCause::new(Cause::Unavailable, e.to_string()),
                };
                call.inner.live.lock().local_reason = Some("failed".into());
                settle(self, &call, &cause).await;
                Err(e)
            }
        }
    }

    /// The lines a request may go out on, in order.
    fn lines_for(&self, request: &DialRequest) -> Result<Vec<Arc<dyn Line>>, RuntimeError> {
        if !request.line_id.is_empty() {
            return self
                .lines()
                .get(&request.line_id)
                .map(|l| vec![Arc::clone(l)])
                .ok_or_else(|| {
                    RuntimeError::Invalid(format!("there is no line {:?}", request.line_id))
                });
        }
        let mut lines = self
            .routes()
            .candidates(self.lines(), &request.destination)
            .map_err(|e| RuntimeError::NoLine(e.to_string()))?;
        if let Some(i) = lines.iter().position(|l| l.id() == request.prefer_line) {
            let preferred = lines.remove(i);
            lines.insert(0, preferred);
        }
        Ok(lines)
    }
}

/// The party an address names.
pub(super) fn party_of(a: &Address) -> Party {
    Party {
        number: a.target.clone(),
        display_name: a.target_name.clone(),
        uri: if a.kind == "sip" {
            a.target.clone()
        } else {
            String::new()
        },
    }
}

fn describe(a: &Address) -> String {
    if a.kind.is_empty() {
        a.target.clone()
    } else {
        format!("{}:{}", a.kind, a.target)
    }
}

/// Places the leg on the first line from `from` on that takes it (skipping lines that are
/// not available when `routed`). Returns the index of that line; a refusal that another
/// line cannot cure is returned as is.
async fn place_on_next(
    rt: &Runtime,
    call: &LiveCall,
    lines: &[Arc<dyn Line>],
    from: usize,
    placement: &Placement,
    routed: bool,
) -> Result<usize, RuntimeError> {
    let mut last: Option<RuntimeError> = None;
    for (index, line) in lines.iter().enumerate().skip(from) {
        let availability = line.availability();
        if routed && !availability.is_ready() {
            debug!(call = %call.id(), line = line.id(), ?availability, "line skipped");
            last = Some(RuntimeError::NoLine(format!(
                "line {} is not available ({availability:?})",
                line.id()
            )));
            continue;
        }
        if index != from || call.line_id() != line.id() {
            *call.inner.line.lock() = Arc::clone(line);
            let _ = update_call(rt, call.id(), |c| set_line(c, line.as_ref()));
        }
        // Fail-over stays possible while another line is left to try.
        call.inner.live.lock().failover = index + 1 < lines.len();
        call.inner.phase.send_replace(Phase::Setup);
        match line.place(call.id(), placement.clone()).await {
            Ok(()) => {
                if line.leg_details(call.id()) != LegDetails::default() {
                    let _ = update_call(rt, call.id(), |c| {
                        set_details(c, line.as_ref(), call.id());
                    });
                }
                info!(call = %call.id(), line = line.id(), to = %placement.to.number, "dialling");
                return Ok(index);
            }
            Err(e) if e.fails_over() => {
                warn!(call = %call.id(), line = line.id(), cause = %e, "line could not place the call; trying the next");
                last = Some(e.into());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(last.unwrap_or_else(|| RuntimeError::NoLine("no line could place the call".into())))
}

/// Watches an outbound call until it is answered or over: fail-over to the next line, and
/// the ring timeout.
async fn watch_outbound(
    rt: Runtime,
    call: LiveCall,
    lines: Vec<Arc<dyn Line>>,
    mut index: usize,
    placement: Placement,
    routed: bool,
) {
    let ring_timeout = rt.inner.options.ring_timeout;
    let deadline = tokio::time::Instant::now() + ring_timeout;
    loop {
        let waited =
            tokio::time::timeout_at(deadline, call.wait_phase(|p| matches!(p, Phase::Answered)))
                .await;
        match waited {
            Err(_) => {
                info!(call = %call.id(), secs = ring_timeout.as_secs(), "no answer within the ring timeout");
                // VoIPBIN's reason for a call its own dial timeout ended.
                call.hangup("dialout").await;
                return;
            }
            Ok(Phase::Ended(cause)) if !call.is_ended() => {
                // An end the event task left to us: the line failed before the far end rang.
                if index + 1 < lines.len() {
                    info!(call = %call.id(), line = lines[index].id(), cause = %cause.cause, "line failed the call; failing over");
                    match place_on_next(&rt, &call, &lines, index + 1, &placement, routed).await {
                        Ok(next) => {
                            index = next;
                            continue;
                        }
                        Err(e) => debug!(call = %call.id(), cause = %e, "no line left"),
                    }
                }
                settle(&rt, &call, &cause).await;
                return;
            }
            Ok(_) => return,
        }
    }
}

/// The `call` action: dial every destination, each call running the given flow.
pub(crate) async fn dial_from_flow(
    rt: &Runtime,
    parent: &ActiveflowRecord,
    step_key: Uuid,
    option: CallOption,
) -> Outcome {
    if option.destinations.is_empty() {
        return Outcome::Failed("call: no destinations".into());
    }
    let flow = if let Some(flow_id) = option.flow_id.non_nil() {
        FlowSource::Stored(flow_id)
    } else if !option.actions.is_empty() {
        let text = serde_json::Value::Array(option.actions.clone()).to_string();
        match parse_actions(&text, &rt.guards().limits) {
            Ok(actions) => FlowSource::Inline(actions),
            Err(e) => return Outcome::Failed(format!("call: invalid actions: {e}")),
        }
    } else {
        return Outcome::Failed("call: neither flow_id nor actions".into());
    };
    let master = (parent.reference_type == ReferenceType::Call)
        .then_some(parent.reference_id)
        .flatten();
    let mut failures = Vec::new();
    for (i, destination) in option.destinations.iter().enumerate() {
        let request = DialRequest {
            id: Some(derived_id(&["call", &step_key.to_string(), &i.to_string()])),
            source: option.source.clone(),
            destination: destination.clone(),
            flow: Some(flow.clone()),
            variables: IndexMap::new(),
            master_call_id: master,
            line_id: String::new(),
            prefer_line: flow_line(parent),
        };
        if let Err(e) = rt.dial(request).await {
            failures.push(format!("{}: {e}", destination.target));
        }
    }
    if failures.len() == option.destinations.len() {
        Outcome::Failed(format!("call: {}", failures.join("; ")))
    } else {
        // VoIPBIN: the current flow continues at once; calls that failed to dial are
        // visible as failed call records.
        Outcome::Done
    }
}

/// The line a flow's call or message came in on (a soft preference for its dials).
pub(super) fn flow_line(record: &ActiveflowRecord) -> String {
    let engine = &record.engine;
    engine
        .variable("voipbin.gateway.line_id")
        .or_else(|| engine.variable("voipbin.gateway.modem_id"))
        .unwrap_or_default()
        .to_owned()
}
