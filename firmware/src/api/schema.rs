//! Documentation-only types for the OpenAPI document: the shapes of bodies that are parsed
//! elsewhere (flows and actions by the flows crate, addresses, events by the store). Kept
//! apart from `openapi` so handlers name them without depending on the document that
//! lists the handlers.

use utoipa::ToSchema;
use uuid::Uuid;

/// A flow in VoIPBIN's JSON (documentation type; unknown fields are kept verbatim).
#[derive(ToSchema)]
#[allow(
    dead_code,
    reason = "documentation only: bodies are parsed by the flows crate"
)]
pub(super) struct FlowDoc {
    /// Flow id (assigned by the server when missing on create).
    id: Option<Uuid>,
    /// `flow` (set by the server; any value sent is ignored).
    #[schema(rename = "type")]
    kind: Option<serde_json::Value>,
    /// Name.
    name: Option<String>,
    /// Description.
    detail: Option<String>,
    /// The actions, run in array order unless `next_id` says otherwise.
    actions: Vec<ActionDoc>,
    /// Flow started when an activeflow of this flow ends (`""` or the all-zero id: none).
    #[schema(value_type = Option<String>, pattern = "^(|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")]
    on_complete_flow_id: Option<Uuid>,
    /// Created (set by the server; any value sent is ignored).
    tm_create: Option<serde_json::Value>,
    /// Last changed (set by the server; any value sent is ignored).
    tm_update: Option<serde_json::Value>,
}

/// One action (documentation type).
#[derive(ToSchema)]
#[allow(
    dead_code,
    reason = "documentation only: actions are parsed by the flows crate"
)]
pub(super) struct ActionDoc {
    /// Action id (assigned when missing).
    id: Option<Uuid>,
    /// Explicit successor (default: the next element).
    next_id: Option<Uuid>,
    /// Action type, e.g. `talk`, `digits_receive`, `branch`, `message_send`.
    #[schema(rename = "type")]
    kind: String,
    /// The action's options (see the flows crate documentation).
    #[schema(value_type = Option<Object>)]
    option: Option<serde_json::Value>,
}

/// An address (VoIPBIN's `CommonAddress`; documentation type).
#[derive(ToSchema)]
#[allow(
    dead_code,
    reason = "documentation only: the flows crate's Address is used"
)]
pub(super) struct AddressDoc {
    /// `tel` (phone number), `""`, or another VoIPBIN address type.
    #[schema(rename = "type")]
    kind: Option<String>,
    /// The number.
    target: Option<String>,
    /// Display name of the target.
    target_name: Option<String>,
    /// Name.
    name: Option<String>,
    /// Free text.
    detail: Option<String>,
}

/// One entry of the event log (documentation type; the store's `Event`).
#[derive(ToSchema)]
#[allow(
    dead_code,
    reason = "documentation only: the store's Event is serialized"
)]
pub(super) struct EventDoc {
    /// Position in the log: strictly increasing, gap-free, persistent.
    seq: u64,
    /// When the change was committed.
    time: chrono::DateTime<chrono::Utc>,
    /// `activeflow_created`, `activeflow_updated`, `activeflow_deleted`, `flow_created`,
    /// `flow_updated`, `flow_deleted`, `call_created`, `call_updated`, `message_created`,
    /// `message_updated`, `recording_created`, `recording_updated`, `recording_deleted`,
    /// `number_created`, `number_updated`, `number_deleted`, `queue_created`, `queue_updated`,
    /// `queue_deleted`, `queuecall_created`, `queuecall_updated`, `line_updated` (an analog port's
    /// state changed: `resource_id` is stable per line, `data` is its `AnalogPortDoc` with
    /// `id` and `own_number`), …
    #[schema(rename = "type")]
    kind: String,
    /// The resource the event is about.
    resource_id: Uuid,
    /// The resource after the change (its public JSON).
    #[schema(value_type = Object)]
    data: serde_json::Value,
}

/// An analog port's state (`GET /v1.0/gateway/lines` `analog`, `line_updated` events).
#[derive(ToSchema)]
#[allow(
    dead_code,
    reason = "documentation only: flowgate_board's AnalogLineStatus is serialized"
)]
pub(super) struct AnalogPortDoc {
    /// The line id (in `line_updated` events).
    id: Option<String>,
    /// FXS: the port's extension; FXO: the exchange line's number (in events).
    own_number: Option<String>,
    /// `fxs` or `fxo`.
    kind: String,
    /// The chip as identified (`Si3215 rev 3`), once started.
    chip: Option<String>,
    /// `on_hook` or `off_hook` (FXS: the phone's; FXO: the port's own).
    hook: String,
    /// FXS: the port rings the phone; FXO: the exchange rings the line.
    ringing: bool,
    /// A call is in progress on the port.
    in_call: bool,
    /// Loop current, mA (rounded).
    loop_current_ma: Option<f32>,
    /// Line voltage, V (FXO: tip-ring, signed; FXS: battery; rounded).
    line_voltage_v: Option<f32>,
    /// Alarms: `power` and `thermal` counts (FXS), `line_open` (FXS, after repeated power
    /// alarms), `no_battery` (FXO).
    #[schema(value_type = Object)]
    alarms: serde_json::Value,
    /// The call leg on the port (the call's id).
    leg: Option<Uuid>,
    /// Why the port does not work, if it does not (it is retried every 10 s).
    fault: Option<String>,
}
