//! Named points of the SMS pipeline where a test build of the daemon can die on purpose.
//!
//! Exactly-once SMS is a claim about every moment between "the modem has it" and "the
//! delivery report is applied". Killing the daemon at a random time tests a random moment;
//! these points let a test kill it at each step in turn (`tests/e2e/crash.rs`), with the
//! modem simulator outliving it as real hardware would.
//!
//! The production daemon installs no hook, so [`reach`] is one atomic load. The test daemon
//! (`flowgate-testd`) installs one that aborts the process — no destructors, no flush, the
//! same as `kill -9` for everything on disk — when its chosen point is reached.

use std::sync::OnceLock;

/// The points, in pipeline order (the names tests choose from).
pub const POINTS: &[&str] = &[
    INBOUND_STORED,
    MODEM_DELETED,
    FLOW_STARTED,
    REPLY_PREPARED,
    REPLY_STORED,
    REPLY_SENT,
    REPORT_APPLIED,
];

/// An inbound message is stored and flushed; the modem has not been told to delete it.
pub const INBOUND_STORED: &str = "inbound_stored";
/// The modem deleted a stored message (`AT+CMGD` answered `OK`).
pub const MODEM_DELETED: &str = "modem_deleted";
/// A message's flow is stored and flushed; it has not run yet.
pub const FLOW_STARTED: &str = "flow_started";
/// A reply is written to modem storage (`AT+CMGW`); the gateway has not recorded its slots.
pub const REPLY_PREPARED: &str = "reply_prepared";
/// A reply's slots are recorded and flushed; it has not been sent (`AT+CMSS`).
pub const REPLY_STORED: &str = "reply_stored";
/// A reply went out (`+CMSS:` answered); the gateway has not recorded it as sent.
pub const REPLY_SENT: &str = "reply_sent";
/// A delivery report is applied and flushed; the modem has not been told to delete it.
pub const REPORT_APPLIED: &str = "report_applied";

static HOOK: OnceLock<fn(&'static str)> = OnceLock::new();

/// Installs the hook (once per process; a second call returns `Err`).
pub fn set_hook(hook: fn(&'static str)) -> Result<(), fn(&'static str)> {
    HOOK.set(hook)
}

/// Passes `point` to the hook, if one is installed.
#[inline]
pub fn reach(point: &'static str) {
    if let Some(hook) = HOOK.get() {
        hook(point);
    }
}
