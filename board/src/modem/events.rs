//! What the driver tells the rest of the gateway: events on the broadcast channel and the
//! observable [`ModemStatus`] on the watch channel.

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

use super::at::response::StorageUsage;
use super::at::types::{CallStat, Direction, DtmfSource, Registration, SignalQuality, SimState};
use super::recovery::RecoveryStep;

/// A call, as identified by this driver (stable for the call's life; the modem's own call
/// index is reused and is not exposed as identity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallId(pub u64);

impl std::fmt::Display for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "call-{}", self.0)
    }
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallEndReason {
    /// We hung up.
    LocalHangup,
    /// The other party hung up (or the network cleared normally).
    RemoteHangup,
    /// The called party was busy.
    Busy,
    /// The called party did not answer.
    NoAnswer,
    /// The called party rejected the call.
    Rejected,
    /// The number could not be reached (unassigned, out of order, no route).
    Unreachable,
    /// The network failed the call (congestion, temporary failure, no circuit).
    NetworkFailure,
    /// An incoming call stopped ringing before it was answered.
    Missed,
    /// The modem rebooted or vanished during the call.
    ModemReset,
    /// The modem reported the call released without saying why.
    Released,
    /// The call was joined to another call of this modem by explicit call transfer
    /// (`AT+CHLD=4`) and left the modem: the two parties talk to each other now.
    Transferred,
}

/// The cause of a call's end, with the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallEndCause {
    /// Classified reason.
    pub reason: CallEndReason,
    /// 24.008 call-control cause when the modem gave one (Huawei `^CEND`).
    pub cc_cause: Option<u16>,
    /// What reported it (`NO CARRIER`, `^CEND`, `ccinfo`, `CLCC`, `BUSY`, ...).
    pub source: String,
}

impl CallEndCause {
    /// A cause with no cc code.
    pub fn new(reason: CallEndReason, source: &str) -> Self {
        Self {
            reason,
            cc_cause: None,
            source: source.to_owned(),
        }
    }

    /// Classifies a 24.008 cause value (`^CEND`'s `<cc_cause>`).
    pub fn from_cc(cc: u16, source: &str) -> Self {
        let reason = match cc {
            16 | 31 => CallEndReason::RemoteHangup,
            17 => CallEndReason::Busy,
            18 | 19 => CallEndReason::NoAnswer,
            21 => CallEndReason::Rejected,
            1 | 3 | 22 | 27 | 28 => CallEndReason::Unreachable,
            _ => CallEndReason::NetworkFailure,
        };
        Self {
            reason,
            cc_cause: Some(cc),
            source: source.to_owned(),
        }
    }
}

/// The outcome of a recovery step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RecoveryOutcome {
    /// The step is being executed.
    Started,
    /// The modem answers again.
    Succeeded,
    /// The step did not help.
    Failed {
        /// Why.
        reason: String,
    },
    /// The step could not run (e.g. no GPIO configured).
    Skipped {
        /// Why.
        reason: String,
    },
}

/// Delivery state from a status report's TP-ST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Delivered (0x00-0x1F).
    Delivered,
    /// The SMSC is still trying (0x20-0x3F).
    Pending,
    /// Failed permanently, or the SMSC stopped trying (0x40-0x7F).
    Failed,
}

/// A status report matched (when possible) to a sent message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReportEvent {
    /// The caller's key given to `send_sms`, when the MR matched a message this driver sent.
    pub key: Option<String>,
    /// 1-based part number of that message.
    pub part: Option<usize>,
    /// Parts of that message.
    pub parts: Option<usize>,
    /// TP-MR.
    pub message_reference: u8,
    /// The recipient the report is about.
    pub recipient: String,
    /// Raw TP-ST.
    pub status: u8,
    /// Classified.
    pub delivery: DeliveryState,
    /// When the SMSC delivered (or gave up).
    pub discharge_time: Option<DateTime<FixedOffset>>,
}

/// USSD status (`<m>` of `+CUSD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UssdStatus {
    /// 0: no further action required.
    Done,
    /// 1: the network waits for an answer.
    FurtherAction,
    /// 2: terminated by the network.
    Terminated,
    /// 3: answered by another local client.
    OtherClient,
    /// 4: operation not supported.
    NotSupported,
    /// 5: network timeout.
    Timeout,
    /// Anything else.
    Other(u8),
}

impl UssdStatus {
    /// Maps `<m>`.
    pub fn from_code(m: u8) -> Self {
        match m {
            0 => UssdStatus::Done,
            1 => UssdStatus::FurtherAction,
            2 => UssdStatus::Terminated,
            3 => UssdStatus::OtherClient,
            4 => UssdStatus::NotSupported,
            5 => UssdStatus::Timeout,
            n => UssdStatus::Other(n),
        }
    }
}

/// A USSD reply or network-initiated USSD message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UssdReply {
    /// Status.
    pub status: UssdStatus,
    /// Decoded text.
    pub text: Option<String>,
    /// DCS as reported.
    pub dcs: Option<u8>,
    /// The string as the modem sent it (before decoding).
    pub raw: Option<String>,
}

/// The modem's lifecycle state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ModemState {
    /// Just spawned.
    Starting,
    /// Opening the port (it may not exist yet: waiting for enumeration).
    Opening {
        /// Attempts so far.
        attempt: u32,
    },
    /// Running the init sequence.
    Initializing,
    /// SIM busy / locked / missing: init is retried with back-off.
    WaitingForSim {
        /// The SIM state that blocks.
        sim: SimState,
        /// Attempts so far.
        attempt: u32,
    },
    /// Usable.
    Ready,
    /// Climbing the recovery ladder.
    Recovering {
        /// The current step.
        step: RecoveryStep,
    },
    /// The port vanished; reopening with back-off.
    PortLost {
        /// What happened.
        reason: String,
    },
    /// Recovery gave up.
    Failed {
        /// The last error.
        reason: String,
    },
    /// The driver was cancelled.
    Stopped,
}

