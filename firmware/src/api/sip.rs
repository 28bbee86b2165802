//! `GET /v1.0/gateway/sip`: the SIP user agent as an installer checks it — where it
//! listens, each trunk's registration state, the extensions registered to its registrar,
//! and the calls it holds. Changes also arrive as `sip_updated` events.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::ApiState;
use super::error::ApiError;

/// `GET /v1.0/gateway/sip`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct SipStatus {
    /// The line id of SIP calls (`line_id` of their call records).
    line_id: String,
    /// The UDP address the user agent listens on.
    udp: String,
    /// The TCP address, when TCP is on.
    tcp: Option<String>,
    /// Each trunk's registration state.
    trunks: Vec<TrunkStatus>,
    /// Extensions with a live registration.
    extensions: Vec<ExtensionStatus>,
    /// Calls the user agent holds now.
    calls: usize,
}

/// One trunk.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct TrunkStatus {
    /// The trunk's name (`[[sip.trunks]] name`).
    name: String,
    /// `{state: unregistered|registering|registered|failed, ...}`: `expires_secs` when
    /// registered; the last status and the retry delay when failed. Trunks that do not
    /// register (IP-authenticated peers) stay `unregistered`.
    #[schema(value_type = Object)]
    registration: flowgate_sip::ua::RegState,
}

/// One registered extension.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct ExtensionStatus {
    /// The extension.
    user: String,
    /// Its bindings: contact URI and seconds left.
    contacts: Vec<ContactStatus>,
}

/// One binding of an extension.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct ContactStatus {
    /// Contact URI.
    uri: String,
    /// Seconds until it expires.
    expires_secs: u32,
}

/// The SIP user agent: trunks, registered extensions, calls.
#[utoipa::path(get, path = "/v1.0/gateway/sip", tag = "gateway",
    responses((status = 200, description = "SIP status", body = SipStatus),
              (status = 503, description = "SIP is disabled (`[sip] enabled = false`)", body = super::error::ErrorBody)))]
pub(super) async fn status(State(state): State<ApiState>) -> Result<Json<SipStatus>, ApiError> {
    let Some(ua) = state.sip() else {
        return Err(ApiError::unavailable(
            "SIP_DISABLED",
            "SIP is disabled on this gateway ([sip] enabled = false)",
        ));
    };
    let status = ua
        .status()
        .await
        .map_err(|e| ApiError::unavailable("SIP_STOPPED", e.to_string()))?;
    Ok(Json(SipStatus {
        line_id: crate::sip::LINE_ID.into(),
        udp: status.udp.to_string(),
        tcp: status.tcp.map(|a| a.to_string()),
        trunks: status
            .trunks
            .into_iter()
            .map(|(name, registration)| TrunkStatus { name, registration })
            .collect(),
        extensions: status
            .extensions
            .into_iter()
            .map(|e| ExtensionStatus {
                user: e.user,
                contacts: e
                    .contacts
                    .into_iter()
                    .map(|(uri, expires_secs)| ContactStatus { uri, expires_secs })
                    .collect(),
            })
            .collect(),
        calls: status.calls,
    }))
}
