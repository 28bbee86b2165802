//! Typed options of every action type (reference §2), the action type table (media
//! requirement and error policy) and the option enums.
//!
//! Option structs follow VoIPBIN's Go structs with `omitempty`: every field is optional and a
//! missing field is the zero value (`0`, `""`, `false`, nil UUID, empty list). Unknown fields
//! are ignored here (the raw option is kept on [`crate::model::Action`] and validation warns
//! about them). Fields whose VoIPBIN type is an enum-like string (`condition`, `reason`, …)
//! stay strings so that `${…}` templates keep working; validation checks their values.
//!
//! UUID fields are [`IdRef`]: a UUID, or a `${…}` template that is resolved when the action
//! runs (VoIPBIN substitutes options before it parses them, so `"conversation_id":
//! "${voipbin.conversation.id}"` is legal).

use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use uuid::Uuid;

use crate::vars::{self, SubstError, Substitute, Variables};

/// A UUID option field: a literal UUID or a `${…}` template resolved at run time.
///
/// Serializes as a string. `""` and `null` read as the nil UUID (VoIPBIN's zero value). In a
/// [`CommandOption`] handed to the runtime every `IdRef` is resolved ([`IdRef::Id`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdRef {
    /// A literal UUID (nil when the field was omitted).
    Id(Uuid),
    /// A string containing `${…}`.
    Template(String),
}

impl Default for IdRef {
    fn default() -> Self {
        IdRef::Id(Uuid::nil())
    }
}

impl IdRef {
    /// The UUID, or `None` for a template.
    pub fn id(&self) -> Option<Uuid> {
        match self {
            IdRef::Id(u) => Some(*u),
            IdRef::Template(_) => None,
        }
    }

    /// The UUID, or nil for a template (after substitution there are no templates).
    pub fn uuid(&self) -> Uuid {
        self.id().unwrap_or_else(Uuid::nil)
    }

    /// Whether this is the nil UUID (field omitted).
    pub fn is_nil(&self) -> bool {
        matches!(self, IdRef::Id(u) if u.is_nil())
    }

    /// A set, non-template UUID.
    pub fn non_nil(&self) -> Option<Uuid> {
        self.id().filter(|u| !u.is_nil())
    }

    /// Parses a string the way the option parser does.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            Ok(IdRef::Id(Uuid::nil()))
        } else if vars::has_placeholder(s) {
            Ok(IdRef::Template(s.to_owned()))
        } else {
            Uuid::parse_str(s)
                .map(IdRef::Id)
                .map_err(|e| format!("`{s}` is not a UUID ({e})"))
        }
    }
}

impl From<Uuid> for IdRef {
    fn from(u: Uuid) -> Self {
        IdRef::Id(u)
    }
}

impl fmt::Display for IdRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdRef::Id(u) => u.fmt(f),
            IdRef::Template(t) => f.write_str(t),
        }
    }
}

impl Serialize for IdRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            IdRef::Id(u) => s.collect_str(u),
            IdRef::Template(t) => s.serialize_str(t),
        }
    }
}

impl<'de> Deserialize<'de> for IdRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IdRef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a UUID string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<IdRef, E> {
                IdRef::parse(s).map_err(E::custom)
            }
            fn visit_unit<E: de::Error>(self) -> Result<IdRef, E> {
                Ok(IdRef::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<IdRef, E> {
                Ok(IdRef::default())
            }
        }
        d.deserialize_any(V)
    }
}

impl Substitute for IdRef {
    fn substitute(&self, vars: &Variables) -> Result<Self, SubstError> {
        match self {
            IdRef::Id(u) => Ok(IdRef::Id(*u)),
            IdRef::Template(t) => {
                let s = vars::substitute(t, vars);
                if s.is_empty() {
                    return Ok(IdRef::Id(Uuid::nil()));
                }
                // Parsed directly: a value that itself contains `${` is not a template again.
                Uuid::parse_str(&s).map(IdRef::Id).map_err(|_| {
                    SubstError::new(format!("`{t}` resolved to `{s}`, which is not a UUID"))
                })
            }
        }
    }
}

