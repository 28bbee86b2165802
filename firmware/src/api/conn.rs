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
//! - **Connection cap** (`api.max_connections`): a connection beyond it is not served; its
//!   request is answered `503 TOO_MANY_CONNECTIONS` (`Retry-After: 1`) and the connection
//!   closed, so a flood is refused quickly instead of queueing behind the connections it
//!   holds; the cap's slots come free as the timeouts above close idle connections. The
//!   refusal waits for the request head (at most [`REFUSAL_HEADER_TIMEOUT`]): an HTTP/1.1
//!   response written before its request is an unsolicited message that clients reject
//!   (hyper's client fails with `UnexpectedMessage` and never shows the 503). At most
//!   [`REFUSING_AT_ONCE`] refusals wait at once; beyond them a connection is closed
//!   unanswered, which a client sees as a closed connection.
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

/// How long a connection over the cap may take to send its request head before it is
/// closed unanswered (never longer than `api.header_read_timeout_ms`): a real client sends it
/// as soon as it has connected.
pub const REFUSAL_HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// Connections over the cap being answered at once. Each holds a socket for at most
/// [`REFUSAL_HEADER_TIMEOUT`]; beyond this many, a flood costs nothing but an accept and a
/// close, and the connections inside the cap are never touched.
pub const REFUSING_AT_ONCE: usize = 16;

/// The answer to a request on a connection over the cap.
fn refusal() -> Response {
    let mut response = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "TOO_MANY_CONNECTIONS",
        "the gateway has too many connections",
    )
    .into_response();
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

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
    // Refusals: one request each, no keep-alive, a short wait for it.
    let mut refuser = http.clone();
    refuser
        .keep_alive(false)
        .header_read_timeout(limits.header_read_timeout.min(REFUSAL_HEADER_TIMEOUT));
    let refusing = Arc::new(Semaphore::new(REFUSING_AT_ONCE));
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
            refuse(stream, &refuser, &refusing);
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

/// Answers the request of a connection over the cap with [`refusal`], then closes it; when
/// [`REFUSING_AT_ONCE`] refusals are already waiting, closes it at once without a word.
///
/// The 503 is not written as soon as the connection is accepted: it would reach the client
/// before the client has sent its request, and an HTTP/1.1 client treats a response to no
/// request as a broken connection (hyper: `UnexpectedMessage`), so the refusal would look
/// like a transport failure instead of a 503 to retry after.
fn refuse(
    stream: TcpStream,
    http: &hyper::server::conn::http1::Builder,
    refusing: &Arc<Semaphore>,
) {
    let Ok(permit) = Arc::clone(refusing).try_acquire_owned() else {
        tracing::warn!("API connection closed: too many connections and refusals");
        return;
    };
    tracing::warn!("API connection refused: too many connections");
    let service = hyper::service::service_fn(|_request: Request<Incoming>| async {
        Ok::<_, Infallible>(refusal())
    });
    let connection = http.serve_connection(TokioIo::new(stream), service);
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            // A client that sent nothing in time, or left: routine for a refusal.
            tracing::debug!(cause = %e, "refused API connection ended");
        }
        drop(permit);
    });
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

    #[tokio::test]
    async fn the_refusal_is_a_json_503_that_closes_the_connection() {
        let response = refusal();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::CONNECTION], "close");
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap_or_default();
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(value["code"], "TOO_MANY_CONNECTIONS", "{value}");
    }
}
