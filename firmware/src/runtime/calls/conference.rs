//! `conference_join` / `confbridge_join` and VoIPBIN's conference resource: the
//! runtime's conferences, mixed by the media layer ([`crate::media::conference`]),
//! identified by VoIPBIN's `conference_id` (or `confbridge_id`: both name the same table
//! here, the gateway has no separate bridge objects).
//!
//! A conference exists either because the API created it (`POST /v1.0/conferences`,
//! VoIPBIN's fields: type, name, detail, data, timeout, pre/post flow) — it then lives
//! until it is deleted or its timeout ends it, with or without participants — or because
//! a call joined an id nobody created (the gateway's shortcut: it lives while it has
//! participants). Ending a conference kicks every participant.
//!
//! As in VoIPBIN the join action blocks while the call is in the conference. It ends when
//! the caller hangs up (the flow ends with the call), when the participant is kicked
//! (`DELETE /v1.0/conferencecalls/{id}`, the conference's end: the flow goes on with the
//! next action, as VoIPBIN's confbridge kick does), or when the flow is interrupted (the
//! future is dropped, and the guard takes the call out). Each join is a conferencecall
//! (VoIPBIN's participant resource) with its own id.
//!
//! `conference_join` on a conference with a `pre_flow_id` does what VoIPBIN's conference
//! service does: it pushes a stack of `fetch_flow(pre_flow_id)` then
//! `confbridge_join(conference)`, so the caller hears the pre flow before joining.
//! VoIPBIN stores `post_flow_id` without running it anywhere; so does the gateway.
//!
//! The conference recording (`recording_start`/`recording_stop`, API only, as in
//! VoIPBIN) is one file of the mix of everybody ([`crate::media::confrec`]), stored as a
//! recording with `reference_type` `confbridge`; it ends with the conference.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flowgate_flows::engine::Outcome;
use flowgate_flows::model::{Action, ReferenceType};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use utoipa::ToSchema;
use uuid::Uuid;

use super::LiveCall;
use super::media::recording_variables;
use crate::media::{Conference, ConferenceRecording, ConferenceRecordingDone, RecordingEnd};
use crate::model::{Recording, RecordingStatus};
use crate::runtime::mailbox::Signal;
use crate::runtime::{FlowSource, Runtime, RuntimeError, StartRequest};
use crate::store::Batch;

/// VoIPBIN turns a timeout under a minute into a day.
const DEFAULT_TIMEOUT_SECS: i64 = 86_400;

/// VoIPBIN's longest conference recording.
const MAX_RECORDING_SECS: i64 = 86_400;

/// VoIPBIN's conference types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConferenceType {
    /// Any number of participants (also what `""` means).
    #[default]
    #[serde(alias = "")]
    Conference,
    /// Two-party: when one leaves, the other is kicked.
    Connect,
}

/// VoIPBIN's conference status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConferenceStatus {
    /// Live.
    Progressing,
    /// Ending: its participants are being kicked.
    Terminating,
    /// Over.
    Terminated,
}

/// What `POST /v1.0/conferences` sets (VoIPBIN's request body).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct ConferenceRequest {
    /// The id to give the conference (a new one when absent or nil).
    #[serde(with = "crate::model::nil_uuid")]
    #[schema(value_type = Option<String>, pattern = "^(|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")]
    pub id: Option<Uuid>,
    /// `conference` (default) or `connect`.
    #[serde(rename = "type")]
    pub kind: ConferenceType,
    /// Name.
    pub name: String,
    /// Description.
    pub detail: String,
    /// Free-form data kept with the conference.
    #[schema(value_type = Object)]
    pub data: serde_json::Map<String, serde_json::Value>,
    /// Seconds after which the conference ends (0 = never; under 60 means a day, as in
    /// VoIPBIN).
    pub timeout: i64,
    /// Flow a caller runs before joining (`conference_join`).
    #[serde(with = "crate::model::nil_uuid")]
    #[schema(value_type = Option<String>, pattern = "^(|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")]
    pub pre_flow_id: Option<Uuid>,
    /// Kept, as VoIPBIN keeps it; nothing runs it.
    #[serde(with = "crate::model::nil_uuid")]
    #[schema(value_type = Option<String>, pattern = "^(|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")]
    pub post_flow_id: Option<Uuid>,
}

