//! `/v1.0/gateway/sim/*`: the simulated board's control, when it runs (503 `NO_SIMULATOR`
//! on real hardware). Every route acts on one simulated modem: `?modem=<id>` names it (the
//! board's first simulated modem without it; 404 for an id the board does not simulate). Inject what the network or the far end would do — SMS (text or PDU),
//! incoming calls, DTMF (as the modem's URCs and/or as in-band tones), remote answer, busy
//! and hang-up, USSD replies, caller audio from a WAV — and read back what the gateway did:
//! SMS sent (decoded and raw PDU), numbers dialled, DTMF sent, the audio it sent as a WAV.

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use flowgate_board::simulator::{
    SentSmsRecord, SimulatedCallRecord, SimulatorControl, SimulatorError, UssdCoding, UssdScript,
};
use flowgate_dsp::{DtmfGenConfig, DtmfGenerator};
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::error::{ApiBytes, ApiError, ApiJson, ApiQuery, ErrorBody};
use crate::media::{read_audio_bytes, wav_bytes};

/// The simulator's audio rate.
const SIM_RATE: u32 = 8000;

// Request limits: every value a request turns into work or memory is bounded here and
// documented in the OpenAPI schema (`max_length` & co. below use the same numbers).
/// Digits in one `POST /sim/dtmf` (in-band, 64 digits of 2 s each is at most 4 min of audio).
const MAX_DIGITS: usize = 64;
/// Characters of a phone number (`from`).
const MAX_NUMBER: usize = 32;
/// Characters of an injected SMS text (ten GSM 7-bit parts).
const MAX_SMS_TEXT: usize = 1530;
/// Hex digits of an injected PDU (SMSC field and a 164-byte TPDU).
const MAX_PDU_HEX: usize = 360;
/// Characters of a USSD reply (3GPP TS 23.038: 182 GSM 7-bit characters).
const MAX_USSD_TEXT: usize = 182;

/// 400 `INVALID_BODY` unless `value` has at most `max` characters.
fn at_most(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    let n = value.chars().count();
    if n > max {
        return Err(ApiError::bad_request(
            "INVALID_BODY",
            format!("{field} has {n} characters; at most {max} are allowed"),
        ));
    }
    Ok(())
}

/// A phone number: not blank, at most [`MAX_NUMBER`] characters.
fn number(field: &str, value: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::bad_request(
            "INVALID_BODY",
            format!("{field} must not be empty"),
        ));
    }
    at_most(field, value, MAX_NUMBER)
}

/// `?modem=<id>`: which simulated modem a route acts on.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ModemQuery {
    /// The simulated modem (its id in the board profile); default: the first.
    modem: Option<String>,
}

/// The simulated modem a request acts on (see the module docs).
pub(super) struct Sim {
    id: String,
    control: SimulatorControl,
}

impl std::ops::Deref for Sim {
    type Target = SimulatorControl;
    fn deref(&self) -> &SimulatorControl {
        &self.control
    }
}

impl FromRequestParts<ApiState> for Sim {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        // Only `modem` is read here (other keys are left to a route's own query struct).
        let axum::extract::Query(query) =
            axum::extract::Query::<ModemQuery>::try_from_uri(&parts.uri)?;
        let (id, control) = state.sim(query.modem.as_deref())?;
        Ok(Sim {
            id: id.to_owned(),
            control: control.clone(),
        })
    }
}

impl From<SimulatorError> for ApiError {
    fn from(e: SimulatorError) -> Self {
        let text = e.to_string();
        match e {
            SimulatorError::Invalid(_) => ApiError::bad_request("INVALID_REQUEST", text),
            SimulatorError::NoCall => ApiError::conflict("NO_CALL", text),
            SimulatorError::Timeout(_) | SimulatorError::Io(_) | SimulatorError::Stopped => {
                ApiError::unavailable("SIMULATOR_STOPPED", text)
            }
        }
    }
}

/// `GET /v1.0/gateway/sim`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct SimStatus {
    /// The simulated modem (its id in the board profile).
    modem: String,
    /// Every simulated modem of the board (`?modem=` names one).
    modems: Vec<String>,
    /// The AT port the gateway opens.
    at_path: String,
    /// The serial-PCM voice port.
    pcm_path: String,
    /// The simulated model.
    profile: String,
    /// Every call so far, as the simulator saw it.
    #[schema(value_type = Vec<Object>)]
    calls: Vec<SimulatedCallRecord>,
    /// The voice port is streaming.
    audio_active: bool,
    /// Caller-audio samples still queued.
    audio_queued: usize,
}

