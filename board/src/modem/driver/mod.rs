//! The async modem driver: [`Modem::spawn`] starts the tasks of one modem and returns a
//! cheap, clone-able [`ModemHandle`].
//!
//! Tasks per modem (all stop with the cancellation token):
//! - the **port task** (`port`) owns the serial port and the AT codec, runs one command at
//!   a time with its timeout, and reports URCs;
//! - the **manager** (`manager`) opens and reopens the port, runs the init sequence, keeps
//!   the [`ModemStatus`] current, dispatches URCs, and climbs the recovery ladder;
//! - the **SMS worker** (`sms`) reads, reassembles, hands out, deletes and sends messages;
//! - the **call poller** polls `AT+CLCC` while calls exist (the truth behind call URCs).
//!
//! Handle operations (answer, dial, DTMF, USSD) run in the caller's task and go through the
//! port task's queue, so a slow SMS send never blocks call control (call commands have
//! priority) and one modem never blocks another.

mod manager;
mod outbound;
mod port;
mod sms;
mod storage;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{Notify, broadcast, mpsc, oneshot, watch};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

pub use sms::{InboundReport, InboundSms, OutgoingSms, SentSms, SmsAck, SmsMessage};
pub use storage::{
    DiscardReport, OutboundReport, PartOutcome, PreparedPart, PreparedSms, StorageSlot,
    StoredOutbound,
};

use self::port::{AtClient, Command, Mark};
use self::sms::SmsJob;
use super::at::codec::{FinalResult, Response};
use super::at::types::{CallStat, Direction, is_dtmf_digit};
use super::at::urc::Urc;
use super::calls::{CallAction, CallTracker};
use super::config::{AudioTransport, ModemConfig, Timeouts, ms};
use super::error::ModemError;
use super::events::{
    CallEndCause, CallEndReason, CallId, CallSummary, ModemEvent, ModemState, ModemStatus,
    UssdReply,
};
use super::power::PowerControl;
use super::profile::{AudioKind, HangupStyle, UssdEncoding, VendorProfile};
use crate::modem::pdu::ussd::{gsm7_pack_hex, ucs2_hex_encode};

/// Capacity of the event broadcast (slow subscribers lag and are told so by tokio).
const EVENT_CAPACITY: usize = 1024;

/// Status reports kept for the consumer of `take_status_reports` (beyond that, newer ones
/// are dropped with a warning; the event broadcast still carries them).
const REPORT_CAPACITY: usize = 4096;

/// State shared by a modem's tasks and handles.
pub(crate) struct Shared {
    pub(crate) config: ModemConfig,
    pub(crate) profile: VendorProfile,
    pub(crate) at: AtClient,
    pub(crate) status: watch::Sender<ModemStatus>,
    pub(crate) events: broadcast::Sender<ModemEvent>,
    pub(crate) urcs: broadcast::Sender<Urc>,
    pub(crate) calls: Mutex<CallTracker>,
    pub(crate) poll_clcc: Notify,
    /// Calls whose audio was routed early (Huawei: right after `ATD`/`ATA`).
    pub(crate) audio_routed: Mutex<HashSet<CallId>>,
    pub(crate) ussd_waiter: Mutex<Option<oneshot::Sender<Urc>>>,
    pub(crate) ussd_lock: tokio::sync::Mutex<()>,
    pub(crate) sms_jobs: mpsc::UnboundedSender<SmsJob>,
    pub(crate) inbound: Mutex<Option<mpsc::UnboundedReceiver<InboundSms>>>,
    /// Status reports, kept from the start until one consumer takes them: reports read at
    /// start-up (stored while the gateway was down) must not depend on who subscribed to
    /// the event broadcast in time.
    pub(crate) reports_tx: mpsc::Sender<InboundReport>,
    pub(crate) reports: Mutex<Option<mpsc::Receiver<InboundReport>>>,
    /// Incremented after every successful init (the SMS worker re-selects its memory).
    pub(crate) generation: AtomicU64,
    /// The SMS memories init chose (`AT+CPMS=?`, then three-parameter `AT+CPMS`).
    pub(crate) sms_mems: Mutex<storage::SmsMemories>,
    /// URC notices the manager has fully processed (counted like the port task's).
    pub(crate) urcs_done: watch::Sender<u64>,
}

impl Shared {
    pub(crate) fn t(&self) -> &Timeouts {
        &self.config.timeouts
    }

