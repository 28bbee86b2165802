//! The simulator's I/O shell and handles: the AT-port task, the voice-port task, and the
//! [`SimControl`] API over the sans-IO core.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::{MissedTickBehavior, interval, sleep, timeout};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::core::{
    FRAME_SAMPLES, FaultAction, Out, Scheduled, SentSmsRecord, SimCallRecord, SimCore, UssdScript,
};
use super::pty::{Pty, point_link, remove_link};
use super::{SimConfig, SimError, SimEvent, SimProfile};
use crate::modem::at::types::{CallStat, Direction};
use crate::modem::config::{AudioTransport, ModemConfig};
use crate::modem::profile::VendorProfile;

enum SimCmd {
    Out(Vec<Out>),
    Fire(Scheduled),
    Vanish(Duration),
}

struct SimShared {
    core: Mutex<SimCore>,
    events: broadcast::Sender<SimEvent>,
    changed: watch::Sender<u64>,
    cmds: mpsc::UnboundedSender<SimCmd>,
    at_path: Mutex<PathBuf>,
    pcm_path: PathBuf,
    link: Option<PathBuf>,
    pcm_link: Option<PathBuf>,
    flush_audio: AtomicBool,
    cancel: CancellationToken,
}

impl SimShared {
    fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Runs `f` on the core, sends its outputs to the AT task, and wakes waiters. The
    /// outputs are queued while the core is still locked: the AT task takes queued outputs
    /// under the same lock before it answers a command, so a reply that reflects a change
    /// is never written before the URCs announcing it (a `+CLCC` list without the call whose
    /// `NO ANSWER` has not been sent yet).
    fn with<T>(
        &self,
        f: impl FnOnce(&mut SimCore) -> Result<(Vec<Out>, T), SimError>,
    ) -> Result<T, SimError> {
        let v = {
            let mut core = self.core.lock();
            let (out, v) = f(&mut core)?;
            if !out.is_empty() {
                self.cmds
                    .send(SimCmd::Out(out))
                    .map_err(|_| SimError::Stopped)?;
            }
            v
        };
        self.bump();
        Ok(v)
    }
}

/// A running simulated modem. Dropping it stops the simulator and removes its symlinks.
pub struct SimModem {
    control: SimControl,
}

impl std::fmt::Debug for SimModem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimModem")
            .field("at", &self.at_path())
            .field("pcm", &self.pcm_path())
            .finish()
    }
}

impl SimModem {
    /// Starts the simulator (needs a tokio runtime): opens the ptys, creates the symlinks,
    /// spawns the AT and voice tasks.
    pub fn start(config: SimConfig) -> Result<Self, SimError> {
        let io = |e: std::io::Error| SimError::Io(e.to_string());
        let at = Pty::open().map_err(io)?;
        let pcm = Pty::open().map_err(io)?;
        if let Some(l) = &config.link {
            point_link(l, at.path())
                .map_err(|e| SimError::Io(format!("link {}: {e}", l.display())))?;
        }
        if let Some(l) = &config.pcm_link {
            point_link(l, pcm.path())
                .map_err(|e| SimError::Io(format!("link {}: {e}", l.display())))?;
        }
        let (events, _) = broadcast::channel(4096);
        let (changed, _) = watch::channel(0);
        let (cmds, cmd_rx) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let boot = config.boot_urcs_at_start;
        let shared = Arc::new(SimShared {
            at_path: Mutex::new(at.path().to_owned()),
            pcm_path: pcm.path().to_owned(),
            link: config.link.clone(),
            pcm_link: config.pcm_link.clone(),
            core: Mutex::new(SimCore::new(config, events.clone())),
            events,
            changed,
            cmds,
            flush_audio: AtomicBool::new(false),
            cancel: cancel.clone(),
        });
        info!(at = %at.path().display(), pcm = %pcm.path().display(), "simulated modem started");
        if boot {
            let out = shared.core.lock().boot_urcs();
            let _ = shared.cmds.send(SimCmd::Out(out));
        }
        tokio::spawn(at_task(Arc::clone(&shared), at, cmd_rx));
        tokio::spawn(pcm_task(Arc::clone(&shared), pcm));
        Ok(Self {
            control: SimControl { shared },
        })
    }

