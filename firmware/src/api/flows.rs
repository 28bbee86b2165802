//! `/v1.0/flows`: flow CRUD in VoIPBIN's shape. Bodies are parsed and validated by the flows
//! crate so a bad flow is refused with *every* problem and its JSON path (400
//! `INVALID_FLOW`); changes go through [`crate::sync::flowset::FlowSet`] (revision, events).

use axum::Json;
use axum::extract::State;
use flowgate_flows::model::Flow;
use flowgate_flows::validate::validate_json;
use uuid::Uuid;

use super::error::{ApiError, ApiPath, ApiQuery, JsonText, Problem, problems_under};
use super::schema::FlowDoc;
use super::{ApiState, PageQuery, listing};
use crate::sync::flowset::FlowSetError;

listing!(
    /// A page of flows.
    FlowList,
    Flow,
    FlowDoc
);

impl From<FlowSetError> for ApiError {
    fn from(e: FlowSetError) -> Self {
        let text = e.to_string();
        match e {
            FlowSetError::NotFound(id) => ApiError::not_found(format_args!("flow {id}")),
            FlowSetError::Duplicate(_) => ApiError::conflict("DUPLICATE_ID", text),
            FlowSetError::IdMismatch { .. } => ApiError::bad_request("ID_MISMATCH", text),
            FlowSetError::InUse(uses) => {
                let problems = uses
                    .iter()
                    .map(|u| Problem {
                        path: format!("numbers/{}.{}", u.number_id, u.field),
                        message: u.to_string(),
                    })
                    .collect();
                ApiError::conflict(
                    "FLOW_IN_USE",
                    format!("{text}: unbind them first (PUT /v1.0/numbers/{{id}}/flow_ids)"),
                )
                .with_problems(problems)
            }
            FlowSetError::RevisionMismatch { .. } => ApiError::precondition_failed(text),
            FlowSetError::Invalid(problems) => {
                ApiError::invalid("INVALID_FLOW", text, problems_under("", &problems))
            }
            FlowSetError::TooMany(_) => ApiError::conflict("TOO_MANY_FLOWS", text),
            FlowSetError::Store(e) => ApiError::from(e),
        }
    }
}

/// Parses and validates a flow body; every problem comes back with its path.
fn parse(state: &ApiState, text: &str) -> Result<Flow, ApiError> {
    let (flow, report) = validate_json(text, &state.validate_options());
    match flow {
        Some(flow) if report.is_ok() => Ok(flow),
        _ => Err(ApiError::invalid(
            "INVALID_FLOW",
            format!("the flow is invalid ({} problem(s))", report.errors.len()),
            problems_under("", &report.errors),
        )),
    }
}

/// Lists flows, oldest first.
#[utoipa::path(get, path = "/v1.0/flows", tag = "flows", params(PageQuery),
    responses((status = 200, description = "A page of flows", body = FlowList)))]
pub(super) async fn list(
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<FlowList>, ApiError> {
    let (result, next_page_token) = q.page(&state.runtime().db().flows, |f| f)?;
    Ok(Json(FlowList {
        result,
        next_page_token,
    }))
}

/// Creates a flow: validated, stored with `id` (assigned when missing), `type: "flow"`,
/// `tm_create` and `tm_update`; emits `flow_created`.
#[utoipa::path(post, path = "/v1.0/flows", tag = "flows",
    request_body(content = FlowDoc, description = "`{name, detail, actions[], on_complete_flow_id?}`"),
    responses(
        (status = 200, description = "The stored flow", body = FlowDoc),
        (status = 409, description = "`DUPLICATE_ID`: a flow with this id exists; `TOO_MANY_FLOWS`", body = super::error::ErrorBody),
    ))]
pub(super) async fn create(
    State(state): State<ApiState>,
    JsonText(text): JsonText,
) -> Result<Json<Flow>, ApiError> {
    let flow = parse(&state, &text)?;
    let stored = state.flows().create(flow)?;
    state.runtime().db().store.flush().await?;
    Ok(Json(stored))
}

/// One flow.
#[utoipa::path(get, path = "/v1.0/flows/{id}", tag = "flows", params(("id" = Uuid, Path, description = "Flow id")),
    responses((status = 200, description = "The flow", body = FlowDoc)))]
pub(super) async fn get_one(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Flow>, ApiError> {
    let flow = state
        .runtime()
        .db()
        .flows
        .get(id)?
        .ok_or_else(|| ApiError::not_found(format_args!("flow {id}")))?;
    Ok(Json(flow))
}

/// Replaces a flow (same body as create); running activeflows keep the actions they
/// started with. Emits `flow_updated`.
#[utoipa::path(put, path = "/v1.0/flows/{id}", tag = "flows", params(("id" = Uuid, Path, description = "Flow id")),
    request_body(content = FlowDoc),
    responses((status = 200, description = "The stored flow", body = FlowDoc)))]
pub(super) async fn update(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
    JsonText(text): JsonText,
) -> Result<Json<Flow>, ApiError> {
    let flow = parse(&state, &text)?;
    let stored = state.flows().update(id, flow)?;
    state.runtime().db().store.flush().await?;
    Ok(Json(stored))
}

/// Deletes a flow; refused with 409 `FLOW_IN_USE` while a number binding uses it. Emits
/// `flow_deleted`.
#[utoipa::path(delete, path = "/v1.0/flows/{id}", tag = "flows", params(("id" = Uuid, Path, description = "Flow id")),
    responses(
        (status = 200, description = "The deleted flow", body = FlowDoc),
        (status = 409, description = "`FLOW_IN_USE`: number bindings use the flow (listed in `problems`)", body = super::error::ErrorBody),
    ))]
pub(super) async fn delete(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Flow>, ApiError> {
    let flow = state.flows().delete(id)?;
    state.runtime().db().store.flush().await?;
    Ok(Json(flow))
}