/// Strips the raw-identifier prefix of a field name (`r#async` → `async`).
fn field_name(s: &'static str) -> &'static str {
    s.strip_prefix("r#").unwrap_or(s)
}

/// Declares an option struct: serde with VoIPBIN's omitempty semantics, and [`Substitute`].
macro_rules! option_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident { $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl Substitute for $name {
            #[allow(unused_variables, reason = "structs without fields ignore the variables")]
            fn substitute(&self, vars: &Variables) -> Result<Self, SubstError> {
                Ok(Self {
                    $( $field: Substitute::substitute(&self.$field, vars)
                        .map_err(|e| e.within(field_name(stringify!($field))))?, )*
                })
            }
        }
    };
}

option_struct! {
    /// An endpoint (`source`, `destinations`): VoIPBIN's `CommonAddress`.
    pub struct Address {
        /// `""`, `agent`, `conference`, `email`, `extension`, `line`, `sip`, `tel`,
        /// `web_session`.
        #[serde(rename = "type")]
        pub kind: String,
        /// The address itself (a phone number for `tel`).
        pub target: String,
        /// Display name of the target.
        pub target_name: String,
        /// Name.
        pub name: String,
        /// Free text.
        pub detail: String,
    }
}

/// The valid [`Address::kind`] values.
pub const ADDRESS_TYPES: &[&str] = &[
    "",
    "agent",
    "conference",
    "email",
    "extension",
    "line",
    "sip",
    "tel",
    "web_session",
];

option_struct! {
    /// Options of actions that take none (`answer`, `beep`, `block`, `stop`, …).
    pub struct NoOption {}
}

option_struct! {
    /// `goto`: jump back to `target_id` at most `loop_count` times.
    pub struct GotoOption {
        /// Where to jump (current stack or an ancestor).
        pub target_id: IdRef,
        /// Jumps left; decremented in the stored copy. `0`/omitted never jumps (VoIPBIN).
        pub loop_count: i64,
    }
}

option_struct! {
    /// `branch`: jump by the exact value of a variable.
    pub struct BranchOption {
        /// Bare variable name; empty means `voipbin.call.digits`. `${name}` is accepted too.
        pub variable: String,
        /// Target when no key matches.
        pub default_target_id: IdRef,
        /// Value → target.
        pub target_ids: IndexMap<String, IdRef>,
    }
}

option_struct! {
    /// `condition_variable`: `variable <condition> value`; false jumps to `false_target_id`.
    pub struct ConditionVariableOption {
        /// `==`, `!=`, `>`, `>=`, `<`, `<=`.
        pub condition: String,
        /// `${name}`, a bare variable name, or literal text (see the engine docs).
        pub variable: String,
        /// `string`, `number` or `length`.
        pub value_type: String,
        /// Operand for `string`.
        pub value_string: String,
        /// Operand for `number` (float32 in VoIPBIN).
        pub value_number: f32,
        /// Operand for `length`.
        pub value_length: i64,
        /// Target when the condition is false.
        pub false_target_id: IdRef,
    }
}

option_struct! {
    /// `condition_datetime`: every given field is tested as `option <condition> now`.
    pub struct ConditionDatetimeOption {
        /// `==`, `!=`, `>`, `>=`, `<`, `<=`.
        pub condition: String,
        /// Minute 0..59; `-1` = any. Omitted = 0, as in VoIPBIN (or any with
        /// [`ConditionDatetimeOption::omitted_fields`] `any`).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub minute: Option<i64>,
        /// Hour 0..23; `-1` = any. Omitted = 0, as in VoIPBIN (or any with `omitted_fields`).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub hour: Option<i64>,
        /// Day of month 1..31; `0` = any.
        pub day: i64,
        /// Month 1..12; `0` = any.
        pub month: i64,
        /// Weekdays that pass (0 = Sunday … 6 = Saturday); empty = any.
        pub weekdays: Vec<i64>,
        /// Flowgate extension: IANA time zone for this test (default from the engine guards).
        #[serde(skip_serializing_if = "String::is_empty")]
        pub timezone: String,
        /// Flowgate extension: what an omitted `hour`/`minute` means. `""`/`zero`: 0, tested
        /// (VoIPBIN's code); `any`: not tested (what a reader of VoIPBIN's docs may expect).
        #[serde(skip_serializing_if = "String::is_empty")]
        pub omitted_fields: String,
        /// Target when the condition is false.
        pub false_target_id: IdRef,
    }
}