/// What `POST /v1.0/conferences/{id}/recording_start` takes (VoIPBIN's body).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct ConferenceRecordingRequest {
    /// Only `wav`.
    pub format: String,
    /// Longest recording, seconds (0 = the configured cap).
    pub duration: i64,
    /// Flow started when the recording ends.
    #[serde(with = "crate::model::nil_uuid")]
    #[schema(value_type = Option<String>, pattern = "^(|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")]
    pub on_end_flow_id: Option<Uuid>,
}

/// A participant (VoIPBIN's conferencecall).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Conferencecall {
    /// The conferencecall id.
    pub id: Uuid,
    /// The flow of the call that joined.
    #[serde(with = "crate::model::nil_uuid")]
    #[schema(value_type = Option<Uuid>)]
    pub activeflow_id: Option<Uuid>,
    /// Its conference.
    pub conference_id: Uuid,
    /// Always `call`.
    pub reference_type: String,
    /// The call.
    pub reference_id: Uuid,
    /// The call again (a gateway addition: the name the participant list had first).
    pub call_id: Uuid,
    /// `joined`, `leaving` (kicked, on its way out).
    pub status: String,
    /// Whether the others do not hear it (a gateway addition).
    pub muted: bool,
    /// Joined.
    pub tm_create: DateTime<Utc>,
    /// Last change.
    pub tm_update: DateTime<Utc>,
}

/// A conference as the API shows it: VoIPBIN's fields, plus its participants.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ConferenceInfo {
    /// The conference (or confbridge) id.
    pub id: Uuid,
    /// `conference` or `connect`.
    #[serde(rename = "type")]
    pub kind: ConferenceType,
    /// `progressing`, `terminating`, `terminated`.
    pub status: ConferenceStatus,
    /// Name.
    pub name: String,
    /// Description.
    pub detail: String,
    /// Free-form data.
    #[schema(value_type = Object)]
    pub data: serde_json::Map<String, serde_json::Value>,
    /// Seconds until it ends, from its creation (0 = never).
    pub timeout: i64,
    /// Flow run before joining.
    #[serde(with = "crate::model::nil_uuid")]
    #[schema(value_type = Option<Uuid>)]
    pub pre_flow_id: Option<Uuid>,
    /// Kept, not run.
    #[serde(with = "crate::model::nil_uuid")]
    #[schema(value_type = Option<Uuid>)]
    pub post_flow_id: Option<Uuid>,
    /// The participants' conferencecall ids, in joining order.
    pub conferencecall_ids: Vec<Uuid>,
    /// The recording in progress.
    #[serde(with = "crate::model::nil_uuid")]
    #[schema(value_type = Option<Uuid>)]
    pub recording_id: Option<Uuid>,
    /// Every recording of the conference.
    pub recording_ids: Vec<Uuid>,
    /// The participants (a gateway addition), in joining order.
    pub participants: Vec<Conferencecall>,
    /// Created (or first joined).
    pub tm_create: DateTime<Utc>,
    /// Ended.
    pub tm_end: Option<DateTime<Utc>>,
}

struct Member {
    call: Conferencecall,
    /// Wakes the join action: the participant was kicked.
    kick: Arc<Notify>,
}

struct RoomRecording {
    handle: ConferenceRecording,
    /// True once the recording's record says it ended.
    stored: watch::Receiver<bool>,
}

struct Room {
    mixer: Conference,
    info: ConferenceInfo,
    /// Created through the API: lives without participants.
    created: bool,
    members: IndexMap<Uuid, Member>,
    recording: Option<RoomRecording>,
    /// Cancels the timeout.
    timer: Option<CancellationToken>,
    /// The most participants it had at once (`connect` kicks the last one only after
    /// there were two).
    peak: usize,
}