/// `POST /v1.0/gateway/sim/sms`: `{from, text}` or `{pdu}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SmsBody {
    /// Sender (with `text`).
    #[serde(default)]
    #[schema(max_length = 32, pattern = r"\S")]
    from: String,
    /// Text (split into a multipart message when long).
    #[schema(max_length = 1530)]
    text: Option<String>,
    /// Or a raw SMS-DELIVER PDU in hex, SMSC field first.
    #[schema(min_length = 2, max_length = 360, pattern = "^([0-9A-Fa-f]{2})+$")]
    pdu: Option<String>,
}

/// PDUs delivered to the gateway.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct Delivered {
    /// The PDUs (hex), one per part.
    pdus: Vec<String>,
}

/// `POST /v1.0/gateway/sim/calls`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CallBody {
    /// Caller number.
    #[schema(min_length = 1, max_length = 32, pattern = r"\S")]
    from: String,
}

/// How injected DTMF reaches the gateway.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum DtmfMode {
    /// As the modem's DTMF URCs (default).
    #[default]
    Urc,
    /// As tones in the caller audio.
    Inband,
    /// Both (a modem that reports URCs and passes the tones).
    Both,
}

/// `POST /v1.0/gateway/sim/dtmf`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DtmfBody {
    /// Digits (`0-9 * # A-D`), at most 64.
    #[schema(min_length = 1, max_length = 64, pattern = "^[0-9*#A-Da-d]+$")]
    digits: String,
    /// `urc` (default), `inband` or `both`.
    #[serde(default)]
    mode: DtmfMode,
    /// In-band level of each tone, dBm0 (−60 to 0; default −10).
    #[serde(default = "default_level")]
    #[schema(minimum = -60, maximum = 0)]
    level_dbm0: f32,
    /// In-band tone length, ms (10 to 2000; default 100).
    #[serde(default = "default_ms")]
    #[schema(minimum = 10, maximum = 2000)]
    duration_ms: u32,
    /// In-band pause between digits, ms (0 to 2000; default 100).
    #[serde(default = "default_ms")]
    #[schema(minimum = 0, maximum = 2000)]
    gap_ms: u32,
}

fn default_level() -> f32 {
    -10.0
}

fn default_ms() -> u32 {
    100
}

/// `POST /v1.0/gateway/sim/ussd`: the reply to the next USSD request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UssdReplyBody {
    /// Reply text.
    #[schema(max_length = 182)]
    text: String,
    /// `gsm7` (default) or `ucs2`.
    #[serde(default)]
    coding: Option<ReplyCoding>,
    /// `<m>`: 0 done (default), 1 the network waits for an answer, up to 5.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 5)]
    status: u8,
}

/// How a USSD reply is coded.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum ReplyCoding {
    /// GSM 7-bit (the default).
    Gsm7,
    /// UCS-2.
    Ucs2,
}

/// Caller audio dropped.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct AudioCleared {
    /// Samples dropped (8 kHz).
    samples: usize,
}

/// Audio queued from an upload.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct AudioQueued {
    /// Samples queued (8 kHz).
    samples: usize,
    /// Their duration, ms.
    duration_ms: u64,
}

/// `GET /v1.0/gateway/sim/audio` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct RecordedQuery {
    /// Clear the recording after reading it (default false).
    #[serde(default)]
    take: bool,
    /// The simulated modem (see [`ModemQuery`]).
    #[serde(default)]
    #[allow(dead_code, reason = "read by the `Sim` extractor")]
    modem: Option<String>,
}

/// One whole message the gateway sent.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct SentMessage {
    /// Recipient.
    to: String,
    /// Text, parts joined.
    text: String,
}

/// `GET /v1.0/gateway/sim/sent`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct Sent {
    /// Every SMS part: `{mr, to, text, pdu, tpdu_len, status_report, concat}`.
    #[schema(value_type = Vec<Object>)]
    sms: Vec<SentSmsRecord>,
    /// Whole messages, parts joined.
    messages: Vec<SentMessage>,
    /// Numbers dialled.
    dialled: Vec<String>,
    /// DTMF digits sent (`AT+VTS`).
    dtmf: String,
}

