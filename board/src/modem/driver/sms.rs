//! The SMS worker: receiving (stored `+CMTI`→`AT+CMGR`, direct `+CMT`→`AT+CNMA`, backlog and
//! periodic sweeps with `AT+CMGL=4`), multipart reassembly, handing each message out as an
//! [`InboundSms`] and deleting it from the modem only after the caller's [`SmsAck`], sending
//! (`AT+CMGS` in PDU mode, one command per part, retried across reboots; the crash-safe
//! storage path of `outbound`), and matching status reports to sent messages by message
//! reference.
//!
//! One task per modem; it waits for the modem to be ready before touching the port, so jobs
//! queued during a reboot or a port loss run afterwards. Storage slots handed out and not yet
//! acknowledged are "in flight" and skipped by sweeps, so a message is never handed out twice
//! by one driver; a dropped (unacknowledged) message is released and handed out again by the
//! next sweep.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::Shared;
use super::port::{Command, Mark};
use super::storage::{
    DiscardReport, Outbound, OutboundReport, PartOutcome, PreparedSms, StorageSlot,
};
use crate::modem::at::codec::Response;
use crate::modem::at::response::{self, StoredPdu};
use crate::modem::config::{SmsMode, ms};
use crate::modem::error::ModemError;
use crate::modem::events::{DeliveryState, ModemEvent, ModemState, StatusReportEvent};
use crate::modem::pdu::{
    Address, Body, ConcatRef, Deliver, EncodedPdu, Message, MessageClass, Pdu, Pushed, Reassembler,
    StatusClass, StatusReport, SubmitOptions, Tpdu, encode_submit,
};

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingSms {
    /// Recipient (`+15551234567`, national digits).
    pub to: String,
    /// Text; split into parts when it does not fit one SMS.
    pub text: String,
    /// Ask for status reports (`None`: the modem's configured default).
    #[serde(default)]
    pub status_report: Option<bool>,
    /// The caller's key for this message, returned in status report events.
    #[serde(default)]
    pub key: Option<String>,
}

impl OutgoingSms {
    /// A message to `to` with `text`.
    pub fn new(to: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            to: to.into(),
            text: text.into(),
            status_report: None,
            key: None,
        }
    }

    /// Sets the caller's key.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
}

/// What `send_sms` and `send_prepared` return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentSms {
    /// The caller's key.
    pub key: Option<String>,
    /// Message references (`+CMGS`/`+CMSS`) of the parts this call sent, in order (parts
    /// found already sent have none: see `outcomes`).
    pub message_references: Vec<u8>,
    /// Number of parts.
    pub parts: usize,
    /// How each part was settled, in order.
    #[serde(default)]
    pub outcomes: Vec<PartOutcome>,
}

/// A received message (all parts joined).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsMessage {
    /// Modem id.
    pub modem: String,
    /// Sender (`+` for international numbers; alphanumeric senders as text).
    pub sender: String,
    /// The text. For an incomplete message each missing part is `[…]`; for 8-bit data the
    /// bytes as hex; for an undecodable PDU empty (see `error`).
    pub text: String,
    /// Raw bytes of an 8-bit data message.
    pub data: Option<Vec<u8>>,
    /// Service centre time stamp.
    pub timestamp: Option<DateTime<FixedOffset>>,
    /// SMSC address.
    pub smsc: Option<String>,
    /// Message class.
    pub class: Option<MessageClass>,
    /// Parts the message has (1 when not concatenated).
    pub parts: u8,
    /// Part numbers that never arrived (incomplete after the multipart timeout).
    pub missing_parts: Vec<u8>,
    /// All parts arrived and decoded.
    pub complete: bool,
    /// Why the PDU could not be decoded (the message is handed out anyway so it is visible).
    pub error: Option<String>,
    /// The raw PDUs (hex) of the parts.
    pub pdus: Vec<String>,
    /// Where the parts are stored (deleted after the acknowledgement).
    pub storage: Vec<StorageSlot>,
    /// A stable key for de-duplication across restarts (a message stored by the caller but
    /// not yet deleted when the gateway died is handed out again after the restart).
    pub fingerprint: String,
    /// When the driver handed it out.
    pub received_at: DateTime<Utc>,
}

/// The acknowledgement of an [`InboundSms`]: [`SmsAck::ack`] deletes the message from the
/// modem (or sends `AT+CNMA` for a direct one). Dropping it without acking releases the
/// message: it is handed out again by the next sweep.
#[derive(Debug)]
pub struct SmsAck {
    jobs: mpsc::UnboundedSender<SmsJob>,
    slots: Vec<StorageSlot>,
    cnma: bool,
    done: bool,
}

impl SmsAck {
    /// The caller has stored the message: delete it from the modem.
    pub fn ack(mut self) {
        self.done = true;
        let _ = self.jobs.send(SmsJob::Ack {
            slots: std::mem::take(&mut self.slots),
            cnma: self.cnma,
        });
    }
}

impl Drop for SmsAck {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.jobs.send(SmsJob::Release {
                slots: std::mem::take(&mut self.slots),
            });
        }
    }
}

/// A status report with its acknowledgement: [`InboundReport::ack`] after applying it
/// deletes a stored report from the modem; dropping it unacknowledged leaves it there for
/// the next sweep.
#[derive(Debug)]
pub struct InboundReport {
    /// The report.
    pub report: StatusReportEvent,
    ack: SmsAck,
}

impl InboundReport {
    /// The report is applied (and persisted): delete it from the modem.
    pub fn ack(self) {
        self.ack.ack();
    }
}

/// A received message with its acknowledgement.
#[derive(Debug)]
pub struct InboundSms {
    /// The message.
    pub message: SmsMessage,
    ack: SmsAck,
}

