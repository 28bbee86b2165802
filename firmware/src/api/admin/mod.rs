//! The LAN admin page: `http://gateway/admin/`, served by the daemon from the binary itself.
//!
//! # Shape
//!
//! - Pages and their live fragments are rendered on the server with maud ([`pages`]) from the
//!   same JSON the API answers: [`AdminState::api`] sends the request through the real API
//!   router with the bearer token, so the page shows exactly what a controller sees (every
//!   line `/v1.0/gateway/lines` returns, whatever its transport) and never a second copy of
//!   the handlers' logic.
//! - A little hand-written JavaScript (`static/app.js`, embedded with `include_str!`) follows
//!   the SSE event stream and re-fetches the fragments of the page when an event arrives (no
//!   polling), and sends forms to the API as JSON.
//! - Changes from the browser go through `/admin/api/v1.0/...`, a proxy onto the JSON API
//!   that authenticates with the session cookie instead of the bearer token and requires the
//!   CSRF token (`X-CSRF-Token`) and a same-origin `Origin` on every method but GET/HEAD.
//! - Sessions: [`session`]. Login with the API token through a form; the JSON API keeps its
//!   bearer tokens and never accepts the cookie.
//!
//! Why not a single-page app: no node toolchain may be needed to build the firmware (Yocto),
//! the page must work offline from the box alone, and the total weight stays far under the
//! 150 KB budget (measured by `tests::page_weight_is_within_budget`).

mod dryrun;
mod pages;
mod session;

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Form, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{any, get, post};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::Value;
use tower::ServiceExt;

use super::ApiState;
use super::error::ApiError;
use session::{Session, SessionStore};

/// The stylesheet and the script, embedded (no CDN: the box is often offline).
const APP_CSS: &str = include_str!("static/app.css");
const APP_JS: &str = include_str!("static/app.js");

/// What the admin handlers share.
#[derive(Clone)]
pub(crate) struct AdminState {
    inner: Arc<AdminInner>,
}

struct AdminInner {
    api: ApiState,
    sessions: Mutex<SessionStore>,
    /// The JSON API's router, built on first use (building it here would recurse: the API
    /// router mounts this one).
    router: OnceLock<Router>,
}

impl AdminState {
    /// The sequence number of the newest event (see `pages::layout`).
    pub(crate) fn event_seq(&self) -> u64 {
        self.inner.api.runtime().db().store.last_seq()
    }

    /// Sends one request through the JSON API with the gateway's token; returns the status
    /// and the JSON body (`Null` when it is not JSON).
    pub(crate) async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut builder = axum::http::Request::builder().method(method).uri(path);
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let Ok(request) = builder.body(body) else {
            return (StatusCode::BAD_REQUEST, Value::Null);
        };
        let response = self.forward(request).await;
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
            .await
            .unwrap_or_default();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// GET a JSON resource; `Null` when it failed (the page shows what it has).
    pub(crate) async fn get(&self, path: &str) -> Value {
        let (status, value) = self.api(Method::GET, path, None).await;
        if status.is_success() {
            value
        } else {
            Value::Null
        }
    }

    /// Every item of a paged VoIPBIN list, oldest first (bounded: the page shows the newest).
    pub(crate) async fn all(&self, path: &str, max_pages: usize) -> Vec<Value> {
        let mut items = Vec::new();
        let mut token = String::new();
        let sep = if path.contains('?') { '&' } else { '?' };
        for _ in 0..max_pages {
            let page = self
                .get(&format!("{path}{sep}page_size=100&page_token={token}"))
                .await;
            if let Some(result) = page["result"].as_array() {
                items.extend(result.iter().cloned());
            }
            match page["next_page_token"].as_str() {
                Some(next) if !next.is_empty() => token = next.to_owned(),
                _ => break,
            }
        }
        items
    }

