//! `/v1.0/queues` and `/v1.0/queuecalls`: the local call queues `queue_join` uses, in
//! VoIPBIN's shapes (queue-manager's queue and queuecall), plus the gateway's `agents`
//! (the addresses it rings) and ring settings. A queue's `wait_queuecall_ids` and
//! `service_queuecall_ids` are the live state, filled when it is read.

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use flowgate_flows::model::Address;
use serde::Deserialize;
use uuid::Uuid;

use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, Problem};
use super::schema::AddressDoc;
use super::{ApiState, PageQuery, listing};
use crate::model::{Queue, Queuecall, QueuecallStatus, nil_uuid};
use crate::store::Batch;

listing!(
    /// A page of queues.
    QueueList,
    Queue
);

listing!(
    /// A page of queuecalls.
    QueuecallList,
    Queuecall
);

/// At most this many agents per queue (a ring-all to more legs than this is a mistake).
const MAX_AGENTS: usize = 64;

/// `POST /v1.0/queues` and `PUT /v1.0/queues/{id}`: VoIPBIN's body plus the gateway's
/// agents and ring settings. On update, absent fields keep their value.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub(super) struct QueueBody {
    /// Name.
    name: Option<String>,
    /// Free text.
    detail: Option<String>,
    /// `ringall` (or `""`), `linear`, `roundrobin` (or VoIPBIN's `random`), `longest_idle`.
    routing_method: Option<String>,
    /// VoIPBIN's agent tags (kept, not used).
    tag_ids: Option<Vec<Uuid>>,
    /// The agents to ring, in order: `{"type": "extension", "target": "100"}`,
    /// `{"type": "sip", "target": "sip:alice@192.0.2.7"}`, `{"type": "tel", "target":
    /// "+15551234567"}`.
    #[schema(value_type = Option<Vec<AddressDoc>>)]
    agents: Option<Vec<Address>>,
    /// The flow callers hear while waiting, looped (nil or `""`: music on hold).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, pattern = "^(|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")]
    wait_flow_id: Option<Option<Uuid>>,
    /// Milliseconds before a waiting caller's flow goes on (0: no limit).
    wait_timeout: Option<i64>,
    /// Milliseconds a caller may talk to an agent (0: no limit).
    service_timeout: Option<i64>,
    /// Milliseconds one agent rings before the next is tried (0: 15 s).
    agent_ring_timeout: Option<i64>,
    /// Milliseconds between two rounds over the agents (0: 5 s).
    retry_interval: Option<i64>,
}

/// A field that is present (maybe as nil / `""`, meaning "none") versus absent.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<Uuid>>, D::Error> {
    nil_uuid::deserialize(d).map(Some)
}

impl QueueBody {
    fn apply(self, q: &mut Queue) {
        if let Some(v) = self.name {
            q.name = v;
        }
        if let Some(v) = self.detail {
            q.detail = v;
        }
        if let Some(v) = self.routing_method {
            q.routing_method = v;
        }
        if let Some(v) = self.tag_ids {
            q.tag_ids = v;
        }
        if let Some(v) = self.agents {
            q.agents = v;
        }
        if let Some(v) = self.wait_flow_id {
            q.wait_flow_id = v;
        }
        if let Some(v) = self.wait_timeout {
            q.wait_timeout = v;
        }
        if let Some(v) = self.service_timeout {
            q.service_timeout = v;
        }
        if let Some(v) = self.agent_ring_timeout {
            q.agent_ring_timeout = v;
        }
        if let Some(v) = self.retry_interval {
            q.retry_interval = v;
        }
    }
}