impl ModemState {
    /// Short name for errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            ModemState::Starting => "starting",
            ModemState::Opening { .. } => "opening",
            ModemState::Initializing => "initializing",
            ModemState::WaitingForSim { .. } => "waiting_for_sim",
            ModemState::Ready => "ready",
            ModemState::Recovering { .. } => "recovering",
            ModemState::PortLost { .. } => "port_lost",
            ModemState::Failed { .. } => "failed",
            ModemState::Stopped => "stopped",
        }
    }
}

/// Events of one modem (subscribe with `ModemHandle::subscribe`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ModemEvent {
    /// The lifecycle state changed.
    State {
        /// New state.
        state: ModemState,
    },
    /// A recovery step started or finished.
    Recovery {
        /// The step.
        step: RecoveryStep,
        /// How it went.
        outcome: RecoveryOutcome,
    },
    /// A call is ringing here.
    IncomingCall {
        /// The call.
        call: CallId,
        /// Caller number (`None` when withheld or not yet known).
        number: Option<String>,
    },
    /// A call changed state (dialing, alerting, active, held, ...).
    CallState {
        /// The call.
        call: CallId,
        /// New state.
        state: CallStat,
        /// Direction.
        direction: Direction,
        /// The other party.
        number: Option<String>,
    },
    /// The call's audio is routed to the voice port: the audio layer may start streaming.
    AudioReady {
        /// The call.
        call: CallId,
    },
    /// A call ended.
    CallEnded {
        /// The call.
        call: CallId,
        /// Why.
        cause: CallEndCause,
    },
    /// The far end pressed a key (reported by the modem).
    Dtmf {
        /// The active call it belongs to, when exactly one is active.
        call: Option<CallId>,
        /// The digit.
        digit: char,
        /// Which URC reported it.
        source: DtmfSource,
    },
    /// A delivery report arrived.
    StatusReport(StatusReportEvent),
    /// The SMS memory is full; the driver is draining it.
    SmsMemoryFull {
        /// Storage name.
        mem: String,
    },
    /// A network-initiated (or late) USSD message.
    Ussd(UssdReply),
}

/// Modem identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Identity {
    /// `AT+CGMI`.
    pub manufacturer: Option<String>,
    /// `AT+CGMM`.
    pub model: Option<String>,
    /// `AT+CGMR`.
    pub firmware: Option<String>,
    /// `AT+CGSN`.
    pub imei: Option<String>,
    /// `AT+CIMI`.
    pub imsi: Option<String>,
    /// ICCID (vendor command).
    pub iccid: Option<String>,
    /// `AT+CNUM`, when the SIM knows it.
    pub own_number: Option<String>,
}

/// Signal strength.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signal {
    /// Raw quality.
    pub quality: SignalQuality,
    /// dBm, when known.
    pub dbm: Option<i16>,
}

impl From<SignalQuality> for Signal {
    fn from(q: SignalQuality) -> Self {
        Self {
            quality: q,
            dbm: q.dbm(),
        }
    }
}

/// A call as listed in the status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallSummary {
    /// Id.
    pub call: CallId,
    /// Direction.
    pub direction: Direction,
    /// State.
    pub state: CallStat,
    /// Other party.
    pub number: Option<String>,
}

/// Everything observable about a modem (the `watch` channel of `ModemHandle::status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModemStatus {
    /// Modem id.
    pub id: String,
    /// Vendor profile id.
    pub profile: String,
    /// AT port path.
    pub port: String,
    /// Lifecycle state.
    pub state: ModemState,
    /// Identity.
    pub identity: Identity,
    /// SIM state.
    pub sim: SimState,
    /// CS registration (`+CREG`).
    pub registration: Option<Registration>,
    /// EPS registration (`+CEREG`).
    pub eps_registration: Option<Registration>,
    /// Operator name.
    pub operator: Option<String>,
    /// Access technology name from vendor URCs (`LTE`, `WCDMA`).
    pub technology: Option<String>,
    /// Signal.
    pub signal: Option<Signal>,
    /// SMS storage usage, when last read.
    pub sms_storage: Option<StorageUsage>,
    /// Calls in progress.
    pub calls: Vec<CallSummary>,
    /// Recovery climbs since start.
    pub recoveries: u32,
    /// The last error worth showing.
    pub last_error: Option<String>,
    /// When any field last changed.
    pub updated_at: DateTime<Utc>,
}

impl ModemStatus {
    /// The initial status.
    pub fn new(id: &str, profile: &str, port: &str) -> Self {
        Self {
            id: id.to_owned(),
            profile: profile.to_owned(),
            port: port.to_owned(),
            state: ModemState::Starting,
            identity: Identity::default(),
            sim: SimState::Unknown,
            registration: None,
            eps_registration: None,
            operator: None,
            technology: None,
            signal: None,
            sms_storage: None,
            calls: Vec::new(),
            recoveries: 0,
            last_error: None,
            updated_at: Utc::now(),
        }
    }

    /// Registered on CS or EPS.
    pub fn is_registered(&self) -> bool {
        self.registration.is_some_and(|r| r.status.is_registered())
            || self
                .eps_registration
                .is_some_and(|r| r.status.is_registered())
    }
}
