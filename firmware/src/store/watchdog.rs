//! The store watchdog: proves at a steady pace that the database still takes and persists
//! writes, and says so when it does not.
//!
//! Why it exists: sled 0.34.7 as released can deadlock under a sustained write burst. Its IO
//! thread pool stopped growing once a few of its threads were busy (the idle-thread count was
//! decremented twice per task and wrapped), so when every pool thread waited for the segment
//! accountant while the accountant's holder waited for a file truncation queued on that same
//! pool, nothing moved again (upstream: spacejam/sled#1412). The workspace now carries a
//! patched sled that removes both causes (`vendor/sled/PATCHES.md`; the soak
//! `cargo bench -p flowgate --bench store_soak` runs ten minutes of sustained writes without a
//! stall). The watchdog stays as the last line of defence against any stall the patch does
//! not cover (a dying flash chip, a kernel that stops completing I/O): reads may still work,
//! so only a write proves health. A stalled store cannot be shut down in order either (the
//! final flush would hang), so the daemon's answer is to exit at once (status 70) and let the
//! supervisor restart it: sled recovers its log at open, and everything the gateway
//! acknowledged was flushed before it was acknowledged.
//!
//! The probe runs on a blocking thread (a stuck probe strands that one thread, never a
//! runtime worker), one at a time; the systemd watchdog is pinged only after a probe
//! succeeded, so a stall also stops the pings.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use super::{Store, StoreError};

/// Probe pacing and the stall limit.
#[derive(Debug, Clone, Copy)]
pub struct WatchdogTiming {
    /// Time between the end of one probe and the start of the next.
    pub every: Duration,
    /// A probe that has not finished after this long means the store is stalled.
    pub stall_limit: Duration,
}

impl Default for WatchdogTiming {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(5),
            stall_limit: Duration::from_secs(30),
        }
    }
}

/// Proves writes with `probe` every `timing.every`; calls `alive` after each success, and
/// cancels `stalled` (then returns) when a probe outlives `timing.stall_limit`. Returns
/// when `cancel` is cancelled.
pub async fn watch_writes<P, A>(
    probe: P,
    alive: A,
    timing: WatchdogTiming,
    cancel: CancellationToken,
    stalled: CancellationToken,
) where
    P: Fn() -> Result<(), StoreError> + Send + Sync + 'static,
    A: Fn(),
{
    let probe = Arc::new(probe);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(timing.every) => {}
        }
        let run = Arc::clone(&probe);
        let attempt = tokio::task::spawn_blocking(move || run());
        let outcome = tokio::select! {
            () = cancel.cancelled() => return,
            outcome = tokio::time::timeout(timing.stall_limit, attempt) => outcome,
        };
        match outcome {
            Ok(Ok(Ok(()))) => alive(),
            Ok(Ok(Err(e))) => warn!(cause = %e, "store heartbeat failed"),
            Ok(Err(e)) => warn!(cause = %e, "store heartbeat thread failed"),
            Err(_) => {
                error!(
                    limit_secs = timing.stall_limit.as_secs(),
                    "the store has completed no write within the stall limit"
                );
                stalled.cancel();
                return;
            }
        }
    }
}

/// Fault injection for tests of the whole daemon process: a function the daemon runs at
/// the start of every write probe, on the probe's thread. `flowgate-testd` (the test copy
/// of the CLI) installs one that blocks like a deadlocked write, so a test can watch the
/// process stop its watchdog pings and exit; the `flowgate` binary never installs one.
static PROBE_HOOK: OnceLock<fn()> = OnceLock::new();

/// Installs the probe hook (once per process; a second call returns its hook back).
///
/// # Errors
/// A hook is already installed.
pub fn set_probe_hook(hook: fn()) -> Result<(), fn()> {
    PROBE_HOOK.set(hook)
}

/// Runs the probe hook, if one is installed.
pub fn run_probe_hook() {
    if let Some(hook) = PROBE_HOOK.get() {
        hook();
    }
}

impl Store {
    /// Writes and flushes a heartbeat in the meta tree (blocking): the write probe of
    /// [`watch_writes`].
    ///
    /// # Errors
    /// The write or flush failed.
    pub fn heartbeat(&self) -> Result<(), StoreError> {
        self.meta_put("heartbeat", &chrono::Utc::now())?;
        self.flush_blocking()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    // Real time (tokio does not auto-advance paused time while a blocking task runs). The
    // outcomes do not depend on speed: a working probe finishes far inside a minute, and a
    // probe that never finishes is a stall whatever the limit.

    #[tokio::test]
    async fn a_working_store_keeps_the_watchdog_fed() {
        let store = Store::temporary().unwrap();
        let fed = AtomicUsize::new(0);
        let (cancel, stalled) = (CancellationToken::new(), CancellationToken::new());
        let probe_store = store.clone();
        let watch = watch_writes(
            move || probe_store.heartbeat(),
            || {
                if fed.fetch_add(1, Ordering::SeqCst) == 2 {
                    cancel.cancel();
                }
            },
            WatchdogTiming {
                every: Duration::from_millis(1),
                stall_limit: Duration::from_secs(60),
            },
            cancel.clone(),
            stalled.clone(),
        );
        watch.await;
        assert_eq!(fed.load(Ordering::SeqCst), 3);
        assert!(!stalled.is_cancelled());
        assert!(
            store
                .meta_get::<chrono::DateTime<chrono::Utc>>("heartbeat")
                .unwrap()
                .is_some()
        );
    }

    #[tokio::test]
    async fn a_write_that_never_finishes_is_a_stall() {
        // The probe blocks until the test ends, as a deadlocked sled write would.
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        let blocked = std::sync::Mutex::new(blocked);
        let (cancel, stalled) = (CancellationToken::new(), CancellationToken::new());
        watch_writes(
            move || {
                let _ = blocked.lock().map(|rx| rx.recv());
                Ok(())
            },
            || panic!("a stalled store must not feed the watchdog"),
            WatchdogTiming {
                every: Duration::from_millis(1),
                stall_limit: Duration::from_millis(100),
            },
            cancel,
            stalled.clone(),
        )
        .await;
        assert!(stalled.is_cancelled());
        drop(release);
    }
}
