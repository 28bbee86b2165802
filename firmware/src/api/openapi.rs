//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations and the
//! request/response types and checked in as `firmware/openapi.json` (a test fails when they
//! differ; regenerate with `FLOWGATE_UPDATE_OPENAPI=1 cargo test -p flowgate --test
//! api_openapi`). The daemon serves that file at `/v1.0/openapi.json`, compacted at build
//! time, so the generator's code stays out of the binary.
//!
//! The error responses every operation can give (401 without the token, 400 for a bad path
//! query or body, 413/415 for bodies, 404 for unknown ids, 500 when the store fails, 502/503
//! where a modem is involved, 507 on a POST when the disk is full) are added by
//! [`CommonErrors`] rather than repeated on every handler, so no status the server sends is
//! undocumented.

//!
//! The generator names every handler, the simulator's too: it is built with the
//! `simulator` feature (the tests always have it). A build without the simulator serves the
//! same document, whose simulator paths answer 503 `NO_SIMULATOR` as documented.

use axum::http::header;
use axum::response::IntoResponse;
#[cfg(feature = "simulator")]
use utoipa::openapi::path::Operation;
#[cfg(feature = "simulator")]
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
#[cfg(feature = "simulator")]
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
#[cfg(feature = "simulator")]
use utoipa::{Modify, OpenApi};

use super::error::ApiError;
#[cfg(feature = "simulator")]
use super::error::ErrorBody;
#[cfg(feature = "simulator")]
use super::schema::{ActionDoc, AddressDoc, EventDoc, FlowDoc};

