//! The API's error type and extractors that turn every bad request into a clean JSON 4xx.
//!
//! axum's default rejections are plain text with varying wording; a controller wants one
//! shape. Every handler returns `Result<_, ApiError>`, and the [`ApiJson`], [`ApiPath`] and
//! [`ApiQuery`] extractors map axum's rejections into it. Server-side failures (store errors)
//! are logged with their cause and answered with a 500 that says what failed, never a panic.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One located problem (e.g. a flow validation error).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// JSON path of the offending value, e.g. `actions[3].option.target_id`.
    pub path: String,
    /// What is wrong, in a sentence.
    pub message: String,
}

/// An API error: HTTP status plus a JSON body `{code, message, problems?}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

/// The JSON body of every error response.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code, e.g. `INVALID_FLOW`, `NOT_FOUND`, `UNAUTHORIZED`.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// Every located problem, when there are several (flow validation).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

impl ApiError {
    /// An error with any status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                code,
                message: message.into(),
                problems: Vec::new(),
            },
        }
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 400 carrying located problems.
    pub fn invalid(code: &'static str, message: impl Into<String>, problems: Vec<Problem>) -> Self {
        let mut e = Self::bad_request(code, message);
        e.body.problems = problems;
        e
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }

    /// 404 for `what` (e.g. "flow 0a1b…").
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("{what} does not exist"),
        )
    }

    /// 409.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 412: an `If-Match` precondition failed.
    pub fn precondition_failed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "REVISION_MISMATCH",
            message,
        )
    }

    /// 428: a conditional request is required (`If-Match` missing).
    pub fn precondition_required(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PRECONDITION_REQUIRED,
            "PRECONDITION_REQUIRED",
            message,
        )
    }

    /// Attaches located problems to any error.
    pub fn with_problems(mut self, problems: Vec<Problem>) -> Self {
        self.body.problems = problems;
        self
    }

    /// 503: the part needed is not there (no modem, no simulator).
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// 500, logged with its cause.
    pub fn internal(what: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(cause = %cause, what, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            format!("{what} failed: {cause}"),
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The error body.
    pub fn body(&self) -> &ErrorBody {
        &self.body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

/// A full disk is `507 Insufficient Storage` with code `DISK_FULL` (the request was fine and
/// may be retried once retention has made room; 503 would suggest the whole gateway is
/// down, which it is not: reads, updates and running flows go on). Other store failures
/// are 500.
impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::DiskFull { .. } => {
                Self::new(StatusCode::INSUFFICIENT_STORAGE, "DISK_FULL", e.to_string())
            }
            e => Self::internal("the database operation", &e),
        }
    }
}

impl From<&flowgate_flows::validate::FlowError> for Problem {
    fn from(e: &flowgate_flows::validate::FlowError) -> Self {
        Self {
            path: e.path.clone(),
            message: e.message.clone(),
        }
    }
}

/// Problems from the flows crate, with their paths put under `prefix` (e.g. `actions`).
pub fn problems_under(
    prefix: &str,
    errors: &[flowgate_flows::validate::FlowError],
) -> Vec<Problem> {
    errors
        .iter()
        .map(|e| {
            let path = match (
                prefix.is_empty(),
                e.path.is_empty(),
                e.path.starts_with('['),
            ) {
                (true, _, _) => e.path.clone(),
                (false, true, _) => prefix.to_owned(),
                (false, false, true) => format!("{prefix}{}", e.path),
                (false, false, false) => format!("{prefix}.{}", e.path),
            };
            Problem {
                path,
                message: e.message.clone(),
            }
        })
        .collect()
}

/// How the runtime's errors reach a client. The mapping is documented in the OpenAPI
/// description (see `api::openapi`): unknown ids 404, ended/over/stale 409, bad requests 400,
/// no modem / shutting down 503, a modem that refused 502, a full disk 507, the store 500.
impl From<crate::runtime::RuntimeError> for ApiError {
    fn from(e: crate::runtime::RuntimeError) -> Self {
        use crate::runtime::RuntimeError as R;
        use flowgate_flows::engine::EngineError as E;
        let text = e.to_string();
        match e {
            R::FlowNotFound(id) => {
                Self::bad_request("UNKNOWN_FLOW", text).with_problems(vec![Problem {
                    path: "flow_id".into(),
                    message: format!("flow {id} does not exist"),
                }])
            }
            R::ActiveflowNotFound(_) | R::CallNotFound(_) | R::ConferenceNotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", text)
            }
            R::Ended(_) => Self::conflict("ACTIVEFLOW_ENDED", text),
            R::Duplicate(_) => Self::conflict("DUPLICATE_ID", text),
            R::CallOver(_) => Self::conflict("CALL_OVER", text),
            R::NoAudio(..) => Self::conflict("NO_AUDIO", text),
            R::TooManyStreams(..) => Self::conflict("TOO_MANY_STREAMS", text),
            R::Invalid(_) => Self::bad_request("INVALID_REQUEST", text),
            R::NoModem(_) => Self::unavailable("NO_MODEM", text),
            R::NoLine(_) => Self::unavailable("NO_LINE", text),
            R::Line(e) => Self::from(e),
            R::ShuttingDown => Self::unavailable("SHUTTING_DOWN", text),
            R::Store(e) => Self::from(e),
            R::Modem(e) => Self::from(e),
            R::Engine(engine) => match engine {
                E::Ended => Self::conflict("ACTIVEFLOW_ENDED", text),
                E::Stale { .. } | E::UnexpectedOutcome { .. } => {
                    Self::conflict("STALE_ACTION", text)
                }
                E::NotFound(_) => Self::bad_request("UNKNOWN_ACTION", text),
                E::InvalidActions(errors) => Self::invalid(
                    "INVALID_ACTIONS",
                    "the actions are invalid",
                    problems_under("actions", &errors),
                ),
                E::Variables(_) => Self::bad_request("INVALID_VARIABLES", text),
                E::TooManyStacks(_) => Self::conflict("TOO_MANY_STACKS", text),
                _ => Self::bad_request("INVALID_REQUEST", text),
            },
        }
    }
}