    pub(crate) fn emit(&self, ev: ModemEvent) {
        // No subscriber is fine: events are also reflected in the status.
        let _ = self.events.send(ev);
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut ModemStatus)) {
        self.status.send_modify(|s| {
            f(s);
            s.updated_at = chrono::Utc::now();
        });
    }

    pub(crate) fn state(&self) -> ModemState {
        self.status.borrow().state.clone()
    }

    pub(crate) fn set_state(&self, state: ModemState) {
        let changed = self.status.borrow().state != state;
        if changed {
            self.update(|s| s.state = state.clone());
            self.emit(ModemEvent::State { state });
        }
    }

    pub(crate) fn set_error(&self, e: impl ToString) {
        let e = e.to_string();
        self.update(|s| s.last_error = Some(e));
    }

    pub(crate) fn ensure_ready(&self) -> Result<(), ModemError> {
        match self.state() {
            ModemState::Ready => Ok(()),
            ModemState::Stopped => Err(ModemError::Stopped),
            other => Err(ModemError::NotReady {
                state: other.name().to_owned(),
            }),
        }
    }

    /// Waits until the modem is ready (or stopped), at most `limit`.
    pub(crate) async fn wait_ready(&self, limit: Duration) -> Result<(), ModemError> {
        let mut rx = self.status.subscribe();
        let res = timeout(
            limit,
            rx.wait_for(|s| matches!(s.state, ModemState::Ready | ModemState::Stopped)),
        )
        .await;
        match res {
            Ok(Ok(s)) if s.state == ModemState::Ready => Ok(()),
            Ok(_) => Err(ModemError::Stopped),
            Err(_) => Err(ModemError::NotReady {
                state: self.state().name().to_owned(),
            }),
        }
    }

    /// Waits until the modem has been (re-)initialised after generation `after` and is ready:
    /// after a reboot or a lost port, "ready" as seen before the manager noticed is stale.
    pub(crate) async fn wait_reinit(&self, after: u64, limit: Duration) -> Result<(), ModemError> {
        let mut rx = self.status.subscribe();
        let res = timeout(
            limit,
            rx.wait_for(|s| {
                matches!(s.state, ModemState::Stopped)
                    || (s.state == ModemState::Ready
                        && self.generation.load(Ordering::Relaxed) > after)
            }),
        )
        .await;
        match res {
            Ok(Ok(s)) if s.state == ModemState::Ready => Ok(()),
            Ok(_) => Err(ModemError::Stopped),
            Err(_) => Err(ModemError::NotReady {
                state: self.state().name().to_owned(),
            }),
        }
    }

    /// Waits until the manager has processed every URC read before the response at `mark`,
    /// so call state is changed in the order the modem reported it: a command's result is
    /// never overtaken by an older URC (a `^CONN` of the call just put on hold), nor a `CLCC`
    /// snapshot by the end report that preceded it. Bounded by the default timeout (the
    /// manager may be busy with a command of its own); afterwards the result applies anyway.
    pub(crate) async fn caught_up(&self, mark: Mark) {
        let mut rx = self.urcs_done.subscribe();
        let limit = ms(self.t().default_ms);
        if timeout(limit, rx.wait_for(|done| *done >= mark.urcs))
            .await
            .is_err()
        {
            debug!(modem = %self.config.id, "URC processing lags behind a response");
        }
    }

    /// The memory received messages are stored in and read from.
    pub(crate) fn receive_mem(&self) -> String {
        self.sms_mems.lock().receive.clone()
    }

    /// The status-report memory, when the modem has one.
    pub(crate) fn reports_mem(&self) -> Option<String> {
        self.sms_mems.lock().reports.clone()
    }

    /// The memory outgoing messages are written to and sent from.
    pub(crate) fn write_mem(&self) -> String {
        self.sms_mems.lock().write.clone()
    }

    pub(crate) fn cmd(&self, text: impl AsRef<str>) -> Command {
        Command::new(text, ms(self.t().default_ms))
    }

    /// Publishes the tracker's actions: events, CLCC polls, per-call audio routing.
    pub(crate) async fn apply_call_actions(&self, actions: Vec<CallAction>) {
        let mut poll = false;
        for a in actions {
            match a {
                CallAction::Emit(ev) => self.emit(ev),
                CallAction::PollClcc => poll = true,
                CallAction::Connected(id) => {
                    let early = self.audio_routed.lock().contains(&id);
                    if early || self.route_audio(id).await {
                        self.emit(ModemEvent::AudioReady { call: id });
                    }
                }
                CallAction::Ended(id) => {
                    self.audio_routed.lock().remove(&id);
                    self.disable_audio().await;
                }
            }
        }
        let calls = self.calls.lock().summaries();
        self.update(|s| s.calls = calls);
        if poll {
            self.poll_clcc.notify_one();
        }
    }

    /// Routes a call's audio to the voice port (the profile's commands). False when the modem
    /// has no voice path or refused.
    pub(crate) async fn route_audio(&self, call: CallId) -> bool {
        if self.profile.audio.kind == AudioKind::None {
            return false;
        }
        for c in &self.profile.audio.enable {
            if let Err(e) = self.at.ok(self.cmd(c).high()).await {
                warn!(modem = %self.config.id, cmd = %c, error = %e, "audio enable failed");
                self.set_error(&e);
                return false;
            }
        }
        self.audio_routed.lock().insert(call);
        true
    }

    async fn disable_audio(&self) {
        for c in &self.profile.audio.disable {
            if let Err(e) = self.at.ok(self.cmd(c).high()).await {
                warn!(modem = %self.config.id, cmd = %c, error = %e, "audio disable failed");
            }
        }
    }
}

