//! `/v1.0/recordings`: call recordings — list, inspect, download the WAV (streamed, not
//! loaded into memory: a long recording is tens of megabytes), delete record and file.

use std::path::{Path, PathBuf};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tokio::io::AsyncReadExt;
use tracing::warn;
use uuid::Uuid;

use super::error::{ApiError, ApiPath, ApiQuery, ErrorBody};
use super::{ApiState, PageQuery, listing};
use crate::model::{Recording, RecordingStatus};
use crate::store::Batch;

listing!(
    /// A page of recordings.
    RecordingList,
    Recording
);

fn load(state: &ApiState, id: Uuid) -> Result<Recording, ApiError> {
    state
        .runtime()
        .db()
        .recordings
        .get(id)?
        .ok_or_else(|| ApiError::not_found(format_args!("recording {id}")))
}

fn in_progress(id: Uuid) -> ApiError {
    ApiError::conflict(
        "RECORDING_IN_PROGRESS",
        format!("recording {id} is still recording; stop it first"),
    )
}

/// The file of a recording inside `dir`; names that could leave the directory are refused
/// (they can only come from a corrupt record).
fn file_path(dir: &Path, name: &str) -> Option<PathBuf> {
    let plain = Path::new(name).file_name().is_some_and(|f| f == name) && !name.starts_with('.');
    plain.then(|| dir.join(name))
}

/// Lists recordings, oldest first.
#[utoipa::path(get, path = "/v1.0/recordings", tag = "recordings", params(PageQuery),
    responses((status = 200, description = "A page of recordings", body = RecordingList)))]
pub(super) async fn list(
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<RecordingList>, ApiError> {
    let (result, next_page_token) = q.page(&state.runtime().db().recordings, |r| r)?;
    Ok(Json(RecordingList {
        result,
        next_page_token,
    }))
}

/// One recording.
#[utoipa::path(get, path = "/v1.0/recordings/{id}", tag = "recordings",
    params(("id" = Uuid, Path, description = "Recording id")),
    responses((status = 200, description = "The recording", body = Recording)))]
pub(super) async fn get_one(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Recording>, ApiError> {
    Ok(Json(load(&state, id)?))
}

/// Downloads the recording as WAV (8 kHz mono 16-bit PCM).
#[utoipa::path(get, path = "/v1.0/recordings/{id}/file", tag = "recordings",
    params(("id" = Uuid, Path, description = "Recording id")),
    responses(
        (status = 200, description = "The WAV file", content_type = "audio/wav", body = Vec<u8>),
        (status = 409, description = "`RECORDING_IN_PROGRESS`", body = ErrorBody),
    ))]
pub(super) async fn file(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let recording = load(&state, id)?;
    if recording.status == RecordingStatus::Recording {
        return Err(in_progress(id));
    }
    let missing = || ApiError::not_found(format_args!("the file of recording {id}"));
    let name = recording.filenames.first().ok_or_else(missing)?;
    let path = file_path(&state.recordings_dir(), name).ok_or_else(missing)?;
    let file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
        Err(e) => return Err(ApiError::internal("opening the recording file", &e)),
    };
    let len = file
        .metadata()
        .await
        .map_err(|e| ApiError::internal("reading the recording file", &e))?
        .len();
    let stream = futures::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(Bytes::from(buf)), Some(file)))
            }
            // Yield the error (the connection is cut) and stop.
            Err(e) => Some((Err(e), None)),
        }
    });
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}.wav\"", recording.id))
    {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// Deletes the recording's record and file; emits `recording_deleted`.
#[utoipa::path(delete, path = "/v1.0/recordings/{id}", tag = "recordings",
    params(("id" = Uuid, Path, description = "Recording id")),
    responses(
        (status = 200, description = "The deleted recording", body = Recording),
        (status = 409, description = "`RECORDING_IN_PROGRESS`", body = ErrorBody),
    ))]
pub(super) async fn delete(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Recording>, ApiError> {
    let recording = load(&state, id)?;
    if recording.status == RecordingStatus::Recording {
        return Err(in_progress(id));
    }
    let db = state.runtime().db();
    let mut batch = Batch::new();
    batch.remove(&db.recordings, id);
    batch.event(
        "recording_deleted",
        id,
        serde_json::to_value(&recording).unwrap_or_default(),
    );
    db.store.commit(batch)?;
    db.store.flush().await?;
    // The record goes first: a stray file is harmless, a record without its file is not.
    let dir = state.recordings_dir();
    for name in &recording.filenames {
        let Some(path) = file_path(&dir, name) else {
            continue;
        };
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                warn!(recording = %id, file = %path.display(), cause = %e, "recording file not removed")
            }
        }
    }
    Ok(Json(recording))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_cannot_leave_the_directory() {
        let dir = Path::new("/data/recordings");
        assert_eq!(file_path(dir, "a.wav"), Some(dir.join("a.wav")));
        assert_eq!(file_path(dir, "../a.wav"), None);
        assert_eq!(file_path(dir, "/etc/passwd"), None);
        assert_eq!(file_path(dir, ".hidden"), None);
        assert_eq!(file_path(dir, ""), None);
    }
}
