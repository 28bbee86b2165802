//! The gateway's records, in VoIPBIN's public JSON shapes: numbers (flow bindings), calls,
//! messages and recordings. Stored in sled as JSON and served by the API as they are.
//!
//! Fields VoIPBIN has and the gateway cannot fill (customer ids, billing) are left out;
//! gateway-only fields (the line, delivery attempts) are added with `#[serde(default)]`
//! so records from older builds keep parsing. The stored model owns its types: nothing a
//! driver defines is written to sled (a driver change must never change the database).

use chrono::{DateTime, Utc};
use flowgate_flows::model::Address;
use flowgate_line::{EndCause, Transport};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Serde helper: VoIPBIN writes "no id" as the nil UUID; we read nil as `None` and write
/// `None` as the nil UUID so VoIPBIN clients see what they expect.
pub mod nil_uuid {
    use serde::{Deserialize, Deserializer, Serializer};
    use uuid::Uuid;

    /// Serializes `None` as the nil UUID.
    pub fn serialize<S: Serializer>(v: &Option<Uuid>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.unwrap_or_else(Uuid::nil).to_string())
    }

    /// Reads null, "" and the nil UUID as `None`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Uuid>, D::Error> {
        let raw: Option<String> = Option::deserialize(d)?;
        match raw.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(text) => {
                let id = Uuid::parse_str(text).map_err(serde::de::Error::custom)?;
                Ok((!id.is_nil()).then_some(id))
            }
        }
    }
}

/// A telephone number the gateway answers for, and the flows bound to it
/// (VoIPBIN's `call_flow_id` / `message_flow_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Number {
    /// Record id.
    pub id: Uuid,
    /// The number in E.164 (`+15551234567`), or empty when the binding is by line.
    #[serde(default)]
    pub number: String,
    /// Bind by line instead of (or as well as) by number: the line's id (a modem in the
    /// board profile, an FXS port, a SIP trunk). Useful when the SIM does not know its own
    /// number.
    #[serde(default)]
    pub line_id: String,
    /// The same as `line_id` when the line is a modem (read by clients written before
    /// lines; accepted in requests as another name for `line_id`).
    #[serde(default)]
    pub modem_id: String,
    /// Flow started for incoming calls.
    #[serde(default, with = "nil_uuid")]
    #[schema(value_type = Option<Uuid>)]
    pub call_flow_id: Option<Uuid>,
    /// Flow started for incoming messages.
    #[serde(default, with = "nil_uuid")]
    #[schema(value_type = Option<Uuid>)]
    pub message_flow_id: Option<Uuid>,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub detail: String,
    /// Always `active` on the gateway.
    #[serde(default = "active")]
    pub status: String,
    /// Created.
    pub tm_create: DateTime<Utc>,
    /// Last changed.
    pub tm_update: DateTime<Utc>,
}

fn active() -> String {
    "active".into()
}

fn modem_transport() -> Transport {
    Transport::Modem
}

impl Number {
    /// A new binding of nothing yet (no number, line or flow), active, created `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            id: Uuid::now_v7(),
            number: String::new(),
            line_id: String::new(),
            modem_id: String::new(),
            call_flow_id: None,
            message_flow_id: None,
            name: String::new(),
            detail: String::new(),
            status: active(),
            tm_create: now,
            tm_update: now,
        }
    }

    /// Whether this binding applies to a call or message on line `line_id` for `target`.
    pub fn matches(&self, line_id: &str, target: &str) -> bool {
        (!self.number.is_empty() && same_number(&self.number, target))
            || (!self.line_id.is_empty() && self.line_id == line_id)
    }

    /// Makes `line_id` and `modem_id` agree: a request may name the line by either (the
    /// older name wins only when the newer is absent). `modem` tells whether the line is
    /// a modem (then `modem_id` repeats it for older clients).
    pub fn settle_line(&mut self, modem: impl Fn(&str) -> bool) {
        if self.line_id.is_empty() {
            self.line_id = std::mem::take(&mut self.modem_id);
        }
        self.modem_id = if modem(&self.line_id) {
            self.line_id.clone()
        } else {
            String::new()
        };
    }
}

/// Compares two phone numbers ignoring formatting (spaces, dashes, a leading `+`).
pub fn same_number(a: &str, b: &str) -> bool {
    let digits = |s: &str| {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '*' || *c == '#')
            .collect::<String>()
    };
    let (a, b) = (digits(a), digits(b));
    !a.is_empty() && a == b
}