impl Room {
    fn new(info: ConferenceInfo, created: bool) -> Self {
        Room {
            mixer: Conference::new(),
            info,
            created,
            members: IndexMap::new(),
            recording: None,
            timer: None,
            peak: 0,
        }
    }

    fn view(&self) -> ConferenceInfo {
        let mut info = self.info.clone();
        let mutes: HashMap<Uuid, bool> = self
            .mixer
            .participants()
            .into_iter()
            .map(|p| (p.id, p.muted))
            .collect();
        info.participants = self
            .members
            .values()
            .map(|m| Conferencecall {
                muted: mutes.get(&m.call.reference_id).copied().unwrap_or(false),
                ..m.call.clone()
            })
            .collect();
        info.conferencecall_ids = info.participants.iter().map(|c| c.id).collect();
        info
    }
}

/// The runtime's conferences, by id.
#[derive(Default)]
pub(crate) struct Conferences {
    rooms: HashMap<Uuid, Room>,
}

fn new_info(id: Uuid, request: &ConferenceRequest) -> ConferenceInfo {
    ConferenceInfo {
        id,
        kind: request.kind,
        status: ConferenceStatus::Progressing,
        name: request.name.clone(),
        detail: request.detail.clone(),
        data: request.data.clone(),
        timeout: request.timeout,
        pre_flow_id: request.pre_flow_id.filter(|u| !u.is_nil()),
        post_flow_id: request.post_flow_id.filter(|u| !u.is_nil()),
        conferencecall_ids: Vec::new(),
        recording_id: None,
        recording_ids: Vec::new(),
        participants: Vec::new(),
        tm_create: Utc::now(),
        tm_end: None,
    }
}

/// Takes the call out of its conference when the action ends, however it ends.
struct Membership {
    rt: Runtime,
    conference_id: Uuid,
    call: LiveCall,
    token: Uuid,
}

impl Drop for Membership {
    fn drop(&mut self) {
        if let Some(media) = self.call.open_media_session() {
            // The media thread drops its end with this; the explicit leave below makes
            // the departure immediate for the others and for the table.
            let _ = media.unbridge();
        }
        self.rt
            .conference_left(self.conference_id, self.call.id(), self.token);
        info!(conference = %self.conference_id, call = %self.call.id(), "left the conference");
    }
}

impl LiveCall {
    /// Joins the conference `conference_id` until the call ends, the participant is
    /// kicked or the flow moves on.
    pub(super) async fn conference_join(&self, kind: &str, conference_id: Uuid) -> Outcome {
        if conference_id.is_nil() {
            return Outcome::Failed(format!("{kind}: no conference id"));
        }
        let rt = self.inner.rt.clone();
        if kind == "conference_join"
            && let Some(pre_flow) = rt.conference_pre_flow(conference_id)
        {
            return match pre_flow_stack(pre_flow, conference_id) {
                Ok(actions) => Outcome::Actions(actions),
                Err(e) => Outcome::Failed(format!("{kind}: {e}")),
            };
        }
        if let Err(e) = self.answer().await {
            return Outcome::Failed(format!("{kind}: answering the call: {e}"));
        }
        let media = match self.media().await {
            Ok(m) => m,
            Err(e) => return Outcome::Failed(format!("{kind}: {e}")),
        };
        let joined = match rt.conference_enter(conference_id, self) {
            Ok(j) => j,
            Err(e) => return Outcome::Failed(format!("{kind}: {e}")),
        };
        let membership = Membership {
            rt: rt.clone(),
            conference_id,
            call: self.clone(),
            token: joined.conferencecall.id,
        };
        if let Err(e) = media.join_conference(joined.end) {
            warn!(call = %self.id(), conference = %conference_id, cause = %e, "conference: no audio");
            drop(membership);
            return Outcome::Failed(format!("{kind}: {e}"));
        }
        // Not VoIPBIN's (it sets no conference variables), the queue's pattern: what a
        // flow after the join may want to know.
        for (name, value) in [
            ("voipbin.conference.id", conference_id.to_string()),
            ("voipbin.conference.name", joined.name),
            ("voipbin.conference.detail", joined.detail),
            (
                "voipbin.conferencecall.id",
                joined.conferencecall.id.to_string(),
            ),
        ] {
            self.to_flow(Signal::SetVariable {
                name: name.into(),
                value,
            });
        }
        info!(call = %self.id(), conference = %conference_id, conferencecall = %joined.conferencecall.id, "joined the conference");
        let outcome = tokio::select! {
            _ = self.wait_phase(|_| false) => Outcome::Hangup,
            () = joined.kick.notified() => {
                info!(call = %self.id(), conference = %conference_id, "kicked from the conference");
                Outcome::Done
            }
        };
        drop(membership);
        outcome
    }
}

