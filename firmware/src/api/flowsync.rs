//! `/v1.0/gateway/sync/flows`: the whole flow set at once, for controllers. `GET` exports
//! `{revision, flows}` with the revision as `ETag`; `PUT` with `If-Match: <revision>` replaces
//! the set atomically (validated first, all or nothing), or answers 412 when someone changed
//! a flow since (every flow CRUD moves the revision too). A set that would drop a flow a
//! number binding or queue uses is refused with 409 `FLOW_IN_USE`, the bindings listed.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use flowgate_flows::model::Flow;
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::error::{ApiError, ApiJson, ErrorBody};
use super::schema::FlowDoc;
use crate::sync::flowset::{FlowSet, ImportSummary};

/// The exported set.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct FlowSetExport {
    /// The set's revision (also the `ETag`).
    revision: u64,
    /// Every flow.
    #[schema(value_type = Vec<FlowDoc>)]
    flows: Vec<Flow>,
}

/// The set to import.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(super) struct FlowSetImport {
    /// The complete new set; every flow with its `id`.
    #[schema(value_type = Vec<FlowDoc>)]
    flows: Vec<serde_json::Value>,
}

fn etag(revision: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{revision}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

/// What `If-Match` asks for: `None` for `*` (any revision), else the revision.
fn expected_revision(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Err(ApiError::precondition_required(
            "send If-Match with the revision you exported (the ETag of GET /v1.0/gateway/sync/flows), or * to overwrite",
        ));
    };
    let text = value.to_str().unwrap_or("").trim();
    if text == "*" {
        return Ok(None);
    }
    let tag = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    tag.parse::<u64>().map(Some).map_err(|_| {
        ApiError::precondition_failed(format!(
            "If-Match {text:?} is not a revision of this flow set"
        ))
    })
}

/// Exports the whole flow set with its revision.
#[utoipa::path(get, path = "/v1.0/gateway/sync/flows", tag = "sync",
    responses((status = 200, description = "The flow set", body = FlowSetExport,
        headers(("ETag" = String, description = "The revision, quoted")))))]
pub(super) async fn export(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let (revision, flows) = state.flows().export()?;
    let mut response = Json(FlowSetExport { revision, flows }).into_response();
    response.headers_mut().insert(header::ETAG, etag(revision));
    Ok(response)
}

/// Replaces the whole flow set atomically if it is still at the `If-Match` revision.
#[utoipa::path(put, path = "/v1.0/gateway/sync/flows", tag = "sync", request_body = FlowSetImport,
    params(("If-Match" = Option<String>, Header, description = "The revision the set is based on (quoted or bare), or `*`")),
    responses(
        (status = 200, description = "Imported; the new revision is the ETag", body = ImportSummary,
            headers(("ETag" = String, description = "The new revision, quoted"))),
        (status = 409, description = "`FLOW_IN_USE`: numbers or queues use flows the set lacks; `TOO_MANY_FLOWS`", body = ErrorBody),
        (status = 412, description = "`REVISION_MISMATCH`: the set changed since that revision", body = ErrorBody),
        (status = 428, description = "`PRECONDITION_REQUIRED`: If-Match is missing", body = ErrorBody),
    ))]
pub(super) async fn import(
    State(state): State<ApiState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<FlowSetImport>,
) -> Result<Response, ApiError> {
    // The body first: a bad body is 400 whatever the header says.
    let flows = FlowSet::parse_set(body.flows, &state.validate_options())?;
    let expected = expected_revision(&headers)?;
    let summary = state.flows().import(expected, flows)?;
    state.runtime().db().store.flush().await?;
    let mut response = Json(summary).into_response();
    response
        .headers_mut()
        .insert(header::ETAG, etag(summary.revision));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::IF_MATCH, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn if_match_forms() {
        assert_eq!(expected_revision(&headers("\"7\"")).unwrap(), Some(7));
        assert_eq!(expected_revision(&headers("7")).unwrap(), Some(7));
        assert_eq!(expected_revision(&headers("W/\"7\"")).unwrap(), Some(7));
        assert_eq!(expected_revision(&headers("*")).unwrap(), None);
        assert_eq!(
            expected_revision(&headers("\"x\"")).unwrap_err().status(),
            412
        );
        assert_eq!(
            expected_revision(&HeaderMap::new()).unwrap_err().status(),
            428
        );
    }
}
