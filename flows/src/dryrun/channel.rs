//! The dry run's channel: what the gateway's runtime does around a flow, simulated — the
//! variables it sets when a flow starts, `voipbin.call.status` as the call is answered,
//! `voipbin.recording.*` when a recording starts, `voipbin.flow.reference_data`, and the
//! failures the runtime reports for call commands it cannot perform (no live call, a second
//! recording, …). The runtime (`firmware/src/runtime`) is the model; where it changes, this
//! file follows.

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::engine::{Activeflow, Outcome};
use crate::model::{ActionType, CommandOption, RecordingStartOption, ReferenceType};
use crate::vars::{self, CALL_STATUS, REFERENCE_DATA};

/// The modem id the dry run reports (`voipbin.gateway.modem_id`) unless `--var` sets one.
pub const DEFAULT_MODEM_ID: &str = "modem0";
/// The call id of a `call` dry run unless `--var voipbin.call.id=…` sets one.
pub const DRY_RUN_CALL_ID: Uuid = Uuid::from_u128(0xca11_0000_0000_4000_8000_0000_0000_0001);
/// The conversation id of a conversation dry run unless `--var voipbin.conversation.id=…`.
pub const DRY_RUN_CONVERSATION_ID: Uuid =
    Uuid::from_u128(0xc0c0_0000_0000_4000_8000_0000_0000_0001);
/// The message id of a conversation dry run.
pub const DRY_RUN_MESSAGE_ID: Uuid = Uuid::from_u128(0x5e55_0000_0000_4000_8000_0000_0000_0001);

/// Call statuses as the runtime writes them.
const RINGING: &str = "ringing";
const PROGRESSING: &str = "progressing";

/// The simulated call or conversation of one dry run (shared by the flows of an on-complete
/// chain: they have the same reference).
pub(super) struct Channel {
    reference_type: ReferenceType,
    reference_id: Uuid,
    /// A call is up: call flows until the call hangs up or the flow ends (the runtime hangs
    /// up then). On-complete follow-ups run without one, as on the gateway.
    live: bool,
    status: &'static str,
    started: DateTime<Utc>,
    answered: Option<DateTime<Utc>>,
    hung_up: Option<DateTime<Utc>>,
    recording: Option<Uuid>,
    recordings: Vec<Uuid>,
    /// `--var voipbin.flow.reference_data=…` was given: the user's text stays.
    fixed_reference_data: bool,
}

impl Channel {
    /// The channel for `reference_type` and the variables the runtime would set at the
    /// start, `user` (the `--var` values, trusted like the runtime's) taking precedence.
    pub(super) fn new(
        reference_type: ReferenceType,
        user: &IndexMap<String, String>,
        now: DateTime<Utc>,
    ) -> (Self, IndexMap<String, String>) {
        let given = |name: &str| {
            user.iter()
                .find(|(k, _)| vars::canonical_name(k) == name)
                .map(|(_, v)| v.as_str())
        };
        let mut defaults: IndexMap<String, String> = IndexMap::new();
        let mut put = |k: &str, v: String| {
            defaults.insert(k.to_owned(), v);
        };
        let (reference_id, status) = match reference_type {
            ReferenceType::Call => {
                let id = given("voipbin.call.id")
                    .and_then(|s| Uuid::parse_str(s).ok())
                    .unwrap_or(DRY_RUN_CALL_ID);
                let outgoing = given("voipbin.call.direction") == Some("outgoing");
                // An incoming call's flow starts while it rings; an outbound call's flow
                // starts when the far end answers.
                let status = if outgoing { PROGRESSING } else { RINGING };
                put("voipbin.call.id", id.to_string());
                put(
                    "voipbin.call.direction",
                    if outgoing { "outgoing" } else { "incoming" }.to_owned(),
                );
                put("voipbin.call.master_call_id", Uuid::nil().to_string());
                put(vars::CALL_DIGITS, String::new());
                put(CALL_STATUS, status.to_owned());
                for side in ["source", "destination"] {
                    for field in ["name", "detail", "target", "target_name"] {
                        put(&format!("voipbin.call.{side}.{field}"), String::new());
                    }
                    put(&format!("voipbin.call.{side}.type"), "tel".to_owned());
                }
                if given("voipbin.call.source.target").is_none_or(str::is_empty) {
                    // What the runtime writes for a caller without a number.
                    put("voipbin.call.source.target_name", "anonymous".to_owned());
                }
                // The line the call came in on (a modem here; `--var` may name a SIP trunk or
                // an analog port).
                put("voipbin.gateway.line_id", DEFAULT_MODEM_ID.to_owned());
                put("voipbin.gateway.transport", "modem".to_owned());
                put("voipbin.gateway.modem_id", DEFAULT_MODEM_ID.to_owned());
                (id, status)
            }
            ReferenceType::Conversation | ReferenceType::Message => {
                let id = given("voipbin.conversation.id")
                    .and_then(|s| Uuid::parse_str(s).ok())
                    .unwrap_or(DRY_RUN_CONVERSATION_ID);
                put("voipbin.conversation.id", id.to_string());
                put("voipbin.conversation.owner_id", Uuid::nil().to_string());
                for side in ["self", "peer"] {
                    put(
                        &format!("voipbin.conversation.{side}.type"),
                        "tel".to_owned(),
                    );
                    for field in ["target", "target_name", "name", "detail"] {
                        put(
                            &format!("voipbin.conversation.{side}.{field}"),
                            String::new(),
                        );
                    }
                }
                put(
                    "voipbin.conversation_message.id",
                    DRY_RUN_MESSAGE_ID.to_string(),
                );
                put("voipbin.conversation_message.text", String::new());
                put(
                    "voipbin.conversation_message.direction",
                    "incoming".to_owned(),
                );
                put("voipbin.gateway.modem_id", DEFAULT_MODEM_ID.to_owned());
                (id, "")
            }
            _ => (Uuid::nil(), ""),
        };
        // The user's values last (legacy spellings are aliases: the engine stores them under
        // the canonical name, after the defaults).
        for (k, v) in user {
            defaults.insert(k.clone(), v.clone());
        }
        let channel = Channel {
            reference_type,
            reference_id,
            live: reference_type == ReferenceType::Call,
            status,
            started: now,
            answered: (status == PROGRESSING).then_some(now),
            hung_up: None,
            recording: None,
            recordings: Vec::new(),
            fixed_reference_data: given(REFERENCE_DATA).is_some(),
        };
        (channel, defaults)
    }