#[cfg(feature = "simulator")]
/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Flowgate LAN API",
        description = "VoIPBIN-shaped flows, activeflows, numbers, calls, conferences, queues, messages, recordings and transcribes under `/v1.0`; \
the gateway's own resources under `/v1.0/gateway`.\n\n\
Authentication: `Authorization: Bearer <token>` or `?token=<token>` (the token is in `<data dir>/api-token`); \
only `GET /v1.0/gateway/health` is open.\n\n\
Errors are JSON `{code, message, problems?}`. Status codes: 400 bad input — every body that is not what the route \
takes answers 400 (`INVALID_JSON` syntax, `INVALID_BODY` wrong shape, type or value), as do `INVALID_*`, `UNKNOWN_FLOW`, \
`INVALID_QUEUE`, `UNKNOWN_ACTION`; `problems` lists JSON paths), 401 token missing or wrong, 404 unknown id, \
409 state conflict (`ACTIVEFLOW_ENDED`, `CALL_OVER`, `NO_AUDIO` — the call has no audio path, `STALE_ACTION`, \
`DUPLICATE_ID`, `DUPLICATE_NUMBER`, `FLOW_IN_USE`, `QUEUE_IN_USE`, `QUEUECALL_OVER`, `RECORDING_IN_PROGRESS`, `NO_CALL`, `NOT_SUPPORTED_BY_LINE`), \
412/428 flow-sync preconditions, 413 body over `api.max_body_bytes` (`BODY_TOO_LARGE`, also for a declared `Content-Length`), \
415 not JSON, \
500 the store failed (`INTERNAL`, with the cause), 502 the line or modem refused (`LINE_ERROR`, `MODEM_ERROR`), \
503 not available now (`NO_LINE`, `LINE_UNAVAILABLE`, `NO_MODEM`, `MODEM_UNAVAILABLE`, `NO_SIMULATOR`, \
`SIMULATOR_STOPPED`, `SHUTTING_DOWN`), 507 the disk budget (`data.max_disk_mib`) is used up (`DISK_FULL`: nothing new is stored until retention has made room; reads, updates and running flows go on, and the same request succeeds later)."
    ),
    paths(
        super::flows::list, super::flows::create, super::flows::get_one, super::flows::update, super::flows::delete,
        super::activeflows::list, super::activeflows::create, super::activeflows::get_one, super::activeflows::stop,
        super::activeflows::delete, super::activeflows::forward, super::activeflows::push_actions,
        super::activeflows::continue_block,
        super::numbers::list, super::numbers::create, super::numbers::get_one, super::numbers::update,
        super::numbers::set_flow_ids, super::numbers::delete,
        super::calls::list, super::calls::create, super::calls::get_one, super::calls::hangup, super::calls::talk,
        super::calls::recording_start, super::calls::recording_stop, super::calls::hold, super::calls::unhold,
        super::calls::mute, super::calls::unmute, super::calls::transfer, super::mediastream::media_stream,
        super::conferences::list, super::conferences::create, super::conferences::get_one, super::conferences::delete,
        super::conferences::recording_start, super::conferences::recording_stop,
        super::conferences::mute, super::conferences::unmute,
        super::conferences::calls_list, super::conferences::call_get, super::conferences::call_kick,
        super::queues::list, super::queues::create, super::queues::get_one, super::queues::update, super::queues::delete,
        super::queues::list_calls, super::queues::get_call, super::queues::kick,
        super::messages::list, super::messages::create, super::messages::get_one,
        super::recordings::list, super::recordings::get_one, super::recordings::file, super::recordings::delete,
        super::transcribes::list, super::transcribes::get_one,
        super::gateway::health, super::gateway::metrics, super::gateway::lines, super::gateway::modems, super::gateway::modem,
        super::gateway::ussd, super::gateway::ussd_cancel,
        super::sip::status,
        super::events::list, super::events::stream,
        super::flowsync::export, super::flowsync::import,
        super::sim::status, super::sim::sms, super::sim::incoming_call, super::sim::dtmf, super::sim::hangup,
        super::sim::answer, super::sim::busy, super::sim::ussd_reply, super::sim::queue_audio, super::sim::clear_audio,
        super::sim::recorded_audio, super::sim::sent,
        super::analog::get_status, super::analog::lift, super::analog::replace, super::analog::dial, super::analog::flash,
        super::analog::ring, super::analog::line_answer, super::analog::line_hangup,
        serve_document,
    ),
    components(schemas(ErrorBody, super::error::Problem, FlowDoc, ActionDoc, AddressDoc, EventDoc, super::schema::AnalogPortDoc)),
    modifiers(&Security, &CommonErrors),
    security(("bearer" = []), ("token" = [])),
    tags(
        (name = "flows", description = "Flow definitions"),
        (name = "activeflows", description = "Running flows"),
        (name = "numbers", description = "Number → flow bindings"),
        (name = "calls", description = "Calls, outbound dialling, call interrupts, transfers"),
        (name = "conferences", description = "Local conferences (VoIPBIN's conference and conferencecall), their participants and recording"),
        (name = "queues", description = "Local call queues (`queue_join`) and the callers in them"),
        (name = "messages", description = "SMS"),
        (name = "recordings", description = "Call recordings"),
        (name = "transcribes", description = "Speech to text of recordings and calls"),
        (name = "gateway", description = "Health and metrics"),
        (name = "modems", description = "The board's modems"),
        (name = "events", description = "The event log: long-poll and SSE"),
        (name = "sync", description = "Whole flow-set export/import with revisions"),
        (name = "simulator", description = "The simulated board's control (503 on real hardware)"),
    )
)]
pub struct ApiDoc;

#[cfg(feature = "simulator")]
/// The two ways to present the token.
struct Security;

#[cfg(feature = "simulator")]
impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "The API token as a query parameter",
            ))),
        );
    }
}

#[cfg(feature = "simulator")]
/// Adds the error responses every operation can give (see the module docs).
struct CommonErrors;