option_struct! {
    /// `condition_call_digits` (deprecated): true when enough digits or the key was pressed.
    pub struct ConditionCallDigitsOption {
        /// Minimum number of digits (0 = not checked).
        pub length: i64,
        /// Text the digits must contain ("" = not checked).
        pub key: String,
        /// Target when the condition is false.
        pub false_target_id: IdRef,
    }
}

option_struct! {
    /// `condition_call_status` (deprecated): true when `voipbin.call.status` equals `status`.
    pub struct ConditionCallStatusOption {
        /// `dialing`, `ringing`, `progressing`, `terminating`, `canceling`, `hangup`.
        pub status: String,
        /// Target when the condition is false.
        pub false_target_id: IdRef,
    }
}

option_struct! {
    /// `variable_set`: `vars[key] = value` (both substituted).
    pub struct VariableSetOption {
        /// Variable name.
        pub key: String,
        /// Value.
        pub value: String,
    }
}

option_struct! {
    /// `fetch`: HTTP request returning a JSON array of actions to push.
    pub struct FetchOption {
        /// URL.
        pub event_url: String,
        /// `GET` (default when empty), `POST`, `PUT`, `DELETE`.
        pub event_method: String,
    }
}

option_struct! {
    /// `fetch_flow`: push a copy of another flow's actions.
    pub struct FetchFlowOption {
        /// The flow.
        pub flow_id: IdRef,
    }
}

option_struct! {
    /// `call`: start independent outbound calls, each with its own activeflow.
    pub struct CallOption {
        /// Caller id.
        pub source: Address,
        /// Who to call.
        pub destinations: Vec<Address>,
        /// Flow for the new calls (or inline `actions`).
        pub flow_id: IdRef,
        /// Inline actions (substituted with the parent's variables when this action runs).
        pub actions: Vec<Value>,
        /// Hang up the new calls with the master call.
        pub chained: bool,
        /// Run the new flow before answer.
        pub early_execution: bool,
        /// `""`, `yes`, `no`, `auto`.
        pub anonymous: String,
    }
}

option_struct! {
    /// `connect`: ring destinations and bridge the caller with the first that answers.
    pub struct ConnectOption {
        /// Caller id.
        pub source: Address,
        /// Who to ring (all at once).
        pub destinations: Vec<Address>,
        /// Pass early media.
        pub early_media: bool,
        /// Hang up the caller with the callee's reason.
        pub relay_reason: bool,
        /// `""`, `yes`, `no`, `auto`.
        pub anonymous: String,
    }
}

option_struct! {
    /// `queue_join`.
    pub struct QueueJoinOption {
        /// The queue.
        pub queue_id: IdRef,
    }
}

option_struct! {
    /// `conference_join`.
    pub struct ConferenceJoinOption {
        /// The conference.
        pub conference_id: IdRef,
    }
}

option_struct! {
    /// `ai_talk`.
    pub struct AiTalkOption {
        /// `ai` or `team`.
        pub assistance_type: String,
        /// The AI or team.
        pub assistance_id: IdRef,
        /// Deprecated: an AI id (means `assistance_type: ai`).
        pub ai_id: IdRef,
        /// Seconds.
        pub duration: i64,
    }
}

option_struct! {
    /// `ai_task`.
    pub struct AiTaskOption {
        /// `ai` or `team`.
        pub assistance_type: String,
        /// The AI or team.
        pub assistance_id: IdRef,
        /// Deprecated AI id.
        pub ai_id: IdRef,
    }
}

option_struct! {
    /// `ai_summary`.
    pub struct AiSummaryOption {
        /// Flow to run with the summary.
        pub on_end_flow_id: IdRef,
        /// What to summarise (type).
        pub reference_type: String,
        /// What to summarise (id).
        pub reference_id: IdRef,
        /// BCP47 language.
        pub language: String,
    }
}