/// A line that cannot take the call now is 503 (retry later, or another line); one that
/// cannot do what was asked is 409; one that refused or failed is 502; a bad argument 400.
impl From<flowgate_line::LegError> for ApiError {
    fn from(e: flowgate_line::LegError) -> Self {
        use flowgate_line::LegError as L;
        let text = e.to_string();
        match e {
            L::NoSuchLeg { .. } => Self::conflict("CALL_OVER", text),
            L::Unsupported { .. } => Self::conflict("NOT_SUPPORTED_BY_LINE", text),
            L::Unavailable { .. } => Self::unavailable("LINE_UNAVAILABLE", text),
            L::Invalid(_) => Self::bad_request("INVALID_REQUEST", text),
            L::Failed { .. } => Self::new(StatusCode::BAD_GATEWAY, "LINE_ERROR", text),
        }
    }
}

/// A modem that is not usable right now is 503 (retry later); one that refused the request
/// is 502 (the upstream failed); a bad argument is 400.
impl From<flowgate_board::modem::error::ModemError> for ApiError {
    fn from(e: flowgate_board::modem::error::ModemError) -> Self {
        use flowgate_board::modem::error::ModemError as M;
        let text = e.to_string();
        match e {
            M::InvalidArgument(_) | M::Encoding(_) => Self::bad_request("INVALID_REQUEST", text),
            M::NoSuchCall(_) => Self::conflict("CALL_OVER", text),
            M::NotReady { .. }
            | M::NotRegistered
            | M::Sim(_)
            | M::PortGone { .. }
            | M::Rebooted { .. }
            | M::Timeout { .. }
            | M::Stopped => Self::unavailable("MODEM_UNAVAILABLE", text),
            _ => Self::new(StatusCode::BAD_GATEWAY, "MODEM_ERROR", text),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::bad_request("INVALID_PATH", r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::bad_request("INVALID_QUERY", r.body_text())
    }
}

/// A JSON object body (content type checked, size-limited) as `T`, with [`ApiError`]
/// rejections: every problem is `400` — `INVALID_JSON` for syntax, `INVALID_BODY` for a
/// body that is not an object or does not fit `T`.
///
/// Every body of the API is an object. serde's derived structs would also take an array
/// and fill the fields by position (`[null, null]` for `{call_flow_id, message_flow_id}`),
/// which no client means and which skips the field names that make the request readable;
/// so the top level must be an object.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(JsonText::unsupported());
        }
        let ApiBytes(bytes) = ApiBytes::from_request(req, state).await?;
        parse_object(&bytes).map(Self)
    }
}

/// Parses a JSON object body (see [`ApiJson`]).
pub fn parse_object<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        return Err(ApiError::bad_request(
            "INVALID_BODY",
            "the body must be a JSON object",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let code = match e.classify() {
            serde_json::error::Category::Data => "INVALID_BODY",
            _ => "INVALID_JSON",
        };
        ApiError::bad_request(code, format!("the body is not valid: {e}"))
    })
}

/// `axum::extract::Path` with [`ApiError`] rejections.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `axum::extract::Query` with [`ApiError`] rejections.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        let status = r.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "BODY_TOO_LARGE"
        } else {
            "UNREADABLE_BODY"
        };
        Self::new(status, code, r.body_text())
    }
}

/// The body as bytes (size-limited like every body), with [`ApiError`] rejections.
pub struct ApiBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Ok(Self(Bytes::from_request(req, state).await?))
    }
}

/// The text of a JSON body (content type checked, size-limited, UTF-8), for parsers that
/// report their own located problems: flows go through the flows crate, which names the
/// JSON path of every problem, rather than through serde's first error.
pub struct JsonText(pub String);

impl<S: Send + Sync> FromRequest<S> for JsonText {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(Self::unsupported());
        }
        let ApiBytes(bytes) = ApiBytes::from_request(req, state).await?;
        String::from_utf8(bytes.to_vec()).map(Self).map_err(|e| {
            ApiError::bad_request("INVALID_JSON", format!("the body is not UTF-8: {e}"))
        })
    }
}

impl JsonText {
    fn unsupported() -> ApiError {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "Expected request with `Content-Type: application/json`",
        )
    }
}

/// `application/json` or any `+json` type, as axum's `Json` accepts.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}