    /// The path the gateway opens for AT: the symlink when configured, else the pty.
    pub fn at_path(&self) -> PathBuf {
        self.control.at_path()
    }

    /// The path of the voice port: the symlink when configured, else the pty.
    pub fn pcm_path(&self) -> PathBuf {
        self.control.pcm_path()
    }

    /// The control handle.
    pub fn control(&self) -> SimControl {
        self.control.clone()
    }

    /// The driver's vendor profile for this simulated model.
    pub fn vendor_profile(&self) -> VendorProfile {
        let id = self.control.profile().vendor_profile_id();
        VendorProfile::builtin(id).unwrap_or_else(VendorProfile::generic)
    }

    /// A driver configuration for this simulator: AT port and serial-PCM voice port.
    pub fn modem_config(&self, id: &str) -> ModemConfig {
        let mut c = ModemConfig::new(id, self.at_path());
        c.audio = Some(AudioTransport::SerialPcm {
            device: self.pcm_path(),
            sample_rate: 8000,
        });
        c
    }
}

impl Drop for SimModem {
    fn drop(&mut self) {
        let sh = &self.control.shared;
        sh.cancel.cancel();
        if let Some(l) = &sh.link {
            remove_link(l);
        }
        if let Some(l) = &sh.pcm_link {
            remove_link(l);
        }
    }
}

async fn exec(sh: &SimShared, pty: &Pty, outs: Vec<Out>) {
    for o in outs {
        match o {
            Out::Bytes(b) => {
                debug!(bytes = %String::from_utf8_lossy(&b).escape_debug(), "sim tx");
                if let Err(e) = pty.write_all(&b).await {
                    warn!(error = %e, "simulator write failed");
                }
            }
            Out::Sleep(d) => sleep(d).await,
            Out::Reboot(d) => {
                sleep(d).await;
                let mut junk = [0u8; 1024];
                while pty.try_read(&mut junk).is_ok_and(|n| n > 0) {}
                let urcs = sh.core.lock().boot_urcs();
                for u in urcs {
                    if let Out::Bytes(b) = u {
                        let _ = pty.write_all(&b).await;
                    }
                }
                sh.bump();
            }
            Out::Schedule(d, action) => {
                let tx = sh.cmds.clone();
                let cancel = sh.cancel.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        () = cancel.cancelled() => {}
                        () = sleep(d) => { let _ = tx.send(SimCmd::Fire(action)); }
                    }
                });
            }
            Out::FlushAudio => sh.flush_audio.store(true, Ordering::Relaxed),
        }
    }
}

