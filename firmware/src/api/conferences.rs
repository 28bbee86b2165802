//! `/v1.0/conferences` and `/v1.0/conferencecalls`: the local conferences
//! (`conference_join` / `confbridge_join`) in VoIPBIN's shapes — create one (name, detail,
//! data, timeout, pre/post flow), inspect, end it (its participants are kicked), record it
//! as one file (`recording_start` / `recording_stop`), kick a participant (VoIPBIN's
//! conferencecall `DELETE`) — plus the gateway's participant mute (the others stop
//! hearing it; it still hears them).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::ApiState;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use crate::runtime::{
    ConferenceInfo, ConferenceRecordingRequest, ConferenceRequest, Conferencecall,
};

/// The conferences.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ConferenceList {
    /// The conferences, by id.
    pub result: Vec<ConferenceInfo>,
}

/// The live conferencecalls (participants).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ConferencecallList {
    /// The participants, by id.
    pub result: Vec<Conferencecall>,
}

fn known_flow(state: &ApiState, field: &str, id: Option<Uuid>) -> Result<(), ApiError> {
    if let Some(flow) = id
        && !state.runtime().db().flows.contains(flow)?
    {
        return Err(ApiError::bad_request(
            "UNKNOWN_FLOW",
            format!("{field}: flow {flow} does not exist"),
        ));
    }
    Ok(())
}

/// Lists the conferences with their participants.
#[utoipa::path(get, path = "/v1.0/conferences", tag = "conferences",
    responses((status = 200, description = "The conferences", body = ConferenceList)))]
pub(super) async fn list(State(state): State<ApiState>) -> Json<ConferenceList> {
    Json(ConferenceList {
        result: state.runtime().conferences(),
    })
}

/// Creates a conference; calls join it with `conference_join`. It lives until it is
/// deleted or its timeout ends it.
#[utoipa::path(post, path = "/v1.0/conferences", tag = "conferences",
    request_body = ConferenceRequest,
    responses((status = 200, description = "The conference", body = ConferenceInfo),
        (status = 400, description = "`INVALID_REQUEST` (id taken, negative timeout); `UNKNOWN_FLOW`", body = ErrorBody)))]
pub(super) async fn create(
    State(state): State<ApiState>,
    ApiJson(body): ApiJson<ConferenceRequest>,
) -> Result<Json<ConferenceInfo>, ApiError> {
    known_flow(&state, "pre_flow_id", body.pre_flow_id)?;
    known_flow(&state, "post_flow_id", body.post_flow_id)?;
    Ok(Json(state.runtime().conference_create(body)?))
}

/// One conference.
#[utoipa::path(get, path = "/v1.0/conferences/{id}", tag = "conferences",
    params(("id" = Uuid, Path, description = "Conference id")),
    responses((status = 200, description = "The conference", body = ConferenceInfo),
        (status = 404, description = "No such conference", body = ErrorBody)))]
pub(super) async fn get_one(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ConferenceInfo>, ApiError> {
    Ok(Json(state.runtime().conference(id)?))
}

/// Ends a conference: every participant is kicked (their flows go on), its recording ends.
#[utoipa::path(delete, path = "/v1.0/conferences/{id}", tag = "conferences",
    params(("id" = Uuid, Path, description = "Conference id")),
    responses((status = 200, description = "The conference, terminated", body = ConferenceInfo),
        (status = 404, description = "No such conference", body = ErrorBody)))]
pub(super) async fn delete(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ConferenceInfo>, ApiError> {
    Ok(Json(state.runtime().conference_delete(id)?))
}

/// Starts recording the conference: one WAV of the mix of every participant, listed with
/// the recordings (`reference_type` `confbridge`). It ends at `duration`, on
/// `recording_stop` or with the conference.
#[utoipa::path(post, path = "/v1.0/conferences/{id}/recording_start", tag = "conferences",
    params(("id" = Uuid, Path, description = "Conference id")),
    request_body = ConferenceRecordingRequest,
    responses((status = 200, description = "The conference, with its `recording_id`", body = ConferenceInfo),
        (status = 400, description = "`INVALID_REQUEST` (already recording, not wav); `UNKNOWN_FLOW`", body = ErrorBody),
        (status = 404, description = "No such conference", body = ErrorBody)))]
