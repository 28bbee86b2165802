//! The [`Line`] trait: what every transport offers the runtime.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::audio::LegAudio;
use crate::cause::{Cause, EndCause};
use crate::event::{LineEvents, Progress};

/// A leg's identity: the call record's id.
pub type LegId = Uuid;

/// The future a line operation returns.
pub type LegFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, LegError>> + Send + 'a>>;

/// The kind of line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// A GSM/LTE modem.
    Modem,
    /// SIP (a trunk, a peer, a registered phone).
    Sip,
    /// An analog FXS port (a telephone plugs in).
    Fxs,
    /// An analog FXO port (the exchange line plugs in).
    Fxo,
}

impl Transport {
    /// Short name (API, config).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Modem => "modem",
            Transport::Sip => "sip",
            Transport::Fxs => "fxs",
            Transport::Fxo => "fxo",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One side of a call, as the line knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    /// The number (E.164 or national digits), extension, or SIP user; empty when withheld.
    pub number: String,
    /// Display name (SIP display name, analog caller-ID name).
    pub display_name: String,
    /// Full address when the transport has one (`sip:alice@pbx.lan`).
    pub uri: String,
}

impl Party {
    /// A party known by its number only.
    pub fn number(number: impl Into<String>) -> Self {
        Self {
            number: number.into(),
            ..Self::default()
        }
    }
}

/// An outgoing leg the runtime asks a line to place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Whom to call. For SIP, `uri` may carry the full target.
    pub to: Party,
    /// Caller id to present where the line can (SIP From, nothing on GSM).
    pub from: Party,
}

/// What a line can do besides place, answer and hang up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Put a leg on hold at the network and take it back.
    pub hold: bool,
    /// Join two of its legs and leave (GSM ECT, SIP attended REFER).
    pub transfer_to_leg: bool,
    /// Hand a leg to a new party by address (SIP blind REFER).
    pub transfer_to_party: bool,
    /// Send digits out of band.
    pub dtmf_signalled: bool,
    /// Outgoing legs can carry audio before the answer.
    pub early_media: bool,
}

/// Whether the line can take a new call now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Availability {
    /// Ready for a new call.
    Ready,
    /// Busy with as many calls as it can carry.
    Busy,
    /// Not registered to its network (no signal, no SIM, trunk registration failed).
    Unregistered {
        /// Why.
        reason: String,
    },
    /// The line does not work (port lost, recovering, failed).
    Down {
        /// Why.
        reason: String,
    },
}

impl Availability {
    /// Whether a call may be placed on the line now.
    pub fn is_ready(&self) -> bool {
        matches!(self, Availability::Ready)
    }
}

/// What a transport knows about a leg that records and the API show (SIP: the dialog's
/// Call-ID and the far end's URI). Empty where the transport has no such thing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegDetails {
    /// The signalling's own call identity (SIP `Call-ID`).
    pub call_id: String,
    /// The far end's address (the Request-URI called, the caller's `From` URI).
    pub remote_uri: String,
}

/// Where a transfer hands the leg to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferTarget {
    /// Another leg of the same line (the two parties are joined, the gateway leaves).
    Leg(LegId),
    /// A party the line reaches by address (blind transfer).
    Party(Party),
}

/// Why a line operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LegError {
    /// The line has no such leg (never had, or it ended).
    #[error("line {line} has no leg {leg}")]
    NoSuchLeg {
        /// The line.
        line: String,
        /// The leg.
        leg: LegId,
    },
    /// The line cannot do this at all.
    #[error("line {line} cannot {what}")]
    Unsupported {
        /// The line.
        line: String,
        /// The operation.
        what: &'static str,
    },
    /// The line cannot take the call now (busy, unregistered, down): another line may.
    #[error("line {line} is unavailable: {reason}")]
    Unavailable {
        /// The line.
        line: String,
        /// Why.
        reason: String,
    },
    /// The request itself is wrong (a malformed number, a leg in the wrong state).
    #[error("{0}")]
    Invalid(String),
    /// The line or its network refused or failed the operation.
    #[error("line {line}: {reason}")]
    Failed {
        /// The line.
        line: String,
        /// What happened.
        reason: String,
        /// The cause, when the failure ended the leg.
        cause: Option<EndCause>,
    },
}

impl LegError {
    /// Whether the leg is over after this error: it had ended already, or the failure
    /// ended it (the line reports the end with its `Ended` event either way).
    pub fn ended_leg(&self) -> bool {
        matches!(
            self,
            LegError::NoSuchLeg { .. } | LegError::Failed { cause: Some(_), .. }
        )
    }