async fn at_task(sh: Arc<SimShared>, pty: Pty, mut cmds: mpsc::UnboundedReceiver<SimCmd>) {
    let mut pty = Some(pty);
    let mut buf = vec![0u8; 4096];
    let mut earlier = Vec::new();
    loop {
        let read = async {
            match &pty {
                Some(p) => p.read(&mut buf).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sh.cancel.cancelled() => break,
            r = read => match r {
                Ok(n) => {
                    let input = buf.get(..n).unwrap_or_default().to_vec();
                    debug!(bytes = %String::from_utf8_lossy(&input).escape_debug(), "sim rx");
                    // Outputs of control operations whose changes this input sees go first.
                    let outs = {
                        let mut core = sh.core.lock();
                        while let Ok(c) = cmds.try_recv() {
                            earlier.push(c);
                        }
                        core.feed(&input)
                    };
                    sh.bump();
                    for c in earlier.drain(..) {
                        pty = run_cmd(&sh, pty, c).await;
                    }
                    if let Some(p) = &pty {
                        exec(&sh, p, outs).await;
                    }
                }
                Err(e) => {
                    warn!(error = %e, "simulator read failed");
                    sleep(Duration::from_millis(50)).await;
                }
            },
            c = cmds.recv() => match c {
                None => break,
                Some(c) => pty = run_cmd(&sh, pty, c).await,
            },
        }
    }
}

/// Carries out one queued command of the AT task; returns the AT pty (gone after a vanish
/// until it is re-created).
async fn run_cmd(sh: &SimShared, mut pty: Option<Pty>, c: SimCmd) -> Option<Pty> {
    match c {
        SimCmd::Out(outs) => {
            if let Some(p) = &pty {
                exec(sh, p, outs).await;
            }
        }
        SimCmd::Fire(a) => {
            let outs = sh.core.lock().fire(a);
            sh.bump();
            if let Some(p) = &pty {
                exec(sh, p, outs).await;
            }
        }
        SimCmd::Vanish(down) => {
            // Unplugged: the pty disappears (the gateway reads EIO), the modem loses
            // power, and comes back after `down` at a new pty. The new pty is opened
            // before the old one closes so that its number differs, as a
            // re-enumerated USB device gets a new ttyUSBn.
            let next = Pty::open();
            pty = None;
            if let Some(l) = &sh.link {
                remove_link(l);
            }
            let _ = sh.core.lock().reboot();
            let _ = sh.events.send(SimEvent::PortGone);
            sh.bump();
            sleep(down).await;
            match next {
                Ok(p) => {
                    if let Some(l) = &sh.link
                        && let Err(e) = point_link(l, p.path())
                    {
                        warn!(error = %e, "cannot re-point the AT symlink");
                    }
                    *sh.at_path.lock() = p.path().to_owned();
                    let _ = sh.events.send(SimEvent::PortRecreated {
                        path: p.path().to_owned(),
                    });
                    // No boot URCs: a re-enumerated modem has booted before the host
                    // opens its port, so the host never reads them.
                    pty = Some(p);
                    sh.bump();
                }
                Err(e) => warn!(error = %e, "cannot re-create the AT pty"),
            }
        }
    }
    pty
}

async fn pcm_task(sh: Arc<SimShared>, pty: Pty) {
    let mut tick = interval(Duration::from_millis(20));
    // Keep the average rate exact: late ticks are caught up.
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut inbuf = vec![0u8; 8192];
    let mut input = Vec::new();
    let mut frame = Vec::with_capacity(FRAME_SAMPLES * 2);
    loop {
        tokio::select! {
            () = sh.cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        if sh.flush_audio.swap(false, Ordering::Relaxed) {
            pty.flush();
        }
        input.clear();
        while input.len() < 64 * 1024 {
            match pty.try_read(&mut inbuf) {
                Ok(0) | Err(_) => break,
                Ok(n) => input.extend_from_slice(inbuf.get(..n).unwrap_or_default()),
            }
        }
        let active = sh.core.lock().audio_tick(&input, &mut frame);
        if active {
            // A real-time port drops what does not fit.
            let _ = pty.try_write(&frame);
            if !input.is_empty() {
                sh.bump();
            }
        }
    }
}

/// A read-only view of the simulator state, for [`SimControl::wait_for`] conditions.
pub struct SimView<'a> {
    core: &'a SimCore,
}

impl SimView<'_> {
    /// SMS parts the gateway sent.
    pub fn sent_sms(&self) -> &[SentSmsRecord] {
        &self.core.sent
    }

    /// Numbers the gateway dialled.
    pub fn dialled(&self) -> &[String] {
        &self.core.dialled
    }

    /// DTMF digits the gateway sent.
    pub fn dtmf_sent(&self) -> String {
        self.core.dtmf_sent.iter().collect()
    }

    /// USSD codes the gateway sent.
    pub fn ussd_requests(&self) -> &[String] {
        &self.core.ussd_requests
    }

    /// Every call so far.
    pub fn call_log(&self) -> &[SimCallRecord] {
        &self.core.call_log
    }

    /// Current calls as (id, direction, state, number).
    pub fn calls(&self) -> Vec<(u64, Direction, CallStat, String)> {
        self.core.calls()
    }

    /// Stored messages (index, stat, PDU).
    pub fn stored(&self) -> Vec<(u32, u8, String)> {
        self.core.stored()
    }

    /// Messages held back by the network (memory full).
    pub fn network_queue_len(&self) -> usize {
        self.core.network_queue_len()
    }

    /// Command lines received.
    pub fn commands(&self) -> &[String] {
        &self.core.commands
    }

    /// Reboots so far.
    pub fn reboots(&self) -> u32 {
        self.core.reboots
    }

    /// Samples recorded from the gateway.
    pub fn recorded_len(&self) -> usize {
        self.core.recorded().len()
    }

    /// Samples of caller audio still queued.
    pub fn audio_queued(&self) -> usize {
        self.core.audio_queued()
    }

    /// Whether the voice port is active.
    pub fn audio_active(&self) -> bool {
        self.core.audio_active()
    }
}