/// Entry point of the driver.
#[derive(Debug)]
pub struct Modem;

impl Modem {
    /// Starts the tasks of one modem with power control from `config.power`.
    pub fn spawn(
        config: ModemConfig,
        profile: VendorProfile,
        cancel: CancellationToken,
    ) -> ModemHandle {
        let power = PowerControl::from_config(&config.power);
        Self::spawn_with_power(config, profile, cancel, power)
    }

    /// Starts the tasks of one modem with the given power control (custom GPIO access).
    pub fn spawn_with_power(
        config: ModemConfig,
        profile: VendorProfile,
        cancel: CancellationToken,
        power: PowerControl,
    ) -> ModemHandle {
        let (notice_tx, notice_rx) = mpsc::unbounded_channel();
        let port_name = config.port.display().to_string();
        let boot_grace = profile
            .boot_is_heartbeat
            .then(|| ms(config.timeouts.default_ms));
        let (port_task, at, requests) = port::port_task(port_name.clone(), notice_tx, boot_grace);
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let (sms_tx, sms_rx) = mpsc::unbounded_channel();
        let (inbound_tx, inbound_rx) = mpsc::unbounded_channel();
        let profile_mem = profile.sms_memory.clone();
        let (reports_tx, reports_rx) = mpsc::channel(REPORT_CAPACITY);
        let (status, _) = watch::channel(ModemStatus::new(&config.id, &profile.id, &port_name));
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let (urcs, _) = broadcast::channel(EVENT_CAPACITY);
        let grace = ms(config.call_poll_interval_ms.saturating_mul(3).max(3_000));
        let shared = Arc::new(Shared {
            config,
            profile,
            at,
            status,
            events,
            urcs,
            calls: Mutex::new(CallTracker::new(grace)),
            poll_clcc: Notify::new(),
            audio_routed: Mutex::new(HashSet::new()),
            ussd_waiter: Mutex::new(None),
            ussd_lock: tokio::sync::Mutex::new(()),
            sms_jobs: sms_tx,
            inbound: Mutex::new(Some(inbound_rx)),
            reports_tx,
            reports: Mutex::new(Some(reports_rx)),
            generation: AtomicU64::new(0),
            sms_mems: Mutex::new(storage::SmsMemories::single(&profile_mem)),
            urcs_done: watch::channel(0).0,
        });
        tokio::spawn(port_task.run(requests, ctl_rx, cancel.clone()));
        tokio::spawn(
            sms::SmsWorker::new(Arc::clone(&shared), sms_rx, inbound_tx, cancel.clone()).run(),
        );
        tokio::spawn(call_poller(Arc::clone(&shared), cancel.clone()));
        tokio::spawn(
            manager::Manager::new(Arc::clone(&shared), ctl_tx, notice_rx, power, cancel).run(),
        );
        ModemHandle { shared }
    }
}

/// Polls `AT+CLCC` when asked (ambiguous URCs) and periodically while calls exist.
async fn call_poller(sh: Arc<Shared>, cancel: CancellationToken) {
    let every = ms(sh.config.call_poll_interval_ms.max(100));
    loop {
        let has_calls = sh.calls.lock().has_calls();
        tokio::select! {
            () = cancel.cancelled() => return,
            () = sh.poll_clcc.notified() => {}
            () = tokio::time::sleep(every), if has_calls => {}
        }
        if sh.ensure_ready().is_err() {
            continue;
        }
        let epoch = sh.calls.lock().epoch();
        match sh.at.ok_at(sh.cmd("AT+CLCC").high()).await {
            Ok((r, mark)) => {
                let (calls, bad) = super::at::response::clcc(&r);
                for b in bad {
                    warn!(modem = %sh.config.id, error = %b, "bad +CLCC line");
                }
                sh.caught_up(mark).await;
                let actions = sh.calls.lock().on_clcc(&calls, epoch, mark.at);
                sh.apply_call_actions(actions).await;
            }
            Err(e) => warn!(modem = %sh.config.id, error = %e, "AT+CLCC failed"),
        }
    }
}

