//! Line logic: sans-IO state machines for FXS and FXO ports. They take hook, ring and line
//! samples, detected digits and commands together with `now`, and return decisions (what the
//! chip should do, what the port's audio path should play or listen for) and neutral events.
//!
//! | piece | what it decides |
//! |---|---|
//! | [`hook::HookDetector`] | debounced hook state → off-hook, on-hook, flash, pulse digits |
//! | [`ring::RingDetector`] | DAA ring-detect bits → ring on/off (neon MWI pulses rejected) |
//! | [`dialplan::DialPlan`] | collected digits → extension, outside line, number, or no route |
//! | [`fxs::FxsLine`] | an analog phone on the gateway |
//! | [`fxo::FxoLine`] | the gateway on a landline |
//!
//! Events ([`LineEvent`]) are neutral: the call-leg adapter maps them onto the gateway's leg
//! contract (incoming, answered, digits, ended with a cause). Every call a line starts (an
//! off-hook, a ring command, an incoming ring, a dial command) ends with exactly one
//! [`LineEvent::Ended`].

pub mod dialplan;
pub mod fxo;
pub mod fxs;
pub mod hook;
pub mod ring;

use heapless::String;

use crate::cid::CallerId;

/// Longest digit string a line collects or dials.
pub const MAX_DIGITS: usize = 32;

/// A digit string.
pub type Digits = String<MAX_DIGITS>;

/// How a digit was signalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigitSource {
    /// In-band DTMF.
    Dtmf,
    /// Loop-disconnect (rotary) pulses.
    Pulse,
}

/// Where the digits dialled on an FXS phone go.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Route {
    /// An extension of the dial plan.
    Extension(Digits),
    /// An outside line: the digits after the outside prefix.
    Outside(Digits),
    /// Any other number (ended by the terminator or the inter-digit timeout).
    Number(Digits),
    /// Hotline: the port routes on off-hook, without dial tone or digits.
    Hotline,
}

/// Far-end disconnect signals on an FXO line (disconnect supervision).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disconnect {
    /// The loop current dropped (CPC / power denial).
    LoopCurrent,
    /// The battery polarity reversed (after answer).
    BatteryReversal,
    /// The battery went away.
    BatteryLoss,
    /// Busy tone from the exchange.
    BusyTone,
    /// Congestion / reorder tone from the exchange.
    CongestionTone,
    /// Nothing heard for the silence timeout.
    Silence,
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// The phone went on-hook (FXS).
    PhoneOnHook,
    /// The far end cleared (FXO disconnect supervision).
    FarEnd(Disconnect),
    /// The ringing stopped before anyone answered (FXO: the caller gave up).
    RingingStopped,
    /// Ended by a command (the gateway hung up).
    Local,
    /// The dialled digits match no route (FXS), or nothing was dialled.
    NoRoute,
    /// The line failed (chip alarm, no battery).
    LineFault,
    /// FXS: the phone handed the call over (consultation transfer).
    Transferred,
}

/// What a line reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineEvent {
    /// FXS: the phone was lifted while idle; a call attempt starts (dial tone).
    OffHook,
    /// FXS: digit collection finished with a route.
    Dialled {
        /// Where the call goes.
        route: Route,
        /// The digits as dialled.
        digits: Digits,
    },
    /// FXO: the line rings; `caller` is the caller ID when one was received.
    Incoming {
        /// Caller ID, if any.
        caller: Option<CallerId>,
        /// Rings so far.
        rings: u8,
    },
    /// FXO: one more ring of an incoming call already reported.
    Ring {
        /// Rings so far.
        rings: u8,
    },
    /// FXO: an outgoing call was dialled (the exchange has the digits).
    Proceeding,
    /// FXS: the phone answered the ringing. FXO: the call is answered (by the gateway, or by
    /// the far end when answer supervision is available).
    Answered,
    /// A digit during a call (FXS pulse digits; in-band DTMF is the media layer's).
    Digit {
        /// `0-9`, `*`, `#`, `A-D`.
        digit: char,
        /// How it was signalled.
        source: DigitSource,
    },
    /// FXS: hook flash during an answered call. The first puts the call on hold (the phone
    /// hears recall dial tone and may dial a consultation call, the far end hears silence);
    /// the next takes it back (also sent when the phone answers a recall ring).
    Flash {
        /// The call is held now (false: taken back).
        held: bool,
    },
    /// FXS: digit collection after a flash (the call held) finished with a route: a second,
    /// consultation call starts. It ends with exactly one [`LineEvent::ConsultEnded`].
    Consult {
        /// Where the consultation call goes.
        route: Route,
        /// The digits as dialled.
        digits: Digits,
    },
    /// FXS: the consultation call is over (the phone flashed back to the held call, or the
    /// gateway hung it up); the held call is still there.
    ConsultEnded {
        /// Why.
        reason: EndReason,
        /// Whether it had been answered.
        answered: bool,
    },
    /// FXS: the phone went on-hook with a call held and a consultation call up: join the
    /// two far ends (consultation transfer). `ConsultEnded` and `Ended`, both
    /// [`EndReason::Transferred`], follow at once: the port is free.
    Transfer {
        /// Whether the consultation call had been answered (attended transfer) or still
        /// rang (blind transfer).
        answered: bool,
    },
    /// The call ended.
    Ended {
        /// Why.
        reason: EndReason,
        /// Whether it had been answered.
        answered: bool,
    },
    /// FXS: the receiver stayed off-hook through dial tone, reorder and howler; the port
    /// now waits silently for the phone to go on-hook.
    PermanentSignal,
}

/// Call-progress tones the lines ask the port to play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tone {
    /// Dial tone.
    Dial,
    /// Ringback.
    Ringback,
    /// Busy.
    Busy,
    /// Congestion / reorder.
    Congestion,
    /// Receiver off-hook (howler).
    Howler,
}

/// Returns the `cadence` segment that contains `t` ms after the start: (index, ends at).
fn cadence_segment(cadence: &[u16], t: u64) -> (usize, u64) {
    let total: u64 = cadence.iter().map(|&d| u64::from(d)).sum();
    if total == 0 {
        return (0, u64::MAX);
    }
    let cycle_start = t - t % total;
    let mut end = cycle_start;
    for (i, &d) in cadence.iter().enumerate() {
        end += u64::from(d);
        if t < end {
            return (i, end);
        }
    }
    (0, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cadence_segments() {
        let c = [400, 200, 400, 2000];
        assert_eq!(cadence_segment(&c, 0), (0, 400));
        assert_eq!(cadence_segment(&c, 450), (1, 600));
        assert_eq!(cadence_segment(&c, 1000), (3, 3000));
        assert_eq!(cadence_segment(&c, 3000), (0, 3400));
    }
}
