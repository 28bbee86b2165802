//! Conferences: N calls' audio mixed so that each participant hears the sum of the
//! others, never itself (VoIPBIN's `conference_join` / `confbridge_join`).
//!
//! A conference generalises the two-party [`super::bridge`]: each call keeps its own
//! media thread, paced by its own far end, so there is no mixing thread and no common
//! clock. Every participant has one bounded frame queue per other participant (a full
//! mesh under one lock): the frame a session sends goes into its queue at every other
//! participant, and the frame it receives is the sum of one frame from each of its own
//! queues, with the bridge's drift handling per queue (oldest dropped beyond
//! [`super::bridge::MAX_DEPTH`], one concealment frame on underrun) and its rate
//! conversion. N is small on a gateway (a handful of lines), so the N² queues and one
//! short lock per frame and participant cost nothing measurable.
//!
//! Joining and leaving are announced with a short tone from the DSP crate's generator
//! (rising for a join, falling for a leave) mixed into what the others hear; the joiner
//! hears the join tone too, as confirmation. A muted participant's audio is not passed
//! on (they still hear the others). A participant leaves when its [`ConferenceEnd`] is
//! dropped (the session left the conference or closed) or with [`Conference::leave`].
//!
//! A [`ConferenceTap`] is a listener that is not a participant: it hears every
//! participant (and the cues), nobody hears it, its arrival and departure are not
//! announced and it does not keep the conference alive. The conference recording
//! ([`super::confrec`]) is one: the mix of everybody, as one file.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

use flowgate_dsp::{ToneGenerator, ToneSpec};
use parking_lot::Mutex;
use uuid::Uuid;

use super::bridge::{Frame, Joined, push_bounded, take_concealed};

/// Level of each frequency of the join / leave tones (quieter than call progress: they
/// play over speech).
const CUE_LEVEL_DBM0: f32 = -18.0;

/// Longest frame handled (20 ms at 16 kHz).
const MAX_FRAME: usize = 320;

/// The tones announcing a change of participants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cue {
    Join,
    Leave,
}

impl Cue {
    fn spec(self) -> &'static ToneSpec {
        static JOIN: OnceLock<ToneSpec> = OnceLock::new();
        static LEAVE: OnceLock<ToneSpec> = OnceLock::new();
        let (cell, text) = match self {
            Cue::Join => (&JOIN, "!440/120,!660/120"),
            Cue::Leave => (&LEAVE, "!660/120,!440/120"),
        };
        // Constant notation, checked by the tests: parsing cannot fail.
        cell.get_or_init(|| ToneSpec::parse(text).unwrap_or_else(|_| ToneSpec::beep()))
    }
}

/// Frames from one other participant.
struct Inbound {
    from: Uuid,
    frames: VecDeque<Frame>,
    last: Option<Frame>,
    concealed: bool,
}

struct Member {
    id: Uuid,
    /// Which join this is: a session's end may be dropped after the same call joined
    /// again, and must not take the new membership with it.
    token: u64,
    muted: bool,
    inbox: Vec<Inbound>,
    /// A cue waiting for this member's next frame (its rate is known only then).
    cue: Option<Cue>,
    tone: Option<ToneGenerator>,
    /// A [`ConferenceTap`]: hears everybody, is heard by nobody, is not a participant.
    listener: bool,
}

impl Member {
    fn new(id: Uuid, token: u64, listener: bool) -> Self {
        Member {
            id,
            token,
            muted: false,
            inbox: Vec::new(),
            // The joiner hears its own join as confirmation; a tap has nobody to confirm to.
            cue: (!listener).then_some(Cue::Join),
            tone: None,
            listener,
        }
    }