option_struct! {
    /// `message_send`: send an SMS.
    pub struct MessageSendOption {
        /// Sender (our number).
        pub source: Address,
        /// Recipients.
        pub destinations: Vec<Address>,
        /// Text.
        pub text: String,
    }
}

option_struct! {
    /// An `email_send` attachment.
    pub struct EmailAttachment {
        /// `recording`, ….
        pub reference_type: String,
        /// The referenced resource.
        pub reference_id: IdRef,
    }
}

option_struct! {
    /// `email_send`.
    pub struct EmailSendOption {
        /// Recipients (type `email`).
        pub destinations: Vec<Address>,
        /// Subject.
        pub subject: String,
        /// Body.
        pub content: String,
        /// Attachments.
        pub attachments: Vec<EmailAttachment>,
    }
}

option_struct! {
    /// `webhook_send`: send `data` as-is to `uri`.
    pub struct WebhookSendOption {
        /// Wait for delivery.
        pub sync: bool,
        /// URL.
        pub uri: String,
        /// `POST`, `GET`, `PUT`, `DELETE`.
        pub method: String,
        /// Content-Type.
        pub data_type: String,
        /// Body.
        pub data: String,
    }
}

option_struct! {
    /// `conversation_send`.
    pub struct ConversationSendOption {
        /// The conversation.
        pub conversation_id: IdRef,
        /// Text.
        pub text: String,
        /// Wait for delivery.
        pub sync: bool,
    }
}

option_struct! {
    /// `case_create` (CRM).
    pub struct CaseCreateOption {
        /// Name.
        pub name: String,
        /// Detail.
        pub detail: String,
        /// Note.
        pub note: String,
        /// Wait for the CRM.
        pub sync: bool,
    }
}

option_struct! {
    /// `transcribe_start` and `transcribe_recording`.
    pub struct TranscribeOption {
        /// BCP47 language.
        pub language: String,
        /// `gcp` or `aws`.
        pub provider: String,
        /// `in`, `out`, `both` (default both).
        pub direction: String,
        /// Flow to run when the transcription ends.
        pub on_end_flow_id: IdRef,
    }
}

option_struct! {
    /// `talk`: text-to-speech.
    pub struct TalkOption {
        /// Plain text or SSML.
        pub text: String,
        /// BCP47 language.
        pub language: String,
        /// `gcp` (default) or `aws`.
        pub provider: String,
        /// Voice.
        pub voice_id: String,
        /// `""` or `"next"` (a DTMF digit stops the prompt and advances).
        pub digits_handle: String,
        /// Do not wait for the playback to finish.
        pub r#async: bool,
    }
}

option_struct! {
    /// `play`.
    pub struct PlayOption {
        /// URLs played in sequence.
        pub stream_urls: Vec<String>,
    }
}

option_struct! {
    /// `digits_receive`: collect DTMF digits into `voipbin.call.digits`.
    pub struct DigitsReceiveOption {
        /// Timeout in ms.
        pub duration: i64,
        /// Finish after this many digits (0 = no length rule; VoIPBIN code default).
        pub length: i64,
        /// Each character is a terminator (kept in the value).
        pub key: String,
    }
}

option_struct! {
    /// `digits_send`: send DTMF tones.
    pub struct DigitsSendOption {
        /// `0-9 A-D # *`, up to 100.
        pub digits: String,
        /// Tone length, 100–1000 ms.
        pub duration: i64,
        /// Gap, 0–5000 ms.
        pub interval: i64,
    }
}

option_struct! {
    /// `sleep`.
    pub struct SleepOption {
        /// Milliseconds.
        pub duration: i64,
    }
}

option_struct! {
    /// `echo` and `stream_echo`.
    pub struct EchoOption {
        /// Milliseconds (0 = 180,000).
        pub duration: i64,
    }
}

