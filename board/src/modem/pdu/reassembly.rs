//! Sans-IO multipart reassembly: parts of a concatenated SMS go in (any order, duplicates
//! tolerated) with an opaque caller token each (the driver uses the modem storage index) and
//! `now`; whole messages come out, and partial ones older than the timeout come out as
//! incomplete with the missing parts marked in the text.
//!
//! The state is `Serialize + Deserialize` so a driver can persist it between restarts.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::address::Address;
use super::dcs::MessageClass;
use super::time::Timestamp;
use super::tpdu::Deliver;
use super::user_data::Body;

/// Shown in the text of an incomplete message where a part is missing.
pub const GAP_MARKER: &str = "[…]";

/// What identifies the parts of one message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PartKey {
    /// The sender as displayed (`+` for international numbers).
    pub sender: String,
    /// The concatenation reference.
    pub reference: u16,
    /// The number of parts.
    pub total: u8,
}

/// A message put together from its parts (or a single-part message passed through).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message<T> {
    /// The sender.
    pub sender: Address,
    /// Service-centre time stamp of the lowest-numbered part received.
    pub timestamp: Timestamp,
    /// Message class of that part.
    pub class: Option<MessageClass>,
    /// The joined text or bytes. For an incomplete text each missing part is [`GAP_MARKER`];
    /// incomplete data simply lacks the missing parts.
    pub body: Body,
    /// The concatenation key, `None` for a single-part message.
    pub key: Option<PartKey>,
    /// Part numbers that never arrived (empty when complete).
    pub missing: Vec<u8>,
    /// The caller's tokens of every stored part (duplicates included), in arrival order: delete
    /// these once the message is safely stored.
    pub tokens: Vec<T>,
}

impl<T> Message<T> {
    /// Whether every part arrived.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }

    /// The text, if the message is text.
    pub fn text(&self) -> Option<&str> {
        self.body.text()
    }
}

/// What [`Reassembler::push`] did with a part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pushed<T> {
    /// The message is whole (or was never split).
    Complete(Message<T>),
    /// Waiting for more parts.
    Pending {
        /// Which message it belongs to.
        key: PartKey,
        /// Parts received so far.
        received: u8,
    },
    /// A copy of a part of a message already completed: nothing to deliver; the caller may
    /// delete this token's stored copy right away.
    Duplicate {
        /// The token given with the part.
        token: T,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Part {
    timestamp: Timestamp,
    class: Option<MessageClass>,
    body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Partial<T> {
    key: PartKey,
    sender: Address,
    first_seen: DateTime<Utc>,
    /// Time stamp of the first part that arrived (fallback for the message time stamp).
    first_timestamp: Timestamp,
    /// Index = part number − 1.
    parts: Vec<Option<Part>>,
    tokens: Vec<T>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Done {
    key: PartKey,
    at: DateTime<Utc>,
}

/// Collects the parts of concatenated messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reassembler<T> {
    timeout: Duration,
    partials: Vec<Partial<T>>,
    /// Recently completed keys, remembered for one timeout so late duplicates are recognised.
    done: Vec<Done>,
}

impl<T: Clone> Reassembler<T> {
    /// A reassembler that gives up on a message `timeout` after its first part arrived
    /// (gammu and chan_dongle use 10 minutes).
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            partials: Vec::new(),
            done: Vec::new(),
        }
    }

    /// Adds a received SMS-DELIVER with the caller's token.
    ///
    /// A message without a usable concatenation element (none, a total of 0 or 1, or a part
    /// number outside 1..=total, which TS 23.040 says to ignore) completes at once.
    pub fn push(&mut self, sms: &Deliver, token: T, now: DateTime<Utc>) -> Pushed<T> {
        let part = Part {
            timestamp: sms.timestamp,
            class: sms.dcs.class(),
            body: sms.user_data.body.clone(),
        };
        let concat = sms
            .user_data
            .concat()
            .filter(|c| c.total > 1 && c.seq >= 1 && c.seq <= c.total);
        let Some(concat) = concat else {
            return Pushed::Complete(Message {
                sender: sms.originator.clone(),
                timestamp: part.timestamp,
                class: part.class,
                body: part.body,
                key: None,
                missing: Vec::new(),
                tokens: vec![token],
            });
        };
        let key = PartKey {
            sender: sms.originator.to_string(),
            reference: concat.reference,
            total: concat.total,
        };
        let idx = usize::from(concat.seq - 1);
        // Forget completed keys here too, so the memory stays bounded even if the caller
        // rarely calls `expire`.
        let timeout = self.timeout;
        self.done
            .retain(|d| (now - d.at).to_std().map_or(true, |age| age < timeout));
        let pos = match self.partials.iter().position(|p| p.key == key) {
            Some(pos) => pos,
            None if self.done.iter().any(|d| d.key == key) => {
                return Pushed::Duplicate { token };
            }
            None => {
                self.partials.push(Partial {
                    key: key.clone(),
                    sender: sms.originator.clone(),
                    first_seen: now,
                    first_timestamp: part.timestamp,
                    parts: vec![None; usize::from(concat.total)],
                    tokens: Vec::new(),
                });
                self.partials.len() - 1
            }
        };
        let Some(partial) = self.partials.get_mut(pos) else {
            return Pushed::Duplicate { token };
        };
        partial.tokens.push(token);
        if let Some(slot) = partial.parts.get_mut(idx)
            && slot.is_none()
        {
            *slot = Some(part);
        }
        let received = partial.parts.iter().filter(|p| p.is_some()).count();
        if received < partial.parts.len() {
            return Pushed::Pending {
                key,
                received: u8::try_from(received).unwrap_or(u8::MAX),
            };
        }
        let partial = self.partials.swap_remove(pos);
        self.done.push(Done { key, at: now });
        Pushed::Complete(partial.into_message())
    }

    /// Takes out every partial message whose first part arrived at least the timeout before
    /// `now`, as incomplete messages; also forgets completed keys older than the timeout.
    pub fn expire(&mut self, now: DateTime<Utc>) -> Vec<Message<T>> {
        let timeout = self.timeout;
        let expired = |since: DateTime<Utc>| {
            (now - since)
                .to_std()
                .is_ok_and(|elapsed| elapsed >= timeout)
        };
        self.done.retain(|d| !expired(d.at));
        let (old, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.partials)
            .into_iter()
            .partition(|p| expired(p.first_seen));
        self.partials = keep;
        old.into_iter().map(Partial::into_message).collect()
    }

    /// When [`Reassembler::expire`] will next have something to return.
    pub fn next_expiry(&self) -> Option<DateTime<Utc>> {
        let timeout = chrono::TimeDelta::from_std(self.timeout).ok()?;
        self.partials
            .iter()
            .map(|p| p.first_seen)
            .min()
            .and_then(|t| t.checked_add_signed(timeout))
    }

    /// Keys of the messages waiting for parts.
    pub fn pending(&self) -> impl Iterator<Item = &PartKey> {
        self.partials.iter().map(|p| &p.key)
    }
}

