//! Why a leg ended, in words every transport and VoIPBIN share.
//!
//! Each transport has its own vocabulary for the end of a call: GSM call-control causes
//! (24.008, Q.850-numbered), SIP status codes, the loop current of an analog line. A leg
//! ends with an [`EndCause`]: a neutral [`Cause`] the runtime reasons about (fail over to
//! the next line? relay "busy" to the caller?), the Q.850 value that other signalling
//! systems understand, and the transport's own evidence for the logs.
//!
//! The two mappings here are the shared tables:
//! * Q.850 ↔ [`Cause`] ([`Cause::from_q850`], [`Cause::q850`]): transports map their codes
//!   to Q.850 first (SIP by RFC 3398), so one table classifies them all;
//! * [`Cause`] → VoIPBIN's hang-up reasons (`normal`, `failed`, `busy`, `cancel`,
//!   `timeout`, `noanswer`, `dialout`, `amd`) for call records and flows, and the reverse
//!   for a flow's `hangup` action.

use serde::{Deserialize, Serialize};

/// The neutral reason a leg ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Normal clearing: someone hung up.
    Normal,
    /// The called party is busy.
    Busy,
    /// The called party was alerted but did not answer (or did not respond).
    NoAnswer,
    /// The called party (or its network) rejected the call.
    Rejected,
    /// The number cannot be reached: unallocated, no route, changed, out of order, invalid.
    Unreachable,
    /// No circuit or resource free on the way (try again later, or another line).
    Congestion,
    /// The network failed (temporary failure, out of order, interworking).
    NetworkFailure,
    /// The line may not make this call: barred, not subscribed, out of credit.
    Barred,
    /// The caller gave up before the call was answered.
    Cancelled,
    /// The call was handed to another party (explicit call transfer, REFER).
    Transferred,
    /// The line itself went away during the call (modem reboot, port lost, trunk down).
    LineReset,
    /// A timer of the gateway ended it (ring timeout).
    Timeout,
    /// The line could not take the call at all (busy with another call, unregistered).
    Unavailable,
}

impl Cause {
    /// Classifies a Q.850 cause value.
    pub fn from_q850(q850: u8) -> Self {
        match q850 {
            16 | 31 => Cause::Normal,
            17 => Cause::Busy,
            18..=19 => Cause::NoAnswer,
            21 | 88 => Cause::Rejected,
            1..=3 | 20 | 22 | 27 | 28 => Cause::Unreachable,
            34 | 42 | 44 | 47 | 58 => Cause::Congestion,
            8 | 50 | 55 | 57 | 62 | 87 => Cause::Barred,
            102 => Cause::Timeout,
            _ => Cause::NetworkFailure,
        }
    }

    /// The Q.850 value that represents this cause best.
    pub fn q850(self) -> u8 {
        match self {
            Cause::Normal | Cause::Cancelled | Cause::Transferred => 16,
            Cause::Busy => 17,
            Cause::NoAnswer => 19,
            Cause::Rejected => 21,
            Cause::Unreachable => 1,
            Cause::Congestion | Cause::Unavailable => 34,
            Cause::NetworkFailure => 38,
            Cause::Barred => 8,
            Cause::LineReset => 41,
            Cause::Timeout => 102,
        }
    }

