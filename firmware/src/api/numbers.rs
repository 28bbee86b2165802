//! `/v1.0/numbers`: number bindings — which flow runs for calls and messages to a number (or
//! to a line: a modem, an FXS port, a SIP trunk). Referenced flows must exist; the check and the write happen under the flow
//! set's lock so a concurrent flow delete cannot leave a binding dangling.

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use serde::{Deserialize, Deserializer};
use uuid::Uuid;

use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, Problem};
use super::{ApiState, PageQuery, listing};
use crate::model::{Number, nil_uuid, same_number};
use crate::store::Batch;

listing!(
    /// A page of number bindings.
    NumberList,
    Number
);

/// `POST /v1.0/numbers` and `PUT /v1.0/numbers/{id}`. On update, absent fields keep their
/// value; a nil UUID or `""` unbinds a flow.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub(super) struct NumberBody {
    /// The number in E.164 (`+15551234567`); digits, `+`, `*`, `#`, spaces, dashes and
    /// brackets, at most 32 characters.
    number: Option<String>,
    /// Bind by line (a modem's id in the board profile, an analog port, a SIP trunk)
    /// instead of, or as well as, by number.
    line_id: Option<String>,
    /// The older name of `line_id` (a modem's id); `line_id` wins when both are given.
    modem_id: Option<String>,
    /// Flow for incoming calls.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, pattern = "^(|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")]
    call_flow_id: Option<Option<Uuid>>,
    /// Flow for incoming messages.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, pattern = "^(|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")]
    message_flow_id: Option<Option<Uuid>>,
    /// Display name.
    name: Option<String>,
    /// Free text.
    detail: Option<String>,
}

/// `PUT /v1.0/numbers/{id}/flow_ids`: sets both (absent, nil or `""` unbinds).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(super) struct FlowIdsBody {
    /// Flow for incoming calls.
    #[serde(default, with = "nil_uuid")]
    #[schema(value_type = Option<String>, pattern = "^(|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")]
    call_flow_id: Option<Uuid>,
    /// Flow for incoming messages.
    #[serde(default, with = "nil_uuid")]
    #[schema(value_type = Option<String>, pattern = "^(|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")]
    message_flow_id: Option<Uuid>,
}

/// A field that is present (maybe as nil / `""`, meaning "none") versus absent.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<Uuid>>, D::Error> {
    nil_uuid::deserialize(d).map(Some)
}

fn valid_number(number: &str) -> bool {
    number.len() <= 32
        && number.chars().any(|c| c.is_ascii_digit())
        && number
            .chars()
            .all(|c| c.is_ascii_digit() || "+*# -()".contains(c))
}

impl NumberBody {
    /// Applies the present fields to `n`; returns the name the request gave the line by
    /// (errors about it name that field).
    fn apply(self, n: &mut Number) -> &'static str {
        let line_field = if self.line_id.is_none() && self.modem_id.is_some() {
            "modem_id"
        } else {
            "line_id"
        };
        if let Some(v) = self.number {
            n.number = v.trim().to_owned();
        }
        match (self.line_id, self.modem_id) {
            (Some(v), _) | (None, Some(v)) => {
                n.line_id = v.trim().to_owned();
                n.modem_id.clear();
            }
            (None, None) => {}
        }
        if let Some(v) = self.call_flow_id {
            n.call_flow_id = v;
        }
        if let Some(v) = self.message_flow_id {
            n.message_flow_id = v;
        }
        if let Some(v) = self.name {
            n.name = v;
        }
        if let Some(v) = self.detail {
            n.detail = v;
        }
        line_field
    }
}

/// Checks a binding and stores it with `kind` (`number_created` / `number_updated`).
/// Holds the flow set's lock from the checks to the commit. `line_field` names the field
/// the request gave the line by.
async fn store(
    state: &ApiState,
    mut number: Number,
    kind: &str,
    line_field: &str,
) -> Result<Json<Number>, ApiError> {
    {
        let db = state.runtime().db();
        let _guard = state.flows().lock();
        let mut problems = Vec::new();
        if number.number.is_empty() && number.line_id.is_empty() {
            problems.push(Problem {
                path: "number".into(),
                message: "give a number, a line_id (or modem_id), or both".into(),
            });
        }
        if !number.number.is_empty() && !valid_number(&number.number) {
            problems.push(Problem {
                path: "number".into(),
                message: format!(
                    "{:?} is not a phone number (digits, +, *, #, spaces, dashes; at most 32)",
                    number.number
                ),
            });
        }
        let lines = state.runtime().lines();
        if !number.line_id.is_empty() && lines.get(&number.line_id).is_none() {
            let known: Vec<&str> = lines.iter().map(|l| l.id()).collect();
            problems.push(Problem {
                path: line_field.into(),
                message: format!(
                    "the gateway has no line {:?} (it has: {})",
                    number.line_id,
                    known.join(", ")
                ),
            });
        }
        for (field, flow) in [
            ("call_flow_id", number.call_flow_id),
            ("message_flow_id", number.message_flow_id),
        ] {
            if let Some(flow) = flow
                && !db.flows.contains(flow)?
            {
                problems.push(Problem {
                    path: field.into(),
                    message: format!("flow {flow} does not exist"),
                });
            }
        }
        if !problems.is_empty() {
            return Err(ApiError::invalid(
                "INVALID_NUMBER",
                "the number binding is invalid",
                problems,
            ));
        }
        for entry in db.numbers.iter() {
            let (id, other) = entry?;
            if id == number.id {
                continue;
            }
            if !number.number.is_empty() && same_number(&other.number, &number.number) {
                return Err(ApiError::conflict(
                    "DUPLICATE_NUMBER",
                    format!("number {} is already bound ({id})", number.number),
                ));
            }
            if !number.line_id.is_empty() && other.line_id == number.line_id {
                return Err(ApiError::conflict(
                    "DUPLICATE_NUMBER",
                    format!("line {} is already bound ({id})", number.line_id),
                ));
            }
        }
        number.settle_line(|id| {
            lines
                .get(id)
                .is_some_and(|l| l.transport() == flowgate_line::Transport::Modem)
        });
        let mut batch = Batch::new();
        batch.put(&db.numbers, number.id, &number)?;
        batch.event(
            kind,
            number.id,
            serde_json::to_value(&number).unwrap_or_default(),
        );
        db.store.commit(batch)?;
    }
    state.runtime().db().store.flush().await?;
    Ok(Json(number))
}

