//! The gateway's analog ports: each FXS/FXO port of the board profile becomes a line
//! ([`AnalogLine`]) with the settings of `[analog]` applied (dial plan, timers, auto-answer,
//! per-port extension, number and country), on the simulated board or on spidev/GPIO with
//! its codec's ALSA PCM; and every change of a port's state becomes a `line_updated` event.
//!
//! The simulated board has one Si3215 (with a telephone) and one Si3050 (on an exchange
//! line); its control handle ([`AnalogPorts::sim`]) drives the simulator API.

use std::sync::Arc;

use flowgate_analog::line::dialplan::DialPlan;
#[cfg(feature = "simulator")]
use flowgate_analog::sim::{AnalogSimControl, Chip, ExchangeConfig, SimBoard};
#[cfg(feature = "simulator")]
use flowgate_board::analog::SimPortIo;
use flowgate_board::analog::{
    AnalogLine, AnalogLineConfig, AnalogLineStatus, AnalogPortProfile, DevicePortIo, PortIo,
    PortSettings, SilentPortIo, open_port_with,
};
use flowgate_board::boards::BoardProfile;
use flowgate_line::{AudioTransport, Line};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

use crate::config::{AnalogConfig, Config};
use crate::runtime::Runtime;
use crate::store::Batch;

/// No simulated analog board in a build without the simulator (uninhabited).
#[cfg(not(feature = "simulator"))]
type SimBoard = std::convert::Infallible;

/// The analog ports of a running gateway. Cheap to clone.
#[derive(Clone, Default)]
pub struct AnalogPorts {
    lines: Vec<Arc<AnalogLine>>,
    #[cfg(feature = "simulator")]
    sim: Option<AnalogSimControl>,
}

/// A port as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AnalogPortView {
    /// The line id.
    pub id: String,
    /// The port's extension (FXS) or the exchange line's number (FXO).
    pub own_number: String,
    /// Its state.
    #[serde(flatten)]
    pub status: AnalogLineStatus,
}

impl AnalogPorts {
    /// The lines, in board order.
    pub fn lines(&self) -> &[Arc<AnalogLine>] {
        &self.lines
    }

    /// The simulated board's control, when it runs.
    #[cfg(feature = "simulator")]
    pub fn sim(&self) -> Option<&AnalogSimControl> {
        self.sim.as_ref()
    }

    /// The port with this line id.
    pub fn view(&self, id: &str) -> Option<AnalogPortView> {
        self.lines.iter().find(|l| l.id() == id).map(|l| view(l))
    }

    /// The lines as the runtime takes them.
    pub fn as_lines(&self) -> Vec<Arc<dyn Line>> {
        self.lines
            .iter()
            .map(|l| Arc::clone(l) as Arc<dyn Line>)
            .collect()
    }

    /// Publishes every change of a port's state as a `line_updated` event, until `cancel`.
    pub fn spawn_status_events(&self, runtime: &Runtime, cancel: &CancellationToken) {
        for line in &self.lines {
            let line = Arc::clone(line);
            let rt = runtime.clone();
            let cancel = cancel.child_token();
            tokio::spawn(async move {
                let mut watch = line.watch_status();
                let resource = line_resource_id(line.id());
                loop {
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        changed = watch.changed() => if changed.is_err() { return },
                    }
                    let data = serde_json::to_value(view(&line)).unwrap_or_default();
                    let mut batch = Batch::new();
                    batch.event("line_updated", resource, data);
                    if let Err(e) = rt.db().store.commit(batch) {
                        warn!(line = line.id(), cause = %e, "line event not stored");
                    }
                }
            });
        }
    }
}

fn view(line: &AnalogLine) -> AnalogPortView {
    AnalogPortView {
        id: line.id().to_owned(),
        own_number: line.own_party().number,
        status: line.status(),
    }
}

