//! The daemon, `flowgate run`: opens the store, brings up the board (the simulated modem by
//! default), starts the runtime and the LAN API, and shuts everything down in order.
//!
//! # Tasks
//!
//! ```text
//! root CancellationToken
//!  ├─ modem driver tasks (one set per modem)       board
//!  ├─ SIP user agent + the `sip` line's task         sip
//!  ├─ analog port runner threads (one per port)     board (crate::analog)
//!  ├─ runtime: runners, SMS in/out, call events     runtime
//!  ├─ webhooks, event retention                     sync
//!  └─ HTTP server                                   api
//! ```
//!
//! Shutdown (SIGTERM/SIGINT): stop accepting requests, hang up every call (so no caller is
//! left in silence), cancel the tasks, wait for them, flush the store, exit 0. Under systemd
//! it reports READY after the API listens, and pings the watchdog (at most at half its
//! interval) only after the store has proved it still writes. A store that stops taking
//! writes makes `flowgate run` exit with status 70 (see [`crate::store::watchdog`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flowgate_board::boards::BoardProfile;
use flowgate_board::modem::Modem;
#[cfg(feature = "simulator")]
use flowgate_board::simulator::Simulator;
/// No simulated modem in a build without the simulator (uninhabited).
#[cfg(not(feature = "simulator"))]
type Simulator = std::convert::Infallible;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::api::SimulatorControl;
use crate::api::auth::{ApiToken, TokenOrigin};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::notify::ServiceNotifier;
use crate::runtime::{Modems, Runtime, RuntimeError, RuntimeOptions, SmsPolicy};
use crate::store::watchdog::{WatchdogTiming, run_probe_hook, watch_writes};
use crate::store::{Db, Store, StoreError, StoreOptions};

