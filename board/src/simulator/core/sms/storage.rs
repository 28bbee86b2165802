//! The message storage: numbered slots holding PDUs with their 27.005 status (0 received
//! unread, 1 received read, 2 stored unsent, 3 stored sent), and the commands that manage it as
//! a whole: `+CPMS` (which memories the gateway reads, writes and receives into) and `+CMGD`
//! (delete one message or, by flag, a class of them).
//!
//! Each memory the model offers (`SM`, `ME`, `SR`) is its own set of slots, as on the real
//! modules: `<mem1>` is where `+CMGR`/`+CMGL`/`+CMGD` look, `<mem2>` where `+CMGW` writes and
//! `+CMSS` sends from, `<mem3>` where the network stores what it delivers; status reports
//! stored with `+CNMI` `<ds>` 2 go to `SR` when the model has it. `MT` ("any of the modem's
//! memories") names `ME` here. Indexes count from 1 on the SIM (`SM`) and on models whose
//! power-on memory is the SIM, from 0 on the modem's own memory otherwise (the EC25's
//! numbering).

use super::super::SimCore;
use super::super::commands::{Cmd, Reply};
use super::super::line::Op;
use super::inbound;
use crate::simulator::SimulatorEvent;
use crate::simulator::dialect::Dialect;

/// One stored message.
#[derive(Debug, Clone)]
pub(in crate::simulator::core) struct Stored {
    pub(in crate::simulator::core) stat: u8,
    pub(in crate::simulator::core) pdu: String,
    pub(in crate::simulator::core) tpdu_len: usize,
}

/// The slots of one memory.
#[derive(Debug)]
pub(in crate::simulator::core) struct Storage {
    slots: Vec<Option<Stored>>,
    base: u32,
}

/// Every memory of the model, by name.
#[derive(Debug)]
pub(in crate::simulator::core) struct Memories {
    mems: Vec<(&'static str, Storage)>,
}

impl Memories {
    pub(super) fn new(d: &Dialect, slots: u32) -> Self {
        let n = usize::try_from(slots.max(1)).unwrap_or(1);
        let mems = d
            .memories
            .iter()
            .filter(|m| **m != "MT")
            .map(|m| {
                let base = u32::from(*m == "SM" || d.memory == "SM");
                (
                    *m,
                    Storage {
                        slots: vec![None; n],
                        base,
                    },
                )
            })
            .collect::<Vec<_>>();
        let mut mems = mems;
        if mems.is_empty() {
            // Every dialect names its memories; this keeps the lookups below total anyway.
            mems.push((
                "ME",
                Storage {
                    slots: vec![None; n],
                    base: 0,
                },
            ));
        }
        Self { mems }
    }

    fn position(&self, name: &str) -> usize {
        let name = canonical(name);
        self.mems
            .iter()
            .position(|(m, _)| m.eq_ignore_ascii_case(name))
            .unwrap_or(0)
    }

    /// The storage a memory name refers to (`MT` is `ME`); the first one for an unknown name.
    pub(super) fn get(&self, name: &str) -> &Storage {
        &self.mems[self.position(name)].1
    }

    /// The storage a memory name refers to, mutably.
    pub(super) fn get_mut(&mut self, name: &str) -> &mut Storage {
        let i = self.position(name);
        &mut self.mems[i].1
    }

    /// True when the model has this memory.
    pub(super) fn has(&self, name: &str) -> bool {
        let name = canonical(name);
        self.mems.iter().any(|(m, _)| m.eq_ignore_ascii_case(name))
    }

    /// Every stored message of every memory as (memory, index, stat, PDU hex).
    pub(super) fn list_all(&self) -> Vec<(&'static str, u32, u8, String)> {
        self.mems
            .iter()
            .flat_map(|(m, s)| s.list().into_iter().map(|(i, st, p)| (*m, i, st, p)))
            .collect()
    }
}

fn canonical(name: &str) -> &str {
    if name.eq_ignore_ascii_case("MT") {
        "ME"
    } else {
        name
    }
}

impl Storage {
    /// The slot of `index`, if `index` is in range.
    pub(super) fn slot_of(&self, index: u32) -> Option<usize> {
        usize::try_from(index.checked_sub(self.base)?)
            .ok()
            .filter(|i| *i < self.slots.len())
    }

    fn index_of(&self, slot: usize) -> u32 {
        u32::try_from(slot)
            .unwrap_or(u32::MAX)
            .saturating_add(self.base)
    }

