//! One media session at a time per audio device in this process, handed over in order.
//!
//! A call's session opens its device (a modem's voice tty, an ALSA PCM) on its own media
//! thread and closes it when that thread ends, which is after the call was reported over:
//! the thread first finishes the frame it is waiting for (up to the stall tolerance) and
//! finalizes recordings. A call that starts on the same modem in that time (a waiting
//! caller put through the moment the previous one hangs up) used to find the device still
//! open and locked (`flock`) and went without audio for its whole duration.
//!
//! So a session on a device first takes the device's [`Claim`] here. The next session for
//! that device waits until the previous one drops it, woken by the release itself (a
//! tokio mutex, first come first served), at most `release_wait`; only then does it open
//! the device. The claim rides inside the port ([`ClaimedPort`]) and is released right
//! after the device is closed. The `flock` stays: it keeps other processes (a second
//! Flowgate, a stray `cat`) off the device.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use flowgate_line::{AudioPort, AudioTransport, FrameStatus, PortError};
use parking_lot::Mutex;
use tokio::sync::OwnedMutexGuard;

use crate::media::error::{MediaError, Result};

/// The devices this process's sessions hold, by name. One entry per device ever used (a
/// board has a handful), never removed: removing would race a waiter on the old gate.
#[derive(Debug, Default)]
pub(crate) struct DeviceClaims {
    gates: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The right to open a device; dropping it lets the next session open it.
#[derive(Debug)]
pub(crate) struct Claim {
    device: String,
    _held: OwnedMutexGuard<()>,
}

/// The name a transport's device is claimed under; `None` for no device.
fn device_key(transport: &AudioTransport) -> Option<String> {
    match transport {
        AudioTransport::SerialPcm { device, .. } => Some(device.display().to_string()),
        AudioTransport::Alsa {
            playback, capture, ..
        } => Some(if playback == capture {
            format!("alsa:{playback}")
        } else {
            format!("alsa:{playback}|{capture}")
        }),
        AudioTransport::None => None,
    }
}

impl DeviceClaims {
    /// Claims the transport's device, waiting at most `wait` for the session holding it to
    /// let go. `Ok(None)` for a transport without a device.
    ///
    /// # Errors
    /// [`MediaError::DeviceBusy`] when the holder did not release it in time.
    pub(crate) async fn claim(
        &self,
        transport: &AudioTransport,
        wait: Duration,
    ) -> Result<Option<Claim>> {
        let Some(device) = device_key(transport) else {
            return Ok(None);
        };
        let gate = Arc::clone(self.gates.lock().entry(device.clone()).or_default());
        let held = match Arc::clone(&gate).try_lock_owned() {
            Ok(held) => held,
            Err(_) => {
                tracing::debug!(device = %device, "audio device still held by the previous session: waiting for its release");
                tokio::time::timeout(wait, gate.lock_owned())
                    .await
                    .map_err(|_| MediaError::DeviceBusy {
                        device: device.clone(),
                        detail: format!(
                            "the previous call's session did not release it within {} ms",
                            wait.as_millis()
                        ),
                    })?
            }
        };
        Ok(Some(Claim {
            device,
            _held: held,
        }))
    }
}

/// A port holding its device's [`Claim`]: the claim is released after the port (fields
/// drop in order), so the next session never finds the device still open.
pub(crate) struct ClaimedPort {
    port: Box<dyn AudioPort>,
    claim: Claim,
}

impl ClaimedPort {
    pub(crate) fn new(port: Box<dyn AudioPort>, claim: Claim) -> Self {
        ClaimedPort { port, claim }
    }
}

impl Drop for ClaimedPort {
    fn drop(&mut self) {
        tracing::trace!(device = %self.claim.device, "audio device released");
    }
}

impl AudioPort for ClaimedPort {
    fn sample_rate(&self) -> u32 {
        self.port.sample_rate()
    }

    fn device(&self) -> &str {
        self.port.device()
    }

    fn read_frame(&mut self, frame: &mut [i16]) -> std::result::Result<FrameStatus, PortError> {
        self.port.read_frame(frame)
    }

    fn write_frame(&mut self, frame: &[i16]) -> std::result::Result<(), PortError> {
        self.port.write_frame(frame)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn tty(path: &str) -> AudioTransport {
        AudioTransport::SerialPcm {
            device: PathBuf::from(path),
            sample_rate: 8000,
        }
    }

    #[tokio::test]
    async fn the_next_claim_waits_for_the_release_and_no_longer() {
        let claims = Arc::new(DeviceClaims::default());
        let first = claims
            .claim(&tty("/dev/ttyV0"), Duration::ZERO)
            .await
            .unwrap()
            .unwrap();
        // Another device is independent.
        let other = claims.claim(&tty("/dev/ttyV1"), Duration::ZERO).await;
        assert!(matches!(other, Ok(Some(_))));
        // The same device waits: it is handed over when the first lets go, however long
        // the bound (no timer decides it).
        let c = Arc::clone(&claims);
        let next = tokio::spawn(async move {
            c.claim(&tty("/dev/ttyV0"), Duration::from_secs(3600))
                .await
                .map(|c| c.is_some())
        });
        tokio::task::yield_now().await;
        assert!(!next.is_finished());
        drop(first);
        assert!(next.await.unwrap().unwrap());
    }

    #[tokio::test]
    async fn a_holder_that_never_lets_go_makes_the_device_busy_after_the_bound() {
        let claims = DeviceClaims::default();
        let _held = claims
            .claim(&tty("/dev/ttyV0"), Duration::ZERO)
            .await
            .unwrap();
        let err = claims
            .claim(&tty("/dev/ttyV0"), Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(matches!(err, MediaError::DeviceBusy { .. }), "{err}");
        assert!(err.to_string().contains("/dev/ttyV0"), "{err}");
        assert!(
            claims
                .claim(&AudioTransport::None, Duration::ZERO)
                .await
                .unwrap()
                .is_none()
        );
    }
}
