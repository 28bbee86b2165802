//! Gateway resources: the health check (the only route without a token), Prometheus
//! metrics, the lines calls go out on and come in from, and the modems (status from the
//! driver, USSD — modem features).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use flowgate_board::modem::ModemHandle;
use flowgate_board::modem::events::{ModemState, ModemStatus, UssdReply};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::{ApiState, listing};
use crate::sync::flowset::REVISION_KEY;

listing!(
    /// The board's modems (never paged).
    ModemList,
    ModemStatus,
    Object
);

listing!(
    /// The gateway's lines (never paged).
    LineList,
    LineView
);

/// One line in `GET /v1.0/gateway/lines`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct LineView {
    /// Line id (`sim0`, an analog port, a SIP trunk).
    id: String,
    /// `modem`, `sip`, `fxs` or `fxo`.
    #[schema(value_type = String)]
    transport: flowgate_line::Transport,
    /// Whether it can take a new call now: `{state: ready|busy|unregistered|down, reason?}`.
    #[schema(value_type = Object)]
    availability: flowgate_line::Availability,
    /// What it can do besides place, answer and hang up.
    #[schema(value_type = Object)]
    capabilities: flowgate_line::Capabilities,
    /// Its own number or extension, when known.
    own_number: String,
    /// Analog ports: hook state, ringing, loop current and voltage, alarms.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<super::schema::AnalogPortDoc>)]
    analog: Option<flowgate_board::analog::AnalogLineStatus>,
}

/// `GET /v1.0/gateway/health`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct Health {
    /// `ok`: the store works and every modem is ready; `degraded`: some modem is not ready;
    /// `failing`: the store does not answer (HTTP 503).
    status: &'static str,
    /// Flowgate version.
    version: &'static str,
    /// Seconds since the API started.
    uptime_secs: u64,
    /// The database.
    store: StoreHealth,
    /// Each modem's lifecycle state.
    modems: Vec<ModemHealth>,
    /// Activeflows with a live runner.
    activeflows_running: usize,
}

/// The database part of [`Health`].
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct StoreHealth {
    /// A read succeeded.
    ok: bool,
    /// Sequence number of the newest event.
    last_seq: u64,
    /// Why the read failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// One modem in [`Health`].
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct ModemHealth {
    /// Modem id.
    id: String,
    /// `starting`, `opening`, `initializing`, `waiting_for_sim`, `ready`, `recovering`,
    /// `port_lost`, `failed` or `stopped`.
    state: &'static str,
    /// Registered to a network.
    registered: bool,
}

/// `POST /v1.0/gateway/modems/{id}/ussd`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(super) struct UssdBody {
    /// The USSD string, e.g. `*100#`: digits, `*`, `#` and `+`, at most 160.
    #[schema(min_length = 1, max_length = 160, pattern = "^[0-9*#+]+$")]
    code: String,
}

/// The longest USSD string sent to a modem.
const MAX_USSD_CODE: usize = 160;

/// Liveness and readiness (no token needed).
#[utoipa::path(get, path = "/v1.0/gateway/health", tag = "gateway", security(()),
    responses(
        (status = 200, description = "The gateway works (`ok` or `degraded`)", body = Health),
        (status = 503, description = "The store does not answer (`failing`)", body = Health),
    ))]
pub(super) async fn health(State(state): State<ApiState>) -> Response {
    let db = state.runtime().db();
    let probe = db.store.meta_get::<u64>(REVISION_KEY);
    let modems: Vec<ModemHealth> = state
        .runtime()
        .modems()
        .iter()
        .map(|m| {
            let status = m.status();
            ModemHealth {
                id: status.id.clone(),
                state: status.state.name(),
                registered: status.is_registered(),
            }
        })
        .collect();
    let all_ready = modems.iter().all(|m| m.state == ModemState::Ready.name());
    let (code, status) = match (&probe, all_ready) {
        (Err(_), _) => (StatusCode::SERVICE_UNAVAILABLE, "failing"),
        (Ok(_), true) => (StatusCode::OK, "ok"),
        (Ok(_), false) => (StatusCode::OK, "degraded"),
    };
    let body = Health {
        status,
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: state.inner.started.elapsed().as_secs(),
        store: StoreHealth {
            ok: probe.is_ok(),
            last_seq: db.store.last_seq(),
            error: probe.err().map(|e| e.to_string()),
        },
        modems,
        activeflows_running: state.runtime().running(),
    };
    (code, Json(body)).into_response()
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/v1.0/gateway/metrics", tag = "gateway",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub(super) async fn metrics(State(state): State<ApiState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.runtime().metrics().render(),
    )
        .into_response()
}

