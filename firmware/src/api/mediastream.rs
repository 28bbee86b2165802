//! `GET /v1.0/calls/{id}/media_stream?encapsulation=rtp|sln|audiosocket`: the call's audio
//! over a WebSocket, both ways (VoIPBIN's bi-directional media stream).
//!
//! The request is checked before the upgrade — the encapsulation (`400`), the call (`404`,
//! `409`), the stream limit shared with external media (`409 TOO_MANY_STREAMS`) and the
//! upgrade itself (`426`) — so every refusal is a plain API error; the token is the API's
//! (header or `?token=`, the route sits behind the same middleware). After the upgrade one
//! task sends each 20 ms frame the call's media session listens to (both sides of the
//! call, mixed; see [`crate::media::external`]) as one binary message, and closes the
//! socket (1000) when the call or the stream ends; it decodes the client's binary messages
//! ([`crate::media::wsmedia`]) into 20 ms frames that both sides of the call hear, and
//! stops reading the socket while the session's queue is full (TCP slows a client that
//! sends faster than real time). Malformed messages are skipped and logged; text messages
//! are ignored. The client closing the socket ends the stream; several clients may stream
//! one call at once (at most 5 streams per call, counting external media).

use std::collections::VecDeque;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::Response;
use futures::SinkExt;
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

/// Decoded frames from the client waiting for room in the session's queue: the socket is
/// not read while this many wait (TCP then slows the client down).
const PENDING_FRAMES: usize = 64;

/// Moves frames between the socket and the call until either side is done. One task: the
/// frames towards the client never wait behind the client's own (a full queue into the
/// call only pauses reading the socket).
async fn pump(
    mut socket: WebSocket,
    ends: MediaStreamEnds,
    encapsulation: Encapsulation,
    call: Uuid,
) {
    let MediaStreamEnds {
        id,
        mut listened,
        spoken,
    } = ends;
    // RTP's SSRC and first sequence number: the random low bits of the stream's v7 id.
    let bits = id.as_u128();
    let mut encoder = Encoder::new(
        encapsulation,
        (bits & 0xffff_ffff) as u32,
        ((bits >> 32) & 0xffff) as u16,
    );
    let mut decoder = Decoder::new(encapsulation);
    let mut pending: VecDeque<Vec<i16>> = VecDeque::new();
    let mut skipped: u64 = 0;
    let by = loop {
        tokio::select! {
            frame = listened.recv() => {
                let Some(frame) = frame else {
                    // The call (or its media session) ended: close, and let the client
                    // answer the close so it sees a clean end.
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame {
                            code: 1000,
                            reason: "the call ended".into(),
                        })))
                        .await;
                    let _ = tokio::time::timeout(CLOSE_WAIT, async {
                        while let Some(Ok(_)) = socket.recv().await {}
                    })
                    .await;
                    break "the call";
                };
                if socket
                    .send(Message::Binary(encoder.encode(&frame).into()))
                    .await
                    .is_err()
                {
                    break "a send error";
                }
            }
            permit = spoken.reserve(), if !pending.is_empty() => {
                let (Ok(permit), Some(frame)) = (permit, pending.pop_front()) else {
                    break "the media session";
                };
                permit.send(frame);
            }
            message = socket.recv(), if pending.len() < PENDING_FRAMES => {
                let message = match message {
                    Some(Ok(m)) => m,
                    Some(Err(_)) | None => break "the client (connection lost)",
                };
                match message {
                    Message::Binary(bytes) => {
                        match decoder.push(&bytes, |f| pending.push_back(f)) {
                            Ok(Said::Audio) => {}
                            Ok(Said::Hangup) => {
                                let _ = socket.send(Message::Close(None)).await;
                                break "the client (AudioSocket hang-up)";
                            }
                            Err(e) => {
                                skipped += 1;
                                debug!(%call, media_stream = %id, error = %e, "media stream message skipped");
                            }
                        }
                    }
                    Message::Close(_) => {
                        // The close reply is queued by the protocol: flushing sends it.
                        let _ = socket.flush().await;
                        break "the client";
                    }
                    // Text carries nothing for the call; pings are answered by the socket.
                    _ => {}
                }
            }
        }
    };
    info!(%call, media_stream = %id, skipped, ended_by = by, "media stream closed");
}