impl LiveCall {
    /// The conference this call is in, with its conferencecall id and the other
    /// participants' calls.
    fn conference_peers(&self) -> Option<(Uuid, Uuid, Vec<Uuid>)> {
        let table = self.inner.rt.inner.conferences.lock();
        table.rooms.values().find_map(|room| {
            let me = room.members.get(&self.id())?;
            let others = room.members.keys().copied().filter(|c| *c != self.id());
            Some((room.info.id, me.call.id, others.collect()))
        })
    }

    /// A digit this call sent (signalled or in-band): when it is in a conference, the
    /// `conference_dtmf` event says who pressed what (the flow gets it as always).
    pub(super) fn conference_digit(&self, digit: char, source: crate::media::DtmfSource) {
        let Some((conference, conferencecall, _)) = self.conference_peers() else {
            return;
        };
        let source = match source {
            crate::media::DtmfSource::Signalled => "signalled",
            crate::media::DtmfSource::InBand => "in_band",
        };
        info!(call = %self.id(), %conference, %digit, source, "conference digit");
        let db = self.inner.rt.db();
        let mut batch = Batch::new();
        batch.event(
            "conference_dtmf",
            conference,
            serde_json::json!({
                "conference_id": conference,
                "conferencecall_id": conferencecall,
                "call_id": self.id(),
                "digit": digit.to_string(),
                "source": source,
            }),
        );
        if let Err(e) = db.store.commit(batch) {
            warn!(call = %self.id(), cause = %e, "conference digit event not stored");
        }
    }

    /// A digit this call's line signalled that its audio did not carry: every other
    /// participant gets it (out of band where its line can, in-band otherwise), as a
    /// bridged peer would. False when the call is in no conference.
    pub(super) fn conference_relay(&self, digit: char) -> bool {
        let Some((conference, _, others)) = self.conference_peers() else {
            return false;
        };
        tracing::debug!(call = %self.id(), %conference, %digit, to = others.len(), "relaying a conference digit");
        for other in others {
            if let Some(peer) = self.inner.rt.live_call_by_id(other) {
                self.relay_digit_to(peer, digit);
            }
        }
        true
    }
}

/// VoIPBIN's conference service stack: the pre flow, then the join itself.
fn pre_flow_stack(pre_flow: Uuid, conference_id: Uuid) -> Result<Vec<Action>, String> {
    [
        serde_json::json!({"id": Uuid::new_v4(), "type": "fetch_flow", "option": {"flow_id": pre_flow}}),
        serde_json::json!({"id": Uuid::new_v4(), "type": "confbridge_join", "option": {"confbridge_id": conference_id}}),
    ]
    .into_iter()
    .map(|v| serde_json::from_value::<Action>(v).map_err(|e| e.to_string()))
    .collect()
}

/// What a join gets.
struct Joined {
    end: crate::media::ConferenceEnd,
    conferencecall: Conferencecall,
    kick: Arc<Notify>,
    name: String,
    detail: String,
}

impl Runtime {
    fn conference_pre_flow(&self, id: Uuid) -> Option<Uuid> {
        self.inner
            .conferences
            .lock()
            .rooms
            .get(&id)
            .and_then(|r| r.info.pre_flow_id)
    }

