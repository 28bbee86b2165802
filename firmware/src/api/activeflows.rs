//! `/v1.0/activeflows`: start flows from the API (reference type `api`, media actions
//! skipped), list and inspect them (with the executed actions), stop and delete them, and
//! steer them: `forward_action_id` (jump), and VoIPBIN's internal `push_actions` and
//! `continue` RPCs.

use std::collections::HashSet;

use axum::Json;
use axum::extract::State;
use flowgate_flows::model::{Action, ReferenceType, actions_from_value};
use flowgate_flows::validate::validate_actions;
use indexmap::IndexMap;
use serde::Deserialize;
use uuid::Uuid;

use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, Problem, problems_under};
use super::schema::ActionDoc;
use super::{ApiState, PageQuery, listing};
use crate::model::{ActiveflowView, nil_uuid};
use crate::runtime::{FlowSource, StartRequest};

listing!(
    /// A page of activeflows.
    ActiveflowList,
    ActiveflowView
);

/// `POST /v1.0/activeflows`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(super) struct CreateActiveflow {
    /// Id to give the activeflow (a UUIDv7 is assigned when missing).
    #[serde(default, with = "nil_uuid")]
    #[schema(value_type = Option<String>, pattern = "^(|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")]
    id: Option<Uuid>,
    /// The stored flow to run (or give `actions`).
    #[serde(default, with = "nil_uuid")]
    #[schema(value_type = Option<String>, pattern = "^(|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")]
    flow_id: Option<Uuid>,
    /// Inline actions to run (or give `flow_id`).
    #[schema(value_type = Option<Vec<ActionDoc>>)]
    actions: Option<serde_json::Value>,
    /// Variables for the flow (string values; `voipbin.*` names are dropped, VoIPBIN's caps
    /// apply).
    #[serde(default)]
    #[schema(value_type = std::collections::HashMap<String, String>)]
    variables: IndexMap<String, String>,
    /// Receives this activeflow's events (`activeflow_created/updated/deleted`).
    #[serde(default)]
    webhook_uri: String,
    /// `POST` (default), `GET`, `PUT` or `DELETE`.
    #[serde(default)]
    webhook_method: String,
}

/// `PUT /v1.0/activeflows/{id}/forward_action_id`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(super) struct ForwardBody {
    /// The action to jump to (in the current stack or one below it).
    forward_action_id: Uuid,
    /// Jump now, abandoning what the flow waits on (true), or when the current action
    /// completes (false).
    #[serde(default)]
    forward_now: bool,
}

/// `POST /v1.0/activeflows/{id}/push_actions`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(super) struct PushBody {
    /// Actions to run as a new stack on top of the current one.
    #[schema(value_type = Vec<ActionDoc>)]
    actions: serde_json::Value,
    /// Run them now (true) or when the current action completes (false).
    #[serde(default)]
    forward_now: bool,
}

/// `POST /v1.0/activeflows/{id}/continue`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(super) struct ContinueBody {
    /// The `block` action the flow waits on.
    current_action_id: Uuid,
}

/// Parses and validates inline actions (field `field` of the body); every problem comes back
/// with its path under `field`.
pub(super) fn parse_actions(
    state: &ApiState,
    field: &str,
    value: serde_json::Value,
) -> Result<Vec<Action>, ApiError> {
    let limits = &state.runtime().guards().limits;
    let actions = actions_from_value(value, limits).map_err(|e| {
        ApiError::invalid(
            "INVALID_ACTIONS",
            format!("`{field}` is invalid"),
            problems_under(field, &e.problems()),
        )
    })?;
    let report = validate_actions(&actions, &HashSet::new(), limits);
    if !report.is_ok() {
        // validate_actions names its root `actions`; re-root under the body's field.
        let problems = report
            .errors
            .iter()
            .map(|e| Problem {
                path: e
                    .path
                    .strip_prefix("actions")
                    .map_or_else(|| e.path.clone(), |rest| format!("{field}{rest}")),
                message: e.message.clone(),
            })
            .collect();
        return Err(ApiError::invalid(
            "INVALID_ACTIONS",
            format!("`{field}` is invalid"),
            problems,
        ));
    }
    Ok(actions)
}

/// Checks a per-activeflow webhook; returns the method to store (upper case).
fn check_webhook(uri: &str, method: &str) -> Result<String, ApiError> {
    if !uri.is_empty() {
        let ok = reqwest::Url::parse(uri).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if !ok {
            return Err(ApiError::bad_request(
                "INVALID_BODY",
                format!("webhook_uri {uri:?} is not an http(s) URL"),
            )
            .with_problems(vec![Problem {
                path: "webhook_uri".into(),
                message: "not an http(s) URL".into(),
            }]));
        }
    }
    let method = method.to_ascii_uppercase();
    if !matches!(method.as_str(), "" | "POST" | "GET" | "PUT" | "DELETE") {
        return Err(ApiError::bad_request(
            "INVALID_BODY",
            format!("webhook_method {method:?} is not one of POST, GET, PUT, DELETE"),
        ));
    }
    Ok(method)
}

async fn view(state: &ApiState, id: Uuid) -> Result<Json<ActiveflowView>, ApiError> {
    let record = state
        .runtime()
        .db()
        .activeflows
        .get(id)?
        .ok_or_else(|| ApiError::not_found(format_args!("activeflow {id}")))?;
    Ok(Json(record.public()))
}

/// Lists activeflows (running and ended), oldest first.
#[utoipa::path(get, path = "/v1.0/activeflows", tag = "activeflows", params(PageQuery),
    responses((status = 200, description = "A page of activeflows", body = ActiveflowList)))]
