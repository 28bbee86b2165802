//! Shared rig for the driver-against-simulator tests: a simulated modem on a real pty, the real
//! driver on the real serial code, and helpers that wait for events (never sleep).

#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::time::Duration;

use flowgate_board::modem::events::ModemState;
use flowgate_board::modem::{
    AudioTransport, CallId, InboundSms, Modem, ModemConfig, ModemEvent, ModemHandle,
};
use flowgate_board::simulator::{SimulatedModel, Simulator, SimulatorConfig, SimulatorControl};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// Generous limit for waits: they return as soon as the condition holds, so a long limit only
/// matters when a test fails.
pub const WAIT: Duration = Duration::from_secs(20);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

pub struct Rig {
    pub sim: Simulator,
    pub ctl: SimulatorControl,
    pub modem: ModemHandle,
    pub events: broadcast::Receiver<ModemEvent>,
    pub sms: mpsc::UnboundedReceiver<InboundSms>,
    pub cancel: CancellationToken,
    pub config: ModemConfig,
    pub dir: tempfile::TempDir,
}

/// A driver configuration suited to tests: quick CLCC polls and sweeps off the clock.
pub fn test_config(at: &Path, pcm: &Path, id: &str) -> ModemConfig {
    let mut c = ModemConfig::new(id, at);
    c.audio = Some(AudioTransport::SerialPcm {
        device: pcm.to_owned(),
        sample_rate: 8000,
    });
    c.refresh_interval_ms = 3_600_000;
    c.call_poll_interval_ms = 300;
    c.sms.sweep_interval_ms = 3_600_000;
    c.recovery.retry_after_give_up_ms = None;
    c.recovery.reopen_backoff.initial_ms = 50;
    c.recovery.reopen_backoff.max_ms = 500;
    c.recovery.sim_backoff.initial_ms = 50;
    c.recovery.sim_backoff.max_ms = 500;
    c
}

impl Rig {
    pub async fn start(profile: SimulatedModel) -> Rig {
        Self::start_with(profile, |_, _| {}).await
    }

    pub async fn start_with(
        profile: SimulatedModel,
        tweak: impl FnOnce(&mut SimulatorConfig, &mut ModemConfig),
    ) -> Rig {
        Self::start_full(profile, tweak, |_| {}).await
    }

    /// Like `start_with`, and `on_sim` runs on the simulator before the driver starts.
    pub async fn start_full(
        profile: SimulatedModel,
        tweak: impl FnOnce(&mut SimulatorConfig, &mut ModemConfig),
        on_sim: impl FnOnce(&SimulatorControl),
    ) -> Rig {
        init_tracing();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sc = SimulatorConfig::new(profile);
        sc.link = Some(dir.path().join("at"));
        sc.pcm_link = Some(dir.path().join("pcm"));
        sc.ring_interval_ms = None;
        let mut mc = test_config(&dir.path().join("at"), &dir.path().join("pcm"), "m0");
        tweak(&mut sc, &mut mc);
        let sim = Simulator::start(sc).expect("sim");
        let ctl = sim.control();
        on_sim(&ctl);
        let cancel = CancellationToken::new();
        let modem = Modem::spawn(mc.clone(), sim.vendor_profile(), cancel.clone());
        let events = modem.subscribe();
        let sms = modem.take_sms_receiver().expect("sms receiver");
        Rig {
            sim,
            ctl,
            modem,
            events,
            sms,
            cancel,
            config: mc,
            dir,
        }
    }

    /// A gateway crash and restart: the driver is cancelled wherever it stands (nothing is
    /// cleaned up, like `kill -9`: a command in flight is never answered to it) and a new
    /// driver starts on the same simulated modem, which keeps its storage and whatever state
    /// the dead driver left it in.
    pub async fn crash_and_restart(&mut self) {
        self.cancel.cancel();
        let mut rx = self.modem.watch_status();
        tokio::time::timeout(WAIT, rx.wait_for(|s| s.state == ModemState::Stopped))
            .await
            .expect("old driver stopped")
            .expect("status watch");
        self.cancel = CancellationToken::new();
        self.modem = Modem::spawn(
            self.config.clone(),
            self.sim.vendor_profile(),
            self.cancel.clone(),
        );
        self.events = self.modem.subscribe();
        self.sms = self.modem.take_sms_receiver().expect("sms receiver");
    }