    /// The activeflow's reference id (the call or conversation; nil otherwise).
    pub(super) fn reference_id(&self) -> Uuid {
        self.reference_id
    }

    /// Whether a call is up.
    pub(super) fn live(&self) -> bool {
        self.live
    }

    /// The flow ended or the caller hung up: the call is over (the runtime hangs up a call
    /// whose flow ends). The call record says so (what a follow-up's reference data shows);
    /// `voipbin.call.status` is left as it was, as the runtime leaves it.
    pub(super) fn hang_up(&mut self, now: DateTime<Utc>) {
        if self.live {
            self.live = false;
            self.status = "hangup";
            self.hung_up = Some(now);
        }
    }

    /// Sets `voipbin.flow.reference_data` to the current call or conversation, as the
    /// runtime keeps it (unless the user gave it).
    pub(super) fn refresh(&self, af: &mut Activeflow, now: DateTime<Utc>) {
        if self.fixed_reference_data || !self.reference_type.has_reference_data() {
            return;
        }
        let data = match self.reference_type {
            ReferenceType::Call => self.call_json(af, now),
            _ => self.conversation_json(af),
        };
        // Only a cap can refuse it, and then the flow simply has no reference data.
        let _ = af.set_reference_data(&data);
    }

    /// Whether the runtime hands this command to the call channel (the rest it performs
    /// itself: HTTP, messages, outbound calls, …).
    pub(super) fn is_channel_command(kind: ActionType) -> bool {
        matches!(
            kind,
            ActionType::Answer
                | ActionType::Talk
                | ActionType::Play
                | ActionType::Beep
                | ActionType::DigitsReceive
                | ActionType::DigitsSend
                | ActionType::Sleep
                | ActionType::Echo
                | ActionType::StreamEcho
                | ActionType::Hangup
                | ActionType::RecordingStart
                | ActionType::RecordingStop
                | ActionType::Connect
                | ActionType::Mute
        )
    }

    /// A command reaches the channel. Returns the failure the runtime would report before
    /// doing anything (no live call), else applies what starting it does (media commands
    /// answer the call first, as VoIPBIN's `talk` does).
    pub(super) fn issue(
        &mut self,
        af: &mut Activeflow,
        option: &CommandOption,
        now: DateTime<Utc>,
    ) -> Option<Outcome> {
        let kind = option.kind();
        if !Self::is_channel_command(kind) {
            return None;
        }
        if !self.live {
            return Some(Outcome::Failed(format!(
                "{kind}: the activeflow has no live call"
            )));
        }
        let answers_first = matches!(
            kind,
            ActionType::Talk
                | ActionType::Play
                | ActionType::Beep
                | ActionType::Echo
                | ActionType::StreamEcho
                | ActionType::RecordingStart
        );
        if answers_first {
            self.answer(af, now);
        }
        None
    }

    /// A channel command completes as the script says: `outcome` is what it reports unless
    /// the runtime would fail it (checked here); applies its effects on success.
    pub(super) fn complete(
        &mut self,
        af: &mut Activeflow,
        option: &CommandOption,
        outcome: Outcome,
        now: DateTime<Utc>,
    ) -> Outcome {
        if !matches!(outcome, Outcome::Done | Outcome::Timeout) || !self.live {
            if matches!(outcome, Outcome::Hangup) {
                self.hang_up(now);
            }
            return outcome;
        }
        match option {
            CommandOption::Answer(_) => self.answer(af, now),
            CommandOption::Connect(c) if c.destinations.is_empty() => {
                return Outcome::Failed("connect: no destinations".into());
            }
            CommandOption::Hangup(_) => self.hang_up(now),
            CommandOption::RecordingStart(o) => {
                if let Err(e) = self.start_recording(af, o, now) {
                    return Outcome::Failed(format!("recording_start: {e}"));
                }
            }
            CommandOption::RecordingStop(_) => {
                if self.recording.take().is_none() {
                    return Outcome::Failed("recording_stop: the call is not recording".into());
                }
                self.refresh(af, now);
            }
            _ => {}
        }
        outcome
    }