#[cfg(feature = "simulator")]
/// (status, component name, description).
const COMMON: &[(&str, &str, &str)] = &[
    (
        "400",
        "BadRequest",
        "Bad input: path, query or body (`code` says which; `problems` lists JSON paths)",
    ),
    ("401", "Unauthorized", "The API token is missing or wrong"),
    ("404", "NotFound", "No resource with this id"),
    (
        "413",
        "PayloadTooLarge",
        "The body is larger than `api.max_body_bytes`",
    ),
    (
        "415",
        "UnsupportedMediaType",
        "The body is not `application/json`",
    ),
    ("500", "Internal", "The store failed; the message says what"),
    (
        "502",
        "ModemError",
        "The line or modem refused or failed (`LINE_ERROR`, `MODEM_ERROR`)",
    ),
    (
        "503",
        "Unavailable",
        "Not available now (`NO_LINE`, `LINE_UNAVAILABLE`, `NO_MODEM`, `MODEM_UNAVAILABLE`, `SHUTTING_DOWN`)",
    ),
    (
        "507",
        "InsufficientStorage",
        "The disk budget is used up (`DISK_FULL`): nothing new is stored until retention has made room",
    ),
];

#[cfg(feature = "simulator")]
impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (_, name, description) in COMMON {
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build();
            let response = ResponseBuilder::new()
                .description(*description)
                .content("application/json", content)
                .build();
            components
                .responses
                .insert((*name).to_owned(), RefOr::T(response));
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (op, post) in [
                (&mut item.get, false),
                (&mut item.put, false),
                (&mut item.post, true),
                (&mut item.delete, false),
            ] {
                if let Some(op) = op {
                    add_common(path, op, post);
                }
            }
        }
    }
}

#[cfg(feature = "simulator")]
/// `post`: the operation is a POST, the method of every request that may create something
/// (and so meet a full disk).
fn add_common(path: &str, op: &mut Operation, post: bool) {
    let has_body = op.request_body.is_some();
    let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty()) || path.contains('{');
    let modem = op
        .tags
        .as_ref()
        .is_some_and(|t| t.iter().any(|t| t == "calls" || t == "modems"));
    let open = path == "/v1.0/gateway/health";
    // 404 where a request names something: an id in the path, a simulated modem
    // (`?modem=`), or the calls a transfer names in its body.
    let names_something = path.contains('{')
        || path == "/v1.0/transfers"
        || op.parameters.as_ref().is_some_and(|p| {
            p.iter()
                .any(|p| matches!(p, RefOr::T(p) if p.name == "modem"))
        });
    for (status, name, _) in COMMON {
        let wanted = match *status {
            "400" => has_body || has_params,
            "401" => !open,
            "404" => names_something,
            "413" | "415" => has_body,
            "500" => true,
            "502" | "503" => modem,
            "507" => post && !open,
            _ => false,
        };
        if wanted {
            op.responses
                .responses
                .entry((*status).to_owned())
                .or_insert_with(|| RefOr::Ref(Ref::from_response_name(*name)));
        }
    }
}

#[cfg(feature = "simulator")]
/// The document as a value.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[cfg(feature = "simulator")]
/// The document as pretty JSON with a trailing newline (what `firmware/openapi.json` holds).
pub fn document_json() -> String {
    let mut text = document()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

/// The checked-in document with the whitespace taken out, LZ4-compressed (firmware/build.rs).
/// The daemon serves this rather than [`document()`]: building the document with utoipa at
/// run time is 0.7 MB of code in a binary with an 8 MB flash budget, and
/// `tests/api_openapi.rs` keeps the file equal to what the code generates (and the served
/// document equal to both). Compressed, it is ~80 KB less flash; it is decompressed per
/// request (a few hundred µs, and the route is fetched by tools, not per call).
const SERVED_LZ4: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/openapi.min.json.lz4"));

/// This document.
#[utoipa::path(get, path = "/v1.0/openapi.json", tag = "gateway",
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
pub(super) async fn serve_document() -> impl IntoResponse {
    match lz4_flex::decompress_size_prepended(SERVED_LZ4) {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        // Only a broken build can get here (build.rs wrote these bytes).
        Err(e) => {
            ApiError::internal("decompressing the embedded OpenAPI document", &e).into_response()
        }
    }
}