/// A stable resource id for a line's events: the line id hashed (FNV-1a, two seeds) into
/// a custom (version 8) UUID, the same on every start.
pub fn line_resource_id(id: &str) -> Uuid {
    let fnv = |seed: u64| {
        id.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let hi = fnv(0xcbf2_9ce4_8422_2325);
    let lo = fnv(0x8422_2325_cbf2_9ce4);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&hi.to_be_bytes());
    bytes[8..].copy_from_slice(&lo.to_be_bytes());
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Brings up the analog ports of `profile` with the settings of `config.analog`.
///
/// # Errors
/// A port the configuration names that the profile lacks, a profile the simulated board
/// cannot carry, or a port that cannot be opened — with the port named.
pub fn start(
    config: &Config,
    profile: &BoardProfile,
    cancel: &CancellationToken,
) -> Result<AnalogPorts, String> {
    let a = &config.analog;
    for p in &a.ports {
        if !profile.analog.iter().any(|q| q.id == p.id) {
            return Err(format!(
                "analog.ports: port {:?} is not on board {}",
                p.id, profile.name
            ));
        }
    }
    let ports: Vec<AnalogPortProfile> = profile
        .analog
        .iter()
        .map(|p| with_overrides(p, a))
        .collect();
    let plan = dial_plan(a, &ports)?;
    let sim_board = sim_board(&ports)?;
    let mut lines = Vec::new();
    for p in &ports {
        let settings = settings(p, a, &plan).map_err(|e| format!("analog port {}: {e}", p.id))?;
        let (port, io) = match (&sim_board, p.simulated) {
            (Some(board), true) => simulated_port(board, p, settings)?,
            _ => {
                let (port, _irq) = open_port_with(p, settings).map_err(|e| e.to_string())?;
                (port, device_io(p)?)
            }
        };
        let own_number = match port.kind() {
            flowgate_analog::port::PortKind::Fxs => p.extension.clone().unwrap_or_default(),
            flowgate_analog::port::PortKind::Fxo => a
                .ports
                .iter()
                .find(|c| c.id == p.id)
                .and_then(|c| c.number.clone())
                .unwrap_or_default(),
        };
        let line = AnalogLine::spawn(
            AnalogLineConfig {
                id: p.id.clone(),
                own_number,
            },
            port,
            io,
            cancel.child_token(),
        )
        .map_err(|e| format!("analog port {}: runner thread: {e}", p.id))?;
        info!(port = %p.id, chip = ?p.chip, country = %p.country, simulated = p.simulated, "analog port");
        lines.push(line);
    }
    Ok(AnalogPorts {
        lines,
        #[cfg(feature = "simulator")]
        sim: sim_board.map(|b| b.control()),
    })
}

/// A port and its line side.
type PortAndIo = (Box<dyn flowgate_analog::port::AnalogPort>, Box<dyn PortIo>);

/// The simulated analog board for the ports marked `simulated` (it has one FXS and one FXO
/// port), or `None` when no port is simulated.
#[cfg(feature = "simulator")]
fn sim_board(ports: &[AnalogPortProfile]) -> Result<Option<SimBoard>, String> {
    use flowgate_analog::port::PortKind;
    if !ports.iter().any(|p| p.simulated) {
        return Ok(None);
    }
    let kinds = |k| {
        ports
            .iter()
            .filter(|p| p.simulated && p.kind() == k)
            .count()
    };
    if kinds(PortKind::Fxs) > 1 || kinds(PortKind::Fxo) > 1 {
        return Err("the simulated analog board has one FXS and one FXO port".into());
    }
    let zone = ports
        .iter()
        .find(|p| p.simulated && p.kind() == PortKind::Fxo)
        .and_then(|p| p.country().ok())
        .map_or("us", |c| c.tone_zone);
    let exchange = ExchangeConfig {
        zone: zone.to_owned(),
        ..ExchangeConfig::default()
    };
    SimBoard::new(exchange)
        .map(Some)
        .map_err(|e| format!("simulated analog board: {e}"))
}

/// A build without the simulator (the board image) refuses simulated ports by name.
#[cfg(not(feature = "simulator"))]
fn sim_board(ports: &[AnalogPortProfile]) -> Result<Option<SimBoard>, String> {
    match ports.iter().find(|p| p.simulated) {
        Some(p) => Err(format!(
            "analog port {} is simulated, and this build of flowgate has no simulator (cargo feature \"simulator\")",
            p.id
        )),
        None => Ok(None),
    }
}

/// A port of the simulated board with its simulated line side.
#[cfg(feature = "simulator")]
fn simulated_port(
    board: &SimBoard,
    p: &AnalogPortProfile,
    settings: PortSettings,
) -> Result<PortAndIo, String> {
    Ok(match settings {
        PortSettings::Fxs(chip, cfg) => (
            Box::new(
                board
                    .fxs_port(chip, *cfg)
                    .map_err(|e| format!("analog port {}: {e}", p.id))?,
            ),
            Box::new(SimPortIo::new(board.clone(), Chip::Slic)),
        ),
        PortSettings::Fxo(chip, cfg) => (
            Box::new(
                board
                    .fxo_port(chip, cfg)
                    .map_err(|e| format!("analog port {}: {e}", p.id))?,
            ),
            Box::new(SimPortIo::new(board.clone(), Chip::Daa)),
        ),
    })
}

#[cfg(not(feature = "simulator"))]
fn simulated_port(
    board: &SimBoard,
    _: &AnalogPortProfile,
    _: PortSettings,
) -> Result<PortAndIo, String> {
    match *board {}
}

/// The profile entry with `[[analog.ports]]` applied.
fn with_overrides(p: &AnalogPortProfile, a: &AnalogConfig) -> AnalogPortProfile {
    let mut p = p.clone();
    if let Some(o) = a.ports.iter().find(|o| o.id == p.id) {
        if let Some(e) = &o.extension {
            p.extension = Some(e.clone());
        }
        if let Some(c) = &o.country {
            p.country = c.clone();
        }
    }
    p
}

/// The FXS dial plan: the configured extensions and every FXS port's own.
fn dial_plan(a: &AnalogConfig, ports: &[AnalogPortProfile]) -> Result<DialPlan, String> {
    let mut numbers: Vec<&str> = a.extensions.iter().map(String::as_str).collect();
    for e in ports.iter().filter_map(|p| p.extension.as_deref()) {
        if !numbers.contains(&e) {
            numbers.push(e);
        }
    }
    let mut plan = DialPlan::with_extensions(numbers)
        .map_err(|e| format!("analog.extensions: {e:?} does not fit the dial plan"))?;
    plan.outside_prefix = a.outside_prefix.chars().next();
    plan.terminator = a.terminator.chars().next();
    Ok(plan)
}

fn settings(
    p: &AnalogPortProfile,
    a: &AnalogConfig,
    plan: &DialPlan,
) -> Result<PortSettings, String> {
    let mut s = p.settings().map_err(|e| e.to_string())?;
    match &mut s {
        PortSettings::Fxs(_, cfg) => {
            cfg.line.dial_plan = plan.clone();
            cfg.line.interdigit_timeout_ms = a.interdigit_timeout_ms;
            cfg.line.first_digit_timeout_ms = a.first_digit_timeout_ms;
            cfg.line.hook.flash_min_ms = a.flash_min_ms;
            cfg.line.hook.flash_max_ms = a.flash_max_ms;
        }
        PortSettings::Fxo(_, cfg) => {
            let rings = a
                .ports
                .iter()
                .find(|o| o.id == p.id)
                .and_then(|o| o.answer_after_rings)
                .unwrap_or(a.answer_after_rings);
            cfg.line.auto_answer_rings = (rings > 0).then_some(rings);
        }
    }
    Ok(s)
}

/// A real port's audio: its ALSA PCM, or none (signalling only) when the profile has none.
fn device_io(p: &AnalogPortProfile) -> Result<Box<dyn PortIo>, String> {
    match &p.audio {
        Some(t @ AudioTransport::Alsa { .. }) => {
            let port = crate::media::port::open_transport(
                t,
                &crate::media::PortOptions::default(),
                crate::media::SystemClock::shared(),
            )
            .map_err(|e| format!("analog port {}: audio: {e}", p.id))?;
            Ok(Box::new(DevicePortIo::start(port).map_err(|e| {
                format!("analog port {}: audio thread: {e}", p.id)
            })?))
        }
        _ => {
            warn!(port = %p.id, "analog port without an audio device: no tones, no DTMF, no call audio");
            Ok(Box::new(SilentPortIo::new()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_ids_are_stable_and_distinct() {
        assert_eq!(line_resource_id("fxs0"), line_resource_id("fxs0"));
        assert_ne!(line_resource_id("fxs0"), line_resource_id("fxo0"));
    }

    #[test]
    fn the_dial_plan_knows_every_port_extension_and_the_configured_ones() {
        let profile = BoardProfile::builtin("simulated").expect("builtin");
        let mut a = AnalogConfig {
            extensions: vec!["300".into()],
            terminator: String::new(),
            ..AnalogConfig::default()
        };
        a.ports.push(crate::config::AnalogPortConfig {
            id: "fxs0".into(),
            extension: Some("201".into()),
            country: Some("de".into()),
            number: None,
            answer_after_rings: Some(3),
        });
        let ports: Vec<_> = profile
            .analog
            .iter()
            .map(|p| with_overrides(p, &a))
            .collect();
        assert_eq!(ports[0].country, "de");
        let plan = dial_plan(&a, &ports).expect("plan");
        let ext: Vec<&str> = plan.extensions.iter().map(|e| e.as_str()).collect();
        assert_eq!(ext, ["300", "201"]);
        assert_eq!((plan.outside_prefix, plan.terminator), (Some('0'), None));
        let PortSettings::Fxo(_, fxo) = settings(&ports[1], &a, &plan).expect("fxo") else {
            panic!("fxo0 is the FXO port");
        };
        assert_eq!(fxo.line.auto_answer_rings, None);
        a.ports[0].id = "fxo0".into();
        let PortSettings::Fxo(_, fxo) = settings(&ports[1], &a, &plan).expect("fxo") else {
            panic!("fxo0 is the FXO port");
        };
        assert_eq!(fxo.line.auto_answer_rings, Some(3));
    }
}
