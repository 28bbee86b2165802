//! `/v1.0/gateway/sim/analog/*`: the simulated analog board's control, the analog twin of the
//! modem simulator (503 `NO_SIMULATOR` when no analog port is simulated). The user at the
//! telephone on the FXS port lifts the handset, dials (DTMF or rotary pulses), flashes the
//! hook and hangs up;
//! the network behind the FXO port's exchange line rings the gateway with caller ID, answers
//! the gateway's calls and hangs up. `GET` reads back what the phone and the exchange saw.

use axum::Json;
use axum::extract::State;
use flowgate_analog::cid::{Absence, CallerId};
use flowgate_analog::country::CidSignalling;
use flowgate_analog::sim::{AnalogSimControl, DialMethod, ExchangeEvent, ExchangeState};
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::error::{ApiError, ApiJson, ErrorBody};

fn control(state: &ApiState) -> Result<AnalogSimControl, ApiError> {
    state.analog().sim().cloned().ok_or_else(|| {
        ApiError::unavailable(
            "NO_SIMULATOR",
            "the gateway has no simulated analog port; the analog simulator API is not available",
        )
    })
}

/// A caller ID as the phone displayed it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct ShownCallerId {
    /// Number (empty when withheld).
    number: String,
    /// Name (empty when none).
    name: String,
    /// `private` or `unavailable` when the number was withheld.
    #[serde(skip_serializing_if = "Option::is_none")]
    absent: Option<&'static str>,
    /// `MM-DD hh:mm` when sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    datetime: Option<String>,
}

fn shown(c: &CallerId) -> ShownCallerId {
    ShownCallerId {
        number: c.number.as_deref().unwrap_or_default().to_owned(),
        name: c.name.as_deref().unwrap_or_default().to_owned(),
        absent: c.number_absent.map(|a| match a {
            Absence::Private => "private",
            Absence::Unavailable => "unavailable",
        }),
        datetime: c
            .datetime
            .map(|d| format!("{:02}-{:02} {:02}:{:02}", d.month, d.day, d.hour, d.minute)),
    }
}

/// The telephone on the FXS port.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct PhoneView {
    /// The handset is lifted.
    off_hook: bool,
    /// The phone rings now.
    ringing: bool,
    /// Ring bursts so far.
    rings: usize,
    /// Caller IDs the phone displayed, oldest first.
    caller_ids: Vec<ShownCallerId>,
}

/// The exchange line on the FXO port.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct ExchangeView {
    /// `idle`, `ringing` (the gateway), `dial_tone`, `collecting` (the gateway's digits),
    /// `calling` (the far end rings), `connected`, `far_end_gone`.
    state: &'static str,
    /// Numbers the gateway dialled.
    dialled: Vec<String>,
    /// What the gateway did on the line: `answered`, `dialled`, `hung_up`, `flash`.
    events: Vec<&'static str>,
}

/// `GET /v1.0/gateway/sim/analog`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct AnalogSimStatus {
    /// The phone.
    phone: PhoneView,
    /// The exchange line.
    exchange: ExchangeView,
}

fn status(ctl: &AnalogSimControl) -> AnalogSimStatus {
    let state = match ctl.exchange_state() {
        ExchangeState::Idle => "idle",
        ExchangeState::Ringing { .. } => "ringing",
        ExchangeState::DialTone => "dial_tone",
        ExchangeState::Collecting { .. } => "collecting",
        ExchangeState::Calling { .. } => "calling",
        ExchangeState::Connected => "connected",
        ExchangeState::FarEndGone { .. } => "far_end_gone",
    };
    AnalogSimStatus {
        phone: PhoneView {
            off_hook: ctl.phone_off_hook(),
            ringing: ctl.phone_ringing(),
            rings: ctl.phone_rings().len(),
            caller_ids: ctl.phone_caller_ids().iter().map(shown).collect(),
        },
        exchange: ExchangeView {
            state,
            dialled: ctl.dialled(),
            events: ctl
                .exchange_events()
                .iter()
                .map(|e| match e {
                    ExchangeEvent::GatewayAnswered => "answered",
                    ExchangeEvent::Dialled(_) => "dialled",
                    ExchangeEvent::GatewayHungUp => "hung_up",
                    ExchangeEvent::GatewayFlash => "flash",
                })
                .collect(),
        },
    }
}

#[utoipa::path(get, path = "/v1.0/gateway/sim/analog", tag = "simulator",
    responses(
        (status = 200, description = "What the simulated phone and exchange line see", body = AnalogSimStatus),
        (status = 503, description = "No simulated analog port (`NO_SIMULATOR`)", body = ErrorBody),
    ))]
