//! Serving the API on TCP with limits per connection, which `axum::serve` does not set: a
//! gateway on a LAN must not be held open by a client that never finishes a request.
//!
//! - **Header-read timeout** (`api.header_read_timeout_ms`): from the moment the server waits
//!   for a request (a new connection, or a kept-alive one after its last response) until the
//!   whole request head has arrived. A client that sends headers slowly, or nothing, is
//!   disconnected; this is also how long an idle kept-alive connection stays open.
//! - **Idle timeout** (`api.idle_timeout_ms`): the longest pause while a request body
//!   arrives; a stalled upload fails (`400 UNREADABLE_BODY`) and the connection closes.
//! - **Declared size**: a `Content-Length` over `api.max_body_bytes` is answered
//!   `413 BODY_TOO_LARGE` before any byte of the body is read, and the connection closes
//!   (`DefaultBodyLimit` only acts once a handler reads the body, and not at all on routes
//!   without one).
//! - **Connection cap** (`api.max_connections`): connections beyond it are answered
//!   `503 TOO_MANY_CONNECTIONS` at once and closed, so a flood is refused quickly instead of
//!   queueing behind the connections it holds; the cap's slots come free as the timeouts
//!   above close idle connections.
//!
//! HTTP/1.1 only (as `axum::serve` with axum's default features).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tower_http::timeout::TimeoutBody;

use super::error::ApiError;
use crate::config::ApiConfig;

/// The connection limits (see the module docs).
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// Until a whole request head has arrived.
    pub header_read_timeout: Duration,
    /// The longest pause inside a request body.
    pub idle_timeout: Duration,
    /// Open connections at once.
    pub max_connections: usize,
    /// The largest body a request may declare.
    pub max_body_bytes: usize,
}

impl ConnLimits {
    /// The limits `[api]` configures.
    pub fn from_config(api: &ApiConfig) -> Self {
        Self {
            header_read_timeout: Duration::from_millis(api.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(api.idle_timeout_ms),
            max_connections: api.max_connections,
            max_body_bytes: api.max_body_bytes,
        }
    }
}

/// What a connection over the cap receives before it is closed.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 80\r\n\r\n\
{\"code\":\"TOO_MANY_CONNECTIONS\",\"message\":\"the gateway has too many connections\"}";

/// Serves `app` on `listener` until `cancel`; then calls `on_shutdown` (to end streams and
/// long-polls), stops accepting, lets every open connection finish its request in flight,
/// and returns once all are closed.
///
/// # Errors
/// None today: accept errors (e.g. out of file descriptors) are logged and retried.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    cancel: CancellationToken,
    on_shutdown: impl FnOnce(),
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let limits = Arc::new(limits);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: not fatal.
                    // Pausing keeps an fd shortage from becoming a busy loop.
                    tracing::warn!(cause = %e, "accepting an API connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = cancel.cancelled() => break,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            refuse(&stream);
            continue;
        };
        let http = http.clone();
        let app = app.clone();
        let limits = Arc::clone(&limits);
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                handle(app.clone(), Arc::clone(&limits), request)
            });
            // Upgrades: a media stream's WebSocket (`mediastream.rs`) leaves HTTP here; the
            // connection's slot is freed then, and the stream is bounded per call instead.
            let connection = http
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(connection);
            let outcome = tokio::select! {
                outcome = connection.as_mut() => outcome,
                () = cancel.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = outcome {
                // Timeouts and clients that go away are routine; keep them out of warnings.
                tracing::debug!(cause = %e, "API connection ended");
            }
            drop(slot);
        });
    }
    on_shutdown();
    // Every connection holds a slot until it is closed: having them all is having none open.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// Answers a connection over the cap without waiting for it: one non-blocking write (the
/// socket's buffer is empty, so it fits), then close.
fn refuse(stream: &TcpStream) {
    tracing::warn!("API connection refused: too many connections");
    let _ = stream.try_write(REFUSAL);
}

/// One request: refuse an oversized declared body, bound pauses in the body, route.
async fn handle(
    app: Router,
    limits: Arc<ConnLimits>,
    request: Request<Incoming>,
) -> Result<Response, Infallible> {
    if let Some(declared) = declared_length(&request)
        && declared > limits.max_body_bytes as u64
    {
        let mut response = ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BODY_TOO_LARGE",
            format!(
                "the body declares {declared} bytes; at most {} are accepted",
                limits.max_body_bytes
            ),
        )
        .into_response();
        // The body is not read, so the connection cannot carry another request.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Ok(response);
    }
    let idle = limits.idle_timeout;
    let request = request.map(|body| Body::new(TimeoutBody::new(idle, body)));
    app.oneshot(request).await
}

/// The `Content-Length` a request declares (`None` without one or when it is not a number;
/// hyper has already refused conflicting or malformed lengths).
fn declared_length<B>(request: &Request<B>) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_complete_response() {
        let text = std::str::from_utf8(REFUSAL).unwrap_or_default();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        assert_eq!(value["code"], "TOO_MANY_CONNECTIONS");
    }
}
