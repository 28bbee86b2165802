//! The LAN API: VoIPBIN-shaped resources under `/v1.0`, gateway resources under
//! `/v1.0/gateway`, OpenAPI at `/v1.0/openapi.json`.
//!
//! # Layout
//!
//! - this file: [`ApiState`], [`router`], [`serve`], paging and the request counter.
//! - [`auth`]: the token (every route but the health check needs it).
//! - [`error`]: the one JSON error shape and extractors that reject into it.
//! - `flows`, `activeflows`, `numbers`, `calls` (with transfers), `mediastream` (a call's
//!   audio over a WebSocket), `queues` (and queuecalls), `messages`, `recordings`,
//!   `transcribes`:
//!   the VoIPBIN resources.
//! - `admin`: the LAN admin page (HTML, session login), mounted beside the API.
//! - `gateway` (health, metrics, lines, modems), `events` (log, long-poll, SSE), `flowsync`
//!   (whole-set export/import), `sim` (the simulated board's control, per simulated modem),
//!   `analog` (the simulated analog board's control: phone and exchange line).
//! - [`openapi`]: the document generated from the handlers' annotations; `schema`: the
//!   documentation-only body shapes the handlers and the document share.
//!
//! Handlers are thin: they parse, call the runtime / store / [`crate::sync::flowset`], and
//! map errors (see `error.rs` for the runtime's error → status mapping).

mod activeflows;
mod admin;
#[cfg(feature = "simulator")]
mod analog;
pub mod auth;
mod calls;
mod conferences;
pub mod conn;
pub mod error;
mod events;
mod flows;
mod flowsync;
mod gateway;
mod mediastream;
mod messages;
mod numbers;
pub mod openapi;
mod queues;
mod recordings;
mod schema;
#[cfg(feature = "simulator")]
mod sim;
mod sip;
mod transcribes;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
#[cfg(feature = "simulator")]
pub use flowgate_board::simulator::SimulatorControl;
/// No simulated modem in a build without the simulator (uninhabited): the list of
/// simulated modems is always empty, and the simulator API answers 503 `NO_SIMULATOR`.
#[cfg(not(feature = "simulator"))]
pub type SimulatorControl = std::convert::Infallible;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::store::Table;
use crate::sync::flowset::FlowSet;
use auth::ApiToken;
use error::ApiError;

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    inner: Arc<StateInner>,
}

struct StateInner {
    runtime: Runtime,
    token: ApiToken,
    config: Config,
    /// The simulated modems, by id, in board order.
    sims: Vec<(String, SimulatorControl)>,
    /// The analog ports (and the simulated analog board's control).
    analog: crate::analog::AnalogPorts,
    started: Instant,
    flows: FlowSet,
    /// Cancelled when the server shuts down: ends SSE streams and long-polls, which would
    /// otherwise keep graceful shutdown waiting.
    shutdown: CancellationToken,
    /// The SIP user agent, when SIP runs (`GET /v1.0/gateway/sip`).
    sip: Option<flowgate_sip::ua::UserAgent>,
}

impl ApiState {
    /// The state for a gateway: its runtime, the API token, the configuration (`api.*`
    /// limits, the data directory for recordings) and the control handles of the simulated
    /// modems (by modem id, in board order) when the simulated board runs.
    pub fn new(
        runtime: Runtime,
        token: ApiToken,
        config: Config,
        sims: Vec<(String, SimulatorControl)>,
    ) -> Self {
        let flows = FlowSet::new(runtime.db().clone());
        Self {
            inner: Arc::new(StateInner {
                runtime,
                token,
                config,
                sims,
                analog: crate::analog::AnalogPorts::default(),
                started: Instant::now(),
                flows,
                shutdown: CancellationToken::new(),
                sip: None,
            }),
        }
    }

