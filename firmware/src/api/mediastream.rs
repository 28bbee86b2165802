//! `GET /v1.0/calls/{id}/media_stream?encapsulation=rtp|sln|audiosocket`: the call's audio
//! over a WebSocket, both ways (VoIPBIN's bi-directional media stream).
//!
//! The request is checked before the upgrade — the encapsulation (`400`), the call (`404`,
//! `409`), the stream limit shared with external media (`409 TOO_MANY_STREAMS`) and the
//! upgrade itself (`426`) — so every refusal is a plain API error; the token is the API's
//! (header or `?token=`, the route sits behind the same middleware). After the upgrade
//! two halves run: the writer sends each 20 ms frame the call's media session listens to
//! (both sides of the call, mixed; see [`crate::media::external`]) as one binary message,
//! and closes the socket (1000) when the call or the stream ends; the reader decodes the
//! client's binary messages ([`crate::media::wsmedia`]) into 20 ms frames that both sides
//! of the call hear, waiting while the session's queue is full (TCP slows a client that
//! sends faster than real time). Malformed messages are skipped and logged; text messages
//! are ignored. The client closing the socket ends the stream; several clients may stream
//! one call at once (at most 5 streams per call, counting external media).

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tracing::{debug, info};
use uuid::Uuid;

use super::ApiState;
use super::error::{ApiError, ApiPath, ApiQuery, ErrorBody};
use crate::media::MediaStreamEnds;
use crate::media::wsmedia::{Decoder, Encapsulation, Encoder, Said};

/// The largest message a client may send (a second of audio is 16,000 bytes).
const MAX_MESSAGE: usize = 64 * 1024;

/// How long the writer waits for the client's answer to its close before dropping the
/// connection.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// `GET /v1.0/calls/{id}/media_stream` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct MediaStreamQuery {
    /// How each message wraps the audio (8 kHz 16-bit signed linear mono, 20 ms per
    /// message): `rtp` (12-byte RTP header, payload type 96, then the PCM), `sln` (the PCM
    /// alone) or `audiosocket` (AudioSocket kind 0x10, 2-byte big-endian length, the PCM).
    /// PCM is little-endian. Required here (VoIPBIN fails later without it).
    encapsulation: Option<String>,
}

/// The call's audio over a WebSocket, both ways.
#[utoipa::path(get, path = "/v1.0/calls/{id}/media_stream", tag = "calls",
    params(("id" = Uuid, Path, description = "Call id"), MediaStreamQuery),
    responses(
        (status = 101, description = "Switched to WebSocket: binary messages both ways, one 20 ms \
            frame each (see `encapsulation`). What the gateway sends is both sides of the call \
            mixed; what the client sends is heard on both sides. The gateway closes with 1000 \
            when the call ends. The call is answered first if it was not."),
        (status = 400, description = "`INVALID_ENCAPSULATION`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such call", body = ErrorBody),
        (status = 409, description = "`CALL_OVER`; `NO_AUDIO`; `TOO_MANY_STREAMS`: the call has 5 \
            streams (external media included)", body = ErrorBody),
        (status = 426, description = "`UPGRADE_REQUIRED`: not a WebSocket handshake", body = ErrorBody),
    ))]
pub(super) async fn media_stream(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<MediaStreamQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let encapsulation = Encapsulation::parse(query.encapsulation.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request("INVALID_ENCAPSULATION", e.to_string()))?;
    // The call first: a request for a call that is not there says so, upgrade or not.
    state.runtime().call_media_stream_check(id)?;
    let upgrade = upgrade.map_err(|r| {
        ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "UPGRADE_REQUIRED",
            format!("a media stream is a WebSocket: {}", r.body_text()),
        )
    })?;
    let ends = state.runtime().call_media_stream(id).await?;
    info!(call = %id, media_stream = %ends.id, encapsulation = encapsulation.as_str(), "media stream client connected");
    Ok(upgrade
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| pump(socket, ends, encapsulation, id)))
}

/// Moves frames between the socket and the call until either side is done.
async fn pump(socket: WebSocket, ends: MediaStreamEnds, encapsulation: Encapsulation, call: Uuid) {
    let MediaStreamEnds {
        id,
        mut listened,
        spoken,
    } = ends;
    let (mut sink, mut source) = socket.split();
    // RTP's SSRC and first sequence number: the random low bits of the stream's v7 id.
    let bits = id.as_u128();
    let mut encoder = Encoder::new(
        encapsulation,
        (bits & 0xffff_ffff) as u32,
        ((bits >> 32) & 0xffff) as u16,
    );
    let writer = async move {
        while let Some(frame) = listened.recv().await {
            if sink
                .send(Message::Binary(encoder.encode(&frame).into()))
                .await
                .is_err()
            {
                return;
            }
        }
        // The call (or its media session) ended.
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: 1000,
                reason: "the call ended".into(),
            })))
            .await;
    };
    let reader = async move {
        let mut decoder = Decoder::new(encapsulation);
        let mut frames = Vec::new();
        let mut skipped: u64 = 0;
        while let Some(Ok(message)) = source.next().await {
            let Message::Binary(bytes) = message else {
                if matches!(message, Message::Close(_)) {
                    break;
                }
                continue;
            };
            let said = match decoder.push(&bytes, |f| frames.push(f)) {
                Ok(said) => said,
                Err(e) => {
                    skipped += 1;
                    debug!(%call, media_stream = %id, error = %e, "media stream message skipped");
                    Said::Audio
                }
            };
            for frame in frames.drain(..) {
                if spoken.send(frame).await.is_err() {
                    return skipped;
                }
            }
            if said == Said::Hangup {
                break;
            }
        }
        skipped
    };
    tokio::pin!(writer, reader);
    let skipped = tokio::select! {
        () = &mut writer => tokio::time::timeout(CLOSE_WAIT, &mut reader).await.unwrap_or(0),
        skipped = &mut reader => skipped,
    };
    info!(%call, media_stream = %id, skipped, "media stream client gone");
}
