//! `/v1.0/calls` and `/v1.0/transfers`: the gateway's calls, outbound dialling with a flow,
//! and the interrupts that act on a live call without moving its flow (VoIPBIN §5.2):
//! hang-up, `talk`, recordings, hold, mute; transfers between the calls the gateway holds.

use axum::Json;
use axum::extract::State;
use flowgate_flows::model::Address;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::activeflows::parse_actions;
use super::error::{ApiBytes, ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody, Problem};
use super::schema::{ActionDoc, AddressDoc};
use super::{ApiState, PageQuery, listing};
use crate::model::{Call, Recording, nil_uuid};
use crate::runtime::{
    DialRequest, FlowSource, MuteDirection, RecordingRequest, TalkRequest, Transfer,
    TransferRequest,
};

listing!(
    /// A page of calls.
    CallList,
    Call
);

/// Address types a call can go to (`""` is a number).
const DIALLABLE: &[&str] = &["", "tel", "sip", "extension"];

/// `POST /v1.0/calls`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(super) struct CreateCall {
    /// Our side: the caller id to present where the line can.
    #[schema(value_type = AddressDoc)]
    source: Address,
    /// Who to call: `tel` (or untyped) numbers, `sip` addresses, `extension`s — whatever
    /// the routing table routes; one call per destination.
    #[schema(value_type = Vec<AddressDoc>)]
    destinations: Vec<Address>,
    /// Stored flow to run when a call is answered (or give `actions`).
    #[serde(default, with = "nil_uuid")]
    #[schema(value_type = Option<String>, pattern = "^(|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")]
    flow_id: Option<Uuid>,
    /// Inline actions to run when a call is answered (or give `flow_id`).
    #[schema(value_type = Option<Vec<ActionDoc>>)]
    actions: Option<serde_json::Value>,
    /// Variables for the flow.
    #[serde(default)]
    #[schema(value_type = std::collections::HashMap<String, String>)]
    variables: IndexMap<String, String>,
    /// Accepted for VoIPBIN compatibility; caller-id presentation is the SIM's.
    #[serde(default)]
    #[allow(dead_code, reason = "accepted and ignored, as documented")]
    anonymous: String,
    /// Gateway extension: the line to dial through (default: the routing table decides).
    #[serde(default)]
    line_id: String,
    /// The older name of `line_id` (a modem's id).
    #[serde(default)]
    modem_id: String,
}

/// `POST /v1.0/calls` reply (VoIPBIN's shape, plus the destinations that failed).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct CreatedCalls {
    /// One call per destination dialled.
    calls: Vec<Call>,
    /// Always empty: the gateway has no group calls.
    #[schema(value_type = Vec<Object>)]
    groupcalls: Vec<serde_json::Value>,
    /// Destinations that could not be dialled (`path` names the destination).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<Problem>,
}

/// `POST/DELETE /v1.0/calls/{id}/mute`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub(super) struct MuteBody {
    /// `both` (also `""`, the default), `in` or `out`.
    #[serde(default)]
    direction: MuteDirection,
}

fn load(state: &ApiState, id: Uuid) -> Result<Call, ApiError> {
    state
        .runtime()
        .db()
        .calls
        .get(id)?
        .ok_or_else(|| ApiError::not_found(format_args!("call {id}")))
}

/// Lists calls, oldest first.
#[utoipa::path(get, path = "/v1.0/calls", tag = "calls", params(PageQuery),
    responses((status = 200, description = "A page of calls", body = CallList)))]
pub(super) async fn list(
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<CallList>, ApiError> {
    let (result, next_page_token) = q.page(&state.runtime().db().calls, |c| c)?;
    Ok(Json(CallList {
        result,
        next_page_token,
    }))
}

/// Dials every destination; each call runs the flow once answered.
#[utoipa::path(post, path = "/v1.0/calls", tag = "calls", request_body = CreateCall,
    responses(
        (status = 200, description = "The calls dialled", body = CreatedCalls),
        (status = 409, description = "`CALL_OVER`: the line lost the call at once", body = ErrorBody),
        (status = 502, description = "`LINE_ERROR`: the line refused to dial", body = ErrorBody),
        (status = 503, description = "`NO_LINE`, `LINE_UNAVAILABLE`, `SHUTTING_DOWN`", body = ErrorBody),
    ))]
