//! Cause mapping: SIP status ↔ Q.850 cause (RFC 3398 §7.2.4.1 and §8.2.6.1) ↔ the
//! neutral causes of the call-leg contract ↔ VoIPBIN hangup reasons. Pure tables.
//!
//! [`Cause`] mirrors the contract's neutral `Cause` one to one (the SIP line's adapter
//! converts by name); it lives here so this crate does not depend on the contract crate.

use serde::{Deserialize, Serialize};

/// Neutral end-of-call causes (the call-leg contract's `Cause`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Normal clearing.
    Normal,
    /// The callee is busy.
    Busy,
    /// Rang without answer, or the callee is not reachable right now.
    NoAnswer,
    /// The callee (or the network for it) refused the call.
    Rejected,
    /// No such number / no route.
    Unreachable,
    /// Overload somewhere on the path.
    Congestion,
    /// A failure of the network or the far end.
    NetworkFailure,
    /// The caller gave up before the answer.
    Cancelled,
    /// The call was handed over to another party.
    Transferred,
    /// The line itself was reset.
    LineReset,
    /// A protocol timer expired (no response at all).
    Timeout,
}

/// RFC 3398 §8.2.6.1: the Q.850 cause for a SIP final response status received.
pub fn q850_from_sip(status: u16) -> u8 {
    match status {
        200..=299 => 16,
        401 | 402 | 403 | 407 => 21,
        404 | 485 | 604 => 1,
        405 => 63,
        406 | 415 | 501 => 79,
        408 | 504 => 102,
        410 => 22,
        413 | 414 | 416 | 420 | 421 | 423 | 488 | 505 | 513 => 127,
        480 => 18,
        481 | 500 | 503 => 41,
        482 | 483 => 25,
        484 => 28,
        486 | 600 => 17,
        // Not in RFC 3398's table: the caller cancelled.
        487 => 16,
        502 => 38,
        603 => 21,
        606 => 58,
        400..=499 => 41,
        500..=599 => 41,
        _ => 31,
    }
}

/// RFC 3398 §7.2.4.1: the SIP final status for a Q.850 cause (for refusing an INVITE).
pub fn sip_from_q850(q850: u8) -> u16 {
    match q850 {
        1..=3 | 26 => 404,
        17 => 486,
        18 => 408,
        19..=20 | 31 => 480,
        21 | 55 | 57 | 87 => 403,
        22 | 23 => 410,
        27 => 502,
        28 => 484,
        29 | 69 | 79 => 501,
        34 | 38 | 41 | 42 | 47 | 58 | 88 => 503,
        65 | 70 => 488,
        102 => 504,
        111 | 127 => 500,
        // Normal clearing before an answer: the callee declined.
        16 => 603,
        _ => 500,
    }
}

impl Cause {
    /// The neutral cause of a SIP final response to our INVITE.
    pub fn from_sip(status: u16) -> Cause {
        match status {
            200..=299 => Cause::Normal,
            486 | 600 => Cause::Busy,
            408 => Cause::Timeout,
            480 => Cause::NoAnswer,
            487 => Cause::Cancelled,
            403 | 603 | 401 | 407 => Cause::Rejected,
            404 | 410 | 484 | 485 | 604 => Cause::Unreachable,
            503 => Cause::Congestion,
            _ => Self::from_q850(q850_from_sip(status)),
        }
    }

    /// The neutral cause of a Q.850 value (e.g. from a `Reason: Q.850;cause=` header).
    pub fn from_q850(q: u8) -> Cause {
        match q {
            16 => Cause::Normal,
            17 => Cause::Busy,
            18..=20 => Cause::NoAnswer,
            21 | 55 | 57 | 87 => Cause::Rejected,
            1..=3 | 22 | 26 | 28 => Cause::Unreachable,
            34 | 42 | 47 => Cause::Congestion,
            102 => Cause::Timeout,
            _ => Cause::NetworkFailure,
        }
    }

    /// The Q.850 value of a neutral cause.
    pub fn q850(self) -> u8 {
        match self {
            Cause::Normal | Cause::Cancelled | Cause::Transferred => 16,
            Cause::Busy => 17,
            Cause::NoAnswer => 19,
            Cause::Rejected => 21,
            Cause::Unreachable => 1,
            Cause::Congestion => 34,
            Cause::NetworkFailure => 38,
            Cause::LineReset => 41,
            Cause::Timeout => 102,
        }
    }