    /// Adds `call` to conference `id` (created for it when nobody created it).
    fn conference_enter(&self, id: Uuid, call: &LiveCall) -> Result<Joined, RuntimeError> {
        let mut table = self.inner.conferences.lock();
        let room = table.rooms.entry(id).or_insert_with(|| {
            info!(conference = %id, "conference started by its first participant");
            Room::new(new_info(id, &ConferenceRequest::default()), false)
        });
        if room.info.status != ConferenceStatus::Progressing {
            return Err(RuntimeError::Invalid(format!("conference {id} is ending")));
        }
        let now = Utc::now();
        let conferencecall = Conferencecall {
            id: Uuid::now_v7(),
            activeflow_id: call.activeflow(),
            conference_id: id,
            reference_type: "call".into(),
            reference_id: call.id(),
            call_id: call.id(),
            status: "joined".into(),
            muted: false,
            tm_create: now,
            tm_update: now,
        };
        let kick = Arc::new(Notify::new());
        // A call joining again replaces its old membership; wake that one's action.
        if let Some(old) = room.members.shift_remove(&call.id()) {
            old.kick.notify_one();
        }
        room.members.insert(
            call.id(),
            Member {
                call: conferencecall.clone(),
                kick: Arc::clone(&kick),
            },
        );
        room.peak = room.peak.max(room.members.len());
        Ok(Joined {
            end: room.mixer.join(call.id()),
            conferencecall,
            kick,
            name: room.info.name.clone(),
            detail: room.info.detail.clone(),
        })
    }

    /// The membership `token` of `call` ended: out of the mixer and the table; a
    /// conference nobody created ends with its last participant, a `connect` one kicks
    /// the one left.
    fn conference_left(&self, id: Uuid, call: Uuid, token: Uuid) {
        let ended = {
            let mut table = self.inner.conferences.lock();
            let Some(room) = table.rooms.get_mut(&id) else {
                return;
            };
            if room.members.get(&call).is_none_or(|m| m.call.id != token) {
                // Rejoined since: the new membership stays.
                return;
            }
            room.members.shift_remove(&call);
            room.mixer.leave(call);
            if room.info.kind == ConferenceType::Connect && room.peak >= 2 {
                for m in room.members.values() {
                    m.kick.notify_one();
                }
            }
            if room.members.is_empty() && !room.created {
                table.rooms.remove(&id)
            } else {
                None
            }
        };
        if let Some(room) = ended {
            info!(conference = %id, "conference ended: last participant left");
            self.conference_ended(room);
        }
    }

    /// A room out of the table: its recording ends, its participants are kicked.
    fn conference_ended(&self, mut room: Room) {
        if let Some(timer) = room.timer.take() {
            timer.cancel();
        }
        if let Some(rec) = room.recording.take() {
            rec.handle.stop(RecordingEnd::Hangup);
        }
        for m in room.members.values() {
            m.kick.notify_one();
        }
        room.info.status = ConferenceStatus::Terminated;
        room.info.tm_end = Some(Utc::now());
        self.conference_event("conference_deleted", &room.view());
    }

    fn conference_event(&self, kind: &str, info: &ConferenceInfo) {
        let db = self.db();
        let mut batch = Batch::new();
        batch.event(
            kind,
            info.id,
            serde_json::to_value(info).unwrap_or_default(),
        );
        if let Err(e) = db.store.commit(batch) {
            warn!(conference = %info.id, cause = %e, "conference event not stored");
        }
    }

    /// Creates a conference (`POST /v1.0/conferences`); its timeout starts now.
    ///
    /// # Errors
    /// [`RuntimeError::Invalid`] when the id is taken or the timeout negative.
    pub fn conference_create(
        &self,
        request: ConferenceRequest,
    ) -> Result<ConferenceInfo, RuntimeError> {
        if request.timeout < 0 {
            return Err(RuntimeError::Invalid("timeout must not be negative".into()));
        }
        let id = request
            .id
            .filter(|u| !u.is_nil())
            .unwrap_or_else(Uuid::now_v7);
        let mut info = new_info(id, &request);
        if info.timeout > 0 && info.timeout < 60 {
            info.timeout = DEFAULT_TIMEOUT_SECS;
        }
        let view = {
            let mut table = self.inner.conferences.lock();
            if table.rooms.contains_key(&id) {
                return Err(RuntimeError::Invalid(format!(
                    "conference {id} already exists"
                )));
            }
            let mut room = Room::new(info, true);
            room.timer = self.conference_timer(id, room.info.timeout);
            let view = room.view();
            table.rooms.insert(id, room);
            view
        };
        info!(conference = %id, name = %view.name, timeout = view.timeout, "conference created");
        self.conference_event("conference_created", &view);
        Ok(view)
    }

