//! The gateway's tables, opened once: what the runtime and the API share.

use flowgate_flows::engine::MainActions;
use flowgate_flows::model::Flow;

use super::{Store, StoreError, Table};
use crate::model::{
    ActiveflowRecord, Call, Conversation, Message, Number, Pending, Queue, Queuecall, Recording,
    SmsSeen, Transcribe,
};

/// Every typed table over one [`Store`]. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    /// The underlying store (batches, events, flush).
    pub store: Store,
    /// Flows, in VoIPBIN's JSON (server fields such as `tm_create` kept in the flow's extras).
    pub flows: Table<Flow>,
    /// Number → flow bindings.
    pub numbers: Table<Number>,
    /// Activeflows with their engine state, rewritten at every step. Their flow's actions
    /// are not in it (they never change): see `activeflow_actions`.
    pub activeflows: Table<ActiveflowRecord>,
    /// Each activeflow's main actions (the flow it runs), written once when it is created,
    /// under the activeflow's id: a record read from `activeflows` gets them back with
    /// [`flowgate_flows::engine::Activeflow::attach_main_actions`] before it runs again.
    pub activeflow_actions: Table<MainActions>,
    /// Calls.
    pub calls: Table<Call>,
    /// SMS, both directions.
    pub messages: Table<Message>,
    /// SMS conversations.
    pub conversations: Table<Conversation>,
    /// Recordings.
    pub recordings: Table<Recording>,
    /// Transcriptions (`transcribe_recording`, `transcribe_start`).
    pub transcribes: Table<Transcribe>,
    /// Local call queues.
    pub queues: Table<Queue>,
    /// Callers' stays in queues.
    pub queuecalls: Table<Queuecall>,
    /// Inbound SMS dedupe markers.
    pub sms_seen: Table<SmsSeen>,
    /// Outbound messages still to send (key: message id).
    pub sms_queue: Table<Pending>,
    /// Inbound messages whose flow must still be started (key: message id).
    pub sms_flow_pending: Table<Pending>,
}

impl Db {
    /// Opens every table of `store`.
    pub fn new(store: Store) -> Result<Self, StoreError> {
        Ok(Self {
            flows: store.table("flows")?,
            numbers: store.table("numbers")?,
            activeflows: store.table("activeflows")?,
            activeflow_actions: store.table("activeflow_actions")?,
            calls: store.table("calls")?,
            messages: store.table("messages")?,
            conversations: store.table("conversations")?,
            recordings: store.table("recordings")?,
            transcribes: store.table("transcribes")?,
            queues: store.table("queues")?,
            queuecalls: store.table("queuecalls")?,
            sms_seen: store.table("sms_seen")?,
            sms_queue: store.table("sms_queue")?,
            sms_flow_pending: store.table("sms_flow_pending")?,
            store,
        })
    }
}
