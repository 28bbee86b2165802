//! Exactly-once sending through modem storage (27.005 §3.5.3-4): write the message first
//! (`AT+CMGW`, stat 2 "stored unsent"), let the caller persist where it is, then send it from
//! storage (`AT+CMSS`), after which the modem marks it stat 3 "stored sent".
//!
//! # The protocol the runtime follows
//!
//! 1. [`ModemHandle::prepare_sms`](super::ModemHandle::prepare_sms) encodes the parts and
//!    writes each to storage; the [`PreparedSms`] says where.
//! 2. The runtime persists the `PreparedSms` (and flushes) before anything else.
//! 3. [`ModemHandle::send_prepared`](super::ModemHandle::send_prepared) sends each part
//!    that has not gone out and deletes its slot. After a restart the runtime calls it again
//!    with the persisted value: a part whose slot this driver did not just write itself is
//!    first read back (`AT+CMGR`): stat 3 means it went out before the crash (not sent
//!    again, [`PartOutcome::SentBefore`]); stat 2 with the same SUBMIT means it did not
//!    (sent now); an empty slot or one holding another message means it is gone
//!    ([`PartOutcome::Gone`], treated as sent: see below).
//! 4. The runtime records the result, and drops the persisted `PreparedSms`.
//! 5. At start-up, once it has loaded every persisted `PreparedSms`, the runtime calls
//!    [`ModemHandle::reconcile_outbound`](super::ModemHandle::reconcile_outbound) with them:
//!    stored outgoing messages nobody refers to are deleted.
//!
//! # Crash windows
//!
//! | crash … | after the restart |
//! |---|---|
//! | during `AT+CMGW`, or before the runtime persisted the slots | the runtime still has the message queued and prepares it again; the orphan (stat 2) is deleted by `reconcile_outbound`, never sent |
//! | after persisting, before `AT+CMSS` | stat 2, same PDU: sent once by `send_prepared` |
//! | after the modem sent, before `+CMSS` was processed | stat 3: [`PartOutcome::SentBefore`], not sent again (its MR is unknown, so its status report cannot be matched) |
//! | after `AT+CMGD`, before the runtime recorded the result | slot empty (or reused): [`PartOutcome::Gone`], not sent again |
//! | between the parts of a multipart message | each part is judged on its own slot |
//! | after the runtime recorded the result, before the slot was deleted | stat 3 and unreferenced: deleted by the next sweep (stat 3 is never sent again) |
//! | modem reboot between the write memory's `AT+CPMS` and `AT+CMGW`/`AT+CMSS` | (not a gateway crash) the power-on memory is selected again: the command is not sent once the boot URC was read (selected again, tried once more); one the boot crossed counts as interrupted (`on_write_mem`): a write's orphan is never referenced, a send is judged by its slot, and a part of ours at that index in any memory is read back before it is sent |
//!
//! **Gone is treated as sent** because this driver deletes an outgoing slot only after the
//! modem sent that message, after `discard_prepared`, or in `reconcile_outbound` for slots no
//! persisted `PreparedSms` refers to. Windows this cannot close: a modem that transmits and
//! then loses power before it marks the slot stat 3 (sent again on resume); storage wiped
//! behind the driver's back (SIM swap, factory reset: the parts count as sent although they
//! were not); a network that accepted a message whose acknowledgement the modem never got
//! (the modem reports an error, the runtime retries: the network sees it twice).
//!
//! # Storage accounting: defer, never fall back
//!
//! Init gives outgoing messages a memory of their own where the modem has one (`<mem2>` of
//! a three-parameter `AT+CPMS`, see `SmsMemories`), so a burst of incoming messages never
//! takes the slots a reply needs. Prepared messages hold at most `sms.outbound_slots` slots
//! (this driver's and unsent ones left by earlier runs, counted by the sweeps). When a
//! message would exceed that, or `AT+CMGW` answers memory full (`+CMS ERROR: 322`),
//! `prepare_sms` fails with [`ModemError::StorageFull`] after draining the received
//! messages (a sweep hands them out; the runtime stores and acknowledges them, which deletes
//! them): nothing was sent, and the caller keeps the message queued and tries again. A
//! modem that refuses `AT+CMGW`/`AT+CMSS` makes prepared messages fail with the refusal
//! ([`ModemError::Unsupported`] from then on). `AT+CMGS`, which cannot tell after a crash
//! whether the message went out, is used only when the operator switched storage sends off
//! (`sms.store_and_send = false`, or a profile without
//! [`VendorProfile::sms_store_send`](crate::modem::profile::VendorProfile::sms_store_send)):
//! [`PreparedSms::is_crash_safe`] is then false.
//!
//! Sweeps never hand stored outgoing messages (stat 2/3) to the inbound path.