    /// Ends conference `id` after `secs` (none for 0).
    fn conference_timer(&self, id: Uuid, secs: i64) -> Option<CancellationToken> {
        let secs = u64::try_from(secs).ok().filter(|s| *s > 0)?;
        let token = self.cancel_token().child_token();
        let cancelled = token.clone();
        let rt = self.clone();
        self.spawn(async move {
            tokio::select! {
                () = cancelled.cancelled() => {}
                () = tokio::time::sleep(Duration::from_secs(secs)) => {
                    info!(conference = %id, secs, "conference timeout");
                    let _ = rt.conference_delete(id);
                }
            }
        });
        Some(token)
    }

    /// Ends conference `id` (`DELETE /v1.0/conferences/{id}`, its timeout): every
    /// participant is kicked (their flows go on), its recording ends.
    ///
    /// # Errors
    /// [`RuntimeError::ConferenceNotFound`].
    pub fn conference_delete(&self, id: Uuid) -> Result<ConferenceInfo, RuntimeError> {
        let room = self
            .inner
            .conferences
            .lock()
            .rooms
            .remove(&id)
            .ok_or(RuntimeError::ConferenceNotFound(id))?;
        info!(conference = %id, participants = room.members.len(), "conference ended");
        let mut view = room.view();
        self.conference_ended(room);
        view.status = ConferenceStatus::Terminated;
        view.tm_end = Some(Utc::now());
        Ok(view)
    }

    /// The conferences, by id.
    #[must_use]
    pub fn conferences(&self) -> Vec<ConferenceInfo> {
        let mut list: Vec<ConferenceInfo> = self
            .inner
            .conferences
            .lock()
            .rooms
            .values()
            .map(Room::view)
            .collect();
        list.sort_by_key(|c| c.id);
        list
    }

    /// One conference.
    ///
    /// # Errors
    /// [`RuntimeError::ConferenceNotFound`].
    pub fn conference(&self, id: Uuid) -> Result<ConferenceInfo, RuntimeError> {
        self.inner
            .conferences
            .lock()
            .rooms
            .get(&id)
            .map(Room::view)
            .ok_or(RuntimeError::ConferenceNotFound(id))
    }

    /// Mutes or unmutes call `call_id` in conference `conference_id` (the others stop or
    /// start hearing it). False when there is no such participant.
    #[must_use]
    pub fn conference_mute(&self, conference_id: Uuid, call_id: Uuid, muted: bool) -> bool {
        self.inner
            .conferences
            .lock()
            .rooms
            .get(&conference_id)
            .is_some_and(|r| r.members.contains_key(&call_id) && r.mixer.set_muted(call_id, muted))
    }

    /// The live conferencecalls, by id.
    #[must_use]
    pub fn conferencecalls(&self) -> Vec<Conferencecall> {
        let mut list: Vec<Conferencecall> = self
            .inner
            .conferences
            .lock()
            .rooms
            .values()
            .flat_map(|r| r.view().participants)
            .collect();
        list.sort_by_key(|c| c.id);
        list
    }

    /// One live conferencecall.
    ///
    /// # Errors
    /// [`RuntimeError::ConferenceNotFound`] (naming the conferencecall).
    pub fn conferencecall(&self, id: Uuid) -> Result<Conferencecall, RuntimeError> {
        self.conferencecalls()
            .into_iter()
            .find(|c| c.id == id)
            .ok_or(RuntimeError::ConferenceNotFound(id))
    }