    /// The state with the SIP user agent (before the state is shared).
    pub fn with_sip(mut self, ua: Option<flowgate_sip::ua::UserAgent>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.sip = ua;
        }
        self
    }

    /// The same state with the gateway's analog ports (call right after [`ApiState::new`],
    /// before the state is shared).
    #[must_use]
    pub fn with_analog(mut self, analog: crate::analog::AnalogPorts) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.analog = analog,
            None => tracing::warn!("API state already shared: analog ports not added"),
        }
        self
    }

    /// The SIP user agent, when SIP runs.
    pub(crate) fn sip(&self) -> Option<&flowgate_sip::ua::UserAgent> {
        self.inner.sip.as_ref()
    }

    /// The analog ports.
    pub(crate) fn analog(&self) -> &crate::analog::AnalogPorts {
        &self.inner.analog
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    /// The flow set (revisioned flow changes).
    pub fn flows(&self) -> &FlowSet {
        &self.inner.flows
    }

    /// The configuration the API was built with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Where recordings live: `<data dir>/recordings`.
    pub fn recordings_dir(&self) -> PathBuf {
        self.inner.config.data.dir.join("recordings")
    }

    /// The simulated modem `wanted` (the first when `None`): 503 `NO_SIMULATOR` on a real
    /// board, 404 for a modem the board does not simulate.
    #[cfg(feature = "simulator")]
    fn sim(&self, wanted: Option<&str>) -> Result<(&str, &SimulatorControl), ApiError> {
        let sims = &self.inner.sims;
        let found = match wanted {
            None | Some("") => sims.first(),
            Some(id) => sims.iter().find(|(sim, _)| sim == id),
        };
        match found {
            Some((id, control)) => Ok((id.as_str(), control)),
            None if sims.is_empty() => Err(ApiError::unavailable(
                "NO_SIMULATOR",
                "the gateway runs on real hardware; the simulator API is not available",
            )),
            None => Err(ApiError::not_found(format_args!(
                "simulated modem {:?} (the board simulates: {})",
                wanted.unwrap_or_default(),
                self.sim_ids().join(", ")
            ))),
        }
    }

    /// The ids of the simulated modems.
    fn sim_ids(&self) -> Vec<String> {
        self.inner.sims.iter().map(|(id, _)| id.clone()).collect()
    }

    fn metrics(&self) -> &Arc<Metrics> {
        self.inner.runtime.metrics()
    }

    /// Validation options for flows and actions (the engine's limits).
    fn validate_options(&self) -> flowgate_flows::validate::ValidateOptions {
        flowgate_flows::validate::ValidateOptions {
            limits: self.runtime().guards().limits.clone(),
            reference_type: None,
        }
    }
}

