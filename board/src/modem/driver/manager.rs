//! The manager task: the lifecycle of one modem.
//!
//! Phases: open the port (with back-off: it may not exist yet), run the init sequence
//! (waiting with back-off while the SIM is busy, locked or missing), serve (dispatch URCs,
//! refresh the status), and recover (climb the [`Ladder`] when a command times out). A lost
//! port sends it back to opening; a boot URC back to init. Every transition is a
//! [`ModemState`] on the status watch and an event.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::Shared;
use super::port::{Command, PortControl, PortNotice};
use super::sms::SmsJob;
use super::storage::SmsMemories;
use crate::modem::at::response;
use crate::modem::at::types::SimState;
use crate::modem::at::urc::Urc;
use crate::modem::config::{SmsMode, ms};
use crate::modem::error::ModemError;
use crate::modem::events::{
    ModemEvent, ModemState, RecoveryOutcome, Signal, UssdReply, UssdStatus,
};
use crate::modem::pdu::Alphabet;
use crate::modem::pdu::ussd::{UssdCharset, decode_ussd, ussd_coding};
use crate::modem::power::PowerControl;
use crate::modem::profile::{UssdEncoding, VendorProfile};
use crate::modem::recovery::{Backoff, Ladder, LadderAction, RecoveryStep};

/// Where the manager goes next.
#[derive(Debug)]
enum Phase {
    Open,
    Init,
    Serve,
    Recover,
    Stop,
}

/// Why init failed.
#[derive(Debug)]
enum InitError {
    /// The SIM blocks (busy, locked, missing): wait and retry.
    Sim(SimState),
    /// The modem failed (timeout, reboot, port gone, required command refused).
    Modem(ModemError),
}

impl From<ModemError> for InitError {
    fn from(e: ModemError) -> Self {
        InitError::Modem(e)
    }
}

/// The result of one recovery step.
enum StepResult {
    Ok,
    Failed(String),
    Skipped(String),
    Go(Phase),
}

/// How waiting for a reboot ended.
enum BootWait {
    Back,
    Timeout,
    Go(Phase),
}

pub(crate) struct Manager {
    sh: Arc<Shared>,
    ctl: mpsc::UnboundedSender<PortControl>,
    notices: mpsc::UnboundedReceiver<PortNotice>,
    ladder: Ladder,
    power: PowerControl,
    cancel: CancellationToken,
    /// Timeouts older than this belong to a fault already handled.
    healthy_since: Instant,
    memory_full_reported: bool,
}

impl Manager {
    pub(crate) fn new(
        sh: Arc<Shared>,
        ctl: mpsc::UnboundedSender<PortControl>,
        notices: mpsc::UnboundedReceiver<PortNotice>,
        power: PowerControl,
        cancel: CancellationToken,
    ) -> Self {
        let retry = sh.config.recovery.retry_after_give_up_ms.map(ms);
        Self {
            sh,
            ctl,
            notices,
            ladder: Ladder::new(retry),
            power,
            cancel,
            healthy_since: Instant::now(),
            memory_full_reported: false,
        }
    }

    fn id(&self) -> &str {
        &self.sh.config.id
    }

    pub(crate) async fn run(mut self) {
        let mut phase = Phase::Open;
        loop {
            debug!(modem = %self.id(), ?phase, "phase");
            phase = match phase {
                Phase::Open => self.open_port().await,
                Phase::Init => self.init_phase().await,
                Phase::Serve => self.serve().await,
                Phase::Recover => self.recover().await,
                Phase::Stop => break,
            };
        }
        let _ = self.ctl.send(PortControl::Detach("stopped".to_owned()));
        let actions = self
            .sh
            .calls
            .lock()
            .end_all("driver stopped", Instant::now());
        self.sh.apply_call_actions(actions).await;
        self.sh.set_state(ModemState::Stopped);
        info!(modem = %self.id(), "modem driver stopped");
    }

