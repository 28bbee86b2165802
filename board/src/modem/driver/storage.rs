//! Messages in modem storage, as both halves of the SMS worker see them: where a message sits
//! ([`StorageSlot`]), outgoing messages written there for the crash-safe send path
//! ([`PreparedSms`], described in `outbound`), how their parts were settled ([`PartOutcome`],
//! [`DiscardReport`], [`OutboundReport`]), and the worker's bookkeeping of the outgoing ones
//! ([`Outbound`]).
//!
//! Plain data, no I/O. It sits below both halves so the dependency runs one way: the worker
//! (`sms`) uses these types, the outbound protocol (`outbound`) extends the worker and uses
//! them too, and the worker needs nothing from `outbound`.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::modem::at::response::StorageChoices;

/// Which memories the SMS worker uses, as init set them with `AT+CPMS`: received messages
/// go to (and are read from) `receive`; outgoing messages are written to and sent from
/// `write`. They differ whenever the modem offers a second memory for writing, so replies
/// never compete with a burst of incoming messages for slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SmsMemories {
    /// `<mem1>` and `<mem3>`: where received messages are stored and read.
    pub(crate) receive: String,
    /// `<mem2>`: where `AT+CMGW` writes and `AT+CMSS` sends from.
    pub(crate) write: String,
    /// The status-report memory (`SR`) when the modem offers it for reading: reports
    /// stored there (`+CNMI` `<ds>` 2) while nobody listened are read from it.
    pub(crate) reports: Option<String>,
}

impl SmsMemories {
    /// Both uses in one memory (before the probe, or when the modem has only one).
    pub(crate) fn single(mem: &str) -> Self {
        Self {
            receive: mem.to_owned(),
            write: mem.to_owned(),
            reports: None,
        }
    }

    /// True when outgoing messages have a memory of their own.
    pub(crate) fn separate(&self) -> bool {
        self.receive != self.write
    }

    /// The memories to use given what `AT+CPMS=?` offers: receive in the profile's memory
    /// (or the first receive memory offered when it is not), write to another memory the
    /// modem can both write and read back (`SM` preferred, then `ME`), else to the same one.
    /// `MT` (which spans several memories) and report/broadcast memories are never chosen.
    pub(crate) fn choose(profile_mem: &str, offered: &StorageChoices) -> Self {
        let plain = |m: &&String| !matches!(m.as_str(), "MT" | "SR" | "BM" | "TA");
        let receive = if offered.receive.iter().any(|m| m == profile_mem)
            && offered.read.iter().any(|m| m == profile_mem)
        {
            profile_mem.to_owned()
        } else {
            match offered
                .receive
                .iter()
                .filter(plain)
                .find(|m| offered.read.contains(m))
            {
                Some(m) => m.clone(),
                None => profile_mem.to_owned(),
            }
        };
        let write = ["SM", "ME"]
            .iter()
            .map(|m| (*m).to_owned())
            .chain(offered.write.iter().filter(plain).cloned())
            .find(|m| *m != receive && offered.write.contains(m) && offered.read.contains(m))
            .unwrap_or_else(|| receive.clone());
        let reports = offered.read.iter().find(|m| m.as_str() == "SR").cloned();
        Self {
            receive,
            write,
            reports,
        }
    }
}

/// Where a received part is stored on the modem.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StorageSlot {
    /// Memory (`ME`, `SM`).
    pub mem: String,
    /// Index.
    pub index: u32,
}

/// One part of a [`PreparedSms`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedPart {
    /// Storage index from `+CMGW: <index>`. `None`: this part goes out with `AT+CMGS`, at
    /// least once across crashes — only when the operator switched storage sends off
    /// (`sms.store_and_send = false`, or a profile without them).
    pub index: Option<u32>,
    /// The PDU as written (hex, SMSC field first).
    pub pdu: String,
    /// TPDU length in octets (the `AT+CMGW`/`AT+CMGS` argument).
    pub tpdu_len: usize,
}

