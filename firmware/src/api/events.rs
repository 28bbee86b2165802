//! The event log over HTTP: `GET /v1.0/gateway/events?after=SEQ` (with long-poll) and the
//! live SSE stream `GET /v1.0/gateway/events/stream`, which replays from `after` (or the
//! `Last-Event-ID` a reconnecting client sends) and then follows. Both read the store's
//! persistent, gap-free log, so a controller that remembers the last `seq` it saw never
//! misses a change (unless retention pruned it: `pruned` says so).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::ApiState;
use super::error::{ApiError, ApiQuery};
use super::schema::EventDoc;
use crate::store::{Event, Store};

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;
/// The longest `wait` a request may ask for (the config caps what it gets).
const MAX_WAIT_SECS: u64 = 3600;

/// A sequence number from the query: at most `i64::MAX`, as documented (JSON clients and
/// the OpenAPI `int64` cannot say more).
fn sequence(after: Option<u64>) -> Result<u64, ApiError> {
    let after = after.unwrap_or(0);
    if i64::try_from(after).is_err() {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            format!("after must be at most {}", i64::MAX),
        ));
    }
    Ok(after)
}

/// `GET /v1.0/gateway/events` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct EventsQuery {
    /// Return events with a sequence number greater than this (default 0: from the oldest
    /// kept).
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    after: Option<u64>,
    /// Most events to return, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// When there is nothing after `after`, wait up to this many seconds for the next event
    /// (0 to 3600, capped by `api.long_poll_max_secs`; default 0: answer at once).
    #[param(minimum = 0, maximum = 3600)]
    wait: Option<u64>,
}

/// `GET /v1.0/gateway/events/stream` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct StreamQuery {
    /// Replay events after this sequence number first (default: only new events). A
    /// `Last-Event-ID` header takes precedence (reconnecting EventSource clients).
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    after: Option<u64>,
}

/// A page of the event log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct EventPage {
    /// Events in sequence order.
    #[schema(value_type = Vec<EventDoc>)]
    events: Vec<Event>,
    /// Pass as `after` next time (the last event's `seq`, or `after` when there was none).
    next_after: u64,
    /// The newest sequence number in the log.
    last_seq: u64,
    /// Events after `after` were pruned by retention before this read: the client missed
    /// some and should resynchronise its state.
    pruned: bool,
}

/// Events after a sequence number, long-polling when there are none yet.
#[utoipa::path(get, path = "/v1.0/gateway/events", tag = "events", params(EventsQuery),
    responses((status = 200, description = "Events after `after` (empty when the wait ran out)", body = EventPage)))]
pub(super) async fn list(
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            format!("limit must be between 1 and {MAX_LIMIT}, not {limit}"),
        ));
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let after = sequence(q.after)?;
    if q.wait.is_some_and(|w| w > MAX_WAIT_SECS) {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            format!("wait must be between 0 and {MAX_WAIT_SECS} seconds"),
        ));
    }
    let wait = Duration::from_secs(
        q.wait
            .unwrap_or(0)
            .min(state.config().api.long_poll_max_secs),
    );
    let store = &state.runtime().db().store;
    // Subscribe before reading so an event committed in between wakes the wait.
    let mut seq = store.watch_seq();
    let mut events = store.events_after(after, limit)?;
    if events.is_empty() && !wait.is_zero() {
        let shutdown = state.inner.shutdown.clone();
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::timeout(wait, async { seq.wait_for(|s| *s > after).await.map(|_| ()) }) => {}
        }
        events = store.events_after(after, limit)?;
    }
    let pruned = events
        .first()
        .is_some_and(|e| e.seq > after.saturating_add(1));
    let next_after = events.last().map_or(after, |e| e.seq);
    Ok(Json(EventPage {
        events,
        next_after,
        last_seq: store.last_seq(),
        pruned,
    }))
}

/// Live stream of the event log as Server-Sent Events.
#[utoipa::path(get, path = "/v1.0/gateway/events/stream", tag = "events", params(StreamQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this sequence number")),
    responses((status = 200, content_type = "text/event-stream", body = String,
        description = "One SSE message per event: `id` is the `seq`, `event` the type, `data` the event JSON \
                       (as in `GET /v1.0/gateway/events`). Comments keep the connection alive.")))]
pub(super) async fn stream(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let store = state.runtime().db().store.clone();
    let resume = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "INVALID_HEADER",
                        "Last-Event-ID must be an event sequence number",
                    )
                })?,
        ),
        None => None,
    };
    if q.after.is_some() {
        sequence(q.after)?;
    }
    let cursor = resume.or(q.after).unwrap_or_else(|| store.last_seq());
    let follow = Follow {
        rx: store.watch_seq(),
        store,
        cursor,
        buf: VecDeque::new(),
        shutdown: state.inner.shutdown.clone(),
        failed: false,
    };
    Ok(Sse::new(futures::stream::unfold(follow, Follow::next)).keep_alive(KeepAlive::default()))
}

/// A reader following the log from `cursor`.
struct Follow {
    store: Store,
    rx: watch::Receiver<u64>,
    cursor: u64,
    buf: VecDeque<Event>,
    shutdown: CancellationToken,
    /// A store error was reported: the stream ends.
    failed: bool,
}

impl Follow {
    /// The next SSE message; `None` ends the stream (shutdown, or a store error after
    /// telling the client).
    async fn next(mut self) -> Option<(Result<SseEvent, Infallible>, Self)> {
        loop {
            if self.failed {
                return None;
            }
            if let Some(event) = self.buf.pop_front() {
                self.cursor = event.seq;
                let message = SseEvent::default()
                    .id(event.seq.to_string())
                    .event(event.kind.clone())
                    .json_data(&event);
                match message {
                    Ok(message) => return Some((Ok(message), self)),
                    Err(_) => continue, // a log entry is always encodable; skip rather than stop
                }
            }
            match self.store.events_after(self.cursor, 256) {
                Ok(events) if !events.is_empty() => {
                    self.buf.extend(events);
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    // Tell the client why the stream ends; it reconnects with Last-Event-ID.
                    let message = SseEvent::default().event("error").data(e.to_string());
                    self.failed = true;
                    return Some((Ok(message), self));
                }
            }
            if self.shutdown.is_cancelled() {
                return None;
            }
            let cursor = self.cursor;
            let rx = &mut self.rx;
            tokio::select! {
                _ = self.shutdown.cancelled() => return None,
                changed = async { rx.wait_for(|s| *s > cursor).await.map(|_| ()) } => {
                    if changed.is_err() {
                        return None;
                    }
                }
            }
        }
    }
}