pub(super) async fn create(
    State(state): State<ApiState>,
    ApiJson(body): ApiJson<CreateCall>,
) -> Result<Json<CreatedCalls>, ApiError> {
    let flow = match (body.flow_id, body.actions) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "INVALID_BODY",
                "give either flow_id or actions, not both",
            ));
        }
        (Some(flow_id), None) => {
            if !state.runtime().db().flows.contains(flow_id)? {
                return Err(crate::runtime::RuntimeError::FlowNotFound(flow_id).into());
            }
            FlowSource::Stored(flow_id)
        }
        (None, Some(actions)) => FlowSource::Inline(parse_actions(&state, "actions", actions)?),
        (None, None) => {
            return Err(ApiError::bad_request(
                "INVALID_BODY",
                "flow_id or actions is required",
            ));
        }
    };
    if body.destinations.is_empty() {
        return Err(ApiError::bad_request(
            "INVALID_BODY",
            "destinations must name at least one address",
        ));
    }
    let bad: Vec<Problem> = body
        .destinations
        .iter()
        .enumerate()
        .filter(|(_, d)| d.target.trim().is_empty() || !DIALLABLE.contains(&d.kind.as_str()))
        .map(|(i, d)| Problem {
            path: format!("destinations[{i}]"),
            message: format!(
                "a call goes to a `tel`, `sip` or `extension` address with a target, not type {:?} target {:?}",
                d.kind, d.target
            ),
        })
        .collect();
    if !bad.is_empty() {
        return Err(ApiError::invalid(
            "INVALID_BODY",
            "some destinations cannot be dialled",
            bad,
        ));
    }
    let mut calls = Vec::new();
    let mut errors = Vec::new();
    let mut first_error = None;
    for (i, destination) in body.destinations.into_iter().enumerate() {
        let request = DialRequest {
            id: None,
            source: body.source.clone(),
            destination,
            flow: Some(flow.clone()),
            variables: body.variables.clone(),
            master_call_id: None,
            line_id: if body.line_id.is_empty() {
                body.modem_id.clone()
            } else {
                body.line_id.clone()
            },
            prefer_line: String::new(),
        };
        match state.runtime().dial(request).await {
            Ok(call) => calls.push(call),
            Err(e) => {
                errors.push(Problem {
                    path: format!("destinations[{i}]"),
                    message: e.to_string(),
                });
                first_error.get_or_insert(e);
            }
        }
    }
    if calls.is_empty()
        && let Some(e) = first_error
    {
        return Err(ApiError::from(e).with_problems(errors));
    }
    state.runtime().db().store.flush().await?;
    Ok(Json(CreatedCalls {
        calls,
        groupcalls: Vec::new(),
        errors,
    }))
}

/// One call.
#[utoipa::path(get, path = "/v1.0/calls/{id}", tag = "calls", params(("id" = Uuid, Path, description = "Call id")),
    responses((status = 200, description = "The call", body = Call)))]
pub(super) async fn get_one(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Call>, ApiError> {
    Ok(Json(load(&state, id)?))
}

/// Hangs up (idempotent on a call that is over); the flow ends through the hang-up.
#[utoipa::path(post, path = "/v1.0/calls/{id}/hangup", tag = "calls", params(("id" = Uuid, Path, description = "Call id")),
    responses((status = 200, description = "The call", body = Call)))]
pub(super) async fn hangup(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Call>, ApiError> {
    Ok(Json(state.runtime().hangup_call(id).await?))
}

/// Speaks text over the call without moving its flow.
#[utoipa::path(post, path = "/v1.0/calls/{id}/talk", tag = "calls", params(("id" = Uuid, Path, description = "Call id")),
    request_body = TalkRequest,
    responses(
        (status = 200, description = "The call (the prompt is playing)", body = Call),
        (status = 409, description = "`CALL_OVER`; `NO_AUDIO`: the call has no audio path", body = ErrorBody),
    ))]
pub(super) async fn talk(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<TalkRequest>,
) -> Result<Json<Call>, ApiError> {
    if body.text.trim().is_empty() {
        return Err(ApiError::bad_request(
            "INVALID_BODY",
            "text must not be empty",
        ));
    }
    state.runtime().call_talk(id, body).await?;
    Ok(Json(load(&state, id)?))
}

/// Starts recording the call (WAV in the data directory).
#[utoipa::path(post, path = "/v1.0/calls/{id}/recording_start", tag = "calls",
    params(("id" = Uuid, Path, description = "Call id")), request_body = RecordingRequest,
    responses(
        (status = 200, description = "The recording started", body = Recording),
        (status = 409, description = "`CALL_OVER`; `NO_AUDIO`", body = ErrorBody),
    ))]
pub(super) async fn recording_start(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<RecordingRequest>,
) -> Result<Json<Recording>, ApiError> {
    if !(body.format.is_empty() || body.format.eq_ignore_ascii_case("wav")) {
        return Err(ApiError::bad_request(
            "INVALID_BODY",
            format!("format {:?}: only wav is supported", body.format),
        ));
    }
    if body.duration < 0 || body.end_of_silence < 0 {
        return Err(ApiError::bad_request(
            "INVALID_BODY",
            "duration and end_of_silence must not be negative",
        ));
    }
    if let Some(flow) = body.on_end_flow_id
        && !state.runtime().db().flows.contains(flow)?
    {
        return Err(ApiError::bad_request(
            "UNKNOWN_FLOW",
            format!("on_end_flow_id: flow {flow} does not exist"),
        ));
    }
    Ok(Json(state.runtime().call_recording_start(id, body).await?))
}

