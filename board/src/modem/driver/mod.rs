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
mod port;
mod sms;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{Notify, broadcast, mpsc, oneshot, watch};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tracing::warn;

pub use sms::{InboundSms, OutgoingSms, SentSms, SmsAck, SmsMessage, StorageSlot};

use self::port::{AtClient, Command};
use self::sms::SmsJob;
use super::at::codec::Response;
use super::at::types::{CallStat, is_dtmf_digit};
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
    /// Incremented after every successful init (the SMS worker re-selects its memory).
    pub(crate) generation: AtomicU64,
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
        let (port_task, at, requests) = port::port_task(port_name.clone(), notice_tx);
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let (sms_tx, sms_rx) = mpsc::unbounded_channel();
        let (inbound_tx, inbound_rx) = mpsc::unbounded_channel();
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
            generation: AtomicU64::new(0),
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
        match sh.at.ok(sh.cmd("AT+CLCC").high()).await {
            Ok(r) => {
                let (calls, bad) = super::at::response::clcc(&r);
                for b in bad {
                    warn!(modem = %sh.config.id, error = %b, "bad +CLCC line");
                }
                let actions = sh
                    .calls
                    .lock()
                    .on_clcc(&calls, epoch, tokio::time::Instant::now());
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
        sh.at
            .ok(Command::new("ATA", ms(sh.t().long_ms)).high())
            .await?;
        if sh.profile.audio.enable_early {
            sh.route_audio(call).await;
        }
        let actions = sh.calls.lock().answered(call);
        sh.apply_call_actions(actions).await;
        Ok(())
    }

    /// Dials `number` (voice). Returns once the modem accepted the dial; progress (alerting,
    /// active, busy, no answer) comes as events for the returned call.
    pub async fn dial(&self, number: &str) -> Result<CallId, ModemError> {
        validate_number(number)?;
        let sh = &self.shared;
        sh.ensure_ready()?;
        let (call, actions) = sh
            .calls
            .lock()
            .dial_started(number, tokio::time::Instant::now());
        sh.apply_call_actions(actions).await;
        let r = sh
            .at
            .run(Command::new(format!("ATD{number};"), ms(sh.t().long_ms)).high())
            .await;
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
                let actions = sh.calls.lock().dial_failed(call, cause);
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
        sh.at
            .ok(Command::new(text, ms(sh.t().long_ms)).high())
            .await?;
        let actions = sh.calls.lock().hangup_done(call);
        sh.apply_call_actions(actions).await;
        Ok(())
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

    /// Sends an SMS (split into parts when long). Waits for the modem to be ready (across a
    /// reboot) up to the configured time; retries a part that a reboot, timeout or vanished
    /// port interrupted.
    pub async fn send_sms(&self, sms: OutgoingSms) -> Result<SentSms, ModemError> {
        let (reply, rx) = oneshot::channel();
        self.shared
            .sms_jobs
            .send(SmsJob::Send { sms, reply })
            .map_err(|_| ModemError::Stopped)?;
        rx.await.map_err(|_| ModemError::Stopped)?
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