/// Call direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallDirection {
    /// The far end called us.
    Incoming,
    /// We dialled.
    Outgoing,
}

/// Call status, VoIPBIN's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// Outgoing: dial sent, not alerting yet.
    Dialing,
    /// Alerting (incoming: ringing here; outgoing: ringing there).
    Ringing,
    /// Answered, media flowing.
    Progressing,
    /// Hang-up in progress.
    Terminating,
    /// Outgoing call being cancelled before answer.
    Canceling,
    /// Over.
    Hangup,
}

impl CallStatus {
    /// VoIPBIN's name, as `condition_call_status` compares it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dialing => "dialing",
            Self::Ringing => "ringing",
            Self::Progressing => "progressing",
            Self::Terminating => "terminating",
            Self::Canceling => "canceling",
            Self::Hangup => "hangup",
        }
    }
}

/// A phone call on one of the gateway's lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Call {
    /// Record id (the leg's id).
    pub id: Uuid,
    /// The line carrying the call (a modem, an analog port, a SIP trunk).
    #[serde(default)]
    pub line_id: String,
    /// What kind of line: `modem`, `sip`, `fxs` or `fxo`.
    #[serde(default = "modem_transport")]
    #[schema(value_type = String)]
    pub transport: Transport,
    /// The modem carrying the call, when the line is a modem (`line_id` again; kept for
    /// clients written before lines).
    #[serde(default)]
    pub modem_id: String,
    /// `incoming` or `outgoing`.
    pub direction: CallDirection,
    /// Caller.
    #[schema(value_type = Object)]
    pub source: Address,
    /// Callee.
    #[schema(value_type = Object)]
    pub destination: Address,
    /// Current status.
    pub status: CallStatus,
    /// Flow attached to the call.
    #[serde(default, with = "nil_uuid")]
    #[schema(value_type = Option<Uuid>)]
    pub flow_id: Option<Uuid>,
    /// Activeflow running on the call.
    #[serde(default, with = "nil_uuid")]
    #[schema(value_type = Option<Uuid>)]
    pub activeflow_id: Option<Uuid>,
    /// The call that created this one (the `call` action or a transfer).
    #[serde(default, with = "nil_uuid")]
    #[schema(value_type = Option<Uuid>)]
    pub master_call_id: Option<Uuid>,
    /// Calls created by this one.
    #[serde(default)]
    pub chained_call_ids: Vec<Uuid>,
    /// The recording in progress.
    #[serde(default, with = "nil_uuid")]
    #[schema(value_type = Option<Uuid>)]
    pub recording_id: Option<Uuid>,
    /// Every recording made on the call.
    #[serde(default)]
    pub recording_ids: Vec<Uuid>,
    /// `remote` or `local` once hung up.
    #[serde(default)]
    pub hangup_by: String,
    /// `normal`, `busy`, `noanswer`, `failed`, … once hung up.
    #[serde(default)]
    pub hangup_reason: String,
    /// How the line ended the call: the neutral cause, its Q.850 value and the line's own
    /// report (`NO CARRIER`, a SIP status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub end_cause: Option<EndCause>,
    /// On hold (music on hold playing).
    #[serde(default)]
    pub hold: bool,
    /// Muted direction: "", `in`, `out` or `both`.
    #[serde(default)]
    pub mute_direction: String,
    /// The signalling's call identity on lines that have one (SIP `Call-ID`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sip_call_id: String,
    /// The far end's address on lines that have one (SIP: the Request-URI called, the
    /// caller's `From` URI).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote_uri: String,
    /// Created.
    pub tm_create: DateTime<Utc>,
    /// Started ringing.
    #[serde(default)]
    pub tm_ringing: Option<DateTime<Utc>>,
    /// Answered.
    #[serde(default)]
    pub tm_progressing: Option<DateTime<Utc>>,
    /// Hung up.
    #[serde(default)]
    pub tm_hangup: Option<DateTime<Utc>>,
    /// Last changed.
    pub tm_update: DateTime<Utc>,
}

/// Message direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageDirection {
    /// Received by the gateway.
    Inbound,
    /// Sent by the gateway.
    Outbound,
}