    /// Kicks a participant (`DELETE /v1.0/conferencecalls/{id}`): it leaves the
    /// conference and its flow goes on with the next action.
    ///
    /// # Errors
    /// [`RuntimeError::ConferenceNotFound`] (naming the conferencecall).
    pub fn conferencecall_kick(&self, id: Uuid) -> Result<Conferencecall, RuntimeError> {
        let mut table = self.inner.conferences.lock();
        for room in table.rooms.values_mut() {
            if let Some(m) = room.members.values_mut().find(|m| m.call.id == id) {
                m.call.status = "leaving".into();
                m.call.tm_update = Utc::now();
                m.kick.notify_one();
                info!(conference = %room.info.id, conferencecall = %id, call = %m.call.reference_id, "kicking a participant");
                return Ok(m.call.clone());
            }
        }
        Err(RuntimeError::ConferenceNotFound(id))
    }

    /// Starts the conference recording: one file of the mix of everybody.
    ///
    /// # Errors
    /// [`RuntimeError::ConferenceNotFound`]; [`RuntimeError::Invalid`] when a recording
    /// is in progress, the format is not wav or the gateway has no media layer.
    pub async fn conference_recording_start(
        &self,
        id: Uuid,
        request: ConferenceRecordingRequest,
    ) -> Result<ConferenceInfo, RuntimeError> {
        if !(request.format.is_empty() || request.format.eq_ignore_ascii_case("wav")) {
            return Err(RuntimeError::Invalid(format!(
                "recording format {:?}: only wav is supported",
                request.format
            )));
        }
        if request.duration < 0 {
            return Err(RuntimeError::Invalid(
                "duration must not be negative".into(),
            ));
        }
        let ctx = self
            .media_context()
            .ok_or_else(|| RuntimeError::Invalid("the gateway has no audio".into()))?;
        let mixer = {
            let table = self.inner.conferences.lock();
            let room = table
                .rooms
                .get(&id)
                .ok_or(RuntimeError::ConferenceNotFound(id))?;
            if let Some(current) = room.info.recording_id {
                return Err(RuntimeError::Invalid(format!(
                    "conference {id} is already recording ({current})"
                )));
            }
            room.mixer.clone()
        };
        let recording_id = Uuid::now_v7();
        let limit = (request.duration > 0).then(|| {
            Duration::from_secs(
                u64::try_from(request.duration.min(MAX_RECORDING_SECS)).unwrap_or(0),
            )
        });
        let (handle, done) = tokio::task::spawn_blocking(move || {
            ConferenceRecording::start(&mixer, &ctx, recording_id, limit)
        })
        .await
        .map_err(|e| RuntimeError::Invalid(format!("conference recording: {e}")))?
        .map_err(|e| RuntimeError::Invalid(format!("conference recording: {e}")))?;
        let file = handle
            .path()
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let recording = Recording {
            id: recording_id,
            reference_type: "confbridge".into(),
            reference_id: id,
            activeflow_id: None,
            status: RecordingStatus::Recording,
            format: "wav".into(),
            recording_name: recording_id.to_string(),
            filenames: vec![file],
            duration_ms: 0,
            end_reason: String::new(),
            on_end_flow_id: request.on_end_flow_id.filter(|u| !u.is_nil()),
            tm_start: Utc::now(),
            tm_end: None,
        };
        let db = self.db();
        let mut batch = Batch::new();
        batch.put(&db.recordings, recording_id, &recording)?;
        batch.event(
            "recording_created",
            recording_id,
            serde_json::to_value(&recording).unwrap_or_default(),
        );
        if let Err(e) = db.store.commit(batch) {
            // No record (the disk budget, a store failure): no file either.
            drop(handle);
            self.spawn(async move {
                if let Ok(done) = done.await {
                    let _ = tokio::fs::remove_file(&done.path).await;
                }
            });
            return Err(e.into());
        }
        let (stored_tx, stored) = watch::channel(false);
        let view = {
            let mut table = self.inner.conferences.lock();
            let Some(room) = table.rooms.get_mut(&id) else {
                // Ended meanwhile: the handle stops the recording as it drops.
                handle.stop(RecordingEnd::Hangup);
                drop(table);
                self.spawn_recording_end(done, stored_tx);
                return Err(RuntimeError::ConferenceNotFound(id));
            };
            room.info.recording_id = Some(recording_id);
            room.info.recording_ids.push(recording_id);
            room.recording = Some(RoomRecording { handle, stored });
            room.view()
        };
        self.spawn_recording_end(done, stored_tx);
        info!(conference = %id, recording = %recording_id, "conference recording started");
        self.conference_event("conference_updated", &view);
        Ok(view)
    }