/// Control handle of a simulated modem. Cheap to clone.
#[derive(Clone)]
pub struct SimControl {
    shared: Arc<SimShared>,
}

impl std::fmt::Debug for SimControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimControl")
            .field("at", &self.at_path())
            .finish()
    }
}

impl SimControl {
    /// The path the gateway opens for AT (symlink when configured).
    pub fn at_path(&self) -> PathBuf {
        self.shared
            .link
            .clone()
            .unwrap_or_else(|| self.shared.at_path.lock().clone())
    }

    /// The current AT pty (`/dev/pts/N`), which changes when the port vanishes.
    pub fn at_pty(&self) -> PathBuf {
        self.shared.at_path.lock().clone()
    }

    /// The voice port path (symlink when configured).
    pub fn pcm_path(&self) -> PathBuf {
        self.shared
            .pcm_link
            .clone()
            .unwrap_or_else(|| self.shared.pcm_path.clone())
    }

    /// The simulated model.
    pub fn profile(&self) -> SimProfile {
        self.shared.core.lock().profile()
    }

    /// Simulator events.
    pub fn subscribe(&self) -> broadcast::Receiver<SimEvent> {
        self.shared.events.subscribe()
    }

    fn out(
        &self,
        f: impl FnOnce(&mut SimCore) -> Result<Vec<Out>, SimError>,
    ) -> Result<(), SimError> {
        self.shared.with(|c| f(c).map(|o| (o, ())))
    }

    // ------------------------------------------------------------- inject

    /// An SMS with `text` from `from` (split into a multipart message when long). Returns the
    /// PDUs delivered.
    pub fn send_sms(&self, from: &str, text: &str) -> Result<Vec<String>, SimError> {
        self.shared.with(|c| {
            let pdus = c.encode_sms(from, text)?;
            let mut out = Vec::new();
            for p in &pdus {
                out.extend(c.inject_pdu(p)?);
            }
            Ok((out, pdus))
        })
    }

    /// Encodes an SMS as DELIVER PDUs without delivering them (deliver with
    /// [`SimControl::send_pdu`], in any order).
    pub fn encode_sms(&self, from: &str, text: &str) -> Result<Vec<String>, SimError> {
        self.shared
            .with(|c| c.encode_sms(from, text).map(|p| (Vec::new(), p)))
    }

    /// Delivers a raw PDU (hex, SMSC field first).
    pub fn send_pdu(&self, hex: &str) -> Result<(), SimError> {
        self.out(|c| c.inject_pdu(hex))
    }

    /// An incoming call from `number`.
    pub fn incoming_call(&self, number: &str) -> Result<(), SimError> {
        self.out(|c| c.incoming_call(number))
    }

    /// The far end hangs up the most recent call (or stops ringing).
    pub fn remote_hangup(&self) -> Result<(), SimError> {
        self.out(SimCore::remote_hangup)
    }

    /// The far end of the simulator call `id` (see [`SimControl::calls`]) hangs up, e.g. the
    /// held one of two calls.
    pub fn remote_hangup_call(&self, id: u64) -> Result<(), SimError> {
        self.out(|c| c.remote_hangup_call(id))
    }

    /// The far end answers the outgoing call (dial outcome `Manual`).
    pub fn remote_answer(&self) -> Result<(), SimError> {
        self.out(SimCore::remote_answer)
    }

    /// The far end is busy.
    pub fn remote_busy(&self) -> Result<(), SimError> {
        self.out(SimCore::remote_busy)
    }