option_struct! {
    /// `hangup`.
    pub struct HangupOption {
        /// `normal` (default), `failed`, `busy`, `cancel`, `timeout`, `noanswer`, `dialout`,
        /// `amd`.
        pub reason: String,
        /// Copy this call's hangup reason (overrides `reason`).
        pub reference_id: IdRef,
    }
}

/// The valid [`HangupOption::reason`] values.
pub const HANGUP_REASONS: &[&str] = &[
    "", "normal", "failed", "busy", "cancel", "timeout", "noanswer", "dialout", "amd",
];

option_struct! {
    /// `recording_start`.
    pub struct RecordingStartOption {
        /// `wav`.
        pub format: String,
        /// Stop after this many seconds of silence (0 = off).
        pub end_of_silence: i64,
        /// `none`, `any`, `*`, `#`.
        pub end_of_key: String,
        /// Maximum seconds (0 = unlimited).
        pub duration: i64,
        /// Beep before recording (VoIPBIN parses but ignores it).
        pub beep_start: bool,
        /// Flow to run when the recording stops.
        pub on_end_flow_id: IdRef,
    }
}

option_struct! {
    /// `external_media_start`.
    pub struct ExternalMediaStartOption {
        /// Host:port of the media peer.
        pub external_host: String,
        /// `rtp`.
        pub encapsulation: String,
        /// `udp`.
        pub transport: String,
        /// Transport data.
        pub transport_data: String,
        /// `client`.
        pub connection_type: String,
        /// `ulaw`.
        pub format: String,
        /// Listen direction.
        pub direction_listen: String,
        /// Speak direction.
        pub direction_speak: String,
        /// Free-form data.
        pub data: Value,
    }
}

option_struct! {
    /// `amd`: answering machine detection.
    pub struct AmdOption {
        /// `hangup` or `continue`.
        pub machine_handle: String,
        /// Do not wait for the result.
        pub r#async: bool,
    }
}

option_struct! {
    /// `confbridge_join`.
    pub struct ConfbridgeJoinOption {
        /// The bridge.
        pub confbridge_id: IdRef,
    }
}

/// Which channels an action can run on (reference §2 "Med").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Media {
    /// Runs on every activeflow.
    Any,
    /// Only on call activeflows.
    Rtc,
    /// Only on non-call activeflows (api, conversation, …).
    NonRtc,
}

/// What a failure of the action does (reference §2 "Err").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorPolicy {
    /// Stop the activeflow.
    Fatal,
    /// Record the failure and continue with the next action.
    Swallow,
}

/// Collects the field names a derived `Deserialize` asks for (to warn about unknown fields).
mod probe {
    use serde::de::{self, Deserializer, Visitor};
    use std::fmt;

    #[derive(Debug)]
    pub(super) struct Stop;
    impl fmt::Display for Stop {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("probe")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<T: fmt::Display>(_: T) -> Self {
            Stop
        }
    }

    pub(super) struct FieldProbe(pub(super) &'static [&'static str]);

    impl<'de> Deserializer<'de> for &mut FieldProbe {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = fields;
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    pub(super) fn fields<'de, T: serde::Deserialize<'de>>() -> &'static [&'static str] {
        let mut p = FieldProbe(&[]);
        let _ = T::deserialize(&mut p);
        p.0
    }
}

