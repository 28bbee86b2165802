//! `/v1.0/transcribes`: the transcriptions the `transcribe_*` actions made (VoIPBIN's
//! transcribe resource), each with its transcripts (VoIPBIN serves those from
//! `/v1.0/transcripts`; the gateway keeps them on the transcribe record).

use axum::Json;
use axum::extract::State;
use uuid::Uuid;

use super::error::{ApiError, ApiPath, ApiQuery};
use super::{ApiState, PageQuery, listing};
use crate::model::Transcribe;

listing!(
    /// A page of transcriptions.
    TranscribeList,
    Transcribe
);

/// Lists transcriptions, oldest first.
#[utoipa::path(get, path = "/v1.0/transcribes", tag = "transcribes", params(PageQuery),
    responses((status = 200, description = "A page of transcriptions", body = TranscribeList)))]
pub(super) async fn list(
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<TranscribeList>, ApiError> {
    let (result, next_page_token) = q.page(&state.runtime().db().transcribes, |t| t)?;
    Ok(Json(TranscribeList {
        result,
        next_page_token,
    }))
}

/// One transcription, with its transcripts.
#[utoipa::path(get, path = "/v1.0/transcribes/{id}", tag = "transcribes",
    params(("id" = Uuid, Path, description = "Transcribe id")),
    responses((status = 200, description = "The transcription", body = Transcribe)))]
pub(super) async fn get_one(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Transcribe>, ApiError> {
    state
        .runtime()
        .db()
        .transcribes
        .get(id)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format_args!("transcribe {id}")))
}