    /// Opens the port, retrying with back-off until it exists (USB enumeration).
    async fn open_port(&mut self) -> Phase {
        let mut backoff = Backoff::new(self.sh.config.recovery.reopen_backoff);
        // The port task may still hold the stream of an earlier open (an init that failed
        // as "port not open" before the task had taken that stream, seen under load): it
        // keeps the tty's exclusive lock, and every open here would fail with "Unable to
        // acquire exclusive lock" for good. The task lets it go first (an open racing the
        // release fails once and is retried after the back-off).
        let _ = self.ctl.send(PortControl::Detach("reopening".to_owned()));
        loop {
            self.sh.set_state(ModemState::Opening {
                attempt: backoff.attempt(),
            });
            let path = self.sh.config.port.display().to_string();
            match tokio_serial::SerialStream::open(&tokio_serial::new(&path, self.sh.config.baud)) {
                Ok(stream) => {
                    info!(modem = %self.id(), port = %path, "port open");
                    if self
                        .ctl
                        .send(PortControl::Attach(Box::new(stream)))
                        .is_err()
                    {
                        return Phase::Stop;
                    }
                    return Phase::Init;
                }
                Err(e) => {
                    let at = backoff.failed(Instant::now());
                    warn!(modem = %self.id(), port = %path, error = %e, retry_in_ms = (at - Instant::now()).as_millis(), "cannot open port");
                    self.sh.set_error(format!("cannot open {path}: {e}"));
                    if let Some(Phase::Stop) = self.idle_until(at).await {
                        return Phase::Stop;
                    }
                }
            }
        }
    }