    fn spawn_recording_end(
        &self,
        done: tokio::sync::oneshot::Receiver<ConferenceRecordingDone>,
        stored: watch::Sender<bool>,
    ) {
        let rt = self.clone();
        self.spawn(async move {
            if let Ok(done) = done.await
                && let Err(e) = rt.conference_recording_ended(done).await
            {
                warn!(cause = %e, "conference recording end not stored");
            }
            let _ = stored.send(true);
        });
    }

    async fn conference_recording_ended(
        &self,
        done: ConferenceRecordingDone,
    ) -> Result<(), RuntimeError> {
        let db = self.db();
        let Some(mut recording) = db.recordings.get(done.id)? else {
            return Ok(());
        };
        recording.status = RecordingStatus::Ended;
        recording.duration_ms = u64::try_from(done.duration.as_millis()).unwrap_or(u64::MAX);
        recording.end_reason = match &done.reason {
            RecordingEnd::Stopped => "stop".to_owned(),
            RecordingEnd::Duration => "duration".into(),
            RecordingEnd::Failed(e) => format!("failed: {e}"),
            // The conference ended (the other ends cannot happen to a conference recording).
            _ => "hangup".into(),
        };
        recording.tm_end = Some(Utc::now());
        let mut batch = Batch::new();
        batch.put(&db.recordings, done.id, &recording)?;
        batch.event(
            "recording_updated",
            done.id,
            serde_json::to_value(&recording).unwrap_or_default(),
        );
        db.store.commit(batch)?;
        {
            let mut table = self.inner.conferences.lock();
            if let Some(room) = table.rooms.get_mut(&recording.reference_id)
                && room.info.recording_id == Some(done.id)
            {
                room.info.recording_id = None;
                room.recording = None;
            }
        }
        info!(conference = %recording.reference_id, recording = %done.id, ms = recording.duration_ms, reason = %recording.end_reason, "conference recording ended");
        if let Some(flow_id) = recording.on_end_flow_id {
            // As a call recording's: reference_type "", the recording's variables.
            let mut start =
                StartRequest::new(FlowSource::Stored(flow_id), ReferenceType::None, None);
            start.variables = recording_variables(&recording).into_iter().collect();
            if let Err(e) = self.start(start).await {
                warn!(recording = %done.id, flow = %flow_id, cause = %e, "recording on_end_flow_id not started");
            }
        }
        Ok(())
    }

    /// Stops the conference recording and waits (briefly) until its file is complete.
    ///
    /// # Errors
    /// [`RuntimeError::ConferenceNotFound`]; [`RuntimeError::Invalid`] when it is not
    /// recording.
    pub async fn conference_recording_stop(
        &self,
        id: Uuid,
    ) -> Result<ConferenceInfo, RuntimeError> {
        let rec = {
            let mut table = self.inner.conferences.lock();
            let room = table
                .rooms
                .get_mut(&id)
                .ok_or(RuntimeError::ConferenceNotFound(id))?;
            room.recording
                .take()
                .ok_or_else(|| RuntimeError::Invalid(format!("conference {id} is not recording")))?
        };
        rec.handle.stop(RecordingEnd::Stopped);
        let mut stored = rec.stored;
        let _ = tokio::time::timeout(Duration::from_secs(3), stored.wait_for(|s| *s)).await;
        let view = {
            let mut table = self.inner.conferences.lock();
            let room = table
                .rooms
                .get_mut(&id)
                .ok_or(RuntimeError::ConferenceNotFound(id))?;
            room.info.recording_id = None;
            room.view()
        };
        self.conference_event("conference_updated", &view);
        Ok(view)
    }
}