/// Delivery status of one message target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetStatus {
    /// Waiting to be sent (or to be retried).
    Queued,
    /// Every part accepted by the modem / network.
    Sent,
    /// The network reported delivery of every part.
    Delivered,
    /// Gave up, or the network reported a permanent error.
    Failed,
    /// An inbound message, stored.
    Received,
}

/// One destination of a message and its delivery state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MessageTarget {
    /// Where the message goes (or, inbound, our number).
    #[schema(value_type = Object)]
    pub destination: Address,
    /// Delivery status.
    pub status: TargetStatus,
    /// SMS parts.
    #[serde(default)]
    pub parts: u32,
    /// Message references the modem returned, one per part (status reports match them).
    #[serde(default)]
    pub references: Vec<u8>,
    /// Parts the network has confirmed delivered.
    #[serde(default)]
    pub delivered_parts: u32,
    /// Send attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// Earliest time of the next attempt.
    #[serde(default)]
    pub next_attempt: Option<DateTime<Utc>>,
    /// The message as written to modem storage and not yet settled: persisted before it is
    /// sent, so a send interrupted by a crash is resolved from the modem's storage instead
    /// of being sent twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub prepared: Option<StoredSms>,
    /// Last error, if any.
    #[serde(default)]
    pub error: String,
    /// Last status change.
    pub tm_update: DateTime<Utc>,
}

/// An outgoing SMS written to a modem's storage and not yet settled, as the store keeps it
/// (the model's own copy of the driver's prepared message: the sled format does not change
/// when the driver does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSms {
    /// The modem it was written to (only that modem can send it).
    pub modem: String,
    /// The storage memory of the slots (`ME`, `SM`).
    pub mem: String,
    /// Recipient, as given.
    pub to: String,
    /// The key status reports are matched with.
    #[serde(default)]
    pub key: Option<String>,
    /// The parts in order.
    pub parts: Vec<StoredSmsPart>,
}

/// One part of a [`StoredSms`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSmsPart {
    /// Storage index (`None`: the part goes out with `AT+CMGS`).
    pub index: Option<u32>,
    /// The PDU (hex, SMSC field first).
    pub pdu: String,
    /// TPDU length in octets.
    pub tpdu_len: usize,
}

/// What happened with the flow of an inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlowState {
    /// Not applicable (outbound) or no binding.
    #[default]
    None,
    /// Stored; the flow must still be started (crash recovery looks for these).
    Pending,
    /// The activeflow was created.
    Started,
}

/// An SMS, inbound or outbound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Message {
    /// Record id.
    pub id: Uuid,
    /// Always `sms` on this gateway.
    #[serde(rename = "type", default = "sms")]
    pub kind: String,
    /// `inbound` or `outbound`.
    pub direction: MessageDirection,
    /// Sender.
    #[schema(value_type = Object)]
    pub source: Address,
    /// Destinations with their status.
    pub targets: Vec<MessageTarget>,
    /// The text.
    pub text: String,
    /// Modem that received it / sends it ("" = any).
    #[serde(default)]
    pub modem_id: String,
    /// Inbound: the network's timestamp (SCTS).
    #[serde(default)]
    pub tm_sent_by_network: Option<DateTime<Utc>>,
    /// Inbound: some parts of a long message never arrived.
    #[serde(default)]
    pub incomplete: bool,
    /// Inbound: what happened with the message flow.
    #[serde(default)]
    pub flow_state: FlowState,
    /// Inbound: the activeflow started for it; outbound: the activeflow that sent it.
    #[serde(default, with = "nil_uuid")]
    #[schema(value_type = Option<Uuid>)]
    pub activeflow_id: Option<Uuid>,
    /// Created.
    pub tm_create: DateTime<Utc>,
    /// Last changed.
    pub tm_update: DateTime<Utc>,
}

fn sms() -> String {
    "sms".into()
}

/// Recording status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordingStatus {
    /// Capturing.
    Recording,
    /// Finished; the file is complete.
    Ended,
}

