//! `conference_join` / `confbridge_join`: the call joins a local conference, mixed by the
//! media layer ([`crate::media::conference`]), identified by VoIPBIN's `conference_id`
//! (or `confbridge_id`: both name the same table here, the gateway has no separate
//! bridge objects).
//!
//! As in VoIPBIN the action blocks while the call is in the conference: it ends when the
//! caller hangs up (the flow ends with the call) or when the flow is interrupted (the
//! future is dropped, and the guard takes the call out of the conference). A participant
//! leaving never ends the others; the conference exists while it has participants: it
//! is created by the first join and forgotten when the last one leaves.

use flowgate_flows::engine::Outcome;
use tracing::{info, warn};
use uuid::Uuid;

use super::LiveCall;
use crate::media::Participant;
use crate::runtime::Runtime;

/// A live conference as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceInfo {
    /// VoIPBIN's conference (or confbridge) id.
    pub id: Uuid,
    /// The participants (call ids), in joining order.
    pub participants: Vec<Participant>,
}

/// Takes the call out of its conference when the action ends, however it ends.
struct Membership {
    rt: Runtime,
    conference_id: Uuid,
    call: LiveCall,
}

impl Drop for Membership {
    fn drop(&mut self) {
        if let Some(media) = self.call.open_media_session() {
            // The media thread drops its end with this; the explicit leave below makes
            // the departure immediate for the others and for the table.
            let _ = media.unbridge();
        }
        let mut table = self.rt.inner.conferences.lock();
        if let Some(conf) = table.get(&self.conference_id) {
            conf.leave(self.call.id());
            if conf.is_empty() {
                table.remove(&self.conference_id);
                info!(conference = %self.conference_id, "conference ended: last participant left");
            }
        }
        info!(conference = %self.conference_id, call = %self.call.id(), "left the conference");
    }
}

impl LiveCall {
    /// Joins the conference `conference_id` until the call ends or the flow moves on.
    pub(super) async fn conference_join(&self, kind: &str, conference_id: Uuid) -> Outcome {
        if conference_id.is_nil() {
            return Outcome::Failed(format!("{kind}: no conference id"));
        }
        if let Err(e) = self.answer().await {
            return Outcome::Failed(format!("{kind}: answering the call: {e}"));
        }
        let media = match self.media().await {
            Ok(m) => m,
            Err(e) => return Outcome::Failed(format!("{kind}: {e}")),
        };
        let rt = self.inner.rt.clone();
        let end = {
            let mut table = rt.inner.conferences.lock();
            table.entry(conference_id).or_default().join(self.id())
        };
        let membership = Membership {
            rt: rt.clone(),
            conference_id,
            call: self.clone(),
        };
        if let Err(e) = media.join_conference(end) {
            warn!(call = %self.id(), conference = %conference_id, cause = %e, "conference: no audio");
            drop(membership);
            return Outcome::Failed(format!("{kind}: {e}"));
        }
        info!(call = %self.id(), conference = %conference_id, "joined the conference");
        self.wait_phase(|_| false).await;
        drop(membership);
        Outcome::Hangup
    }
}

impl Runtime {
    /// The live conferences, by id.
    #[must_use]
    pub fn conferences(&self) -> Vec<ConferenceInfo> {
        let mut list: Vec<ConferenceInfo> = self
            .inner
            .conferences
            .lock()
            .iter()
            .map(|(id, conf)| ConferenceInfo {
                id: *id,
                participants: conf.participants(),
            })
            .collect();
        list.sort_by_key(|c| c.id);
        list
    }

    /// Mutes or unmutes call `call_id` in conference `conference_id` (the others stop or
    /// start hearing it). False when there is no such participant.
    #[must_use]
    pub fn conference_mute(&self, conference_id: Uuid, call_id: Uuid, muted: bool) -> bool {
        self.inner
            .conferences
            .lock()
            .get(&conference_id)
            .is_some_and(|c| c.set_muted(call_id, muted))
    }
}