/// A handle on one modem. Cheap to clone; every clone talks to the same tasks.
#[derive(Clone)]
pub struct ModemHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ModemHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModemHandle")
            .field("id", &self.shared.config.id)
            .finish()
    }
}

fn validate_number(number: &str) -> Result<(), ModemError> {
    let digits = number.strip_prefix('+').unwrap_or(number);
    if digits.is_empty()
        || digits.len() > 40
        || !digits
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '*' | '#'))
    {
        return Err(ModemError::InvalidArgument(format!(
            "`{number}` is not a dialable number (digits, `*`, `#`, optional leading `+`)"
        )));
    }
    Ok(())
}

impl ModemHandle {
    /// The modem id.
    pub fn id(&self) -> &str {
        &self.shared.config.id
    }

    /// The vendor profile in use.
    pub fn profile(&self) -> &VendorProfile {
        &self.shared.profile
    }

    /// The configuration in use.
    pub fn config(&self) -> &ModemConfig {
        &self.shared.config
    }

    /// The voice transport the audio layer opens for this modem's calls.
    pub fn audio_transport(&self) -> AudioTransport {
        self.shared.config.audio_transport(&self.shared.profile)
    }

    /// A snapshot of the status.
    pub fn status(&self) -> ModemStatus {
        self.shared.status.borrow().clone()
    }

    /// A watch on the status (changes whenever any field changes).
    pub fn watch_status(&self) -> watch::Receiver<ModemStatus> {
        self.shared.status.subscribe()
    }

    /// Subscribes to events (calls, DTMF, status reports, state and recovery steps).
    pub fn subscribe(&self) -> broadcast::Receiver<ModemEvent> {
        self.shared.events.subscribe()
    }

    /// Subscribes to every URC, typed (diagnostics).
    pub fn subscribe_urcs(&self) -> broadcast::Receiver<Urc> {
        self.shared.urcs.subscribe()
    }

    /// Takes the receiver of incoming SMS. Only the first call gets it; messages queue until
    /// it is taken.
    pub fn take_sms_receiver(&self) -> Option<mpsc::UnboundedReceiver<InboundSms>> {
        self.shared.inbound.lock().take()
    }

    /// Takes the status-report stream (once): every report this driver reads, from the
    /// start — also those read before anyone subscribed to events. Stored reports are
    /// deleted only after [`InboundReport::ack`]. `None` when taken.
    pub fn take_status_reports(&self) -> Option<mpsc::Receiver<InboundReport>> {
        self.shared.reports.lock().take()
    }

    /// Waits until the modem is ready, at most `limit`.
    pub async fn wait_ready(&self, limit: Duration) -> Result<(), ModemError> {
        self.shared.wait_ready(limit).await
    }

    /// Calls in progress.
    pub fn calls(&self) -> Vec<CallSummary> {
        self.shared.calls.lock().summaries()
    }

    /// Answers a ringing call.
    pub async fn answer(&self, call: CallId) -> Result<(), ModemError> {
        let sh = &self.shared;
        sh.ensure_ready()?;
        match sh.calls.lock().state_of(call) {
            Some(CallStat::Incoming | CallStat::Waiting) => {}
            Some(other) => {
                return Err(ModemError::InvalidArgument(format!(
                    "{call} is {other:?}, not ringing"
                )));
            }
            None => return Err(ModemError::NoSuchCall(call)),
        }
        let (resp, mark) = sh
            .at
            .run_at(Command::new("ATA", ms(sh.t().long_ms)).high())
            .await?;
        if matches!(resp.result, FinalResult::NoCarrier) {
            // The caller hung up in the instant of the answer: a missed call, as when it
            // ends while ringing. Only this final result may say so (a modem without state
            // URCs reports nothing else until the next CLCC poll), so the call ends here
            // (unless a state URC right after the reply ended it first).
            sh.caught_up(mark).await;
            let cause = CallEndCause::new(CallEndReason::Missed, "NO CARRIER");
            let actions = sh.calls.lock().command_ended(call, cause.clone(), mark.at);
            sh.apply_call_actions(actions).await;
            return Err(ModemError::CallEnded {
                command: resp.command,
                cause,
            });
        }
        ModemError::check(resp)?;
        if sh.profile.audio.enable_early {
            sh.route_audio(call).await;
        }
        sh.caught_up(mark).await;
        let actions = sh.calls.lock().answered(call);
        sh.apply_call_actions(actions).await;
        Ok(())
    }