fn load(state: &ApiState, id: Uuid) -> Result<Number, ApiError> {
    state
        .runtime()
        .db()
        .numbers
        .get(id)?
        .ok_or_else(|| ApiError::not_found(format_args!("number {id}")))
}

/// Lists number bindings.
#[utoipa::path(get, path = "/v1.0/numbers", tag = "numbers", params(PageQuery),
    responses((status = 200, description = "A page of numbers", body = NumberList)))]
pub(super) async fn list(
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<NumberList>, ApiError> {
    let (result, next_page_token) = q.page(&state.runtime().db().numbers, |n| n)?;
    Ok(Json(NumberList {
        result,
        next_page_token,
    }))
}

/// Creates a binding; emits `number_created`.
#[utoipa::path(post, path = "/v1.0/numbers", tag = "numbers", request_body = NumberBody,
    responses(
        (status = 200, description = "The stored binding", body = Number),
        (status = 409, description = "`DUPLICATE_NUMBER`: the number or modem is bound already", body = super::error::ErrorBody),
    ))]
pub(super) async fn create(
    State(state): State<ApiState>,
    ApiJson(body): ApiJson<NumberBody>,
) -> Result<Json<Number>, ApiError> {
    let mut number = Number::new(Utc::now());
    let line_field = body.apply(&mut number);
    store(&state, number, "number_created", line_field).await
}

/// One binding.
#[utoipa::path(get, path = "/v1.0/numbers/{id}", tag = "numbers", params(("id" = Uuid, Path, description = "Number id")),
    responses((status = 200, description = "The binding", body = Number)))]
pub(super) async fn get_one(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Number>, ApiError> {
    Ok(Json(load(&state, id)?))
}

/// Updates a binding (absent fields are kept); emits `number_updated`.
#[utoipa::path(put, path = "/v1.0/numbers/{id}", tag = "numbers", params(("id" = Uuid, Path, description = "Number id")),
    request_body = NumberBody,
    responses(
        (status = 200, description = "The stored binding", body = Number),
        (status = 409, description = "`DUPLICATE_NUMBER`", body = super::error::ErrorBody),
    ))]
pub(super) async fn update(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<NumberBody>,
) -> Result<Json<Number>, ApiError> {
    let mut number = load(&state, id)?;
    let line_field = body.apply(&mut number);
    number.tm_update = Utc::now();
    store(&state, number, "number_updated", line_field).await
}

/// Sets both flows of a binding; emits `number_updated`.
#[utoipa::path(put, path = "/v1.0/numbers/{id}/flow_ids", tag = "numbers",
    params(("id" = Uuid, Path, description = "Number id")), request_body = FlowIdsBody,
    responses((status = 200, description = "The stored binding", body = Number)))]
pub(super) async fn set_flow_ids(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<FlowIdsBody>,
) -> Result<Json<Number>, ApiError> {
    let mut number = load(&state, id)?;
    number.call_flow_id = body.call_flow_id;
    number.message_flow_id = body.message_flow_id;
    number.tm_update = Utc::now();
    store(&state, number, "number_updated", "line_id").await
}

/// Deletes a binding; emits `number_deleted`.
#[utoipa::path(delete, path = "/v1.0/numbers/{id}", tag = "numbers", params(("id" = Uuid, Path, description = "Number id")),
    responses((status = 200, description = "The deleted binding", body = Number)))]
pub(super) async fn delete(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Number>, ApiError> {
    let number = load(&state, id)?;
    let db = state.runtime().db();
    let mut batch = Batch::new();
    batch.remove(&db.numbers, id);
    batch.event(
        "number_deleted",
        id,
        serde_json::to_value(&number).unwrap_or_default(),
    );
    db.store.commit(batch)?;
    db.store.flush().await?;
    Ok(Json(number))
}