    /// VoIPBIN's hang-up reason when the far side (or the network) ended the leg.
    /// `answered` tells a plain release apart: before the answer it is a cancelled call.
    pub fn voipbin_reason(self, answered: bool) -> &'static str {
        match self {
            Cause::Busy | Cause::Rejected => "busy",
            Cause::NoAnswer => "noanswer",
            Cause::Timeout => "timeout",
            Cause::Cancelled => "cancel",
            // Handed over by the network: the gateway's part ended normally.
            Cause::Transferred => "normal",
            Cause::Normal if answered => "normal",
            Cause::Normal => "cancel",
            Cause::Unreachable
            | Cause::Congestion
            | Cause::NetworkFailure
            | Cause::Barred
            | Cause::LineReset
            | Cause::Unavailable => "failed",
        }
    }

    /// The cause a flow's `hangup` reason asks for. Unknown reasons are normal clearing,
    /// as in VoIPBIN.
    pub fn from_voipbin_reason(reason: &str) -> Self {
        match reason {
            "busy" => Cause::Busy,
            "noanswer" => Cause::NoAnswer,
            "cancel" => Cause::Cancelled,
            "timeout" => Cause::Timeout,
            "failed" => Cause::NetworkFailure,
            _ => Cause::Normal,
        }
    }

    /// Whether another line could still complete a call that ended with this cause before
    /// it was answered: the line or its network failed, not the called party. A busy or
    /// unanswered callee is not retried elsewhere (it would ring them twice).
    pub fn fails_over(self) -> bool {
        matches!(
            self,
            Cause::Congestion
                | Cause::NetworkFailure
                | Cause::Barred
                | Cause::LineReset
                | Cause::Unavailable
        )
    }

    /// Short name (logs, JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Normal => "normal",
            Cause::Busy => "busy",
            Cause::NoAnswer => "no_answer",
            Cause::Rejected => "rejected",
            Cause::Unreachable => "unreachable",
            Cause::Congestion => "congestion",
            Cause::NetworkFailure => "network_failure",
            Cause::Barred => "barred",
            Cause::Cancelled => "cancelled",
            Cause::Transferred => "transferred",
            Cause::LineReset => "line_reset",
            Cause::Timeout => "timeout",
            Cause::Unavailable => "unavailable",
        }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a leg ended, with the transport's evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndCause {
    /// The neutral cause.
    pub cause: Cause,
    /// Q.850 cause value (from the transport when it gave one, else [`Cause::q850`]).
    pub q850: u8,
    /// What the transport reported (`NO CARRIER`, `^CEND cc 17`, `SIP 486 Busy Here`).
    pub detail: String,
}

impl EndCause {
    /// A cause with its representative Q.850 value.
    pub fn new(cause: Cause, detail: impl Into<String>) -> Self {
        Self {
            cause,
            q850: cause.q850(),
            detail: detail.into(),
        }
    }

    /// A cause classified from a Q.850 value the transport reported.
    pub fn from_q850(q850: u8, detail: impl Into<String>) -> Self {
        Self {
            cause: Cause::from_q850(q850),
            q850,
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Cause; 13] = [
        Cause::Normal,
        Cause::Busy,
        Cause::NoAnswer,
        Cause::Rejected,
        Cause::Unreachable,
        Cause::Congestion,
        Cause::NetworkFailure,
        Cause::Barred,
        Cause::Cancelled,
        Cause::Transferred,
        Cause::LineReset,
        Cause::Timeout,
        Cause::Unavailable,
    ];

    #[test]
    fn q850_values_classify_back_to_their_cause_family() {
        for cause in ALL {
            let back = Cause::from_q850(cause.q850());
            // Cancelled/Transferred are normal clearing on the wire; Unavailable is
            // congestion; LineReset a temporary failure: the family survives.
            let family = match cause {
                Cause::Cancelled | Cause::Transferred => Cause::Normal,
                Cause::Unavailable => Cause::Congestion,
                Cause::LineReset => Cause::NetworkFailure,
                c => c,
            };
            assert_eq!(back, family, "{cause}");
        }
    }

    #[test]
    fn gsm_causes_classify_as_before() {
        assert_eq!(Cause::from_q850(17), Cause::Busy);
        assert_eq!(Cause::from_q850(18), Cause::NoAnswer);
        assert_eq!(Cause::from_q850(21), Cause::Rejected);
        assert_eq!(Cause::from_q850(1), Cause::Unreachable);
        assert_eq!(Cause::from_q850(34), Cause::Congestion);
        assert_eq!(Cause::from_q850(111), Cause::NetworkFailure);
    }

    #[test]
    fn voipbin_reasons_round_trip_for_local_hangups() {
        for reason in ["normal", "busy", "noanswer", "cancel", "timeout", "failed"] {
            let cause = Cause::from_voipbin_reason(reason);
            assert_eq!(cause.voipbin_reason(true), reason);
        }
        assert_eq!(Cause::from_voipbin_reason("whatever"), Cause::Normal);
        assert_eq!(Cause::Normal.voipbin_reason(false), "cancel");
    }

    #[test]
    fn only_line_failures_fail_over() {
        assert!(!Cause::Busy.fails_over());
        assert!(!Cause::NoAnswer.fails_over());
        assert!(Cause::Unavailable.fails_over());
        assert!(Cause::Barred.fails_over());
    }
}