use std::collections::HashSet;

use tracing::{debug, info, warn};

use super::port::Command;
use super::sms::{OutgoingSms, ReinitRetry, SentSms, SmsWorker, outcome_unknown};
use super::storage::{
    DiscardReport, OutboundReport, OwnSlot, PartOutcome, PreparedPart, PreparedSms, StorageSlot,
    StoredOutbound,
};
use crate::modem::at::response::{self, StoredPdu};
use crate::modem::config::ms;
use crate::modem::error::ModemError;
use crate::modem::pdu::{Pdu, Submit, Tpdu};

/// What a slot holds, as far as one prepared part is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    /// Stat 2 with the part's SUBMIT.
    Unsent,
    /// Stat 3 with the part's SUBMIT.
    Sent,
    /// Empty, or another message.
    Gone,
}

/// The SUBMIT of a PDU, with TP-MR cleared (the modem assigns it when sending and may write
/// it back into storage).
fn submit_of(hex: &str, tpdu_len: usize) -> Option<Submit> {
    match Pdu::from_hex_with_tpdu_len(hex, tpdu_len).ok()?.tpdu {
        Tpdu::Submit(mut s) => {
            s.message_reference = 0;
            Some(s)
        }
        _ => None,
    }
}

/// True when a stored PDU is the prepared part: the same SUBMIT, whether or not the modem
/// filled in the SMSC field, padded the PDU or wrote the TP-MR into it.
pub(super) fn same_submit(stored: &StoredPdu, part: &PreparedPart) -> bool {
    match (
        submit_of(&stored.pdu, stored.length),
        submit_of(&part.pdu, part.tpdu_len),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// True for answers that mean "this modem does not do that" rather than "not now".
fn refusal(e: &ModemError) -> bool {
    match e {
        ModemError::Failed { .. } => true,
        ModemError::Cme { .. } => matches!(e.code(), Some(3 | 4)),
        ModemError::Cms { .. } => matches!(e.code(), Some(302 | 303)),
        _ => false,
    }
}

/// Timeouts, reboots and lost ports: the command may or may not have been carried out.
fn describe(slot: StorageSlot, p: &StoredPdu) -> StoredOutbound {
    let submit = submit_of(&p.pdu, p.length);
    StoredOutbound {
        slot,
        stat: p.stat,
        to: submit.as_ref().map(|s| s.destination.to_string()),
        text: submit
            .as_ref()
            .and_then(|s| s.user_data.body.text().map(str::to_owned)),
        pdu: p.pdu.clone(),
    }
}

impl SmsWorker {
    /// True when the operator lets prepared messages use storage.
    fn store_send_enabled(&self) -> bool {
        self.sh.profile.sms_store_send && self.sh.config.sms.store_and_send
    }

    /// No room for outgoing parts: hands out what was received (so the runtime stores,
    /// acknowledges and thereby deletes it) when both share a memory, then says so.
    async fn storage_full(&mut self, why: String) -> ModemError {
        if !self.sh.sms_mems.lock().separate() {
            self.sweep(false).await;
        }
        ModemError::StorageFull(why)
    }

    /// Slots outgoing messages hold now (as far as this driver knows).
    fn outbound_held(&self) -> usize {
        self.outbound.own.len() + self.outbound.foreign.as_ref().map_or(0, HashSet::len)
    }

    /// Stops tracking an outgoing slot (it is empty, or about to be).
    fn forget_outbound(&mut self, slot: &StorageSlot) {
        self.outbound.own.remove(slot);
        if let Some(f) = self.outbound.foreign.as_mut() {
            f.remove(slot);
        }
    }

    /// Stops tracking an outgoing slot and deletes it.
    async fn delete_outbound(&mut self, slot: StorageSlot) {
        self.forget_outbound(&slot);
        self.pending_deletes.push(slot);
        self.flush_deletes().await;
    }

    /// A prepared message can only be handled by the modem that wrote it.
    fn check_modem(&self, prepared: &PreparedSms) -> Result<(), ModemError> {
        if prepared.modem == self.sh.config.id {
            return Ok(());
        }
        Err(ModemError::InvalidArgument(format!(
            "the message was prepared on modem `{}`, not `{}`",
            prepared.modem, self.sh.config.id
        )))
    }

    /// True when this driver wrote `slot` with `part` and knows it is still unsent.
    fn known_unsent(&self, slot: &StorageSlot, part: &PreparedPart) -> bool {
        self.outbound
            .own
            .get(slot)
            .is_some_and(|o| o.known && o.pdu == part.pdu)
    }

    /// The stored outgoing messages (slot, stat) a complete sweep listed. Stat 3 ones that
    /// this driver is not sending went out already and are deleted. Unsent ones are counted
    /// against the outgoing cap; the first sweep takes them as left by earlier runs (for
    /// `reconcile_outbound` to judge), a later one that finds an unsent slot it has never
    /// seen found the orphan of a write whose reply was lost, and deletes it.
    pub(super) async fn outbound_swept(&mut self, found: Vec<(StorageSlot, u8)>) {
        let previous = self.outbound.foreign.take();
        let mut foreign = HashSet::new();
        let mut delete = Vec::new();
        for (slot, stat) in found {
            if self.outbound.own.contains_key(&slot) {
                continue;
            }
            if stat == 3 {
                info!(modem = %self.id(), index = slot.index, "deleting a sent message left in storage");
                delete.push(slot);
            } else if previous.as_ref().is_none_or(|p| p.contains(&slot)) {
                foreign.insert(slot);
            } else {
                warn!(modem = %self.id(), index = slot.index, "deleting an unsent message this driver wrote but never got an index for");
                delete.push(slot);
            }
        }
        self.outbound.foreign = Some(foreign);
        for slot in delete {
            self.delete_outbound(slot).await;
        }
    }

    /// `prepare_sms`: encodes and writes each part to storage.
    pub(super) async fn prepare(&mut self, sms: OutgoingSms) -> Result<PreparedSms, ModemError> {
        let pdus = self.encode(&sms)?;
        self.sh
            .wait_ready(ms(self.sh.config.sms.ready_wait_ms))
            .await?;
        let mut prepared = PreparedSms {
            modem: self.sh.config.id.clone(),
            mem: self.sh.write_mem(),
            to: sms.to,
            key: sms.key,
            parts: pdus
                .iter()
                .map(|p| PreparedPart {
                    index: None,
                    pdu: p.hex(),
                    tpdu_len: p.tpdu_len,
                })
                .collect(),
        };
        if !self.store_send_enabled() {
            debug!(modem = %self.id(), "storage sends switched off: the message goes out with AT+CMGS");
            return Ok(prepared);
        }
        if self.outbound.refused {
            return Err(ModemError::Unsupported(
                "this modem refused sending from storage (AT+CMGW/AT+CMSS); set \
                 sms.store_and_send = false to send with AT+CMGS (at least once across crashes)"
                    .to_owned(),
            ));
        }
        let cap = usize::try_from(self.sh.config.sms.outbound_slots).unwrap_or(usize::MAX);
        let held = self.outbound_held();
        if held + prepared.parts.len() > cap {
            warn!(modem = %self.id(), held, parts = prepared.parts.len(), cap, "outgoing storage slots capped: the message waits");
            let why = format!(
                "{held} of {cap} outgoing slots held, {} more needed",
                prepared.parts.len()
            );
            return Err(self.storage_full(why).await);
        }
        let mut written = Vec::new();
        for i in 0..prepared.parts.len() {
            let Some(part) = prepared.parts.get(i) else {
                break;
            };
            let cmd = Command::new(
                format!("AT+CMGW={},2", part.tpdu_len),
                ms(self.sh.t().long_ms),
            )
            .with_body(part.pdu.clone(), ms(self.sh.t().prompt_ms));
            // On the write memory as it is now: a write answered after a reboot stored the
            // part in the power-on memory, under an index that would be filed as `mem`'s.
            let res = self
                .on_write_mem(&prepared.mem, cmd)
                .await
                .and_then(|r| response::cmgw(&r).map_err(|e| ModemError::Response(e.to_string())));
            match res {
                Ok(index) => {
                    let slot = StorageSlot {
                        mem: prepared.mem.clone(),
                        index,
                    };
                    self.outbound.own.insert(
                        slot.clone(),
                        OwnSlot {
                            pdu: part.pdu.clone(),
                            known: true,
                        },
                    );
                    written.push(slot);
                    if let Some(p) = prepared.parts.get_mut(i) {
                        p.index = Some(index);
                    }
                }
                Err(e) => {
                    for slot in written {
                        self.delete_outbound(slot).await;
                    }
                    for p in &mut prepared.parts {
                        p.index = None;
                    }
                    if refusal(&e) {
                        warn!(modem = %self.id(), error = %e, "the modem refuses AT+CMGW: prepared messages fail from now on");
                        self.outbound.refused = true;
                        return Err(e);
                    }
                    if e.code() == Some(322) {
                        warn!(modem = %self.id(), mem = %prepared.mem, "SMS write memory full: the message waits");
                        let why = format!("memory {} full", prepared.mem);
                        return Err(self.storage_full(why).await);
                    }
                    // A timeout or reboot may have stored the part anyway (after a reboot
                    // between the memory selection and the write: in the power-on memory,
                    // see `on_write_mem`). Its index is not recorded, so nothing refers to
                    // that orphan and it is never sent; the next sweep of its memory finds
                    // an unsent slot this driver does not know and deletes it. Writing the
                    // part again (the runtime prepares the message anew) is therefore safe.
                    return Err(e);
                }
            }
        }
        info!(modem = %self.id(), to = %prepared.to, slots = ?prepared.parts.iter().filter_map(|p| p.index).collect::<Vec<_>>(), "SMS written to storage");
        Ok(prepared)
    }

    /// `send_prepared`: sends the parts that have not gone out, deletes their slots.
    pub(super) async fn send_prepared(
        &mut self,
        prepared: &PreparedSms,
    ) -> Result<SentSms, ModemError> {
        self.check_modem(prepared)?;
        let total = prepared.parts.len();
        let mut outcomes = Vec::with_capacity(total);
        let mut refs = Vec::new();
        for (i, part) in prepared.parts.iter().enumerate() {
            let res = match part.index {
                None => self
                    .send_direct(&part.pdu, part.tpdu_len, i + 1)
                    .await
                    .map(|mr| PartOutcome::Sent { mr }),
                Some(index) => {
                    let slot = StorageSlot {
                        mem: prepared.mem.clone(),
                        index,
                    };
                    self.send_stored(slot, part, i + 1).await
                }
            };
            match res {
                Ok(o) => {
                    if let PartOutcome::Sent { mr } = o {
                        refs.push(mr);
                        self.remember_sent(mr, prepared.key.clone(), i + 1, total);
                    }
                    outcomes.push(o);
                }
                Err(e) if outcomes.is_empty() => return Err(e),
                Err(e) => {
                    return Err(ModemError::PartialSend {
                        sent: outcomes.len(),
                        total,
                        refs,
                        cause: Box::new(e),
                    });
                }
            }
        }
        info!(modem = %self.id(), to = %prepared.to, parts = total, ?outcomes, "prepared SMS settled");
        Ok(SentSms {
            key: prepared.key.clone(),
            message_references: refs,
            parts: total,
            outcomes,
        })
    }

    /// Sends one stored part: reads the slot back unless this driver knows its state, sends
    /// it with `AT+CMSS`, deletes it. Retries (after re-checking) when the modem reboots,
    /// times out or vanishes.
    async fn send_stored(
        &mut self,
        slot: StorageSlot,
        part: &PreparedPart,
        part_no: usize,
    ) -> Result<PartOutcome, ModemError> {
        let mut retry = ReinitRetry::new(&self.sh);
        loop {
            retry.start(&self.sh);
            match self.try_send_stored(&slot, part, part_no).await {
                Err(e) if outcome_unknown(&e) => {
                    // Did the modem send it? Only the slot can tell: read it before retrying.
                    if let Some(own) = self.outbound.own.get_mut(&slot) {
                        own.known = false;
                    }
                    let what = "stored SMS part interrupted: checking its slot after re-init";
                    retry.wait(&self.sh, e, part_no, what).await?;
                }
                other => return other,
            }
        }
    }

    async fn try_send_stored(
        &mut self,
        slot: &StorageSlot,
        part: &PreparedPart,
        part_no: usize,
    ) -> Result<PartOutcome, ModemError> {
        self.sh
            .wait_ready(ms(self.sh.config.sms.ready_wait_ms))
            .await?;
        if !self.known_unsent(slot, part) {
            match self.inspect(slot, part).await? {
                SlotState::Unsent => {}
                SlotState::Sent => {
                    info!(modem = %self.id(), part = part_no, index = slot.index, "part went out before (stored sent): not sending it again");
                    self.delete_outbound(slot.clone()).await;
                    return Ok(PartOutcome::SentBefore);
                }
                SlotState::Gone => {
                    info!(modem = %self.id(), part = part_no, index = slot.index, "slot empty or reused: the part went out before");
                    self.forget_outbound(slot);
                    return Ok(PartOutcome::Gone);
                }
            }
        }
        // AT+CMSS sends from the write memory: the one this message was written to, as it
        // is now (`on_write_mem`: not the power-on memory a reboot swapped in).
        let cmd = Command::new(format!("AT+CMSS={}", slot.index), ms(self.sh.t().long_ms));
        let res = self
            .on_write_mem(&slot.mem, cmd)
            .await
            .and_then(|r| response::cmss(&r).map_err(|e| ModemError::Response(e.to_string())));
        match res {
            Ok(mr) => {
                self.delete_outbound(slot.clone()).await;
                Ok(PartOutcome::Sent { mr })
            }
            Err(e) if refusal(&e) => {
                // Written but not sendable from storage. Sending the PDU with AT+CMGS would
                // be at-least-once across crashes: the caller gets the refusal instead (and
                // discards the slot when it gives up).
                warn!(modem = %self.id(), error = %e, "the modem refuses AT+CMSS: prepared messages fail from now on");
                self.outbound.refused = true;
                Err(e)
            }
            Err(e @ ModemError::Rebooted { .. }) => {
                // The send may have gone to the slot of this index in another memory (the
                // power-on one): a part of ours stored there may have gone out too, so no
                // part at this index is taken as unsent without reading it back first.
                for (own_slot, own) in &mut self.outbound.own {
                    if own_slot.index == slot.index {
                        own.known = false;
                    }
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Reads a slot back (`AT+CMGR`) and judges it against the part.
    async fn inspect(
        &mut self,
        slot: &StorageSlot,
        part: &PreparedPart,
    ) -> Result<SlotState, ModemError> {
        // On the slot's memory as it is now (`on_mem`: not one a reboot swapped in).
        let read = self.sh.cmd(format!("AT+CMGR={}", slot.index));
        let r = match self.on_mem(&slot.mem, read).await {
            Ok(r) => r,
            // 321: invalid index, i.e. nothing there.
            Err(e) if e.code() == Some(321) => return Ok(SlotState::Gone),
            Err(e) => return Err(e),
        };
        let stored = response::cmgr(&r).map_err(|e| ModemError::Response(e.to_string()))?;
        Ok(match stored {
            Some(p) if same_submit(&p, part) && p.stat == 2 => SlotState::Unsent,
            Some(p) if same_submit(&p, part) && p.stat == 3 => SlotState::Sent,
            _ => SlotState::Gone,
        })
    }

    /// `discard_prepared`: deletes the slots of a message that will not be sent (after a
    /// permanent failure), saying what they held.
    pub(super) async fn discard(
        &mut self,
        prepared: &PreparedSms,
    ) -> Result<DiscardReport, ModemError> {
        self.check_modem(prepared)?;
        let mut report = DiscardReport::default();
        for part in &prepared.parts {
            let Some(index) = part.index else { continue };
            let slot = StorageSlot {
                mem: prepared.mem.clone(),
                index,
            };
            self.sh
                .wait_ready(ms(self.sh.config.sms.ready_wait_ms))
                .await?;
            let state = if self.known_unsent(&slot, part) {
                SlotState::Unsent
            } else {
                self.inspect(&slot, part).await?
            };
            match state {
                SlotState::Unsent => report.deleted_unsent += 1,
                SlotState::Sent => report.sent_before += 1,
                SlotState::Gone => {
                    report.gone += 1;
                    self.forget_outbound(&slot);
                    continue;
                }
            }
            self.delete_outbound(slot).await;
        }
        info!(modem = %self.id(), to = %prepared.to, ?report, "prepared SMS discarded");
        Ok(report)
    }

    /// `reconcile_outbound`: lists stored outgoing messages and deletes those that neither a
    /// `keep` entry nor this driver's current work refers to.
    pub(super) async fn reconcile(
        &mut self,
        keep: &[PreparedSms],
    ) -> Result<OutboundReport, ModemError> {
        self.sh
            .wait_ready(ms(self.sh.config.sms.ready_wait_ms))
            .await?;
        // The write memory, and the receive memory too when they differ: an older run (or
        // a modem that refused the split) may have written outgoing messages there.
        let mut mems = vec![self.sh.write_mem()];
        let receive = self.sh.receive_mem();
        if !mems.contains(&receive) {
            mems.push(receive);
        }
        let mut report = OutboundReport::default();
        let mut foreign = HashSet::new();
        for mem in mems {
            let listing = Command::new("AT+CMGL=4", ms(self.sh.t().list_ms));
            let r = self.on_mem(&mem, listing).await?;
            let (entries, bad) = response::cmgl(&r);
            for b in bad {
                warn!(modem = %self.id(), error = %b, "bad +CMGL entry");
            }
            for e in entries.into_iter().filter(|e| e.stat >= 2) {
                let Some(index) = e.index else { continue };
                let slot = StorageSlot {
                    mem: mem.clone(),
                    index,
                };
                let own = self.outbound.own.contains_key(&slot);
                let referred = keep.iter().any(|k| {
                    k.mem == mem
                        && k.parts
                            .iter()
                            .any(|p| p.index == Some(index) && same_submit(&e, p))
                });
                let found = describe(slot.clone(), &e);
                if own || referred {
                    if !own {
                        foreign.insert(slot);
                    }
                    report.kept.push(found);
                } else {
                    info!(modem = %self.id(), %mem, index, stat = e.stat, to = ?found.to, "deleting an outgoing message nobody refers to");
                    self.delete_outbound(slot).await;
                    report.deleted.push(found);
                }
            }
        }
        self.outbound.foreign = Some(foreign);
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modem::pdu::{Address, SubmitOptions, encode_submit};

    fn part(text: &str) -> PreparedPart {
        let to = Address::parse("+15551234567").unwrap_or_else(|e| panic!("{e}"));
        let pdus =
            encode_submit(&to, text, &SubmitOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        let p = pdus.first().unwrap_or_else(|| panic!("no part"));
        PreparedPart {
            index: Some(3),
            pdu: p.hex(),
            tpdu_len: p.tpdu_len,
        }
    }

    #[test]
    fn stored_pdu_matches_across_smsc_mr_and_padding() {
        let p = part("hello");
        let same = |pdu: String, length: usize| StoredPdu {
            index: None,
            stat: 2,
            length,
            pdu,
        };
        assert!(same_submit(&same(p.pdu.clone(), p.tpdu_len), &p));
        // The modem filled in the SMSC address when it stored it.
        let tpdu = p.pdu.get(2..).unwrap_or_default();
        let with_smsc = format!("07911355501010F0{tpdu}");
        assert!(same_submit(&same(with_smsc, p.tpdu_len), &p));
        // Without the SMSC field at all, and padded.
        assert!(same_submit(&same(format!("{tpdu}FF"), p.tpdu_len), &p));
        // The modem wrote the MR it assigned into the stored PDU.
        let mut mr = tpdu.to_owned();
        mr.replace_range(2..4, "2A");
        assert!(same_submit(&same(format!("00{mr}"), p.tpdu_len), &p));
        // Another text, another recipient, or garbage: not the same message.
        let other = part("hellO");
        assert!(!same_submit(&same(other.pdu, other.tpdu_len), &p));
        assert!(!same_submit(&same("zz".to_owned(), 1), &p));
    }

    #[test]
    fn prepared_sms_round_trips_and_reports_its_slots() {
        let p = PreparedSms {
            modem: "m0".into(),
            mem: "ME".into(),
            to: "+15551234567".into(),
            key: Some("k".into()),
            parts: vec![
                part("a"),
                PreparedPart {
                    index: Some(7),
                    ..part("b")
                },
            ],
        };
        let json = serde_json::to_string(&p).unwrap_or_default();
        let back: PreparedSms = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, p);
        assert_eq!(back.part_count(), 2);
        assert!(back.is_crash_safe());
        assert_eq!(
            back.slots().iter().map(|s| s.index).collect::<Vec<_>>(),
            vec![3, 7]
        );
        let mut direct = back;
        direct.parts[1].index = None;
        assert!(!direct.is_crash_safe());
    }
}