    /// Waits until `at` while handling notices; returns a phase if one demands a change
    /// (`Stop`; anything else is ignored while the port is closed).
    async fn idle_until(&mut self, at: Instant) -> Option<Phase> {
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => return Some(Phase::Stop),
                () = sleep_until(at) => return None,
                n = self.notices.recv() => match n {
                    None => return Some(Phase::Stop),
                    Some(n) => {
                        if let Some(p) = self.notice(n).await {
                            return Some(p);
                        }
                    }
                },
            }
        }
    }

    /// Runs init until it succeeds, waiting on the SIM with back-off.
    async fn init_phase(&mut self) -> Phase {
        let mut sim_backoff = Backoff::new(self.sh.config.recovery.sim_backoff);
        loop {
            self.sh.set_state(ModemState::Initializing);
            match self.init().await {
                Ok(()) => {
                    self.ladder.succeeded();
                    self.ready();
                    return Phase::Serve;
                }
                Err(InitError::Sim(sim)) => {
                    let at = sim_backoff.failed(Instant::now());
                    info!(modem = %self.id(), ?sim, attempt = sim_backoff.attempt(), "SIM not ready, retrying");
                    self.sh.update(|s| s.sim = sim.clone());
                    self.sh.set_state(ModemState::WaitingForSim {
                        sim,
                        attempt: sim_backoff.attempt(),
                    });
                    if let Some(p) = self.idle_until(at).await {
                        return p;
                    }
                }
                Err(InitError::Modem(e)) => return self.init_failed(e),
            }
        }
    }

    fn init_failed(&mut self, e: ModemError) -> Phase {
        warn!(modem = %self.id(), error = %e, "init failed");
        self.sh.set_error(&e);
        match e {
            ModemError::Rebooted { .. } => Phase::Init,
            ModemError::PortGone { .. } => Phase::Open,
            ModemError::Stopped => Phase::Stop,
            ModemError::Timeout { .. } => {
                self.ladder.fault(RecoveryStep::Resync);
                Phase::Recover
            }
            _ => {
                self.ladder.fault(RecoveryStep::Reinit);
                Phase::Recover
            }
        }
    }

    fn ready(&mut self) {
        self.healthy_since = Instant::now();
        self.sh.generation.fetch_add(1, Ordering::Relaxed);
        self.sh.update(|s| s.last_error = None);
        self.sh.set_state(ModemState::Ready);
        let _ = self.sh.sms_jobs.send(SmsJob::Sweep);
        self.sh.poll_clcc.notify_one();
    }

    /// The init sequence (reference §1.1 synthesis + the profile's vendor block).
    async fn init(&mut self) -> Result<(), InitError> {
        let sh = Arc::clone(&self.sh);
        let t = *sh.t();
        // Sync: the first AT may be eaten by garbage or a modem still booting.
        let mut synced = Err(ModemError::Stopped);
        for attempt in 0..3 {
            if attempt == 1 {
                // A modem that swallows `AT` may sit at a `> ` prompt that a gateway process
                // left when it died between `AT+CMGW`/`AT+CMGS` and the PDU: ESC leaves it
                // (answered `OK` there; ignored, unanswered, in command mode).
                let _ = sh.at.run(Command::new("\x1b", ms(t.short_ms))).await;
            }
            synced = sh.at.ok(Command::new("AT", ms(t.short_ms))).await;
            match &synced {
                Ok(_) => break,
                Err(ModemError::Timeout { .. } | ModemError::Failed { .. }) => continue,
                Err(_) => break,
            }
        }
        synced?;
        self.required("ATE0").await?;
        self.required("AT+CMEE=1").await?;
        self.sim_ready().await?;
        self.identity().await?;
        self.required("AT+CMGF=0").await?;
        self.optional("AT+CSCS=\"GSM\"").await?;
        self.sms_memories().await?;
        match sh.config.sms.mode {
            SmsMode::Stored => self.optional(&sh.profile.cnmi_stored).await?,
            SmsMode::Direct => {
                self.optional("AT+CSMS=1").await?;
                self.optional(&sh.profile.cnmi_direct).await?;
            }
        }
        // `AT+CUSD=1`: network-initiated USSD is only presented once enabled (27.007 §7.15);
        // ModemManager enables it the same way.
        for c in ["AT+CLIP=1", "AT+CRC=1", "AT+CREG=2", "AT+CUSD=1"] {
            self.optional(c).await?;
        }
        if sh.profile.lte {
            self.optional("AT+CEREG=2").await?;
        }
        for c in &sh.profile.init {
            if c.required {
                self.required(&c.command).await?;
            } else {
                self.optional(&c.command).await?;
            }
        }
        self.refresh().await.map_err(InitError::Modem)?;
        Ok(())
    }

    /// Chooses the SMS memories: `AT+CPMS=?` says what the modem offers; received messages
    /// stay in the profile's memory and outgoing ones get a memory of their own where there
    /// is one (three-parameter `AT+CPMS`), so a burst of incoming messages never leaves a
    /// reply without a slot. A modem that refuses the split gets one memory for all three.
    async fn sms_memories(&self) -> Result<(), InitError> {
        let sh = &self.sh;
        let t = sh.t();
        let profile_mem = sh.profile.sms_memory.clone();
        let offered = match sh.at.ok(Command::new("AT+CPMS=?", ms(t.list_ms))).await {
            Ok(r) => response::cpms_test(&r).ok(),
            Err(e) => {
                self.tolerate(e)?;
                None
            }
        };
        let mut chosen = offered.as_ref().map_or_else(
            || SmsMemories::single(&profile_mem),
            |o| SmsMemories::choose(&profile_mem, o),
        );
        loop {
            let (rx, wr) = (&chosen.receive, &chosen.write);
            let cpms = Command::new(format!("AT+CPMS=\"{rx}\",\"{wr}\",\"{rx}\""), ms(t.list_ms));
            match sh.at.ok(cpms).await {
                Ok(r) => {
                    if let Ok(u) = response::cpms(&r) {
                        sh.update(|s| s.sms_storage = Some(u));
                    }
                    break;
                }
                Err(e) if chosen.separate() => {
                    self.tolerate(e)?;
                    warn!(modem = %self.id(), receive = %chosen.receive, write = %chosen.write, "the modem refuses separate SMS memories: one memory for all");
                    chosen = SmsMemories {
                        write: chosen.receive.clone(),
                        ..chosen
                    };
                }
                Err(e) => {
                    self.tolerate(e)?;
                    break;
                }
            }
        }
        info!(modem = %self.id(), receive = %chosen.receive, write = %chosen.write, "SMS memories");
        *sh.sms_mems.lock() = chosen;
        Ok(())
    }

    async fn required(&self, text: &str) -> Result<(), InitError> {
        match self.sh.at.ok(self.sh.cmd(text)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(sim_blocking(&e).map_or(InitError::Modem(e), InitError::Sim)),
        }
    }

    async fn optional(&self, text: &str) -> Result<(), InitError> {
        match self.sh.at.ok(self.sh.cmd(text)).await {
            Ok(_) => Ok(()),
            Err(e) => self.tolerate(e),
        }
    }

    /// Refusals of optional commands are logged; link failures are not tolerated.
    fn tolerate(&self, e: ModemError) -> Result<(), InitError> {
        match e {
            ModemError::Cme { .. } | ModemError::Cms { .. } | ModemError::Failed { .. } => {
                debug!(modem = %self.id(), error = %e, "optional command refused");
                Ok(())
            }
            other => Err(InitError::Modem(other)),
        }
    }

    async fn sim_ready(&self) -> Result<(), InitError> {
        let sh = &self.sh;
        let mut pin_sent = false;
        loop {
            let state = match sh.at.ok(Command::new("AT+CPIN?", ms(sh.t().sim_ms))).await {
                Ok(r) => response::cpin(&r).unwrap_or(SimState::Unknown),
                Err(e) => match sim_blocking(&e) {
                    Some(s) => s,
                    None => return Err(InitError::Modem(e)),
                },
            };
            sh.update(|s| s.sim = state.clone());
            match state {
                SimState::Ready => return Ok(()),
                SimState::PinRequired if !pin_sent => match &sh.config.pin {
                    Some(pin) => {
                        info!(modem = %self.id(), "entering SIM PIN");
                        sh.at
                            .ok(Command::new(
                                format!("AT+CPIN=\"{pin}\""),
                                ms(sh.t().sim_ms),
                            ))
                            .await?;
                        pin_sent = true;
                    }
                    None => return Err(InitError::Sim(SimState::PinRequired)),
                },
                other => return Err(InitError::Sim(other)),
            }
        }
    }

    async fn identity(&self) -> Result<(), InitError> {
        let sh = &self.sh;
        let mut id = sh.status.borrow().identity.clone();
        let text = |r: &crate::modem::at::Response| r.first_text().map(str::to_owned);
        if let Some(r) = self.query("AT+CGMI").await? {
            id.manufacturer = text(&r);
        }
        if let Some(r) = self.query("AT+CGMM").await? {
            id.model = text(&r);
        }
        if let Some(r) = self.query("AT+CGMR").await? {
            id.firmware = text(&r).map(|t| t.trim_start_matches("Revision:").trim().to_owned());
        }
        if let Some(r) = self.query("AT+CGSN").await? {
            id.imei = response::digits(&r);
        }
        if let Some(r) = self.query("AT+CIMI").await? {
            id.imsi = response::digits(&r);
        }
        let iccid = Command::new(&sh.profile.iccid_command, ms(sh.t().default_ms))
            .also_expect("+ICCID")
            .also_expect("+CCID")
            .also_expect("^ICCID")
            .also_expect("+QCCID");
        match sh.at.ok(iccid).await {
            Ok(r) => id.iccid = response::iccid(&r),
            Err(e) => self.tolerate(e)?,
        }
        if let Some(r) = self.query("AT+CNUM").await? {
            id.own_number = response::cnum(&r);
        }
        sh.update(|s| s.identity = id);
        Ok(())
    }

    async fn query(&self, text: &str) -> Result<Option<crate::modem::at::Response>, InitError> {
        match self.sh.at.ok(self.sh.cmd(text)).await {
            Ok(r) => Ok(Some(r)),
            Err(e) => self.tolerate(e).map(|()| None),
        }
    }

    /// Signal, registration, operator, storage. Refusals are ignored; link errors returned.
    async fn refresh(&mut self) -> Result<(), ModemError> {
        let sh = Arc::clone(&self.sh);
        let soft = |r: Result<crate::modem::at::Response, ModemError>| match r {
            Ok(r) => Ok(Some(r)),
            Err(ModemError::Cme { .. } | ModemError::Cms { .. } | ModemError::Failed { .. }) => {
                Ok(None)
            }
            Err(e) => Err(e),
        };
        if let Some(r) = soft(sh.at.ok(sh.cmd("AT+CSQ")).await)?
            && let Ok(q) = response::csq(&r)
        {
            sh.update(|s| s.signal = Some(Signal::from(q)));
        }
        if let Some(r) = soft(sh.at.ok(sh.cmd("AT+CREG?")).await)?
            && let Ok(reg) = response::registration(&r, "+CREG")
        {
            sh.update(|s| s.registration = Some(reg));
        }
        if sh.profile.lte
            && let Some(r) = soft(sh.at.ok(sh.cmd("AT+CEREG?")).await)?
            && let Ok(reg) = response::registration(&r, "+CEREG")
        {
            sh.update(|s| s.eps_registration = Some(reg));
        }
        let _ = soft(sh.at.ok(sh.cmd("AT+COPS=3,0")).await)?;
        if let Some(r) = soft(sh.at.ok(sh.cmd("AT+COPS?")).await)?
            && let Ok(op) = response::cops(&r)
        {
            sh.update(|s| s.operator = op);
        }
        if let Some(r) = soft(sh.at.ok(Command::new("AT+CPMS?", ms(sh.t().list_ms))).await)?
            && let Ok(u) = response::cpms(&r)
        {
            sh.update(|s| s.sms_storage = Some(u));
            if u.total > 0 && u.used >= u.total {
                if !self.memory_full_reported {
                    self.memory_full_reported = true;
                    let _ = sh.sms_jobs.send(SmsJob::MemoryFull {
                        mem: sh.receive_mem(),
                    });
                }
            } else {
                self.memory_full_reported = false;
            }
        }
        Ok(())
    }

    /// Serves until something needs another phase.
    async fn serve(&mut self) -> Phase {
        let every = ms(self.sh.config.refresh_interval_ms.max(1_000));
        let mut next_refresh = Instant::now() + every;
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => return Phase::Stop,
                n = self.notices.recv() => match n {
                    None => return Phase::Stop,
                    Some(n) => {
                        if let Some(p) = self.notice(n).await {
                            return p;
                        }
                    }
                },
                () = sleep_until(next_refresh) => {
                    next_refresh = Instant::now() + every;
                    if let Err(e) = self.refresh().await {
                        debug!(modem = %self.id(), error = %e, "refresh failed");
                    }
                }
            }
        }
    }

    /// Handles one notice; returns a phase when it demands a change.
    async fn notice(&mut self, n: PortNotice) -> Option<Phase> {
        match n {
            PortNotice::Lost { reason } => {
                self.port_lost(reason).await;
                Some(Phase::Open)
            }
            PortNotice::Timeout { command, at } => {
                if at < self.healthy_since
                    || self.ladder.is_climbing()
                    || self.sh.state() != ModemState::Ready
                {
                    return None;
                }
                warn!(modem = %self.id(), cmd = %command, "command timed out: recovering");
                self.sh.set_error(format!("`{command}` timed out"));
                self.ladder.fault(RecoveryStep::Resync);
                self.sh
                    .update(|s| s.recoveries = s.recoveries.saturating_add(1));
                Some(Phase::Recover)
            }
            PortNotice::BadUrc(e) => {
                warn!(modem = %self.id(), error = %e, "malformed URC");
                None
            }
            PortNotice::Urc(u, at) => {
                let next = self.urc(u, at).await;
                self.urc_handled();
                next
            }
        }
    }

    /// One more URC notice is fully processed (see `Shared::caught_up`).
    fn urc_handled(&self) {
        self.sh.urcs_done.send_modify(|n| *n += 1);
    }

    async fn port_lost(&mut self, reason: String) {
        self.sh.set_error(format!("port lost: {reason}"));
        self.sh.set_state(ModemState::PortLost { reason });
        let actions = self.sh.calls.lock().end_all("port lost", Instant::now());
        self.sh.apply_call_actions(actions).await;
    }

    async fn urc(&mut self, u: Urc, at: Instant) -> Option<Phase> {
        let _ = self.sh.urcs.send(u.clone());
        let sh = Arc::clone(&self.sh);
        match &u {
            Urc::Ready => return self.rebooted("RDY").await,
            Urc::Boot { .. } => {
                if !sh.profile.boot_is_heartbeat {
                    return self.rebooted("^BOOT").await;
                }
                // Some Huawei firmwares send ^BOOT periodically: reboot only if the settings
                // init made are gone (CMEE is back at its default 0).
                if sh.state() == ModemState::Ready {
                    let intact = match sh.at.ok(sh.cmd("AT+CMEE?")).await {
                        Ok(r) => response::cmee(&r).is_ok_and(|v| v == 1),
                        Err(_) => false,
                    };
                    if !intact {
                        return self.rebooted("^BOOT").await;
                    }
                }
            }
            Urc::Cpin(state) => {
                sh.update(|s| s.sim = state.clone());
                if *state != SimState::Ready && sh.state() == ModemState::Ready {
                    warn!(modem = %self.id(), ?state, "SIM state changed: re-initialising");
                    return Some(Phase::Init);
                }
            }
            Urc::Creg(r) | Urc::Cgreg(r) => sh.update(|s| s.registration = Some(*r)),
            Urc::Cereg(r) => sh.update(|s| s.eps_registration = Some(*r)),
            Urc::Csq(q) | Urc::QindCsq(q) => sh.update(|s| s.signal = Some(Signal::from(*q))),
            Urc::Rssi { rssi } => {
                let q = crate::modem::at::SignalQuality {
                    rssi: *rssi,
                    ber: 99,
                };
                sh.update(|s| s.signal = Some(Signal::from(q)));
            }
            Urc::QindAct { tech } => sh.update(|s| s.technology = Some(tech.clone())),
            Urc::Hcsq { sysmode, .. } => sh.update(|s| s.technology = Some(sysmode.clone())),
            Urc::Cmti {
                mem,
                index: Some(index),
            } => {
                let _ = sh.sms_jobs.send(SmsJob::Stored {
                    mem: mem.clone(),
                    index: *index,
                    // The notices handled before this one: its place in the port's count.
                    urc: *sh.urcs_done.borrow(),
                });
            }
            Urc::Cmti { mem, index: None } => {
                let _ = sh.sms_jobs.send(SmsJob::MemoryFull { mem: mem.clone() });
            }
            Urc::Cdsi {
                mem,
                index: Some(index),
            } => {
                let _ = sh.sms_jobs.send(SmsJob::StatusStored {
                    mem: mem.clone(),
                    index: *index,
                });
            }
            Urc::Cmt { pdu, length, .. } => {
                let _ = sh.sms_jobs.send(SmsJob::Direct {
                    pdu: pdu.clone(),
                    length: *length,
                });
            }
            Urc::Cds { pdu, length } => {
                let _ = sh.sms_jobs.send(SmsJob::StatusDirect {
                    pdu: pdu.clone(),
                    length: *length,
                });
            }
            Urc::SmMemFull { mem } => {
                let _ = sh.sms_jobs.send(SmsJob::MemoryFull { mem: mem.clone() });
            }
            Urc::Cusd { .. } => {
                let waiter = sh.ussd_waiter.lock().take();
                // No caller waits (network-initiated USSD, or the caller gave up): an event.
                let unclaimed = match waiter {
                    Some(w) => w.send(u.clone()).err(),
                    None => Some(u.clone()),
                };
                if let Some(u) = unclaimed {
                    match ussd_reply(&sh.profile, &u) {
                        Ok(r) => sh.emit(ModemEvent::Ussd(r)),
                        Err(e) => warn!(modem = %self.id(), error = %e, "undecodable USSD"),
                    }
                }
            }
            _ => {
                let actions = sh.calls.lock().on_urc(&u, at);
                sh.apply_call_actions(actions).await;
            }
        }
        None
    }

    async fn rebooted(&mut self, why: &str) -> Option<Phase> {
        info!(modem = %self.id(), urc = why, "modem rebooted: re-initialising");
        let actions = self.sh.calls.lock().end_all(why, Instant::now());
        self.sh.apply_call_actions(actions).await;
        Some(Phase::Init)
    }

    /// Climbs the ladder until a step succeeds or it gives up.
    async fn recover(&mut self) -> Phase {
        loop {
            match self.ladder.poll(Instant::now()) {
                None => return Phase::Serve,
                Some(LadderAction::Stop) => {
                    let reason = self
                        .sh
                        .status
                        .borrow()
                        .last_error
                        .clone()
                        .unwrap_or_default();
                    self.sh.set_state(ModemState::Failed { reason });
                    // Stay given up, but a reboot or a port change brings the modem back.
                    return self.given_up(None).await;
                }
                Some(LadderAction::WaitUntil(at)) => {
                    let reason = self
                        .sh
                        .status
                        .borrow()
                        .last_error
                        .clone()
                        .unwrap_or_default();
                    self.sh.set_state(ModemState::Failed { reason });
                    let p = self.given_up(Some(at)).await;
                    if !matches!(p, Phase::Recover) {
                        return p;
                    }
                }
                Some(LadderAction::Run(step)) => {
                    self.sh.set_state(ModemState::Recovering { step });
                    self.sh.emit(ModemEvent::Recovery {
                        step,
                        outcome: RecoveryOutcome::Started,
                    });
                    info!(modem = %self.id(), %step, "recovery step");
                    let res = self.step(step).await;
                    let now = Instant::now();
                    match res {
                        StepResult::Ok => {
                            self.sh.emit(ModemEvent::Recovery {
                                step,
                                outcome: RecoveryOutcome::Succeeded,
                            });
                            self.ladder.succeeded();
                            self.ready();
                            return Phase::Serve;
                        }
                        StepResult::Failed(reason) => {
                            warn!(modem = %self.id(), %step, %reason, "recovery step failed");
                            self.sh.set_error(&reason);
                            self.sh.emit(ModemEvent::Recovery {
                                step,
                                outcome: RecoveryOutcome::Failed { reason },
                            });
                            self.ladder.failed(step, now);
                        }
                        StepResult::Skipped(reason) => {
                            warn!(modem = %self.id(), %step, %reason, "recovery step skipped");
                            self.sh.emit(ModemEvent::Recovery {
                                step,
                                outcome: RecoveryOutcome::Skipped { reason },
                            });
                            self.ladder.failed(step, now);
                        }
                        StepResult::Go(p) => return p,
                    }
                }
            }
        }
    }

    /// Given up: wait for the retry time (if any), a reboot URC or a port change.
    async fn given_up(&mut self, until: Option<Instant>) -> Phase {
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => return Phase::Stop,
                () = async { match until { Some(t) => sleep_until(t).await, None => std::future::pending().await } } => return Phase::Recover,
                n = self.notices.recv() => match n {
                    None => return Phase::Stop,
                    Some(PortNotice::Urc(Urc::Ready | Urc::Boot { .. }, _)) => {
                        self.urc_handled();
                        self.ladder.succeeded();
                        return Phase::Init;
                    }
                    Some(PortNotice::Lost { reason }) => {
                        self.ladder.succeeded();
                        self.port_lost(reason).await;
                        return Phase::Open;
                    }
                    Some(PortNotice::Urc(..)) => self.urc_handled(),
                    Some(_) => {}
                },
            }
        }
    }

    async fn step(&mut self, step: RecoveryStep) -> StepResult {
        let sh = Arc::clone(&self.sh);
        let t = *sh.t();
        match step {
            RecoveryStep::Resync => {
                let mut last = String::new();
                for _ in 0..sh.config.recovery.resync_attempts.max(1) {
                    match sh.at.ok(Command::new("AT", ms(t.short_ms))).await {
                        Ok(_) => return StepResult::Ok,
                        Err(ModemError::PortGone { reason, .. }) => {
                            return self.lost_in_step(reason).await;
                        }
                        Err(e) => last = e.to_string(),
                    }
                }
                StepResult::Failed(last)
            }
            RecoveryStep::Reinit => self.init_in_step().await,
            RecoveryStep::SoftReset => {
                if let Err(e) = sh
                    .at
                    .ok(Command::new("AT+CFUN=1,1", ms(t.long_ms.min(t.default_ms))))
                    .await
                {
                    if let ModemError::PortGone { reason, .. } = &e {
                        // USB re-enumeration started at once.
                        self.port_lost(reason.clone()).await;
                    } else if !matches!(e, ModemError::Rebooted { .. }) {
                        return StepResult::Failed(format!("AT+CFUN=1,1: {e}"));
                    }
                }
                self.after_boot("AT+CFUN=1,1").await
            }
            RecoveryStep::PowerCycle => match self.power.power_cycle().await {
                Ok(how) => {
                    info!(modem = %self.id(), how, "power cycled");
                    self.after_boot(how).await
                }
                Err(e) => StepResult::Skipped(e.to_string()),
            },
            RecoveryStep::GiveUp => {
                StepResult::Failed("every recovery step failed; giving up".to_owned())
            }
        }
    }

    async fn lost_in_step(&mut self, reason: String) -> StepResult {
        self.ladder.succeeded();
        self.port_lost(reason).await;
        StepResult::Go(Phase::Open)
    }

    async fn init_in_step(&mut self) -> StepResult {
        self.sh.set_state(ModemState::Initializing);
        match self.init().await {
            Ok(()) => StepResult::Ok,
            Err(InitError::Sim(_)) => {
                self.ladder.succeeded();
                StepResult::Go(Phase::Init)
            }
            Err(InitError::Modem(ModemError::PortGone { reason, .. })) => {
                self.lost_in_step(reason).await
            }
            Err(InitError::Modem(ModemError::Stopped)) => StepResult::Go(Phase::Stop),
            Err(InitError::Modem(e)) => StepResult::Failed(e.to_string()),
        }
    }

    /// After a reset: wait for the modem to come back (boot URC, or the port reappearing),
    /// then init.
    async fn after_boot(&mut self, what: &str) -> StepResult {
        let deadline = Instant::now() + ms(self.sh.config.recovery.boot_wait_ms);
        match self.wait_boot(deadline).await {
            BootWait::Back => self.init_in_step().await,
            BootWait::Timeout => StepResult::Failed(format!(
                "no sign of life within {} ms after {what}",
                self.sh.config.recovery.boot_wait_ms
            )),
            BootWait::Go(p) => StepResult::Go(p),
        }
    }

    async fn wait_boot(&mut self, deadline: Instant) -> BootWait {
        let mut port_gone = matches!(self.sh.state(), ModemState::PortLost { .. });
        loop {
            if port_gone {
                // Poll for the port to reappear until the deadline.
                let path = self.sh.config.port.display().to_string();
                if let Ok(stream) =
                    tokio_serial::SerialStream::open(&tokio_serial::new(&path, self.sh.config.baud))
                {
                    if self
                        .ctl
                        .send(PortControl::Attach(Box::new(stream)))
                        .is_err()
                    {
                        return BootWait::Go(Phase::Stop);
                    }
                    return BootWait::Back;
                }
            }
            let tick = (Instant::now() + ms(250)).min(deadline);
            tokio::select! {
                () = self.cancel.cancelled() => return BootWait::Go(Phase::Stop),
                () = sleep_until(tick) => {
                    if Instant::now() >= deadline {
                        return BootWait::Timeout;
                    }
                }
                n = self.notices.recv() => match n {
                    None => return BootWait::Go(Phase::Stop),
                    Some(PortNotice::Urc(Urc::Ready | Urc::Boot { .. }, _)) => {
                        self.urc_handled();
                        return BootWait::Back;
                    }
                    Some(PortNotice::Lost { reason }) => {
                        self.port_lost(reason).await;
                        port_gone = true;
                    }
                    Some(PortNotice::Urc(u, _)) => {
                        self.urc_handled();
                        let _ = self.sh.urcs.send(u);
                    }
                    Some(_) => {}
                },
            }
        }
    }
}