/// The simulator's state.
#[utoipa::path(get, path = "/v1.0/gateway/sim", tag = "simulator", params(ModemQuery),
    responses(
        (status = 200, description = "The simulator", body = SimStatus),
        (status = 503, description = "`NO_SIMULATOR`", body = ErrorBody),
    ))]
pub(super) async fn status(
    axum::extract::State(state): axum::extract::State<ApiState>,
    sim: Sim,
) -> Result<Json<SimStatus>, ApiError> {
    let (audio_active, audio_queued) = sim.view(|v| (v.audio_active(), v.audio_queued()));
    Ok(Json(SimStatus {
        modem: sim.id.clone(),
        modems: state.sim_ids(),
        at_path: sim.at_path().display().to_string(),
        pcm_path: sim.pcm_path().display().to_string(),
        profile: sim.model().vendor_profile_id().to_owned(),
        calls: sim.call_log(),
        audio_active,
        audio_queued,
    }))
}

/// Delivers an SMS to the gateway.
#[utoipa::path(post, path = "/v1.0/gateway/sim/sms", tag = "simulator", params(ModemQuery), request_body = SmsBody,
    responses(
        (status = 200, description = "Delivered", body = Delivered),
        (status = 503, description = "`NO_SIMULATOR`, `SIMULATOR_STOPPED`", body = ErrorBody),
    ))]
pub(super) async fn sms(
    sim: Sim,
    ApiJson(body): ApiJson<SmsBody>,
) -> Result<Json<Delivered>, ApiError> {
    let pdus = match (body.text, body.pdu) {
        (Some(text), None) => {
            number("from", &body.from)?;
            at_most("text", &text, MAX_SMS_TEXT)?;
            sim.send_sms(&body.from, &text)?
        }
        (None, Some(pdu)) => {
            if pdu.is_empty() || pdu.len() % 2 != 0 || !pdu.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(ApiError::bad_request(
                    "INVALID_BODY",
                    "pdu must be hex digits in pairs",
                ));
            }
            at_most("pdu", &pdu, MAX_PDU_HEX)?;
            sim.send_pdu(&pdu)?;
            vec![pdu]
        }
        _ => {
            return Err(ApiError::bad_request(
                "INVALID_BODY",
                "give either text (with from) or pdu",
            ));
        }
    };
    Ok(Json(Delivered { pdus }))
}

/// Rings the gateway from a number.
#[utoipa::path(post, path = "/v1.0/gateway/sim/calls", tag = "simulator", params(ModemQuery), request_body = CallBody,
    responses(
        (status = 204, description = "Ringing"),
        (status = 409, description = "`NO_CALL`", body = ErrorBody),
        (status = 503, description = "`NO_SIMULATOR`, `SIMULATOR_STOPPED`", body = ErrorBody),
    ))]
pub(super) async fn incoming_call(
    sim: Sim,
    ApiJson(body): ApiJson<CallBody>,
) -> Result<StatusCode, ApiError> {
    number("from", &body.from)?;
    sim.incoming_call(&body.from)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's tones: `digits` at the configured level and timing.
fn dtmf_tones(body: &DtmfBody) -> Result<Vec<i16>, ApiError> {
    let bad = |m: String| ApiError::bad_request("INVALID_BODY", m);
    if !(-60.0..=0.0).contains(&body.level_dbm0) {
        return Err(bad(format!(
            "level_dbm0 {} is outside −60..0",
            body.level_dbm0
        )));
    }
    if !(10..=2000).contains(&body.duration_ms) || body.gap_ms > 2000 {
        return Err(bad("duration_ms must be 10..2000 and gap_ms 0..2000".into()));
    }
    let config = DtmfGenConfig {
        low_dbm0: body.level_dbm0,
        high_dbm0: body.level_dbm0,
        on_ms: body.duration_ms,
        off_ms: body.gap_ms,
        ..DtmfGenConfig::new(SIM_RATE)
    };
    let mut generator = DtmfGenerator::new(config).map_err(|e| bad(e.to_string()))?;
    generator
        .queue(&body.digits)
        .map_err(|e| bad(e.to_string()))?;
    let len = usize::try_from(generator.remaining_samples())
        .map_err(|_| bad("too many digits".into()))?;
    let mut samples = vec![0i16; len];
    generator.fill(&mut samples);
    Ok(samples)
}

/// The far end presses keys.
#[utoipa::path(post, path = "/v1.0/gateway/sim/dtmf", tag = "simulator", params(ModemQuery), request_body = DtmfBody,
    responses(
        (status = 204, description = "Sent"),
        (status = 409, description = "`NO_CALL`: no active call", body = ErrorBody),
        (status = 503, description = "`NO_SIMULATOR`, `SIMULATOR_STOPPED`", body = ErrorBody),
    ))]