/// An outgoing message written to modem storage, ready for
/// [`ModemHandle::send_prepared`](super::ModemHandle::send_prepared). Persist it (and flush)
/// before sending; after a crash, send it again with the persisted value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedSms {
    /// The modem it was written to (only that modem can send it).
    pub modem: String,
    /// The storage memory of the slots (`ME`, `SM`): the write memory when it was prepared.
    pub mem: String,
    /// Recipient, as given.
    pub to: String,
    /// The caller's key, returned in status report events.
    #[serde(default)]
    pub key: Option<String>,
    /// The parts in order.
    pub parts: Vec<PreparedPart>,
}

impl PreparedSms {
    /// Number of parts.
    pub fn part_count(&self) -> usize {
        self.parts.len()
    }

    /// True when every part is in storage: sending it is exactly-once across crashes.
    pub fn is_crash_safe(&self) -> bool {
        self.parts.iter().all(|p| p.index.is_some())
    }

    /// The storage slots it holds.
    pub fn slots(&self) -> Vec<StorageSlot> {
        self.parts
            .iter()
            .filter_map(|p| p.index)
            .map(|index| StorageSlot {
                mem: self.mem.clone(),
                index,
            })
            .collect()
    }
}

/// How `send_prepared` (or `send_sms`) settled one part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PartOutcome {
    /// Sent by this call; `mr` from `+CMSS`/`+CMGS`, matched by status reports.
    Sent {
        /// TP-MR.
        mr: u8,
    },
    /// The slot said "stored sent": the part went out before (an attempt whose reply was
    /// lost, e.g. to a crash). Not sent again; its message reference is unknown.
    SentBefore,
    /// The slot was empty or held another message: the part was sent and deleted before
    /// (the driver deletes only after sending). Not sent again.
    Gone,
}

/// What `discard_prepared` found in the slots of a message it deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DiscardReport {
    /// Parts still unsent, now deleted: they never went out.
    pub deleted_unsent: usize,
    /// Parts that had gone out (stat 3), now deleted.
    pub sent_before: usize,
    /// Parts whose slot was already empty or reused.
    pub gone: usize,
}

/// A stored outgoing message found by `reconcile_outbound`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredOutbound {
    /// Where.
    pub slot: StorageSlot,
    /// 2 stored unsent, 3 stored sent.
    pub stat: u8,
    /// Recipient, when the PDU decodes.
    pub to: Option<String>,
    /// Text of this part, when the PDU decodes as text.
    pub text: Option<String>,
    /// The PDU hex as stored.
    pub pdu: String,
}

/// The result of `reconcile_outbound`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OutboundReport {
    /// Stored outgoing messages nobody referred to, deleted (unsent ones never went out).
    pub deleted: Vec<StoredOutbound>,
    /// Stored outgoing messages kept: referred to by a given [`PreparedSms`], or being
    /// prepared or sent by this driver now.
    pub kept: Vec<StoredOutbound>,
}

/// What the SMS worker knows about outgoing messages in storage.
#[derive(Debug, Default)]
pub(super) struct Outbound {
    /// Slots this driver wrote and has not deleted, with the PDU written and whether their
    /// state is known (written, and no send attempt with an unknown result since).
    pub(super) own: HashMap<StorageSlot, OwnSlot>,
    /// Unsent slots left by earlier runs, from the first sweep on (`None` before it); a
    /// later sweep that finds an unsent slot in neither set found the orphan of a write
    /// whose reply was lost.
    pub(super) foreign: Option<HashSet<StorageSlot>>,
    /// The modem refused `AT+CMGW`/`AT+CMSS`: prepared messages fail from now on (never
    /// `AT+CMGS`, which is at-least-once).
    pub(super) refused: bool,
}

/// A slot this driver wrote.
#[derive(Debug)]
pub(super) struct OwnSlot {
    /// The PDU written.
    pub(super) pdu: String,
    /// Its state is known (no send attempt with an unknown result since the write).
    pub(super) known: bool,
}