/// Declares [`ActionType`], [`ActionOption`] and [`CommandOption`] from one table.
macro_rules! action_table {
    (
        control { $( $(#[$cdoc:meta])* $cv:ident($cty:ty) = $cname:literal, $cmed:ident, $cerr:ident; )* }
        command { $( $(#[$mdoc:meta])* $mv:ident($mty:ty) = $mname:literal, $mmed:ident, $merr:ident; )* }
    ) => {
        /// Every action type: the 43 user types of reference §2 plus the internal `empty`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum ActionType {
            $( $(#[$cdoc])* #[serde(rename = $cname)] $cv, )*
            $( $(#[$mdoc])* #[serde(rename = $mname)] $mv, )*
        }

        impl ActionType {
            /// All types, control types first.
            pub const ALL: &'static [ActionType] = &[ $( ActionType::$cv, )* $( ActionType::$mv, )* ];

            /// The JSON name (`"digits_receive"`).
            pub fn as_str(self) -> &'static str {
                match self { $( ActionType::$cv => $cname, )* $( ActionType::$mv => $mname, )* }
            }

            /// Looks a JSON name up.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $( $cname => Some(ActionType::$cv), )*
                    $( $mname => Some(ActionType::$mv), )*
                    _ => None,
                }
            }

            /// Which channels it runs on.
            pub fn media(self) -> Media {
                match self { $( ActionType::$cv => Media::$cmed, )* $( ActionType::$mv => Media::$mmed, )* }
            }

            /// What a failure does.
            pub fn error_policy(self) -> ErrorPolicy {
                match self { $( ActionType::$cv => ErrorPolicy::$cerr, )* $( ActionType::$mv => ErrorPolicy::$merr, )* }
            }

            /// Whether the engine runs it itself (it never becomes a [`CommandOption`]).
            pub fn is_control(self) -> bool {
                match self { $( ActionType::$cv => true, )* $( ActionType::$mv => false, )* }
            }

            /// Option field names understood for this type.
            pub fn option_fields(self) -> &'static [&'static str] {
                match self {
                    $( ActionType::$cv => probe::fields::<$cty>(), )*
                    $( ActionType::$mv => probe::fields::<$mty>(), )*
                }
            }
        }

        /// A typed option, tagged with its action type.
        ///
        /// Serializes as `{"type": "...", "option": {...}}`.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type", content = "option")]
        pub enum ActionOption {
            $( $(#[$cdoc])* #[serde(rename = $cname)] $cv($cty), )*
            $( $(#[$mdoc])* #[serde(rename = $mname)] $mv($mty), )*
        }

        impl ActionOption {
            /// The action type.
            pub fn kind(&self) -> ActionType {
                match self { $( ActionOption::$cv(_) => ActionType::$cv, )* $( ActionOption::$mv(_) => ActionType::$mv, )* }
            }

            /// The zero-valued option of a type (what an omitted `option` means).
            pub fn default_for(kind: ActionType) -> Self {
                match kind {
                    $( ActionType::$cv => ActionOption::$cv(<$cty>::default()), )*
                    $( ActionType::$mv => ActionOption::$mv(<$mty>::default()), )*
                }
            }

            /// Parses the option object of a `kind` action. The error carries the path inside
            /// the option (`destinations[0].target`) and serde's message.
            pub fn from_value(kind: ActionType, v: &Value) -> Result<Self, (String, String)> {
                fn typed<'de, T: Deserialize<'de>>(v: &'de Value) -> Result<T, (String, String)> {
                    // Fast path without path tracking; the error path is only worked out when
                    // something is wrong.
                    T::deserialize(v).or_else(|_| {
                        serde_path_to_error::deserialize(v).map_err(|e| {
                            let p = e.path().to_string();
                            (if p == "." { String::new() } else { p }, e.inner().to_string())
                        })
                    })
                }
                Ok(match kind {
                    $( ActionType::$cv => ActionOption::$cv(typed(v)?), )*
                    $( ActionType::$mv => ActionOption::$mv(typed(v)?), )*
                })
            }

            /// The option as a JSON value (no type tag).
            pub fn to_value(&self) -> Value {
                let r = match self {
                    $( ActionOption::$cv(o) => serde_json::to_value(o), )*
                    $( ActionOption::$mv(o) => serde_json::to_value(o), )*
                };
                r.unwrap_or(Value::Null)
            }

            /// For non-control actions: the option with every `${…}` substituted, ready for
            /// the runtime. `None` for control actions.
            pub fn to_command(&self, vars: &Variables) -> Option<Result<CommandOption, SubstError>> {
                match self {
                    $( ActionOption::$cv(_) => None, )*
                    $( ActionOption::$mv(o) => Some(o.substitute(vars).map(CommandOption::$mv)), )*
                }
            }
        }

        /// The typed, substituted option of an action the runtime must perform.
        ///
        /// Serializes as `{"type": "...", "option": {...}}`.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type", content = "option")]
        pub enum CommandOption {
            $( $(#[$mdoc])* #[serde(rename = $mname)] $mv($mty), )*
        }

        impl CommandOption {
            /// The action type.
            pub fn kind(&self) -> ActionType {
                match self { $( CommandOption::$mv(_) => ActionType::$mv, )* }
            }
        }
    };
}

action_table! {
    control {
        /// Jump back a limited number of times.
        Goto(GotoOption) = "goto", Any, Fatal;
        /// Jump by a variable's value.
        Branch(BranchOption) = "branch", Any, Fatal;
        /// Compare a variable.
        ConditionVariable(ConditionVariableOption) = "condition_variable", Any, Fatal;
        /// Compare the date and time.
        ConditionDatetime(ConditionDatetimeOption) = "condition_datetime", Any, Fatal;
        /// Test the collected digits (deprecated).
        ConditionCallDigits(ConditionCallDigitsOption) = "condition_call_digits", Rtc, Fatal;
        /// Test the call status (deprecated).
        ConditionCallStatus(ConditionCallStatusOption) = "condition_call_status", Rtc, Fatal;
        /// Set a variable.
        VariableSet(VariableSetOption) = "variable_set", Any, Swallow;
        /// Pause until `continue`.
        Block(NoOption) = "block", NonRtc, Fatal;
        /// End the flow.
        Stop(NoOption) = "stop", Any, Fatal;
        /// No-op (internal; not accepted in user flows).
        Empty(NoOption) = "empty", Any, Swallow;
    }
    command {
        /// Fetch actions over HTTP and push them.
        Fetch(FetchOption) = "fetch", Any, Fatal;
        /// Push another flow's actions.
        FetchFlow(FetchFlowOption) = "fetch_flow", Any, Fatal;
        /// Start outbound calls.
        Call(CallOption) = "call", Any, Fatal;
        /// Ring and bridge.
        Connect(ConnectOption) = "connect", Rtc, Fatal;
        /// Join a queue.
        QueueJoin(QueueJoinOption) = "queue_join", Rtc, Fatal;
        /// Join a conference.
        ConferenceJoin(ConferenceJoinOption) = "conference_join", Rtc, Fatal;
        /// Talk with an AI.
        AiTalk(AiTalkOption) = "ai_talk", Any, Fatal;
        /// AI task.
        AiTask(AiTaskOption) = "ai_task", NonRtc, Fatal;
        /// AI summary.
        AiSummary(AiSummaryOption) = "ai_summary", NonRtc, Fatal;
        /// Send an SMS.
        MessageSend(MessageSendOption) = "message_send", Any, Fatal;
        /// Send an email.
        EmailSend(EmailSendOption) = "email_send", Any, Swallow;
        /// Send a webhook.
        WebhookSend(WebhookSendOption) = "webhook_send", Any, Swallow;
        /// Post into a conversation.
        ConversationSend(ConversationSendOption) = "conversation_send", Any, Swallow;
        /// Create a CRM case.
        CaseCreate(CaseCreateOption) = "case_create", Any, Swallow;
        /// Start live transcription.
        TranscribeStart(TranscribeOption) = "transcribe_start", Rtc, Swallow;
        /// Transcribe the call's recordings.
        TranscribeRecording(TranscribeOption) = "transcribe_recording", Any, Swallow;
        /// Answer the call.
        Answer(NoOption) = "answer", Rtc, Swallow;
        /// Text-to-speech.
        Talk(TalkOption) = "talk", Rtc, Swallow;
        /// Play URLs.
        Play(PlayOption) = "play", Rtc, Swallow;
        /// Play a beep.
        Beep(NoOption) = "beep", Rtc, Swallow;
        /// Collect DTMF.
        DigitsReceive(DigitsReceiveOption) = "digits_receive", Rtc, Swallow;
        /// Send DTMF.
        DigitsSend(DigitsSendOption) = "digits_send", Rtc, Swallow;
        /// Wait.
        Sleep(SleepOption) = "sleep", Rtc, Swallow;
        /// Echo the caller's audio.
        Echo(EchoOption) = "echo", Rtc, Swallow;
        /// Echo the media stream.
        StreamEcho(EchoOption) = "stream_echo", Rtc, Swallow;
        /// Hang up.
        Hangup(HangupOption) = "hangup", Rtc, Swallow;
        /// Start recording.
        RecordingStart(RecordingStartOption) = "recording_start", Rtc, Swallow;
        /// Stop recording.
        RecordingStop(NoOption) = "recording_stop", Rtc, Swallow;
        /// Start external media.
        ExternalMediaStart(ExternalMediaStartOption) = "external_media_start", Rtc, Swallow;
        /// Stop external media.
        ExternalMediaStop(NoOption) = "external_media_stop", Rtc, Swallow;
        /// Answering machine detection.
        Amd(AmdOption) = "amd", Rtc, Swallow;
        /// Join a bridge.
        ConfbridgeJoin(ConfbridgeJoinOption) = "confbridge_join", Rtc, Swallow;
        /// Mute (no executor in VoIPBIN).
        Mute(NoOption) = "mute", Rtc, Swallow;
        /// Stop live transcription (no executor in VoIPBIN).
        TranscribeStop(NoOption) = "transcribe_stop", Rtc, Swallow;
    }
}

impl fmt::Display for ActionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ActionType {
    /// Whether a user flow may contain it (everything except the internal `empty`).
    pub fn is_user_type(self) -> bool {
        self != ActionType::Empty
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forty_three_user_types() {
        let user = ActionType::ALL.iter().filter(|t| t.is_user_type()).count();
        assert_eq!(user, 43);
        for t in ActionType::ALL {
            assert_eq!(ActionType::from_name(t.as_str()), Some(*t));
            let json = serde_json::to_value(t).expect("ser");
            assert_eq!(json, Value::String(t.as_str().to_owned()));
        }
    }

    #[test]
    fn field_probe_lists_fields() {
        assert_eq!(
            ActionType::Talk.option_fields(),
            &[
                "text",
                "language",
                "provider",
                "voice_id",
                "digits_handle",
                "async"
            ]
        );
        assert!(ActionType::Answer.option_fields().is_empty());
    }

    #[test]
    fn option_errors_have_paths() {
        let v = serde_json::json!({"destinations":[{"target":"+1"},{"target":5}]});
        let e = ActionOption::from_value(ActionType::MessageSend, &v).expect_err("bad");
        assert_eq!(e.0, "destinations[1].target");
        let v = serde_json::json!({"target_id":"nope"});
        let e = ActionOption::from_value(ActionType::Goto, &v).expect_err("bad");
        assert_eq!(e.0, "target_id");
        assert!(e.1.contains("not a UUID"), "{}", e.1);
    }

    #[test]
    fn idref_templates_resolve() {
        let mut vars = Variables::new();
        let id = Uuid::new_v4();
        vars.set("c", &id.to_string(), &crate::limits::Limits::default())
            .expect("set");
        let r = IdRef::parse("${c}").expect("parse");
        assert!(matches!(r, IdRef::Template(_)));
        assert_eq!(r.substitute(&vars).expect("resolve"), IdRef::Id(id));
        let bad = IdRef::parse("${missing}x").expect("parse");
        assert!(bad.substitute(&vars).is_err());
        assert_eq!(
            IdRef::parse("${missing}").expect("p").substitute(&vars),
            Ok(IdRef::default())
        );
    }

    #[test]
    fn command_substitution_is_recursive() {
        let mut vars = Variables::new();
        vars.set("phone", "+1555", &crate::limits::Limits::default())
            .expect("set");
        let o = ActionOption::from_value(
            ActionType::Call,
            &serde_json::json!({"destinations":[{"type":"tel","target":"${phone}"}],
                "actions":[{"type":"talk","option":{"text":"hi ${phone}","n":[1,2]}}]}),
        )
        .expect("parse");
        let Some(Ok(CommandOption::Call(c))) = o.to_command(&vars) else {
            panic!("not a call");
        };
        assert_eq!(c.destinations[0].target, "+1555");
        assert_eq!(
            c.actions[0],
            serde_json::json!({"type":"talk","option":{"text":"hi +1555","n":[1,2]}})
        );
    }
}