/// Checks a queue and stores it with `kind` (`queue_created` / `queue_updated`).
async fn store(state: &ApiState, queue: Queue, kind: &str) -> Result<Json<Queue>, ApiError> {
    {
        let db = state.runtime().db();
        let _guard = state.flows().lock();
        let mut problems = Vec::new();
        if !crate::runtime::valid_routing_method(&queue.routing_method) {
            problems.push(Problem {
                path: "routing_method".into(),
                message: format!(
                    "{:?} is not a routing method (ringall, linear, roundrobin, random, longest_idle)",
                    queue.routing_method
                ),
            });
        }
        if queue.agents.len() > MAX_AGENTS {
            problems.push(Problem {
                path: "agents".into(),
                message: format!("at most {MAX_AGENTS} agents"),
            });
        }
        for (i, a) in queue.agents.iter().enumerate() {
            if a.target.trim().is_empty() {
                problems.push(Problem {
                    path: format!("agents[{i}].target"),
                    message: "an agent needs a target (an extension, a sip: URI, a number)".into(),
                });
            }
            if !matches!(a.kind.as_str(), "" | "tel" | "sip" | "extension") {
                problems.push(Problem {
                    path: format!("agents[{i}].type"),
                    message: format!(
                        "{:?} is not an address the gateway dials (tel, sip, extension)",
                        a.kind
                    ),
                });
            }
        }
        for (field, v) in [
            ("wait_timeout", queue.wait_timeout),
            ("service_timeout", queue.service_timeout),
            ("agent_ring_timeout", queue.agent_ring_timeout),
            ("retry_interval", queue.retry_interval),
        ] {
            if v < 0 {
                problems.push(Problem {
                    path: field.into(),
                    message: "milliseconds, 0 or more".into(),
                });
            }
        }
        if let Some(flow) = queue.wait_flow_id
            && !db.flows.contains(flow)?
        {
            problems.push(Problem {
                path: "wait_flow_id".into(),
                message: format!("flow {flow} does not exist"),
            });
        }
        if !problems.is_empty() {
            return Err(ApiError::invalid(
                "INVALID_QUEUE",
                "the queue is invalid",
                problems,
            ));
        }
        // Counters and live lists belong to the runtime, not to the request.
        let mut stored = queue.clone();
        stored.wait_queuecall_ids.clear();
        stored.service_queuecall_ids.clear();
        if let Some(old) = db.queues.get(queue.id)? {
            stored.total_incoming_count = old.total_incoming_count;
            stored.total_serviced_count = old.total_serviced_count;
            stored.total_abandoned_count = old.total_abandoned_count;
        }
        let mut batch = Batch::new();
        batch.put(&db.queues, stored.id, &stored)?;
        batch.event(
            kind,
            stored.id,
            serde_json::to_value(&stored).unwrap_or_default(),
        );
        db.store.commit(batch)?;
        state.runtime().queue_updated(&stored);
    }
    state.runtime().db().store.flush().await?;
    Ok(Json(live(state, queue)))
}

/// The queue with its live lists.
fn live(state: &ApiState, mut queue: Queue) -> Queue {
    let (waiting, service) = state.runtime().queue_members(queue.id);
    queue.wait_queuecall_ids = waiting;
    queue.service_queuecall_ids = service;
    queue
}

fn load(state: &ApiState, id: Uuid) -> Result<Queue, ApiError> {
    let queue = state
        .runtime()
        .db()
        .queues
        .get(id)?
        .ok_or_else(|| ApiError::not_found(format_args!("queue {id}")))?;
    Ok(live(state, queue))
}

/// Lists queues.
#[utoipa::path(get, path = "/v1.0/queues", tag = "queues", params(PageQuery),
    responses((status = 200, description = "A page of queues", body = QueueList)))]
pub(super) async fn list(
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<QueueList>, ApiError> {
    let (result, next_page_token) = q.page(&state.runtime().db().queues, |q| live(&state, q))?;
    Ok(Json(QueueList {
        result,
        next_page_token,
    }))
}

/// Creates a queue; emits `queue_created`.
#[utoipa::path(post, path = "/v1.0/queues", tag = "queues", request_body = QueueBody,
    responses((status = 200, description = "The stored queue", body = Queue)))]
pub(super) async fn create(
    State(state): State<ApiState>,
    ApiJson(body): ApiJson<QueueBody>,
) -> Result<Json<Queue>, ApiError> {
    let now = Utc::now();
    let mut queue = Queue {
        id: Uuid::now_v7(),
        name: String::new(),
        detail: String::new(),
        routing_method: String::new(),
        tag_ids: Vec::new(),
        agents: Vec::new(),
        wait_flow_id: None,
        wait_timeout: 0,
        service_timeout: 0,
        agent_ring_timeout: 0,
        retry_interval: 0,
        wait_queuecall_ids: Vec::new(),
        service_queuecall_ids: Vec::new(),
        total_incoming_count: 0,
        total_serviced_count: 0,
        total_abandoned_count: 0,
        tm_create: now,
        tm_update: now,
    };
    body.apply(&mut queue);
    store(&state, queue, "queue_created").await
}

/// One queue, with the queuecalls in it now.
#[utoipa::path(get, path = "/v1.0/queues/{id}", tag = "queues", params(("id" = Uuid, Path, description = "Queue id")),
    responses((status = 200, description = "The queue", body = Queue)))]