    pub async fn ready(&self) {
        self.modem.wait_ready(WAIT).await.expect("modem ready");
    }

    /// Ready, and done with what the driver does by itself once ready: the start-up SMS sweep
    /// (`memories` listings, one per memory it reads: receive, write, status reports) and the
    /// first call poll. What a test injects next then meets an idle driver, not a command in
    /// flight; without this, whether a reply dropped or a reboot swallowed a sweep command or
    /// the test's own was up to the scheduler.
    pub async fn settled(&self, memories: usize) {
        self.ready().await;
        self.ctl
            .wait_for_command("AT+CMGL=4", memories, WAIT)
            .await
            .expect("start-up sweep");
        self.ctl
            .wait_for_command("AT+CLCC", 1, WAIT)
            .await
            .expect("first call poll");
        // Queued behind the last listing: once this is answered the sweep has nothing left
        // to send (an empty memory needs no reads or deletes).
        self.modem.command("AT", WAIT).await.expect("AT");
    }

    /// Waits for the first event matching `f`.
    pub async fn event<T>(&mut self, what: &str, f: impl Fn(&ModemEvent) -> Option<T>) -> T {
        let fut = async {
            loop {
                match self.events.recv().await {
                    Ok(e) => {
                        if let Some(v) = f(&e) {
                            return v;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        panic!("lagged {n} events waiting for {what}")
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        panic!("events closed waiting for {what}")
                    }
                }
            }
        };
        tokio::time::timeout(WAIT, fut)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }

    /// `from` rings in; returns the call once the driver reports it.
    pub async fn incoming(&mut self, from: &str) -> CallId {
        self.ctl.incoming_call(from).unwrap();
        self.event("incoming call", |e| match e {
            ModemEvent::IncomingCall { call, .. } => Some(*call),
            _ => None,
        })
        .await
    }

    /// `from` rings in and the gateway answers.
    pub async fn answered(&mut self, from: &str) -> CallId {
        let call = self.incoming(from).await;
        self.modem.answer(call).await.unwrap();
        call
    }

    /// Waits for the voice port of an answered call.
    pub async fn audio_ready(&mut self) {
        self.event("audio ready", |e| {
            matches!(e, ModemEvent::AudioReady { .. }).then_some(())
        })
        .await;
    }

    pub async fn next_sms(&mut self) -> InboundSms {
        tokio::time::timeout(WAIT, self.sms.recv())
            .await
            .expect("timed out waiting for an SMS")
            .expect("SMS channel closed")
    }

    pub async fn state(&mut self, what: &str, f: impl Fn(&ModemState) -> bool) -> ModemState {
        let mut rx = self.modem.watch_status();
        let r = tokio::time::timeout(WAIT, rx.wait_for(|s| f(&s.state))).await;
        match r {
            Ok(Ok(s)) => s.state.clone(),
            _ => panic!(
                "timed out waiting for state {what}; now {:?}",
                self.modem.status().state
            ),
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Short command timeouts and recovery waits for tests that make the modem fail.
pub fn fast_timeouts(mc: &mut ModemConfig) {
    mc.timeouts.short_ms = 400;
    mc.timeouts.default_ms = 700;
    mc.timeouts.prompt_ms = 700;
    mc.timeouts.long_ms = 1_000;
    mc.timeouts.list_ms = 1_000;
    mc.timeouts.sim_ms = 700;
    mc.recovery.boot_wait_ms = 800;
    mc.recovery.resync_attempts = 2;
}