    /// Fills `out` with the sum of this member's next frame from each inbox and its cue;
    /// false when no participant's frame came.
    fn mix(&mut self, out: &mut [i16], rate: u32) -> bool {
        out.fill(0);
        let mut one = [0i16; MAX_FRAME];
        let one = &mut one[..out.len().min(MAX_FRAME)];
        let mut came = false;
        for q in &mut self.inbox {
            came |= take_concealed(&mut q.frames, &mut q.last, &mut q.concealed, one, rate);
            for (o, s) in out.iter_mut().zip(one.iter()) {
                *o = o.saturating_add(*s);
            }
        }
        if let Some(cue) = self.cue.take() {
            self.tone = ToneGenerator::new(cue.spec(), rate, CUE_LEVEL_DBM0).ok();
        }
        if let Some(tone) = self.tone.as_mut() {
            tone.fill(one);
            for (o, s) in out.iter_mut().zip(one.iter()) {
                *o = o.saturating_add(*s);
            }
            if tone.is_finished() {
                self.tone = None;
            }
        }
        came
    }
}

#[derive(Default)]
struct Room {
    members: Vec<Member>,
    joins: u64,
}

impl Room {
    fn member_mut(&mut self, id: Uuid) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.id == id)
    }

    /// Removes `id` (only its join `token` when given).
    fn remove(&mut self, id: Uuid, token: Option<u64>) -> bool {
        let Some(pos) = self
            .members
            .iter()
            .position(|m| m.id == id && token.is_none_or(|t| t == m.token))
        else {
            return false;
        };
        let gone = self.members.remove(pos);
        for m in &mut self.members {
            m.inbox.retain(|q| q.from != id);
            if !gone.listener {
                m.cue = Some(Cue::Leave);
            }
        }
        true
    }

    fn add(&mut self, id: Uuid, listener: bool) -> u64 {
        self.remove(id, None);
        self.joins += 1;
        let token = self.joins;
        if !listener {
            for m in &mut self.members {
                m.cue = Some(Cue::Join);
            }
        }
        self.members.push(Member::new(id, token, listener));
        token
    }
}

/// A conference's mixer. Cheap to clone; the runtime owns the table of conferences.
#[derive(Clone, Default)]
pub struct Conference {
    room: Arc<Mutex<Room>>,
}

/// A participant as listed by [`Conference::participants`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Participant {
    /// The participant's id (the runtime uses the call id).
    pub id: Uuid,
    /// Whether the others hear them.
    pub muted: bool,
}

impl Conference {
    /// An empty conference.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds participant `id` (a second join of the same id replaces the first) and
    /// returns its end, for [`super::CallMedia::join_conference`].
    #[must_use]
    pub fn join(&self, id: Uuid) -> ConferenceEnd {
        let token = self.room.lock().add(id, false);
        ConferenceEnd {
            id,
            token,
            room: Arc::clone(&self.room),
        }
    }

    /// Adds listener `id`: it hears every participant, nobody hears it, and it is not
    /// listed nor counted as a participant. Dropping the tap removes it.
    #[must_use]
    pub fn tap(&self, id: Uuid) -> ConferenceTap {
        let token = self.room.lock().add(id, true);
        ConferenceTap {
            id,
            token,
            room: Arc::clone(&self.room),
        }
    }

    /// Removes participant `id`; false when it was not in the conference.
    pub fn leave(&self, id: Uuid) -> bool {
        self.room.lock().remove(id, None)
    }

    /// Mutes or unmutes participant `id`; false when it is not in the conference.
    pub fn set_muted(&self, id: Uuid, muted: bool) -> bool {
        let mut room = self.room.lock();
        let Some(member) = room.member_mut(id) else {
            return false;
        };
        member.muted = muted;
        if muted {
            // Nothing already queued from them is heard either.
            for m in &mut room.members {
                for q in m.inbox.iter_mut().filter(|q| q.from == id) {
                    q.frames.clear();
                    q.last = None;
                }
            }
        }
        true
    }

    /// The participants, in joining order.
    #[must_use]
    pub fn participants(&self) -> Vec<Participant> {
        self.room
            .lock()
            .members
            .iter()
            .filter(|m| !m.listener)
            .map(|m| Participant {
                id: m.id,
                muted: m.muted,
            })
            .collect()
    }

    /// True when no participant is left (taps do not count).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.room.lock().members.iter().all(|m| m.listener)
    }
}