/// A call recording (WAV in `<data>/recordings`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Recording {
    /// Record id.
    pub id: Uuid,
    /// `call`, or `confbridge` for a conference recording (the mix of everybody).
    pub reference_type: String,
    /// The call (or conference) recorded.
    pub reference_id: Uuid,
    /// Activeflow that started it, if any.
    #[serde(default, with = "nil_uuid")]
    #[schema(value_type = Option<Uuid>)]
    pub activeflow_id: Option<Uuid>,
    /// Recording or ended.
    pub status: RecordingStatus,
    /// Always `wav`.
    pub format: String,
    /// Name without extension (VoIPBIN's `recording_name`).
    pub recording_name: String,
    /// File names (relative to the recordings directory).
    pub filenames: Vec<String>,
    /// Length of audio captured, milliseconds.
    #[serde(default)]
    pub duration_ms: u64,
    /// Why it ended: `stop`, `silence`, `key`, `duration`, `hangup`.
    #[serde(default)]
    pub end_reason: String,
    /// Flow started when the recording ends.
    #[serde(default, with = "nil_uuid")]
    #[schema(value_type = Option<Uuid>)]
    pub on_end_flow_id: Option<Uuid>,
    /// Started.
    pub tm_start: DateTime<Utc>,
    /// Ended.
    #[serde(default)]
    pub tm_end: Option<DateTime<Utc>>,
}

/// Transcription status (VoIPBIN's `progressing`/`done`, plus the gateway's `failed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TranscribeStatus {
    /// Audio is being captured or sent to the recogniser.
    Progressing,
    /// The transcripts are in.
    Done,
    /// The recogniser could not be reached or refused; `error` says why.
    Failed,
}

/// One piece of text a transcription produced (VoIPBIN's transcript).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Transcript {
    /// `in`, `out` or `both`: whose audio the text is.
    pub direction: String,
    /// The text.
    pub message: String,
    /// The recording it came from.
    pub recording_id: Uuid,
    /// When the recogniser answered.
    pub tm_transcript: DateTime<Utc>,
}

/// A transcription (VoIPBIN's transcribe resource): a recording, or a live call's audio
/// between `transcribe_start` and `transcribe_stop`, sent to the `[transcribe]` engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Transcribe {
    /// Record id.
    pub id: Uuid,
    /// Activeflow that started it.
    #[serde(default, with = "nil_uuid")]
    #[schema(value_type = Option<Uuid>)]
    pub activeflow_id: Option<Uuid>,
    /// Flow started when it ends.
    #[serde(default, with = "nil_uuid")]
    #[schema(value_type = Option<Uuid>)]
    pub on_end_flow_id: Option<Uuid>,
    /// `recording` (`transcribe_recording`) or `call` (`transcribe_start`).
    pub reference_type: String,
    /// The recording or call.
    pub reference_id: Uuid,
    /// Progress.
    pub status: TranscribeStatus,
    /// BCP47 language asked for.
    pub language: String,
    /// `in`, `out` or `both`.
    pub direction: String,
    /// The provider the flow named (informational: the gateway always uses `[transcribe]`).
    #[serde(default)]
    pub provider: String,
    /// The recordings sent (a live transcription records the call to one).
    #[serde(default)]
    pub recording_ids: Vec<Uuid>,
    /// The text, one entry per recording.
    #[serde(default)]
    pub transcripts: Vec<Transcript>,
    /// Why it failed; empty otherwise.
    #[serde(default)]
    pub error: String,
    /// Created.
    pub tm_create: DateTime<Utc>,
    /// Last change.
    pub tm_update: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-step event's borrowed view is the API's JSON to the byte, whatever state the
    /// flow is in (variables in any order, a pending command, an end).
    #[test]
    fn the_borrowed_view_is_the_public_json() {
        use flowgate_flows::engine::{Activeflow, ActiveflowSpec, EndReason, Guards, Step};
        let limits = flowgate_flows::limits::Limits::default();
        let actions = flowgate_flows::model::parse_actions(
            r#"[{"type":"variable_set","option":{"key":"zeta","value":"1"}},
                {"type":"variable_set","option":{"key":"alpha","value":"\"quoted\""}},
                {"type":"talk","option":{"text":"Hello ${zeta}","language":"en-US"}},
                {"type":"hangup"}]"#,
            &limits,
        )
        .unwrap();
        let spec = ActiveflowSpec {
            id: Uuid::from_u128(7),
            reference_type: flowgate_flows::model::ReferenceType::Call,
            reference_id: Uuid::from_u128(8),
            actions,
            ..ActiveflowSpec::default()
        };
        let now = Utc::now();
        let mut record = ActiveflowRecord {
            id: Uuid::from_u128(7),
            flow_id: Some(Uuid::from_u128(9)),
            status: ActiveflowStatus::Running,
            reference_type: flowgate_flows::model::ReferenceType::Call,
            reference_id: Some(Uuid::from_u128(8)),
            reference_activeflow_id: None,
            webhook_uri: "http://example.test/hook".into(),
            webhook_method: "PUT".into(),
            end_reason: None,
            tm_create: now,
            tm_update: now,
            tm_end: None,
            engine: Activeflow::new(spec, &Guards::default()).unwrap(),
        };
        let same = |record: &ActiveflowRecord| {
            assert_eq!(
                serde_json::to_string(&record.public_ref()).unwrap(),
                serde_json::to_string(&record.public()).unwrap()
            );
        };
        same(&record);
        let Step::Execute(talk) = record.engine.run(now) else {
            panic!("the talk runs")
        };
        same(&record);
        record
            .engine
            .complete(talk.action_id, flowgate_flows::engine::Outcome::Done, now)
            .unwrap();
        let end = record.engine.stop(EndReason::Stopped("test".into()));
        record.status = ActiveflowStatus::Ended;
        record.end_reason = Some(end.reason);
        record.tm_end = Some(now);
        same(&record);
    }

    #[test]
    fn nil_uuid_reads_and_writes_voipbin_zero_values() {
        let json = r#"{"id":"0190b7a0-0000-7000-8000-000000000001","number":"+15551234567",
            "call_flow_id":"00000000-0000-0000-0000-000000000000","message_flow_id":"",
            "tm_create":"2026-01-01T00:00:00Z","tm_update":"2026-01-01T00:00:00Z"}"#;
        let n: Number = serde_json::from_str(json).unwrap();
        assert_eq!(n.call_flow_id, None);
        assert_eq!(n.message_flow_id, None);
        assert_eq!(n.status, "active");
        let back = serde_json::to_value(&n).unwrap();
        assert_eq!(back["call_flow_id"], "00000000-0000-0000-0000-000000000000");
    }

    #[test]
    fn numbers_compare_without_formatting() {
        assert!(same_number("+1 555-123-4567", "15551234567"));
        assert!(!same_number("+15551234567", "+15551234568"));
        assert!(!same_number("", ""));
    }
}