    /// The status this UA answers an unanswered INVITE with when the call ends for this
    /// cause (a busy mobile gives the PBX `486`).
    pub fn sip_status(self) -> u16 {
        match self {
            Cause::Cancelled => 487,
            Cause::Normal | Cause::Transferred => 603,
            c => sip_from_q850(c.q850()),
        }
    }

    /// VoIPBIN's hangup reason (`normal`, `failed`, `busy`, `cancel`, `timeout`,
    /// `noanswer`; `dialout` and `amd` are set by the flow engine, not by a line).
    pub fn voipbin_reason(self, answered: bool) -> &'static str {
        match self {
            Cause::Busy | Cause::Rejected => "busy",
            Cause::NoAnswer => "noanswer",
            Cause::Timeout => "timeout",
            Cause::Cancelled => "cancel",
            Cause::Transferred => "normal",
            Cause::Unreachable | Cause::Congestion | Cause::NetworkFailure | Cause::LineReset => {
                "failed"
            }
            Cause::Normal => {
                if answered {
                    "normal"
                } else {
                    "cancel"
                }
            }
        }
    }

    /// The neutral cause for a VoIPBIN `hangup` action's reason (what the flow asks the
    /// line to signal).
    pub fn from_voipbin(reason: &str) -> Option<Cause> {
        Some(match reason {
            "normal" | "dialout" | "amd" => Cause::Normal,
            "busy" => Cause::Busy,
            "noanswer" => Cause::NoAnswer,
            "timeout" => Cause::Timeout,
            "cancel" => Cause::Cancelled,
            "failed" => Cause::NetworkFailure,
            _ => return None,
        })
    }
}

/// Reads `Reason: Q.850;cause=NN` (RFC 3326) if present.
pub fn reason_header_q850(value: &str) -> Option<u8> {
    crate::message::split_commas(value)
        .into_iter()
        .find_map(|r| {
            let (proto, params) = r.split_once(';')?;
            if !proto.trim().eq_ignore_ascii_case("Q.850") {
                return None;
            }
            crate::message::param(&format!(";{params}"), "cause")
                .flatten()?
                .parse()
                .ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3398_sip_to_q850() {
        for (s, q) in [
            (404, 1),
            (486, 17),
            (480, 18),
            (403, 21),
            (408, 102),
            (503, 41),
            (502, 38),
            (484, 28),
            (410, 22),
            (600, 17),
            (603, 21),
            (606, 58),
            (405, 63),
            (488, 127),
        ] {
            assert_eq!(q850_from_sip(s), q, "{s}");
        }
    }

    #[test]
    fn rfc3398_q850_to_sip() {
        for (q, s) in [
            (1, 404),
            (17, 486),
            (18, 408),
            (19, 480),
            (21, 403),
            (22, 410),
            (27, 502),
            (28, 484),
            (34, 503),
            (38, 503),
            (65, 488),
            (79, 501),
            (102, 504),
            (127, 500),
        ] {
            assert_eq!(sip_from_q850(q), s, "{q}");
        }
    }

    #[test]
    fn busy_round_trips_both_ways() {
        // A busy mobile (Q.850 17) gives the PBX 486, and a 486 is "busy" for VoIPBIN.
        assert_eq!(Cause::from_q850(17).sip_status(), 486);
        assert_eq!(Cause::from_sip(486).voipbin_reason(false), "busy");
        assert_eq!(Cause::from_sip(487), Cause::Cancelled);
        assert_eq!(Cause::Cancelled.sip_status(), 487);
        assert_eq!(Cause::from_sip(404).voipbin_reason(false), "failed");
        assert_eq!(Cause::from_sip(480).voipbin_reason(false), "noanswer");
        assert_eq!(Cause::Normal.voipbin_reason(false), "cancel");
        assert_eq!(Cause::Normal.voipbin_reason(true), "normal");
        for c in [
            Cause::Normal,
            Cause::Busy,
            Cause::NoAnswer,
            Cause::Rejected,
            Cause::Unreachable,
            Cause::Congestion,
            Cause::Timeout,
        ] {
            assert_eq!(Cause::from_q850(c.q850()), c);
        }
        assert_eq!(Cause::from_voipbin("busy"), Some(Cause::Busy));
        assert_eq!(Cause::from_voipbin("bogus"), None);
        assert_eq!(
            reason_header_q850("SIP;cause=200, Q.850;cause=17;text=\"busy\""),
            Some(17)
        );
    }
}