pub(super) async fn get_one(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Queue>, ApiError> {
    Ok(Json(load(&state, id)?))
}

/// Updates a queue (absent fields are kept; callers waiting now get the new agents and
/// routing at once); emits `queue_updated`.
#[utoipa::path(put, path = "/v1.0/queues/{id}", tag = "queues", params(("id" = Uuid, Path, description = "Queue id")),
    request_body = QueueBody,
    responses((status = 200, description = "The stored queue", body = Queue)))]
pub(super) async fn update(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<QueueBody>,
) -> Result<Json<Queue>, ApiError> {
    let mut queue = load(&state, id)?;
    body.apply(&mut queue);
    queue.tm_update = Utc::now();
    store(&state, queue, "queue_updated").await
}

/// Deletes a queue; emits `queue_deleted`. Refused (409 `QUEUE_IN_USE`) while callers are
/// in it: kick them first.
#[utoipa::path(delete, path = "/v1.0/queues/{id}", tag = "queues", params(("id" = Uuid, Path, description = "Queue id")),
    responses(
        (status = 200, description = "The deleted queue", body = Queue),
        (status = 409, description = "`QUEUE_IN_USE`: callers are in the queue", body = super::error::ErrorBody),
    ))]
pub(super) async fn delete(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Queue>, ApiError> {
    let queue = load(&state, id)?;
    if !queue.wait_queuecall_ids.is_empty() || !queue.service_queuecall_ids.is_empty() {
        return Err(ApiError::conflict(
            "QUEUE_IN_USE",
            format!("queue {id} has callers; kick them first"),
        ));
    }
    let db = state.runtime().db();
    let mut batch = Batch::new();
    batch.remove(&db.queues, id);
    batch.event(
        "queue_deleted",
        id,
        serde_json::to_value(&queue).unwrap_or_default(),
    );
    db.store.commit(batch)?;
    db.store.flush().await?;
    Ok(Json(queue))
}

/// Lists queuecalls (callers' stays in queues, past and present).
#[utoipa::path(get, path = "/v1.0/queuecalls", tag = "queues", params(PageQuery),
    responses((status = 200, description = "A page of queuecalls", body = QueuecallList)))]
pub(super) async fn list_calls(
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<QueuecallList>, ApiError> {
    let (result, next_page_token) = q.page(&state.runtime().db().queuecalls, |c| c)?;
    Ok(Json(QueuecallList {
        result,
        next_page_token,
    }))
}

fn load_call(state: &ApiState, id: Uuid) -> Result<Queuecall, ApiError> {
    state
        .runtime()
        .db()
        .queuecalls
        .get(id)?
        .ok_or_else(|| ApiError::not_found(format_args!("queuecall {id}")))
}

/// One queuecall.
#[utoipa::path(get, path = "/v1.0/queuecalls/{id}", tag = "queues", params(("id" = Uuid, Path, description = "Queuecall id")),
    responses((status = 200, description = "The queuecall", body = Queuecall)))]
pub(super) async fn get_call(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Queuecall>, ApiError> {
    Ok(Json(load_call(&state, id)?))
}

/// Kicks a caller out of its queue: its flow goes on after `queue_join` (an agent it
/// talks to is hung up). Answers with the queuecall, `kicking` until the caller left.
#[utoipa::path(post, path = "/v1.0/queuecalls/{id}/kick", tag = "queues", params(("id" = Uuid, Path, description = "Queuecall id")),
    responses(
        (status = 200, description = "The queuecall", body = Queuecall),
        (status = 409, description = "`QUEUECALL_OVER`: the caller has left the queue", body = super::error::ErrorBody),
    ))]
pub(super) async fn kick(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Queuecall>, ApiError> {
    let qc = load_call(&state, id)?;
    let over = |qc: &Queuecall| {
        ApiError::conflict(
            "QUEUECALL_OVER",
            format!("queuecall {} is over ({:?})", qc.id, qc.status),
        )
    };
    if matches!(
        qc.status,
        QueuecallStatus::Done | QueuecallStatus::Abandoned
    ) {
        return Err(over(&qc));
    }
    match state.runtime().queuecall_kick(id).await {
        Ok(Some(qc)) => Ok(Json(qc)),
        Ok(None) => Err(ApiError::not_found(format_args!("queuecall {id}"))),
        Err(_) => Err(over(&load_call(&state, id)?)),
    }
}