/// Activeflow status, VoIPBIN's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActiveflowStatus {
    /// Executing or waiting.
    Running,
    /// Over.
    Ended,
}

/// A running (or ended) flow: the engine state plus VoIPBIN's public fields.
///
/// The engine state is persisted after every step so the gateway can resume API and
/// message flows after a restart; it is not part of the public JSON (see
/// [`ActiveflowRecord::public`]), as in VoIPBIN where `stack_map` is internal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActiveflowRecord {
    /// Id.
    pub id: Uuid,
    /// Flow template (None for inline actions).
    #[serde(default, with = "nil_uuid")]
    pub flow_id: Option<Uuid>,
    /// Running or ended.
    pub status: ActiveflowStatus,
    /// What started it.
    pub reference_type: flowgate_flows::model::ReferenceType,
    /// The call / conversation / … id.
    #[serde(default, with = "nil_uuid")]
    pub reference_id: Option<Uuid>,
    /// Parent activeflow (on-complete / on-end chains).
    #[serde(default, with = "nil_uuid")]
    pub reference_activeflow_id: Option<Uuid>,
    /// Per-activeflow webhook for its events.
    #[serde(default)]
    pub webhook_uri: String,
    /// Method for `webhook_uri` (POST by default).
    #[serde(default)]
    pub webhook_method: String,
    /// Why it ended.
    #[serde(default)]
    pub end_reason: Option<flowgate_flows::engine::EndReason>,
    /// Created.
    pub tm_create: DateTime<Utc>,
    /// Last step.
    pub tm_update: DateTime<Utc>,
    /// Ended.
    #[serde(default)]
    pub tm_end: Option<DateTime<Utc>>,
    /// The engine state.
    pub engine: flowgate_flows::engine::Activeflow,
}