pub(super) async fn dtmf(
    sim: Sim,
    ApiJson(body): ApiJson<DtmfBody>,
) -> Result<StatusCode, ApiError> {
    if body.digits.is_empty() {
        return Err(ApiError::bad_request(
            "INVALID_BODY",
            "digits must not be empty",
        ));
    }
    // Before anything turns the digits into URCs or audio: the in-band tones of a million
    // digits are gigabytes.
    at_most("digits", &body.digits, MAX_DIGITS)?;
    // Check everything before injecting anything.
    let tones = match body.mode {
        DtmfMode::Urc => None,
        DtmfMode::Inband | DtmfMode::Both => Some(dtmf_tones(&body)?),
    };
    if matches!(body.mode, DtmfMode::Urc | DtmfMode::Both) {
        sim.dtmf(&body.digits)?;
    }
    if let Some(tones) = tones {
        sim.queue_audio(&tones)?;
    }
    Ok(StatusCode::NO_CONTENT)
}

fn remote(
    sim: &Sim,
    f: impl FnOnce(&SimulatorControl) -> Result<(), SimulatorError>,
) -> Result<StatusCode, ApiError> {
    f(sim)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The far end hangs up the most recent call (or stops ringing).
#[utoipa::path(post, path = "/v1.0/gateway/sim/hangup", tag = "simulator", params(ModemQuery),
    responses(
        (status = 204, description = "Hung up"),
        (status = 409, description = "`NO_CALL`", body = ErrorBody),
        (status = 503, description = "`NO_SIMULATOR`, `SIMULATOR_STOPPED`", body = ErrorBody),
    ))]
pub(super) async fn hangup(sim: Sim) -> Result<StatusCode, ApiError> {
    remote(&sim, SimulatorControl::remote_hangup)
}

/// The far end answers the gateway's outgoing call (numbers with the `manual` dial outcome).
#[utoipa::path(post, path = "/v1.0/gateway/sim/answer", tag = "simulator", params(ModemQuery),
    responses(
        (status = 204, description = "Answered"),
        (status = 409, description = "`NO_CALL`", body = ErrorBody),
        (status = 503, description = "`NO_SIMULATOR`, `SIMULATOR_STOPPED`", body = ErrorBody),
    ))]
pub(super) async fn answer(sim: Sim) -> Result<StatusCode, ApiError> {
    remote(&sim, SimulatorControl::remote_answer)
}

/// The far end is busy.
#[utoipa::path(post, path = "/v1.0/gateway/sim/busy", tag = "simulator", params(ModemQuery),
    responses(
        (status = 204, description = "Busy"),
        (status = 409, description = "`NO_CALL`", body = ErrorBody),
        (status = 503, description = "`NO_SIMULATOR`, `SIMULATOR_STOPPED`", body = ErrorBody),
    ))]
pub(super) async fn busy(sim: Sim) -> Result<StatusCode, ApiError> {
    remote(&sim, SimulatorControl::remote_busy)
}

/// Queues the network's reply to the next USSD request.
#[utoipa::path(post, path = "/v1.0/gateway/sim/ussd", tag = "simulator", params(ModemQuery), request_body = UssdReplyBody,
    responses(
        (status = 204, description = "Queued"),
        (status = 503, description = "`NO_SIMULATOR`, `SIMULATOR_STOPPED`", body = ErrorBody),
    ))]