pub(super) async fn recording_start(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ConferenceRecordingRequest>,
) -> Result<Json<ConferenceInfo>, ApiError> {
    known_flow(&state, "on_end_flow_id", body.on_end_flow_id)?;
    Ok(Json(
        state.runtime().conference_recording_start(id, body).await?,
    ))
}

/// Stops the conference recording (the file is complete when this answers).
#[utoipa::path(post, path = "/v1.0/conferences/{id}/recording_stop", tag = "conferences",
    params(("id" = Uuid, Path, description = "Conference id")),
    responses((status = 200, description = "The conference", body = ConferenceInfo),
        (status = 400, description = "`INVALID_REQUEST`: not recording", body = ErrorBody),
        (status = 404, description = "No such conference", body = ErrorBody)))]
pub(super) async fn recording_stop(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ConferenceInfo>, ApiError> {
    Ok(Json(state.runtime().conference_recording_stop(id).await?))
}

async fn set_mute(
    state: &ApiState,
    id: Uuid,
    call_id: Uuid,
    muted: bool,
) -> Result<Json<ConferenceInfo>, ApiError> {
    let rt = state.runtime();
    if !rt.conference_mute(id, call_id, muted) {
        return Err(ApiError::not_found(format_args!(
            "participant {call_id} of conference {id}"
        )));
    }
    Ok(Json(rt.conference(id)?))
}

/// Mutes a participant: the others (and the recording) no longer hear it.
#[utoipa::path(post, path = "/v1.0/conferences/{id}/participants/{call_id}/mute", tag = "conferences",
    params(("id" = Uuid, Path, description = "Conference id"), ("call_id" = Uuid, Path, description = "The participant's call id")),
    responses((status = 200, description = "The conference", body = ConferenceInfo),
        (status = 404, description = "No such participant", body = ErrorBody)))]
pub(super) async fn mute(
    State(state): State<ApiState>,
    ApiPath((id, call_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<ConferenceInfo>, ApiError> {
    set_mute(&state, id, call_id, true).await
}

/// Unmutes a participant.
#[utoipa::path(delete, path = "/v1.0/conferences/{id}/participants/{call_id}/mute", tag = "conferences",
    params(("id" = Uuid, Path, description = "Conference id"), ("call_id" = Uuid, Path, description = "The participant's call id")),
    responses((status = 200, description = "The conference", body = ConferenceInfo),
        (status = 404, description = "No such participant", body = ErrorBody)))]
pub(super) async fn unmute(
    State(state): State<ApiState>,
    ApiPath((id, call_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<ConferenceInfo>, ApiError> {
    set_mute(&state, id, call_id, false).await
}

/// Lists the participants of every conference.
#[utoipa::path(get, path = "/v1.0/conferencecalls", tag = "conferences",
    responses((status = 200, description = "The participants", body = ConferencecallList)))]
pub(super) async fn calls_list(State(state): State<ApiState>) -> Json<ConferencecallList> {
    Json(ConferencecallList {
        result: state.runtime().conferencecalls(),
    })
}

/// One participant.
#[utoipa::path(get, path = "/v1.0/conferencecalls/{id}", tag = "conferences",
    params(("id" = Uuid, Path, description = "Conferencecall id")),
    responses((status = 200, description = "The participant", body = Conferencecall),
        (status = 404, description = "No such participant", body = ErrorBody)))]
pub(super) async fn call_get(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Conferencecall>, ApiError> {
    Ok(Json(state.runtime().conferencecall(id)?))
}

/// Kicks a participant out of its conference; its flow goes on with the next action.
#[utoipa::path(delete, path = "/v1.0/conferencecalls/{id}", tag = "conferences",
    params(("id" = Uuid, Path, description = "Conferencecall id")),
    responses((status = 200, description = "The participant, `leaving`", body = Conferencecall),
        (status = 404, description = "No such participant", body = ErrorBody)))]
pub(super) async fn call_kick(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Conferencecall>, ApiError> {
    Ok(Json(state.runtime().conferencecall_kick(id)?))
}