impl<T> Partial<T> {
    fn into_message(self) -> Message<T> {
        let missing = (1..=self.key.total)
            .zip(&self.parts)
            .filter(|(_, p)| p.is_none())
            .map(|(seq, _)| seq)
            .collect();
        let first = self.parts.iter().flatten().next();
        let timestamp = first.map_or(self.first_timestamp, |p| p.timestamp);
        let class = first.and_then(|p| p.class);
        let all_data = self
            .parts
            .iter()
            .flatten()
            .all(|p| matches!(p.body, Body::Data(_)));
        let body = if all_data {
            Body::Data(
                self.parts
                    .iter()
                    .flatten()
                    .flat_map(|p| match &p.body {
                        Body::Data(d) => d.as_slice(),
                        Body::Text(_) => &[],
                    })
                    .copied()
                    .collect(),
            )
        } else {
            let mut text = String::new();
            for p in &self.parts {
                match p.as_ref().map(|p| &p.body) {
                    Some(Body::Text(t)) => text.push_str(t),
                    // Bytes among text parts cannot be shown; mark them like a gap.
                    Some(Body::Data(_)) => text.push(char::REPLACEMENT_CHARACTER),
                    None => text.push_str(GAP_MARKER),
                }
            }
            Body::Text(text)
        };
        Message {
            sender: self.sender,
            timestamp,
            class,
            body,
            key: Some(self.key),
            missing,
            tokens: self.tokens,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modem::pdu::{Concat, DataCoding, UserData, UserDataHeader};

    fn part(sender: &str, reference: u16, total: u8, seq: u8, body: Body) -> Deliver {
        Deliver {
            more_messages: false,
            loop_prevention: false,
            status_report_indication: false,
            reply_path: false,
            originator: Address::parse(sender).unwrap_or_else(|e| panic!("{e}")),
            pid: 0,
            dcs: match body {
                Body::Text(_) => DataCoding::GSM7,
                Body::Data(_) => DataCoding::EIGHT_BIT,
            },
            timestamp: Timestamp {
                year: 2024,
                month: 5,
                day: 1,
                hour: 12,
                minute: 0,
                second: seq,
                offset_quarters: 8,
            },
            user_data: UserData {
                header: Some(UserDataHeader::concat(Concat {
                    reference,
                    wide: false,
                    total,
                    seq,
                })),
                body,
            },
        }
    }

    fn text(s: &str) -> Body {
        Body::Text(s.to_owned())
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap_or_default()
    }

    const TEN_MIN: Duration = Duration::from_secs(600);

    #[test]
    fn timeout_gives_an_incomplete_message_with_gaps() {
        let mut r = Reassembler::new(TEN_MIN);
        assert!(matches!(
            r.push(&part("+111", 9, 4, 3, text("three")), "sm:3", at(0)),
            Pushed::Pending { received: 1, .. }
        ));
        assert!(matches!(
            r.push(&part("+111", 9, 4, 1, text("one ")), "sm:1", at(30)),
            Pushed::Pending { received: 2, .. }
        ));
        assert_eq!(r.next_expiry(), Some(at(600)));
        assert!(r.expire(at(599)).is_empty());
        let out = r.expire(at(600));
        assert_eq!(out.len(), 1);
        let m = &out[0];
        assert!(!m.is_complete());
        assert_eq!(m.missing, [2, 4]);
        assert_eq!(m.text(), Some("one [\u{2026}]three[\u{2026}]"));
        assert_eq!(m.tokens, ["sm:3", "sm:1"]);
        // The earliest part present gives the time stamp.
        assert_eq!(m.timestamp.second, 1);
        assert_eq!(
            m.key,
            Some(PartKey {
                sender: "+111".into(),
                reference: 9,
                total: 4
            })
        );
        assert_eq!(r.next_expiry(), None);
        assert_eq!(r.pending().count(), 0);
    }

    #[test]
    fn duplicates_are_absorbed_then_reported() {
        let mut r = Reassembler::new(TEN_MIN);
        let p1 = part("+111", 1, 2, 1, text("a"));
        let p2 = part("+111", 1, 2, 2, text("b"));
        assert!(matches!(r.push(&p1, 1, at(0)), Pushed::Pending { .. }));
        // Same part again while pending: kept for deletion, not counted twice.
        assert!(matches!(
            r.push(&p1, 2, at(1)),
            Pushed::Pending { received: 1, .. }
        ));
        let Pushed::Complete(m) = r.push(&p2, 3, at(2)) else {
            panic!("expected completion");
        };
        assert_eq!(m.text(), Some("ab"));
        assert_eq!(m.tokens, [1, 2, 3]);
        // A late copy after completion is handed back.
        assert_eq!(r.push(&p2, 4, at(3)), Pushed::Duplicate { token: 4 });
        // Once the completed key is forgotten, the same reference starts a new message.
        assert!(r.expire(at(2 + 600)).is_empty());
        assert!(matches!(r.push(&p2, 5, at(700)), Pushed::Pending { .. }));
    }

    #[test]
    fn keys_separate_senders_and_totals() {
        let mut r = Reassembler::new(TEN_MIN);
        assert!(matches!(
            r.push(&part("+111", 1, 2, 1, text("a")), 1, at(0)),
            Pushed::Pending { .. }
        ));
        assert!(matches!(
            r.push(&part("+222", 1, 2, 2, text("b")), 2, at(0)),
            Pushed::Pending { .. }
        ));
        assert!(matches!(
            r.push(&part("+111", 1, 3, 2, text("c")), 3, at(0)),
            Pushed::Pending { .. }
        ));
        assert_eq!(r.pending().count(), 3);
    }

    #[test]
    fn unusable_concat_elements_pass_through() {
        let mut r = Reassembler::new(TEN_MIN);
        for (total, seq) in [(1, 1), (3, 0), (3, 4), (0, 0)] {
            let Pushed::Complete(m) = r.push(&part("+111", 1, total, seq, text("x")), 0, at(0))
            else {
                panic!("({total}, {seq}) must pass through");
            };
            assert_eq!(m.key, None);
            assert!(m.is_complete());
        }
        assert_eq!(r.pending().count(), 0);
    }

    #[test]
    fn data_parts_join_as_bytes() {
        let mut r = Reassembler::new(TEN_MIN);
        let p = |seq, b: &[u8]| part("+111", 7, 2, seq, Body::Data(b.to_vec()));
        assert!(matches!(
            r.push(&p(2, &[3, 4]), 0, at(0)),
            Pushed::Pending { .. }
        ));
        let Pushed::Complete(m) = r.push(&p(1, &[1, 2]), 1, at(0)) else {
            panic!("expected completion");
        };
        assert_eq!(m.body, Body::Data(vec![1, 2, 3, 4]));
    }

    #[test]
    fn state_survives_serde() {
        let mut r = Reassembler::new(TEN_MIN);
        assert!(matches!(
            r.push(&part("+111", 5, 2, 2, text("world")), 12u16, at(0)),
            Pushed::Pending { .. }
        ));
        let json = serde_json::to_string(&r).unwrap_or_default();
        let mut back: Reassembler<u16> =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
        assert_eq!(back, r);
        let Pushed::Complete(m) = back.push(&part("+111", 5, 2, 1, text("hello ")), 13, at(5))
        else {
            panic!("expected completion");
        };
        assert_eq!(m.text(), Some("hello world"));
        assert_eq!(m.tokens, [12, 13]);
    }
}