pub(super) async fn get_status(
    State(state): State<ApiState>,
) -> Result<Json<AnalogSimStatus>, ApiError> {
    Ok(Json(status(&control(&state)?)))
}

#[utoipa::path(post, path = "/v1.0/gateway/sim/analog/phone/lift", tag = "simulator",
    responses(
        (status = 200, description = "The handset is lifted (after any dialling still going on)", body = AnalogSimStatus),
        (status = 503, description = "No simulated analog port (`NO_SIMULATOR`)", body = ErrorBody),
    ))]
pub(super) async fn lift(State(state): State<ApiState>) -> Result<Json<AnalogSimStatus>, ApiError> {
    let ctl = control(&state)?;
    ctl.lift_handset();
    Ok(Json(status(&ctl)))
}

#[utoipa::path(post, path = "/v1.0/gateway/sim/analog/phone/hangup", tag = "simulator",
    responses(
        (status = 200, description = "The handset is replaced (after any dialling still going on)", body = AnalogSimStatus),
        (status = 503, description = "No simulated analog port (`NO_SIMULATOR`)", body = ErrorBody),
    ))]
pub(super) async fn replace(
    State(state): State<ApiState>,
) -> Result<Json<AnalogSimStatus>, ApiError> {
    let ctl = control(&state)?;
    ctl.hang_up();
    Ok(Json(status(&ctl)))
}

/// `POST /v1.0/gateway/sim/analog/phone/flash`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FlashBody {
    /// How long the hook stays down, ms (default 400; the gateway's `[analog] flash_min_ms`
    /// to `flash_max_ms` is a flash, longer a hang-up).
    #[serde(default)]
    ms: Option<u64>,
}

#[utoipa::path(post, path = "/v1.0/gateway/sim/analog/phone/flash", tag = "simulator",
    request_body = FlashBody,
    responses(
        (status = 200, description = "The hook is pressed for `ms` (after any dialling still going on): in a call, a flash holds it or takes it back", body = AnalogSimStatus),
        (status = 400, description = "`ms` outside 10-3000 (`INVALID_REQUEST`)", body = ErrorBody),
        (status = 503, description = "No simulated analog port (`NO_SIMULATOR`)", body = ErrorBody),
    ))]
pub(super) async fn flash(
    State(state): State<ApiState>,
    ApiJson(body): ApiJson<FlashBody>,
) -> Result<Json<AnalogSimStatus>, ApiError> {
    let ctl = control(&state)?;
    let ms = body.ms.unwrap_or(400);
    if !(10..=3000).contains(&ms) {
        return Err(ApiError::bad_request(
            "INVALID_REQUEST",
            "ms must be between 10 and 3000",
        ));
    }
    ctl.flash(ms);
    Ok(Json(status(&ctl)))
}

/// `POST /v1.0/gateway/sim/analog/phone/dial`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DialBody {
    /// Digits: `0-9*#A-D` for DTMF, `0-9` for pulses.
    digits: String,
    /// `dtmf` (default) or `pulse` (rotary, 10 pulses per second).
    #[serde(default)]
    method: Option<String>,
}

#[utoipa::path(post, path = "/v1.0/gateway/sim/analog/phone/dial", tag = "simulator",
    request_body = DialBody,
    responses(
        (status = 200, description = "The digits are queued on the phone (dialled one after another)", body = AnalogSimStatus),
        (status = 400, description = "Not digits of the method (`INVALID_REQUEST`)", body = ErrorBody),
        (status = 503, description = "No simulated analog port (`NO_SIMULATOR`)", body = ErrorBody),
    ))]
pub(super) async fn dial(
    State(state): State<ApiState>,
    ApiJson(body): ApiJson<DialBody>,
) -> Result<Json<AnalogSimStatus>, ApiError> {
    let ctl = control(&state)?;
    let method = match body.method.as_deref() {
        None | Some("dtmf") => DialMethod::Dtmf,
        Some("pulse") => DialMethod::Pulse,
        Some(other) => {
            return Err(ApiError::bad_request(
                "INVALID_REQUEST",
                format!("method {other:?} is not dtmf or pulse"),
            ));
        }
    };
    if body.digits.is_empty() || body.digits.len() > 32 {
        return Err(ApiError::bad_request(
            "INVALID_REQUEST",
            "digits must be 1-32 characters",
        ));
    }
    ctl.dial(&body.digits, method)
        .map_err(|e| ApiError::bad_request("INVALID_REQUEST", e))?;
    Ok(Json(status(&ctl)))
}