impl InboundSms {
    /// Acknowledges (after the caller stored the message): the driver deletes it.
    pub fn ack(self) {
        self.ack.ack();
    }

    /// Splits into the message and its acknowledgement (ack later, after a flush).
    pub fn into_parts(self) -> (SmsMessage, SmsAck) {
        (self.message, self.ack)
    }
}

impl std::ops::Deref for InboundSms {
    type Target = SmsMessage;
    fn deref(&self) -> &SmsMessage {
        &self.message
    }
}

/// Work for the SMS worker.
#[derive(Debug)]
pub(crate) enum SmsJob {
    /// A `+CMTI`: a message was stored at `index`. `urc` is the URC's place in the port's
    /// count of URC notices (see [`super::port::Mark::urcs`]).
    Stored {
        mem: String,
        index: u32,
        urc: u64,
    },
    Direct {
        pdu: String,
        length: usize,
    },
    StatusStored {
        mem: String,
        index: u32,
    },
    StatusDirect {
        pdu: String,
        length: usize,
    },
    Sweep,
    MemoryFull {
        mem: String,
    },
    Ack {
        slots: Vec<StorageSlot>,
        cnma: bool,
    },
    Release {
        slots: Vec<StorageSlot>,
    },
    Send {
        sms: OutgoingSms,
        reply: oneshot::Sender<Result<SentSms, ModemError>>,
    },
    Prepare {
        sms: OutgoingSms,
        reply: oneshot::Sender<Result<PreparedSms, ModemError>>,
    },
    SendPrepared {
        prepared: Box<PreparedSms>,
        reply: oneshot::Sender<Result<SentSms, ModemError>>,
    },
    Discard {
        prepared: Box<PreparedSms>,
        reply: oneshot::Sender<Result<DiscardReport, ModemError>>,
    },
    Reconcile {
        keep: Vec<PreparedSms>,
        reply: oneshot::Sender<Result<OutboundReport, ModemError>>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    slot: Option<StorageSlot>,
    pdu: String,
}

#[derive(Debug)]
struct SentRecord {
    mr: u8,
    key: Option<String>,
    part: usize,
    parts: usize,
}

/// Status reports are matched against this many recent parts (MRs wrap at 256).
const SENT_MEMORY: usize = 256;

pub(crate) struct SmsWorker {
    pub(super) sh: Arc<Shared>,
    jobs_rx: mpsc::UnboundedReceiver<SmsJob>,
    jobs_tx: mpsc::UnboundedSender<SmsJob>,
    inbound: mpsc::UnboundedSender<InboundSms>,
    cancel: CancellationToken,
    in_flight: HashSet<StorageSlot>,
    released: HashSet<StorageSlot>,
    /// Every slot the last listing of its memory showed, with that listing's
    /// [`Mark::urcs`]: a `+CMTI` read before the listing's answer announced what the listing
    /// already handed out. Read later, when the slot may hold a newer message after the
    /// first was acknowledged and deleted, it would hand that newer one out ahead of older
    /// ones still waiting. At most one entry per slot of the modem's memories.
    listed: HashMap<StorageSlot, u64>,
    pub(super) pending_deletes: Vec<StorageSlot>,
    deferred: VecDeque<SmsJob>,
    reasm: Reassembler<Token>,
    redelivery: Reassembler<Token>,
    current_mem: Option<String>,
    /// The port's boot count ([`super::port::Mark::boots`]) when `current_mem` was selected.
    selected_boots: u64,
    /// The write memory (`<mem2>`) as last set on the modem.
    current_write: Option<String>,
    /// The port's boot count when `current_write` was selected (a read-memory selection
    /// since then does not vouch for it: it leaves `<mem2>` as it is).
    write_boots: u64,
    generation: u64,
    sent: VecDeque<SentRecord>,
    next_ref: u8,
    pub(super) outbound: Outbound,
}

impl SmsWorker {
    pub(crate) fn new(
        sh: Arc<Shared>,
        jobs_rx: mpsc::UnboundedReceiver<SmsJob>,
        inbound: mpsc::UnboundedSender<InboundSms>,
        cancel: CancellationToken,
    ) -> Self {
        let timeout = ms(sh.config.sms.multipart_timeout_ms);
        let jobs_tx = sh.sms_jobs.clone();
        Self {
            sh,
            jobs_rx,
            jobs_tx,
            inbound,
            cancel,
            in_flight: HashSet::new(),
            released: HashSet::new(),
            listed: HashMap::new(),
            pending_deletes: Vec::new(),
            deferred: VecDeque::new(),
            reasm: Reassembler::new(timeout),
            redelivery: Reassembler::new(timeout),
            current_mem: None,
            selected_boots: 0,
            current_write: None,
            write_boots: 0,
            generation: u64::MAX,
            sent: VecDeque::new(),
            next_ref: rand::random::<u8>(),
            outbound: Outbound::default(),
        }
    }

    pub(super) fn id(&self) -> &str {
        &self.sh.config.id
    }

    pub(crate) async fn run(mut self) {
        let every = ms(self.sh.config.sms.sweep_interval_ms.max(1_000));
        let mut next_sweep = Instant::now() + every;
        let mut status = self.sh.status.subscribe();
        loop {
            let expiry = self.next_expiry();
            tokio::select! {
                () = self.cancel.cancelled() => return,
                r = status.changed() => {
                    if r.is_err() {
                        return;
                    }
                    self.run_deferred().await;
                }
                job = self.jobs_rx.recv() => match job {
                    None => return,
                    Some(j) => self.handle(j).await,
                },
                () = async { match expiry { Some(t) => sleep_until(t).await, None => std::future::pending().await } } => {
                    self.expire().await;
                }
                () = sleep_until(next_sweep) => {
                    next_sweep = Instant::now() + every;
                    self.handle(SmsJob::Sweep).await;
                }
            }
        }
    }