/// Stops the call's recording.
#[utoipa::path(post, path = "/v1.0/calls/{id}/recording_stop", tag = "calls",
    params(("id" = Uuid, Path, description = "Call id")),
    responses(
        (status = 200, description = "The recording, ended", body = Recording),
        (status = 409, description = "`CALL_OVER`; `NO_AUDIO`", body = ErrorBody),
    ))]
pub(super) async fn recording_stop(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Recording>, ApiError> {
    Ok(Json(state.runtime().call_recording_stop(id).await?))
}

/// Puts the call on hold (music on hold).
#[utoipa::path(post, path = "/v1.0/calls/{id}/hold", tag = "calls", params(("id" = Uuid, Path, description = "Call id")),
    responses(
        (status = 200, description = "The call", body = Call),
        (status = 409, description = "`CALL_OVER`; `NO_AUDIO`", body = ErrorBody),
    ))]
pub(super) async fn hold(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Call>, ApiError> {
    Ok(Json(state.runtime().call_hold(id, true).await?))
}

/// Takes the call off hold.
#[utoipa::path(delete, path = "/v1.0/calls/{id}/hold", tag = "calls", params(("id" = Uuid, Path, description = "Call id")),
    responses(
        (status = 200, description = "The call", body = Call),
        (status = 409, description = "`CALL_OVER`; `NO_AUDIO`", body = ErrorBody),
    ))]
pub(super) async fn unhold(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Call>, ApiError> {
    Ok(Json(state.runtime().call_hold(id, false).await?))
}

/// The optional mute body (no body means both directions).
fn mute_body(bytes: &[u8]) -> Result<MuteDirection, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(MuteDirection::Both);
    }
    serde_json::from_slice::<MuteBody>(bytes)
        .map(|b| b.direction)
        .map_err(|e| ApiError::bad_request("INVALID_BODY", format!("mute body: {e}")))
}

/// Mutes a direction of the call.
#[utoipa::path(post, path = "/v1.0/calls/{id}/mute", tag = "calls", params(("id" = Uuid, Path, description = "Call id")),
    request_body(content = MuteBody, description = "Optional; no body mutes both directions"),
    responses(
        (status = 200, description = "The call", body = Call),
        (status = 409, description = "`CALL_OVER`; `NO_AUDIO`", body = ErrorBody),
    ))]
pub(super) async fn mute(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiBytes(body): ApiBytes,
) -> Result<Json<Call>, ApiError> {
    let direction = mute_body(&body)?;
    Ok(Json(state.runtime().call_mute(id, direction, true).await?))
}

/// Unmutes a direction of the call.
#[utoipa::path(delete, path = "/v1.0/calls/{id}/mute", tag = "calls", params(("id" = Uuid, Path, description = "Call id")),
    request_body(content = MuteBody, description = "Optional; no body unmutes both directions"),
    responses(
        (status = 200, description = "The call", body = Call),
        (status = 409, description = "`CALL_OVER`; `NO_AUDIO`", body = ErrorBody),
    ))]
pub(super) async fn unmute(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiBytes(body): ApiBytes,
) -> Result<Json<Call>, ApiError> {
    let direction = mute_body(&body)?;
    Ok(Json(state.runtime().call_mute(id, direction, false).await?))
}

/// Transfers a call (attended or blind), the way its line can.
///
/// To a `tel` number bound to a flow (`call_flow_id`) nothing is dialled: the party the
/// call is bridged to (or the call itself, bridged to nobody) runs that flow, as a call to
/// that number would, and the call is hung up.
#[utoipa::path(post, path = "/v1.0/transfers", tag = "calls", request_body = TransferRequest,
    responses(
        (status = 200, description = "The transfer", body = Transfer),
        (status = 409, description = "`CALL_OVER`", body = ErrorBody),
        (status = 503, description = "`NO_LINE`, `LINE_UNAVAILABLE`", body = ErrorBody),
    ))]
pub(super) async fn transfer(
    State(state): State<ApiState>,
    ApiJson(body): ApiJson<TransferRequest>,
) -> Result<Json<Transfer>, ApiError> {
    if body.transferee_addresses.is_empty() {
        return Err(ApiError::bad_request(
            "INVALID_BODY",
            "transferee_addresses must name at least one address",
        ));
    }
    Ok(Json(state.runtime().transfer(body).await?))
}