/// The SIM state a command error means, when it means one (`+CME ERROR: 10/11/12/13/14/515`,
/// `+CMS ERROR: 310/311/313/314/316`).
fn sim_blocking(e: &ModemError) -> Option<SimState> {
    match e {
        ModemError::Cme { code, .. } => match code.code()? {
            10 => Some(SimState::NotInserted),
            11 => Some(SimState::PinRequired),
            12 => Some(SimState::PukRequired),
            13 => Some(SimState::Error("SIM failure".to_owned())),
            14 | 515 => Some(SimState::Busy),
            _ => None,
        },
        ModemError::Cms { code, .. } => match code.code()? {
            310 => Some(SimState::NotInserted),
            311 => Some(SimState::PinRequired),
            316 => Some(SimState::PukRequired),
            313 => Some(SimState::Error("SIM failure".to_owned())),
            314 => Some(SimState::Busy),
            _ => None,
        },
        _ => None,
    }
}

/// Decodes a `+CUSD` URC per the profile's encoding and the DCS.
pub(crate) fn ussd_reply(profile: &VendorProfile, urc: &Urc) -> Result<UssdReply, String> {
    let Urc::Cusd { status, text, dcs } = urc else {
        return Err("not a +CUSD line".to_owned());
    };
    let status = UssdStatus::from_code(*status);
    let decoded = match text {
        None => None,
        Some(raw) => {
            let dcs_v = dcs.unwrap_or(15);
            let is_hex = !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_hexdigit());
            let charset = match profile.ussd {
                UssdEncoding::Gsm7PackedHex => UssdCharset::RawHex,
                UssdEncoding::Ucs2Hex => UssdCharset::Ucs2Hex,
                UssdEncoding::Text => {
                    // In GSM text mode modems still pass UCS2 replies through as hex.
                    let ucs2 = ussd_coding(dcs_v).is_ok_and(|c| c.alphabet == Alphabet::Ucs2);
                    if ucs2 && is_hex && raw.len() % 4 == 0 {
                        UssdCharset::RawHex
                    } else {
                        UssdCharset::Text
                    }
                }
            };
            Some(
                decode_ussd(raw, dcs_v, charset)
                    .map_err(|e| format!("reply `{raw}` (dcs {dcs_v}): {e}"))?,
            )
        }
    };
    Ok(UssdReply {
        status,
        text: decoded,
        dcs: *dcs,
        raw: text.clone(),
    })
}