/// One participant's end of a conference, given to its media session. Dropping it leaves
/// the conference.
pub struct ConferenceEnd {
    id: Uuid,
    token: u64,
    room: Arc<Mutex<Room>>,
}

impl ConferenceEnd {
    /// Passes the caller's frame to every other participant (nothing when muted).
    pub(crate) fn send(&self, samples: &[i16], rate: u32) {
        let mut room = self.room.lock();
        if room
            .members
            .iter()
            .find(|m| m.id == self.id && m.token == self.token)
            .is_none_or(|m| m.muted)
        {
            return;
        }
        let frame = Frame::new(samples, rate);
        for m in room.members.iter_mut().filter(|m| m.id != self.id) {
            match m.inbox.iter_mut().find(|q| q.from == self.id) {
                Some(q) => {
                    push_bounded(&mut q.frames, frame);
                }
                None => m.inbox.push(Inbound {
                    from: self.id,
                    frames: VecDeque::from([frame]),
                    last: None,
                    concealed: false,
                }),
            }
        }
    }

    /// Fills `out` with the sum of the other participants' next frames and any cue tone;
    /// false when no participant's frame came.
    pub(crate) fn receive(&self, out: &mut [i16], rate: u32) -> bool {
        receive(&self.room, self.id, self.token, out, rate)
    }
}

fn receive(room: &Mutex<Room>, id: Uuid, token: u64, out: &mut [i16], rate: u32) -> bool {
    let mut room = room.lock();
    match room
        .members
        .iter_mut()
        .find(|m| m.id == id && m.token == token)
    {
        Some(me) => me.mix(out, rate),
        None => {
            out.fill(0);
            false
        }
    }
}

/// A listener of a conference ([`Conference::tap`]). Dropping it removes it.
pub struct ConferenceTap {
    id: Uuid,
    token: u64,
    room: Arc<Mutex<Room>>,
}

impl ConferenceTap {
    /// Fills `out` with the sum of every participant's next frame and any cue tone; false
    /// when no participant's frame came.
    pub fn receive(&self, out: &mut [i16], rate: u32) -> bool {
        receive(&self.room, self.id, self.token, out, rate)
    }
}

impl Drop for ConferenceTap {
    fn drop(&mut self) {
        self.room.lock().remove(self.id, Some(self.token));
    }
}

impl Joined for ConferenceEnd {
    fn send(&mut self, samples: &[i16], rate: u32) {
        ConferenceEnd::send(self, samples, rate);
    }

    fn receive(&mut self, out: &mut [i16], rate: u32) -> bool {
        ConferenceEnd::receive(self, out, rate)
    }
}

