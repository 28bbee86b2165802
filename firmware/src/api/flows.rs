//! `/v1.0/flows`: flow CRUD in VoIPBIN's shape. Bodies are parsed and validated by the flows
//! crate so a bad flow is refused with *every* problem and its JSON path (400
//! `INVALID_FLOW`); changes go through [`crate::sync::flowset::FlowSet`] (revision, events).
//!
//! Validation warnings (what VoIPBIN would run, but probably not as meant — see the flows
//! crate's `validate` module) never refuse a flow. Create and update answer with the stored
//! flow, unchanged in shape, and one `Warning: 299 flowgate "<path>: <message>"` header per
//! warning (RFC 7234's persistent-warning code, as Kubernetes' API server reports its
//! warnings): a client that round-trips the body cannot store the warnings by mistake.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use flowgate_flows::model::Flow;
use flowgate_flows::validate::{Problem as FlowProblem, validate_json};
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
                        path: format!("{}/{}.{}", u.owner, u.owner_id, u.field),
                        message: u.to_string(),
                    })
                    .collect();
                ApiError::conflict(
                    "FLOW_IN_USE",
                    format!(
                        "{text}: unbind them first (PUT /v1.0/numbers/{{id}}/flow_ids, PUT /v1.0/queues/{{id}})"
                    ),
                )
                .with_problems(problems)
            }
            FlowSetError::RevisionMismatch { .. } => ApiError::precondition_failed(text),
            FlowSetError::Invalid(problems) => {
                ApiError::invalid("INVALID_FLOW", text, problems_under("", &problems))
            }
            FlowSetError::NilId => ApiError::invalid(
                "INVALID_FLOW",
                text.clone(),
                vec![Problem {
                    path: "id".into(),
                    message: text,
                }],
            ),
            FlowSetError::TooMany(_) => ApiError::conflict("TOO_MANY_FLOWS", text),
            FlowSetError::Store(e) => ApiError::from(e),
        }
    }
}

/// Parses and validates a flow body; every error comes back with its path, and the flow
/// with its warnings.
fn parse(state: &ApiState, text: &str) -> Result<(Flow, Vec<FlowProblem>), ApiError> {
    let (flow, report) = validate_json(text, &state.validate_options());
    match flow {
        Some(flow) if report.is_ok() => Ok((flow, report.warnings)),
        _ => Err(ApiError::invalid(
            "INVALID_FLOW",
            format!("the flow is invalid ({} problem(s))", report.errors.len()),
            problems_under("", &report.errors),
        )),
    }
}

/// Most `Warning` headers in one answer; a last one says how many more there were.
const MAX_WARNING_HEADERS: usize = 50;

/// One `Warning: 299 flowgate "<path>: <message>"` header per warning. Header values are
/// visible ASCII: quotes and backslashes are escaped as in a quoted-string, other
/// characters written as `\u{…}`.
fn warning_headers(warnings: &[FlowProblem]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut add = |text: &str| {
        let mut quoted = String::with_capacity(text.len() + 16);
        for c in text.chars() {
            match c {
                '"' | '\\' => {
                    quoted.push('\\');
                    quoted.push(c);
                }
                ' '..='~' => quoted.push(c),
                other => quoted.push_str(&format!("\\\\u{{{:x}}}", u32::from(other))),
            }
        }
        if let Ok(value) = HeaderValue::from_str(&format!("299 flowgate \"{quoted}\"")) {
            headers.append(header::WARNING, value);
        }
    };
    for w in warnings.iter().take(MAX_WARNING_HEADERS) {
        add(&w.to_string());
    }
    if warnings.len() > MAX_WARNING_HEADERS {
        add(&format!(
            "{} more warnings (flowgate flow validate lists them all)",
            warnings.len() - MAX_WARNING_HEADERS
        ));
    }
    headers
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
/// `tm_create` and `tm_update`; emits `flow_created`. Warnings come back as `Warning`
/// headers.
#[utoipa::path(post, path = "/v1.0/flows", tag = "flows",
    request_body(content = FlowDoc, description = "`{name, detail, actions[], on_complete_flow_id?}`"),
    responses(
        (status = 200, description = "The stored flow", body = FlowDoc,
            headers(("Warning" = String, description = "One per validation warning: `299 flowgate \"<path>: <message>\"`"))),
        (status = 409, description = "`DUPLICATE_ID`: a flow with this id exists; `TOO_MANY_FLOWS`", body = super::error::ErrorBody),
    ))]
pub(super) async fn create(
    State(state): State<ApiState>,
    JsonText(text): JsonText,
) -> Result<(HeaderMap, Json<Flow>), ApiError> {
    let (flow, warnings) = parse(&state, &text)?;
    let stored = state.flows().create(flow)?;
    state.runtime().db().store.flush().await?;
    Ok((warning_headers(&warnings), Json(stored)))
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
/// started with. Emits `flow_updated`. Warnings come back as `Warning` headers.
#[utoipa::path(put, path = "/v1.0/flows/{id}", tag = "flows", params(("id" = Uuid, Path, description = "Flow id")),
    request_body(content = FlowDoc),
    responses((status = 200, description = "The stored flow", body = FlowDoc,
        headers(("Warning" = String, description = "One per validation warning: `299 flowgate \"<path>: <message>\"`")))))]
pub(super) async fn update(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
    JsonText(text): JsonText,
) -> Result<(HeaderMap, Json<Flow>), ApiError> {
    let (flow, warnings) = parse(&state, &text)?;
    let stored = state.flows().update(id, flow)?;
    state.runtime().db().store.flush().await?;
    Ok((warning_headers(&warnings), Json(stored)))
}

/// Deletes a flow; refused with 409 `FLOW_IN_USE` while a number or a queue uses it. Emits
/// `flow_deleted`.
#[utoipa::path(delete, path = "/v1.0/flows/{id}", tag = "flows", params(("id" = Uuid, Path, description = "Flow id")),
    responses(
        (status = 200, description = "The deleted flow", body = FlowDoc),
        (status = 409, description = "`FLOW_IN_USE`: numbers or queues use the flow (listed in `problems`)", body = super::error::ErrorBody),
    ))]
pub(super) async fn delete(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Flow>, ApiError> {
    let flow = state.flows().delete(id)?;
    state.runtime().db().store.flush().await?;
    Ok(Json(flow))
}
