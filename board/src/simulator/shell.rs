//! The simulator's I/O shell: [`Simulator`] owns the two ptys and runs the AT-port task
//! (bytes to and from the sans-IO core, timers, reboots, a vanishing port) and the voice-port
//! task (one 20 ms frame each tick). [`SimulatorControl`](super::SimulatorControl) reaches the
//! core through the shared state defined here.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::{MissedTickBehavior, interval, sleep};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::control::SimulatorControl;
use super::core::{FRAME_SAMPLES, Out, Scheduled, SimCore};
use super::pty::{Pty, point_link, remove_link};
use super::{SimulatorConfig, SimulatorError, SimulatorEvent};
use crate::modem::config::{AudioTransport, ModemConfig};
use crate::modem::profile::VendorProfile;

pub(super) enum SimCmd {
    Out(Vec<Out>),
    Fire(Scheduled),
    Vanish(Duration),
}

pub(super) struct SimShared {
    pub(super) core: Mutex<SimCore>,
    pub(super) events: broadcast::Sender<SimulatorEvent>,
    pub(super) changed: watch::Sender<u64>,
    pub(super) cmds: mpsc::UnboundedSender<SimCmd>,
    pub(super) at_path: Mutex<PathBuf>,
    pub(super) pcm_path: PathBuf,
    pub(super) link: Option<PathBuf>,
    pub(super) pcm_link: Option<PathBuf>,
    flush_audio: AtomicBool,
    cancel: CancellationToken,
}

impl SimShared {
    pub(super) fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Runs `f` on the core, sends its outputs to the AT task, and wakes waiters. The
    /// outputs are queued while the core is still locked: the AT task takes queued outputs
    /// under the same lock before it answers a command, so a reply that reflects a change
    /// is never written before the URCs announcing it (a `+CLCC` list without the call whose
    /// `NO ANSWER` has not been sent yet).
    pub(super) fn with<T>(
        &self,
        f: impl FnOnce(&mut SimCore) -> Result<(Vec<Out>, T), SimulatorError>,
    ) -> Result<T, SimulatorError> {
        let v = {
            let mut core = self.core.lock();
            let (out, v) = f(&mut core)?;
            if !out.is_empty() {
                self.cmds
                    .send(SimCmd::Out(out))
                    .map_err(|_| SimulatorError::Stopped)?;
            }
            v
        };
        self.bump();
        Ok(v)
    }
}

/// A running simulated modem. Dropping it stops the simulator and removes its symlinks.
pub struct Simulator {
    control: SimulatorControl,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("at", &self.at_path())
            .field("pcm", &self.pcm_path())
            .finish()
    }
}