    /// Runs a request through the JSON API router with the bearer token.
    async fn forward(&self, mut request: Request) -> Response {
        let router = self
            .inner
            .router
            .get_or_init(|| super::router(self.inner.api.clone()))
            .clone();
        let bearer = format!("Bearer {}", self.inner.api.inner.token.as_str());
        match HeaderValue::from_str(&bearer) {
            Ok(v) => {
                request.headers_mut().insert(header::AUTHORIZATION, v);
            }
            Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
        request.headers_mut().remove(header::COOKIE);
        match router.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }

    fn session(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let cookie = headers.get(header::COOKIE)?.to_str().ok()?;
        let id = session::cookie_value(cookie)?;
        let s = self.inner.sessions.lock().get(id, Instant::now())?;
        Some((id.to_owned(), s))
    }

    /// The simulated modems (empty on real hardware).
    pub(crate) fn sim_ids(&self) -> Vec<String> {
        self.inner.api.sim_ids()
    }

    /// The gateway's configuration.
    pub(crate) fn config(&self) -> &crate::config::Config {
        self.inner.api.config()
    }
}

/// The admin routes, mounted on the API router with one line.
pub(crate) fn router(api: ApiState) -> Router<ApiState> {
    let state = AdminState {
        inner: Arc::new(AdminInner {
            api,
            sessions: Mutex::new(SessionStore::default()),
            router: OnceLock::new(),
        }),
    };
    Router::new()
        .route("/", get(|| async { Redirect::to("/admin/") }))
        .route("/admin", get(|| async { Redirect::to("/admin/") }))
        .route("/admin/static/app.css", get(css))
        .route("/admin/static/app.js", get(js))
        .route("/admin/login", get(login_page).post(login))
        .route("/admin/logout", post(logout))
        .route("/admin/token", post(rotate_token))
        .route("/admin/", get(page))
        .route("/admin/{page}", get(page))
        .route("/admin/flows/{id}", get(flow_page))
        .route("/admin/frag/{name}", get(fragment))
        .route("/admin/dryrun", post(dryrun::run))
        .route("/admin/api/{*path}", any(proxy))
        .with_state(state)
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        APP_CSS,
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        APP_JS,
    )
        .into_response()
}

/// Whether a state-changing request comes from this page: its `Origin` must name the host it
/// was sent to. Browsers send `Origin` on every POST, so a missing one is refused too.
fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|h| h.to_str().ok());
    match (host, origin) {
        (Some(host), Some(origin)) => origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|o| o.eq_ignore_ascii_case(host)),
        _ => false,
    }
}

fn forbidden(why: &str) -> Response {
    tracing::warn!(reason = why, "admin request refused");
    ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", why.to_owned()).into_response()
}

/// Headers every admin HTML answer carries: no caching of pages with live data, no framing
/// (click-jacking of the hang-up buttons), no sniffing.
fn html(markup: maud::Markup) -> Response {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; media-src 'self'; frame-ancestors 'none'; form-action 'self'",
            ),
        ],
        Html(markup.into_string()),
    )
        .into_response()
}

async fn login_page(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if state.session(&headers).is_some() {
        return Redirect::to("/admin/").into_response();
    }
    html(pages::login(None))
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if !same_origin(&headers) {
        return forbidden("cross-site login refused");
    }
    if !state.inner.api.inner.token.matches(form.token.trim()) {
        tracing::warn!("admin login with a wrong token");
        let mut response = html(pages::login(Some("That is not the gateway's API token.")));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        return response;
    }
    let mut random = [0u8; 64];
    rand::fill(&mut random);
    let (id, _) = state.inner.sessions.lock().create(random, Instant::now());
    tracing::info!("admin login");
    let mut response = Redirect::to("/admin/").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&id)) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// The logout form's fields.