/// The public JSON of an activeflow (`GET /v1.0/activeflows/{id}`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActiveflowView {
    /// Id.
    pub id: Uuid,
    /// Flow template (nil for inline actions).
    #[serde(with = "nil_uuid")]
    #[schema(value_type = Option<Uuid>)]
    pub flow_id: Option<Uuid>,
    /// `running` or `ended`.
    pub status: ActiveflowStatus,
    /// `call`, `api`, `conversation`, … or `""`.
    pub reference_type: String,
    /// The reference's id.
    #[serde(with = "nil_uuid")]
    #[schema(value_type = Option<Uuid>)]
    pub reference_id: Option<Uuid>,
    /// Parent activeflow.
    #[serde(with = "nil_uuid")]
    #[schema(value_type = Option<Uuid>)]
    pub reference_activeflow_id: Option<Uuid>,
    /// The action the cursor is on.
    #[schema(value_type = Object)]
    pub current_action: serde_json::Value,
    /// The most recent cursor moves, oldest first (a bounded window).
    #[schema(value_type = Vec<Object>)]
    pub executed_actions: Vec<flowgate_flows::engine::Executed>,
    /// Totals over the whole life.
    #[schema(value_type = Object)]
    pub stats: flowgate_flows::engine::Stats,
    /// The flow's variables.
    #[schema(value_type = Object)]
    pub variables: indexmap::IndexMap<String, String>,
    /// Why it ended.
    #[schema(value_type = Option<Object>)]
    pub end_reason: Option<flowgate_flows::engine::EndReason>,
    /// Per-activeflow webhook.
    pub webhook_uri: String,
    /// Created.
    pub tm_create: DateTime<Utc>,
    /// Last step.
    pub tm_update: DateTime<Utc>,
    /// Ended.
    pub tm_end: Option<DateTime<Utc>>,
}

/// [`ActiveflowView`] borrowed from its record: the same JSON, field for field, without
/// copying the variables and the executed actions first. What the `activeflow_*` events
/// carry: one is written at every step of every flow.
#[derive(Serialize)]
pub struct ActiveflowViewRef<'a> {
    id: Uuid,
    #[serde(with = "nil_uuid")]
    flow_id: Option<Uuid>,
    status: ActiveflowStatus,
    reference_type: &'a str,
    #[serde(with = "nil_uuid")]
    reference_id: Option<Uuid>,
    #[serde(with = "nil_uuid")]
    reference_activeflow_id: Option<Uuid>,
    current_action: serde_json::Value,
    executed_actions: ExecutedActions<'a>,
    stats: flowgate_flows::engine::Stats,
    variables: SortedVariables<'a>,
    end_reason: &'a Option<flowgate_flows::engine::EndReason>,
    webhook_uri: &'a str,
    tm_create: DateTime<Utc>,
    tm_update: DateTime<Utc>,
    tm_end: Option<DateTime<Utc>>,
}

/// The executed-actions window, serialized as the list the view copies.
struct ExecutedActions<'a>(&'a flowgate_flows::engine::Activeflow);

impl Serialize for ExecutedActions<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.executed())
    }
}

/// The variables sorted by name, as `to_sorted_map` orders them, without copying them.
struct SortedVariables<'a>(&'a flowgate_flows::vars::Variables);

impl Serialize for SortedVariables<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut sorted: Vec<(&str, &str)> = self.0.iter().collect();
        sorted.sort_unstable_by_key(|&(name, _)| name);
        serializer.collect_map(sorted)
    }
}

impl ActiveflowRecord {
    /// The public JSON shape, borrowed (see [`ActiveflowViewRef`]).
    pub fn public_ref(&self) -> ActiveflowViewRef<'_> {
        ActiveflowViewRef {
            id: self.id,
            flow_id: self.flow_id,
            status: self.status,
            reference_type: self.reference_type.as_str(),
            reference_id: self.reference_id,
            reference_activeflow_id: self.reference_activeflow_id,
            current_action: self.current_action(),
            executed_actions: ExecutedActions(&self.engine),
            stats: self.engine.stats(),
            variables: SortedVariables(self.engine.variables()),
            end_reason: &self.end_reason,
            webhook_uri: &self.webhook_uri,
            tm_create: self.tm_create,
            tm_update: self.tm_update,
            tm_end: self.tm_end,
        }
    }

    /// The view's `current_action`: the pending command, or the action the cursor is on.
    fn current_action(&self) -> serde_json::Value {
        let engine = &self.engine;
        match engine.pending() {
            Some(cmd) => serde_json::json!({
                "id": cmd.action_id,
                "type": cmd.kind().as_str(),
                "option": serde_json::to_value(&cmd.option)
                    .ok()
                    .and_then(|v| v.get("option").cloned())
                    .unwrap_or(serde_json::Value::Null),
            }),
            None => serde_json::json!({ "id": engine.current_action_id() }),
        }
    }

    /// The public JSON shape.
    pub fn public(&self) -> ActiveflowView {
        let engine = &self.engine;
        let current_action = self.current_action();
        ActiveflowView {
            id: self.id,
            flow_id: self.flow_id,
            status: self.status,
            reference_type: self.reference_type.as_str().to_owned(),
            reference_id: self.reference_id,
            reference_activeflow_id: self.reference_activeflow_id,
            current_action,
            executed_actions: engine.executed().cloned().collect(),
            stats: engine.stats(),
            variables: engine.variables().to_sorted_map(),
            end_reason: self.end_reason.clone(),
            webhook_uri: self.webhook_uri.clone(),
            tm_create: self.tm_create,
            tm_update: self.tm_update,
            tm_end: self.tm_end,
        }
    }
}