/// The whole API with its state applied.
pub fn router(state: ApiState) -> Router {
    let protected = Router::new()
        .route("/v1.0/openapi.json", get(openapi::serve_document))
        .route("/v1.0/flows", get(flows::list).post(flows::create))
        .route(
            "/v1.0/flows/{id}",
            get(flows::get_one).put(flows::update).delete(flows::delete),
        )
        .route(
            "/v1.0/activeflows",
            get(activeflows::list).post(activeflows::create),
        )
        .route(
            "/v1.0/activeflows/{id}",
            get(activeflows::get_one).delete(activeflows::delete),
        )
        .route("/v1.0/activeflows/{id}/stop", post(activeflows::stop))
        .route(
            "/v1.0/activeflows/{id}/forward_action_id",
            put(activeflows::forward),
        )
        .route(
            "/v1.0/activeflows/{id}/push_actions",
            post(activeflows::push_actions),
        )
        .route(
            "/v1.0/activeflows/{id}/continue",
            post(activeflows::continue_block),
        )
        .route("/v1.0/numbers", get(numbers::list).post(numbers::create))
        .route(
            "/v1.0/numbers/{id}",
            get(numbers::get_one)
                .put(numbers::update)
                .delete(numbers::delete),
        )
        .route("/v1.0/numbers/{id}/flow_ids", put(numbers::set_flow_ids))
        .route("/v1.0/calls", get(calls::list).post(calls::create))
        .route("/v1.0/calls/{id}", get(calls::get_one))
        .route("/v1.0/calls/{id}/hangup", post(calls::hangup))
        .route("/v1.0/calls/{id}/talk", post(calls::talk))
        .route(
            "/v1.0/calls/{id}/media_stream",
            get(mediastream::media_stream),
        )
        .route(
            "/v1.0/calls/{id}/recording_start",
            post(calls::recording_start),
        )
        .route(
            "/v1.0/calls/{id}/recording_stop",
            post(calls::recording_stop),
        )
        .route(
            "/v1.0/calls/{id}/hold",
            post(calls::hold).delete(calls::unhold),
        )
        .route(
            "/v1.0/calls/{id}/mute",
            post(calls::mute).delete(calls::unmute),
        )
        .route("/v1.0/transfers", post(calls::transfer))
        .route(
            "/v1.0/conferences",
            get(conferences::list).post(conferences::create),
        )
        .route(
            "/v1.0/conferences/{id}",
            get(conferences::get_one).delete(conferences::delete),
        )
        .route(
            "/v1.0/conferences/{id}/recording_start",
            post(conferences::recording_start),
        )
        .route(
            "/v1.0/conferences/{id}/recording_stop",
            post(conferences::recording_stop),
        )
        .route("/v1.0/conferencecalls", get(conferences::calls_list))
        .route(
            "/v1.0/conferencecalls/{id}",
            get(conferences::call_get).delete(conferences::call_kick),
        )
        .route(
            "/v1.0/conferences/{id}/participants/{call_id}/mute",
            post(conferences::mute).delete(conferences::unmute),
        )
        .route("/v1.0/queues", get(queues::list).post(queues::create))
        .route(
            "/v1.0/queues/{id}",
            get(queues::get_one)
                .put(queues::update)
                .delete(queues::delete),
        )
        .route("/v1.0/queuecalls", get(queues::list_calls))
        .route("/v1.0/queuecalls/{id}", get(queues::get_call))
        .route("/v1.0/queuecalls/{id}/kick", post(queues::kick))
        .route("/v1.0/messages", get(messages::list).post(messages::create))
        .route("/v1.0/messages/{id}", get(messages::get_one))
        .route("/v1.0/recordings", get(recordings::list))
        .route(
            "/v1.0/recordings/{id}",
            get(recordings::get_one).delete(recordings::delete),
        )
        .route("/v1.0/recordings/{id}/file", get(recordings::file))
        .route("/v1.0/transcribes", get(transcribes::list))
        .route("/v1.0/transcribes/{id}", get(transcribes::get_one))
        .route("/v1.0/gateway/metrics", get(gateway::metrics))
        .route("/v1.0/gateway/lines", get(gateway::lines))
        .route("/v1.0/gateway/sip", get(sip::status))
        .route("/v1.0/gateway/modems", get(gateway::modems))
        .route("/v1.0/gateway/modems/{id}", get(gateway::modem))
        .route(
            "/v1.0/gateway/modems/{id}/ussd",
            post(gateway::ussd).delete(gateway::ussd_cancel),
        )
        .route("/v1.0/gateway/events", get(events::list))
        .route("/v1.0/gateway/events/stream", get(events::stream))
        .route(
            "/v1.0/gateway/sync/flows",
            get(flowsync::export).put(flowsync::import),
        );
    let protected = sim_routes(protected).route_layer(middleware::from_fn_with_state(
        state.inner.token.clone(),
        auth::require_token,
    ));
    Router::new()
        .route("/v1.0/gateway/health", get(gateway::health))
        .merge(protected)
        .merge(admin::router(state.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.inner.config.api.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            Arc::clone(state.metrics()),
            count_requests,
        ))
        .with_state(state)
}

/// The simulator API (`/v1.0/gateway/sim…`): the simulated modems and analog board.
#[cfg(feature = "simulator")]
fn sim_routes(router: Router<ApiState>) -> Router<ApiState> {
    router
        .route("/v1.0/gateway/sim", get(sim::status))
        .route("/v1.0/gateway/sim/sms", post(sim::sms))
        .route("/v1.0/gateway/sim/calls", post(sim::incoming_call))
        .route("/v1.0/gateway/sim/dtmf", post(sim::dtmf))
        .route("/v1.0/gateway/sim/hangup", post(sim::hangup))
        .route("/v1.0/gateway/sim/answer", post(sim::answer))
        .route("/v1.0/gateway/sim/busy", post(sim::busy))
        .route("/v1.0/gateway/sim/ussd", post(sim::ussd_reply))
        .route(
            "/v1.0/gateway/sim/audio",
            post(sim::queue_audio)
                .get(sim::recorded_audio)
                .delete(sim::clear_audio),
        )
        .route("/v1.0/gateway/sim/sent", get(sim::sent))
        .route("/v1.0/gateway/sim/analog", get(analog::get_status))
        .route("/v1.0/gateway/sim/analog/phone/lift", post(analog::lift))
        .route("/v1.0/gateway/sim/analog/phone/dial", post(analog::dial))
        .route("/v1.0/gateway/sim/analog/phone/flash", post(analog::flash))
        .route(
            "/v1.0/gateway/sim/analog/phone/hangup",
            post(analog::replace),
        )
        .route("/v1.0/gateway/sim/analog/line/ring", post(analog::ring))
        .route(
            "/v1.0/gateway/sim/analog/line/answer",
            post(analog::line_answer),
        )
        .route(
            "/v1.0/gateway/sim/analog/line/hangup",
            post(analog::line_hangup),
        )
}