impl Simulator {
    /// Starts the simulator (needs a tokio runtime): opens the ptys, creates the symlinks,
    /// spawns the AT and voice tasks.
    pub fn start(config: SimulatorConfig) -> Result<Self, SimulatorError> {
        let io = |e: std::io::Error| SimulatorError::Io(e.to_string());
        let at = Pty::open().map_err(io)?;
        let pcm = Pty::open().map_err(io)?;
        if let Some(l) = &config.link {
            point_link(l, at.path())
                .map_err(|e| SimulatorError::Io(format!("link {}: {e}", l.display())))?;
        }
        if let Some(l) = &config.pcm_link {
            point_link(l, pcm.path())
                .map_err(|e| SimulatorError::Io(format!("link {}: {e}", l.display())))?;
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
            control: SimulatorControl::new(shared),
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
    pub fn control(&self) -> SimulatorControl {
        self.control.clone()
    }

    /// The driver's vendor profile for this simulated model.
    pub fn vendor_profile(&self) -> VendorProfile {
        let id = self.control.model().vendor_profile_id();
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

impl Drop for Simulator {
    fn drop(&mut self) {
        let sh = self.control.shared();
        sh.cancel.cancel();
        if let Some(l) = &sh.link {
            remove_link(l);
        }
        if let Some(l) = &sh.pcm_link {
            remove_link(l);
        }
    }
}

/// Writes `bytes` to the AT port.
async fn write(pty: &Pty, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    debug!(bytes = %String::from_utf8_lossy(bytes).escape_debug(), "sim tx");
    if let Err(e) = pty.write_all(bytes).await {
        warn!(error = %e, "simulator write failed");
    }
}

async fn exec(sh: &SimShared, pty: &Pty, outs: Vec<Out>) {
    // Consecutive lines go out in one write, as they stream from a real modem's UART: a
    // client that groups a URC with the lines already waiting (`RING` and its `+CLIP`) sees
    // them together.
    let mut pending = Vec::new();
    for o in outs {
        if let Out::Bytes(b) = &o {
            pending.extend_from_slice(b);
            continue;
        }
        write(pty, &std::mem::take(&mut pending)).await;
        match o {
            Out::Bytes(_) => {}
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
    write(pty, &pending).await;
}

async fn at_task(sh: Arc<SimShared>, pty: Pty, mut cmds: mpsc::UnboundedReceiver<SimCmd>) {
    let mut pty = Some(pty);
    let mut buf = vec![0u8; 4096];
    let mut earlier = Vec::new();
    let mut later = Vec::new();
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
                    // Outputs of control operations whose changes this input sees go first;
                    // timers and port losses queued meanwhile act after the input, so their
                    // URCs follow the reply (which does not reflect them).
                    let outs = {
                        let mut core = sh.core.lock();
                        while let Ok(c) = cmds.try_recv() {
                            match c {
                                SimCmd::Out(_) => earlier.push(c),
                                _ => later.push(c),
                            }
                        }
                        if earlier.iter().any(reboots) {
                            // A control reboot already reset the core, and its boot delay
                            // runs below: this input reached a modem that is booting. A
                            // real one loses it; answered here, the answer came after the
                            // boot URCs, where the gateway (which gave the command up at
                            // `RDY`) took it for the answer to its next command, and every
                            // answer after it for the one before (a listing taken for
                            // another memory's, a delete's `OK` for a memory select's).
                            debug!(bytes = %String::from_utf8_lossy(&input).escape_debug(), "sim rx while booting: dropped");
                            Vec::new()
                        } else {
                            core.feed(&input)
                        }
                    };
                    sh.bump();
                    for c in earlier.drain(..) {
                        pty = run_cmd(&sh, pty, c).await;
                    }
                    if let Some(p) = &pty {
                        exec(&sh, p, outs).await;
                    }
                    for c in later.drain(..) {
                        pty = run_cmd(&sh, pty, c).await;
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

/// Whether a queued command is a reboot (its boot delay and boot URCs still to come).
fn reboots(c: &SimCmd) -> bool {
    matches!(c, SimCmd::Out(outs) if outs.iter().any(|o| matches!(o, Out::Reboot(_))))
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
            let _ = sh.events.send(SimulatorEvent::PortGone);
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
                    let _ = sh.events.send(SimulatorEvent::PortRecreated {
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

/// Voice audio the simulator keeps for a host that reads late: 100 ms (5 frames), as the
/// daemon keeps for its writes.
const MAX_PENDING: usize = 5 * FRAME_SAMPLES * 2;

async fn pcm_task(sh: Arc<SimShared>, pty: Pty) {
    let mut tick = interval(Duration::from_millis(20));
    // Keep the average rate exact: late ticks are caught up.
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut inbuf = vec![0u8; 8192];
    let mut input = Vec::new();
    let mut frame = Vec::with_capacity(FRAME_SAMPLES * 2);
    // Audio the host has not taken yet, at most `MAX_PENDING` bytes.
    let mut out: Vec<u8> = Vec::with_capacity(MAX_PENDING + FRAME_SAMPLES * 2);
    loop {
        tokio::select! {
            () = sh.cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        if sh.flush_audio.swap(false, Ordering::Relaxed) {
            pty.flush();
            out.clear();
        }
        input.clear();
        while input.len() < 64 * 1024 {
            match pty.try_read(&mut inbuf) {
                Ok(0) | Err(_) => break,
                Ok(n) => input.extend_from_slice(inbuf.get(..n).unwrap_or_default()),
            }
        }
        let (active, drained) = {
            let mut core = sh.core.lock();
            let queued = core.audio.queued();
            let active = core.audio.tick(&input, &mut frame);
            (active, queued > 0 && core.audio.queued() == 0)
        };
        if drained {
            // The caller's queued audio is all out: a state change `wait_for` can see.
            sh.bump();
        }
        if active {
            out.extend_from_slice(&frame);
            // A real-time port drops what the host does not read in time, but whole
            // samples: the part of a frame the pty did not take waits for the next tick
            // (dropping it shifted every later sample by a byte under load, and the host
            // heard noise), and only an even number of the oldest bytes is dropped.
            if out.len() > MAX_PENDING {
                let excess = (out.len() - MAX_PENDING + 1) & !1;
                out.drain(..excess);
            }
            if let Ok(n) = pty.try_write(&out) {
                out.drain(..n);
            }
            if !input.is_empty() {
                sh.bump();
            }
        } else {
            out.clear();
        }
    }
}