/// Every line: transport, availability, capabilities.
#[utoipa::path(get, path = "/v1.0/gateway/lines", tag = "gateway",
    responses((status = 200, description = "Every line", body = LineList)))]
pub(super) async fn lines(State(state): State<ApiState>) -> Json<LineList> {
    Json(LineList {
        result: state
            .runtime()
            .lines()
            .iter()
            .map(|l| LineView {
                id: l.id().to_owned(),
                transport: l.transport(),
                availability: l.availability(),
                capabilities: l.capabilities(),
                own_number: l.own_party().number,
                analog: state.analog().view(l.id()).map(|v| v.status),
            })
            .collect(),
        next_page_token: None,
    })
}

fn modem_by_id(state: &ApiState, id: &str) -> Result<ModemHandle, ApiError> {
    state
        .runtime()
        .modems()
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format_args!("modem {id:?}")))
}

/// The modems: identity, SIM, registration, signal, lifecycle state, calls.
#[utoipa::path(get, path = "/v1.0/gateway/modems", tag = "modems",
    responses((status = 200, description = "Every modem's status", body = ModemList)))]
pub(super) async fn modems(State(state): State<ApiState>) -> Json<ModemList> {
    Json(ModemList {
        result: state
            .runtime()
            .modems()
            .iter()
            .map(ModemHandle::status)
            .collect(),
        next_page_token: None,
    })
}

/// One modem's status.
#[utoipa::path(get, path = "/v1.0/gateway/modems/{id}", tag = "modems", params(("id" = String, Path, description = "Modem id")),
    responses((status = 200, description = "The modem's status", body = Object)))]
pub(super) async fn modem(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ModemStatus>, ApiError> {
    Ok(Json(modem_by_id(&state, &id)?.status()))
}

/// Sends a USSD string and waits for the network's reply.
#[utoipa::path(post, path = "/v1.0/gateway/modems/{id}/ussd", tag = "modems",
    params(("id" = String, Path, description = "Modem id")), request_body = UssdBody,
    responses((status = 200, description = "The network's reply `{status, text, dcs, raw}`", body = Object)))]
pub(super) async fn ussd(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UssdBody>,
) -> Result<Json<UssdReply>, ApiError> {
    let modem = modem_by_id(&state, &id)?;
    // Checked here, not by the modem: a modem answers junk with an error that would read as
    // the modem failing (502) rather than the request being wrong.
    if body.code.is_empty()
        || body.code.len() > MAX_USSD_CODE
        || !body
            .code
            .chars()
            .all(|c| c.is_ascii_digit() || "*#+".contains(c))
    {
        return Err(ApiError::bad_request(
            "INVALID_REQUEST",
            format!("code must be 1 to {MAX_USSD_CODE} of 0-9 * # +"),
        ));
    }
    Ok(Json(modem.ussd(&body.code).await?))
}

/// Ends a USSD session.
#[utoipa::path(delete, path = "/v1.0/gateway/modems/{id}/ussd", tag = "modems",
    params(("id" = String, Path, description = "Modem id")),
    responses(
        (status = 204, description = "The session is ended"),
        (status = 502, description = "`MODEM_ERROR`", body = ErrorBody),
    ))]
pub(super) async fn ussd_cancel(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    modem_by_id(&state, &id)?.ussd_cancel().await?;
    Ok(StatusCode::NO_CONTENT)
}