/// Why the daemon could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The data directory is unusable.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The store failed to open or flush.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The API token could not be read or created.
    #[error("API token in {path}: {source}")]
    Token {
        /// The data directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The board could not be brought up.
    #[error("board {profile}: {reason}")]
    Board {
        /// The profile named in the config.
        profile: String,
        /// What went wrong.
        reason: String,
    },
    /// The API could not listen.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Recovery after a restart failed.
    #[error("recovering state after a restart: {0}")]
    Recover(#[from] RuntimeError),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// SIP could not start.
    #[error(transparent)]
    Sip(#[from] crate::sip::SipStartError),
}

/// A running gateway.
pub struct Daemon {
    addr: SocketAddr,
    token: ApiToken,
    token_origin: TokenOrigin,
    runtime: Runtime,
    /// The simulated modems, by modem id, in board order.
    sims: Vec<(String, Simulator)>,
    /// The analog ports.
    analog: crate::analog::AnalogPorts,
    cancel: CancellationToken,
    server: tokio::task::JoinHandle<()>,
    store: Store,
    store_stalled: CancellationToken,
    /// The SIP user agent and its line, when `[sip]` is enabled.
    sip: Option<crate::sip::Sip>,
}

impl Daemon {
    /// Starts everything; returns once the API listens.
    pub async fn start(config: Config) -> Result<Self, DaemonError> {
        // The image's tzdata (`$TZDIR`, else /usr/share/zoneinfo); a no-op when the CLI has
        // installed it already.
        flowgate_flows::tz::install(std::sync::Arc::new(
            flowgate_flows::tz::ZoneinfoDir::from_env(),
        ));
        config.validate()?;
        // Read the CA bundle now, so a missing one is in the start-up log, not first found
        // by a webhook.
        crate::tls::Roots::get().log();
        let data = config.data.dir.clone();
        create_data_dir(&data)?;
        let store = Store::open(
            &data,
            &StoreOptions {
                cache_bytes: config.data.cache_mib.saturating_mul(1024 * 1024),
                ..StoreOptions::default()
            },
        )?;
        let db = Db::new(store.clone())?;
        let (token, token_origin) =
            ApiToken::load_or_create(&data).map_err(|source| DaemonError::Token {
                path: data.clone(),
                source,
            })?;

        let cancel = CancellationToken::new();
        let (modems, sims) = start_board(&config, &cancel)?;
        let (sip, sip_notices) = match crate::sip::Sip::start(&config).await? {
            Some((sip, notices)) => (Some(sip), Some(notices)),
            None => (None, None),
        };
        let analog = start_analog(&config, &cancel)?;

        let metrics = Arc::new(Metrics::default());
        let guards = flowgate_flows::engine::Guards {
            max_executions: config.engine.max_executions,
            max_iterations_per_run: u32::try_from(config.engine.max_iterations_per_run)
                .unwrap_or(u32::MAX),
            // The config counts follow-up hops; the engine refuses a count that reaches its cap.
            max_complete_count: config.engine.max_chain_depth.saturating_add(1),
            // Checked by the config validation; resolved when a `condition_datetime` runs.
            timezone: config.engine.timezone.clone(),
            ..flowgate_flows::engine::Guards::default()
        };
        let media = crate::media::MediaContext::new(crate::media::MediaSettings::from_config(
            &data,
            &config.media,
        ))
        .map_err(|e| DaemonError::Board {
            profile: config.board.profile.clone(),
            reason: format!("media layer: {e}"),
        })?;
        let options = RuntimeOptions {
            guards,
            http_timeout: Duration::from_millis(config.http.timeout_ms),
            max_response_bytes: config.http.max_response_bytes,
            sms: SmsPolicy {
                attempts: config.sms.send_attempts,
                retry_base: Duration::from_secs(config.sms.retry_base_secs),
                delivery_reports: config.sms.delivery_reports,
            },
            media: Some(media),
            ring_timeout: Duration::from_secs(config.calls.ring_timeout_secs),
            routes: crate::runtime::Routes::new(config.routes.clone()),
            lines: sip_lines(sip.as_ref())
                .into_iter()
                .chain(analog.as_lines())
                .collect(),
            email: config.email.clone(),
            transcribe: config.transcribe.clone(),
        };
        let runtime = Runtime::new(
            db,
            modems,
            options,
            Arc::clone(&metrics),
            cancel.child_token(),
        );
        let report = runtime.recover().await?;
        if report.resumed + report.ended_calls + report.message_flows_started > 0 {
            info!(
                resumed = report.resumed,
                ended_calls = report.ended_calls,
                message_flows = report.message_flows_started,
                "recovered state from the previous run"
            );
        }
        runtime.start_services();
        if let Some(notices) = sip_notices {
            crate::sip::spawn_notices(runtime.db().clone(), notices, cancel.child_token());
        }
        analog.spawn_status_events(&runtime, &cancel);
        crate::sync::spawn_webhooks(&runtime, &config, cancel.child_token());

        let listener = tokio::net::TcpListener::bind(&config.api.listen)
            .await
            .map_err(|source| DaemonError::Listen {
                addr: config.api.listen.clone(),
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| DaemonError::Listen {
                addr: config.api.listen.clone(),
                source,
            })?;
        let state = crate::api::ApiState::new(
            runtime.clone(),
            token.clone(),
            config.clone(),
            sims.iter()
                .map(|(id, sim)| (id.clone(), control_of(sim)))
                .collect(),
        )
        .with_sip(sip.as_ref().map(|s| s.user_agent().clone()))
        .with_analog(analog.clone());
        let server_cancel = cancel.child_token();
        let server = tokio::spawn(async move {
            if let Err(e) = crate::api::serve(listener, state, server_cancel).await {
                error!(cause = %e, "API server stopped");
            }
        });
        info!(%addr, board = %config.board.profile, "flowgate is up");
        let store_stalled = CancellationToken::new();
        start_watchdog(&store, &cancel, &store_stalled);
        Ok(Self {
            addr,
            token,
            token_origin,
            runtime,
            sims,
            analog,
            cancel,
            server,
            store,
            store_stalled,
            sip,
        })
    }

    /// SIP, when enabled (the user agent's address, the demo extension).
    pub fn sip(&self) -> Option<&crate::sip::Sip> {
        self.sip.as_ref()
    }

    /// Where the API listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API token.
    pub fn token(&self) -> &ApiToken {
        &self.token
    }

    /// Whether the token was generated by this start (print it once).
    pub fn token_was_created(&self) -> bool {
        self.token_origin == TokenOrigin::Created
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The simulators' control handles (one per simulated modem, in board order).
    pub fn sims(&self) -> Vec<SimulatorControl> {
        self.sims.iter().map(|(_, sim)| control_of(sim)).collect()
    }

    /// The analog ports (lines, and the simulated board's control when it runs).
    pub fn analog(&self) -> &crate::analog::AnalogPorts {
        &self.analog
    }

    /// Resolves when the store has stopped taking writes (see [`crate::store::watchdog`]).
    /// An orderly shutdown is then impossible (its final flush would hang): exit at once and
    /// let the supervisor restart the gateway.
    pub async fn store_stalled(&self) {
        self.store_stalled.cancelled().await;
    }

    /// Orderly shutdown: hang up calls, stop tasks, flush the store.
    pub async fn shutdown(self) -> Result<(), DaemonError> {
        info!("shutting down");
        ServiceNotifier::from_env().stopping();
        // Callers first: nobody should be left listening to silence.
        let hangups = tokio::time::timeout(Duration::from_secs(5), self.runtime.hangup_all());
        if hangups.await.is_err() {
            warn!("some calls did not hang up within 5 s");
        }
        if let Some(sip) = &self.sip {
            // After the hang-ups (their BYEs are out): ends the user agent's task.
            let stop = sip.user_agent().shutdown();
            if tokio::time::timeout(Duration::from_secs(5), stop)
                .await
                .is_err()
            {
                warn!("the SIP user agent did not stop within 5 s");
            }
        }
        self.cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.server).await;
        if tokio::time::timeout(Duration::from_secs(10), self.runtime.wait_stopped())
            .await
            .is_err()
        {
            warn!("some tasks did not stop within 10 s");
        }
        self.store.flush().await?;
        drop(self.sims);
        info!("stopped");
        Ok(())
    }
}

/// The lines besides the modems: the SIP line when SIP runs.
fn sip_lines(sip: Option<&crate::sip::Sip>) -> Vec<Arc<dyn flowgate_line::Line>> {
    sip.map(|s| Arc::clone(s.line()) as Arc<dyn flowgate_line::Line>)
        .into_iter()
        .collect()
}

fn create_data_dir(path: &Path) -> Result<(), DaemonError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| DaemonError::DataDir {
            path: path.to_owned(),
            source,
        })
}

/// Brings up the modems of the configured board profile: real ones on their ports,
/// simulated ones on pseudo-terminals with stable symlinks in `<data>/tty` (so the driver
/// reopens them by path, as it would a `/dev/serial/by-id` link).
fn start_board(
    config: &Config,
    cancel: &CancellationToken,
) -> Result<(Modems, Vec<(String, Simulator)>), DaemonError> {
    let name = &config.board.profile;
    let board_err = |reason: String| DaemonError::Board {
        profile: name.clone(),
        reason,
    };
    let profile = BoardProfile::resolve(name).map_err(|e| board_err(e.to_string()))?;
    #[cfg(feature = "simulator")]
    let link_dir = config.data.dir.join("tty");
    let mut handles = Vec::new();
    #[cfg_attr(not(feature = "simulator"), expect(unused_mut))]
    let mut sims = Vec::new();
    for modem in &profile.modems {
        #[cfg(not(feature = "simulator"))]
        if modem.simulated.is_some() {
            return Err(board_err(format!(
                "modem {} is simulated, and this build of flowgate has no simulator (cargo feature \"simulator\")",
                modem.id
            )));
        }
        #[cfg(feature = "simulator")]
        if modem.simulated.is_some() {
            create_data_dir(&link_dir)?;
            let sim_config = modem.sim_config(Some(&link_dir)).ok_or_else(|| {
                board_err(format!(
                    "modem {}: profile {} cannot be simulated",
                    modem.id, modem.profile
                ))
            })?;
            let sim = Simulator::start(sim_config)
                .map_err(|e| board_err(format!("simulated modem {}: {e}", modem.id)))?;
            info!(modem = %modem.id, at = %sim.at_path().display(), pcm = %sim.pcm_path().display(), "simulated modem on pseudo-terminals");
            handles.push(Modem::spawn(
                modem.config_for_sim(&sim),
                modem.vendor_profile(),
                cancel.child_token(),
            ));
            sims.push((modem.id.clone(), sim));
            continue;
        }
        let driver_config = modem
            .modem_config()
            .ok_or_else(|| board_err(format!("modem {} has no port", modem.id)))?;
        handles.push(Modem::spawn(
            driver_config,
            modem.vendor_profile(),
            cancel.child_token(),
        ));
    }
    if handles.is_empty() {
        warn!(board = %name, "the board has no modem: calls and SMS are unavailable");
    }
    Ok((Modems::new(handles), sims))
}

/// The control handle of a started simulator.
#[cfg(feature = "simulator")]
fn control_of(sim: &Simulator) -> SimulatorControl {
    sim.control()
}

#[cfg(not(feature = "simulator"))]
fn control_of(sim: &Simulator) -> SimulatorControl {
    match *sim {}
}

/// Brings up the analog ports of the configured board profile (see [`crate::analog`]).
fn start_analog(
    config: &Config,
    cancel: &CancellationToken,
) -> Result<crate::analog::AnalogPorts, DaemonError> {
    let name = &config.board.profile;
    let board_err = |reason: String| DaemonError::Board {
        profile: name.clone(),
        reason,
    };
    let profile = BoardProfile::resolve(name).map_err(|e| board_err(e.to_string()))?;
    crate::analog::start(config, &profile, cancel).map_err(board_err)
}

/// READY=1, and the store watchdog: it proves the store still writes and pings the systemd
/// watchdog (when systemd asks for pings) only after such a proof, so a stalled store
/// stops the pings; it cancels `stalled` when the store stops taking writes.
fn start_watchdog(store: &Store, cancel: &CancellationToken, stalled: &CancellationToken) {
    let notifier = ServiceNotifier::from_env();
    notifier.ready();
    let mut timing = WatchdogTiming::default();
    if let Some(interval) = notifier.watchdog_interval() {
        timing.every = timing.every.min(interval / 2);
    }
    let probe_store = store.clone();
    tokio::spawn(watch_writes(
        move || {
            run_probe_hook();
            probe_store.heartbeat()
        },
        move || notifier.watchdog(),
        timing,
        cancel.child_token(),
        stalled.clone(),
    ));
}

/// SIGTERM and SIGINT, caught from the moment [`StopSignals::install`] returns. Install them
/// before [`Daemon::start`]: it reports READY to systemd, which may send SIGTERM at once,
/// and a signal arriving before a handler exists would kill the process without an
/// orderly shutdown.
pub struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Installs the handlers (inside a tokio runtime).
    ///
    /// # Errors
    /// The handlers cannot be installed.
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for the next SIGTERM or SIGINT; returns its name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
