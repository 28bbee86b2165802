//! `/v1.0/conferences`: the live local conferences (`conference_join` /
//! `confbridge_join`) with their participants, and muting a participant (the others stop
//! hearing it; it still hears them). Conferences exist while they have participants, so
//! there is nothing to create or delete here.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::ApiState;
use super::error::{ApiError, ApiPath};

/// A participant of a conference.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ConferenceParticipant {
    /// The participant's call.
    pub call_id: Uuid,
    /// Whether the others do not hear it.
    pub muted: bool,
}

/// A live conference.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Conference {
    /// VoIPBIN's conference (or confbridge) id.
    pub id: Uuid,
    /// The participants, in joining order.
    pub participants: Vec<ConferenceParticipant>,
}

/// The live conferences.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ConferenceList {
    /// The conferences, by id.
    pub result: Vec<Conference>,
}

fn view(c: crate::runtime::ConferenceInfo) -> Conference {
    Conference {
        id: c.id,
        participants: c
            .participants
            .into_iter()
            .map(|p| ConferenceParticipant {
                call_id: p.id,
                muted: p.muted,
            })
            .collect(),
    }
}

/// Lists the live conferences with their participants.
#[utoipa::path(get, path = "/v1.0/conferences", tag = "conferences",
    responses((status = 200, description = "The live conferences", body = ConferenceList)))]
pub(super) async fn list(State(state): State<ApiState>) -> Json<ConferenceList> {
    Json(ConferenceList {
        result: state
            .runtime()
            .conferences()
            .into_iter()
            .map(view)
            .collect(),
    })
}

async fn set_mute(
    state: &ApiState,
    id: Uuid,
    call_id: Uuid,
    muted: bool,
) -> Result<Json<Conference>, ApiError> {
    let rt = state.runtime();
    if !rt.conference_mute(id, call_id, muted) {
        return Err(ApiError::not_found(format_args!(
            "participant {call_id} of conference {id}"
        )));
    }
    rt.conferences()
        .into_iter()
        .find(|c| c.id == id)
        .map(|c| Json(view(c)))
        .ok_or_else(|| ApiError::not_found(format_args!("conference {id}")))
}

/// Mutes a participant: the others no longer hear it.
#[utoipa::path(post, path = "/v1.0/conferences/{id}/participants/{call_id}/mute", tag = "conferences",
    params(("id" = Uuid, Path, description = "Conference id"), ("call_id" = Uuid, Path, description = "The participant's call id")),
    responses((status = 200, description = "The conference", body = Conference),
        (status = 404, description = "No such participant", body = super::error::ErrorBody)))]
pub(super) async fn mute(
    State(state): State<ApiState>,
    ApiPath((id, call_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<Conference>, ApiError> {
    set_mute(&state, id, call_id, true).await
}

/// Unmutes a participant.
#[utoipa::path(delete, path = "/v1.0/conferences/{id}/participants/{call_id}/mute", tag = "conferences",
    params(("id" = Uuid, Path, description = "Conference id"), ("call_id" = Uuid, Path, description = "The participant's call id")),
    responses((status = 200, description = "The conference", body = Conference),
        (status = 404, description = "No such participant", body = super::error::ErrorBody)))]
pub(super) async fn unmute(
    State(state): State<ApiState>,
    ApiPath((id, call_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<Conference>, ApiError> {
    set_mute(&state, id, call_id, false).await
}