/// An SMS conversation: our number and the peer's (VoIPBIN's conversation, reduced to what
/// a gateway has). Its id is derived from the pair, so every message between the same two
/// numbers lands in the same conversation without a lookup table race.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Conversation {
    /// Derived id (see [`Conversation::id_for`]).
    pub id: Uuid,
    /// Our side: the number (or the modem) that received the message.
    #[schema(value_type = Object)]
    pub self_address: Address,
    /// The remote party.
    #[schema(value_type = Object)]
    pub peer: Address,
    /// The modem to reply through.
    pub modem_id: String,
    /// Created.
    pub tm_create: DateTime<Utc>,
    /// Last message.
    pub tm_update: DateTime<Utc>,
}

impl Conversation {
    /// The conversation id for a (self, peer) pair on a modem.
    pub fn id_for(modem_id: &str, self_target: &str, peer_target: &str) -> Uuid {
        derived_id(&["conversation", modem_id, self_target, peer_target])
    }
}

/// A UUID derived from the SHA-256 of `parts` (dedupe keys, conversation ids,
/// idempotent command ids). Version/variant bits are set as for UUIDv8 (custom).
pub fn derived_id(parts: &[&str]) -> Uuid {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Marks an inbound SMS as stored, keyed by a digest of its content, so a modem that hands
/// the same message over again (the daemon died between the store flush and the delete)
/// does not run its flow twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmsSeen {
    /// The message record it became.
    pub message_id: Uuid,
    /// When it was first stored.
    pub tm_create: DateTime<Utc>,
}

/// A work-queue marker keyed by a message id: "this message still needs sending" or "this
/// message's flow still needs starting". Kept in small tables of their own so start-up and
/// the sender scan only pending work, never the whole message history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// When the work was queued.
    pub tm_create: DateTime<Utc>,
}

/// A local call queue (VoIPBIN's queue-manager queue): callers wait, hearing the wait
/// flow (or music on hold), while its agents are rung by the routing method.
///
/// VoIPBIN's agents are resources of their own picked by tag; the gateway has none, so a
/// queue lists its agents as addresses it can dial (`agents`, gateway-only): extensions,
/// `sip:` URIs, FXS ports' extensions, numbers through the routing table. `tag_ids` is
/// kept for clients that send it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Queue {
    /// Record id.
    pub id: Uuid,
    /// Name (`voipbin.queue.name`).
    #[serde(default)]
    pub name: String,
    /// Free text (`voipbin.queue.detail`).
    #[serde(default)]
    pub detail: String,
    /// How agents are rung: `ringall` (also VoIPBIN's `""`), `linear`, `roundrobin`
    /// (also VoIPBIN's `random`), `longest_idle`.
    #[serde(default)]
    pub routing_method: String,
    /// VoIPBIN's agent tags; kept, not used (agents are listed in `agents`).
    #[serde(default)]
    pub tag_ids: Vec<Uuid>,
    /// The agents, in the queue's order: addresses the gateway dials (`type` `extension`,
    /// `sip`, `tel` or empty, and `target`).
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub agents: Vec<Address>,
    /// Flow the caller hears while waiting, run again and again (nil: music on hold).
    #[serde(default, with = "nil_uuid")]
    #[schema(value_type = Option<Uuid>)]
    pub wait_flow_id: Option<Uuid>,
    /// Milliseconds a caller waits before the flow goes on after `queue_join` (0: no limit).
    #[serde(default)]
    pub wait_timeout: i64,
    /// Milliseconds a caller talks to an agent before the agent is hung up and the
    /// caller's flow goes on (0: no limit).
    #[serde(default)]
    pub service_timeout: i64,
    /// Milliseconds one agent rings before the next is tried (gateway-only; 0: 15 s).
    #[serde(default)]
    pub agent_ring_timeout: i64,
    /// Milliseconds a caller waits after every agent was tried before the next round
    /// (gateway-only; 0: 5 s).
    #[serde(default)]
    pub retry_interval: i64,
    /// Queuecalls waiting now.
    #[serde(default)]
    pub wait_queuecall_ids: Vec<Uuid>,
    /// Queuecalls being served now.
    #[serde(default)]
    pub service_queuecall_ids: Vec<Uuid>,
    /// Callers that joined.
    #[serde(default)]
    pub total_incoming_count: u64,
    /// Callers an agent answered.
    #[serde(default)]
    pub total_serviced_count: u64,
    /// Callers that left before an agent answered (hung up, kicked, timed out).
    #[serde(default)]
    pub total_abandoned_count: u64,
    /// Created.
    pub tm_create: DateTime<Utc>,
    /// Last changed.
    pub tm_update: DateTime<Utc>,
}

