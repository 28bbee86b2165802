//! Audio ports: where a call's frames come from and go to.
//!
//! Every transport is an [`AudioPort`] (the trait is the call-leg contract's,
//! `flowgate_line`): read one 20 ms frame of the far end's audio,
//! write one frame back. The port owns its pacing (see [`crate::media::clock`]):
//! `read_frame` returns about every 20 ms whatever the device does, and reports a
//! frame as [`FrameStatus::Missing`] instead of blocking when the far end stalls,
//! so the session keeps ticking (timers, commands, recordings) on its own clock.
//!
//! | transport | port | paced by |
//! |---|---|---|
//! | modem voice tty (Huawei, Quectel TTY, SIMCom), simulator | [`SerialPcmPort`] | the far end (one frame in, one frame out); own clock during stalls and floods |
//! | ALSA (USB audio, sound card, I2S codec) | [`AlsaPort`] | the device; own clock for `file`/`null` PCMs |
//! | in-process (tests, benches, software peers) | [`ChannelPort`] | whoever feeds it, or the shared frame loop ([`ChannelPort::shared_pair`]) |
//! | RTP (SIP calls, `flowgate_sip::rtp::RtpStream`) | made by the line | the shared frame loop ([`Pacing::Shared`]) |
//!
//! A device is used by one session at a time: a session waits for the previous call's
//! session on the same device to release it before opening it (`claim`), so back-to-back
//! calls on one modem both get audio.

mod alsa;
mod channel;
mod claim;
mod serial;

use std::sync::Arc;
use std::time::Duration;

pub use flowgate_line::{AudioPort, AudioTransport, FrameStatus, Pacing, PortError};

pub use self::alsa::{AlsaOptions, AlsaPort};
pub use self::channel::{ChannelPeer, ChannelPort};
pub(crate) use self::claim::{ClaimedPort, DeviceClaims};
pub use self::serial::{SerialOptions, SerialPcmPort};
use super::clock::Clock;
use super::error::{MediaError, Result};

/// Port settings that are not part of a line's audio description.
#[derive(Debug, Clone)]
pub struct PortOptions {
    /// How late a frame may be before the session ticks without it.
    pub stall_tolerance: Duration,
    /// ALSA buffer geometry.
    pub alsa: AlsaOptions,
    /// How long a session waits for the previous call's session on the same device to
    /// release it (see `claim`): normally one frame wait, up to `stall_tolerance`.
    pub release_wait: Duration,
}

impl Default for PortOptions {
    fn default() -> Self {
        PortOptions {
            stall_tolerance: Duration::from_millis(60),
            alsa: AlsaOptions::default(),
            release_wait: Duration::from_secs(2),
        }
    }
}

/// Opens the port for a device transport. Blocking: call it from a blocking thread (the
/// session does).
///
/// # Errors
/// [`MediaError::NoAudioPath`] for `None`; device errors naming the device.
pub fn open_transport(
    transport: &AudioTransport,
    options: &PortOptions,
    clock: Arc<dyn Clock>,
) -> Result<Box<dyn AudioPort>> {
    match transport {
        AudioTransport::SerialPcm {
            device,
            sample_rate,
        } => {
            let opts = SerialOptions {
                sample_rate: *sample_rate,
                stall_tolerance: options.stall_tolerance,
            };
            Ok(Box::new(SerialPcmPort::open(device, &opts, clock)?))
        }
        AudioTransport::Alsa {
            playback,
            capture,
            sample_rate,
            ..
        } => {
            let opts = AlsaOptions {
                sample_rate: *sample_rate,
                ..options.alsa.clone()
            };
            Ok(Box::new(AlsaPort::open(playback, capture, &opts, clock)?))
        }
        AudioTransport::None => Err(MediaError::NoAudioPath("the transport is `none`".into())),
    }
}
