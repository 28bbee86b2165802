//! What a line tells the owner of its calls: one ordered stream of leg events.

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::cause::EndCause;
use crate::line::{LegId, Party, TransferTarget};

/// How far an outgoing leg got before it was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Progress {
    /// The line is trying (the network took the attempt).
    Trying,
    /// The far end is alerting.
    Ringing,
    /// The far end sends audio before answering (announcements, its own ringback): the
    /// leg's audio can be opened and passed on.
    EarlyMedia,
}

/// How a digit reached the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DtmfSource {
    /// Out of band: a modem URC, RFC 4733 telephone-event, SIP INFO, an analog line's DTMF
    /// decoder chip.
    Signalled,
    /// Detected in the audio by the gateway's own detector.
    InBand,
}

/// One event of one leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegEvent {
    /// A call arrived on the line. `leg` is new.
    Incoming {
        /// The new leg.
        leg: LegId,
        /// Who calls (number empty when withheld).
        caller: Party,
        /// Whom they called (the line's number, the dialled extension, the request URI).
        callee: Party,
    },
    /// A call arrived on the line to take the place of `replaced`, one of the line's answered
    /// legs: `replaced`'s far end transferred its call to the caller of `leg` (a SIP INVITE
    /// with `Replaces`, RFC 3891 — the gateway is the target of an attended transfer done
    /// elsewhere). `leg` is new. The runtime answers it and bridges it to the party
    /// `replaced` was bridged to, then hangs `replaced` up ([`crate::Cause::Transferred`]);
    /// when `replaced` is bridged to nobody there is nothing to hand over and `leg` is
    /// refused.
    Replacing {
        /// The new leg.
        leg: LegId,
        /// Who calls.
        caller: Party,
        /// Whom they called (the request URI).
        callee: Party,
        /// The leg it replaces.
        replaced: LegId,
    },
    /// An outgoing leg progressed.
    Progress {
        /// The leg.
        leg: LegId,
        /// How far.
        progress: Progress,
    },
    /// The leg is answered (ours: the far end picked up; theirs: the line answered).
    Answered {
        /// The leg.
        leg: LegId,
    },
    /// The leg's audio can be opened now (the modem routed it, RTP was negotiated).
    AudioReady {
        /// The leg.
        leg: LegId,
    },
    /// A digit came in on the leg's signalling (in-band digits come from the media layer).
    Dtmf {
        /// The leg.
        leg: LegId,
        /// `0-9`, `*`, `#`, `A-D`.
        digit: char,
        /// How it came.
        source: DtmfSource,
    },
    /// The far end (or the network) put the leg on hold.
    Held {
        /// The leg.
        leg: LegId,
    },
    /// The far end took the leg off hold.
    Retrieved {
        /// The leg.
        leg: LegId,
    },
    /// The line's user (or the peer on the far end of `leg`) asks the gateway to hand
    /// over the party `leg` is bridged to, and leave.
    ///
    /// * [`TransferTarget::Leg`]: join the far ends of two of the line's legs — an analog
    ///   phone hanging up in a consultation call (held `leg`, consulted `to`), a SIP
    ///   peer's attended REFER with `Replaces` naming another of the line's dialogs. The
    ///   runtime joins whatever each leg is bridged to; both legs then end (the line sends
    ///   their `Ended`, cause [`crate::Cause::Transferred`], after this event).
    /// * [`TransferTarget::Party`]: a blind transfer (a SIP peer's REFER): the runtime
    ///   dials the party — only where the line's peer could have called it itself — joins
    ///   the bridged party to it once it answers, and reports how it went with
    ///   [`crate::Line::transfer_outcome`]. `leg` stays up meanwhile; its peer ends it.
    TransferRequested {
        /// The leg whose far end asks (the held leg of a consultation).
        leg: LegId,
        /// The leg whose far end takes the bridged party over, or the party to dial.
        to: TransferTarget,
    },
    /// The leg is over. Sent exactly once per leg, and last.
    Ended {
        /// The leg.
        leg: LegId,
        /// Why.
        cause: EndCause,
    },
}

impl LegEvent {
    /// The leg the event is about.
    pub fn leg(&self) -> LegId {
        match self {
            LegEvent::Incoming { leg, .. }
            | LegEvent::Replacing { leg, .. }
            | LegEvent::Progress { leg, .. }
            | LegEvent::Answered { leg }
            | LegEvent::AudioReady { leg }
            | LegEvent::Dtmf { leg, .. }
            | LegEvent::Held { leg }
            | LegEvent::Retrieved { leg }
            | LegEvent::TransferRequested { leg, .. }
            | LegEvent::Ended { leg, .. } => *leg,
        }
    }
}

/// The receiving end of a line's events. Unbounded: a line never waits for the runtime (a
/// driver task must not stall on a slow consumer), and events are few per call.
pub type LineEvents = mpsc::UnboundedReceiver<LegEvent>;

/// The sending end, kept by the line.
pub type LineEventSender = mpsc::UnboundedSender<LegEvent>;

/// A new event channel for a line.
pub fn line_events() -> (LineEventSender, LineEvents) {
    mpsc::unbounded_channel()
}