    /// The reassemblers' next expiry as a tokio instant.
    fn next_expiry(&self) -> Option<Instant> {
        let t = [self.reasm.next_expiry(), self.redelivery.next_expiry()]
            .into_iter()
            .flatten()
            .min()?;
        let wait = (t - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        Some(Instant::now() + wait)
    }

    async fn expire(&mut self) {
        let now = Utc::now();
        let mut msgs = self.reasm.expire(now);
        msgs.extend(self.redelivery.expire(now));
        for m in msgs {
            info!(modem = %self.id(), missing = ?m.missing, "multipart message incomplete after timeout");
            self.deliver(m, None, None);
        }
    }

    /// True when the modem is ready now.
    fn is_ready(&mut self) -> bool {
        if self.sh.ensure_ready().is_err() {
            return false;
        }
        self.sync_generation();
        true
    }

    /// After a (re-)init the memories selected on the modem are unknown: init set all three,
    /// but a job of the last generation that a reboot interrupted goes on sending its
    /// commands (a sweep's `AT+CPMS="SR"`) among init's, and one that ran after init's
    /// `AT+CPMS` (or was queued before the generation changed and ran after it) left another
    /// memory selected. Assuming init's choice then sent the next delete to that memory,
    /// where `OK` (an empty slot) or `+CMS ERROR: 321` passed for "deleted": the acknowledged
    /// message stayed on the modem (traces of the reboot test under load showed both). So
    /// the first read, list or delete of a generation selects its memory explicitly.
    fn sync_generation(&mut self) {
        let g = self
            .sh
            .generation
            .load(std::sync::atomic::Ordering::Relaxed);
        if g != self.generation {
            self.generation = g;
            self.current_mem = None;
            self.current_write = None;
        }
    }

    /// Runs the jobs that waited for the modem.
    async fn run_deferred(&mut self) {
        while self.is_ready() {
            let Some(job) = self.deferred.pop_front() else {
                break;
            };
            self.handle(job).await;
        }
        if self.is_ready() {
            self.flush_deletes().await;
        }
    }

    /// Handles one job. Jobs that need the modem wait in `deferred` while it is not ready,
    /// so acknowledgements, releases and sends are never stuck behind them.
    async fn handle(&mut self, job: SmsJob) {
        match job {
            SmsJob::Release { slots } => {
                for s in slots {
                    self.in_flight.remove(&s);
                    self.released.insert(s);
                }
            }
            SmsJob::Send { sms, reply } => {
                let r = self.send(sms).await;
                let _ = reply.send(r);
            }
            SmsJob::Prepare { sms, reply } => {
                let r = self.prepare(sms).await;
                let _ = reply.send(r);
            }
            SmsJob::SendPrepared { prepared, reply } => {
                let r = self.send_prepared(&prepared).await;
                let _ = reply.send(r);
            }
            SmsJob::Discard { prepared, reply } => {
                let r = self.discard(&prepared).await;
                let _ = reply.send(r);
            }
            SmsJob::Reconcile { keep, reply } => {
                let r = self.reconcile(&keep).await;
                let _ = reply.send(r);
            }
            SmsJob::Ack { slots, cnma: false } => {
                self.pending_deletes.extend(slots);
                if self.is_ready() {
                    self.flush_deletes().await;
                }
            }
            other if !self.is_ready() => {
                if !(matches!(other, SmsJob::Sweep)
                    && self.deferred.iter().any(|j| matches!(j, SmsJob::Sweep)))
                {
                    self.deferred.push_back(other);
                }
            }
            other => {
                self.flush_deletes().await;
                match other {
                    SmsJob::Ack { .. } => {
                        if let Err(e) = self.sh.at.ok(self.sh.cmd("AT+CNMA")).await {
                            warn!(modem = %self.id(), error = %e, "AT+CNMA failed");
                        }
                    }
                    SmsJob::Stored { mem, index, urc } => {
                        self.read_stored(&mem, index, Some(urc)).await;
                    }
                    SmsJob::StatusStored { mem, index } => {
                        self.read_stored(&mem, index, None).await;
                        if self
                            .sh
                            .reports_mem()
                            .is_some_and(|r| r != self.normalise_mem(&mem))
                        {
                            self.sweep_reports().await;
                        }
                    }
                    SmsJob::Direct { pdu, length } => self.process(&pdu, length, None).await,
                    SmsJob::StatusDirect { pdu, length } => {
                        self.process(&pdu, length, None).await;
                        if self.sh.config.sms.mode == SmsMode::Direct
                            && let Err(e) = self.sh.at.ok(self.sh.cmd("AT+CNMA")).await
                        {
                            debug!(modem = %self.id(), error = %e, "AT+CNMA for +CDS failed");
                        }
                    }
                    SmsJob::Sweep => self.sweep(true).await,
                    SmsJob::MemoryFull { mem } => {
                        let mem = if mem.is_empty() {
                            self.sh.receive_mem()
                        } else {
                            mem
                        };
                        warn!(modem = %self.id(), %mem, "SMS memory full: draining");
                        self.sh.emit(ModemEvent::SmsMemoryFull { mem });
                        self.sweep(false).await;
                    }
                    SmsJob::Release { .. }
                    | SmsJob::Send { .. }
                    | SmsJob::Prepare { .. }
                    | SmsJob::SendPrepared { .. }
                    | SmsJob::Discard { .. }
                    | SmsJob::Reconcile { .. } => {}
                }
            }
        }
    }

    fn normalise_mem(&self, mem: &str) -> String {
        let m = mem.trim().trim_matches('"');
        if m.is_empty() || m.chars().all(|c| c.is_ascii_digit()) {
            self.sh.receive_mem()
        } else {
            m.to_ascii_uppercase()
        }
    }

    /// Makes `mem` the read/delete memory (`AT+CPMS="<mem>"`).
    pub(super) async fn select_mem(&mut self, mem: &str) -> Result<(), ModemError> {
        self.sync_generation();
        if self.current_mem.as_deref() == Some(mem) {
            return Ok(());
        }
        let (_, mark) = self
            .sh
            .at
            .ok_at(Command::new(
                format!("AT+CPMS=\"{mem}\""),
                ms(self.sh.t().list_ms),
            ))
            .await?;
        self.current_mem = Some(mem.to_owned());
        self.selected_boots = mark.boots;
        Ok(())
    }

    /// Runs `cmd` (a read, list or delete) on memory `mem` and returns its answer, checked.
    /// Selecting and acting are two commands: a modem that reboots between them has its
    /// power-on memory selected again, and a listing taken then would be filed under the
    /// wrong memory (its messages' deletes later going to a slot that is empty, answered
    /// `OK`: acknowledged messages stayed stored). So a boot URC read between the
    /// selection and the answer voids the answer, and the pair is run once more (a Huawei
    /// heartbeat `^BOOT` costs one re-selection).
    pub(super) async fn on_mem(&mut self, mem: &str, cmd: Command) -> Result<Response, ModemError> {
        self.on_mem_at(mem, cmd).await.map(|(r, _)| r)
    }

    /// [`SmsWorker::on_mem`] with the answer's [`Mark`].
    async fn on_mem_at(&mut self, mem: &str, cmd: Command) -> Result<(Response, Mark), ModemError> {
        for _ in 0..2 {
            self.select_mem(mem).await?;
            let (r, mark) = self.sh.at.run_at(cmd.clone()).await?;
            if mark.boots == self.selected_boots {
                return ModemError::check(r).map(|r| (r, mark));
            }
            warn!(modem = %self.id(), %mem, cmd = %cmd.pending.text, "the modem booted since its SMS memory was selected: answer discarded");
            self.current_mem = None;
            self.current_write = None;
        }
        Err(ModemError::Rebooted {
            command: format!("AT+CPMS=\"{mem}\""),
        })
    }

    /// Makes `mem` the write/send memory (`AT+CPMS="<mem1>","<mem>"`): init chose it, but a
    /// message prepared before a restart may sit in the memory an older run wrote to.
    pub(super) async fn select_write_mem(&mut self, mem: &str) -> Result<(), ModemError> {
        self.sync_generation();
        if self.current_write.as_deref() == Some(mem) {
            return Ok(());
        }
        let read = self
            .current_mem
            .clone()
            .unwrap_or_else(|| self.sh.receive_mem());
        let (_, mark) = self
            .sh
            .at
            .ok_at(Command::new(
                format!("AT+CPMS=\"{read}\",\"{mem}\""),
                ms(self.sh.t().list_ms),
            ))
            .await?;
        self.current_mem = Some(read);
        self.selected_boots = mark.boots;
        self.current_write = Some(mem.to_owned());
        self.write_boots = mark.boots;
        Ok(())
    }

    /// Runs `cmd` (`AT+CMGW` or `AT+CMSS`) on write memory `mem` and returns its answer,
    /// checked. A modem that rebooted between the selection and the command carried it out
    /// on its power-on memory: a write stored the part in a slot this driver would file
    /// under `mem` (a later `AT+CMSS` of that index sending `mem`'s message there, or none),
    /// a send went out with whatever that memory holds at the index. So:
    /// - the command is not sent once a boot URC was read since the selection
    ///   ([`Command::unless_booted_since`]): nothing happened, the selection is made again
    ///   and the command tried once more (a Huawei heartbeat `^BOOT` costs one re-selection);
    /// - an answer read after a boot URC (one that crossed the command on the wire) fails
    ///   with [`ModemError::Rebooted`] whatever it says, unless the boot was a heartbeat
    ///   ([`SmsWorker::only_heartbeats`]): the outcome is unknown and, unlike a read's
    ///   (`on_mem`), the command is not repeated here. The callers treat it so: a write's
    ///   orphan is referenced by nothing and never sent (the runtime prepares the message
    ///   again), a send is judged by reading its slot back after the re-init.
    pub(super) async fn on_write_mem(
        &mut self,
        mem: &str,
        cmd: Command,
    ) -> Result<Response, ModemError> {
        let text = cmd.pending.text.clone();
        for _ in 0..2 {
            self.select_write_mem(mem).await?;
            let guarded = cmd.clone().unless_booted_since(self.write_boots);
            match self.sh.at.run_at(guarded).await {
                Ok((r, mark)) if mark.boots == self.write_boots => return ModemError::check(r),
                Ok((r, mark)) => {
                    if self.only_heartbeats(mark.boots).await {
                        debug!(modem = %self.id(), %mem, cmd = %text, "a ^BOOT heartbeat crossed the command: its answer stands");
                        self.write_boots = mark.boots;
                        return ModemError::check(r);
                    }
                    warn!(modem = %self.id(), %mem, cmd = %text, "the modem booted since its SMS write memory was selected: the command may have acted on another memory");
                    self.current_mem = None;
                    self.current_write = None;
                    return Err(ModemError::Rebooted { command: text });
                }
                Err(ModemError::BootedBefore { .. }) => {
                    debug!(modem = %self.id(), %mem, cmd = %text, "the modem booted since its SMS write memory was selected: selecting it again");
                    self.current_mem = None;
                    self.current_write = None;
                }
                Err(e) => {
                    if matches!(e, ModemError::Rebooted { .. }) {
                        self.current_mem = None;
                        self.current_write = None;
                    }
                    return Err(e);
                }
            }
        }
        Err(ModemError::Rebooted { command: text })
    }

    /// True when the boot URCs read before the answer marked `boots` were heartbeats (some
    /// Huawei firmwares send `^BOOT` periodically) and the modem kept the memories selected
    /// since [`SmsWorker::write_boots`]: init's `AT+CMEE=1` is still in force (a reboot
    /// resets it, as the manager's own heartbeat check relies on), asked with no boot read
    /// since, and no re-init ran or runs (which would have set `AT+CMEE=1` again).
    async fn only_heartbeats(&mut self, boots: u64) -> bool {
        if !self.sh.profile.boot_is_heartbeat {
            return false;
        }
        let ask = self.sh.cmd("AT+CMEE?").unless_booted_since(boots);
        let intact = match self.sh.at.ok_at(ask).await {
            Ok((r, mark)) => mark.boots == boots && response::cmee(&r).is_ok_and(|v| v == 1),
            Err(_) => false,
        };
        let generation = self
            .sh
            .generation
            .load(std::sync::atomic::Ordering::Relaxed);
        intact && generation == self.generation && self.sh.state() == ModemState::Ready
    }

    /// Reads the message announced at `index` of `mem`, unless it is already handed out or
    /// being deleted. `announced` is the URC number of a `+CMTI`: a listing answered after it
    /// already handed out what the slot held then (see `listed`).
    async fn read_stored(&mut self, mem: &str, index: u32, announced: Option<u64>) {
        let slot = StorageSlot {
            mem: self.normalise_mem(mem),
            index,
        };
        if let (Some(urc), Some(listing)) = (announced, self.listed.get(&slot))
            && urc < *listing
        {
            debug!(modem = %self.id(), index, "announcement older than the listing that read the slot: skipped");
            return;
        }
        if self.in_flight.contains(&slot) || self.pending_deletes.contains(&slot) {
            return;
        }
        let read = self.sh.cmd(format!("AT+CMGR={index}"));
        match self.on_mem(&slot.mem, read).await {
            Ok(r) => match response::cmgr(&r) {
                // Stored outgoing messages (stat 2/3) are never incoming ones.
                Ok(Some(p)) if p.stat > 1 => {
                    debug!(modem = %self.id(), index, stat = p.stat, "announced slot holds an outgoing message")
                }
                Ok(Some(p)) => self.process(&p.pdu, p.length, Some(slot)).await,
                Ok(None) => debug!(modem = %self.id(), index, "slot empty"),
                Err(e) => warn!(modem = %self.id(), error = %e, "bad +CMGR reply"),
            },
            Err(e) => {
                warn!(modem = %self.id(), index, error = %e, "AT+CMGR failed (the next sweep retries)")
            }
        }
    }

    /// Lists the receive memory (`AT+CMGL=4`) and hands out what is not in flight; when
    /// outgoing messages have a memory of their own, lists that too for the outgoing
    /// bookkeeping. A `+CMS ERROR: 322` answer (an unsolicited memory-full report that ended
    /// the command) is reported and, if `retry_on_full`, the sweep is repeated once.
    pub(super) async fn sweep(&mut self, retry_on_full: bool) {
        let mem = self.sh.receive_mem();
        let write = self.sh.write_mem();
        let Some((entries, mut complete)) = self.list(&mem, retry_on_full).await else {
            return;
        };
        let mut outgoing = self.take_entries(&mem, entries).await;
        if write != mem {
            match self.list(&write, false).await {
                Some((entries, c)) => {
                    complete &= c;
                    outgoing.extend(self.take_entries(&write, entries).await);
                }
                None => complete = false,
            }
        }
        // Judging orphans needs the whole list: a skipped malformed entry could be one.
        if complete {
            self.outbound_swept(outgoing).await;
        }
        self.sweep_reports().await;
    }

    /// Reads the status-report memory, when the modem has one: reports stored while the
    /// gateway was down (or announced with the wrong memory, as the EC25 does) come out as
    /// events, and each is deleted once read.
    async fn sweep_reports(&mut self) {
        let Some(mem) = self.sh.reports_mem() else {
            return;
        };
        if let Some((entries, _)) = self.list(&mem, false).await {
            // Only reports live there; anything else is handed out like any received entry.
            let stray = self.take_entries(&mem, entries).await;
            if !stray.is_empty() {
                debug!(modem = %self.id(), %mem, n = stray.len(), "outgoing messages in the report memory left alone");
            }
        }
    }

    /// `AT+CMGL=4` on `mem`: the entries, and whether every entry parsed. Every listed slot
    /// is remembered in `listed`.
    async fn list(&mut self, mem: &str, retry_on_full: bool) -> Option<(Vec<StoredPdu>, bool)> {
        let listing = Command::new("AT+CMGL=4", ms(self.sh.t().list_ms));
        let (r, mark) = match self.on_mem_at(mem, listing).await {
            Ok(answer) => answer,
            Err(e) if e.code() == Some(322) && retry_on_full => {
                warn!(modem = %self.id(), %mem, "SMS memory full: draining");
                self.sh.emit(ModemEvent::SmsMemoryFull {
                    mem: mem.to_owned(),
                });
                return Box::pin(self.list(mem, false)).await;
            }
            Err(e) => {
                warn!(modem = %self.id(), %mem, error = %e, "AT+CMGL=4 failed");
                return None;
            }
        };
        let (entries, bad) = response::cmgl(&r);
        self.listed.retain(|slot, _| slot.mem != mem);
        for index in entries.iter().filter_map(|e| e.index) {
            let slot = StorageSlot {
                mem: mem.to_owned(),
                index,
            };
            self.listed.insert(slot, mark.urcs);
        }
        let complete = bad.is_empty();
        for b in bad {
            warn!(modem = %self.id(), error = %b, "bad +CMGL entry");
        }
        Some((entries, complete))
    }

    /// Hands out the received entries of a listing of `mem`; returns the stored outgoing
    /// ones (slot, stat), which never go to the inbound path.
    async fn take_entries(&mut self, mem: &str, entries: Vec<StoredPdu>) -> Vec<(StorageSlot, u8)> {
        let mut outgoing = Vec::new();
        for e in entries {
            let Some(index) = e.index else { continue };
            let slot = StorageSlot {
                mem: mem.to_owned(),
                index,
            };
            if self.in_flight.contains(&slot) || self.pending_deletes.contains(&slot) {
                continue;
            }
            if e.stat > 1 {
                outgoing.push((slot, e.stat));
                continue;
            }
            self.process(&e.pdu, e.length, Some(slot)).await;
        }
        outgoing
    }

    /// Decodes one received PDU and routes it.
    async fn process(&mut self, hex: &str, length: usize, slot: Option<StorageSlot>) {
        let token = Token {
            slot: slot.clone(),
            pdu: hex.to_ascii_uppercase(),
        };
        let pdu = match Pdu::from_hex_with_tpdu_len(hex, length) {
            Ok(p) => p,
            Err(e) => {
                warn!(modem = %self.id(), error = %e, "undecodable PDU: handing it out raw");
                if let Some(s) = &slot {
                    self.in_flight.insert(s.clone());
                }
                self.deliver_undecodable(token, e.to_string());
                return;
            }
        };
        let smsc = pdu.smsc.as_ref().map(ToString::to_string);
        match pdu.tpdu {
            Tpdu::Deliver(d) => {
                let multipart = d.user_data.concat().is_some_and(|c| c.total > 1);
                let mut token = token;
                if token.slot.is_none() && multipart && self.sh.config.sms.mode == SmsMode::Direct {
                    token.slot = self.keep_direct_part(hex, length).await;
                    // The modem holds back the next +CMT until this one is acknowledged.
                    if let Err(e) = self.sh.at.ok(self.sh.cmd("AT+CNMA")).await {
                        warn!(modem = %self.id(), error = %e, "AT+CNMA failed");
                    }
                }
                self.received(d, token, smsc).await;
            }
            Tpdu::StatusReport(r) => {
                if let Some(s) = self.status_report(&r, slot) {
                    self.pending_deletes.push(s);
                    self.flush_deletes().await;
                }
            }
            Tpdu::Submit(_) => debug!(modem = %self.id(), "stored SUBMIT ignored"),
        }
    }

    /// A part of a multipart message delivered directly (`+CMT`) must be acknowledged before
    /// the modem passes on the next part, long before the whole message can be stored by the
    /// caller. So the part is first written to modem storage (`AT+CMGW=<len>,0`, "received
    /// unread", in the write memory) and only then acknowledged: a crash before the message
    /// is complete leaves its parts on the modem, where the next sweep finds them, and a
    /// part the network sends again because it was never acknowledged is a duplicate the
    /// reassembler drops. Returns the slot, or `None` when the modem refuses the write (the
    /// part is then held in memory only, as before).
    async fn keep_direct_part(&mut self, hex: &str, length: usize) -> Option<StorageSlot> {
        let mem = self.sh.write_mem();
        if let Err(e) = self.select_write_mem(&mem).await {
            warn!(modem = %self.id(), %mem, error = %e, "cannot select memory for a direct part");
            return None;
        }
        let cmd = Command::new(format!("AT+CMGW={length},0"), ms(self.sh.t().long_ms))
            .with_body(hex.to_ascii_uppercase(), ms(self.sh.t().prompt_ms));
        match self
            .sh
            .at
            .ok(cmd)
            .await
            .and_then(|r| response::cmgw(&r).map_err(|e| ModemError::Response(e.to_string())))
        {
            Ok(index) => {
                debug!(modem = %self.id(), %mem, index, "direct part kept in storage");
                Some(StorageSlot { mem, index })
            }
            Err(e) => {
                warn!(modem = %self.id(), error = %e, "direct part not stored: a crash before the message is complete loses it");
                None
            }
        }
    }

    async fn received(&mut self, d: Deliver, token: Token, smsc: Option<String>) {
        let slot = token.slot.clone();
        if let Some(s) = &slot {
            self.in_flight.insert(s.clone());
        }
        let released = slot.as_ref().is_some_and(|s| self.released.contains(s));
        let now = Utc::now();
        let pushed = if released {
            self.redelivery.push(&d, token, now)
        } else {
            self.reasm.push(&d, token, now)
        };
        match pushed {
            Pushed::Complete(m) => self.deliver(m, smsc, None),
            Pushed::Pending { key, received } => {
                debug!(modem = %self.id(), sender = %key.sender, reference = key.reference, received, total = key.total, "part buffered");
            }
            Pushed::Duplicate { token } => {
                debug!(modem = %self.id(), "duplicate part of a delivered message: deleting");
                if let Some(s) = token.slot {
                    self.pending_deletes.push(s);
                    self.flush_deletes().await;
                }
            }
        }
    }

    fn deliver(&mut self, m: Message<Token>, smsc: Option<String>, error: Option<String>) {
        let mut slots: Vec<StorageSlot> = Vec::new();
        let mut pdus: Vec<String> = Vec::new();
        for t in &m.tokens {
            if let Some(s) = &t.slot
                && !slots.contains(s)
            {
                slots.push(s.clone());
            }
            if !pdus.contains(&t.pdu) {
                pdus.push(t.pdu.clone());
            }
        }
        let parts = m.key.as_ref().map_or(1, |k| k.total);
        let cnma = self.sh.config.sms.mode == SmsMode::Direct && slots.is_empty() && parts <= 1;
        let (text, data) = match &m.body {
            Body::Text(t) => (t.clone(), None),
            Body::Data(b) => (crate::modem::pdu::to_hex(b), Some(b.clone())),
        };
        let message = SmsMessage {
            modem: self.sh.config.id.clone(),
            sender: m.sender.to_string(),
            text,
            data,
            timestamp: m.timestamp.to_datetime(),
            smsc,
            class: m.class,
            parts,
            complete: m.missing.is_empty() && error.is_none(),
            missing_parts: m.missing.clone(),
            error,
            fingerprint: fingerprint(&pdus),
            pdus,
            storage: slots.clone(),
            received_at: Utc::now(),
        };
        self.hand_out(message, slots, cnma);
    }

    fn deliver_undecodable(&mut self, token: Token, error: String) {
        let slots: Vec<StorageSlot> = token.slot.iter().cloned().collect();
        let message = SmsMessage {
            modem: self.sh.config.id.clone(),
            sender: String::new(),
            text: String::new(),
            data: None,
            timestamp: None,
            smsc: None,
            class: None,
            parts: 1,
            missing_parts: Vec::new(),
            complete: false,
            error: Some(error),
            fingerprint: fingerprint(std::slice::from_ref(&token.pdu)),
            pdus: vec![token.pdu],
            storage: slots.clone(),
            received_at: Utc::now(),
        };
        let cnma = self.sh.config.sms.mode == SmsMode::Direct && slots.is_empty();
        self.hand_out(message, slots, cnma);
    }

    fn hand_out(&mut self, message: SmsMessage, slots: Vec<StorageSlot>, cnma: bool) {
        for s in &slots {
            self.released.remove(s);
            self.in_flight.insert(s.clone());
        }
        debug!(modem = %self.id(), sender = %message.sender, parts = message.parts, "SMS handed out");
        let ack = SmsAck {
            jobs: self.jobs_tx.clone(),
            slots,
            cnma,
            done: false,
        };
        if self.inbound.send(InboundSms { message, ack }).is_err() {
            warn!(modem = %self.id(), "nobody receives SMS: the message stays on the modem");
        }
    }

    pub(super) async fn flush_deletes(&mut self) {
        let mut keep = Vec::new();
        let pending = std::mem::take(&mut self.pending_deletes);
        for slot in pending {
            let delete = self.sh.cmd(format!("AT+CMGD={}", slot.index));
            match self.on_mem(&slot.mem, delete).await {
                Ok(_) => {
                    self.in_flight.remove(&slot);
                    crate::crashpoint::reach(crate::crashpoint::MODEM_DELETED);
                }
                // 321: invalid index, i.e. already gone.
                Err(e) if e.code() == Some(321) => {
                    self.in_flight.remove(&slot);
                }
                Err(e) => {
                    warn!(modem = %self.id(), index = slot.index, error = %e, "AT+CMGD failed: will retry");
                    keep.push(slot);
                }
            }
        }
        self.pending_deletes.extend(keep);
    }

    /// Publishes a report. A stored one (`slot`) goes to the consumer of
    /// `take_status_reports` with an acknowledgement, and is deleted only once that consumer
    /// applied it (persist, then acknowledge, as for messages); the slot is returned for
    /// deletion now when nobody consumes reports.
    fn status_report(
        &mut self,
        r: &StatusReport,
        slot: Option<StorageSlot>,
    ) -> Option<StorageSlot> {
        let rec = self.sent.iter().rev().find(|s| s.mr == r.message_reference);
        let ev = StatusReportEvent {
            key: rec.and_then(|s| s.key.clone()),
            part: rec.map(|s| s.part),
            parts: rec.map(|s| s.parts),
            message_reference: r.message_reference,
            recipient: r.recipient.to_string(),
            status: r.status.0,
            delivery: match r.status.class() {
                StatusClass::Delivered => DeliveryState::Delivered,
                StatusClass::TemporaryRetrying => DeliveryState::Pending,
                StatusClass::PermanentError | StatusClass::TemporaryStopped => {
                    DeliveryState::Failed
                }
            },
            discharge_time: r.discharge_time.to_datetime(),
        };
        info!(modem = %self.id(), mr = r.message_reference, status = r.status.0, key = ?ev.key, "status report");
        self.sh.emit(ModemEvent::StatusReport(ev.clone()));
        let consumed = self.sh.reports.lock().is_none();
        let slots: Vec<StorageSlot> = slot.iter().filter(|_| consumed).cloned().collect();
        for s in &slots {
            self.in_flight.insert(s.clone());
        }
        let ack = SmsAck {
            jobs: self.jobs_tx.clone(),
            slots,
            cnma: false,
            done: false,
        };
        if let Err(e) = self
            .sh
            .reports_tx
            .try_send(InboundReport { report: ev, ack })
        {
            warn!(modem = %self.id(), "status report stream full or closed: report only broadcast");
            // The unsent acknowledgement is dropped: the slot is released for the next sweep.
            drop(e);
        }
        if consumed { None } else { slot }
    }

    /// Validates and encodes a message into its parts.
    pub(super) fn encode(&mut self, sms: &OutgoingSms) -> Result<Vec<EncodedPdu>, ModemError> {
        let dest = Address::parse(&sms.to)
            .map_err(|e| ModemError::InvalidArgument(format!("recipient: {e}")))?;
        if sms.text.is_empty() {
            return Err(ModemError::InvalidArgument("empty SMS text".to_owned()));
        }
        self.next_ref = self.next_ref.wrapping_add(1);
        let options = SubmitOptions {
            status_report: sms
                .status_report
                .unwrap_or(self.sh.config.sms.status_reports),
            reference: ConcatRef::Eight(self.next_ref),
            ..SubmitOptions::default()
        };
        encode_submit(&dest, &sms.text, &options).map_err(|e| ModemError::Encoding(e.to_string()))
    }

    /// Remembers a sent part for status-report matching.
    pub(super) fn remember_sent(&mut self, mr: u8, key: Option<String>, part: usize, parts: usize) {
        if self.sent.len() >= SENT_MEMORY {
            self.sent.pop_front();
        }
        self.sent.push_back(SentRecord {
            mr,
            key,
            part,
            parts,
        });
    }

    /// Sends one part with `AT+CMGS`, retrying after a reboot, timeout or lost port (the
    /// part may then go out twice: only the storage path can tell).
    pub(super) async fn send_direct(
        &mut self,
        pdu: &str,
        tpdu_len: usize,
        part_no: usize,
    ) -> Result<u8, ModemError> {
        let mut retry = ReinitRetry::new(&self.sh);
        loop {
            retry.start(&self.sh);
            match self.try_send_direct(pdu, tpdu_len).await {
                Err(e) if outcome_unknown(&e) => {
                    let what = "SMS part interrupted: retrying after re-init";
                    retry.wait(&self.sh, e, part_no, what).await?;
                }
                other => return other,
            }
        }
    }

    async fn try_send_direct(&mut self, pdu: &str, tpdu_len: usize) -> Result<u8, ModemError> {
        self.sh
            .wait_ready(ms(self.sh.config.sms.ready_wait_ms))
            .await?;
        let cmd = Command::new(format!("AT+CMGS={tpdu_len}"), ms(self.sh.t().long_ms))
            .with_body(pdu.to_owned(), ms(self.sh.t().prompt_ms));
        let r = self.sh.at.ok(cmd).await?;
        response::cmgs(&r).map_err(|e| ModemError::Response(e.to_string()))
    }

    /// `send_sms`: every part with `AT+CMGS`.
    async fn send(&mut self, sms: OutgoingSms) -> Result<SentSms, ModemError> {
        let pdus = self.encode(&sms)?;
        let total = pdus.len();
        let mut refs = Vec::with_capacity(total);
        for (i, p) in pdus.iter().enumerate() {
            match self.send_direct(&p.hex(), p.tpdu_len, i + 1).await {
                Ok(mr) => {
                    refs.push(mr);
                    self.remember_sent(mr, sms.key.clone(), i + 1, total);
                }
                Err(e) if refs.is_empty() => return Err(e),
                Err(e) => {
                    return Err(ModemError::PartialSend {
                        sent: refs.len(),
                        total,
                        refs,
                        cause: Box::new(e),
                    });
                }
            }
        }
        info!(modem = %self.id(), to = %sms.to, parts = total, refs = ?refs, "SMS sent");
        Ok(SentSms {
            key: sms.key,
            outcomes: refs.iter().map(|&mr| PartOutcome::Sent { mr }).collect(),
            message_references: refs,
            parts: total,
        })
    }
}

/// FNV-1a over the sorted PDUs: stable across runs and Rust versions.
fn fingerprint(pdus: &[String]) -> String {
    let mut sorted: Vec<&String> = pdus.iter().collect();
    sorted.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in sorted {
        for b in p.bytes().chain(std::iter::once(b'|')) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// An interruption after which nobody knows whether the modem acted on the command.
pub(super) fn outcome_unknown(e: &ModemError) -> bool {
    matches!(
        e,
        ModemError::Timeout { .. } | ModemError::Rebooted { .. } | ModemError::PortGone { .. }
    )
}

/// The attempts at sending one part (`sms.send_attempts`) when interruptions leave the
/// outcome unknown: before each, [`ReinitRetry::start`]; after such an interruption,
/// [`ReinitRetry::wait`].
pub(super) struct ReinitRetry {
    attempts: u32,
    tried: u32,
    generation: u64,
}

impl ReinitRetry {
    pub(super) fn new(sh: &Shared) -> Self {
        Self {
            attempts: sh.config.sms.send_attempts.max(1),
            tried: 0,
            generation: 0,
        }
    }

    /// Notes an attempt and the modem's init generation it runs in.
    pub(super) fn start(&mut self, sh: &Shared) {
        self.tried += 1;
        self.generation = sh.generation.load(std::sync::atomic::Ordering::Relaxed);
    }

    /// After the interruption `e`: gives `e` back when the attempts are spent; otherwise
    /// logs `what` and — a rebooted modem is back in text mode with no settings — waits
    /// until the manager has re-initialised the modem.
    pub(super) async fn wait(
        &self,
        sh: &Shared,
        e: ModemError,
        part_no: usize,
        what: &str,
    ) -> Result<(), ModemError> {
        if self.tried >= self.attempts {
            return Err(e);
        }
        warn!(modem = %sh.config.id, part = part_no, attempt = self.tried, error = %e, "{what}");
        sh.wait_reinit(self.generation, ms(sh.config.sms.ready_wait_ms))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_order_independent_and_stable() {
        let a = fingerprint(&["AA".into(), "BB".into()]);
        assert_eq!(a, fingerprint(&["BB".into(), "AA".into()]));
        assert_ne!(a, fingerprint(&["AA".into()]));
        assert_eq!(fingerprint(&[]), "cbf29ce484222325");
    }
}