pub(super) async fn list(
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<ActiveflowList>, ApiError> {
    let (result, next_page_token) = q.page(&state.runtime().db().activeflows, |r| r.public())?;
    Ok(Json(ActiveflowList {
        result,
        next_page_token,
    }))
}

/// Creates an activeflow with reference type `api` and runs it at once (media actions are
/// skipped, as in VoIPBIN). Answers when the activeflow is stored.
#[utoipa::path(post, path = "/v1.0/activeflows", tag = "activeflows", request_body = CreateActiveflow,
    responses(
        (status = 200, description = "The activeflow as created", body = ActiveflowView),
        (status = 409, description = "`DUPLICATE_ID`", body = super::error::ErrorBody),
        (status = 503, description = "`SHUTTING_DOWN`", body = super::error::ErrorBody),
    ))]
pub(super) async fn create(
    State(state): State<ApiState>,
    ApiJson(body): ApiJson<CreateActiveflow>,
) -> Result<Json<ActiveflowView>, ApiError> {
    let flow = match (body.flow_id, body.actions) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "INVALID_BODY",
                "give either flow_id or actions, not both",
            ));
        }
        (Some(flow_id), None) => FlowSource::Stored(flow_id),
        (None, Some(actions)) => FlowSource::Inline(parse_actions(&state, "actions", actions)?),
        (None, None) => {
            return Err(ApiError::bad_request(
                "INVALID_BODY",
                "flow_id or actions is required",
            ));
        }
    };
    let webhook_method = check_webhook(&body.webhook_uri, &body.webhook_method)?;
    let mut request = StartRequest::new(flow, ReferenceType::Api, None);
    request.id = body.id;
    request.external = body.variables;
    request.webhook_uri = body.webhook_uri;
    request.webhook_method = webhook_method;
    let record = state.runtime().start(request).await?;
    Ok(Json(record.public()))
}

/// One activeflow, with its variables and executed actions.
#[utoipa::path(get, path = "/v1.0/activeflows/{id}", tag = "activeflows",
    params(("id" = Uuid, Path, description = "Activeflow id")),
    responses((status = 200, description = "The activeflow", body = ActiveflowView)))]
pub(super) async fn get_one(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ActiveflowView>, ApiError> {
    view(&state, id).await
}

/// Stops an activeflow (idempotent) and returns it as ended.
#[utoipa::path(post, path = "/v1.0/activeflows/{id}/stop", tag = "activeflows",
    params(("id" = Uuid, Path, description = "Activeflow id")),
    responses((status = 200, description = "The ended activeflow", body = ActiveflowView)))]
pub(super) async fn stop(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ActiveflowView>, ApiError> {
    let record = state.runtime().stop(id, "stopped through the API").await?;
    state.runtime().db().store.flush().await?;
    Ok(Json(record.public()))
}

/// Stops (if running) and deletes an activeflow; emits `activeflow_deleted`.
#[utoipa::path(delete, path = "/v1.0/activeflows/{id}", tag = "activeflows",
    params(("id" = Uuid, Path, description = "Activeflow id")),
    responses((status = 200, description = "The deleted activeflow", body = ActiveflowView)))]
pub(super) async fn delete(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ActiveflowView>, ApiError> {
    let record = state.runtime().delete(id).await?;
    state.runtime().db().store.flush().await?;
    Ok(Json(record.public()))
}

/// Jumps to an action: now (abandoning a wait such as `digits_receive` or `block`) or when
/// the current action completes.
#[utoipa::path(put, path = "/v1.0/activeflows/{id}/forward_action_id", tag = "activeflows",
    params(("id" = Uuid, Path, description = "Activeflow id")), request_body = ForwardBody,
    responses(
        (status = 200, description = "The activeflow as stored (the jump is applied by its runner)", body = ActiveflowView),
        (status = 409, description = "`ACTIVEFLOW_ENDED`", body = super::error::ErrorBody),
    ))]
pub(super) async fn forward(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ForwardBody>,
) -> Result<Json<ActiveflowView>, ApiError> {
    state
        .runtime()
        .forward(id, body.forward_action_id, body.forward_now)
        .await?;
    view(&state, id).await
}

/// Pushes actions as a new stack (VoIPBIN's `push_actions`); ids are assigned when missing.
#[utoipa::path(post, path = "/v1.0/activeflows/{id}/push_actions", tag = "activeflows",
    params(("id" = Uuid, Path, description = "Activeflow id")), request_body = PushBody,
    responses(
        (status = 200, description = "The activeflow as stored", body = ActiveflowView),
        (status = 409, description = "`ACTIVEFLOW_ENDED`, `TOO_MANY_STACKS`", body = super::error::ErrorBody),
    ))]
pub(super) async fn push_actions(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<PushBody>,
) -> Result<Json<ActiveflowView>, ApiError> {
    let actions = parse_actions(&state, "actions", body.actions)?;
    state
        .runtime()
        .push_actions(id, actions, body.forward_now)
        .await?;
    view(&state, id).await
}

/// Resumes a flow waiting in `block` (VoIPBIN's `continue`).
#[utoipa::path(post, path = "/v1.0/activeflows/{id}/continue", tag = "activeflows",
    params(("id" = Uuid, Path, description = "Activeflow id")), request_body = ContinueBody,
    responses(
        (status = 200, description = "The activeflow as stored", body = ActiveflowView),
        (status = 409, description = "`STALE_ACTION`: the flow does not wait on that action; `ACTIVEFLOW_ENDED`", body = super::error::ErrorBody),
    ))]
pub(super) async fn continue_block(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ContinueBody>,
) -> Result<Json<ActiveflowView>, ApiError> {
    state
        .runtime()
        .continue_block(id, body.current_action_id)
        .await?;
    view(&state, id).await
}