    /// The far end does not answer.
    pub fn remote_no_answer(&self) -> Result<(), SimError> {
        self.out(SimCore::remote_no_answer)
    }

    /// The far end presses `digits` (sent as the dialect's DTMF URCs; needs an active call).
    pub fn dtmf(&self, digits: &str) -> Result<(), SimError> {
        self.out(|c| c.dtmf(digits))
    }

    /// Queues the reply to the next USSD request.
    pub fn queue_ussd_reply(&self, script: UssdScript) -> Result<(), SimError> {
        self.out(|c| {
            c.queue_ussd(script);
            Ok(Vec::new())
        })
    }

    /// A network-initiated USSD message, now.
    pub fn ussd_notify(&self, script: &UssdScript) -> Result<(), SimError> {
        self.out(|c| Ok(c.ussd_now(script)))
    }

    /// A status report with TP-ST `status` for message reference `mr` sent to `to`.
    pub fn status_report(&self, mr: u8, to: &str, status: u8) -> Result<(), SimError> {
        self.out(|c| c.status_report(mr, to, status))
    }

    /// Queues caller audio (8 kHz samples) for the voice port.
    pub fn queue_audio(&self, samples: &[i16]) -> Result<(), SimError> {
        self.out(|c| {
            c.queue_audio(samples);
            Ok(Vec::new())
        })
    }

    /// Writes a line as a URC (`\r\n<line>\r\n`).
    pub fn send_urc(&self, line: &str) -> Result<(), SimError> {
        let bytes = format!("\r\n{line}\r\n").into_bytes();
        self.shared
            .cmds
            .send(SimCmd::Out(vec![Out::Bytes(bytes)]))
            .map_err(|_| SimError::Stopped)
    }

    /// Writes raw bytes to the AT port (garbage, NULs, partial lines).
    pub fn send_garbage(&self, bytes: &[u8]) -> Result<(), SimError> {
        self.shared
            .cmds
            .send(SimCmd::Out(vec![Out::Bytes(bytes.to_vec())]))
            .map_err(|_| SimError::Stopped)
    }

    // ------------------------------------------------------------- faults

    /// Delays every reply by `d`.
    pub fn set_reply_delay(&self, d: Duration) {
        let _ = self.out(|c| {
            c.faults.reply_delay = d;
            Ok(Vec::new())
        });
    }

    /// Ignores the next `n` command lines completely.
    pub fn drop_replies(&self, n: u32) {
        let _ = self.out(|c| {
            c.faults.drop_replies = n;
            Ok(Vec::new())
        });
    }

    /// Stops (or resumes) answering anything.
    pub fn set_unresponsive(&self, on: bool) {
        let _ = self.out(|c| {
            c.faults.unresponsive = on;
            Ok(Vec::new())
        });
    }

    /// The next `n` `AT+CPIN?` answer `+CME ERROR: 14` (SIM busy).
    pub fn set_sim_busy(&self, n: u32) {
        let _ = self.out(|c| {
            c.faults.sim_busy = n;
            Ok(Vec::new())
        });
    }

    /// Forces a full SMS memory (or clears it; held-back messages are then delivered).
    pub fn set_memory_full(&self, full: bool) -> Result<(), SimError> {
        self.out(|c| Ok(c.set_memory_full(full)))
    }

    /// The next `times` commands starting with `prefix` (e.g. `AT+CMGS`) get `action`; for
    /// `AT+CMGS`/`AT+CMGW` it applies when the body arrives (a reboot "in the middle of a
    /// send"). [`FaultAction::NoReply`] on `AT+CMSS` sends the message and loses the reply.
    pub fn fail_next(&self, prefix: &str, action: FaultAction, times: u32) {
        self.fail_after(prefix, 0, action, times);
    }

    /// Like [`SimControl::fail_next`], but the first `skip` matching commands go through
    /// normally (e.g. the second part of a multipart send fails).
    pub fn fail_after(&self, prefix: &str, skip: u32, action: FaultAction, times: u32) {
        let _ = self.out(|c| {
            c.add_trigger(prefix, action, skip, times);
            Ok(Vec::new())
        });
    }