/// `POST /v1.0/gateway/sim/analog/line/ring`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RingBody {
    /// The caller's number (caller ID); empty or absent with `withheld` for none.
    #[serde(default)]
    number: String,
    /// The caller's name.
    #[serde(default)]
    name: String,
    /// Send "private" instead of a number.
    #[serde(default)]
    withheld: bool,
    /// How the exchange sends the caller ID: `bell` (default; FSK between rings 1 and 2),
    /// `etsi_pre_ring`, `etsi_after_ring`, `dtmf`, or `none`.
    #[serde(default)]
    signalling: Option<String>,
}

#[utoipa::path(post, path = "/v1.0/gateway/sim/analog/line/ring", tag = "simulator",
    request_body = RingBody,
    responses(
        (status = 200, description = "The exchange rings the FXO port", body = AnalogSimStatus),
        (status = 400, description = "Bad signalling or caller ID (`INVALID_REQUEST`)", body = ErrorBody),
        (status = 409, description = "The exchange line is busy (`LINE_BUSY`)", body = ErrorBody),
        (status = 503, description = "No simulated analog port (`NO_SIMULATOR`)", body = ErrorBody),
    ))]
pub(super) async fn ring(
    State(state): State<ApiState>,
    ApiJson(body): ApiJson<RingBody>,
) -> Result<Json<AnalogSimStatus>, ApiError> {
    let ctl = control(&state)?;
    let signalling = match body.signalling.as_deref() {
        None | Some("bell") => Some(CidSignalling::Bell),
        Some("etsi_pre_ring") => Some(CidSignalling::EtsiPreRing),
        Some("etsi_after_ring") => Some(CidSignalling::EtsiAfterRing),
        Some("dtmf") => Some(CidSignalling::Dtmf),
        Some("none") => None,
        Some(other) => {
            return Err(ApiError::bad_request(
                "INVALID_REQUEST",
                format!(
                    "signalling {other:?} is not bell, etsi_pre_ring, etsi_after_ring, dtmf or none"
                ),
            ));
        }
    };
    if body.number.len() > 20 || body.name.len() > 50 {
        return Err(ApiError::bad_request(
            "INVALID_REQUEST",
            "caller ID: number up to 20, name up to 50 characters",
        ));
    }
    let caller = if body.withheld {
        Some(CallerId::absent(Absence::Private))
    } else if body.number.is_empty() && body.name.is_empty() {
        None
    } else {
        let name = Some(body.name.as_str()).filter(|n| !n.is_empty());
        Some(CallerId::new(&body.number, name))
    };
    let (caller, signalling) = match signalling {
        Some(s) => (caller, s),
        None => (None, CidSignalling::Bell),
    };
    ctl.ring_line(caller.as_ref(), signalling)
        .map_err(|e| ApiError::conflict("LINE_BUSY", e))?;
    Ok(Json(status(&ctl)))
}

#[utoipa::path(post, path = "/v1.0/gateway/sim/analog/line/answer", tag = "simulator",
    responses(
        (status = 200, description = "The far end answers the gateway's outgoing call", body = AnalogSimStatus),
        (status = 409, description = "No outgoing call rings (`NO_CALL`)", body = ErrorBody),
        (status = 503, description = "No simulated analog port (`NO_SIMULATOR`)", body = ErrorBody),
    ))]
pub(super) async fn line_answer(
    State(state): State<ApiState>,
) -> Result<Json<AnalogSimStatus>, ApiError> {
    let ctl = control(&state)?;
    ctl.answer_line()
        .map_err(|e| ApiError::conflict("NO_CALL", e))?;
    Ok(Json(status(&ctl)))
}

#[utoipa::path(post, path = "/v1.0/gateway/sim/analog/line/hangup", tag = "simulator",
    responses(
        (status = 200, description = "The far end hangs up (or the caller gives up while it rings)", body = AnalogSimStatus),
        (status = 409, description = "No call on the line (`NO_CALL`)", body = ErrorBody),
        (status = 503, description = "No simulated analog port (`NO_SIMULATOR`)", body = ErrorBody),
    ))]
pub(super) async fn line_hangup(
    State(state): State<ApiState>,
) -> Result<Json<AnalogSimStatus>, ApiError> {
    let ctl = control(&state)?;
    ctl.hang_up_line()
        .map_err(|e| ApiError::conflict("NO_CALL", e))?;
    Ok(Json(status(&ctl)))
}