    pub(super) fn used(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    pub(super) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The message at `index`.
    pub(super) fn get(&self, index: u32) -> Option<&Stored> {
        self.slot_of(index)
            .and_then(|s| self.slots.get(s))
            .and_then(Option::as_ref)
    }

    /// Sets the status of the message at `index`.
    pub(super) fn set_stat(&mut self, index: u32, stat: u8) {
        if let Some(Some(m)) = self.slot_of(index).and_then(|s| self.slots.get_mut(s)) {
            m.stat = stat;
        }
    }

    /// Reading a received unread message makes it read.
    pub(super) fn mark_read(&mut self, index: u32) {
        if self.get(index).is_some_and(|m| m.stat == 0) {
            self.set_stat(index, 1);
        }
    }

    /// Indexes of the messages with status `stat` (4: all), in order.
    pub(super) fn indexes_with(&self, stat: u8) -> Vec<u32> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.as_ref()
                    .filter(|m| stat == 4 || m.stat == stat)
                    .map(|_| self.index_of(i))
            })
            .collect()
    }

    /// Stores `m` in the first free slot; its index, or `None` when full.
    pub(super) fn put(&mut self, m: Stored) -> Option<u32> {
        let slot = self.slots.iter().position(Option::is_none)?;
        let s = self.slots.get_mut(slot)?;
        *s = Some(m);
        Some(self.index_of(slot))
    }

    /// Removes the message at `index`; true when there was one.
    fn remove(&mut self, index: u32) -> bool {
        self.slot_of(index)
            .and_then(|s| self.slots.get_mut(s))
            .and_then(Option::take)
            .is_some()
    }

    /// Every message as (index, stat, PDU hex).
    pub(super) fn list(&self) -> Vec<(u32, u8, String)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.as_ref()
                    .map(|m| (self.index_of(i), m.stat, m.pdu.clone()))
            })
            .collect()
    }

    /// No slot is free.
    pub(super) fn is_full(&self) -> bool {
        self.slots.iter().all(Option::is_some)
    }
}

/// `+CPMS=<mem1>[,<mem2>[,<mem3>]]` selects the memories (each must be one the model offers
/// for that use, else `+CMS ERROR: 302`; `SR` holds status reports, so it can be read but
/// neither written nor received into); the read form names them with their own counts.
pub(super) fn cpms(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    let counts = |c: &SimCore, m: &str| {
        let s = c.sms.storage.get(m);
        format!("{},{}", s.used(), s.capacity())
    };
    match cmd.op {
        Op::Read => {
            let [a, b, d] = c.sms.cfg.mems;
            Reply::line(format!(
                "+CPMS: \"{a}\",{},\"{b}\",{},\"{d}\",{}",
                counts(c, a),
                counts(c, b),
                counts(c, d)
            ))
        }
        Op::Test => {
            let quoted = |reports: bool| {
                let list: Vec<String> =
                    c.d.memories
                        .iter()
                        .filter(|m| reports || **m != "SR")
                        .map(|m| format!("\"{m}\""))
                        .collect();
                format!("({})", list.join(","))
            };
            Reply::line(format!(
                "+CPMS: {},{},{}",
                quoted(true),
                quoted(false),
                quoted(false)
            ))
        }
        Op::Exec => Reply::error(),
        Op::Set => {
            let mut mems = c.sms.cfg.mems;
            for (i, slot) in mems.iter_mut().enumerate() {
                let Some(name) = cmd.args.opt_text(i) else {
                    if i == 0 {
                        return Reply::cms(302);
                    }
                    continue;
                };
                match c.d.memories.iter().find(|m| m.eq_ignore_ascii_case(name)) {
                    Some(&"SR") if i > 0 => return Reply::cms(302),
                    Some(m) => *slot = m,
                    None => return Reply::cms(302),
                }
            }
            c.sms.cfg.mems = mems;
            let [a, b, d] = mems;
            Reply::line(format!(
                "+CPMS: {},{},{}",
                counts(c, a),
                counts(c, b),
                counts(c, d)
            ))
        }
    }
}

/// `+CMGD=<index>[,<delflag>]` (27.005 §3.5.4): flag 0 deletes `<index>`; 1 every read
/// message, 2 read and sent, 3 read, sent and unsent, 4 all (the index is then ignored).
pub(super) fn cmgd(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Test => {
            let idx: Vec<String> = c
                .sms
                .read_mem()
                .indexes_with(4)
                .iter()
                .map(u32::to_string)
                .collect();
            Reply::line(format!("+CMGD: ({}),(0-4)", idx.join(",")))
        }
        Op::Set => {
            let index = cmd.args.int::<u32>(0, "index");
            let flag = cmd.args.opt_int::<u8>(1, "delflag");
            let (flag, index) = match (flag, index) {
                (Ok(None | Some(0)), Ok(i)) => (0, i),
                (Ok(Some(f @ 1..=4)), _) => (f, 0),
                _ => return Reply::cms(if c.sms.cfg.text_mode { 305 } else { 304 }),
            };
            let doomed: Vec<u32> = if flag == 0 {
                if c.sms.read_mem().slot_of(index).is_none() {
                    return Reply::cms(321);
                }
                vec![index]
            } else {
                let stats: &[u8] = match flag {
                    1 => &[1],
                    2 => &[1, 3],
                    3 => &[1, 2, 3],
                    _ => &[0, 1, 2, 3],
                };
                stats
                    .iter()
                    .flat_map(|s| c.sms.read_mem().indexes_with(*s))
                    .collect()
            };
            for index in doomed {
                if c.sms.read_mem_mut().remove(index) {
                    c.emit(SimulatorEvent::SmsDeleted { index });
                }
            }
            Reply::ok().then(inbound::space_again(c))
        }
        _ => Reply::error(),
    }
}