    /// Makes the network refuse (or allow again) explicit call transfer (`AT+CHLD=4`
    /// answers `+CME ERROR: 3`).
    pub fn set_ect_refused(&self, refused: bool) {
        let _ = self.out(|c| {
            c.faults.ect_refused = refused;
            Ok(Vec::new())
        });
    }

    /// Reboots now (`RDY`/`^BOOT` after the boot delay; calls and settings are lost, stored
    /// SMS are kept).
    pub fn reboot(&self) -> Result<(), SimError> {
        self.out(|c| Ok(c.reboot()))
    }

    /// Unplugs the modem: the AT pty is closed, and after `down` re-created at a new pty
    /// (the symlink, if configured, follows), with the modem freshly booted.
    pub fn vanish(&self, down: Duration) -> Result<(), SimError> {
        self.shared
            .cmds
            .send(SimCmd::Vanish(down))
            .map_err(|_| SimError::Stopped)
    }

    // ---------------------------------------------------------- read back

    /// Reads the state through a [`SimView`].
    pub fn view<T>(&self, f: impl FnOnce(&SimView<'_>) -> T) -> T {
        let core = self.shared.core.lock();
        f(&SimView { core: &core })
    }

    /// SMS parts the gateway sent.
    pub fn sent_sms(&self) -> Vec<SentSmsRecord> {
        self.view(|v| v.sent_sms().to_vec())
    }

    /// Whole messages the gateway sent, parts joined in sequence order: (recipient, text).
    pub fn sent_messages(&self) -> Vec<(String, String)> {
        struct Joining {
            to: String,
            key: Option<(u16, u8)>,
            parts: Vec<(u8, String)>,
        }
        let mut out: Vec<Joining> = Vec::new();
        for p in self.sent_sms() {
            let key = p.concat.map(|(r, t, _)| (r, t));
            let seq = p.concat.map_or(1, |(_, _, s)| s);
            let text = p.text.clone().unwrap_or_default();
            let open = out.iter_mut().find(|j| {
                key.is_some()
                    && j.to == p.to
                    && j.key == key
                    && j.parts.len() < usize::from(key.map_or(1, |k| k.1))
            });
            match open {
                Some(j) => j.parts.push((seq, text)),
                None => out.push(Joining {
                    to: p.to.clone(),
                    key,
                    parts: vec![(seq, text)],
                }),
            }
        }
        out.into_iter()
            .map(|mut j| {
                j.parts.sort_by_key(|(s, _)| *s);
                (j.to, j.parts.into_iter().map(|(_, t)| t).collect())
            })
            .collect()
    }

    /// Numbers dialled.
    pub fn dialled(&self) -> Vec<String> {
        self.view(|v| v.dialled().to_vec())
    }

    /// DTMF digits the gateway sent.
    pub fn dtmf_sent(&self) -> String {
        self.view(|v| v.dtmf_sent())
    }

    /// Every call so far.
    pub fn call_log(&self) -> Vec<SimCallRecord> {
        self.view(|v| v.call_log().to_vec())
    }

    /// Stored messages (index, stat, PDU).
    pub fn stored(&self) -> Vec<(u32, u8, String)> {
        self.view(|v| v.stored())
    }

    /// Current calls as (simulator call id, direction, state, number).
    pub fn calls(&self) -> Vec<(u64, Direction, CallStat, String)> {
        self.view(|v| v.calls())
    }

    /// Waits until the current calls, as (number, state) sorted by number, equal `want`.
    pub async fn wait_for_calls(
        &self,
        want: &[(&str, CallStat)],
        limit: Duration,
    ) -> Result<(), SimError> {
        let mut want: Vec<(String, CallStat)> =
            want.iter().map(|(n, s)| ((*n).to_owned(), *s)).collect();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        self.wait_for(&format!("calls {want:?}"), limit, |v| {
            let mut now: Vec<(String, CallStat)> =
                v.calls().into_iter().map(|(_, _, s, n)| (n, s)).collect();
            now.sort_by(|a, b| a.0.cmp(&b.0));
            (now == want).then_some(())
        })
        .await
    }

    /// Command lines received from the gateway.
    pub fn commands(&self) -> Vec<String> {
        self.view(|v| v.commands().to_vec())
    }

    /// What the gateway sent on the voice port (8 kHz samples), so far.
    pub fn recorded_audio(&self) -> Vec<i16> {
        self.shared.core.lock().recorded().to_vec()
    }

    /// Takes the recording (it starts empty again).
    pub fn take_recorded_audio(&self) -> Vec<i16> {
        self.shared.core.lock().take_recorded()
    }

    /// Waits until `f` returns `Some` (checked after every state change), at most `limit`.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        limit: Duration,
        f: impl Fn(&SimView<'_>) -> Option<T>,
    ) -> Result<T, SimError> {
        let mut rx = self.shared.changed.subscribe();
        let fut = async {
            loop {
                if let Some(v) = self.view(&f) {
                    return Ok(v);
                }
                if rx.changed().await.is_err() {
                    return Err(SimError::Stopped);
                }
            }
        };
        timeout(limit, fut)
            .await
            .map_err(|_| SimError::Timeout(what.to_owned()))?
    }

    /// Waits until the gateway has sent at least `n` SMS parts.
    pub async fn wait_for_sent_sms(
        &self,
        n: usize,
        limit: Duration,
    ) -> Result<Vec<SentSmsRecord>, SimError> {
        self.wait_for(&format!("{n} sent SMS parts"), limit, |v| {
            (v.sent_sms().len() >= n).then(|| v.sent_sms().to_vec())
        })
        .await
    }

    /// Waits until the gateway has dialled at least `n` numbers.
    pub async fn wait_for_dialled(
        &self,
        n: usize,
        limit: Duration,
    ) -> Result<Vec<String>, SimError> {
        self.wait_for(&format!("{n} dialled numbers"), limit, |v| {
            (v.dialled().len() >= n).then(|| v.dialled().to_vec())
        })
        .await
    }

    /// Waits until the gateway has sent at least `n` DTMF digits.
    pub async fn wait_for_dtmf_sent(&self, n: usize, limit: Duration) -> Result<String, SimError> {
        self.wait_for(&format!("{n} DTMF digits"), limit, |v| {
            let d = v.dtmf_sent();
            (d.chars().count() >= n).then_some(d)
        })
        .await
    }

    /// Waits until the storage holds exactly `n` messages.
    pub async fn wait_for_stored(&self, n: usize, limit: Duration) -> Result<(), SimError> {
        self.wait_for(&format!("{n} stored SMS"), limit, |v| {
            (v.stored().len() == n).then_some(())
        })
        .await
    }

    /// Waits until the voice port is (in)active.
    pub async fn wait_for_audio(&self, active: bool, limit: Duration) -> Result<(), SimError> {
        self.wait_for("voice port state", limit, |v| {
            (v.audio_active() == active).then_some(())
        })
        .await
    }

    /// Waits until at least `n` samples were recorded from the gateway.
    pub async fn wait_for_recorded(&self, n: usize, limit: Duration) -> Result<(), SimError> {
        self.wait_for(&format!("{n} recorded samples"), limit, |v| {
            (v.recorded_len() >= n).then_some(())
        })
        .await
    }

    /// Waits until no call exists.
    pub async fn wait_for_no_calls(&self, limit: Duration) -> Result<(), SimError> {
        self.wait_for("no calls", limit, |v| v.calls().is_empty().then_some(()))
            .await
    }

    /// Waits until a command line starting with `prefix` has been received `n` times.
    pub async fn wait_for_command(
        &self,
        prefix: &str,
        n: usize,
        limit: Duration,
    ) -> Result<(), SimError> {
        let p = prefix.to_ascii_uppercase();
        self.wait_for(&format!("{n}× {prefix}"), limit, |v| {
            (v.commands()
                .iter()
                .filter(|c| c.to_ascii_uppercase().starts_with(&p))
                .count()
                >= n)
                .then_some(())
        })
        .await
    }
}