/// A build without the simulator (the board image) keeps the simulator API's paths and
/// answers them as a real board does: 503 `NO_SIMULATOR`.
#[cfg(not(feature = "simulator"))]
fn sim_routes(router: Router<ApiState>) -> Router<ApiState> {
    router
        .route("/v1.0/gateway/sim", axum::routing::any(no_simulator))
        .route(
            "/v1.0/gateway/sim/{*rest}",
            axum::routing::any(no_simulator),
        )
}

#[cfg(not(feature = "simulator"))]
async fn no_simulator() -> ApiError {
    ApiError::unavailable(
        "NO_SIMULATOR",
        "this build of flowgate has no simulator (cargo feature \"simulator\"); the simulator API is not available",
    )
}

/// Serves the API on `listener` until `cancel` with the connection limits of `[api]` (see
/// [`conn`]); then stops accepting, ends streams and long-polls, and waits for requests in
/// flight.
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let shutdown = state.inner.shutdown.clone();
    let limits = conn::ConnLimits::from_config(&state.inner.config.api);
    let app = router(state);
    conn::serve(listener, app, limits, cancel, move || shutdown.cancel()).await
}

async fn count_requests(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    Metrics::inc(&metrics.api_requests_total);
    next.run(request).await
}

async fn not_found(request: Request) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("no endpoint at {}", request.uri().path()),
    )
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!(
            "{} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
}

/// Paging parameters of every list (VoIPBIN's names).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page; absent or empty for the first page.
    #[param(
        pattern = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$"
    )]
    pub page_token: Option<String>,
}

const DEFAULT_PAGE_SIZE: u32 = 10;
const MAX_PAGE_SIZE: u32 = 100;

impl PageQuery {
    /// Reads one page of `table`, mapping each record with `f`.
    fn page<V, T>(
        &self,
        table: &Table<V>,
        f: impl FnMut(V) -> T,
    ) -> Result<(Vec<T>, Option<String>), ApiError>
    where
        V: Serialize + serde::de::DeserializeOwned,
    {
        let size = self.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&size) {
            return Err(ApiError::bad_request(
                "INVALID_QUERY",
                format!("page_size must be between 1 and {MAX_PAGE_SIZE}, not {size}"),
            ));
        }
        // Exactly what `next_page_token` looks like (hyphenated UUID), as documented: the
        // uuid crate would also take braces, URNs and undashed forms.
        let after = match self.page_token.as_deref() {
            None | Some("") => None,
            Some(token) => Some(
                Some(token)
                    .filter(|t| t.len() == 36)
                    .and_then(|t| Uuid::try_parse(t).ok())
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "INVALID_QUERY",
                            format!("page_token {token:?} is not a token this API returned"),
                        )
                    })?,
            ),
        };
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        let page = table.page(after, size)?;
        Ok((
            page.items.into_iter().map(f).collect(),
            page.next.map(|id| id.to_string()),
        ))
    }
}

/// Declares a VoIPBIN list response `{result: [...], next_page_token}` for one record type.
macro_rules! listing {
    ($(#[$meta:meta])* $name:ident, $item:ty $(, $doc:ty)?) => {
        $(#[$meta])*
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        pub(crate) struct $name {
            /// The records of this page.
            $(#[schema(value_type = Vec<$doc>)])?
            pub(crate) result: Vec<$item>,
            /// Pass as `page_token` for the next page; null on the last page.
            pub(crate) next_page_token: Option<String>,
        }
    };
}
pub(crate) use listing;
