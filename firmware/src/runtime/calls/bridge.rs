//! `connect`: ring the destinations, join the caller with the first that answers, and hold
//! the bridge until one side leaves.
//!
//! As VoIPBIN's connect confbridge does: the destinations ring all at once (each placed
//! through the routing table, with fail-over); the caller is not answered while they ring
//! (it hears the network's ringback) — a caller the flow already answered hears local
//! ringback, or a destination's early media when `early_media` is set. The first answer
//! wins: the other destinations are cancelled, the caller is answered, and the two calls'
//! audio is joined frame by frame in the media layer (digits the lines signal are relayed
//! to the other side). When the destination hangs up, `connect` completes and the flow
//! goes on — or, with `relay_reason`, the caller is hung up with the destination's
//! reason. When the caller hangs up, the runner drops this future and the guard hangs the
//! destinations up.

use std::time::Duration;

use flowgate_dsp::ToneKind;
use flowgate_flows::engine::Outcome;
use flowgate_flows::model::ConnectOption;
use flowgate_line::Progress;
use futures::future::select_all;
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::dial::DialRequest;
use super::record::update_call;
use super::{LiveCall, Phase};
use crate::media::{Layer, Playback, Source, bridge_pair};
use crate::model::derived_id;

/// Ringback played to an answered caller while the destinations ring (the ring timeout
/// ends the destinations well before).
const RINGBACK_MAX: Duration = Duration::from_secs(600);

/// Hangs up the legs a `connect` dialled, whatever way it ends (also when the runner drops
/// it because the caller hung up).
struct Legs {
    /// The call that dialled them.
    owner: Uuid,
    calls: Vec<LiveCall>,
}

impl Drop for Legs {
    fn drop(&mut self) {
        for call in self.calls.drain(..) {
            // A leg handed to another party (a transfer) is not ours to end any more.
            if call.is_ended() || call.handed_over(self.owner) {
                continue;
            }
            let rt = call.inner.rt.clone();
            rt.spawn(async move { call.hangup("normal").await });
        }
    }
}

/// Which of the legs' reasons the caller hears when none answered: the most telling.
fn telling_reason(reasons: &[String]) -> String {
    for wanted in ["busy", "noanswer", "dialout"] {
        if reasons.iter().any(|r| r == wanted) {
            return wanted.to_owned();
        }
    }
    reasons
        .first()
        .cloned()
        .unwrap_or_else(|| "failed".to_owned())
}

impl LiveCall {
    /// Performs `connect` for the flow on this call.
    pub(super) async fn connect(&self, step_key: Uuid, option: ConnectOption) -> Outcome {
        if option.destinations.is_empty() {
            return Outcome::Failed("connect: no destinations".into());
        }
        let rt = self.inner.rt.clone();
        let record = match rt.db().calls.get(self.id()) {
            Ok(Some(r)) => r,
            Ok(None) => return Outcome::Failed("connect: the call record is gone".into()),
            Err(e) => return Outcome::Failed(format!("connect: {e}")),
        };
        // Forwarding keeps the caller's number where the line can present one.
        let source = if option.source.target.is_empty() {
            record.source.clone()
        } else {
            option.source.clone()
        };
        let mut legs = Legs {
            owner: self.id(),
            calls: Vec::new(),
        };
        let mut failures = Vec::new();
        for (i, destination) in option.destinations.iter().enumerate() {
            let request = DialRequest {
                id: Some(derived_id(&[
                    "connect",
                    &step_key.to_string(),
                    &i.to_string(),
                ])),
                source: source.clone(),
                destination: destination.clone(),
                flow: None,
                variables: Default::default(),
                master_call_id: Some(self.id()),
                line_id: String::new(),
                prefer_line: String::new(),
            };
            match rt.dial(request).await {
                Ok(call) => {
                    let _ = update_call(&rt, self.id(), |c| c.chained_call_ids.push(call.id));
                    match rt.live_call_by_id(call.id) {
                        Some(live) => legs.calls.push(live),
                        None => failures.push(call.hangup_reason),
                    }
                }
                Err(e) => {
                    debug!(call = %self.id(), destination = %destination.target, cause = %e, "connect leg not placed");
                    failures.push("failed".to_owned());
                }
            }
        }

        let mut ringback: Option<Playback> = None;
        let mut early: Option<Uuid> = None;
        if self.is_answered() && !legs.calls.is_empty() {
            ringback = self.local_ringback().await;
        }
        let answered = loop {
            let waiting: Vec<&LiveCall> = legs.calls.iter().filter(|c| !c.is_ended()).collect();
            if waiting.is_empty() {
                break None;
            }
            let waits = waiting.iter().map(|c| {
                let past_early = early == Some(c.id());
                Box::pin(c.wait_phase(move |p| {
                    matches!(p, Phase::Answered)
                        || (!past_early && matches!(p, Phase::Progress(Progress::EarlyMedia)))
                }))
            });
            let (phase, index, _) = select_all(waits).await;
            let leg = waiting[index].clone();
            match phase {
                Phase::Answered => break Some(leg),
                Phase::Progress(Progress::EarlyMedia) => {
                    early = Some(leg.id());
                    // Early media reaches a caller who can hear it: one already answered.
                    if option.early_media && self.is_answered() {
                        drop(ringback.take());
                        if let Err(e) = self.join_audio(&leg).await {
                            debug!(call = %self.id(), cause = %e, "early media not bridged");
                        }
                    }
                }
                _ => {}
            }
        };
        drop(ringback);

        let Some(callee) = answered else {
            let mut reasons = failures;
            for leg in &legs.calls {
                if let Ok(Some(r)) = rt.db().calls.get(leg.id()) {
                    reasons.push(r.hangup_reason);
                }
            }
            let reason = telling_reason(&reasons);
            info!(call = %self.id(), %reason, "connect: no destination answered");
            return self.after_connect(option.relay_reason, &reason).await;
        };

        // The first answer wins; the others are cancelled (the guard keeps the winner out).
        legs.calls.retain(|c| c.id() != callee.id());
        for other in legs.calls.drain(..) {
            other.hangup("cancel").await;
        }
        let winner = Legs {
            owner: self.id(),
            calls: vec![callee.clone()],
        };
        if let Err(e) = self.answer().await {
            warn!(call = %self.id(), cause = %e, "connect: the caller could not be answered");
            return Outcome::Failed(format!("connect: answering the caller: {e}"));
        }
        if early != Some(callee.id())
            && let Err(e) = self.join_audio(&callee).await
        {
            // Digits and hang-ups still pass; say why there is no audio.
            warn!(call = %self.id(), peer = %callee.id(), cause = %e, "connect: audio not bridged");
        }
        info!(call = %self.id(), peer = %callee.id(), "connected");

        let ended = tokio::select! {
            p = callee.wait_phase(|_| false) => p,
            p = self.wait_phase(|_| false) => p,
        };
        if self.handed_over(callee.id()) {
            // The callee's line transferred this call to another party (a phone's
            // consultation transfer): the flow's part is over; the call stays bridged
            // until it ends.
            drop(winner);
            self.wait_phase(|_| false).await;
            return Outcome::Hangup;
        }
        self.leave_bridge();
        if !callee.handed_over(self.id()) {
            callee.leave_bridge();
        }
        drop(winner);
        let Phase::Ended(_) = ended else {
            return Outcome::Done;
        };
        if self.is_ended() {
            return Outcome::Hangup;
        }
        let reason = rt
            .db()
            .calls
            .get(callee.id())
            .ok()
            .flatten()
            .map(|c| c.hangup_reason)
            .unwrap_or_else(|| "normal".to_owned());
        self.after_connect(option.relay_reason, &reason).await
    }