impl Drop for ConferenceEnd {
    fn drop(&mut self) {
        self.room.lock().remove(self.id, Some(self.token));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: usize = 160;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    /// Runs frames until the join cues have played (they are finite).
    fn settle(ends: &[&ConferenceEnd]) {
        let mut out = [0i16; F];
        for _ in 0..20 {
            for e in ends {
                e.receive(&mut out, 8000);
            }
        }
    }

    #[test]
    fn the_cue_tones_parse() {
        assert!(ToneSpec::parse("!440/120,!660/120").is_ok_and(|s| s.is_finite()));
        assert!(ToneSpec::parse("!660/120,!440/120").is_ok_and(|s| s.is_finite()));
    }

    #[test]
    fn each_participant_hears_the_others_and_not_itself() {
        let conf = Conference::new();
        let (a, b, c) = (conf.join(id(1)), conf.join(id(2)), conf.join(id(3)));
        settle(&[&a, &b, &c]);
        let mut out = [0i16; F];
        for _ in 0..3 {
            a.send(&[100; F], 8000);
            b.send(&[20; F], 8000);
            c.send(&[3; F], 8000);
            assert!(a.receive(&mut out, 8000));
            assert_eq!(out[0], 23, "a hears b + c");
            b.receive(&mut out, 8000);
            assert_eq!(out[0], 103, "b hears a + c");
            c.receive(&mut out, 8000);
            assert_eq!(out[0], 120, "c hears a + b");
        }
    }

    #[test]
    fn a_leaver_is_no_longer_heard_and_the_others_stay() {
        let conf = Conference::new();
        let (a, b) = (conf.join(id(1)), conf.join(id(2)));
        let c = conf.join(id(3));
        settle(&[&a, &b, &c]);
        drop(c);
        assert_eq!(conf.participants().len(), 2);
        let mut out = [0i16; F];
        // The leave cue plays first, then only b is heard.
        settle(&[&a, &b]);
        b.send(&[7; F], 8000);
        assert!(a.receive(&mut out, 8000));
        assert_eq!(out[0], 7);
        assert!(!conf.leave(id(3)), "already gone");
        // An old end of a participant who joined again does not take them out.
        let old = conf.join(id(4));
        let _new = conf.join(id(4));
        drop(old);
        assert_eq!(conf.participants().len(), 3);
        assert!(conf.leave(id(4)));
        drop((a, b));
        assert!(conf.is_empty());
    }

    #[test]
    fn joining_and_leaving_are_announced_to_the_others() {
        let conf = Conference::new();
        let a = conf.join(id(1));
        settle(&[&a]);
        let mut out = [0i16; F];
        a.receive(&mut out, 8000);
        assert!(out.iter().all(|&s| s == 0), "silence alone");
        let b = conf.join(id(2));
        a.receive(&mut out, 8000);
        assert!(out.iter().any(|&s| s != 0), "a hears b's join tone");
        settle(&[&a, &b]);
        drop(b);
        a.receive(&mut out, 8000);
        assert!(out.iter().any(|&s| s != 0), "a hears b's leave tone");
    }

    #[test]
    fn a_tap_hears_everybody_unannounced_and_is_no_participant() {
        let conf = Conference::new();
        let (a, b) = (conf.join(id(1)), conf.join(id(2)));
        settle(&[&a, &b]);
        let tap = conf.tap(id(9));
        let mut out = [0i16; F];
        a.receive(&mut out, 8000);
        assert!(out.iter().all(|&s| s == 0), "no join tone for a tap");
        assert_eq!(conf.participants().len(), 2);
        a.send(&[30; F], 8000);
        b.send(&[4; F], 8000);
        assert!(tap.receive(&mut out, 8000));
        assert_eq!(out[0], 34, "the tap hears both");
        a.receive(&mut out, 8000);
        assert_eq!(out[0], 4, "nobody hears the tap");
        drop(tap);
        assert!(
            conf.room.lock().members.iter().all(|m| m.cue.is_none()),
            "no leave tone for a tap"
        );
        drop((a, b));
        assert!(conf.is_empty());
        let _alone = conf.tap(id(9));
        assert!(conf.is_empty(), "a tap does not keep a conference alive");
    }

    #[test]
    fn a_muted_participant_is_not_heard_but_hears() {
        let conf = Conference::new();
        let (a, b) = (conf.join(id(1)), conf.join(id(2)));
        settle(&[&a, &b]);
        assert!(conf.set_muted(id(2), true));
        let mut out = [0i16; F];
        for _ in 0..4 {
            a.send(&[50; F], 8000);
            b.send(&[9; F], 8000);
            a.receive(&mut out, 8000);
            assert_eq!(out[0], 0, "b is muted");
            assert!(b.receive(&mut out, 8000));
            assert_eq!(out[0], 50, "b still hears a");
        }
        assert!(conf.participants()[1].muted);
        assert!(!conf.set_muted(id(9), true));
    }

    #[test]
    fn rates_mix_across_8_and_16_khz() {
        let conf = Conference::new();
        let (a, b) = (conf.join(id(1)), conf.join(id(2)));
        settle(&[&a, &b]);
        b.send(&[40; 320], 16000);
        let mut out = [0i16; F];
        assert!(a.receive(&mut out, 8000));
        assert!(out.iter().all(|&s| s == 40));
    }
}
