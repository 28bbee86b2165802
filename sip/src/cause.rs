//! Cause mapping for SIP: SIP status ↔ Q.850 (RFC 3398 §7.2.4.1 and §8.2.6.1), and SIP
//! status ↔ the call-leg contract's neutral [`Cause`]. Pure tables.
//!
//! The neutral causes and their Q.850 and VoIPBIN mappings are the contract's own
//! (`flowgate_line::Cause`, re-exported here): SIP maps its statuses to Q.850 by RFC 3398
//! and the shared table classifies them, so every transport agrees; a few statuses whose
//! meaning is sharper than their Q.850 value (408, 480, 487, 503) are classified directly.

pub use flowgate_line::Cause;

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
        400..=599 => 41,
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

/// The neutral cause of a SIP final response to our INVITE.
pub fn cause_from_sip(status: u16) -> Cause {
    match status {
        200..=299 => Cause::Normal,
        408 => Cause::Timeout,
        480 => Cause::NoAnswer,
        487 => Cause::Cancelled,
        503 => Cause::Congestion,
        _ => Cause::from_q850(q850_from_sip(status)),
    }
}

/// The status this user agent refuses an unanswered INVITE with when the call ends for
/// `cause` (a busy mobile gives the PBX `486`).
pub fn sip_status_for(cause: Cause) -> u16 {
    match cause {
        Cause::Cancelled => 487,
        Cause::Normal | Cause::Transferred => 603,
        Cause::Unavailable => 480,
        c => sip_from_q850(c.q850()),
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
    fn causes_both_ways_and_voipbin_reasons() {
        // A busy mobile (Q.850 17) gives the PBX 486, and a 486 is "busy" for VoIPBIN.
        assert_eq!(sip_status_for(Cause::from_q850(17)), 486);
        assert_eq!(cause_from_sip(486).voipbin_reason(false), "busy");
        assert_eq!(cause_from_sip(487), Cause::Cancelled);
        assert_eq!(sip_status_for(Cause::Cancelled), 487);
        assert_eq!(cause_from_sip(404), Cause::Unreachable);
        assert_eq!(cause_from_sip(404).voipbin_reason(false), "failed");
        assert_eq!(cause_from_sip(480).voipbin_reason(false), "noanswer");
        assert_eq!(cause_from_sip(408).voipbin_reason(false), "timeout");
        assert_eq!(cause_from_sip(603), Cause::Rejected);
        assert_eq!(cause_from_sip(503), Cause::Congestion);
        for c in [
            Cause::Busy,
            Cause::NoAnswer,
            Cause::Rejected,
            Cause::Unreachable,
            Cause::Timeout,
        ] {
            assert_eq!(cause_from_sip(sip_status_for(c)), c, "{c:?}");
        }
        assert_eq!(Cause::from_voipbin_reason("busy"), Cause::Busy);
        assert_eq!(
            reason_header_q850("SIP;cause=200, Q.850;cause=17;text=\"busy\""),
            Some(17)
        );
    }
}