    /// Whether a placement that failed like this may be retried on another line.
    pub fn fails_over(&self) -> bool {
        match self {
            LegError::Unavailable { .. } => true,
            LegError::Failed { cause, .. } => cause.as_ref().is_none_or(|c| c.cause.fails_over()),
            LegError::NoSuchLeg { .. } | LegError::Unsupported { .. } | LegError::Invalid(_) => {
                false
            }
        }
    }
}

/// A line: a modem, a SIP trunk or user agent, an analog port.
///
/// Implementations keep their own map from [`LegId`] to the transport's call identity.
/// Operations on a leg that ended fail with [`LegError::NoSuchLeg`]; `hangup` of an ended
/// leg is not an error (hang-ups race with the far end).
pub trait Line: Send + Sync + 'static {
    /// The line's id (`sim0`, `trunk-pbx`, `fxs1`): unique on the gateway.
    fn id(&self) -> &str;

    /// The kind of line.
    fn transport(&self) -> Transport;

    /// What the line can do.
    fn capabilities(&self) -> Capabilities;

    /// Whether it can take a new call now.
    fn availability(&self) -> Availability;

    /// The line's own address (a modem's SIM number, an FXS port's extension), if known:
    /// incoming calls to it find their number binding by it, outgoing calls present it.
    fn own_party(&self) -> Party;

    /// The line's event stream, taken once by the owner of its calls (`None` afterwards).
    fn take_events(&self) -> Option<LineEvents>;

    /// Places an outgoing leg named `leg`. Returns once the line accepted the attempt;
    /// progress, answer and the end come as events (possibly before this returns).
    fn place(&self, leg: LegId, placement: Placement) -> LegFuture<'_, ()>;

    /// Answers an incoming leg. A leg that had ended fails with [`LegError::NoSuchLeg`]; a
    /// caller who left in the instant of the answer fails it with [`LegError::Failed`]
    /// carrying the cause. The `Ended` event reports the end either way.
    fn answer(&self, leg: LegId) -> LegFuture<'_, ()>;

    /// Hangs up (or rejects, or cancels) a leg with `cause`. The `Ended` event follows.
    fn hangup(&self, leg: LegId, cause: Cause) -> LegFuture<'_, ()>;

    /// Sends digits out of band on an answered leg.
    fn send_dtmf(&self, leg: LegId, digits: &str) -> LegFuture<'_, ()>;

    /// Holds a leg at the network.
    fn hold(&self, leg: LegId) -> LegFuture<'_, ()>;

    /// Takes a held leg back.
    fn retrieve(&self, leg: LegId) -> LegFuture<'_, ()>;

    /// Transfers a leg (see [`Capabilities`]); both legs then end with
    /// [`Cause::Transferred`].
    fn transfer(&self, leg: LegId, to: TransferTarget) -> LegFuture<'_, ()>;

    /// How a blind transfer the line asked for
    /// ([`crate::LegEvent::TransferRequested`] to a [`TransferTarget::Party`]) went: `Ok`
    /// once the party answered and was joined, `Err(cause)` when it could not be reached
    /// or was not allowed. Lines that never ask for one keep the default (nothing to say).
    fn transfer_outcome(&self, _leg: LegId, _outcome: Result<(), Cause>) -> LegFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    /// How far the party of a blind transfer the line asked for has got before it
    /// answered (it rings, or plays early media): the line may tell its peer (a SIP
    /// peer's NOTIFY `180`), so the transferor sees the target ring. Lines that never ask
    /// for a transfer keep the default (nothing to say).
    fn transfer_progress(&self, _leg: LegId, _progress: Progress) -> LegFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    /// Where the leg's audio is, now.
    fn audio(&self, leg: LegId) -> LegAudio;

    /// The transport's identifiers of a live leg, for records and the API. Lines without
    /// any (modems, analog ports) keep the default: empty.
    fn leg_details(&self, _leg: LegId) -> LegDetails {
        LegDetails::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_failures_fail_over_but_callee_answers_do_not() {
        let busy = LegError::Failed {
            line: "sim0".into(),
            reason: "BUSY".into(),
            cause: Some(EndCause::new(Cause::Busy, "BUSY")),
        };
        assert!(!busy.fails_over());
        let down = LegError::Unavailable {
            line: "sim0".into(),
            reason: "not registered".into(),
        };
        assert!(down.fails_over());
        assert!(!LegError::Invalid("bad number".into()).fails_over());
    }
}