#[derive(Debug, Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some((id, s)) = state.session(&headers) else {
        return Redirect::to("/admin/login").into_response();
    };
    if !same_origin(&headers) || !s.csrf_matches(&form.csrf) {
        return forbidden("logout without this page's CSRF token refused");
    }
    state.inner.sessions.lock().revoke(&id);
    let mut response = Redirect::to("/admin/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// Rotates the API token (a plain form: the answer is a page that shows the new token once).
/// Every admin session ends with the old token, this one too.
async fn rotate_token(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some((_, s)) = state.session(&headers) else {
        return Redirect::to("/admin/login").into_response();
    };
    if !same_origin(&headers) || !s.csrf_matches(&form.csrf) {
        return forbidden("token rotation without this page's CSRF token refused");
    }
    let dir = state.config().data.dir.clone();
    let token = state.inner.api.inner.token.clone();
    match tokio::task::spawn_blocking(move || token.rotate(&dir)).await {
        Ok(Ok(new)) => {
            state.inner.sessions.lock().revoke_all();
            tracing::info!("API token rotated from the admin page");
            let mut response = html(pages::rotated(&new));
            if let Ok(v) = HeaderValue::from_str(&session::clear_cookie()) {
                response.headers_mut().insert(header::SET_COOKIE, v);
            }
            response
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "API token rotation failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "TOKEN_NOT_ROTATED",
                format!("the new token could not be written, the old one stays: {e}"),
            )
            .into_response()
        }
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "TOKEN_NOT_ROTATED",
            e.to_string(),
        )
        .into_response(),
    }
}

async fn page(
    State(state): State<AdminState>,
    headers: HeaderMap,
    page: Option<Path<String>>,
) -> Response {
    let Some((_, s)) = state.session(&headers) else {
        return Redirect::to("/admin/login").into_response();
    };
    let name = page.map_or_else(|| "dashboard".to_owned(), |Path(p)| p);
    match pages::page(&state, &name, &s.csrf).await {
        Some(markup) => html(markup),
        None => (
            StatusCode::NOT_FOUND,
            html(pages::not_found(&name, &s.csrf)),
        )
            .into_response(),
    }
}

async fn flow_page(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some((_, s)) = state.session(&headers) else {
        return Redirect::to("/admin/login").into_response();
    };
    html(pages::flow_editor(&state, &id, &s.csrf).await)
}

async fn fragment(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    if state.session(&headers).is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match pages::fragment(&state, &name).await {
        Some(markup) => html(markup),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Why a proxied or script request is refused.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// No live session.
    NoSession,
    /// A change without the same origin or the CSRF token.
    Forbidden(&'static str),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::NoSession => {
                ApiError::unauthorized("log in to the admin page first").into_response()
            }
            Refusal::Forbidden(why) => forbidden(why),
        }
    }
}

/// Checks the session, and for changes the origin and the CSRF token.
fn authorize(state: &AdminState, method: &Method, headers: &HeaderMap) -> Result<(), Refusal> {
    let Some((_, s)) = state.session(headers) else {
        return Err(Refusal::NoSession);
    };
    if method == Method::GET || method == Method::HEAD {
        return Ok(());
    }
    if !same_origin(headers) {
        return Err(Refusal::Forbidden("cross-site request refused"));
    }
    let presented = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !s.csrf_matches(presented) {
        return Err(Refusal::Forbidden("the CSRF token is missing or wrong"));
    }
    Ok(())
}

/// `/admin/api/{path}` → `/{path}` of the JSON API, for a logged-in browser.
async fn proxy(
    State(state): State<AdminState>,
    Path(path): Path<String>,
    request: Request,
) -> Response {
    if let Err(refusal) = authorize(&state, request.method(), request.headers()) {
        return refusal.into_response();
    }
    if !path.starts_with("v1.0/") {
        return ApiError::not_found(format_args!("API path /{path}")).into_response();
    }
    let (mut parts, body) = request.into_parts();
    let uri = match parts.uri.query() {
        Some(q) => format!("/{path}?{q}"),
        None => format!("/{path}"),
    };
    let Ok(uri) = uri.parse() else {
        return ApiError::not_found(format_args!("API path /{path}")).into_response();
    };
    parts.uri = uri;
    // The outer route's extensions (its path parameters among them) must not reach the
    // API's handlers, which would read them as their own.
    parts.extensions = axum::http::Extensions::new();
    state.forward(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_needs_a_matching_origin() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("gw:8080"));
        assert!(!same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://gw:8080"));
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
    }
}
