//! The simulated modem: a GSM/LTE modem on a pseudo-terminal, with a serial-PCM voice port.
//! (The *SIM card* it holds is configuration: number, IMSI, ICCID, PIN.)
//!
//! [`Simulator::start`] opens two ptys: the AT port (opened by the gateway with tokio-serial
//! exactly like `/dev/ttyUSB2`) and the voice port (8 kHz s16le mono, 20 ms = 320-byte
//! frames, paced by the simulator's own clock: each 20 ms it writes one frame of caller audio
//! — silence when none is queued — and records what the gateway sent). The modem speaks the
//! dialect of a [`SimulatedModel`] (Quectel EC25, Huawei E1550, SIMCom SIM7600): the
//! information lines of read and test commands, PDU and text mode SMS, the call, DTMF and USSD
//! URCs, as the vendors' AT manuals show them.
//!
//! [`SimulatorControl`] (clone-able) injects events (SMS text or PDU, incoming calls, DTMF, remote
//! hang-up/answer/busy, USSD replies, caller audio), injects faults (delayed, dropped or lost
//! replies, garbage, reboots with `RDY`, a vanished port, full memory, busy SIM, a network
//! that refuses call transfer), reads back what the gateway did, and waits for it
//! deterministically ([`SimulatorControl::wait_for`] wakes on every state change, never on a
//! timer).
//!
//! SMS storage holds PDUs whichever mode the gateway uses (27.005 PDU or text mode): received
//! messages (stat 0/1), and messages the gateway writes with `AT+CMGW` (stat 2 "stored unsent") and sends with `AT+CMSS` (then stat 3
//! "stored sent"; the message is recorded as sent exactly like one sent with `AT+CMGS`).
//! Storage lives in the simulator, so it survives the gateway closing and reopening the port
//! (a gateway crash) as well as simulated reboots. Calls follow 27.007 `AT+CHLD` (0, 1, 1x, 2,
//! 2x, 4): hold and swap, release, and explicit call transfer of a held call to an active or
//! alerting one (24.091), logged as `transferred` with the other call's id.
//!
//! **Vanished port**: the pty is closed and re-created at a *new* `/dev/pts/N`. With
//! [`SimulatorConfig::link`] set, the stable symlink is re-pointed at the new pty, so a gateway
//! configured with the link path reopens it like a re-enumerated USB modem by its by-id path.
//!
//! # Layout
//!
//! - `core/`: the sans-IO modem (bytes in, actions out): line discipline, the command table,
//!   and one module per command family (general, network, SMS, calls, USSD, audio).
//! - `dialect.rs`: what differs between the models, as data.
//! - `shell.rs`: the I/O shell (ptys, tasks, timers); `control.rs`: the control handle.

//!
//! Without the `simulator` feature only the types a board profile names remain
//! ([`DialPolicy`], [`DialOutcome`], [`UssdCoding`]), so a profile parses the same in every
//! build; the daemon of such a build refuses to start a simulated modem.

#[cfg(feature = "simulator")]
mod control;
#[cfg(feature = "simulator")]
mod core;
#[cfg(feature = "simulator")]
mod dialect;
#[cfg(feature = "simulator")]
mod pty;
#[cfg(feature = "simulator")]
mod shell;

use std::collections::BTreeMap;
#[cfg(feature = "simulator")]
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
#[cfg(feature = "simulator")]
use thiserror::Error;

#[cfg(feature = "simulator")]
pub use self::control::{SimulatorControl, SimulatorView};
#[cfg(feature = "simulator")]
pub use self::core::{
    FaultAction, MAX_QUEUED_SAMPLES, SentSmsRecord, SimulatedCallRecord, UssdScript,
};
#[cfg(feature = "simulator")]
pub use self::dialect::SimulatedModel;
#[cfg(feature = "simulator")]
pub use self::shell::Simulator;
#[cfg(feature = "simulator")]
use crate::modem::at::types::CallStat;

/// How a USSD reply is coded by the (simulated) network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UssdCoding {
    /// GSM 7-bit (DCS 15): packed hex on Huawei (until `AT^USSDMODE=0`), text in the `+CSCS`
    /// character set otherwise.
    Gsm7,
    /// UCS2 (DCS 72): hex of UTF-16BE.
    Ucs2,
}

/// What happens when the gateway dials a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DialOutcome {
    /// Alerting after half of `ring_ms`, answered after `ring_ms`.
    Answer {
        /// Ring time in ms.
        ring_ms: u64,
    },
    /// Busy after `after_ms`.
    Busy {
        /// Delay in ms.
        after_ms: u64,
    },
    /// Alerting, then no answer after `after_ms`.
    NoAnswer {
        /// Delay in ms.
        after_ms: u64,
    },
    /// Alerting until the control handle answers, rejects or reports busy.
    Manual,
}

/// Dial outcomes per number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialPolicy {
    /// For numbers not listed.
    pub default: DialOutcome,
    /// Per number.
    #[serde(default)]
    pub numbers: BTreeMap<String, DialOutcome>,
}

impl DialPolicy {
    /// The outcome for `number`.
    pub fn outcome_for(&self, number: &str) -> DialOutcome {
        self.numbers.get(number).copied().unwrap_or(self.default)
    }
}

impl Default for DialPolicy {
    fn default() -> Self {
        Self {
            default: DialOutcome::Answer { ring_ms: 2_000 },
            numbers: BTreeMap::new(),
        }
    }
}