    fn answer(&mut self, af: &mut Activeflow, now: DateTime<Utc>) {
        if self.status == PROGRESSING {
            return;
        }
        self.status = PROGRESSING;
        self.answered = Some(now);
        // A trusted variable; only a cap can refuse it.
        let _ = af.set_variable(CALL_STATUS, PROGRESSING);
        self.refresh(af, now);
    }

    /// The runtime's checks and variables for `recording_start`.
    fn start_recording(
        &mut self,
        af: &mut Activeflow,
        o: &RecordingStartOption,
        now: DateTime<Utc>,
    ) -> Result<(), String> {
        if !o.format.is_empty() && o.format != "wav" {
            return Err(format!(
                "recording format {:?}: only wav is supported",
                o.format
            ));
        }
        let key = o.end_of_key.trim();
        let mut chars = key.chars();
        let key_ok = matches!(key, "" | "none" | "any")
            || matches!((chars.next(), chars.next()), (Some(c), None) if crate::validate::is_dtmf(c.to_ascii_uppercase()));
        if !key_ok {
            return Err(format!("{key:?} is not none, any or a DTMF key"));
        }
        if o.end_of_silence < 0 || o.duration < 0 {
            return Err("end_of_silence and duration must not be negative".into());
        }
        if let Some(current) = self.recording {
            return Err(format!("the call is already recording ({current})"));
        }
        let n = u128::try_from(self.recordings.len()).unwrap_or(0) + 1;
        let id = Uuid::from_u128(0x7ec0_0000_0000_4000_8000_0000_0000_0000 + n);
        self.recording = Some(id);
        self.recordings.push(id);
        let values = [
            ("id", id.to_string()),
            ("reference_type", "call".to_owned()),
            ("reference_id", self.reference_id.to_string()),
            ("format", "wav".to_owned()),
            ("recording_name", id.to_string()),
            ("filenames", format!("{id}.wav")),
        ];
        for (k, v) in values {
            let _ = af.set_variable(&format!("voipbin.recording.{k}"), &v);
        }
        self.refresh(af, now);
        Ok(())
    }

    /// The call as the API serves it (`GET /v1.0/calls/{id}`).
    fn call_json(&self, af: &Activeflow, now: DateTime<Utc>) -> Value {
        let v = |k: &str| af.variable(k).unwrap_or("").to_owned();
        let address = |side: &str| {
            json!({
                "type": v(&format!("voipbin.call.{side}.type")),
                "target": v(&format!("voipbin.call.{side}.target")),
                "target_name": v(&format!("voipbin.call.{side}.target_name")),
                "name": v(&format!("voipbin.call.{side}.name")),
                "detail": v(&format!("voipbin.call.{side}.detail")),
            })
        };
        let incoming = v("voipbin.call.direction") != "outgoing";
        let nil = Uuid::nil();
        json!({
            "id": self.reference_id,
            "line_id": v("voipbin.gateway.line_id"),
            "transport": v("voipbin.gateway.transport"),
            "modem_id": v("voipbin.gateway.modem_id"),
            "direction": if incoming { "incoming" } else { "outgoing" },
            "source": address("source"),
            "destination": address("destination"),
            "status": self.status,
            "flow_id": af.flow_id(),
            "activeflow_id": af.id(),
            "master_call_id": v("voipbin.call.master_call_id"),
            "chained_call_ids": [],
            "recording_id": self.recording.unwrap_or(nil),
            "recording_ids": self.recordings,
            "hangup_by": "",
            "hangup_reason": "",
            "hold": false,
            "mute_direction": "",
            "tm_create": self.started,
            "tm_ringing": incoming.then_some(self.started),
            "tm_progressing": self.answered,
            "tm_hangup": self.hung_up,
            "tm_update": now,
        })
    }

    /// The conversation, with VoIPBIN's field names (`self`, `peer`).
    fn conversation_json(&self, af: &Activeflow) -> Value {
        let v = |k: &str| af.variable(k).unwrap_or("").to_owned();
        let address = |side: &str| {
            json!({
                "type": v(&format!("voipbin.conversation.{side}.type")),
                "target": v(&format!("voipbin.conversation.{side}.target")),
                "target_name": v(&format!("voipbin.conversation.{side}.target_name")),
                "name": v(&format!("voipbin.conversation.{side}.name")),
                "detail": v(&format!("voipbin.conversation.{side}.detail")),
            })
        };
        json!({
            "id": self.reference_id,
            "owner_id": v("voipbin.conversation.owner_id"),
            "self": address("self"),
            "peer": address("peer"),
            "modem_id": v("voipbin.gateway.modem_id"),
            "tm_create": self.started,
            "tm_update": self.started,
        })
    }
}