    /// The end of a `connect` without a bridge (any more): with `relay_reason` the caller
    /// is hung up with the destination's reason, else the flow goes on.
    async fn after_connect(&self, relay_reason: bool, reason: &str) -> Outcome {
        if relay_reason {
            self.hangup(reason).await;
            self.close_media();
            Outcome::Hangup
        } else {
            Outcome::Done
        }
    }

    /// Local ringback to an answered caller.
    async fn local_ringback(&self) -> Option<Playback> {
        let media = self.media().await.ok()?;
        media
            .play(
                Layer::Flow,
                Source::Tone {
                    kind: ToneKind::Ringback,
                    duration: RINGBACK_MAX,
                },
            )
            .ok()
    }

    /// Joins this call's audio with `peer`'s, and remembers the peer for digit relay.
    pub(super) async fn join_audio(
        &self,
        peer: &LiveCall,
    ) -> Result<(), crate::runtime::RuntimeError> {
        let ours = self.media().await?;
        let theirs = peer.media_unanswered().await?;
        let (a, b) = bridge_pair();
        ours.bridge(a)
            .map_err(|e| crate::runtime::RuntimeError::NoAudio(self.id(), e.to_string()))?;
        theirs
            .bridge(b)
            .map_err(|e| crate::runtime::RuntimeError::NoAudio(peer.id(), e.to_string()))?;
        self.inner.live.lock().peer = Some(peer.clone());
        peer.inner.live.lock().peer = Some(self.clone());
        Ok(())
    }

    /// Whether a transfer took the call away from `from`: it is bridged to someone else
    /// now, or was parted from `from` (handed to a flow).
    pub(super) fn handed_over(&self, from: Uuid) -> bool {
        let live = self.inner.live.lock();
        live.peer.as_ref().is_some_and(|p| p.id() != from) || live.parted_from.contains(&from)
    }

    /// Leaves a bridge (if any): the call hears its flow again.
    pub(super) fn leave_bridge(&self) {
        self.inner.live.lock().peer = None;
        if let Some(media) = self.open_media_session() {
            let _ = media.unbridge();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::telling_reason;

    #[test]
    fn busy_tells_more_than_a_failure() {
        let r = |v: &[&str]| telling_reason(&v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        assert_eq!(r(&["failed", "busy"]), "busy");
        assert_eq!(r(&["failed", "noanswer"]), "noanswer");
        assert_eq!(r(&["failed"]), "failed");
        assert_eq!(r(&[]), "failed");
    }
}