#[cfg(feature = "simulator")]
/// Simulator configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulatorConfig {
    /// Modem model.
    #[serde(alias = "profile")]
    pub model: SimulatedModel,
    /// Stable symlink to the AT pty (re-pointed when the port vanishes and comes back).
    pub link: Option<PathBuf>,
    /// Stable symlink to the voice pty.
    pub pcm_link: Option<PathBuf>,
    /// The SIM's own number (`AT+CNUM`).
    pub own_number: String,
    /// IMEI.
    pub imei: String,
    /// IMSI.
    pub imsi: String,
    /// ICCID.
    pub iccid: String,
    /// Operator name.
    pub operator: String,
    /// Registration `<stat>` (1 home, 5 roaming, 2 searching).
    pub registration: u8,
    /// Signal `<rssi>` (0-31).
    pub rssi: u8,
    /// SIM PIN (the SIM starts locked when set).
    pub pin: Option<String>,
    /// SMS storage slots.
    pub storage_slots: u32,
    /// What happens to dialled numbers.
    pub dial: DialPolicy,
    /// Time from reboot to the boot URCs (ms).
    pub boot_delay_ms: u64,
    /// Repeat `RING` this often while an incoming call rings (`None`: once).
    pub ring_interval_ms: Option<u64>,
    /// Send a status report with this TP-ST for messages that ask for one (`None`: only
    /// when the control handle says so).
    pub auto_status_report: Option<u8>,
    /// Delay of automatic status reports (ms).
    pub status_report_delay_ms: u64,
    /// Reply to USSD requests with nothing queued; `{code}` is replaced by the request.
    pub ussd_default_reply: String,
    /// Send the boot URCs once at start (as a modem that was just powered).
    pub boot_urcs_at_start: bool,
}

#[cfg(feature = "simulator")]
impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            model: SimulatedModel::QuectelEc25,
            link: None,
            pcm_link: None,
            own_number: "+15550001000".to_owned(),
            imei: "867962040123456".to_owned(),
            imsi: "310260000000001".to_owned(),
            iccid: "89014103211118510720".to_owned(),
            operator: "Flowgate Sim".to_owned(),
            registration: 1,
            rssi: 20,
            pin: None,
            storage_slots: 50,
            dial: DialPolicy::default(),
            boot_delay_ms: 100,
            ring_interval_ms: Some(3_000),
            auto_status_report: Some(0),
            status_report_delay_ms: 200,
            ussd_default_reply: "Your balance is 12.34 EUR".to_owned(),
            boot_urcs_at_start: false,
        }
    }
}

#[cfg(feature = "simulator")]
impl SimulatorConfig {
    /// Defaults for `model`.
    pub fn new(model: SimulatedModel) -> Self {
        Self {
            model,
            ..Self::default()
        }
    }
}

#[cfg(feature = "simulator")]
/// Something that happened in the simulator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SimulatorEvent {
    /// The gateway sent a command line.
    Command {
        /// The line.
        line: String,
    },
    /// The gateway sent an SMS part.
    SmsSent {
        /// What was sent.
        record: SentSmsRecord,
    },
    /// An SMS reached the gateway (stored at `index`, or `None`: delivered directly).
    SmsDelivered {
        /// Storage index.
        index: Option<u32>,
    },
    /// The gateway deleted a stored message.
    SmsDeleted {
        /// Storage index.
        index: u32,
    },
    /// The SMS memory is full (the network holds messages back).
    MemoryFull,
    /// A status report was sent to the gateway.
    StatusReportSent {
        /// Message reference.
        mr: u8,
    },
    /// The gateway dialled.
    Dialled {
        /// Number.
        number: String,
    },
    /// An incoming call started ringing.
    IncomingCall {
        /// Simulator call id.
        call: u64,
        /// Caller.
        number: String,
    },
    /// The gateway answered.
    Answered {
        /// Simulator call id.
        call: u64,
    },
    /// A call changed state.
    CallState {
        /// Simulator call id.
        call: u64,
        /// New state.
        state: CallStat,
    },
    /// A call ended.
    CallEnded {
        /// Simulator call id.
        call: u64,
        /// `gateway`, `remote`, `busy`, `no-answer`.
        by: String,
    },
    /// The gateway sent a DTMF digit.
    DtmfSent {
        /// Digit.
        digit: char,
    },
    /// The gateway sent a USSD request.
    UssdRequest {
        /// The decoded code.
        code: String,
    },
    /// The voice port started or stopped.
    AudioActive {
        /// Active now.
        active: bool,
    },
    /// The modem rebooted.
    Rebooted,
    /// The AT port vanished.
    PortGone,
    /// The AT port is back at `path`.
    PortRecreated {
        /// The new pty path.
        path: PathBuf,
    },
}

#[cfg(feature = "simulator")]
/// Simulator errors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SimulatorError {
    /// Creating or using a pty failed.
    #[error("simulator I/O: {0}")]
    Io(String),
    /// A bad argument to a control operation.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The operation needs a call and there is none (in the required state).
    #[error("no call in a suitable state")]
    NoCall,
    /// A wait did not see its condition in time.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// The simulator has stopped.
    #[error("simulator stopped")]
    Stopped,
}

#[cfg(feature = "simulator")]
/// Feeds `input` to a fresh simulated modem of `model` — the sans-IO core alone, no ptys, no
/// tasks — and returns the bytes it wrote back. For the `simulator_input` fuzz target: no
/// input may make the simulator panic.
#[doc(hidden)]
pub fn feed_fresh(model: SimulatedModel, input: &[u8]) -> Vec<u8> {
    let (events, _) = tokio::sync::broadcast::channel(16);
    let mut core = self::core::SimCore::new(SimulatorConfig::new(model), events);
    core.feed(input)
        .into_iter()
        .filter_map(|o| match o {
            self::core::Out::Bytes(b) => Some(b),
            _ => None,
        })
        .flatten()
        .collect()
}
