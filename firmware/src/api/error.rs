//! The API's error type and extractors that turn every bad request into a clean JSON 4xx.
//!
//! axum's default rejections are plain text with varying wording; a controller wants one
//! shape. Every handler returns `Result<_, ApiError>`, and the [`ApiJson`], [`ApiPath`] and
//! [`ApiQuery`] extractors map axum's rejections into it. Server-side failures (store errors)
//! are logged with their cause and answered with a 500 that says what failed, never a panic.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;
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
        Self { status, body: ErrorBody { code, message: message.into(), problems: Vec::new() } }
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
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", format!("{what} does not exist"))
    }

    /// 409.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 503: the part needed is not there (no modem, no simulator).
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// 500, logged with its cause.
    pub fn internal(what: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(cause = %cause, what, "request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", format!("{what} failed: {cause}"))
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

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::internal("the database operation", &e)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let code = match &r {
            JsonRejection::MissingJsonContentType(_) => "UNSUPPORTED_MEDIA_TYPE",
            JsonRejection::BytesRejection(_) => "UNREADABLE_BODY",
            JsonRejection::JsonSyntaxError(_) => "INVALID_JSON",
            JsonRejection::JsonDataError(_) => "INVALID_BODY",
            _ => "INVALID_BODY",
        };
        // axum picks the right status (413 for an over-limit body, 415, 422, 400).
        let status = r.status();
        // body_text() carries serde's message with line/column or the field path.
        Self::new(status, code, r.body_text())
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

/// `axum::Json` with [`ApiError`] rejections.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Path` with [`ApiError`] rejections.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `axum::extract::Query` with [`ApiError`] rejections.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);
