//! The call-leg contract: the one seam between the gateway's calls and its transports.
//!
//! Every call is a **leg** on a **line**. A line is a GSM modem, a SIP trunk or user agent,
//! an analog FXS or FXO port: anything that can place and accept calls. The runtime, the
//! media layer, the store and the API know calls only through this crate; each transport
//! implements [`Line`] once, next to its driver (the modem adapter lives in
//! `flowgate_board::modem::line`).
//!
//! # The shape
//!
//! ```text
//!            ┌──────────── Line (one per modem / trunk / port) ────────────┐
//!  runtime ──┤ place · answer · hangup(Cause) · send_dtmf · hold/retrieve ├── transport
//!            │ transfer · audio(leg) → LegAudio · capabilities · status     │   driver
//!            └───────────── LineEvents: one ordered stream ◀───────────────┘
//! ```
//!
//! * Legs are named by [`LegId`], a UUID. For an outgoing leg the **runtime** chooses it
//!   (it is the call record's id) and registers it *before* calling [`Line::place`], so an
//!   event that arrives before `place` returns always finds its call: nobody needs a
//!   catch-up poll. For an incoming leg the line chooses it and announces it with
//!   [`LegEvent::Incoming`].
//! * A line's events come in order through **one** stream ([`LineEvents`], taken once by
//!   whoever owns the line's calls), so a transfer or a bridge never needs a second
//!   subscriber: it waits on the runtime's view of the leg.
//! * Every leg ends exactly once, with [`LegEvent::Ended`] and a neutral [`EndCause`]
//!   that maps to Q.850 and to VoIPBIN's hang-up reasons ([`cause`]).
//! * A leg's audio is described by [`LegAudio`]: a device the media layer opens
//!   ([`AudioTransport`]) or a port the line made itself (RTP). Every port speaks
//!   [`AudioPort`]: blocking 20 ms frames, paced by the port.
//!
//! The trait returns boxed futures so lines can be kept as `Arc<dyn Line>` in one registry
//! (ripgrep keeps its small traits object-safe for the same reason: one list, many kinds).

pub mod audio;
pub mod cause;
mod event;
mod line;

pub use audio::{AlsaOrigin, AudioPort, AudioTransport, FrameStatus, LegAudio, Pacing, PortError};
pub use cause::{Cause, EndCause};
pub use event::{DtmfSource, LegEvent, LineEventSender, LineEvents, Progress, line_events};
pub use line::{
    Availability, Capabilities, LegDetails, LegError, LegFuture, LegId, Line, Party, Placement,
    TransferTarget, Transport,
};