pub(super) async fn ussd_reply(
    sim: Sim,
    ApiJson(body): ApiJson<UssdReplyBody>,
) -> Result<StatusCode, ApiError> {
    let coding = match body.coding {
        None | Some(ReplyCoding::Gsm7) => UssdCoding::Gsm7,
        Some(ReplyCoding::Ucs2) => UssdCoding::Ucs2,
    };
    at_most("text", &body.text, MAX_USSD_TEXT)?;
    if body.status > 5 {
        return Err(ApiError::bad_request("INVALID_BODY", "status is 0 to 5"));
    }
    let mut script = UssdScript::new(body.text, coding);
    script.status = body.status;
    sim.queue_ussd_reply(script)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Queues caller audio from an upload: WAV (any rate, mono or stereo, integer or float
/// PCM) or another format the media layer decodes; resampled to 8 kHz.
#[utoipa::path(post, path = "/v1.0/gateway/sim/audio", tag = "simulator", params(ModemQuery),
    request_body(content = Vec<u8>, content_type = "audio/wav", description = "A WAV file"),
    responses(
        (status = 200, description = "Queued", body = AudioQueued),
        (status = 503, description = "`NO_SIMULATOR`, `SIMULATOR_STOPPED`", body = ErrorBody),
    ))]
pub(super) async fn queue_audio(
    sim: Sim,
    ApiBytes(body): ApiBytes,
) -> Result<Json<AudioQueued>, ApiError> {
    let samples = read_audio_bytes(&body, SIM_RATE)
        .map_err(|e| ApiError::bad_request("INVALID_AUDIO", e.to_string()))?;
    sim.queue_audio(&samples)?;
    let duration_ms = u64::try_from(samples.len())
        .unwrap_or(u64::MAX)
        .saturating_mul(1000)
        / u64::from(SIM_RATE);
    Ok(Json(AudioQueued {
        samples: samples.len(),
        duration_ms,
    }))
}

/// Drops the caller audio not yet played (the simulator also drops it when a call ends, so
/// it never plays into the next call).
#[utoipa::path(delete, path = "/v1.0/gateway/sim/audio", tag = "simulator", params(ModemQuery),
    responses(
        (status = 200, description = "Dropped", body = AudioCleared),
        (status = 503, description = "`NO_SIMULATOR`", body = ErrorBody),
    ))]
pub(super) async fn clear_audio(sim: Sim) -> Json<AudioCleared> {
    Json(AudioCleared {
        samples: sim.clear_audio(),
    })
}

/// The audio the gateway sent on the voice port, as WAV (8 kHz mono 16-bit).
#[utoipa::path(get, path = "/v1.0/gateway/sim/audio", tag = "simulator", params(RecordedQuery),
    responses(
        (status = 200, description = "WAV", content_type = "audio/wav", body = Vec<u8>),
        (status = 503, description = "`NO_SIMULATOR`", body = ErrorBody),
    ))]
pub(super) async fn recorded_audio(
    sim: Sim,
    ApiQuery(q): ApiQuery<RecordedQuery>,
) -> Result<Response, ApiError> {
    let samples = if q.take {
        sim.take_recorded_audio()
    } else {
        sim.recorded_audio()
    };
    let wav =
        wav_bytes(&samples, SIM_RATE).map_err(|e| ApiError::internal("encoding the WAV", &e))?;
    Ok(([(header::CONTENT_TYPE, "audio/wav")], wav).into_response())
}

/// What the gateway sent: SMS (decoded and raw), numbers dialled, DTMF.
#[utoipa::path(get, path = "/v1.0/gateway/sim/sent", tag = "simulator", params(ModemQuery),
    responses(
        (status = 200, description = "What the gateway sent", body = Sent),
        (status = 503, description = "`NO_SIMULATOR`", body = ErrorBody),
    ))]
pub(super) async fn sent(sim: Sim) -> Result<Json<Sent>, ApiError> {
    Ok(Json(Sent {
        sms: sim.sent_sms(),
        messages: sim
            .sent_messages()
            .into_iter()
            .map(|(to, text)| SentMessage { to, text })
            .collect(),
        dialled: sim.dialled(),
        dtmf: sim.dtmf_sent(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inband_dtmf_has_the_requested_length() {
        let body = DtmfBody {
            digits: "12".into(),
            mode: DtmfMode::Inband,
            level_dbm0: -10.0,
            duration_ms: 50,
            gap_ms: 50,
        };
        // Two 50 ms tones and one 50 ms pause at 8 kHz.
        assert_eq!(dtmf_tones(&body).unwrap().len(), 1200);
        let bad = DtmfBody {
            digits: "1x".into(),
            ..body
        };
        assert_eq!(dtmf_tones(&bad).unwrap_err().status(), 400);
    }
}
