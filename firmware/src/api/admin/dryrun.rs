//! `POST /admin/dryrun`: the flow editor's dry run — the `flowgate flow run` engine
//! (`flowgate_flows::dryrun`) on the text in the editor, with scripted inputs (digits,
//! hang-up, …), variables and reference type from the page; answers an HTML fragment with
//! the trace, or the flow's problems with their JSON paths.
//!
//! The gateway's stored flows are given to the run so `fetch_flow` and
//! `on_complete_flow_id` follow-ups behave as they would on the gateway; `fetch` of a URL is
//! refused with a clear reason (the dry run never reaches the network from the daemon).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use flowgate_flows::dryrun::{DryRunConfig, FetchRequest, dry_run, parse_reference, parse_var};
use flowgate_flows::model::{Action, Flow};
use flowgate_flows::validate::validate_json;
use serde::Deserialize;

use super::{AdminState, authorize, html, pages};

/// Most scripted events and variables one run takes (the page is for people, not load).
const MAX_LINES: usize = 200;

/// What the page sends.
#[derive(Debug, Deserialize)]
pub(super) struct DryRunBody {
    /// The flow JSON as typed in the editor.
    flow: String,
    /// `call` (default), `message`, `api`, …
    #[serde(default)]
    reference: String,
    /// Scripted events, one per line (`dtmf:1`, `press:12#`, `timeout`, `hangup`, …).
    #[serde(default)]
    inputs: String,
    /// `KEY=VALUE` lines.
    #[serde(default)]
    variables: String,
}

/// Lines of a textarea, without blanks and `#` comments.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

pub(super) async fn run(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Json(body): Json<DryRunBody>,
) -> Response {
    if let Err(refusal) = authorize(&state, &axum::http::Method::POST, &headers) {
        return refusal.into_response();
    }
    let opts = state.inner.api.validate_options();
    let (flow, report) = validate_json(&body.flow, &opts);
    let flow = match flow {
        Some(flow) if report.is_ok() => flow,
        _ => return html(pages::problems_fragment(&report.errors)),
    };
    let mut cfg = DryRunConfig {
        guards: state.inner.api.runtime().guards().clone(),
        now: chrono::Utc::now(),
        ..DryRunConfig::default()
    };
    let mut errors = Vec::new();
    if !body.reference.trim().is_empty() {
        match parse_reference(&body.reference) {
            Ok(r) => cfg.reference_type = r,
            Err(e) => errors.push(format!("reference: {e}")),
        }
    }
    for (n, line) in lines(&body.inputs).take(MAX_LINES) {
        match line.parse() {
            Ok(event) => cfg.inputs.push(event),
            Err(e) => errors.push(format!("inputs line {n}: {e}")),
        }
    }
    for (n, line) in lines(&body.variables).take(MAX_LINES) {
        match parse_var(line) {
            Ok((k, v)) => {
                cfg.variables.insert(k, v);
            }
            Err(e) => errors.push(format!("variables line {n}: {e}")),
        }
    }
    if !errors.is_empty() {
        return html(pages::messages_fragment(&errors));
    }
    cfg.flows = state
        .all("/v1.0/flows", 20)
        .await
        .into_iter()
        .filter_map(|v| serde_json::from_value::<Flow>(v).ok())
        .filter(|f| f.id != flow.id)
        .collect();
    // The engine is synchronous and bounded by the guards; run it off the async workers.
    let result = tokio::task::spawn_blocking(move || {
        let mut fetch = |request: &FetchRequest| -> Result<Vec<Action>, String> {
            match request {
                FetchRequest::FetchFlow { flow_id } => {
                    Err(format!("flow {flow_id} is not stored on the gateway"))
                }
                FetchRequest::Fetch { url, .. } => Err(format!(
                    "the dry run does not request {url} from the gateway; test fetches with `flowgate flow run --fetch`"
                )),
            }
        };
        dry_run(&flow, &cfg, &mut fetch)
    })
    .await;
    match result {
        Ok(Ok(report)) => html(pages::trace_fragment(&report)),
        Ok(Err(e)) => html(pages::messages_fragment(&[e.to_string()])),
        Err(e) => html(pages::messages_fragment(&[format!(
            "the dry run failed: {e}"
        )])),
    }
}