/// Where a queuecall is (VoIPBIN's statuses; `initiating` and `kicking` last no time here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QueuecallStatus {
    /// Waiting for an agent.
    Waiting,
    /// An agent answered; the caller is being put through.
    Connecting,
    /// Talking to an agent.
    Service,
    /// Kicked through the API; leaving.
    Kicking,
    /// Over after an agent served it.
    Done,
    /// Left before an agent answered: hung up, kicked or timed out (as in VoIPBIN).
    Abandoned,
}

/// One caller's stay in a queue (VoIPBIN's queuecall).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Queuecall {
    /// Record id (`voipbin.queuecall.id`).
    pub id: Uuid,
    /// The queue.
    pub queue_id: Uuid,
    /// Always `call`.
    pub reference_type: String,
    /// The caller's call.
    pub reference_id: Uuid,
    /// The caller's activeflow.
    #[serde(default, with = "nil_uuid")]
    #[schema(value_type = Option<Uuid>)]
    pub reference_activeflow_id: Option<Uuid>,
    /// The caller (what agents see as the caller id).
    #[schema(value_type = Object)]
    pub source: Address,
    /// The queue's routing method when the caller joined.
    #[serde(default)]
    pub routing_method: String,
    /// The queue's tags when the caller joined.
    #[serde(default)]
    pub tag_ids: Vec<Uuid>,
    /// Status.
    pub status: QueuecallStatus,
    /// VoIPBIN's agent resource id: always nil (the gateway's agents are addresses).
    #[serde(default, with = "nil_uuid")]
    #[schema(value_type = Option<Uuid>)]
    pub service_agent_id: Option<Uuid>,
    /// The agent that answered (gateway-only).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub service_agent: Address,
    /// The agent's call (gateway-only).
    #[serde(default, with = "nil_uuid")]
    #[schema(value_type = Option<Uuid>)]
    pub service_call_id: Option<Uuid>,
    /// The wait timeout in ms (0: none).
    #[serde(default)]
    pub timeout_wait: i64,
    /// The service timeout in ms (0: none).
    #[serde(default)]
    pub timeout_service: i64,
    /// Milliseconds waited (set when the wait ends).
    #[serde(default)]
    pub duration_waiting: i64,
    /// Milliseconds served (set when the service ends).
    #[serde(default)]
    pub duration_service: i64,
    /// Why it ended: `service_end`, `wait_timeout`, `service_timeout`, `kicked`,
    /// `hangup`, `restart`, `stopping` (gateway-only).
    #[serde(default)]
    pub end_reason: String,
    /// Joined.
    pub tm_create: DateTime<Utc>,
    /// An agent answered.
    #[serde(default)]
    pub tm_service: Option<DateTime<Utc>>,
    /// Last changed.
    pub tm_update: DateTime<Utc>,
    /// Ended.
    #[serde(default)]
    pub tm_end: Option<DateTime<Utc>>,
}