    /// Dials `number` (voice). Returns once the modem accepted the dial; progress (alerting,
    /// active, busy, no answer) comes as events for the returned call.
    pub async fn dial(&self, number: &str) -> Result<CallId, ModemError> {
        self.dial_as(number, |_| {}).await
    }

    /// [`ModemHandle::dial`], telling `reserve` the call's id before any event about the
    /// call is published: whoever maps driver calls to its own names (the line adapter)
    /// knows the call before its first event arrives.
    pub async fn dial_as(
        &self,
        number: &str,
        reserve: impl FnOnce(CallId) + Send,
    ) -> Result<CallId, ModemError> {
        validate_number(number)?;
        let sh = &self.shared;
        sh.ensure_ready()?;
        let (call, actions) = sh
            .calls
            .lock()
            .dial_started(number, tokio::time::Instant::now());
        reserve(call);
        sh.apply_call_actions(actions).await;
        let r = sh
            .at
            .run_at(Command::new(format!("ATD{number};"), ms(sh.t().long_ms)).high())
            .await;
        let at = match &r {
            Ok((_, mark)) => {
                sh.caught_up(*mark).await;
                mark.at
            }
            Err(_) => tokio::time::Instant::now(),
        };
        let r = r.map(|(resp, _)| resp);
        use super::at::codec::FinalResult as F;
        let cause = match &r {
            Ok(resp) => match &resp.result {
                F::Ok | F::Connect(_) => None,
                F::Busy => Some(CallEndCause::new(CallEndReason::Busy, "BUSY")),
                F::NoAnswer => Some(CallEndCause::new(CallEndReason::NoAnswer, "NO ANSWER")),
                F::NoCarrier => Some(CallEndCause::new(CallEndReason::Rejected, "NO CARRIER")),
                F::NoDialtone => Some(CallEndCause::new(
                    CallEndReason::NetworkFailure,
                    "NO DIALTONE",
                )),
                _ => Some(CallEndCause::new(CallEndReason::NetworkFailure, "ATD")),
            },
            Err(_) => Some(CallEndCause::new(CallEndReason::NetworkFailure, "ATD")),
        };
        match cause {
            None => {
                if sh.profile.audio.enable_early {
                    sh.route_audio(call).await;
                }
                sh.poll_clcc.notify_one();
                Ok(call)
            }
            Some(cause) => {
                let actions = sh.calls.lock().command_ended(call, cause, at);
                sh.apply_call_actions(actions).await;
                match r {
                    Ok(resp)
                        if matches!(
                            resp.result,
                            F::Busy | F::NoAnswer | F::NoCarrier | F::NoDialtone
                        ) =>
                    {
                        Ok(call)
                    }
                    Ok(resp) => ModemError::check(resp).map(|_| call),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Hangs a call up (`AT+CHUP`, Quectel `AT+QHUP`, `AT+CHLD=1<idx>` when several calls).
    pub async fn hangup(&self, call: CallId) -> Result<(), ModemError> {
        let sh = &self.shared;
        if sh.profile.chld_after_alerting && sh.calls.lock().len() > 1 {
            self.wait_no_dialing().await?;
        }
        let (index, count) = {
            let mut t = sh.calls.lock();
            if t.state_of(call).is_none() {
                return Err(ModemError::NoSuchCall(call));
            }
            t.hangup_requested(call);
            (t.index_of(call), t.len())
        };
        let text = match (sh.profile.hangup, index) {
            (_, Some(i)) if count > 1 => format!("AT+CHLD=1{i}"),
            (HangupStyle::Qhup, Some(i)) => format!("AT+QHUP=16,{i}"),
            (HangupStyle::Ath, _) => "ATH".to_owned(),
            _ => "AT+CHUP".to_owned(),
        };
        let (_, mark) = sh
            .at
            .ok_at(Command::new(text, ms(sh.t().long_ms)).high())
            .await?;
        sh.caught_up(mark).await;
        let actions = sh.calls.lock().hangup_done(call, mark.at);
        sh.apply_call_actions(actions).await;
        Ok(())
    }

    /// Waits (up to the long timeout) until no dialled call is still in the dialing state:
    /// explicit call transfer needs the second call alerting at least, and `AT+CHLD` before
    /// then wedges some modems ([`VendorProfile::chld_after_alerting`]).
    async fn wait_no_dialing(&self) -> Result<(), ModemError> {
        let sh = &self.shared;
        let dialing = |calls: &[CallSummary]| {
            calls
                .iter()
                .any(|c| c.direction == Direction::Outgoing && c.state == CallStat::Dialing)
        };
        let mut rx = sh.status.subscribe();
        let limit = sh.t().long_ms;
        match timeout(ms(limit), rx.wait_for(|s| !dialing(&s.calls))).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(ModemError::Stopped),
            Err(_) => Err(ModemError::Timeout {
                command: "AT+CHLD (waiting for the dialled call to alert)".to_owned(),
                timeout_ms: limit,
            }),
        }
    }

    /// The profile's `AT+CHLD` support, and the Huawei wait for alerting.
    async fn chld_ready(&self) -> Result<(), ModemError> {
        let sh = &self.shared;
        sh.ensure_ready()?;
        if !sh.profile.call_hold {
            return Err(ModemError::Unsupported(format!(
                "profile `{}` has no call hold / transfer (AT+CHLD)",
                sh.profile.id
            )));
        }
        if sh.profile.chld_after_alerting {
            self.wait_no_dialing().await?;
        }
        Ok(())
    }

    /// `AT+CHLD=2` for a hold or a retrieve of `call` (in state `from`): refused while a call
    /// rings (it would answer it), is being set up (the network allows no retrieve then), or
    /// when more than one call would be held or active.
    async fn hold_or_retrieve(&self, call: CallId, from: CallStat) -> Result<(), ModemError> {
        let sh = &self.shared;
        self.chld_ready().await?;
        let plan = {
            let t = sh.calls.lock();
            match t.state_of(call) {
                Some(s) if s == from => {}
                Some(s) => {
                    return Err(ModemError::InvalidArgument(format!(
                        "{call} is {s:?}, not {from:?}"
                    )));
                }
                None => return Err(ModemError::NoSuchCall(call)),
            }
            let states: Vec<CallStat> = t.summaries().iter().map(|c| c.state).collect();
            let count = |want: CallStat| states.iter().filter(|s| **s == want).count();
            if count(CallStat::Incoming) + count(CallStat::Waiting) > 0 {
                return Err(ModemError::InvalidArgument(
                    "a call is ringing: AT+CHLD=2 would answer it".to_owned(),
                ));
            }
            if count(CallStat::Dialing) + count(CallStat::Alerting) > 0 {
                return Err(ModemError::InvalidArgument(
                    "a call is being set up: hang it up or transfer to it first".to_owned(),
                ));
            }
            if count(CallStat::Active) > 1 || count(CallStat::Held) > 1 {
                return Err(ModemError::InvalidArgument(
                    "more than one call is active or held (a conference)".to_owned(),
                ));
            }
            t.swap_plan()
        };
        let (_, mark) = sh.at.ok_at(sh.cmd("AT+CHLD=2").high()).await?;
        sh.caught_up(mark).await;
        let actions = sh.calls.lock().apply_states(&plan);
        sh.apply_call_actions(actions).await;
        sh.poll_clcc.notify_one();
        Ok(())
    }

    /// Puts an active call on hold (`AT+CHLD=2`). If another call was held, that one
    /// becomes active (a swap). Then [`ModemHandle::dial`] the transferee and
    /// [`ModemHandle::transfer`], or [`ModemHandle::retrieve`] the call. Huawei E1550 note
    /// (chan_dongle's BUGS): releasing a held call cuts the voice of the active one, so
    /// transfer or retrieve a held call rather than hanging it up while another is active.
    pub async fn hold(&self, call: CallId) -> Result<(), ModemError> {
        self.hold_or_retrieve(call, CallStat::Active).await
    }

    /// Takes a held call back (`AT+CHLD=2`); an active call, if any, goes on hold (a swap).
    /// Not while another call is being set up: hang that one up first.
    pub async fn retrieve(&self, call: CallId) -> Result<(), ModemError> {
        self.hold_or_retrieve(call, CallStat::Held).await
    }

    /// Explicit call transfer (`AT+CHLD=4`, 24.091): joins the held call to the other call,
    /// which is active (attended transfer) or alerting (blind transfer; a call still being
    /// dialled is waited for until it alerts), and both leave the modem: each ends with
    /// [`CallEndReason::Transferred`]. `a` and `b` are the only two calls, one of them held.
    /// When the network refuses (`+CME ERROR`), both calls stay as they were.
    pub async fn transfer(&self, a: CallId, b: CallId) -> Result<(), ModemError> {
        let sh = &self.shared;
        if a == b {
            return Err(ModemError::InvalidArgument(
                "a call cannot be transferred to itself".to_owned(),
            ));
        }
        self.chld_ready().await?;
        self.wait_no_dialing().await?;
        {
            let mut t = sh.calls.lock();
            let sa = t.state_of(a).ok_or(ModemError::NoSuchCall(a))?;
            let sb = t.state_of(b).ok_or(ModemError::NoSuchCall(b))?;
            if t.len() != 2 {
                return Err(ModemError::InvalidArgument(format!(
                    "a transfer joins exactly two calls; the modem has {}",
                    t.len()
                )));
            }
            let joinable = |s: CallStat| matches!(s, CallStat::Active | CallStat::Alerting);
            let ok =
                (sa == CallStat::Held && joinable(sb)) || (sb == CallStat::Held && joinable(sa));
            if !ok {
                return Err(ModemError::InvalidArgument(format!(
                    "a transfer needs one held call and one active or alerting call ({a} is {sa:?}, {b} is {sb:?})"
                )));
            }
            t.transfer_requested([a, b]);
        }
        match sh
            .at
            .ok_at(Command::new("AT+CHLD=4", ms(sh.t().long_ms)).high())
            .await
        {
            Ok((_, mark)) => {
                sh.caught_up(mark).await;
                let actions = sh.calls.lock().transferred([a, b], mark.at);
                sh.apply_call_actions(actions).await;
                Ok(())
            }
            Err(e) => {
                sh.calls.lock().transfer_failed([a, b]);
                sh.poll_clcc.notify_one();
                Err(e)
            }
        }
    }

    /// Sends DTMF digits on a call, one command per digit.
    pub async fn send_dtmf(&self, call: CallId, digits: &str) -> Result<(), ModemError> {
        let sh = &self.shared;
        if digits.is_empty() {
            return Err(ModemError::InvalidArgument("no DTMF digits".to_owned()));
        }
        if let Some(bad) = digits
            .chars()
            .find(|c| !is_dtmf_digit(c.to_ascii_uppercase()))
        {
            return Err(ModemError::InvalidArgument(format!(
                "`{bad}` is not a DTMF digit"
            )));
        }
        sh.ensure_ready()?;
        let index = {
            let t = sh.calls.lock();
            if t.state_of(call).is_none() {
                return Err(ModemError::NoSuchCall(call));
            }
            t.index_of(call).unwrap_or(1)
        };
        for d in digits.chars() {
            let text = sh.profile.dtmf_send.command(index, d.to_ascii_uppercase());
            sh.at.ok(sh.cmd(text).high()).await?;
        }
        Ok(())
    }

    /// Runs a job on the SMS worker and waits for its answer.
    async fn sms_job<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, ModemError>>) -> SmsJob,
    ) -> Result<T, ModemError> {
        let (reply, rx) = oneshot::channel();
        self.shared
            .sms_jobs
            .send(job(reply))
            .map_err(|_| ModemError::Stopped)?;
        rx.await.map_err(|_| ModemError::Stopped)?
    }

    /// Sends an SMS with `AT+CMGS` (split into parts when long). Waits for the modem to be
    /// ready (across a reboot) up to the configured time; retries a part that a reboot,
    /// timeout or vanished port interrupted, so a part may go out twice. For exactly-once
    /// sending across gateway crashes use [`ModemHandle::prepare_sms`] and
    /// [`ModemHandle::send_prepared`].
    pub async fn send_sms(&self, sms: OutgoingSms) -> Result<SentSms, ModemError> {
        self.sms_job(|reply| SmsJob::Send { sms, reply }).await
    }

    /// Encodes an SMS and writes its parts to modem storage (`AT+CMGW`, "stored unsent").
    /// Persist the result (and flush) before calling [`ModemHandle::send_prepared`]. When
    /// storage cannot be used (see the `outbound` module docs: profile, config, refusal,
    /// full memory, the `sms.outbound_slots` cap) the parts have no slots and will go out
    /// with `AT+CMGS`; [`PreparedSms::is_crash_safe`] says which. A timeout or reboot during
    /// the write fails with that (transient) error; a part it may have stored anyway is an
    /// orphan that sweeps and [`ModemHandle::reconcile_outbound`] delete.
    pub async fn prepare_sms(&self, sms: OutgoingSms) -> Result<PreparedSms, ModemError> {
        self.sms_job(|reply| SmsJob::Prepare { sms, reply }).await
    }

    /// Sends a prepared SMS exactly once, also after a crash: call it again with the
    /// persisted [`PreparedSms`] after a restart. Parts whose slot this driver did not just
    /// write are read back first (`AT+CMGR`): stat 3 → [`PartOutcome::SentBefore`], empty or
    /// reused → [`PartOutcome::Gone`] (both not sent again), stat 2 → sent (`AT+CMSS`). Each
    /// sent part's slot is deleted; its message reference is registered for status reports
    /// with the message's key, as `send_sms` does. A permanent error leaves the unsent parts
    /// stored: retry, or give up with [`ModemHandle::discard_prepared`].
    pub async fn send_prepared(&self, prepared: &PreparedSms) -> Result<SentSms, ModemError> {
        let prepared = Box::new(prepared.clone());
        self.sms_job(|reply| SmsJob::SendPrepared { prepared, reply })
            .await
    }

    /// Deletes the stored parts of a prepared SMS that will not be sent (it failed for good),
    /// reporting whether some had gone out already.
    pub async fn discard_prepared(
        &self,
        prepared: &PreparedSms,
    ) -> Result<DiscardReport, ModemError> {
        let prepared = Box::new(prepared.clone());
        self.sms_job(|reply| SmsJob::Discard { prepared, reply })
            .await
    }

    /// Lists the outgoing messages in storage (stat 2/3) and deletes those no `keep` entry
    /// refers to (same slot and same SUBMIT) and this driver is not preparing or sending:
    /// orphans of a crash between `AT+CMGW` and the caller persisting the slots. Call it at
    /// start-up with every persisted, unsettled [`PreparedSms`] of this modem.
    pub async fn reconcile_outbound(
        &self,
        keep: &[PreparedSms],
    ) -> Result<OutboundReport, ModemError> {
        let keep = keep.to_vec();
        self.sms_job(|reply| SmsJob::Reconcile { keep, reply })
            .await
    }

    /// Sends a USSD code and waits for the network's reply.
    pub async fn ussd(&self, code: &str) -> Result<UssdReply, ModemError> {
        let sh = &self.shared;
        if code.is_empty() || code.len() > 160 || code.contains('"') {
            return Err(ModemError::InvalidArgument(format!(
                "`{code}` is not a USSD string"
            )));
        }
        sh.ensure_ready()?;
        let _one_at_a_time = sh.ussd_lock.lock().await;
        let encoded = match sh.profile.ussd {
            UssdEncoding::Text => code.to_owned(),
            UssdEncoding::Gsm7PackedHex => {
                gsm7_pack_hex(code).map_err(|e| ModemError::Encoding(e.to_string()))?
            }
            UssdEncoding::Ucs2Hex => ucs2_hex_encode(code),
        };
        let (tx, rx) = oneshot::channel();
        *sh.ussd_waiter.lock() = Some(tx);
        let res = sh
            .at
            .ok(Command::new(
                format!("AT+CUSD=1,\"{encoded}\",15"),
                ms(sh.t().ussd_ms),
            ))
            .await;
        if let Err(e) = res {
            sh.ussd_waiter.lock().take();
            return Err(e);
        }
        let urc = match timeout(ms(sh.t().ussd_ms), rx).await {
            Ok(Ok(u)) => u,
            Ok(Err(_)) => return Err(ModemError::Ussd("cancelled".to_owned())),
            Err(_) => {
                sh.ussd_waiter.lock().take();
                return Err(ModemError::Ussd(format!(
                    "no reply within {} ms",
                    sh.t().ussd_ms
                )));
            }
        };
        manager::ussd_reply(&sh.profile, &urc).map_err(ModemError::Ussd)
    }

    /// Cancels a USSD session (`AT+CUSD=2`).
    pub async fn ussd_cancel(&self) -> Result<(), ModemError> {
        let sh = &self.shared;
        sh.ensure_ready()?;
        sh.ussd_waiter.lock().take();
        sh.at.ok(sh.cmd("AT+CUSD=2")).await.map(|_| ())
    }

    /// Sends a raw AT command (diagnostics). The reply's final result is not checked.
    pub async fn command(&self, text: &str, limit: Duration) -> Result<Response, ModemError> {
        if text.contains(['\r', '\n']) {
            return Err(ModemError::InvalidArgument(
                "the command must be one line".to_owned(),
            ));
        }
        self.shared.at.run(Command::new(text, limit)).await
    }

    /// Number of successful inits so far (a re-init after a reboot increments it).
    pub fn init_count(&self) -> u64 {
        self.shared.generation.load(Ordering::Relaxed)
    }
}
