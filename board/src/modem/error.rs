//! The driver's error type: one enum for everything a handle operation can fail with.

use thiserror::Error;

use super::at::codec::{FinalResult, Response};
use super::at::types::{ErrorCode, SimState, cme_meaning, cms_meaning};
use super::events::{CallEndCause, CallId};

/// Why a modem operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModemError {
    /// No final result within the command's timeout.
    #[error("`{command}` timed out after {timeout_ms} ms")]
    Timeout {
        /// The command.
        command: String,
        /// The timeout that expired.
        timeout_ms: u64,
    },
    /// `+CME ERROR`.
    #[error("`{command}` failed: +CME ERROR: {code} ({meaning})")]
    Cme {
        /// The command.
        command: String,
        /// The code.
        code: ErrorCode,
        /// What it means (27.007 §9.2).
        meaning: String,
    },
    /// `+CMS ERROR`.
    #[error("`{command}` failed: +CMS ERROR: {code} ({meaning})")]
    Cms {
        /// The command.
        command: String,
        /// The code.
        code: ErrorCode,
        /// What it means (27.005 §3.2.5).
        meaning: String,
    },
    /// Another failing final result (`ERROR`, `COMMAND NOT SUPPORT`, `NO CARRIER`, ...).
    #[error("`{command}` failed: {result}")]
    Failed {
        /// The command.
        command: String,
        /// The final result as text.
        result: String,
    },
    /// The call ended before the command could act on it: `ATA` answered `NO CARRIER`
    /// because the caller hung up in that instant. The call's end event follows.
    #[error("`{command}`: the call ended first ({})", cause.source)]
    CallEnded {
        /// The command.
        command: String,
        /// Why the call ended.
        cause: CallEndCause,
    },
    /// The port is closed or vanished (USB re-enumeration); the driver is reopening it.
    #[error("port {port} is not available: {reason}")]
    PortGone {
        /// The port path.
        port: String,
        /// Why.
        reason: String,
    },
    /// The modem rebooted (`RDY`) while the command was pending.
    #[error("modem rebooted while `{command}` was pending")]
    Rebooted {
        /// The command.
        command: String,
    },
    /// Not sent at all: a boot URC was read since the setting the command relies on was made
    /// (the SMS write memory of `AT+CMGW`/`AT+CMSS`), so it would have acted on the power-on
    /// default. Nothing happened; the driver selects again and retries.
    #[error("`{command}` not sent: the modem booted since the setting it relies on was made")]
    BootedBefore {
        /// The command.
        command: String,
    },
    /// The modem is initialising or recovering.
    #[error("modem is not ready ({state})")]
    NotReady {
        /// The current state.
        state: String,
    },
    /// Not registered to a network.
    #[error("not registered to a network")]
    NotRegistered,
    /// The SIM is not usable.
    #[error("SIM not usable: {0:?}")]
    Sim(SimState),
    /// No call with this id exists (ended or never existed).
    #[error("no such call: {0}")]
    NoSuchCall(CallId),
    /// A bad argument (number, DTMF digit, empty text).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The text could not be encoded as SMS.
    #[error("SMS encoding failed: {0}")]
    Encoding(String),
    /// A reply did not have the expected shape.
    #[error("unexpected reply: {0}")]
    Response(String),
    /// USSD failed (network said not supported, timed out, or the reply was undecodable).
    #[error("USSD failed: {0}")]
    Ussd(String),
    /// A multipart SMS was only partly sent.
    #[error("SMS partly sent ({sent} of {total} parts, refs {refs:?}): {cause}")]
    PartialSend {
        /// Parts sent.
        sent: usize,
        /// Parts in total.
        total: usize,
        /// Message references of the parts sent.
        refs: Vec<u8>,
        /// Why the next part failed.
        cause: Box<ModemError>,
    },
    /// No room in the SMS write memory for an outgoing message (memory full, or the
    /// `sms.outbound_slots` cap reached). Nothing was sent: try again once the modem has
    /// drained its received messages.
    #[error("no room in SMS storage: {0}")]
    StorageFull(String),
    /// The modem (its profile, or its answers so far) does not support the operation.
    #[error("not supported by this modem: {0}")]
    Unsupported(String),
    /// Power control (GPIO) failed or is not configured.
    #[error("power control: {0}")]
    Power(String),
    /// The modem task has stopped (cancelled or crashed).
    #[error("modem task stopped")]
    Stopped,
}

impl ModemError {
    /// Maps a failing final result of `r` to an error (`Ok` passes through).
    pub fn check(r: Response) -> Result<Response, ModemError> {
        match &r.result {
            FinalResult::Ok | FinalResult::Connect(_) => Ok(r),
            FinalResult::CmeError(code) => Err(ModemError::Cme {
                meaning: cme_meaning(code).to_owned(),
                command: r.command,
                code: code.clone(),
            }),
            FinalResult::CmsError(code) => Err(ModemError::Cms {
                meaning: cms_meaning(code).to_owned(),
                command: r.command,
                code: code.clone(),
            }),
            other => Err(ModemError::Failed {
                result: format!("{other:?}"),
                command: r.command,
            }),
        }
    }

    /// The CME/CMS numeric code, if this is such an error.
    pub fn code(&self) -> Option<u16> {
        match self {
            ModemError::Cme { code, .. } | ModemError::Cms { code, .. } => code.code(),
            _ => None,
        }
    }

    /// True for errors a retry may cure (timeouts, reboots, vanished ports, busy SIM, network
    /// congestion); false for errors a retry repeats (bad number, unsupported).
    pub fn is_transient(&self) -> bool {
        match self {
            ModemError::Timeout { .. }
            | ModemError::PortGone { .. }
            | ModemError::Rebooted { .. }
            | ModemError::BootedBefore { .. }
            | ModemError::NotReady { .. }
            | ModemError::StorageFull(_)
            | ModemError::NotRegistered => true,
            ModemError::Cme { code, .. } => matches!(code.code(), Some(14 | 30 | 31 | 515)),
            ModemError::Cms { code, .. } => {
                matches!(code.code(), Some(38 | 41 | 42 | 47 | 314 | 331 | 332 | 500))
            }
            ModemError::PartialSend { cause, .. } => cause.is_transient(),
            _ => false,
        }
    }
}
