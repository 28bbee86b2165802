//! The SIP side of Flowgate: a user agent on rsip with RTP media.
//!
//! # Layout
//!
//! ```text
//!   UserAgent (tokio shell: sockets, timers, commands, events)      ua/
//!      │   registrar · registration client · security (ACL, rate, bans)
//!      ▼
//!   dialogs (§12) ── digest auth (RFC 7616/8760) ── SDP offer/answer (RFC 3264)
//!      ▼
//!   transactions (§17, timers A–M, sans-IO)                         transaction
//!      ▼
//!   messages (framing, folding, limits; URIs by rsip)               message
//!
//!   RTP/RTCP (RFC 3550), RFC 4733 events, jitter buffer (sans-IO)   rtp/
//!   RtpStream: blocking 20 ms frame port on a UDP socket            rtp::stream
//!   cause mapping SIP ↔ Q.850 ↔ neutral ↔ VoIPBIN                   cause
//!   SipLine: the user agent as a call-leg `Line`                    line
//!   Refer-To / Replaces parsing (RFC 3515, RFC 3891)                 refer
//! ```
//!
//! Every core module is sans-IO: it takes bytes, events and `now: Instant` and returns
//! decisions. Only [`ua`] and [`rtp::stream`] touch sockets and clocks.

pub mod auth;
pub mod cause;
pub mod config;
pub mod dialog;
pub mod line;
pub mod message;
pub mod refer;
pub mod rtp;
pub mod sdp;
pub mod transaction;
pub mod ua;
