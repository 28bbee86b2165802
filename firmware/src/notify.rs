//! The service manager's notify protocol (systemd `Type=notify`): `READY=1` once the
//! gateway serves, `WATCHDOG=1` while the store proves writes, `STOPPING=1` when an
//! orderly stop begins.
//!
//! Each message is a datagram on the unix socket named by `$NOTIFY_SOCKET` (the sd-notify
//! crate sends it; nothing is sent when the variable is unset, e.g. `flowgate run` in a
//! shell). The watchdog interval comes from `$WATCHDOG_USEC` (and `$WATCHDOG_PID`, which
//! must be ours when set): systemd sets both from the unit's `WatchdogSec=`.
//!
//! What a ping means is decided by the caller, not here: the daemon pings only after the
//! store watchdog proved a write ([`crate::store::watchdog`]), so a stalled store stops
//! the pings and systemd restarts a daemon that can no longer persist anything.

use std::time::Duration;

use sd_notify::NotifyState;
use tracing::{debug, warn};

/// Talks to the service manager for the daemon. Cheap to copy; all methods do nothing
/// when not started by a service manager.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServiceNotifier {
    watchdog: Option<Duration>,
}

impl ServiceNotifier {
    /// Reads the watchdog settings the service manager passed in the environment.
    pub fn from_env() -> Self {
        Self {
            watchdog: sd_notify::watchdog_enabled(),
        }
    }

    /// The interval within which the service manager expects a `WATCHDOG=1`, when it
    /// asked for pings.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    /// The gateway is up (store open, state recovered, API listening).
    pub fn ready(&self) {
        if let Err(e) = sd_notify::notify(&[NotifyState::Ready]) {
            warn!(cause = %e, "cannot tell the service manager we are ready");
        }
    }

    /// Proof of life: only call it after the store proved a write.
    pub fn watchdog(&self) {
        if self.watchdog.is_none() {
            return;
        }
        // A lost ping is repeated at the next probe; logging each would flood the journal.
        if let Err(e) = sd_notify::notify(&[NotifyState::Watchdog]) {
            debug!(cause = %e, "watchdog ping not sent");
        }
    }

    /// An orderly stop has begun (the service manager then waits for the exit rather than
    /// treating missing pings as a hang).
    pub fn stopping(&self) {
        if let Err(e) = sd_notify::notify(&[NotifyState::Stopping]) {
            debug!(cause = %e, "stop notice not sent");
        }
    }
}
